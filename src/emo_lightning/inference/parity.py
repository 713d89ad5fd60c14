"""`onnx/parity.json`, the export's record: written by `onnx_export`, read here and only here.

{"backends": [ONNX records], "torch_precision": [PyTorch at the machine's precision], "openvino": [OpenVINO records],
 "passed": bool, "speeds": {"machine", "texts_per_second": {batch: {backend: rate}}, "auto": {batch: backend}}}.
A record is {"backend": <Backend.name>, "passed": bool, "problem": str | None, …the figures of its check}.
"""

from __future__ import annotations

import json
from pathlib import Path

from emo_lightning.utils.atomic import atomic_write_text
from emo_lightning.utils.errors import ConfigError

PARITY_FILE = "parity.json"
RECORD_GROUPS = ("backends", "torch_precision", "openvino")  # the lists of backend records, in check order


def read_parity(onnx_dir: Path) -> dict | None:
    """The export's parity report, or None where the folder has none; a one-line error where it is not JSON."""
    path = Path(onnx_dir) / PARITY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}): delete {onnx_dir} and export again") from None


def write_parity(onnx_dir: Path, report: dict) -> None:
    atomic_write_text(Path(onnx_dir) / PARITY_FILE, json.dumps(report, indent=2))


def backend_records(report: dict | None, groups: tuple[str, ...] = RECORD_GROUPS) -> list[dict]:
    """Every backend record of the report (of `groups`), in check order; [] without a report."""
    return [record for group in groups for record in (report or {}).get(group, [])]


def passed_backends(report: dict | None, groups: tuple[str, ...] = RECORD_GROUPS) -> list[str]:
    """The names of the backends whose parity check passed."""
    return [record["backend"] for record in backend_records(report, groups) if record.get("passed")]

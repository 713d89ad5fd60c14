"""Export a run's network to ONNX (fp32, optionally int8) and prove on real texts that it predicts what PyTorch does.

<run_dir>/onnx/
  model.onnx           encoder + head, (input_ids, attention_mask) → logits, dynamic batch and sequence axes, fp32
  model.int8.onnx      format=onnx-int8: dynamic quantization of model.onnx (QInt8 weights)
  classifier.json      copied from model/: labels, thresholds, at_least_one, max_length, temperatures
  tokenizer files      the run's tokenizer, so the folder predicts alone
  parity.json          what the parity check measured (ONNX, PyTorch at the machine's precision and OpenVINO on
                       model.onnx, vs PyTorch fp32), and each passing backend's texts/s at batch 1 and 64 here
                       (what backend=auto reads)

The folder appears whole, after its parity check passed, or not at all.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path

import torch

from emo_lightning.inference.backends import measure_speeds
from emo_lightning.inference.engine import TorchBackend
from emo_lightning.inference.onnx_backend import FP32_FILE, INPUT_NAMES, INT8_FILE, OnnxBackend
from emo_lightning.inference.parity import write_parity
from emo_lightning.inference.parity_check import FP32_MAX_DIFF, INT8_MIN_AGREEMENT, ParityCheck, read_parity_texts
from emo_lightning.models.folder import CLASSIFIER_FILE, load_model_dir, read_spec
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.utils.atomic import atomic_dir
from emo_lightning.utils.console import quiet_modules
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, inference_dtype
from emo_lightning.utils.rules import EXPORT, check_values

log = logging.getLogger(__name__)

FORMATS = ("onnx", "onnx-int8")
OPSET = 17  # LayerNormalization is a built-in operator from 17 on
BERT_FAMILY = ("bert",)  # model types whose graphs onnxruntime's BERT optimizer fuses


def check_request(
    run_dir: str | Path, fmt: str, max_int8_drop: float, parity_texts: list[str] | None, batch_size: int = 64
) -> Path:
    """The model/ folder of `run_dir`; a one-line ConfigError for any bad argument, before anything is loaded."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir} does not exist: give a training run dir (outputs/runs/<run>)")
    model_dir = run_dir / "model"
    if not (model_dir / CLASSIFIER_FILE).is_file():
        raise ConfigError(f"run_dir={run_dir} holds no model/{CLASSIFIER_FILE}: give a finished training run dir")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt} is not known: use format=onnx or format=onnx-int8")
    check_values({"max_int8_drop": max_int8_drop, "batch_size": batch_size}, EXPORT)
    if parity_texts is not None and (
        not isinstance(parity_texts, list) or not parity_texts or not all(isinstance(t, str) for t in parity_texts)
    ):
        raise ConfigError(f'parity_texts={parity_texts!r} is not a list of texts: give parity_texts=\'["…","…"]\'')
    out = run_dir / "onnx"
    if out.exists():
        raise ConfigError(f"{out} exists: delete it to export again (an export never replaces an earlier one)")
    return model_dir


def example_inputs(tokenizer, batch: int = 3, length: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and mask to trace with: sizes ≥ 2 and off any bound on both dynamic axes; one row padded."""
    generator = torch.Generator().manual_seed(0)
    low = max(tokenizer.all_special_ids, default=0) + 1
    ids = torch.randint(low, max(low + 1, len(tokenizer)), (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    ids[0, length - 3 :], mask[0, length - 3 :] = tokenizer.pad_token_id, 0
    return ids, mask


def export_fp32(network: EmotionNetwork, tokenizer, path: Path) -> None:
    """The TorchScript exporter with eager attention: the graph onnxruntime's BERT fusions recognize
    (the dynamo exporter's and SDPA's graphs leave attention unfused)."""
    backbone = network.backbone
    attention = backbone.config._attn_implementation
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES} | {"logits": {0: "batch"}}
    backbone.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore", (torch.jit.TracerWarning, DeprecationWarning, UserWarning))
            torch.onnx.export(
                network.eval(),
                example_inputs(tokenizer),
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        backbone.set_attn_implementation(attention)


def optimize_fp32(raw: Path, path: Path, config) -> dict[str, int] | None:
    """onnxruntime's BERT fusions (attention, LayerNorm, GELU) for BERT-family encoders; the fusion counts,
    or None (the raw graph is kept) for other encoders."""
    if config.model_type not in BERT_FAMILY:
        log.info("optimize: skipped for model type %s (the BERT fusions cover %s)", config.model_type, BERT_FAMILY)
        shutil.move(raw, path)
        return None
    import onnxruntime.transformers
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_modules(Path(onnxruntime.transformers.__file__).parent):  # its "Fused Gelu: 2" lines, each pass
        optimized = optimize_model(
            str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        )
        fusions = {name: int(count) for name, count in optimized.get_fused_operator_statistics().items() if count}
        optimized.save_model_to_file(str(path))
    raw.unlink()
    layers = config.num_hidden_layers
    if fusions.get("Attention", 0) + fusions.get("MultiHeadAttention", 0) != layers:
        log.warning("optimize: fused attention in %s of %s layers: %s", fusions.get("Attention", 0), layers, fusions)
    else:
        listed = ", ".join(f"{name} ×{count}" for name, count in fusions.items())
        log.info("optimized: %d operators fused (%s)", sum(fusions.values()), listed)
    return fusions


def megabytes(path: Path) -> float:
    return path.stat().st_size / 1e6


def quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic quantization: QInt8 weights per output channel (closer to fp32 than per tensor), activations
    quantized per batch at run time. Shape inference cannot type the outputs of fused (com.microsoft) operators,
    so untyped tensors are declared float."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantizer_log = logging.getLogger()  # the quantizer logs each tensor (INFO) and advice on the root logger
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                fp32,
                int8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": TensorProto.FLOAT},
            )
    finally:
        quantizer_log.setLevel(level)


def export_run(
    run_dir: str | Path,
    fmt: str = "onnx",
    optimize: bool = True,
    max_int8_drop: float = 0.005,
    parity_texts: list[str] | None = None,
    batch_size: int = 64,
    measure_speed: bool = True,
) -> dict:
    """Write <run_dir>/onnx (see the module docstring) if the export passes its parity check; the parity report.

    A failed ONNX check raises a one-line ConfigError and leaves no onnx/ folder. PyTorch at the machine's
    precision (bf16 on AMX) is checked by the int8 rule too; failing it only keeps it from `backend=auto`.
    `measure_speed`: time every backend that passed at batch 1 and 64 on this machine (`speeds`, what auto reads).
    """
    model_dir = check_request(run_dir, fmt, max_int8_drop, parity_texts, batch_size)
    run_dir = model_dir.parent
    data = read_parity_texts(run_dir, read_spec(model_dir), parity_texts)
    network, tokenizer, spec = load_model_dir(model_dir)
    with atomic_dir(run_dir / "onnx") as partial:
        partial.mkdir()
        started = time.perf_counter()
        raw = partial / ".raw.onnx"
        export_fp32(network, tokenizer, raw if optimize else partial / FP32_FILE)
        exported = raw if optimize else partial / FP32_FILE
        log.info("exported %s (%.1f MB) in %.1f s", FP32_FILE, megabytes(exported), time.perf_counter() - started)
        fusions = optimize_fp32(raw, partial / FP32_FILE, network.backbone.config) if optimize else None
        backends = [OnnxBackend(partial)]
        if fmt == "onnx-int8":
            started = time.perf_counter()
            quantize_int8(partial / FP32_FILE, partial / INT8_FILE)
            seconds = time.perf_counter() - started
            log.info("quantized %s (%.1f MB) in %.1f s", INT8_FILE, megabytes(partial / INT8_FILE), seconds)
            backends.append(OnnxBackend(partial, int8=True))
        shutil.copy2(model_dir / CLASSIFIER_FILE, partial / CLASSIFIER_FILE)
        tokenizer.save_pretrained(partial)
        check = ParityCheck(network, tokenizer, spec, data, batch_size)
        records = [check.compare(backend, max_int8_drop) for backend in backends]
        machine = machine_precision_backend(network)
        torch_records = [check.compare(machine, max_int8_drop)] if machine is not None else []
        openvino = openvino_backend(partial)
        openvino_records = [check.compare(openvino, max_int8_drop)] if openvino is not None else []
        report = {
            "format": fmt,
            "texts": len(data.texts),
            "source": data.source,
            "metric": check.metric_name,
            "optimized": fusions is not None,
            "fusions": fusions,
            "limits": {
                "fp32_max_abs_diff": FP32_MAX_DIFF,
                "int8_min_agreement": INT8_MIN_AGREEMENT,
                "max_int8_drop": max_int8_drop,
            },
            "backends": records,
            "torch_precision": torch_records,  # PyTorch at the machine's precision, where that is not fp32
            "openvino": openvino_records,  # OpenVINO on model.onnx at the machine's precision
            "passed": all(record["passed"] for record in records),
        }
        for record in torch_records + openvino_records:  # failing keeps them from backend=auto only
            if not record["passed"]:
                log.warning("parity: %s", record["problem"])
        failed = [record["problem"] for record in records if record["problem"]]
        if failed:
            raise ConfigError(failed[0])
        if measure_speed:
            passed = {record["backend"] for record in records + torch_records + openvino_records if record["passed"]}
            candidates = [machine, *backends, openvino]
            timed = [TorchBackend(network)] + [b for b in candidates if b is not None and b.name in passed]
            report["speeds"] = measure_speeds(timed, tokenizer, data.texts, spec.max_length, spec.multi_label)
        write_parity(partial, report)
    return report


def machine_precision_backend(network: EmotionNetwork) -> TorchBackend | None:
    """PyTorch at the precision `auto` picks on this CPU, where that is not fp32 (bf16 on AMX)."""
    dtype = inference_dtype("auto", Hardware.detect(), torch.device("cpu"))
    return None if dtype == torch.float32 else TorchBackend(network, dtype)


def openvino_backend(onnx_dir: Path):
    """OpenVINO on `onnx_dir`/model.onnx at the machine's precision; None (and a warning) where it cannot
    compile the graph: the export stands without it."""
    from emo_lightning.inference.openvino_backend import OpenVinoBackend

    try:
        return OpenVinoBackend(onnx_dir, inference_dtype("auto", Hardware.detect(), torch.device("cpu")))
    except RuntimeError as error:  # OpenVINO's own errors (an operator it lacks) are RuntimeErrors
        log.warning(
            "parity: OpenVINO cannot compile %s (%s): backend=openvino is not available for it",
            onnx_dir / FP32_FILE,
            str(error).strip().splitlines()[0][:200],
        )
        return None

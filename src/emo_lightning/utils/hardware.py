"""What the machine can do, and the precision and kernel settings that follow from it — one place for all of them.

Training (`trainer.precision=auto`), prediction and the benchmarks all ask here. Measured reasons are in
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, replace

import torch

from emo_lightning.utils.errors import ConfigError

log = logging.getLogger(__name__)

HARDWARE_ENV = "EMO_HARDWARE"  # auto | amx | avx2: report this machine as that kind (tests of the other kind's paths)
HARDWARE_KINDS = ("auto", "amx", "avx2")
BF16_EMULATED_WARNING = (
    "{setting}: this CPU has no bf16 matrix units (no AMX, no AVX-512 BF16), so bf16 matmuls are emulated and "
    "run ~100× slower than fp32; use {fix}"
)


@dataclass(frozen=True)
class Hardware:
    """The capabilities that decide precision: a CUDA GPU (and its bf16 support) or the CPU's bf16 units."""

    cuda: bool = False
    cuda_bf16: bool = False
    cpu_isa: str = "DEFAULT"  # torch.backends.cpu.get_cpu_capability(): AVX2, AVX512, ...
    avx512_bf16: bool = False
    amx: bool = False

    @classmethod
    def detect(cls) -> Hardware:
        """What torch reports, unless `EMO_HARDWARE` says to report another machine kind (see `assumed`)."""
        cuda = torch.cuda.is_available()
        detected = cls(
            cuda=cuda,
            cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
            cpu_isa=torch.backends.cpu.get_cpu_capability(),
            avx512_bf16=torch.cpu._is_avx512_bf16_supported(),
            amx=torch.cpu._is_amx_tile_supported(),
        )
        return detected.assumed(os.environ.get(HARDWARE_ENV, "auto"))

    def assumed(self, kind: str) -> Hardware:
        """This machine as `kind` would report it: `auto` (as detected), `amx` (an AMX CPU, and a bf16 GPU where
        there is a GPU: the bf16 choices) or `avx2` (no bf16 units anywhere: the fp32 / fp16 choices).

        The switch lets one machine run the other kind's precision paths (bf16 is emulated, slow but correct, on a
        CPU without AMX), so the test suite covers both kinds wherever it runs.
        """
        if kind not in HARDWARE_KINDS:
            raise ConfigError(f"{HARDWARE_ENV}={kind} is not one of {', '.join(HARDWARE_KINDS)}: unset it or pick one")
        if kind == "amx":
            return replace(self, cuda_bf16=self.cuda, cpu_isa="AVX512", avx512_bf16=True, amx=True)
        if kind == "avx2":
            return replace(self, cuda_bf16=False, cpu_isa="AVX2", avx512_bf16=False, amx=False)
        return self

    def summary(self) -> str:
        kind = os.environ.get(HARDWARE_ENV, "auto")
        assumed = f" (as {HARDWARE_ENV}={kind} reports it)" if kind != "auto" else ""
        if self.cuda:
            return f"CUDA GPU, bf16 {'yes' if self.cuda_bf16 else 'no'}{assumed}"
        units = f"AVX-512 BF16 {'yes' if self.avx512_bf16 else 'no'}, AMX {'yes' if self.amx else 'no'}"
        return f"CPU {self.cpu_isa}, {units}{assumed}"


def processor_name() -> str:
    """The GPU's name where there is one, else the CPU's model name."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    """What speed measurements depend on: processor, its matrix units (as reported) and the cores this process has."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return f"{processor_name()}; {Hardware.detect().summary()}; {cores} cores"


def choose_precision(hw: Hardware, on_gpu: bool) -> tuple[str, str]:
    """The fastest training precision that keeps fp32 results, and why: (Lightning precision, reason)."""
    if on_gpu and hw.cuda:
        if hw.cuda_bf16:
            return "bf16-mixed", "GPU has bf16"
        return "16-mixed", "GPU has no bf16: fp16 with loss scaling"
    if hw.amx:
        return "bf16-mixed", "CPU has AMX bf16 matrix units"
    if hw.avx512_bf16:
        # Zen 4: bf16 GEMMs 2.2x fp32, a MiniLM step 1.41x, the presets' quality within seed noise (docs/PERFORMANCE.md)
        return "bf16-mixed", "CPU has AVX-512 BF16 (no AMX): bf16 GEMMs about twice fp32's"
    return "32-true", "CPU has no bf16 matrix units"


def bf16_native(hw: Hardware, on_gpu: bool) -> bool:
    return hw.cuda_bf16 if on_gpu and hw.cuda else hw.amx or hw.avx512_bf16


def resolve_precision(requested: str | int, hw: Hardware, on_gpu: bool) -> str | int:
    """`auto` → the machine's choice, logged once with its reason; an explicit value wins (with a warning
    when it asks for bf16 on a CPU that would emulate it)."""
    if str(requested) == "auto":
        precision, reason = choose_precision(hw, on_gpu)
        log.info("precision auto → %s: %s", precision, reason)
        return precision
    if str(requested).startswith("16") and not (on_gpu and hw.cuda):
        raise ConfigError(
            f"trainer.precision={requested} (fp16 with loss scaling) needs a CUDA GPU: on this CPU use "
            "trainer.precision=auto (or bf16-mixed)"
        )
    if "bf16" in str(requested) and not bf16_native(hw, on_gpu):
        log.warning(
            BF16_EMULATED_WARNING.format(setting=f"trainer.precision={requested}", fix="trainer.precision=auto")
        )
    return requested


def uses_gpu(accelerator: str | None) -> bool:
    """Whether a Trainer with this `accelerator` setting will run on a CUDA GPU."""
    return str(accelerator) in {"auto", "gpu", "cuda", "None"} and torch.cuda.is_available()


def configure_kernels(on_gpu: bool) -> None:
    """Process-wide kernel settings: TF32 matmuls on CUDA (Ampere+), nothing on CPU (fp32 stays exact there)."""
    if on_gpu:
        torch.set_float32_matmul_precision("high")


def dataloader_workers(on_gpu: bool) -> int:
    """Loader processes: none on CPU (they would take cores from the model; batches are pre-tokenized and cheap
    to pad), a few on GPU so the next batch is ready while the GPU computes."""
    if not on_gpu:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // max(1, torch.cuda.device_count()) - 1))


INFERENCE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inference_dtype(precision: str, hw: Hardware, device: torch.device) -> torch.dtype:
    """Autocast dtype for prediction. `auto`: bf16 where it is native (AMX CPU, bf16 GPU), fp16 on older GPUs,
    fp32 elsewhere; or one of `fp32`, `bf16`, `fp16` (bf16 on an emulating CPU gets a warning)."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if hw.cuda_bf16 else torch.float16
        return torch.bfloat16 if hw.amx else torch.float32
    if precision not in INFERENCE_DTYPES:
        raise ConfigError(f"precision={precision} is not one of auto, {', '.join(INFERENCE_DTYPES)}: pick one of those")
    if precision == "bf16" and not bf16_native(hw, device.type == "cuda"):
        log.warning(BF16_EMULATED_WARNING.format(setting="precision=bf16", fix="precision=auto"))
    return INFERENCE_DTYPES[precision]

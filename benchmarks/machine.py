"""What the benchmark ran on: processor, its matrix capabilities, and its measured GEMM peak."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import torch

from emo_lightning.utils.hardware import processor_name  # noqa: F401 (re-exported for the benchmarks)


def gemm_peak_gflops(dtype: torch.dtype = torch.float32, sizes=(1024, 2048, 3072), repeats: int = 10) -> float:
    """Best observed square-GEMM rate (GFLOP/s) over a few sizes: the denominator of MFU.

    The best of many runs, so that a noisy neighbour makes MFU look worse, never better.
    """
    return max(_gemm_rate(dtype, n, repeats) for n in sizes)


def _gemm_rate(dtype: torch.dtype, n: int, repeats: int) -> float:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def reset_peak_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak resident memory)


def peak_memory_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_rows(command: list[str], rows: list[str]) -> list[dict]:
    """Run a benchmark's child process for `rows`; its results are the `ROW <json>` lines it prints, one per row."""
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    results = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")]
    if out.returncode != 0 or len(results) != len(rows):
        raise RuntimeError(f"benchmark rows {', '.join(rows)} failed:\n{out.stderr[-3000:]}")
    return results

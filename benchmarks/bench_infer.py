"""Inference speed and accuracy on the 2,000 dair-ai/emotion test texts: our backends beside `transformers.pipeline`.

    make bench-infer                                   # the newest emotion run under outputs/runs
    python benchmarks/bench_infer.py --run outputs/runs/<run> [--texts 500] [--requests 2000]
    python benchmarks/bench_infer.py --run <run> --tiny   # every row and the service on 16 texts (the suite's)

Rows, each in its own process (tokenization inside every timed region):
  pipeline        transformers.pipeline("text-classification") on the run's model/ folder: the same network where
                  the run is a linear head on the pooler (head.pooling=pooler), else the same encoder with a new
                  linear head (speed only: no accuracy) — what a user would otherwise pick
  torch-fp32      our one inference path (length-sorted batches), PyTorch fp32
  torch-<auto>    the same at the machine's precision (bf16 weights on AMX), where that is not fp32
  onnx, onnx-int8 the run's ONNX export (made first when missing) in onnxruntime
  openvino        the same model.onnx in OpenVINO at the machine's precision (bf16 on AMX), where it passed
  auto            backend=auto: the fastest backend that passed its parity check, per batch size
At batch 1 every text is one call (p50/p99 latency per call); at batch 64 all texts go in one call, the best of
3 passes (steady state: the first pass also builds kernels for each new batch shape).
Then the HTTP service (serve.py, backend=auto) under a bounded local load test. Printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

TARGETS = {"batch64_amx": 8.0, "batch64": 5.0, "batch1": 2.0, "accuracy_points": 0.3}


def emotion_test(limit: int | None) -> tuple[list[str], list[str]]:
    """The dair-ai/emotion test texts and their gold label names, through the real datasets path."""
    from emo_lightning.data.loading import load_hub_dataset

    split = load_hub_dataset("dair-ai/emotion", "split", os.environ.get("EMO_DATA_DIR"))["test"]
    names = split.features["label"].names
    texts, labels = list(split["text"]), [names[i] for i in split["label"]]
    return (texts[:limit], labels[:limit]) if limit else (texts, labels)


def timed_calls(predict_one, texts: list[str]) -> tuple[float, list[float]]:
    """texts/s and per-call latencies (ms) of one call per text, after 10 warm-up calls."""
    for text in texts[:10]:
        predict_one(text)
    latencies = []
    started = time.perf_counter()
    for text in texts:
        begin = time.perf_counter()
        predict_one(text)
        latencies.append((time.perf_counter() - begin) * 1000)
    return len(texts) / (time.perf_counter() - started), latencies


def timed_batch(predict_all, texts: list[str], passes: int = 3) -> tuple[float, list[str]]:
    """texts/s of one call on all texts, the best of `passes` (steady state: kernels for each batch shape are made
    on the first pass), after a warm-up call on 64 of them; and the top labels."""
    predict_all(texts[:64])
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        top = predict_all(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best, top


def pipeline_row(run_dir: Path, texts: list[str], gold: list[str]) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    model_dir = run_dir / "model"  # a head pipeline() cannot hold leaves no config.json beside the encoder/
    config = AutoConfig.from_pretrained(model_dir) if (model_dir / "config.json").is_file() else None
    architectures = (config.architectures if config else None) or []
    same_network = any(name.endswith("ForSequenceClassification") for name in architectures)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if same_network:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    else:  # the run's encoder with a fresh linear head: the peer's speed, not its accuracy
        encoder = model_dir / "encoder" if (model_dir / "encoder").is_dir() else model_dir
        labels = json.loads((model_dir / "classifier.json").read_text())["label_names"]
        model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=len(labels))
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=torch.device("cpu"))
    truncation = {"truncation": True, "max_length": 96}
    rate1, latencies = timed_calls(lambda text: classify(text, top_k=None, **truncation), texts)

    def top_labels(batch: list[str]) -> list[str]:
        return [answer[0]["label"] for answer in classify(batch, batch_size=64, top_k=None, **truncation)]

    rate64, top = timed_batch(top_labels, texts)
    accuracy = sum(t == g for t, g in zip(top, gold)) / len(gold) if same_network else None
    note = "the run's network" if same_network else "the run's encoder + a new linear head (speed only)"
    return row("pipeline", note, rate1, latencies, rate64, accuracy)


def ours_row(name: str, run_dir: Path, texts: list[str], gold: list[str]) -> dict:
    from emo_lightning.inference.predictor import EmotionPredictor

    backend, precision = {
        "torch-fp32": ("torch", "fp32"),
        "torch-auto": ("torch", "auto"),
        "onnx": ("onnx", "auto"),
        "onnx-int8": ("onnx-int8", "auto"),
        "openvino": ("openvino", "auto"),
        "auto": ("auto", "auto"),
    }[name]
    one = EmotionPredictor.from_run(run_dir, batch_size=1, precision=precision, backend=backend)
    many = EmotionPredictor.from_run(run_dir, batch_size=64, precision=precision, backend=backend)
    names = one.spec.label_names
    rate1, latencies = timed_calls(lambda text: one.predict_proba([text]), texts)

    def top_labels(batch: list[str]) -> list[str]:
        return [names[i] for i in many.predict_proba(batch).argmax(1).tolist()]

    rate64, top = timed_batch(top_labels, texts)
    accuracy = sum(t == g for t, g in zip(top, gold)) / len(gold)
    note = one.backend.name if one.backend.name == many.backend.name else f"{one.backend.name} / {many.backend.name}"
    return row(name, note, rate1, latencies, rate64, accuracy)


def row(name: str, note: str, rate1: float, latencies: list[float], rate64: float, accuracy: float | None) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "row": name,
        "runs": note,
        "batch1_texts_per_s": round(rate1, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(cuts[98], 2),
        "batch64_texts_per_s": round(rate64, 1),
        "accuracy": None if accuracy is None else round(accuracy, 4),
    }


def run_in_child(names: list[str], args) -> list[dict]:
    """Rows in a fresh process: no row inherits another's threads, caches or allocator state. One row a process
    for figures; `--tiny` runs all of them in one (a process start costs seconds of imports)."""
    cmd = [sys.executable, __file__, "--row", *names, "--run", str(args.run)]
    cmd += ["--texts", str(args.texts)] if args.texts else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    results = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")]
    if out.returncode != 0 or len(results) != len(names):
        raise RuntimeError(f"benchmark rows {', '.join(names)} failed:\n{out.stderr[-3000:]}")
    return results


def newest_emotion_run() -> Path:
    runs = sorted((ROOT / "outputs" / "runs").glob("*/model/classifier.json"), key=lambda p: p.stat().st_mtime)
    runs = [p.parents[1] for p in runs if json.loads(p.read_text())["label_names"][0] == "sadness"]
    if not runs:
        sys.exit(
            "error: no emotion run with a model/ under outputs/runs: train one with "
            "`make train ARGS=head.pooling=pooler` (pipeline() then loads the same network), or give RUN=<run dir>"
        )
    return runs[-1]


def check_run_folder(run_dir: Path) -> None:
    """Exit 2 with one line when the run's model/ folder names anything outside our registries (its head by key,
    no remote code), before any row loads it: the same check as predict.py, export.py and serve.py."""
    from emo_lightning.models.folder import read_spec
    from emo_lightning.utils.errors import ConfigError

    try:
        read_spec(run_dir / "model")
    except ConfigError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)


def ensure_export(run_dir: Path) -> dict:
    """The run's onnx/ parity report, exporting it (int8, else fp32) when there is none."""
    from emo_lightning.inference.parity import read_parity

    if read_parity(run_dir / "onnx") is None:
        for fmt in ("onnx-int8", "onnx"):
            print(f"exporting {run_dir} format={fmt} …", flush=True)
            done = subprocess.run(
                [sys.executable, "export.py", f"run_dir={run_dir}", f"format={fmt}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            print("  " + (done.stdout.strip() or done.stderr.strip()).replace("\n", "\n  "), flush=True)
            if done.returncode == 0:
                break
        else:
            sys.exit(f"error: the export of {run_dir} failed; see above")
    return read_parity(run_dir / "onnx")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_row(run_dir: Path, requests: int, concurrency: int) -> dict:
    """serve.py (backend=auto) on localhost under the load test's mix of valid and bad requests."""
    import httpx
    from load_test import run_load_test

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "serve.py", f"run_dir={run_dir}", f"port={port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
            if server.poll() is not None:
                raise RuntimeError(f"serve.py exited: {server.stderr.read()[-2000:]}")
        else:
            raise RuntimeError("serve.py did not answer /health within 120 s")
        return run_load_test(url, requests=requests, concurrency=concurrency, seed=0)
    finally:
        server.terminate()
        server.wait(timeout=60)


COLUMNS = ["row", "runs", "batch1_texts_per_s", "p50_ms", "p99_ms", "batch64_texts_per_s", "accuracy"]
COLUMNS += ["vs_pipeline_b1", "vs_pipeline_b64"]


def print_table(rows: list[dict], header: bool = True) -> None:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) + 1 for c in COLUMNS]
    if header:
        print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for r in rows:
        print(
            "  ".join(str("" if r.get(c) is None else r.get(c)).ljust(w) for c, w in zip(COLUMNS, widths)), flush=True
        )


def verdict(rows: dict[str, dict], amx: bool) -> list[str]:
    """The issue's bars: auto vs pipeline at batch 64 and 1, and auto's accuracy vs torch fp32."""
    auto, peer, fp32 = rows["auto"], rows["pipeline"], rows["torch-fp32"]
    bar64 = TARGETS["batch64_amx"] if amx else TARGETS["batch64"]
    ratio64 = auto["batch64_texts_per_s"] / peer["batch64_texts_per_s"]
    ratio1 = auto["batch1_texts_per_s"] / peer["batch1_texts_per_s"]
    points = abs(auto["accuracy"] - fp32["accuracy"]) * 100
    return [
        f"auto / pipeline at batch 64: {ratio64:.1f}× (bar {bar64:.0f}× {'with' if amx else 'without'} AMX): "
        + ("met" if ratio64 >= bar64 else "MISSED"),
        f"auto / pipeline at batch 1: {ratio1:.1f}× (bar {TARGETS['batch1']:.0f}×): "
        + ("met" if ratio1 >= TARGETS["batch1"] else "MISSED"),
        f"auto accuracy {auto['accuracy']:.4f} vs torch fp32 {fp32['accuracy']:.4f}: {points:.2f} pt "
        f"(bar {TARGETS['accuracy_points']} pt): " + ("met" if points <= TARGETS["accuracy_points"] else "MISSED"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a trained emotion run dir (default: the newest under outputs/runs)")
    parser.add_argument("--texts", type=int, default=None, help="only the first N test texts (default: all 2,000)")
    parser.add_argument("--requests", type=int, default=2000, help="requests of the service load test (0: none)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="16 texts, 24 requests, every row in one process")
    parser.add_argument("--row", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.row:  # in a child
        texts, gold = emotion_test(args.texts)
        for name in args.row:
            result = (
                pipeline_row(args.run, texts, gold) if name == "pipeline" else ours_row(name, args.run, texts, gold)
            )
            print("ROW " + json.dumps(result), flush=True)
        return
    if args.tiny:
        args.texts, args.requests, args.concurrency = 16, 24, 2

    import torch

    from emo_lightning.inference.parity import passed_backends
    from emo_lightning.utils.hardware import Hardware, inference_dtype, machine_id

    args.run = (args.run or newest_emotion_run()).resolve()
    check_run_folder(args.run)
    hw = Hardware.detect()
    print(f"machine: {machine_id()} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(f"run: {args.run}")
    parity = ensure_export(args.run)
    passed = passed_backends(parity)
    print(f"parity passed: {', '.join(passed)}; speeds measured at export: {parity.get('speeds', {}).get('auto')}\n")
    names = ["pipeline", "torch-fp32"]
    if inference_dtype("auto", hw, torch.device("cpu")) != torch.float32:
        names.append("torch-auto")
    names += [name for name in ("onnx", "onnx-int8") if name in passed]
    names += ["openvino"] if any(name.startswith("openvino-") for name in passed) else []
    names += ["auto"]
    rows = run_in_child(names, args) if args.tiny else []
    for i, name in enumerate(names):
        if not args.tiny:
            rows += run_in_child([name], args)
        print_table(rows[i : i + 1], header=i == 0)
    by_name = {r["row"]: r for r in rows}
    for r in rows:
        r["vs_pipeline_b1"] = round(r["batch1_texts_per_s"] / by_name["pipeline"]["batch1_texts_per_s"], 2)
        r["vs_pipeline_b64"] = round(r["batch64_texts_per_s"] / by_name["pipeline"]["batch64_texts_per_s"], 2)
    print()
    print_table(rows)
    lines = verdict(by_name, hw.amx)
    print("\n" + "\n".join(lines))
    service = None
    if args.requests:
        print(f"\nservice (serve.py, backend=auto): {args.requests} requests, concurrency {args.concurrency} …")
        service = service_row(args.run, args.requests, args.concurrency)
        print(json.dumps(service, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"infer_{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    report = {"machine": machine_id(), "run": str(args.run), "texts": len(emotion_test(args.texts)[0])}
    report |= {"rows": rows, "verdict": lines, "service": service, "parity": parity}
    path.write_text(json.dumps(report, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

"""data=files at 100,000 and 1,000,000 rows: peak memory, tokenization rows/s and the time to the first training
step, on a first run of a file (cold) and on a second run of the same file (warm: its cached tokenization reused).

    make bench-data                              # 100,000 and 1,000,000 rows, MiniLM's tokenizer and model
    python benchmarks/bench_data.py --rows 100000
    python benchmarks/bench_data.py --tiny       # 2,000 rows, a random-init tiny BERT (the suite's)

Each size: a CSV of tweet-length texts (seeded, drawn from a word list; 6 emotion labels, emotion's shares) is
written, then trained on twice, each run in a fresh process (`--child`) that takes train.py's own path
(`validate_config`, then `training.setup.set_up`: the datamodule, the model, the callbacks, the Trainer, then fit)
up to the first training batch, where a callback records the time and stops the process. Cold: a new tokenized
cache (`data.cache_dir`) and a new datasets cache (HF_DATASETS_CACHE: no arrow copy of the CSV from before);
warm: the same two folders again. Figures per run:

  first step s   from the process's start (Python and imports included) to the first training batch
  tokenize       rows / second of tokenization (cold), or the seconds the cache entry took to open (warm)
  peak RSS       the process's high-water mark of resident memory (`os.wait4`'s ru_maxrss), and that over the
                 size of the tokenized cache entry on disk (text, labels and the tokenizer's columns)

Printed as a table with the processor, and saved as JSON; the CSVs and caches are removed unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

SIZES = (100_000, 1_000_000)
TINY_ROWS = 2_000
# A random-init BERT of MiniLM's vocabulary, small enough that a run takes seconds: the suite's `--tiny` mode.
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
SHARES = [0.29, 0.335, 0.08, 0.135, 0.12, 0.04]  # dair-ai/emotion's training split
WORD_LIST = """
i im me my you your we our they it this that the a an and but so or if when because about just really very too
feel feeling felt am is was be been being have has had do did not no never always still even again now today
tonight day night week time life home work school friends family people world love like want need know think
little bit much more most all some every one thing things something nothing way back out up down over after
before around away here there what how why who going get got make made take give say said see look come went
happy glad joyful excited cheerful grateful proud amazing wonderful great good fine calm hopeful pleased lucky
sad lonely hopeless miserable depressed heartbroken hurt empty tired awful terrible bad gloomy unhappy lost
loving caring sweet tender passionate romantic fond devoted affectionate warm beloved adore cherish
angry mad furious annoyed irritated pissed bitter frustrated hateful rude cold jealous resentful outraged
afraid scared nervous anxious worried terrified frightened uneasy shaky helpless paranoid restless tense
surprised shocked amazed stunned curious weird strange impressed astonished overwhelmed speechless
"""
WORDS = WORD_LIST.split()


# ---------------------------------------------------------------- the data


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` rows of `text,label`: texts of 3..66 words, ~19 on average (tweet length), from a seeded word list."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.poisson(19, rows), 3, 66)
    words = np.array(WORDS, dtype=object)[rng.integers(0, len(WORDS), int(lengths.sum()))]
    labels = rng.choice(len(LABELS), rows, p=SHARES)
    ends = np.cumsum(lengths)
    with open(path, "w", encoding="utf-8") as out:
        out.write("text,label\n")
        for start, end, label in zip(ends - lengths, ends, labels):
            out.write(f"{' '.join(words[start:end])},{LABELS[label]}\n")


# ---------------------------------------------------------------- one run, in its own process


def child(spec: dict) -> None:
    """train.py's path (`validate_config`, `set_up`, fit) up to the first training batch; its record to spec["out"]."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    from hydra import compose, initialize_config_dir
    from lightning.pytorch.callbacks import Callback
    from omegaconf import open_dict

    from emo_lightning.data.token_cache import folder_bytes
    from emo_lightning.training.setup import set_up
    from emo_lightning.utils.config import validate_config

    imported_at, imported_rss_kib = time.time(), resident_kib()

    class FirstStep(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            at = time.time()
            use = run.datamodule.cache_use
            record = {
                "first_step_at": at,
                "imported_at": imported_at,
                "imported_rss_kib": imported_rss_kib,
                "set_up_peak_kib": set_up_peak_kib,
                "setup_s": round(set_up_done - set_up_start, 2),
                "cache_reused": use.reused,
                "rows": use.rows,
                "tokenize_s": round(use.seconds, 3),
                "entry_bytes": folder_bytes(use.folder),
                "batch_shape": list(batch["input_ids"].shape),
                "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
            Path(spec["out"]).write_text(json.dumps(record))
            sys.stdout.flush()
            os._exit(0)  # the first step is reached: nothing after it is measured

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=spec["overrides"])
    with open_dict(cfg):
        cfg.paths.output_dir = spec["run_dir"]
    validate_config(cfg)
    set_up_start = time.time()
    run = set_up(cfg, Path(spec["run_dir"]))
    set_up_done, set_up_peak_kib = time.time(), resident_kib("VmHWM")
    run.trainer.callbacks.append(FirstStep())
    run.trainer.fit(run.module, datamodule=run.datamodule)
    raise SystemExit("fit ended before its first training batch")


def resident_kib(field: str = "VmRSS") -> int:
    """This process's resident memory now (VmRSS) or its high-water mark so far (VmHWM), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def timed_run(csv: Path, scratch: Path, name: str, args) -> dict:
    """One child run on `csv`, with the tokenized and datasets caches under `scratch`; its figures."""
    overrides = [
        "data=files",
        f"data.train_file={csv}",
        "data.label_column=label",
        f"data.cache_dir={scratch / 'tokenized'}",
        "logger=none",
        "plots=none",
        "trainer.max_steps=1",
        "trainer.accelerator=cpu" if args.cpu else "trainer.accelerator=auto",
    ]
    if args.tiny:
        sizes = ",".join(f"{k}:{v}" for k, v in TINY_MODEL.items())
        overrides += ["model.pretrained=false", f"model.config_overrides={{{sizes}}}"]
    overrides += args.set
    record_path = scratch / f"{name}.json"
    spec = {"overrides": overrides, "run_dir": str(scratch / f"run-{name}"), "out": str(record_path)}
    env = os.environ | {"HF_DATASETS_CACHE": str(scratch / "hf-datasets")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("WANDB_MODE", "offline")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    started = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = proc.stdout.read().splitlines()  # until the child exits (it stops at its first training batch)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not record_path.is_file():
        raise RuntimeError(f"{name} run failed (exit {proc.returncode}):\n" + "\n".join(lines[-40:]))
    record = json.loads(record_path.read_text())
    said = [line.split(": ", 1)[-1] for line in lines if "tokenized splits reused from" in line or "cached at" in line]
    return {
        "run": name,
        "first_step_s": round(record["first_step_at"] - started, 2),
        "imports_s": round(record["imported_at"] - started, 2),
        "setup_s": record["setup_s"],
        "cache_reused": record["cache_reused"],
        "cache_line": said[0] if said else None,
        "tokenize_s": record["tokenize_s"],
        "tokenize_rows_per_s": None if record["cache_reused"] else round(record["rows"] / record["tokenize_s"]),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "imports_rss_mib": round(record["imported_rss_kib"] / 1024, 1),
        "set_up_peak_rss_mib": round(record["set_up_peak_kib"] / 1024, 1),  # data, model, Trainer: before fit
        "entry_mib": round(record["entry_bytes"] / 2**20, 1),
        "batch_shape": record["batch_shape"],
    }


# ---------------------------------------------------------------- the table


def measure(rows: int, out_dir: Path, args) -> dict:
    scratch = out_dir / f"rows-{rows}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    csv = scratch / f"emotions_{rows}.csv"
    start = time.perf_counter()
    write_csv(csv, rows)
    print(f"{rows:,} rows: wrote {csv} ({csv.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s")
    runs = []
    for name in ("cold", "warm"):
        runs.append(timed_run(csv, scratch, name, args))
        run = runs[-1]
        print(
            f"  {name}: first step at {run['first_step_s']} s (set_up {run['setup_s']} s); peak RSS "
            f"{run['peak_rss_mib']} MiB ({run['set_up_peak_rss_mib']} by the end of set_up)\n    {run['cache_line']}"
        )
    entry = runs[0]["entry_mib"]
    for run in runs:
        run["peak_over_entry"] = round(run["peak_rss_mib"] / entry, 1)
        run["above_imports_over_entry"] = round((run["peak_rss_mib"] - run["imports_rss_mib"]) / entry, 1)
    result = {"rows": rows, "file_mib": round(csv.stat().st_size / 2**20, 1), "entry_mib": entry, "runs": runs}
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def table(results: list[dict]) -> str:
    lines = [
        "| rows | file MiB | tokenized MiB on disk | run | time to first step (of it imports) | tokenization "
        "| peak RSS MiB (after imports) | peak RSS ÷ tokenized | (peak − after imports) ÷ tokenized |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for run in result["runs"]:
            tokenize = (
                f"reused ({run['tokenize_s']:.2f} s to open)"
                if run["cache_reused"]
                else f"{run['tokenize_rows_per_s']:,} rows/s ({run['tokenize_s']:.1f} s)"
            )
            lines.append(
                f"| {result['rows']:,} | {result['file_mib']} | {result['entry_mib']} | {run['run']} "
                f"| {run['first_step_s']:.1f} s ({run['imports_s']:.1f} s) | {tokenize} "
                f"| {run['peak_rss_mib']:,.0f} ({run['imports_rss_mib']:,.0f}) | {run['peak_over_entry']}× "
                f"| {run['above_imports_over_entry']}× |"
            )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES), help="file sizes (rows) to measure")
    parser.add_argument("--tiny", action="store_true", help=f"{TINY_ROWS:,} rows, a random-init tiny BERT")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even where there is a GPU")
    parser.add_argument("--set", nargs="*", default=[], help="extra train.py overrides (e.g. data.max_length=64)")
    parser.add_argument("--keep", action="store_true", help="keep the CSVs and caches under --out")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    if args.tiny:
        args.rows = [TINY_ROWS]
    os.environ.setdefault("EMO_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
    from machine import processor_name

    stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    out_dir = args.out / f"data_{stamp}"
    print(f"processor: {processor_name()} ({os.cpu_count()} cores)")
    results = [measure(rows, out_dir, args) for rows in args.rows]
    print("\n" + table(results))
    record = {"processor": processor_name(), "tiny": args.tiny, "overrides": args.set, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"data_{stamp}.json"
    path.write_text(json.dumps(record, indent=2))
    if not args.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"saved {path}")


if __name__ == "__main__":
    main()

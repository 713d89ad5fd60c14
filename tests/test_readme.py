"""Every command in README.md's fenced blocks, run as a user would on a fresh machine with only the mirror.

Each command runs as a child process in a folder of its own that holds the user's files the README names
(`train.csv`, `posts.csv`, …); `outputs/runs/<run>` and friends are a tiny run trained here; the options that
make it fast (the tiny model and mirror) are appended to what the README wrote. A command whose README comment
says `(needs …)` (the Hub, GPUs, a SLURM cluster) is skipped with that reason, as are the commands this suite
itself runs in (`make install`, `make test…`). Sweeps and the longer analyses are `slow`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, SHARED, require_shared
from tests.helpers import EMOTIONS, emotion_text

README = ROOT / "README.md"
SCRIPTS = ("train.py", "predict.py", "evaluate.py", "export.py", "serve.py", "analyze.py")
NEEDS = re.compile(r"\(needs ([^)]+)\)")
SERVING = re.compile(r"serving on (http://\S+)")
# the suite's own environment: CI builds it from scratch and runs these (.ci/run)
SUITE = {
    "make install": "make install builds the environment this suite runs in (.ci/run does it from scratch)",
    "make test": "this suite itself (.ci/run runs it on a fresh clone)",
    "make test-all": "this suite with its slow tests (the slow tests of this file are among them)",
    "make test-precision": "the precision tests of this suite (.ci/run runs them)",
}
# Slow: several trainings (sweeps), frozen-encoder features, and what a faster test of this file already runs
# (plain train.py is make train; the other file formats, int8, random init are data=files csv, onnx, the tiny model)
SLOW = (
    " -m ",
    "task=baseline",
    "task=umap",
    "resume=",
    ".venv/bin/python train.py$",
    "model.pretrained=false",
    "train_file=train.txt",
    "train_file=train.parquet",
    "format=onnx-int8",
)


@dataclass(frozen=True)
class Command:
    """One command of the README: its line, its text (continuations joined, comment removed) and its comment."""

    line: int
    text: str
    comment: str

    @property
    def needs(self) -> str | None:
        found = NEEDS.search(self.comment)
        return found.group(1) if found else None

    def parts(self) -> list[list[str]]:
        """The command's argument lists, split at `&&`."""
        parts, current = [], []
        for word in shlex.split(self.text):
            if word == "&&":
                parts.append(current)
                current = []
            else:
                current.append(word)
        return [*parts, current]


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: the comment starts at a `#` outside quotes after a space."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def readme_commands(text: str) -> list[Command]:
    """The commands of the fenced bash blocks; a line ending in `\\` continues on the next."""
    commands, block, pending = [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
            assert block in (None, "bash"), f"README.md:{number}: a ```{block} block (this test runs bash blocks)"
            continue
        if block is None:
            continue
        code, comment = split_comment(line)
        if pending:
            start, text_so_far, comments = pending
            code, comment = text_so_far + " " + code.strip(), " ".join(filter(None, [comments, comment]))
        else:
            start = number
        if not code.strip():
            continue  # a comment line of its own (e.g. the second line of `make test`'s note)
        if code.endswith("\\"):
            pending = (start, code[:-1].rstrip(), comment)
            continue
        pending = None
        commands.append(Command(start, code.strip(), comment))
    return commands


COMMANDS = readme_commands(README.read_text())


def param(command: Command):
    marks = (
        [pytest.mark.slow] if any(re.search(re.escape(word).replace(r"\$", "$"), command.text) for word in SLOW) else []
    )
    return pytest.param(command, marks=marks, id=f"L{command.line}:{command.text[:60]}")


def test_the_readme_parser_reads_continuations_comments_and_quotes():
    text = "x\n```bash\na 'b # c' \\\n  d   # one\n# alone\ne && f '#x'  # two (needs the Hub)\n```\n"
    assert readme_commands(text) == [Command(3, "a 'b # c' d", "one"), Command(6, "e && f '#x'", "two (needs the Hub)")]
    assert readme_commands(text)[1].needs == "the Hub" and readme_commands(text)[1].parts() == [["e"], ["f", "#x"]]
    assert len(COMMANDS) >= 30 and any(c.text.startswith("make install && make train") for c in COMMANDS)


# ---- what the commands find on the machine: the user's files, a finished run, a finished sweep ----


def write_user_files(folder: Path) -> None:
    """The files the README trains and predicts on, in the layouts it describes."""
    rng = random.Random(0)
    labels = [EMOTIONS[i % len(EMOTIONS)] for i in range(48)]
    texts = [emotion_text(label, rng) for label in labels]
    pd.DataFrame({"text": texts, "emotion": labels}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"text": texts[:24], "emotion": labels[:24]}).to_csv(folder / "test.csv", index=False)
    (folder / "train.txt").write_text("".join(f"{t};{y}\n" for t, y in zip(texts, labels)))
    (folder / "val.txt").write_text("".join(f"{t};{y}\n" for t, y in zip(texts[:18], labels[:18])))
    columns = {name: [int(label == name or i % 5 == 0) for i, label in enumerate(labels)] for name in ("anger", "joy")}
    columns["fear"] = [int(label == "fear" or i % 3 == 0) for i, label in enumerate(labels)]
    pd.DataFrame({"text": texts, **columns}).to_parquet(folder / "train.parquet")
    pd.DataFrame({"body": texts[:6], "id": range(6)}).to_csv(folder / "posts.csv", index=False)
    pd.DataFrame({"text": texts[:12], "label": labels[:12]}).to_csv(folder / "theirs.csv", index=False)


def fast_train_args(tiny_models, tiny_mirror, command: Command | None) -> list[str]:
    """What makes a README training command fast: the tiny mirror, and the tiny model unless it builds its own."""
    text = command.text if command else ""
    tiny_model = f"model.pretrained_model_name_or_path={tiny_models['bert']}"
    return [
        *([] if "model.pretrained=false" in text else [tiny_model]),
        f"paths.data_dir={tiny_mirror}",
        "data.batch_size=8",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "callbacks.progress_bar.refresh_rate=0",
        "plots=none",
        *(["hydra.sweeper.n_trials=2"] if "hparams_search=" in text else []),
    ]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_models, tiny_mirror) -> Path:
    """`outputs/runs/<run>`: a tiny finished emotion run, as `python train.py` leaves it."""
    root = tmp_path_factory.mktemp("finished")
    command = [*fast_train_args(tiny_models, tiny_mirror, None), f"hydra.run.dir={root}/run"]
    run_part([sys.executable, str(ROOT / "train.py"), *command], root)
    return root / "run"


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, tiny_models, tiny_mirror) -> Path:
    """`outputs/multirun/<time>`: a finished 2-job sweep."""
    root = tmp_path_factory.mktemp("sweep")
    command = ["-m", "loss=ce,focal", *fast_train_args(tiny_models, tiny_mirror, None), f"hydra.sweep.dir={root}/sweep"]
    run_part([sys.executable, str(ROOT / "train.py"), *command], root)
    return root / "sweep"


def child_env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_SILENT": "true"}
    if (SHARED / "models").is_dir():  # as the Makefile does: the mirror beside the checkout
        env.setdefault("EMO_MODEL_DIR", str(SHARED / "models"))
    return env


PLACEHOLDERS = {"outputs/runs/<run>": "run", "outputs/runs/<time>": "run", "outputs/multirun/<time>": "sweep"}


def fill_placeholders(words: list[str], request: pytest.FixtureRequest, work: Path) -> list[str]:
    """`outputs/runs/<run>` / `<time>` → a copy of the finished run (commands may add to it); the sweep likewise."""
    filled = []
    for word in words:
        for placeholder, which in PLACEHOLDERS.items():
            if placeholder in word:
                copy = work / which
                if not copy.exists():
                    shutil.copytree(request.getfixturevalue(f"finished_{which}"), copy)
                word = word.replace(placeholder, str(copy))
        assert not re.search(r"<[a-z]+>", word), f"a README placeholder this test does not fill: {word}"
        filled.append(word)
    return filled


def as_run(words: list[str], command: Command, tiny_models, tiny_mirror, work: Path) -> list[str]:
    """The argument list to run for one part of a README command (scripts by path, fast options appended)."""
    if words[0] == ".venv/bin/python":
        words = [sys.executable, *words[1:]]
        script = words[1] if len(words) > 1 else ""
        if script in SCRIPTS:
            words[1] = str(ROOT / script)
        if script == "train.py" and "--help" not in words and not any(w.startswith("resume=") for w in words):
            words += unset_by(words, fast_train_args(tiny_models, tiny_mirror, command))  # resume: the run's own
        if script == "analyze.py":
            words += [f"paths.data_dir={tiny_mirror}", f"model.pretrained_model_name_or_path={tiny_models['bert']}"]
        if script == "serve.py":
            words += ["port=0"]
        if script == "evaluate.py":
            words += [f"paths.data_dir={tiny_mirror}"]
    elif words[:2] == ["make", "train"]:
        args = [*fast_train_args(tiny_models, tiny_mirror, command), f"hydra.run.dir={work}/outputs/runs/make-train"]
        assert len(words) == 2, f"make train with arguments: {words}"
        words = ["make", "-C", str(ROOT), "train", f"PY={sys.executable}", f"ARGS={shlex.join(args)}"]
    elif words[:2] == ["make", "lint"]:
        words = ["make", "-C", str(ROOT), "lint", f"PY={sys.executable}"]
    return words


def unset_by(words: list[str], overrides: list[str]) -> list[str]:
    """The overrides whose keys the command does not set itself (its own values win)."""
    keys = {word.split("=", 1)[0].lstrip("+~") for word in words if "=" in word}
    return [override for override in overrides if override.split("=", 1)[0] not in keys]


def run_part(words: list[str], work: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(words, cwd=work, env=child_env(), capture_output=True, text=True, timeout=900)
    shown = shlex.join(words)
    assert result.returncode == 0, f"{shown}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stdout + result.stderr, f"{shown}\n{result.stderr[-4000:]}"
    return result


def last_step(run_dir: Path) -> int:
    import torch

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return checkpoint["global_step"]


class Service:
    """The README's serve.py command as a child process, until `stop` sends it SIGTERM."""

    def __init__(self, words: list[str], work: Path) -> None:
        self.log = work / "serve.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(words, cwd=work, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (found := SERVING.search(self.log.read_text())):
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)
        self.url = found.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def written_metrics(work: Path) -> dict[Path, int]:
    """Every metrics.json below `work`, with when it was last written."""
    return {path: path.stat().st_mtime_ns for path in work.rglob("metrics.json")}


def check_outcome(words: list[str], result: subprocess.CompletedProcess, work: Path, before: dict) -> None:
    """A sign the command did its job, beyond exit code 0 (`before`: `written_metrics` before it ran)."""
    output = result.stdout + result.stderr
    if "--help" in words:
        assert "python " in result.stdout and "default" in result.stdout.lower(), result.stdout[:2000]
    elif "train.py" in " ".join(words) or "train" in words[3:4]:
        # a training command finishes a run: a new metrics.json, or the continued run's rewritten
        assert written_metrics(work).items() - before.items(), output[-3000:]
    elif words[1:3] == ["-m", "emo_lightning.sweeps"]:
        assert "loss=ce" in result.stdout and "loss=focal" in result.stdout, output[-3000:]  # both jobs summarized
    elif words[1:2] and words[1].endswith("predict.py"):
        assert "input_file=posts.csv" not in words or (work / "posts.predictions.csv").exists()
        assert "input_file=posts.csv" in words or re.search(r"\b(" + "|".join(EMOTIONS) + r")\b", result.stdout)
    elif words[1:2] and words[1].endswith("evaluate.py"):
        assert list((work / "outputs" / "evaluate").glob("*/summary.md")), output[-3000:]
    elif words[1:2] and words[1].endswith("export.py"):
        assert json.loads((work / "run" / "onnx" / "parity.json").read_text())
    elif words[1:2] and words[1].endswith("analyze.py"):
        assert list((work / "outputs" / "analysis").rglob("*.png")) or list((work / "outputs").rglob("*.md")), output


def ask_the_readme_service(command: Command, words: list[str], work: Path, tiny_models, tiny_mirror, request) -> None:
    """`curl localhost:8000/…` against the README's serve.py command just before it (on a free port)."""
    serve = [c for c in COMMANDS if c.line < command.line and "serve.py" in c.text][-1]
    serve_words = as_run(fill_placeholders(serve.parts()[0], request, work), serve, tiny_models, tiny_mirror, work)
    service = Service(serve_words, work)
    try:
        address = service.url.removeprefix("http://")
        result = run_part([word.replace("localhost:8000", address) for word in words], work)
    finally:
        assert service.stop() == 0, service.log.read_text()[-3000:]
    answer = json.loads(result.stdout)
    assert answer and set(EMOTIONS) <= set(json.dumps(answer).replace('"', " ").split()), answer


@pytest.mark.parametrize("command", [param(c) for c in COMMANDS])
def test_readme_command(command: Command, tmp_path, tiny_models, tiny_mirror, request):
    if command.needs:
        pytest.skip(f"README.md:{command.line} needs {command.needs}")
    parts = [words for words in command.parts() if " ".join(words) != "make install"]
    own = [SUITE[" ".join(words)] for words in parts if " ".join(words) in SUITE]
    if own or not parts:
        pytest.skip(f"README.md:{command.line}: {own[0] if own else SUITE['make install']}")
    if "model.pretrained=false" in command.text:
        require_shared("models")  # its tokenizer is the mirror's MiniLM
    work = tmp_path / "work"
    work.mkdir()
    write_user_files(work)
    for words in parts:
        words = as_run(fill_placeholders(words, request, work), command, tiny_models, tiny_mirror, work)
        if words[0] == "curl":
            ask_the_readme_service(command, words, work, tiny_models, tiny_mirror, request)
            continue
        if words[1:2] and words[1].endswith("serve.py"):
            service = Service(words, work)
            health = subprocess.run(["curl", "-sf", f"{service.url}/health"], capture_output=True, text=True)
            assert service.stop() == 0 and json.loads(health.stdout)["status"] == "ok", service.log.read_text()
            continue
        resumed = any(word.startswith("resume=") for word in words)
        steps = last_step(work / "run") if resumed else None
        before = written_metrics(work)
        check_outcome(words, run_part(words, work), work, before)
        if resumed and any(word.startswith("trainer.max_epochs=") for word in words):
            assert last_step(work / "run") > steps  # trained on, in its own folder (until early stopping)

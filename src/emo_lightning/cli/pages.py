"""The `--help` page of each command (`python train.py` in a clone, `emo-train` once installed), rendered by
`emo_lightning.cli.help` from the package's conf/."""

from __future__ import annotations

import sys
from pathlib import Path

from emo_lightning.cli.help import HelpPage, exit_with_help_if_asked, group_settings_lines, render

RUN_OUTPUTS = [
    "outputs/runs/<time>/: checkpoints/ (best and last), metrics.json, model/ (a transformers folder: predict, serve,",
    "  pipeline()), predictions/val.csv and test.csv, errors.csv (highest loss first), plots/*.png, train.log",
    "outputs/multirun/<time>/<job number>/: the same per job of a sweep (-m), and summary.md / summary.png",
]

PAGES = {
    "train.py": lambda conf: HelpPage(
        "train.py",
        "train",
        "fine-tune a transformer encoder to read emotions in text (MiniLM on dair-ai/emotion by default).",
        [
            ("python train.py", "MiniLM-L6 on dair-ai/emotion, the defaults"),
            ("python train.py data=go_emotions model=distilbert", "another dataset and backbone"),
            ("python train.py experiment=sem_eval_2018_minilm", "a tuned preset (conf/experiment/)"),
            ("python train.py data=files data.train_file=my.csv data.label_column=emotion", "your own file"),
            ("python train.py -m loss=bce,focal head=linear,mlp data=go_emotions", "a sweep: 4 runs"),
            ("python train.py resume=outputs/runs/<time>", "continue a run that stopped"),
            ("python train.py experiment=emotion_minilm tune=lr_find", "lr finder: the rate to use"),
        ],
        {
            "Train on your own file (data=files; CSV, TSV, TXT, JSON, JSONL or parquet)": group_settings_lines(
                conf, "data", "files"
            ),
            "Outputs": RUN_OUTPUTS,
        },
    ),
    "predict.py": lambda conf: HelpPage(
        "predict.py",
        "predict",
        "predict the emotions of new texts with a trained run (its model/ folder alone; no training code).",
        [
            ('python predict.py run_dir=outputs/runs/<time> text="i miss my friends"', "one text"),
            ('python predict.py run_dir=outputs/runs/<time> texts=\'["so happy","so sad"]\'', "several texts"),
            ("python predict.py run_dir=outputs/runs/<time> input_file=posts.csv", "a file → posts.predictions.csv"),
            ('python predict.py run_dir=outputs/runs/<time> text="..." top_k=3', "only the 3 best labels"),
            ('python predict.py run_dir=outputs/runs/<time> text="..." backend=onnx-int8', "after export.py"),
        ],
        {"Outputs": ["text(s): printed; input_file: <input stem>.predictions.<suffix> beside it (or output_file)"]},
    ),
    "analyze.py": lambda conf: HelpPage(
        "analyze.py",
        "analyze",
        "look at a dataset (explore, baseline, umap) or at a finished run (errors, report).",
        [
            ("python analyze.py task=explore data=go_emotions", "labels, lengths, co-occurrence, duplicates"),
            ("python analyze.py task=baseline data=emotion", "frozen features + logistic regression vs a dummy"),
            ("python analyze.py task=umap data=sem_eval_2018", "a 2-D map of frozen features, a panel per label"),
            ("python analyze.py task=errors run_dir=outputs/runs/<time> errors.split=train", "a run's errors"),
            ("python analyze.py task=report run_dir=outputs/runs/<time>", "report.md beside published results"),
        ],
        {"Outputs": ["outputs/analysis/<task>/<data or run folder>_<time>/: figures, summary.md (docs/ANALYSIS.md)"]},
    ),
    "evaluate.py": lambda conf: HelpPage(
        "evaluate.py",
        "evaluate",
        "score a trained run on any labelled data: a dataset we know, or your own file (labels matched by name).",
        [
            ("python evaluate.py run_dir=outputs/runs/<time> data=go_emotions", "the test split of a dataset"),
            (
                "python evaluate.py run_dir=outputs/runs/<time> data=files data.test_file=theirs.csv "
                "data.label_column=label",
                "your own file",
            ),
            (
                "python evaluate.py run_dir=outputs/runs/<time> data=files data.test_file=… labels.missing=restrict",
                "a file with fewer labels than the model",
            ),
        ],
        {
            "Outputs": [
                "outputs/evaluate/<run folder>_<data>_<time>/: metrics.json (the run's metric names), per-label F1,",
                "  predictions/<split>.csv, summary.md (with the published anchors for a dataset we know)",
            ]
        },
    ),
    "export.py": lambda conf: HelpPage(
        "export.py",
        "export",
        "export a trained run to ONNX (fp32, and dynamic int8 with format=onnx-int8), checked against PyTorch.",
        [
            ("python export.py run_dir=outputs/runs/<time>", "ONNX fp32 with parity checks"),
            ("python export.py run_dir=outputs/runs/<time> format=onnx-int8", "also int8, if it keeps decisions"),
        ],
        {"Outputs": ["<run>/onnx/: model.onnx (model.int8.onnx), parity.json with the checks and measured speeds"]},
    ),
    "serve.py": lambda conf: HelpPage(
        "serve.py",
        "serve",
        "serve a trained run over HTTP: POST /predict, GET /health and /labels, a demo page at /, docs at /docs.",
        [
            ("python serve.py run_dir=outputs/runs/<time>", "http://127.0.0.1:8000"),
            ("python serve.py run_dir=outputs/runs/<time> port=0", "any free port (the log line says which)"),
            ("python serve.py run_dir=outputs/runs/<time> backend=onnx-int8", "after export.py format=onnx-int8"),
            (
                "EMO_API_KEY=<key> python serve.py run_dir=outputs/runs/<time> host=0.0.0.0",
                "for other machines; they send the key",
            ),
        ],
        {
            "API key": [
                "set in the variable named by api_key_env (EMO_API_KEY), never in a file: /predict and /labels then",
                "need Authorization: Bearer <key> (/health, / and /docs stay open); a host other than 127.0.0.1, ::1",
                "or localhost needs the key, or allow_unauthenticated=true",
            ],
            "More": ["docs/SERVE.md: the endpoints, limits and their errors, the API key, batching, shutdown"],
        },
    ),
}


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # the configs every command composes, shipped in the package


def help_text(script: str, conf_dir: str | Path = CONF_DIR, command: str | None = None) -> str:
    """The rendered `--help` page of `script` (e.g. "train.py"); `command`: the installed name shown instead."""
    conf = Path(conf_dir)
    return render(PAGES[script](conf), conf, command)


def help_on_request(script: str) -> None:
    """Before Hydra parses the command line: print the page and exit 0 for --help / -h (Hydra's: --hydra-help).
    Run as an installed command (emo-train), the page names that command; as a file (train.py), `python train.py`."""
    program = Path(sys.argv[0]).name
    command = None if program.endswith(".py") else program
    exit_with_help_if_asked(lambda: help_text(script, CONF_DIR, command))

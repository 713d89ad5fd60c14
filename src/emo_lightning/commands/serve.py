"""`emo-serve` / `python serve.py`: serve a trained run over HTTP, e.g.
`python serve.py run_dir=outputs/runs/<run>` → http://127.0.0.1:8000

POST /predict {"text": "..."} or {"texts": [...]}; GET /health, /labels, / (a demo page), /docs. See docs/SERVE.md.
With EMO_API_KEY set, /predict and /labels need `Authorization: Bearer <key>`; a non-loopback host needs the key.
"""

import logging

import hydra
from omegaconf import DictConfig

log = logging.getLogger("emo_lightning.serve")


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    # imported after Hydra parsed the command line: settings and the port are checked before torch loads
    from emo_lightning.cli.runner import exit_on_bad_input
    from emo_lightning.serving.settings import ServeSettings, bind_socket

    with exit_on_bad_input():  # one line and exit 2 for bad input, before anything serves
        run_dir = cfg.run_dir
        settings = ServeSettings.from_cfg(cfg)  # reads the API key from the environment (api_key_env)
        sock = bind_socket(settings.host, settings.port)
        from emo_lightning.inference.predictor import EmotionPredictor
        from emo_lightning.serving.app import create_app

        predictor = EmotionPredictor.from_run(
            run_dir, settings.batch_size, settings.precision, settings.threshold, backend=settings.backend
        )
    for size in sorted({1, settings.max_batch_size}):  # opens the backend of each batch size, builds its kernels
        predictor.predict_proba(["warm-up"] * size)
    app = create_app(
        predictor,
        predictor.model_dir,
        settings.limits,
        settings.max_batch_size,
        settings.batch_timeout,
        api_key=settings.api_key,
    )
    from emo_lightning.serving.server import run_server

    labels = len(predictor.spec.label_names)
    announce = f"({predictor.backend.name}, {labels} labels; {settings.access()}; demo page at /, API docs at /docs)"
    stopped_by = run_server(app, sock, settings.shutdown_timeout, settings.access_log, announce)
    counts = app.state.batcher.counts
    log.info(
        "stopped%s: %d requests answered, %d texts in %d batches",
        f" on {stopped_by}" if stopped_by else "",
        counts.requests,
        counts.texts,
        counts.batches,
    )


def run() -> None:
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request("serve.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(main)

"""serve.py over real HTTP: a real server process on a tiny model folder, answered by the one inference path."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.load_test import run_load_test
from emo_lightning.inference.predictor import EmotionPredictor
from tests.test_predict_files import LABELS, model_dir

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["i am so furious, really", "what a lovely day", "i miss you", "ok"]
LIMITS = ["limits.max_body_bytes=4096", "limits.max_texts=8", "limits.max_text_chars=200"]
SERVING = re.compile(r"serving on (http://\S+)")


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without an API key of the shell (serve.py reads EMO_API_KEY), plus `extra`."""
    env = {name: value for name, value in os.environ.items() if name != "EMO_API_KEY"}
    return {**env, **extra}


class Server:
    """`python serve.py run_dir=<folder> port=0 …` as a child process, its output in a log file."""

    def __init__(self, log: Path, *overrides: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "serve.py", "port=0", *overrides],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env or server_env(),
            )
        self.url = self.wait_ready()

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve.py exited {self.process.returncode} before serving:\n{self.output()}")
            found = SERVING.search(self.output())
            if found:
                try:
                    httpx.get(f"{found.group(1)}/health", timeout=5).raise_for_status()
                    return found.group(1)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"serve.py did not answer within {timeout} s:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_models) -> Path:
    return model_dir(tmp_path_factory.mktemp("serve") / "model", tiny_models, multi_label=True)


@pytest.fixture(scope="module")
def server(folder, tmp_path_factory):
    options = ["backend=torch", "precision=fp32", "max_batch_size=16", "batch_timeout=0.05", *LIMITS]
    server = Server(tmp_path_factory.mktemp("log") / "serve.log", f"run_dir={folder}", *options)
    yield server
    assert server.stop() == 0, server.output()


def test_health_labels_docs_and_page(server, folder):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True and health["backend"] == "torch-fp32"
    labels = httpx.get(f"{server.url}/labels").json()
    assert labels["labels"] == LABELS and labels["multi_label"] is True and labels["max_length"] == 32
    assert labels["thresholds"] == {name: 0.5 for name in LABELS} and labels["backend"] == "torch-fp32"
    assert labels["model"]["dir"] == str(folder) and labels["model"]["head"] == "linear"
    assert labels["model"]["encoder"] == "bert" and labels["model"]["parameters"] > 0
    assert labels["limits"] == {"max_body_bytes": 4096, "max_texts": 8, "max_text_chars": 200, "max_batch_size": 16}
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/predict", "/health", "/labels"} <= set(schema["paths"])
    assert "securitySchemes" not in schema.get("components", {})  # no key: nothing to authorize
    assert "no API key: set EMO_API_KEY to require one" in server.output()
    assert "text" in json.dumps(schema["paths"]["/predict"]["post"]["requestBody"])
    docs = httpx.get(f"{server.url}/docs").text
    assert "swagger" in docs.lower() and "cdn" not in docs  # Swagger UI's files come from this server
    assert httpx.get(f"{server.url}/docs-assets/swagger-ui-bundle.js").status_code == 200
    page = httpx.get(f"{server.url}/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<textarea" in page.text and "/predict" in page.text and "://" not in page.text  # no external URL


def test_scores_equal_the_predictor(server, folder):
    expected = EmotionPredictor(folder, precision="fp32", backend="torch").predict(TEXTS)
    answer = httpx.post(f"{server.url}/predict", json={"texts": TEXTS}).json()
    assert answer["backend"] == "torch-fp32" and len(answer["predictions"]) == len(TEXTS)
    for got, want in zip(answer["predictions"], expected):
        assert got["text"] == want.text and got["labels"] == want.labels
        assert list(got["scores"]) == [name for name, _ in want.scores]  # best first
        assert list(got["scores"].values()) == pytest.approx([prob for _, prob in want.scores], abs=1e-5)
    single = httpx.post(f"{server.url}/predict", json={"text": TEXTS[2]}).json()["predictions"]
    assert len(single) == 1 and single[0]["scores"] == pytest.approx(answer["predictions"][2]["scores"], abs=1e-5)


BAD_REQUESTS = [  # (body, status, code, words the message must hold)
    (b'{"text": "i am', 400, "malformed_json", "not valid JSON"),
    (b"", 400, "malformed_json", "body is empty"),
    (b"\xff\xfe{}", 400, "malformed_json", "not UTF-8"),
    (b"[" * 5000 + b"]" * 5000, 413, "body_too_large", "limits.max_body_bytes=4096"),
    (b"[" * 2000 + b"]" * 2000, 400, "malformed_json", "nested too deeply"),
    (json.dumps({"text": "a" * 5000}).encode(), 413, "body_too_large", "limits.max_body_bytes=4096"),
    (json.dumps({"text": "a" * 201}).encode(), 422, "text_too_long", "limits.max_text_chars=200"),
    (json.dumps({"texts": ["a"] * 9}).encode(), 422, "too_many_texts", "limits.max_texts=8"),
    (json.dumps({"text": ""}).encode(), 422, "empty_text", "text is empty"),
    (json.dumps({"texts": ["fine", "  "]}).encode(), 422, "empty_text", "texts[1] is empty"),
    (json.dumps({"texts": []}).encode(), 422, "empty_list", "texts is an empty array"),
    (json.dumps({"text": 42}).encode(), 422, "wrong_type", "text is a number, not a string"),
    (json.dumps({"text": None}).encode(), 422, "wrong_type", "text is null, not a string"),
    (json.dumps({"texts": "one"}).encode(), 422, "wrong_type", "texts is a string, not an array"),
    (json.dumps({"texts": ["a", ["b"]]}).encode(), 422, "wrong_type", "texts[1] is an array, not a string"),
    (json.dumps({"text": "\ud800"}).encode(), 422, "wrong_type", "unpaired surrogate"),
    (json.dumps([1, 2]).encode(), 422, "wrong_type", "the request body is an array"),
    (json.dumps({}).encode(), 422, "missing_field", "neither text nor texts"),
    (json.dumps({"text": "a", "texts": ["b"]}).encode(), 422, "missing_field", "both text and texts"),
    (json.dumps({"txt": "a"}).encode(), 422, "unknown_field", '"txt" is not a field'),
]


@pytest.mark.parametrize(("body", "status", "code", "words"), BAD_REQUESTS, ids=[r[2] for r in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_with_a_one_line_message(server, body, status, code, words):
    response = httpx.post(f"{server.url}/predict", content=body, headers={"Content-Type": "application/json"})
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (status, code)
    assert words in error["message"] and "\n" not in error["message"] and ": " in error["message"]  # problem: fix
    assert "Traceback" not in response.text


def test_a_chunked_body_over_the_limit_and_unknown_routes_are_4xx(server):
    chunks = (b'{"text": "' + b"a" * 1000 for _ in range(8))  # no Content-Length: counted while read
    response = httpx.post(f"{server.url}/predict", content=chunks)
    assert response.status_code == 413 and "limits.max_body_bytes=4096" in response.json()["error"]["message"]
    missing = httpx.get(f"{server.url}/nowhere")
    assert missing.status_code == 404 and "POST /predict" in missing.json()["error"]["message"]
    wrong_method = httpx.get(f"{server.url}/predict")
    assert wrong_method.status_code == 405 and "GET is not allowed" in wrong_method.json()["error"]["message"]


def test_concurrent_requests_are_batched(server):
    before = httpx.get(f"{server.url}/health").json()
    start = threading.Barrier(12)
    answers = []

    def ask(i: int) -> None:
        start.wait()
        answers.append(httpx.post(f"{server.url}/predict", json={"text": f"{TEXTS[i % 4]} {i}"}, timeout=30))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = httpx.get(f"{server.url}/health").json()
    assert [a.status_code for a in answers] == [200] * 12
    assert after["requests"] - before["requests"] == 12 and after["texts"] - before["texts"] == 12
    assert after["batches"] - before["batches"] < 12 and after["largest_batch"] > 1


def test_load_test_sees_no_5xx(server):
    report = run_load_test(server.url, requests=200, concurrency=8, seed=0)
    assert report["server_errors"] == 0 and report["problems"] == 0, report["problem_examples"]
    assert report["status_counts"]["200"] > 50 and {"400", "413", "422"} <= set(report["status_counts"])
    assert report["bad_requests"] > 50 and report["p99_ms"] > 0


def test_sigterm_answers_the_request_in_flight_and_exits_0(folder, tmp_path):
    # a long batch_timeout keeps the request waiting in the batcher while SIGTERM arrives
    server = Server(tmp_path / "serve.log", f"run_dir={folder}", "batch_timeout=2", "precision=fp32")
    answers = []
    asker = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{server.url}/predict", json={"text": "i miss you"}, timeout=30))
    )
    asker.start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/health").json()["in_flight"] < 1:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.02)
    assert server.stop() == 0, server.output()
    asker.join()
    assert answers[0].status_code == 200 and len(answers[0].json()["predictions"]) == 1
    stopped = [line for line in server.output().splitlines() if "stopped on SIGTERM" in line]
    assert len(stopped) == 1 and "1 requests answered" in stopped[0], server.output()


def test_bad_config_exits_2_with_one_line_before_serving(folder):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = f"port={taken.getsockname()[1]}"
    cases = {  # overrides → what the one line names
        ("port=0",): "run_dir is required",
        (f"run_dir={folder}", "port=0", "backend=fastest"): "backend=fastest is not one of",
        (f"run_dir={folder}", port): "is in use",
        (f"run_dir={folder}", "port=0", "limits.max_texts=0"): "limits.max_texts=0 must be an int ≥ 1: e.g.",
        (f"run_dir={folder}", "limits.max_body_bytes=-5"): "limits.max_body_bytes=-5 must be an int ≥ 1",
        (f"run_dir={folder}", "max_batch_size=0"): "max_batch_size=0 must be an int ≥ 1",
        (f"run_dir={folder}", "batch_timeout=-1"): "batch_timeout=-1 must be ≥ 0: e.g. batch_timeout=0.01",
        (f"run_dir={folder}", "port=70000"): "port=70000 must be an int ≥ 0 and ≤ 65535",
        (f"run_dir={folder}", "limits=5"): "limits=5 is not a group of limits",
    }
    command = [sys.executable, "serve.py"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = {args: subprocess.Popen([*command, *args], cwd=ROOT, **pipes) for args in cases}
    try:
        for args, words in cases.items():
            out, err = runs[args].communicate(timeout=60)
            assert runs[args].returncode == 2, (args, out, err)
            assert err.count("\n") == 1 and err.startswith("error: ") and words in err, (args, err)
            assert "serving on" not in out
    finally:
        taken.close()


def test_an_unexpected_error_is_a_generic_500_and_logged_with_its_traceback(folder, caplog):
    from fastapi.testclient import TestClient

    from emo_lightning.serving.app import INTERNAL, create_app
    from emo_lightning.serving.payloads import Limits

    predictor = EmotionPredictor(folder, precision="fp32", backend="torch")
    predictor.thresholds = [0.5, 0.5]  # a broken state: 2 thresholds for 3 labels, so deciding fails
    app = create_app(predictor, folder, Limits(4096, 8, 200), max_batch_size=8, batch_timeout=0)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, "emo_lightning.serve"), client:
        response = client.post("/predict", json={"text": "i miss you"})
        assert client.get("/health").json()["status"] == "ok"  # and the server goes on
    assert response.status_code == 500 and response.json() == {"error": {"code": "internal_error", "message": INTERNAL}}
    assert "Traceback" in caplog.text and "must match the size of tensor" in caplog.text  # the details: in the log
    assert "Traceback" not in response.text and "tensor" not in response.text


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("batch_timeout", float("nan"), "batch_timeout=nan must be ≥ 0"),
        ("shutdown_timeout", float("nan"), "shutdown_timeout=nan must be > 0"),
        ("threshold", float("nan"), "threshold=nan must be > 0 and < 1, or null for the thresholds saved"),
        ("threshold", 0.0, "threshold=0.0 must be > 0 and < 1"),
    ],
)
def test_settings_refuse_nan_and_a_threshold_of_zero(key, value, words):
    """NaN passed `value < 0`, so a NaN timeout was taken; the service refuses it as it refuses -1."""
    from omegaconf import OmegaConf

    from emo_lightning.serving.settings import ServeSettings
    from emo_lightning.utils.errors import ConfigError

    cfg = OmegaConf.load(ROOT / "conf" / "serve.yaml")
    cfg.run_dir, cfg[key] = "outputs/runs/x", value
    with pytest.raises(ConfigError) as info:
        ServeSettings.from_cfg(cfg)
    assert str(info.value).startswith(words)

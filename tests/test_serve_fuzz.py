"""serve.py against hostile requests and callers without its key: a real server process on localhost (raw sockets
for what httpx will not send). No answer is a 5xx, every app error is the JSON error shape with a one-line message,
the log holds no traceback and one line per client that left mid-body, and with EMO_API_KEY set /predict and
/labels answer only `Authorization: Bearer <key>`."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.load_test import run_load_test
from tests.test_predict_files import model_dir
from tests.test_serve import ROOT, Server, server_env

KEY = "fuzz-" + secrets.token_urlsafe(24)
LEFT = "client left before its request body was read"
BOMB = "9" * 5000  # over Python's 4300-digit limit of int()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_models) -> Path:
    return model_dir(tmp_path_factory.mktemp("fuzz") / "model", tiny_models, multi_label=True)


@pytest.fixture(scope="module")
def keyed(folder, tmp_path_factory):
    """One server for the module: default body limit (1 MiB), 8 texts of 200 characters, EMO_API_KEY set."""
    options = ["backend=torch", "precision=fp32", "limits.max_texts=8", "limits.max_text_chars=200"]
    log = tmp_path_factory.mktemp("log") / "serve.log"
    server = Server(log, f"run_dir={folder}", *options, env=server_env(EMO_API_KEY=KEY))
    yield server
    assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output() and KEY not in server.output()


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host.strip("[]"), int(port)


def raw_request(method: str, path: str, body: bytes = b"", key: str | None = KEY, **headers: str | None) -> bytes:
    """The bytes of one HTTP/1.1 request (Connection: close); a header given as None is left out."""
    fields = {"Host": "localhost", "Connection": "close", "Content-Type": "application/json"}
    fields |= {"Content-Length": str(len(body)), "Authorization": f"Bearer {key}" if key else None}
    fields |= {name.replace("_", "-"): value for name, value in headers.items()}
    head = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items() if value is not None)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def exchange(url: str, data: bytes) -> tuple[int, bytes]:
    """Send `data` on a new connection and read the answer until the server closes: (status, body)."""
    with socket.create_connection(address(url), timeout=60) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered before reading it all
            sock.sendall(data)
        reply = b""
        while chunk := sock.recv(1 << 16):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def predict(body: bytes, **headers: str | None) -> bytes:
    return raw_request("POST", "/predict", body, **headers)


def js(value) -> bytes:
    return json.dumps(value).encode()


FUZZ = [  # (name, request bytes, expected status)
    ("int of 5000 digits", predict(b'{"text": ' + BOMB.encode() + b"}"), 422),
    ("negative int of 100000 digits in texts", predict(b'{"texts": [-' + b"9" * 100_000 + b"]}"), 422),
    ("float of 100000 digits", predict(b'{"text": 0.' + b"1" * 100_000 + b"}"), 422),
    ("exponent 1e999999", predict(b'{"text": 1e999999}'), 422),
    ("NaN", predict(b'{"text": NaN}'), 400),
    ("Infinity in texts", predict(b'{"texts": ["fine", Infinity]}'), 400),
    ("-Infinity beside a good field", predict(b'{"text": "fine", "x": -Infinity}'), 400),
    ("200000 open brackets", predict(b"[" * 200_000), 400),
    ("100000 nested arrays", predict(b"[" * 100_000 + b"]" * 100_000), 400),
    ("50000 nested objects in text", predict(b'{"text": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001), 400),
    ("500 nested arrays (under the limit)", predict(b"[" * 500 + b"]" * 500), 422),
    ("UTF-16-LE with BOM", predict(b"\xff\xfe" + '{"text": "hi"}'.encode("utf-16-le")), 400),
    ("UTF-16-BE with BOM", predict(b"\xfe\xff" + '{"text": "hi"}'.encode("utf-16-be")), 400),
    ("UTF-16-LE without BOM", predict('{"text": "hi"}'.encode("utf-16-le")), 400),
    ("UTF-32", predict('{"text": "hi"}'.encode("utf-32")), 400),
    ("UTF-8 with BOM", predict(b"\xef\xbb\xbf" + js({"text": "i miss you"})), 200),
    ("invalid UTF-8 byte", predict(b'{"text": "\xff"}'), 400),
    ("truncated UTF-8 sequence", predict(b'{"text": "caf\xc3"}'), 400),
    ("overlong UTF-8", predict(b'{"text": "\xc0\xaf"}'), 400),
    ("UTF-8-encoded surrogate", predict(b'{"text": "\xed\xa0\x80"}'), 400),
    ("escaped lone surrogate", predict(b'{"text": "\\ud800 hi"}'), 422),
    ("escaped NUL inside a text", predict(b'{"text": "a\\u0000b"}'), 200),
    ("raw NUL in the body", predict(b'{"text": "a\x00b"}'), 400),
    ("body a string", predict(js("hi")), 422),
    ("body null", predict(b"null"), 422),
    ("body true", predict(b"true"), 422),
    ("body a number", predict(b"42"), 422),
    ("body an empty array", predict(b"[]"), 422),
    ("text an object", predict(js({"text": {}})), 422),
    ("text a boolean", predict(js({"text": True})), 422),
    ("text an array", predict(js({"text": ["a"]})), 422),
    ("texts an object", predict(js({"texts": {"a": "b"}})), 422),
    ("texts with a number and null", predict(js({"texts": [1, None]})), 422),
    ("duplicate key, the last a number", predict(b'{"text": "a", "text": 5}'), 422),
    ("unknown field of 100000 characters", predict(js({"k" * 100_000: 1})), 422),
    ("unknown field with a newline", predict(js({"a\nb": 1})), 422),
    ("2 MiB body", predict(js({"text": "a" * (2 << 20)})), 413),
    ("Content-Length 10**12, tiny body", predict(b"{}", Content_Length=str(10**12)), 413),
    ("3 MiB chunked", predict(chunked([b"a" * (1 << 20)] * 3), Content_Length=None, Transfer_Encoding="chunked"), 413),
    ("9 texts", predict(js({"texts": ["a"] * 9})), 422),
    ("201 characters", predict(js({"text": "a" * 201})), 422),
    ("100000 texts", predict(js({"texts": ["a"] * 100_000})), 422),
    ("text/plain body", predict(js({"text": "i miss you"}), Content_Type="text/plain"), 200),
    ("no Content-Type", predict(js({"text": "i miss you"}), Content_Type=None), 200),
    ("a path with %0A", raw_request("GET", "/predict%0Aevil"), 404),
    ("a path of 5000 characters", raw_request("GET", "/" + "a" * 5000), 404),
    ("PUT /predict", raw_request("PUT", "/predict", js({"text": "a"})), 405),
    ("DELETE /health", raw_request("DELETE", "/health"), 405),
    ("Content-Length abc (refused by h11)", predict(b"{}", Content_Length="abc"), 400),
]


def test_fuzzed_requests_get_a_4xx_or_2xx_with_one_line_json_errors(keyed):
    seen = {}
    for name, data, _ in FUZZ:
        status, body = exchange(keyed.url, data)
        seen[name] = status
        if 400 <= status < 500 and not name.endswith("(refused by h11)"):  # h11 answers before the app
            error = json.loads(body)["error"]
            assert set(error) == {"code", "message"}, (name, error)
            assert "\n" not in error["message"] and len(error["message"]) < 400, (name, error)
        if status == 200:
            assert len(json.loads(body)["predictions"]) == 1, name
    assert seen == {name: expected for name, _, expected in FUZZ}
    assert not [status for status in seen.values() if status >= 500]
    assert httpx.get(f"{keyed.url}/health").json()["status"] == "ok"
    assert "Traceback" not in keyed.output()


def leave_mid_body(url: str, data: bytes, reset: bool = False) -> None:
    """Send `data` (headers and part of a body), then close the connection (with a TCP reset if `reset`)."""
    sock = socket.create_connection(address(url), timeout=10)
    sock.sendall(data)
    time.sleep(0.1)  # the server has read the headers and waits for the rest
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def lines_with(server: Server, words: str) -> list[str]:
    return [line for line in server.output().splitlines() if words in line]


def test_a_client_that_leaves_mid_body_is_one_log_line_and_no_traceback(keyed):
    before = len(lines_with(keyed, LEFT))
    partial = js({"text": "i miss my friends"})[:10]
    leave_mid_body(keyed.url, predict(partial, Content_Length="1000"))
    leave_mid_body(keyed.url, predict(b"", Content_Length="1000"))  # headers only
    chunks = b"%x\r\n%s\r\n" % (len(partial), partial)
    leave_mid_body(keyed.url, predict(chunks, Content_Length=None, Transfer_Encoding="chunked"))
    leave_mid_body(keyed.url, predict(b"a" * 1000, Content_Length="5000"), reset=True)
    leave_mid_body(keyed.url, predict(js({"text": "i miss you"})))  # whole body sent: leaves before the answer
    deadline = time.monotonic() + 10
    while len(lines_with(keyed, LEFT)) < before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # and no more lines come
    left = lines_with(keyed, LEFT)[before:]
    assert len(left) == 4, keyed.output()
    assert all("(POST /predict from 127.0.0.1:" in line for line in left), left
    details = " ".join(left)
    assert all(words in details for words in (": 10 of 1000 bytes", ": 0 of 1000 bytes", "chunked", "of 5000")), left
    assert "Traceback" not in keyed.output() and "ClientDisconnect" not in keyed.output()
    assert httpx.post(f"{keyed.url}/predict", json={"text": "ok"}, headers=bearer(KEY)).status_code == 200


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


WRONG_AUTHORIZATION = {
    "none": {},
    "wrong key": bearer("not-the-key-at-all-0123456789"),
    "key and one more character": bearer(KEY + "x"),
    "key less its last character": bearer(KEY[:-1]),
    "Basic scheme": {"Authorization": f"Basic {KEY}"},
    "Bearer and no key": {"Authorization": "Bearer"},
    "the key with no scheme": {"Authorization": KEY},
}


@pytest.mark.parametrize("case", WRONG_AUTHORIZATION)
def test_predict_and_labels_without_the_key_are_401(keyed, case):
    headers = WRONG_AUTHORIZATION[case]
    for response in (
        httpx.post(f"{keyed.url}/predict", json={"text": "i miss you"}, headers=headers),
        httpx.get(f"{keyed.url}/labels", headers=headers),
    ):
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", case
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and "Authorization: Bearer" in error["message"], error
        assert "\n" not in error["message"] and KEY not in response.text


def test_the_key_opens_predict_and_labels_and_health_docs_page_stay_open(keyed):
    assert httpx.post(f"{keyed.url}/predict", json={"text": "hi"}, headers=bearer(KEY)).status_code == 200
    lower = {"Authorization": f"bearer {KEY}"}  # the scheme is case-insensitive (RFC 7235)
    assert httpx.get(f"{keyed.url}/labels", headers=lower).json()["limits"]["max_texts"] == 8
    status, _ = exchange(keyed.url, raw_request("GET", "/labels", key=None, Authorization="Bearer \xff" + KEY[1:]))
    assert status == 401  # a header byte outside ASCII
    for open_route in ("/health", "/", "/docs", "/openapi.json"):
        assert httpx.get(f"{keyed.url}{open_route}").status_code == 200, open_route
    schema = httpx.get(f"{keyed.url}/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert [scheme["scheme"] for scheme in schemes.values()] == ["bearer"]  # Swagger's Authorize button
    assert schema["paths"]["/predict"]["post"]["security"] and schema["paths"]["/labels"]["get"]["security"]
    assert "security" not in schema["paths"]["/health"]["get"]
    serving = lines_with(keyed, "serving on")
    assert len(serving) == 1 and "API key required (EMO_API_KEY)" in serving[0], serving
    assert KEY not in keyed.output()


def test_the_load_test_sends_the_key(keyed):
    report = run_load_test(keyed.url, requests=40, concurrency=4, seed=0, api_key=KEY)
    assert "401" not in report["status_counts"] and report["status_counts"]["200"] > 10, report["status_counts"]
    assert report["server_errors"] == 0 and report["problems"] == 0, report["problem_examples"]


def test_a_public_host_needs_a_key_or_allow_unauthenticated_before_the_model_loads(tmp_path):
    missing = f"run_dir={tmp_path / 'nowhere'}"  # refused before the run is read: its error never shows
    cases = {  # (overrides, environment) → what the one line names
        ("host=0.0.0.0", ""): "host=0.0.0.0 is reachable from other machines and EMO_API_KEY is not set",
        ("host=::", ""): "host=:: is reachable from other machines",
        ("host=0.0.0.0", "EMO_API_KEY="): "EMO_API_KEY is not set",
        ("host=127.0.0.1", "EMO_API_KEY=short"): "EMO_API_KEY holds 5 characters",
        ("host=127.0.0.1", "EMO_API_KEY=a key with spaces, long enough"): "EMO_API_KEY holds a character",
        ("api_key_env=1BAD", ""): "api_key_env=1BAD is not the name of an environment variable",
        ("allow_unauthenticated=maybe", ""): "allow_unauthenticated=maybe is not true or false",
    }
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "cwd": ROOT}
    runs = {}
    for override, env in cases:
        extra = dict([env.split("=", 1)]) if env else {}
        command = [sys.executable, "serve.py", missing, "port=0", override]
        runs[override, env] = subprocess.Popen(command, env=server_env(**extra), **pipes)
    for case, words in cases.items():
        out, err = runs[case].communicate(timeout=60)
        assert runs[case].returncode == 2, (case, out, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and words in err, (case, err)
        assert "run_dir" not in err and "serving on" not in out, (case, err)


def test_the_settings_hold_the_key_but_never_show_it():
    from omegaconf import OmegaConf

    from emo_lightning.serving.settings import ServeSettings

    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "serve.yaml"), {"run_dir": "run", "host": "0.0.0.0"})
    settings = ServeSettings.from_cfg(cfg, {"EMO_API_KEY": KEY})
    assert settings.api_key == KEY and KEY not in repr(settings) and KEY not in settings.access()


def test_allow_unauthenticated_serves_a_public_host_without_a_key(folder, tmp_path):
    server = Server(tmp_path / "serve.log", f"run_dir={folder}", "host=0.0.0.0", "allow_unauthenticated=true")
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.post(f"{url}/predict", json={"text": "i miss you"}).status_code == 200
        assert httpx.get(f"{url}/labels").status_code == 200
    finally:
        assert server.stop() == 0, server.output()
    serving = lines_with(server, "serving on")
    assert len(serving) == 1 and "no API key: anyone who reaches 0.0.0.0" in serving[0], serving

"""Load-test a running `serve.py`: valid and bad requests mixed, concurrently; every bad one must get a 4xx with a
JSON message, every valid one a 200 with one prediction per text, and nothing a 5xx.

python benchmarks/load_test.py --url http://127.0.0.1:8000 --requests 2000 --concurrency 8
Exit 1 on any 5xx, transport error, or answer of the wrong kind. `run_load_test` is the same as a function.
A server started with EMO_API_KEY gets that key (from this process's environment) as `Authorization: Bearer`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

SENTENCE_WORDS = "i feel so happy sad angry scared today my friends news dark lovely day miss you really the and"
WORDS = SENTENCE_WORDS.split(" ")
VALID_KINDS = ("single", "list")
MIX = {  # kind → weight: about half valid requests
    "single": 30,
    "list": 20,
    "malformed_json": 5,
    "oversized_body": 3,
    "long_text": 5,
    "long_list": 5,
    "empty_text": 5,
    "blank_text": 2,
    "empty_list": 5,
    "number": 4,
    "null": 4,
    "nested": 4,
    "missing_field": 4,
    "unknown_field": 2,
    "both_fields": 2,
}


@dataclass
class Planned:
    kind: str
    body: bytes
    texts: int  # how many predictions a valid request expects (0 for a bad one)


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no HTTP answer (a transport error)
    seconds: float
    problem: str | None


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(2, 12)))


def plan_request(kind: str, rng: random.Random, limits: dict[str, int]) -> Planned:
    """A request body of `kind`, sized from the server's `limits` (GET /labels)."""
    dumps = json.dumps
    if kind == "single":
        return Planned(kind, dumps({"text": sentence(rng)}).encode(), 1)
    if kind == "list":
        count = rng.randint(1, min(8, limits["max_texts"]))
        return Planned(kind, dumps({"texts": [sentence(rng) for _ in range(count)]}).encode(), count)
    bodies: dict[str, Callable[[], object]] = {
        "malformed_json": lambda: rng.choice(['{"text": "i am', "{text: 1}", "[1, 2", '{"texts": ["a",]}', "nope"]),
        "oversized_body": lambda: {"text": "a" * (limits["max_body_bytes"] + 1)},
        "long_text": lambda: {"text": "b" * (limits["max_text_chars"] + 1)},
        "long_list": lambda: {"texts": ["c"] * (limits["max_texts"] + 1)},
        "empty_text": lambda: {"text": ""},
        "blank_text": lambda: {"texts": ["fine text", " \n\t "]},
        "empty_list": lambda: {"texts": []},
        "number": lambda: rng.choice([{"text": 42}, {"texts": [1.5]}, 7]),
        "null": lambda: rng.choice([{"text": None}, {"texts": None}, {"texts": ["a", None]}, None]),
        "nested": lambda: rng.choice([{"text": {"text": "a"}}, {"texts": [["a"]]}, {"texts": {"0": "a"}}]),
        "missing_field": lambda: {},
        "unknown_field": lambda: {"txt": "typo"},
        "both_fields": lambda: {"text": "a", "texts": ["b"]},
    }
    body = bodies[kind]()
    return Planned(kind, (body if isinstance(body, str) else dumps(body)).encode(), 0)


def check_answer(planned: Planned, response: httpx.Response) -> str | None:
    """What is wrong with `response` to `planned` (None: it is right)."""
    try:
        answer = response.json()
    except ValueError:
        return f"{planned.kind}: HTTP {response.status_code} with a body that is not JSON"
    if planned.kind in VALID_KINDS:
        if response.status_code != 200:
            return f"{planned.kind}: HTTP {response.status_code} for a valid request: {answer}"
        if not isinstance(answer, dict) or len(answer.get("predictions", [])) != planned.texts:
            return f"{planned.kind}: {planned.texts} texts sent, the answer has another number of predictions"
        return None
    if not 400 <= response.status_code < 500:
        return f"{planned.kind}: HTTP {response.status_code} for a bad request (wanted a 4xx)"
    message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
    if not isinstance(message, str) or not message:
        return f"{planned.kind}: HTTP {response.status_code} without an error message: {answer}"
    if "Traceback" in response.text:
        return f"{planned.kind}: HTTP {response.status_code} carries a traceback"
    return None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def key_headers(api_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>` for `api_key`, or for $EMO_API_KEY when None (serve.py's default variable)."""
    key = os.environ.get("EMO_API_KEY") if api_key is None else api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def run_load_test(
    url: str,
    requests: int = 2000,
    concurrency: int = 8,
    seed: int = 0,
    timeout: float = 30.0,
    api_key: str | None = None,
) -> dict:
    """Send `requests` mixed requests from `concurrency` threads to `url`'s POST /predict; a summary dict. The key:
    `api_key`, else $EMO_API_KEY, else none."""
    url = url.rstrip("/")
    auth = key_headers(api_key)
    limits = httpx.get(f"{url}/labels", timeout=timeout, headers=auth).raise_for_status().json()["limits"]
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=requests)
    plan = [plan_request(kind, rng, limits) for kind in kinds]
    local = threading.local()

    def send(planned: Planned) -> Outcome:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=timeout)
        start = time.perf_counter()
        try:
            response = local.client.post(
                f"{url}/predict", content=planned.body, headers={"Content-Type": "application/json", **auth}
            )
        except httpx.HTTPError as err:
            return Outcome(planned.kind, None, time.perf_counter() - start, f"{planned.kind}: no answer ({err!r})")
        return Outcome(planned.kind, response.status_code, time.perf_counter() - start, check_answer(planned, response))

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(send, plan))
    seconds = time.perf_counter() - start
    latencies = sorted(o.seconds for o in outcomes)
    statuses = Counter(str(o.status) if o.status is not None else "no answer" for o in outcomes)
    by_kind: dict[str, Counter] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, Counter())[str(outcome.status)] += 1
    problems = [o.problem for o in outcomes if o.problem]
    return {
        "url": url,
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1) if seconds else float("inf"),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "status_counts": dict(sorted(statuses.items())),
        "by_kind": {kind: dict(sorted(counts.items())) for kind, counts in sorted(by_kind.items())},
        "server_errors": sum(n for status, n in statuses.items() if status.startswith("5")),
        "bad_requests": sum(1 for p in plan if p.kind not in VALID_KINDS),
        "problems": len(problems),
        "problem_examples": problems[:10],
    }


def print_report(report: dict) -> None:
    print(f"{report['requests']} requests to {report['url']}/predict from {report['concurrency']} threads")
    print(
        f"  {report['requests_per_s']:.1f} requests/s   p50 {report['p50_ms']:.1f} ms   p99 {report['p99_ms']:.1f} ms"
    )
    print(f"  {'kind':<16} answers by HTTP status")
    for kind, counts in report["by_kind"].items():
        print(f"  {kind:<16} {', '.join(f'{status}: {n}' for status, n in counts.items())}")
    print(f"  status counts: {report['status_counts']}")
    print(f"  5xx: {report['server_errors']}   answers of the wrong kind: {report['problems']}")
    for problem in report["problem_examples"]:
        print(f"    {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="where serve.py listens")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE (a new file)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1")
    try:
        report = run_load_test(args.url, args.requests, args.concurrency, args.seed)
    except httpx.HTTPStatusError as err:
        if err.response.status_code != 401:
            raise
        print(f"error: {args.url}/labels answered 401: export EMO_API_KEY=<the key serve.py was started with>")
        return 2
    except httpx.HTTPError as err:
        print(f"error: {args.url}/labels did not answer ({err}): start `python serve.py run_dir=…` first, or fix --url")
        return 2
    print_report(report)
    if args.json:
        with open(args.json, "x") as out:  # never over an existing file
            json.dump(report, out, indent=2)
    return 1 if report["server_errors"] or report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())

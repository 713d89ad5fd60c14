"""The FastAPI app: POST /predict, GET /health, GET /labels, GET / (the demo page), /docs and /openapi.json.

Every answer is JSON (the page aside); an error is `{"error": {"code": ..., "message": ...}}` with a 4xx, or a
500 with a generic message (the traceback goes to the server's log, never to the client). With an API key,
/predict and /labels answer only `Authorization: Bearer <key>` (else a 401); the other routes stay open.
"""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as Dependency
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials as Credentials
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from emo_lightning.inference.predictor import EmotionPredictor, Prediction
from emo_lightning.serving.batcher import MicroBatcher
from emo_lightning.serving.page import DEMO_PAGE
from emo_lightning.serving.payloads import Limits, RequestError, body_too_large, parse_texts, shorten

log = logging.getLogger("emo_lightning.serve")
INTERNAL = "internal error while answering this request: the server logged the details; retry, or report it"
ROUTES = "GET /, /health, /labels, /docs, /openapi.json and POST /predict"
DOCS_ASSETS = "/docs-assets"  # Swagger UI's script and style sheet, for /docs
DRAIN_FACTOR = 10  # a body over the limit is read (and dropped) up to this many times the limit, then cut off


class PredictRequest(BaseModel):
    """Exactly one of `text` and `texts`."""

    text: str | None = Field(None, description="one text", examples=["i miss my friends"])
    texts: list[str] | None = Field(None, description="several texts", examples=[["what a day", "i am scared"]])


class TextPrediction(BaseModel):
    text: str
    scores: dict[str, float] = Field(description="every label's probability, best first")
    labels: list[str] = Field(description="the decided labels, best first")


class PredictResponse(BaseModel):
    predictions: list[TextPrediction] = Field(description="one per text, in the order given")
    backend: str = Field(description="what ran the network, e.g. torch-fp32 or onnx-int8")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    model_loaded: bool
    backend: str
    requests: int = Field(description="requests answered by /predict")
    texts: int = Field(description="texts predicted")
    batches: int = Field(description="predict calls (a batch groups concurrent requests)")
    largest_batch: int
    in_flight: int
    uptime_s: float


class LabelsInfo(BaseModel):
    labels: list[str]
    multi_label: bool
    decision: str
    thresholds: dict[str, float] | None = Field(description="multi-label: each label's threshold; else null")
    at_least_one: bool
    max_length: int = Field(description="tokens read per text; the rest is cut off")
    backend: str
    model: dict[str, str | int | bool | None]
    limits: dict[str, int] = Field(description="what one request may hold, and the texts grouped per predict call")


class ClientLeft(Exception):
    """The client closed its connection before its whole request body arrived."""


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def shown_path(request: Request) -> str:
    """The request's path for a one-line message: control characters escaped, cut short."""
    return shorten(request.url.path.encode("unicode_escape").decode("ascii"))


def as_json(prediction: Prediction) -> dict:
    return {"text": prediction.text, "scores": dict(prediction.scores), "labels": prediction.labels}


async def read_body(request: Request, limits: Limits) -> bytes:
    """The body, at most `limits.max_body_bytes`; a larger one is drained (so the client reads the 413) and refused.
    A client that leaves before the end is a `ClientLeft`."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limits.max_body_bytes * DRAIN_FACTOR:
        raise body_too_large(limits, int(declared))
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes * DRAIN_FACTOR:
                raise body_too_large(limits)
            if size <= limits.max_body_bytes:
                chunks.append(chunk)
    except ClientDisconnect as err:
        expected = f"{size} of {declared} bytes" if declared else f"{size} bytes, chunked"
        client = f" from {request.client.host}:{request.client.port}" if request.client else ""
        raise ClientLeft(f"{request.method} {shown_path(request)}{client}: {expected}") from err
    if size > limits.max_body_bytes:
        raise body_too_large(limits, size)
    return b"".join(chunks)


def key_guard(api_key: str | None) -> list[Dependency]:
    """The dependencies of a route that needs `Authorization: Bearer <api_key>`: none without a key. The key is
    compared in constant time; /docs shows the bearer scheme (Swagger's Authorize button)."""
    if not api_key:
        return []
    expected = api_key.encode("ascii")
    bearer = HTTPBearer(
        scheme_name="APIKey", description="the server's API key, as `Authorization: Bearer <key>`", auto_error=False
    )
    bearer_credentials = Depends(bearer)  # a local default: the module's postponed annotations cannot name `bearer`

    async def require_key(request: Request, credentials: Credentials | None = bearer_credentials) -> None:
        given = credentials.credentials.encode("latin-1") if credentials else b""  # the header's bytes
        if not hmac.compare_digest(given, expected):
            raise unauthorized(request, sent=credentials is not None)

    return [Depends(require_key)]


def unauthorized(request: Request, sent: bool) -> RequestError:
    where = f"{request.method} {shown_path(request)}"
    problem = "the API key sent is not this server's" if sent else f"{where} needs an API key"
    return RequestError(
        401,
        "unauthorized",
        f"{problem}: send the header Authorization: Bearer <key>, with the key the server was started with",
        headers={"WWW-Authenticate": "Bearer"},
    )


def model_info(predictor: EmotionPredictor, model_dir: Path) -> dict:
    """What the folder holds: its path, head, encoder type and size, and whether transformers.pipeline() reads it."""
    network = getattr(predictor, "network", None)
    encoder = getattr(getattr(network, "backbone", None), "config", None)
    return {
        "dir": str(model_dir),
        "head": predictor.spec.head["type"],
        "encoder": getattr(encoder, "model_type", None),
        "parameters": sum(p.numel() for p in network.parameters()) if network is not None else None,
        "pipeline_compatible": (model_dir / "config.json").is_file(),
    }


def labels_info(predictor: EmotionPredictor, model_dir: Path, limits: Limits, max_batch_size: int) -> dict:
    spec = predictor.spec
    if spec.multi_label:
        rule = " (or the most probable one when none is)" if spec.at_least_one else ""
        decision = f"every label whose probability is at or above its threshold{rule}"
        thresholds = dict(zip(spec.label_names, map(float, predictor.thresholds)))
    else:
        decision, thresholds = "the most probable label", None
    return {
        "labels": list(spec.label_names),
        "multi_label": spec.multi_label,
        "decision": decision,
        "thresholds": thresholds,
        "at_least_one": spec.at_least_one,
        "max_length": spec.max_length,
        "backend": predictor.backend.name,
        "model": model_info(predictor, model_dir),
        "limits": {**asdict(limits), "max_batch_size": max_batch_size},
    }


def create_app(
    predictor: EmotionPredictor,
    model_dir: Path,
    limits: Limits,
    max_batch_size: int,
    batch_timeout: float,
    api_key: str | None = None,
) -> FastAPI:
    """The service around `predictor` (already loaded); requests are grouped by a `MicroBatcher`. With `api_key`,
    /predict and /labels need `Authorization: Bearer <api_key>`."""
    batcher = MicroBatcher(predictor.predict, max_batch_size, batch_timeout)
    backend = predictor.backend.name
    labels = labels_info(predictor, model_dir, limits, max_batch_size)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPIOffline(  # FastAPI with /docs' Swagger UI served from the package, not a CDN (works offline)
        title="emo-lightning",
        summary="The emotions of short English texts, from a model trained with emo-lightning.",
        lifespan=lifespan,
        redoc_url=None,
        static_url=DOCS_ASSETS,
    )
    guard = key_guard(api_key)
    refused = {401: {"model": ErrorResponse, "description": "no API key, or not this server's"}} if guard else {}
    errors = {400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, **refused}
    body_schema = {"application/json": {"schema": PredictRequest.model_json_schema()}}

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return error(err.status, err.code, err.message, err.headers)

    @app.exception_handler(ClientLeft)
    async def client_left(request: Request, err: ClientLeft) -> JSONResponse:
        log.warning("client left before its request body was read (%s)", err)
        return error(400, "incomplete_body", f"the connection closed before the request body ended ({err})")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        if err.status_code == 404:
            return error(404, "not_found", f"there is no {shown_path(request)}: the routes are {ROUTES}")
        if err.status_code == 405:
            return error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {shown_path(request)}: the routes are {ROUTES}",
            )
        return error(err.status_code, "http_error", f"{shorten(str(err.detail))}: the routes are {ROUTES}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return error(422, "invalid_request", f"{shown_path(request)} takes no parameters here: the routes are {ROUTES}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return error(500, "internal_error", INTERNAL)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=errors,
        openapi_extra={"requestBody": {"required": True, "content": body_schema}},
        dependencies=guard,
    )
    async def predict(request: Request) -> dict | JSONResponse:
        """Every label's probability (best first) and the decided labels, for each text."""
        texts = parse_texts(await read_body(request, limits), limits)
        try:
            predictions = await batcher.submit(texts)
        except Exception:
            log.exception("POST /predict failed on %d texts", len(texts))
            return error(500, "internal_error", INTERNAL)
        return {"predictions": [as_json(p) for p in predictions], "backend": backend}

    @app.get("/health", response_model=Health)
    async def health() -> dict:
        """Whether the model is loaded, what runs it, and what the server has answered (batches group requests)."""
        counts = batcher.counts
        return {
            "status": "ok",
            "model_loaded": True,
            "backend": backend,
            "requests": counts.requests,
            "texts": counts.texts,
            "batches": counts.batches,
            "largest_batch": counts.largest_batch,
            "in_flight": counts.in_flight,
            "uptime_s": round(time.monotonic() - started, 3),
        }

    @app.get("/labels", response_model=LabelsInfo, responses=refused, dependencies=guard)
    async def labels_route() -> dict:
        """The labels, how they are decided (thresholds), the token limit, the backend, the model folder and the
        request limits."""
        return labels

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return DEMO_PAGE

    app.state.batcher = batcher
    return app

"""Reading a POST /predict body into texts: every bad input is a `RequestError` (a 4xx with a one-line message)."""

from __future__ import annotations

import json
from dataclasses import dataclass

USAGE = 'send {"text": "..."} or {"texts": ["...", "..."]}'
CONF = "conf/serve.yaml"


@dataclass(frozen=True)
class Limits:
    """What one request may hold: `max_body_bytes` of JSON, `max_texts` texts, `max_text_chars` characters each."""

    max_body_bytes: int
    max_texts: int
    max_text_chars: int


class RequestError(Exception):
    """A request the client can fix: HTTP `status`, a machine-readable `code`, a one-line `message` and the
    response's extra `headers` (e.g. WWW-Authenticate)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type (object, array, string, number, boolean, null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def body_too_large(limits: Limits, size: int | None = None) -> RequestError:
    size_text = f" ({size} bytes)" if size is not None else ""
    return RequestError(
        413,
        "body_too_large",
        f"the request body{size_text} is over limits.max_body_bytes={limits.max_body_bytes}: "
        f"send fewer or shorter texts per request (or raise limits.max_body_bytes in {CONF})",
    )


def parse_body(body: bytes) -> object:
    """The JSON value of `body`; malformed JSON (or not UTF-8, or nested too deeply, or NaN) is a 400.

    Numbers are read as floats: no request holds one (each is a wrong type, a 422), and float() reads any number of
    digits in linear time, where int() refuses over 4300 (a ValueError) and is quadratic below that.
    """
    if not body.strip():
        raise RequestError(400, "malformed_json", f"the request body is empty: {USAGE}")
    if body.startswith(UTF16_32_BOMS) or b"\x00" in body[:4]:
        raise RequestError(
            400, "malformed_json", f"the request body looks like UTF-16 or UTF-32, not UTF-8: {USAGE} in UTF-8"
        )
    try:
        text = body.decode("utf-8-sig")  # JSON over HTTP is UTF-8; a UTF-8 byte order mark is skipped (RFC 8259)
        return json.loads(text, parse_int=float, parse_constant=refuse_constant)
    except UnicodeDecodeError as err:
        raise RequestError(400, "malformed_json", f"the request body is not UTF-8 ({err.reason}): {USAGE}") from err
    except json.JSONDecodeError as err:
        where = f"{err.msg}: line {err.lineno}, column {err.colno}"
        raise RequestError(400, "malformed_json", f"the request body is not valid JSON ({where}): {USAGE}") from err
    except RecursionError as err:
        raise RequestError(400, "malformed_json", f"the request body is nested too deeply: {USAGE}") from err
    except ValueError as err:  # anything else json refuses: one line, cut short
        reason = shorten(str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise RequestError(400, "malformed_json", f"the request body is not valid JSON ({reason}): {USAGE}") from err


UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16's (and UTF-32-LE's); JSON in UTF-16/32 has a NUL in 4 bytes


def refuse_constant(name: str) -> object:
    """json.loads reads NaN, Infinity and -Infinity, which JSON (RFC 8259) does not have."""
    raise RequestError(400, "malformed_json", f"the request body holds {name}, which is not JSON: {USAGE}")


def shorten(text: str, most: int = 60) -> str:
    """`text` cut to `most` characters (with an ellipsis), so that a message naming client input stays short."""
    return text if len(text) <= most else text[: most - 1] + "…"


def check_text(text: object, where: str, limits: Limits) -> str:
    """`text` when it is a non-blank string of at most `limits.max_text_chars` characters."""
    if not isinstance(text, str):
        raise RequestError(422, "wrong_type", f"{where} is {article(json_type(text))}, not a string: {USAGE}")
    if not text.strip():
        raise RequestError(422, "empty_text", f"{where} is empty or only whitespace: send some words to classify")
    if len(text) > limits.max_text_chars:
        raise RequestError(
            422,
            "text_too_long",
            f"{where} has {len(text)} characters, over limits.max_text_chars={limits.max_text_chars}: "
            "shorten it or split it into several texts",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = shorten(repr(text[err.start : err.end]))
        raise RequestError(
            422, "wrong_type", f"{where} holds an unpaired surrogate ({bad}): send text encoded as UTF-8"
        ) from err
    return text


def article(type_name: str) -> str:
    return type_name if type_name == "null" else f"{'an' if type_name[0] in 'aeiou' else 'a'} {type_name}"


def parse_texts(body: bytes, limits: Limits) -> list[str]:
    """The texts of a POST /predict body: `{"text": "..."}` or `{"texts": [...]}`, exactly one of them."""
    if len(body) > limits.max_body_bytes:
        raise body_too_large(limits, len(body))
    request = parse_body(body)
    if not isinstance(request, dict):
        raise RequestError(422, "wrong_type", f"the request body is {article(json_type(request))}: {USAGE}")
    unknown = sorted(set(request) - {"text", "texts"})
    if unknown:
        raise RequestError(
            422, "unknown_field", f"{shorten(json.dumps(unknown[0]))} is not a field of a request: {USAGE}"
        )
    if len(request) != 1:
        problem = "both text and texts" if request else "neither text nor texts"
        raise RequestError(422, "missing_field", f"the request gives {problem}: {USAGE} (exactly one of them)")
    if "text" in request:
        return [check_text(request["text"], "text", limits)]
    texts = request["texts"]
    if not isinstance(texts, list):
        kind = article(json_type(texts))
        raise RequestError(422, "wrong_type", f"texts is {kind}, not an array of strings: {USAGE}")
    if not texts:
        raise RequestError(422, "empty_list", 'texts is an empty array: send at least one text (or use "text")')
    if len(texts) > limits.max_texts:
        raise RequestError(
            422,
            "too_many_texts",
            f"texts has {len(texts)} texts, over limits.max_texts={limits.max_texts}: split them over several requests",
        )
    return [check_text(text, f"texts[{i}]", limits) for i, text in enumerate(texts)]

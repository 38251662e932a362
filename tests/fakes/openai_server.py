"""A fake OpenAI API server for tests: the real `openai` client talks HTTP to it on 127.0.0.1.

It serves the parts of the API the bot uses, answering like the real API does:

- POST /v1/responses            (Responses API: structured JSON answers or plain text)
- POST /v1/chat/completions     (Chat Completions: the same answers in that wire format, with
                                 `response_format` json_schema, image data URLs and logprobs)
- POST /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content
- POST /v1/batches, GET /v1/batches (newest first, `limit` and `after`), GET /v1/batches/{id},
  POST /v1/batches/{id}/cancel

Every request is recorded (`fake.requests`), so tests can check what the server received.
The server runs on aiohttp in a background thread with its own event loop, on an ephemeral port.

Usage::

    from openai import OpenAI
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        fake.label_image(image.jpeg, "crystals")    # the bytes that are sent, base64-decoded
        client = OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        response = client.responses.create(model="gpt-4.1", input=[...], text={"format": {...}})
        assert json.loads(response.output_text)["label"] == "crystals"
        assert fake.responses_requests()[0]["temperature"] == 0

How a /v1/responses answer is made:

- The query image is the LAST `input_image` of the request; the sha256 of its base64-decoded
  bytes is looked up in `fake.labels` (else `fake.model_labels[model]`, else `fake.default_label`).
- With `text.format.type == "json_schema"` the answer fills the schema's properties in order: the
  label property (the first with an `enum`, else one named "label"; local `$ref`s such as
  pydantic's `#/$defs/...` are followed) gets the label (enum[0] if the label is not in the enum),
  numbers get `fake.confidence`, strings "fake <name> of <label>" (or the image's text given to
  `label_image`), integers 0, booleans false.
  Otherwise (plain text requests, e.g. follow-up questions) the answer is `fake.follow_up_text`.
- Log-probabilities come back when the request includes "message.output_text.logprobs" and
  `fake.logprobs_enabled`: 0.0 for every token except the first token of the label value, which
  carries log(`fake.label_probability`). With `top_logprobs` set, that token lists the other enum
  values as alternatives sharing the remaining probability.
- Usage is estimated: 765 tokens per image (85 with detail "low") + text characters // 4.
  `cached_tokens` is non-zero when an earlier answered request had the same prefix (all input but
  the last content item of the last message, plus `instructions`): the prefix's estimate rounded
  down to a multiple of 128 (and 0 below `fake.cache_min_tokens`, default 0; the real API's is 1024).

Chat Completions requests are answered like the equivalent Responses request (system messages as
`instructions`, `text`/`image_url` parts as input items, `response_format` as `text.format`), in the
chat.completion shape: `choices[0].message.content`, `choices[0].logprobs.content` when `logprobs`
is true, usage as prompt/completion tokens with `prompt_tokens_details.cached_tokens`.

Switches for other servers and models:

    fake.responses_api = False          # /v1/responses answers 404, like a server without it
    fake.batch_list = False             # GET /v1/batches answers 404, like a gateway that cannot list them
    fake.schema_support = False         # chat: `response_format` json_schema is refused (400); a request
                                        # whose system message carries a JSON schema gets sloppy JSON
                                        # back (fenced, trailing comma, label as " Crystals ")
    fake.refuse("o-fake", "temperature", "logprobs")  # that model answers 400 like the real API
                                        # ("Unsupported parameter: 'temperature' ...", param set)

Switches for failure tests (thread-safe; `fail_next`/`malformed_next` queue up one entry per
call and are used in order by the next /v1/responses calls, batch lines do not use them):

    fake.fail_next(429, times=2, retry_after=0.01)  # error status with an OpenAI-style error body
    fake.fail_next(404, code="model_not_found", message="The model `gpt-9` does not exist.")
    fake.malformed_next("not_json")                 # or "bad_label", "missing_field"
    fake.delay = 1.0                                # every /v1/responses call sleeps first
    fake.hold_until_in_flight = 60                  # every /v1/responses call waits until 60 are in flight
                                                    # at once, then answers (all answer by HOLD_SECONDS
                                                    # after the first held call came)
    fake.max_in_flight                              # most /v1/responses calls served at once

Rate limits, as OpenAI applies them (per API key, i.e. per bearer token, to /v1/responses and
/v1/chat/completions):

- Two token buckets per key, of `limit_tokens` tokens and `limit_requests` requests per `minute`
  seconds, refilled continuously. A request is judged by its ESTIMATED tokens before it runs (the
  usage estimate below, plus `max_output_tokens` / `max_completion_tokens` / `max_tokens` when it
  sets one); past either limit it gets 429 with OpenAI's body, e.g. `{"error": {"message": "Rate
  limit reached for gpt-4.1 in organization org-fake on tokens per min (TPM): Limit 60000, Used
  58000, Requested 4250. Please try again in 2.5s. Visit https://platform.openai.com/account/rate-limits
  to learn more.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}` (`requests per
  min (RPM)` and `"type": "requests"` for the other limit) and `retry-after-ms` / `retry-after`
  headers. A refused request still spends from both buckets (down to 0). A request larger than the
  whole token limit gets "Request too large for ...".
- Every answer of those two endpoints (200, 4xx, 429, 5xx) carries `x-ratelimit-limit-{requests,tokens}`,
  `x-ratelimit-remaining-{requests,tokens}` and `x-ratelimit-reset-{requests,tokens}` (the time until
  the bucket is full, written as OpenAI does: `12ms`, `2.5s`, `6m0s`), as the buckets stood right
  after the request was judged (or when it was answered, for one that was not: an outage, a switch).
- By default the limits are a large tier's (30,000,000 TPM, 10,000 RPM): they never bite in a test.
  `fake.set_rate_limits(tokens=60_000, requests=500, minute=60.0)` sets them (a shorter `minute`
  makes a test fast; the headers and messages scale with it); `fake.rate_limit_headers = False`
  makes a server that sends no such headers (vLLM, Ollama, Azure's Responses API), though it may
  still refuse with 429.
- `fake.quota_exhausted = True`: every request gets 429 `insufficient_quota` (an account out of credit).

Outages and broken answers:

    fake.outage(500)                    # every model request answers 500 until fake.outage(None)
    fake.outage(503, seconds=600)       # ... for 10 minutes; "drop" closes the connection instead
    fake.truncate_next(times=2)         # HTTP 200 whose JSON body is cut off halfway

Counters: `fake.status_counts` (a Counter of the statuses the model endpoints served, "dropped" for
connections closed unanswered), `fake.rate_limited` (429s served).

Batches finish on the first GET /v1/batches/{id} while `fake.batches_complete` is True (default);
the output file holds one line per input line, answered like /v1/responses. As the real Batch API does,
a request that fails inside a batch is a line of the error file (`response.status_code` and the error
body), and an expired batch answers only part of its lines:

    fake.fail_in_batches(jpeg_bytes, 500)   # a batch line whose query image is these bytes fails (500)
    fake.batch_expire_after = 2             # batches end "expired" with only their first 2 lines answered;
                                            # the others are `batch_expired` lines of the error file
    fake.lose_batch_answers(times=1)        # the next batch is created, then its connection closed unanswered
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable

from aiohttp import web

LOGPROBS_INCLUDE = "message.output_text.logprobs"
MALFORMED_KINDS = ("not_json", "bad_label", "missing_field")
NOT_JSON_TEXT = "Sure! The label is crystals."
BAD_LABEL = "maybe-crystals"
IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}
CACHE_STEP = 128
HOLD_SECONDS = 20.0  # with hold_until_in_flight: held calls answer by this long after the first one came
MAX_BODY_BYTES = 512 * 1024 * 1024  # aiohttp's default is 1 MiB, too small for several images
_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]")

# status -> (error type, error code, message), as the real API sends them
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country not supported."),
    404: ("invalid_request_error", None, "Not found."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "The request could not be processed."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again shortly."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Recorded:
    """One HTTP request as the server received it. Header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None = None


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class _Malformed:
    kind: str


@dataclass(frozen=True)
class _Truncated:
    """The next answer's body is cut off halfway."""


@dataclass
class _Buckets:
    """One API key's two rate-limit buckets."""

    tokens: float
    requests: float
    at: float


def go_duration(seconds: float) -> str:
    """A duration as OpenAI's headers write it (Go's format): `12ms`, `2.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return text


@dataclass(frozen=True)
class _Answer:
    """The output text, and where in it the label value is (for the log-probabilities)."""

    text: str
    label_span: tuple[int, int] | None = None
    alternatives: tuple[str, ...] = ()  # the other enum values


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def error_body(status: int, message: str | None = None, code: str | None = None,
               param: str | None = None, error_type: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body for `status`."""
    default_type, default_code, default_message = _ERRORS.get(status, ("server_error", None, "Error."))
    return {
        "error": {
            "message": message or default_message,
            "type": error_type or default_type,
            "param": param,
            "code": code or default_code,
        }
    }


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    headers = {"x-request-id": _new_id("req_"), **(headers or {})}
    return web.json_response(payload, status=status, headers=headers)


def _error_response(status: int, message: str | None = None, *, code: str | None = None,
                    param: str | None = None, retry_after: float | None = None,
                    error_type: str | None = None) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = format(retry_after, "g")
        headers["retry-after-ms"] = str(round(retry_after * 1000))
    return _json_response(error_body(status, message, code, param, error_type), status=status, headers=headers)


# --- reading a Responses API request ---------------------------------------------------------


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's input as messages whose content is always a list of items."""
    raw = body.get("input") or []
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    messages = []
    for message in raw:
        content = message.get("content", [])
        if isinstance(content, str):
            content = [{"type": "input_text", "text": content}]
        messages.append({**message, "content": list(content)})
    return messages


def _items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for message in messages for item in message["content"]]


def _estimate_tokens(messages: list[dict[str, Any]], instructions: Any) -> int:
    chars = len(instructions) if isinstance(instructions, str) else 0
    image_tokens = 0
    for item in _items(messages):
        if item.get("type") == "input_image":
            image_tokens += IMAGE_TOKENS.get(item.get("detail") or "auto", IMAGE_TOKENS["auto"])
        elif isinstance(item.get("text"), str):
            chars += len(item["text"])
    return image_tokens + chars // 4


def _prefix(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything but the last content item of the last message."""
    if not messages:
        return []
    last = messages[-1]
    return messages[:-1] + [{**last, "content": last["content"][:-1]}]


def _image_bytes(image_url: str) -> bytes:
    """The decoded bytes of a data: URL; for any other URL, the URL itself."""
    if image_url.startswith("data:") and "," in image_url:
        try:
            return base64.b64decode(image_url.split(",", 1)[1], validate=False)
        except (binascii.Error, ValueError):
            pass
    return image_url.encode()


def query_image_sha256(body: dict[str, Any]) -> str | None:
    """sha256 hex of the last input_image of a /v1/responses request body, or None."""
    images = [item for item in _items(_messages(body)) if item.get("type") == "input_image"]
    if not images:
        return None
    url = images[-1].get("image_url") or images[-1].get("file_id") or ""
    return hashlib.sha256(_image_bytes(url)).hexdigest()


def _schema_type(spec: dict[str, Any]) -> str | None:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _resolve(spec: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (as pydantic's schemas use for enums) and take an `anyOf`'s first non-null."""
    if not isinstance(spec, dict):
        return {}
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _resolve(target, root)
    options = [option for option in spec.get("anyOf") or [] if _resolve(option, root).get("type") != "null"]
    return _resolve(options[0], root) if options else spec


def _properties(spec: dict[str, Any], root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: _resolve(sub, root) for name, sub in (spec.get("properties") or {}).items()}


def _label_property(properties: dict[str, Any]) -> str | None:
    for name, spec in properties.items():
        if isinstance(spec, dict) and spec.get("enum"):
            return name
    return "label" if "label" in properties else None


def _fill(name: str, spec: dict[str, Any], root: dict[str, Any], label: str, confidence: float) -> Any:
    """A value of the schema `spec` for a property that is not the label."""
    if spec.get("enum"):
        return spec["enum"][0]
    kind = _schema_type(spec)
    if kind == "number":
        return confidence
    if kind == "integer":
        return 0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {key: _fill(key, sub, root, label, confidence) for key, sub in _properties(spec, root).items()}
    return f"fake {name} of {label}"


def _value_span(text: str, key: str, value: str) -> tuple[int, int]:
    """Character span of the string `value` of `key` in the compact JSON `text` (without quotes)."""
    needle = json.dumps(key) + ":" + json.dumps(value)
    start = text.index(needle) + len(json.dumps(key)) + 2
    return start, start + len(json.dumps(value)) - 2


# --- log-probabilities ------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Split text into tokens whose concatenation is exactly `text`."""
    return _TOKEN_RE.findall(text)


def _token_entry(token: str, logprob: float, top: list[dict[str, Any]]) -> dict[str, Any]:
    return {"token": token, "bytes": list(token.encode()), "logprob": logprob, "top_logprobs": top}


def _top_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "bytes": list(token.encode()), "logprob": logprob}


def _logprobs(answer: _Answer, label_probability: float, top_n: int) -> list[dict[str, Any]]:
    entries = []
    position = 0
    label_seen = False
    for token in tokenize(answer.text):
        start, position = position, position + len(token)
        in_label = answer.label_span is not None and answer.label_span[0] <= start < answer.label_span[1]
        logprob = 0.0
        top = [_top_entry(token, 0.0)]
        if in_label and not label_seen:
            label_seen = True
            logprob = math.log(label_probability)
            top = [_top_entry(token, logprob)] + _alternatives(answer.alternatives, label_probability)
        entries.append(_token_entry(token, logprob, top[:top_n]))
    return entries


def _alternatives(labels: tuple[str, ...], label_probability: float) -> list[dict[str, Any]]:
    """First tokens of the other labels, sharing the probability the chosen label leaves."""
    rest = 1.0 - label_probability
    if not labels or rest <= 0:
        return []
    logprob = math.log(rest / len(labels))
    return [_top_entry(tokenize(label)[0], logprob) for label in labels if label]


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form field name -> (filename, bytes) of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _bearer_ok(authorization: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def responses_body(chat: dict[str, Any]) -> dict[str, Any]:
    """The Responses API request equivalent to a Chat Completions request body."""
    instructions = []
    messages = []
    for message in chat.get("messages") or []:
        content = message.get("content") or []
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if message.get("role") in {"system", "developer"}:
            instructions += [part.get("text", "") for part in content]
            continue
        items = [{"type": "input_image", "image_url": part["image_url"]["url"],
                  "detail": part["image_url"].get("detail", "auto")} if part.get("type") == "image_url"
                 else {"type": "input_text", "text": part.get("text", "")} for part in content]
        messages.append({"role": message.get("role", "user"), "content": items})
    body: dict[str, Any] = {"model": chat.get("model"), "input": messages}
    if instructions:
        body["instructions"] = "\n\n".join(instructions)
    response_format = chat.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        body["text"] = {"format": {"type": "json_schema", **response_format.get("json_schema", {})}}
    return body


def _schema_in_instructions(body: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON schema the instructions ask the answer to follow (what a model without structured output reads)."""
    instructions = body.get("instructions") or ""
    marker = instructions.rfind("JSON schema:")
    if marker < 0:
        return None
    try:
        schema = json.loads(instructions[marker + len("JSON schema:"):].strip())
    except ValueError:
        return None
    return schema if isinstance(schema, dict) else None


def _sloppy(answer: _Answer) -> _Answer:
    """The answer as a model without structured output might write it: fenced, a trailing comma,
    the label capitalised and padded."""
    try:
        data = json.loads(answer.text)
    except ValueError:
        return answer
    if isinstance(data.get("label"), str):
        data["label"] = f" {data['label'].capitalize()} "
    body = json.dumps(data, indent=2)
    return _Answer(f"Here is my answer:\n```json\n{body[:-2]},\n}}\n```")


class FakeOpenAI:
    """A fake OpenAI API on http://127.0.0.1:<ephemeral port>/v1. See the module docstring."""

    def __init__(self) -> None:
        # answer settings: plain attributes, change them at any time
        self.labels: dict[str, str] = {}  # sha256 hex of the decoded query image -> label
        self.texts: dict[str, str] = {}  # sha256 hex of the decoded query image -> its string fields' text
        self.default_label = "clear"
        self.model_labels: dict[str, str] = {}  # model -> its default label instead of default_label
        self.confidence = 0.8
        self.follow_up_text = "Fake answer: the drop shows small needle-shaped crystals near the edge."
        self.logprobs_enabled = True
        self.label_probability = 0.93
        self.cache_min_tokens = 0
        self.delay = 0.0  # seconds every /v1/responses call waits before answering
        self.batches_complete = True
        self.batch_expire_after: int | None = None  # a number: batches expire, answering that many lines
        self.max_in_flight = 0
        self.hold_until_in_flight = 0  # a number: calls wait until that many are in flight at once
        self.responses_api = True
        self.batch_list = True
        self.schema_support = True
        self.refusing: dict[str, tuple[str, ...]] = {}  # model -> refused parameters, in checking order
        self.limit_tokens = 30_000_000.0  # per `minute`, per API key
        self.limit_requests = 10_000.0
        self.minute = 60.0
        self.rate_limit_headers = True
        self.quota_exhausted = False
        self.status_counts: Counter[int | str] = Counter()

        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._switches: deque[_Failure | _Malformed | _Truncated] = deque()
        self._buckets: dict[str, _Buckets] = {}
        self._outage: tuple[int | str, float] | None = None  # (status or "drop", until)
        self._seen_prefixes: set[str] = set()
        self._in_flight = 0
        self._held_since: float | None = None
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._batch_failures: dict[str, int] = {}  # sha256 of a query image -> the status its batch line gets
        self._lost_batch_answers = 0  # batches still to create whose answer is lost

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._startup_error: BaseException | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    def start(self) -> FakeOpenAI:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("FakeOpenAI did not start within 10 s")
        if self._startup_error is not None:
            self._thread = None
            raise RuntimeError("FakeOpenAI could not start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._port = None

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_server())
        except BaseException as error:  # reported to start()
            self._startup_error = error
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _start_server(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._record_and_authorize])
        app.router.add_post("/v1/responses", self._handle_responses)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_post("/v1/files", self._handle_file_upload)
        app.router.add_get("/v1/files/{file_id}", self._handle_file_get)
        app.router.add_get("/v1/files/{file_id}/content", self._handle_file_content)
        app.router.add_post("/v1/batches", self._handle_batch_create)
        app.router.add_get("/v1/batches", self._handle_batch_list)
        app.router.add_get("/v1/batches/{batch_id}", self._handle_batch_get)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self._handle_batch_cancel)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # handler_cancellation: a client that gives up (timeout) cancels its delayed handler
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    # --- records and switches -----------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def responses_requests(self) -> list[Any]:
        """The JSON bodies of the POST /v1/responses requests received so far."""
        return self.bodies("/v1/responses")

    def chat_requests(self) -> list[Any]:
        """The JSON bodies of the POST /v1/chat/completions requests received so far."""
        return self.bodies("/v1/chat/completions")

    def bodies(self, path: str) -> list[Any]:
        return [r.json for r in self.requests if r.method == "POST" and r.path == path and r.json is not None]

    def refuse(self, model: str, *parameters: str) -> None:
        """Make `model` refuse these parameters ("temperature", "logprobs", "reasoning") with a 400."""
        self.refusing[model] = parameters

    def reset(self) -> None:
        """Forget requests, queued switches, the delay, max_in_flight, the prompt cache, the status counts
        and the keys' buckets (full again)."""
        with self._lock:
            self._requests.clear()
            self._switches.clear()
            self._seen_prefixes.clear()
            self._buckets.clear()
            self.status_counts.clear()
            self.max_in_flight = 0
            self.hold_until_in_flight = 0
            self._held_since = None
            self.delay = 0.0

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
        """Poll `predicate()` until it is truthy and return its value; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def label_image(self, jpeg_bytes: bytes, label: str, text: str | None = None) -> None:
        """Answer `label` for requests whose query image is exactly these bytes; with `text`, every string
        field of the answer (explanation, observations) is that text."""
        self.labels[hashlib.sha256(jpeg_bytes).hexdigest()] = label
        if text is not None:
            self.texts[hashlib.sha256(jpeg_bytes).hexdigest()] = text

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None, *, code: str | None = None,
                  message: str | None = None) -> None:
        """Answer the next `times` /v1/responses calls with `status` and an OpenAI-style error body (its
        `code` and `message` as given, else the usual ones for the status)."""
        with self._lock:
            self._switches.extend(_Failure(status, retry_after, code, message) for _ in range(times))

    def fail_in_batches(self, jpeg_bytes: bytes, status: int = 500) -> None:
        """A batch line whose query image is exactly these bytes fails with `status` (in the error file)."""
        with self._lock:
            self._batch_failures[hashlib.sha256(jpeg_bytes).hexdigest()] = status

    def lose_batch_answers(self, times: int = 1) -> None:
        """The next `times` POST /v1/batches create their batch, then close the connection unanswered."""
        with self._lock:
            self._lost_batch_answers += times

    def batches(self) -> list[dict[str, Any]]:
        """Every batch created, oldest first."""
        with self._lock:
            return list(self._batches.values())

    def malformed_next(self, kind: str, times: int = 1) -> None:
        """Answer the next `times` calls with a broken answer: "not_json", "bad_label" or "missing_field"."""
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}, not {kind!r}")
        with self._lock:
            self._switches.extend(_Malformed(kind) for _ in range(times))

    def truncate_next(self, times: int = 1) -> None:
        """Answer the next `times` calls with HTTP 200 and a JSON body cut off halfway."""
        with self._lock:
            self._switches.extend(_Truncated() for _ in range(times))

    def set_rate_limits(self, tokens: float, requests: float = 10_000, minute: float = 60.0) -> None:
        """Limit every API key to `tokens` and `requests` per `minute` seconds (buckets start full)."""
        with self._lock:
            self.limit_tokens, self.limit_requests, self.minute = float(tokens), float(requests), minute
            self._buckets.clear()

    def outage(self, status: int | str | None, seconds: float | None = None) -> None:
        """From now on every model request answers `status` (500, 502, 503) or has its connection
        dropped ("drop"), for `seconds` or until `outage(None)`."""
        with self._lock:
            self._outage = None if status is None else (status, time.monotonic() + (seconds or math.inf))

    @property
    def rate_limited(self) -> int:
        """429s served by the model endpoints."""
        with self._lock:
            return self.status_counts[429]

    def _current_outage(self) -> int | str | None:
        with self._lock:
            if self._outage and time.monotonic() < self._outage[1]:
                return self._outage[0]
            return None

    def _next_switch(self) -> _Failure | _Malformed | _Truncated | None:
        with self._lock:
            return self._switches.popleft() if self._switches else None

    @web.middleware
    async def _record_and_authorize(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        parsed = None
        if body and "json" in request.content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                pass
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            self._requests.append(Recorded(request.method, request.path, headers, body, parsed))
        if not _bearer_ok(request.headers.get("Authorization", "")):
            message = "You didn't provide an API key. You need to provide your API key in an Authorization header."
            return _error_response(401, message, code="invalid_api_key")
        return await handler(request)

    # --- /v1/responses ------------------------------------------------------------------------

    async def _handle_responses(self, request: web.Request) -> web.Response:
        if not self.responses_api:
            return await self._handle_unknown(request)
        return await self._answer_request(request, self._respond_checked)

    async def _handle_chat(self, request: web.Request) -> web.Response:
        return await self._answer_request(request, self._chat_checked)

    def _respond_checked(self, body: dict[str, Any], malformed: str | None) -> web.Response:
        refusal = self._refusal(body, {"temperature": "temperature", "logprobs": "top_logprobs",
                                       "reasoning": "reasoning.effort"})
        return refusal or _json_response(self.respond(body, malformed))

    def _chat_checked(self, body: dict[str, Any], malformed: str | None) -> web.Response:
        refusal = self._refusal(body, {"temperature": "temperature", "logprobs": "logprobs",
                                       "reasoning": "reasoning_effort"})
        if refusal:
            return refusal
        if not self.schema_support and (body.get("response_format") or {}).get("type") == "json_schema":
            return _error_response(400, "response_format of type json_schema is not supported by this server",
                                   param="response_format")
        return _json_response(self.respond_chat(body, malformed))

    def _refusal(self, body: dict[str, Any], wire_names: dict[str, str]) -> web.Response | None:
        """The real API's 400 for the first parameter this model refuses that the body carries."""
        for parameter in self.refusing.get(body.get("model", ""), ()):
            name = wire_names[parameter]
            if name.split(".")[0] in body:
                return _error_response(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                                       code="unsupported_parameter", param=name)
        return None

    async def _answer_request(self, request: web.Request,
                              answer: Callable[[dict[str, Any], str | None], web.Response]) -> web.Response:
        switch = self._next_switch()
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            await self._hold()
            outage = self._current_outage()
            if outage == "drop":
                return self._dropped(request)
            key = request.headers.get("Authorization", "")
            response, stated = await self._limited_answer(request, key, answer, switch, outage)
            if isinstance(switch, _Truncated) and response.status == 200 and isinstance(response.body, bytes):
                response = web.Response(body=response.body[:len(response.body) // 2], status=200,
                                        content_type="application/json", headers={"x-request-id": _new_id("req_")})
            if self.rate_limit_headers:
                response.headers.update(stated or self._rate_headers(key))
            with self._lock:
                self.status_counts[response.status] += 1
            return response
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _hold(self) -> None:
        """With `hold_until_in_flight`: wait until that many calls were in flight at once, or until
        HOLD_SECONDS after the first held call (so a server that answers one at a time fails soon)."""
        if not self.hold_until_in_flight:
            return
        with self._lock:
            self._held_since = self._held_since or time.monotonic()
            deadline = self._held_since + HOLD_SECONDS
        while self.max_in_flight < self.hold_until_in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _limited_answer(self, request: web.Request, key: str,
                              answer: Callable[[dict[str, Any], str | None], web.Response],
                              switch: _Failure | _Malformed | _Truncated | None,
                              outage: int | str | None) -> tuple[web.Response, dict[str, str] | None]:
        """The answer, and the rate-limit headers as they stood when the request was judged (None: it
        was not judged; the headers then say how the buckets stand when it is answered)."""
        if outage is not None:
            return _error_response(int(outage)), None
        if isinstance(switch, _Failure):
            return _error_response(switch.status, switch.message, code=switch.code,
                                   retry_after=switch.retry_after), None
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error_response(400, "We could not parse the JSON body of your request."), None
        if not isinstance(body, dict) or not body.get("model"):
            return _error_response(400, "Missing required parameter: 'model'."), None
        if body.get("stream"):
            return _error_response(400, "FakeOpenAI does not support stream=true."), None
        if self.quota_exhausted:
            return _error_response(429, "You exceeded your current quota, please check your plan and billing "
                                        "details. For more information on this error, read the docs: "
                                        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                                   code="insufficient_quota", error_type="insufficient_quota"), None
        refusal, stated = self._spend(key, body)
        if refusal is not None:
            return refusal, stated
        return answer(body, switch.kind if isinstance(switch, _Malformed) else None), stated

    def _dropped(self, request: web.Request) -> web.Response:
        """Close the connection without an answer (the client sees it drop)."""
        with self._lock:
            self.status_counts["dropped"] += 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    # --- rate limits --------------------------------------------------------------------------

    def estimated_tokens(self, body: dict[str, Any]) -> int:
        """What a request counts against the token limit: its input estimate and its output maximum."""
        equivalent = responses_body(body) if "messages" in body else body
        most_output = body.get("max_output_tokens") or body.get("max_completion_tokens") or body.get("max_tokens") or 0
        return _estimate_tokens(_messages(equivalent), equivalent.get("instructions")) + int(most_output)

    def _bucket(self, key: str) -> _Buckets:
        """The key's buckets, refilled to now (call with the lock held)."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Buckets(self.limit_tokens, self.limit_requests, now))
        elapsed = now - bucket.at
        bucket.tokens = min(self.limit_tokens, bucket.tokens + elapsed * self.limit_tokens / self.minute)
        bucket.requests = min(self.limit_requests, bucket.requests + elapsed * self.limit_requests / self.minute)
        bucket.at = now
        return bucket

    def _spend(self, key: str, body: dict[str, Any]) -> tuple[web.Response | None, dict[str, str]]:
        """Spend the request from the key's buckets: the 429 that refuses it (which still spends) or None,
        and the rate-limit headers right after it was judged."""
        cost = self.estimated_tokens(body)
        model = body["model"]
        with self._lock:
            bucket = self._bucket(key)
            if cost > self.limit_tokens:
                message = (f"Request too large for {model} in organization org-fake on tokens per min (TPM): "
                           f"Limit {self.limit_tokens:.0f}, Requested {cost}. The input or output tokens must be "
                           "reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits "
                           "to learn more.")
                return _error_response(429, message, code="rate_limit_exceeded", error_type="tokens"), \
                    self._stated(bucket)
            short = None
            if bucket.requests < 1:
                short = ("requests", "RPM", self.limit_requests, 1.0, bucket.requests)
            elif bucket.tokens < cost:
                short = ("tokens", "TPM", self.limit_tokens, float(cost), bucket.tokens)
            bucket.tokens = max(0.0, bucket.tokens - cost)
            bucket.requests = max(0.0, bucket.requests - 1)
            stated = self._stated(bucket)
        if short is None:
            return None, stated
        kind, abbreviation, limit, requested, level = short
        wait = (requested - level) / (limit / self.minute)
        message = (f"Rate limit reached for {model} in organization org-fake on {kind} per min ({abbreviation}): "
                   f"Limit {limit:.0f}, Used {limit - level:.0f}, Requested {requested:.0f}. Please try again in "
                   f"{go_duration(wait)}. Visit https://platform.openai.com/account/rate-limits to learn more.")
        return _error_response(429, message, code="rate_limit_exceeded", error_type=kind, retry_after=wait), stated

    def _rate_headers(self, key: str) -> dict[str, str]:
        with self._lock:
            return self._stated(self._bucket(key))

    def _stated(self, bucket: _Buckets) -> dict[str, str]:
        """The x-ratelimit-* headers for a key's buckets as they stand (call with the lock held)."""
        headers = {}
        for kind, limit, level in (("requests", self.limit_requests, bucket.requests),
                                   ("tokens", self.limit_tokens, bucket.tokens)):
            headers[f"x-ratelimit-limit-{kind}"] = f"{limit:.0f}"
            headers[f"x-ratelimit-remaining-{kind}"] = f"{math.floor(level)}"
            headers[f"x-ratelimit-reset-{kind}"] = go_duration((limit - level) / (limit / self.minute))
        return headers

    def respond(self, body: dict[str, Any], malformed: str | None = None) -> dict[str, Any]:
        """The response object for a /v1/responses request body (used by batches as well)."""
        answer = self._answer(body, malformed)
        content: dict[str, Any] = {"type": "output_text", "text": answer.text, "annotations": []}
        if LOGPROBS_INCLUDE in (body.get("include") or []) and self.logprobs_enabled:
            content["logprobs"] = _logprobs(answer, self.label_probability, int(body.get("top_logprobs") or 0))
        now = int(time.time())
        return {
            "id": _new_id("resp_"),
            "object": "response",
            "created_at": now,
            "completed_at": now,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": [{
                "id": _new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [content],
            }],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage(body, answer.text),
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def respond_chat(self, body: dict[str, Any], malformed: str | None = None) -> dict[str, Any]:
        """The chat.completion object for a /v1/chat/completions request body."""
        equivalent = responses_body(body)
        answer = self._answer(equivalent, malformed)
        if "text" not in equivalent and not self.schema_support and _schema_in_instructions(equivalent):
            answer = _sloppy(answer)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": answer.text, "refusal": None}}
        if body.get("logprobs") and self.logprobs_enabled:
            choice["logprobs"] = {"content": _logprobs(answer, self.label_probability,
                                                       int(body.get("top_logprobs") or 0)), "refusal": None}
        usage = self._usage(equivalent, answer.text)
        return {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [choice],
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
            "usage": {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"],
                      "total_tokens": usage["total_tokens"],
                      "prompt_tokens_details": {"cached_tokens": usage["input_tokens_details"]["cached_tokens"],
                                                "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
        }

    def _answer(self, body: dict[str, Any], malformed: str | None) -> _Answer:
        text_format = (body.get("text") or {}).get("format") or {}
        schema = (text_format.get("schema") or {}) if text_format.get("type") == "json_schema" else \
            None if self.schema_support else _schema_in_instructions(body)
        if schema is None:
            return _Answer(self.follow_up_text)
        if malformed == "not_json":
            return _Answer(NOT_JSON_TEXT)
        properties = _properties(schema, schema)
        label_key = _label_property(properties)
        enum = list(properties[label_key].get("enum") or []) if label_key else []
        sha = query_image_sha256(body)
        default = self.model_labels.get(body.get("model", ""), self.default_label)
        label = self.labels.get(sha, default) if sha else default
        if enum and label not in enum:
            label = enum[0]
        if malformed == "bad_label":
            label = BAD_LABEL
        result: dict[str, Any] = {}
        for name, spec in properties.items():
            if name != label_key:
                value = _fill(name, spec, schema, label, self.confidence)
                result[name] = self.texts.get(sha or "", value) if isinstance(value, str) else value
            elif malformed != "missing_field":
                result[name] = label
        text = json.dumps(result, separators=(",", ":"))
        if label_key not in result:
            return _Answer(text)
        alternatives = tuple(value for value in enum if value != label)
        return _Answer(text, _value_span(text, label_key, label), alternatives)

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        messages = _messages(body)
        instructions = body.get("instructions")
        input_tokens = _estimate_tokens(messages, instructions)
        prefix = _prefix(messages)
        key = hashlib.sha256(
            json.dumps({"instructions": instructions, "input": prefix}, sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            seen = key in self._seen_prefixes
            self._seen_prefixes.add(key)
        prefix_tokens = _estimate_tokens(prefix, instructions)
        cached = prefix_tokens // CACHE_STEP * CACHE_STEP if seen else 0
        if cached < self.cache_min_tokens:
            cached = 0
        output_tokens = len(text) // 4 + 1
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }

    # --- files --------------------------------------------------------------------------------

    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        meta = {
            "id": _new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        with self._lock:
            self._files[meta["id"]] = (meta, data)
        return meta

    def file_bytes(self, file_id: str) -> bytes:
        """The stored content of an uploaded (or batch output) file."""
        with self._lock:
            return self._files[file_id][1]

    async def _handle_file_upload(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            return _error_response(400, "Expected multipart/form-data.")
        fields = _parse_multipart(request.headers["Content-Type"], await request.read())
        if "file" not in fields or "purpose" not in fields:
            return _error_response(400, "Missing required parameter: 'file' or 'purpose'.")
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode()
        return _json_response(self._store_file(data, filename or "upload", purpose))

    def _file_or_404(self, request: web.Request) -> tuple[dict[str, Any], bytes] | None:
        with self._lock:
            return self._files.get(request.match_info["file_id"])

    async def _handle_file_get(self, request: web.Request) -> web.Response:
        stored = self._file_or_404(request)
        if stored is None:
            return _error_response(404, f"No such File object: {request.match_info['file_id']}")
        return _json_response(stored[0])

    async def _handle_file_content(self, request: web.Request) -> web.Response:
        stored = self._file_or_404(request)
        if stored is None:
            return _error_response(404, f"No such File object: {request.match_info['file_id']}")
        return web.Response(body=stored[1], content_type="application/octet-stream",
                            headers={"x-request-id": _new_id("req_")})

    # --- batches ------------------------------------------------------------------------------

    async def _handle_batch_create(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error_response(400, "We could not parse the JSON body of your request.")
        file_id = body.get("input_file_id")
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return _error_response(400, f"Invalid 'input_file_id': '{file_id}'.")
        total = sum(1 for line in stored[1].splitlines() if line.strip())
        now = int(time.time())
        batch = {
            "id": _new_id("batch_"),
            "object": "batch",
            "endpoint": body.get("endpoint"),
            "errors": None,
            "input_file_id": file_id,
            "completion_window": body.get("completion_window"),
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": total, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self._batches[batch["id"]] = batch
            lost = self._lost_batch_answers > 0
            if lost:
                self._lost_batch_answers -= 1
        return self._dropped(request) if lost else _json_response(batch)

    async def _handle_batch_list(self, request: web.Request) -> web.Response:
        """The batches, newest first, a page of `limit` (at most 100) after the batch id `after`."""
        if not self.batch_list:
            return await self._handle_unknown(request)
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
        newest_first = list(reversed(self.batches()))
        ids = [batch["id"] for batch in newest_first]
        after = request.query.get("after")
        start = ids.index(after) + 1 if after in ids else 0
        page = newest_first[start:start + limit]
        return _json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                               "last_id": page[-1]["id"] if page else None,
                               "has_more": start + limit < len(newest_first)})

    def _batch_or_none(self, request: web.Request) -> dict[str, Any] | None:
        with self._lock:
            return self._batches.get(request.match_info["batch_id"])

    async def _handle_batch_get(self, request: web.Request) -> web.Response:
        batch = self._batch_or_none(request)
        if batch is None:
            return _error_response(404, f"No batch found with id '{request.match_info['batch_id']}'.")
        if batch["status"] == "in_progress" and self.batches_complete:
            self._complete_batch(batch)
        return _json_response(batch)

    async def _handle_batch_cancel(self, request: web.Request) -> web.Response:
        batch = self._batch_or_none(request)
        if batch is None:
            return _error_response(404, f"No batch found with id '{request.match_info['batch_id']}'.")
        if batch["status"] == "in_progress":
            now = int(time.time())
            batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
        return _json_response(batch)

    def _complete_batch(self, batch: dict[str, Any]) -> None:
        outputs, errors = [], []
        usage_total = {"input_tokens": 0, "cached_tokens": 0, "output_tokens": 0}
        lines = [json.loads(line) for line in self.file_bytes(batch["input_file_id"]).splitlines() if line.strip()]
        expire_after = self.batch_expire_after
        for number, line in enumerate(lines):
            if expire_after is not None and number >= expire_after:
                errors.append({"id": _new_id("batch_req_"), "custom_id": line.get("custom_id"), "response": None,
                               "error": {"code": "batch_expired", "message": "This request could not be executed "
                                         "before the completion window expired."}})
                continue
            entry, usage = self._batch_line(line, batch["endpoint"])
            (outputs if usage is not None else errors).append(entry)
            if usage is not None:
                usage_total["input_tokens"] += usage["input_tokens"]
                usage_total["cached_tokens"] += usage["input_tokens_details"]["cached_tokens"]
                usage_total["output_tokens"] += usage["output_tokens"]
        now = int(time.time())
        ended = {"status": "expired", "expired_at": now} if expire_after is not None else \
            {"status": "completed", "completed_at": now}
        batch.update(**ended, finalizing_at=now,
                     request_counts={"total": len(outputs) + len(errors), "completed": len(outputs),
                                     "failed": len(errors)},
                     usage={"input_tokens": usage_total["input_tokens"],
                            "input_tokens_details": {"cached_tokens": usage_total["cached_tokens"]},
                            "output_tokens": usage_total["output_tokens"],
                            "output_tokens_details": {"reasoning_tokens": 0},
                            "total_tokens": usage_total["input_tokens"] + usage_total["output_tokens"]})
        if outputs:
            batch["output_file_id"] = self._store_jsonl(outputs, f"{batch['id']}_output.jsonl")
        if errors:
            batch["error_file_id"] = self._store_jsonl(errors, f"{batch['id']}_error.jsonl")

    def _batch_line(self, line: dict[str, Any], endpoint: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """One output line for one input line, and its usage (None for a failed line)."""
        entry: dict[str, Any] = {"id": _new_id("batch_req_"), "custom_id": line.get("custom_id"), "error": None}
        body = line.get("body")
        responders = {"/v1/responses": self.respond, "/v1/chat/completions": self.respond_chat}
        if line.get("method") != "POST" or line.get("url") != endpoint or endpoint not in responders \
                or not isinstance(body, dict) or not body.get("model"):
            message = f"The line must POST a body with a model to {endpoint}; only {', '.join(responders)} are faked."
            entry["response"] = {"status_code": 400, "request_id": _new_id(""), "body": error_body(400, message)}
            return entry, None
        with self._lock:
            failure = self._batch_failures.get(query_image_sha256(responses_body(body) if endpoint != "/v1/responses"
                                                                  else body) or "")
        if failure is not None:
            entry["response"] = {"status_code": failure, "request_id": _new_id(""), "body": error_body(failure)}
            return entry, None
        response = responders[endpoint](body)
        entry["response"] = {"status_code": 200, "request_id": _new_id(""), "body": response}
        usage = response["usage"]
        if endpoint == "/v1/chat/completions":
            usage = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
                     "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]}}
        return entry, usage

    def _store_jsonl(self, entries: list[dict[str, Any]], filename: str) -> str:
        data = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
        return self._store_file(data, filename, "batch_output")["id"]

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return _error_response(404, f"Invalid URL ({request.method} {request.path})")

"""HTTP mode's front door: an ASGI app that reads each request itself and hands Bolt only complete,
bounded, signed, fresh and well-formed ones.

Worker model: gunicorn runs this app with uvicorn's worker (the uvicorn-worker package), one process.
A gthread worker gives each connection a thread while it reads the request, so 20 clients that open a
connection and stall hold every thread and Slack's signed requests time out. On uvicorn's event loop a
waiting client costs a coroutine and a small buffer; a thread is taken only to run Bolt on a request
that has fully arrived and passed the checks. uvicorn is the ASGI server gunicorn's own docs suggest
for async workers, and it keeps gunicorn's process management and signals; gevent was ruled out
because its monkey-patching would turn the job threads (Pillow decoding, database calls) into
greenlets that block one another.

GET /healthz and /metrics go to bot/ops_server.py's endpoints (`ops`) before any of this. The rest is
checked, in order, each refusal logged without the body: POST to the events path (404/405); a body no
larger than the cap, judged from Content-Length before reading and again while reading (413), that
arrives within a deadline (408); Slack's signature over the timestamp and body, with a numeric
timestamp no older than five minutes (401); a body Bolt can parse (400).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.ops_server import OPS_PATHS, OpsEndpoints

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack's event payloads are a few KB; its documented limits are far below this
BODY_SECONDS = 10.0
MAX_AGE_SECONDS = 300  # Slack's advice: refuse requests older than five minutes (replays)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Refused(Exception):
    """A request that does not reach Bolt: its HTTP status and a reason for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def signature_problem(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> str | None:
    """Why the request is not from Slack (None when it is): its timestamp is missing, not a number or
    stale, or its signature is missing or wrong."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "missing or malformed X-Slack-Request-Timestamp"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "stale X-Slack-Request-Timestamp"
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), headers.get("x-slack-signature", "").encode("utf-8", "replace")):
        return "bad X-Slack-Signature"
    return None


def body_problem(content_type: str, body: bytes) -> str | None:
    """Why Bolt could not parse the body (None when it can): not UTF-8, or JSON that is not an object,
    or a form whose `payload` is not."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            return None if isinstance(json.loads(text), dict) else "JSON body is not an object"
        payload = parse_qs(text).get("payload")
        return None if payload is None or isinstance(json.loads(payload[0]), dict) else "payload is not an object"
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return f"unparsable body ({type(error).__name__})"


class SlackFront:
    """The ASGI app gunicorn serves; see the module docstring."""

    def __init__(self, app: App, *, signing_secret: str, path: str, threads: int,
                 max_body_bytes: int = MAX_BODY_BYTES, clock: Callable[[], float] = time.time,
                 on_shutdown: Callable[[], None] = lambda: None, ops: OpsEndpoints | None = None) -> None:
        self.app = app
        self.ops = ops
        self.on_shutdown = on_shutdown  # after the last request: let the bot's jobs finish
        self.signing_secret = signing_secret
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="http")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and self.ops and scope["path"] in OPS_PATHS:
            await self.ops(scope, receive, send)
        elif scope["type"] == "http":
            try:
                status, headers, body = await self._handle(scope, receive)
            except Refused as refusal:
                client = (scope.get("client") or ("?",))[0]
                log.warning("refused %s %s from %s (%s): %s", scope["method"], scope["path"], client,
                            refusal.status, refusal)
                status, headers, body = refusal.status, {"content-type": ["text/plain"]}, str(refusal)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.encode(), v.encode()) for k, values in headers.items() for v in values]})
            await send({"type": "http.response.body", "body": body.encode()})

    async def _handle(self, scope: dict[str, Any], receive: Receive) -> tuple[int, dict[str, Any], str]:
        if scope["path"] != self.path:
            raise Refused(404, "not found")
        if scope["method"] != "POST":
            raise Refused(405, "method not allowed")
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            raise Refused(400, "malformed Content-Length")
        if int(declared) > self.max_body_bytes:
            raise Refused(413, f"body of {declared} bytes is over the {self.max_body_bytes} byte limit")
        body = await self._body(receive)
        problem = signature_problem(headers, body, self.signing_secret, self.clock())
        if problem:
            raise Refused(401, problem)
        problem = body_problem(headers.get("content-type", ""), body)
        if problem:
            raise Refused(400, problem)
        request = BoltRequest(body=body.decode(), query=scope.get("query_string", b"").decode("latin-1"),
                              headers=headers)
        response = await asyncio.get_running_loop().run_in_executor(self.pool, self.app.dispatch, request)
        return response.status, response.headers, response.body

    async def _body(self, receive: Receive) -> bytes:
        """The whole body, refused once it passes the cap or the deadline."""
        chunks, size = [], 0
        try:
            async with asyncio.timeout(BODY_SECONDS):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Refused(400, "client went away")
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.max_body_bytes:
                        raise Refused(413, f"body over the {self.max_body_bytes} byte limit")
                    if not message.get("more_body"):
                        return b"".join(chunks)
        except TimeoutError:
            raise Refused(408, f"body not received within {BODY_SECONDS:g} s") from None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown)
                if self.ops:
                    self.ops.close()
                await asyncio.get_running_loop().run_in_executor(None, self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

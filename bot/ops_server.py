"""GET /healthz and GET /metrics: one small ASGI app, served by HTTP mode's SlackFront on the app's own
port, or in Socket Mode by `HealthServer` (uvicorn in a thread) on HEALTH_PORT.

The checks and the metrics run in two threads of their own with a deadline, so a database that hangs
makes /healthz answer 503 in a few seconds instead of never, and never blocks the event loop that
also serves Slack's requests. What they say is decided in bot/ops.py.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, TypeVar

import uvicorn
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder

from bot.budget import month_start
from bot.ops import DURATION_BOUNDS, Check, Reading, ReadingCollector, database_check, health, process_check
from bot.provider import snapshots
from bot.store import Store

log = logging.getLogger(__name__)
HEALTH_PATH, METRICS_PATH = "/healthz", "/metrics"
OPS_PATHS = (HEALTH_PATH, METRICS_PATH)
DATABASE_SECONDS = 3.0  # /healthz calls the database unwell past this
METRICS_SECONDS = 10.0  # Prometheus's default scrape timeout

T = TypeVar("T")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def read_store(store: Store, month_budget_usd: float | None, now: float | None = None) -> Reading:
    now = time.time() if now is None else now
    return Reading(queue=store.queue_depth(), durations=store.job_durations(DURATION_BOUNDS),
                   duration_bounds=DURATION_BOUNDS,
                   services=snapshots(store, now), spend_usd=store.spend_since(0),
                   month_spend_usd=store.spend_since(month_start(now)), month_budget_usd=month_budget_usd)


class OpsEndpoints:
    """The ASGI app for GET /healthz and GET /metrics (any other request: 404 or 405).

    `process` and `slack` say how those parts are (cheap, no I/O); the database is asked `SELECT 1`.
    With a `metrics_token`, /metrics wants `Authorization: Bearer <token>`.
    """

    def __init__(self, store: Store, *, process: Callable[[], Check], slack: Callable[[], Check],
                 month_budget_usd: float | None = None, metrics_token: str = "",
                 database_seconds: float = DATABASE_SECONDS, metrics_seconds: float = METRICS_SECONDS) -> None:
        self.store = store
        self.process = process
        self.slack = slack
        self.metrics_token = metrics_token
        self.database_seconds = database_seconds
        self.metrics_seconds = metrics_seconds
        self.registry = CollectorRegistry()
        self.registry.register(ReadingCollector(lambda: read_store(store, month_budget_usd)))
        ProcessCollector(registry=self.registry)  # this process's memory, CPU and open files
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="ops")  # a hung database holds at most these

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        status, content_type, body = await self.answer(scope["method"], scope["path"], headers)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
                    + ([(b"www-authenticate", b"Bearer")] if status == 401 else [])})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        if path not in OPS_PATHS:
            return 404, "text/plain", b"not found"
        if method != "GET":
            return 405, "text/plain", b"method not allowed"
        if path == HEALTH_PATH:
            status, body = health(await self.checks())
            return status, "application/json", body.encode()
        if self.metrics_token and not hmac.compare_digest(headers.get("authorization", "").encode(),
                                                          f"Bearer {self.metrics_token}".encode()):
            return 401, "text/plain", b"a bearer token is needed (METRICS_TOKEN)"
        return await self.metrics(headers.get("accept", ""))

    async def checks(self) -> list[Check]:
        try:
            await self._in_thread(self.store.ping, self.database_seconds)
            database = database_check(None, self.database_seconds)
        except Exception as error:  # any failure of the database is "unwell"; the log keeps its class only
            database = database_check(error, self.database_seconds)
            log.warning("health: database %s", database.problem)
        return [self.process(), database, self.slack()]

    async def metrics(self, accept: str) -> tuple[int, str, bytes]:
        encode, content_type = choose_encoder(accept)
        try:
            return 200, content_type, await self._in_thread(lambda: encode(self.registry), self.metrics_seconds)
        except Exception as error:
            log.warning("metrics: could not read the database (%s)", type(error).__name__)
            return 503, "text/plain", b"the database is not answering: no metrics"

    async def _in_thread(self, work: Callable[[], T], seconds: float) -> T:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self.pool, work), seconds)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class HealthServer:
    """Socket Mode's small HTTP server: `endpoints` on host:port (port 0: any free one, see `.port`),
    served by uvicorn on a thread of its own until `close()`."""

    def __init__(self, endpoints: OpsEndpoints, host: str, port: int) -> None:
        self.endpoints = endpoints
        self.socket = socket.create_server((host, port))  # listening before the thread starts: no race
        config = uvicorn.Config(endpoints, lifespan="off", log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="health-server", daemon=True)
        self.thread.start()
        log.info("GET /healthz and /metrics on port %s", self.port)

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.socket.close()
        self.endpoints.close()

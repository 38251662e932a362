"""A fake Slack (Web API + Socket Mode + file hosting) for tests.

It listens on 127.0.0.1 with an ephemeral port and is served by aiohttp in a
background thread that owns its own event loop.  HTTP and the Socket Mode
websocket share that one port.  The real ``slack_sdk.WebClient``, the real
``slack_bolt`` App, the built-in ``SocketModeHandler`` and ``requests`` talk to
it exactly as they would talk to slack.com.

Usage::

    from slack_sdk import WebClient
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from tests.fakes.slack_server import FakeSlack

    with FakeSlack() as fake:
        client = WebClient(base_url=fake.api_url, token=fake.bot_token)
        app = App(client=client)              # calls auth.test on the fake

        @app.event("message")
        def on_message(event, client):
            client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="hi")

        handler = SocketModeHandler(app, fake.app_token)
        handler.connect()                     # apps.connections.open + websocket
        fake.wait_connected()

        img = fake.add_file("drop.jpg", jpeg_bytes)
        event = fake.add_message("C1", "look", files=[img])
        envelope_id = fake.push_event(event)
        assert fake.wait_for_ack(envelope_id) is None
        post = fake.wait_for(lambda: fake.calls_to("chat.postMessage"))[0]
        assert post.params["thread_ts"] == event["ts"]
        handler.close()                       # close the client before the fake stops

Clear HTTP(S)_PROXY / ALL_PROXY (both cases) in tests: the built-in Socket
Mode client honours proxy variables but ignores NO_PROXY.

Every Web API request is recorded as an :class:`ApiCall` (``fake.calls``,
``fake.calls_to(method)``).  Web API answers are HTTP 200 JSON with
``ok: true/false``; ``rate_limit_next`` makes the next calls answer HTTP 429
with ``Retry-After``; ``limit_posts_per_channel`` enforces Slack's "about one
message a second per channel" on chat.postMessage; ``fail_next`` answers an
HTTP error status (e.g. 503); ``drop_after_accepting`` carries out the next
calls and then closes the connection without an answer (the post exists, the
client sees a dropped connection); ``answer_late`` carries out the next call at once
and answers it only some seconds later (a slow network: people see the post before
the client hears its ts); ``carry_out_late`` holds the next call with given parameters
some seconds before carrying it out (a request that is slow to arrive).  ``set_handler`` adds or overrides a Web API
method.  ``conversations.replies`` returns message metadata only when asked
with ``include_all_metadata``, as Slack does (so does ``conversations.history``,
newest first).  Events go to the newest
connection, or to each connection in turn with ``round_robin = True``.
``files.getUploadURLExternal``, the upload URL it hands out and
``files.completeUploadExternal`` work as ``files_upload_v2`` uses them; the
files shared are in ``fake.uploads`` with their bytes.
``files_upload_v2`` works in its three steps (``files.getUploadURLExternal``, the
bytes POSTed to the returned URL, ``files.completeUploadExternal`` sharing the file
in ``channel_id``; the upload URL takes files of up to 1 GB, as Slack's does, not aiohttp's default
1 MB); ``file_content`` gives an uploaded file's bytes back, and
``conversations.open`` gives a person's DM channel (``D`` + the user id).
``files.delete`` deletes a file the bot uploaded (a file someone else shared: ``cant_delete_file``);
``deleted_files`` lists them. As Slack does, a message (posted or updated) or a view whose image block
names a ``slack_file`` that is not there (never shared, or deleted) is refused with ``invalid_blocks``, as is
one with a menu beyond Block Kit's limits (an overflow menu of more than 5 options, a select of more than
100, an option's text over 75 characters).
``views.open`` opens a modal as Slack checks it (a trigger_id from a click or command, used once
within 3 s; title length, block count, image blocks); ``opened_views`` lists them, and
``view_submission_payload`` fills one in for ``push_interactive``.

Channels, people and deletion, as Slack answers a bot token (scopes channels:read, groups:read,
users:read, files:read, chat:write):

- ``add_channel(name, id, private=..., members=[...])`` registers a channel; ``add_user(id, guest=...)``
  a person. A channel nobody gave members to is like #general: U1 to U9, the bot, and everyone else the
  fake has heard of (users added, or seen in messages, payloads and events) are in it. A private channel is private
  whatever the first letter of its id (ids of private channels may start with C or G).
- ``conversations.members``: the channel's user ids, paged by ``limit`` (default 100) and ``cursor``
  (``response_metadata.next_cursor``, "" on the last page); ``channel_not_found`` for a private channel
  the bot is not in.  ``conversations.info``: ``{"channel": {"id", "name", "is_channel", "is_group",
  "is_private", "is_im", "is_archived", "is_member"}}`` (a ``D`` id is an IM).  ``users.info``:
  ``{"user": {"id", "name", "is_bot", "deleted", "is_restricted", "is_ultra_restricted"}}`` (a
  multi-channel guest is restricted, a single-channel guest ultra-restricted; someone never added is an
  ordinary member).  ``users.conversations`` (``user``, ``types``, ``exclude_archived``, paged): the
  person's public channels, and their private channels only where the bot is a member too.
- ``chat.delete`` deletes one of the bot's own messages (``cant_delete_message`` for others',
  ``message_not_found`` for one already gone).  ``files.info`` lists where a file is shared:
  ``channels`` (public), ``groups`` (private), ``ims``, and ``shares``.
- Events, in the shapes the Events API sends (each method changes the fake's state and returns the
  event for ``push_event``):
  ``join``: ``{"type": "member_joined_channel", "user", "channel", "channel_type": "C"|"G", "team",
  "event_ts"}`` (``inviter`` when invited); ``leave``: ``member_left_channel`` with the same fields
  but ``inviter``; ``remove_bot``: ``{"type": "channel_left"|"group_left", "channel", "actor_id",
  "event_ts"}`` (the bot gets no member_left_channel for itself: it is no longer in the channel);
  ``archive``: ``{"type": "channel_archive"|"group_archive", "channel", "user", "event_ts"}``;
  ``delete_channel``: ``{"type": "channel_deleted"|"group_deleted", "channel", "event_ts"}``;
  ``file_deleted_event``: ``{"type": "file_deleted", "file_id", "event_ts"}`` (the file object is not
  sent, only its id); ``unshare_file``: ``{"type": "file_unshared", "file_id", "user_id", "file":
  {"id"}, "channel_id", "event_ts"}``; ``delete_message``: ``{"type": "message", "subtype":
  "message_deleted", "hidden": true, "channel", "ts", "deleted_ts", "event_ts", "channel_type",
  "previous_message": {the message as it was}}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, TypeVar
from urllib.parse import quote

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

T = TypeVar("T")
ApiHandler = Callable[[dict[str, Any]], dict[str, Any]]

# Form fields that Slack clients send as JSON-encoded strings.
JSON_STRING_FIELDS = ("blocks", "attachments", "metadata", "view", "unfurls", "user_auth_blocks")
APP_ID = "A1"
HOME_BLOCK_LIMIT = 100
MODAL_BLOCK_LIMIT = 100
MODAL_TITLE_LIMIT = 24  # characters of a modal's title, submit and close labels
PRIVATE_METADATA_LIMIT = 3000
TRIGGER_SECONDS = 3  # a trigger_id opens a view only this long after the click
UPLOAD_LIMIT = 1024 ** 3  # bytes of one file POSTed to an upload URL (Slack takes files of up to 1 GB)
FIRST_TS_SECONDS = 1700000100


class SlackError(Exception):
    """Raised by a Web API handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


@dataclass
class ApiCall:
    """One recorded Web API request."""

    method: str  # e.g. "chat.postMessage"
    params: dict[str, Any]  # query + form/JSON body merged; JSON-string fields decoded
    headers: CIMultiDict[str]  # case-insensitive (urllib sends "Content-type")
    http_method: str = "POST"
    path: str = ""
    content_type: str = ""
    status: int = 200  # HTTP status the fake answered
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return self.params.get("token")

    def short(self, limit: int = 160) -> str:
        text = json.dumps(self.params, default=str)
        if len(text) > limit:
            text = text[:limit] + "..."
        return f"{self.method} [{self.status} {self.response.get('error', 'ok')}] {text}"


class Download(NamedTuple):
    """One GET of a hosted file URL (or of the ``elsewhere`` URL)."""

    path: str
    headers: CIMultiDict[str]  # case-insensitive


@dataclass
class Upload:
    """A file uploaded through the external upload methods; `channel` and `thread_ts` once shared."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None


@dataclass
class _StoredFile:
    info: dict[str, Any]  # full Slack file object, as files.info returns it
    data: bytes
    redirect_to: str | None = None
    drip_seconds: float | None = None


@dataclass
class _RateLimit:
    remaining: int
    retry_after: int


@dataclass
class _RawFailure:
    remaining: int
    status: int
    body: str
    content_type: str


class Seen(NamedTuple):
    """Any HTTP request the fake received, with the host name it was addressed to (its Host header)."""

    host: str
    path: str
    authorization: str | None


class FakeSlack:
    """Fake Slack server; see the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T1",
        team_url: str = "https://lab.slack.com/",
        ping_interval: float | None = 0.2,
    ):
        """``ping_interval``: seconds between websocket pings the server sends (None: never).

        Slack pings its clients too.  Frequent pings also make the built-in
        client's ``close()`` fast: it waits for its blocking ``recv`` (3 s
        timeout) to return before it can close the socket.
        """
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.team_url = team_url
        self.ping_interval = ping_interval
        self.port = 0

        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._downloads: list[Download] = []
        self._response_url_posts: list[tuple[str, Any]] = []
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._reactions: dict[tuple[str, str], set[str]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._uploads: dict[str, Upload] = {}
        self._deleted: list[str] = []  # files the bot deleted (files.delete), in order
        self._home_views: dict[str, dict[str, Any]] = {}
        self._views: list[dict[str, Any]] = []  # modals opened with views.open, oldest first
        self._triggers: dict[str, float] = {}  # trigger_id -> when it was handed out
        self._channels: list[dict[str, Any]] = []  # what conversations.list knows (add_channel)
        self._members: dict[str, set[str]] = {}  # channel -> its members, for channels given some
        self._users: dict[str, dict[str, Any]] = {}  # user id -> users.info's user object (add_user)
        self._heard_of: set[str] = {f"U{n}" for n in range(1, 10)}  # the members of a channel nobody set members of
        self._file_shares: dict[str, set[str]] = {}  # file id -> channels it is shared in
        self._rate_limits: dict[str, _RateLimit] = {}
        self._drops: dict[str, int] = {}
        self._late: dict[str, float] = {}  # method -> seconds its next call's answer waits
        self._held: list[tuple[str, dict[str, Any], float]] = []  # (method, parameters, seconds) before carrying out
        self._post_buckets: dict[str, tuple[float, float]] = {}
        self.posts_per_second: float | None = None
        self.post_burst = 3
        self.round_robin = False
        self._next_socket = itertools.count()
        self._raw_failures: dict[str, _RawFailure] = {}
        self._seen: list[Seen] = []
        self._acks: dict[str, dict[str, Any] | None] = {}
        self._socket_messages: list[dict[str, Any]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._connection_count = 0
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)

        self._handlers: dict[str, ApiHandler] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "files.info": self._files_info,
            "conversations.open": self._conversations_open,
            "conversations.list": self._conversations_list,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.delete": self._files_delete,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "users.conversations": self._users_conversations,
            "chat.delete": self._chat_delete,
        }

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------
    # lifecycle

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeSlack:
        if self._thread is not None:
            raise RuntimeError("FakeSlack already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-slack", daemon=True)
        self._thread.start()
        try:
            self._run(self._startup())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self._run(self._shutdown(), timeout=15)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop, self._thread = None, None

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server loop from the calling thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _startup(self) -> None:
        app = web.Application(middlewares=[self._record_every_request], client_max_size=UPLOAD_LIMIT)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_get("/files-pri/{key}/{tail:.+}", self._handle_file)
        app.router.add_get("/signin", self._handle_signin)
        app.router.add_get("/elsewhere/{tail:.*}", self._handle_elsewhere)
        app.router.add_post("/response-url/{tail:.*}", self._handle_response_url)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @web.middleware
    async def _record_every_request(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        with self._lock:
            self._seen.append(Seen(request.host.rsplit(":", 1)[0], request.path_qs,
                                   request.headers.get("Authorization")))
        return await handler(request)

    async def _shutdown(self) -> None:
        for ws in self._open_sockets():
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # ------------------------------------------------------------------
    # addresses

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def elsewhere_url(self) -> str:
        """A URL on a *different host name* (localhost) served by this fake; records into downloads."""
        return f"http://localhost:{self.port}/elsewhere/"

    # ------------------------------------------------------------------
    # recorded traffic (thread-safe snapshots)

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    @property
    def downloads(self) -> list[Download]:
        with self._lock:
            return list(self._downloads)

    def requests_to(self, host: str) -> list[Seen]:
        """Every request addressed to host name ``host`` (e.g. "localhost", the other name of this fake)."""
        with self._lock:
            return [seen for seen in self._seen if seen.host == host]

    @property
    def response_url_posts(self) -> list[tuple[str, Any]]:
        """(path, JSON body) of POSTs to response_url values made by the builders."""
        with self._lock:
            return list(self._response_url_posts)

    @property
    def acks(self) -> dict[str, dict[str, Any] | None]:
        with self._lock:
            return dict(self._acks)

    @property
    def socket_messages(self) -> list[dict[str, Any]]:
        """Every JSON message a Socket Mode client sent to the fake."""
        with self._lock:
            return list(self._socket_messages)

    @property
    def uploads(self) -> list[Upload]:
        """Files shared through files.completeUploadExternal, in order."""
        with self._lock:
            return [upload for upload in self._uploads.values() if upload.channel]

    @property
    def deleted_files(self) -> list[str]:
        """Ids of the files deleted with files.delete, in order."""
        with self._lock:
            return list(self._deleted)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Stored messages of a channel (bot posts and add_message), in ts order."""
        with self._lock:
            return [dict(m) for m in sorted(self._messages.get(channel, []), key=_ts_key)]

    def reactions(self, channel: str, ts: str) -> set[str]:
        with self._lock:
            return set(self._reactions.get((channel, ts), set()))

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Poll ``predicate()`` until truthy and return its value; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}\n{self.dump()}")
            time.sleep(0.02)

    def dump(self, last: int = 25) -> str:
        calls = self.calls[-last:]
        lines = [f"recent Web API calls ({len(calls)} of {len(self.calls)}):"]
        lines += [f"  {c.short()}" for c in calls]
        lines.append(f"acks: {self.acks}")
        return "\n".join(lines)

    # ------------------------------------------------------------------
    # test-side switches and state

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429 with Retry-After."""
        with self._lock:
            self._rate_limits[method] = _RateLimit(times, retry_after)

    def fail_next(self, method: str, status: int = 503, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP ``status`` (and are not carried out)."""
        self.fail_next_raw(method, status, json.dumps({"ok": False, "error": "service_unavailable"}),
                           content_type="application/json", times=times)

    def drop_after_accepting(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are carried out, then the connection is closed unanswered."""
        with self._lock:
            self._drops[method] = self._drops.get(method, 0) + times

    def answer_late(self, method: str, seconds: float) -> None:
        """The next call of ``method`` is carried out (and recorded) at once, and answered ``seconds`` later."""
        with self._lock:
            self._late[method] = seconds

    def carry_out_late(self, method: str, seconds: float, **params: Any) -> None:
        """The next call of ``method`` with these parameters waits ``seconds`` before it is carried out."""
        with self._lock:
            self._held.append((method, params, seconds))

    def limit_posts_per_channel(self, per_second: float = 1.0, burst: int = 3) -> None:
        """chat.postMessage answers 429 (Retry-After: 1) past ``per_second`` per channel after a ``burst``."""
        with self._lock:
            self.posts_per_second, self.post_burst = per_second, burst
    def fail_next_raw(self, method: str, status: int, body: str, *, content_type: str = "text/html",
                      times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP ``status`` with ``body`` (e.g. an HTML error page)."""
        with self._lock:
            self._raw_failures[method] = _RawFailure(times, status, body, content_type)

    def drip_file(self, file_id: str, seconds: float) -> None:
        """Serve the file one byte every ``seconds`` (a stalling server)."""
        with self._lock:
            self._files[file_id].drip_seconds = seconds

    def set_handler(self, method: str, handler: ApiHandler) -> None:
        """Add/override a Web API method: handler(params) -> response dict (``ok`` is added).

        Raise :class:`SlackError` to answer ``ok: false``.  Called on the server
        thread; the token was already checked against the bot token.
        """
        self._handlers[method] = handler

    def add_file(
        self,
        name: str,
        data: bytes,
        mimetype: str = "image/jpeg",
        filetype: str = "jpg",
        *,
        file_id: str | None = None,
        pending_scan: bool = False,
        user: str = "U1",
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """Host a file; return the file object as a message event carries it."""
        file_id = file_id or f"F{next(self._id_counter):09d}"
        now = int(time.time())
        prefix = f"{self.base_url}/files-pri/{self.team_id}-{file_id}"
        info: dict[str, Any] = {
            "id": file_id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{prefix}/{quote(name)}",
            "url_private_download": f"{prefix}/download/{quote(name)}",
            "permalink": f"{self.team_url}files/{user}/{file_id}/{quote(name)}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{file_id}-0000000000",
            "is_starred": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        size = (width, height) if width and height else _image_size(data)
        if size:
            info["original_w"], info["original_h"] = size
        with self._lock:
            self._files[file_id] = _StoredFile(info=info, data=data)
        if pending_scan:
            return _pending_scan_file(info)
        return dict(info)

    def add_channel(self, name: str, channel_id: str, *, private: bool = False, archived: bool = False,
                    members: list[str] | None = None) -> None:
        """A channel conversations.list lists (other methods take any channel id); with `members` (the bot
        among them if it is in), only they are in it."""
        with self._lock:
            self._channels.append({"id": channel_id, "name": name, "is_channel": not private, "is_group": private,
                                   "is_private": private, "is_archived": archived,
                                   "is_member": members is None or self.bot_user_id in members})
            if members is not None:
                self._members[channel_id] = set(members)
                self._heard_of.update(members)

    def add_user(self, user_id: str, *, guest: bool = False, single_channel: bool = False) -> None:
        """A person users.info describes: a guest (multi-channel: restricted; single-channel: ultra)."""
        with self._lock:
            self._heard_of.add(user_id)
            self._users[user_id] = {"id": user_id, "team_id": self.team_id, "name": user_id.lower(), "deleted": False,
                                    "is_bot": False, "is_admin": False, "is_restricted": guest,
                                    "is_ultra_restricted": guest and single_channel}

    def members_of(self, channel: str) -> set[str]:
        """Who is in a channel (lock not held)."""
        with self._lock:
            return self._members_of(channel)

    def _members_of(self, channel: str) -> set[str]:
        """Lock held."""
        return set(self._members[channel]) if channel in self._members else self._heard_of | {self.bot_user_id}

    def _channel_info(self, channel: str) -> dict[str, Any]:
        """A conversation object; a channel never registered is a public one.  Lock held."""
        known = next((dict(c) for c in self._channels if c["id"] == channel), None)
        if channel.startswith("D"):
            return {"id": channel, "is_im": True, "is_private": True, "is_channel": False, "is_group": False,
                    "user": channel[1:], "is_archived": False, "is_member": True}
        info = known or {"id": channel, "name": channel.lower(), "is_channel": True, "is_group": False,
                         "is_private": False, "is_archived": False}
        return {**info, "is_im": False, "is_member": self.bot_user_id in self._members_of(channel)}

    def join(self, user: str, channel: str, *, inviter: str | None = None) -> dict[str, Any]:
        """`user` joins (or is invited to) a channel: member_joined_channel."""
        with self._lock:
            self._members[channel] = self._members_of(channel) | {user}
            self._heard_of.add(user)
            event = self._member_event("member_joined_channel", user, channel)
        return {**event, "inviter": inviter} if inviter else event

    def leave(self, user: str, channel: str) -> dict[str, Any]:
        """`user` leaves (or is removed from) a channel: member_left_channel."""
        with self._lock:
            self._members[channel] = self._members_of(channel) - {user}
            return self._member_event("member_left_channel", user, channel)

    def _member_event(self, kind: str, user: str, channel: str) -> dict[str, Any]:
        """Lock held."""
        private = self._channel_info(channel)["is_private"]
        return {"type": kind, "user": user, "channel": channel, "channel_type": "G" if private else "C",
                "team": self.team_id, "event_ts": f"{time.time():.6f}"}

    def _lifecycle_event(self, channel: str, public_kind: str, private_kind: str, **fields: Any) -> dict[str, Any]:
        """Lock held."""
        kind = private_kind if self._channel_info(channel)["is_private"] else public_kind
        return {"type": kind, "channel": channel, **fields, "event_ts": f"{time.time():.6f}"}

    def remove_bot(self, channel: str, *, by: str = "U1") -> dict[str, Any]:
        """Someone removes the bot from a channel: channel_left, or group_left for a private one."""
        with self._lock:
            self._members[channel] = self._members_of(channel) - {self.bot_user_id}
            return self._lifecycle_event(channel, "channel_left", "group_left", actor_id=by)

    def archive(self, channel: str, *, by: str = "U1") -> dict[str, Any]:
        """channel_archive, or group_archive for a private channel."""
        with self._lock:
            for known in self._channels:
                if known["id"] == channel:
                    known["is_archived"] = True
            return self._lifecycle_event(channel, "channel_archive", "group_archive", user=by)

    def delete_channel(self, channel: str) -> dict[str, Any]:
        """channel_deleted, or group_deleted for a private channel."""
        with self._lock:
            event = self._lifecycle_event(channel, "channel_deleted", "group_deleted")
            self._channels = [known for known in self._channels if known["id"] != channel]
            self._members[channel] = set()
        return event

    def file_deleted_event(self, file_id: str) -> dict[str, Any]:
        """Someone deletes a file: it is gone (files.info: file_not_found) and file_deleted is sent."""
        self.delete_file(file_id)
        return {"type": "file_deleted", "file_id": file_id, "event_ts": f"{time.time():.6f}"}

    def unshare_file(self, file_id: str, channel: str, *, by: str = "U1") -> dict[str, Any]:
        """A file is taken out of one channel: file_unshared (files.info lists where it still is)."""
        with self._lock:
            self._file_shares.get(file_id, set()).discard(channel)
        return {"type": "file_unshared", "file_id": file_id, "user_id": by, "file": {"id": file_id},
                "channel_id": channel, "event_ts": f"{time.time():.6f}"}

    def delete_message(self, channel: str, ts: str) -> dict[str, Any]:
        """Someone deletes a message: it is gone from the channel and message_deleted is sent."""
        with self._lock:
            previous = self._find_message(channel, ts)
            if previous is None:
                raise KeyError(f"no message {ts} in {channel}")
            self._messages[channel].remove(previous)
            private = self._channel_info(channel)["is_private"]
        return {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel,
                "ts": self._next_ts(), "deleted_ts": ts, "event_ts": f"{time.time():.6f}",
                "channel_type": "group" if private else "channel", "previous_message": previous}

    def delete_file(self, file_id: str) -> None:
        """A file someone deleted: Slack no longer shows it (an image block naming it is invalid)."""
        with self._lock:
            self._uploads.pop(file_id, None)
            self._files.pop(file_id, None)
            self._file_shares.pop(file_id, None)

    def file_content(self, file_id: str) -> bytes:
        """The bytes of a file: one uploaded by the bot, or one added by a test."""
        with self._lock:
            upload = self._uploads.get(file_id)
            return upload.data if upload and upload.data is not None else self._files[file_id].data

    def redirect_file_to(self, file_id: str, url: str) -> None:
        """Make the file's URLs answer 302 to ``url`` (authenticated or not)."""
        with self._lock:
            self._files[file_id].redirect_to = url

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U1",
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        """Store a user message; return the message event as an events_api payload carries it."""
        message: dict[str, Any] = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts or self._next_ts(),
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if files:
            message.update(subtype="file_share", files=[dict(f) for f in files], upload=False, display_as_bot=False)
        if thread_ts:
            message["thread_ts"] = thread_ts
        with self._lock:
            self._store_message(channel, message)
            self._heard_of.add(user)
            for file in files or []:
                self._file_shares.setdefault(file["id"], set()).add(channel)
            private = self._channel_info(channel)["is_private"]
        event = dict(message)
        event.update(channel=channel, event_ts=message["ts"], channel_type="group" if private else "channel")
        return event

    # ------------------------------------------------------------------
    # Socket Mode (test side)

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until at least one Socket Mode client is connected and got hello."""
        self.wait_for(lambda: self._open_sockets(), timeout, what="a Socket Mode connection")

    @property
    def connection_count(self) -> int:
        """How many websocket connections were ever accepted."""
        return self._connection_count

    def push_event(self, event: dict[str, Any], *, event_id: str | None = None, retry_attempt: int = 0) -> str:
        if isinstance(event.get("user"), str):
            with self._lock:
                self._heard_of.add(event["user"])
        payload = {
            "token": "verification-token",
            "team_id": self.team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        retry_reason = "timeout" if retry_attempt else ""
        return self._push("events_api", payload, False, retry_attempt=retry_attempt, retry_reason=retry_reason)

    def push_interactive(self, payload: dict[str, Any]) -> str:
        accepts = payload.get("type") in ("view_submission", "block_suggestion")
        return self._push("interactive", payload, accepts)

    def push_slash_command(self, payload: dict[str, Any]) -> str:
        return self._push("slash_commands", payload, True)

    def push_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect, like Slack does before rotating a connection."""
        self._send_to_client({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})

    def drop_connections(self) -> None:
        """Close every websocket from the server side."""
        for ws in self._open_sockets():
            self._run(ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped"))

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """Wait for the client's ack of an envelope; return its payload (None if the ack had none)."""
        self.wait_for(lambda: envelope_id in self.acks, timeout, what=f"ack of {envelope_id}")
        return self.acks[envelope_id]

    def _push(self, type_: str, payload: dict[str, Any], accepts: bool, **extra: Any) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts,
        }
        if type_ == "events_api":
            envelope.update(retry_attempt=extra.get("retry_attempt", 0), retry_reason=extra.get("retry_reason", ""))
        self._send_to_client(envelope)
        return envelope_id

    def _send_to_client(self, message: dict[str, Any]) -> None:
        """Send to one open connection, as Slack does: the newest, or each in turn (``round_robin``)."""
        self.wait_connected(timeout=5.0)
        sockets = self._open_sockets()
        ws = sockets[next(self._next_socket) % len(sockets)] if self.round_robin else sockets[-1]
        self._run(ws.send_str(json.dumps(message)))

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        with self._lock:
            return [ws for ws in self._sockets if not ws.closed]

    # ------------------------------------------------------------------
    # payload builders

    def block_actions_payload(
        self,
        action_id: str,
        value: str | None,
        *,
        message: dict[str, Any],
        channel: str,
        user: str = "U1",
        selected_option_value: str | None = None,
    ) -> dict[str, Any]:
        """A ``block_actions`` interactive payload for a click on an element of ``message``."""
        self._hear_of(user)
        element, block_id = _find_element(message.get("blocks") or [], action_id)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or "b1",
            "type": element.get("type", "static_select" if selected_option_value is not None else "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if selected_option_value is not None:
            action["selected_option"] = {
                "text": {"type": "plain_text", "text": selected_option_value},
                "value": selected_option_value,
            }
        else:
            action["value"] = value
            if "text" in element:
                action["text"] = element["text"]
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.team_id},
            "api_app_id": APP_ID,
            "token": "verification-token",
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": "lab"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "crystals"},
            "message": message,
            "state": {"values": {}},
            "response_url": self._response_url(),
            "actions": [action],
        }

    def slash_command_payload(
        self, text: str, *, channel: str, user: str = "U1", command: str = "/crystals"
    ) -> dict[str, Any]:
        """A slash command payload (the form fields Slack sends, as a dict of strings)."""
        self._hear_of(user)
        return {
            "token": "verification-token",
            "team_id": self.team_id,
            "team_domain": "lab",
            "channel_id": channel,
            "channel_name": "crystals",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._response_url(),
            "trigger_id": self._trigger_id(),
        }

    def _hear_of(self, user: str) -> None:
        with self._lock:
            self._heard_of.add(user)

    def _response_url(self) -> str:
        return f"{self.base_url}/response-url/{self.team_id}/{uuid.uuid4().hex}"

    def _trigger_id(self) -> str:
        trigger = f"{int(time.time())}.1.{uuid.uuid4().hex}"
        with self._lock:
            self._triggers[trigger] = time.monotonic()
        return trigger

    def view_submission_payload(self, view: dict[str, Any], values: dict[str, dict[str, str]], *,
                                user: str = "U1") -> dict[str, Any]:
        """A ``view_submission`` payload for a modal opened with views.open (``opened_views``), its
        plain-text inputs filled in: ``values`` is block_id -> action_id -> the text typed."""
        self._hear_of(user)
        state = {block: {action: {"type": "plain_text_input", "value": text} for action, text in inputs.items()}
                 for block, inputs in values.items()}
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "lab"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": self.team_id},
            "api_app_id": APP_ID,
            "token": "verification-token",
            "trigger_id": self._trigger_id(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # ------------------------------------------------------------------
    # HTTP handlers (server thread)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = ApiCall(
            method=method,
            params=params,
            headers=CIMultiDict(request.headers),
            http_method=request.method,
            path=request.path_qs,
            content_type=request.headers.get("Content-Type", ""),
        )
        await asyncio.sleep(self._hold_for(method, params))
        with self._lock:
            raw = self._raw_failures.get(method)
            if raw and raw.remaining > 0:
                raw.remaining -= 1
                call.status = raw.status
                self._calls.append(call)
                return web.Response(status=raw.status, text=raw.body, content_type=raw.content_type)
        status, body, headers = self._dispatch(call)
        call.status, call.response = status, body
        with self._lock:
            self._calls.append(call)
            drop = self._drops.get(method, 0) > 0 and status == 200
            if drop:
                self._drops[method] -= 1
            late = self._late.pop(method, 0.0)
        await asyncio.sleep(late)
        if drop and request.transport is not None:
            request.transport.close()  # carried out, but the client never hears back
            raise web.HTTPServiceUnavailable()
        return web.json_response(body, status=status, headers=headers)

    def _hold_for(self, method: str, params: dict[str, Any]) -> float:
        """Seconds a held call (carry_out_late) waits before it is carried out; 0 for any other."""
        with self._lock:
            for index, (held, wanted, seconds) in enumerate(self._held):
                if held == method and all(params.get(key) == value for key, value in wanted.items()):
                    del self._held[index]
                    return seconds
        return 0.0

    def _dispatch(self, call: ApiCall) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            limit = self._rate_limits.get(call.method)
            if limit and limit.remaining > 0:
                limit.remaining -= 1
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(limit.retry_after)}
            if call.method == "chat.postMessage" and self.posts_per_second and not self._take_post_slot(call):
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        handler = self._handlers.get(call.method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        error = self._check_token(call)
        if error:
            return 200, {"ok": False, "error": error}, {}
        try:
            result = handler(call.params)
        except SlackError as e:
            return 200, {"ok": False, "error": e.error}, {}
        return 200, {"ok": True, **result}, {}

    def _take_post_slot(self, call: ApiCall) -> bool:
        """A token bucket per channel, as Slack's chat limit behaves. Lock held."""
        channel = str(call.params.get("channel", ""))
        now = time.monotonic()
        tokens, last = self._post_buckets.get(channel, (float(self.post_burst), now))
        tokens = min(float(self.post_burst), tokens + (now - last) * self.posts_per_second)
        allowed = tokens >= 1
        self._post_buckets[channel] = (tokens - 1 if allowed else tokens, now)
        return allowed

    def _check_token(self, call: ApiCall) -> str | None:
        expected = self.app_token if call.method == "apps.connections.open" else self.bot_token
        token = call.token
        if token == expected:
            return None
        if token in (self.app_token, self.bot_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        self._record_download(request)
        key = request.match_info["key"]
        file_id = key.split("-", 1)[1] if "-" in key else key
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return web.Response(status=404, text="file not found")
        if stored.redirect_to:
            return web.Response(status=302, headers={"Location": stored.redirect_to})
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=302, headers={"Location": f"/signin?redir={quote(request.path_qs, safe='')}"})
        headers = {"Content-Type": stored.info["mimetype"] or "application/octet-stream"}
        if request.match_info["tail"].startswith("download/"):
            headers["Content-Disposition"] = f'attachment; filename="{stored.info["name"]}"'
        if stored.drip_seconds:
            return await self._drip(request, stored.data, headers, stored.drip_seconds)
        return web.Response(body=stored.data, headers=headers)

    async def _drip(self, request: web.Request, data: bytes, headers: dict[str, str],
                    seconds: float) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "Content-Length": str(len(data))})
        await response.prepare(request)
        try:
            for i in range(len(data)):
                await response.write(data[i:i + 1])
                await asyncio.sleep(seconds)
        except ConnectionError:  # the client gave up
            pass
        return response

    async def _handle_signin(self, request: web.Request) -> web.Response:
        return web.Response(text=SIGNIN_HTML, content_type="text/html", charset="utf-8")

    async def _handle_elsewhere(self, request: web.Request) -> web.Response:
        self._record_download(request)
        return web.Response(body=b"elsewhere", content_type="application/octet-stream")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._response_url_posts.append((request.path, body))
        return web.json_response({"ok": True})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The URL files.getUploadURLExternal hands out: the raw bytes, POSTed without a token."""
        data = await request.read()
        with self._lock:
            upload = self._uploads.get(request.match_info["file_id"])
            if upload is None:
                return web.Response(status=404, text="upload not found")
            upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    def _record_download(self, request: web.Request) -> None:
        with self._lock:
            self._downloads.append(Download(request.path_qs, CIMultiDict(request.headers)))

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        try:
            await ws.send_str(json.dumps(_hello(len(self._open_sockets()) + 1)))
        except ConnectionError:
            return ws
        with self._lock:  # registered only after hello: wait_connected() means "got hello"
            self._sockets.append(ws)
            self._connection_count += 1
        pinger = asyncio.create_task(self._ping_loop(ws))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_client_message(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass
        finally:
            pinger.cancel()
            with self._lock:
                self._sockets.remove(ws)
        return ws

    async def _ping_loop(self, ws: web.WebSocketResponse) -> None:
        if not self.ping_interval:
            return
        while not ws.closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await ws.ping(b"fake-slack")
            except (ConnectionError, RuntimeError):
                return

    def _on_client_message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        with self._lock:
            self._socket_messages.append(message)
            if isinstance(message, dict) and "envelope_id" in message:
                self._acks[message["envelope_id"]] = message.get("payload")

    # ------------------------------------------------------------------
    # Web API methods (server thread); return the response without "ok"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.team_url,
            "team": "Lab",
            "user": "crystals",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4()}&app_id={APP_ID}"}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise SlackError("no_text")
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "text": params.get("text", ""),
            "ts": self._next_ts(),
            "team": self.team_id,
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if params.get(key):
                message[key] = params[key]
        with self._lock:
            self._check_image_blocks(params.get("blocks") or [])
            _check_menus(params.get("blocks") or [])
            self._store_message(channel, message)
        return {"channel": channel, "ts": message["ts"], "message": dict(message)}

    def _bots_message(self, params: dict[str, Any], not_the_bots: str) -> tuple[str, str, dict[str, Any]]:
        """(channel, ts, message) of the bot's own message that ``params`` name.  Lock held."""
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "ts", "message_not_found")
        message = self._find_message(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        if message.get("user") != self.bot_user_id:
            raise SlackError(not_the_bots)
        return channel, ts, message

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel, ts, message = self._bots_message(params, "cant_update_message")
            self._check_image_blocks(params.get("blocks") or [])
            _check_menus(params.get("blocks") or [])
            for key in ("text", "blocks", "attachments"):
                if key in params:
                    message[key] = params[key]
            message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {"channel": channel, "ts": ts, "text": message.get("text", ""), "message": dict(message)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        _require(params, "channel", "channel_not_found")
        _require(params, "user", "user_not_in_channel")
        return {"message_ts": self._next_ts()}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "message_ts", "message_not_found")
        return {"channel": channel, "permalink": f"{self.team_url}archives/{channel}/p{ts.replace('.', '')}"}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        key, name = self._reaction_key(params)
        with self._lock:
            names = self._reactions.setdefault(key, set())
            if name in names:
                raise SlackError("already_reacted")
            names.add(name)
        return {}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        key, name = self._reaction_key(params)
        with self._lock:
            names = self._reactions.get(key, set())
            if name not in names:
                raise SlackError("no_reaction")
            names.discard(name)
        return {}

    def _reaction_key(self, params: dict[str, Any]) -> tuple[tuple[str, str], str]:
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "timestamp", "no_item_specified")
        name = _require(params, "name", "invalid_name")
        return (channel, ts), name

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        ts = _require(params, "ts", "thread_not_found")
        limit = int(params.get("limit") or 1000)
        offset = int(params.get("cursor") or 0)
        with self._lock:
            parent = self._find_message(channel, ts)
            if parent is None:
                raise SlackError("thread_not_found")
            replies = [m for m in self._messages[channel] if m.get("thread_ts") == ts and m["ts"] != ts]
            thread = [dict(parent)] + [dict(m) for m in sorted(replies, key=_ts_key)]
        return _page(thread, params, default_limit=1000)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages (and thread parents), newest first, paged by cursor."""
        channel = _require(params, "channel", "channel_not_found")
        with self._lock:
            top = [dict(m) for m in self._messages.get(channel, []) if m.get("thread_ts", m["ts"]) == m["ts"]]
        return {**_page(sorted(top, key=_ts_key, reverse=True), params, default_limit=100), "pin_count": 0}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """A direct message with one person: its channel id (the same each time), as Slack answers."""
        users = _require(params, "users", "users_list_not_supplied")
        if "," in users:
            raise SlackError("not_implemented")  # group DMs: not needed by the bot
        return {"no_op": True, "already_open": True, "channel": {"id": f"D{users}"}}

    def _conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        """Channels of the asked ``types`` (default public), archived ones unless ``exclude_archived``."""
        types = set(str(params.get("types") or "public_channel").split(","))
        excluded = params.get("exclude_archived") in (True, "true", "1", 1)
        with self._lock:
            channels = [dict(c) for c in self._channels
                        if ("private_channel" if c["is_private"] else "public_channel") in types
                        and not (excluded and c["is_archived"])]
        return _page(channels, params, default_limit=100, key="channels")

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = _require(params, "file", "file_not_found")
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise SlackError("file_not_found")
        with self._lock:
            where = {"channels": [], "groups": [], "ims": []}
            for channel in sorted(self._file_shares.get(file_id, set())):
                info = self._channel_info(channel)
                where["ims" if info["is_im"] else "groups" if info["is_private"] else "channels"].append(channel)
        shares = {"public": {c: [] for c in where["channels"]}, "private": {c: [] for c in where["groups"] + where["ims"]}}
        return {"file": {**stored.info, **where, "shares": {k: v for k, v in shares.items() if v}}, "comments": [],
                "response_metadata": {"next_cursor": ""}}

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        with self._lock:
            members = self._members_of(channel)
            if self._channel_info(channel)["is_private"] and self.bot_user_id not in members:
                raise SlackError("channel_not_found")
        return _page(sorted(members), params, default_limit=100, key="members")

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _require(params, "channel", "channel_not_found")
        with self._lock:
            info = self._channel_info(channel)
        if info["is_private"] and not info["is_member"]:
            raise SlackError("channel_not_found")
        return {"channel": info}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = _require(params, "user", "user_not_found")
        with self._lock:
            known = self._users.get(user)
        return {"user": dict(known) if known else {"id": user, "team_id": self.team_id, "name": user.lower(),
                                                   "deleted": False, "is_bot": False, "is_admin": False,
                                                   "is_restricted": False, "is_ultra_restricted": False}}

    def _users_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        """The person's channels of the asked ``types``; private ones only where the bot is in too."""
        user = str(params.get("user") or self.bot_user_id)
        types = set(str(params.get("types") or "public_channel").split(","))
        excluded = params.get("exclude_archived") in (True, "true", "1", 1)
        with self._lock:
            ids = {c["id"] for c in self._channels} | set(self._members) | set(self._messages)
            channels = []
            for channel in sorted(i for i in ids if not i.startswith("D")):
                info, members = self._channel_info(channel), self._members_of(channel)
                kind = "private_channel" if info["is_private"] else "public_channel"
                if (kind in types and user in members and not (excluded and info["is_archived"])
                        and (kind == "public_channel" or self.bot_user_id in members)):
                    channels.append({k: v for k, v in info.items() if k != "is_member"})
        return _page(channels, params, default_limit=100, key="channels")

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel, ts, message = self._bots_message(params, "cant_delete_message")
            self._messages[channel].remove(message)
        return {"channel": channel, "ts": ts}

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = _require(params, "filename", "invalid_arguments")
        length = int(_require(params, "length", "invalid_arguments"))
        file_id = f"F{next(self._id_counter):09d}"
        with self._lock:
            self._uploads[file_id] = Upload(file_id, filename, length)
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(_require(params, "files", "invalid_arguments"))
        channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
        shared = []
        with self._lock:
            for entry in files:
                upload = self._uploads.get(entry.get("id", ""))
                if upload is None or upload.data is None or len(upload.data) != upload.length:
                    raise SlackError("file_upload_not_found")
                upload.title, upload.channel, upload.thread_ts = entry.get("title") or upload.filename, channel, thread_ts
                shared.append({"id": upload.file_id, "name": upload.filename, "title": upload.title,
                               "size": upload.length, "user": self.bot_user_id})
            if channel:
                message = {"type": "message", "subtype": "file_share", "user": self.bot_user_id, "bot_id": self.bot_id,
                           "text": params.get("initial_comment") or "", "ts": self._next_ts(), "files": shared}
                if thread_ts:
                    message["thread_ts"] = thread_ts
                self._store_message(str(channel), message)
        return {"files": shared}

    def _files_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.delete with a bot token: the bot's own uploads; someone else's file is not its to delete."""
        file_id = _require(params, "file", "file_not_found")
        with self._lock:
            if file_id in self._files:
                raise SlackError("cant_delete_file")
            if self._uploads.pop(file_id, None) is None:
                raise SlackError("file_not_found")
            self._deleted.append(file_id)
        return {}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """A user's Home tab, as Slack checks it: a home view of at most 100 blocks whose image blocks
        name a file by URL or by the id of a file shared where the user can see it (a file uploaded
        without a channel is the uploader's alone: Slack answers invalid_blocks)."""
        user_id = _require(params, "user_id", "invalid_arguments")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "home" or not isinstance(view.get("blocks"), list):
            raise SlackError("invalid_arguments")
        if len(view["blocks"]) > HOME_BLOCK_LIMIT:
            raise SlackError("invalid_blocks")
        with self._lock:
            self._check_image_blocks(view["blocks"])
            self._home_views[user_id] = view
        return {"view": {"id": f"V{abs(hash(user_id)) % 10**8}", "team_id": self.team_id, "app_id": APP_ID,
                         "bot_id": self.bot_id, "hash": uuid.uuid4().hex, **view}}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """A modal, as Slack checks it: a trigger_id handed out by a click or command less than 3 s ago
        (each opens one view), a modal with a callback_id, a title of at most 24 characters, at most
        100 blocks, image blocks that Slack can show, and private_metadata within 3000 characters."""
        trigger = _require(params, "trigger_id", "invalid_trigger_id")
        view = params.get("view")
        with self._lock:
            handed_out = self._triggers.pop(trigger, None)
        if handed_out is None:
            raise SlackError("invalid_trigger_id")
        if time.monotonic() - handed_out > TRIGGER_SECONDS:
            raise SlackError("expired_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal" or not isinstance(view.get("blocks"), list):
            raise SlackError("invalid_arguments")
        labels = [view.get(key) or {} for key in ("title", "submit", "close")]
        if (not view.get("title") or any(len(label.get("text", "")) > MODAL_TITLE_LIMIT for label in labels)
                or len(view["blocks"]) > MODAL_BLOCK_LIMIT
                or len(view.get("private_metadata", "")) > PRIVATE_METADATA_LIMIT):
            raise SlackError("invalid_arguments")
        with self._lock:
            self._check_image_blocks(view["blocks"])
            opened = {**view, "id": f"V{next(self._id_counter):09d}", "team_id": self.team_id, "app_id": APP_ID,
                      "bot_id": self.bot_id, "hash": uuid.uuid4().hex, "state": {"values": {}}}
            self._views.append(opened)
        return {"view": opened}

    def _check_image_blocks(self, blocks: list[dict[str, Any]]) -> None:
        """Image blocks must have alt text and name a URL or a file shared in a channel.  Lock held."""
        shared = {u.file_id for u in self._uploads.values() if u.channel} | set(self._files)
        for block in blocks if isinstance(blocks, list) else []:
            if block.get("type") == "image" and not (block.get("alt_text") and (
                    block.get("image_url") or (block.get("slack_file") or {}).get("id") in shared)):
                raise SlackError("invalid_blocks")

    def opened_views(self) -> list[dict[str, Any]]:
        """The modals opened with views.open, oldest first."""
        with self._lock:
            return list(self._views)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for a user."""
        with self._lock:
            return self._home_views.get(user_id)

    # ------------------------------------------------------------------
    # message store helpers (call with self._lock held where noted)

    def _next_ts(self) -> str:
        n = next(self._ts_counter)
        return f"{FIRST_TS_SECONDS + n - 1}.{n * 100 % 1_000_000:06d}"

    def _store_message(self, channel: str, message: dict[str, Any]) -> None:
        """Store a message; update the parent's thread fields for replies.  Lock held."""
        self._messages.setdefault(channel, []).append(message)
        thread_ts = message.get("thread_ts")
        parent = self._find_message(channel, thread_ts) if thread_ts else None
        if parent is not None and parent is not message:
            message["parent_user_id"] = parent.get("user", "")
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["reply_users"] = sorted(set(parent.get("reply_users", [])) | {message.get("user", "")})
            parent["reply_users_count"] = len(parent["reply_users"])
            parent["latest_reply"] = message["ts"]

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Lock held."""
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None


# ----------------------------------------------------------------------
# module-level helpers


def sign_request(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers that make Bolt's HTTP-mode request verification accept ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


SIGNIN_HTML = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="utf-8"><title>Sign in | Slack</title></head>
<body>
<h1>Sign in to Lab</h1>
<form action="/signin" method="post"><input type="email" name="email"><button>Sign In</button></form>
</body>
</html>
"""


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Merge the query string and the form / multipart / JSON body into one dict."""
    params: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if isinstance(value, web.FileField) else value
    for key in JSON_STRING_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


def _page(items: list[Any], params: dict[str, Any], *, default_limit: int, key: str = "messages") -> dict[str, Any]:
    """One page of ``items`` by ``limit`` and ``cursor``; message metadata only with ``include_all_metadata``."""
    limit = int(params.get("limit") or default_limit)
    offset = int(params.get("cursor") or 0)
    if params.get("include_all_metadata") not in (True, "true", "1", 1):
        items = [{k: v for k, v in m.items() if k != "metadata"} if isinstance(m, dict) else m for m in items]
    has_more = offset + limit < len(items)
    return {
        key: items[offset : offset + limit],
        "has_more": has_more,
        "response_metadata": {"next_cursor": str(offset + limit) if has_more else ""},
    }


def _require(params: dict[str, Any], key: str, error: str) -> str:
    value = params.get(key)
    if not value:
        raise SlackError(error)
    return str(value)


def _ts_key(message: dict[str, Any]) -> tuple[int, int]:
    seconds, _, micros = message["ts"].partition(".")
    return int(seconds), int(micros or 0)


def _hello(num_connections: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    }


def _pending_scan_file(info: dict[str, Any]) -> dict[str, Any]:
    """The stub Slack puts in events while a file is still being scanned."""
    return {
        "id": info["id"],
        "created": info["created"],
        "timestamp": info["timestamp"],
        "name": "",
        "title": "",
        "mimetype": "",
        "filetype": "",
        "pretty_type": "",
        "user": info["user"],
        "user_team": info["user_team"],
        "editable": False,
        "size": 0,
        "mode": "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": False,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "file_access": "check_file_info",
    }


MENU_OPTIONS = {"overflow": 5, "static_select": 100}  # Block Kit's limits on a menu's options
OPTION_TEXT_LIMIT = 75


def _check_menus(blocks: list[dict[str, Any]]) -> None:
    """Menus as Slack checks them: an overflow menu holds 1 to 5 options, a select at most 100, each
    option's text at most 75 characters; else the message is refused with invalid_blocks."""
    for block in blocks if isinstance(blocks, list) else []:
        for element in [block.get("accessory") or {}, *(block.get("elements") or [])]:
            limit = MENU_OPTIONS.get(element.get("type", "")) if isinstance(element, dict) else None
            options = element.get("options") or [] if limit else []
            if limit and (not 1 <= len(options) <= limit
                          or any(len(o["text"]["text"]) > OPTION_TEXT_LIMIT for o in options)):
                raise SlackError("invalid_blocks")


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str | None]:
    """The interactive element with ``action_id`` in ``blocks`` and its block_id."""
    for block in blocks:
        candidates = list(block.get("elements") or [])
        if "accessory" in block:
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, block.get("block_id")
    return {}, None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 1 if marker == 0xFF else 2
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return None

"""Getting an uploaded file's bytes from Slack, safely.

The bot token goes only to Slack's own hosts (slack.com, its subdomains, and the host of
SLACK_API_URL, which receives the token anyway). The host is judged on the request exactly as
`requests` prepared it, with urllib3's parser, the one that connects: a URL with user info or a
backslash is refused outright, since parsers disagree on where its host is. A redirect elsewhere is
refused, not followed. A file larger than the limit is refused from its size in the event, before
any byte is fetched, and a download has an overall deadline, so a server that drips bytes cannot
hold a worker. Slack answers a download it will not allow with 200 and an HTML sign-in page, which
gets its own message; other bytes that are no image are left to bot.images to explain.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from urllib3.exceptions import HTTPError, LocationParseError
from urllib3.util import parse_url
from urllib3.util.retry import Retry

from bot.config import Settings

log = logging.getLogger(__name__)

IMAGE_FILETYPES = {"jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif"}
ZIP_MIMETYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
SIGN_IN_HELP = ("Slack sent its sign-in page instead of the file, so the bot may not read files. "
                "An admin should reinstall the app with the `files:read` scope.")
OUTSIDE_SLACK = "the download led outside Slack, so I did not follow it."
CHUNK_BYTES = 64 * 1024
STALL_SECONDS = 20.0  # longest wait for any one read; the overall deadline is checked between reads


class DownloadError(Exception):
    """A file could not be fetched; str() is a short message for the channel. `retryable`: Slack
    was busy or unreachable, so the job queue tries again later."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def is_image(file: dict[str, Any]) -> bool:
    return (file.get("mimetype") or "").startswith("image/") or (file.get("filetype") or "").lower() in IMAGE_FILETYPES


def is_zip(file: dict[str, Any]) -> bool:
    return (file.get("filetype") or "").lower() == "zip" or file.get("mimetype") in ZIP_MIMETYPES


def is_pending(file: dict[str, Any]) -> bool:
    """Slack has not finished with the file: the event lacks its download URL or type."""
    return (file.get("file_access") == "check_file_info" or not file.get("url_private_download")
            or not file.get("mimetype"))


def host_of(url: str) -> str | None:
    """The host `requests` would connect to for `url`; None for a URL whose host is ambiguous or absent
    (user info, a backslash, a scheme other than http(s), or one urllib3 cannot parse)."""
    if "\\" in url:
        return None
    try:
        parsed = parse_url(url)
    except LocationParseError:
        return None
    if parsed.scheme not in ("http", "https") or parsed.auth or not parsed.host:
        return None
    return parsed.host.lower().rstrip(".")


def is_slack_host(host: str | None, api_host: str | None) -> bool:
    return host is not None and (host == "slack.com" or host.endswith(".slack.com") or host == api_host)


def slack_error_code(error: SlackApiError) -> str:
    """Slack's error code (`file_not_found`), or the HTTP status when the answer was no Slack JSON
    (slack_sdk then puts the whole upstream page into "error")."""
    code = str(error.response.get("error") or "")
    return code if re.fullmatch(r"[a-z0-9_.]{1,64}", code) else f"HTTP {error.response.status_code}"


class SlackFiles:
    def __init__(self, client: WebClient, token: str, api_url: str, *, max_bytes: int, deadline: float = 60.0,
                 info_waits: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)) -> None:
        self.client = client
        self.token = token
        self.api_host = host_of(api_url)
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.info_waits = info_waits
        self.session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=("GET",), respect_retry_after_header=True, redirect=False)
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=32))
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=32))

    @classmethod
    def from_settings(cls, client: WebClient, settings: Settings) -> SlackFiles:
        return cls(client, settings.slack_bot_token, settings.slack_api_url,
                   max_bytes=settings.max_download_mb * 1_000_000, deadline=settings.download_timeout)

    def complete(self, file: dict[str, Any]) -> dict[str, Any]:
        """The file's full record, asking files.info (with a short backoff) while Slack is still scanning it."""
        waits = list(self.info_waits)
        while is_pending(file):
            try:
                file = self.client.files_info(file=file["id"])["file"]
            except SlackApiError as error:
                reason = slack_error_code(error)
                log.warning("files.info %s failed: %s", file["id"], reason)
                raise DownloadError(f"Slack would not tell me about this file ({reason}). Try uploading it again.",
                                    retryable=error.response.status_code == 429 or error.response.status_code >= 500
                                    ) from error
            if is_pending(file) and not waits:
                raise DownloadError("Slack has not finished processing this file. Try uploading it again.")
            if is_pending(file):
                time.sleep(waits.pop(0))
        return file

    def download(self, file: dict[str, Any]) -> bytes:
        """The file's bytes (not yet known to be an image), within the size limit and the deadline."""
        if int(file.get("size") or 0) > self.max_bytes:
            raise DownloadError(_too_large(int(file["size"]), self.max_bytes))
        give_up_at = time.monotonic() + self.deadline
        return self._checked_body(self._final_response(file), file, give_up_at)

    def download_to(self, file: dict[str, Any], target: BinaryIO, max_bytes: int) -> int:
        """Stream a large file (a plate's zip) into `target`, never whole in memory; the bytes written."""
        with self._final_response(file) as response:
            if "text/html" in response.headers.get("Content-Type", ""):
                raise DownloadError(SIGN_IN_HELP)
            written = 0
            for chunk in response.iter_content(1024 * 1024):
                written += target.write(chunk)
                if written > max_bytes:
                    raise DownloadError(_too_large(written, max_bytes))
        return written

    def _final_response(self, file: dict[str, Any]) -> requests.Response:
        """The file's download, redirects within Slack followed."""
        url = file["url_private_download"]
        for _ in range(5):
            response = self._get(url, file)
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["Location"])
            response.close()
        raise DownloadError("Slack redirected the download too many times. Try again later.")

    def _get(self, url: str, file: dict[str, Any]) -> requests.Response:
        """GET `url` with the token, having checked the host of the request exactly as it will be sent."""
        request = self.session.prepare_request(
            requests.Request("GET", url, headers={"Authorization": f"Bearer {self.token}"}))
        host = host_of(request.url or "")
        if not is_slack_host(host, self.api_host):
            log.warning("refused to send the token to %r for file %s", host or url[:200], file.get("id"))
            raise DownloadError(OUTSIDE_SLACK)
        environment = self.session.merge_environment_settings(request.url, {}, None, None, None)
        try:
            response = self.session.send(request, **{**environment, "stream": True}, allow_redirects=False,
                                         timeout=(min(10.0, self.deadline), min(STALL_SECONDS, self.deadline)))
        except requests.RequestException as error:
            log.warning("download of file %s failed: %s", file.get("id"), type(error).__name__)
            raise DownloadError("the download from Slack failed. Try again in a minute.", retryable=True) from error
        if response.status_code >= 400:
            response.close()
            raise DownloadError(f"Slack answered the download with HTTP {response.status_code}. Try again later.",
                                retryable=response.status_code == 429 or response.status_code >= 500)
        return response

    def _checked_body(self, response: requests.Response, file: dict[str, Any], give_up_at: float) -> bytes:
        with response:
            if "text/html" in response.headers.get("Content-Type", ""):
                log.error("download of file %s returned an HTML page: token or files:read scope missing",
                          file.get("id"))
                raise DownloadError(SIGN_IN_HELP)
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > self.max_bytes:
                raise DownloadError(_too_large(declared, self.max_bytes))
            data = self._read_within(response, give_up_at, file)
        if data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
            raise DownloadError(SIGN_IN_HELP)
        return data

    def _read_within(self, response: requests.Response, give_up_at: float, file: dict[str, Any]) -> bytes:
        """The body, read as it arrives, refused once it passes the size limit or the deadline."""
        data = bytearray()
        try:
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):  # gzip counts unpacked
                data += chunk
                if len(data) > self.max_bytes:
                    raise DownloadError(_too_large(len(data), self.max_bytes))
                if time.monotonic() > give_up_at:
                    log.warning("download of file %s passed the %s s deadline", file.get("id"), self.deadline)
                    raise DownloadError(f"the download from Slack took longer than {self.deadline:g} s. "
                                        "Try again later.")
        except (requests.RequestException, OSError, HTTPError) as error:
            log.warning("download of file %s broke off: %s", file.get("id"), type(error).__name__)
            raise DownloadError("the download from Slack failed. Try again in a minute.") from error
        return bytes(data)


def _too_large(size: int, limit: int) -> str:
    return f"the file is too large ({size / 1e6:.3g} MB; the limit is {limit / 1e6:g} MB)."

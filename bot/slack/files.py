"""Getting an uploaded file's bytes from Slack, safely.

The bot token goes only to Slack's own hosts (slack.com, its subdomains, and the host of
SLACK_API_URL, which receives the token anyway); a redirect elsewhere is refused, not followed.
Slack answers a download it will not allow with 200 and an HTML sign-in page, so the content type
and the first bytes are checked before anything is decoded.
"""
from __future__ import annotations

import logging
import time
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from urllib3.util.retry import Retry

from bot.images import sniff_format

log = logging.getLogger(__name__)

IMAGE_FILETYPES = {"jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif"}
ZIP_MIMETYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
SIGN_IN_HELP = ("Slack sent its sign-in page instead of the file, so the bot may not read files. "
                "An admin should reinstall the app with the `files:read` scope.")


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


class SlackFiles:
    def __init__(self, client: WebClient, token: str, api_url: str, *, max_bytes: int,
                 info_waits: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)) -> None:
        self.client = client
        self.token = token
        self.api_host = urlparse(api_url).hostname or ""
        self.max_bytes = max_bytes
        self.info_waits = info_waits
        self.session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=("GET",), respect_retry_after_header=True, redirect=False)
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=32))
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=32))

    def is_slack_host(self, url: str) -> bool:
        host = urlparse(url).hostname or ""
        return host == "slack.com" or host.endswith(".slack.com") or host == self.api_host

    def complete(self, file: dict[str, Any]) -> dict[str, Any]:
        """The file's full record, asking files.info (with a short backoff) while Slack is still scanning it."""
        waits = list(self.info_waits)
        while is_pending(file):
            try:
                file = self.client.files_info(file=file["id"])["file"]
            except SlackApiError as error:
                log.warning("files.info %s failed: %s", file["id"], error.response.get("error"))
                raise DownloadError("Slack would not tell me about this file "
                                    f"({error.response.get('error')}). Try uploading it again.",
                                    retryable=error.response.status_code >= 500) from error
            if is_pending(file) and not waits:
                raise DownloadError("Slack has not finished processing this file. Try uploading it again.")
            if is_pending(file):
                time.sleep(waits.pop(0))
        return file

    def download(self, file: dict[str, Any]) -> bytes:
        """The file's bytes, verified to start like an image."""
        return self._checked_body(self._final_response(file), file)

    def download_to(self, file: dict[str, Any], target: BinaryIO, max_bytes: int) -> int:
        """Stream a large file (a plate's zip) into `target`, never whole in memory; the bytes written."""
        response = self._final_response(file)
        if "text/html" in response.headers.get("Content-Type", ""):
            raise DownloadError(SIGN_IN_HELP)
        written = 0
        for chunk in response.iter_content(1024 * 1024):
            written += target.write(chunk)
            if written > max_bytes:
                response.close()
                raise DownloadError(_too_large(written, max_bytes))
        return written

    def _final_response(self, file: dict[str, Any]) -> requests.Response:
        """The file's download, redirects within Slack followed."""
        url = file["url_private_download"]
        for _ in range(5):
            if not self.is_slack_host(url):
                log.warning("refused to send the token to %s for file %s", urlparse(url).hostname, file.get("id"))
                raise DownloadError("the download led outside Slack, so I did not follow it.")
            response = self._get(url)
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["Location"])
        raise DownloadError("Slack redirected the download too many times. Try again later.")

    def _get(self, url: str) -> requests.Response:
        try:
            response = self.session.get(url, headers={"Authorization": f"Bearer {self.token}"},
                                        allow_redirects=False, stream=True, timeout=(10, 60))
        except requests.RequestException as error:
            log.warning("download of %s failed: %r", urlparse(url).path, error)
            raise DownloadError("the download from Slack failed. Try again in a minute.", retryable=True) from error
        if response.status_code >= 400:
            raise DownloadError(f"Slack answered the download with HTTP {response.status_code}. Try again later.",
                                retryable=response.status_code == 429 or response.status_code >= 500)
        return response

    def _checked_body(self, response: requests.Response, file: dict[str, Any]) -> bytes:
        if "text/html" in response.headers.get("Content-Type", ""):
            log.error("download of file %s returned an HTML page: token or files:read scope missing", file.get("id"))
            raise DownloadError(SIGN_IN_HELP)
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > self.max_bytes:
            raise DownloadError(_too_large(declared, self.max_bytes))
        data = bytearray()
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > self.max_bytes:
                response.close()
                raise DownloadError(_too_large(len(data), self.max_bytes))
        if sniff_format(bytes(data)) is None:
            if data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
                raise DownloadError(SIGN_IN_HELP)
            raise DownloadError("the file is not an image I can read (JPEG, PNG, TIFF, BMP, WebP or GIF).")
        return bytes(data)



def _too_large(size: int, limit: int) -> str:
    return f"the file is too large ({size / 1e6:.0f} MB; the limit is {limit / 1e6:.0f} MB)."

"""The OpenAI Batch API: half the price, results within 24 h.

`custom_id` is the image's path relative to the evaluation folder (`<true label>/<file>`), so an
output file can be scored on its own, as the proof of concept's was. A batch goes to the endpoint
of the API the gateway speaks (/v1/responses or /v1/chat/completions); its metadata names the
prompt variant, so a comparison can be collected and scored later.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

import openai
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from bot.answer import AnswerError, parse_answer
from bot.classifier import ModelError, read_chat, read_responses
from bot.models import Call
from bot.pricing import PriceTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    custom_id: str
    truth: str  # the parent folder of custom_id
    call: Call | None
    error: str | None  # why there is no call


ENDED = frozenset({"completed", "expired", "cancelled", "failed"})  # a batch in any other status is still running
CANNOT_LIST = (404, 405, 501)  # a provider without GET /v1/batches


@dataclass(frozen=True)
class BatchOutput:
    status: str
    text: str | None  # the output file, once the batch has ended (an expired or cancelled one may have part)
    variant: str  # the prompt variant named in the batch's metadata ("" if none)
    errors: str | None = None  # the error file: a line per request that got no answer
    failure: str | None = None  # why the whole batch failed (its input was refused), if it did


def batch_line(custom_id: str, body: dict[str, Any], endpoint: str) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body})


def batch_key(model: str, fingerprint: str, entries: dict[str, str]) -> str:
    """What a batch asks, for its metadata: the model, the prompt (its fingerprint leaves the model out),
    and each request's id with its image. A batch started whose answer was lost (a dropped connection, a
    crash before it was recorded) is found again by it (find_batch) rather than started twice; another
    batch with the same key asks the same of the same images, so its answers serve as well."""
    asked = json.dumps([model, fingerprint, sorted(entries.items())], separators=(",", ":"))
    return hashlib.sha256(asked.encode()).hexdigest()[:32]


def submit_batch(client: openai.OpenAI, lines: Iterable[str], endpoint: str, variant: str,
                 metadata: Mapping[str, str] | None = None) -> str:
    """Upload the requests (through a temporary file: a plate's images are not held twice in memory) and
    start the batch; returns its id. `metadata` is added to the variant's (values of at most 512 characters)."""
    with tempfile.TemporaryFile() as requests_file:
        for number, line in enumerate(lines):
            requests_file.write((("\n" if number else "") + line).encode())
        requests_file.seek(0)
        upload = client.files.create(file=("requests.jsonl", requests_file), purpose="batch")
    # Not retried by the client: OpenAI takes no idempotency key, so a POST whose answer was lost and is
    # sent again starts a second batch (and bills it). The caller looks for the first one (find_batch).
    batch = client.with_options(max_retries=0).batches.create(
        input_file_id=upload.id, endpoint=endpoint, completion_window="24h",  # type: ignore[arg-type]
        metadata={"variant": variant, **(metadata or {})})
    return batch.id


def find_batch(client: openai.OpenAI, key: str, since: float) -> str | None:
    """The id of a batch created since `since` whose metadata has this `key`, if there is one (the list
    comes newest first; pages are read until it is older). None too from a provider that cannot list them."""
    try:
        for batch in client.batches.list(limit=100):
            if batch.created_at < since:
                return None
            if (batch.metadata or {}).get("key") == key:
                return batch.id
    except openai.APIStatusError as error:
        if error.status_code not in CANNOT_LIST:
            raise
        log.warning("the provider cannot list batches (%s): a batch whose start was not heard of may be sent again",
                    error.status_code)
    return None


def fetch_batch_output(client: openai.OpenAI, batch_id: str) -> BatchOutput:
    """The batch's status; once it has ended, its output and error files (those it has)."""
    batch = client.batches.retrieve(batch_id)
    variant = (batch.metadata or {}).get("variant", "")
    if batch.status not in ENDED:
        return BatchOutput(batch.status, None, variant)
    failures = [error.message for error in (batch.errors.data or []) if error.message] if batch.errors else []
    return BatchOutput(batch.status, _file_text(client, batch.output_file_id), variant,
                       _file_text(client, batch.error_file_id), failures[0] if failures else None)


def _file_text(client: openai.OpenAI, file_id: str | None) -> str | None:
    return client.files.content(file_id).text if file_id else None


def read_batch_output(text: str, labels: Sequence[str], prices: PriceTable,
                      schema: dict[str, Any] | None = None) -> list[BatchResult]:
    """Every line of a Batch API output file, parsed against the schema the request used: the one a
    Responses body echoes, else `schema` (Chat Completions bodies do not echo it)."""
    return [_read_line(json.loads(line), labels, prices, schema) for line in text.splitlines() if line.strip()]


def _read_line(line: dict[str, Any], labels: Sequence[str], prices: PriceTable,
               fallback_schema: dict[str, Any] | None) -> BatchResult:
    custom_id = line["custom_id"]
    truth = PurePosixPath(custom_id).parent.name
    response = line.get("response") or {}
    body = response.get("body") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = (line.get("error") or body.get("error") or {}).get("message", f"HTTP {response.get('status_code')}")
        return BatchResult(custom_id, truth, None, error)
    schema = (body.get("text") or {}).get("format", {}).get("schema") or fallback_schema
    try:  # construct(): lenient, older files lack fields the SDK now has
        reply = read_chat(ChatCompletion.construct(**body)) if body.get("object") == "chat.completion" \
            else read_responses(Response.construct(**body))
        answer = parse_answer(reply.text, labels, schema=schema, logprobs=reply.logprobs)
    except (ModelError, AnswerError) as error:
        return BatchResult(custom_id, truth, None, str(error))
    call = answer.call(reply.model, reply.usage, prices.cost(reply.model, reply.usage, batch=True))
    return BatchResult(custom_id, truth, call, None)

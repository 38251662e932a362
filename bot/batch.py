"""The OpenAI Batch API: half the price, results within 24 h.

`custom_id` is the image's path relative to the evaluation folder (`<true label>/<file>`), so an
output file can be scored on its own, as the proof of concept's was.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Sequence

import openai
from openai.types.responses import Response

from bot.answer import AnswerError, parse_answer
from bot.classifier import ModelError, read_reply
from bot.models import Call
from bot.pricing import PriceTable

ENDPOINT = "/v1/responses"


@dataclass(frozen=True)
class BatchResult:
    custom_id: str
    truth: str  # the parent folder of custom_id
    call: Call | None
    error: str | None  # why there is no call


def batch_line(custom_id: str, request: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": request})


def submit_batch(client: openai.OpenAI, lines: Sequence[str]) -> str:
    """Upload the requests and start the batch; returns its id."""
    upload = client.files.create(file=("requests.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h")
    return batch.id


def fetch_batch_output(client: openai.OpenAI, batch_id: str) -> tuple[str, str | None]:
    """(status, output file text): the text only once the batch has completed."""
    batch = client.batches.retrieve(batch_id)
    if batch.status != "completed" or not batch.output_file_id:
        return batch.status, None
    return batch.status, client.files.content(batch.output_file_id).text


def read_batch_output(text: str, labels: Sequence[str], prices: PriceTable) -> list[BatchResult]:
    """Every line of a Batch API output file, parsed against the schema the request used."""
    return [_read_line(json.loads(line), labels, prices) for line in text.splitlines() if line.strip()]


def _read_line(line: dict[str, Any], labels: Sequence[str], prices: PriceTable) -> BatchResult:
    custom_id = line["custom_id"]
    truth = PurePosixPath(custom_id).parent.name
    response = line.get("response") or {}
    body = response.get("body") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = (line.get("error") or body.get("error") or {}).get("message", f"HTTP {response.get('status_code')}")
        return BatchResult(custom_id, truth, None, error)
    schema = body.get("text", {}).get("format", {}).get("schema")
    try:
        reply = read_reply(Response.construct(**body))  # lenient: older files lack fields the SDK now has
        answer = parse_answer(reply.text, labels, schema=schema, logprobs=reply.logprobs)
    except (ModelError, AnswerError) as error:
        return BatchResult(custom_id, truth, None, str(error))
    call = answer.call(reply.model, reply.usage, prices.cost(reply.model, reply.usage, batch=True))
    return BatchResult(custom_id, truth, call, None)

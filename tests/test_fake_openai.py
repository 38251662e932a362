"""The fake OpenAI server, driven by the real `openai` client."""
from __future__ import annotations

import base64
import enum
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.fakes.openai_server import FakeOpenAI

DATA = Path(__file__).parent / "data" / "marco-gsk"
LABELS = ["clear", "crystals", "precipitate", "other"]
SCHEMA = {
    "type": "object",
    "properties": {
        "observations": {"type": "string"},
        "label": {"type": "string", "enum": LABELS},
        "confidence": {"type": "number"},
        "explanation": {"type": "string"},
    },
    "required": ["observations", "label", "confidence", "explanation"],
    "additionalProperties": False,
}
TEXT_FORMAT = {"format": {"type": "json_schema", "name": "classification", "strict": True, "schema": SCHEMA}}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def client(fake: FakeOpenAI, **options: Any) -> OpenAI:
    return OpenAI(base_url=fake.base_url, api_key="sk-test", **{"max_retries": 0, **options})


def image(path: str) -> bytes:
    return (DATA / path).read_bytes()


def image_item(jpeg: bytes) -> dict[str, Any]:
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return {"type": "input_image", "image_url": url, "detail": "high"}


def classify_body(query: bytes, examples: tuple[bytes, ...] = (), logprobs: bool = False) -> dict[str, Any]:
    content = [{"type": "input_text", "text": "Classify the last image. " * 20}]
    content += [image_item(example) for example in examples] + [image_item(query)]
    body: dict[str, Any] = {
        "model": "gpt-4.1",
        "input": [{"role": "user", "content": content}],
        "temperature": 0,
        "text": TEXT_FORMAT,
    }
    if logprobs:
        body.update(include=["message.output_text.logprobs"], top_logprobs=3)
    return body


def test_structured_answer_follows_label_image(fake: FakeOpenAI) -> None:
    crystals = image("crystals/25.jpeg")
    fake.label_image(crystals, "crystals")
    api = client(fake)

    labelled = api.responses.create(**classify_body(crystals, examples=(image("clear/220.jpeg"),)))
    unknown = api.responses.create(**classify_body(image("other/1254.jpeg")))

    answer = json.loads(labelled.output_text)
    assert answer == {
        "observations": "fake observations of crystals",
        "label": "crystals",
        "confidence": 0.8,
        "explanation": "fake explanation of crystals",
    }
    assert json.loads(unknown.output_text)["label"] == "clear"
    assert labelled.model == "gpt-4.1" and labelled.status == "completed"
    assert labelled.usage.input_tokens == 2 * 765 + len("Classify the last image. " * 20) // 4
    assert labelled.output[0].content[0].logprobs is None
    sent = fake.responses_requests()[0]
    assert sent["temperature"] == 0 and sent["text"] == TEXT_FORMAT
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"


def test_label_outside_enum_falls_back_to_first_value(fake: FakeOpenAI) -> None:
    query = image("crystals/25.jpeg")
    fake.label_image(query, "skin")
    answer = json.loads(client(fake).responses.create(**classify_body(query)).output_text)
    assert answer["label"] == "clear"


class Label(str, enum.Enum):
    clear = "clear"
    crystals = "crystals"


class Classification(BaseModel):
    observations: str
    label: Label
    confidence: float


def test_pydantic_schema_with_enum_ref(fake: FakeOpenAI) -> None:
    query = image("crystals/6488.jpeg")
    fake.label_image(query, "crystals")
    content = [{"type": "input_text", "text": "Classify."}, image_item(query)]
    response = client(fake).responses.parse(
        model="gpt-4.1", input=[{"role": "user", "content": content}], text_format=Classification
    )
    assert response.output_parsed == Classification(
        observations="fake observations of crystals", label=Label.crystals, confidence=0.8
    )


def test_plain_text_follow_up(fake: FakeOpenAI) -> None:
    fake.follow_up_text = "Those are needles."
    response = client(fake).responses.create(model="gpt-4.1", input="What are the needles?")
    assert response.output_text == "Those are needles."


def test_logprobs_of_the_label_sum_to_label_probability(fake: FakeOpenAI) -> None:
    query = image("precipitate/200.jpeg")
    fake.label_image(query, "precipitate")
    response = client(fake).responses.create(**classify_body(query, logprobs=True))

    logprobs = response.output[0].content[0].logprobs
    assert logprobs is not None
    assert "".join(token.token for token in logprobs) == response.output_text
    assert all(bytes(token.bytes).decode() == token.token for token in logprobs)
    assert math.isclose(sum(token.logprob for token in logprobs), math.log(0.93))
    label_token = next(token for token in logprobs if token.logprob < 0)
    assert label_token.token == "precipitate"
    assert [alt.token for alt in label_token.top_logprobs] == ["precipitate", "clear", "crystals"]


def test_logprobs_only_when_included_and_enabled(fake: FakeOpenAI) -> None:
    fake.logprobs_enabled = False
    response = client(fake).responses.create(**classify_body(image("clear/220.jpeg"), logprobs=True))
    assert response.output[0].content[0].logprobs is None


def test_missing_api_key_is_401(fake: FakeOpenAI) -> None:
    api = client(fake)
    with pytest.raises(openai.AuthenticationError) as raised:
        api.responses.create(**classify_body(image("clear/220.jpeg")), extra_headers={"Authorization": ""})
    assert raised.value.code == "invalid_api_key"


def test_server_error_then_success_is_retried(fake: FakeOpenAI) -> None:
    fake.fail_next(500, retry_after=0.01)
    response = client(fake, max_retries=2).responses.create(**classify_body(image("clear/220.jpeg")))
    assert json.loads(response.output_text)["label"] == "clear"
    assert len(fake.responses_requests()) == 2
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]


def test_rate_limit_without_retries_raises(fake: FakeOpenAI) -> None:
    fake.fail_next(429, retry_after=1.5)
    with pytest.raises(openai.RateLimitError) as raised:
        client(fake).responses.create(**classify_body(image("clear/220.jpeg")))
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after-ms"] == "1500"
    assert len(fake.requests) == 1


def test_delay_beyond_the_timeout_raises(fake: FakeOpenAI) -> None:
    fake.delay = 2.0
    with pytest.raises(openai.APITimeoutError):
        client(fake, timeout=0.2).responses.create(**classify_body(image("clear/220.jpeg")))


def test_many_calls_are_served_at_once(fake: FakeOpenAI) -> None:
    fake.hold_until_in_flight = 60  # no call is answered before all 60 are in flight
    api = client(fake)
    body = classify_body(image("clear/220.jpeg"))
    with ThreadPoolExecutor(max_workers=60) as pool:
        answers = list(pool.map(lambda _: api.responses.create(**body).output_text, range(60)))
    assert len(answers) == 60
    assert fake.max_in_flight == 60


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("not_json", lambda text: text == "Sure! The label is crystals."),
        ("bad_label", lambda text: json.loads(text)["label"] == "maybe-crystals"),
        ("missing_field", lambda text: "label" not in json.loads(text) and "explanation" in json.loads(text)),
    ],
)
def test_malformed_answers(fake: FakeOpenAI, kind: str, check: Any) -> None:
    fake.malformed_next(kind)
    api = client(fake)
    body = classify_body(image("clear/220.jpeg"), logprobs=True)
    assert check(api.responses.create(**body).output_text)
    assert json.loads(api.responses.create(**body).output_text)["label"] == "clear"


def test_switches_apply_in_order(fake: FakeOpenAI) -> None:
    fake.fail_next(503, retry_after=0.01)
    fake.malformed_next("bad_label")
    response = client(fake, max_retries=1).responses.create(**classify_body(image("clear/220.jpeg")))
    assert json.loads(response.output_text)["label"] == "maybe-crystals"


def test_cached_tokens_on_repeated_prefix(fake: FakeOpenAI) -> None:
    api = client(fake)
    examples = (image("clear/220.jpeg"), image("crystals/25.jpeg"))
    first = api.responses.create(**classify_body(image("other/1254.jpeg"), examples))
    second = api.responses.create(**classify_body(image("other/1401.jpeg"), examples))
    assert first.usage.input_tokens_details.cached_tokens == 0
    cached = second.usage.input_tokens_details.cached_tokens
    assert cached == (2 * 765 + len("Classify the last image. " * 20) // 4) // 128 * 128
    assert 0 < cached < second.usage.input_tokens


def test_batch_round_trip(fake: FakeOpenAI) -> None:
    crystals = image("crystals/10.jpeg")
    fake.label_image(crystals, "crystals")
    lines = [
        {"custom_id": name, "method": "POST", "url": "/v1/responses", "body": classify_body(jpeg)}
        for name, jpeg in [("a", crystals), ("b", image("clear/236.jpeg"))]
    ]
    api = client(fake)
    uploaded = api.files.create(
        file=("batch.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode()), purpose="batch"
    )
    batch = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h")
    assert batch.status == "in_progress" and batch.request_counts.total == 2

    fake.batches_complete = False
    assert api.batches.retrieve(batch.id).status == "in_progress"
    fake.batches_complete = True
    done = api.batches.retrieve(batch.id)

    assert done.status == "completed" and done.request_counts.completed == 2
    assert uploaded.bytes == len(fake.file_bytes(uploaded.id)) and uploaded.purpose == "batch"
    results = [json.loads(line) for line in api.files.content(done.output_file_id).text.splitlines()]
    labels = {
        r["custom_id"]: json.loads(r["response"]["body"]["output"][0]["content"][0]["text"])["label"] for r in results
    }
    assert labels == {"a": "crystals", "b": "clear"}
    assert all(r["response"]["status_code"] == 200 and r["error"] is None for r in results)


def test_unknown_path_is_404_and_reset_clears(fake: FakeOpenAI) -> None:
    api = client(fake)
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("gpt-4.1")
    fake.fail_next(500)
    fake.reset()
    assert fake.requests == []
    api.responses.create(**classify_body(image("clear/220.jpeg")))
    assert fake.wait_for(lambda: len(fake.responses_requests()) == 1)

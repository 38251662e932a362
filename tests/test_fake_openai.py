"""The fake OpenAI server, driven by the real `openai` client."""
from __future__ import annotations

import base64
import enum
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from bot.batch import find_batch
from bot.ratelimit import parse_duration
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


def test_batches_are_listed_newest_first_page_by_page_and_found_by_their_key(fake: FakeOpenAI) -> None:
    api = client(fake)
    uploaded = api.files.create(file=("batch.jsonl", b"{}"), purpose="batch")
    ids = [api.batches.create(input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h",
                              metadata={"key": f"k{n}"}).id for n in range(105)]
    pages = lambda: sum(1 for r in fake.requests if r.path == "/v1/batches" and r.method == "GET")  # noqa: E731
    assert [batch.id for batch in api.batches.list(limit=7)] == ids[::-1] and pages() == 15  # in the API's order
    assert find_batch(api, "k0", since=0) == ids[0] and pages() == 15 + 2  # on the second page of 100
    assert find_batch(api, "k104", since=0) == ids[-1] and pages() == 17 + 1
    assert find_batch(api, "nobody's", since=0) is None and pages() == 18 + 2
    assert find_batch(api, "k0", since=time.time() + 60) is None and pages() == 20 + 1  # the first one is older
    fake.batch_list = False  # a gateway that cannot list them: nothing found, nothing raised
    assert find_batch(api, "k0", since=0) is None and pages() == 21 + 1


def test_unknown_path_is_404_and_reset_clears(fake: FakeOpenAI) -> None:
    api = client(fake)
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("gpt-4.1")
    fake.fail_next(500)
    fake.reset()
    assert fake.requests == []
    api.responses.create(**classify_body(image("clear/220.jpeg")))
    assert fake.wait_for(lambda: len(fake.responses_requests()) == 1)


# --- rate limits, outages, cut-off answers -------------------------------------------------------

RATE_HEADERS = {f"x-ratelimit-{what}-{kind}" for what in ("limit", "remaining", "reset") for kind in ("tokens", "requests")}
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


def raw(fake: FakeOpenAI, body: dict[str, Any], key: str = "sk-test") -> Any:
    """One request's raw answer, whatever its status."""
    api = OpenAI(base_url=fake.base_url, api_key=key, max_retries=0)
    try:
        return api.responses.with_raw_response.create(**body)
    except openai.APIStatusError as error:
        return error.response


def test_every_answer_carries_the_rate_limit_headers_in_openais_format(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    fake.fail_next(500)
    fake.fail_next(400)
    answers = [raw(fake, body) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [500, 400, 200]
    for answer in answers:
        assert RATE_HEADERS <= set(answer.headers)
        assert GO_DURATION.match(answer.headers["x-ratelimit-reset-tokens"])
    assert answers[0].headers["x-ratelimit-limit-tokens"] == "30000000"
    fake.rate_limit_headers = False
    assert not RATE_HEADERS & set(raw(fake, body).headers)


def test_tokens_per_minute_refuse_like_openai_and_refused_requests_count(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    cost = fake.estimated_tokens(body)
    fake.set_rate_limits(tokens=2 * cost + 10, requests=100, minute=6000.0)  # a slow refill: exact figures
    first, second, refused = raw(fake, body), raw(fake, body), raw(fake, body)
    assert (first.status_code, second.status_code, refused.status_code) == (200, 200, 429)
    assert int(second.headers["x-ratelimit-remaining-tokens"]) in (9, 10)
    error = refused.json()["error"]
    assert re.fullmatch(rf"Rate limit reached for gpt-4\.1 in organization org-fake on tokens per min \(TPM\): "
                        rf"Limit {2 * cost + 10}, Used {2 * cost}, Requested {cost}\. Please try again in "
                        rf"(\d+h)?\d+m[\d.]+s\. Visit https://platform\.openai\.com/account/rate-limits to learn more\.",
                        error["message"])
    assert (error["type"], error["code"], error["param"]) == ("tokens", "rate_limit_exceeded", None)
    wait = (cost - 10) / ((2 * cost + 10) / 6000)
    assert int(refused.headers["retry-after-ms"]) == pytest.approx(wait * 1000, rel=0.01)
    assert float(refused.headers["retry-after"]) == pytest.approx(wait, rel=0.01)
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"  # the refused request spent what was left
    assert raw(fake, body, key="sk-other").status_code == 200  # another key has its own budget
    assert fake.rate_limited == 1 and fake.status_counts[200] == 3


def test_requests_per_minute_are_limited_too(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    fake.set_rate_limits(tokens=10 ** 7, requests=2, minute=30.0)  # one request back every 15 s
    statuses = [raw(fake, body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = raw(fake, body)
    assert "on requests per min (RPM): Limit 2, Used 2, Requested 1." in refused.json()["error"]["message"]
    assert refused.json()["error"]["type"] == "requests"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert 29 < parse_duration(refused.headers["x-ratelimit-reset-requests"]) <= 30  # (refill: the token test)


def test_a_request_larger_than_the_limit_and_a_spent_quota(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    fake.set_rate_limits(tokens=100)
    too_large = raw(fake, body)
    assert too_large.status_code == 429 and "Request too large for gpt-4.1" in too_large.json()["error"]["message"]
    fake.set_rate_limits(tokens=10 ** 7)
    fake.quota_exhausted = True
    spent = raw(fake, body).json()["error"]
    assert (spent["code"], spent["type"]) == ("insufficient_quota", "insufficient_quota")
    assert spent["message"].startswith("You exceeded your current quota")


def test_an_outage_answers_5xx_or_drops_for_its_time(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    fake.outage(503)
    assert raw(fake, body).status_code == 503
    fake.outage("drop")
    with pytest.raises(openai.APIConnectionError):
        client(fake).responses.create(**body)
    fake.outage(500, seconds=3.0)  # long enough for a loaded machine to send one request within it
    assert raw(fake, body).status_code == 500
    fake.wait_for(lambda: raw(fake, body).status_code == 200, timeout=15, interval=0.2)
    assert fake.status_counts[503] == 1 and fake.status_counts["dropped"] == 1 and fake.status_counts[500] >= 1


def test_a_cut_off_answer_is_http_200_with_half_a_json_body(fake: FakeOpenAI) -> None:
    body = classify_body(image("clear/220.jpeg"))
    fake.truncate_next()
    cut = raw(fake, body)
    assert cut.status_code == 200 and cut.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert json.loads(raw(fake, body).content)["status"] == "completed"

"""The classifier end to end: the real openai client against the fake OpenAI server."""
from __future__ import annotations

import base64
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.classifier import ModelError
from bot.config import PROJECT_ROOT
from bot.services import Services
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import API_KEY, content_items, image_bytes, prefix_json

EXAMPLES = [
    ("crystals", "Distinct crystal structures can be seen forming in the droplet."),
    ("clear", "The droplet is transparent and shows no visible particles or structures."),
    ("precipitate", "Granular particles are scattered across the droplet indicating precipitation."),
    ("other", "The image shows unexpected structures which are not clear solution, crystals, or precipitate."),
]


def test_classify_sends_the_few_shot_prompt_and_returns_the_call(services: Services, fake_openai: FakeOpenAI) -> None:
    image = services.normalise(image_bytes("crystals", 10), "10.jpeg")
    fake_openai.label_image(image.jpeg, "crystals")

    call = services.classifier.classify(image)

    assert (call.label, call.confidence_source) == ("crystals", "logprobs")
    assert call.confidence == pytest.approx(0.93)
    assert call.explanation and call.observations
    assert call.cost_usd and call.cost_usd > 0
    (request,) = fake_openai.responses_requests()
    assert request["model"] == "gpt-4.1" and request["temperature"] == 0
    items = content_items(request)
    assert "Choose the most appropriate single label" in items[0]["text"]
    for definition in ("clear: transparent solution", "crystals: crystals observed", "precipitate: precipitate",
                       "other: unexpected observations"):
        assert definition in items[0]["text"]
    examples = [items[i:i + 3] for i in range(1, 13, 3)]
    for number, ((label, explanation), (title, picture, answer)) in enumerate(zip(EXAMPLES, examples), start=1):
        assert title["text"] == f"**Example {number}:**"
        assert picture["type"] == "input_image" and picture["detail"] == "high"
        assert answer["text"] == f"Label: {label}\nExplanation: {explanation}"
    assert items[-2]["text"] == "**Now classify the following image:**"
    assert base64.b64decode(items[-1]["image_url"].split(",", 1)[1]) == image.jpeg
    schema = request["text"]["format"]
    assert schema["type"] == "json_schema" and schema["strict"] is True
    assert list(schema["schema"]["properties"]) == ["observations", "label", "confidence", "explanation"]
    assert schema["schema"]["properties"]["label"]["enum"] == ["clear", "crystals", "precipitate", "other"]
    assert request["include"] == ["message.output_text.logprobs"]
    (recorded,) = [r for r in fake_openai.requests if r.path == "/v1/responses"]
    assert recorded.headers["authorization"] == f"Bearer {API_KEY}"


def test_the_prompt_prefix_is_byte_identical_and_gets_cached(services: Services, fake_openai: FakeOpenAI) -> None:
    first = services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    second = services.classifier.classify(services.normalise(image_bytes("other", 1401), "1401.jpeg"))

    one, two = fake_openai.responses_requests()
    assert prefix_json(one) == prefix_json(two)
    assert content_items(one)[-1] != content_items(two)[-1]
    assert first.usage.cached_tokens == 0 and second.usage.cached_tokens > 0


def test_the_same_image_is_answered_from_the_cache(services: Services, fake_openai: FakeOpenAI) -> None:
    image = services.normalise(image_bytes("precipitate", 215), "215.jpeg")
    first = services.classifier.classify(image)
    again = services.classifier.classify(services.normalise(image_bytes("precipitate", 215), "renamed.jpeg"))

    assert len(fake_openai.responses_requests()) == 1
    assert again.from_cache and not first.from_cache
    assert (again.id, again.label, again.explanation) == (first.id, first.label, first.explanation)


def test_editing_the_prompt_makes_a_new_call(make_services, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    before = make_services(PROMPTS_DIR=str(prompts))
    image = before.normalise(image_bytes("clear", 220), "220.jpeg")
    before.classifier.classify(image)
    before.close()
    (prompts / "instructions.md").write_text("Label the drop. Be careful with faint needles.\n")

    after = make_services(PROMPTS_DIR=str(prompts))
    call = after.classifier.classify(image)

    assert not call.from_cache
    assert len(fake_openai.responses_requests()) == 2
    assert "faint needles" in content_items(fake_openai.responses_requests()[1])[0]["text"]


def test_another_model_is_another_cache_entry(make_services, fake_openai: FakeOpenAI) -> None:
    image = make_services().normalise(image_bytes("clear", 220), "220.jpeg")
    make_services().classifier.classify(image)
    call = make_services(OPENAI_MODEL="gpt-4.1-mini").classifier.classify(image)
    assert call.model == "gpt-4.1-mini" and not call.from_cache
    assert [r["model"] for r in fake_openai.responses_requests()] == ["gpt-4.1", "gpt-4.1-mini"]


def test_without_logprobs_the_models_own_confidence_is_used(make_services, fake_openai: FakeOpenAI) -> None:
    fake_openai.logprobs_enabled = False
    services = make_services()
    call = services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    assert (call.confidence, call.confidence_source) == (pytest.approx(0.8), "model")


def test_logprobs_can_be_switched_off(make_services, fake_openai: FakeOpenAI) -> None:
    services = make_services(OPENAI_LOGPROBS="false")
    services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    assert "include" not in fake_openai.responses_requests()[0]


def test_a_500_is_retried(services: Services, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, retry_after=0.01)
    call = services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    assert call.label == "clear"
    assert len(fake_openai.responses_requests()) == 2


def test_429s_are_waited_out_however_many_never_reported(services: Services, fake_openai: FakeOpenAI,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    fake_openai.fail_next(429, times=6, retry_after=0.01)  # more than OPENAI_MAX_RETRIES (2)
    image = services.normalise(image_bytes("clear", 236), "236.jpeg")

    assert services.classifier.classify(image).label == "clear"
    assert fake_openai.rate_limited == 6 and len(fake_openai.responses_requests()) == 7
    assert API_KEY not in caplog.text


def test_a_lasting_500_is_reported(services: Services, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, times=10, retry_after=0.01)
    with pytest.raises(ModelError, match=r"failed \(HTTP 500\) after 2 retries"):
        services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))


def test_a_slow_model_times_out(make_services, fake_openai: FakeOpenAI) -> None:
    services = make_services(OPENAI_TIMEOUT="0.3", OPENAI_MAX_RETRIES="0")
    fake_openai.delay = 2.0
    with pytest.raises(ModelError, match="did not answer in time"):
        services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))


def test_a_wrong_api_key_says_what_to_check(make_services, fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(401)
    services = make_services(OPENAI_MAX_RETRIES="0")
    with pytest.raises(ModelError, match="OPENAI_API_KEY") as raised:
        services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    assert API_KEY not in str(raised.value)


@pytest.mark.parametrize("kind", ["not_json", "bad_label", "missing_field"])
def test_an_answer_outside_the_schema_is_an_error_not_a_guess(services: Services, fake_openai: FakeOpenAI,
                                                              kind: str, caplog: pytest.LogCaptureFixture) -> None:
    fake_openai.malformed_next(kind, times=3)  # every try: the first and OPENAI_MAX_RETRIES (2) more
    image = services.normalise(image_bytes("crystals", 25), "25.jpeg")
    with caplog.at_level(logging.WARNING), pytest.raises(ModelError, match="did not follow the expected format"):
        services.classifier.classify(image)
    assert services.classifier.cached(image) is None
    assert caplog.text.count("broke the schema") == 3 and "Traceback" not in caplog.text


@pytest.mark.parametrize("broken", [lambda fake: fake.malformed_next("bad_label"), lambda fake: fake.truncate_next()])
def test_a_broken_answer_is_tried_again_like_a_5xx(services: Services, fake_openai: FakeOpenAI, broken) -> None:
    broken(fake_openai)
    call = services.classifier.classify(services.normalise(image_bytes("clear", 236), "236.jpeg"))
    assert call.label == "clear" and len(fake_openai.responses_requests()) == 2


def test_model_calls_are_bounded_by_the_concurrency_setting(make_services, fake_openai: FakeOpenAI) -> None:
    services = make_services(MODEL_CONCURRENCY="2")
    fake_openai.delay = 0.2
    images = [services.normalise(image_bytes(label, n), f"{n}.jpeg")
              for label, n in [("clear", 236), ("crystals", 10), ("crystals", 25), ("other", 1254),
                               ("other", 1401), ("precipitate", 216)]]
    with ThreadPoolExecutor(6) as pool:
        calls = list(pool.map(services.classifier.classify, images))
    assert len(calls) == 6
    assert fake_openai.max_in_flight == 2

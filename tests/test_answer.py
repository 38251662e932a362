"""bot.answer: answers inside the schema parse; answers outside it raise AnswerError; the confidence
comes from the label's token log-probabilities when they line up with the text."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bot.answer import AnswerError, TokenLogprob, answer_schema, label_probability, parse_answer

LABELS = ("clear", "crystals", "precipitate", "other")
SEED = Path(__file__).parent / "data" / "seed-gpt41-batch-output.jsonl"


def answer_text(label: str = "crystals", confidence: object = 0.7, observations: str = "Sharp edges in the drop.",
                explanation: str = "Faceted objects are crystals.", **extra: object) -> str:
    data = {"observations": observations, "label": label, "confidence": confidence, "explanation": explanation}
    return json.dumps({**data, **extra}, ensure_ascii=False)  # models send raw UTF-8


def tokens(text: str, label: str, label_logprobs: list[float], other_logprob: float = -3.0) -> list[TokenLogprob]:
    """Tokens spelling `text` exactly (as bytes): the label's value split into len(label_logprobs) tokens,
    everything else in 3-byte tokens whose logprob must NOT count towards the label."""
    data = text.encode()
    marker = f'"label": "{label}"'.encode()
    start = data.index(marker) + len(marker) - len(label.encode()) - 1
    end = start + len(label.encode())

    def chunks(part: bytes, size: int) -> list[bytes]:
        return [part[i:i + size] for i in range(0, len(part), size)]

    size = math.ceil((end - start) / len(label_logprobs))
    label_tokens = [TokenLogprob(b, lp) for b, lp in zip(chunks(data[start:end], size), label_logprobs, strict=True)]
    return ([TokenLogprob(b, other_logprob) for b in chunks(data[:start], 3)] + label_tokens
            + [TokenLogprob(b, other_logprob) for b in chunks(data[end:], 3)])


def test_valid_answer_parses_with_the_models_own_confidence():
    answer = parse_answer(answer_text(confidence=0.7), LABELS)
    assert (answer.label, answer.confidence, answer.confidence_source) == ("crystals", 0.7, "model")
    assert answer.observations == "Sharp edges in the drop."
    assert answer.explanation == "Faceted objects are crystals."


def test_confidence_comes_from_the_label_tokens_when_they_line_up():
    text = answer_text(confidence=0.2)
    answer = parse_answer(text, LABELS, logprobs=tokens(text, "crystals", [math.log(0.9), 0.0]))
    assert answer.confidence_source == "logprobs"
    assert answer.confidence == pytest.approx(0.9)


def test_label_probability_multiplies_the_label_token_probabilities():
    text = answer_text(label="precipitate")
    probability = label_probability(text, "precipitate", tokens(text, "precipitate", [math.log(0.8), math.log(0.5)]))
    assert probability == pytest.approx(0.4)


def test_a_token_straddling_the_label_and_its_quotes_counts():
    text = answer_text(label="clear")
    before, after = text.split('"clear"')
    toks = [TokenLogprob(before.encode(), -2.0), TokenLogprob(b'"clear",', math.log(0.6)),
            TokenLogprob(after[1:].encode(), -2.0)]
    assert label_probability(text, "clear", toks) == pytest.approx(0.6)


def test_label_offsets_are_in_bytes_so_non_ascii_observations_do_not_shift_them():
    text = answer_text(observations="Needles of 10 µm – größer als erwartet ✓", label="crystals")
    assert len(text.encode()) > len(text)
    assert label_probability(text, "crystals", tokens(text, "crystals", [math.log(0.75)])) == pytest.approx(0.75)


def test_falls_back_to_the_models_confidence_when_tokens_do_not_line_up():
    text = answer_text(confidence=0.35)
    misaligned = tokens(text, "crystals", [math.log(0.9)])[:-1]  # one token short of the text
    answer = parse_answer(text, LABELS, logprobs=misaligned)
    assert (answer.confidence, answer.confidence_source) == (0.35, "model")


def test_falls_back_to_the_models_confidence_when_logprobs_are_absent():
    for logprobs in (None, []):
        answer = parse_answer(answer_text(confidence=0.35), LABELS, logprobs=logprobs)
        assert (answer.confidence, answer.confidence_source) == (0.35, "model")


def test_escaped_label_text_in_observations_does_not_confuse_label_probability():
    observations = 'I first thought \"label\": \"clear\", but see "label": "other" quoted'
    text = answer_text(observations=observations, label="crystals")
    assert '\\"label\\": \\"clear\\"' in text  # the JSON text really carries escaped quotes
    toks = tokens(text, "crystals", [math.log(0.9)])
    assert label_probability(text, "crystals", toks) == pytest.approx(0.9)
    answer = parse_answer(text, LABELS, logprobs=toks)
    assert (answer.label, answer.confidence_source, answer.observations) == ("crystals", "logprobs", observations)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Sorry, I cannot classify this image.", "not JSON"),
        ('{"observations": "x", "label": "crystals"', "'confidence' is a required property"),  # repaired
        (answer_text(label="crystal"), "'crystal' is not one of"),
        (json.dumps({"observations": "x", "label": "clear", "explanation": "y"}), "'confidence' is a required property"),
        (answer_text(colour="blue"), "'colour' was unexpected"),
        (answer_text(confidence="high"), "'high' is not of type 'number'"),
        (answer_text(observations=["a", "b"]), "is not of type 'string'"),
        (answer_text(confidence=1.5), "confidence 1.5 is not between 0 and 1"),
        (answer_text(confidence=-0.1), "confidence -0.1 is not between 0 and 1"),
        ('["crystals"]', "is not of type 'object'"),
    ],
)
def test_schema_breaks_raise_answer_error_saying_what_is_wrong(text, expected):
    with pytest.raises(AnswerError) as error:
        parse_answer(text, LABELS)
    assert expected in str(error.value)


def test_a_nan_confidence_is_refused():
    with pytest.raises(AnswerError, match="not between 0 and 1"):
        parse_answer(answer_text(confidence=float("nan")), LABELS)


@pytest.fixture(scope="module")
def seed_record() -> dict:
    return json.loads(SEED.read_text().splitlines()[0])


def test_older_schema_without_confidence_gives_no_confidence(seed_record):
    body = seed_record["response"]["body"]
    old_schema = body["text"]["format"]["schema"]
    answer = parse_answer(body["output"][0]["content"][0]["text"], LABELS, schema=old_schema)
    assert (answer.label, answer.confidence, answer.confidence_source) == ("other", None, "none")
    assert answer.explanation.startswith("The image shows an unusual structure")
    assert answer.observations == ""


def test_older_schema_still_checks_the_label_against_the_categories(seed_record):
    old_schema = seed_record["response"]["body"]["text"]["format"]["schema"]
    with pytest.raises(AnswerError, match="'needles' is not one of clear, crystals, precipitate, other"):
        parse_answer('{"label": "needles", "explanation": "long thin shapes"}', LABELS, schema=old_schema)


def test_schema_lists_evidence_before_the_label_and_allows_only_the_categories():
    schema = answer_schema(LABELS)
    assert list(schema["properties"]) == ["observations", "label", "confidence", "explanation"]
    assert schema["properties"]["label"]["enum"] == list(LABELS)
    assert sorted(schema["required"]) == sorted(schema["properties"])
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("text", [
    '```json\n{"label": "crystals", "explanation": "Needles."}\n```',
    'Here is my answer:\n```json\n{\n  "label": " Crystals ",\n  "explanation": "Needles.",\n}\n```',
    '{"label": "CRYSTALS", "explanation": "Needles."',
    "{'label': 'crystals', 'explanation': 'Needles.'}",
])
def test_slightly_broken_json_from_servers_without_structured_output_is_repaired(text):
    answer = parse_answer(text, LABELS, schema=answer_schema(LABELS, ("label", "explanation")))
    assert (answer.label, answer.explanation, answer.confidence_source) == ("crystals", "Needles.", "none")


def test_a_label_with_other_separators_is_matched_but_never_guessed():
    labels = ("clear", "phase separation")
    schema = answer_schema(labels, ("label",))
    assert parse_answer('{"label": "Phase_Separation"}', labels, schema=schema).label == "phase separation"
    with pytest.raises(AnswerError, match="is not one of"):
        parse_answer('{"label": "crystal"}', labels, schema=schema)


def test_answer_fields_are_chosen_in_evidence_first_order():
    assert list(answer_schema(LABELS, ("explanation", "label"))["properties"]) == ["label", "explanation"]
    with pytest.raises(ValueError):
        answer_schema(LABELS, ("explanation",))
    with pytest.raises(ValueError):
        answer_schema(LABELS, ("label", "colour"))

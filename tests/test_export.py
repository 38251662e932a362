"""bot.export: the period of `/crystals export` and a call as a CSV row."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from bot.export import HEADER, ExportRequestError, Period, csv_row, inert, parse_period, summary, write_csv


def utc(*day: int) -> float:
    return datetime(*day, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("text", "start", "end", "described"), [
    ("export", None, None, "of all time"),
    ("Export  from 2026-11-01", utc(2026, 11, 1), None, "since 2026-11-01"),
    ("export to 2026-11-30", None, utc(2026, 12, 1), "up to 2026-11-30"),  # the last day is included
    ("export from 2026-11-01 to 2026-11-01", utc(2026, 11, 1), utc(2026, 11, 2), "from 2026-11-01 to 2026-11-01"),
])
def test_parse_period(text, start, end, described):
    period = parse_period(text)
    assert (period.start, period.end, period.describe()) == (start, end, described)


@pytest.mark.parametrize(("text", "complaint"), [
    ("export from yesterday", "`yesterday` is not a date like 2026-11-30"),
    ("export from 2026-13-01", "`2026-13-01` is not a date"),
    ("export to 2026-11-01 from 2026-10-01", "for example"),
    ("export everything", "for example"),
    ("export from 2026-11-30 to 2026-11-01", "The end (2026-11-01) is before the start (2026-11-30)"),
])
def test_a_period_that_cannot_be_read_says_how_to_write_one(text, complaint):
    with pytest.raises(ExportRequestError) as error:
        parse_period(text)
    assert complaint in str(error.value) and "/crystals export [from YYYY-MM-DD] [to YYYY-MM-DD]" in str(error.value)


def test_the_file_is_named_after_the_channel_and_the_period():
    assert parse_period("export from 2026-11-01").file_name("C1") == "crystals-C1-2026-11-01-to-now.csv"
    assert Period(None, None, None, None).file_name("C1") == "crystals-C1-start-to-now.csv"


RECORD = {"id": 3, "message_ts": "1700000000.000100", "thread_ts": "1700000000.000100",
          "reply_ts": "1700000001.000200", "user_id": "U1", "file_name": "A1.png", "label": "crystals",
          "confidence": 0.93127, "explanation": "Faceted.", "verdict": "corrected", "verdict_label": "other",
          "verdict_user": "U8"}


def test_a_csv_row_has_the_time_the_call_the_verdict_and_a_link_to_the_thread():
    assert csv_row(RECORD, "https://lab.slack.com/", "C1") == (
        "2023-11-14 22:13:20", "U1", "A1.png", "crystals", "0.931", "Faceted.", "corrected", "other", "U8",
        "https://lab.slack.com/archives/C1/p1700000001000200?thread_ts=1700000000.000100&cid=C1", "", "", "", "", "")


def test_a_plates_image_has_its_plate_well_drop_screen_and_condition():
    row = csv_row({**RECORD, "plate": "plate42", "well": "D7", "drop": 2, "screen": "JCSG+",
                   "condition": "0.1 M NaOAc pH 5.0, 20% PEG 8000"}, "https://lab.slack.com/", "C1")
    assert dict(zip(HEADER, row))["condition"] == "0.1 M NaOAc pH 5.0, 20% PEG 8000"
    assert row[-5:] == ("plate42", "D7", "2", "JCSG+", "0.1 M NaOAc pH 5.0, 20% PEG 8000")


def test_a_call_without_confidence_or_verdict_leaves_those_cells_empty():
    row = csv_row({**RECORD, "confidence": None, "verdict": None, "verdict_label": None, "verdict_user": None},
                  "https://lab.slack.com/", "C1")
    assert row[4] == "" and row[6:9] == ("", "", "")


def test_text_from_people_or_the_model_never_runs_as_a_spreadsheet_formula():
    assert [inert(text) for text in ("=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "fine = good")] == \
        ["'=HYPERLINK(1)", "'+1", "'-1", "'@SUM(A1)", "fine = good"]
    assert csv_row({**RECORD, "file_name": "=cmd.png"}, "https://lab.slack.com/", "C1")[2] == "'=cmd.png"


def test_the_summary_says_how_many_calls_and_when_there_are_none():
    period = parse_period("export to 2026-11-30")
    assert summary("C1", period, 2) == "The 2 classified images in <#C1> up to 2026-11-30, with the team's latest verdicts."
    assert summary("C1", period, 0).startswith("No images were classified in <#C1> up to 2026-11-30")


def test_write_csv_writes_the_column_names_and_every_page():
    out = io.StringIO()
    rows = write_csv(iter([[RECORD, RECORD], [RECORD]]), "https://lab.slack.com/", "C1", out)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == 3 and lines[0] == list(HEADER) and len(lines) == 4 and lines[3][2] == "A1.png"
    empty = io.StringIO()
    assert write_csv(iter([]), "https://lab.slack.com/", "C1", empty) == 0 and empty.getvalue().count("\n") == 1

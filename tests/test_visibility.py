"""bot.visibility and bot.sharing: who sees what, what is counted, whether a channel's hits are shared."""
from __future__ import annotations

import pytest

from bot.models import HitSharing, MonthSpend
from bot.sharing import USAGE, may_share, parse_change, status_message
from bot.visibility import (Viewer, hidden_note, is_direct_message, lookup_channels, scope, scope_spend,
                            shared_nowhere)

ALICE = Viewer("U1", frozenset({"C1", "G2"}))


def test_a_person_sees_only_their_channels_and_the_rest_is_only_counted():
    calls = [("a.png", "C1"), ("b.png", "G2"), ("c.png", "C3"), ("d.png", "C3"), ("e.png", "D4")]
    seen = scope(calls, lambda call: call[1], ALICE)
    assert seen.shown == [("a.png", "C1"), ("b.png", "G2")] and seen.hidden == 3
    nobody = scope(calls, lambda call: call[1], Viewer("U9", frozenset()))
    assert nobody.shown == [] and nobody.hidden == 5


def test_what_is_looked_up_leaves_out_removed_channels_and_direct_messages():
    assert lookup_channels(["C1", "G2", "C3", "D4"], removed={"C3"}) == {"C1", "G2"}
    assert is_direct_message("D0123") and not is_direct_message("C0123") and not is_direct_message("G0123")


def test_spend_per_channel_only_for_the_persons_channels_the_rest_as_one_unnamed_sum():
    spend = MonthSpend("2026-11", 10.0, {"C1": 1.5, "G2": 2.5, "C3": 4.0, "C4": 1.0}, 50.0)
    scoped = scope_spend(spend, ALICE)
    assert scoped.by_channel == {"C1": 1.5, "G2": 2.5} and scoped.others_usd == 5.0
    assert scoped.total_usd == 10.0 and scoped.budget_usd == 50.0  # the budget counts everything


@pytest.mark.parametrize("calls, plates, expected", [
    (0, 0, ""),
    (1, 0, "_1 more call in the last 30 days is from channels you are not in._"),
    (3, 1, "_3 more calls and 1 more plate in the last 30 days are from channels you are not in._"),
    (0, 2, "_2 more plates in the last 30 days are from channels you are not in._"),
])
def test_hidden_things_are_counted_without_their_channel(calls, plates, expected):
    assert hidden_note(calls, plates, "in the last 30 days") == expected


@pytest.mark.parametrize("file, expected", [
    ({"id": "F1", "channels": [], "groups": [], "ims": [], "shares": {}}, True),
    ({"id": "F1"}, True),
    ({"id": "F1", "channels": ["C1"]}, False),
    ({"id": "F1", "groups": ["G2"]}, False),
    ({"id": "F1", "ims": ["D3"]}, False),
    ({"id": "F1", "shares": {"private": {"C9": []}}}, False),
])
def test_a_file_is_gone_when_no_conversation_has_it(file, expected):
    assert shared_nowhere(file) is expected


@pytest.mark.parametrize("text, expected", [("share-hits", None), ("share-hits on", "on"), ("SHARE-HITS Off", "off")])
def test_share_hits_reads_on_off_or_nothing(text, expected):
    assert parse_change(text) == expected


@pytest.mark.parametrize("text", ["share-hits yes", "share-hits on please", "share-hits #lab on"])
def test_share_hits_refuses_anything_else_with_how_to_use_it(text):
    with pytest.raises(ValueError, match="share-hits` says whether"):
        parse_change(text)
    assert "`/crystals share-hits on` or `off`" in USAGE


def test_public_hits_are_shared_private_ones_only_when_the_latest_change_turned_it_on():
    on, off = HitSharing("G2", True, "U1", 0.0), HitSharing("G2", False, "U1", 1.0)
    assert may_share(False, None) and may_share(False, off)
    assert not may_share(True, None) and not may_share(True, off) and may_share(True, on)


def test_the_status_says_who_decided_when_and_how_to_change_it():
    on = HitSharing("G2", True, "U1", 1_790_000_000.0)
    assert status_message("CHITS", True, on).text == (
        "Crystal hits from this private channel are posted in <#CHITS>: turned on by <@U1> on 2026-09-21 "
        "14:13 UTC. `/crystals share-hits off` stops it (what was posted stays).")
    never = status_message("CHITS", True, None).text
    assert never.startswith("Crystal hits from this private channel are not posted in <#CHITS>. A member can turn "
                            "it on with `/crystals share-hits on`: everyone in <#CHITS> then sees")
    off = status_message("CHITS", True, HitSharing("G2", False, "U2", 1_790_000_000.0), changed=True).text
    assert off.startswith(":white_check_mark: Done. Crystal hits from this private channel are not posted in "
                          "<#CHITS> (turned off by <@U2> on 2026-09-21 14:13 UTC)")
    assert status_message("CHITS", False, None).text.startswith("This channel is public: its crystal hits are "
                                                                "posted in <#CHITS>")

"""The usage ledger: deltas with the next commit, merged by (source, model), rolled up from children."""

from __future__ import annotations

import lash
from lash import LedgerEntry, TokenUsage


def test_usage_deltas_go_with_the_next_commit_and_merge_by_source_and_model(place, spy):
    with place.open() as handle:
        session = handle.session("s")
        calls = spy(session)
        session.record_usage("agent", "big", TokenUsage(input_tokens=10, output_tokens=5))
        session.record_usage("agent", "big", TokenUsage(input_tokens=1))
        session.record_usage("tool", "small", TokenUsage(output_tokens=2))
        session.commit()
        session.commit()  # nothing new: no deltas
        session.record_usage("agent", "big", TokenUsage(cache_read_input_tokens=7))
        session.commit()
        assert [len(c.usage_deltas) for c in calls.commits] == [3, 0, 1]
    with place.open() as handle:
        ledger = handle.session("s").store.load_session().token_ledger
    assert set(ledger) == {
        LedgerEntry("agent", "big", TokenUsage(input_tokens=11, output_tokens=5, cache_read_input_tokens=7)),
        LedgerEntry("tool", "small", TokenUsage(output_tokens=2)),
    }


def test_usage_report_totals_per_source_per_model_and_overall_including_pending(handle):
    session = handle.session("s")
    session.record_usage("agent", "big", TokenUsage(input_tokens=10))
    session.record_usage("agent", "small", TokenUsage(input_tokens=3))
    session.commit()
    session.record_usage("summarizer", "small", TokenUsage(output_tokens=4))  # not committed yet
    report = session.usage_report()
    assert report.by_source == {"agent": TokenUsage(input_tokens=13), "summarizer": TokenUsage(output_tokens=4)}
    assert report.by_model == {"big": TokenUsage(input_tokens=10), "small": TokenUsage(input_tokens=3, output_tokens=4)}
    assert report.total == TokenUsage(input_tokens=13, output_tokens=4)


def test_turn_state_counts_turns_and_total_usage(handle):
    session = handle.session("s")
    session.record_usage("agent", "m", TokenUsage(input_tokens=5))
    session.commit()
    session.record_usage("agent", "m", TokenUsage(input_tokens=2))
    session.commit()
    state = session.turn_state
    assert (state.turn_index, state.token_usage.total, state.last_prompt_usage) == (2, 7, TokenUsage(input_tokens=2))


def test_child_usage_rolls_up_only_when_asked(place):
    with place.open() as handle:
        root = handle.session("root")
        root.record_usage("agent", "m", TokenUsage(input_tokens=100))
        root.commit()
        child = root.spawn_child("child")
        child.record_usage("sub-agent", "m", TokenUsage(input_tokens=10))
        child.commit()
        grandchild = child.spawn_child("grandchild")
        grandchild.record_usage("sub-agent", "tiny", TokenUsage(output_tokens=1))
        grandchild.commit()
        handle.session("unrelated").record_usage("agent", "m", TokenUsage(input_tokens=1000))
        assert root.usage_report().total.total == 100
        report = root.usage_report(include_children=True)
        assert report.total == TokenUsage(input_tokens=110, output_tokens=1)
        assert report.by_source == {"agent": TokenUsage(input_tokens=100), "sub-agent": TokenUsage(10, 1)}
        assert lash.UsageReport(()).total == TokenUsage()

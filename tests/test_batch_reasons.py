"""The batch summary per routing reason: how much each reason routes, and how often the windows
it routes are wrong against the accepted ones (issue 25: review driven by evidence)."""

from __future__ import annotations

import math

import pandas as pd

from modalops.infer import REVIEW
from modalops.infer.batch import reason_kinds, reason_table
from modalops.infer.report import summary_markdown


def _pred() -> pd.DataFrame:
    rows = [
        # label, truth, route, reasons
        ("a", "a", "accept", ""),
        ("a", "b", "accept", ""),  # 1 of 4 accepted with a label is wrong
        ("b", "b", "accept", ""),
        ("b", "b", "accept", ""),
        ("a", "b", REVIEW, "abstained: p 0.41 < 0.60; missing audio"),
        ("b", "a", REVIEW, "missing audio"),
        ("b", "b", REVIEW, "missing audio"),
        ("a", None, REVIEW, "weak slice site=b (F1 0.31)"),
    ]
    return pd.DataFrame(rows, columns=["label", "true_label", "route", "reasons"])


def test_reason_kinds_are_named_once_each():
    assert reason_kinds("abstained: p 0.41 < 0.60; missing audio; missing camera") == [
        "abstained",
        "missing",
    ]
    assert reason_kinds("weak slice site=b (F1 0.31)") == ["weak slice"]
    assert reason_kinds("") == [] and reason_kinds(None) == []


def test_each_reason_gets_its_share_and_error_rate_against_the_accepted():
    table = reason_table(_pred())
    assert list(table) == ["abstained", "missing", "weak slice"]
    missing = table["missing"]
    assert (missing["routed"], missing["windows_with_truth"]) == (3, 3)
    assert missing["share"] == 3 / 8
    assert missing["error_rate"] == 2 / 3  # two of its three labelled windows are wrong
    assert missing["error_rate_accepted"] == 1 / 4
    assert table["abstained"]["error_rate"] == 1.0
    weak = table["weak slice"]  # no label among its windows: no rate, not a zero
    assert weak["windows_with_truth"] == 0 and math.isnan(weak["error_rate"])


def test_the_summary_prints_the_reason_table():
    text = summary_markdown(
        {"model": "m v1", "windows": 8, "sessions_predicted": 2, "sessions_requested": 2,
         "quarantine_rows": 0, "routed": 4, "routed_share": 0.5, "abstained_share": 0.125,
         "by_reason": reason_table(_pred())},
        {},
        "",
    )  # fmt: skip
    assert "| missing | 3 | 37.5% | 0.667 of 3 | 0.250 |" in text, text
    assert "| weak slice | 1 | 12.5% | n/a of 0 | 0.250 |" in text, text

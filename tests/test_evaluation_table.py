"""The plain-text table of ``kpose.utils.table`` (used by ``kpose eval``)."""

from __future__ import annotations

from kpose.utils.table import format_table


def test_format_table_aligns_text_left_numbers_right():
    rows = [
        {"model": "simple_r50", "AP": "0.7231", "GMACs": "5.46"},
        {"model": "srpose", "AP": "n/a", "GMACs": "12.10", "extra": "ignored"},
        {"model": "mobile", "AP": None},
    ]
    assert format_table(rows, ["model", "AP", "GMACs"]).splitlines() == [
        "model           AP  GMACs",
        "----------  ------  -----",
        "simple_r50  0.7231   5.46",
        "srpose         n/a  12.10",
        "mobile",
    ]


def test_format_table_header_only_and_wide_headers():
    assert format_table([], ["name", "value"]) == "name  value\n----  -----"
    assert format_table([{"a_long_header": 1}], ["a_long_header"]) == "a_long_header\n-------------\n            1"

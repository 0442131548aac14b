"""The YAML writer: PyYAML reads back exactly the structure written, whatever the strings hold."""

from __future__ import annotations

import pytest
import yaml

from llmobs._assets.emit import document, documents

TRICKY = [
    "plain", "yes", "No", "null", "true", "3", "1.5", "", " lead", "trail ", "a: b", "- x", "#x", "x #y",
    "it's", '"q"', "{{ $value }}", 'sum(rate(x{job=~"$service"}[5m])) > 0.05', "line one\nline two",
    "tab\there", "\x07bell", "ünïcode", "*ref", "&anchor", "!tag", "%x", "@x", "`x", "|", ">", "?", "[a]",
    "\nlead newline", "0x1f", "1_000", "1e3", "2026-01-01", "12:30", "~", ".inf", "5m", "1h30m",
    "end newline\n", "two\n\nblank lines",
]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY)
def test_strings_round_trip(text: str) -> None:
    node = {"key": text, "list": [text, {"nested": text}], text or "k": 1}
    assert yaml.safe_load(document(node)) == node


def test_structures_round_trip() -> None:
    node = {
        "groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "labels": {"severity": "page"}}]}],
        "empty": {}, "none": [], "numbers": [0, -1, 2.5, 1e-06, True, False, None],
        "deep": [[1, 2], [{"a": [{"b": {}}]}]],
    }  # fmt: skip
    assert yaml.safe_load(document(node)) == node
    assert list(yaml.safe_load_all(documents([node, {"x": 1}]))) == [node, {"x": 1}]


def test_promql_reads_as_written() -> None:
    text = document({"expr": 'rate(x{a="b"}[5m])', "for": "5m"})
    assert text == "expr: 'rate(x{a=\"b\"}[5m])'\nfor: 5m\n"

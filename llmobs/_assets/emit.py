"""A small YAML writer for the assets' plain structures (mappings, lists, strings, numbers), so that
rendering needs no PyYAML at run time and the files read as people write them: PromQL in single
quotes, long text as literal blocks. Tests check that PyYAML reads back exactly what was written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

Node = object
"""A mapping (str keys), a sequence, a str, an int, a float, a bool or None."""

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*|(?:\d+(?:ms|[smhdwy]))+")  # words, paths, durations
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def documents(items: Iterable[Node]) -> str:
    """Several YAML documents in one stream, separated by ``---``."""
    return "---\n".join(document(item) for item in items)


def document(node: Node) -> str:
    """One YAML document."""
    return "\n".join(_lines(node, 0)) + "\n"


def _lines(node: Node, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(node, Mapping) and node:
        out = []
        for key, value in node.items():
            text = str(key)
            out += _entry(f"{pad}{_string(text, indent) if text.isprintable() else json.dumps(text)}:", value, indent)
        return out
    if isinstance(node, Sequence) and not isinstance(node, str) and node:
        out = []
        for item in node:
            nested = _lines(item, indent + 2)
            out.append(f"{pad}- {nested[0].lstrip()}")
            out += nested[1:]
        return out
    return [pad + _scalar(node, indent)]


def _entry(head: str, value: Node, indent: int) -> list[str]:
    if isinstance(value, Mapping | list | tuple) and value:
        return [head, *_lines(value, indent + 2)]
    return [f"{head} {_scalar(value, indent + 2)}"]


def _scalar(node: Node, indent: int) -> str:
    if node is None or isinstance(node, bool):
        return {None: "null", True: "true", False: "false"}[node]
    if isinstance(node, int | float):
        text = json.dumps(node)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text  # YAML 1.1 floats have a dot
    if isinstance(node, Mapping | list | tuple):
        return "{}" if isinstance(node, Mapping) else "[]"
    if not isinstance(node, str):
        raise TypeError(f"cannot write {type(node).__name__} as YAML")
    return _string(node, indent)


def _string(text: str, indent: int) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _SPECIAL:
        return text
    if not text.isprintable():
        if "\n" in text and text.replace("\n", "").isprintable() and text == text.strip():
            pad = " " * indent
            return "|-\n" + "\n".join(pad + line if line else "" for line in text.split("\n"))
        return json.dumps(text)
    return "'" + text.replace("'", "''") + "'"

"""The report as one self-contained HTML file: the text summary, then the charts inline (data URIs), so
that it can be mailed or archived and opened anywhere without a server."""

from __future__ import annotations

from html import escape

from .plots import Chart

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:900px}"
    "pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}"
    "img{display:block;margin:1em 0;max-width:100%}h1{font-size:1.4em}"
)


def page(summary: list[str], charts: list[Chart]) -> str:
    """The HTML of one report: ``summary`` (its text lines) and ``charts`` ((title, data URI) pairs)."""
    images = "\n".join(f'<img alt="{escape(title)}" src="{uri}">' for title, uri in charts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(summary[0])}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{escape(summary[0])}</h1>\n<pre>{escape(chr(10).join(summary[1:]))}</pre>\n{images}\n</body></html>\n"
    )

"""The static report page: one self-contained HTML file (figures embedded as data URIs) for readers who never run
Snakemake. It shows the same tables, figures and captions as ``snakemake --report``; captions are the workflow's
reStructuredText files (``mtarl/analysis/captions/*.rst``), rendered with docutils, so both reports say the same words.

``Section`` lists what a section holds, in order; ``render`` turns sections into the page.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
table.mtarl { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
table.mtarl caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
table.mtarl th, table.mtarl td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
table.mtarl td.one-seed { background: #fff6e0; }
td.supported { background: #dff3df; } td.contradicted { background: #f8dcdc; } td.inconclusive { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.caption { color: #444; font-size: 0.9em; max-width: 1000px; }
"""


@dataclass
class Item:
    """One figure (PNG path) or table (HTML fragment) with its caption file."""

    title: str
    caption: str | None = None
    image: str | None = None
    table_html: str | None = None


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)


def standalone(fragment: str, title: str) -> str:
    """A table fragment as its own page (the Snakemake report shows each table file alone, in a frame)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{fragment}</body></html>")


def caption_html(path: str | None) -> str:
    if not path or not Path(path).exists():
        return ""
    from docutils.core import publish_parts  # only here: the rest of the analysis does not need docutils

    text = Path(path).read_text()
    return publish_parts(text, writer="html", settings_overrides={"report_level": 5})["body"]


def image_tag(path: str, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def render(title: str, intro_html: str, sections: list[Section]) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{intro_html}"]
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    parts.append(f"<ul>{toc}</ul>")
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(section.title)}</h2>')
        for item in section.items:
            parts.append(f"<h3>{html.escape(item.title)}</h3>")
            if item.image:
                parts.append(image_tag(item.image, item.title))
            if item.table_html:
                parts.append(item.table_html)
            parts.append(f'<div class="caption">{caption_html(item.caption)}</div>')
    parts.append("</body></html>")
    return "\n".join(parts)

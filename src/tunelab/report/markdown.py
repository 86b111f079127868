"""A tiny markdown-to-HTML for the audit's cards: headings, paragraphs, lists, pipe tables, code
fences, inline code and bold, and YAML front matter as a preformatted block.

Every piece of text is escaped first, so a card can never inject markup. Links are shown as their
text followed by the address (never as a live link): the report fetches and points at nothing.
"""

from __future__ import annotations

import re

from tunelab.html import escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def inline(text: str) -> str:
    """Escaped text with `code`, **bold**, *emphasis* and [links](address) rendered."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:
            out.append(f"<code>{escape(part[1:-1])}</code>")
            continue
        s = escape(part)
        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", s)
        out.append(s)
    return "".join(out)


def _cells(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") else s
    return [c.strip() for c in s.split("|")]


def to_html(md: str, base_level: int = 3) -> str:
    """``md`` as an HTML fragment; ``# x`` becomes ``<h{base_level + 1}>`` (capped at h6)."""
    lines = md.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    if lines and lines[0].strip() == "---":  # front matter: shown as it is
        end = next((k for k in range(1, len(lines)) if lines[k].strip() == "---"), None)
        if end is not None:
            out.append(f"<pre class='fm'>{escape(chr(10).join(lines[1:end]))}</pre>")
            i = end + 1
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
        elif line.lstrip().startswith("```"):
            flush()
            end = next(
                (k for k in range(i + 1, len(lines)) if lines[k].lstrip().startswith("```")), len(lines)
            )
            out.append(f"<pre>{escape(chr(10).join(lines[i + 1 : end]))}</pre>")
            i = end + 1
        elif m := _HEADING.match(line):
            flush()
            level = min(6, base_level + len(m.group(1)))
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif "|" in line and i + 1 < len(lines) and _RULE.match(lines[i + 1]):
            flush()
            head = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(_cells(lines[i]))
                i += 1
            th = "".join(f"<th>{inline(c)}</th>" for c in head)
            body = "".join(
                "<tr>"
                + "".join(f"<td>{inline(c)}</td>" for c in (r + [""] * len(head))[: len(head)])
                + "</tr>"
                for r in rows
            )
            out.append(f"<table><tr>{th}</tr>{body}</table>")
        elif _ITEM.match(line):
            flush()
            kind = "ol" if re.match(r"^\s*\d", line) else "ul"
            lis = []
            while i < len(lines) and (m := _ITEM.match(lines[i])):
                lis.append(f"<li>{inline(m.group(1))}</li>")
                i += 1
            out.append(f"<{kind}>{''.join(lis)}</{kind}>")
        else:
            para.append(line.strip())
            i += 1
    flush()
    return "".join(out)

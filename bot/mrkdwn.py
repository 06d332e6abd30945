"""Slack mrkdwn: the only place that escapes user text, renders mentions and cuts long text.

Slack reads `<!channel>`, `<@U…>`, `<#C…>` and `<https://…|label>` in mrkdwn and top-level text
as controls, so text a person typed is escaped (`&`, `<`, `>`) before it goes in. Long text is
cut at a safe point: never inside a `<…>` control or an `&…;` entity, preferably at a line end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pipeline.kernel.text import Line

ELLIPSIS = "…"
_FENCE = "```"


def escape(text: str) -> str:
    """Text a person typed (or a system returned), safe to put in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(ident: str) -> str:
    """A user (U…/W…) or user group (S…) as Slack shows it: a link that notifies them."""
    return f"<!subteam^{ident}>" if ident.startswith("S") else f"<@{ident}>"


def mentions(ids: Sequence[str]) -> str:
    return ", ".join(mention(i) for i in ids) or "nobody"


def when(at: datetime) -> str:
    """A moment as Slack shows it in each reader's own time zone (UTC in the fallback)."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def hhmm(at: datetime) -> str:
    """A time of day in UTC, for plain sentences ("until 14:05 UTC")."""
    return at.strftime("%H:%M UTC")


def render(line: Line) -> str:
    """A `Line` as mrkdwn: its slots escaped, its people mentioned."""
    return line.render(text=escape, person=mention)


def kept(plain: str | None, line: str | None, *, default: str) -> str:
    """A sentence the store kept (a run's error, an event's detail) as mrkdwn: from its line
    when there is one, so the people it names are mentions; else its plain text, escaped."""
    if line is not None:
        return render(Line.loads(line))
    return escape(plain) if plain else default


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else cut at a safe point and marked with "…"."""
    if len(text) <= limit:
        return text
    cut = _safe_cut(text, limit - len(ELLIPSIS) - len(_FENCE))
    kept = text[:cut].rstrip()
    closing = _FENCE if kept.count(_FENCE) % 2 else ""
    return kept + ELLIPSIS + closing


def _safe_cut(text: str, limit: int) -> int:
    cut = max(limit, 0)
    opened = text.rfind("<", 0, cut)
    if opened > text.rfind(">", 0, cut):
        cut = opened
    amp = text.rfind("&", 0, cut)
    if amp != -1 and text.find(";", amp, cut) == -1 and cut - amp <= len("&amp;"):
        cut = amp
    newline = text.rfind("\n", 0, cut)
    if newline > cut * 0.8:
        return newline
    space = text.rfind(" ", 0, cut)
    return space if space > cut * 0.9 else cut


def join_lines(lines: Sequence[str], limit: int, *, noun: str = "more") -> str:
    """Whole lines joined with newlines, as many as fit in `limit`, then "… and N more"."""
    whole = "\n".join(lines)
    if len(whole) <= limit:
        return whole
    kept: list[str] = []
    for text in lines:
        tail = f"\n{ELLIPSIS} and {len(lines) - len(kept) - 1} {noun}"
        if len("\n".join([*kept, text])) + len(tail) > limit:
            break
        kept.append(text)
    left = len(lines) - len(kept)
    if not kept:
        tail = f"\n{ELLIPSIS} and {left - 1} {noun}" if left > 1 else ""
        return clip(lines[0], limit - len(tail)) + tail
    return "\n".join(kept) + f"\n{ELLIPSIS} and {left} {noun}"


def pack_lines(lines: Sequence[str], limit: int) -> list[list[str]]:
    """Lines (each cut to `limit`) packed in order into groups whose joined text fits `limit`."""
    groups: list[list[str]] = []
    size = 0
    for text in lines:
        text = clip(text, limit)
        if groups and size + 1 + len(text) <= limit:
            groups[-1].append(text)
            size += 1 + len(text)
        else:
            groups.append([text])
            size = len(text)
    return groups

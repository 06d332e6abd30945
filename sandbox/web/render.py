"""Slack messages, Block Kit and modals as HTML, for the sandbox page.

mrkdwn is drawn as a Slack client draws it: *bold*, _italic_, ~strike~, `code`, ```blocks```,
links, and mentions of people, groups and channels as their names. Everything that reaches the
page is escaped here; the page's JavaScript only inserts what this module returns. A block this
page does not draw is shown as a note saying so, never dropped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

Json = dict[str, Any]

_CONTROL: Final = re.compile(r"<([^<>]*)>")
_CODE_BLOCK: Final = re.compile(r"```(.*?)```", re.S)
_CODE: Final = re.compile(r"`([^`\n]+)`")
_BOLD: Final = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC: Final = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE: Final = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_SAFE_URL: Final = re.compile(r"^(https?://|mailto:)", re.I)
_STYLES: Final = {"primary": "btn-primary", "danger": "btn-danger"}
_DATE_TOKENS: Final = {  # Slack's date tokens; "pretty" ones say Today/Yesterday in Slack
    "{date_num}": "%Y-%m-%d",
    "{date_short_pretty}": "%b %d",
    "{date_long_pretty}": "%A, %B %d",
    "{date_pretty}": "%B %d",
    "{date_short}": "%b %d, %Y",
    "{date_long}": "%A, %B %d, %Y",
    "{date}": "%B %d, %Y",
    "{time_secs}": "%H:%M:%S",
    "{time}": "%H:%M",
}


@dataclass(frozen=True)
class Names:
    """How mentions read: user id -> name, user group id -> handle, channel id -> name."""

    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)


def _unescape_slack(text: str) -> str:
    """Slack's three entities back to characters (they are escaped again for HTML)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _control(inner: str, names: Names) -> str:
    """One `<…>` control as HTML: a mention, a special mention or a link."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        ident = target[1:]
        name = names.users.get(ident) or label or ident
        return f'<span class="mention">@{html.escape(name)}</span>'
    if target.startswith("#"):
        ident = target[1:]
        name = names.channels.get(ident) or label or ident
        return f'<span class="mention">#{html.escape(name)}</span>'
    if target.startswith("!subteam^"):
        ident = target.removeprefix("!subteam^")
        handle = names.groups.get(ident) or label.lstrip("@") or ident
        return f'<span class="mention">@{html.escape(handle)}</span>'
    if target.startswith("!date^"):
        return f'<time class="date">{html.escape(_date(target, label))}</time>'
    if target.startswith("!"):
        word = target[1:].split("^", 1)[0]
        return f'<span class="mention special">@{html.escape(label or word)}</span>'
    url = _unescape_slack(target)
    shown = html.escape(_unescape_slack(label) if label else url)
    if not _SAFE_URL.match(url):
        return shown
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">{shown}</a>'


def plain_topic(text: str, names: Names) -> str:
    """A channel topic as a Slack client shows it: plain text, mentions as names."""

    def readable(found: re.Match[str]) -> str:
        target, _, label = found.group(1).partition("|")
        if target.startswith("@"):
            return "@" + (names.users.get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (names.channels.get(target[1:]) or label or target[1:])
        if target.startswith("!subteam^"):
            ident = target.removeprefix("!subteam^")
            return "@" + (names.groups.get(ident) or label.lstrip("@") or ident)
        return found.group(0)

    return _unescape_slack(_CONTROL.sub(readable, text))


def _date(target: str, fallback: str) -> str:
    """`<!date^epoch^format|fallback>` in the reader's local time, as a Slack client shows it."""
    _, epoch, *rest = target.split("^")
    try:
        at = datetime.fromtimestamp(int(epoch)).astimezone()
    except (ValueError, OverflowError, OSError):
        return _unescape_slack(fallback)
    shown = rest[0] if rest else "{date_short_pretty} {time}"
    for token, pattern in _DATE_TOKENS.items():
        shown = shown.replace(token, at.strftime(pattern))
    return shown


_HELD = re.compile("\x00([0-9]+)\x00")


def _inline(text: str) -> str:
    """Bold, italic and strike on text that is already HTML-escaped (code held aside)."""
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _ITALIC.sub(r"<i>\1</i>", text)
    return _STRIKE.sub(r"<s>\1</s>", text)


def mrkdwn(text: str, names: Names) -> str:
    """Slack mrkdwn (with Slack's own escaping) as HTML."""
    out: list[str] = []
    for index, chunk in enumerate(_CODE_BLOCK.split(text)):
        if index % 2:
            out.append(f"<pre>{html.escape(_unescape_slack(chunk.strip(chr(10))))}</pre>")
        else:
            out.append(_spans(chunk, names).replace("\n", "<br>"))
    return "".join(out)


def _spans(text: str, names: Names) -> str:
    """Code, links and mentions drawn first and held aside, so that bold, italic and strike
    may wrap them as Slack's do (`*Health of `production`*`)."""
    held: list[str] = []

    def hold(piece: str) -> str:
        held.append(piece)
        return f"\x00{len(held) - 1}\x00"

    parts: list[str] = []
    for index, chunk in enumerate(_CODE.split(text)):
        if index % 2:
            parts.append(hold(f"<code>{html.escape(_unescape_slack(chunk))}</code>"))
            continue
        last = 0
        for found in _CONTROL.finditer(chunk):
            parts.append(html.escape(_unescape_slack(chunk[last : found.start()])))
            parts.append(hold(_control(found.group(1), names)))
            last = found.end()
        parts.append(html.escape(_unescape_slack(chunk[last:])))
    drawn = _inline("".join(parts))
    return _HELD.sub(lambda m: held[int(m.group(1))], drawn)


def text_object(obj: Any, names: Names) -> str:
    """A Block Kit text object: mrkdwn drawn, plain_text escaped as it is."""
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn(text, names)
    return html.escape(text).replace("\n", "<br>")


def _attr(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value), quote=True)


def _plain(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _button(element: Json, block_id: str, names: Names) -> str:
    classes = " ".join(["btn", _STYLES.get(str(element.get("style")), "")]).strip()
    url = element.get("url")
    label = text_object(element.get("text"), names)
    if isinstance(url, str) and _SAFE_URL.match(url):
        return (
            f'<a class="{classes}" href="{html.escape(url)}" target="_blank" '
            f'rel="noopener noreferrer">{label}</a>'
        )
    data = [
        f'data-block-id="{_attr(block_id)}"',
        f'data-action-id="{_attr(element.get("action_id", ""))}"',
    ]
    confirm = element.get("confirm")
    if isinstance(confirm, dict):
        dialog = {k: _plain(confirm.get(k)) for k in ("title", "text", "confirm", "deny")}
        dialog["style"] = str(confirm.get("style", ""))
        data.append(f'data-confirm="{_attr(dialog)}"')
    return f'<button type="button" class="{classes}" {" ".join(data)}>{label}</button>'


def _image_link(element: Json) -> str:
    url = str(element.get("image_url") or element.get("url") or "")
    alt = str(element.get("alt_text") or element.get("title", {}).get("text") or "image")
    if not _SAFE_URL.match(url):
        return f'<span class="image">🖼 {html.escape(alt)}</span>'
    return (
        f'<a class="image" href="{html.escape(url)}" target="_blank" '
        f'rel="noopener noreferrer">🖼 {html.escape(alt)}</a>'
    )


def _element(element: Any, block_id: str, names: Names) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        return _button(element, block_id, names)
    if kind == "image":
        return _image_link(element)
    if kind in ("mrkdwn", "plain_text"):
        return text_object(element, names)
    return _unsupported(f"element {kind}")


def _unsupported(what: Any) -> str:
    return (
        f'<div class="unsupported">[the sandbox page does not draw {html.escape(str(what))}]</div>'
    )


def _section(block: Json, names: Names) -> str:
    parts = []
    if "text" in block:
        parts.append(f'<div class="section-text">{text_object(block["text"], names)}</div>')
    fields = block.get("fields") or []
    if fields:
        cells = "".join(f'<div class="field">{text_object(f, names)}</div>' for f in fields)
        parts.append(f'<div class="fields">{cells}</div>')
    accessory = block.get("accessory")
    body = "".join(parts)
    if isinstance(accessory, dict):
        side = _element(accessory, str(block.get("block_id", "")), names)
        return f'<div class="block section with-accessory"><div>{body}</div>{side}</div>'
    return f'<div class="block section">{body}</div>'


def _actions(block: Json, names: Names) -> str:
    block_id = str(block.get("block_id", ""))
    inner = "".join(_element(e, block_id, names) for e in block.get("elements") or [])
    return f'<div class="block actions">{inner}</div>'


def _context(block: Json, names: Names) -> str:
    items = "".join(f"<span>{_element(e, '', names)}</span>" for e in block.get("elements") or [])
    return f'<div class="block context">{items}</div>'


def _input(block: Json, names: Names, *, values: Mapping[str, Any], error: str | None) -> str:
    block_id = str(block.get("block_id", ""))
    element = block.get("element") or {}
    action_id = str(element.get("action_id", ""))
    label = text_object(block.get("label"), names)
    optional = ' <span class="optional">(optional)</span>' if block.get("optional") else ""
    ids = f'data-block-id="{_attr(block_id)}" data-action-id="{_attr(action_id)}"'
    field_id = f"input-{_attr(block_id)}"
    kind = element.get("type")
    given = values.get(block_id)
    if kind == "plain_text_input":
        value = given if isinstance(given, str) else str(element.get("initial_value", ""))
        placeholder = _attr(_plain(element.get("placeholder")))
        if element.get("multiline"):
            control = (
                f'<textarea id="{field_id}" {ids} data-type="plain_text_input" rows="3" '
                f'placeholder="{placeholder}">{html.escape(value)}</textarea>'
            )
        else:
            control = (
                f'<input id="{field_id}" {ids} data-type="plain_text_input" type="text" '
                f'value="{_attr(value)}" placeholder="{placeholder}">'
            )
    elif kind == "static_select":
        chosen = (
            given if isinstance(given, str) else (element.get("initial_option") or {}).get("value")
        )
        options = ['<option value="">Choose…</option>']
        for option in element.get("options") or []:
            value = str(option.get("value", ""))
            selected = " selected" if value == chosen else ""
            text = html.escape(_plain(option.get("text")))
            options.append(f'<option value="{_attr(value)}"{selected}>{text}</option>')
        control = (
            f'<select id="{field_id}" {ids} data-type="static_select">{"".join(options)}</select>'
        )
    elif kind == "multi_static_select":
        picked = (
            {str(v) for v in given}
            if isinstance(given, list)
            else {str(o.get("value", "")) for o in element.get("initial_options") or []}
        )
        options = []
        for option in element.get("options") or []:
            value = str(option.get("value", ""))
            selected = " selected" if value in picked else ""
            text = html.escape(_plain(option.get("text")))
            options.append(f'<option value="{_attr(value)}"{selected}>{text}</option>')
        control = (
            f'<select id="{field_id}" {ids} data-type="multi_static_select" multiple>'
            f"{''.join(options)}</select>"
        )
    else:
        return _unsupported(f"input {kind}")
    hint = block.get("hint")
    hint_html = f'<div class="hint">{text_object(hint, names)}</div>' if hint else ""
    error_html = f'<div class="error" role="alert">{html.escape(error)}</div>' if error else ""
    return (
        f'<div class="block input{" has-error" if error else ""}">'
        f'<label for="{field_id}">{label}{optional}</label>{control}{hint_html}{error_html}</div>'
    )


_DRAW: Final[dict[str, Callable[[Json, Names], str]]] = {
    "header": lambda b, n: f'<div class="block header">{text_object(b.get("text"), n)}</div>',
    "section": _section,
    "divider": lambda b, n: '<hr class="block divider">',
    "context": _context,
    "actions": _actions,
    "image": lambda b, n: f'<div class="block">{_image_link(b)}</div>',
}


def blocks(items: Sequence[Any], names: Names) -> str:
    out = []
    for block in items:
        kind = block.get("type") if isinstance(block, dict) else None
        draw = _DRAW.get(str(kind))
        out.append(draw(block, names) if draw else _unsupported(f"a {kind} block"))
    return "".join(out)


def message_body(message: Mapping[str, Any], names: Names) -> str:
    """What a client shows of a message: its blocks, else its text (mrkdwn)."""
    items = message.get("blocks")
    if items:
        return blocks(items, names)
    return f'<div class="block section">{mrkdwn(str(message.get("text", "")), names)}</div>'


def modal(
    view: Mapping[str, Any],
    names: Names,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """A modal's body: its blocks, with inputs drawn as form fields and their errors."""
    values, errors = values or {}, errors or {}
    out = []
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input":
            error = errors.get(str(block.get("block_id", "")))
            out.append(_input(block, names, values=values, error=error))
        else:
            out.append(blocks([block], names))
    return "".join(out)

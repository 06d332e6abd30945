"""Block Kit builders that keep every payload inside Slack's limits (../shared/slack/limits.md).

Each limit is a named constant; each builder cuts what would not fit (at a safe point, see
`bot/mrkdwn.py`) instead of letting Slack answer `invalid_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.mrkdwn import clip, join_lines, pack_lines

# Slack's limits, from its Block Kit and Web API reference.
MAX_MESSAGE_BLOCKS = 50  # blocks per message
MAX_MODAL_BLOCKS = 100  # blocks per modal
MAX_SECTION_TEXT = 3000  # a section's text; also any text object
MAX_HEADER_TEXT = 150  # a header's plain_text
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255  # block_id and action_id
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300  # plain_text
MAX_CONFIRM_BUTTON = 30  # confirm and deny
MAX_MODAL_TITLE = 24  # title, submit and close of a modal
MAX_PRIVATE_METADATA = 3000
MAX_INPUT_LABEL = 2000
MAX_INPUT_VALUE = 3000  # plain_text_input max_length and initial_value
MAX_OPTION_TEXT = 75
MAX_MESSAGE_TEXT = 4000  # top-level `text`: chat.update rejects more, chat.postMessage truncates

Block = dict[str, Any]
Blocks = list[Block]


def plain(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def sections(lines: Sequence[str], *, max_blocks: int, noun: str = "more") -> Blocks:
    """Lines spread over as few sections as needed, at most `max_blocks` of them; what does not
    fit is summed up as "… and N more" at the end of the last one."""
    groups = pack_lines(lines, MAX_SECTION_TEXT)
    if len(groups) <= max_blocks:
        return [section("\n".join(g)) for g in groups]
    kept = groups[: max_blocks - 1]
    shown = sum(len(g) for g in kept)
    last = join_lines(list(lines[shown:]), MAX_SECTION_TEXT, noun=noun)
    return [*(section("\n".join(g)) for g in kept), section(last)]


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def divider() -> Block:
    return {"type": "divider"}


def confirm(*, title: str, text: str, ok: str, deny: str = "Cancel") -> dict[str, Any]:
    """An "are you sure?" dialog; its text is plain_text, so nothing in it needs escaping."""
    return {
        "title": plain(title, MAX_CONFIRM_TITLE),
        "text": plain(text, MAX_CONFIRM_TEXT),
        "confirm": plain(ok, MAX_CONFIRM_BUTTON),
        "deny": plain(deny, MAX_CONFIRM_BUTTON),
    }


def button(
    *,
    action_id: str,
    text: str,
    value: str,
    style: str | None = None,
    confirm_with: dict[str, Any] | None = None,
) -> Block:
    if len(value) > MAX_BUTTON_VALUE or len(action_id) > MAX_ID:
        raise ValueError(f"Button {action_id!r} carries more than Slack accepts.")
    out: Block = {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": plain(text, MAX_BUTTON_TEXT),
    }
    if style is not None:
        out["style"] = style
    if confirm_with is not None:
        out["confirm"] = confirm_with
    return out


def actions(block_id: str, elements: Sequence[Block]) -> Block:
    if len(elements) > MAX_ACTIONS_ELEMENTS:
        raise ValueError(f"An actions block holds at most {MAX_ACTIONS_ELEMENTS} elements.")
    return {"type": "actions", "block_id": block_id[:MAX_ID], "elements": list(elements)}


def message_text(text: str) -> str:
    """A top-level `text` (the notification and fallback), inside what chat.update accepts."""
    return clip(text, MAX_MESSAGE_TEXT)

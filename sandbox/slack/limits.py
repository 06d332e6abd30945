"""Slack's documented limits as named constants, and the Block Kit checks that apply them.

Pure functions over decoded JSON, no I/O. A broken rule raises `Invalid` with the JSON pointer of
the bad value; the caller answers `invalid_blocks` (messages) or `invalid_arguments` (views).
Sources: /work/shared/slack/limits.md (docs.slack.dev, the Node and Python SDKs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

MAX_MESSAGE_BLOCKS: Final = 50  # Slack: blocks per message
MAX_VIEW_BLOCKS: Final = 100  # Slack: blocks per modal or Home tab
MAX_VIEW_BYTES: Final = 250_000  # Slack: views.publish answers view_too_large past 250 kB
MAX_TEXT_OBJECT: Final = 3000  # Slack: any text object, 1-3000 characters
MAX_SECTION_TEXT: Final = 3000  # Slack: section text
MAX_SECTION_FIELDS: Final = 10  # Slack: section fields
MAX_SECTION_FIELD_TEXT: Final = 2000  # Slack: each section field
MAX_HEADER_TEXT: Final = 150  # Slack: header text, plain_text only
MAX_CONTEXT_ELEMENTS: Final = 10  # Slack: context elements
MAX_ACTIONS_ELEMENTS: Final = 25  # Slack: actions elements
MAX_BUTTON_TEXT: Final = 75  # Slack: button text
MAX_BUTTON_VALUE: Final = 2000  # Slack: button value
MAX_BUTTON_URL: Final = 3000  # Slack: button url
MAX_BLOCK_ID: Final = 255  # Slack: block_id, unique within the message or view
MAX_ACTION_ID: Final = 255  # Slack: action_id, unique within its block
MAX_CONFIRM_TITLE: Final = 100  # Slack: confirm dialog title, plain_text
MAX_CONFIRM_TEXT: Final = 300  # Slack: confirm dialog text, plain_text
MAX_CONFIRM_BUTTON: Final = 30  # Slack: confirm dialog confirm and deny
MAX_OPTION_TEXT: Final = 75  # Slack: option text
MAX_OPTION_VALUE: Final = 75  # Slack: option value
MAX_SELECT_OPTIONS: Final = 100  # Slack: options of a static select
MAX_VIEW_TITLE: Final = 24  # Slack: modal title, submit and close, plain_text
MAX_PRIVATE_METADATA: Final = 3000  # Slack: view private_metadata
MAX_CALLBACK_ID: Final = 255  # Slack: view callback_id
MAX_EXTERNAL_ID: Final = 255  # Slack: view external_id
MAX_INPUT_LABEL: Final = 2000  # Slack: input label
MAX_INPUT_HINT: Final = 2000  # Slack: input hint
MAX_PLACEHOLDER: Final = 150  # Slack: element placeholder
MAX_INPUT_LENGTH: Final = 3000  # Slack: plain_text_input max_length and min_length
MAX_ALT_TEXT: Final = 2000  # Slack: image alt_text
MAX_UPDATE_TEXT: Final = 4000  # Slack: chat.update top-level text, else msg_too_long
MAX_MESSAGE_TEXT: Final = 40_000  # Slack: chat.postMessage text, truncated (here refused) past it
ADVISED_MESSAGE_TEXT: Final = 4000  # Slack: keep top-level text under it; longer is cut silently
MAX_CHANNEL_NAME: Final = 80  # Slack: conversations.create name
MAX_TOPIC: Final = 250  # Slack: conversations.setTopic
MAX_INVITE_USERS: Final = 100  # Slack: conversations.invite users per call

_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
_TEXT_TYPES = ("plain_text", "mrkdwn")

Json = dict[str, Any]


class Invalid(Exception):
    """A payload breaks a Block Kit rule at JSON pointer `pointer`."""

    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"{problem} [json-pointer:{pointer}]")
        self.pointer = pointer
        self.problem = problem


def check_message_blocks(blocks: object) -> None:
    """Raise `Invalid` unless `blocks` is a list Slack would accept in a message."""
    _blocks(blocks, "/blocks", max_blocks=MAX_MESSAGE_BLOCKS)


def check_view(view: object) -> None:
    """Raise `Invalid` unless `view` is a modal that views.open/update/push would accept."""
    v = _object(view, "/view")
    if v.get("type") != "modal":
        raise Invalid("/view/type", "must be modal")
    _text(v.get("title"), "/view/title", max_len=MAX_VIEW_TITLE, plain=True)
    for key in ("submit", "close"):
        if key in v:
            _text(v[key], f"/view/{key}", max_len=MAX_VIEW_TITLE, plain=True)
    blocks = _blocks(v.get("blocks"), "/view/blocks", max_blocks=MAX_VIEW_BLOCKS)
    if "submit" not in v and any(b.get("type") == "input" for b in blocks):
        raise Invalid("/view/submit", "is required when the view has input blocks")
    _string(v.get("private_metadata", ""), "/view/private_metadata", MAX_PRIVATE_METADATA)
    _string(v.get("callback_id", ""), "/view/callback_id", MAX_CALLBACK_ID)


# Slack's block reference: the blocks a Home tab may hold (not file or markdown, which are for
# messages only).
HOME_BLOCKS: Final = frozenset(
    {"actions", "context", "divider", "header", "image", "input", "rich_text", "section", "video"}
)


class InvalidBlocks(Invalid):
    """A view's blocks break a rule: Slack answers `invalid_blocks`, not `invalid_arguments`."""


def check_home_view(view: object) -> None:
    """Raise `Invalid` (`InvalidBlocks` for its blocks) unless views.publish would accept `view`
    as a Home tab."""
    v = _object(view, "/view")
    if v.get("type") != "home":
        raise Invalid("/view/type", "must be home")
    _string(v.get("private_metadata", ""), "/view/private_metadata", MAX_PRIVATE_METADATA)
    _string(v.get("callback_id", ""), "/view/callback_id", MAX_CALLBACK_ID)
    _string(v.get("external_id", ""), "/view/external_id", MAX_EXTERNAL_ID)
    try:
        blocks = _blocks(v.get("blocks"), "/view/blocks", max_blocks=MAX_VIEW_BLOCKS)
    except Invalid as exc:
        raise InvalidBlocks(exc.pointer, exc.problem) from None
    for i, block in enumerate(blocks):
        if block.get("type") not in HOME_BLOCKS:
            raise InvalidBlocks(f"/view/blocks/{i}/type", "is not allowed in a Home tab")


def channel_name_error(name: str) -> str | None:
    """The error conversations.create answers for `name`, or None when Slack would take it."""
    if not name:
        return "invalid_name_required"
    if len(name) > MAX_CHANNEL_NAME:
        return "invalid_name_maxlength"
    if not _CHANNEL_NAME.fullmatch(name):
        return "invalid_name_specials"
    if not name.strip("-_"):
        return "invalid_name_punctuation"
    return None


def _object(value: object, at: str) -> Json:
    if not isinstance(value, dict):
        raise Invalid(at, "must be an object")
    return value


def _list(value: object, at: str, max_items: int, *, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(at, "must be an array")
    if len(value) > max_items:
        raise Invalid(at, f"must have at most {max_items} items")
    if len(value) < min_items:
        raise Invalid(at, f"must have at least {min_items} items")
    return value


def _string(value: object, at: str, max_len: int) -> None:
    if not isinstance(value, str):
        raise Invalid(at, "must be a string")
    if len(value) > max_len:
        raise Invalid(at, f"must be at most {max_len} characters")


def _text(value: object, at: str, *, max_len: int = MAX_TEXT_OBJECT, plain: bool = False) -> None:
    obj = _object(value, at)
    kind = obj.get("type")
    if kind not in _TEXT_TYPES or (plain and kind != "plain_text"):
        raise Invalid(f"{at}/type", "must be plain_text" if plain else "must be a text object")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise Invalid(f"{at}/text", "must be at least 1 character")
    _string(text, f"{at}/text", min(max_len, MAX_TEXT_OBJECT))
    if "emoji" in obj and kind != "plain_text":
        raise Invalid(f"{at}/emoji", "is only allowed on plain_text")
    if "verbatim" in obj and kind != "mrkdwn":
        raise Invalid(f"{at}/verbatim", "is only allowed on mrkdwn")


def _blocks(blocks: object, at: str, *, max_blocks: int) -> list[Json]:
    seen: set[str] = set()
    checked: list[Json] = []
    for i, item in enumerate(_list(blocks, at, max_blocks)):
        where = f"{at}/{i}"
        block = _object(item, where)
        block_id = block.get("block_id")
        if block_id is not None:
            _string(block_id, f"{where}/block_id", MAX_BLOCK_ID)
            if block_id in seen:
                raise Invalid(f"{where}/block_id", "must be unique within the message or view")
            seen.add(block_id)
        check = _BLOCK_CHECKS.get(str(block.get("type")))
        if check is None:
            raise Invalid(f"{where}/type", "is not a known block type")
        check(block, where)
        checked.append(block)
    return checked


def _section(block: Json, at: str) -> None:
    if "text" not in block and "fields" not in block:
        raise Invalid(at, "must provide either text or fields")
    if "text" in block:
        _text(block["text"], f"{at}/text", max_len=MAX_SECTION_TEXT)
    if "fields" in block:
        fields = _list(block["fields"], f"{at}/fields", MAX_SECTION_FIELDS, min_items=1)
        for i, field in enumerate(fields):
            _text(field, f"{at}/fields/{i}", max_len=MAX_SECTION_FIELD_TEXT)
    if "accessory" in block:
        _element(block["accessory"], f"{at}/accessory", set())


def _header(block: Json, at: str) -> None:
    _text(block.get("text"), f"{at}/text", max_len=MAX_HEADER_TEXT, plain=True)


def _context(block: Json, at: str) -> None:
    elements = _list(block.get("elements"), f"{at}/elements", MAX_CONTEXT_ELEMENTS, min_items=1)
    for i, item in enumerate(elements):
        element = _object(item, f"{at}/elements/{i}")
        if element.get("type") == "image":
            _image(element, f"{at}/elements/{i}")
        else:
            _text(element, f"{at}/elements/{i}")


def _actions(block: Json, at: str) -> None:
    elements = _list(block.get("elements"), f"{at}/elements", MAX_ACTIONS_ELEMENTS, min_items=1)
    action_ids: set[str] = set()
    for i, element in enumerate(elements):
        _element(element, f"{at}/elements/{i}", action_ids)


def _input(block: Json, at: str) -> None:
    _text(block.get("label"), f"{at}/label", max_len=MAX_INPUT_LABEL, plain=True)
    if "hint" in block:
        _text(block["hint"], f"{at}/hint", max_len=MAX_INPUT_HINT, plain=True)
    _element(block.get("element"), f"{at}/element", set())


def _image(block: Json, at: str) -> None:
    if "image_url" not in block and "slack_file" not in block:
        raise Invalid(at, "must provide either image_url or slack_file")
    _string(block.get("alt_text"), f"{at}/alt_text", MAX_ALT_TEXT)


def _any(block: Json, at: str) -> None:
    """Blocks whose own fields the sandbox does not check (beyond block_id)."""


_BLOCK_CHECKS: Final[dict[str, Callable[[Json, str], None]]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "input": _input,
    "image": _image,
    "divider": _any,
    "rich_text": _any,
    "markdown": _any,
    "file": _any,
    "video": _any,
}


def _element(value: object, at: str, action_ids: set[str]) -> None:
    element = _object(value, at)
    action_id = element.get("action_id")
    if action_id is not None:
        _string(action_id, f"{at}/action_id", MAX_ACTION_ID)
        if action_id in action_ids:
            raise Invalid(f"{at}/action_id", "must be unique within its block")
        action_ids.add(action_id)
    if "placeholder" in element:
        _text(element["placeholder"], f"{at}/placeholder", max_len=MAX_PLACEHOLDER, plain=True)
    if "confirm" in element:
        _confirm(element["confirm"], f"{at}/confirm")
    kind = element.get("type")
    if kind == "button":
        _button(element, at)
    elif kind in ("static_select", "multi_static_select"):
        _select(element, at)
    elif kind == "plain_text_input":
        for key in ("max_length", "min_length"):
            length = element.get(key, 0)
            if not isinstance(length, int) or not 0 <= length <= MAX_INPUT_LENGTH:
                raise Invalid(f"{at}/{key}", f"must be between 0 and {MAX_INPUT_LENGTH}")
    elif kind == "image":
        _image(element, at)


def _button(element: Json, at: str) -> None:
    _text(element.get("text"), f"{at}/text", max_len=MAX_BUTTON_TEXT, plain=True)
    if "value" in element:
        _string(element["value"], f"{at}/value", MAX_BUTTON_VALUE)
    if "url" in element:
        _string(element["url"], f"{at}/url", MAX_BUTTON_URL)
    if element.get("style", "primary") not in ("primary", "danger"):
        raise Invalid(f"{at}/style", "must be primary or danger")


def _select(element: Json, at: str) -> None:
    if "options" in element:
        options = _list(element["options"], f"{at}/options", MAX_SELECT_OPTIONS, min_items=1)
        for i, option in enumerate(options):
            _option(option, f"{at}/options/{i}")
    elif "option_groups" not in element:
        raise Invalid(at, "must provide either options or option_groups")
    if "initial_option" in element:
        _option(element["initial_option"], f"{at}/initial_option")


def _option(value: object, at: str) -> None:
    option = _object(value, at)
    _text(option.get("text"), f"{at}/text", max_len=MAX_OPTION_TEXT, plain=True)
    _string(option.get("value"), f"{at}/value", MAX_OPTION_VALUE)


def _confirm(value: object, at: str) -> None:
    confirm = _object(value, at)
    _text(confirm.get("title"), f"{at}/title", max_len=MAX_CONFIRM_TITLE, plain=True)
    _text(confirm.get("text"), f"{at}/text", max_len=MAX_CONFIRM_TEXT, plain=True)
    _text(confirm.get("confirm"), f"{at}/confirm", max_len=MAX_CONFIRM_BUTTON, plain=True)
    _text(confirm.get("deny"), f"{at}/deny", max_len=MAX_CONFIRM_BUTTON, plain=True)

"""Block Kit shapes the limits module refuses beyond sizes, each at the JSON pointer Slack names."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.slack import limits

PLAIN = {"type": "plain_text", "text": "Go"}


def button(**extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": PLAIN, **extra}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ({"type": "divider"}, "/blocks"),
        (["divider"], "/blocks/0"),
        ([{"type": "carousel"}], "/blocks/0/type"),
        ([{"type": "section"}], "/blocks/0"),
        ([{"type": "section", "fields": []}], "/blocks/0/fields"),
        ([{"type": "section", "text": {"type": "md", "text": "x"}}], "/blocks/0/text/type"),
        ([{"type": "section", "text": {"type": "plain_text", "text": 7}}], "/blocks/0/text/text"),
        (
            [{"type": "section", "text": {"type": "plain_text", "text": "x", "verbatim": True}}],
            "/blocks/0/text/verbatim",
        ),
        (
            [{"type": "section", "text": PLAIN, "accessory": button(style="green")}],
            "/blocks/0/accessory/style",
        ),
        ([{"type": "divider", "block_id": 7}], "/blocks/0/block_id"),
        ([{"type": "actions", "elements": []}], "/blocks/0/elements"),
        ([{"type": "image", "alt_text": "x"}], "/blocks/0"),
        (
            [{"type": "image", "image_url": "https://x", "alt_text": "a" * 2001}],
            "/blocks/0/alt_text",
        ),
        (
            [{"type": "context", "elements": [{"type": "image", "image_url": "https://x"}]}],
            "/blocks/0/elements/0/alt_text",
        ),
        (
            [{"type": "actions", "elements": [{"type": "static_select", "action_id": "s"}]}],
            "/blocks/0/elements/0",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "static_select",
                            "option_groups": [],
                            "initial_option": {"value": "v"},
                        }
                    ],
                }
            ],
            "/blocks/0/elements/0/initial_option/text",
        ),
        ([{"type": "input", "label": PLAIN}], "/blocks/0/element"),
        (
            [
                {
                    "type": "input",
                    "label": PLAIN,
                    "element": {"type": "plain_text_input", "min_length": "3"},
                }
            ],
            "/blocks/0/element/min_length",
        ),
    ],
)
def test_a_malformed_block_is_refused_where_it_breaks(blocks: object, pointer: str) -> None:
    with pytest.raises(limits.Invalid) as raised:
        limits.check_message_blocks(blocks)

    assert raised.value.pointer == pointer


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "rich_text", "elements": []}],
        [{"type": "image", "image_url": "https://x", "alt_text": "chart"}],
        [
            {
                "type": "context",
                "elements": [{"type": "image", "image_url": "https://x", "alt_text": "a"}],
            }
        ],
        [{"type": "actions", "elements": [{"type": "datepicker", "action_id": "d"}]}],
        [
            {
                "type": "section",
                "text": PLAIN,
                "accessory": {"type": "image", "image_url": "https://x", "alt_text": "a"},
            }
        ],
    ],
)
def test_other_well_formed_blocks_are_taken(blocks: object) -> None:
    limits.check_message_blocks(blocks)


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        ([], "/view"),
        ({"type": "home", "blocks": []}, "/view/type"),
        ({"type": "modal", "title": PLAIN, "blocks": [], "callback_id": 7}, "/view/callback_id"),
    ],
)
def test_a_malformed_view_is_refused_where_it_breaks(view: object, pointer: str) -> None:
    with pytest.raises(limits.Invalid) as raised:
        limits.check_view(view)

    assert raised.value.pointer == pointer


@pytest.mark.parametrize(
    ("name", "error"),
    [("---", "invalid_name_punctuation"), ("inc-1", None), ("ünïcode", "invalid_name_specials")],
)
def test_channel_names(name: str, error: str | None) -> None:
    assert limits.channel_name_error(name) == error

"""What the sandbox page draws: mrkdwn as a Slack client reads it, Block Kit, modals; and that
nothing a person or the app wrote reaches the page unescaped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from sandbox.web.render import Names, blocks, message_body, modal, mrkdwn, plain_topic

NAMES = Names(
    users={"U0PRIYA": "Priya Patel"}, groups={"S0ONCALL": "oncall"}, channels={"C1": "deploys"}
)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*Deploy*", "<b>Deploy</b>"),
        ("_soon_", "<i>soon</i>"),
        ("~old~", "<s>old</s>"),
        ("run `make run` now", "run <code>make run</code> now"),
        ("```a\n*b*```", "<pre>a\n*b*</pre>"),
        ("by <@U0PRIYA>", 'by <span class="mention">@Priya Patel</span>'),
        ("<!subteam^S0ONCALL>", '<span class="mention">@oncall</span>'),
        ("in <#C1>", 'in <span class="mention">#deploys</span>'),
        ("<!here>", '<span class="mention special">@here</span>'),
        ("a\nb", "a<br>b"),
        ("5*3 and 2*4", "5*3 and 2*4"),
        ("*Health of `production`*: 8/8", "<b>Health of <code>production</code></b>: 8/8"),
        ("*by <@U0PRIYA>*", '<b>by <span class="mention">@Priya Patel</span></b>'),
        ("`*not bold*`", "<code>*not bold*</code>"),
    ],
)
def test_mrkdwn_is_drawn_as_slack_draws_it(text: str, html: str) -> None:
    assert mrkdwn(text, NAMES) == html


def test_a_link_shows_its_label_and_opens_elsewhere() -> None:
    drawn = mrkdwn("<https://example.com/a?b=1&amp;c=2|the runbook>", NAMES)

    assert drawn == (
        '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">the runbook</a>'
    )


def test_a_link_that_is_not_http_is_shown_as_text() -> None:
    assert mrkdwn("<javascript:alert(1)|click>", NAMES) == "click"


def test_typed_text_that_slack_escaped_stays_text_on_the_page() -> None:
    drawn = mrkdwn("&lt;script&gt;alert(1)&lt;/script&gt; &amp; <b>", NAMES)

    assert "<script>" not in drawn
    assert drawn.startswith("&lt;script&gt;alert(1)&lt;/script&gt; &amp; ")


def test_a_slack_date_is_shown_in_local_time() -> None:
    epoch = 1_796_091_240
    local = datetime.fromtimestamp(epoch).astimezone()

    drawn = mrkdwn(f"expires <!date^{epoch}^{{date_short_pretty}} {{time}}|fallback>", NAMES)

    assert drawn == f'expires <time class="date">{local:%b %d %H:%M}</time>'


def test_a_card_draws_header_section_fields_context_divider_and_image_link() -> None:
    card = [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy <now>"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*auth-svc*"},
            "fields": [{"type": "mrkdwn", "text": "v1"}, {"type": "plain_text", "text": "*v2*"}],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0PRIYA>"}]},
        {"type": "divider"},
        {"type": "image", "image_url": "https://example.com/g.png", "alt_text": "graph"},
    ]

    drawn = blocks(card, NAMES)

    assert '<div class="block header">Deploy &lt;now&gt;</div>' in drawn
    assert '<div class="field">v1</div><div class="field">*v2*</div>' in drawn
    assert "@Priya Patel" in drawn
    assert '<hr class="block divider">' in drawn
    assert 'href="https://example.com/g.png"' in drawn
    assert "graph" in drawn


def test_a_button_carries_its_ids_style_and_confirm_dialog() -> None:
    confirm = {
        "title": {"type": "plain_text", "text": "Sure?"},
        "text": {"type": "plain_text", "text": 'It deploys "all"'},
        "confirm": {"type": "plain_text", "text": "Yes"},
        "deny": {"type": "plain_text", "text": "No"},
    }
    actions = {
        "type": "actions",
        "block_id": "deploy:1",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "confirm": confirm,
            }
        ],
    }

    drawn = blocks([actions], NAMES)

    assert 'class="btn btn-primary"' in drawn
    assert 'data-block-id="deploy:1" data-action-id="approve"' in drawn
    assert "&quot;text&quot;: &quot;It deploys \\&quot;all\\&quot;&quot;" in drawn


def test_a_block_the_page_does_not_draw_is_named_not_dropped() -> None:
    drawn = blocks([{"type": "video"}], NAMES)

    assert "does not draw a video block" in drawn


def test_a_message_without_blocks_shows_its_text() -> None:
    assert "<b>hi</b>" in message_body({"text": "*hi*"}, NAMES)


def test_a_modal_draws_inputs_with_values_and_errors() -> None:
    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "eta",
                "label": {"type": "plain_text", "text": "ETA"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "status",
                "optional": True,
                "label": {"type": "plain_text", "text": "Status"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Fixed"}, "value": "fixed"}
                    ],
                },
            },
        ]
    }

    drawn = modal(view, NAMES, values={"eta": '"soon"', "status": "fixed"}, errors={"eta": "When?"})

    assert 'value="&quot;soon&quot;"' in drawn
    assert '<div class="error" role="alert">When?</div>' in drawn
    assert '<option value="fixed" selected>Fixed</option>' in drawn
    assert "(optional)" in drawn


def test_a_modal_draws_a_multi_select_with_its_initial_options_or_what_was_picked() -> None:
    def option(value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": value}, "value": value}

    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "services",
                "label": {"type": "plain_text", "text": "Services"},
                "element": {
                    "type": "multi_static_select",
                    "action_id": "value",
                    "options": [option("auth-svc"), option("api-gateway")],
                    "initial_options": [option("auth-svc")],
                },
            }
        ]
    }

    first = modal(view, NAMES, values={}, errors={})
    again = modal(view, NAMES, values={"services": ["api-gateway"]}, errors={})

    assert 'data-type="multi_static_select" multiple>' in first
    assert '<option value="auth-svc" selected>' in first
    assert '<option value="api-gateway">' in first
    assert '<option value="api-gateway" selected>' in again
    assert '<option value="auth-svc">' in again


def test_a_topic_reads_its_mentions_as_names_in_plain_text() -> None:
    topic = "✅ RESOLVED · P1 · a &lt;b&gt; · Commander: <@U0PRIYA> · <!subteam^S0ONCALL>"

    assert plain_topic(topic, NAMES) == (
        "✅ RESOLVED · P1 · a <b> · Commander: @Priya Patel · @oncall"
    )

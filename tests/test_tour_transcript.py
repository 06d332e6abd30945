"""scripts/tour_transcript.py: its normaliser and its rendering, on samples (no sandbox runs
here; the script itself runs the tour, in real time)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sandbox.people import REQUESTER, users
from sandbox.slack import LocalSlack

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "tour_transcript.py"
DEPLOYS = "C0DEPLOYS"


@pytest.fixture(scope="module")
def tt() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tour_transcript", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_ids_are_numbered_in_order_of_first_appearance_and_content_is_kept(
    tt: ModuleType,
) -> None:
    normalise = tt.Normaliser()

    lines = [
        normalise("Deployment `1796461687-f2a768` of v1.3.0 by <@Sam Rivera> · approvals 2/2"),
        normalise("Rollback `1796461698-005558` of deployment `1796461687-f2a768`"),
        normalise("P1 · updates every 15 minutes · Rollback available for 60 minutes · last 2h"),
    ]

    assert lines == [
        "Deployment `<id1>` of v1.3.0 by <@Sam Rivera> · approvals 2/2",
        "Rollback `<id2>` of deployment `<id1>`",
        "P1 · updates every 15 minutes · Rollback available for 60 minutes · last 2h",
    ]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("closed at 09:08 UTC", "closed at <time> UTC"),
        ("(opened 2026-12-05 09:08 UTC)", "(opened <datetime>)"),
        (
            "<!date^1796461697^{date_short_pretty} {time}|2026-12-05 09:08 UTC>",
            "<!date^<epoch>^{date_short_pretty} {time}|<datetime>>",
        ),
        ('"started_at": "2026-12-05T09:08:10.029481Z",', '"started_at": "<datetime>",'),
        ("<#inc-20261205-auth-svc-login-failing>", "<#inc-<date>-auth-svc-login-failing>"),
        ("- Duration: 47 minutes (1h 0m)", "- Duration: <duration>"),
        (
            "open 3 minutes · last update 1 minute ago",
            "open <duration> · last update <duration> ago",
        ),
        (
            "open 1 second · last update 0 seconds ago",
            "open <duration> · last update <duration> ago",
        ),
        (
            "🐤 *Canary* stage 1/3 · 2s of bake left",
            "🐤 *Canary* stage 1/3 · <duration> of bake left",
        ),
        ("all endpoints answered · 326 ms · v1.3.0", "all endpoints answered · <n> ms · v1.3.0"),
        ('"requests": 15.0, "errors_5xx": 0.0,', '"requests": <n>, "errors_5xx": 0.0,'),
        ("5xx 1.8% (2/110) is over 1.0%", "5xx <ratio> (<n>/<n>) is over 1.0%"),
        ("5xx 0.0% (0/57)", "5xx 0.0% (0/<n>)"),
        ("(ref `ff5312`)", "(ref `<ref1>`)"),
        ("`sha256:6670503659d1…`", "`sha256:<digest1>…`"),
        ("http://127.0.0.1:41281/api", "http://127.0.0.1:<port>/api"),
        ("modal V00000002 in C00000001", "modal <view1> in <chan1>"),
    ],
)
def test_what_varies_between_runs_is_replaced(tt: ModuleType, raw: str, normalised: str) -> None:
    assert tt.Normaliser()(raw) == normalised


def test_blocks_read_as_text_with_buttons_as_label_and_action_id(tt: ModuleType) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "🚀 Deploy to production"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "approvals 0/2"}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "⏳ `auth-svc`\n⏳ `market-svc`"}},
        {
            "type": "actions",
            "block_id": "deploy",
            "elements": [
                {
                    "type": "button",
                    "action_id": "deploy_approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Approve?"},
                        "text": {"type": "plain_text", "text": "2 services"},
                        "confirm": {"type": "plain_text", "text": "Approve"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                },
                {
                    "type": "button",
                    "action_id": "deploy_reject",
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]

    assert tt.render_blocks(blocks) == [
        "# 🚀 Deploy to production",
        "> approvals 0/2",
        "⏳ `auth-svc`",
        "⏳ `market-svc`",
        "  [Approve](deploy_approve) style=primary",
        "      confirm: 'Approve?' '2 services' [Approve] [Cancel]",
        "  [Reject](deploy_reject)",
    ]


def _workspace_after(tt: ModuleType, steps: list[str], *, card_updates: int) -> str:
    """The transcript of a deploy card whose thread got `steps` in this order, and of a
    question replaced by its answer, in a local Slack that is never started."""
    slack = LocalSlack(users=users())
    changes = slack.subscribe()
    ws = slack.workspace
    ws.add_channel(DEPLOYS, "deployments")
    card = ws.post(
        DEPLOYS,
        user=ws.bot_user,
        text="🚀 Deploy to production",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "running"}}],
        metadata={"event_type": "chatops_deploy_card", "event_payload": {"key": "k"}},
    )
    for text in ["• rollout started: 2 services", *steps, "• rollout succeeded"]:
        ws.post(DEPLOYS, user=ws.bot_user, text=text, thread_ts=card.ts)
    for _ in range(card_updates):
        ws.update(
            DEPLOYS,
            card.ts,
            by=ws.bot_user,
            text="✅ Production deployment successful",
            blocks=None,
        )
    note = ws.post(DEPLOYS, user=ws.bot_user, text="Heads up")
    ws.update(DEPLOYS, note.ts, by=ws.bot_user, text="Heads up (edited)", blocks=None)
    question = ws.post_ephemeral(DEPLOYS, user=REQUESTER.id, text="Roll back?", via="response_url")
    ws.replace_ephemeral(question.ts, text="Rolling back", blocks=None)
    seen = []
    while not changes.empty():
        seen.append(changes.get_nowait())
    return str(tt.Transcript(slack, seen).text())


def test_a_transcript_does_not_depend_on_how_concurrent_steps_interleave(tt: ModuleType) -> None:
    auth = ["✅ `auth-svc` register done", "✅ `auth-svc` health passed"]
    market = ["✅ `market-svc` register done", "✅ `market-svc` health passed"]
    one = [auth[0], market[0], auth[1], market[1]]
    other = [market[0], market[1], auth[0], auth[1]]

    first = _workspace_after(tt, one, card_updates=3)
    second = _workspace_after(tt, other, card_updates=5)

    assert first == second
    thread = [
        line.strip()
        for line in first.splitlines()
        if "` register done" in line or "` health passed" in line
    ]
    assert thread == [*auth, *market]  # each service's steps in their order, services by name
    assert "[#deployments/1] ChatOps (updated as its run went: count not shown" in first
    assert "[#deployments/2] ChatOps (updated 1 time):" in first
    assert "    Roll back?\n  then replaced by:\n    Rolling back\n" in first
    assert "only Sam Rivera sees it, via response_url" in first

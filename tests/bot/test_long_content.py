"""Long content is cut at a safe point or split, never refused by Slack and never silently short:
post-mortems split into several messages, lists say how many they left out, mrkdwn is never cut
inside a mention or a link, and a 95-character environment name still gets a confirm dialog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.blocks import MAX_MESSAGE_TEXT, MAX_SECTION_TEXT, sections
from bot.deploy.views import deploy_card
from bot.incident.views import list_text, postmortem_texts, suspect_lines
from bot.mrkdwn import clip, join_lines
from commands.incident.replies import OpenIncidents
from store.deploy.models import Deployment, DeploymentId, DeploymentState, Target
from store.incident.models import EventKind, Incident, IncidentEvent, IncidentId, IncidentStatus

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _incident(n: int = 0) -> Incident:
    return Incident(
        id=IncidentId(f"1700000000-{n:06d}"),
        severity="p2",
        summary=f"checkout is slow for some users in region {n} " * 3,
        service=None,
        status=IncidentStatus.INVESTIGATING,
        impact="slow checkout",
        action=None,
        eta="Unknown",
        commander="UCMD",
        declared_by="UCMD",
        declared_in="CGEN",
        channel_id=f"C{n:08d}",
        channel_name="inc-x",
        alert_ts=None,
        announce_channel=None,
        announce_ts=None,
        opened_at=T0,
        last_update_at=T0,
        next_update_due_at=None,
        resolved_at=T0 + timedelta(hours=9),
        resolution="fixed",
        follow_up="review",
    )


def _run(environment: str = "production", services: int = 3) -> Deployment:
    return Deployment(
        id=DeploymentId("1700000000-abc123"),
        environment=environment,
        requested_by="UDEV",
        version=None,
        state=DeploymentState.AWAITING_APPROVAL,
        stage=None,
        required_approvals=2,
        channel_id="CDEP",
        message_ts=None,
        created_at=T0,
        updated_at=T0,
        approval_due_at=T0 + timedelta(hours=2),
        started_at=None,
        finished_at=None,
        error=None,
        targets=tuple(
            Target(service=f"svc-{i}", current_version="v1.0.0", target_version="v1.1.0")
            for i in range(services)
        ),
    )


def test_a_post_mortem_of_a_long_incident_is_split_and_keeps_every_event() -> None:
    timeline = [
        IncidentEvent(
            at=T0 + timedelta(minutes=i),
            kind=EventKind.UPDATE,
            actor="UCMD",
            detail=f"update {i}: " + "we are still looking at the payment gateway " * 5,
        )
        for i in range(400)
    ]

    parts = postmortem_texts(_incident(), timeline)

    assert len(parts) > 10
    assert all(len(p) <= MAX_MESSAGE_TEXT for p in parts)
    text = "\n".join(parts)
    assert all(f"update {i}:" in text for i in range(400))
    assert parts[-1].endswith("• review")


def test_a_list_of_300_open_incidents_fits_and_says_how_many_it_left_out() -> None:
    text = list_text(OpenIncidents(tuple(_incident(i) for i in range(300)), T0))

    assert len(text) <= MAX_MESSAGE_TEXT
    shown = text.count("\n• ")
    assert text.endswith(f"… and {300 - shown} more")


def test_the_suspects_list_says_how_many_deploys_it_left_out() -> None:
    runs = [_run(services=40) for _ in range(5)]

    text = suspect_lines(runs, environment="production", window_s=7200)

    assert len(text) <= MAX_SECTION_TEXT
    assert "… and " in text
    assert text.rstrip().split()[-2].isdigit()


def test_a_95_character_environment_name_keeps_its_confirm_dialog_inside_the_limits() -> None:
    name = "production-" + "x" * 84

    _, blocks = deploy_card(_run(name), confirm_buttons=True)

    dialog = blocks[-1]["elements"][0]["confirm"]
    assert len(name) == 95
    assert len(dialog["title"]["text"]) <= 100
    assert len(dialog["text"]["text"]) <= 300
    assert len(blocks[0]["text"]["text"]) <= 150


@pytest.mark.parametrize(
    "text",
    [
        "a" * 2990 + " <@U0123456789> and more",
        "a" * 2985 + " <https://example.com/x|a link> after",
        "a" * 2995 + " &amp; more words",
    ],
)
def test_text_is_never_cut_inside_a_mention_a_link_or_an_entity(text: str) -> None:
    cut = clip(text, 3000)

    assert len(cut) <= 3000
    assert cut.endswith("…")
    assert cut.count("<") == cut.count(">")
    assert "&am…" not in cut
    assert "&…" not in cut


def test_lines_that_do_not_fit_are_counted() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(100)]

    text = join_lines(lines, 500)

    assert len(text) <= 500
    kept = text.count("\n")
    assert text.endswith(f"… and {100 - kept} more")


def test_sections_never_exceed_their_block_budget() -> None:
    lines = [f"`service-{i:04d}` v1.0.0 → *v1.1.0*" for i in range(6000)]

    blocks = sections(lines, max_blocks=40, noun="more services")

    assert len(blocks) == 40
    assert all(len(b["text"]["text"]) <= MAX_SECTION_TEXT for b in blocks)
    assert blocks[-1]["text"]["text"].endswith("more services")

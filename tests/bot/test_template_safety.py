"""Every template that carries typed text escapes it: no `<!everyone>`, no disguised link.

Typed text is what a person wrote (summary, impact, action, ETA, resolution, follow-up, reasons)
or what a system returned (an error). Each template is fed each attack and must show it as text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.deploy.views import event_text, outcome_text, summary_text
from bot.incident.views import (
    alert_text,
    announcement,
    list_text,
    postmortem_texts,
    resolve_modal,
    resolved_text,
    update_modal,
    update_text,
)
from bot.mrkdwn import escape
from bot.rollback.views import rollback_notice
from commands.incident.replies import OpenIncidents
from pipeline.kernel.config import Severity
from store.deploy.models import (
    Deployment,
    DeploymentId,
    DeploymentState,
    StageEvent,
    Target,
    TargetStatus,
)
from store.incident.models import EventKind, Incident, IncidentEvent, IncidentId, IncidentStatus

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ATTACKS = [
    "<!everyone> look",
    "<!channel>",
    "<!here>",
    "<https://evil.example|your bank>",
    "<@U0ADMIN> approve this",
    "<#C0SECRET>",
    "fish & chips > all",
]
SEVERITY = Severity.model_validate(
    {"description": "Service down", "response_time": "Immediate", "update_every": "15m"}
)


def _incident(text: str) -> Incident:
    return Incident(
        id=IncidentId("1700000000-abc123"),
        severity="p1",
        summary=text,
        service=None,
        status=IncidentStatus.IDENTIFIED,
        impact=text,
        action=text,
        eta=text,
        commander="UCMD",
        declared_by="UCMD",
        declared_in="CGEN",
        channel_id="CWAR",
        channel_name="inc-x",
        alert_ts=None,
        announce_channel="CINC",
        announce_ts=None,
        opened_at=T0,
        last_update_at=T0,
        next_update_due_at=None,
        resolved_at=T0 + timedelta(minutes=30),
        resolution=text,
        follow_up=text,
    )


def _run(text: str, state: DeploymentState = DeploymentState.ROLLED_BACK) -> Deployment:
    return Deployment(
        id=DeploymentId("1700000000-abc123"),
        environment="production",
        requested_by="UDEV",
        version="v1.3.0",
        state=state,
        stage=None,
        required_approvals=0,
        channel_id="CDEP",
        message_ts="1.1",
        created_at=T0,
        updated_at=T0,
        approval_due_at=None,
        started_at=T0,
        finished_at=T0,
        error=text,
        targets=(
            Target(
                service="auth-svc",
                current_version="v1.2.0",
                target_version="v1.3.0",
                status=TargetStatus.ROLLED_BACK,
                detail=text,
            ),
        ),
    )


INCIDENT_TEMPLATES: dict[str, Callable[[Incident], str]] = {
    "alert": alert_text,
    "announcement": lambda i: announcement(i, SEVERITY),
    "update": update_text,
    "resolved": resolved_text,
    "post-mortem": lambda i: "\n".join(
        postmortem_texts(
            i, [IncidentEvent(at=T0, kind=EventKind.UPDATE, actor="UCMD", detail=i.action)]
        )
    ),
    "list": lambda i: list_text(OpenIncidents((i,), T0)),
    "update form": lambda i: str(update_modal(i)["blocks"][0]),
    "resolve form": lambda i: str(resolve_modal(i)["blocks"][0]),
}
DEPLOY_TEMPLATES: dict[str, Callable[[Deployment], str]] = {
    "rolled back": lambda r: outcome_text(r) or "",
    "rollback failed": lambda r: (
        outcome_text(_run(r.error or "", DeploymentState.ROLLBACK_FAILED)) or ""
    ),
    "cancelled": lambda r: outcome_text(_run(r.error or "", DeploymentState.CANCELLED)) or "",
    "rollback notice": lambda r: rollback_notice(r, r.targets[:1]),
    "stage event": lambda r: event_text(
        StageEvent(deployment_id=r.id, at=T0, stage="health", status="failed", detail=r.error)
    ),
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("template", INCIDENT_TEMPLATES)
def test_incident_templates_show_typed_text_as_text(template: str, attack: str) -> None:
    out = INCIDENT_TEMPLATES[template](_incident(attack))

    assert attack not in out
    assert escape(attack) in out


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("template", DEPLOY_TEMPLATES)
def test_deploy_templates_show_typed_text_as_text(template: str, attack: str) -> None:
    out = DEPLOY_TEMPLATES[template](_run(attack))

    assert attack not in out
    assert escape(attack) in out


def test_a_summary_line_names_no_typed_text() -> None:
    assert "<" not in summary_text(_run("<!channel>"))

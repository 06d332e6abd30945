"""Block Kit and text for incidents: the runbook's three templates, reminders, modals, replies.

Slack text is product copy: the initial alert, update and resolved messages use the wording of
seed 002's communication templates, which on-call engineers expect to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.blocks import context, section
from commands.incident import Declared, Reminder
from commands.incident_parse import cadence, minutes_words
from pipeline.config import Severity, format_duration
from store.incidents import UPDATE_STATUSES, EventKind, Incident, IncidentEvent, IncidentStatus
from store.models import Deployment

POST_UPDATE_ACTION = "incident_post_update"
RESOLVE_ACTION = "incident_resolve"
UPDATE_VIEW = "incident_update_modal"
RESOLVE_VIEW = "incident_resolve_modal"
FIELD = "value"  # the action_id of every modal input; the block_id names the field

# Slack: a channel topic holds at most 250 characters, a modal's title 24, and a plain-text
# input 3000 (section limits live in bot/blocks.py).
MAX_TOPIC = 250
MAX_INPUT = 3000

Blocks = list[dict[str, Any]]

_EVENT_WORDS = {
    EventKind.OPENED: "Opened",
    EventKind.UPDATE: "Update",
    EventKind.STATUS: "Status",
    EventKind.REMINDER: "Reminder",
    EventKind.ESCALATION: "Escalated",
    EventKind.COMMANDER: "Commander",
    EventKind.RESOLVED: "Resolved",
}


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def _headline(incident: Incident) -> str:
    if incident.service:
        return f"{incident.service} experiencing issues"
    return incident.summary


def _mention(ident: str) -> str:
    return f"<!subteam^{ident}>" if ident.startswith("S") else f"<@{ident}>"


def topic(incident: Incident) -> str:
    text = f"{incident.severity.upper()} · {incident.summary} · Commander: <@{incident.commander}>"
    if len(text) <= MAX_TOPIC:
        return text
    tail = f"… · Commander: <@{incident.commander}>"
    head = f"{incident.severity.upper()} · {incident.summary}"
    return head[: MAX_TOPIC - len(tail)] + tail


def alert_text(incident: Incident) -> str:
    """The seeds' initial alert."""
    return (
        f"🚨 INCIDENT: {_headline(incident)}\n"
        f"- Impact: {incident.impact}\n"
        "- Status: Investigating\n"
        f"- ETA: {incident.eta}"
    )


def _facts(incident: Incident, severity: Severity) -> str:
    return (
        f"*{incident.severity.upper()}* · {severity.description} · response: "
        f"{severity.response_time} · Commander: <@{incident.commander}> · {cadence(severity)}"
    )


def suspect_lines(suspects: Sequence[Deployment], *, environment: str, window_s: float) -> str:
    title = f"*Suspects: deploys to {environment} in the last {format_duration(window_s)}*"
    if not suspects:
        return f"{title}\nNone."
    lines = []
    for run in suspects:
        when = _hhmm(run.finished_at or run.updated_at)
        for t in run.active_targets:
            lines.append(
                f"• `{t.service}` {t.current_version or 'unknown'} → {t.target_version} by "
                f"<@{run.requested_by}> at {when} ({run.state.value.replace('_', ' ')}, "
                f"`{run.id}`)"
            )
    return title + "\n" + "\n".join(lines)


def _buttons(incident: Incident, *, resolve: bool = True) -> dict[str, Any]:
    elements: Blocks = [
        {
            "type": "button",
            "action_id": POST_UPDATE_ACTION,
            "style": "primary",
            "value": incident.id,
            "text": {"type": "plain_text", "text": "Post update"},
        }
    ]
    if resolve:
        elements.append(
            {
                "type": "button",
                "action_id": RESOLVE_ACTION,
                "value": incident.id,
                "text": {"type": "plain_text", "text": "Resolve"},
            }
        )
    return {"type": "actions", "block_id": f"incident:{incident.id}", "elements": elements}


def alert_message(
    incident: Incident, severity: Severity, suspects: str | None
) -> tuple[str, Blocks]:
    """The pinned initial alert: template, facts, suspects, and the two buttons."""
    blocks: Blocks = [section(alert_text(incident)), context(_facts(incident, severity))]
    if suspects is not None:
        blocks.append(section(suspects))
    blocks.append(_buttons(incident))
    return alert_text(incident), blocks


def announcement(incident: Incident, severity: Severity) -> str:
    return (
        f"{alert_text(incident)}\n- War room: <#{incident.channel_id}>\n"
        f"{_facts(incident, severity)}\nUpdates follow in this thread."
    )


def update_text(incident: Incident) -> str:
    """The seeds' update template."""
    status = incident.status.value.capitalize()
    return (
        f"📍 UPDATE: {incident.subject} incident\n"
        f"- Status: {status}\n"
        f"- Action: {incident.action or '-'}\n"
        f"- ETA: {incident.eta}\n"
        f"- Impact: {incident.impact}"
    )


def _duration_s(incident: Incident) -> float:
    end = incident.resolved_at or incident.last_update_at
    return (end - incident.opened_at).total_seconds()


def resolved_text(incident: Incident) -> str:
    """The seeds' resolved template, with the duration computed."""
    return (
        f"✅ RESOLVED: {incident.subject} incident\n"
        f"- Duration: {minutes_words(_duration_s(incident))}\n"
        f"- Impact: {incident.impact}\n"
        f"- Resolution: {incident.resolution}\n"
        f"- Follow-up: {incident.follow_up}"
    )


def postmortem_text(incident: Incident, timeline: Sequence[IncidentEvent]) -> str:
    """The post-mortem skeleton: time to resolve, the timeline, and headings to fill in."""
    lines = []
    for event in timeline:
        who = f" by <@{event.actor}>" if event.actor else ""
        detail = f": {event.detail}" if event.detail else ""
        lines.append(f"• {_hhmm(event.at)} {_EVENT_WORDS[event.kind]}{who}{detail}")
    opened = incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"📝 *Post-mortem: {incident.severity.upper()} {incident.summary}*\n"
        f"*Time to resolve:* {minutes_words(_duration_s(incident))} (opened {opened})\n"
        f"*Timeline*\n" + "\n".join(lines) + "\n"
        f"*Impact*\n{incident.impact}\n"
        "*Root cause*\n_to fill in_\n"
        "*What went well*\n_to fill in_\n"
        "*What went wrong*\n_to fill in_\n"
        f"*Action items*\n• {incident.follow_up}"
    )


def reminder_message(incident: Incident, reminder: Reminder) -> tuple[str, Blocks]:
    """A reminder for the commander, or (unanswered for a further interval) an escalation."""
    since = minutes_words(reminder.since_update_s)
    how = "use *Post update* or `/incident update <status> <what we are doing>`"
    if reminder.escalate:
        extra = "".join(f" {_mention(i)}" for i in reminder.escalate_to)
        text = (
            f"🚨 <!channel>{extra} This {incident.severity.upper()} has had no update for "
            f"{since} and the reminder went unanswered. <@{incident.commander}>, {how} now, "
            "or hand over with `/incident commander @someone`."
        )
    else:
        text = (
            f"⏰ <@{incident.commander}> no update for {since}. Updates are due every "
            f"{minutes_words(reminder.every_s)}: {how}."
        )
    return text, [section(text), _buttons(incident, resolve=False)]


def commander_text(incident: Incident, previous: str) -> str:
    return (
        f"👑 <@{incident.commander}> is now the incident commander, taking over from <@{previous}>."
    )


def declared_text(declared: Declared) -> str:
    incident = declared.incident
    text = (
        f"🚨 {incident.severity.upper()} declared. War room: <#{incident.channel_id}>. "
        "You are the incident commander."
    )
    return text + "".join(f"\n⚠️ {w}" for w in declared.warnings)


def list_text(incidents: Sequence[Incident], now: datetime) -> str:
    if not incidents:
        return "No open incidents."
    lines = [
        f"• *{i.severity.upper()}* <#{i.channel_id}> {i.summary} · open "
        f"{minutes_words((now - i.opened_at).total_seconds())} · last update "
        f"{minutes_words((now - i.last_update_at).total_seconds())} ago "
        f"({i.status.value}) · commander <@{i.commander}>"
        for i in incidents
    ]
    return "*Open incidents*\n" + "\n".join(lines)


def _option(status: IncidentStatus) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": status.value.capitalize()},
        "value": status.value,
    }


def _input(
    block_id: str, label: str, initial: str | None, *, multiline: bool, optional: bool = False
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD,
        "multiline": multiline,
        "max_length": MAX_INPUT,
    }
    if initial:
        element["initial_value"] = initial[:MAX_INPUT]
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _modal(callback_id: str, title: str, submit: str, incident: Incident, blocks: Blocks) -> Any:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [context(f"*{incident.severity.upper()}* {incident.summary}"), *blocks],
    }


def update_modal(incident: Incident) -> dict[str, Any]:
    """Post update: status, action, ETA, impact, prefilled from the last update."""
    select: dict[str, Any] = {
        "type": "static_select",
        "action_id": FIELD,
        "options": [_option(s) for s in UPDATE_STATUSES],
    }
    if incident.status in UPDATE_STATUSES:
        select["initial_option"] = _option(incident.status)
    status = {
        "type": "input",
        "block_id": "status",
        "label": {"type": "plain_text", "text": "Status"},
        "element": select,
    }
    fields = [
        status,
        _input("action", "Action: what we are doing", incident.action, multiline=True),
        _input("eta", "ETA", incident.eta, multiline=False),
        _input("impact", "Impact", incident.impact, multiline=True),
    ]
    result: dict[str, Any] = _modal(UPDATE_VIEW, "Post update", "Post", incident, fields)
    return result


def resolve_modal(incident: Incident) -> dict[str, Any]:
    """Resolve: impact (prefilled), resolution, follow-up."""
    fields = [
        _input("impact", "Impact", incident.impact, multiline=True),
        _input("resolution", "Resolution: what fixed it", None, multiline=True),
        _input("follow_up", "Follow-up: action items", None, multiline=True, optional=True),
    ]
    result: dict[str, Any] = _modal(RESOLVE_VIEW, "Resolve incident", "Resolve", incident, fields)
    return result


class ModalSubmission(BaseModel):
    """A submitted incident modal: who, which incident, and each field's text."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    callback_id: str
    incident_id: str
    fields: dict[str, str]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ModalSubmission:
        view = body.get("view") or {}
        fields: dict[str, str] = {}
        for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
            value = (actions or {}).get(FIELD) or {}
            chosen = (value.get("selected_option") or {}).get("value")
            fields[block_id] = str(chosen if chosen is not None else value.get("value") or "")
        return cls(
            user_id=body["user"]["id"],
            callback_id=view.get("callback_id", ""),
            incident_id=view.get("private_metadata", ""),
            fields=fields,
        )

    def text(self, block_id: str) -> str:
        return self.fields.get(block_id, "").strip()


def update_form_errors(form: ModalSubmission) -> dict[str, str]:
    """What is wrong with a Post update submission, by block_id (empty when it is fine)."""
    errors = {}
    if form.text("status") not in {s.value for s in UPDATE_STATUSES}:
        errors["status"] = "Pick a status: investigating, identified, mitigating or monitoring."
    if not form.text("action"):
        errors["action"] = "Say what we are doing; a sentence is enough."
    if not form.text("eta"):
        errors["eta"] = "Give an estimate, or write Unknown."
    if not form.text("impact"):
        errors["impact"] = "Describe the impact on users."
    return errors


def resolve_form_errors(form: ModalSubmission) -> dict[str, str]:
    """What is wrong with a Resolve submission, by block_id (empty when it is fine)."""
    errors = {}
    if not form.text("impact"):
        errors["impact"] = "Summarise the impact on users."
    if not form.text("resolution"):
        errors["resolution"] = "Say what fixed it."
    return errors

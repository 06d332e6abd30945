"""Block Kit and text for incidents: the runbook's three templates, reminders, forms, replies.

Slack text is product copy: the initial alert, update and resolved messages use the wording of
seed 002's communication templates, which on-call engineers expect to see. Everything a person
typed (summary, impact, action, ETA, resolution, follow-up) is escaped and bounded here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.blocks import (
    MAX_ACTIONS_ELEMENTS,
    MAX_INPUT_LABEL,
    MAX_INPUT_VALUE,
    MAX_MESSAGE_TEXT,
    MAX_MODAL_TITLE,
    MAX_OPTION_TEXT,
    MAX_SECTION_TEXT,
    Blocks,
    actions,
    button,
    context,
    plain,
    section,
)
from bot.mrkdwn import clip, escape, join_lines, mention, pack_lines, render
from bot.rollback.views import roll_back_button
from commands.exchange import form_metadata
from commands.incident.parse import cadence
from commands.incident.replies import Declared, DeclareFormView, OpenIncidents
from commands.rollback.buttons import suspect_button_value
from pipeline.kernel.config import Severity, format_duration
from pipeline.kernel.ports import NotInvited, Reminder
from pipeline.kernel.text import counted, duration_words
from store.deploy.models import Deployment, DeploymentState
from store.incident.models import (
    UPDATE_STATUSES,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentStatus,
)

POST_UPDATE_ACTION = "incident_post_update"
SUSPECT_ROLLBACK_ACTION = "incident_rollback"
# Slack refuses two equal action_ids in a block (`invalid_blocks`), so each suspect's button
# is `incident_rollback:<n>`; one listener takes them all, and the bare id of older alerts.
SUSPECT_ROLLBACK_ACTIONS = re.compile(rf"^{SUSPECT_ROLLBACK_ACTION}(:\d+)?$")
RESOLVE_ACTION = "incident_resolve"
UPDATE_VIEW = "incident_update_modal"
RESOLVE_VIEW = "incident_resolve_modal"
DECLARE_VIEW = "incident_declare_modal"
FIELD = "value"  # the action_id of every modal input; the block_id names the field

# Slack: a static or multi-static select holds at most 100 options, each value at most 75
# characters (`invalid_arguments`). Past that, the declare form asks for services as text.
MAX_SELECT_OPTIONS = 100
MAX_OPTION_VALUE = 75
# A summary becomes a channel name, a topic and a headline; a paragraph is plenty.
MAX_SUMMARY = 500

# Slack: a channel topic holds at most 250 characters and renders no formatting.
MAX_TOPIC = 250
# Each typed field gets at most this much room in a template, so that every line of the
# template survives inside the 4000 characters of a message.
MAX_TYPED_FIELD = 900
MAX_HEADLINE = 300

# The metadata of a reminder message, so a reminder whose post was not confirmed can be found.
REMINDER_EVENT = "chatops_incident_reminder"

_EVENT_WORDS = {
    EventKind.OPENED: "Opened",
    EventKind.UPDATE: "Update",
    EventKind.STATUS: "Status",
    EventKind.REMINDER: "Reminder",
    EventKind.ESCALATION: "Escalated",
    EventKind.COMMANDER: "Commander",
    EventKind.RESOLVED: "Resolved",
    EventKind.ROLLBACK: "Rollback",
}


def typed(text: str | None, limit: int = MAX_TYPED_FIELD) -> str:
    """Text a person typed, escaped and cut to fit its place in a template."""
    return escape(clip(text or "-", limit))


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def _headline(incident: Incident) -> str:
    if incident.service:
        return f"{incident.service} experiencing issues"
    return typed(incident.summary, MAX_HEADLINE)


def _subject(incident: Incident) -> str:
    return typed(incident.subject, MAX_HEADLINE)


def topic(incident: Incident) -> str:
    """The war room's topic, at most 250 long: severity, summary, the commander as a mention,
    and once resolved, a "RESOLVED" first."""
    state = "" if incident.is_open else "✅ RESOLVED · "
    head = f"{state}{incident.severity.upper()} · "
    tail = f" · Commander: {mention(incident.commander)}"
    room = MAX_TOPIC - len(head) - len(tail)
    summary = escape(clip(incident.summary, room))
    while len(summary) > room:  # escaping lengthened it: cut the typed text shorter
        summary = escape(clip(incident.summary, room - (len(summary) - room) - 1))
    return head + summary + tail


def alert_text(incident: Incident) -> str:
    """The seeds' initial alert, with the status as it is now; once resolved, the seeds'
    resolved template."""
    if not incident.is_open:
        return resolved_text(incident)
    return (
        f"🚨 INCIDENT: {_headline(incident)}\n"
        f"- Impact: {typed(incident.impact)}\n"
        f"- Status: {incident.status.value.capitalize()}\n"
        f"- ETA: {typed(incident.eta)}"
    )


def _facts(incident: Incident, severity: Severity) -> str:
    return (
        f"*{incident.severity.upper()}* · {escape(severity.description)} · response: "
        f"{escape(severity.response_time)} · Commander: {mention(incident.commander)} · "
        f"{cadence(severity)}"
    )


def suspect_lines(suspects: Sequence[Deployment], *, environment: str, window_s: float) -> str:
    """The deploys of the last hours, one line per service; says how many it leaves out."""
    title = f"*Suspects: deploys to {environment} in the last {format_duration(window_s)}*"
    if not suspects:
        return f"{title}\nNone."
    lines = []
    for run in suspects:
        when = _hhmm(run.finished_at or run.updated_at)
        for t in run.active_targets:
            # A service some rollback took back says so, whatever its deploy's state says.
            state = "rolled back" if t.reverted_by is not None else run.state.words
            lines.append(
                f"• `{t.service}` {t.current_version or 'unknown'} → {t.target_version} by "
                f"{mention(run.requested_by)} at {when} ({state}, `{run.id}`)"
            )
    return title + "\n" + join_lines(lines, MAX_SECTION_TEXT - len(title) - 1, noun="more")


def _buttons(incident: Incident, *, resolve: bool = True) -> dict[str, Any]:
    elements = [
        button(action_id=POST_UPDATE_ACTION, text="Post update", value=incident.id, style="primary")
    ]
    if resolve:
        elements.append(button(action_id=RESOLVE_ACTION, text="Resolve", value=incident.id))
    return actions(f"incident:{incident.id}", elements)


# At most this many suspect deploys get a Roll back button (5 actions blocks of 25).
MAX_SUSPECT_BUTTONS = 5 * MAX_ACTIONS_ELEMENTS


def suspect_buttons(incident: Incident, suspects: Sequence[Deployment]) -> Blocks:
    """A **Roll back** button per suspect deploy that can still be taken back (a successful
    deploy not rolled back yet), each with a confirm dialog. Rollbackers only: anyone else's
    click is refused privately."""
    candidates = [
        r
        for r in suspects
        if r.state is DeploymentState.SUCCEEDED and not r.is_rollback and r.reverted_by is None
    ][:MAX_SUSPECT_BUTTONS]
    elements = [
        roll_back_button(
            run,
            action_id=f"{SUSPECT_ROLLBACK_ACTION}:{n}",
            text=f"Roll back {run.id}",
            value=suspect_button_value(incident.id, run.id),
        )
        for n, run in enumerate(candidates)
    ]
    return [
        actions(f"suspects:{i}", elements[i : i + MAX_ACTIONS_ELEMENTS])
        for i in range(0, len(elements), MAX_ACTIONS_ELEMENTS)
    ]


def alert_message(
    incident: Incident,
    severity: Severity,
    suspects: str | None,
    rollbacks: Blocks | None = None,
) -> tuple[str, Blocks]:
    """The pinned initial alert: template, facts, suspects (with their Roll back buttons), and
    the two buttons. Once resolved: the resolved template, and no buttons at all."""
    blocks: Blocks = [section(alert_text(incident)), context(_facts(incident, severity))]
    if incident.services:
        named = ", ".join(f"`{escape(s)}`" for s in incident.services)
        blocks.append(context(clip(f"Services: {named}", MAX_SECTION_TEXT)))
    if suspects is not None:
        blocks.append(section(suspects))
        if incident.is_open:
            blocks.extend(rollbacks or [])
    if incident.is_open:
        blocks.append(_buttons(incident))
    return alert_text(incident), blocks


def announcement(incident: Incident, severity: Severity) -> str:
    """The announcement in the incidents channel: the alert as it is now, and the war room."""
    follow = (
        "Updates follow in this thread." if incident.is_open else "The updates are in this thread."
    )
    return (
        f"{alert_text(incident)}\n- War room: <#{incident.channel_id}>\n"
        f"{_facts(incident, severity)}\n{follow}"
    )


def update_text(incident: Incident) -> str:
    """The seeds' update template."""
    status = incident.status.value.capitalize()
    return (
        f"📍 UPDATE: {_subject(incident)} incident\n"
        f"- Status: {status}\n"
        f"- Action: {typed(incident.action)}\n"
        f"- ETA: {typed(incident.eta)}\n"
        f"- Impact: {typed(incident.impact)}"
    )


def _duration_s(incident: Incident) -> float:
    end = incident.resolved_at or incident.last_update_at
    return (end - incident.opened_at).total_seconds()


def resolved_text(incident: Incident) -> str:
    """The seeds' resolved template, with the duration computed."""
    return (
        f"✅ RESOLVED: {_subject(incident)} incident\n"
        f"- Duration: {duration_words(_duration_s(incident))}\n"
        f"- Impact: {typed(incident.impact)}\n"
        f"- Resolution: {typed(incident.resolution)}\n"
        f"- Follow-up: {typed(incident.follow_up)}"
    )


def _event_line(event: IncidentEvent, previous_commander: str) -> str:
    who = f" by {mention(event.actor)}" if event.actor else ""
    if event.kind is EventKind.COMMANDER and event.detail:
        detail = f": {mention(previous_commander)} → {mention(event.detail)}"
    else:
        detail = f": {typed(event.detail, MAX_TYPED_FIELD)}" if event.detail else ""
    return f"• {_hhmm(event.at)} {_EVENT_WORDS[event.kind]}{who}{detail}"


def postmortem_texts(incident: Incident, timeline: Sequence[IncidentEvent]) -> list[str]:
    """The post-mortem skeleton as one or more messages of at most 4000 characters each:
    time to resolve, the whole timeline, and headings to fill in."""
    commander = incident.declared_by
    events = []
    for event in timeline:
        events.append(_event_line(event, commander))
        if event.kind is EventKind.COMMANDER and event.detail:
            commander = event.detail
    opened = incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"📝 *Post-mortem: {incident.severity.upper()} {typed(incident.summary, MAX_HEADLINE)}*",
        f"*Time to resolve:* {duration_words(_duration_s(incident))} (opened {opened})",
        "*Timeline*",
        *events,
        f"*Impact*\n{typed(incident.impact)}",
        "*Root cause*\n_to fill in_",
        "*What went well*\n_to fill in_",
        "*What went wrong*\n_to fill in_",
        f"*Action items*\n• {typed(incident.follow_up)}",
    ]
    return ["\n".join(part) for part in pack_lines(lines, MAX_MESSAGE_TEXT)]


def reminder_message(incident: Incident, reminder: Reminder) -> tuple[str, Blocks]:
    """A reminder for the commander, or (unanswered for a further interval) an escalation."""
    since = duration_words(reminder.since_update_s)
    how = "use *Post update* or `/incident update <status> <what we are doing>`"
    if reminder.escalate:
        extra = "".join(f" {mention(i)}" for i in reminder.escalate_to)
        text = (
            f"🚨 <!channel>{extra} This {incident.severity.upper()} has had no update for "
            f"{since} and the reminder went unanswered. {mention(incident.commander)}, {how} "
            "now, or hand over with `/incident commander @someone`."
        )
    else:
        text = (
            f"⏰ {mention(incident.commander)} no update for {since}. Updates are due every "
            f"{duration_words(reminder.every_s)}: {how}."
        )
    return text, [section(text), _buttons(incident, resolve=False)]


def commander_text(incident: Incident, previous: str) -> str:
    return (
        f"👑 {mention(incident.commander)} is now the incident commander, taking over from "
        f"{mention(previous)}."
    )


def not_invited_text(incident: Incident, not_invited: Sequence[NotInvited]) -> str:
    """For the commander, in the war room: who Slack would not add, and why."""
    lines = [f"• {mention(n.user_id)}: Slack answered `{escape(n.error)}`" for n in not_invited]
    head = (
        f"⚠️ {mention(incident.commander)} I could not invite "
        f"{counted(len(not_invited), 'responder')} "
        "to this war room. Add them by hand if they are needed:"
    )
    return head + "\n" + join_lines(lines, MAX_MESSAGE_TEXT - len(head) - 1, noun="more")


def declared_text(declared: Declared) -> str:
    incident = declared.incident
    text = (
        f"🚨 {incident.severity.upper()} declared. War room: <#{incident.channel_id}>. "
        "You are the incident commander."
    )
    if declared.not_invited:
        text += (
            f"\n⚠️ {counted(len(declared.not_invited), 'responder')} could not be invited; the war "
            "room says who and why."
        )
    return text + "".join(f"\n⚠️ {render(w.line)}" for w in declared.warnings)


def list_text(listed: OpenIncidents) -> str:
    if not listed.incidents:
        return "No open incidents."
    now = listed.now
    lines = [
        f"• *{i.severity.upper()}* <#{i.channel_id}> {typed(i.summary, MAX_HEADLINE)} · open "
        f"{duration_words((now - i.opened_at).total_seconds())} · last update "
        f"{duration_words((now - i.last_update_at).total_seconds())} ago "
        f"({i.status.value}) · commander {mention(i.commander)}"
        for i in listed.incidents
    ]
    head = "*Open incidents*"
    return head + "\n" + join_lines(lines, MAX_MESSAGE_TEXT - len(head) - 1, noun="more")


def _option(status: IncidentStatus) -> dict[str, Any]:
    return {
        "text": plain(status.value.capitalize(), MAX_OPTION_TEXT),
        "value": status.value,
    }


def _input(
    block_id: str, label: str, initial: str | None, *, multiline: bool, optional: bool = False
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD,
        "multiline": multiline,
        "max_length": MAX_INPUT_VALUE,
    }
    if initial:
        element["initial_value"] = initial[:MAX_INPUT_VALUE]
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, MAX_INPUT_LABEL),
        "element": element,
    }


def _modal(callback_id: str, title: str, submit: str, incident: Incident, blocks: Blocks) -> Any:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": form_metadata(incident.id, incident.channel_id),
        "title": plain(title, MAX_MODAL_TITLE),
        "submit": plain(submit, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            context(f"*{incident.severity.upper()}* {typed(incident.summary, MAX_HEADLINE)}"),
            *blocks,
        ],
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
        "label": plain("Status"),
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


def _choice(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, MAX_OPTION_TEXT), "value": value}


def _services_field(form: DeclareFormView) -> dict[str, Any]:
    """The services: a multi-select of the configured ones, or (more than Slack lists, or a
    name longer than an option's value) a text field taking them comma-separated."""
    listable = len(form.services) <= MAX_SELECT_OPTIONS and all(
        len(s) <= MAX_OPTION_VALUE for s in form.services
    )
    hint = (
        f"A P1 or P2 freezes deploys of these services to {form.environment} until it is "
        "resolved; /rollback stays allowed. Services named in the summary count too."
        if form.environment
        else "Services named in the summary count too."
    )
    block: dict[str, Any] = {
        "type": "input",
        "block_id": "services",
        "optional": True,
        "label": plain("Services affected", MAX_INPUT_LABEL),
        "hint": plain(hint, MAX_INPUT_LABEL),
    }
    if listable:
        element: dict[str, Any] = {
            "type": "multi_static_select",
            "action_id": FIELD,
            "placeholder": plain("Pick the services", 150),
            "options": [_choice(s, s) for s in form.services],
        }
        if form.chosen:
            element["initial_options"] = [_choice(s, s) for s in form.chosen]
    else:
        element = {
            "type": "plain_text_input",
            "action_id": FIELD,
            "placeholder": plain("auth-svc, billing-svc", 150),
            "max_length": MAX_INPUT_VALUE,
        }
        if form.chosen:
            element["initial_value"] = ", ".join(form.chosen)[:MAX_INPUT_VALUE]
    block["element"] = element
    return block


def declare_modal(form: DeclareFormView) -> dict[str, Any]:
    """Declare incident: severity, summary and services, prefilled with what is known (from
    `/incident declare p1 …` or a watch's alert)."""
    options = [
        _choice(f"{c.key.upper()} · {c.description}", c.key)
        for c in form.severities[:MAX_SELECT_OPTIONS]
    ]
    select: dict[str, Any] = {"type": "static_select", "action_id": FIELD, "options": options}
    picked = next((o for o in options if o["value"] == form.severity), None)
    if picked is not None:
        select["initial_option"] = picked
    severity = {
        "type": "input",
        "block_id": "severity",
        "label": plain("Severity"),
        "element": select,
    }
    summary = _input("summary", "Summary: what is broken", form.summary, multiline=True)
    summary["element"]["max_length"] = MAX_SUMMARY
    if form.summary:
        summary["element"]["initial_value"] = form.summary[:MAX_SUMMARY]
    return {
        "type": "modal",
        "callback_id": DECLARE_VIEW,
        "private_metadata": form_metadata(form.source or "new", form.channel_id),
        "title": plain("Declare incident", MAX_MODAL_TITLE),
        "submit": plain("Declare", MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            context(
                "Opens a war-room channel, invites the responders, posts and pins the alert; "
                "you become the incident commander."
            ),
            severity,
            summary,
            _services_field(form),
        ],
    }

"""Turns what a command answers (`commands/exchange.py`) into Slack text and modal views.

The one registry of view models: each member of the closed `Reply` and `Form` unions maps to
its view; mypy checks that every member has one (`assert_never`).
"""

from __future__ import annotations

from typing import Any, assert_never

from bot.blocks import Blocks, message_text
from bot.deploy.stats import stats_text
from bot.deploy.status import record_text
from bot.deploy.views import history_text
from bot.gates.views import dry_run_text, environment_text, health_text
from bot.incident.views import (
    declare_modal,
    declared_text,
    list_text,
    resolve_modal,
    update_modal,
)
from bot.mrkdwn import render
from bot.rollback.views import rollback_prompt
from bot.usage import usage_text
from commands.deploy.replies import DeliveryStats, DryRun, History, Record
from commands.gates.replies import EnvironmentView
from commands.health.replies import HealthReport
from commands.incident.replies import (
    Declared,
    DeclareFormView,
    OpenIncidents,
    ResolveFormView,
    UpdateFormView,
)
from commands.replies import Form, Reply
from commands.rollback.replies import RollbackPrompt
from commands.usage import Usage
from pipeline.kernel.text import Line


def reply_message(reply: Reply) -> tuple[str, Blocks | None]:
    """A reply as Slack message text within its limit and, for replies with buttons, blocks."""
    match reply:
        case RollbackPrompt():
            text, blocks = rollback_prompt(reply)
            return message_text(text), blocks
        case Line():
            text = render(reply)
        case Usage():
            text = usage_text(reply)
        case Record():
            text = record_text(reply)
        case History():
            text = history_text(reply)
        case DeliveryStats():
            text = stats_text(reply)
        case Declared():
            text = declared_text(reply)
        case OpenIncidents():
            text = list_text(reply)
        case DryRun():
            text = dry_run_text(reply)
        case EnvironmentView():
            text = environment_text(reply)
        case HealthReport():
            text = health_text(reply)
        case _:
            assert_never(reply)
    return message_text(text), None


def form_view(form: Form) -> dict[str, Any]:
    """A form as a modal view."""
    match form:
        case UpdateFormView():
            return update_modal(form.incident)
        case ResolveFormView():
            return resolve_modal(form.incident)
        case DeclareFormView():
            return declare_modal(form)
        case _:
            assert_never(form)

"""Turns what a command answers (`commands/exchange.py`) into Slack text and modal views.

The one registry of view models: each feature's reply and form types map to its views.
"""

from __future__ import annotations

from typing import Any

from bot.blocks import Blocks, message_text
from bot.deploy.views import history_text, record_text
from bot.gates.views import dry_run_text, environment_text, health_text
from bot.incident.views import declared_text, list_text, resolve_modal, update_modal
from bot.mrkdwn import render
from bot.rollback.views import rollback_prompt
from commands.deploy.planning import DryRun
from commands.deploy.usecases import History, Record
from commands.exchange import Reply
from commands.gates.usecases import EnvironmentView
from commands.health.usecases import HealthReport
from commands.incident.usecases import Declared, OpenIncidents, ResolveFormView, UpdateFormView
from commands.rollback.usecases import RollbackPrompt
from pipeline.kernel.text import Line


def reply_message(reply: Reply) -> tuple[str, Blocks | None]:
    """A reply as Slack message text and, for replies with buttons, blocks."""
    if isinstance(reply, RollbackPrompt):
        text, blocks = rollback_prompt(reply)
        return message_text(text), blocks
    return reply_text(reply), None


def reply_text(reply: Reply) -> str:
    """A reply as mrkdwn within Slack's message limit. Raises TypeError for an unknown model."""
    if isinstance(reply, str):
        text = reply
    elif isinstance(reply, Line):
        text = render(reply)
    elif isinstance(reply, Record):
        text = record_text(reply)
    elif isinstance(reply, History):
        text = history_text(reply)
    elif isinstance(reply, Declared):
        text = declared_text(reply)
    elif isinstance(reply, OpenIncidents):
        text = list_text(reply)
    elif isinstance(reply, DryRun):
        text = dry_run_text(reply)
    elif isinstance(reply, EnvironmentView):
        text = environment_text(reply)
    elif isinstance(reply, HealthReport):
        text = health_text(reply)
    else:
        raise TypeError(f"No view draws a {type(reply).__name__} reply.")
    return message_text(text)


def form_view(form: object) -> dict[str, Any]:
    """A form as a modal view. Raises TypeError for an unknown form."""
    if isinstance(form, UpdateFormView):
        return update_modal(form.incident)
    if isinstance(form, ResolveFormView):
        return resolve_modal(form.incident)
    raise TypeError(f"No view draws a {type(form).__name__} form.")

"""The closed sets of what commands say (`Reply`) and which forms they open (`Form`).

Like `commands/router.py`, this module names every feature; the features never import it (they
return their own reply models), `commands/exchange.py` names it for the type checker only, and
`bot/render.py` draws each member with an exhaustive match.
"""

from __future__ import annotations

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
from commands.rollback.replies import RollbackPrompt
from commands.usage import Usage
from pipeline.kernel.text import Line

Reply = (
    Line
    | Usage
    | Record
    | History
    | DeliveryStats
    | DryRun
    | EnvironmentView
    | HealthReport
    | Declared
    | OpenIncidents
    | RollbackPrompt
)
"""What a command may say: a sentence (`Line`), a command's help (`Usage`), or one of the
features' reply models. A closed set: `bot/render.py` draws each one."""

Form = UpdateFormView | ResolveFormView | DeclareFormView
"""A form a click or a command opens (a modal in Slack). A closed set: `bot/render.py` draws
each one."""

"""The sandbox's workspace: its people, their roles, the user groups and the channels it opens on.

Readable names, so mentions on the page read as people: a requester, two approvers, an on-call
engineer and an outsider who may ask for a deploy but not approve one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sandbox.slack import User
from sandbox.slack.workspace import BOT_USER


@dataclass(frozen=True)
class Person:
    """A seeded person: their Slack user and what they are for in the tour."""

    user: User
    role: str

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.real_name


@dataclass(frozen=True)
class Group:
    """A Slack user group (`S…`) with its handle, as mentions show it (`@oncall`)."""

    id: str
    handle: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Room:
    id: str
    name: str
    topic: str


BOT: Final = User(BOT_USER, "chatops", "ChatOps", is_bot=True)

REQUESTER: Final = Person(User("U0SAMRIVERA", "sam", "Sam Rivera"), "requester")
APPROVERS: Final = (
    Person(User("U0PRIYAPATEL", "priya", "Priya Patel"), "approver (devops lead)"),
    Person(User("U0MARCUSCHEN", "marcus", "Marcus Chen"), "approver (backend lead)"),
)
ON_CALL: Final = Person(User("U0JORDANKIM", "jordan", "Jordan Kim"), "on-call engineer")
OUTSIDER: Final = Person(User("U0TAYLORBROOKS", "taylor", "Taylor Brooks"), "outsider")

PEOPLE: Final = (REQUESTER, *APPROVERS, ON_CALL, OUTSIDER)

ON_CALL_GROUP: Final = Group("S0ONCALL", "oncall", (ON_CALL.id,))
# The example config's devops leads: approvers and rollbackers of production.
DEVOPS_LEADS: Final = Group("S0DEVOPSLEADS", "devops-leads", (APPROVERS[0].id,))
GROUPS: Final = (ON_CALL_GROUP, DEVOPS_LEADS)

DEPLOYS: Final = Room("C0DEPLOYS", "deployments", "Deploys happen here. Try /deploy production all")
INCIDENTS: Final = Room("C0INCIDENTS", "incidents", "Every incident is announced here")
ROOMS: Final = (DEPLOYS, INCIDENTS)


def users() -> tuple[User, ...]:
    """Every user of the sandbox workspace: the bot, then the people."""
    return (BOT, *(p.user for p in PEOPLE))


def group_members() -> dict[str, list[str]]:
    return {g.id: list(g.members) for g in GROUPS}

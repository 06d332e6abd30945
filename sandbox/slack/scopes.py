"""The OAuth scopes each Web API method of the local Slack needs (api.slack.com/methods/<method>).

`METHOD_SCOPES` is public so the project can derive the manifest's bot scopes from it: each entry
lists the scopes that satisfy the method, the usual one (for public channels) first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from sandbox.slack.errors import SlackError

METHOD_SCOPES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "auth.test": (),
        "apps.connections.open": (),  # an app-level token with connections:write
        "chat.postMessage": ("chat:write",),
        "chat.postEphemeral": ("chat:write",),
        "chat.update": ("chat:write",),
        "chat.delete": ("chat:write",),
        "chat.getPermalink": (),
        "conversations.create": ("channels:manage",),
        "conversations.invite": ("channels:manage", "groups:write"),
        "conversations.setTopic": ("channels:manage", "groups:write"),
        "conversations.archive": ("channels:manage",),
        "conversations.join": ("channels:join",),
        "conversations.info": ("channels:read",),
        "conversations.members": ("channels:read",),
        "conversations.history": ("channels:history",),
        "conversations.replies": ("channels:history",),
        "pins.add": ("pins:write",),
        "usergroups.users.list": ("usergroups:read",),
        "users.info": ("users:read",),
        "users.list": ("users:read",),
        "views.open": (),
        "views.update": (),
        "views.push": (),
        "views.publish": (),
    }
)

# Where a private channel needs another scope than METHOD_SCOPES names.
PRIVATE_CHANNEL_SCOPES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "conversations.create": ("groups:write",),
        "conversations.archive": ("groups:write",),
        "conversations.info": ("groups:read",),
        "conversations.members": ("groups:read",),
        "conversations.history": ("groups:history",),
        "conversations.replies": ("groups:history",),
    }
)


def needed_scopes(method: str, *, private: bool = False) -> tuple[str, ...]:
    """The scopes any one of which lets the app call `method` (empty: none needed)."""
    if private and method in PRIVATE_CHANNEL_SCOPES:
        return PRIVATE_CHANNEL_SCOPES[method]
    return METHOD_SCOPES.get(method, ())


def check_scope(method: str, granted: Iterable[str] | None, *, private: bool = False) -> None:
    """Raise `missing_scope` (with `needed` and `provided`) unless `granted` covers `method`.

    `granted=None` stands for an app with every scope.
    """
    if granted is None:
        return
    have = set(granted)
    needed = needed_scopes(method, private=private)
    if needed and have.isdisjoint(needed):
        raise SlackError("missing_scope", needed=",".join(needed), provided=",".join(sorted(have)))

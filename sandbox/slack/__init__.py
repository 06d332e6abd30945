"""One local Slack: a workspace, a Web API as strict as Slack's, response URLs and Socket Mode.

`LocalSlack` serves it on 127.0.0.1 for tests and the browser sandbox; `AppDelivery` sends what
people do to the app, signed, as Slack does; `METHOD_SCOPES` says which OAuth scope each method
needs; `limits` names every limit the Web API enforces.
"""

from __future__ import annotations

from sandbox.slack.delivery import Ack, AppDelivery, sign
from sandbox.slack.errors import SlackError
from sandbox.slack.faults import Faults
from sandbox.slack.feed import Change, ChangeFeed, ChangeKind
from sandbox.slack.models import Channel, Edit, Ephemeral, Message, User, View
from sandbox.slack.scopes import METHOD_SCOPES, PRIVATE_CHANNEL_SCOPES, needed_scopes
from sandbox.slack.server import Call, LocalSlack
from sandbox.slack.webapi import LongText, ResponseTarget, WebApi
from sandbox.slack.workspace import SEED_USERS, ChannelNames, Workspace

__all__ = [
    "METHOD_SCOPES",
    "PRIVATE_CHANNEL_SCOPES",
    "SEED_USERS",
    "Ack",
    "AppDelivery",
    "Call",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "Channel",
    "ChannelNames",
    "Edit",
    "Ephemeral",
    "Faults",
    "LocalSlack",
    "LongText",
    "Message",
    "ResponseTarget",
    "SlackError",
    "User",
    "View",
    "WebApi",
    "Workspace",
    "needed_scopes",
    "sign",
]

"""Bringing a rollback's approvers to a war room: a rollback card that needs approvals, asked
for in an incident's war room, is posted there, where the approvers may not be members."""

from __future__ import annotations

import logging

from commands.access import Access
from pipeline.kernel.config import Config
from pipeline.kernel.ports import IncidentChat
from store.deploy.models import Deployment
from store.incident.repository import Incidents

log = logging.getLogger(__name__)


class WarRoomApprovers:
    """Invites the approvers of a rollback asked for in a war room, before its card is posted:
    Slack notifies only members of a channel of a mention, and the war room is where the
    incident's context (the alert, the suspects, the timeline) is."""

    def __init__(
        self, *, config: Config, incidents: Incidents, chat: IncidentChat, access: Access
    ) -> None:
        self._config = config
        self._incidents = incidents
        self._chat = chat
        self._access = access

    async def bring(self, run: Deployment) -> None:
        """Invite the environment's approvers (users, and the members of its user groups) to
        the run's channel when that is a war room and the run needs approvals. Touches Slack,
        never AWS. Who Slack would not invite is logged; the card says who is asked anyway.
        Raises UpstreamError when Slack cannot list a group's members or invite."""
        if not run.required_approvals or run.channel_id is None:
            return
        if await self._incidents.by_channel(run.channel_id) is None:
            return
        users: list[str] = []
        for ident in self._config.environment(run.environment).approvers:
            members = sorted(await self._access.members_of(ident)) if ident[0] == "S" else [ident]
            users += [m for m in members if m not in users]
        refused = await self._chat.invite(run.channel_id, users)
        for not_invited in refused:
            log.warning(
                "could not invite approver %s to war room %s: %s",
                not_invited.user_id,
                run.channel_id,
                not_invited.error,
            )

"""Who may do what: membership of a list of Slack user and user-group IDs from the config.

A user group Slack does not know (a typo, a deleted group) is skipped: it has no members, and
the first time it is met it is logged once, so the people of the other groups can still act.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from pipeline.kernel.errors import ChatOpsError, UnknownGroup
from pipeline.kernel.ports import Directory

log = logging.getLogger(__name__)


class Access:
    """Answers "is this user one of these IDs?", looking inside user groups (S…) when needed."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self._unknown: set[str] = set()

    async def is_member(self, user_id: str, ids: Sequence[str]) -> bool:
        """True when `user_id` is listed directly or belongs to a listed user group.

        Asks Slack (through the Directory) only when the user is not listed directly; skips
        groups Slack does not know; raises UpstreamError when a group cannot be read.
        """
        if user_id in ids:
            return True
        for group in (i for i in ids if i.startswith("S")):
            if user_id in await self.members_of(group):
                return True
        return False

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The members of user group `group_id`; none when Slack does not know the group.
        Raises UpstreamError when Slack cannot tell."""
        try:
            members = await self._directory.members_of(group_id)
        except UnknownGroup:
            self._note_unknown(group_id, where=())
            return frozenset()
        self._unknown.discard(group_id)
        return members

    async def unknown_groups(self, where: dict[str, list[str]]) -> list[str]:
        """Of the user groups in `where` (group ID -> the config keys naming it), those Slack
        does not know, each logged (once) with its keys. Raises UpstreamError when Slack cannot
        tell."""
        unknown = []
        for group_id, keys in where.items():
            try:
                await self._directory.members_of(group_id)
            except UnknownGroup:
                self._note_unknown(group_id, where=keys)
                unknown.append(group_id)
        return unknown

    async def warn_of_unknown_groups(self, where: dict[str, list[str]]) -> None:
        """At start-up: log each user group in `where` that Slack does not know. Never raises:
        when Slack cannot tell, that is logged and each group is checked when it is used."""
        try:
            await self.unknown_groups(where)
        except ChatOpsError as exc:
            log.warning("could not check the config's user groups: %s", exc.user_message)

    def _note_unknown(self, group_id: str, *, where: Iterable[str]) -> None:
        if group_id in self._unknown:
            return
        self._unknown.add(group_id)
        keys = ", ".join(where)
        log.warning(
            "Slack has no user group %s%s: it is skipped (no one acts through it). Fix the ID in "
            "the config or create the group in Slack.",
            group_id,
            f" (named in {keys})" if keys else "",
        )

"""Who may do what: membership of a list of Slack user and user-group IDs from the config."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.kernel.ports import Directory


class Access:
    """Answers "is this user one of these IDs?", looking inside user groups (S…) when needed."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    async def is_member(self, user_id: str, ids: Sequence[str]) -> bool:
        """True when `user_id` is listed directly or belongs to a listed user group.

        Asks Slack (through the Directory) only when the user is not listed directly; raises
        UpstreamError when a group cannot be read.
        """
        if user_id in ids:
            return True
        for group in (i for i in ids if i.startswith("S")):
            if user_id in await self._directory.members_of(group):
                return True
        return False

    async def members_of(self, group_id: str) -> frozenset[str]:
        """The members of user group `group_id`. Raises UpstreamError when Slack cannot tell."""
        return await self._directory.members_of(group_id)

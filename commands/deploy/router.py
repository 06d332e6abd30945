"""`/deploy`: read the text once, then hand each request to the use case that answers it."""

from __future__ import annotations

from commands.deploy.gates import GateCommands
from commands.deploy.parse import (
    EnvironmentStatus,
    LockRequest,
    RestoreRequest,
    UnlockRequest,
    parse_deploy,
)
from commands.deploy.usecases import DeployCommands
from commands.exchange import Answer, Invocation, Later, Outcome
from pipeline.kernel.config import Config


class DeployRouter:
    def __init__(self, *, config: Config, deploy: DeployCommands, gates: GateCommands) -> None:
        self._config = config
        self._deploy = deploy
        self._gates = gates

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/deploy …`. Raises UsageError (nothing recorded) for text it cannot read."""
        parsed = parse_deploy(inv.text, self._config)
        if isinstance(parsed, EnvironmentStatus):
            return Outcome(reply=await self._gates.environment(parsed.environment))
        if isinstance(parsed, LockRequest):
            return await self._gates.lock(parsed, user_id=inv.user_id)
        if isinstance(parsed, UnlockRequest):
            return await self._gates.unlock(parsed, user_id=inv.user_id)
        if isinstance(parsed, RestoreRequest):
            request = parsed

            async def restore() -> Outcome:
                return await self._gates.restore(
                    request, user_id=inv.user_id, channel_id=inv.channel_id
                )

            return Later(restore)
        return await self._deploy.answer(parsed, inv)

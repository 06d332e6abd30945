"""`/deploy` is answered by two features: the gates people steer by hand (`commands.gates`)
and deploys (`commands.deploy`). Its text is offered to the gates' parser first; any other
text is a deploy's."""

from __future__ import annotations

from commands.deploy.parse import parse_deploy
from commands.deploy.usecases import DeployCommands
from commands.exchange import Answer, Invocation
from commands.gates.parse import parse_gates
from commands.gates.usecases import GateCommands
from pipeline.kernel.config import Config


class DeployRouter:
    def __init__(self, *, config: Config, deploy: DeployCommands, gates: GateCommands) -> None:
        self._config = config
        self._deploy = deploy
        self._gates = gates

    async def on_command(self, inv: Invocation) -> Answer:
        """Answer `/deploy …`. Raises UsageError (nothing recorded) for text it cannot read."""
        gate = parse_gates(inv.text, self._config)
        if gate is not None:
            return await self._gates.answer(gate, inv)
        return await self._deploy.answer(parse_deploy(inv.text, self._config), inv)

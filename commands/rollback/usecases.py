"""`/rollback`: declared in the manifest; until the rollback command lands it says what to do."""

from __future__ import annotations

from commands.exchange import Invocation, Outcome

NOT_YET = (
    "`/rollback` is not available in this version yet, so nothing was changed.\n"
    "To go back now, deploy the previous version through the usual approvals: "
    "`/deploy <environment> <service> <previous-version>`. "
    "`/deploy status <deployment-id>` shows each service's previous version "
    "(`versions.<service>.from`), and `/deploy history <environment>` lists recent runs."
)


class RollbackCommands:
    async def on_command(self, inv: Invocation) -> Outcome:
        return Outcome(reply=NOT_YET, audit="refused: /rollback is not available yet")

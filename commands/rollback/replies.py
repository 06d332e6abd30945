"""What `/rollback` answers besides sentences: the requester's confirmation question."""

from __future__ import annotations

from dataclasses import dataclass

from store.deploy.models import Deployment


@dataclass(frozen=True)
class RollbackPrompt:
    """Reply: what the rollback will change, with Roll back / Cancel for the requester.

    When the run takes back deploys that ran migrations (`run.undoes_migrations`, seed 002:
    "Database errors: DO NOT rollback"), the question is asked even when `-y` said not to
    (`asked_despite_yes`).
    """

    run: Deployment
    asked_despite_yes: bool = False

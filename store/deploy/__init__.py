"""The deploy feature's records: models, the deployments repository and the rows it maps runs
to, canary stages, environment locks, and what each deploy card last showed."""

from __future__ import annotations

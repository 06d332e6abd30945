"""SQLite persistence: models, migrations, repositories and the audit log."""

from __future__ import annotations

from store.audit import AuditLog
from store.db import Store, StoreError
from store.deployments import DecisionResult, Deployments

__all__ = ["AuditLog", "DecisionResult", "Deployments", "Store", "StoreError"]

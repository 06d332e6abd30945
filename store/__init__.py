"""SQLite persistence: one database thread, migrations, one repository per feature, the audit log.

Raw IDs only: nothing here holds Slack markup.
"""

from __future__ import annotations

from store.audit import AuditEntry, AuditLog
from store.db import Store, StoreError
from store.deploy.repository import DecisionResult, Deployments
from store.incident.repository import Incidents

__all__ = [
    "AuditEntry",
    "AuditLog",
    "DecisionResult",
    "Deployments",
    "Incidents",
    "Store",
    "StoreError",
]

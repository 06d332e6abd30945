"""The incident feature on Slack: views (templates, forms) and the adapter (IncidentChat)."""

from __future__ import annotations

"""The incident feature's records: models and repository."""

from __future__ import annotations

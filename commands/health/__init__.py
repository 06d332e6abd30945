"""`/health`: parse and use case."""

from __future__ import annotations

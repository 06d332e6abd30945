"""`/health`: parse (text -> a request) and use case (the health table)."""

from __future__ import annotations

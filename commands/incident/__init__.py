"""`/incident`: parse (text -> requests, war-room names), use cases (declare, update, remind)."""

from __future__ import annotations

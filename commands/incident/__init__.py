"""`/incident`: parse (text -> requests, war-room names), use cases (declare, update, resolve),
reminders (the timers and posts of due updates)."""

from __future__ import annotations

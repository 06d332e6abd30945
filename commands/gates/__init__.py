"""The gates people steer by hand: parse (`/deploy lock|unlock|restore-db|status <env>`) and
use cases (locks, the wait's Cancel button, the environment view, database restores)."""

from __future__ import annotations

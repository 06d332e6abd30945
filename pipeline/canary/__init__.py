"""Canary releases on blue/green ECS services behind a weighted ALB listener."""

from __future__ import annotations

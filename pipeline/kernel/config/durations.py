"""Value types shared by every feature's settings: durations ("30s", "15m", "2h") and Slack IDs."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")


def parse_duration(value: Any) -> float:
    """Turn "30s", "15m", "2h" (or a number of seconds) into float seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '15m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; write it like '30s', '15m' or '2h'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way the config writes them ("90s" -> "1m 30s", 0.1 -> "100ms")."""
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return " ".join(p for p in parts if p) or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _slack_ids(values: list[str]) -> list[str]:
    for v in values:
        if not _SLACK_ID.match(v):
            raise ValueError(f"{v!r} is not a Slack user ID (U…/W…) or user-group ID (S…)")
    return values


SlackIds = Annotated[list[str], AfterValidator(_slack_ids)]


class SettingsModel(BaseModel):
    """Base of every config table: unknown keys are errors, and values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

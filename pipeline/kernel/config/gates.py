"""The gates around a deploy, per environment: deploy windows and freezes, a wait after the
last approval, the database to back up (and restore), the network a migration task runs in,
the order of service groups, and the bucket that keeps the records.

Windows follow seed 001 ("Tuesday 14:00-18:00, Wednesday 14:00-18:00, Thursday 14:00-16:00;
avoid Fridays and Mondays"); the wait, the backup and the records follow seeds 003 and 004.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from pipeline.kernel.config.durations import Duration, SettingsModel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<start>[0-2][0-9]:[0-5][0-9])\s*-\s*(?P<end>[0-2][0-9]:[0-5][0-9])\s*$"
)


@dataclass(frozen=True)
class Window:
    """Days of the week (0 = Monday) and a time range, in the schedule's time zone."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end


def parse_window(text: str) -> Window:
    """ "tue 14:00-18:00", "tue,wed 14:00-18:00" or "tue-thu 14:00-16:00"."""
    found = _WINDOW.match(text.lower())
    if found is None:
        raise ValueError(
            f"{text!r} is not a window; write it like 'tue 14:00-18:00' or 'tue-thu 14:00-16:00'"
        )
    days: set[int] = set()
    for part in found["days"].replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{text!r}: days are {', '.join(DAYS)}")
        a, b = DAYS.index(first), DAYS.index(last or first)
        if b < a:
            raise ValueError(f"{text!r}: {first}-{last} runs backwards")
        days.update(range(a, b + 1))
    start, end = _clock(found["start"], text), _clock(found["end"], text)
    if end <= start:
        raise ValueError(f"{text!r}: the window must end after it starts")
    return Window(frozenset(days), start, end)


def _clock(value: str, text: str) -> time:
    hours, minutes = (int(v) for v in value.split(":"))
    if hours > 23:
        raise ValueError(f"{text!r}: {value} is not a time of day")
    return time(hours, minutes)


class Freeze(SettingsModel):
    """Dates (inclusive, in the schedule's time zone) when nothing is deployed, and why."""

    start: date = Field(alias="from", description="First frozen day (YYYY-MM-DD).")
    end: date = Field(alias="to", description="Last frozen day (YYYY-MM-DD).")
    reason: str = Field(min_length=1, description="Shown to whoever tries to deploy.")

    @model_validator(mode="after")
    def _check(self) -> Freeze:
        if self.end < self.start:
            raise ValueError(f"freeze {self.start} to {self.end} ends before it starts")
        return self


class Schedule(SettingsModel):
    """When deploys may run. No windows: any time (freezes still apply)."""

    timezone: str = Field("UTC", description="IANA time zone of the windows and freezes.")
    windows: list[str] = Field(
        default_factory=list,
        description="Weekly windows such as 'tue 14:00-18:00'; empty: any time.",
    )
    freezes: list[Freeze] = Field(default_factory=list, description="Dated freezes.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; write it like 'Europe/Paris'"
            ) from None
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_window(text)
        return value

    def parsed(self) -> list[Window]:
        return [parse_window(w) for w in self.windows]

    def freeze_at(self, at: datetime) -> Freeze | None:
        local = at.astimezone(ZoneInfo(self.timezone)).date()
        return next((f for f in self.freezes if f.start <= local <= f.end), None)

    def open_at(self, at: datetime) -> bool:
        windows = self.parsed()
        local = at.astimezone(ZoneInfo(self.timezone))
        return not windows or any(w.contains(local) for w in windows)

    def next_open(self, at: datetime, *, horizon_days: int = 60) -> datetime | None:
        """The next moment a window opens, outside freezes (None when none within the horizon)."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        windows = self.parsed()
        for offset in range(horizon_days + 1):
            day = (local + timedelta(days=offset)).date()
            starts = sorted(
                datetime.combine(day, w.start, tzinfo=zone)
                for w in windows
                if day.weekday() in w.days
            )
            for start in starts:
                if start > local and self.freeze_at(start) is None:
                    return start
        return None


class Database(SettingsModel):
    """The environment's RDS instance: backed up before migrations, restorable to a new one."""

    instance: str = Field(min_length=1, description="RDS DB instance identifier.")
    snapshot_timeout_s: Duration = Field(
        1800.0,
        alias="snapshot_timeout",
        description="How long the snapshot may take to become available.",
    )
    restore_timeout_s: Duration = Field(
        3600.0, alias="restore_timeout", description="How long a restore may take."
    )


class Network(SettingsModel):
    """Where one-off tasks (migrations) run: awsvpc subnets and security groups."""

    subnets: list[str] = Field(min_length=1, description="Subnet IDs.")
    security_groups: list[str] = Field(min_length=1, description="Security group IDs.")
    assign_public_ip: bool = Field(False, description="Give the task a public IP.")
    launch_type: str = Field("FARGATE", description="FARGATE or EC2.")


class Records(SettingsModel):
    """The S3 bucket that keeps deployment records (seed 003: 365-day retention)."""

    bucket: str = Field(min_length=3, description="S3 bucket name.")
    prefix: str = Field("", description="Key prefix, such as 'production/'.")


class Migration(SettingsModel):
    """A service's migration: a one-off ECS task of the new revision, before services change."""

    command: list[str] = Field(min_length=1, description="The container command override.")
    container: str | None = Field(
        None, description="Container to run it in; default: the service's."
    )
    timeout_s: Duration = Field(900.0, alias="timeout", description="How long it may run.")

"""Sentences for people, kept as data: our own copy with named slots for what varies.

A `Line` is a template of our copy (Slack mrkdwn we wrote, `{name}` marking a slot) and the
values of its slots: text a person typed or a system returned (`str`: escaped when rendered),
numbers, and the people it names (`Person`, `People`: rendered as mentions). `bot/` renders
lines for Slack; nothing below `bot/` builds Slack markup or decides how a person is shown.
`counted` and `duration_words` are the one way any message says how many and how long.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Person:
    """A Slack user (U…/W…) or user group (S…), by ID."""

    id: str


@dataclass(frozen=True)
class People:
    """Several users or groups, shown as a comma-separated list."""

    ids: tuple[str, ...]

    @classmethod
    def of(cls, ids: Iterable[str]) -> People:
        return cls(tuple(ids))


Slot = str | int | float | Person | People


@dataclass(frozen=True)
class Line:
    """`template` is our copy, a `str.format` template; `slots` fill its `{name}`s."""

    template: str
    slots: Mapping[str, Slot] = field(default_factory=dict)

    @classmethod
    def literal(cls, copy: str) -> Line:
        """A line of our copy with no slots; braces in it are shown as they are."""
        return cls(_braces(copy))

    def render(self, *, text: Callable[[str], str], person: Callable[[str], str]) -> str:
        """The line with each slot turned into a string by `text` (for str and numbers) or
        `person` (for each ID); `People` are joined with ", "."""
        values = {}
        for name, value in self.slots.items():
            if isinstance(value, Person):
                values[name] = person(value.id)
            elif isinstance(value, People):
                values[name] = ", ".join(person(i) for i in value.ids) or "nobody"
            else:
                values[name] = text(str(value))
        return self.template.format_map(values)

    def plain(self) -> str:
        """The line as plain text, people as their IDs: for logs, the audit log and tests."""
        return self.render(text=str, person=str)

    def dumps(self) -> str:
        """The line as JSON, people kept as people: what the store keeps beside the plain text,
        so a message drawn later still names them (`loads` reads it back)."""
        slots: dict[str, Any] = {}
        for name, value in self.slots.items():
            if isinstance(value, Person):
                slots[name] = {"person": value.id}
            elif isinstance(value, People):
                slots[name] = {"people": list(value.ids)}
            else:
                slots[name] = value
        return json.dumps({"template": self.template, "slots": slots}, ensure_ascii=False)

    @classmethod
    def loads(cls, text: str) -> Line:
        """A line written by `dumps`."""
        data = json.loads(text)
        slots: dict[str, Slot] = {}
        for name, value in data["slots"].items():
            if isinstance(value, dict) and "person" in value:
                slots[name] = Person(value["person"])
            elif isinstance(value, dict) and "people" in value:
                slots[name] = People(tuple(value["people"]))
            else:
                slots[name] = value
        return cls(data["template"], slots)

    def after(self, copy: str) -> Line:
        """This line with our `copy` (shown as is) put before it."""
        return Line(f"{_braces(copy)} {self.template}", self.slots)

    def then(self, template: str, /, **slots: Slot) -> Line:
        """This line followed by more of our copy, with slots of its own."""
        return Line(f"{self.template} {template}", {**self.slots, **slots})


def _braces(copy: str) -> str:
    return copy.replace("{", "{{").replace("}", "}}")


def line(template: str, /, **slots: Slot) -> Line:
    """`Line(template, slots)`, written the way a sentence reads."""
    return Line(template, slots)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for one: "1 service", "3 services", "2 people"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def duration_words(seconds: float) -> str:
    """A duration as a sentence says it: "30 seconds" under a minute, then whole minutes
    ("1 minute", "60 minutes"), and past an hour also "(2h 15m)"."""
    if round(seconds) < 60:
        return counted(round(seconds), "second")
    minutes = round(seconds / 60)
    words = counted(minutes, "minute")
    if minutes <= 60:
        return words
    hours, rest = divmod(minutes, 60)
    return f"{words} ({hours}h{f' {rest}m' if rest else ''})"

"""A command's usage (`/deploy help`) as data: how to type it, what each form does, the names
it takes. `bot/usage.py` draws it for Slack (the heading, the bullets, the code spans).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.kernel.text import Line


@dataclass(frozen=True)
class Syntax:
    """One way to type the command (`typed`, shown as it is, placeholders and all) and what
    it does."""

    typed: str
    does: Line


@dataclass(frozen=True)
class Rule:
    """Something true of the forms around it (`-y` anywhere skips the question)."""

    text: Line


@dataclass(frozen=True)
class Choices:
    """The names a command takes in one place (its environments), in the order shown."""

    label: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Term:
    """A word the command takes (a severity) and what it means."""

    word: str
    meaning: Line


@dataclass(frozen=True)
class Glossary:
    """The words of one kind a command takes, under a title ("Severities")."""

    title: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Usage:
    """Reply: the help of one command.

    Shown in this order: the forms and rules, the choices, the notes, then the glossary.
    """

    forms: tuple[Syntax | Rule, ...]
    choices: tuple[Choices, ...] = ()
    notes: tuple[Line, ...] = ()
    glossary: Glossary | None = None

"""A command's usage (`commands/usage.py`) as Slack mrkdwn: a bold heading, one bullet per form
with the form as code, the names it takes as code spans."""

from __future__ import annotations

from typing import assert_never

from bot.mrkdwn import render
from commands.usage import Choices, Glossary, Rule, Syntax, Usage

_DRAWN: dict[int, tuple[Usage, str]] = {}
_DRAWN_MAX = 32


def usage_text(usage: Usage) -> str:
    """The help of a command, one line per form, rule, list of names and note. Drawn once per
    `Usage` object (each command's use case builds its help once and hands out that one)."""
    kept = _DRAWN.get(id(usage))
    if kept is not None and kept[0] is usage:
        return kept[1]
    if len(_DRAWN) >= _DRAWN_MAX:
        _DRAWN.clear()
    text = _drawn(usage)
    _DRAWN[id(usage)] = (usage, text)
    return text


def _drawn(usage: Usage) -> str:
    lines = ["*Usage*", *(_form(form) for form in usage.forms)]
    lines += [_choices(choices) for choices in usage.choices]
    lines += [render(note) for note in usage.notes]
    if usage.glossary is not None:
        lines.append(_glossary(usage.glossary))
    return "\n".join(lines)


def _form(form: Syntax | Rule) -> str:
    match form:
        case Syntax():
            return f"• `{form.typed}`: {render(form.does)}"
        case Rule():
            return f"• {render(form.text)}"
        case _:
            assert_never(form)


def _choices(choices: Choices) -> str:
    return f"{choices.label}: " + ", ".join(f"`{name}`" for name in choices.names)


def _glossary(glossary: Glossary) -> str:
    """The title, then one bullet per term (the title stays when there are none)."""
    terms = "\n".join(f"• `{t.word}` {render(t.meaning)}" for t in glossary.terms)
    return f"*{glossary.title}*\n{terms}"

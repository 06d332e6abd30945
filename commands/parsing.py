"""What the commands' parsers read the same way: a request for help, quoted words, versions,
lists of services."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pipeline.kernel.config import Config
from pipeline.kernel.errors import UsageError, options

# Slack turns straight quotes into typographic ones as people type.
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
# ASCII only: `\d` would also accept full-width and Arabic-Indic digits, which no image tag has.
VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z][0-9A-Za-z.-]*)?$", re.ASCII)


@dataclass(frozen=True)
class Help:
    """A request for a command's help (`/deploy help`, or no words at all)."""


def split_words(text: str) -> list[str]:
    """`/deploy` text as words, a quoted reason being one. Raises UsageError for an open quote."""
    try:
        return shlex.split(text.translate(_QUOTES))
    except ValueError:
        raise UsageError(
            'A quote is not closed in `{text}`; write a reason like `--break-glass "db is down"`.',
            text=text,
        ) from None


def service_list(word: str, config: Config) -> tuple[str, ...] | None:
    """The services a comma-separated `word` names, in order and each once; None for `all`.

    Raises UsageError for an empty name or an unknown one, naming the services there are.
    """
    if word.lower() == "all":
        return None
    names: list[str] = []
    for part in word.split(","):
        if not part:
            raise UsageError(
                "`{word}` has an empty service name; separate names with one comma. "
                "Services: {services}, or `all`.",
                word=word,
                services=options(config.services),
            )
        name = config.service(part).name
        if name not in names:
            names.append(name)
    return tuple(names)

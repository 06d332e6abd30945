"""How the process logs: text (the default) or one JSON object per line, both redacted.

Redaction is done on the formatted output of either format, so neither a message, its arguments
nor an exception's traceback can carry a Slack token or a configured secret to the log.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Slack's token prefixes: bot, user, app-level, configuration and legacy workspace tokens.
_TOKEN = re.compile(r"xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
REDACTED = "[redacted]"
# The dispatcher names a failure's reference id in its message, "... (ref a1b2c3)".
_REF_IN_MESSAGE = re.compile(r"\(ref `?([0-9a-f]{6,})`?\)")
# Ids a log call may pass with `extra=`; each becomes a JSON field of the same name.
ID_FIELDS = ("ref", "deployment_id", "incident_id")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Redactor:
    """Replaces Slack tokens, and each secret value it was given, with `[redacted]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _TOKEN.sub(REDACTED, text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, then the traceback, redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids known, exception."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        if "ref" not in line and (found := _REF_IN_MESSAGE.search(message)):
            line["ref"] = found.group(1)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Tokens and secrets contain no character JSON escapes, so redacting the encoded line
        # finds them wherever they are (message, arguments, traceback).
        return self._redact(json.dumps(line, ensure_ascii=False, default=str))


def formatter(fmt: LogFormat, redact: Redactor) -> logging.Formatter:
    return JsonFormatter(redact) if fmt is LogFormat.JSON else TextFormatter(redact)


def configure_logging(
    level: str, *, fmt: LogFormat = LogFormat.TEXT, secrets: Iterable[str] = ()
) -> None:
    """Log to stderr in `fmt`, redacting Slack tokens and `secrets` from every line."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt, Redactor(secrets)))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    quiet = logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING
    # Bolt logs the whole body of a request with a bad signature at INFO: attacker-chosen text,
    # and a real request's response_url. APScheduler says "Running job …" and "executed
    # successfully" at INFO for every sweep and timer. Below DEBUG their warnings still show.
    logging.getLogger("slack_bolt").setLevel(quiet)
    logging.getLogger("apscheduler").setLevel(quiet)

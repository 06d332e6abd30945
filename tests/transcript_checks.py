"""What every version of every message the bot sent must hold (issue 16's acceptance): a
`Recorder` keeps each version the local Slack received, and the checks read them as on-call
would at 3 a.m.: no card contradicting itself, every person a mention, no raw ids or JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from sandbox.slack import Change, ChangeKind, LocalSlack

# Lines that cannot both be true of one run: when a card shows one of the left, none of the
# right may be on it at the same time (compared without case). A rollback inside its window
# needs no approval, so its card must not say it awaits one.
CONTRADICTIONS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (
        "deployment successful",
        ("FAILED", "rolled back", "Automatic rollback", "Rejected by", "Cancelled by"),
    ),
    ("Rollback available", ("rollback window closed", "FAILED", "Rejected by", "Expired")),
    ("Automatic rollback completed", ("ROLLBACK FAILED", "deployment successful")),
    ("Rollback complete", ("rollback failed",)),
    # The status line, not a post-mortem's timeline ("investigating → identified").
    ("RESOLVED", ("Status: Investigating", "incident_post_update", "incident_resolve")),
    ("approvals 0/", ("deployment successful", "FAILED", "Rollback available")),
    ("no approval needed", ("awaiting approval", "Awaiting approval")),
)
# Ended cards keep no buttons that start or decide anything.
ENDED: Final = ("FAILED", "Rejected by", "Expired", "Cancelled by", "RESOLVED")
LIVE_BUTTONS: Final = ("deploy_approve", "deploy_reject", "canary_promote", "canary_abort")
_MENTION: Final = re.compile(r"<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+(?:\|[^>]*)?>")
# Slack ids carry a digit; a capitalised word ("UPDATE", "STATUS") is no id.
_RAW_ID: Final = re.compile(r"\b[UWS](?=[A-Z0-9]*\d)[A-Z0-9]{4,}\b")
_JSON: Final = re.compile(r"\{\s*\"[A-Za-z_]+\"\s*:")
# "by Name" where Name is not a mention: an action said without naming its person as one.
_BY_WITHOUT_MENTION: Final = re.compile(r"\b(?:by|By)\s+(?!<@|<!subteam)([A-Z][a-z]+)\b")
_NOT_PEOPLE: Final = frozenset({"Slack", "ECS", "The", "A", "An", "Deployment", "Rollback"})


@dataclass
class Version:
    """One version of one message: posted or updated, as Slack holds it after the call."""

    channel: str
    ts: str
    thread_ts: str | None
    broadcast: bool
    text: str
    blocks: list[dict[str, Any]]
    user: str

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def all_text(self) -> str:
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)

    @property
    def shown(self) -> str:
        """What a person reads: the text and every text of the blocks (not ids or values)."""
        return "\n".join([self.text, *_texts(self.blocks)])


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        for key, value in node.items():
            if key not in ("text", "value", "action_id", "block_id", "url"):
                found += _texts(value)
        if isinstance(node.get("text"), dict):
            found += _texts(node["text"])
        return found
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


@dataclass
class Recorder:
    """Every message version and ephemeral message the local Slack showed, in order."""

    slack: LocalSlack
    versions: list[Version] = field(default_factory=list)
    private: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue = self.slack.subscribe()

    def pump(self) -> Recorder:
        while not self._queue.empty():
            self._take(self._queue.get_nowait())
        return self

    def _take(self, change: Change) -> None:
        data = change.data
        if change.kind in (ChangeKind.MESSAGE_POSTED, ChangeKind.MESSAGE_UPDATED):
            self.versions.append(
                Version(
                    channel=str(change.channel),
                    ts=str(data["ts"]),
                    thread_ts=data.get("thread_ts"),
                    broadcast=data.get("subtype") == "thread_broadcast",
                    text=str(data.get("text") or ""),
                    blocks=list(data.get("blocks") or []),
                    user=str(data.get("user")),
                )
            )
        elif change.kind is ChangeKind.EPHEMERAL:
            blocks = data.get("blocks") or []
            self.private.append("\n".join([str(data.get("text") or ""), *_texts(blocks)]))

    def cards(self) -> list[Version]:
        """Every version of every top-level message."""
        return [v for v in self.pump().versions if not v.is_reply]

    def replies_to(self, ts: str) -> list[Version]:
        return [v for v in self.pump().versions if v.is_reply and v.thread_ts == ts]

    def loud(self) -> list[Version]:
        """What the channel sees: top-level messages and broadcast replies."""
        return [v for v in self.pump().versions if not v.is_reply or v.broadcast]


def contradictions(version: Version) -> list[str]:
    """The pairs of lines on this version of a card that cannot both be true."""
    text = version.all_text
    lower = text.lower()
    found = [
        f"{left!r} with {right!r}"
        for left, rights in CONTRADICTIONS
        if left.lower() in lower
        for right in rights
        if right.lower() in lower
    ]
    if any(word in version.text for word in ENDED):
        found += [f"ended card with live {b!r}" for b in LIVE_BUTTONS if f'"{b}' in text]
    return found


def unmentioned_people(text: str, names: list[str]) -> list[str]:
    """Raw ids, people's names said without a mention, and "by Someone" not as a mention."""
    bare = _MENTION.sub("", text)
    found = _RAW_ID.findall(bare)
    found += [name for name in names if name in bare]
    found += [m for m in _BY_WITHOUT_MENTION.findall(bare) if m not in _NOT_PEOPLE]
    return found


def raw_json(text: str) -> bool:
    return _JSON.search(text) is not None


def problems(recorder: Recorder, *, names: list[str]) -> list[str]:
    """Every breach of the acceptance rules in what was recorded, each said with its message."""
    found = []
    for card in recorder.cards():
        found += [f"{card.ts}: {c}" for c in contradictions(card)]
    for version in recorder.versions:
        shown = version.shown
        found += [f"{version.ts}: unmentioned {p!r}" for p in unmentioned_people(shown, names)]
        if raw_json(shown):
            found.append(f"{version.ts}: raw JSON")
    for text in recorder.private:
        found += [f"private: unmentioned {p!r}" for p in unmentioned_people(text, names)]
        if raw_json(text):
            found.append("private: raw JSON")
    return found

"""The sandbox tour as a transcript: everything the bot says in Slack, deterministic and readable.

Starts the sandbox in this process (ephemeral ports on 127.0.0.1, a temporary directory for the
config and database), drives the README's tour through the page's HTTP API as the people of
`sandbox/people.py` (what the page's JavaScript calls: typed slash commands, button clicks, form
submissions, the demo services' panel), waits for each step's end on the local Slack's change
feed, then writes every channel's messages, threads, ephemeral messages, pins, topics, invites
and modals as text, with what varies between runs (ts values, ids, clock readings, durations,
ports, paths) replaced by stable placeholders. Two runs on the same code give the same file.

    .venv/bin/python scripts/tour_transcript.py [--out FILE]

Used to check that a refactor changes nothing the bot says (diff the transcripts before and
after), and to read what on-call would read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    import aiohttp

    from sandbox.slack import Change, Ephemeral, LocalSlack, Message
    from sandbox.stack import Sandbox

Json = dict[str, Any]

# The tests' canary bakes (tests/sandbox/sandbox_client.py TEST_BAKES) for the first stage is too
# short for the 5xx gate to see `min_requests` at 5% of the demo traffic; 3 s (the sandbox's own
# first bake) lets the README's "erroring v1.3.0 fails the 5% stage" step fail on the gate.
BAKES: Final = ("3s", "1s", "1s")
STEP_TIMEOUT_S: Final = 60.0  # a step that takes longer has gone wrong
DEPLOYS: Final = "C0DEPLOYS"
INCIDENTS: Final = "C0INCIDENTS"
DEPLOY_CARD_EVENT: Final = "chatops_deploy_card"  # the metadata event type of a deploy card
ROLLBACK_REASON: Final = "login errors after the release"
INCIDENT_SUMMARY: Final = "auth-svc login failing"


# ---------------------------------------------------------------------------------------------
# Normalising what varies between runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Normaliser:
    """Replaces what legitimately varies between runs with placeholders.

    Ids are numbered in order of first appearance (`<id1>`, `<ref2>`...), so the transcript
    still shows which messages speak of the same deployment. Clock readings and durations get
    one placeholder per kind, unnumbered: whether two events fall in the same minute is luck.
    Versions, service names, people, states and counts are left alone.
    """

    numbered: dict[str, dict[str, str]] = field(default_factory=dict)

    def number(self, kind: str, value: str) -> str:
        seen = self.numbered.setdefault(kind, {})
        if value not in seen:
            seen[value] = f"<{kind}{len(seen) + 1}>"
        return seen[value]

    def __call__(self, text: str) -> str:
        for pattern, replace in self._rules():
            text = pattern.sub(replace, text)
        return text

    def _rules(self) -> Iterable[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
        def numbered(kind: str, group: int = 0) -> Callable[[re.Match[str]], str]:
            def sub(m: re.Match[str]) -> str:
                whole, value = m.group(0), m.group(group)
                return whole.replace(value, self.number(kind, value))

            return sub

        def fixed(text: str) -> Callable[[re.Match[str]], str]:
            return lambda m: m.expand(text)

        return (
            # Slack ts values of the local Slack ("1700000000.000042") the transcript has not
            # already named after their message.
            (_TS, numbered("ts")),
            # Deployment, rollback and incident ids: "<unix seconds>-<6 hex>".
            (_RUN_ID, numbered("id")),
            # Error references (bot/dispatch.py new_ref): "(ref `a1b2c3`)".
            (_REF, numbered("ref", 1)),
            # Image digests moto made up for this run's ECR images.
            (_DIGEST, numbered("digest", 1)),
            # Modal ids and the ids of channels created during the tour.
            (_VIEW_ID, numbered("view")),
            (_CHANNEL_ID, numbered("chan")),
            # Addresses and paths of this run.
            (_PORT, fixed("127.0.0.1:<port>")),
            (_TMP_PATH, fixed("<tmp>")),
            # Clock readings: dates, times, Slack's <!date^epoch^...> and JSON timestamps.
            (_ISO_DATETIME, fixed("<datetime>")),
            (_DATE, fixed("<date>")),
            (_COMPACT_DATE, fixed("<date>")),
            (_CLOCK, fixed("<time>")),
            (_EPOCH, fixed("<epoch>")),
            # How long something took or has left. Only where a duration is measured: the
            # configured ones ("updates every 15 minutes", "in the last 2h") are content.
            (_MEASURED_MINUTES, fixed(r"\1<duration>")),
            (_BAKE_LEFT, fixed("<duration> of bake left")),
            (_STARTS_IN, fixed(r"\1<duration>")),
            (_SLOW, fixed(r"\1<duration>")),
            (_LATENCY, fixed("· <n> ms")),
            (_JSON_MEASURE, fixed(r'"\1": <n>')),
            # A canary gate's figures: the demo traffic a colour got in a bake depends on how
            # long the bake really took, so the counts vary, and with errors so does the ratio.
            # No errors stays "5xx 0.0% (0/<n>)": that is the verdict.
            (_GATE_FIGURES, _gate_figures),
        )


def _gate_figures(m: re.Match[str]) -> str:
    errors = m.group("errors")
    if errors is None:
        return m.group(0) if m.group(0) == "5xx 0.0%" else "5xx <ratio>"
    return "5xx 0.0% (0/<n>)" if errors == "0" else "5xx <ratio> (<n>/<n>)"


_TS: Final = re.compile(r"\b1700000000\.\d{6}\b")
_RUN_ID: Final = re.compile(r"\b1[6-9]\d{8}-[0-9a-f]{6}\b")
_REF: Final = re.compile(r"\bref[ :]+`?([0-9a-f]{6})\b")
_DIGEST: Final = re.compile(r"\bsha256:([0-9a-f]{6,64})")
_VIEW_ID: Final = re.compile(r"\bV\d{8}\b")
_CHANNEL_ID: Final = re.compile(r"\bC\d{8}\b")
_PORT: Final = re.compile(r"\b127\.0\.0\.1:\d+")
_TMP_PATH: Final = re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s`'\"),;]+")
_ISO_DATETIME: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?"
)
_DATE: Final = re.compile(r"\b20\d{2}-\d{2}-\d{2}\b")
_COMPACT_DATE: Final = re.compile(r"(?<=-)20\d{6}(?=-)|\b20\d{6}T\d{6}Z?\b")
_CLOCK: Final = re.compile(r"\b\d{2}:\d{2}(?::\d{2})?(?= ?UTC\b)")
_EPOCH: Final = re.compile(r"\b1[6-9]\d{8}(?:\.\d+)?\b")
_MINUTES: Final = r"\d+ (?:seconds?|minutes?(?: \(\d+h(?: \d+m)?\))?)"
_MEASURED_MINUTES: Final = re.compile(
    rf"(Duration: |Time to resolve:\* |\bopen |last update |It has been ){_MINUTES}"
)
_SHORT: Final = r"\d+(?:\.\d+)?(?:ms|s|m|h)(?: \d+(?:\.\d+)?(?:ms|s|m))*"
_BAKE_LEFT: Final = re.compile(rf"\b{_SHORT} of bake left")
_STARTS_IN: Final = re.compile(rf"(starts in ){_SHORT}")
_SLOW: Final = re.compile(r"(slow )\d+(?:\.\d+)?s\b")
_LATENCY: Final = re.compile(r"· \d+(?:\.\d+)? ?ms\b")
_JSON_MEASURE: Final = re.compile(
    r'"(duration_minutes|duration_s|requests|slowest_s|elapsed_s)": '
    r"(?:null|-?\d+(?:\.\d+)?(?:e-?\d+)?)"
)
_GATE_FIGURES: Final = re.compile(r"5xx \d+\.\d%(?: \((?P<errors>\d+)/\d+\))?")


# ---------------------------------------------------------------------------------------------
# Driving the tour as people do
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something a person did, placed in its channel after every change seen before it."""

    channel: str
    after: int  # the highest local-Slack ts sequence number seen when it was done
    text: str


class Tour:
    """The people of the sandbox at its page: they type, click and submit over its HTTP API."""

    def __init__(self, sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.slack: LocalSlack = sandbox.slack
        self.http = http
        self.url = sandbox.url.rstrip("/")
        self.changes: list[Change] = []
        self.actions: list[Action] = []
        self.modal_users: dict[str, str] = {}
        self._queue = self.slack.subscribe()

    def close(self) -> None:
        self.pump()
        self.slack.unsubscribe(self._queue)

    def pump(self) -> list[Change]:
        """Every change published so far, in order."""
        while not self._queue.empty():
            self.changes.append(self._queue.get_nowait())
        return self.changes

    def _mark(self) -> int:
        """The newest ts the local Slack has handed out for anything a person can see."""
        ws = self.slack.workspace
        seen = [e.ts for e in ws.ephemerals]
        for channel in ws.channels.values():
            for message in channel.messages:
                seen += [message.ts, *(e.replaced_at for e in message.edits)]
        return max((_seq(ts) for ts in seen), default=0)

    def name(self, user: str) -> str:
        return self.slack.workspace.users[user].real_name

    def _did(self, channel: str, text: str) -> None:
        self.actions.append(Action(channel, self._mark(), text))

    async def _post(self, path: str, body: Json) -> Any:
        async with self.http.post(f"{self.url}{path}", json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"POST {path}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def _get(self, path: str, user: str) -> Any:
        async with self.http.get(f"{self.url}{path}", params={"user": user}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def type(self, user: str, text: str, *, channel: str = DEPLOYS) -> None:
        self._did(channel, f"{self.name(user)} types: {text}")
        await self._post("/api/command", {"user": user, "channel": channel, "text": text})

    async def click(self, user: str, message: Message | Ephemeral, action_id: str) -> None:
        block, element = _button(message.blocks or [], action_id)
        channel = message.channel or DEPLOYS
        label = _plain(element.get("text"))
        self._did(channel, f"{self.name(user)} clicks [{label}]({action_id}) on {message.ts}")
        await self._post(
            "/api/action",
            {
                "user": user,
                "channel": channel,
                "ts": message.ts,
                "block_id": block["block_id"],
                "action_id": action_id,
            },
        )

    async def modal(self, user: str) -> Json:
        """The modal `user` sees, once one is open for them."""
        await self.until(lambda: self.slack.workspace.views)
        opened = (await self._get("/api/modal", user))["modal"]
        if opened is None:
            raise RuntimeError(f"no modal is open for {self.name(user)}")
        self.modal_users[opened["id"]] = user
        return dict(opened)

    async def submit(self, user: str, channel: str, view: Json, values: dict[str, str]) -> None:
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        self._did(channel, f"{self.name(user)} submits the modal {view['id']}: {shown}")
        answer = await self._post(
            "/api/submit", {"user": user, "view_id": view["id"], "values": values}
        )
        if not answer.get("ok"):
            raise RuntimeError(f"the modal {view['id']} was refused: {answer}")

    async def fault(self, user: str, service: str, version: str, mode: str) -> None:
        self._did(
            DEPLOYS, f"{self.name(user)} sets {service} {version} to {mode} under Demo services"
        )
        await self._post(
            "/api/services/fault",
            {"user": user, "service": service, "version": version, "mode": mode},
        )

    async def until(self, holds: Callable[[], Any], *, within_s: float = STEP_TIMEOUT_S) -> Any:
        """Wait, change by change in the local Slack, until `holds()` is truthy; return it.
        On a sandbox on virtual time (the tests'), its time flows only while the tour waits."""
        with self.slack.workspace.feed.subscription() as changes, self.sandbox.waiting():
            async with asyncio.timeout(within_s):
                while not (found := holds()):
                    await changes.get()
        return found

    # What the tour waits for

    def cards(self, channel: str = DEPLOYS) -> list[Message]:
        bot = self.slack.workspace.bot_user
        return [
            m
            for m in self.slack.workspace.channel(channel).messages
            if m.user == bot and m.blocks and not m.is_reply
        ]

    async def new_card(self, before: int, *, channel: str = DEPLOYS) -> Message:
        found = await self.until(lambda: self.cards(channel)[before:])
        return found[0]  # type: ignore[no-any-return]

    async def card_says(self, card: Message, *words: str) -> None:
        await self.until(lambda: any(w in _all_text(card) for w in words))

    async def ephemeral(self, user: str, words: str, since: int) -> Ephemeral:
        found = await self.until(
            lambda: [
                e
                for e in self.slack.workspace.ephemerals[since:]
                if e.user == user and words in (e.text + json.dumps(e.blocks))
            ]
        )
        return found[0]  # type: ignore[no-any-return]

    async def said(self, channel: str, words: str, *, after: int = 0) -> None:
        """Wait until a message of `channel` (or a reply in it) after the first `after` says
        `words`."""
        messages = self.slack.workspace.channel(channel).messages
        await self.until(lambda: any(words in _all_text(m) for m in messages[after:]))


def _button(blocks: Sequence[Json], action_id: str) -> tuple[Json, Json]:
    for block in blocks:
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("action_id") == action_id:
                return block, element
    raise RuntimeError(f"no button {action_id} on the message")


def _all_text(message: Message) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


async def run_tour(tour: Tour) -> None:
    """The README's tour, step by step, each step waited for on the change feed."""
    from sandbox.people import APPROVERS, INCIDENTS, ON_CALL, OUTSIDER, REQUESTER

    ws = tour.slack.workspace
    sam, on_call, outsider = REQUESTER.id, ON_CALL.id, OUTSIDER.id
    priya, marcus = (p.id for p in APPROVERS)

    # 1. /deploy production all by the requester; refused clicks; two approvals; the canary.
    await tour.type(sam, "/deploy production all")
    production = await tour.new_card(0)
    await tour.card_says(production, "approvals 0/2")
    for who, reply in (
        (outsider, "Only approvers"),  # not an approver
        (sam, "Only approvers"),  # the requester (not an approver either)
        (priya, ""),  # the first approval: no reply, the card says 1/2
        (priya, "already decided"),  # the same approver again
    ):
        since = len(ws.ephemerals)
        await tour.click(who, production, "deploy_approve")
        if reply:
            await tour.ephemeral(who, reply, since)
        else:
            await tour.card_says(production, "approvals 1/2")
    await tour.click(marcus, production, "deploy_approve")
    # auth-svc's canary: held, a refused Abort, resumed, the 5% stage promoted.
    await tour.card_says(production, "stage 1/3")
    await tour.click(priya, production, "canary_hold")
    await tour.card_says(production, "Held* by")
    since = len(ws.ephemerals)
    await tour.click(outsider, production, "canary_abort")
    await tour.ephemeral(outsider, "", since)  # whatever the answer is
    await tour.click(marcus, production, "canary_resume")
    await tour.until(lambda: "Held* by" not in _all_text(production))
    await tour.click(priya, production, "canary_promote")
    await tour.card_says(production, "deployment successful", "FAILED")
    production_id = _deployment_id(production)

    # 2. A broken version deployed to staging: health checks fail, automatic rollback.
    await tour.fault(sam, "auth-svc", "v1.4.0", "unhealthy")
    before = len(tour.cards())
    await tour.type(sam, "/deploy staging auth-svc v1.4.0")
    staging = await tour.new_card(before)
    await tour.card_says(staging, "Automatic rollback completed", "ROLLBACK FAILED")

    # 3. Reading the record, and a typo: each answered privately.
    for command, reply in (
        ("/deploy history production", "Recent deployments"),
        (f"/deploy status {production_id}", production_id),
        ("/deploy status production", "`production`"),
        ("/health production", "Health of"),
        ("/health production auth-svc --full", "Health of"),
        ("/deploy prodution all", "prodution"),
    ):
        since = len(ws.ephemerals)
        await tour.type(sam, command)
        await tour.ephemeral(sam, reply, since)

    # 4. On-call rolls auth-svc back in production, from the question only they see.
    since = len(ws.ephemerals)
    before = len(tour.cards())
    await tour.type(on_call, f"/rollback production auth-svc {ROLLBACK_REASON}")
    question = await tour.ephemeral(on_call, "rollback_confirm", since)
    await tour.click(on_call, question, "rollback_confirm")
    rollback = await tour.new_card(before)
    await tour.card_says(rollback, "Rollback complete", "failed", "FAILED")
    await tour.card_says(production, "Rolled back by", "rolled back by")

    # 5. The canary's 5xx gate: auth-svc v1.3.0 erroring fails the 5% stage.
    await tour.fault(sam, "auth-svc", "v1.3.0", "erroring")
    before = len(tour.cards())
    await tour.type(sam, "/deploy production auth-svc")
    canary = await tour.new_card(before)
    await tour.card_says(canary, "approvals 0/2")
    await tour.click(priya, canary, "deploy_approve")
    await tour.card_says(canary, "approvals 1/2")
    await tour.click(marcus, canary, "deploy_approve")
    await tour.card_says(canary, "Automatic rollback completed", "ROLLBACK FAILED")

    # 6. Help.
    for command in ("/deploy help", "/rollback help", "/incident help"):
        since = len(ws.ephemerals)
        await tour.type(sam, command)
        await tour.ephemeral(sam, "Usage", since)

    # 7. A P1 from #incidents: war room, an update and the resolution through the forms.
    since = len(ws.ephemerals)
    await tour.type(on_call, f"/incident p1 {INCIDENT_SUMMARY}", channel=INCIDENTS.id)
    await tour.ephemeral(on_call, "declared", since)
    room = next(c for c in ws.channels.values() if c.name.startswith("inc-"))
    alert = ws.message(room.id, room.pins[0])
    since = len(ws.ephemerals)
    await tour.type(on_call, "/incident list", channel=room.id)
    await tour.ephemeral(on_call, "Open incidents", since)

    await tour.click(on_call, alert, "incident_post_update")
    form = await tour.modal(on_call)
    posted = len(room.messages), len(ws.channel(INCIDENTS.id).messages)
    await tour.submit(
        on_call,
        room.id,
        form,
        {
            "status": "identified",
            "action": "Rolled auth-svc back to v1.2.0; watching the login error rate",
            "eta": "15m",
            "impact": "Some users cannot log in",
        },
    )
    await tour.said(room.id, "UPDATE", after=posted[0])
    await tour.said(INCIDENTS.id, "UPDATE", after=posted[1])

    await tour.click(on_call, alert, "incident_resolve")
    form = await tour.modal(on_call)
    posted = len(room.messages), len(ws.channel(INCIDENTS.id).messages)
    await tour.submit(
        on_call,
        room.id,
        form,
        {
            "impact": "Some users could not log in",
            "resolution": "auth-svc rolled back to v1.2.0",
            "follow_up": "Add a login canary check",
        },
    )
    await tour.said(room.id, "Post-mortem", after=posted[0])
    await tour.said(INCIDENTS.id, "RESOLVED", after=posted[1])


def _deployment_id(card: Message) -> str:
    found = _RUN_ID.search(_all_text(card))
    if found is None:
        raise RuntimeError("the card names no deployment id")
    return found.group(0)


# ---------------------------------------------------------------------------------------------
# Writing the transcript
# ---------------------------------------------------------------------------------------------


def _plain(text: Any) -> str:
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return "" if text is None else str(text)


def _rich(element: Json) -> str:
    kind = element.get("type")
    if kind in ("text", "link"):
        return str(element.get("text") or element.get("url") or "")
    if kind == "user":
        return f"<@{element.get('user_id')}>"
    if kind == "emoji":
        return f":{element.get('name')}:"
    return "".join(_rich(e) for e in element.get("elements") or [])


def render_element(element: Json) -> list[str]:
    """A block element: a button as `[Label](action_id)`, with its style, value and confirm."""
    kind = element.get("type")
    if kind == "button":
        line = f"[{_plain(element.get('text'))}]({element.get('action_id')})"
        extras = [f"{k}={element[k]}" for k in ("style", "value", "url") if element.get(k)]
        lines = [" ".join([line, *extras])]
        dialog = element.get("confirm")
        if dialog:
            lines.append(
                f"    confirm: {_plain(dialog.get('title'))!r} {_plain(dialog.get('text'))!r} "
                f"[{_plain(dialog.get('confirm'))}] [{_plain(dialog.get('deny'))}]"
            )
        return lines
    if kind in ("plain_text", "mrkdwn"):
        return [_plain(element)]
    if kind == "image":
        return [f"[image: {element.get('alt_text', '')}]"]
    if kind in ("static_select", "plain_text_input", "overflow", "datepicker"):
        initial = element.get("initial_value") or _plain(
            (element.get("initial_option") or {}).get("text")
        )
        options = [_plain(o.get("text")) for o in element.get("options") or []]
        parts = [f"<{kind} {element.get('action_id')}>"]
        if options:
            parts.append("options: " + " | ".join(options))
        if initial:
            parts.append(f"initial: {initial!r}")
        return [" ".join(parts)]
    return [json.dumps(element, sort_keys=True, ensure_ascii=False)]


def render_blocks(blocks: Sequence[Json]) -> list[str]:
    """Block Kit as text: header, section (text, fields, accessory), context, actions, inputs."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"# {_plain(block.get('text'))}")
        elif kind == "section":
            if block.get("text"):
                lines.extend(_plain(block.get("text")).splitlines() or [""])
            for item in block.get("fields") or []:
                lines.append(f"  | {_plain(item)}")
            if isinstance(block.get("accessory"), dict):
                lines.extend(f"  {x}" for x in render_element(block["accessory"]))
        elif kind == "context":
            texts = [" ".join(render_element(e)) for e in block.get("elements") or []]
            lines.extend(f"> {t}" for t in " · ".join(texts).splitlines())
        elif kind == "actions":
            for element in block.get("elements") or []:
                lines.extend(f"  {x}" for x in render_element(element))
        elif kind == "divider":
            lines.append("---")
        elif kind == "input":
            optional = " (optional)" if block.get("optional") else ""
            element = " ".join(render_element(block.get("element") or {}))
            lines.append(
                f"{block.get('block_id')}: {_plain(block.get('label'))}{optional} {element}"
            )
        elif kind == "rich_text":
            lines.extend(_rich(block).splitlines())
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        else:
            lines.append(json.dumps(block, sort_keys=True, ensure_ascii=False))
    return lines


def render_content(text: str, blocks: Sequence[Json] | None, attachments: Any = None) -> list[str]:
    """A message's notification text, then its blocks (when it has any)."""
    if not blocks:
        lines = text.splitlines() or [""]
    else:
        lines = [f"(text) {line}" for line in text.splitlines()] + render_blocks(blocks)
    for attachment in attachments or []:
        lines.append(f"(attachment, colour {attachment.get('color', '-')})")
        lines.extend(render_blocks(attachment.get("blocks") or []))
        if attachment.get("text"):
            lines.extend(str(attachment["text"]).splitlines())
    return lines


@dataclass
class Entry:
    """A message, an ephemeral message or a person's action, placed by its ts sequence."""

    seq: float
    lines: list[str]
    children: list[Entry] = field(default_factory=list)


def _seq(ts: str) -> int:
    return int(ts.rsplit(".", 1)[1])


def _indent(lines: Iterable[str], prefix: str) -> list[str]:
    return [f"{prefix}{line}".rstrip() for line in lines]


def _times(count: int) -> str:
    return f"{count} time{'' if count == 1 else 's'}"


class Transcript:
    """Everything the local Slack holds after the tour, and what its change feed saw happen.

    Channels in the order they were created; in each, the top-level messages, the ephemeral
    messages and what people did, in the order they happened; under a message, its thread.
    Messages are named by channel and position (`#deployments/2`, a reply `#deployments/2.3`),
    ephemeral messages by their order (`ephemeral 4`): what the transcript says instead of ts.
    """

    def __init__(
        self,
        slack: LocalSlack,
        changes: Sequence[Change],
        *,
        actions: Sequence[Action] = (),
        modal_users: Mapping[str, str] | None = None,
        normalise: Callable[[str], str] | None = None,
    ) -> None:
        self.slack = slack
        self.ws = slack.workspace
        self.changes = list(changes)
        self.actions = list(actions)
        self.modal_users = dict(modal_users or {})
        self.normalise = normalise or Normaliser()
        self.ephemerals = self._ephemeral_versions()
        self.labels = self._labels()

    # Reading the workspace and the feed

    def _ephemeral_versions(self) -> dict[str, list[Json]]:
        """Each ephemeral message's versions, oldest first, by ts (a deletion is a version)."""
        versions: dict[str, list[Json]] = {}
        for change in self.changes:
            if change.kind == "ephemeral":
                versions.setdefault(str(change.data["ts"]), []).append(change.data)
        for ephemeral in self.ws.ephemerals:  # any from before the tour subscribed
            versions.setdefault(ephemeral.ts, [ephemeral.to_api()])
        return dict(sorted(versions.items(), key=lambda item: _seq(item[0])))

    def _labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for channel in self.ws.channels.values():
            top = [m for m in channel.messages if not self._in_thread(m)]
            for number, message in enumerate(top, start=1):
                labels[message.ts] = f"#{channel.name}/{number}"
                for reply_number, reply in enumerate(self.thread(message), start=1):
                    labels[reply.ts] = f"#{channel.name}/{number}.{reply_number}"
        for number, ts in enumerate(self.ephemerals, start=1):
            labels[ts] = f"ephemeral {number}"
        return labels

    def _in_thread(self, message: Message) -> bool:
        """A reply whose parent is in the channel (a reply to a deleted message stands alone)."""
        if not message.is_reply:
            return False
        channel = self.ws.channel(message.channel)
        return any(m.ts == message.thread_ts for m in channel.messages)

    def thread(self, parent: Message) -> list[Message]:
        """The replies to `parent` in the order they were posted, except that the steps of
        services deployed side by side are grouped by service.

        Services roll out concurrently (`max_parallel`), so how their steps interleave in the
        thread ("register done", "update requested", "steady done", "health passed", each
        naming one service) changes from run to run. In every stretch of consecutive replies
        that each name one service, the replies are sorted by service name; each service's own
        steps keep their order, and every other reply (run started, canary stages, the outcome)
        stays where it was and ends the stretch.
        """
        channel = self.ws.channel(parent.channel)
        replies = [m for m in channel.messages if m.is_reply and m.thread_ts == parent.ts]
        ordered: list[Message] = []
        stretch: list[tuple[str, Message]] = []
        for reply in [*replies, None]:
            service = _SERVICE_STEP.match(reply.text) if reply is not None else None
            if service is not None and reply is not None:
                stretch.append((service.group(1), reply))
                continue
            ordered += [m for _, m in sorted(stretch, key=lambda pair: pair[0])]
            stretch = []
            if reply is not None:
                ordered.append(reply)
        return ordered

    def name(self, user: str | None) -> str:
        if user is None:
            return "nobody"
        if user == "USLACKBOT":
            return "Slackbot"
        known = self.ws.users.get(user)
        return known.real_name if known else user

    def readable(self, text: str) -> str:
        """Mentions as names, still marked as mentions (`<@Sam Rivera>`, `<#incidents>`);
        ts values as the messages' names."""
        text = re.sub(r"<@([UW][A-Z0-9]+)>", lambda m: f"<@{self.name(m.group(1))}>", text)

        def channel(m: re.Match[str]) -> str:
            found = self.ws.find_channel(m.group(1))
            return f"<#{found.name}>" if found else m.group(0)

        text = re.sub(r"<#(C[A-Z0-9]+)(?:\|[^>]*)?>", channel, text)
        return _TS.sub(lambda m: self.labels.get(m.group(0), m.group(0)), text)

    # Entries

    def message_entry(self, message: Message, pins: Sequence[str]) -> Entry:
        notes = []
        if message.ts in pins:
            notes.append("pinned")
        if message.reply_broadcast:
            notes.append("also sent to the channel")
        if message.edits:
            notes.append(self._edits_note(message))
        head = f"[{message.ts}] {self.name(message.user)}"
        lines = [head + (f" ({', '.join(notes)})" if notes else "") + ":"]
        lines += _indent(render_content(message.text, message.blocks, message.attachments), "    ")
        if message.metadata:
            meta = json.dumps(message.metadata, sort_keys=True, ensure_ascii=False)
            lines.append(f"    (metadata) {meta}")
        return Entry(_seq(message.ts), lines)

    def _edits_note(self, message: Message) -> str:
        # How many times a deploy card is updated depends on timing: the card has one task
        # redrawing it to its run's latest state (bot/deploy/adapter.py `redraw`), and a state
        # change that lands while a redraw is in flight is drawn together with the next one;
        # a canary's card is also redrawn as each stage's figures come in, as many times as fit
        # in the bakes. So for deploy cards the count is not shown, only that the card was
        # updated; their final state is. Every other message's count is exact.
        if _is_deploy_card(message):
            return "updated as its run went: count not shown, it depends on timing"
        return f"updated {_times(len(message.edits))}"

    def ephemeral_entry(self, versions: Sequence[Json]) -> Entry:
        first = versions[0]
        ts = str(first["ts"])
        via = first.get("via")
        who = "Slackbot" if via == "slackbot" else self.name(self.ws.bot_user)
        lines = [f"[{ts}] {who} (only {self.name(first.get('user'))} sees it, via {via}):"]
        for number, version in enumerate(versions):
            if version.get("deleted"):
                lines.append("  then deleted")
                continue
            if number:
                lines.append("  then replaced by:")
            body = render_content(str(version.get("text") or ""), version.get("blocks"))
            lines += _indent(body, "    ")
        return Entry(_seq(ts), lines)

    # Sections

    def channel_head(self, channel_id: str) -> list[str]:
        channel = self.ws.channel(channel_id)
        lines = [f"=== #{channel.name} ({channel.id}) ==="]
        if any(c.kind == "channel_created" and c.channel == channel_id for c in self.changes):
            lines.append(f"created by {self.name(channel.creator)} during the tour")
        if channel.is_private:
            lines.append("private")
        if channel.is_archived:
            lines.append("archived")
        lines.append(f"topic: {channel.topic}")
        topics = [
            a for a in self.slack.of("conversations.setTopic") if a.get("channel") == channel_id
        ]
        if topics:
            lines.append(f"  (set by the bot {_times(len(topics))})")
        for invite in self.slack.of("conversations.invite"):
            if invite.get("channel") == channel_id:
                users = [self.name(u) for u in str(invite.get("users", "")).split(",") if u]
                lines.append(f"the bot invites: {', '.join(users)}")
        lines.append(f"members: {', '.join(self.name(m) for m in channel.members)}")
        if channel.pins:
            lines.append(f"pinned: {', '.join(channel.pins)}")
        return lines

    def channel_lines(self, channel_id: str) -> list[str]:
        channel = self.ws.channel(channel_id)
        top: list[Entry] = []
        by_ts: dict[str, Entry] = {}
        for message in channel.messages:
            if self._in_thread(message):
                continue
            entry = self.message_entry(message, channel.pins)
            entry.children = [self.message_entry(r, channel.pins) for r in self.thread(message)]
            by_ts[message.ts] = entry
            top.append(entry)
        for versions in self.ephemerals.values():
            if versions[0].get("channel") == channel_id:
                entry = self.ephemeral_entry(versions)
                parent = by_ts.get(str(versions[0].get("thread_ts")))
                (parent.children if parent else top).append(entry)
        for action in self.actions:
            if action.channel == channel_id:
                top.append(Entry(action.after + 0.5, [f"» {action.text}"]))
        top.sort(key=lambda e: e.seq)  # stable: actions done one after the other stay in order
        lines: list[str] = []
        for entry in top:
            lines += entry.lines
            for child in entry.children:  # the thread's order, ephemeral replies at the end
                lines += _indent(["↳ " + child.lines[0], *child.lines[1:]], "    ")
        return lines

    def modal_lines(self) -> list[str]:
        lines = ["=== modals ==="]
        updates: dict[str, int] = {}
        closed: set[str] = set()
        for change in self.changes:
            view_id = str(change.data.get("id"))
            if change.kind == "view_updated":
                updates[view_id] = updates.get(view_id, 0) + 1
            elif change.kind == "view_closed":
                closed.add(view_id)
        for change in self.changes:
            if change.kind not in ("view_opened", "view_pushed"):
                continue
            view = change.data
            view_id = str(view.get("id"))
            who = self.name(self.modal_users.get(view_id))
            notes = [f"{change.kind.replace('view_', '')} for {who}"]
            if updates.get(view_id):
                notes.append(f"updated {_times(updates[view_id])}")
            notes.append("closed" if view_id in closed else "still open")
            lines.append(f"{view_id} ({', '.join(notes)}):")
            lines.append(
                f"    title {_plain(view.get('title'))!r}, submit {_plain(view.get('submit'))!r}, "
                f"close {_plain(view.get('close'))!r}, callback_id {view.get('callback_id')}"
            )
            if view.get("private_metadata"):
                lines.append(f"    (private_metadata) {view['private_metadata']}")
            lines += _indent(render_blocks(view.get("blocks") or []), "    ")
        return lines

    def lines(self) -> list[str]:
        out = [*LEGEND, ""]
        for channel_id in self.ws.channels:
            out += self.channel_head(channel_id)
            out += self.channel_lines(channel_id)
            out.append("")
        elsewhere = [v for v in self.ephemerals.values() if v[0].get("channel") is None]
        if elsewhere:
            out.append("=== ephemeral messages outside any channel ===")
            for versions in elsewhere:
                out += self.ephemeral_entry(versions).lines
            out.append("")
        return out + self.modal_lines()

    def text(self) -> str:
        return "\n".join(self.normalise(self.readable(line)) for line in self.lines()) + "\n"


LEGEND: Final = (
    "# The sandbox tour as the bot said it (scripts/tour_transcript.py).",
    "# Channels in the order they were created. In each, in the order they happened: messages",
    "# (#channel/N; a card as it ended, then its thread, #channel/N.M), messages only one person",
    "# sees (ephemeral N, each version), and what people did (»). Buttons: [Label](action_id).",
    "# <id1>, <time>, <duration>... stand for what changes from one run to the next.",
)

# A thread reply about one service's step: "✅ `auth-svc` health passed: ...".
_SERVICE_STEP: Final = re.compile(r"^\S+ `([a-z0-9][a-z0-9_-]*)` ")


def _is_deploy_card(message: Message) -> bool:
    return (message.metadata or {}).get("event_type") == DEPLOY_CARD_EVENT


# ---------------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------------


async def transcript(*, normalise: bool = True, log_level: str = "WARNING") -> tuple[str, float]:
    """Run the tour in a fresh sandbox; the transcript and how long the tour took (s)."""
    import aiohttp

    from sandbox.stack import Options, open_sandbox

    with tempfile.TemporaryDirectory(prefix="tour-transcript-") as directory:
        options = Options(
            directory=Path(directory), port=0, canary_bakes=BAKES, log_level=log_level
        )
        async with open_sandbox(options) as sandbox, aiohttp.ClientSession() as http:
            tour = Tour(sandbox, http)
            started = time.monotonic()
            failed: BaseException | None = None
            try:
                await run_tour(tour)
                await _settle(tour)
            except (TimeoutError, RuntimeError) as exc:
                failed = exc
            finally:
                tour.close()
            took = time.monotonic() - started
            text = Transcript(
                sandbox.slack,
                tour.changes,
                actions=tour.actions,
                modal_users=tour.modal_users,
                normalise=Normaliser() if normalise else str,
            ).text()
    if failed is not None:
        raise TourFailed(text, took) from failed
    return text, took


class TourFailed(Exception):
    """A step of the tour did not end as expected; `text` is the transcript so far."""

    def __init__(self, text: str, took: float) -> None:
        super().__init__("a step of the tour did not end as expected")
        self.text, self.took = text, took


async def _settle(tour: Tour, *, quiet_s: float = 1.0) -> None:
    """Wait until the local Slack has been quiet for `quiet_s` (late card redraws land)."""
    with tour.slack.workspace.feed.subscription() as changes, tour.sandbox.waiting():
        while True:
            try:
                async with asyncio.timeout(quiet_s):
                    await changes.get()
            except TimeoutError:
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the transcript here (default: stdout)")
    parser.add_argument(
        "--raw", action="store_true", help="keep ts, ids and times as they were (not comparable)"
    )
    parser.add_argument("--log-level", default="WARNING", help="the bot's (default: WARNING)")
    args = parser.parse_args(argv)

    from bot.logs import configure_logging
    from sandbox.environment import real_credentials

    found = real_credentials()
    if found:
        print(f"tour_transcript: unset {', '.join(found)} first", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    status = 0
    try:
        text, took = asyncio.run(transcript(normalise=not args.raw, log_level=args.log_level))
    except TourFailed as failed:
        traceback.print_exception(failed.__cause__ or failed, file=sys.stderr)
        text, took, status = failed.text, failed.took, 1
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    lines = text.count("\n")
    what = "FAILED, transcript so far" if status else "transcript"
    print(f"tour_transcript: {what}: {lines} lines, tour {took:.1f}s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

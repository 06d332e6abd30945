"""The memory of the source environment (issue 16): which versions of a promotion failed, or
were rolled back, in the environment it is promoted from within the last day, and the
pre-flight line that says so.

Reads the store's deploy records only (runs, targets, stage events); touches neither AWS nor
Slack, and decides nothing: the planner warns or refuses as the environment is configured.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.kernel.config import Environment
from pipeline.kernel.text import Line, Person, line
from pipeline.preflight import Check
from store.deploy.models import (
    Deployment,
    DeploymentState,
    RunKind,
    SourceSetback,
    StageEvent,
    Target,
    TargetStatus,
)
from store.deploy.repository import Deployments

MEMORY = timedelta(hours=24)
CHECK = "source history"

# A deploy stopped by `/rollback` records who stopped it in its timeline only, in the words
# Records written before migration 11 say it in plain text: "by U0123…" or "by U0123…: <reason>".
_STOPPED_BY = re.compile(r"^by ([UW][A-Z0-9]+)\b")


async def recent_setbacks(
    deployments: Deployments,
    env: Environment,
    planned: Iterable[Target],
    *,
    now: datetime,
) -> list[SourceSetback]:
    """What of the `planned` versions failed or was rolled back in the environment `env`
    promotes from, since `MEMORY` before `now`, oldest first; one per run and version.

    A setback is forgotten when the same version of that service was deployed there
    successfully since. Empty when `env` promotes from nowhere. Reads the store only.
    """
    if env.promote_from is None:
        return []
    source = env.promote_from
    wanted = {(t.service, t.target_version) for t in planned}
    since = now - MEMORY
    runs = await deployments.finished_since(environment=source, since=since)
    runs += [
        r
        for r in await deployments.in_states(
            [DeploymentState.ROLLING_BACK, DeploymentState.RUNNING]
        )
        if r.environment == source
    ]
    found: list[SourceSetback] = []
    succeeded: dict[tuple[str, str], datetime] = {}
    for run in runs:
        if run.kind is RunKind.DEPLOY and run.state is DeploymentState.SUCCEEDED:
            for t in run.active_targets:
                key = (t.service, t.target_version)
                if key in wanted and run.finished_at is not None:
                    succeeded[key] = max(run.finished_at, succeeded.get(key, run.finished_at))
            continue
        setback = await _setback(deployments, run, wanted, timezone=env.schedule.timezone)
        if setback is not None and setback.at >= since:
            found.append(setback)
    kept = []
    for s in found:
        services = tuple(
            name
            for name in s.services
            if (last := succeeded.get((name, s.version))) is None or last < s.at
        )
        if services:
            kept.append(s.model_copy(update={"services": services}))
    return sorted(kept, key=lambda s: s.at)


async def _setback(
    deployments: Deployments, run: Deployment, wanted: set[tuple[str, str]], *, timezone: str
) -> SourceSetback | None:
    """What `run` says of the versions `wanted`: a deploy of them that failed, or a rollback
    that took one of them back. None when it says nothing of them."""
    if run.kind is RunKind.ROLLBACK:
        if run.state not in _TOOK_EFFECT:
            return None  # rejected, expired or cancelled: nothing was taken back
        hits = [
            t
            for t in run.active_targets
            if t.current_version is not None and (t.service, t.current_version) in wanted
        ]
        if not hits:
            return None
        return SourceSetback(
            environment=run.environment,
            version=str(hits[0].current_version),
            services=tuple(t.service for t in hits if t.current_version == hits[0].current_version),
            at=run.started_at or run.created_at,
            run_id=run.id,
            rollback=True,
            by=run.requested_by,
            reason=run.reason,
            timezone=timezone,
        )
    if run.kind is not RunKind.DEPLOY or run.state not in _WENT_WRONG:
        return None
    hits = [
        t
        for t in run.active_targets
        if t.status is not TargetStatus.SKIPPED and (t.service, t.target_version) in wanted
    ]
    if not hits:
        return None
    at, by = _when_and_who(run, await deployments.events(run.id))
    return SourceSetback(
        environment=run.environment,
        version=hits[0].target_version,
        services=tuple(t.service for t in hits if t.target_version == hits[0].target_version),
        at=at,
        run_id=run.id,
        by=by,
        reason=run.error,
        reason_line=run.error_line,
        timezone=timezone,
    )


_TOOK_EFFECT = frozenset(
    {
        DeploymentState.RUNNING,
        DeploymentState.SUCCEEDED,
        DeploymentState.ROLLED_BACK,
        DeploymentState.ROLLBACK_FAILED,
    }
)
_WENT_WRONG = frozenset(
    {
        DeploymentState.ROLLING_BACK,
        DeploymentState.ROLLED_BACK,
        DeploymentState.ROLLBACK_FAILED,
    }
)


def _when_and_who(run: Deployment, events: Sequence[StageEvent]) -> tuple[datetime, str | None]:
    """When a deploy went wrong (its first failure, or when a person stopped it) and who
    stopped it, if a person did."""
    aborted = next((s for s in run.stages if s.aborted_by), None)
    if aborted is not None:
        return aborted.ended_at or run.updated_at, aborted.aborted_by
    for e in events:
        if e.stage == "rollback" and e.status == "requested":
            return e.at, _who_stopped(e)
        if e.status == "failed":
            return e.at, None
    return run.finished_at or run.updated_at, None


def _who_stopped(event: StageEvent) -> str | None:
    """Who stopped a deploy with `/rollback`: the person its sentence names (`detail_line`),
    else the id an older record's text starts with ("by U0123…")."""
    if event.detail_line:
        who = Line.loads(event.detail_line).slots.get("who")
        if isinstance(who, Person):
            return who.id
    stopped = _STOPPED_BY.match(event.detail or "")
    return stopped.group(1) if stopped else None


def setback_line(s: SourceSetback) -> Line:
    """The warning, as the plan card, a dry run and a refusal say it."""
    local = s.at.astimezone(ZoneInfo(s.timezone))
    slots = {
        "services": ", ".join(f"`{name}`" for name in s.services),
        "version": s.version,
        "env": s.environment,
        "time": f"{local:%H:%M} {s.timezone} ({local:%a})",
        "id": s.run_id,
    }
    if s.by is None:
        head = line(
            "*{services} {version} failed in `{env}`* at {time}, deployment `{id}`:", **slots
        )
        if s.reason_line:
            return _followed_by(head, Line.loads(s.reason_line))
        return head.then("{reason}", reason=s.reason or "no reason recorded")
    head = line(
        "*{services} {version} was rolled back in `{env}`* by {who} at {time}, {what} `{id}`:",
        who=Person(s.by),
        what="rollback" if s.rollback else "deployment",
        **slots,
    )
    if s.reason_line:
        return _followed_by(head, Line.loads(s.reason_line))
    return head.then("{reason}", reason=s.reason or "no reason given")


def _followed_by(head: Line, tail: Line) -> Line:
    """`head` then `tail`, `tail`'s slots renamed so that they cannot clash with `head`'s."""
    parts = []
    for literal, name, spec, conversion in string.Formatter().parse(tail.template):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            parts.append(
                "{r_"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
    return head.then("".join(parts), **{f"r_{k}": v for k, v in tail.slots.items()})


def setback_checks(
    env: Environment, setbacks: Sequence[SourceSetback], *, hotfix: bool
) -> list[Check]:
    """The pre-flight lines of the source's memory: one per setback, or one that says there
    is none. A setback blocks when the environment refuses them (`refuse_failed_in_source`),
    except in a `hotfix` that skips staging: that is the way through, warned of all the same."""
    if env.promote_from is None:
        return []
    refuse = env.refuse_failed_in_source and not hotfix
    if not setbacks:
        return [
            Check(
                CHECK,
                True,
                line(
                    "nothing planned failed or was rolled back in `{source}` in the last 24 hours",
                    source=env.promote_from,
                ),
            )
        ]
    return [Check(CHECK, False, setback_line(s), blocking=refuse) for s in setbacks]

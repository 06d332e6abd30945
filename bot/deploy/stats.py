"""`/deploy stats` as Slack text: one line per delivery figure, then the deploys that failed."""

from __future__ import annotations

from bot.blocks import MAX_SECTION_TEXT
from bot.mrkdwn import ELLIPSIS, join_lines, when
from commands.deploy.replies import DeliveryStats, Failure, FailureSign
from pipeline.kernel.text import counted

_UNITS = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


def span(seconds: float) -> str:
    """A duration in its two largest units: "45s", "12m 30s", "2h 5m", "3d 4h"."""
    rest = round(seconds)
    parts: list[str] = []
    for size, unit in _UNITS:
        amount, rest = divmod(rest, size)
        if amount and len(parts) < 2:
            parts.append(f"{amount}{unit}")
        elif parts:
            break
    return " ".join(parts) or "0s"


def stats_text(stats: DeliveryStats) -> str:
    """The figures, each with what it was computed from, then one line per change failure."""
    only = f" · `{stats.service}` only" if stats.service else ""
    lines = [
        f"*Delivery figures for `{stats.environment}`*{only} · last {stats.days} days, "
        f"to {when(stats.until)}",
        _frequency(stats),
        _lead_time(stats),
        _in_source(stats),
        _failure_rate(stats),
        _restore(stats),
    ]
    if stats.failures:
        lines.append("*Change failures*, newest first")
        lines.append(join_lines([_failure(f) for f in stats.failures], MAX_SECTION_TEXT))
    older = stats.failed - len(stats.failures)
    if older > 0:
        lines.append(f"{ELLIPSIS} and {older} older")
    return "\n".join(lines)


def _frequency(stats: DeliveryStats) -> str:
    rate = stats.deploys * 7 / stats.days
    return (
        f"• *Deployment frequency*: {counted(stats.deploys, 'deploy')} succeeded "
        f"({rate:.1f} a week)"
    )


def _lead_time(stats: DeliveryStats) -> str:
    if stats.lead_median_s is None or stats.lead_p90_s is None:
        return "• *Lead time* (request to success): no deploy succeeded"
    return (
        f"• *Lead time* (request to success): median {span(stats.lead_median_s)}, "
        f"90th percentile {span(stats.lead_p90_s)}"
    )


def _in_source(stats: DeliveryStats) -> str:
    if stats.source is None:
        return (
            f"• *Time in the source environment*: `{stats.environment}` is not promoted from "
            "another environment (no `promote_from`)"
        )
    head = f"• *Time in `{stats.source}` before promotion*: "
    if not stats.deploys:
        return head + "no deploy succeeded"
    never = (
        f"; {counted(stats.never_in_source, 'version')} had not succeeded there"
        if stats.never_in_source
        else ""
    )
    if stats.in_source_median_s is None:
        return head + f"no version promoted had succeeded there first{never}"
    return (
        head + f"median {span(stats.in_source_median_s)} "
        f"({counted(stats.in_source_versions, 'version')}{never})"
    )


def _failure_rate(stats: DeliveryStats) -> str:
    if stats.failure_rate is None:
        return "• *Change failure rate*: no deploy ended"
    return (
        f"• *Change failure rate*: {stats.failure_rate:.0%} "
        f"({stats.failed} of {counted(stats.ended, 'deploy')} that ended)"
    )


def _restore(stats: DeliveryStats) -> str:
    if not stats.failed:
        return "• *Time to restore*: no change failure"
    restored = f"{stats.restored} of {counted(stats.failed, 'failure')} restored"
    if stats.restore_median_s is None:
        return f"• *Time to restore*: none restored yet ({restored})"
    return f"• *Time to restore*: median {span(stats.restore_median_s)} ({restored})"


def _failure(failure: Failure) -> str:
    services = ", ".join(f"`{s}`" for s in failure.services)
    signs = [s.value for s in failure.signs if s is not FailureSign.INCIDENT]
    signs += [f"{severity.upper()} `{ident}`" for ident, severity in failure.incidents]
    restored = (
        f"restored in {span((failure.restored_at - failure.began_at).total_seconds())}"
        if failure.restored_at is not None
        else "not restored yet"
    )
    return f"• `{failure.deployment_id}` {services}: {', '.join(signs)}; {restored}"

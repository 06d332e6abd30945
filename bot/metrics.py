"""The bot's Prometheus series (`GET /metrics`, docs/operations.md), in a registry per runtime.

Each fact is taken where it already passes: Slack calls in the Web API client
(`MeteredWebClient`), AWS calls from botocore's events (`pipeline.aws.calls.listening`), stages
from the repository writes that change a run's stage (`TimedDeployments`), acks in the server,
reminders where they are posted; what the database holds (finished runs, pending approvals,
open incidents, watch alerts) is counted at each scrape (`store.tallies`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack import slack_error
from pipeline.aws.calls import AwsCall
from pipeline.kernel.config import Config
from store.db import Store, StoreError
from store.deploy.models import DeploymentState
from store.deploy.repository import Deployments
from store.tallies import Tallies, Tally

log = logging.getLogger(__name__)

# Slack shows an error to whoever clicked when the ack takes more than 3 s.
ACK_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# A stage lasts from a second (a pre-flight) to hours (a wait, a long bake).
STAGE_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
# A reminder fires within a couple of seconds of its due time; minutes late means it was missed.
LATENESS_BUCKETS_S = (0.0, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

_NO_TALLY = Tally(finished_runs={}, awaiting_approval={}, open_incidents={}, watch_alerts={})


class _Stored(Collector):
    """The series counted from the database, as the last `refresh` read them."""

    def __init__(self, config: Config) -> None:
        self._environments = tuple(config.environments)
        self._severities = tuple(config.incidents.severities)
        self.tally: Tally | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families(_NO_TALLY)

    def collect(self) -> Iterable[Metric]:
        return [] if self.tally is None else self._families(self.tally)

    def _families(self, tally: Tally) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "chatops_runs",
            "Runs that ended, by environment, kind and outcome (the run's final state).",
            labels=["environment", "kind", "outcome"],
        )
        for labels, count in sorted(tally.finished_runs.items()):
            runs.add_metric(list(labels), count)
        yield runs
        yield _gauge(
            "chatops_approvals_pending",
            "Requests awaiting approval now, by environment.",
            "environment",
            self._environments,
            tally.awaiting_approval,
        )
        yield _gauge(
            "chatops_incidents_open",
            "Incidents not resolved, by severity.",
            "severity",
            self._severities,
            tally.open_incidents,
        )
        alerts = CounterMetricFamily(
            "chatops_watch_alerts",
            "Alerts the post-deploy watch raised, by environment and kind.",
            labels=["environment", "kind"],
        )
        for where, count in sorted(tally.watch_alerts.items()):
            alerts.add_metric(list(where), count)
        yield alerts


def _gauge(
    name: str, doc: str, label: str, known: Sequence[str], counts: dict[str, int]
) -> GaugeMetricFamily:
    """Every configured value (0 when none), and any other the database holds."""
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in sorted({*known, *counts}):
        family.add_metric([value], counts.get(value, 0))
    return family


class Meter:
    """The series of one runtime. Its methods are called where the facts pass; each is quick,
    thread-safe (AWS calls are heard on worker threads) and never raises."""

    def __init__(self, config: Config, store: Store) -> None:
        self.registry = CollectorRegistry()
        self._tallies = Tallies(store)
        self._stored = _Stored(config)
        self._serve = make_aiohttp_handler(self.registry)
        r = self.registry
        self.ack_seconds = Histogram(
            "chatops_ack_seconds",
            "Seconds from a Slack request's arrival to its acknowledgement.",
            buckets=ACK_BUCKETS_S,
            registry=r,
        )
        self.slack_calls = Counter(
            "chatops_slack_calls", "Slack Web API calls, by method.", ["method"], registry=r
        )
        self.slack_errors = Counter(
            "chatops_slack_errors",
            "Slack Web API calls that failed, by method and Slack's error code.",
            ["method", "code"],
            registry=r,
        )
        self.aws_calls = Counter(
            "chatops_aws_calls",
            "AWS API calls (after botocore's retries), by service and method.",
            ["service", "method"],
            registry=r,
        )
        self.aws_errors = Counter(
            "chatops_aws_errors",
            "AWS API calls that failed, by service, method and AWS's error code.",
            ["service", "method", "code"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "chatops_stage_seconds",
            "How long runs spent in each stage, by environment, kind and stage.",
            ["environment", "kind", "stage"],
            buckets=STAGE_BUCKETS_S,
            registry=r,
        )
        self.reminders_fired = Counter(
            "chatops_reminders_fired",
            "Incident reminders posted, by severity.",
            ["severity"],
            registry=r,
        )
        self.reminder_lateness = Histogram(
            "chatops_reminder_lateness_seconds",
            "Seconds between a reminder's due time and its post, by severity.",
            ["severity"],
            buckets=LATENESS_BUCKETS_S,
            registry=r,
        )
        r.register(self._stored)

    def acked(self, seconds: float) -> None:
        self.ack_seconds.observe(seconds)

    def slack_call(self, method: str, error: str | None) -> None:
        self.slack_calls.labels(method).inc()
        if error is not None:
            self.slack_errors.labels(method, error).inc()

    def aws_call(self, call: AwsCall) -> None:
        self.aws_calls.labels(call.service, call.method).inc()
        if call.error is not None:
            self.aws_errors.labels(call.service, call.method, call.error).inc()

    def stage_ended(self, *, environment: str, kind: str, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(environment, kind, stage).observe(max(seconds, 0.0))

    def reminder_fired(self, severity: str, late_s: float) -> None:
        self.reminders_fired.labels(severity).inc()
        self.reminder_lateness.labels(severity).observe(max(late_s, 0.0))

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        """`GET /metrics`: count what the database holds now, then answer in the format the
        scraper asked for (Prometheus text, or OpenMetrics)."""
        try:
            self._stored.tally = await self._tallies.read()
        except StoreError:
            # The live series still answer; the counted ones are left out rather than stale.
            log.warning("could not count runs and incidents for /metrics", exc_info=True)
            self._stored.tally = None
        return await self._serve(request)


class MeteredWebClient(AsyncWebClient):
    """slack_sdk's client, counting every Web API call (the bot's, and Bolt's through it) by
    method, and each failure by Slack's error code."""

    def __init__(self, *, meter: Meter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._meter = meter

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackClientError as exc:
            self._meter.slack_call(api_method, slack_error(exc))
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._meter.slack_call(api_method, type(exc).__name__)
            raise
        self._meter.slack_call(api_method, None)
        return response


@dataclass(frozen=True)
class _InStage:
    stage: str
    since: datetime
    environment: str
    kind: str


class TimedDeployments(Deployments):
    """The deployment repository, timing each stage a run passes through in this process: from
    the write that entered it to the write that left it, at the times (the injected clock's)
    those writes carry. A stage the process started in before a restart is not timed."""

    def __init__(self, store: Store, *, meter: Meter) -> None:
        super().__init__(store)
        self._meter = meter
        self._current: dict[str, _InStage] = {}

    async def transition(self, deployment_id: str, **cas: Any) -> bool:
        moved = await super().transition(deployment_id, **cas)
        to: DeploymentState = cas["to"]
        if moved and ("stage" in cas or to.finished):
            await self._entered(deployment_id, None if to.finished else cas["stage"], cas["at"])
        return moved

    async def set_fields(self, deployment_id: str, *, at: datetime, **fields: Any) -> None:
        await super().set_fields(deployment_id, at=at, **fields)
        if "stage" in fields:
            await self._entered(deployment_id, fields["stage"], at)

    async def _entered(self, deployment_id: str, stage: str | None, at: datetime) -> None:
        was = self._current.pop(deployment_id, None)
        if was is not None and was.stage == stage:
            self._current[deployment_id] = was
            return
        if was is not None:
            self._meter.stage_ended(
                environment=was.environment,
                kind=was.kind,
                stage=was.stage,
                seconds=(at - was.since).total_seconds(),
            )
        if stage is None:
            return
        if was is not None:
            self._current[deployment_id] = _InStage(stage, at, was.environment, was.kind)
        elif (run := await self.get(deployment_id)) is not None:
            self._current[deployment_id] = _InStage(stage, at, run.environment, run.kind.value)

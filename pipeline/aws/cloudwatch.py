"""The `Metrics` port on CloudWatch: raw sums of an ALB target group's request metrics.

Sums are computed here from the raw series (no metric math). `HTTPCode_Target_5XX_Count` has
no data points when there were no 5xx, so requests with no 5xx series mean zero errors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.aws.calls import AwsAdapter, call_aws
from pipeline.kernel.config.canary import target_group_dimension
from pipeline.kernel.traffic import MetricSums, Minute

NAMESPACE = "AWS/ApplicationELB"
PERIOD_S = 60


def _series(
    client: Any, queries: Sequence[Mapping[str, object]], start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    """Each series GetMetricData returns for `queries`, page after page (on a worker thread)."""
    token = None
    while True:
        kwargs: dict[str, object] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
        }
        if token:
            kwargs["NextToken"] = token
        out = client.get_metric_data(**kwargs)
        yield from out["MetricDataResults"]
        token = out.get("NextToken")
        if not token:
            return


class BotoMetrics(AwsAdapter):
    """CloudWatch through boto3, off the event loop."""

    async def sums(
        self,
        *,
        region: str,
        load_balancer: str,
        target_group: str,
        start: datetime,
        end: datetime,
    ) -> MetricSums:
        if (end - start).total_seconds() < 1:
            # CloudWatch works in whole seconds and refuses an empty range; nothing can have
            # been measured in less than a second anyway.
            return MetricSums(requests=None, errors_5xx=None, slowest_s=None)
        dimensions = [
            {"Name": "TargetGroup", "Value": target_group_dimension(target_group)},
            {"Name": "LoadBalancer", "Value": load_balancer},
        ]

        def query(qid: str, metric: str, stat: str) -> dict[str, object]:
            return {
                "Id": qid,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": dimensions,
                    },
                    "Period": PERIOD_S,
                    "Stat": stat,
                },
            }

        def read() -> MetricSums:
            values: dict[str, list[float]] = {"requests": [], "errors": [], "latency": []}
            queries = [
                query("requests", "RequestCount", "Sum"),
                query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                query("latency", "TargetResponseTime", "Average"),
            ]
            client = self._clients.get("cloudwatch", region)
            for result in _series(client, queries, start, end):
                values[result["Id"]] += [float(v) for v in result["Values"]]
            requests = sum(values["requests"]) if values["requests"] else None
            errors = sum(values["errors"]) if values["errors"] else None
            if requests is not None and errors is None:
                errors = 0.0
            slowest = max(values["latency"]) if values["latency"] else None
            return MetricSums(requests=requests, errors_5xx=errors, slowest_s=slowest)

        return await call_aws(
            read,
            doing="read the target group's metrics",
            permission="cloudwatch:GetMetricData",
            resource=target_group,
        )


ECS_NAMESPACE = "AWS/ECS"
# GetMetricData takes at most 500 queries and returns at most 100,800 points per call; a watch
# asks for six series of at most a few hundred minutes, so one page is the usual answer.
_SERIES = (
    ("requests", NAMESPACE, "RequestCount", "Sum"),
    ("errors", NAMESPACE, "HTTPCode_Target_5XX_Count", "Sum"),
    ("avg", NAMESPACE, "TargetResponseTime", "Average"),
    ("p99", NAMESPACE, "TargetResponseTime", "p99"),
    ("cpu", ECS_NAMESPACE, "CPUUtilization", "Average"),
    ("memory", ECS_NAMESPACE, "MemoryUtilization", "Average"),
)
_FIELDS = {
    "requests": "requests",
    "errors": "errors_5xx",
    "avg": "avg_response_s",
    "p99": "p99_response_s",
    "cpu": "cpu_percent",
    "memory": "memory_percent",
}


class BotoServiceMetrics(AwsAdapter):
    """A watched service's minutes from CloudWatch's raw series (no metric math, no alarms)."""

    async def minutes(
        self,
        *,
        region: str,
        cluster: str,
        service: str,
        load_balancer: str | None,
        target_group: str | None,
        start: datetime,
        end: datetime,
        p99: bool = False,
    ) -> list[Minute]:
        if (end - start).total_seconds() < PERIOD_S:
            return []
        # From the start of its minute: CloudWatch's periods then are the clock's minutes (a
        # period from an odd second would be floored onto the minute before, and a watch that
        # began mid-minute would never see its first minutes).
        start = start.replace(second=0, microsecond=0)
        dims = {
            NAMESPACE: [
                {"Name": "TargetGroup", "Value": target_group_dimension(target_group or "")},
                {"Name": "LoadBalancer", "Value": load_balancer or ""},
            ],
            ECS_NAMESPACE: [
                {"Name": "ClusterName", "Value": cluster},
                {"Name": "ServiceName", "Value": service},
            ],
        }
        queries = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims[ns]},
                    "Period": PERIOD_S,
                    "Stat": stat,
                },
            }
            for qid, ns, name, stat in _SERIES
            if (ns == ECS_NAMESPACE or target_group is not None) and (p99 or qid != "p99")
        ]

        def read() -> list[Minute]:
            by_minute: dict[datetime, dict[str, float]] = {}
            client = self._clients.get("cloudwatch", region)
            for result in _series(client, queries, start, end):
                field = _FIELDS[result["Id"]]
                for at, value in zip(result["Timestamps"], result["Values"], strict=True):
                    minute = at.astimezone(UTC).replace(second=0, microsecond=0)
                    by_minute.setdefault(minute, {})[field] = float(value)
            return [Minute(at=at, **fields) for at, fields in sorted(by_minute.items())]

        return await call_aws(
            read,
            doing="read the service's CloudWatch metrics",
            permission="cloudwatch:GetMetricData",
            resource=service,
        )

"""The `Metrics` port on CloudWatch: raw sums of an ALB target group's request metrics.

Sums are computed here from the raw series (no metric math). `HTTPCode_Target_5XX_Count` has
no data points when there were no 5xx, so requests with no 5xx series mean zero errors.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.aws.calls import AwsClients, call_aws
from pipeline.kernel.config.canary import target_group_dimension
from pipeline.kernel.traffic import MetricSums

NAMESPACE = "AWS/ApplicationELB"
PERIOD_S = 60


class BotoMetrics:
    """CloudWatch through boto3, off the event loop."""

    def __init__(self, clients: AwsClients | None = None) -> None:
        self._clients = clients or AwsClients()

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
            token = None
            while True:
                kwargs: dict[str, object] = {
                    "MetricDataQueries": [
                        query("requests", "RequestCount", "Sum"),
                        query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                        query("latency", "TargetResponseTime", "Average"),
                    ],
                    "StartTime": start,
                    "EndTime": end,
                }
                if token:
                    kwargs["NextToken"] = token
                out = self._clients.get("cloudwatch", region).get_metric_data(**kwargs)
                for result in out["MetricDataResults"]:
                    values[result["Id"]] += [float(v) for v in result["Values"]]
                token = out.get("NextToken")
                if not token:
                    break
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

"""The `LoadBalancer` port on ELBv2: the weights of a listener's (or rule's) forward action.

Must not leak boto3 dicts or ClientError upward; keeps every other part of the action as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.aws.calls import AwsAdapter, call_aws
from pipeline.kernel.errors import NotFound
from pipeline.kernel.traffic import TargetHealth

_MISSING = {
    "ListenerNotFound": "The load balancer has no such listener; check `canary.*.listener`.",
    "ListenerNotFoundException": "The load balancer has no such listener; check "
    "`canary.*.listener`.",
    "RuleNotFound": "The listener has no such rule; check `canary.*.rule`.",
    "RuleNotFoundException": "The listener has no such rule; check `canary.*.rule`.",
    "TargetGroupNotFound": "No such target group; check `canary.*.<colour>.target_group`.",
    "TargetGroupNotFoundException": "No such target group; check `canary.*.<colour>.target_group`.",
}


def _forward(actions: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    for action in actions:
        if action.get("Type") == "forward":
            return action
    raise NotFound(f"`{arn}` does not forward traffic (its action is not `forward`).")


def _weights_of(action: dict[str, Any]) -> dict[str, int]:
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {str(g["TargetGroupArn"]): int(g.get("Weight", 1)) for g in groups}
    return {str(action["TargetGroupArn"]): 100} if action.get("TargetGroupArn") else {}


class BotoLoadBalancer(AwsAdapter):
    """ELBv2 through boto3, off the event loop."""

    def _actions(self, region: str, listener: str | None, rule: str | None) -> list[Any]:
        client = self._clients.get("elbv2", region)
        if listener is not None:
            out = client.describe_listeners(ListenerArns=[listener])
            return list(out["Listeners"][0]["DefaultActions"])
        out = client.describe_rules(RuleArns=[rule])
        return list(out["Rules"][0]["Actions"])

    async def weights(
        self, *, region: str, listener: str | None, rule: str | None
    ) -> dict[str, int]:
        arn = listener or rule or ""

        def read() -> dict[str, int]:
            return _weights_of(_forward(self._actions(region, listener, rule), arn))

        return await call_aws(
            read,
            doing="read the traffic weights",
            permission="elasticloadbalancing:DescribeListeners"
            if listener
            else "elasticloadbalancing:DescribeRules",
            resource=arn,
            missing=_MISSING,
        )

    async def set_weights(
        self, *, region: str, listener: str | None, rule: str | None, weights: Mapping[str, int]
    ) -> None:
        arn = listener or rule or ""

        def write() -> None:
            actions = self._actions(region, listener, rule)
            forward = _forward(actions, arn)
            config = dict(forward.get("ForwardConfig") or {})
            config["TargetGroups"] = [
                {"TargetGroupArn": tg, "Weight": int(w)} for tg, w in weights.items()
            ]
            new_forward = {k: v for k, v in forward.items() if k != "TargetGroupArn"}
            new_forward["ForwardConfig"] = config
            new_actions = [new_forward if a is forward else a for a in actions]
            client = self._clients.get("elbv2", region)
            if listener is not None:
                client.modify_listener(ListenerArn=listener, DefaultActions=new_actions)
            else:
                client.modify_rule(RuleArn=rule, Actions=new_actions)

        await call_aws(
            write,
            doing="shift the traffic weights",
            permission="elasticloadbalancing:ModifyListener"
            if listener
            else "elasticloadbalancing:ModifyRule",
            resource=arn,
            missing=_MISSING,
        )

    async def target_health(self, *, region: str, target_group: str) -> TargetHealth:
        def read() -> TargetHealth:
            out = self._clients.get("elbv2", region).describe_target_health(
                TargetGroupArn=target_group
            )
            states = [d["TargetHealth"]["State"] for d in out["TargetHealthDescriptions"]]
            healthy = sum(1 for s in states if s == "healthy")
            return TargetHealth(healthy=healthy, other=len(states) - healthy)

        return await call_aws(
            read,
            doing="read the target group's health",
            permission="elasticloadbalancing:DescribeTargetHealth",
            resource=target_group,
            missing=_MISSING,
        )

"""Who the bot's AWS credentials are, and what IAM says they may do: `chatops-bot doctor`'s
questions. Reads only; it never changes anything in AWS."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.aws.calls import AwsAdapter, call_aws

# IAM evaluates at most this many actions per SimulatePrincipalPolicy page; ask in chunks.
SIMULATE_BATCH = 100


def role_of(arn: str) -> str:
    """The IAM principal to simulate for a caller ARN: an assumed role's session ARN
    (`arn:aws:sts::1:assumed-role/name/session`) becomes the role (`arn:aws:iam::1:role/name`)."""
    prefix, _, rest = arn.partition(":assumed-role/")
    if not rest:
        return arn
    account = prefix.rsplit(":", 1)[-1]
    return f"arn:aws:iam::{account}:role/{rest.split('/', 1)[0]}"


class BotoIdentity(AwsAdapter):
    async def caller(self, *, region: str) -> str:
        """The ARN of the credentials' identity (sts:GetCallerIdentity, which needs no
        permission). Raises UpstreamError when AWS cannot be reached or refuses them."""

        def read() -> str:
            return str(self._clients.get("sts", region).get_caller_identity()["Arn"])

        return await call_aws(
            read,
            doing="say who these credentials are",
            permission="sts:GetCallerIdentity",
            resource="the credentials",
        )

    async def simulate(
        self, *, region: str, principal: str, actions: Sequence[str]
    ) -> dict[str, bool]:
        """Whether IAM allows each action to `principal` on any resource (a first answer: the
        policy's conditions and resources are not simulated). Raises UpstreamError when the
        simulation itself is refused or not offered (as by moto)."""

        def simulate() -> dict[str, bool]:
            client = self._clients.get("iam", region)
            allowed: dict[str, bool] = {}
            for start in range(0, len(actions), SIMULATE_BATCH):
                batch = list(actions[start : start + SIMULATE_BATCH])
                for page in client.get_paginator("simulate_principal_policy").paginate(
                    PolicySourceArn=principal, ActionNames=batch
                ):
                    for result in page["EvaluationResults"]:
                        allowed[result["EvalActionName"]] = result["EvalDecision"] == "allowed"
            return allowed

        return await call_aws(
            simulate,
            doing="simulate the bot's IAM policy",
            permission="iam:SimulatePrincipalPolicy",
            resource=principal,
        )

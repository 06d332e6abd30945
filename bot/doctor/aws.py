"""The doctor's AWS checks: who the credentials are, each environment's resources readable
(through the bot's own adapters, so with the bot's own calls), and the IAM actions the config
needs (iam:SimulatePrincipalPolicy where AWS offers it)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from bot.doctor.report import Finding, fail, not_checked, ok
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.aws.gates import BotoSnapshots
from pipeline.aws.iam import iam_policy
from pipeline.aws.identity import BotoIdentity, role_of
from pipeline.kernel.config import Config
from pipeline.kernel.config.deploy import Environment
from pipeline.kernel.errors import ChatOpsError, NotFound
from pipeline.kernel.ports import Ecs

AREA = "aws"
ATTACH = "attach the policy `chatops-bot iam-policy` prints to the bot's IAM identity."


@dataclass(frozen=True)
class AwsReaders:
    """The adapters the doctor reads through: the bot's own."""

    ecs: Ecs
    load_balancer: BotoLoadBalancer
    snapshots: BotoSnapshots
    identity: BotoIdentity


async def aws_findings(config: Config, aws: AwsReaders) -> list[Finding]:
    """Every AWS check; stops after the identity check when the credentials do not work."""
    region = next(iter(config.environments.values())).region
    try:
        caller = await aws.identity.caller(region=region)
    except ChatOpsError as exc:
        return [
            fail(
                AREA,
                f"the credentials do not work: {exc.user_message}",
                "give the bot credentials (a task role, AWS_PROFILE, or access keys).",
            )
        ]
    found = [ok(AREA, f"credentials are {caller} (sts:GetCallerIdentity).")]
    for env in config.environments.values():
        found += await _environment(config, env, aws)
    found.append(await _actions(config, aws, region=region, caller=caller))
    return found


async def _read(what: str, read: Awaitable[object], fix: str) -> Finding:
    try:
        await read
    except NotFound as exc:
        return fail(AREA, f"{what}: {exc.user_message}", fix)
    except ChatOpsError as exc:
        return fail(AREA, f"{what}: {exc.user_message}", ATTACH)
    return ok(AREA, f"{what}: readable.")


async def _environment(config: Config, env: Environment, aws: AwsReaders) -> list[Finding]:
    where = f"environments.{env.name}"
    found = []
    for svc in config.services.values():
        target = svc.canary.get(env.name)
        names = [target.blue.ecs_service, target.green.ecs_service] if target else [svc.ecs_service]
        for name in names:
            found.append(
                await _read(
                    f"{env.name}: ECS service {name} in cluster {env.cluster}",
                    aws.ecs.describe(region=env.region, cluster=env.cluster, service=name),
                    f"check {where}.cluster and services.{svc.name}; the service must exist.",
                )
            )
        if target is None:
            continue
        key = f"services.{svc.name}.canary.{env.name}"
        arn = target.listener or target.rule or ""
        found.append(
            await _read(
                f"{env.name}: {'listener' if target.listener else 'rule'} {arn}",
                aws.load_balancer.weights(
                    region=env.region, listener=target.listener, rule=target.rule
                ),
                f"put an existing listener ARN in {key}.listener.",
            )
        )
        for colour in (target.blue, target.green):
            found.append(
                await _read(
                    f"{env.name}: target group {colour.target_group}",
                    aws.load_balancer.target_health(
                        region=env.region, target_group=colour.target_group
                    ),
                    f"put an existing target group ARN in {key}.",
                )
            )
    if env.database is not None:
        found.append(
            await _read(
                f"{env.name}: database instance {env.database.instance}",
                aws.snapshots.instance(region=env.region, instance=env.database.instance),
                f"check {where}.database.instance.",
            )
        )
    if env.records is not None:
        found.append(
            not_checked(
                AREA,
                f"{env.name}: bucket {env.records.bucket}: the bot only writes there "
                "(s3:PutObject), and the doctor writes nothing.",
            )
        )
    return found


async def _actions(config: Config, aws: AwsReaders, *, region: str, caller: str) -> Finding:
    policy = iam_policy(config)
    actions = sorted({a for s in policy["Statement"] for a in s["Action"]})
    try:
        allowed = await aws.identity.simulate(
            region=region, principal=role_of(caller), actions=actions
        )
    except Exception as exc:  # noqa: BLE001 - any refusal means: not simulated, say why
        reason = exc.user_message if isinstance(exc, ChatOpsError) else type(exc).__name__
        return not_checked(
            AREA,
            f"IAM actions not simulated ({reason}); only the reads above were checked, with "
            "the bot's own read calls.",
        )
    denied = [a for a in actions if not allowed.get(a, False)]
    if denied:
        return fail(AREA, f"IAM denies {', '.join(denied)}.", ATTACH)
    return ok(AREA, f"IAM allows all {len(actions)} actions the config needs (simulated).")

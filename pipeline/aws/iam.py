"""The least-privilege IAM policy for a config: every action the adapters in this package call,
on the resources that config names. It calls no AWS API; `chatops-bot iam-policy` prints it.

Where AWS allows no resource-level permission (ECS task-definition reads and registration,
ELB and CloudWatch reads), the action is on `*`, as AWS requires. The config does not name
task-definition families, so the actions on task definitions are scoped by condition instead:
tags only as the bot registers a revision, one-off tasks only in the config's clusters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.kernel.config import Config
from pipeline.kernel.config.deploy import Environment

POLICY_VERSION = "2012-10-17"
# RDS names: the backup gate's snapshots, and the instances `/deploy restore-db` creates.
SNAPSHOT_PREFIX = "chatops-"
RESTORED_PREFIX = "restore-"
_ECR_HOST = ".dkr.ecr."


@dataclass
class _Statement:
    sid: str
    actions: list[str]
    resources: list[str] = field(default_factory=list)
    condition: dict[str, Any] | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions),
            "Resource": sorted(set(self.resources)) if self.resources != ["*"] else "*",
        }
        if self.condition is not None:
            out["Condition"] = self.condition
        return out


def _ecs(env: Environment, account: str, kind: str, rest: str) -> str:
    return f"arn:aws:ecs:{env.region}:{account}:{kind}/{rest}"


def _rds(env: Environment, account: str, kind: str, name: str) -> str:
    return f"arn:aws:rds:{env.region}:{account}:{kind}:{name}"


def ecr_repository_arn(image: str, region: str) -> str | None:
    """The ECR repository ARN of an image reference without a tag; None for another registry."""
    host, _, repository = image.partition("/")
    if _ECR_HOST not in host or not repository:
        return None
    registry = host.split(".", 1)[0]
    return f"arn:aws:ecr:{region}:{registry}:repository/{repository}"


def iam_policy(config: Config, *, account: str = "*") -> dict[str, Any]:
    """The identity policy the bot needs for `config` (AWS's JSON policy grammar).

    `account` is the AWS account id in ARNs; `*` matches the account the policy is attached in.
    """
    services: list[str] = []
    clusters: list[str] = []
    tasks: list[str] = []
    run_clusters: list[str] = []
    listeners: list[str] = []
    rules: list[str] = []
    repositories: list[str] = []
    objects: list[str] = []
    instances: list[str] = []
    snapshots: list[str] = []
    restores: list[str] = []
    definitions: list[str] = []
    migrates = any(s.migration is not None for s in config.services.values())
    for env in config.environments.values():
        cluster = _ecs(env, account, "cluster", env.cluster)
        clusters.append(cluster)
        definitions.append(_ecs(env, account, "task-definition", "*"))
        for svc in config.services.values():
            names = [svc.ecs_service]
            target = svc.canary.get(env.name)
            if target is not None:
                names = [target.blue.ecs_service, target.green.ecs_service]
                listeners += [target.listener] if target.listener else []
                rules += [target.rule] if target.rule else []
            services += [_ecs(env, account, "service", f"{env.cluster}/{n}") for n in names]
            repository = ecr_repository_arn(svc.image, env.region)
            if env.ecr_check and repository is not None:
                repositories.append(repository)
        if migrates and env.network is not None:
            run_clusters.append(cluster)
            tasks.append(_ecs(env, account, "task", f"{env.cluster}/*"))
        if env.records is not None:
            objects.append(f"arn:aws:s3:::{env.records.bucket}/{env.records.prefix}*")
        if env.database is not None:
            instances.append(_rds(env, account, "db", env.database.instance))
            snapshots.append(_rds(env, account, "snapshot", f"{SNAPSHOT_PREFIX}*"))
            restores.append(_rds(env, account, "db", f"{RESTORED_PREFIX}*"))
    statements = _ecs_statements(services, definitions, account)
    statements += _task_statements(run_clusters, definitions, tasks)
    statements += _traffic_statements(listeners, rules)
    if repositories:
        statements.append(_Statement("ImageTags", ["ecr:DescribeImages"], repositories))
    if objects:
        statements.append(_Statement("Records", ["s3:PutObject"], objects))
    statements += _database_statements(instances, snapshots, restores)
    return {"Version": POLICY_VERSION, "Statement": [s.render() for s in statements]}


def _ecs_statements(services: list[str], definitions: list[str], account: str) -> list[_Statement]:
    return [
        _Statement("Services", ["ecs:DescribeServices", "ecs:UpdateService"], services),
        _Statement(
            "TaskDefinitions",
            [
                "ecs:DescribeTaskDefinition",
                "ecs:ListTaskDefinitions",
                "ecs:RegisterTaskDefinition",
            ],
            ["*"],
        ),
        _Statement(
            "TagOwnRevisions",
            ["ecs:TagResource"],
            definitions,
            {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        ),
        _Statement(
            "PassTaskRoles",
            ["iam:PassRole"],
            [f"arn:aws:iam::{account}:role/*"],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]


def _task_statements(
    clusters: list[str], definitions: list[str], tasks: list[str]
) -> list[_Statement]:
    if not clusters:
        return []
    in_clusters = {"ArnEquals": {"ecs:cluster": sorted(set(clusters))}}
    return [
        _Statement("Migrations", ["ecs:RunTask"], definitions, in_clusters),
        _Statement("FindMigrations", ["ecs:ListTasks"], ["*"], in_clusters),
        _Statement("MigrationStatus", ["ecs:DescribeTasks"], tasks),
    ]


def _traffic_statements(listeners: list[str], rules: list[str]) -> list[_Statement]:
    if not listeners and not rules:
        return []
    reads = ["elasticloadbalancing:DescribeTargetHealth", "cloudwatch:GetMetricData"]
    reads += ["elasticloadbalancing:DescribeListeners"] if listeners else []
    reads += ["elasticloadbalancing:DescribeRules"] if rules else []
    out = [_Statement("CanaryReads", reads, ["*"])]
    if listeners:
        out.append(
            _Statement("CanaryListeners", ["elasticloadbalancing:ModifyListener"], listeners)
        )
    if rules:
        out.append(_Statement("CanaryRules", ["elasticloadbalancing:ModifyRule"], rules))
    return out


def _database_statements(
    instances: list[str], snapshots: list[str], restores: list[str]
) -> list[_Statement]:
    if not instances:
        return []
    # A filtered DescribeDBInstances (is the restored instance there yet?) is authorised
    # against `db:*` of the region, not the instance it filters on.
    regions_any_db = sorted({arn.rsplit(":", 1)[0] + ":*" for arn in instances})
    return [
        _Statement("Backup", ["rds:CreateDBSnapshot"], instances + snapshots),
        _Statement("BackupStatus", ["rds:DescribeDBSnapshots"], snapshots),
        _Statement("Instances", ["rds:DescribeDBInstances"], regions_any_db),
        _Statement(
            "RestoreDb",
            ["rds:RestoreDBInstanceFromDBSnapshot"],
            restores
            + snapshots
            + [a.replace(":db:*", f":{kind}:*") for a in regions_any_db for kind in _RESTORE_USES],
        ),
    ]


# Besides the new instance and the snapshot, a restore is authorised against the subnet group,
# option group and parameter group it gets (the source's defaults).
_RESTORE_USES = ("subgrp", "og", "pg")

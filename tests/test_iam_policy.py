"""`chatops-bot iam-policy` against what the bot really calls: the main flows (a canary and a
migrating deploy with backup, records and the ECR check, a /rollback, a restore, an incident)
run against moto, every request the bot's own clients send is recorded, and the policy for that
config allows each of them and nothing else (issue 19, point 4)."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import botocore.handlers
import pytest

from bot.deploy.views import APPROVE_ACTION
from bot.main import main
from pipeline.aws.calls import USER_AGENT
from pipeline.aws.iam import iam_policy
from pipeline.kernel.config import Config
from store.deploy.models import DeploymentState, RunKind
from tests.conftest import SERVICES, config_dict
from tests.driver import BotDriver, plan_cards, run_id_of
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.clock import FakeClock
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld, run_in_awsvpc_with_logs
from tests.fakes.health import FakeHealth
from tests.fakes.slack_api import FakeSlack

CANARY = "market-svc"
DB = "skillancer-prod-db"
BUCKET = "skillancer-deploy-records"
ONCALL = "UONCALL"
# What IAM authorises besides the operation itself, by AWS's documentation: a task definition
# registered with tags also needs ecs:TagResource; with a role, iam:PassRole.
IMPLIED = {"ecs:RegisterTaskDefinition": {"tags": "ecs:TagResource"}}
# botocore's service ids (in each request's event name) -> IAM's action prefixes.
PREFIX = {
    "ecs": "ecs",
    "elastic-load-balancing-v2": "elasticloadbalancing",
    "cloudwatch": "cloudwatch",
    "ecr": "ecr",
    "rds": "rds",
    "s3": "s3",
}


class Calls:
    """The IAM action of every request the bot's clients sent (their User-Agent names it)."""

    def __init__(self) -> None:
        self.actions: set[str] = set()

    def record(self, request: Any, event_name: str, **_: Any) -> None:
        agent = request.headers.get("User-Agent", b"")
        agent = agent.decode() if isinstance(agent, bytes) else agent
        if USER_AGENT not in agent:
            return
        _, service, operation = event_name.split(".")
        action = f"{PREFIX[service]}:{operation}"
        self.actions.add(action)
        # ECS speaks JSON; the only implied permissions here are ECS's.
        body = request.body if service == "ecs" else None
        params = json.loads(body) if isinstance(body, bytes | str) and body else {}
        for key, implied in IMPLIED.get(action, {}).items():
            if params.get(key):
                self.actions.add(implied)
        if {"taskRoleArn", "executionRoleArn"} & set(params):
            self.actions.add("iam:PassRole")


pytestmark = pytest.mark.own_aws_clients


@pytest.fixture
def calls(aws: None) -> Iterator[Calls]:
    """Installed ahead of moto's own handler, which answers (and so ends) `before-send`, in
    the clients the bot makes: this module's bots make new ones (`own_aws_clients`)."""
    recorder = Calls()
    builtin = botocore.handlers.BUILTIN_HANDLERS
    botocore.handlers.BUILTIN_HANDLERS = [("before-send", recorder.record), *builtin]
    try:
        yield recorder
    finally:
        botocore.handlers.BUILTIN_HANDLERS = builtin


@pytest.fixture
def gates(world: EcsWorld) -> GatesWorld:
    estate = GatesWorld()
    estate.database(DB)
    estate.bucket(BUCKET)
    for service in SERVICES:
        estate.push(f"skillancer/{service}", "v1.2.0", "v1.3.0")
    run_in_awsvpc_with_logs(
        world.client, cluster="skillancer-production", service="auth-svc", log_group="/ecs/auth"
    )
    return estate


@pytest.fixture
def canary(world: EcsWorld) -> CanaryWorld:
    estate = CanaryWorld(world, "production")
    svc = estate.add(CANARY, "v1.2.0")
    estate.register(svc.target_groups["green"], 2)
    return estate


@pytest.fixture
def config(health: FakeHealth, gates: GatesWorld, canary: CanaryWorld) -> Config:
    data = config_dict(health)
    prod = data["environments"]["production"]
    prod["ecr_check"] = True
    prod["rollbackers"] = [ONCALL]
    for env in data["environments"].values():
        env["network"] = {"subnets": [gates.subnet], "security_groups": [gates.security_group]}
    prod["database"] = {"instance": DB}
    prod["records"] = {"bucket": BUCKET, "prefix": "production/"}
    prod["canary"] = {
        "stages": [{"weight": 50, "bake": "2m"}, {"weight": 100, "bake": "2m"}],
        "check_every": "1m",
        "min_requests": 50,
    }
    data["services"]["auth-svc"]["migration"] = {"command": ["migrate"]}
    colours = {c: health.url(f"{CANARY}-{c}") for c in ("blue", "green")}
    data["services"][CANARY]["canary"] = {"production": canary.canary_config(CANARY, colours)}
    health.version_for = lambda service: "1.3.0" if service.endswith("-green") else "1.2.0"
    return Config.model_validate(data)


def _traffic(canary: CanaryWorld, clock: FakeClock) -> None:
    for minute in range(20):
        at = clock.now() + timedelta(minutes=minute, seconds=30)
        canary.traffic(CANARY, "green", requests=1000, errors=0, at=at)


async def _approved(bot: BotDriver, slack: FakeSlack, run_id: str | None = None) -> str:
    run_id = run_id or run_id_of(plan_cards(slack)[-1])
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER1")
    await bot.click(APPROVE_ACTION, run_id, user="UAPPROVER2")
    return run_id


async def _main_flows(
    bot: BotDriver, slack: FakeSlack, canary: CanaryWorld, gates: GatesWorld
) -> None:
    _traffic(canary, bot.clock)
    await bot.command(f"production auth-svc,{CANARY}", user="UDEV")
    run_id = run_id_of(plan_cards(slack)[-1])
    # Its snapshot taken already, as after a restart mid-backup: the bot reads it instead.
    gates.rds.create_db_snapshot(DBSnapshotIdentifier=f"chatops-{run_id}", DBInstanceIdentifier=DB)
    deploy = await bot.runtime.runs.get(await _approved(bot, slack, run_id))
    assert deploy.state is DeploymentState.SUCCEEDED, deploy.error
    assert deploy.backup_id is not None

    await bot.command("production auth-svc errors -y", command="/rollback", user=ONCALL)
    await bot.settle()
    await bot.command(f"restore-db {deploy.id}", user="UDBA")
    found = re.search(r"Restore `([^`]+)`", str(plan_cards(slack)[-1]["blocks"]))
    assert found is not None
    restore = await bot.runtime.runs.get(await _approved(bot, slack, found.group(1)))
    await bot.command("p1 auth-svc login failing", command="/incident", user="UDEV")

    assert (restore.kind, restore.state) == (RunKind.RESTORE, DeploymentState.SUCCEEDED)
    kinds = {r.kind for r in await bot.runtime.deploy.history(None)}
    assert RunKind.ROLLBACK in kinds


async def test_the_policy_allows_every_call_of_the_main_flows_and_no_other_action(
    calls: Calls,
    bot: BotDriver,
    slack: FakeSlack,
    canary: CanaryWorld,
    gates: GatesWorld,
    config: Config,
) -> None:
    await _main_flows(bot, slack, canary, gates)

    policy = iam_policy(config, account="123456789012")

    allowed = {a for s in policy["Statement"] for a in s["Action"]}
    assert calls.actions - allowed == set(), "called but not in the policy"
    # iam:PassRole: moto's task definitions have no roles; real ones do (AWS requires it).
    assert allowed - calls.actions == {"iam:PassRole"}, "in the policy but never called"


def _resources(policy: dict[str, Any], action: str) -> list[str]:
    found: list[str] = []
    for statement in policy["Statement"]:
        if action in statement["Action"]:
            resource = statement["Resource"]
            found += [resource] if isinstance(resource, str) else resource
    return found


def test_writes_are_scoped_to_what_the_config_names(config: Config, canary: CanaryWorld) -> None:
    policy = iam_policy(config, account="123456789012")

    def allows(action: str, arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, r) for r in _resources(policy, action))

    svc = "arn:aws:ecs:us-east-1:123456789012:service"
    assert allows("ecs:UpdateService", f"{svc}/skillancer-production/auth-svc")
    assert allows("ecs:UpdateService", f"{svc}/skillancer-production/{CANARY}-green")
    assert not allows("ecs:UpdateService", f"{svc}/skillancer-production/someone-elses")
    assert not allows("ecs:UpdateService", f"{svc}/other-cluster/auth-svc")
    listener = canary.services[CANARY].listener
    assert _resources(policy, "elasticloadbalancing:ModifyListener") == [listener]
    assert _resources(policy, "s3:PutObject") == [f"arn:aws:s3:::{BUCKET}/production/*"]
    rds = "arn:aws:rds:us-east-1:123456789012"
    assert allows("rds:CreateDBSnapshot", f"{rds}:db:{DB}")
    assert not allows("rds:CreateDBSnapshot", f"{rds}:db:another-db")
    assert allows("rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:db:restore-123-abc")
    assert not allows("rds:RestoreDBInstanceFromDBSnapshot", f"{rds}:db:{DB}")


def test_a_config_without_gates_or_canaries_needs_only_the_ecs_actions(
    health: FakeHealth,
) -> None:
    config = Config.model_validate(config_dict(health))

    policy = iam_policy(config)

    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitions",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "iam:PassRole",
    }


def test_the_command_prints_the_policy_as_json_for_the_given_config(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "chatops.toml"
    path.write_text(
        '[environments.staging]\ncluster = "c1"\n[services.web]\necs_service = "web"\n',
        encoding="utf-8",
    )

    status = main(["iam-policy", "--config", str(path), "--account", "111122223333"])

    policy = json.loads(capsys.readouterr().out)
    assert status == 0
    assert policy["Version"] == "2012-10-17"
    assert _resources(policy, "ecs:UpdateService") == [
        "arn:aws:ecs:us-east-1:111122223333:service/c1/web"
    ]

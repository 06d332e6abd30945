"""Each command's help, drawn from its `Usage`, word for word (the example config's names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.usage import usage_text
from commands.deploy.parse import usage as deploy_usage
from commands.health.usecases import usage as health_usage
from commands.incident.parse import usage as incident_usage
from commands.rollback.parse import usage as rollback_usage
from pipeline.kernel.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "chatops.example.toml"
SORTED_SERVICES = (
    "Services: `api-gateway`, `audit-svc`, `auth-svc`, `billing-svc`, `cockpit-svc`, "
    "`market-svc`, `notification-svc`, `skillpod-svc`"
)


@pytest.fixture
def example() -> Config:
    return load_config(EXAMPLE)


def test_deploy_help(example: Config) -> None:
    assert usage_text(deploy_usage(example)) == (
        "*Usage*\n"
        "• `/deploy <environment> <service[,service...]|all> [version]`: plan a deploy and ask "
        "for approval. Without a version, an environment with `promote_from` takes the versions "
        "running there.\n"
        "• `/deploy <environment> <services|all> [version] --dry-run`: show the plan and every "
        "check, change nothing\n"
        '• `/deploy <environment> <services|all> <version> --skip-staging "<reason>"`: a hotfix '
        "that skips the promotion health check\n"
        '• `/deploy <environment> <services|all> [version] --break-glass "<reason>"`: deploy '
        "outside the windows or during a freeze, with one more approval than usual\n"
        "• `/deploy status <deployment-id> [--json]`: a short summary of that deployment: "
        "state, who, when, each service's versions and outcome, its rollback window; "
        "`--json` the whole record\n"
        "• `/deploy status <environment>`: its lock, window, freeze and runs in progress\n"
        "• `/deploy history [environment]`: the last 10 deployments\n"
        "• `/deploy stats [environment] [7d|30d|90d] [service]`: delivery figures: deploys, "
        "lead time, time in the source environment, change failure rate, time to restore "
        "(production and 30 days unless named)\n"
        "• `/deploy lock <environment> [reason] [for <duration>]`: only you may deploy there\n"
        "• `/deploy unlock <environment>`: end your lock (approvers may end anyone's)\n"
        "• `/deploy restore-db <deployment-id>`: restore that deploy's database snapshot to a "
        "NEW instance, after the environment's approvals\n"
        "• `/deploy help`: this message\n"
        # In the config's order, unlike the other commands' lists.
        "Environments: `staging`, `production`\n"
        "Services: `api-gateway`, `auth-svc`, `market-svc`, `skillpod-svc`, `cockpit-svc`, "
        "`billing-svc`, `notification-svc`, `audit-svc`\n"
        "Versions look like `v1.2.3` or `v2.0.0-rc1`."
    )


def test_rollback_help(example: Config) -> None:
    assert usage_text(rollback_usage(example)) == (
        "*Usage*\n"
        "• `/rollback <environment> <service[,service...]|all> [version] [reason...]`: take "
        "services back to the version they ran before their last successful deploy, or to a "
        "named version that ran there. `all`: every service the last deploy changed.\n"
        "• Add `-y` anywhere to skip the question and start at once, unless a deploy it takes "
        "back ran migrations: the database does not go back with the code, so you are always "
        "asked then.\n"
        "• Inside a deploy's rollback window no approval is needed; after it, a rollback is a "
        "deploy of the older version and needs the environment's approvals.\n"
        "• `/rollback help`: this message\n"
        "Environments: `production`, `staging`\n" + SORTED_SERVICES
    )


def test_incident_help(example: Config) -> None:
    assert usage_text(incident_usage(example)) == (
        "*Usage*\n"
        "• `/incident [declare]`: open the declare form: severity, summary and the services it "
        "is about. A P1 or P2 freezes deploys of those services until it is resolved.\n"
        "• `/incident <p1|p2|p3|p4> <summary>`: declare an incident. Opens a war-room channel, "
        "invites the responders, posts and pins the initial alert; you become the commander.\n"
        "• `/incident update <status> <what we are doing>`: post an update (in the war room). "
        "Status is one of `investigating`, `identified`, `mitigating`, `monitoring`.\n"
        "• `/incident resolve <what fixed it>`: resolve it (in the war room); posts the duration "
        "and a post-mortem skeleton.\n"
        "• `/incident commander @someone`: hand over command (in the war room)\n"
        "• `/incident list`: open incidents with severity, age and last update\n"
        "• `/incident help`: this message\n"
        "*Severities*\n"
        "• `p1` Service down, all users affected (response: Immediate; updates every 15 minutes)\n"
        "• `p2` Major feature broken (response: 15 minutes; updates every 30 minutes)\n"
        "• `p3` Minor feature broken (response: 1 hour; updates every 60 minutes)\n"
        "• `p4` Cosmetic issue (response: Next business day; no update reminders)"
    )


def test_health_help(example: Config) -> None:
    assert usage_text(health_usage(example)) == (
        "*Usage*\n"
        "• `/health <environment> [service...] [--full]`: check the health endpoints of every "
        "service (or those named) in parallel; `--full` adds what ECS runs.\n"
        "Environments: `production`, `staging`\n" + SORTED_SERVICES
    )

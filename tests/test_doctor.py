"""`chatops-bot doctor` against the strict local Slack and moto: a good setup passes, a broken
one names each fault with its fix (issue 19, point 3)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.doctor import AwsReaders, Finding, as_json, as_text, database_finding, diagnose, failed
from bot.doctor.report import Verdict
from bot.doctor.slack import BOT_SCOPES
from bot.main import EXIT_DOCTOR_FOUND, main
from pipeline.aws import BotoEcs
from pipeline.aws.elbv2 import BotoLoadBalancer
from pipeline.aws.gates import BotoSnapshots
from pipeline.aws.iam import iam_policy
from pipeline.aws.identity import BotoIdentity
from pipeline.kernel.config import load_config
from sandbox.slack.workspace import BOT_USER
from store.backends.urls import redact
from store.db import Store
from store.migrations import MIGRATIONS
from tests.conftest import config_dict, manifest_bot_scopes
from tests.fakes.canary_world import CanaryWorld
from tests.fakes.ecs_world import EcsWorld
from tests.fakes.gates_world import GatesWorld
from tests.fakes.health import FakeHealth
from tests.fakes.iam_simulator import FakeIamSimulator
from tests.fakes.postgres import PASSWORD
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = "CINCIDENTS"
CANARY = "market-svc"
DB = "skillancer-prod-db"


@pytest.fixture
def estate(world: EcsWorld) -> tuple[CanaryWorld, GatesWorld]:
    canary = CanaryWorld(world, "production")
    canary.add(CANARY, "v1.2.0")
    gates = GatesWorld()
    gates.database(DB)
    return canary, gates


def _config(health: FakeHealth, canary: CanaryWorld, tmp_path: Path, **changes: Any) -> Path:
    data = config_dict(health)
    prod = data["environments"]["production"]
    prod["database"] = {"instance": DB}
    colours = {c: health.url(f"{CANARY}-{c}") for c in ("blue", "green")}
    data["services"][CANARY]["canary"] = {"production": canary.canary_config(CANARY, colours)}
    for key, value in changes.items():
        prod[key] = value
    path = tmp_path / "chatops.toml"
    path.write_text(_toml(data), encoding="utf-8")
    return path


def _toml(data: dict[str, Any]) -> str:
    """The config as TOML (JSON values are TOML values for strings, numbers and lists)."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in scalars.items())
        for k, v in values.items():
            if isinstance(v, dict):
                table(f"{prefix}.{json.dumps(k)}", v)

    for name, values in data.items():
        table(name, values)
    return "\n".join(lines) + "\n"


def _aws() -> AwsReaders:
    return AwsReaders(
        ecs=BotoEcs(),
        load_balancer=BotoLoadBalancer(),
        snapshots=BotoSnapshots(),
        identity=BotoIdentity(),
    )


async def _diagnose(slack: FakeSlack, config: Path, db: Path) -> list[Finding]:
    client = AsyncWebClient(token="xoxb-doctor", base_url=slack.api_url)
    return await diagnose(config_path=config, db_path=db, slack=client, aws=_aws())


def _failures(findings: list[Finding]) -> list[str]:
    return [f"{f.text} Fix: {f.fix}" for f in findings if f.verdict is Verdict.FAIL]


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "chatops.db"
    store = await Store.open(path)
    await store.close()
    return path


async def test_a_good_setup_passes_every_check(
    slack: FakeSlack,
    health: FakeHealth,
    estate: tuple[CanaryWorld, GatesWorld],
    tmp_path: Path,
    db: Path,
) -> None:
    slack.workspace.join(INCIDENTS, BOT_USER)
    config = _config(health, estate[0], tmp_path)

    findings = await _diagnose(slack, config, db)

    assert _failures(findings) == []
    text = as_text(findings)
    assert "✅ slack: the token has every scope manifest.yml asks for" in text
    assert "✅ slack: user group S0LEADS exists (2 members)." in text
    assert f"✅ slack: the bot is in #cincidents ({INCIDENTS})." in text
    assert "✅ aws: credentials are arn:aws:sts::123456789012:user/moto" in text
    assert "✅ aws: production: listener arn:aws:elasticloadbalancing" in text
    assert f"✅ aws: production: database instance {DB}: readable." in text
    assert "✅ database:" in text
    assert "➖ aws: IAM actions not simulated" in text
    assert text.endswith("No problems found.")


async def test_a_broken_setup_names_each_fault_with_its_fix(
    slack: FakeSlack,
    health: FakeHealth,
    estate: tuple[CanaryWorld, GatesWorld],
    tmp_path: Path,
    db: Path,
) -> None:
    slack.scopes = set(manifest_bot_scopes()) - {"pins:write", "usergroups:read"}
    slack.workspace.unknown_users.add("UAPPROVER2")
    gone = estate[0].services[CANARY].listener
    estate[0].elb.delete_listener(ListenerArn=gone)
    config = _config(health, estate[0], tmp_path, approvers=["UAPPROVER1", "UAPPROVER2", "S0NOPE"])

    findings = await _diagnose(slack, config, db)

    assert failed(findings)
    problems = _failures(findings)
    assert "the token lacks the scopes pins:write, usergroups:read." in problems[0]
    assert any(
        p.startswith(f"the bot is not in #cincidents ({INCIDENTS})")
        and f"type `/invite <@{BOT_USER}>` in #cincidents." in p
        for p in problems
    )
    assert any(
        "Slack has no user UAPPROVER2" in p and "environments.production.approvers" in p
        for p in problems
    )
    assert any(p.startswith(f"production: listener {gone}:") for p in problems)


async def test_an_unknown_group_is_named_with_the_keys_that_name_it(
    slack: FakeSlack,
    health: FakeHealth,
    estate: tuple[CanaryWorld, GatesWorld],
    tmp_path: Path,
    db: Path,
) -> None:
    slack.workspace.join(INCIDENTS, BOT_USER)
    config = _config(health, estate[0], tmp_path, approvers=["UAPPROVER1", "S0NOPE"])

    findings = await _diagnose(slack, config, db)

    assert _failures(findings) == [
        "Slack has no user group S0NOPE (named in environments.production.approvers). "
        "Fix: fix the ID in the config, or create the group in Slack."
    ]


@pytest.fixture
async def iam(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeIamSimulator]:
    """IAM's policy simulator on 127.0.0.1 (moto has none), reached by the doctor's own client."""
    simulator = FakeIamSimulator()
    await simulator.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", simulator.url)
    yield simulator
    await simulator.close()


async def test_iam_is_asked_for_every_action_of_the_policy_and_a_denied_one_is_named(
    slack: FakeSlack,
    health: FakeHealth,
    estate: tuple[CanaryWorld, GatesWorld],
    tmp_path: Path,
    db: Path,
    iam: FakeIamSimulator,
) -> None:
    slack.workspace.join(INCIDENTS, BOT_USER)
    config = _config(health, estate[0], tmp_path)
    policy = iam_policy(load_config(config))
    needed = sorted({a for s in policy["Statement"] for a in s["Action"]})

    allowed = as_text(await _diagnose(slack, config, db))
    iam.denied = {"ecs:UpdateService"}
    denied = await _diagnose(slack, config, db)

    principal, asked = iam.asked[0]
    assert principal == "arn:aws:sts::123456789012:user/moto"
    assert asked == needed
    assert f"✅ aws: IAM allows all {len(needed)} actions the config needs (simulated)." in allowed
    assert _failures(denied) == [
        "IAM denies ecs:UpdateService. "
        "Fix: attach the policy `chatops-bot iam-policy` prints to the bot's IAM identity."
    ]


async def test_a_database_behind_the_code_is_a_fault(
    slack: FakeSlack,
    health: FakeHealth,
    estate: tuple[CanaryWorld, GatesWorld],
    tmp_path: Path,
    db: Path,
) -> None:
    slack.workspace.join(INCIDENTS, BOT_USER)
    latest = max(version for version, _, _ in MIGRATIONS)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", [latest])
    conn.close()

    findings = await _diagnose(slack, _config(health, estate[0], tmp_path), db)

    [problem] = _failures(findings)
    assert problem.startswith(f"{db} is at schema version {latest - 1}; this code has {latest}.")


def test_the_json_form_has_each_check_and_the_overall_verdict() -> None:
    findings = [
        Finding("slack", Verdict.OK, "the token works."),
        Finding("aws", Verdict.FAIL, "IAM denies ecs:UpdateService.", "attach the policy."),
    ]

    out = json.loads(as_json(findings))

    assert out["ok"] is False
    assert out["checks"][1] == {
        "area": "aws",
        "verdict": "fail",
        "text": "IAM denies ecs:UpdateService.",
        "fix": "attach the policy.",
    }


def test_the_command_exits_non_zero_on_a_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chatops.toml").write_text("[environments.staging]\n", encoding="utf-8")

    status = main(["doctor", "--no-aws"])

    out = capsys.readouterr().out
    assert status == EXIT_DOCTOR_FOUND
    assert "❌ config: " in out
    assert "environments.staging.cluster: Field required" in out


def test_the_scopes_the_doctor_expects_are_the_manifests() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))

    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])


def test_the_database_check_on_postgresql(pg_url: str, pg_empty_url: str) -> None:
    latest = max(version for version, _, _ in MIGRATIONS)
    shown = redact(pg_url)

    migrated = database_finding(pg_url)
    empty = database_finding(pg_empty_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", [latest])
    behind = database_finding(pg_url)
    gone = database_finding(pg_url.rsplit("/", 1)[0] + "/no_such_database")

    assert (migrated.verdict, migrated.text) == (
        Verdict.OK,
        f"{shown} is writable and at schema version {latest}.",
    )
    assert empty.verdict is Verdict.OK
    assert empty.text.endswith("is writable and empty; the bot migrates it at start.")
    assert behind.verdict is Verdict.FAIL
    assert behind.text == f"{shown} is at schema version {latest - 1}; this code has {latest}."
    assert behind.fix is not None
    assert behind.fix.startswith("back it up (pg_dump)")
    assert gone.verdict is Verdict.FAIL
    assert 'database "no_such_database" does not exist' in gone.text
    assert gone.fix is not None
    assert "CHATOPS_DATABASE_URL" in gone.fix
    every = " ".join(f"{f.text} {f.fix}" for f in (migrated, empty, behind, gone))
    assert PASSWORD not in every

"""The sandbox's config: the example's eight services in staging and production, with every
outside address and person replaced, and short waits; the manifest's commands and scopes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline.kernel.config import Config, load_config
from sandbox.aws import COLOURS, Canary, CanaryArns, Estate, ServiceArns
from sandbox.config import CANARIES, ExampleMissing, read_example, sandbox_config, to_toml
from sandbox.people import APPROVERS, GROUPS, ON_CALL_GROUP
from sandbox.stack import BOT_SCOPES, SLASH_COMMANDS

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:4567"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "chatops.toml"
    path.write_text(to_toml(sandbox_config(read_example(), health_base=BASE)), encoding="utf-8")
    return load_config(path)


def test_it_keeps_the_examples_services_and_environments(config: Config) -> None:
    example = load_config(ROOT / "chatops.example.toml")

    assert list(config.services) == list(example.services)
    assert len(config.services) == 8
    assert config.environment("production").required_approvals == 2
    assert config.environment("production").promote_from == "staging"


def test_every_health_url_is_a_demo_service_on_this_machine(config: Config) -> None:
    urls = {url for svc in config.services.values() for url in svc.health_url.values()}

    assert f"{BASE}/production/auth-svc" in urls
    assert all(url.startswith(BASE + "/") for url in urls)
    assert len(urls) == 16


def test_the_approvers_are_the_seeded_approvers(config: Config) -> None:
    assert config.environment("production").approvers == [p.id for p in APPROVERS]


def test_waits_are_short_enough_for_a_deploy_in_seconds(config: Config) -> None:
    for env in config.environments.values():
        assert env.health.interval_s <= 0.5
        # A version answering 503 fails within about a second; one that hangs within ten.
        assert env.health.retries * env.health.interval_s <= 1.5
        assert env.health.retries * (env.health.interval_s + env.health.timeout_s) <= 10
        assert env.rollout.poll_interval_s <= 0.5


def test_p1_war_rooms_invite_the_on_call_group(config: Config) -> None:
    assert config.incidents.severities["p1"].responders == [ON_CALL_GROUP.id]
    assert config.incidents.channel is not None


def test_the_toml_reads_back_as_the_same_config() -> None:
    made = sandbox_config(read_example(), health_base=BASE)

    assert tomllib.loads(to_toml(made, header="line one\nline two")) == made


def test_a_missing_example_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ExampleMissing, match=r"nope\.toml is missing"):
        read_example(tmp_path / "nope.toml")


def test_the_sandbox_offers_the_manifests_commands_and_grants_its_scopes() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))

    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert set(SLASH_COMMANDS) == commands
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])


def test_auth_svc_is_a_canary_in_production_with_stages_of_seconds(tmp_path: Path) -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    pair = CanaryArns(
        Canary("production", "auth-svc"),
        f"{arn}:listener/app/production-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
        {c: f"{arn}:targetgroup/auth-svc-{c}/73e2d6bc24d8a06{i}" for i, c in enumerate(COLOURS)},
    )
    path = tmp_path / "chatops.toml"
    made = sandbox_config(read_example(), health_base=BASE, canaries=[pair])
    path.write_text(to_toml(made), encoding="utf-8")

    config = load_config(path)

    canary = config.services["auth-svc"].canary_in("production")
    assert canary is not None
    assert (canary.blue.ecs_service, canary.green.health_url) == (
        "auth-svc-blue",
        f"{BASE}/production/auth-svc-green",
    )
    assert config.services["auth-svc"].canary_in("staging") is None
    stages = config.environment("production").canary.stages
    assert sum(s.bake_s for s in stages) <= 15
    assert config.environment("production").canary.check_every_s <= 1


def test_bakes_given_replace_the_canary_stages_bake_times_and_must_be_one_per_stage(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chatops.toml"
    made = sandbox_config(read_example(), health_base=BASE, bakes=["1s", "2s", "500ms"])
    path.write_text(to_toml(made), encoding="utf-8")

    stages = load_config(path).environment("production").canary.stages

    assert [(s.weight, s.bake_s) for s in stages] == [(5, 1.0), (50, 2.0), (100, 0.5)]
    with pytest.raises(ValueError, match="3 canary bake times are needed, not 2"):
        sandbox_config(read_example(), health_base=BASE, bakes=["1s", "2s"])


def test_production_keeps_its_records_in_a_bucket_the_sandbox_seeds() -> None:
    made = sandbox_config(read_example(), health_base=BASE)

    estate = Estate.from_config(made, canaries=CANARIES)

    assert made["environments"]["production"]["records"]["prefix"] == "production/"
    assert estate.buckets == (
        ("us-east-1", made["environments"]["production"]["records"]["bucket"]),
    )
    assert [(c.environment, c.service) for c in estate.canaries] == [("production", "auth-svc")]


def test_every_user_group_the_config_names_is_a_group_of_the_sandboxs_slack(
    config: Config,
) -> None:
    """A group Slack lacks is skipped, so its members could not act (issue 16)."""
    assert set(config.user_groups()) <= {g.id for g in GROUPS}


def test_the_devops_lead_may_roll_back_through_the_devops_leads_group(config: Config) -> None:
    rollbackers = config.environment("production").rollbackers or []
    [leads] = [g for g in GROUPS if g.id in rollbackers and APPROVERS[0].id in g.members]
    assert leads.handle == "devops-leads"


def test_production_watches_each_deploy_reading_the_services_target_groups(
    tmp_path: Path,
) -> None:
    group = ServiceArns(
        "production",
        "api-gateway",
        "app/production-alb/1234567890abcdef",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/p-api/0123456789abcdef",
    )
    made = sandbox_config(read_example(), health_base=BASE, target_groups=[group])
    path = tmp_path / "chatops.toml"
    path.write_text(to_toml(made), encoding="utf-8")

    watch = load_config(path).environment("production").watch

    assert watch.period_in("production") == 30 * 60
    assert (watch.thresholds.error_for_s, watch.dense_every_s) == (120, 60)
    assert watch.target_groups["api-gateway"].target_group == group.target_group
    assert load_config(path).environment("staging").watch.period_in("staging") == 0

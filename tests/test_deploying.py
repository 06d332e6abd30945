"""docs/deploying.md's files agree with the bot: the task-definition template is one ECS accepts,
and every variable the template, the Containerfile and the page set is one the bot reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "ecs-task-definition.json"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
PAGE = ROOT / "docs" / "deploying.md"
READ = set(ENV_NAMES.values())
# Read by Python itself, not by the bot's settings.
NOT_OURS = {"PYTHONUNBUFFERED"}


def template() -> dict[str, Any]:
    text = TEMPLATE.read_text().replace("ACCOUNT_ID", "123456789012").replace("REGION", "eu-west-1")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_ecs_registers_the_template_with_the_port_the_image_listens_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    spec = template()
    with mock_aws():
        ecs = boto3.client("ecs", region_name="eu-west-1")
        registered = ecs.register_task_definition(**spec)["taskDefinition"]

    container = registered["containerDefinitions"][0]
    assert registered["family"] == "chatops-bot"
    assert container["portMappings"][0]["containerPort"] == 3000
    assert "EXPOSE 3000" in CONTAINERFILE.read_text()
    assert container["command"] == ["serve"]


def test_every_variable_set_for_the_bot_is_one_it_reads() -> None:
    container = template()["containerDefinitions"][0]
    named = {e["name"] for e in container["environment"]} | {
        s["name"] for s in container["secrets"]
    }
    named |= set(re.findall(r"^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]+)=", CONTAINERFILE.read_text(), re.M))

    assert named - NOT_OURS <= READ, sorted(named - NOT_OURS - READ)
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "CHATOPS_CONFIG", "CHATOPS_DB"} <= named


def test_the_page_names_only_variables_the_bot_reads() -> None:
    named = set(re.findall(r"`((?:SLACK|CHATOPS)_[A-Z_]+)`", PAGE.read_text()))

    assert named, "the page names the bot's variables"
    assert named <= READ, sorted(named - READ)


def test_the_grace_period_fits_inside_the_stop_timeout() -> None:
    container = template()["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}

    assert float(env["CHATOPS_SHUTDOWN_GRACE_S"]) < container["stopTimeout"]

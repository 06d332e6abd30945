"""`parse_incident` and the war-room name: bad input names the valid choices."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.usage import usage_text
from commands.incident.parse import (
    Commander,
    Declare,
    DeclareForm,
    ListOpen,
    Resolve,
    Update,
    channel_name,
    parse_incident,
    usage,
)
from commands.parsing import Help
from pipeline.kernel.config import Config, Incidents
from pipeline.kernel.errors import UsageError
from store.incident.models import IncidentStatus

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
STATUSES = ["`investigating`", "`identified`", "`mitigating`", "`monitoring`"]


@pytest.fixture
def cfg(config: Config) -> Config:
    return config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DeclareForm()),
        ("declare", DeclareForm()),
        ("DECLARE P1 auth login failing", DeclareForm("p1", "auth login failing")),
        ("declare auth login failing", DeclareForm(None, "auth login failing")),
        ("help", Help()),
        ("  HELP  ", Help()),
        ("list", ListOpen()),
        ("p1 auth login failing", Declare("p1", "auth login failing")),
        ("P2   checkout slow\tfor EU", Declare("p2", "checkout slow\tfor EU")),
        (
            "update identified bad config in auth-svc",
            Update(IncidentStatus.IDENTIFIED, "bad config in auth-svc"),
        ),
        ("update MITIGATING rolling back", Update(IncidentStatus.MITIGATING, "rolling back")),
        ("resolve rolled back auth-svc", Resolve("rolled back auth-svc")),
        ("commander <@U0DANA|dana>", Commander("U0DANA")),
        ("commander <@U0DANA>", Commander("U0DANA")),
        ("commander W0ENTERPRISE", Commander("W0ENTERPRISE")),
    ],
)
def test_good_input_becomes_a_typed_request(cfg: Config, text: str, expected: object) -> None:
    assert parse_incident(text, cfg) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p5 auth down", ["`p5` is neither a severity nor a subcommand", "`p1`", "`p4`", "`list`"]),
        ("sev1 auth down", ["`sev1`", "`p1`, `p2`, `p3`, `p4`"]),
        ("p1", ["Add a summary", "`/incident p1 auth login failing`"]),
        ("P3   ", ["Add a summary", "`/incident p3"]),
        ("update", ["Say the status", *STATUSES]),
        ("update fixing it now", ["`fixing` is not an update status", *STATUSES]),
        ("update resolved all good", ["`resolved` is not an update status", "/incident resolve"]),
        ("update identified", ["Say what you are doing", "`/incident update identified <action>`"]),
        ("resolve", ["Say what fixed it", "`/incident resolve <resolution>`"]),
        ("commander", ["Mention the new commander", "`/incident commander @someone`"]),
        ("commander @dana", ["Mention the new commander", "`@dana` is not a mention"]),
        ("list everything", ["`/incident list` takes nothing after it"]),
    ],
)
def test_bad_input_says_what_is_valid(cfg: Config, text: str, expected: list[str]) -> None:
    with pytest.raises(UsageError) as err:
        parse_incident(text, cfg)

    for fragment in expected:
        assert fragment in err.value.user_message


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("auth login failing", "inc-20261122-auth-login-failing"),
        ("Auth: LOGIN failing!!", "inc-20261122-auth-login-failing"),
        ("Überweisung café down", "inc-20261122-uberweisung-cafe-down"),
        ("🔥🔥", "inc-20261122-incident"),
        ("api_gateway 502s", "inc-20261122-api_gateway-502s"),
    ],
)
def test_the_war_room_name_follows_slacks_character_rules(summary: str, expected: str) -> None:
    assert channel_name("inc-{date}-{slug}", at=AT, summary=summary, severity="p1") == expected


def test_a_long_summary_is_cut_to_slacks_80_characters() -> None:
    name = channel_name("inc-{date}-{slug}", at=AT, summary="word " * 40, severity="p1")

    assert len(name) <= 80
    assert name.startswith("inc-20261122-word-word")
    assert not name.endswith("-")


def test_the_pattern_may_name_the_severity() -> None:
    name = channel_name("{severity}-{slug}-{date}", at=AT, summary="db down", severity="p2")

    assert name == "p2-db-down-20261122"


@pytest.mark.parametrize(
    ("incidents", "message"),
    [
        ({"channel_pattern": "inc-{when}-{slug}"}, "may only use {date}, {slug} and {severity}"),
        ({"channel_pattern": "inc-{date}"}, "must contain {slug}"),
        ({"channel_pattern": "Inc {date} {slug}"}, "must give a Slack channel name"),
        (
            {"severities": {"update": {"description": "x", "response_time": "y"}}},
            "not one of declare, update",
        ),
        ({"severities": {}}, "at least one severity"),
        (
            {
                "severities": {
                    "p1": {"description": "x", "response_time": "y", "escalate_to": ["x"]}
                }
            },
            "not a Slack user ID",
        ),
    ],
)
def test_a_bad_incidents_table_names_the_problem(
    incidents: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        Incidents.model_validate(incidents)

    assert message in str(err.value)


DOC = Path(__file__).resolve().parents[2] / "docs" / "incidents.md"


def test_every_form_the_help_lists_is_in_docs_incidents_md(cfg: Config) -> None:
    forms = re.findall(r"`(/incident[^`]*)`", usage_text(usage(cfg)))
    doc = DOC.read_text(encoding="utf-8").replace("\\|", "|")

    assert len(forms) == 7
    assert [f for f in forms if f"`{f}`" not in doc] == []


@pytest.mark.parametrize(
    "key",
    ["channel", "environment", "channel_pattern", "suspect_window", "update_every", "escalate_to"],
)
def test_every_incident_config_key_is_in_docs_incidents_md(key: str) -> None:
    assert f"{key}" in DOC.read_text(encoding="utf-8")

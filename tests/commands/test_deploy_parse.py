"""`parse_deploy`: every bad input names the valid choices; good inputs become typed requests."""

from __future__ import annotations

import pytest

from bot.usage import usage_text
from commands.deploy.parse import (
    DeployRequest,
    HistoryRequest,
    StatusRequest,
    parse_deploy,
    usage,
)
from commands.parsing import Help
from pipeline.kernel.config import Config
from pipeline.kernel.errors import UsageError

ALL = ("api-gateway", "auth-svc", "market-svc")
SERVICE_CHOICES = ["`api-gateway`", "`auth-svc`", "`market-svc`"]
ENV_CHOICES = ["`production`", "`staging`"]
VERSION_FORM = ["`v1.2.3`", "`v2.0.0-rc1`"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prod api-gateway v1.2.3", ["No environment is called `prod`", *ENV_CHOICES]),
        ("qa all", ["No environment is called `qa`", *ENV_CHOICES]),
        ("production web v1.2.3", ["No service is called `web`", *SERVICE_CHOICES, "`all`"]),
        ("production api-gateway,web", ["No service is called `web`", *SERVICE_CHOICES]),
        ("production all,auth-svc", ["No service is called `all`", *SERVICE_CHOICES]),
        ("staging v1.2.3", ["No service is called `v1.2.3`", *SERVICE_CHOICES]),
        ("production api-gateway 1.2.3", ["`1.2.3` is not a version", *VERSION_FORM]),
        ("production api-gateway v1.2", ["`v1.2` is not a version", *VERSION_FORM]),
        ("production api-gateway vX", ["`vX` is not a version", *VERSION_FORM]),
        ("production api-gateway v1.2.3-", ["`v1.2.3-` is not a version", *VERSION_FORM]),
        ("production api-gateway latest", ["`latest` is not a version", *VERSION_FORM]),
        (
            "staging api-gateway v１.２.３",
            ["not ASCII", "`１` (FULLWIDTH DIGIT ONE)", "ASCII letters, digits", *VERSION_FORM],
        ),
        (
            "staging api-gateway v١.٢.٣",
            ["not ASCII", "`١` (ARABIC-INDIC DIGIT ONE)", *VERSION_FORM],
        ),
        (
            "staging api-gateway v1.2.3-ａｂｃｄ",
            ["`ａ` (FULLWIDTH LATIN SMALL LETTER A)", "`ｃ`", "and 1 more"],
        ),
        (
            "staging api-gateway v1.2.3-" + "a" * 193,
            ["200 characters long", "an image tag is at most 128", *VERSION_FORM],
        ),
        (
            "production api-gateway v1.2.3 now",
            ["Unexpected extra words: `now`", "/deploy <environment> <services|all> [version]"],
        ),
        (
            "production api-gateway v1.2.3 now please",
            ["Unexpected extra words: `now please`"],
        ),
        ("production api-gateway,,auth-svc", ["empty service name", *SERVICE_CHOICES]),
        ("production api-gateway,", ["empty service name", *SERVICE_CHOICES]),
        ("production ,auth-svc", ["empty service name", *SERVICE_CHOICES]),
        ("production", ["Say which services", *SERVICE_CHOICES, "`all`"]),
        ("status", ["Say which deployment", "/deploy status <deployment-id>", "/deploy history"]),
        ("status 1-abc 2-def", ["Say which deployment", "/deploy status <deployment-id>"]),
        ("status --json", ["Say which deployment", "/deploy status <deployment-id> [--json]"]),
        ("status production --json", ["`--json`", "a deployment's record", "`production`"]),
        ("history prod", ["No environment is called `prod`", *ENV_CHOICES]),
        ("history production staging", ["at most an environment", *ENV_CHOICES]),
        ("help me", ["`help` takes nothing after it", "`me`", "/deploy help"]),
        (
            "staging api-gateway",
            ["`staging` does not promote", "/deploy staging api-gateway v1.2.3", *VERSION_FORM],
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_valid_choices(
    config: Config, text: str, expected: list[str]
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_deploy(text, config)

    for fragment in expected:
        assert fragment in caught.value.user_message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("HELP", Help()),
        ("production all", DeployRequest("production", ALL, None)),
        ("production ALL v1.4.0", DeployRequest("production", ALL, "v1.4.0")),
        (
            "production api-gateway,auth-svc",
            DeployRequest("production", ("api-gateway", "auth-svc"), None),
        ),
        (
            "production auth-svc,api-gateway,auth-svc",
            DeployRequest("production", ("auth-svc", "api-gateway"), None),
        ),
        ("PRODUCTION Api-Gateway", DeployRequest("production", ("api-gateway",), None)),
        (
            "  staging   market-svc   v2.0.0-rc1 ",
            DeployRequest("staging", ("market-svc",), "v2.0.0-rc1"),
        ),
        ("staging all v1.10.0", DeployRequest("staging", ALL, "v1.10.0")),
        (
            "staging all v1.2.3-" + "a" * 121,
            DeployRequest("staging", ALL, "v1.2.3-" + "a" * 121),
        ),
        ("status 1700000000-abc123", StatusRequest("1700000000-abc123")),
        ("status 1700000000-abc123 --json", StatusRequest("1700000000-abc123", as_json=True)),
        ("status --JSON 1700000000-abc123", StatusRequest("1700000000-abc123", as_json=True)),
        ("history", HistoryRequest(None)),
        ("history Production", HistoryRequest("production")),
    ],
)
def test_good_input_becomes_a_typed_request(config: Config, text: str, expected: object) -> None:
    assert parse_deploy(text, config) == expected


def test_usage_lists_every_subcommand_environment_and_service(config: Config) -> None:
    text = usage_text(usage(config))

    for fragment in [
        "/deploy <environment> <service[,service...]|all> [version]",
        "/deploy status <deployment-id>",
        "/deploy history [environment]",
        "/deploy help",
        *ENV_CHOICES,
        *SERVICE_CHOICES,
    ]:
        assert fragment in text

"""The deploy-target config file: durations, defaults, the example, and the cross-checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline.kernel.config import (
    DEFAULT_HEALTH_PATHS,
    Config,
    ConfigError,
    format_duration,
    load_config,
    parse_duration,
)
from pipeline.kernel.errors import UnknownEnvironment, UnknownService

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "chatops.example.toml"

# The eight services of the runbooks (seed 000).
SEED_SERVICES = [
    "api-gateway",
    "auth-svc",
    "market-svc",
    "skillpod-svc",
    "cockpit-svc",
    "billing-svc",
    "notification-svc",
    "audit-svc",
]

MINIMAL: dict[str, Any] = {
    "environments": {"staging": {"cluster": "c-staging"}},
    "services": {"api": {}},
}


def _with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


def _problems(raw: dict[str, Any], tmp_path: Path) -> list[str]:
    path = tmp_path / "chatops.toml"
    path.write_text(_to_toml(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def _to_toml(raw: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, body in tables.items():
        name = f'{prefix}."{key}"' if prefix else f'"{key}"'
        lines.append(_to_toml(body, name) or f"[{name}]")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, as in a list of freezes
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    return str(value)


@pytest.fixture
def example() -> Config:
    return load_config(EXAMPLE)


class TestDurations:
    @pytest.mark.parametrize(
        ("written", "seconds"),
        [
            ("30s", 30.0),
            ("15m", 900.0),
            ("2h", 7200.0),
            ("1d", 86400.0),
            ("500ms", 0.5),
            ("1.5h", 5400.0),
            (" 10s ", 10.0),
            (45, 45.0),
            (2.5, 2.5),
            ("0s", 0.0),
        ],
    )
    def test_a_duration_is_read_as_float_seconds(self, written: object, seconds: float) -> None:
        assert parse_duration(written) == seconds

    @pytest.mark.parametrize(
        "written", ["5 minutes", "15", "m", "10 s m", "-1s", "", "1w", True, None, [30]]
    )
    def test_anything_else_is_refused_with_the_accepted_forms(self, written: object) -> None:
        with pytest.raises(ValueError, match=r"duration"):
            parse_duration(written)

    @pytest.mark.parametrize("seconds", [-1, -0.5])
    def test_a_negative_number_is_refused(self, seconds: float) -> None:
        with pytest.raises(ValueError, match="cannot be negative"):
            parse_duration(seconds)

    @pytest.mark.parametrize(
        ("seconds", "shown"),
        [
            (0, "0s"),
            (0.1, "100ms"),
            (30, "30s"),
            (90, "1m 30s"),
            (900, "15m"),
            (3600, "1h"),
            (3661, "1h 1m 1s"),
        ],
    )
    def test_a_duration_is_shown_the_way_the_config_writes_it(
        self, seconds: float, shown: str
    ) -> None:
        assert format_duration(seconds) == shown


class TestTheExample:
    def test_it_describes_the_seeds_eight_services(self, example: Config) -> None:
        assert list(example.services) == SEED_SERVICES

    def test_production_needs_two_approvals_and_promotes_staging(self, example: Config) -> None:
        prod = example.environments["production"]

        assert (prod.required_approvals, prod.promote_from, prod.confirm_buttons) == (
            2,
            "staging",
            True,
        )

    @pytest.mark.parametrize(
        ("environment", "retries", "interval_s", "timeout_s"),
        [("production", 10, 30.0, 30.0), ("staging", 5, 15.0, 30.0)],
    )
    def test_health_checks_follow_the_runbook(
        self,
        example: Config,
        environment: str,
        retries: int,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        health = example.environments[environment].health

        assert (health.retries, health.interval_s, health.timeout_s, health.paths) == (
            retries,
            interval_s,
            timeout_s,
            DEFAULT_HEALTH_PATHS,
        )

    def test_every_service_has_a_health_url_in_every_environment(self, example: Config) -> None:
        missing = [
            (svc.name, env)
            for svc in example.services.values()
            for env in example.environments
            if env not in svc.health_url
        ]

        assert missing == []


class TestDefaults:
    def test_ecs_service_and_container_default_to_the_table_name(self) -> None:
        config = Config.model_validate(copy.deepcopy(MINIMAL))

        svc = config.services["api"]
        assert (svc.name, svc.ecs_service, svc.container, svc.image) == ("api", "api", "api", "")

    def test_an_environment_defaults_to_no_approvals_and_the_seed_health_checks(self) -> None:
        env = Config.model_validate(copy.deepcopy(MINIMAL)).environments["staging"]

        assert (env.required_approvals, env.approval_timeout_s, env.health.retries) == (
            0,
            7200.0,
            10,
        )
        assert (env.health.interval_s, env.health.timeout_s, env.rollout.max_parallel) == (
            30.0,
            30.0,
            4,
        )

    def test_incidents_default_to_the_four_runbook_severities(self) -> None:
        severities = Config.model_validate(copy.deepcopy(MINIMAL)).incidents.severities

        assert {k: v.update_every_s for k, v in severities.items()} == {
            "p1": 900.0,
            "p2": 1800.0,
            "p3": 3600.0,
            "p4": None,
        }


class TestLookups:
    def test_names_are_looked_up_case_insensitively(self, example: Config) -> None:
        assert example.environment("Production").name == "production"
        assert example.service("API-GATEWAY").name == "api-gateway"

    def test_an_unknown_environment_lists_the_known_ones(self, example: Config) -> None:
        with pytest.raises(UnknownEnvironment) as caught:
            example.environment("prod")

        assert caught.value.user_message == (
            "No environment is called `prod`. Try one of `production`, `staging`."
        )

    def test_an_unknown_service_lists_the_known_ones_and_all(self, example: Config) -> None:
        with pytest.raises(UnknownService) as caught:
            example.service("payments")

        assert "`api-gateway`" in caught.value.user_message
        assert caught.value.user_message.endswith("or `all`.")


class TestProblems:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param({"services": {"api": {}}}, "environments: Field required", id="no envs"),
            pytest.param(
                _with(environments={}), "at least one environment is needed", id="empty envs"
            ),
            pytest.param(
                _with(environments__staging={"region": "eu-west-1"}),
                "environments.staging.cluster: Field required",
                id="no cluster",
            ),
            pytest.param(
                _with(environments__staging__required_approvals=11),
                "environments.staging.required_approvals: Input should be less than or equal to 10",
                id="too many approvals",
            ),
            pytest.param(
                _with(environments__staging__health={"timeout": "0s"}),
                "timeout must be more than 0s",
                id="zero timeout",
            ),
            pytest.param(
                _with(environments__staging__health={"paths": ["health"]}),
                "health path 'health' must start with '/'",
                id="relative health path",
            ),
            pytest.param(
                _with(environments__staging__promote_from="staging"),
                "environments.staging.promote_from names itself",
                id="promotes from itself",
            ),
            pytest.param(
                _with(services__all={}),
                "'all' cannot be a name",
                id="service called all",
            ),
            pytest.param(
                _with(services__api={"health_url": {"prod": "http://api.internal"}}),
                "services.api.health_url.prod: no such environment",
                id="health URL for an unknown environment",
            ),
            pytest.param(
                _with(incidents={"environment": "prod"}),
                "incidents.environment names 'prod', which is not an environment",
                id="unknown incident environment",
            ),
            pytest.param(
                _with(environments__staging__deployers=["@alice"]),
                "'@alice' is not a Slack user ID",
                id="bad deployer",
            ),
        ],
    )
    def test_each_problem_names_what_is_wrong(
        self, tmp_path: Path, raw: dict[str, Any], expected: str
    ) -> None:
        problems = _problems(raw, tmp_path)

        assert any(expected in p for p in problems), problems

    def test_every_problem_is_reported_at_once(self, tmp_path: Path) -> None:
        raw = _with(
            environments__staging__regoin="x", environments__staging__rollout={"max_parallel": 0}
        )

        problems = _problems(raw, tmp_path)

        assert {p.split(":")[0] for p in problems} == {
            "environments.staging.rollout.max_parallel",
            "environments.staging.regoin",
        }


def _schedule(**schedule: Any) -> dict[str, Any]:
    return _with(environments__staging__schedule=schedule)


def _freeze(**changes: Any) -> dict[str, Any]:
    freeze = {"from": "2026-12-20", "to": "2027-01-03", "reason": "Year-end freeze"}
    return _schedule(freezes=[{**freeze, **changes}])


WINDOWS_KEY = "environments.staging.schedule.windows"
FREEZE_KEY = "environments.staging.schedule.freezes.0"


class TestSchedules:
    def test_the_seed_windows_and_a_freeze_are_read(self, tmp_path: Path) -> None:
        path = tmp_path / "chatops.toml"
        raw = _schedule(
            timezone="Europe/Paris",
            windows=["tue-wed 14:00-18:00", "THU 14:00-16:00"],
            freezes=[{"from": "2026-12-20", "to": "2027-01-03", "reason": "Year-end freeze"}],
        )
        path.write_text(_to_toml(raw), encoding="utf-8")

        schedule = load_config(path).environments["staging"].schedule

        assert [(sorted(w.days), str(w.start), str(w.end)) for w in schedule.parsed()] == [
            ([1, 2], "14:00:00", "18:00:00"),
            ([3], "14:00:00", "16:00:00"),
        ]
        [freeze] = schedule.freezes
        assert (str(freeze.start), str(freeze.end), freeze.reason) == (
            "2026-12-20",
            "2027-01-03",
            "Year-end freeze",
        )

    @pytest.mark.parametrize(
        ("raw", "key", "expected"),
        [
            pytest.param(
                _schedule(windows=["tue 14:00"]),
                WINDOWS_KEY,
                "'tue 14:00' is not a window; write it like 'tue 14:00-18:00'",
                id="window without an end",
            ),
            pytest.param(
                _schedule(windows=["tuesday 14:00-18:00"]),
                WINDOWS_KEY,
                "'tuesday 14:00-18:00' is not a window",
                id="day spelled out",
            ),
            pytest.param(
                _schedule(windows=["tus 14:00-18:00"]),
                WINDOWS_KEY,
                "'tus 14:00-18:00': days are mon, tue, wed, thu, fri, sat, sun",
                id="unknown day",
            ),
            pytest.param(
                _schedule(windows=["fri-tue 14:00-16:00"]),
                WINDOWS_KEY,
                "fri-tue runs backwards",
                id="days backwards",
            ),
            pytest.param(
                _schedule(windows=["tue 18:00-14:00"]),
                WINDOWS_KEY,
                "the window must end after it starts",
                id="ends before it starts",
            ),
            pytest.param(
                _schedule(windows=["tue 14:00-24:00"]),
                WINDOWS_KEY,
                "24:00 is not a time of day",
                id="hour 24",
            ),
            pytest.param(
                _schedule(windows="tue 14:00-18:00"),
                WINDOWS_KEY,
                "Input should be a valid list",
                id="a string, not a list",
            ),
            pytest.param(
                _schedule(timezone="Mars/Olympus"),
                "environments.staging.schedule.timezone",
                "'Mars/Olympus' is not a time zone",
                id="unknown time zone",
            ),
            pytest.param(
                _schedule(window=["tue 14:00-18:00"]),
                "environments.staging.schedule.window",
                "Extra inputs are not permitted",
                id="misspelt key",
            ),
            pytest.param(
                _freeze(to="2026-12-01"),
                FREEZE_KEY,
                "freeze 2026-12-20 to 2026-12-01 ends before it starts",
                id="freeze backwards",
            ),
            pytest.param(
                _freeze(reason=""),
                f"{FREEZE_KEY}.reason",
                "String should have at least 1 character",
                id="freeze without a reason",
            ),
            pytest.param(
                _freeze(**{"from": "20 December"}),
                f"{FREEZE_KEY}.from",
                "Input should be a valid date",
                id="freeze date not a date",
            ),
            pytest.param(
                _freeze(until="2027-01-03"),
                f"{FREEZE_KEY}.until",
                "Extra inputs are not permitted",
                id="freeze key misspelt",
            ),
        ],
    )
    def test_a_bad_window_or_freeze_is_named_by_its_key(
        self, tmp_path: Path, raw: dict[str, Any], key: str, expected: str
    ) -> None:
        problems = _problems(raw, tmp_path)

        assert any(p.startswith(f"{key}: ") and expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"environments__staging__watch__thresholds__max_5xx_ratio": 1.5},
            "environments.staging.watch.thresholds.max_5xx_ratio:",
        ),
        (
            {"environments__staging__watch__thresholds__max_cpu_percent": 0},
            "environments.staging.watch.thresholds.max_cpu_percent:",
        ),
        (
            {"environments__staging__watch__every": "10s"},
            "watch.every must be between 1m and 1h",
        ),
        (
            {"environments__staging__watch__services__nope__max_5xx_ratio": 0.1},
            "watch.services: 'nope' is not a service",
        ),
        (
            {"environments__staging__watch__thresholds__regression_p": 0.7},
            "environments.staging.watch.thresholds.regression_p:",
        ),
        (
            {"environments__staging__watch__services__api__regression_5xx": -0.1},
            "environments.staging.watch.services.api.regression_5xx:",
        ),
        (
            {"environments__staging__watch__baseline": "5m"},
            "watch.baseline must be between 10m and 6h",
        ),
        (
            {"environments__staging__watch__min_samples": 2},
            "environments.staging.watch.min_samples:",
        ),
    ],
)
def test_check_config_refuses_out_of_range_watch_settings(
    changes: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    problems = _problems(_with(**changes), tmp_path)

    assert any(expected in p for p in problems), problems

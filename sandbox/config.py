"""The sandbox's config file, made from `chatops.example.toml`, written where a person reads it.

The example's environments and services stay as they are (eight services, staging and
production, two approvals in production); what points outside is replaced: health URLs go to the
demo services, approvers and responders are the seeded people, and the health and rollout waits
are short, so a deploy takes seconds. `auth-svc` is a canary in production (its blue/green
pair's ARNs are moto's, known once seeded) with stages of seconds, production keeps its
deployment records in a bucket of the local AWS, and production watches each deploy for half an
hour, reading the other services' target groups (moto's too) and each ECS service.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sandbox.people import APPROVERS, INCIDENTS, ON_CALL_GROUP

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sandbox.aws import CanaryArns, ServiceArns

Json = dict[str, Any]

EXAMPLE: Final = Path(__file__).resolve().parent.parent / "chatops.example.toml"

# Short waits: a deploy of eight services takes seconds, and a broken version fails within one.
# A 3 s timeout: a busy laptop (or CI) must not fail a healthy service; a broken one answers 503.
HEALTH: Final = {"retries": 3, "interval": "300ms", "timeout": "3s"}
ROLLOUT: Final = {"stable_timeout": "30s", "poll_interval": "250ms"}
INLINE_TABLES: Final = frozenset({"health_url"})  # written on one line, as the example does
# (environment, service) pairs released as canaries, with stages of seconds instead of minutes:
# a production deploy shows each stage, its figures and its buttons, and is done in about 15 s.
CANARIES: Final = (("production", "auth-svc"),)
CANARY: Final = {
    "stages": [
        {"weight": 5, "bake": "3s"},
        {"weight": 50, "bake": "5s"},
        {"weight": 100, "bake": "3s"},
    ],
    "check_every": "1s",
    "min_requests": 10,  # the demo services send about 5 requests a second to a 5% colour
    "no_data_timeout": "30s",
    "ready_timeout": "30s",
}
SMOKE: Final = [{"method": "GET", "path": "/health", "version_field": "version"}]
RECORDS: Final = {"production": {"bucket": "sandbox-deploy-records", "prefix": "production/"}}
# Production is watched after each deploy with durations of two minutes (of one, a check would
# judge only the minute under way, which the demo services' ten-second figures may not have
# reached yet), so a version that fails after its deploy is alerted on within about three.
# Not compared with before: a sandbox has no hour before its first deploy.
WATCHED: Final = ("production",)
WATCH: Final = {
    "period": "30m",
    "dense_every": "1m",
    "every": "1m",
    "compare": False,
    "thresholds": {"error_for": "2m", "response_for": "2m", "utilisation_for": "2m"},
}


class ExampleMissing(Exception):
    """The example config the sandbox is made from cannot be read."""


def read_example(path: Path = EXAMPLE) -> Json:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExampleMissing(
            f"{path} is missing: the sandbox makes its config from it. Run the sandbox from a "
            "checkout of the repository, or pass --example PATH."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ExampleMissing(f"{path} is not valid TOML: {exc}") from None


def sandbox_config(
    example: Mapping[str, Any],
    *,
    health_base: str,
    canaries: Sequence[CanaryArns] = (),
    bakes: Sequence[str] | None = None,
    target_groups: Sequence[ServiceArns] = (),
) -> Json:
    """The example config with every outside address and person replaced by the sandbox's.

    `health_base` is the demo services' root URL; each service answers at
    `{health_base}/{environment}/{service}`, and each colour of a canary at
    `{health_base}/{environment}/{service}-{colour}`. `canaries` are the blue/green pairs moto
    holds: each becomes the service's `canary.<environment>` table. `bakes`, one per stage,
    replace the canary stages' bake times (the tests' sandboxes bake for less).
    `target_groups` are the other services' own target groups: the watch reads their traffic.
    """
    config = copy.deepcopy(dict(example))
    approvers = [p.id for p in APPROVERS]
    for env_name, env in config.get("environments", {}).items():
        env["health"] = {**env.get("health", {}), **HEALTH}
        env["rollout"] = {**env.get("rollout", {}), **ROLLOUT}
        if env.get("required_approvals"):
            env["approvers"] = approvers
        env.pop("deployers", None)
        env.setdefault("approval_timeout", "2h")
        if any(e == env_name for e, _ in CANARIES):
            env["canary"] = copy.deepcopy(CANARY)
            if bakes is not None:
                stages = env["canary"]["stages"]
                if len(bakes) != len(stages):
                    raise ValueError(
                        f"{len(stages)} canary bake times are needed, not {len(bakes)}"
                    )
                for stage, bake in zip(stages, bakes, strict=True):
                    stage["bake"] = bake
        if env_name in RECORDS:
            env["records"] = dict(RECORDS[env_name])
        if env_name in WATCHED:
            env["watch"] = copy.deepcopy(WATCH)
            groups = {
                a.service: {"load_balancer": a.load_balancer, "target_group": a.target_group}
                for a in target_groups
                if a.environment == env_name
            }
            if groups:
                env["watch"]["target_groups"] = groups
        config["environments"][env_name] = env
    environments = list(config.get("environments", {}))
    for name, service in config.get("services", {}).items():
        service["health_url"] = {env: f"{health_base}/{env}/{name}" for env in environments}
    for arns in canaries:
        canary = arns.canary
        base = f"{health_base}/{canary.environment}"
        service = config["services"][canary.service]
        service.setdefault("canary", {})[canary.environment] = {
            "listener": arns.listener,
            **{
                colour: {
                    "ecs_service": canary.ecs_service(colour),
                    "target_group": arn,
                    "health_url": f"{base}/{canary.ecs_service(colour)}",
                }
                for colour, arn in arns.target_groups.items()
            },
        }
        service["smoke"] = copy.deepcopy(SMOKE)
    incidents = config.setdefault("incidents", {})
    incidents["channel"] = INCIDENTS.id
    for severity in ("p1", "p2"):
        table = incidents.setdefault("severities", {}).get(severity)
        if table is not None:
            table["responders"] = [ON_CALL_GROUP.id]
    return config


def to_toml(config: Mapping[str, Any], *, header: str = "") -> str:
    """TOML for a config: tables of strings, numbers, booleans and lists of strings."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table(config, [], lines)
    return "\n".join(lines).strip() + "\n"


def _table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) or k in INLINE_TABLES}
    if path and (scalars or not table):
        lines += ["", f"[{'.'.join(_key(p) for p in path)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, value in table.items():
        if key not in scalars:
            _table(value, [*path, key], lines)


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"TOML for a {type(value).__name__} is not written by the sandbox.")

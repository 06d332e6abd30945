"""The deploy feature's settings: environments (cluster, approvals, health, rollout), services."""

from __future__ import annotations

from pydantic import Field, model_validator

from pipeline.kernel.config.canary import CanarySettings, CanaryTarget, SmokeCheck
from pipeline.kernel.config.durations import Duration, SettingsModel, SlackIds
from pipeline.kernel.config.gates import Database, Migration, Network, Records, Schedule
from pipeline.kernel.config.watch import WatchSettings

DEFAULT_HEALTH_PATHS = ("/health", "/ready", "/api/v1/status")


class HealthSettings(SettingsModel):
    retries: int = Field(10, ge=1, description="Attempts per endpoint before giving up.")
    interval_s: Duration = Field(30.0, alias="interval", description="Wait between attempts.")
    timeout_s: Duration = Field(30.0, alias="timeout", description="Deadline for one request.")
    paths: tuple[str, ...] = DEFAULT_HEALTH_PATHS
    expect_status: int = Field(200, ge=100, le=599)

    @model_validator(mode="after")
    def _positive(self) -> HealthSettings:
        if self.timeout_s <= 0:
            raise ValueError("timeout must be more than 0s")
        for p in self.paths:
            if not p.startswith("/"):
                raise ValueError(f"health path {p!r} must start with '/'")
        return self


class RolloutSettings(SettingsModel):
    stable_timeout_s: Duration = Field(
        900.0, alias="stable_timeout", description="How long ECS may take to run the new revision."
    )
    poll_interval_s: Duration = Field(10.0, alias="poll_interval")
    max_parallel: int = Field(4, ge=1, le=32, description="Services deployed at once.")


class Environment(SettingsModel):
    name: str = ""
    cluster: str = Field(min_length=1)
    region: str = "us-east-1"
    required_approvals: int = Field(0, ge=0, le=10)
    approvers: SlackIds = Field(default_factory=list)
    deployers: SlackIds = Field(default_factory=list)
    approval_timeout_s: Duration = Field(7200.0, alias="approval_timeout")
    rollbackers: SlackIds | None = Field(
        None,
        description="User (U…/W…) and group (S…) IDs who may roll back here; unset: the "
        "approvers and deployers (anyone when both are empty); [] turns chat rollbacks off.",
    )
    rollback_window_s: Duration = Field(
        3600.0,
        alias="rollback_window",
        description="How long after a successful deploy a rollback needs no approval "
        "(the card's Roll back button); 0 turns the window off.",
    )
    confirm_buttons: bool = False
    promote_from: str | None = None
    health: HealthSettings = Field(default_factory=lambda: HealthSettings.model_validate({}))
    rollout: RolloutSettings = Field(default_factory=lambda: RolloutSettings.model_validate({}))
    canary: CanarySettings = Field(
        default_factory=lambda: CanarySettings.model_validate({}),
        description="How canary services roll out here (docs/canary.md).",
    )
    schedule: Schedule = Field(
        default_factory=lambda: Schedule.model_validate({}),
        description="Deploy windows and freezes; outside them only `--break-glass` deploys.",
    )
    wait_s: Duration = Field(
        0.0,
        alias="wait",
        description="A wait after the last approval, with a Cancel button (seed: 5m).",
    )
    database: Database | None = Field(
        None, description="The RDS instance backed up before migrations (and restorable)."
    )
    network: Network | None = Field(None, description="Where migration tasks run.")
    groups: list[list[str]] = Field(
        default_factory=list,
        description="Deploy order: groups of services, one after the other; services not "
        "listed go last.",
    )
    records: Records | None = Field(None, description="Where deployment records are kept (S3).")
    ecr_check: bool = Field(
        True, description="Before a plan card, check each image tag exists in ECR."
    )
    watch: WatchSettings = Field(
        default_factory=lambda: WatchSettings.model_validate({}),
        description="The watch after a successful deploy or rollback (docs/watch.md).",
    )
    refuse_failed_in_source: bool = Field(
        False,
        description="Refuse, instead of only warning on the plan card, a promotion of a "
        "version that failed or was rolled back in `promote_from` in the last 24 hours "
        "(a `--skip-staging` hotfix still gets through, with the warning).",
    )

    def may_roll_back_ids(self) -> list[str] | None:
        """Who may roll back: a list of IDs, or None when anyone may."""
        if self.rollbackers is not None:
            return list(self.rollbackers)
        ids = [*self.approvers, *(i for i in self.deployers if i not in self.approvers)]
        return ids or None

    def may_lock_ids(self) -> list[str] | None:
        """Who may lock: those who may ask for a deploy here, approvers and rollbackers; None
        (anyone) when anyone may ask for a deploy (no `deployers` listed)."""
        if not self.deployers:
            return None
        return list(dict.fromkeys([*self.deployers, *self.approvers, *(self.rollbackers or [])]))

    @model_validator(mode="after")
    def _check(self) -> Environment:
        if self.required_approvals and not self.approvers:
            raise ValueError(
                f"required_approvals is {self.required_approvals} but approvers is empty"
            )
        if self.refuse_failed_in_source and self.promote_from is None:
            raise ValueError(
                "refuse_failed_in_source is set but promote_from is not: there is no source "
                "environment to remember"
            )
        return self


class Service(SettingsModel):
    name: str = ""
    ecs_service: str = ""
    container: str = ""
    image: str = Field("", description="Image repository, without the tag.")
    health_url: dict[str, str] = Field(default_factory=dict)
    health_paths: tuple[str, ...] | None = None
    canary: dict[str, CanaryTarget] = Field(
        default_factory=dict,
        description="Per environment: the blue/green setup that makes this service a canary.",
    )
    smoke: list[SmokeCheck] = Field(
        default_factory=list, description="Checks after a canary reaches 100% of the traffic."
    )
    migration: Migration | None = Field(
        None, description="A migration task run before the services change (seed 001 step 2)."
    )

    def canary_in(self, environment: str) -> CanaryTarget | None:
        return self.canary.get(environment)

    @model_validator(mode="after")
    def _check(self) -> Service:
        for env, url in self.health_url.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"health_url.{env} must start with http:// or https://")
        return self

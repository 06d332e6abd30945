"""The engine for long-running work: runner, rollout stages, health checks, ports, AWS adapters."""

from __future__ import annotations

from pipeline.deploy import DeployEngine
from pipeline.fleet import Fleet
from pipeline.kernel.config import Config, ConfigError, load_config
from pipeline.runner import Runner

__all__ = ["Config", "ConfigError", "DeployEngine", "Fleet", "Runner", "load_config"]

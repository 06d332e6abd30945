"""What people ask for, without Slack types: parsing, authorization, records, submissions."""

from __future__ import annotations

from commands.deploy import DeployCommands, deployment_record, parse_deploy, usage

__all__ = ["DeployCommands", "deployment_record", "parse_deploy", "usage"]

"""AWS adapters (boto3). The only package that imports boto3/botocore; returns our own models."""

from __future__ import annotations

from pipeline.aws.ecs import BotoEcs

__all__ = ["BotoEcs"]

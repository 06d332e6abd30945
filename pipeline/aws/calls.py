"""How every AWS adapter calls boto3: one client per (service, region), calls off the event
loop, botocore's standard retries (throttling included), and AWS errors turned into sentences.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.kernel.errors import NotFound, UpstreamError

T = TypeVar("T")

# In every request's User-Agent, so CloudTrail (and a test) can tell the bot's calls apart.
USER_AGENT = "chatops-bot"

# Timeouts so a worker thread gives up too; standard retries back off on throttling.
BOTO_CONFIG = BotoConfig(
    connect_timeout=10,
    read_timeout=30,
    retries={"max_attempts": 6, "mode": "standard"},
    user_agent_extra=USER_AGENT,
)
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


class AwsClients:
    """boto3 clients, created once per (service, region) and then shared by worker threads."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                # boto3.client() is not thread-safe; a created client is.
                session: Any = boto3.session.Session()
                self._clients[key] = session.client(service, region_name=region, config=BOTO_CONFIG)
            return self._clients[key]


async def call_aws(
    fn: Callable[[], T],
    *,
    doing: str,
    permission: str,
    resource: str,
    missing: Mapping[str, str] | None = None,
) -> T:
    """Run `fn` on a worker thread. Raises NotFound for the error codes in `missing` (code ->
    sentence) and UpstreamError naming the action, the resource and the IAM permission for
    any other refusal, or saying AWS could not be reached."""
    try:
        return await asyncio.to_thread(fn)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if missing and code in missing:
            raise NotFound(missing[code]) from exc
        if code in _DENIED:
            raise UpstreamError(
                "AWS refused to {doing} (`{code}`): the bot's IAM identity needs `{permission}` "
                "on `{resource}`.",
                doing=doing,
                code=code,
                permission=permission,
                resource=resource,
            ) from exc
        raise UpstreamError(
            "AWS refused to {doing} on `{resource}` (`{code}`).",
            doing=doing,
            resource=resource,
            code=code or "unknown error",
        ) from exc
    except BotoCoreError as exc:
        raise UpstreamError(
            "Could not reach AWS to {doing} on `{resource}`.", doing=doing, resource=resource
        ) from exc

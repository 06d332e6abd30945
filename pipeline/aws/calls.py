"""How every AWS adapter calls boto3: one client per (service, region), calls off the event
loop, botocore's standard retries (throttling included), and AWS errors turned into sentences.

Every client tells the listeners of `listening` about each call it made and how it ended
(botocore's `after-call` events), so the bot can count them without touching a call site.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.kernel.errors import NotFound, UpstreamError

T = TypeVar("T")

log = logging.getLogger(__name__)

# A boto3 client keeps at most this many HTTP connections (botocore's own default); the AWS
# worker threads are as many, so a plan of 200 services sends 10 calls at a time, where
# asyncio's default executor (min(32, cores + 4) threads: 6 on 2 cores) sent 6.
AWS_CONNECTIONS = 10
# In every request's User-Agent, so CloudTrail (and a test) can tell the bot's calls apart.
USER_AGENT = "chatops-bot"

# Timeouts so a worker thread gives up too; standard retries back off on throttling.
BOTO_CONFIG = BotoConfig(
    connect_timeout=10,
    read_timeout=30,
    retries={"max_attempts": 6, "mode": "standard"},
    max_pool_connections=AWS_CONNECTIONS,
    user_agent_extra=USER_AGENT,
)
_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


async def off_loop(fn: Callable[[], T]) -> T:
    """Run the blocking boto3 call `fn` on an AWS worker thread, with this task's context.

    Cancelling the caller does not stop the call: it runs to its end in its thread."""
    # One pool per process, made on first use (not on import), shared by every adapter.
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(AWS_CONNECTIONS, thread_name_prefix="aws")
    call = functools.partial(contextvars.copy_context().run, fn)
    return await asyncio.get_running_loop().run_in_executor(_workers, call)


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call, after botocore's retries: `error` is AWS's error code (or the
    exception's name when no answer came), None when it succeeded."""

    service: str
    """botocore's service id, hyphenated: `ecs`, `elastic-load-balancing-v2`, `cloudwatch`."""
    method: str
    """The API operation: `DescribeServices`."""
    error: str | None


CallListener = Callable[[AwsCall], None]
# Process-wide, as the clients and their worker threads are: two runtimes open in one process
# (as in some tests) each hear the other's calls too.
_listeners: list[CallListener] = []
_listeners_lock = threading.Lock()


@contextmanager
def listening(listener: CallListener) -> Iterator[None]:
    """While inside, `listener` hears every AWS call of this process, on the worker thread
    that made it: it must be thread-safe and quick; an exception it raises is logged."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _heard(event_name: str, **kwargs: Any) -> None:
    """botocore's `after-call` (an answer, maybe an error) or `after-call-error` (none came)."""
    _, service, method = event_name.split(".", 2)
    error: str | None = None
    if "exception" in kwargs:
        error = type(kwargs["exception"]).__name__
    else:
        status = kwargs["http_response"].status_code
        if status >= 300:
            parsed = kwargs.get("parsed") or {}
            error = str(
                kwargs["context"].get("error_code_override")
                or parsed.get("Error", {}).get("Code")
                or f"http_{status}"
            )
    call = AwsCall(service=service, method=method, error=error)
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(call)
        except Exception:
            # Counting a call must never fail it.
            log.exception("a listener of AWS calls failed on %s.%s", service, method)


def _new_client(service: str, region: str) -> Any:
    # boto3.client() is not thread-safe; a created client is.
    session: Any = boto3.session.Session()
    client = session.client(service, region_name=region, config=BOTO_CONFIG)
    client.meta.events.register("after-call", _heard)
    client.meta.events.register("after-call-error", _heard)
    return client


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
                self._clients[key] = _new_client(service, region)
            return self._clients[key]


class AwsAdapter:
    """What an adapter on boto3 starts from: the shared clients, or its own when given none."""

    def __init__(self, clients: AwsClients | None = None) -> None:
        self._clients = clients or AwsClients()


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
        return await off_loop(fn)
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

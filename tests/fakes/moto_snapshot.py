"""moto's state kept once per worker and copied back for every later test that needs it: the
sandbox's AWS estate (`seeded_once`), and the tests' ECS world (`tests/conftest.py`).

Seeding the sandbox's moto (about 110 calls: repositories and images, VPCs, load balancers,
target groups, clusters, services, buckets) costs about a second of CPU, and each sandbox test
starts a new sandbox. `seeded_once(seed)` wraps `LocalAws.seed`: the first seed of an estate
runs for real and keeps a deep copy of what moto then holds; a later seed of the same estate
(after `LocalAws.start` reset moto) puts a fresh deep copy of it back and returns the same ARNs.
One `deepcopy` over every service at once keeps the references between them (a target group's
VPC, a service's load balancers) pointing inside the copy.
"""

from __future__ import annotations

import copy
import copyreg
import logging
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from moto.backends import get_backend

from sandbox.aws import SEEDS, CanaryArns, Estate, LocalAws, Seed
from tests.fakes.untraced import untraced

# What the sandbox's seed steps fill. The rest stays as `LocalAws.start` left it: reset.
SEEDED = ("ec2", "elbv2", "ecs", "ecr", "s3", "cloudwatch", "rds")

# moto's backends hold locks; a copy gets new ones (nothing holds them between tests).
copyreg.pickle(type(threading.RLock()), lambda _lock: (threading.RLock, ()))
copyreg.pickle(type(threading.Lock()), lambda _lock: (threading.Lock, ()))

State = dict[str, dict[str, dict[str, Any]]]  # service -> account -> region -> backend
_kept: dict[str, tuple[State, list[CanaryArns]]] = {}
_sandbox_log = logging.getLogger("sandbox.aws")


@untraced  # a deep copy of moto's objects: neither runs any of the project's code
def capture(services: tuple[str, ...] = SEEDED) -> State:
    """A deep copy of what moto's backends for `services` hold now."""
    live: State = {
        name: {account: dict(regions) for account, regions in get_backend(name).items()}  # type: ignore[arg-type]
        for name in services
    }
    return copy.deepcopy(live)


@untraced
def restore(kept: State) -> None:
    """Put a fresh deep copy of `kept` into moto's backends (each region's backend replaced)."""
    for name, accounts in copy.deepcopy(kept).items():
        backends = get_backend(name)  # type: ignore[arg-type]
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backends[account][region] = backend


SeedFn = Callable[[LocalAws, Estate, tuple[Seed, ...]], list[CanaryArns]]


def seeded_once(seed: SeedFn) -> SeedFn:
    """`LocalAws.seed`, run once per estate and seed steps in this process, then restored."""

    def seeded(aws: LocalAws, estate: Estate, seeds: tuple[Seed, ...] = SEEDS) -> list[CanaryArns]:
        key = repr((estate, seeds))
        if key in _kept:
            state, arns = _kept[key]
            restore(state)
            # As `LocalAws.seed` says it seeded (the sandbox's log shows it on every start).
            _sandbox_log.info("seeded moto: restored the estate this worker seeded first")
            return list(arns)
        arns = seed(aws, estate, seeds)
        _kept[key] = (capture(), list(arns))
        return arns

    return seeded


class SharedServer:
    """One moto server per worker for every in-process sandbox (`LocalAws.start`/`close`):
    a sandbox test then starts from the same address, so the sandbox's and the bot's boto3
    clients made for it are made once, not in each test (about a tenth of a second of CPU
    each, a dozen per sandbox). `start` still resets moto; `close` leaves it serving."""

    def __init__(self) -> None:
        self._first: LocalAws | None = None

    def start(self, start: Callable[[LocalAws], None]) -> Callable[[LocalAws], None]:
        def started(aws: LocalAws) -> None:
            first = self._first
            if first is None or first._endpoint is None:
                start(aws)
                self._first = aws
                return
            aws._server = first._server
            aws._clients = first._clients
            aws._endpoint = first._endpoint
            _reset(first.endpoint)

        return started

    def close(self, close: Callable[[LocalAws], None]) -> Callable[[LocalAws], None]:
        def closed(aws: LocalAws) -> None:
            first = self._first
            if first is None or aws._server is not first._server:
                close(aws)
            elif aws is not first:
                aws._endpoint = None

        return closed

    def stop(self) -> None:
        if self._first is not None:
            self._first._server.stop()
            self._first = None


def _reset(endpoint: str) -> None:
    request = urllib.request.Request(endpoint + "/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own moto server
        pass

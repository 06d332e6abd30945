"""Shared fixtures: fake Slack, fake health, moto ECS, a FakeClock and a running bot."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import botocore.loaders
import botocore.session
import pytest
import yaml
from moto import mock_aws
from moto.server import ThreadedMotoServer

from bot.settings import Settings
from pipeline.aws import BotoEcs
from pipeline.aws import calls as calls_module
from pipeline.kernel.config import Config
from pipeline.kernel.ports import Ecs
from sandbox.aws import LocalAws
from sandbox.slack import SEED_USERS, User
from store.backends.sqlite import SqliteBackend
from tests.driver import SIGNING_SECRET, BotDriver
from tests.fakes.aws_proxy import EcsProxy
from tests.fakes.clock import FakeClock
from tests.fakes.ecs import FakeEcs
from tests.fakes.ecs_world import REGION, REPO, EcsWorld
from tests.fakes.health import FakeHealth
from tests.fakes.moto_snapshot import (
    SharedServer,
    State,
    capture,
    restore,
    seeded_once,
)
from tests.fakes.postgres import SKIP_REASON, PostgresCluster, find_binaries, start_cluster
from tests.fakes.slack_api import FakeSlack
from tests.fakes.untraced import answer_untraced

SERVICES = ("api-gateway", "auth-svc", "market-svc")
STAGING_PATH = "/staging"
APPROVERS = ["UAPPROVER1", "UAPPROVER2", "S0LEADS"]
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"


def pytest_configure(config: pytest.Config) -> None:
    answer_untraced()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow (real time: the sandbox, the browser, the crash matrix) run first, so
    that on pytest-xdist workers the quick ones fill the cores around them instead of leaving
    one worker on a long test at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@functools.cache
def _manifest() -> dict[str, Any]:
    """manifest.yml, parsed once per worker (every test's fake Slack reads it)."""
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def manifest_bot_scopes() -> list[str]:
    """The bot scopes manifest.yml asks for: what the fake Slack grants the bot."""
    return list(_manifest()["oauth_config"]["scopes"]["bot"])


def manifest_home_tab() -> bool:
    """Whether manifest.yml enables the App Home tab: without it the fake Slack refuses
    views.publish (`not_enabled`), as Slack does."""
    return bool(_manifest()["features"].get("app_home", {}).get("home_tab_enabled"))


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's Slack, chatops or AWS settings."""
    for name in list(os.environ):  # noqa: TID251 - tests scrub the process environment
        if name.startswith(("CHATOPS_", "SLACK_", "AWS_")) or name == "PORT":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")
    # moto's EC2 loads a few hundred public AMIs into every region it starts (and starts a
    # region again when mock_aws resets it): no test runs an instance, and the ALBs the canary
    # tests make need EC2 only for a VPC. About a sixth of the canary tests' CPU.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session in the test process shares one botocore data loader, so the service
    models (ECS's alone is a large JSON file) are parsed once per worker, not once per client.
    The bot makes a session per client, and moto resets boto3's default one: without this a
    test with a bot spends most of its setup re-reading the same JSON."""
    shared = botocore.loaders.create_loader()
    register = botocore.session.Session._register_data_loader

    def register_shared(session: botocore.session.Session) -> None:
        session._components.lazy_register_component("data_loader", lambda: shared)

    botocore.session.Session._register_data_loader = register_shared  # type: ignore[method-assign]
    yield
    botocore.session.Session._register_data_loader = register  # type: ignore[method-assign]


_BOTO_CLIENTS: dict[tuple[str, ...], Any] = {}
_BOTO_FILES = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def _boto_setting(name: str, value: str) -> str:
    """What an AWS_ variable tells boto3: for its config and credentials files, what they hold
    (the sandbox points both at a path that does not exist, a new one in each test)."""
    if name in _BOTO_FILES:
        path = Path(value)
        return f"{name}:{path.read_text(encoding='utf-8') if path.is_file() else None}"
    return f"{name}={value}"


@pytest.fixture(autouse=True)
def _reused_boto_clients(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's boto3 clients are made once per worker and handed to every later bot that
    would make the same one (same service, region, endpoints and credentials in the
    environment): making one costs about a tenth of a second of CPU, several per bot.
    moto's `mock_aws` answers through a hook every client has, so a client made in one test
    answers from the next test's moto. A test that registers its own botocore hooks on a
    client is marked `own_aws_clients` and gets new ones."""
    if request.node.get_closest_marker("own_aws_clients") is not None:
        return
    make = calls_module._new_client

    def reused(service: str, region: str) -> Any:
        environ = os.environ  # noqa: TID251 - the key is where boto3 would send the client
        where = tuple(
            sorted(_boto_setting(k, v) for k, v in environ.items() if k.startswith("AWS_"))
        )
        key = (service, region, *where)
        if key not in _BOTO_CLIENTS:
            _BOTO_CLIENTS[key] = make(service, region)
        return _BOTO_CLIENTS[key]

    monkeypatch.setattr(calls_module, "_new_client", reused)


@pytest.fixture(scope="session")
def _shared_moto() -> Iterator[SharedServer]:
    shared = SharedServer()
    yield shared
    shared.stop()


@pytest.fixture(autouse=True)
def _sandbox_seeded_once(monkeypatch: pytest.MonkeyPatch, _shared_moto: SharedServer) -> None:
    """A sandbox started in this worker serves its moto from the worker's one server, seeds
    it once and restores that state after (tests/fakes/moto_snapshot.py): more than a second
    of CPU per sandbox test."""
    monkeypatch.setattr(LocalAws, "seed", seeded_once(LocalAws.seed))
    monkeypatch.setattr(LocalAws, "start", _shared_moto.start(LocalAws.start))
    monkeypatch.setattr(LocalAws, "close", _shared_moto.close(LocalAws.close))


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `database` runs on both backends; one marked `sqlite_only` (it reads
    SQLite's own query plans) on SQLite alone."""
    if "database" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("database", BACKENDS[:1] if only else BACKENDS, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """What `Store.open` is given: a new SQLite file, then the URL of a new PostgreSQL
    database (skipped, saying why, where PostgreSQL is not installed)."""
    if request.param == "sqlite":
        return tmp_path / "chatops.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for this pytest process (tests/fakes/postgres.py), or a
    skip that says PostgreSQL is not installed."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(SKIP_REASON)
    cluster = start_cluster(binaries)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def _pg_template(postgres: PostgresCluster) -> str:
    """A database migrated once, that each test's database is copied from."""
    from store.backends.postgres import migrate, session

    with session(postgres.database("chatops_template")) as db:
        migrate(db)
    return "chatops_template"


_databases = itertools.count()


@pytest.fixture
def pg_url(postgres: PostgresCluster, _pg_template: str) -> Iterator[str]:
    """The URL (with a password) of a fresh, migrated, empty PostgreSQL database."""
    name = f"test_{next(_databases)}"
    yield postgres.database(name, template=_pg_template)
    postgres.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pg_empty_url(postgres: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database with no tables at all."""
    name = f"empty_{next(_databases)}"
    yield postgres.database(name)
    postgres.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


_WORLD: list[State] = []  # the world's ECS, made by the first test of this worker


@pytest.fixture
def world(aws: None) -> EcsWorld:
    """staging runs v1.3.0 everywhere; production runs v1.2.0. Built in moto once per worker
    (14 calls, about 60 ms of CPU under coverage) and copied back for each later test."""
    w = EcsWorld()
    if _WORLD:
        restore(_WORLD[0])
        w.has_clusters("staging", "production")
        return w
    for service in SERVICES:
        w.add_service("staging", service, "v1.3.0")
        w.add_service("production", service, "v1.2.0")
    _WORLD.append(capture(("ecs",)))
    return w


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 for tests that need ECS over HTTP (a proxy, a subprocess)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def ecs_proxy(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EcsProxy]:
    """A fault-injecting proxy in front of a freshly reset moto server; the bot's ECS goes
    through it (`AWS_ENDPOINT_URL`). Don't mix with `aws`/`world` (in-process moto)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{moto_server}/moto-api/reset") as resp,
    ):
        assert resp.status == 200
    proxy = EcsProxy(moto_server)
    await proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    await proxy.close()


@pytest.fixture
def served_world(moto_server: str, ecs_proxy: EcsProxy) -> EcsWorld:
    """`world` on the moto server (talked to directly, not through the proxy)."""
    w = EcsWorld(endpoint_url=moto_server)
    for service in SERVICES:
        w.add_service("staging", service, "v1.3.0")
        w.add_service("production", service, "v1.2.0")
    return w


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(
        groups={"S0LEADS": ["ULEAD1", "ULEAD2"]},
        users=(
            *SEED_USERS,
            User("UCMD", "casey", "Casey Commander"),
            User("UDANA", "dana", "Dana Diaz"),
        ),
        scopes=manifest_bot_scopes(),
        home_tab_enabled=manifest_home_tab(),
    )
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def health() -> AsyncIterator[FakeHealth]:
    fake = FakeHealth()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def config_dict(health: FakeHealth) -> dict[str, Any]:
    return {
        "environments": {
            "staging": {
                "cluster": "skillancer-staging",
                # Image tags in ECR are the gate tests' subject; elsewhere nothing is pushed.
                "ecr_check": False,
                "region": REGION,
                "health": {"retries": 5, "interval": "15s", "timeout": "5s"},
                "rollout": {"stable_timeout": "10m", "poll_interval": "10s"},
            },
            "production": {
                "cluster": "skillancer-production",
                "ecr_check": False,
                "region": REGION,
                "required_approvals": 2,
                "approvers": APPROVERS,
                "confirm_buttons": True,
                "promote_from": "staging",
                "health": {"retries": 10, "interval": "30s", "timeout": "5s"},
                "rollout": {"stable_timeout": "15m", "poll_interval": "15s", "max_parallel": 2},
            },
        },
        "services": {
            s: {
                "image": f"{REPO}/{s}",
                # Staging answers under its own path, so a test can tell the two apart.
                "health_url": {
                    "staging": health.url(s) + STAGING_PATH,
                    "production": health.url(s),
                },
            }
            for s in SERVICES
        },
        "incidents": {"channel": "CINCIDENTS", "environment": "production"},
    }


@pytest.fixture
def config(health: FakeHealth) -> Config:
    return Config.model_validate(config_dict(health))


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every migration applied, made once per worker."""
    path = tmp_path_factory.mktemp("template") / "chatops.db"
    backend = SqliteBackend(path)
    backend.open()
    backend.close()
    return path


@pytest.fixture
def settings(tmp_path: Path, slack: FakeSlack, _migrated_sqlite: Path) -> Settings:
    """The bot's settings; its database starts as a copy of a migrated one (the same schema a
    first start makes, without applying the migrations again in every test)."""
    shutil.copyfile(_migrated_sqlite, tmp_path / "chatops.db")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        CHATOPS_DB=str(tmp_path / "chatops.db"),
    )


@pytest.fixture
async def bot(
    settings: Settings, config: Config, clock: FakeClock, world: EcsWorld, slack: FakeSlack
) -> AsyncIterator[BotDriver]:
    driver = BotDriver(settings=settings, config=config, clock=clock, ecs=BotoEcs(), slack=slack)
    await driver.start()
    yield driver
    await driver.stop()


@pytest.fixture
def fake_ecs() -> FakeEcs:
    """The same estate as `world` (staging v1.3.0, production v1.2.0), in memory."""
    fake = FakeEcs()
    for service in SERVICES:
        fake.add_service("staging", service, "v1.3.0")
        fake.add_service("production", service, "v1.2.0")
    return fake


BotFactory = Callable[[Ecs], Awaitable[BotDriver]]


@pytest.fixture
async def make_bot(
    settings: Settings, config: Config, clock: FakeClock, slack: FakeSlack
) -> AsyncIterator[BotFactory]:
    """Start a bot on another `Ecs` (a FakeEcs, or a wrapper around moto). Don't mix with `bot`."""
    drivers: list[BotDriver] = []

    async def make(ecs: Ecs) -> BotDriver:
        driver = BotDriver(settings=settings, config=config, clock=clock, ecs=ecs, slack=slack)
        await driver.start()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        await driver.stop()

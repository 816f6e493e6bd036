"""Shared fixtures: real service URLs (skip locally, fail in CI when unreachable) and namespaces."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

SERVICES = {
    "redis": (
        "GRISTMILL_TEST_REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "start it with: redis-server --daemonize yes --port 6379 --save '' --appendonly no",
    ),
    "nats": (
        "GRISTMILL_TEST_NATS_URL",
        "nats://127.0.0.1:4222",
        "start it with: nats-server -js -a 127.0.0.1 -p 4222 &",
    ),
    "postgres": (
        "GRISTMILL_TEST_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
}


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or {"redis": 6379, "nats": 4222}.get(parsed.scheme, 5432)
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def service_url(name: str) -> str:
    """The URL of a real service for tests: in CI an unreachable service fails the test."""
    env_var, default, how = SERVICES[name]
    url = os.environ.get(env_var, default)
    if not _reachable(url):
        message = f"{name} is not reachable at {url} (set {env_var}, or {how})"
        if IN_CI:
            pytest.fail(message + " — in CI real backends must run", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def redis_url() -> str:
    return service_url("redis")


@pytest.fixture
def nats_url() -> str:
    return service_url("nats")


@pytest.fixture
def postgres_url() -> str:
    return service_url("postgres")


@pytest.fixture
def namespace() -> str:
    """A name unique to this test, for streams, schemas and key prefixes."""
    return f"gmtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def workdir(tmp_path: object) -> Iterator[object]:
    """A temporary working directory for tests that write `.gristmill/` state."""
    old = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        yield tmp_path
    finally:
        os.chdir(old)

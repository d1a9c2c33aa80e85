"""The machine's real PostgreSQL, RabbitMQ and Redis for deployment tests, each test in its own namespace.

Every test gets its own Postgres database, RabbitMQ virtual host or Redis key prefix and removes it after.
A service found down is started with the machine's own command; if it still does not answer, the test
fails with a message saying what to run (it never skips: CI has these services).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOST = "127.0.0.1"
POSTGRES_PORT, RABBITMQ_PORT, REDIS_PORT = 5432, 5672, 6379
ROOT = Path(__file__).resolve().parents[2]

_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
    "Redis": (
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
        "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_service(name: str, port: int, wait: float = 60) -> None:
    """Make sure ``name`` listens on ``port``: start it with the machine's command if it does not."""
    if _answers(port):
        return
    subprocess.run(["sh", "-c", _START[name]], capture_output=True, timeout=120)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _answers(port):
            time.sleep(1)  # RabbitMQ accepts connections a moment before its vhosts are ready
            return
        time.sleep(0.5)
    pytest.fail(f"{name} is not answering on {HOST}:{port} and `{_START[name]}` did not start it")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- PostgreSQL -------------------------------------------------------------------------------------
def _pg_connect(db: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=POSTGRES_PORT, user="postgres", dbname=db)
    conn.autocommit = True
    return conn


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database (trust auth, user postgres); dropped afterwards with its connections."""
    ensure_service("PostgreSQL", POSTGRES_PORT)
    name = unique("radar_test")
    conn = _pg_connect()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield name
    finally:
        conn = _pg_connect()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def postgres_tables(db: str) -> set[str]:
    conn = _pg_connect(db)
    with conn.cursor() as cur:
        cur.execute("select tablename from pg_tables where schemaname = 'public'")
        names = {row[0] for row in cur.fetchall()}
    conn.close()
    return names


def postgres_environment(db: str) -> dict[str, str]:
    """The variables docker/dagster.yaml reads, pointing at ``db`` (trust auth ignores the password)."""
    return {
        "DAGSTER_POSTGRES_HOST": HOST,
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_POSTGRES_DB": db,
    }


# -- RabbitMQ ---------------------------------------------------------------------------------------
def _rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.fail("rabbitmqctl is not installed (RabbitMQ is part of this machine kind)")
    proc = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed (needs root or the rabbitmq user): {proc.stderr}")


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A new RabbitMQ virtual host that guest may use; yields the broker URL, deletes the vhost after."""
    ensure_service("RabbitMQ", RABBITMQ_PORT)
    vhost = unique("radar_test")
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"pyamqp://guest:guest@{HOST}:{RABBITMQ_PORT}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


# -- Redis ------------------------------------------------------------------------------------------
@contextmanager
def redis_prefix() -> Iterator[tuple[str, str]]:
    """A Redis broker URL and a key prefix of our own; every key under the prefix is deleted after."""
    ensure_service("Redis", REDIS_PORT)
    import redis

    prefix = unique("radar_test") + ":"
    try:
        yield f"redis://{HOST}:{REDIS_PORT}/0", prefix
    finally:
        client = redis.Redis(host=HOST, port=REDIS_PORT, db=0)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()

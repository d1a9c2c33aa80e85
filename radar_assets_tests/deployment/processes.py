"""Production processes on one machine: Dagster instance folders, Celery workers, servers, source seeding.

Shared by the deployment tests and ``bench/scale_out.py``. Every process starts in its own session (so a
test can SIGKILL it with its children) and logs to a file the failure message quotes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKER = ROOT / "docker"


#: GraphQL mutation that launches a partition backfill (the Materialize dialog's own call).
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def graphql(port: int, query: str, variables: dict) -> dict:
    """POST one query to the webserver on ``port``; its JSON answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


class Process:
    """A child process in its own session, logging to ``log``."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path = ROOT):
        self.name, self.args, self.env, self.cwd = name, args, dict(env), cwd
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Signal the whole session (a wrapper command and the process it started)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            self.signal(signal.SIGKILL)  # children left behind by a dead wrapper
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.signal(signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} ---\n" + (
            self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
        )


def stop_all(processes: Iterable[Process]) -> None:
    for proc in processes:
        proc.stop()


def base_environment(**variables: str) -> dict[str, str]:
    """This process's environment without its radar-assets settings, the venv's commands first on PATH
    (``dagster-celery worker`` starts ``celery`` by name), plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_ASSETS_")}
    if "RADAR_ASSETS_RENDER_CACHE_DIR" in os.environ:  # the suite's temporary lookup cache
        env["RADAR_ASSETS_RENDER_CACHE_DIR"] = os.environ["RADAR_ASSETS_RENDER_CACHE_DIR"]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYART_QUIET"] = "1"
    env.update(variables)
    return env


def with_bytecode_cache(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` whose Python processes cache compiled bytecode under ``folder`` even if this shell disables
    it (``PYTHONDONTWRITEBYTECODE``): as in the image (docker/Dockerfile compiles the package), a Dagster run
    process then imports the package's bytecode instead of compiling every module again. For benchmarks."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder)
    return env


def dagster_home(folder: Path, instance_yaml: Path = DOCKER / "dagster.yaml", **overrides) -> Path:
    """A DAGSTER_HOME holding the production instance file; ``overrides`` replace top-level blocks (the
    topology test lowers ``concurrency.runs.max_concurrent_runs`` to this 2-core machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(instance_yaml.read_text())
    config.update(overrides)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def seed_level2(source_root: Path, volumes: Iterable[Path]) -> list[tuple[str, str]]:
    """Copy real volumes into the public Level 2 layout; returns their (site, day) partitions."""
    partitions = []
    for volume in volumes:
        site, stamp = volume.name[:4], volume.name[4:12]
        day = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
        target = source_root / stamp[:4] / stamp[4:6] / stamp[6:8] / site / volume.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(volume, target)
        partitions.append((site, day))
    return sorted(set(partitions))


def celery_worker(
    name: str, env: Mapping[str, str], config_yaml: Path, log_dir: Path, cpu: int | None = None
) -> Process:
    """``dagster-celery worker start`` with one solo-pool process (one step at a time, killed with it);
    ``cpu`` pins it to one core with taskset."""
    args = [
        str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml),
        "-n", name, "--loglevel", "INFO", "--", "--pool=solo", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    if cpu is not None:
        args = ["taskset", "-c", str(cpu), *args]
    return Process(f"worker-{name}", args, env, log_dir)


def wait_until(predicate, timeout: float, what: str, processes: Iterable[Process] = (), every: float = 0.5):
    """Poll ``predicate`` until true; on timeout fail with the processes' logs."""
    processes = list(processes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        dead = [p for p in processes if not p.alive()]
        if dead:
            logs = "\n".join(p.tail() for p in dead)
            raise AssertionError(f"{', '.join(p.name for p in dead)} exited while waiting for {what}\n{logs}")
        time.sleep(every)
    logs = "\n".join(p.tail() for p in processes)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except Exception:
        return False


def celery_workers_ready(broker: str, names: Iterable[str], env: Mapping[str, str]) -> bool:
    """Whether every named worker answers a ping over the broker."""
    proc = subprocess.run(
        [str(BIN / "celery"), "-b", broker, "inspect", "ping", "-t", "3"],
        env=dict(env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return all(f"{name}@" in proc.stdout for name in names)

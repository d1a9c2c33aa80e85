"""Scale-out on Dagster's own engine: the same backfill with one and with two ``dagster-celery`` workers.

The backfill: ``raw_scans`` + ``rendered_sweeps`` for four KLOT site-days holding 24 real Level 2
volumes (the six real KLOT volumes of ``../shared/data/level2/KLOT``, keyed at their own times of day on
four consecutive days, so every scan id is distinct). One run per partition, all four launched at once
(``dagster asset materialize``, the run process only orchestrates); every step runs on a Celery worker.
Each worker is one solo-pool process pinned to its own core with ``taskset``; the broker is RabbitMQ (its
own virtual host), the instance is the production ``docker/dagster.yaml`` on PostgreSQL (its own
database), the store a local folder (fresh for each measurement).

The run processes (one per partition) are not pinned: they orchestrate (load the code, submit steps,
wait), which costs the same with one or two workers, so on a two-core machine they take time from the
two-worker case that the one-worker case gets from the idle second core; efficiency is therefore a lower
bound, and lower still when other work shares the machine.

Prints one JSON line: ``{"partitions", "volumes", "workers_1_s", "workers_2_s", "scaling_efficiency"}``
with efficiency = workers_1_s / (2 * workers_2_s) (1.0 = perfect; the target is >= 0.8). The baseline
(one worker) is measured in the same run.

The render size defaults to the platform's own (2048 px, ``RADAR_ASSETS_RENDER_SIZE``). Smaller images make
each step short next to the fixed cost of orchestrating it, so the figure then measures orchestration more
than scale-out (measured here: 0.82 at 2048 px, 0.60 at 1024 px, same machine, same run of the code).

    .venv/bin/python bench/scale_out.py [--size 2048] [--days 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import yaml  # noqa: E402

from radar_assets.defs.executors import BROKER_VARIABLE, worker_config  # noqa: E402
from radar_assets.settings import Settings  # noqa: E402
from radar_assets_tests.deployment.processes import (  # noqa: E402
    BIN,
    Process,
    base_environment,
    celery_worker,
    celery_workers_ready,
    dagster_home,
    stop_all,
    wait_until,
)
from radar_assets_tests.deployment.services import (  # noqa: E402
    postgres_database,
    postgres_environment,
    rabbitmq_vhost,
)

KLOT = ROOT.parent / "shared" / "data" / "level2" / "KLOT"


def seed(source: Path, days: int) -> list[str]:
    """The six real KLOT volumes on each of ``days`` consecutive days; returns the partition keys."""
    volumes = sorted(p for p in KLOT.iterdir() if p.is_file())
    keys = []
    for offset in range(days):
        day = f"2024-05-{offset + 1:02d}"
        folder = source / "2024" / "05" / f"{offset + 1:02d}" / "KLOT"
        folder.mkdir(parents=True)
        for volume in volumes:
            clock = volume.name[13:19]  # HHMMSS of the real volume
            shutil.copy(volume, folder / f"KLOT{day.replace('-', '')}_{clock}_V06")
        keys.append(f"{day}|KLOT")
    return keys


def measure(workers: int, work: Path, days: int, size: int) -> tuple[float, int]:
    """Wall seconds of the backfill with ``workers`` pinned workers; returns (seconds, volumes)."""
    with postgres_database() as db, rabbitmq_vhost() as broker:
        home = work / f"home-{workers}"
        keys = seed(home / "source", days)
        volumes = sum(1 for _ in (home / "source").rglob("*_V06"))
        instance_dir = dagster_home(work / f"dagster-{workers}")
        env = base_environment(
            **postgres_environment(db),
            DAGSTER_HOME=str(instance_dir),
            RADAR_ASSETS_HOME=str(home),
            # A cold lookup cache for each measurement, so the second does not reuse the first's tables.
            RADAR_ASSETS_RENDER_CACHE_DIR=str(work / f"lookups-{workers}"),
            RADAR_ASSETS_EXECUTION_EXECUTOR="celery",
            **{BROKER_VARIABLE: broker},
        )
        settings = Settings(home=home, execution={"executor": "celery", "broker_url": broker})
        celery_yaml = work / f"celery-{workers}.yaml"
        celery_yaml.write_text(yaml.safe_dump(worker_config(settings)))
        os.environ.update(postgres_environment(db))  # this process opens the same instance
        with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
            instance.add_dynamic_partitions("sites", ["KLOT"])
        logs = work / f"logs-{workers}"
        logs.mkdir()
        names = [f"w{i + 1}" for i in range(workers)]
        pool = [celery_worker(name, env, celery_yaml, logs, cpu=i) for i, name in enumerate(names)]
        runs: list[Process] = []
        try:
            wait_until(lambda: celery_workers_ready(broker, names, env), 180, "the workers", pool)
            config = json.dumps({"ops": {"rendered_sweeps": {"config": {"size": size}}}})
            start = time.perf_counter()
            for key in keys:
                args = [str(BIN / "dagster"), "asset", "materialize", "-m", "radar_assets.definitions",
                        "--select", "raw_scans,rendered_sweeps", "--partition", key, "--config-json", config]  # fmt: skip
                runs.append(Process(f"run-{key[:10]}", args, env, logs))
            for run in runs:
                if run.proc.wait(timeout=3600) != 0:
                    raise RuntimeError(run.tail())
            elapsed = time.perf_counter() - start
        finally:
            stop_all(runs + pool)
        return elapsed, volumes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="render size of rendered_sweeps (pixels)")
    parser.add_argument("--days", type=int, default=4, help="KLOT site-days (six real volumes each)")
    args = parser.parse_args()
    if not KLOT.exists():
        raise SystemExit(f"needs the real volumes in {KLOT} (../shared/data beside the project)")
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        work = Path(tmp)
        one, volumes = measure(1, work, args.days, args.size)
        two, _ = measure(2, work, args.days, args.size)
    print(
        json.dumps(
            {
                "partitions": args.days,
                "volumes": volumes,
                "render_size": args.size,
                "workers_1_s": round(one, 1),
                "workers_2_s": round(two, 1),
                "scaling_efficiency": round(one / (2 * two), 3),
            }
        )
    )


if __name__ == "__main__":
    main()

"""The executor every job of the code location runs its steps with, chosen by ``settings.execution``.

Scale-out uses Dagster's own engines, never home-made workers:

- ``in_process``: every step in the run's process (debugging, the smallest machines);
- ``multiprocess``: Dagster's default, one child process per step on the run's host (a run may still
  choose ``in_process`` in its run config);
- ``celery``: ``dagster-celery``; the run's process only orchestrates and every step is a Celery task
  executed by a ``dagster-celery worker`` process on any host that reaches the broker (RabbitMQ or
  Redis), the Dagster instance (Postgres) and the store (S3);
- ``k8s``: ``dagster-k8s``'s ``k8s_job_executor``, one Kubernetes Job per step (with the K8sRunLauncher;
  per-step resources in the run config, ``docker/k8s/run_config.yaml``).

The executor applies to every job that does not name its own, including the implicit asset job that
backfills and the UI's *Materialize* launch, so partitions of one backfill spread over the workers.

Celery delivery is at-least-once for a killed worker: tasks are acknowledged *after* they ran
(``task_acks_late``) and requeued when the worker process dies (``task_reject_on_worker_lost``), so a
SIGKILLed worker's step runs again on another worker. That is safe because every asset here is
idempotent (deterministic keys, atomic replace). RabbitMQ requeues at once when the connection drops;
Redis requeues after its ``visibility_timeout`` (:data:`REDIS_VISIBILITY_TIMEOUT`).

Workers must run with the same settings as the code location (they rebuild the job from
``radar_assets.definitions``) and the same Celery configuration: :func:`worker_config` is the YAML that
``dagster-celery worker start -A dagster_celery.app -y FILE`` takes (``docker/celery.yaml`` is it).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from radar_assets.settings import ExecutionSettings, Settings

BROKER_VARIABLE = "RADAR_ASSETS_EXECUTION_BROKER_URL"
#: Seconds after which Redis hands an unacknowledged task to another worker: longer than any step.
REDIS_VISIBILITY_TIMEOUT = 6 * 3600

#: Celery settings shared by the executor (the run's side) and the workers (``worker_config``).
CELERY_APP_CONFIG: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT,
    },
}


def _broker(settings: Settings) -> str | dict[str, str] | None:
    """The broker URL may hold a password: from the environment it stays an ``{"env": ...}`` reference,
    resolved by each process, never written into run configuration."""
    url = settings.execution.broker_url
    if url is None:
        return None
    if settings.from_environment(BROKER_VARIABLE):
        return {"env": BROKER_VARIABLE}
    return url.get_secret_value()


def celery_config(settings: Settings, **config_source: Any) -> dict[str, Any]:
    """The ``celery_executor`` configuration of these settings; ``config_source`` adds Celery settings
    (a test's Redis ``global_keyprefix``, for instance)."""
    config: dict[str, Any] = {
        "backend": settings.execution.backend,
        "config_source": {**CELERY_APP_CONFIG, **config_source},
    }
    broker = _broker(settings)
    if broker is not None:
        config["broker"] = broker
    return config


def worker_config(settings: Settings, **config_source: Any) -> dict[str, Any]:
    """What ``dagster-celery worker start -y FILE`` reads: the executor's block of a run config."""
    return {"execution": {"config": celery_config(settings, **config_source)}}


def executor_for(settings: Settings, **config_source: Any) -> dg.ExecutorDefinition:
    """The executor ``settings.execution.executor`` names."""
    kind: str = settings.execution.executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multi_or_in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(settings, **config_source), name="celery")
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"unknown executor {kind!r} (RADAR_ASSETS_EXECUTION_EXECUTOR)")


def executor_defs(settings: Settings) -> dg.Definitions:
    """The code location's default executor, as Definitions to merge."""
    return dg.Definitions(executor=executor_for(settings))


__all__ = ["ExecutionSettings", "celery_config", "executor_defs", "executor_for", "worker_config"]

"""Groups of run statuses the sensors and assets filter the instance's runs by (Dagster keeps its own private)."""

from __future__ import annotations

import dagster as dg

#: Launched and not executing yet.
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]
RUNNING = [dg.DagsterRunStatus.STARTED]
UNFINISHED = WAITING + RUNNING

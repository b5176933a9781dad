"""Where a sweep's points run, behind one small interface: `run(tasks)` yields each task's
(index, result or exception) as it finishes.

- `InlineExecutor`: in this process, one after another (`--jobs 1`);
- `ProcessExecutor`: a `concurrent.futures` process pool (`--jobs N`);
- `DaskExecutor`: dask.distributed, on a LocalCluster or an existing scheduler (`--executor dask
  [--scheduler ADDRESS]`); the workers need this package installed.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from agent.tuning.worker import Task, run_task

Outcome = tuple[int, dict[str, Any] | BaseException]


class Executor(Protocol):
    workers: int
    where: str
    """What runs the points, for the closing line: `1 process`, `4 worker processes`."""

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        """Run every task; yield (its index, its result or the exception it raised) as each
        finishes, in any order."""
        ...

    def close(self) -> None: ...


class InlineExecutor:
    workers = 1
    where = "1 process"

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        for i, task in enumerate(tasks):
            try:
                yield i, run_task(task)
            except Exception as exc:
                yield i, exc

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A process pool; each worker keeps its market data between points. Workers start with
    `forkserver` (safe beside the progress bar's thread) and are reused across `run` calls."""

    def __init__(self, jobs: int) -> None:
        method = "forkserver" if sys.platform != "win32" else "spawn"
        self.jobs = self.workers = jobs
        self.where = _count(jobs, "worker process", "worker processes")
        self.pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context(method),
        )

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        futures: dict[Future[dict[str, Any]], int] = {}
        pending = iter(enumerate(tasks))
        try:
            # a bounded queue: an interrupted sweep does not leave thousands of queued points
            for i, task in pending:
                futures[self.pool.submit(run_task, task)] = i
                if len(futures) >= 2 * self.jobs:
                    break
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    i = futures.pop(future)
                    exc = future.exception()
                    yield i, exc if exc is not None else future.result()
                    nxt = next(pending, None)
                    if nxt is not None:
                        futures[self.pool.submit(run_task, nxt[1])] = nxt[0]
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """dask.distributed: a LocalCluster of `jobs` single-threaded workers (`processes=False`
    keeps them in this process, for tests), or the scheduler at `address`."""

    def __init__(self, jobs: int, address: str | None = None, *, processes: bool = True) -> None:
        import logging

        from dask.distributed import Client, LocalCluster

        self.cluster = None
        if address:
            self.client = Client(address, timeout="10s")
        else:
            self.cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        self.workers = len(self.client.scheduler_info()["workers"]) or jobs
        self.where = _count(self.workers, "dask worker", "dask workers")

    def run(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        from dask.distributed import as_completed

        futures = {
            self.client.submit(run_task, task, pure=False, key=f"spillover-point-{i}-{id(task)}"): i
            for i, task in enumerate(tasks)
        }
        try:
            for future in as_completed(futures):
                i = futures[future]
                if future.status == "error":
                    yield i, future.exception()
                else:
                    yield i, future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"

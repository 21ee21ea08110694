"""Where a sweep's runs execute: three backends behind ``concurrent.futures.Executor``.

- :class:`InProcessExecutor`: runs each ``submit()`` at once, in the caller's
  process and thread (tests, debugging; no parallelism).
- :func:`local_executor`: a process pool on this machine (the default). Each
  worker sets ``torch.set_num_threads(max(1, cores // workers))`` when it
  starts, so the workers together use the cores once, not ``workers`` times,
  exits at once on Ctrl-C, and dies with the sweep's process however that
  ends (:mod:`neurograph.studies.no_orphans`).
- :func:`dask_executor`: a Dask distributed cluster, either an existing
  scheduler (``tcp://host:port``) or a ``LocalCluster`` started here on the
  loopback interface only, whose workers also die with this process. Dask is
  the optional extra ``neurograph[dask]``, imported only when this backend is
  asked for.

A sweep only calls ``submit`` and ``shutdown``, so any other
``concurrent.futures.Executor`` works too.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
from typing import Callable

from neurograph.studies.no_orphans import die_with_parent

__all__ = [
    "EXECUTORS",
    "ExecutorError",
    "InProcessExecutor",
    "DaskExecutor",
    "cpu_count",
    "threads_per_worker",
    "local_executor",
    "dask_executor",
    "make_executor",
]

EXECUTORS = ("local", "inprocess", "dask")
SCHEDULER_TIMEOUT = "10s"  # an unreachable scheduler should fail fast, not hang the command


class ExecutorError(RuntimeError):
    """An executor that cannot be started (missing extra, unreachable scheduler)."""


class InProcessExecutor(cf.Executor):
    """Runs each submitted call synchronously; the returned future is already done.

    An exception of the call is stored in the future, as a pool would do;
    KeyboardInterrupt and SystemExit propagate out of ``submit``.
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable, /, *args, **kwargs) -> cf.Future:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:
            future.set_exception(e)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


def cpu_count() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` processes sharing this machine."""
    return max(1, cpu_count() // max(1, workers))


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _start_pool_worker(threads: int, parent: int) -> None:
    """Pool worker setup: its share of the cores, it dies with ``parent``, and Ctrl-C ends it at once.

    Ctrl-C reaches the whole process group. With Python's handler a worker
    would finish its run's interrupt and then take the next queued run; the
    system's default action ends it on the spot, by the signal (the command
    line, not the library, chooses exit codes). Stopping anywhere is safe:
    checkpoints are replaced atomically, and a resume cuts the logs back to
    the last one.
    """
    die_with_parent(parent)
    _set_torch_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def local_executor(workers: int) -> cf.ProcessPoolExecutor:
    """Process pool of ``workers`` spawned processes, each with its share of the cores."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # spawn, not fork: a forked torch (OpenMP pools, locks held by other threads) can hang
    return cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_pool_worker,
        initargs=(threads_per_worker(workers), os.getpid()),
    )


class DaskExecutor(cf.Executor):
    """A ``distributed.Client``'s executor that also closes the client (and its cluster) on shutdown.

    ``Client`` itself is not a ``concurrent.futures.Executor`` (its ``map``
    returns dask futures); ``Client.get_executor()`` is, but leaves the client
    open. Calls are submitted with ``pure=False``: a run writes files, so two
    submissions of one job must not be merged into one by dask's task keys.
    """

    def __init__(self, client, cluster=None) -> None:
        self.client = client
        self.cluster = cluster
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable, /, *args, **kwargs) -> cf.Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait and not cancel_futures)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def dask_executor(workers: int, scheduler: str | None = None) -> DaskExecutor:
    """Executor on a Dask cluster: ``scheduler`` (``tcp://host:port``) or a new loopback LocalCluster.

    The LocalCluster has ``workers`` single-threaded worker processes, each
    with ``cores // workers`` torch threads, that die with this process.
    Workers of an existing scheduler get one torch thread per process (their
    cores are not known here) and are left alone.
    """
    distributed = _import_distributed()
    cluster = None
    try:
        if scheduler is None:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",  # loopback only: nothing outside this machine can connect
                dashboard_address=None,
            )
            client = distributed.Client(cluster)
            threads, parent = threads_per_worker(workers), os.getpid()  # the nannies live here
        else:
            client = distributed.Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            threads, parent = 1, None
    except (OSError, TimeoutError) as e:
        if cluster is not None:
            cluster.close()
        where = scheduler or "a local cluster"
        raise ExecutorError(f"cannot connect to dask scheduler {where}: {' '.join(str(e).split())}") from None
    client.register_plugin(_torch_threads_plugin(distributed, threads, parent), name="neurograph-torch-threads")
    return DaskExecutor(client, cluster)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ExecutorError(
            "executor 'dask' needs the optional dependency dask.distributed: pip install 'neurograph[dask]'"
        ) from None
    return distributed


def _torch_threads_plugin(distributed, threads: int, parent: int | None):
    """Worker plugin that sets torch's thread count on every worker, present and future,
    and makes each die with process ``parent`` (None: leave them be)."""

    class TorchThreads(distributed.WorkerPlugin):  # defined here: dask is imported only when used
        def __init__(self, n: int, parent: int | None) -> None:
            self.n, self.parent = n, parent

        def setup(self, worker) -> None:
            if self.parent is not None:
                die_with_parent(self.parent, kernel=False)  # a nanny's helper thread started it: see no_orphans
            _set_torch_threads(self.n)

    return TorchThreads(threads, parent)


def make_executor(kind: str, workers: int, scheduler: str | None = None) -> cf.Executor:
    """Executor of ``kind`` (one of :data:`EXECUTORS`); the caller shuts it down."""
    if kind == "inprocess":
        return InProcessExecutor()
    if kind == "local":
        return local_executor(workers)
    if kind == "dask":
        return dask_executor(workers, scheduler)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")

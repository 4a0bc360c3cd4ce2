"""The seed-parallel runner: a chapter's per-seed replicates, run in worker processes.

The book's networks are so small that one torch thread per process is the fastest way to
use a machine: two threads on two busy cores spend most of their time waiting for each
other, while two processes of one thread each keep both cores busy.  :func:`run_tasks`
therefore runs a list of independent tasks - one replicate, one seed, one corpus size -
on ``workers`` processes, each task on one torch thread, and returns their results in
the order of the tasks.

* ``ESSAY_WORKERS`` sets the number of worker processes (default: the machine's core
  count); ``1`` runs every task in this process, one after another.
* ``ESSAY_CLUSTER=<scheduler address>`` sends the same tasks to a Dask distributed
  cluster through joblib's ``dask`` backend, for a full-scale book on many machines.

The engine is joblib (local processes via its ``loky`` backend); nothing here is our own
scheduler.  Every task runs under the same conditions wherever it runs: one torch
thread, the caller's default dtype, and torch's, NumPy's and Python's global generators
seeded from the task's own seed (:func:`~bayes_at_scale.core.settings.derive_seed`) and
restored afterwards - so results are bit-identical whether the tasks run in this process
or in others, and whatever the number of workers.  A task's function and arguments must
be picklable (module-level functions, plain data, recipes), and so must its result.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from .checks import check_int
from .settings import (
    derive_seed,
    quiet_library_warnings,
    quiet_progress,
    seed_everything,
    torch_threads,
)

#: Key of :func:`derive_seed` for the global generators a task starts from.
GLOBAL_STREAM = 0


def workers_from_env() -> int:
    """``ESSAY_WORKERS`` (a positive integer), or the machine's core count when it is
    unset."""
    raw = os.environ.get("ESSAY_WORKERS", "")
    if raw == "":
        return os.cpu_count() or 1
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"ESSAY_WORKERS must be a positive integer, got {raw!r}"
        ) from None
    if value < 1:
        raise ValueError(f"ESSAY_WORKERS must be a positive integer, got {raw!r}")
    return value


def cluster_from_env() -> str | None:
    """``ESSAY_CLUSTER``, the address of a Dask scheduler, or None when it is unset."""
    return os.environ.get("ESSAY_CLUSTER") or None


@contextlib.contextmanager
def _seeded_globals(seed: int):
    """Seed Python's, NumPy's and torch's global generators from ``seed``; restore them
    after."""
    state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        seed_everything(derive_seed(seed, GLOBAL_STREAM))
        try:
            yield
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])


def _task(fn: Callable, args: tuple, kwargs: dict, seed: int, dtype: torch.dtype):
    """One task as it runs in any process: one torch thread, the caller's dtype, seeded
    globals."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with (
            torch_threads(1),
            _seeded_globals(seed),
            quiet_progress(),
            warnings.catch_warnings(),
        ):
            quiet_library_warnings()
            return fn(*args, **kwargs)
    finally:
        torch.set_default_dtype(before)


def _parallel(n_jobs: int):
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs, backend="loky", inner_max_num_threads=1)


def run_tasks(
    fn: Callable | Sequence[Callable],
    tasks: Iterable[tuple],
    seeds: Sequence[int],
    *,
    kwargs: Sequence[dict] | None = None,
    workers: int | None = None,
    cluster: str | None = None,
) -> list:
    """``[fn(*task, **kw) for task, kw in zip(tasks, kwargs)]``, run in parallel.

    ``fn`` is one function for every task, or a sequence of functions, one per task (so
    that a chapter's unequal tasks - say, one heavy replicate and several light ones of
    another experiment - share one pool and no worker waits idle).  ``seeds`` gives each
    task the seed its global generators start from (usually the seed the task's
    arguments carry). ``workers`` (default ``ESSAY_WORKERS``) processes run the tasks;
    with ``cluster`` (default ``ESSAY_CLUSTER``) they go to that Dask scheduler instead.
    Torch's thread count and default dtype are the same after the call as before it.
    """
    tasks = [tuple(t) for t in tasks]
    seeds = [check_int("seed", s, minimum=0) for s in seeds]
    if len(seeds) != len(tasks):
        raise ValueError(
            f"one seed per task: got {len(seeds)} seeds for {len(tasks)} tasks"
        )
    kwargs = [{} for _ in tasks] if kwargs is None else [dict(k) for k in kwargs]
    if len(kwargs) != len(tasks):
        raise ValueError(
            f"one kwargs per task: got {len(kwargs)} for {len(tasks)} tasks"
        )
    fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * len(tasks)
    if len(fns) != len(tasks):
        raise ValueError(
            f"one function per task: got {len(fns)} for {len(tasks)} tasks"
        )
    for f in fns:
        if not callable(f):
            raise TypeError(f"fn must be callable, got {type(f).__name__}")
    workers = workers_from_env() if workers is None else check_int("workers", workers)
    cluster = cluster_from_env() if cluster is None else cluster
    dtype = torch.get_default_dtype()
    jobs = [(f, t, k, s, dtype) for f, t, k, s in zip(fns, tasks, kwargs, seeds)]
    if cluster:
        return _on_cluster(jobs, cluster)
    if workers == 1 or len(jobs) <= 1:
        return [_task(*job) for job in jobs]
    from joblib import delayed

    with torch_threads(torch.get_num_threads()):  # restored whatever the workers did
        return _parallel(min(workers, len(jobs)))(delayed(_task)(*job) for job in jobs)


def _on_cluster(jobs: list, address: str) -> list:
    """The jobs on the Dask scheduler at ``address``, through joblib's dask backend."""
    try:
        from dask.distributed import Client
        from joblib import Parallel, delayed, parallel_config
    except ImportError as error:  # pragma: no cover - dask is in the pinned environment
        raise RuntimeError(
            "ESSAY_CLUSTER needs dask.distributed (pip install distributed)"
        ) from error
    with Client(address, set_as_default=False) as client:
        with parallel_config(backend="dask", client=client):
            return Parallel(n_jobs=-1)(delayed(_task)(*job) for job in jobs)


def replicates(
    fn: Callable,
    recipe,
    seeds: Sequence[int],
    *,
    workers: int | None = None,
    cluster: str | None = None,
    **kwargs,
) -> list:
    """``[fn(recipe, seed, **kwargs) for seed in seeds]``: a chapter's replicates, one
    per seed, run by :func:`run_tasks`."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("no seeds given")
    return run_tasks(
        fn,
        [(recipe, seed) for seed in seeds],
        seeds,
        kwargs=[kwargs] * len(seeds),
        workers=workers,
        cluster=cluster,
    )

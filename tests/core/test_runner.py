"""Tests of bayes_at_scale.core.runner: replicates in worker processes give exactly the results of
a sequential run, whatever the number of workers, locally or on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bayes_at_scale.core import runner
from bayes_at_scale.core.training import Recipe
from bayes_at_scale.experiments import frequentist_limit

TINY = Recipe(corpus=dict(n_families=2, n_subjects=3, n_tokens=2000),
              model=dict(d_model=8, n_heads=2, n_layers=1),
              training=dict(steps=8, lr=1e-2, weight_decay=1e-5))
SEEDS = (0, 1, 2)


def same_replicates(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.seed == y.seed
        pd.testing.assert_frame_equal(x.table, y.table, check_exact=True)
        for (name, p), q in zip(x.model.state_dict().items(), y.model.state_dict().values()):
            assert torch.equal(p, q), name


@pytest.fixture(scope="module")
def sequential():
    return runner.replicates(frequentist_limit.run_fragments, TINY, SEEDS, workers=1)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_equals_sequential(sequential, workers):
    parallel = runner.replicates(frequentist_limit.run_fragments, TINY, SEEDS, workers=workers)
    same_replicates(sequential, parallel)


def test_sequential_equals_a_plain_loop_on_one_thread(sequential):
    with torch.random.fork_rng(devices=[]):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            plain = [frequentist_limit.run_fragments(TINY, seed) for seed in SEEDS]
        finally:
            torch.set_num_threads(threads)
    same_replicates(sequential, plain)


def test_results_come_back_in_task_order(sequential):
    assert [r.seed for r in sequential] == list(SEEDS)
    assert not np.array_equal(sequential[0].corpus.fragments["n"],
                              sequential[1].corpus.fragments["n"])


def test_threads_dtype_and_random_state_are_restored():
    torch.set_num_threads(2)
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    runner.replicates(frequentist_limit.run_fragments, TINY, (0,), workers=1)
    assert torch.get_num_threads() == 2
    assert torch.get_default_dtype() == torch.float32
    assert torch.equal(torch.rand(2), expected)


def test_the_callers_dtype_reaches_the_task(float64):
    [rep] = runner.replicates(frequentist_limit.run_fragments, TINY, (0,), workers=1)
    assert rep.model.head.weight.dtype == torch.float64
    assert torch.get_default_dtype() == torch.float64


def test_run_tasks_passes_arguments_and_keywords():
    out = runner.run_tasks(divmod, [(7, 2), (9, 4)], seeds=[0, 0], workers=1)
    assert out == [(3, 1), (2, 1)]
    out = runner.run_tasks(int, [("ff",), ("11",)], seeds=[0, 1], kwargs=[{"base": 16}] * 2,
                           workers=1)
    assert out == [255, 17]


@pytest.mark.parametrize("workers", [1, 2])
def test_one_function_per_task(workers):
    out = runner.run_tasks([divmod, pow, divmod], [(7, 2), (2, 5), (9, 4)], seeds=[0, 1, 2],
                           workers=workers)
    assert out == [(3, 1), 32, (2, 1)]


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: runner.run_tasks([divmod], [(1, 2), (3, 4)], seeds=[0, 1]), ValueError,
     "one function per task"),
    (lambda: runner.run_tasks([divmod, 3], [(1, 2), (3, 4)], seeds=[0, 1]), TypeError,
     "fn must be callable"),
    (lambda: runner.run_tasks(divmod, [(1, 2)], seeds=[0, 1]), ValueError, "one seed per task"),
    (lambda: runner.run_tasks(divmod, [(1, 2)], seeds=[0], kwargs=[{}, {}]), ValueError,
     "one kwargs per task"),
    (lambda: runner.run_tasks(3, [(1, 2)], seeds=[0]), TypeError, "fn must be callable"),
    (lambda: runner.run_tasks(divmod, [(1, 2)], seeds=[-1]), ValueError, "seed must be an integer"),
    (lambda: runner.run_tasks(divmod, [(1, 2)], seeds=[0], workers=0), ValueError,
     "workers must be an integer >= 1"),
    (lambda: runner.replicates(divmod, None, []), ValueError, "no seeds given"),
])
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv("ESSAY_WORKERS", raising=False)
    assert runner.workers_from_env() >= 1
    monkeypatch.setenv("ESSAY_WORKERS", "3")
    assert runner.workers_from_env() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("ESSAY_WORKERS", bad)
        with pytest.raises(ValueError, match="ESSAY_WORKERS must be a positive integer"):
            runner.workers_from_env()
    monkeypatch.delenv("ESSAY_CLUSTER", raising=False)
    assert runner.cluster_from_env() is None
    monkeypatch.setenv("ESSAY_CLUSTER", "tcp://127.0.0.1:8786")
    assert runner.cluster_from_env() == "tcp://127.0.0.1:8786"


@pytest.mark.slow
def test_a_dask_cluster_gives_the_serial_results(sequential):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = runner.replicates(frequentist_limit.run_fragments, TINY, SEEDS,
                                   cluster=cluster.scheduler_address)
    same_replicates(sequential, remote)


def test_tasks_print_nothing(capfd):
    """A worker's stderr lands in the notebook cell that started it: tasks show no progress bars
    and no library warnings."""
    runner.replicates(frequentist_limit.run_fragments, TINY, (0,), workers=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


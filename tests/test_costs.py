"""Tests of chapter 7's cost benchmark (bayes_at_scale.costs and benchmarks/costs.py).

The command runs once, at the tiny scale, in a subprocess (one torch thread); everything else
is arithmetic on hand-made inputs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bayes_at_scale import costs
from bayes_at_scale.models import CausalLM
from bayes_at_scale.posteriors import FLAVOURS, flavour

ROOT = Path(__file__).resolve().parents[1]


# --- the command at the tiny scale ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("costs") / "tiny.json"
    env = {**os.environ, "ESSAY_THREADS": "1", "ESSAY_SEED": "0", "ESSAY_DTYPE": "float32"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "costs.py"), "--scale", "tiny",
         "--repeats", "2", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_command_writes_machine_readable_json(tiny_run):
    results, stdout = tiny_run
    assert results["command"].startswith(
        "python benchmarks/costs.py --scale tiny --repeats 2 --output ")
    assert results["scale"] == "tiny" and results["repeats"] == 2
    assert results["torch"] == torch.__version__
    assert results["threads"] == 1
    assert pd.Timestamp(results["timestamp"]).tzinfo is not None
    assert results["memory_method"] in ("proc_statm_sampled", "ru_maxrss_delta")
    for key in ("sweep", "scaling", "c13", "c14", "on_paper", "definitions", "wall_seconds"):
        assert key in results
    assert "C13 worst_cost_in_epochs" in stdout and "C14 auroc_ratio" in stdout


def test_sweep_times_are_positive_and_ratios_are_times_over_an_epoch(tiny_run):
    results, _ = tiny_run
    sweep = results["sweep"]
    assert [(r["d_model"], r["n_layers"]) for r in sweep] == list(costs.COST_SCALES["tiny"].sizes)
    for row in sweep:
        epoch = row["epoch_seconds"]
        assert epoch > 0 and row["token_epoch_seconds"] > 0
        assert epoch == pytest.approx(float(np.median(row["epoch_seconds_all"])))
        # two repeats of five networks, plus one probe before each of the fits of each repeat
        assert len(row["epoch_seconds_all"]) == 2 * 5 + 2 * len(FLAVOURS)
        assert row["ensemble_train_epochs"] == pytest.approx(row["ensemble_train_seconds"] / epoch)
        assert row["ensemble_train_seconds"] == pytest.approx(
            5 * float(np.median(row["member_train_seconds_all"])))
        assert row["map_predict_epochs_per_1000"] == pytest.approx(
            row["map_predict_seconds_per_1000"] / epoch)
        assert row["expansion"] == pytest.approx(row["pairs"] / row["contexts"]) and \
            row["expansion"] >= 1
        assert set(row["flavours"]) == set(FLAVOURS)
        for name, entry in row["flavours"].items():
            assert entry["status"] == "measured", (name, entry["reason"])
            assert entry["fit_seconds"] > 0 and len(entry["fit_seconds_all"]) == 2
            assert entry["fit_epochs"] == pytest.approx(entry["fit_seconds"] / epoch)
            assert entry["fit_token_epochs"] == pytest.approx(
                entry["fit_seconds"] / row["token_epoch_seconds"])
            assert entry["fit_epochs_adjacent"] > 0
            assert entry["sampled_seconds_per_1000"] > 0
            assert entry["sampled_epochs_per_1000"] == pytest.approx(
                entry["sampled_seconds_per_1000"] / epoch)
            assert entry["peak_rss_bytes"] >= 0
            assert entry["predicted_flops"] > 0 and entry["predicted_bytes"] > 0
            if FLAVOURS[name].subset_of_weights == "last_layer":
                assert entry["probit_seconds_per_1000"] > 0
                assert entry["probit_epochs_per_1000"] == pytest.approx(
                    entry["probit_seconds_per_1000"] / epoch)
            else:  # Monte Carlo predictive: no closed form
                assert entry["probit_seconds_per_1000"] is None
        kron = row["flavours"][costs.C13_FLAVOUR]
        assert kron["curvature_seconds"] > 0
        assert kron["curvature_epochs"] == pytest.approx(kron["curvature_seconds"] / epoch)


def test_claim_statistics_in_the_json_are_consistent(tiny_run):
    results, _ = tiny_run
    c13 = costs.c13_statistics(results, min_parameter_span=1)
    assert results["c13"]["worst_cost_in_epochs"] == pytest.approx(c13["worst_cost_in_epochs"])
    assert c13["worst_cost_in_epochs"] == pytest.approx(max(
        r["flavours"][costs.C13_FLAVOUR]["fit_epochs"] for r in results["sweep"]))
    c14 = results["c14"]
    assert 0 < c14["auroc_la"] <= 1 and 0 < c14["auroc_ensemble"] <= 1
    assert c14["auroc_ratio"] == pytest.approx(c14["auroc_la"] / c14["auroc_ensemble"])
    one = float(np.median(c14["train_seconds"]))
    assert c14["compute_la_seconds"] == pytest.approx(
        one + c14["la_fit_seconds"] + c14["la_predict_seconds"])
    assert c14["compute_ensemble_seconds"] == pytest.approx(
        5 * one + c14["ensemble_predict_seconds"])
    assert c14["compute_ratio"] == pytest.approx(
        c14["compute_la_seconds"] / c14["compute_ensemble_seconds"])
    assert len(c14["train_seconds"]) == 5


@pytest.mark.parametrize("argv, message", [(["--scale", "huge"], "invalid choice"),
                                           (["--repeats", "0"], "--repeats must be a positive"),
                                           (["--seed", "-1"], "--seed must be non-negative")])
def test_command_rejects_bad_arguments(argv, message, capsys):
    spec = importlib.util.spec_from_file_location("costs_command",
                                                  ROOT / "benchmarks" / "costs.py")
    command = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command)
    with pytest.raises(SystemExit) as exit_:
        command.parse(argv)
    assert exit_.value.code != 0 and message in capsys.readouterr().err


# --- budgets: skip, never crash -------------------------------------------------------------


def test_flavours_over_budget_are_skipped_with_the_reason():
    tiny = costs.COST_SCALES["tiny"]
    scale = replace(tiny, sizes=((4, 1),), budget_flops=0.0, budget_bytes=1e12,
                    flavours=("last_layer_kron", "last_layer_diag"), ensemble_size=2)
    (row,) = costs.run_sweep(scale, seed=0, repeats=1)
    diag = row["flavours"]["last_layer_diag"]
    assert diag["status"] == "skipped" and "flops exceed the budget" in diag["reason"]
    assert "fit_seconds" not in diag
    kron = row["flavours"]["last_layer_kron"]  # C13's flavour: measured all the same
    assert kron["status"] == "measured" and "C13" in kron["reason"]

    scale = replace(scale, budget_flops=1e12, budget_bytes=1.0)
    (row,) = costs.run_sweep(scale, seed=0, repeats=1)
    for entry in row["flavours"].values():
        assert entry["status"] == "skipped" and "memory" in entry["reason"]
    with pytest.raises(ValueError, match="last_layer_kron was not measured.*skipped"):
        costs.c13_statistics([row], min_parameter_span=1)


def test_predicted_cost_grows_with_the_model_and_rejects_bad_input():
    small = costs.model_shape(CausalLM(20, 4, d_model=8, n_heads=2, n_layers=1))
    large = costs.model_shape(CausalLM(20, 4, d_model=32, n_heads=2, n_layers=2))
    assert small["last_layer_parameters"] == 9 * 20
    for name in FLAVOURS:
        a = costs.predicted_fit_cost(flavour(name), small, 1000)
        b = costs.predicted_fit_cost(flavour(name), large, 1000)
        assert 0 < a["flops"] < b["flops"] and 0 < a["bytes"] < b["bytes"]
    full = costs.predicted_fit_cost(flavour("last_layer_full"), small, 1000)
    kron = costs.predicted_fit_cost(flavour("last_layer_kron"), small, 1000)
    assert full["flops"] > kron["flops"]
    with pytest.raises(ValueError, match="n_pairs"):
        costs.predicted_fit_cost(flavour("last_layer_kron"), small, 0)
    with pytest.raises(TypeError, match="PosteriorConfig"):
        costs.predicted_fit_cost("last_layer_kron", small, 10)
    with pytest.raises(ValueError, match="unknown cost scale"):
        costs.cost_scale("huge")
    with pytest.raises(ValueError, match="unknown posterior flavours"):
        replace(costs.COST_SCALES["tiny"], flavours=("nope",))
    with pytest.raises(ValueError, match="repeats"):
        costs.run_sweep("tiny", repeats=0)


def test_peak_memory_sees_a_tensor_held_in_the_block():
    with costs.PeakMemory() as memory:
        block = torch.ones(16 * 2**20 // 4, dtype=torch.float32)  # 16 MiB, touched
        block += 1
    assert memory.increase is not None and memory.increase >= 0
    if memory.method == "proc_statm_sampled":
        assert memory.increase >= 12 * 2**20
    del block


# --- power laws -----------------------------------------------------------------------------


def test_fit_power_law_recovers_a_known_exponent():
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    exponent, prefactor = costs.fit_power_law(x, 3.0 * x**1.5)
    assert exponent == pytest.approx(1.5, abs=1e-12)
    assert prefactor == pytest.approx(3.0, rel=1e-12)
    rng = np.random.default_rng(0)
    x = np.logspace(2, 6, 60)
    y = 0.02 * x**0.75 * np.exp(rng.normal(0, 0.1, x.size))
    exponent, prefactor = costs.fit_power_law(x, y)
    assert exponent == pytest.approx(0.75, abs=0.03)
    assert prefactor == pytest.approx(0.02, rel=0.3)


@pytest.mark.parametrize("x, y, message", [
    ([1, 2, 0], [1, 2, 3], "strictly positive"),
    ([1, 2, 3], [1, -2, 3], "strictly positive"),
    ([1, 2, 3], [1, 2], "same length"),
    ([1, 2, np.nan], [1, 2, 3], "NaN"),
    ([2, 2, 2], [1, 2, 3], "two distinct"),
    ([5], [1], "two distinct"),
])
def test_fit_power_law_rejects_bad_input(x, y, message):
    with pytest.raises(ValueError, match=message):
        costs.fit_power_law(x, y)


# --- the claims on hand-made inputs ---------------------------------------------------------


def _size(parameters, epoch, fit, status="measured"):
    entry = {"status": status, "reason": None if status == "measured" else "too big"}
    if status == "measured":
        entry["fit_seconds"] = fit
    return {"d_model": 8, "n_layers": 1, "parameters": parameters, "epoch_seconds": epoch,
            "flavours": {costs.C13_FLAVOUR: entry}}


def test_c13_statistics_by_hand():
    rows = [_size(1_000, 0.01, 0.012), _size(30_000, 0.1, 0.25), _size(200_000, 1.0, 1.5)]
    stats = costs.c13_statistics(rows)
    assert stats["worst_cost_in_epochs"] == pytest.approx(2.5)
    assert stats["worst_parameters"] == 30_000
    assert stats["parameter_span"] == pytest.approx(200)
    assert costs.c13_statistics({"sweep": rows}) == stats


def test_c13_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="spans a factor 30"):
        costs.c13_statistics([_size(1_000, 0.01, 0.02), _size(30_000, 0.1, 0.2)])
    with pytest.raises(ValueError, match="not measured at .*skipped: too big"):
        costs.c13_statistics([_size(1_000, 0.01, 0.02),
                              _size(200_000, 0.1, 0.2, status="skipped")])
    with pytest.raises(ValueError, match="epoch_seconds .* positive"):
        costs.c13_statistics([_size(1_000, 0.0, 0.02), _size(200_000, 0.1, 0.2)])
    with pytest.raises(ValueError, match="no model sizes"):
        costs.c13_statistics([])
    with pytest.raises(TypeError, match="results"):
        costs.c13_statistics(3.0)


def test_c14_statistics_by_hand():
    stats = costs.c14_statistics(0.72, 0.8, 2.0, 20.0)
    assert stats == {"auroc_ratio": pytest.approx(0.9), "compute_ratio": pytest.approx(0.1)}
    with pytest.raises(ValueError, match=r"auroc_la must lie in \(0, 1\]"):
        costs.c14_statistics(1.2, 0.8, 2.0, 20.0)
    with pytest.raises(ValueError, match="auroc_ensemble must be a positive"):
        costs.c14_statistics(0.7, 0.0, 2.0, 20.0)
    with pytest.raises(ValueError, match="compute_ensemble must be a positive"):
        costs.c14_statistics(0.7, 0.8, 2.0, 0.0)
    with pytest.raises(ValueError, match="compute_la must be a positive finite"):
        costs.c14_statistics(0.7, 0.8, math.inf, 1.0)
    with pytest.raises(TypeError, match="must be a number"):
        costs.c14_statistics(0.7, 0.8, "2", 1.0)


# --- on paper -------------------------------------------------------------------------------


def test_llm_laplace_costs_arithmetic_by_hand():
    table = costs.llm_laplace_costs(hidden=4096, vocab=32_000, layers=32).set_index("method")
    h, v, n_layers = 4096, 32_000, 32
    last = table.loc["last_layer_kfac"]
    assert last["memory_bytes"] == 4 * (4097**2 + 32_000**2)
    assert last["vocab_bytes"] == 4 * 32_000**2 and last["depth_bytes"] == 0
    assert last["decomposition_flops"] == 4097**3 + 32_000**3
    assert last["parameters"] == 4097 * 32_000
    assert table.loc["last_layer_full", "memory_bytes"] == 4 * (4097 * 32_000) ** 2
    allw = table.loc["all_weights_kfac"]
    assert allw["depth_bytes"] == 4 * n_layers * 42 * h * h   # 4 (2 h^2) + 2 (h^2 + 16 h^2)
    assert allw["memory_bytes"] == 4 * (n_layers * 42 * h * h + 4097**2 + v**2)
    assert allw["parameters"] == n_layers * 12 * h * h + 4097 * v
    lora = table.loc["laplace_lora_kfac"]  # q and v adapters of rank 8
    assert lora["memory_bytes"] == 4 * 2 * n_layers * (2 * h * h + 2 * 8 * 8)
    assert lora["parameters"] == 2 * n_layers * 8 * 2 * h and lora["vocab_bytes"] == 0
    low = table.loc["laplace_lora_kfac_low_rank"]
    assert low["memory_bytes"] == 4 * 2 * n_layers * (2 * (h * 10 + 10) + 2 * 64)
    assert (table["memory_gib"] == table["memory_bytes"] / 2**30).all()


def test_llm_laplace_costs_grid_shows_what_grows_with_what():
    table = costs.llm_laplace_costs(vocab=costs.LLM_VOCABS, layers=costs.LLM_LAYERS)
    assert len(table) == 5 * 2 * 2
    by = table.set_index(["method", "vocab", "layers"])["memory_bytes"]
    # the last layer grows with the vocabulary only, Laplace-LoRA with depth only
    assert by["last_layer_kfac", 32_000, 32] == by["last_layer_kfac", 32_000, 80]
    assert by["last_layer_kfac", 128_000, 32] > 10 * by["last_layer_kfac", 32_000, 32]
    assert by["laplace_lora_kfac", 32_000, 80] == by["laplace_lora_kfac", 128_000, 80]
    assert by["laplace_lora_kfac", 32_000, 80] == 2.5 * by["laplace_lora_kfac", 32_000, 32]
    assert (table["vocab_bytes"] + table["depth_bytes"] <= table["memory_bytes"]).all()


@pytest.mark.parametrize("kwargs", [dict(hidden=0), dict(vocab=[]), dict(layers=[32, -1]),
                                    dict(vocab="32000"), dict(lora_rank=0),
                                    dict(ffn_mult=[4, 8]), dict(hidden=True)])
def test_llm_laplace_costs_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        costs.llm_laplace_costs(**kwargs)

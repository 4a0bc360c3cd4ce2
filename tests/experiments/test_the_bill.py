"""Tests of chapter 7's experiment (bayes_at_scale.experiments.the_bill) and its command,
benchmarks/costs.py.

The command runs once, at the tiny scale, in a subprocess (one torch thread); everything else
is arithmetic on hand-made inputs.
"""

from __future__ import annotations

import hashlib
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

from bayes_at_scale.book import claims
from bayes_at_scale.core import profiling
from bayes_at_scale.experiments import the_bill
from bayes_at_scale.core.posteriors import FLAVOURS

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
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


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_sweep_times_are_positive_and_ratios_are_times_over_an_epoch(tiny_run):
    results, _ = tiny_run
    sweep = results["sweep"]
    assert [(r["d_model"], r["n_layers"]) for r in sweep] == list(the_bill.RECIPES["tiny"].sizes)
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
        kron = row["flavours"][the_bill.C13_FLAVOUR]
        assert kron["curvature_seconds"] > 0
        assert kron["curvature_epochs"] == pytest.approx(kron["curvature_seconds"] / epoch)


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_claim_statistics_in_the_json_are_consistent(tiny_run):
    results, _ = tiny_run
    c13 = the_bill.c13_statistics(results, min_parameter_span=1)
    assert results["c13"]["worst_cost_in_epochs"] == pytest.approx(c13["worst_cost_in_epochs"])
    assert c13["worst_cost_in_epochs"] == pytest.approx(max(
        r["flavours"][the_bill.C13_FLAVOUR]["fit_epochs"] for r in results["sweep"]))
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


def _command():
    """benchmarks/costs.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("costs_command",
                                                  ROOT / "benchmarks" / "costs.py")
    command = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(command)
    return command


@pytest.mark.parametrize("argv, message", [(["--scale", "huge"], "invalid choice"),
                                           (["--record", "--output", "x.json"],
                                            "not allowed with argument"),
                                           (["--repeats", "0"], "--repeats must be a positive"),
                                           (["--seed", "-1"], "--seed must be non-negative")])
def test_command_rejects_bad_arguments(argv, message, capsys):
    command = _command()
    with pytest.raises(SystemExit) as exit_:
        command.parse(argv)
    assert exit_.value.code != 0 and message in capsys.readouterr().err



# --- C14's Pareto rows ----------------------------------------------------------------------


def _check_pareto(c14, scale):
    """Properties every run_c14 result has, whatever the machine's speed."""
    rows = c14["pareto"]
    flavours = scale.c14_flavours
    assert [r["method"] for r in rows] == ["MAP", *(f"LA {f}" for f in flavours),
                                          *(f"ensemble x{k}"
                                            for k in range(2, scale.ensemble_size + 1))]
    assert [r["kind"] for r in rows] == ["MAP", *["Laplace"] * len(flavours),
                                        *["ensemble"] * (scale.ensemble_size - 1)]
    assert [r["members"] for r in rows] == [1] * (1 + len(flavours)) + list(
        range(2, scale.ensemble_size + 1))
    one = c14["one_training_seconds"]
    assert one == pytest.approx(float(np.median(c14["train_seconds"])))
    for row in rows:
        assert set(row) == {"method", "kind", "members", "auroc", "wrong_rate",
                            "compute_seconds", "compute_trainings"}
        assert 0 <= row["auroc"] <= 1 and 0 <= row["wrong_rate"] <= 1, row
        assert row["compute_trainings"] == pytest.approx(row["compute_seconds"] / one)
        assert row["compute_trainings"] >= row["members"]  # training included
    by = {r["method"]: r for r in rows}
    # MAP: one training and one forward pass
    assert by["MAP"]["compute_seconds"] == pytest.approx(one + c14["forward_seconds"][0])
    assert 1 <= by["MAP"]["compute_trainings"] < 1.5
    assert by["MAP"]["auroc"] == c14["auroc_map_confidence"]
    # the first Laplace flavour is C14's own
    la = by[f"LA {flavours[0]}"]
    assert c14["flavour"] == flavours[0] == the_bill.C13_FLAVOUR
    assert la["auroc"] == c14["auroc_la"]
    assert la["compute_seconds"] == pytest.approx(c14["compute_la_seconds"])
    assert la["wrong_rate"] == c14["wrong_rate_la"]
    # ensembles: k trainings and a little, growing with k; the largest is C14's
    ensembles = [r for r in rows if r["kind"] == "ensemble"]
    trainings = [r["compute_trainings"] for r in ensembles]
    for k, value in zip(range(2, scale.ensemble_size + 1), trainings):
        assert k <= value < k + 0.5, (k, value)
    assert all(b > a for a, b in zip(trainings, trainings[1:]))
    full = ensembles[-1]
    assert full["members"] == c14["members"] == scale.ensemble_size
    assert full["auroc"] == c14["auroc_ensemble"]
    assert full["compute_seconds"] == c14["compute_ensemble_seconds"]
    assert full["wrong_rate"] == c14["wrong_rate_ensemble"]
    # the AUROC ratio's bootstrap interval
    low, high = c14["auroc_ratio_low"], c14["auroc_ratio_high"]
    assert 0 < low <= high and math.isfinite(high)


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_c14_pareto_rows_of_the_tiny_run(tiny_run):
    results, stdout = tiny_run
    _check_pareto(results["c14"], the_bill.RECIPES["tiny"])
    assert "hallucination detection, quality against compute" in stdout
    for row in results["c14"]["pareto"]:
        assert f"{row['method']:<24} AUROC {row['auroc']:.3f}" in stdout


def _c14(auroc_ratio, low, high, compute_ratio):
    return {"auroc_ratio": auroc_ratio, "auroc_ratio_low": low, "auroc_ratio_high": high,
            "compute_ratio": compute_ratio, "auroc_la": 0.5, "pareto": []}


@pytest.mark.parametrize("c14, verdict", [
    (_c14(0.95, 0.92, 0.98, 0.10), "SUPPORTED"),
    (_c14(0.95, 0.92, 0.98, 0.28), "REFUTED"),     # too expensive, however good
    (_c14(0.80, 0.70, 0.85, 0.10), "REFUTED"),     # the whole interval below 0.9
    (_c14(0.93, 0.85, 0.99, 0.10), "INCONCLUSIVE"),  # the interval straddles 0.9
    (_c14(0.88, 0.85, 0.95, 0.10), "INCONCLUSIVE"),
    (_c14(0.93, 0.85, 0.99, 0.30), "REFUTED"),     # a failed condition decides
])
def test_c14_claim_statistics_give_the_verdict_of_the_thresholds(c14, verdict, capsys):
    stats = the_bill.c14_claim_statistics(c14)
    assert stats == {"auroc_ratio": (c14["auroc_ratio"], c14["auroc_ratio_low"],
                                      c14["auroc_ratio_high"]),
                     "compute_ratio": c14["compute_ratio"]}
    claims.report("C14", [stats])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"CLAIM C14: {verdict} - auroc_ratio = {c14['auroc_ratio']:.3f}, "
                           f"compute_ratio = {c14['compute_ratio']:.3f} (rule: ")
    assert claims.parse_verdict_lines(line)["C14"] == line


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_c14_claim_statistics_of_the_tiny_run(tiny_run):
    c14 = tiny_run[0]["c14"]
    stats = the_bill.c14_claim_statistics(c14)
    value, low, high = stats["auroc_ratio"]
    assert value == c14["auroc_ratio"] and (low, high) == (c14["auroc_ratio_low"],
                                                           c14["auroc_ratio_high"])
    assert claims.verdict(claims.load_claims()["C14"], [stats]) in claims.VERDICTS


# --- the scale's checks ---------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (dict(c14_flavours=("last_layer_diag", "last_layer_kron")), "must start with"),
    (dict(c14_flavours=()), "must start with"),
    (dict(c14_flavours=("last_layer_kron", "nope")), "unknown posterior flavours"),
    (dict(ensemble_size=1), "at least 2 members"),
    (dict(ensemble_size=0), "ensemble_size must be a positive integer"),
    (dict(c14_resamples=0), "c14_resamples must be a positive integer"),
    (dict(c14_resamples=True), "c14_resamples must be a positive integer"),
])
def test_cost_scale_rejects_bad_c14_settings(change, message):
    with pytest.raises(ValueError, match=message):
        replace(the_bill.RECIPES["tiny"], **change)


def test_cost_scales_start_c14_with_c13s_flavour():
    for scale in the_bill.RECIPES.values():
        assert scale.c14_flavours[0] == the_bill.C13_FLAVOUR and scale.ensemble_size >= 2
    scale = replace(the_bill.RECIPES["tiny"], c14_flavours=(the_bill.C13_FLAVOUR,),
                    ensemble_size=2)
    assert scale.c14_flavours == (the_bill.C13_FLAVOUR,)


# --- fit_costs and compare_runs on the tiny run -----------------------------------------------


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_fit_costs_of_the_tiny_run(tiny_run):
    results, _ = tiny_run
    table = profiling.fit_costs(results)
    assert len(table) == 2 * len(results["sweep"]) * len(FLAVOURS)
    for row in results["sweep"]:
        part = table[table["parameters"] == row["parameters"]]
        for unit, denominator in (("epochs", row["epoch_seconds"]),
                                  ("token epochs", row["token_epoch_seconds"])):
            rows = part[part["unit"] == unit]
            assert set(rows["flavour"]) == set(FLAVOURS)
            np.testing.assert_allclose(rows["cost"] * denominator, rows["seconds"], rtol=1e-12)
            for flavour_name, seconds in zip(rows["flavour"], rows["seconds"]):
                assert seconds == row["flavours"][flavour_name]["fit_seconds"]
        epochs = part[part["unit"] == "epochs"].set_index("flavour")["cost"]
        for flavour_name, entry in row["flavours"].items():
            assert epochs[flavour_name] == pytest.approx(entry["fit_epochs"])


HEADLINES = ["C13 worst cost (epochs)", "C13 cost at the largest size (epochs)",
             "epoch at the largest size (ms)", "C14 compute ratio", "C14 AUROC ratio",
             "AUROC, last-layer Laplace", "AUROC, 5-member ensemble", "AUROC, MAP confidence"]


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_compare_runs(tiny_run):
    results, _ = tiny_run
    live = json.loads(json.dumps(results))
    live["c14"]["auroc_ratio"] = 0.5
    table = the_bill.compare_runs(results, live)
    assert list(table.index) == HEADLINES
    assert list(table.columns) == ["recorded", "this run"]
    recorded = table["recorded"]
    kron = [r["flavours"][the_bill.C13_FLAVOUR]["fit_epochs"] for r in results["sweep"]]
    assert recorded["C13 worst cost (epochs)"] == pytest.approx(max(kron))
    assert recorded["C13 cost at the largest size (epochs)"] == pytest.approx(kron[-1])
    assert recorded["epoch at the largest size (ms)"] == pytest.approx(
        1e3 * results["sweep"][-1]["epoch_seconds"])
    c14 = results["c14"]
    for name, key in (("C14 compute ratio", "compute_ratio"), ("C14 AUROC ratio", "auroc_ratio"),
                      ("AUROC, last-layer Laplace", "auroc_la"),
                      ("AUROC, 5-member ensemble", "auroc_ensemble"),
                      ("AUROC, MAP confidence", "auroc_map_confidence")):
        assert recorded[name] == pytest.approx(c14[key])
    assert table.loc["C14 AUROC ratio", "this run"] == 0.5
    same = table.drop(index="C14 AUROC ratio")
    pd.testing.assert_series_equal(same["recorded"], same["this run"], check_names=False)


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_compare_runs_rejects_bad_input(tiny_run):
    results, _ = tiny_run
    other = {**results, "scale": "quick"}
    with pytest.raises(ValueError, match="cannot compare scale 'tiny' with 'quick'"):
        the_bill.compare_runs(results, other)
    with pytest.raises(ValueError, match="the recorded results are not run_costs' output"):
        the_bill.compare_runs({"scale": "tiny", "sweep": []}, results)
    with pytest.raises(ValueError, match="the live results are not run_costs' output"):
        the_bill.compare_runs(results, {k: v for k, v in results.items() if k != "scale"})


# --- recorded measurements ------------------------------------------------------------------


def _text(scale="tiny", **extra):
    return json.dumps({"scale": scale, "c14": {"auroc_la": 0.7}, **extra}, indent=2) + "\n"


def _sums(root):
    lines = (root / "data" / "costs" / "SHA256SUMS").read_text().splitlines()
    return dict(reversed(line.split("  ")) for line in lines)


def test_record_and_load_round_trip(tmp_path):
    path = the_bill.record_results(_text(), "tiny", root=tmp_path)
    assert path == tmp_path / "data" / "costs" / "costs_tiny.json"
    assert path == the_bill.record_path("tiny", root=tmp_path)
    assert path.read_text() == _text()
    assert _sums(tmp_path) == {"costs_tiny.json": hashlib.sha256(_text().encode()).hexdigest()}
    assert the_bill.load_results("tiny", root=tmp_path) == json.loads(_text())
    # a second scale gets its own line; re-recording replaces a line, never duplicates it
    the_bill.record_results(_text("quick"), "quick", root=str(tmp_path))
    the_bill.record_results(_text(seed=3), "tiny", root=tmp_path)
    lines = (path.parent / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 2 and lines == sorted(lines)
    assert _sums(tmp_path)["costs_tiny.json"] == hashlib.sha256(
        _text(seed=3).encode()).hexdigest()
    assert the_bill.load_results("tiny", root=tmp_path)["seed"] == 3
    assert the_bill.load_results("quick", root=tmp_path)["scale"] == "quick"


def test_record_uses_the_project_root_by_default(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "claims.yaml").write_text("claims: []\n")
    monkeypatch.setenv("ESSAY_ROOT", str(tmp_path))
    assert the_bill.record_path("tiny") == tmp_path / "data" / "costs" / "costs_tiny.json"
    the_bill.record_results(_text(), "tiny")
    assert the_bill.load_results("tiny") == json.loads(_text())


def test_load_results_rejects_a_changed_file(tmp_path):
    path = the_bill.record_results(_text(), "tiny", root=tmp_path)
    path.write_text(_text().replace("0.7", "0.9"))
    with pytest.raises(ValueError, match="does not match its checksum"):
        the_bill.load_results("tiny", root=tmp_path)
    path.write_text(_text()[:-5])  # truncated
    with pytest.raises(ValueError, match="checksum"):
        the_bill.load_results("tiny", root=tmp_path)
    path.write_text(_text())  # restored: valid again
    assert the_bill.load_results("tiny", root=tmp_path)["scale"] == "tiny"
    (path.parent / "SHA256SUMS").write_text("")
    with pytest.raises(ValueError, match="has no checksum.*--record"):
        the_bill.load_results("tiny", root=tmp_path)
    (path.parent / "SHA256SUMS").unlink()
    with pytest.raises(ValueError, match="has no checksum"):
        the_bill.load_results("tiny", root=tmp_path)


def test_load_results_missing_file_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"benchmarks/costs.py --scale quick --record"):
        the_bill.load_results("quick", root=tmp_path)
    the_bill.record_results(_text(), "tiny", root=tmp_path)  # another scale does not help
    with pytest.raises(FileNotFoundError, match="--record"):
        the_bill.load_results("quick", root=tmp_path)


def test_load_results_rejects_a_scale_mismatch_and_unknown_scales(tmp_path):
    the_bill.record_results(_text("quick"), "tiny", root=tmp_path)  # checksum right, scale wrong
    with pytest.raises(ValueError, match="holds scale 'quick', not 'tiny'"):
        the_bill.load_results("tiny", root=tmp_path)
    for call in (lambda: the_bill.record_path("huge", root=tmp_path),
                 lambda: the_bill.record_results(_text(), "huge", root=tmp_path),
                 lambda: the_bill.load_results("huge", root=tmp_path)):
        with pytest.raises(ValueError, match="unknown cost scale 'huge'"):
            call()
    assert not (tmp_path / "data" / "costs" / "costs_huge.json").exists()


RUN_COSTS_KEYS = ("scale", "seed", "repeats", "definitions", "budget_flops", "budget_bytes",
                  "memory_method", "sweep", "scaling", "c13", "c14", "on_paper", "seconds")


@pytest.mark.slow  # runs benchmarks/costs.py --scale tiny once
def test_command_records_into_its_root(tiny_run, tmp_path, monkeypatch, capsys):
    results, _ = tiny_run
    command = _command()
    calls = []

    def run_costs(scale, repeats=None, seed=0, log=None, sweep_only=False):  # the tiny run
        calls.append((scale, repeats, seed, sweep_only))
        return {k: results[k] for k in RUN_COSTS_KEYS}

    real_sums = (ROOT / "data" / "costs" / "SHA256SUMS").read_bytes()
    monkeypatch.setattr(command, "ROOT", tmp_path)
    monkeypatch.setattr(command.the_bill, "run_costs", run_costs)
    monkeypatch.setattr(command, "configure", lambda settings: settings)  # keep torch's state
    monkeypatch.setenv("ESSAY_SEED", "0")
    command.main(["--scale", "tiny", "--record"])
    assert calls == [("tiny", None, 0, False)]
    path = tmp_path / "data" / "costs" / "costs_tiny.json"
    assert f"written {path}" in capsys.readouterr().out
    recorded = the_bill.load_results("tiny", root=tmp_path)
    assert recorded["command"] == "python benchmarks/costs.py --scale tiny --record"
    for key in RUN_COSTS_KEYS:
        assert recorded[key] == results[key], key
    assert not (tmp_path / "_build").exists()  # --record writes only the record
    assert (ROOT / "data" / "costs" / "SHA256SUMS").read_bytes() == real_sums


# --- the committed measurement --------------------------------------------------------------


def test_committed_quick_measurement_loads_and_its_statistics_hold():
    results = the_bill.load_results("quick")
    scale = the_bill.RECIPES["quick"]
    assert results["scale"] == "quick"
    assert results["command"] == "python benchmarks/costs.py --scale quick --record"
    assert [(r["d_model"], r["n_layers"]) for r in results["sweep"]] == list(scale.sizes)
    c13 = the_bill.c13_statistics(results, min_parameter_span=scale.min_parameter_span)
    assert c13 == pytest.approx(results["c13"])
    c14 = results["c14"]
    stats = the_bill.c14_statistics(c14["auroc_la"], c14["auroc_ensemble"],
                                 c14["compute_la_seconds"], c14["compute_ensemble_seconds"])
    assert stats["auroc_ratio"] == pytest.approx(c14["auroc_ratio"], rel=1e-12)
    assert stats["compute_ratio"] == pytest.approx(c14["compute_ratio"], rel=1e-12)
    _check_pareto(c14, scale)
    assert c14["queries"] == scale.c14_queries and c14["train_steps"] == scale.c14_steps


def test_committed_full_sweep_loads_and_refutes_c13_on_every_size():
    results = the_bill.load_results("full", sweep_only=True)
    scale = the_bill.RECIPES["full"]
    assert results["sweep_only"] is True and results["c14"] is None
    assert results["command"] == ("python benchmarks/costs.py --scale full --repeats 1 "
                                  "--sweep-only --record")
    assert [(r["d_model"], r["n_layers"]) for r in results["sweep"]] == list(scale.sizes)
    c13 = the_bill.c13_statistics(results, min_parameter_span=scale.min_parameter_span)
    assert c13 == pytest.approx(results["c13"])
    assert c13["parameter_span"] >= 100
    # the sweep-only record is not the complete one, and the other way round
    with pytest.raises(FileNotFoundError, match="--scale full --record"):
        the_bill.load_results("full")


def test_sweep_only_skips_c14_and_records_under_its_own_name(tmp_path):
    scale = replace(the_bill.RECIPES["tiny"], sizes=((4, 1), (8, 1)),
                    flavours=(the_bill.C13_FLAVOUR,), min_parameter_span=1.0)
    results = the_bill.run_costs(scale, repeats=1, sweep_only=True)
    assert results["c14"] is None and results["sweep_only"] is True
    assert [r["d_model"] for r in results["sweep"]] == [4, 8]
    assert results["c13"]["worst_cost_in_epochs"] > 0
    text = json.dumps({**results, "scale": "tiny"})
    path = the_bill.record_results(text, "tiny", root=tmp_path, sweep_only=True)
    assert path.name == "costs_tiny_sweep.json"
    assert the_bill.load_results("tiny", root=tmp_path, sweep_only=True)["c14"] is None
    with pytest.raises(FileNotFoundError, match="--scale tiny --record"):
        the_bill.load_results("tiny", root=tmp_path)
    # a complete record saved under the sweep-only name is refused
    the_bill.record_results(_text(), "tiny", root=tmp_path, sweep_only=True)
    with pytest.raises(ValueError, match="has C14"):
        the_bill.load_results("tiny", root=tmp_path, sweep_only=True)


# --- recipes and seeds ---------------------------------------------------------------------


def test_recipe_names_a_scale_or_passes_a_recipe_through():
    assert the_bill.recipe("quick") is the_bill.RECIPES["quick"]
    custom = replace(the_bill.RECIPES["tiny"], sizes=((4, 1),))
    assert the_bill.recipe(custom) is custom
    assert set(the_bill.RECIPES) >= {"quick", "full"}
    with pytest.raises(ValueError, match="unknown cost scale 'huge'"):
        the_bill.recipe("huge")
    with pytest.raises(ValueError, match="unknown posterior flavours"):
        replace(the_bill.RECIPES["tiny"], flavours=("nope",))
    with pytest.raises(ValueError, match="a size is"):
        replace(the_bill.RECIPES["tiny"], sizes=((4, 0),))
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        the_bill.run_sweep("tiny", repeats=0)


def _small_c14_scale():
    return replace(the_bill.RECIPES["tiny"], c14_steps=5, c14_queries=60, c14_samples=5,
                   c14_resamples=10, c14_flavours=(the_bill.C13_FLAVOUR,), ensemble_size=2)


def test_run_c14_is_reproducible_from_its_seed():
    """Training and queries are seeded: the same seed gives the same AUROCs (only the times
    differ), and another seed other networks and questions."""
    scale = _small_c14_scale()
    first, again = the_bill.run_c14(scale, seed=3), the_bill.run_c14(scale, seed=3)
    for key in ("auroc_la", "auroc_ensemble", "auroc_map_confidence", "wrong_rate_la",
                "auroc_ratio_low", "auroc_ratio_high"):
        assert first[key] == again[key], key
    other = the_bill.run_c14(scale, seed=4)
    assert (other["auroc_la"], other["auroc_ensemble"]) != (first["auroc_la"],
                                                             first["auroc_ensemble"])


# --- budgets: skip, never crash -------------------------------------------------------------


def test_flavours_over_budget_are_skipped_with_the_reason():
    tiny = the_bill.RECIPES["tiny"]
    scale = replace(tiny, sizes=((4, 1),), budget_flops=0.0, budget_bytes=1e12,
                    flavours=("last_layer_kron", "last_layer_diag"), ensemble_size=2)
    (row,) = the_bill.run_sweep(scale, seed=0, repeats=1)
    diag = row["flavours"]["last_layer_diag"]
    assert diag["status"] == "skipped" and "flops exceed the budget" in diag["reason"]
    assert "fit_seconds" not in diag
    kron = row["flavours"]["last_layer_kron"]  # C13's flavour: measured all the same
    assert kron["status"] == "measured" and "C13" in kron["reason"]

    scale = replace(scale, budget_flops=1e12, budget_bytes=1.0)
    (row,) = the_bill.run_sweep(scale, seed=0, repeats=1)
    for entry in row["flavours"].values():
        assert entry["status"] == "skipped" and "memory" in entry["reason"]
    with pytest.raises(ValueError, match="last_layer_kron was not measured.*skipped"):
        the_bill.c13_statistics([row], min_parameter_span=1)


# --- the claims on hand-made inputs ---------------------------------------------------------


def _size(parameters, epoch, fit, status="measured"):
    entry = {"status": status, "reason": None if status == "measured" else "too big"}
    if status == "measured":
        entry["fit_seconds"] = fit
    return {"d_model": 8, "n_layers": 1, "parameters": parameters, "epoch_seconds": epoch,
            "flavours": {the_bill.C13_FLAVOUR: entry}}


def test_c13_statistics_by_hand():
    rows = [_size(1_000, 0.01, 0.012), _size(30_000, 0.1, 0.25), _size(200_000, 1.0, 1.5)]
    stats = the_bill.c13_statistics(rows)
    assert stats["worst_cost_in_epochs"] == pytest.approx(2.5)
    assert stats["worst_parameters"] == 30_000
    assert stats["parameter_span"] == pytest.approx(200)
    assert the_bill.c13_statistics({"sweep": rows}) == stats


def test_c13_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="spans a factor 30"):
        the_bill.c13_statistics([_size(1_000, 0.01, 0.02), _size(30_000, 0.1, 0.2)])
    with pytest.raises(ValueError, match="not measured at .*skipped: too big"):
        the_bill.c13_statistics([_size(1_000, 0.01, 0.02),
                              _size(200_000, 0.1, 0.2, status="skipped")])
    with pytest.raises(ValueError, match="epoch_seconds .* positive"):
        the_bill.c13_statistics([_size(1_000, 0.0, 0.02), _size(200_000, 0.1, 0.2)])
    with pytest.raises(ValueError, match="no model sizes"):
        the_bill.c13_statistics([])
    with pytest.raises(TypeError, match="results"):
        the_bill.c13_statistics(3.0)


def test_c14_statistics_by_hand():
    stats = the_bill.c14_statistics(0.72, 0.8, 2.0, 20.0)
    assert stats == {"auroc_ratio": pytest.approx(0.9), "compute_ratio": pytest.approx(0.1)}
    with pytest.raises(ValueError, match=r"auroc_la must lie in \(0, 1\]"):
        the_bill.c14_statistics(1.2, 0.8, 2.0, 20.0)
    with pytest.raises(ValueError, match="auroc_ensemble must be a positive"):
        the_bill.c14_statistics(0.7, 0.0, 2.0, 20.0)
    with pytest.raises(ValueError, match="compute_ensemble must be a positive"):
        the_bill.c14_statistics(0.7, 0.8, 2.0, 0.0)
    with pytest.raises(ValueError, match="compute_la must be a positive finite"):
        the_bill.c14_statistics(0.7, 0.8, math.inf, 1.0)
    with pytest.raises(TypeError, match="must be a number"):
        the_bill.c14_statistics(0.7, 0.8, "2", 1.0)



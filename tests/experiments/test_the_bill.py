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




# === round 2: C29 and C30 ====================================================================


def test_round2_scales_check_their_settings():
    tiny = the_bill.ROUND2_RECIPES["tiny"]
    assert the_bill.round2_scale("tiny") is tiny and the_bill.round2_scale(tiny) is tiny
    quick = the_bill.ROUND2_RECIPES["quick"]
    assert quick.c30_seeds >= 3 and quick.c30_samples >= 200 and quick.c30_queries >= 20_000
    assert quick.ensemble_size == 5 and quick.c30_flavours[0] == "last_layer"
    for corpora in quick.corpus_sizes:  # what C29's rule asks of every model size
        assert len(corpora) >= 4 and max(corpora) / min(corpora) >= 10
    with pytest.raises(ValueError, match="unknown round-2 cost scale 'huge'"):
        the_bill.round2_scale("huge")
    with pytest.raises(ValueError, match="one tuple of corpus sizes per model size"):
        replace(tiny, corpus_sizes=tiny.corpus_sizes[:1])
    with pytest.raises(ValueError, match="at least two distinct"):
        replace(tiny, corpus_sizes=((100, 100), (100, 200)))
    with pytest.raises(ValueError, match="must be answer-posterior flavours"):
        replace(tiny, c30_flavours=("last_layer_kron",))
    with pytest.raises(ValueError, match="at least 2 members"):
        replace(tiny, ensemble_size=1)


def _c29_size(parameters, corpora, ratio, low, high):
    return {"parameters": parameters, "corpus_sizes": list(corpora), "slope_ratio": ratio,
            "slope_ratio_low": low, "slope_ratio_high": high}


def test_c29_statistics_by_hand():
    c29 = {"sizes": [_c29_size(1_000, (1, 2, 4, 8, 16), 3.0, 2.5, 3.5),
                     _c29_size(100_000, (10, 20, 40, 100), 0.5, 0.1, 4.0),
                     _c29_size(400_000, (10, 100), 0.2, 0.1, 0.3)]}
    stats = the_bill.c29_statistics(c29)
    assert stats["parameter_orders"] == pytest.approx(np.log10(400))
    assert stats["corpus_sizes"] == 2 and stats["corpus_orders"] == pytest.approx(1.0)
    # the size whose upper bound is largest, not the one with the largest ratio
    assert stats["worst_slope_ratio"] == (0.5, 0.1, 4.0) and stats["worst_parameters"] == 1e5
    line = claims.verdict_line(claims.load_claims()["C29"], [stats])
    # round 2: an interval straddling 1 leaves the measurement undecided, whatever else fails
    assert line.startswith("CLAIM C29: INCONCLUSIVE")
    clear = the_bill.c29_statistics({"sizes": c29["sizes"][:1] + c29["sizes"][2:]})
    assert claims.verdict_line(claims.load_claims()["C29"], [clear]).startswith(
        "CLAIM C29: REFUTED")  # only 2 corpus sizes at one model size; 3 x the epoch at another
    with pytest.raises(ValueError, match="no model sizes"):
        the_bill.c29_statistics({"sizes": []})


def test_run_c29_times_every_size_and_corpus():
    scale = the_bill.round2_scale("tiny")
    c29 = the_bill.run_c29(scale, seed=0, repeats=2, corpora=3)
    assert [(r["d_model"], r["n_layers"]) for r in c29["sizes"]] == list(scale.sizes)
    for row, corpora in zip(c29["sizes"], scale.corpus_sizes):
        assert row["corpus_sizes"] == sorted(corpora)[:3]
        assert np.array(row["fit_seconds"]).shape == (3, 2)
        assert (np.array(row["token_epoch_seconds"]) > 0).all()
        again = profiling.slope_ratio(row["corpus_sizes"], row["fit_seconds"],
                                      row["token_epoch_seconds"])
        assert row["slope_ratio"] == pytest.approx(again["slope_ratio"])
        assert row["slope_ratio_low"] <= row["slope_ratio_high"]
    assert c29["threads"] == 1 and c29["flavour"] == "last_layer_kron"
    points = the_bill.c29_points(c29)
    assert set(points["line"]) == {"Laplace fit, measured", "Laplace fit: a + b N",
                                   "token epoch, measured", "token epoch: a + b N"}
    assert len(points) == len(scale.sizes) * 2 * 3 * (2 + 1)
    assert len(the_bill.c29_table(c29)) == len(scale.sizes)
    with pytest.raises(ValueError, match="at least 2 corpus sizes"):
        the_bill.run_c29(scale, corpora=1)


def test_token_corpus_is_a_seeded_shuffle_of_the_whole_corpus():
    scale = the_bill.round2_scale("tiny")
    prompts, targets = the_bill.token_corpus(scale, seed=0)
    again, _ = the_bill.token_corpus(scale, seed=0)
    assert torch.equal(prompts, again) and len(targets) >= scale.largest_corpus
    world = the_bill.make_fact_world(**scale.world, seed=0)
    assert len(targets) == int(world.next_token_counts()[1].sum())
    with pytest.raises(ValueError, match="raise its n_mentions"):
        the_bill.token_corpus(replace(scale, world=dict(scale.world, n_mentions=100)), seed=0)


def test_method_detection_chooses_the_score_on_the_selection_half_only():
    world = the_bill.make_fact_world(**the_bill.ROUND2_RECIPES["tiny"].c30_recipe.corpus,
                                     seed=0)
    n, a = world.n_entities, len(world.answer_tokens)
    truth_column = {int(t): i for i, t in enumerate(world.answer_tokens)}
    rng = np.random.default_rng(0)
    wrong_entity = rng.random(n) < 0.4
    probs = np.full((n, a), 0.1 / (a - 1))
    for e in range(n):  # the answer is the truth, except for the "wrong" entities: a false value
        column = truth_column[int(world.truth[e])]
        probs[e, (0 if column != 0 else 1) if wrong_entity[e] else column] = 0.9
    queries = np.arange(n)
    selection = np.arange(n) % 2 == 0
    # the mutual information flags the wrong answers on the selection half, and is reversed on
    # the other: it is chosen on the first and scores worse than chance on the second
    mi = np.where(selection, wrong_entity, ~wrong_entity).astype(float)
    row = the_bill.method_detection(world, queries, selection, probs, mi)
    assert row["score"] == "mutual information"
    assert row["auroc"] == pytest.approx(0.0) and row["auroc_mi"] == row["auroc"]
    assert row["auroc_confidence"] == pytest.approx(0.5)  # a constant top probability
    assert row["wrong_rate"] == pytest.approx(wrong_entity[~selection].mean())
    point = the_bill.method_detection(world, queries, selection, probs, None)
    assert point["score"] == "1 - max p" and "auroc_mi" not in point


@pytest.fixture(scope="module")
def tiny_c30():
    return the_bill.run_c30("tiny", seeds=[0, 1])


def test_run_c30_scores_every_method_and_counts_the_extra_members(tiny_c30):
    scale = the_bill.round2_scale("tiny")
    assert [s["seed"] for s in tiny_c30["seeds"]] == [0, 1]
    for seed in tiny_c30["seeds"]:
        names = [m["method"] for m in seed["methods"]]
        assert names == ["MAP", *(f"LA {f}" for f in scale.c30_flavours),
                         *(f"ensemble x{k}" for k in range(2, scale.ensemble_size + 1))]
        for m in seed["methods"]:
            assert m["score"] in the_bill.SCORES and 0 <= m["auroc"] <= 1
            assert m["auroc"] == (m["auroc_mi"] if m["score"] == "mutual information"
                                  else m["auroc_confidence"])
        one = seed["one_training_seconds"]
        assert one == pytest.approx(float(np.median(seed["train_seconds"])))
        extra = (scale.ensemble_size - 1) * one + sum(seed["predict_seconds"][1:])
        assert seed["extra_members_seconds"] == pytest.approx(extra)
        own = seed["laplace"]["last_layer"]
        assert seed["incremental_compute_ratio"] == pytest.approx(
            (own["fit_seconds"] + own["predict_seconds"]) / extra)
        full = seed["methods"][-1]
        assert full["compute_trainings"] >= scale.ensemble_size
        assert seed["auroc_ensemble"] == full["auroc"]
        assert seed["auroc_ratio"] == pytest.approx(seed["auroc_la"] / seed["auroc_ensemble"])
    per_seed, pooled = the_bill.c30_claim_statistics(tiny_c30)
    assert pooled == {"seeds": 2.0} and len(per_seed) == 2
    assert set(per_seed[0]) == {"auroc_ratio", "incremental_compute_ratio"}
    line = claims.verdict_line(claims.load_claims()["C30"], per_seed, pooled)
    assert "seeds = 2," in line and line.startswith("CLAIM C30: REFUTED")  # fewer than 3 seeds
    front = the_bill.c30_frontier(tiny_c30)
    assert list(front["method"]) == [m["method"] for m in tiny_c30["seeds"][0]["methods"]]
    table = the_bill.c30_methods(tiny_c30)
    assert front.set_index("method")["auroc"].to_dict() == pytest.approx(
        table.groupby("method")["auroc"].mean().to_dict())


def test_run_c30_is_reproducible_from_its_seed(tiny_c30):
    again = the_bill.run_c30("tiny", seeds=[1])["seeds"][0]
    first = tiny_c30["seeds"][1]
    for key in ("auroc_la", "auroc_ensemble", "auroc_ratio_low", "auroc_ratio_high",
                "score_la", "score_ensemble"):
        assert again[key] == first[key], key
    assert (first["auroc_la"], first["auroc_ensemble"]) != (tiny_c30["seeds"][0]["auroc_la"],
                                                             tiny_c30["seeds"][0]["auroc_ensemble"])


def test_c30_live_costs_count_the_extra_members_as_the_first():
    live = the_bill.c30_live_costs("tiny", seed=0)
    extra = (the_bill.ROUND2_RECIPES["tiny"].ensemble_size - 1) * (
        live["one_training_seconds"] + live["member_predict_seconds"])
    assert live["incremental_compute_ratio"] == pytest.approx(
        (live["fit_seconds"] + live["predict_seconds"]) / extra)
    assert live["fit_share_of_training"] == pytest.approx(
        live["fit_seconds"] / live["one_training_seconds"])


def test_c30_statistics_by_hand_and_bad_input():
    seed = {"auroc_la": 0.9, "auroc_ensemble": 0.95, "auroc_ratio": 0.9 / 0.95,
            "auroc_ratio_low": 0.9, "auroc_ratio_high": 0.99, "incremental_compute_ratio": 0.1}
    assert the_bill.c30_statistics(seed) == {"auroc_ratio": (0.9 / 0.95, 0.9, 0.99),
                                             "incremental_compute_ratio": 0.1}
    with pytest.raises(ValueError, match=r"auroc_la must lie in \(0, 1\]"):
        the_bill.c30_statistics({**seed, "auroc_la": 1.2})
    with pytest.raises(ValueError, match="incremental_compute_ratio must be a positive"):
        the_bill.c30_statistics({**seed, "incremental_compute_ratio": 0.0})


def test_round2_record_round_trip_and_refusals(tmp_path):
    text = json.dumps({"scale": "tiny", "round": 2, "c29": {}, "c30": {}})
    path = the_bill.record_round2(text, "tiny", root=tmp_path)
    assert path.name == "round2_tiny.json"
    assert the_bill.load_round2("tiny", root=tmp_path)["round"] == 2
    with pytest.raises(FileNotFoundError, match="--round 2 --scale quick --record"):
        the_bill.load_round2("quick", root=tmp_path)
    the_bill.record_round2(json.dumps({"scale": "quick", "round": 2}), "tiny", root=tmp_path)
    with pytest.raises(ValueError, match="not round 2 at 'tiny'"):
        the_bill.load_round2("tiny", root=tmp_path)
    path.write_text(text)  # changed after it was recorded
    with pytest.raises(ValueError, match="does not match its checksum"):
        the_bill.load_round2("tiny", root=tmp_path)


def test_command_round2_rejects_the_sweep_only_flag(capsys):
    costs = _command()
    with pytest.raises(SystemExit):
        costs.parse(["--round", "2", "--sweep-only"])
    assert "--sweep-only belongs to round 1" in capsys.readouterr().err


def test_committed_round2_measurement_loads_and_its_statistics_hold():
    results = the_bill.load_round2("quick")
    scale = the_bill.round2_scale("quick")
    assert results["command"] == "python benchmarks/costs.py --round 2 --scale quick --record"
    c29 = results["c29"]
    assert [(r["d_model"], r["n_layers"]) for r in c29["sizes"]] == list(scale.sizes)
    stats = the_bill.c29_statistics(c29)
    assert [stats[k] for k in ("parameter_orders", "corpus_sizes", "corpus_orders")] == \
        pytest.approx([results["c29_statistics"][k] for k in ("parameter_orders",
                                                              "corpus_sizes", "corpus_orders")])
    assert stats["parameter_orders"] >= 2 and stats["corpus_sizes"] >= 4
    assert stats["corpus_orders"] >= 1
    for row in c29["sizes"]:
        again = profiling.slope_ratio(row["corpus_sizes"], row["fit_seconds"],
                                      row["token_epoch_seconds"])
        assert row["slope_ratio"] == pytest.approx(again["slope_ratio"], rel=1e-9)
    per_seed, pooled = the_bill.c30_claim_statistics(results["c30"])
    assert pooled["seeds"] >= 3 and len(per_seed) == scale.c30_seeds
    for seed in results["c30"]["seeds"]:
        assert seed["queries"] == scale.c30_queries and seed["n_samples"] >= 200

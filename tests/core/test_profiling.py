"""Tests of bayes_at_scale.core.profiling: peak memory, timers, one Laplace flavour's costs,
one model size's costs, and the tables of profiled sizes."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from bayes_at_scale.core import cost_model, profiling
from bayes_at_scale.core.models import CausalLM
from bayes_at_scale.core.posteriors import count_loader

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
]

KRON = "last_layer_kron"


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    """(contexts, counts, prompts) of the tiny fragment corpus; prompts are its 6 contexts."""
    contexts, counts = tiny_corpus.next_token_counts()
    return contexts, counts, contexts.clone()


def _lm(corpus, seed=0):
    contexts, counts, _ = corpus
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return CausalLM(counts.shape[1], contexts.shape[1], d_model=8, n_heads=2, n_layers=1)


# --- memory ---------------------------------------------------------------------------------


def test_peak_memory_sees_a_tensor_held_in_the_block():
    with profiling.PeakMemory() as memory:
        block = torch.ones(16 * 2**20 // 4, dtype=torch.float32)  # 16 MiB, touched
        block += 1
    assert memory.increase is not None and memory.increase >= 0
    if memory.method == "proc_statm_sampled":
        assert memory.increase >= 12 * 2**20
    del block


def test_peak_memory_checks_its_interval_and_reads_rss():
    with pytest.raises(ValueError, match="interval must be a positive finite number"):
        profiling.PeakMemory(interval=0)
    rss = profiling.rss_bytes()
    assert rss is None or rss > 0
    assert profiling.maxrss_bytes() > 0
    profiling.release_memory()  # never raises, with or without glibc


# --- time -----------------------------------------------------------------------------------


def test_timers_by_hand():
    calls = []
    assert profiling.time_call(lambda: calls.append(1)) >= 0 and calls == [1]
    assert profiling.median([3, 1, 2]) == 2.0 and isinstance(profiling.median([1, 2]), float)
    assert profiling.per_1000(2.0, 500) == pytest.approx(4.0)


def test_seconds_per_step_trains_a_copy(corpus):
    contexts, counts, _ = corpus
    model = _lm(corpus)
    before = [p.detach().clone() for p in model.parameters()]
    assert profiling.seconds_per_step(model, contexts, counts, steps=2) > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_timed_training_is_seeded_and_leaves_the_global_state_alone(corpus):
    contexts, counts, _ = corpus
    kwargs = dict(d_model=8, n_heads=2, n_layers=1)
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    a, wall = profiling.timed_training(counts.shape[1], contexts, counts, kwargs, steps=2,
                                       lr=1e-2, weight_decay=1e-5, seed=5)
    assert torch.equal(torch.rand(2), expected)
    b, _ = profiling.timed_training(counts.shape[1], contexts, counts, kwargs, steps=2,
                                    lr=1e-2, weight_decay=1e-5, seed=5)
    c, _ = profiling.timed_training(counts.shape[1], contexts, counts, kwargs, steps=2,
                                    lr=1e-2, weight_decay=1e-5, seed=6)
    assert wall > 0 and a.max_len == contexts.shape[1]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_epoch_ratios_by_hand():
    row = {"epoch_seconds": 2.0, "fit_seconds": 6.0, "probit_seconds_per_1000": 1.0,
           "sampled_seconds_per_1000": None, "fit_seconds_all": [1.0], "parameters": 10}
    profiling.epoch_ratios(row, 2.0)
    assert row["fit_epochs"] == 3.0 and row["probit_epochs_per_1000"] == 0.5
    assert "epoch_epochs" not in row and "sampled_epochs_per_1000" not in row
    assert "fit_seconds_all_epochs" not in row and "parameters_epochs" not in row


# --- round 2: the fit and the token epoch against the corpus size (C29) ---------------------


def test_fit_and_token_epoch_times_both_and_leaves_the_model_alone(corpus):
    contexts, counts, _ = corpus
    prompts, targets = count_loader(contexts, counts).dataset.tensors
    model = _lm(corpus)
    before = [p.detach().clone() for p in model.parameters()]
    fit, epoch = profiling.fit_and_token_epoch(model, prompts[:300], targets[:300], KRON,
                                               epoch_steps=1)
    assert fit > 0 and epoch > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="one row per token"):
        profiling.fit_and_token_epoch(model, prompts[:300], targets[:299], KRON, epoch_steps=1)


def test_fit_line_by_hand():
    n = [1_000, 2_000, 4_000, 8_000]
    a, b = profiling.fit_line(n, [0.5 + 2e-4 * x for x in n])
    assert a == pytest.approx(0.5) and b == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="two distinct corpus sizes"):
        profiling.fit_line([5, 5], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        profiling.fit_line([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        profiling.fit_line([1, 2], [1.0, np.nan])


N = np.array([1_000, 2_000, 4_000, 8_000, 16_000])


def _repeats(a, b, noise, seed=0, repeats=5):
    """(sizes, repeats) timings a + b N with positive multiplicative noise."""
    rng = np.random.default_rng(seed)
    return (a + b * N)[:, None] * (1 + noise * rng.random((len(N), repeats)))


def test_slope_ratio_uses_the_medians_and_separates_overhead_from_price():
    # a fit that is mostly overhead but cheap per token, against an epoch without overhead
    fit = _repeats(2.0, 1e-5, 0.0)
    epoch = _repeats(0.0, 4e-5, 0.0)
    fit[2, 0] = 1e3  # one repeat hit by a burst of load: the median ignores it
    lines = profiling.slope_ratio(N, fit, epoch)
    assert lines["a_fit"] == pytest.approx(2.0) and lines["b_fit"] == pytest.approx(1e-5)
    assert lines["a_ep"] == pytest.approx(0.0, abs=1e-9)
    assert lines["slope_ratio"] == pytest.approx(0.25)
    # at the smallest corpus the fit costs 50 epochs, yet per token a quarter of one
    assert fit[0, 1] / epoch[0, 1] > 40
    with pytest.raises(ValueError, match="does not grow with the corpus"):
        profiling.slope_ratio(N, fit, _repeats(1.0, -1e-6, 0.0))
    with pytest.raises(ValueError, match="corpus sizes, repeats"):
        profiling.slope_ratio(N, fit[:3], epoch)
    with pytest.raises(ValueError, match="positive finite"):
        profiling.slope_ratio(N, -fit, epoch)


def test_slope_ratio_interval_resamples_the_repeats():
    fit, epoch = _repeats(0.1, 3e-5, 0.0), _repeats(0.05, 1e-5, 0.0)
    # noise-free repeats: every resample is the data, so the interval is the point
    assert profiling.slope_ratio_interval(N, fit, epoch, seed=0, n_resamples=50) == \
        pytest.approx((3.0, 3.0, 3.0))
    noisy_fit, noisy_epoch = _repeats(0.1, 3e-5, 0.5, seed=1), _repeats(0.05, 1e-5, 0.5, seed=2)
    ratio, low, high = profiling.slope_ratio_interval(N, noisy_fit, noisy_epoch, seed=3,
                                                      n_resamples=300)
    assert low < ratio < high and 1 < low  # the fit clearly costs more per token
    assert profiling.slope_ratio_interval(N, noisy_fit, noisy_epoch, seed=3,
                                          n_resamples=300) == (ratio, low, high)
    wider = profiling.slope_ratio_interval(N, _repeats(0.1, 3e-5, 2.0, seed=1),
                                           _repeats(0.05, 1e-5, 2.0, seed=2), seed=3,
                                           n_resamples=300)
    assert wider[2] - wider[1] > high - low
    with pytest.raises(ValueError, match="same shape"):
        profiling.slope_ratio_interval(N, fit[:, :3], epoch, seed=0)
    with pytest.raises(ValueError, match="confidence"):
        profiling.slope_ratio_interval(N, fit, epoch, seed=0, confidence=1.5)


# --- one flavour, one size ------------------------------------------------------------------


def test_profile_posterior_times_the_fit_and_the_predictives(corpus):
    contexts, counts, prompts = corpus
    result = profiling.profile_posterior(_lm(corpus), count_loader(contexts, counts), KRON,
                                         prompts, n_samples=4, seed=0, closed_form=True,
                                         curvature=True)
    assert set(result) == {"fit_seconds", "peak_rss_bytes", "prior_precision",
                           "curvature_seconds", "probit_seconds", "sampled_seconds"}
    assert result["fit_seconds"] > 0 and result["prior_precision"] > 0
    assert result["peak_rss_bytes"] >= 0
    bare = profiling.profile_posterior(_lm(corpus), count_loader(contexts, counts), KRON,
                                       prompts, n_samples=4, seed=0, closed_form=False)
    assert "probit_seconds" not in bare and "curvature_seconds" not in bare


def _plans(corpus, n_pairs, **budget):
    contexts, counts, _ = corpus
    shape = cost_model.model_shape(_lm(corpus))
    return cost_model.plan_fits([KRON, "last_layer_diag"], shape, n_pairs,
                                **{"budget_flops": 1e30, "budget_bytes": 1e30, **budget})


def _profile(corpus, plans, **kwargs):
    contexts, counts, prompts = corpus
    options = dict(repeats=2, members=2, steps=2, lr=1e-2, weight_decay=1e-5,
                   token_epoch_steps=1, probe_steps=1, n_samples=4, curvature_only=(KRON,),
                   seed=0)
    return profiling.profile_size(contexts, counts, prompts, dict(d_model=8, n_heads=2,
                                                                  n_layers=1), plans,
                                  **{**options, **kwargs})


def test_profile_size_reports_every_cost_in_seconds_and_epochs(corpus):
    contexts, counts, prompts = corpus
    n_pairs = int(counts.sum())
    plans = _plans(corpus, n_pairs, budget_flops=0.0, required=[KRON])  # diag skipped
    warmed = set()
    row = _profile(corpus, plans, warmed=warmed)
    assert warmed == {KRON} and plans[KRON]["status"] == "measured"  # plans are not changed
    assert (row["d_model"], row["n_layers"], row["n_heads"]) == (8, 1, 2)
    assert row["parameters"] == cost_model.model_shape(_lm(corpus))["parameters"]
    assert row["pairs"] == n_pairs and row["contexts"] == contexts.shape[0]
    assert row["expansion"] == pytest.approx(n_pairs / contexts.shape[0])
    # two repeats of two networks, plus one probe before the one measured fit of each repeat
    assert len(row["epoch_seconds_all"]) == 2 * 2 + 2
    assert row["epoch_seconds"] == pytest.approx(float(np.median(row["epoch_seconds_all"])))
    assert row["ensemble_train_seconds"] == pytest.approx(
        2 * float(np.median(row["member_train_seconds_all"])))
    assert row["ensemble_train_epochs"] == pytest.approx(row["ensemble_train_seconds"]
                                                         / row["epoch_seconds"])
    kron, diag = row["flavours"][KRON], row["flavours"]["last_layer_diag"]
    assert diag == plans["last_layer_diag"] and diag["status"] == "skipped"
    assert len(kron["fit_seconds_all"]) == 2 and kron["fit_seconds"] > 0
    assert kron["fit_epochs"] == pytest.approx(kron["fit_seconds"] / row["epoch_seconds"])
    assert kron["fit_token_epochs"] == pytest.approx(kron["fit_seconds"]
                                                     / row["token_epoch_seconds"])
    assert kron["curvature_epochs"] == pytest.approx(kron["curvature_seconds"]
                                                     / row["epoch_seconds"])
    assert kron["probit_seconds_per_1000"] > 0 and kron["sampled_epochs_per_1000"] > 0
    assert kron["achieved_flop_rate"] == pytest.approx(kron["predicted_flops"]
                                                       / kron["fit_seconds"])


def test_profile_size_records_a_failed_fit_and_goes_on(corpus, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of luck")
    monkeypatch.setattr(profiling, "profile_posterior", broken)
    plans = _plans(corpus, int(corpus[1].sum()))
    row = _profile(corpus, plans, repeats=1, warmed={KRON, "last_layer_diag"})
    for entry in row["flavours"].values():
        assert entry["status"] == "failed" and entry["reason"] == "RuntimeError: out of luck"
        assert "fit_seconds" not in entry
    assert row["epoch_seconds"] > 0


# --- tables of profiled sizes ---------------------------------------------------------------


def _sweep_row(parameters, epoch, token_epoch, fits):
    """One size of a sweep: ``fits`` maps a flavour to its fit seconds, or None if skipped."""
    flavours = {name: {"status": "measured", "fit_seconds": fit, "fit_epochs": fit / epoch}
                if fit is not None else {"status": "skipped", "reason": "too big"}
                for name, fit in fits.items()}
    return {"d_model": parameters // 100, "n_layers": 1, "parameters": parameters,
            "epoch_seconds": epoch, "token_epoch_seconds": token_epoch, "flavours": flavours}


def test_fit_costs_by_hand():
    sweep = [_sweep_row(1_000, 0.01, 0.04, {"last_layer_kron": 0.02, "all_diag_ef": 0.5}),
             _sweep_row(50_000, 0.2, 1.0, {"last_layer_kron": 0.3, "all_diag_ef": None})]
    table = profiling.fit_costs({"sweep": sweep})
    assert list(table.columns) == ["parameters", "d_model", "n_layers", "flavour", "unit",
                                   "cost", "seconds"]
    # two units per measured (size, flavour); the skipped fit is absent
    assert len(table) == 2 * 3
    assert not ((table["flavour"] == "all_diag_ef") & (table["parameters"] == 50_000)).any()
    assert (table.groupby(["parameters", "flavour"]).size() == 2).all()
    assert set(table["unit"]) == {"epochs", "token epochs"}
    cost = table.set_index(["parameters", "flavour", "unit"])["cost"]
    assert cost[1_000, "last_layer_kron", "epochs"] == pytest.approx(2.0)
    assert cost[1_000, "last_layer_kron", "token epochs"] == pytest.approx(0.5)
    assert cost[50_000, "last_layer_kron", "epochs"] == pytest.approx(1.5)
    assert cost[1_000, "all_diag_ef", "token epochs"] == pytest.approx(12.5)
    # a list of sizes works as well as run_costs' dict; flavours restricts
    pd.testing.assert_frame_equal(profiling.fit_costs(sweep), table)
    kron = profiling.fit_costs(sweep, flavours=["last_layer_kron"])
    assert set(kron["flavour"]) == {"last_layer_kron"} and len(kron) == 4
    with pytest.raises(ValueError, match="no measured Laplace fit"):
        profiling.fit_costs(sweep, flavours=["last_layer_full"])
    with pytest.raises(ValueError, match="no measured Laplace fit"):
        profiling.fit_costs([_sweep_row(1_000, 0.01, 0.04, {"last_layer_kron": None})])
    with pytest.raises(ValueError, match="no measured Laplace fit"):
        profiling.fit_costs({"sweep": []})


def test_scaling_fits_by_hand():
    sweep = [_sweep_row(p, 1e-4 * p, 1e-3 * p, {KRON: 2e-3 * p**0.5, "all_diag_ef": None})
             for p in (100, 10_000, 1_000_000)]
    fits = profiling.scaling_fits(sweep)
    assert set(fits) == {"epoch_seconds", KRON}  # a flavour measured nowhere has no law
    assert fits["epoch_seconds"]["exponent"] == pytest.approx(1.0)
    assert fits["epoch_seconds"]["prefactor"] == pytest.approx(1e-4)
    assert fits[KRON]["sizes"] == 3
    assert fits[KRON]["fit_seconds"]["exponent"] == pytest.approx(0.5)
    assert fits[KRON]["fit_epochs"]["exponent"] == pytest.approx(-0.5)
    assert profiling.scaling_fits(sweep[:1]) == {}


def test_cost_table_by_hand():
    row = _sweep_row(1_000, 0.01, 0.04, {KRON: 0.02, "all_diag_ef": None})
    row["flavours"][KRON].update(probit_seconds_per_1000=0.5, sampled_seconds_per_1000=0.25,
                                 peak_rss_bytes=2 * 2**20, reason=None)
    row.update(ensemble_members=5, train_steps=3, ensemble_train_seconds=0.5,
               ensemble_train_epochs=50.0, ensemble_predict_seconds_per_1000=0.1,
               train_peak_rss_bytes=2**20)
    table = profiling.cost_table({"sweep": [row]})
    assert list(table["method"]) == [KRON, "all_diag_ef", "ensemble x5 (3 steps each)"]
    kron, skipped, ensemble = (table.iloc[i] for i in range(3))
    assert kron["epoch_ms"] == pytest.approx(10.0) and kron["fit_epochs"] == pytest.approx(2.0)
    assert kron["peak_mib"] == 2.0 and kron["status"] == "measured"
    assert skipped["status"] == "skipped" and skipped["note"] == "too big"
    assert pd.isna(skipped["fit_s"]) and pd.isna(skipped["peak_mib"])
    assert ensemble["fit_epochs"] == 50.0 and ensemble["note"] == "training"
    pd.testing.assert_frame_equal(profiling.cost_table([row]), table)


def test_definitions_name_every_unit():
    assert {"epoch", "token_epoch", "fit", "memory", "ratios"} <= set(profiling.DEFINITIONS)
    assert all(isinstance(text, str) and text for text in profiling.DEFINITIONS.values())

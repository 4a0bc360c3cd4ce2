"""Tests of bayes_at_scale.experiments.alignment: claim C11's best-of-n with a Laplace reward model,
claim C12's REINFORCE fine-tuning, their tables and statistics, and the recipes.  (The
preference world, best-of-n and the graders are tested in tests/worlds/test_preferences.py; the
reward model's training and the REINFORCE loss in tests/core/test_training.py.)

Everything is tiny (reward networks of 16 units, a fact world of 60 entities and a one-layer
transformer of width 16), so the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale.book import claims
from bayes_at_scale.core.posteriors import PreferencePosteriorConfig
from bayes_at_scale.core.settings import Settings
from bayes_at_scale.core.training import Recipe, RewardModelConfig
from bayes_at_scale.experiments import alignment
from bayes_at_scale.experiments.alignment import OveroptimisationRecipe, ReinforceConfig
from bayes_at_scale.worlds import facts
from bayes_at_scale.worlds.preferences import (BENCHMARK, GRADERS, AnswerEvaluation,
                                              evaluate_answers, kl_best_of_n)

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY_C11 = OveroptimisationRecipe(
    n_pairs=600, n_heldout=300, n_prompts=40, n_candidates=32, max_n=16, dim=4, gold_hidden=16,
    reward_model=RewardModelConfig(hidden=(16,), steps=80),
    posterior=PreferencePosteriorConfig(prior_steps=20))
TINY_RL = ReinforceConfig(steps=6, batch_size=32, lr=1e-3)
TINY_FACTS = Recipe(
    corpus=dict(n_entities=60, n_name_parts=8, name_length=2, n_values=4, n_mentions=300,
                unknown_share=0.2),
    model=dict(d_model=16, n_heads=2, n_layers=1),
    training=dict(steps=60, lr=2e-2, progress=False))


# --- C11 end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c11_rep():
    return alignment.run_c11(TINY_C11, seed=0)


def test_c11_replicate_shapes_and_tables(c11_rep):
    assert c11_rep.ns == (1, 2, 4, 8, 16) and c11_rep.k == alignment.K_PESSIMISM == 1.0
    for table in (c11_rep.gold, c11_rep.proxy, c11_rep.ood):
        assert set(table) == set(alignment.METHODS)
        assert all(v.shape == (40, 5) for v in table.values())
    # n = 1 takes a random candidate whatever the score
    np.testing.assert_allclose(c11_rep.gold["MAP"][:, 0], c11_rep.gold["pessimistic"][:, 0])
    assert (np.diff(c11_rep.proxy["MAP"], axis=1) >= -1e-9).all()
    assert 0.6 < c11_rep.heldout_accuracy <= 1 and c11_rep.prior_precision > 0
    assert set(c11_rep.components["component"]) <= {"in distribution", "out of distribution"}
    table = alignment.best_of_n_table(c11_rep)
    assert len(table) == 2 * 5 and set(table["method"]) == {"MAP", "mean - 1 std"}
    np.testing.assert_allclose(table["kl"].iloc[:5], kl_best_of_n(c11_rep.ns))


def test_c11_statistics_match_the_claim(c11_rep):
    stats = alignment.c11_statistics(c11_rep, n_resamples=200)
    value, low, high = stats["gold_difference"]
    diff = c11_rep.gold["pessimistic"][:, -1] - c11_rep.gold["MAP"][:, -1]
    assert value == pytest.approx(diff.mean()) and low <= high
    assert stats["ci_low_gold_difference"] == low
    claim = claims.load_claims()["C11"]
    assert claims.seed_outcome(claim, stats) in ("pass", "fail", "undecided")


def test_c11_is_reproducible(c11_rep):
    again = alignment.run_c11(TINY_C11, seed=0)
    for m in alignment.METHODS:
        np.testing.assert_array_equal(again.gold[m], c11_rep.gold[m])
        np.testing.assert_array_equal(again.proxy[m], c11_rep.proxy[m])
    other = alignment.run_c11(TINY_C11, seed=1)
    assert not np.allclose(other.gold["MAP"], c11_rep.gold["MAP"])


# --- C12 on a tiny fact world ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fact_model():
    return alignment.pretrained_fact_model(TINY_FACTS, seed=0)


def test_the_pretrained_fact_model_is_chapter_4s(fact_model):
    world, model = fact_model
    assert world.n_entities == 60 and model.head.out_features == world.vocab_size
    again_world, again = alignment.pretrained_fact_model(TINY_FACTS, seed=0)
    np.testing.assert_array_equal(again_world.truth, world.truth)
    assert all(torch.equal(x, y) for x, y in zip(again.state_dict().values(),
                                                 model.state_dict().values()))


def test_reliability_table_adds_up_to_the_ece(fact_model):
    world, model = fact_model
    ev = evaluate_answers(model, world, world.sample_queries(300, seed=2))
    table = alignment.reliability_table(ev.probs, ev.labels)
    assert table["count"].sum() == 300 and table["share"].sum() == pytest.approx(1.0)
    assert ((table["confidence"] >= table["low"]) & (table["confidence"] <= table["high"])).all()
    ece = (table["share"] * (table["confidence"] - table["accuracy"]).abs()).sum()
    assert ece == pytest.approx(ev.ece, abs=1e-6)


def test_reinforce_fine_tunes_a_copy_reproducibly(fact_model):
    world, model = fact_model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a, history = alignment.reinforce(model, world, TINY_RL, threshold=None, seed=3)
    b, _ = alignment.reinforce(model, world, TINY_RL, threshold=None, seed=3)
    c, _ = alignment.reinforce(model, world, TINY_RL, threshold=0.75, seed=3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key  # the original is untouched
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                     model.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                     c.state_dict().values()))
    assert list(history.columns) == ["step", "reward", "unknown_share"] and len(history) == 6
    assert history["reward"].between(0, 1).all()


def test_run_c12_and_its_tables(fact_model):
    world, model = fact_model
    rep = alignment.run_c12(world, model, TINY_RL, seed=0, n_queries=200)
    assert set(rep.after) == set(GRADERS)
    assert set(rep.history["grader"]) == set(GRADERS)
    table = alignment.confidence_table(rep)
    assert list(table["stage"]) == ["before", "after binary", "after t=0.75"]
    assert {"ece", "unknown_rate", "expected_binary", "expected_t=0.75"} <= set(table.columns)
    diagram = alignment.reliability_diagram_table([rep])
    assert set(diagram["stage"]) == set(table["stage"])
    assert diagram.groupby("stage")["count"].sum().eq(200).all()
    stats = alignment.c12_statistics(rep.before, rep.after["binary"])
    assert set(stats) == {c.statistic for c in claims.load_claims()["C12"].conditions}


def _evaluation(ece: float, unknown_rate: float) -> AnswerEvaluation:
    empty = np.zeros(1)
    return AnswerEvaluation(empty, np.ones((1, 2)) / 2, np.zeros(1, int), ece, unknown_rate,
                            unknown_rate, 0.5, 0.5, 0.0, 0.0)


def test_c12_statistics_arithmetic():
    stats = alignment.c12_statistics(_evaluation(0.05, 0.2), _evaluation(0.15, 0.05))
    assert stats["ece_ratio"] == pytest.approx(3.0)
    assert stats["unknown_rate_drop"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"never answered 'unknown'"):
        alignment.c12_statistics(_evaluation(0.05, 0.0), _evaluation(0.1, 0.0))
    with pytest.raises(ValueError, match=r"ECE before fine-tuning is 0"):
        alignment.c12_statistics(_evaluation(0.0, 0.1), _evaluation(0.1, 0.0))
    with pytest.raises(TypeError, match=r"after must be an? AnswerEvaluation, got dict"):
        alignment.c12_statistics(_evaluation(0.05, 0.2), {})


def test_recipe_by_scale():
    assert set(alignment.RECIPES) == {"quick", "full"}
    for scale, r in alignment.RECIPES.items():
        assert r.n_seeds >= 2 and r.overoptimisation.max_n >= 256
        assert r.overoptimisation.ns[0] == 1
        assert r.facts is facts.FACT_RECIPES[scale]  # C12 fine-tunes chapter 4's model
    assert alignment.recipe("full") is alignment.RECIPES["full"]
    with pytest.raises(ValueError, match=r"unknown scale 'huge': expected one of"):
        alignment.recipe("huge")


# --- the supplementary benchmark grader (not part of claim C12) -----------------------------


def test_benchmark_fine_tuning_pairs_with_the_binary_one(fact_model):
    world, model = fact_model
    binary, h_binary = alignment.reinforce(model, world, TINY_RL, None, seed=3)
    bench, h_bench = alignment.reinforce(model, world, TINY_RL, None, seed=3,
                                         credit_unknown=False)
    # same queries and draws: the first step samples the same answers, graded differently
    assert h_bench["unknown_share"].iloc[0] == h_binary["unknown_share"].iloc[0]
    assert h_bench["reward"].iloc[0] <= h_binary["reward"].iloc[0]
    assert not all(torch.equal(x, y) for x, y in zip(binary.state_dict().values(),
                                                     bench.state_dict().values()))
    again, _ = alignment.reinforce(model, world, TINY_RL, None, seed=3, credit_unknown=False)
    assert all(torch.equal(x, y) for x, y in zip(bench.state_dict().values(),
                                                 again.state_dict().values()))


def test_run_c12_adds_the_benchmark_grader_on_request(fact_model):
    world, model = fact_model
    plain = alignment.run_c12(world, model, TINY_RL, seed=0, n_queries=200)
    extra = alignment.run_c12(world, model, TINY_RL, seed=0, n_queries=200, benchmark=True)
    assert list(extra.after) == [*GRADERS, BENCHMARK]
    assert set(extra.history["grader"]) == {*GRADERS, BENCHMARK}
    for name in GRADERS:  # the claim's runs are unchanged by the extra one
        np.testing.assert_array_equal(extra.after[name].probs, plain.after[name].probs)
    table = alignment.confidence_table(extra)
    assert list(table["stage"]) == ["before", "after binary", "after t=0.75", "after benchmark"]
    assert {"abstention", "expected_benchmark"} <= set(table.columns)
    stats = alignment.c12_statistics(extra.before, extra.after[BENCHMARK])
    assert set(stats) == {"ece_ratio", "unknown_rate_drop"}


# --- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("call, pattern", [
    (lambda: alignment.run_c11(TINY_C11, seed=0, k=-0.5), r"k must be a finite number"),
    (lambda: alignment.run_c11(TINY_C11, seed=-1), r"seed must be an integer >= 0"),
    (lambda: ReinforceConfig(steps=0), r"steps must be an integer >= 1"),
    (lambda: OveroptimisationRecipe(max_n=512, n_candidates=256),
     r"max_n \(512\) exceeds n_candidates \(256\)"),
    (lambda: alignment.reliability_table(np.full((2, 2), 0.5), [0, 2]),
     r"labels must be 2 integer classes"),
    (lambda: alignment.reliability_table(np.full((2, 2), 0.5), [0, 1], n_bins=0),
     r"n_bins must be an integer >= 1"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_bad_c12_inputs(fact_model):
    world, model = fact_model
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\)"):
        alignment.reinforce(model, world, TINY_RL, threshold=1.5)
    with pytest.raises(TypeError, match=r"config must be a ReinforceConfig"):
        alignment.reinforce(model, world, {"steps": 2})
    with pytest.raises(ValueError, match=r"n_queries must be an integer >= 1"):
        alignment.run_c12(world, model, TINY_RL, seed=0, n_queries=0)
    with pytest.raises(TypeError, match=r"world must be a FactWorld"):
        alignment.run_c12("world", model, TINY_RL, seed=0)
    with pytest.raises(TypeError, match=r"recipe must be a Recipe, got Settings"):
        alignment.pretrained_fact_model(Settings(), seed=0)
    with pytest.raises(TypeError, match=r"recipe must be an OveroptimisationRecipe"):
        alignment.run_c11(TINY_FACTS, seed=0)

"""Tests of bayes_at_scale.worlds.preferences: the gold reward and base policy, Bradley-Terry
preference data, exact best-of-n, and the graders and answer evaluation of a fact model.

Everything is tiny (a fact world of 60 entities and a one-layer transformer of width 16), so the
file runs in seconds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bayes_at_scale.core import metrics, training
from bayes_at_scale.core.models import CausalLM
from bayes_at_scale.core.settings import seeded_torch
from bayes_at_scale.worlds import facts, preferences

# --- the preference world -------------------------------------------------------------------


def test_gold_reward_is_fixed_and_standardised():
    gold = preferences.GoldReward(dim=4, hidden=16, scale=2.0)
    x = np.random.default_rng(5).standard_normal((20_000, 4))
    g = gold(x)
    assert g.shape == (20_000,)
    assert abs(g.mean()) < 0.1 and g.std() == pytest.approx(2.0, rel=0.05)
    np.testing.assert_array_equal(g, preferences.GoldReward(dim=4, hidden=16, scale=2.0)(x))
    assert not np.allclose(g, preferences.GoldReward(dim=4, hidden=16, seed=1)(x))
    assert gold(x.reshape(100, 200, 4)).shape == (100, 200)


def test_base_policy_mixes_in_and_out_of_distribution_responses():
    policy = preferences.BasePolicy(dim=3, ood_share=0.2, ood_scale=4.0)
    x, ood = policy.sample((50, 100), np.random.default_rng(0))
    assert x.shape == (50, 100, 3) and x.dtype == np.float32 and ood.shape == (50, 100)
    assert ood.mean() == pytest.approx(0.2, abs=0.02)
    assert x[~ood].std() == pytest.approx(1.0, rel=0.05)
    assert x[ood].std() == pytest.approx(4.0, rel=0.1)
    _, none = policy.sample(1000, np.random.default_rng(0), ood_share=0.0)
    assert not none.any()


def test_preferences_follow_the_gold_reward():
    gold, policy = preferences.GoldReward(dim=4, hidden=16), preferences.BasePolicy(dim=4)
    pairs, preferred, g = preferences.preference_data(gold, policy, 4000,
                                                      np.random.default_rng(1), ood_share=0.0)
    assert pairs.shape == (4000, 2, 4) and preferred.shape == (4000,) and g.shape == (4000, 2)
    np.testing.assert_allclose(gold(pairs.numpy()), g)
    # Bradley-Terry: the label agrees with the gold ordering as often as sigmoid predicts
    p_second = 1 / (1 + np.exp(-(g[:, 1] - g[:, 0])))
    assert preferred.numpy().mean() == pytest.approx(p_second.mean(), abs=0.03)
    agree = (preferred.numpy() == (g[:, 1] > g[:, 0])).mean()
    assert agree == pytest.approx(np.maximum(p_second, 1 - p_second).mean(), abs=0.03)


# --- best-of-n ------------------------------------------------------------------------------


def test_kl_of_best_of_n():
    assert preferences.kl_best_of_n(1) == 0.0
    assert preferences.kl_best_of_n(2) == pytest.approx(math.log(2) - 0.5)
    np.testing.assert_allclose(preferences.kl_best_of_n([1, 4, 256]),
                               [0.0, math.log(4) - 0.75, math.log(256) - 255 / 256])
    assert np.all(np.diff(preferences.kl_best_of_n(preferences.powers_of_two(1024))) > 0)


def test_best_of_n_weights_match_brute_force_enumeration():
    rng = np.random.default_rng(3)
    scores, values = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    got = preferences.best_of_n(scores, {"v": values}, [1, 2, 3, 7])["v"]
    for j, n in enumerate([1, 2, 3, 7]):
        for p in range(4):
            subsets = list(itertools.combinations(range(7), n))
            brute = np.mean([values[p, max(s, key=lambda i: scores[p, i])] for s in subsets])
            assert got[p, j] == pytest.approx(brute)
    for n in (1, 3, 7):
        w = preferences.bon_weights(7, n)
        assert w.sum() == pytest.approx(1.0) and (w[:n - 1] == 0).all()


def test_best_of_one_is_the_base_mean():
    rng = np.random.default_rng(4)
    gold = preferences.GoldReward(dim=4, hidden=16)
    policy = preferences.BasePolicy(dim=4, ood_share=0.1)
    x, _ = policy.sample((400, 16), rng)
    g = gold(x)
    scores = rng.standard_normal(g.shape)  # any score: best-of-1 takes a random candidate
    first = preferences.best_of_n(scores, {"gold": g}, [1, 16])["gold"]
    np.testing.assert_allclose(first[:, 0], g.mean(axis=1))  # exactly the candidates' mean
    big, _ = policy.sample(200_000, np.random.default_rng(9))
    base_mean = gold(big).mean()
    assert abs(first[:, 0].mean() - base_mean) < 4 * g.std() / math.sqrt(g.size)
    assert (first[:, 1] == g[np.arange(400), scores.argmax(axis=1)]).all()  # n = N: the argmax


def test_selected_score_is_non_decreasing_in_n():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((30, 64))
    ns = preferences.powers_of_two(64)
    chosen = preferences.best_of_n(scores, {"score": scores}, ns)["score"]
    assert (np.diff(chosen, axis=1) >= -1e-12).all()
    np.testing.assert_allclose(chosen[:, -1], scores.max(axis=1))


def test_pessimistic_scores():
    np.testing.assert_allclose(preferences.pessimistic_scores([1.0, 2.0], [0.5, 2.0], k=1.0),
                               [0.5, 0.0])
    np.testing.assert_allclose(preferences.pessimistic_scores([1.0, 2.0], [0.5, 2.0], k=0.0),
                               [1.0, 2.0])


# --- graded answers -------------------------------------------------------------------------


def test_graders():
    outcomes = np.array(["right", "unknown", "wrong", "right"])
    np.testing.assert_array_equal(preferences.grade(outcomes), [1, 0, 0, 1])
    np.testing.assert_array_equal(preferences.grade(outcomes, 0.75), [1, 0, -3, 1])
    np.testing.assert_array_equal(preferences.grade(outcomes, 0.0), [1, 0, 0, 1])
    assert preferences.GRADERS == {"binary": None, "t=0.75": 0.75}


def test_benchmark_grading_never_credits_unknown():
    outcomes = np.array(["right", "right", "unknown", "wrong"])
    said = np.array([False, True, True, False])  # the second is "unknown" for an unknown fact
    np.testing.assert_array_equal(preferences.grade(outcomes), [1, 1, 0, 0])
    np.testing.assert_array_equal(preferences.grade(outcomes, None, said), [1, 0, 0, 0])
    np.testing.assert_array_equal(preferences.grade(outcomes, 0.75, said), [1, 0, 0, -3])
    np.testing.assert_array_equal(preferences.grade(outcomes, None, np.zeros(4, bool)),
                                  preferences.grade(outcomes))
    assert preferences.BENCHMARK not in preferences.GRADERS  # supplementary, not one of C12's
    with pytest.raises(ValueError, match=r"said_unknown must be booleans of shape \(4,\)"):
        preferences.grade(outcomes, None, np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"said_unknown must be booleans"):
        preferences.grade(outcomes, None, np.zeros(4))


@pytest.fixture(scope="module")
def fact_model():
    world = facts.make_fact_world(n_entities=60, n_name_parts=8, name_length=2, n_values=4,
                                  n_mentions=300, unknown_share=0.2, seed=0)
    with seeded_torch(0):
        model = CausalLM(world.vocab_size, max_len=world.seq_len - 1, d_model=16, n_heads=2,
                         n_layers=1)
    training.train_map(model, *world.next_token_counts(), steps=60, lr=2e-2, progress=False)
    return world, model


def test_answer_distribution_and_evaluation(fact_model):
    world, model = fact_model
    entities = world.sample_queries(300, seed=1)
    ev = preferences.evaluate_answers(model, world, entities)
    assert ev.probs.shape == (300, world.n_values + 1)
    np.testing.assert_allclose(ev.probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(ev.probs, preferences.answer_probs(model, world, entities))
    np.testing.assert_array_equal(world.answer_tokens[ev.labels], world.truth[entities])
    assert ev.ece == pytest.approx(metrics.ece(ev.probs, ev.labels))
    unknown = world.n_values
    assert ev.unknown_rate == pytest.approx(np.mean(ev.probs.argmax(1) == unknown))
    assert ev.p_unknown == pytest.approx(ev.probs[:, unknown].mean())
    right = ev.probs[np.arange(300), ev.labels]
    assert ev.expected_reward["binary"] == pytest.approx(right.mean())
    p_abstain = np.where(ev.labels == unknown, 0.0, ev.probs[:, unknown])
    assert ev.expected_reward["t=0.75"] == pytest.approx(
        (right - 3 * (1 - right - p_abstain)).mean())


def test_expected_benchmark_reward_and_abstention_rate(fact_model):
    world, model = fact_model
    ev = preferences.evaluate_answers(model, world, world.sample_queries(300, seed=4))
    unknown = world.n_values
    right = ev.probs[np.arange(300), ev.labels]
    assert ev.expected_reward[preferences.BENCHMARK] == pytest.approx(
        np.where(ev.labels == unknown, 0.0, right).mean())
    said = ev.probs.argmax(axis=1) == unknown
    assert ev.abstention_rate == pytest.approx(np.mean(said & (ev.labels != unknown)))
    assert ev.abstention_rate <= ev.unknown_rate


def test_bad_answer_queries(fact_model):
    world, model = fact_model
    with pytest.raises(ValueError, match=r"entities must be a non-empty"):
        preferences.evaluate_answers(model, world, [])
    with pytest.raises(ValueError, match=r"entities must be integer indices in 0..59"):
        preferences.evaluate_answers(model, world, [0, 60])
    with pytest.raises(TypeError, match=r"world must be a FactWorld"):
        preferences.evaluate_answers(model, "world", [0])
    with pytest.raises(TypeError, match=r"model must be a CausalLM, got str"):
        preferences.answer_logits("model", world, [0])


# --- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("call, pattern", [
    (lambda: preferences.kl_best_of_n(0), r"n must be integer\(s\) >= 1"),
    (lambda: preferences.kl_best_of_n(1.5), r"n must be integer\(s\) >= 1"),
    (lambda: preferences.bon_weights(8, 0), r"n must be an integer >= 1, got 0"),
    (lambda: preferences.bon_weights(8, 9), r"n \(9\) exceeds n_candidates \(8\)"),
    (lambda: preferences.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 4))}, [0]),
     r"n must be an integer >= 1, got 0"),
    (lambda: preferences.best_of_n(np.zeros((3, 0)), {"v": np.zeros((3, 0))}, [1]),
     r"scores is empty"),
    (lambda: preferences.best_of_n(np.zeros(4), {"v": np.zeros(4)}, [1]),
     r"scores must have 2 dimension\(s\)"),
    (lambda: preferences.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 5))}, [1]),
     r"values\['v'\] must have the shape of scores"),
    (lambda: preferences.best_of_n(np.zeros((3, 4)), {}, [1]),
     r"values must be a non-empty dict"),
    (lambda: preferences.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 4))}, []),
     r"ns is empty"),
    (lambda: preferences.pessimistic_scores([1.0], [0.1], k=-1.0), r"k must be a finite number"),
    (lambda: preferences.pessimistic_scores([1.0, 2.0], [0.1], k=1.0),
     r"mean and std must have the same shape"),
    (lambda: preferences.pessimistic_scores([1.0], [-0.1], k=1.0), r"std must be non-negative"),
    (lambda: preferences.grade(["right"], threshold=1.0), r"threshold must lie in \[0, 1\)"),
    (lambda: preferences.grade(["right"], threshold=-0.1), r"threshold must lie in \[0, 1\)"),
    (lambda: preferences.grade(["maybe"]), r"outcomes must be 'right', 'unknown' or 'wrong'"),
    (lambda: preferences.grade([]), r"outcomes must be a non-empty"),
    (lambda: preferences.powers_of_two(100), r"max_n must be a power of two"),
    (lambda: preferences.GoldReward(dim=4)(np.zeros((3, 5))), r"responses must have shape"),
    (lambda: preferences.BasePolicy(ood_share=1.0), r"ood_share must be a finite number"),
    (lambda: preferences.preference_data(preferences.GoldReward(dim=4),
                                         preferences.BasePolicy(dim=3), 10,
                                         np.random.default_rng(0), 0.0),
     r"gold reward \(dim 4\) and policy \(dim 3\) disagree"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# --- round 2: the gold reward that turns over, and the reward of every answer ---------------


def test_turning_gold_is_round_1s_inside_the_data_and_turns_over_beyond():
    plain, turning = preferences.GoldReward(), preferences.TurningGold()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 8))
    inside = np.linalg.norm(x, axis=1) <= turning.radius
    # the radius is the 0.99 quantile of an in-distribution response's norm
    assert abs(inside.mean() - 0.99) < 0.005
    np.testing.assert_allclose(turning(x[inside]), plain(x[inside]))
    assert (turning(x[~inside]) < plain(x[~inside])).all()
    # along any ray the gold reward rises or falls inside, and falls without bound outside:
    # its maximum over distance is in the interior, far above its value four radii out
    for u in rng.standard_normal((5, 8)):
        u /= np.linalg.norm(u)
        t = np.linspace(0, 4 * turning.radius, 400)
        g = turning(t[:, None] * u)
        assert t[g.argmax()] < 2 * turning.radius
        assert g.max() - g[-1] > 10
    assert turning.penalty(np.zeros((1, 8)))[0] == 0


def test_answer_rewards_grade_every_answer(fact_model):
    world, _ = fact_model
    entities = np.arange(world.n_entities)
    labels = preferences.truth_index(world, entities)
    unknown = len(world.answer_tokens) - 1
    binary = preferences.answer_rewards(world, entities)
    assert binary.shape == (world.n_entities, unknown + 1)
    np.testing.assert_array_equal(binary.argmax(axis=1), labels)
    np.testing.assert_array_equal(binary.sum(axis=1), 1.0)
    bench = preferences.answer_rewards(world, entities, None, credit_unknown=False)
    assert (bench[:, unknown] == 0).all()
    truly_unknown = labels == unknown
    assert truly_unknown.any() and (bench[truly_unknown] == 0).all()
    kalai = preferences.answer_rewards(world, entities, 0.75)
    assert set(np.unique(kalai)) == {-3.0, 0.0, 1.0}
    # exactly what grade gives each answer, graded as answer_outcome grades it
    for threshold, credit_unknown in itertools.product((None, 0.75, 0.5), (True, False)):
        rewards = preferences.answer_rewards(world, entities, threshold, credit_unknown)
        for a, token in enumerate(world.answer_tokens):
            outcomes = facts.answer_outcome(np.full(world.n_entities, token), world, entities)
            said = None if credit_unknown else np.full(world.n_entities, a == unknown)
            np.testing.assert_array_equal(rewards[:, a],
                                          preferences.grade(outcomes, threshold, said))


@pytest.mark.parametrize("call, pattern", [
    (lambda: preferences.TurningGold(radius=-1.0), "radius"),
    (lambda: preferences.TurningGold(quantile=1.5), "quantile"),
    (lambda: preferences.TurningGold(curvature=-0.1), "curvature"),
    (lambda: preferences.TurningGold().penalty(np.zeros((2, 3))), "responses"),
])
def test_bad_turning_gold_inputs(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()

"""Tests of bayes_at_scale.rewards: the gold reward and base policy, the Bradley-Terry reward
model, best-of-n, REINFORCE, calibration tables and claims C11 / C12's statistics.

Everything is tiny (reward networks of 16-32 units, a fact world of 60 entities and a one-layer
transformer of width 16), so the file runs in seconds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from bayes_at_scale import claims, facts, metrics, rewards, training
from bayes_at_scale.posteriors import PreferencePosteriorConfig
from bayes_at_scale.settings import Settings
from bayes_at_scale.rewards import (AnswerEvaluation, OveroptimisationRecipe, ReinforceConfig,
                                    RewardModelConfig)

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY_C11 = OveroptimisationRecipe(
    n_pairs=600, n_heldout=300, n_prompts=40, n_candidates=32, max_n=16, dim=4, gold_hidden=16,
    reward_model=RewardModelConfig(hidden=(16,), steps=80),
    posterior=PreferencePosteriorConfig(prior_steps=20))
TINY_RL = ReinforceConfig(steps=6, batch_size=32, lr=1e-3)


# --- the synthetic world --------------------------------------------------------------------


def test_gold_reward_is_fixed_and_standardised():
    gold = rewards.GoldReward(dim=4, hidden=16, scale=2.0)
    x = np.random.default_rng(5).standard_normal((20_000, 4))
    g = gold(x)
    assert g.shape == (20_000,)
    assert abs(g.mean()) < 0.1 and g.std() == pytest.approx(2.0, rel=0.05)
    np.testing.assert_array_equal(g, rewards.GoldReward(dim=4, hidden=16, scale=2.0)(x))
    assert not np.allclose(g, rewards.GoldReward(dim=4, hidden=16, seed=1)(x))
    assert gold(x.reshape(100, 200, 4)).shape == (100, 200)


def test_base_policy_mixes_in_and_out_of_distribution_responses():
    policy = rewards.BasePolicy(dim=3, ood_share=0.2, ood_scale=4.0)
    x, ood = policy.sample((50, 100), np.random.default_rng(0))
    assert x.shape == (50, 100, 3) and x.dtype == np.float32 and ood.shape == (50, 100)
    assert ood.mean() == pytest.approx(0.2, abs=0.02)
    assert x[~ood].std() == pytest.approx(1.0, rel=0.05)
    assert x[ood].std() == pytest.approx(4.0, rel=0.1)
    _, none = policy.sample(1000, np.random.default_rng(0), ood_share=0.0)
    assert not none.any()


def test_preferences_follow_the_gold_reward():
    gold, policy = rewards.GoldReward(dim=4, hidden=16), rewards.BasePolicy(dim=4)
    pairs, preferred, g = rewards.preference_data(gold, policy, 4000, np.random.default_rng(1),
                                                  ood_share=0.0)
    assert pairs.shape == (4000, 2, 4) and preferred.shape == (4000,) and g.shape == (4000, 2)
    np.testing.assert_allclose(gold(pairs.numpy()), g)
    # Bradley-Terry: the label agrees with the gold ordering as often as sigmoid predicts
    p_second = 1 / (1 + np.exp(-(g[:, 1] - g[:, 0])))
    assert preferred.numpy().mean() == pytest.approx(p_second.mean(), abs=0.03)
    agree = (preferred.numpy() == (g[:, 1] > g[:, 0])).mean()
    assert agree == pytest.approx(np.maximum(p_second, 1 - p_second).mean(), abs=0.03)


# --- the reward model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model():
    gold, policy = rewards.GoldReward(dim=4, hidden=16), rewards.BasePolicy(dim=4)
    rng = np.random.default_rng(2)
    pairs, preferred, _ = rewards.preference_data(gold, policy, 1500, rng, ood_share=0.0)
    held, _, held_gold = rewards.preference_data(gold, policy, 1000, rng, ood_share=0.0)
    model = rewards.train_reward_model(pairs, preferred,
                                       RewardModelConfig(hidden=(32,), steps=150), seed=0)
    return {"model": model, "held": held, "held_gold": held_gold, "pairs": pairs,
            "preferred": preferred}


def test_reward_model_ranks_held_out_pairs_like_the_gold_reward(reward_model):
    accuracy = rewards.pairwise_accuracy(reward_model["model"], reward_model["held"],
                                         reward_model["held_gold"])
    assert accuracy > 0.8  # chance is 0.5


def test_reward_model_shapes_and_seeding(reward_model):
    model = reward_model["model"]
    assert model(reward_model["held"][:5]).shape == (5, 2)
    assert model(reward_model["held"][:5, 0]).shape == (5, 1)
    assert model.reward(reward_model["held"][:5, 0]).shape == (5,)
    assert model.head.bias is None
    config = RewardModelConfig(hidden=(8,), steps=3)
    a, b, c = (rewards.train_reward_model(reward_model["pairs"], reward_model["preferred"],
                                          config, seed=s) for s in (4, 4, 5))
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(),
                                  c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(),
                                                         c.state_dict().values()))


# --- best-of-n ------------------------------------------------------------------------------


def test_kl_of_best_of_n():
    assert rewards.kl_best_of_n(1) == 0.0
    assert rewards.kl_best_of_n(2) == pytest.approx(math.log(2) - 0.5)
    np.testing.assert_allclose(rewards.kl_best_of_n([1, 4, 256]),
                               [0.0, math.log(4) - 0.75, math.log(256) - 255 / 256])
    assert np.all(np.diff(rewards.kl_best_of_n(rewards.powers_of_two(1024))) > 0)


def test_best_of_n_weights_match_brute_force_enumeration():
    rng = np.random.default_rng(3)
    scores, values = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    got = rewards.best_of_n(scores, {"v": values}, [1, 2, 3, 7])["v"]
    for j, n in enumerate([1, 2, 3, 7]):
        for p in range(4):
            subsets = list(itertools.combinations(range(7), n))
            brute = np.mean([values[p, max(s, key=lambda i: scores[p, i])] for s in subsets])
            assert got[p, j] == pytest.approx(brute)
    for n in (1, 3, 7):
        w = rewards.bon_weights(7, n)
        assert w.sum() == pytest.approx(1.0) and (w[:n - 1] == 0).all()


def test_best_of_one_is_the_base_mean():
    rng = np.random.default_rng(4)
    gold, policy = rewards.GoldReward(dim=4, hidden=16), rewards.BasePolicy(dim=4, ood_share=0.1)
    x, _ = policy.sample((400, 16), rng)
    g = gold(x)
    scores = rng.standard_normal(g.shape)  # any score: best-of-1 takes a random candidate
    first = rewards.best_of_n(scores, {"gold": g}, [1, 16])["gold"]
    np.testing.assert_allclose(first[:, 0], g.mean(axis=1))  # exactly the candidates' mean
    big, _ = policy.sample(200_000, np.random.default_rng(9))
    base_mean = gold(big).mean()
    assert abs(first[:, 0].mean() - base_mean) < 4 * g.std() / math.sqrt(g.size)
    assert (first[:, 1] == g[np.arange(400), scores.argmax(axis=1)]).all()  # n = N: the argmax


def test_selected_score_is_non_decreasing_in_n():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((30, 64))
    ns = rewards.powers_of_two(64)
    chosen = rewards.best_of_n(scores, {"score": scores}, ns)["score"]
    assert (np.diff(chosen, axis=1) >= -1e-12).all()
    np.testing.assert_allclose(chosen[:, -1], scores.max(axis=1))


def test_pessimistic_scores():
    np.testing.assert_allclose(rewards.pessimistic_scores([1.0, 2.0], [0.5, 2.0], k=1.0),
                               [0.5, 0.0])
    np.testing.assert_allclose(rewards.pessimistic_scores([1.0, 2.0], [0.5, 2.0], k=0.0),
                               [1.0, 2.0])
    assert rewards.K_PESSIMISM == 1.0


# --- C11 end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c11_rep():
    return rewards.run_c11(TINY_C11, seed=0)


def test_c11_replicate_shapes_and_tables(c11_rep):
    assert c11_rep.ns == (1, 2, 4, 8, 16) and c11_rep.k == rewards.K_PESSIMISM
    for table in (c11_rep.gold, c11_rep.proxy, c11_rep.ood):
        assert set(table) == set(rewards.METHODS)
        assert all(v.shape == (40, 5) for v in table.values())
    # n = 1 takes a random candidate whatever the score
    np.testing.assert_allclose(c11_rep.gold["MAP"][:, 0], c11_rep.gold["pessimistic"][:, 0])
    assert (np.diff(c11_rep.proxy["MAP"], axis=1) >= -1e-9).all()
    assert 0.6 < c11_rep.heldout_accuracy <= 1 and c11_rep.prior_precision > 0
    assert set(c11_rep.components["component"]) <= {"in distribution", "out of distribution"}
    table = rewards.best_of_n_table(c11_rep)
    assert len(table) == 2 * 5 and set(table["method"]) == {"MAP", "mean - 1 std"}
    np.testing.assert_allclose(table["kl"].iloc[:5], rewards.kl_best_of_n(c11_rep.ns))


def test_c11_statistics_match_the_claim(c11_rep):
    stats = rewards.c11_statistics(c11_rep, n_resamples=200)
    value, low, high = stats["gold_difference"]
    diff = c11_rep.gold["pessimistic"][:, -1] - c11_rep.gold["MAP"][:, -1]
    assert value == pytest.approx(diff.mean()) and low <= high
    assert stats["ci_low_gold_difference"] == low
    claim = claims.load_claims()["C11"]
    assert claims.seed_outcome(claim, stats) in ("pass", "fail", "undecided")


def test_c11_is_reproducible(c11_rep):
    again = rewards.run_c11(TINY_C11, seed=0)
    for m in rewards.METHODS:
        np.testing.assert_array_equal(again.gold[m], c11_rep.gold[m])
        np.testing.assert_array_equal(again.proxy[m], c11_rep.proxy[m])
    other = rewards.run_c11(TINY_C11, seed=1)
    assert not np.allclose(other.gold["MAP"], c11_rep.gold["MAP"])


# --- REINFORCE ------------------------------------------------------------------------------


def test_reinforce_gradient_raises_the_rewarded_action():
    logits = torch.zeros(2, requires_grad=True)
    actions = torch.tensor([0, 1, 0, 1, 1])
    rewards_ = (actions == 0).double()
    loss = rewards.reinforce_loss(logits.expand(5, 2), actions, rewards_)
    loss.backward()
    assert logits.grad[0] < 0 < logits.grad[1]  # descent raises logit 0, lowers logit 1
    with torch.no_grad():
        before = torch.softmax(logits, 0)[0].item()
        logits -= 0.5 * logits.grad
        assert torch.softmax(logits, 0)[0].item() > before


def test_reinforce_learns_a_two_action_bandit():
    torch.manual_seed(0)
    logits = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    for _ in range(60):
        batch = logits.expand(64, 2)
        actions = torch.multinomial(torch.softmax(batch.detach(), -1), 1)[:, 0]
        loss = rewards.reinforce_loss(batch, actions, (actions == 0).double())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert torch.softmax(logits, 0)[0] > 0.9


def test_a_constant_reward_gives_no_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    rewards.reinforce_loss(logits, torch.tensor([0, 1, 2, 1]), torch.ones(4)).backward()
    assert torch.equal(logits.grad, torch.zeros(4, 3))


def test_graders():
    outcomes = np.array(["right", "unknown", "wrong", "right"])
    np.testing.assert_array_equal(rewards.grade(outcomes), [1, 0, 0, 1])
    np.testing.assert_array_equal(rewards.grade(outcomes, 0.75), [1, 0, -3, 1])
    np.testing.assert_array_equal(rewards.grade(outcomes, 0.0), [1, 0, 0, 1])
    assert rewards.GRADERS == {"binary": None, "t=0.75": 0.75}


# --- C12 on a tiny fact world ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fact_model():
    world = facts.make_fact_world(n_entities=60, n_name_parts=8, name_length=2, n_values=4,
                                  n_mentions=300, unknown_share=0.2, seed=0)
    torch.manual_seed(0)
    from bayes_at_scale.models import CausalLM

    model = CausalLM(world.vocab_size, max_len=world.seq_len - 1, d_model=16, n_heads=2,
                     n_layers=1)
    training.train_map(model, *world.next_token_counts(), steps=60, lr=2e-2, progress=False)
    return world, model


def test_answer_distribution_and_evaluation(fact_model):
    world, model = fact_model
    entities = world.sample_queries(300, seed=1)
    ev = rewards.evaluate_answers(model, world, entities)
    assert ev.probs.shape == (300, world.n_values + 1)
    np.testing.assert_allclose(ev.probs.sum(axis=1), 1.0)
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


def test_reliability_table_adds_up_to_the_ece(fact_model):
    world, model = fact_model
    ev = rewards.evaluate_answers(model, world, world.sample_queries(300, seed=2))
    table = rewards.reliability_table(ev.probs, ev.labels)
    assert table["count"].sum() == 300 and table["share"].sum() == pytest.approx(1.0)
    assert ((table["confidence"] >= table["low"]) & (table["confidence"] <= table["high"])).all()
    ece = (table["share"] * (table["confidence"] - table["accuracy"]).abs()).sum()
    assert ece == pytest.approx(ev.ece, abs=1e-6)


def test_reinforce_fine_tunes_a_copy_reproducibly(fact_model):
    world, model = fact_model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a, history = rewards.reinforce(model, world, TINY_RL, threshold=None, seed=3)
    b, _ = rewards.reinforce(model, world, TINY_RL, threshold=None, seed=3)
    c, _ = rewards.reinforce(model, world, TINY_RL, threshold=0.75, seed=3)
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
    rep = rewards.run_c12(world, model, TINY_RL, seed=0, n_queries=200)
    assert set(rep.after) == set(rewards.GRADERS)
    assert set(rep.history["grader"]) == set(rewards.GRADERS)
    table = rewards.confidence_table(rep)
    assert list(table["stage"]) == ["before", "after binary", "after t=0.75"]
    assert {"ece", "unknown_rate", "expected_binary", "expected_t=0.75"} <= set(table.columns)
    diagram = rewards.reliability_diagram_table([rep])
    assert set(diagram["stage"]) == set(table["stage"])
    assert diagram.groupby("stage")["count"].sum().eq(200).all()
    stats = rewards.c12_statistics(rep.before, rep.after["binary"])
    assert set(stats) == {c.statistic for c in claims.load_claims()["C12"].conditions}


def _evaluation(ece: float, unknown_rate: float) -> AnswerEvaluation:
    empty = np.zeros(1)
    return AnswerEvaluation(empty, np.ones((1, 2)) / 2, np.zeros(1, int), ece, unknown_rate,
                            unknown_rate, 0.5, 0.5, 0.0, 0.0)


def test_c12_statistics_arithmetic():
    stats = rewards.c12_statistics(_evaluation(0.05, 0.2), _evaluation(0.15, 0.05))
    assert stats["ece_ratio"] == pytest.approx(3.0)
    assert stats["unknown_rate_drop"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"never answered 'unknown'"):
        rewards.c12_statistics(_evaluation(0.05, 0.0), _evaluation(0.1, 0.0))
    with pytest.raises(ValueError, match=r"ECE before fine-tuning is 0"):
        rewards.c12_statistics(_evaluation(0.0, 0.1), _evaluation(0.1, 0.0))


def test_recipes():
    assert set(rewards.RECIPES) == {"quick", "full"}
    for r in rewards.RECIPES.values():
        assert r.n_seeds >= 2 and r.overoptimisation.max_n >= 256
        assert r.overoptimisation.ns[0] == 1
    assert rewards.recipe(Settings(scale="full")) is rewards.RECIPES["full"]


# --- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("call, pattern", [
    (lambda: rewards.kl_best_of_n(0), r"n must be integer\(s\) >= 1"),
    (lambda: rewards.kl_best_of_n(1.5), r"n must be integer\(s\) >= 1"),
    (lambda: rewards.bon_weights(8, 0), r"n must be an integer >= 1, got 0"),
    (lambda: rewards.bon_weights(8, 9), r"n \(9\) exceeds n_candidates \(8\)"),
    (lambda: rewards.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 4))}, [0]),
     r"n must be an integer >= 1, got 0"),
    (lambda: rewards.best_of_n(np.zeros((3, 0)), {"v": np.zeros((3, 0))}, [1]),
     r"scores is empty"),
    (lambda: rewards.best_of_n(np.zeros(4), {"v": np.zeros(4)}, [1]),
     r"scores must have 2 dimension\(s\)"),
    (lambda: rewards.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 5))}, [1]),
     r"values\['v'\] must have the shape of scores"),
    (lambda: rewards.best_of_n(np.zeros((3, 4)), {}, [1]), r"values must be a non-empty dict"),
    (lambda: rewards.best_of_n(np.zeros((3, 4)), {"v": np.zeros((3, 4))}, []),
     r"ns is empty"),
    (lambda: rewards.pessimistic_scores([1.0], [0.1], k=-1.0), r"k must be a finite number"),
    (lambda: rewards.pessimistic_scores([1.0, 2.0], [0.1], k=1.0),
     r"mean and std must have the same shape"),
    (lambda: rewards.pessimistic_scores([1.0], [-0.1]), r"std must be non-negative"),
    (lambda: rewards.run_c11(TINY_C11, seed=0, k=-0.5), r"k must be a finite number"),
    (lambda: rewards.grade(["right"], threshold=1.0), r"threshold must lie in \[0, 1\)"),
    (lambda: rewards.grade(["right"], threshold=-0.1), r"threshold must lie in \[0, 1\)"),
    (lambda: rewards.grade(["maybe"]), r"outcomes must be 'right', 'unknown' or 'wrong'"),
    (lambda: rewards.grade([]), r"outcomes must be a non-empty"),
    (lambda: rewards.powers_of_two(100), r"max_n must be a power of two"),
    (lambda: rewards.GoldReward(dim=4)(np.zeros((3, 5))), r"responses must have shape"),
    (lambda: rewards.BasePolicy(ood_share=1.0), r"ood_share must be a finite number"),
    (lambda: rewards.train_reward_model(torch.zeros(5, 3, 4), torch.zeros(5, dtype=torch.long)),
     r"pairs must be a float tensor of shape \(n, 2, dim\)"),
    (lambda: rewards.train_reward_model(torch.zeros(5, 2, 4), torch.zeros(4, dtype=torch.long)),
     r"preferred must have shape \(5,\)"),
    (lambda: rewards.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1]), torch.zeros(3)),
     r"actions must be integer indices of shape \(3,\)"),
    (lambda: rewards.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1, 2]), torch.zeros(3)),
     r"actions must lie in 0..1"),
    (lambda: rewards.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1, 1]), torch.zeros(2)),
     r"rewards must be finite, of shape \(3,\)"),
    (lambda: rewards.reinforce_loss(torch.zeros(3), torch.tensor([0, 1, 1]), torch.zeros(3)),
     r"logits must be a tensor of shape \(B, actions >= 2\)"),
    (lambda: ReinforceConfig(steps=0), r"steps must be an integer >= 1"),
    (lambda: OveroptimisationRecipe(max_n=512, n_candidates=256),
     r"max_n \(512\) exceeds n_candidates \(256\)"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_bad_c12_inputs(fact_model):
    world, model = fact_model
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\)"):
        rewards.reinforce(model, world, TINY_RL, threshold=1.5)
    with pytest.raises(ValueError, match=r"entities must be a non-empty"):
        rewards.evaluate_answers(model, world, [])
    with pytest.raises(ValueError, match=r"entities must be integer indices in 0..59"):
        rewards.evaluate_answers(model, world, [0, 60])
    with pytest.raises(TypeError, match=r"world must be a FactWorld"):
        rewards.evaluate_answers(model, "world", [0])
    with pytest.raises(ValueError, match=r"n_queries must be an integer >= 1"):
        rewards.run_c12(world, model, TINY_RL, seed=0, n_queries=0)
    with pytest.raises(ValueError, match=r"labels must be 2 integer classes"):
        rewards.reliability_table(np.full((2, 2), 0.5), [0, 2])


# --- the supplementary benchmark grader (not part of claim C12) -----------------------------


def test_benchmark_grading_never_credits_unknown():
    outcomes = np.array(["right", "right", "unknown", "wrong"])
    said = np.array([False, True, True, False])  # the second is "unknown" for an unknown fact
    np.testing.assert_array_equal(rewards.grade(outcomes), [1, 1, 0, 0])
    np.testing.assert_array_equal(rewards.grade(outcomes, None, said), [1, 0, 0, 0])
    np.testing.assert_array_equal(rewards.grade(outcomes, 0.75, said), [1, 0, 0, -3])
    np.testing.assert_array_equal(rewards.grade(outcomes, None, np.zeros(4, bool)),
                                  rewards.grade(outcomes))
    assert rewards.BENCHMARK not in rewards.GRADERS  # supplementary, not one of C12's graders
    with pytest.raises(ValueError, match=r"said_unknown must be booleans of shape \(4,\)"):
        rewards.grade(outcomes, None, np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"said_unknown must be booleans"):
        rewards.grade(outcomes, None, np.zeros(4))


def test_expected_benchmark_reward_and_abstention_rate(fact_model):
    world, model = fact_model
    ev = rewards.evaluate_answers(model, world, world.sample_queries(300, seed=4))
    unknown = world.n_values
    right = ev.probs[np.arange(300), ev.labels]
    assert ev.expected_reward[rewards.BENCHMARK] == pytest.approx(
        np.where(ev.labels == unknown, 0.0, right).mean())
    said = ev.probs.argmax(axis=1) == unknown
    assert ev.abstention_rate == pytest.approx(np.mean(said & (ev.labels != unknown)))
    assert ev.abstention_rate <= ev.unknown_rate


def test_benchmark_fine_tuning_pairs_with_the_binary_one(fact_model):
    world, model = fact_model
    binary, h_binary = rewards.reinforce(model, world, TINY_RL, None, seed=3)
    bench, h_bench = rewards.reinforce(model, world, TINY_RL, None, seed=3, credit_unknown=False)
    # same queries and draws: the first step samples the same answers, graded differently
    assert h_bench["unknown_share"].iloc[0] == h_binary["unknown_share"].iloc[0]
    assert h_bench["reward"].iloc[0] <= h_binary["reward"].iloc[0]
    assert not all(torch.equal(x, y) for x, y in zip(binary.state_dict().values(),
                                                     bench.state_dict().values()))
    again, _ = rewards.reinforce(model, world, TINY_RL, None, seed=3, credit_unknown=False)
    assert all(torch.equal(x, y) for x, y in zip(bench.state_dict().values(),
                                                 again.state_dict().values()))


def test_run_c12_adds_the_benchmark_grader_on_request(fact_model):
    world, model = fact_model
    plain = rewards.run_c12(world, model, TINY_RL, seed=0, n_queries=200)
    extra = rewards.run_c12(world, model, TINY_RL, seed=0, n_queries=200, benchmark=True)
    assert list(extra.after) == [*rewards.GRADERS, rewards.BENCHMARK]
    assert set(extra.history["grader"]) == {*rewards.GRADERS, rewards.BENCHMARK}
    for name in rewards.GRADERS:  # the claim's runs are unchanged by the extra one
        np.testing.assert_array_equal(extra.after[name].probs, plain.after[name].probs)
    table = rewards.confidence_table(extra)
    assert list(table["stage"]) == ["before", "after binary", "after t=0.75", "after benchmark"]
    assert {"abstention", "expected_benchmark"} <= set(table.columns)
    stats = rewards.c12_statistics(extra.before, extra.after[rewards.BENCHMARK])
    assert set(stats) == {"ece_ratio", "unknown_rate_drop"}

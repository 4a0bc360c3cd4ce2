"""Tests of bayes_at_scale.bandits: environments, policies, runs and claim C10's statistics.

Networks are tiny (one hidden layer of 16 units, a few training steps) and horizons short, so
the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale import bandits, claims, metrics
from bayes_at_scale.bandits import (ClassificationBandit, LaplaceThompson, NeuralConfig, Rounds,
                                    WheelBandit, RLHFBandit)

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY = NeuralConfig(hidden=(16,), initial_pulls=1, retrain_every=20, train_steps=10,
                    batch_size=64)


def tiny_policies() -> dict[str, bandits.Policy]:
    return {"uniform": bandits.Uniform(), "greedy": bandits.NeuralGreedy(TINY),
            "epsilon-greedy": bandits.EpsilonGreedy(TINY, epsilon=0.2),
            "TS-LA": LaplaceThompson(TINY),
            "LinTS": bandits.LinearThompson(initial_pulls=1, update_every=20)}


@pytest.fixture(scope="module")
def envs():
    return {"wheel": WheelBandit(0.95), "classification": ClassificationBandit("wine"),
            "rlhf": RLHFBandit(n_candidates=4)}


# --- the wheel, by hand -------------------------------------------------------------------


def test_wheel_centre_arm_at_the_origin():
    wheel = WheelBandit(0.95)
    means = wheel.expected_rewards([[0.0, 0.0]])
    np.testing.assert_array_equal(means, [[1.2, 1.0, 1.0, 1.0, 1.0]])


@pytest.mark.parametrize("context, arm", [
    ((0.98, 0.1), 1), ((0.1, -0.98), 2), ((-0.1, 0.99), 3), ((-0.7, -0.7), 4),
])
def test_wheel_quadrant_arm_outside_delta(context, arm):
    wheel = WheelBandit(0.95)
    means = wheel.expected_rewards([context])[0]
    expected = np.array([1.2, 1.0, 1.0, 1.0, 1.0])
    expected[arm] = 50.0
    np.testing.assert_array_equal(means, expected)
    assert wheel.quadrant_arm([context])[0] == arm


def test_wheel_inside_delta_the_centre_arm_is_optimal_in_every_quadrant():
    wheel = WheelBandit(0.95)
    x = np.array([[0.6, 0.6], [0.6, -0.6], [-0.6, 0.6], [-0.6, -0.6], [0.0, 0.95]])
    means = wheel.expected_rewards(x)
    assert (means.argmax(axis=1) == 0).all()
    np.testing.assert_array_equal(means.max(axis=1), 1.2)
    # a smaller radius puts the same contexts outside
    assert (WheelBandit(0.5).expected_rewards(x)[:4].max(axis=1) == 50).all()


def test_wheel_regret_is_exact():
    wheel = WheelBandit(0.95)
    x = np.array([[0.0, 0.0], [0.98, 0.1], [-0.7, -0.7]])
    means = wheel.expected_rewards(x)
    rounds = Rounds(x, bandits._arm_inputs(x, 5), means, means + 0.3)
    np.testing.assert_array_equal(rounds.optimal_arm, [0, 1, 4])
    np.testing.assert_array_equal(rounds.optimal_mean, [1.2, 50.0, 50.0])
    np.testing.assert_allclose(rounds.regret([0, 0, 4]), [0.0, 48.8, 0.0])
    np.testing.assert_allclose(rounds.regret([3, 1, 2]), [0.2, 0.0, 49.0])
    # the noisy rewards never enter the regret
    np.testing.assert_allclose(rounds.observe([3, 1, 2]), [1.3, 50.3, 1.3])


def test_wheel_samples():
    wheel = WheelBandit(0.5)
    rounds = wheel.sample(20_000, seed=0)
    norms = np.linalg.norm(rounds.contexts, axis=1)
    assert norms.max() <= 1
    assert abs(np.mean(norms > 0.5) - 0.75) < 0.01       # uniform in the disc: 1 - delta^2
    assert abs(np.mean(rounds.contexts[:, 0] > 0) - 0.5) < 0.02
    np.testing.assert_array_equal(rounds.means, wheel.expected_rewards(rounds.contexts))
    noise = rounds.rewards - rounds.means
    assert abs(noise.std() - 0.01) < 5e-4 and abs(noise.mean()) < 5e-4
    # inputs: the context then the one-hot arm code
    np.testing.assert_allclose(rounds.inputs[:, :, :2],
                               np.repeat(rounds.contexts[:, None], 5, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(rounds.inputs[3, :, 2:], np.eye(5))


# --- the other environments ---------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["wine", "digits"])
def test_classification_reward_is_one_exactly_for_the_true_class(dataset):
    env = ClassificationBandit(dataset)
    rounds = env.sample(300, seed=1)
    labels = rounds.info["label"]
    np.testing.assert_array_equal(labels, env.labels[rounds.info["index"]])
    n = np.arange(300)
    np.testing.assert_array_equal(rounds.rewards[n, labels], 1.0)
    off = np.ones_like(rounds.rewards, dtype=bool)
    off[n, labels] = False
    np.testing.assert_array_equal(rounds.rewards[off], 0.0)
    np.testing.assert_array_equal(rounds.means, rounds.rewards)
    np.testing.assert_array_equal(rounds.optimal_arm, labels)
    np.testing.assert_array_equal(rounds.regret(labels), 0.0)
    np.testing.assert_array_equal(rounds.regret((labels + 1) % env.n_arms), 1.0)
    # standardised features
    np.testing.assert_allclose(env.features.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(env.features.std(axis=0)[env.features.std(axis=0) > 0], 1)


def test_rlhf_bandit():
    env = RLHFBandit(n_candidates=4)
    rounds = env.sample(4000, seed=2)
    assert rounds.means.shape == (4000, 4) and env.per_arm is False
    assert ((0 < rounds.means) & (rounds.means < 1)).all()
    assert set(np.unique(rounds.rewards)) == {0.0, 1.0}
    assert abs((rounds.rewards - rounds.means).mean()) < 0.01   # Bernoulli(means)
    np.testing.assert_allclose(
        rounds.means, env.approval_probability(rounds.contexts, rounds.info["responses"]))
    assert rounds.means.std() > 0.2                             # the rater discriminates
    # the rater is fixed by rater_seed, not by the sampling seed
    other = env.sample(5, seed=3)
    np.testing.assert_allclose(RLHFBandit(n_candidates=4).approval_probability(
        other.contexts, other.info["responses"]), other.means)
    assert not np.allclose(RLHFBandit(n_candidates=4, rater_seed=1).approval_probability(
        other.contexts, other.info["responses"]), other.means)


@pytest.mark.parametrize("name", ["wheel", "classification", "rlhf"])
def test_sampling_is_seeded(envs, name):
    env = envs[name]
    a, b, c = env.sample(50, 4), env.sample(50, 4), env.sample(50, 5)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.contexts, c.contexts)
    assert a.inputs.shape == (50, env.n_arms, env.input_dim)


# --- runs and policies --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wheel", "classification", "rlhf"])
def test_the_oracle_has_no_regret(envs, name):
    result = bandits.run(envs[name], bandits.Oracle(), 200, seed=0)
    np.testing.assert_array_equal(result.regret, 0.0)
    assert result.final_regret == 0.0
    np.testing.assert_array_equal(result.actions, result.optimal_actions)


@pytest.mark.parametrize("policy", ["uniform", "greedy", "epsilon-greedy", "TS-LA", "LinTS"])
def test_policies_are_reproducible(envs, policy):
    env = envs["classification"]
    first = bandits.run(env, tiny_policies()[policy], 60, seed=3)
    again = bandits.run(env, tiny_policies()[policy], 60, seed=3)
    other = bandits.run(env, tiny_policies()[policy], 60, seed=4)
    np.testing.assert_array_equal(first.actions, again.actions)
    np.testing.assert_array_equal(first.regret, again.regret)
    assert not np.array_equal(first.actions, other.actions)
    assert first.policy == policy and first.environment == env.name
    assert first.pulls.sum() == 60 and len(first.pulls) == env.n_arms


def test_a_policy_object_can_be_reused(envs):
    policy = LaplaceThompson(TINY)
    first = bandits.run(envs["rlhf"], policy, 50, seed=0)
    bandits.run(envs["wheel"], policy, 30, seed=1)
    np.testing.assert_array_equal(bandits.run(envs["rlhf"], policy, 50, seed=0).actions,
                                  first.actions)


def test_greedy_and_thompson_share_the_network_and_warm_up(envs):
    """Same seed: identical initial network and round-robin start; they differ only after."""
    env = envs["wheel"]
    greedy, ts = bandits.NeuralGreedy(TINY), LaplaceThompson(TINY)
    a, b = bandits.run(env, greedy, 40, 0), bandits.run(env, ts, 40, 0)
    np.testing.assert_array_equal(a.actions[:5], np.arange(5))
    np.testing.assert_array_equal(a.actions[:5], b.actions[:5])
    greedy.reset(env, 0), ts.reset(env, 0)
    for p, q in zip(greedy.net.parameters(), ts.net.parameters()):
        assert torch.equal(p, q)


def test_run_leaves_the_thread_count_alone():
    before = torch.get_num_threads()
    bandits.run(WheelBandit(), bandits.Uniform(), 10, 0, threads=1)
    assert torch.get_num_threads() == before


def test_thompson_posterior_std_shrinks_with_pulls():
    """On iris (3 arms), pulling arm 0 only: its posterior std falls, the others' barely."""
    env = ClassificationBandit("iris")
    config = NeuralConfig(hidden=(16,), initial_pulls=0, retrain_every=20, train_steps=20,
                          batch_size=64)
    ts = LaplaceThompson(config)
    ts.reset(env, 0)
    rounds = env.sample(400, seed=0)
    probe = rounds.window(300, 400).inputs[:, 0]
    step, stds, pulls = 0, [], []
    for size, arm in [(10, 0), (10, 1), (10, 2), (20, 0), (40, 0), (80, 0)]:
        window = rounds.window(step, step + size)
        actions = np.full(size, arm)
        ts.update(window, actions, window.observe(actions))
        step += size
        stds.append(ts.arm_std(probe))
        pulls.append(ts.pulls())
    stds = np.array(stds)
    np.testing.assert_array_equal(pulls[-1], [150, 10, 10])
    # before arm 2 is ever pulled its std is the largest; once pulled it falls
    assert stds[1, 2] > stds[1, :2].max()
    assert stds[2, 2] < stds[1, 2]
    # arm 0: 10, 30, 70, 150 pulls -> strictly shrinking, by a factor of more than 4
    assert np.all(np.diff(stds[2:, 0]) < 0)
    assert stds[-1, 0] < stds[2, 0] / 4
    assert stds[-1, 0] < stds[-1, 1] / 4
    table = ts.diagnostics()
    assert list(table.columns[:4]) == ["step", "arm", "pulls", "posterior_std"]
    assert len(table) == 6 * 3


def test_experiment_tables(envs):
    runs = bandits.run_experiment({"wheel": envs["wheel"], "rlhf": envs["rlhf"]},
                                  {k: v for k, v in tiny_policies().items()
                                   if k in ("greedy", "TS-LA", "LinTS")}, 45, seeds=[0, 1])
    assert len(runs) == 2 * 2 * 3
    table = bandits.cumulative_regret_table(runs)
    assert list(table.columns) == ["environment", "policy", "seed", "step", "regret",
                                   "cumulative_regret"]
    assert len(table) == 12 * 45
    last = table[table["step"] == 45].set_index(["environment", "policy", "seed"])
    for r in runs:
        assert last.loc[(r.environment, r.policy, r.seed), "cumulative_regret"] == \
            pytest.approx(r.final_regret)
    thinned = bandits.cumulative_regret_table(runs, every=10)
    assert sorted(thinned["step"].unique()) == [10, 20, 30, 40, 45]
    finals = bandits.final_regret_table(runs)
    assert len(finals) == 12 and finals["optimal_share"].between(0, 1).all()
    per_env = bandits.final_regrets(runs, "TS-LA")
    assert set(per_env) == {envs["wheel"].name, envs["rlhf"].name}
    assert all(v.shape == (2,) for v in per_env.values())
    std = bandits.posterior_std_table(runs)
    assert set(std["policy"]) == {"TS-LA", "LinTS"}
    assert (std["posterior_std"] > 0).all()
    stats = bandits.c10_statistics(per_env, bandits.final_regrets(runs, "greedy"), seed=0)
    assert set(stats) == {c.statistic for c in claims.load_claims()["C10"].conditions}


def test_recipes():
    assert set(bandits.RECIPES) == {"quick", "full"}
    quick, full = bandits.RECIPES["quick"], bandits.RECIPES["full"]
    assert quick.n_seeds >= 5 and bandits.CLAIM_DELTA in quick.deltas
    assert full.deltas == (0.5, 0.7, 0.9, 0.95, 0.99) and full.horizon > quick.horizon
    envs = bandits.environments(quick)
    assert list(envs) == ["wheel", "classification", "rlhf"]
    assert envs["wheel"].delta == 0.95
    assert list(bandits.wheel_environments(full)) == [f"wheel delta={d:g}" for d in full.deltas]
    assert set(bandits.policies(quick)) == {"uniform", "greedy", "epsilon-greedy", "TS-LA",
                                            "LinTS"}


# --- claim C10 ----------------------------------------------------------------------------


def test_c10_statistics_by_hand():
    ts = {"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0, 4.0]}
    greedy = {"a": [2.0, 4.0, 6.0], "b": [4.0, 5.0, 6.0]}
    table = bandits.c10_table(ts, greedy, seed=0).set_index("environment")
    np.testing.assert_allclose(table["regret_ratio"], [0.5, 0.8])
    np.testing.assert_allclose(table["regret_difference"], [-2.0, -1.0])
    stats = bandits.c10_statistics(ts, greedy, seed=0)
    assert stats["worst_regret_ratio"] == pytest.approx(0.8)
    highs = [metrics.bootstrap_ci(np.mean, np.array(d), seed=0)[1]
             for d in ([-1.0, -2.0, -3.0], [0.0, -1.0, -2.0])]
    assert stats["worst_ci_high_regret_difference"] == pytest.approx(max(highs))
    line = claims.verdict_line(claims.load_claims()["C10"], [stats])
    assert line.startswith("CLAIM C10: REFUTED - worst_regret_ratio = 0.80")


@pytest.mark.parametrize("ts, greedy, error, pattern", [
    ({"a": [1, 2]}, {"b": [1, 2]}, ValueError, r"cover different environments"),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, ValueError, r"a: regrets_ts and regrets_greedy must be "
                                                  r"paired"),
    ({"a": [1]}, {"a": [2]}, ValueError, r"at least two seeds"),
    ({"a": [1, 2]}, {"a": [0, 0]}, ValueError, r"greedy's mean regret is 0"),
    ({"a": [1, np.nan]}, {"a": [1, 2]}, ValueError, r"NaN"),
    ({}, {}, ValueError, r"regrets_ts is empty"),
    ([1, 2], [1, 2], TypeError, r"must map environment"),
])
def test_c10_statistics_reject(ts, greedy, error, pattern):
    with pytest.raises(error, match=pattern):
        bandits.c10_statistics(ts, greedy, seed=0)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("actions, pattern", [
    ([0, 5, 1], r"actions must be arm indices in 0..4, got values in 0..5"),
    ([0, -1, 1], r"actions must be arm indices in 0..4"),
    ([0, 1], r"actions must have shape \(3,\), got \(2,\)"),
    ([0.5, 1, 2], r"actions must be integer arm indices"),
])
def test_invalid_arms(actions, pattern):
    rounds = WheelBandit().sample(3, seed=0)
    with pytest.raises(ValueError, match=pattern):
        rounds.regret(actions)
    with pytest.raises(ValueError, match=pattern):
        rounds.observe(actions)


@pytest.mark.parametrize("contexts, pattern", [
    ([[0.9, 0.9]], r"contexts must lie in the unit disc"),
    ([[0.1, 0.2, 0.3]], r"contexts must have shape \(n, 2\), got \(1, 3\)"),
    ([0.1, 0.2], r"contexts must have shape \(n, 2\)"),
    ([[np.nan, 0.0]], r"contexts contain NaN"),
])
def test_invalid_contexts(contexts, pattern):
    with pytest.raises(ValueError, match=pattern):
        WheelBandit().expected_rewards(contexts)


@pytest.mark.parametrize("horizon", [0, -5, 2.5, True, None])
def test_invalid_horizon(horizon):
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1, got "):
        bandits.run(WheelBandit(), bandits.Uniform(), horizon, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_invalid_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got "):
        bandits.run(WheelBandit(), bandits.Uniform(), 10, seed=seed)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0"):
        WheelBandit().sample(10, seed=seed)


def test_invalid_environment_and_policy():
    with pytest.raises(TypeError, match=r"environment must be an Environment, got str"):
        bandits.run("wheel", bandits.Uniform(), 10, 0)
    with pytest.raises(TypeError, match=r"policy must be a Policy, got str"):
        bandits.run(WheelBandit(), "greedy", 10, 0)


def test_a_policy_that_plays_a_missing_arm_is_caught():
    class Broken(bandits.Policy):
        name = "broken"

        def act(self, rounds, step):
            return np.full(rounds.n_rounds, rounds.n_arms)

    with pytest.raises(ValueError, match=r"actions of policy 'broken' must be arm indices in "
                                         r"0..4"):
        bandits.run(WheelBandit(), Broken(), 10, 0)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: WheelBandit(delta=1.0), ValueError, r"delta must be a finite number in \(0, 1\)"),
    (lambda: WheelBandit(delta=0), ValueError, r"delta must be a finite number in \(0, 1\)"),
    (lambda: WheelBandit(delta="0.5"), TypeError, r"delta must be a number, got str"),
    (lambda: WheelBandit(mu_centre=60.0), ValueError, r"mu_other < mu_centre < mu_large"),
    (lambda: ClassificationBandit("mnist"), ValueError, r"unknown dataset 'mnist': expected one"),
    (lambda: RLHFBandit(n_candidates=1), ValueError, r"n_candidates must be an integer >= 2"),
    (lambda: NeuralConfig(hidden=()), ValueError, r"hidden must be a non-empty tuple"),
    (lambda: NeuralConfig(retrain_every=0), ValueError, r"retrain_every must be an integer >= 1"),
    (lambda: NeuralConfig(lr=-1.0), ValueError, r"lr must be a finite number in \(0, inf\)"),
    (lambda: bandits.EpsilonGreedy(epsilon=1.5), ValueError, r"epsilon must be a finite number "
                                                            r"in \[0, 1\]"),
    (lambda: LaplaceThompson(posterior="bogus"), ValueError, r"unknown reward posterior flavour "
                                                            r"'bogus'"),
    (lambda: bandits.NeuralGreedy({"hidden": (4,)}), TypeError, r"config must be a NeuralConfig"),
    (lambda: bandits.LinearThompson(lambda_prior=0), ValueError, r"lambda_prior must be"),
])
def test_invalid_settings(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_invalid_tables():
    with pytest.raises(ValueError, match=r"no runs given"):
        bandits.cumulative_regret_table([])
    with pytest.raises(TypeError, match=r"runs must be BanditRun objects, got dict"):
        bandits.final_regret_table([{}])
    runs = [bandits.run(WheelBandit(), bandits.Uniform(), 10, 0)]
    with pytest.raises(ValueError, match=r"every must be an integer >= 1"):
        bandits.cumulative_regret_table(runs, every=0)
    with pytest.raises(ValueError, match=r"no run has posterior diagnostics"):
        bandits.posterior_std_table(runs)
    with pytest.raises(ValueError, match=r"no run of policy 'TS-LA'"):
        bandits.final_regrets(runs, "TS-LA")

"""Tests of bayes_at_scale.core.policies: the bandit policies' schedules, choices and posteriors,
driven window by window on small environments (networks of 16 units, a few training steps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale.core import policies
from bayes_at_scale.core.bayesian_linear import NormalInverseGamma
from bayes_at_scale.core.policies import (EpsilonGreedy, LaplaceThompson, LinearThompson,
                                          NeuralConfig, NeuralGreedy, NeuralLinearThompson)
from bayes_at_scale.worlds.bandits import ClassificationBandit, RLHFBandit, WheelBandit

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY = NeuralConfig(hidden=(16,), initial_pulls=1, retrain_every=20, train_steps=10,
                    batch_size=64)


def play(policy, env, horizon: int, seed: int = 0) -> np.ndarray:
    """Drive ``policy`` window by window, as the experiment's ``run`` does; return its actions."""
    rounds = env.sample(horizon, seed)
    policy.reset(env, seed)
    actions, step = [], 0
    while step < horizon:
        window = rounds.window(step, step + policy.window(step, horizon))
        chosen = np.asarray(policy.act(window, step))
        policy.update(window, chosen, window.observe(chosen))
        actions.append(chosen)
        step += window.n_rounds
    return np.concatenate(actions)


def test_uniform_and_oracle():
    env = WheelBandit()
    rounds = env.sample(3000, seed=0)
    uniform, oracle = policies.Uniform(), policies.Oracle()
    uniform.reset(env, 0), oracle.reset(env, 0)
    assert uniform.window(0, 3000) == 3000
    counts = np.bincount(uniform.act(rounds, 0), minlength=5)
    assert counts.min() > 500                                  # about 600 each
    np.testing.assert_array_equal(oracle.act(rounds, 0), rounds.optimal_arm)


def test_learners_pull_round_robin_then_update_on_schedule():
    env = WheelBandit()
    lin = LinearThompson(initial_pulls=2, update_every=20)
    rounds = env.sample(100, seed=0)
    lin.reset(env, 0)
    assert lin.window(0, 100) == 10                            # two pulls of each of 5 arms
    first = rounds.window(0, 10)
    np.testing.assert_array_equal(lin.act(first, 0), np.arange(10) % 5)
    lin.update(first, np.arange(10) % 5, first.observe(np.arange(10) % 5))
    assert lin.window(10, 100) == 20 and lin.window(95, 100) == 5
    np.testing.assert_array_equal(lin.pulls(), [2, 2, 2, 2, 2])
    assert list(lin.diagnostics()["pulls"]) == [2] * 5


def test_greedy_plays_the_arm_its_network_rates_highest():
    env = ClassificationBandit("wine")
    greedy = NeuralGreedy(TINY)
    play(greedy, env, 60)
    rounds = env.sample(40, seed=9)
    np.testing.assert_array_equal(greedy.act(rounds, 60),
                                  greedy.predict(rounds.inputs).argmax(axis=1))
    assert greedy.diagnostics() is None                        # no posterior to report


def test_epsilon_greedy_explores_at_rate_epsilon():
    env = ClassificationBandit("wine")
    never, always = EpsilonGreedy(TINY, epsilon=0.0), EpsilonGreedy(TINY, epsilon=1.0)
    np.testing.assert_array_equal(play(never, env, 60, seed=1),
                                  play(NeuralGreedy(TINY), env, 60, seed=1))
    play(always, env, 60, seed=1)
    rounds = env.sample(3000, seed=2)
    differs = np.mean(always.act(rounds, 60) != always.predict(rounds.inputs).argmax(axis=1))
    assert differs == pytest.approx(2 / 3, abs=0.05)           # a random arm of 3


def test_greedy_and_thompson_start_from_the_same_network():
    env = RLHFBandit(n_candidates=4)
    greedy, ts = NeuralGreedy(TINY), LaplaceThompson(TINY)
    greedy.reset(env, 0), ts.reset(env, 0)
    for p, q in zip(greedy.net.parameters(), ts.net.parameters()):
        assert torch.equal(p, q)
    ts.reset(env, 1)
    assert not all(torch.equal(p, q) for p, q in zip(greedy.net.parameters(),
                                                     ts.net.parameters()))


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


def test_linear_thompson_is_surer_of_the_arm_it_pulled_more():
    env = ClassificationBandit("iris")
    lin = LinearThompson(initial_pulls=0, update_every=20)
    lin.reset(env, 0)
    rounds = env.sample(120, seed=0)
    actions = np.r_[np.zeros(100, int), np.ones(10, int), np.full(10, 2)]
    lin.update(rounds, actions, rounds.observe(actions))
    std = lin.diagnostics().set_index("arm")["posterior_std"]
    assert std[0] < std[1] and std[0] < std[2]


def test_neural_linear_updates_every_round_and_retrains_on_greedys_schedule():
    """After the round-robin start, one round per window; the network is retrained (and the
    regression refitted on new features) every retrain_every rounds, exactly when greedy's is,
    and in between each round's reward enters the regression in closed form."""
    env = ClassificationBandit("wine")
    ts = NeuralLinearThompson(TINY)
    warmup = TINY.initial_pulls * env.n_arms
    ts.reset(env, 2)
    assert greedy_windows(env) == [warmup, 20, 20, 20, 12]
    assert ts.window(0, 75) == warmup and ts.window(warmup, 75) == 1
    play(ts, env, 75, seed=2)
    # refits after the warm-up and every 20 rounds after it; diagnostics once per refit
    assert sorted(set(ts.diagnostics()["step"])) == [warmup, warmup + 20, warmup + 40,
                                                     warmup + 60]
    assert {"sigma_noise"} <= set(ts.diagnostics().columns)
    # 75 - (3 + 60) = 12 rounds since the last refit were absorbed one by one: the posterior
    # equals a fresh fit of the current network's features on the whole history
    fresh = NormalInverseGamma(env.n_arms, ts.posterior.dim).fit(
        ts.design(ts.inputs), ts.observed, ts.arms)
    # (float32 features of one row and of a batch differ in the last bits)
    np.testing.assert_allclose(ts.posterior.mu, fresh.mu, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ts.posterior.b, fresh.b, rtol=1e-5)
    np.testing.assert_array_equal(ts.posterior.n, np.bincount(ts.arms, minlength=env.n_arms))


def greedy_windows(env, horizon: int = 75) -> list[int]:
    """The windows greedy acts in (it retrains after each): the schedule TS-LA refits on."""
    greedy = NeuralGreedy(TINY)
    greedy.reset(env, 0)
    sizes, step = [], 0
    while step < horizon:
        sizes.append(greedy.window(step, horizon))
        step += sizes[-1]
    return sizes


def test_neural_linear_design_reads_the_network_body():
    env = RLHFBandit(n_candidates=4)
    ts = NeuralLinearThompson(TINY)
    ts.reset(env, 0)
    rounds = env.sample(5, seed=0)
    x = ts.design(rounds.inputs)
    assert x.shape == (5, 4, TINY.hidden[-1] + 1)
    np.testing.assert_array_equal(x[..., -1], 1.0)
    with torch.no_grad():
        features = ts.net.features(torch.as_tensor(rounds.inputs.reshape(20, -1))).numpy()
    np.testing.assert_allclose(x.reshape(20, -1), features, rtol=1e-6)


def test_neural_linear_thompson_explores_arms_it_is_unsure_of():
    """Sampled choices spread over arms while the posterior is wide, and its draws follow the
    posterior: the arm with the higher posterior mean wins most draws, not all."""
    env = ClassificationBandit("iris")
    ts = NeuralLinearThompson(NeuralConfig(hidden=(16,), initial_pulls=1, retrain_every=20,
                                           train_steps=10, batch_size=64))
    play(ts, env, 30, seed=0)
    rounds = env.sample(2000, seed=5)
    chosen = ts.act(rounds, 30)
    shares = np.bincount(chosen, minlength=3) / len(chosen)
    assert shares.max() < 0.99 and (shares > 0.01).sum() >= 2


def test_linear_thompson_updates_one_round_at_a_time_in_closed_form():
    env = ClassificationBandit("iris")
    lin = LinearThompson(initial_pulls=1, update_every=1, record_every=10)
    play(lin, env, 43, seed=0)
    assert lin.window(43, 100) == 1
    fresh = NormalInverseGamma(3, lin.posterior.dim).fit(lin._design(lin.inputs), lin.observed,
                                                          lin.arms)
    np.testing.assert_allclose(lin.posterior.mu, fresh.mu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lin.posterior.b, fresh.b, rtol=1e-9)
    assert sorted(set(lin.diagnostics()["step"])) == [10, 20, 30, 40]   # every 10th round


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: NeuralConfig(hidden=()), ValueError, r"hidden must be a non-empty tuple"),
    (lambda: NeuralConfig(retrain_every=0), ValueError, r"retrain_every must be an integer >= 1"),
    (lambda: NeuralConfig(lr=-1.0), ValueError, r"lr must be a finite number in \(0, inf\)"),
    (lambda: EpsilonGreedy(epsilon=1.5), ValueError, r"epsilon must be a finite number "
                                                    r"in \[0, 1\]"),
    (lambda: LaplaceThompson(posterior="bogus"), ValueError, r"unknown reward posterior flavour "
                                                            r"'bogus'"),
    (lambda: NeuralGreedy({"hidden": (4,)}), TypeError, r"config must be a NeuralConfig"),
    (lambda: LinearThompson(lambda_prior=0), ValueError, r"lambda_prior must be"),
    (lambda: LinearThompson(initial_pulls=-1), ValueError, r"initial_pulls must be an integer "
                                                           r">= 0"),
    (lambda: NeuralLinearThompson(b0=0), ValueError, r"b0 must be"),
    (lambda: NeuralLinearThompson(name=""), ValueError, r"a policy's name must be a non-empty"),
    (lambda: LaplaceThompson(name=3), ValueError, r"a policy's name must be a non-empty"),
])
def test_invalid_settings(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()

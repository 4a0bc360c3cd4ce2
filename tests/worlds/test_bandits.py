"""Tests of bayes_at_scale.worlds.bandits: the wheel, classification and RLHF-like bandits, and the
rounds they draw (exact expected rewards, seeded noise, the inputs a reward model reads)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_at_scale.worlds import bandits
from bayes_at_scale.worlds.bandits import ClassificationBandit, RLHFBandit, Rounds, WheelBandit


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
    rounds = Rounds(x, bandits.arm_inputs(x, 5), means, means + 0.3)
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


@pytest.mark.parametrize("name", ["wheel", "classification", "rlhf"])
def test_probe_inputs_put_every_arm_at_the_chosen_contexts(envs, name):
    env = envs[name]
    rounds = env.sample(30, seed=6)
    chosen = rounds.inputs[np.arange(30), np.arange(30) % env.n_arms]
    probe = env.probe_inputs(chosen)
    assert probe.shape == (30, env.n_arms, env.input_dim)
    if env.per_arm:  # each context with every arm's code: exactly the round's own inputs
        np.testing.assert_array_equal(probe, rounds.inputs)
    else:            # candidates have no identity: the chosen one, in every slot
        np.testing.assert_array_equal(probe, np.repeat(chosen[:, None], env.n_arms, axis=1))


def test_a_window_of_rounds():
    rounds = WheelBandit().sample(10, seed=0)
    part = rounds.window(3, 7)
    assert part.n_rounds == 4 and part.n_arms == 5
    np.testing.assert_array_equal(part.means, rounds.means[3:7])
    with pytest.raises(ValueError, match=r"window 7..3 is not inside 0..10"):
        rounds.window(7, 3)


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
    ([[np.nan, 0.0]], r"contexts contains NaN"),
])
def test_invalid_contexts(contexts, pattern):
    with pytest.raises(ValueError, match=pattern):
        WheelBandit().expected_rewards(contexts)


def test_invalid_rounds():
    means = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"means must have shape \(n, arms >= 2\)"):
        Rounds(np.zeros((4, 2)), np.zeros((4, 1, 5)), np.zeros((4, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"rewards \(4, 2\) and means \(4, 3\) differ"):
        Rounds(np.zeros((4, 2)), np.zeros((4, 3, 5)), means, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"info\['label'\] has 3 rows, expected 4"):
        Rounds(np.zeros((4, 2)), np.zeros((4, 3, 5)), means, means, {"label": np.zeros(3)})


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_invalid_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0"):
        WheelBandit().sample(10, seed=seed)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: WheelBandit(delta=1.0), ValueError, r"delta must be a finite number in \(0, 1\)"),
    (lambda: WheelBandit(delta=0), ValueError, r"delta must be a finite number in \(0, 1\)"),
    (lambda: WheelBandit(delta="0.5"), TypeError, r"delta must be a number, got str"),
    (lambda: WheelBandit(mu_centre=60.0), ValueError, r"mu_other < mu_centre < mu_large"),
    (lambda: ClassificationBandit("mnist"), ValueError, r"unknown dataset 'mnist': expected one"),
    (lambda: RLHFBandit(n_candidates=1), ValueError, r"n_candidates must be an integer >= 2"),
])
def test_invalid_environments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()

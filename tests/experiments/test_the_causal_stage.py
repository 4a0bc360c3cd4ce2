"""Tests of bayes_at_scale.experiments.the_causal_stage: runs, recipes, tables and claim C10's
statistics.  (The environments are tested in tests/worlds/test_bandits.py, the policies in
tests/core/test_policies.py.)

Networks are tiny (one hidden layer of 16 units, a few training steps) and horizons short, so
the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale.book import claims
from bayes_at_scale.core import metrics, policies
from bayes_at_scale.core.policies import LaplaceThompson, NeuralConfig
from bayes_at_scale.experiments import the_causal_stage
from bayes_at_scale.worlds.bandits import ClassificationBandit, RLHFBandit, WheelBandit

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY = NeuralConfig(hidden=(16,), initial_pulls=1, retrain_every=20, train_steps=10,
                    batch_size=64)


def tiny_policies() -> dict[str, policies.Policy]:
    return {"uniform": policies.Uniform(), "greedy": policies.NeuralGreedy(TINY),
            "epsilon-greedy": policies.EpsilonGreedy(TINY, epsilon=0.2),
            "TS-LA": LaplaceThompson(TINY),
            "LinTS": policies.LinearThompson(initial_pulls=1, update_every=20)}


@pytest.fixture(scope="module")
def envs():
    return {"wheel": WheelBandit(0.95), "classification": ClassificationBandit("wine"),
            "rlhf": RLHFBandit(n_candidates=4)}


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wheel", "classification", "rlhf"])
def test_the_oracle_has_no_regret(envs, name):
    result = the_causal_stage.run(envs[name], policies.Oracle(), 200, seed=0)
    np.testing.assert_array_equal(result.regret, 0.0)
    assert result.final_regret == 0.0
    np.testing.assert_array_equal(result.actions, result.optimal_actions)


@pytest.mark.parametrize("policy", ["uniform", "greedy", "epsilon-greedy", "TS-LA", "LinTS"])
def test_policies_are_reproducible(envs, policy):
    env = envs["classification"]
    first = the_causal_stage.run(env, tiny_policies()[policy], 60, seed=3)
    again = the_causal_stage.run(env, tiny_policies()[policy], 60, seed=3)
    other = the_causal_stage.run(env, tiny_policies()[policy], 60, seed=4)
    np.testing.assert_array_equal(first.actions, again.actions)
    np.testing.assert_array_equal(first.regret, again.regret)
    assert not np.array_equal(first.actions, other.actions)
    assert first.policy == policy and first.environment == env.name
    assert first.pulls.sum() == 60 and len(first.pulls) == env.n_arms


def test_a_policy_object_can_be_reused(envs):
    policy = LaplaceThompson(TINY)
    first = the_causal_stage.run(envs["rlhf"], policy, 50, seed=0)
    the_causal_stage.run(envs["wheel"], policy, 30, seed=1)
    np.testing.assert_array_equal(the_causal_stage.run(envs["rlhf"], policy, 50, seed=0).actions,
                                  first.actions)


def test_greedy_and_thompson_share_the_network_and_warm_up(envs):
    """Same seed: identical initial network and round-robin start; they differ only after."""
    env = envs["wheel"]
    greedy, ts = policies.NeuralGreedy(TINY), LaplaceThompson(TINY)
    a, b = the_causal_stage.run(env, greedy, 40, 0), the_causal_stage.run(env, ts, 40, 0)
    np.testing.assert_array_equal(a.actions[:5], np.arange(5))
    np.testing.assert_array_equal(a.actions[:5], b.actions[:5])
    greedy.reset(env, 0), ts.reset(env, 0)
    for p, q in zip(greedy.net.parameters(), ts.net.parameters()):
        assert torch.equal(p, q)


def test_run_leaves_the_thread_count_alone():
    before = torch.get_num_threads()
    the_causal_stage.run(WheelBandit(), policies.Uniform(), 10, 0, threads=1)
    assert torch.get_num_threads() == before


def test_experiment_tables(envs):
    runs = the_causal_stage.run_experiment({"wheel": envs["wheel"], "rlhf": envs["rlhf"]},
                                           {k: v for k, v in tiny_policies().items()
                                            if k in ("greedy", "TS-LA", "LinTS")}, 45,
                                           seeds=[0, 1])
    assert len(runs) == 2 * 2 * 3
    table = the_causal_stage.cumulative_regret_table(runs)
    assert list(table.columns) == ["environment", "policy", "seed", "step", "regret",
                                   "cumulative_regret"]
    assert len(table) == 12 * 45
    last = table[table["step"] == 45].set_index(["environment", "policy", "seed"])
    for r in runs:
        assert last.loc[(r.environment, r.policy, r.seed), "cumulative_regret"] == \
            pytest.approx(r.final_regret)
    thinned = the_causal_stage.cumulative_regret_table(runs, every=10)
    assert sorted(thinned["step"].unique()) == [10, 20, 30, 40, 45]
    finals = the_causal_stage.final_regret_table(runs)
    assert len(finals) == 12 and finals["optimal_share"].between(0, 1).all()
    per_env = the_causal_stage.final_regrets(runs, "TS-LA")
    assert set(per_env) == {envs["wheel"].name, envs["rlhf"].name}
    assert all(v.shape == (2,) for v in per_env.values())
    std = the_causal_stage.posterior_std_table(runs)
    assert set(std["policy"]) == {"TS-LA", "LinTS"}
    assert (std["posterior_std"] > 0).all()
    stats = the_causal_stage.c10_statistics(per_env,
                                            the_causal_stage.final_regrets(runs, "greedy"),
                                            seed=0)
    assert set(stats) == {c.statistic for c in claims.load_claims()["C10"].conditions}


def test_recipe_by_scale():
    assert set(the_causal_stage.RECIPES) == {"quick", "full"}
    quick, full = the_causal_stage.recipe("quick"), the_causal_stage.recipe("full")
    assert quick is the_causal_stage.RECIPES["quick"]
    assert quick.n_seeds >= 5 and the_causal_stage.CLAIM_DELTA in quick.deltas
    assert full.deltas == (0.5, 0.7, 0.9, 0.95, 0.99) and full.horizon > quick.horizon
    envs = the_causal_stage.environments(quick)
    assert list(envs) == ["wheel", "classification", "rlhf"]
    assert envs["wheel"].delta == 0.95
    assert set(the_causal_stage.policies(quick)) == {"uniform", "greedy", "epsilon-greedy",
                                                     "TS-LA", "LinTS"}
    with pytest.raises(ValueError, match=r"unknown scale 'huge': expected one of"):
        the_causal_stage.recipe("huge")


# --- claim C10 ----------------------------------------------------------------------------


def test_c10_statistics_by_hand():
    ts = {"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0, 4.0]}
    greedy = {"a": [2.0, 4.0, 6.0], "b": [4.0, 5.0, 6.0]}
    table = the_causal_stage.c10_table(ts, greedy, seed=0).set_index("environment")
    np.testing.assert_allclose(table["regret_ratio"], [0.5, 0.8])
    np.testing.assert_allclose(table["regret_difference"], [-2.0, -1.0])
    stats = the_causal_stage.c10_statistics(ts, greedy, seed=0)
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
        the_causal_stage.c10_statistics(ts, greedy, seed=0)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [0, -5, 2.5, True, None])
def test_invalid_horizon(horizon):
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1, got "):
        the_causal_stage.run(WheelBandit(), policies.Uniform(), horizon, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_invalid_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got "):
        the_causal_stage.run(WheelBandit(), policies.Uniform(), 10, seed=seed)


def test_invalid_environment_policy_and_threads():
    with pytest.raises(TypeError, match=r"environment must be an Environment, got str"):
        the_causal_stage.run("wheel", policies.Uniform(), 10, 0)
    with pytest.raises(TypeError, match=r"policy must be a Policy, got str"):
        the_causal_stage.run(WheelBandit(), "greedy", 10, 0)
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1, got 0"):
        the_causal_stage.run(WheelBandit(), policies.Uniform(), 10, 0, threads=0)


def test_a_policy_that_plays_a_missing_arm_is_caught():
    class Broken(policies.Policy):
        name = "broken"

        def act(self, rounds, step):
            return np.full(rounds.n_rounds, rounds.n_arms)

    with pytest.raises(ValueError, match=r"actions of policy 'broken' must be arm indices in "
                                         r"0..4"):
        the_causal_stage.run(WheelBandit(), Broken(), 10, 0)


def test_invalid_tables():
    with pytest.raises(ValueError, match=r"no runs given"):
        the_causal_stage.cumulative_regret_table([])
    with pytest.raises(TypeError, match=r"expected BanditRun objects, got dict"):
        the_causal_stage.final_regret_table([{}])
    runs = [the_causal_stage.run(WheelBandit(), policies.Uniform(), 10, 0)]
    with pytest.raises(ValueError, match=r"every must be an integer >= 1"):
        the_causal_stage.cumulative_regret_table(runs, every=0)
    with pytest.raises(ValueError, match=r"no run has posterior diagnostics"):
        the_causal_stage.posterior_std_table(runs)
    with pytest.raises(ValueError, match=r"no run of policy 'TS-LA'"):
        the_causal_stage.final_regrets(runs, "TS-LA")

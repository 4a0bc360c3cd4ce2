"""Tests of bayes_at_scale.experiments.the_causal_stage: runs, recipes, tables and claim C10's
statistics.  (The environments are tested in tests/worlds/test_bandits.py, the policies in
tests/core/test_policies.py.)

Networks are tiny (one hidden layer of 16 units, a few training steps) and horizons short, so
the file runs in seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
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


def _regret_run(environment: str, policy: str, seed: int, regret) -> \
        the_causal_stage.BanditRun:
    """A made-up run with the given regret per round."""
    regret = np.asarray(regret, dtype=float)
    actions = np.zeros(regret.size, dtype=np.int64)
    zeros = np.zeros(regret.size)
    return the_causal_stage.BanditRun(environment, policy, seed, actions,
                                      actions.copy(), zeros, zeros.copy(), regret, 2,
                                      0.0)


def test_regret_ratio_table_by_hand():
    # greedy pays 1 a round on seed 0 and 2 on seed 1; TS 0 then 1 a round; uniform 3
    runs = [_regret_run("a", "greedy", 0, [1, 1, 1, 1]),
            _regret_run("a", "greedy", 1, [2, 2, 2, 2]),
            _regret_run("a", "TS", 0, [0, 0, 1, 1]),
            _regret_run("a", "TS", 1, [0, 0, 1, 1]),
            _regret_run("a", "uniform", 0, [3, 3, 3, 3]),
            _regret_run("a", "uniform", 1, [3, 3, 3, 3]),
            _regret_run("b", "greedy", 0, [0, 1, 1, 1]),
            _regret_run("b", "greedy", 1, [0, 1, 1, 1]),
            _regret_run("b", "TS", 0, [0, 1, 1, 2]),
            _regret_run("b", "TS", 1, [0, 1, 1, 2])]
    table = the_causal_stage.regret_ratio_table(runs, "greedy", seed=0, every=2)
    assert list(table.columns) == ["environment", "policy", "step", "seeds", "ratio",
                                   "ratio_low", "ratio_high"]
    got = {(r.environment, r.policy, r.step): r.ratio for r in table.itertuples()}
    # rounds 2 and 4 (every 2nd and the last): the ratio of the seeds' mean regrets
    assert got == pytest.approx({("a", "TS", 2): 0 / 3, ("a", "TS", 4): 2 / 6,
                                 ("a", "uniform", 2): 6 / 3,
                                 ("a", "uniform", 4): 12 / 6,
                                 ("b", "TS", 2): 1.0, ("b", "TS", 4): 4 / 3})
    assert (table["seeds"] == 2).all() and "greedy" not in set(table["policy"])
    assert (table["ratio_low"] <= table["ratio"] + 1e-12).all()
    assert (table["ratio"] <= table["ratio_high"] + 1e-12).all()
    # at the last round it is C10's ratio of mean final regrets
    final = the_causal_stage.c10_table(the_causal_stage.final_regrets(runs, "TS"),
                                       the_causal_stage.final_regrets(runs, "greedy"),
                                       seed=0).set_index("environment")["regret_ratio"]
    last = table[(table["policy"] == "TS") & (table["step"] == 4)]
    last = last.set_index("environment")
    np.testing.assert_allclose(last["ratio"], final[last.index])
    # no ratio while greedy's regret is zero (b's first round)
    every_round = the_causal_stage.regret_ratio_table(runs, "greedy", seed=0, every=1)
    b_ts = every_round[(every_round["environment"] == "b")
                       & (every_round["policy"] == "TS")]
    assert list(b_ts["step"]) == [2, 3, 4]
    with pytest.raises(ValueError, match=r"no run of the baseline policy 'LinTS'"):
        the_causal_stage.regret_ratio_table(runs, "LinTS", seed=0)


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


# --- round 2: Riquelme et al.'s protocol (C25, C26) -----------------------------------------


def _run(environment: str, policy: str, seed: int, regret: float, rare=None) -> \
        the_causal_stage.BanditRun:
    """A made-up run whose final regret is ``regret`` (spread over 4 rounds)."""
    actions = np.zeros(4, dtype=np.int64)
    return the_causal_stage.BanditRun(environment, policy, seed, actions, actions.copy(),
                                      np.zeros(4), np.zeros(4), np.full(4, regret / 4), 5, 0.0,
                                      rare=rare)


def test_protocol_recipe_follows_the_registered_protocol():
    quick, full = (the_causal_stage.protocol_recipe(s) for s in ("quick", "full"))
    for r in (quick, full):
        assert r.horizon == 2000 and r.n_seeds >= 10
        assert r.network.retrain_every == 50
        assert r.deltas == (0.5, 0.7, 0.9, 0.95, 0.99)
    assert full.network == NeuralConfig() and full.ablation_environments == \
        the_causal_stage.ENVIRONMENTS
    sigma = quick.noise_at_prior_mean
    assert sigma ** 2 == pytest.approx(quick.b0 / (quick.a0 - 1))
    fixed = the_causal_stage.ablation_policies(quick)
    assert len(fixed) == 2 and all(isinstance(p, LaplaceThompson) for p in fixed.values())
    assert set(the_causal_stage.protocol_policies(quick)) == {"uniform", "greedy", "TS-LA",
                                                               "LinTS"}


@pytest.mark.parametrize("change, pattern", [
    (dict(sweep_seeds=11), r"sweep_seeds and ablation_seeds must lie in 1..n_seeds"),
    (dict(ablation_environments=("moon",)), r"unknown ablation environment"),
    (dict(deltas=(0.5, 0.9)), r"must include the claim's delta 0.95"),
    (dict(deltas=(0.95, 1.5)), r"delta must be"),
    (dict(n_seeds=1), r"n_seeds must be an integer >= 2"),
])
def test_protocol_recipe_rejects(change, pattern):
    from dataclasses import replace
    with pytest.raises(ValueError, match=pattern):
        replace(the_causal_stage.protocol_recipe("quick"), **change)


def test_c25_and_c26_statistics_by_hand():
    recipe = the_causal_stage.protocol_recipe("quick")
    envs = the_causal_stage.protocol_environments(recipe)
    ts = {"wheel": [10, 20, 30], "classification": [50, 60, 70], "rlhf": [10, 10, 12]}
    greedy = {"wheel": [40, 50, 60], "classification": [50, 55, 80], "rlhf": [9, 12, 12]}
    runs = [_run(envs[k].name, policy, s, regrets[k][s]) for k in envs
            for policy, regrets in (("TS-LA", ts), ("greedy", greedy)) for s in range(3)]
    c25 = the_causal_stage.c25_statistics(runs, recipe, seed=0)
    assert set(c25) == {c.statistic for c in claims.load_claims()["C25"].conditions}
    assert c25["regret_ratio_wheel"][0] == pytest.approx(20 / 50)
    low, high = metrics.bootstrap_ci(np.mean, np.array(ts["wheel"]) - greedy["wheel"], seed=0)
    assert c25["ci_high_difference_wheel"] == pytest.approx(high)
    assert c25["regret_ratio_classification"][0] == pytest.approx(60 / 185 * 3)
    assert c25["seeds"] == 3 and c25["horizon"] == 2000
    c26 = the_causal_stage.c26_statistics(runs, recipe, seed=0)
    assert set(c26) == {c.statistic for c in claims.load_claims()["C26"].conditions}
    assert c26["regret_ratio_greedy_to_ts"][0] == pytest.approx(33 / 32)
    diff = np.array(greedy["rlhf"]) - 1.1 * np.array(ts["rlhf"])
    assert c26["ci_high_greedy_minus_1p1_ts"] == pytest.approx(
        metrics.bootstrap_ci(np.mean, diff, seed=0)[1])
    ratio = c25["regret_ratio_wheel"]
    assert ratio[1] <= ratio[0] <= ratio[2]
    table = the_causal_stage.protocol_table(runs, recipe, seed=0)
    assert list(table["ratio"]) == pytest.approx([0.4, 60 / 185 * 3, 32 / 33])


def test_paired_regrets_use_the_shared_seeds_only():
    runs = [_run("e", "a", s, s) for s in (0, 1, 2)] + [_run("e", "b", s, 1) for s in (1, 2)]
    a, b = the_causal_stage.paired_regrets(runs, "e", "a", "b")
    np.testing.assert_allclose(a, [1, 2]) and np.testing.assert_allclose(b, [1, 1])
    with pytest.raises(ValueError, match=r"no run of policy 'c' on 'e'"):
        the_causal_stage.paired_regrets(runs, "e", "c", "b")
    with pytest.raises(ValueError, match=r"share 1 seed\(s\)"):
        the_causal_stage.paired_regrets(runs[:2] + runs[3:4], "e", "a", "b")
    with pytest.raises(ValueError, match=r"baseline|'b''s mean regret is 0"):
        the_causal_stage.regret_ratio([_run("e", "a", s, 1) for s in (0, 1)]
                                      + [_run("e", "b", s, 0) for s in (0, 1)], "e", "a", "b", 0)


def test_wheel_sweep_is_relative_to_uniform_play():
    runs = [_run("wheel delta=0.5", p, s, r) for s in (0, 1)
            for p, r in (("uniform", 100 + s), ("greedy", 50 + s), ("TS-LA", 20))]
    runs.append(_run("wheel delta=0.5", "greedy", 2, 999))   # a seed uniform lacks: left out
    table = the_causal_stage.wheel_sweep_table(runs).set_index("policy")
    assert table.loc["uniform", "relative_to_uniform"] == 100
    assert table.loc["greedy", "relative_to_uniform"] == pytest.approx(100 * 50.5 / 100.5)
    assert table.loc["TS-LA", "seeds"] == 2 and table.loc["TS-LA", "delta"] == 0.5
    with pytest.raises(ValueError, match=r"no uniform run to normalise by"):
        the_causal_stage.wheel_sweep_table([_run("wheel delta=0.5", "greedy", 0, 1)])


def test_rare_rounds_and_noise_traces(envs):
    wheel = envs["wheel"]
    rounds = wheel.sample(500, seed=0)
    rare = wheel.rare_rounds(rounds)
    np.testing.assert_array_equal(rare, rounds.optimal_arm != 0)   # the rim pays arms 1-4
    assert envs["classification"].rare_rounds(rounds) is None
    oracle = the_causal_stage.run(wheel, policies.Oracle(), 300, seed=0)
    share = the_causal_stage.rare_optimal_share_table([oracle])
    assert share["optimal_share"].item() == 1.0 and share["rare_rounds"].item() == \
        oracle.rare.sum() > 0
    ts = the_causal_stage.run(wheel, policies.NeuralLinearThompson(TINY), 60, seed=0)
    trace = the_causal_stage.noise_trace_table([ts, oracle])
    assert set(trace["policy"]) == {"TS-LA"} and (trace["sigma_noise"] > 0).all()
    with pytest.raises(ValueError, match=r"no run records a noise level"):
        the_causal_stage.noise_trace_table([oracle])
    with pytest.raises(ValueError, match=r"no run has rare rounds"):
        the_causal_stage.rare_optimal_share_table(
            [the_causal_stage.run(envs["rlhf"], policies.Uniform(), 20, seed=0)])


def test_run_protocol_plays_every_block():
    from dataclasses import replace
    recipe = replace(the_causal_stage.protocol_recipe("quick"), horizon=40, n_seeds=2,
                     sweep_seeds=1, ablation_seeds=1, network=TINY,
                     ablation_environments=("wheel",))
    runs = the_causal_stage.run_protocol(recipe, [0, 1], workers=1)
    # 3 environments x 2 seeds x 4 policies, 1 x 1 x 2 ablations, 4 deltas x 1 x 3 policies
    assert len(runs) == 24 + 2 + 12
    assert {r.environment for r in runs if r.policy.startswith("TS-LA refit")} == \
        {"wheel delta=0.95"}
    with pytest.raises(ValueError, match=r"needs 2 seeds, got 1"):
        the_causal_stage.run_protocol(recipe, [0])
    # the summary the full recipe is recorded as: JSON-ready, and the same sweep as the runs
    summary = the_causal_stage.protocol_summary(runs, recipe, seed=0)
    assert json.loads(json.dumps(summary)) == summary and len(summary["runs"]) == len(runs)
    assert summary["C25"]["regret_ratio_wheel"] == pytest.approx(
        list(the_causal_stage.c25_statistics(runs, recipe, seed=0)["regret_ratio_wheel"]))
    table = the_causal_stage.summary_runs(summary)
    pd.testing.assert_frame_equal(the_causal_stage.wheel_sweep_table(table),
                                  the_causal_stage.wheel_sweep_table(runs))
    rim = [r["rim_optimal_share"] for r in summary["runs"] if r["policy"] == "uniform"
           and r["environment"].startswith("wheel")]
    assert all(0 <= share <= 1 for share in rim)
    with pytest.raises(ValueError, match=r"must have 'runs'"):
        the_causal_stage.summary_runs({"C25": {}})


def test_the_full_record_is_read_with_its_checksum(tmp_path):
    from bayes_at_scale.core import measurements
    path = tmp_path / the_causal_stage.FULL_RECORD
    with pytest.raises(FileNotFoundError, match=r"run `make bandits-full`"):
        the_causal_stage.read_full_record(tmp_path)
    measurements.write_measurement(path, json.dumps({"runs": []}))
    assert the_causal_stage.read_full_record(tmp_path) == {"runs": []}
    path.write_text(json.dumps({"runs": [1]}))
    with pytest.raises(ValueError, match=r"does not match its checksum"):
        the_causal_stage.read_full_record(tmp_path)


def test_constant_arm_regret_is_the_regret_of_never_leaving_an_arm(envs):
    wheel = envs["wheel"]
    rounds = wheel.sample(400, seed=3)
    expected = np.sum(rounds.optimal_mean - rounds.means[:, 0])
    assert the_causal_stage.constant_arm_regret(wheel, 0, 400, [3]) == pytest.approx(expected)
    # on the wheel the safe arm loses only on the rim: mu_large - mu_centre there
    assert expected == pytest.approx((50 - 1.2) * wheel.rare_rounds(rounds).sum())
    with pytest.raises(ValueError, match=r"arm 5 is not one of the 5 arms"):
        the_causal_stage.constant_arm_regret(wheel, 5, 10, [0])
    with pytest.raises(ValueError, match=r"name at least one seed"):
        the_causal_stage.constant_arm_regret(wheel, 0, 10, [])


def test_statistics_side_by_side():
    table = the_causal_stage.statistics_side_by_side(
        {"quick": {"ratio": (0.5, 0.4, 0.6), "seeds": 10, "gap": -1848.71},
         "full": {"ratio": [0.25, 0.2, 0.3], "gap": 0.25}})
    assert table.loc["ratio", "quick"] == "0.500 [0.400, 0.600]"
    assert table.loc["ratio", "full"] == "0.250 [0.200, 0.300]"
    assert (table.loc["seeds", "quick"], table.loc["seeds", "full"]) == ("10", "-")
    assert (table.loc["gap", "quick"], table.loc["gap", "full"]) == ("-1,849", "0.250")
    with pytest.raises(ValueError, match=r"at least one run"):
        the_causal_stage.statistics_side_by_side({})

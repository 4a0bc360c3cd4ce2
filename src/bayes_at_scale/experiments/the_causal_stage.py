"""Chapter 5's experiment: contextual bandits, where a model acts and sees what its actions bring.

The environments (the wheel, a classification data set, an RLHF-like bandit) are in
:mod:`bayes_at_scale.worlds.bandits` and the policies (uniform, greedy, epsilon-greedy, Thompson
sampling from a last-layer Laplace posterior, linear Thompson sampling) in
:mod:`bayes_at_scale.core.policies`.  :func:`run` plays one policy on one environment for
``horizon`` rounds, window by window; :func:`run_experiment` plays every policy on every
environment for every seed, each policy seeing, seed by seed, the same contexts and the same
reward noise (common random numbers), so policies are compared pairwise.  The tables and claim
C10's statistics compare Thompson sampling with greedy on the same network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..core import metrics
from ..core.checks import check_actions, check_instance, check_int, check_items, check_threads
from ..core.policies import (EpsilonGreedy, LaplaceThompson, LinearThompson, NeuralConfig,
                             NeuralGreedy, Policy, Uniform)
from ..core.runner import run_tasks
from ..core.settings import at_scale, torch_threads
from ..worlds.bandits import ClassificationBandit, Environment, RLHFBandit, WheelBandit


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditRun:
    """One policy played on one environment for ``horizon`` rounds with one seed."""

    environment: str
    policy: str
    seed: int
    actions: np.ndarray
    optimal_actions: np.ndarray
    rewards: np.ndarray           # the noisy rewards observed
    expected_rewards: np.ndarray  # the expected reward of each chosen arm
    regret: np.ndarray            # per round, exact
    n_arms: int
    seconds: float
    diagnostics: pd.DataFrame | None = None

    @property
    def cumulative_regret(self) -> np.ndarray:
        return np.cumsum(self.regret)

    @property
    def final_regret(self) -> float:
        return float(self.regret.sum())

    @property
    def pulls(self) -> np.ndarray:
        """How often each arm was played."""
        return np.bincount(self.actions, minlength=self.n_arms)


def run(environment: Environment, policy: Policy, horizon: int, seed: int,
        threads: int | None = 1) -> BanditRun:
    """Play ``policy`` on ``environment`` for ``horizon`` rounds drawn with ``seed``.

    Torch runs on ``threads`` threads meanwhile (restored after; None leaves the setting
    alone): the networks are so small that one thread is fastest - on two busy cores, two
    threads made a quick run six times slower.  Results do not depend on it.
    """
    if not isinstance(environment, Environment):
        raise TypeError(f"environment must be an Environment, got {type(environment).__name__}")
    check_instance("policy", policy, Policy)
    horizon = check_int("horizon", horizon)
    seed = check_int("seed", seed, 0)
    with torch_threads(check_threads(threads)):
        return _play(environment, policy, horizon, seed)


def _play(environment: Environment, policy: Policy, horizon: int, seed: int) -> BanditRun:
    start = time.perf_counter()
    rounds = environment.sample(horizon, seed)
    policy.reset(environment, seed)
    actions = np.zeros(horizon, dtype=np.int64)
    step = 0
    while step < horizon:
        size = policy.window(step, horizon)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) \
                or not 1 <= size <= horizon - step:
            raise ValueError(f"policy {policy.name!r} asked for a window of {size!r} rounds at "
                             f"step {step} of {horizon}")
        window = rounds.window(step, step + size)
        chosen = check_actions(policy.act(window, step), size, rounds.n_arms,
                               f"actions of policy {policy.name!r}")
        policy.update(window, chosen, window.observe(chosen))
        actions[step:step + size] = chosen
        step += size
    seconds = time.perf_counter() - start
    return BanditRun(environment.name, policy.name, seed, actions, rounds.optimal_arm,
                     rounds.observe(actions), rounds.expected_reward(actions),
                     rounds.regret(actions), rounds.n_arms, seconds, policy.diagnostics())


def run_experiment(environments: Mapping[str, Environment], policies: Mapping[str, Policy],
                   horizon: int, seeds, threads: int | None = 1,
                   workers: int | None = None) -> list[BanditRun]:
    """Every policy on every environment for every seed (policies are reset for each run).

    The runs go to the seed-parallel runner (:func:`~bayes_at_scale.core.runner.run_tasks`) on
    ``workers`` processes (default ``ESSAY_WORKERS``); each run gets its own copy of its
    policy, and the results come back in the order environment, seed, policy."""
    seeds = [check_int("seed", s, 0) for s in seeds]
    if not seeds or not environments or not policies:
        raise ValueError("name at least one environment, one policy and one seed")
    tasks = [(env, policy, horizon, seed, threads) for env in environments.values()
             for seed in seeds for policy in policies.values()]
    return run_tasks(run, tasks, [task[3] for task in tasks], workers=workers)


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditRecipe:
    """Horizon, seeds, wheel radii and network schedule of chapter 5 at one scale."""

    horizon: int
    n_seeds: int
    deltas: tuple[float, ...]      # wheel radii of the sweep; 0.95 is the claim's
    network: NeuralConfig
    epsilon: float = 0.05
    dataset: str = "digits"


RECIPES = {
    # quick: 3 environments x 5 policies x 5 seeds in about 30 s on two (busy) cores; half of
    # Riquelme et al.'s training steps and batch per retraining
    "quick": BanditRecipe(horizon=600, n_seeds=5, deltas=(0.95,),
                          network=NeuralConfig(train_steps=50, batch_size=256)),
    "full": BanditRecipe(horizon=2000, n_seeds=10, deltas=(0.5, 0.7, 0.9, 0.95, 0.99),
                         network=NeuralConfig()),
}
CLAIM_DELTA = 0.95


def recipe(scale: str) -> BanditRecipe:
    """The recipe of ``scale`` (``"quick"`` or ``"full"``)."""
    return at_scale(RECIPES, scale)


def environments(recipe: BanditRecipe, delta: float = CLAIM_DELTA) -> dict[str, Environment]:
    """The three environments of claim C10: ``wheel``, ``classification`` and ``rlhf``."""
    return {"wheel": WheelBandit(delta), "classification": ClassificationBandit(recipe.dataset),
            "rlhf": RLHFBandit()}


def policies(recipe: BanditRecipe) -> dict[str, Policy]:
    """Every policy of the chapter, keyed by name, with the recipe's network and schedule."""
    net = recipe.network
    made = [Uniform(), NeuralGreedy(net), EpsilonGreedy(net, recipe.epsilon),
            LaplaceThompson(net), LinearThompson(initial_pulls=net.initial_pulls,
                                                 update_every=net.retrain_every)]
    return {p.name: p for p in made}


# --- tables and the claim -------------------------------------------------------------------


def cumulative_regret_table(runs, every: int = 1) -> pd.DataFrame:
    """Tidy table for seaborn: one row per (run, round), every ``every``-th round and the last.

    Columns: environment, policy, seed, step (1-based), regret, cumulative_regret.
    """
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    every = check_int("every", every)
    frames = []
    for r in runs:
        steps = np.arange(1, len(r.regret) + 1)
        keep = (steps % every == 0) | (steps == len(steps))
        frames.append(pd.DataFrame({
            "environment": r.environment, "policy": r.policy, "seed": r.seed,
            "step": steps[keep], "regret": r.regret[keep],
            "cumulative_regret": r.cumulative_regret[keep]}))
    return pd.concat(frames, ignore_index=True)


def final_regret_table(runs) -> pd.DataFrame:
    """One row per run: environment, policy, seed, final cumulative regret, share of optimal
    actions, seconds."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    return pd.DataFrame([{"environment": r.environment, "policy": r.policy, "seed": r.seed,
                          "final_regret": r.final_regret,
                          "optimal_share": float(np.mean(r.actions == r.optimal_actions)),
                          "seconds": r.seconds} for r in runs])


def final_regrets(runs, policy: str) -> dict[str, np.ndarray]:
    """``{environment: final regret per seed (in seed order)}`` of one policy."""
    table = final_regret_table(runs)
    table = table[table["policy"] == policy]
    if table.empty:
        raise ValueError(f"no run of policy {policy!r}")
    return {env: group.sort_values("seed")["final_regret"].to_numpy()
            for env, group in table.groupby("environment", sort=False)}


def posterior_std_table(runs) -> pd.DataFrame:
    """Per update of every posterior policy's run: each arm's pull count so far and posterior
    std of its mean reward (averaged over the recent contexts).  Columns: environment, policy,
    seed, step, arm, pulls, posterior_std (and the posterior's hyperparameters, if any)."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    frames = [r.diagnostics.assign(environment=r.environment, policy=r.policy, seed=r.seed)
              for r in runs if r.diagnostics is not None]
    if not frames:
        raise ValueError("no run has posterior diagnostics (only posterior policies record them)")
    table = pd.concat(frames, ignore_index=True)
    first = ["environment", "policy", "seed", "step", "arm", "pulls", "posterior_std"]
    return table[first + [c for c in table.columns if c not in first]]


def _paired_regrets(regrets_ts, regrets_greedy) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(regrets_ts, Mapping) or not isinstance(regrets_greedy, Mapping):
        raise TypeError("regrets_ts and regrets_greedy must map environment -> final regrets "
                        "per seed")
    if set(regrets_ts) != set(regrets_greedy):
        raise ValueError(f"regrets_ts and regrets_greedy cover different environments: "
                         f"{sorted(regrets_ts)} vs {sorted(regrets_greedy)}")
    if not regrets_ts:
        raise ValueError("regrets_ts is empty: no environment to compare on")
    pairs = {}
    for env in regrets_ts:
        ts = np.asarray(regrets_ts[env], dtype=float)
        greedy = np.asarray(regrets_greedy[env], dtype=float)
        if ts.ndim != 1 or ts.shape != greedy.shape:
            raise ValueError(f"{env}: regrets_ts and regrets_greedy must be paired 1-d arrays "
                             f"(one final regret per seed), got {ts.shape} and {greedy.shape}")
        if ts.size < 2:
            raise ValueError(f"{env}: a paired interval needs at least two seeds")
        if not (np.isfinite(ts).all() and np.isfinite(greedy).all()):
            raise ValueError(f"{env}: regrets contain NaN or infinite values")
        if greedy.mean() <= 0:
            raise ValueError(f"{env}: greedy's mean regret is {greedy.mean():g}; the ratio "
                             f"needs it positive")
        pairs[env] = (ts, greedy)
    return pairs


def c10_table(regrets_ts, regrets_greedy, seed: int) -> pd.DataFrame:
    """Per environment: mean final regret of TS and of greedy, their ratio, and the mean paired
    difference (TS - greedy) over seeds with its percentile-bootstrap 95% interval."""
    rows = []
    for env, (ts, greedy) in _paired_regrets(regrets_ts, regrets_greedy).items():
        diff = ts - greedy
        low, high = metrics.bootstrap_ci(np.mean, diff, seed=seed)
        rows.append({"environment": env, "seeds": ts.size, "regret_ts": ts.mean(),
                     "regret_greedy": greedy.mean(), "regret_ratio": ts.mean() / greedy.mean(),
                     "regret_difference": diff.mean(), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def c10_statistics(regrets_ts, regrets_greedy, seed: int) -> dict:
    """Claim C10's statistics over the environments: the worst (largest) ratio of mean final
    regret TS / greedy, and the worst (largest) upper end of the paired 95% CI of TS - greedy.

    ``regrets_ts`` and ``regrets_greedy`` map each environment to the final cumulative regret of
    every seed, in the same seed order (e.g. :func:`final_regrets`).
    """
    table = c10_table(regrets_ts, regrets_greedy, seed)
    return {"worst_regret_ratio": float(table["regret_ratio"].max()),
            "worst_ci_high_regret_difference": float(table["ci_high"].max())}

"""Chapter 5's experiment: contextual bandits, where a model acts and sees what its
actions bring.

The environments (the wheel, a classification data set, an RLHF-like bandit) are in
:mod:`bayes_at_scale.worlds.bandits` and the policies (uniform, greedy, epsilon-greedy,
Thompson sampling from a last-layer Laplace posterior, linear Thompson sampling) in
:mod:`bayes_at_scale.core.policies`.  :func:`run` plays one policy on one environment
for ``horizon`` rounds, window by window; :func:`run_experiment` plays every policy on
every environment for every seed, each policy seeing, seed by seed, the same contexts
and the same reward noise (common random numbers), so policies are compared pairwise.
The tables and claim C10's statistics compare Thompson sampling with greedy on the same
network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..core import metrics
from ..core.checks import (
    check_actions,
    check_instance,
    check_int,
    check_items,
    check_number,
    check_threads,
)
from ..core.policies import (
    EpsilonGreedy,
    LaplaceThompson,
    LinearThompson,
    NeuralConfig,
    NeuralGreedy,
    NeuralLinearThompson,
    Policy,
    Uniform,
)
from ..core.measurements import read_measurement
from ..core.runner import run_tasks
from ..core.settings import at_scale, project_root, torch_threads
from ..worlds.bandits import ClassificationBandit, Environment, RLHFBandit, WheelBandit

# --- running
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditRun:
    """One policy played on one environment for ``horizon`` rounds with one seed."""

    environment: str
    policy: str
    seed: int
    actions: np.ndarray
    optimal_actions: np.ndarray
    rewards: np.ndarray  # the noisy rewards observed
    expected_rewards: np.ndarray  # the expected reward of each chosen arm
    regret: np.ndarray  # per round, exact
    n_arms: int
    seconds: float
    diagnostics: pd.DataFrame | None = None
    # the rounds only exploration finds (the wheel's rim)
    rare: np.ndarray | None = None

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


def run(
    environment: Environment,
    policy: Policy,
    horizon: int,
    seed: int,
    threads: int | None = 1,
) -> BanditRun:
    """Play ``policy`` on ``environment`` for ``horizon`` rounds drawn with ``seed``.

    Torch runs on ``threads`` threads meanwhile (restored after; None leaves the setting
    alone): the networks are so small that one thread is fastest - on two busy cores,
    two threads made a quick run six times slower.  Results do not depend on it.
    """
    if not isinstance(environment, Environment):
        raise TypeError(
            f"environment must be an Environment, got {type(environment).__name__}"
        )
    check_instance("policy", policy, Policy)
    horizon = check_int("horizon", horizon)
    seed = check_int("seed", seed, 0)
    with torch_threads(check_threads(threads)):
        return _play(environment, policy, horizon, seed)


def _play(
    environment: Environment, policy: Policy, horizon: int, seed: int
) -> BanditRun:
    start = time.perf_counter()
    rounds = environment.sample(horizon, seed)
    policy.reset(environment, seed)
    actions = np.zeros(horizon, dtype=np.int64)
    step = 0
    while step < horizon:
        size = policy.window(step, horizon)
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or not 1 <= size <= horizon - step
        ):
            raise ValueError(
                f"policy {policy.name!r} asked for a window of {size!r} rounds at "
                f"step {step} of {horizon}"
            )
        window = rounds.window(step, step + size)
        chosen = check_actions(
            policy.act(window, step),
            size,
            rounds.n_arms,
            f"actions of policy {policy.name!r}",
        )
        policy.update(window, chosen, window.observe(chosen))
        actions[step : step + size] = chosen
        step += size
    seconds = time.perf_counter() - start
    return BanditRun(
        environment.name,
        policy.name,
        seed,
        actions,
        rounds.optimal_arm,
        rounds.observe(actions),
        rounds.expected_reward(actions),
        rounds.regret(actions),
        rounds.n_arms,
        seconds,
        policy.diagnostics(),
        environment.rare_rounds(rounds),
    )


def run_experiment(
    environments: Mapping[str, Environment],
    policies: Mapping[str, Policy],
    horizon: int,
    seeds,
    threads: int | None = 1,
    workers: int | None = None,
) -> list[BanditRun]:
    """Every policy on every environment for every seed (policies are reset for each
    run).

    The runs go to the seed-parallel runner
    (:func:`~bayes_at_scale.core.runner.run_tasks`) on ``workers`` processes (default
    ``ESSAY_WORKERS``); each run gets its own copy of its policy, and the results come
    back in the order environment, seed, policy."""
    return run_plan([(environments, policies, seeds)], horizon, threads, workers)


def run_plan(
    plan, horizon: int, threads: int | None = 1, workers: int | None = None
) -> list[BanditRun]:
    """Several blocks of :func:`run_experiment` in one pool: ``plan`` lists
    ``(environments, policies, seeds)``, each block every policy on every environment
    for every seed; the runs come back block by block, each in the order environment,
    seed, policy."""
    tasks = []
    for environments, policies, seeds in plan:
        seeds = [check_int("seed", s, 0) for s in seeds]
        if not seeds or not environments or not policies:
            raise ValueError("name at least one environment, one policy and one seed")
        tasks += [
            (env, policy, horizon, seed, threads)
            for env in environments.values()
            for seed in seeds
            for policy in policies.values()
        ]
    return run_tasks(run, tasks, [task[3] for task in tasks], workers=workers)


# --- recipes
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditRecipe:
    """Horizon, seeds, wheel radii and network schedule of chapter 5 at one scale."""

    horizon: int
    n_seeds: int
    deltas: tuple[float, ...]  # wheel radii of the sweep; 0.95 is the claim's
    network: NeuralConfig
    epsilon: float = 0.05
    dataset: str = "digits"


RECIPES = {
    # quick: 3 environments x 5 policies x 5 seeds in about 30 s on two (busy) cores;
    # half of Riquelme et al.'s training steps and batch per retraining
    "quick": BanditRecipe(
        horizon=600,
        n_seeds=5,
        deltas=(0.95,),
        network=NeuralConfig(train_steps=50, batch_size=256),
    ),
    "full": BanditRecipe(
        horizon=2000,
        n_seeds=10,
        deltas=(0.5, 0.7, 0.9, 0.95, 0.99),
        network=NeuralConfig(),
    ),
}
CLAIM_DELTA = 0.95


def recipe(scale: str) -> BanditRecipe:
    """The recipe of ``scale`` (``"quick"`` or ``"full"``)."""
    return at_scale(RECIPES, scale)


def environments(
    recipe: BanditRecipe, delta: float = CLAIM_DELTA
) -> dict[str, Environment]:
    """The three environments of claim C10: ``wheel``, ``classification`` and
    ``rlhf``."""
    return {
        "wheel": WheelBandit(delta),
        "classification": ClassificationBandit(recipe.dataset),
        "rlhf": RLHFBandit(),
    }


def policies(recipe: BanditRecipe) -> dict[str, Policy]:
    """Every policy of the chapter, keyed by name, with the recipe's network and
    schedule."""
    net = recipe.network
    made = [
        Uniform(),
        NeuralGreedy(net),
        EpsilonGreedy(net, recipe.epsilon),
        LaplaceThompson(net),
        LinearThompson(initial_pulls=net.initial_pulls, update_every=net.retrain_every),
    ]
    return {p.name: p for p in made}


# --- tables and the claim
# -------------------------------------------------------------------


def cumulative_regret_table(runs, every: int = 1) -> pd.DataFrame:
    """Tidy table for seaborn: one row per (run, round), every ``every``-th round and
    the last.

    Columns: environment, policy, seed, step (1-based), regret, cumulative_regret.
    """
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    every = check_int("every", every)
    frames = []
    for r in runs:
        steps = np.arange(1, len(r.regret) + 1)
        keep = (steps % every == 0) | (steps == len(steps))
        frames.append(
            pd.DataFrame(
                {
                    "environment": r.environment,
                    "policy": r.policy,
                    "seed": r.seed,
                    "step": steps[keep],
                    "regret": r.regret[keep],
                    "cumulative_regret": r.cumulative_regret[keep],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def regret_ratio_table(runs, baseline: str, seed: int, every: int = 50) -> pd.DataFrame:
    """Cumulative regret relative to ``baseline``'s, as it grows: per environment,
    policy (every one but ``baseline``) and every ``every``-th round (and the last), the
    mean over the seeds of the policy's cumulative regret divided by the mean of
    ``baseline``'s on the same seeds, with its paired seed-bootstrap 95% interval.  At
    the last round this is the ratio of C10.  Rounds where ``baseline``'s mean regret is
    still zero have no ratio and are left out.

    Columns: environment, policy, step, seeds, ratio, ratio_low, ratio_high.
    """
    table = cumulative_regret_table(runs, every)
    if baseline not in set(table["policy"]):
        raise ValueError(f"no run of the baseline policy {baseline!r}")
    policies = [p for p in dict.fromkeys(table["policy"]) if p != baseline]
    wide = table.pivot_table(
        index=["environment", "step", "seed"],
        columns="policy",
        values="cumulative_regret",
        sort=False,
    )
    rows = []
    for (environment, step), block in wide.groupby(level=[0, 1], sort=False):
        for policy in policies:
            pair = block[[policy, baseline]].dropna()
            x, y = pair[policy].to_numpy(), pair[baseline].to_numpy()
            if len(pair) < 2 or y.mean() <= 0:
                continue
            ratio, low, high = _mean_ratio(x, y, seed)
            rows.append(
                {
                    "environment": environment,
                    "policy": policy,
                    "step": step,
                    "seeds": len(pair),
                    "ratio": ratio,
                    "ratio_low": low,
                    "ratio_high": high,
                }
            )
    return pd.DataFrame(rows)


def _mean_ratio(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float, float]:
    """``mean(x) / mean(y)`` of paired samples, with its paired seed-bootstrap 95%
    interval: ``(ratio, low, high)``."""
    low, high = metrics.bootstrap_ci(lambda a, b: a.mean() / b.mean(), x, y, seed=seed)
    return x.mean() / y.mean(), low, high


def final_regret_table(runs) -> pd.DataFrame:
    """One row per run: environment, policy, seed, final cumulative regret, share of
    optimal actions, seconds."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    return pd.DataFrame(
        [
            {
                "environment": r.environment,
                "policy": r.policy,
                "seed": r.seed,
                "final_regret": r.final_regret,
                "optimal_share": float(np.mean(r.actions == r.optimal_actions)),
                "seconds": r.seconds,
            }
            for r in runs
        ]
    )


def final_regrets(runs, policy: str) -> dict[str, np.ndarray]:
    """``{environment: final regret per seed (in seed order)}`` of one policy."""
    table = final_regret_table(runs)
    table = table[table["policy"] == policy]
    if table.empty:
        raise ValueError(f"no run of policy {policy!r}")
    return {
        env: group.sort_values("seed")["final_regret"].to_numpy()
        for env, group in table.groupby("environment", sort=False)
    }


def constant_arm_regret(
    environment: Environment, arm: int, horizon: int, seeds
) -> float:
    """Mean final regret, over ``seeds``, of always playing ``arm`` on the rounds those
    seeds draw (the regret of a policy that never leaves it)."""
    if not isinstance(environment, Environment):
        raise TypeError(
            f"environment must be an Environment, got {type(environment).__name__}"
        )
    arm = check_int("arm", arm, 0)
    if arm >= environment.n_arms:
        raise ValueError(f"arm {arm} is not one of the {environment.n_arms} arms")
    horizon = check_int("horizon", horizon)
    seeds = [check_int("seed", s, 0) for s in seeds]
    if not seeds:
        raise ValueError("name at least one seed")
    return float(
        np.mean(
            [
                environment.sample(horizon, s).regret(np.full(horizon, arm)).sum()
                for s in seeds
            ]
        )
    )


def posterior_std_table(runs) -> pd.DataFrame:
    """Per update of every posterior policy's run: each arm's pull count so far and
    posterior std of its mean reward (averaged over the recent contexts).  Columns:
    environment, policy, seed, step, arm, pulls, posterior_std (and the posterior's
    hyperparameters, if any)."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    frames = [
        r.diagnostics.assign(environment=r.environment, policy=r.policy, seed=r.seed)
        for r in runs
        if r.diagnostics is not None
    ]
    if not frames:
        raise ValueError(
            "no run has posterior diagnostics (only posterior policies record them)"
        )
    table = pd.concat(frames, ignore_index=True)
    first = ["environment", "policy", "seed", "step", "arm", "pulls", "posterior_std"]
    return table[first + [c for c in table.columns if c not in first]]


def _paired_regrets(
    regrets_ts, regrets_greedy
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(regrets_ts, Mapping) or not isinstance(regrets_greedy, Mapping):
        raise TypeError(
            "regrets_ts and regrets_greedy must map environment -> final regrets "
            "per seed"
        )
    if set(regrets_ts) != set(regrets_greedy):
        raise ValueError(
            "regrets_ts and regrets_greedy cover different environments: "
            f"{sorted(regrets_ts)} vs {sorted(regrets_greedy)}"
        )
    if not regrets_ts:
        raise ValueError("regrets_ts is empty: no environment to compare on")
    pairs = {}
    for env in regrets_ts:
        ts = np.asarray(regrets_ts[env], dtype=float)
        greedy = np.asarray(regrets_greedy[env], dtype=float)
        if ts.ndim != 1 or ts.shape != greedy.shape:
            raise ValueError(
                f"{env}: regrets_ts and regrets_greedy must be paired 1-d arrays "
                f"(one final regret per seed), got {ts.shape} and {greedy.shape}"
            )
        if ts.size < 2:
            raise ValueError(f"{env}: a paired interval needs at least two seeds")
        if not (np.isfinite(ts).all() and np.isfinite(greedy).all()):
            raise ValueError(f"{env}: regrets contain NaN or infinite values")
        if greedy.mean() <= 0:
            raise ValueError(
                f"{env}: greedy's mean regret is {greedy.mean():g}; the ratio "
                "needs it positive"
            )
        pairs[env] = (ts, greedy)
    return pairs


def c10_table(regrets_ts, regrets_greedy, seed: int) -> pd.DataFrame:
    """Per environment: mean final regret of TS and of greedy, their ratio, and the mean
    paired difference (TS - greedy) over seeds with its percentile-bootstrap 95%
    interval."""
    rows = []
    for env, (ts, greedy) in _paired_regrets(regrets_ts, regrets_greedy).items():
        diff = ts - greedy
        low, high = metrics.bootstrap_ci(np.mean, diff, seed=seed)
        rows.append(
            {
                "environment": env,
                "seeds": ts.size,
                "regret_ts": ts.mean(),
                "regret_greedy": greedy.mean(),
                "regret_ratio": ts.mean() / greedy.mean(),
                "regret_difference": diff.mean(),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def c10_statistics(regrets_ts, regrets_greedy, seed: int) -> dict:
    """Claim C10's statistics over the environments: the worst (largest) ratio of mean
    final regret TS / greedy, and the worst (largest) upper end of the paired 95% CI of
    TS - greedy.

    ``regrets_ts`` and ``regrets_greedy`` map each environment to the final cumulative
    regret of every seed, in the same seed order (e.g. :func:`final_regrets`).
    """
    table = c10_table(regrets_ts, regrets_greedy, seed)
    return {
        "worst_regret_ratio": float(table["regret_ratio"].max()),
        "worst_ci_high_regret_difference": float(table["ci_high"].max()),
    }


# --- round 2: Riquelme et al.'s protocol (claims C25 and C26)
# --------------------------------
#
# The network is retrained every 50 rounds, as in round 1, but Thompson sampling's
# last-layer posterior is updated after every round, in closed form (NeuralLinear:
# Bayesian linear regression with a normal-inverse-gamma prior on the network's
# last-layer features), over 2,000 rounds and 10 seeds.  Round 1's policy (a Laplace
# posterior refitted every 50 rounds) is kept as an ablation, with its noise level by
# marginal likelihood (as in round 1) and fixed at the normal-inverse-gamma prior's
# mean.


@dataclass(frozen=True)
class ProtocolRecipe:
    """Claims C25 and C26 at one scale.

    Every policy of :func:`protocol_policies` plays the three environments for
    ``n_seeds`` seeds; the round-1 ablations (:func:`ablation_policies`) play
    ``ablation_environments`` for ``ablation_seeds``; the wheel sweep plays every radius
    of ``deltas`` for ``sweep_seeds`` (delta = 0.95 reuses the claim's runs).  ``a0``,
    ``b0``, ``lambda_prior``: the normal-inverse-gamma prior (Riquelme et al.'s
    defaults).
    """

    horizon: int
    n_seeds: int
    network: NeuralConfig
    sweep_seeds: int
    ablation_seeds: int
    ablation_environments: tuple[str, ...] = ("wheel", "classification")
    deltas: tuple[float, ...] = (0.5, 0.7, 0.9, 0.95, 0.99)
    a0: float = 6.0
    b0: float = 6.0
    lambda_prior: float = 0.25
    dataset: str = "digits"

    def __post_init__(self):
        check_int("horizon", self.horizon)
        check_int("n_seeds", self.n_seeds, 2)
        check_instance("network", self.network, NeuralConfig)
        if (
            not 1 <= self.sweep_seeds <= self.n_seeds
            or not 1 <= self.ablation_seeds <= self.n_seeds
        ):
            raise ValueError(
                "sweep_seeds and ablation_seeds must lie in 1..n_seeds "
                f"({self.n_seeds}), got {self.sweep_seeds} and "
                f"{self.ablation_seeds}"
            )
        unknown = set(self.ablation_environments) - set(ENVIRONMENTS)
        if unknown:
            raise ValueError(
                f"unknown ablation environment(s) {sorted(unknown)}: expected "
                f"some of {ENVIRONMENTS}"
            )
        if CLAIM_DELTA not in self.deltas:
            raise ValueError(f"the sweep must include the claim's delta {CLAIM_DELTA}")
        for delta in self.deltas:
            check_number("delta", delta, 0.0, 1.0)

    @property
    def noise_at_prior_mean(self) -> float:
        """sqrt(E[sigma^2]) under the prior InvGamma(a0, b0): the fixed-noise ablation's
        noise level (with prior precision lambda_prior / sigma^2, the same prior on
        beta)."""
        if self.a0 <= 1:
            raise ValueError("the prior mean of sigma^2 needs a0 > 1")
        return float(np.sqrt(self.b0 / (self.a0 - 1)))


ENVIRONMENTS = ("wheel", "classification", "rlhf")
PROTOCOL_RECIPES = {
    # quick: the protocol as registered (2,000 rounds, 10 seeds), with round 1's quick
    # network schedule (50 steps of batch 256 per retraining, half of Riquelme et
    # al.'s); the ablations on 3 seeds of the wheel, the wheel sweep on 1 seed (the
    # recorded full recipe has 10)
    "quick": ProtocolRecipe(
        horizon=2000,
        n_seeds=10,
        network=NeuralConfig(train_steps=50, batch_size=256),
        sweep_seeds=1,
        ablation_seeds=3,
        ablation_environments=("wheel",),
    ),
    "full": ProtocolRecipe(
        horizon=2000,
        n_seeds=10,
        network=NeuralConfig(),
        sweep_seeds=10,
        ablation_seeds=10,
        ablation_environments=ENVIRONMENTS,
    ),
}
TS_LA = NeuralLinearThompson.name  # the claims' Thompson sampler


def protocol_recipe(scale: str) -> ProtocolRecipe:
    """The round-2 recipe of ``scale`` (``"quick"`` or ``"full"``)."""
    return at_scale(PROTOCOL_RECIPES, scale)


def protocol_environments(
    recipe: ProtocolRecipe, delta: float = CLAIM_DELTA
) -> dict[str, Environment]:
    """The three environments of C25 and C26, keyed as :data:`ENVIRONMENTS`."""
    check_instance("recipe", recipe, ProtocolRecipe)
    return {
        "wheel": WheelBandit(delta),
        "classification": ClassificationBandit(recipe.dataset),
        "rlhf": RLHFBandit(),
    }


def protocol_policies(recipe: ProtocolRecipe) -> dict[str, Policy]:
    """The policies of C25 and C26: uniform, greedy, TS-LA (the closed-form last-layer
    posterior updated every round) and linear Thompson sampling, on one network
    schedule."""
    check_instance("recipe", recipe, ProtocolRecipe)
    net = recipe.network
    made = [
        Uniform(),
        NeuralGreedy(net),
        NeuralLinearThompson(net, recipe.a0, recipe.b0, recipe.lambda_prior),
        LinearThompson(
            recipe.a0,
            recipe.b0,
            recipe.lambda_prior,
            initial_pulls=net.initial_pulls,
            update_every=1,
            record_every=net.retrain_every,
        ),
    ]
    return {p.name: p for p in made}


def ablation_policies(recipe: ProtocolRecipe) -> dict[str, Policy]:
    """Round 1's Thompson sampler (a Laplace posterior refitted every ``retrain_every``
    rounds): noise level and prior precision by marginal likelihood, and fixed at the
    normal-inverse-gamma prior's mean noise (prior precision lambda_prior / sigma^2)."""
    check_instance("recipe", recipe, ProtocolRecipe)
    sigma = recipe.noise_at_prior_mean
    made = [
        LaplaceThompson(
            recipe.network,
            name=f"{TS_LA} refit/{recipe.network.retrain_every}, noise by ML",
        ),
        LaplaceThompson(
            recipe.network,
            name=f"{TS_LA} refit/{recipe.network.retrain_every}, noise fixed",
            hyper_method="fixed",
            sigma_noise=sigma,
            prior_precision=recipe.lambda_prior / sigma**2,
        ),
    ]
    return {p.name: p for p in made}


def run_protocol(
    recipe: ProtocolRecipe, seeds, threads: int | None = 1, workers: int | None = None
) -> list[BanditRun]:
    """Every run of claims C25 and C26 in one pool (:func:`run_plan`): the protocol's
    policies on the three environments for the first ``n_seeds`` of ``seeds``, the
    ablations, and the wheel sweep over ``recipe.deltas`` (every delta but the claim's,
    which the first block covers)."""
    check_instance("recipe", recipe, ProtocolRecipe)
    seeds = [check_int("seed", s, 0) for s in seeds]
    if len(seeds) < recipe.n_seeds:
        raise ValueError(f"the recipe needs {recipe.n_seeds} seeds, got {len(seeds)}")
    envs = protocol_environments(recipe)
    main = protocol_policies(recipe)
    ablation_envs = {k: envs[k] for k in recipe.ablation_environments}
    sweep = {f"wheel {d:g}": WheelBandit(d) for d in recipe.deltas if d != CLAIM_DELTA}
    sweep_policies = {k: main[k] for k in ("uniform", "greedy", TS_LA)}
    plan = [
        (envs, main, seeds[: recipe.n_seeds]),
        (ablation_envs, ablation_policies(recipe), seeds[: recipe.ablation_seeds]),
    ]
    if sweep:
        plan.append((sweep, sweep_policies, seeds[: recipe.sweep_seeds]))
    return run_plan(plan, recipe.horizon, threads, workers)


def _runs_of(runs, environment: str, policy: str) -> list[BanditRun]:
    chosen = sorted(
        (r for r in runs if r.environment == environment and r.policy == policy),
        key=lambda r: r.seed,
    )
    if not chosen:
        raise ValueError(f"no run of policy {policy!r} on {environment!r}")
    return chosen


def paired_regrets(
    runs, environment: str, policy: str, baseline: str
) -> tuple[np.ndarray, np.ndarray]:
    """Final regrets of ``policy`` and ``baseline`` on ``environment`` (an environment's
    ``name``), over the seeds both ran, in seed order."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    a = {r.seed: r.final_regret for r in _runs_of(runs, environment, policy)}
    b = {r.seed: r.final_regret for r in _runs_of(runs, environment, baseline)}
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise ValueError(
            f"{environment}: {policy!r} and {baseline!r} share {len(seeds)} "
            "seed(s); a paired interval needs at least two"
        )
    return np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])


def regret_ratio(
    runs, environment: str, policy: str, baseline: str, seed: int, factor: float = 1.0
) -> dict:
    """Mean final regret of ``policy`` over ``baseline``'s, with its paired
    seed-bootstrap 95% interval, and the mean paired difference ``policy - factor x
    baseline`` with its interval: ``{"ratio": (value, low, high), "difference": (value,
    low, high), "seeds": n}``.
    """
    factor = check_number("factor", factor, 0.0)
    x, y = paired_regrets(runs, environment, policy, baseline)
    if y.mean() <= 0:
        raise ValueError(
            f"{environment}: {baseline!r}'s mean regret is {y.mean():g}; the "
            "ratio needs it positive"
        )
    diff = x - factor * y
    return {
        "ratio": _mean_ratio(x, y, seed),
        "difference": (diff.mean(), *metrics.bootstrap_ci(np.mean, diff, seed=seed)),
        "seeds": x.size,
    }


def c25_statistics(runs, recipe: ProtocolRecipe, seed: int) -> dict:
    """Claim C25's pooled statistics: on the wheel (delta = 0.95) and the classification
    bandit, TS-LA's mean final regret over greedy's with its seed-bootstrap interval
    (``regret_ratio_<env>``) and the upper end of the paired interval of TS-LA - greedy
    (``ci_high_difference_<env>``); the seeds and the horizon."""
    check_instance("recipe", recipe, ProtocolRecipe)
    envs = protocol_environments(recipe)
    stats = {"horizon": recipe.horizon}
    for key in ("wheel", "classification"):
        r = regret_ratio(runs, envs[key].name, TS_LA, "greedy", seed)
        stats |= {
            f"regret_ratio_{key}": r["ratio"],
            f"ci_high_difference_{key}": r["difference"][2],
        }
        stats["seeds"] = min(stats.get("seeds", r["seeds"]), r["seeds"])
    return stats


def c26_statistics(runs, recipe: ProtocolRecipe, seed: int) -> dict:
    """Claim C26's pooled statistics on the RLHF-like bandit: greedy's mean final regret
    over TS-LA's with its seed-bootstrap interval, and the upper end of the paired
    interval of greedy - 1.1 x TS-LA; the seeds and the horizon."""
    check_instance("recipe", recipe, ProtocolRecipe)
    r = regret_ratio(
        runs,
        protocol_environments(recipe)["rlhf"].name,
        "greedy",
        TS_LA,
        seed,
        factor=1.1,
    )
    return {
        "seeds": r["seeds"],
        "horizon": recipe.horizon,
        "regret_ratio_greedy_to_ts": r["ratio"],
        "ci_high_greedy_minus_1p1_ts": r["difference"][2],
    }


def protocol_table(runs, recipe: ProtocolRecipe, seed: int) -> pd.DataFrame:
    """Per environment of the claims: mean final regret of greedy and TS-LA, their ratio
    with its 95% interval, and the paired difference TS-LA - greedy with its
    interval."""
    rows = []
    for key, env in protocol_environments(recipe).items():
        r = regret_ratio(runs, env.name, TS_LA, "greedy", seed)
        x, y = paired_regrets(runs, env.name, TS_LA, "greedy")
        rows.append(
            {
                "environment": env.name,
                "seeds": r["seeds"],
                "regret_ts": x.mean(),
                "regret_greedy": y.mean(),
                "ratio": r["ratio"][0],
                "ratio_low": r["ratio"][1],
                "ratio_high": r["ratio"][2],
                "difference": r["difference"][0],
                "ci_low": r["difference"][1],
                "ci_high": r["difference"][2],
            }
        )
    return pd.DataFrame(rows)


def wheel_sweep_table(runs) -> pd.DataFrame:
    """Mean final regret on the wheel per radius delta and policy, over the seeds every
    policy of that radius ran, as a percentage of uniform play's (uniform = 100); a row
    per (delta, policy) with the number of seeds.  ``runs``: bandit runs, or a recorded
    summary's table (:func:`summary_runs`)."""
    if isinstance(runs, pd.DataFrame):  # a recorded summary (summary_runs)
        table = runs[runs["environment"].str.startswith("wheel")].copy()
    else:
        runs = check_items(runs, BanditRun, "runs", accept_one=False)
        table = final_regret_table(
            [r for r in runs if r.environment.startswith("wheel")]
        )
    if table.empty:
        raise ValueError("no run on the wheel")
    table["delta"] = table["environment"].str.removeprefix("wheel delta=").astype(float)
    rows = []
    for delta, group in table.groupby("delta"):
        common = set.intersection(*(set(g["seed"]) for _, g in group.groupby("policy")))
        group = group[group["seed"].isin(common)]
        means = group.groupby("policy")["final_regret"].mean()
        if "uniform" not in means:
            raise ValueError(f"delta = {delta:g}: no uniform run to normalise by")
        for policy, value in means.items():
            rows.append(
                {
                    "delta": delta,
                    "policy": policy,
                    "seeds": len(common),
                    "regret": value,
                    "relative_to_uniform": 100 * value / means["uniform"],
                }
            )
    return pd.DataFrame(rows)


def rare_optimal_share_table(runs) -> pd.DataFrame:
    """Per run on an environment with rare rounds (the wheel): how many rounds were rare
    and the share of them in which the policy played the optimal arm."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    rows = [
        {
            "environment": r.environment,
            "policy": r.policy,
            "seed": r.seed,
            "rare_rounds": int(r.rare.sum()),
            "optimal_share": float(
                np.mean(r.actions[r.rare] == r.optimal_actions[r.rare])
            ),
        }
        for r in runs
        if r.rare is not None and r.rare.any()
    ]
    if not rows:
        raise ValueError("no run has rare rounds (only the wheel marks them)")
    return pd.DataFrame(rows)


def noise_trace_table(runs) -> pd.DataFrame:
    """The noise level (posterior mean noise std, averaged over arms) of every posterior
    policy's run at each refit: environment, policy, seed, step, sigma_noise."""
    runs = check_items(runs, BanditRun, "runs", accept_one=False)
    frames = [
        r.diagnostics.assign(environment=r.environment, policy=r.policy, seed=r.seed)
        for r in runs
        if r.diagnostics is not None and "sigma_noise" in r.diagnostics.columns
    ]
    if not frames:
        raise ValueError("no run records a noise level")
    table = pd.concat(frames, ignore_index=True)
    return table.groupby(["environment", "policy", "seed", "step"], as_index=False)[
        "sigma_noise"
    ].mean()


# --- the full recipe, recorded
# ----------------------------------------------------------------
#
# The full recipe (Riquelme et al.'s network schedule, the sweep and the ablations on 10
# seeds) takes too long to run at every build, so `make bandits-full`
# (benchmarks/bandits.py) records a summary of its runs to data/bandits/, with a
# checksum, and chapter 5 reads it.

#: Where the full recipe's summary is recorded, relative to the project's root.
FULL_RECORD = Path("data", "bandits", "protocol_full.json")
FULL_COMMAND = "make bandits-full"


def protocol_summary(runs, recipe: ProtocolRecipe, seed: int) -> dict:
    """What a protocol run leaves behind, as plain JSON-ready data: every run's final
    regret (and, on the wheel, its share of rim rounds played optimally), and C25's and
    C26's pooled statistics, each a number or ``[value, low, high]``."""
    check_instance("recipe", recipe, ProtocolRecipe)
    table = final_regret_table(runs)
    rim = {
        (r.environment, r.policy, r.seed): float(
            np.mean(r.actions[r.rare] == r.optimal_actions[r.rare])
        )
        for r in runs
        if r.rare is not None and r.rare.any()
    }
    rows = [
        {
            "environment": row.environment,
            "policy": row.policy,
            "seed": int(row.seed),
            "final_regret": float(row.final_regret),
            "rim_optimal_share": rim.get((row.environment, row.policy, row.seed)),
        }
        for row in table.itertuples(index=False)
    ]

    def plain(stats: dict) -> dict:
        return {
            k: [float(x) for x in v] if isinstance(v, tuple) else float(v)
            for k, v in stats.items()
        }

    return {
        "runs": rows,
        "C25": plain(c25_statistics(runs, recipe, seed)),
        "C26": plain(c26_statistics(runs, recipe, seed)),
    }


def summary_runs(summary: dict) -> pd.DataFrame:
    """A recorded summary's runs as a table like :func:`final_regret_table` (plus the
    rim share), to pass to :func:`wheel_sweep_table`."""
    if not isinstance(summary, Mapping) or "runs" not in summary:
        raise ValueError("a protocol summary must have 'runs' (see protocol_summary)")
    return pd.DataFrame(summary["runs"])


def read_full_record(root: Path | str | None = None) -> dict:
    """The recorded full-recipe summary (checked against its checksum; see
    :func:`bayes_at_scale.core.measurements.read_measurement`)."""
    root = Path(root) if root is not None else project_root()
    return read_measurement(root / FULL_RECORD, FULL_COMMAND)


def statistics_side_by_side(columns: Mapping[str, Mapping]) -> pd.DataFrame:
    """Claim statistics of several runs (say ``{"quick": ..., "full": ...}``), one
    column per run and one row per statistic, each as text: ``v`` or ``v [low, high]``
    (3 decimals; whole numbers and numbers of 1,000 or more without decimals)."""
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("give at least one run's statistics, keyed by its name")

    def text(value) -> str:
        if isinstance(value, (tuple, list)):
            return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"
        whole = float(value).is_integer() or abs(value) >= 1000
        return f"{value:,.0f}" if whole else f"{value:.3f}"

    names = list(dict.fromkeys(k for stats in columns.values() for k in stats))
    return pd.DataFrame(
        {
            run: [text(stats[k]) if k in stats else "-" for k in names]
            for run, stats in columns.items()
        },
        index=names,
    )

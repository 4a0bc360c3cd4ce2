"""Chapter 5's experiment: contextual bandits, where a model acts and sees what its actions bring.

Environments and policies share one functional interface.  An :class:`Environment` draws a whole
horizon of rounds at once, :meth:`Environment.sample` -> :class:`Rounds`: each round's raw
context, one input vector per arm (what a reward model reads), the *expected* reward of every arm
(so the optimal arm and the regret are exact, never estimated from noisy draws) and one noisy
reward per arm drawn in advance.  Drawing every arm's noisy reward up front gives every policy
run with the same seed the same contexts and the same noise (common random numbers), so policies
are compared pairwise, seed by seed.

A :class:`Policy` acts in *windows*: it chooses the actions of the next ``k`` rounds with what it
knows at the start of the window, then sees their rewards and updates (retrains its network,
refits its posterior).  :func:`run` plays one policy on one environment for ``horizon`` rounds.

Environments (the claim C10 names three):

* :class:`WheelBandit` - the wheel bandit of Riquelme et al. (2018) [riquelme2018deep];
* :class:`ClassificationBandit` - a labelled data set shipped with scikit-learn, one arm per
  class, reward 1 for the true class and 0 otherwise;
* :class:`RLHFBandit` - each round a prompt and ``K`` candidate responses (feature vectors); a
  hidden, fixed random preference model gives the rater's probability of approving a response,
  and the feedback is a noisy binary approval.

Policies: :class:`Uniform`, :class:`Oracle` (plays the best arm: regret 0), :class:`NeuralGreedy`,
:class:`EpsilonGreedy`, :class:`LaplaceThompson` (Thompson sampling from a last-layer Laplace
posterior of the same network, through :mod:`bayes_at_scale.posteriors`) and
:class:`LinearThompson` (Bayesian linear regression on the raw inputs, Riquelme et al.'s
``LinFullPost``).  The neural policies share one network and training schedule
(:class:`NeuralConfig`), following Riquelme et al.: one hidden layer of 50 ReLU units, two
round-robin pulls of every arm to start, then every ``retrain_every`` rounds ``train_steps``
mini-batch steps on the whole history, warm-started.  Thompson sampling refits its posterior at
the same times and draws a fresh posterior sample for every decision (as Riquelme et al. do): one
sample per refit would play the same greedy-on-a-sample policy for a whole window, exploring less
and in a correlated way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import metrics
from .posteriors import DEFAULT_REWARD_FLAVOUR, reward_flavour, reward_loader, RewardPosterior
from .settings import Settings, torch_threads


# --- checks ---------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_hidden(hidden, kinds: tuple[type, ...] = (tuple, list)) -> list[int]:
    """Hidden layer sizes: a non-empty tuple (or another of ``kinds``) of positive integers."""
    if not isinstance(hidden, kinds) or not hidden:
        raise ValueError(f"hidden must be a non-empty tuple of layer sizes, got {hidden!r}")
    return [_check_int("hidden layer size", h) for h in hidden]


def _check_number(name: str, value, low: float | None = None, high: float | None = None,
                  low_open: bool = True, high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad = bad or (value <= low if low_open else value < low)
    if high is not None:
        bad = bad or (value >= high if high_open else value > high)
    if bad:
        interval = (("(" if low_open else "[") + ("-inf" if low is None else f"{low:g}") + ", "
                    + ("inf" if high is None else f"{high:g}") + (")" if high_open else "]"))
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


def _seed_from(*keys: int) -> int:
    """A 32-bit seed derived from integers (run seed, step...), independent across keys."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def check_actions(actions, n_rounds: int, n_arms: int, name: str = "actions") -> np.ndarray:
    """``actions`` as an int array of shape ``(n_rounds,)`` with values in ``0..n_arms - 1``."""
    arr = np.asarray(actions)
    if arr.shape != (n_rounds,):
        raise ValueError(f"{name} must have shape ({n_rounds},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must be integer arm indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_arms):
        raise ValueError(f"{name} must be arm indices in 0..{n_arms - 1}, got values in "
                         f"{arr.min()}..{arr.max()}")
    return arr


# --- rounds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rounds:
    """A horizon of bandit rounds, drawn in advance.

    ``contexts`` ``(n, context_dim)``: the raw context of each round; ``inputs``
    ``(n, K, input_dim)``: the reward model's input for each (round, arm); ``means`` ``(n, K)``:
    expected rewards, exact; ``rewards`` ``(n, K)``: one noisy reward per arm (only the chosen
    arm's is ever revealed to a policy); ``info``: per-round extras (labels, responses...).
    """

    contexts: np.ndarray
    inputs: np.ndarray
    means: np.ndarray
    rewards: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        if self.means.ndim != 2 or self.means.shape[1] < 2:
            raise ValueError(f"means must have shape (n, arms >= 2), got {self.means.shape}")
        if self.rewards.shape != self.means.shape:
            raise ValueError(f"rewards {self.rewards.shape} and means {self.means.shape} differ")
        if self.inputs.ndim != 3 or self.inputs.shape[:2] != self.means.shape:
            raise ValueError(f"inputs must have shape {self.means.shape + ('input_dim',)}, got "
                             f"{self.inputs.shape}")
        if self.contexts.ndim != 2 or self.contexts.shape[0] != n:
            raise ValueError(f"contexts must have shape ({n}, context_dim), got "
                             f"{self.contexts.shape}")
        for key, value in self.info.items():
            if len(value) != n:
                raise ValueError(f"info[{key!r}] has {len(value)} rows, expected {n}")

    @property
    def n_rounds(self) -> int:
        return self.means.shape[0]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    @property
    def optimal_arm(self) -> np.ndarray:
        """The arm of highest expected reward in each round (lowest index on ties)."""
        return self.means.argmax(axis=1)

    @property
    def optimal_mean(self) -> np.ndarray:
        """The expected reward of the optimal arm in each round."""
        return self.means.max(axis=1)

    def expected_reward(self, actions) -> np.ndarray:
        """Expected reward of the chosen arm in each round."""
        a = check_actions(actions, self.n_rounds, self.n_arms)
        return self.means[np.arange(self.n_rounds), a]

    def regret(self, actions) -> np.ndarray:
        """Per-round regret, exact: expected reward of the optimal arm minus the chosen one's."""
        return self.optimal_mean - self.expected_reward(actions)

    def observe(self, actions) -> np.ndarray:
        """The noisy rewards the chosen arms return."""
        a = check_actions(actions, self.n_rounds, self.n_arms)
        return self.rewards[np.arange(self.n_rounds), a]

    def window(self, start: int, stop: int) -> "Rounds":
        """Rounds ``start..stop - 1``."""
        if not 0 <= start < stop <= self.n_rounds:
            raise ValueError(f"window {start}..{stop} is not inside 0..{self.n_rounds}")
        return Rounds(self.contexts[start:stop], self.inputs[start:stop],
                      self.means[start:stop], self.rewards[start:stop],
                      {k: v[start:stop] for k, v in self.info.items()})


def _arm_inputs(contexts: np.ndarray, n_arms: int) -> np.ndarray:
    """``(n, K, context_dim + K)``: each context followed by the one-hot code of each arm."""
    n = contexts.shape[0]
    eye = np.broadcast_to(np.eye(n_arms), (n, n_arms, n_arms))
    ctx = np.broadcast_to(contexts[:, None, :], (n, n_arms, contexts.shape[1]))
    return np.concatenate([ctx, eye], axis=2).astype(np.float32)


def _probe_inputs(env: "Environment", chosen_inputs: np.ndarray) -> np.ndarray:
    """Every arm's input ``(n, K, input_dim)`` at the contexts of already chosen inputs: with
    arm identities, each context with every arm's code; without, the chosen candidates
    themselves, the same in every slot (a slot has no identity of its own)."""
    k = env.n_arms
    if env.per_arm:
        return _arm_inputs(chosen_inputs[:, :env.context_dim], k)
    return np.broadcast_to(chosen_inputs[:, None, :], (len(chosen_inputs), k,
                                                       chosen_inputs.shape[1]))


# --- environments ---------------------------------------------------------------------------


class Environment:
    """A contextual bandit: ``n_arms`` arms, contexts of ``context_dim`` numbers, and per-arm
    inputs ``[context, arm part]`` of ``context_dim + arm_dim`` numbers.

    ``per_arm`` is True when arms have identities (the arm part is a one-hot code, and a reward
    model gets one head per arm); False when an arm is described by features (the arm part is a
    candidate's feature vector, and one shared head scores every candidate).
    """

    name: str = "environment"
    n_arms: int
    context_dim: int
    arm_dim: int
    per_arm: bool = True

    @property
    def input_dim(self) -> int:
        return self.context_dim + self.arm_dim

    def sample(self, n: int, seed: int) -> Rounds:
        """``n`` rounds drawn with ``seed``: the same seed gives the same rounds."""
        _check_int("n", n)
        _check_int("seed", seed, 0)
        return self._sample(int(n), np.random.default_rng(seed))

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class WheelBandit(Environment):
    """The wheel bandit of Riquelme et al. (2018) [riquelme2018deep], as published.

    Contexts are uniform in the unit disc of R^2; there are 5 arms.  Arm 0 (the paper's a_1, the
    "centre" arm) always pays N(mu_1, sigma^2), mu_1 = 1.2.  If ||x|| <= delta the other four
    arms pay N(mu_2, sigma^2), mu_2 = 1.0, so arm 0 is optimal.  If ||x|| > delta, the arm of
    x's quadrant pays N(mu_3, sigma^2), mu_3 = 50, and is optimal; the other three still pay
    mu_2.  sigma = 0.01.  Quadrants are numbered as in the authors' code: arm 1 for
    (x_1 > 0, x_2 > 0), arm 2 for (x_1 > 0, x_2 <= 0), arm 3 for (x_1 <= 0, x_2 > 0), arm 4 for
    (x_1 <= 0, x_2 <= 0).  The larger delta, the rarer (probability 1 - delta^2) and the more
    rewarding the contexts that only exploration can find.
    """

    n_arms = 5
    context_dim = 2
    arm_dim = 5
    per_arm = True

    def __init__(self, delta: float = 0.95, mu_centre: float = 1.2, mu_other: float = 1.0,
                 mu_large: float = 50.0, noise_std: float = 0.01):
        self.delta = _check_number("delta", delta, 0.0, 1.0)
        self.mu_centre = _check_number("mu_centre", mu_centre)
        self.mu_other = _check_number("mu_other", mu_other)
        self.mu_large = _check_number("mu_large", mu_large)
        self.noise_std = _check_number("noise_std", noise_std, 0.0, None, low_open=False)
        if not self.mu_other < self.mu_centre < self.mu_large:
            raise ValueError(f"the wheel needs mu_other < mu_centre < mu_large, got "
                             f"{self.mu_other}, {self.mu_centre}, {self.mu_large}")
        self.name = f"wheel delta={self.delta:g}"

    def _check_contexts(self, contexts) -> np.ndarray:
        x = np.asarray(contexts, dtype=float)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"contexts must have shape (n, 2), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("contexts contain NaN or infinite values")
        if (np.linalg.norm(x, axis=1) > 1 + 1e-9).any():
            raise ValueError("contexts must lie in the unit disc (norm <= 1)")
        return x

    def quadrant_arm(self, contexts) -> np.ndarray:
        """The arm (1..4) of each context's quadrant."""
        x = self._check_contexts(contexts)
        return 1 + 2 * (x[:, 0] <= 0) + (x[:, 1] <= 0)

    def expected_rewards(self, contexts) -> np.ndarray:
        """``(n, 5)`` expected reward of every arm for each context."""
        x = self._check_contexts(contexts)
        means = np.full((x.shape[0], 5), self.mu_other)
        means[:, 0] = self.mu_centre
        outside = np.linalg.norm(x, axis=1) > self.delta
        quadrant = self.quadrant_arm(x)
        means[np.flatnonzero(outside), quadrant[outside]] = self.mu_large
        return means

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        radius = np.sqrt(rng.uniform(size=n))          # uniform in the disc
        angle = rng.uniform(0, 2 * np.pi, size=n)
        x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        means = self.expected_rewards(x)
        rewards = means + self.noise_std * rng.standard_normal(means.shape)
        return Rounds(x, _arm_inputs(x, 5), means, rewards)


CLASSIFICATION_DATASETS = ("digits", "wine", "iris", "breast_cancer")


class ClassificationBandit(Environment):
    """A labelled data set that ships with scikit-learn, played as a bandit.

    Each round shows one example drawn uniformly (with replacement) from the data set; the arms
    are the classes; the reward is 1 for the example's true class and 0 otherwise, with no
    noise.  Features are standardised (zero mean, unit variance; constant features are only
    centred).  ``digits`` (8x8 images of handwritten digits, 1797 examples, 10 classes) is the
    default: a harder bandit than the 3-class tables.
    """

    per_arm = True

    def __init__(self, dataset: str = "digits"):
        if dataset not in CLASSIFICATION_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of "
                             f"{CLASSIFICATION_DATASETS}")
        from sklearn import datasets

        data = getattr(datasets, f"load_{dataset}")()
        x = np.asarray(data.data, dtype=float)
        scale = x.std(axis=0)
        self.features = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        self.labels = np.asarray(data.target, dtype=np.int64)
        self.dataset = dataset
        self.n_arms = int(self.labels.max()) + 1
        self.context_dim = self.features.shape[1]
        self.arm_dim = self.n_arms
        self.name = f"classification {dataset}"

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        index = rng.integers(0, len(self.labels), size=n)
        x, y = self.features[index], self.labels[index]
        means = np.zeros((n, self.n_arms))
        means[np.arange(n), y] = 1.0
        return Rounds(x, _arm_inputs(x, self.n_arms), means, means.copy(),
                      {"label": y, "index": index})


class RLHFBandit(Environment):
    """An RLHF-like bandit: pick one of ``n_candidates`` responses to a prompt; a rater approves.

    Each round draws a prompt feature vector p ~ N(0, I) and ``n_candidates`` response feature
    vectors r_k ~ N(0, I).  A hidden preference model - a fixed random one-hidden-layer tanh
    network g, drawn once with ``rater_seed`` and scaled so that g has standard deviation
    ``scale`` over (prompt, response) pairs - gives the rater's probability of approving response
    k, sigmoid(g(p, r_k)): the expected reward.  The feedback is one Bernoulli draw of it.  Arms
    are candidate slots without identity, so a reward model reads ``[p, r_k]`` and scores every
    candidate with one shared head (``per_arm = False``).
    """

    per_arm = False

    def __init__(self, prompt_dim: int = 8, response_dim: int = 8, n_candidates: int = 8,
                 rater_hidden: int = 32, scale: float = 2.0, rater_seed: int = 0):
        self.context_dim = _check_int("prompt_dim", prompt_dim)
        self.arm_dim = _check_int("response_dim", response_dim)
        self.n_arms = _check_int("n_candidates", n_candidates, 2)
        hidden = _check_int("rater_hidden", rater_hidden)
        self.scale = _check_number("scale", scale, 0.0)
        self.rater_seed = _check_int("rater_seed", rater_seed, 0)
        rng = np.random.default_rng(_seed_from(self.rater_seed, 7919))
        d = self.context_dim + self.arm_dim
        self._w1 = rng.standard_normal((d, hidden)) / np.sqrt(d)
        self._b1 = 0.5 * rng.standard_normal(hidden)
        self._w2 = rng.standard_normal(hidden)
        probe = rng.standard_normal((20_000, d))
        raw = np.tanh(probe @ self._w1 + self._b1) @ self._w2
        self._shift, self._norm = raw.mean(), raw.std()
        self.name = "RLHF-like"

    def preference_logit(self, prompts, responses) -> np.ndarray:
        """The hidden rater's logit g(p, r) for prompts ``(n, prompt_dim)`` and responses
        ``(n, K, response_dim)``: ``(n, K)``."""
        p = np.asarray(prompts, dtype=float)
        r = np.asarray(responses, dtype=float)
        if p.ndim != 2 or p.shape[1] != self.context_dim:
            raise ValueError(f"prompts must have shape (n, {self.context_dim}), got {p.shape}")
        if r.ndim != 3 or r.shape[0] != p.shape[0] or r.shape[2] != self.arm_dim:
            raise ValueError(f"responses must have shape ({p.shape[0]}, K, {self.arm_dim}), "
                             f"got {r.shape}")
        z = np.concatenate([np.broadcast_to(p[:, None, :], r.shape[:2] + p.shape[1:]), r], axis=2)
        raw = np.tanh(z @ self._w1 + self._b1) @ self._w2
        return self.scale * (raw - self._shift) / self._norm

    def approval_probability(self, prompts, responses) -> np.ndarray:
        """The rater's probability of approving each response: the expected reward."""
        return 1.0 / (1.0 + np.exp(-self.preference_logit(prompts, responses)))

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        p = rng.standard_normal((n, self.context_dim))
        r = rng.standard_normal((n, self.n_arms, self.arm_dim))
        means = self.approval_probability(p, r)
        rewards = (rng.uniform(size=means.shape) < means).astype(float)
        inputs = np.concatenate([np.broadcast_to(p[:, None, :], r.shape[:2] + p.shape[1:]), r],
                                axis=2).astype(np.float32)
        return Rounds(p, inputs, means, rewards, {"responses": r})


# --- the reward network ---------------------------------------------------------------------


class RewardNet(nn.Module):
    """An MLP reward model ``f(z)`` of an input ``z = [context, arm part]``; returns ``(B, 1)``.

    The body (ReLU layers of sizes ``hidden``) reads the context alone when ``per_arm`` (arms
    with identities: one linear head per arm, as in Riquelme et al.'s multi-output networks), or
    the whole input otherwise (one shared head scores any candidate).  The last layer ``head`` is
    one ``nn.Linear`` with one output and no bias, over the body's features with a constant 1
    appended (per arm: the outer product of those features with the one-hot arm code) - so a
    last-layer Laplace posterior over ``head`` is Bayesian linear regression on the features,
    per arm, and its KFAC Hessian is exact.
    """

    def __init__(self, context_dim: int, arm_dim: int, hidden: tuple[int, ...] = (50,),
                 per_arm: bool = True):
        super().__init__()
        self.context_dim = _check_int("context_dim", context_dim)
        self.arm_dim = _check_int("arm_dim", arm_dim)
        sizes = _check_hidden(hidden)
        self.per_arm = bool(per_arm)
        layers, width = [], context_dim if self.per_arm else context_dim + arm_dim
        for h in sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.n_features = (width + 1) * (arm_dim if self.per_arm else 1)
        self.head = nn.Linear(self.n_features, 1, bias=False)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """What the head reads: ``(B, n_features)``."""
        x = z[:, :self.context_dim] if self.per_arm else z
        phi = self.body(x)
        phi = torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)
        if self.per_arm:
            arm = z[:, self.context_dim:]
            phi = (arm[:, :, None] * phi[:, None, :]).flatten(1)
        return phi

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(z))


# --- policies -------------------------------------------------------------------------------


class Policy:
    """A bandit policy.  :func:`run` calls ``reset`` once, then repeatedly ``window`` (how many
    rounds to act before the next update), ``act`` on those rounds (reading their ``inputs``
    only - the oracle alone reads ``means``) and ``update`` with the rewards it saw."""

    name = "policy"

    def reset(self, env: Environment, seed: int) -> None:
        self.env, self.seed = env, seed
        self.rng = np.random.default_rng(_seed_from(seed, 1))

    def window(self, step: int, horizon: int) -> int:
        return horizon - step

    def act(self, rounds: Rounds, step: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, rounds: Rounds, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass

    def diagnostics(self) -> pd.DataFrame | None:
        """Per update: each arm's pull count and posterior std (posterior policies only)."""
        return None


class Uniform(Policy):
    """Each arm with equal probability, every round."""

    name = "uniform"

    def act(self, rounds: Rounds, step: int) -> np.ndarray:
        return self.rng.integers(0, rounds.n_arms, size=rounds.n_rounds)


class Oracle(Policy):
    """The arm of highest expected reward (it reads the means): zero regret by construction."""

    name = "oracle"

    def act(self, rounds: Rounds, step: int) -> np.ndarray:
        return rounds.optimal_arm


class _Learner(Policy):
    """Round-robin pulls of every arm first, then updates every ``update_every`` rounds."""

    def __init__(self, initial_pulls: int, update_every: int):
        self.initial_pulls = _check_int("initial_pulls", initial_pulls, 0)
        self.update_every = _check_int("update_every", update_every)

    def reset(self, env: Environment, seed: int) -> None:
        super().reset(env, seed)
        self.inputs = np.zeros((0, env.input_dim), dtype=np.float32)
        self.arms = np.zeros(0, dtype=np.int64)
        self.observed = np.zeros(0)
        self.ready = False
        self._log: list[dict] = []

    def window(self, step: int, horizon: int) -> int:
        warmup = self.initial_pulls * self.env.n_arms
        size = warmup - step if step < warmup else self.update_every
        return min(size, horizon - step)

    def act(self, rounds: Rounds, step: int) -> np.ndarray:
        if not self.ready:  # round robin until the first update
            return (step + np.arange(rounds.n_rounds)) % rounds.n_arms
        return self._choose(rounds, step)

    def _choose(self, rounds: Rounds, step: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, rounds: Rounds, actions: np.ndarray, rewards: np.ndarray) -> None:
        chosen = rounds.inputs[np.arange(rounds.n_rounds), actions]
        self.inputs = np.concatenate([self.inputs, chosen])
        self.arms = np.concatenate([self.arms, actions])
        self.observed = np.concatenate([self.observed, rewards])
        self._fit()
        self.ready = True

    def _fit(self) -> None:
        raise NotImplementedError

    def pulls(self) -> np.ndarray:
        return np.bincount(self.arms, minlength=self.env.n_arms)

    def _record(self, arm_std: np.ndarray, **extra) -> None:
        pulls = self.pulls()
        for arm in range(self.env.n_arms):
            self._log.append({"step": len(self.arms), "arm": arm, "pulls": int(pulls[arm]),
                              "posterior_std": float(arm_std[arm]), **extra})

    def diagnostics(self) -> pd.DataFrame | None:
        return pd.DataFrame(self._log) if self._log else None


class LinearThompson(_Learner):
    """Thompson sampling with Bayesian linear regression on the raw inputs (closed form).

    Riquelme et al.'s ``LinFullPost``: per arm (``per_arm`` environments; else one regression
    over ``[context, candidate]``) a normal-inverse-gamma model on ``[context, 1]``: sigma^2 ~
    IG(a0, b0), beta | sigma^2 ~ N(0, sigma^2 / lambda_prior I); each decision samples sigma^2
    and beta from the exact posterior.  Defaults a0 = b0 = 6, lambda_prior = 0.25 are theirs.
    """

    name = "LinTS"

    def __init__(self, a0: float = 6.0, b0: float = 6.0, lambda_prior: float = 0.25,
                 initial_pulls: int = 2, update_every: int = 50):
        super().__init__(initial_pulls, update_every)
        self.a0 = _check_number("a0", a0, 0.0)
        self.b0 = _check_number("b0", b0, 0.0)
        self.lambda_prior = _check_number("lambda_prior", lambda_prior, 0.0)

    def _design(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs[..., :self.env.context_dim] if self.env.per_arm else inputs
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1).astype(float)

    def _fit(self) -> None:
        groups = self.env.n_arms if self.env.per_arm else 1
        x = self._design(self.inputs)
        group = self.arms if self.env.per_arm else np.zeros_like(self.arms)
        d = x.shape[1]
        self.mu, self.chol, self.a, self.b = [], [], [], []
        for g in range(groups):
            xg, yg = x[group == g], self.observed[group == g]
            precision = xg.T @ xg + self.lambda_prior * np.eye(d)
            chol = np.linalg.cholesky(precision)
            mu = np.linalg.solve(precision, xg.T @ yg)
            self.mu.append(mu)
            self.chol.append(chol)
            self.a.append(self.a0 + len(yg) / 2)
            self.b.append(self.b0 + 0.5 * max(yg @ yg - mu @ precision @ mu, 0.0))
        self.mu, self.chol = np.stack(self.mu), np.stack(self.chol)
        self.a, self.b = np.array(self.a), np.array(self.b)
        self._record(self._std(self._last_inputs()))

    def _last_inputs(self) -> np.ndarray:
        return self.inputs[-self.update_every:]

    def _std(self, chosen_inputs: np.ndarray) -> np.ndarray:
        """Posterior std of each arm's mean reward, averaged over recent contexts."""
        k = self.env.n_arms
        x = self._design(_probe_inputs(self.env, chosen_inputs))    # (n, K, d)
        group = np.arange(k) if self.env.per_arm else np.zeros(k, dtype=int)
        # E[sigma^2] under the inverse-gamma posterior (its mode if the mean is infinite)
        scale = np.where(self.a > 1, self.b / np.maximum(self.a - 1, 1e-12),
                         self.b / (self.a + 1))
        half = np.stack([np.linalg.solve(self.chol[group[j]], x[:, j].T) for j in range(k)])
        var = scale[group][:, None] * (half ** 2).sum(axis=1)        # (K, n)
        return np.sqrt(var).mean(axis=1)

    def _choose(self, rounds: Rounds, step: int) -> np.ndarray:
        n, k = rounds.n_rounds, rounds.n_arms
        groups = len(self.mu)
        rng = np.random.default_rng(_seed_from(self.seed, step, 2))
        sigma2 = self.b / rng.gamma(self.a, size=(n, groups))       # inverse-gamma draws
        eps = rng.standard_normal((n, groups, self.mu.shape[1]))
        # beta = mu + sigma L^-T eps, where precision = L L^T
        offsets = np.stack([np.linalg.solve(self.chol[g].T, eps[:, g].T).T
                            for g in range(groups)], axis=1)
        beta = self.mu[None] + np.sqrt(sigma2)[..., None] * offsets  # (n, G, d)
        x = self._design(rounds.inputs)                               # (n, K, d)
        group = np.arange(k) if self.env.per_arm else np.zeros(k, dtype=int)
        scores = np.einsum("nkd,nkd->nk", x, beta[:, group])
        return scores.argmax(axis=1)


@dataclass(frozen=True)
class NeuralConfig:
    """The reward network and its training schedule, shared by every neural policy.

    Defaults follow Riquelme et al. (2018): one hidden layer of 50 ReLU units, 2 round-robin
    pulls per arm, retraining every 50 rounds for 100 mini-batch steps (batch 512) on the whole
    history, warm-started, gradients clipped at norm 5.  Adam at 1e-2 replaces their decayed
    RMSProp.
    """

    hidden: tuple[int, ...] = (50,)
    initial_pulls: int = 2
    retrain_every: int = 50
    train_steps: int = 100
    batch_size: int = 512
    lr: float = 1e-2
    weight_decay: float = 1e-4
    clip_norm: float = 5.0

    def __post_init__(self):
        _check_hidden(self.hidden, kinds=(tuple,))
        _check_int("initial_pulls", self.initial_pulls, 0)
        _check_int("retrain_every", self.retrain_every)
        _check_int("train_steps", self.train_steps)
        _check_int("batch_size", self.batch_size)
        _check_number("lr", self.lr, 0.0)
        _check_number("weight_decay", self.weight_decay, 0.0, low_open=False)
        _check_number("clip_norm", self.clip_norm, 0.0)


class _NeuralPolicy(_Learner):
    """A policy acting on a :class:`RewardNet` retrained on the history (MSE, warm start)."""

    def __init__(self, config: NeuralConfig = NeuralConfig()):
        if not isinstance(config, NeuralConfig):
            raise TypeError(f"config must be a NeuralConfig, got {type(config).__name__}")
        super().__init__(config.initial_pulls, config.retrain_every)
        self.config = config

    def reset(self, env: Environment, seed: int) -> None:
        super().reset(env, seed)
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_from(seed, 3))  # same seed: the same initial network
            self.net = RewardNet(env.context_dim, env.arm_dim, c.hidden, env.per_arm)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=c.lr,
                                          weight_decay=c.weight_decay)
        self.generator = torch.Generator().manual_seed(_seed_from(seed, 4))

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.get_default_dtype())

    def _train(self) -> None:
        c = self.config
        x, y = self._tensor(self.inputs), self._tensor(self.observed)
        batch = min(c.batch_size, len(y))
        self.net.train()
        for _ in range(c.train_steps):
            idx = torch.randint(0, len(y), (batch,), generator=self.generator)
            loss = ((self.net(x[idx])[:, 0] - y[idx]) ** 2).mean()
            self.optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.clip_norm)
            self.optimiser.step()
        self.net.eval()

    def _fit(self) -> None:
        self._train()

    @torch.no_grad()
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The network's predicted reward for inputs ``(..., input_dim)``."""
        x = self._tensor(inputs)
        return self.net(x.reshape(-1, x.shape[-1]))[:, 0].reshape(x.shape[:-1]).numpy()

    def _choose(self, rounds: Rounds, step: int) -> np.ndarray:
        return self.predict(rounds.inputs).argmax(axis=1)


class NeuralGreedy(_NeuralPolicy):
    """The arm the network predicts best (no exploration after the round-robin start)."""

    name = "greedy"


class EpsilonGreedy(_NeuralPolicy):
    """Greedy on the network, but a uniformly random arm with probability ``epsilon``."""

    name = "epsilon-greedy"

    def __init__(self, config: NeuralConfig = NeuralConfig(), epsilon: float = 0.05):
        super().__init__(config)
        self.epsilon = _check_number("epsilon", epsilon, 0.0, 1.0, low_open=False,
                                     high_open=False)

    def _choose(self, rounds: Rounds, step: int) -> np.ndarray:
        greedy = super()._choose(rounds, step)
        explore = self.rng.uniform(size=rounds.n_rounds) < self.epsilon
        random = self.rng.integers(0, rounds.n_arms, size=rounds.n_rounds)
        return np.where(explore, random, greedy)


class LaplaceThompson(_NeuralPolicy):
    """Thompson sampling from a last-layer Laplace posterior of the greedy policy's network.

    At every retraining the posterior (:class:`~bayes_at_scale.posteriors.RewardPosterior`,
    Gaussian likelihood, flavour ``posterior``) is refitted on the whole history; its prior
    precision and observation noise are chosen by the marginal likelihood, warm-started from the
    previous refit (``hyper_steps`` Adam steps at the first refit, ``warm_hyper_steps`` after).
    Each decision draws one fresh posterior sample of the head's weights and
    plays the arm whose sampled reward is highest.
    """

    name = "TS-LA"

    def __init__(self, config: NeuralConfig = NeuralConfig(),
                 posterior: str = DEFAULT_REWARD_FLAVOUR, warm_hyper_steps: int = 25,
                 **posterior_overrides):
        super().__init__(config)
        self.posterior_config = reward_flavour(posterior, **posterior_overrides)
        self.warm_hyper_steps = _check_int("warm_hyper_steps", warm_hyper_steps)

    def reset(self, env: Environment, seed: int) -> None:
        super().reset(env, seed)
        self.posterior: RewardPosterior | None = None

    def _fit(self) -> None:
        self._train()
        c = self.posterior_config
        if self.posterior is not None:  # warm start the hyperparameters
            c = replace(c, prior_precision=float(self.posterior.prior_precision.mean()),
                        sigma_noise=self.posterior.sigma_noise,
                        hyper_steps=self.warm_hyper_steps)
        loader = reward_loader(self._tensor(self.inputs), self._tensor(self.observed),
                               batch_size=c.fit_batch)
        self.posterior = RewardPosterior(self.net, c).fit(loader)
        recent = self.inputs[-self.update_every:]
        self._record(self.arm_std(recent), sigma_noise=self.posterior.sigma_noise,
                     prior_precision=float(self.posterior.prior_precision.mean()))

    def posterior_std(self, inputs: np.ndarray) -> np.ndarray:
        """Posterior std of the mean reward for inputs ``(..., input_dim)``."""
        x = self._tensor(inputs)
        _, var = self.posterior.predictive(x.reshape(-1, x.shape[-1]))
        return var.sqrt().reshape(x.shape[:-1]).numpy()

    def arm_std(self, chosen_inputs: np.ndarray) -> np.ndarray:
        """Each arm's posterior std, averaged over the contexts of ``chosen_inputs``."""
        return self.posterior_std(_probe_inputs(self.env, chosen_inputs)).mean(axis=0)

    def _choose(self, rounds: Rounds, step: int) -> np.ndarray:
        n, k = rounds.n_rounds, rounds.n_arms
        x = self._tensor(rounds.inputs.reshape(n * k, -1))
        # one posterior sample per round: sample j scores round j's arms
        samples = self.posterior.sample(x, n, seed=_seed_from(self.seed, step, 5))
        scores = samples.reshape(n, n, k)[np.arange(n), np.arange(n)]
        return scores.numpy().argmax(axis=1)


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
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a Policy, got {type(policy).__name__}")
    horizon = _check_int("horizon", horizon)
    seed = _check_int("seed", seed, 0)
    if threads is not None:
        threads = _check_int("threads", threads)
    with torch_threads(threads):
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
                   horizon: int, seeds, threads: int | None = 1) -> list[BanditRun]:
    """Every policy on every environment for every seed (policies are reset for each run)."""
    seeds = [_check_int("seed", s, 0) for s in seeds]
    if not seeds or not environments or not policies:
        raise ValueError("name at least one environment, one policy and one seed")
    return [run(env, policy, horizon, seed, threads) for env in environments.values()
            for seed in seeds for policy in policies.values()]


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


def recipe(settings: Settings) -> BanditRecipe:
    """The recipe of ``settings.scale``."""
    return RECIPES[settings.scale]


def environments(recipe: BanditRecipe, delta: float = CLAIM_DELTA) -> dict[str, Environment]:
    """The three environments of claim C10: ``wheel``, ``classification`` and ``rlhf``."""
    return {"wheel": WheelBandit(delta), "classification": ClassificationBandit(recipe.dataset),
            "rlhf": RLHFBandit()}


def wheel_environments(recipe: BanditRecipe) -> dict[str, WheelBandit]:
    """The wheel bandit at every radius of the recipe's sweep, keyed by ``wheel delta=...``."""
    wheels = [WheelBandit(delta) for delta in recipe.deltas]
    return {w.name: w for w in wheels}


def policies(recipe: BanditRecipe) -> dict[str, Policy]:
    """Every policy of the chapter, keyed by name, with the recipe's network and schedule."""
    net = recipe.network
    made = [Uniform(), NeuralGreedy(net), EpsilonGreedy(net, recipe.epsilon),
            LaplaceThompson(net), LinearThompson(initial_pulls=net.initial_pulls,
                                                 update_every=net.retrain_every)]
    return {p.name: p for p in made}


# --- tables and the claim -------------------------------------------------------------------


def _check_runs(runs) -> list[BanditRun]:
    runs = list(runs)
    if not runs:
        raise ValueError("no runs given")
    for r in runs:
        if not isinstance(r, BanditRun):
            raise TypeError(f"runs must be BanditRun objects, got {type(r).__name__}")
    return runs


def cumulative_regret_table(runs, every: int = 1) -> pd.DataFrame:
    """Tidy table for seaborn: one row per (run, round), every ``every``-th round and the last.

    Columns: environment, policy, seed, step (1-based), regret, cumulative_regret.
    """
    runs = _check_runs(runs)
    every = _check_int("every", every)
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
    runs = _check_runs(runs)
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
    runs = _check_runs(runs)
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

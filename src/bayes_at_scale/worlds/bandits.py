"""Contextual bandits (chapter 5): environments that draw a whole horizon of rounds at
once.

An :class:`Environment` draws a horizon of rounds, :meth:`Environment.sample` ->
:class:`Rounds`: each round's raw context, one input vector per arm (what a reward model
reads), the *expected* reward of every arm (so the optimal arm and the regret are exact,
never estimated from noisy draws) and one noisy reward per arm drawn in advance.
Drawing every arm's noisy reward up front gives every policy run with the same seed the
same contexts and the same noise (common random numbers), so policies are compared
pairwise, seed by seed.  The policies that play them are in
:mod:`bayes_at_scale.core.policies`; chapter 5's runs in
:mod:`bayes_at_scale.experiments.the_causal_stage`.

Environments (the claim C10 names three):

* :class:`WheelBandit` - the wheel bandit of Riquelme et al. (2018) [riquelme2018deep];
* :class:`ClassificationBandit` - a labelled data set shipped with scikit-learn, one arm
  per class, reward 1 for the true class and 0 otherwise;
* :class:`RLHFBandit` - each round a prompt and ``K`` candidate responses (feature
  vectors); a hidden, fixed random preference model gives the rater's probability of
  approving a response, and the feedback is a noisy binary approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.checks import check_actions, check_finite_array, check_int, check_number
from ..core.settings import derive_seed

# --- rounds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rounds:
    """A horizon of bandit rounds, drawn in advance.

    ``contexts`` ``(n, context_dim)``: the raw context of each round; ``inputs`` ``(n,
    K, input_dim)``: the reward model's input for each (round, arm); ``means`` ``(n,
    K)``: expected rewards, exact; ``rewards`` ``(n, K)``: one noisy reward per arm
    (only the chosen arm's is ever revealed to a policy); ``info``: per-round extras
    (labels, responses...).
    """

    contexts: np.ndarray
    inputs: np.ndarray
    means: np.ndarray
    rewards: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        if self.means.ndim != 2 or self.means.shape[1] < 2:
            raise ValueError(
                f"means must have shape (n, arms >= 2), got {self.means.shape}"
            )
        if self.rewards.shape != self.means.shape:
            raise ValueError(
                f"rewards {self.rewards.shape} and means {self.means.shape} differ"
            )
        if self.inputs.ndim != 3 or self.inputs.shape[:2] != self.means.shape:
            raise ValueError(
                f"inputs must have shape {self.means.shape + ('input_dim',)}, got "
                f"{self.inputs.shape}"
            )
        if self.contexts.ndim != 2 or self.contexts.shape[0] != n:
            raise ValueError(
                f"contexts must have shape ({n}, context_dim), got "
                f"{self.contexts.shape}"
            )
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
        """Per-round regret, exact: expected reward of the optimal arm minus the chosen
        one's."""
        return self.optimal_mean - self.expected_reward(actions)

    def observe(self, actions) -> np.ndarray:
        """The noisy rewards the chosen arms return."""
        a = check_actions(actions, self.n_rounds, self.n_arms)
        return self.rewards[np.arange(self.n_rounds), a]

    def window(self, start: int, stop: int) -> "Rounds":
        """Rounds ``start..stop - 1``."""
        if not 0 <= start < stop <= self.n_rounds:
            raise ValueError(f"window {start}..{stop} is not inside 0..{self.n_rounds}")
        return Rounds(
            self.contexts[start:stop],
            self.inputs[start:stop],
            self.means[start:stop],
            self.rewards[start:stop],
            {k: v[start:stop] for k, v in self.info.items()},
        )


def arm_inputs(contexts: np.ndarray, n_arms: int) -> np.ndarray:
    """``(n, K, context_dim + K)``: each context followed by the one-hot code of each
    arm."""
    n = contexts.shape[0]
    eye = np.broadcast_to(np.eye(n_arms), (n, n_arms, n_arms))
    ctx = np.broadcast_to(contexts[:, None, :], (n, n_arms, contexts.shape[1]))
    return np.concatenate([ctx, eye], axis=2).astype(np.float32)


# --- environments ---------------------------------------------------------------------


class Environment:
    """A contextual bandit: ``n_arms`` arms, contexts of ``context_dim`` numbers, and
    per-arm inputs ``[context, arm part]`` of ``context_dim + arm_dim`` numbers.

    ``per_arm`` is True when arms have identities (the arm part is a one-hot code, and a
    reward model gets one head per arm); False when an arm is described by features (the
    arm part is a candidate's feature vector, and one shared head scores every
    candidate).
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
        check_int("n", n)
        check_int("seed", seed, 0)
        return self._sample(int(n), np.random.default_rng(seed))

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        raise NotImplementedError

    def rare_rounds(self, rounds: Rounds) -> np.ndarray | None:
        """Which of ``rounds`` are the rare, high-paying ones that only exploration
        finds (a boolean mask), or None where the environment has none."""
        return None

    def probe_inputs(self, chosen_inputs: np.ndarray) -> np.ndarray:
        """Every arm's input ``(n, K, input_dim)`` at the contexts of already chosen
        inputs ``(n, input_dim)``: with arm identities, each context with every arm's
        code; without, the chosen candidates themselves, the same in every slot (a slot
        has no identity of its own).  What a policy reads to report each arm's
        uncertainty."""
        k = self.n_arms
        if self.per_arm:
            return arm_inputs(chosen_inputs[:, : self.context_dim], k)
        return np.broadcast_to(
            chosen_inputs[:, None, :], (len(chosen_inputs), k, chosen_inputs.shape[1])
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class WheelBandit(Environment):
    """The wheel bandit of Riquelme et al. (2018) [riquelme2018deep], as published.

    Contexts are uniform in the unit disc of R^2; there are 5 arms.  Arm 0 (the paper's
    a_1, the "centre" arm) always pays N(mu_1, sigma^2), mu_1 = 1.2.  If ||x|| <= delta
    the other four arms pay N(mu_2, sigma^2), mu_2 = 1.0, so arm 0 is optimal.  If ||x||
    > delta, the arm of x's quadrant pays N(mu_3, sigma^2), mu_3 = 50, and is optimal;
    the other three still pay mu_2.  sigma = 0.01.  Quadrants are numbered as in the
    authors' code: arm 1 for (x_1 > 0, x_2 > 0), arm 2 for (x_1 > 0, x_2 <= 0), arm 3
    for (x_1 <= 0, x_2 > 0), arm 4 for (x_1 <= 0, x_2 <= 0).  The larger delta, the
    rarer (probability 1 - delta^2) and the more rewarding the contexts that only
    exploration can find.
    """

    n_arms = 5
    context_dim = 2
    arm_dim = 5
    per_arm = True

    def __init__(
        self,
        delta: float = 0.95,
        mu_centre: float = 1.2,
        mu_other: float = 1.0,
        mu_large: float = 50.0,
        noise_std: float = 0.01,
    ):
        self.delta = check_number("delta", delta, 0.0, 1.0)
        self.mu_centre = check_number("mu_centre", mu_centre)
        self.mu_other = check_number("mu_other", mu_other)
        self.mu_large = check_number("mu_large", mu_large)
        self.noise_std = check_number("noise_std", noise_std, 0.0, None, low_open=False)
        if not self.mu_other < self.mu_centre < self.mu_large:
            raise ValueError(
                "the wheel needs mu_other < mu_centre < mu_large, got "
                f"{self.mu_other}, {self.mu_centre}, {self.mu_large}"
            )
        self.name = f"wheel delta={self.delta:g}"

    def _in_disc(self, contexts) -> np.ndarray:
        """``contexts`` as an ``(n, 2)`` float array of points in the unit disc."""
        x = np.asarray(contexts, dtype=float)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"contexts must have shape (n, 2), got {x.shape}")
        x = check_finite_array(x, "contexts")
        if (np.linalg.norm(x, axis=1) > 1 + 1e-9).any():
            raise ValueError("contexts must lie in the unit disc (norm <= 1)")
        return x

    def quadrant_arm(self, contexts) -> np.ndarray:
        """The arm (1..4) of each context's quadrant."""
        x = self._in_disc(contexts)
        return 1 + 2 * (x[:, 0] <= 0) + (x[:, 1] <= 0)

    def expected_rewards(self, contexts) -> np.ndarray:
        """``(n, 5)`` expected reward of every arm for each context."""
        x = self._in_disc(contexts)
        means = np.full((x.shape[0], 5), self.mu_other)
        means[:, 0] = self.mu_centre
        outside = np.linalg.norm(x, axis=1) > self.delta
        quadrant = self.quadrant_arm(x)
        means[np.flatnonzero(outside), quadrant[outside]] = self.mu_large
        return means

    def rare_rounds(self, rounds: Rounds) -> np.ndarray:
        """The rounds whose context lies outside the radius delta (where the quadrant's
        arm pays ``mu_large``)."""
        return np.linalg.norm(self._in_disc(rounds.contexts), axis=1) > self.delta

    def _sample(self, n: int, rng: np.random.Generator) -> Rounds:
        radius = np.sqrt(rng.uniform(size=n))  # uniform in the disc
        angle = rng.uniform(0, 2 * np.pi, size=n)
        x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        means = self.expected_rewards(x)
        rewards = means + self.noise_std * rng.standard_normal(means.shape)
        return Rounds(x, arm_inputs(x, 5), means, rewards)


CLASSIFICATION_DATASETS = ("digits", "wine", "iris", "breast_cancer")


class ClassificationBandit(Environment):
    """A labelled data set that ships with scikit-learn, played as a bandit.

    Each round shows one example drawn uniformly (with replacement) from the data set;
    the arms are the classes; the reward is 1 for the example's true class and 0
    otherwise, with no noise.  Features are standardised (zero mean, unit variance;
    constant features are only centred).  ``digits`` (8x8 images of handwritten digits,
    1797 examples, 10 classes) is the default: a harder bandit than the 3-class tables.
    """

    per_arm = True

    def __init__(self, dataset: str = "digits"):
        if dataset not in CLASSIFICATION_DATASETS:
            raise ValueError(
                f"unknown dataset {dataset!r}: expected one of "
                f"{CLASSIFICATION_DATASETS}"
            )
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
        return Rounds(
            x,
            arm_inputs(x, self.n_arms),
            means,
            means.copy(),
            {"label": y, "index": index},
        )


class RLHFBandit(Environment):
    """An RLHF-like bandit: pick one of ``n_candidates`` responses to a prompt; a rater
    approves.

    Each round draws a prompt feature vector p ~ N(0, I) and ``n_candidates`` response
    feature vectors r_k ~ N(0, I).  A hidden preference model - a fixed random
    one-hidden-layer tanh network g, drawn once with ``rater_seed`` and scaled so that g
    has standard deviation ``scale`` over (prompt, response) pairs - gives the rater's
    probability of approving response k, sigmoid(g(p, r_k)): the expected reward.  The
    feedback is one Bernoulli draw of it.  Arms are candidate slots without identity, so
    a reward model reads ``[p, r_k]`` and scores every candidate with one shared head
    (``per_arm = False``).
    """

    per_arm = False

    def __init__(
        self,
        prompt_dim: int = 8,
        response_dim: int = 8,
        n_candidates: int = 8,
        rater_hidden: int = 32,
        scale: float = 2.0,
        rater_seed: int = 0,
    ):
        self.context_dim = check_int("prompt_dim", prompt_dim)
        self.arm_dim = check_int("response_dim", response_dim)
        self.n_arms = check_int("n_candidates", n_candidates, 2)
        hidden = check_int("rater_hidden", rater_hidden)
        self.scale = check_number("scale", scale, 0.0)
        self.rater_seed = check_int("rater_seed", rater_seed, 0)
        rng = np.random.default_rng(derive_seed(self.rater_seed, 7919))
        d = self.context_dim + self.arm_dim
        self._w1 = rng.standard_normal((d, hidden)) / np.sqrt(d)
        self._b1 = 0.5 * rng.standard_normal(hidden)
        self._w2 = rng.standard_normal(hidden)
        probe = rng.standard_normal((20_000, d))
        raw = np.tanh(probe @ self._w1 + self._b1) @ self._w2
        self._shift, self._norm = raw.mean(), raw.std()
        self.name = "RLHF-like"

    def preference_logit(self, prompts, responses) -> np.ndarray:
        """The hidden rater's logit g(p, r) for prompts ``(n, prompt_dim)`` and
        responses ``(n, K, response_dim)``: ``(n, K)``."""
        p = np.asarray(prompts, dtype=float)
        r = np.asarray(responses, dtype=float)
        if p.ndim != 2 or p.shape[1] != self.context_dim:
            raise ValueError(
                f"prompts must have shape (n, {self.context_dim}), got {p.shape}"
            )
        if r.ndim != 3 or r.shape[0] != p.shape[0] or r.shape[2] != self.arm_dim:
            raise ValueError(
                f"responses must have shape ({p.shape[0]}, K, {self.arm_dim}), "
                f"got {r.shape}"
            )
        z = np.concatenate(
            [np.broadcast_to(p[:, None, :], r.shape[:2] + p.shape[1:]), r], axis=2
        )
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
        inputs = np.concatenate(
            [np.broadcast_to(p[:, None, :], r.shape[:2] + p.shape[1:]), r], axis=2
        ).astype(np.float32)
        return Rounds(p, inputs, means, rewards, {"responses": r})

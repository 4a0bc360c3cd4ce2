"""The reward worlds of chapter 6: a gold reward and its preference data (claim C11),
and the graders of a fact model's answers (claim C12).

**The preference world** (the synthetic gold-reward set-up of Gao et al. 2023).  A
response is a feature vector.  A hidden *gold* reward (:class:`GoldReward`, a fixed
random tanh network) scores it.  The *base policy* (:class:`BasePolicy`) writes
responses from a mixture: mostly in-distribution ``N(0, I)``, sometimes
out-of-distribution ``N(0, ood_scale^2 I)``.  Raters compare pairs of responses with
Bradley-Terry probabilities from the gold reward (:func:`preference_data`).  Best-of-n
draws ``n`` responses from the base policy and keeps the one of highest score, moving
``KL(best-of-n || base) = log n - (n - 1) / n`` nats away from it
(:func:`kl_best_of_n`); :func:`pessimistic_scores` ranks by a posterior's ``mean - k
std``.

Expected values over the best-of-n draw are computed exactly rather than by one draw per
prompt (:func:`best_of_n`): each prompt gets ``N >= n`` candidates, and the best of a
uniformly random ``n``-subset of them is the candidate of ascending score rank ``i``
with probability ``C(i - 1, n - 1) / C(N, n)`` (the unbiased best-of-n estimator of
Nakano et al., 2021).  Per prompt this gives the expected gold reward of best-of-n for
every ``n`` at once, with much less variance than one subset.

**Graded answers.**  A fact model (:mod:`bayes_at_scale.worlds.facts`) answers a
question with a distribution over the answer tokens, the values and "unknown"
(:func:`answer_probs`); :func:`grade` turns the outcome of an answer into a reward: the
graders of :data:`GRADERS`, and the supplementary :data:`BENCHMARK` grader under which
"unknown" never earns credit. :func:`evaluate_answers` measures a model's calibration,
abstention and expected reward under each grader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import gammaln
from scipy.stats import chi2

from ..core import metrics
from ..core.checks import (
    check_finite_array,
    check_indices,
    check_instance,
    check_int,
    check_number,
    check_threshold,
)
from ..core.models import CausalLM
from ..core.settings import derive_seed
from .facts import FactWorld, answer_outcome, graded_score

# the gold reward is one fixed function; seeds change data, training and draws
GOLD_SEED = 0


# --- the preference world -------------------------------------------------------------


class GoldReward:
    """The true reward of a response ``x`` (a feature vector of ``dim`` numbers).

    A fixed random one-hidden-layer tanh network (drawn once with ``seed``), shifted and
    scaled so that over the base policy's in-distribution responses ``N(0, I)`` it has
    mean 0 and standard deviation ``scale`` - the same kind of hidden rater as chapter
    5's :class:`~bayes_at_scale.worlds.bandits.RLHFBandit`.  Being a tanh network it
    saturates far from the data, where a ReLU reward model keeps extrapolating linearly.
    """

    def __init__(
        self, dim: int = 8, hidden: int = 32, scale: float = 2.0, seed: int = GOLD_SEED
    ):
        self.dim = check_int("dim", dim)
        hidden = check_int("hidden", hidden)
        self.scale = check_number("scale", scale, 0.0)
        self.seed = check_int("seed", seed, 0)
        rng = np.random.default_rng(derive_seed(self.seed, 6113))
        self._w1 = rng.standard_normal((self.dim, hidden)) / np.sqrt(self.dim)
        self._b1 = 0.5 * rng.standard_normal(hidden)
        self._w2 = rng.standard_normal(hidden)
        raw = self._raw(rng.standard_normal((20_000, self.dim)))
        self._shift, self._norm = raw.mean(), raw.std()

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self._w1 + self._b1) @ self._w2

    def __call__(self, responses) -> np.ndarray:
        """Gold reward of responses ``(..., dim)``: ``(...)``."""
        x = check_finite_array(responses, "responses")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"responses must have shape (..., {self.dim}), got {x.shape}"
            )
        return self.scale * (self._raw(x) - self._shift) / self._norm


class TurningGold(GoldReward):
    """A gold reward that turns over away from the preference data (claim C27), in the
    manner of Gao et al. 2023: :class:`GoldReward`'s tanh network, minus a penalty that
    is zero within ``radius`` of the origin and grows quadratically beyond it,
    ``curvature / 2 x max(0, norm(x) - radius)^2``.

    ``radius`` defaults to the ``quantile`` (0.99) of the norm of an in-distribution
    response ``N(0, I)`` (a chi distribution with ``dim`` degrees of freedom), so that
    the preference data - in distribution but for a rare share of unusual responses -
    hardly ever see the penalty, while best-of-n, reaching for the unusual responses a
    proxy over-rates, runs into it.  Round 1's :class:`GoldReward` kept rising there
    (C11's world never over-optimised); this is the same function inside the data's
    region, and one that punishes leaving it. ``curvature = 0.5``: a response twice the
    radius out (about the typical norm of the base policy's unusual responses) loses
    about 8 units of gold reward, four in-distribution standard deviations at ``scale =
    2``.
    """

    def __init__(
        self,
        dim: int = 8,
        hidden: int = 32,
        scale: float = 2.0,
        seed: int = GOLD_SEED,
        radius: float | None = None,
        quantile: float = 0.99,
        curvature: float = 0.5,
    ):
        super().__init__(dim, hidden, scale, seed)
        quantile = check_number("quantile", quantile, 0.0, 1.0)
        self.radius = (
            float(np.sqrt(chi2.ppf(quantile, self.dim)))
            if radius is None
            else check_number("radius", radius, 0.0)
        )
        self.curvature = check_number("curvature", curvature, 0.0, low_open=False)

    def penalty(self, responses) -> np.ndarray:
        """The penalty for leaving the data's region ``(...)``, zero within
        ``radius``."""
        x = check_finite_array(responses, "responses")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"responses must have shape (..., {self.dim}), got {x.shape}"
            )
        beyond = np.maximum(np.linalg.norm(x.astype(float), axis=-1) - self.radius, 0.0)
        return 0.5 * self.curvature * beyond**2

    def __call__(self, responses) -> np.ndarray:
        """Gold reward of responses ``(..., dim)``: ``(...)``."""
        return super().__call__(responses) - self.penalty(responses)


class BasePolicy:
    """The responses a base policy writes: ``dim`` features from a two-component
    mixture.

    With probability ``1 - ood_share`` a response is in distribution, ``N(0, I)``; with
    probability ``ood_share`` it is out of distribution, ``N(0, ood_scale^2 I)`` -
    unusual responses, far from where preference data are plentiful.
    """

    def __init__(self, dim: int = 8, ood_share: float = 0.05, ood_scale: float = 3.0):
        self.dim = check_int("dim", dim)
        self.ood_share = check_number("ood_share", ood_share, 0.0, 1.0, low_open=False)
        self.ood_scale = check_number("ood_scale", ood_scale, 0.0)

    def sample(
        self, shape, rng: np.random.Generator, ood_share: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Responses ``(*shape, dim)`` (float32) and whether each is out of distribution
        ``(*shape)``; ``ood_share`` overrides the policy's share (e.g. for training
        data)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        for s in shape:
            check_int("shape", s)
        share = (
            self.ood_share
            if ood_share is None
            else check_number("ood_share", ood_share, 0.0, 1.0, low_open=False)
        )
        ood = rng.uniform(size=shape) < share
        x = rng.standard_normal(shape + (self.dim,))
        x = np.where(ood[..., None], self.ood_scale * x, x)
        return x.astype(np.float32), ood


def preference_data(
    gold: GoldReward,
    policy: BasePolicy,
    n_pairs: int,
    rng: np.random.Generator,
    ood_share: float,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``n_pairs`` pairs of base-policy responses (out-of-distribution share
    ``ood_share``) and a Bradley-Terry preference for each, drawn from the gold reward:
    response 1 is preferred with probability ``sigmoid(gold(x_1) - gold(x_0))``.

    Returns pairs ``(n, 2, dim)``, the index of the preferred response ``(n,)`` (0 or 1)
    and the gold rewards ``(n, 2)``.
    """
    n_pairs = check_int("n_pairs", n_pairs)
    if gold.dim != policy.dim:
        raise ValueError(
            f"gold reward (dim {gold.dim}) and policy (dim {policy.dim}) disagree"
        )
    x, _ = policy.sample((n_pairs, 2), rng, ood_share=ood_share)
    g = gold(x)
    p_second = 1.0 / (1.0 + np.exp(-(g[:, 1] - g[:, 0])))
    preferred = (rng.uniform(size=n_pairs) < p_second).astype(np.int64)
    return torch.as_tensor(x), torch.as_tensor(preferred), g


# --- best-of-n ------------------------------------------------------------------------


def kl_best_of_n(n) -> np.ndarray | float:
    """KL(best-of-n || base) = log n - (n - 1) / n, in nats (for continuous scores)."""
    arr = np.asarray(n, dtype=float)
    if (
        arr.size == 0
        or not np.isfinite(arr).all()
        or (arr < 1).any()
        or (arr != np.round(arr)).any()
    ):
        raise ValueError(f"n must be integer(s) >= 1, got {n!r}")
    kl = np.log(arr) - (arr - 1) / arr
    return float(kl) if kl.ndim == 0 else kl


def bon_weights(n_candidates: int, n: int) -> np.ndarray:
    """Probability ``(N,)`` that the candidate of ascending score rank ``i`` (0-based)
    is the best of a uniformly random ``n``-subset of ``N`` candidates: ``C(i, n - 1) /
    C(N, n)``."""
    big_n = check_int("n_candidates", n_candidates)
    n = check_int("n", n)
    if n > big_n:
        raise ValueError(f"n ({n}) exceeds n_candidates ({big_n})")
    i = np.arange(big_n)
    w = np.zeros(big_n)
    ok = i >= n - 1
    # noqa: E731
    log_c = lambda a, b: gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)
    w[ok] = np.exp(log_c(i[ok], n - 1) - log_c(big_n, n))
    return w / w.sum()  # exact up to rounding; renormalised


def best_of_n(scores, values: dict, ns) -> dict[str, np.ndarray]:
    """Expected value of each quantity at the best-of-n choice, per prompt and ``n``.

    ``scores`` ``(prompts, N)``: the score that picks the best of ``n`` candidates;
    ``values``: ``{name: (prompts, N)}`` quantities of each candidate (gold reward,
    proxy reward, whether it is out of distribution...); ``ns``: the values of ``n``
    (each ``1 <= n <= N``).  Returns ``{name: (prompts, len(ns))}``: for each prompt,
    the expectation over a uniformly random ``n``-subset of its ``N`` candidates of the
    quantity at the subset's highest score.
    """
    s = check_finite_array(scores, "scores", 2)
    if not isinstance(values, dict) or not values:
        raise ValueError("values must be a non-empty dict of (prompts, N) arrays")
    ns = [
        check_int("n", n)
        for n in (ns if isinstance(ns, (list, tuple, np.ndarray)) else [ns])
    ]
    if not ns:
        raise ValueError("ns is empty")
    big_n = s.shape[1]
    weights = np.stack([bon_weights(big_n, n) for n in ns], axis=1)  # (N, len(ns))
    order = np.argsort(s, axis=1, kind="stable")
    out = {}
    for name, v in values.items():
        arr = check_finite_array(v, f"values[{name!r}]")
        if arr.shape != s.shape:
            raise ValueError(
                f"values[{name!r}] must have the shape of scores {s.shape}, got "
                f"{arr.shape}"
            )
        out[name] = np.take_along_axis(arr, order, axis=1) @ weights
    return out


def pessimistic_scores(mean, std, k: float) -> np.ndarray:
    """The pessimistic reward ``mean - k std`` (``k >= 0``) of a reward posterior's mean
    and standard deviation: best-of-n by it trusts a high reward less where it is
    uncertain."""
    k = check_number("k", k, 0.0, low_open=False)
    m, s = check_finite_array(mean, "mean"), check_finite_array(std, "std")
    if m.shape != s.shape:
        raise ValueError(
            f"mean and std must have the same shape, got {m.shape} and {s.shape}"
        )
    if (s < 0).any():
        raise ValueError("std must be non-negative")
    return m - k * s


def powers_of_two(max_n: int) -> tuple[int, ...]:
    """1, 2, 4, ..., max_n (``max_n`` a power of two)."""
    max_n = check_int("max_n", max_n)
    if max_n & (max_n - 1):
        raise ValueError(f"max_n must be a power of two, got {max_n}")
    return tuple(2**j for j in range(int(math.log2(max_n)) + 1))


# --- graded answers -------------------------------------------------------------------


# name -> threshold (None: right 1, otherwise 0)
GRADERS = {"binary": None, "t=0.75": 0.75}
# Supplementary grader, not part of claim C12: binary, and an "unknown" answer scores 0
# whatever the truth - the benchmark grading of Kalai et al. (2025), under which
# abstaining never pays.
BENCHMARK = "benchmark"


def truth_index(world: FactWorld, entities) -> np.ndarray:
    """Position of each entity's true answer among ``world.answer_tokens``."""
    e = check_indices(
        entities, check_instance("world", world, FactWorld).n_entities, "entities"
    )
    return np.searchsorted(world.answer_tokens, world.truth[e])


def answer_logits(model: CausalLM, world: FactWorld, entities) -> torch.Tensor:
    """The model's logits over the answer tokens ``(q, n_values + 1)`` after each
    question (differentiable; softmax gives the renormalised answer distribution)."""
    check_instance("model", model, CausalLM)
    e = check_indices(
        entities, check_instance("world", world, FactWorld).n_entities, "entities"
    )
    return logits_of_answers(model, world, world.prompts(e))


def logits_of_answers(
    model: CausalLM, world: FactWorld, prompts: torch.Tensor
) -> torch.Tensor:
    """:func:`answer_logits` for questions already built (``world.prompts(entities)``),
    so that a loop over the same questions builds them once."""
    answers = torch.as_tensor(world.answer_tokens, dtype=torch.long)
    return model(prompts)[:, -1, :][:, answers]


@torch.no_grad()
def answer_probs(model: CausalLM, world: FactWorld, entities) -> np.ndarray:
    """The answer distribution ``(q, n_values + 1)``, float64, rows summing to 1."""
    model.eval()
    p = torch.softmax(answer_logits(model, world, entities).double(), dim=-1).numpy()
    return p / p.sum(axis=1, keepdims=True)


def grade(outcomes, threshold: float | None = None, said_unknown=None) -> np.ndarray:
    """Reward of each graded answer (``"right"``, ``"unknown"``, ``"wrong"``, as
    :func:`bayes_at_scale.worlds.facts.answer_outcome` grades them).

    ``threshold=None``: the binary grader, 1 for right and 0 otherwise.  A threshold
    ``t`` in [0, 1): Kalai et al.'s grading, 1 right, 0 unknown, ``-t / (1 - t)`` wrong.
    ``said_unknown`` (optional, booleans like ``outcomes``): where True the answer was
    the unknown token and scores 0 whatever its outcome, so "unknown" never earns credit
    - not even for a fact that is truly unknown (with ``threshold=None``: the
    :data:`BENCHMARK` grader).
    """
    if threshold is not None:
        threshold = check_threshold(threshold, upper_closed=False)
    o = np.asarray(outcomes, dtype=object)
    if o.ndim != 1 or o.size == 0:
        raise ValueError(
            f"outcomes must be a non-empty one-dimensional array, got shape {o.shape}"
        )
    bad = set(o.tolist()) - {"right", "unknown", "wrong"}
    if bad:
        raise ValueError(
            "outcomes must be 'right', 'unknown' or 'wrong', got "
            f"{sorted(map(repr, bad))}"
        )
    if threshold is None:
        score = (o == "right").astype(float)
    else:
        score = np.select(
            [o == "right", o == "wrong"], [1.0, -threshold / (1 - threshold)], 0.0
        )
    if said_unknown is not None:
        said = np.asarray(said_unknown)
        if said.shape != o.shape or said.dtype != bool:
            raise ValueError(
                f"said_unknown must be booleans of shape {o.shape}, got "
                f"{said.dtype} of shape {said.shape}"
            )
        score = np.where(said, 0.0, score)
    return score


def answer_rewards(
    world: FactWorld,
    entities,
    threshold: float | None = None,
    credit_unknown: bool = True,
) -> np.ndarray:
    """The reward :func:`grade` gives every possible answer to each question ``(q, A)``,
    the answers in the order of ``world.answer_tokens`` ("unknown" last), graded as
    :func:`bayes_at_scale.worlds.facts.answer_outcome` grades them.
    ``credit_unknown=False`` scores "unknown" 0 whatever the truth (with
    ``threshold=None``: the :data:`BENCHMARK` grader, claim C28's)."""
    e = check_indices(
        entities, check_instance("world", world, FactWorld).n_entities, "entities"
    )
    if threshold is not None:
        threshold = check_threshold(threshold, upper_closed=False)
    labels = truth_index(world, e)
    n_answers = len(world.answer_tokens)
    right = np.arange(n_answers)[None, :] == labels[:, None]
    if threshold is None:  # grade's scores, without building one string per answer
        score = right.astype(float)
    else:
        score = np.where(right, 1.0, -threshold / (1 - threshold))
        score[~right[:, -1], -1] = 0.0  # "unknown" about a fact that has a value
    if not credit_unknown:
        score[:, -1] = 0.0
    return score


@dataclass(frozen=True)
class AnswerEvaluation:
    """A model's answers to ``entities``: the answer distribution ``probs`` ``(q, A)``,
    the position of the truth ``labels`` ``(q,)``, and summary numbers.  The model's
    *answer* is its most probable answer token (as in chapter 4); ``unknown_rate`` is
    the share of answers that are "unknown", ``p_unknown`` the mean probability of
    "unknown" (the rate at which a sampled answer is "unknown").  ``expected_reward``
    maps each grader of :data:`GRADERS` to the mean reward of an answer *sampled* from
    the answer distribution: what REINFORCE maximises (and :data:`BENCHMARK` to the same
    under the supplementary grader)."""

    entities: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    ece: float
    unknown_rate: float
    p_unknown: float
    accuracy: float
    confidence: float
    hallucination: float
    graded_score: float
    expected_reward: dict = field(default_factory=dict)

    @property
    def abstention_rate(self) -> float:
        """Share of answers that are "unknown" about a fact that has a value: the part
        of ``unknown_rate`` that is an abstention rather than the right answer."""
        unknown = self.probs.shape[1] - 1
        return float(
            np.mean((self.probs.argmax(axis=1) == unknown) & (self.labels != unknown))
        )


def evaluate_answers(
    model: CausalLM, world: FactWorld, entities, n_bins: int = 15
) -> AnswerEvaluation:
    """Calibration and abstention of ``model`` on the questions about ``entities``."""
    e = check_indices(
        entities, check_instance("world", world, FactWorld).n_entities, "entities"
    )
    p = answer_probs(model, world, e)
    labels = truth_index(world, e)
    top = p.argmax(axis=1)
    answers = world.answer_tokens[top]
    outcomes = answer_outcome(answers, world, e)
    unknown = len(world.answer_tokens) - 1
    expected = {
        name: float((p * answer_rewards(world, e, t)).sum(axis=1).mean())
        for name, t in GRADERS.items()
    }
    expected[BENCHMARK] = float(
        (p * answer_rewards(world, e, None, credit_unknown=False)).sum(axis=1).mean()
    )
    return AnswerEvaluation(
        entities=e,
        probs=p,
        labels=labels,
        ece=metrics.ece(p, labels, n_bins=n_bins),
        unknown_rate=float(np.mean(top == unknown)),
        p_unknown=float(p[:, unknown].mean()),
        accuracy=float(np.mean(top == labels)),
        confidence=float(p.max(axis=1).mean()),
        hallucination=float(np.mean((outcomes == "wrong") & (top != unknown))),
        graded_score=graded_score(outcomes, 0.75),
        expected_reward=expected,
    )

"""Chapter 6's experiments: Bayesian reward models, best-of-n, and what reward optimisation does
to a model's confidence (claims C11 and C12).

**C11 - reward over-optimisation** (the synthetic gold-reward set-up of Gao et al. 2023, with
the Laplace reward model of Yang et al. 2024; Coste et al. 2024 used ensembles).  A response is a
feature vector.  A hidden *gold* reward (:class:`GoldReward`, a fixed random tanh network)
scores it.  The *base policy* (:class:`BasePolicy`) writes responses from a mixture: mostly
in-distribution ``N(0, I)``, sometimes out-of-distribution ``N(0, ood_scale^2 I)``.  A *proxy*
reward model (:class:`PreferenceNet`, a small ReLU MLP) is trained on Bradley-Terry preferences
sampled from the gold reward over pairs of responses in which out-of-distribution responses are
rare; it gets a last-layer Laplace posterior
(:class:`~bayes_at_scale.posteriors.PreferencePosterior`, laplace-torch's ``reward_modeling``
likelihood).  Best-of-n then draws ``n`` responses from the base policy and keeps the one of
highest score - the MAP reward, or the pessimistic ``mean - k std`` with ``k`` fixed in advance
(:data:`K_PESSIMISM`) - and we record the gold and proxy reward of the kept response, whether it
is out of distribution, and ``KL(best-of-n || base) = log n - (n - 1) / n``.

Expected values over the best-of-n draw are computed exactly rather than by one draw per prompt:
each prompt gets ``N >= n`` candidates, and the best of a uniformly random ``n``-subset of them is
the candidate of ascending score rank ``i`` with probability ``C(i - 1, n - 1) / C(N, n)``
(the unbiased best-of-n estimator of Nakano et al., 2021).  Per prompt this gives the expected
gold reward of best-of-n for every ``n`` at once, with much less variance than one subset.

**C12 - confidence after reward optimisation.**  Chapter 4's fact model
(:func:`bayes_at_scale.hallucination.train_fact_model`) answers questions about entities; its
*answer distribution* is its next-token distribution restricted to the answer tokens (the values
and "unknown") and renormalised.  We measure its calibration (:func:`bayes_at_scale.metrics.ece`
of the answer distribution against the truth) and how often its answer - the most probable
answer token, as in chapter 4 - is "unknown", on fresh queries from the mention distribution.
Then we fine-tune it with REINFORCE (:func:`reinforce`): sample an answer per query from the
answer distribution, grade it, and follow the policy gradient with a batch-mean baseline.  Two
graders, both built on :func:`bayes_at_scale.facts.answer_outcome` (so "right" means the same as
in chapter 4: the true value, or "unknown" for an entity whose fact is truly unknown):

* ``binary``: 1 for a right answer, 0 otherwise - an abstention ("unknown" about an entity whose
  value exists) earns the same 0 as a wrong value;
* ``t=0.75``: Kalai et al.'s grading, +1 right, 0 unknown, -3 wrong, which pays abstaining.

A third grader, :data:`BENCHMARK`, is a supplementary analysis and not part of C12's rule: the
binary grading of most benchmarks, in which "unknown" never earns credit - not even for a fact
that is truly unknown (Kalai et al. 2025).  ``run_c12(..., benchmark=True)`` adds it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.special import gammaln
from torch import nn

from . import metrics
from .bandits import _check_hidden, _check_int, _check_number, _seed_from
from .facts import FactWorld, _check_threshold, answer_outcome, graded_score
from .models import CausalLM
from .posteriors import PreferencePosterior, PreferencePosteriorConfig, preference_loader
from .settings import Settings, torch_threads

# k of the pessimistic score mean - k std, fixed before any run.  One posterior standard
# deviation is the conventional lower confidence bound (the 16th percentile of a Gaussian): the
# simplest choice that makes uncertainty count as much as the reward scale it is measured in.
# Yang et al. (2024) penalise by the std with a coefficient they vary; tuning k on the outcome
# would turn claim C11's test into a fit, so k stays 1 and is not changed after seeing results.
K_PESSIMISM = 1.0
GOLD_SEED = 0  # the gold reward is one fixed function; seeds change data, training and draws
METHODS = ("MAP", "pessimistic")  # best-of-n by the MAP reward, and by mean - k std


# --- small helpers --------------------------------------------------------------------------


def _check_threads(threads: int | None) -> int | None:
    return None if threads is None else _check_int("threads", threads)


def _float_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=float)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# --- C11: the synthetic world ---------------------------------------------------------------


class GoldReward:
    """The true reward of a response ``x`` (a feature vector of ``dim`` numbers).

    A fixed random one-hidden-layer tanh network (drawn once with ``seed``), shifted and scaled
    so that over the base policy's in-distribution responses ``N(0, I)`` it has mean 0 and
    standard deviation ``scale`` - the same kind of hidden rater as chapter 5's
    :class:`~bayes_at_scale.bandits.RLHFBandit`.  Being a tanh network it saturates far from the
    data, where a ReLU reward model keeps extrapolating linearly.
    """

    def __init__(self, dim: int = 8, hidden: int = 32, scale: float = 2.0, seed: int = GOLD_SEED):
        self.dim = _check_int("dim", dim)
        hidden = _check_int("hidden", hidden)
        self.scale = _check_number("scale", scale, 0.0)
        self.seed = _check_int("seed", seed, 0)
        rng = np.random.default_rng(_seed_from(self.seed, 6113))
        self._w1 = rng.standard_normal((self.dim, hidden)) / np.sqrt(self.dim)
        self._b1 = 0.5 * rng.standard_normal(hidden)
        self._w2 = rng.standard_normal(hidden)
        raw = self._raw(rng.standard_normal((20_000, self.dim)))
        self._shift, self._norm = raw.mean(), raw.std()

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self._w1 + self._b1) @ self._w2

    def __call__(self, responses) -> np.ndarray:
        """Gold reward of responses ``(..., dim)``: ``(...)``."""
        x = _float_array(responses, "responses")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"responses must have shape (..., {self.dim}), got {x.shape}")
        return self.scale * (self._raw(x) - self._shift) / self._norm


class BasePolicy:
    """The responses a base policy writes: ``dim`` features from a two-component mixture.

    With probability ``1 - ood_share`` a response is in distribution, ``N(0, I)``; with
    probability ``ood_share`` it is out of distribution, ``N(0, ood_scale^2 I)`` - unusual
    responses, far from where preference data are plentiful.
    """

    def __init__(self, dim: int = 8, ood_share: float = 0.05, ood_scale: float = 3.0):
        self.dim = _check_int("dim", dim)
        self.ood_share = _check_number("ood_share", ood_share, 0.0, 1.0, low_open=False)
        self.ood_scale = _check_number("ood_scale", ood_scale, 0.0)

    def sample(self, shape, rng: np.random.Generator, ood_share: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Responses ``(*shape, dim)`` (float32) and whether each is out of distribution
        ``(*shape)``; ``ood_share`` overrides the policy's share (e.g. for training data)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        for s in shape:
            _check_int("shape", s)
        share = self.ood_share if ood_share is None else _check_number(
            "ood_share", ood_share, 0.0, 1.0, low_open=False)
        ood = rng.uniform(size=shape) < share
        x = rng.standard_normal(shape + (self.dim,))
        x = np.where(ood[..., None], self.ood_scale * x, x)
        return x.astype(np.float32), ood


def preference_data(gold: GoldReward, policy: BasePolicy, n_pairs: int, rng: np.random.Generator,
                    ood_share: float) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``n_pairs`` pairs of base-policy responses (out-of-distribution share ``ood_share``) and
    a Bradley-Terry preference for each, drawn from the gold reward: response 1 is preferred
    with probability ``sigmoid(gold(x_1) - gold(x_0))``.

    Returns pairs ``(n, 2, dim)``, the index of the preferred response ``(n,)`` (0 or 1) and the
    gold rewards ``(n, 2)``.
    """
    n_pairs = _check_int("n_pairs", n_pairs)
    if gold.dim != policy.dim:
        raise ValueError(f"gold reward (dim {gold.dim}) and policy (dim {policy.dim}) disagree")
    x, _ = policy.sample((n_pairs, 2), rng, ood_share=ood_share)
    g = gold(x)
    p_second = 1.0 / (1.0 + np.exp(-(g[:, 1] - g[:, 0])))
    preferred = (rng.uniform(size=n_pairs) < p_second).astype(np.int64)
    return torch.as_tensor(x), torch.as_tensor(preferred), g


# --- C11: the reward model ------------------------------------------------------------------


class PreferenceNet(nn.Module):
    """A Bradley-Terry reward model: a ReLU MLP ``body`` and a one-output linear ``head`` without
    bias (rewards are identified only up to a constant).

    It reads pairs ``(B, 2, dim)`` and returns both rewards ``(B, 2)`` - the two "logits" of
    which response is preferred - or single responses ``(B, dim)`` and returns ``(B, 1)``: the
    two forms laplace-torch's ``reward_modeling`` likelihood uses for fitting and prediction.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.dim = _check_int("dim", dim)
        layers, width = [], self.dim
        for h in _check_hidden(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 3:
            return self.head(self.body(z)).squeeze(-1)
        return self.head(self.body(z))

    @torch.no_grad()
    def reward(self, responses: torch.Tensor) -> torch.Tensor:
        """The MAP reward ``(B,)`` of responses ``(B, dim)``."""
        return self(responses)[:, 0]


@dataclass(frozen=True)
class RewardModelConfig:
    """The proxy reward model and its training: full-batch Adam on the Bradley-Terry negative
    log-likelihood with coupled weight decay (a Gaussian prior: the result is a MAP).

    The weight decay was chosen by the held-out Bradley-Terry NLL of the reward model alone
    (4000 training pairs, 4000 held-out; the gold reward's own NLL is 0.37): 1e-4 overfits
    (held-out NLL 1.11 after 400 steps, rewards spread 3x wider than the gold's), 1e-3 too
    (0.62); 1e-2 reaches 0.40 with 91% held-out ranking accuracy and has converged by 200 steps.
    """

    hidden: tuple[int, ...] = (64, 64)
    steps: int = 200
    lr: float = 1e-2
    weight_decay: float = 1e-2

    def __post_init__(self):
        _check_hidden(self.hidden, kinds=(tuple,))
        _check_int("steps", self.steps)
        _check_number("lr", self.lr, 0.0)
        _check_number("weight_decay", self.weight_decay, 0.0, low_open=False)


def _check_pairs(pairs, preferred) -> None:
    if not isinstance(pairs, torch.Tensor) or not isinstance(preferred, torch.Tensor):
        raise TypeError("pairs and preferred must be torch tensors")
    if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
        raise ValueError(f"pairs must be a float tensor of shape (n, 2, dim), got "
                         f"{tuple(pairs.shape)}")
    if pairs.shape[0] == 0:
        raise ValueError("pairs is empty")
    if preferred.shape != (pairs.shape[0],):
        raise ValueError(f"preferred must have shape ({pairs.shape[0]},), got "
                         f"{tuple(preferred.shape)}")


def train_reward_model(pairs: torch.Tensor, preferred: torch.Tensor,
                       config: RewardModelConfig = RewardModelConfig(), seed: int = 0
                       ) -> PreferenceNet:
    """A :class:`PreferenceNet` trained on preference ``pairs`` ``(n, 2, dim)`` with the index of
    the preferred response ``(n,)``; the same seed gives the same network."""
    _check_pairs(pairs, preferred)
    seed = _check_int("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_from(seed, 31))
        model = PreferenceNet(pairs.shape[2], config.hidden)
    x, y = pairs.to(torch.get_default_dtype()), preferred.long()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    model.train()
    for _ in range(config.steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    return model


@torch.no_grad()
def pairwise_accuracy(model: PreferenceNet, pairs: torch.Tensor, gold_pairs) -> float:
    """Share of pairs whose gold-better response the model scores higher (ties in gold are
    left out)."""
    g = _float_array(gold_pairs, "gold_pairs", 2)
    _check_pairs(pairs, torch.zeros(g.shape[0]))
    if g.shape[1] != 2:
        raise ValueError(f"gold_pairs must have shape (n, 2), got {g.shape}")
    r = model(pairs.to(torch.get_default_dtype())).double().numpy()
    keep = g[:, 0] != g[:, 1]
    return float(np.mean((r[keep, 1] > r[keep, 0]) == (g[keep, 1] > g[keep, 0])))


# --- C11: best-of-n -------------------------------------------------------------------------


def kl_best_of_n(n) -> np.ndarray | float:
    """KL(best-of-n || base) = log n - (n - 1) / n, in nats (for continuous scores)."""
    arr = np.asarray(n, dtype=float)
    if arr.size == 0 or not np.isfinite(arr).all() or (arr < 1).any() \
            or (arr != np.round(arr)).any():
        raise ValueError(f"n must be integer(s) >= 1, got {n!r}")
    kl = np.log(arr) - (arr - 1) / arr
    return float(kl) if kl.ndim == 0 else kl


def bon_weights(n_candidates: int, n: int) -> np.ndarray:
    """Probability ``(N,)`` that the candidate of ascending score rank ``i`` (0-based) is the best
    of a uniformly random ``n``-subset of ``N`` candidates: ``C(i, n - 1) / C(N, n)``."""
    big_n = _check_int("n_candidates", n_candidates)
    n = _check_int("n", n)
    if n > big_n:
        raise ValueError(f"n ({n}) exceeds n_candidates ({big_n})")
    i = np.arange(big_n)
    w = np.zeros(big_n)
    ok = i >= n - 1
    log_c = lambda a, b: gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)  # noqa: E731
    w[ok] = np.exp(log_c(i[ok], n - 1) - log_c(big_n, n))
    return w / w.sum()  # exact up to rounding; renormalised


def pessimistic_scores(mean, std, k: float = K_PESSIMISM) -> np.ndarray:
    """The pessimistic reward ``mean - k std`` (``k >= 0``)."""
    k = _check_number("k", k, 0.0, low_open=False)
    m, s = _float_array(mean, "mean"), _float_array(std, "std")
    if m.shape != s.shape:
        raise ValueError(f"mean and std must have the same shape, got {m.shape} and {s.shape}")
    if (s < 0).any():
        raise ValueError("std must be non-negative")
    return m - k * s


def best_of_n(scores, values: dict, ns) -> dict[str, np.ndarray]:
    """Expected value of each quantity at the best-of-n choice, per prompt and ``n``.

    ``scores`` ``(prompts, N)``: the score that picks the best of ``n`` candidates; ``values``:
    ``{name: (prompts, N)}`` quantities of each candidate (gold reward, proxy reward, whether it
    is out of distribution...); ``ns``: the values of ``n`` (each ``1 <= n <= N``).  Returns
    ``{name: (prompts, len(ns))}``: for each prompt, the expectation over a uniformly random
    ``n``-subset of its ``N`` candidates of the quantity at the subset's highest score.
    """
    s = _float_array(scores, "scores", 2)
    if not isinstance(values, dict) or not values:
        raise ValueError("values must be a non-empty dict of (prompts, N) arrays")
    ns = [_check_int("n", n) for n in (ns if isinstance(ns, (list, tuple, np.ndarray))
                                        else [ns])]
    if not ns:
        raise ValueError("ns is empty")
    big_n = s.shape[1]
    weights = np.stack([bon_weights(big_n, n) for n in ns], axis=1)     # (N, len(ns))
    order = np.argsort(s, axis=1, kind="stable")
    out = {}
    for name, v in values.items():
        arr = _float_array(v, f"values[{name!r}]")
        if arr.shape != s.shape:
            raise ValueError(f"values[{name!r}] must have the shape of scores {s.shape}, got "
                             f"{arr.shape}")
        out[name] = np.take_along_axis(arr, order, axis=1) @ weights
    return out


def powers_of_two(max_n: int) -> tuple[int, ...]:
    """1, 2, 4, ..., max_n (``max_n`` a power of two)."""
    max_n = _check_int("max_n", max_n)
    if max_n & (max_n - 1):
        raise ValueError(f"max_n must be a power of two, got {max_n}")
    return tuple(2 ** j for j in range(int(math.log2(max_n)) + 1))


# --- C11: one replicate ---------------------------------------------------------------------


@dataclass(frozen=True)
class OveroptimisationRecipe:
    """Sizes of C11's experiment at one scale.  ``ood_share`` is the base policy's share of
    out-of-distribution responses at best-of-n time; ``train_ood_share`` their share in the
    reward model's preference data (rare)."""

    n_pairs: int = 4000
    n_heldout: int = 2000
    n_prompts: int = 1000
    n_candidates: int = 512
    max_n: int = 256
    dim: int = 8
    gold_hidden: int = 32
    gold_scale: float = 2.0
    ood_share: float = 0.05
    ood_scale: float = 3.0
    train_ood_share: float = 0.005
    reward_model: RewardModelConfig = RewardModelConfig()
    posterior: PreferencePosteriorConfig = PreferencePosteriorConfig()

    def __post_init__(self):
        for name in ("n_pairs", "n_heldout", "n_candidates", "dim", "gold_hidden"):
            _check_int(name, getattr(self, name))
        _check_int("n_prompts", self.n_prompts, 2)
        powers_of_two(self.max_n)
        if self.max_n > self.n_candidates:
            raise ValueError(f"max_n ({self.max_n}) exceeds n_candidates ({self.n_candidates})")
        _check_number("train_ood_share", self.train_ood_share, 0.0, 1.0, low_open=False)

    @property
    def ns(self) -> tuple[int, ...]:
        return powers_of_two(self.max_n)

    def gold(self) -> GoldReward:
        return GoldReward(self.dim, self.gold_hidden, self.gold_scale, GOLD_SEED)

    def policy(self) -> BasePolicy:
        return BasePolicy(self.dim, self.ood_share, self.ood_scale)


@dataclass(frozen=True)
class C11Replicate:
    """One seed of C11: per prompt and ``n`` (``ns``), for each method of :data:`METHODS`, the
    expected gold reward, MAP proxy reward and out-of-distribution indicator of the best-of-n
    choice (``(n_prompts, len(ns))`` arrays).  The proxy is shifted by one constant so that its
    mean over in-distribution candidates equals the gold reward's (Bradley-Terry rewards are
    identified only up to a constant)."""

    seed: int
    k: float
    ns: tuple[int, ...]
    gold: dict
    proxy: dict
    ood: dict
    base_gold: float                # mean gold reward of the base policy's candidates
    heldout_accuracy: float         # share of held-out pairs ranked as the gold reward ranks them
    prior_precision: float
    components: pd.DataFrame        # in- vs out-of-distribution candidates
    seconds: float = field(default=0.0, compare=False)


def run_c11(recipe: OveroptimisationRecipe, seed: int, k: float = K_PESSIMISM,
            threads: int | None = 1) -> C11Replicate:
    """Train the proxy reward model on fresh preference data, fit its Laplace posterior, and run
    best-of-n by the MAP reward and by ``mean - k std`` on ``recipe.n_prompts`` prompts."""
    if not isinstance(recipe, OveroptimisationRecipe):
        raise TypeError(f"recipe must be an OveroptimisationRecipe, got {type(recipe).__name__}")
    seed = _check_int("seed", seed, 0)
    k = _check_number("k", k, 0.0, low_open=False)
    start = time.perf_counter()
    with torch_threads(_check_threads(threads)):
        gold, policy = recipe.gold(), recipe.policy()
        rng = np.random.default_rng(_seed_from(seed, 11))
        pairs, preferred, _ = preference_data(gold, policy, recipe.n_pairs, rng,
                                              recipe.train_ood_share)
        held_pairs, _, held_gold = preference_data(gold, policy, recipe.n_heldout, rng,
                                                   recipe.train_ood_share)
        model = train_reward_model(pairs, preferred, recipe.reward_model, seed)
        loader = preference_loader(pairs.to(torch.get_default_dtype()), preferred,
                                   batch_size=recipe.posterior.fit_batch)
        posterior = PreferencePosterior(model, recipe.posterior).fit(loader)

        x, ood = policy.sample((recipe.n_prompts, recipe.n_candidates), rng)
        g = gold(x)
        flat = torch.as_tensor(x.reshape(-1, recipe.dim), dtype=torch.get_default_dtype())
        mean, var = posterior.predictive(flat)
        mean = mean.double().numpy().reshape(g.shape)
        std = var.double().sqrt().numpy().reshape(g.shape)
        proxy = mean + (g[~ood].mean() - mean[~ood].mean())
        scores = {"MAP": mean, "pessimistic": pessimistic_scores(mean, std, k)}
        values = {"gold": g, "proxy": proxy, "ood": ood.astype(float)}
        chosen = {m: best_of_n(scores[m], values, recipe.ns) for m in METHODS}
        components = _component_table(g, proxy, std, ood, rng)
        accuracy = pairwise_accuracy(model, held_pairs, held_gold)
    return C11Replicate(
        seed=seed, k=k, ns=recipe.ns,
        gold={m: chosen[m]["gold"] for m in METHODS},
        proxy={m: chosen[m]["proxy"] for m in METHODS},
        ood={m: chosen[m]["ood"] for m in METHODS},
        base_gold=float(g.mean()), heldout_accuracy=accuracy,
        prior_precision=float(posterior.prior_precision.mean()), components=components,
        seconds=time.perf_counter() - start)


def _component_table(gold, proxy, std, ood, rng, max_points: int = 20_000) -> pd.DataFrame:
    """In- and out-of-distribution candidates: count, mean gold and proxy reward, mean posterior
    std, RMS proxy error and the Spearman correlation of proxy with gold."""
    rows = []
    for name, mask in (("in distribution", ~ood), ("out of distribution", ood)):
        g, p, s = gold[mask], proxy[mask], std[mask]
        if g.size == 0:
            continue
        pick = rng.choice(g.size, size=min(g.size, max_points), replace=False)
        rows.append({"component": name, "candidates": int(g.size), "gold": g.mean(),
                     "proxy": p.mean(), "posterior_std": s.mean(),
                     "rms_error": float(np.sqrt(np.mean((p - g) ** 2))),
                     "spearman": metrics.spearman(p[pick], g[pick]) if g.size >= 3
                     else float("nan")})
    return pd.DataFrame(rows)


def _check_replicates(reps, kind) -> list:
    reps = [reps] if isinstance(reps, kind) else list(reps)
    if not reps:
        raise ValueError("no replicates given")
    for r in reps:
        if not isinstance(r, kind):
            raise TypeError(f"expected {kind.__name__} objects, got {type(r).__name__}")
    return reps


def best_of_n_table(reps) -> pd.DataFrame:
    """Tidy table, one row per (seed, method, n): KL from the base policy, and the mean over
    prompts of the chosen response's gold reward, proxy reward and out-of-distribution share."""
    rows = []
    for r in _check_replicates(reps, C11Replicate):
        for m in METHODS:
            label = "MAP" if m == "MAP" else f"mean - {r.k:g} std"
            for j, n in enumerate(r.ns):
                rows.append({"seed": r.seed, "method": label, "n": n,
                             "kl": kl_best_of_n(n), "gold": r.gold[m][:, j].mean(),
                             "proxy": r.proxy[m][:, j].mean(),
                             "ood_share": r.ood[m][:, j].mean()})
    return pd.DataFrame(rows)


def c11_statistics(rep: C11Replicate, n_resamples: int = 2000) -> dict:
    """Claim C11 at the largest n: mean over prompts of gold(best-of-n by mean - k std) -
    gold(best-of-n by MAP), with its paired percentile-bootstrap 95% interval over prompts."""
    if not isinstance(rep, C11Replicate):
        raise TypeError(f"rep must be a C11Replicate, got {type(rep).__name__}")
    diff = rep.gold["pessimistic"][:, -1] - rep.gold["MAP"][:, -1]
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=rep.seed, n_resamples=n_resamples)
    return {"gold_difference": (float(diff.mean()), low, high), "ci_low_gold_difference": low}


# --- C12: answers, grading, REINFORCE -------------------------------------------------------


GRADERS = {"binary": None, "t=0.75": 0.75}  # name -> threshold (None: right 1, otherwise 0)
# Supplementary grader, not part of claim C12: binary, and an "unknown" answer scores 0 whatever
# the truth - the benchmark grading of Kalai et al. (2025), under which abstaining never pays.
BENCHMARK = "benchmark"


def _check_world(world) -> FactWorld:
    if not isinstance(world, FactWorld):
        raise TypeError(f"world must be a FactWorld, got {type(world).__name__}")
    return world


def _check_entities(entities, world: FactWorld) -> np.ndarray:
    e = np.asarray(entities)
    if e.ndim != 1 or e.size == 0:
        raise ValueError("entities must be a non-empty one-dimensional array of indices")
    if not np.issubdtype(e.dtype, np.integer) or e.min() < 0 or e.max() >= world.n_entities:
        raise ValueError(f"entities must be integer indices in 0..{world.n_entities - 1}")
    return e.astype(np.int64)


def truth_index(world: FactWorld, entities) -> np.ndarray:
    """Position of each entity's true answer among ``world.answer_tokens``."""
    e = _check_entities(entities, _check_world(world))
    return np.searchsorted(world.answer_tokens, world.truth[e])


def answer_logits(model: CausalLM, world: FactWorld, entities) -> torch.Tensor:
    """The model's logits over the answer tokens ``(q, n_values + 1)`` after each question
    (differentiable; softmax gives the renormalised answer distribution)."""
    if not isinstance(model, CausalLM):
        raise TypeError(f"model must be a CausalLM, got {type(model).__name__}")
    e = _check_entities(entities, _check_world(world))
    answers = torch.as_tensor(world.answer_tokens, dtype=torch.long)
    return model(world.prompts(e))[:, -1, :][:, answers]


@torch.no_grad()
def answer_probs(model: CausalLM, world: FactWorld, entities) -> np.ndarray:
    """The answer distribution ``(q, n_values + 1)``, float64, rows summing to 1."""
    model.eval()
    p = torch.softmax(answer_logits(model, world, entities).double(), dim=-1).numpy()
    return p / p.sum(axis=1, keepdims=True)


def grade(outcomes, threshold: float | None = None, said_unknown=None) -> np.ndarray:
    """Reward of each graded answer (``"right"``, ``"unknown"``, ``"wrong"``, as
    :func:`bayes_at_scale.facts.answer_outcome` grades them).

    ``threshold=None``: the binary grader, 1 for right and 0 otherwise.  A threshold ``t`` in
    [0, 1): Kalai et al.'s grading, 1 right, 0 unknown, ``-t / (1 - t)`` wrong.
    ``said_unknown`` (optional, booleans like ``outcomes``): where True the answer was the
    unknown token and scores 0 whatever its outcome, so "unknown" never earns credit - not even
    for a fact that is truly unknown (with ``threshold=None``: the :data:`BENCHMARK` grader).
    """
    if threshold is not None:
        threshold = _check_threshold(threshold, upper_closed=False)
    o = np.asarray(outcomes, dtype=object)
    if o.ndim != 1 or o.size == 0:
        raise ValueError(f"outcomes must be a non-empty one-dimensional array, got shape "
                         f"{o.shape}")
    bad = set(o.tolist()) - {"right", "unknown", "wrong"}
    if bad:
        raise ValueError(f"outcomes must be 'right', 'unknown' or 'wrong', got "
                         f"{sorted(map(repr, bad))}")
    if threshold is None:
        score = (o == "right").astype(float)
    else:
        score = np.select([o == "right", o == "wrong"], [1.0, -threshold / (1 - threshold)], 0.0)
    if said_unknown is not None:
        said = np.asarray(said_unknown)
        if said.shape != o.shape or said.dtype != bool:
            raise ValueError(f"said_unknown must be booleans of shape {o.shape}, got "
                             f"{said.dtype} of shape {said.shape}")
        score = np.where(said, 0.0, score)
    return score


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor
                   ) -> torch.Tensor:
    """REINFORCE surrogate with a batch-mean baseline: ``-mean((r - mean r) log pi(a))``.

    ``logits`` ``(B, A)`` of the policy, ``actions`` ``(B,)`` sampled from it, ``rewards``
    ``(B,)``; minimising it follows the policy gradient of the expected reward.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be a tensor of shape (B, actions >= 2), got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    b = logits.shape[0]
    actions = torch.as_tensor(actions)
    rewards = torch.as_tensor(rewards, dtype=logits.dtype)
    if actions.shape != (b,) or actions.is_floating_point():
        raise ValueError(f"actions must be integer indices of shape ({b},), got "
                         f"{tuple(actions.shape)}")
    if actions.min() < 0 or actions.max() >= logits.shape[1]:
        raise ValueError(f"actions must lie in 0..{logits.shape[1] - 1}")
    if rewards.shape != (b,) or not torch.isfinite(rewards).all():
        raise ValueError(f"rewards must be finite, of shape ({b},), got {tuple(rewards.shape)}")
    logp = torch.log_softmax(logits, dim=-1)[torch.arange(b), actions.long()]
    advantage = (rewards - rewards.mean()).detach()
    return -(advantage * logp).mean()


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE fine-tuning: ``steps`` Adam steps at learning rate ``lr``, each on a batch of
    ``batch_size`` fresh queries from the mention distribution, one sampled answer per query.

    ``lr = 1e-4``: at 1e-3 the binary fine-tuning *lowered* its own objective (expected binary
    reward on held-out queries 0.847 -> 0.816, seed 0 of the quick world): Adam's first steps move
    every weight of the sharp pretrained model by about ``lr`` whatever the gradient's size, and
    the sparse binary signal cannot undo that.  At 1e-4 both graders' fine-tunings raise their
    own expected reward (see :attr:`AnswerEvaluation.expected_reward`).
    """

    steps: int = 200
    batch_size: int = 256
    lr: float = 1e-4

    def __post_init__(self):
        _check_int("steps", self.steps)
        _check_int("batch_size", self.batch_size, 2)
        _check_number("lr", self.lr, 0.0)


def reinforce(model: CausalLM, world: FactWorld, config: ReinforceConfig = ReinforceConfig(),
              threshold: float | None = None, seed: int = 0, credit_unknown: bool = True
              ) -> tuple[CausalLM, pd.DataFrame]:
    """A copy of ``model`` fine-tuned by REINFORCE against :func:`grade` (binary when
    ``threshold`` is None; ``credit_unknown=False`` scores every "unknown" answer 0, the
    :data:`BENCHMARK` grader with ``threshold=None``); ``model`` itself is left untouched.
    Returns the fine-tuned model and its history (step, mean reward, share of sampled answers
    that were "unknown").  The same seed draws the same queries whatever the grader."""
    if not isinstance(model, CausalLM):
        raise TypeError(f"model must be a CausalLM, got {type(model).__name__}")
    _check_world(world)
    if not isinstance(config, ReinforceConfig):
        raise TypeError(f"config must be a ReinforceConfig, got {type(config).__name__}")
    if threshold is not None:
        threshold = _check_threshold(threshold, upper_closed=False)
    seed = _check_int("seed", seed, 0)
    tuned = copy.deepcopy(model)
    queries = world.sample_queries(config.steps * config.batch_size,
                                   seed=_seed_from(seed, 12, 2)).reshape(config.steps, -1)
    generator = torch.Generator().manual_seed(_seed_from(seed, 12, 3))
    optimiser = torch.optim.Adam(tuned.parameters(), lr=config.lr)
    unknown = len(world.answer_tokens) - 1
    history = []
    tuned.train()
    for step, batch in enumerate(queries):
        logits = answer_logits(tuned, world, batch)
        with torch.no_grad():
            actions = torch.multinomial(torch.softmax(logits, dim=-1), 1,
                                        generator=generator)[:, 0]
        outcomes = answer_outcome(world.answer_tokens[actions.numpy()], world, batch)
        said_unknown = None if credit_unknown else (actions == unknown).numpy()
        rewards = grade(outcomes, threshold, said_unknown)
        loss = reinforce_loss(logits, actions, torch.as_tensor(rewards))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append({"step": step + 1, "reward": rewards.mean(),
                        "unknown_share": float((actions == unknown).double().mean())})
    tuned.eval()
    return tuned, pd.DataFrame(history)


# --- C12: calibration and abstention --------------------------------------------------------


@dataclass(frozen=True)
class AnswerEvaluation:
    """A model's answers to ``entities``: the answer distribution ``probs`` ``(q, A)``, the
    position of the truth ``labels`` ``(q,)``, and summary numbers.  The model's *answer* is its
    most probable answer token (as in chapter 4); ``unknown_rate`` is the share of answers that
    are "unknown", ``p_unknown`` the mean probability of "unknown" (the rate at which a sampled
    answer is "unknown").  ``expected_reward`` maps each grader of :data:`GRADERS` to the mean
    reward of an answer *sampled* from the answer distribution: what REINFORCE maximises
    (and :data:`BENCHMARK` to the same under the supplementary grader)."""

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
        """Share of answers that are "unknown" about a fact that has a value: the part of
        ``unknown_rate`` that is an abstention rather than the right answer."""
        unknown = self.probs.shape[1] - 1
        return float(np.mean((self.probs.argmax(axis=1) == unknown) & (self.labels != unknown)))


def evaluate_answers(model: CausalLM, world: FactWorld, entities, n_bins: int = 15
                     ) -> AnswerEvaluation:
    """Calibration and abstention of ``model`` on the questions about ``entities``."""
    e = _check_entities(entities, _check_world(world))
    p = answer_probs(model, world, e)
    labels = truth_index(world, e)
    top = p.argmax(axis=1)
    answers = world.answer_tokens[top]
    outcomes = answer_outcome(answers, world, e)
    unknown = len(world.answer_tokens) - 1
    # the outcome of every possible answer to every question, as answer_outcome grades it
    columns = np.arange(p.shape[1])[None, :]
    every = np.where(columns == labels[:, None], "right",
                     np.where(columns == unknown, "unknown", "wrong"))
    expected = {name: float((p * grade(every.ravel(), t).reshape(p.shape)).sum(axis=1).mean())
                for name, t in GRADERS.items()}
    said = np.broadcast_to(columns == unknown, p.shape).ravel()
    expected[BENCHMARK] = float((p * grade(every.ravel(), None, said).reshape(p.shape))
                                .sum(axis=1).mean())
    return AnswerEvaluation(
        entities=e, probs=p, labels=labels, ece=metrics.ece(p, labels, n_bins=n_bins),
        unknown_rate=float(np.mean(top == unknown)), p_unknown=float(p[:, unknown].mean()),
        accuracy=float(np.mean(top == labels)), confidence=float(p.max(axis=1).mean()),
        hallucination=float(np.mean((outcomes == "wrong") & (top != unknown))),
        graded_score=graded_score(outcomes, 0.75), expected_reward=expected)


def reliability_table(probs, labels, n_bins: int = 15) -> pd.DataFrame:
    """Reliability-diagram data: top-label confidence in ``n_bins`` equal-width bins of [0, 1]
    (as :func:`bayes_at_scale.metrics.ece` bins it), with each non-empty bin's mean confidence,
    accuracy, count and share of the queries."""
    p = metrics.check_probabilities(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, classes), got {p.shape}")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer) \
            or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be {p.shape[0]} integer classes in 0..{p.shape[1] - 1}")
    n_bins = _check_int("n_bins", n_bins)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            rows.append({"bin": b, "low": edges[b], "high": edges[b + 1],
                         "confidence": confidence[mask].mean(), "accuracy": correct[mask].mean(),
                         "count": int(mask.sum()), "share": float(mask.mean())})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class C12Replicate:
    """One seed of C12: the pretrained model's answers (``before``), the answers after REINFORCE
    against each grader of :data:`GRADERS` (and :data:`BENCHMARK` if asked; ``after``), and the
    fine-tuning histories."""

    seed: int
    before: AnswerEvaluation
    after: dict
    history: pd.DataFrame
    seconds: float = field(default=0.0, compare=False)


def pretrained_fact_model(settings: Settings, seed: int, threads: int | None = 1
                          ) -> tuple[FactWorld, CausalLM]:
    """Chapter 4's fact world and its MAP-trained fact model for ``seed``
    (:func:`bayes_at_scale.hallucination.train_fact_model`), trained on ``threads`` threads."""
    from .facts import fact_world
    from .hallucination import train_fact_model

    seed = _check_int("seed", seed, 0)
    world = fact_world(settings, seed)
    with torch_threads(_check_threads(threads)):
        model = train_fact_model(world, settings, seed)
    return world, model


def run_c12(world: FactWorld, model: CausalLM, config: ReinforceConfig, seed: int,
            n_queries: int = 4000, threads: int | None = 1, benchmark: bool = False
            ) -> C12Replicate:
    """Evaluate ``model`` (chapter 4's pretrained fact model) on ``n_queries`` fresh queries from
    the mention distribution, fine-tune a copy by REINFORCE against each grader, and evaluate
    each copy on the same queries.  ``benchmark``: also fine-tune against the supplementary
    :data:`BENCHMARK` grader (on the same queries and draws as the binary one), as
    ``after[BENCHMARK]``."""
    _check_world(world)
    if not isinstance(model, CausalLM):
        raise TypeError(f"model must be a CausalLM, got {type(model).__name__}")
    seed = _check_int("seed", seed, 0)
    n_queries = _check_int("n_queries", n_queries)
    start = time.perf_counter()
    with torch_threads(_check_threads(threads)):
        queries = world.sample_queries(n_queries, seed=_seed_from(seed, 12, 1))
        before = evaluate_answers(model, world, queries)
        after, histories = {}, []
        runs = [(name, threshold, True) for name, threshold in GRADERS.items()]
        if benchmark:
            runs.append((BENCHMARK, None, False))
        for name, threshold, credit_unknown in runs:
            tuned, history = reinforce(model, world, config, threshold, seed, credit_unknown)
            after[name] = evaluate_answers(tuned, world, queries)
            histories.append(history.assign(grader=name))
    return C12Replicate(seed, before, after, pd.concat(histories, ignore_index=True),
                        seconds=time.perf_counter() - start)


def c12_statistics(before: AnswerEvaluation, after: AnswerEvaluation) -> dict:
    """Claim C12: ECE after / ECE before, and the relative drop of the unknown rate,
    (before - after) / before."""
    if not isinstance(before, AnswerEvaluation) or not isinstance(after, AnswerEvaluation):
        raise TypeError("before and after must be AnswerEvaluation objects")
    if before.ece <= 0:
        raise ValueError("the ECE before fine-tuning is 0: the ratio is undefined")
    if before.unknown_rate <= 0:
        raise ValueError("the model never answered 'unknown' before fine-tuning: the drop is "
                         "undefined")
    return {"ece_ratio": after.ece / before.ece,
            "unknown_rate_drop": (before.unknown_rate - after.unknown_rate) / before.unknown_rate}


def _stages(rep: C12Replicate) -> dict:
    return {"before": rep.before, **{f"after {name}": ev for name, ev in rep.after.items()}}


def confidence_table(reps) -> pd.DataFrame:
    """One row per (seed, stage): ECE, unknown rate, abstention rate, mean P(unknown), accuracy,
    mean top probability, hallucination rate and the t = 0.75 graded score of the answers, and
    the expected reward of a sampled answer under each grader (``expected_<grader>``)."""
    rows = []
    for r in _check_replicates(reps, C12Replicate):
        for stage, ev in _stages(r).items():
            rows.append({"seed": r.seed, "stage": stage, "ece": ev.ece,
                         "unknown_rate": ev.unknown_rate, "abstention": ev.abstention_rate,
                         "p_unknown": ev.p_unknown,
                         "accuracy": ev.accuracy, "confidence": ev.confidence,
                         "hallucination": ev.hallucination, "graded_score": ev.graded_score,
                         **{f"expected_{g}": v for g, v in ev.expected_reward.items()}})
    return pd.DataFrame(rows)


def reliability_diagram_table(reps, n_bins: int = 15) -> pd.DataFrame:
    """:func:`reliability_table` of every (seed, stage), stacked."""
    frames = [reliability_table(ev.probs, ev.labels, n_bins).assign(seed=r.seed, stage=stage)
              for r in _check_replicates(reps, C12Replicate) for stage, ev in _stages(r).items()]
    return pd.concat(frames, ignore_index=True)


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignmentRecipe:
    """Chapter 6 at one scale: seeds, C11's sizes, C12's fine-tuning and query count."""

    n_seeds: int
    overoptimisation: OveroptimisationRecipe
    reinforce: ReinforceConfig
    n_queries: int


RECIPES = {
    "quick": AlignmentRecipe(n_seeds=2, overoptimisation=OveroptimisationRecipe(),
                             reinforce=ReinforceConfig(), n_queries=4000),
    "full": AlignmentRecipe(
        n_seeds=5,
        overoptimisation=OveroptimisationRecipe(
            n_pairs=20_000, n_heldout=5000, n_prompts=5000, n_candidates=1024, max_n=512,
            reward_model=RewardModelConfig(steps=400)),
        reinforce=ReinforceConfig(steps=600), n_queries=20_000),
}


def recipe(settings: Settings) -> AlignmentRecipe:
    """The recipe of ``settings.scale``."""
    return RECIPES[settings.scale]

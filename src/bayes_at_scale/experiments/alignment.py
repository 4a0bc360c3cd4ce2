"""Chapter 6's experiments: Bayesian reward models, best-of-n, and what reward
optimisation does to a model's confidence (claims C11 and C12).

**C11 - reward over-optimisation** (the synthetic gold-reward set-up of Gao et al. 2023,
with the Laplace reward model of Yang et al. 2024; Coste et al. 2024 used ensembles).
In the preference world of :mod:`bayes_at_scale.worlds.preferences`, a *proxy* reward
model (:class:`~bayes_at_scale.core.models.PreferenceNet`) is trained on Bradley-Terry
preferences over pairs of responses in which out-of-distribution responses are rare, and
gets a last-layer Laplace posterior
(:class:`~bayes_at_scale.core.reward_posteriors.PreferencePosterior`, laplace-torch's
``reward_modeling`` likelihood).  Best-of-n keeps the response of highest score - the
MAP reward, or the pessimistic ``mean - k std`` with ``k`` fixed in advance
(:data:`K_PESSIMISM`) - and we record the gold and proxy reward of the kept response,
whether it is out of distribution, and ``KL(best-of-n || base)``, exactly in expectation
over the draw.

**C12 - confidence after reward optimisation.**  Chapter 4's fact model
(:func:`bayes_at_scale.worlds.facts.train_fact_model`) answers questions about entities
with a distribution over the answer tokens (the values and "unknown";
:func:`~bayes_at_scale.worlds.preferences.answer_probs`).  We measure its calibration
(:func:`bayes_at_scale.core.metrics.ece` against the truth) and how often its answer -
the most probable answer token, as in chapter 4 - is "unknown", on fresh queries from
the mention distribution.  Then we fine-tune it with REINFORCE (:func:`reinforce`):
sample an answer per query, grade it, and follow the policy gradient with a batch-mean
baseline.  The graders (:data:`~bayes_at_scale.worlds.preferences.GRADERS`) grade as
chapter 4 does ("right" is the true value, or "unknown" for an entity whose fact is
truly unknown): ``binary``, 1 for a right answer and 0 otherwise, so an abstention earns
the same 0 as a wrong value; and ``t=0.75``, Kalai et al.'s +1 right, 0 unknown, -3
wrong, which pays abstaining.  A third grader,
:data:`~bayes_at_scale.worlds.preferences.BENCHMARK`, is a supplementary analysis and
not part of C12's rule: the binary grading of most benchmarks, in which "unknown" never
earns credit - not even for a fact that is truly unknown (Kalai et al. 2025).
``run_c12(..., benchmark=True)`` adds it.

**Round 2.**  C27 (:func:`run_c27`) repeats C11 in a world whose gold reward turns over
away from the preference data (:class:`~bayes_at_scale.worlds.preferences.TurningGold`),
checks that MAP best-of-n over-optimises there before reading the rule, and reports a
reward ensemble (Coste et al. 2024) and an exploratory curve over ``k`` beside it.  C28
(:func:`run_c28`) trains a fact model in a world of ambiguous questions, where many
entities share a name (:data:`~bayes_at_scale.worlds.facts.AMBIGUOUS_FACT_RECIPES`;
C12's memorising model cannot be calibrated by one temperature), temperature-scales it
on held-out queries, checks its calibration, and fine-tunes it by exact KL-regularised
policy gradient against a grader that pays only for a right value, stopping at fixed KL
budgets (:func:`fine_tune_to_budgets`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..core import metrics
from ..core.checks import (
    check_finite_array,
    check_instance,
    check_int,
    check_items,
    check_feature_inputs,
    check_labels,
    check_number,
    check_probabilities,
    check_threads,
    check_threshold,
)
from ..core.models import CausalLM
from ..core.posteriors import PreferencePosteriorConfig
from ..core.reward_posteriors import PreferencePosterior, preference_loader
from ..core.settings import at_scale, derive_seed, torch_threads
from ..core.training import (
    Recipe,
    RewardModelConfig,
    pairwise_accuracy,
    reinforce_loss,
    train_reward_model,
)
from ..worlds.facts import (
    AMBIGUOUS_FACT_RECIPES,
    FACT_RECIPES,
    FactWorld,
    answer_outcome,
    fact_world,
    train_fact_model,
)
from ..worlds.preferences import (
    BENCHMARK,
    GOLD_SEED,
    GRADERS,
    AnswerEvaluation,
    BasePolicy,
    GoldReward,
    TurningGold,
    answer_logits,
    answer_rewards,
    best_of_n,
    evaluate_answers,
    grade,
    kl_best_of_n,
    logits_of_answers,
    pessimistic_scores,
    powers_of_two,
    preference_data,
    truth_index,
)

# k of the pessimistic score mean - k std, fixed before any run.  One posterior standard
# deviation is the conventional lower confidence bound (the 16th percentile of a
# Gaussian): the simplest choice that makes uncertainty count as much as the reward
# scale it is measured in. Yang et al. (2024) penalise by the std with a coefficient
# they vary; tuning k on the outcome would turn claim C11's test into a fit, so k stays
# 1 and is not changed after seeing results.
K_PESSIMISM = 1.0
METHODS = ("MAP", "pessimistic")  # best-of-n by the MAP reward, and by mean - k std


# --- C11: best-of-n with a proxy reward model
# -----------------------------------------------


@dataclass(frozen=True)
class OveroptimisationRecipe:
    """Sizes of C11's experiment at one scale.  ``ood_share`` is the base policy's share
    of out-of-distribution responses at best-of-n time; ``train_ood_share`` their share
    in the reward model's preference data (rare)."""

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
            check_int(name, getattr(self, name))
        check_int("n_prompts", self.n_prompts, 2)
        powers_of_two(self.max_n)
        if self.max_n > self.n_candidates:
            raise ValueError(
                f"max_n ({self.max_n}) exceeds n_candidates ({self.n_candidates})"
            )
        check_number("train_ood_share", self.train_ood_share, 0.0, 1.0, low_open=False)

    @property
    def ns(self) -> tuple[int, ...]:
        return powers_of_two(self.max_n)

    def gold(self) -> GoldReward:
        return GoldReward(self.dim, self.gold_hidden, self.gold_scale, GOLD_SEED)

    def policy(self) -> BasePolicy:
        return BasePolicy(self.dim, self.ood_share, self.ood_scale)


@dataclass(frozen=True)
class C11Replicate:
    """One seed of C11: per prompt and ``n`` (``ns``), for each method of
    :data:`METHODS`, the expected gold reward, MAP proxy reward and out-of-distribution
    indicator of the best-of-n choice (``(n_prompts, len(ns))`` arrays).  The proxy is
    shifted by one constant so that its mean over in-distribution candidates equals the
    gold reward's (Bradley-Terry rewards are identified only up to a constant)."""

    seed: int
    k: float
    ns: tuple[int, ...]
    gold: dict
    proxy: dict
    ood: dict
    base_gold: float  # mean gold reward of the base policy's candidates
    # share of held-out pairs ranked as the gold reward ranks them
    heldout_accuracy: float
    prior_precision: float
    components: pd.DataFrame  # in- vs out-of-distribution candidates
    seconds: float = field(default=0.0, compare=False)


def run_c11(
    recipe: OveroptimisationRecipe,
    seed: int,
    k: float = K_PESSIMISM,
    threads: int | None = 1,
) -> C11Replicate:
    """Train the proxy reward model on fresh preference data, fit its Laplace posterior,
    and run best-of-n by the MAP reward and by ``mean - k std`` on ``recipe.n_prompts``
    prompts."""
    if not isinstance(recipe, OveroptimisationRecipe):
        raise TypeError(
            f"recipe must be an OveroptimisationRecipe, got {type(recipe).__name__}"
        )
    seed = check_int("seed", seed, 0)
    k = check_number("k", k, 0.0, low_open=False)
    start = time.perf_counter()
    with torch_threads(check_threads(threads)):
        gold, policy, rng, data, model, posterior = _world_and_proxy(recipe, seed, 11)
        held_pairs, held_gold = data["held_pairs"], data["held_gold"]
        x, ood, g, mean, std, proxy = _candidates(recipe, gold, policy, posterior, rng)
        scores = {"MAP": mean, "pessimistic": pessimistic_scores(mean, std, k)}
        values = {"gold": g, "proxy": proxy, "ood": ood.astype(float)}
        chosen = {m: best_of_n(scores[m], values, recipe.ns) for m in METHODS}
        components = _component_table(g, proxy, std, ood, rng)
        accuracy = pairwise_accuracy(model, held_pairs, held_gold)
    return C11Replicate(
        seed=seed,
        k=k,
        ns=recipe.ns,
        gold={m: chosen[m]["gold"] for m in METHODS},
        proxy={m: chosen[m]["proxy"] for m in METHODS},
        ood={m: chosen[m]["ood"] for m in METHODS},
        base_gold=float(g.mean()),
        heldout_accuracy=accuracy,
        prior_precision=float(posterior.prior_precision.mean()),
        components=components,
        seconds=time.perf_counter() - start,
    )


def _world_and_proxy(recipe, seed: int, key: int):
    """The gold reward and base policy of ``recipe``, the generator of ``seed``'s draws
    (stream ``key``) and the proxy trained on them with its posterior
    (:func:`_fit_proxy`): how C11's and C27's replicates begin."""
    gold, policy = recipe.gold(), recipe.policy()
    rng = np.random.default_rng(derive_seed(seed, key))
    return (gold, policy, rng, *_fit_proxy(recipe, gold, policy, rng, seed))


def _fit_proxy(
    recipe: OveroptimisationRecipe, gold, policy, rng: np.random.Generator, seed: int
) -> tuple[dict, object, PreferencePosterior]:
    """Preference data (training pairs, then held-out pairs, from ``rng``), the proxy
    reward model trained on them and its fitted Laplace posterior (C11 and C27)."""
    pairs, preferred, _ = preference_data(
        gold, policy, recipe.n_pairs, rng, recipe.train_ood_share
    )
    held_pairs, _, held_gold = preference_data(
        gold, policy, recipe.n_heldout, rng, recipe.train_ood_share
    )
    model = train_reward_model(pairs, preferred, recipe.reward_model, seed)
    loader = preference_loader(
        pairs.to(torch.get_default_dtype()),
        preferred,
        batch_size=recipe.posterior.fit_batch,
    )
    posterior = PreferencePosterior(model, recipe.posterior).fit(loader)
    data = {
        "pairs": pairs,
        "preferred": preferred,
        "held_pairs": held_pairs,
        "held_gold": held_gold,
    }
    return data, model, posterior


def _candidates(
    recipe: OveroptimisationRecipe,
    gold,
    policy,
    posterior: PreferencePosterior,
    rng: np.random.Generator,
) -> tuple:
    """Best-of-n candidates ``(prompts, N, dim)`` from the base policy, whether each is
    out of distribution, their gold reward, posterior mean and std, and the proxy (the
    mean shifted to the gold reward's mean over in-distribution candidates)."""
    x, ood = policy.sample((recipe.n_prompts, recipe.n_candidates), rng)
    g = gold(x)
    flat = torch.as_tensor(x.reshape(-1, recipe.dim), dtype=torch.get_default_dtype())
    mean, var = posterior.predictive(flat)
    mean = mean.double().numpy().reshape(g.shape)
    std = var.double().sqrt().numpy().reshape(g.shape)
    proxy = mean + (g[~ood].mean() - mean[~ood].mean())
    return x, ood, g, mean, std, proxy


def _component_table(
    gold, proxy, std, ood, rng, max_points: int = 20_000
) -> pd.DataFrame:
    """In- and out-of-distribution candidates: count, mean gold and proxy reward, mean
    posterior std, RMS proxy error and the Spearman correlation of proxy with gold."""
    rows = []
    for name, mask in (("in distribution", ~ood), ("out of distribution", ood)):
        g, p, s = gold[mask], proxy[mask], std[mask]
        if g.size == 0:
            continue
        pick = rng.choice(g.size, size=min(g.size, max_points), replace=False)
        rows.append(
            {
                "component": name,
                "candidates": int(g.size),
                "gold": g.mean(),
                "proxy": p.mean(),
                "posterior_std": s.mean(),
                "rms_error": float(np.sqrt(np.mean((p - g) ** 2))),
                "spearman": (
                    metrics.spearman(p[pick], g[pick]) if g.size >= 3 else float("nan")
                ),
            }
        )
    return pd.DataFrame(rows)


def best_of_n_table(reps) -> pd.DataFrame:
    """Tidy table, one row per (seed, method, n): KL from the base policy, and the mean
    over prompts of the chosen response's gold reward, proxy reward and
    out-of-distribution share."""
    series = {"gold": "gold", "proxy": "proxy", "ood_share": "ood"}
    return pd.DataFrame(
        row
        for r in check_items(reps, C11Replicate)
        for row in _best_of_n_rows(
            r,
            {m: "MAP" if m == "MAP" else f"mean - {r.k:g} std" for m in METHODS},
            series,
        )
    )


def _best_of_n_rows(rep, labels: dict[str, str], series: dict[str, str]) -> list[dict]:
    """One row per method of ``labels`` (named by its label) and n of a best-of-n
    replicate: seed, method, n, KL from the base policy and, for each column of
    ``series``, the mean over prompts of the replicate's array of that name."""
    return [
        {
            "seed": rep.seed,
            "method": label,
            "n": n,
            "kl": kl_best_of_n(n),
            **{col: getattr(rep, name)[m][:, j].mean() for col, name in series.items()},
        }
        for m, label in labels.items()
        for j, n in enumerate(rep.ns)
    ]


def c11_statistics(rep: C11Replicate, n_resamples: int = 2000) -> dict:
    """Claim C11 at the largest n: mean over prompts of gold(best-of-n by mean - k std)
    - gold(best-of-n by MAP), with its paired percentile-bootstrap 95% interval over
    prompts."""
    check_instance("rep", rep, C11Replicate)
    value, low, high = _gold_difference(rep, -1, n_resamples)
    return {"gold_difference": (value, low, high), "ci_low_gold_difference": low}


def _gold_difference(rep: C11Replicate, j: int, n_resamples: int) -> tuple:
    """Mean over prompts of gold(by mean - k std) - gold(by MAP) at the ``j``-th n,
    with its paired percentile-bootstrap 95% interval over prompts."""
    diff = rep.gold["pessimistic"][:, j] - rep.gold["MAP"][:, j]
    low, high = metrics.bootstrap_ci(
        np.mean, diff, seed=rep.seed, n_resamples=n_resamples
    )
    return float(diff.mean()), low, high


def gold_difference_table(reps, n_resamples: int = 2000) -> pd.DataFrame:
    """C11's statistic at every n, not only the largest: per seed and n, the KL from the
    base policy and the mean over prompts of gold(best-of-n by mean - k std) -
    gold(best-of-n by MAP), with its paired bootstrap 95% interval over prompts.

    Columns: seed, n, kl, gold_difference, ci_low, ci_high."""
    rows = []
    for r in check_items(reps, C11Replicate):
        for j, n in enumerate(r.ns):
            value, low, high = _gold_difference(r, j, n_resamples)
            rows.append(
                {
                    "seed": r.seed,
                    "n": n,
                    "kl": kl_best_of_n(n),
                    "gold_difference": value,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


# --- C27 (round 2): best-of-n in a world that over-optimises
# --------------------------------

# exploratory: k of mean - k std, beside the rule's k
K_SENSITIVITY = (0.0, 0.5, 1.0, 2.0, 4.0)
# the ensemble (Coste et al.) is not ruled
C27_METHODS = ("MAP", "pessimistic", "ensemble")


@dataclass(frozen=True)
class TurnoverRecipe(OveroptimisationRecipe):
    """C27's sizes: C11's, with the gold reward that turns over away from the preference
    data (:class:`~bayes_at_scale.worlds.preferences.TurningGold`, ``curvature`` and
    ``radius_quantile``), an ensemble of ``n_members`` reward models (the MAP proxy and
    ``n_members - 1`` more, trained from other seeds on the same preferences, as Coste
    et al. 2024 did), and the exploratory pessimism coefficients ``ks``."""

    curvature: float = 0.5
    radius_quantile: float = 0.99
    n_members: int = 5
    ks: tuple[float, ...] = K_SENSITIVITY

    def __post_init__(self):
        super().__post_init__()
        check_number("curvature", self.curvature, 0.0, low_open=False)
        check_number("radius_quantile", self.radius_quantile, 0.0, 1.0)
        check_int("n_members", self.n_members, 2)
        if not isinstance(self.ks, tuple) or not self.ks:
            raise ValueError(f"ks must be a non-empty tuple, got {self.ks!r}")
        for k in self.ks:
            check_number("k", k, 0.0, low_open=False)

    def gold(self) -> TurningGold:
        return TurningGold(
            self.dim,
            self.gold_hidden,
            self.gold_scale,
            GOLD_SEED,
            quantile=self.radius_quantile,
            curvature=self.curvature,
        )


@dataclass(frozen=True)
class C27Replicate:
    """One seed of C27: per prompt and ``n``, the expected gold reward of best-of-n for
    each method of :data:`C27_METHODS` (``gold``) and for ``mean - k std`` at each ``k``
    of the exploratory ``ks`` (``k_gold``: k -> array), each ``(n_prompts, len(ns))``;
    the share of out-of-distribution responses kept (``ood``), and the proxy's held-out
    ranking accuracy."""

    seed: int
    k: float
    ns: tuple[int, ...]
    gold: dict
    ood: dict
    k_gold: dict
    base_gold: float
    heldout_accuracy: float
    seconds: float = field(default=0.0, compare=False)


def ensemble_scores(models, x: torch.Tensor, k: float = K_PESSIMISM) -> np.ndarray:
    """``mean - k std`` over reward ``models`` (each maps ``(B, dim)`` to ``(B, 1)``) of
    their rewards for responses ``x`` ``(B, dim)``, each model's rewards first shifted
    to mean 0 over ``x`` (Bradley-Terry rewards are identified up to a constant per
    model)."""
    k = check_number("k", k, 0.0, low_open=False)
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
    check_feature_inputs(x, "x")
    with torch.no_grad():
        r = torch.stack([m(x).reshape(-1) for m in models]).double().numpy()
    r = r - r.mean(axis=1, keepdims=True)
    return r.mean(axis=0) - k * r.std(axis=0, ddof=1)


def run_c27(
    recipe: TurnoverRecipe, seed: int, k: float = K_PESSIMISM, threads: int | None = 1
) -> C27Replicate:
    """C11's experiment in the world of ``recipe`` (whose gold reward turns over), with
    the reward ensemble beside it and best-of-n by ``mean - k std`` at every ``k`` of
    ``recipe.ks`` (from the same posterior: no refit per ``k``)."""
    check_instance("recipe", recipe, TurnoverRecipe)
    seed = check_int("seed", seed, 0)
    k = check_number("k", k, 0.0, low_open=False)
    start = time.perf_counter()
    with torch_threads(check_threads(threads)):
        gold, policy, rng, data, model, posterior = _world_and_proxy(recipe, seed, 27)
        x, ood, g, mean, std, _ = _candidates(recipe, gold, policy, posterior, rng)
        members = [model] + [
            train_reward_model(
                data["pairs"],
                data["preferred"],
                recipe.reward_model,
                derive_seed(seed, 27, m),
            )
            for m in range(1, recipe.n_members)
        ]
        flat = torch.as_tensor(
            x.reshape(-1, recipe.dim), dtype=torch.get_default_dtype()
        )
        scores = {
            "MAP": mean,
            "pessimistic": pessimistic_scores(mean, std, k),
            "ensemble": ensemble_scores(members, flat, k).reshape(g.shape),
        }
        values = {"gold": g, "ood": ood.astype(float)}
        chosen = {m: best_of_n(scores[m], values, recipe.ns) for m in C27_METHODS}
        k_gold = {
            kk: best_of_n(pessimistic_scores(mean, std, kk), {"gold": g}, recipe.ns)[
                "gold"
            ]
            for kk in recipe.ks
        }
        accuracy = pairwise_accuracy(model, data["held_pairs"], data["held_gold"])
    return C27Replicate(
        seed=seed,
        k=k,
        ns=recipe.ns,
        gold={m: chosen[m]["gold"] for m in C27_METHODS},
        ood={m: chosen[m]["ood"] for m in C27_METHODS},
        k_gold=k_gold,
        base_gold=float(g.mean()),
        heldout_accuracy=accuracy,
        seconds=time.perf_counter() - start,
    )


def c27_statistics(rep: C27Replicate, n_resamples: int = 2000) -> dict:
    """Claim C27 on one seed: ``largest_n``; ``gold_difference`` at it (mean over
    prompts of gold(mean - k std) - gold(MAP), paired percentile-bootstrap 95% interval
    over prompts); ``premise_met`` (1.0 when the MAP curve of mean gold over n falls
    from its peak by at least 10% of the peak minus its value at n = 1); and, reported
    beside, the ensemble's difference and the MAP curve's drop from its peak as a share
    of that range (``turnover``)."""
    check_instance("rep", rep, C27Replicate)
    curve = rep.gold["MAP"].mean(axis=0)
    peak = curve.max()
    rise = peak - curve[0]
    turnover = (peak - curve[-1]) / rise if rise > 0 else 0.0
    out = {
        "largest_n": rep.ns[-1],
        "premise_met": float(rise > 0 and turnover >= 0.1),
        "turnover": float(turnover),
    }
    for name, method in (
        ("gold_difference", "pessimistic"),
        ("ensemble_gold_difference", "ensemble"),
    ):
        diff = rep.gold[method][:, -1] - rep.gold["MAP"][:, -1]
        low, high = metrics.bootstrap_ci(
            np.mean, diff, seed=rep.seed, n_resamples=n_resamples
        )
        out[name] = (float(diff.mean()), low, high)
    return out


def c27_pooled(per_seed: list[dict], seed: int = 0, n_resamples: int = 2000) -> dict:
    """C27's pooled statistic: ``mean_gold_difference``, the mean over seeds of the
    per-seed gold differences, with a percentile-bootstrap 95% interval over seeds."""
    values = np.array(
        [check_instance("statistics", s, dict)["gold_difference"][0] for s in per_seed]
    )
    if values.size < 2:
        raise ValueError("pooling over seeds needs at least two seeds")
    low, high = metrics.bootstrap_ci(
        np.mean, values, seed=seed, n_resamples=n_resamples
    )
    return {"mean_gold_difference": (float(values.mean()), low, high)}


def turnover_table(reps) -> pd.DataFrame:
    """Tidy table, one row per (seed, method, n): KL of best-of-n from the base policy,
    mean gold reward and out-of-distribution share of the kept response."""
    labels = {
        "MAP": "MAP",
        "pessimistic": "mean - 1 std (Laplace)",
        "ensemble": "mean - 1 std (ensemble)",
    }
    series = {"gold": "gold", "ood_share": "ood"}
    return pd.DataFrame(
        row
        for r in check_items(reps, C27Replicate)
        for row in _best_of_n_rows(
            r,
            {
                m: labels[m] if r.k == 1 else labels[m].replace("1", f"{r.k:g}")
                for m in C27_METHODS
            },
            series,
        )
    )


def k_sensitivity_table(reps) -> pd.DataFrame:
    """Exploratory: one row per (seed, k, n): mean gold reward of best-of-n by mean - k
    std."""
    rows = [
        {"seed": r.seed, "k": kk, "n": n, "gold": g[:, j].mean()}
        for r in check_items(reps, C27Replicate)
        for kk, g in r.k_gold.items()
        for j, n in enumerate(r.ns)
    ]
    return pd.DataFrame(rows)


# --- C12: REINFORCE
# -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE fine-tuning: ``steps`` Adam steps at learning rate ``lr``, each on a
    batch of ``batch_size`` fresh queries from the mention distribution, one sampled
    answer per query.

    ``lr = 1e-4``: at 1e-3 the binary fine-tuning *lowered* its own objective (expected
    binary reward on held-out queries 0.847 -> 0.816, seed 0 of the quick world): Adam's
    first steps move every weight of the sharp pretrained model by about ``lr`` whatever
    the gradient's size, and the sparse binary signal cannot undo that.  At 1e-4 both
    graders' fine-tunings raise their own expected reward (see
    :attr:`~bayes_at_scale.worlds.preferences.AnswerEvaluation.expected_reward`).
    """

    steps: int = 200
    batch_size: int = 256
    lr: float = 1e-4

    def __post_init__(self):
        check_int("steps", self.steps)
        check_int("batch_size", self.batch_size, 2)
        check_number("lr", self.lr, 0.0)


def reinforce(
    model: CausalLM,
    world: FactWorld,
    config: ReinforceConfig = ReinforceConfig(),
    threshold: float | None = None,
    seed: int = 0,
    credit_unknown: bool = True,
) -> tuple[CausalLM, pd.DataFrame]:
    """A copy of ``model`` fine-tuned by REINFORCE against
    :func:`~bayes_at_scale.worlds.preferences.grade` (binary when ``threshold`` is None;
    ``credit_unknown=False`` scores every "unknown" answer 0, the
    :data:`~bayes_at_scale.worlds.preferences.BENCHMARK` grader with
    ``threshold=None``); ``model`` itself is left untouched. Returns the fine-tuned
    model and its history (step, mean reward, share of sampled answers that were
    "unknown").  The same seed draws the same queries whatever the grader."""
    check_instance("model", model, CausalLM)
    check_instance("world", world, FactWorld)
    check_instance("config", config, ReinforceConfig)
    if threshold is not None:
        threshold = check_threshold(threshold, upper_closed=False)
    seed = check_int("seed", seed, 0)
    tuned = copy.deepcopy(model)
    queries = world.sample_queries(
        config.steps * config.batch_size, seed=derive_seed(seed, 12, 2)
    ).reshape(config.steps, -1)
    generator = torch.Generator().manual_seed(derive_seed(seed, 12, 3))
    optimiser = torch.optim.Adam(tuned.parameters(), lr=config.lr)
    unknown = len(world.answer_tokens) - 1
    history = []
    tuned.train()
    for step, batch in enumerate(queries):
        logits = answer_logits(tuned, world, batch)
        with torch.no_grad():
            actions = torch.multinomial(
                torch.softmax(logits, dim=-1), 1, generator=generator
            )[:, 0]
        outcomes = answer_outcome(world.answer_tokens[actions.numpy()], world, batch)
        said_unknown = None if credit_unknown else (actions == unknown).numpy()
        rewards = grade(outcomes, threshold, said_unknown)
        loss = reinforce_loss(logits, actions, torch.as_tensor(rewards))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(
            {
                "step": step + 1,
                "reward": rewards.mean(),
                "unknown_share": float((actions == unknown).double().mean()),
            }
        )
    tuned.eval()
    return tuned, pd.DataFrame(history)


# --- C12: calibration and abstention
# --------------------------------------------------------


def reliability_table(probs, labels, n_bins: int = 15) -> pd.DataFrame:
    """Reliability-diagram data: top-label confidence in ``n_bins`` equal-width bins of
    [0, 1] (as :func:`bayes_at_scale.core.metrics.ece` bins it), with each non-empty
    bin's mean confidence, accuracy, count and share of the queries."""
    p = check_probabilities(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, classes), got {p.shape}")
    y = np.asarray(labels)
    if (
        y.shape != (p.shape[0],)
        or not np.issubdtype(y.dtype, np.integer)
        or y.min() < 0
        or y.max() >= p.shape[1]
    ):
        raise ValueError(
            f"labels must be {p.shape[0]} integer classes in 0..{p.shape[1] - 1}"
        )
    n_bins = check_int("n_bins", n_bins)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin": b,
                    "low": edges[b],
                    "high": edges[b + 1],
                    "confidence": confidence[mask].mean(),
                    "accuracy": correct[mask].mean(),
                    "count": int(mask.sum()),
                    "share": float(mask.mean()),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class C12Replicate:
    """One seed of C12: the pretrained model's answers (``before``), the answers after
    REINFORCE against each grader of :data:`~bayes_at_scale.worlds.preferences.GRADERS`
    (and :data:`~bayes_at_scale.worlds.preferences.BENCHMARK` if asked; ``after``), and
    the fine-tuning histories."""

    seed: int
    before: AnswerEvaluation
    after: dict
    history: pd.DataFrame
    seconds: float = field(default=0.0, compare=False)


def pretrained_fact_model(
    recipe: Recipe, seed: int, threads: int | None = 1
) -> tuple[FactWorld, CausalLM]:
    """Chapter 4's fact world and its MAP-trained fact model for ``seed``, as the fact
    ``recipe`` says (e.g. ``FACT_RECIPES["quick"]``;
    :func:`bayes_at_scale.worlds.facts.fact_world` and
    :func:`bayes_at_scale.worlds.facts.train_fact_model`), trained on ``threads``
    threads."""
    check_instance("recipe", recipe, Recipe)
    seed = check_int("seed", seed, 0)
    world = fact_world(recipe, seed)
    with torch_threads(check_threads(threads)):
        model = train_fact_model(world, recipe, seed)
    return world, model


def run_c12(
    world: FactWorld,
    model: CausalLM,
    config: ReinforceConfig,
    seed: int,
    n_queries: int = 4000,
    threads: int | None = 1,
    benchmark: bool = False,
) -> C12Replicate:
    """Evaluate ``model`` (chapter 4's pretrained fact model) on ``n_queries`` fresh
    queries from the mention distribution, fine-tune a copy by REINFORCE against each
    grader, and evaluate each copy on the same queries.  ``benchmark``: also fine-tune
    against the supplementary :data:`~bayes_at_scale.worlds.preferences.BENCHMARK`
    grader (on the same queries and draws as the binary one), as
    ``after[BENCHMARK]``."""
    check_instance("world", world, FactWorld)
    check_instance("model", model, CausalLM)
    seed = check_int("seed", seed, 0)
    n_queries = check_int("n_queries", n_queries)
    start = time.perf_counter()
    with torch_threads(check_threads(threads)):
        queries = world.sample_queries(n_queries, seed=derive_seed(seed, 12, 1))
        before = evaluate_answers(model, world, queries)
        after, histories = {}, []
        runs = [(name, threshold, True) for name, threshold in GRADERS.items()]
        if benchmark:
            runs.append((BENCHMARK, None, False))
        for name, threshold, credit_unknown in runs:
            tuned, history = reinforce(
                model, world, config, threshold, seed, credit_unknown
            )
            after[name] = evaluate_answers(tuned, world, queries)
            histories.append(history.assign(grader=name))
    return C12Replicate(
        seed,
        before,
        after,
        pd.concat(histories, ignore_index=True),
        seconds=time.perf_counter() - start,
    )


def c12_statistics(before: AnswerEvaluation, after: AnswerEvaluation) -> dict:
    """Claim C12: ECE after / ECE before, and the relative drop of the unknown rate,
    (before - after) / before."""
    check_instance("before", before, AnswerEvaluation)
    check_instance("after", after, AnswerEvaluation)
    if before.ece <= 0:
        raise ValueError("the ECE before fine-tuning is 0: the ratio is undefined")
    if before.unknown_rate <= 0:
        raise ValueError(
            "the model never answered 'unknown' before fine-tuning: the drop is "
            "undefined"
        )
    return {
        "ece_ratio": after.ece / before.ece,
        "unknown_rate_drop": (
            (before.unknown_rate - after.unknown_rate) / before.unknown_rate
        ),
    }


def _stages(rep: C12Replicate) -> dict:
    return {
        "before": rep.before,
        **{f"after {name}": ev for name, ev in rep.after.items()},
    }


def confidence_table(reps) -> pd.DataFrame:
    """One row per (seed, stage): ECE, unknown rate, abstention rate, mean P(unknown),
    accuracy, mean top probability, hallucination rate and the t = 0.75 graded score of
    the answers, and the expected reward of a sampled answer under each grader
    (``expected_<grader>``)."""
    rows = []
    for r in check_items(reps, C12Replicate):
        for stage, ev in _stages(r).items():
            rows.append(
                {
                    "seed": r.seed,
                    "stage": stage,
                    "ece": ev.ece,
                    "unknown_rate": ev.unknown_rate,
                    "abstention": ev.abstention_rate,
                    "p_unknown": ev.p_unknown,
                    "accuracy": ev.accuracy,
                    "confidence": ev.confidence,
                    "hallucination": ev.hallucination,
                    "graded_score": ev.graded_score,
                    **{f"expected_{g}": v for g, v in ev.expected_reward.items()},
                }
            )
    return pd.DataFrame(rows)


def reliability_diagram_table(reps, n_bins: int = 15) -> pd.DataFrame:
    """:func:`reliability_table` of every (seed, stage), stacked."""
    frames = [
        reliability_table(ev.probs, ev.labels, n_bins).assign(seed=r.seed, stage=stage)
        for r in check_items(reps, C12Replicate)
        for stage, ev in _stages(r).items()
    ]
    return pd.concat(frames, ignore_index=True)


# --- C28 (round 2): a calibrated model fine-tuned to a KL budget
# ------------------------------
#
# Round 1's C12 fine-tuned a model that was not calibrated (its premise) against a
# grader that paid for "unknown" on unknowable facts, and REINFORCE barely moved it.
# C28 repairs all three: the pretrained model is temperature-scaled on held-out queries
# and its calibration is checked before anything else; the grader is BENCHMARK's (1 for
# a right value, 0 for anything else, "unknown" always 0); and the fine-tuning is
# stopped at fixed KL budgets, so that how far it moved is a controlled quantity rather
# than a consequence of a learning rate.  The world is one of ambiguous questions
# (:data:`~bayes_at_scale.worlds.facts.AMBIGUOUS_FACT_RECIPES`): in C12's world no one
# temperature calibrates the memorising fact model, and a world in which every queried
# entity has been seen leaves the grade nothing to pay for.

QUERY_ROLES = ("calibration", "fine-tuning", "evaluation")
C28_BUDGET = 1.0  # the KL budget, nats per query, at which C28's rule is read
C28_ECE = 0.03  # the premise: a temperature-scaled top-label ECE at most this


@dataclass(frozen=True)
class BudgetConfig:
    """KL-regularised policy-gradient fine-tuning to the KL budgets ``budgets`` (nats
    per query, in increasing order): at most ``steps`` full-batch Adam steps at learning
    rate ``lr`` in all, ``n_queries`` fresh queries per role of :data:`QUERY_ROLES`.

    The objective is exact, not sampled: the answer set is small (the values and
    "unknown"), so the expected reward ``sum_a pi(a) r(a)`` and ``KL(pi || pi_0)`` are
    sums over it, and every step follows the deterministic gradient of ``mean over the
    fine-tuning queries of [E_pi r - beta KL(pi || pi_0)]``.  ``beta`` falls
    geometrically from ``beta`` to ``beta_final`` over the ``steps`` steps, so that the
    policy follows the path of the regularised optima from the pretrained model towards
    the grade's own optimum, moving further from ``pi_0`` as ``beta`` falls.  A budget
    is reached at the first step after which the mean KL on the evaluation queries (a KL
    needs no grade) is at least the budget; that step is then bisected - the parameters
    moved a fraction ``s`` of the way, ``s`` halved until the KL is within a hundredth
    of ``tolerance`` of the budget - and the policy there is the budget's.  A budget
    never reached keeps the last policy, and is reported as missed
    (:func:`c28_statistics`: ``budget_met = 0``).  Round 1's adaptive controller
    (Ziegler et al. 2019) overshot the smaller budgets by up to a third; stopping on the
    path meets them to the bisection's precision.

    ``lr = 1e-3`` and 600 steps from ``beta = 1`` to ``1e-3``: at 3e-3, Adam's first
    step alone moved the evaluation answers by 0.1 nats, past the smallest budget.  At
    1e-3 the quick world's budgets are reached at ``beta`` near 0.4, 0.16 and 0.02
    (seeds 0 and 1), after about 80, 160 and 330 steps - close to where the exact
    per-question optimum ``pi_0 exp(r / beta)`` reaches them (0.02 for 1 nat), so the
    network follows the path of optima rather than lagging behind it.  None of these was
    chosen on ECE or on the "unknown" rate.
    """

    budgets: tuple[float, ...] = (0.05, 0.2, C28_BUDGET)
    steps: int = 600
    lr: float = 1e-3
    beta: float = 1.0
    beta_final: float = 1e-3
    tolerance: float = 0.1
    n_queries: int = 10_000

    def __post_init__(self):
        if not isinstance(self.budgets, tuple) or not self.budgets:
            raise ValueError(
                f"budgets must be a non-empty tuple of nats, got {self.budgets!r}"
            )
        for b in self.budgets:
            check_number("budget", b, 0.0)
        if list(self.budgets) != sorted(set(self.budgets)):
            raise ValueError(f"budgets must increase strictly, got {self.budgets}")
        check_int("steps", self.steps, 2)
        check_number("lr", self.lr, 0.0)
        check_number("beta", self.beta, 0.0)
        check_number("beta_final", self.beta_final, 0.0, self.beta, high_open=False)
        check_number("tolerance", self.tolerance, 0.0, 1.0)
        check_int("n_queries", self.n_queries, 2)

    def beta_at(self, step: int) -> float:
        """``beta`` at step ``step`` (0-based) of the geometric schedule."""
        return self.beta * (self.beta_final / self.beta) ** (step / (self.steps - 1))


def role_queries(world: FactWorld, n_queries: int, seed: int) -> dict[str, np.ndarray]:
    """Three independent samples of ``n_queries`` fresh queries (entity indices) from
    the mention distribution, one per role of :data:`QUERY_ROLES`: the temperature is
    fitted on the calibration queries, the fine-tuning reads the fine-tuning queries'
    grades only, and calibration, the "unknown" rate and the KL are measured on the
    evaluation queries.

    The roles ask about the same names, on purpose: in a world of shared names
    (:data:`~bayes_at_scale.worlds.facts.AMBIGUOUS_FACT_RECIPES`) a question does not
    say which entity it means, so the fine-tuning's grades can teach a policy no more
    than how often each answer to a name is right - which the pretrained model already
    knows - and the evaluation measures what the fine-tuning did to the questions it
    practised on, asked afresh.
    """
    check_instance("world", world, FactWorld)
    n_queries = check_int("n_queries", n_queries, 2)
    seed = check_int("seed", seed, 0)
    return {
        name: world.sample_queries(n_queries, seed=derive_seed(seed, 28, r))
        for r, name in enumerate(QUERY_ROLES)
    }


def fit_temperature(
    logits,
    labels,
    n_bins: int = 15,
    criterion: str = "ece",
    bounds: tuple[float, float] = (0.1, 20.0),
) -> float:
    """The one temperature ``T`` (within ``bounds``) that makes ``softmax(logits / T)``
    best on held-out ``labels``: lowest top-label ECE (``criterion="ece"``, the
    premise's own measure) or lowest NLL (``"nll"``, Guo et al. 2017's temperature
    scaling).

    ECE is chosen for C28 because it is the premise's measure (the NLL temperature is
    reported beside it).  In C12's world of distinct names the two disagree badly - the
    NLL is dominated by confident wrong guesses about entities the model never saw, and
    its optimum flattens the memorised answers so much that the ECE *rises* (0.12 to
    0.18, seed 0 of the quick world). The ECE is piecewise constant in ``T``, so ``T``
    is first searched on a grid of 81 points, log-spaced over ``bounds``, and then
    refined by a bounded scalar search between the grid neighbours of the best point.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax, softmax

    z = check_finite_array(logits, "logits", 2).astype(float)
    y = check_labels(labels, z.shape[0])
    if y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in 0..{z.shape[1] - 1}")
    n_bins = check_int("n_bins", n_bins)
    if criterion not in ("ece", "nll"):
        raise ValueError(f"criterion must be 'ece' or 'nll', got {criterion!r}")
    low, high = (check_number("bounds", b, 0.0) for b in bounds)
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")

    def loss(log_t: float) -> float:
        if criterion == "nll":
            return float(
                -log_softmax(z / np.exp(log_t), axis=1)[np.arange(y.size), y].mean()
            )
        return metrics.ece(softmax(z / np.exp(log_t), axis=1), y, n_bins=n_bins)

    grid = np.linspace(np.log(low), np.log(high), 81)
    values = [loss(g) for g in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    refined = minimize_scalar(
        loss, bounds=(a, b), method="bounded", options={"xatol": 1e-3}
    )
    log_t = refined.x if refined.fun <= values[best] else grid[best]
    return float(np.exp(log_t))


def tempered_model(model: CausalLM, temperature: float) -> CausalLM:
    """A copy of ``model`` whose logits are ``model``'s divided by ``temperature``: the
    head's weight and bias are divided by it, so the temperature is part of the network
    (and of a policy fine-tuned from it)."""
    check_instance("model", model, CausalLM)
    temperature = check_number("temperature", temperature, 0.0)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.head.weight.div_(temperature)
        scaled.head.bias.div_(temperature)
    return scaled


def answer_kl(logits: torch.Tensor, reference_logp: torch.Tensor) -> torch.Tensor:
    """``KL(pi || pi_0)`` per query ``(q,)``, exactly over the answers: ``logits`` ``(q,
    A)`` of the policy, ``reference_logp`` ``(q, A)`` the log-probabilities of the
    reference."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError("logits must be a (queries, answers) tensor")
    if (
        not isinstance(reference_logp, torch.Tensor)
        or reference_logp.shape != logits.shape
    ):
        raise ValueError(
            "reference_logp must be a tensor of the logits' shape "
            f"{tuple(logits.shape)}"
        )
    logp = torch.log_softmax(logits, dim=-1)
    return (logp.exp() * (logp - reference_logp.to(logp.dtype))).sum(dim=-1)


def question_weights(
    world: FactWorld, entities
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct questions (names) that queries ``entities`` ask: one entity per
    distinct name (its first query), each name's share of the queries, and each query's
    name (an index into the first two)."""
    check_instance("world", world, FactWorld)
    e = np.asarray(entities)
    _, first, which = np.unique(
        world.names[e], axis=0, return_index=True, return_inverse=True
    )
    which = which.ravel()
    return e[first], np.bincount(which, minlength=first.size) / e.size, which


class _Questions:
    """Queries grouped by question, with the reference's log-probabilities and
    (optionally) each answer's reward averaged over the queries that ask it - a
    question's expected grade."""

    def __init__(self, reference: CausalLM, world: FactWorld, entities, graded: bool):
        self.world = world
        self.asked, weights, which = question_weights(world, entities)
        self.prompts = world.prompts(self.asked)
        dtype = torch.get_default_dtype()
        self.weights = torch.as_tensor(weights, dtype=dtype)
        with torch.no_grad():
            self.reference = torch.log_softmax(self.logits(reference), -1)
        self.rewards = None
        if graded:
            per_query = answer_rewards(world, entities, None, credit_unknown=False)
            total = np.zeros((self.asked.size, per_query.shape[1]))
            np.add.at(total, which, per_query)
            counts = np.bincount(which, minlength=self.asked.size)[:, None]
            self.rewards = torch.as_tensor(total / counts, dtype=dtype)

    def logits(self, policy: CausalLM) -> torch.Tensor:
        """``policy``'s logits over the answers to each question."""
        return logits_of_answers(policy, self.world, self.prompts)

    def kl(self, policy: CausalLM) -> torch.Tensor:
        """Mean ``KL(policy || reference)`` per query."""
        return (self.weights * answer_kl(self.logits(policy), self.reference)).sum()

    def objective(
        self, policy: CausalLM, beta: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean expected reward minus ``beta`` x mean KL; also the two parts."""
        logits = self.logits(policy)
        kl = (self.weights * answer_kl(logits, self.reference)).sum()
        reward = (
            self.weights * (torch.softmax(logits, -1) * self.rewards).sum(-1)
        ).sum()
        return reward - beta * kl, reward, kl


def _moved(policy: CausalLM, start: list, end: list, s: float) -> CausalLM:
    """A copy of ``policy`` with its parameters ``start + s (end - start)``."""
    probe = copy.deepcopy(policy)
    with torch.no_grad():
        for p, a, b in zip(probe.parameters(), start, end):
            p.copy_(a + s * (b - a))
    probe.eval()
    return probe


def _bisect_step(
    policy: CausalLM,
    start: list,
    end: list,
    held: _Questions,
    budget: float,
    precision: float,
    max_halvings: int = 40,
) -> tuple[CausalLM, float, float]:
    """The policy a fraction ``s`` of the way along one optimiser step (``start`` to
    ``end``) whose held-out KL is within ``precision`` x ``budget`` of ``budget``; the
    KL at ``s = 0`` is below the budget and at ``s = 1`` at least the budget.  Returns
    it, ``s`` and its KL."""
    low, high = 0.0, 1.0
    for _ in range(max_halvings):
        s = 0.5 * (low + high)
        probe = _moved(policy, start, end, s)
        with torch.no_grad():
            kl = held.kl(probe).item()
        if abs(kl - budget) <= precision * budget:
            return probe, s, kl
        low, high = (s, high) if kl < budget else (low, s)
    return probe, s, kl


def fine_tune_to_budgets(
    model: CausalLM,
    world: FactWorld,
    queries: dict,
    config: BudgetConfig = BudgetConfig(),
) -> tuple[list[CausalLM], pd.DataFrame]:
    """Copies of ``model`` (the temperature-scaled pretrained model, also the reference
    ``pi_0``) fine-tuned by KL-regularised policy gradient against C28's grader (1 for a
    right value, 0 for anything else, "unknown" always 0:
    :data:`~bayes_at_scale.worlds.preferences. BENCHMARK`) and stopped at each budget of
    ``config.budgets`` on the way (see :class:`BudgetConfig`).  ``queries``:
    :func:`role_queries`.

    Returns one model per budget and the history: per step, ``beta``, the mean KL on the
    fine-tuning and on the evaluation queries, and the expected reward on the
    fine-tuning queries; and a row per budget reached (``step`` of the crossing, the
    fraction ``s`` of that step kept, ``reached`` True).
    """
    check_instance("model", model, CausalLM)
    check_instance("world", world, FactWorld)
    check_instance("config", config, BudgetConfig)
    missing = [r for r in ("fine-tuning", "evaluation") if r not in queries]
    if missing:
        raise KeyError(f"queries lacks role(s) {', '.join(missing)}")
    train = _Questions(model, world, queries["fine-tuning"], graded=True)
    held = _Questions(model, world, queries["evaluation"], graded=False)
    policy = copy.deepcopy(model)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.lr)
    budgets = list(config.budgets)
    tuned, history = [], []
    policy.train()
    for step in range(config.steps):
        beta = config.beta_at(step)
        objective, reward, kl = train.objective(policy, beta)
        start = [p.detach().clone() for p in policy.parameters()]
        optimiser.zero_grad()
        (-objective).backward()
        optimiser.step()
        with torch.no_grad():
            held_kl = held.kl(policy).item()
        history.append(
            {
                "step": step + 1,
                "beta": beta,
                "kl_fine_tuning": kl.item(),
                "kl_evaluation": held_kl,
                "reward": reward.item(),
                "s": 1.0,
                "reached": False,
            }
        )
        end = [p.detach().clone() for p in policy.parameters()]
        while budgets and held_kl >= budgets[0]:
            probe, s, probe_kl = _bisect_step(
                policy, start, end, held, budgets[0], config.tolerance / 100
            )
            tuned.append(probe)
            history.append(
                {
                    "step": step + 1,
                    "beta": beta,
                    "kl_fine_tuning": float("nan"),
                    "kl_evaluation": probe_kl,
                    "reward": float("nan"),
                    "s": s,
                    "reached": True,
                    "budget": budgets.pop(0),
                }
            )
        if not budgets:
            break
    policy.eval()
    # budgets never reached: the last policy
    tuned += [copy.deepcopy(policy) for _ in budgets]
    return tuned, pd.DataFrame(history)


@dataclass(frozen=True)
class C28Replicate:
    """One seed of C28: the temperature, and the answers on the evaluation queries of
    the pretrained model (``raw``), of its temperature-scaled copy (``before``) and
    after fine-tuning to each budget (``after``: budget -> evaluation), with each one's
    achieved mean KL from the temperature-scaled model on the evaluation queries
    (``kl``: budget -> nats) and the fine-tuning history.  ``nll_temperature`` and
    ``nll_ece``: Guo et al.'s NLL-fitted temperature and the ECE it gives, reported
    beside the ECE-fitted one."""

    seed: int
    temperature: float
    raw: AnswerEvaluation
    before: AnswerEvaluation
    after: dict
    kl: dict
    history: pd.DataFrame
    nll_temperature: float
    nll_ece: float
    tolerance: float
    seconds: float = field(default=0.0, compare=False)


def run_c28(
    world: FactWorld,
    model: CausalLM,
    config: BudgetConfig,
    seed: int,
    threads: int | None = 1,
) -> C28Replicate:
    """Claim C28 on one seed: draw the queries (:func:`role_queries`), fit the
    temperature on the calibration queries (:func:`fit_temperature`), check calibration
    on the evaluation queries, fine-tune the temperature-scaled model to every KL budget
    (:func:`fine_tune_to_budgets`) and evaluate each result on the evaluation queries.
    ``world`` must share names (``make_fact_world(shared_names=True)``), as
    :func:`role_queries` explains."""
    check_instance("world", world, FactWorld)
    check_instance("model", model, CausalLM)
    check_instance("config", config, BudgetConfig)
    seed = check_int("seed", seed, 0)
    if world.n_names == world.n_entities:
        raise ValueError(
            "C28 needs a world whose entities share names "
            "(make_fact_world(shared_names=True)): with distinct names the "
            "fine-tuning's grades would teach the evaluation queries' answers"
        )
    start = time.perf_counter()
    with torch_threads(check_threads(threads)):
        queries = role_queries(world, config.n_queries, seed)
        calibration, held = queries["calibration"], queries["evaluation"]
        with torch.no_grad():
            logits = answer_logits(model, world, calibration).double().numpy()
        labels = truth_index(world, calibration)
        temperature = fit_temperature(logits, labels)
        nll_temperature = fit_temperature(logits, labels, criterion="nll")
        scaled = tempered_model(model, temperature)
        tuned, history = fine_tune_to_budgets(scaled, world, queries, config)
        with torch.no_grad():
            reference = torch.log_softmax(answer_logits(scaled, world, held), dim=-1)
            kl = {
                b: float(answer_kl(answer_logits(m, world, held), reference).mean())
                for b, m in zip(config.budgets, tuned)
            }
        nll_ece = evaluate_answers(
            tempered_model(model, nll_temperature), world, held
        ).ece
        return C28Replicate(
            seed=seed,
            temperature=temperature,
            raw=evaluate_answers(model, world, held),
            before=evaluate_answers(scaled, world, held),
            after={
                b: evaluate_answers(m, world, held)
                for b, m in zip(config.budgets, tuned)
            },
            kl=kl,
            history=history,
            nll_temperature=nll_temperature,
            nll_ece=nll_ece,
            tolerance=config.tolerance,
            seconds=time.perf_counter() - start,
        )


def c28_statistics(rep: C28Replicate, budget: float = C28_BUDGET) -> dict:
    """Claim C28 on one seed: ``ece_ratio`` (ECE after fine-tuning to ``budget`` / ECE
    of the temperature-scaled model) and ``unknown_rate_drop`` ((before - after) /
    before of the "unknown" rate), all on the evaluation queries; ``premise_met`` (1.0
    when the temperature-scaled ECE is at most :data:`C28_ECE`, the registered premise).
    Reported beside them: ``budget_met`` (1.0 when the achieved KL is within the
    tolerance of ``budget``; where it is 0 the statistics were read short of the budget,
    and the chapter must say so), the achieved ``kl`` and ``ece_before``."""
    check_instance("rep", rep, C28Replicate)
    if budget not in rep.after:
        raise KeyError(
            f"no fine-tuning to a budget of {budget!r} nats; have {sorted(rep.after)}"
        )
    kl = rep.kl[budget]
    calibrated = rep.before.ece <= C28_ECE
    budget_met = abs(kl - budget) <= rep.tolerance * budget
    stats = c12_statistics(rep.before, rep.after[budget])
    return {
        "premise_met": float(calibrated),
        **stats,
        "budget_met": float(budget_met),
        "kl": kl,
        "ece_before": rep.before.ece,
    }


def certainty_kl(evaluation: AnswerEvaluation) -> float:
    """Mean KL, nats per query, from the answers of ``evaluation`` to the policy that
    gives each question's most probable *value* ("unknown" excluded) with certainty: the
    mean of ``-log p(that value)``.  For C28's calibrated model it is about how far the
    grade's own optimum - always the value most often right - lies from the pretrained
    model."""
    check_instance("evaluation", evaluation, AnswerEvaluation)
    return float(-np.log(evaluation.probs[:, :-1].max(axis=1)).mean())


def budget_table(reps) -> pd.DataFrame:
    """One row per (seed, stage) of C28: the achieved KL (0 before fine-tuning), ECE,
    "unknown" rate, accuracy, mean confidence and expected reward under C28's grader."""
    rows = []
    for r in check_items(reps, C28Replicate):
        stages = [("temperature-scaled", 0.0, r.before)] + [
            (f"KL budget {b:g}", r.kl[b], ev) for b, ev in r.after.items()
        ]
        for stage, kl, ev in stages:
            rows.append(
                {
                    "seed": r.seed,
                    "stage": stage,
                    "kl": kl,
                    "ece": ev.ece,
                    "unknown_rate": ev.unknown_rate,
                    "accuracy": ev.accuracy,
                    "confidence": ev.confidence,
                    "hallucination": ev.hallucination,
                    "reward": ev.expected_reward[BENCHMARK],
                }
            )
    return pd.DataFrame(rows)


# --- recipes
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignmentRecipe:
    """Chapter 6 at one scale: seeds, C11's sizes, C12's fine-tuning and query count,
    and the fact world and model that C12 fine-tunes (``facts``, a
    :class:`~bayes_at_scale.core.training.Recipe` of
    :data:`~bayes_at_scale.worlds.facts.FACT_RECIPES`); round 2's seeds (at least 5),
    C27's world (``turnover``), C28's fine-tuning to KL budgets (``budgets``) and C28's
    world of ambiguous questions and its model (``budget_facts``, of
    :data:`~bayes_at_scale.worlds.facts.AMBIGUOUS_FACT_RECIPES`)."""

    n_seeds: int
    overoptimisation: OveroptimisationRecipe
    reinforce: ReinforceConfig
    n_queries: int
    facts: Recipe
    n_seeds_round2: int = 5
    turnover: TurnoverRecipe = TurnoverRecipe()
    budgets: BudgetConfig = BudgetConfig()
    budget_facts: Recipe = AMBIGUOUS_FACT_RECIPES["quick"]

    def __post_init__(self):
        check_int("n_seeds", self.n_seeds)
        check_instance(
            "overoptimisation", self.overoptimisation, OveroptimisationRecipe
        )
        check_instance("reinforce", self.reinforce, ReinforceConfig)
        check_int("n_queries", self.n_queries)
        check_instance("facts", self.facts, Recipe)
        check_int("n_seeds_round2", self.n_seeds_round2, 5)
        check_instance("turnover", self.turnover, TurnoverRecipe)
        check_instance("budgets", self.budgets, BudgetConfig)
        check_instance("budget_facts", self.budget_facts, Recipe)


RECIPES = {
    "quick": AlignmentRecipe(
        n_seeds=2,
        overoptimisation=OveroptimisationRecipe(),
        reinforce=ReinforceConfig(),
        n_queries=4000,
        facts=FACT_RECIPES["quick"],
    ),
    "full": AlignmentRecipe(
        n_seeds=5,
        overoptimisation=OveroptimisationRecipe(
            n_pairs=20_000,
            n_heldout=5000,
            n_prompts=5000,
            n_candidates=1024,
            max_n=512,
            reward_model=RewardModelConfig(steps=400),
        ),
        reinforce=ReinforceConfig(steps=600),
        n_queries=20_000,
        facts=FACT_RECIPES["full"],
        turnover=TurnoverRecipe(
            n_pairs=20_000,
            n_heldout=5000,
            n_prompts=5000,
            n_candidates=1024,
            max_n=512,
            reward_model=RewardModelConfig(steps=400),
        ),
        budgets=BudgetConfig(n_queries=40_000),
        budget_facts=AMBIGUOUS_FACT_RECIPES["full"],
    ),
}


def recipe(scale: str) -> AlignmentRecipe:
    """The recipe of ``scale`` (``"quick"`` or ``"full"``)."""
    return at_scale(RECIPES, scale)

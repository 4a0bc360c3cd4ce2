"""Chapter 6's experiments: Bayesian reward models, best-of-n, and what reward optimisation does
to a model's confidence (claims C11 and C12).

**C11 - reward over-optimisation** (the synthetic gold-reward set-up of Gao et al. 2023, with
the Laplace reward model of Yang et al. 2024; Coste et al. 2024 used ensembles).  In the
preference world of :mod:`bayes_at_scale.worlds.preferences`, a *proxy* reward model
(:class:`~bayes_at_scale.core.models.PreferenceNet`) is trained on Bradley-Terry preferences
over pairs of responses in which out-of-distribution responses are rare, and gets a last-layer
Laplace posterior (:class:`~bayes_at_scale.core.reward_posteriors.PreferencePosterior`,
laplace-torch's ``reward_modeling`` likelihood).  Best-of-n keeps the response of highest score -
the MAP reward, or the pessimistic ``mean - k std`` with ``k`` fixed in advance
(:data:`K_PESSIMISM`) - and we record the gold and proxy reward of the kept response, whether it
is out of distribution, and ``KL(best-of-n || base)``, exactly in expectation over the draw.

**C12 - confidence after reward optimisation.**  Chapter 4's fact model
(:func:`bayes_at_scale.worlds.facts.train_fact_model`) answers questions about entities with a
distribution over the answer tokens (the values and "unknown";
:func:`~bayes_at_scale.worlds.preferences.answer_probs`).  We measure its calibration
(:func:`bayes_at_scale.core.metrics.ece` against the truth) and how often its answer - the most
probable answer token, as in chapter 4 - is "unknown", on fresh queries from the mention
distribution.  Then we fine-tune it with REINFORCE (:func:`reinforce`): sample an answer per
query, grade it, and follow the policy gradient with a batch-mean baseline.  The graders
(:data:`~bayes_at_scale.worlds.preferences.GRADERS`) grade as chapter 4 does ("right" is the true
value, or "unknown" for an entity whose fact is truly unknown): ``binary``, 1 for a right answer
and 0 otherwise, so an abstention earns the same 0 as a wrong value; and ``t=0.75``, Kalai et
al.'s +1 right, 0 unknown, -3 wrong, which pays abstaining.  A third grader,
:data:`~bayes_at_scale.worlds.preferences.BENCHMARK`, is a supplementary analysis and not part of
C12's rule: the binary grading of most benchmarks, in which "unknown" never earns credit - not
even for a fact that is truly unknown (Kalai et al. 2025).  ``run_c12(..., benchmark=True)`` adds
it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..core import metrics
from ..core.checks import (check_instance, check_int, check_items, check_number,
                           check_probabilities, check_threads, check_threshold)
from ..core.models import CausalLM
from ..core.posteriors import PreferencePosteriorConfig
from ..core.reward_posteriors import PreferencePosterior, preference_loader
from ..core.settings import at_scale, derive_seed, torch_threads
from ..core.training import (Recipe, RewardModelConfig, pairwise_accuracy, reinforce_loss,
                             train_reward_model)
from ..worlds.facts import FACT_RECIPES, FactWorld, answer_outcome, fact_world, train_fact_model
from ..worlds.preferences import (BENCHMARK, GOLD_SEED, GRADERS, BasePolicy, GoldReward,
                                  AnswerEvaluation, answer_logits, best_of_n, evaluate_answers,
                                  grade, kl_best_of_n, pessimistic_scores, powers_of_two,
                                  preference_data)


# k of the pessimistic score mean - k std, fixed before any run.  One posterior standard
# deviation is the conventional lower confidence bound (the 16th percentile of a Gaussian): the
# simplest choice that makes uncertainty count as much as the reward scale it is measured in.
# Yang et al. (2024) penalise by the std with a coefficient they vary; tuning k on the outcome
# would turn claim C11's test into a fit, so k stays 1 and is not changed after seeing results.
K_PESSIMISM = 1.0
METHODS = ("MAP", "pessimistic")  # best-of-n by the MAP reward, and by mean - k std


# --- C11: best-of-n with a proxy reward model -----------------------------------------------


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
            check_int(name, getattr(self, name))
        check_int("n_prompts", self.n_prompts, 2)
        powers_of_two(self.max_n)
        if self.max_n > self.n_candidates:
            raise ValueError(f"max_n ({self.max_n}) exceeds n_candidates ({self.n_candidates})")
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
    seed = check_int("seed", seed, 0)
    k = check_number("k", k, 0.0, low_open=False)
    start = time.perf_counter()
    with torch_threads(check_threads(threads)):
        gold, policy = recipe.gold(), recipe.policy()
        rng = np.random.default_rng(derive_seed(seed, 11))
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


def best_of_n_table(reps) -> pd.DataFrame:
    """Tidy table, one row per (seed, method, n): KL from the base policy, and the mean over
    prompts of the chosen response's gold reward, proxy reward and out-of-distribution share."""
    rows = []
    for r in check_items(reps, C11Replicate):
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
    check_instance("rep", rep, C11Replicate)
    diff = rep.gold["pessimistic"][:, -1] - rep.gold["MAP"][:, -1]
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=rep.seed, n_resamples=n_resamples)
    return {"gold_difference": (float(diff.mean()), low, high), "ci_low_gold_difference": low}


# --- C12: REINFORCE -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE fine-tuning: ``steps`` Adam steps at learning rate ``lr``, each on a batch of
    ``batch_size`` fresh queries from the mention distribution, one sampled answer per query.

    ``lr = 1e-4``: at 1e-3 the binary fine-tuning *lowered* its own objective (expected binary
    reward on held-out queries 0.847 -> 0.816, seed 0 of the quick world): Adam's first steps move
    every weight of the sharp pretrained model by about ``lr`` whatever the gradient's size, and
    the sparse binary signal cannot undo that.  At 1e-4 both graders' fine-tunings raise their
    own expected reward (see
    :attr:`~bayes_at_scale.worlds.preferences.AnswerEvaluation.expected_reward`).
    """

    steps: int = 200
    batch_size: int = 256
    lr: float = 1e-4

    def __post_init__(self):
        check_int("steps", self.steps)
        check_int("batch_size", self.batch_size, 2)
        check_number("lr", self.lr, 0.0)


def reinforce(model: CausalLM, world: FactWorld, config: ReinforceConfig = ReinforceConfig(),
              threshold: float | None = None, seed: int = 0, credit_unknown: bool = True
              ) -> tuple[CausalLM, pd.DataFrame]:
    """A copy of ``model`` fine-tuned by REINFORCE against
    :func:`~bayes_at_scale.worlds.preferences.grade` (binary when ``threshold`` is None;
    ``credit_unknown=False`` scores every "unknown" answer 0, the
    :data:`~bayes_at_scale.worlds.preferences.BENCHMARK` grader with ``threshold=None``);
    ``model`` itself is left untouched.
    Returns the fine-tuned model and its history (step, mean reward, share of sampled answers
    that were "unknown").  The same seed draws the same queries whatever the grader."""
    check_instance("model", model, CausalLM)
    check_instance("world", world, FactWorld)
    check_instance("config", config, ReinforceConfig)
    if threshold is not None:
        threshold = check_threshold(threshold, upper_closed=False)
    seed = check_int("seed", seed, 0)
    tuned = copy.deepcopy(model)
    queries = world.sample_queries(config.steps * config.batch_size,
                                   seed=derive_seed(seed, 12, 2)).reshape(config.steps, -1)
    generator = torch.Generator().manual_seed(derive_seed(seed, 12, 3))
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


def reliability_table(probs, labels, n_bins: int = 15) -> pd.DataFrame:
    """Reliability-diagram data: top-label confidence in ``n_bins`` equal-width bins of [0, 1]
    (as :func:`bayes_at_scale.core.metrics.ece` bins it), with each non-empty bin's mean
    confidence, accuracy, count and share of the queries."""
    p = check_probabilities(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, classes), got {p.shape}")
    y = np.asarray(labels)
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer) \
            or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be {p.shape[0]} integer classes in 0..{p.shape[1] - 1}")
    n_bins = check_int("n_bins", n_bins)
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
    against each grader of :data:`~bayes_at_scale.worlds.preferences.GRADERS` (and
    :data:`~bayes_at_scale.worlds.preferences.BENCHMARK` if asked; ``after``), and the fine-tuning
    histories."""

    seed: int
    before: AnswerEvaluation
    after: dict
    history: pd.DataFrame
    seconds: float = field(default=0.0, compare=False)


def pretrained_fact_model(recipe: Recipe, seed: int, threads: int | None = 1
                          ) -> tuple[FactWorld, CausalLM]:
    """Chapter 4's fact world and its MAP-trained fact model for ``seed``, as the fact ``recipe``
    says (e.g. ``FACT_RECIPES["quick"]``; :func:`bayes_at_scale.worlds.facts.fact_world` and
    :func:`bayes_at_scale.worlds.facts.train_fact_model`), trained on ``threads`` threads."""
    check_instance("recipe", recipe, Recipe)
    seed = check_int("seed", seed, 0)
    world = fact_world(recipe, seed)
    with torch_threads(check_threads(threads)):
        model = train_fact_model(world, recipe, seed)
    return world, model


def run_c12(world: FactWorld, model: CausalLM, config: ReinforceConfig, seed: int,
            n_queries: int = 4000, threads: int | None = 1, benchmark: bool = False
            ) -> C12Replicate:
    """Evaluate ``model`` (chapter 4's pretrained fact model) on ``n_queries`` fresh queries from
    the mention distribution, fine-tune a copy by REINFORCE against each grader, and evaluate
    each copy on the same queries.  ``benchmark``: also fine-tune against the supplementary
    :data:`~bayes_at_scale.worlds.preferences.BENCHMARK` grader (on the same queries and draws as
    the binary one), as ``after[BENCHMARK]``."""
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
            tuned, history = reinforce(model, world, config, threshold, seed, credit_unknown)
            after[name] = evaluate_answers(tuned, world, queries)
            histories.append(history.assign(grader=name))
    return C12Replicate(seed, before, after, pd.concat(histories, ignore_index=True),
                        seconds=time.perf_counter() - start)


def c12_statistics(before: AnswerEvaluation, after: AnswerEvaluation) -> dict:
    """Claim C12: ECE after / ECE before, and the relative drop of the unknown rate,
    (before - after) / before."""
    check_instance("before", before, AnswerEvaluation)
    check_instance("after", after, AnswerEvaluation)
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
    for r in check_items(reps, C12Replicate):
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
              for r in check_items(reps, C12Replicate) for stage, ev in _stages(r).items()]
    return pd.concat(frames, ignore_index=True)


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignmentRecipe:
    """Chapter 6 at one scale: seeds, C11's sizes, C12's fine-tuning and query count, and the
    fact world and model that C12 fine-tunes (``facts``, a
    :class:`~bayes_at_scale.core.training.Recipe` of
    :data:`~bayes_at_scale.worlds.facts.FACT_RECIPES`)."""

    n_seeds: int
    overoptimisation: OveroptimisationRecipe
    reinforce: ReinforceConfig
    n_queries: int
    facts: Recipe

    def __post_init__(self):
        check_int("n_seeds", self.n_seeds)
        check_instance("overoptimisation", self.overoptimisation, OveroptimisationRecipe)
        check_instance("reinforce", self.reinforce, ReinforceConfig)
        check_int("n_queries", self.n_queries)
        check_instance("facts", self.facts, Recipe)


RECIPES = {
    "quick": AlignmentRecipe(n_seeds=2, overoptimisation=OveroptimisationRecipe(),
                             reinforce=ReinforceConfig(), n_queries=4000,
                             facts=FACT_RECIPES["quick"]),
    "full": AlignmentRecipe(
        n_seeds=5,
        overoptimisation=OveroptimisationRecipe(
            n_pairs=20_000, n_heldout=5000, n_prompts=5000, n_candidates=1024, max_n=512,
            reward_model=RewardModelConfig(steps=400)),
        reinforce=ReinforceConfig(steps=600), n_queries=20_000, facts=FACT_RECIPES["full"]),
}


def recipe(scale: str) -> AlignmentRecipe:
    """The recipe of ``scale`` (``"quick"`` or ``"full"``)."""
    return at_scale(RECIPES, scale)

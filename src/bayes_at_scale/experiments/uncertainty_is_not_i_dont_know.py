"""Chapter 4's experiment: does a Laplace posterior stop a model from stating confident
nonsense?

On the fact world of :mod:`bayes_at_scale.worlds.facts`, train a small causal model to
its MAP, put the default Laplace posterior over it
(:mod:`bayes_at_scale.core.posteriors`), and ask four kinds of question: fresh queries
drawn from the mention distribution, entities never seen, entities by count bucket, and
the misinformation entities.  For every query we record the answer of the network (MAP)
and of the Laplace predictive (LA), their confidence (top probability), the probability
of "unknown", and LA's mutual information from seeded posterior samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..core import metrics
from ..core.answer_posteriors import answer_probabilities, fit_answer_posterior
from ..core.checks import (
    check_finite_array,
    check_instance,
    check_int,
    check_number,
    check_positive_int,
    check_probabilities,
)
from ..worlds.fragments import count_bucket
from ..worlds.facts import (
    ANSWER_HALVES,
    ANSWER_QUERIES,
    ANSWER_SAMPLES,
    FACT_RECIPES,
    FactWorld,
    answer_outcome,
    answer_table,
    confident_answers,
    detection_labels,
    fact_world,
    train_fact_model,
    graded_score,
)
from ..worlds.facts import ROUND2_FACT_RECIPES, outcome_grades
from ..core.models import CausalLM, NextToken
from ..core.posteriors import DEFAULT_FLAVOUR, count_loader, fit_posterior
from ..core.settings import at_scale, derive_seed
from ..core.training import Recipe, excess_loss

MODELS = ("MAP", "LA")
# Kalai et al. (2025): right +1, "unknown" 0, wrong -t/(1-t) = -3
GRADING_THRESHOLD = 0.75


@dataclass(frozen=True)
class FactReplicate:
    """One seed's fact world, trained network, posterior and query tables."""

    seed: int
    world: FactWorld
    model: CausalLM
    fresh: pd.DataFrame  # queries drawn from the mention distribution
    fresh_probs: dict  # their next-token distributions, MAP and LA
    unseen: pd.DataFrame  # every entity never mentioned in training
    seen: pd.DataFrame  # every entity mentioned at least once
    seen_probs: dict  # their next-token distributions, MAP and LA

    @property
    def excess_loss(self) -> float:
        """Training NLL per token above the corpus's conditional entropy (0:
        memorised)."""
        return excess_loss(self.model, *self.world.next_token_counts())

    @property
    def misinformation(self) -> pd.DataFrame:
        """Seen misinformation entities, with P(repeated wrong value) under MAP and
        LA."""
        mis = self.seen[self.seen["misinformation"]].copy()
        wrong = self.world.entities["wrong_value"].to_numpy()[mis["entity"].to_numpy()]
        rows = mis.index.to_numpy()
        for name in MODELS:
            mis[f"p_wrong_{name}"] = self.seen_probs[name][rows, wrong]
        return mis


def recipe(scale: str) -> Recipe:
    """Chapter 4's recipe at ``scale``: the fact world's
    (:data:`~bayes_at_scale.worlds.facts.FACT_RECIPES`)."""
    return at_scale(FACT_RECIPES, scale)


def run_facts(
    recipe: Recipe, seed: int, n_queries: int = 4000, n_samples: int = 200
) -> FactReplicate:
    """Sample the world, train the network, fit the default posterior, answer every
    query set."""
    world = fact_world(recipe, seed)
    model = train_fact_model(world, recipe, seed)
    posterior = fit_posterior(
        NextToken(model), count_loader(*world.next_token_counts()), DEFAULT_FLAVOUR
    )
    fresh, fresh_probs = answer_table(
        world,
        model,
        posterior,
        world.sample_queries(n_queries, seed=derive_seed(seed, 1)),
        n_samples,
        seed,
    )
    unseen, _ = answer_table(world, model, posterior, world.unseen(), n_samples, seed)
    seen, seen_probs = answer_table(
        world, model, posterior, world.seen(), n_samples, seed
    )
    # the posterior stays here (laplace-torch's hooks do not travel between processes):
    # what a replicate keeps is its answers
    return FactReplicate(
        seed, world, model, fresh, fresh_probs, unseen, seen, seen_probs
    )


# --- the claims
# -----------------------------------------------------------------------------


def c6_statistics(rep: FactReplicate) -> dict:
    """Claim C6, on unseen entities: how much more often LA than MAP answers "unknown",
    and how much more probability it gives "unknown" (each with a paired bootstrap 95%
    interval)."""
    u = rep.unseen
    unknown = rep.world.unknown_token
    rate = (u["answer_LA"] == unknown).to_numpy(float) - (
        u["answer_MAP"] == unknown
    ).to_numpy(float)
    prob = (u["p_unknown_LA"] - u["p_unknown_MAP"]).to_numpy()
    return {
        "unknown_rate_gain": (
            rate.mean(),
            *metrics.bootstrap_ci(np.mean, rate, seed=rep.seed),
        ),
        "unknown_prob_gain": (
            prob.mean(),
            *metrics.bootstrap_ci(np.mean, prob, seed=rep.seed),
        ),
    }


def c7_statistics(rep: FactReplicate) -> dict:
    """Claim C7, on fresh queries: LA's hallucination rate over the monofact rate, and
    the absolute gap between LA's and MAP's hallucination rates (bootstrap 95%
    intervals)."""
    h_la, h_map = (hallucinated(rep.fresh, name, rep.world) for name in ("LA", "MAP"))
    mono = rep.world.monofact_rate
    if mono <= 0:
        raise ValueError(
            "the monofact rate is 0 (no fact seen exactly once): C7's ratio is "
            "undefined"
        )
    return {
        "hallucination_over_monofact": (
            h_la.mean() / mono,
            *(np.array(metrics.bootstrap_ci(np.mean, h_la, seed=rep.seed)) / mono),
        ),
        "hallucination_gap": (
            abs(h_la.mean() - h_map.mean()),
            *metrics.bootstrap_ci(
                lambda a, b: abs(a.mean() - b.mean()), h_la, h_map, seed=rep.seed
            ),
        ),
    }


def c8_statistics(rep: FactReplicate) -> dict:
    """Claim C8, on the misinformation entities: the share given P_LA(wrong value) >=
    0.9, and their mean MI minus the 25th percentile of MI over all seen entities."""
    mis = rep.misinformation
    if mis.empty:
        raise ValueError("no misinformation entity was seen in training")
    q25 = float(np.quantile(rep.seen["mi_LA"], 0.25))
    return {
        "share_confident_wrong": float((mis["p_wrong_LA"] >= 0.9).mean()),
        "mi_minus_q25": float(mis["mi_LA"].mean() - q25),
    }


def hallucinated(table: pd.DataFrame, model: str, world: FactWorld) -> np.ndarray:
    """1.0 where the model's answer is a concrete value and false (never for "unknown"
    or a token that is no answer), as
    :func:`bayes_at_scale.worlds.facts.hallucination_rate` counts."""
    answers = table[f"answer_{model}"].to_numpy()
    return (
        (table[f"outcome_{model}"].to_numpy() == "wrong")
        & np.isin(answers, world.value_tokens)
    ).astype(float)


def c9_statistics(rep: FactReplicate) -> dict:
    """Claim C9, on fresh queries: AUROC of LA's MI for flagging LA's wrong answers
    minus AUROC of MAP's 1 - top probability for flagging MAP's, with a paired bootstrap
    95% interval."""
    f = rep.fresh
    mi, wrong_la = f["mi_LA"].to_numpy(), detection_labels(f, "LA")
    doubt, wrong_map = 1 - f["confidence_MAP"].to_numpy(), detection_labels(f, "MAP")

    def difference(a, b, c, d):
        return metrics.auroc(a, b) - metrics.auroc(c, d)

    diff = difference(mi, wrong_la, doubt, wrong_map)
    low, high = metrics.bootstrap_ci(
        difference, mi, wrong_la, doubt, wrong_map, seed=rep.seed, n_resamples=500
    )
    return {"auroc_difference": (diff, low, high), "ci_low_auroc_difference": low}


# --- tables and curves for the figures
# ------------------------------------------------------


def with_bucket(table: pd.DataFrame) -> pd.DataFrame:
    """The count bucket of each query's entity, with "unseen" for n = 0."""
    bucket = pd.Series("unseen", index=table.index, dtype=object)
    seen = table["n"] > 0
    if seen.any():
        bucket[seen] = count_bucket(table.loc[seen, "n"]).astype(str)
    order = ["unseen", *count_bucket([1]).categories]
    return table.assign(bucket=pd.Categorical(bucket, categories=order, ordered=True))


def hallucination_by_bucket(table: pd.DataFrame, world: FactWorld) -> pd.DataFrame:
    """Long table: per query and model, whether the answer is a hallucination, with its
    bucket."""
    rows = []
    for name in MODELS:
        rows.append(
            with_bucket(table).assign(
                model=name, hallucination=hallucinated(table, name, world)
            )
        )
    return pd.concat(rows, ignore_index=True)


def hallucination_rates(reps) -> pd.DataFrame:
    """:func:`hallucination_by_bucket` for every replicate's fresh queries, with each
    query counted once more in an "all queries" bucket (for the overall rate)."""
    rates = pd.concat([hallucination_by_bucket(r.fresh, r.world) for r in reps])
    rates = pd.concat([rates, rates.assign(bucket="all queries")])
    order = ["unseen", *count_bucket([1]).categories, "all queries"]
    return rates.assign(bucket=pd.Categorical(rates["bucket"].astype(str), order))


def unknown_on_unseen(reps) -> pd.DataFrame:
    """Long table over the entities never seen, per replicate and model: P("unknown")
    and whether "unknown" is the answer (columns model, seed, measure, value)."""
    wide = pd.concat(
        [
            pd.DataFrame(
                {
                    "model": name,
                    "seed": r.seed,
                    "P(unknown)": r.unseen[f"p_unknown_{name}"],
                    "answers unknown": (
                        (r.unseen[f"answer_{name}"] == r.world.unknown_token).astype(
                            float
                        )
                    ),
                }
            )
            for r in reps
            for name in MODELS
        ]
    )
    return wide.melt(id_vars=["model", "seed"], var_name="measure", value_name="value")


def roc_table(table: pd.DataFrame) -> pd.DataFrame:
    """ROC curves for flagging wrong answers: MAP's 1 - top probability, LA's 1 - top
    probability, and LA's mutual information."""
    scores = {
        "MAP: 1 - max p": (1 - table["confidence_MAP"], "MAP"),
        "LA: 1 - max p": (1 - table["confidence_LA"], "LA"),
        "LA: mutual information": (table["mi_LA"], "LA"),
    }
    rows = []
    for name, (score, model) in scores.items():
        labels = detection_labels(table, model)
        fpr, tpr = metrics.roc_curve(score.to_numpy(), labels)
        rows.append(
            pd.DataFrame(
                {
                    "score": (
                        f"{name} (AUROC {metrics.auroc(score.to_numpy(), labels):.3f})"
                    ),
                    "false positive rate": fpr,
                    "true positive rate": tpr,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def policy_scores(rep: FactReplicate, thresholds) -> pd.DataFrame:
    """Answer-only-if-confident policies on the fresh queries: for each confidence
    threshold and model, the mean score under the t = 0.75 grading, the share answered
    and the hallucination rate."""
    entities = rep.fresh["entity"].to_numpy()
    rows = []
    for name in MODELS:
        for t in thresholds:
            answers = confident_answers(rep.fresh_probs[name], rep.world, float(t))
            outcomes = answer_outcome(answers, rep.world, entities)
            rows.append(
                {
                    "seed": rep.seed,
                    "model": name,
                    "threshold": float(t),
                    "score": graded_score(outcomes, GRADING_THRESHOLD),
                    "answered": float((answers != rep.world.unknown_token).mean()),
                    "hallucination": float(
                        (
                            (outcomes == "wrong")
                            & np.isin(answers, rep.world.value_tokens)
                        ).mean()
                    ),
                }
            )
    return pd.DataFrame(rows)


# === Round 2 (claims C21-C24): the answer-restricted posterior at its own mode
# ==============
#
# Round 1 scored the probit predictive over the whole vocabulary, which flattened every
# prediction (a mutual information of about 2 nats everywhere).  Round 2 asks the same
# questions of :mod:`bayes_at_scale.core.answer_posteriors`: the network's answer head
# retrained at the Laplace's own prior, a KFAC GGN posterior over it, and the Monte
# Carlo GLM predictive over the tokens that can answer (the values and "unknown"),
# renormalised.  "MAP" is that mode's own answer distribution, "LA" the mean of the
# posterior's sampled answer distributions, and the mutual information comes from the
# same samples.

#: Fresh queries per seed (C21-C24 ask for at least 20,000).
N_QUERIES = 20_000
#: GLM logit samples of the Laplace predictive and its mutual information (at least
#: 200).
N_SAMPLES = 200
#: C22: the probability of the repeated wrong value that counts as believing it.
CONFIDENT = 0.9
#: C23: the share of MAP's distance to a perfect AUROC that the posterior's score must
#: gain.
GAP_SHARE = 0.25
#: C23 and C24: the candidate scores of the Laplace posterior, chosen between on one
#: half.
LA_SCORES = ("mutual information", "1 - max p")
#: The network's own score (C23, C24).
MAP_SCORE = "1 - max p"
#: Resamples of the paired bootstraps: proportions and means, and the costlier AUROCs.
N_RESAMPLES = 1000
N_RESAMPLES_AUROC = 500
#: Share answered at which the policy figure evaluates each score's abstention curve.
COVERAGES = tuple(i / 50 for i in range(51))


def round2_recipe(scale: str) -> Recipe:
    """Round 2's recipe at ``scale``
    (:data:`~bayes_at_scale.worlds.facts.ROUND2_FACT_RECIPES`)."""
    return at_scale(ROUND2_FACT_RECIPES, scale)


@dataclass(frozen=True)
class AnswerReplicate:
    """One seed of round 2: the world, one row of answers per entity, and the fresh
    queries.

    ``entities`` (:func:`answer_entities`) holds, per entity of the world, the answers
    of the mode (MAP) and of the Laplace predictive (LA), their outcomes and
    confidences, the probability of the repeated wrong value and LA's mutual
    information.  ``queries`` are the entities of the fresh queries, ``selection`` marks
    the half on which scores and thresholds are chosen (the other half evaluates them).
    ``gradient_norm``, ``prior_precision`` and ``fit_seconds`` describe the posterior's
    fit, ``excess_loss`` the trained network's training NLL above the corpus's
    conditional entropy; ``statistics`` the claims' statistics, computed in the worker
    that ran the seed (their bootstraps are the costly part).
    """

    seed: int
    world: FactWorld
    entities: pd.DataFrame
    queries: np.ndarray
    selection: np.ndarray
    gradient_norm: float
    prior_precision: tuple[float, ...]
    fit_seconds: float
    excess_loss: float
    statistics: dict = field(default_factory=dict)

    @property
    def fresh(self) -> pd.DataFrame:
        """One row per fresh query: its entity's row of :attr:`entities`, and
        ``half``."""
        table = self.entities.iloc[self.queries].reset_index(drop=True)
        return table.assign(half=np.where(self.selection, "selection", "evaluation"))


def answer_entities(world: FactWorld, probs: dict, mi) -> pd.DataFrame:
    """One row per entity of ``world``: what MAP and LA answer about it.

    ``probs`` maps ``"MAP"`` and ``"LA"`` to answer distributions ``(n_entities, A)``
    over :attr:`~bayes_at_scale.worlds.facts.FactWorld.answer_tokens` (each row sums to
    1); ``mi`` is LA's mutual information per entity.  For each model the columns
    ``answer_<m>`` (a token id: the most probable answer), ``outcome_<m>``,
    ``confidence_<m>`` (its probability), ``p_unknown_<m>`` and ``p_wrong_<m>`` (the
    probability of the repeated wrong value; NaN for entities without misinformation);
    then ``mi_LA``.
    """
    check_instance("world", world, FactWorld)
    n, a = world.n_entities, len(world.answer_tokens)
    mi = check_finite_array(mi, "mi", 1)
    if mi.shape != (n,):
        raise ValueError(f"mi must have shape ({n},), got {mi.shape}")
    if set(probs) != set(MODELS):
        raise ValueError(
            f"probs must map exactly {MODELS} to answer distributions, got "
            f"{sorted(probs)}"
        )
    e = world.entities
    table = e[
        [
            "entity",
            "n",
            "count_truth",
            "count_wrong",
            "truth",
            "is_unknown",
            "misinformation",
            "wrong_value",
        ]
    ].reset_index(drop=True)
    column = {int(t): i for i, t in enumerate(world.answer_tokens)}
    mis = e["misinformation"].to_numpy(bool)
    wrong_column = np.array([column.get(int(t), 0) for t in e["wrong_value"]])
    for name in MODELS:
        p = check_probabilities(probs[name], f"probs[{name!r}]")
        if p.shape != (n, a):
            raise ValueError(
                f"probs[{name!r}] must have shape ({n}, {a}), got {p.shape}"
            )
        best = p.argmax(axis=1)
        answer = world.answer_tokens[best]
        table[f"answer_{name}"] = answer
        table[f"outcome_{name}"] = answer_outcome(
            answer, world, table["entity"].to_numpy()
        )
        table[f"confidence_{name}"] = p[np.arange(n), best]
        table[f"p_unknown_{name}"] = p[:, column[world.unknown_token]]
        table[f"p_wrong_{name}"] = np.where(mis, p[np.arange(n), wrong_column], np.nan)
    table["mi_LA"] = mi
    return table


def run_answers(
    recipe: Recipe,
    seed: int,
    n_queries: int = N_QUERIES,
    n_samples: int = N_SAMPLES,
    statistics: bool = True,
) -> AnswerReplicate:
    """Round 2 on one seed: sample the world, train the network, fit the answer
    posterior (last layer, at its own mode), answer about every entity, draw
    ``n_queries`` fresh queries from the mention distribution and split them in halves;
    with ``statistics`` also compute the claims' statistics (:func:`round2_statistics`)
    here, in the worker."""
    n_queries = check_int("n_queries", n_queries, minimum=2)
    n_samples = check_positive_int("n_samples", n_samples)
    world = fact_world(recipe, seed)
    model = train_fact_model(world, recipe, seed)
    posterior = fit_answer_posterior(
        model, *world.next_token_counts(), world.answer_tokens, flavour="last_layer"
    )
    probs, mi = answer_probabilities(
        posterior, world.prompts(), n_samples, derive_seed(seed, ANSWER_SAMPLES)
    )
    queries = world.sample_queries(n_queries, seed=derive_seed(seed, ANSWER_QUERIES))
    rep = AnswerReplicate(
        seed=seed,
        world=world,
        entities=answer_entities(world, probs, mi),
        queries=queries,
        selection=metrics.split_halves(len(queries), derive_seed(seed, ANSWER_HALVES)),
        gradient_norm=float(posterior.gradient_norm),
        prior_precision=tuple(
            float(p) for p in np.atleast_1d(posterior.prior_precision)
        ),
        fit_seconds=float(posterior.fit_seconds),
        excess_loss=excess_loss(model, *world.next_token_counts()),
    )
    return replace(rep, statistics=round2_statistics(rep)) if statistics else rep


# --- C21: hallucination and the monofact rate of true facts
# -------------------------------


def _share(flags: np.ndarray) -> float:
    """The share of True in ``flags`` (NaN when there are none)."""
    return float(flags.mean()) if flags.size else float("nan")


def c21_statistics(rep: AnswerReplicate, n_resamples: int = N_RESAMPLES) -> dict:
    """Claim C21 on the fresh queries: their number, LA's hallucination rate over the
    monofact rate of the true-fact mentions, and ``|LA's rate - MAP's rate|`` (bootstrap
    95% intervals over the queries; the monofact rate is a fixed property of the
    corpus)."""
    fresh = rep.fresh
    h_la, h_map = (hallucinated(fresh, name, rep.world) for name in ("LA", "MAP"))
    monofact = rep.world.true_fact_monofact_rate
    unseen = (fresh["n"] == 0).to_numpy()
    return {
        "queries": float(len(fresh)),
        **hallucination_statistics(
            h_la, h_map, monofact, seed=rep.seed, n_resamples=n_resamples
        ),
        "rate_LA": float(h_la.mean()),
        "rate_MAP": float(h_map.mean()),
        "monofact_true_facts": monofact,
        "monofact_all_mentions": rep.world.monofact_rate,
        "missing_mass": rep.world.missing_mass,
        "unseen_share": float(unseen.mean()),
        "hallucination_unseen_LA": _share(h_la[unseen] == 1),
        "hallucinations_on_unseen": float(h_la[unseen].sum() / max(h_la.sum(), 1)),
        "unknown_unseen_LA": _share(
            fresh["outcome_LA"].to_numpy()[unseen] == "unknown"
        ),
        "disagreements": float((fresh["answer_LA"] != fresh["answer_MAP"]).sum()),
    }


def hallucination_statistics(
    h_la, h_map, monofact: float, seed: int, n_resamples: int = N_RESAMPLES
) -> dict:
    """C21's two statistics from per-query hallucination indicators (1.0 = a false
    concrete value) of LA and MAP and a monofact rate: ``hallucination_to_monofact`` =
    mean(h_la) / monofact and ``abs_rate_difference`` = ``|mean(h_la) - mean(h_map)|``,
    each as (value, low, high) with a paired bootstrap 95% interval."""
    h_la, h_map = (
        check_finite_array(h, name, 1) for h, name in ((h_la, "h_la"), (h_map, "h_map"))
    )
    if h_la.shape != h_map.shape:
        raise ValueError(
            f"h_la and h_map must have the same shape, got {h_la.shape} and "
            f"{h_map.shape}"
        )
    if not np.isin(h_la, (0.0, 1.0)).all() or not np.isin(h_map, (0.0, 1.0)).all():
        raise ValueError("hallucination indicators must be 0 or 1")
    monofact = check_number("monofact", monofact, 0.0, 1.0, high_open=False)
    ratio_low, ratio_high = metrics.bootstrap_ci(
        np.mean, h_la, seed=seed, n_resamples=n_resamples
    )

    def gap(a, b):
        return abs(a.mean() - b.mean())

    return {
        "hallucination_to_monofact": (
            h_la.mean() / monofact,
            ratio_low / monofact,
            ratio_high / monofact,
        ),
        "abs_rate_difference": (
            gap(h_la, h_map),
            *metrics.bootstrap_ci(gap, h_la, h_map, seed=seed, n_resamples=n_resamples),
        ),
    }


# --- C22: repeated misinformation
# -----------------------------------------------------------


def c22_statistics(rep: AnswerReplicate) -> dict:
    """Claim C22 on the misinformation entities (all seen in training): their number,
    the share of them given P_LA(repeated wrong value) >= 0.9, and their mean MI minus
    the 25th percentile of MI over every seen entity."""
    e = rep.entities
    mis = e[e["misinformation"]]
    seen_mi = e.loc[e["n"] > 0, "mi_LA"]
    # beside the rule: who else believes the wrong value, and where the LA share comes
    # from
    uncontested = (mis["count_truth"] == 0).to_numpy()
    confident = (mis["p_wrong_LA"] >= CONFIDENT).to_numpy()
    # the corpus's own frequency of the wrong value
    corpus = mis["count_wrong"] / mis["n"]
    return {
        **confident_wrong_statistics(mis["p_wrong_LA"], mis["mi_LA"], seen_mi),
        "share_confident_MAP": float((mis["p_wrong_MAP"] >= CONFIDENT).mean()),
        "share_confident_corpus": float((corpus >= CONFIDENT).mean()),
        "share_uncontested": float(uncontested.mean()),
        "share_confident_uncontested": _share(confident[uncontested]),
        "share_confident_contested": _share(confident[~uncontested]),
        "share_corpus_confident_contested": _share(
            (corpus >= CONFIDENT).to_numpy()[~uncontested]
        ),
        "mi_misinformation": float(mis["mi_LA"].mean()),
        "mi_seen_q25": float(np.quantile(seen_mi, 0.25)),
        "mi_unseen_median": float(e.loc[e["n"] == 0, "mi_LA"].median()),
    }


def confident_wrong_statistics(p_wrong, mi_misinformation, mi_seen) -> dict:
    """C22's statistics: ``misinformation_entities`` (how many),
    ``share_confident_wrong`` (share of ``p_wrong >= 0.9``) and ``mi_minus_seen_q25``
    (mean of ``mi_misinformation`` minus the 25th percentile of ``mi_seen``)."""
    p = check_finite_array(p_wrong, "p_wrong", 1)
    mi_mis = check_finite_array(mi_misinformation, "mi_misinformation", 1)
    mi_seen = check_finite_array(mi_seen, "mi_seen", 1)
    if p.shape != mi_mis.shape:
        raise ValueError(
            "p_wrong and mi_misinformation must have the same shape, got "
            f"{p.shape} and {mi_mis.shape}"
        )
    if (p < 0).any() or (p > 1).any():
        raise ValueError("p_wrong must hold probabilities in [0, 1]")
    return {
        "misinformation_entities": float(p.size),
        "share_confident_wrong": float((p >= CONFIDENT).mean()),
        "mi_minus_seen_q25": float(mi_mis.mean() - np.quantile(mi_seen, 0.25)),
    }


# --- C23: flagging wrong answers, a score chosen on one half
# --------------------------------


def scores(table: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Each model's candidate scores of doubt per query (higher = more likely wrong):
    LA's mutual information and 1 - max p, and MAP's 1 - max p."""
    return {
        "LA": {
            LA_SCORES[0]: table["mi_LA"].to_numpy(float),
            LA_SCORES[1]: 1 - table["confidence_LA"].to_numpy(float),
        },
        "MAP": {MAP_SCORE: 1 - table["confidence_MAP"].to_numpy(float)},
    }


def la_score_choice(rep: AnswerReplicate) -> str:
    """Score_LA of ``rep``: LA's candidate score that flags LA's wrong answers best on
    the selection half."""
    fresh = rep.fresh
    return metrics.choose_score(
        scores(fresh)["LA"], detection_labels(fresh, "LA"), rep.selection
    )


def auroc_gain_statistics(
    score_la,
    wrong_la,
    score_map,
    wrong_map,
    seed: int,
    n_resamples: int = N_RESAMPLES_AUROC,
) -> dict:
    """C23's statistics on the evaluation half: ``auroc_gain_minus_quarter_gap`` =
    AUROC(score_la) - AUROC(score_map) - 0.25 x (1 - AUROC(score_map)) with its paired
    bootstrap 95% interval, and ``ci_low_auroc_difference``, the low end of the paired
    bootstrap interval of AUROC(score_la) - AUROC(score_map); each score flags its own
    model's wrong answers.  The two AUROCs are returned too (``auroc_la``,
    ``auroc_map``)."""
    arrays = [
        check_finite_array(x, name, 1)
        for x, name in (
            (score_la, "score_la"),
            (wrong_la, "wrong_la"),
            (score_map, "score_map"),
            (wrong_map, "wrong_map"),
        )
    ]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("scores and labels must have the same shape")

    # Both bootstraps draw the same resamples (same seed, same data): each resample's
    # pair of AUROCs is computed once, found again by the resample's content (a cache
    # miss would only cost time, never change a number).
    cache: dict[bytes, tuple[float, float]] = {}

    def aurocs(a, b, c, d):
        key = hashlib.sha1(
            b"".join(np.ascontiguousarray(x).tobytes() for x in (a, b, c, d))
        ).digest()
        if key not in cache:
            cache[key] = metrics.auroc(a, b), metrics.auroc(c, d)
        return cache[key]

    def difference(*resample):
        la_, map_ = aurocs(*resample)
        return la_ - map_

    def gain(*resample):
        la_, map_ = aurocs(*resample)
        return la_ - map_ - GAP_SHARE * (1 - map_)

    auroc_la, auroc_map = aurocs(*arrays)
    return {
        "auroc_gain_minus_quarter_gap": (
            gain(*arrays),
            *metrics.bootstrap_ci(gain, *arrays, seed=seed, n_resamples=n_resamples),
        ),
        "ci_low_auroc_difference": metrics.bootstrap_ci(
            difference, *arrays, seed=seed, n_resamples=n_resamples
        )[0],
        "auroc_la": auroc_la,
        "auroc_map": auroc_map,
    }


def c23_statistics(rep: AnswerReplicate, n_resamples: int = N_RESAMPLES_AUROC) -> dict:
    """Claim C23: Score_LA chosen on the selection half (:func:`la_score_choice`), both
    scores then evaluated on the evaluation half (:func:`auroc_gain_statistics`)."""
    fresh = rep.fresh
    choice = la_score_choice(rep)
    held, s = ~rep.selection, scores(fresh)
    wrong_la, wrong_map = detection_labels(fresh, "LA"), detection_labels(fresh, "MAP")
    seen_by_choice = {
        f"auroc_selection_{i}": metrics.auroc(
            score[rep.selection], wrong_la[rep.selection]
        )
        for i, score in enumerate(s["LA"].values())
    }
    return {
        **auroc_gain_statistics(
            s["LA"][choice][held],
            wrong_la[held],
            s["MAP"][MAP_SCORE][held],
            wrong_map[held],
            seed=rep.seed,
            n_resamples=n_resamples,
        ),
        "score_la": float(LA_SCORES.index(choice)),
        **seen_by_choice,
    }


# --- C24: abstention policies under the t = 0.75 grading
# ------------------------------------


def policy_grades(
    table: pd.DataFrame, model: str, world: FactWorld
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the grade (t = 0.75: right +1, "unknown" 0, wrong -3) of ``model``
    answering its most probable answer, and of it abstaining ("unknown": +1 where the
    fact is unknown)."""
    answer = outcome_grades(table[f"outcome_{model}"].to_numpy(), GRADING_THRESHOLD)
    entities = table["entity"].to_numpy()
    abstain = answer_outcome(np.full(len(table), world.unknown_token), world, entities)
    return answer, outcome_grades(abstain, GRADING_THRESHOLD)


def _policy_inputs(score, answer_grades, abstain_grades) -> tuple[np.ndarray, ...]:
    arrays = [
        check_finite_array(x, name, 1)
        for x, name in (
            (score, "score"),
            (answer_grades, "answer_grades"),
            (abstain_grades, "abstain_grades"),
        )
    ]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(
            "score, answer_grades and abstain_grades must have the same shape, got "
            f"{[a.shape for a in arrays]}"
        )
    return tuple(arrays)


def abstain_above(score, answer_grades, abstain_grades, threshold: float) -> np.ndarray:
    """Per-query grades of the policy that answers unless ``score > threshold``, then
    abstains."""
    score, answer, abstain = _policy_inputs(score, answer_grades, abstain_grades)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.number))
        or np.isnan(threshold)
    ):
        raise ValueError(
            f"threshold must be a number (inf: never abstain), got {threshold!r}"
        )
    return np.where(score > threshold, abstain, answer)


def best_threshold(score, answer_grades, abstain_grades) -> float:
    """The threshold of :func:`abstain_above` with the highest mean grade on these
    queries.

    Candidates are -inf (always abstain) and every distinct score (abstain above it; the
    largest one: never abstain).  Among thresholds with the same mean grade, the largest
    (the policy that answers most) wins.
    """
    score, answer, abstain = _policy_inputs(score, answer_grades, abstain_grades)
    order = np.argsort(score, kind="stable")
    s = score[order]
    # answering the k lowest-scoring queries and abstaining on the rest
    gains = np.concatenate([[0.0], np.cumsum(answer[order] - abstain[order])])
    # the last of each tie group
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    totals = np.concatenate([[gains[0]], gains[last + 1]])
    candidates = np.concatenate([[-np.inf], s[last]])
    best = np.flatnonzero(totals >= totals.max() - 1e-12 * max(1.0, abs(totals.max())))[
        -1
    ]
    return float(candidates[best])


def abstention_statistics(
    la, map_, selection, seed: int, n_resamples: int = N_RESAMPLES
) -> dict:
    """C24's statistics.  ``la`` and ``map_`` are each ``(score, answer_grades,
    abstain_grades)`` per query; each policy's threshold is chosen on the ``selection``
    half (:func:`best_threshold`), and both are graded on the other half:
    ``grade_difference`` = mean grade(LA policy) - mean grade(MAP policy) with its
    paired bootstrap 95% interval, and ``ci_low_grade_difference`` the low end.  Also
    each policy's threshold, share answered and mean grade on the evaluation half."""
    selection = np.asarray(selection)
    if selection.dtype != bool or selection.ndim != 1:
        raise ValueError("selection must be a one-dimensional boolean mask")
    if selection.all() or not selection.any():
        raise ValueError("both halves must hold queries")
    out, grades = {}, {}
    for name, inputs in (("LA", la), ("MAP", map_)):
        arrays = _policy_inputs(*inputs)
        if arrays[0].shape != selection.shape:
            raise ValueError(
                f"the {name} policy's inputs must have shape {selection.shape}, "
                f"got {arrays[0].shape}"
            )
        threshold = best_threshold(*(a[selection] for a in arrays))
        held = [a[~selection] for a in arrays]
        grades[name] = abstain_above(*held, threshold)
        out[f"threshold_{name}"] = threshold
        out[f"answered_{name}"] = float((held[0] <= threshold).mean())
        out[f"grade_{name}"] = float(grades[name].mean())
    diff = grades["LA"] - grades["MAP"]
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=seed, n_resamples=n_resamples)
    return {
        "grade_difference": (float(diff.mean()), low, high),
        "ci_low_grade_difference": low,
        **out,
    }


def c24_statistics(rep: AnswerReplicate, n_resamples: int = N_RESAMPLES) -> dict:
    """Claim C24: the LA policy abstains on Score_LA (:func:`la_score_choice`), the MAP
    policy on 1 - max p; thresholds chosen on the selection half, grades compared on the
    other."""
    fresh = rep.fresh
    s = scores(fresh)
    return abstention_statistics(
        (s["LA"][la_score_choice(rep)], *policy_grades(fresh, "LA", rep.world)),
        (s["MAP"][MAP_SCORE], *policy_grades(fresh, "MAP", rep.world)),
        rep.selection,
        seed=rep.seed,
        n_resamples=n_resamples,
    )


def round2_statistics(rep: AnswerReplicate) -> dict:
    """Every round-2 claim's statistics of ``rep``: ``{"C21": {...}, ..., "C24":
    {...}}``."""
    return {
        "C21": c21_statistics(rep),
        "C22": c22_statistics(rep),
        "C23": c23_statistics(rep),
        "C24": c24_statistics(rep),
    }


def verdict_statistics(reps, claim_id: str) -> list[dict]:
    """Each replicate's statistics of ``claim_id`` (computed where it ran, or here)."""
    return [(r.statistics or round2_statistics(r))[claim_id] for r in reps]


def statistics_table(reps, claim_id: str) -> pd.DataFrame:
    """One row per replicate (index: seed): every statistic of ``claim_id`` that
    :func:`round2_statistics` computes, the value alone where it comes with an
    interval."""
    rows = [
        {
            name: value[0] if isinstance(value, tuple) else value
            for name, value in stats.items()
        }
        for stats in verdict_statistics(reps, claim_id)
    ]
    return pd.DataFrame(rows, index=pd.Index([r.seed for r in reps], name="seed"))


def fit_summary(reps) -> pd.DataFrame:
    """One row per replicate (index: seed): the corpus (entities seen, misinformation
    entities, monofact rates with and without the misinformation mentions), the trained
    network's excess training loss, and the posterior's fit (its prior precisions, one
    per weight tensor of the answer head, and the gradient norm of the regularised loss
    at its mode)."""
    rows = []
    for r in reps:
        summary = r.world.summary()
        rows.append(
            {
                "seen": summary["seen"],
                "misinformation": summary["misinformation"],
                "monofact (all)": summary["monofact_rate"],
                "monofact (true facts)": r.world.true_fact_monofact_rate,
                "excess loss": r.excess_loss,
                "prior precision": "/".join(f"{p:.3g}" for p in r.prior_precision),
                "gradient norm": r.gradient_norm,
            }
        )
    return pd.DataFrame(rows, index=pd.Index([r.seed for r in reps], name="seed"))


# --- the policy figure
# ----------------------------------------------------------------------


def coverage_grades(
    score, answer_grades, abstain_grades, coverages=COVERAGES
) -> np.ndarray:
    """Mean grade of answering the share ``c`` of the queries with the lowest score (and
    abstaining on the rest), for each ``c`` in ``coverages``."""
    score, answer, abstain = _policy_inputs(score, answer_grades, abstain_grades)
    c = check_finite_array(coverages, "coverages", 1)
    if (c < 0).any() or (c > 1).any():
        raise ValueError("coverages must lie in [0, 1]")
    order = np.argsort(score, kind="stable")
    gains = np.concatenate([[0.0], np.cumsum(answer[order] - abstain[order])])
    k = np.rint(c * len(score)).astype(int)
    return (abstain.sum() + gains[k]) / len(score)


def policy_curves(reps) -> pd.DataFrame:
    """Long table over replicates: on the evaluation half, the mean grade of answering
    each share of the queries that the policy's score doubts least (columns seed,
    policy, share answered, mean grade).  The LA policy uses each seed's Score_LA."""
    rows = []
    for rep in reps:
        fresh, held = rep.fresh, ~rep.selection
        s = scores(fresh)
        for name, model, score in (
            ("LA (Score_LA)", "LA", s["LA"][la_score_choice(rep)]),
            ("MAP (1 - max p)", "MAP", s["MAP"][MAP_SCORE]),
        ):
            answer, abstain = policy_grades(fresh, model, rep.world)
            rows.append(
                pd.DataFrame(
                    {
                        "seed": rep.seed,
                        "policy": name,
                        "share answered": COVERAGES,
                        "mean grade": coverage_grades(
                            score[held], answer[held], abstain[held]
                        ),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def chosen_policies(reps) -> pd.DataFrame:
    """Per replicate and policy: the score, the threshold chosen on the selection half,
    and on the evaluation half the share answered and the mean grade (from C24's
    statistics)."""
    rows = []
    for rep, stats in zip(reps, verdict_statistics(reps, "C24")):
        choice = la_score_choice(rep)
        for name, model, score in (
            ("LA (Score_LA)", "LA", choice),
            ("MAP (1 - max p)", "MAP", MAP_SCORE),
        ):
            rows.append(
                {
                    "seed": rep.seed,
                    "policy": name,
                    "score": score,
                    "threshold": stats[f"threshold_{model}"],
                    "share answered": stats[f"answered_{model}"],
                    "mean grade": stats[f"grade_{model}"],
                }
            )
    return pd.DataFrame(rows)

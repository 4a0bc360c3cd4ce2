"""Chapter 4's experiment: does a Laplace posterior stop a model from stating confident nonsense?

On the fact world of :mod:`bayes_at_scale.worlds.facts`, train a small causal model to its MAP, put the
default Laplace posterior over it (:mod:`bayes_at_scale.core.posteriors`), and ask four kinds of
question: fresh queries drawn from the mention distribution, entities never seen, entities by
count bucket, and the misinformation entities.  For every query we record the answer of the
network (MAP) and of the Laplace predictive (LA), their confidence (top probability), the
probability of "unknown", and LA's mutual information from seeded posterior samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core import metrics
from ..worlds.fragments import count_bucket
from ..worlds.facts import (FACT_RECIPES, FactWorld, answer_outcome, answer_table, confident_answers,
                            detection_labels, fact_world, train_fact_model,
                    graded_score)
from ..core.models import CausalLM, NextToken
from ..core.posteriors import DEFAULT_FLAVOUR, count_loader, fit_posterior
from ..core.settings import at_scale, derive_seed
from ..core.training import Recipe, excess_loss

MODELS = ("MAP", "LA")
GRADING_THRESHOLD = 0.75  # Kalai et al. (2025): right +1, "unknown" 0, wrong -t/(1-t) = -3


@dataclass(frozen=True)
class FactReplicate:
    """One seed's fact world, trained network, posterior and query tables."""

    seed: int
    world: FactWorld
    model: CausalLM
    fresh: pd.DataFrame          # queries drawn from the mention distribution
    fresh_probs: dict            # their next-token distributions, MAP and LA
    unseen: pd.DataFrame         # every entity never mentioned in training
    seen: pd.DataFrame           # every entity mentioned at least once
    seen_probs: dict             # their next-token distributions, MAP and LA

    @property
    def excess_loss(self) -> float:
        """Training NLL per token above the corpus's conditional entropy (0: memorised)."""
        return excess_loss(self.model, *self.world.next_token_counts())

    @property
    def misinformation(self) -> pd.DataFrame:
        """Seen misinformation entities, with P(repeated wrong value) under MAP and LA."""
        mis = self.seen[self.seen["misinformation"]].copy()
        wrong = self.world.entities["wrong_value"].to_numpy()[mis["entity"].to_numpy()]
        rows = mis.index.to_numpy()
        for name in MODELS:
            mis[f"p_wrong_{name}"] = self.seen_probs[name][rows, wrong]
        return mis


def recipe(scale: str) -> Recipe:
    """Chapter 4's recipe at ``scale``: the fact world's (:data:`~bayes_at_scale.worlds.facts.FACT_RECIPES`)."""
    return at_scale(FACT_RECIPES, scale)


def run_facts(recipe: Recipe, seed: int, n_queries: int = 4000, n_samples: int = 200
              ) -> FactReplicate:
    """Sample the world, train the network, fit the default posterior, answer every query set."""
    world = fact_world(recipe, seed)
    model = train_fact_model(world, recipe, seed)
    posterior = fit_posterior(NextToken(model), count_loader(*world.next_token_counts()),
                              DEFAULT_FLAVOUR)
    fresh, fresh_probs = answer_table(world, model, posterior,
                                      world.sample_queries(n_queries, seed=derive_seed(seed, 1)),
                                      n_samples, seed)
    unseen, _ = answer_table(world, model, posterior, world.unseen(), n_samples, seed)
    seen, seen_probs = answer_table(world, model, posterior, world.seen(), n_samples, seed)
    # the posterior stays here (laplace-torch's hooks do not travel between processes): what a
    # replicate keeps is its answers
    return FactReplicate(seed, world, model, fresh, fresh_probs, unseen, seen, seen_probs)


# --- the claims -----------------------------------------------------------------------------


def c6_statistics(rep: FactReplicate) -> dict:
    """Claim C6, on unseen entities: how much more often LA than MAP answers "unknown", and how
    much more probability it gives "unknown" (each with a paired bootstrap 95% interval)."""
    u = rep.unseen
    unknown = rep.world.unknown_token
    rate = (u["answer_LA"] == unknown).to_numpy(float) - (u["answer_MAP"] == unknown).to_numpy(float)
    prob = (u["p_unknown_LA"] - u["p_unknown_MAP"]).to_numpy()
    return {"unknown_rate_gain": (rate.mean(), *metrics.bootstrap_ci(np.mean, rate, seed=rep.seed)),
            "unknown_prob_gain": (prob.mean(), *metrics.bootstrap_ci(np.mean, prob, seed=rep.seed))}


def c7_statistics(rep: FactReplicate) -> dict:
    """Claim C7, on fresh queries: LA's hallucination rate over the monofact rate, and the
    absolute gap between LA's and MAP's hallucination rates (bootstrap 95% intervals)."""
    h_la, h_map = (hallucinated(rep.fresh, name, rep.world) for name in ("LA", "MAP"))
    mono = rep.world.monofact_rate
    if mono <= 0:
        raise ValueError("the monofact rate is 0 (no fact seen exactly once): C7's ratio is "
                         "undefined")
    return {
        "hallucination_over_monofact": (h_la.mean() / mono, *(np.array(
            metrics.bootstrap_ci(np.mean, h_la, seed=rep.seed)) / mono)),
        "hallucination_gap": (abs(h_la.mean() - h_map.mean()), *metrics.bootstrap_ci(
            lambda a, b: abs(a.mean() - b.mean()), h_la, h_map, seed=rep.seed)),
    }


def c8_statistics(rep: FactReplicate) -> dict:
    """Claim C8, on the misinformation entities: the share given P_LA(wrong value) >= 0.9, and
    their mean MI minus the 25th percentile of MI over all seen entities."""
    mis = rep.misinformation
    if mis.empty:
        raise ValueError("no misinformation entity was seen in training")
    q25 = float(np.quantile(rep.seen["mi_LA"], 0.25))
    return {"share_confident_wrong": float((mis["p_wrong_LA"] >= 0.9).mean()),
            "mi_minus_q25": float(mis["mi_LA"].mean() - q25)}


def hallucinated(table: pd.DataFrame, model: str, world: FactWorld) -> np.ndarray:
    """1.0 where the model's answer is a concrete value and false (never for "unknown" or a
    token that is no answer), as :func:`bayes_at_scale.worlds.facts.hallucination_rate` counts."""
    answers = table[f"answer_{model}"].to_numpy()
    return ((table[f"outcome_{model}"].to_numpy() == "wrong")
            & np.isin(answers, world.value_tokens)).astype(float)


def c9_statistics(rep: FactReplicate) -> dict:
    """Claim C9, on fresh queries: AUROC of LA's MI for flagging LA's wrong answers minus AUROC
    of MAP's 1 - top probability for flagging MAP's, with a paired bootstrap 95% interval."""
    f = rep.fresh
    mi, wrong_la = f["mi_LA"].to_numpy(), detection_labels(f, "LA")
    doubt, wrong_map = 1 - f["confidence_MAP"].to_numpy(), detection_labels(f, "MAP")

    def difference(a, b, c, d):
        return metrics.auroc(a, b) - metrics.auroc(c, d)

    diff = difference(mi, wrong_la, doubt, wrong_map)
    low, high = metrics.bootstrap_ci(difference, mi, wrong_la, doubt, wrong_map, seed=rep.seed,
                                     n_resamples=500)
    return {"auroc_difference": (diff, low, high), "ci_low_auroc_difference": low}


# --- tables and curves for the figures ------------------------------------------------------


def with_bucket(table: pd.DataFrame) -> pd.DataFrame:
    """The count bucket of each query's entity, with "unseen" for n = 0."""
    bucket = pd.Series("unseen", index=table.index, dtype=object)
    seen = table["n"] > 0
    if seen.any():
        bucket[seen] = count_bucket(table.loc[seen, "n"]).astype(str)
    order = ["unseen", *count_bucket([1]).categories]
    return table.assign(bucket=pd.Categorical(bucket, categories=order, ordered=True))


def hallucination_by_bucket(table: pd.DataFrame, world: FactWorld) -> pd.DataFrame:
    """Long table: per query and model, whether the answer is a hallucination, with its bucket."""
    rows = []
    for name in MODELS:
        rows.append(with_bucket(table).assign(model=name,
                                              hallucination=hallucinated(table, name, world)))
    return pd.concat(rows, ignore_index=True)


def hallucination_rates(reps) -> pd.DataFrame:
    """:func:`hallucination_by_bucket` for every replicate's fresh queries, with each query
    counted once more in an "all queries" bucket (for the overall rate)."""
    rates = pd.concat([hallucination_by_bucket(r.fresh, r.world) for r in reps])
    rates = pd.concat([rates, rates.assign(bucket="all queries")])
    order = ["unseen", *count_bucket([1]).categories, "all queries"]
    return rates.assign(bucket=pd.Categorical(rates["bucket"].astype(str), order))


def unknown_on_unseen(reps) -> pd.DataFrame:
    """Long table over the entities never seen, per replicate and model: P("unknown") and
    whether "unknown" is the answer (columns model, seed, measure, value)."""
    wide = pd.concat([
        pd.DataFrame({"model": name, "seed": r.seed,
                      "P(unknown)": r.unseen[f"p_unknown_{name}"],
                      "answers unknown": (r.unseen[f"answer_{name}"]
                                          == r.world.unknown_token).astype(float)})
        for r in reps for name in MODELS])
    return wide.melt(id_vars=["model", "seed"], var_name="measure", value_name="value")


def roc_table(table: pd.DataFrame) -> pd.DataFrame:
    """ROC curves for flagging wrong answers: MAP's 1 - top probability, LA's 1 - top
    probability, and LA's mutual information."""
    scores = {"MAP: 1 - max p": (1 - table["confidence_MAP"], "MAP"),
              "LA: 1 - max p": (1 - table["confidence_LA"], "LA"),
              "LA: mutual information": (table["mi_LA"], "LA")}
    rows = []
    for name, (score, model) in scores.items():
        labels = detection_labels(table, model)
        fpr, tpr = metrics.roc_curve(score.to_numpy(), labels)
        rows.append(pd.DataFrame({"score": f"{name} (AUROC {metrics.auroc(score.to_numpy(), labels):.3f})",
                                  "false positive rate": fpr, "true positive rate": tpr}))
    return pd.concat(rows, ignore_index=True)


def policy_scores(rep: FactReplicate, thresholds) -> pd.DataFrame:
    """Answer-only-if-confident policies on the fresh queries: for each confidence threshold and
    model, the mean score under the t = 0.75 grading, the share answered and the
    hallucination rate."""
    entities = rep.fresh["entity"].to_numpy()
    rows = []
    for name in MODELS:
        for t in thresholds:
            answers = confident_answers(rep.fresh_probs[name], rep.world, float(t))
            outcomes = answer_outcome(answers, rep.world, entities)
            rows.append({"seed": rep.seed, "model": name, "threshold": float(t),
                         "score": graded_score(outcomes, GRADING_THRESHOLD),
                         "answered": float((answers != rep.world.unknown_token).mean()),
                         "hallucination": float(((outcomes == "wrong")
                                                 & np.isin(answers, rep.world.value_tokens)).mean())})
    return pd.DataFrame(rows)

"""Chapter 2's experiment: what a Laplace posterior adds to a next-token model.

On chapter 1's fragment corpus: fit posteriors of several flavours over the trained network
(:mod:`bayes_at_scale.posteriors`), and measure per fragment

* the *epistemic std* - the posterior spread of the probability of the fragment's most frequent
  completion - and the entropy decomposition total = aleatoric + mutual information;
* how far the network (MAP), the Laplace predictive (LA) and a hierarchical Dirichlet count model
  sit from the fragment's family frequency ``p_fam`` and from the uniform distribution;
* held-out NLL and ECE per count bucket.

Answer distributions are compared on the three answer tokens, renormalised: ``p_fam`` is defined
there, and mass a model puts on non-answer tokens is not a statement about the answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import optimize, stats

from . import metrics
from .corpora import ANSWERS, FragmentCorpus, count_bucket
from .models import CausalLM, NextToken, next_token_probs
from .posteriors import Posterior, fit_posterior, next_token_loader

RARE = 3          # n(f) <= RARE: "rare" in claims C3 and C4
FREQUENT = 1000   # n(f) >= FREQUENT: "frequent" in claim C3


def training_loader(corpus: FragmentCorpus, batch_size: int = 4096):
    """Every (prompt, answer) pair of the training corpus, once per occurrence."""
    prompts, counts = corpus.next_token_counts()
    rows, tokens = torch.nonzero(counts, as_tuple=True)
    repeats = counts[rows, tokens]
    return next_token_loader(prompts[rows].repeat_interleave(repeats, dim=0),
                             tokens.repeat_interleave(repeats), batch_size=batch_size)


def fit_flavours(model: CausalLM, corpus: FragmentCorpus, names) -> dict[str, Posterior]:
    """One fitted posterior per flavour name, all over the same trained network."""
    loader = training_loader(corpus)
    return {name: fit_posterior(NextToken(model), loader, name) for name in names}


def _answers(probs: np.ndarray, corpus: FragmentCorpus) -> np.ndarray:
    """Restrict next-token distributions (..., V) to the answer tokens and renormalise."""
    a = probs[..., corpus.answer_tokens]
    return a / a.sum(axis=-1, keepdims=True)


def fragment_uncertainty(posterior: Posterior, corpus: FragmentCorpus, n_samples: int,
                         seed: int) -> pd.DataFrame:
    """Per seen fragment: count, epistemic std of the top completion's probability, the entropy
    decomposition, and MAP / LA (sampled and closed-form) answer distributions."""
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    prompts = corpus.prompts(seen)
    samples = _answers(posterior.sample(prompts, n_samples, seed=seed).double().numpy(), corpus)
    closed = _answers(posterior.predictive(prompts).double().numpy(), corpus)
    map_probs = _answers(next_token_probs(posterior.model.lm, prompts).double().numpy(), corpus)
    top = corpus.answer_counts[seen].argmax(axis=1)
    top_samples = np.take_along_axis(samples, top[None, :, None], axis=2)[..., 0]
    parts = metrics.predictive_decomposition(samples)
    table = corpus.fragments.iloc[seen][["family", "subject", "n"]].reset_index(drop=True)
    table["epistemic_std"] = top_samples.std(axis=0, ddof=1)
    for key in ("total", "aleatoric", "epistemic"):
        table[f"{key}_entropy"] = parts[key]
    table["la_mc"] = list(samples.mean(axis=0))
    table["la_probit"] = list(closed)
    table["map"] = list(map_probs)
    table["p_fam"] = list(corpus.family_pooled[seen])
    table["empirical"] = list(corpus.empirical[seen])
    table["answer_counts"] = list(corpus.answer_counts[seen])
    return table


def c3_statistics(table: pd.DataFrame) -> dict:
    """Claim C3: ratio of median epistemic std (rare / frequent) and the log-log slope."""
    rare = table.loc[table["n"] <= RARE, "epistemic_std"]
    frequent = table.loc[table["n"] >= FREQUENT, "epistemic_std"]
    if rare.empty or frequent.empty:
        raise ValueError("C3 needs fragments with n <= 3 and with n >= 1000")
    return {"std_ratio_rare_frequent": float(rare.median() / frequent.median()),
            "loglog_slope_std_n": metrics.loglog_slope(table["n"], table["epistemic_std"])}


# --- the hierarchical Dirichlet count model -------------------------------------------------


def fit_dirichlet_concentration(counts: np.ndarray, centre: np.ndarray) -> float:
    """Empirical-Bayes concentration ``a`` of the prior Dirichlet(a * centre) for each row of
    answer ``counts``: maximises the Dirichlet-multinomial marginal likelihood (scipy)."""
    counts = np.asarray(counts)
    centre = metrics.check_probabilities(centre, "centre")
    if counts.shape != centre.shape:
        raise ValueError(f"counts {counts.shape} and centre {centre.shape} must match")
    keep = counts.sum(axis=1) > 0
    if not keep.any():
        raise ValueError("no row has any count: the concentration is not identified")
    counts, centre = counts[keep], np.clip(centre[keep], 1e-6, None)

    def negative_log_marginal(log_a: float) -> float:
        alpha = np.exp(log_a) * centre
        return -sum(stats.dirichlet_multinomial.logpmf(c, a, c.sum())
                    for c, a in zip(counts, alpha))

    result = optimize.minimize_scalar(negative_log_marginal, bounds=(-5, 10), method="bounded")
    return float(np.exp(result.x))


def dirichlet_predictive(counts: np.ndarray, centre: np.ndarray, concentration: float
                         ) -> np.ndarray:
    """Posterior predictive of the Dirichlet(concentration * centre) count model."""
    if not concentration > 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    counts = np.asarray(counts, dtype=float)
    return (concentration * centre + counts) / (concentration + counts.sum(axis=1,
                                                                              keepdims=True))


def shrinkage_table(table: pd.DataFrame, concentration: float) -> pd.DataFrame:
    """For rare fragments, the TV of MAP, LA and the Dirichlet model to p_fam and to uniform."""
    rare = table[(table["n"] <= RARE)].copy()
    p_fam = np.stack(rare["p_fam"])
    dirichlet = dirichlet_predictive(np.stack(rare["answer_counts"]), p_fam, concentration)
    uniform = np.full_like(p_fam, 1 / len(ANSWERS))
    rows = []
    for name, probs in (("MAP", np.stack(rare["map"])), ("LA", np.stack(rare["la_probit"])),
                        ("Dirichlet", dirichlet)):
        rows.append(pd.DataFrame({"fragment": rare.index, "estimator": name,
                                  "tv_to_family": metrics.tv_distance(probs, p_fam),
                                  "tv_to_uniform": metrics.tv_distance(probs, uniform)}))
    return pd.concat(rows, ignore_index=True)


def c4_statistics(shrinkage: pd.DataFrame, seed: int) -> dict:
    """Claim C4: mean TV(LA, p_fam) - mean TV(MAP, p_fam) over rare fragments, with its paired
    bootstrap 95% interval."""
    wide = shrinkage.pivot(index="fragment", columns="estimator", values="tv_to_family")
    diff = (wide["LA"] - wide["MAP"]).to_numpy()
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=seed)
    return {"mean_tv_difference": float(diff.mean()), "ci_high_tv_difference": high,
            "ci_low_tv_difference": low}


# --- held-out evaluation --------------------------------------------------------------------


def heldout_by_bucket(table: pd.DataFrame, corpus: FragmentCorpus, per_fragment: int,
                      seed: int) -> pd.DataFrame:
    """Held-out NLL and ECE of MAP and LA per count bucket: ``per_fragment`` fresh answers per
    seen fragment, drawn from its true distribution."""
    rng = np.random.default_rng(seed)
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    truth = corpus.p_true[seen]
    answers = np.stack([rng.choice(len(ANSWERS), per_fragment, p=p) for p in truth])
    buckets = count_bucket(table["n"])
    rows = []
    for name, column in (("MAP", "map"), ("LA", "la_probit")):
        probs = np.stack(table[column])
        for bucket in buckets.categories:
            mask = np.asarray(buckets == bucket)
            if not mask.any():
                continue
            p = np.repeat(probs[mask], per_fragment, axis=0)
            y = answers[mask].ravel()
            rows.append({"bucket": bucket, "model": name, "fragments": int(mask.sum()),
                         "nll": float(-np.log(p[np.arange(len(y)), y]).mean()),
                         "ece": metrics.ece(p, y)})
    return pd.DataFrame(rows)

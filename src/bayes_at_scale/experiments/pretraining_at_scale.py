"""Chapter 3's experiment: does the posterior wash out as the corpus grows?

One generating distribution - a fragment world as in chapter 1, with fixed true answer
probabilities and Zipf popularities - is sampled at several corpus sizes ``N``.  At each size a
network is trained to its MAP and the default Laplace posterior is put over it.  Both are scored
on held-out text *exactly*: the expected negative log-likelihood of the next token under the true
distribution, each fragment weighted by its popularity (so the score is token-weighted, and
fragments never seen in training count as often as a reader would meet them).  Nothing is
sampled at evaluation time.

The chapter's statistics: the relative gain ``g(N) = (NLL_MAP - NLL_LA) / NLL_MAP``, the
token-weighted ``KL(LA || MAP)``, and where the gain lives - by how often a fragment was seen.
:func:`zipf_tail` asks the counterpoint analytically: under an *unbounded* Zipf law, what share
of text comes from fragments seen at most three times, at pre-training token counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from ..core import metrics
from ..worlds.fragments import FragmentCorpus, count_bucket, fragment_world
from ..core.models import NextToken, next_token_probs
from ..core.posteriors import DEFAULT_FLAVOUR, count_loader, fit_posterior
from ..core.runner import run_tasks
from ..core.settings import at_scale
from ..core.training import Recipe, train_language_model

RARE = 3
EXACT_RANKS = 10_000  # zipf_tail sums these ranks exactly and integrates the rest

SCALE_RECIPES = {
    # a smaller world and network than chapter 1's (384 fragments, vocabulary 60, one layer), so
    # that four corpus sizes and two seeds - eight networks and posteriors - fit the time budget
    "quick": Recipe(
        corpus=dict(n_families=8, n_subjects=48, zipf_exponent=1.2),
        model=dict(d_model=32, n_heads=2, n_layers=1),
        training=dict(steps=300, lr=1e-2, weight_decay=1e-5)),
    "full": Recipe(
        corpus=dict(n_families=32, n_subjects=192, zipf_exponent=1.2),
        model=dict(d_model=64, n_heads=4, n_layers=2),
        training=dict(steps=1500, lr=5e-3, weight_decay=1e-5)),
}
SIZES = {"quick": (1_000, 3_000, 10_000, 32_000),  # 1.5 orders of magnitude
         "full": (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000)}


def recipe(scale: str) -> Recipe:
    """Chapter 3's recipe at ``scale``: its world and network (the corpus sizes: :func:`sizes`)."""
    return at_scale(SCALE_RECIPES, scale)


def sizes(scale: str) -> tuple[int, ...]:
    """Chapter 3's corpus sizes at ``scale``."""
    return at_scale(SIZES, scale)


def corpus_at(recipe: Recipe, seed: int, n_tokens: int) -> FragmentCorpus:
    """The world of ``seed`` sampled with ``n_tokens`` questions: every size of one seed shares
    the true answer probabilities and popularities, only the counts differ."""
    return fragment_world(recipe, seed, n_tokens=n_tokens)


def heldout_scores(corpus: FragmentCorpus, map_probs: np.ndarray, la_probs: np.ndarray
                   ) -> pd.DataFrame:
    """Per fragment (all of them, seen or not): popularity, training count, expected NLL of the
    next token under MAP and LA, and KL(LA || MAP) over the whole vocabulary."""
    if map_probs.shape != la_probs.shape or map_probs.shape[0] != len(corpus.fragments):
        raise ValueError(f"expected two ({len(corpus.fragments)}, V) arrays, got "
                         f"{map_probs.shape} and {la_probs.shape}")
    out = corpus.fragments[["family", "subject", "popularity", "n"]].copy()
    answers = corpus.answer_tokens
    for name, p in (("MAP", map_probs), ("LA", la_probs)):
        out[f"nll_{name}"] = -special.xlogy(corpus.p_true, p[:, answers]).sum(axis=1)
    out["kl"] = metrics.kl_divergence(la_probs, map_probs)
    return out


def run_size(recipe: Recipe, seed: int, n_tokens: int) -> pd.DataFrame:
    """Train, fit the default posterior and score one corpus size (one seed)."""
    corpus = corpus_at(recipe, seed, n_tokens)
    contexts, counts = corpus.next_token_counts()
    model = train_language_model(contexts, counts, corpus.vocab_size, recipe, seed)
    posterior = fit_posterior(NextToken(model), count_loader(contexts, counts), DEFAULT_FLAVOUR)
    prompts = corpus.prompts()
    map_probs = next_token_probs(model, prompts).double().numpy()
    la_probs = posterior.predictive(prompts).double().numpy()
    map_probs /= map_probs.sum(axis=1, keepdims=True)
    la_probs /= la_probs.sum(axis=1, keepdims=True)
    return heldout_scores(corpus, map_probs, la_probs).assign(
        seed=seed, N=n_tokens, prior_precision=float(posterior.prior_precision.mean()))


def run_sweep(recipe: Recipe, seeds, sizes, workers: int | None = None) -> pd.DataFrame:
    """Every corpus size for every seed: one row per (seed, N, fragment).  The (seed, size)
    runs go to the seed-parallel runner (:func:`~bayes_at_scale.core.runner.run_tasks`) on
    ``workers`` processes (default ``ESSAY_WORKERS``)."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError("a sweep needs at least two corpus sizes")
    tasks = [(recipe, seed, n) for seed in seeds for n in sizes]
    parts = run_tasks(run_size, tasks, [seed for _, seed, _ in tasks], workers=workers)
    return pd.concat(parts, ignore_index=True)


def _weighted(part: pd.DataFrame) -> pd.Series:
    w = part["popularity"] / part["popularity"].sum()
    nll_map, nll_la = (w * part["nll_MAP"]).sum(), (w * part["nll_LA"]).sum()
    return pd.Series({"mass": part["popularity"].sum(), "nll_MAP": nll_map, "nll_LA": nll_la,
                      "gain": (nll_map - nll_la) / nll_map, "kl": (w * part["kl"]).sum()})


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, N): token-weighted held-out NLL of MAP and LA, the relative gain g(N), the
    token-weighted KL(LA || MAP), and how much of the world is rare in that corpus."""
    rows = []
    for (seed, n_tokens), part in sweep.groupby(["seed", "N"], sort=True):
        row = _weighted(part).drop("mass")
        seen = part["n"] > 0
        rare = seen & (part["n"] <= RARE)
        row["unseen_mass"] = part.loc[~seen, "popularity"].sum()
        row["rare_share_of_seen"] = rare.sum() / max(seen.sum(), 1)
        row["rare_token_share"] = part.loc[rare, "n"].sum() / part["n"].sum()
        rows.append({"seed": seed, "N": n_tokens, **row.to_dict()})
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("gain") + 1, "abs_gain", table["gain"].abs())
    return table


def gain_by_bucket(sweep: pd.DataFrame) -> pd.DataFrame:
    """Token-weighted gain of LA over MAP per (seed, N, training-count bucket); fragments never
    seen form their own bucket."""
    labels = pd.Series("unseen", index=sweep.index, dtype=object)
    seen = sweep["n"] > 0
    labels[seen] = count_bucket(sweep.loc[seen, "n"]).astype(str)
    order = ["unseen", *count_bucket([1]).categories]
    data = sweep.assign(bucket=pd.Categorical(labels, order, ordered=True))
    rows = [{"seed": seed, "N": n_tokens, "bucket": bucket, **_weighted(part).to_dict()}
            for (seed, n_tokens, bucket), part in data.groupby(["seed", "N", "bucket"],
                                                               observed=True, sort=True)]
    table = pd.DataFrame(rows)
    table["bucket"] = pd.Categorical(table["bucket"], order, ordered=True)
    return table


def c5_statistics(table: pd.DataFrame) -> dict:
    """Claim C5 for one seed's sweep: Spearman(N, g), g at the largest N, and the log-log slope
    of the token-weighted KL(LA || MAP) against N."""
    table = table.sort_values("N")
    if table["N"].nunique() < 4:
        raise ValueError(f"C5 needs at least 4 corpus sizes, got {table['N'].nunique()}")
    return {"spearman_n_gain": metrics.spearman(table["N"], table["gain"]),
            "gain_largest_n": float(table["gain"].iloc[-1]),
            "loglog_slope_kl_n": metrics.loglog_slope(table["N"], table["kl"])}


def extrapolate(table: pd.DataFrame, column: str, targets) -> pd.DataFrame:
    """A power law fitted per seed to the positive values of ``column`` against N, evaluated at
    ``targets`` (token counts far beyond the sweep): an extrapolation, not a measurement."""
    rows = []
    for seed, part in table.groupby("seed"):
        positive = part[part[column] > 0]
        if len(positive) < 2:
            raise ValueError(f"seed {seed}: fewer than two positive values of {column} to fit")
        exponent, prefactor = metrics.fit_power_law(positive["N"], positive[column])
        for n in targets:
            rows.append({"seed": seed, "N": float(n), column: prefactor * float(n) ** exponent,
                         "exponent": exponent, "fitted_on": len(positive)})
    return pd.DataFrame(rows)


def zipf_tail(n_tokens, exponent: float, n_types: float, points: int = 4000) -> pd.DataFrame:
    """Expected share of rare fragments (seen 1-3 times) under a Zipf law over ``n_types`` fragment
    types, for corpora of ``n_tokens`` tokens (Poisson counts; ranks integrated on a log grid).

    ``token_share``: the share of the corpus's tokens whose fragment occurs at most 3 times,
    ``sum_r q_r P(Poisson(N q_r) <= 2)``; ``distinct_share``: rare fragments among the distinct
    fragments seen, ``sum_r P(1 <= n_r <= 3) / sum_r P(n_r >= 1)``.
    """
    if not exponent > 1:
        raise ValueError(f"exponent must exceed 1 for a normalisable unbounded law, got {exponent}")
    if not n_types >= 1:
        raise ValueError(f"n_types must be >= 1, got {n_types}")
    if n_types != int(n_types):
        raise ValueError(f"n_types must be a whole number, got {n_types}")
    n_types = int(n_types)
    # ranks 1..EXACT one by one; beyond, a log-spaced grid of rank intervals (midpoint rule)
    exact = np.arange(1, min(n_types, EXACT_RANKS) + 1, dtype=float)
    r, width = exact, np.ones_like(exact)
    if n_types > EXACT_RANKS:
        edges = np.logspace(np.log10(EXACT_RANKS + 0.5), np.log10(n_types + 0.5), points + 1)
        r = np.concatenate([r, np.sqrt(edges[:-1] * edges[1:])])
        width = np.concatenate([width, np.diff(edges)])
    q = r ** -exponent
    q /= (q * width).sum()
    rows = []
    for n in np.atleast_1d(n_tokens):
        lam = float(n) * q
        token = float((width * q * stats.poisson.cdf(2, lam)).sum())
        seen = (width * -np.expm1(-lam)).sum()
        rare = (width * (stats.poisson.cdf(3, lam) - np.exp(-lam))).sum()
        rows.append({"N": float(n), "token_share": token, "distinct_share": float(rare / seen)})
    return pd.DataFrame(rows)

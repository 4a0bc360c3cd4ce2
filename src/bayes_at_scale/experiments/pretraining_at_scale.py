"""Chapter 3's experiment: does the posterior wash out as the corpus grows?

One generating distribution - a fragment world as in chapter 1, with fixed true answer
probabilities and Zipf popularities - is sampled at several corpus sizes ``N``.  At each
size a network is trained to its MAP and the default Laplace posterior is put over it.
Both are scored on held-out text *exactly*: the expected negative log-likelihood of the
next token under the true distribution, each fragment weighted by its popularity (so the
score is token-weighted, and fragments never seen in training count as often as a reader
would meet them).  Nothing is sampled at evaluation time.

The chapter's statistics: the relative gain ``g(N) = (NLL_MAP - NLL_LA) / NLL_MAP``, the
token-weighted ``KL(LA || MAP)``, and where the gain lives - by how often a fragment was
seen. :func:`zipf_tail` asks the counterpoint analytically: under an *unbounded* Zipf
law, what share of text comes from fragments seen at most three times, at pre-training
token counts.

Round 2 (claims C19 and C20) repeats the sweep on more sizes and seeds with the
posteriors of :mod:`bayes_at_scale.core.answer_posteriors` - restricted to the answer
tokens, centred at their own mode - scored on the answer tokens (:func:`run_r2_size`,
:func:`round_two_table`); its pooled statistics come with intervals from resampling the
seeds (:func:`seed_bootstrap`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from ..core import metrics
from ..core.checks import check_int, check_number, check_probabilities
from ..worlds.fragments import (
    ANSWERS,
    FragmentCorpus,
    count_bucket,
    fragment_posterior,
    fragment_world,
)
from ..core.models import NextToken, next_token_probs
from ..core.posteriors import DEFAULT_FLAVOUR, count_loader, fit_posterior
from ..core.runner import run_tasks
from ..core.settings import at_scale
from ..core.training import Recipe, train_language_model

RARE = 3
EXACT_RANKS = 10_000  # zipf_tail sums these ranks exactly and integrates the rest

SCALE_RECIPES = {
    # a smaller world and network than chapter 1's (384 fragments, vocabulary 60, one
    # layer), so that four corpus sizes and two seeds - eight networks and posteriors -
    # fit the time budget
    "quick": Recipe(
        corpus=dict(n_families=8, n_subjects=48, zipf_exponent=1.2),
        model=dict(d_model=32, n_heads=2, n_layers=1),
        training=dict(steps=300, lr=1e-2, weight_decay=1e-5),
    ),
    "full": Recipe(
        corpus=dict(n_families=32, n_subjects=192, zipf_exponent=1.2),
        model=dict(d_model=64, n_heads=4, n_layers=2),
        training=dict(steps=1500, lr=5e-3, weight_decay=1e-5),
    ),
}
SIZES = {
    "quick": (1_000, 3_000, 10_000, 32_000),  # 1.5 orders of magnitude
    "full": (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000),
}


def recipe(scale: str) -> Recipe:
    """Chapter 3's recipe at ``scale``: its world and network (the corpus sizes:
    :func:`sizes`)."""
    return at_scale(SCALE_RECIPES, scale)


def sizes(scale: str) -> tuple[int, ...]:
    """Chapter 3's corpus sizes at ``scale``."""
    return at_scale(SIZES, scale)


def corpus_at(recipe: Recipe, seed: int, n_tokens: int) -> FragmentCorpus:
    """The world of ``seed`` sampled with ``n_tokens`` questions: every size of one seed
    shares the true answer probabilities and popularities, only the counts differ."""
    return fragment_world(recipe, seed, n_tokens=n_tokens)


def heldout_scores(
    corpus: FragmentCorpus, map_probs: np.ndarray, la_probs: np.ndarray
) -> pd.DataFrame:
    """Per fragment (all of them, seen or not): popularity, training count, expected NLL
    of the next token under MAP and LA, and KL(LA || MAP) over the whole vocabulary."""
    if map_probs.shape != la_probs.shape or map_probs.shape[0] != len(corpus.fragments):
        raise ValueError(
            f"expected two ({len(corpus.fragments)}, V) arrays, got "
            f"{map_probs.shape} and {la_probs.shape}"
        )
    out = corpus.fragments[["family", "subject", "popularity", "n"]].copy()
    answers = corpus.answer_tokens
    for name, p in (("MAP", map_probs), ("LA", la_probs)):
        out[f"nll_{name}"] = expected_nll(corpus.p_true, p[:, answers])
    out["kl"] = metrics.kl_divergence(la_probs, map_probs)
    return out


def expected_nll(p_true: np.ndarray, answer_probs: np.ndarray) -> np.ndarray:
    """Per fragment, the expected NLL of the next token under its true answer
    distribution: ``-sum_a p_true[a] log answer_probs[a]`` (exact; nothing is
    sampled)."""
    return -special.xlogy(p_true, answer_probs).sum(axis=1)


def run_size(recipe: Recipe, seed: int, n_tokens: int) -> pd.DataFrame:
    """Train, fit the default posterior and score one corpus size (one seed)."""
    corpus = corpus_at(recipe, seed, n_tokens)
    contexts, counts = corpus.next_token_counts()
    model = train_language_model(contexts, counts, corpus.vocab_size, recipe, seed)
    posterior = fit_posterior(
        NextToken(model), count_loader(contexts, counts), DEFAULT_FLAVOUR
    )
    prompts = corpus.prompts()
    map_probs = next_token_probs(model, prompts).double().numpy()
    la_probs = posterior.predictive(prompts).double().numpy()
    map_probs /= map_probs.sum(axis=1, keepdims=True)
    la_probs /= la_probs.sum(axis=1, keepdims=True)
    return heldout_scores(corpus, map_probs, la_probs).assign(
        seed=seed, N=n_tokens, prior_precision=float(posterior.prior_precision.mean())
    )


def run_sweep(recipe: Recipe, seeds, sizes, workers: int | None = None) -> pd.DataFrame:
    """Every corpus size for every seed: one row per (seed, N, fragment).  The (seed,
    size) runs go to the seed-parallel runner
    (:func:`~bayes_at_scale.core.runner.run_tasks`) on ``workers`` processes (default
    ``ESSAY_WORKERS``)."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError("a sweep needs at least two corpus sizes")
    tasks = [(recipe, seed, n) for seed in seeds for n in sizes]
    parts = run_tasks(run_size, tasks, [seed for _, seed, _ in tasks], workers=workers)
    return pd.concat(parts, ignore_index=True)


def _weighted(part: pd.DataFrame) -> pd.Series:
    """Popularity-weighted (token-weighted) NLLs, relative gain and KL of ``part``'s
    fragments, and the mutual information where the part has it (round 2)."""
    w = part["popularity"] / part["popularity"].sum()
    nll_map, nll_la = (w * part["nll_MAP"]).sum(), (w * part["nll_LA"]).sum()
    out = {
        "mass": part["popularity"].sum(),
        "nll_MAP": nll_map,
        "nll_LA": nll_la,
        "gain": (nll_map - nll_la) / nll_map,
        "kl": (w * part["kl"]).sum(),
    }
    if "mi" in part:
        out["mi"] = (w * part["mi"]).sum()
    return pd.Series(out)


def sweep_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, N): token-weighted held-out NLL of MAP and LA, the relative gain g(N),
    the token-weighted KL(LA || MAP), and how much of the world is rare in that
    corpus."""
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
    """Token-weighted gain of LA over MAP per (seed, N, training-count bucket);
    fragments never seen form their own bucket."""
    labels = pd.Series("unseen", index=sweep.index, dtype=object)
    seen = sweep["n"] > 0
    labels[seen] = count_bucket(sweep.loc[seen, "n"]).astype(str)
    order = ["unseen", *count_bucket([1]).categories]
    data = sweep.assign(bucket=pd.Categorical(labels, order, ordered=True))
    rows = [
        {"seed": seed, "N": n_tokens, "bucket": bucket, **_weighted(part).to_dict()}
        for (seed, n_tokens, bucket), part in data.groupby(
            ["seed", "N", "bucket"], observed=True, sort=True
        )
    ]
    table = pd.DataFrame(rows)
    table["bucket"] = pd.Categorical(table["bucket"], order, ordered=True)
    return table


def c5_statistics(table: pd.DataFrame) -> dict:
    """Claim C5 for one seed's sweep: Spearman(N, g), g at the largest N, and the
    log-log slope of the token-weighted KL(LA || MAP) against N."""
    table = table.sort_values("N")
    if table["N"].nunique() < 4:
        raise ValueError(
            f"C5 needs at least 4 corpus sizes, got {table['N'].nunique()}"
        )
    return {
        "spearman_n_gain": metrics.spearman(table["N"], table["gain"]),
        "gain_largest_n": float(table["gain"].iloc[-1]),
        "loglog_slope_kl_n": metrics.loglog_slope(table["N"], table["kl"]),
    }


def extrapolate(table: pd.DataFrame, column: str, targets) -> pd.DataFrame:
    """A power law fitted per seed to the positive values of ``column`` against N,
    evaluated at ``targets`` (token counts far beyond the sweep): an extrapolation, not
    a measurement."""
    rows = []
    for seed, part in table.groupby("seed"):
        positive = part[part[column] > 0]
        if len(positive) < 2:
            raise ValueError(
                f"seed {seed}: fewer than two positive values of {column} to fit"
            )
        exponent, prefactor = metrics.fit_power_law(positive["N"], positive[column])
        for n in targets:
            rows.append(
                {
                    "seed": seed,
                    "N": float(n),
                    column: prefactor * float(n) ** exponent,
                    "exponent": exponent,
                    "fitted_on": len(positive),
                }
            )
    return pd.DataFrame(rows)


def zipf_tail(
    n_tokens, exponent: float, n_types: float, points: int = 4000
) -> pd.DataFrame:
    """Expected share of rare fragments (seen 1-3 times) under a Zipf law over
    ``n_types`` fragment types, for corpora of ``n_tokens`` tokens (Poisson counts;
    ranks integrated on a log grid).

    ``token_share``: the share of the corpus's tokens whose fragment occurs at most 3
    times, ``sum_r q_r P(Poisson(N q_r) <= 2)``; ``distinct_share``: rare fragments
    among the distinct fragments seen, ``sum_r P(1 <= n_r <= 3) / sum_r P(n_r >= 1)``.
    """
    if not exponent > 1:
        raise ValueError(
            f"exponent must exceed 1 for a normalisable unbounded law, got {exponent}"
        )
    if not n_types >= 1:
        raise ValueError(f"n_types must be >= 1, got {n_types}")
    if n_types != int(n_types):
        raise ValueError(f"n_types must be a whole number, got {n_types}")
    n_types = int(n_types)
    # ranks 1..EXACT one by one; beyond, a log-spaced grid of rank intervals (midpoint
    # rule)
    exact = np.arange(1, min(n_types, EXACT_RANKS) + 1, dtype=float)
    r, width = exact, np.ones_like(exact)
    if n_types > EXACT_RANKS:
        edges = np.logspace(
            np.log10(EXACT_RANKS + 0.5), np.log10(n_types + 0.5), points + 1
        )
        r = np.concatenate([r, np.sqrt(edges[:-1] * edges[1:])])
        width = np.concatenate([width, np.diff(edges)])
    q = r**-exponent
    q /= (q * width).sum()
    rows = []
    for n in np.atleast_1d(n_tokens):
        lam = float(n) * q
        token = float((width * q * stats.poisson.cdf(2, lam)).sum())
        seen = (width * -np.expm1(-lam)).sum()
        rare = (width * (stats.poisson.cdf(3, lam) - np.exp(-lam))).sum()
        rows.append(
            {"N": float(n), "token_share": token, "distinct_share": float(rare / seen)}
        )
    return pd.DataFrame(rows)


# --- round 2: claims C19 and C20
# ------------------------------------------------------------
#
# The round-2 posterior (:mod:`bayes_at_scale.core.answer_posteriors`): GGN curvature,
# centred at its own mode, the answer-restricted GLM predictive by Monte Carlo.  Two
# flavours are fitted on every network: over the subject embeddings and the answer head
# (the verdicts use it), and over the answer head alone (shown beside it).  "MAP" is
# each posterior's own mode.

# C20: held-out queries about fragments seen at most TAIL times (never seen included)
TAIL = 3
R2_FLAVOURS = {"embeddings + head": "embedding_and_head", "answer head": "last_layer"}
R2_VERDICT = "embeddings + head"
# GLM samples of each predictive: the Monte Carlo part of KL is ~ MI / 2000
R2_SAMPLES = 2000
R2_SIZES = {
    "quick": tuple(250 * 2**k for k in range(8)),  # 250 .. 32,000: 2.1 orders
    # 1,000 .. 512,000: 2.7 orders
    "full": tuple(1_000 * 2**k for k in range(10)),
}
MIN_SIZES, MIN_SPAN, MIN_SEEDS = 8, 100.0, 5  # what C19 and C20 ask of a sweep
BOOTSTRAP_RESAMPLES = 2000


def r2_sizes(scale: str) -> tuple[int, ...]:
    """Round 2's corpus sizes at ``scale`` (C19 and C20: at least 8, two orders of
    magnitude)."""
    return at_scale(R2_SIZES, scale)


def answer_scores(corpus: FragmentCorpus, map_probs, samples) -> pd.DataFrame:
    """Per fragment (all of them, seen or not), on the answer tokens only: popularity,
    training count, expected held-out NLL of the mode (``map_probs`` ``(F, A)``) and of
    the predictive (the mean of ``samples`` ``(S, F, A)``), ``KL(LA || MAP)`` and the
    mutual information."""
    map_probs = check_probabilities(map_probs, "map_probs")
    samples = check_probabilities(samples, "samples")
    shape = (len(corpus.fragments), len(ANSWERS))
    if map_probs.shape != shape or samples.ndim != 3 or samples.shape[1:] != shape:
        raise ValueError(
            f"expected map_probs {shape} and samples (S, {shape[0]}, {shape[1]}), "
            f"got {map_probs.shape} and {samples.shape}"
        )
    la_probs = samples.mean(axis=0)
    out = corpus.fragments[["family", "subject", "popularity", "n"]].copy()
    out["nll_MAP"] = expected_nll(corpus.p_true, map_probs)
    out["nll_LA"] = expected_nll(corpus.p_true, la_probs)
    out["kl"] = metrics.kl_divergence(la_probs, map_probs)
    out["mi"] = metrics.predictive_decomposition(samples)["epistemic"]
    return out


@dataclass(frozen=True)
class RoundTwoRun:
    """One (seed, corpus size) of round 2: ``table`` has one row per (posterior,
    fragment), ``posteriors`` one row per posterior (gradient norm at the mode, prior
    precisions, number of parameters, fitting time)."""

    seed: int
    n_tokens: int
    table: pd.DataFrame
    posteriors: pd.DataFrame


def run_r2_size(
    recipe: Recipe,
    seed: int,
    n_tokens: int,
    flavours=tuple(R2_FLAVOURS),
    n_samples: int = R2_SAMPLES,
) -> RoundTwoRun:
    """Train the network of one corpus size (one seed), fit each round-2 posterior of
    ``flavours`` (names of :data:`R2_FLAVOURS`) over it, and score every fragment."""
    unknown = [f for f in flavours if f not in R2_FLAVOURS]
    if unknown or not flavours:
        raise ValueError(
            f"flavours must be names of {tuple(R2_FLAVOURS)}, got {flavours!r}"
        )
    corpus = corpus_at(recipe, seed, n_tokens)
    contexts, counts = corpus.next_token_counts()
    model = train_language_model(contexts, counts, corpus.vocab_size, recipe, seed)
    prompts = corpus.prompts()
    tables, rows = [], []
    for name in flavours:
        post = fragment_posterior(corpus, model, R2_FLAVOURS[name])
        samples = post.samples(prompts, n_samples, seed=seed)
        tables.append(
            answer_scores(corpus, post.map_probs(prompts), samples).assign(
                posterior=name
            )
        )
        prior = post.prior_precision
        rows.append(
            {
                "posterior": name,
                "seed": seed,
                "N": n_tokens,
                "gradient_norm": post.gradient_norm,
                "prior_min": float(prior.min()),
                "prior_max": float(prior.max()),
                "n_params": post.n_params,
                "fit_seconds": post.fit_seconds,
            }
        )
    table = pd.concat(tables, ignore_index=True).assign(seed=seed, N=n_tokens)
    return RoundTwoRun(seed, n_tokens, table, pd.DataFrame(rows))


def run_sweeps(
    recipe: Recipe, seeds, sizes, r2_seeds, r2_sizes_, workers: int | None = None
) -> tuple[pd.DataFrame, list[RoundTwoRun]]:
    """Round 1's sweep (as :func:`run_sweep` returns it) and round 2's runs (one per
    seed of ``r2_seeds`` and size of ``r2_sizes_``, in that order), all in one pool of
    workers, the largest corpora first so that no worker waits idle at the end."""
    sizes, r2_sizes_ = tuple(sizes), tuple(r2_sizes_)
    if len(sizes) < 2 or len(r2_sizes_) < 2:
        raise ValueError("a sweep needs at least two corpus sizes")
    jobs = [(run_size, (recipe, s, n)) for s in seeds for n in sizes]
    jobs += [(run_r2_size, (recipe, s, n)) for s in r2_seeds for n in r2_sizes_]
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1][2])
    done = run_tasks(
        [jobs[i][0] for i in order],
        [jobs[i][1] for i in order],
        [jobs[i][1][1] for i in order],
        workers=workers,
    )
    results = [None] * len(jobs)
    for i, result in zip(order, done):
        results[i] = result
    first = len(seeds) * len(sizes)
    return pd.concat(results[:first], ignore_index=True), results[first:]


def round_two_frames(runs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs' fragment tables and posterior rows, each as one frame."""
    runs = list(runs)
    if not runs or not all(isinstance(r, RoundTwoRun) for r in runs):
        raise TypeError("runs must be a non-empty list of RoundTwoRun")
    return (
        pd.concat([r.table for r in runs], ignore_index=True),
        pd.concat([r.posteriors for r in runs], ignore_index=True),
    )


def round_two_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (posterior, seed, N): token-weighted held-out NLL of the mode and the
    predictive, the relative gain ``g`` and ``|g|``, ``KL(LA || MAP)`` and the mutual
    information; and on the tail (fragments seen at most :data:`TAIL` times) the number
    of fragments, their share of held-out text and the relative gain there (NaN where
    the tail is empty)."""
    rows = []
    for (name, seed, n_tokens), part in scores.groupby(
        ["posterior", "seed", "N"], sort=False
    ):
        row = _weighted(part).drop("mass")
        tail = part[part["n"] <= TAIL]
        row["tail_fragments"] = len(tail)
        row["tail_mass"] = tail["popularity"].sum()
        row["tail_gain"] = _weighted(tail)["gain"] if len(tail) else np.nan
        rows.append({"posterior": name, "seed": seed, "N": n_tokens, **row.to_dict()})
    table = pd.DataFrame(rows).sort_values(["posterior", "seed", "N"], kind="stable")
    table.insert(table.columns.get_loc("gain") + 1, "abs_gain", table["gain"].abs())
    return table.reset_index(drop=True)


def gain_parts(scores: pd.DataFrame, predictive: str) -> pd.DataFrame:
    """Token-weighted relative gain per (seed, N) on all held-out text and on the tail
    (``n <= TAIL``), labelled ``predictive``, for a frame of per-fragment scores (round
    1's sweep or one posterior's round-2 scores)."""
    rows = []
    for (seed, n_tokens), part in scores.groupby(["seed", "N"], sort=True):
        tail = part[part["n"] <= TAIL]
        for label, sub in (
            ("all held-out text", part),
            (f"tail: n(f) <= {TAIL}", tail),
        ):
            if len(sub):
                rows.append(
                    {
                        "predictive": predictive,
                        "part": label,
                        "seed": seed,
                        "N": n_tokens,
                        "gain": _weighted(sub)["gain"],
                    }
                )
    return pd.DataFrame(rows)


def seed_matrix(table: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, values)`` of one posterior's table: ``values[i, j]`` is ``column`` at
    the ``i``-th seed and the ``j``-th (ascending) corpus size; every seed must have
    every size once."""
    for name in ("seed", "N", column):
        if name not in table:
            raise KeyError(f"the table lacks a {name!r} column")
    if "posterior" in table and table["posterior"].nunique() > 1:
        raise ValueError(
            "the table mixes posteriors: select one before taking statistics"
        )
    if table.duplicated(["seed", "N"]).any():
        raise ValueError("a (seed, N) pair occurs twice in the table")
    wide = table.pivot(index="seed", columns="N", values=column).sort_index(axis=1)
    if table[["seed", "N"]].drop_duplicates().shape[0] != wide.size:
        raise ValueError("every seed must have a row at every corpus size")
    return wide.columns.to_numpy(float), wide.to_numpy(float)


def seed_bootstrap(
    statistic, values, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """Percentile 95% interval of ``statistic(values)`` when the seeds - the rows of
    ``values`` (seeds first, any further axes) - are resampled with replacement and the
    statistic is recomputed (:func:`~bayes_at_scale.core.metrics.bootstrap_ci` over the
    row indices)."""
    values = np.asarray(values, dtype=float)
    if values.ndim < 2 or values.shape[0] < 2:
        raise ValueError(f"values must be (seeds >= 2, ...), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values contain NaN or infinite entries")
    return metrics.bootstrap_ci(
        lambda rows: statistic(values[rows.astype(int)]),
        np.arange(values.shape[0]),
        seed=seed,
        n_resamples=n_resamples,
    )


def _check_sweep(sizes: np.ndarray, n_seeds: int, claim: str) -> None:
    if sizes.size < MIN_SIZES or sizes[-1] / sizes[0] < MIN_SPAN:
        raise ValueError(
            f"{claim} needs at least {MIN_SIZES} corpus sizes spanning a factor "
            f"{MIN_SPAN:g}; got {sizes.size} sizes from {sizes[0]:g} to "
            f"{sizes[-1]:g}"
        )
    if n_seeds < MIN_SEEDS:
        raise ValueError(f"{claim} needs at least {MIN_SEEDS} seeds, got {n_seeds}")


def c19_statistics(
    table: pd.DataFrame, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[list[dict], dict]:
    """Claim C19 on one posterior's :func:`round_two_table`: per seed, informative
    values (that seed's Spearman of N and ``|g|``, its ``|g(N_max)|`` and its KL slope);
    pooled over seeds, with seed-bootstrap 95% intervals, the three statistics of the
    rule:

    * ``spearman_n_gain`` - Spearman(N, seed-mean ``|g(N)|``);
    * ``gain_at_largest_n`` - seed-mean ``|g(N_max)|``;
    * ``kl_loglog_slope`` - log-log slope over N of the seed-mean ``KL(LA || MAP)``.
    """
    sizes, gain = seed_matrix(table, "gain")
    _, kl = seed_matrix(table, "kl")
    _check_sweep(sizes, gain.shape[0], "C19")
    both = np.stack([gain, kl], axis=-1)  # (seeds, sizes, 2): resampled together

    def spearman(m):
        return metrics.spearman(sizes, np.abs(m[..., 0]).mean(axis=0))

    def at_largest(m):
        return float(np.abs(m[:, -1, 0]).mean())

    def slope(m):
        return metrics.loglog_slope(sizes, m[..., 1].mean(axis=0))

    pooled = {
        name: (f(both), *seed_bootstrap(f, both, seed, n_resamples))
        for name, f in (
            ("spearman_n_gain", spearman),
            ("gain_at_largest_n", at_largest),
            ("kl_loglog_slope", slope),
        )
    }
    per_seed = [
        {
            "seed_spearman_n_abs_gain": metrics.spearman(sizes, np.abs(g)),
            "seed_abs_gain_at_largest_n": float(abs(g[-1])),
            "seed_kl_loglog_slope": metrics.loglog_slope(sizes, k),
        }
        for g, k in zip(gain, kl)
    ]
    return per_seed, pooled


def c20_statistics(
    table: pd.DataFrame, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[list[dict], dict]:
    """Claim C20 on one posterior's :func:`round_two_table`.

    Per seed, ``min_tail_gain``: the smallest relative tail gain over the corpus sizes.
    Pooled, ``ci_low_min_tail_gain``: the smallest, over the sizes, lower end of the
    seed-bootstrap 95% interval of the seed-mean tail gain (the same resampled seeds at
    every size).  The rule asks for a tail at every size: where a seed has an empty tail
    at some size, that seed (and the pooled statistic) report ``premise_met = 0`` and
    the minima run over the sizes with a tail.
    """
    sizes, tail = seed_matrix(table, "tail_gain")
    _, fragments = seed_matrix(table, "tail_fragments")
    _check_sweep(sizes, tail.shape[0], "C20")
    has_tail = fragments > 0
    if not has_tail.all(axis=0).any():
        raise ValueError(
            "C20: no corpus size has a tail on every seed - nothing to measure"
        )
    per_seed = [
        {
            "min_tail_gain": float(np.min(t[h])),
            "premise_met": float(h.all()),
            "tail_fragments_at_largest_n": int(f[-1]),
        }
        for t, h, f in zip(tail, has_tail, fragments)
    ]
    usable = tail[:, has_tail.all(axis=0)]
    lows = [
        metrics.bootstrap_ci(np.mean, column, seed=seed, n_resamples=n_resamples)[0]
        for column in usable.T
    ]
    pooled = {
        "ci_low_min_tail_gain": float(min(lows)),
        "premise_met": float(has_tail.all()),
    }
    return per_seed, pooled


def spearman_null_probability(n: int, threshold: float) -> float:
    """The chance that the Spearman correlation of ``n`` distinct points is at most
    ``threshold`` when their order is random: the share of the ``n!`` rankings
    (enumerated; ``3 <= n <= 9``)."""
    n = check_int("n", n, minimum=3)
    if n > 9:
        raise ValueError(f"n = {n}: enumerating n! rankings is meant for n <= 9")
    threshold = check_number(
        "threshold", threshold, -1.0, 1.0, low_open=False, high_open=False
    )
    ranks = np.arange(n)
    d2 = np.array(
        [((np.array(p) - ranks) ** 2).sum() for p in itertools.permutations(ranks)]
    )
    rho = 1 - 6 * d2 / (n * (n**2 - 1))
    return float(np.mean(rho <= threshold + 1e-12))


def decay_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Per posterior of a :func:`round_two_table`, the log-log slopes over N of the
    seed-mean ``KL(LA || MAP)`` and of the seed-mean mutual information, and their
    ratio: the KL is of second order in the posterior's spread and the MI of first, so
    the ratio is near 2."""
    rows = []
    for name, part in table.groupby("posterior", sort=False):
        sizes, kl = seed_matrix(part, "kl")
        _, mi = seed_matrix(part, "mi")
        slopes = {
            q: metrics.loglog_slope(sizes, m.mean(axis=0))
            for q, m in (("kl", kl), ("mi", mi))
        }
        rows.append({"posterior": name, **slopes, "ratio": slopes["kl"] / slopes["mi"]})
    return pd.DataFrame(rows).set_index("posterior")


def claim_statistics(
    table: pd.DataFrame, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, dict]:
    """C19's and C20's statistics (:func:`c19_statistics`, :func:`c20_statistics`) for
    every posterior of a :func:`round_two_table`: ``{posterior: {"C19": (per_seed,
    pooled), "C20": (per_seed, pooled)}}``."""
    # the verdicts' flavour first
    order = {name: i for i, name in enumerate(R2_FLAVOURS)}
    parts = sorted(
        table.groupby("posterior"), key=lambda item: order.get(item[0], len(order))
    )
    return {
        name: {
            "C19": c19_statistics(part, seed, n_resamples),
            "C20": c20_statistics(part, seed, n_resamples),
        }
        for name, part in parts
    }


def statistics_frame(statistics: dict[str, dict]) -> pd.DataFrame:
    """The statistics of :func:`claim_statistics` side by side, one column per
    posterior: C19's pooled values with their seed intervals, and C20's per-seed minimum
    tail gain (smallest and largest over seeds) and pooled lower interval end."""
    columns = {}
    for name, both in statistics.items():
        c19, (c20_seeds, c20_pooled) = both["C19"][1], both["C20"]
        column = {
            f"{k} [95% seed interval]": f"{v:.4g} [{lo:.4g}, {hi:.4g}]"
            for k, (v, lo, hi) in c19.items()
        }
        tails = [s["min_tail_gain"] for s in c20_seeds]
        column["min_tail_gain (over seeds: min, max)"] = (
            f"{min(tails):.4g}, {max(tails):.4g}"
        )
        column["ci_low_min_tail_gain"] = f"{c20_pooled['ci_low_min_tail_gain']:.4g}"
        columns[name] = column
    return pd.DataFrame(columns)

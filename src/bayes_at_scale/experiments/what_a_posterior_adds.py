"""Chapter 2's experiment: what a Laplace posterior adds to a next-token model.

On chapter 1's fragment corpus, fit posteriors of several flavours over the trained
network (:mod:`bayes_at_scale.core.posteriors`) and measure, per fragment seen in
training,

* the *epistemic std*: the spread, over posterior samples, of the probability of the
  fragment's most frequent completion; and the entropy decomposition total = aleatoric +
  mutual information;
* how far the network (MAP), the Laplace predictive (LA) and a hierarchical Dirichlet
  count model sit from the fragment's family frequency ``p_fam`` and from the uniform
  distribution;
* held-out NLL and ECE per count bucket.

Answer distributions are compared on the three answer tokens, renormalised: ``p_fam`` is
defined there, and the little mass a model puts on other tokens says nothing about the
answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ..core import metrics
from ..core.checks import check_counts, check_positive_int
from ..core.answer_posteriors import AnswerPosterior
from ..worlds.fragments import (
    ANSWERS,
    FRAGMENT_RECIPES,
    RARE_TOKEN_RECIPES,
    FragmentCorpus,
    count_bucket,
    fragment_posterior,
    fragment_world,
)
from ..core.models import CausalLM, NextToken, next_token_probs

# answer_flavour is re-exported: chapter 2 reads its round-2 flavour's tolerances
# through it
from ..core.posteriors import (
    DEFAULT_FLAVOUR,
    AnswerPosteriorConfig,
    Posterior,
    answer_flavour,
    count_loader,
    fit_posterior,
    flavour,
)
from ..core.settings import at_scale
from ..core.training import Recipe, train_language_model

RARE = 3  # n(f) <= RARE: "rare" in claims C3 and C4
FREQUENT = 1000  # n(f) >= FREQUENT: "frequent" in claim C3


def training_loader(corpus: FragmentCorpus, batch_size: int = 4096):
    """Every (prompt, answer) pair of the training corpus, once per occurrence: the data
    a Laplace fit sums its curvature over."""
    return count_loader(*corpus.next_token_counts(), batch_size=batch_size)


def fit_flavours(
    model: CausalLM, corpus: FragmentCorpus, names
) -> dict[str, Posterior]:
    """One fitted posterior per flavour name, all over the same trained network."""
    names = list(names)
    if not names:
        raise ValueError("name at least one posterior flavour")
    return {
        name: fit_posterior(
            NextToken(model), training_loader(corpus, flavour(name).fit_batch), name
        )
        for name in names
    }


def answer_distribution(probs, corpus: FragmentCorpus) -> np.ndarray:
    """Restrict next-token distributions ``(..., V)`` to the answer tokens and
    renormalise."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape[-1] != corpus.vocab_size:
        raise ValueError(
            f"expected distributions over {corpus.vocab_size} tokens, "
            f"got last dimension {probs.shape[-1]}"
        )
    a = probs[..., corpus.answer_tokens]
    return a / a.sum(axis=-1, keepdims=True)


def _seen(corpus: FragmentCorpus) -> np.ndarray:
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    if seen.size == 0:
        raise ValueError("the corpus has no fragment seen in training")
    return seen


def fragment_uncertainty(
    posterior: Posterior, corpus: FragmentCorpus, n_samples: int, seed: int
) -> pd.DataFrame:
    """Per seen fragment: count, epistemic std of the top completion's probability, the
    entropy decomposition, and the answer distributions of MAP, of LA (the flavour's own
    predictive) and of the Monte-Carlo predictive (the mean of the samples).

    For a flavour whose predictive is the probit closed form, ``la`` is that closed form
    and ``la_mc`` the sampled one; for a sampled flavour the two are the same samples'
    mean.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(
            "n_samples must be an integer >= 2 (a spread needs two samples), "
            f"got {n_samples!r}"
        )
    seen = _seen(corpus)
    prompts = corpus.prompts(seen)
    samples = answer_distribution(
        posterior.sample(prompts, n_samples, seed=seed).numpy(), corpus
    )
    mc = samples.mean(axis=0)
    if posterior.config.link_approx == "mc":
        la = mc
    else:
        la = answer_distribution(posterior.predictive(prompts).numpy(), corpus)
    map_probs = answer_distribution(
        next_token_probs(posterior.model.lm, prompts).numpy(), corpus
    )
    top = corpus.answer_counts[seen].argmax(axis=1)
    top_samples = np.take_along_axis(samples, top[None, :, None], axis=2)[..., 0]
    parts = metrics.predictive_decomposition(samples)
    table = corpus.fragments.iloc[seen][["family", "subject", "n"]].reset_index(
        drop=True
    )
    table["epistemic_std"] = top_samples.std(axis=0, ddof=1)
    for key in ("total", "aleatoric", "epistemic"):
        table[f"{key}_entropy"] = parts[key]
    for name, probs in (
        ("map", map_probs),
        ("la", la),
        ("la_mc", mc),
        ("p_fam", corpus.family_pooled[seen]),
        ("empirical", corpus.empirical[seen]),
        ("p_true", corpus.p_true[seen]),
    ):
        table[name] = list(probs)
    table["answer_counts"] = list(corpus.answer_counts[seen])
    return table


def closed_form_agreement(table: pd.DataFrame) -> dict:
    """How far the closed-form (probit) and the sampled predictive lie apart: TV
    quantiles."""
    tv = metrics.tv_distance(np.stack(table["la"]), np.stack(table["la_mc"]))
    return {
        "median_tv": float(np.median(tv)),
        "q99_tv": float(np.quantile(tv, 0.99)),
        "max_tv": float(tv.max()),
    }


def c3_statistics(table: pd.DataFrame, seed: int) -> dict:
    """Claim C3: ratio of median epistemic std (rare / frequent) and the log-log slope
    of the std against n(f), each with a bootstrap 95% interval over fragments."""
    rare = table.loc[table["n"] <= RARE, "epistemic_std"].to_numpy()
    frequent = table.loc[table["n"] >= FREQUENT, "epistemic_std"].to_numpy()
    if rare.size < 2 or frequent.size < 2:
        raise ValueError(
            f"C3 needs at least two fragments with n <= {RARE} and two with "
            f"n >= {FREQUENT}; got {rare.size} and {frequent.size}"
        )
    n, std = table["n"].to_numpy(float), table["epistemic_std"].to_numpy()
    if np.unique(n).size < 10:
        raise ValueError(
            "C3's log-log slope needs at least 10 distinct counts, got "
            f"{np.unique(n).size}: its bootstrap would draw degenerate resamples"
        )

    def ratio(a, b):
        return np.median(a) / np.median(b)

    return {
        "std_ratio_rare_frequent": (
            ratio(rare, frequent),
            *metrics.bootstrap_ci(
                ratio, rare, frequent, seed=seed, paired=False, n_resamples=1000
            ),
        ),
        "loglog_slope_std_n": (
            metrics.loglog_slope(n, std),
            *metrics.bootstrap_ci(
                metrics.loglog_slope, n, std, seed=seed, n_resamples=500
            ),
        ),
    }


# --- the hierarchical Dirichlet count model
# -------------------------------------------------


def fit_dirichlet_concentration(counts, centre) -> float:
    """Empirical-Bayes concentration ``a`` of the prior Dirichlet(a * centre) shared by
    every row of answer ``counts``: the maximiser of the Dirichlet-multinomial marginal
    likelihood."""
    counts = check_counts(counts)
    centre = metrics.check_probabilities(centre, "centre")
    if counts.shape != centre.shape:
        raise ValueError(f"counts {counts.shape} and centre {centre.shape} must match")
    keep = counts.sum(axis=1) > 0
    if not keep.any():
        raise ValueError("no row has any count: the concentration is not identified")
    counts, centre = counts[keep], np.clip(centre[keep], 1e-6, None)

    def negative_log_marginal(log_a: float) -> float:
        alpha = np.exp(log_a) * centre
        return -stats.dirichlet_multinomial.logpmf(
            counts, alpha, counts.sum(axis=1)
        ).sum()

    result = optimize.minimize_scalar(
        negative_log_marginal, bounds=(-5, 10), method="bounded"
    )
    return float(np.exp(result.x))


def dirichlet_posterior(
    counts, centre, concentration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior Dirichlet(concentration * centre + counts): its mean (the predictive)
    and the std of each component (a Beta marginal)."""
    if not concentration > 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    counts = check_counts(counts).astype(float)
    centre = metrics.check_probabilities(centre, "centre")
    if counts.shape != centre.shape:
        raise ValueError(f"counts {counts.shape} and centre {centre.shape} must match")
    alpha = concentration * centre + counts
    total = alpha.sum(axis=1, keepdims=True)
    mean = alpha / total
    return mean, np.sqrt(mean * (1 - mean) / (total + 1))


def dirichlet_table(table: pd.DataFrame, concentration: float) -> pd.DataFrame:
    """The count model on the same fragments as ``table``: predictive and epistemic std
    of the top completion's probability."""
    counts = np.stack(table["answer_counts"])
    mean, std = dirichlet_posterior(counts, np.stack(table["p_fam"]), concentration)
    top = counts.argmax(axis=1)
    out = table[["family", "subject", "n"]].copy()
    out["epistemic_std"] = std[np.arange(len(top)), top]
    out["dirichlet"] = list(mean)
    return out


def shrinkage_table(table: pd.DataFrame, concentration: float) -> pd.DataFrame:
    """For rare fragments (n <= 3): TV of MAP, LA and the Dirichlet model to p_fam and
    to the uniform answer distribution, one row per (fragment, estimator)."""
    rare = table[table["n"] <= RARE]
    if rare.empty:
        raise ValueError(f"no fragment with n <= {RARE}")
    p_fam = np.stack(rare["p_fam"])
    dirichlet, _ = dirichlet_posterior(
        np.stack(rare["answer_counts"]), p_fam, concentration
    )
    uniform = np.full_like(p_fam, 1 / len(ANSWERS))
    rows = []
    for name, probs in (
        ("MAP", np.stack(rare["map"])),
        ("LA", np.stack(rare["la"])),
        ("Dirichlet", dirichlet),
    ):
        rows.append(
            pd.DataFrame(
                {
                    "fragment": rare.index,
                    "n": rare["n"].to_numpy(),
                    "estimator": name,
                    "tv_to_family": metrics.tv_distance(probs, p_fam),
                    "tv_to_uniform": metrics.tv_distance(probs, uniform),
                    "tv_to_truth": metrics.tv_distance(probs, np.stack(rare["p_true"])),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def shrinkage_summary(shrinkage: pd.DataFrame) -> pd.DataFrame:
    """Mean TV of each estimator to p_fam, to uniform and to the truth, over rare
    fragments."""
    columns = ["tv_to_family", "tv_to_uniform", "tv_to_truth"]
    keys = ["seed", "estimator"] if "seed" in shrinkage.columns else ["estimator"]
    return shrinkage.groupby(keys, sort=False)[columns].mean().round(3).reset_index()


def c4_statistics(shrinkage: pd.DataFrame, seed: int) -> dict:
    """Claim C4: mean TV(LA, p_fam) - mean TV(MAP, p_fam) over rare fragments, with its
    paired bootstrap 95% interval."""
    wide = shrinkage.pivot(index="fragment", columns="estimator", values="tv_to_family")
    diff = (wide["LA"] - wide["MAP"]).to_numpy()
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=seed)
    return {
        "mean_tv_difference": (float(diff.mean()), low, high),
        "ci_high_tv_difference": high,
    }


# --- held-out evaluation
# --------------------------------------------------------------------


def heldout_by_bucket(
    table: pd.DataFrame, per_fragment: int, seed: int
) -> pd.DataFrame:
    """Held-out NLL and ECE of MAP and LA per count bucket: ``per_fragment`` fresh
    answers per seen fragment, drawn from its true answer distribution."""
    check_positive_int("per_fragment", per_fragment)
    rng = np.random.default_rng(seed)
    truth = np.stack(table["p_true"])
    answers = np.stack(
        [rng.choice(len(ANSWERS), per_fragment, p=p / p.sum()) for p in truth]
    )
    buckets = count_bucket(table["n"])
    rows = []
    for bucket in buckets.categories:
        mask = np.asarray(buckets == bucket)
        if not mask.any():
            continue
        y = answers[mask].ravel()
        row = {"bucket": bucket, "fragments": int(mask.sum())}
        for name, column in (("MAP", "map"), ("LA", "la")):
            p = np.repeat(np.stack(table.loc[mask, column]), per_fragment, axis=0)
            row[f"nll_{name}"] = float(-np.log(p[np.arange(len(y)), y]).mean())
            row[f"ece_{name}"] = metrics.ece(p, y)
        rows.append(row)
    return pd.DataFrame(rows)


# --- one replicate
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PosteriorReplicate:
    """One seed's corpus and trained network, its posteriors and their per-fragment
    tables."""

    seed: int
    corpus: FragmentCorpus
    model: CausalLM
    # what each fitted flavour is and cost (:func:`flavour_table`)
    flavours: pd.DataFrame
    tables: dict  # flavour name -> fragment_uncertainty table
    concentration: float  # empirical-Bayes Dirichlet concentration

    def table(self, flavour: str = DEFAULT_FLAVOUR) -> pd.DataFrame:
        return self.tables[flavour]


def recipe(scale: str) -> Recipe:
    """Chapter 2's recipe at ``scale``: chapter 1's fragment world and network."""
    return at_scale(FRAGMENT_RECIPES, scale)


def run_posteriors(
    recipe: Recipe, seed: int, flavours=(DEFAULT_FLAVOUR,), n_samples: int = 200
) -> PosteriorReplicate:
    """Chapter 1's corpus and network for ``seed``, then every named posterior flavour
    over it, each summarised fragment by fragment with ``n_samples`` seeded posterior
    samples."""
    corpus = fragment_world(recipe, seed)
    model = train_language_model(
        *corpus.next_token_counts(), corpus.vocab_size, recipe, seed
    )
    fitted = fit_flavours(model, corpus, flavours)
    tables = {
        name: (
            fragment_uncertainty(post, corpus, n_samples, seed).assign(
                flavour=name, seed=seed
            )
        )
        for name, post in fitted.items()
    }
    first = next(iter(tables.values()))
    concentration = fit_dirichlet_concentration(
        np.stack(first["answer_counts"]), np.stack(first["p_fam"])
    )
    # the fitted posteriors stay here (laplace-torch's hooks do not travel between
    # processes): the replicate keeps what they are and what they cost
    return PosteriorReplicate(
        seed, corpus, model, describe_flavours(fitted), tables, concentration
    )


# --- summaries for the chapter
# --------------------------------------------------------------


def flavour_table(replicate: PosteriorReplicate) -> pd.DataFrame:
    """What each fitted flavour of ``replicate`` is and what it cost
    (:func:`describe_flavours`)."""
    return replicate.flavours.copy()


def describe_flavours(posteriors: dict[str, Posterior]) -> pd.DataFrame:
    """What each fitted flavour is and what it cost: weights, Hessian, curvature
    backend, predictive, number of parameters, tuned prior precision and fit time."""
    rows = []
    for name, post in posteriors.items():
        c = post.config
        rows.append(
            {
                "flavour": name,
                "weights": (
                    c.subset_of_weights
                    + (f" (frozen: {', '.join(c.freeze)})" if c.freeze else "")
                ),
                "hessian": c.hessian_structure,
                "curvature": c.backend,
                "predictive": (
                    "probit (closed form)"
                    if c.link_approx == "probit"
                    else f"{c.n_samples} weight samples"
                ),
                "parameters": int(post.la.n_params),
                "prior precision": round(float(post.prior_precision.mean()), 2),
                "fit seconds": round(post.fit_seconds, 1),
            }
        )
    return pd.DataFrame(rows)


def c3_by_flavour(replicate: PosteriorReplicate) -> pd.DataFrame:
    """C3's two statistics for every flavour of one replicate, and for the Dirichlet
    count model on the same fragments."""
    tables = dict(replicate.tables)
    tables["Dirichlet count model"] = dirichlet_table(
        replicate.table(), replicate.concentration
    )
    rows = []
    for name, table in tables.items():
        stats_ = c3_statistics(table, replicate.seed)
        rows.append(
            {
                "model": name,
                "std ratio rare/frequent": round(
                    stats_["std_ratio_rare_frequent"][0], 1
                ),
                "log-log slope": round(stats_["loglog_slope_std_n"][0], 2),
            }
        )
    return pd.DataFrame(rows)


def entropy_by_bucket(table: pd.DataFrame) -> pd.DataFrame:
    """Mean total, aleatoric and epistemic (mutual information) entropy per count
    bucket."""
    keys = ["seed"] if "seed" in table.columns else []
    columns = ["total_entropy", "aleatoric_entropy", "epistemic_entropy"]
    grouped = table.assign(bucket=count_bucket(table["n"])).groupby(
        keys + ["bucket"], observed=True
    )
    out = grouped[columns].mean()
    out.insert(0, "fragments", grouped.size())
    return out.round(4).reset_index()


# --- round 2: claims C17 and C18
# ------------------------------------------------------------
#
# The round-2 posterior (:mod:`bayes_at_scale.core.answer_posteriors`): GGN curvature
# over the subject embeddings and the answer rows of the output layer, centred at its
# own mode, and the answer-restricted GLM predictive by Monte Carlo.

RARE_R2 = 3  # n(f) <= 3: "rare" in C17 and C18
FREQUENT_R2 = 300  # n(f) >= 300: "frequent" in C17
R2_FLAVOUR = "embedding_and_head"


def rare_token_recipe(scale: str) -> Recipe:
    """C17's recipe at ``scale``: the rare-token fragment world (every fragment its own
    subject token) and chapter 1's network."""
    return at_scale(RARE_TOKEN_RECIPES, scale)


def fit_round_two(
    corpus: FragmentCorpus,
    model: CausalLM,
    flavour: str | AnswerPosteriorConfig = R2_FLAVOUR,
) -> AnswerPosterior:
    """The round-2 posterior of ``model`` on ``corpus``
    (:func:`~bayes_at_scale.worlds.fragments.fragment_posterior`), the chapter's flavour
    by default."""
    return fragment_posterior(corpus, model, flavour)


def restricted_table(
    posterior: AnswerPosterior, corpus: FragmentCorpus, n_samples: int, seed: int
) -> pd.DataFrame:
    """Per seen fragment, under the round-2 posterior: count, epistemic std of the top
    completion's probability, mutual information, and the answer distributions of the
    mode (``map``), of the restricted predictive (``la``), of the family (``p_fam``) and
    the truth, with the mode's answer logits (for the temperature control of C18)."""
    seen = _seen(corpus)
    prompts = corpus.prompts(seen)
    samples = posterior.samples(prompts, n_samples, seed=seed)
    top = corpus.answer_counts[seen].argmax(axis=1)
    top_samples = np.take_along_axis(samples, top[None, :, None], axis=2)[..., 0]
    table = corpus.fragments.iloc[seen][["family", "subject", "n"]].reset_index(
        drop=True
    )
    table["epistemic_std"] = top_samples.std(axis=0, ddof=1)
    table["mutual_information"] = metrics.predictive_decomposition(samples)["epistemic"]
    for name, values in (
        ("map", posterior.map_probs(prompts)),
        ("la", samples.mean(axis=0)),
        ("map_logits", posterior.map_logits(prompts)),
        ("p_fam", corpus.family_pooled[seen]),
        ("p_true", corpus.p_true[seen]),
        ("answer_counts", corpus.answer_counts[seen]),
    ):
        table[name] = list(values)
    return table


@dataclass(frozen=True)
class RoundTwoReplicate:
    """One seed of a round-2 experiment: the per-fragment table, the oracle on the same
    fragments, and what the posterior is and cost."""

    seed: int
    table: pd.DataFrame
    oracle: pd.DataFrame
    gradient_norm: float
    prior_precision: tuple
    n_params: int
    fit_seconds: float
    newton_decrement: float = float("nan")  # distance to the mode, in posterior stds


def run_round_two(
    recipe: Recipe, seed: int, flavour: str = R2_FLAVOUR, n_samples: int = 200
) -> RoundTwoReplicate:
    """World, network and round-2 posterior for ``seed``, summarised fragment by
    fragment."""
    corpus = fragment_world(recipe, seed)
    model = train_language_model(
        *corpus.next_token_counts(), corpus.vocab_size, recipe, seed
    )
    posterior = fit_round_two(corpus, model, flavour)
    table = restricted_table(posterior, corpus, n_samples, seed).assign(seed=seed)
    concentration = fit_dirichlet_concentration(
        np.stack(table["answer_counts"]), np.stack(table["p_fam"])
    )
    return RoundTwoReplicate(
        seed,
        table,
        dirichlet_table(table, concentration),
        posterior.gradient_norm,
        tuple(posterior.prior_precision.tolist()),
        posterior.n_params,
        posterior.fit_seconds,
        posterior.newton_decrement,
    )


def c17_statistics(replicate: RoundTwoReplicate) -> dict:
    """Claim C17 on one seed: group sizes, the rare/frequent ratio of median epistemic
    std (bootstrap over fragments) and LA's log-log slope minus half the oracle's
    (paired bootstrap over fragments)."""
    table, oracle = replicate.table, replicate.oracle
    n = table["n"].to_numpy(float)
    la, dirichlet = (
        table["epistemic_std"].to_numpy(),
        oracle["epistemic_std"].to_numpy(),
    )
    rare, frequent = la[n <= RARE_R2], la[n >= FREQUENT_R2]
    if rare.size < 2 or frequent.size < 2:
        raise ValueError(
            f"C17 needs at least two fragments with n <= {RARE_R2} and two with "
            f"n >= {FREQUENT_R2}; got {rare.size} and {frequent.size}"
        )

    def ratio(a, b):
        return np.median(a) / np.median(b)

    def slope_gap(n_, la_, oracle_):
        return metrics.loglog_slope(n_, la_) - 0.5 * metrics.loglog_slope(n_, oracle_)

    seed = replicate.seed
    return {
        "rare_fragments": int(rare.size),
        "frequent_fragments": int(frequent.size),
        "std_ratio_rare_frequent": (
            ratio(rare, frequent),
            *metrics.bootstrap_ci(
                ratio, rare, frequent, seed=seed, paired=False, n_resamples=1000
            ),
        ),
        "slope_la_minus_half_oracle": (
            slope_gap(n, la, dirichlet),
            *metrics.bootstrap_ci(
                slope_gap, n, la, dirichlet, seed=seed, n_resamples=500
            ),
        ),
    }


def slopes(replicate: RoundTwoReplicate) -> dict:
    """LA's and the oracle's log-log slopes of epistemic std against n(f)."""
    n = replicate.table["n"].to_numpy(float)
    return {
        "la": metrics.loglog_slope(n, replicate.table["epistemic_std"].to_numpy()),
        "oracle": metrics.loglog_slope(n, replicate.oracle["epistemic_std"].to_numpy()),
    }


def matching_temperature(logits, target_tv: float) -> float:
    """The temperature ``T`` at which the mean TV of ``softmax(logits / T)`` to the
    uniform distribution equals ``target_tv`` (bisection on log T; the TV falls as T
    grows)."""
    logits = np.asarray(logits, dtype=float)
    if logits.ndim != 2 or logits.shape[1] < 2 or not np.isfinite(logits).all():
        raise ValueError("logits must be a finite (fragments, answers >= 2) array")
    uniform = np.full(logits.shape, 1 / logits.shape[1])

    def gap(log_t):
        return (
            metrics.tv_distance(tempered(logits, np.exp(log_t)), uniform).mean()
            - target_tv
        )

    low, high = -6.0, 8.0
    if not gap(high) < 0 < gap(low):
        raise ValueError(
            f"target TV to uniform {target_tv!r} lies outside what a temperature "
            "in [e^-6, e^8] reaches"
        )
    return float(np.exp(optimize.brentq(gap, low, high, xtol=1e-10)))


def tempered(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` row by row."""
    return special.softmax(np.asarray(logits, dtype=float) / temperature, axis=1)


def temperature_table(
    table: pd.DataFrame, oracle: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, float]:
    """C18's comparison on the rare fragments (n <= 3): TV of LA, MAP and MAP_T - and,
    given the ``oracle`` table of the same fragments, of the Dirichlet count model - to
    p_fam, to uniform and to the truth, one row per fragment (with the family
    frequency's own TV to the truth); and the matched temperature T."""
    keep = (table["n"] <= RARE_R2) & table["p_fam"].map(
        lambda p: bool(np.isfinite(p).all())
    )
    rare = table[keep]
    if len(rare) < 2:
        raise ValueError(f"C18 needs at least two fragments with n <= {RARE_R2}")
    la, p_fam = np.stack(rare["la"]), np.stack(rare["p_fam"])
    uniform = np.full(la.shape, 1 / la.shape[1])
    t = matching_temperature(
        np.stack(rare["map_logits"]), metrics.tv_distance(la, uniform).mean()
    )
    map_t = tempered(np.stack(rare["map_logits"]), t)
    out = pd.DataFrame({"n": rare["n"].to_numpy()})
    truth = np.stack(rare["p_true"])
    estimators = [("LA", la), ("MAP", np.stack(rare["map"])), ("MAP_T", map_t)]
    if oracle is not None:
        if len(oracle) != len(table):
            raise ValueError(
                "the oracle table must hold the same fragments as the table"
            )
        estimators.append(
            ("Dirichlet", np.stack(oracle.loc[keep.to_numpy(), "dirichlet"]))
        )
    for name, probs in estimators:
        out[f"tv_family_{name}"] = metrics.tv_distance(probs, p_fam)
        out[f"tv_uniform_{name}"] = metrics.tv_distance(probs, uniform)
        out[f"tv_truth_{name}"] = metrics.tv_distance(probs, truth)
    out["tv_truth_p_fam"] = metrics.tv_distance(p_fam, truth)
    return out, t


def c18_statistics(replicate: RoundTwoReplicate) -> dict:
    """Claim C18 on one seed: mean TV(LA, p_fam) - mean TV(MAP_T, p_fam) over rare
    fragments, with its paired bootstrap 95% interval."""
    table, _ = temperature_table(replicate.table)
    diff = (table["tv_family_LA"] - table["tv_family_MAP_T"]).to_numpy()
    low, high = metrics.bootstrap_ci(np.mean, diff, seed=replicate.seed)
    return {
        "tv_difference_la_mapt": (float(diff.mean()), low, high),
        "ci_high_tv_difference": high,
    }

"""Chapter 1's experiment: do a language model's predictions equal empirical
frequencies?

Two worlds, one question.  On the synthetic fragment corpus
(:mod:`bayes_at_scale.worlds.fragments`) we compare, fragment by fragment, the trained
model's completion distribution with the frequencies observed in training; on real
English we compare, for frequent two-character contexts, the model's next-character
distribution averaged over the context's occurrences with the observed next-character
frequencies.  The recipes fix corpus and model sizes per scale; the worlds and their
recipes live in :mod:`bayes_at_scale.worlds.fragments` and
:mod:`bayes_at_scale.worlds.text`.

Round 2 refines both claims.  C15 asks whether, on frequent fragments, the network sits
closer to its training frequencies than those frequencies sit to the truth
(:func:`answer_distances`, :func:`c15_statistics`); C16 repeats C2 with a model that
reads four characters, so that a two-character context's occurrences differ in what the
model sees (:func:`c16_statistics`). :func:`round_two` runs both worlds' round-2
replicates in one call of the seed-parallel runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core import metrics, runner
from ..core.checks import as_array, check_instance, check_int, check_items
from ..worlds.fragments import (
    ANSWERS,
    FRAGMENT_RECIPES,
    FragmentCorpus,
    count_bucket,
    fragment_world,
)
from ..worlds.text import CHAR_RECIPES, LONG_CONTEXT_RECIPES, CharCorpus, char_world
from ..core.models import CausalLM, next_token_probs
from ..core.settings import at_scale
from ..core.training import Recipe, corpus_nll, excess_loss, train_language_model

FREQUENT = 1000  # "seen at least this often" in claims C1 and C2 (and C16)
SAMPLING_FREQUENT = 300  # "seen at least this often" in claim C15


def fragment_table(corpus: FragmentCorpus, model: CausalLM) -> pd.DataFrame:
    """One row per fragment seen in training: count, empirical and model answer
    probabilities, and TV between the model's full next-token distribution and the
    empirical one."""
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    if seen.size == 0:
        raise ValueError("the corpus has no fragment seen in training")
    probs = next_token_probs(model, corpus.prompts(seen)).double().numpy()
    probs /= probs.sum(axis=1, keepdims=True)
    empirical = np.zeros_like(probs)
    empirical[:, corpus.answer_tokens] = corpus.empirical[seen]
    table = corpus.fragments.iloc[seen].reset_index(drop=True)
    for j, a in enumerate(ANSWERS):
        table[f"empirical_{a}"] = empirical[:, corpus.answer_tokens[j]]
        table[f"model_{a}"] = probs[:, corpus.answer_tokens[j]]
    table["tv"] = metrics.tv_distance(probs, empirical)
    return table


@dataclass(frozen=True)
class Replicate:
    """One seed's corpus, trained model and result table."""

    seed: int
    corpus: FragmentCorpus | CharCorpus
    model: CausalLM
    table: pd.DataFrame

    @property
    def excess_loss(self) -> float:
        """Training NLL per token above the empirical conditional entropy
        (:func:`~bayes_at_scale.core.training.excess_loss`)."""
        return excess_loss(self.model, *self.corpus.next_token_counts())


def recipes(scale: str) -> tuple[Recipe, Recipe]:
    """Chapter 1's two recipes at ``scale``: the fragment world's and the real
    text's."""
    return at_scale(FRAGMENT_RECIPES, scale), at_scale(CHAR_RECIPES, scale)


def run_fragments(recipe: Recipe, seed: int) -> Replicate:
    """Sample the corpus, train the model, and tabulate every seen fragment (one
    replicate)."""
    corpus = fragment_world(recipe, seed)
    model = train_language_model(
        *corpus.next_token_counts(), corpus.vocab_size, recipe, seed
    )
    return Replicate(
        seed, corpus, model, fragment_table(corpus, model).assign(seed=seed)
    )


def tv_by_bucket(table: pd.DataFrame) -> pd.DataFrame:
    """Mean TV to the empirical frequencies per count bucket (and per seed, if
    present)."""
    keys = ["seed"] if "seed" in table.columns else []
    grouped = table.assign(bucket=count_bucket(table["n"])).groupby(
        keys + ["bucket"], observed=True
    )["tv"]
    return (
        grouped.agg(fragments="size", mean_tv="mean")
        .round({"mean_tv": 3})
        .reset_index()
    )


def c1_statistics(table: pd.DataFrame, seed: int) -> dict:
    """Claim C1's statistics with bootstrap 95% intervals over fragments."""
    frequent = table.loc[table["n"] >= FREQUENT, "tv"].to_numpy()
    if frequent.size < 2:
        raise ValueError(
            f"need at least two fragments seen >= {FREQUENT} times, got {frequent.size}"
        )
    n, tv = table["n"].to_numpy(float), table["tv"].to_numpy()
    return {
        "mean_tv_frequent": (
            frequent.mean(),
            *metrics.bootstrap_ci(np.mean, frequent, seed=seed),
        ),
        "spearman_n_tv": (
            metrics.spearman(n, tv),
            *metrics.bootstrap_ci(
                lambda a, b: metrics.spearman(a, b), n, tv, seed=seed, n_resamples=500
            ),
        ),
    }


def context_probabilities(
    corpus: CharCorpus, model: CausalLM, min_count: int = FREQUENT
) -> pd.DataFrame:
    """Long table over (two-character context seen ``>= min_count`` times, next
    character): the context's count ``n``, the empirical next-character frequency, and
    the model's next-character probability averaged over the context's occurrences in
    training."""
    table = corpus.bigram_contexts(min_count)
    if table.empty:
        raise ValueError(
            f"no two-character context occurs >= {min_count} times in the text"
        )
    contexts, counts = corpus.next_token_counts()
    probs = next_token_probs(model, contexts).double().numpy()
    occurrences = counts.sum(dim=1).double().numpy()
    codes = corpus.bigram_codes()
    observed = table[corpus.alphabet].to_numpy(dtype=float)
    averaged = np.stack(
        [
            np.average(probs[codes == code], axis=0, weights=occurrences[codes == code])
            for code in table["code"]
        ]
    )
    averaged /= averaged.sum(axis=1, keepdims=True)
    n = observed.sum(axis=1)
    return pd.DataFrame(
        {
            "context": np.repeat(table.index.to_numpy(), corpus.vocab_size),
            "next": np.tile(corpus.alphabet, len(table)),
            "n": np.repeat(n.astype(int), corpus.vocab_size),
            "empirical": (observed / n[:, None]).ravel(),
            "model": averaged.ravel(),
        }
    )


def context_table(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Per context: its count and the TV between the averaged model and the empirical
    frequencies."""
    rows = []
    for context, part in probabilities.groupby("context", sort=True):
        rows.append(
            {
                "context": context,
                "n": int(part["n"].iloc[0]),
                "tv": float(
                    metrics.tv_distance(
                        part["model"].to_numpy(), part["empirical"].to_numpy()
                    )
                ),
            }
        )
    return pd.DataFrame(rows)


def run_characters(
    recipe: Recipe, seed: int, corpus: CharCorpus | None = None
) -> Replicate:
    """Train a character model on the real-text corpus; tabulate its frequent contexts'
    next- character probabilities (see :func:`context_probabilities`)."""
    corpus = corpus or char_world(recipe)
    model = train_language_model(
        *corpus.next_token_counts(), corpus.vocab_size, recipe, seed
    )
    return Replicate(
        seed, corpus, model, context_probabilities(corpus, model).assign(seed=seed)
    )


def c2_statistics(table: pd.DataFrame, seed: int) -> dict:
    """Claim C2's statistic with a bootstrap 95% interval over contexts."""
    tv = table["tv"].to_numpy()
    return {
        "mean_tv_frequent_contexts": (
            tv.mean(),
            *metrics.bootstrap_ci(np.mean, tv, seed=seed),
        )
    }


# --- round 2: C15 (refines C1)
# --------------------------------------------------------------

#: The per-fragment distances of :func:`answer_distances`, all on the three answer
#: tokens.
DISTANCES = ("tv_map_empirical", "tv_empirical_true", "tv_map_true")


def answer_distances(corpus: FragmentCorpus, model: CausalLM) -> pd.DataFrame:
    """One row per fragment seen in training: its ``family``, ``subject`` and count
    ``n``, and the TV distances between the network's prediction (MAP), the empirical
    completion frequencies and the true completion probabilities, each restricted to the
    three answer tokens and renormalised: ``tv_map_empirical``, ``tv_empirical_true``
    (the sampling noise of the empirical frequencies) and ``tv_map_true``."""
    check_instance("corpus", corpus, FragmentCorpus)
    check_instance("model", model, CausalLM)
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    if seen.size == 0:
        raise ValueError("the corpus has no fragment seen in training")
    probs = next_token_probs(model, corpus.prompts(seen)).double().numpy()
    answers = probs[:, corpus.answer_tokens]
    answers /= answers.sum(axis=1, keepdims=True)
    empirical, truth = corpus.empirical[seen], corpus.p_true[seen]
    table = corpus.fragments.iloc[seen][["family", "subject", "n"]].reset_index(
        drop=True
    )
    table["tv_map_empirical"] = metrics.tv_distance(answers, empirical)
    table["tv_empirical_true"] = metrics.tv_distance(empirical, truth)
    table["tv_map_true"] = metrics.tv_distance(answers, truth)
    return table


def _ratio_of_means(numerator: np.ndarray, denominator: np.ndarray) -> float:
    return float(np.mean(numerator) / np.mean(denominator))


def c15_statistics(
    table: pd.DataFrame, seed: int, min_count: int = SAMPLING_FREQUENT
) -> dict:
    """Claim C15's statistics over the fragments of ``table`` (:func:`answer_distances`)
    seen at least ``min_count`` times: how many there are (``frequent_fragments``), and
    ``tv_ratio_map_to_sampling`` = mean TV(MAP, empirical) / mean TV(empirical, truth)
    with a paired bootstrap 95% interval over those fragments."""
    min_count = check_int("min_count", min_count)
    missing = [
        c for c in ("n", "tv_map_empirical", "tv_empirical_true") if c not in table
    ]
    if missing:
        raise KeyError(
            f"the table lacks column(s) {', '.join(missing)} (see answer_distances)"
        )
    frequent = table[table["n"] >= min_count]
    if len(frequent) < 2:
        raise ValueError(
            f"need at least two fragments seen >= {min_count} times, got "
            f"{len(frequent)}"
        )
    near = as_array(frequent["tv_map_empirical"], "tv_map_empirical")
    noise = as_array(frequent["tv_empirical_true"], "tv_empirical_true")
    if (near < 0).any() or (noise < 0).any():
        raise ValueError("TV distances must be non-negative")
    if not noise.mean() > 0:
        raise ValueError(
            "the empirical frequencies equal the truth on every frequent fragment: "
            "the ratio to their sampling noise is undefined"
        )
    interval = metrics.bootstrap_ci(_ratio_of_means, near, noise, seed=seed)
    return {
        "frequent_fragments": len(frequent),
        "tv_ratio_map_to_sampling": (_ratio_of_means(near, noise), *interval),
    }


# --- round 2: C16 (refines C2)
# --------------------------------------------------------------


def long_context_recipe(scale: str) -> Recipe:
    """Claim C16's character model at ``scale`` (it reads at least four characters)."""
    return at_scale(LONG_CONTEXT_RECIPES, scale)


def reading_summary(run: Replicate) -> dict:
    """What a character model gains by reading its whole context: its training NLL per
    character beside the conditional entropy of the next character given the last two
    characters, and given the model's whole context (the least any model reading it can
    reach). A model whose NLL is below the two-character entropy uses more than two
    characters."""
    check_instance("run", run, Replicate)
    check_instance("run.corpus", run.corpus, CharCorpus)
    contexts, counts = run.corpus.next_token_counts()
    with torch.no_grad():
        nll = corpus_nll(run.model, contexts, counts).item()
    pairs = run.corpus.bigram_contexts(1)[run.corpus.alphabet].to_numpy()
    return {
        "seed": run.seed,
        "context": run.corpus.context,
        "nll": nll,
        "entropy_two": metrics.count_entropy(pairs),
        "entropy_context": metrics.count_entropy(counts.numpy()),
    }


def c16_statistics(table: pd.DataFrame, seed: int, context: int) -> dict:
    """Claim C16's statistics: the number of characters the model reads (``context``)
    and C2's mean TV over the frequent two-character contexts of ``table``
    (:func:`context_table`), with its bootstrap 95% interval."""
    return {
        "context_characters": check_int("context", context),
        **c2_statistics(table, seed),
    }


# --- round 2: the replicates
# ----------------------------------------------------------------


def round_two(
    fragments: Recipe,
    characters: Recipe,
    seeds,
    reuse=(),
    *,
    workers: int | None = None,
) -> tuple[list[Replicate], list[Replicate]]:
    """Round 2's replicates, in one call of
    :func:`~bayes_at_scale.core.runner.run_tasks`: the fragment world of ``fragments``
    on every seed of ``seeds`` and the character model of ``characters`` on every seed.
    Fragment replicates in ``reuse`` (round 1's, of the same recipe) are taken as they
    are, not run again: each one's corpus is re-sampled from ``fragments`` and must
    equal its own.  The slower character runs are queued first, so the ``workers``
    (default ``ESSAY_WORKERS``) stay busy to the end.  Returns the fragment and the
    character replicates, in the order of ``seeds``."""
    check_instance("fragments", fragments, Recipe)
    check_instance("characters", characters, Recipe)
    seeds = [check_int("seed", s, minimum=0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and not empty, got {seeds!r}")
    reuse, done = list(reuse), {}
    for run in (check_items(reuse, Replicate) if reuse else []):
        if run.seed not in seeds or run.seed in done:
            raise ValueError(
                f"replicate of seed {run.seed} is not one of the seeds {seeds}, "
                "or is given twice"
            )
        if not isinstance(
            run.corpus, FragmentCorpus
        ) or not run.corpus.fragments.equals(
            fragment_world(fragments, run.seed).fragments
        ):
            raise ValueError(
                f"replicate of seed {run.seed} is not the fragment world of this "
                "recipe and seed"
            )
        done[run.seed] = run
    todo = [s for s in seeds if s not in done]
    fns = [run_characters] * len(seeds) + [run_fragments] * len(todo)
    tasks = [(characters, s) for s in seeds] + [(fragments, s) for s in todo]
    results = runner.run_tasks(fns, tasks, [s for _, s in tasks], workers=workers)
    done.update(zip(todo, results[len(seeds) :]))
    return [done[s] for s in seeds], results[: len(seeds)]

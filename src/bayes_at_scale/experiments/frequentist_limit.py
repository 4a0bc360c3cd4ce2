"""Chapter 1's experiment: do a language model's predictions equal empirical frequencies?

Two worlds, one question.  On the synthetic fragment corpus (:mod:`bayes_at_scale.worlds.fragments`) we
compare, fragment by fragment, the trained model's completion distribution with the frequencies
observed in training; on real English we compare, for frequent two-character contexts, the
model's next-character distribution averaged over the context's occurrences with the observed
next-character frequencies.  The recipes fix corpus and model sizes per scale; the worlds and
their recipes live in :mod:`bayes_at_scale.worlds.fragments` and :mod:`bayes_at_scale.worlds.text`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core import metrics
from ..worlds.fragments import (ANSWERS, FRAGMENT_RECIPES, FragmentCorpus, count_bucket,
                               fragment_world)
from ..worlds.text import CHAR_RECIPES, CharCorpus, char_world
from ..core.models import CausalLM, next_token_probs
from ..core.settings import at_scale
from ..core.training import Recipe, excess_loss, train_language_model


FREQUENT = 1000  # "seen at least this often" in claims C1 and C2


def fragment_table(corpus: FragmentCorpus, model: CausalLM) -> pd.DataFrame:
    """One row per fragment seen in training: count, empirical and model answer probabilities,
    and TV between the model's full next-token distribution and the empirical one."""
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
    """Chapter 1's two recipes at ``scale``: the fragment world's and the real text's."""
    return at_scale(FRAGMENT_RECIPES, scale), at_scale(CHAR_RECIPES, scale)


def run_fragments(recipe: Recipe, seed: int) -> Replicate:
    """Sample the corpus, train the model, and tabulate every seen fragment (one replicate)."""
    corpus = fragment_world(recipe, seed)
    model = train_language_model(*corpus.next_token_counts(), corpus.vocab_size, recipe, seed)
    return Replicate(seed, corpus, model, fragment_table(corpus, model).assign(seed=seed))


def tv_by_bucket(table: pd.DataFrame) -> pd.DataFrame:
    """Mean TV to the empirical frequencies per count bucket (and per seed, if present)."""
    keys = ["seed"] if "seed" in table.columns else []
    grouped = table.assign(bucket=count_bucket(table["n"])).groupby(
        keys + ["bucket"], observed=True)["tv"]
    return grouped.agg(fragments="size", mean_tv="mean").round({"mean_tv": 3}).reset_index()


def c1_statistics(table: pd.DataFrame, seed: int) -> dict:
    """Claim C1's statistics with bootstrap 95% intervals over fragments."""
    frequent = table.loc[table["n"] >= FREQUENT, "tv"].to_numpy()
    if frequent.size < 2:
        raise ValueError(f"need at least two fragments seen >= {FREQUENT} times, got {frequent.size}")
    n, tv = table["n"].to_numpy(float), table["tv"].to_numpy()
    return {
        "mean_tv_frequent": (frequent.mean(),
                             *metrics.bootstrap_ci(np.mean, frequent, seed=seed)),
        "spearman_n_tv": (metrics.spearman(n, tv),
                          *metrics.bootstrap_ci(lambda a, b: metrics.spearman(a, b), n, tv,
                                                seed=seed, n_resamples=500)),
    }


def context_probabilities(corpus: CharCorpus, model: CausalLM, min_count: int = FREQUENT
                          ) -> pd.DataFrame:
    """Long table over (two-character context seen ``>= min_count`` times, next character):
    the context's count ``n``, the empirical next-character frequency, and the model's
    next-character probability averaged over the context's occurrences in training."""
    table = corpus.bigram_contexts(min_count)
    if table.empty:
        raise ValueError(f"no two-character context occurs >= {min_count} times in the text")
    contexts, counts = corpus.next_token_counts()
    probs = next_token_probs(model, contexts).double().numpy()
    occurrences = counts.sum(dim=1).double().numpy()
    codes = corpus.bigram_codes()
    observed = table[corpus.alphabet].to_numpy(dtype=float)
    averaged = np.stack([
        np.average(probs[codes == code], axis=0, weights=occurrences[codes == code])
        for code in table["code"]])
    averaged /= averaged.sum(axis=1, keepdims=True)
    n = observed.sum(axis=1)
    return pd.DataFrame({
        "context": np.repeat(table.index.to_numpy(), corpus.vocab_size),
        "next": np.tile(corpus.alphabet, len(table)),
        "n": np.repeat(n.astype(int), corpus.vocab_size),
        "empirical": (observed / n[:, None]).ravel(),
        "model": averaged.ravel(),
    })


def context_table(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Per context: its count and the TV between the averaged model and the empirical frequencies."""
    rows = []
    for context, part in probabilities.groupby("context", sort=True):
        rows.append({"context": context, "n": int(part["n"].iloc[0]),
                     "tv": float(metrics.tv_distance(part["model"].to_numpy(),
                                                     part["empirical"].to_numpy()))})
    return pd.DataFrame(rows)


def run_characters(recipe: Recipe, seed: int, corpus: CharCorpus | None = None
                   ) -> Replicate:
    """Train a character model on the real-text corpus; tabulate its frequent contexts' next-
    character probabilities (see :func:`context_probabilities`)."""
    corpus = corpus or char_world(recipe)
    model = train_language_model(*corpus.next_token_counts(), corpus.vocab_size, recipe, seed)
    return Replicate(seed, corpus, model, context_probabilities(corpus, model).assign(seed=seed))


def c2_statistics(table: pd.DataFrame, seed: int) -> dict:
    """Claim C2's statistic with a bootstrap 95% interval over contexts."""
    tv = table["tv"].to_numpy()
    return {"mean_tv_frequent_contexts": (tv.mean(), *metrics.bootstrap_ci(np.mean, tv, seed=seed))}

"""Corpora with known completion probabilities, and the real-text loader.

A *fragment* is a question such as "is <subject> <predicate>?" written as the token
sequence ``[BOS, subject, predicate]``; its *completion* is one answer token (``yes``,
``no``, ``other``).  Fragments of one predicate form a *family*; each family has its own
answer distribution ``p_fam`` and each fragment's true distribution is drawn around it,
so fragments of a family are "similar" in a precise sense.  Fragment frequencies follow
Zipf's law (rank-frequency ``q_r ∝ r^-s``), so a few fragments are seen ten thousand
times and most are seen once or never.

A corpus is stored compactly as distinct contexts with the counts of the tokens that
followed them: a count-weighted loss over the contexts equals the token-by-token loss
over the corpus.

Chapter 1 introduces these corpora; chapters 2 and 3 reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..core.answer_posteriors import AnswerPosterior, fit_answer_posterior
from ..core.checks import check_counts, check_int, check_positive
from ..core.posteriors import AnswerPosteriorConfig, answer_flavour
from ..core.training import Recipe

ANSWERS = ("yes", "no", "other")


def zipf_probabilities(n_items: int, exponent: float) -> np.ndarray:
    """Rank-frequency Zipf law over ``n_items`` ranks: ``q_r ∝ r^-exponent``, summing to
    1."""
    n_items = check_int("n_items", n_items)
    exponent = check_positive("exponent", exponent)
    ranks = np.arange(1, n_items + 1, dtype=float)
    q = ranks**-exponent
    return q / q.sum()


@dataclass(frozen=True)
class FragmentCorpus:
    """A sampled corpus of question fragments, with the truth that generated it.

    Attributes:

    * ``fragments`` - one row per fragment: ``family``, ``subject``, ``n`` (its count in
      the corpus) and the counts of each answer, ``count_<answer>``;
    * ``p_true`` - ``(n_fragments, n_answers)`` true completion probabilities;
    * ``p_family`` - ``(n_families, n_answers)`` family-level answer distributions.
    """

    fragments: pd.DataFrame
    p_true: np.ndarray
    p_family: np.ndarray
    n_subjects: int

    # --- vocabulary: BOS, subjects, predicates (families), answers --------------------
    @property
    def n_families(self) -> int:
        return self.p_family.shape[0]

    @property
    def bos(self) -> int:
        return 0

    def subject_token(self, subject):
        return 1 + np.asarray(subject)

    def family_token(self, family):
        return 1 + self.n_subjects + np.asarray(family)

    @property
    def answer_tokens(self) -> np.ndarray:
        return 1 + self.n_subjects + self.n_families + np.arange(len(ANSWERS))

    @property
    def vocab_size(self) -> int:
        return 1 + self.n_subjects + self.n_families + len(ANSWERS)

    @property
    def seq_len(self) -> int:
        return 4  # BOS, subject, predicate, answer

    # --- derived views ----------------------------------------------------------------
    @cached_property
    def answer_counts(self) -> np.ndarray:
        return self.fragments[[f"count_{a}" for a in ANSWERS]].to_numpy()

    @cached_property
    def empirical(self) -> np.ndarray:
        """Empirical completion frequencies; NaN rows for fragments never seen."""
        n = self.fragments["n"].to_numpy()[:, None].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, self.answer_counts / np.maximum(n, 1), np.nan)

    @cached_property
    def family_pooled(self) -> np.ndarray:
        """p_fam: each fragment's family's pooled empirical frequency, leaving the
        fragment out.

        A fragment whose family has no other observation gets a NaN row: p_fam is
        undefined.
        """
        fam = self.fragments["family"].to_numpy()
        totals = np.zeros((self.n_families, len(ANSWERS)))
        np.add.at(totals, fam, self.answer_counts)
        loo = totals[fam] - self.answer_counts
        with np.errstate(invalid="ignore", divide="ignore"):
            return loo / loo.sum(axis=1, keepdims=True)

    def prompts(self, index=None) -> torch.Tensor:
        """Token prompts ``[BOS, subject, predicate]`` for the given fragments (all by
        default)."""
        df = self.fragments if index is None else self.fragments.iloc[np.asarray(index)]
        return torch.as_tensor(
            np.stack(
                [
                    np.full(len(df), self.bos),
                    self.subject_token(df["subject"].to_numpy()),
                    self.family_token(df["family"].to_numpy()),
                ],
                axis=1,
            ),
            dtype=torch.long,
        )

    def next_token_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training corpus as distinct prompts and next-token counts.

        Returns ``prompts`` ``(m, 3)`` for the ``m`` fragments seen in training and
        ``counts`` ``(m, vocab_size)``: how often each token completed each prompt.
        """
        seen = np.flatnonzero(self.fragments["n"].to_numpy() > 0)
        counts = np.zeros((seen.size, self.vocab_size), dtype=np.int64)
        counts[:, self.answer_tokens] = self.answer_counts[seen]
        return self.prompts(seen), torch.as_tensor(counts)


def make_fragment_corpus(
    *,
    n_families: int,
    n_subjects: int,
    n_tokens: int,
    zipf_exponent: float = 1.1,
    family_concentration: float = 1.0,
    fragment_concentration: float = 20.0,
    unique_subjects: bool = False,
    seed: int,
) -> FragmentCorpus:
    """Sample a fragment corpus.

    Each family draws ``p_fam ~ Dirichlet(family_concentration)``; each fragment draws
    ``p_f ~ Dirichlet(fragment_concentration * p_fam)``.  Fragments are ranked at random
    and ``n_tokens`` questions are drawn from the Zipf law over ranks; each question is
    answered by a draw from ``p_f``.  A fragment's Zipf probability is kept as
    ``popularity``: held-out text is weighted by it (chapter 3).
    """
    n_families = check_int("n_families", n_families)
    n_subjects = check_int("n_subjects", n_subjects)
    n_tokens = check_int("n_tokens", n_tokens)
    family_concentration = check_positive("family_concentration", family_concentration)
    fragment_concentration = check_positive(
        "fragment_concentration", fragment_concentration
    )
    check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)

    p_family = rng.dirichlet(
        np.full(len(ANSWERS), family_concentration), size=n_families
    )
    if not isinstance(unique_subjects, bool):
        raise TypeError(
            f"unique_subjects must be True or False, got {unique_subjects!r}"
        )
    family = np.repeat(np.arange(n_families), n_subjects)
    subject = (
        np.arange(n_families * n_subjects)
        if unique_subjects
        else np.tile(np.arange(n_subjects), n_families)
    )
    alpha = np.maximum(fragment_concentration * p_family[family], 1e-3)
    p_true = np.stack([rng.dirichlet(a) for a in alpha])

    q = zipf_probabilities(len(family), zipf_exponent)[rng.permutation(len(family))]
    n = rng.multinomial(n_tokens, q)
    answer_counts = np.stack([rng.multinomial(k, p) for k, p in zip(n, p_true)])

    fragments = pd.DataFrame(
        {"family": family, "subject": subject, "popularity": q, "n": n}
    )
    for j, a in enumerate(ANSWERS):
        fragments[f"count_{a}"] = answer_counts[:, j]
    return FragmentCorpus(
        fragments=fragments,
        p_true=p_true,
        p_family=p_family,
        n_subjects=int(subject.max()) + 1,
    )


# --- recipes --------------------------------------------------------------------------

# Chapter 1's fragment world and network (chapter 2 reuses them).
FRAGMENT_RECIPES = {
    "quick": Recipe(
        corpus=dict(n_families=16, n_subjects=96, n_tokens=60_000, zipf_exponent=1.2),
        model=dict(d_model=32, n_heads=2, n_layers=2),
        training=dict(steps=300, lr=1e-2, weight_decay=1e-5),
    ),
    "full": Recipe(
        corpus=dict(n_families=32, n_subjects=192, n_tokens=600_000, zipf_exponent=1.2),
        model=dict(d_model=64, n_heads=4, n_layers=2),
        training=dict(steps=1500, lr=5e-3, weight_decay=1e-5),
    ),
}


# Round 2's rare-token world (claim C17): every fragment its own subject token, a
# steeper Zipf law, so that at least 20 fragments are seen >= 300 times and at least 20
# at most 3 times.
RARE_TOKEN_RECIPES = {
    "quick": Recipe(
        corpus=dict(
            n_families=16,
            n_subjects=36,
            n_tokens=90_000,
            zipf_exponent=1.5,
            unique_subjects=True,
        ),
        model=dict(d_model=32, n_heads=2, n_layers=2),
        training=dict(steps=300, lr=1e-2, weight_decay=1e-5),
    ),
    "full": Recipe(
        corpus=dict(
            n_families=32,
            n_subjects=64,
            n_tokens=400_000,
            zipf_exponent=1.5,
            unique_subjects=True,
        ),
        model=dict(d_model=64, n_heads=4, n_layers=2),
        training=dict(steps=1500, lr=5e-3, weight_decay=1e-5),
    ),
}


def fragment_world(recipe: Recipe, seed: int, **overrides) -> FragmentCorpus:
    """The fragment corpus of ``recipe`` (its ``corpus`` options, updated by
    ``overrides``), sampled with ``seed``."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    return make_fragment_corpus(**{**recipe.corpus, **overrides}, seed=seed)


def fragment_posterior(
    corpus: FragmentCorpus,
    model,
    flavour: str | AnswerPosteriorConfig = "embedding_and_head",
) -> AnswerPosterior:
    """The round-2 posterior (:mod:`bayes_at_scale.core.answer_posteriors`) of a network
    trained on ``corpus``: over the subject embeddings (prompt position 1) and the
    answer head with ``"embedding_and_head"``, over the answer head alone with
    ``"last_layer"`` (a flavour name or a config)."""
    contexts, counts = corpus.next_token_counts()
    config = answer_flavour(flavour) if isinstance(flavour, str) else flavour
    if config.trainable == "head":
        return fit_answer_posterior(
            model, contexts, counts, corpus.answer_tokens, config
        )
    subjects = corpus.subject_token(np.arange(corpus.n_subjects))
    return fit_answer_posterior(
        model,
        contexts,
        counts,
        corpus.answer_tokens,
        config,
        embedded_tokens=subjects,
        position=1,
    )


# --- count buckets --------------------------------------------------------------------

COUNT_BUCKETS = (
    (1, 1, "1"),
    (2, 3, "2-3"),
    (4, 30, "4-30"),
    (31, 1000, "31-1000"),
    (1001, None, ">1000"),
)


def count_bucket(n) -> pd.Categorical:
    """The book's count buckets (1, 2-3, 4-30, 31-1000, >1000) of training counts ``n >=
    1``."""
    n = check_counts(n, "n")
    if (n < 1).any():
        raise ValueError(
            "count buckets are defined for counts >= 1 (fragments seen in training)"
        )
    labels = [label for _, _, label in COUNT_BUCKETS]
    edges = [lo - 0.5 for lo, _, _ in COUNT_BUCKETS] + [np.inf]
    return pd.cut(n, edges, labels=labels)

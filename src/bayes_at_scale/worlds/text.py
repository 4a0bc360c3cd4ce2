"""Real English: the help texts that ship with Python, as a character corpus.

Chapter 1 trains character models on them (claims C2 and C16).  Nothing is downloaded:
``pydoc_data.topics`` is part of the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..core.checks import check_int
from ..core.training import Recipe


def load_pydoc_text(max_chars: int | None = None) -> str:
    """The English help texts that ship with Python (``pydoc_data.topics``), in sorted
    topic order."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))
    if max_chars is not None:
        max_chars = check_int("max_chars", max_chars)
        text = text[:max_chars]
    if not text:
        raise ValueError("the pydoc_data.topics corpus is empty")
    return text


@dataclass(frozen=True)
class CharCorpus:
    """A character-level corpus: every run of ``context`` characters and what followed
    it."""

    text: str
    context: int

    def __post_init__(self):
        if not isinstance(self.text, str) or len(self.text) == 0:
            raise ValueError("text is empty")
        check_int("context", self.context)
        if len(self.text) <= self.context:
            raise ValueError(
                f"text has {len(self.text)} characters, fewer than context + 1 ="
                f" {self.context + 1}"
            )

    @cached_property
    def alphabet(self) -> list[str]:
        return sorted(set(self.text))

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    @cached_property
    def ids(self) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.alphabet)}
        return np.fromiter(
            (lookup[c] for c in self.text), dtype=np.int64, count=len(self.text)
        )

    @cached_property
    def _contexts(self) -> tuple[np.ndarray, np.ndarray]:
        windows = np.lib.stride_tricks.sliding_window_view(self.ids, self.context + 1)
        contexts, inverse = np.unique(windows[:, :-1], axis=0, return_inverse=True)
        counts = np.zeros((len(contexts), self.vocab_size), dtype=np.int64)
        np.add.at(counts, (inverse.ravel(), windows[:, -1]), 1)
        return contexts, counts

    def next_token_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct contexts of ``context`` characters ``(m, context)`` and, for each,
        how often every character followed it ``(m, vocab_size)``."""
        contexts, counts = self._contexts
        return torch.as_tensor(contexts), torch.as_tensor(counts)

    def bigram_codes(self) -> np.ndarray:
        """For each distinct context, an integer code of its last two characters."""
        if self.context < 2:
            raise ValueError(
                f"two-character contexts need context >= 2, got {self.context}"
            )
        contexts, _ = self._contexts
        return contexts[:, -2] * self.vocab_size + contexts[:, -1]

    def bigram_contexts(self, min_count: int) -> pd.DataFrame:
        """Two-character contexts seen at least ``min_count`` times, with next-character
        counts.

        Returns a frame indexed by the context (a two-character string), one column per
        character of the alphabet.
        """
        min_count = check_int("min_count", min_count)
        codes = self.bigram_codes()
        _, counts = self._contexts
        table = np.zeros((self.vocab_size**2, self.vocab_size), dtype=np.int64)
        np.add.at(table, codes, counts)
        keep = np.flatnonzero(table.sum(axis=1) >= min_count)
        names = [
            self.alphabet[k // self.vocab_size] + self.alphabet[k % self.vocab_size]
            for k in keep
        ]
        return pd.DataFrame(
            table[keep], index=pd.Index(names, name="context"), columns=self.alphabet
        ).assign(code=keep)


# --- recipes --------------------------------------------------------------------------

# Chapter 1's character model of the real text.
CHAR_RECIPES = {
    "quick": Recipe(
        corpus=dict(context=2, max_chars=None),
        model=dict(d_model=64, n_heads=4, n_layers=1),
        training=dict(steps=600, lr=1e-2, weight_decay=1e-5),
    ),
    "full": Recipe(
        corpus=dict(context=8, max_chars=None),
        model=dict(d_model=96, n_heads=4, n_layers=3),
        training=dict(steps=4000, lr=3e-3, weight_decay=1e-5, batch_size=8192),
    ),
}


# Round 2's character model (claim C16): C2's network reading four characters instead of
# two, so that a two-character context's occurrences differ in what the model sees and
# averaging over them does real work.  About 35,000 distinct four-character contexts
# make a full-batch step cost ~2.7 s on one core, so the quick model trains on
# minibatches of 1024 contexts drawn in proportion to their counts (~0.04 s a step).  At
# full scale C2's model already reads eight characters.
LONG_CONTEXT_RECIPES = {
    "quick": Recipe(
        corpus=dict(context=4, max_chars=None),
        model=dict(d_model=64, n_heads=4, n_layers=1),
        training=dict(steps=700, lr=1e-2, weight_decay=1e-5, batch_size=1024),
    ),
    "full": CHAR_RECIPES["full"],
}


def char_world(recipe: Recipe) -> CharCorpus:
    """The character corpus of ``recipe``: the help texts cut to ``max_chars``, with
    contexts of ``context`` characters."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    return CharCorpus(
        load_pydoc_text(recipe.corpus["max_chars"]), recipe.corpus["context"]
    )

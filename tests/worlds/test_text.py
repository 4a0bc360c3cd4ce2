"""Tests of bayes_at_scale.worlds.text: the real-text loader and the character corpus."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import torch

from bayes_at_scale.worlds import text as corpora
from bayes_at_scale.worlds.text import CHAR_RECIPES, CharCorpus, char_world


# --- load_pydoc_text ----------------------------------------------------------------------


@pytest.mark.parametrize("max_chars", [1, 100, 5000])
def test_pydoc_text_truncates(max_chars):
    from pydoc_data.topics import topics

    text = corpora.load_pydoc_text(max_chars)
    assert len(text) == max_chars
    full = "\n".join(topics[k] for k in sorted(topics))
    assert full.startswith(text)


def test_pydoc_text_is_large_english():
    text = corpora.load_pydoc_text()
    assert len(text) > 100_000
    assert text.count(" the ") > 1000


@pytest.mark.parametrize("max_chars", [0, -10, 2.5, "100"])
def test_pydoc_text_bad_max_chars(max_chars):
    with pytest.raises(ValueError, match=r"max_chars must be an integer >= 1"):
        corpora.load_pydoc_text(max_chars)


# --- CharCorpus ---------------------------------------------------------------------------

# "abracadabra" with two characters of context: every (context, next) pair, counted by hand
ABRA_NEXT = {"ab": {"r": 2}, "br": {"a": 2}, "ra": {"c": 1}, "ac": {"a": 1},
             "ca": {"d": 1}, "ad": {"a": 1}, "da": {"b": 1}}
# ... and the two-character suffixes of three-character contexts
ABRA_BIGRAM_CONTEXT3 = {"br": {"a": 2}, "ra": {"c": 1}, "ac": {"a": 1}, "ca": {"d": 1},
                        "ad": {"a": 1}, "da": {"b": 1}, "ab": {"r": 1}}


def _as_dict(corpus: CharCorpus, contexts: torch.Tensor, counts: torch.Tensor) -> dict:
    out = {}
    for ctx, row in zip(contexts.tolist(), counts.tolist()):
        key = "".join(corpus.alphabet[i] for i in ctx)
        out[key] = {corpus.alphabet[j]: k for j, k in enumerate(row) if k}
    return out


def test_char_corpus_vocabulary(abracadabra):
    c = CharCorpus(abracadabra, 2)
    assert c.alphabet == ["a", "b", "c", "d", "r"]
    assert c.vocab_size == 5
    assert "".join(c.alphabet[i] for i in c.ids) == abracadabra


def test_char_next_token_counts_by_hand(abracadabra):
    c = CharCorpus(abracadabra, 2)
    contexts, counts = c.next_token_counts()
    assert contexts.shape == (7, 2) and counts.shape == (7, 5)
    assert _as_dict(c, contexts, counts) == ABRA_NEXT
    assert counts.sum().item() == len(abracadabra) - 2
    assert len({tuple(x) for x in contexts.tolist()}) == len(contexts)  # distinct


def test_char_bigram_contexts_by_hand(abracadabra):
    c = CharCorpus(abracadabra, 2)
    table = c.bigram_contexts(min_count=2)
    assert list(table.index) == ["ab", "br"]
    assert table.loc["ab", "r"] == 2 and table.loc["ab", c.alphabet].sum() == 2
    assert table.loc["br", "a"] == 2 and table.loc["br", c.alphabet].sum() == 2
    everything = c.bigram_contexts(min_count=1)
    assert set(everything.index) == set(ABRA_NEXT)
    for ctx, nxt in ABRA_NEXT.items():
        row = everything.loc[ctx, c.alphabet]
        assert {ch: int(k) for ch, k in row.items() if k} == nxt
        a, b = (c.alphabet.index(ch) for ch in ctx)
        assert everything.loc[ctx, "code"] == a * c.vocab_size + b


def test_char_bigram_contexts_pool_longer_contexts(abracadabra):
    c = CharCorpus(abracadabra, 3)
    table = c.bigram_contexts(min_count=1)
    assert {ctx: {ch: int(k) for ch, k in table.loc[ctx, c.alphabet].items() if k}
            for ctx in table.index} == ABRA_BIGRAM_CONTEXT3
    assert table[c.alphabet].to_numpy().sum() == len(abracadabra) - 3


@pytest.mark.parametrize("context", [1, 2, 4])
def test_char_counts_match_a_naive_count(context):
    text = corpora.load_pydoc_text(3000)
    c = CharCorpus(text, context)
    naive: dict = defaultdict(Counter)
    for i in range(context, len(text)):
        naive[text[i - context:i]][text[i]] += 1
    assert _as_dict(c, *c.next_token_counts()) == {k: dict(v) for k, v in naive.items()}


def test_char_bigram_contexts_match_a_naive_count():
    text = corpora.load_pydoc_text(3000)
    c = CharCorpus(text, 4)
    naive: dict = defaultdict(Counter)
    for i in range(4, len(text)):
        naive[text[i - 2:i]][text[i]] += 1
    table = c.bigram_contexts(min_count=20)
    expected = {k: dict(v) for k, v in naive.items() if sum(v.values()) >= 20}
    assert set(table.index) == set(expected)
    for ctx in table.index:
        assert {ch: int(k) for ch, k in table.loc[ctx, c.alphabet].items() if k} == expected[ctx]


@pytest.mark.parametrize("text, context, pattern", [
    ("", 2, r"text is empty"),
    ("ab", 2, r"text has 2 characters, fewer than context \+ 1 = 3"),
    ("a", 1, r"text has 1 characters, fewer than context \+ 1 = 2"),
    ("abcdef", 0, r"context must be an integer >= 1, got 0"),
    ("abcdef", -1, r"context must be an integer >= 1"),
    ("abcdef", 1.5, r"context must be an integer >= 1, got 1.5"),
])
def test_char_corpus_bad_input(text, context, pattern):
    with pytest.raises(ValueError, match=pattern):
        CharCorpus(text, context)


def test_char_bigrams_need_two_characters(abracadabra):
    c = CharCorpus(abracadabra, 1)
    with pytest.raises(ValueError, match=r"two-character contexts need context >= 2, got 1"):
        c.bigram_codes()
    with pytest.raises(ValueError, match=r"two-character contexts need context >= 2"):
        c.bigram_contexts(1)


@pytest.mark.parametrize("min_count", [0, -1, 1.5])
def test_char_bigram_contexts_bad_min_count(abracadabra, min_count):
    with pytest.raises(ValueError, match=r"min_count must be an integer >= 1"):
        CharCorpus(abracadabra, 2).bigram_contexts(min_count)


def test_char_world_builds_the_recipes_corpus():
    from bayes_at_scale.core.training import Recipe
    tiny = Recipe(corpus=dict(context=3, max_chars=500), model={}, training={})
    corpus = char_world(tiny)
    assert corpus.context == 3 and len(corpus.text) == 500
    with pytest.raises(TypeError, match="recipe must be a Recipe"):
        char_world(CHAR_RECIPES["quick"].corpus)


# --- round 2's recipe (claim C16) -----------------------------------------------------------


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_long_context_recipes_read_at_least_four_characters(scale):
    recipe = corpora.LONG_CONTEXT_RECIPES[scale]
    assert recipe.corpus["context"] >= 4
    assert recipe.corpus["context"] >= CHAR_RECIPES[scale].corpus["context"]
    corpus = char_world(corpora.Recipe(corpus={**recipe.corpus, "max_chars": 500}, model={},
                                       training={}))
    assert corpus.next_token_counts()[0].shape[1] == recipe.corpus["context"]


def test_long_context_quick_recipe_is_c2s_network_on_minibatches():
    quick = corpora.LONG_CONTEXT_RECIPES["quick"]
    assert quick.model == CHAR_RECIPES["quick"].model
    assert quick.training["batch_size"] is not None
    assert CHAR_RECIPES["quick"].corpus["context"] == 2  # round 1's model is left as it was

"""Tests of bayes_at_scale.experiments.frequentist_limit (chapter 1's experiment) on small corpora and models.

Besides trained tiny models, an *oracle* language model that returns exact given next-token
distributions pins the tables down: its TV to the empirical frequencies must be zero.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from bayes_at_scale.worlds import fragments as corpora
from bayes_at_scale.experiments import frequentist_limit as frequencies
from bayes_at_scale.core import metrics
from bayes_at_scale.core import models
from bayes_at_scale.core import training
from bayes_at_scale.core.models import CausalLM
from bayes_at_scale.core.training import Recipe, train_language_model
from bayes_at_scale.worlds import text as text_world
from bayes_at_scale.worlds.fragments import ANSWERS, FRAGMENT_RECIPES, FragmentCorpus, fragment_world
from bayes_at_scale.worlds.text import CHAR_RECIPES, CharCorpus, char_world


class OracleLM(CausalLM):
    """A CausalLM whose next-token distribution after a prompt is looked up in a table."""

    def __init__(self, vocab_size: int, max_len: int, table: dict[tuple, np.ndarray]):
        super().__init__(vocab_size, max_len, d_model=2, n_heads=1)
        self.table = table

    def forward(self, tokens):
        self.check_tokens(tokens)
        out = torch.zeros(*tokens.shape, self.vocab_size, dtype=torch.float64)
        for i, row in enumerate(tokens.tolist()):
            p = torch.as_tensor(self.table[tuple(row)], dtype=torch.float64)
            out[i, -1] = torch.log(p).clamp(min=-1e4)  # exp(-1e4) is exactly 0
        return out


def fragment_oracle(corpus: FragmentCorpus) -> OracleLM:
    prompts, counts = corpus.next_token_counts()
    freq = (counts.double() / counts.sum(dim=1, keepdim=True)).numpy()
    return OracleLM(corpus.vocab_size, 3, {tuple(p): f for p, f in zip(prompts.tolist(), freq)})


def char_oracle(corpus: CharCorpus) -> OracleLM:
    contexts, counts = corpus.next_token_counts()
    freq = (counts.double() / counts.sum(dim=1, keepdim=True)).numpy()
    return OracleLM(corpus.vocab_size, corpus.context,
                    {tuple(c): f for c, f in zip(contexts.tolist(), freq)})


TINY_FRAGMENT_RECIPE = Recipe(corpus=dict(n_families=2, n_subjects=3, n_tokens=3000),
                              model=dict(d_model=8, n_heads=2, n_layers=1),
                              training=dict(steps=5, lr=1e-2, weight_decay=1e-5))
TINY_CHAR_RECIPE = Recipe(corpus=dict(context=3, max_chars=2000),
                          model=dict(d_model=8, n_heads=2, n_layers=1),
                          training=dict(steps=5, lr=1e-2, weight_decay=1e-5))


@pytest.fixture(scope="module")
def small_world(small_corpus):
    """The small Zipf corpus and a tiny double-precision model trained on it for 30 steps."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = CausalLM(small_corpus.vocab_size, 3, d_model=16, n_heads=2, n_layers=1)
    finally:
        torch.set_default_dtype(default)
    training.train_map(model, *small_corpus.next_token_counts(), steps=30, lr=3e-2,
                       progress=False)
    return small_corpus, model, frequencies.fragment_table(small_corpus, model)


@pytest.fixture(scope="module")
def text_corpus() -> CharCorpus:
    return CharCorpus(text_world.load_pydoc_text(4000), 3)


# --- recipes and worlds -------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_recipes_are_the_worlds(scale):
    fragments, chars = frequencies.recipes(scale)
    assert fragments is FRAGMENT_RECIPES[scale] and chars is CHAR_RECIPES[scale]
    world = fragment_world(fragments, seed=3)
    expected = corpora.make_fragment_corpus(**fragments.corpus, seed=3)
    pd.testing.assert_frame_equal(world.fragments, expected.fragments)
    assert world.fragments["n"].sum() == fragments.corpus["n_tokens"]


def test_recipes_reject_an_unknown_scale():
    with pytest.raises(ValueError, match=r"unknown scale 'huge'"):
        frequencies.recipes("huge")


def test_full_recipes_are_bigger_than_quick():
    for recipes in (FRAGMENT_RECIPES, CHAR_RECIPES):
        quick, full = recipes["quick"], recipes["full"]
        assert full.training["steps"] > quick.training["steps"]
        assert full.model["d_model"] * full.model["n_layers"] >= (
            quick.model["d_model"] * quick.model["n_layers"])
    assert FRAGMENT_RECIPES["full"].corpus["n_tokens"] > FRAGMENT_RECIPES["quick"].corpus[
        "n_tokens"]


def test_run_fragments():
    run = frequencies.run_fragments(TINY_FRAGMENT_RECIPE, seed=2)
    corpus, table = run.corpus, run.table
    assert run.seed == 2 and run.excess_loss >= -1e-6
    assert corpus.fragments["n"].sum() == 3000
    pd.testing.assert_frame_equal(corpus.fragments,
                                  fragment_world(TINY_FRAGMENT_RECIPE, 2).fragments)
    model = train_language_model(*corpus.next_token_counts(), corpus.vocab_size,
                                 TINY_FRAGMENT_RECIPE, seed=2)
    assert (model.vocab_size, model.max_len, model.head.in_features) == (corpus.vocab_size, 3, 8)
    expected = frequencies.fragment_table(corpus, model).assign(seed=2)
    pd.testing.assert_frame_equal(table, expected)
    assert (table["seed"] == 2).all()
    other = frequencies.run_fragments(TINY_FRAGMENT_RECIPE, seed=3)
    assert not np.array_equal(other.corpus.fragments["n"], corpus.fragments["n"])


def test_run_characters():
    corpus = CharCorpus("abracadabra " * 600, 3)  # "ab", "br", "ra" seen 1200 times
    run = frequencies.run_characters(TINY_CHAR_RECIPE, seed=4, corpus=corpus)
    probs = run.table
    assert run.corpus is corpus and run.excess_loss >= -1e-6
    model = train_language_model(*corpus.next_token_counts(), corpus.vocab_size,
                                 TINY_CHAR_RECIPE, seed=4)
    expected = frequencies.context_probabilities(corpus, model).assign(seed=4)
    pd.testing.assert_frame_equal(probs, expected)
    assert (probs["seed"] == 4).all()
    assert set(probs["context"]) == {"ab", "br", "ra"}
    assert (probs["n"] >= frequencies.FREQUENT).all()


# --- fragment_table -----------------------------------------------------------------------


def test_fragment_table_of_a_trained_model(small_world):
    corpus, model, table = small_world
    n = corpus.fragments["n"].to_numpy()
    seen = np.flatnonzero(n > 0)
    assert len(table) == seen.size and (n == 0).any()
    np.testing.assert_array_equal(table["n"], n[seen])
    np.testing.assert_array_equal(table["subject"], corpus.fragments["subject"].to_numpy()[seen])
    assert ((table["tv"] >= 0) & (table["tv"] <= 1)).all()
    probs = models.next_token_probs(model, corpus.prompts(seen)).numpy()
    for j, a in enumerate(ANSWERS):
        np.testing.assert_allclose(table[f"empirical_{a}"], corpus.empirical[seen, j])
        np.testing.assert_allclose(table[f"model_{a}"], probs[:, corpus.answer_tokens[j]],
                                   rtol=1e-12)
    # TV counts the model's mass outside the three answers as well
    model_answers = table[[f"model_{a}" for a in ANSWERS]].to_numpy()
    emp = table[[f"empirical_{a}" for a in ANSWERS]].to_numpy()
    by_hand = 0.5 * (np.abs(model_answers - emp).sum(axis=1) + 1 - model_answers.sum(axis=1))
    np.testing.assert_allclose(table["tv"], by_hand, atol=1e-12)


def test_fragment_table_of_an_oracle_is_exact(small_corpus):
    table = frequencies.fragment_table(small_corpus, fragment_oracle(small_corpus))
    np.testing.assert_allclose(table["tv"], 0.0, atol=1e-12)


def test_fragment_table_of_a_uniform_model(tiny_corpus):
    vocab = tiny_corpus.vocab_size
    table = {tuple(p): np.full(vocab, 1 / vocab) for p in tiny_corpus.prompts().tolist()}
    out = frequencies.fragment_table(tiny_corpus, OracleLM(vocab, 3, table))
    emp = out[[f"empirical_{a}" for a in ANSWERS]].to_numpy()
    expected = 0.5 * (np.abs(emp - 1 / vocab).sum(axis=1) + (vocab - 3) / vocab)
    np.testing.assert_allclose(out["tv"], expected, atol=1e-12)


def test_trained_model_is_closer_on_frequent_fragments(small_world):
    _, _, table = small_world
    assert table.loc[table["n"] >= 1000, "tv"].mean() < table.loc[table["n"] <= 3, "tv"].mean()


def test_fragment_table_needs_a_seen_fragment(tiny_corpus, make_lm):
    frame = tiny_corpus.fragments.copy()
    frame.loc[:, ["n", *[f"count_{a}" for a in ANSWERS]]] = 0
    unseen = dataclasses.replace(tiny_corpus, fragments=frame)
    with pytest.raises(ValueError, match=r"the corpus has no fragment seen in training"):
        frequencies.fragment_table(unseen, make_lm(tiny_corpus.vocab_size, 3))


def test_fragment_table_needs_a_model_of_the_corpus(tiny_corpus, make_lm):
    with pytest.raises(ValueError, match=r"token ids must lie in 0\.\.4"):
        frequencies.fragment_table(tiny_corpus, make_lm(5, 3))


# --- count buckets ------------------------------------------------------------------------


def test_tv_by_bucket():
    table = pd.DataFrame({"n": [1, 1, 2, 3, 30, 31, 1000, 1001, 5000],
                          "tv": [0.5, 0.3, 0.2, 0.4, 0.1, 0.05, 0.03, 0.01, 0.0012345]})
    out = frequencies.tv_by_bucket(table)
    assert list(out["bucket"].astype(str)) == ["1", "2-3", "4-30", "31-1000", ">1000"]
    assert list(out["fragments"]) == [2, 2, 1, 2, 2]
    np.testing.assert_allclose(out["mean_tv"], [0.4, 0.3, 0.1, 0.04, 0.006])


def test_tv_by_bucket_per_seed():
    table = pd.DataFrame({"n": [1, 5, 1, 2000], "tv": [0.5, 0.2, 0.3, 0.01], "seed": [0, 0, 1, 1]})
    out = frequencies.tv_by_bucket(table)
    assert list(zip(out["seed"], out["bucket"].astype(str), out["mean_tv"])) == [
        (0, "1", 0.5), (0, "4-30", 0.2), (1, "1", 0.3), (1, ">1000", 0.01)]


def test_tv_by_bucket_rejects_unseen_fragments():
    with pytest.raises(ValueError, match=r"count buckets are defined for counts >= 1"):
        frequencies.tv_by_bucket(pd.DataFrame({"n": [0, 3], "tv": [0.1, 0.2]}))


# --- C1 statistics ------------------------------------------------------------------------


def test_c1_statistics(small_world):
    _, _, table = small_world
    stats = frequencies.c1_statistics(table, seed=0)
    assert set(stats) == {"mean_tv_frequent", "spearman_n_tv"}
    for value, low, high in stats.values():
        assert low <= value <= high
        assert low < high
    frequent = table.loc[table["n"] >= frequencies.FREQUENT, "tv"]
    assert len(frequent) >= 2
    assert stats["mean_tv_frequent"][0] == pytest.approx(frequent.mean())
    assert stats["spearman_n_tv"][0] == pytest.approx(metrics.spearman(table["n"], table["tv"]))
    assert -1 <= stats["spearman_n_tv"][1] and stats["spearman_n_tv"][2] <= 1
    assert frequencies.c1_statistics(table, seed=0) == stats  # reproducible


def test_c1_statistics_feed_the_claim(small_world):
    from bayes_at_scale.book import claims

    _, _, table = small_world
    line = claims.verdict_line(claims.load_claims()["C1"],
                               [frequencies.c1_statistics(table, seed=s) for s in (0, 1)])
    assert claims.LINE.match(line)


@pytest.mark.parametrize("n_frequent", [0, 1])
def test_c1_statistics_need_two_frequent_fragments(small_world, n_frequent):
    _, _, table = small_world
    rare = table[table["n"] < frequencies.FREQUENT]
    frequent = table[table["n"] >= frequencies.FREQUENT].iloc[:n_frequent]
    with pytest.raises(ValueError, match=rf"need at least two fragments seen >= 1000 times, got "
                                         rf"{n_frequent}"):
        frequencies.c1_statistics(pd.concat([rare, frequent]), seed=0)


def test_c1_statistics_reject_nan(small_world):
    _, _, table = small_world
    bad = table.copy()
    bad.loc[bad.index[bad["n"] >= 1000][0], "tv"] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN"):
        frequencies.c1_statistics(bad, seed=0)


# --- real text: context_probabilities, context_table, C2 ----------------------------------


def test_context_probabilities_layout(text_corpus, make_lm):
    model = make_lm(text_corpus.vocab_size, text_corpus.context)
    probs = frequencies.context_probabilities(text_corpus, model, min_count=20)
    bigrams = text_corpus.bigram_contexts(20)
    v = text_corpus.vocab_size
    assert len(probs) == len(bigrams) * v
    assert list(probs["context"].unique()) == list(bigrams.index)
    assert list(probs["next"].iloc[:v]) == text_corpus.alphabet
    for context, part in probs.groupby("context"):
        assert part["empirical"].sum() == pytest.approx(1.0)
        assert part["model"].sum() == pytest.approx(1.0)
        assert (part["model"] > 0).all()
        row = bigrams.loc[context, text_corpus.alphabet].to_numpy()
        assert (part["n"] == row.sum()).all() and row.sum() >= 20
        np.testing.assert_allclose(part["empirical"], row / row.sum())


def test_context_probabilities_average_over_occurrences(text_corpus):
    """Averaging an exact model of the 3-character contexts over each 2-character context's
    occurrences recovers that context's empirical next-character frequencies exactly."""
    probs = frequencies.context_probabilities(text_corpus, char_oracle(text_corpus), min_count=10)
    np.testing.assert_allclose(probs["model"], probs["empirical"], atol=1e-12)
    table = frequencies.context_table(probs)
    np.testing.assert_allclose(table["tv"], 0.0, atol=1e-12)


def test_context_table(text_corpus, make_lm):
    model = make_lm(text_corpus.vocab_size, text_corpus.context)
    probs = frequencies.context_probabilities(text_corpus, model, min_count=20)
    table = frequencies.context_table(probs)
    assert list(table.columns) == ["context", "n", "tv"]
    assert list(table["context"]) == sorted(probs["context"].unique())
    assert ((table["tv"] >= 0) & (table["tv"] <= 1)).all()
    first = probs[probs["context"] == table["context"].iloc[0]]
    assert table["tv"].iloc[0] == pytest.approx(
        0.5 * np.abs(first["model"] - first["empirical"]).sum())
    assert table["n"].iloc[0] == first["n"].iloc[0]


def test_context_table_by_hand():
    probs = pd.DataFrame({
        "context": ["ab"] * 3 + ["ba"] * 3,
        "next": ["a", "b", "c"] * 2,
        "n": [10] * 3 + [4] * 3,
        "empirical": [0.5, 0.5, 0.0, 0.25, 0.25, 0.5],
        "model": [0.25, 0.5, 0.25, 0.25, 0.25, 0.5],
    })
    table = frequencies.context_table(probs)
    assert table.to_dict("list") == {"context": ["ab", "ba"], "n": [10, 4], "tv": [0.25, 0.0]}


@pytest.mark.parametrize("column, value, pattern", [
    ("model", 0.4, r"rows must sum to 1"),
    ("empirical", np.nan, r"contains NaN"),
])
def test_context_table_rejects_bad_probabilities(column, value, pattern):
    probs = pd.DataFrame({"context": ["ab"] * 2, "next": ["a", "b"], "n": [3, 3],
                          "empirical": [0.5, 0.5], "model": [0.5, 0.5]})
    probs.loc[0, column] = value
    with pytest.raises(ValueError, match=pattern):
        frequencies.context_table(probs)


def test_context_probabilities_without_frequent_contexts(text_corpus, make_lm):
    model = make_lm(text_corpus.vocab_size, text_corpus.context)
    with pytest.raises(ValueError, match=r"(?i)context.*(min_count|\b10000\b)"):
        frequencies.context_probabilities(text_corpus, model, min_count=10_000)


def test_c2_statistics(text_corpus, make_lm):
    model = make_lm(text_corpus.vocab_size, text_corpus.context)
    table = frequencies.context_table(
        frequencies.context_probabilities(text_corpus, model, min_count=20))
    stats = frequencies.c2_statistics(table, seed=0)
    value, low, high = stats["mean_tv_frequent_contexts"]
    assert value == pytest.approx(table["tv"].mean())
    assert low <= value <= high and low < high
    assert frequencies.c2_statistics(table, seed=0) == stats


def test_c2_statistics_reject_nan():
    with pytest.raises(ValueError, match=r"contains NaN"):
        frequencies.c2_statistics(pd.DataFrame({"tv": [0.1, np.nan, 0.2]}), seed=0)


# --- the full-scale recipes are well-formed (they are too slow to run here) ----------------


@pytest.mark.slow
def test_full_scale_recipes_build_and_take_a_step():
    full_fragments, full_chars = frequencies.recipes("full")
    corpus = fragment_world(full_fragments, seed=0)
    assert corpus.fragments["n"].max() >= 10**4 and (corpus.fragments["n"] == 1).any()
    recipe = FRAGMENT_RECIPES["full"]
    model = models.CausalLM(corpus.vocab_size, corpus.seq_len - 1, **recipe.model)
    losses = training.train_map(model, *corpus.next_token_counts(), steps=1, progress=False,
                                **{k: v for k, v in recipe.training.items() if k != "steps"})
    assert np.isfinite(losses).all()
    text = char_world(full_chars)
    contexts, counts = text.next_token_counts()
    assert contexts.shape[1] == CHAR_RECIPES["full"].corpus["context"]
    assert int(counts.sum()) == len(text.text) - text.context
    assert not text.bigram_contexts(frequencies.FREQUENT).empty
    char = CHAR_RECIPES["full"]
    lm = models.CausalLM(text.vocab_size, text.context, **char.model)
    losses = training.train_map(lm, contexts, counts, steps=1, progress=False,
                                 **{k: v for k, v in char.training.items() if k != "steps"})
    assert np.isfinite(losses).all()

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


# --- round 2: answer_distances and C15 -----------------------------------------------------


def fragment_table_oracle(corpus: FragmentCorpus, answers: np.ndarray, outside: float = 0.0
                          ) -> OracleLM:
    """An oracle whose answer probabilities after each seen fragment are ``(1 - outside) *
    answers[row]``; the rest of its mass sits on the BOS token (not an answer)."""
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    table = {}
    for row, prompt in zip(answers, corpus.prompts(seen).tolist()):
        p = np.zeros(corpus.vocab_size)
        p[corpus.answer_tokens] = (1 - outside) * row
        p[corpus.bos] += outside
        table[tuple(prompt)] = p
    return OracleLM(corpus.vocab_size, 3, table)


def _seen(corpus: FragmentCorpus) -> np.ndarray:
    return np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)


def test_answer_distances_layout(small_world):
    corpus, model, _ = small_world
    table = frequencies.answer_distances(corpus, model)
    seen = _seen(corpus)
    assert list(table.columns) == ["family", "subject", "n", *frequencies.DISTANCES]
    np.testing.assert_array_equal(table["n"], corpus.fragments["n"].to_numpy()[seen])
    probs = models.next_token_probs(model, corpus.prompts(seen)).double().numpy()
    answers = probs[:, corpus.answer_tokens] / probs[:, corpus.answer_tokens].sum(1, keepdims=True)
    by_hand = 0.5 * np.abs(answers - corpus.empirical[seen]).sum(axis=1)
    np.testing.assert_allclose(table["tv_map_empirical"], by_hand, rtol=1e-9)
    for column in frequencies.DISTANCES:
        assert ((table[column] >= 0) & (table[column] <= 1)).all()


def test_answer_distances_of_the_empirical_frequencies(small_corpus):
    """A network equal to the empirical frequencies is at distance 0 from them, and exactly as
    far from the truth as they are."""
    empirical = small_corpus.empirical[_seen(small_corpus)]
    table = frequencies.answer_distances(small_corpus,
                                         fragment_table_oracle(small_corpus, empirical))
    np.testing.assert_allclose(table["tv_map_empirical"], 0.0, atol=1e-12)
    np.testing.assert_allclose(table["tv_map_true"], table["tv_empirical_true"], atol=1e-12)
    truth = 0.5 * np.abs(empirical - small_corpus.p_true[_seen(small_corpus)]).sum(axis=1)
    np.testing.assert_allclose(table["tv_empirical_true"], truth, atol=1e-12)


def test_answer_distances_of_the_truth(small_corpus):
    truth = small_corpus.p_true[_seen(small_corpus)]
    table = frequencies.answer_distances(small_corpus, fragment_table_oracle(small_corpus, truth))
    np.testing.assert_allclose(table["tv_map_true"], 0.0, atol=1e-12)
    np.testing.assert_allclose(table["tv_map_empirical"], table["tv_empirical_true"], atol=1e-12)


def test_answer_distances_renormalise_the_answers(small_corpus):
    """Mass outside the answer tokens does not count: the answers are renormalised."""
    empirical = small_corpus.empirical[_seen(small_corpus)]
    table = frequencies.answer_distances(
        small_corpus, fragment_table_oracle(small_corpus, empirical, outside=0.4))
    np.testing.assert_allclose(table["tv_map_empirical"], 0.0, atol=1e-12)
    full = frequencies.fragment_table(small_corpus,
                                      fragment_table_oracle(small_corpus, empirical, 0.4))
    np.testing.assert_allclose(full["tv"], 0.4, atol=1e-12)  # round 1's TV counts that mass


def test_answer_distances_reject_bad_input(tiny_corpus, make_lm):
    with pytest.raises(TypeError, match=r"corpus must be a FragmentCorpus"):
        frequencies.answer_distances(tiny_corpus.fragments, make_lm(tiny_corpus.vocab_size, 3))
    with pytest.raises(TypeError, match=r"model must be a CausalLM"):
        frequencies.answer_distances(tiny_corpus, object())
    frame = tiny_corpus.fragments.copy()
    frame.loc[:, ["n", *[f"count_{a}" for a in ANSWERS]]] = 0
    with pytest.raises(ValueError, match=r"the corpus has no fragment seen in training"):
        frequencies.answer_distances(dataclasses.replace(tiny_corpus, fragments=frame),
                                     make_lm(tiny_corpus.vocab_size, 3))


C15_TABLE = pd.DataFrame({"n": [5, 300, 400, 1000, 2000],
                          "tv_map_empirical": [0.5, 0.01, 0.02, 0.0, 0.01],
                          "tv_empirical_true": [0.1, 0.04, 0.03, 0.02, 0.01]})


def test_c15_statistics_by_hand():
    stats = frequencies.c15_statistics(C15_TABLE, seed=0)
    assert set(stats) == {"frequent_fragments", "tv_ratio_map_to_sampling"}
    assert stats["frequent_fragments"] == 4  # the fragment seen 5 times is left out
    value, low, high = stats["tv_ratio_map_to_sampling"]
    assert value == pytest.approx(0.04 / 0.10)
    assert low <= value <= high
    assert frequencies.c15_statistics(C15_TABLE, seed=0) == stats  # reproducible
    assert frequencies.c15_statistics(C15_TABLE, seed=0, min_count=1000)[
        "frequent_fragments"] == 2


def test_c15_ratio_of_a_network_equal_to_its_corpus_is_zero(small_corpus):
    empirical = small_corpus.empirical[_seen(small_corpus)]
    table = frequencies.answer_distances(small_corpus,
                                         fragment_table_oracle(small_corpus, empirical))
    stats = frequencies.c15_statistics(table, seed=0, min_count=100)
    assert stats["tv_ratio_map_to_sampling"] == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    assert stats["frequent_fragments"] == int((table["n"] >= 100).sum()) >= 2


def test_c15_ratio_of_the_truth_is_one(small_corpus):
    truth = small_corpus.p_true[_seen(small_corpus)]
    table = frequencies.answer_distances(small_corpus, fragment_table_oracle(small_corpus, truth))
    value, low, high = frequencies.c15_statistics(table, seed=0, min_count=100)[
        "tv_ratio_map_to_sampling"]
    assert value == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_c15_statistics_of_a_trained_network(small_world):
    corpus, model, _ = small_world
    table = frequencies.answer_distances(corpus, model)
    stats = frequencies.c15_statistics(table, seed=1, min_count=100)
    frequent = table[table["n"] >= 100]
    value, low, high = stats["tv_ratio_map_to_sampling"]
    assert value == pytest.approx(frequent["tv_map_empirical"].mean()
                                  / frequent["tv_empirical_true"].mean())
    assert low < value < high


def test_c15_statistics_feed_the_claim():
    from bayes_at_scale.book import claims

    per_seed = [frequencies.c15_statistics(C15_TABLE, seed=s) for s in range(5)]
    line = claims.verdict_line(claims.load_claims()["C15"], per_seed)
    assert claims.LINE.match(line)
    assert "frequent_fragments = 4/4/4/4/4" in line


@pytest.mark.parametrize("change, error, pattern", [
    (lambda t: t.drop(columns="tv_empirical_true"), KeyError,
     r"lacks column\(s\) tv_empirical_true"),
    (lambda t: t.assign(n=[5, 300, 4, 3, 2]), ValueError,
     r"need at least two fragments seen >= 300 times, got 1"),
    (lambda t: t.assign(tv_map_empirical=[0.5, np.nan, 0.02, 0.0, 0.01]), ValueError,
     r"tv_map_empirical contains NaN"),
    (lambda t: t.assign(tv_empirical_true=[0.1, 0.0, 0.0, 0.0, 0.0]), ValueError,
     r"ratio to their sampling noise is undefined"),
    (lambda t: t.assign(tv_map_empirical=[0.5, -0.01, 0.02, 0.0, 0.01]), ValueError,
     r"TV distances must be non-negative"),
])
def test_c15_statistics_reject_bad_tables(change, error, pattern):
    with pytest.raises(error, match=pattern):
        frequencies.c15_statistics(change(C15_TABLE.copy()), seed=0)


@pytest.mark.parametrize("min_count", [0, 2.5, "300"])
def test_c15_statistics_reject_a_bad_min_count(min_count):
    with pytest.raises(ValueError, match=r"min_count must be an integer >= 1"):
        frequencies.c15_statistics(C15_TABLE, seed=0, min_count=min_count)


# --- round 2: C16 -----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_long_context_recipe(scale):
    recipe = frequencies.long_context_recipe(scale)
    assert recipe is text_world.LONG_CONTEXT_RECIPES[scale]
    assert recipe.corpus["context"] >= 4
    with pytest.raises(ValueError, match=r"unknown scale 'huge'"):
        frequencies.long_context_recipe("huge")


def test_c16_statistics(text_corpus, make_lm):
    model = make_lm(text_corpus.vocab_size, text_corpus.context)
    table = frequencies.context_table(
        frequencies.context_probabilities(text_corpus, model, min_count=20))
    stats = frequencies.c16_statistics(table, seed=0, context=text_corpus.context)
    assert stats["context_characters"] == 3
    assert stats["mean_tv_frequent_contexts"] == frequencies.c2_statistics(table, seed=0)[
        "mean_tv_frequent_contexts"]
    from bayes_at_scale.book import claims

    line = claims.verdict_line(claims.load_claims()["C16"], [stats] * 5)
    assert line.startswith("CLAIM C16: REFUTED")  # three characters are fewer than four


@pytest.mark.parametrize("context", [0, 2.0, None])
def test_c16_statistics_reject_a_bad_context(context):
    with pytest.raises(ValueError, match=r"context must be an integer >= 1"):
        frequencies.c16_statistics(pd.DataFrame({"tv": [0.1, 0.2]}), seed=0, context=context)


def test_reading_summary_of_an_exact_model(text_corpus):
    """A model equal to the frequencies after each whole context reaches the conditional entropy
    given that context, which is below the entropy given the last two characters."""
    run = frequencies.Replicate(0, text_corpus, char_oracle(text_corpus), pd.DataFrame())
    summary = frequencies.reading_summary(run)
    assert summary["seed"] == 0 and summary["context"] == 3
    assert summary["nll"] == pytest.approx(summary["entropy_context"], abs=1e-9)
    assert summary["entropy_context"] < summary["entropy_two"]
    pairs = CharCorpus(text_corpus.text[1:], 2)  # the same positions, two characters of context
    assert summary["entropy_two"] == pytest.approx(
        metrics.count_entropy(pairs.next_token_counts()[1].numpy()))


def test_reading_summary_needs_a_character_replicate(small_world):
    corpus, model, table = small_world
    with pytest.raises(TypeError, match=r"run.corpus must be a CharCorpus"):
        frequencies.reading_summary(frequencies.Replicate(0, corpus, model, table))
    with pytest.raises(TypeError, match=r"run must be a Replicate"):
        frequencies.reading_summary(corpus)


# --- round 2: the replicates ----------------------------------------------------------------

TINY_LONG_RECIPE = Recipe(corpus=dict(context=4, max_chars=60_000),
                          model=dict(d_model=8, n_heads=2, n_layers=1),
                          training=dict(steps=3, lr=1e-2, weight_decay=1e-5, batch_size=64))


@pytest.fixture(scope="module")
def round_two():
    """Round 2 on three seeds, reusing round 1's replicate of seed 1."""
    first = frequencies.run_fragments(TINY_FRAGMENT_RECIPE, 1)
    fragments, reading = frequencies.round_two(TINY_FRAGMENT_RECIPE, TINY_LONG_RECIPE, [0, 1, 2],
                                               reuse=[first], workers=1)
    return first, fragments, reading


def test_round_two_reuses_round_one(round_two):
    first, fragments, reading = round_two
    assert [r.seed for r in fragments] == [0, 1, 2] and [r.seed for r in reading] == [0, 1, 2]
    assert fragments[1] is first
    for run in (fragments[0], fragments[2]):  # run by the runner, as round 1 would run them
        pd.testing.assert_frame_equal(
            run.table, frequencies.run_fragments(TINY_FRAGMENT_RECIPE, run.seed).table)
    for run in reading:
        assert isinstance(run.corpus, CharCorpus) and run.corpus.context == 4
        assert (run.table["n"] >= frequencies.FREQUENT).all()
        assert (run.table["seed"] == run.seed).all()


@pytest.mark.parametrize("seeds, reuse_seed, recipe, pattern", [
    ([0, 1], 2, TINY_FRAGMENT_RECIPE, r"replicate of seed 2 is not one of the seeds"),
    ([0, 1], 1, dataclasses.replace(TINY_FRAGMENT_RECIPE,
                                    corpus={**TINY_FRAGMENT_RECIPE.corpus, "n_tokens": 2000}),
     r"replicate of seed 1 is not the fragment world of this recipe"),
    ([0, 0], 0, TINY_FRAGMENT_RECIPE, r"seeds must be distinct"),
    ([], 0, TINY_FRAGMENT_RECIPE, r"seeds must be distinct and not empty"),
])
def test_round_two_rejects_bad_reuse(round_two, seeds, reuse_seed, recipe, pattern):
    first, fragments, _ = round_two
    reused = next(r for r in fragments if r.seed == reuse_seed)
    with pytest.raises(ValueError, match=pattern):
        frequencies.round_two(recipe, TINY_LONG_RECIPE, seeds, reuse=[reused])


def test_round_two_rejects_a_character_replicate_as_reuse(round_two):
    _, _, reading = round_two
    with pytest.raises(ValueError, match=r"is not the fragment world"):
        frequencies.round_two(TINY_FRAGMENT_RECIPE, TINY_LONG_RECIPE, [0], reuse=[reading[0]])

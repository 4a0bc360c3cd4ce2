"""Tests of bayes_at_scale.worlds.facts: the world of arbitrary facts and the metrics of hallucination."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bayes_at_scale.core import checks
from bayes_at_scale.worlds import facts
from bayes_at_scale.worlds.fragments import zipf_probabilities
from bayes_at_scale.worlds.facts import FACT_RECIPES, FactWorld, make_fact_world

SMALL = dict(n_entities=60, n_name_parts=5, name_length=3, n_values=4, n_mentions=400,
             zipf_exponent=1.1, unknown_share=0.2, n_misinformation=3, misinformation_repeats=7)

SIZES = [
    dict(n_entities=1, n_name_parts=1, name_length=1, n_values=2, n_mentions=1),
    SMALL,
    dict(n_entities=300, n_name_parts=7, name_length=3, n_values=10, n_mentions=900,
         zipf_exponent=0.8, unknown_share=0.5, n_misinformation=20, misinformation_repeats=1),
    # 10^12 possible names: drawn by rejection, not by enumeration
    dict(n_entities=50, n_name_parts=1000, name_length=4, n_values=3, n_mentions=100),
]


@pytest.fixture(scope="module")
def quick_world() -> FactWorld:
    return facts.fact_world(FACT_RECIPES["quick"], seed=0)


def check_world(w: FactWorld, size: dict) -> None:
    """Every invariant a sampled world must satisfy."""
    e = w.entities
    n_entities, parts, length, n_values = (size["n_entities"], size["n_name_parts"],
                                           size["name_length"], size["n_values"])
    n_mis = size.get("n_misinformation", 0)
    repeats = size.get("misinformation_repeats", 0)
    # vocabulary: BOS, parts, values, unknown - a partition of 0..vocab_size-1
    layout = np.concatenate([[w.bos], w.part_token(np.arange(parts)), w.answer_tokens])
    assert layout.tolist() == list(range(w.vocab_size))
    assert w.vocab_size == parts + n_values + 2 and w.seq_len == length + 2
    assert w.unknown_token == w.answer_tokens[-1] == w.vocab_size - 1
    # names: distinct tuples of shared parts
    assert len(e) == n_entities and e["entity"].tolist() == list(range(n_entities))
    names = w.names
    assert names.shape == (n_entities, length)
    assert names.min() >= 0 and names.max() < parts
    assert len({tuple(r) for r in names.tolist()}) == n_entities
    # truth: a value, or the unknown token exactly for the entities whose fact is unknown
    truth = e["truth"].to_numpy()
    assert np.isin(truth, w.answer_tokens).all()
    np.testing.assert_array_equal(truth == w.unknown_token, e["is_unknown"].to_numpy())
    assert e["is_unknown"].sum() == round(size.get("unknown_share", 0.0) * n_entities)
    # popularity: a Zipf law over a ranking of the entities
    np.testing.assert_allclose(np.sort(e["popularity"].to_numpy())[::-1],
                               zipf_probabilities(n_entities, size.get("zipf_exponent", 1.1)))
    # mentions: n_mentions of the truth, plus the misinformation repeats
    assert e["count_truth"].sum() == size["n_mentions"]
    np.testing.assert_array_equal(e["n"], e["count_truth"] + e["count_wrong"])
    assert w.n_mentions == size["n_mentions"] + n_mis * repeats
    # misinformation: exactly n_mis entities with a concrete value, a wrong value repeated
    mis = e["misinformation"].to_numpy()
    assert mis.sum() == n_mis
    assert not e["is_unknown"].to_numpy()[mis].any()
    wrong = e["wrong_value"].to_numpy()
    assert (wrong[~mis] == -1).all() and (e["count_wrong"].to_numpy()[~mis] == 0).all()
    assert np.isin(wrong[mis], w.value_tokens).all()
    assert (wrong[mis] != truth[mis]).all()
    assert (e["count_wrong"].to_numpy()[mis] == repeats).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_world_invariants(size, seed):
    check_world(make_fact_world(**size, seed=seed), size)


@st.composite
def world_sizes(draw):
    length = draw(st.integers(1, 3))
    parts = draw(st.integers(2, 6))
    n_entities = draw(st.integers(1, min(parts**length, 40)))
    share = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    concrete = n_entities - round(share * n_entities)
    n_mis = draw(st.integers(0, concrete))
    return dict(n_entities=n_entities, n_name_parts=parts, name_length=length,
                n_values=draw(st.integers(2, 6)), n_mentions=draw(st.integers(1, 300)),
                zipf_exponent=draw(st.floats(0.3, 2.5)), unknown_share=share,
                n_misinformation=n_mis, misinformation_repeats=draw(st.integers(1, 5)) if n_mis
                else draw(st.integers(0, 5)))


@given(world_sizes(), st.integers(0, 2**32 - 1))
def test_world_invariants_hold_for_any_size(size, seed):
    w = make_fact_world(**size, seed=seed)
    check_world(w, size)
    prompts, counts = w.next_token_counts()
    checks.check_next_token_counts(prompts, counts, w.vocab_size)
    assert counts.sum().item() == w.n_mentions
    seen, unseen = w.seen(), w.unseen()
    assert np.union1d(seen, unseen).tolist() == list(range(w.n_entities))
    assert np.intersect1d(seen, unseen).size == 0
    assert 0 <= w.monofact_rate <= 1 and 0 <= w.missing_mass <= 1


# --- the corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_next_token_counts_reproduce_the_truth(size):
    w = make_fact_world(**size, seed=3)
    prompts, counts = w.next_token_counts()
    checks.check_next_token_counts(prompts, counts, w.vocab_size)  # train_map's format
    assert prompts.dtype == torch.long and counts.dtype == torch.int64
    seen = w.seen()
    assert prompts.shape == (seen.size, 1 + size["name_length"])
    assert counts.shape == (seen.size, w.vocab_size)
    assert torch.equal(prompts, w.prompts(seen))
    assert (counts.sum(dim=1) > 0).all()
    e = w.entities.iloc[seen]
    c = counts.numpy()
    rows = np.arange(seen.size)
    truth = e["truth"].to_numpy()
    np.testing.assert_array_equal(c[rows, truth], e["count_truth"])
    # only answers follow a question; without misinformation, only the truth
    other = np.setdiff1d(np.arange(w.vocab_size), w.answer_tokens)
    assert (c[:, other] == 0).all()
    honest = ~e["misinformation"].to_numpy()
    np.testing.assert_array_equal(c[honest].argmax(axis=1), truth[honest])
    np.testing.assert_array_equal(c[honest].sum(axis=1), c[honest, truth[honest]])
    mis = ~honest
    np.testing.assert_array_equal(c[mis, e["wrong_value"].to_numpy()[mis]],
                                  size.get("misinformation_repeats", 0))
    np.testing.assert_array_equal(c.sum(axis=1), e["n"])


def test_unknown_facts_are_written_as_unknown(quick_world):
    w = quick_world
    prompts, counts = w.next_token_counts()
    unknown = w.entities["is_unknown"].to_numpy()[w.seen()]
    assert unknown.sum() > 10
    c = counts.numpy()[unknown]
    np.testing.assert_array_equal(c[:, w.unknown_token], c.sum(axis=1))
    assert (c[:, w.value_tokens] == 0).all()
    assert (counts.numpy()[~unknown][:, w.unknown_token] == 0).all()


def test_prompts_encode_names():
    w = make_fact_world(**SMALL, seed=0)
    p = w.prompts()
    assert p.dtype == torch.long and p.shape == (w.n_entities, 1 + SMALL["name_length"])
    assert (p[:, 0] == w.bos).all()
    np.testing.assert_array_equal(p[:, 1:].numpy() - 1, w.names)
    assert len({tuple(r) for r in p.tolist()}) == w.n_entities
    idx = [7, 0, 59, 7]
    assert torch.equal(w.prompts(idx), p[idx])


def test_mention_shares_follow_popularity():
    size = dict(n_entities=20, n_name_parts=3, name_length=3, n_values=5, n_mentions=200_000,
                zipf_exponent=1.0, n_misinformation=2, misinformation_repeats=11)
    w = make_fact_world(**size, seed=4)
    e = w.entities
    q = e["popularity"].to_numpy()
    share = e["count_truth"].to_numpy() / size["n_mentions"]
    assert np.all(np.abs(share - q) <= 5 * np.sqrt(q * (1 - q) / size["n_mentions"]))
    assert stats.chisquare(e["count_truth"], q * size["n_mentions"]).pvalue > 1e-3
    assert w.n_mentions == 200_000 + 2 * 11


def test_popularity_ranking_is_random():
    a = make_fact_world(**SIZES[2], seed=0).entities["popularity"].to_numpy()
    b = make_fact_world(**SIZES[2], seed=1).entities["popularity"].to_numpy()
    assert not np.array_equal(np.argsort(a), np.argsort(b))
    # the most popular entity is not simply the first
    assert np.argmax(a) != 0 or np.argmax(b) != 0


def test_values_are_uniform_and_unrelated_to_names(quick_world):
    e = quick_world.entities[~quick_world.entities["is_unknown"]]
    values = e["truth"].to_numpy() - quick_world.value_tokens[0]
    n_values = quick_world.n_values
    assert stats.chisquare(np.bincount(values, minlength=n_values)).pvalue > 1e-3
    table = pd.crosstab(e["part_0"], values)
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_unseen_names_are_made_of_seen_parts(quick_world):
    w = quick_world
    seen, unseen = w.names[w.seen()], w.names[w.unseen()]
    assert len(unseen) > 100
    for j in range(w.name_length):
        assert set(unseen[:, j]) <= set(seen[:, j])
    # every part is shared by many names
    assert np.bincount(w.names.ravel(), minlength=w.n_name_parts).min() >= 10


def test_misinformation_is_wrong_and_repeated(quick_world):
    w = quick_world
    e = w.entities[w.entities["misinformation"]]
    recipe = FACT_RECIPES["quick"].corpus
    assert len(e) == recipe["n_misinformation"]
    assert (e["wrong_value"] != e["truth"]).all()
    assert (e["count_wrong"] == recipe["misinformation_repeats"]).all()
    assert (e["n"] == e["count_truth"] + recipe["misinformation_repeats"]).all()


# --- monofacts and missing mass ---------------------------------------------------------------


def _hand_world() -> FactWorld:
    """5 entities; tokens: BOS 0, parts 1-3, values 4-6, unknown 7."""
    frame = pd.DataFrame({
        "entity": range(5),
        "part_0": [0, 1, 2, 0, 1],
        "part_1": [1, 0, 2, 2, 1],
        "truth": [4, 7, 5, 6, 5],
        "is_unknown": [False, True, False, False, False],
        "popularity": [0.3, 0.2, 0.25, 0.1, 0.15],
        "count_truth": [1, 1, 3, 0, 0],
        "count_wrong": [0, 0, 0, 1, 0],
        "misinformation": [False, False, False, True, False],
        "wrong_value": [-1, -1, -1, 4, -1],
    })
    frame["n"] = frame["count_truth"] + frame["count_wrong"]
    return FactWorld(entities=frame, n_name_parts=3, name_length=2, n_values=3)


def test_monofact_rate_by_hand():
    w = _hand_world()
    # seen exactly once: entities 0, 1 and 3 (its one mention is misinformation); 6 mentions
    assert w.monofact_rate == pytest.approx(3 / 6)
    assert w.missing_mass == pytest.approx(0.15)
    assert w.seen().tolist() == [0, 1, 2, 3] and w.unseen().tolist() == [4]
    prompts, counts = w.next_token_counts()
    assert prompts.tolist() == [[0, 1, 2], [0, 2, 1], [0, 3, 3], [0, 1, 3]]
    expected = np.zeros((4, 8), dtype=np.int64)
    expected[[0, 1, 2, 3], [4, 7, 5, 4]] = [1, 1, 3, 1]
    np.testing.assert_array_equal(counts.numpy(), expected)
    s = w.summary()
    assert (s["seen"], s["unseen"], s["seen_once"], s["mentions"]) == (4, 1, 3, 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monofact_rate_estimates_the_missing_mass(seed):
    """Good-Turing: E[monofacts] / N = sum q (1-q)^(N-1) ~ E[missing mass] = sum q (1-q)^N."""
    size = dict(n_entities=2000, n_name_parts=16, name_length=3, n_values=8, n_mentions=3500,
                zipf_exponent=0.9)
    w = make_fact_world(**size, seed=seed)
    q, n = w.entities["popularity"].to_numpy(), size["n_mentions"]
    assert w.monofact_rate == pytest.approx((q * (1 - q) ** (n - 1)).sum(), abs=0.03)
    assert w.missing_mass == pytest.approx((q * (1 - q) ** n).sum(), abs=0.03)
    assert w.monofact_rate == pytest.approx(w.missing_mass, abs=0.04)


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_recipes_make_a_substantial_monofact_rate(scale):
    w = facts.fact_world(FACT_RECIPES[scale], seed=0)
    recipe = FACT_RECIPES[scale]
    # every option named, but round 2's shared names, which round 1's recipes leave off
    options = set(inspect.signature(make_fact_world).parameters) - {"seed", "shared_names"}
    assert set(recipe.corpus) == options
    assert 0.1 <= w.monofact_rate <= 0.4
    s = w.summary()
    assert s["unseen"] > 0.2 * s["entities"] and s["seen_once"] > 0.1 * s["entities"]
    assert s["seen_5_or_more"] > 50
    checks.check_next_token_counts(*w.next_token_counts(), w.vocab_size)


# --- seeds ----------------------------------------------------------------------------------


def test_same_seed_same_world():
    a, b = make_fact_world(**SMALL, seed=9), make_fact_world(**SMALL, seed=9)
    pd.testing.assert_frame_equal(a.entities, b.entities)
    np.testing.assert_array_equal(a.sample_queries(50, seed=1), b.sample_queries(50, seed=1))


def test_different_seed_different_world():
    a, b = make_fact_world(**SMALL, seed=9), make_fact_world(**SMALL, seed=10)
    assert not np.array_equal(a.names, b.names)
    assert not np.array_equal(a.truth, b.truth)
    assert not np.array_equal(a.entities["n"], b.entities["n"])


# --- queries --------------------------------------------------------------------------------


def test_sample_queries_follow_popularity(quick_world):
    w = quick_world
    q = w.sample_queries(50_000, seed=3)
    assert q.shape == (50_000,) and q.min() >= 0 and q.max() < w.n_entities
    share = np.bincount(q, minlength=w.n_entities) / q.size
    p = w.entities["popularity"].to_numpy()
    assert np.abs(share - p).max() <= 5 * np.sqrt(p.max() / q.size)
    # unseen entities are queried about as often as the missing mass says
    assert np.isin(q, w.unseen()).mean() == pytest.approx(w.missing_mass, abs=0.01)
    assert not np.array_equal(q[:100], w.sample_queries(100, seed=4))


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n=0, seed=0), r"n must be an integer >= 1, got 0"),
    (dict(n=2.5, seed=0), r"n must be an integer >= 1"),
    (dict(n=5, seed=-1), r"seed must be an integer >= 0, got -1"),
])
def test_sample_queries_bad_input(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_fact_world(**SMALL, seed=0).sample_queries(**kwargs)


# --- bad parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(n_entities=0), ValueError, r"n_entities must be an integer >= 1, got 0"),
    (dict(n_entities=2.5), ValueError, r"n_entities must be an integer >= 1"),
    (dict(n_name_parts=0), ValueError, r"n_name_parts must be an integer >= 1"),
    (dict(name_length=0), ValueError, r"name_length must be an integer >= 1"),
    (dict(name_length=True), ValueError, r"name_length must be an integer >= 1, got True"),
    (dict(n_values=1), ValueError, r"n_values must be an integer >= 2, got 1"),
    (dict(n_mentions=0), ValueError, r"n_mentions must be an integer >= 1, got 0"),
    (dict(n_mentions=-10), ValueError, r"n_mentions must be an integer >= 1"),
    (dict(zipf_exponent=0), ValueError, r"zipf_exponent must be a positive finite number"),
    (dict(zipf_exponent=float("nan")), ValueError, r"zipf_exponent must be a positive finite"),
    (dict(zipf_exponent="1"), TypeError, r"zipf_exponent must be a number"),
    (dict(unknown_share=1.0), ValueError, r"unknown_share must lie in \[0, 1\), got 1.0"),
    (dict(unknown_share=-0.1), ValueError, r"unknown_share must lie in \[0, 1\)"),
    (dict(unknown_share=float("nan")), ValueError, r"unknown_share must lie in \[0, 1\)"),
    (dict(unknown_share="0.1"), TypeError, r"unknown_share must be a number"),
    (dict(n_misinformation=-1), ValueError, r"n_misinformation must be an integer >= 0"),
    (dict(n_misinformation=49), ValueError,
     r"n_misinformation \(49\) exceeds the 48 entities with a concrete value"),
    (dict(misinformation_repeats=0), ValueError,
     r"misinformation_repeats must be >= 1 when n_misinformation > 0, got 0"),
    (dict(misinformation_repeats=-2), ValueError, r"misinformation_repeats must be an integer"),
    (dict(n_entities=126), ValueError,
     r"n_entities \(126\) exceeds the n_name_parts \*\* name_length = 5\*\*3 = 125"),
    (dict(shared_names=1), TypeError, r"shared_names must be a bool, got int"),
    (dict(seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    (dict(seed=None), ValueError, r"seed must be an integer >= 0, got None"),
])
def test_make_fact_world_bad_input(kwargs, error, pattern):
    args = SMALL | dict(seed=0) | kwargs
    with pytest.raises(error, match=pattern):
        make_fact_world(**args)


def test_no_misinformation_needs_no_repeats():
    w = make_fact_world(**(SMALL | dict(n_misinformation=0, misinformation_repeats=0)), seed=0)
    assert not w.entities["misinformation"].any()
    assert w.n_mentions == SMALL["n_mentions"]


def test_fact_world_checks_its_frame():
    frame = _hand_world().entities.drop(columns=["count_wrong"])
    with pytest.raises(ValueError, match=r"entities lacks the columns \['count_wrong'\]"):
        FactWorld(entities=frame, n_name_parts=3, name_length=2, n_values=3)
    with pytest.raises(ValueError, match=r"entities lacks the columns \['part_2'\]"):
        FactWorld(entities=_hand_world().entities, n_name_parts=3, name_length=3, n_values=3)
    with pytest.raises(TypeError, match=r"entities must be a DataFrame"):
        FactWorld(entities={}, n_name_parts=3, name_length=2, n_values=3)


# --- metrics --------------------------------------------------------------------------------

# entity:   0  0  1  1  2  3  4  0
# truth:    4  4  7  7  5  6  5  4      (7 = unknown; entity 3's misinformation says 4)
ENTITIES = [0, 0, 1, 1, 2, 3, 4, 0]
ANSWERS = [4, 7, 7, 4, 6, 4, 7, 2]  # the last is a name part, no answer at all
OUTCOMES = ["right", "unknown", "right", "wrong", "wrong", "wrong", "unknown", "wrong"]


def test_answer_outcome_by_hand():
    out = facts.answer_outcome(ANSWERS, _hand_world(), ENTITIES)
    assert out.tolist() == OUTCOMES
    assert facts.answer_outcome(torch.tensor(ANSWERS), _hand_world(),
                                torch.tensor(ENTITIES)).tolist() == OUTCOMES


def test_hallucination_rate_by_hand():
    # false values: 4 for an unknown fact, 6 for 5, the misinformation 4 for 6; not 7, not 2
    assert facts.hallucination_rate(ANSWERS, _hand_world(), ENTITIES) == pytest.approx(3 / 8)
    w = _hand_world()
    assert facts.hallucination_rate([7] * 8, w, ENTITIES) == 0.0
    assert facts.hallucination_rate(w.truth[ENTITIES], w, ENTITIES) == 0.0


@pytest.mark.parametrize("threshold, expected", [
    (0.75, (2 - 4 * 3) / 8), (0.5, (2 - 4) / 8), (0.0, 2 / 8), (0.9, (2 - 4 * 9) / 8)])
def test_graded_score_by_hand(threshold, expected):
    assert facts.graded_score(OUTCOMES, threshold) == pytest.approx(expected)


def test_graded_score_single_outcomes():
    assert facts.graded_score(["wrong"]) == pytest.approx(-3.0)
    assert facts.graded_score(["right"]) == 1.0
    assert facts.graded_score(["unknown"]) == 0.0
    assert facts.graded_score(np.array(["right", "wrong"]), 0.5) == pytest.approx(0.0)


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 4)), min_size=1, max_size=30),
       st.floats(0, 0.99))
def test_metrics_agree(pairs, t):
    w = _hand_world()
    answers, entities = map(np.array, zip(*pairs))
    out = facts.answer_outcome(answers, w, entities)
    truth = w.truth[entities]
    np.testing.assert_array_equal(out == "right", answers == truth)
    # the unknown token is never a hallucination
    assert (out[answers == w.unknown_token] != "wrong").all()
    halluc = facts.hallucination_rate(answers, w, entities)
    assert halluc == pytest.approx(np.mean((out == "wrong") & np.isin(answers, w.value_tokens)))
    assert halluc <= np.mean(out == "wrong")
    score = facts.graded_score(out, t)
    right, wrong = np.mean(out == "right"), np.mean(out == "wrong")
    assert score == pytest.approx(right - wrong * t / (1 - t))
    assert -t / (1 - t) - 1e-12 <= score <= 1 + 1e-12
    # abstaining everywhere scores no worse than 0 and hallucinates never
    abstain = np.full_like(answers, w.unknown_token)
    assert facts.hallucination_rate(abstain, w, entities) == 0.0
    assert facts.graded_score(facts.answer_outcome(abstain, w, entities), t) >= 0


def _probs(rows: list[dict[int, float]]) -> np.ndarray:
    p = np.zeros((len(rows), 8))
    for i, row in enumerate(rows):
        for token, mass in row.items():
            p[i, token] = mass
    return p


PROBS = _probs([
    {5: 0.9, 4: 0.1},            # confident: answers 5
    {5: 0.6, 6: 0.4},            # unsure: abstains
    {1: 0.5, 5: 0.4, 6: 0.1},    # renormalised over answers, 5 has 0.8
    {7: 0.8, 4: 0.2},            # most probable answer is "unknown"
    {0: 1.0},                    # no mass on any answer: abstains
    {4: 0.75, 5: 0.25},          # exactly at the threshold: abstains
])


@pytest.mark.parametrize("threshold, expected", [
    (0.75, [5, 7, 5, 7, 7, 7]),
    (0.85, [5, 7, 7, 7, 7, 7]),
    (0.5, [5, 5, 5, 7, 7, 4]),
    (0.0, [5, 5, 5, 7, 7, 4]),
    (1.0, [7, 7, 7, 7, 7, 7]),
])
def test_confident_answers_by_hand(threshold, expected):
    out = facts.confident_answers(PROBS, _hand_world(), threshold)
    assert out.tolist() == expected
    from_torch = facts.confident_answers(torch.tensor(PROBS), _hand_world(), threshold)
    assert from_torch.tolist() == expected


@given(st.lists(st.lists(st.floats(0, 1), min_size=8, max_size=8).filter(lambda r: sum(r) > 0),
                min_size=1, max_size=20),
       st.floats(0, 1), st.floats(0, 1))
def test_confident_answers_abstain_below_threshold(rows, t1, t2):
    w = _hand_world()
    p = np.array(rows) / np.array(rows).sum(axis=1, keepdims=True)
    low, high = sorted((t1, t2))
    a_low, a_high = (facts.confident_answers(p, w, t) for t in (low, high))
    assert np.isin(a_low, w.answer_tokens).all()
    answer = p[:, w.answer_tokens]
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = answer.max(axis=1) / answer.sum(axis=1)
    answered = a_high != w.unknown_token
    assert (conf[answered] > high).all()
    # a value is only ever the answer token with the most mass
    np.testing.assert_array_equal(a_high[answered],
                                  w.answer_tokens[answer[answered].argmax(axis=1)])
    # a higher threshold only turns answers into abstentions
    assert (a_low[answered] == a_high[answered]).all()
    assert answered.sum() <= (a_low != w.unknown_token).sum()


@pytest.mark.parametrize("call, error, pattern", [
    (lambda w: facts.answer_outcome([4, 5], w, [0]), ValueError,
     r"answers and entities must have the same shape"),
    (lambda w: facts.answer_outcome([8], w, [0]), ValueError, r"answers must lie in 0..7"),
    (lambda w: facts.answer_outcome([-1], w, [0]), ValueError, r"answers must lie in 0..7"),
    (lambda w: facts.answer_outcome([4], w, [5]), ValueError, r"entities must lie in 0..4"),
    (lambda w: facts.answer_outcome([4.0], w, [0]), TypeError, r"answers must hold integer ids"),
    (lambda w: facts.answer_outcome([], w, []), ValueError, r"answers is empty"),
    (lambda w: facts.answer_outcome([[4]], w, [[0]]), ValueError,
     r"answers must be one-dimensional"),
    (lambda w: facts.hallucination_rate([4], "world", [0]), TypeError,
     r"world must be a FactWorld"),
    (lambda w: facts.graded_score(["right", "maybe"]), ValueError,
     r"outcomes must be one of .*'maybe'"),
    (lambda w: facts.graded_score([]), ValueError, r"outcomes is empty"),
    (lambda w: facts.graded_score(["right"], 1.0), ValueError,
     r"threshold must lie in \[0, 1\), got 1.0"),
    (lambda w: facts.graded_score(["right"], -0.1), ValueError, r"threshold must lie in \[0, 1\)"),
    (lambda w: facts.graded_score(["right"], "0.5"), TypeError, r"threshold must be a number"),
    (lambda w: facts.confident_answers(PROBS * 2, w, 0.5), ValueError,
     r"probs rows must sum to 1"),
    (lambda w: facts.confident_answers(PROBS[:, :7] / PROBS[:, :7].sum(1, keepdims=True), w, 0.5),
     ValueError, r"probs must have shape \(n, 8\)"),
    (lambda w: facts.confident_answers(PROBS, w, 1.5), ValueError,
     r"threshold must lie in \[0, 1\], got 1.5"),
    (lambda w: facts.confident_answers(np.full((1, 8), np.nan), w, 0.5), ValueError,
     r"probs contains NaN"),
])
def test_metrics_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(_hand_world())


# --- round 2: true-fact monofacts, per-query grades, the round-2 recipes ----------------------


def test_true_fact_monofact_rate_by_hand():
    w = _hand_world()
    # true-fact mentions: 1 + 1 + 3 = 5; written once: entities 0 and 1.  Entity 3's one mention
    # is misinformation: a monofact of the corpus, not of its true facts
    assert w.true_fact_monofact_rate == pytest.approx(2 / 5)
    assert w.monofact_rate == pytest.approx(3 / 6)


def test_true_fact_monofact_rate_ignores_misinformation_mentions():
    """A misinformation entity whose truth was written once is a true-fact monofact however
    often its wrong value was repeated; the repeats enter neither count."""
    frame = _hand_world().entities.assign(count_wrong=[0, 0, 0, 30, 0],
                                          count_truth=[1, 1, 3, 1, 0])
    frame["n"] = frame["count_truth"] + frame["count_wrong"]
    w = FactWorld(entities=frame, n_name_parts=3, name_length=2, n_values=3)
    assert w.true_fact_monofact_rate == pytest.approx(3 / 6)
    assert w.monofact_rate == pytest.approx(2 / 36)


@pytest.mark.parametrize("repeats", [1, 7, 300])
def test_true_fact_monofact_rate_does_not_depend_on_the_repeats(repeats):
    base = make_fact_world(**SMALL, seed=4)
    w = make_fact_world(**dict(SMALL, misinformation_repeats=repeats), seed=4)
    np.testing.assert_array_equal(w.entities["count_truth"], base.entities["count_truth"])
    assert w.true_fact_monofact_rate == base.true_fact_monofact_rate
    truth = w.entities["count_truth"].to_numpy()
    assert w.true_fact_monofact_rate == pytest.approx((truth == 1).sum() / truth.sum())


def test_true_fact_monofact_rate_of_an_unwritten_corpus_is_nan():
    frame = _hand_world().entities.assign(count_truth=0, count_wrong=[0, 0, 0, 2, 0])
    frame["n"] = frame["count_truth"] + frame["count_wrong"]
    w = FactWorld(entities=frame, n_name_parts=3, name_length=2, n_values=3)
    assert np.isnan(w.true_fact_monofact_rate)


def test_true_fact_monofact_rate_estimates_the_missing_mass():
    """Without misinformation the two monofact rates agree; with it, only the true-fact one
    still tracks the missing mass (Good-Turing on the true facts)."""
    w = facts.fact_world(facts.ROUND2_FACT_RECIPES["quick"], seed=0)
    assert w.true_fact_monofact_rate == pytest.approx(w.missing_mass, abs=0.03)
    assert w.monofact_rate < w.true_fact_monofact_rate - 0.02
    clean = make_fact_world(**SMALL | dict(n_misinformation=0, misinformation_repeats=0),
                            seed=1)
    assert clean.true_fact_monofact_rate == clean.monofact_rate


def test_outcome_grades_by_hand():
    np.testing.assert_allclose(facts.outcome_grades(OUTCOMES),
                               [1, 0, 1, -3, -3, -3, 0, -3])
    np.testing.assert_allclose(facts.outcome_grades(["right", "wrong", "unknown"], 0.5),
                               [1, -1, 0])
    for t in (0.0, 0.5, 0.75, 0.9):
        assert facts.outcome_grades(OUTCOMES, t).mean() == pytest.approx(
            facts.graded_score(OUTCOMES, t))


@pytest.mark.parametrize("outcomes, threshold, error, pattern", [
    ([], 0.75, ValueError, r"outcomes is empty"),
    ([["right"]], 0.75, ValueError, r"outcomes must be one-dimensional"),
    (["right", "maybe"], 0.75, ValueError, r"outcomes must be one of .*'maybe'"),
    (["right"], 1.0, ValueError, r"threshold must lie in \[0, 1\)"),
    (["right"], None, TypeError, r"threshold must be a number"),
])
def test_outcome_grades_bad_input(outcomes, threshold, error, pattern):
    with pytest.raises(error, match=pattern):
        facts.outcome_grades(outcomes, threshold)


def test_round2_recipes():
    r1, r2 = FACT_RECIPES, facts.ROUND2_FACT_RECIPES
    assert set(r2) == set(r1)
    # round 1's recipes are what they were
    assert r1["quick"].corpus["n_misinformation"] == 8 and r1["quick"].training["steps"] == 600
    assert r1["full"].corpus["n_misinformation"] == 32
    for scale in r2:
        assert set(r2[scale].corpus) == set(r1[scale].corpus)
        assert r2[scale].corpus["n_misinformation"] >= 20
        assert r2[scale].model == r1[scale].model


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_round2_quick_world(seed):
    w = facts.fact_world(facts.ROUND2_FACT_RECIPES["quick"], seed=seed)
    e = w.entities
    # at least 20 misinformation entities, every one of them seen in training
    assert e["misinformation"].sum() >= 20 and (e.loc[e["misinformation"], "n"] > 0).all()
    assert 0.1 <= w.true_fact_monofact_rate <= 0.3
    checks.check_next_token_counts(*w.next_token_counts(), w.vocab_size)


# --- round 2: shared names (claim C28) ------------------------------------------------------

SHARED = SMALL | dict(n_entities=200, n_name_parts=3, name_length=2, n_mentions=2000,
                      shared_names=True)


def test_shared_names_repeat_and_may_outnumber_the_name_space():
    w = make_fact_world(**SHARED, seed=0)
    assert w.n_entities == 200 > 3**2
    assert w.n_names == len({tuple(n) for n in w.names.tolist()}) <= 9
    assert w.names.min() >= 0 and w.names.max() < 3
    # distinct-name worlds are as they were: one name per entity
    distinct = make_fact_world(**SMALL, seed=0)
    assert distinct.n_names == distinct.n_entities
    pd.testing.assert_frame_equal(distinct.entities,
                                  make_fact_world(**SMALL, shared_names=False, seed=0).entities)


@pytest.mark.parametrize("seed", [0, 1])
def test_next_token_counts_merge_shared_names(seed):
    w = make_fact_world(**SHARED, seed=seed)
    prompts, counts = w.next_token_counts()
    checks.check_next_token_counts(prompts, counts, w.vocab_size)
    seen = w.seen()
    names = [tuple(n) for n in w.names[seen].tolist()]
    # one row per distinct name that was mentioned, in the order of first mention
    expected_order = list(dict.fromkeys(names))
    assert [tuple(p) for p in (prompts[:, 1:] - 1).tolist()] == expected_order
    assert counts.sum().item() == w.n_mentions
    # each row is the sum of its entities' answers: truth counts plus misinformation
    e = w.entities.iloc[seen]
    for row, name in enumerate(expected_order):
        mine = e[[n == name for n in names]]
        answers = np.zeros(w.vocab_size, dtype=np.int64)
        np.add.at(answers, mine["truth"].to_numpy(), mine["count_truth"].to_numpy())
        mis = mine[mine["misinformation"]]
        np.add.at(answers, mis["wrong_value"].to_numpy(), mis["count_wrong"].to_numpy())
        np.testing.assert_array_equal(counts[row].numpy(), answers)


def test_ambiguous_recipes():
    for scale, recipe in facts.AMBIGUOUS_FACT_RECIPES.items():
        corpus = recipe.corpus
        assert corpus["shared_names"] and corpus.get("n_misinformation", 0) == 0
        assert corpus["n_entities"] > corpus["n_name_parts"] ** corpus["name_length"]
        assert recipe.model == FACT_RECIPES[scale].model
        assert "shared_names" not in FACT_RECIPES[scale].corpus   # round 1 as it was


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ambiguous_quick_world_mentions_every_name_often(seed):
    w = facts.fact_world(facts.AMBIGUOUS_FACT_RECIPES["quick"], seed=seed)
    prompts, counts = w.next_token_counts()
    assert w.n_names == 64 and len(prompts) == 64        # every question has been read
    assert counts.sum(dim=1).min().item() >= 500         # and many times over
    assert w.entities["is_unknown"].sum() == 200

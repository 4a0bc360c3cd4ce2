"""Tests of bayes_at_scale.worlds.fragments: the Zipf law, fragment corpora, their recipes and count buckets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bayes_at_scale.worlds import fragments as corpora
from bayes_at_scale.core import metrics
from bayes_at_scale.worlds.fragments import (ANSWERS, FRAGMENT_RECIPES, FragmentCorpus,
                                             make_fragment_corpus)

# --- zipf_probabilities -------------------------------------------------------------------


@pytest.mark.parametrize("n_items", [1, 2, 10, 1000])
@pytest.mark.parametrize("exponent", [0.5, 1.0, 1.2, 2.0])
def test_zipf_sums_to_one_and_decreases(n_items, exponent):
    q = corpora.zipf_probabilities(n_items, exponent)
    assert q.shape == (n_items,)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    assert (q > 0).all()
    assert (np.diff(q) < 0).all()


@pytest.mark.parametrize("exponent", [0.7, 1.1, 2.5])
def test_zipf_follows_power_law(exponent):
    q = corpora.zipf_probabilities(50, exponent)
    ranks = np.arange(1, 51)
    np.testing.assert_allclose(q[0] / q, ranks**exponent, rtol=1e-10)
    assert metrics.loglog_slope(ranks, q) == pytest.approx(-exponent, abs=1e-10)


@pytest.mark.parametrize("n_items, pattern", [
    (0, r"n_items must be an integer >= 1, got 0"),
    (-3, r"n_items must be an integer >= 1, got -3"),
    (2.5, r"n_items must be an integer >= 1, got 2.5"),
    (True, r"n_items must be an integer >= 1, got True"),
    ("10", r"n_items must be an integer >= 1, got '10'"),
])
def test_zipf_bad_n_items(n_items, pattern):
    with pytest.raises(ValueError, match=pattern):
        corpora.zipf_probabilities(n_items, 1.0)


@pytest.mark.parametrize("exponent, error, pattern", [
    (0, ValueError, r"exponent must be a positive finite number, got 0"),
    (-1.0, ValueError, r"exponent must be a positive finite number, got -1.0"),
    (float("nan"), ValueError, r"exponent must be a positive finite number, got nan"),
    (float("inf"), ValueError, r"exponent must be a positive finite number, got inf"),
    ("1.0", TypeError, r"exponent must be a number, got str"),
    (True, TypeError, r"exponent must be a number, got bool"),
])
def test_zipf_bad_exponent(exponent, error, pattern):
    with pytest.raises(error, match=pattern):
        corpora.zipf_probabilities(10, exponent)


def test_zipf_accepts_numpy_integers():
    np.testing.assert_array_equal(corpora.zipf_probabilities(np.int64(5), 1.0),
                                  corpora.zipf_probabilities(5, 1.0))


# --- make_fragment_corpus -----------------------------------------------------------------

SIZES = [
    dict(n_families=1, n_subjects=1, n_tokens=1),
    dict(n_families=2, n_subjects=3, n_tokens=50),
    dict(n_families=3, n_subjects=8, n_tokens=12_000, zipf_exponent=1.3),
    dict(n_families=5, n_subjects=20, n_tokens=3_000, family_concentration=0.3,
         fragment_concentration=5.0),
]


@pytest.fixture(scope="module")
def quick_corpus() -> FragmentCorpus:
    return make_fragment_corpus(**FRAGMENT_RECIPES["quick"].corpus, seed=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_fragment_counts_are_consistent(size, seed):
    c = make_fragment_corpus(**size, seed=seed)
    n = c.fragments["n"].to_numpy()
    assert len(c.fragments) == size["n_families"] * size["n_subjects"]
    assert n.sum() == size["n_tokens"]
    assert (n >= 0).all()
    np.testing.assert_array_equal(c.answer_counts.sum(axis=1), n)
    assert (c.answer_counts >= 0).all()
    np.testing.assert_allclose(c.p_true.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(c.p_family.sum(axis=1), 1.0, atol=1e-12)
    assert c.p_true.shape == (len(c.fragments), len(ANSWERS))
    assert c.p_family.shape == (size["n_families"], len(ANSWERS))
    # every (family, subject) pair appears exactly once
    assert not c.fragments.duplicated(["family", "subject"]).any()


def test_quick_recipe_is_zipfian(quick_corpus):
    """Chapter 1's quick corpus: a head seen >= 10^4 times, a long tail seen once."""
    n = quick_corpus.fragments["n"].to_numpy()
    assert n.max() >= 10_000
    assert (n == 1).sum() > 0
    assert (n >= 1000).sum() >= 2  # claim C1 needs frequent fragments
    ranked = np.sort(n)[::-1][:100]
    exponent = FRAGMENT_RECIPES["quick"].corpus["zipf_exponent"]
    assert metrics.loglog_slope(np.arange(1, 101), ranked) == pytest.approx(-exponent, abs=0.15)


def test_frequent_fragments_match_their_truth(quick_corpus):
    n = quick_corpus.fragments["n"].to_numpy()
    frequent = n >= 1000
    tv = metrics.tv_distance(quick_corpus.empirical[frequent], quick_corpus.p_true[frequent])
    assert tv.max() < 0.06


def test_fragments_resemble_their_own_family(quick_corpus):
    fam = quick_corpus.fragments["family"].to_numpy()
    p_fam = quick_corpus.p_family
    own = metrics.tv_distance(quick_corpus.p_true, p_fam[fam]).mean()
    other = metrics.tv_distance(quick_corpus.p_true, p_fam[(fam + 1) % len(p_fam)]).mean()
    assert own < 0.5 * other


def test_same_seed_same_corpus():
    a = make_fragment_corpus(**SIZES[2], seed=11)
    b = make_fragment_corpus(**SIZES[2], seed=11)
    pd.testing.assert_frame_equal(a.fragments, b.fragments)
    np.testing.assert_array_equal(a.p_true, b.p_true)
    np.testing.assert_array_equal(a.p_family, b.p_family)


def test_different_seed_different_corpus():
    a = make_fragment_corpus(**SIZES[2], seed=11)
    b = make_fragment_corpus(**SIZES[2], seed=12)
    assert not np.array_equal(a.fragments["n"].to_numpy(), b.fragments["n"].to_numpy())
    assert not np.array_equal(a.p_true, b.p_true)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(n_tokens=0), ValueError, r"n_tokens must be an integer >= 1, got 0"),
    (dict(n_tokens=-5), ValueError, r"n_tokens must be an integer >= 1"),
    (dict(n_tokens=10.5), ValueError, r"n_tokens must be an integer >= 1, got 10.5"),
    (dict(n_families=0), ValueError, r"n_families must be an integer >= 1"),
    (dict(n_families=-1), ValueError, r"n_families must be an integer >= 1"),
    (dict(n_subjects=2.5), ValueError, r"n_subjects must be an integer >= 1"),
    (dict(n_subjects=True), ValueError, r"n_subjects must be an integer >= 1"),
    (dict(seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    (dict(seed=1.5), ValueError, r"seed must be an integer >= 0, got 1.5"),
    (dict(seed=None), ValueError, r"seed must be an integer >= 0, got None"),
    (dict(zipf_exponent=0), ValueError, r"exponent must be a positive finite number"),
    (dict(zipf_exponent=-1.1), ValueError, r"exponent must be a positive finite number"),
    (dict(family_concentration=0.0), ValueError, r"family_concentration must be a positive"),
    (dict(fragment_concentration=float("nan")), ValueError,
     r"fragment_concentration must be a positive finite number, got nan"),
    (dict(fragment_concentration="20"), TypeError, r"fragment_concentration must be a number"),
])
def test_make_fragment_corpus_bad_input(kwargs, error, pattern):
    args = dict(n_families=2, n_subjects=3, n_tokens=100, seed=0) | kwargs
    with pytest.raises(error, match=pattern):
        make_fragment_corpus(**args)


# --- vocabulary and views -----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES[1:])
def test_vocabulary_layout_is_a_partition(size):
    c = make_fragment_corpus(**size, seed=0)
    subjects = c.subject_token(np.arange(c.n_subjects))
    families = c.family_token(np.arange(c.n_families))
    groups = [np.array([c.bos]), subjects, families, c.answer_tokens]
    everything = np.concatenate(groups)
    assert sorted(everything.tolist()) == list(range(c.vocab_size))
    assert c.vocab_size == 1 + size["n_subjects"] + size["n_families"] + len(ANSWERS)
    assert c.seq_len == 4


def test_prompts_encode_fragments(small_corpus):
    c = small_corpus
    prompts = c.prompts()
    assert prompts.dtype == torch.long
    assert prompts.shape == (len(c.fragments), 3)
    assert (prompts[:, 0] == c.bos).all()
    np.testing.assert_array_equal(prompts[:, 1].numpy() - 1, c.fragments["subject"])
    np.testing.assert_array_equal(prompts[:, 2].numpy() - 1 - c.n_subjects, c.fragments["family"])
    assert len({tuple(p) for p in prompts.tolist()}) == len(c.fragments)
    idx = [5, 0, 117]
    assert torch.equal(c.prompts(idx), prompts[idx])


@pytest.mark.parametrize("size", SIZES)
def test_next_token_counts_are_the_corpus(size):
    c = make_fragment_corpus(**size, seed=2)
    prompts, counts = c.next_token_counts()
    seen = np.flatnonzero(c.fragments["n"].to_numpy() > 0)
    assert counts.sum().item() == size["n_tokens"]
    assert prompts.shape == (seen.size, 3) and counts.shape == (seen.size, c.vocab_size)
    assert (counts.sum(dim=1) > 0).all()
    assert int(prompts.min()) >= 0 and int(prompts.max()) < c.vocab_size
    # only answer tokens ever complete a prompt, with the recorded counts
    other = np.setdiff1d(np.arange(c.vocab_size), c.answer_tokens)
    assert (counts[:, other] == 0).all()
    np.testing.assert_array_equal(counts[:, c.answer_tokens].numpy(), c.answer_counts[seen])
    assert torch.equal(prompts, c.prompts(seen))


def test_empirical_frequencies(small_corpus):
    c = small_corpus
    n = c.fragments["n"].to_numpy()
    emp = c.empirical
    assert (n == 0).any(), "fixture should contain unseen fragments"
    assert np.isnan(emp[n == 0]).all()
    np.testing.assert_allclose(emp[n > 0].sum(axis=1), 1.0)
    np.testing.assert_allclose(emp[n > 0], c.answer_counts[n > 0] / n[n > 0, None])


def _hand_corpus(rows, n_subjects):
    frame = pd.DataFrame(rows, columns=["family", "subject", *[f"count_{a}" for a in ANSWERS]])
    frame.insert(2, "n", frame[[f"count_{a}" for a in ANSWERS]].sum(axis=1))
    n_families = frame["family"].max() + 1
    p = np.full((len(frame), 3), 1 / 3)
    return FragmentCorpus(fragments=frame, p_true=p, p_family=np.full((n_families, 3), 1 / 3),
                          n_subjects=n_subjects)


def test_family_pooled_leaves_the_fragment_out():
    c = _hand_corpus([
        (0, 0, 3, 1, 0),
        (0, 1, 1, 1, 2),
        (0, 2, 0, 0, 4),
        (1, 0, 5, 0, 0),
        (1, 1, 0, 5, 0),
        (1, 2, 0, 0, 0),  # never seen
    ], n_subjects=3)
    expected = np.array([
        [1, 1, 6],   # (1,1,2) + (0,0,4)
        [3, 1, 4],   # (3,1,0) + (0,0,4)
        [4, 2, 2],   # (3,1,0) + (1,1,2)
        [0, 5, 0],
        [5, 0, 0],
        [5, 5, 0],
    ], dtype=float)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(c.family_pooled, expected)


def test_family_pooled_ignores_the_fragments_own_answers(small_corpus):
    c = small_corpus
    frame = c.fragments.copy()
    i = int(np.argmax(frame["n"].to_numpy()))
    frame.loc[i, [f"count_{a}" for a in ANSWERS]] = [500, 0, 0]
    frame.loc[i, "n"] = 500
    changed = FragmentCorpus(fragments=frame, p_true=c.p_true, p_family=c.p_family,
                             n_subjects=c.n_subjects)
    np.testing.assert_allclose(changed.family_pooled[i], c.family_pooled[i])
    same_family = np.flatnonzero((frame["family"] == frame.loc[i, "family"]).to_numpy())
    others = same_family[same_family != i]
    assert not np.allclose(changed.family_pooled[others], c.family_pooled[others])
    np.testing.assert_allclose(c.family_pooled.sum(axis=1), 1.0)


# --- count buckets ------------------------------------------------------------------------


@pytest.mark.parametrize("n, bucket", [
    (1, "1"), (2, "2-3"), (3, "2-3"), (4, "4-30"), (30, "4-30"), (31, "31-1000"),
    (1000, "31-1000"), (1001, ">1000"), (10**6, ">1000"),
])
def test_count_bucket_edges(n, bucket):
    assert list(corpora.count_bucket([n]).astype(str)) == [bucket]


def test_count_buckets_are_ordered_and_cover_the_counts():
    labels = [label for _, _, label in corpora.COUNT_BUCKETS]
    out = corpora.count_bucket(np.arange(1, 3000))
    assert list(out.categories) == labels
    assert out.ordered
    assert not pd.isna(out).any()
    counts = pd.Series(out).value_counts().reindex(labels).tolist()
    assert counts == [1, 2, 27, 970, 1999]


@pytest.mark.parametrize("n, error, pattern", [
    ([0, 5], ValueError, r"count buckets are defined for counts >= 1"),
    ([], ValueError, r"n is empty"),
    ([-1], ValueError, r"n contains negative values"),
    ([2.5], ValueError, r"n must hold whole numbers"),
    ([np.nan], ValueError, r"n contains NaN"),
])
def test_count_bucket_rejects(n, error, pattern):
    with pytest.raises(error, match=pattern):
        corpora.count_bucket(n)


# --- round 2: the rare-token world (unique subjects) --------------------------------------

ROUND_ONE_SMALL = dict(n_families=2, n_subjects=3, n_tokens=50)


def test_round_one_corpus_is_unchanged():
    """unique_subjects=False (the default) draws the round-1 corpus as before round 2: this
    table was produced by make_fragment_corpus before the option existed (commit f2ec0ec)."""
    expected = pd.DataFrame({
        "family": [0, 0, 0, 1, 1, 1], "subject": [0, 1, 2, 0, 1, 2],
        "popularity": [0.13027946104784444, 0.4362237767284397, 0.060777517638636626,
                       0.09493871363852645, 0.07427494325634276, 0.20350558769021018],
        "n": [9, 26, 1, 2, 3, 9], "count_yes": [4, 5, 0, 0, 0, 0],
        "count_no": [5, 21, 1, 0, 0, 1], "count_other": [0, 0, 0, 2, 3, 8]})
    for c in (make_fragment_corpus(**ROUND_ONE_SMALL, seed=0),
              make_fragment_corpus(**ROUND_ONE_SMALL, unique_subjects=False, seed=0)):
        pd.testing.assert_frame_equal(c.fragments, expected, check_dtype=False)
        np.testing.assert_allclose(c.p_family, [[0.395462, 0.593018, 0.01152],
                                                [0.00104, 0.252156, 0.746805]], atol=1e-6)
        assert c.n_subjects == 3 and c.vocab_size == 1 + 3 + 2 + 3


@pytest.mark.parametrize("size", SIZES)
def test_unique_subjects_false_is_the_default(size):
    a = make_fragment_corpus(**size, seed=4)
    b = make_fragment_corpus(**size, unique_subjects=False, seed=4)
    pd.testing.assert_frame_equal(a.fragments, b.fragments)
    np.testing.assert_array_equal(a.p_true, b.p_true)
    assert a.n_subjects == b.n_subjects == size["n_subjects"]


@pytest.mark.parametrize("size", SIZES)
def test_unique_subjects_gives_every_fragment_its_own_token(size):
    """Each subject token occurs in exactly one fragment; families, counts and the truth are
    those of the shared-subject corpus of the same seed: only the subjects are renamed."""
    c = make_fragment_corpus(**size, unique_subjects=True, seed=4)
    shared = make_fragment_corpus(**size, seed=4)
    n_fragments = size["n_families"] * size["n_subjects"]
    assert c.n_subjects == n_fragments
    assert c.vocab_size == 1 + n_fragments + size["n_families"] + len(ANSWERS)
    subjects = c.prompts()[:, 1].numpy()
    assert np.unique(subjects).size == len(subjects) == n_fragments
    np.testing.assert_array_equal(np.sort(subjects), c.subject_token(np.arange(n_fragments)))
    for column in ("family", "popularity", "n", *[f"count_{a}" for a in ANSWERS]):
        np.testing.assert_array_equal(c.fragments[column], shared.fragments[column])
    np.testing.assert_array_equal(c.p_true, shared.p_true)
    np.testing.assert_array_equal(c.p_family, shared.p_family)
    # the vocabulary is still a partition, and only answers complete a prompt
    groups = [np.array([c.bos]), c.subject_token(np.arange(c.n_subjects)),
              c.family_token(np.arange(c.n_families)), c.answer_tokens]
    assert sorted(np.concatenate(groups).tolist()) == list(range(c.vocab_size))
    prompts, counts = c.next_token_counts()
    assert counts.shape[1] == c.vocab_size and int(counts.sum()) == size["n_tokens"]
    other = np.setdiff1d(np.arange(c.vocab_size), c.answer_tokens)
    assert (counts[:, other] == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_rare_token_quick_recipe_has_rare_and_frequent_fragments(seed):
    """Claim C17's world at the quick scale, for the five seeds of the verdict: at least 20
    fragments seen >= 300 times and at least 20 seen 1 to 3 times, every subject token in
    exactly one fragment, and every fragment's family frequency defined."""
    options = corpora.RARE_TOKEN_RECIPES["quick"].corpus
    c = make_fragment_corpus(**options, seed=seed)
    n = c.fragments["n"].to_numpy()
    assert (n >= 300).sum() >= 20
    assert ((n >= 1) & (n <= 3)).sum() >= 20
    assert c.fragments["subject"].value_counts().max() == 1
    assert c.n_subjects == len(c.fragments) == options["n_families"] * options["n_subjects"]
    assert np.isfinite(c.family_pooled).all()


def test_rare_token_recipes():
    for scale in ("quick", "full"):
        recipe = corpora.RARE_TOKEN_RECIPES[scale]
        assert recipe.corpus["unique_subjects"] is True
        assert recipe.model == FRAGMENT_RECIPES[scale].model
        world = corpora.fragment_world(recipe, 0)
        assert world.fragments["subject"].is_unique


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_unique_subjects_must_be_a_bool(value):
    with pytest.raises(TypeError, match=r"unique_subjects must be True or False, got "):
        make_fragment_corpus(**ROUND_ONE_SMALL, unique_subjects=value, seed=0)

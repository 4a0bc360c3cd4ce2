"""Tests of bayes_at_scale.experiments.pretraining_at_scale (chapter 3's experiment).

The statistics (held-out scores, the sweep table, gain by bucket, C5, power-law fits and
extrapolation, the analytic Zipf tail) run on hand-made inputs whose answers are computed by
hand or by a direct sum.  The training half (run_size / run_sweep) runs once per module on a
tiny recipe passed in: 2 families x 4 subjects, a one-layer d_model 8 network, 20 steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_at_scale.experiments import pretraining_at_scale as scale
from bayes_at_scale.worlds.fragments import ANSWERS, FragmentCorpus, count_bucket
from bayes_at_scale.core.training import Recipe

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
    pytest.mark.filterwarnings("ignore:cov_kron operation is not supported:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using a non-full backward hook:FutureWarning"),
]

QUICK = scale.recipe("quick")
TINY_RECIPE = Recipe(corpus=dict(n_families=2, n_subjects=4, zipf_exponent=1.2),
                     model=dict(d_model=8, n_heads=2, n_layers=1),
                     training=dict(steps=20, lr=1e-2, weight_decay=1e-5))
TINY_SIZES = (60, 400)
TINY_SEEDS = (0, 1)


# --- corpus_at ----------------------------------------------------------------------------


def test_corpus_at_shares_the_world_across_sizes():
    small, large = (scale.corpus_at(QUICK, 3, n) for n in (1_000, 30_000))
    recipe = scale.SCALE_RECIPES["quick"].corpus
    assert len(small.fragments) == recipe["n_families"] * recipe["n_subjects"]
    np.testing.assert_array_equal(small.p_true, large.p_true)
    np.testing.assert_array_equal(small.p_family, large.p_family)
    np.testing.assert_array_equal(small.fragments["popularity"], large.fragments["popularity"])
    pd.testing.assert_frame_equal(small.fragments[["family", "subject"]],
                                  large.fragments[["family", "subject"]])
    assert small.fragments["n"].sum() == 1_000 and large.fragments["n"].sum() == 30_000
    assert not np.array_equal(small.fragments["n"], large.fragments["n"])
    for c in (small, large):
        q = c.fragments["popularity"].to_numpy()
        assert q.sum() == pytest.approx(1.0, abs=1e-12) and (q > 0).all()
        assert (c.answer_counts.sum(axis=1) == c.fragments["n"]).all()


def test_corpus_at_popularity_is_the_zipf_law():
    c = scale.corpus_at(QUICK, 0, 1_000)
    q = np.sort(c.fragments["popularity"].to_numpy())[::-1]
    ranks = np.arange(1, q.size + 1)
    exponent = scale.SCALE_RECIPES["quick"].corpus["zipf_exponent"]
    np.testing.assert_allclose(q[0] / q, ranks**exponent, rtol=1e-10)


def test_corpus_at_seeds_differ():
    a, b = (scale.corpus_at(QUICK, seed, 1_000) for seed in (0, 1))
    assert not np.array_equal(a.p_true, b.p_true)
    assert not np.array_equal(a.fragments["popularity"], b.fragments["popularity"])


# --- heldout_scores -----------------------------------------------------------------------


def _full_vocab(corpus: FragmentCorpus, answer_probs: np.ndarray) -> np.ndarray:
    """(n_fragments, V) probabilities that put ``answer_probs`` on the answer tokens."""
    p = np.zeros((len(corpus.fragments), corpus.vocab_size))
    p[:, corpus.answer_tokens] = answer_probs
    return p


@pytest.fixture(scope="module")
def scored_corpus():
    """The quick world of seed 2 (seed 0's p_true has exact zeros)."""
    c = scale.corpus_at(QUICK, 2, 3_000)
    assert (c.p_true > 0).all()
    return c


def test_heldout_truth_beats_uniform(scored_corpus):
    c = scored_corpus
    truth = _full_vocab(c, c.p_true)
    uniform = np.full((len(c.fragments), c.vocab_size), 1.0 / c.vocab_size)
    s = scale.heldout_scores(c, truth, uniform)
    assert len(s) == len(c.fragments)
    assert list(s.columns) == ["family", "subject", "popularity", "n", "nll_MAP", "nll_LA", "kl"]
    # the truth's expected NLL is the entropy of p_true: never more than any other model's
    np.testing.assert_allclose(s["nll_MAP"], stats.entropy(c.p_true, axis=1), rtol=1e-10)
    np.testing.assert_allclose(s["nll_LA"], np.log(c.vocab_size), rtol=1e-12)
    assert (s["nll_MAP"] <= s["nll_LA"]).all()
    w = s["popularity"]
    assert (w * s["nll_MAP"]).sum() < (w * s["nll_LA"]).sum()
    # KL(uniform || truth) is infinite: the truth puts no mass off the answer tokens
    assert np.isinf(s["kl"]).all()
    pd.testing.assert_frame_equal(s[["family", "subject", "popularity", "n"]],
                                  c.fragments[["family", "subject", "popularity", "n"]])


def test_heldout_does_not_touch_the_corpus(scored_corpus):
    before = scored_corpus.fragments.copy()
    p = _full_vocab(scored_corpus, scored_corpus.p_true)
    out = scale.heldout_scores(scored_corpus, p, p)
    out.loc[:, "popularity"] = -1.0
    out.loc[:, "n"] = -1
    pd.testing.assert_frame_equal(scored_corpus.fragments, before)


def _two_fragments() -> FragmentCorpus:
    p_true = np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]])
    fragments = pd.DataFrame({"family": [0, 0], "subject": [0, 1], "popularity": [0.75, 0.25],
                              "n": [3, 0]})
    for j, a in enumerate(ANSWERS):
        fragments[f"count_{a}"] = [[2, 1, 0][j], 0]
    return FragmentCorpus(fragments=fragments, p_true=p_true, p_family=np.array([[0.4, 0.3, 0.3]]),
                          n_subjects=2)


def test_heldout_two_fragments_by_hand():
    c = _two_fragments()
    assert c.vocab_size == 7 and list(c.answer_tokens) == [4, 5, 6]
    # MAP: answers (1/2, 1/4, 1/8) + 1/8 on a non-answer token; uniform over the vocabulary
    map_probs = np.array([[0.125, 0, 0, 0, 0.5, 0.25, 0.125],
                          [1 / 7] * 7])
    la_probs = np.array([[0, 0, 0, 0, 0.5, 0.25, 0.25],
                         [0, 0, 0, 0, 0.25, 0.25, 0.5]])
    s = scale.heldout_scores(c, map_probs, la_probs)
    # cross-entropies: 0.5 ln 2 + 0.25 ln 4 + 0.25 ln 8 = 1.75 ln 2, and ln 7
    np.testing.assert_allclose(s["nll_MAP"], [1.75 * np.log(2), np.log(7)], rtol=1e-12)
    # LA of fragment 0 is the truth (its entropy, 1.5 ln 2); fragment 1: -(.2 ln .25 + .3 ln .25
    # + .5 ln .5)
    np.testing.assert_allclose(
        s["nll_LA"], [1.5 * np.log(2), -(0.5 * np.log(0.25) + 0.5 * np.log(0.5))], rtol=1e-12)
    # KL(LA || MAP) of fragment 0: 0.25 ln(0.25 / 0.125) = 0.25 ln 2
    assert s["kl"].iloc[0] == pytest.approx(0.25 * np.log(2), rel=1e-12)
    kl1 = 0.25 * np.log(0.25 * 7) + 0.25 * np.log(0.25 * 7) + 0.5 * np.log(0.5 * 7)
    assert s["kl"].iloc[1] == pytest.approx(kl1, rel=1e-12)
    assert list(s["n"]) == [3, 0] and list(s["popularity"]) == [0.75, 0.25]


def test_heldout_kl_is_zero_when_la_equals_map(scored_corpus, rng):
    c = scored_corpus
    logits = rng.normal(size=(len(c.fragments), c.vocab_size))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    s = scale.heldout_scores(c, p, p.copy())
    np.testing.assert_array_equal(s["kl"], 0.0)
    np.testing.assert_array_equal(s["nll_MAP"], s["nll_LA"])
    assert (s["nll_MAP"] > 0).all() and np.isfinite(s["nll_MAP"]).all()


def test_heldout_zero_probability_with_zero_truth():
    # the quick world of seed 0 has answers of true probability exactly 0
    c = scale.corpus_at(QUICK, 0, 3_000)
    assert (c.p_true == 0).any()
    truth = _full_vocab(c, c.p_true)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = scale.heldout_scores(c, truth, truth)
    np.testing.assert_allclose(s["nll_MAP"], stats.entropy(c.p_true, axis=1), rtol=1e-10)


@pytest.mark.parametrize("map_shape, la_shape", [
    ((2, 7), (2, 6)), ((2, 7), (1, 7)), ((1, 7), (1, 7)), ((3, 7), (3, 7)),
])
def test_heldout_shape_errors(map_shape, la_shape):
    c = _two_fragments()
    with pytest.raises(ValueError, match=r"expected two \(2, V\) arrays, got "):
        scale.heldout_scores(c, np.full(map_shape, 1 / map_shape[1]),
                             np.full(la_shape, 1 / la_shape[1]))


def test_heldout_rejects_probabilities_that_do_not_sum_to_one():
    c = _two_fragments()
    bad = np.full((2, 7), 0.2)
    with pytest.raises(ValueError, match=r"rows must sum to 1"):
        scale.heldout_scores(c, np.full((2, 7), 1 / 7), bad)


# --- sweep_table --------------------------------------------------------------------------


@pytest.fixture
def sweep() -> pd.DataFrame:
    """One seed, two corpus sizes, four fragments each (rows shuffled)."""
    pop = [0.4, 0.3, 0.2, 0.1]
    a = pd.DataFrame({"seed": 0, "N": 10, "popularity": pop, "n": [6, 3, 1, 0],
                      "nll_MAP": [1.0, 2.0, 3.0, 4.0], "nll_LA": [0.9, 1.8, 2.5, 3.0],
                      "kl": [0.01, 0.02, 0.05, 0.1]})
    b = pd.DataFrame({"seed": 0, "N": 1545, "popularity": pop, "n": [1500, 40, 3, 2],
                      "nll_MAP": [1.0, 1.0, 1.0, 1.0], "nll_LA": [1.2, 1.1, 1.0, 1.0],
                      "kl": [0.0, 0.01, 0.015, 0.03]})
    return pd.concat([b, a], ignore_index=True).sample(frac=1.0, random_state=0)


# (nll_MAP, nll_LA, gain, kl, unseen_mass, rare_share_of_seen, rare_token_share), by hand
EXPECTED = {
    10: (2.0, 1.7, 0.15, 0.03, 0.1, 2 / 3, 0.4),
    1545: (1.0, 1.11, -0.11, 0.009, 0.0, 0.5, 5 / 1545),
}


def test_sweep_table_by_hand(sweep):
    t = scale.sweep_table(sweep)
    assert list(t.columns) == ["seed", "N", "nll_MAP", "nll_LA", "gain", "abs_gain", "kl",
                               "unseen_mass", "rare_share_of_seen", "rare_token_share"]
    assert list(t["N"]) == [10, 1545] and list(t["seed"]) == [0, 0]
    for _, row in t.iterrows():
        nll_map, nll_la, gain, kl, unseen, rare_seen, rare_tokens = EXPECTED[row["N"]]
        assert row["nll_MAP"] == pytest.approx(nll_map)
        assert row["nll_LA"] == pytest.approx(nll_la)
        assert row["gain"] == pytest.approx(gain)
        assert row["gain"] == pytest.approx((row["nll_MAP"] - row["nll_LA"]) / row["nll_MAP"])
        assert row["abs_gain"] == pytest.approx(abs(gain))
        assert row["kl"] == pytest.approx(kl)
        assert row["unseen_mass"] == pytest.approx(unseen)
        assert row["rare_share_of_seen"] == pytest.approx(rare_seen)
        assert row["rare_token_share"] == pytest.approx(rare_tokens)


def test_sweep_table_weights_by_normalised_popularity(sweep):
    """Weights are popularity / its sum per (seed, N); uniform popularity is a plain mean."""
    base = scale.sweep_table(sweep)
    doubled = scale.sweep_table(sweep.assign(popularity=2 * sweep["popularity"]))
    for col in ["nll_MAP", "nll_LA", "gain", "kl"]:
        np.testing.assert_allclose(doubled[col], base[col], rtol=1e-12)
    flat = scale.sweep_table(sweep.assign(popularity=0.25))
    means = sweep.groupby("N")[["nll_MAP", "nll_LA", "kl"]].mean()
    for col in ["nll_MAP", "nll_LA", "kl"]:
        np.testing.assert_allclose(flat[col], means[col].to_numpy(), rtol=1e-12)


def test_sweep_table_groups_by_seed(sweep):
    two = pd.concat([sweep, sweep.assign(seed=1, nll_LA=sweep["nll_MAP"], kl=0.0)],
                    ignore_index=True)
    t = scale.sweep_table(two)
    assert list(zip(t["seed"], t["N"])) == [(0, 10), (0, 1545), (1, 10), (1, 1545)]
    np.testing.assert_allclose(t.loc[t["seed"] == 1, ["gain", "abs_gain", "kl"]], 0.0)
    pd.testing.assert_frame_equal(t[t["seed"] == 0].reset_index(drop=True),
                                  scale.sweep_table(sweep))


# --- gain_by_bucket -----------------------------------------------------------------------


def test_gain_by_bucket_by_hand(sweep):
    g = scale.gain_by_bucket(sweep)
    assert list(g.columns) == ["seed", "N", "bucket", "mass", "nll_MAP", "nll_LA", "gain", "kl"]
    keys = list(zip(g["N"], g["bucket"]))
    assert keys == [(10, "unseen"), (10, "1"), (10, "2-3"), (10, "4-30"),
                    (1545, "2-3"), (1545, "31-1000"), (1545, ">1000")]
    by = g.set_index(["N", "bucket"])
    assert by.loc[(10, "unseen"), "gain"] == pytest.approx((4.0 - 3.0) / 4.0)
    assert by.loc[(10, "2-3"), "gain"] == pytest.approx((2.0 - 1.8) / 2.0)
    assert by.loc[(1545, ">1000"), "gain"] == pytest.approx(-0.2)
    # the 2-3 bucket of N = 1545 holds two fragments (popularity 0.2 and 0.1)
    row = by.loc[(1545, "2-3")]
    assert row["mass"] == pytest.approx(0.3)
    assert row["kl"] == pytest.approx((0.2 * 0.015 + 0.1 * 0.03) / 0.3)
    assert row["gain"] == pytest.approx(0.0)
    np.testing.assert_allclose(g.groupby(["seed", "N"])["mass"].sum(), 1.0)


def test_gain_by_bucket_labels_follow_count_bucket(scored_corpus):
    c = scored_corpus
    p = _full_vocab(c, c.p_true)
    sweep = scale.heldout_scores(c, p, p).assign(seed=0, N=3_000)
    g = scale.gain_by_bucket(sweep)
    seen = sweep["n"] > 0
    expected = pd.Series(count_bucket(sweep.loc[seen, "n"]).astype(str)).value_counts()
    masses = pd.Series(count_bucket(sweep.loc[seen, "n"]).astype(str)).pipe(
        lambda labels: sweep.loc[seen, "popularity"].groupby(labels.to_numpy()).sum())
    by = g.set_index("bucket")
    assert set(by.index) == {"unseen", *expected.index}
    assert by.loc["unseen", "mass"] == pytest.approx(sweep.loc[~seen, "popularity"].sum())
    for label, mass in masses.items():
        assert by.loc[label, "mass"] == pytest.approx(mass)
    assert g["mass"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g["gain"], 0.0)


# --- c5_statistics ------------------------------------------------------------------------


def _c5_table(sizes=(1e3, 3e3, 1e4, 3e4, 1e5)) -> pd.DataFrame:
    n = np.asarray(sizes, dtype=float)
    return pd.DataFrame({"seed": 0, "N": n, "gain": 0.5 / np.log(n), "kl": 2.0 / n})


def test_c5_statistics_on_a_synthetic_table():
    table = _c5_table().sample(frac=1.0, random_state=1)  # order does not matter
    c5 = scale.c5_statistics(table)
    assert set(c5) == {"spearman_n_gain", "gain_largest_n", "loglog_slope_kl_n"}
    assert c5["spearman_n_gain"] == pytest.approx(-1.0)
    assert c5["gain_largest_n"] == pytest.approx(0.5 / np.log(1e5))
    assert c5["loglog_slope_kl_n"] == pytest.approx(-1.0)


def test_c5_statistics_increasing_gain():
    table = _c5_table().assign(gain=lambda t: np.log(t["N"]), kl=lambda t: 0.3 * t["N"] ** -0.5)
    c5 = scale.c5_statistics(table)
    assert c5["spearman_n_gain"] == pytest.approx(1.0)
    assert c5["loglog_slope_kl_n"] == pytest.approx(-0.5)


@pytest.mark.parametrize("sizes", [(1e3, 1e4, 1e5), (1e3, 1e3, 1e4, 1e4, 1e5)])
def test_c5_statistics_needs_four_sizes(sizes):
    with pytest.raises(ValueError, match=r"C5 needs at least 4 corpus sizes, got 3"):
        scale.c5_statistics(_c5_table(sizes))


# --- extrapolate ----------------------------------------------------------


def test_extrapolate_evaluates_the_fitted_law():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5])
    table = pd.concat([
        pd.DataFrame({"seed": 0, "N": n, "gain": 3.0 * n**-0.7}),
        # seed 1: a non-positive value at N = 1e5 is left out of the fit
        pd.DataFrame({"seed": 1, "N": n, "gain": np.append(2.0 * n[:-1] ** -0.5, -0.01)}),
    ], ignore_index=True)
    targets = [1e9, 1e12]
    out = scale.extrapolate(table, "gain", targets)
    assert list(out.columns) == ["seed", "N", "gain", "exponent", "fitted_on"]
    assert list(zip(out["seed"], out["N"])) == [(0, 1e9), (0, 1e12), (1, 1e9), (1, 1e12)]
    t = np.array(targets)
    np.testing.assert_allclose(out.loc[out["seed"] == 0, "gain"], 3.0 * t**-0.7, rtol=1e-9)
    np.testing.assert_allclose(out.loc[out["seed"] == 1, "gain"], 2.0 * t**-0.5, rtol=1e-9)
    np.testing.assert_allclose(out["exponent"], [-0.7, -0.7, -0.5, -0.5], rtol=1e-9)
    assert list(out["fitted_on"]) == [5, 5, 4, 4]


def test_extrapolate_needs_two_positive_values():
    table = pd.DataFrame({"seed": [0, 0, 0, 1, 1], "N": [1e3, 1e4, 1e5, 1e3, 1e4],
                          "kl": [1.0, 0.1, 0.01, 0.5, 0.0]})
    with pytest.raises(ValueError, match=r"seed 1: fewer than two positive values of kl"):
        scale.extrapolate(table, "kl", [1e9])
    out = scale.extrapolate(table[table["seed"] == 0], "kl", [1e9])
    assert out["kl"].iloc[0] == pytest.approx(1e-6)  # kl = 1000 / N


# --- zipf_tail ----------------------------------------------------------------------------


def _direct_tail(n_tokens: float, exponent: float, n_types: int) -> tuple[float, float]:
    """(token_share, distinct_share) by a direct Poisson sum over every rank."""
    r = np.arange(1, n_types + 1, dtype=float)
    q = r**-exponent
    q /= q.sum()
    lam = n_tokens * q
    token = (q * stats.poisson.cdf(2, lam)).sum()
    seen = (-np.expm1(-lam)).sum()
    rare = (stats.poisson.cdf(3, lam) - np.exp(-lam)).sum()
    return float(token), float(rare / seen)


def test_zipf_tail_shares_and_monotonicity():
    sizes = np.logspace(3, 13, 11)
    t = scale.zipf_tail(sizes, 1.2, 1e9)
    assert list(t.columns) == ["N", "token_share", "distinct_share"]
    np.testing.assert_array_equal(t["N"], sizes)
    for col in ["token_share", "distinct_share"]:
        assert ((t[col] >= 0) & (t[col] <= 1)).all()
    assert (np.diff(t["token_share"]) < 0).all()
    assert t["token_share"].iloc[0] > 0.4 and t["token_share"].iloc[-1] < 0.05


def test_zipf_tail_scalar_n_tokens():
    t = scale.zipf_tail(1e4, 1.2, 1_000)
    assert len(t) == 1 and t["N"].iloc[0] == 1e4


@pytest.mark.parametrize("n_types", [1, 2, 10])
def test_zipf_tail_few_types_vanish_at_large_n(n_types):
    t = scale.zipf_tail([1e4, 1e6], 1.5, n_types)
    np.testing.assert_allclose(t["token_share"], 0.0, atol=1e-12)
    assert ((t["distinct_share"] >= 0) & (t["distinct_share"] <= 1)).all()


@pytest.mark.parametrize("n_tokens", [1e2, 1e3, 1e4])
def test_zipf_tail_matches_a_direct_sum(n_tokens):
    t = scale.zipf_tail(n_tokens, 1.2, 1_000).iloc[0]
    token, distinct = _direct_tail(n_tokens, 1.2, 1_000)
    assert t["token_share"] == pytest.approx(token, rel=0.03, abs=1e-4)
    assert t["distinct_share"] == pytest.approx(distinct, rel=0.03)


def test_zipf_tail_one_type_is_a_plain_poisson():
    t = scale.zipf_tail([1.0], 1.2, 1).iloc[0]
    assert t["token_share"] == pytest.approx(stats.poisson.cdf(2, 1.0), rel=0.03)


@pytest.mark.parametrize("exponent", [1.0, 0.9, 0.0, -1.0, float("nan")])
def test_zipf_tail_exponent_must_exceed_one(exponent):
    with pytest.raises(ValueError, match=r"exponent must exceed 1"):
        scale.zipf_tail([1e4], exponent, 1e6)


@pytest.mark.parametrize("n_types", [0, 0.5, -3, float("nan")])
def test_zipf_tail_needs_a_type(n_types):
    with pytest.raises(ValueError, match=r"n_types must be >= 1"):
        scale.zipf_tail([1e4], 1.2, n_types)


# --- run_size / run_sweep -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sweep():
    sweep = scale.run_sweep(TINY_RECIPE, TINY_SEEDS, TINY_SIZES)
    one = scale.run_size(TINY_RECIPE, TINY_SEEDS[0], TINY_SIZES[0])
    corpora = {(s, n): scale.corpus_at(TINY_RECIPE, s, n) for s in TINY_SEEDS for n in TINY_SIZES}
    return sweep, one, corpora


@pytest.mark.slow
def test_run_sweep_one_row_per_seed_size_fragment(tiny_sweep):
    sweep, _, corpora = tiny_sweep
    n_fragments = TINY_RECIPE.corpus["n_families"] * TINY_RECIPE.corpus["n_subjects"]
    assert len(sweep) == len(TINY_SEEDS) * len(TINY_SIZES) * n_fragments
    assert list(sweep.index) == list(range(len(sweep)))
    assert {"family", "subject", "popularity", "n", "nll_MAP", "nll_LA", "kl", "seed", "N",
            "prior_precision"} <= set(sweep.columns)
    assert not sweep.duplicated(["seed", "N", "family", "subject"]).any()
    for (seed, n), part in sweep.groupby(["seed", "N"]):
        assert len(part) == n_fragments
        assert part["n"].sum() == n
        assert part["popularity"].sum() == pytest.approx(1.0)
        np.testing.assert_array_equal(part["n"], corpora[(seed, n)].fragments["n"])
    for col in ["nll_MAP", "nll_LA", "kl", "prior_precision"]:
        assert np.isfinite(sweep[col]).all()
    assert (sweep[["nll_MAP", "nll_LA"]] > 0).all().all()
    assert (sweep["kl"] >= 0).all() and (sweep["prior_precision"] > 0).all()
    # the same world at every size of one seed
    for seed in TINY_SEEDS:
        pops = [sweep[(sweep["seed"] == seed) & (sweep["N"] == n)]["popularity"].to_numpy()
                for n in TINY_SIZES]
        np.testing.assert_array_equal(pops[0], pops[1])


@pytest.mark.slow
def test_run_size_is_reproducible(tiny_sweep):
    sweep, one, _ = tiny_sweep
    part = sweep[(sweep["seed"] == TINY_SEEDS[0]) & (sweep["N"] == TINY_SIZES[0])]
    pd.testing.assert_frame_equal(one, part.reset_index(drop=True), rtol=1e-6)


@pytest.mark.slow
def test_run_sweep_feeds_the_tables(tiny_sweep):
    sweep, _, _ = tiny_sweep
    t = scale.sweep_table(sweep)
    assert len(t) == len(TINY_SEEDS) * len(TINY_SIZES)
    assert np.isfinite(t.drop(columns=["seed", "N"]).to_numpy(float)).all()
    g = scale.gain_by_bucket(sweep)
    np.testing.assert_allclose(g.groupby(["seed", "N"])["mass"].sum(), 1.0)


@pytest.mark.parametrize("sizes", [[100], ()])
def test_run_sweep_needs_two_sizes(sizes):
    with pytest.raises(ValueError, match=r"a sweep needs at least two corpus sizes"):
        scale.run_sweep(TINY_RECIPE, [0], sizes)


@pytest.mark.parametrize("name", ["quick", "full"])
def test_recipe_and_sizes_by_scale(name):
    assert scale.recipe(name) is scale.SCALE_RECIPES[name]
    assert list(scale.sizes(name)) == sorted(scale.sizes(name)) and len(scale.sizes(name)) >= 4
    with pytest.raises(ValueError, match="unknown scale"):
        scale.sizes("huge")

"""Tests of bayes_at_scale.experiments.pretraining_at_scale (chapter 3's experiment).

The statistics (held-out scores, the sweep table, gain by bucket, C5, power-law fits and
extrapolation, the analytic Zipf tail; round 2's restricted scores, tables, seed bootstrap, C19
and C20) run on hand-made inputs whose answers are computed by hand or by a direct sum.  The
training half (run_size / run_sweep, and round 2's run_r2_size / run_sweeps) runs once per
module on a tiny recipe passed in: 2 families x 4 subjects, a one-layer d_model 8 network,
20 steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_at_scale.book import claims
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


# --- round 2: answer_scores ---------------------------------------------------------------


def test_answer_scores_two_fragments_by_hand():
    c = _two_fragments()
    map_probs = np.array([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    # two samples per fragment whose mean is (0.5, 0.25, 0.25) and (0.2, 0.3, 0.5)
    samples = np.array([[[0.6, 0.2, 0.2], [0.1, 0.4, 0.5]],
                        [[0.4, 0.3, 0.3], [0.3, 0.2, 0.5]]])
    s = scale.answer_scores(c, map_probs, samples)
    assert list(s.columns) == ["family", "subject", "popularity", "n", "nll_MAP", "nll_LA",
                               "kl", "mi"]
    # fragment 0: the mode is the truth; fragment 1: LA is the truth
    np.testing.assert_allclose(s["nll_MAP"], [1.5 * np.log(2), -(0.5 * np.log(0.25)
                                                                 + 0.5 * np.log(0.5))])
    np.testing.assert_allclose(s["nll_LA"], stats.entropy(c.p_true, axis=1), rtol=1e-12)
    kl1 = 0.2 * np.log(0.2 / 0.25) + 0.3 * np.log(0.3 / 0.25)
    np.testing.assert_allclose(s["kl"], [0.0, kl1], atol=1e-12)
    # MI = H(mean) - mean H(sample)
    for f in range(2):
        mi = stats.entropy(samples[:, f].mean(axis=0)) - stats.entropy(samples[:, f],
                                                                       axis=1).mean()
        assert s["mi"].iloc[f] == pytest.approx(mi, rel=1e-12)


def test_answer_scores_identical_samples_have_no_mutual_information(scored_corpus, rng):
    c = scored_corpus
    p = rng.dirichlet(np.ones(3), size=len(c.fragments))
    s = scale.answer_scores(c, p, np.stack([p, p, p]))
    np.testing.assert_allclose(s[["kl", "mi"]], 0.0, atol=1e-12)
    np.testing.assert_allclose(s["nll_MAP"], s["nll_LA"])


@pytest.mark.parametrize("map_shape, sample_shape", [((2, 3), (4, 3, 3)), ((2, 2), (4, 2, 2)),
                                                     ((2, 3), (2, 3))])
def test_answer_scores_shape_errors(map_shape, sample_shape):
    c = _two_fragments()
    map_probs = np.full(map_shape, 1 / map_shape[-1])
    samples = np.full(sample_shape, 1 / sample_shape[-1])
    with pytest.raises(ValueError, match="expected map_probs"):
        scale.answer_scores(c, map_probs, samples)


def test_answer_scores_rejects_non_probabilities():
    c = _two_fragments()
    with pytest.raises(ValueError):
        scale.answer_scores(c, np.full((2, 3), 0.5), np.full((1, 2, 3), 1 / 3))


# --- round 2: round_two_table and gain_parts ------------------------------------------------


def _scores(n_by_fragment, popularity, nll_map, nll_la, posterior="p", seed=0, n_tokens=100):
    k = len(n_by_fragment)
    return pd.DataFrame({"family": 0, "subject": np.arange(k), "popularity": popularity,
                         "n": n_by_fragment, "nll_MAP": nll_map, "nll_LA": nll_la,
                         "kl": np.full(k, 0.01), "mi": np.full(k, 0.1), "posterior": posterior,
                         "seed": seed, "N": n_tokens})


def test_round_two_table_by_hand():
    a = _scores([0, 2, 10], [0.2, 0.3, 0.5], [2.0, 1.0, 0.5], [1.0, 1.0, 0.6])
    b = _scores([5, 8, 10], [0.2, 0.3, 0.5], [2.0, 1.0, 0.5], [1.0, 1.0, 0.6], n_tokens=200)
    t = scale.round_two_table(pd.concat([b, a]))
    assert list(t["N"]) == [100, 200]
    first = t.iloc[0]
    # token-weighted: MAP 0.4 + 0.3 + 0.25 = 0.95, LA 0.2 + 0.3 + 0.3 = 0.8
    assert first["nll_MAP"] == pytest.approx(0.95) and first["nll_LA"] == pytest.approx(0.8)
    assert first["gain"] == pytest.approx(0.15 / 0.95) and first["abs_gain"] == first["gain"]
    assert first["kl"] == pytest.approx(0.01) and first["mi"] == pytest.approx(0.1)
    # tail: fragments with n <= 3 (the unseen one included), weights 0.2 and 0.3
    assert first["tail_fragments"] == 2 and first["tail_mass"] == pytest.approx(0.5)
    assert first["tail_gain"] == pytest.approx((0.4 + 0.3 - 0.2 - 0.3) / 0.7)
    second = t.iloc[1]
    assert second["tail_fragments"] == 0 and np.isnan(second["tail_gain"])
    assert second["tail_mass"] == 0


def test_round_two_table_abs_gain_and_posteriors():
    worse = _scores([1, 9], [0.5, 0.5], [1.0, 1.0], [1.5, 1.1], posterior="a")
    better = _scores([1, 9], [0.5, 0.5], [1.0, 1.0], [0.5, 0.9], posterior="b")
    t = scale.round_two_table(pd.concat([worse, better]))
    assert list(t["posterior"]) == ["a", "b"]
    np.testing.assert_allclose(t["gain"], [-0.3, 0.3])
    np.testing.assert_allclose(t["abs_gain"], [0.3, 0.3])


def test_gain_parts_by_hand():
    scores = pd.concat([_scores([0, 2, 10], [0.2, 0.3, 0.5], [2.0, 1.0, 0.5], [1.0, 1.0, 0.6]),
                        _scores([5, 8, 10], [0.2, 0.3, 0.5], [2.0, 1.0, 0.5], [1.0, 1.0, 0.6],
                                n_tokens=200)])
    g = scale.gain_parts(scores, "LA")
    # the tail of N = 200 is empty: no row for it
    assert list(zip(g["N"], g["part"])) == [(100, "all held-out text"), (100, "tail: n(f) <= 3"),
                                           (200, "all held-out text")]
    np.testing.assert_allclose(g["gain"], [0.15 / 0.95, 0.2 / 0.7, 0.15 / 0.95])
    assert set(g["predictive"]) == {"LA"}


# --- round 2: seed_matrix and seed_bootstrap -------------------------------------------------


SIZES_R2 = np.array([250 * 2**k for k in range(8)], dtype=float)
R = 200  # bootstrap resamples in these tests (the chapter uses scale.BOOTSTRAP_RESAMPLES)


def _grid(gain, kl=None, tail_gain=None, tail_fragments=None, mi=None, posterior="p"):
    """A one-posterior round-two table from (seeds, sizes) arrays."""
    seeds, sizes = np.shape(gain)
    rows = []
    for i in range(seeds):
        for j in range(sizes):
            rows.append({"posterior": posterior, "seed": 10 + i, "N": SIZES_R2[j],
                         "gain": gain[i][j],
                         "kl": 1.0 if kl is None else kl[i][j],
                         "mi": 1.0 if mi is None else mi[i][j],
                         "tail_gain": 0.1 if tail_gain is None else tail_gain[i][j],
                         "tail_fragments": 5 if tail_fragments is None
                         else tail_fragments[i][j]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_seed_matrix_orders_seeds_and_sizes():
    values = np.arange(16.0).reshape(2, 8)
    sizes, m = scale.seed_matrix(_grid(values), "gain")
    np.testing.assert_array_equal(sizes, SIZES_R2)
    np.testing.assert_array_equal(m, values)


def test_seed_matrix_errors():
    t = _grid(np.zeros((2, 8)))
    with pytest.raises(KeyError, match="lacks a 'nope' column"):
        scale.seed_matrix(t, "nope")
    with pytest.raises(ValueError, match="occurs twice"):
        scale.seed_matrix(pd.concat([t, t.iloc[:1]]), "gain")
    with pytest.raises(ValueError, match="every seed must have a row at every corpus size"):
        scale.seed_matrix(t.iloc[1:], "gain")
    with pytest.raises(ValueError, match="mixes posteriors"):
        scale.seed_matrix(pd.concat([t, t.assign(posterior="q")]), "gain")


def test_seed_bootstrap_constant_statistic_and_bounds():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    low, high = scale.seed_bootstrap(lambda m: float(m[:, 0].mean()), values, seed=0)
    assert 1.0 <= low < 4.0 < high <= 7.0
    # a statistic that does not depend on which seeds were drawn has a zero-width interval
    low, high = scale.seed_bootstrap(lambda m: float((m[:, 1] - m[:, 0]).mean()), values, seed=0)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # the same seed gives the same interval
    assert scale.seed_bootstrap(lambda m: float(m.mean()), values, seed=3) == \
        scale.seed_bootstrap(lambda m: float(m.mean()), values, seed=3)


def test_seed_bootstrap_resamples_whole_seeds():
    # each seed's row is constant, so any resample's mean of column 0 equals that of column 1
    values = np.repeat(np.array([[1.0], [2.0], [4.0], [8.0], [16.0]]), 3, axis=1)
    drawn = []

    def statistic(m):
        drawn.append(m.copy())
        return float(m[:, 0].mean() - m[:, 2].mean())

    assert scale.seed_bootstrap(statistic, values, seed=0, n_resamples=50) == (0.0, 0.0)
    assert all(m.shape == values.shape for m in drawn)


@pytest.mark.parametrize("values, message", [(np.ones(5), "values must be"),
                                             (np.ones((1, 3)), "values must be"),
                                             (np.array([[1.0, np.nan], [1.0, 2.0]]), "NaN")])
def test_seed_bootstrap_bad_inputs(values, message):
    with pytest.raises(ValueError, match=message):
        scale.seed_bootstrap(np.mean, values, seed=0)


# --- round 2: C19 -------------------------------------------------------------------------


def test_c19_statistics_power_laws_by_hand():
    factors = np.array([1.0, 1.5, 2.0, 0.5, 1.2])
    # |g| = f_s * 10 / N (falls), KL = f_s * N^-1.5: any resample of seeds keeps both laws
    gain = factors[:, None] * 10 / SIZES_R2[None, :] * np.array([1, -1, 1, -1, 1])[:, None]
    kl = factors[:, None] * SIZES_R2[None, :] ** -1.5
    per_seed, pooled = scale.c19_statistics(_grid(gain, kl), seed=0, n_resamples=R)
    assert set(pooled) == {"spearman_n_gain", "gain_at_largest_n", "kl_loglog_slope"}
    np.testing.assert_allclose(pooled["spearman_n_gain"], (-1.0, -1.0, -1.0))
    np.testing.assert_allclose(pooled["kl_loglog_slope"], (-1.5, -1.5, -1.5))
    value, low, high = pooled["gain_at_largest_n"]
    assert value == pytest.approx(factors.mean() * 10 / SIZES_R2[-1])
    assert low <= value <= high
    assert factors.min() * 10 / SIZES_R2[-1] <= low and high <= factors.max() * 10 / SIZES_R2[-1]
    assert len(per_seed) == 5
    for s, f in zip(per_seed, factors):
        assert s["seed_spearman_n_abs_gain"] == pytest.approx(-1.0)
        assert s["seed_abs_gain_at_largest_n"] == pytest.approx(f * 10 / SIZES_R2[-1])
        assert s["seed_kl_loglog_slope"] == pytest.approx(-1.5)


def test_c19_statistics_rising_gain_and_the_rule():
    gain = np.tile(np.linspace(0.01, 0.08, 8), (5, 1))
    kl = np.tile(SIZES_R2 ** 0.2, (5, 1))
    per_seed, pooled = scale.c19_statistics(_grid(gain, kl), seed=1, n_resamples=R)
    assert pooled["spearman_n_gain"][0] == pytest.approx(1.0)
    assert pooled["gain_at_largest_n"][0] == pytest.approx(0.08)
    assert pooled["kl_loglog_slope"][0] == pytest.approx(0.2)
    claim = claims.load_claims()["C19"]
    assert claims.pooled_outcome(claim, pooled) == "fail"
    gain = np.tile(1e-3 / np.arange(1, 9), (5, 1))
    kl = np.tile(SIZES_R2 ** -1.0, (5, 1))
    assert claims.verdict(claim, *scale.c19_statistics(_grid(gain, kl), seed=1,
                                                       n_resamples=R)) == "SUPPORTED"


@pytest.mark.parametrize("keep, seeds, message", [
    (slice(0, 7), 5, "at least 8 corpus sizes"),          # 7 sizes
    (slice(0, 8), 4, "at least 5 seeds")])
def test_c19_statistics_needs_a_real_sweep(keep, seeds, message):
    gain = np.full((seeds, 8), 0.01)[:, keep]
    with pytest.raises(ValueError, match=message):
        scale.c19_statistics(_grid(gain), seed=0)


def test_c19_statistics_needs_two_orders_of_magnitude():
    t = _grid(np.full((5, 8), 0.01))
    t["N"] = t["N"] / 250 + 10  # 11 .. 138: a factor 12.5
    with pytest.raises(ValueError, match="spanning a factor 100"):
        scale.c19_statistics(t, seed=0)


# --- round 2: C20 -------------------------------------------------------------------------


def test_c20_statistics_by_hand():
    tail = 0.1 + 0.01 * np.arange(5)[:, None] - 0.001 * np.arange(8)[None, :]
    per_seed, pooled = scale.c20_statistics(_grid(np.zeros((5, 8)), tail_gain=tail), seed=0,
                                            n_resamples=R)
    np.testing.assert_allclose([s["min_tail_gain"] for s in per_seed],
                               0.1 + 0.01 * np.arange(5) - 0.007)
    assert all(s["premise_met"] == 1.0 for s in per_seed) and pooled["premise_met"] == 1.0
    # the lowest interval is the largest size's; it lies within that size's seed values
    assert 0.093 <= pooled["ci_low_min_tail_gain"] <= tail[:, -1].mean()
    # seeds that agree give a zero-width interval: the minimum over sizes of the common value
    same = np.tile(np.array([0.2, 0.1, 0.05, 0.3, 0.2, 0.2, 0.2, 0.2]), (5, 1))
    _, pooled = scale.c20_statistics(_grid(np.zeros((5, 8)), tail_gain=same), seed=0,
                                     n_resamples=R)
    assert pooled["ci_low_min_tail_gain"] == pytest.approx(0.05)


def test_c20_statistics_empty_tail_fails_the_premise():
    tail = np.full((5, 8), 0.1)
    tail[2, -1], tail[2, 3] = np.nan, -0.5   # seed 2: no tail at the largest size
    fragments = np.full((5, 8), 4)
    fragments[2, -1] = 0
    per_seed, pooled = scale.c20_statistics(
        _grid(np.zeros((5, 8)), tail_gain=tail, tail_fragments=fragments), seed=0,
        n_resamples=R)
    assert [s["premise_met"] for s in per_seed] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert per_seed[2]["min_tail_gain"] == -0.5
    assert per_seed[2]["tail_fragments_at_largest_n"] == 0
    assert pooled["premise_met"] == 0.0 and np.isfinite(pooled["ci_low_min_tail_gain"])
    assert claims.verdict(claims.load_claims()["C20"], per_seed, pooled) == "INCONCLUSIVE"


def test_c20_statistics_needs_a_tail_somewhere():
    fragments = np.zeros((5, 8), dtype=int)
    fragments[0] = 3  # only seed 0 ever has a tail
    with pytest.raises(ValueError, match="no corpus size has a tail on every seed"):
        scale.c20_statistics(_grid(np.zeros((5, 8)), tail_fragments=fragments), seed=0,
                             n_resamples=R)


def test_c20_statistics_and_the_rule():
    claim = claims.load_claims()["C20"]
    helps = 0.2 + 0.01 * np.random.default_rng(0).normal(size=(5, 8))
    assert claims.verdict(claim, *scale.c20_statistics(
        _grid(np.zeros((5, 8)), tail_gain=helps), seed=0, n_resamples=R)) == "SUPPORTED"
    hurts = -helps
    assert claims.verdict(claim, *scale.c20_statistics(
        _grid(np.zeros((5, 8)), tail_gain=hurts), seed=0, n_resamples=R)) == "REFUTED"


# --- round 2: spearman_null_probability -----------------------------------------------------


def test_spearman_null_probability_by_hand():
    # n = 4: rho <= -0.8 needs sum d^2 >= 18: the reversal and three rankings next to it
    assert scale.spearman_null_probability(4, -0.8) == pytest.approx(1 / 6)
    assert scale.spearman_null_probability(3, -1.0) == pytest.approx(1 / 6)
    assert scale.spearman_null_probability(5, 1.0) == 1.0
    # symmetric: P(rho <= -t) = P(rho >= t) = 1 - P(rho < t)
    assert scale.spearman_null_probability(6, -0.6) == pytest.approx(
        1 - scale.spearman_null_probability(6, 0.6 - 1e-6))
    assert scale.spearman_null_probability(8, -0.8) < scale.spearman_null_probability(4, -0.8)


@pytest.mark.parametrize("n, threshold", [(2, 0.0), (10, 0.0), (4, 1.5), (4, "x")])
def test_spearman_null_probability_bad_inputs(n, threshold):
    with pytest.raises((ValueError, TypeError)):
        scale.spearman_null_probability(n, threshold)


# --- round 2: sizes and runs ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["quick", "full"])
def test_r2_sizes_meet_the_claims(name):
    sizes = scale.r2_sizes(name)
    assert list(sizes) == sorted(set(sizes)) and len(sizes) >= scale.MIN_SIZES
    assert sizes[-1] / sizes[0] >= scale.MIN_SPAN


def test_run_r2_size_rejects_unknown_flavours():
    with pytest.raises(ValueError, match="flavours must be names of"):
        scale.run_r2_size(TINY_RECIPE, 0, 60, flavours=("everything",))
    with pytest.raises(ValueError, match="flavours must be names of"):
        scale.run_r2_size(TINY_RECIPE, 0, 60, flavours=())


def test_round_two_frames_needs_runs():
    with pytest.raises(TypeError, match="RoundTwoRun"):
        scale.round_two_frames([])
    with pytest.raises(TypeError, match="RoundTwoRun"):
        scale.round_two_frames([pd.DataFrame()])


@pytest.fixture(scope="module")
def tiny_sweeps():
    return scale.run_sweeps(TINY_RECIPE, TINY_SEEDS, TINY_SIZES, TINY_SEEDS[:1], TINY_SIZES,
                            workers=1)


@pytest.mark.slow
def test_run_sweeps_round_one_is_run_sweep(tiny_sweeps, tiny_sweep):
    sweep, runs = tiny_sweeps
    pd.testing.assert_frame_equal(sweep, tiny_sweep[0])
    assert [(r.seed, r.n_tokens) for r in runs] == [(TINY_SEEDS[0], n) for n in TINY_SIZES]


@pytest.mark.slow
def test_run_r2_size_scores_every_fragment_under_both_posteriors(tiny_sweeps):
    _, runs = tiny_sweeps
    scores, posteriors = scale.round_two_frames(runs)
    n_fragments = TINY_RECIPE.corpus["n_families"] * TINY_RECIPE.corpus["n_subjects"]
    assert len(scores) == len(TINY_SIZES) * len(scale.R2_FLAVOURS) * n_fragments
    assert set(scores["posterior"]) == set(scale.R2_FLAVOURS)
    assert np.isfinite(scores[["nll_MAP", "nll_LA", "kl", "mi"]].to_numpy()).all()
    assert (scores[["kl", "mi"]] >= 0).all().all() and (scores["nll_LA"] > 0).all()
    for run in runs:
        corpus = scale.corpus_at(TINY_RECIPE, run.seed, run.n_tokens)
        for _, part in run.table.groupby("posterior"):
            np.testing.assert_array_equal(part["n"], corpus.fragments["n"])
    assert len(posteriors) == len(TINY_SIZES) * len(scale.R2_FLAVOURS)
    assert (posteriors["gradient_norm"] < 1e-2).all() and (posteriors["prior_min"] > 0).all()
    # the embedding flavour covers more parameters than the answer head alone
    by = posteriors.groupby("posterior")["n_params"].first()
    assert by["embeddings + head"] > by["answer head"]
    t = scale.round_two_table(scores)
    assert len(t) == len(TINY_SIZES) * len(scale.R2_FLAVOURS)


@pytest.mark.slow
def test_run_r2_size_is_reproducible(tiny_sweeps):
    _, runs = tiny_sweeps
    again = scale.run_r2_size(TINY_RECIPE, TINY_SEEDS[0], TINY_SIZES[0],
                              flavours=("answer head",))
    first = runs[0].table[runs[0].table["posterior"] == "answer head"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.table, first, rtol=1e-6)


# --- round 2: decay_slopes, claim_statistics, statistics_frame -------------------------------


def test_decay_slopes_second_order_by_hand():
    factors = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]
    kl, mi = factors * SIZES_R2**-2.0, factors * SIZES_R2**-1.0
    a = _grid(np.zeros((5, 8)), kl=kl, mi=mi, posterior="a")
    b = _grid(np.zeros((5, 8)), kl=factors * SIZES_R2**-1.2, mi=mi * SIZES_R2**0.4,
              posterior="b")
    slopes = scale.decay_slopes(pd.concat([a, b]))
    assert list(slopes.index) == ["a", "b"]
    np.testing.assert_allclose(slopes.loc["a"], [-2.0, -1.0, 2.0])
    np.testing.assert_allclose(slopes.loc["b"], [-1.2, -0.6, 2.0])


def test_claim_statistics_orders_the_verdict_posterior_first():
    gain = np.tile(1e-3 / np.arange(1, 9), (5, 1))
    kl = np.tile(SIZES_R2**-1.0, (5, 1))
    tables = [_grid(gain, kl, posterior=name) for name in ("zz other", *scale.R2_FLAVOURS)]
    stats = scale.claim_statistics(pd.concat(tables), seed=0, n_resamples=R)
    assert list(stats) == [*scale.R2_FLAVOURS, "zz other"]
    assert list(stats)[0] == scale.R2_VERDICT
    for both in stats.values():
        assert set(both) == {"C19", "C20"}
        assert both["C19"][1]["spearman_n_gain"][0] == pytest.approx(-1.0)
    frame = scale.statistics_frame(stats)
    assert list(frame.columns) == list(stats)
    assert frame.loc["kl_loglog_slope [95% seed interval]", scale.R2_VERDICT] == "-1 [-1, -1]"
    assert frame.loc["min_tail_gain (over seeds: min, max)", "zz other"] == "0.1, 0.1"
    assert frame.loc["ci_low_min_tail_gain", "zz other"] == "0.1"

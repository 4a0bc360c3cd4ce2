"""Tests of bayes_at_scale.experiments.what_a_posterior_adds (chapter 2's experiment).

The posterior half runs on one tiny corpus (three families, a few thousand questions) and one
tiny CausalLM trained for a few steps; the last-layer KFAC and the all-weights diagonal-EF
posteriors are fitted once per module and shared.  The statistics half (C3, C4, the Dirichlet
count model, held-out NLL) runs on hand-made tables whose answers are known in closed form.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bayes_at_scale.core import metrics
from bayes_at_scale.core import models
from bayes_at_scale.core import posteriors
from bayes_at_scale.core import settings
from bayes_at_scale.core import training
from bayes_at_scale.experiments import what_a_posterior_adds as uncertainty
from bayes_at_scale.worlds.fragments import ANSWERS, count_bucket, make_fragment_corpus

TOLERANCE = posteriors.AnswerPosteriorConfig().centred_tolerance  # "centred at the mode"

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
]

FLAVOURS = ["last_layer_kron", "all_diag_ef"]
N_SAMPLES = 200
ARRAY_COLUMNS = ["map", "la", "la_mc", "p_fam", "empirical", "p_true", "answer_counts"]
NUMBER_COLUMNS = ["n", "epistemic_std", "total_entropy", "aleatoric_entropy",
                  "epistemic_entropy"]


@pytest.fixture(scope="module")
def corpus():
    """120 fragments in three families, 3000 questions: Zipf counts, some fragments unseen."""
    c = make_fragment_corpus(n_families=3, n_subjects=40, n_tokens=3000, zipf_exponent=1.5,
                             seed=3)
    assert (c.fragments["n"] == 0).any() and (c.fragments["n"] > 0).sum() > 20
    return c


@pytest.fixture(scope="module")
def world(corpus):
    """A tiny model trained for 30 steps, its two posteriors and their fragment tables."""
    settings.seed_everything(0)
    lm = models.CausalLM(corpus.vocab_size, corpus.seq_len - 1, d_model=8, n_heads=2,
                         n_layers=1)
    training.train_map(lm, *corpus.next_token_counts(), steps=30, lr=3e-2, progress=False)
    fitted = uncertainty.fit_flavours(lm, corpus, FLAVOURS)
    tables = {name: uncertainty.fragment_uncertainty(post, corpus, N_SAMPLES, seed=0)
              for name, post in fitted.items()}
    return {"lm": lm, "posteriors": fitted, "tables": tables}


def _stack(table: pd.DataFrame, column: str) -> np.ndarray:
    return np.stack(table[column].to_list())


# --- training_loader ----------------------------------------------------------------------


def test_training_loader_yields_every_occurrence(small_corpus):
    loader = uncertainty.training_loader(small_corpus, batch_size=1000)
    prompts = torch.cat([b[0] for b in loader])
    targets = torch.cat([b[1] for b in loader])
    total = int(small_corpus.fragments["n"].sum())
    assert prompts.shape == (total, 3) and targets.shape == (total,)
    assert [len(b[1]) for b in loader][:-1] == [1000] * (len(loader) - 1)
    pairs = Counter(zip(map(tuple, prompts.tolist()), targets.tolist()))
    expected = Counter()
    all_prompts = small_corpus.prompts().tolist()
    for prompt, counts in zip(all_prompts, small_corpus.answer_counts):
        for token, k in zip(small_corpus.answer_tokens.tolist(), counts.tolist()):
            if k:
                expected[(tuple(prompt), token)] = k
    assert pairs == expected
    # never-seen fragments contribute nothing
    unseen = small_corpus.fragments["n"].to_numpy() == 0
    assert unseen.any()
    assert not {tuple(p) for p in np.asarray(all_prompts)[unseen].tolist()} & \
        {p for p, _ in pairs}


def test_training_loader_default_batch(tiny_corpus):
    loader = uncertainty.training_loader(tiny_corpus)
    assert loader.batch_size == 4096
    assert len(loader.dataset) == tiny_corpus.fragments["n"].sum() == 5000


def test_fit_flavours_needs_a_name(world, corpus):
    with pytest.raises(ValueError, match=r"name at least one posterior flavour"):
        uncertainty.fit_flavours(world["lm"], corpus, [])
    with pytest.raises(ValueError, match=r"unknown posterior flavour 'bogus'"):
        uncertainty.fit_flavours(world["lm"], corpus, ["bogus"])


def test_fit_flavours_fits_each_named_flavour(world):
    posts = world["posteriors"]
    assert list(posts) == FLAVOURS
    for name, post in posts.items():
        assert post.fitted and post.config == posteriors.flavour(name)
        assert post.model.lm is not world["lm"]


# --- answer_distribution ------------------------------------------------------------------


@given(st.integers(0, 10_000), st.sampled_from([(4,), (2, 3), (5, 1, 2)]))
def test_answer_distribution(tiny_corpus, seed, lead):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(tiny_corpus.vocab_size, 0.5), size=lead)
    probs[..., tiny_corpus.answer_tokens] += 1e-3  # keep the answer mass positive
    probs /= probs.sum(axis=-1, keepdims=True)
    a = uncertainty.answer_distribution(probs, tiny_corpus)
    assert a.shape == (*lead, len(ANSWERS))
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-12)
    # proportional to the answer tokens' mass: the ratios between answers are kept
    answers = probs[..., tiny_corpus.answer_tokens]
    np.testing.assert_allclose(a * answers[..., :1], answers * a[..., :1], atol=1e-12)


def test_answer_distribution_ignores_other_tokens(tiny_corpus):
    probs = np.zeros((2, tiny_corpus.vocab_size))
    probs[:, 0] = 0.9  # BOS mass: not an answer
    probs[0, tiny_corpus.answer_tokens] = [0.05, 0.05, 0.0]
    probs[1, tiny_corpus.answer_tokens] = [0.01, 0.02, 0.07]
    np.testing.assert_allclose(uncertainty.answer_distribution(probs, tiny_corpus),
                               [[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    t = torch.as_tensor(probs)  # tensors are accepted too
    np.testing.assert_allclose(uncertainty.answer_distribution(t, tiny_corpus)[1], [0.1, 0.2, 0.7])


@pytest.mark.parametrize("delta", [-1, 1])
def test_answer_distribution_wrong_vocabulary(tiny_corpus, delta):
    v = tiny_corpus.vocab_size
    with pytest.raises(ValueError, match=rf"expected distributions over {v} tokens, got last "
                                         rf"dimension {v + delta}"):
        uncertainty.answer_distribution(np.full((2, v + delta), 1 / (v + delta)), tiny_corpus)


# --- fragment_uncertainty -----------------------------------------------------------------


@pytest.mark.parametrize("name", FLAVOURS)
def test_one_row_per_seen_fragment(world, corpus, name):
    table = world["tables"][name]
    seen = corpus.fragments[corpus.fragments["n"] > 0].reset_index(drop=True)
    assert len(table) == len(seen) < len(corpus.fragments)
    pd.testing.assert_frame_equal(table[["family", "subject", "n"]],
                                  seen[["family", "subject", "n"]])
    assert (table["n"] > 0).all()
    idx = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    np.testing.assert_array_equal(_stack(table, "answer_counts"), corpus.answer_counts[idx])
    np.testing.assert_array_equal(_stack(table, "p_true"), corpus.p_true[idx])
    np.testing.assert_array_equal(_stack(table, "p_fam"), corpus.family_pooled[idx])
    np.testing.assert_allclose(_stack(table, "empirical"),
                               corpus.answer_counts[idx] / corpus.fragments["n"].to_numpy()[idx,
                                                                                           None])


@pytest.mark.parametrize("name", FLAVOURS)
def test_entropy_decomposition(world, name):
    table = world["tables"][name]
    total, alea, epi = (table[f"{k}_entropy"].to_numpy() for k in
                        ("total", "aleatoric", "epistemic"))
    assert np.isfinite(total).all()
    np.testing.assert_allclose(alea + epi, total, atol=1e-10)
    assert ((epi >= 0) & (epi <= total + 1e-12)).all()
    assert (total <= np.log(len(ANSWERS)) + 1e-9).all()
    assert (epi > 0).any()  # the posterior's samples do disagree
    # the total entropy is the entropy of the Monte-Carlo predictive
    np.testing.assert_allclose(total, metrics.entropy(_stack(table, "la_mc")), atol=1e-10)


@pytest.mark.parametrize("name", FLAVOURS)
def test_answer_distributions(world, name):
    table = world["tables"][name]
    for column in ("map", "la", "la_mc"):
        p = _stack(table, column)
        assert p.shape == (len(table), len(ANSWERS)), column
        assert (p >= 0).all(), column
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6, err_msg=column)


@pytest.mark.parametrize("name", FLAVOURS)
def test_map_is_the_network(world, corpus, name):
    table = world["tables"][name]
    idx = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    probs = models.next_token_probs(world["lm"], corpus.prompts(idx)).numpy()
    np.testing.assert_allclose(_stack(table, "map"),
                               uncertainty.answer_distribution(probs, corpus), atol=1e-6)


@pytest.mark.parametrize("name", FLAVOURS)
def test_epistemic_std_is_the_spread_of_the_top_completion(world, corpus, name):
    table = world["tables"][name]
    post = world["posteriors"][name]
    std = table["epistemic_std"].to_numpy()
    assert np.isfinite(std).all() and (std >= 0).all() and (std > 0).any()
    assert (std <= 0.5 + 1e-12).all()  # the std of a probability is at most 1/2
    # recompute for a few fragments: the std is that of the most *counted* answer
    rows = np.arange(min(8, len(table)))
    idx = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)[rows]
    samples = uncertainty.answer_distribution(
        post.sample(corpus.prompts(idx), N_SAMPLES, seed=0).numpy(), corpus)
    top = corpus.answer_counts[idx].argmax(axis=1)
    expected = samples[:, np.arange(len(rows)), top].std(axis=0, ddof=1)
    np.testing.assert_allclose(std[rows], expected, rtol=1e-6)


def test_mc_flavour_la_is_the_sample_mean(world):
    table = world["tables"]["all_diag_ef"]
    assert world["posteriors"]["all_diag_ef"].config.link_approx == "mc"
    np.testing.assert_array_equal(_stack(table, "la"), _stack(table, "la_mc"))
    agreement = uncertainty.closed_form_agreement(table)
    assert agreement == {"median_tv": 0.0, "q99_tv": 0.0, "max_tv": 0.0}


def test_probit_flavour_la_is_the_closed_form(world, corpus):
    table = world["tables"]["last_layer_kron"]
    post = world["posteriors"]["last_layer_kron"]
    idx = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    closed = uncertainty.answer_distribution(post.predictive(corpus.prompts(idx)).numpy(), corpus)
    np.testing.assert_allclose(_stack(table, "la"), closed, atol=1e-6)
    assert not np.allclose(_stack(table, "la"), _stack(table, "la_mc"))  # two different things
    agreement = uncertainty.closed_form_agreement(table)
    assert set(agreement) == {"median_tv", "q99_tv", "max_tv"}
    assert 0 < agreement["median_tv"] <= agreement["q99_tv"] <= agreement["max_tv"] <= 1
    assert agreement["median_tv"] < 0.1


def test_closed_form_agreement_by_hand():
    la = [[1.0, 0.0, 0.0]] * 3 + [[0.5, 0.5, 0.0]]
    mc = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.5, 0.3, 0.2]]
    out = uncertainty.closed_form_agreement(pd.DataFrame({"la": la, "la_mc": mc}))
    tv = np.array([0.0, 0.1, 1.0, 0.2])
    assert out["median_tv"] == pytest.approx(np.median(tv))
    assert out["q99_tv"] == pytest.approx(np.quantile(tv, 0.99))
    assert out["max_tv"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", FLAVOURS)
def test_fragment_uncertainty_is_seeded(world, corpus, name):
    post = world["posteriors"][name]
    first = world["tables"][name]
    same = uncertainty.fragment_uncertainty(post, corpus, N_SAMPLES, seed=0)
    other = uncertainty.fragment_uncertainty(post, corpus, N_SAMPLES, seed=1)
    assert list(same.columns) == list(first.columns)
    pd.testing.assert_frame_equal(same[NUMBER_COLUMNS + ["family", "subject"]],
                                  first[NUMBER_COLUMNS + ["family", "subject"]])
    for column in ARRAY_COLUMNS:
        np.testing.assert_array_equal(_stack(same, column), _stack(first, column),
                                      err_msg=column)
    assert not np.allclose(other["epistemic_std"], first["epistemic_std"])
    np.testing.assert_array_equal(_stack(other, "map"), _stack(first, "map"))


def test_fragment_uncertainty_needs_a_seen_fragment(world, corpus):
    empty = dataclasses.replace(corpus, fragments=corpus.fragments.assign(n=0))
    with pytest.raises(ValueError, match=r"the corpus has no fragment seen in training"):
        uncertainty.fragment_uncertainty(world["posteriors"]["last_layer_kron"], empty, 5, seed=0)


# --- c3_statistics ------------------------------------------------------------------------

C3_N = np.array([1, 1, 2, 3, 3, 3, 5, 10, 50, 200, 1000, 1500, 3000, 5000])


def test_c3_on_an_exact_power_law():
    table = pd.DataFrame({"n": C3_N, "epistemic_std": 0.3 * C3_N ** -0.5})
    out = uncertainty.c3_statistics(table, seed=0)
    assert set(out) == {"std_ratio_rare_frequent", "loglog_slope_std_n"}
    slope, low, high = out["loglog_slope_std_n"]
    assert slope == pytest.approx(-0.5, abs=1e-12)
    # every resample lies on the same line
    assert (low, high) == pytest.approx((-0.5, -0.5), abs=1e-9)
    ratio, low, high = out["std_ratio_rare_frequent"]
    rare, frequent = C3_N[C3_N <= 3], C3_N[C3_N >= 1000]
    assert ratio == pytest.approx(np.median(rare ** -0.5) / np.median(frequent ** -0.5))
    # medians by hand: rare stds 1, 1, 2^-1/2, 3^-1/2 (x3); frequent n 1000, 1500, 3000, 5000
    assert ratio == pytest.approx((2 ** -0.5 + 3 ** -0.5) / (1500 ** -0.5 + 3000 ** -0.5))
    assert 1 < low <= ratio <= high  # every rare std exceeds every frequent one


def test_c3_intervals_contain_the_estimates():
    rng = np.random.default_rng(0)
    n = np.concatenate([rng.integers(1, 4, 30), rng.integers(4, 1000, 30),
                        rng.integers(1000, 6000, 10)])
    std = 0.3 * n ** -0.4 * np.exp(rng.normal(0, 0.2, n.size))
    out = uncertainty.c3_statistics(pd.DataFrame({"n": n, "epistemic_std": std}), seed=1)
    for key, (value, low, high) in out.items():
        assert low < value < high, key
    assert out["loglog_slope_std_n"][0] == pytest.approx(-0.4, abs=0.05)
    assert out["loglog_slope_std_n"][1] < -0.4 < out["loglog_slope_std_n"][2]
    again = uncertainty.c3_statistics(pd.DataFrame({"n": n, "epistemic_std": std}), seed=1)
    assert again == out


@pytest.mark.parametrize("n, got", [
    (C3_N[C3_N >= 4], "got 0 and 4"),                       # no rare fragment
    (C3_N[C3_N < 1500], "got 6 and 1"),                     # one frequent fragment only
    (C3_N[(C3_N > 2) & (C3_N < 1000)], "got 3 and 0"),      # no frequent fragment
    (np.array([2, 5, 10, 999]), "got 1 and 0"),
])
def test_c3_needs_rare_and_frequent_fragments(n, got):
    table = pd.DataFrame({"n": n, "epistemic_std": n ** -0.5})
    with pytest.raises(ValueError, match=rf"C3 needs at least two fragments with n <= 3 and two "
                                         rf"with n >= 1000; {got}"):
        uncertainty.c3_statistics(table, seed=0)


def test_c3_two_rare_and_two_frequent_are_enough():
    n = np.array([1, 2, 5, 10, 20, 40, 80, 160, 320, 640, 1000, 1500])
    out = uncertainty.c3_statistics(pd.DataFrame({"n": n, "epistemic_std": n ** -0.5}), seed=0)
    assert out["std_ratio_rare_frequent"][0] == pytest.approx(
        np.median([1, 2 ** -0.5]) / np.median([1000 ** -0.5, 1500 ** -0.5]))


def test_c3_minimal_table():
    """Too few distinct counts would let the slope's bootstrap draw degenerate resamples: the
    statistics refuse up front, naming the need."""
    n = np.array([1, 2, 1000, 1500])
    with pytest.raises(ValueError, match=r"at least 10 distinct counts, got 4"):
        uncertainty.c3_statistics(pd.DataFrame({"n": n, "epistemic_std": n ** -0.5}), seed=0)


# --- the Dirichlet count model ------------------------------------------------------------


def _simulate(a: float, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    centre = rng.dirichlet([2.0, 2.0, 2.0], size=rows)
    p = np.stack([rng.dirichlet(a * c) for c in centre])
    n = rng.integers(1, 30, rows)
    return np.stack([rng.multinomial(k, q) for k, q in zip(n, p)]), centre


@pytest.mark.parametrize("a", [2.0, 20.0, 50.0])
def test_fit_dirichlet_concentration_recovers_the_truth(a):
    counts, centre = _simulate(a, 1500, seed=int(a))
    fitted = uncertainty.fit_dirichlet_concentration(counts, centre)
    assert isinstance(fitted, float)
    assert fitted == pytest.approx(a, rel=0.3)


def test_fit_dirichlet_concentration_ignores_unseen_rows():
    counts, centre = _simulate(20.0, 600, seed=1)
    padded = np.concatenate([counts, np.zeros((50, 3), dtype=int)])
    other = np.concatenate([centre, np.tile([0.1, 0.1, 0.8], (50, 1))])
    assert uncertainty.fit_dirichlet_concentration(padded, other) == pytest.approx(
        uncertainty.fit_dirichlet_concentration(counts, centre), rel=1e-6)


def test_fit_dirichlet_concentration_orders_spread():
    """Counts far from their centres need a weaker prior than counts close to them."""
    tight, centre = _simulate(100.0, 800, seed=2)
    loose, _ = _simulate(3.0, 800, seed=2)
    assert uncertainty.fit_dirichlet_concentration(loose, centre) < \
        uncertainty.fit_dirichlet_concentration(tight, centre)


@pytest.mark.parametrize("counts, centre, error, pattern", [
    (np.zeros((4, 3), dtype=int), np.full((4, 3), 1 / 3), ValueError,
     r"no row has any count: the concentration is not identified"),
    (np.ones((4, 3), dtype=int), np.full((3, 3), 1 / 3), ValueError,
     r"counts \(4, 3\) and centre \(3, 3\) must match"),
    (-np.ones((4, 3), dtype=int), np.full((4, 3), 1 / 3), ValueError,
     r"counts contains negative values"),
    (np.full((4, 3), 0.5), np.full((4, 3), 1 / 3), ValueError, r"counts must hold whole numbers"),
    (np.ones((4, 3), dtype=int), np.full((4, 3), 0.5), ValueError,
     r"centre rows must sum to 1"),
    (np.ones((4, 3), dtype=int), np.full((4, 3), np.nan), ValueError, r"centre contains NaN"),
])
def test_fit_dirichlet_concentration_rejects(counts, centre, error, pattern):
    with pytest.raises(error, match=pattern):
        uncertainty.fit_dirichlet_concentration(counts, centre)


@given(st.integers(0, 10_000), st.floats(0.05, 500.0))
def test_dirichlet_posterior_is_the_conjugate_update(seed, a):
    rng = np.random.default_rng(seed)
    centre = rng.dirichlet([1.0, 1.0, 1.0], size=5)
    centre = np.clip(centre, 1e-3, None)
    centre /= centre.sum(axis=1, keepdims=True)
    counts = rng.integers(0, 20, (5, 3))
    mean, std = uncertainty.dirichlet_posterior(counts, centre, a)
    n = counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mean, (a * centre + counts) / (a + n), rtol=1e-10)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-12)
    alpha = a * centre + counts
    beta_std = stats.beta(alpha, alpha.sum(axis=1, keepdims=True) - alpha).std()
    np.testing.assert_allclose(std, beta_std, rtol=1e-8)
    # a convex combination of the centre and the empirical frequencies, weight a / (a + n)
    w = a / (a + n)
    seen = n[:, 0] > 0
    np.testing.assert_allclose(mean[seen], (w * centre + (1 - w) * counts / np.maximum(n, 1))[seen],
                               rtol=1e-9)


def test_dirichlet_posterior_without_counts_is_the_prior():
    centre = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    mean, std = uncertainty.dirichlet_posterior(np.zeros((2, 3)), centre, 4.0)
    np.testing.assert_allclose(mean, centre, rtol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(centre * (1 - centre) / 5.0), rtol=1e-12)


def test_dirichlet_posterior_tightens_with_counts():
    centre = np.full((3, 3), 1 / 3)
    counts = np.array([[1, 0, 0], [10, 0, 0], [1000, 0, 0]])
    mean, std = uncertainty.dirichlet_posterior(counts, centre, 3.0)
    assert (np.diff(std[:, 0]) < 0).all()
    assert (np.diff(mean[:, 0]) > 0).all() and mean[2, 0] > 0.99


@pytest.mark.parametrize("counts, centre, concentration, pattern", [
    (np.ones((2, 3)), np.full((2, 3), 1 / 3), 0.0, r"concentration must be positive, got 0.0"),
    (np.ones((2, 3)), np.full((2, 3), 1 / 3), -1, r"concentration must be positive, got -1"),
    (np.ones((2, 3)), np.full((2, 3), 1 / 3), float("nan"),
     r"concentration must be positive, got nan"),
    (-np.ones((2, 3)), np.full((2, 3), 1 / 3), 1.0, r"counts contains negative values"),
    (np.ones((2, 3)), np.full((3, 3), 1 / 3), 1.0,
     r"counts \(2, 3\) and centre \(3, 3\) must match"),
    (np.ones((2, 2)), np.full((2, 3), 1 / 3), 1.0,
     r"counts \(2, 2\) and centre \(2, 3\) must match"),
    (np.ones((2, 3)), np.full((2, 3), 0.3), 1.0, r"centre rows must sum to 1"),
])
def test_dirichlet_posterior_rejects(counts, centre, concentration, pattern):
    with pytest.raises(ValueError, match=pattern):
        uncertainty.dirichlet_posterior(counts, centre, concentration)


def test_dirichlet_table(world):
    table = world["tables"]["last_layer_kron"]
    table = table[np.isfinite(_stack(table, "p_fam")).all(axis=1)].reset_index(drop=True)
    out = uncertainty.dirichlet_table(table, 5.0)
    pd.testing.assert_frame_equal(out[["family", "subject", "n"]],
                                  table[["family", "subject", "n"]])
    mean, std = uncertainty.dirichlet_posterior(_stack(table, "answer_counts"),
                                                _stack(table, "p_fam"), 5.0)
    np.testing.assert_allclose(_stack(out, "dirichlet"), mean)
    top = _stack(table, "answer_counts").argmax(axis=1)
    np.testing.assert_allclose(out["epistemic_std"], std[np.arange(len(top)), top])


# --- shrinkage and claim C4 ---------------------------------------------------------------

P_FAM = np.array([0.6, 0.3, 0.1])
UNIFORM = np.full(3, 1 / 3)


def _table(n, map_, la, p_fam=None, counts=None, p_true=None) -> pd.DataFrame:
    n = np.asarray(n)
    k = len(n)
    p_fam = np.tile(P_FAM, (k, 1)) if p_fam is None else np.asarray(p_fam)
    if counts is None:
        counts = np.zeros((k, 3), dtype=int)
        counts[:, 2] = n  # every answer "other": far from p_fam
    p_true = np.tile([0.5, 0.3, 0.2], (k, 1)) if p_true is None else np.asarray(p_true)
    return pd.DataFrame({"family": 0, "subject": np.arange(k), "n": n,
                         "map": list(np.asarray(map_, dtype=float)),
                         "la": list(np.asarray(la, dtype=float)),
                         "p_fam": list(p_fam), "p_true": list(p_true),
                         "answer_counts": list(counts)})


@pytest.fixture
def shrink_world():
    rng = np.random.default_rng(0)
    n = np.array([1, 2, 3, 1, 2, 3, 1, 4, 10, 500, 2, 3])
    map_ = rng.dirichlet([1, 1, 1], size=len(n))
    return n, map_


def test_shrinkage_table_keeps_rare_fragments_only(shrink_world):
    n, map_ = shrink_world
    table = _table(n, map_, np.tile(P_FAM, (len(n), 1)))
    out = uncertainty.shrinkage_table(table, 4.0)
    rare = np.flatnonzero(n <= 3)
    assert len(out) == 3 * len(rare)
    assert list(out.columns) == ["fragment", "n", "estimator", "tv_to_family", "tv_to_uniform",
                                 "tv_to_truth"]
    assert (out["n"] <= 3).all()
    for name in ("MAP", "LA", "Dirichlet"):
        part = out[out["estimator"] == name]
        np.testing.assert_array_equal(part["fragment"], rare)
        np.testing.assert_array_equal(part["n"], n[rare])
    for column in ("tv_to_family", "tv_to_uniform", "tv_to_truth"):
        assert out[column].between(0, 1).all(), column


def test_shrinkage_table_distances(shrink_world):
    n, map_ = shrink_world
    table = _table(n, map_, np.tile(P_FAM, (len(n), 1)))
    a = 4.0
    out = uncertainty.shrinkage_table(table, a).set_index(["estimator", "fragment"])
    rare = np.flatnonzero(n <= 3)
    la = out.loc["LA"]
    np.testing.assert_allclose(la["tv_to_family"], 0.0, atol=1e-12)
    np.testing.assert_allclose(la["tv_to_uniform"], metrics.tv_distance(P_FAM, UNIFORM))
    mp = out.loc["MAP"]
    np.testing.assert_allclose(mp["tv_to_family"],
                               metrics.tv_distance(map_[rare], np.tile(P_FAM, (len(rare), 1))))
    np.testing.assert_allclose(mp["tv_to_truth"],
                               metrics.tv_distance(map_[rare], np.tile([0.5, 0.3, 0.2],
                                                                       (len(rare), 1))))
    # the Dirichlet mean moves a share n / (a + n) of the way from p_fam to the counts
    empirical = np.array([0.0, 0.0, 1.0])
    expected = n[rare] / (a + n[rare]) * metrics.tv_distance(empirical, P_FAM)
    np.testing.assert_allclose(out.loc["Dirichlet", "tv_to_family"], expected, rtol=1e-10)


def test_shrinkage_table_needs_a_rare_fragment():
    table = _table([4, 10, 2000], np.tile(UNIFORM, (3, 1)), np.tile(UNIFORM, (3, 1)))
    with pytest.raises(ValueError, match=r"no fragment with n <= 3"):
        uncertainty.shrinkage_table(table, 1.0)


def test_shrinkage_summary(shrink_world):
    n, map_ = shrink_world
    out = uncertainty.shrinkage_table(_table(n, map_, np.tile(P_FAM, (len(n), 1))), 4.0)
    summary = uncertainty.shrinkage_summary(out)
    assert list(summary["estimator"]) == ["MAP", "LA", "Dirichlet"]
    assert list(summary.columns) == ["estimator", "tv_to_family", "tv_to_uniform", "tv_to_truth"]
    for _, row in summary.iterrows():
        part = out[out["estimator"] == row["estimator"]]
        for column in ("tv_to_family", "tv_to_uniform", "tv_to_truth"):
            assert row[column] == pytest.approx(round(part[column].mean(), 3), abs=1e-12)
    assert summary.set_index("estimator").loc["LA", "tv_to_family"] == 0.0
    # with seeds, one row per (seed, estimator)
    both = pd.concat([out.assign(seed=1), out.assign(seed=2, tv_to_family=1.0)])
    by_seed = uncertainty.shrinkage_summary(both)
    assert list(by_seed.columns[:2]) == ["seed", "estimator"] and len(by_seed) == 6
    assert (by_seed.loc[by_seed["seed"] == 2, "tv_to_family"] == 1.0).all()
    pd.testing.assert_frame_equal(
        by_seed[by_seed["seed"] == 1].drop(columns="seed").reset_index(drop=True), summary)


def test_c4_la_at_the_family_frequency_shrinks(shrink_world):
    n, map_ = shrink_world
    out = uncertainty.shrinkage_table(_table(n, map_, np.tile(P_FAM, (len(n), 1))), 4.0)
    c4 = uncertainty.c4_statistics(out, seed=0)
    value, low, high = c4["mean_tv_difference"]
    rare = n <= 3
    expected = -metrics.tv_distance(map_[rare], np.tile(P_FAM, (rare.sum(), 1))).mean()
    assert value == pytest.approx(expected)
    assert low <= value <= high < 0
    assert c4["ci_high_tv_difference"] == high
    assert uncertainty.c4_statistics(out, seed=0) == c4


def test_c4_la_equal_to_map_makes_no_difference(shrink_world):
    n, map_ = shrink_world
    out = uncertainty.shrinkage_table(_table(n, map_, map_), 4.0)
    c4 = uncertainty.c4_statistics(out, seed=0)
    assert c4["mean_tv_difference"] == (0.0, 0.0, 0.0)
    assert c4["ci_high_tv_difference"] == 0.0


def test_c4_la_further_from_the_family_than_map(shrink_world):
    n, _ = shrink_world
    table = _table(n, np.tile(P_FAM, (len(n), 1)), np.tile([0.0, 0.0, 1.0], (len(n), 1)))
    c4 = uncertainty.c4_statistics(uncertainty.shrinkage_table(table, 4.0), seed=0)
    value, low, high = c4["mean_tv_difference"]
    assert value == pytest.approx(metrics.tv_distance([0.0, 0.0, 1.0], P_FAM))
    assert 0 < low <= value <= high


# --- heldout_by_bucket --------------------------------------------------------------------


def test_heldout_buckets_follow_the_fragments():
    n = np.array([1, 1, 5, 20, 2000])
    table = _table(n, np.tile(UNIFORM, (5, 1)), np.tile(UNIFORM, (5, 1)))
    out = uncertainty.heldout_by_bucket(table, per_fragment=10, seed=0)
    assert list(out["bucket"]) == ["1", "4-30", ">1000"]
    assert list(out["fragments"]) == [2, 2, 1]
    assert list(out.columns) == ["bucket", "fragments", "nll_MAP", "ece_MAP", "nll_LA", "ece_LA"]
    np.testing.assert_allclose(out[["nll_MAP", "nll_LA"]], np.log(3), rtol=1e-12)


def test_heldout_truth_beats_uniform():
    rng = np.random.default_rng(0)
    n = np.array([1, 2, 3, 7, 40, 1500] * 3)
    p_true = rng.dirichlet([0.5, 0.5, 0.5], size=len(n))
    table = _table(n, p_true, np.tile(UNIFORM, (len(n), 1)), p_true=p_true)
    out = uncertainty.heldout_by_bucket(table, per_fragment=3000, seed=1)
    assert set(out["bucket"]) == {"1", "2-3", "4-30", "31-1000", ">1000"}
    assert (out["nll_MAP"] < out["nll_LA"]).all()
    np.testing.assert_allclose(out["nll_LA"], np.log(3), rtol=1e-12)
    # MAP = truth: its held-out NLL is the truth's entropy, and it is calibrated
    buckets = count_bucket(n)
    for _, row in out.iterrows():
        mask = np.asarray(buckets == row["bucket"])
        assert row["nll_MAP"] == pytest.approx(metrics.entropy(p_true[mask]).mean(), abs=0.05)
        assert row["ece_MAP"] < 0.05


def test_heldout_exact_case():
    """Certain answers: the NLL and ECE follow by hand."""
    table = _table([1, 2], np.tile([0.5, 0.25, 0.25], (2, 1)), np.tile([0.8, 0.1, 0.1], (2, 1)),
                   p_true=np.tile([1.0, 0.0, 0.0], (2, 1)))
    out = uncertainty.heldout_by_bucket(table, per_fragment=7, seed=0).set_index("bucket")
    assert out.loc["1", "nll_MAP"] == pytest.approx(np.log(2))
    assert out.loc["2-3", "nll_LA"] == pytest.approx(-np.log(0.8))
    assert out.loc["1", "ece_MAP"] == pytest.approx(0.5)
    assert out.loc["2-3", "ece_LA"] == pytest.approx(0.2)


def test_heldout_is_seeded():
    rng = np.random.default_rng(0)
    n = np.array([1, 2, 5, 50])
    p = rng.dirichlet([1, 1, 1], size=4)
    table = _table(n, p, np.tile(UNIFORM, (4, 1)), p_true=p)
    a = uncertainty.heldout_by_bucket(table, per_fragment=20, seed=3)
    pd.testing.assert_frame_equal(a, uncertainty.heldout_by_bucket(table, per_fragment=20, seed=3))
    b = uncertainty.heldout_by_bucket(table, per_fragment=20, seed=4)
    assert not np.allclose(a["nll_MAP"], b["nll_MAP"])


@pytest.mark.parametrize("per_fragment", [0, -1, 2.5, True, "3", None])
def test_heldout_bad_per_fragment(per_fragment):
    table = _table([1, 2], np.tile(UNIFORM, (2, 1)), np.tile(UNIFORM, (2, 1)))
    with pytest.raises(ValueError, match=r"per_fragment must be a positive integer, got "):
        uncertainty.heldout_by_bucket(table, per_fragment=per_fragment, seed=0)


def test_run_posteriors_describes_its_flavours_and_travels():
    """One replicate of the chapter on a tiny recipe: every flavour described, and the replicate
    picklable (the seed-parallel runner sends it back from a worker process)."""
    import pickle
    from bayes_at_scale.core.training import Recipe
    tiny = Recipe(corpus=dict(n_families=2, n_subjects=3, n_tokens=2000),
                  model=dict(d_model=8, n_heads=2, n_layers=1),
                  training=dict(steps=5, lr=1e-2, weight_decay=1e-5))
    rep = uncertainty.run_posteriors(tiny, 0, ("last_layer_kron", "last_layer_diag"), n_samples=8)
    table = uncertainty.flavour_table(rep)
    assert list(table["flavour"]) == ["last_layer_kron", "last_layer_diag"]
    assert (table["parameters"] > 0).all() and (table["prior precision"] > 0).all()
    back = pickle.loads(pickle.dumps(rep))
    pd.testing.assert_frame_equal(back.table(), rep.table())
    with pytest.raises(ValueError, match="unknown scale"):
        uncertainty.recipe("huge")



# --- round 2: the rare-token world, the restricted posterior, C17 and C18 -------------------



def _quiet(test):
    """laplace-torch's and torch's warnings about the round-2 posterior's hooks, silenced."""
    test = pytest.mark.filterwarnings(
        "ignore:By default `link_approx` is `probit`:UserWarning")(test)
    return pytest.mark.filterwarnings("ignore:Using a non-full backward hook:FutureWarning")(test)

TINY_R2 = training.Recipe(
    corpus=dict(n_families=3, n_subjects=10, n_tokens=3000, zipf_exponent=2.0,
                unique_subjects=True),
    model=dict(d_model=8, n_heads=2, n_layers=1),
    training=dict(steps=30, lr=3e-2, weight_decay=1e-5, progress=False))


@pytest.fixture(scope="module")
def round_two():
    """A tiny rare-token world (30 fragments, each its own subject token: 2 seen >= 300 times,
    6 at most 3 times), a tiny network, and the embedding-inclusive round-2 posterior over it
    (as fit_round_two builds it, with few marginal-likelihood steps) and its fragment table."""
    from bayes_at_scale.core.answer_posteriors import fit_answer_posterior
    from bayes_at_scale.core.posteriors import answer_flavour
    corpus = uncertainty.fragment_world(TINY_R2, 0)
    n = corpus.fragments["n"].to_numpy()
    assert (n >= 300).sum() >= 2 and ((n >= 1) & (n <= 3)).sum() >= 2 and (n > 0).all()
    contexts, counts = corpus.next_token_counts()
    lm = training.train_language_model(contexts, counts, corpus.vocab_size, TINY_R2, seed=0)
    config = answer_flavour(uncertainty.R2_FLAVOUR, prior_steps=20, map_steps=100)
    post = fit_answer_posterior(lm, contexts, counts, corpus.answer_tokens, config,
                                embedded_tokens=corpus.subject_token(np.arange(corpus.n_subjects)),
                                position=1)
    table = uncertainty.restricted_table(post, corpus, N_SAMPLES, seed=0)
    return {"corpus": corpus, "lm": lm, "posterior": post, "table": table}


def test_rare_token_recipe():
    from bayes_at_scale.worlds.fragments import FRAGMENT_RECIPES, RARE_TOKEN_RECIPES
    for scale in ("quick", "full"):
        r = uncertainty.rare_token_recipe(scale)
        assert r is RARE_TOKEN_RECIPES[scale]
        assert r.corpus["unique_subjects"] is True
        # chapter 1's network and training, only the world changes
        assert r.model == FRAGMENT_RECIPES[scale].model
        assert r.training == FRAGMENT_RECIPES[scale].training
    with pytest.raises(ValueError, match="unknown scale"):
        uncertainty.rare_token_recipe("huge")


@_quiet
def test_restricted_table_rows_and_columns(round_two):
    corpus, table = round_two["corpus"], round_two["table"]
    seen = np.flatnonzero(corpus.fragments["n"].to_numpy() > 0)
    assert len(table) == seen.size
    assert list(table.columns) == ["family", "subject", "n", "epistemic_std",
                                   "mutual_information", "map", "la", "map_logits", "p_fam",
                                   "p_true", "answer_counts"]
    np.testing.assert_array_equal(table["n"], corpus.fragments["n"].to_numpy()[seen])
    np.testing.assert_array_equal(_stack(table, "answer_counts"), corpus.answer_counts[seen])
    np.testing.assert_allclose(_stack(table, "p_fam"), corpus.family_pooled[seen])
    np.testing.assert_allclose(_stack(table, "p_true"), corpus.p_true[seen])
    for column in ("map", "la"):
        probs = _stack(table, column)
        assert probs.shape == (seen.size, len(ANSWERS))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (table["epistemic_std"] > 0).all() and (table["mutual_information"] >= 0).all()


@_quiet
def test_restricted_table_is_the_posterior(round_two):
    """map and map_logits are the posterior's mode, la its Monte Carlo predictive with the
    table's seed; the epistemic std is the spread of the top completion's probability and the
    mutual information the entropy decomposition's, over the same samples."""
    post, corpus, table = round_two["posterior"], round_two["corpus"], round_two["table"]
    prompts = corpus.prompts(np.flatnonzero(corpus.fragments["n"].to_numpy() > 0))
    np.testing.assert_allclose(_stack(table, "map"), post.map_probs(prompts))
    np.testing.assert_allclose(_stack(table, "map_logits"), post.map_logits(prompts))
    np.testing.assert_allclose(_stack(table, "la"),
                               post.predictive(prompts, N_SAMPLES, seed=0), atol=1e-12)
    samples = post.samples(prompts, N_SAMPLES, seed=0)
    top = _stack(table, "answer_counts").argmax(axis=1)
    np.testing.assert_allclose(table["epistemic_std"],
                               samples[:, np.arange(len(top)), top].std(axis=0, ddof=1))
    np.testing.assert_allclose(table["mutual_information"],
                               metrics.predictive_decomposition(samples)["epistemic"])
    again = uncertainty.restricted_table(post, corpus, N_SAMPLES, seed=0)
    np.testing.assert_array_equal(again["epistemic_std"], table["epistemic_std"])
    other = uncertainty.restricted_table(post, corpus, N_SAMPLES, seed=1)
    assert not np.allclose(other["epistemic_std"], table["epistemic_std"])


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.0, 7.5])
def test_matching_temperature_recovers_a_known_temperature(temperature):
    logits = np.random.default_rng(0).normal(scale=2.0, size=(40, 3))
    uniform = np.full(logits.shape, 1 / 3)
    target = metrics.tv_distance(uncertainty.tempered(logits, temperature), uniform).mean()
    assert uncertainty.matching_temperature(logits, target) == \
        pytest.approx(temperature, rel=1e-7)


def test_tempered():
    from scipy import special
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [50.0, 49.0, -50.0]])
    p = uncertainty.tempered(logits, 1.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p, special.softmax(logits, axis=1))
    np.testing.assert_allclose(uncertainty.tempered(logits + 7.0, 2.0),
                               uncertainty.tempered(logits, 2.0))
    np.testing.assert_allclose(uncertainty.tempered(logits, 2.0),
                               uncertainty.tempered(logits / 2.0, 1.0))
    np.testing.assert_allclose(uncertainty.tempered(logits[:2], 1e6), 1 / 3, atol=1e-5)
    assert np.isfinite(uncertainty.tempered(logits * 100, 0.01)).all()


@pytest.mark.parametrize("logits, target, pattern", [
    (np.array([[1.0, 0.0, -1.0]] * 4), 0.7, r"target TV to uniform 0\.7 lies outside"),
    (np.array([[1.0, 0.0, -1.0]] * 4), 0.0, r"target TV to uniform 0\.0 lies outside"),
    (np.array([[1.0, 0.0, -1.0]] * 4), -0.1, r"lies outside what a temperature"),
    (np.zeros((4, 3)), 0.1, r"lies outside what a temperature"),     # flat: TV is always 0
    (np.array([1.0, 0.0, -1.0]), 0.1, r"logits must be a finite \(fragments, answers >= 2\)"),
    (np.ones((4, 1)), 0.1, r"logits must be a finite"),
    (np.array([[1.0, np.nan, 0.0]]), 0.1, r"logits must be a finite"),
    (np.array([[1.0, np.inf, 0.0]]), 0.1, r"logits must be a finite"),
])
def test_matching_temperature_rejects(logits, target, pattern):
    with pytest.raises(ValueError, match=pattern):
        uncertainty.matching_temperature(logits, target)


@_quiet
def test_temperature_table_matches_la_distance_to_uniform(round_two):
    """Property 4: MAP_T, the mode's logits at the matched temperature, is as far from uniform
    as LA on average over the rare fragments."""
    table = round_two["table"]
    out, t = uncertainty.temperature_table(table)
    rare = table[table["n"] <= uncertainty.RARE_R2]
    assert len(out) == len(rare) >= 2 and t > 0
    np.testing.assert_array_equal(out["n"], rare["n"])
    assert out["tv_uniform_MAP_T"].mean() == pytest.approx(out["tv_uniform_LA"].mean(),
                                                           abs=1e-8)
    map_t = uncertainty.tempered(np.stack(rare["map_logits"]), t)
    np.testing.assert_allclose(out["tv_family_MAP_T"],
                               metrics.tv_distance(map_t, np.stack(rare["p_fam"])))
    np.testing.assert_allclose(out["tv_family_MAP"],
                               metrics.tv_distance(np.stack(rare["map"]), np.stack(rare["p_fam"])))
    np.testing.assert_allclose(out["tv_truth_LA"],
                               metrics.tv_distance(np.stack(rare["la"]), np.stack(rare["p_true"])))
    # at T = 1 the tempered mode is the mode
    np.testing.assert_allclose(uncertainty.tempered(np.stack(rare["map_logits"]), 1.0),
                               np.stack(rare["map"]), atol=1e-12)


def _r2_table(n, logits, la, p_fam=None) -> pd.DataFrame:
    table = _table(n, uncertainty.tempered(logits, 1.0), la, p_fam=p_fam)
    table["map_logits"] = list(np.asarray(logits, dtype=float))
    return table


def _replicate(table, oracle=None, seed=0):
    if oracle is None:
        oracle = table[["family", "subject", "n"]]
    return uncertainty.RoundTwoReplicate(seed, table, oracle, 1e-6, (1.0, 2.0), 10, 0.1)


def test_c18_la_equal_to_a_tempered_mode_makes_no_difference():
    """When LA is the mode at some temperature T0, the matched temperature is T0, MAP_T is LA,
    and C18's difference and its interval are zero."""
    rng = np.random.default_rng(1)
    n = np.array([1, 2, 3, 1, 2, 3, 1, 2, 50, 400])
    logits = rng.normal(scale=2.0, size=(len(n), 3))
    p_fam = rng.dirichlet([2, 2, 2], size=len(n))
    table = _r2_table(n, logits, uncertainty.tempered(logits, 3.0), p_fam)
    out, t = uncertainty.temperature_table(table)
    assert t == pytest.approx(3.0, rel=1e-7) and len(out) == 8
    np.testing.assert_allclose(out["tv_family_MAP_T"], out["tv_family_LA"], atol=1e-9)
    stats_ = uncertainty.c18_statistics(_replicate(table))
    value, low, high = stats_["tv_difference_la_mapt"]
    assert abs(value) < 1e-9 and abs(low) < 1e-9 and abs(high) < 1e-9
    assert stats_["ci_high_tv_difference"] == high


def test_c18_la_at_the_family_frequency_is_negative():
    rng = np.random.default_rng(2)
    n = np.array([1, 2, 3, 1, 2, 3, 1, 2])
    logits = rng.normal(scale=2.0, size=(len(n), 3))
    p_fam = rng.dirichlet([2, 2, 2], size=len(n))
    table = _r2_table(n, logits, p_fam, p_fam)
    out, _ = uncertainty.temperature_table(table)
    stats_ = uncertainty.c18_statistics(_replicate(table))
    value, low, high = stats_["tv_difference_la_mapt"]
    assert value == pytest.approx(-out["tv_family_MAP_T"].mean())
    assert low <= value <= high < 0


def test_temperature_table_drops_fragments_without_a_family_frequency():
    rng = np.random.default_rng(3)
    n = np.array([1, 2, 3, 3])
    logits = rng.normal(size=(4, 3))
    p_fam = rng.dirichlet([2, 2, 2], size=4)
    p_fam[0] = np.nan
    out, _ = uncertainty.temperature_table(_r2_table(n, logits, p_fam, p_fam=p_fam))
    np.testing.assert_array_equal(out["n"], [2, 3, 3])
    with pytest.raises(ValueError, match=r"C18 needs at least two fragments with n <= 3"):
        uncertainty.temperature_table(_r2_table(n[:2], logits[:2], np.nan_to_num(p_fam[:2]),
                                                p_fam=p_fam[:2]))
    with pytest.raises(ValueError, match=r"C18 needs at least two fragments with n <= 3"):
        uncertainty.temperature_table(_r2_table([4, 5, 300], logits[:3], p_fam[1:],
                                                p_fam=p_fam[1:]))


def _power_law_replicate(la_exponent, oracle_exponent, n=None, seed=0):
    n = np.array([1, 2, 3, 1, 2, 3, 10, 40, 100, 300, 500, 1000]) if n is None else n
    table = pd.DataFrame({"family": 0, "subject": np.arange(len(n)), "n": n,
                          "epistemic_std": 2.0 * n.astype(float) ** la_exponent})
    oracle = table[["family", "subject", "n"]].assign(
        epistemic_std=0.5 * n.astype(float) ** oracle_exponent)
    return _replicate(table, oracle, seed)


def test_c17_on_exact_power_laws():
    """LA's std ∝ n^-0.2 and the oracle's ∝ n^-0.5: the slope gap is -0.2 - (-0.25) = 0.05 and
    the rare/frequent ratio of medians is (2 / 500)^-0.2 (medians over n in {1,1,2,2,3,3} and
    {300, 500, 1000})."""
    rep = _power_law_replicate(-0.2, -0.5)
    s = uncertainty.c17_statistics(rep)
    assert s["rare_fragments"] == 6 and s["frequent_fragments"] == 3
    ratio, low, high = s["std_ratio_rare_frequent"]
    expected = np.median(2.0 * np.array([1, 1, 2, 2, 3, 3]) ** -0.2) / (2.0 * 500**-0.2)
    assert ratio == pytest.approx(expected) and low <= ratio <= high
    gap, low, high = s["slope_la_minus_half_oracle"]
    assert gap == pytest.approx(0.05) and low == pytest.approx(0.05) \
        and high == pytest.approx(0.05)
    slopes = uncertainty.slopes(rep)
    assert slopes["la"] == pytest.approx(-0.2) and slopes["oracle"] == pytest.approx(-0.5)


def test_c17_needs_rare_and_frequent_fragments():
    few_rare = _power_law_replicate(-0.5, -0.5, n=np.array([1, 10, 300, 400, 500]))
    with pytest.raises(ValueError, match=r"C17 needs at least two fragments with n <= 3 and "
                                         r"two with n >= 300; got 1 and 3"):
        uncertainty.c17_statistics(few_rare)
    few_frequent = _power_law_replicate(-0.5, -0.5, n=np.array([1, 2, 3, 299, 300]))
    with pytest.raises(ValueError, match=r"got 3 and 1"):
        uncertainty.c17_statistics(few_frequent)


@pytest.mark.slow
@_quiet
def test_run_round_two_end_to_end_and_travels():
    """One seed of the round-2 experiment on the tiny rare-token world: the posterior at its own
    mode, the oracle on the same fragments, C17 and C18 computable; the replicate picklable."""
    import pickle
    rep = uncertainty.run_round_two(TINY_R2, 0, n_samples=16)
    assert rep.seed == 0 and rep.gradient_norm < TOLERANCE and rep.fit_seconds > 0
    assert len(rep.prior_precision) == 3 and all(p > 0 for p in rep.prior_precision)
    assert rep.n_params == 3 * (8 + 1) + 30 * 8      # answer head + one embedding per subject
    assert (rep.table["seed"] == 0).all() and len(rep.table) == 30
    pd.testing.assert_frame_equal(rep.oracle[["family", "subject", "n"]],
                                  rep.table[["family", "subject", "n"]])
    assert set(uncertainty.c17_statistics(rep)) == {
        "rare_fragments", "frequent_fragments", "std_ratio_rare_frequent",
        "slope_la_minus_half_oracle"}
    assert set(uncertainty.c18_statistics(rep)) == {"tv_difference_la_mapt",
                                                    "ci_high_tv_difference"}
    back = pickle.loads(pickle.dumps(rep))
    pd.testing.assert_frame_equal(back.table, rep.table)
    corpus = uncertainty.fragment_world(TINY_R2, 0)
    lm = training.train_language_model(*corpus.next_token_counts(), corpus.vocab_size, TINY_R2,
                                       seed=0)
    head = uncertainty.fit_round_two(corpus, lm, "last_layer")
    assert head.view.embedding is None and head.n_params == 3 * (8 + 1)
    assert head.gradient_norm < TOLERANCE

"""Tests of bayes_at_scale.core.metrics: properties (hypothesis), known values, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis.extra.numpy import arrays
from hypothesis import strategies as st

from bayes_at_scale.core import checks
from bayes_at_scale.core import metrics

# --- strategies ---------------------------------------------------------------------------


@st.composite
def prob_rows(draw, n_rows=None, n_classes=None):
    """An ``(n, C)`` array of probability vectors (zeros allowed, rows sum to 1)."""
    n = draw(st.integers(1, 6)) if n_rows is None else n_rows
    c = draw(st.integers(2, 8)) if n_classes is None else n_classes
    weights = draw(st.lists(st.lists(st.floats(0, 1), min_size=c, max_size=c),
                            min_size=n, max_size=n))
    arr = np.asarray(weights, dtype=float) + 1e-9 * np.eye(1, c)  # no all-zero row
    return arr / arr.sum(axis=1, keepdims=True)


@st.composite
def prob_pairs(draw):
    p = draw(prob_rows())
    q = draw(prob_rows(n_rows=p.shape[0], n_classes=p.shape[1]))
    return p, q


@st.composite
def sampled_predictives(draw):
    """``(S, B, C)``: S posterior samples of B categorical predictions."""
    s, b, c = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(2, 6))
    rows = draw(prob_rows(n_rows=s * b, n_classes=c))
    return rows.reshape(s, b, c)


# --- TV distance --------------------------------------------------------------------------


@given(prob_pairs())
def test_tv_in_unit_interval_and_symmetric(pair):
    p, q = pair
    tv = metrics.tv_distance(p, q)
    assert tv.shape == (p.shape[0],)
    assert ((tv >= 0) & (tv <= 1)).all()
    np.testing.assert_allclose(tv, metrics.tv_distance(q, p), atol=1e-15)


@given(prob_rows())
def test_tv_of_identical_is_zero(p):
    np.testing.assert_array_equal(metrics.tv_distance(p, p), 0.0)


@st.composite
def prob_triples(draw):
    p, q = draw(prob_pairs())
    return p, q, draw(prob_rows(n_rows=p.shape[0], n_classes=p.shape[1]))


@given(prob_triples())
def test_tv_triangle_inequality(triple):
    p, q, r = triple
    assert (metrics.tv_distance(p, q) <= metrics.tv_distance(p, r)
            + metrics.tv_distance(r, q) + 1e-12).all()


@pytest.mark.parametrize("p, q, expected", [
    ([1, 0], [0, 1], 1.0),
    ([0.5, 0.5], [0.5, 0.5], 0.0),
    ([0.5, 0.5, 0.0], [0.25, 0.25, 0.5], 0.5),
    ([0.7, 0.2, 0.1], [0.6, 0.3, 0.1], 0.1),
])
def test_tv_known_values(p, q, expected):
    assert float(metrics.tv_distance(p, q)) == pytest.approx(expected)


def test_tv_accepts_tensors():
    p = torch.tensor([[0.2, 0.8]], requires_grad=True)
    assert metrics.tv_distance(p, torch.tensor([[0.8, 0.2]])) == pytest.approx([0.6])


# --- KL divergence ------------------------------------------------------------------------


@given(prob_pairs())
def test_kl_non_negative(pair):
    p, q = pair
    assert (metrics.kl_divergence(p, q) >= 0).all()


@given(prob_rows())
def test_kl_of_identical_is_zero(p):
    np.testing.assert_allclose(metrics.kl_divergence(p, p), 0.0, atol=1e-12)


@given(prob_pairs())
def test_pinsker_inequality(pair):
    p, q = pair
    kl = metrics.kl_divergence(p, q)
    tv = metrics.tv_distance(p, q)
    assert (tv <= np.sqrt(kl / 2) + 1e-9).all()


def test_kl_known_value_and_infinity():
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(metrics.kl_divergence([0.5, 0.5], [0.9, 0.1])) == pytest.approx(expected)
    assert float(metrics.kl_divergence([0.5, 0.5], [1.0, 0.0])) == math.inf
    # p = 0 where q > 0 costs nothing
    assert float(metrics.kl_divergence([1.0, 0.0], [0.5, 0.5])) == pytest.approx(math.log(2))


# --- entropy and the predictive decomposition ---------------------------------------------


@given(prob_rows())
def test_entropy_bounds(p):
    h = metrics.entropy(p)
    assert (h >= -1e-12).all()
    assert (h <= math.log(p.shape[1]) + 1e-9).all()


@pytest.mark.parametrize("c", [2, 3, 10, 50])
def test_entropy_known_values(c):
    assert float(metrics.entropy(np.full(c, 1 / c))) == pytest.approx(math.log(c))
    assert float(metrics.entropy(np.eye(c)[0])) == 0.0
    assert float(metrics.entropy([0.25, 0.75])) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


@given(sampled_predictives())
def test_decomposition_properties(samples):
    d = metrics.predictive_decomposition(samples)
    total, aleatoric, epistemic = d["total"], d["aleatoric"], d["epistemic"]
    assert total.shape == aleatoric.shape == epistemic.shape == samples.shape[1:-1]
    assert (epistemic >= 0).all()
    assert (epistemic <= total + 1e-12).all()
    assert (total <= math.log(samples.shape[-1]) + 1e-9).all()
    np.testing.assert_allclose(aleatoric + epistemic, total, atol=1e-12)
    np.testing.assert_array_equal(metrics.mutual_information(samples), epistemic)


@given(prob_rows())
def test_no_epistemic_uncertainty_when_samples_agree(p):
    samples = np.stack([p] * 5)
    d = metrics.predictive_decomposition(samples)
    np.testing.assert_allclose(d["epistemic"], 0.0, atol=1e-12)
    np.testing.assert_allclose(d["total"], metrics.entropy(p), atol=1e-12)


def test_disagreeing_confident_samples_are_purely_epistemic():
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    d = metrics.predictive_decomposition(samples)
    assert d["aleatoric"] == pytest.approx([0.0])
    assert d["epistemic"] == pytest.approx([math.log(2)])
    assert d["total"] == pytest.approx([math.log(2)])


# --- calibration --------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_ece_of_calibrated_predictions_is_small(n_classes):
    rng = np.random.default_rng(n_classes)
    probs = rng.dirichlet(np.ones(n_classes), size=20_000)
    labels = (probs.cumsum(axis=1) < rng.random((len(probs), 1))).sum(axis=1)
    assert metrics.ece(probs, labels) < 0.02


def test_ece_of_overconfident_predictions_is_large():
    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.ones(3), size=10_000)
    labels = (truth.cumsum(axis=1) < rng.random((len(truth), 1))).sum(axis=1)
    confident = np.full_like(truth, 0.01)
    confident[np.arange(len(truth)), truth.argmax(axis=1)] = 0.98
    assert metrics.ece(confident, labels) > 0.3
    assert metrics.ece(confident, labels) > 10 * metrics.ece(truth, labels)


@pytest.mark.parametrize("confidence, correct, expected", [
    (0.8, 8, 0.0),   # 80% confident and right 8 times in 10
    (1.0, 5, 0.5),   # certain and right half of the time
    (0.6, 10, 0.4),  # underconfident
])
def test_ece_exact_values(confidence, correct, expected):
    probs = np.tile([confidence, 1 - confidence], (10, 1))
    labels = np.array([0] * correct + [1] * (10 - correct))
    assert metrics.ece(probs, labels) == pytest.approx(expected, abs=1e-6)


# --- AUROC --------------------------------------------------------------------------------


def _separated(scores, cut):
    scores = np.sort(np.asarray(scores, dtype=float))
    return scores, (np.arange(len(scores)) >= cut).astype(int)  # the top scores are positive


@given(st.lists(st.integers(0, 1000), min_size=2, max_size=30, unique=True), st.data())
def test_auroc_separating_and_reversed(scores, data):
    scores = np.asarray(scores) / 1000  # probability-like scores in [0, 1]
    scores, labels = _separated(scores, data.draw(st.integers(1, len(scores) - 1)))
    assert metrics.auroc(scores, labels) == pytest.approx(1.0)
    assert metrics.auroc(1 - scores, labels) == pytest.approx(0.0)
    assert metrics.auroc(scores, 1 - labels) == pytest.approx(0.0)


@pytest.mark.parametrize("scores, labels", [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]),
    ([-3.0, -1.0, 2.0, 5.0], [0, 0, 1, 1]),
    ([-50.0, -40.0, -30.0, -20.0], [0, 0, 1, 1]),
    pytest.param([37.0, 38.0], [0, 1], id="logit-like-37-38"),
    pytest.param([1000.0, 2000.0, 3000.0, 4000.0], [0, 0, 1, 1],
                 id="counts"),
    pytest.param([40.0, 45.0, 60.0, 80.0], [0, 0, 1, 1], id="nll-like"),
])
def test_auroc_of_separating_scores_on_any_scale(scores, labels):
    """AUROC is a rank statistic: separating scores give 1 whatever their scale."""
    assert metrics.auroc(scores, labels) == pytest.approx(1.0)
    assert metrics.auroc(-np.asarray(scores), labels) == pytest.approx(0.0)


def test_auroc_known_value():
    assert metrics.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_of_noise_is_one_half():
    rng = np.random.default_rng(1)
    assert metrics.auroc(rng.random(20_000), rng.integers(0, 2, 20_000)) == pytest.approx(
        0.5, abs=0.02)


# --- correlation and regression -----------------------------------------------------------


@given(st.lists(st.integers(-1000, 1000), min_size=3, max_size=40, unique=True))
def test_spearman_of_monotone_transforms(x):
    x = np.asarray(x, dtype=float)
    assert metrics.spearman(x, np.exp(x / 100)) == pytest.approx(1.0)
    assert metrics.spearman(x, x**3) == pytest.approx(1.0)
    assert metrics.spearman(x, -x) == pytest.approx(-1.0)


@given(st.floats(-3, 3), st.floats(0.01, 100))
def test_loglog_slope_recovers_power_law(exponent, scale):
    x = np.logspace(0, 4, 30)
    assert metrics.loglog_slope(x, scale * x**exponent) == pytest.approx(exponent, abs=1e-9)


def test_loglog_slope_with_noise():
    rng = np.random.default_rng(2)
    x = np.logspace(0, 5, 500)
    y = 3 * x**-0.5 * np.exp(rng.normal(0, 0.1, x.size))
    assert metrics.loglog_slope(x, y) == pytest.approx(-0.5, abs=0.02)


# --- bootstrap ----------------------------------------------------------------------------


def test_bootstrap_ci_covers_the_true_mean():
    rng = np.random.default_rng(3)
    sample = rng.normal(3.0, 1.0, 2000)
    low, high = metrics.bootstrap_ci(np.mean, sample, seed=0)
    assert low < 3.0 < high
    assert low < sample.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.2)


def test_bootstrap_ci_is_reproducible():
    sample = np.random.default_rng(4).normal(size=200)
    a = metrics.bootstrap_ci(np.mean, sample, seed=7, n_resamples=500)
    b = metrics.bootstrap_ci(np.mean, sample, seed=7, n_resamples=500)
    c = metrics.bootstrap_ci(np.mean, sample, seed=8, n_resamples=500)
    assert a == b
    assert a != c


def test_bootstrap_ci_confidence_widens_interval():
    sample = np.random.default_rng(5).normal(size=300)
    lo90, hi90 = metrics.bootstrap_ci(np.mean, sample, seed=0, confidence=0.9, n_resamples=1000)
    lo99, hi99 = metrics.bootstrap_ci(np.mean, sample, seed=0, confidence=0.99, n_resamples=1000)
    assert lo99 < lo90 < hi90 < hi99


def test_bootstrap_ci_paired_difference():
    rng = np.random.default_rng(6)
    a = rng.normal(0, 1, 500)
    b = a + 0.5 + rng.normal(0, 0.01, 500)  # b - a is 0.5 almost exactly
    low, high = metrics.bootstrap_ci(lambda x, y: np.mean(y - x), a, b, seed=0, n_resamples=500)
    assert low < 0.5 < high
    assert high - low < 0.01
    lo_u, hi_u = metrics.bootstrap_ci(lambda x, y: np.mean(y) - np.mean(x), a, b[:400], seed=0,
                                      n_resamples=500, paired=False)
    assert hi_u - lo_u > 10 * (high - low)  # unpaired, the shared noise does not cancel


# --- bad input ----------------------------------------------------------------------------

NAN = float("nan")
INF = float("inf")

PROBABILITY_ERRORS = [
    ([], r"is empty"),
    ([0.5, NAN], r"contains NaN"),
    ([0.5, INF], r"contains infinite values"),
    ([1.2, -0.2], r"has negative probabilities"),
    ([0.5, 0.4], r"rows must sum to 1 \(largest deviation 0.1\)"),
    ([[0.5, 0.5], [0.9, 0.2]], r"rows must sum to 1"),
    (0.5, r"must have at least one axis of categories"),
]


@pytest.mark.parametrize("bad, pattern", PROBABILITY_ERRORS)
def test_check_probabilities_rejects(bad, pattern):
    with pytest.raises(ValueError, match=r"^p " + pattern):
        checks.check_probabilities(bad)
    with pytest.raises(ValueError, match=r"^weights " + pattern):
        checks.check_probabilities(bad, name="weights")


@pytest.mark.parametrize("bad, pattern", PROBABILITY_ERRORS)
@pytest.mark.parametrize("function", ["tv", "kl", "entropy"])
def test_probability_functions_reject(bad, pattern, function):
    good = np.full_like(np.asarray(bad, dtype=float), 0.5) if np.ndim(bad) else 0.5
    call = {"tv": lambda x: metrics.tv_distance(x, good),
            "kl": lambda x: metrics.kl_divergence(good, x),
            "entropy": metrics.entropy}[function]
    with pytest.raises(ValueError, match=pattern):
        call(bad)


def test_check_probabilities_tolerance():
    assert checks.check_probabilities([0.5, 0.5 + 5e-5]).shape == (2,)
    with pytest.raises(ValueError, match=r"rows must sum to 1"):
        checks.check_probabilities([0.5, 0.5 + 5e-5], atol=1e-6)


@pytest.mark.parametrize("function", [metrics.tv_distance, metrics.kl_divergence])
def test_distance_shape_mismatch(function):
    with pytest.raises(ValueError, match=r"p and q must have the same shape, got \(2,\) and \(3,\)"):
        function([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"must have the same shape"):
        function([[0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]])


def test_q_is_named_in_errors():
    with pytest.raises(ValueError, match=r"^q rows must sum to 1"):
        metrics.tv_distance([0.5, 0.5], [0.5, 0.6])


@pytest.mark.parametrize("bad, pattern", [
    (np.array([0.5, 0.5]), r"samples must have shape \(S, \.\.\., C\), got \(2,\)"),
    (np.array([[0.5, 0.6]]), r"samples rows must sum to 1"),
    (np.array([[NAN, 1.0]]), r"samples contains NaN"),
    (np.zeros((0, 2)), r"samples is empty"),
])
def test_decomposition_rejects(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.predictive_decomposition(bad)
    with pytest.raises(ValueError, match=pattern):
        metrics.mutual_information(bad)


P3 = np.full((4, 3), 1 / 3)


@pytest.mark.parametrize("probs, labels, kwargs, pattern", [
    (P3[0], [0], {}, r"probs must have shape \(n, classes\), got \(3,\)"),
    (P3[None], [0, 1, 2, 0], {}, r"probs must have shape \(n, classes\), got \(1, 4, 3\)"),
    (P3, [0, 1, 2], {}, r"labels must have shape \(4,\), got \(3,\)"),
    (P3, [[0, 1, 2, 0]], {}, r"labels must have shape \(4,\), got \(1, 4\)"),
    (P3, [0, 1, 2, 0.5], {}, r"labels must be non-negative integers"),
    (P3, [0, 1, 2, -1], {}, r"labels must be non-negative integers"),
    (P3, [0, 1, 2, 3], {}, r"labels must lie in 0..2"),
    (P3, [0, 1, 2, NAN], {}, r"labels contains NaN"),
    (P3 * 2, [0, 1, 2, 0], {}, r"probs rows must sum to 1"),
    (P3, [0, 1, 2, 0], dict(n_bins=0), r"n_bins must be a positive integer, got 0"),
    (P3, [0, 1, 2, 0], dict(n_bins=2.5), r"n_bins must be a positive integer, got 2.5"),
    (P3, [0, 1, 2, 0], dict(n_bins=True), r"n_bins must be a positive integer, got True"),
])
def test_ece_rejects(probs, labels, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.ece(probs, labels, **kwargs)


@pytest.mark.parametrize("x, y, pattern", [
    ([1, 2], [1, 2], r"spearman needs two one-dimensional samples of at least 3 values"),
    ([[1, 2, 3]], [[1, 2, 3]], r"spearman needs two one-dimensional samples"),
    ([1, 2, 3], [1, 2], r"x and y must have the same shape"),
    ([1, 2, NAN], [1, 2, 3], r"x contains NaN"),
    ([1, 2, 3], [1, INF, 3], r"y contains infinite values"),
    ([], [], r"x is empty"),
])
def test_spearman_rejects(x, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.spearman(x, y)


@pytest.mark.parametrize("x, y, pattern", [
    ([1, 2, 0], [1, 2, 3], r"log-log slope needs strictly positive x and y"),
    ([1, 2, 3], [1, -2, 3], r"log-log slope needs strictly positive x and y"),
    ([5], [1], r"log-log slope needs at least two distinct x values"),
    ([2, 2, 2], [1, 2, 3], r"log-log slope needs at least two distinct x values"),
    ([[1, 2]], [[1, 2]], r"log-log slope needs at least two distinct x values"),
    ([1, 2, 3], [1, 2], r"x and y must have the same shape"),
    ([1, NAN], [1, 2], r"x contains NaN"),
])
def test_loglog_slope_rejects(x, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.loglog_slope(x, y)


@pytest.mark.parametrize("samples, kwargs, pattern", [
    ((), {}, r"bootstrap_ci needs at least one sample"),
    (([1.0, 2.0, 3.0], [1.0, 2.0]), {}, r"paired samples must have the same length"),
    (([1.0],), {}, r"bootstrap needs at least two observations"),
    (([1.0, 2.0, 3.0],), dict(confidence=0.0), r"confidence must lie in \(0, 1\), got 0.0"),
    (([1.0, 2.0, 3.0],), dict(confidence=1.0), r"confidence must lie in \(0, 1\), got 1.0"),
    (([1.0, 2.0, 3.0],), dict(confidence=95), r"confidence must lie in \(0, 1\), got 95"),
    (([1.0, NAN, 3.0],), {}, r"sample 0 contains NaN"),
    (([1.0, 2.0], []), dict(paired=False), r"sample 1 is empty"),
])
def test_bootstrap_ci_rejects(samples, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.bootstrap_ci(np.mean, *samples, seed=0, **kwargs)


# --- count_entropy --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(2, 5)),
              elements=st.integers(0, 50)))
def test_count_entropy_is_the_lowest_achievable_nll(counts):
    assume(counts.sum() > 0)
    h = metrics.count_entropy(counts)
    rows = counts.sum(axis=1, keepdims=True)
    seen = rows[:, 0] > 0
    empirical = counts[seen] / rows[seen]
    with np.errstate(divide="ignore"):
        nll_empirical = -(counts[seen] * np.where(counts[seen] > 0, np.log(empirical), 0)).sum()
    assert h == pytest.approx(nll_empirical / counts.sum(), abs=1e-9)
    uniform = -np.log(1 / counts.shape[1])  # NLL of any other model is at least h (Gibbs)
    assert 0 <= h <= uniform + 1e-12


def test_count_entropy_hand_case():
    assert metrics.count_entropy([[1, 1], [2, 0]]) == pytest.approx(np.log(2) / 2)


@pytest.mark.parametrize("counts, pattern", [
    ([1, 2], r"shape \(contexts, tokens\)"),
    ([[0, 0]], r"all zero"),
    ([[1, -1]], r"non-negative whole"),
    ([[0.5, 1]], r"non-negative whole"),
    ([[np.nan, 1]], r"NaN"),
])
def test_count_entropy_rejects_bad_counts(counts, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.count_entropy(counts)


# --- ROC curve ----------------------------------------------------------------------------


@st.composite
def scored_labels(draw):
    """Scores (ties likely: a few distinct integer values) and 0/1 labels with both classes."""
    n = draw(st.integers(2, 40))
    scores = np.asarray(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype=float)
    labels = np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    assume(0 < labels.sum() < n)
    return scores, labels


def _check_roc(fpr, tpr):
    assert isinstance(fpr, np.ndarray) and isinstance(tpr, np.ndarray)
    assert fpr.shape == tpr.shape and fpr.ndim == 1 and fpr.size >= 2
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()


@given(scored_labels())
def test_roc_curve_area_is_the_auroc(pair):
    scores, labels = pair
    fpr, tpr = metrics.roc_curve(scores, labels)
    _check_roc(fpr, tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.auroc(scores, labels), abs=1e-6)


def test_roc_curve_area_on_seeded_continuous_scores():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = labels + rng.normal(0, 1.0, 500)  # informative, not separating
    fpr, tpr = metrics.roc_curve(scores, labels)
    _check_roc(fpr, tpr)
    auc = metrics.auroc(scores, labels)
    assert 0.6 < auc < 0.95
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=1e-6)
    assert len(fpr) == 501  # distinct scores: one step per example, plus the origin


@given(scored_labels())
def test_roc_curve_is_invariant_to_monotone_transforms(pair):
    scores, labels = pair
    fpr, tpr = metrics.roc_curve(scores, labels)
    for transformed in (np.exp(scores), 1000 * scores + 7, scores**3, 40 + scores / 100,
                        1 / (1 + np.exp(-scores))):
        f2, t2 = metrics.roc_curve(transformed, labels)
        np.testing.assert_array_equal(f2, fpr)
        np.testing.assert_array_equal(t2, tpr)


@pytest.mark.parametrize("scores", [[0.1, 0.2, 0.8, 0.9], [37.0, 38.0, 39.0, 40.0],
                                    [1000.0, 2000.0, 3000.0, 4000.0], [-50.0, -40.0, -30.0, -20.0]])
def test_roc_curve_of_separating_scores_on_any_scale(scores):
    labels = [0, 0, 1, 1]
    fpr, tpr = metrics.roc_curve(scores, labels)
    _check_roc(fpr, tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(1.0)
    # the curve goes up the left edge: all positives flagged before any negative
    assert tpr[fpr == 0].max() == 1.0
    fpr, tpr = metrics.roc_curve(-np.asarray(scores), labels)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.0)


def test_roc_curve_known_values():
    fpr, tpr = metrics.roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])


def test_roc_curve_of_tied_scores_is_the_diagonal():
    fpr, tpr = metrics.roc_curve([5.0, 5.0, 5.0, 5.0], [0, 1, 1, 0])
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(tpr, [0, 1])


def test_roc_curve_accepts_tensors():
    fpr, tpr = metrics.roc_curve(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])


@pytest.mark.parametrize("scores, labels, pattern", [
    ([[0.1, 0.2]], [0, 1], r"scores must be one-dimensional, got shape \(1, 2\)"),
    ([0.1, 0.2, 0.3], [0, 1], r"labels must have shape \(3,\), got \(2,\)"),
    ([0.1, 0.2], [0, 2], r"labels must be 0 or 1"),
    ([0.1, 0.2], [1, 1], r"AUROC needs both positive and negative labels"),
    ([0.1, 0.2], [0, 0], r"AUROC needs both positive and negative labels"),
    ([0.1, NAN], [0, 1], r"scores contains NaN"),
    ([0.1, INF], [0, 1], r"scores contains infinite values"),
    ([], [], r"scores is empty"),
    ([0.1, 0.2], [0, 0.5], r"labels must be non-negative integers"),
    ([0.1, 0.2], [0, -1], r"labels must be non-negative integers"),
])
def test_auroc_and_roc_curve_reject(scores, labels, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.roc_curve(scores, labels)
    with pytest.raises(ValueError, match=pattern):
        metrics.auroc(scores, labels)


# --- fit_power_law -----------------------------------------------------------------------------


def test_fit_power_law_recovers_a_known_exponent():
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    exponent, prefactor = metrics.fit_power_law(x, 3.0 * x**1.5)
    assert exponent == pytest.approx(1.5, abs=1e-12)
    assert prefactor == pytest.approx(3.0, rel=1e-12)
    rng = np.random.default_rng(0)
    x = np.logspace(2, 6, 60)
    y = 0.02 * x**0.75 * np.exp(rng.normal(0, 0.1, x.size))
    exponent, prefactor = metrics.fit_power_law(x, y)
    assert exponent == pytest.approx(0.75, abs=0.03)
    assert prefactor == pytest.approx(0.02, rel=0.3)


@pytest.mark.parametrize("x, y, message", [
    ([1, 2, 0], [1, 2, 3], "strictly positive"),
    ([1, 2, 3], [1, -2, 3], "strictly positive"),
    ([1, 2, 3], [1, 2], "same length"),
    ([1, 2, np.nan], [1, 2, 3], "NaN"),
    ([2, 2, 2], [1, 2, 3], "two distinct"),
    ([5], [1], "two distinct"),
])
def test_fit_power_law_rejects_bad_input(x, y, message):
    with pytest.raises(ValueError, match=message):
        metrics.fit_power_law(x, y)


def test_fit_power_law_exact():
    x = np.logspace(2, 6, 9)
    exponent, prefactor = metrics.fit_power_law(x, 3.0 * x**-0.7)
    assert exponent == pytest.approx(-0.7, abs=1e-12)
    assert prefactor == pytest.approx(3.0, rel=1e-10)


@given(exponent=st.floats(-2.0, 2.0), prefactor=st.floats(1e-3, 1e3))
def test_fit_power_law_recovers_any_law(exponent, prefactor):
    x = np.array([10.0, 200.0, 3e3, 4e5])
    b, a = metrics.fit_power_law(list(x), list(prefactor * x**exponent))
    assert b == pytest.approx(exponent, abs=1e-9)
    assert a == pytest.approx(prefactor, rel=1e-8)


def test_fit_power_law_with_noise(rng):
    x = np.logspace(2, 6, 200)
    y = 3.0 * x**-0.7 * np.exp(rng.normal(0, 0.1, x.size))
    exponent, prefactor = metrics.fit_power_law(x, y)
    assert exponent == pytest.approx(-0.7, abs=0.02)
    assert prefactor == pytest.approx(3.0, rel=0.15)


def test_fit_power_law_needs_positive_values():
    with pytest.raises(ValueError, match=r"strictly positive"):
        metrics.fit_power_law([1, 2, 3], [1.0, 0.0, 2.0])


# --- a score chosen on one half, judged on the other ---------------------------------------


def test_split_halves():
    a = metrics.split_halves(11, seed=5)
    assert a.dtype == bool and a.shape == (11,) and a.sum() == 5
    np.testing.assert_array_equal(a, metrics.split_halves(11, seed=5))
    assert not np.array_equal(metrics.split_halves(1000, seed=5),
                              metrics.split_halves(1000, seed=6))
    with pytest.raises(ValueError, match=r"n must be an integer >= 2"):
        metrics.split_halves(1, seed=0)


def test_choose_score_by_hand():
    labels = np.array([0, 1] * 20)
    selection = np.arange(40) % 4 < 2   # two halves, each holding both labels
    good_on_selection = np.where(selection, labels, 1 - labels).astype(float)
    good_on_evaluation = 1.0 - good_on_selection
    candidates = {"a": good_on_evaluation, "b": good_on_selection}
    assert metrics.choose_score(candidates, labels, selection) == "b"
    assert metrics.choose_score(candidates, labels, ~selection) == "a"
    # ties go to the first candidate
    assert metrics.choose_score({"x": labels * 1.0, "y": labels * 2.0}, labels,
                                      selection) == "x"

"""Distances, information measures, calibration, ranking and confidence intervals.

Thin, validated wrappers: ECE and AUROC come from torchmetrics, correlations,
regressions and bootstrap intervals from scipy; the information measures are one line
each on top of a strict check that the inputs are probability vectors.  Every function
raises a ``ValueError`` that names the problem (shape, NaN, negative mass, rows not
summing to 1) rather than returning a silently wrong number.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_roc,
    multiclass_calibration_error,
)

from .checks import (
    as_array,
    check_int,
    check_labels,
    check_positive_int,
    check_probabilities,
    check_same_shape,
)


def tv_distance(p, q) -> np.ndarray:
    """Total-variation distance ``0.5 * sum |p - q|`` along the last axis, in [0, 1]."""
    p, q = check_probabilities(p, "p"), check_probabilities(q, "q")
    check_same_shape(p, q, "p and q")
    return np.clip(0.5 * np.abs(p - q).sum(axis=-1), 0.0, 1.0)


def kl_divergence(p, q) -> np.ndarray:
    """KL(p || q) in nats along the last axis; infinite where q = 0 < p."""
    p, q = check_probabilities(p, "p"), check_probabilities(q, "q")
    check_same_shape(p, q, "p and q")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return np.maximum(terms.sum(axis=-1), 0.0)


def entropy(p) -> np.ndarray:
    """Shannon entropy in nats along the last axis."""
    return stats.entropy(check_probabilities(p, "p"), axis=-1)


def count_entropy(counts) -> float:
    """Conditional entropy (nats per token) of next-token counts ``(contexts, tokens)``:
    the NLL of the empirical frequencies themselves, a lower bound on any model's
    training NLL."""
    c = as_array(counts, "counts")
    if c.ndim != 2:
        raise ValueError(f"counts must have shape (contexts, tokens), got {c.shape}")
    if (c < 0).any() or not np.all(c == np.round(c)):
        raise ValueError("counts must be non-negative whole numbers")
    total = c.sum()
    if total == 0:
        raise ValueError("counts are all zero")
    rows = c.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(c > 0, c * np.log(c / rows), 0.0)
    return float(-terms.sum() / total)


def predictive_decomposition(samples) -> dict[str, np.ndarray]:
    """Split the entropy of a sampled predictive into aleatoric and epistemic parts.

    ``samples`` has shape ``(S, ..., C)``: S posterior samples of categorical
    predictions. Returns ``total`` = H[mean_s p_s], ``aleatoric`` = mean_s H[p_s] and
    ``epistemic`` (the mutual information between the prediction and the weights) =
    total - aleatoric >= 0.
    """
    s = check_probabilities(samples, "samples")
    if s.ndim < 2:
        raise ValueError(f"samples must have shape (S, ..., C), got {s.shape}")
    total = entropy(s.mean(axis=0))
    aleatoric = entropy(s).mean(axis=0)
    epistemic = np.clip(total - aleatoric, 0.0, None)
    return {
        "total": total,
        "aleatoric": np.minimum(aleatoric, total),
        "epistemic": epistemic,
    }


def mutual_information(samples) -> np.ndarray:
    """Epistemic part of the predictive entropy (see
    :func:`predictive_decomposition`)."""
    return predictive_decomposition(samples)["epistemic"]


def ece(probs, labels, n_bins: int = 15) -> float:
    """Expected calibration error (top-label, L1, equal-width bins) via torchmetrics."""
    p = check_probabilities(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, classes), got {p.shape}")
    y = check_labels(labels, p.shape[0])
    if y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}")
    check_positive_int("n_bins", n_bins)
    value = multiclass_calibration_error(
        torch.as_tensor(p, dtype=torch.float64),
        torch.as_tensor(y),
        num_classes=p.shape[1],
        n_bins=n_bins,
        norm="l1",
    )
    return float(value)


def _ranked_binary(scores, labels) -> tuple[torch.Tensor, torch.Tensor]:
    s = as_array(scores, "scores")
    if s.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {s.shape}")
    y = check_labels(labels, s.shape[0])
    if y.max() > 1:
        raise ValueError("labels must be 0 or 1")
    if y.min() == y.max():
        raise ValueError("AUROC needs both positive and negative labels")
    # ROC curves depend on the ranks only; torchmetrics reads scores outside [0, 1] as
    # logits and squashes them, which ties large scores - so hand it ranks scaled into
    # [0, 1].
    ranks = stats.rankdata(s) / s.size
    return torch.as_tensor(ranks, dtype=torch.float64), torch.as_tensor(y)


def auroc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive) via
    torchmetrics."""
    return float(binary_auroc(*_ranked_binary(scores, labels)))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of ``scores`` for binary ``labels``
    (torchmetrics)."""
    fpr, tpr, _ = binary_roc(*_ranked_binary(scores, labels))
    return fpr.numpy(), tpr.numpy()


def spearman(x, y) -> float:
    """Spearman rank correlation (scipy)."""
    x, y = as_array(x, "x"), as_array(y, "y")
    check_same_shape(x, y, "x and y")
    if x.ndim != 1 or x.size < 3:
        raise ValueError(
            "spearman needs two one-dimensional samples of at least 3 values"
        )
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("spearman is undefined when a sample is constant")
    return float(stats.spearmanr(x, y).statistic)


def loglog_slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x) (scipy.stats.linregress)."""
    x, y = as_array(x, "x"), as_array(y, "y")
    check_same_shape(x, y, "x and y")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("log-log slope needs strictly positive x and y")
    if x.ndim != 1 or x.size < 2 or np.ptp(x) == 0:
        raise ValueError("log-log slope needs at least two distinct x values")
    return float(stats.linregress(np.log(x), np.log(y)).slope)


def fit_power_law(x, y) -> tuple[float, float]:
    """``(exponent, prefactor)`` of ``y = prefactor * x ** exponent``, least squares in
    log-log.

    Raises a ``ValueError`` for non-positive, NaN or infinite values, mismatched
    lengths, or fewer than two distinct ``x``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            "x and y must be one-dimensional of the same length, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a power law cannot be fitted to NaN or infinite values")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError(
            "a power law needs strictly positive x and y (it is fitted to their "
            "logarithms)"
        )
    exponent = loglog_slope(x, y)  # raises for fewer than two distinct x
    prefactor = float(np.exp(np.mean(np.log(y)) - exponent * np.mean(np.log(x))))
    return exponent, prefactor


def bootstrap_ci(
    statistic,
    *samples,
    seed: int,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    paired: bool = True,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(*samples)``
    (scipy.stats.bootstrap).

    ``paired=True`` resamples the same indices in every sample (for paired differences).
    """
    arrays = [as_array(s, f"sample {i}") for i, s in enumerate(samples)]
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one sample")
    if paired and len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("paired samples must have the same length")
    if arrays[0].shape[0] < 2:
        raise ValueError("bootstrap needs at least two observations")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    result = stats.bootstrap(
        tuple(arrays),
        statistic,
        paired=paired,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


# --- choosing a score on one half, judging it on the other ----------------------------


def split_halves(n: int, seed: int) -> np.ndarray:
    """A seeded split of ``n`` queries into two halves: True marks the selection half
    (the first ``n // 2`` of a random permutation), False the evaluation half."""
    n = check_int("n", n, minimum=2)
    selection = np.zeros(n, dtype=bool)
    selection[
        np.random.default_rng(check_int("seed", seed, 0)).permutation(n)[: n // 2]
    ] = True
    return selection


def choose_score(candidates: dict, labels, selection) -> str:
    """The name of the candidate score with the highest AUROC for ``labels`` (1 = wrong)
    on the ``selection`` half only (ties: the first candidate); the other half is never
    read."""
    if not candidates:
        raise ValueError("no candidate scores given")
    selection = np.asarray(selection)
    if selection.dtype != bool or selection.ndim != 1:
        raise ValueError("selection must be a one-dimensional boolean mask")
    labels = np.asarray(labels)
    if labels.shape != selection.shape:
        raise ValueError(
            f"labels and selection must have the same shape, got {labels.shape} "
            f"and {selection.shape}"
        )
    best, best_auroc = None, -np.inf
    for name, score in candidates.items():
        score = np.asarray(score)
        if score.shape != selection.shape:
            raise ValueError(
                f"score {name!r} must have shape {selection.shape}, got {score.shape}"
            )
        value = auroc(score[selection], labels[selection])
        if value > best_auroc:
            best, best_auroc = name, value
    return best

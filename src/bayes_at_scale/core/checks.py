"""The one home of argument checks: every public function of the package validates its
input with these, so that bad input gets a clear error naming the argument, never a
silent wrong number.

Each check returns the value it accepted, converted to a plain type where that helps
(``check_int`` returns an ``int``, ``check_number`` a ``float``, the array checks an
array), so a caller can write ``steps = check_int("steps", steps)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

#: Tolerance for a probability vector's sum (:func:`check_probabilities`).
ATOL = 1e-4

_NUMBER = (int, float, np.integer, np.floating)


# --- scalars --------------------------------------------------------------------------


def check_int(name: str, value, minimum: int = 1) -> int:
    """An integer (not a bool) of at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_ints(name: str, value) -> list[int]:
    """A positive integer, or a non-empty sequence of them, as a list."""
    values = (
        [value]
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        else (
            list(value)
            if isinstance(value, Iterable) and not isinstance(value, (str, bytes))
            else None
        )
    )
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
        for v in values
    ):
        raise ValueError(
            f"{name} must be a positive integer or a non-empty sequence of them, "
            f"got {value!r}"
        )
    return [int(v) for v in values]


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    """A finite number inside the interval from ``low`` to ``high`` (open ends by
    default)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad = bad or (value <= low if low_open else value < low)
    if high is not None:
        bad = bad or (value >= high if high_open else value > high)
    if bad:
        interval = (
            ("(" if low_open else "[")
            + ("-inf" if low is None else f"{low:g}")
            + ", "
            + ("inf" if high is None else f"{high:g}")
            + (")" if high_open else "]")
        )
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """A positive finite number."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_threshold(threshold, upper_closed: bool) -> float:
    """A probability threshold in [0, 1] (``upper_closed``) or [0, 1)."""
    if isinstance(threshold, bool) or not isinstance(threshold, _NUMBER):
        raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
    ok = 0 <= threshold <= 1 if upper_closed else 0 <= threshold < 1
    if not ok:
        interval = "[0, 1]" if upper_closed else "[0, 1)"
        raise ValueError(f"threshold must lie in {interval}, got {threshold!r}")
    return float(threshold)


def check_threads(threads: int | None) -> int | None:
    """A torch thread count (an integer >= 1), or None for "leave it alone"."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    return threads


def check_hidden(hidden, kinds: tuple[type, ...] = (tuple, list)) -> list[int]:
    """Hidden layer sizes: a non-empty tuple (or another of ``kinds``) of positive
    integers."""
    if not isinstance(hidden, kinds) or not hidden:
        raise ValueError(
            f"hidden must be a non-empty tuple of layer sizes, got {hidden!r}"
        )
    return [check_int("hidden layer size", h) for h in hidden]


def check_instance(name: str, value, kind: type):
    """``value`` if it is a ``kind``."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def check_items(
    items, kind: type, what: str = "replicates", accept_one: bool = True
) -> list:
    """A non-empty list of ``kind`` objects (a single one is wrapped when
    ``accept_one``)."""
    items = [items] if accept_one and isinstance(items, kind) else list(items)
    if not items:
        raise ValueError(f"no {what} given")
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(
                f"expected {kind.__name__} objects, got {type(item).__name__}"
            )
    return items


# --- arrays ---------------------------------------------------------------------------


def as_array(x, name: str) -> np.ndarray:
    """``x`` (array-like or tensor) as a float array: not empty, no NaN, no infinity."""
    arr = np.asarray(
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=float
    )
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr


def check_finite_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a finite float array with ``ndim`` dimensions (any, if None)."""
    arr = np.asarray(
        x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=float
    )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{names} must have the same shape, got {a.shape} and {b.shape}"
        )


def check_probabilities(p, name: str = "p", atol: float = ATOL) -> np.ndarray:
    """Return ``p`` as a float array after checking its last axis holds probability
    vectors."""
    arr = as_array(p, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis of categories")
    if (arr < 0).any():
        raise ValueError(f"{name} has negative probabilities")
    sums = arr.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=atol):
        worst = float(np.abs(sums - 1).max())
        raise ValueError(f"{name} rows must sum to 1 (largest deviation {worst:.3g})")
    return arr


def check_labels(y, n: int, name: str = "labels") -> np.ndarray:
    """``n`` non-negative integer labels."""
    arr = as_array(y, name)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all(arr == np.round(arr)) or (arr < 0).any():
        raise ValueError(f"{name} must be non-negative integers")
    return arr.astype(np.int64)


def check_counts(counts, name: str = "counts") -> np.ndarray:
    """Validate an array of counts: finite, non-negative integers, not empty."""
    arr = np.asarray(counts)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.isnan(arr.astype(float)).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(arr.astype(float)).any():
        raise ValueError(f"{name} contains infinite values")
    if (arr < 0).any():
        raise ValueError(f"{name} contains negative values")
    if not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"{name} must hold whole numbers")
    return arr.astype(np.int64)


def check_indices(values, n: int, what: str = "entities") -> np.ndarray:
    """A non-empty one-dimensional array of integer indices in ``0..n - 1``."""
    e = np.asarray(values)
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"{what} must be a non-empty one-dimensional array of indices")
    if not np.issubdtype(e.dtype, np.integer) or e.min() < 0 or e.max() >= n:
        raise ValueError(f"{what} must be integer indices in 0..{n - 1}")
    return e.astype(np.int64)


def check_actions(
    actions, n_rounds: int, n_arms: int, name: str = "actions"
) -> np.ndarray:
    """``actions`` as an int array of shape ``(n_rounds,)`` with values in ``0..n_arms -
    1``."""
    arr = np.asarray(actions)
    if arr.shape != (n_rounds,):
        raise ValueError(f"{name} must have shape ({n_rounds},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(
            arr == np.round(arr)
        ):
            raise ValueError(
                f"{name} must be integer arm indices, got dtype {arr.dtype}"
            )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_arms):
        raise ValueError(
            f"{name} must be arm indices in 0..{n_arms - 1}, got values in "
            f"{arr.min()}..{arr.max()}"
        )
    return arr


# --- tensors --------------------------------------------------------------------------


def check_feature_inputs(inputs, name: str = "inputs") -> None:
    """A finite floating-point tensor ``(n, features)`` (a reward model's input)."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() != 2 or not inputs.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor of shape (n, features), got "
            f"{inputs.dtype} of shape {tuple(inputs.shape)}"
        )
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contain NaN or infinite values")


def check_count_weights(
    contexts: torch.Tensor, counts: torch.Tensor, vocab_size: int, whole: bool
) -> None:
    """Counts (or, with ``whole=False``, non-negative weights) of next tokens per
    context."""
    if not isinstance(contexts, torch.Tensor) or not isinstance(counts, torch.Tensor):
        raise TypeError("contexts and counts must be torch tensors")
    expected = (contexts.shape[0], vocab_size)
    if tuple(counts.shape) != expected:
        raise ValueError(
            f"counts must have shape {expected}, got {tuple(counts.shape)}"
        )
    if counts.is_floating_point():
        if torch.isnan(counts).any():
            raise ValueError("counts contain NaN")
        if whole and (counts != counts.round()).any():
            raise ValueError("counts must be whole numbers")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    if counts.sum() == 0:
        raise ValueError("the corpus is empty: all counts are zero")


def check_next_token_counts(
    contexts: torch.Tensor, counts: torch.Tensor, vocab_size: int
) -> None:
    """Raise a ``ValueError`` naming the problem unless (contexts, counts) form a valid
    corpus."""
    if not isinstance(contexts, torch.Tensor) or not isinstance(counts, torch.Tensor):
        raise TypeError("contexts and counts must be torch tensors")
    if contexts.dim() != 2 or contexts.shape[1] < 1:
        raise ValueError(
            f"contexts must have shape (m, T) with T >= 1, got {tuple(contexts.shape)}"
        )
    if contexts.shape[0] == 0:
        raise ValueError("the corpus is empty: no contexts to train on")
    check_count_weights(contexts, counts, vocab_size, whole=True)
    if contexts.min() < 0 or contexts.max() >= vocab_size:
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")


def check_preference_pairs(pairs, preferred) -> None:
    """Preference data: a float tensor of pairs ``(n, 2, dim)``, ``n >= 1``, and a
    tensor of ``n`` indices of the preferred response."""
    if not isinstance(pairs, torch.Tensor) or not isinstance(preferred, torch.Tensor):
        raise TypeError("pairs and preferred must be torch tensors")
    if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
        raise ValueError(
            "pairs must be a float tensor of shape (n, 2, dim), got "
            f"{tuple(pairs.shape)}"
        )
    if pairs.shape[0] == 0:
        raise ValueError("pairs is empty")
    if preferred.shape != (pairs.shape[0],):
        raise ValueError(
            f"preferred must have shape ({pairs.shape[0]},), got "
            f"{tuple(preferred.shape)}"
        )


def check_positive_int(name: str, value) -> int:
    """A positive integer (not a bool): ``{name} must be a positive integer``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)

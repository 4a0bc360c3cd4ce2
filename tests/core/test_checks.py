"""Tests of bayes_at_scale.core.checks: the one set of argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale.core import checks


# --- check_counts -------------------------------------------------------------------------


@pytest.mark.parametrize("counts", [[0, 1, 2], [[3, 0], [1, 1]], [2.0, 5.0], np.array([7], np.int32)])
def test_check_counts_accepts_whole_numbers(counts):
    out = checks.check_counts(counts)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, np.asarray(counts))


@pytest.mark.parametrize("counts, error, pattern", [
    ([], ValueError, r"counts is empty"),
    (np.zeros((2, 0)), ValueError, r"counts is empty"),
    ([1, -1], ValueError, r"counts contains negative values"),
    ([1.5, 2], ValueError, r"counts must hold whole numbers"),
    ([1, float("nan")], ValueError, r"counts contains NaN"),
    (["a", "b"], TypeError, r"counts must be numeric"),
    ([1 + 1j], TypeError, r"counts must be numeric"),
    ([True, False], TypeError, r"counts must be numeric"),
])
def test_check_counts_rejects(counts, error, pattern):
    with pytest.raises(error, match=pattern):
        checks.check_counts(counts)


def test_check_counts_names_the_argument():
    with pytest.raises(ValueError, match=r"answer counts contains negative"):
        checks.check_counts([-2], name="answer counts")


# --- scalars ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 5, np.int64(3)])
def test_check_int_accepts_and_returns_int(value):
    out = checks.check_int("n", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "2", None])
def test_check_int_rejects_with_the_name(value):
    with pytest.raises(ValueError, match=r"n must be an integer >= 1"):
        checks.check_int("n", value)


def test_check_int_minimum():
    assert checks.check_int("seed", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        checks.check_int("seed", -1, minimum=0)


@pytest.mark.parametrize("value, low, high, kwargs, ok", [
    (0.5, 0.0, 1.0, {}, True), (0.0, 0.0, 1.0, {}, False),
    (0.0, 0.0, 1.0, {"low_open": False}, True), (1.0, 0.0, 1.0, {"high_open": False}, True),
    (float("inf"), None, None, {}, False), (float("nan"), None, None, {}, False),
])
def test_check_number_intervals(value, low, high, kwargs, ok):
    if ok:
        assert checks.check_number("x", value, low, high, **kwargs) == value
    else:
        with pytest.raises(ValueError, match=r"x must be a finite number in"):
            checks.check_number("x", value, low, high, **kwargs)


@pytest.mark.parametrize("value", ["1", True, None])
def test_numbers_must_be_numbers(value):
    with pytest.raises(TypeError, match=r"x must be a number"):
        checks.check_number("x", value)
    with pytest.raises(TypeError, match=r"x must be a number"):
        checks.check_positive("x", value)


@pytest.mark.parametrize("value", [0, -2.0, float("inf")])
def test_check_positive_rejects(value):
    with pytest.raises(ValueError, match=r"x must be a positive finite number"):
        checks.check_positive("x", value)


def test_check_threshold():
    assert checks.check_threshold(1, upper_closed=True) == 1.0
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\)"):
        checks.check_threshold(1, upper_closed=False)
    with pytest.raises(TypeError, match="threshold must be a number"):
        checks.check_threshold("0.5", upper_closed=True)


def test_check_ints_and_hidden():
    assert checks.check_ints("v", 3) == [3] and checks.check_ints("v", (1, 2)) == [1, 2]
    with pytest.raises(ValueError, match="v must be a positive integer or a non-empty sequence"):
        checks.check_ints("v", [])
    assert checks.check_hidden((4, 8)) == [4, 8]
    with pytest.raises(ValueError, match="hidden must be a non-empty tuple"):
        checks.check_hidden([4], kinds=(tuple,))


def test_threads_and_samples():
    assert checks.check_threads(None) is None and checks.check_threads(2) == 2
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        checks.check_threads(0)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        checks.check_positive_int("n_samples", 2.0)


def test_instances_and_items():
    assert checks.check_instance("x", 3, int) == 3
    with pytest.raises(TypeError, match="x must be a int, got str"):
        checks.check_instance("x", "3", int)
    assert checks.check_items(3, int) == [3]
    with pytest.raises(ValueError, match="no runs given"):
        checks.check_items([], int, "runs")
    with pytest.raises(TypeError, match="expected int objects, got str"):
        checks.check_items([1, "2"], int)


# --- arrays and tensors ----------------------------------------------------------------------


def test_probabilities_and_labels():
    p = checks.check_probabilities([[0.25, 0.75], [1.0, 0.0]])
    assert p.shape == (2, 2)
    with pytest.raises(ValueError, match=r"p rows must sum to 1"):
        checks.check_probabilities([0.5, 0.6])
    with pytest.raises(ValueError, match=r"p has negative probabilities"):
        checks.check_probabilities([1.5, -0.5])
    assert checks.check_labels([0, 2], 2).dtype == np.int64
    with pytest.raises(ValueError, match="labels must be non-negative integers"):
        checks.check_labels([0.5, 1], 2)


def test_indices_and_actions():
    np.testing.assert_array_equal(checks.check_indices([0, 2], 3), [0, 2])
    with pytest.raises(ValueError, match=r"entities must be integer indices in 0..2"):
        checks.check_indices([3], 3)
    with pytest.raises(ValueError, match=r"actions must be arm indices in 0..1"):
        checks.check_actions([0, 2], 2, 2)


def test_feature_inputs_and_counts():
    checks.check_feature_inputs(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="contain NaN or infinite values"):
        checks.check_feature_inputs(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="the corpus is empty: all counts are zero"):
        checks.check_next_token_counts(torch.zeros(1, 2, dtype=torch.long),
                                       torch.zeros(1, 3, dtype=torch.long), 3)



def test_positive_int_and_preference_pairs():
    assert checks.check_positive_int("n", np.int64(4)) == 4
    with pytest.raises(ValueError, match="n must be a positive integer"):
        checks.check_positive_int("n", 0)
    pairs, preferred = torch.zeros(3, 2, 4), torch.tensor([0, 1, 1])
    checks.check_preference_pairs(pairs, preferred)
    with pytest.raises(ValueError, match=r"pairs must be a float tensor of shape \(n, 2, dim\)"):
        checks.check_preference_pairs(torch.zeros(3, 3, 4), preferred)
    with pytest.raises(ValueError, match=r"preferred must have shape \(3,\)"):
        checks.check_preference_pairs(pairs, preferred[:2])

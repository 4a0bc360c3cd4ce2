"""Shared tiny fixtures for the unit tests of ``bayes_at_scale``.

Everything here is small, seeded and deterministic.  Torch runs on one thread (the suite is
meant to run in well under a minute on two cores, with or without pytest-xdist), matplotlib
draws off-screen, and every test gets the global torch state (default dtype, thread count)
restored after it, so a test that calls :func:`bayes_at_scale.core.settings.configure` cannot leak
into the next one.
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("MPLBACKEND", "agg")

import matplotlib

matplotlib.use("agg")

import numpy as np
import pytest
import torch
from hypothesis import settings as hypothesis_settings

from bayes_at_scale.worlds import fragments as corpora
from bayes_at_scale.core import models
from bayes_at_scale.core import settings
from bayes_at_scale.core import training

hypothesis_settings.register_profile("essay", max_examples=50, deadline=None, derandomize=True,
                                     database=None)
hypothesis_settings.load_profile("essay")

TORCH_THREADS = 1


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Temporarily change torch's default floating-point dtype."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@pytest.fixture(scope="session", autouse=True)
def torch_threads():
    """Run torch on TORCH_THREADS threads for the whole session (restored at the end)."""
    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    yield TORCH_THREADS
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def restore_torch_state():
    """Undo changes a test makes to torch's default dtype or thread count."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same python / numpy / torch random state."""
    settings.seed_everything(1234)


@pytest.fixture
def float64():
    """Double precision as torch's default for the duration of a test."""
    with default_dtype(torch.float64):
        yield torch.float64


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- corpora ------------------------------------------------------------------------------

TINY_CORPUS = dict(n_families=2, n_subjects=3, n_tokens=5000, seed=0)
SMALL_CORPUS = dict(n_families=4, n_subjects=40, n_tokens=8000, zipf_exponent=1.5, seed=3)


@pytest.fixture(scope="session")
def tiny_corpus() -> corpora.FragmentCorpus:
    """Six fragments in two families, 5000 questions: every fragment is seen hundreds of times."""
    return corpora.make_fragment_corpus(**TINY_CORPUS)


@pytest.fixture(scope="session")
def small_corpus() -> corpora.FragmentCorpus:
    """160 fragments, Zipf-distributed counts: two seen >= 1000 times, some once, some never."""
    return corpora.make_fragment_corpus(**SMALL_CORPUS)


@pytest.fixture
def abracadabra() -> str:
    return "abracadabra"


# --- models -------------------------------------------------------------------------------


def tiny_lm(vocab_size: int, max_len: int, seed: int = 0, **kwargs) -> models.CausalLM:
    """A seeded one-layer transformer with d_model 16 (built in the current default dtype)."""
    kwargs = {"d_model": 16, "n_heads": 2, "n_layers": 1, **kwargs}
    settings.seed_everything(seed)
    return models.CausalLM(vocab_size, max_len, **kwargs)


@pytest.fixture(scope="session")
def make_lm():
    """Factory fixture: ``make_lm(vocab_size, max_len, seed=0, **model_kwargs)``."""
    return tiny_lm


@pytest.fixture(scope="session")
def trained_tiny():
    """(corpus, model, losses): a double-precision tiny model trained full-batch to the MAP of
    the tiny corpus (200 Adam steps)."""
    corpus = corpora.make_fragment_corpus(**TINY_CORPUS)
    with default_dtype(torch.float64):
        model = tiny_lm(corpus.vocab_size, corpus.seq_len - 1, seed=0)
        losses = training.train_map(model, *corpus.next_token_counts(), steps=200, lr=3e-2,
                                    seed=0, progress=False)
    return corpus, model, losses


# --- markers ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(config, items):
    """nbval's items (the reference notebooks re-executed) are part of the ``book`` tests, which
    ``make test-fast`` leaves out (``-m "not slow and not book"``)."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.book)

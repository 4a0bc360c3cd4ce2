"""Tests of bayes_at_scale.core.settings: validation, environment, seeding, configure, project root."""

from __future__ import annotations

import dataclasses
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bayes_at_scale.core import settings
from bayes_at_scale.core.settings import Settings

ENV = ("ESSAY_SCALE", "ESSAY_SEED", "ESSAY_THREADS", "ESSAY_DTYPE", "ESSAY_ROOT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- Settings -----------------------------------------------------------------------------


def test_defaults():
    s = Settings()
    assert (s.scale, s.seed, s.threads, s.dtype) == ("quick", 0, 2, "float32")
    assert s.torch_dtype is torch.float32


@pytest.mark.parametrize("dtype, expected", [("float32", torch.float32), ("float64", torch.float64)])
def test_torch_dtype(dtype, expected):
    assert Settings(dtype=dtype).torch_dtype is expected


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.scale = "full"


@pytest.mark.parametrize("scale", ["huge", "", "Quick", "FULL", None, 1])
def test_unknown_scale(scale):
    with pytest.raises(ValueError, match=r"unknown scale .*expected one of \('quick', 'full'\)"):
        Settings(scale=scale)


@pytest.mark.parametrize("seed", [-1, -100, 1.5, 2.0, "3", None, True, False])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got "):
        Settings(seed=seed)


@pytest.mark.parametrize("threads", [0, -2, 2.0, 1.5, "2", None, True])
def test_bad_threads(threads):
    with pytest.raises(ValueError, match=r"threads must be a positive integer, got "):
        Settings(threads=threads)


@pytest.mark.parametrize("dtype", ["float16", "double", "bfloat16", "", None, torch.float32])
def test_unknown_dtype(dtype):
    with pytest.raises(ValueError, match=r"unknown dtype .*expected one of \('float32', 'float64'\)"):
        Settings(dtype=dtype)


@pytest.mark.parametrize("seed", [0, 7, 10**9])
def test_valid_seeds_accepted(seed):
    assert Settings(seed=seed).seed == seed


@pytest.mark.parametrize("seed, n", [(0, 1), (0, 3), (5, 4), (100, 2)])
def test_seeds_are_consecutive_from_base(seed, n):
    seeds = Settings(seed=seed).seeds(n)
    assert seeds == list(range(seed, seed + n))
    assert len(set(seeds)) == n


@pytest.mark.parametrize("n", [0, -1, 1.5, "3", True, None])
def test_seeds_bad_n(n):
    with pytest.raises(ValueError, match=r"number of seeds must be a positive integer"):
        Settings().seeds(n)


# --- from_env -----------------------------------------------------------------------------


def test_from_env_defaults(clean_env):
    assert settings.from_env() == Settings()


def test_from_env_empty_strings_mean_defaults(clean_env):
    for name in ENV[:4]:
        clean_env.setenv(name, "")
    assert settings.from_env() == Settings()


def test_from_env_reads_every_variable(clean_env):
    clean_env.setenv("ESSAY_SCALE", "full")
    clean_env.setenv("ESSAY_SEED", "17")
    clean_env.setenv("ESSAY_THREADS", "3")
    clean_env.setenv("ESSAY_DTYPE", "float64")
    assert settings.from_env() == Settings(scale="full", seed=17, threads=3, dtype="float64")


@pytest.mark.parametrize("variable, value, pattern", [
    ("ESSAY_SCALE", "huge", r"unknown scale 'huge'.*'quick', 'full'"),
    ("ESSAY_SCALE", "Quick", r"unknown scale 'Quick'"),
    ("ESSAY_DTYPE", "float16", r"unknown dtype 'float16'.*'float32', 'float64'"),
    ("ESSAY_DTYPE", "double", r"unknown dtype 'double'"),
    ("ESSAY_SEED", "abc", r"ESSAY_SEED must be an integer, got 'abc'"),
    ("ESSAY_SEED", "1.5", r"ESSAY_SEED must be an integer, got '1.5'"),
    ("ESSAY_SEED", "-3", r"seed must be a non-negative integer, got -3"),
    ("ESSAY_THREADS", "two", r"ESSAY_THREADS must be an integer, got 'two'"),
    ("ESSAY_THREADS", "0", r"threads must be a positive integer, got 0"),
    ("ESSAY_THREADS", "-1", r"threads must be a positive integer, got -1"),
])
def test_from_env_bad_values(clean_env, variable, value, pattern):
    clean_env.setenv(variable, value)
    with pytest.raises(ValueError, match=pattern):
        settings.from_env()


# --- seeding and configure ----------------------------------------------------------------


def _draws():
    return random.random(), np.random.rand(), torch.rand(3)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_seed_everything_is_reproducible(seed):
    g1 = settings.seed_everything(seed)
    a = _draws()
    g_draw1 = torch.rand(3, generator=g1)
    g2 = settings.seed_everything(seed)
    b = _draws()
    g_draw2 = torch.rand(3, generator=g2)
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2])
    assert torch.equal(g_draw1, g_draw2)


def test_seed_everything_generator_matches_global_stream():
    g = settings.seed_everything(3)
    global_draw = torch.rand(5)
    assert torch.equal(torch.rand(5, generator=g), global_draw)


def test_seed_everything_different_seeds_differ():
    settings.seed_everything(0)
    a = _draws()
    settings.seed_everything(1)
    b = _draws()
    assert a[0] != b[0] and a[1] != b[1]
    assert not torch.equal(a[2], b[2])


@pytest.fixture
def isolated_warnings():
    with warnings.catch_warnings():
        yield


def test_configure_applies_settings(isolated_warnings):
    s = Settings(seed=5, threads=1, dtype="float64")
    assert settings.configure(s) is s
    assert torch.get_default_dtype() is torch.float64
    assert torch.get_num_threads() == 1
    first = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(first, torch.rand(4))
    assert torch.zeros(1).dtype is torch.float64
    # library chatter is silenced
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("noise", UserWarning)
    assert caught == []


def test_configure_reads_environment_when_given_nothing(clean_env, isolated_warnings):
    clean_env.setenv("ESSAY_DTYPE", "float64")
    clean_env.setenv("ESSAY_THREADS", "1")
    clean_env.setenv("ESSAY_SEED", "9")
    s = settings.configure()
    assert s == Settings(seed=9, threads=1, dtype="float64")
    assert torch.get_default_dtype() is torch.float64


def test_configure_rejects_bad_environment(clean_env, isolated_warnings):
    clean_env.setenv("ESSAY_THREADS", "many")
    with pytest.raises(ValueError, match=r"ESSAY_THREADS must be an integer"):
        settings.configure()


# --- project_root -------------------------------------------------------------------------


def _book(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "claims.yaml").write_text("claims: []\n")
    return root


def test_project_root_from_env(clean_env, tmp_path):
    root = _book(tmp_path / "book")
    clean_env.setenv("ESSAY_ROOT", str(root))
    assert settings.project_root() == root


def test_project_root_env_without_claims(clean_env, tmp_path):
    clean_env.setenv("ESSAY_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"ESSAY_ROOT=.* has no data/claims.yaml"):
        settings.project_root()


def test_project_root_searches_parents(clean_env, tmp_path):
    root = _book(tmp_path / "book")
    deep = root / "chapters" / "sub"
    deep.mkdir(parents=True)
    assert settings.project_root(deep) == root.resolve()


def test_project_root_falls_back_to_the_package_checkout(clean_env, tmp_path):
    # tmp_path has no data/claims.yaml above it: the checkout that holds the package is used
    root = settings.project_root(tmp_path)
    assert (root / "data" / "claims.yaml").is_file()
    assert (root / "src" / "bayes_at_scale" / "core" / "settings.py").is_file()


# --- derive_seed and seeded_torch -----------------------------------------------------------


def test_derive_seed_is_deterministic_and_separates_keys():
    from bayes_at_scale.core.settings import derive_seed
    assert derive_seed(0, 1) == derive_seed(0, 1)
    seeds = {derive_seed(s, k) for s in range(20) for k in range(5)}
    assert len(seeds) == 100  # no two (seed, key) pairs collide, unlike seed + key offsets
    assert derive_seed(1, 0) != derive_seed(0, 1)
    assert derive_seed(3, 2, 5) != derive_seed(3, 2) and 0 <= derive_seed(3, 2, 5) < 2**32


def test_derive_seed_is_numpys_seed_sequence():
    from bayes_at_scale.core.settings import derive_seed
    expected = int(np.random.SeedSequence([7, 4]).generate_state(1)[0])
    assert derive_seed(7, 4) == expected


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_derive_seed_rejects_bad_keys(bad):
    from bayes_at_scale.core.settings import derive_seed
    with pytest.raises(ValueError, match="non-negative integers"):
        derive_seed(0, bad)
    with pytest.raises(ValueError, match="non-negative integers"):
        derive_seed(bad)


def test_seeded_torch_seeds_inside_and_restores_outside():
    from bayes_at_scale.core.settings import seeded_torch
    torch.manual_seed(99)
    before = torch.rand(3)
    torch.manual_seed(99)
    with seeded_torch(5):
        inside = torch.rand(3)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(inside, torch.rand(3))
    assert torch.equal(after, before)  # the caller's stream did not move



def test_tables_hide_only_a_default_index():
    import pandas as pd

    plain = pd.DataFrame({"flavour": ["diag", "kron"], "std": [0.25, 0.5]})
    html = settings.table_html(plain)
    assert "<th>flavour</th>" in html and "0.25" in html
    assert "<th>0</th>" not in html and "<th></th>" not in html  # no row numbers
    named = plain.set_index("flavour")
    assert ">diag</th>" in settings.table_html(named)  # a meaningful index stays
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        settings.table_html([1, 2])

"""Run-time settings shared by every chapter: scale, seed, threads, dtype.

Read from the environment once, validated, and applied with :func:`configure`:

* ``ESSAY_SCALE``   ``quick`` (default, minutes on a laptop) or ``full`` (paper-quality
  figures);
* ``ESSAY_SEED``    base seed, a non-negative integer (default 0);
* ``ESSAY_THREADS`` torch / BLAS thread count, a positive integer (default 2);
* ``ESSAY_DTYPE``   ``float32`` (default) or ``float64``.

An unknown value is an error that names the variable and the accepted values.
"""

from __future__ import annotations

import os
import random
import sys
import contextlib
import contextvars
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from pathlib import Path

import numpy as np
import torch

from .checks import check_positive_int, check_threads

SCALES = ("quick", "full")
T = TypeVar("T")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Settings:
    scale: str = "quick"
    seed: int = 0
    threads: int = 2
    dtype: str = "float32"

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}: expected one of {SCALES}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or self.seed < 0
        ):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if (
            isinstance(self.threads, bool)
            or not isinstance(self.threads, int)
            or self.threads < 1
        ):
            raise ValueError(
                f"threads must be a positive integer, got {self.threads!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(
                f"unknown dtype {self.dtype!r}: expected one of {tuple(DTYPES)}"
            )

    def seeds(self, n: int) -> list[int]:
        """``n`` replicate seeds derived from the base seed."""
        return [self.seed + i for i in range(check_positive_int("number of seeds", n))]

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


ENV_VARS = {
    "scale": "ESSAY_SCALE",
    "seed": "ESSAY_SEED",
    "threads": "ESSAY_THREADS",
    "dtype": "ESSAY_DTYPE",
}


def from_env() -> Settings:
    """Settings read from the ``ESSAY_*`` environment variables; errors name the
    variable."""
    values = {
        "scale": os.environ.get("ESSAY_SCALE", "quick") or "quick",
        "seed": _int_from_env("ESSAY_SEED", 0),
        "threads": _int_from_env("ESSAY_THREADS", 2),
        "dtype": os.environ.get("ESSAY_DTYPE", "float32") or "float32",
    }
    for field, variable in ENV_VARS.items():
        try:
            Settings(**{field: values[field]})
        except ValueError as error:
            raise ValueError(f"{variable}: {error}") from None
    return Settings(**values)


def at_scale(options: Mapping[str, T], scale: str) -> T:
    """``options[scale]``: what a recipe table holds for ``scale``; an unknown scale is
    an error that names the scales there are."""
    if scale not in options:
        raise ValueError(f"unknown scale {scale!r}: expected one of {tuple(options)}")
    return options[scale]


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from a run's ``seed`` and integer ``keys`` (a stage, a
    step, a member...), statistically independent across keys: the one way the package
    derives seeds.

    ``derive_seed(seed, 3)`` and ``derive_seed(seed, 4)`` seed two unrelated streams of
    one run, and ``derive_seed(seed, step, 5)`` a stream per step.  (NumPy's
    ``SeedSequence`` hashes the integers, so nearby seeds do not give overlapping
    streams, as ``seed + 1000`` offsets can.)
    """
    values = [seed, *keys]
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 0
        ):
            raise ValueError(
                f"seed and keys must be non-negative integers, got {value!r}"
            )
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_torch(seed: int):
    """Inside the block torch's global generator is seeded with ``seed`` (for module
    initialisation, which draws from it); outside it the caller's random state is
    untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run torch on ``threads`` threads inside the block, restoring the setting after
    (None leaves it alone).  The bandit and reward networks are so small that one thread
    is fastest."""
    check_threads(threads)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def configure(settings: Settings | None = None) -> Settings:
    """Apply settings to this process: threads, default dtype, seeds, quiet warnings.

    Every chapter calls this once in its first (hidden) cell.
    """
    settings = settings or from_env()
    torch.set_num_threads(settings.threads)
    torch.set_default_dtype(settings.torch_dtype)
    seed_everything(settings.seed)
    quiet_library_warnings()
    import matplotlib

    # figures are shown by glue/display, never by pyplot's auto-display
    matplotlib.use("agg")
    if in_notebook():
        # Figures as PNG at twice their size, sharp on high-resolution screens (the
        # book's figures are glued from them).
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
        show_tables_without_row_numbers(sys.modules["IPython"].get_ipython())
    return settings


def table_html(table) -> str:
    """A data frame as the book shows it: without the row numbers of a default index (a
    ``RangeIndex`` without a name, which says nothing), with its index otherwise."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(table).__name__}")
    if isinstance(table.index, pd.RangeIndex) and table.index.name is None:
        return table.to_html(index=False, border=0)
    return table._repr_html_()


def show_tables_without_row_numbers(shell) -> None:
    """Make ``shell`` (an IPython shell) render data frames with :func:`table_html`;
    their text form, which the regression tests compare, is unchanged."""
    import pandas as pd

    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)


def quiet_library_warnings() -> None:
    """Library chatter is not part of a result: keep it out of notebook outputs and logs
    (every chapter's process, and every worker process of
    :mod:`bayes_at_scale.core.runner`)."""
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


_QUIET_PROGRESS = contextvars.ContextVar("quiet_progress", default=False)


@contextlib.contextmanager
def quiet_progress():
    """No progress bars inside the block (the runner's tasks: a worker's stderr would
    land in the notebook cell that started it)."""
    token = _QUIET_PROGRESS.set(True)
    try:
        yield
    finally:
        _QUIET_PROGRESS.reset(token)


def show_progress() -> bool:
    """Whether long loops show a progress bar: outside notebooks and outside runner
    tasks."""
    return not in_notebook() and not _QUIET_PROGRESS.get()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where progress bars would clutter executed
    outputs)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def project_root(start: Path | None = None) -> Path:
    """The book's root folder: ``ESSAY_ROOT`` or the nearest parent holding
    ``data/claims.yaml``."""
    env = os.environ.get("ESSAY_ROOT")
    if env:
        root = Path(env)
        if not (root / "data" / "claims.yaml").is_file():
            raise FileNotFoundError(f"ESSAY_ROOT={env!r} has no data/claims.yaml")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "data" / "claims.yaml").is_file():
            return candidate
    package_guess = Path(__file__).resolve().parents[3]
    if (package_guess / "data" / "claims.yaml").is_file():
        return package_guess
    raise FileNotFoundError(
        f"cannot find the book's root (a folder with data/claims.yaml) above {here};"
        " set ESSAY_ROOT"
    )

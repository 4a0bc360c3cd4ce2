"""What training a language model and fitting its Laplace posteriors cost, measured in
this process: wall time and peak memory, as ratios to one training epoch of the same
model (the measurements of chapter 7, :mod:`bayes_at_scale.experiments.the_bill`).

**One epoch** is one step of :func:`~bayes_at_scale.core.training.train_map` as the book
trains: a full-batch step (``batch_size=None``) of the count-weighted corpus objective -
forward and backward over every distinct context, gradient clipping and one Adam update.
That step computes the exact gradient of the average over all ``N`` corpus tokens, so it
is one pass of the training objective over the whole corpus.  In :func:`profile_size`
``epoch_seconds`` is a median of wall time per step over every training run at that size
(``members`` networks per repeat, after an untimed warm-up step) and over a short probe
(``probe_steps`` steps on a copy of the network, :func:`seconds_per_step`) timed right
before every Laplace fit, so that the denominator sees the load the machine had when the
numerator was measured (``fit_epochs_adjacent`` divides each fit by its own probe).
Because a context that occurs ``n`` times is processed once with weight ``n``, this
epoch is cheaper than a pass over ``N`` rows; the Laplace fit, in contrast, iterates
over the ``N`` (prompt, next token) pairs of
:func:`~bayes_at_scale.core.posteriors.count_loader`.  So every size also records
``token_epoch_seconds`` - the same step on the expanded corpus, one row per token, as
for a corpus without repeated contexts - and the ratio ``expansion = N / contexts``.

**Laplace cost** is :attr:`Posterior.fit_seconds
<bayes_at_scale.core.posteriors.Posterior>`: curvature fit plus prior precision by
marginal likelihood.  For the flavours in ``curvature_only`` the fit is repeated with
``prior_steps=0`` (``curvature_seconds``) to show how the bill splits.  Before the first
timed fit of a flavour an untimed warm-up fit on a few pairs absorbs one-off library
start-up.  **Predictive cost** is per 1000 queries: the closed-form probit predictive
(:meth:`Posterior.predictive`, last-layer flavours; the all-weights flavours predict by
Monte Carlo and have none) and ``n_samples`` posterior samples
(:meth:`Posterior.sample`), next to the network's own forward pass and the ensemble's.

**Memory** is the peak resident set size (RSS) of the process during the block, above
its level when the block started (:class:`PeakMemory`): a background thread reads
``/proc/self/statm`` every 5 ms.  ``tracemalloc`` is no use here - it sees Python's
allocator only, not torch's tensor memory - and ``ru_maxrss`` is a process-lifetime
high-water mark (used only where ``/proc`` is missing).  Limits: a spike shorter than
the sampling interval can be missed; memory freed by earlier blocks and kept by the
allocator is reused without raising RSS, so the figure is a lower bound
(:func:`release_memory` - ``gc.collect`` and glibc's ``malloc_trim`` - runs before each
block to reduce this); it counts the whole process.

Statistics are medians over repeats (each repeat trains fresh networks); a ratio
``*_epochs`` is the median time divided by ``epoch_seconds``.  On a machine shared with
other jobs every wall time is noisy (two torch threads that share two busy cores can run
a step ten times slower for a while); compare ``fit_epochs`` with
``fit_epochs_adjacent`` to see how much.  An ensemble's training is counted as its size
times the median member's wall time: every member does the same work.
:data:`DEFINITIONS` says all this in one line per quantity.

**Round 2 (claim C29)** separates a cost's overhead from its price per token:
:func:`fit_and_token_epoch` times the fit and one token epoch on a corpus of ``N`` rows,
:func:`fit_line` fits ``a + b N``, :func:`slope_ratio` gives ``b_fit / b_ep`` through
the medians of repeated timings, and :func:`slope_ratio_interval` its bootstrap interval
(the repeats are resampled within each corpus size).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .checks import check_positive
from .cost_model import model_shape
from .metrics import fit_power_law
from .models import CausalLM, NextToken, next_token_probs
from .posteriors import count_loader, fit_posterior, next_token_loader
from .settings import derive_seed, seeded_torch
from .training import train_map

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
STATM = "/proc/self/statm"


# --- memory ---------------------------------------------------------------------------


def rss_bytes() -> int | None:
    """The process's current resident set size, or None where ``/proc`` is missing."""
    try:
        with open(STATM, "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except OSError:
        return None


def maxrss_bytes() -> int:
    """The process's lifetime peak resident set size (``ru_maxrss``), in bytes."""
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc's
    ``malloc_trim``), so that the next block's baseline is honest."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager: ``increase`` = peak RSS during the block minus RSS at its start
    (bytes).

    Samples ``/proc/self/statm`` every ``interval`` seconds in a background thread (and
    once at the end of the block).  Without ``/proc`` it falls back to the growth of
    ``ru_maxrss``, which is zero unless the block sets a new process-wide high-water
    mark.  ``method`` says which.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = check_positive("interval", interval)
        self.increase: int | None = None
        self.method = (
            "proc_statm_sampled" if rss_bytes() is not None else "ru_maxrss_delta"
        )

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __enter__(self) -> "PeakMemory":
        release_memory()
        if self.method == "ru_maxrss_delta":
            self._start = maxrss_bytes()
            return self
        self._start = self._peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "ru_maxrss_delta":
            self.increase = max(0, maxrss_bytes() - self._start)
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes() or 0)
        self.increase = max(0, self._peak - self._start)


# --- time -----------------------------------------------------------------------------


def time_call(fn) -> float:
    """Wall seconds of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values) -> float:
    """The median of ``values`` as a float (the statistic every timing is reported
    by)."""
    return float(statistics.median(values))


def per_1000(seconds: float, queries: int) -> float:
    """``seconds`` spent on ``queries`` queries, per 1000 queries."""
    return seconds * 1000.0 / queries


def seconds_per_step(
    model: torch.nn.Module,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    weight_decay: float = 1e-5,
) -> float:
    """Wall seconds per full-batch :func:`~bayes_at_scale.core.training.train_map` step,
    over ``steps`` steps of a copy of ``model`` (``model`` itself is not trained): an
    epoch timed now, with the load the machine has at this moment."""
    wall = time_call(
        lambda: train_map(
            copy.deepcopy(model),
            contexts,
            counts,
            steps=steps,
            lr=lr,
            weight_decay=weight_decay,
            progress=False,
        )
    )
    return wall / steps


def timed_training(
    vocab_size: int,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    model_kwargs: dict,
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> tuple[CausalLM, float]:
    """A :class:`~bayes_at_scale.core.models.CausalLM` (``model_kwargs``) initialised
    from ``seed`` and trained ``steps`` full-batch steps, and the wall seconds of its
    training (construction excluded)."""
    with seeded_torch(seed):
        model = CausalLM(vocab_size, max_len=contexts.shape[1], **model_kwargs)
    wall = time_call(
        lambda: train_map(
            model,
            contexts,
            counts,
            steps=steps,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            progress=False,
        )
    )
    return model, wall


def epoch_ratios(row: dict, epoch: float) -> None:
    """Add ``*_epochs`` = ``*_seconds`` / epoch (and ``*_epochs_per_1000`` for every
    ``*_seconds_per_1000``) for every timed quantity of ``row`` but
    ``epoch_seconds``."""
    for key in list(row):
        if key.endswith("_seconds") and row[key] is not None and key != "epoch_seconds":
            row[key[: -len("_seconds")] + "_epochs"] = row[key] / epoch
        elif key.endswith("_seconds_per_1000") and row[key] is not None:
            row[key[: -len("_seconds_per_1000")] + "_epochs_per_1000"] = (
                row[key] / epoch
            )


def profile_posterior(
    model: CausalLM,
    loader,
    name: str,
    prompts: torch.Tensor,
    *,
    n_samples: int,
    seed: int,
    closed_form: bool,
    curvature: bool = False,
) -> dict:
    """One Laplace flavour ``name`` on ``model``: ``fit_seconds`` (curvature plus prior
    precision by marginal likelihood, :attr:`Posterior.fit_seconds
    <bayes_at_scale.core.posteriors.Posterior>`), ``peak_rss_bytes`` of the fit
    (:class:`PeakMemory`) and the fitted ``prior_precision``; with ``curvature`` also
    ``curvature_seconds`` (the fit again without the prior search, ``prior_steps=0``);
    the wall seconds of the closed-form predictive over ``prompts`` (``probit_seconds``,
    when ``closed_form``) and of ``n_samples`` posterior samples
    (``sampled_seconds``)."""
    with PeakMemory() as memory:
        posterior = fit_posterior(NextToken(model), loader, name)
    out = {
        "fit_seconds": posterior.fit_seconds,
        "peak_rss_bytes": memory.increase,
        "prior_precision": float(posterior.prior_precision.mean()),
    }
    if curvature:
        out["curvature_seconds"] = fit_posterior(
            NextToken(model), loader, name, prior_steps=0
        ).fit_seconds
    if closed_form:
        out["probit_seconds"] = time_call(lambda: posterior.predictive(prompts))
    out["sampled_seconds"] = time_call(
        lambda: posterior.sample(prompts, n_samples, seed=seed)
    )
    return out


# --- one model size: training, its posteriors and the ensemble ------------------------


def _summary(plan: dict, runs: list[dict], row: dict, queries: int) -> dict:
    """A measured flavour's plan with the medians of its ``runs`` (one per repeat)."""

    def med(key):
        return median([r[key] for r in runs])

    epoch = row["epoch_seconds"]
    plan.update(
        fit_seconds=med("fit_seconds"), fit_seconds_all=[r["fit_seconds"] for r in runs]
    )
    plan["fit_token_epochs"] = plan["fit_seconds"] / row["token_epoch_seconds"]
    plan.update(
        peak_rss_bytes=med("peak_rss_bytes"), prior_precision=med("prior_precision")
    )
    if "curvature_seconds" in runs[0]:
        plan["curvature_seconds"] = med("curvature_seconds")
    plan["probit_seconds_per_1000"] = (
        per_1000(med("probit_seconds"), queries) if plan["closed_form"] else None
    )
    plan["sampled_seconds_per_1000"] = per_1000(med("sampled_seconds"), queries)
    epoch_ratios(plan, epoch)
    plan["fit_epochs"] = plan["fit_seconds"] / epoch
    plan["fit_epochs_adjacent"] = median(
        [r["fit_seconds"] / r["adjacent_epoch_seconds"] for r in runs]
    )
    plan["achieved_flop_rate"] = plan["predicted_flops"] / plan["fit_seconds"]
    return plan


def profile_size(
    contexts: torch.Tensor,
    counts: torch.Tensor,
    prompts: torch.Tensor,
    model_kwargs: dict,
    plans: dict,
    *,
    repeats: int,
    members: int,
    steps: int,
    lr: float,
    weight_decay: float,
    token_epoch_steps: int,
    probe_steps: int,
    n_samples: int,
    curvature_only=(),
    seed: int = 0,
    warmed: set | None = None,
    log=None,
) -> dict:
    """Every cost of one model size (see the module docstring), medians over
    ``repeats``.

    Each repeat trains ``members`` networks of ``model_kwargs`` (seeds
    ``derive_seed(seed, repeat, k)``) for ``steps`` steps on the corpus (``contexts``,
    ``counts``), times the token epoch and the predictives of the first network and of
    all of them over ``prompts``, then fits every flavour of ``plans``
    (:func:`~bayes_at_scale.core.cost_model.plan_fits`) whose status is ``measured`` on
    the first network, an epoch probe right before each (:func:`profile_posterior`).  A
    fit that raises is recorded as ``failed`` with the error, never crashing.
    ``warmed`` (the flavours already warmed up in this process) is updated in place.
    Returns one dict: the size, its times in seconds and in epochs, and ``flavours``:
    each plan with its measured costs.
    """
    warmed = set() if warmed is None else warmed
    vocab_size = counts.shape[1]
    loader = count_loader(contexts, counts)
    prompts_expanded, targets = loader.dataset.tensors
    n_pairs, queries = int(targets.shape[0]), int(prompts.shape[0])
    one_hot = torch.nn.functional.one_hot(targets, vocab_size)
    training = dict(lr=lr, weight_decay=weight_decay)
    epochs, member_seconds, token_epochs, train_memory = [], [], [], []
    map_times, ensemble_times, runs = [], [], {name: [] for name in plans}
    for repeat in range(repeats):
        networks = []
        for k in range(members):
            if repeat == 0 and k == 0:  # untimed warm-up of this size's kernels
                with seeded_torch(derive_seed(seed, repeat, k)):
                    warm = CausalLM(vocab_size, contexts.shape[1], **model_kwargs)
                seconds_per_step(warm, contexts, counts, steps=1)
            with PeakMemory() as memory:
                model, wall = timed_training(
                    vocab_size,
                    contexts,
                    counts,
                    model_kwargs,
                    steps=steps,
                    seed=derive_seed(seed, repeat, k),
                    **training,
                )
            networks.append(model)
            member_seconds.append(wall)
            epochs.append(wall / steps)
            if k == 0:
                train_memory.append(memory.increase)
        first = networks[0]
        token_epochs.append(
            seconds_per_step(
                first, prompts_expanded, one_hot, steps=token_epoch_steps, **training
            )
        )
        map_times.append(time_call(lambda: next_token_probs(first, prompts)))
        ensemble_times.append(
            time_call(
                lambda: torch.stack(
                    [next_token_probs(m, prompts) for m in networks]
                ).mean(0)
            )
        )
        for name, plan in plans.items():
            if plan["status"] != "measured":
                continue
            try:
                if name not in warmed:  # untimed: one-off library start-up
                    few = count_loader(contexts[:8], counts[:8])
                    fit_posterior(NextToken(first), few, name, prior_steps=1)
                    warmed.add(name)
                # an epoch timed right now pairs the fit with the machine's load at this
                # moment
                epochs.append(
                    seconds_per_step(
                        first, contexts, counts, steps=probe_steps, **training
                    )
                )
                result = profile_posterior(
                    first,
                    loader,
                    name,
                    prompts,
                    n_samples=n_samples,
                    seed=seed,
                    closed_form=plan["closed_form"],
                    curvature=name in curvature_only,
                )
                result["adjacent_epoch_seconds"] = epochs[-1]
            except Exception as error:  # never crash: record what went wrong
                plan.update(status="failed", reason=f"{type(error).__name__}: {error}")
                runs[name] = []
                continue
            runs[name].append(result)
            if log:
                log(
                    f"  d_model={model_kwargs.get('d_model')} n_layers="
                    f"{model_kwargs.get('n_layers')} repeat {repeat + 1}: {name} fit "
                    f"{result['fit_seconds']:.2f} s"
                )

    shape = model_shape(first)
    epoch = median(epochs)
    row = {
        "d_model": shape["d_model"],
        "n_layers": shape["n_layers"],
        "n_heads": model_kwargs.get("n_heads"),
        **{
            k: shape[k]
            for k in ("parameters", "last_layer_parameters", "vocab", "context")
        },
        "contexts": int(contexts.shape[0]),
        "pairs": n_pairs,
        "expansion": n_pairs / int(contexts.shape[0]),
        "train_steps": steps,
        "repeats": repeats,
        "epoch_seconds": epoch,
        "epoch_seconds_all": epochs,
        "member_train_seconds_all": member_seconds,
        "token_epoch_seconds": median(token_epochs),
        "train_peak_rss_bytes": median(train_memory),
        "map_predict_seconds_per_1000": per_1000(median(map_times), queries),
        "ensemble_members": members,
        # every member does the same work: count x median resists load spikes
        "ensemble_train_seconds": members * median(member_seconds),
        "ensemble_predict_seconds_per_1000": per_1000(median(ensemble_times), queries),
    }
    epoch_ratios(row, epoch)
    row["ensemble_train_epochs"] = row["ensemble_train_seconds"] / epoch
    row["flavours"] = {
        name: (
            _summary(dict(plan), runs[name], row, queries)
            if plan["status"] == "measured" and runs[name]
            else dict(plan)
        )
        for name, plan in plans.items()
    }
    return row


# --- round 2: the fit and the token epoch against the corpus size (claim C29) ---------


def fit_and_token_epoch(
    model: CausalLM,
    prompts: torch.Tensor,
    targets: torch.Tensor,
    flavour: str,
    *,
    epoch_steps: int,
    lr: float = 1e-2,
    weight_decay: float = 1e-5,
) -> tuple[float, float]:
    """``(fit_seconds, token_epoch_seconds)`` of ``model`` on a corpus of ``N`` rows,
    one per token (``prompts`` ``(N, T)``, next tokens ``targets`` ``(N,)``).

    The fit is :attr:`Posterior.fit_seconds <bayes_at_scale.core.posteriors.Posterior>`
    of the posterior ``flavour`` (curvature plus prior precision by marginal likelihood)
    over the ``N`` pairs; the token epoch is one full-batch
    :func:`~bayes_at_scale.core.training.train_map` step over the same ``N`` rows
    (:func:`seconds_per_step` over ``epoch_steps`` steps of a copy of ``model``).  The
    epoch is timed first, the fit right after it, so that both see the machine's load of
    the same moment."""
    if prompts.dim() != 2 or targets.dim() != 1 or prompts.shape[0] != targets.shape[0]:
        raise ValueError(
            "prompts (N, T) and targets (N,) must have one row per token, got "
            f"{tuple(prompts.shape)} and {tuple(targets.shape)}"
        )
    one_hot = torch.nn.functional.one_hot(targets, model.vocab_size)
    epoch = seconds_per_step(
        model, prompts, one_hot, steps=epoch_steps, lr=lr, weight_decay=weight_decay
    )
    fit = fit_posterior(NextToken(model), next_token_loader(prompts, targets), flavour)
    return float(fit.fit_seconds), float(epoch)


def fit_line(n, seconds) -> tuple[float, float]:
    """``(a, b)`` of the least-squares line ``seconds = a + b n``: ``a`` is the overhead
    that does not depend on the corpus size, ``b`` the cost per token."""
    n, seconds = np.asarray(n, dtype=float), np.asarray(seconds, dtype=float)
    if n.ndim != 1 or n.shape != seconds.shape:
        raise ValueError(
            "n and seconds must be one-dimensional of the same length, got "
            f"shapes {n.shape} and {seconds.shape}"
        )
    if not (np.isfinite(n).all() and np.isfinite(seconds).all()):
        raise ValueError("a line cannot be fitted to NaN or infinite values")
    if len(np.unique(n)) < 2:
        raise ValueError("a line needs at least two distinct corpus sizes")
    b, a = np.polyfit(n, seconds, 1)
    return float(a), float(b)


def _timings(name: str, values, sizes: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or array.shape[0] != sizes or array.shape[1] < 1:
        raise ValueError(
            f"{name} must be (corpus sizes, repeats) = ({sizes}, R >= 1) timings, "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all() or (array <= 0).any():
        raise ValueError(f"{name} must hold positive finite seconds")
    return array


def slope_ratio(n, fit_seconds, epoch_seconds) -> dict:
    """The lines ``a + b N`` of the fit and of the token epoch through the medians over
    repeats at each corpus size, and ``slope_ratio = b_fit / b_ep``.

    ``n`` holds the corpus sizes; ``fit_seconds`` and ``epoch_seconds`` are ``(sizes,
    repeats)`` timings.  Raises if the epoch does not grow with the corpus (``b_ep <=
    0``): then the corpora are too small for the slope to rise above the noise."""
    n = np.asarray(n, dtype=float)
    fit = _timings("fit_seconds", fit_seconds, len(n))
    epoch = _timings("epoch_seconds", epoch_seconds, len(n))
    a_fit, b_fit = fit_line(n, np.median(fit, axis=1))
    a_ep, b_ep = fit_line(n, np.median(epoch, axis=1))
    if b_ep <= 0:
        raise ValueError(
            f"the token epoch does not grow with the corpus (slope {b_ep:.3g} s "
            "per token): use larger corpora"
        )
    return {
        "a_fit": a_fit,
        "b_fit": b_fit,
        "a_ep": a_ep,
        "b_ep": b_ep,
        "slope_ratio": b_fit / b_ep,
    }


def slope_ratio_interval(
    n,
    fit_seconds,
    epoch_seconds,
    seed: int,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """``(b_fit / b_ep, low, high)``: :func:`slope_ratio` with a percentile bootstrap
    interval.

    **What is resampled: the repeated timings**, within each corpus size.  Each resample
    draws, at every corpus size, ``R`` repeat indices with replacement and takes the
    same indices for the fit and for the epoch (repeat ``r`` timed both within a few
    seconds, under the same load), recomputes the medians and refits both lines.  Every
    corpus size stays in every resample, so the interval measures the timing noise, not
    the choice of sizes.  A resample whose epoch slope is not positive counts as an
    infinite ratio."""
    n = np.asarray(n, dtype=float)
    fit = _timings("fit_seconds", fit_seconds, len(n))
    epoch = _timings("epoch_seconds", epoch_seconds, len(n))
    if fit.shape != epoch.shape:
        raise ValueError(
            "fit_seconds and epoch_seconds must have the same shape, got "
            f"{fit.shape} and {epoch.shape}"
        )
    check_positive("n_resamples", n_resamples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    point = slope_ratio(n, fit, epoch)["slope_ratio"]
    rng = np.random.default_rng(seed)
    sizes, repeats = fit.shape
    rows = np.arange(sizes)[:, None]
    ratios = np.empty(int(n_resamples))
    for i in range(int(n_resamples)):
        pick = rng.integers(0, repeats, size=(sizes, repeats))
        b_fit = fit_line(n, np.median(fit[rows, pick], axis=1))[1]
        b_ep = fit_line(n, np.median(epoch[rows, pick], axis=1))[1]
        ratios[i] = b_fit / b_ep if b_ep > 0 else np.inf
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail], method="inverted_cdf")
    return float(point), float(low), float(high)


# --- tables of profiled sizes ---------------------------------------------------------


def scaling_fits(sweep: Sequence[Mapping]) -> dict:
    """Power laws against the parameter count: the epoch, and every flavour measured at
    two or more sizes (its fit in seconds and in epochs)."""
    params = [row["parameters"] for row in sweep]
    out = {}
    if len(set(params)) >= 2:
        out["epoch_seconds"] = dict(
            zip(
                ("exponent", "prefactor"),
                fit_power_law(params, [row["epoch_seconds"] for row in sweep]),
            )
        )
    names = {name for row in sweep for name in row["flavours"]}
    for name in sorted(names):
        pts = [
            (row["parameters"], row["flavours"][name])
            for row in sweep
            if row["flavours"].get(name, {}).get("fit_seconds")
        ]
        if len({p for p, _ in pts}) < 2:
            continue
        x = [p for p, _ in pts]
        out[name] = {
            "sizes": len(pts),
            "fit_seconds": dict(
                zip(
                    ("exponent", "prefactor"),
                    fit_power_law(x, [e["fit_seconds"] for _, e in pts]),
                )
            ),
            "fit_epochs": dict(
                zip(
                    ("exponent", "prefactor"),
                    fit_power_law(x, [e["fit_epochs"] for _, e in pts]),
                )
            ),
        }
    return out


def fit_costs(results, flavours: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table of the sweep's measured Laplace fits for plotting against the
    parameters: one row per (size, flavour, unit) with ``cost`` in ``epochs`` (one
    full-batch step over the distinct contexts, C13's unit) and in ``token epochs`` (the
    same step over one row per corpus token), and the fit in ``seconds``.  ``flavours``
    restricts the flavours (default: all)."""
    rows = results.get("sweep") if isinstance(results, Mapping) else results
    if isinstance(flavours, str):
        flavours = (flavours,)
    out = []
    for row in rows:
        for name, entry in row["flavours"].items():
            if entry.get("status") != "measured" or (
                flavours is not None and name not in flavours
            ):
                continue
            for unit, denominator in (
                ("epochs", row["epoch_seconds"]),
                ("token epochs", row["token_epoch_seconds"]),
            ):
                out.append(
                    {
                        "parameters": row["parameters"],
                        "d_model": row["d_model"],
                        "n_layers": row["n_layers"],
                        "flavour": name,
                        "unit": unit,
                        "cost": entry["fit_seconds"] / denominator,
                        "seconds": entry["fit_seconds"],
                    }
                )
    if not out:
        raise ValueError("no measured Laplace fit in the results")
    return pd.DataFrame(out)


def cost_table(results) -> pd.DataFrame:
    """One row per (size, flavour) of the sweep, plus one per size for the ensemble:
    status, parameters, epoch, fit and predictive costs in seconds and in epochs,
    memory."""
    rows = results.get("sweep") if isinstance(results, Mapping) else results
    out = []
    for row in rows:
        common = {
            "d_model": row["d_model"],
            "n_layers": row["n_layers"],
            "parameters": row["parameters"],
            "epoch_ms": 1e3 * row["epoch_seconds"],
        }
        for name, entry in row["flavours"].items():
            out.append(
                {
                    **common,
                    "method": name,
                    "status": entry["status"],
                    "fit_s": entry.get("fit_seconds"),
                    "fit_epochs": entry.get("fit_epochs"),
                    "probit_s_per_1000": entry.get("probit_seconds_per_1000"),
                    "sampled_s_per_1000": entry.get("sampled_seconds_per_1000"),
                    "peak_mib": (
                        None
                        if entry.get("peak_rss_bytes") is None
                        else entry["peak_rss_bytes"] / 2**20
                    ),
                    "note": entry.get("reason"),
                }
            )
        out.append(
            {
                **common,
                "method": (
                    f"ensemble x{row['ensemble_members']} "
                    f"({row['train_steps']} steps each)"
                ),
                "status": "measured",
                "fit_s": row["ensemble_train_seconds"],
                "fit_epochs": row["ensemble_train_epochs"],
                "probit_s_per_1000": None,
                "sampled_s_per_1000": row["ensemble_predict_seconds_per_1000"],
                "peak_mib": row["train_peak_rss_bytes"] / 2**20,
                "note": "training",
            }
        )
    return pd.DataFrame(out)


DEFINITIONS = {
    "epoch": (
        "one full-batch train_map step (forward+backward over every distinct context,"
        " count-weighted; clip; Adam): one pass of the training objective over the"
        " whole corpus; median of wall time / steps over every training run at that"
        " size and over a probe timed right before every fit"
    ),
    "adjacent": (
        "fit_epochs_adjacent: median over repeats of fit seconds / the probe epoch "
        "timed right before that fit"
    ),
    "ensemble_train": (
        "ensemble_size x the median member's training wall time (same work each)"
    ),
    "token_epoch": (
        "the same step on the expanded corpus (one row per corpus token, the pairs "
        "the Laplace fit iterates over)"
    ),
    "fit": (
        "Posterior.fit_seconds: curvature fit plus prior precision by marginal"
        " likelihood"
    ),
    "curvature": "the same fit with prior_steps=0",
    "per_1000": (
        "wall seconds per 1000 queries (probit: closed-form GLM predictive; sampled: "
        "Posterior.sample with n_samples)"
    ),
    "memory": (
        "peak RSS above its level at the block's start, sampled from /proc/self/statm "
        "every 5 ms (lower bound; misses spikes shorter than 5 ms; whole process)"
    ),
    "ratios": (
        "*_epochs = median seconds / median epoch_seconds (token: /"
        " token_epoch_seconds)"
    ),
    "predicted": (
        "order-of-magnitude flops and bytes (cost_model.predicted_fit_cost); a flavour "
        "is skipped when either exceeds the scale's budget (C13's flavour only for "
        "memory)"
    ),
}

"""Chapter 7's experiment: what a posterior costs (claims C13 and C14).

Everything here is measured in one process, on chapter 4's fact world (:mod:`.facts`), and
reported as a ratio to *one training epoch of the same model*:

**One epoch** is one step of :func:`~bayes_at_scale.training.train_map` as the book trains: a
full-batch step (``batch_size=None``) of the count-weighted corpus objective - forward and
backward over every distinct context, gradient clipping and one Adam update.  That step computes
the exact gradient of the average over all ``N`` corpus tokens, so it is one pass of the
training objective over the whole corpus.  ``epoch_seconds`` is a median of wall time per step
over every training run of the sweep at that size (five networks per repeat, after an untimed
warm-up step) and over a short probe (``probe_steps`` steps on a copy of the network) timed
right before every Laplace fit, so that the denominator sees the load the machine had when the
numerator was measured (``fit_epochs_adjacent`` divides each fit by its own probe).  Because a
context that occurs ``n`` times is processed once with weight ``n``, this epoch is cheaper than
a pass over ``N`` rows; the Laplace fit, in contrast, iterates over the ``N`` (prompt, next
token) pairs of :func:`~bayes_at_scale.posteriors.count_loader`.  So every size also records
``token_epoch_seconds`` - the same step on the expanded corpus, one row per token, as for a
corpus without repeated contexts - and the ratio ``expansion = N / contexts``.

**Laplace cost** is :attr:`Posterior.fit_seconds <bayes_at_scale.posteriors.Posterior>`: curvature
fit plus prior precision by marginal likelihood (C13's "fit + marglik prior").  For the flavours
in ``curvature_only`` the fit is repeated with ``prior_steps=0`` (``curvature_seconds``) to show
how the bill splits.  Before the first timed fit of a flavour an untimed warm-up fit on a few
pairs absorbs one-off library start-up.

**Predictive cost** is per 1000 queries: the closed-form probit predictive
(:meth:`Posterior.predictive`, last-layer flavours; the all-weights flavours predict by Monte
Carlo and have none) and ``n_samples`` posterior samples (:meth:`Posterior.sample`), next to
the network's own forward pass and a 5-member ensemble's.

**Memory** is the peak resident set size (RSS) of the process during the block, above its level
when the block started (:class:`PeakMemory`): a background thread reads ``/proc/self/statm``
every 5 ms.  ``tracemalloc`` is no use here - it sees Python's allocator only, not torch's tensor
memory - and ``ru_maxrss`` is a process-lifetime high-water mark (used only where ``/proc`` is
missing).  Limits: a spike shorter than the sampling interval can be missed; memory freed by
earlier blocks and kept by the allocator is reused without raising RSS, so the figure is a lower
bound (``gc.collect`` and glibc's ``malloc_trim`` run before each block to reduce this); it
counts the whole process.

**Budgets.**  Before fitting, every flavour's cost is predicted (:func:`predicted_fit_cost`: an
order-of-magnitude flop and byte count), and the flavour is skipped - recorded with the reason,
never crashing - when its predicted flops or bytes exceed the scale's budget.  The decision
depends on the shapes only, never on how busy the machine is, so every run measures the same
flavours.  C13's flavour (``required``) is exempt from the flop budget, not the memory budget.
A fit that raises is recorded as failed.  Each measured flavour records the flop rate it
reached (``achieved_flop_rate``): how far the flop count is from predicting seconds.

Statistics are medians over ``repeats`` (each repeat trains fresh networks); a ratio
``*_epochs`` is the median time divided by ``epoch_seconds``.  On a machine shared with other
jobs every wall time is noisy (two torch threads that share two busy cores can run a step ten
times slower for a while); compare ``fit_epochs`` with ``fit_epochs_adjacent`` to see how much.
A 5-member ensemble's training is counted as five times the median member's wall time: every
member does the same work.

C14 (:func:`run_c14`) replays chapter 4's hallucination detection: five networks trained from
different seeds on one fact world; the first is the MAP under the default (last-layer KFAC)
Laplace posterior.  Scores as in chapter 4 - LA's mutual information from posterior samples, the
ensemble's mutual information (entropy of the mean minus mean entropy of the members) - each
flagging its own wrong answers (:func:`~bayes_at_scale.hallucination.detection_labels`).
Compute is wall seconds, training included.

:func:`llm_laplace_costs` does the same bookkeeping on paper for LLM shapes.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import hashlib
import json
import math
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import metrics
from .facts import FACT_RECIPES, FactWorld, answer_outcome, make_fact_world
from .hallucination import answer_table, detection_labels
from .models import CausalLM, NextToken, next_token_probs
from .posteriors import (DEFAULT_FLAVOUR, FLAVOURS, PosteriorConfig, count_loader, fit_posterior,
                         flavour)
from .settings import project_root, seed_everything
from .training import train_map

C13_FLAVOUR = DEFAULT_FLAVOUR          # last-layer KFAC, prior precision by marginal likelihood
ENSEMBLE_SIZE = 5
LLM_VOCABS = (32_000, 128_000)
LLM_LAYERS = (32, 80)


# --- scales ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostScale:
    """Everything one run of the cost benchmark measures, at one scale."""

    name: str
    world: dict                               # make_fact_world arguments (the seed is added)
    sizes: tuple[tuple[int, int], ...]        # the sweep: (d_model, n_layers)
    n_heads: int
    sweep_steps: int                          # training steps of every network in the sweep
    lr: float
    weight_decay: float
    flavours: tuple[str, ...]
    queries: int                              # prompts the predictive costs are timed on
    n_samples: int                            # posterior samples of the sampled predictive
    budget_flops: float                       # skip a fit predicted to need more work
    budget_bytes: float                       # ... or to need more memory
    repeats: int
    token_epoch_steps: int
    probe_steps: int                          # epoch probe timed right before every fit
    min_parameter_span: float                 # C13 needs largest / smallest parameters >= this
    c14_model: dict                           # CausalLM arguments of C14's networks
    c14_steps: int
    c14_lr: float
    c14_queries: int
    c14_samples: int
    c14_resamples: int = 1000                 # bootstrap resamples of the AUROC ratio (queries)
    curvature_only: tuple[str, ...] = (C13_FLAVOUR,)
    # C14's Pareto figure: Laplace flavours on the MAP (the first is C14's own)
    c14_flavours: tuple[str, ...] = (C13_FLAVOUR, "last_layer_diag", "all_diag_ef")
    required: tuple[str, ...] = (C13_FLAVOUR,)  # measured even over the flop budget
    ensemble_size: int = ENSEMBLE_SIZE

    def __post_init__(self):
        if not self.sizes:
            raise ValueError("a cost scale needs at least one model size")
        for size in self.sizes:
            if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                     for v in size):
                raise ValueError(f"a size is (d_model, n_layers) of positive integers, "
                                 f"got {size!r}")
        unknown = [f for f in (*self.flavours, *self.c14_flavours) if f not in FLAVOURS]
        if unknown:
            raise ValueError(f"unknown posterior flavours {unknown}: expected some of "
                             f"{tuple(FLAVOURS)}")
        for name in ("sweep_steps", "queries", "n_samples", "repeats", "token_epoch_steps",
                     "probe_steps", "c14_steps", "c14_queries", "c14_samples", "c14_resamples",
                     "ensemble_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.ensemble_size < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {self.ensemble_size}")
        if not self.c14_flavours or self.c14_flavours[0] != C13_FLAVOUR:
            raise ValueError(f"c14_flavours must start with C14's flavour {C13_FLAVOUR!r}, got "
                             f"{self.c14_flavours!r}")
        if not (self.budget_flops >= 0 and self.budget_bytes >= 0):
            raise ValueError("budgets must be non-negative")


_QUICK, _FULL = FACT_RECIPES["quick"], FACT_RECIPES["full"]

COST_SCALES: dict[str, CostScale] = {
    # seconds: for the tests
    "tiny": CostScale(
        name="tiny",
        world=dict(n_entities=120, n_name_parts=5, name_length=3, n_values=6, n_mentions=300,
                   zipf_exponent=0.9, unknown_share=0.1, n_misinformation=2,
                   misinformation_repeats=5),
        sizes=((4, 1), (16, 1)), n_heads=2, sweep_steps=3, lr=1e-2, weight_decay=1e-5,
        flavours=tuple(FLAVOURS), queries=32, n_samples=8, budget_flops=1e10,
        budget_bytes=2.0**30, repeats=1, token_epoch_steps=1, probe_steps=1,
        min_parameter_span=1.0,
        c14_model=dict(d_model=8, n_heads=2, n_layers=1), c14_steps=40, c14_lr=3e-2,
        c14_queries=200, c14_samples=20, c14_resamples=50),
    # about a minute on 2 cores: chapter 4's quick world; sizes from 1.8k to 410k parameters.
    # C14 keeps chapter 4's quick world and network but trains 200 steps instead of 600
    # (the loss is within 10% of its final value by then) and asks 1000 questions, not 4000.
    "quick": CostScale(
        name="quick", world=dict(_QUICK.corpus),
        sizes=((8, 1), (32, 2), (128, 2)), n_heads=2, sweep_steps=5,
        lr=_QUICK.training["lr"], weight_decay=_QUICK.training["weight_decay"],
        flavours=tuple(FLAVOURS), queries=128, n_samples=100, budget_flops=5e10,
        budget_bytes=2.0 * 2**30, repeats=1, token_epoch_steps=2, probe_steps=2,
        min_parameter_span=100.0,
        c14_model=dict(_QUICK.model), c14_steps=200, c14_lr=_QUICK.training["lr"],
        c14_queries=1000, c14_samples=200),
    # bigger hardware: chapter 4's full world, 6k to 3.2M parameters, chapter 4's full recipe
    "full": CostScale(
        name="full", world=dict(_FULL.corpus),
        sizes=((16, 1), (32, 2), (64, 2), (128, 3), (256, 4)), n_heads=4, sweep_steps=20,
        lr=_FULL.training["lr"], weight_decay=_FULL.training["weight_decay"],
        flavours=tuple(FLAVOURS), queries=1000, n_samples=100, budget_flops=2e12,
        budget_bytes=8.0 * 2**30, repeats=3, token_epoch_steps=5, probe_steps=3,
        min_parameter_span=100.0,
        c14_model=dict(_FULL.model), c14_steps=_FULL.training["steps"],
        c14_lr=_FULL.training["lr"], c14_queries=4000, c14_samples=200),
}


def cost_scale(scale: str | CostScale) -> CostScale:
    """The named cost scale (``tiny``, ``quick`` or ``full``), or ``scale`` itself."""
    if isinstance(scale, CostScale):
        return scale
    if scale not in COST_SCALES:
        raise ValueError(f"unknown cost scale {scale!r}: expected one of {tuple(COST_SCALES)}")
    return COST_SCALES[scale]


# --- memory ---------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def _rss_bytes() -> int | None:
    """Current resident set size, or None where /proc is missing."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return None


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _release_memory() -> None:
    gc.collect()
    try:  # hand freed heap memory back to the OS (glibc), so the baseline is honest
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager: ``increase`` = peak RSS during the block minus RSS at its start (bytes).

    Samples ``/proc/self/statm`` every ``interval`` seconds in a background thread (and once at
    the end of the block).  Without ``/proc`` it falls back to the growth of ``ru_maxrss``, which
    is zero unless the block sets a new process-wide high-water mark.  ``method`` says which.
    """

    def __init__(self, interval: float = 0.005):
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.interval = interval
        self.increase: int | None = None
        self.method = "proc_statm_sampled" if _rss_bytes() is not None else "ru_maxrss_delta"

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __enter__(self) -> "PeakMemory":
        _release_memory()
        if self.method == "ru_maxrss_delta":
            self._start = _maxrss_bytes()
            return self
        self._start = self._peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "ru_maxrss_delta":
            self.increase = max(0, _maxrss_bytes() - self._start)
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss_bytes() or 0)
        self.increase = max(0, self._peak - self._start)


# --- sizes and predicted costs --------------------------------------------------------------


def model_shape(lm: CausalLM) -> dict:
    """Sizes that the cost model needs: width, depth, vocabulary, context, parameter counts."""
    if not isinstance(lm, CausalLM):
        raise TypeError(f"expected a CausalLM, got {type(lm).__name__}")
    d = lm.head.in_features
    return {"d_model": d, "n_layers": len(lm.blocks.layers), "vocab": lm.vocab_size,
            "context": lm.max_len,
            "parameters": sum(p.numel() for p in lm.parameters()),
            "last_layer_parameters": (d + 1) * lm.vocab_size,
            "block_matrix_parameters": sum(p.numel() for p in lm.blocks.parameters()
                                           if p.dim() == 2),
            "embedding_parameters": lm.token.weight.numel() + lm.position.weight.numel()}


def forward_flops(shape: Mapping) -> float:
    """Flops of one next-token prediction: ``2 T M + 4 T^2 d L + 2 (d + 1) V`` for ``T``
    positions through block matrices of ``M`` weights, attention over ``T`` positions in each
    of ``L`` layers, and the head at the last position."""
    t, d, layers = shape["context"], shape["d_model"], shape["n_layers"]
    return float(2 * t * shape["block_matrix_parameters"] + 4 * t * t * d * layers
                 + 2 * shape["last_layer_parameters"])


def predicted_fit_cost(config: PosteriorConfig, shape: Mapping, n_pairs: int) -> dict:
    """Order-of-magnitude flops and bytes of ``Posterior.fit`` on ``n_pairs`` training pairs.

    With ``N`` pairs, forward flops ``F`` (:func:`forward_flops`), width ``d``, vocabulary
    ``V``, last-layer parameters ``p = (d + 1) V``, fitted parameters ``P``, ``S`` prior steps:

    * last-layer KFAC: ``N F + N ((d+1) V + (d+1)^2 + V^2)`` (features, output Jacobians, the two
      factors) ``+ (d+1)^3 + V^3`` (eigendecompositions) ``+ S p``; memory: both factors and
      their eigenvectors;
    * last-layer diagonal: ``N F + N V p + S p``; memory a few vectors of ``p``;
    * last-layer full: ``N F + N V p^2`` (the GGN) ``+ S p^3`` (a log-determinant per marginal-
      likelihood step); memory three ``p x p`` matrices and the GGN's per-batch Jacobians,
      ``4 x fit_batch x V x p`` (curvlinops; the factor 4 from measurement);
    * all weights, diagonal EF: ``3 N F`` (per-example gradients) ``+ N P + S P``; memory the
      per-example gradients of one batch and their intermediates, ``8 x fit_batch x P`` (the
      factor 8 from measurement).

    Every fit also holds one batch of activations and two copies of the model.  Bytes use the
    default dtype's element size.  Measured against these predictions on chapter 4's quick world
    (2 cores), the bytes are right within a factor of about 4; the flops are done at very
    different rates (a batched forward pass runs far faster than per-example gradients under
    ``vmap`` or a small fit dominated by fixed overheads) - they decide what is affordable, not
    what anything costs.
    """
    if not isinstance(config, PosteriorConfig):
        raise TypeError(f"config must be a PosteriorConfig, got {type(config).__name__}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}")
    n = float(n_pairs)
    d1, v, layers = shape["d_model"] + 1, shape["vocab"], shape["n_layers"]
    p = float(shape["last_layer_parameters"])
    big_p = float(shape["parameters"])
    if config.freeze:
        big_p -= shape["embedding_parameters"]  # the freezable parameters are the embeddings
    f = forward_flops(shape)
    s = config.prior_steps
    batch = min(config.fit_batch, n_pairs)
    activations = batch * shape["context"] * shape["d_model"] * (10 * layers + 2) + batch * v
    key = (config.subset_of_weights, config.hessian_structure)
    if key == ("last_layer", "kron"):
        flops = n * f + n * (d1 * v + d1**2 + v**2) + d1**3 + v**3 + s * p
        floats = 2.0 * (d1**2 + v**2) + activations
    elif key == ("last_layer", "diag"):
        flops = n * f + n * v * p + s * p
        floats = 4 * p + activations
    elif key == ("last_layer", "full"):
        flops = n * f + n * v * p**2 + s * p**3
        floats = 3 * p**2 + 4 * batch * v * p + activations
    elif key == ("all", "diag"):
        flops = 3 * n * f + n * big_p + s * big_p
        floats = 8 * batch * big_p + 3 * activations
    else:
        raise ValueError(f"no cost model for subset_of_weights={key[0]!r}, "
                         f"hessian_structure={key[1]!r}")
    itemsize = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    return {"flops": float(flops),
            "bytes": float(itemsize * (floats + 2 * shape["parameters"]))}


def predicted_probit_bytes(config: PosteriorConfig, shape: Mapping) -> float:
    """Memory of the closed-form GLM predictive: Jacobians ``predict_batch x V x p`` (twice)."""
    fitted = shape["last_layer_parameters"] if config.subset_of_weights == "last_layer" \
        else shape["parameters"]
    itemsize = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    return float(2 * itemsize * config.predict_batch * shape["vocab"] * fitted)


def has_closed_form(config: PosteriorConfig) -> bool:
    """Whether the flavour's predictive is the closed-form probit (GLM) one."""
    return config.pred_type == "glm" and config.link_approx == "probit"


# --- the sweep ------------------------------------------------------------------------------


def _median(values) -> float:
    return float(statistics.median(values))


def _train(world: FactWorld, contexts, counts, model_kwargs: dict, steps: int, lr: float,
           weight_decay: float, seed: int) -> tuple[CausalLM, float]:
    seed_everything(seed)
    model = CausalLM(world.vocab_size, max_len=world.seq_len - 1, **model_kwargs)
    start = time.perf_counter()
    train_map(model, contexts, counts, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed,
              progress=False)
    return model, time.perf_counter() - start


def _warm_up_training(model: CausalLM, contexts, counts) -> None:
    train_map(copy.deepcopy(model), contexts, counts, steps=1, progress=False)


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _per_1000(seconds: float, queries: int) -> float:
    return seconds * 1000.0 / queries


def _measure_flavour(name: str, model: CausalLM, loader, prompts, scale: CostScale,
                     seed: int, closed_form: bool) -> dict:
    """One repeat of one flavour: fit (time, memory), curvature only, predictive costs."""
    with PeakMemory() as memory:
        posterior = fit_posterior(NextToken(model), loader, name)
    out = {"fit_seconds": posterior.fit_seconds, "peak_rss_bytes": memory.increase,
           "prior_precision": float(posterior.prior_precision.mean())}
    if name in scale.curvature_only:
        out["curvature_seconds"] = fit_posterior(NextToken(model), loader, name,
                                                 prior_steps=0).fit_seconds
    if closed_form:
        out["probit_seconds"] = _time(lambda: posterior.predictive(prompts))
    out["sampled_seconds"] = _time(lambda: posterior.sample(prompts, scale.n_samples, seed=seed))
    return out


def _ratios(row: dict, epoch: float) -> None:
    """Add ``*_epochs`` = ``*_seconds`` / epoch for every timed quantity of ``row``."""
    for key in list(row):
        if key.endswith("_seconds") and row[key] is not None and key != "epoch_seconds":
            row[key[: -len("_seconds")] + "_epochs"] = row[key] / epoch
        elif key.endswith("_seconds_per_1000") and row[key] is not None:
            row[key[: -len("_seconds_per_1000")] + "_epochs_per_1000"] = row[key] / epoch


def measure_size(world: FactWorld, d_model: int, n_layers: int, scale: CostScale, seed: int,
                 repeats: int, warmed: set, log=None) -> dict:
    """Every cost of one model size, medians over ``repeats`` (see the module docstring).

    ``warmed`` (the flavours already warmed up in this process) is updated in place.
    """
    contexts, counts = world.next_token_counts()
    loader = count_loader(contexts, counts)
    prompts_expanded, targets = loader.dataset.tensors
    n_pairs = int(targets.shape[0])
    one_hot = torch.nn.functional.one_hot(targets, world.vocab_size)
    prompts = world.prompts(world.sample_queries(scale.queries, seed=seed + 2000))
    model_kwargs = dict(d_model=d_model, n_heads=scale.n_heads, n_layers=n_layers)
    shape = model_shape(CausalLM(world.vocab_size, world.seq_len - 1, **model_kwargs))

    # which flavours the budget allows, predicted before anything is fitted at this size
    plans = {}
    for name in scale.flavours:
        config = flavour(name)
        cost = predicted_fit_cost(config, shape, n_pairs)
        plan = {"predicted_flops": cost["flops"], "predicted_bytes": cost["bytes"],
                "closed_form": has_closed_form(config), "status": "measured", "reason": None}
        over = cost["flops"] > scale.budget_flops
        if over and name not in scale.required:
            plan.update(status="skipped", reason=(
                f"predicted {cost['flops']:.3g} flops exceed the budget of "
                f"{scale.budget_flops:.3g}"))
        elif cost["bytes"] > scale.budget_bytes:
            plan.update(status="skipped", reason=(
                f"predicted memory {cost['bytes'] / 2**20:.4g} MiB exceeds the budget of "
                f"{scale.budget_bytes / 2**20:.4g} MiB"))
        elif over:
            plan["reason"] = "over the flop budget, measured because C13 needs it"
        if plan["closed_form"]:
            probit_bytes = predicted_probit_bytes(config, shape)
            if probit_bytes > scale.budget_bytes:
                plan["closed_form"] = False
                plan["probit_skipped"] = (f"predicted memory {probit_bytes / 2**20:.4g} MiB "
                                          f"exceeds the budget")
        plans[name] = plan

    epochs, member_seconds, token_epochs, train_memory = [], [], [], []
    map_times, ensemble_times, runs = [], [], {name: [] for name in scale.flavours}

    def probe(model) -> float:
        """An epoch timed right now, on a copy of ``model``: pairs a fit with the load the
        machine has at that moment."""
        wall = _time(lambda: train_map(copy.deepcopy(model), contexts, counts,
                                       steps=scale.probe_steps, lr=scale.lr,
                                       weight_decay=scale.weight_decay, progress=False))
        epochs.append(wall / scale.probe_steps)
        return epochs[-1]

    for repeat in range(repeats):
        base = seed + 100 * repeat
        members = []
        for k in range(scale.ensemble_size):
            if repeat == 0 and k == 0:  # untimed warm-up of this size's kernels
                seed_everything(base)
                _warm_up_training(CausalLM(world.vocab_size, world.seq_len - 1, **model_kwargs),
                                  contexts, counts)
            with PeakMemory() as memory:
                model, wall = _train(world, contexts, counts, model_kwargs, scale.sweep_steps,
                                     scale.lr, scale.weight_decay, base + k)
            members.append(model)
            member_seconds.append(wall)
            epochs.append(wall / scale.sweep_steps)
            if k == 0:
                train_memory.append(memory.increase)
        token_epochs.append(_time(lambda: train_map(
            copy.deepcopy(members[0]), prompts_expanded, one_hot,
            steps=scale.token_epoch_steps, lr=scale.lr, weight_decay=scale.weight_decay,
            progress=False)) / scale.token_epoch_steps)
        map_times.append(_time(lambda: next_token_probs(members[0], prompts)))
        ensemble_times.append(_time(lambda: torch.stack(
            [next_token_probs(m, prompts) for m in members]).mean(0)))
        for name in scale.flavours:
            plan = plans[name]
            if plan["status"] != "measured":
                continue
            try:
                if name not in warmed:  # untimed: one-off library start-up
                    few = count_loader(contexts[:8], counts[:8])
                    fit_posterior(NextToken(members[0]), few, name, prior_steps=1)
                    warmed.add(name)
                adjacent = probe(members[0])
                result = _measure_flavour(name, members[0], loader, prompts, scale, seed,
                                          plan["closed_form"])
                result["adjacent_epoch_seconds"] = adjacent
            except Exception as error:  # never crash: record what went wrong
                plan.update(status="failed", reason=f"{type(error).__name__}: {error}")
                runs[name] = []
                continue
            runs[name].append(result)
            if log:
                log(f"  d_model={d_model} n_layers={n_layers} repeat {repeat + 1}: {name} fit "
                    f"{result['fit_seconds']:.2f} s")

    epoch = _median(epochs)
    row = {"d_model": d_model, "n_layers": n_layers, "n_heads": scale.n_heads, **{
        k: shape[k] for k in ("parameters", "last_layer_parameters", "vocab", "context")},
           "contexts": int(contexts.shape[0]), "pairs": n_pairs,
           "expansion": n_pairs / int(contexts.shape[0]), "train_steps": scale.sweep_steps,
           "repeats": repeats, "epoch_seconds": epoch, "epoch_seconds_all": epochs,
           "member_train_seconds_all": member_seconds,
           "token_epoch_seconds": _median(token_epochs),
           "train_peak_rss_bytes": _median(train_memory),
           "map_predict_seconds_per_1000": _per_1000(_median(map_times), scale.queries),
           "ensemble_members": scale.ensemble_size,
           # every member does the same work: count x median resists load spikes
           "ensemble_train_seconds": scale.ensemble_size * _median(member_seconds),
           "ensemble_predict_seconds_per_1000": _per_1000(_median(ensemble_times),
                                                          scale.queries)}
    _ratios(row, epoch)
    row["ensemble_train_epochs"] = row["ensemble_train_seconds"] / epoch
    flavours = {}
    for name in scale.flavours:
        plan = dict(plans[name])
        results = runs[name]
        if plan["status"] == "measured" and results:
            plan["fit_seconds"] = _median([r["fit_seconds"] for r in results])
            plan["fit_seconds_all"] = [r["fit_seconds"] for r in results]
            plan["fit_token_epochs"] = plan["fit_seconds"] / row["token_epoch_seconds"]
            plan["peak_rss_bytes"] = _median([r["peak_rss_bytes"] for r in results])
            plan["prior_precision"] = _median([r["prior_precision"] for r in results])
            if "curvature_seconds" in results[0]:
                plan["curvature_seconds"] = _median([r["curvature_seconds"] for r in results])
            plan["probit_seconds_per_1000"] = _per_1000(
                _median([r["probit_seconds"] for r in results]), scale.queries) \
                if plan["closed_form"] else None
            plan["sampled_seconds_per_1000"] = _per_1000(
                _median([r["sampled_seconds"] for r in results]), scale.queries)
            _ratios(plan, epoch)
            plan["fit_epochs"] = plan["fit_seconds"] / epoch
            plan["fit_epochs_adjacent"] = _median([r["fit_seconds"] / r["adjacent_epoch_seconds"]
                                                   for r in results])
            plan["achieved_flop_rate"] = plan["predicted_flops"] / plan["fit_seconds"]
        flavours[name] = plan
    row["flavours"] = flavours
    return row


def fact_task(scale: str | CostScale, seed: int) -> FactWorld:
    """The fact world that the scale's sweep and C14 run on."""
    return make_fact_world(**cost_scale(scale).world, seed=seed)


def run_sweep(scale: str | CostScale, seed: int = 0, repeats: int | None = None,
              log=None) -> list[dict]:
    """Measure every size of the scale's sweep (smallest first); one dict per size."""
    scale = cost_scale(scale)
    repeats = scale.repeats if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    world = fact_task(scale, seed)
    warmed = set()
    rows = []
    gc.collect()
    gc.freeze()  # the objects alive now are never garbage: keeps PeakMemory's collections fast
    try:
        for d_model, n_layers in scale.sizes:
            if log:
                log(f"size d_model={d_model} n_layers={n_layers}")
            rows.append(measure_size(world, d_model, n_layers, scale, seed, repeats, warmed,
                                     log=log))
    finally:
        gc.unfreeze()
    return rows


# --- C14: Laplace against a deep ensemble on chapter 4's hallucination detection -------------


def _ensemble_answers(world: FactWorld, entities, probs: np.ndarray) -> pd.DataFrame:
    """The ensemble of ``probs`` (members, queries, V): mean-probability answer, its outcome and
    the mutual information (entropy of the mean minus the members' mean entropy)."""
    answers = probs.mean(axis=0).argmax(axis=1)
    return pd.DataFrame({"entity": entities, "answer_ENS": answers,
                         "outcome_ENS": answer_outcome(answers, world, entities),
                         "mi_ENS": metrics.predictive_decomposition(probs)["epistemic"]})


def run_c14(scale: str | CostScale, seed: int = 0, log=None) -> dict:
    """Chapter 4's hallucination detection by Laplace posteriors and by deep ensembles.

    One fact world (``seed``); ``ensemble_size`` networks trained from seeds ``seed``,
    ``seed + 1``, ...; the first is the MAP under every Laplace flavour of ``c14_flavours``
    (the first of which, last-layer KFAC, is C14's).  Fresh queries as in
    :func:`~bayes_at_scale.hallucination.run_facts`.  Each method flags its own wrong answers
    (:func:`~bayes_at_scale.hallucination.detection_labels`) by its own score.  Compute, wall
    seconds, training included:

    Every network does the same work, so one training costs the median of the members' wall
    times (robust to load spikes on a shared machine; all times are in the result).

    * MAP (score: 1 - top probability) = one training + one forward pass over the queries;
    * LA (score: mutual information of posterior samples) = one training + ``fit_posterior``
      (construction, curvature, prior) + :func:`~bayes_at_scale.hallucination.answer_table`
      (predictive, posterior samples and their mutual information; it also runs the network's
      own forward pass, a few milliseconds);
    * an ensemble of ``k`` members (score: mutual information) = ``k`` trainings + the first
      ``k`` members' forward passes, the mean and the mutual information
      (:func:`~bayes_at_scale.metrics.predictive_decomposition`).

    ``pareto`` has one row per method (the ensembles for ``k = 2 ... ensemble_size``); the
    top-level ``auroc_*`` and ``compute_*`` keys are C14's pair: last-layer KFAC against the
    full ensemble.
    """
    scale = cost_scale(scale)
    world = fact_task(scale, seed)
    contexts, counts = world.next_token_counts()
    members, train_seconds = [], []
    for k in range(scale.ensemble_size):
        model, wall = _train(world, contexts, counts, scale.c14_model, scale.c14_steps,
                             scale.c14_lr, scale.weight_decay, seed + k)
        members.append(model)
        train_seconds.append(wall)
        if log:
            log(f"  C14 member {k + 1}/{scale.ensemble_size} trained in {wall:.1f} s")
    one_training = _median(train_seconds)  # identical work: the median resists load spikes
    entities = world.sample_queries(scale.c14_queries, seed=seed + 1000)
    prompts = world.prompts(entities)

    def detection(scores, wrong) -> dict:
        """A method's Pareto fields: its score's AUROC at flagging its own wrong answers."""
        return {"scores": scores, "wrong": wrong, "auroc": metrics.auroc(scores, wrong),
                "wrong_rate": float(wrong.mean())}

    pareto, la = [], {}
    for name in scale.c14_flavours:
        network = members[0] if not la else copy.deepcopy(members[0])  # one model per Laplace
        start = time.perf_counter()
        posterior = fit_posterior(NextToken(network), count_loader(contexts, counts), name)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        table, _ = answer_table(world, network, posterior, entities, scale.c14_samples, seed)
        predict_seconds = time.perf_counter() - start
        la[name] = {"table": table, "fit_seconds": fit_seconds,
                    "fit_seconds_inner": posterior.fit_seconds,
                    "predict_seconds": predict_seconds}
        pareto.append({"method": f"LA {name}", "kind": "Laplace", "members": 1,
                       **detection(table["mi_LA"].to_numpy(), detection_labels(table, "LA")),
                       "compute_seconds": one_training + fit_seconds + predict_seconds})
        if log:
            log(f"  C14 LA {name}: fit {fit_seconds:.1f} s, predict {predict_seconds:.1f} s")

    forward_seconds, member_probs = [], []
    for model in members:
        start = time.perf_counter()
        member_probs.append(next_token_probs(model, prompts).double().numpy())
        forward_seconds.append(time.perf_counter() - start)
    probs = np.stack(member_probs)
    probs /= probs.sum(axis=-1, keepdims=True)
    first = la[scale.c14_flavours[0]]["table"]
    pareto.insert(0, {"method": "MAP", "kind": "MAP", "members": 1,
                      **detection(1 - first["confidence_MAP"].to_numpy(),
                                  detection_labels(first, "MAP")),
                      "compute_seconds": one_training + forward_seconds[0]})
    for k in range(2, scale.ensemble_size + 1):
        start = time.perf_counter()
        ensemble = _ensemble_answers(world, entities, probs[:k])
        combine = time.perf_counter() - start
        pareto.append({"method": f"ensemble x{k}", "kind": "ensemble", "members": k,
                       **detection(ensemble["mi_ENS"].to_numpy(),
                                   detection_labels(ensemble, "ENS")),
                       "compute_seconds": k * one_training + sum(forward_seconds[:k]) + combine})
    for row in pareto:
        row["compute_trainings"] = row["compute_seconds"] / one_training

    c14 = la[scale.c14_flavours[0]]
    la_row, full = pareto[1], pareto[-1]  # C14's flavour and the whole ensemble
    low, high = metrics.bootstrap_ci(
        lambda a, b, c, d: metrics.auroc(a, b) / metrics.auroc(c, d),
        la_row["scores"], la_row["wrong"], full["scores"], full["wrong"],
        seed=seed, n_resamples=scale.c14_resamples)
    for row in pareto:  # the per-query arrays were only needed for the interval
        del row["scores"], row["wrong"]
    return {"seed": seed, "queries": scale.c14_queries, "n_samples": scale.c14_samples,
            "model": dict(scale.c14_model), "train_steps": scale.c14_steps,
            "members": scale.ensemble_size, "flavour": scale.c14_flavours[0],
            "auroc_la": la_row["auroc"], "auroc_ensemble": full["auroc"],
            "auroc_map_confidence": pareto[0]["auroc"],
            "wrong_rate_la": la_row["wrong_rate"], "wrong_rate_ensemble": full["wrong_rate"],
            "train_seconds": train_seconds, "one_training_seconds": one_training,
            "forward_seconds": forward_seconds,
            "la_fit_seconds": c14["fit_seconds"],
            "la_fit_seconds_inner": c14["fit_seconds_inner"],
            "la_predict_seconds": c14["predict_seconds"],
            "ensemble_predict_seconds": full["compute_seconds"] - scale.ensemble_size
            * one_training,
            "compute_la_seconds": la_row["compute_seconds"],
            "compute_ensemble_seconds": full["compute_seconds"],
            "pareto": pareto, "auroc_ratio_low": low, "auroc_ratio_high": high,
            **c14_statistics(la_row["auroc"], full["auroc"], la_row["compute_seconds"],
                             full["compute_seconds"])}


# --- the claims -----------------------------------------------------------------------------


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def c13_statistics(results, min_parameter_span: float = 100.0) -> dict:
    """Claim C13: ``worst_cost_in_epochs`` = max over sizes of the last-layer KFAC fit (curvature
    plus marginal-likelihood prior) in epochs of the same model.

    ``results`` is :func:`run_costs`' dict or its ``"sweep"`` list: one dict per size with
    ``parameters``, ``epoch_seconds`` and ``flavours[C13_FLAVOUR]["fit_seconds"]``.  Raises if
    the flavour was not measured at some size, or if the sweep spans fewer than
    ``min_parameter_span`` in parameters (the claim asks for two orders of magnitude).
    """
    rows = results.get("sweep") if isinstance(results, Mapping) else results
    if rows is None or isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise TypeError("results must be run_costs' dict or a list of per-size dicts")
    rows = list(rows)
    if not rows:
        raise ValueError("no model sizes in the results")
    costs, params = [], []
    for row in rows:
        size = f"d_model={row.get('d_model')}, n_layers={row.get('n_layers')}"
        entry = row.get("flavours", {}).get(C13_FLAVOUR)
        if entry is None or entry.get("status", "measured") != "measured" \
                or entry.get("fit_seconds") is None:
            why = "missing" if entry is None else f"{entry.get('status')}: {entry.get('reason')}"
            raise ValueError(f"{C13_FLAVOUR} was not measured at {size} ({why}); C13 needs it "
                             f"at every size")
        costs.append(_positive(f"fit_seconds at {size}", entry["fit_seconds"])
                     / _positive(f"epoch_seconds at {size}", row["epoch_seconds"]))
        params.append(_positive(f"parameters at {size}", row["parameters"]))
    span = max(params) / min(params)
    if span < min_parameter_span:
        raise ValueError(f"the sweep spans a factor {span:.3g} in parameters, less than the "
                         f"{min_parameter_span:g} the claim needs")
    worst = int(np.argmax(costs))
    return {"worst_cost_in_epochs": float(costs[worst]), "parameter_span": float(span),
            "worst_parameters": int(params[worst])}


def c14_statistics(auroc_la: float, auroc_ensemble: float, compute_la: float,
                   compute_ensemble: float) -> dict:
    """Claim C14: ``auroc_ratio`` = AUROC(LA) / AUROC(ensemble) and ``compute_ratio`` =
    compute(LA) / compute(ensemble), training included (seconds, or any one unit)."""
    for name, value in (("auroc_la", auroc_la), ("auroc_ensemble", auroc_ensemble)):
        _positive(name, value)
        if value > 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return {"auroc_ratio": float(auroc_la) / float(auroc_ensemble),
            "compute_ratio": _positive("compute_la", compute_la)
            / _positive("compute_ensemble", compute_ensemble)}


def c14_claim_statistics(c14: Mapping) -> dict:
    """C14's statistics as :func:`~bayes_at_scale.claims.report` takes them: the AUROC ratio
    with its bootstrap 95% interval over queries, and the compute ratio (a measured time: no
    interval)."""
    return {"auroc_ratio": (c14["auroc_ratio"], c14["auroc_ratio_low"], c14["auroc_ratio_high"]),
            "compute_ratio": c14["compute_ratio"]}


# --- scaling --------------------------------------------------------------------------------


def fit_power_law(x, y) -> tuple[float, float]:
    """``(exponent, prefactor)`` of ``y = prefactor * x ** exponent``, least squares in log-log.

    Raises a ``ValueError`` for non-positive, NaN or infinite values, mismatched lengths, or
    fewer than two distinct ``x``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be one-dimensional of the same length, got shapes "
                         f"{x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a power law cannot be fitted to NaN or infinite values")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law needs strictly positive x and y (it is fitted to their "
                         "logarithms)")
    exponent = metrics.loglog_slope(x, y)  # raises for fewer than two distinct x
    prefactor = float(np.exp(np.mean(np.log(y)) - exponent * np.mean(np.log(x))))
    return exponent, prefactor


def scaling_fits(sweep: Sequence[Mapping]) -> dict:
    """Power laws against the parameter count: the epoch, and every flavour measured at two or
    more sizes (its fit in seconds and in epochs)."""
    params = [row["parameters"] for row in sweep]
    out = {}
    if len(set(params)) >= 2:
        out["epoch_seconds"] = dict(zip(("exponent", "prefactor"), fit_power_law(
            params, [row["epoch_seconds"] for row in sweep])))
    names = {name for row in sweep for name in row["flavours"]}
    for name in sorted(names):
        pts = [(row["parameters"], row["flavours"][name]) for row in sweep
               if row["flavours"].get(name, {}).get("fit_seconds")]
        if len({p for p, _ in pts}) < 2:
            continue
        x = [p for p, _ in pts]
        out[name] = {
            "sizes": len(pts),
            "fit_seconds": dict(zip(("exponent", "prefactor"),
                                    fit_power_law(x, [e["fit_seconds"] for _, e in pts]))),
            "fit_epochs": dict(zip(("exponent", "prefactor"),
                                   fit_power_law(x, [e["fit_epochs"] for _, e in pts])))}
    return out


def fit_costs(results, flavours: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table of the sweep's measured Laplace fits for plotting against the parameters:
    one row per (size, flavour, unit) with ``cost`` in ``epochs`` (one full-batch step over the
    distinct contexts, C13's unit) and in ``token epochs`` (the same step over one row per corpus
    token), and the fit in ``seconds``.  ``flavours`` restricts the flavours (default: all)."""
    rows = results.get("sweep") if isinstance(results, Mapping) else results
    if isinstance(flavours, str):
        flavours = (flavours,)
    out = []
    for row in rows:
        for name, entry in row["flavours"].items():
            if entry.get("status") != "measured" or (flavours is not None
                                                     and name not in flavours):
                continue
            for unit, denominator in (("epochs", row["epoch_seconds"]),
                                      ("token epochs", row["token_epoch_seconds"])):
                out.append({"parameters": row["parameters"], "d_model": row["d_model"],
                            "n_layers": row["n_layers"], "flavour": name, "unit": unit,
                            "cost": entry["fit_seconds"] / denominator,
                            "seconds": entry["fit_seconds"]})
    if not out:
        raise ValueError("no measured Laplace fit in the results")
    return pd.DataFrame(out)


def compare_runs(recorded: Mapping, live: Mapping) -> pd.DataFrame:
    """The headline numbers of two runs side by side (the recorded measurement and one just
    made): C13's worst and largest-size cost in epochs, C14's ratios and AUROCs.  Times differ
    from machine to machine; the AUROCs of the same seed and scale should not."""
    def headline(results):
        sweep = results["sweep"]
        kron = [row["flavours"][C13_FLAVOUR]["fit_epochs"] for row in sweep]
        c14 = results["c14"]
        return {"C13 worst cost (epochs)": max(kron),
                "C13 cost at the largest size (epochs)": kron[-1],
                "epoch at the largest size (ms)": 1e3 * sweep[-1]["epoch_seconds"],
                "C14 compute ratio": c14["compute_ratio"],
                "C14 AUROC ratio": c14["auroc_ratio"],
                "AUROC, last-layer Laplace": c14["auroc_la"],
                f"AUROC, {c14['members']}-member ensemble": c14["auroc_ensemble"],
                "AUROC, MAP confidence": c14["auroc_map_confidence"]}
    for name, results in (("recorded", recorded), ("live", live)):
        if results.get("scale") is None or "sweep" not in results or "c14" not in results:
            raise ValueError(f"the {name} results are not run_costs' output")
    if recorded["scale"] != live["scale"]:
        raise ValueError(f"cannot compare scale {recorded['scale']!r} with {live['scale']!r}")
    return pd.DataFrame({"recorded": headline(recorded), "this run": headline(live)})


# --- on paper: LLM shapes -------------------------------------------------------------------


def _ints(name: str, value) -> list[int]:
    values = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
        else list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) \
        else None
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                         for v in values):
        raise ValueError(f"{name} must be a positive integer or a non-empty sequence of them, "
                         f"got {value!r}")
    return [int(v) for v in values]


def llm_laplace_costs(hidden=4096, vocab=32_000, layers=32, ffn_mult: int = 4,
                      lora_rank: int = 8, lora_matrices: int = 2, lora_factor_rank: int = 10,
                      bytes_per_entry: int = 4) -> pd.DataFrame:
    """Memory and time order of Laplace posteriors for LLM shapes, on paper.

    ``hidden``, ``vocab`` and ``layers`` may each be one integer or a sequence (every
    combination gets rows; the book uses ``vocab=LLM_VOCABS, layers=LLM_LAYERS``).  Memory is
    ``bytes_per_entry`` (4: fp32) times the entries stored; ``curvature_flops_per_token`` is the
    order of the work to add one training token to the curvature (one outer-product update per
    factor; an exact GGN needs ``V`` backward passes per token on top, a sampled Fisher one);
    ``decomposition_flops`` is the order of the one-off eigendecompositions / Cholesky (``n^3``
    for an ``n x n`` matrix; a symmetric eigendecomposition costs about ``9 n^3``).
    ``vocab_bytes`` and ``depth_bytes`` are the parts of ``memory_bytes`` that grow with the
    vocabulary ``V`` and with the depth ``L``.  With ``h`` = hidden, ``f = ffn_mult * h``:

    * ``last_layer_kfac``: the head ``V x (h + 1)`` (bias included) has factors ``(h+1)^2``
      and ``V^2`` entries; eigendecompositions ``(h+1)^3 + V^3``.  Grows with the vocabulary
      (``V^2`` memory, ``V^3`` time), not with depth.
    * ``last_layer_full``: ``p = (h + 1) V`` parameters, a ``p x p`` precision: ``p^2`` entries
      (``p^2`` per token), Cholesky ``p^3``.
    * ``all_weights_kfac``: every linear map of every block - 4 of ``h x h`` (query, key, value,
      output; no biases) and 2 of ``h x f`` (up and down) - gets an input and an output factor:
      ``L (4 (h^2 + h^2) + 2 (h^2 + f^2)) = L (10 h^2 + 2 f^2)`` entries (``42 L h^2`` for
      ``f = 4h``), eigendecompositions ``L (10 h^3 + 2 f^3)``; plus the head's factors as
      above.  Embeddings are left out.  The depth part grows with ``L``; only the head's
      ``V^2`` grows with the vocabulary.  (Q, K and V read the same input and could share one
      input factor, saving ``2 L h^2``.)
    * ``laplace_lora_kfac``: rank-``r`` adapters on ``lora_matrices`` ``h x h`` maps per layer
      (query and value in Laplace-LoRA, Yang et al. 2024).  An adapter ``W + B A`` with ``A``:
      ``h -> r`` and ``B``: ``r -> h`` has KFAC factors ``h^2, r^2`` (for ``A``) and ``r^2, h^2``
      (for ``B``): ``2 h^2 + 2 r^2`` entries - the large factors are as big as a full-weight
      KFAC's; ``lora_matrices * L * (2 h^2 + 2 r^2)`` in all, eigendecompositions
      ``lora_matrices * L * (2 h^3 + 2 r^3)``.  Nothing grows with the vocabulary.
    * ``laplace_lora_kfac_low_rank``: as Laplace-LoRA does, each ``h x h`` factor is kept at
      rank ``k = lora_factor_rank`` (``h k`` eigenvector entries plus ``k`` eigenvalues):
      ``lora_matrices * L * (2 (h k + k) + 2 r^2)`` entries; per token ``2 h k + 2 r^2``
      (projecting onto the rank-``k`` basis), decompositions ``2 h k^2 + 2 r^3`` per adapter.
    """
    hs, vs, ls = _ints("hidden", hidden), _ints("vocab", vocab), _ints("layers", layers)
    for name, value in (("ffn_mult", ffn_mult), ("lora_rank", lora_rank),
                        ("lora_matrices", lora_matrices), ("lora_factor_rank", lora_factor_rank),
                        ("bytes_per_entry", bytes_per_entry)):
        _ints(name, value)
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be one positive integer, got {value!r}")
    b, r, k, m = bytes_per_entry, lora_rank, lora_factor_rank, lora_matrices
    rows = []
    for h in hs:
        f = ffn_mult * h
        for v in vs:
            for n_layers in ls:
                head = (h + 1) * v
                block = 4 * h * h + 2 * h * f                  # weights of one block
                per_layer_kfac = 4 * (h * h + h * h) + 2 * (h * h + f * f)
                per_layer_eig = 4 * (h**3 + h**3) + 2 * (h**3 + f**3)
                entries = {
                    "last_layer_kfac": ((h + 1) ** 2 + v**2, v**2, 0,
                                        (h + 1) ** 2 + v**2, (h + 1) ** 3 + v**3, head),
                    "last_layer_full": (head**2, head**2, 0, head**2, head**3, head),
                    "all_weights_kfac": (
                        n_layers * per_layer_kfac + (h + 1) ** 2 + v**2, v**2,
                        n_layers * per_layer_kfac, n_layers * per_layer_kfac + (h + 1) ** 2
                        + v**2, n_layers * per_layer_eig + (h + 1) ** 3 + v**3,
                        n_layers * block + head),
                    "laplace_lora_kfac": (
                        m * n_layers * (2 * h * h + 2 * r * r), 0,
                        m * n_layers * (2 * h * h + 2 * r * r),
                        m * n_layers * (2 * h * h + 2 * r * r),
                        m * n_layers * (2 * h**3 + 2 * r**3), m * n_layers * r * 2 * h),
                    "laplace_lora_kfac_low_rank": (
                        m * n_layers * (2 * (h * k + k) + 2 * r * r), 0,
                        m * n_layers * (2 * (h * k + k) + 2 * r * r),
                        m * n_layers * (2 * h * k + 2 * r * r),
                        m * n_layers * (2 * h * k * k + 2 * r**3), m * n_layers * r * 2 * h),
                }
                for method, (total, in_vocab, in_depth, per_token, decomposition,
                             params) in entries.items():
                    rows.append({"method": method, "hidden": h, "vocab": v, "layers": n_layers,
                                 "parameters": params, "entries": total,
                                 "memory_bytes": b * total, "memory_gib": b * total / 2**30,
                                 "vocab_bytes": b * in_vocab, "depth_bytes": b * in_depth,
                                 "curvature_flops_per_token": per_token,
                                 "decomposition_flops": decomposition})
    return pd.DataFrame(rows)


# --- everything at once ---------------------------------------------------------------------


DEFINITIONS = {
    "epoch": "one full-batch train_map step (forward+backward over every distinct context, "
             "count-weighted; clip; Adam): one pass of the training objective over the whole "
             "corpus; median of wall time / steps over every training run at that size and "
             "over a probe timed right before every fit",
    "adjacent": "fit_epochs_adjacent: median over repeats of fit seconds / the probe epoch "
                "timed right before that fit",
    "ensemble_train": "ensemble_size x the median member's training wall time (same work each)",
    "token_epoch": "the same step on the expanded corpus (one row per corpus token, the pairs "
                   "the Laplace fit iterates over)",
    "fit": "Posterior.fit_seconds: curvature fit plus prior precision by marginal likelihood",
    "curvature": "the same fit with prior_steps=0",
    "per_1000": "wall seconds per 1000 queries (probit: closed-form GLM predictive; sampled: "
                "Posterior.sample with n_samples)",
    "memory": "peak RSS above its level at the block's start, sampled from /proc/self/statm "
              "every 5 ms (lower bound; misses spikes shorter than 5 ms; whole process)",
    "ratios": "*_epochs = median seconds / median epoch_seconds (token: / token_epoch_seconds)",
    "predicted": "order-of-magnitude flops and bytes (costs.predicted_fit_cost); a flavour "
                 "is skipped when either exceeds the scale's budget (C13's flavour only for "
                 "memory)",
}


def run_costs(scale: str | CostScale = "quick", repeats: int | None = None, seed: int = 0,
              log=None, sweep_only: bool = False) -> dict:
    """The sweep, C14 and the on-paper table: a JSON-ready dict (machine details excluded).

    ``sweep_only`` skips C14 (``"c14": None``): the sweep alone, for C13 on bigger networks
    when C14's trainings would take too long."""
    scale = cost_scale(scale)
    start = time.perf_counter()
    sweep = run_sweep(scale, seed=seed, repeats=repeats, log=log)
    c14 = None
    if not sweep_only:
        if log:
            log("C14: Laplace against a deep ensemble")
        c14 = run_c14(scale, seed=seed, log=log)
    try:
        c13 = c13_statistics(sweep, min_parameter_span=scale.min_parameter_span)
    except ValueError as error:
        c13 = {"error": str(error)}
    paper = llm_laplace_costs(vocab=LLM_VOCABS, layers=LLM_LAYERS)
    return {"scale": scale.name, "seed": seed,
            "repeats": scale.repeats if repeats is None else repeats,
            "definitions": DEFINITIONS, "budget_flops": scale.budget_flops,
            "budget_bytes": scale.budget_bytes,
            "memory_method": PeakMemory().method,
            "sweep_only": bool(sweep_only),
            "sweep": sweep, "scaling": scaling_fits(sweep), "c13": c13, "c14": c14,
            "on_paper": paper.to_dict("records"),
            "seconds": time.perf_counter() - start}


def cost_table(results) -> pd.DataFrame:
    """One row per (size, flavour) of the sweep, plus one per size for the ensemble: status,
    parameters, epoch, fit and predictive costs in seconds and in epochs, memory."""
    rows = results.get("sweep") if isinstance(results, Mapping) else results
    out = []
    for row in rows:
        common = {"d_model": row["d_model"], "n_layers": row["n_layers"],
                  "parameters": row["parameters"], "epoch_ms": 1e3 * row["epoch_seconds"]}
        for name, entry in row["flavours"].items():
            out.append({**common, "method": name, "status": entry["status"],
                        "fit_s": entry.get("fit_seconds"), "fit_epochs": entry.get("fit_epochs"),
                        "probit_s_per_1000": entry.get("probit_seconds_per_1000"),
                        "sampled_s_per_1000": entry.get("sampled_seconds_per_1000"),
                        "peak_mib": None if entry.get("peak_rss_bytes") is None
                        else entry["peak_rss_bytes"] / 2**20,
                        "note": entry.get("reason")})
        out.append({**common, "method": f"ensemble x{row['ensemble_members']} "
                                        f"({row['train_steps']} steps each)",
                    "status": "measured", "fit_s": row["ensemble_train_seconds"],
                    "fit_epochs": row["ensemble_train_epochs"], "probit_s_per_1000": None,
                    "sampled_s_per_1000": row["ensemble_predict_seconds_per_1000"],
                    "peak_mib": row["train_peak_rss_bytes"] / 2**20, "note": "training"})
    return pd.DataFrame(out)


# --- recorded measurements ------------------------------------------------------------------

RECORDS = Path("data") / "costs"          # under the project root
CHECKSUMS = "SHA256SUMS"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_path(scale: str, root: Path | str | None = None, sweep_only: bool = False) -> Path:
    """Where the recorded measurement of ``scale`` lives: ``data/costs/costs_<scale>.json``, or
    ``costs_<scale>_sweep.json`` for a run without C14 (``sweep_only``)."""
    cost_scale(scale)  # a clear error for an unknown scale
    suffix = "_sweep" if sweep_only else ""
    return Path(root or project_root()) / RECORDS / f"costs_{scale}{suffix}.json"


def record_results(text: str, scale: str, root: Path | str | None = None,
                   sweep_only: bool = False) -> Path:
    """Write a benchmark's JSON ``text`` as the recorded measurement of ``scale`` and update
    the folder's ``SHA256SUMS`` (``sha256sum -c`` format)."""
    path = record_path(scale, root, sweep_only)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sums = path.parent / CHECKSUMS
    lines = [line for line in (sums.read_text().splitlines() if sums.is_file() else [])
             if line.split("  ", 1)[-1] != path.name]
    sums.write_text("\n".join(sorted(lines + [f"{_sha256(path)}  {path.name}"])) + "\n")
    return path


def load_results(scale: str, root: Path | str | None = None, sweep_only: bool = False) -> dict:
    """The recorded measurement of ``scale``, after checking it against ``SHA256SUMS``.

    Raises ``FileNotFoundError`` naming the command that records it when it is missing, and
    ``ValueError`` when its checksum is missing or does not match (an edited or truncated file).
    """
    path = record_path(scale, root, sweep_only)
    command = (f"python benchmarks/costs.py --scale {scale} --record"
               + (" --sweep-only" if sweep_only else ""))
    if not path.is_file():
        raise FileNotFoundError(f"no recorded cost measurement {path}: run `{command}`")
    sums = path.parent / CHECKSUMS
    expected = {line.split("  ", 1)[1]: line.split("  ", 1)[0]
                for line in (sums.read_text().splitlines() if sums.is_file() else [])
                if "  " in line}
    if path.name not in expected:
        raise ValueError(f"{path.name} has no checksum in {sums}: record it with `{command}`")
    if _sha256(path) != expected[path.name]:
        raise ValueError(f"{path} does not match its checksum in {sums}: the file was changed "
                         f"after it was recorded; re-record it with `{command}`")
    results = json.loads(path.read_text())
    if results.get("scale") != scale:
        raise ValueError(f"{path} holds scale {results.get('scale')!r}, not {scale!r}")
    if bool(results.get("sweep_only")) != sweep_only:
        raise ValueError(f"{path} {'lacks' if results.get('sweep_only') else 'has'} C14, "
                         f"unlike a {'sweep-only' if sweep_only else 'complete'} record")
    return results

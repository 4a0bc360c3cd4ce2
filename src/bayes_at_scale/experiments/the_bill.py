"""Chapter 7's experiment: what a posterior costs (claims C13 and C14; round 2: C29 and
C30).

Everything is measured in one process, on chapter 4's fact world
(:mod:`bayes_at_scale.worlds.facts`), and reported as a ratio to *one training epoch of
the same model*: one full-batch step of the count-weighted corpus objective.  How time,
memory and the epoch are measured is :mod:`bayes_at_scale.core.profiling` (its
``DEFINITIONS`` go into every result); what is predicted on paper is
:mod:`bayes_at_scale.core.cost_model`.

**C13** (:func:`run_sweep`): for every model size of the scale's sweep, train a
five-member ensemble, time the epoch, and fit every Laplace flavour on the first network
with its prior precision by marginal likelihood.  Before anything is fitted at a size,
every flavour's cost is predicted from the shapes, and a flavour is skipped - recorded
with the reason, never crashing - when its predicted flops or bytes exceed the scale's
budget; C13's flavour (``required``) is exempt from the flop budget, not from the memory
budget.  The claim's statistic is the worst fit over the sweep, in epochs
(:func:`c13_statistics`).

**C14** (:func:`run_c14`) replays chapter 4's hallucination detection: five networks
trained from different seeds on one fact world; the first is the MAP under the default
(last-layer KFAC) Laplace posterior.  Scores as in chapter 4 - LA's mutual information
from posterior samples, the ensemble's mutual information (entropy of the mean minus
mean entropy of the members) - each flagging its own wrong answers
(:func:`~bayes_at_scale.worlds.facts.detection_labels`). Compute is wall seconds,
training included.

:func:`run_costs` runs both and the on-paper LLM table; the book reads its verdicts from
a recorded run (:func:`load_results`, checked against its checksum by
:mod:`bayes_at_scale.core.measurements`).

**Round 2** (:func:`run_round2`, recorded by ``benchmarks/costs.py --round 2 --record``
and read by :func:`load_round2`).  **C29** (:func:`run_c29`): at every model size, the
last-layer KFAC fit and one token epoch are timed over several corpus sizes ``N``
(nested random samples of one corpus expanded to one row per token), ``a + b N`` is
fitted to each, and ``b_fit / b_ep`` gets a bootstrap interval over the repeated timings
(:func:`c29_statistics`).  **C30** (:func:`run_c30`): on several seeds of chapter 4's
round-2 world, the answer posterior of :mod:`bayes_at_scale.core.answer_posteriors`
against a five-member ensemble; every method is scored by the better of its mutual
information and its 1 - max p, chosen on a held-out half (chapter 4's
:func:`~bayes_at_scale.core.metrics.choose_score`), and Laplace's fit and predictive are
set against the training and predictions of the ensemble's extra members
(:func:`c30_statistics`).  Every timed block of round 2 runs on one torch thread.
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import torch

from ..core import metrics
from ..core.answer_posteriors import answer_probabilities, fit_answer_posterior
from ..core.checks import check_instance, check_positive, check_positive_int
from ..core.cost_model import (
    LLM_LAYERS,
    LLM_VOCABS,
    llm_laplace_costs,
    model_shape,
    plan_fits,
)
from ..core.models import CausalLM, NextToken, next_token_probs
from ..core.posteriors import (
    ANSWER_FLAVOURS,
    DEFAULT_FLAVOUR,
    FLAVOURS,
    answer_flavour,
    count_loader,
    fit_posterior,
)
from ..core.profiling import (
    DEFINITIONS,
    PeakMemory,
    fit_and_token_epoch,
    median,
    profile_size,
    scaling_fits,
    slope_ratio,
    slope_ratio_interval,
    timed_training,
)
from ..core.measurements import read_measurement, write_measurement
from ..core.settings import derive_seed, project_root, torch_threads
from ..core.training import Recipe
from ..worlds.facts import (
    ANSWER_HALVES,
    ANSWER_QUERIES,
    ANSWER_SAMPLES,
    FACT_RECIPES,
    ROUND2_FACT_RECIPES,
    FactWorld,
    answer_outcome,
    answer_table,
    detection_labels,
    fact_world,
    make_fact_world,
)

# last-layer KFAC, prior precision by marginal likelihood
C13_FLAVOUR = DEFAULT_FLAVOUR
ENSEMBLE_SIZE = 5
# derive_seed keys of this module's random streams (each also gets the run's seed)
SWEEP_QUERIES, SWEEP_NETWORKS, C14_QUERIES, C14_NETWORKS = 1, 2, 3, 4


# --- recipes
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostScale:
    """Everything one run of the cost benchmark measures, at one scale: chapter 7's
    recipe."""

    name: str
    # make_fact_world arguments (the seed is added)
    world: dict
    sizes: tuple[tuple[int, int], ...]  # the sweep: (d_model, n_layers)
    n_heads: int
    # training steps of every network in the sweep
    sweep_steps: int
    lr: float
    weight_decay: float
    flavours: tuple[str, ...]
    # prompts the predictive costs are timed on
    queries: int
    # posterior samples of the sampled predictive
    n_samples: int
    budget_flops: float  # skip a fit predicted to need more work
    budget_bytes: float  # ... or to need more memory
    repeats: int
    token_epoch_steps: int
    probe_steps: int  # epoch probe timed right before every fit
    # C13 needs largest / smallest parameters >= this
    min_parameter_span: float
    c14_model: dict  # CausalLM arguments of C14's networks
    c14_steps: int
    c14_lr: float
    c14_queries: int
    c14_samples: int
    # bootstrap resamples of the AUROC ratio (queries)
    c14_resamples: int = 1000
    curvature_only: tuple[str, ...] = (C13_FLAVOUR,)
    # C14's Pareto figure: Laplace flavours on the MAP (the first is C14's own)
    c14_flavours: tuple[str, ...] = (C13_FLAVOUR, "last_layer_diag", "all_diag_ef")
    required: tuple[str, ...] = (C13_FLAVOUR,)  # measured even over the flop budget
    ensemble_size: int = ENSEMBLE_SIZE

    def __post_init__(self):
        if not self.sizes:
            raise ValueError("a cost scale needs at least one model size")
        for size in self.sizes:
            if len(size) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size
            ):
                raise ValueError(
                    f"a size is (d_model, n_layers) of positive integers, got {size!r}"
                )
        unknown = [f for f in (*self.flavours, *self.c14_flavours) if f not in FLAVOURS]
        if unknown:
            raise ValueError(
                f"unknown posterior flavours {unknown}: expected some of "
                f"{tuple(FLAVOURS)}"
            )
        for name in (
            "sweep_steps",
            "queries",
            "n_samples",
            "repeats",
            "token_epoch_steps",
            "probe_steps",
            "c14_steps",
            "c14_queries",
            "c14_samples",
            "c14_resamples",
            "ensemble_size",
        ):
            check_positive_int(name, getattr(self, name))
        if self.ensemble_size < 2:
            raise ValueError(
                f"an ensemble needs at least 2 members, got {self.ensemble_size}"
            )
        if not self.c14_flavours or self.c14_flavours[0] != C13_FLAVOUR:
            raise ValueError(
                f"c14_flavours must start with C14's flavour {C13_FLAVOUR!r}, got "
                f"{self.c14_flavours!r}"
            )
        if not (self.budget_flops >= 0 and self.budget_bytes >= 0):
            raise ValueError("budgets must be non-negative")


_QUICK, _FULL = FACT_RECIPES["quick"], FACT_RECIPES["full"]

RECIPES: dict[str, CostScale] = {
    # seconds: for the tests
    "tiny": CostScale(
        name="tiny",
        world=dict(
            n_entities=120,
            n_name_parts=5,
            name_length=3,
            n_values=6,
            n_mentions=300,
            zipf_exponent=0.9,
            unknown_share=0.1,
            n_misinformation=2,
            misinformation_repeats=5,
        ),
        sizes=((4, 1), (16, 1)),
        n_heads=2,
        sweep_steps=3,
        lr=1e-2,
        weight_decay=1e-5,
        flavours=tuple(FLAVOURS),
        queries=32,
        n_samples=8,
        budget_flops=1e10,
        budget_bytes=2.0**30,
        repeats=1,
        token_epoch_steps=1,
        probe_steps=1,
        min_parameter_span=1.0,
        c14_model=dict(d_model=8, n_heads=2, n_layers=1),
        c14_steps=40,
        c14_lr=3e-2,
        c14_queries=200,
        c14_samples=20,
        c14_resamples=50,
    ),
    # about a minute on 2 cores: chapter 4's quick world; sizes from 1.8k to 410k
    # parameters. C14 keeps chapter 4's quick world and network but trains 200 steps
    # instead of 600 (the loss is within 10% of its final value by then) and asks 1000
    # questions, not 4000.
    "quick": CostScale(
        name="quick",
        world=dict(_QUICK.corpus),
        sizes=((8, 1), (32, 2), (128, 2)),
        n_heads=2,
        sweep_steps=5,
        lr=_QUICK.training["lr"],
        weight_decay=_QUICK.training["weight_decay"],
        flavours=tuple(FLAVOURS),
        queries=128,
        n_samples=100,
        budget_flops=5e10,
        budget_bytes=2.0 * 2**30,
        repeats=1,
        token_epoch_steps=2,
        probe_steps=2,
        min_parameter_span=100.0,
        c14_model=dict(_QUICK.model),
        c14_steps=200,
        c14_lr=_QUICK.training["lr"],
        c14_queries=1000,
        c14_samples=200,
    ),
    # bigger hardware: chapter 4's full world, 6k to 3.2M parameters, chapter 4's full
    # recipe
    "full": CostScale(
        name="full",
        world=dict(_FULL.corpus),
        sizes=((16, 1), (32, 2), (64, 2), (128, 3), (256, 4)),
        n_heads=4,
        sweep_steps=20,
        lr=_FULL.training["lr"],
        weight_decay=_FULL.training["weight_decay"],
        flavours=tuple(FLAVOURS),
        queries=1000,
        n_samples=100,
        budget_flops=2e12,
        budget_bytes=8.0 * 2**30,
        repeats=3,
        token_epoch_steps=5,
        probe_steps=3,
        min_parameter_span=100.0,
        c14_model=dict(_FULL.model),
        c14_steps=_FULL.training["steps"],
        c14_lr=_FULL.training["lr"],
        c14_queries=4000,
        c14_samples=200,
    ),
}


def recipe(scale: str | CostScale) -> CostScale:
    """The named cost scale (``tiny``, ``quick`` or ``full``), or ``scale`` itself."""
    if isinstance(scale, CostScale):
        return scale
    if scale not in RECIPES:
        raise ValueError(
            f"unknown cost scale {scale!r}: expected one of {tuple(RECIPES)}"
        )
    return RECIPES[scale]


def fact_task(scale: str | CostScale, seed: int) -> FactWorld:
    """The fact world that the scale's sweep and C14 run on."""
    return make_fact_world(**recipe(scale).world, seed=seed)


# --- C13: the sweep
# -------------------------------------------------------------------------


def run_sweep(
    scale: str | CostScale, seed: int = 0, repeats: int | None = None, log=None
) -> list[dict]:
    """Measure every size of the scale's sweep (smallest first) on its fact world; one
    dict per size (:func:`~bayes_at_scale.core.profiling.profile_size`).  At each size
    the flavours that the scale's budget allows are decided first, from the shapes alone
    (:func:`~bayes_at_scale.core.cost_model.plan_fits`); C13's flavour is exempt from
    the flop budget."""
    scale = recipe(scale)
    repeats = check_positive_int(
        "repeats", scale.repeats if repeats is None else repeats
    )
    world = fact_task(scale, seed)
    contexts, counts = world.next_token_counts()
    n_pairs = int(counts.sum())
    prompts = world.prompts(
        world.sample_queries(scale.queries, seed=derive_seed(seed, SWEEP_QUERIES))
    )
    warmed = set()
    rows = []
    gc.collect()
    # the objects alive now are never garbage: keeps PeakMemory's collections fast
    gc.freeze()
    try:
        for d_model, n_layers in scale.sizes:
            if log:
                log(f"size d_model={d_model} n_layers={n_layers}")
            model_kwargs = dict(
                d_model=d_model, n_heads=scale.n_heads, n_layers=n_layers
            )
            shape = model_shape(
                CausalLM(world.vocab_size, world.seq_len - 1, **model_kwargs)
            )
            plans = plan_fits(
                scale.flavours,
                shape,
                n_pairs,
                scale.budget_flops,
                scale.budget_bytes,
                required=scale.required,
                why_required="C13 needs it",
            )
            rows.append(
                profile_size(
                    contexts,
                    counts,
                    prompts,
                    model_kwargs,
                    plans,
                    repeats=repeats,
                    members=scale.ensemble_size,
                    steps=scale.sweep_steps,
                    lr=scale.lr,
                    weight_decay=scale.weight_decay,
                    token_epoch_steps=scale.token_epoch_steps,
                    probe_steps=scale.probe_steps,
                    n_samples=scale.n_samples,
                    curvature_only=scale.curvature_only,
                    seed=derive_seed(seed, SWEEP_NETWORKS),
                    warmed=warmed,
                    log=log,
                )
            )
    finally:
        gc.unfreeze()
    return rows


# --- C14: Laplace against a deep ensemble on chapter 4's hallucination detection
# -------------


def _ensemble_answers(world: FactWorld, entities, probs: np.ndarray) -> pd.DataFrame:
    """The ensemble of ``probs`` (members, queries, V): mean-probability answer, its
    outcome and the mutual information (entropy of the mean minus the members' mean
    entropy)."""
    answers = probs.mean(axis=0).argmax(axis=1)
    return pd.DataFrame(
        {
            "entity": entities,
            "answer_ENS": answers,
            "outcome_ENS": answer_outcome(answers, world, entities),
            "mi_ENS": metrics.predictive_decomposition(probs)["epistemic"],
        }
    )


def _detection(scores, wrong) -> dict:
    """A method's Pareto fields: its score's AUROC at flagging its own wrong answers."""
    return {
        "scores": scores,
        "wrong": wrong,
        "auroc": metrics.auroc(scores, wrong),
        "wrong_rate": float(wrong.mean()),
    }


def _auroc_ratio_interval(
    rows: list, la_row: dict, full: dict, seed: int, n_resamples: int
) -> tuple[float, float]:
    """The bootstrap interval (over queries) of AUROC(``la_row``) / AUROC(``full``),
    from their per-query ``scores`` and ``wrong`` labels, which are then dropped from
    every row of ``rows`` (they were only needed for the interval)."""
    low, high = metrics.bootstrap_ci(
        lambda a, b, c, d: metrics.auroc(a, b) / metrics.auroc(c, d),
        la_row["scores"],
        la_row["wrong"],
        full["scores"],
        full["wrong"],
        seed=seed,
        n_resamples=n_resamples,
    )
    for row in rows:
        del row["scores"], row["wrong"]
    return low, high


def run_c14(scale: str | CostScale, seed: int = 0, log=None) -> dict:
    """Chapter 4's hallucination detection by Laplace posteriors and by deep ensembles.

    One fact world (``seed``); ``ensemble_size`` networks trained from seeds derived
    from ``seed``; the first is the MAP under every Laplace flavour of ``c14_flavours``
    (the first of which, last-layer KFAC, is C14's).  Fresh queries from the mention
    distribution.  Each method flags its own wrong answers
    (:func:`~bayes_at_scale.worlds.facts.detection_labels`) by its own score.  Compute
    is wall seconds, training included; every network does the same work, so one
    training costs the median of the members' wall times (robust to load spikes):

    * MAP (score: 1 - top probability) = one training + one forward pass over the
      queries;
    * LA (score: mutual information of posterior samples) = one training +
      ``fit_posterior`` (construction, curvature, prior) +
      :func:`~bayes_at_scale.worlds.facts.answer_table` (predictive, posterior samples
      and their mutual information; it also runs the network's own forward pass, a few
      milliseconds);
    * an ensemble of ``k`` members (score: mutual information) = ``k`` trainings + the
      first ``k`` members' forward passes, the mean and the mutual information
      (:func:`~bayes_at_scale.core.metrics.predictive_decomposition`).

    ``pareto`` has one row per method (the ensembles for ``k = 2 ... ensemble_size``);
    the top-level ``auroc_*`` and ``compute_*`` keys are C14's pair: last-layer KFAC
    against the full ensemble.
    """
    scale = recipe(scale)
    world = fact_task(scale, seed)
    contexts, counts = world.next_token_counts()
    members, train_seconds = [], []
    for k in range(scale.ensemble_size):
        model, wall = timed_training(
            world.vocab_size,
            contexts,
            counts,
            scale.c14_model,
            steps=scale.c14_steps,
            lr=scale.c14_lr,
            weight_decay=scale.weight_decay,
            seed=derive_seed(seed, C14_NETWORKS, k),
        )
        members.append(model)
        train_seconds.append(wall)
        if log:
            log(f"  C14 member {k + 1}/{scale.ensemble_size} trained in {wall:.1f} s")
    # identical work: the median resists load spikes
    one_training = median(train_seconds)
    entities = world.sample_queries(
        scale.c14_queries, seed=derive_seed(seed, C14_QUERIES)
    )
    prompts = world.prompts(entities)

    pareto, la = [], {}
    for name in scale.c14_flavours:
        # one model per Laplace
        network = members[0] if not la else copy.deepcopy(members[0])
        start = time.perf_counter()
        posterior = fit_posterior(
            NextToken(network), count_loader(contexts, counts), name
        )
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        table, _ = answer_table(
            world, network, posterior, entities, scale.c14_samples, seed
        )
        predict_seconds = time.perf_counter() - start
        la[name] = {
            "table": table,
            "fit_seconds": fit_seconds,
            "fit_seconds_inner": posterior.fit_seconds,
            "predict_seconds": predict_seconds,
        }
        pareto.append(
            {
                "method": f"LA {name}",
                "kind": "Laplace",
                "members": 1,
                **_detection(table["mi_LA"].to_numpy(), detection_labels(table, "LA")),
                "compute_seconds": one_training + fit_seconds + predict_seconds,
            }
        )
        if log:
            log(
                f"  C14 LA {name}: fit {fit_seconds:.1f} s, predict"
                f" {predict_seconds:.1f} s"
            )

    forward_seconds, member_probs = [], []
    for model in members:
        start = time.perf_counter()
        member_probs.append(next_token_probs(model, prompts).double().numpy())
        forward_seconds.append(time.perf_counter() - start)
    probs = np.stack(member_probs)
    probs /= probs.sum(axis=-1, keepdims=True)
    first = la[scale.c14_flavours[0]]["table"]
    pareto.insert(
        0,
        {
            "method": "MAP",
            "kind": "MAP",
            "members": 1,
            **_detection(
                1 - first["confidence_MAP"].to_numpy(), detection_labels(first, "MAP")
            ),
            "compute_seconds": one_training + forward_seconds[0],
        },
    )
    for k in range(2, scale.ensemble_size + 1):
        start = time.perf_counter()
        ensemble = _ensemble_answers(world, entities, probs[:k])
        combine = time.perf_counter() - start
        pareto.append(
            {
                "method": f"ensemble x{k}",
                "kind": "ensemble",
                "members": k,
                **_detection(
                    ensemble["mi_ENS"].to_numpy(), detection_labels(ensemble, "ENS")
                ),
                "compute_seconds": (
                    k * one_training + sum(forward_seconds[:k]) + combine
                ),
            }
        )
    for row in pareto:
        row["compute_trainings"] = row["compute_seconds"] / one_training

    c14 = la[scale.c14_flavours[0]]
    la_row, full = pareto[1], pareto[-1]  # C14's flavour and the whole ensemble
    low, high = _auroc_ratio_interval(pareto, la_row, full, seed, scale.c14_resamples)
    return {
        "seed": seed,
        "queries": scale.c14_queries,
        "n_samples": scale.c14_samples,
        "model": dict(scale.c14_model),
        "train_steps": scale.c14_steps,
        "members": scale.ensemble_size,
        "flavour": scale.c14_flavours[0],
        "auroc_la": la_row["auroc"],
        "auroc_ensemble": full["auroc"],
        "auroc_map_confidence": pareto[0]["auroc"],
        "wrong_rate_la": la_row["wrong_rate"],
        "wrong_rate_ensemble": full["wrong_rate"],
        "train_seconds": train_seconds,
        "one_training_seconds": one_training,
        "forward_seconds": forward_seconds,
        "la_fit_seconds": c14["fit_seconds"],
        "la_fit_seconds_inner": c14["fit_seconds_inner"],
        "la_predict_seconds": c14["predict_seconds"],
        "ensemble_predict_seconds": (
            full["compute_seconds"] - scale.ensemble_size * one_training
        ),
        "compute_la_seconds": la_row["compute_seconds"],
        "compute_ensemble_seconds": full["compute_seconds"],
        "pareto": pareto,
        "auroc_ratio_low": low,
        "auroc_ratio_high": high,
        **c14_statistics(
            la_row["auroc"],
            full["auroc"],
            la_row["compute_seconds"],
            full["compute_seconds"],
        ),
    }


# --- the claims
# -----------------------------------------------------------------------------


def c13_statistics(results, min_parameter_span: float = 100.0) -> dict:
    """Claim C13: ``worst_cost_in_epochs`` = max over sizes of the last-layer KFAC fit
    (curvature plus marginal-likelihood prior) in epochs of the same model.

    ``results`` is :func:`run_costs`' dict or its ``"sweep"`` list: one dict per size
    with ``parameters``, ``epoch_seconds`` and ``flavours[C13_FLAVOUR]["fit_seconds"]``.
    Raises if the flavour was not measured at some size, or if the sweep spans fewer
    than ``min_parameter_span`` in parameters (the claim asks for two orders of
    magnitude).
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
        if (
            entry is None
            or entry.get("status", "measured") != "measured"
            or entry.get("fit_seconds") is None
        ):
            why = (
                "missing"
                if entry is None
                else f"{entry.get('status')}: {entry.get('reason')}"
            )
            raise ValueError(
                f"{C13_FLAVOUR} was not measured at {size} ({why}); C13 needs it "
                "at every size"
            )
        costs.append(
            check_positive(f"fit_seconds at {size}", entry["fit_seconds"])
            / check_positive(f"epoch_seconds at {size}", row["epoch_seconds"])
        )
        params.append(check_positive(f"parameters at {size}", row["parameters"]))
    span = max(params) / min(params)
    if span < min_parameter_span:
        raise ValueError(
            f"the sweep spans a factor {span:.3g} in parameters, less than the "
            f"{min_parameter_span:g} the claim needs"
        )
    worst = int(np.argmax(costs))
    return {
        "worst_cost_in_epochs": float(costs[worst]),
        "parameter_span": float(span),
        "worst_parameters": int(params[worst]),
    }


def c14_statistics(
    auroc_la: float, auroc_ensemble: float, compute_la: float, compute_ensemble: float
) -> dict:
    """Claim C14: ``auroc_ratio`` = AUROC(LA) / AUROC(ensemble) and ``compute_ratio`` =
    compute(LA) / compute(ensemble), training included (seconds, or any one unit)."""
    for name, value in (("auroc_la", auroc_la), ("auroc_ensemble", auroc_ensemble)):
        check_positive(name, value)
        if value > 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return {
        "auroc_ratio": float(auroc_la) / float(auroc_ensemble),
        "compute_ratio": (
            check_positive("compute_la", compute_la)
            / check_positive("compute_ensemble", compute_ensemble)
        ),
    }


def c14_claim_statistics(c14: Mapping) -> dict:
    """C14's statistics as :func:`~bayes_at_scale.claims.report` takes them: the AUROC
    ratio with its bootstrap 95% interval over queries, and the compute ratio (a
    measured time: no interval)."""
    return {
        "auroc_ratio": (
            c14["auroc_ratio"],
            c14["auroc_ratio_low"],
            c14["auroc_ratio_high"],
        ),
        "compute_ratio": c14["compute_ratio"],
    }


# --- the recorded run against a fresh one
# ---------------------------------------------------


def compare_runs(recorded: Mapping, live: Mapping) -> pd.DataFrame:
    """The headline numbers of two runs side by side (the recorded measurement and one
    just made): C13's worst and largest-size cost in epochs, C14's ratios and AUROCs.
    Times differ from machine to machine; the AUROCs of the same seed and scale should
    not."""

    def headline(results):
        sweep = results["sweep"]
        kron = [row["flavours"][C13_FLAVOUR]["fit_epochs"] for row in sweep]
        c14 = results["c14"]
        return {
            "C13 worst cost (epochs)": max(kron),
            "C13 cost at the largest size (epochs)": kron[-1],
            "epoch at the largest size (ms)": 1e3 * sweep[-1]["epoch_seconds"],
            "C14 compute ratio": c14["compute_ratio"],
            "C14 AUROC ratio": c14["auroc_ratio"],
            "AUROC, last-layer Laplace": c14["auroc_la"],
            f"AUROC, {c14['members']}-member ensemble": c14["auroc_ensemble"],
            "AUROC, MAP confidence": c14["auroc_map_confidence"],
        }

    for name, results in (("recorded", recorded), ("live", live)):
        if (
            results.get("scale") is None
            or "sweep" not in results
            or "c14" not in results
        ):
            raise ValueError(f"the {name} results are not run_costs' output")
    if recorded["scale"] != live["scale"]:
        raise ValueError(
            f"cannot compare scale {recorded['scale']!r} with {live['scale']!r}"
        )
    return pd.DataFrame({"recorded": headline(recorded), "this run": headline(live)})


# --- everything at once
# ---------------------------------------------------------------------


def run_costs(
    scale: str | CostScale = "quick",
    repeats: int | None = None,
    seed: int = 0,
    log=None,
    sweep_only: bool = False,
) -> dict:
    """The sweep, C14 and the on-paper table: a JSON-ready dict (machine details
    excluded).

    ``sweep_only`` skips C14 (``"c14": None``): the sweep alone, for C13 on bigger
    networks when C14's trainings would take too long."""
    scale = recipe(scale)
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
    return {
        "scale": scale.name,
        "seed": seed,
        "repeats": scale.repeats if repeats is None else repeats,
        "definitions": DEFINITIONS,
        "budget_flops": scale.budget_flops,
        "budget_bytes": scale.budget_bytes,
        "memory_method": PeakMemory().method,
        "sweep_only": bool(sweep_only),
        "sweep": sweep,
        "scaling": scaling_fits(sweep),
        "c13": c13,
        "c14": c14,
        "on_paper": paper.to_dict("records"),
        "seconds": time.perf_counter() - start,
    }


# --- recorded measurements
# ------------------------------------------------------------------

RECORDS = Path("data") / "costs"  # under the project root


def record_path(
    scale: str, root: Path | str | None = None, sweep_only: bool = False
) -> Path:
    """Where the recorded measurement of ``scale`` lives:
    ``data/costs/costs_<scale>.json``, or ``costs_<scale>_sweep.json`` for a run without
    C14 (``sweep_only``)."""
    recipe(scale)  # a clear error for an unknown scale
    suffix = "_sweep" if sweep_only else ""
    return Path(root or project_root()) / RECORDS / f"costs_{scale}{suffix}.json"


def record_results(
    text: str, scale: str, root: Path | str | None = None, sweep_only: bool = False
) -> Path:
    """Write a benchmark's JSON ``text`` as the recorded measurement of ``scale`` and
    update the folder's ``SHA256SUMS``
    (:func:`~bayes_at_scale.core.measurements.write_measurement`)."""
    return write_measurement(record_path(scale, root, sweep_only), text)


def load_results(
    scale: str, root: Path | str | None = None, sweep_only: bool = False
) -> dict:
    """The recorded measurement of ``scale``, checked against ``SHA256SUMS``
    (:func:`~bayes_at_scale.core.measurements.read_measurement`: a missing file names
    the command that records it; a changed one is refused) and against the scale and
    kind of run asked for."""
    path = record_path(scale, root, sweep_only)
    results = read_measurement(
        path,
        f"python benchmarks/costs.py --scale {scale} --record"
        + (" --sweep-only" if sweep_only else ""),
    )
    if results.get("scale") != scale:
        raise ValueError(f"{path} holds scale {results.get('scale')!r}, not {scale!r}")
    if bool(results.get("sweep_only")) != sweep_only:
        raise ValueError(
            f"{path} {'lacks' if results.get('sweep_only') else 'has'} C14, "
            f"unlike a {'sweep-only' if sweep_only else 'complete'} record"
        )
    return results


# === Round 2 (claims C29 and C30): the referee round
# =========================================
#
# C13's unit made fixed library overhead look like a price: at one corpus size, a fit
# that barely grows with the network was set against an epoch that does.  C29 separates
# the two by timing the fit and one token epoch over several corpus sizes N and fitting
# ``a + b N`` to each: ``a`` is the overhead, ``b`` the price per token.  C14 could not
# be met (one training plus anything exceeds a fifth of five trainings) and set MAP's
# total-uncertainty score against mutual-information-only scores; C30 scores every
# method by the better of its mutual information and its 1 - max p (chosen on a held-out
# half, as C23 does), uses the round-2 answer posterior, and sets Laplace's fit and
# predictive against what the four extra members of the ensemble cost.

#: C29's posterior: last-layer KFAC, prior precision by marginal likelihood (C13's).
C29_FLAVOUR = C13_FLAVOUR
#: C30's posterior (the first) and the other round-2 flavour on its Pareto figure.
C30_FLAVOURS = ("last_layer", "embedding_and_head")
#: The two candidate scores of every method that has a spread (mutual information needs
#: one).
SCORES = ("mutual information", "1 - max p")
# derive_seed keys of round 2's own random streams (C30 draws chapter 4's queries,
# halves and posterior samples with worlds.facts' ANSWER_* keys, so its answers are
# chapter 4's, C23)
C29_NETWORKS, C29_ORDER, C30_NETWORKS = 5, 6, 7


@dataclass(frozen=True)
class Round2Scale:
    """Everything round 2 of the bill measures at one scale (claims C29 and C30).

    C29: a fact world whose corpus (one row per token, shuffled) is cut into nested
    corpora of the sizes ``corpus_sizes[i]`` for the model size ``sizes[i]``; every
    network is trained ``train_steps`` full-batch steps, then each corpus size is timed
    ``repeats`` times (the repeats outermost, so that a burst of load spreads over the
    sizes).  C30: chapter 4's round-2 recipe ``c30_recipe`` (world, network, training),
    ``c30_seeds`` seeds.
    """

    name: str
    # C29's make_fact_world arguments (seed added)
    world: dict
    sizes: tuple[tuple[int, int], ...]  # (d_model, n_layers)
    # per model size: the corpus sizes N, in tokens
    corpus_sizes: tuple[tuple[int, ...], ...]
    n_heads: int
    train_steps: int
    lr: float
    weight_decay: float
    repeats: int
    epoch_steps: int  # train_map steps per timed token epoch
    resamples: int  # bootstrap resamples of b_fit / b_ep
    # chapter 4's round-2 recipe (world, network)
    c30_recipe: Recipe
    c30_seeds: int
    c30_queries: int
    # GLM samples of the Laplace predictive (>= 200)
    c30_samples: int
    c30_resamples: int  # bootstrap resamples of the AUROC ratio
    c30_flavours: tuple[str, ...] = C30_FLAVOURS
    ensemble_size: int = ENSEMBLE_SIZE
    threads: int = 1  # torch threads of every timed block

    def __post_init__(self):
        if not self.sizes or len(self.sizes) != len(self.corpus_sizes):
            raise ValueError(
                "one tuple of corpus sizes per model size: got "
                f"{len(self.corpus_sizes)} for {len(self.sizes)} sizes"
            )
        for size in self.sizes:
            if len(size) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size
            ):
                raise ValueError(
                    f"a size is (d_model, n_layers) of positive integers, got {size!r}"
                )
        for corpora in self.corpus_sizes:
            if (
                len(corpora) < 2
                or any(
                    isinstance(n, bool) or not isinstance(n, int) or n < 1
                    for n in corpora
                )
                or len(set(corpora)) != len(corpora)
            ):
                raise ValueError(
                    "corpus sizes must be at least two distinct positive "
                    f"integers, got {corpora!r}"
                )
        for name in (
            "train_steps",
            "repeats",
            "epoch_steps",
            "resamples",
            "c30_seeds",
            "c30_queries",
            "c30_samples",
            "c30_resamples",
            "threads",
        ):
            check_positive_int(name, getattr(self, name))
        if self.ensemble_size < 2:
            raise ValueError(
                f"an ensemble needs at least 2 members, got {self.ensemble_size}"
            )
        unknown = [f for f in self.c30_flavours if f not in ANSWER_FLAVOURS]
        if not self.c30_flavours or self.c30_flavours[0] != C30_FLAVOURS[0] or unknown:
            raise ValueError(
                "c30_flavours must be answer-posterior flavours starting with "
                f"{C30_FLAVOURS[0]!r}, got {self.c30_flavours!r}"
            )
        check_instance("c30_recipe", self.c30_recipe, Recipe)

    @property
    def largest_corpus(self) -> int:
        return max(max(corpora) for corpora in self.corpus_sizes)


def _doubling(smallest: int, count: int) -> tuple[int, ...]:
    return tuple(smallest * 2**i for i in range(count))


ROUND2_RECIPES: dict[str, Round2Scale] = {
    # seconds: for the tests
    "tiny": Round2Scale(
        name="tiny",
        world=dict(RECIPES["tiny"].world, n_mentions=4000),
        sizes=((4, 1), (16, 1)),
        corpus_sizes=(_doubling(250, 4), _doubling(250, 4)),
        n_heads=2,
        train_steps=2,
        lr=1e-2,
        weight_decay=1e-5,
        repeats=2,
        epoch_steps=1,
        resamples=50,
        c30_recipe=Recipe(
            corpus=dict(RECIPES["tiny"].world, n_misinformation=4),
            model=dict(RECIPES["tiny"].c14_model),
            training=dict(steps=40, lr=3e-2, weight_decay=1e-5),
        ),
        c30_seeds=2,
        c30_queries=400,
        c30_samples=20,
        c30_resamples=20,
        ensemble_size=3,
    ),
    # chapter 4's quick world; 1.8k to 410k parameters; the corpora grow 16-fold, each
    # larger network reading smaller corpora so that every epoch and fit takes a tenth
    # of a second at least (the overhead then does not decide the slope) and a size's
    # repeat about five seconds on one thread; C30 on chapter 4's round 2
    "quick": Round2Scale(
        name="quick",
        world=dict(_QUICK.corpus, n_mentions=65_000),
        sizes=RECIPES["quick"].sizes,
        corpus_sizes=(_doubling(4_000, 5), _doubling(2_000, 5), _doubling(500, 5)),
        n_heads=RECIPES["quick"].n_heads,
        train_steps=RECIPES["quick"].sweep_steps,
        lr=RECIPES["quick"].lr,
        weight_decay=RECIPES["quick"].weight_decay,
        repeats=5,
        epoch_steps=1,
        resamples=2000,
        c30_recipe=ROUND2_FACT_RECIPES["quick"],
        c30_seeds=3,
        c30_queries=20_000,
        c30_samples=200,
        c30_resamples=500,
    ),
    # bigger hardware: chapter 4's full world and recipe
    "full": Round2Scale(
        name="full",
        world=dict(_FULL.corpus, n_mentions=260_000),
        sizes=RECIPES["full"].sizes,
        corpus_sizes=(
            _doubling(16_000, 5),
            _doubling(8_000, 5),
            _doubling(4_000, 5),
            _doubling(2_000, 5),
            _doubling(1_000, 5),
        ),
        n_heads=RECIPES["full"].n_heads,
        train_steps=RECIPES["full"].sweep_steps,
        lr=RECIPES["full"].lr,
        weight_decay=RECIPES["full"].weight_decay,
        repeats=5,
        epoch_steps=1,
        resamples=2000,
        c30_recipe=ROUND2_FACT_RECIPES["full"],
        c30_seeds=5,
        c30_queries=20_000,
        c30_samples=200,
        c30_resamples=500,
    ),
}


def round2_scale(scale: str | Round2Scale) -> Round2Scale:
    """The named round-2 scale (``tiny``, ``quick`` or ``full``), or ``scale``
    itself."""
    if isinstance(scale, Round2Scale):
        return scale
    if scale not in ROUND2_RECIPES:
        raise ValueError(
            f"unknown round-2 cost scale {scale!r}: expected one of "
            f"{tuple(ROUND2_RECIPES)}"
        )
    return ROUND2_RECIPES[scale]


# --- C29: the fit and the token epoch against the corpus size
# --------------------------------


def token_corpus(
    scale: str | Round2Scale, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """C29's corpus: the scale's fact world expanded to one row per token (``prompts``
    ``(N, T)``, next tokens ``(N,)``) in a seeded random order, so that its first ``n``
    rows are a random sample of ``n`` tokens of the same corpus (nested corpora)."""
    scale = round2_scale(scale)
    world = make_fact_world(**scale.world, seed=seed)
    prompts, targets = count_loader(*world.next_token_counts()).dataset.tensors
    if len(targets) < scale.largest_corpus:
        raise ValueError(
            f"the world has {len(targets)} tokens, fewer than the largest corpus "
            f"({scale.largest_corpus}): raise its n_mentions"
        )
    order = torch.randperm(
        len(targets),
        generator=torch.Generator().manual_seed(derive_seed(seed, C29_ORDER)),
    )
    return prompts[order], targets[order]


def run_c29(
    scale: str | Round2Scale,
    seed: int = 0,
    repeats: int | None = None,
    corpora: int | None = None,
    log=None,
) -> dict:
    """Time the last-layer KFAC fit and one token epoch over the scale's corpus sizes
    (or the ``corpora`` smallest of them), at every model size, on ``threads`` torch
    threads.

    At each model size a network (seeded) is trained ``train_steps`` full-batch steps on
    the world's count-weighted corpus, one untimed fit and epoch on a small corpus
    absorb the one-off start-up, and then, ``repeats`` times over, every corpus size is
    timed (:func:`~bayes_at_scale.core.profiling.fit_and_token_epoch`).  Each size's row
    holds the timings ``(corpus sizes, repeats)``, the lines ``a + b N`` through their
    medians and ``slope_ratio`` = b_fit / b_ep with its bootstrap interval over the
    repeats (:func:`~bayes_at_scale.core.profiling.slope_ratio_interval`)."""
    scale = round2_scale(scale)
    repeats = check_positive_int(
        "repeats", scale.repeats if repeats is None else repeats
    )
    if corpora is not None and (check_positive_int("corpora", corpora) < 2):
        raise ValueError(f"a line needs at least 2 corpus sizes, got corpora={corpora}")
    world = make_fact_world(**scale.world, seed=seed)
    contexts, counts = world.next_token_counts()
    prompts, targets = token_corpus(scale, seed)
    training = dict(lr=scale.lr, weight_decay=scale.weight_decay)
    rows = []
    with torch_threads(scale.threads):
        for i, (d_model, n_layers) in enumerate(scale.sizes):
            sizes = sorted(scale.corpus_sizes[i])[:corpora]
            model_kwargs = dict(
                d_model=d_model, n_heads=scale.n_heads, n_layers=n_layers
            )
            model, train_seconds = timed_training(
                world.vocab_size,
                contexts,
                counts,
                model_kwargs,
                steps=scale.train_steps,
                seed=derive_seed(seed, C29_NETWORKS, i),
                **training,
            )
            warm = sizes[0]  # untimed: one-off start-up of this size's kernels
            fit_and_token_epoch(
                model,
                prompts[:warm],
                targets[:warm],
                C29_FLAVOUR,
                epoch_steps=1,
                **training,
            )
            fits = [[0.0] * repeats for _ in sizes]
            epochs = [[0.0] * repeats for _ in sizes]
            for r in range(repeats):
                for j, n in enumerate(sizes):
                    fits[j][r], epochs[j][r] = fit_and_token_epoch(
                        model,
                        prompts[:n],
                        targets[:n],
                        C29_FLAVOUR,
                        epoch_steps=scale.epoch_steps,
                        **training,
                    )
                if log:
                    log(
                        f"  C29 d_model={d_model} n_layers={n_layers} repeat"
                        f" {r + 1}/{repeats}"
                    )
            lines = slope_ratio(sizes, fits, epochs)
            ratio, low, high = slope_ratio_interval(
                sizes,
                fits,
                epochs,
                seed=derive_seed(seed, C29_NETWORKS, i),
                n_resamples=scale.resamples,
            )
            rows.append(
                {
                    "d_model": d_model,
                    "n_layers": n_layers,
                    "parameters": model_shape(model)["parameters"],
                    "corpus_sizes": sizes,
                    "repeats": repeats,
                    "fit_seconds": fits,
                    "token_epoch_seconds": epochs,
                    "train_steps": scale.train_steps,
                    "train_seconds": train_seconds,
                    **lines,
                    "slope_ratio_low": low,
                    "slope_ratio_high": high,
                }
            )
    return {
        "flavour": C29_FLAVOUR,
        "threads": scale.threads,
        "epoch_steps": scale.epoch_steps,
        "resamples": scale.resamples,
        "sizes": rows,
    }


def c29_statistics(c29: Mapping) -> dict:
    """Claim C29 on one measurement: ``parameter_orders`` (log10 of the largest over the
    smallest parameter count), ``corpus_sizes`` (the fewest corpus sizes of any model
    size), ``corpus_orders`` (the smallest log10 span of corpus sizes of any model size)
    and ``worst_slope_ratio``: (b_fit / b_ep, low, high) of the model size whose
    bootstrap upper bound is largest."""
    rows = c29.get("sizes") if isinstance(c29, Mapping) else None
    if not rows:
        raise ValueError("no model sizes in C29's measurement")
    params = [check_positive("parameters", row["parameters"]) for row in rows]
    corpora = [row["corpus_sizes"] for row in rows]
    worst = max(rows, key=lambda row: row["slope_ratio_high"])
    return {
        "parameter_orders": float(np.log10(max(params) / min(params))),
        "corpus_sizes": float(min(len(set(c)) for c in corpora)),
        "corpus_orders": float(min(np.log10(max(c) / min(c)) for c in corpora)),
        "worst_slope_ratio": (
            float(worst["slope_ratio"]),
            float(worst["slope_ratio_low"]),
            float(worst["slope_ratio_high"]),
        ),
        "worst_parameters": float(worst["parameters"]),
    }


def c29_points(c29: Mapping) -> pd.DataFrame:
    """Long table for C29's figure: every timing (``measured``) and the fitted lines
    (``a + b N``) of the fit and of the token epoch, per model size (columns size, N,
    seconds, line)."""
    out = []
    for row in c29["sizes"]:
        size = f"{row['parameters']:,} parameters"
        for what, key, a, b in (
            ("Laplace fit", "fit_seconds", row["a_fit"], row["b_fit"]),
            ("token epoch", "token_epoch_seconds", row["a_ep"], row["b_ep"]),
        ):
            for n, times in zip(row["corpus_sizes"], row[key]):
                out += [
                    {"size": size, "N": n, "seconds": t, "line": f"{what}, measured"}
                    for t in times
                ]
                out.append(
                    {
                        "size": size,
                        "N": n,
                        "seconds": a + b * n,
                        "line": f"{what}: a + b N",
                    }
                )
    return pd.DataFrame(out)


def c29_table(c29: Mapping) -> pd.DataFrame:
    """One row per model size: the overheads ``a`` (seconds) and the per-token costs
    ``b`` (in seconds per million tokens) of the fit and of the token epoch, and b_fit /
    b_ep with its bootstrap interval."""
    return pd.DataFrame(
        [
            {
                "parameters": row["parameters"],
                "N": f"{min(row['corpus_sizes']):,}-{max(row['corpus_sizes']):,}",
                "a_fit (s)": row["a_fit"],
                "b_fit (s per 1M tokens)": 1e6 * row["b_fit"],
                "a_ep (s)": row["a_ep"],
                "b_ep (s per 1M tokens)": 1e6 * row["b_ep"],
                "b_fit / b_ep": row["slope_ratio"],
                "low": row["slope_ratio_low"],
                "high": row["slope_ratio_high"],
            }
            for row in c29["sizes"]
        ]
    )


# --- C30: the answer posterior against a deep ensemble, both scores, incremental
# compute -----


def answer_distributions(
    model: CausalLM, prompts: torch.Tensor, answer_tokens
) -> np.ndarray:
    """The network's own answer distribution ``(B, A)``: its next-token softmax
    restricted to ``answer_tokens`` and renormalised (the softmax of the answer logits),
    as round 2 scores every categorical predictive."""
    probs = (
        next_token_probs(model, prompts).double().numpy()[:, np.asarray(answer_tokens)]
    )
    return probs / probs.sum(axis=1, keepdims=True)


def method_detection(
    world: FactWorld,
    queries: np.ndarray,
    selection: np.ndarray,
    probs: np.ndarray,
    mi: np.ndarray | None,
) -> dict:
    """One method's detection of its own wrong answers on the fresh ``queries``.

    ``probs`` ``(n_entities, A)`` is the method's answer distribution about every entity
    and ``mi`` its mutual information (None for a point estimate: its only score is 1 -
    max p). Its answer is the most probable one.  The score - mutual information or 1 -
    max p - is chosen on the ``selection`` half
    (:func:`~bayes_at_scale.core.metrics.choose_score`, as C23 does) and evaluated on
    the other half: ``auroc``; both candidates' AUROCs on the evaluation half are kept
    beside it."""
    answers = world.answer_tokens[probs.argmax(axis=1)][queries]
    wrong = (answer_outcome(answers, world, queries) == "wrong").astype(int)
    candidates = {SCORES[1]: 1 - probs.max(axis=1)[queries]}
    if mi is not None:
        candidates = {SCORES[0]: np.asarray(mi)[queries], **candidates}
    choice = metrics.choose_score(candidates, wrong, selection)
    held = ~selection
    return {
        "score": choice,
        "scores": candidates[choice][held],
        "wrong": wrong[held],
        "auroc": metrics.auroc(candidates[choice][held], wrong[held]),
        **{
            f"auroc_{'mi' if name == SCORES[0] else 'confidence'}": metrics.auroc(
                score[held], wrong[held]
            )
            for name, score in candidates.items()
        },
        "wrong_rate": float(wrong[held].mean()),
    }


def _embedding_kwargs(world: FactWorld, flavour: str) -> dict:
    """The embedding-inclusive flavour's tokens on the fact world: the last name part
    (its 16 or 32 tokens at the prompt's last position), whose embeddings then join the
    answer head."""
    if answer_flavour(flavour).trainable != "embedding_and_head":
        return {}
    return {
        "embedded_tokens": world.part_token(np.arange(world.n_name_parts)),
        "position": world.name_length,
    }


def timed_answer_posterior(
    world: FactWorld, model: CausalLM, flavour: str, n_samples: int, seed: int
) -> tuple[dict, dict, np.ndarray]:
    """Fit the answer posterior ``flavour`` to ``model`` on ``world``'s corpus and
    predict every entity's answer with ``n_samples`` GLM samples (chapter 4's sample
    seed), timing both. Returns ``({"fit_seconds", "predict_seconds", "gradient_norm"},
    probs, mi)``: the fit is
    :func:`~bayes_at_scale.core.answer_posteriors.fit_answer_posterior` (curvature,
    prior precision by marginal likelihood, retraining at it, curvature at the mode);
    the predictive is
    :func:`~bayes_at_scale.core.answer_posteriors.answer_probabilities` (MAP's and LA's
    answer distributions, LA's mutual information)."""
    contexts, counts = world.next_token_counts()
    start = time.perf_counter()
    posterior = fit_answer_posterior(
        model,
        contexts,
        counts,
        world.answer_tokens,
        flavour=flavour,
        **_embedding_kwargs(world, flavour),
    )
    fit = time.perf_counter() - start
    start = time.perf_counter()
    probs, mi = answer_probabilities(
        posterior, world.prompts(), n_samples, derive_seed(seed, ANSWER_SAMPLES)
    )
    predict = time.perf_counter() - start
    return (
        {
            "fit_seconds": fit,
            "predict_seconds": predict,
            "gradient_norm": float(posterior.gradient_norm),
        },
        probs,
        mi,
    )


def c30_live_costs(scale: str | Round2Scale, seed: int = 0) -> dict:
    """C30's bill re-timed cheaply, on ``threads`` torch threads: the first network's
    training and predictions, C30's answer posterior on it
    (:func:`timed_answer_posterior`), and the incremental compute ratio, counting each
    of the ``ensemble_size - 1`` extra members as one more training and prediction of
    the first network (every member does the same work)."""
    scale = round2_scale(scale)
    recipe = scale.c30_recipe
    world = fact_world(recipe, seed)
    with torch_threads(scale.threads):
        model, training = timed_training(
            world.vocab_size,
            *world.next_token_counts(),
            recipe.model,
            steps=recipe.training["steps"],
            lr=recipe.training["lr"],
            weight_decay=recipe.training["weight_decay"],
            seed=seed,
        )
        start = time.perf_counter()
        answer_distributions(model, world.prompts(), world.answer_tokens)
        predict = time.perf_counter() - start
        la, _, _ = timed_answer_posterior(
            world, model, scale.c30_flavours[0], scale.c30_samples, seed
        )
    extra = (scale.ensemble_size - 1) * (training + predict)
    return {
        "seed": seed,
        "one_training_seconds": training,
        "member_predict_seconds": predict,
        **la,
        "fit_share_of_training": la["fit_seconds"] / training,
        "incremental_compute_ratio": (
            (la["fit_seconds"] + la["predict_seconds"]) / extra
        ),
    }


def run_c30_seed(scale: str | Round2Scale, seed: int = 0, log=None) -> dict:
    """C30 on one seed, on ``threads`` torch threads: chapter 4's round-2 world, network
    and fresh queries, Laplace against a deep ensemble.

    ``ensemble_size`` networks are trained from chapter 4's recipe; the first with the
    seed itself, so that it is chapter 4's network.  Each method answers about every
    entity with its own answer distribution (restricted to the answer tokens) and flags
    its own wrong answers with the score chosen on the selection half
    (:func:`method_detection`):

    * MAP - the first network (score 1 - max p);
    * LA - each answer posterior of ``c30_flavours`` on the first network, at its own
      mode (:func:`~bayes_at_scale.core.answer_posteriors.fit_answer_posterior`), its
      Monte Carlo GLM predictive and mutual information from ``c30_samples`` samples;
    * ensembles of the first ``k`` networks, ``k = 2 ... ensemble_size`` - the mean of
      their answer distributions and its mutual information.

    Compute is wall seconds: one training is the median of the members' (every member
    does the same work); MAP = one training + its predictions; LA = one training + the
    fit (curvature, prior by marginal likelihood, retraining at it) + its predictive; an
    ensemble of ``k`` = ``k`` trainings + the ``k`` members' predictions + their
    combination. ``incremental_compute_ratio`` = (C30's fit + predictive) / (the
    ``ensemble_size - 1`` extra members' trainings and predictions).
    """
    scale = round2_scale(scale)
    recipe = scale.c30_recipe
    world = fact_world(recipe, seed)
    contexts, counts = world.next_token_counts()
    prompts = world.prompts()
    queries = world.sample_queries(
        scale.c30_queries, seed=derive_seed(seed, ANSWER_QUERIES)
    )
    selection = metrics.split_halves(len(queries), derive_seed(seed, ANSWER_HALVES))
    with torch_threads(scale.threads):
        members, train_seconds, predict_seconds, member_probs = [], [], [], []
        for k in range(scale.ensemble_size):
            model, wall = timed_training(
                world.vocab_size,
                contexts,
                counts,
                recipe.model,
                steps=recipe.training["steps"],
                lr=recipe.training["lr"],
                weight_decay=recipe.training["weight_decay"],
                seed=seed if k == 0 else derive_seed(seed, C30_NETWORKS, k),
            )
            start = time.perf_counter()
            member_probs.append(
                answer_distributions(model, prompts, world.answer_tokens)
            )
            predict_seconds.append(time.perf_counter() - start)
            members.append(model)
            train_seconds.append(wall)
            if log:
                log(
                    f"  C30 seed {seed}: member {k + 1}/{scale.ensemble_size} trained"
                    f" in {wall:.1f} s"
                )
        one_training = median(train_seconds)
        methods = [
            {
                "method": "MAP",
                "kind": "MAP",
                "members": 1,
                **method_detection(world, queries, selection, member_probs[0], None),
                "compute_seconds": one_training + predict_seconds[0],
            }
        ]
        la = {}
        for name in scale.c30_flavours:
            la[name], probs, mi = timed_answer_posterior(
                world, members[0], name, scale.c30_samples, seed
            )
            methods.append(
                {
                    "method": f"LA {name}",
                    "kind": "Laplace",
                    "members": 1,
                    **method_detection(world, queries, selection, probs["LA"], mi),
                    "compute_seconds": (
                        one_training
                        + la[name]["fit_seconds"]
                        + la[name]["predict_seconds"]
                    ),
                }
            )
            if log:
                log(
                    f"  C30 seed {seed}: LA {name} fit {la[name]['fit_seconds']:.2f} s,"
                    f" predictive {la[name]['predict_seconds']:.2f} s"
                )
    stacked = np.stack(member_probs)
    for k in range(2, scale.ensemble_size + 1):
        start = time.perf_counter()
        mean = stacked[:k].mean(axis=0)
        mi = metrics.predictive_decomposition(stacked[:k])["epistemic"]
        combine = time.perf_counter() - start
        methods.append(
            {
                "method": f"ensemble x{k}",
                "kind": "ensemble",
                "members": k,
                **method_detection(world, queries, selection, mean, mi),
                "compute_seconds": (
                    k * one_training + sum(predict_seconds[:k]) + combine
                ),
            }
        )
    for row in methods:
        row["compute_trainings"] = row["compute_seconds"] / one_training

    la_row, full = methods[1], methods[-1]  # C30's posterior, the whole ensemble
    low, high = _auroc_ratio_interval(methods, la_row, full, seed, scale.c30_resamples)
    own = la[scale.c30_flavours[0]]
    extra = (scale.ensemble_size - 1) * one_training + sum(predict_seconds[1:])
    return {
        "seed": seed,
        "queries": scale.c30_queries,
        "n_samples": scale.c30_samples,
        "recipe": asdict(recipe),
        "train_steps": recipe.training["steps"],
        "members": scale.ensemble_size,
        "flavour": scale.c30_flavours[0],
        "train_seconds": train_seconds,
        "one_training_seconds": one_training,
        "predict_seconds": predict_seconds,
        "laplace": la,
        "la_seconds": own["fit_seconds"] + own["predict_seconds"],
        "extra_members_seconds": extra,
        "fit_share_of_training": own["fit_seconds"] / one_training,
        "auroc_la": la_row["auroc"],
        "auroc_ensemble": full["auroc"],
        "score_la": la_row["score"],
        "score_ensemble": full["score"],
        "auroc_ratio": la_row["auroc"] / full["auroc"],
        "auroc_ratio_low": low,
        "auroc_ratio_high": high,
        "incremental_compute_ratio": (
            (own["fit_seconds"] + own["predict_seconds"]) / extra
        ),
        "methods": methods,
    }


def run_c30(
    scale: str | Round2Scale, seeds: Iterable[int] | None = None, log=None
) -> dict:
    """:func:`run_c30_seed` on each of ``seeds`` (default: the scale's ``c30_seeds``
    seeds from 0), one after the other - never in parallel, which would time each seed
    under the others' load."""
    scale = round2_scale(scale)
    seeds = list(range(scale.c30_seeds)) if seeds is None else [int(s) for s in seeds]
    if not seeds:
        raise ValueError("C30 needs at least one seed")
    return {"seeds": [run_c30_seed(scale, seed, log=log) for seed in seeds]}


def c30_statistics(seed_result: Mapping) -> dict:
    """Claim C30 on one seed: ``auroc_ratio`` = AUROC(LA) / AUROC(ensemble) with its
    paired bootstrap interval over the evaluation half, and
    ``incremental_compute_ratio`` (a measured time: no interval)."""
    for key in ("auroc_la", "auroc_ensemble"):
        value = check_positive(key, seed_result[key])
        if value > 1:
            raise ValueError(f"{key} must lie in (0, 1], got {value!r}")
    return {
        "auroc_ratio": (
            float(seed_result["auroc_ratio"]),
            float(seed_result["auroc_ratio_low"]),
            float(seed_result["auroc_ratio_high"]),
        ),
        "incremental_compute_ratio": check_positive(
            "incremental_compute_ratio", seed_result["incremental_compute_ratio"]
        ),
    }


def c30_claim_statistics(c30: Mapping) -> tuple[list[dict], dict]:
    """C30's per-seed statistics and the pooled ``seeds`` (how many), as
    :func:`~bayes_at_scale.book.claims.report` takes them."""
    per_seed = [c30_statistics(s) for s in c30["seeds"]]
    return per_seed, {"seeds": float(len(per_seed))}


def c30_methods(c30: Mapping) -> pd.DataFrame:
    """One row per seed and method: its chosen score, the AUROCs on the evaluation half
    (the chosen score's and each candidate's), its wrong-answer rate and its compute."""
    return pd.DataFrame(
        [{"seed": s["seed"], **row} for s in c30["seeds"] for row in s["methods"]]
    )


def c30_frontier(c30: Mapping) -> pd.DataFrame:
    """The Pareto figure's points: per method, the mean over seeds of the chosen score's
    AUROC and of the compute in trainings, and the score chosen on most seeds."""
    table = c30_methods(c30)
    order = list(dict.fromkeys(table["method"]))
    front = (
        table.groupby("method", sort=False)
        .agg(
            kind=("kind", "first"),
            auroc=("auroc", "mean"),
            compute_trainings=("compute_trainings", "mean"),
            score=("score", lambda s: s.mode().iloc[0]),
        )
        .reindex(order)
        .reset_index()
    )
    return front.assign(label=front["method"] + " (" + front["score"] + ")")


# --- round 2 at once, and its recorded measurement
# -------------------------------------------


def run_round2(
    scale: str | Round2Scale = "quick",
    seed: int = 0,
    repeats: int | None = None,
    log=None,
) -> dict:
    """C29 (:func:`run_c29`, on the world of ``seed``) and C30 (:func:`run_c30`, on the
    scale's seeds), one after the other: a JSON-ready dict (machine details
    excluded)."""
    scale = round2_scale(scale)
    start = time.perf_counter()
    if log:
        log("C29: the fit and the token epoch against the corpus size")
    c29 = run_c29(scale, seed=seed, repeats=repeats, log=log)
    if log:
        log("C30: the answer posterior against a deep ensemble")
    c30 = run_c30(scale, log=log)
    return {
        "scale": scale.name,
        "round": 2,
        "seed": seed,
        "c29": c29,
        "c30": c30,
        "c29_statistics": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in c29_statistics(c29).items()
        },
        "seconds": time.perf_counter() - start,
    }


def round2_path(scale: str, root: Path | str | None = None) -> Path:
    """Where round 2's recorded measurement of ``scale`` lives:
    ``data/costs/round2_<scale>.json``."""
    round2_scale(scale)  # a clear error for an unknown scale
    return Path(root or project_root()) / RECORDS / f"round2_{scale}.json"


def record_round2(text: str, scale: str, root: Path | str | None = None) -> Path:
    """Write round 2's JSON ``text`` as the recorded measurement of ``scale``, with its
    checksum in ``SHA256SUMS``
    (:func:`~bayes_at_scale.core.measurements.write_measurement`)."""
    return write_measurement(round2_path(scale, root), text)


def load_round2(scale: str, root: Path | str | None = None) -> dict:
    """Round 2's recorded measurement of ``scale``, checked against ``SHA256SUMS`` and
    against the scale asked for
    (:func:`~bayes_at_scale.core.measurements.read_measurement`)."""
    path = round2_path(scale, root)
    results = read_measurement(
        path, f"python benchmarks/costs.py --round 2 --scale {scale} --record"
    )
    if results.get("scale") != scale or results.get("round") != 2:
        raise ValueError(
            f"{path} holds scale {results.get('scale')!r} of round "
            f"{results.get('round')!r}, not round 2 at {scale!r}"
        )
    return results


def compare_round2(
    recorded: Mapping, live_c29: Mapping, live_c30: Mapping
) -> pd.DataFrame:
    """Round 2's recorded measurement beside a small one just made: per model size the
    fit's and the token epoch's price per million tokens and b_fit / b_ep
    (:func:`run_c29`, maybe on fewer corpus sizes and repeats), and C30's bill on the
    live seed (:func:`c30_live_costs`) against the recorded seed of the same number."""
    by_seed = {s["seed"]: s for s in recorded["c30"]["seeds"]}
    if live_c30["seed"] not in by_seed:
        raise ValueError(f"the recorded measurement has no C30 seed {live_c30['seed']}")
    rows = {}
    for name, c29 in (("recorded", recorded["c29"]), ("this run", live_c29)):
        column = {}
        for row in c29["sizes"]:
            size = f"{row['parameters']:,} parameters"
            column[f"{size}: b_fit (s per 1M tokens)"] = 1e6 * row["b_fit"]
            column[f"{size}: b_ep (s per 1M tokens)"] = 1e6 * row["b_ep"]
            column[f"{size}: b_fit / b_ep"] = row["slope_ratio"]
        rows[name] = column
    seed = by_seed[live_c30["seed"]]
    for name, source in (
        ("recorded", {**seed, **seed["laplace"][seed["flavour"]]}),
        ("this run", live_c30),
    ):
        rows[name].update(
            {
                "C30: one training (s)": source["one_training_seconds"],
                "C30: Laplace fit (s)": source["fit_seconds"],
                "C30: Laplace predictive (s)": source["predict_seconds"],
                "C30: fit as a share of a training": source["fit_share_of_training"],
                "C30: incremental compute ratio": source["incremental_compute_ratio"],
            }
        )
    return pd.DataFrame(rows)

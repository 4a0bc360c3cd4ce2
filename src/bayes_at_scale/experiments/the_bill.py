"""Chapter 7's experiment: what a posterior costs (claims C13 and C14).

Everything is measured in one process, on chapter 4's fact world
(:mod:`bayes_at_scale.worlds.facts`), and reported as a ratio to *one training epoch of the
same model*: one full-batch step of the count-weighted corpus objective.  How time, memory and
the epoch are measured is :mod:`bayes_at_scale.core.profiling` (its ``DEFINITIONS`` go into
every result); what is predicted on paper is :mod:`bayes_at_scale.core.cost_model`.

**C13** (:func:`run_sweep`): for every model size of the scale's sweep, train a five-member
ensemble, time the epoch, and fit every Laplace flavour on the first network with its prior
precision by marginal likelihood.  Before anything is fitted at a size, every flavour's cost is
predicted from the shapes, and a flavour is skipped - recorded with the reason, never
crashing - when its predicted flops or bytes exceed the scale's budget; C13's flavour
(``required``) is exempt from the flop budget, not from the memory budget.  The claim's
statistic is the worst fit over the sweep, in epochs (:func:`c13_statistics`).

**C14** (:func:`run_c14`) replays chapter 4's hallucination detection: five networks trained
from different seeds on one fact world; the first is the MAP under the default (last-layer KFAC)
Laplace posterior.  Scores as in chapter 4 - LA's mutual information from posterior samples, the
ensemble's mutual information (entropy of the mean minus mean entropy of the members) - each
flagging its own wrong answers (:func:`~bayes_at_scale.worlds.facts.detection_labels`).
Compute is wall seconds, training included.

:func:`run_costs` runs both and the on-paper LLM table; the book reads its verdicts from a
recorded run (:func:`load_results`, checked against its checksum by
:mod:`bayes_at_scale.core.measurements`).
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import metrics
from ..core.checks import check_positive, check_positive_int
from ..core.cost_model import LLM_LAYERS, LLM_VOCABS, llm_laplace_costs, model_shape, plan_fits
from ..core.models import CausalLM, NextToken, next_token_probs
from ..core.posteriors import DEFAULT_FLAVOUR, FLAVOURS, count_loader, fit_posterior
from ..core.profiling import (DEFINITIONS, PeakMemory, median, profile_size, scaling_fits,
                              timed_training)
from ..core.measurements import read_measurement, write_measurement
from ..core.settings import derive_seed, project_root
from ..worlds.facts import (FACT_RECIPES, FactWorld, answer_outcome, answer_table,
                            detection_labels, make_fact_world)

C13_FLAVOUR = DEFAULT_FLAVOUR          # last-layer KFAC, prior precision by marginal likelihood
ENSEMBLE_SIZE = 5
# derive_seed keys of this module's random streams (each also gets the run's seed)
SWEEP_QUERIES, SWEEP_NETWORKS, C14_QUERIES, C14_NETWORKS = 1, 2, 3, 4


# --- recipes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostScale:
    """Everything one run of the cost benchmark measures, at one scale: chapter 7's recipe."""

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
            check_positive_int(name, getattr(self, name))
        if self.ensemble_size < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {self.ensemble_size}")
        if not self.c14_flavours or self.c14_flavours[0] != C13_FLAVOUR:
            raise ValueError(f"c14_flavours must start with C14's flavour {C13_FLAVOUR!r}, got "
                             f"{self.c14_flavours!r}")
        if not (self.budget_flops >= 0 and self.budget_bytes >= 0):
            raise ValueError("budgets must be non-negative")


_QUICK, _FULL = FACT_RECIPES["quick"], FACT_RECIPES["full"]

RECIPES: dict[str, CostScale] = {
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


def recipe(scale: str | CostScale) -> CostScale:
    """The named cost scale (``tiny``, ``quick`` or ``full``), or ``scale`` itself."""
    if isinstance(scale, CostScale):
        return scale
    if scale not in RECIPES:
        raise ValueError(f"unknown cost scale {scale!r}: expected one of {tuple(RECIPES)}")
    return RECIPES[scale]


def fact_task(scale: str | CostScale, seed: int) -> FactWorld:
    """The fact world that the scale's sweep and C14 run on."""
    return make_fact_world(**recipe(scale).world, seed=seed)


# --- C13: the sweep -------------------------------------------------------------------------


def run_sweep(scale: str | CostScale, seed: int = 0, repeats: int | None = None,
              log=None) -> list[dict]:
    """Measure every size of the scale's sweep (smallest first) on its fact world; one dict per
    size (:func:`~bayes_at_scale.core.profiling.profile_size`).  At each size the flavours that
    the scale's budget allows are decided first, from the shapes alone
    (:func:`~bayes_at_scale.core.cost_model.plan_fits`); C13's flavour is exempt from the flop
    budget."""
    scale = recipe(scale)
    repeats = check_positive_int("repeats", scale.repeats if repeats is None else repeats)
    world = fact_task(scale, seed)
    contexts, counts = world.next_token_counts()
    n_pairs = int(counts.sum())
    prompts = world.prompts(world.sample_queries(scale.queries,
                                                 seed=derive_seed(seed, SWEEP_QUERIES)))
    warmed = set()
    rows = []
    gc.collect()
    gc.freeze()  # the objects alive now are never garbage: keeps PeakMemory's collections fast
    try:
        for d_model, n_layers in scale.sizes:
            if log:
                log(f"size d_model={d_model} n_layers={n_layers}")
            model_kwargs = dict(d_model=d_model, n_heads=scale.n_heads, n_layers=n_layers)
            shape = model_shape(CausalLM(world.vocab_size, world.seq_len - 1, **model_kwargs))
            plans = plan_fits(scale.flavours, shape, n_pairs, scale.budget_flops,
                              scale.budget_bytes, required=scale.required,
                              why_required="C13 needs it")
            rows.append(profile_size(
                contexts, counts, prompts, model_kwargs, plans, repeats=repeats,
                members=scale.ensemble_size, steps=scale.sweep_steps, lr=scale.lr,
                weight_decay=scale.weight_decay, token_epoch_steps=scale.token_epoch_steps,
                probe_steps=scale.probe_steps, n_samples=scale.n_samples,
                curvature_only=scale.curvature_only, seed=derive_seed(seed, SWEEP_NETWORKS),
                warmed=warmed, log=log))
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


def _detection(scores, wrong) -> dict:
    """A method's Pareto fields: its score's AUROC at flagging its own wrong answers."""
    return {"scores": scores, "wrong": wrong, "auroc": metrics.auroc(scores, wrong),
            "wrong_rate": float(wrong.mean())}


def run_c14(scale: str | CostScale, seed: int = 0, log=None) -> dict:
    """Chapter 4's hallucination detection by Laplace posteriors and by deep ensembles.

    One fact world (``seed``); ``ensemble_size`` networks trained from seeds derived from
    ``seed``; the first is the MAP under every Laplace flavour of ``c14_flavours`` (the first of
    which, last-layer KFAC, is C14's).  Fresh queries from the mention distribution.  Each
    method flags its own wrong answers (:func:`~bayes_at_scale.worlds.facts.detection_labels`)
    by its own score.  Compute is wall seconds, training included; every network does the same
    work, so one training costs the median of the members' wall times (robust to load spikes):

    * MAP (score: 1 - top probability) = one training + one forward pass over the queries;
    * LA (score: mutual information of posterior samples) = one training + ``fit_posterior``
      (construction, curvature, prior) + :func:`~bayes_at_scale.worlds.facts.answer_table`
      (predictive, posterior samples and their mutual information; it also runs the network's
      own forward pass, a few milliseconds);
    * an ensemble of ``k`` members (score: mutual information) = ``k`` trainings + the first
      ``k`` members' forward passes, the mean and the mutual information
      (:func:`~bayes_at_scale.core.metrics.predictive_decomposition`).

    ``pareto`` has one row per method (the ensembles for ``k = 2 ... ensemble_size``); the
    top-level ``auroc_*`` and ``compute_*`` keys are C14's pair: last-layer KFAC against the
    full ensemble.
    """
    scale = recipe(scale)
    world = fact_task(scale, seed)
    contexts, counts = world.next_token_counts()
    members, train_seconds = [], []
    for k in range(scale.ensemble_size):
        model, wall = timed_training(world.vocab_size, contexts, counts, scale.c14_model,
                                     steps=scale.c14_steps, lr=scale.c14_lr,
                                     weight_decay=scale.weight_decay,
                                     seed=derive_seed(seed, C14_NETWORKS, k))
        members.append(model)
        train_seconds.append(wall)
        if log:
            log(f"  C14 member {k + 1}/{scale.ensemble_size} trained in {wall:.1f} s")
    one_training = median(train_seconds)  # identical work: the median resists load spikes
    entities = world.sample_queries(scale.c14_queries, seed=derive_seed(seed, C14_QUERIES))
    prompts = world.prompts(entities)

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
                       **_detection(table["mi_LA"].to_numpy(), detection_labels(table, "LA")),
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
                      **_detection(1 - first["confidence_MAP"].to_numpy(),
                                   detection_labels(first, "MAP")),
                      "compute_seconds": one_training + forward_seconds[0]})
    for k in range(2, scale.ensemble_size + 1):
        start = time.perf_counter()
        ensemble = _ensemble_answers(world, entities, probs[:k])
        combine = time.perf_counter() - start
        pareto.append({"method": f"ensemble x{k}", "kind": "ensemble", "members": k,
                       **_detection(ensemble["mi_ENS"].to_numpy(),
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
        costs.append(check_positive(f"fit_seconds at {size}", entry["fit_seconds"])
                     / check_positive(f"epoch_seconds at {size}", row["epoch_seconds"]))
        params.append(check_positive(f"parameters at {size}", row["parameters"]))
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
        check_positive(name, value)
        if value > 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return {"auroc_ratio": float(auroc_la) / float(auroc_ensemble),
            "compute_ratio": check_positive("compute_la", compute_la)
            / check_positive("compute_ensemble", compute_ensemble)}


def c14_claim_statistics(c14: Mapping) -> dict:
    """C14's statistics as :func:`~bayes_at_scale.claims.report` takes them: the AUROC ratio
    with its bootstrap 95% interval over queries, and the compute ratio (a measured time: no
    interval)."""
    return {"auroc_ratio": (c14["auroc_ratio"], c14["auroc_ratio_low"], c14["auroc_ratio_high"]),
            "compute_ratio": c14["compute_ratio"]}


# --- the recorded run against a fresh one ---------------------------------------------------


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


# --- everything at once ---------------------------------------------------------------------


def run_costs(scale: str | CostScale = "quick", repeats: int | None = None, seed: int = 0,
              log=None, sweep_only: bool = False) -> dict:
    """The sweep, C14 and the on-paper table: a JSON-ready dict (machine details excluded).

    ``sweep_only`` skips C14 (``"c14": None``): the sweep alone, for C13 on bigger networks
    when C14's trainings would take too long."""
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
    return {"scale": scale.name, "seed": seed,
            "repeats": scale.repeats if repeats is None else repeats,
            "definitions": DEFINITIONS, "budget_flops": scale.budget_flops,
            "budget_bytes": scale.budget_bytes,
            "memory_method": PeakMemory().method,
            "sweep_only": bool(sweep_only),
            "sweep": sweep, "scaling": scaling_fits(sweep), "c13": c13, "c14": c14,
            "on_paper": paper.to_dict("records"),
            "seconds": time.perf_counter() - start}


# --- recorded measurements ------------------------------------------------------------------

RECORDS = Path("data") / "costs"          # under the project root


def record_path(scale: str, root: Path | str | None = None, sweep_only: bool = False) -> Path:
    """Where the recorded measurement of ``scale`` lives: ``data/costs/costs_<scale>.json``, or
    ``costs_<scale>_sweep.json`` for a run without C14 (``sweep_only``)."""
    recipe(scale)  # a clear error for an unknown scale
    suffix = "_sweep" if sweep_only else ""
    return Path(root or project_root()) / RECORDS / f"costs_{scale}{suffix}.json"


def record_results(text: str, scale: str, root: Path | str | None = None,
                   sweep_only: bool = False) -> Path:
    """Write a benchmark's JSON ``text`` as the recorded measurement of ``scale`` and update
    the folder's ``SHA256SUMS`` (:func:`~bayes_at_scale.core.measurements.write_measurement`)."""
    return write_measurement(record_path(scale, root, sweep_only), text)


def load_results(scale: str, root: Path | str | None = None, sweep_only: bool = False) -> dict:
    """The recorded measurement of ``scale``, checked against ``SHA256SUMS``
    (:func:`~bayes_at_scale.core.measurements.read_measurement`: a missing file names the command that
    records it; a changed one is refused) and against the scale and kind of run asked for."""
    path = record_path(scale, root, sweep_only)
    results = read_measurement(path, f"python benchmarks/costs.py --scale {scale} --record"
                          + (" --sweep-only" if sweep_only else ""))
    if results.get("scale") != scale:
        raise ValueError(f"{path} holds scale {results.get('scale')!r}, not {scale!r}")
    if bool(results.get("sweep_only")) != sweep_only:
        raise ValueError(f"{path} {'lacks' if results.get('sweep_only') else 'has'} C14, "
                         f"unlike a {'sweep-only' if sweep_only else 'complete'} record")
    return results

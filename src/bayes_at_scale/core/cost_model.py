"""What a Laplace posterior costs on paper: flops and bytes from the shapes alone
(chapter 7).

:func:`predicted_fit_cost` is an order-of-magnitude flop and byte count of fitting a
posterior flavour to a :class:`~bayes_at_scale.core.models.CausalLM`
(:func:`model_shape`), and :func:`plan_fits` uses it to decide, before anything is
fitted, which flavours a budget allows: a flavour is skipped - with the reason - when
its predicted flops or bytes exceed the budget. The decision depends on the shapes only,
never on how busy the machine is, so every run measures the same flavours.
:func:`llm_laplace_costs` does the same bookkeeping for the shapes of large language
models (:func:`bayes_at_scale.core.metrics.fit_power_law` fits how a measured cost
scales with size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from .checks import check_instance, check_ints, check_positive_int
from .models import CausalLM
from .posteriors import PosteriorConfig, flavour

LLM_VOCABS = (32_000, 128_000)
LLM_LAYERS = (32, 80)


# --- small networks: predictions that decide what to measure --------------------------


def model_shape(lm: CausalLM) -> dict:
    """Sizes that the cost model needs: width, depth, vocabulary, context, parameter
    counts."""
    check_instance("lm", lm, CausalLM)
    d = lm.head.in_features
    return {
        "d_model": d,
        "n_layers": len(lm.blocks.layers),
        "vocab": lm.vocab_size,
        "context": lm.max_len,
        "parameters": sum(p.numel() for p in lm.parameters()),
        "last_layer_parameters": (d + 1) * lm.vocab_size,
        "block_matrix_parameters": sum(
            p.numel() for p in lm.blocks.parameters() if p.dim() == 2
        ),
        "embedding_parameters": lm.token.weight.numel() + lm.position.weight.numel(),
    }


def forward_flops(shape: Mapping) -> float:
    """Flops of one next-token prediction: ``2 T M + 4 T^2 d L + 2 (d + 1) V`` for ``T``
    positions through block matrices of ``M`` weights, attention over ``T`` positions in
    each of ``L`` layers, and the head at the last position."""
    t, d, layers = shape["context"], shape["d_model"], shape["n_layers"]
    return float(
        2 * t * shape["block_matrix_parameters"]
        + 4 * t * t * d * layers
        + 2 * shape["last_layer_parameters"]
    )


def _itemsize() -> int:
    return torch.empty((), dtype=torch.get_default_dtype()).element_size()


def predicted_fit_cost(config: PosteriorConfig, shape: Mapping, n_pairs: int) -> dict:
    """Order-of-magnitude flops and bytes of ``Posterior.fit`` on ``n_pairs`` training
    pairs.

    With ``N`` pairs, forward flops ``F`` (:func:`forward_flops`), width ``d``,
    vocabulary ``V``, last-layer parameters ``p = (d + 1) V``, fitted parameters ``P``,
    ``S`` prior steps:

    * last-layer KFAC: ``N F + N ((d+1) V + (d+1)^2 + V^2)`` (features, output
      Jacobians, the two factors) ``+ (d+1)^3 + V^3`` (eigendecompositions) ``+ S p``;
      memory: both factors and their eigenvectors;
    * last-layer diagonal: ``N F + N V p + S p``; memory a few vectors of ``p``;
    * last-layer full: ``N F + N V p^2`` (the GGN) ``+ S p^3`` (a log-determinant per
      marginal- likelihood step); memory three ``p x p`` matrices and the GGN's
      per-batch Jacobians, ``4 x fit_batch x V x p`` (curvlinops; the factor 4 from
      measurement);
    * all weights, diagonal EF: ``3 N F`` (per-example gradients) ``+ N P + S P``;
      memory the per-example gradients of one batch and their intermediates, ``8 x
      fit_batch x P`` (the factor 8 from measurement).

    Every fit also holds one batch of activations and two copies of the model.  Bytes
    use the default dtype's element size.  Measured against these predictions on chapter
    4's quick world (2 cores), the bytes are right within a factor of about 4; the flops
    are done at very different rates (a batched forward pass runs far faster than
    per-example gradients under ``vmap`` or a small fit dominated by fixed overheads) -
    they decide what is affordable, not what anything costs.
    """
    check_instance("config", config, PosteriorConfig)
    n_pairs = check_positive_int("n_pairs", n_pairs)
    n = float(n_pairs)
    d1, v, layers = shape["d_model"] + 1, shape["vocab"], shape["n_layers"]
    p = float(shape["last_layer_parameters"])
    big_p = float(shape["parameters"])
    if config.freeze:
        # the freezable parameters are the embeddings
        big_p -= shape["embedding_parameters"]
    f = forward_flops(shape)
    s = config.prior_steps
    batch = min(config.fit_batch, n_pairs)
    activations = (
        batch * shape["context"] * shape["d_model"] * (10 * layers + 2) + batch * v
    )
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
        raise ValueError(
            f"no cost model for subset_of_weights={key[0]!r}, "
            f"hessian_structure={key[1]!r}"
        )
    return {
        "flops": float(flops),
        "bytes": float(_itemsize() * (floats + 2 * shape["parameters"])),
    }


def predicted_probit_bytes(config: PosteriorConfig, shape: Mapping) -> float:
    """Memory of the closed-form GLM predictive: Jacobians ``predict_batch x V x p``
    (twice)."""
    fitted = (
        shape["last_layer_parameters"]
        if config.subset_of_weights == "last_layer"
        else shape["parameters"]
    )
    return float(2 * _itemsize() * config.predict_batch * shape["vocab"] * fitted)


def has_closed_form(config: PosteriorConfig) -> bool:
    """Whether the flavour's predictive is the closed-form probit (GLM) one."""
    return config.pred_type == "glm" and config.link_approx == "probit"


def plan_fits(
    names: Iterable[str],
    shape: Mapping,
    n_pairs: int,
    budget_flops: float,
    budget_bytes: float,
    required: Iterable[str] = (),
    why_required: str = "it is required",
) -> dict:
    """Which posterior flavours a budget allows, decided from :func:`predicted_fit_cost`
    before anything is fitted: one plan per flavour with ``predicted_flops``,
    ``predicted_bytes``, ``closed_form`` (whether its probit predictive will be timed),
    ``status`` (``measured`` or ``skipped``) and ``reason``.  A flavour in ``required``
    is exempt from the flop budget (the reason then says ``why_required``), never from
    the memory budget; a closed-form predictive predicted to exceed the memory budget is
    dropped (``probit_skipped`` says why)."""
    required = set(required)
    plans = {}
    for name in names:
        config = flavour(name)
        cost = predicted_fit_cost(config, shape, n_pairs)
        plan = {
            "predicted_flops": cost["flops"],
            "predicted_bytes": cost["bytes"],
            "closed_form": has_closed_form(config),
            "status": "measured",
            "reason": None,
        }
        over = cost["flops"] > budget_flops
        if over and name not in required:
            plan.update(
                status="skipped",
                reason=(
                    f"predicted {cost['flops']:.3g} flops exceed the budget of"
                    f" {budget_flops:.3g}"
                ),
            )
        elif cost["bytes"] > budget_bytes:
            plan.update(
                status="skipped",
                reason=(
                    f"predicted memory {cost['bytes'] / 2**20:.4g} MiB exceeds the"
                    f" budget of {budget_bytes / 2**20:.4g} MiB"
                ),
            )
        elif over:
            plan["reason"] = f"over the flop budget, measured because {why_required}"
        if plan["closed_form"]:
            probit_bytes = predicted_probit_bytes(config, shape)
            if probit_bytes > budget_bytes:
                plan["closed_form"] = False
                plan["probit_skipped"] = (
                    f"predicted memory {probit_bytes / 2**20:.4g} MiB "
                    "exceeds the budget"
                )
        plans[name] = plan
    return plans


# --- large language models, on paper --------------------------------------------------


def llm_laplace_costs(
    hidden=4096,
    vocab=32_000,
    layers=32,
    ffn_mult: int = 4,
    lora_rank: int = 8,
    lora_matrices: int = 2,
    lora_factor_rank: int = 10,
    bytes_per_entry: int = 4,
) -> pd.DataFrame:
    """Memory and time order of Laplace posteriors for LLM shapes, on paper.

    ``hidden``, ``vocab`` and ``layers`` may each be one integer or a sequence (every
    combination gets rows; the book uses ``vocab=LLM_VOCABS, layers=LLM_LAYERS``).
    Memory is ``bytes_per_entry`` (4: fp32) times the entries stored;
    ``curvature_flops_per_token`` is the order of the work to add one training token to
    the curvature (one outer-product update per factor; an exact GGN needs ``V``
    backward passes per token on top, a sampled Fisher one); ``decomposition_flops`` is
    the order of the one-off eigendecompositions / Cholesky (``n^3`` for an ``n x n``
    matrix; a symmetric eigendecomposition costs about ``9 n^3``). ``vocab_bytes`` and
    ``depth_bytes`` are the parts of ``memory_bytes`` that grow with the vocabulary
    ``V`` and with the depth ``L``.  With ``h`` = hidden, ``f = ffn_mult * h``:

    * ``last_layer_kfac``: the head ``V x (h + 1)`` (bias included) has factors
      ``(h+1)^2`` and ``V^2`` entries; eigendecompositions ``(h+1)^3 + V^3``.  Grows
      with the vocabulary (``V^2`` memory, ``V^3`` time), not with depth.
    * ``last_layer_full``: ``p = (h + 1) V`` parameters, a ``p x p`` precision: ``p^2``
      entries (``p^2`` per token), Cholesky ``p^3``.
    * ``all_weights_kfac``: every linear map of every block - 4 of ``h x h`` (query,
      key, value, output; no biases) and 2 of ``h x f`` (up and down) - gets an input
      and an output factor: ``L (4 (h^2 + h^2) + 2 (h^2 + f^2)) = L (10 h^2 + 2 f^2)``
      entries (``42 L h^2`` for ``f = 4h``), eigendecompositions ``L (10 h^3 + 2 f^3)``;
      plus the head's factors as above.  Embeddings are left out.  The depth part grows
      with ``L``; only the head's ``V^2`` grows with the vocabulary.  (Q, K and V read
      the same input and could share one input factor, saving ``2 L h^2``.)
    * ``laplace_lora_kfac``: rank-``r`` adapters on ``lora_matrices`` ``h x h`` maps per
      layer (query and value in Laplace-LoRA, Yang et al. 2024).  An adapter ``W + B A``
      with ``A``: ``h -> r`` and ``B``: ``r -> h`` has KFAC factors ``h^2, r^2`` (for
      ``A``) and ``r^2, h^2`` (for ``B``): ``2 h^2 + 2 r^2`` entries - the large factors
      are as big as a full-weight KFAC's; ``lora_matrices * L * (2 h^2 + 2 r^2)`` in
      all, eigendecompositions ``lora_matrices * L * (2 h^3 + 2 r^3)``.  Nothing grows
      with the vocabulary.
    * ``laplace_lora_kfac_low_rank``: as Laplace-LoRA does, each ``h x h`` factor is
      kept at rank ``k = lora_factor_rank`` (``h k`` eigenvector entries plus ``k``
      eigenvalues): ``lora_matrices * L * (2 (h k + k) + 2 r^2)`` entries; per token ``2
      h k + 2 r^2`` (projecting onto the rank-``k`` basis), decompositions ``2 h k^2 + 2
      r^3`` per adapter.
    """
    hs, vs, ls = (
        check_ints("hidden", hidden),
        check_ints("vocab", vocab),
        check_ints("layers", layers),
    )
    for name, value in (
        ("ffn_mult", ffn_mult),
        ("lora_rank", lora_rank),
        ("lora_matrices", lora_matrices),
        ("lora_factor_rank", lora_factor_rank),
        ("bytes_per_entry", bytes_per_entry),
    ):
        check_ints(name, value)
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be one positive integer, got {value!r}")
    b, r, k, m = bytes_per_entry, lora_rank, lora_factor_rank, lora_matrices
    rows = []
    for h in hs:
        f = ffn_mult * h
        for v in vs:
            for n_layers in ls:
                head = (h + 1) * v
                block = 4 * h * h + 2 * h * f  # weights of one block
                per_layer_kfac = 4 * (h * h + h * h) + 2 * (h * h + f * f)
                per_layer_eig = 4 * (h**3 + h**3) + 2 * (h**3 + f**3)
                lora = m * n_layers * (2 * h * h + 2 * r * r)
                low_rank = m * n_layers * (2 * (h * k + k) + 2 * r * r)
                # total, in_vocab, in_depth, per_token, decomposition, parameters
                entries = {
                    "last_layer_kfac": (
                        (h + 1) ** 2 + v**2,
                        v**2,
                        0,
                        (h + 1) ** 2 + v**2,
                        (h + 1) ** 3 + v**3,
                        head,
                    ),
                    "last_layer_full": (head**2, head**2, 0, head**2, head**3, head),
                    "all_weights_kfac": (
                        n_layers * per_layer_kfac + (h + 1) ** 2 + v**2,
                        v**2,
                        n_layers * per_layer_kfac,
                        n_layers * per_layer_kfac + (h + 1) ** 2 + v**2,
                        n_layers * per_layer_eig + (h + 1) ** 3 + v**3,
                        n_layers * block + head,
                    ),
                    "laplace_lora_kfac": (
                        lora,
                        0,
                        lora,
                        lora,
                        m * n_layers * (2 * h**3 + 2 * r**3),
                        m * n_layers * r * 2 * h,
                    ),
                    "laplace_lora_kfac_low_rank": (
                        low_rank,
                        0,
                        low_rank,
                        m * n_layers * (2 * h * k + 2 * r * r),
                        m * n_layers * (2 * h * k * k + 2 * r**3),
                        m * n_layers * r * 2 * h,
                    ),
                }
                for method, (
                    total,
                    in_vocab,
                    in_depth,
                    per_token,
                    decomposition,
                    params,
                ) in entries.items():
                    rows.append(
                        {
                            "method": method,
                            "hidden": h,
                            "vocab": v,
                            "layers": n_layers,
                            "parameters": params,
                            "entries": total,
                            "memory_bytes": b * total,
                            "memory_gib": b * total / 2**30,
                            "vocab_bytes": b * in_vocab,
                            "depth_bytes": b * in_depth,
                            "curvature_flops_per_token": per_token,
                            "decomposition_flops": decomposition,
                        }
                    )
    return pd.DataFrame(rows)

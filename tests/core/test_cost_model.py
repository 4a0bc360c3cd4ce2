"""Tests of bayes_at_scale.core.cost_model: predicted fit costs, budget plans, power laws and
the on-paper LLM table (arithmetic by hand)."""

from __future__ import annotations

import pytest
import torch

from bayes_at_scale.core import cost_model
from bayes_at_scale.core.models import CausalLM
from bayes_at_scale.core.posteriors import FLAVOURS, flavour


def _shape(d_model=8, n_layers=1):
    return cost_model.model_shape(CausalLM(20, 4, d_model=d_model, n_heads=2, n_layers=n_layers))


# --- shapes and predicted costs -------------------------------------------------------------


def test_model_shape_counts_the_parameters():
    lm = CausalLM(20, 4, d_model=8, n_heads=2, n_layers=1)
    shape = cost_model.model_shape(lm)
    assert shape["parameters"] == sum(p.numel() for p in lm.parameters())
    assert shape["last_layer_parameters"] == 9 * 20
    assert (shape["d_model"], shape["n_layers"], shape["vocab"], shape["context"]) == (8, 1, 20, 4)
    assert shape["embedding_parameters"] == 20 * 8 + 4 * 8
    with pytest.raises(TypeError, match="lm must be a CausalLM"):
        cost_model.model_shape("not a model")


def test_forward_flops_by_hand():
    shape = {"context": 3, "d_model": 4, "n_layers": 2, "block_matrix_parameters": 100,
             "last_layer_parameters": 50}
    assert cost_model.forward_flops(shape) == 2 * 3 * 100 + 4 * 9 * 4 * 2 + 2 * 50


def test_predicted_cost_grows_with_the_model_and_rejects_bad_input():
    small, large = _shape(8, 1), _shape(32, 2)
    for name in FLAVOURS:
        a = cost_model.predicted_fit_cost(flavour(name), small, 1000)
        b = cost_model.predicted_fit_cost(flavour(name), large, 1000)
        assert 0 < a["flops"] < b["flops"] and 0 < a["bytes"] < b["bytes"]
        more = cost_model.predicted_fit_cost(flavour(name), small, 2000)
        assert more["flops"] > a["flops"]
    full = cost_model.predicted_fit_cost(flavour("last_layer_full"), small, 1000)
    kron = cost_model.predicted_fit_cost(flavour("last_layer_kron"), small, 1000)
    assert full["flops"] > kron["flops"] and full["bytes"] > kron["bytes"]
    with pytest.raises(ValueError, match="n_pairs must be a positive integer"):
        cost_model.predicted_fit_cost(flavour("last_layer_kron"), small, 0)
    with pytest.raises(TypeError, match="config must be a PosteriorConfig"):
        cost_model.predicted_fit_cost("last_layer_kron", small, 10)


def test_closed_form_and_probit_bytes():
    small = _shape()
    kron, diag_ef = flavour("last_layer_kron"), flavour("all_diag_ef")
    assert cost_model.has_closed_form(kron) and not cost_model.has_closed_form(diag_ef)
    itemsize = torch.empty(()).element_size()
    assert cost_model.predicted_probit_bytes(kron, small) == (
        2 * itemsize * kron.predict_batch * 20 * small["last_layer_parameters"])


# --- budget plans ---------------------------------------------------------------------------


def test_plan_fits_skips_over_budget_with_the_reason_unless_required():
    shape, names = _shape(), ("last_layer_kron", "last_layer_diag")
    plans = cost_model.plan_fits(names, shape, 500, budget_flops=1e30, budget_bytes=1e30)
    assert list(plans) == list(names)
    for name, plan in plans.items():
        cost = cost_model.predicted_fit_cost(flavour(name), shape, 500)
        assert plan == {"predicted_flops": cost["flops"], "predicted_bytes": cost["bytes"],
                        "closed_form": True, "status": "measured", "reason": None}
    plans = cost_model.plan_fits(names, shape, 500, budget_flops=0.0, budget_bytes=1e30,
                                 required=["last_layer_kron"], why_required="C13 needs it")
    assert plans["last_layer_diag"]["status"] == "skipped"
    assert "flops exceed the budget" in plans["last_layer_diag"]["reason"]
    assert plans["last_layer_kron"]["status"] == "measured"
    assert plans["last_layer_kron"]["reason"] == ("over the flop budget, measured because C13 "
                                                  "needs it")
    # memory binds everyone, required or not
    plans = cost_model.plan_fits(names, shape, 500, budget_flops=1e30, budget_bytes=1.0,
                                 required=["last_layer_kron"])
    assert all(p["status"] == "skipped" and "memory" in p["reason"] for p in plans.values())


def test_plan_fits_drops_a_probit_predictive_over_the_memory_budget():
    shape = _shape()
    config = flavour("last_layer_kron")
    fit_bytes = cost_model.predicted_fit_cost(config, shape, 10)["bytes"]
    probit_bytes = cost_model.predicted_probit_bytes(config, shape)
    assert probit_bytes > fit_bytes  # so a budget between the two separates them
    (plan,) = cost_model.plan_fits(["last_layer_kron"], shape, 10, budget_flops=1e30,
                                   budget_bytes=(fit_bytes + probit_bytes) / 2).values()
    assert plan["status"] == "measured" and plan["closed_form"] is False
    assert "exceeds the budget" in plan["probit_skipped"]


# --- on paper -------------------------------------------------------------------------------


def test_llm_laplace_costs_arithmetic_by_hand():
    table = cost_model.llm_laplace_costs(hidden=4096, vocab=32_000, layers=32).set_index("method")
    h, v, n_layers = 4096, 32_000, 32
    last = table.loc["last_layer_kfac"]
    assert last["memory_bytes"] == 4 * (4097**2 + 32_000**2)
    assert last["vocab_bytes"] == 4 * 32_000**2 and last["depth_bytes"] == 0
    assert last["decomposition_flops"] == 4097**3 + 32_000**3
    assert last["parameters"] == 4097 * 32_000
    assert table.loc["last_layer_full", "memory_bytes"] == 4 * (4097 * 32_000) ** 2
    allw = table.loc["all_weights_kfac"]
    assert allw["depth_bytes"] == 4 * n_layers * 42 * h * h   # 4 (2 h^2) + 2 (h^2 + 16 h^2)
    assert allw["memory_bytes"] == 4 * (n_layers * 42 * h * h + 4097**2 + v**2)
    assert allw["parameters"] == n_layers * 12 * h * h + 4097 * v
    lora = table.loc["laplace_lora_kfac"]  # q and v adapters of rank 8
    assert lora["memory_bytes"] == 4 * 2 * n_layers * (2 * h * h + 2 * 8 * 8)
    assert lora["parameters"] == 2 * n_layers * 8 * 2 * h and lora["vocab_bytes"] == 0
    low = table.loc["laplace_lora_kfac_low_rank"]
    assert low["memory_bytes"] == 4 * 2 * n_layers * (2 * (h * 10 + 10) + 2 * 64)
    assert (table["memory_gib"] == table["memory_bytes"] / 2**30).all()


def test_llm_laplace_costs_grid_shows_what_grows_with_what():
    table = cost_model.llm_laplace_costs(vocab=cost_model.LLM_VOCABS, layers=cost_model.LLM_LAYERS)
    assert len(table) == 5 * 2 * 2
    by = table.set_index(["method", "vocab", "layers"])["memory_bytes"]
    # the last layer grows with the vocabulary only, Laplace-LoRA with depth only
    assert by["last_layer_kfac", 32_000, 32] == by["last_layer_kfac", 32_000, 80]
    assert by["last_layer_kfac", 128_000, 32] > 10 * by["last_layer_kfac", 32_000, 32]
    assert by["laplace_lora_kfac", 32_000, 80] == by["laplace_lora_kfac", 128_000, 80]
    assert by["laplace_lora_kfac", 32_000, 80] == 2.5 * by["laplace_lora_kfac", 32_000, 32]
    assert (table["vocab_bytes"] + table["depth_bytes"] <= table["memory_bytes"]).all()


@pytest.mark.parametrize("kwargs", [dict(hidden=0), dict(vocab=[]), dict(layers=[32, -1]),
                                    dict(vocab="32000"), dict(lora_rank=0),
                                    dict(ffn_mult=[4, 8]), dict(hidden=True)])
def test_llm_laplace_costs_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        cost_model.llm_laplace_costs(**kwargs)

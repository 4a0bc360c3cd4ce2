"""Tests of bayes_at_scale.core.posteriors (laplace-torch) on a tiny next-token problem.

One tiny CausalLM (vocabulary 8, prompts of 3 tokens) is trained for a few steps on 240
examples; each posterior flavour is fitted once per module and shared by the tests.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from dataclasses import replace
import torch
from torch.utils.data import DataLoader, TensorDataset

from bayes_at_scale.core import checks
from bayes_at_scale.core import metrics
from bayes_at_scale.core import models
from bayes_at_scale.core import posteriors
from bayes_at_scale.core import settings
from bayes_at_scale.core import training
from bayes_at_scale.core.posteriors import FLAVOURS, Posterior, PosteriorConfig

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
]

V, T, N = 8, 3, 240
LAST_LAYER = ["last_layer_kron", "last_layer_diag", "last_layer_full"]
ALL_WEIGHTS = ["all_diag_ef", "all_diag_ef_frozen_embedding"]
ALL_FLAVOURS = [*LAST_LAYER, *ALL_WEIGHTS]
FROZEN = ("lm.token", "lm.position")

@pytest.fixture(scope="module")
def world():
    """A trained tiny model, its training data as a loader, and a few query prompts."""
    settings.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, V, (N, T), generator=g)
    # the next token is the last prompt token, or its successor: a learnable, noisy rule
    targets = (prompts[:, -1] + torch.randint(0, 2, (N,), generator=g)) % V
    counts = torch.zeros(N, V, dtype=torch.long)
    counts[torch.arange(N), targets] = 1
    lm = models.CausalLM(V, T, d_model=16, n_heads=2, n_layers=1)
    training.train_map(lm, prompts, counts, steps=40, lr=3e-2, progress=False)
    return {
        "model": models.NextToken(lm),
        "state": {k: v.clone() for k, v in lm.state_dict().items()},
        "loader": posteriors.next_token_loader(prompts, targets, batch_size=128),
        "x": torch.randint(0, V, (5, T), generator=g),
    }


@pytest.fixture(scope="module")
def fitted(world):
    """``fitted(name)``: the posterior of flavour ``name``, fitted once per module."""
    cache: dict[str, Posterior] = {}

    def get(name: str) -> Posterior:
        if name not in cache:
            settings.seed_everything(0)
            cache[name] = posteriors.fit_posterior(world["model"], world["loader"], name)
        return cache[name]

    return get


def _posterior_size(model, config: PosteriorConfig) -> int:
    if config.subset_of_weights == "last_layer":
        return sum(p.numel() for p in model.lm.head.parameters())
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(config.freeze))


# --- predictions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_predictive_is_a_distribution(fitted, world, name):
    p = fitted(name).predictive(world["x"])
    assert p.shape == (5, V)
    assert torch.isfinite(p).all() and (p >= 0).all()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(5, dtype=p.dtype), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_samples_average_to_the_predictive(fitted, world, name):
    post = fitted(name)
    samples = post.sample(world["x"], 300, seed=1)
    assert samples.shape == (300, 5, V)
    torch.testing.assert_close(samples.sum(dim=-1), torch.ones(300, 5, dtype=samples.dtype),
                               rtol=0, atol=1e-5)
    mean = samples.mean(dim=0)
    checks.check_probabilities(mean)
    if post.config.link_approx == "mc":
        # a Monte-Carlo predictive is exactly the average of the seeded samples
        torch.testing.assert_close(post.predictive(world["x"]),
                                   post.sample(world["x"], post.config.n_samples, seed=0).mean(0))
    else:
        tv = metrics.tv_distance(mean.double().numpy(), post.predictive(world["x"]).double().numpy())
        assert tv.max() < 0.1


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_sampled_uncertainty_decomposes(fitted, world, name):
    samples = fitted(name).sample(world["x"], 100, seed=2).double().numpy()
    samples /= samples.sum(axis=-1, keepdims=True)
    d = metrics.predictive_decomposition(samples)
    assert ((0 <= d["epistemic"]) & (d["epistemic"] <= d["total"])).all()
    np.testing.assert_allclose(d["aleatoric"] + d["epistemic"], d["total"], atol=1e-12)
    assert (d["total"] <= np.log(V) + 1e-9).all()
    assert (d["epistemic"] > 1e-4).all()  # the weights are uncertain: samples disagree


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_sampling_is_seeded(fitted, world, name):
    post = fitted(name)
    a = post.sample(world["x"], 10, seed=7)
    b = post.sample(world["x"], 10, seed=7)
    c = post.sample(world["x"], 10, seed=8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_prior_precision_is_tuned_and_positive(fitted, name):
    prec = fitted(name).prior_precision
    assert torch.isfinite(prec).all() and (prec > 0).all()
    assert not torch.allclose(prec, torch.full_like(prec, FLAVOURS[name].prior_precision))


# --- variances ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    pytest.param("last_layer_kron"),
    "last_layer_diag",
    pytest.param("last_layer_full"),
    *ALL_WEIGHTS,
])
def test_marginal_variance(fitted, world, name):
    post = fitted(name)
    var = post.marginal_variance()
    assert var.numel() == _posterior_size(world["model"], post.config)
    assert torch.isfinite(var).all() and (var > 0).all()
    # the posterior is at least as tight as the prior
    prec = post.prior_precision
    assert (var <= 1 / prec + 1e-6).all()


@pytest.mark.parametrize("name", [
    pytest.param("last_layer_kron"),
    pytest.param("last_layer_diag"),
    "last_layer_full",
])
def test_covariance_is_symmetric_positive_definite(fitted, world, name):
    cov = fitted(name).covariance().double()
    size = _posterior_size(world["model"], fitted(name).config)
    assert cov.shape == (size, size)
    torch.testing.assert_close(cov, cov.T, rtol=0, atol=1e-6)
    assert torch.linalg.eigvalsh(cov).min() > 0


@pytest.mark.parametrize("name", [
    pytest.param("last_layer_kron"),
    pytest.param("last_layer_diag"),
    pytest.param("last_layer_full"),
])
def test_marginal_variance_is_the_covariance_diagonal(fitted, name):
    post = fitted(name)
    torch.testing.assert_close(post.marginal_variance().flatten(),
                               torch.diagonal(post.covariance()), rtol=1e-4, atol=1e-7)


# --- the model and its frozen parts -------------------------------------------------------


def test_fitting_leaves_the_model_untouched(fitted, world):
    for name in ALL_FLAVOURS:
        post = fitted(name)
        assert post.model is not world["model"]
    lm = world["model"].lm
    assert all(p.requires_grad for p in lm.parameters())
    for key, value in lm.state_dict().items():
        assert torch.equal(value, world["state"][key]), key


def test_frozen_parameters_are_outside_the_posterior(fitted, world):
    post = fitted("all_diag_ef_frozen_embedding")
    frozen = {n for n, p in post.model.named_parameters() if not p.requires_grad}
    assert frozen == {"lm.token.weight", "lm.position.weight"}
    assert post.la.n_params == _posterior_size(world["model"], post.config)
    assert post.la.n_params < sum(p.numel() for p in world["model"].parameters())


def test_last_layer_posterior_sits_on_the_head(fitted, world):
    post = fitted("last_layer_kron")
    assert post.la.n_params == V * 16 + V


# --- configuration ------------------------------------------------------------------------


def test_flavour_overrides_without_mutating_the_registry():
    config = posteriors.flavour("last_layer_diag", prior_steps=5, temperature=2.0)
    assert (config.prior_steps, config.temperature, config.hessian_structure) == (5, 2.0, "diag")
    assert FLAVOURS["last_layer_diag"].prior_steps == 100
    assert posteriors.flavour("last_layer_diag") == FLAVOURS["last_layer_diag"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.likelihood = "regression"


@pytest.mark.parametrize("name", ["bogus", "last_layer", "Last_Layer_Kron", ""])
def test_unknown_flavour(world, name):
    pattern = rf"unknown posterior flavour '{name}': expected one of \('last_layer_kron'"
    with pytest.raises(ValueError, match=pattern):
        posteriors.flavour(name)
    with pytest.raises(ValueError, match=pattern):
        posteriors.fit_posterior(world["model"], world["loader"], name)


def test_unknown_option():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'hessian'"):
        posteriors.flavour("last_layer_kron", hessian="kron")


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_regression_likelihood_is_rejected(world, name):
    config = posteriors.flavour(name, likelihood="regression")
    with pytest.raises(ValueError, match=r"needs the classification likelihood, got 'regression'"):
        Posterior(world["model"], config)
    with pytest.raises(ValueError, match=r"classification likelihood"):
        posteriors.fit_posterior(world["model"], world["loader"], name, likelihood="regression")


@pytest.mark.parametrize("name", LAST_LAYER)
def test_empty_loader_is_rejected(world, name):
    empty = DataLoader(TensorDataset(torch.zeros(0, T, dtype=torch.long),
                                     torch.zeros(0, dtype=torch.long)), batch_size=4)
    post = Posterior(world["model"], posteriors.flavour(name))
    with pytest.raises(ValueError, match=r"the data loader is empty"):
        post.fit(empty)
    assert not post.fitted
    with pytest.raises(ValueError, match=r"the data loader is empty"):
        posteriors.fit_posterior(world["model"], empty, name)


@pytest.mark.parametrize("call", ["predictive", "sample", "marginal_variance", "covariance"])
def test_unfitted_posterior_refuses(world, call):
    post = Posterior(world["model"])
    x = world["x"]
    run = {"predictive": lambda: post.predictive(x), "sample": lambda: post.sample(x, 3, seed=0),
           "marginal_variance": post.marginal_variance, "covariance": post.covariance}[call]
    with pytest.raises(RuntimeError, match=r"the posterior is not fitted: call fit\(loader\) first"):
        run()


@pytest.mark.parametrize("model", ["causal_lm", "linear", "none"])
def test_posterior_needs_a_next_token_model(world, model):
    bad = {"causal_lm": world["model"].lm, "linear": torch.nn.Linear(4, V), "none": None}[model]
    with pytest.raises(TypeError, match=r"a posterior needs a NextToken model, got "):
        Posterior(bad)
    with pytest.raises(TypeError, match=r"needs a NextToken model"):
        posteriors.fit_posterior(bad, world["loader"])


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True, None])
def test_bad_number_of_samples(fitted, world, n_samples):
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got "):
        fitted("last_layer_diag").sample(world["x"], n_samples, seed=0)


@pytest.mark.parametrize("bad, error, pattern", [
    (torch.zeros(2, T), TypeError, r"tokens must be integer ids"),
    (torch.zeros(2, T + 1, dtype=torch.long), ValueError, rf"sequence length {T + 1} not in 1..{T}"),
    (torch.full((2, T), V), ValueError, rf"token ids must lie in 0..{V - 1}"),
    (torch.zeros(T, dtype=torch.long), ValueError, r"tokens must have shape \(batch, time\)"),
])
@pytest.mark.parametrize("call", ["predictive", "sample"])
def test_bad_queries(fitted, bad, error, pattern, call):
    post = fitted("last_layer_diag")
    with pytest.raises(error, match=pattern):
        post.predictive(bad) if call == "predictive" else post.sample(bad, 2, seed=0)


# --- next_token_loader --------------------------------------------------------------------


def test_next_token_loader_yields_the_pairs_in_order():
    prompts = torch.arange(30).reshape(10, 3)
    targets = torch.arange(10)
    loader = posteriors.next_token_loader(prompts, targets, batch_size=4)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), prompts)
    assert torch.equal(torch.cat([b[1] for b in batches]), targets)


@pytest.mark.parametrize("prompts, targets, pattern", [
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
     r"prompts \(n, T\) and targets \(n,\) disagree: \(4, 3\), \(3,\)"),
    (torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), r"disagree: \(4,\), \(4,\)"),
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 1, dtype=torch.long),
     r"disagree: \(4, 3\), \(4, 1\)"),
    (torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long),
     r"cannot build a data loader from zero examples"),
])
def test_next_token_loader_rejects(prompts, targets, pattern):
    with pytest.raises(ValueError, match=pattern):
        posteriors.next_token_loader(prompts, targets)


@pytest.mark.parametrize("name", ALL_FLAVOURS)
def test_chunked_prediction_matches_one_batch(fitted, world, name):
    """Splitting prompts into chunks (to bound the Jacobians' memory) changes nothing."""
    post = fitted(name)
    x = world["x"]
    whole = post.predictive(x)
    whole_samples = post.sample(x, 4, seed=5)
    original = post.config
    try:
        post.config = replace(original, predict_batch=2)
        torch.testing.assert_close(post.predictive(x), whole)
        chunked = post.sample(x, 4, seed=5)
        assert chunked.shape == (4, x.shape[0], V)
        torch.testing.assert_close(chunked, post.sample(x, 4, seed=5))
        # weight samples (last-layer posteriors always sample weights): the same in every chunk
        torch.testing.assert_close(chunked, whole_samples)
    finally:
        post.config = original


def test_unknown_backend(world):
    with pytest.raises(ValueError, match=r"unknown curvature backend 'backpack': expected one of"):
        Posterior(world["model"], posteriors.flavour("last_layer_kron", backend="backpack"))


@pytest.mark.parametrize("targets, pattern", [
    (torch.full((N,), V), rf"target ids must lie in 0..{V - 1}"),
    (torch.full((N,), -1), rf"target ids must lie in 0..{V - 1}"),
    (torch.zeros(N), r"targets must be a 1-d tensor of token ids"),
])
def test_bad_training_targets(world, targets, pattern):
    prompts = world["loader"].dataset.tensors[0]
    loader = DataLoader(TensorDataset(prompts, targets), batch_size=128)
    post = Posterior(world["model"])
    with pytest.raises(ValueError, match=pattern):
        post.fit(loader)
    assert not post.fitted


def test_bad_training_prompts(world):
    targets = world["loader"].dataset.tensors[1]
    loader = DataLoader(TensorDataset(torch.full((N, T), V), targets), batch_size=128)
    with pytest.raises(ValueError, match=rf"token ids must lie in 0..{V - 1}"):
        Posterior(world["model"]).fit(loader)


@pytest.mark.parametrize("name", ["last_layer_kron", "last_layer_diag"])
def test_backends_agree(world, fitted, name):
    """ASDL (the default) and curvlinops compute the same exact GGN."""
    other = posteriors.fit_posterior(world["model"], world["loader"], name,
                                     backend="curvlinops_ggn")
    torch.testing.assert_close(other.prior_precision, fitted(name).prior_precision,
                               rtol=1e-3, atol=0)
    torch.testing.assert_close(other.predictive(world["x"]), fitted(name).predictive(world["x"]),
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", LAST_LAYER)
def test_last_layer_weight_samples_are_glm_samples(fitted, world, name):
    """Logits of last-layer weight samples have the GLM's mean and variance."""
    post = fitted(name)
    settings.seed_everything(0)
    f_mu, f_var = post.la._glm_predictive_distribution(world["x"])
    generator = torch.Generator().manual_seed(3)
    weights = post.la.sample(4000, generator=generator)
    logits = []
    for w in weights:
        torch.nn.utils.vector_to_parameters(w, post.la.model.last_layer.parameters())
        logits.append(post.la.model(world["x"]).detach())
    torch.nn.utils.vector_to_parameters(post.la.mean, post.la.model.last_layer.parameters())
    logits = torch.stack(logits)
    var = torch.diagonal(f_var, dim1=-2, dim2=-1)
    torch.testing.assert_close(logits.mean(0), f_mu, rtol=0, atol=4 * float(var.max().sqrt()) / 60)
    torch.testing.assert_close(logits.var(0), var, rtol=0.1, atol=1e-6)

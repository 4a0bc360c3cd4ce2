"""Tests of bayes_at_scale.posteriors (laplace-torch) on a tiny next-token problem.

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

from bayes_at_scale import metrics, models, posteriors, settings, training
from bayes_at_scale.posteriors import FLAVOURS, Posterior, PosteriorConfig

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
    metrics.check_probabilities(mean)
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


def test_flavours():
    assert posteriors.DEFAULT_FLAVOUR == "last_layer_kron"
    assert FLAVOURS["last_layer_kron"] == PosteriorConfig()
    for name in LAST_LAYER:
        assert FLAVOURS[name].subset_of_weights == "last_layer"
        assert FLAVOURS[name].hessian_structure == name.rsplit("_", 1)[1]
        assert FLAVOURS[name].likelihood == "classification"
    for name in ALL_WEIGHTS:
        config = FLAVOURS[name]
        assert (config.subset_of_weights, config.hessian_structure) == ("all", "diag")
        assert (config.backend, config.pred_type) == ("curvlinops_ef", "nn")
    assert FLAVOURS["all_diag_ef"].freeze == ()
    assert FLAVOURS["all_diag_ef_frozen_embedding"].freeze == FROZEN
    assert set(posteriors.BACKENDS) >= {c.backend for c in FLAVOURS.values()}


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


# --- reward-model posteriors (chapter 5) --------------------------------------------------

REWARD_FLAVOURS = list(posteriors.REWARD_FLAVOURS)
NOISE = 0.3


class _RewardNet(torch.nn.Module):
    """A one-hidden-layer regression network whose last layer is ``head``."""

    def __init__(self, d: int = 3, hidden: int = 16, bias: bool = False):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh())
        self.head = torch.nn.Linear(hidden, 1, bias=bias)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def reward_world():
    """A small network trained by MSE on y = sin(2 x_0) + x_1 + N(0, 0.3^2), 300 points."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g)
    y = torch.sin(2 * x[:, 0]) + x[:, 1] + NOISE * torch.randn(300, generator=g)
    settings.seed_everything(0)
    net = _RewardNet()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(300):
        optimiser.zero_grad()
        ((net(x)[:, 0] - y) ** 2).mean().backward()
        optimiser.step()
    return {"model": net, "state": {k: v.clone() for k, v in net.state_dict().items()},
            "loader": posteriors.reward_loader(x, y, batch_size=128), "x": x, "y": y,
            "query": torch.randn(6, 3, generator=g)}


@pytest.fixture(scope="module")
def reward_fitted(reward_world):
    cache = {}

    def get(name: str) -> posteriors.RewardPosterior:
        if name not in cache:
            cache[name] = posteriors.fit_reward_posterior(reward_world["model"],
                                                          reward_world["loader"], name)
        return cache[name]

    return get


@pytest.mark.parametrize("name", REWARD_FLAVOURS)
def test_reward_predictive_mean_is_the_network(reward_fitted, reward_world, name):
    mean, var = reward_fitted(name).predictive(reward_world["query"])
    assert mean.shape == var.shape == (6,)
    with torch.no_grad():
        torch.testing.assert_close(mean, reward_world["model"](reward_world["query"])[:, 0])
    assert (var > 0).all() and torch.isfinite(var).all()


@pytest.mark.parametrize("name", REWARD_FLAVOURS)
def test_reward_marglik_finds_the_noise(reward_fitted, name):
    post = reward_fitted(name)
    assert 0.7 * NOISE < post.sigma_noise < 1.3 * NOISE
    prec = post.prior_precision
    assert torch.isfinite(prec).all() and (prec > 0).all()
    assert not torch.allclose(prec, torch.ones_like(prec))


@pytest.mark.parametrize("name", REWARD_FLAVOURS)
def test_reward_samples_match_the_predictive(reward_fitted, reward_world, name):
    post = reward_fitted(name)
    samples = post.sample(reward_world["query"], 4000, seed=1)
    assert samples.shape == (4000, 6)
    mean, var = post.predictive(reward_world["query"])
    torch.testing.assert_close(samples.mean(0), mean, rtol=0, atol=4 * float(var.max().sqrt()) / 60)
    torch.testing.assert_close(samples.var(0), var, rtol=0.1, atol=1e-7)


@pytest.mark.parametrize("name", REWARD_FLAVOURS)
def test_reward_sampling_is_seeded_and_chunk_free(reward_fitted, reward_world, name):
    post = reward_fitted(name)
    x = reward_world["query"]
    a, b, c = post.sample(x, 5, seed=3), post.sample(x, 5, seed=3), post.sample(x, 5, seed=4)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    original = post.config
    try:
        post.config = replace(original, predict_batch=2)
        torch.testing.assert_close(post.sample(x, 5, seed=3), a)  # same functions in every chunk
        torch.testing.assert_close(post.predictive(x)[1], post.predictive(x)[1])
    finally:
        post.config = original


def test_reward_kron_is_exact_for_a_one_output_head(reward_world):
    """Without a bias, KFAC of a one-output last layer equals the full GGN."""
    fixed = dict(hyper_method="fixed", sigma_noise=0.5, prior_precision=2.0)
    kron = posteriors.fit_reward_posterior(reward_world["model"], reward_world["loader"],
                                           "reward_last_layer_kron", **fixed)
    full = posteriors.fit_reward_posterior(reward_world["model"], reward_world["loader"],
                                           "reward_last_layer_full", **fixed)
    torch.testing.assert_close(kron.predictive(reward_world["query"])[1],
                               full.predictive(reward_world["query"])[1], rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(kron.la.log_marginal_likelihood(),
                               full.la.log_marginal_likelihood(), rtol=1e-5, atol=1e-3)
    assert kron.sigma_noise == pytest.approx(0.5) and float(kron.prior_precision) == 2.0


def test_reward_posterior_tightens_with_data(reward_world):
    fixed = dict(hyper_method="fixed", sigma_noise=NOISE, prior_precision=1.0)
    x, y = reward_world["x"], reward_world["y"]
    few = posteriors.fit_reward_posterior(reward_world["model"],
                                          posteriors.reward_loader(x[:20], y[:20]), **fixed)
    many = posteriors.fit_reward_posterior(reward_world["model"], reward_world["loader"], **fixed)
    assert (many.predictive(reward_world["query"])[1]
            < few.predictive(reward_world["query"])[1]).all()
    assert (many.marginal_variance() <= few.marginal_variance() + 1e-8).all()


def test_reward_fit_leaves_the_model_untouched(reward_fitted, reward_world):
    for name in REWARD_FLAVOURS:
        assert reward_fitted(name).model is not reward_world["model"]
    for key, value in reward_world["model"].state_dict().items():
        assert torch.equal(value, reward_world["state"][key]), key


def test_reward_flavours_and_the_classification_registry():
    assert posteriors.DEFAULT_REWARD_FLAVOUR == "reward_last_layer_kron"
    assert posteriors.REWARD_FLAVOURS["reward_last_layer_kron"] == \
        posteriors.RewardPosteriorConfig()
    for config in posteriors.REWARD_FLAVOURS.values():
        assert (config.likelihood, config.subset_of_weights) == ("regression", "last_layer")
        assert config.backend in posteriors.BACKENDS
    assert not set(posteriors.REWARD_FLAVOURS) & set(FLAVOURS)
    config = posteriors.reward_flavour("reward_last_layer_diag", hyper_steps=3)
    assert (config.hyper_steps, config.hessian_structure) == (3, "diag")
    assert posteriors.REWARD_FLAVOURS["reward_last_layer_diag"].hyper_steps == 100
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sigma_noise = 2.0
    with pytest.raises(ValueError, match=r"unknown reward posterior flavour 'last_layer_kron'"):
        posteriors.reward_flavour("last_layer_kron")


@pytest.mark.parametrize("overrides, error, pattern", [
    (dict(likelihood="classification"), ValueError,
     r"a reward model needs the regression likelihood, got 'classification'"),
    (dict(backend="backpack"), ValueError, r"unknown curvature backend 'backpack'"),
    (dict(hyper_method="gridsearch"), ValueError, r"unknown hyper_method 'gridsearch'"),
    (dict(sigma_noise=0.0), ValueError, r"sigma_noise and prior_precision must be positive"),
    (dict(last_layer_name="body"), ValueError,
     r"last_layer_name 'body' must name an nn.Linear with one output"),
])
def test_reward_posterior_rejects_bad_configs(reward_world, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        posteriors.RewardPosterior(reward_world["model"],
                                   posteriors.reward_flavour("reward_last_layer_kron", **overrides))


def test_reward_posterior_rejects_bad_models(reward_world):
    with pytest.raises(TypeError, match=r"a reward posterior needs a torch nn.Module, got str"):
        posteriors.RewardPosterior("net")
    with pytest.raises(TypeError, match=r"config must be a RewardPosteriorConfig"):
        posteriors.RewardPosterior(reward_world["model"], PosteriorConfig())
    two_outputs = _RewardNet()
    two_outputs.head = torch.nn.Linear(16, 2)
    with pytest.raises(ValueError, match=r"must name an nn.Linear with one output"):
        posteriors.RewardPosterior(two_outputs)


@pytest.mark.parametrize("call", ["predictive", "sample", "marginal_variance"])
def test_unfitted_reward_posterior_refuses(reward_world, call):
    post = posteriors.RewardPosterior(reward_world["model"])
    x = reward_world["query"]
    run = {"predictive": lambda: post.predictive(x), "sample": lambda: post.sample(x, 2, seed=0),
           "marginal_variance": post.marginal_variance}[call]
    with pytest.raises(RuntimeError, match=r"the posterior is not fitted"):
        run()


@pytest.mark.parametrize("bad, error, pattern", [
    (torch.zeros(4, 3, dtype=torch.long), ValueError, r"x must be a floating-point tensor"),
    (torch.zeros(3), ValueError, r"x must be a floating-point tensor of shape \(n, features\)"),
    (torch.full((2, 3), float("nan")), ValueError, r"x contain NaN or infinite values"),
    ([[0.0, 0.0, 0.0]], TypeError, r"x must be a torch.Tensor, got list"),
])
def test_bad_reward_queries(reward_fitted, bad, error, pattern):
    post = reward_fitted("reward_last_layer_kron")
    with pytest.raises(error, match=pattern):
        post.predictive(bad)
    with pytest.raises(error, match=pattern):
        post.sample(bad, 2, seed=0)


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True])
def test_bad_number_of_reward_samples(reward_fitted, reward_world, n_samples):
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got "):
        reward_fitted("reward_last_layer_kron").sample(reward_world["query"], n_samples, seed=0)


@pytest.mark.parametrize("inputs, rewards, error, pattern", [
    (torch.zeros(4, 3), torch.zeros(3), ValueError,
     r"inputs \(n, features\) and rewards \(n,\) disagree: \(4, 3\), \(3,\)"),
    (torch.zeros(4, 3), torch.zeros(4, 2), ValueError, r"disagree: \(4, 3\), \(4, 2\)"),
    (torch.zeros(0, 3), torch.zeros(0), ValueError, r"cannot build a data loader from zero"),
    (torch.zeros(4, 3), torch.tensor([0.0, 1.0, float("inf"), 0.0]), ValueError,
     r"rewards contain NaN or infinite values"),
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4), ValueError,
     r"inputs must be a floating-point tensor"),
    (torch.zeros(4, 3), [0.0] * 4, TypeError, r"rewards must be a torch.Tensor, got list"),
])
def test_reward_loader_rejects(inputs, rewards, error, pattern):
    with pytest.raises(error, match=pattern):
        posteriors.reward_loader(inputs, rewards)


def test_reward_loader_makes_a_column_and_keeps_the_order():
    loader = posteriors.reward_loader(torch.arange(12.0).reshape(6, 2), torch.arange(6.0),
                                      batch_size=4)
    batches = list(loader)
    assert [tuple(b[1].shape) for b in batches] == [(4, 1), (2, 1)]
    assert torch.equal(torch.cat([b[1] for b in batches])[:, 0], torch.arange(6.0))


def test_reward_fit_rejects_an_empty_or_malformed_loader(reward_world):
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1)), batch_size=4)
    post = posteriors.RewardPosterior(reward_world["model"])
    with pytest.raises(ValueError, match=r"the data loader is empty"):
        post.fit(empty)
    flat = DataLoader(TensorDataset(torch.zeros(5, 3), torch.zeros(5)), batch_size=4)
    with pytest.raises(ValueError, match=r"rewards must be a float column \(n, 1\)"):
        post.fit(flat)
    assert not post.fitted


# --- preference (Bradley-Terry) reward models -----------------------------------------------


class _PairNet(torch.nn.Module):
    """A Bradley-Terry reward model: pairs (B, 2, d) -> (B, 2), responses (B, d) -> (B, 1)."""

    def __init__(self, d: int = 3, hidden: int = 12, bias: bool = False):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh())
        self.head = torch.nn.Linear(hidden, 1, bias=bias)

    def forward(self, z):
        out = self.head(self.body(z))
        return out.squeeze(-1) if z.dim() == 3 else out


@pytest.fixture(scope="module")
def preference_world():
    """A small network trained on 400 Bradley-Terry preferences of reward sin(2 x_0) + x_1."""
    g = torch.Generator().manual_seed(0)
    pairs = torch.randn(400, 2, 3, generator=g)
    reward = torch.sin(2 * pairs[..., 0]) + pairs[..., 1]
    preferred = (torch.rand(400, generator=g)
                 < torch.sigmoid(reward[:, 1] - reward[:, 0])).long()
    settings.seed_everything(0)
    net = _PairNet()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-2, weight_decay=1e-3)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(pairs), preferred).backward()
        optimiser.step()
    return {"model": net, "state": {k: v.clone() for k, v in net.state_dict().items()},
            "pairs": pairs, "preferred": preferred,
            "loader": posteriors.preference_loader(pairs, preferred, batch_size=128),
            "query": torch.randn(6, 3, generator=g)}


@pytest.fixture(scope="module")
def preference_fitted(preference_world):
    return posteriors.fit_preference_posterior(preference_world["model"],
                                               preference_world["loader"])


def test_preference_ggn_is_the_exact_bradley_terry_curvature(preference_world):
    post = posteriors.fit_preference_posterior(preference_world["model"],
                                               preference_world["loader"],
                                               prior_method="fixed", prior_precision=2.0)
    net = preference_world["model"]
    with torch.no_grad():
        phi = net.body(preference_world["pairs"])
        rewards = net(preference_world["pairs"])
        p = torch.sigmoid(rewards[:, 1] - rewards[:, 0])
        d = phi[:, 1] - phi[:, 0]
        exact = ((p * (1 - p))[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
    torch.testing.assert_close(post.la.H, exact, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(post.covariance(),
                               torch.linalg.inv(exact + 2.0 * torch.eye(exact.shape[0])),
                               rtol=1e-4, atol=1e-6)
    assert float(post.prior_precision) == 2.0


def test_preference_predictive_is_the_network_with_linearised_variance(preference_fitted,
                                                                       preference_world):
    x = preference_world["query"]
    mean, var = preference_fitted.predictive(x)
    assert mean.shape == var.shape == (6,)
    net = preference_world["model"]
    with torch.no_grad():
        torch.testing.assert_close(mean, net(x)[:, 0])
        phi = net.body(x)
    torch.testing.assert_close(var, torch.einsum("bi,ij,bj->b", phi, preference_fitted.covariance(),
                                                 phi), rtol=1e-4, atol=1e-7)
    assert (var > 0).all()
    prec = preference_fitted.prior_precision
    assert torch.isfinite(prec).all() and (prec > 0).all() and not torch.allclose(
        prec, torch.ones_like(prec))  # tuned by the marginal likelihood


def test_preference_variance_grows_away_from_the_data(preference_fitted, preference_world):
    x = preference_world["query"]
    assert (preference_fitted.predictive(10 * x)[1].mean()
            > preference_fitted.predictive(x)[1].mean())


def test_preference_samples_match_the_predictive_and_are_seeded(preference_fitted,
                                                                preference_world):
    x = preference_world["query"]
    samples = preference_fitted.sample(x, 4000, seed=1)
    assert samples.shape == (4000, 6)
    mean, var = preference_fitted.predictive(x)
    torch.testing.assert_close(samples.mean(0), mean, rtol=0,
                               atol=4 * float(var.max().sqrt()) / 60)
    torch.testing.assert_close(samples.var(0), var, rtol=0.1, atol=1e-7)
    assert torch.equal(preference_fitted.sample(x, 3, seed=2),
                       preference_fitted.sample(x, 3, seed=2))
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer"):
        preference_fitted.sample(x, 0, seed=0)


def test_preference_fit_leaves_the_model_untouched(preference_fitted, preference_world):
    assert preference_fitted.model is not preference_world["model"]
    for key, value in preference_world["model"].state_dict().items():
        assert torch.equal(value, preference_world["state"][key]), key


@pytest.mark.parametrize("overrides, pattern", [
    (dict(hessian_structure="kron"), r"unsupported \(subset_of_weights, hessian_structure"),
    (dict(hessian_structure="diag"), r"unsupported \(subset_of_weights, hessian_structure"),
    (dict(backend="asdl_ggn"), r"unsupported \(subset_of_weights, hessian_structure"),
    (dict(subset_of_weights="all"), r"unsupported \(subset_of_weights, hessian_structure"),
    (dict(likelihood="classification"), r"needs the reward_modeling likelihood"),
    (dict(prior_method="gridsearch"), r"unknown prior_method 'gridsearch'"),
    (dict(prior_precision=0.0), r"prior_precision must be positive"),
    (dict(last_layer_name="body"), r"must name an nn.Linear with one output and no bias"),
])
def test_preference_posterior_rejects_bad_configs(preference_world, overrides, pattern):
    config = replace(posteriors.PreferencePosteriorConfig(), **overrides)
    with pytest.raises(ValueError, match=pattern):
        posteriors.PreferencePosterior(preference_world["model"], config)


def test_preference_posterior_rejects_bad_models_and_unfitted_use(preference_world):
    with pytest.raises(ValueError, match=r"no bias"):
        posteriors.PreferencePosterior(_PairNet(bias=True))
    with pytest.raises(TypeError, match=r"needs a torch nn.Module"):
        posteriors.PreferencePosterior("net")
    with pytest.raises(TypeError, match=r"config must be a PreferencePosteriorConfig"):
        posteriors.PreferencePosterior(preference_world["model"],
                                       posteriors.RewardPosteriorConfig())
    post = posteriors.PreferencePosterior(preference_world["model"])
    with pytest.raises(RuntimeError, match=r"not fitted"):
        post.predictive(preference_world["query"])
    with pytest.raises(RuntimeError, match=r"not fitted"):
        post.covariance()


@pytest.mark.parametrize("pairs, preferred, error, pattern", [
    (torch.zeros(4, 3, 2), torch.zeros(4, dtype=torch.long), ValueError,
     r"pairs must be a floating-point tensor of shape \(n, 2, features\)"),
    (torch.zeros(4, 2, 3), torch.zeros(3, dtype=torch.long), ValueError,
     r"pairs \(n, 2, features\) and preferred \(n,\) disagree"),
    (torch.zeros(0, 2, 3), torch.zeros(0, dtype=torch.long), ValueError,
     r"cannot build a data loader from zero pairs"),
    (torch.zeros(2, 2, 3), torch.tensor([0, 2]), ValueError, r"preferred must hold integer"),
    (torch.zeros(2, 2, 3), torch.tensor([0.0, 1.0]), ValueError, r"preferred must hold integer"),
    (torch.full((2, 2, 3), float("nan")), torch.tensor([0, 1]), ValueError,
     r"pairs contain NaN"),
    ([[0.0]], torch.tensor([0]), TypeError, r"pairs must be a torch.Tensor"),
])
def test_preference_loader_rejects(pairs, preferred, error, pattern):
    with pytest.raises(error, match=pattern):
        posteriors.preference_loader(pairs, preferred)

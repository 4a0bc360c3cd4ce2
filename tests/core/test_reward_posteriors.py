"""Tests of bayes_at_scale.core.reward_posteriors: Laplace posteriors over the scalar
(Gaussian) and Bradley-Terry reward models of chapters 5 and 6."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from bayes_at_scale.core import posteriors
from bayes_at_scale.core import reward_posteriors as rp
from bayes_at_scale.core import settings
from bayes_at_scale.core.posteriors import FLAVOURS, PosteriorConfig


def fit_reward_posterior(model, loader, name=posteriors.DEFAULT_REWARD_FLAVOUR, **overrides):
    return rp.RewardPosterior(model, posteriors.reward_flavour(name, **overrides)).fit(loader)


def fit_preference_posterior(model, loader, **overrides):
    config = replace(posteriors.PreferencePosteriorConfig(), **overrides)
    return rp.PreferencePosterior(model, config).fit(loader)


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
            "loader": rp.reward_loader(x, y, batch_size=128), "x": x, "y": y,
            "query": torch.randn(6, 3, generator=g)}


@pytest.fixture(scope="module")
def reward_fitted(reward_world):
    cache = {}

    def get(name: str) -> rp.RewardPosterior:
        if name not in cache:
            cache[name] = fit_reward_posterior(reward_world["model"],
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
    kron = fit_reward_posterior(reward_world["model"], reward_world["loader"],
                                           "reward_last_layer_kron", **fixed)
    full = rp.RewardPosterior(reward_world["model"], posteriors.RewardPosteriorConfig(
        hessian_structure="full", backend="curvlinops_ggn", **fixed)).fit(reward_world["loader"])
    torch.testing.assert_close(kron.predictive(reward_world["query"])[1],
                               full.predictive(reward_world["query"])[1], rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(kron.la.log_marginal_likelihood(),
                               full.la.log_marginal_likelihood(), rtol=1e-5, atol=1e-3)
    assert kron.sigma_noise == pytest.approx(0.5) and float(kron.prior_precision) == 2.0


def test_reward_posterior_tightens_with_data(reward_world):
    fixed = dict(hyper_method="fixed", sigma_noise=NOISE, prior_precision=1.0)
    x, y = reward_world["x"], reward_world["y"]
    few = fit_reward_posterior(reward_world["model"],
                                          rp.reward_loader(x[:20], y[:20]), **fixed)
    many = fit_reward_posterior(reward_world["model"], reward_world["loader"], **fixed)
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
        rp.RewardPosteriorConfig()
    for config in posteriors.REWARD_FLAVOURS.values():
        assert (config.likelihood, config.subset_of_weights) == ("regression", "last_layer")
        assert config.backend in posteriors.BACKENDS
    assert not set(posteriors.REWARD_FLAVOURS) & set(FLAVOURS)
    config = posteriors.reward_flavour("reward_last_layer_kron", hyper_steps=3)
    assert (config.hyper_steps, config.hessian_structure) == (3, "kron")
    assert posteriors.REWARD_FLAVOURS["reward_last_layer_kron"].hyper_steps == 100
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
        rp.RewardPosterior(reward_world["model"],
                                   posteriors.reward_flavour("reward_last_layer_kron", **overrides))


def test_reward_posterior_rejects_bad_models(reward_world):
    with pytest.raises(TypeError, match=r"a reward posterior needs a torch nn.Module, got str"):
        rp.RewardPosterior("net")
    with pytest.raises(TypeError, match=r"config must be a RewardPosteriorConfig"):
        rp.RewardPosterior(reward_world["model"], PosteriorConfig())
    two_outputs = _RewardNet()
    two_outputs.head = torch.nn.Linear(16, 2)
    with pytest.raises(ValueError, match=r"must name an nn.Linear with one output"):
        rp.RewardPosterior(two_outputs)


@pytest.mark.parametrize("call", ["predictive", "sample", "marginal_variance"])
def test_unfitted_reward_posterior_refuses(reward_world, call):
    post = rp.RewardPosterior(reward_world["model"])
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
        rp.reward_loader(inputs, rewards)


def test_reward_loader_makes_a_column_and_keeps_the_order():
    loader = rp.reward_loader(torch.arange(12.0).reshape(6, 2), torch.arange(6.0),
                                      batch_size=4)
    batches = list(loader)
    assert [tuple(b[1].shape) for b in batches] == [(4, 1), (2, 1)]
    assert torch.equal(torch.cat([b[1] for b in batches])[:, 0], torch.arange(6.0))


def test_reward_fit_rejects_an_empty_or_malformed_loader(reward_world):
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1)), batch_size=4)
    post = rp.RewardPosterior(reward_world["model"])
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
            "loader": rp.preference_loader(pairs, preferred, batch_size=128),
            "query": torch.randn(6, 3, generator=g)}


@pytest.fixture(scope="module")
def preference_fitted(preference_world):
    return fit_preference_posterior(preference_world["model"],
                                               preference_world["loader"])


def test_preference_ggn_is_the_exact_bradley_terry_curvature(preference_world):
    post = fit_preference_posterior(preference_world["model"],
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
        rp.PreferencePosterior(preference_world["model"], config)


def test_preference_posterior_rejects_bad_models_and_unfitted_use(preference_world):
    with pytest.raises(ValueError, match=r"no bias"):
        rp.PreferencePosterior(_PairNet(bias=True))
    with pytest.raises(TypeError, match=r"needs a torch nn.Module"):
        rp.PreferencePosterior("net")
    with pytest.raises(TypeError, match=r"config must be a PreferencePosteriorConfig"):
        rp.PreferencePosterior(preference_world["model"],
                                       rp.RewardPosteriorConfig())
    post = rp.PreferencePosterior(preference_world["model"])
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
        rp.preference_loader(pairs, preferred)

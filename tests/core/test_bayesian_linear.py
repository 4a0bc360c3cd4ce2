"""Tests of bayes_at_scale.core.bayesian_linear: the closed-form normal-inverse-gamma regression
is the exact last-layer Laplace posterior (checked against laplace-torch), its one-observation
updates equal a refit, and its draws have the posterior's moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bayes_at_scale.core.bayesian_linear import NormalInverseGamma
from bayes_at_scale.core.models import RewardNet
from bayes_at_scale.core.posteriors import DEFAULT_REWARD_FLAVOUR, reward_flavour
from bayes_at_scale.core.reward_posteriors import RewardPosterior, reward_loader
from bayes_at_scale.core.settings import seeded_torch


def _data(n=200, dim=4, groups=2, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal((n, dim - 1)), np.ones((n, 1))], axis=1)
    group = rng.integers(0, groups, size=n)
    beta = rng.standard_normal((groups, dim))
    y = np.einsum("nd,nd->n", x, beta[group]) + 0.3 * rng.standard_normal(n)
    return x, y, group


def test_posterior_is_the_closed_form():
    x, y, group = _data()
    nig = NormalInverseGamma(2, 4, a0=6, b0=6, lambda_prior=0.25).fit(x, y, group)
    for g in range(2):
        xg, yg = x[group == g], y[group == g]
        precision = xg.T @ xg + 0.25 * np.eye(4)
        mu = np.linalg.solve(precision, xg.T @ yg)
        np.testing.assert_allclose(nig.mu[g], mu, rtol=1e-10)
        np.testing.assert_allclose(nig.precision[g], precision, rtol=1e-10)
        assert nig.a[g] == 6 + len(yg) / 2
        np.testing.assert_allclose(nig.b[g], 6 + 0.5 * (yg @ yg - mu @ precision @ mu))
    # the noise is learned: its posterior mean b / (a - 1) moves from the prior's 6 / 5 = 1.2
    # towards the true 0.3^2
    np.testing.assert_allclose(nig.noise_variance, nig.b / (nig.a - 1))
    assert np.all((0.09 < nig.noise_variance) & (nig.noise_variance < 0.25))


def test_one_observation_updates_equal_a_refit():
    x, y, group = _data(n=60)
    nig = NormalInverseGamma(2, 4).fit(x[:40], y[:40], group[:40])
    for i in range(40, 60):
        nig.add(x[i], y[i], group[i])
    refit = NormalInverseGamma(2, 4).fit(x, y, group)
    for name in ("mu", "chol", "a", "b", "n"):
        np.testing.assert_allclose(getattr(nig, name), getattr(refit, name), rtol=1e-9,
                                   atol=1e-12)


def test_draws_have_the_posterior_moments():
    x, y, group = _data(n=30, groups=1)
    nig = NormalInverseGamma(1, 4).fit(x, y, np.zeros(30, dtype=int))
    beta = nig.sample(40_000, np.random.default_rng(1))[:, 0]
    # beta is Student-t: mean mu, covariance E[sigma^2] Lambda^-1 = b / (a - 1) Lambda^-1
    covariance = nig.covariance(nig.noise_variance)[0]
    scale = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose(beta.mean(axis=0), nig.mu[0], atol=4 * scale.max() / 200)
    np.testing.assert_allclose(np.cov(beta.T), covariance, rtol=0.05, atol=0.05 * scale.max()**2)
    # mean_std is the std of x' beta with sigma^2 at its posterior mean
    probe = x[:5]
    np.testing.assert_allclose(nig.mean_std(probe, np.zeros(5, dtype=int)),
                               np.sqrt(np.einsum("nd,de,ne->n", probe, covariance, probe)))


def test_equals_laplace_torch_last_layer_laplace_with_the_noise_fixed():
    """Given sigma, NIG's beta posterior N(mu, sigma^2 Lambda^-1) is laplace-torch's last-layer
    Laplace of a Gaussian likelihood with noise sigma and prior precision lambda / sigma^2, at
    the MAP mu (the same features, the network's head set to mu)."""
    with seeded_torch(3):
        net = RewardNet(3, 2, hidden=(8,), per_arm=False).double()
        z = torch.randn(150, 5, dtype=torch.float64)
        y = torch.sin(z.sum(dim=1)) + 0.1 * torch.randn(150, dtype=torch.float64)
    sigma, lam = 0.7, 0.25
    with torch.no_grad():
        phi = net.features(z).numpy()
    nig = NormalInverseGamma(1, phi.shape[1], lambda_prior=lam)
    nig.fit(phi, y.numpy(), np.zeros(150, dtype=int))
    with torch.no_grad():
        net.head.weight.copy_(torch.as_tensor(nig.mu[0])[None])
    config = reward_flavour(DEFAULT_REWARD_FLAVOUR, hyper_method="fixed", sigma_noise=sigma,
                            prior_precision=lam / sigma ** 2)
    posterior = RewardPosterior(net, config).fit(reward_loader(z, y))
    laplace_covariance = torch.linalg.inv(posterior.la.posterior_precision.to_matrix())
    np.testing.assert_allclose(laplace_covariance.numpy(), nig.covariance(sigma ** 2)[0],
                               rtol=1e-8, atol=1e-12)
    probe = torch.randn(20, 5, dtype=torch.float64)
    mean, var = posterior.predictive(probe)
    with torch.no_grad():
        phi_probe = net.features(probe).numpy()
    np.testing.assert_allclose(mean.numpy(), phi_probe @ nig.mu[0], rtol=1e-10)
    np.testing.assert_allclose(var.numpy(), np.einsum(
        "nd,de,ne->n", phi_probe, nig.covariance(sigma ** 2)[0], phi_probe), rtol=1e-8)


@pytest.mark.parametrize("call, pattern", [
    (lambda: NormalInverseGamma(0, 3), r"groups must be an integer >= 1"),
    (lambda: NormalInverseGamma(1, 3, lambda_prior=0), r"lambda_prior must be"),
    (lambda: NormalInverseGamma(1, 3, a0=-1), r"a0 must be"),
    (lambda: NormalInverseGamma(1, 3).fit(np.ones((4, 2)), np.ones(4), np.zeros(4, int)),
     r"x must have shape \(n, 3\)"),
    (lambda: NormalInverseGamma(1, 3).fit(np.ones((4, 3)), np.ones(3), np.zeros(4, int)),
     r"one row per observation"),
    (lambda: NormalInverseGamma(2, 3).fit(np.ones((4, 3)), np.ones(4), np.full(4, 2)),
     r"group must hold integers in 0..1"),
    (lambda: NormalInverseGamma(1, 3).add([1.0, np.nan, 0.0], 1.0, 0), r"must be finite"),
    (lambda: NormalInverseGamma(1, 3).sample(0, np.random.default_rng(0)), r"n must be"),
])
def test_bad_inputs_are_named(call, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        call()

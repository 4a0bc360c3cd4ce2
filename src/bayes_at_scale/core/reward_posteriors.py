"""Laplace posteriors over the reward models of chapters 5 and 6.

Their options live with every other posterior's in :mod:`bayes_at_scale.core.posteriors`
(:class:`~bayes_at_scale.core.posteriors.RewardPosteriorConfig`,
:class:`~bayes_at_scale.core.posteriors.PreferencePosteriorConfig`), and they are built
by its :func:`~bayes_at_scale.core.posteriors.build_laplace`, so that module remains the
only one that talks to laplace-torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .checks import check_feature_inputs, check_positive_int
from .posteriors import (
    BACKENDS,
    DEFAULT_REWARD_FLAVOUR,
    HYPER_METHODS,
    PREFERENCE_PRIOR_METHODS,
    PREFERENCE_SUPPORTED,
    REWARD_FLAVOURS,
    FittedPosterior,
    PreferencePosteriorConfig,
    RewardPosteriorConfig,
    build_laplace,
)

# --- reward models (chapter 5) --------------------------------------------------------
#
# A scalar reward model ``f(z)`` of an (context, action) input ``z``, trained by mean
# squared error, gets a Gaussian-likelihood Laplace posterior.  Its last layer is an
# ``nn.Linear`` with one output: the last-layer posterior is then Bayesian linear
# regression on the network's features, and KFAC is exact (the output factor of a
# one-output layer is the scalar 1/sigma^2). The observation noise ``sigma_noise`` and
# the prior precision are chosen together by maximising the Laplace marginal likelihood
# (Immer et al., 2021; Laplace Redux's online recipe).


def reward_loader(
    inputs: torch.Tensor, rewards: torch.Tensor, batch_size: int = 4096
) -> DataLoader:
    """A data loader of (input, observed reward) pairs; rewards become a ``(n, 1)``
    column, as laplace-torch's regression likelihood expects."""
    check_feature_inputs(inputs)
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if rewards.dim() == 2 and rewards.shape[1] == 1:
        rewards = rewards[:, 0]
    if rewards.dim() != 1 or rewards.shape[0] != inputs.shape[0]:
        raise ValueError(
            "inputs (n, features) and rewards (n,) disagree: "
            f"{tuple(inputs.shape)}, {tuple(rewards.shape)}"
        )
    if inputs.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero examples")
    if not torch.isfinite(rewards.double()).all():
        raise ValueError("rewards contain NaN or infinite values")
    check_positive_int("batch_size", batch_size)
    return DataLoader(
        TensorDataset(inputs, rewards.to(inputs.dtype)[:, None]),
        batch_size=batch_size,
        shuffle=False,
    )


class _ScalarReward(FittedPosterior):
    """Predictions of a scalar latent reward ``f(z)``, shared by the regression and the
    Bradley-Terry posteriors: inputs ``(B, features)``, in chunks of
    ``predict_batch``."""

    @staticmethod
    def _check_setup(
        model, config, config_type: type, posterior: str, network: str, likelihood: str
    ) -> None:
        """The checks both reward posteriors make of their network and configuration."""
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"a {posterior} needs a torch nn.Module, got {type(model).__name__}"
            )
        if not isinstance(config, config_type):
            raise TypeError(
                f"config must be a {config_type.__name__}, got {type(config).__name__}"
            )
        if config.likelihood != likelihood:
            raise ValueError(
                f"a {network} needs the {likelihood} likelihood, "
                f"got {config.likelihood!r}"
            )

    def _check(self, x: torch.Tensor) -> None:
        self._require_fitted()
        check_feature_inputs(x, "x")

    @torch.no_grad()
    def predictive(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(B,)`` (the network's reward) and variance ``(B,)`` of the reward
        function under the linearised (GLM) posterior; the variance excludes any
        observation noise."""
        self._check(x)
        means, variances = [], []
        for chunk in x.split(self.config.predict_batch):
            f_mu, f_var = self.la(chunk, pred_type="glm")
            means.append(f_mu.reshape(-1))
            variances.append(f_var.reshape(-1))
        return torch.cat(means), torch.cat(variances).clamp(min=0)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
        """``(n_samples, B)`` reward functions evaluated at ``x`` under seeded posterior
        samples.

        Last-layer posteriors sample weights (the network is linear in them, so these
        are GLM samples too); every chunk of ``predict_batch`` inputs sees the same
        weight samples, so a sample is one function evaluated at every input.
        """
        self._check(x)
        check_positive_int("n_samples", n_samples)
        pred_type = (
            "nn"
            if self.config.subset_of_weights == "last_layer"
            else self.config.pred_type
        )
        if pred_type != "nn" and x.shape[0] > self.config.predict_batch:
            raise ValueError(
                "GLM function samples are joint over one batch: pass at most "
                f"predict_batch={self.config.predict_batch} inputs"
            )
        chunks = []
        for chunk in x.split(self.config.predict_batch):
            generator = torch.Generator().manual_seed(seed)
            chunks.append(
                self.la.predictive_samples(
                    chunk, pred_type=pred_type, n_samples=n_samples, generator=generator
                ).reshape(n_samples, -1)
            )
        return torch.cat(chunks, dim=1)


class RewardPosterior(_ScalarReward):
    """A fitted Laplace posterior over a scalar reward model (Gaussian likelihood).

    The model maps inputs ``(B, features)`` to rewards ``(B, 1)``; for a last-layer
    posterior its module ``config.last_layer_name`` must be an ``nn.Linear`` with one
    output.  Predictions are of the mean reward ``f(z)`` (no observation noise): what
    Thompson sampling draws.
    """

    def __init__(
        self,
        model: nn.Module,
        config: RewardPosteriorConfig = REWARD_FLAVOURS[DEFAULT_REWARD_FLAVOUR],
    ):
        self._check_setup(
            model,
            config,
            RewardPosteriorConfig,
            "reward posterior",
            "reward model",
            "regression",
        )
        if config.backend not in BACKENDS:
            raise ValueError(
                f"unknown curvature backend {config.backend!r}: expected one of "
                f"{tuple(BACKENDS)}"
            )
        if config.hyper_method not in HYPER_METHODS:
            raise ValueError(
                f"unknown hyper_method {config.hyper_method!r}: expected one of "
                f"{HYPER_METHODS}"
            )
        if not config.sigma_noise > 0 or not config.prior_precision > 0:
            raise ValueError(
                "sigma_noise and prior_precision must be positive, got "
                f"{config.sigma_noise!r} and {config.prior_precision!r}"
            )
        if config.subset_of_weights == "last_layer":
            layer = dict(model.named_modules()).get(config.last_layer_name)
            if not isinstance(layer, nn.Linear) or layer.out_features != 1:
                raise ValueError(
                    f"last_layer_name {config.last_layer_name!r} must name an "
                    "nn.Linear with one output in the reward model"
                )
        self._adopt(model, config)
        self.la = build_laplace(self.model, config, sigma_noise=config.sigma_noise)

    def fit(self, loader: DataLoader) -> "RewardPosterior":
        """Fit the Hessian approximation on ``loader`` of (input, reward) pairs, then
        tune the prior precision and the observation noise by the marginal
        likelihood."""
        for inputs, rewards in loader:
            check_feature_inputs(inputs)
            if rewards.shape != (inputs.shape[0], 1) or not rewards.is_floating_point():
                raise ValueError(
                    "rewards must be a float column (n, 1), got "
                    f"{rewards.dtype} of shape {tuple(rewards.shape)}"
                )
        self._fit_timed(loader, self._tune_hyperparameters)
        return self

    def _tune_hyperparameters(self) -> None:
        c = self.config
        if c.hyper_method == "marglik":
            log_prior = torch.full(
                (1,), math.log(c.prior_precision), requires_grad=True
            )
            log_sigma = torch.full((1,), math.log(c.sigma_noise), requires_grad=True)
            optimiser = torch.optim.Adam([log_prior, log_sigma], lr=c.hyper_lr)
            for _ in range(c.hyper_steps):
                optimiser.zero_grad()
                loss = -self.la.log_marginal_likelihood(
                    log_prior.exp(), log_sigma.exp()
                )
                loss.backward()
                optimiser.step()
            self.la.prior_precision = log_prior.detach().exp()
            self.la.sigma_noise = log_sigma.detach().exp()

    @property
    def sigma_noise(self) -> float:
        return float(self.la.sigma_noise)


# --- preference (Bradley-Terry) reward models (chapter 6) -----------------------------
#
# A reward model trained on pairwise preferences: the probability that response a is
# preferred to response b is sigmoid(f(a) - f(b)) (Bradley & Terry, 1952), and only
# reward *differences* are identified.  laplace-torch 0.3's ``reward_modeling``
# likelihood fits exactly this: during ``fit`` the model reads pairs ``(B, 2,
# features)`` and returns the two rewards ``(B, 2)`` as the logits of a two-class
# classification (the target is the index of the preferred response); at prediction it
# reads single responses ``(B, features)``, returns ``(B, 1)`` and is treated as a
# regression (latent reward mean and variance, no noise).
#
# Which combinations work was measured on laplace-torch 0.3, last layer, one-output head
# without bias (tests/test_posteriors.py checks the first row):
#   * curvlinops GGN, full Hessian - exact: it equals the Bradley-Terry GGN
#     sum_pairs p (1 - p) (phi_a - phi_b)(phi_a - phi_b)^T to rounding;
#   * curvlinops GGN, KFAC - runs but is wrong (relative Frobenius error ~4 on a small
#     net): KFAC treats the two responses of a pair as independent uses of a shared
#     layer and loses the difference structure;
#   * curvlinops GGN diag, and every ASDL or BackPACK structure - fail on the pair axis.
# So the one supported flavour is last-layer, full GGN, curvlinops: cheap for a small
# head. The head must have no bias: a constant added to every reward leaves every
# preference unchanged, so the likelihood has no curvature in that direction and its
# variance would be the prior's.


def preference_loader(
    pairs: torch.Tensor, preferred: torch.Tensor, batch_size: int = 4096
) -> DataLoader:
    """A data loader of (pair of responses ``(2, features)``, index of the preferred
    one) items, as laplace-torch's ``reward_modeling`` likelihood expects."""
    if not isinstance(pairs, torch.Tensor):
        raise TypeError(f"pairs must be a torch.Tensor, got {type(pairs).__name__}")
    if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
        raise ValueError(
            "pairs must be a floating-point tensor of shape (n, 2, features), got "
            f"{pairs.dtype} of shape {tuple(pairs.shape)}"
        )
    if not isinstance(preferred, torch.Tensor):
        raise TypeError(
            f"preferred must be a torch.Tensor, got {type(preferred).__name__}"
        )
    if preferred.dim() != 1 or preferred.shape[0] != pairs.shape[0]:
        raise ValueError(
            "pairs (n, 2, features) and preferred (n,) disagree: "
            f"{tuple(pairs.shape)}, {tuple(preferred.shape)}"
        )
    if pairs.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero pairs")
    if not torch.isfinite(pairs).all():
        raise ValueError("pairs contain NaN or infinite values")
    if (
        preferred.is_floating_point()
        or preferred.dtype == torch.bool
        or ((preferred != 0) & (preferred != 1)).any()
    ):
        raise ValueError(
            "preferred must hold integer indices 0 or 1 (which response of the "
            "pair is preferred)"
        )
    check_positive_int("batch_size", batch_size)
    return DataLoader(
        TensorDataset(pairs, preferred.long()), batch_size=batch_size, shuffle=False
    )


class PreferencePosterior(_ScalarReward):
    """A fitted last-layer Laplace posterior over a Bradley-Terry reward model.

    The model maps pairs ``(B, 2, features)`` to rewards ``(B, 2)`` and single responses
    ``(B, features)`` to ``(B, 1)``; its module ``config.last_layer_name`` must be an
    ``nn.Linear`` with one output and no bias.  Predictions are of the latent reward
    ``f(z)``.
    """

    def __init__(
        self,
        model: nn.Module,
        config: PreferencePosteriorConfig = PreferencePosteriorConfig(),
    ):
        self._check_setup(
            model,
            config,
            PreferencePosteriorConfig,
            "preference posterior",
            "preference reward model",
            "reward_modeling",
        )
        combination = (
            config.subset_of_weights,
            config.hessian_structure,
            config.backend,
        )
        if combination not in PREFERENCE_SUPPORTED:
            raise ValueError(
                "unsupported (subset_of_weights, hessian_structure, backend) "
                f"{combination}: laplace-torch 0.3 is exact for Bradley-Terry only "
                f"with {sorted(PREFERENCE_SUPPORTED)}"
            )
        if config.prior_method not in PREFERENCE_PRIOR_METHODS:
            raise ValueError(
                f"unknown prior_method {config.prior_method!r}: expected one of "
                f"{PREFERENCE_PRIOR_METHODS}"
            )
        if not config.prior_precision > 0:
            raise ValueError(
                f"prior_precision must be positive, got {config.prior_precision!r}"
            )
        layer = dict(model.named_modules()).get(config.last_layer_name)
        if (
            not isinstance(layer, nn.Linear)
            or layer.out_features != 1
            or layer.bias is not None
        ):
            raise ValueError(
                f"last_layer_name {config.last_layer_name!r} must name an nn.Linear "
                "with one output and no bias in the reward model (a Bradley-Terry "
                "likelihood cannot identify a constant reward offset)"
            )
        self._adopt(model, config)
        self.la = build_laplace(self.model, config)

    def fit(self, loader: DataLoader) -> "PreferencePosterior":
        """Fit the GGN on ``loader`` of (pair, preferred index) items, then tune the
        prior precision by the marginal likelihood (unless ``prior_method="fixed"``)."""
        for pairs, preferred in loader:
            if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
                raise ValueError(
                    "pairs must be a floating-point tensor of shape "
                    f"(n, 2, features), got {tuple(pairs.shape)}"
                )
            if preferred.shape != (pairs.shape[0],) or preferred.is_floating_point():
                raise ValueError(
                    "preferred must be integer indices (n,), got "
                    f"{preferred.dtype} of shape {tuple(preferred.shape)}"
                )
        self._fit_timed(loader, self._tune_prior)
        return self

    def _tune_prior(self) -> None:
        c = self.config
        if c.prior_method == "marglik":
            self.la.optimize_prior_precision(
                pred_type="glm",
                method="marglik",
                n_steps=c.prior_steps,
                lr=c.prior_lr,
                init_prior_prec=c.prior_precision,
                prior_structure="scalar",
                link_approx="probit",
                verbose=False,
                progress_bar=False,
            )

    def covariance(self) -> torch.Tensor:
        """Dense posterior covariance of the head's weights."""
        self._require_fitted()
        return self.la.posterior_covariance

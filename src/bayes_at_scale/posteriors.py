"""Laplace posteriors over a language model's next-token prediction - the only module that
talks to laplace-torch.

A posterior is described by a :class:`PosteriorConfig`; every option laplace-torch accepts for
fitting, tuning the prior and predicting is spelled out there, so a chapter names a flavour
(``"last_layer_kron"``...) and nothing is left to a library default.  The book's default follows
Laplace Redux (Daxberger et al., 2021): last layer, KFAC Hessian, prior precision by marginal
likelihood, probit link.

Curvature backends (measured on chapter 2's quick world, 60,000 training pairs, 2 cores): ASDL's
exact GGN gives the same Kronecker factors as curvlinops' (prior precision and probit predictive
agree to 5 digits) in 5.7 s instead of 14.5 s, so it is the default.  An all-weights *GGN* needs
per-example Jacobians over the whole vocabulary; the all-weights flavour therefore uses the
empirical Fisher, which needs per-example gradients only.

Chapter 5's scalar reward models get Gaussian-likelihood posteriors the same way:
:class:`RewardPosterior`, described option by option by :class:`RewardPosteriorConfig`.
Chapter 6's Bradley-Terry (pairwise preference) reward models get :class:`PreferencePosterior`,
described by :class:`PreferencePosteriorConfig`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace

import torch
from laplace import Laplace
from laplace.curvature import AsdlGGN, CurvlinopsEF, CurvlinopsGGN
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .models import NextToken


@dataclass(frozen=True)
class PosteriorConfig:
    subset_of_weights: str = "last_layer"      # "last_layer" | "all"
    hessian_structure: str = "kron"            # "diag" | "kron" | "full"
    likelihood: str = "classification"
    backend: str = "asdl_ggn"                  # key of BACKENDS: the curvature library
    prior_precision: float = 1.0               # initial value, tuned below
    prior_mean: float = 0.0
    temperature: float = 1.0
    last_layer_name: str = "lm.head"
    freeze: tuple[str, ...] = ()               # parameter-name prefixes held at the MAP
    prior_method: str = "marglik"              # marginal likelihood (no validation set needed)
    prior_structure: str = "scalar"            # one precision for all weights
    prior_steps: int = 100
    prior_lr: float = 0.1
    pred_type: str = "glm"                     # "glm" | "nn"
    link_approx: str = "probit"                # closed form; "mc" samples
    n_samples: int = 100
    fit_batch: int = 4096                      # training pairs per curvature batch
    predict_batch: int = 256                   # prompts per call: the GLM predictive builds
                                               # (batch x vocabulary x parameters) Jacobians


BACKENDS = {"asdl_ggn": AsdlGGN, "curvlinops_ggn": CurvlinopsGGN, "curvlinops_ef": CurvlinopsEF}

FLAVOURS: dict[str, PosteriorConfig] = {
    "last_layer_kron": PosteriorConfig(),
    "last_layer_diag": PosteriorConfig(hessian_structure="diag"),
    # exact, but the GGN costs (examples x vocabulary x parameters^2): small vocabularies only
    "last_layer_full": PosteriorConfig(hessian_structure="full", backend="curvlinops_ggn"),
    # every weight, the token embedding included; diagonal empirical Fisher; weight samples
    # (per-example gradients through the whole network: fastest in batches of 1024)
    "all_diag_ef": PosteriorConfig(subset_of_weights="all", hessian_structure="diag",
                                   backend="curvlinops_ef", pred_type="nn", link_approx="mc",
                                   fit_batch=1024),
    "all_diag_ef_frozen_embedding": PosteriorConfig(
        subset_of_weights="all", hessian_structure="diag", backend="curvlinops_ef",
        freeze=("lm.token", "lm.position"), pred_type="nn", link_approx="mc", fit_batch=1024),
}
DEFAULT_FLAVOUR = "last_layer_kron"


def flavour(name: str, **overrides) -> PosteriorConfig:
    """The named posterior flavour, optionally with some options overridden."""
    if name not in FLAVOURS:
        raise ValueError(f"unknown posterior flavour {name!r}: expected one of {tuple(FLAVOURS)}")
    return replace(FLAVOURS[name], **overrides)


def next_token_loader(prompts: torch.Tensor, targets: torch.Tensor, batch_size: int = 4096
                      ) -> DataLoader:
    """A data loader of (prompt, next token) pairs, as laplace-torch's ``fit`` expects."""
    if prompts.dim() != 2 or targets.dim() != 1 or prompts.shape[0] != targets.shape[0]:
        raise ValueError(f"prompts (n, T) and targets (n,) disagree: {tuple(prompts.shape)}, "
                         f"{tuple(targets.shape)}")
    if prompts.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero examples")
    return DataLoader(TensorDataset(prompts, targets), batch_size=batch_size, shuffle=False)


def count_loader(contexts: torch.Tensor, counts: torch.Tensor, batch_size: int = 4096
                 ) -> DataLoader:
    """Expand a corpus given as distinct contexts and next-token ``counts`` ``(m, V)`` into
    (prompt, next token) pairs, each repeated as often as it occurred: the data a Laplace fit
    sums its curvature over."""
    if counts.dim() != 2 or counts.shape[0] != contexts.shape[0]:
        raise ValueError(f"counts must have shape (m, V) for m = {contexts.shape[0]} contexts, "
                         f"got {tuple(counts.shape)}")
    if counts.is_floating_point() or (counts < 0).any():
        raise ValueError("counts must be non-negative integers")
    rows, tokens = torch.nonzero(counts, as_tuple=True)
    repeats = counts[rows, tokens]
    return next_token_loader(contexts[rows].repeat_interleave(repeats, dim=0),
                             tokens.repeat_interleave(repeats), batch_size=batch_size)


class _Fitted:
    """What every posterior of this module shares once laplace-torch has built ``self.la``: the
    fitted check, timed fitting, the tuned prior precision and the marginal variances."""

    config: object
    la: object
    fitted: bool = False
    fit_seconds: float | None = None

    def _adopt(self, model: nn.Module, config) -> None:
        """Keep ``config`` and an evaluation-mode copy of ``model``: laplace-torch attaches hooks
        to the network it is given, so every posterior gets its own copy."""
        self.config = config
        self.model = copy.deepcopy(model)
        self.model.eval()

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) first")

    def _fit_timed(self, loader: DataLoader, tune) -> None:
        """Fit the curvature on ``loader``, then ``tune()`` the hyperparameters; record the time."""
        start = time.perf_counter()
        self.la.fit(loader)
        tune()
        self.fit_seconds = time.perf_counter() - start  # curvature plus hyperparameters
        self.fitted = True

    @property
    def prior_precision(self) -> torch.Tensor:
        return self.la.prior_precision.detach().clone()

    def marginal_variance(self) -> torch.Tensor:
        """Posterior variances of the fitted parameters, for every Hessian structure."""
        self._require_fitted()
        structure = self.config.hessian_structure
        if structure == "kron":
            return self.la.posterior_precision.diag(exponent=-1)
        if structure == "full":
            return self.la.posterior_covariance.diagonal()
        return self.la.posterior_variance


def _check_n_samples(n_samples) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")


class Posterior(_Fitted):
    """A fitted Laplace posterior over a :class:`~bayes_at_scale.models.NextToken` model."""

    def __init__(self, model: NextToken, config: PosteriorConfig = FLAVOURS[DEFAULT_FLAVOUR]):
        if not isinstance(model, NextToken):
            raise TypeError(f"a posterior needs a NextToken model, got {type(model).__name__}")
        if config.likelihood != "classification":
            raise ValueError(f"next-token prediction needs the classification likelihood, "
                             f"got {config.likelihood!r}")
        if config.backend not in BACKENDS:
            raise ValueError(f"unknown curvature backend {config.backend!r}: expected one of "
                             f"{tuple(BACKENDS)}")
        self._adopt(model, config)
        for name, p in self.model.named_parameters():
            p.requires_grad_(not name.startswith(config.freeze))
        kwargs = {"last_layer_name": config.last_layer_name} \
            if config.subset_of_weights == "last_layer" else {}
        self.la = Laplace(
            self.model, config.likelihood, subset_of_weights=config.subset_of_weights,
            hessian_structure=config.hessian_structure, prior_precision=config.prior_precision,
            prior_mean=config.prior_mean, temperature=config.temperature,
            backend=BACKENDS[config.backend], **kwargs)

    def fit(self, loader: DataLoader) -> "Posterior":
        """Fit the Hessian approximation on ``loader`` and tune the prior precision."""
        if len(loader.dataset) == 0:
            raise ValueError("the data loader is empty: nothing to fit the posterior on")
        for prompts, targets in loader:
            self.model.lm.check_tokens(prompts)
            if targets.dim() != 1 or targets.is_floating_point():
                raise ValueError("targets must be a 1-d tensor of token ids")
            if targets.min() < 0 or targets.max() >= self.model.lm.vocab_size:
                raise ValueError(f"target ids must lie in 0..{self.model.lm.vocab_size - 1}")
        c = self.config
        self._fit_timed(loader, lambda: self.la.optimize_prior_precision(
            pred_type=c.pred_type, method=c.prior_method, n_steps=c.prior_steps, lr=c.prior_lr,
            init_prior_prec=c.prior_precision, prior_structure=c.prior_structure,
            link_approx=c.link_approx, n_samples=c.n_samples, verbose=False, progress_bar=False))
        return self

    def _check(self, x: torch.Tensor) -> None:
        self._require_fitted()
        self.model.lm.check_tokens(x)

    @torch.no_grad()
    def predictive(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior predictive ``(B, V)`` with the configured link (probit: closed form)."""
        self._check(x)
        c = self.config
        if c.link_approx == "mc":
            return self.sample(x, c.n_samples, seed=0).mean(0)
        return torch.cat([self.la(chunk, pred_type=c.pred_type, link_approx=c.link_approx)
                          for chunk in x.split(c.predict_batch)])

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
        """``(n_samples, B, V)`` categorical predictions under seeded posterior samples.

        Prompts are processed in chunks of ``predict_batch``.  For weight-space sampling
        (``pred_type="nn"``) every chunk uses the same weight samples, so the result is the
        same as one big batch; for the GLM each prompt's function-space samples are exact
        marginals.  A last-layer network is linear in its last-layer weights, so its GLM and its
        weight-space samples have the same distribution: last-layer posteriors sample weights,
        which avoids building (prompts x vocabulary x parameters) Jacobians.
        """
        self._check(x)
        _check_n_samples(n_samples)
        pred_type = "nn" if self.config.subset_of_weights == "last_layer" \
            else self.config.pred_type
        chunks = []
        generator = torch.Generator().manual_seed(seed)
        for chunk in x.split(self.config.predict_batch):
            if pred_type == "nn":
                # weight samples: reseed so that every chunk sees the same networks
                generator = torch.Generator().manual_seed(seed)
            chunks.append(self.la.predictive_samples(
                chunk, pred_type=pred_type, n_samples=n_samples, generator=generator))
        return torch.cat(chunks, dim=1)

    def covariance(self) -> torch.Tensor:
        """Dense posterior covariance (affordable for last-layer posteriors only)."""
        self._require_fitted()
        structure = self.config.hessian_structure
        if structure == "kron":
            return self.la.posterior_precision.to_matrix(exponent=-1)
        if structure == "full":
            return self.la.posterior_covariance
        return torch.diag(self.la.posterior_variance)


def fit_posterior(model: NextToken, loader: DataLoader, name: str = DEFAULT_FLAVOUR,
                  **overrides) -> Posterior:
    """Fit the named posterior flavour of ``model`` on ``loader``."""
    return Posterior(model, flavour(name, **overrides)).fit(loader)


# --- reward models (chapter 5) ------------------------------------------------------------
#
# A scalar reward model ``f(z)`` of an (context, action) input ``z``, trained by mean squared
# error, gets a Gaussian-likelihood Laplace posterior.  Its last layer is an ``nn.Linear`` with
# one output: the last-layer posterior is then Bayesian linear regression on the network's
# features, and KFAC is exact (the output factor of a one-output layer is the scalar 1/sigma^2).
# The observation noise ``sigma_noise`` and the prior precision are chosen together by maximising
# the Laplace marginal likelihood (Immer et al., 2021; Laplace Redux's online recipe).


@dataclass(frozen=True)
class RewardPosteriorConfig:
    subset_of_weights: str = "last_layer"      # "last_layer" | "all"
    hessian_structure: str = "kron"            # "diag" | "kron" | "full"
    likelihood: str = "regression"
    backend: str = "asdl_ggn"                  # key of BACKENDS: the curvature library
    prior_precision: float = 1.0               # initial value, tuned below
    prior_mean: float = 0.0
    sigma_noise: float = 1.0                   # initial observation-noise std, tuned below
    temperature: float = 1.0
    last_layer_name: str = "head"
    hyper_method: str = "marglik"              # "marglik": prior precision and sigma_noise by
                                               # Adam on the log marginal likelihood; "fixed"
    hyper_steps: int = 100
    hyper_lr: float = 0.1
    pred_type: str = "glm"                     # "glm" | "nn" (last-layer samples: weights)
    fit_batch: int = 4096                      # training pairs per curvature batch
    predict_batch: int = 4096


REWARD_FLAVOURS: dict[str, RewardPosteriorConfig] = {
    "reward_last_layer_kron": RewardPosteriorConfig(),
    "reward_last_layer_diag": RewardPosteriorConfig(hessian_structure="diag"),
    "reward_last_layer_full": RewardPosteriorConfig(hessian_structure="full",
                                                    backend="curvlinops_ggn"),
}
DEFAULT_REWARD_FLAVOUR = "reward_last_layer_kron"
HYPER_METHODS = ("marglik", "fixed")


def reward_flavour(name: str, **overrides) -> RewardPosteriorConfig:
    """The named reward-model posterior flavour, optionally with some options overridden."""
    if name not in REWARD_FLAVOURS:
        raise ValueError(f"unknown reward posterior flavour {name!r}: expected one of "
                         f"{tuple(REWARD_FLAVOURS)}")
    return replace(REWARD_FLAVOURS[name], **overrides)


def _check_reward_inputs(inputs, name: str = "inputs") -> None:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() != 2 or not inputs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of shape (n, features), got "
                         f"{inputs.dtype} of shape {tuple(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contain NaN or infinite values")


def reward_loader(inputs: torch.Tensor, rewards: torch.Tensor, batch_size: int = 4096
                  ) -> DataLoader:
    """A data loader of (input, observed reward) pairs; rewards become a ``(n, 1)`` column, as
    laplace-torch's regression likelihood expects."""
    _check_reward_inputs(inputs)
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if rewards.dim() == 2 and rewards.shape[1] == 1:
        rewards = rewards[:, 0]
    if rewards.dim() != 1 or rewards.shape[0] != inputs.shape[0]:
        raise ValueError(f"inputs (n, features) and rewards (n,) disagree: "
                         f"{tuple(inputs.shape)}, {tuple(rewards.shape)}")
    if inputs.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero examples")
    if not torch.isfinite(rewards.double()).all():
        raise ValueError("rewards contain NaN or infinite values")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return DataLoader(TensorDataset(inputs, rewards.to(inputs.dtype)[:, None]),
                      batch_size=batch_size, shuffle=False)


class _ScalarReward(_Fitted):
    """Predictions of a scalar latent reward ``f(z)``, shared by the regression and the
    Bradley-Terry posteriors: inputs ``(B, features)``, in chunks of ``predict_batch``."""

    @staticmethod
    def _check_setup(model, config, config_type: type, posterior: str, network: str,
                     likelihood: str) -> None:
        """The checks both reward posteriors make of their network and configuration."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"a {posterior} needs a torch nn.Module, got {type(model).__name__}")
        if not isinstance(config, config_type):
            raise TypeError(f"config must be a {config_type.__name__}, got "
                            f"{type(config).__name__}")
        if config.likelihood != likelihood:
            raise ValueError(f"a {network} needs the {likelihood} likelihood, "
                             f"got {config.likelihood!r}")

    def _check(self, x: torch.Tensor) -> None:
        self._require_fitted()
        _check_reward_inputs(x, "x")

    @torch.no_grad()
    def predictive(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(B,)`` (the network's reward) and variance ``(B,)`` of the reward function
        under the linearised (GLM) posterior; the variance excludes any observation noise."""
        self._check(x)
        means, variances = [], []
        for chunk in x.split(self.config.predict_batch):
            f_mu, f_var = self.la(chunk, pred_type="glm")
            means.append(f_mu.reshape(-1))
            variances.append(f_var.reshape(-1))
        return torch.cat(means), torch.cat(variances).clamp(min=0)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
        """``(n_samples, B)`` reward functions evaluated at ``x`` under seeded posterior samples.

        Last-layer posteriors sample weights (the network is linear in them, so these are GLM
        samples too); every chunk of ``predict_batch`` inputs sees the same weight samples, so a
        sample is one function evaluated at every input.
        """
        self._check(x)
        _check_n_samples(n_samples)
        pred_type = "nn" if self.config.subset_of_weights == "last_layer" \
            else self.config.pred_type
        if pred_type != "nn" and x.shape[0] > self.config.predict_batch:
            raise ValueError(f"GLM function samples are joint over one batch: pass at most "
                             f"predict_batch={self.config.predict_batch} inputs")
        chunks = []
        for chunk in x.split(self.config.predict_batch):
            generator = torch.Generator().manual_seed(seed)
            chunks.append(self.la.predictive_samples(
                chunk, pred_type=pred_type, n_samples=n_samples, generator=generator
            ).reshape(n_samples, -1))
        return torch.cat(chunks, dim=1)


class RewardPosterior(_ScalarReward):
    """A fitted Laplace posterior over a scalar reward model (Gaussian likelihood).

    The model maps inputs ``(B, features)`` to rewards ``(B, 1)``; for a last-layer posterior its
    module ``config.last_layer_name`` must be an ``nn.Linear`` with one output.  Predictions are
    of the mean reward ``f(z)`` (no observation noise): what Thompson sampling draws.
    """

    def __init__(self, model: nn.Module,
                 config: RewardPosteriorConfig = REWARD_FLAVOURS[DEFAULT_REWARD_FLAVOUR]):
        self._check_setup(model, config, RewardPosteriorConfig, "reward posterior",
                          "reward model", "regression")
        if config.backend not in BACKENDS:
            raise ValueError(f"unknown curvature backend {config.backend!r}: expected one of "
                             f"{tuple(BACKENDS)}")
        if config.hyper_method not in HYPER_METHODS:
            raise ValueError(f"unknown hyper_method {config.hyper_method!r}: expected one of "
                             f"{HYPER_METHODS}")
        if not config.sigma_noise > 0 or not config.prior_precision > 0:
            raise ValueError(f"sigma_noise and prior_precision must be positive, got "
                             f"{config.sigma_noise!r} and {config.prior_precision!r}")
        if config.subset_of_weights == "last_layer":
            layer = dict(model.named_modules()).get(config.last_layer_name)
            if not isinstance(layer, nn.Linear) or layer.out_features != 1:
                raise ValueError(f"last_layer_name {config.last_layer_name!r} must name an "
                                 f"nn.Linear with one output in the reward model")
        self._adopt(model, config)
        kwargs = {"last_layer_name": config.last_layer_name} \
            if config.subset_of_weights == "last_layer" else {}
        self.la = Laplace(
            self.model, config.likelihood, subset_of_weights=config.subset_of_weights,
            hessian_structure=config.hessian_structure, prior_precision=config.prior_precision,
            prior_mean=config.prior_mean, sigma_noise=config.sigma_noise,
            temperature=config.temperature, backend=BACKENDS[config.backend], **kwargs)

    def fit(self, loader: DataLoader) -> "RewardPosterior":
        """Fit the Hessian approximation on ``loader`` of (input, reward) pairs, then tune the
        prior precision and the observation noise by the marginal likelihood."""
        if len(loader.dataset) == 0:
            raise ValueError("the data loader is empty: nothing to fit the posterior on")
        for inputs, rewards in loader:
            _check_reward_inputs(inputs)
            if rewards.shape != (inputs.shape[0], 1) or not rewards.is_floating_point():
                raise ValueError(f"rewards must be a float column (n, 1), got "
                                 f"{rewards.dtype} of shape {tuple(rewards.shape)}")
        self._fit_timed(loader, self._tune_hyperparameters)
        return self

    def _tune_hyperparameters(self) -> None:
        c = self.config
        if c.hyper_method == "marglik":
            log_prior = torch.full((1,), math.log(c.prior_precision), requires_grad=True)
            log_sigma = torch.full((1,), math.log(c.sigma_noise), requires_grad=True)
            optimiser = torch.optim.Adam([log_prior, log_sigma], lr=c.hyper_lr)
            for _ in range(c.hyper_steps):
                optimiser.zero_grad()
                loss = -self.la.log_marginal_likelihood(log_prior.exp(), log_sigma.exp())
                loss.backward()
                optimiser.step()
            self.la.prior_precision = log_prior.detach().exp()
            self.la.sigma_noise = log_sigma.detach().exp()

    @property
    def sigma_noise(self) -> float:
        return float(self.la.sigma_noise)


def fit_reward_posterior(model: nn.Module, loader: DataLoader,
                         name: str = DEFAULT_REWARD_FLAVOUR, **overrides) -> RewardPosterior:
    """Fit the named reward-model posterior flavour of ``model`` on ``loader``."""
    return RewardPosterior(model, reward_flavour(name, **overrides)).fit(loader)


# --- preference (Bradley-Terry) reward models (chapter 6) ------------------------------------
#
# A reward model trained on pairwise preferences: the probability that response a is preferred
# to response b is sigmoid(f(a) - f(b)) (Bradley & Terry, 1952), and only reward *differences*
# are identified.  laplace-torch 0.3's ``reward_modeling`` likelihood fits exactly this: during
# ``fit`` the model reads pairs ``(B, 2, features)`` and returns the two rewards ``(B, 2)`` as the
# logits of a two-class classification (the target is the index of the preferred response); at
# prediction it reads single responses ``(B, features)``, returns ``(B, 1)`` and is treated as a
# regression (latent reward mean and variance, no noise).
#
# Which combinations work was measured on laplace-torch 0.3, last layer, one-output head without
# bias (tests/test_posteriors.py checks the first row):
#   * curvlinops GGN, full Hessian - exact: it equals the Bradley-Terry GGN
#     sum_pairs p (1 - p) (phi_a - phi_b)(phi_a - phi_b)^T to rounding;
#   * curvlinops GGN, KFAC - runs but is wrong (relative Frobenius error ~4 on a small net):
#     KFAC treats the two responses of a pair as independent uses of a shared layer and loses the
#     difference structure;
#   * curvlinops GGN diag, and every ASDL or BackPACK structure - fail on the pair axis.
# So the one supported flavour is last-layer, full GGN, curvlinops: cheap for a small head.
# The head must have no bias: a constant added to every reward leaves every preference unchanged,
# so the likelihood has no curvature in that direction and its variance would be the prior's.


@dataclass(frozen=True)
class PreferencePosteriorConfig:
    subset_of_weights: str = "last_layer"      # the only supported subset (see above)
    hessian_structure: str = "full"            # the only exact structure (see above)
    likelihood: str = "reward_modeling"        # Bradley-Terry
    backend: str = "curvlinops_ggn"            # the only backend that handles the pair axis
    prior_precision: float = 1.0               # initial value, tuned below
    prior_mean: float = 0.0
    temperature: float = 1.0
    last_layer_name: str = "head"
    prior_method: str = "marglik"              # "marglik": Laplace marginal likelihood; "fixed"
    prior_steps: int = 100
    prior_lr: float = 0.1
    fit_batch: int = 4096                      # pairs per curvature batch
    predict_batch: int = 16384                 # responses per predictive call


PREFERENCE_PRIOR_METHODS = ("marglik", "fixed")
_PREFERENCE_SUPPORTED = {("last_layer", "full", "curvlinops_ggn")}


def preference_loader(pairs: torch.Tensor, preferred: torch.Tensor, batch_size: int = 4096
                      ) -> DataLoader:
    """A data loader of (pair of responses ``(2, features)``, index of the preferred one) items,
    as laplace-torch's ``reward_modeling`` likelihood expects."""
    if not isinstance(pairs, torch.Tensor):
        raise TypeError(f"pairs must be a torch.Tensor, got {type(pairs).__name__}")
    if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
        raise ValueError(f"pairs must be a floating-point tensor of shape (n, 2, features), got "
                         f"{pairs.dtype} of shape {tuple(pairs.shape)}")
    if not isinstance(preferred, torch.Tensor):
        raise TypeError(f"preferred must be a torch.Tensor, got {type(preferred).__name__}")
    if preferred.dim() != 1 or preferred.shape[0] != pairs.shape[0]:
        raise ValueError(f"pairs (n, 2, features) and preferred (n,) disagree: "
                         f"{tuple(pairs.shape)}, {tuple(preferred.shape)}")
    if pairs.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero pairs")
    if not torch.isfinite(pairs).all():
        raise ValueError("pairs contain NaN or infinite values")
    if preferred.is_floating_point() or preferred.dtype == torch.bool \
            or ((preferred != 0) & (preferred != 1)).any():
        raise ValueError("preferred must hold integer indices 0 or 1 (which response of the "
                         "pair is preferred)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return DataLoader(TensorDataset(pairs, preferred.long()), batch_size=batch_size,
                      shuffle=False)


class PreferencePosterior(_ScalarReward):
    """A fitted last-layer Laplace posterior over a Bradley-Terry reward model.

    The model maps pairs ``(B, 2, features)`` to rewards ``(B, 2)`` and single responses
    ``(B, features)`` to ``(B, 1)``; its module ``config.last_layer_name`` must be an
    ``nn.Linear`` with one output and no bias.  Predictions are of the latent reward ``f(z)``.
    """

    def __init__(self, model: nn.Module,
                 config: PreferencePosteriorConfig = PreferencePosteriorConfig()):
        self._check_setup(model, config, PreferencePosteriorConfig, "preference posterior",
                          "preference reward model", "reward_modeling")
        combination = (config.subset_of_weights, config.hessian_structure, config.backend)
        if combination not in _PREFERENCE_SUPPORTED:
            raise ValueError(f"unsupported (subset_of_weights, hessian_structure, backend) "
                             f"{combination}: laplace-torch 0.3 is exact for Bradley-Terry only "
                             f"with {sorted(_PREFERENCE_SUPPORTED)}")
        if config.prior_method not in PREFERENCE_PRIOR_METHODS:
            raise ValueError(f"unknown prior_method {config.prior_method!r}: expected one of "
                             f"{PREFERENCE_PRIOR_METHODS}")
        if not config.prior_precision > 0:
            raise ValueError(f"prior_precision must be positive, got {config.prior_precision!r}")
        layer = dict(model.named_modules()).get(config.last_layer_name)
        if not isinstance(layer, nn.Linear) or layer.out_features != 1 or layer.bias is not None:
            raise ValueError(f"last_layer_name {config.last_layer_name!r} must name an nn.Linear "
                             f"with one output and no bias in the reward model (a Bradley-Terry "
                             f"likelihood cannot identify a constant reward offset)")
        self._adopt(model, config)
        self.la = Laplace(
            self.model, config.likelihood, subset_of_weights=config.subset_of_weights,
            hessian_structure=config.hessian_structure, prior_precision=config.prior_precision,
            prior_mean=config.prior_mean, temperature=config.temperature,
            backend=BACKENDS[config.backend], last_layer_name=config.last_layer_name)

    def fit(self, loader: DataLoader) -> "PreferencePosterior":
        """Fit the GGN on ``loader`` of (pair, preferred index) items, then tune the prior
        precision by the marginal likelihood (unless ``prior_method="fixed"``)."""
        if len(loader.dataset) == 0:
            raise ValueError("the data loader is empty: nothing to fit the posterior on")
        for pairs, preferred in loader:
            if pairs.dim() != 3 or pairs.shape[1] != 2 or not pairs.is_floating_point():
                raise ValueError(f"pairs must be a floating-point tensor of shape "
                                 f"(n, 2, features), got {tuple(pairs.shape)}")
            if preferred.shape != (pairs.shape[0],) or preferred.is_floating_point():
                raise ValueError(f"preferred must be integer indices (n,), got "
                                 f"{preferred.dtype} of shape {tuple(preferred.shape)}")
        self._fit_timed(loader, self._tune_prior)
        return self

    def _tune_prior(self) -> None:
        c = self.config
        if c.prior_method == "marglik":
            self.la.optimize_prior_precision(
                pred_type="glm", method="marglik", n_steps=c.prior_steps, lr=c.prior_lr,
                init_prior_prec=c.prior_precision, prior_structure="scalar",
                link_approx="probit", verbose=False, progress_bar=False)

    def covariance(self) -> torch.Tensor:
        """Dense posterior covariance of the head's weights."""
        self._require_fitted()
        return self.la.posterior_covariance


def fit_preference_posterior(model: nn.Module, loader: DataLoader, **overrides
                             ) -> PreferencePosterior:
    """Fit the (only) Bradley-Terry posterior flavour of ``model`` on ``loader``."""
    return PreferencePosterior(model, replace(PreferencePosteriorConfig(), **overrides)).fit(loader)

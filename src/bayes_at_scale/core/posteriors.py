"""Laplace posteriors over a language model's next-token prediction - the only module
that talks to laplace-torch.

A posterior is described by a :class:`PosteriorConfig`; every option laplace-torch
accepts for fitting, tuning the prior and predicting is spelled out there, so a chapter
names a flavour (``"last_layer_kron"``...) and nothing is left to a library default.
The book's default follows Laplace Redux (Daxberger et al., 2021): last layer, KFAC
Hessian, prior precision by marginal likelihood, probit link.

Curvature backends (measured on chapter 2's quick world, 60,000 training pairs, 2
cores): ASDL's exact GGN gives the same Kronecker factors as curvlinops' (prior
precision and probit predictive agree to 5 digits) in 5.7 s instead of 14.5 s, so it is
the default.  An all-weights *GGN* needs per-example Jacobians over the whole
vocabulary; the all-weights flavour therefore uses the empirical Fisher, which needs
per-example gradients only.

Every configuration derives from one options class, :class:`LaplaceOptions`, and every
posterior is built by one function, :func:`build_laplace`.  The reward-model posteriors
of chapters 5 and 6 (:mod:`bayes_at_scale.core.reward_posteriors`) are built the same
way; their configurations, :class:`RewardPosteriorConfig` and
:class:`PreferencePosteriorConfig`, live here beside the others.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import torch
from laplace import Laplace
from laplace.curvature import AsdlGGN, CurvlinopsEF, CurvlinopsGGN
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .checks import check_positive_int
from .models import NextToken


@dataclass(frozen=True)
class LaplaceOptions:
    """The options every posterior of the book passes to laplace-torch's ``Laplace``
    factory (:func:`build_laplace`), each spelled out; the subclasses add how
    hyperparameters are tuned and how predictions are made."""

    subset_of_weights: str = "last_layer"  # "last_layer" | "all" | "subnetwork"
    hessian_structure: str = "kron"  # "diag" | "kron" | "full"
    # "classification" | "regression" | "reward_modeling"
    likelihood: str = "classification"
    backend: str = "asdl_ggn"  # key of BACKENDS: the curvature library
    # initial value, tuned by the subclass's method
    prior_precision: float = 1.0
    prior_mean: float = 0.0
    temperature: float = 1.0
    last_layer_name: str = "lm.head"
    fit_batch: int = 4096  # training examples per curvature batch
    predict_batch: int = 256  # inputs per predictive call


@dataclass(frozen=True)
class PosteriorConfig(LaplaceOptions):
    """A next-token posterior (:class:`Posterior`): the prior precision is tuned by
    ``optimize_prior_precision`` with these options."""

    freeze: tuple[str, ...] = ()  # parameter-name prefixes held at the MAP
    # marginal likelihood (no validation set needed)
    prior_method: str = "marglik"
    prior_structure: str = "scalar"  # one precision for all weights
    prior_steps: int = 100
    prior_lr: float = 0.1
    pred_type: str = "glm"  # "glm" | "nn"
    link_approx: str = "probit"  # closed form; "mc" samples
    n_samples: int = 100
    # prompts per call: the GLM predictive builds (batch x vocabulary x parameters)
    # Jacobians
    predict_batch: int = 256


BACKENDS = {
    "asdl_ggn": AsdlGGN,
    "curvlinops_ggn": CurvlinopsGGN,
    "curvlinops_ef": CurvlinopsEF,
}


def build_laplace(model: nn.Module, config: LaplaceOptions, **extra):
    """laplace-torch's ``Laplace`` object for ``model`` with every option of ``config``
    passed explicitly: the package's one call of the ``Laplace`` factory.  ``extra``
    carries options only some likelihoods take (``sigma_noise`` for regression)."""
    if not isinstance(config, LaplaceOptions):
        raise TypeError(f"config must be a LaplaceOptions, got {type(config).__name__}")
    if config.backend not in BACKENDS:
        raise ValueError(
            f"unknown curvature backend {config.backend!r}: expected one of "
            f"{tuple(BACKENDS)}"
        )
    if config.subset_of_weights == "last_layer":
        extra = {"last_layer_name": config.last_layer_name, **extra}
    return Laplace(
        model,
        config.likelihood,
        subset_of_weights=config.subset_of_weights,
        hessian_structure=config.hessian_structure,
        prior_precision=config.prior_precision,
        prior_mean=config.prior_mean,
        temperature=config.temperature,
        backend=BACKENDS[config.backend],
        **extra,
    )


FLAVOURS: dict[str, PosteriorConfig] = {
    "last_layer_kron": PosteriorConfig(),
    "last_layer_diag": PosteriorConfig(hessian_structure="diag"),
    # exact, but the GGN costs (examples x vocabulary x parameters^2): small
    # vocabularies only
    "last_layer_full": PosteriorConfig(
        hessian_structure="full", backend="curvlinops_ggn"
    ),
    # every weight, the token embedding included; diagonal empirical Fisher; weight
    # samples (per-example gradients through the whole network: fastest in batches of
    # 1024)
    "all_diag_ef": PosteriorConfig(
        subset_of_weights="all",
        hessian_structure="diag",
        backend="curvlinops_ef",
        pred_type="nn",
        link_approx="mc",
        fit_batch=1024,
    ),
    "all_diag_ef_frozen_embedding": PosteriorConfig(
        subset_of_weights="all",
        hessian_structure="diag",
        backend="curvlinops_ef",
        freeze=("lm.token", "lm.position"),
        pred_type="nn",
        link_approx="mc",
        fit_batch=1024,
    ),
}
DEFAULT_FLAVOUR = "last_layer_kron"


def _named(table: dict, kind: str, name: str, overrides: dict):
    """The entry ``name`` of a table of configurations, with ``overrides`` replaced: the
    one lookup behind :func:`flavour`, :func:`reward_flavour` and
    :func:`answer_flavour`."""
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}: expected one of {tuple(table)}")
    return replace(table[name], **overrides)


def flavour(name: str, **overrides) -> PosteriorConfig:
    """The named posterior flavour, optionally with some options overridden."""
    return _named(FLAVOURS, "posterior flavour", name, overrides)


def next_token_loader(
    prompts: torch.Tensor, targets: torch.Tensor, batch_size: int = 4096
) -> DataLoader:
    """A data loader of (prompt, next token) pairs, as laplace-torch's ``fit``
    expects."""
    if prompts.dim() != 2 or targets.dim() != 1 or prompts.shape[0] != targets.shape[0]:
        raise ValueError(
            f"prompts (n, T) and targets (n,) disagree: {tuple(prompts.shape)}, "
            f"{tuple(targets.shape)}"
        )
    if prompts.shape[0] == 0:
        raise ValueError("cannot build a data loader from zero examples")
    return DataLoader(
        TensorDataset(prompts, targets), batch_size=batch_size, shuffle=False
    )


def count_loader(
    contexts: torch.Tensor, counts: torch.Tensor, batch_size: int = 4096
) -> DataLoader:
    """Expand a corpus given as distinct contexts and next-token ``counts`` ``(m, V)``
    into (prompt, next token) pairs, each repeated as often as it occurred: the data a
    Laplace fit sums its curvature over."""
    if counts.dim() != 2 or counts.shape[0] != contexts.shape[0]:
        raise ValueError(
            f"counts must have shape (m, V) for m = {contexts.shape[0]} contexts, "
            f"got {tuple(counts.shape)}"
        )
    if counts.is_floating_point() or (counts < 0).any():
        raise ValueError("counts must be non-negative integers")
    rows, tokens = torch.nonzero(counts, as_tuple=True)
    repeats = counts[rows, tokens]
    return next_token_loader(
        contexts[rows].repeat_interleave(repeats, dim=0),
        tokens.repeat_interleave(repeats),
        batch_size=batch_size,
    )


class FittedPosterior:
    """What every posterior of this module shares once laplace-torch has built
    ``self.la``: the fitted check, timed fitting, the tuned prior precision and the
    marginal variances."""

    config: object
    la: object
    fitted: bool = False
    fit_seconds: float | None = None

    def _adopt(self, model: nn.Module, config) -> None:
        """Keep ``config`` and an evaluation-mode copy of ``model``: laplace-torch
        attaches hooks to the network it is given, so every posterior gets its own
        copy."""
        self.config = config
        self.model = copy.deepcopy(model)
        self.model.eval()

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) first")

    def _fit_timed(self, loader: DataLoader, tune) -> None:
        """Fit the curvature on ``loader``, then ``tune()`` the hyperparameters; record
        the time."""
        if len(loader.dataset) == 0:
            raise ValueError(
                "the data loader is empty: nothing to fit the posterior on"
            )
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


class Posterior(FittedPosterior):
    """A fitted Laplace posterior over a :class:`~bayes_at_scale.core.models.NextToken`
    model."""

    def __init__(
        self, model: NextToken, config: PosteriorConfig = FLAVOURS[DEFAULT_FLAVOUR]
    ):
        if not isinstance(model, NextToken):
            raise TypeError(
                f"a posterior needs a NextToken model, got {type(model).__name__}"
            )
        if config.likelihood != "classification":
            raise ValueError(
                "next-token prediction needs the classification likelihood, "
                f"got {config.likelihood!r}"
            )
        if not isinstance(config, PosteriorConfig):
            raise TypeError(
                f"config must be a PosteriorConfig, got {type(config).__name__}"
            )
        if config.backend not in BACKENDS:
            raise ValueError(
                f"unknown curvature backend {config.backend!r}: expected one of "
                f"{tuple(BACKENDS)}"
            )
        self._adopt(model, config)
        for name, p in self.model.named_parameters():
            p.requires_grad_(not name.startswith(config.freeze))
        self.la = build_laplace(self.model, config)

    def fit(self, loader: DataLoader) -> "Posterior":
        """Fit the Hessian approximation on ``loader`` and tune the prior precision."""
        for prompts, targets in loader:
            self.model.lm.check_tokens(prompts)
            if targets.dim() != 1 or targets.is_floating_point():
                raise ValueError("targets must be a 1-d tensor of token ids")
            if targets.min() < 0 or targets.max() >= self.model.lm.vocab_size:
                raise ValueError(
                    f"target ids must lie in 0..{self.model.lm.vocab_size - 1}"
                )
        c = self.config
        self._fit_timed(
            loader,
            lambda: self.la.optimize_prior_precision(
                pred_type=c.pred_type,
                method=c.prior_method,
                n_steps=c.prior_steps,
                lr=c.prior_lr,
                init_prior_prec=c.prior_precision,
                prior_structure=c.prior_structure,
                link_approx=c.link_approx,
                n_samples=c.n_samples,
                verbose=False,
                progress_bar=False,
            ),
        )
        return self

    def _check(self, x: torch.Tensor) -> None:
        self._require_fitted()
        self.model.lm.check_tokens(x)

    @torch.no_grad()
    def predictive(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior predictive ``(B, V)`` with the configured link (probit: closed
        form)."""
        self._check(x)
        c = self.config
        if c.link_approx == "mc":
            return self.sample(x, c.n_samples, seed=0).mean(0)
        return torch.cat(
            [
                self.la(chunk, pred_type=c.pred_type, link_approx=c.link_approx)
                for chunk in x.split(c.predict_batch)
            ]
        )

    @torch.no_grad()
    def sample(self, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
        """``(n_samples, B, V)`` categorical predictions under seeded posterior samples.

        Prompts are processed in chunks of ``predict_batch``.  For weight-space sampling
        (``pred_type="nn"``) every chunk uses the same weight samples, so the result is
        the same as one big batch; for the GLM each prompt's function-space samples are
        exact marginals.  A last-layer network is linear in its last-layer weights, so
        its GLM and its weight-space samples have the same distribution: last-layer
        posteriors sample weights, which avoids building (prompts x vocabulary x
        parameters) Jacobians.
        """
        self._check(x)
        check_positive_int("n_samples", n_samples)
        pred_type = (
            "nn"
            if self.config.subset_of_weights == "last_layer"
            else self.config.pred_type
        )
        chunks = []
        generator = torch.Generator().manual_seed(seed)
        for chunk in x.split(self.config.predict_batch):
            if pred_type == "nn":
                # weight samples: reseed so that every chunk sees the same networks
                generator = torch.Generator().manual_seed(seed)
            chunks.append(
                self.la.predictive_samples(
                    chunk, pred_type=pred_type, n_samples=n_samples, generator=generator
                )
            )
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


def fit_posterior(
    model: NextToken, loader: DataLoader, name: str = DEFAULT_FLAVOUR, **overrides
) -> Posterior:
    """Fit the named posterior flavour of ``model`` on ``loader``."""
    return Posterior(model, flavour(name, **overrides)).fit(loader)


# --- reward-model posteriors (chapters 5 and 6): their options ------------------------


@dataclass(frozen=True)
class RewardPosteriorConfig(LaplaceOptions):
    """A scalar reward model's posterior (Gaussian likelihood), chapter 5."""

    likelihood: str = "regression"
    last_layer_name: str = "head"
    # initial observation-noise std, tuned below
    sigma_noise: float = 1.0
    # "marglik": prior precision and sigma_noise by Adam on the log marginal likelihood;
    # "fixed"
    hyper_method: str = "marglik"
    hyper_steps: int = 100
    hyper_lr: float = 0.1
    # "glm" | "nn" (last-layer samples: weights)
    pred_type: str = "glm"
    predict_batch: int = 4096


REWARD_FLAVOURS: dict[str, RewardPosteriorConfig] = {
    "reward_last_layer_kron": RewardPosteriorConfig(),
}
DEFAULT_REWARD_FLAVOUR = "reward_last_layer_kron"
HYPER_METHODS = ("marglik", "fixed")


def reward_flavour(name: str, **overrides) -> RewardPosteriorConfig:
    """The named reward-model posterior flavour, optionally with some options
    overridden."""
    return _named(REWARD_FLAVOURS, "reward posterior flavour", name, overrides)


@dataclass(frozen=True)
class PreferencePosteriorConfig(LaplaceOptions):
    """A Bradley-Terry reward model's posterior, chapter 6 (see
    :mod:`bayes_at_scale.core.reward_posteriors` for why only this combination is
    supported)."""

    subset_of_weights: str = "last_layer"  # the only supported subset
    hessian_structure: str = "full"  # the only exact structure
    likelihood: str = "reward_modeling"  # Bradley-Terry
    # the only backend that handles the pair axis
    backend: str = "curvlinops_ggn"
    last_layer_name: str = "head"
    # "marglik": Laplace marginal likelihood; "fixed"
    prior_method: str = "marglik"
    prior_steps: int = 100
    prior_lr: float = 0.1
    predict_batch: int = 16384  # responses per predictive call


PREFERENCE_PRIOR_METHODS = ("marglik", "fixed")
PREFERENCE_SUPPORTED = {("last_layer", "full", "curvlinops_ggn")}


# --- round 2: answer-restricted posteriors at their own mode (chapters 2-4) -----------


@dataclass(frozen=True)
class AnswerPosteriorConfig(LaplaceOptions):
    """A round-2 posterior over a language model's *answer*
    (:mod:`bayes_at_scale.core.answer_posteriors`): the likelihood and the predictive
    are restricted to the tokens that can answer a query and renormalised; the curvature
    is the GGN; the network is retrained at the prior precision the Laplace uses, so the
    posterior is centred at its own mode.

    laplace-torch sees only the view's trainable parameters (``subset_of_weights="all"``
    over an otherwise frozen network): the answer rows of the output layer, and with
    ``trainable="embedding_and_head"`` also the embeddings of one prompt position's
    tokens, written as a one-hot ``nn.Linear`` so that KFAC covers them (their Kronecker
    factor is the diagonal of token counts - rarity in the parameters).
    """

    subset_of_weights: str = "all"  # the view's trainable parameters
    hessian_structure: str = "kron"
    # exact GGN factors (one backward per answer)
    backend: str = "asdl_ggn"
    trainable: str = "head"  # "head" | "embedding_and_head"
    prior_method: str = "marglik"
    prior_structure: str = "layerwise"  # one precision per weight tensor
    prior_steps: int = 100
    prior_lr: float = 0.1
    rounds: int = 1  # tune the prior, retrain at it; repeated
    map_steps: int = 200  # L-BFGS iterations of each retraining
    map_tolerance: float = 1e-6  # per-token gradient norm L-BFGS stops at
    # the stated tolerance: a gradient norm (per token) below it counts as at the mode
    centred_tolerance: float = 5e-3
    n_samples: int = 200  # GLM logit samples of the predictive
    fit_batch: int = 4096
    predict_batch: int = 512


ANSWER_FLAVOURS: dict[str, AnswerPosteriorConfig] = {
    "last_layer": AnswerPosteriorConfig(),
    "embedding_and_head": AnswerPosteriorConfig(trainable="embedding_and_head"),
}
TRAINABLE = ("head", "embedding_and_head")


def answer_flavour(name: str, **overrides) -> AnswerPosteriorConfig:
    """The named round-2 posterior flavour, optionally with some options overridden."""
    return _named(ANSWER_FLAVOURS, "answer-posterior flavour", name, overrides)

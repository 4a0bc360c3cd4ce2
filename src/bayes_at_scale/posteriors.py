"""Laplace posteriors over a language model's next-token prediction - the only module that
talks to laplace-torch.

A posterior is described by a :class:`PosteriorConfig`; every option laplace-torch accepts for
fitting, tuning the prior and predicting is spelled out there, so a chapter names a flavour
(``"last_layer_kron"``...) and nothing is left to a library default.  The book's default follows
Laplace Redux (Daxberger et al., 2021): last layer, KFAC Hessian, prior precision by marginal
likelihood, probit link.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from laplace import Laplace
from torch.utils.data import DataLoader, TensorDataset

from .models import NextToken


@dataclass(frozen=True)
class PosteriorConfig:
    subset_of_weights: str = "last_layer"      # "last_layer" | "all"
    hessian_structure: str = "kron"            # "diag" | "kron" | "full"
    likelihood: str = "classification"
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
    predict_batch: int = 256                   # prompts per call: the GLM predictive builds
                                               # (batch x vocabulary x parameters) Jacobians


FLAVOURS: dict[str, PosteriorConfig] = {
    "last_layer_kron": PosteriorConfig(),
    "last_layer_diag": PosteriorConfig(hessian_structure="diag"),
    "last_layer_full": PosteriorConfig(hessian_structure="full"),
    "all_diag_frozen_embedding": PosteriorConfig(
        subset_of_weights="all", hessian_structure="diag",
        freeze=("lm.token", "lm.position"), pred_type="nn", link_approx="mc"),
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


class Posterior:
    """A fitted Laplace posterior over a :class:`~bayes_at_scale.models.NextToken` model."""

    def __init__(self, model: NextToken, config: PosteriorConfig = FLAVOURS[DEFAULT_FLAVOUR]):
        if not isinstance(model, NextToken):
            raise TypeError(f"a posterior needs a NextToken model, got {type(model).__name__}")
        if config.likelihood != "classification":
            raise ValueError(f"next-token prediction needs the classification likelihood, "
                             f"got {config.likelihood!r}")
        self.config = config
        self.model = copy.deepcopy(model)  # laplace-torch attaches hooks: one copy per posterior
        for name, p in self.model.named_parameters():
            p.requires_grad_(not name.startswith(config.freeze))
        self.model.eval()
        kwargs = {"last_layer_name": config.last_layer_name} \
            if config.subset_of_weights == "last_layer" else {}
        self.la = Laplace(
            self.model, config.likelihood, subset_of_weights=config.subset_of_weights,
            hessian_structure=config.hessian_structure, prior_precision=config.prior_precision,
            prior_mean=config.prior_mean, temperature=config.temperature, **kwargs)
        self.fitted = False

    def fit(self, loader: DataLoader) -> "Posterior":
        """Fit the Hessian approximation on ``loader`` and tune the prior precision."""
        if len(loader.dataset) == 0:
            raise ValueError("the data loader is empty: nothing to fit the posterior on")
        self.la.fit(loader)
        c = self.config
        self.la.optimize_prior_precision(
            pred_type=c.pred_type, method=c.prior_method, n_steps=c.prior_steps, lr=c.prior_lr,
            init_prior_prec=c.prior_precision, prior_structure=c.prior_structure,
            link_approx=c.link_approx, n_samples=c.n_samples, verbose=False, progress_bar=False)
        self.fitted = True
        return self

    def _check(self, x: torch.Tensor) -> None:
        if not self.fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) first")
        self.model.lm.check_tokens(x)

    @property
    def prior_precision(self) -> torch.Tensor:
        return self.la.prior_precision.detach().clone()

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
        marginals.
        """
        self._check(x)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        chunks = []
        generator = torch.Generator().manual_seed(seed)
        for chunk in x.split(self.config.predict_batch):
            if self.config.pred_type == "nn":
                # weight samples: reseed so that every chunk sees the same networks
                generator = torch.Generator().manual_seed(seed)
            chunks.append(self.la.predictive_samples(
                chunk, pred_type=self.config.pred_type, n_samples=n_samples, generator=generator))
        return torch.cat(chunks, dim=1)

    def marginal_variance(self) -> torch.Tensor:
        """Posterior variances of the fitted parameters, for every Hessian structure."""
        if not self.fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) first")
        structure = self.config.hessian_structure
        if structure == "kron":
            return self.la.posterior_precision.diag(exponent=-1)
        if structure == "full":
            return self.la.posterior_covariance.diagonal()
        return self.la.posterior_variance

    def covariance(self) -> torch.Tensor:
        """Dense posterior covariance (affordable for last-layer posteriors only)."""
        if not self.fitted:
            raise RuntimeError("the posterior is not fitted: call fit(loader) first")
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

"""Round 2's posteriors: a Laplace posterior over a language model's *answer*,
restricted, centred at its own mode, with GGN curvature - what the referee of round 1
asked for.

Round 1's categorical predictive was the probit link over every logit of the vocabulary.
The softmax is flat along "shift every logit together", that direction keeps the prior's
variance, and the probit then flattens every prediction - a temperature rather than a
posterior.  Here:

* **The answer view.**  :class:`AnswerView` reads a trained :class:`~.models.CausalLM`
  and returns only the logits of the tokens that can answer a query; its likelihood is
  the categorical over those tokens, renormalised.  The network stays frozen; what the
  posterior covers is made explicit as the view's trainable parameters: the answer rows
  of the output layer and, for the embedding-inclusive flavour, the embeddings of one
  prompt position's tokens written as a one-hot ``nn.Linear`` (so that KFAC covers them:
  their input factor is the diagonal of the tokens' counts, which is where rarity
  lives).
* **At its own mode.**  :func:`fit_answer_posterior` tunes the prior precisions by
  marginal likelihood, retrains the view's parameters at exactly that prior (full-batch
  L-BFGS on the count-weighted corpus), and repeats; the final curvature is taken at the
  retrained mode.  The gradient norm of the regularised loss there is kept
  (:attr:`AnswerPosterior.gradient_norm`).
* **The GLM predictive by Monte Carlo.**  Logit samples from the linearised posterior
  (exact Jacobians from the curvature backend, laplace-torch's functional variance and
  its normal sampler), softmax over the answer tokens, averaged: the predictive; their
  spread gives the mutual information.

Every laplace-torch option comes from :class:`~.posteriors.AnswerPosteriorConfig`, and
the ``Laplace`` object from :func:`~.posteriors.build_laplace`.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from scipy import special
from torch import nn
from torch.nn.utils import parameters_to_vector

from .checks import check_instance, check_int, check_positive_int
from .models import CausalLM
from .posteriors import (
    TRAINABLE,
    AnswerPosteriorConfig,
    answer_flavour,
    build_laplace,
    count_loader,
)
from .metrics import mutual_information
from .settings import derive_seed


def _token_ids(tokens, name: str, vocab_size: int) -> torch.Tensor:
    array = np.asarray(tokens)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be integer token ids, got {array.dtype}")
    ids = torch.as_tensor(array, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{name} must lie in 0..{vocab_size - 1}")
    if ids.unique().numel() != ids.numel():
        raise ValueError(f"{name} contains a token twice")
    return ids


class AnswerView(nn.Module):
    """A trained language model's next-token logits restricted to ``answer_tokens``.

    The model is copied and frozen.  Trainable are ``head`` (the answer rows of the
    output layer, bias included) and, if ``embedded_tokens`` are given, ``embedding``:
    the embeddings of those tokens as a bias-free ``nn.Linear`` over their one-hot code,
    used at prompt position ``position`` (every prompt must carry one of them there).
    """

    def __init__(
        self,
        lm: CausalLM,
        answer_tokens,
        embedded_tokens=None,
        position: int | None = None,
    ):
        super().__init__()
        check_instance("lm", lm, CausalLM)
        self.lm = copy.deepcopy(lm).eval()
        for p in self.lm.parameters():
            p.requires_grad_(False)
        vocab, width = self.lm.vocab_size, self.lm.head.in_features
        answers = _token_ids(answer_tokens, "answer_tokens", vocab)
        if answers.numel() < 2:
            raise ValueError("answer_tokens must name at least two tokens")
        self.register_buffer("answers", answers)
        self.head = nn.Linear(width, answers.numel())
        with torch.no_grad():
            self.head.weight.copy_(self.lm.head.weight[answers])
            self.head.bias.copy_(self.lm.head.bias[answers])
        self.embedding = None
        self.position = None
        if embedded_tokens is not None:
            embedded = _token_ids(embedded_tokens, "embedded_tokens", vocab)
            self.position = check_int("position", position, 0)
            if self.position >= self.lm.max_len:
                raise ValueError(
                    f"position {position} lies beyond the model's context "
                    f"({self.lm.max_len})"
                )
            self.embedding = nn.Linear(embedded.numel(), width, bias=False)
            with torch.no_grad():
                self.embedding.weight.copy_(self.lm.token.weight[embedded].T)
            lookup = torch.full((vocab,), -1, dtype=torch.long)
            lookup[embedded] = torch.arange(embedded.numel())
            self.register_buffer("lookup", lookup)
        elif position is not None:
            raise ValueError("position is given but no embedded_tokens")

    @property
    def n_answers(self) -> int:
        return self.answers.numel()

    def check_prompts(self, prompts: torch.Tensor) -> None:
        """Raise unless ``prompts`` are valid token ids the view can read."""
        self.lm.check_tokens(prompts)
        if self.embedding is not None:
            if prompts.shape[1] <= self.position:
                raise ValueError(
                    f"prompts of length {prompts.shape[1]} have no position "
                    f"{self.position}"
                )
            if (self.lookup[prompts[:, self.position]] < 0).any():
                raise ValueError(
                    "every prompt must carry an embedded token at position "
                    f"{self.position}"
                )

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        h = self.lm.token(prompts)
        if self.embedding is not None:
            k = self.position
            code = nn.functional.one_hot(
                self.lookup[prompts[:, k]], self.embedding.in_features
            ).to(h.dtype)
            h = torch.cat(
                [h[:, :k], self.embedding(code)[:, None], h[:, k + 1 :]], dim=1
            )
        return self.head(self.lm.encode(h)[:, -1, :])


def answer_counts(counts: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Next-token ``counts`` ``(m, V)`` restricted to the answer tokens ``(m, A)``;
    raises if any count falls on another token (the restricted likelihood could not
    explain it)."""
    if not isinstance(counts, torch.Tensor):
        raise TypeError(f"counts must be a torch.Tensor, got {type(counts).__name__}")
    if counts.dim() != 2 or counts.is_floating_point() or (counts < 0).any():
        raise ValueError(
            "counts must be a (contexts, vocabulary) tensor of non-negative "
            "integer counts"
        )
    if answers.max() >= counts.shape[1]:
        raise ValueError(
            f"answer tokens exceed the counts' vocabulary ({counts.shape[1]})"
        )
    restricted = counts[:, answers]
    if restricted.sum() != counts.sum():
        raise ValueError(
            "some counts fall on tokens that cannot answer: the answer-restricted "
            "likelihood needs every target to be an answer token"
        )
    if restricted.sum() == 0:
        raise ValueError("the counts are all zero: nothing to fit the posterior on")
    return restricted


def regularised_loss(
    view: AnswerView,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    prior_precision: torch.Tensor,
) -> torch.Tensor:
    """The negative log joint the Laplace approximates, per corpus token: the
    count-weighted answer NLL plus ``1/2 theta' diag(prior_precision) theta`` over the
    trainable parameters, divided by the number of tokens."""
    theta = parameters_to_vector([p for p in view.parameters() if p.requires_grad])
    logp = torch.log_softmax(view(contexts), dim=-1)
    w = counts.to(logp.dtype)
    return (-(w * logp).sum() + 0.5 * (prior_precision * theta**2).sum()) / w.sum()


def retrain_at_prior(
    view: AnswerView,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    prior_precision: torch.Tensor,
    steps: int,
    tolerance: float,
) -> float:
    """Move the view's trainable parameters to the mode of the posterior with
    ``prior_precision`` (full-batch L-BFGS); return the final per-token gradient
    norm."""
    params = [p for p in view.parameters() if p.requires_grad]
    optimiser = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=steps,
        history_size=50,
        tolerance_grad=tolerance,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimiser.zero_grad()
        loss = regularised_loss(view, contexts, counts, prior_precision)
        loss.backward()
        return loss

    view.train(False)
    optimiser.step(closure)
    return gradient_norm(view, contexts, counts, prior_precision)


def _gradient(view: AnswerView, contexts, counts, prior_precision) -> torch.Tensor:
    params = [p for p in view.parameters() if p.requires_grad]
    grads = torch.autograd.grad(
        regularised_loss(view, contexts, counts, prior_precision), params
    )
    return parameters_to_vector(grads).detach().double()


def gradient_norm(view: AnswerView, contexts, counts, prior_precision) -> float:
    """Euclidean norm of the gradient of :func:`regularised_loss` (per token)."""
    return float(_gradient(view, contexts, counts, prior_precision).norm())


def newton_decrement(la, view: AnswerView, contexts, counts) -> float:
    """How far the posterior's mean lies from the mode of its own objective, in the
    posterior's own units: ``sqrt(g' P^-1 g)`` for the gradient ``g`` of the (summed)
    negative log joint and the posterior precision ``P`` - the Mahalanobis length of the
    Newton step to the mode of the quadratic model (0 at the mode; below 1: within a
    posterior standard deviation)."""
    prior = la.prior_precision_diag.detach()
    g = (_gradient(view, contexts, counts, prior) * counts.sum()).to(prior.dtype)
    structure = la.posterior_precision
    # KFAC: decomposed Kronecker factors
    if hasattr(structure, "inv_square_form"):
        square = structure.inv_square_form(g[None, None, :]).squeeze()
    elif structure.dim() == 1:  # diagonal
        square = (g**2 / structure).sum()
    else:  # full
        square = g @ torch.linalg.solve(structure, g)
    return float(torch.sqrt(square.double()))


class AnswerPosterior:
    """A fitted round-2 posterior (:func:`fit_answer_posterior`): restricted predictive
    by Monte Carlo over the GLM, the mode's own prediction, and what fitting it took."""

    def __init__(
        self,
        view: AnswerView,
        la,
        config: AnswerPosteriorConfig,
        gradient_norm: float,
        prior_history: list,
        fit_seconds: float,
        newton_decrement: float = float("nan"),
    ):
        self.view, self.la, self.config = view, la, config
        self.gradient_norm = gradient_norm
        self.newton_decrement = newton_decrement  # distance to the mode, posterior stds
        self.prior_history = prior_history
        self.fit_seconds = fit_seconds

    @property
    def prior_precision(self) -> np.ndarray:
        return self.la.prior_precision.detach().numpy().copy()

    @property
    def n_params(self) -> int:
        return int(self.la.n_params)

    @torch.no_grad()
    def map_logits(self, prompts: torch.Tensor) -> np.ndarray:
        """The mode's answer logits ``(B, A)``."""
        self.view.check_prompts(prompts)
        return (
            torch.cat([self.view(c) for c in prompts.split(self.config.predict_batch)])
            .double()
            .numpy()
        )

    def map_probs(self, prompts: torch.Tensor) -> np.ndarray:
        """The mode's answer distribution ``(B, A)`` ("MAP" in round 2)."""
        return special.softmax(self.map_logits(prompts), axis=1)

    def logit_samples(
        self, prompts: torch.Tensor, n_samples: int | None = None, seed: int = 0
    ) -> torch.Tensor:
        """``(S, B, A)`` answer-logit samples of the linearised (GLM) posterior.

        The mean and covariance of each prompt's logits are laplace-torch's (the
        backend's exact Jacobians and the posterior's functional variance); the
        standard-normal draws are independent across prompts (laplace-torch's
        ``normal_samples`` reuses one draw for a whole batch, which correlates the Monte
        Carlo noise of different prompts).
        """
        self.view.check_prompts(prompts)
        n_samples = check_positive_int(
            "n_samples", self.config.n_samples if n_samples is None else n_samples
        )
        generator = torch.Generator().manual_seed(derive_seed(seed, 2))
        out = []
        for chunk in prompts.split(self.config.predict_batch):
            jacobians, f_mu = self.la.backend.jacobians(chunk)
            scale = torch.linalg.cholesky(
                self.la.functional_variance(jacobians).detach()
            )
            noise = torch.randn(
                (n_samples, *f_mu.shape), generator=generator, dtype=f_mu.dtype
            )
            out.append(f_mu.detach() + torch.einsum("bij,sbj->sbi", scale, noise))
        return torch.cat(out, dim=1)

    def samples(
        self, prompts: torch.Tensor, n_samples: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """``(S, B, A)`` answer distributions, one per GLM logit sample (softmax over
        the answer tokens: restricted and renormalised)."""
        return torch.softmax(
            self.logit_samples(prompts, n_samples, seed).double(), dim=-1
        ).numpy()

    def predictive(
        self, prompts: torch.Tensor, n_samples: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """The restricted Monte Carlo predictive ``(B, A)`` ("LA" in round 2)."""
        return self.samples(prompts, n_samples, seed).mean(axis=0)


def fit_answer_posterior(
    lm: CausalLM,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    answer_tokens,
    flavour: str | AnswerPosteriorConfig = "last_layer",
    embedded_tokens=None,
    position: int | None = None,
) -> AnswerPosterior:
    """Fit a round-2 posterior over ``lm``'s answers to a corpus of distinct
    ``contexts`` ``(m, T)`` with next-token ``counts`` ``(m, V)`` (every count on an
    answer token).

    ``flavour`` names an entry of :data:`~.posteriors.ANSWER_FLAVOURS` or is a config;
    the embedding-inclusive flavour needs ``embedded_tokens`` and their prompt
    ``position``.  Each of ``config.rounds`` rounds fits the GGN curvature at the
    current parameters, tunes the prior precisions by marginal likelihood and retrains
    at them; a last fit takes the curvature at the final mode, the prior held.
    """
    config = answer_flavour(flavour) if isinstance(flavour, str) else flavour
    check_instance("flavour", config, AnswerPosteriorConfig)
    if config.trainable not in TRAINABLE:
        raise ValueError(
            f"unknown trainable set {config.trainable!r}: expected one of {TRAINABLE}"
        )
    check_positive_int("rounds", config.rounds)
    embeds = config.trainable == "embedding_and_head"
    if embeds and embedded_tokens is None:
        raise ValueError(
            "the embedding-inclusive flavour needs embedded_tokens and position"
        )
    if not embeds and embedded_tokens is not None:
        raise ValueError(
            f"flavour {config.trainable!r} embeds no tokens: drop embedded_tokens"
        )
    view = AnswerView(lm, answer_tokens, embedded_tokens, position)
    view.check_prompts(contexts)
    if counts.shape[0] != contexts.shape[0]:
        raise ValueError(
            f"counts have {counts.shape[0]} rows for {contexts.shape[0]} contexts"
        )
    targets = answer_counts(counts, view.answers)
    loader = count_loader(contexts, targets, batch_size=config.fit_batch)
    start = time.perf_counter()
    history, prior = [], None
    for _ in range(config.rounds):
        la = build_laplace(view, config, enable_backprop=False)
        if prior is not None:
            la.prior_precision = prior
        la.fit(loader)
        la.optimize_prior_precision(
            pred_type="glm",
            method=config.prior_method,
            n_steps=config.prior_steps,
            lr=config.prior_lr,
            init_prior_prec=la.prior_precision,
            prior_structure=config.prior_structure,
            verbose=False,
            progress_bar=False,
        )
        prior = la.prior_precision.detach().clone()
        history.append(prior.numpy().copy())
        retrain_at_prior(
            view,
            contexts,
            targets,
            la.prior_precision_diag.detach(),
            config.map_steps,
            config.map_tolerance,
        )
    la = build_laplace(view, config, enable_backprop=False)
    la.prior_precision = prior
    # the curvature at the mode; the prior it was trained at
    la.fit(loader)
    norm = gradient_norm(view, contexts, targets, la.prior_precision_diag.detach())
    seconds = time.perf_counter() - start
    return AnswerPosterior(
        view,
        la,
        config,
        norm,
        history,
        seconds,
        newton_decrement(la, view, contexts, targets),
    )


def answer_probabilities(
    posterior, prompts, n_samples: int, seed: int, chunk: int = 500
) -> tuple[dict, np.ndarray]:
    """MAP's and LA's answer distributions after ``prompts``, and LA's mutual
    information.

    LA is the mean of ``n_samples`` sampled answer distributions of the GLM posterior
    and the mutual information comes from the same samples; they are drawn ``chunk``
    prompts at a time (the samples of 2,000 prompts would take a hundred megabytes),
    chunk ``i`` seeded with ``derive_seed(seed, i)``.
    """
    check_positive_int("n_samples", n_samples)
    check_positive_int("chunk", chunk)
    la, mi = [], []
    for i, start in enumerate(range(0, len(prompts), chunk)):
        samples = posterior.samples(
            prompts[start : start + chunk], n_samples, seed=derive_seed(seed, i)
        )
        la.append(samples.mean(axis=0))
        mi.append(mutual_information(samples))
    return {
        "MAP": posterior.map_probs(prompts),
        "LA": np.concatenate(la),
    }, np.concatenate(mi)

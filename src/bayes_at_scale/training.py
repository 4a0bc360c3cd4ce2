"""MAP training of a language model: count-weighted next-token cross-entropy plus an L2 penalty.

A corpus arrives as distinct contexts and, for each, the counts of the tokens that followed it
(see :mod:`bayes_at_scale.corpora`).  The objective is the average negative log-likelihood of
every next token in the corpus, plus ``weight_decay / 2 * ||theta||^2`` - a Gaussian prior, so
the optimum is a MAP estimate.  Written as a sum over the corpus's N tokens, the same objective
has prior precision ``weight_decay * N`` (:func:`prior_precision`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import metrics
from .models import CausalLM
from .settings import in_notebook, seed_everything


def _check_weights(contexts: torch.Tensor, counts: torch.Tensor, vocab_size: int,
                   whole: bool) -> None:
    """Counts (or, with ``whole=False``, non-negative weights) of next tokens per context."""
    if not isinstance(contexts, torch.Tensor) or not isinstance(counts, torch.Tensor):
        raise TypeError("contexts and counts must be torch tensors")
    expected = (contexts.shape[0], vocab_size)
    if tuple(counts.shape) != expected:
        raise ValueError(f"counts must have shape {expected}, got {tuple(counts.shape)}")
    if counts.is_floating_point():
        if torch.isnan(counts).any():
            raise ValueError("counts contain NaN")
        if whole and (counts != counts.round()).any():
            raise ValueError("counts must be whole numbers")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    if counts.sum() == 0:
        raise ValueError("the corpus is empty: all counts are zero")


def check_next_token_counts(contexts: torch.Tensor, counts: torch.Tensor, vocab_size: int) -> None:
    """Raise a ``ValueError`` naming the problem unless (contexts, counts) form a valid corpus."""
    if not isinstance(contexts, torch.Tensor) or not isinstance(counts, torch.Tensor):
        raise TypeError("contexts and counts must be torch tensors")
    if contexts.dim() != 2 or contexts.shape[1] < 1:
        raise ValueError(f"contexts must have shape (m, T) with T >= 1, got {tuple(contexts.shape)}")
    if contexts.shape[0] == 0:
        raise ValueError("the corpus is empty: no contexts to train on")
    _check_weights(contexts, counts, vocab_size, whole=True)
    if contexts.min() < 0 or contexts.max() >= vocab_size:
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")


def corpus_nll(model: nn.Module, contexts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean NLL per corpus token: ``-sum counts * log p(next | context) / sum counts``.

    ``counts`` may be whole counts or non-negative weights (e.g. normalised counts).
    """
    _check_weights(contexts, counts, model.vocab_size, whole=False)
    logp = torch.log_softmax(model(contexts)[:, -1, :], dim=-1)
    w = counts.to(logp.dtype)
    return -(w * logp).sum() / w.sum()


def train_map(model: nn.Module, contexts: torch.Tensor, counts: torch.Tensor, *, steps: int,
              lr: float = 1e-2, weight_decay: float = 1e-5, batch_size: int | None = None,
              clip_norm: float | None = 1.0, seed: int = 0, progress: bool | None = None
              ) -> list[float]:
    """Train ``model`` to the MAP of the count-weighted corpus; return the loss per step.

    ``batch_size=None`` takes full-batch steps (the exact corpus gradient); otherwise each step
    samples ``batch_size`` contexts with probability proportional to their total counts and
    uses each one's normalised next-token counts - an unbiased estimate of the same gradient.
    Adam's coupled ``weight_decay`` is the gradient of the L2 penalty, so the fixed point is the
    MAP estimate.  Adam's step size follows a cosine schedule to zero, and gradients are clipped
    to norm ``clip_norm`` (None: no clipping), which keeps early steps from overshooting.
    """
    check_next_token_counts(contexts, counts, model.vocab_size)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    totals = counts.sum(dim=1).double()
    targets = counts.double() / totals.clamp(min=1)[:, None]
    show = (not in_notebook()) if progress is None else progress
    losses = []
    model.train()
    bar = tqdm(range(steps), desc="MAP training", disable=not show, leave=False)
    for _ in bar:
        if batch_size is None:
            loss = corpus_nll(model, contexts, counts)
        else:
            idx = torch.multinomial(totals, batch_size, replacement=True, generator=generator)
            loss = corpus_nll(model, contexts[idx], targets[idx])
        optimiser.zero_grad()
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    model.eval()
    return losses


def prior_precision(weight_decay: float, n_tokens: int) -> float:
    """Prior precision of the sum-over-tokens objective that ``train_map`` optimises as a mean."""
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise ValueError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    return float(weight_decay) * int(n_tokens)


@torch.no_grad()
def excess_loss(model: nn.Module, contexts: torch.Tensor, counts: torch.Tensor) -> float:
    """Training NLL per token above the corpus's empirical conditional entropy - the least any
    model can reach on it; near 0 means the model has fitted the corpus's frequencies."""
    check_next_token_counts(contexts, counts, model.vocab_size)
    return corpus_nll(model, contexts, counts).item() - metrics.count_entropy(counts.numpy())


def train_language_model(contexts: torch.Tensor, counts: torch.Tensor, vocab_size: int, *,
                         model: dict, training: dict, seed: int) -> CausalLM:
    """A :class:`~bayes_at_scale.models.CausalLM` reading contexts of the corpus's length, built
    from ``seed`` and trained to the MAP with :func:`train_map`: what every chapter's recipe
    (``model`` and ``training`` options) does."""
    seed_everything(seed)
    lm = CausalLM(vocab_size, max_len=contexts.shape[1], **model)
    train_map(lm, contexts, counts, seed=seed, **training)
    return lm

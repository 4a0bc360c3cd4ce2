"""Training: the book's one training recipe for language models, and its reward models.

A corpus arrives as distinct contexts and, for each, the counts of the tokens that
followed it (see :mod:`bayes_at_scale.worlds.fragments`).  :func:`train_map` minimises
the average negative log-likelihood of every next token in the corpus plus
``weight_decay / 2 * ||theta||^2`` - a Gaussian prior, so the optimum is a MAP estimate
- and :func:`train_language_model` builds and trains a network as a :class:`Recipe`
says.  Chapter 6's Bradley-Terry reward model (:func:`train_reward_model`) and its
policy-gradient loss (:func:`reinforce_loss`) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import metrics
from .checks import (
    check_count_weights,
    check_finite_array,
    check_hidden,
    check_instance,
    check_int,
    check_next_token_counts,
    check_number,
    check_positive_int,
    check_preference_pairs,
)
from .models import CausalLM, PreferenceNet
from .settings import derive_seed, seeded_torch, show_progress


def corpus_nll(
    model: nn.Module, contexts: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Mean NLL per corpus token: ``-sum counts * log p(next | context) / sum counts``.

    ``counts`` may be whole counts or non-negative weights (e.g. normalised counts).
    """
    check_count_weights(contexts, counts, model.vocab_size, whole=False)
    logp = torch.log_softmax(model(contexts)[:, -1, :], dim=-1)
    w = counts.to(logp.dtype)
    return -(w * logp).sum() / w.sum()


def train_map(
    model: nn.Module,
    contexts: torch.Tensor,
    counts: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    weight_decay: float = 1e-5,
    batch_size: int | None = None,
    clip_norm: float | None = 1.0,
    seed: int = 0,
    progress: bool | None = None,
) -> list[float]:
    """Train ``model`` to the MAP of the count-weighted corpus; return the loss per
    step.

    ``batch_size=None`` takes full-batch steps (the exact corpus gradient); otherwise
    each step samples ``batch_size`` contexts with probability proportional to their
    total counts and uses each one's normalised next-token counts - an unbiased estimate
    of the same gradient. Adam's coupled ``weight_decay`` is the gradient of the L2
    penalty, so the fixed point is the MAP estimate.  Adam's step size follows a cosine
    schedule to zero, and gradients are clipped to norm ``clip_norm`` (None: no
    clipping), which keeps early steps from overshooting.
    """
    check_next_token_counts(contexts, counts, model.vocab_size)
    check_positive_int("steps", steps)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive integer or None, got {batch_size!r}"
        )
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    totals = counts.sum(dim=1).double()
    targets = counts.double() / totals.clamp(min=1)[:, None]
    show = show_progress() if progress is None else progress
    losses = []
    model.train()
    bar = tqdm(range(steps), desc="MAP training", disable=not show, leave=False)
    for _ in bar:
        if batch_size is None:
            loss = corpus_nll(model, contexts, counts)
        else:
            idx = torch.multinomial(
                totals, batch_size, replacement=True, generator=generator
            )
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


@torch.no_grad()
def excess_loss(
    model: nn.Module, contexts: torch.Tensor, counts: torch.Tensor
) -> float:
    """Training NLL per token above the corpus's empirical conditional entropy - the
    least any model can reach on it; near 0 means the model has fitted the corpus's
    frequencies."""
    check_next_token_counts(contexts, counts, model.vocab_size)
    return corpus_nll(model, contexts, counts).item() - metrics.count_entropy(
        counts.numpy()
    )


@dataclass(frozen=True)
class Recipe:
    """What one experiment builds at one scale: its world's options (``corpus``), the
    network's (``model``: :class:`~bayes_at_scale.core.models.CausalLM` keywords) and
    the optimiser's (``training``: :func:`train_map` keywords).  Experiments take a
    recipe as an argument; each chapter picks its module's recipe for the scale, and
    tests build tiny ones."""

    corpus: dict
    model: dict
    training: dict


def train_language_model(
    contexts: torch.Tensor,
    counts: torch.Tensor,
    vocab_size: int,
    recipe: Recipe,
    seed: int,
) -> CausalLM:
    """A :class:`~bayes_at_scale.core.models.CausalLM` reading contexts of the corpus's
    length, initialised from ``seed`` and trained to the MAP with :func:`train_map`, as
    ``recipe``'s ``model`` and ``training`` options say.  The caller's global random
    state is left alone."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    with seeded_torch(seed):
        lm = CausalLM(vocab_size, max_len=contexts.shape[1], **recipe.model)
    train_map(lm, contexts, counts, seed=seed, **recipe.training)
    return lm


# --- reward models and policy gradients (chapter 6) -----------------------------------


@dataclass(frozen=True)
class RewardModelConfig:
    """The proxy reward model and its training: full-batch Adam on the Bradley-Terry
    negative log-likelihood with coupled weight decay (a Gaussian prior: the result is a
    MAP).

    The weight decay was chosen by the held-out Bradley-Terry NLL of the reward model
    alone (4000 training pairs, 4000 held-out; the gold reward's own NLL is 0.37): 1e-4
    overfits (held-out NLL 1.11 after 400 steps, rewards spread 3x wider than the
    gold's), 1e-3 too (0.62); 1e-2 reaches 0.40 with 91% held-out ranking accuracy and
    has converged by 200 steps.
    """

    hidden: tuple[int, ...] = (64, 64)
    steps: int = 200
    lr: float = 1e-2
    weight_decay: float = 1e-2

    def __post_init__(self):
        check_hidden(self.hidden, kinds=(tuple,))
        check_int("steps", self.steps)
        check_number("lr", self.lr, 0.0)
        check_number("weight_decay", self.weight_decay, 0.0, low_open=False)


def train_reward_model(
    pairs: torch.Tensor,
    preferred: torch.Tensor,
    config: RewardModelConfig = RewardModelConfig(),
    seed: int = 0,
) -> PreferenceNet:
    """A :class:`~bayes_at_scale.core.models.PreferenceNet` trained on preference
    ``pairs`` ``(n, 2, dim)`` with the index of the preferred response ``(n,)``; the
    same seed gives the same network."""
    check_preference_pairs(pairs, preferred)
    check_instance("config", config, RewardModelConfig)
    seed = check_int("seed", seed, 0)
    with seeded_torch(derive_seed(seed, 31)):
        model = PreferenceNet(pairs.shape[2], config.hidden)
    x, y = pairs.to(torch.get_default_dtype()), preferred.long()
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    model.train()
    for _ in range(config.steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    return model


@torch.no_grad()
def pairwise_accuracy(model: PreferenceNet, pairs: torch.Tensor, gold_pairs) -> float:
    """Share of preference ``pairs`` ``(n, 2, dim)`` whose better response by
    ``gold_pairs`` ``(n, 2)`` (a known true reward of each response) the model scores
    higher; ties in gold are left out."""
    g = check_finite_array(gold_pairs, "gold_pairs", 2)
    check_preference_pairs(pairs, torch.zeros(g.shape[0]))
    if g.shape[1] != 2:
        raise ValueError(f"gold_pairs must have shape (n, 2), got {g.shape}")
    r = model(pairs.to(torch.get_default_dtype())).double().numpy()
    keep = g[:, 0] != g[:, 1]
    return float(np.mean((r[keep, 1] > r[keep, 0]) == (g[keep, 1] > g[keep, 0])))


def reinforce_loss(
    logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor
) -> torch.Tensor:
    """REINFORCE surrogate with a batch-mean baseline: ``-mean((r - mean r) log
    pi(a))``.

    ``logits`` ``(B, A)`` of the policy, ``actions`` ``(B,)`` sampled from it,
    ``rewards`` ``(B,)``; minimising it follows the policy gradient of the expected
    reward.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(
            "logits must be a tensor of shape (B, actions >= 2), got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    b = logits.shape[0]
    actions = torch.as_tensor(actions)
    rewards = torch.as_tensor(rewards, dtype=logits.dtype)
    if actions.shape != (b,) or actions.is_floating_point():
        raise ValueError(
            f"actions must be integer indices of shape ({b},), got "
            f"{tuple(actions.shape)}"
        )
    if actions.min() < 0 or actions.max() >= logits.shape[1]:
        raise ValueError(f"actions must lie in 0..{logits.shape[1] - 1}")
    if rewards.shape != (b,) or not torch.isfinite(rewards).all():
        raise ValueError(
            f"rewards must be finite, of shape ({b},), got {tuple(rewards.shape)}"
        )
    logp = torch.log_softmax(logits, dim=-1)[torch.arange(b), actions.long()]
    advantage = (rewards - rewards.mean()).detach()
    return -(advantage * logp).mean()

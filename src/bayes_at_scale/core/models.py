"""The networks of the book: a small causal transformer language model, and the reward
models.

``CausalLM`` maps a batch of token sequences ``(B, T)`` to next-token logits ``(B, T,
V)``. Its last layer is a plain ``nn.Linear`` named ``head``, so a last-layer Laplace
posterior (chapter 2) sits on the read-out, as laplace-torch expects.  ``NextToken``
wraps it to return only the logits after the final position, ``(B, V)``: the classifier
view a posterior needs. ``RewardNet`` (chapter 5's bandits) and ``PreferenceNet``
(chapter 6's Bradley-Terry reward model) are small MLPs whose last layer, ``head``, is
where their last-layer posteriors sit.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_hidden, check_int


class CausalLM(nn.Module):
    """Token + position embeddings, pre-norm transformer blocks with a causal mask,
    linear head."""

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int = 32,
        n_heads: int = 2,
        n_layers: int = 1,
        d_ff: int | None = None,
    ):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, 2)
        self.max_len = check_int("max_len", max_len)
        check_int("d_model", d_model)
        check_int("n_heads", n_heads)
        check_int("n_layers", n_layers)
        if d_model % n_heads:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by n_heads ({n_heads})"
            )
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=d_ff or 4 * d_model,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.register_buffer(
            "causal_mask",
            nn.Transformer.generate_square_subsequent_mask(max_len),
            persistent=False,
        )

    def check_tokens(self, tokens: torch.Tensor, values: bool = True) -> None:
        """Raise unless ``tokens`` is an integer tensor ``(batch, time)`` of valid ids.

        ``values=False`` skips the id range, the one data-dependent check, which cannot
        run under ``torch.func.vmap`` (laplace-torch's per-example gradients).
        """
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(
                f"tokens must be a torch.Tensor, got {type(tokens).__name__}"
            )
        if tokens.dim() != 2:
            raise ValueError(
                f"tokens must have shape (batch, time), got {tuple(tokens.shape)}"
            )
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be integer ids, got {tokens.dtype}")
        if tokens.shape[1] == 0 or tokens.shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {tokens.shape[1]} not in 1..{self.max_len}"
            )
        if (
            values
            and tokens.numel()
            and (tokens.min() < 0 or tokens.max() >= self.vocab_size)
        ):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, T, d_model)`` that the head reads."""
        self.check_tokens(tokens)
        return self._hidden(tokens)

    def _hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        # unchecked: laplace-torch differentiates through it under torch.func.vmap,
        # where the data-dependent id check cannot run (callers check their inputs
        # first)
        return self.encode(self.token(tokens))

    def encode(self, embedded: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, T, d_model)`` from token embeddings ``(B, T, d_model)``:
        position embeddings, the blocks, the final norm.  A view that embeds some tokens
        itself (round 2's embedding-inclusive posterior) enters here."""
        t = embedded.shape[1]
        h = embedded + self.position.weight[:t]
        h = self.blocks(h, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.norm(h)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


class NextToken(nn.Module):
    """View of a language model as a classifier of the token that follows a prompt.

    The head is applied to the final position's features only, so the input of the last
    layer has shape ``(B, d_model)`` - what a last-layer Laplace posterior expects.
    """

    def __init__(self, lm: CausalLM):
        super().__init__()
        if not isinstance(lm, CausalLM):
            raise TypeError(f"NextToken wraps a CausalLM, got {type(lm).__name__}")
        self.lm = lm

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # under torch.func transforms (laplace-torch's per-example gradients) the
        # data-dependent id check cannot run; those data were checked where they entered
        # ``Posterior.fit``
        transformed = (
            torch._C._functorch.is_functorch_wrapped_tensor(tokens)
            if isinstance(tokens, torch.Tensor)
            else False
        )
        self.lm.check_tokens(tokens, values=not transformed)
        return self.lm.head(self.lm._hidden(tokens)[:, -1, :])


@torch.no_grad()
def next_token_probs(
    lm: CausalLM, prompts: torch.Tensor, batch_size: int = 8192
) -> torch.Tensor:
    """The model's next-token distribution after each prompt, ``(B, V)``."""
    lm.check_tokens(prompts)
    lm.eval()
    out = [
        torch.softmax(lm(chunk)[:, -1, :], dim=-1)
        for chunk in prompts.split(batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, lm.vocab_size)


# --- reward models (chapters 5 and 6) -------------------------------------------------


class RewardNet(nn.Module):
    """An MLP reward model ``f(z)`` of an input ``z = [context, arm part]``; returns
    ``(B, 1)``.

    The body (ReLU layers of sizes ``hidden``) reads the context alone when ``per_arm``
    (arms with identities: one linear head per arm, as in Riquelme et al.'s multi-output
    networks), or the whole input otherwise (one shared head scores any candidate).  The
    last layer ``head`` is one ``nn.Linear`` with one output and no bias, over the
    body's features with a constant 1 appended (per arm: the outer product of those
    features with the one-hot arm code) - so a last-layer Laplace posterior over
    ``head`` is Bayesian linear regression on the features, per arm, and its KFAC
    Hessian is exact.
    """

    def __init__(
        self,
        context_dim: int,
        arm_dim: int,
        hidden: tuple[int, ...] = (50,),
        per_arm: bool = True,
    ):
        super().__init__()
        self.context_dim = check_int("context_dim", context_dim)
        self.arm_dim = check_int("arm_dim", arm_dim)
        sizes = check_hidden(hidden)
        self.per_arm = bool(per_arm)
        layers, width = [], context_dim if self.per_arm else context_dim + arm_dim
        for h in sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.n_features = (width + 1) * (arm_dim if self.per_arm else 1)
        self.head = nn.Linear(self.n_features, 1, bias=False)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """What the head reads: ``(B, n_features)``."""
        x = z[:, : self.context_dim] if self.per_arm else z
        phi = self.body(x)
        phi = torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)
        if self.per_arm:
            arm = z[:, self.context_dim :]
            phi = (arm[:, :, None] * phi[:, None, :]).flatten(1)
        return phi

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(z))


class PreferenceNet(nn.Module):
    """A Bradley-Terry reward model: a ReLU MLP ``body`` and a one-output linear
    ``head`` without bias (rewards are identified only up to a constant).

    It reads pairs ``(B, 2, dim)`` and returns both rewards ``(B, 2)`` - the two
    "logits" of which response is preferred - or single responses ``(B, dim)`` and
    returns ``(B, 1)``: the two forms laplace-torch's ``reward_modeling`` likelihood
    uses for fitting and prediction.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.dim = check_int("dim", dim)
        layers, width = [], self.dim
        for h in check_hidden(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 3:
            return self.head(self.body(z)).squeeze(-1)
        return self.head(self.body(z))

    @torch.no_grad()
    def reward(self, responses: torch.Tensor) -> torch.Tensor:
        """The MAP reward ``(B,)`` of responses ``(B, dim)``."""
        return self(responses)[:, 0]

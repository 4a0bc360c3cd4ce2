"""A small causal transformer language model.

``CausalLM`` maps a batch of token sequences ``(B, T)`` to next-token logits ``(B, T, V)``.
Its last layer is a plain ``nn.Linear`` named ``head``, so a last-layer Laplace posterior
(chapter 2) sits on the read-out, as laplace-torch expects.  ``NextToken`` wraps it to return
only the logits after the final position, ``(B, V)``: the classifier view a posterior needs.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_dim(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class CausalLM(nn.Module):
    """Token + position embeddings, pre-norm transformer blocks with a causal mask, linear head."""

    def __init__(self, vocab_size: int, max_len: int, d_model: int = 32, n_heads: int = 2,
                 n_layers: int = 1, d_ff: int | None = None):
        super().__init__()
        self.vocab_size = _check_dim("vocab_size", vocab_size, 2)
        self.max_len = _check_dim("max_len", max_len)
        _check_dim("d_model", d_model)
        _check_dim("n_heads", n_heads)
        _check_dim("n_layers", n_layers)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=d_ff or 4 * d_model, dropout=0.0,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(max_len), persistent=False
        )

    def check_tokens(self, tokens: torch.Tensor, values: bool = True) -> None:
        """Raise unless ``tokens`` is an integer tensor ``(batch, time)`` of valid ids.

        ``values=False`` skips the id range, the one data-dependent check, which cannot run
        under ``torch.func.vmap`` (laplace-torch's per-example gradients).
        """
        if not isinstance(tokens, torch.Tensor):
            raise TypeError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape (batch, time), got {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be integer ids, got {tokens.dtype}")
        if tokens.shape[1] == 0 or tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} not in 1..{self.max_len}")
        if values and tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, T, d_model)`` that the head reads."""
        self.check_tokens(tokens)
        return self._hidden(tokens)

    def _hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        # unchecked: laplace-torch differentiates through it under torch.func.vmap, where the
        # data-dependent id check cannot run (callers check their inputs first)
        t = tokens.shape[1]
        h = self.token(tokens) + self.position.weight[:t]
        h = self.blocks(h, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.norm(h)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


class NextToken(nn.Module):
    """View of a language model as a classifier of the token that follows a prompt.

    The head is applied to the final position's features only, so the input of the last layer
    has shape ``(B, d_model)`` - what a last-layer Laplace posterior expects.
    """

    def __init__(self, lm: CausalLM):
        super().__init__()
        if not isinstance(lm, CausalLM):
            raise TypeError(f"NextToken wraps a CausalLM, got {type(lm).__name__}")
        self.lm = lm

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # under torch.func transforms (laplace-torch's per-example gradients) the data-dependent
        # id check cannot run; those data were checked where they entered ``Posterior.fit``
        transformed = torch._C._functorch.is_functorch_wrapped_tensor(tokens) \
            if isinstance(tokens, torch.Tensor) else False
        self.lm.check_tokens(tokens, values=not transformed)
        return self.lm.head(self.lm._hidden(tokens)[:, -1, :])


@torch.no_grad()
def next_token_probs(lm: CausalLM, prompts: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """The model's next-token distribution after each prompt, ``(B, V)``."""
    lm.check_tokens(prompts)
    lm.eval()
    out = [torch.softmax(lm(chunk)[:, -1, :], dim=-1) for chunk in prompts.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, lm.vocab_size)

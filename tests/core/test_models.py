"""Tests of bayes_at_scale.core.models: causality, the NextToken view, next-token probabilities."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bayes_at_scale.core import models
from bayes_at_scale.core.models import CausalLM, NextToken

V, T = 7, 5


@pytest.fixture
def lm(float64, make_lm) -> CausalLM:
    return make_lm(V, T, seed=0, n_layers=2)


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, V, (6, T), generator=torch.Generator().manual_seed(1))


def test_logits_shape_and_dtype(lm, tokens):
    out = lm(tokens)
    assert out.shape == (6, T, V)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()
    assert lm.features(tokens).shape == (6, T, 16)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("changed", range(T))
def test_causal_later_tokens_do_not_affect_earlier_positions(lm, tokens, mode, changed):
    getattr(lm, mode)()
    other = tokens.clone()
    other[:, changed] = (other[:, changed] + 1) % V
    a, b = lm(tokens), lm(other)
    torch.testing.assert_close(a[:, :changed], b[:, :changed], rtol=0, atol=1e-12)
    # ... while the changed position itself does see the change
    assert (a[:, changed] - b[:, changed]).abs().max() > 1e-6


@pytest.mark.parametrize("length", range(1, T + 1))
def test_prefix_gives_the_same_logits(lm, tokens, length):
    lm.eval()
    torch.testing.assert_close(lm(tokens[:, :length]), lm(tokens)[:, :length], rtol=0, atol=1e-12)


def test_int32_tokens_equal_int64(lm, tokens):
    torch.testing.assert_close(lm(tokens.int()), lm(tokens))


def test_head_is_the_last_linear_layer(lm):
    """Last-layer Laplace (posteriors.py) needs the read-out to be an nn.Linear named 'head'."""
    assert isinstance(lm.head, nn.Linear)
    assert (lm.head.in_features, lm.head.out_features) == (16, V)
    names = [name for name, _ in lm.named_modules()]
    assert "head" in names
    assert list(lm.named_parameters())[-1][0] == "head.bias"


# --- NextToken ----------------------------------------------------------------------------


def test_next_token_is_last_position(lm, tokens):
    nt = NextToken(lm)
    for mode in ("train", "eval"):
        getattr(lm, mode)()
        torch.testing.assert_close(nt(tokens), lm(tokens)[:, -1, :], rtol=0, atol=0)
    assert nt(tokens).shape == (6, V)
    # the wrapper shares, not copies, the language model's parameters
    assert {id(p) for p in nt.parameters()} == {id(p) for p in lm.parameters()}


def test_next_token_on_shorter_prompts(lm, tokens):
    nt = NextToken(lm)
    torch.testing.assert_close(nt(tokens[:, :2]), lm(tokens)[:, 1, :], rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", ["linear", "next_token", None])
def test_next_token_needs_a_causal_lm(lm, bad):
    bad = {"linear": nn.Linear(3, 3), "next_token": NextToken(lm), None: None}[bad]
    with pytest.raises(TypeError, match=r"NextToken wraps a CausalLM, got "):
        NextToken(bad)


# --- next_token_probs ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 4, 8192])
def test_next_token_probs(lm, tokens, batch_size):
    p = models.next_token_probs(lm, tokens, batch_size=batch_size)
    assert p.shape == (6, V)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(6, dtype=p.dtype))
    assert (p > 0).all()
    lm.eval()
    with torch.no_grad():
        expected = torch.softmax(lm(tokens)[:, -1, :], dim=-1)
    torch.testing.assert_close(p, expected, rtol=0, atol=1e-12)
    assert not p.requires_grad
    assert not lm.training


def test_next_token_probs_of_no_prompts(lm):
    p = models.next_token_probs(lm, torch.zeros(0, 3, dtype=torch.long))
    assert p.shape == (0, V)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[[0, 1, 2]], ((0, 1, 2),)])
def test_tokens_must_be_a_tensor(lm, bad):
    with pytest.raises(TypeError, match=r"tokens must be a torch.Tensor, got (list|tuple)"):
        lm(bad)
    with pytest.raises(TypeError, match=r"tokens must be a torch.Tensor"):
        NextToken(lm)(bad)


@pytest.mark.parametrize("bad, error, pattern", [
    (torch.zeros(2, 3), TypeError, r"tokens must be integer ids, got torch.float"),
    (torch.zeros(2, 3, dtype=torch.bool), TypeError, r"tokens must be integer ids"),
    (torch.zeros(3, dtype=torch.long), ValueError,
     r"tokens must have shape \(batch, time\), got \(3,\)"),
    (torch.zeros(2, 3, 1, dtype=torch.long), ValueError,
     r"tokens must have shape \(batch, time\), got \(2, 3, 1\)"),
    (torch.zeros(2, T + 1, dtype=torch.long), ValueError,
     rf"sequence length {T + 1} not in 1..{T}"),
    (torch.zeros(2, 0, dtype=torch.long), ValueError, rf"sequence length 0 not in 1..{T}"),
    (torch.tensor([[0, 1, V]]), ValueError, rf"token ids must lie in 0..{V - 1}"),
    (torch.tensor([[0, -1, 2]]), ValueError, rf"token ids must lie in 0..{V - 1}"),
])
@pytest.mark.parametrize("call", ["forward", "features", "next_token", "next_token_probs"])
def test_bad_tokens(lm, bad, error, pattern, call):
    run = {
        "forward": lambda x: lm(x),
        "features": lambda x: lm.features(x),
        "next_token": lambda x: NextToken(lm)(x),
        "next_token_probs": lambda x: models.next_token_probs(lm, x),
    }[call]
    with pytest.raises(error, match=pattern):
        run(bad)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(vocab_size=1), r"vocab_size must be an integer >= 2, got 1"),
    (dict(vocab_size=7.0), r"vocab_size must be an integer >= 2, got 7.0"),
    (dict(max_len=0), r"max_len must be an integer >= 1, got 0"),
    (dict(d_model=0), r"d_model must be an integer >= 1"),
    (dict(n_heads=True), r"n_heads must be an integer >= 1, got True"),
    (dict(n_layers=0), r"n_layers must be an integer >= 1"),
    (dict(d_model=10, n_heads=4), r"d_model \(10\) must be divisible by n_heads \(4\)"),
])
def test_bad_model_dimensions(kwargs, pattern):
    args = dict(vocab_size=V, max_len=T) | kwargs
    with pytest.raises(ValueError, match=pattern):
        CausalLM(**args)


# --- the reward models (chapters 5 and 6) ---------------------------------------------------


def test_reward_net_has_one_head_per_arm():
    """Per arm, the head reads the body's features (and a constant 1) in that arm's block only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = models.RewardNet(context_dim=3, arm_dim=4, hidden=(8,), per_arm=True)
    assert net.n_features == (8 + 1) * 4 and net.head.bias is None
    context = torch.randn(5, 3)
    z = torch.cat([context, torch.eye(4)[[0, 1, 2, 3, 1]]], dim=1)
    phi = net.features(z).reshape(5, 4, 9)
    for row, arm in enumerate([0, 1, 2, 3, 1]):
        others = [a for a in range(4) if a != arm]
        assert torch.equal(phi[row, others], torch.zeros(3, 9))
        assert phi[row, arm, -1] == 1.0
    assert net(z).shape == (5, 1)
    # the body reads the context alone: the arm code only picks the block
    other = torch.cat([context, torch.eye(4)[[3, 3, 3, 3, 3]]], dim=1)
    torch.testing.assert_close(net.features(other).reshape(5, 4, 9)[:, 3], phi.sum(dim=1))


def test_reward_net_with_a_shared_head_reads_the_whole_input():
    net = models.RewardNet(context_dim=3, arm_dim=4, hidden=(8, 6), per_arm=False)
    assert net.n_features == 6 + 1
    z = torch.randn(7, 7)
    assert net.features(z).shape == (7, 7) and net(z).shape == (7, 1)
    changed = z.clone()
    changed[:, 5] += 1.0                            # the candidate's features matter
    assert not torch.equal(net(z), net(changed))


def test_preference_net_scores_pairs_and_single_responses():
    net = models.PreferenceNet(dim=4, hidden=(8,))
    pairs = torch.randn(6, 2, 4)
    assert net(pairs).shape == (6, 2) and net.head.bias is None
    assert torch.allclose(net(pairs)[:, 1], net(pairs[:, 1])[:, 0])
    assert torch.equal(net.reward(pairs[:, 0]), net(pairs[:, 0])[:, 0])


@pytest.mark.parametrize("make, pattern", [
    (lambda: models.RewardNet(0, 4), r"context_dim must be an integer >= 1, got 0"),
    (lambda: models.RewardNet(3, 4, hidden=()), r"hidden must be a non-empty tuple"),
    (lambda: models.PreferenceNet(4, hidden=(8, 0)), r"hidden layer size must be an integer"),
    (lambda: models.PreferenceNet(0), r"dim must be an integer >= 1, got 0"),
])
def test_bad_reward_model_sizes(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()

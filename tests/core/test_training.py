"""Tests of bayes_at_scale.core.training: the count-weighted objective, MAP training, prior precision."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bayes_at_scale.core import checks
from bayes_at_scale.core import metrics
from bayes_at_scale.core import models
from bayes_at_scale.core import settings
from bayes_at_scale.core import training


@pytest.fixture
def corpus_tensors(tiny_corpus):
    return tiny_corpus.next_token_counts()


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --- corpus_nll ---------------------------------------------------------------------------


def test_corpus_nll_is_count_weighted_mean_nll(float64, make_lm, corpus_tensors, tiny_corpus):
    contexts, counts = corpus_tensors
    model = make_lm(tiny_corpus.vocab_size, 3, seed=1)
    with torch.no_grad():
        logits = model(contexts)[:, -1, :].numpy()
    # by hand: log-softmax written out, weighted by the counts
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    c = counts.numpy().astype(float)
    expected = -(c * logp).sum() / c.sum()
    value = training.corpus_nll(model, contexts, counts)
    assert value.item() == pytest.approx(expected, rel=1e-12)
    assert value.requires_grad


def test_corpus_nll_equals_token_by_token_cross_entropy(float64, make_lm):
    """The compact corpus (distinct contexts + counts) has the loss of the unrolled corpus."""
    model = make_lm(5, 2, seed=2)
    contexts = torch.tensor([[0, 1], [2, 3], [4, 4]])
    counts = torch.tensor([[3, 0, 1, 0, 0], [0, 0, 0, 0, 2], [1, 1, 1, 1, 1]])
    rows, targets = [], []
    for i, row in enumerate(counts.tolist()):
        for token, k in enumerate(row):
            rows += [i] * k
            targets += [token] * k
    unrolled = F.cross_entropy(model(contexts[rows])[:, -1, :], torch.tensor(targets))
    torch.testing.assert_close(training.corpus_nll(model, contexts, counts), unrolled)


def test_corpus_nll_accepts_normalised_frequencies(float64, make_lm, corpus_tensors, tiny_corpus):
    """Scaling every count by the same factor does not change the mean NLL."""
    contexts, counts = corpus_tensors
    model = make_lm(tiny_corpus.vocab_size, 3, seed=1)
    a = training.corpus_nll(model, contexts, counts)
    b = training.corpus_nll(model, contexts, counts.double() / counts.sum())
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("counts, pattern", [
    (torch.zeros(2, 4, dtype=torch.long), r"empty"),
    (torch.ones(2, 1, dtype=torch.long), r"counts must have shape \(2, 4\)"),
    (torch.ones(1, 4, dtype=torch.long), r"counts must have shape \(2, 4\)"),
    (-torch.ones(2, 4, dtype=torch.long), r"non-negative"),
])
def test_corpus_nll_rejects_a_bad_corpus(make_lm, counts, pattern):
    model = make_lm(4, 2)
    with pytest.raises(ValueError, match=pattern):
        training.corpus_nll(model, torch.tensor([[0, 1], [2, 3]]), counts)


# --- check_next_token_counts --------------------------------------------------------------

CTX = torch.tensor([[0, 1], [1, 2]])
CNT = torch.tensor([[1, 0, 2], [0, 4, 0]])


@pytest.mark.parametrize("contexts, counts, error, pattern", [
    (CTX.tolist(), CNT, TypeError, r"contexts and counts must be torch tensors"),
    (CTX, CNT.numpy(), TypeError, r"contexts and counts must be torch tensors"),
    (CTX[0], CNT, ValueError, r"contexts must have shape \(m, T\) with T >= 1, got \(2,\)"),
    (CTX[:, :0], CNT, ValueError, r"contexts must have shape \(m, T\) with T >= 1, got \(2, 0\)"),
    (CTX[:0], CNT[:0], ValueError, r"the corpus is empty: no contexts to train on"),
    (CTX, CNT[:, :2], ValueError, r"counts must have shape \(2, 3\), got \(2, 2\)"),
    (CTX, CNT[:1], ValueError, r"counts must have shape \(2, 3\), got \(1, 3\)"),
    (CTX, CNT.T, ValueError, r"counts must have shape \(2, 3\), got \(3, 2\)"),
    (CTX, torch.tensor([[1.0, float("nan"), 0.0], [0.0, 1.0, 0.0]]), ValueError,
     r"counts contain NaN"),
    (CTX, torch.tensor([[1.5, 0.0, 0.0], [0.0, 1.0, 0.0]]), ValueError,
     r"counts must be whole numbers"),
    (CTX, torch.tensor([[1, -1, 0], [0, 1, 0]]), ValueError, r"counts must be non-negative"),
    (CTX, torch.zeros(2, 3, dtype=torch.long), ValueError,
     r"the corpus is empty: all counts are zero"),
    (torch.tensor([[0, 3], [1, 2]]), CNT, ValueError, r"token ids must lie in 0..2"),
    (torch.tensor([[0, -1], [1, 2]]), CNT, ValueError, r"token ids must lie in 0..2"),
])
def test_check_next_token_counts_rejects(contexts, counts, error, pattern):
    with pytest.raises(error, match=pattern):
        checks.check_next_token_counts(contexts, counts, vocab_size=3)


@pytest.mark.parametrize("counts", [CNT, CNT.double(), CNT.float()])
def test_check_next_token_counts_accepts(counts):
    assert checks.check_next_token_counts(CTX, counts, vocab_size=3) is None


# --- train_map ----------------------------------------------------------------------------


def test_train_map_lowers_the_loss(trained_tiny):
    corpus, model, losses = trained_tiny
    assert len(losses) == 200
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 1.0
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert not model.training  # left in eval mode


def test_first_loss_is_the_initial_corpus_nll(float64, make_lm, corpus_tensors, tiny_corpus):
    model = make_lm(tiny_corpus.vocab_size, 3, seed=0)
    model.train()
    initial = training.corpus_nll(model, *corpus_tensors).item()
    losses = training.train_map(model, *corpus_tensors, steps=3, progress=False)
    assert losses[0] == pytest.approx(initial, rel=1e-12)
    assert training.corpus_nll(model, *corpus_tensors).item() < initial


def test_trained_model_matches_empirical_frequencies(trained_tiny):
    """Next-token prediction converges to the empirical completion frequencies (claim C1)."""
    corpus, model, _ = trained_tiny
    contexts, counts = corpus.next_token_counts()
    probs = models.next_token_probs(model, contexts).numpy()
    empirical = (counts / counts.sum(dim=1, keepdims=True)).numpy()
    tv = metrics.tv_distance(probs, empirical)
    frequent = counts.sum(dim=1).numpy() >= 1000
    assert frequent.any()
    assert tv[frequent].max() < 0.05
    assert tv.max() < 0.05  # every context of the tiny corpus is seen >= 300 times
    # and the model is far better than the untrained starting point
    assert tv.mean() < 0.2 * metrics.tv_distance(np.full_like(probs, 1 / probs.shape[1]),
                                                  empirical).mean()


def _train(make_lm, corpus, seed_init, seed_train, steps=15, **kwargs):
    model = make_lm(corpus.vocab_size, 3, seed=seed_init)
    losses = training.train_map(model, *corpus.next_token_counts(), steps=steps, lr=3e-2,
                                seed=seed_train, progress=False, **kwargs)
    return losses, _params(model)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_train_map_is_reproducible(float64, make_lm, tiny_corpus, batch_size):
    a = _train(make_lm, tiny_corpus, 0, 5, batch_size=batch_size)
    b = _train(make_lm, tiny_corpus, 0, 5, batch_size=batch_size)
    assert a[0] == b[0]
    assert _same(a[1], b[1])


def test_minibatch_seed_changes_the_sampled_batches(float64, make_lm, tiny_corpus):
    a = _train(make_lm, tiny_corpus, 0, 5, batch_size=16)
    b = _train(make_lm, tiny_corpus, 0, 6, batch_size=16)
    assert a[0][0] != b[0][0]
    assert not _same(a[1], b[1])


def test_full_batch_ignores_the_sampling_seed(float64, make_lm, tiny_corpus):
    a = _train(make_lm, tiny_corpus, 0, 5)
    b = _train(make_lm, tiny_corpus, 0, 6)
    assert a[0] == b[0]


def test_minibatch_training_also_fits(float64, make_lm, tiny_corpus):
    model = make_lm(tiny_corpus.vocab_size, 3, seed=0)
    contexts, counts = tiny_corpus.next_token_counts()
    before = training.corpus_nll(model, contexts, counts).item()
    training.train_map(model, contexts, counts, steps=60, lr=3e-2, batch_size=64, seed=0,
                       progress=False)
    after = training.corpus_nll(model, contexts, counts).item()
    assert after < before - 1.0


def _constant_model(make_lm, probs):
    """A model whose next-token distribution is ``probs`` after every context."""
    model = make_lm(len(probs), 1)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.log(torch.as_tensor(probs)))
    return model


def test_minibatch_loss_estimates_the_corpus_nll(float64, make_lm):
    """Contexts are sampled by their counts and weighted by their normalised counts, so a
    minibatch loss is an unbiased estimate of the corpus NLL (not a count-squared average)."""
    model = _constant_model(make_lm, [0.9, 0.05, 0.05])
    contexts = torch.tensor([[0], [1]])
    counts = torch.tensor([[900, 0, 0], [0, 50, 50]])
    exact = 0.9 * -np.log(0.9) + 0.1 * -np.log(0.05)
    assert training.corpus_nll(model, contexts, counts).item() == pytest.approx(exact)
    full = training.train_map(model, contexts, counts, steps=1, lr=1e-12, progress=False)
    assert full[0] == pytest.approx(exact)
    sampled = [training.train_map(model, contexts, counts, steps=1, lr=1e-12, batch_size=4000,
                                  seed=s, progress=False)[0] for s in range(3)]
    assert np.mean(sampled) == pytest.approx(exact, abs=0.03)


def test_gradient_clipping(float64, make_lm, tiny_corpus):
    """A clip norm the gradients never reach changes nothing; a tiny one changes the path."""
    unclipped = _train(make_lm, tiny_corpus, 0, 0, clip_norm=None)
    loose = _train(make_lm, tiny_corpus, 0, 0, clip_norm=1e9)
    tight = _train(make_lm, tiny_corpus, 0, 0, clip_norm=1e-6)
    assert unclipped[0] == loose[0] and _same(unclipped[1], loose[1])
    assert not _same(unclipped[1], tight[1])


def test_weight_decay_shrinks_the_weights(float64, make_lm, tiny_corpus):
    """Adam's coupled weight decay is the gradient of an L2 penalty: a strong one pulls the
    weights toward zero, and the fit toward the prior."""
    def norm(model):
        return torch.cat([p.flatten() for p in model.parameters()]).norm().item()

    norms, losses = {}, {}
    for wd in (0.0, 10.0):
        model = make_lm(tiny_corpus.vocab_size, 3, seed=0)
        initial = norm(model)
        losses[wd] = training.train_map(model, *tiny_corpus.next_token_counts(), steps=40,
                                        lr=3e-2, weight_decay=wd, progress=False)
        norms[wd] = norm(model)
    assert norms[10.0] < 0.6 * initial
    assert norms[10.0] < 0.5 * norms[0.0]
    assert losses[10.0][-1] > losses[0.0][-1]


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(steps=0), r"steps must be a positive integer, got 0"),
    (dict(steps=-3), r"steps must be a positive integer, got -3"),
    (dict(steps=2.5), r"steps must be a positive integer, got 2.5"),
    (dict(steps=True), r"steps must be a positive integer, got True"),
    (dict(lr=0.0), r"lr must be positive, got 0.0"),
    (dict(lr=-1e-3), r"lr must be positive"),
    (dict(lr=float("nan")), r"lr must be positive, got nan"),
    (dict(weight_decay=-1e-5), r"weight_decay must be non-negative"),
    (dict(weight_decay=float("nan")), r"weight_decay must be non-negative, got nan"),
    (dict(clip_norm=0.0), r"clip_norm must be positive or None, got 0.0"),
    (dict(clip_norm=-1.0), r"clip_norm must be positive or None, got -1.0"),
    (dict(clip_norm=float("nan")), r"clip_norm must be positive or None, got nan"),
    (dict(batch_size=0), r"batch_size must be a positive integer or None, got 0"),
    (dict(batch_size=8.0), r"batch_size must be a positive integer or None, got 8.0"),
    (dict(batch_size=False), r"batch_size must be a positive integer or None, got False"),
])
def test_train_map_bad_arguments_fail_before_training(make_lm, tiny_corpus, kwargs, pattern):
    model = make_lm(tiny_corpus.vocab_size, 3)
    before = _params(model)
    args = dict(steps=5, progress=False) | kwargs
    with pytest.raises(ValueError, match=pattern):
        training.train_map(model, *tiny_corpus.next_token_counts(), **args)
    assert _same(before, _params(model))


@pytest.mark.parametrize("corpus, error, pattern", [
    ((torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 6, dtype=torch.long)), ValueError,
     r"the corpus is empty"),
    ((torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long)), ValueError,
     r"all counts are zero"),
    ((torch.zeros(2, 3, dtype=torch.long), -torch.ones(2, 6, dtype=torch.long)), ValueError,
     r"counts must be non-negative"),
    ((torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 5, dtype=torch.long)), ValueError,
     r"counts must have shape \(2, 6\)"),
    ((torch.full((2, 3), 6), torch.ones(2, 6, dtype=torch.long)), ValueError,
     r"token ids must lie in 0..5"),
    ((torch.zeros(2, 3), torch.ones(2, 6)), TypeError, r"tokens must be integer ids"),
])
def test_train_map_bad_corpus(make_lm, corpus, error, pattern):
    model = make_lm(6, 3)
    before = _params(model)
    with pytest.raises(error, match=pattern):
        training.train_map(model, *corpus, steps=2, progress=False)
    assert _same(before, _params(model))


def test_progress_bar_only_when_asked(make_lm, tiny_corpus, capsys):
    model = make_lm(tiny_corpus.vocab_size, 3)
    training.train_map(model, *tiny_corpus.next_token_counts(), steps=2, progress=False)
    assert "MAP training" not in capsys.readouterr().err
    training.train_map(model, *tiny_corpus.next_token_counts(), steps=2, progress=True)
    assert "MAP training" in capsys.readouterr().err


# --- in_notebook --------------------------------------------------------------------------


def _fake_ipython(shell_class_name: str | None) -> types.ModuleType:
    module = types.ModuleType("IPython")
    shell = None if shell_class_name is None else type(shell_class_name, (), {})()
    module.get_ipython = lambda: shell
    return module


@pytest.mark.parametrize("shell, expected", [
    ("ZMQInteractiveShell", True),
    ("TerminalInteractiveShell", False),
    (None, False),
])
def test_in_notebook(monkeypatch, shell, expected):
    monkeypatch.setitem(sys.modules, "IPython", _fake_ipython(shell))
    assert settings.in_notebook() is expected


def test_not_in_notebook_without_ipython(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert settings.in_notebook() is False


# --- reward models and policy gradients (chapter 6) -----------------------------------------


@pytest.fixture(scope="module")
def preference_pairs():
    """Bradley-Terry preferences between pairs of 4-feature responses under a linear reward."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2500, 2, 4))
    gold = x @ np.array([1.5, -1.0, 0.5, 0.0])
    preferred = rng.uniform(size=2500) < 1 / (1 + np.exp(-(gold[:, 1] - gold[:, 0])))
    pairs = torch.as_tensor(x, dtype=torch.float32)
    return pairs[:1500], torch.as_tensor(preferred[:1500]).long(), pairs[1500:], gold[1500:]


def test_reward_model_ranks_held_out_pairs_like_the_gold_reward(preference_pairs):
    pairs, preferred, held, held_gold = preference_pairs
    model = training.train_reward_model(pairs, preferred,
                                        training.RewardModelConfig(hidden=(32,), steps=150))
    assert training.pairwise_accuracy(model, held, held_gold) > 0.8  # chance is 0.5
    assert not model.training


def test_reward_model_training_is_seeded_and_leaves_the_global_rng_alone(preference_pairs):
    pairs, preferred, _, _ = preference_pairs
    config = training.RewardModelConfig(hidden=(8,), steps=3)
    before = torch.random.get_rng_state()
    a, b, c = (training.train_reward_model(pairs, preferred, config, seed=s) for s in (4, 4, 5))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert _same(a.parameters(), b.parameters())
    assert not _same(a.parameters(), c.parameters())


def test_reinforce_gradient_raises_the_rewarded_action():
    logits = torch.zeros(2, requires_grad=True)
    actions = torch.tensor([0, 1, 0, 1, 1])
    loss = training.reinforce_loss(logits.expand(5, 2), actions, (actions == 0).double())
    loss.backward()
    assert logits.grad[0] < 0 < logits.grad[1]  # descent raises logit 0, lowers logit 1
    with torch.no_grad():
        before = torch.softmax(logits, 0)[0].item()
        logits -= 0.5 * logits.grad
        assert torch.softmax(logits, 0)[0].item() > before


def test_reinforce_learns_a_two_action_bandit():
    generator = torch.Generator().manual_seed(0)
    logits = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    for _ in range(60):
        batch = logits.expand(64, 2)
        actions = torch.multinomial(torch.softmax(batch.detach(), -1), 1,
                                    generator=generator)[:, 0]
        loss = training.reinforce_loss(batch, actions, (actions == 0).double())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert torch.softmax(logits, 0)[0] > 0.9


def test_a_constant_reward_gives_no_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    training.reinforce_loss(logits, torch.tensor([0, 1, 2, 1]), torch.ones(4)).backward()
    assert torch.equal(logits.grad, torch.zeros(4, 3))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: training.train_reward_model(torch.zeros(5, 3, 4), torch.zeros(5, dtype=torch.long)),
     ValueError, r"pairs must be a float tensor of shape \(n, 2, dim\)"),
    (lambda: training.train_reward_model(torch.zeros(5, 2, 4), torch.zeros(4, dtype=torch.long)),
     ValueError, r"preferred must have shape \(5,\)"),
    (lambda: training.train_reward_model(torch.zeros(0, 2, 4), torch.zeros(0, dtype=torch.long)),
     ValueError, r"pairs is empty"),
    (lambda: training.train_reward_model(np.zeros((5, 2, 4)), torch.zeros(5)),
     TypeError, r"pairs and preferred must be torch tensors"),
    (lambda: training.train_reward_model(torch.zeros(5, 2, 4), torch.zeros(5, dtype=torch.long),
                                         {"steps": 3}),
     TypeError, r"config must be a RewardModelConfig"),
    (lambda: training.RewardModelConfig(steps=0), ValueError, r"steps must be an integer >= 1"),
    (lambda: training.RewardModelConfig(hidden=[8]), ValueError, r"hidden must be a non-empty "
                                                                 r"tuple"),
    (lambda: training.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1]), torch.zeros(3)),
     ValueError, r"actions must be integer indices of shape \(3,\)"),
    (lambda: training.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1, 2]), torch.zeros(3)),
     ValueError, r"actions must lie in 0..1"),
    (lambda: training.reinforce_loss(torch.zeros(3, 2), torch.tensor([0, 1, 1]), torch.zeros(2)),
     ValueError, r"rewards must be finite, of shape \(3,\)"),
    (lambda: training.reinforce_loss(torch.zeros(3), torch.tensor([0, 1, 1]), torch.zeros(3)),
     ValueError, r"logits must be a tensor of shape \(B, actions >= 2\)"),
])
def test_bad_reward_training_inputs(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_progress_is_quiet_inside_runner_tasks(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert settings.show_progress() is True
    with settings.quiet_progress():
        assert settings.show_progress() is False
    assert settings.show_progress() is True


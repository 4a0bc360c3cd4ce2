"""Tests of bayes_at_scale.core.answer_posteriors (round 2's answer-restricted posteriors) and of
their configurations in bayes_at_scale.core.posteriors.

One tiny fragment world (three families, six subjects, 3000 questions: 18 prompts, all seen)
and one tiny CausalLM trained for a few steps; each flavour's posterior is fitted once per
module, with few marginal-likelihood steps, and shared by the tests.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from bayes_at_scale.core import answer_posteriors as ap
from bayes_at_scale.core import posteriors
from bayes_at_scale.core.answer_posteriors import (AnswerPosterior, AnswerView, answer_counts,
                                                   fit_answer_posterior, gradient_norm,
                                                   regularised_loss, retrain_at_prior)
from bayes_at_scale.core.posteriors import (ANSWER_FLAVOURS, AnswerPosteriorConfig,
                                            answer_flavour, count_loader)
from bayes_at_scale.core.training import Recipe, train_language_model
from bayes_at_scale.worlds.fragments import make_fragment_corpus

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using a non-full backward hook:FutureWarning"),
]

FLAVOURS = list(ANSWER_FLAVOURS)               # "last_layer", "embedding_and_head"
TINY = Recipe(corpus={}, model=dict(d_model=8, n_heads=2, n_layers=1),
              training=dict(steps=30, lr=3e-2, weight_decay=1e-5, progress=False))
GRADIENT_TOLERANCE = AnswerPosteriorConfig().centred_tolerance  # the stated tolerance


def tiny_config(name: str) -> AnswerPosteriorConfig:
    return answer_flavour(name, prior_steps=20, map_steps=200)


def embedding_options(corpus, name: str) -> dict:
    """The keywords ``fit_answer_posterior`` needs for ``name``: the subject tokens at prompt
    position 1 for the embedding-inclusive flavour, nothing for the head."""
    if name == "last_layer":
        return {}
    return dict(embedded_tokens=corpus.subject_token(np.arange(corpus.n_subjects)), position=1)


@pytest.fixture(scope="module")
def world():
    """The tiny corpus, its contexts and counts, and a trained tiny network."""
    corpus = make_fragment_corpus(n_families=3, n_subjects=6, n_tokens=3000, zipf_exponent=1.1,
                                  seed=0)
    contexts, counts = corpus.next_token_counts()
    lm = train_language_model(contexts, counts, corpus.vocab_size, TINY, seed=0)
    return {"corpus": corpus, "contexts": contexts, "counts": counts, "lm": lm,
            "before": {k: v.clone() for k, v in lm.state_dict().items()}}


@pytest.fixture(scope="module")
def fitted(world):
    """flavour name -> its posterior over the tiny network."""
    return {name: fit_answer_posterior(world["lm"], world["contexts"], world["counts"],
                                       world["corpus"].answer_tokens, tiny_config(name),
                                       **embedding_options(world["corpus"], name))
            for name in FLAVOURS}


def _view(world, name: str) -> AnswerView:
    options = embedding_options(world["corpus"], name)
    return AnswerView(world["lm"], world["corpus"].answer_tokens, **options)


def _targets(world) -> torch.Tensor:
    return answer_counts(world["counts"], torch.as_tensor(world["corpus"].answer_tokens))


# --- configurations -----------------------------------------------------------------------


def test_answer_flavours():
    assert set(ANSWER_FLAVOURS) == {"last_layer", "embedding_and_head"}
    for name, config in ANSWER_FLAVOURS.items():
        assert isinstance(config, AnswerPosteriorConfig)
        assert config.trainable in posteriors.TRAINABLE
        # the view's trainable parameters are all laplace-torch sees; GGN curvature; marglik
        assert config.subset_of_weights == "all" and config.backend == "asdl_ggn"
        assert config.prior_method == "marglik" and config.rounds >= 1
    assert ANSWER_FLAVOURS["embedding_and_head"].trainable == "embedding_and_head"
    assert ANSWER_FLAVOURS["last_layer"].trainable == "head"


def test_answer_flavour_overrides_and_rejects():
    config = answer_flavour("last_layer", prior_steps=7, map_steps=11)
    assert (config.prior_steps, config.map_steps) == (7, 11)
    assert dataclasses.replace(config, prior_steps=100,
                               map_steps=AnswerPosteriorConfig().map_steps) == \
        ANSWER_FLAVOURS["last_layer"]
    assert ANSWER_FLAVOURS["last_layer"].prior_steps == 100      # the registry is untouched
    with pytest.raises(ValueError, match=r"unknown answer-posterior flavour 'bogus': expected"):
        answer_flavour("bogus")
    with pytest.raises(ValueError, match=r"unknown answer-posterior flavour 'last_layer_kron'"):
        answer_flavour("last_layer_kron")                       # a round-1 name is not one
    with pytest.raises(TypeError):
        answer_flavour("last_layer", no_such_option=1)


# --- the answer view ----------------------------------------------------------------------


@pytest.mark.parametrize("name", FLAVOURS)
def test_view_reproduces_the_network_before_retraining(world, name):
    """Initialised from the network, the view returns the network's own next-token logits on
    the answer tokens, and the embedding flavour's weights are the network's token embeddings
    of the embedded tokens."""
    view = _view(world, name)
    answers = torch.as_tensor(world["corpus"].answer_tokens)
    prompts = world["corpus"].prompts()
    with torch.no_grad():
        expected = world["lm"](prompts)[:, -1, answers]
        got = view(prompts)
    assert got.shape == (len(prompts), 3) and view.n_answers == 3
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(view.head.weight, world["lm"].head.weight[answers], rtol=0, atol=0)
    torch.testing.assert_close(view.head.bias, world["lm"].head.bias[answers], rtol=0, atol=0)
    if name == "last_layer":
        assert view.embedding is None and view.position is None
    else:
        embedded = torch.as_tensor(embedding_options(world["corpus"], name)["embedded_tokens"])
        assert view.embedding.weight.shape == (8, len(embedded)) and view.position == 1
        torch.testing.assert_close(view.embedding.weight.T, world["lm"].token.weight[embedded],
                                   rtol=0, atol=0)


def test_view_freezes_a_copy_of_the_network(world):
    view = _view(world, "embedding_and_head")
    assert view.lm is not world["lm"] and not view.lm.training
    assert not any(p.requires_grad for p in view.lm.parameters())
    trainable = {n for n, p in view.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias", "embedding.weight"}
    assert {n for n, p in _view(world, "last_layer").named_parameters() if p.requires_grad} \
        == {"head.weight", "head.bias"}


def test_view_answer_order_follows_answer_tokens(world):
    answers = world["corpus"].answer_tokens
    prompts = world["corpus"].prompts()
    with torch.no_grad():
        forward = AnswerView(world["lm"], answers)(prompts)
        backward = AnswerView(world["lm"], answers[::-1].copy())(prompts)
    torch.testing.assert_close(backward, forward.flip(1), rtol=0, atol=0)


@pytest.mark.parametrize("tokens, pattern", [
    ([12, 12, 11], r"answer_tokens contains a token twice"),
    ([11, 13], r"answer_tokens must lie in 0\.\.12"),
    ([-1, 11], r"answer_tokens must lie in 0\.\.12"),
    ([11], r"answer_tokens must name at least two tokens"),
    ([], r"answer_tokens is empty"),
])
def test_view_rejects_bad_answer_tokens(world, tokens, pattern):
    assert world["lm"].vocab_size == 13
    with pytest.raises(ValueError, match=pattern):
        AnswerView(world["lm"], tokens)


def test_view_rejects_bad_embedding_options(world):
    lm, answers = world["lm"], world["corpus"].answer_tokens
    subjects = world["corpus"].subject_token(np.arange(6))
    with pytest.raises(TypeError, match=r"lm must be a CausalLM, got Linear"):
        AnswerView(torch.nn.Linear(2, 2), answers)
    with pytest.raises(ValueError, match=r"position must be an integer >= 0, got None"):
        AnswerView(lm, answers, subjects)
    with pytest.raises(ValueError, match=r"position 3 lies beyond the model's context \(3\)"):
        AnswerView(lm, answers, subjects, position=3)
    with pytest.raises(ValueError, match=r"position is given but no embedded_tokens"):
        AnswerView(lm, answers, position=1)
    with pytest.raises(ValueError, match=r"embedded_tokens contains a token twice"):
        AnswerView(lm, answers, [1, 1], position=1)
    with pytest.raises(ValueError, match=r"embedded_tokens must lie in 0\.\.12"):
        AnswerView(lm, answers, [1, 99], position=1)


def test_view_checks_prompts(world):
    view = _view(world, "embedding_and_head")
    prompts = world["corpus"].prompts()
    view.check_prompts(prompts)
    family_at_1 = prompts[:, [0, 2, 2]]
    with pytest.raises(ValueError, match=r"every prompt must carry an embedded token at "
                                         r"position 1"):
        view.check_prompts(family_at_1)
    with pytest.raises(ValueError, match=r"prompts of length 1 have no position 1"):
        view.check_prompts(prompts[:, :1])
    with pytest.raises(TypeError, match=r"tokens must be integer ids"):
        view.check_prompts(prompts.float())


# --- counts, loss, gradient, retraining ---------------------------------------------------


def test_answer_counts_restricts_to_the_answers(world):
    answers = torch.as_tensor(world["corpus"].answer_tokens)
    restricted = answer_counts(world["counts"], answers)
    assert restricted.shape == (len(world["contexts"]), 3)
    assert torch.equal(restricted, world["counts"][:, answers])
    assert int(restricted.sum()) == 3000
    assert torch.equal(answer_counts(world["counts"], answers.flip(0)), restricted.flip(1))


def test_answer_counts_rejects(world):
    counts, answers = world["counts"], torch.as_tensor(world["corpus"].answer_tokens)
    stray = counts.clone()
    stray[0, 1] = 1                                   # a subject token completes a prompt
    with pytest.raises(ValueError, match=r"some counts fall on tokens that cannot answer"):
        answer_counts(stray, answers)
    with pytest.raises(ValueError, match=r"non-negative integer counts"):
        answer_counts(counts.double(), answers)
    with pytest.raises(ValueError, match=r"non-negative integer counts"):
        answer_counts(counts[0], answers)
    negative = counts.clone()
    negative[0, answers[0]] = -1
    with pytest.raises(ValueError, match=r"non-negative integer counts"):
        answer_counts(negative, answers)
    with pytest.raises(ValueError, match=r"the counts are all zero"):
        answer_counts(torch.zeros_like(counts), answers)
    with pytest.raises(ValueError, match=r"answer tokens exceed the counts' vocabulary \(10\)"):
        answer_counts(counts[:, :10], answers)


@pytest.mark.parametrize("name", FLAVOURS)
def test_regularised_loss_is_the_token_by_token_loss(world, name):
    """The count-weighted loss equals the mean NLL over every (prompt, answer) pair of the
    corpus plus the Gaussian prior's penalty per token."""
    view = _view(world, name)
    targets = _targets(world)
    theta = torch.cat([p.detach().flatten() for p in view.parameters() if p.requires_grad])
    precision = torch.linspace(0.5, 3.0, theta.numel())
    pairs = next(iter(count_loader(world["contexts"], targets, batch_size=10_000)))
    assert len(pairs[0]) == 3000
    with torch.no_grad():
        nll = torch.nn.functional.cross_entropy(view(pairs[0]), pairs[1], reduction="sum")
        expected = (nll + 0.5 * (precision * theta**2).sum()) / 3000
        got = regularised_loss(view, world["contexts"], targets, precision)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)


def test_gradient_norm_is_the_autograd_norm(world):
    view = _view(world, "embedding_and_head")
    targets = _targets(world)
    precision = torch.full((sum(p.numel() for p in view.parameters() if p.requires_grad),), 2.0)
    loss = regularised_loss(view, world["contexts"], targets, precision)
    grads = torch.autograd.grad(loss, [p for p in view.parameters() if p.requires_grad])
    expected = float(torch.cat([g.flatten() for g in grads]).norm())
    assert gradient_norm(view, world["contexts"], targets, precision) == \
        pytest.approx(expected, rel=1e-5)


def test_retrain_at_prior_reaches_the_unique_mode(world, fitted):
    """The head-only problem is convex (fixed features, Gaussian prior), so retraining at the
    posterior's prior from the network and from a perturbed start lands on the posterior's own
    mode: the same loss and answer distributions, with a small gradient.  (The parameters
    themselves are compared through the predictions: the direction that shifts every answer's
    logit together is held only by the weak prior, so L-BFGS leaves it least converged.)"""
    post = fitted["last_layer"]
    precision = post.la.prior_precision_diag.detach()
    targets = _targets(world)
    for shift in (0.0, 0.5):
        view = _view(world, "last_layer")
        with torch.no_grad():
            view.head.weight.add_(shift)
        with torch.no_grad():
            before = float(regularised_loss(view, world["contexts"], targets, precision))
        norm = retrain_at_prior(view, world["contexts"], targets, precision, steps=300,
                                tolerance=1e-7)
        assert norm == pytest.approx(gradient_norm(view, world["contexts"], targets, precision))
        assert norm < GRADIENT_TOLERANCE
        with torch.no_grad():
            after = float(regularised_loss(view, world["contexts"], targets, precision))
            mode = float(regularised_loss(post.view, world["contexts"], targets, precision))
            mine = torch.log_softmax(view(world["contexts"]), dim=-1)
            theirs = torch.log_softmax(post.view(world["contexts"]), dim=-1)
        assert after < before and after == pytest.approx(mode, rel=1e-6)
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-3)


# --- the fitted posterior -----------------------------------------------------------------


@pytest.mark.parametrize("name", FLAVOURS)
def test_posterior_is_at_its_own_mode(world, fitted, name):
    """Property 3: the gradient of the regularised loss at the posterior's centre, with the
    prior precision the Laplace uses, is below tolerance - and is what gradient_norm gives."""
    post = fitted[name]
    targets = _targets(world)
    precision = post.la.prior_precision_diag.detach()
    assert post.gradient_norm < GRADIENT_TOLERANCE
    assert post.gradient_norm == pytest.approx(
        gradient_norm(post.view, world["contexts"], targets, precision), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("name", FLAVOURS)
def test_retraining_moves_the_parameters(world, fitted, name):
    """The trained network is not at the mode of the Laplace's prior: there the gradient is far
    larger, and retraining changes the head (and the embeddings)."""
    post = fitted[name]
    precision = post.la.prior_precision_diag.detach()
    start = _view(world, name)
    before = gradient_norm(start, world["contexts"], _targets(world), precision)
    assert before > 20 * post.gradient_norm and before > 5 * GRADIENT_TOLERANCE
    assert (post.view.head.weight - start.head.weight).abs().max() > 1e-2
    if name == "embedding_and_head":
        assert (post.view.embedding.weight - start.embedding.weight).abs().max() > 1e-2


@pytest.mark.parametrize("name", FLAVOURS)
def test_fitting_leaves_the_network_alone(world, fitted, name):
    """Only the view's own parameters move: the caller's network and the view's frozen copy
    keep the trained weights."""
    for key, value in world["lm"].state_dict().items():
        assert torch.equal(value, world["before"][key]), key
    for key, value in fitted[name].view.lm.state_dict().items():
        assert torch.equal(value, world["before"][key]), key


@pytest.mark.parametrize("name", FLAVOURS)
def test_posterior_describes_itself(world, fitted, name):
    post = fitted[name]
    width, n_answers = 8, 3
    embedded = world["corpus"].n_subjects if name == "embedding_and_head" else 0
    assert isinstance(post, AnswerPosterior) and post.config == tiny_config(name)
    assert post.n_params == n_answers * (width + 1) + embedded * width
    # one precision per weight tensor (layerwise), positive, the last round's
    n_tensors = 3 if embedded else 2
    assert post.prior_precision.shape == (n_tensors,) and (post.prior_precision > 0).all()
    assert len(post.prior_history) == post.config.rounds
    np.testing.assert_allclose(post.prior_history[-1], post.prior_precision)
    assert post.fit_seconds > 0


@pytest.mark.parametrize("name", FLAVOURS)
def test_map_is_the_retrained_view(world, fitted, name):
    post = fitted[name]
    prompts = world["contexts"]
    logits = post.map_logits(prompts)
    with torch.no_grad():
        np.testing.assert_allclose(logits, post.view(prompts).double().numpy(), rtol=0, atol=0)
    probs = post.map_probs(prompts)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", FLAVOURS)
def test_restricted_predictive_sums_to_one(world, fitted, name):
    """Property 1: one column per answer token; every sample and the predictive are
    distributions over the answers; the predictive is the mean of the samples."""
    post = fitted[name]
    prompts = world["corpus"].prompts()
    samples = post.samples(prompts, n_samples=64, seed=3)
    assert samples.shape == (64, len(prompts), 3)
    assert (samples >= 0).all()
    np.testing.assert_allclose(samples.sum(axis=2), 1.0, atol=1e-12)
    predictive = post.predictive(prompts, n_samples=64, seed=3)
    assert predictive.shape == (len(prompts), 3)
    np.testing.assert_allclose(predictive.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(predictive, samples.mean(axis=0), rtol=0, atol=0)
    # the samples are softmaxes of the logit samples
    logits = post.logit_samples(prompts, 64, seed=3).double()
    np.testing.assert_allclose(samples, torch.softmax(logits, dim=-1).numpy(), atol=1e-12)
    assert post.samples(prompts, seed=0).shape[0] == post.config.n_samples


@pytest.mark.parametrize("name", FLAVOURS)
def test_samples_are_seeded(world, fitted, name):
    post = fitted[name]
    prompts = world["contexts"]
    a = post.samples(prompts, n_samples=16, seed=5)
    np.testing.assert_array_equal(a, post.samples(prompts, n_samples=16, seed=5))
    assert not np.allclose(a, post.samples(prompts, n_samples=16, seed=6))
    # not the caller's global random state
    torch.manual_seed(99)
    np.testing.assert_array_equal(a, post.samples(prompts, n_samples=16, seed=5))


@pytest.mark.parametrize("name", FLAVOURS)
def test_predictive_batches_agree(world, fitted, name):
    """Splitting the prompts into predict batches does not change the mode's logits."""
    post = fitted[name]
    small = AnswerPosterior(post.view, post.la, dataclasses.replace(post.config,
                                                                      predict_batch=4),
                            post.gradient_norm, post.prior_history, post.fit_seconds)
    prompts = world["contexts"]
    np.testing.assert_allclose(small.map_logits(prompts), post.map_logits(prompts), atol=1e-6)
    assert small.logit_samples(prompts, 8, seed=0).shape == (8, len(prompts), 3)


@pytest.mark.parametrize("name", FLAVOURS)
def test_monte_carlo_converges_to_the_glm_mean(world, fitted, name):
    """Property 2: the mean of the GLM logit samples approaches the mode's logits (the GLM's
    mean) with an error shrinking like 1/sqrt(S).

    Measured as z-scores ``(mean_S - mu) / sqrt(var / S)`` (``var`` the GLM's marginal logit
    variances), over 60 seeds: their mean square is ~1 for S = 50 and for S = 5000, so the error
    itself shrinks by ~sqrt(100) = 10 between the two.  (laplace-torch's sampler draws one set of
    standard normals per call and predict batch, shared by its prompts, so one call's errors are
    correlated across prompts: hence the many seeds.)
    """
    post = fitted[name]
    prompts = world["contexts"]
    mu = post.map_logits(prompts)
    jacobians, _ = post.la.backend.jacobians(prompts)
    var = torch.diagonal(post.la.functional_variance(jacobians), dim1=1, dim2=2)
    var = var.detach().double().numpy()
    assert (var > 0).all()
    rms, z2 = {}, {}
    for n_samples in (50, 5000):
        errors = np.stack([post.logit_samples(prompts, n_samples, seed=s).double().mean(0).numpy()
                           - mu for s in range(60)])
        rms[n_samples] = np.sqrt((errors**2).mean())
        z2[n_samples] = ((errors / np.sqrt(var / n_samples))**2).mean()
    assert rms[5000] < 0.05 * np.sqrt(var.mean())
    assert 5 < rms[50] / rms[5000] < 20
    for n_samples, value in z2.items():
        assert 0.5 < value < 2, (n_samples, value)


# --- fit_answer_posterior: bad inputs -----------------------------------------------------


def test_fit_rejects_bad_flavours(world):
    lm, contexts, counts = world["lm"], world["contexts"], world["counts"]
    answers = world["corpus"].answer_tokens
    subjects = embedding_options(world["corpus"], "embedding_and_head")
    with pytest.raises(ValueError, match=r"unknown answer-posterior flavour 'bogus'"):
        fit_answer_posterior(lm, contexts, counts, answers, "bogus")
    with pytest.raises(TypeError, match=r"flavour must be a AnswerPosteriorConfig, got int"):
        fit_answer_posterior(lm, contexts, counts, answers, 3)
    with pytest.raises(TypeError, match=r"flavour must be a AnswerPosteriorConfig"):
        fit_answer_posterior(lm, contexts, counts, answers, posteriors.flavour("last_layer_kron"))
    with pytest.raises(ValueError, match=r"unknown trainable set 'everything'"):
        fit_answer_posterior(lm, contexts, counts, answers,
                             answer_flavour("last_layer", trainable="everything"))
    with pytest.raises(ValueError, match=r"rounds must be a positive integer, got 0"):
        fit_answer_posterior(lm, contexts, counts, answers, answer_flavour("last_layer", rounds=0))
    with pytest.raises(ValueError, match=r"the embedding-inclusive flavour needs embedded_tokens"):
        fit_answer_posterior(lm, contexts, counts, answers, "embedding_and_head")
    with pytest.raises(ValueError, match=r"flavour 'head' embeds no tokens: drop embedded_tokens"):
        fit_answer_posterior(lm, contexts, counts, answers, "last_layer", **subjects)


def test_fit_rejects_bad_data(world):
    lm, contexts, counts = world["lm"], world["contexts"], world["counts"]
    answers = world["corpus"].answer_tokens
    subjects = embedding_options(world["corpus"], "embedding_and_head")
    stray = counts.clone()
    stray[3, 0] = 2                                    # BOS as a completion
    with pytest.raises(ValueError, match=r"some counts fall on tokens that cannot answer"):
        fit_answer_posterior(lm, contexts, stray, answers)
    with pytest.raises(ValueError, match=r"counts have 5 rows for 18 contexts"):
        fit_answer_posterior(lm, contexts, counts[:5], answers)
    with pytest.raises(ValueError, match=r"answer_tokens contains a token twice"):
        fit_answer_posterior(lm, contexts, counts, [answers[0], answers[0], answers[1]])
    with pytest.raises(ValueError, match=r"answer_tokens must lie in 0\.\.12"):
        fit_answer_posterior(lm, contexts, counts, [answers[0], 13])
    with pytest.raises(ValueError, match=r"answer_tokens must name at least two tokens"):
        fit_answer_posterior(lm, contexts, counts, answers[:1])
    family_at_1 = contexts[:, [0, 2, 2]]
    with pytest.raises(ValueError, match=r"every prompt must carry an embedded token at "
                                         r"position 1"):
        fit_answer_posterior(lm, family_at_1, counts, answers, "embedding_and_head", **subjects)
    with pytest.raises(ValueError, match=r"every prompt must carry an embedded token at "
                                         r"position 0"):
        fit_answer_posterior(lm, contexts, counts, answers, "embedding_and_head",
                             embedded_tokens=subjects["embedded_tokens"], position=0)


def test_predictions_reject_bad_prompts(world, fitted):
    post = fitted["embedding_and_head"]
    family_at_1 = world["contexts"][:, [0, 2, 2]]
    for method in (post.map_logits, post.map_probs, post.samples, post.predictive,
                   post.logit_samples):
        with pytest.raises(ValueError, match=r"every prompt must carry an embedded token"):
            method(family_at_1)
    with pytest.raises(ValueError, match=r"token ids"):
        fitted["last_layer"].map_probs(torch.full((2, 3), 13))


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True])
@pytest.mark.parametrize("method", ["logit_samples", "samples", "predictive"])
def test_predictions_reject_bad_sample_counts(world, fitted, method, n_samples):
    post = fitted["last_layer"]
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got "):
        getattr(post, method)(world["contexts"], n_samples=n_samples)


def test_module_only_builds_laplace_through_posteriors():
    """The module's one route to laplace-torch is build_laplace (and its sampler helper)."""
    assert ap.build_laplace is posteriors.build_laplace
    assert not hasattr(ap, "Laplace")


@pytest.mark.parametrize("name", FLAVOURS)
def test_newton_decrement_measures_the_distance_to_the_mode(world, fitted, name):
    """The decrement is recomputable, non-negative, and grows when the parameters are moved off
    the mode (in the posterior's own metric)."""
    from bayes_at_scale.core.answer_posteriors import newton_decrement

    post = fitted[name]
    contexts, targets = world["contexts"], _targets(world)
    here = newton_decrement(post.la, post.view, contexts, targets)
    assert here >= 0 and here == pytest.approx(post.newton_decrement, rel=1e-6)
    moved = copy.deepcopy(post.view)
    with torch.no_grad():
        moved.head.bias.add_(torch.tensor([1.0, -1.0, 0.5]))
    assert newton_decrement(post.la, moved, contexts, targets) > here + 1

"""Bandit policies (chapter 5): who picks the arm, and what they learn from the rewards.

A :class:`Policy` acts in *windows*: it chooses the actions of the next ``k`` rounds
with what it knows at the start of the window, then sees their rewards and updates
(retrains its network, refits its posterior).  It plays any environment of
:mod:`bayes_at_scale.worlds.bandits`: it reads the environment's sizes (``n_arms``,
``context_dim``, ``arm_dim``, ``input_dim``, ``per_arm`` and
:meth:`~bayes_at_scale.worlds.bandits.Environment.probe_inputs`) and each window's
:class:`~bayes_at_scale.worlds.bandits.Rounds` (``inputs`` only - the oracle alone reads
the means); :func:`bayes_at_scale.experiments.the_causal_stage.run` plays one policy on
one environment.

Policies: :class:`Uniform`, :class:`Oracle` (plays the best arm: regret 0),
:class:`NeuralGreedy`, :class:`EpsilonGreedy`, :class:`LaplaceThompson` (Thompson
sampling from a last-layer Laplace posterior of the same network, through
:mod:`bayes_at_scale.core.reward_posteriors`) and :class:`LinearThompson` (Bayesian
linear regression on the raw inputs, Riquelme et al.'s ``LinFullPost``).  The neural
policies share one network (:class:`~bayes_at_scale.core.models.RewardNet`) and training
schedule (:class:`NeuralConfig`), following Riquelme et al. (2018) [riquelme2018deep]:
one hidden layer of 50 ReLU units, two round-robin pulls of every arm to start, then
every ``retrain_every`` rounds ``train_steps`` mini-batch steps on the whole history,
warm-started.  Thompson sampling refits its posterior at the same times and draws a
fresh posterior sample for every decision (as Riquelme et al. do): one sample per refit
would play the same greedy-on-a-sample policy for a whole window, exploring less and in
a correlated way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from .bayesian_linear import NormalInverseGamma
from .checks import check_hidden, check_instance, check_int, check_number
from .models import RewardNet
from .posteriors import DEFAULT_REWARD_FLAVOUR, reward_flavour
from .reward_posteriors import RewardPosterior, reward_loader
from .settings import derive_seed, seeded_torch


class Policy:
    """A bandit policy.  :func:`~bayes_at_scale.experiments.the_causal_stage.run` calls
    ``reset`` once, then repeatedly ``window`` (how many rounds to act before the next
    update), ``act`` on those rounds (reading their ``inputs`` only - the oracle alone
    reads ``means``) and ``update`` with the rewards it saw."""

    name = "policy"

    def reset(self, env, seed: int) -> None:
        self.env, self.seed = env, seed
        self.rng = np.random.default_rng(derive_seed(seed, 1))

    def window(self, step: int, horizon: int) -> int:
        return horizon - step

    def act(self, rounds, step: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, rounds, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass

    def diagnostics(self) -> pd.DataFrame | None:
        """Per update: each arm's pull count and posterior std (posterior policies
        only)."""
        return None


class Uniform(Policy):
    """Each arm with equal probability, every round."""

    name = "uniform"

    def act(self, rounds, step: int) -> np.ndarray:
        return self.rng.integers(0, rounds.n_arms, size=rounds.n_rounds)


class Oracle(Policy):
    """The arm of highest expected reward (it reads the means): zero regret by
    construction."""

    name = "oracle"

    def act(self, rounds, step: int) -> np.ndarray:
        return rounds.optimal_arm


class _Learner(Policy):
    """Round-robin pulls of every arm first, then updates every ``update_every``
    rounds."""

    def _groups(self, k: int) -> np.ndarray:
        """The regression group of each of ``k`` arms: its own per arm, else one
        shared."""
        return np.arange(k) if self.env.per_arm else np.zeros(k, dtype=np.int64)

    def __init__(self, initial_pulls: int, update_every: int):
        self.initial_pulls = check_int("initial_pulls", initial_pulls, 0)
        self.update_every = check_int("update_every", update_every)

    def reset(self, env, seed: int) -> None:
        super().reset(env, seed)
        self.inputs = np.zeros((0, env.input_dim), dtype=np.float32)
        self.arms = np.zeros(0, dtype=np.int64)
        self.observed = np.zeros(0)
        self.ready = False
        self._log: list[dict] = []

    def window(self, step: int, horizon: int) -> int:
        warmup = self.initial_pulls * self.env.n_arms
        size = warmup - step if step < warmup else self.update_every
        return min(size, horizon - step)

    def act(self, rounds, step: int) -> np.ndarray:
        if not self.ready:  # round robin until the first update
            return (step + np.arange(rounds.n_rounds)) % rounds.n_arms
        return self._choose(rounds, step)

    def _choose(self, rounds, step: int) -> np.ndarray:
        raise NotImplementedError

    def update(self, rounds, actions: np.ndarray, rewards: np.ndarray) -> None:
        chosen = rounds.inputs[np.arange(rounds.n_rounds), actions]
        self.inputs = np.concatenate([self.inputs, chosen])
        self.arms = np.concatenate([self.arms, actions])
        self.observed = np.concatenate([self.observed, rewards])
        self._fit()
        self.ready = True

    def _fit(self) -> None:
        raise NotImplementedError

    def pulls(self) -> np.ndarray:
        return np.bincount(self.arms, minlength=self.env.n_arms)

    def _arm_std(self, design: np.ndarray) -> np.ndarray:
        """Each arm's posterior std of its mean reward (a normal-inverse-gamma
        ``posterior``), averaged over the contexts of ``design`` ``(n, K, d)``."""
        n, k, d = design.shape
        std = self.posterior.mean_std(
            design.reshape(n * k, d), np.tile(self._groups(k), n)
        )
        return std.reshape(n, k).mean(axis=0)

    def _record(self, arm_std: np.ndarray, **extra) -> None:
        pulls = self.pulls()
        # an array in ``extra`` holds one value per arm
        for arm in range(self.env.n_arms):
            self._log.append(
                {
                    "step": len(self.arms),
                    "arm": arm,
                    "pulls": int(pulls[arm]),
                    "posterior_std": float(arm_std[arm]),
                    **{
                        key: float(value[arm]) if np.ndim(value) else value
                        for key, value in extra.items()
                    },
                }
            )

    def diagnostics(self) -> pd.DataFrame | None:
        return pd.DataFrame(self._log) if self._log else None


class LinearThompson(_Learner):
    """Thompson sampling with Bayesian linear regression on the raw inputs (closed
    form).

    Riquelme et al.'s ``LinFullPost``: per arm (``per_arm`` environments; else one
    regression over ``[context, candidate]``) a normal-inverse-gamma model on
    ``[context, 1]``: sigma^2 ~ IG(a0, b0), beta | sigma^2 ~ N(0, sigma^2 / lambda_prior
    I); each decision samples sigma^2 and beta from the exact posterior.  Defaults a0 =
    b0 = 6, lambda_prior = 0.25 are theirs.
    """

    name = "LinTS"

    def __init__(
        self,
        a0: float = 6.0,
        b0: float = 6.0,
        lambda_prior: float = 0.25,
        initial_pulls: int = 2,
        update_every: int = 50,
        record_every: int | None = None,
    ):
        super().__init__(initial_pulls, update_every)
        self.record_every = (
            update_every
            if record_every is None
            else check_int("record_every", record_every)
        )
        self.a0 = check_number("a0", a0, 0.0)
        self.b0 = check_number("b0", b0, 0.0)
        self.lambda_prior = check_number("lambda_prior", lambda_prior, 0.0)

    def _design(self, inputs: np.ndarray) -> np.ndarray:
        x = inputs[..., : self.env.context_dim] if self.env.per_arm else inputs
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1).astype(float)

    def reset(self, env, seed: int) -> None:
        super().reset(env, seed)
        self.posterior: NormalInverseGamma | None = None

    def _fit(self) -> None:
        groups = self._groups(self.env.n_arms)[self.arms]
        if self.posterior is not None and len(self.arms) == self.posterior.n.sum() + 1:
            # one new round (update_every = 1): the closed-form one-observation update
            self.posterior.add(
                self._design(self.inputs[-1]), self.observed[-1], groups[-1]
            )
        else:
            x = self._design(self.inputs)
            self.posterior = NormalInverseGamma(
                self.env.n_arms if self.env.per_arm else 1,
                x.shape[1],
                self.a0,
                self.b0,
                self.lambda_prior,
            )
            self.posterior.fit(x, self.observed, groups)
        if (
            len(self.arms) % self.record_every == 0
            or self.record_every == self.update_every
        ):
            self._record(self._std(self._last_inputs()))

    def _last_inputs(self) -> np.ndarray:
        return self.inputs[-self.update_every :]

    def _std(self, chosen_inputs: np.ndarray) -> np.ndarray:
        """Posterior std of each arm's mean reward, averaged over recent contexts."""
        return self._arm_std(self._design(self.env.probe_inputs(chosen_inputs)))

    def _choose(self, rounds, step: int) -> np.ndarray:
        rng = np.random.default_rng(derive_seed(self.seed, step, 2))
        beta = self.posterior.sample(rounds.n_rounds, rng)  # (n, G, d)
        x = self._design(rounds.inputs)  # (n, K, d)
        scores = np.einsum("nkd,nkd->nk", x, beta[:, self._groups(rounds.n_arms)])
        return scores.argmax(axis=1)


@dataclass(frozen=True)
class NeuralConfig:
    """The reward network and its training schedule, shared by every neural policy.

    Defaults follow Riquelme et al. (2018): one hidden layer of 50 ReLU units, 2
    round-robin pulls per arm, retraining every 50 rounds for 100 mini-batch steps
    (batch 512) on the whole history, warm-started, gradients clipped at norm 5.  Adam
    at 1e-2 replaces their decayed RMSProp.
    """

    hidden: tuple[int, ...] = (50,)
    initial_pulls: int = 2
    retrain_every: int = 50
    train_steps: int = 100
    batch_size: int = 512
    lr: float = 1e-2
    weight_decay: float = 1e-4
    clip_norm: float = 5.0

    def __post_init__(self):
        check_hidden(self.hidden, kinds=(tuple,))
        check_int("initial_pulls", self.initial_pulls, 0)
        check_int("retrain_every", self.retrain_every)
        check_int("train_steps", self.train_steps)
        check_int("batch_size", self.batch_size)
        check_number("lr", self.lr, 0.0)
        check_number("weight_decay", self.weight_decay, 0.0, low_open=False)
        check_number("clip_norm", self.clip_norm, 0.0)


class _NeuralPolicy(_Learner):
    """A policy acting on a :class:`~bayes_at_scale.core.models.RewardNet` retrained on
    the history (MSE, warm start)."""

    def __init__(self, config: NeuralConfig = NeuralConfig()):
        check_instance("config", config, NeuralConfig)
        super().__init__(config.initial_pulls, config.retrain_every)
        self.config = config

    def reset(self, env, seed: int) -> None:
        super().reset(env, seed)
        c = self.config
        with seeded_torch(derive_seed(seed, 3)):  # same seed: the same initial network
            self.net = RewardNet(env.context_dim, env.arm_dim, c.hidden, env.per_arm)
        self.optimiser = torch.optim.Adam(
            self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay
        )
        self.generator = torch.Generator().manual_seed(derive_seed(seed, 4))

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.get_default_dtype())

    def _train(self) -> None:
        c = self.config
        x, y = self._tensor(self.inputs), self._tensor(self.observed)
        batch = min(c.batch_size, len(y))
        self.net.train()
        for _ in range(c.train_steps):
            idx = torch.randint(0, len(y), (batch,), generator=self.generator)
            loss = ((self.net(x[idx])[:, 0] - y[idx]) ** 2).mean()
            self.optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.clip_norm)
            self.optimiser.step()
        self.net.eval()

    def _fit(self) -> None:
        self._train()

    @torch.no_grad()
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The network's predicted reward for inputs ``(..., input_dim)``."""
        x = self._tensor(inputs)
        return self.net(x.reshape(-1, x.shape[-1]))[:, 0].reshape(x.shape[:-1]).numpy()

    def _choose(self, rounds, step: int) -> np.ndarray:
        return self.predict(rounds.inputs).argmax(axis=1)


class NeuralGreedy(_NeuralPolicy):
    """The arm the network predicts best (no exploration after the round-robin
    start)."""

    name = "greedy"


class EpsilonGreedy(_NeuralPolicy):
    """Greedy on the network, but a uniformly random arm with probability
    ``epsilon``."""

    name = "epsilon-greedy"

    def __init__(self, config: NeuralConfig = NeuralConfig(), epsilon: float = 0.05):
        super().__init__(config)
        self.epsilon = check_number(
            "epsilon", epsilon, 0.0, 1.0, low_open=False, high_open=False
        )

    def _choose(self, rounds, step: int) -> np.ndarray:
        greedy = super()._choose(rounds, step)
        explore = self.rng.uniform(size=rounds.n_rounds) < self.epsilon
        random = self.rng.integers(0, rounds.n_arms, size=rounds.n_rounds)
        return np.where(explore, random, greedy)


class LaplaceThompson(_NeuralPolicy):
    """Thompson sampling from a last-layer Laplace posterior of the greedy policy's
    network.

    At every retraining the posterior
    (:class:`~bayes_at_scale.core.reward_posteriors.RewardPosterior`, Gaussian
    likelihood, flavour ``posterior``) is refitted on the whole history; its prior
    precision and observation noise are chosen by the marginal likelihood, warm-started
    from the previous refit (``hyper_steps`` Adam steps at the first refit,
    ``warm_hyper_steps`` after).  Each decision draws one fresh posterior sample of the
    head's weights and plays the arm whose sampled reward is highest.
    """

    name = "TS-LA"

    def __init__(
        self,
        config: NeuralConfig = NeuralConfig(),
        posterior: str = DEFAULT_REWARD_FLAVOUR,
        warm_hyper_steps: int = 25,
        name: str | None = None,
        **posterior_overrides,
    ):
        super().__init__(config)
        if name is not None:
            self.name = _check_name(name)
        self.posterior_config = reward_flavour(posterior, **posterior_overrides)
        self.warm_hyper_steps = check_int("warm_hyper_steps", warm_hyper_steps)

    def reset(self, env, seed: int) -> None:
        super().reset(env, seed)
        self.posterior: RewardPosterior | None = None

    def _fit(self) -> None:
        self._train()
        c = self.posterior_config
        if self.posterior is not None:  # warm start the hyperparameters
            c = replace(
                c,
                prior_precision=float(self.posterior.prior_precision.mean()),
                sigma_noise=self.posterior.sigma_noise,
                hyper_steps=self.warm_hyper_steps,
            )
        loader = reward_loader(
            self._tensor(self.inputs),
            self._tensor(self.observed),
            batch_size=c.fit_batch,
        )
        self.posterior = RewardPosterior(self.net, c).fit(loader)
        recent = self.inputs[-self.update_every :]
        self._record(
            self.arm_std(recent),
            sigma_noise=self.posterior.sigma_noise,
            prior_precision=float(self.posterior.prior_precision.mean()),
        )

    def posterior_std(self, inputs: np.ndarray) -> np.ndarray:
        """Posterior std of the mean reward for inputs ``(..., input_dim)``."""
        x = self._tensor(inputs)
        _, var = self.posterior.predictive(x.reshape(-1, x.shape[-1]))
        return var.sqrt().reshape(x.shape[:-1]).numpy()

    def arm_std(self, chosen_inputs: np.ndarray) -> np.ndarray:
        """Each arm's posterior std, averaged over the contexts of ``chosen_inputs``."""
        return self.posterior_std(self.env.probe_inputs(chosen_inputs)).mean(axis=0)

    def _choose(self, rounds, step: int) -> np.ndarray:
        n, k = rounds.n_rounds, rounds.n_arms
        x = self._tensor(rounds.inputs.reshape(n * k, -1))
        # one posterior sample per round: sample j scores round j's arms
        samples = self.posterior.sample(x, n, seed=derive_seed(self.seed, step, 5))
        scores = samples.reshape(n, n, k)[np.arange(n), np.arange(n)]
        return scores.numpy().argmax(axis=1)


class NeuralLinearThompson(_NeuralPolicy):
    """Thompson sampling from the exact last-layer posterior, updated every round.

    Riquelme et al.'s NeuralLinear [riquelme2018deep], the protocol of claim C25: the
    network is retrained every ``retrain_every`` rounds (as greedy's is); its last-layer
    features ``[phi(x), 1]`` (of the context per arm, or of ``[prompt, candidate]`` with
    one shared head) feed a per-group Bayesian linear regression with a
    normal-inverse-gamma prior
    (:class:`~bayes_at_scale.core.bayesian_linear.NormalInverseGamma`) - the exact
    last-layer Laplace posterior of a Gaussian likelihood, with the noise level
    integrated out rather than fixed or tuned.  After every round the regression of the
    chosen arm absorbs the new reward in closed form; after every retraining it is
    refitted on the whole history's new features. Each decision draws one (sigma^2,
    beta) per group and plays the arm whose sampled reward is highest.  Defaults a0 = b0
    = 6 and lambda_prior = 0.25 are Riquelme et al.'s.
    """

    name = "TS-LA"

    def __init__(
        self,
        config: NeuralConfig = NeuralConfig(),
        a0: float = 6.0,
        b0: float = 6.0,
        lambda_prior: float = 0.25,
        name: str | None = None,
    ):
        super().__init__(config)
        self.a0 = check_number("a0", a0, 0.0)
        self.b0 = check_number("b0", b0, 0.0)
        self.lambda_prior = check_number("lambda_prior", lambda_prior, 0.0)
        if name is not None:
            self.name = _check_name(name)

    def reset(self, env, seed: int) -> None:
        super().reset(env, seed)
        self.posterior: NormalInverseGamma | None = None
        self.sampler = np.random.default_rng(derive_seed(seed, 6))

    def window(self, step: int, horizon: int) -> int:
        warmup = self.initial_pulls * self.env.n_arms
        return min(warmup - step if step < warmup else 1, horizon - step)

    @torch.no_grad()
    def design(self, inputs: np.ndarray) -> np.ndarray:
        """The regression's design rows ``[phi, 1]`` for inputs ``(..., input_dim)``:
        the network body's features (of the context alone per arm), with a constant
        appended."""
        x = self._tensor(inputs)
        x = x.reshape(-1, x.shape[-1])
        if self.env.per_arm:
            x = x[:, : self.env.context_dim]
        phi = self.net.body(x).double().numpy()
        phi = np.concatenate([phi, np.ones((len(phi), 1))], axis=1)
        return phi.reshape(inputs.shape[:-1] + (phi.shape[1],))

    def update(self, rounds, actions: np.ndarray, rewards: np.ndarray) -> None:
        warmup = self.initial_pulls * self.env.n_arms
        due = (
            not self.ready
            or (len(self.arms) + rounds.n_rounds - warmup) % self.update_every == 0
        )
        if due or rounds.n_rounds != 1:
            # append, retrain and refit (_fit)
            super().update(rounds, actions, rewards)
            return
        chosen = rounds.inputs[0, actions[0]]
        self.inputs = np.concatenate([self.inputs, chosen[None]])
        self.arms = np.concatenate([self.arms, actions])
        self.observed = np.concatenate([self.observed, rewards])
        self.posterior.add(
            self.design(chosen), rewards[0], self._groups(self.env.n_arms)[actions[0]]
        )

    def _fit(self) -> None:
        self._train()
        x = self.design(self.inputs)
        if self.posterior is None:
            groups = self.env.n_arms if self.env.per_arm else 1
            self.posterior = NormalInverseGamma(
                groups, x.shape[1], self.a0, self.b0, self.lambda_prior
            )
        self.posterior.fit(x, self.observed, self._groups(self.env.n_arms)[self.arms])
        probe = self.design(self.env.probe_inputs(self.inputs[-self.update_every :]))
        noise = np.sqrt(self.posterior.noise_variance)[self._groups(self.env.n_arms)]
        self._record(self._arm_std(probe), sigma_noise=noise)

    def _choose(self, rounds, step: int) -> np.ndarray:
        beta = self.posterior.sample(rounds.n_rounds, self.sampler)  # (n, G, d)
        x = self.design(rounds.inputs)  # (n, K, d)
        scores = np.einsum("nkd,nkd->nk", x, beta[:, self._groups(rounds.n_arms)])
        return scores.argmax(axis=1)


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a policy's name must be a non-empty string, got {name!r}")
    return name

"""Bayesian linear regression with a normal-inverse-gamma prior, in closed form (chapter
5).

For one group of observations (one arm; or all of them when arms share a head), with
design rows ``x`` (``d`` numbers) and rewards ``y``, the model is

    sigma^2 ~ InvGamma(a0, b0),   beta | sigma^2 ~ N(0, sigma^2 / lambda_prior I),
    y | x, beta, sigma^2 ~ N(x' beta, sigma^2),

and its posterior is again normal-inverse-gamma (Gelman et al. 2013, section 14.8):

    Lambda = X'X + lambda_prior I,   mu = Lambda^-1 X'y,
    a = a0 + n / 2,                  b = b0 + (y'y - mu' Lambda mu) / 2,
    beta | sigma^2, data ~ N(mu, sigma^2 Lambda^-1),   sigma^2 | data ~ InvGamma(a, b).

Given sigma^2 this is exactly the Laplace posterior of the linear model with Gaussian
likelihood of noise sigma^2 and prior precision lambda_prior / sigma^2 (the log
posterior is quadratic, so the Laplace approximation is exact;
``tests/core/test_bayesian_linear.py`` checks it against laplace-torch's last-layer
Laplace).  On a network's last-layer features this is Riquelme et al.'s NeuralLinear
posterior [riquelme2018deep]; on the raw context, their LinFullPost.

:class:`NormalInverseGamma` keeps each group's sufficient statistics (``X'X``, ``X'y``,
``y'y``, ``n``), so that one new observation updates its group in closed form
(:meth:`add`), and the whole posterior can be refitted from scratch when the features
change (:meth:`fit`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from .checks import check_int, check_number


class NormalInverseGamma:
    """Per-group Bayesian linear regression with a normal-inverse-gamma prior.

    ``groups`` independent regressions over ``dim`` design columns share the prior
    ``a0``, ``b0``, ``lambda_prior`` (Riquelme et al.'s defaults are 6, 6 and 0.25).
    Fit with :meth:`fit`, update with :meth:`add`, draw with :meth:`sample`; ``mu``
    ``(groups, dim)``, ``chol`` (the Cholesky factor L of each group's precision Lambda
    = L L') and ``a``, ``b`` ``(groups,)`` are the posterior's parameters.
    """

    def __init__(
        self,
        groups: int,
        dim: int,
        a0: float = 6.0,
        b0: float = 6.0,
        lambda_prior: float = 0.25,
    ):
        self.groups = check_int("groups", groups)
        self.dim = check_int("dim", dim)
        self.a0 = check_number("a0", a0, 0.0)
        self.b0 = check_number("b0", b0, 0.0)
        self.lambda_prior = check_number("lambda_prior", lambda_prior, 0.0)
        self.fit(np.zeros((0, self.dim)), np.zeros(0), np.zeros(0, dtype=np.int64))

    # --- data -------------------------------------------------------------------------

    def _check(self, x, y, group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        group = np.asarray(group)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {x.shape}")
        if y.shape != (x.shape[0],) or group.shape != (x.shape[0],):
            raise ValueError(
                f"x {x.shape}, y {y.shape} and group {group.shape} must have one "
                "row per observation"
            )
        if group.size and (
            not np.issubdtype(group.dtype, np.integer)
            or group.min() < 0
            or group.max() >= self.groups
        ):
            raise ValueError(f"group must hold integers in 0..{self.groups - 1}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("x and y must be finite (no NaN or infinite values)")
        return x, y, group.astype(np.int64)

    def fit(self, x, y, group) -> "NormalInverseGamma":
        """The posterior given observations ``x`` ``(n, dim)``, ``y`` ``(n,)`` of groups
        ``group`` ``(n,)`` (any earlier observations are forgotten)."""
        x, y, group = self._check(x, y, group)
        self.xx = np.zeros((self.groups, self.dim, self.dim))
        self.xy = np.zeros((self.groups, self.dim))
        self.yy = np.zeros(self.groups)
        self.n = np.zeros(self.groups, dtype=np.int64)
        for g in range(self.groups):
            xg, yg = x[group == g], y[group == g]
            self.xx[g], self.xy[g], self.yy[g], self.n[g] = (
                xg.T @ xg,
                xg.T @ yg,
                yg @ yg,
                len(yg),
            )
        self.mu = np.zeros((self.groups, self.dim))
        self.chol = np.zeros((self.groups, self.dim, self.dim))
        self.chol_inv_t = np.zeros((self.groups, self.dim, self.dim))
        self.a, self.b = np.zeros(self.groups), np.zeros(self.groups)
        for g in range(self.groups):
            self._solve(g)
        return self

    def add(self, x, y: float, group: int) -> "NormalInverseGamma":
        """Update with one observation ``y`` at design row ``x`` ``(dim,)`` of
        ``group``."""
        x, y, group = self._check(
            np.reshape(x, (1, -1)), np.reshape(y, (1,)), np.reshape(group, (1,))
        )
        g = int(group[0])
        self.xx[g] += np.outer(x[0], x[0])
        self.xy[g] += x[0] * y[0]
        self.yy[g] += y[0] ** 2
        self.n[g] += 1
        self._solve(g)
        return self

    def _solve(self, g: int) -> None:
        precision = self.xx[g] + self.lambda_prior * np.eye(self.dim)
        self.chol[g] = np.linalg.cholesky(precision)
        # L^-T, so that a draw is a product rather than a triangular solve per decision
        self.chol_inv_t[g] = solve_triangular(
            self.chol[g], np.eye(self.dim), lower=True
        ).T
        self.mu[g] = np.linalg.solve(precision, self.xy[g])
        self.a[g] = self.a0 + self.n[g] / 2
        self.b[g] = self.b0 + 0.5 * max(
            self.yy[g] - self.mu[g] @ precision @ self.mu[g], 0.0
        )

    # --- the posterior ----------------------------------------------------------------

    @property
    def precision(self) -> np.ndarray:
        """Lambda of every group, ``(groups, dim, dim)``: the posterior precision of
        beta is Lambda / sigma^2."""
        return self.chol @ np.swapaxes(self.chol, 1, 2)

    @property
    def noise_variance(self) -> np.ndarray:
        """The posterior mean of sigma^2 per group, b / (a - 1) (its mode b / (a + 1)
        where a <= 1 and the mean is infinite)."""
        return np.where(
            self.a > 1, self.b / np.maximum(self.a - 1, 1e-12), self.b / (self.a + 1)
        )

    def covariance(self, sigma2) -> np.ndarray:
        """The covariance sigma^2 Lambda^-1 of beta given ``sigma2`` (one per group),
        ``(groups, dim, dim)``."""
        sigma2 = np.broadcast_to(np.asarray(sigma2, dtype=float), (self.groups,))
        return sigma2[:, None, None] * np.linalg.inv(self.precision)

    def mean_std(self, x, group) -> np.ndarray:
        """Posterior std of the mean reward x' beta at design rows ``x`` ``(n, dim)`` of
        groups ``group`` ``(n,)``, with sigma^2 at its posterior mean: ``(n,)``."""
        x, _, group = self._check(x, np.zeros(len(x)), group)
        half = np.zeros(len(x))
        for g in np.unique(group):
            rows = group == g
            half[rows] = (np.linalg.solve(self.chol[g], x[rows].T) ** 2).sum(axis=0)
        return np.sqrt(self.noise_variance[group] * half)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint draws of (sigma^2, beta) of every group: ``(n, groups, dim)``
        betas.

        Each draw takes sigma^2 ~ InvGamma(a, b), then beta = mu + sigma L^-T eps with
        eps ~ N(0, I), so that beta ~ N(mu, sigma^2 Lambda^-1)."""
        n = check_int("n", n)
        # inverse-gamma draws
        sigma2 = self.b / rng.gamma(self.a, size=(n, self.groups))
        eps = rng.standard_normal((n, self.groups, self.dim))
        offsets = np.einsum("gde,nge->ngd", self.chol_inv_t, eps)
        return self.mu[None] + np.sqrt(sigma2)[..., None] * offsets

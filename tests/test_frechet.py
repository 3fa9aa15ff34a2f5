"""metrics.frechet_distance against closed forms, and its guards."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dl_utils import metrics


def exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """``n`` samples whose sample mean and (unbiased) sample covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T   # sample covariance = I
    return z @ np.linalg.cholesky(cov).T + mean


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).standard_normal((500, 8))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_two_gaussians_match_the_closed_form():
    # diagonal covariances commute: FD = |mu_a - mu_b|^2 + sum_i (sd_a,i - sd_b,i)^2
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    a = exact_moments(400, mu_a, np.diag(var_a), seed=1)
    b = exact_moments(300, mu_b, np.diag(var_b), seed=2)
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()   # 5 + 4 + 1 = 10
    assert expected == pytest.approx(10.0)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_general_covariances_match_the_symmetric_form():
    rng = np.random.default_rng(3)
    m_a, m_b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    cov_a, cov_b = m_a @ m_a.T + np.eye(4), m_b @ m_b.T + 0.5 * np.eye(4)   # do not commute
    a = exact_moments(200, np.zeros(4), cov_a, seed=4)
    b = exact_moments(250, np.ones(4), cov_b, seed=5)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w)) @ v.T
    trace_sqrt = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a)).sum()
    expected = 4.0 + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_it_is_symmetric():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((300, 5)), 2 * rng.standard_normal((200, 5)) + 1
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-9)


def test_the_estimate_is_biased_upwards_for_small_samples():
    # two samples of the same distribution: the true distance is 0, the estimate shrinks as N grows
    rng = np.random.default_rng(7)
    def mean_fd(n):
        return np.mean([metrics.frechet_distance(rng.standard_normal((n, 10)), rng.standard_normal((n, 10)))
                        for _ in range(5)])
    small, large = mean_fd(50), mean_fd(5000)
    assert small > 5 * large > 0


def test_singular_covariances_give_a_finite_value_without_warnings():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((100, 12)), rng.standard_normal((120, 12))
    a[:, 4:] = 0.0      # "dead" features, as after a ReLU
    b[:, :2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = metrics.frechet_distance(a, b)
    assert np.isfinite(value) and value > 0


def test_shape_mismatch_raises_a_clear_error():
    with pytest.raises(ValueError, match="feature dimensions differ: 4 and 5"):
        metrics.frechet_distance(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match="must be 2-D"):
        metrics.frechet_distance(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.frechet_distance(np.zeros((1, 3)), np.zeros((10, 3)))

import numpy as np
import pytest
import scipy.linalg

from cyclegan_tf.evaluation import metrics


def _random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _reference_fid(mu1, sigma1, mu2, sigma2):
    """The pytorch-fid formula with scipy's general matrix square root (not the code under test)."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _reference_mmd2_unbiased(x, y):
    """Bińkowski et al.'s unbiased MMD² written as explicit sums over pairs."""
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("n, d", [(300, 16), (40, 512)])
def test_fid_of_a_set_against_itself_is_zero(n, d):
    # (40, 512): fewer samples than dimensions, the singular case of small evaluation sets.
    features = np.random.default_rng(0).gamma(2.0, size=(n, d))
    assert metrics.fid(features, features) == pytest.approx(0.0, abs=1e-6 * d)


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    value = metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1 + 6.25 + 4 + 1)


def test_frechet_distance_of_full_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    d = 24
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    sigma1, sigma2 = _random_covariance(rng, d), _random_covariance(rng, d)
    expected = _reference_fid(mu1, sigma1, mu2, sigma2)
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n1, n2, d", [(500, 400, 8), (12, 9, 64)])
def test_fid_fits_gaussians_with_the_sample_mean_and_covariance(n1, n2, d):
    # (500, 400, 8) goes through the covariances, (12, 9, 64) through the small-sample route.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(n1, d))
    b = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) + 0.5
    mu_a, mu_b = a.sum(0) / len(a), b.sum(0) / len(b)
    sigma_a = (a - mu_a).T @ (a - mu_a) / (len(a) - 1)
    sigma_b = (b - mu_b).T @ (b - mu_b) / (len(b) - 1)
    expected = _reference_fid(mu_a, sigma_a, mu_b, sigma_b)
    # Square roots of the ~0 eigenvalues of singular covariances cost the reference some digits.
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-7)


def test_fid_of_large_gaussian_samples_approaches_the_population_value():
    rng = np.random.default_rng(3)
    d = 4
    mu1, mu2 = np.zeros(d), np.array([1.0, 0.0, -1.0, 2.0])
    sigma1, sigma2 = _random_covariance(rng, d), _random_covariance(rng, d)
    a = rng.multivariate_normal(mu1, sigma1, size=50_000)
    b = rng.multivariate_normal(mu2, sigma2, size=50_000)
    population = _reference_fid(mu1, sigma1, mu2, sigma2)
    assert metrics.fid(a, b) == pytest.approx(population, rel=0.02)


def test_fid_and_kid_are_symmetric():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(60, 10))
    b = rng.normal(loc=0.3, scale=1.5, size=(50, 10))
    assert metrics.fid(a, b) == pytest.approx(metrics.fid(b, a), rel=1e-9)
    # Subsets as large as the smaller set: a's subsets are permutations of all of it.
    b_all = b[:50]
    a_all = a[:50]
    assert metrics.kid(a_all, b_all, num_subsets=3) == pytest.approx(
        metrics.kid(b_all, a_all, num_subsets=3), rel=1e-12, abs=1e-15
    )
    # With random subsets the two orders draw different rows; both estimate the same value.
    forward, spread = metrics.kid(a, b, num_subsets=200, subset_size=20)
    backward, _ = metrics.kid(b, a, num_subsets=200, subset_size=20)
    assert abs(forward - backward) < 4 * spread / np.sqrt(200) * np.sqrt(2)


def test_kid_on_whole_sets_matches_the_explicit_sums():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 5))
    y = rng.normal(loc=0.5, size=(9, 5))
    mean, std = metrics.kid(x, y, num_subsets=4, subset_size=1000)
    assert mean == pytest.approx(_reference_mmd2_unbiased(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_of_1d_distributions_approaches_the_moment_formula():
    # With d=1, k(x, y) = (xy + 1)^3 = x³y³ + 3x²y² + 3xy + 1, so the population MMD² is
    # (E X³ - E Y³)² + 3 (E X² - E Y²)² + 3 (E X - E Y)².  X ~ U(-1, 1), Y ~ U(-2, 2): the odd
    # moments vanish and E X² = 1/3, E Y² = 4/3, so MMD² = 3.  Uniforms keep the moment noise low.
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=(10_000, 1))
    y = rng.uniform(-2, 2, size=(10_000, 1))
    mean, _ = metrics.kid(x, y, num_subsets=10, subset_size=2000)
    assert mean == pytest.approx(3.0, rel=0.1)
    # A quadratic kernel would give (E X² - E Y²)² + 2 (E X - E Y)² = 1: far outside the tolerance.


def test_kid_is_unbiased_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(7)
    m, d, rounds = 10, 6, 400
    unbiased, biased = [], []
    for _ in range(rounds):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        unbiased.append(metrics.kid(x, y, num_subsets=1, subset_size=m)[0])
        # The V-statistic (diagonal terms kept) is biased upwards: the test can tell them apart.
        k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    standard_error = np.std(unbiased) / np.sqrt(rounds)
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error


def test_scores_bundles_fid_and_kid():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(30, 4)), rng.normal(loc=1.0, size=(30, 4))
    result = metrics.scores(a, b, kid_subsets=5, kid_subset_size=10, seed=3)
    assert result.fid == metrics.fid(a, b)
    assert (result.kid, result.kid_std) == metrics.kid(a, b, 5, 10, seed=3)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "different dimensions. Received: 3 and 4"),
        (np.zeros((1, 3)), np.zeros((5, 3)), "at least 2 feature vectors. Received: 1"),
        (np.zeros(5), np.zeros((5, 3)), "Received: shape=(5,)"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "NaN"),
    ],
)
def test_bad_features_are_rejected_with_what_was_received(a, b, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        metrics.fid(a, b)


def test_kid_rejects_bad_subset_arguments():
    a = np.zeros((5, 3))
    with pytest.raises(ValueError, match="num_subsets=0"):
        metrics.kid(a, a, num_subsets=0)
    with pytest.raises(ValueError, match="subset_size=1"):
        metrics.kid(a, a, subset_size=1)

"""FID and KID between two sets of feature vectors, in plain NumPy.

Both take ``[n, d]`` arrays (InceptionV3 pool features in ``cyclegan_tf.evaluation.features``, but
any features work) and are symmetric in their two arguments.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Scores:
    """FID and KID of one set of features against another.

    Attributes:
        fid: float, the Fréchet Inception Distance.
        kid: float, the mean unbiased MMD² over the KID subsets.
        kid_std: float, its standard deviation over the subsets.
    """

    fid: float
    kid: float
    kid_std: float


def _check_features(features, name, min_rows=2):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(
            f"{name} must be a [n, d] array of feature vectors. Received: shape={features.shape}"
        )
    if features.shape[0] < min_rows:
        raise ValueError(
            f"{name} needs at least {min_rows} feature vectors. Received: {features.shape[0]}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return features


def _check_same_dim(a, b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"the two feature sets have different dimensions. Received: {a.shape[1]} and {b.shape[1]}"
        )


def gaussian_fit(features):
    """The mean and covariance of ``[n, d]`` features (the Gaussian that FID compares).

    Args:
        features: array ``[n, d]`` with ``n >= 2``.

    Returns:
        ``(mu [d], sigma [d, d])``, float64; ``sigma`` is the unbiased sample covariance.
    """
    features = _check_features(features, "features")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix):
    """The PSD square root of a symmetric matrix; round-off negatives are clipped to 0."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def trace_sqrt_product(sigma1, sigma2):
    """``tr(sqrtm(sigma1 @ sigma2))`` for covariance matrices, computed through symmetric matrices.

    ``sigma1 @ sigma2`` is similar to ``sqrt(sigma1) @ sigma2 @ sqrt(sigma1)``, which is symmetric
    positive semi-definite, so the trace is the sum of the square roots of that matrix's eigenvalues.
    This is TF-GAN's ``trace_sqrt_product`` with ``eigh`` for the SVD. Unlike ``scipy.linalg.sqrtm``
    on the non-symmetric product it never produces imaginary parts, handles the singular covariances
    of fewer samples than dimensions, and takes about 1 s instead of about 25 s at d=2048 on 2 CPU
    cores. Tiny negative eigenvalues from round-off are clipped to 0.

    Args:
        sigma1: array ``[d, d]``, symmetric positive semi-definite.
        sigma2: array ``[d, d]``, symmetric positive semi-definite.

    Returns:
        float.
    """
    root1 = _symmetric_sqrt(np.asarray(sigma1, dtype=np.float64))
    product = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """The Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d² = |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2))``.

    Args:
        mu1: array ``[d]``.
        sigma1: array ``[d, d]``.
        mu2: array ``[d]``.
        sigma2: array ``[d, d]``.

    Returns:
        float, the squared distance (what papers report as FID); never negative.

    Raises:
        ValueError: if the shapes do not match.

    Reference:
        Dowson & Landau, "The Fréchet distance between multivariate normal distributions", 1982;
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium", NeurIPS 2017.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "mu1, sigma1, mu2, sigma2 must have shapes [d], [d, d], [d], [d, d]. Received: "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    diff = mu1 - mu2
    value = (
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )
    # Equal distributions give 0 up to round-off, which can be a tiny negative number.
    return max(float(value), 0.0)


def fid(features1, features2):
    """The Fréchet Inception Distance between two feature sets.

    The Gaussians are fitted with the sample mean and the unbiased covariance. When the sets are
    small next to the feature dimension (``n1 * n2 <= d²``, e.g. a few hundred images with 2048
    features) the covariances are never formed: with ``A_i`` the centred features scaled by
    ``1 / sqrt(n_i - 1)``, ``sigma_i = A_iᵀ A_i`` and ``tr(sqrt(sigma1 sigma2))`` is the sum of the
    singular values of ``A1 A2ᵀ`` (``sigma1 sigma2`` and ``(A1 A2ᵀ)(A1 A2ᵀ)ᵀ`` share their non-zero
    eigenvalues). This is exact and takes milliseconds instead of the seconds of a d×d
    decomposition.

    Args:
        features1: array ``[n1, d]``, ``n1 >= 2``.
        features2: array ``[n2, d]``, ``n2 >= 2``.

    Returns:
        float. It is biased upwards for small sets: compare numbers made with the same set sizes.

    Example:
        >>> fid(np.random.rand(100, 8), np.random.rand(100, 8) + 1.0)  # about 8 (8 dims, shift 1)
    """
    a = _check_features(features1, "features1")
    b = _check_features(features2, "features2")
    _check_same_dim(a, b)
    d = a.shape[1]
    if a.shape[0] * b.shape[0] > d * d:
        return frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    scaled1 = (a - mu1) / np.sqrt(a.shape[0] - 1)
    scaled2 = (b - mu2) / np.sqrt(b.shape[0] - 1)
    trace_sqrt = np.linalg.svd(scaled1 @ scaled2.T, compute_uv=False).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.sum(scaled1**2) + np.sum(scaled2**2) - 2.0 * trace_sqrt
    return max(float(value), 0.0)


def polynomial_kernel(x, y, degree=3, coef0=1.0):
    """``k(x, y) = (x·y / d + coef0) ** degree``, the KID kernel, for all pairs of rows."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x, y, degree=3, coef0=1.0):
    """The unbiased estimate of the squared MMD between two samples with the polynomial kernel.

    Diagonal terms ``k(x_i, x_i)`` are left out of the within-set means, which makes the estimate
    unbiased (it can be negative) and symmetric in ``x`` and ``y``.

    Args:
        x: array ``[m, d]``, ``m >= 2``.
        y: array ``[n, d]``, ``n >= 2``.
        degree: int, the kernel degree. Defaults to 3.
        coef0: float, the kernel offset. Defaults to 1.

    Returns:
        float.
    """
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x, degree, coef0)
    k_yy = polynomial_kernel(y, y, degree, coef0)
    k_xy = polynomial_kernel(x, y, degree, coef0)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kid(features1, features2, num_subsets=100, subset_size=1000, seed=0):
    """The Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, over subsets.

    Each of ``num_subsets`` rounds draws ``subset_size`` rows of each set without replacement (at
    most the smaller set's size) and computes ``mmd2_unbiased``; the result is the mean and standard
    deviation over the rounds, as in the paper and clean-fid.

    Args:
        features1: array ``[n1, d]``, ``n1 >= 2``.
        features2: array ``[n2, d]``, ``n2 >= 2``.
        num_subsets: int, rounds. Defaults to 100.
        subset_size: int, rows per set and round. Defaults to 1000.
        seed: int, seed of the subset draws. Defaults to 0.

    Returns:
        ``(mean, std)``, floats.

    Raises:
        ValueError: if an argument is out of range.

    Reference:
        Bińkowski et al., "Demystifying MMD GANs", ICLR 2018.
    """
    a = _check_features(features1, "features1")
    b = _check_features(features2, "features2")
    _check_same_dim(a, b)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be at least 1. Received: num_subsets={num_subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2. Received: subset_size={subset_size}")
    size = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = a[rng.choice(a.shape[0], size, replace=False)]
        y = b[rng.choice(b.shape[0], size, replace=False)]
        values.append(mmd2_unbiased(x, y))
    return float(np.mean(values)), float(np.std(values))


def scores(features1, features2, kid_subsets=100, kid_subset_size=1000, seed=0):
    """FID and KID of ``features1`` against ``features2``.

    Args:
        features1: array ``[n1, d]``, e.g. features of translated images.
        features2: array ``[n2, d]``, e.g. features of the target domain.
        kid_subsets: int, KID rounds. Defaults to 100.
        kid_subset_size: int, rows per KID round. Defaults to 1000.
        seed: int, seed of the KID subsets. Defaults to 0.

    Returns:
        ``Scores``.
    """
    kid_mean, kid_std = kid(features1, features2, kid_subsets, kid_subset_size, seed)
    return Scores(fid=fid(features1, features2), kid=kid_mean, kid_std=kid_std)

"""Edge cases of the decompositions: degenerate eigenvalues, singular and rank-deficient
matrices, float32 accuracy, and their errors."""
import numpy as np
import pytest
import scipy.linalg as sla

import adla


def symmetric_fd(loss, A, E, h=1e-6):
    return (loss(A + h * E) - loss(A - h * E)) / (2 * h)


def random_symmetric(rng, n):
    E = rng.standard_normal((n, n))
    return E + E.T


def degenerate_matrices():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(5)
    B = random_symmetric(rng, 3)
    return {
        "identity": (np.eye(4), [[0, 1, 2, 3]]),
        "identity_plus_rank_one": (np.eye(5) + np.outer(v, v), [[0, 1, 2, 3], [4]]),
        "block_diagonal_copies": (sla.block_diag(B, B), [[0, 1], [2, 3], [4, 5]]),
        "batched": (np.stack([np.eye(3), sla.block_diag(2.0, np.eye(2))]), [[0, 1, 2]]),
    }


@pytest.mark.parametrize("name", list(degenerate_matrices()))
def test_syevd_backward_of_eigenvalue_losses_at_degeneracy(name):
    A, _ = degenerate_matrices()[name]
    rng = np.random.default_rng(1)

    def loss(X):                                   # a symmetric function of the eigenvalues
        return np.sum(np.exp(adla.syevd(X)[1]) + adla.syevd(X)[1] ** 3)

    U, lam = adla.syevd(A)
    dA = adla.syevd_backward(None, np.exp(lam) + 3 * lam**2, U, lam)
    assert np.all(np.isfinite(dA))
    for _ in range(3):
        E = random_symmetric(rng, A.shape[-1])
        np.testing.assert_allclose(np.sum(dA * E), symmetric_fd(loss, A, E), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(degenerate_matrices()))
def test_syevd_backward_of_eigenspace_projectors_at_degeneracy(name):
    A, groups = degenerate_matrices()[name]
    rng = np.random.default_rng(2)
    n = A.shape[-1]
    for rows in groups:
        G = rng.standard_normal((n, n))

        def loss(X):                               # <G, P> with P the projector onto the space
            U = adla.syevd(X)[0][..., rows, :]
            return np.sum(G * (np.swapaxes(U, -1, -2) @ U))

        U, lam = adla.syevd(A)
        dU = np.zeros_like(U)
        dU[..., rows, :] = U[..., rows, :] @ (G + G.T)
        dA = adla.syevd_backward(dU, None, U, lam)
        assert np.all(np.isfinite(dA))
        for _ in range(3):
            E = random_symmetric(rng, n)
            np.testing.assert_allclose(np.sum(dA * E), symmetric_fd(loss, A, E), rtol=1e-6,
                                       atol=1e-7)


def test_syevd_backward_is_finite_for_any_cotangent_at_degeneracy():
    U, lam = adla.syevd(np.eye(6))
    rng = np.random.default_rng(3)
    dA = adla.syevd_backward(rng.standard_normal((6, 6)), rng.standard_normal(6), U, lam)
    assert np.all(np.isfinite(dA))
    np.testing.assert_allclose(dA, dA.T)


def expm_through_syevd(A):
    U, lam = adla.syevd(A)
    return U.T @ np.diag(np.exp(lam)) @ U, U, lam


def test_syevd_backward_is_not_exact_for_a_matrix_function_at_a_repeated_eigenvalue():
    """``sum(W * expm(S))`` at ``S = 0.3 I``: chained through syevd's outputs, the dropped
    coupling is the whole off-diagonal gradient (the documented limit); the eigenvalue loss
    ``trace(expm(S))`` is exact there, and so is the divided-difference rule the docs give."""
    rng = np.random.default_rng(7)
    n = 4
    S = 0.3 * np.eye(n)
    W = rng.standard_normal((n, n))
    F, U, lam = expm_through_syevd(S)
    e = np.exp(lam)
    dU = e[:, None] * (U @ (W + W.T))              # chain rule of sum(W * U^T diag(e) U)
    dlam = e * np.einsum("ij,jk,ik->i", U, W, U)
    chained = adla.syevd_backward(dU, dlam, U, lam)
    exact = np.exp(0.3) * (W + W.T) / 2            # d expm at c*I is e^c times the identity map

    def loss(A):
        return np.sum(W * expm_through_syevd(A)[0])
    E = random_symmetric(rng, n)
    np.testing.assert_allclose(symmetric_fd(loss, S, E), np.sum(exact * E), rtol=1e-6)
    off_diagonal = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(chained[off_diagonal], 0, atol=1e-12)     # coupling dropped
    assert np.max(np.abs(chained - exact)) > 0.5 * np.max(np.abs(exact[off_diagonal]))

    # Exact: a symmetric function of the eigenvalues, trace(expm(S)) = sum(exp(lam)).
    np.testing.assert_allclose(adla.syevd_backward(None, e, U, lam), np.exp(0.3) * np.eye(n),
                               rtol=1e-12)
    # Exact: the rule that knows g' = exp at the repeated eigenvalue.
    gap = lam[:, None] - lam[None, :]
    close = np.abs(gap) <= adla.degenerate_tolerance(lam, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        D = np.where(close, e[:, None], (e[:, None] - e[None, :]) / gap)
    rule = U.T @ (D * (U @ ((W + W.T) / 2) @ U.T)) @ U
    np.testing.assert_allclose(rule, exact, rtol=1e-12)


def test_degenerate_tolerance_is_relative_to_the_largest_eigenvalue():
    lam = np.array([[1e-3, 2.0, -4.0]])
    tol = adla.degenerate_tolerance(lam, np.float64)
    np.testing.assert_allclose(tol, 64 * 3 * np.finfo(np.float64).eps * 4.0)


def test_syevd_sign_convention_and_order():
    rng = np.random.default_rng(4)
    A = random_symmetric(rng, 7)
    U, lam = adla.syevd(A)
    assert np.all(np.diff(lam) >= 0)
    largest = U[np.arange(7), np.argmax(np.abs(U), axis=1)]
    assert np.all(largest > 0)
    np.testing.assert_allclose(U.T @ np.diag(lam) @ U, A, atol=1e-12)
    np.testing.assert_array_equal(adla.syevd(A)[0], U)           # deterministic


def test_syevd_float32_eigenvalues_match_float64():
    rng = np.random.default_rng(5)
    A = random_symmetric(rng, 60)
    lam64 = adla.syevd(A)[1]
    U32, lam32 = adla.syevd(A.astype(np.float32))
    assert lam32.dtype == np.float32
    scale = np.max(np.abs(lam64))
    assert np.max(np.abs(lam32 - lam64)) <= 60 * np.finfo(np.float32).eps * scale
    assert np.max(np.abs(U32 @ U32.T - np.eye(60))) <= 60 * np.finfo(np.float32).eps


def test_syevd_non_finite_input_fails_that_matrix():
    A = np.stack([np.eye(3)] * 3)
    A[1, 2, 0] = np.nan                           # lower triangle: read
    with pytest.raises(adla.LinAlgError, match=r"syevd.*\(1,\).*non-finite") as info:
        adla.syevd(A)
    assert info.value.indices == [(1,)]
    U, lam = adla.syevd(A, check=False)
    assert np.all(np.isnan(U[1])) and np.all(np.isnan(lam[1]))
    np.testing.assert_array_equal(lam[[0, 2]], 1.0)
    A[1, 2, 0], A[1, 0, 2] = 0.0, np.nan          # upper triangle: not read
    np.testing.assert_array_equal(adla.syevd(A)[1], 1.0)


def hard_symmetric_matrices(n, dtype):
    """Matrices that stress a symmetric eigensolver, by name."""
    rng = np.random.default_rng(n)
    S = random_symmetric(rng, n)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    grading = 10.0 ** -np.arange(n)
    big = np.finfo(dtype).max / (4 * n)
    zero_row = S.copy()
    zero_row[0] = zero_row[:, 0] = 0
    return {
        "random": S,
        "graded": S * np.outer(grading, grading),
        "graded_other_way": S * np.outer(grading[::-1], grading[::-1]),
        "diagonal_plus_tiny": np.diag(rng.standard_normal(n)) + 1e-12 * S,
        "wilkinson": (np.diag(np.abs(np.arange(n) - (n - 1) / 2)) + np.eye(n, k=1)
                      + np.eye(n, k=-1)),
        "three_eigenvalues": (Q * np.resize([1.0, 2.0, -3.0], n)) @ Q.T,
        "clustered": (Q * (1 + 1e-10 * rng.standard_normal(n))) @ Q.T,
        "zero_row": zero_row,
        "tridiagonal": np.diag(np.diag(S)) + np.diag(np.diag(S, 1), 1) + np.diag(np.diag(S, 1), -1),
        "rank_one": np.ones((n, n)),
        "antidiagonal": np.fliplr(np.eye(n)),
        "zero": np.zeros((n, n)),
        "huge": S / np.abs(S).max() * big,
        "tiny": S * np.finfo(dtype).tiny * 4,
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 5, 16, 32, 33])
def test_syevd_hard_matrices(n, dtype):
    """Backward stable (residual and orthogonality within a few n eps |A|), eigenvalues as
    LAPACK's to that accuracy, ascending and sign-normalised; n <= 32 runs the interleaved
    eigensolver, 33 LAPACK. All the matrices go in one batch, so the lanes of one block disagree
    on convergence."""
    matrices = hard_symmetric_matrices(n, dtype)
    A = np.stack(list(matrices.values())).astype(dtype)
    U, lam = adla.syevd(A)
    eps = np.finfo(dtype).eps
    for i, name in enumerate(matrices):
        A64, U64, lam64 = (x[i].astype(np.float64) for x in (A, U, lam))
        expected = np.linalg.eigvalsh(A64)
        scale = np.abs(expected).max() or 1.0
        tolerance = 4 * n * eps
        assert np.abs(U64.T @ np.diag(lam64) @ U64 - A64).max() <= tolerance * scale, name
        assert np.abs(U64 @ U64.T - np.eye(n)).max() <= tolerance, name
        assert np.abs(lam64 - expected).max() <= tolerance * scale, name
        assert np.all(np.diff(lam64) >= 0), name
        assert np.all(U64[np.arange(n), np.argmax(np.abs(U64), axis=1)] > 0), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_syevd_denormal_matrix(dtype):
    """Entries below the smallest normal number: scaled up (in two steps, one power of two
    would overflow) and back, so the eigenvalues keep the input's few significant digits."""
    S = random_symmetric(np.random.default_rng(3), 6)
    denormal = np.finfo(dtype).tiny / 2.0 ** (20 if dtype == np.float64 else 4)
    U, lam = adla.syevd((S * denormal).astype(dtype))
    expected = np.linalg.eigvalsh(S) * denormal
    np.testing.assert_allclose(lam, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(U @ U.T, np.eye(6), atol=100 * np.finfo(dtype).eps)


def test_syevd_result_does_not_depend_on_batch_neighbours():
    """The interleaved eigensolver works on 8 matrices at once: each result is the one the
    matrix gets alone, bit for bit, next to others that converge differently or fail."""
    matrices = list(hard_symmetric_matrices(7, np.float64).values())
    A = np.stack(matrices + matrices[:5])
    A[3, 5, 2] = np.nan
    A[12, 6, 6] = np.inf
    U, lam = adla.syevd(A, check=False)
    for i in range(len(A)):
        if i in (3, 12):
            assert np.all(np.isnan(U[i])) and np.all(np.isnan(lam[i]))
        else:
            alone = adla.syevd(A[i])
            np.testing.assert_array_equal(U[i], alone[0])
            np.testing.assert_array_equal(lam[i], alone[1])


# ---- det / slogdet / inverse ----------------------------------------------------------------

def adjugate_transpose(A):
    """Cofactor matrix by definition (signed minors)."""
    n = len(A)
    C = np.empty_like(A)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(A, i, axis=0), j, axis=1)
            C[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return C


def test_det_backward_is_the_adjugate_at_rank_n_minus_one_and_zero_below():
    A = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])    # rank 2
    d = adla.det(A)
    assert d == 0.0
    np.testing.assert_allclose(adla.det_backward(1.0, A, d), adjugate_transpose(A), atol=1e-12)
    rng = np.random.default_rng(6)
    low_rank = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 4))  # rank 2 of 4
    np.testing.assert_allclose(adla.det_backward(2.0, low_rank, 0.0), 0.0, atol=1e-12)
    B = rng.standard_normal((5, 4, 4))
    dA = adla.det_backward(np.arange(5.0), B, adla.det(B))
    expected = np.arange(5.0)[:, None, None] * np.linalg.det(B)[:, None, None] \
        * np.swapaxes(np.linalg.inv(B), -1, -2)
    np.testing.assert_allclose(dA, expected, rtol=1e-10, atol=1e-12)


def exact_adjugate_transpose(A):
    """Cofactor matrix of the float matrix ``A`` in exact rational arithmetic."""
    from fractions import Fraction

    def det(M):
        M, sign, total = [row[:] for row in M], 1, Fraction(1)
        for c in range(len(M)):
            pivot = next((r for r in range(c, len(M)) if M[r][c] != 0), None)
            if pivot is None:
                return Fraction(0)
            if pivot != c:
                M[c], M[pivot], sign = M[pivot], M[c], -sign
            total *= M[c][c]
            for r in range(c + 1, len(M)):
                factor = M[r][c] / M[c][c]
                M[r] = [x - factor * y for x, y in zip(M[r], M[c])]
        return sign * total

    exact = [[Fraction(float(x)) for x in row] for row in A]
    n = len(exact)
    return np.array([[(-1) ** (i + j) * float(det([r[:j] + r[j + 1:] for k, r in enumerate(exact)
                                                  if k != i])) for j in range(n)]
                     for i in range(n)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("smallest", [0.5, 1e-3, 1e-6, 1e-12, 0.0])
def test_det_backward_is_accurate_from_well_conditioned_to_singular(dtype, smallest):
    # A = X diag(s) Y^T with one small singular value: adj(A) is as well conditioned as s[:-1]
    # (LU route while the matrix is comfortably invertible, SVD route below: both must give
    # eps-level error relative to |adj(A)|, in both precisions).
    rng = np.random.default_rng(17)
    n = 5
    X, _ = np.linalg.qr(rng.standard_normal((n, n)))
    Y, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = ((X * np.array([2.0, 1.5, 1.0, 0.7, smallest])) @ Y.T).astype(dtype)
    expected = exact_adjugate_transpose(A)
    got = adla.det_backward(1.0, A, adla.det(A))
    assert got.dtype == dtype
    error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert error <= 50 * np.finfo(dtype).eps, error


def exact_cofactor_via_inverse(A):
    """det(A) A^-T in exact rational arithmetic (Gauss-Jordan): O(n^3), for orders where the
    n^2 minors of exact_adjugate_transpose would take minutes; A must be exactly invertible,
    as a float matrix almost surely is."""
    from fractions import Fraction
    n = len(A)
    M = [[Fraction(float(x)) for x in row] + [Fraction(int(i == j)) for j in range(n)]
         for i, row in enumerate(A)]
    det = Fraction(1)
    for c in range(n):
        pivot = next(r for r in range(c, n) if M[r][c] != 0)
        if pivot != c:
            M[c], M[pivot], det = M[pivot], M[c], -det
        det *= M[c][c]
        M[c] = [x / M[c][c] for x in M[c]]
        for r in range(n):
            if r != c and M[r][c] != 0:
                M[r] = [x - M[r][c] * y for x, y in zip(M[r], M[c])]
    return np.array([[float(det * M[j][n + i]) for j in range(n)] for i in range(n)])


@pytest.mark.parametrize("n, dtype, smallest", [(5, np.float64, (0.5, 1e-3, 1e-6, 1e-12, 0.0)),
                                                (5, np.float32, (0.5, 1e-3, 1e-6, 1e-12, 0.0)),
                                                (33, np.float64, (1e-3, 0.0))])
def test_det_backward_is_accurate_across_routes_in_one_batch(n, dtype, smallest):
    # The LU route and the SVD route chosen matrix by matrix within one batch: at order 5 in
    # one block of the interleaved kernel (its lanes falling back one by one), at 33 by LAPACK.
    rng = np.random.default_rng(n)
    A = []
    for s in smallest:
        X, _ = np.linalg.qr(rng.standard_normal((n, n)))
        Y, _ = np.linalg.qr(rng.standard_normal((n, n)))
        A.append((X * np.concatenate([np.linspace(2.0, 0.7, n - 1), [s]])) @ Y.T)
    A = np.array(A).astype(dtype)
    cotangent = np.array([1.5, -2.0, 0.25, 3.0, -0.5][:len(A)])   # each route scales by its own
    got = adla.det_backward(cotangent, A, adla.det(A))
    for a, g, c in zip(A, got, cotangent):
        expected = c * exact_cofactor_via_inverse(a)
        error = np.linalg.norm(g - expected) / np.linalg.norm(expected)
        assert error <= 50 * np.finfo(dtype).eps, error


def test_det_backward_is_exact_at_exactly_singular_matrices_in_a_batch():
    # Rank n-1 and rank 1 next to an invertible matrix in one interleaved block: the singular
    # lanes leave the LU route for the SVD adjugate, exact in integers.
    A = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
                  np.ones((3, 3)), [[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]]])
    cotangent = np.array([2.0, -3.0, 0.5])
    got = adla.det_backward(cotangent, A, adla.det(A))
    for a, g, c in zip(A, got, cotangent):
        np.testing.assert_allclose(g, c * exact_adjugate_transpose(a), rtol=0, atol=1e-13)


def test_singular_slogdet_and_its_non_finite_gradient():
    A = np.stack([np.eye(3), np.ones((3, 3))])
    sign, logabsdet = adla.slogdet(A)
    np.testing.assert_array_equal(sign, [1.0, 0.0])
    np.testing.assert_array_equal(logabsdet, [0.0, -np.inf])
    np.testing.assert_array_equal(adla.det(A), [1.0, 0.0])
    dA = adla.slogdet_backward(np.ones(2), A)                 # does not raise
    np.testing.assert_array_equal(dA[0], np.eye(3))
    assert not np.all(np.isfinite(dA[1]))


def test_zero_by_zero_determinant_is_one():
    assert adla.det(np.zeros((2, 0, 0))).tolist() == [1.0, 1.0]
    sign, logabsdet = adla.slogdet(np.zeros((0, 0)))
    assert sign.shape == () and sign == 1.0 and logabsdet == 0.0


def test_inverse_of_singular_matrix():
    A = np.stack([np.eye(2), np.ones((2, 2)), 2 * np.eye(2)])
    with pytest.raises(adla.LinAlgError, match=r"inverse.*\(1,\).*singular") as info:
        adla.inverse(A)
    assert info.value.indices == [(1,)]
    Ainv = adla.inverse(A, check=False)
    assert np.all(np.isnan(Ainv[1]))
    np.testing.assert_array_equal(Ainv[[0, 2]], [np.eye(2), 0.5 * np.eye(2)])


# ---- gelqf / geqrf ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 5), (3, 3), (2, 7)])
def test_gelqf_shapes_and_non_negative_diagonal(shape):
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2,) + shape)
    Q, L = adla.gelqf(A)
    m = shape[0]
    assert Q.shape == A.shape and L.shape == (2, m, m)
    assert np.all(np.diagonal(L, axis1=-2, axis2=-1) >= 0) and np.all(np.triu(L, 1) == 0)
    np.testing.assert_allclose(L @ Q, A, atol=1e-12)
    np.testing.assert_allclose(Q @ np.swapaxes(Q, -1, -2), np.broadcast_to(np.eye(m), L.shape),
                               atol=1e-12)
    Qt, R = adla.geqrf(np.swapaxes(A, -1, -2))
    np.testing.assert_allclose(Qt, np.swapaxes(Q, -1, -2), atol=1e-12)
    np.testing.assert_allclose(R, np.swapaxes(L, -1, -2), atol=1e-12)


# The interleaved kernel up to 16 columns, and up to 20 in a batch of 8 or more; the per-matrix
# one otherwise; and the rule composed of batched kernels (other backends').
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("n, nbatch", [(4, 3), (20, 3), (20, 11)])
def test_lq_and_qr_backward_raise_on_rank_deficiency(n, nbatch, fused, monkeypatch):
    from adla import _cpu
    if not fused:
        monkeypatch.setattr(_cpu, "orthogonal_backward", lambda *args, **kwargs: None)
    A = np.ones((nbatch, 2, n))
    A[0] = np.arange(2.0 * n).reshape(2, n) ** 2
    Q, L = adla.gelqf(A)
    L[1, 1, 1] = 0.0                              # exactly rank deficient
    L[2, 1, 1] = 0.0
    with pytest.raises(adla.LinAlgError, match=r"gelqf_backward.*\(1,\).*rank deficient") as info:
        adla.gelqf_backward(np.ones_like(Q), None, Q, L)
    assert info.value.indices == [(1,), (2,)]
    Qr, R = np.swapaxes(Q, -1, -2), np.swapaxes(L, -1, -2)
    with pytest.raises(adla.LinAlgError, match=r"geqrf_backward.*\(1,\)") as info:
        adla.geqrf_backward(None, np.ones_like(R), Qr, R)
    assert info.value.indices == [(1,), (2,)]


@pytest.mark.parametrize("shape", [(2, 130, 140), (2, 140, 130)])
def test_lq_and_qr_backward_above_the_triangle_leaf_agrees_with_the_composed_rule(shape,
                                                                                 monkeypatch):
    # Past order 128 the per-matrix kernel computes only the triangle of M that it reads.
    from adla import _cpu
    rng = np.random.default_rng(7)
    A = rng.standard_normal(shape)
    lq = shape[1] <= shape[2]
    forward, backward = (adla.gelqf, adla.gelqf_backward) if lq else (adla.geqrf,
                                                                       adla.geqrf_backward)
    Q, T = forward(A)
    dQ, dT = rng.standard_normal(Q.shape), rng.standard_normal(T.shape)
    fused = backward(dQ, dT, Q, T)
    monkeypatch.setattr(_cpu, "orthogonal_backward", lambda *args, **kwargs: None)
    np.testing.assert_allclose(fused, backward(dQ, dT, Q, T), rtol=1e-10,
                               atol=1e-10 * np.abs(fused).max())


def test_lq_and_qr_shape_errors():
    with pytest.raises(ValueError, match=r"adla\.gelqf: operand A .*rows.*\(4, 2\)"):
        adla.gelqf(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"adla\.geqrf: operand A .*\(2, 4\)"):
        adla.geqrf(np.ones((2, 4)))


def test_lq_non_finite_input_gives_nan_factors_only_there():
    A = np.ones((3, 2, 3)) + np.eye(2, 3)
    A[1, 0, 2] = np.inf
    Q, L = adla.gelqf(A)
    assert np.all(np.isnan(Q[1])) and np.all(np.isnan(L[1]))
    assert np.all(np.isfinite(Q[[0, 2]])) and np.all(np.isfinite(L[[0, 2]]))


# ---- diagonal and triangle helpers --------------------------------------------------------------

def test_triangle_packing_order():
    A = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(adla.extracttrian(A), [0, 4, 5, 8, 9, 10, 12, 13, 14, 15])
    np.testing.assert_array_equal(adla.extracttrian(A, lower=False),
                                  [0, 1, 5, 2, 6, 10, 3, 7, 11, 15])
    np.testing.assert_array_equal(adla.extracttrian(A, offset=-2), [8, 12, 13])
    np.testing.assert_array_equal(adla.extracttrian(A, offset=2), [2, 3, 7])
    for offset, lower in [(0, True), (0, False), (1, True), (-1, True), (-3, False)]:
        v = adla.extracttrian(A, offset=offset, lower=lower)
        back = adla.maketrian(v, offset=offset, lower=lower)
        np.testing.assert_array_equal(adla.extracttrian(back, offset=offset, lower=lower), v)


def test_diagonal_helpers_follow_numpy_offsets():
    A = np.arange(9.0).reshape(3, 3)
    for offset in (-3, -1, 0, 2, 4):
        np.testing.assert_array_equal(adla.extractdiag(A, offset=offset), np.diagonal(A, offset))
    np.testing.assert_array_equal(adla.makediag([1.0, 2.0], offset=-1), np.diag([1.0, 2.0], -1))
    for offset in (3, -2**40, 2**40):           # past the matrix, past a C int: empty parts
        assert adla.extractdiag(A, offset=offset).shape == (0,)
        assert adla.extracttrian(A, offset=offset).shape == (0,)
        assert adla.extractdiag_backward(np.ones(0), A, offset=offset).tolist() == [[0.0] * 3] * 3
    np.testing.assert_array_equal(adla.maketrian(np.ones(0), offset=-3), np.zeros((3, 3)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (1,)])
def test_large_single_matrices_of_zeros_with_a_part(dtype, batch):
    # One matrix past a MiB: its zeros are written by all threads before the part (zero_fill),
    # into memory the output cache hands back dirty from the call before.
    n = 600
    rng = np.random.default_rng(1)
    d = rng.standard_normal(batch + (n - 2,)).astype(dtype)
    v = rng.standard_normal(batch + (n * (n + 1) // 2,)).astype(dtype)
    for _ in range(2):
        dirty = adla.makediag(np.full(batch + (n,), 7.0, dtype))      # freed, then reused
        del dirty
        got = adla.makediag(d, offset=2)
        expected = np.zeros(batch + (n, n), dtype)
        rows = np.arange(n - 2)
        expected[..., rows, rows + 2] = d
        np.testing.assert_array_equal(got, expected)
        del got
        dirty = adla.maketrian(np.full(batch + (n * (n + 1) // 2,), 7.0, dtype))
        del dirty
        lower = adla.maketrian(v)
        np.testing.assert_array_equal(np.triu(lower, 1), 0)
        np.testing.assert_array_equal(adla.extracttrian(lower), v)


def test_helper_errors():
    with pytest.raises(ValueError, match=r"adla\.maketrian: operand v .*triangular number"):
        adla.maketrian(np.ones(4))
    with pytest.raises(TypeError, match=r"adla\.extractdiag: offset"):
        adla.extractdiag(np.eye(3), offset=0.5)
    with pytest.raises(ValueError, match=r"adla\.makediag: operand d"):
        adla.makediag(np.float64(1.0))


# ---- gesvd at repeated and zero singular values ------------------------------------------------

def with_singular_values(s, m, n, seed=0):
    """An m x n matrix with singular values ``s`` (zeros appended) and random singular vectors."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    U = np.linalg.qr(rng.standard_normal((m, k)))[0]
    V = np.linalg.qr(rng.standard_normal((n, k)))[0]
    return (U * np.pad(np.asarray(s, float), (0, k - len(s)))) @ V.T


SVD_CASES = {   # name: (matrix, groups of singular vectors spanning one singular subspace)
    "repeated_square": (with_singular_values([3, 3, 1], 3, 3), [[0, 1], [2]]),
    "repeated_tall": (with_singular_values([2, 2, 2, 0.5], 6, 4), [[0, 1, 2], [3]]),
    "repeated_wide": (with_singular_values([1.5, 1.5], 2, 5), [[0, 1]]),
    "rank_deficient_tall": (with_singular_values([2, 1], 5, 3), [[0], [1]]),
    "rank_deficient_wide": (with_singular_values([4], 3, 6), [[0]]),
    "distinct": (with_singular_values([3, 2, 1], 4, 3), [[0], [1], [2]]),
}


def fd(loss, A, E, h=1e-6):
    return (loss(A + h * E) - loss(A - h * E)) / (2 * h)


@pytest.mark.parametrize("name", list(SVD_CASES))
def test_gesvd_backward_is_finite_and_exact_for_singular_value_losses(name):
    A, _ = SVD_CASES[name]
    rng = np.random.default_rng(1)
    U, s, Vt = adla.gesvd(A)
    # Any cotangent: finite, also at repeated and zero singular values.
    dA = adla.gesvd_backward(rng.standard_normal(U.shape), rng.standard_normal(s.shape),
                             rng.standard_normal(Vt.shape), U, s, Vt)
    assert np.all(np.isfinite(dA))
    # sum(s^2) = |A|_F^2 is smooth everywhere: its gradient is 2 A.
    np.testing.assert_allclose(adla.gesvd_backward(None, 2 * s, None, U, s, Vt), 2 * A,
                               atol=1e-12)
    # sum(s^3 + s^2): symmetric in each subspace, smooth at zero singular values.
    loss = lambda X: np.sum(adla.gesvd(X)[1] ** 3 + adla.gesvd(X)[1] ** 2)     # noqa: E731
    dA = adla.gesvd_backward(None, 3 * s**2 + 2 * s, None, U, s, Vt)
    for _ in range(3):
        E = rng.standard_normal(A.shape)
        np.testing.assert_allclose(np.sum(dA * E), fd(loss, A, E), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(SVD_CASES))
def test_gesvd_backward_exact_for_singular_subspace_projectors(name):
    A, groups = SVD_CASES[name]
    rng = np.random.default_rng(2)
    m, n = A.shape
    U, s, Vt = adla.gesvd(A)
    for cols in groups:
        if np.min(s[cols]) < 1e-8:
            continue            # the null space's vectors: not a smooth function of A
        G, H = rng.standard_normal((m, m)), rng.standard_normal((n, n))

        def loss(X):            # <G, U_c U_c^T> + <H, V_c V_c^T> for the subspace's columns c
            Ux, _, Vtx = adla.gesvd(X)
            return (np.sum(G * (Ux[:, cols] @ Ux[:, cols].T))
                    + np.sum(H * (Vtx[cols].T @ Vtx[cols])))

        dU, dVt = np.zeros_like(U), np.zeros_like(Vt)
        dU[:, cols] = (G + G.T) @ U[:, cols]
        dVt[cols] = Vt[cols] @ (H + H.T)
        dA = adla.gesvd_backward(dU, None, dVt, U, s, Vt)
        assert np.all(np.isfinite(dA))
        for _ in range(3):
            E = rng.standard_normal(A.shape)
            np.testing.assert_allclose(np.sum(dA * E), fd(loss, A, E), rtol=1e-5, atol=1e-6)


def test_gesvd_sign_order_and_failures():
    A = np.random.default_rng(3).standard_normal((3, 4, 6))
    A[1, 2, 3] = np.nan
    U, s, Vt = adla.gesvd(A, check=False)
    assert np.isnan(U[1]).all() and np.isnan(s[1]).all() and np.isnan(Vt[1]).all()
    for i in (0, 2):
        assert np.all(np.diff(s[i]) <= 0) and np.all(s[i] >= 0)
        big = np.take_along_axis(Vt[i], np.abs(Vt[i]).argmax(axis=1)[:, None], axis=1)
        assert np.all(big > 0)
        np.testing.assert_allclose((U[i] * s[i]) @ Vt[i], A[i], atol=1e-13)
    with pytest.raises(adla.LinAlgError, match=r"batch index \(1,\) has a non-finite entry"):
        adla.gesvd(A)


@pytest.mark.parametrize("dtype, n", [(np.float64, 64), (np.float32, 80)])
def test_blocked_lq_and_qr_at_scaled_zero_and_rank_deficient_matrices(dtype, n):
    # The per-matrix blocked kernels factor their panels in vector loops where every column's
    # norm lies in a range that needs no scaling, and through LAPACK's geqr2 elsewhere: matrices
    # past both ends of the range, a first panel of tiny rows (LQ) in a normal matrix, a zero
    # row and column, and rank one all give orthonormal factors that reproduce A, and the
    # full-rank ones the triangle of NumPy's QR (up to the signs it leaves).
    from adla import _lapack
    assert not _lapack.interleaved(_lapack.GELQF, n, n, 0, 6,
                                   _lapack.FLAG_SINGLE if dtype == np.float32 else 0)
    rng = np.random.default_rng(5)
    big = 1e150 if dtype == np.float64 else 1e20
    A = rng.standard_normal((6, n, n))
    A[1] *= big
    A[2] /= big
    A[3, :, 5] = 0
    A[3, 7] = 0
    A[4] = np.outer(rng.standard_normal(n), rng.standard_normal(n))
    A[5, :8] *= 1e-120 if dtype == np.float64 else 1e-12
    A = A.astype(dtype)
    eps = np.finfo(dtype).eps
    for lq in (True, False):
        Q, T = adla.gelqf(A) if lq else adla.geqrf(A)
        for i in range(6):
            scale = np.abs(A[i]).max()
            product = T[i] @ Q[i] if lq else Q[i] @ T[i]
            np.testing.assert_allclose(product / scale, A[i] / scale, atol=20 * n * eps)
            gram = Q[i] @ Q[i].T if lq else Q[i].T @ Q[i]
            np.testing.assert_allclose(gram, np.eye(n), atol=20 * n * eps)
            assert np.all(np.diagonal(T[i]) >= 0)
            assert np.all((np.triu(T[i], 1) if lq else np.tril(T[i], -1)) == 0)
            if i in (0, 1, 2):
                R = np.linalg.qr((A[i].T if lq else A[i]).astype(np.float64), mode="r")
                np.testing.assert_allclose(np.abs(np.diagonal(T[i])), np.abs(np.diagonal(R)),
                                           rtol=100 * n * eps)


def test_lq_and_qr_interleaved_up_to_a_bound_that_depends_on_the_precision():
    # Interleaved in a batch that fills the lanes up to long side 48 in float64 and 64 in
    # float32 (where the kernel is faster than LAPACK's); the jvp in one kernel and the gradient
    # only up to 18 and 20 in either (the per-matrix kernels are faster above).
    from adla._cpu import K
    for op in (K.GELQF, K.GEQRF):
        assert K.interleaved(op, 3, 48, 0, 19) and not K.interleaved(op, 3, 49, 0, 19)
        assert K.interleaved(op, 3, 64, 0, 19, K.FLAG_SINGLE)
        assert not K.interleaved(op, 3, 65, 0, 19, K.FLAG_SINGLE)
    for precision in (0, K.FLAG_SINGLE):
        for op, bound in ((K.ORTHOGONAL_JVP, 18), (K.ORTHOGONAL_BACKWARD, 20)):
            assert K.interleaved(op, 3, bound, 0, 19, precision)
            assert not K.interleaved(op, 3, bound + 1, 0, 19, precision)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(6, 5), (5, 6), (9, 7), (7, 9), (32, 32), (40, 64), (64, 64)])
def test_gesvd_interleaved_at_zero_scaled_and_rank_deficient_matrices(dtype, shape):
    # The interleaved Jacobi kernel (from short side 6 on started from the eigenvectors of
    # A^T A) with its hand-over to LAPACK: a zero matrix and a zero row and column (directions
    # lost), entries near overflow and underflow (scaled lanes), rank 1.
    from adla import _lapack
    assert _lapack.interleaved(_lapack.GESVD, *shape, 0, 19)
    rng = np.random.default_rng(4)
    big = 1e300 if dtype == np.float64 else 1e30
    A = rng.standard_normal((19,) + shape)
    A[2] = 0
    A[5, :, 1] = 0
    A[5, 3] = 0
    A[7] *= big
    A[11] /= big
    A[13] = np.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1]))
    A = A.astype(dtype)
    U, s, Vt = adla.gesvd(A)
    eps, k = np.finfo(dtype).eps, min(shape)
    reference = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    for i in range(19):
        scale = max(np.abs(A[i]).max(), np.finfo(dtype).tiny)
        np.testing.assert_allclose(s[i], reference[i], rtol=0, atol=50 * eps * reference[i][0])
        np.testing.assert_allclose((U[i] * s[i]) @ Vt[i] / scale, A[i] / scale, atol=50 * eps)
        np.testing.assert_allclose(U[i].T @ U[i], np.eye(k), atol=50 * eps)
        np.testing.assert_allclose(Vt[i] @ Vt[i].T, np.eye(k), atol=50 * eps)
        assert np.all(np.diff(s[i]) <= 0)
        assert np.all(np.take_along_axis(Vt[i], np.abs(Vt[i]).argmax(1)[:, None], 1) > 0)


def test_gesv_singular_names_the_pivot_and_backward_gives_nan():
    A = np.stack([np.eye(3), np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]])])
    B = np.ones((2, 3, 2))
    with pytest.raises(adla.LinAlgError, match=r"batch index \(1,\) is singular: pivot \d of its LU"):
        adla.gesv(A, B)
    X = adla.gesv(A, B, check=False)
    assert np.isnan(X[1]).all() and np.allclose(X[0], 1.0)
    dA, dB = adla.gesv_backward(np.ones_like(B), A, B, X)
    assert np.isnan(dA[1]).all() and np.isnan(dB[1]).all()
    assert np.isfinite(dA[0]).all() and np.isfinite(dB[0]).all()
    with pytest.raises(ValueError, match=r"adla\.gesv: operand B must be a matrix"):
        adla.gesv(np.eye(3), np.ones(3))


@pytest.mark.parametrize("n, nbatch", [(3, 9), (70, 2)])      # interleaved; per matrix
@pytest.mark.parametrize("transpose", [False, True])
def test_gesv_backward_is_nan_exactly_where_its_solve_fails(n, nbatch, transpose):
    rng = np.random.default_rng(n)
    A = rng.standard_normal((nbatch, n, n)) + n * np.eye(n)
    B = rng.standard_normal((nbatch, n, 2))
    X = adla.gesv(A, B, transpose=transpose)
    A[1, :, 1] = 0.0                                   # singular: an exactly zero pivot
    dX = rng.standard_normal(X.shape)
    dA, dB = adla.gesv_backward(dX, A, B, X, transpose=transpose)
    assert np.isnan(dA[1]).all() and np.isnan(dB[1]).all()
    good = [i for i in range(nbatch) if i != 1]
    for i in good:
        dBi = np.linalg.solve(A[i] if transpose else A[i].T, dX[i])
        np.testing.assert_allclose(dB[i], dBi, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dA[i], -(X[i] @ dBi.T if transpose else dBi @ X[i].T),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [3, 8, 32, 33])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gesv_pivots_as_lapack_on_both_sides_of_the_interleaved_solver(n, transpose, dtype):
    # General matrices (pivoting needed), 19 per batch: two full blocks of lanes and a partial
    # one below order 33, a LAPACK call per matrix above. Backward error as LAPACK's tests
    # measure it, against NumPy's (LAPACK gesv) on the same matrices; the zero pivot that a
    # singular matrix fails on is the same position on both sides: A's own LU.
    rng = np.random.default_rng(n)
    A = rng.standard_normal((19, n, n)).astype(dtype)
    B = rng.standard_normal((19, n, 3)).astype(dtype)
    M = np.swapaxes(A, -1, -2) if transpose else A

    def backward_error(X):
        residual = np.linalg.norm((M.astype(np.float64) @ X - B), ord=np.inf, axis=(1, 2))
        scale = (np.linalg.norm(M, ord=np.inf, axis=(1, 2)) * np.linalg.norm(X, ord=np.inf, axis=(1, 2))
                 * n * np.finfo(dtype).eps)
        return residual / scale
    X = adla.gesv(A, B, transpose=transpose)
    assert X.dtype == dtype
    assert backward_error(X).max() <= max(4 * backward_error(np.linalg.solve(M, B)).max(), 0.5)
    A[5, :, 2] = 0                        # column 2 of A zero: A's LU fails at pivot 2
    A[11] = 0                             # pivot 0
    with pytest.raises(adla.LinAlgError, match=r"batch index \(5,\) is singular: pivot 2 of its LU") as error:
        adla.gesv(A, B, transpose=transpose)
    assert error.value.indices == [(5,), (11,)]
    X = adla.gesv(A, B, transpose=transpose, check=False)
    assert np.isnan(X[[5, 11]]).all() and np.isfinite(np.delete(X, [5, 11], axis=0)).all()


@pytest.mark.parametrize("leaf", [16, None])         # split down from order 33; the default
@pytest.mark.parametrize("n", [47, 130])
def test_recursive_lu_pivots_and_fails_as_getrf(leaf, n):
    # Above the leaf bound an LU splits in column halves, and an inverse from it in halves;
    # with general matrices rows swap across the halves. Against NumPy's LAPACK on the same
    # matrices: solutions, log-determinant and sign, inverse and the cofactor matrix; and a zero
    # column in the left or the right half fails at its own pivot.
    from adla import _cpu
    rng = np.random.default_rng(n)
    A = rng.standard_normal((3, n, n))
    B = rng.standard_normal((3, n, 5))
    previous = (_cpu.K.set_getrf_leaf(leaf), _cpu.K.set_getri_leaf(leaf)) if leaf else None
    try:
        for transpose in (False, True):
            M = np.swapaxes(A, -1, -2) if transpose else A
            np.testing.assert_allclose(adla.gesv(A, B, transpose=transpose),
                                       np.linalg.solve(M, B), rtol=1e-9, atol=1e-11)
        sign, logabs = adla.slogdet(A)
        expected_sign, expected_logabs = np.linalg.slogdet(A)
        np.testing.assert_array_equal(sign, expected_sign)
        np.testing.assert_allclose(logabs, expected_logabs, rtol=1e-12)
        inverse = np.linalg.inv(A)
        np.testing.assert_allclose(adla.inverse(A), inverse, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(adla.slogdet_backward(np.ones(3), A),
                                   np.swapaxes(inverse, 1, 2), rtol=1e-8, atol=1e-10)
        det = np.linalg.det(A)
        np.testing.assert_allclose(adla.det_backward(np.ones(3), A, det),
                                   det[:, None, None] * np.swapaxes(inverse, 1, 2), rtol=1e-7,
                                   atol=1e-10 * np.abs(det).max())
        for column in (3, n - 2):
            S = A.copy()
            S[1, :, column] = 0
            with pytest.raises(adla.LinAlgError, match=rf"batch index \(1,\) is singular: "
                                                       rf"pivot {column} of its LU"):
                adla.gesv(S, B)
    finally:
        if leaf:
            _cpu.K.set_getrf_leaf(previous[0])
            _cpu.K.set_getri_leaf(previous[1])


@pytest.mark.parametrize("n", [33, 70])                 # n * n: 1 and 4 entries past the 8s
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_gesv_and_inverse_find_a_non_finite_entry_anywhere_per_matrix(n, where):
    # The per-matrix kernels scan their operands eight entries at a time, then the rest.
    rng = np.random.default_rng(n)
    A = rng.standard_normal((2, n, n)) + n * np.eye(n)
    B = rng.standard_normal((2, n, 3))
    index = {"first": 0, "middle": n * n // 2 + 3, "last": n * n - 1}[where]
    for bad in (np.nan, np.inf):
        M = A.copy()
        M[1].flat[index] = bad
        for call in (lambda: adla.inverse(M), lambda: adla.gesv(M, B)):
            with pytest.raises(adla.LinAlgError, match=r"batch index \(1,\)"):
                call()
        C = B.copy()
        C[1].flat[{"first": 0, "middle": 3 * n // 2, "last": 3 * n - 1}[where]] = bad
        with pytest.raises(adla.LinAlgError, match=r"batch index \(1,\)"):
            adla.gesv(A, C)
        assert np.isnan(adla.slogdet(M)[1][1]) and np.isfinite(adla.slogdet(M)[1][0])

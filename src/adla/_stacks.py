"""Reshaping stacks ``(nbatch, rows, cols)`` for a batch whose other operand is shared.

When one operand of a product or triangular solve is shared by the whole batch (a stack of
length 1) and the other is not, the batch is one operation on the stacked matrices: ``op(A_b) B``
for every ``b`` is the matrix of all ``op(A_b)`` one below the other, times ``B``. That is one
BLAS call instead of one per matrix, and a sum over the batch of ``X_b^T Y_b`` is one product of
two stacked matrices. Written against the array module of the stacks, NumPy or CuPy; imported by
the backends and the rules alike, and importing nothing of adla.
"""


def stacked_rows(x, transposed=False):
    """The matrices of stack ``x`` (each transposed, if asked) one below the other, as a stack
    of one matrix ``(1, nbatch * rows, cols)``; a copy only where a transpose needs one."""
    y = x.transpose(0, 2, 1) if transposed else x
    return y.reshape(1, y.shape[0] * y.shape[1], y.shape[2])


def unstacked(rows, nbatch, transposed=False):
    """The inverse of :func:`stacked_rows`: ``(nbatch, rows, cols)``, C-contiguous."""
    y = rows.reshape(nbatch, rows.shape[1] // nbatch, rows.shape[2])
    if transposed:
        y = y.transpose(0, 2, 1)
    return y if y.flags.c_contiguous else y.copy()


def shared(*stacks):
    """Which of two stacks (0 or 1) is shared by a longer batch of the other, else None."""
    first, second = (s.shape[0] for s in stacks)
    if first == 1 and second > 1:
        return 0
    if second == 1 and first > 1:
        return 1
    return None


def summed_product(gemm, P, Q, transpose_p, transpose_q, *, nbatch, alpha=1.0, triangle=None):
    """``alpha * sum_b op(P_b)^T op(Q_b)`` over a batch of ``nbatch`` as one product of the
    stacked ``op(P_b)`` and ``op(Q_b)`` (``op`` transposes where asked; stacks of length 1 are
    broadcast), through a backend's ``gemm``: ``(1, cols of op(P), cols of op(Q))``. The
    gradient of an operand shared by the batch, without a gradient per matrix to sum."""
    P, Q = (x.repeat(nbatch, axis=0) if x.shape[0] != nbatch else x for x in (P, Q))
    return gemm(stacked_rows(P, transpose_p), stacked_rows(Q, transpose_q), transpose_a=True,
                alpha=alpha, triangle=triangle)

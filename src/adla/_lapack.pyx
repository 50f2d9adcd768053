# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""CPU kernels of adla: one batch driver over per-matrix kernels built on BLAS/LAPACK and, for
batches of small matrices, interleaved kernels that take LANES matrices per call without BLAS
(kernels/*.pxi, one file per family, included here; ``plan`` picks one or the other per job).

Every operand is a C-ordered stack ``(nbatch, rows, cols)`` (or ``(1, rows, cols)`` for an operand
broadcast across the batch). BLAS/LAPACK are column-major, so a row-major ``r x c`` matrix is, to
them, its ``c x r`` transpose: each kernel calls the routine for the transposed problem (swapped
sides, flipped ``uplo`` and ``trans``) instead of copying data into Fortran order.

Kernels return a status per matrix: 0 on success, ``NONFINITE`` when an entry they read is not
finite, and otherwise the 1-based LAPACK-style ``info`` (order of the failing leading minor for
``potrf``, position of a zero diagonal entry for the triangular solvers). Turning status into
exceptions is the Python front end's job; kernels never touch the GIL.
"""
from cython cimport floating
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free
from libc.float cimport DBL_EPSILON, DBL_MIN, FLT_EPSILON, FLT_MIN
from libc.math cimport fabs, frexp, ldexp, log, sqrt, NAN, INFINITY
cimport numpy as cnp
cimport openmp
cimport scipy.linalg.cython_blas as blas
cimport scipy.linalg.cython_lapack as lapack

import numpy as np

cnp.import_array()

# Operation codes and flags: the Python backend (_cpu.py) passes these in.
cdef enum:
    OP_GEMM = 0
    OP_SYRK = 1
    OP_TRMM = 2
    OP_TRSM = 3
    OP_POTRF = 4
    OP_POTRI = 5
    OP_POTRS = 6
    OP_GELQF = 7
    OP_GEQRF = 8
    OP_SYEVD = 9
    OP_INVERSE = 10
    OP_SLOGDET = 11
    OP_COFACTOR = 12
    OP_POTRF_BACKWARD = 13
    OP_SYEVD_BACKWARD = 14
    OP_TRSM_BACKWARD = 15
    OP_ORTHOGONAL_BACKWARD = 16
    OP_SYRK_BACKWARD = 17
    OP_GEMM_BACKWARD = 18
    MAX_OPERANDS = 6
    SMALL = 32          # matrices up to this order use the interleaved kernels, not BLAS/LAPACK
    SMALL_DENSE = 16    # the same for trsm, trmm, gelqf, geqrf and their gradients (both sides)
    SMALL_GEMM = 8      # and for gemm whose columns are no multiple of 4 (small_product's blocks)
    SMALL_PRODUCT = 32  # other gemm and syrk up to this size: small_product, not BLAS
    EIGEN_SWEEPS = 30   # QL sweeps allowed per eigenvalue before a matrix fails (steqr: 30 n in all)
    LANES = 8           # matrices per interleaved kernel call

cdef enum:
    TRANS_A = 1
    TRANS_B = 2
    RIGHT = 4
    LOWER = 8
    TRIANGLE = 16       # gemm: keep only the triangle of the result that LOWER names
    WITH_C = 32         # gemm_backward: there is a C, and dC = beta dD is wanted

cdef enum:
    NONFINITE = -1
    NO_MEMORY = -2

GEMM, SYRK, TRMM, TRSM, POTRF, POTRI, POTRS = OP_GEMM, OP_SYRK, OP_TRMM, OP_TRSM, OP_POTRF, OP_POTRI, OP_POTRS
GELQF, GEQRF, SYEVD, INVERSE, SLOGDET, COFACTOR = (OP_GELQF, OP_GEQRF, OP_SYEVD, OP_INVERSE,
                                                   OP_SLOGDET, OP_COFACTOR)
POTRF_BACKWARD, SYEVD_BACKWARD, TRSM_BACKWARD = (OP_POTRF_BACKWARD, OP_SYEVD_BACKWARD,
                                                 OP_TRSM_BACKWARD)
ORTHOGONAL_BACKWARD, SYRK_BACKWARD = OP_ORTHOGONAL_BACKWARD, OP_SYRK_BACKWARD
GEMM_BACKWARD = OP_GEMM_BACKWARD


def max_threads():
    """The number of threads a parallel batch would use now: OpenMP's setting (OMP_NUM_THREADS,
    threadpoolctl), though the batch runs on adla's own pool (_pool.h)."""
    return openmp.omp_get_max_threads()


cdef extern from *:
    """
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int adla_cpu_has_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");   /* checks the OS saves AVX state too */
    }
    #else
    static int adla_cpu_has_avx2(void) { return 0; }
    #endif
    """
    int adla_cpu_has_avx2() noexcept nogil


def cpu_has_avx2():
    """Whether this CPU (and OS) runs AVX2 code, that is, the ``_lapack_avx2`` build."""
    return adla_cpu_has_avx2() != 0


FLAG_TRANS_A, FLAG_TRANS_B, FLAG_RIGHT, FLAG_LOWER = TRANS_A, TRANS_B, RIGHT, LOWER
FLAG_TRIANGLE, FLAG_WITH_C = TRIANGLE, WITH_C
STATUS_NONFINITE = NONFINITE
STATUS_NO_MEMORY = NO_MEMORY

ctypedef struct Job:
    int op
    int flags
    Py_ssize_t work     # scratch elements each thread gets (kernels must not share scratch)
    int lanes           # matrices per kernel call: 1, or LANES for the interleaved kernels
    int m          # rows of the result
    int n          # columns of the result
    int k          # inner dimension (gemm, syrk)
    double alpha
    double beta
    int lwork      # LAPACK workspace (elements) at the start of the scratch, per-matrix kernels
    int liwork     # and the int workspace after it (plan_workspace)


# ---- kernels, by family (kernels/*.pxi) --------------------------------------------------------
# Per-matrix kernels (``*_one``) have row-major semantics; operand order in p[] is the order of
# the backend call's arguments, output last.
# Interleaved kernels (``*_lanes``), for batches of small matrices: a LAPACK call per 4 x 4
# matrix costs more than its arithmetic, and a scalar loop is bound by
# the latency of its sqrt/divide chain. These kernels take LANES matrices at once, element e of
# lane v stored at w[e * LANES + v], so that every operation is a fixed-length loop over lanes
# the compiler turns into vector instructions. A short last block repeats its last matrix in
# the spare lanes; their results are not written back.

include "kernels/wrappers.pxi"
include "kernels/helpers.pxi"
include "kernels/lanes.pxi"
include "kernels/products.pxi"
include "kernels/triangular.pxi"
include "kernels/cholesky.pxi"
include "kernels/orthogonal.pxi"
include "kernels/eigen.pxi"
include "kernels/lu.pxi"


# ---- the one batch driver ---------------------------------------------------------------------

cdef inline int run_one(const Job* job, floating** p, floating* work) noexcept nogil:
    if job.op == OP_GEMM:
        return gemm_one(job, p, work)
    if job.op == OP_SYRK:
        return syrk_one(job, p, work)
    if job.op == OP_TRMM:
        return trmm_one(job, p)
    if job.op == OP_TRSM:
        return trsm_one(job, p)
    if job.op == OP_POTRF:
        return potrf_one(job, p)
    if job.op == OP_POTRI:
        return potri_one(job, p)
    if job.op == OP_POTRS:
        return potrs_one(job, p)
    if job.op == OP_GELQF or job.op == OP_GEQRF:
        return orthogonal_factor(job, p, job.op == OP_GELQF, work)
    if job.op == OP_SYEVD:
        return syevd_one(job, p, work)
    if job.op == OP_INVERSE:
        return inverse_one(job, p, work)
    if job.op == OP_SLOGDET:
        return slogdet_one(job, p, work)
    if job.op == OP_POTRF_BACKWARD:
        return potrf_backward_one(job, p, work)
    if job.op == OP_SYEVD_BACKWARD:
        return syevd_backward_one(job, p, work)
    if job.op == OP_TRSM_BACKWARD:
        return trsm_backward_one(job, p, work)
    if job.op == OP_SYRK_BACKWARD:
        return syrk_backward_one(job, p, work)
    if job.op == OP_GEMM_BACKWARD:
        return gemm_backward_one(job, p, work)
    return cofactor_one(job, p, work)

cdef inline void run_lanes(const Job* job, floating** p, int count, floating* work,
                           int* status) noexcept nogil:
    if job.op == OP_POTRF:
        potrf_lanes(job, p, count, work, status)
    elif job.op == OP_GEMM:
        gemm_lanes(job, p, count, work, status)
    elif job.op == OP_TRSM or job.op == OP_TRMM:
        triangular_lanes(job, p, count, work, status, job.op == OP_TRSM)
    elif job.op == OP_TRSM_BACKWARD:
        trsm_backward_lanes(job, p, count, work, status)
    elif job.op == OP_GELQF or job.op == OP_GEQRF:
        orthogonal_lanes(job, p, count, work, status, job.op == OP_GELQF)
    elif job.op == OP_ORTHOGONAL_BACKWARD:
        orthogonal_backward_lanes(job, p, count, work, status)
    elif job.op == OP_POTRF_BACKWARD:
        potrf_backward_lanes(job, p, count, work, status)
    elif job.op == OP_SYEVD:
        eigen_lanes(job, p, count, work, status)

cdef void run_block(const Job* job, floating** base, const Py_ssize_t* step, int noperands,
                    Py_ssize_t nbatch, Py_ssize_t block, floating* work,
                    int* status) noexcept nogil:
    # Block ``block`` of job.lanes matrices. Pointers live on this call's stack: each thread
    # has its own.
    cdef floating* p[MAX_OPERANDS * LANES]
    cdef int lane_status[LANES]
    cdef Py_ssize_t first = block * job.lanes, b
    cdef int i, v, count
    if work == NULL:
        for b in range(first, min(first + job.lanes, nbatch)):
            status[b] = NO_MEMORY
        return
    if job.lanes == 1:
        for i in range(noperands):
            p[i] = base[i] + first * step[i] if base[i] != NULL else NULL
        status[first] = run_one(job, p, work)
        return
    count = <int>min(<Py_ssize_t>LANES, nbatch - first)
    for i in range(noperands):
        for v in range(LANES):
            b = first + (v if v < count else count - 1)     # spare lanes repeat the last matrix
            p[i * LANES + v] = base[i] + b * step[i] if base[i] != NULL else NULL
    for v in range(LANES):
        lane_status[v] = 0
    run_lanes(job, p, count, work, lane_status)
    for v in range(count):
        status[first + v] = lane_status[v]

ctypedef struct Batch:
    # One call's batch, as the thread pool's chunks see it.
    const Job* job
    void** base
    const Py_ssize_t* step
    int noperands
    Py_ssize_t nbatch
    int* status

cdef extern from "_pool.h":
    ctypedef void (*adla_chunk_fn)(void* ctx, Py_ssize_t first, Py_ssize_t last,
                                   void** scratch) noexcept nogil
    void adla_parallel_for(adla_chunk_fn run, void* ctx, Py_ssize_t nblocks,
                           int threads) noexcept nogil

cdef inline void run_blocks(floating* kind, Batch* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    # Blocks [first, last); the participant's scratch is allocated at its first chunk.
    cdef Py_ssize_t block
    if scratch[0] == NULL:
        scratch[0] = malloc((batch.job.work + 1) * sizeof(floating))
    for block in range(first, last):
        run_block(batch.job, <floating**>batch.base, batch.step, batch.noperands, batch.nbatch,
                  block, <floating*>scratch[0], batch.status)

cdef void run_blocks_double(void* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    run_blocks(<double*>NULL, <Batch*>batch, first, last, scratch)

cdef void run_blocks_float(void* batch, Py_ssize_t first, Py_ssize_t last,
                           void** scratch) noexcept nogil:
    run_blocks(<float*>NULL, <Batch*>batch, first, last, scratch)

cdef void drive(const Job* job, void** base, const Py_ssize_t* step, int noperands,
                Py_ssize_t nbatch, int* status, bint is_double, int threads) noexcept nogil:
    # Matrices share no memory, so the blocks run in parallel on up to ``threads`` threads
    # (_pool.h: the calling thread and the pool's helpers, each with its own scratch).
    cdef Batch batch
    batch.job, batch.base, batch.step, batch.noperands = job, base, step, noperands
    batch.nbatch, batch.status = nbatch, status
    adla_parallel_for(run_blocks_double if is_double else run_blocks_float, &batch,
                      (nbatch + job.lanes - 1) // job.lanes, threads)


cdef void plan(Job* job) noexcept nogil:
    """Pick the interleaved kernels (job.lanes = LANES) where they exist for this size, and the
    scratch each thread needs for them."""
    cdef Py_ssize_t n = job.n, nn = n * n
    job.lanes, job.work = 1, 0
    if job.op == OP_SYEVD_BACKWARD:
        job.work = 2 * nn
    if job.op == OP_SYRK_BACKWARD:
        job.work = <Py_ssize_t>job.m * job.m
    if (job.op == OP_GEMM or job.op == OP_SYRK) and direct(job):
        job.work = <Py_ssize_t>job.n * job.k       # op(B), or A^T, transposed
    if job.op == OP_TRSM_BACKWARD:
        job.work = <Py_ssize_t>job.m * job.n       # its gemm's transposed operand
    if job.op == OP_GEMM_BACKWARD:
        job.work = max(<Py_ssize_t>job.m * job.n, max(job.m, job.n) * <Py_ssize_t>job.k)
    if job.op == OP_POTRF and n <= SMALL:
        job.lanes, job.work = LANES, nn * LANES
    elif job.op == OP_POTRF_BACKWARD and n <= SMALL:
        job.lanes, job.work = LANES, 2 * nn * LANES
    elif job.op == OP_GEMM and job.m <= SMALL_GEMM and job.n <= SMALL_GEMM \
            and job.k <= SMALL_GEMM and job.n % 4 != 0:
        job.lanes = LANES
        job.work = <Py_ssize_t>(job.m * job.k + job.n * job.k + job.m * job.n) * LANES
    elif (job.op == OP_TRSM or job.op == OP_TRMM or job.op == OP_TRSM_BACKWARD) \
            and job.m <= SMALL_DENSE and job.n <= SMALL_DENSE:
        job.lanes, job.work = LANES, <Py_ssize_t>2 * (job.m + job.n) * (job.m + job.n) * LANES
    elif (job.op == OP_GELQF or job.op == OP_GEQRF) and job.m <= SMALL_DENSE \
            and job.n <= SMALL_DENSE and job.m > 0 and job.n > 0:
        job.lanes, job.work = LANES, <Py_ssize_t>2 * job.m * job.n * LANES
    elif job.op == OP_ORTHOGONAL_BACKWARD and job.m <= SMALL_DENSE and job.n <= SMALL_DENSE:
        job.lanes, job.work = LANES, <Py_ssize_t>5 * job.m * job.n * LANES
    elif job.op == OP_SYEVD and 0 < n <= SMALL:
        job.lanes, job.work = LANES, 2 * nn * LANES


cdef inline int ints_in(floating* kind, Py_ssize_t count) noexcept nogil:
    # Scratch elements that hold ``count`` ints.
    return <int>((count * sizeof(int) + sizeof(floating) - 1) // sizeof(floating))

cdef void plan_workspace(floating* kind, Job* job) noexcept nogil:
    """The scratch of the per-matrix kernels that call LAPACK, its workspace queries answered
    once here for the whole batch (the kernels allocate nothing)."""
    cdef int n = job.n, m = job.m, r, lq
    cdef Py_ssize_t nn = <Py_ssize_t>n * n
    cdef floating query = 0, query2 = 0
    cdef floating dummy[1]
    cdef int iquery = 0
    job.lwork, job.liwork = 0, 0
    r = min(m, n) if job.op == OP_GELQF or job.op == OP_GEQRF else n
    if job.lanes > 1 or r == 0:       # the kernels return before any LAPACK call at order 0
        return
    dummy[0] = 0
    if job.op == OP_POTRF_BACKWARD:
        job.work = nn
    elif job.op == OP_SYEVD:
        xsyevd(n, dummy, max(n, 1), dummy, &query, -1, &iquery, -1)
        job.lwork = workspace_size(query, 1 + 6 * n + 2 * n * n)
        job.liwork = iquery if iquery > 3 + 5 * n else 3 + 5 * n
        job.work = job.lwork + ints_in(kind, job.liwork)
    elif job.op == OP_INVERSE:
        xgetri(n, dummy, max(n, 1), NULL, &query, -1)
        job.lwork = workspace_size(query, n)
        job.work = job.lwork + ints_in(kind, n)
    elif job.op == OP_SLOGDET:
        job.work = nn + ints_in(kind, n)
    elif job.op == OP_COFACTOR:
        xgesdd(n, dummy, NULL, NULL, NULL, &query, -1, NULL)
        job.lwork = workspace_size(query, 5 * n * n + 7 * n)
        job.work = 3 * nn + 2 * n + job.lwork + ints_in(kind, 8 * n)
    elif job.op == OP_GELQF or job.op == OP_GEQRF:
        lq = job.op == OP_GELQF
        r = m if lq else n            # the triangular factor's order (m <= n for LQ)
        if lq:
            xgeqrf(n, m, dummy, max(n, 1), NULL, &query, -1)
            xorgqr(n, m, m, dummy, max(n, 1), NULL, &query2, -1)
        else:
            xgelqf(n, m, dummy, max(n, 1), NULL, &query, -1)
            xorglq(n, m, n, dummy, max(n, 1), NULL, &query2, -1)
        job.lwork = workspace_size(query if query > query2 else query2, n if lq else m)
        job.work = job.lwork + r


cdef Job planned(int op, int m, int n, int k) noexcept nogil:
    cdef Job job
    job.op, job.flags, job.m, job.n, job.k = op, 0, m, n, k
    plan(&job)
    return job


def interleaved(int op, int m, int n, int k=0):
    """Whether kernel ``op`` runs interleaved at this size (no BLAS/LAPACK call)."""
    return planned(op, m, n, k).lanes > 1


def calls_blas(int op, int m, int n, int k=0):
    """Whether kernel ``op`` may call BLAS/LAPACK at this size (not interleaved, no direct loops)."""
    cdef Job job = planned(op, m, n, k)
    if job.lanes > 1:
        return False
    return not (op in (OP_GEMM, OP_SYRK, OP_GEMM_BACKWARD, OP_SYRK_BACKWARD) and direct(&job))


def run(int op, tuple inputs, tuple outputs, int m, int n, int k=0, int flags=0,
        double alpha=1.0, double beta=0.0, bint threaded=False):
    """Run kernel ``op`` over a batch; return the int32 status of each matrix.

    ``inputs`` and ``outputs`` are C-contiguous stacks ``(nbatch, ...)`` of one float dtype (an
    input may be None when optional, or have length 1 to be broadcast over the batch); kernels see
    them in that order, outputs last. ``m``, ``n``: rows and columns of the result; ``k``: inner
    dimension. ``threaded``: run the batch on the thread pool (callers keep BLAS single-threaded
    meanwhile). Callers validate shapes.
    """
    cdef void* base[MAX_OPERANDS]
    cdef Py_ssize_t step[MAX_OPERANDS]
    cdef Job job
    cdef cnp.ndarray a
    cdef int i
    cdef Py_ssize_t nbatch
    operands = inputs + outputs
    cdef int noperands = len(operands)
    dtype = outputs[0].dtype
    cdef bint is_double = dtype == np.float64
    if noperands > MAX_OPERANDS:
        raise ValueError("too many operands")
    if not is_double and dtype != np.float32:
        raise TypeError(f"kernel dtype must be float32 or float64, got {dtype}")
    lengths = []
    for i in range(noperands):
        if operands[i] is None:
            base[i] = NULL
            step[i] = 0
            continue
        a = operands[i]
        if a.ndim < 1 or not a.flags.c_contiguous or a.dtype != dtype:
            raise ValueError("kernel operands must be C-contiguous stacks of one dtype")
        if i >= len(inputs) and not a.flags.writeable:
            raise ValueError("kernel outputs must be writeable")
        base[i] = cnp.PyArray_DATA(a)
        step[i] = 0 if a.shape[0] <= 1 else a.size // a.shape[0]
        lengths.append(a.shape[0])
    # Stacks have the batch length or 1 (broadcast); a zero-length stack empties the batch.
    nbatch = 0 if 0 in lengths else max(lengths)
    if any(o.shape[0] != nbatch for o in outputs) or any(n not in (1, nbatch) for n in lengths):
        raise ValueError("kernel operands disagree on the batch length")
    job.op, job.flags, job.m, job.n, job.k, job.alpha, job.beta = op, flags, m, n, k, alpha, beta
    plan(&job)
    if is_double:
        plan_workspace(<double*>NULL, &job)
    else:
        plan_workspace(<float*>NULL, &job)
    if op == OP_ORTHOGONAL_BACKWARD and job.lanes == 1:
        raise ValueError("the fused LQ/QR gradient exists for small matrices only")
    status = np.zeros(nbatch, dtype=np.intc)
    cdef int[::1] status_view = status
    if nbatch == 0:
        return status
    cdef int threads = openmp.omp_get_max_threads() if threaded else 1
    with nogil:
        drive(&job, base, step, noperands, nbatch, &status_view[0], is_double, threads)
    return status

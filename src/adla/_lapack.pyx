# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""CPU kernels of adla: one batch driver over per-matrix kernels built on BLAS/LAPACK and, for
batches of small matrices, interleaved kernels that take LANES matrices per call without BLAS
(kernels/*.pxi, one file per family, included here). The operator table below names, for each
operation, its planner (which of the two runs at a given size, and the scratch it needs) and
its kernels; the driver reads only the table.

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
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.float cimport DBL_EPSILON, DBL_MIN, FLT_EPSILON, FLT_MIN
from libc.math cimport copysign, exp, fabs, frexp, ldexp, log, sqrt, NAN, INFINITY
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
    OP_GESVD = 19
    OP_GESV = 20
    OP_POTRF_JVP = 21
    OP_SYEVD_TANGENT = 22
    OP_TRSM_JVP = 23
    OP_GESVD_BACKWARD = 24
    OP_GESVD_TANGENT = 25
    OP_POTRS_BACKWARD = 26
    OP_POTRI_BACKWARD = 27
    OP_ORTHOGONAL_JVP = 28
    OP_GEMM_JVP = 29
    OP_GESV_JVP = 30
    OP_EXTRACT_PART = 31
    OP_EMBED_PART = 32
    OP_ORTHOGONAL_TANGENT = 33
    OP_TRMM_BACKWARD = 34
    OP_SANDWICH = 35
    NOPS = 36
    MAX_OPERANDS = 8
    SMALL = 32          # matrices up to this order use the interleaved kernels, not BLAS/LAPACK
    CHOLESKY_LANES_MAX = 192    # the Cholesky kernels interleaved for batches up to this order
    CHOLESKY_SOLVE_LANES_MAX = 32   # potrs and potri (order and right-hand sides) up to this
    POTRI_LANES_MAX = 160           # and potri up to this, for a batch that fills the lanes
    CHOLESKY_GRADIENT_LANES_BELOW = 24  # (potri_backward, and potrs with POTRS_LANES_WIDE
    POTRS_LANES_WIDE = 16               # or more right-hand sides, only below this order)
    SMALL_DENSE = 16    # the same for trsm, trmm, gelqf, geqrf and their gradients (both sides)
    TRMM_LANES_MAX = 24     # trmm interleaved for batches up to this (where a product runs short:
    TRMM_PRODUCT_MIN = 8        # order and right-hand sides below this,
    TRMM_PRODUCT_COLUMNS = 4    # or right-hand sides below this),
    TRSM_LANES_MAX = 20     # and trsm and its rules (the gradient only below order
    TRSM_GRADIENT_LANES_BELOW = 12  # this, or with fewer than SOLVE_ROWS_MIN right-hand sides)
    POTRS_FMA_LANES_BELOW = 16  # where the solves' FMA leaves run, float64 potrs per matrix
                                # from this order (with POTRS_LANES_WIDE right-hand sides)
    TRSM_SHARED_MAX = 128   # trsm/trmm with one triangle for a batch: interleaved up to this order
    TRSM_SHARED_COLUMNS = 64    # and this many right-hand sides per matrix,
    TRSM_SHARED_VECTOR_MAX = 48     # up to this order for one right-hand side (trmm: TRMM_LANES_MAX)
    ORTHOGONAL_LANES_MAX = 20   # the gelqf/geqrf gradient interleaved for batches up to this,
    ORTHOGONAL_JVP_LANES_MAX = 18   # the jvp (factors and tangent in one kernel) up to this,
    ORTHOGONAL_FACTOR_LANES_MAX = 48    # and the factorisation up to this (both sides),
    ORTHOGONAL_FACTOR_LANES_MAX_SINGLE = 64     # in float32 up to this; the per-lane arrays'
    ORTHOGONAL_ORDER_MAX = 64   # order (orthogonal.pxi)
    SMALL_GEMM = 8      # and for gemm whose columns are no multiple of 4 (small_product's blocks)
    GEMM_LANES_WORK = 100   # with at most this many multiply-adds per product
    SMALL_PRODUCT = 32  # other gemm and syrk up to this size: small_product, not BLAS,
    SMALL_PRODUCT_AVX512 = 8    # but gemm only up to this on CPUs with AVX-512 (see below)
    SYRK_GEMM_MIN = 12  # and syrk of a large batch through ?gemm there from this order
    TRIANGLE_PRODUCT_LEAF = 128     # gemm's triangle: whole products up to this, panels above,
    TRIANGLE_PANEL = 192            # of this many columns
    CONGRUENCE_LEAF = 64    # the Cholesky rules' T^-1 S T^-T: two solves up to this, halves above
    TRANSPOSED_B_MAX = 96   # gemm through BLAS up to this size: a transposed B copied out first
    FMA_PRODUCT_MAX = 256   # batches of products (gemm, syrk, trmm, their rules) up to this
    FMA_ORDER_MIN = 48      # order and from this one (float64 batches on Intel CPUs: from
    FMA_BATCH_ORDER_MIN = 20    # this one), past STREAM_BYTES of operands, through
    STREAM_BYTES = 16 << 20     # _fma_product.h with AVX-512 (products.pxi, fma_stream)
    FUSED_TANGENT_MAX = 24  # gemm_jvp's tangent in one such pass up to this (plan_gemm_jvp)
    SERIAL_PRODUCT_WORK = 3 << 19   # a batch of products through BLAS below this nbatch m n k
                                    # runs on the calling thread (products.pxi, use_blas)
    EIGEN_LANES_MAX = 96    # syevd interleaved for batches that fill the lanes up to this
    EIGEN_DIRECT_MAX = 24   # syevd's gradient and tangent in direct loops up to this at least
                            # (eigen_direct_max)
    EIGEN_SWEEPS = 30   # QL sweeps allowed per eigenvalue before a matrix fails (steqr: 30 n in all)
    SMALL_SOLVE = 32    # gesv with order and right-hand sides up to this: interleaved,
    SOLVE_LANES_MAX = 64    # and for batches that fill the lanes up to this order (with up to
    SOLVE_LANES_SQUARE = 40     # SMALL_SOLVE right-hand sides, or both up to this), and up to
    SOLVE_LANES_THIN = 16   # LU_LANES_MAX with up to this many for batches that fill them on
                            # every thread
    SMALL_INVERSE = 32  # inverse and slogdet up to this order: interleaved,
    SVD_LANES_MAX = 64  # gesvd with both sides up to this: interleaved (at most EIGEN_LANES_MAX:
                        # the Jacobi SVD starts with the eigensolver's lane kernels at order k),
    SVD_LANES_LONG = 1024   # and for batches that fill the lanes a long side up to this
    SVD_SWEEPS = 30     # Jacobi sweeps before a lane goes to LAPACK instead
    SVD_PRECONDITION = 6   # from this short side on, Jacobi starts from G^T G's eigenvectors
    SVD_COS_MAX = 8     # and rotates a pair of columns until |cos| <= eps min(sqrt(long side), this)
    HOUSEHOLDER_BLOCK = 16  # gelqf/geqrf per matrix: panels of up to this many columns (half
    HOUSEHOLDER_NARROW_MAX = 128    # as many up to this order, float32 up to the next;
    HOUSEHOLDER_NARROW_SINGLE_MAX = 64  # orthogonal.pxi), blocked for
    HOUSEHOLDER_MIN = 32    # short sides from this one
    HOUSEHOLDER_MAX = 512   # up to this one (LAPACK, on its threads, faster from 1000)
    COMPACT_HOUSEHOLDER_MIN = 128   # gelqf/geqrf through LAPACK: geqrt (compact WY) from this
                                    # short side on, geqrf + orgqr below (orthogonal.pxi)
    LU_LANES_FULL = 64  # inverse, det and slogdet for a batch that fills the lanes up to this,
    LU_LANES_MAX = 128  # and up to this one for a batch that fills them on every thread (lu.pxi);
                        # the LU kernels' per-lane arrays
    LANES = 8           # matrices per interleaved kernel call
    TRSM_LEAF = 64      # trsm_recursive splits triangles above this order (?trsm leaves),
    SOLVE_ROWS_LEAF = 16    # or above this one where its leaves run solve_rows: a row-major
    SOLVE_ROWS_MIN = 8      # solve on the left with at least this many right-hand sides
    SOLVE_ROWS_MAX = 1024   # and at most this many (more: a folded batch, ?trsm's threads)
    SOLVE_COLUMNS_WIDTH = 32    # its leaves on the left (solve_columns): columns per pass
    POTRF_LEAF = 64     # and potrf_recursive matrices above this
    CHOLESKY_GRADIENT_LEAF = 32     # and potrf_backward's per-matrix recursion (Murray's blocked
                                    # reverse mode by halves) above this (A/B against leaves of
                                    # 48-128: level for one matrix of 500-2000, 1.05-1.25x
                                    # faster in batches of order 100-400)
    TRMM_PRODUCT_MAX = 64   # trmm per matrix: op(A) written out and a plain product up to this
    POTRS_GRADIENT_PRODUCT_MAX = 128    # potrs_backward per matrix by products up to this
                                        # where the FMA loops run (TRMM_PRODUCT_MAX elsewhere)
    TRIANGLE_SELECT_MAX = 32    # a triangle written out by selects up to this order (triangle_into)
    BLAS_PREFETCH_MAX = 32  # a large batch of products through ?gemm up to this order fetches
    PREFETCH_BURST = 64     # the next matrix's operands, this many lines before each call
    PREFETCH_LANES_MIN = 4 << 10    # an interleaved kernel fetches the next block's inputs
    PREFETCH_LANES_MAX = 48 << 10   # where they are more than this many bytes and at most this
    GETRF_LEAF = 128    # and getrf_recursive both sides of a matrix above this
    GETRI_LEAF = 32     # and getri_recursive, trtri_recursive matrices above this

cdef enum:
    TRANS_A = 1
    TRANS_B = 2
    RIGHT = 4
    LOWER = 8
    TRIANGLE = 16       # gemm: keep only the triangle of the result that LOWER names
    WITH_C = 32         # gemm_backward: there is a C, and dC = beta dD is wanted
    SHARED_A = 64       # trsm/trmm: one triangular matrix for the whole batch (a stack of length 1)
    DIAGONAL = 128      # extract_part/embed_part: the diagonal, not a triangle
    SINGLE = 256        # float32 operands (run sets it), for planners that route by precision
    STREAM = 512        # gemm and its rules: the batch is larger than the caches, so the products
                        # write their results with non-temporal stores (a planner's choice;
                        # trsm likewise, from scratch)
    FUSED_TANGENT = 1024    # gemm_jvp: the tangent's two products in one pass (a planner's choice)
    ZEROED = 2048       # embed_part: the output is zero already (zero_fill), only the part to write
    TRIANGULAR_A = 4096     # gemm (trmm_one's product): op(A) is triangular, zeros off the
    TRIANGULAR_B = 8192     # triangle LOWER names (op(B) likewise), which the loops may skip

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
GESVD, GESV, POTRF_JVP, SYEVD_TANGENT = OP_GESVD, OP_GESV, OP_POTRF_JVP, OP_SYEVD_TANGENT
TRSM_JVP, GESVD_BACKWARD, GESVD_TANGENT = OP_TRSM_JVP, OP_GESVD_BACKWARD, OP_GESVD_TANGENT
POTRS_BACKWARD, POTRI_BACKWARD = OP_POTRS_BACKWARD, OP_POTRI_BACKWARD
ORTHOGONAL_JVP, GEMM_JVP, GESV_JVP = OP_ORTHOGONAL_JVP, OP_GEMM_JVP, OP_GESV_JVP
ORTHOGONAL_TANGENT, TRMM_BACKWARD = OP_ORTHOGONAL_TANGENT, OP_TRMM_BACKWARD
EXTRACT_PART, EMBED_PART, SANDWICH = OP_EXTRACT_PART, OP_EMBED_PART, OP_SANDWICH


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
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int adla_cpu_has_avx512f(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
    }
    #else
    static int adla_cpu_has_avx512f(void) { return 0; }
    #endif
    """
    int adla_cpu_has_avx2() noexcept nogil
    int adla_cpu_has_avx512f() noexcept nogil


def cpu_has_avx2():
    """Whether this CPU (and OS) runs AVX2 code, that is, the ``_lapack_avx2`` build."""
    return adla_cpu_has_avx2() != 0


FLAG_TRANS_A, FLAG_TRANS_B, FLAG_RIGHT, FLAG_LOWER = TRANS_A, TRANS_B, RIGHT, LOWER
FLAG_TRIANGLE, FLAG_WITH_C, FLAG_SHARED_A, FLAG_DIAGONAL = TRIANGLE, WITH_C, SHARED_A, DIAGONAL
FLAG_SINGLE = SINGLE
FLAG_ZEROED = ZEROED
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
    Py_ssize_t nbatch   # matrices in the batch: enough to fill the lanes of a block?
    double alpha
    double beta
    int lwork      # LAPACK workspace (elements) at the start of the scratch, per-matrix kernels
    int liwork     # and the int workspace after it (plan_workspace)
    bint calls_blas     # the kernel may call BLAS/LAPACK at this size
    bint lanes_call_blas    # set by a planner whose interleaved kernel calls LAPACK too
    bint serial         # run on the calling thread alone (a planner's choice)
    bint prefetch_next  # hand the kernel the next matrix's inputs to fetch (_fma_product.h)
    bint stream_out     # interleaved kernels write their outputs with non-temporal stores


# gemm and its rules run the direct loops (small_product) up to this order, BLAS above. The
# loops add and multiply without FMA (both builds give the same bits), at a quarter of the peak
# of a CPU with AVX-512, where SciPy's OpenBLAS runs FMA kernels made for small matrices: on an
# AVX-512 Xeon ?gemm was level with them up to order 8, 1.1-1.3x faster at 9-12 and 1.4-2x at
# 13-32 (batched, both threads). On AMD EPYC (AVX2) the loops matched ?gemm up to 32.
cdef int direct_product_max = SMALL_PRODUCT_AVX512 if adla_cpu_has_avx512f() else SMALL_PRODUCT


# syevd's gradient and tangent (three products of order n) run the direct loops where gemm's do,
# and up to EIGEN_DIRECT_MAX on AVX-512 CPUs too: on an AMD EPYC with AVX-512, A/B of
# syevd_backward over 1000 matrices, they were 1.15-1.2x faster than ?gemm at 12-24 (10000
# matrices of 16: 6.8 against 9.7 ms) and 1.12x slower at 32.
cdef int eigen_direct_max = max(direct_product_max, EIGEN_DIRECT_MAX)


def set_eigen_direct_max(int order):
    """syevd's gradient and tangent up to order ``order`` in the direct loops, larger ones
    through BLAS; returns the previous bound (for tests and benchmarks, as
    set_direct_product_max)."""
    global eigen_direct_max
    previous, eigen_direct_max = eigen_direct_max, max(0, min(order, SMALL_PRODUCT))
    return previous


def set_direct_product_max(int order):
    """gemm's products (and its rules', syrk_backward's, gesvd_backward's) with every dimension
    up to ``order`` run the direct loops, larger ones BLAS; returns the previous bound. For tests
    and benchmarks: the bound is chosen at import for the CPU (above)."""
    global direct_product_max
    previous, direct_product_max = direct_product_max, max(0, min(order, SMALL_PRODUCT))
    return previous


# getrf_recursive factors with getrf leaves up to this order, getri_recursive inverts with getri
# leaves up to that one (GETRF_LEAF, GETRI_LEAF; settable for tests), as do trtri_recursive and
# lauum_recursive; potri's interleaved kernel runs up to POTRI_LANES_MAX; potrf_backward per
# matrix splits above CHOLESKY_GRADIENT_LEAF.
cdef int getrf_leaf = GETRF_LEAF
cdef int getri_leaf = GETRI_LEAF
cdef int potri_lanes_max = POTRI_LANES_MAX
cdef int cholesky_gradient_leaf = CHOLESKY_GRADIENT_LEAF
cdef Py_ssize_t lu_lanes_wide_batch = -1       # -1: LANES per thread of the pool


def set_potri_lanes_max(int order):
    """potri interleaved up to order ``order`` for a batch that fills the lanes (0: only up to
    SMALL_DENSE, as every dense kernel), per matrix above; returns the previous bound. For tests
    and benchmarks."""
    global potri_lanes_max
    previous, potri_lanes_max = potri_lanes_max, max(0, min(order, POTRI_LANES_MAX))
    return previous


def set_lu_lanes_wide_batch(Py_ssize_t batch):
    """inverse, det, slogdet (and gesv with up to SOLVE_LANES_THIN right-hand sides) of orders
    LU_LANES_FULL + 1 to LU_LANES_MAX interleaved for batches of at least ``batch`` matrices
    (and LANES), per matrix otherwise; -1: LANES for each thread of the pool, the default.
    Returns the previous bound. For tests and benchmarks."""
    global lu_lanes_wide_batch
    previous, lu_lanes_wide_batch = lu_lanes_wide_batch, max(batch, -1)
    return previous


def set_getrf_leaf(int order):
    """LU factorizations split in column halves while both sides are above ``order`` (one getrf
    call for the whole matrix: a large ``order``); returns the previous bound. For tests and
    benchmarks."""
    global getrf_leaf
    previous, getrf_leaf = getrf_leaf, max(order, 16)
    return previous


def set_cholesky_gradient_leaf(int order):
    """potrf_backward per matrix split in halves above ``order`` (the leaf's formula for the
    whole matrix: a large ``order``); returns the previous bound. For tests and benchmarks."""
    global cholesky_gradient_leaf
    previous, cholesky_gradient_leaf = cholesky_gradient_leaf, max(order, 16)
    return previous


def set_getri_leaf(int order):
    """Inverses from an LU (and triangular inverses) split in halves above ``order`` (one getri
    call: a large ``order``); returns the previous bound. For tests and benchmarks."""
    global getri_leaf
    previous, getri_leaf = getri_leaf, max(order, 16)
    return previous


# ---- kernels, by family (kernels/*.pxi) --------------------------------------------------------
# Per-matrix kernels (``*_one``) have row-major semantics; operand order in p[] is the order of
# the backend call's arguments, output last.
# Interleaved kernels (``*_lanes``), for batches of small matrices: a LAPACK call per 4 x 4
# matrix costs more than its arithmetic, and a scalar loop is bound by
# the latency of its sqrt/divide chain. These kernels take LANES matrices at once, element e of
# lane v stored at w[e * LANES + v], so that every operation is a fixed-length loop over lanes
# the compiler turns into vector instructions. A short last block repeats its last matrix in
# the spare lanes; their results are not written back. gcc keeps such a loop scalar when it
# reads the array it writes through another index (copy those operands to a local array first)
# or selects on an int flag (select on floating values: 1 if x > y else 0 as floating); check
# the hot loops with perf annotate, or -fopt-info-vec-missed on the generated C.

# Generated at build time (kernels/generate_wrappers.py): one wrapper per BLAS/LAPACK routine.
include "kernels/wrappers.pxi"
include "kernels/helpers.pxi"
include "kernels/lanes.pxi"
include "kernels/products.pxi"
include "kernels/triangular.pxi"
include "kernels/cholesky.pxi"
include "kernels/orthogonal.pxi"
include "kernels/eigen.pxi"
include "kernels/lu.pxi"
include "kernels/svd.pxi"
include "kernels/parts.pxi"


# ---- the operator table -----------------------------------------------------------------------
# One row per operation code: how a job is planned at its size and which kernels run it. The
# kernels and planners live in their family's file; the driver below reads only this table.

ctypedef void (*Planner)(Job*) noexcept nogil
ctypedef void (*WorkspaceDouble)(double*, Job*) noexcept nogil
ctypedef void (*WorkspaceFloat)(float*, Job*) noexcept nogil
ctypedef int (*OneDouble)(const Job*, double**, double*) noexcept nogil
ctypedef int (*OneFloat)(const Job*, float**, float*) noexcept nogil
ctypedef void (*LanesDouble)(const Job*, double**, int, double*, int*) noexcept nogil
ctypedef void (*LanesFloat)(const Job*, float**, int, float*, int*) noexcept nogil

ctypedef struct Operator:
    Planner plan                        # interleaved or not, scratch, BLAS use; NULL: defaults
    WorkspaceDouble workspace_double    # LAPACK workspace of the per-matrix kernel; NULL: none
    WorkspaceFloat workspace_float
    OneDouble one_double                # the per-matrix kernel; NULL: none
    OneFloat one_float
    LanesDouble lanes_double            # the interleaved kernel; NULL: none
    LanesFloat lanes_float

cdef Operator OPERATORS[NOPS]

cdef void declare(int op, Planner plan, WorkspaceDouble workspace_double,
                  WorkspaceFloat workspace_float, OneDouble one_double, OneFloat one_float,
                  LanesDouble lanes_double, LanesFloat lanes_float) noexcept:
    OPERATORS[op] = Operator(plan, workspace_double, workspace_float, one_double, one_float,
                             lanes_double, lanes_float)

# svd_lanes runs the eigensolver's lane kernels at its short side, with arrays of EIGEN_LANES_MAX.
assert SVD_LANES_MAX <= EIGEN_LANES_MAX
assert max(ORTHOGONAL_LANES_MAX, ORTHOGONAL_JVP_LANES_MAX, ORTHOGONAL_FACTOR_LANES_MAX,
           ORTHOGONAL_FACTOR_LANES_MAX_SINGLE) <= ORTHOGONAL_ORDER_MAX

#       operation               planner                    workspace (double, float)
#                               per-matrix kernel (double, float)
#                               interleaved kernel (double, float)
declare(OP_GEMM,                plan_gemm,                 NULL, NULL,
        gemm_one[double], gemm_one[float], gemm_lanes[double], gemm_lanes[float])
declare(OP_GEMM_BACKWARD,       plan_gemm_backward,        NULL, NULL,
        gemm_backward_one[double], gemm_backward_one[float], NULL, NULL)
declare(OP_GEMM_JVP,            plan_gemm_jvp,             NULL, NULL,
        gemm_jvp_one[double], gemm_jvp_one[float], NULL, NULL)
declare(OP_SYRK,                plan_syrk,                 NULL, NULL,
        syrk_one[double], syrk_one[float], NULL, NULL)
declare(OP_SYRK_BACKWARD,       plan_syrk_backward,        NULL, NULL,
        syrk_backward_one[double], syrk_backward_one[float], NULL, NULL)
declare(OP_TRMM,                plan_triangular,           NULL, NULL,
        trmm_one[double], trmm_one[float], triangular_lanes[double], triangular_lanes[float])
declare(OP_TRSM,                plan_triangular,           NULL, NULL,
        trsm_one[double], trsm_one[float], triangular_lanes[double], triangular_lanes[float])
declare(OP_TRSM_JVP,            plan_trsm_jvp,             NULL, NULL,
        trsm_jvp_one[double], trsm_jvp_one[float], trsm_jvp_lanes[double], trsm_jvp_lanes[float])
declare(OP_TRMM_BACKWARD,       plan_trmm_backward,        NULL, NULL,
        trmm_backward_one[double], trmm_backward_one[float], NULL, NULL)
declare(OP_TRSM_BACKWARD,       plan_trsm_backward,        NULL, NULL,
        trsm_backward_one[double], trsm_backward_one[float],
        trsm_backward_lanes[double], trsm_backward_lanes[float])
declare(OP_POTRF,               plan_potrf,                NULL, NULL,
        potrf_one[double], potrf_one[float], potrf_lanes[double], potrf_lanes[float])
declare(OP_POTRF_JVP,           plan_potrf_jvp,            NULL, NULL,
        potrf_jvp_one[double], potrf_jvp_one[float],
        potrf_jvp_lanes[double], potrf_jvp_lanes[float])
declare(OP_POTRF_BACKWARD,      plan_potrf_backward,       NULL, NULL,
        potrf_backward_one[double], potrf_backward_one[float],
        potrf_backward_lanes[double], potrf_backward_lanes[float])
declare(OP_POTRI,               plan_cholesky_solve,       NULL, NULL,
        potri_one[double], potri_one[float],
        cholesky_solve_lanes[double], cholesky_solve_lanes[float])
declare(OP_POTRS,               plan_cholesky_solve,       NULL, NULL,
        potrs_one[double], potrs_one[float],
        cholesky_solve_lanes[double], cholesky_solve_lanes[float])
declare(OP_POTRS_BACKWARD,      plan_potrs_backward,       NULL, NULL,
        potrs_backward_one[double], potrs_backward_one[float],
        potrs_backward_lanes[double], potrs_backward_lanes[float])
declare(OP_POTRI_BACKWARD,      plan_potri_backward,       NULL, NULL,
        potri_backward_one[double], potri_backward_one[float],
        potri_backward_lanes[double], potri_backward_lanes[float])
declare(OP_GELQF,               plan_orthogonal,
        workspace_orthogonal[double], workspace_orthogonal[float],
        orthogonal_factor[double], orthogonal_factor[float],
        orthogonal_lanes[double], orthogonal_lanes[float])
declare(OP_GEQRF,               plan_orthogonal,
        workspace_orthogonal[double], workspace_orthogonal[float],
        orthogonal_factor[double], orthogonal_factor[float],
        orthogonal_lanes[double], orthogonal_lanes[float])
declare(OP_ORTHOGONAL_BACKWARD, plan_orthogonal_backward,  NULL, NULL,
        orthogonal_backward_one[double], orthogonal_backward_one[float],
        orthogonal_backward_lanes[double], orthogonal_backward_lanes[float])
declare(OP_ORTHOGONAL_JVP,      plan_orthogonal_jvp,
        workspace_orthogonal[double], workspace_orthogonal[float],
        orthogonal_jvp_one[double], orthogonal_jvp_one[float],
        orthogonal_jvp_lanes[double], orthogonal_jvp_lanes[float])
declare(OP_ORTHOGONAL_TANGENT,  plan_orthogonal_tangent,   NULL, NULL,
        orthogonal_tangent_one[double], orthogonal_tangent_one[float], NULL, NULL)
declare(OP_SYEVD,               plan_syevd,
        workspace_syevd[double], workspace_syevd[float],
        syevd_one[double], syevd_one[float], eigen_lanes[double], eigen_lanes[float])
declare(OP_SYEVD_BACKWARD,      plan_syevd_backward,       NULL, NULL,
        syevd_backward_one[double], syevd_backward_one[float], NULL, NULL)
declare(OP_SYEVD_TANGENT,        plan_syevd_tangent,        NULL, NULL,
        syevd_tangent_one[double], syevd_tangent_one[float], NULL, NULL)
declare(OP_INVERSE,             plan_inverse,
        workspace_inverse[double], workspace_inverse[float],
        inverse_one[double], inverse_one[float], inverse_lanes[double], inverse_lanes[float])
declare(OP_SLOGDET,             plan_slogdet,
        workspace_slogdet[double], workspace_slogdet[float],
        slogdet_one[double], slogdet_one[float], slogdet_lanes[double], slogdet_lanes[float])
declare(OP_COFACTOR,            plan_cofactor,
        workspace_cofactor[double], workspace_cofactor[float],
        cofactor_one[double], cofactor_one[float], cofactor_lanes[double], cofactor_lanes[float])
declare(OP_GESV,                plan_gesv,
        workspace_gesv[double], workspace_gesv[float],
        gesv_one[double], gesv_one[float], gesv_lanes[double], gesv_lanes[float])
declare(OP_GESV_JVP,            plan_gesv_jvp,
        workspace_gesv[double], workspace_gesv[float],
        gesv_jvp_one[double], gesv_jvp_one[float], gesv_jvp_lanes[double], gesv_jvp_lanes[float])
declare(OP_GESVD,               plan_gesvd,
        workspace_gesvd[double], workspace_gesvd[float],
        gesvd_one[double], gesvd_one[float], svd_lanes[double], svd_lanes[float])
declare(OP_GESVD_BACKWARD,      plan_svd_gradients,        NULL, NULL,
        gesvd_backward_one[double], gesvd_backward_one[float], NULL, NULL)
declare(OP_GESVD_TANGENT,       plan_svd_gradients,        NULL, NULL,
        gesvd_tangent_one[double], gesvd_tangent_one[float], NULL, NULL)
declare(OP_SANDWICH,            plan_sandwich,             NULL, NULL,
        sandwich_one[double], sandwich_one[float], NULL, NULL)
declare(OP_EXTRACT_PART,        plan_part,                 NULL, NULL,
        extract_part_one[double], extract_part_one[float], NULL, NULL)
declare(OP_EMBED_PART,          plan_part,                 NULL, NULL,
        embed_part_one[double], embed_part_one[float], NULL, NULL)


cdef void plan(Job* job) noexcept nogil:
    """Pick the interleaved kernel (job.lanes = LANES) where the table's planner says it fits
    this size, and the scratch each thread needs; no LAPACK call."""
    job.lanes, job.work, job.lwork, job.liwork, job.calls_blas = 1, 0, 0, 0, True
    job.lanes_call_blas, job.serial, job.prefetch_next = False, False, False
    job.stream_out = False
    if OPERATORS[job.op].plan != NULL:
        OPERATORS[job.op].plan(job)
    if job.lanes > 1:
        job.calls_blas = job.lanes_call_blas

cdef void plan_workspace(floating* kind, Job* job) noexcept nogil:
    """The scratch of the per-matrix kernels that call LAPACK, its workspace queries answered
    once here for the whole batch (the kernels allocate nothing). They return before any
    LAPACK call on empty matrices. An interleaved kernel that falls back to the per-matrix one
    for some lanes (lanes_call_blas) gets that kernel's scratch after its own."""
    cdef Py_ssize_t lanes_work = job.work if job.lanes > 1 else 0
    if min(job.m, job.n) == 0 or (job.lanes > 1 and not job.lanes_call_blas):
        return
    if floating is double:
        if OPERATORS[job.op].workspace_double != NULL:
            OPERATORS[job.op].workspace_double(kind, job)
            job.work += lanes_work
    else:
        if OPERATORS[job.op].workspace_float != NULL:
            OPERATORS[job.op].workspace_float(kind, job)
            job.work += lanes_work


# ---- the one batch driver ---------------------------------------------------------------------

# The interleaved kernels of a large batch of small matrices wait on memory: each block's
# gather reads LANES matrices the hardware prefetcher has not seen coming. Where the next block
# is this thread's too, its inputs go into the prefetch queue (_fma_product.h), and the kernels
# fetch a share of them at each step of their main loop (adla_prefetch_share: cholesky_lanes,
# potrf_backward_lanes, lu_lanes, inverse_factor_both, forward_substitute, back_substitute), so
# that the block is in cache by the time its gather runs. A/B in one process on an AMD EPYC
# (Zen 4, 32 KiB L1D), 10000 x 16: potrf 1.15-1.25x faster, potrf_backward 1.1-1.25x, trsm
# 1.3x, det and inverse 1.03-1.2x; fwd+bwd of potrf 1.26-1.32x, of potri 1.18-1.24x, of trsm
# 1.13-1.16x; at orders 24-32 level to 1.06x. Above PREFETCH_LANES_MAX of inputs a block, the
# prefetched lines pushed the current block's scratch out of L1 (float64 potrf 1.04-1.06x
# slower at 32-64); at PREFETCH_LANES_MIN and below, the batch stays in cache anyway (order 8:
# level). The window is by bytes: with one input, orders 9-27 in float64 and 12-39 in float32.
cdef Py_ssize_t prefetch_lanes_min = PREFETCH_LANES_MIN
cdef Py_ssize_t prefetch_lanes_max = PREFETCH_LANES_MAX


def set_prefetch_lanes_bytes(bounds):
    """Interleaved kernels fetch the next block's inputs where those are more than ``low`` and
    at most ``high`` bytes, ``bounds = (low, high)`` ((0, 0): never); returns the previous
    bounds. For tests and benchmarks."""
    global prefetch_lanes_min, prefetch_lanes_max
    previous = (prefetch_lanes_min, prefetch_lanes_max)
    prefetch_lanes_min, prefetch_lanes_max = bounds
    return previous


cdef inline Py_ssize_t queue_inputs(floating** base, const Py_ssize_t* step, int ninputs,
                                    Py_ssize_t first, Py_ssize_t count) noexcept nogil:
    # Matrices first .. first + count - 1 of every input onto this thread's prefetch queue
    # (_fma_product.h); returns the bytes queued.
    cdef Py_ssize_t nbytes, queued = 0
    cdef int i
    for i in range(ninputs):
        if base[i] != NULL and step[i] > 0:
            nbytes = count * step[i] * sizeof(floating)
            adla_prefetch_add(base[i] + first * step[i], nbytes)
            queued += nbytes
    return queued


cdef void run_block(const Job* job, floating** base, const Py_ssize_t* step, int noperands,
                    int ninputs, Py_ssize_t nbatch, Py_ssize_t block, bint next_is_ours,
                    floating* work, int* status) noexcept nogil:
    # Block ``block`` of job.lanes matrices (``next_is_ours``: this thread runs block + 1
    # next). Pointers live on this call's stack: each thread has its own.
    cdef floating* p[MAX_OPERANDS * LANES]
    cdef int lane_status[LANES]
    cdef Py_ssize_t first = block * job.lanes, b, next_bytes = 0
    cdef int i, v, count
    if work == NULL:
        for b in range(first, min(first + job.lanes, nbatch)):
            status[b] = NO_MEMORY
        return
    if job.lanes == 1:
        for i in range(noperands):
            p[i] = base[i] + first * step[i] if base[i] != NULL else NULL
        if job.prefetch_next and next_is_ours:
            queue_inputs(base, step, ninputs, first + 1, 1)
        if floating is double:
            status[first] = OPERATORS[job.op].one_double(job, p, work)
        else:
            status[first] = OPERATORS[job.op].one_float(job, p, work)
        if job.prefetch_next:
            adla_prefetch_clear()
        return
    count = <int>min(<Py_ssize_t>LANES, nbatch - first)
    for i in range(noperands):
        for v in range(LANES):
            b = first + (v if v < count else count - 1)     # spare lanes repeat the last matrix
            p[i * LANES + v] = base[i] + b * step[i] if base[i] != NULL else NULL
    for v in range(LANES):
        lane_status[v] = 0
    if next_is_ours:
        next_bytes = queue_inputs(base, step, ninputs, first + LANES,
                                  min(<Py_ssize_t>LANES, nbatch - first - LANES))
        if not prefetch_lanes_min < next_bytes <= prefetch_lanes_max:
            adla_prefetch_clear()       # outside the window: no prefetch, nothing to clear later
            next_bytes = 0
    if floating is double:
        OPERATORS[job.op].lanes_double(job, p, count, work, lane_status)
    else:
        OPERATORS[job.op].lanes_float(job, p, count, work, lane_status)
    if next_bytes:
        adla_prefetch_clear()
    for v in range(count):
        status[first + v] = lane_status[v]

ctypedef struct Batch:
    # One call's batch, as the thread pool's chunks see it.
    const Job* job
    void** base
    const Py_ssize_t* step
    int noperands
    int ninputs         # the first ninputs operands are read, the others written
    Py_ssize_t nbatch
    int* status

cdef extern from "_pool.h":
    ctypedef void (*adla_chunk_fn)(void* ctx, Py_ssize_t first, Py_ssize_t last,
                                   void** scratch) noexcept nogil
    ctypedef void (*adla_release_fn)(void* scratch) noexcept nogil
    void adla_parallel_for(adla_chunk_fn run, adla_release_fn release, void* ctx,
                           Py_ssize_t nblocks, int threads) noexcept nogil

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void* ctx
        void* (*malloc)(void* ctx, size_t size) noexcept nogil
        void (*free)(void* ctx, void* p, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        PyDataMemAllocator allocator

# Scratch comes from the output cache (_memory) once use_output_cache has been called: glibc
# maps blocks over 32 MiB afresh on every call, and the page faults of a single large matrix's
# scratch were measured at 8 MB (det's gradient at order 1000) to 81 MB (gesvd) per call. Each
# block starts with its size, which the cache's free takes.
cdef PyDataMem_Handler* scratch_memory = NULL
_scratch_handler = None
cdef enum:
    SCRATCH_HEADER = 64         # keeps the scratch as aligned as the block

cdef void* take_scratch(size_t size) noexcept nogil:
    cdef char* block
    size += SCRATCH_HEADER
    if scratch_memory == NULL:
        block = <char*>malloc(size)
    else:
        block = <char*>scratch_memory.allocator.malloc(scratch_memory.allocator.ctx, size)
    if block == NULL:
        return NULL
    (<size_t*>block)[0] = size
    return block + SCRATCH_HEADER

cdef void release_scratch(void* scratch) noexcept nogil:
    cdef char* block
    if scratch == NULL:
        return
    block = <char*>scratch - SCRATCH_HEADER
    if scratch_memory == NULL:
        free(block)
    else:
        scratch_memory.allocator.free(scratch_memory.allocator.ctx, block, (<size_t*>block)[0])


def use_output_cache(handler):
    """Take the kernels' scratch from the output cache: ``handler`` is its NumPy memory handler
    capsule (``_memory.cache_handler``), kept alive here."""
    global scratch_memory, _scratch_handler
    _scratch_handler = handler
    scratch_memory = <PyDataMem_Handler*>PyCapsule_GetPointer(handler, "mem_handler")


cdef inline void run_blocks(floating* kind, Batch* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    # Blocks [first, last); the participant's scratch is taken at its first chunk.
    cdef Py_ssize_t block
    if scratch[0] == NULL:
        scratch[0] = take_scratch((batch.job.work + 1) * sizeof(floating))
    for block in range(first, last):
        run_block(batch.job, <floating**>batch.base, batch.step, batch.noperands,
                  batch.ninputs, batch.nbatch, block, block + 1 < last, <floating*>scratch[0],
                  batch.status)

cdef void run_blocks_double(void* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    run_blocks(<double*>NULL, <Batch*>batch, first, last, scratch)

cdef void run_blocks_float(void* batch, Py_ssize_t first, Py_ssize_t last,
                           void** scratch) noexcept nogil:
    run_blocks(<float*>NULL, <Batch*>batch, first, last, scratch)

cdef void drive(const Job* job, void** base, const Py_ssize_t* step, int noperands,
                int ninputs, Py_ssize_t nbatch, int* status, bint is_double,
                int threads) noexcept nogil:
    # Matrices share no memory, so the blocks run in parallel on up to ``threads`` threads
    # (_pool.h: the calling thread and the pool's helpers, each with its own scratch).
    cdef Batch batch
    batch.job, batch.base, batch.step, batch.noperands = job, base, step, noperands
    batch.ninputs = ninputs
    batch.nbatch, batch.status = nbatch, status
    adla_parallel_for(run_blocks_double if is_double else run_blocks_float, release_scratch,
                      &batch, (nbatch + job.lanes - 1) // job.lanes, threads)


ctypedef struct ZeroFill:
    char* data
    Py_ssize_t nbytes

cdef enum:
    ZERO_BLOCK = 1 << 16        # zero_fill's share of a thread at a time

cdef void zero_blocks(void* fill, Py_ssize_t first, Py_ssize_t last,
                      void** scratch) noexcept nogil:
    cdef ZeroFill* z = <ZeroFill*>fill
    cdef Py_ssize_t start = first * ZERO_BLOCK
    cdef Py_ssize_t stop = min(last * ZERO_BLOCK, z.nbytes)
    memset(z.data + start, 0, stop - start)

def zero_fill(cnp.ndarray a, int threads=1):
    """Zero the C-contiguous array ``a`` on up to ``threads`` threads of the pool: one large
    matrix of zeros (embed_part's) written by one core ran at half the speed of two."""
    cdef ZeroFill z
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError("zero_fill needs a writeable C-contiguous array")
    z.data, z.nbytes = <char*>cnp.PyArray_DATA(a), a.nbytes
    threads = max(1, min(threads, openmp.omp_get_max_threads()))
    with nogil:
        adla_parallel_for(zero_blocks, release_scratch, &z,
                          (z.nbytes + ZERO_BLOCK - 1) // ZERO_BLOCK, threads)


cdef Py_ssize_t stream_lanes_bytes = STREAM_BYTES


def set_stream_lanes_bytes(Py_ssize_t nbytes):
    """Interleaved kernels write their outputs past the caches (Job.stream_out) from ``nbytes``
    of operands a call (STREAM_BYTES; 0: any batch); returns the previous bound. For tests and
    benchmarks."""
    global stream_lanes_bytes
    previous, stream_lanes_bytes = stream_lanes_bytes, max(0, nbytes)
    return previous


cdef Job planned(int op, int m, int n, int k, int flags=0,
                 Py_ssize_t nbatch=LANES) except *:
    cdef Job job
    if not 0 <= op < NOPS:
        raise ValueError(f"no kernel has operation code {op}")
    job.op, job.flags, job.m, job.n, job.k, job.nbatch = op, flags, m, n, k, nbatch
    plan(&job)
    return job


def interleaved(int op, int m, int n, int k=0, Py_ssize_t nbatch=LANES, int flags=0):
    """Whether kernel ``op`` runs interleaved at this size (no BLAS/LAPACK call)."""
    return planned(op, m, n, k, flags, nbatch).lanes > 1


def calls_blas(int op, int m, int n, int k=0, Py_ssize_t nbatch=LANES, int flags=0):
    """Whether kernel ``op`` may call BLAS/LAPACK at this size and with these flags (not
    interleaved, no direct loops)."""
    return planned(op, m, n, k, flags, nbatch).calls_blas


def calls_blas_from_threads(int op, int m, int n, int k=0, Py_ssize_t nbatch=LANES,
                            int flags=0):
    """Whether a batch of kernel ``op`` may call BLAS/LAPACK from several threads at once, so
    that callers keep BLAS to one thread meanwhile: it calls BLAS and is not planned to run on
    the calling thread alone."""
    cdef Job job = planned(op, m, n, k, flags, nbatch)
    return job.calls_blas and not job.serial


def run(int op, tuple inputs, tuple outputs, int m, int n, int k=0, int flags=0,
        double alpha=1.0, double beta=0.0, int threads=1):
    """Run kernel ``op`` over a batch; return the int32 status of each matrix.

    ``inputs`` and ``outputs`` are C-contiguous stacks ``(nbatch, ...)`` of one float dtype (an
    input may be None when optional, or have length 1 to be broadcast over the batch); kernels see
    them in that order, outputs last. ``m``, ``n``: rows and columns of the result; ``k``: inner
    dimension. ``threads``: run the batch on that many threads of the pool (callers keep BLAS
    single-threaded meanwhile). Callers validate shapes.
    """
    # Checked field by field through NumPy's C API, without Python-level calls: for one small
    # matrix this function's own cost is most of a call's.
    cdef void* base[MAX_OPERANDS]
    cdef Py_ssize_t step[MAX_OPERANDS]
    cdef Job job
    cdef cnp.ndarray a, status
    cdef int i, typenum
    cdef Py_ssize_t nbatch = -1, length, operand_bytes = 0
    cdef bint empty_stack = False
    cdef int ninputs = len(inputs), noperands = ninputs + len(outputs)
    copies = []                         # aligned copies of unaligned inputs, alive for the run
    if noperands > MAX_OPERANDS:
        raise ValueError("too many operands")
    if len(outputs) == 0:
        raise ValueError("a kernel needs an output")
    typenum = cnp.PyArray_TYPE(<cnp.ndarray?>outputs[0])
    if not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>outputs[0]):
        typenum = -1                    # not in this machine's byte order: refused below
    cdef bint is_double = typenum == cnp.NPY_DOUBLE
    if not is_double and typenum != cnp.NPY_FLOAT:
        raise TypeError(f"kernel dtype must be float32 or float64, got {outputs[0].dtype}")
    for i in range(noperands):
        operand = inputs[i] if i < ninputs else outputs[i - ninputs]
        if operand is None:
            base[i] = NULL
            step[i] = 0
            continue
        a = <cnp.ndarray?>operand
        if (cnp.PyArray_NDIM(a) < 1 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_ISNOTSWAPPED(a)):
            raise ValueError("kernel operands must be C-contiguous stacks of one dtype")
        if i >= ninputs and not cnp.PyArray_ISWRITEABLE(a):
            raise ValueError("kernel outputs must be writeable")
        if not cnp.PyArray_ISALIGNED(a):
            # Compiled loops may assume each element's natural alignment: an unaligned input
            # (a view of a byte buffer at an odd offset) is copied, an output refused.
            if i >= ninputs:
                raise ValueError("kernel outputs must be aligned")
            a = np.array(a)
            copies.append(a)
        base[i] = cnp.PyArray_DATA(a)
        operand_bytes += cnp.PyArray_NBYTES(a)
        length = cnp.PyArray_DIM(a, 0)
        step[i] = 0 if length <= 1 else cnp.PyArray_SIZE(a) // length
        if length == 0:
            empty_stack = True
        elif length > nbatch:
            nbatch = length
    # Stacks have the batch length or 1 (broadcast); a zero-length stack empties the batch.
    if empty_stack or nbatch < 0:
        nbatch = 0
    for i in range(noperands):
        operand = inputs[i] if i < ninputs else outputs[i - ninputs]
        if operand is None:
            continue
        length = cnp.PyArray_DIM(<cnp.ndarray>operand, 0)
        if (length != nbatch if i >= ninputs else length != 1 and length != nbatch):
            raise ValueError("kernel operands disagree on the batch length")
    job = planned(op, m, n, k, flags | (0 if is_double else SINGLE), nbatch)
    job.alpha, job.beta = alpha, beta
    # The outputs of an interleaved kernel over a batch past the caches are not in cache when
    # its scatter writes them, and ordinary stores read each line from memory first. Written
    # past the caches in whole lines instead (scatter), A/B in one process on a Zen 4 EPYC,
    # both dtypes: potrf 1.1-1.3x faster at 1000 x 64 and 1.25-1.3x at 6000-10000 x 16, its
    # gradient 1.05-1.2x and 1.1-1.2x, potrf_jvp 1.13x, potrf + potrs + potrf_backward in a
    # loop 1.03-1.14x; other kernels level. With 1 MB of outputs (in cache) potrf took 2x as
    # long, hence the bound.
    job.stream_out = job.lanes > 1 and operand_bytes >= stream_lanes_bytes
    if is_double:
        plan_workspace(<double*>NULL, &job)
    else:
        plan_workspace(<float*>NULL, &job)
    if job.lanes == 1 and OPERATORS[op].one_double == NULL:
        raise ValueError(f"kernel {op} has no per-matrix form: it runs on small matrices only")
    cdef cnp.npy_intp status_length = nbatch
    status = cnp.PyArray_ZEROS(1, &status_length, cnp.NPY_INT, 0)
    if nbatch == 0:
        return status
    threads = 1 if job.serial else max(1, min(threads, openmp.omp_get_max_threads()))
    with nogil:
        drive(&job, base, step, noperands, ninputs, nbatch, <int*>cnp.PyArray_DATA(status),
              is_double, threads)
    return status

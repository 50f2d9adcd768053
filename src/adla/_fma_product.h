/* Products of small row-major matrices in AVX-512 FMA code, gemm_jvp's tangent in one pass,
   and small triangular solves, for CPUs that have it (the caller checks:
   adla_fma_product_supported), in both builds of the kernels; and the per-thread prefetch
   queue through which the batch driver hands the products the next matrix's operands (and the
   interleaved kernels the next block's inputs: run_block).

   At order 64 a batch of products spends as long waiting for memory as multiplying: SciPy's
   OpenBLAS ran 1000 products of order 64 at 70 GFLOP/s on two Zen 4 cores and 95 on 100 (in
   cache) of a 101 GFLOP/s DGEMM rate. These loops multiply at the same rate in cache and fetch
   the next matrix while they do (software prefetch, spread over the multiply-adds), and write a
   large batch's result with non-temporal stores (no read of the line before it is written). */
#ifndef ADLA_FMA_PRODUCT_H
#define ADLA_FMA_PRODUCT_H

#include <Python.h>
#include <stdint.h>

/* ---- the prefetch queue: regions of memory the next kernel call will read ---------------- */

#define ADLA_PREFETCH_REGIONS 8
typedef struct {
    const char* at[ADLA_PREFETCH_REGIONS];
    Py_ssize_t lines[ADLA_PREFETCH_REGIONS];    /* 64-byte lines left in each region */
    int count, current;
    Py_ssize_t total, issued;                   /* lines added, lines prefetched */
} adla_prefetch_queue;

static _Thread_local adla_prefetch_queue adla_prefetch;

static inline void adla_prefetch_clear(void) {
    adla_prefetch.count = 0;
    adla_prefetch.current = 0;
    adla_prefetch.total = 0;
    adla_prefetch.issued = 0;
}

/* Adds [at, at + bytes) to this thread's queue (ignored when it is full). */
static inline void adla_prefetch_add(const void* at, Py_ssize_t bytes) {
    if (adla_prefetch.count < ADLA_PREFETCH_REGIONS && bytes > 0) {
        adla_prefetch.at[adla_prefetch.count] = (const char*)((uintptr_t)at & ~(uintptr_t)63);
        adla_prefetch.lines[adla_prefetch.count] =
            ((Py_ssize_t)((uintptr_t)at & 63) + bytes + 63) / 64;
        adla_prefetch.total += adla_prefetch.lines[adla_prefetch.count];
        adla_prefetch.count++;
    }
}

/* Up to `wanted` consecutive lines from the queue (fewer at a region's end), taken off it. */
static inline const char* adla_prefetch_take(adla_prefetch_queue* q, Py_ssize_t wanted,
                                             int* got) {
    while (q->current < q->count && q->lines[q->current] == 0)
        q->current++;
    if (q->current == q->count) {
        *got = 0;
        return NULL;
    }
    Py_ssize_t n = wanted < q->lines[q->current] ? wanted : q->lines[q->current];
    const char* at = q->at[q->current];
    q->at[q->current] += 64 * n;
    q->lines[q->current] -= n;
    *got = (int)n;
    return at;
}

/* Up to `most` lines from the queue prefetched at once and taken off it: for a kernel whose
   work on this matrix runs in BLAS, on a matrix small enough that the next one's lines fit in
   flight; in bursts between its calls, since a burst past the line fill buffers stalls. */
static inline void adla_prefetch_lines(int most) {
    adla_prefetch_queue* q = &adla_prefetch;
    int got;
    while (most > 0) {
        const char* at = adla_prefetch_take(q, most, &got);
        if (at == NULL)
            return;
        for (int l = 0; l < got; l++)
            __builtin_prefetch(at + 64 * l, 0, 2);
        q->issued += got;
        most -= got;
    }
}

/* For a kernel's main loop of `steps` steps: by the end of step `step` (from 0), that share of
   all the lines queued prefetched (the whole queue after the last step), spread over the steps
   so that no burst outruns the line fill buffers. */
static inline void adla_prefetch_share(Py_ssize_t step, Py_ssize_t steps) {
    adla_prefetch_queue* q = &adla_prefetch;
    if (q->current < q->count) {
        Py_ssize_t due = q->total * (step + 1) / steps - q->issued;
        if (due > 0)
            adla_prefetch_lines((int)due);
    }
}

/* ---- the products ------------------------------------------------------------------------ */

/* The structure of a product's operands and result (adla_fma_product's `shape`): X or B lower
   or upper triangular (zeros off the triangle, which are not read), or only the lower or upper
   triangle of the result wanted (the other one written as zeros, blocks wholly outside it
   without a sum). */
enum {
    ADLA_LEFT_LOWER = 1, ADLA_LEFT_UPPER = 2, ADLA_RIGHT_LOWER = 4, ADLA_RIGHT_UPPER = 8,
    ADLA_OUT_LOWER = 16, ADLA_OUT_UPPER = 32
};


#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ADLA_HAS_FMA_PRODUCT 1
#include <immintrin.h>

static int adla_fma_product_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

static int adla_cpu_is_amd(void) {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
}

#pragma GCC push_options
#pragma GCC target("avx512f,fma")

/* Per-type operations, by suffix. */
#define ADLA_PER_d 8
#define ADLA_PER_f 16
#define ADLA_VEC_d __m512d
#define ADLA_VEC_f __m512
#define ADLA_MASK_d __mmask8
#define ADLA_MASK_f __mmask16
#define ADLA_ZERO_d _mm512_setzero_pd
#define ADLA_ZERO_f _mm512_setzero_ps
#define ADLA_SET1_d _mm512_set1_pd
#define ADLA_SET1_f _mm512_set1_ps
#define ADLA_LOAD_d _mm512_maskz_loadu_pd
#define ADLA_LOAD_f _mm512_maskz_loadu_ps
#define ADLA_FMADD_d _mm512_fmadd_pd
#define ADLA_FMADD_f _mm512_fmadd_ps
#define ADLA_FNMADD_d _mm512_fnmadd_pd
#define ADLA_FNMADD_f _mm512_fnmadd_ps
#define ADLA_MUL_d _mm512_mul_pd
#define ADLA_MUL_f _mm512_mul_ps
#define ADLA_STORE_d _mm512_mask_storeu_pd
#define ADLA_STORE_f _mm512_mask_storeu_ps
#define ADLA_STREAM_d _mm512_stream_pd
#define ADLA_STREAM_f _mm512_stream_ps
#define ADLA_MASKZ_MOV_d _mm512_maskz_mov_pd
#define ADLA_MASKZ_MOV_f _mm512_maskz_mov_ps

/* A block's result: out[r][v] = alpha acc[r][v] + beta c[r][v] (c NULL: none) for its `rows`
   rows, the last vector masked by `last`; streamed (non-temporal) where `stream`. `triangle`
   (ADLA_OUT_LOWER or ADLA_OUT_UPPER, or 0): zeros written on the other side of the diagonal,
   which meets row r at the block's column `diagonal` + r, so that a block across the diagonal
   streams too. Uses the block's alpha, beta, rows, last, out_row and c_row. */
#define ADLA_FMA_STORE(suffix, type, R, V, acc, out, c, stream, triangle, diagonal)            \
    do {                                                                                      \
        const ADLA_VEC_##suffix va = ADLA_SET1_##suffix(alpha);                               \
        const ADLA_VEC_##suffix vb = ADLA_SET1_##suffix(beta);                                \
        _Pragma("GCC unroll 16") for (int r = 0; r < R && r < rows; r++)                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {                             \
                ADLA_MASK_##suffix mask = v == V - 1 ? last : (ADLA_MASK_##suffix)~0;         \
                type* at = (out) + r * out_row + v * ADLA_PER_##suffix;                       \
                ADLA_VEC_##suffix result = ADLA_MUL_##suffix(va, acc[r][v]);                  \
                if (c)                                                                        \
                    result = ADLA_FMADD_##suffix(                                             \
                        vb, ADLA_LOAD_##suffix(mask, (c) + r * c_row + v * ADLA_PER_##suffix),\
                        result);                                                              \
                if (triangle) {                                                               \
                    /* the lanes on the triangle's side: from (upper) or up to (lower) t */   \
                    int t = (diagonal) + r - v * ADLA_PER_##suffix + ((triangle) == ADLA_OUT_LOWER); \
                    unsigned below = t <= 0 ? 0u : t >= ADLA_PER_##suffix                     \
                        ? (unsigned)(ADLA_MASK_##suffix)~0 : (1u << t) - 1;                  \
                    result = ADLA_MASKZ_MOV_##suffix((ADLA_MASK_##suffix)                     \
                        ((triangle) == ADLA_OUT_LOWER ? below : ~below), result);             \
                }                                                                             \
                if (stream)                                                                   \
                    ADLA_STREAM_##suffix(at, result);                                         \
                else                                                                          \
                    ADLA_STORE_##suffix(at, mask, result);                                    \
            }                                                                                 \
    } while (0)

/* One block of R rows by V vectors of columns: out[r][0:cols] = alpha S_r + beta c[r][0:cols]
   for r < rows (c may be NULL), S_r the sum over l of x[r x_row + l x_step] b[l b_row + 0:cols],
   `last` masking the last vector's columns. Rows past `rows` repeat the last one (computed,
   not stored). Two lines of `prefetch` are fetched per l while l < lines / 2. stream: out and
   its rows are 64-byte aligned and the vectors full. R V accumulators, V rows of B and a
   broadcast stay in the 32 vector registers (the unroll pragmas let gcc keep the arrays
   there), the R row addresses in general ones: 12 rows spilled them. */
#define ADLA_FMA_BLOCK(suffix, type, R, V)                                                     \
static void adla_fma_block_##suffix##_##R##x##V(                                              \
        type* out, Py_ssize_t out_row, const type* x, Py_ssize_t x_row, Py_ssize_t x_step,    \
        const type* b, Py_ssize_t b_row, int k, type alpha, type beta, const type* c,         \
        Py_ssize_t c_row, int rows, ADLA_MASK_##suffix last, const char* prefetch, int lines, \
        int stream, int triangle, int diagonal) {                                             \
    ADLA_VEC_##suffix sum[R][V], row[V];                                                      \
    const type* xr[R];                                                                        \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                    \
        xr[r] = x + (r < rows ? r : rows - 1) * x_row;                                        \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) sum[r][v] = ADLA_ZERO_##suffix(); \
    }                                                                                         \
    for (int l = 0; l < k; l++) {                                                             \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            row[v] = ADLA_LOAD_##suffix(v == V - 1 ? last : (ADLA_MASK_##suffix)~0,           \
                                        b + l * b_row + v * ADLA_PER_##suffix);               \
        if (2 * l < lines) {                                                                  \
            _mm_prefetch(prefetch + 128 * l, _MM_HINT_T1);                                    \
            if (2 * l + 1 < lines)                                                            \
                _mm_prefetch(prefetch + 128 * l + 64, _MM_HINT_T1);                           \
        }                                                                                     \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                \
            ADLA_VEC_##suffix a = ADLA_SET1_##suffix(xr[r][l * x_step]);                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                               \
                sum[r][v] = ADLA_FMADD_##suffix(a, row[v], sum[r][v]);                        \
        }                                                                                     \
    }                                                                                         \
    ADLA_FMA_STORE(suffix, type, R, V, sum, out, c, stream, triangle, diagonal);              \
}

/* out (m x n, rows out_row apart) = alpha X B + beta C, X[i, l] = x[i x_row + l x_step]
   (m x k), B[l, j] = b[l b_row + j] (k x n), C (rows c_row apart) NULL or possibly out.
   Columns go in blocks of 4 vectors by 6 rows while 4 vectors are left, then of 2 or 1
   vectors by 8 rows, so that few lanes run empty at any width. Each block sums over the l
   where its rows of X and columns of B can both be nonzero (`shape`, above): a triangular
   product in about half the multiply-adds, with the bits of the whole one (the terms left out
   are exact zeros), a triangle of one likewise. The prefetch queue is drained over the
   blocks, 2 lines per l; stream: non-temporal stores where the result and its rows are 64-byte
   aligned, blocks across a triangle's diagonal included (their zeros put in by the stores:
   before, those blocks were stored through the caches and zeroed after, and a batch's triangle
   of 64 x 64 float64 products took 6.7 ms against 5.0 now, the whole product 6.4). */
#define ADLA_FMA_PRODUCT(suffix, type)                                                         \
ADLA_FMA_BLOCK(suffix, type, 6, 4)                                                            \
ADLA_FMA_BLOCK(suffix, type, 8, 2)                                                            \
ADLA_FMA_BLOCK(suffix, type, 8, 1)                                                            \
static void adla_fma_product_##suffix(type* out, Py_ssize_t out_row, const type* x,           \
                                      Py_ssize_t x_row, Py_ssize_t x_step, const type* b,   \
                                      Py_ssize_t b_row, int m, int n, int k, type alpha,     \
                                      type beta, const type* c, Py_ssize_t c_row,            \
                                      int stream, int shape) {                               \
    const int per = ADLA_PER_##suffix;                                                        \
    adla_prefetch_queue* queue = &adla_prefetch;    /* one thread-local lookup a product */   \
    int aligned = stream && (uintptr_t)out % 64 == 0 && (size_t)out_row * sizeof(type) % 64 == 0; \
    /* Where B's triangle decides a block's extent, blocks one vector wide up to order 128:   \
       finer steps along the triangle (1.1-1.4x faster at 64 and 128; 1.15x slower at 256).   \
       Not for a triangle of the result: there 4 vectors by 6 rows summed over all of k were  \
       faster (A/B, Intel Xeon, fwd+bwd of trmm, trsm, potrf, potri and potrs at 1000 x 64    \
       and 300 x 128: 1.01-1.14x). */                                                         \
    int narrow = n <= 128 && (shape & (ADLA_RIGHT_LOWER | ADLA_RIGHT_UPPER)) != 0;            \
    for (int j0 = 0; j0 < n;) {                                                               \
        int vectors = (n - j0 + per - 1) / per;                                               \
        int width = narrow ? per : vectors >= 4 ? 4 * per : vectors >= 2 ? 2 * per : per;    \
        int cols = n - j0 < width ? n - j0 : width;                                           \
        int step = width == 4 * per ? 6 : 8;                                                  \
        ADLA_MASK_##suffix last = (ADLA_MASK_##suffix)(cols % per == 0                        \
                                  ? ~0u : (1u << (cols % per)) - 1);                          \
        int full = aligned && cols == width;                                                  \
        for (int i0 = 0; i0 < m; i0 += step) {                                                \
            int lines = 0, rows = m - i0 < step ? m - i0 : step, l0 = 0, l1 = k;              \
            int outside = (shape & ADLA_OUT_LOWER && j0 >= i0 + rows)                         \
                          || (shape & ADLA_OUT_UPPER && j0 + cols <= i0);                     \
            int across = !outside && ((shape & ADLA_OUT_LOWER && j0 + cols > i0 + 1)          \
                                      || (shape & ADLA_OUT_UPPER && j0 < i0 + rows - 1));     \
            type block_alpha = outside ? 0 : alpha;   /* zeros: no sum, no C */               \
            if (outside) l1 = 0;                                                              \
            if (shape & ADLA_LEFT_LOWER && l1 > i0 + rows) l1 = i0 + rows;                    \
            if (shape & ADLA_LEFT_UPPER) l0 = i0;                                             \
            if (shape & ADLA_RIGHT_LOWER && l0 < j0) l0 = j0;                                 \
            if (shape & ADLA_RIGHT_UPPER && l1 > j0 + cols) l1 = j0 + cols;                   \
            if (l1 < l0) l1 = l0;                                                             \
            const char* prefetch = queue->count                                               \
                ? adla_prefetch_take(queue, 2 * (Py_ssize_t)(l1 - l0), &lines) : NULL;        \
            type* o = out + (Py_ssize_t)i0 * out_row + j0;                                    \
            const type* xi = x + i0 * x_row + l0 * x_step;                                    \
            const type* bl = b + j0 + (Py_ssize_t)l0 * b_row;                                 \
            const type* ci = c && !outside ? c + (Py_ssize_t)i0 * c_row + j0 : NULL;          \
            int triangle = across ? shape & (ADLA_OUT_LOWER | ADLA_OUT_UPPER) : 0;            \
            if (width == 4 * per)                                                             \
                adla_fma_block_##suffix##_6x4(o, out_row, xi, x_row, x_step, bl, b_row,       \
                    l1 - l0, block_alpha, beta, ci, c_row, rows, last, prefetch, lines,       \
                    full, triangle, i0 - j0);                                                 \
            else if (width == 2 * per)                                                        \
                adla_fma_block_##suffix##_8x2(o, out_row, xi, x_row, x_step, bl, b_row,       \
                    l1 - l0, block_alpha, beta, ci, c_row, rows, last, prefetch, lines,       \
                    full, triangle, i0 - j0);                                                 \
            else                                                                              \
                adla_fma_block_##suffix##_8x1(o, out_row, xi, x_row, x_step, bl, b_row,       \
                    l1 - l0, block_alpha, beta, ci, c_row, rows, last, prefetch, lines,       \
                    full, triangle, i0 - j0);                                                 \
        }                                                                                     \
        j0 += cols;                                                                           \
    }                                                                                         \
    if (aligned)                                                                              \
        _mm_sfence();   /* the streamed lines are visible before another thread reads them */ \
}

/* gemm's tangent in one pass, dD = alpha (dX B + X dB) + beta dC, for R rows by V vectors:
   each row of B and dB and each entry of X and dX loaded once for both products. dX is X's
   layout `dx` bytes on, dB B's `db` bytes on (one address register each for all rows); dc
   NULL or rows c_row apart. R V accumulators, 2 V rows and two broadcasts in the registers. */
#define ADLA_FMA_TANGENT_BLOCK(suffix, type, R, V)                                             \
static void adla_fma_tangent_block_##suffix##_##R##x##V(                                      \
        type* dout, Py_ssize_t out_row, const type* x, intptr_t dx, Py_ssize_t x_row,         \
        Py_ssize_t x_step, const type* b, intptr_t db, Py_ssize_t b_row, int k, type alpha,   \
        type beta, const type* dc, Py_ssize_t c_row, int rows, ADLA_MASK_##suffix last) {     \
    ADLA_VEC_##suffix tangent[R][V], row[V], drow[V];                                         \
    const type* xr[R];                                                                        \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                    \
        xr[r] = x + (r < rows ? r : rows - 1) * x_row;                                        \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            tangent[r][v] = ADLA_ZERO_##suffix();                                             \
    }                                                                                         \
    for (int l = 0; l < k; l++) {                                                             \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {                                 \
            ADLA_MASK_##suffix mask = v == V - 1 ? last : (ADLA_MASK_##suffix)~0;             \
            const type* at = b + l * b_row + v * ADLA_PER_##suffix;                           \
            row[v] = ADLA_LOAD_##suffix(mask, at);                                            \
            drow[v] = ADLA_LOAD_##suffix(mask, (const type*)((uintptr_t)at + db));            \
        }                                                                                     \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                \
            const type* at = xr[r] + l * x_step;                                              \
            ADLA_VEC_##suffix a = ADLA_SET1_##suffix(*at);                                    \
            ADLA_VEC_##suffix da = ADLA_SET1_##suffix(*(const type*)((uintptr_t)at + dx));    \
            _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {                             \
                tangent[r][v] = ADLA_FMADD_##suffix(da, row[v], tangent[r][v]);               \
                tangent[r][v] = ADLA_FMADD_##suffix(a, drow[v], tangent[r][v]);               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    ADLA_FMA_STORE(suffix, type, R, V, tangent, dout, dc, 0, 0, 0);                           \
}

/* dout (m x n, rows out_row apart) = gemm's tangent (above), X and dX (m x k) read as x, dx
   (same layout), B and dB (k x n) as b, db (rows b_row apart), dC as dc (NULL: none): blocks
   of 6 rows by 2 vectors while 2 vectors of columns are left, then 8 rows by 1. */
#define ADLA_FMA_TANGENT(suffix, type)                                                         \
ADLA_FMA_TANGENT_BLOCK(suffix, type, 6, 2)                                                    \
ADLA_FMA_TANGENT_BLOCK(suffix, type, 8, 1)                                                    \
static void adla_fma_tangent_##suffix(type* dout, Py_ssize_t out_row, const type* x,          \
                                      const type* dx, Py_ssize_t x_row, Py_ssize_t x_step,    \
                                      const type* b, const type* db, Py_ssize_t b_row, int m, \
                                      int n, int k, type alpha, type beta, const type* dc,    \
                                      Py_ssize_t c_row) {                                     \
    const int per = ADLA_PER_##suffix;                                                        \
    intptr_t dx_bytes = (intptr_t)((uintptr_t)dx - (uintptr_t)x);                             \
    intptr_t db_bytes = (intptr_t)((uintptr_t)db - (uintptr_t)b);                             \
    for (int j0 = 0; j0 < n;) {                                                               \
        int width = n - j0 > per ? 2 * per : per;                                             \
        int cols = n - j0 < width ? n - j0 : width;                                           \
        int step = width == per ? 8 : 6;                                                      \
        ADLA_MASK_##suffix last = (ADLA_MASK_##suffix)(cols % per == 0                        \
                                  ? ~0u : (1u << (cols % per)) - 1);                          \
        for (int i0 = 0; i0 < m; i0 += step) {                                                \
            int rows = m - i0 < step ? m - i0 : step;                                         \
            Py_ssize_t o = (Py_ssize_t)i0 * out_row + j0;                                     \
            const type* dci = dc ? dc + (Py_ssize_t)i0 * c_row + j0 : NULL;                   \
            if (width == per)                                                                 \
                adla_fma_tangent_block_##suffix##_8x1(dout + o, out_row, x + i0 * x_row,      \
                    dx_bytes, x_row, x_step, b + j0, db_bytes, b_row, k, alpha, beta, dci,    \
                    c_row, rows, last);                                                       \
            else                                                                              \
                adla_fma_tangent_block_##suffix##_6x2(dout + o, out_row, x + i0 * x_row,      \
                    dx_bytes, x_row, x_step, b + j0, db_bytes, b_row, k, alpha, beta, dci,    \
                    c_row, rows, last);                                                       \
        }                                                                                     \
        j0 += cols;                                                                           \
    }                                                                                         \
}

ADLA_FMA_TANGENT(d, double)
ADLA_FMA_TANGENT(f, float)
ADLA_FMA_PRODUCT(d, double)
ADLA_FMA_PRODUCT(f, float)

/* x := alpha T^-1 x in place, T lower triangular of order t <= ADLA_SOLVE_ORDER, T[i, k] =
   a[i a_row + k a_col] (its diagonal read as ones with `unit`), x t rows of c entries, row i at
   x + i x_row (steps may be negative): the triangular solve's leaves (helpers.pxi, solve_rows),
   in the same order of operations, each multiply-add rounded once. One vector of columns at a
   time with all t rows in registers, right-looking: row k is final (times 1/T[k, k]) before
   its terms leave the rows below, independent multiply-adds from T's entries gathered once. */
#define ADLA_SOLVE_ORDER 16
#define ADLA_FMA_SOLVE(suffix, type)                                                           \
static void adla_fma_solve_##suffix(const type* a, Py_ssize_t a_row, Py_ssize_t a_col,        \
                                    type* x, Py_ssize_t x_row, int t, int c, type alpha,      \
                                    int unit) {                                               \
    const int per = ADLA_PER_##suffix;                                                        \
    type coefficient[ADLA_SOLVE_ORDER][ADLA_SOLVE_ORDER], inverse[ADLA_SOLVE_ORDER];          \
    for (int i = 0; i < t; i++) {                                                             \
        for (int k = 0; k < i; k++)                                                           \
            coefficient[i][k] = a[i * a_row + k * a_col];                                     \
        inverse[i] = unit ? 1 : (type)1 / a[i * (a_row + a_col)];                             \
    }                                                                                         \
    const ADLA_VEC_##suffix scale = ADLA_SET1_##suffix(alpha);                                \
    for (int j0 = 0; j0 < c; j0 += per) {                                                     \
        int cols = c - j0 < per ? c - j0 : per;                                               \
        ADLA_MASK_##suffix mask = (ADLA_MASK_##suffix)(cols == per ? ~0u : (1u << cols) - 1); \
        ADLA_VEC_##suffix row[ADLA_SOLVE_ORDER];                                              \
        _Pragma("GCC unroll 16") for (int i = 0; i < ADLA_SOLVE_ORDER; i++)                   \
            if (i < t) {                                                                      \
                row[i] = ADLA_LOAD_##suffix(mask, x + i * x_row + j0);                        \
                if (alpha != 1)                                                               \
                    row[i] = ADLA_MUL_##suffix(scale, row[i]);                                \
            }                                                                                 \
        _Pragma("GCC unroll 16") for (int k = 0; k < ADLA_SOLVE_ORDER; k++)                   \
            if (k < t) {                                                                      \
                if (!unit)                                                                    \
                    row[k] = ADLA_MUL_##suffix(row[k], ADLA_SET1_##suffix(inverse[k]));       \
                _Pragma("GCC unroll 16") for (int i = k + 1; i < ADLA_SOLVE_ORDER; i++)       \
                    if (i < t)                                                                \
                        row[i] = ADLA_FNMADD_##suffix(ADLA_SET1_##suffix(coefficient[i][k]),  \
                                                      row[k], row[i]);                        \
            }                                                                                 \
        _Pragma("GCC unroll 16") for (int i = 0; i < ADLA_SOLVE_ORDER; i++)                   \
            if (i < t)                                                                        \
                ADLA_STORE_##suffix(x + i * x_row + j0, mask, row[i]);                        \
    }                                                                                         \
}
ADLA_FMA_SOLVE(d, double)
ADLA_FMA_SOLVE(f, float)

#pragma GCC pop_options

#else
#define ADLA_HAS_FMA_PRODUCT 0
static int adla_fma_product_supported(void) { return 0; }
static int adla_cpu_is_amd(void) { return 0; }
static void adla_fma_tangent_d(double* dout, Py_ssize_t out_row, const double* x,
                               const double* dx, Py_ssize_t x_row, Py_ssize_t x_step,
                               const double* b, const double* db, Py_ssize_t b_row, int m,
                               int n, int k, double alpha, double beta, const double* dc,
                               Py_ssize_t c_row) {}
static void adla_fma_tangent_f(float* dout, Py_ssize_t out_row, const float* x,
                               const float* dx, Py_ssize_t x_row, Py_ssize_t x_step,
                               const float* b, const float* db, Py_ssize_t b_row, int m, int n,
                               int k, float alpha, float beta, const float* dc,
                               Py_ssize_t c_row) {}
static void adla_fma_product_d(double* out, Py_ssize_t out_row, const double* x,
                               Py_ssize_t x_row, Py_ssize_t x_step, const double* b,
                               Py_ssize_t b_row, int m, int n, int k, double alpha, double beta,
                               const double* c, Py_ssize_t c_row, int stream, int shape) {}
static void adla_fma_product_f(float* out, Py_ssize_t out_row, const float* x,
                               Py_ssize_t x_row, Py_ssize_t x_step, const float* b,
                               Py_ssize_t b_row, int m, int n, int k, float alpha, float beta,
                               const float* c, Py_ssize_t c_row, int stream, int shape) {}
static void adla_fma_solve_d(const double* a, Py_ssize_t a_row, Py_ssize_t a_col, double* x,
                             Py_ssize_t x_row, int t, int c, double alpha, int unit) {}
static void adla_fma_solve_f(const float* a, Py_ssize_t a_row, Py_ssize_t a_col, float* x,
                             Py_ssize_t x_row, int t, int c, float alpha, int unit) {}
#endif

#endif

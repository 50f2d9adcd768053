/* Row updates of the interleaved kernels where one scalar multiplies all lanes (a triangle the
   whole batch shares): x[0:8] := x - t0 y0 - t1 y1 - ..., y_r = y + r step, subtracted in that
   order, in GCC vector extensions. Written as plain loops over the 8 lanes, with x and y in
   the same scratch, gcc left them scalar. No FMA, so the SSE2 and AVX2 builds agree bit for
   bit with each other and with the scalar loops of the other kernels (the float64 row
   families' FMA versions, further down, are compiled for AVX-512 alone and called by both). */
#ifndef ADLA_LANE_UPDATE_H
#define ADLA_LANE_UPDATE_H

#include <Python.h>
#include <string.h>

#include "_small_product.h"     /* its 4 x 4 tile transpose */

#ifdef __AVX__
#define ADLA_LANE_BYTES 32
#else
#define ADLA_LANE_BYTES 16
#endif
typedef double adla_lanes_d __attribute__((vector_size(ADLA_LANE_BYTES)));
typedef float adla_lanes_f __attribute__((vector_size(ADLA_LANE_BYTES)));

/* Arrays of vectors of lanes from memory and back, by vector loads and stores. A memcpy of
   the whole array, once inlined, went through 16-byte moves, and the vector loads of the
   array that followed stalled on store forwarding (potrf's reverse sweep spent a fifth of its
   time there at 1000 x 64). */
#define ADLA_LOAD_VECTORS(vector, array, source) {                                          \
    typedef vector unaligned_ __attribute__((aligned(1), may_alias));                       \
    for (size_t q_ = 0; q_ < sizeof(array) / sizeof(vector); q_++)                          \
        ((vector*)(array))[q_] =                                                            \
            *(const unaligned_*)((source) + q_ * (sizeof(vector) / sizeof(*(source))));     \
}
#define ADLA_STORE_VECTORS(vector, target, array) {                                         \
    typedef vector unaligned_ __attribute__((aligned(1), may_alias));                       \
    for (size_t q_ = 0; q_ < sizeof(array) / sizeof(vector); q_++)                          \
        *(unaligned_*)((target) + q_ * (sizeof(vector) / sizeof(*(target)))) =              \
            ((vector*)(array))[q_];                                                         \
}

/* adla_subtract4: the same with four terms, unrolled; through the loop over terms, the shared
   triangular solve at 2000 x (64, 16) took 7.5 ms instead of 4.8. */
#define ADLA_LANE_UPDATE(suffix, type, vector)                                              \
static inline void adla_subtract_##suffix(type* x, const type* y, Py_ssize_t step,          \
                                          const type* t, int terms) {                       \
    enum { PER = sizeof(vector) / sizeof(type) };                                           \
    for (int h = 0; h < 8; h += PER) {                                                      \
        vector sum, row;                                                                    \
        memcpy(&sum, x + h, sizeof(vector));                                                \
        for (int r = 0; r < terms; r++) {                                                   \
            memcpy(&row, y + r * step + h, sizeof(vector));                                 \
            sum = sum - t[r] * row;                                                         \
        }                                                                                   \
        memcpy(x + h, &sum, sizeof(vector));                                                \
    }                                                                                       \
}                                                                                           \
static inline void adla_subtract4_##suffix(type* x, const type* y, Py_ssize_t step,         \
                                           const type* t) {                                 \
    enum { PER = sizeof(vector) / sizeof(type) };                                           \
    for (int h = 0; h < 8; h += PER) {                                                      \
        vector sum, row;                                                                    \
        memcpy(&sum, x + h, sizeof(vector));                                                \
        memcpy(&row, y + h, sizeof(vector));                                                \
        sum = sum - t[0] * row;                                                             \
        memcpy(&row, y + step + h, sizeof(vector));                                         \
        sum = sum - t[1] * row;                                                             \
        memcpy(&row, y + 2 * step + h, sizeof(vector));                                     \
        sum = sum - t[2] * row;                                                             \
        memcpy(&row, y + 3 * step + h, sizeof(vector));                                     \
        sum = sum - t[3] * row;                                                             \
        memcpy(x + h, &sum, sizeof(vector));                                                \
    }                                                                                       \
}
ADLA_LANE_UPDATE(d, double, adla_lanes_d)
ADLA_LANE_UPDATE(f, float, adla_lanes_f)

/* familyC_suffix(...) for C = count, 1 to 4: the dispatch of the fixed-count loops below. */
#define ADLA_CALL_BY_COUNT(count, family, suffix, ...)                                      \
    if ((count) == 4) family##4_##suffix(__VA_ARGS__);                                      \
    else if ((count) == 3) family##3_##suffix(__VA_ARGS__);                                 \
    else if ((count) == 2) family##2_##suffix(__VA_ARGS__);                                 \
    else family##1_##suffix(__VA_ARGS__);


/* adla_rotate_lanes: (x, y) := (c x - s y, s x + c y), 8 lanes an entry each with its own c
   and s (lanes.pxi's rotate_lanes). adla_rotate_dot: the same, and with it acc := sum_i x'[i]
   z[i] of the rotated x and z in order (from 0): the next pair's dot product of one-sided
   Jacobi (svd.pxi), from the rotation's registers. One sum apart, its additions waited on each
   other's latency (a fifth of the SVD's forward at 1000 x 64 x 64 float32); here they wait
   alongside the rotation. Each lane gets a scalar loop's operations: the same bits. */
#define ADLA_LANE_ROTATION(name, DOT, suffix, type, vector)                                 \
static inline void name##_##suffix(type* x, type* y, const type* c, const type* s,          \
                                   const type* z, type* acc, int length) {                  \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector cv[PARTS], sv[PARTS], sum[PARTS], a, b, p, q, w;                                 \
    ADLA_LOAD_VECTORS(vector, cv, c)                                                        \
    ADLA_LOAD_VECTORS(vector, sv, s)                                                        \
    memset(sum, 0, sizeof(sum));                                                            \
    for (int i = 0; i < length; i++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&a, x + i * 8 + PER * h, sizeof(vector));                                \
            memcpy(&b, y + i * 8 + PER * h, sizeof(vector));                                \
            p = cv[h] * a - sv[h] * b;                                                      \
            q = sv[h] * a + cv[h] * b;                                                      \
            memcpy(x + i * 8 + PER * h, &p, sizeof(vector));                                \
            memcpy(y + i * 8 + PER * h, &q, sizeof(vector));                                \
            if (DOT) {                                                                      \
                memcpy(&w, z + i * 8 + PER * h, sizeof(vector));                            \
                sum[h] = sum[h] + p * w;                                                    \
            }                                                                               \
        }                                                                                   \
    if (DOT)                                                                                \
        ADLA_STORE_VECTORS(vector, acc, sum)                                                \
}
ADLA_LANE_ROTATION(adla_rotate_lanes, 0, d, double, adla_lanes_d)
ADLA_LANE_ROTATION(adla_rotate_lanes, 0, f, float, adla_lanes_f)
ADLA_LANE_ROTATION(adla_rotate_dot, 1, d, double, adla_lanes_d)
ADLA_LANE_ROTATION(adla_rotate_dot, 1, f, float, adla_lanes_f)

/* Entry-wise steps on one entry's 8 lanes, through vectors: as loops over the lanes in Cython,
   gcc stored a product to a local array and read it back lane by lane to build the next
   vector (Zen 4 profile of potrf at 1000 x 64 float32: a tenth of the backward's time in its
   reverse step, now adla_reverse_block's, 7% of the forward's). Each lane gets the loops'
   operations: the same bits.
   adla_lanes_product: out := a b (cholesky_lanes' L[i, j] = s / L[j, j]).
   adla_nonfinite_rows: total := the sum of x[e 8:e 8+8] 0 over the entries e of ``rows`` rows
   ``row`` entries apart, ``cols`` of each (or its lower triangle's): NaN in the lanes with an
   inf or NaN. In four sums: one was bound by the latency of its additions. */
#define ADLA_LANE_ENTRIES(suffix, type, vector)                                             \
static inline void adla_lanes_product_##suffix(type* out, const type* a, const type* b) {   \
    enum { PER = sizeof(vector) / sizeof(type) };                                           \
    for (int h = 0; h < 8; h += PER) {                                                      \
        vector x, y;                                                                        \
        memcpy(&x, a + h, sizeof(vector));                                                  \
        memcpy(&y, b + h, sizeof(vector));                                                  \
        x = x * y;                                                                          \
        memcpy(out + h, &x, sizeof(vector));                                                \
    }                                                                                       \
}                                                                                           \
static inline void adla_nonfinite_rows_##suffix(type* total, const type* x, int rows,       \
                                               int cols, Py_ssize_t row, int lower_only) { \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector sum[4][PARTS], y;                                                                \
    memset(sum, 0, sizeof(sum));                                                            \
    for (int i = 0; i < rows; i++) {                                                        \
        const type* x_i = x + i * row * 8;                                                  \
        int length = lower_only && i + 1 < cols ? i + 1 : cols, j = 0;                      \
        for (; j + 4 <= length; j += 4)                                                     \
            for (int q = 0; q < 4; q++)                                                     \
                for (int h = 0; h < PARTS; h++) {                                           \
                    memcpy(&y, x_i + (j + q) * 8 + PER * h, sizeof(vector));                \
                    sum[q][h] = sum[q][h] + y * (type)0;                                    \
                }                                                                           \
        for (int q = 0; j < length; j++, q++)                                               \
            for (int h = 0; h < PARTS; h++) {                                               \
                memcpy(&y, x_i + j * 8 + PER * h, sizeof(vector));                          \
                sum[q][h] = sum[q][h] + y * (type)0;                                        \
            }                                                                               \
    }                                                                                       \
    for (int h = 0; h < PARTS; h++) {                                                       \
        y = (sum[0][h] + sum[1][h]) + (sum[2][h] + sum[3][h]);                              \
        memcpy(total + PER * h, &y, sizeof(vector));                                        \
    }                                                                                       \
}
ADLA_LANE_ENTRIES(d, double, adla_lanes_d)
ADLA_LANE_ENTRIES(f, float, adla_lanes_f)

/* adla_reverse_blockC: C consecutive steps of a row of potrf_backward_lanes' reverse sweep,
   on entries x[e 8:e 8+8], e < C, kept in registers: for e from C-1 down, s := x[e] d[e],
   x[e] := s / 2, s into steps[(C-1-e) 8:] and scale[e scale_step:], then x[k] -= s l_e[k]
   for k < e, where l_e = l + e row_step. The same operations in the same order as a step at
   a time with a one-row adla_minus_scaled_rows after each (the same bits; no FMA, in sums of
   at most 3 terms), which went through memory: each step's load waited on the previous
   step's store. */
#define ADLA_REVERSE_BLOCK(suffix, type, vector, COUNT)                                      \
static inline void adla_reverse_block##COUNT##_##suffix(type* x, const type* d, type* steps, \
                                                  type* scale, Py_ssize_t scale_step,       \
                                                  const type* l, Py_ssize_t row_step) {     \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector xb[COUNT][PARTS], a, b, half;                                                    \
    ADLA_LOAD_VECTORS(vector, xb, x)                                                        \
    _Pragma("GCC unroll 4")                                                                 \
    for (int e = COUNT - 1; e >= 0; e--)                                                    \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&b, d + e * 8 + PER * h, sizeof(vector));                                \
            a = xb[e][h] * b;                                                               \
            half = a * (type)0.5;                                                           \
            memcpy(steps + (COUNT - 1 - e) * 8 + PER * h, &a, sizeof(vector));              \
            memcpy(scale + e * scale_step + PER * h, &a, sizeof(vector));                   \
            xb[e][h] = half;                                                                \
            _Pragma("GCC unroll 4")                                                         \
            for (int k = 0; k < e; k++) {                                                   \
                memcpy(&b, l + e * row_step + k * 8 + PER * h, sizeof(vector));             \
                xb[k][h] = xb[k][h] - a * b;                                                \
            }                                                                               \
        }                                                                                   \
    ADLA_STORE_VECTORS(vector, x, xb)                                                       \
}
#define ADLA_REVERSE_BLOCKS(suffix, type, vector)                                           \
ADLA_REVERSE_BLOCK(suffix, type, vector, 1) ADLA_REVERSE_BLOCK(suffix, type, vector, 2)     \
ADLA_REVERSE_BLOCK(suffix, type, vector, 3) ADLA_REVERSE_BLOCK(suffix, type, vector, 4)     \
static inline void adla_reverse_block_##suffix(type* x, const type* d, type* steps,          \
                                               type* scale, Py_ssize_t scale_step,          \
                                               const type* l, Py_ssize_t row_step,          \
                                               int count) {                                 \
    ADLA_CALL_BY_COUNT(count, adla_reverse_block, suffix, x, d, steps, scale, scale_step, l, \
                       row_step)                                                            \
}
ADLA_REVERSE_BLOCKS(d, double, adla_lanes_d)
ADLA_REVERSE_BLOCKS(f, float, adla_lanes_f)

/* Instantiates a family of row updates below for both types and 1 to 4 rows. */
#define ADLA_FOR_ROW_COUNTS(family)                                                         \
family(d, double, adla_lanes_d, 1) family(f, float, adla_lanes_f, 1)                        \
family(d, double, adla_lanes_d, 2) family(f, float, adla_lanes_f, 2)                        \
family(d, double, adla_lanes_d, 3) family(f, float, adla_lanes_f, 3)                        \
family(d, double, adla_lanes_d, 4) family(f, float, adla_lanes_f, 4)

/* adla_minus_dot_rowsR: acc[r 8:r 8+8] -= sum_i x[r row_step + i step:...] y[i step:...] for
   the R rows r of x at once, each product subtracted in order: R chains per vector of lanes
   share the loads of y. adla_add_dot_rowsR: the same sums added, never in FMA (add_dot's bits,
   lanes.pxi). As plain loops over lanes, gcc vectorised two such sums across i with shuffles,
   1.4x slower than one sum at a time. */
#define ADLA_LANE_ROW_SUMS(name, OP, suffix, type, vector, ROWS)                            \
static inline void name##ROWS##_##suffix(type* acc, const type* x, Py_ssize_t row_step,     \
                                         const type* y, Py_ssize_t step, int length) {      \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector s[ROWS][PARTS], a, c;                                                            \
    ADLA_LOAD_VECTORS(vector, s, acc)                                                       \
    for (int i = 0; i < length; i++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&c, y + i * step + PER * h, sizeof(vector));                             \
            for (int r = 0; r < ROWS; r++) {                                                \
                memcpy(&a, x + r * row_step + i * step + PER * h, sizeof(vector));          \
                s[r][h] = s[r][h] OP a * c;                                                 \
            }                                                                               \
        }                                                                                   \
    ADLA_STORE_VECTORS(vector, acc, s)                                                      \
}
#define ADLA_LANE_DOT_ROWS(suffix, type, vector, ROWS)                                      \
    ADLA_LANE_ROW_SUMS(adla_minus_dot_rows, -, suffix, type, vector, ROWS)
#define ADLA_LANE_ADD_DOT_ROWS(suffix, type, vector, ROWS)                                  \
    ADLA_LANE_ROW_SUMS(adla_add_dot_rows, +, suffix, type, vector, ROWS)
ADLA_FOR_ROW_COUNTS(ADLA_LANE_DOT_ROWS)
ADLA_FOR_ROW_COUNTS(ADLA_LANE_ADD_DOT_ROWS)
#define ADLA_ADD_DOT_ROWS(suffix, type)                                                     \
static inline void adla_add_dot_rows_##suffix(type* acc, const type* x, Py_ssize_t row_step, \
                                              const type* y, Py_ssize_t step, int rows,     \
                                              int length) {                                 \
    ADLA_CALL_BY_COUNT(rows, adla_add_dot_rows, suffix, acc, x, row_step, y, step, length)  \
}
ADLA_ADD_DOT_ROWS(d, double)
ADLA_ADD_DOT_ROWS(f, float)

/* adla_column_pair_rowsR: two adjacent columns j = length and j + 1 of the R rows of x (row
   i of the factor at x + i row_step), both summed in one pass over x: acc0[r] -= sum_{i<j}
   x_r[i] y0[i], then x_r[j] := acc0[r] d (the entry, stored), then acc1[r] -= sum_{i<=j}
   x_r[i] y1[i] with that entry last. Each sum's terms in order, as two calls of
   adla_minus_dot_rowsR and a lane product would: the same bits, 2R chains where one column had
   R (an FMA chain's latency bound float32's four). */
#define ADLA_LANE_COLUMN_PAIR(suffix, type, vector, ROWS)                                   \
static inline void adla_column_pair_rows##ROWS##_##suffix(type* acc0, type* acc1, type* x,   \
                                                   Py_ssize_t row_step, const type* y0,     \
                                                   const type* y1, const type* d,           \
                                                   Py_ssize_t step, int length) {           \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector s0[ROWS][PARTS], s1[ROWS][PARTS], a, c0, c1;                                     \
    ADLA_LOAD_VECTORS(vector, s0, acc0)                                                     \
    ADLA_LOAD_VECTORS(vector, s1, acc1)                                                     \
    for (int i = 0; i < length; i++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&c0, y0 + i * step + PER * h, sizeof(vector));                           \
            memcpy(&c1, y1 + i * step + PER * h, sizeof(vector));                           \
            for (int r = 0; r < ROWS; r++) {                                                \
                memcpy(&a, x + r * row_step + i * step + PER * h, sizeof(vector));          \
                s0[r][h] = s0[r][h] - a * c0;                                               \
                s1[r][h] = s1[r][h] - a * c1;                                               \
            }                                                                               \
        }                                                                                   \
    for (int h = 0; h < PARTS; h++) {                                                       \
        memcpy(&c0, d + PER * h, sizeof(vector));                                           \
        memcpy(&c1, y1 + length * step + PER * h, sizeof(vector));                          \
        for (int r = 0; r < ROWS; r++) {                                                    \
            a = s0[r][h] * c0;                                                              \
            memcpy(x + r * row_step + length * step + PER * h, &a, sizeof(vector));         \
            s1[r][h] = s1[r][h] - a * c1;                                                   \
        }                                                                                   \
    }                                                                                       \
    ADLA_STORE_VECTORS(vector, acc1, s1)                                                    \
}
ADLA_FOR_ROW_COUNTS(ADLA_LANE_COLUMN_PAIR)

/* adla_tangent_dot_rowsR: for the R rows r of a and of d (row_step apart in both),
   s[r] -= sum_i a_r[i] y[i] and t[r] -= sum_i (d_r[i] y[i] + a_r[i] e[i]), each term
   subtracted in that order (the Cholesky factor's and its tangent's sums, 8 lanes each): the
   loads of y and e serve all R rows. */
#define ADLA_TANGENT_DOT_ROWS(suffix, type, vector, ROWS)                                   \
static inline void adla_tangent_dot_rows##ROWS##_##suffix(type* s, type* t, const type* a,  \
                                                   const type* d, Py_ssize_t row_step,      \
                                                   const type* y, const type* e,            \
                                                   int length) {                            \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector sv[ROWS][PARTS], tv[ROWS][PARTS], x, z, b, c;                                    \
    ADLA_LOAD_VECTORS(vector, sv, s)                                                        \
    ADLA_LOAD_VECTORS(vector, tv, t)                                                        \
    for (int i = 0; i < length; i++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&b, y + i * 8 + PER * h, sizeof(vector));                                \
            memcpy(&c, e + i * 8 + PER * h, sizeof(vector));                                \
            for (int r = 0; r < ROWS; r++) {                                                \
                memcpy(&x, a + r * row_step + i * 8 + PER * h, sizeof(vector));             \
                memcpy(&z, d + r * row_step + i * 8 + PER * h, sizeof(vector));             \
                sv[r][h] = sv[r][h] - x * b;                                                \
                tv[r][h] = tv[r][h] - z * b - x * c;                                        \
            }                                                                               \
        }                                                                                   \
    ADLA_STORE_VECTORS(vector, s, sv)                                                       \
    ADLA_STORE_VECTORS(vector, t, tv)                                                       \
}
ADLA_FOR_ROW_COUNTS(ADLA_TANGENT_DOT_ROWS)

/* adla_minus_scaled_rowsR: x[i 8:i 8+8] -= s[0:8] y[i 8:...], then s[8:16] y[row_step + i 8:...],
   ... for the R rows of y, i < length: a rank-R update of a row of lanes, each lane its own
   coefficient, subtracted in that order; one load and store of x for R products. The
   coefficients go straight into registers: through ADLA_LOAD_VECTORS the FMA builds copied
   them to the stack in 16-byte halves and read them back whole, a failed store forward on
   each call (a seventh of this loop's time at 1000 x 64; A/B in one process, float32:
   potrf_backward 1.03x faster at 64-128, inverse 1.02-1.05x, float64 level). */
#define ADLA_LANE_SCALED_ROWS(suffix, type, vector, ROWS)                                   \
static inline void adla_minus_scaled_rows##ROWS##_##suffix(type* x, const type* s,          \
                                                    const type* y, Py_ssize_t row_step,     \
                                                    int length) {                           \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    typedef vector unaligned_ __attribute__((aligned(1), may_alias));                       \
    vector t[ROWS][PARTS], a, b;                                                            \
    _Pragma("GCC unroll 8")                                                                 \
    for (int r = 0; r < ROWS; r++)                                                          \
        for (int h = 0; h < PARTS; h++)                                                     \
            t[r][h] = *(const unaligned_*)(s + r * 8 + PER * h);                            \
    for (int i = 0; i < length; i++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            memcpy(&a, x + i * 8 + PER * h, sizeof(vector));                                \
            for (int r = 0; r < ROWS; r++) {                                                \
                memcpy(&b, y + r * row_step + i * 8 + PER * h, sizeof(vector));             \
                a = a - t[r][h] * b;                                                        \
            }                                                                               \
            memcpy(x + i * 8 + PER * h, &a, sizeof(vector));                                \
        }                                                                                   \
}
ADLA_FOR_ROW_COUNTS(ADLA_LANE_SCALED_ROWS)

/* The three families again for float64, 8 lanes in one AVX-512 vector, and float32, one AVX2
   vector, each product subtracted by one fused multiply-add (contracted: the same
   expressions), on CPUs that have them, in both builds: adla_lanes_fma, set by the module at
   import where adla_fma_product_supported (set_fma_lanes), picks them. Rounded once instead
   of twice; in float64 a quarter of the arithmetic instructions of the AVX2 build's two
   vectors of multiplies and subtractions (Intel Xeon, in one process against the plain
   loops): potrf fwd+bwd 1.05-1.13x faster at 1000 x 64, 1.2-1.25x at 300 x 128; with the
   interleaved LU's updates and solves (lu.pxi) inverse, det and slogdet 1.06-1.1x at
   1000 x 64. float32's 8 lanes are one AVX2 vector already, and in FMA there potrf once
   measured 0.96x; with the reverse sweep's passes of four steps (cholesky.pxi) the float32
   families in FMA too (same switch), in one process against the plain loops: det and inverse
   fwd+bwd 1.03-1.06x faster at 16-64 and 1.06-1.15x at 300 x 128, potrf 1.05-1.08x at
   64-128, the others level (0.96-1.02). */
static int adla_lanes_fma = 0;
#define ADLA_FMA_LANES_LENGTH 16    /* shorter sums stay inline: at order 16 (sums of 8 to 15
                                       terms in FMA) potrf took 1.15x as long */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* The four families for 1 to 4 rows, in the FMA target of the region around the call. */
#define ADLA_FMA_FAMILIES(suffix, type, vector)                                             \
ADLA_FMA_ROWS(ADLA_LANE_DOT_ROWS, suffix, type, vector)                                     \
ADLA_FMA_ROWS(ADLA_LANE_COLUMN_PAIR, suffix, type, vector)                                  \
ADLA_FMA_ROWS(ADLA_TANGENT_DOT_ROWS, suffix, type, vector)                                  \
ADLA_FMA_ROWS(ADLA_LANE_SCALED_ROWS, suffix, type, vector)
#define ADLA_FMA_ROWS(family, suffix, type, vector)                                         \
family(suffix, type, vector, 1) family(suffix, type, vector, 2)                             \
family(suffix, type, vector, 3) family(suffix, type, vector, 4)
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#pragma GCC optimize("fp-contract=fast")
typedef double adla_fma_lanes_d __attribute__((vector_size(64)));
ADLA_FMA_FAMILIES(fma_d, double, adla_fma_lanes_d)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=fast")
typedef float adla_fma_lanes_f __attribute__((vector_size(32)));
ADLA_FMA_FAMILIES(fma_f, float, adla_fma_lanes_f)
#pragma GCC pop_options
#define ADLA_FMA_BY_ROW_COUNT(suffix, family, ...)                                          \
    if (adla_lanes_fma && length >= ADLA_FMA_LANES_LENGTH) {                                \
        ADLA_CALL_BY_COUNT(rows, family, suffix, __VA_ARGS__)                               \
        return;                                                                             \
    }
#define ADLA_FMA_BY_ROW_COUNT_d(family, ...) ADLA_FMA_BY_ROW_COUNT(fma_d, family, __VA_ARGS__)
#define ADLA_FMA_BY_ROW_COUNT_f(family, ...) ADLA_FMA_BY_ROW_COUNT(fma_f, family, __VA_ARGS__)
#else
#define ADLA_FMA_BY_ROW_COUNT_d(family, ...)
#define ADLA_FMA_BY_ROW_COUNT_f(family, ...)
#endif

/* Each family by its row count: family_suffix(..., rows, ...) calls familyR_suffix for R = rows
   (1 to 4), so that the kernels pass the count they have (the FMA loops above where
   adla_lanes_fma). */
#define ADLA_BY_ROW_COUNT(family, suffix, params, ...)                                      \
static inline void family##_##suffix params {                                               \
    ADLA_FMA_BY_ROW_COUNT_##suffix(family, __VA_ARGS__)                                     \
    ADLA_CALL_BY_COUNT(rows, family, suffix, __VA_ARGS__)                                   \
}
#define ADLA_ROW_FAMILIES(suffix, type)                                                     \
ADLA_BY_ROW_COUNT(adla_minus_dot_rows, suffix,                                              \
                  (type* acc, const type* x, Py_ssize_t row_step, const type* y,            \
                   Py_ssize_t step, int rows, int length),                                  \
                  acc, x, row_step, y, step, length)                                        \
ADLA_BY_ROW_COUNT(adla_tangent_dot_rows, suffix,                                            \
                  (type* s, type* t, const type* a, const type* d, Py_ssize_t row_step,     \
                   const type* y, const type* e, int rows, int length),                     \
                  s, t, a, d, row_step, y, e, length)                                       \
ADLA_BY_ROW_COUNT(adla_minus_scaled_rows, suffix,                                           \
                  (type* x, const type* s, const type* y, Py_ssize_t row_step, int rows,    \
                   int length),                                                             \
                  x, s, y, row_step, length)
ADLA_ROW_FAMILIES(d, double)
ADLA_ROW_FAMILIES(f, float)
ADLA_BY_ROW_COUNT(adla_column_pair_rows, d,
                  (double* acc0, double* acc1, double* x, Py_ssize_t row_step, const double* y0,
                   const double* y1, const double* d, Py_ssize_t step, int rows, int length),
                  acc0, acc1, x, row_step, y0, y1, d, step, length)
ADLA_BY_ROW_COUNT(adla_column_pair_rows, f,
                  (float* acc0, float* acc1, float* x, Py_ssize_t row_step, const float* y0,
                   const float* y1, const float* d, Py_ssize_t step, int rows, int length),
                  acc0, acc1, x, row_step, y0, y1, d, step, length)
/* adla_column_pair_rows where both columns' sums take the same loops (FMA from
   ADLA_FMA_LANES_LENGTH terms on); otherwise the two sums and the product it stands for. */
#define ADLA_COLUMN_PAIR(suffix, type)                                                      \
static inline void adla_column_pair_##suffix(type* acc0, type* acc1, type* x,                \
                                             Py_ssize_t row_step, const type* y0,           \
                                             const type* y1, const type* d, Py_ssize_t step, \
                                             int rows, int length) {                        \
    if (adla_lanes_fma && length + 1 == ADLA_FMA_LANES_LENGTH) {                            \
        adla_minus_dot_rows_##suffix(acc0, x, row_step, y0, step, rows, length);            \
        for (int r = 0; r < rows; r++)                                                      \
            adla_lanes_product_##suffix(x + r * row_step + length * step, acc0 + r * 8, d); \
        adla_minus_dot_rows_##suffix(acc1, x, row_step, y1, step, rows, length + 1);        \
        return;                                                                             \
    }                                                                                       \
    adla_column_pair_rows_##suffix(acc0, acc1, x, row_step, y0, y1, d, step, rows, length); \
}
ADLA_COLUMN_PAIR(d, double)
ADLA_COLUMN_PAIR(f, float)

/* The interleaved LU's column steps, 8 lanes each. As plain loops over the lanes (Cython, with
   the rows in one scratch), gcc kept one scalar per lane and spilled the pivot search's state.
   adla_lane_pivots: largest[v] := max |x[i step + v]| over i < length, best[v] := the first i
   where it is reached (as a float: exact), NaN never chosen after i = 0, as getrf.
   adla_eliminate_rows: for each of ``rows`` rows x_i = x + i row_step: x_i[0:8] *= r (the
   multipliers), then x_i[j 8:j 8+8] -= x_i[0:8] y[j 8:j 8+8] for 1 <= j < width (the panel's
   columns right of the pivot); the scalar loops' operations in their order: the same bits.
   inverse, det, slogdet and gesv fwd+bwd 1.05-1.15x faster at orders 16 and 32 and in float32
   at 64; float64 at 64 was level: its rows were 4 KiB apart, so a column's entries shared one
   L1 set and these loops waited on L2 either way (the LU's rows are padded now, lanes.pxi's
   padded_columns: slogdet 1.1x faster there). The multipliers through a lane product and
   adla_minus_scaled_rows, row by row, instead: 0.84-0.99x. */
#define ADLA_LANE_COLUMN_STEPS(suffix, type, vector, ivector)                               \
static inline void adla_lane_pivots_##suffix(type* largest, type* best, const type* x,      \
                                             Py_ssize_t step, int length) {                 \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    const ivector magnitude = ~(ivector)(-(vector){0});    /* all bits but the sign's */    \
    for (int h = 0; h < PARTS; h++) {                                                       \
        vector top, at, y, row;                                                             \
        ivector better;                                                                     \
        memcpy(&y, x + PER * h, sizeof(vector));                                            \
        top = (vector)((ivector)y & magnitude);                                             \
        at = (vector){0} + (type)0;                                                         \
        for (int i = 1; i < length; i++) {                                                  \
            memcpy(&y, x + i * step + PER * h, sizeof(vector));                             \
            y = (vector)((ivector)y & magnitude);                                           \
            row = (vector){0} + (type)i;                                                    \
            better = y > top;                                                               \
            top = (vector)(((ivector)y & better) | ((ivector)top & ~better));               \
            at = (vector)(((ivector)row & better) | ((ivector)at & ~better));               \
        }                                                                                   \
        memcpy(largest + PER * h, &top, sizeof(vector));                                    \
        memcpy(best + PER * h, &at, sizeof(vector));                                        \
    }                                                                                       \
}                                                                                           \
static inline void adla_eliminate_rows_##suffix(type* x, Py_ssize_t row_step, const type* r, \
                                                const type* y, int width, int rows) {       \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector m[PARTS], g, a, b;                                                               \
    ADLA_LOAD_VECTORS(vector, m, r)                                                         \
    for (int i = 0; i < rows; i++)                                                          \
        for (int h = 0; h < PARTS; h++) {                                                   \
            type* x_i = x + i * row_step + PER * h;                                         \
            memcpy(&g, x_i, sizeof(vector));                                                \
            g = g * m[h];                                                                   \
            memcpy(x_i, &g, sizeof(vector));                                                \
            for (int j = 1; j < width; j++) {                                               \
                memcpy(&a, x_i + j * 8, sizeof(vector));                                    \
                memcpy(&b, y + j * 8 + PER * h, sizeof(vector));                            \
                a = a - g * b;                                                              \
                memcpy(x_i + j * 8, &a, sizeof(vector));                                    \
            }                                                                               \
        }                                                                                   \
}
typedef long long adla_lane_bits_d __attribute__((vector_size(ADLA_LANE_BYTES)));
typedef int adla_lane_bits_f __attribute__((vector_size(ADLA_LANE_BYTES)));
ADLA_LANE_COLUMN_STEPS(d, double, adla_lanes_d, adla_lane_bits_d)
ADLA_LANE_COLUMN_STEPS(f, float, adla_lanes_f, adla_lane_bits_f)

/* The QL sweeps' rotations on the rows of U, 8 lanes each (eigen.pxi): ROWS rotations in one
   pass over the columns, rotation k on rows (k, k+1) of x (row_step apart) with cosines
   c[k 8:k 8+8] and sines s[k 8:...], from k = ROWS-1 down to 0. Row k+1's entry leaves
   rotation k final; row k's goes on into rotation k-1, in registers: ROWS+1 rows loaded and
   stored for ROWS rotations, where the pairs of the Cython loop had 3 for 2. Each entry gets
   the scalar loop's operations in its order (s x + c t, c x - s t): the same bits. The unroll
   pragmas keep y[] in registers (without them gcc kept it on the stack: 3x slower). */
#define ADLA_LANE_ROTATIONS(suffix, type, vector, ROWS)                                     \
static inline void adla_rotate_rows##ROWS##_##suffix(type* x, Py_ssize_t row_step,          \
                                                  const type* c, const type* s,             \
                                                  int length) {                             \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                          \
    vector cv[ROWS][PARTS], sv[ROWS][PARTS], y[ROWS + 1], t;                                \
    ADLA_LOAD_VECTORS(vector, cv, c)                                                        \
    ADLA_LOAD_VECTORS(vector, sv, s)                                                        \
    for (int j = 0; j < length; j++)                                                        \
        for (int h = 0; h < PARTS; h++) {                                                   \
            type* column = x + j * 8 + PER * h;                                             \
            _Pragma("GCC unroll 8")                                                         \
            for (int k = 0; k <= ROWS; k++)                                                 \
                memcpy(&y[k], column + k * row_step, sizeof(vector));                       \
            t = y[ROWS];                                                                    \
            _Pragma("GCC unroll 8")                                                         \
            for (int k = ROWS - 1; k >= 0; k--) {                                           \
                y[k + 1] = sv[k][h] * y[k] + cv[k][h] * t;                                  \
                t = cv[k][h] * y[k] - sv[k][h] * t;                                         \
            }                                                                               \
            y[0] = t;                                                                       \
            _Pragma("GCC unroll 8")                                                         \
            for (int k = 0; k <= ROWS; k++)                                                 \
                memcpy(column + k * row_step, &y[k], sizeof(vector));                       \
        }                                                                                   \
}
ADLA_FOR_ROW_COUNTS(ADLA_LANE_ROTATIONS)
/* adla_rotate_rows: any number of rotations (rows), the top ADLA_ROTATIONS_PASS_suffix first:
   4 for float32 and for float64 in AVX-512 (one vector of 8 lanes), else 2 for float64, as the
   Cython loop before: the AVX2 build's 8 coefficient vectors of 4 rotations leave too few
   registers (2 measured level to 1.1x faster than 4 there). */
#define ADLA_ROTATIONS_PASS_d (adla_lanes_avx512 ? 4 : 2)
#define ADLA_ROTATIONS_PASS_f 4
#define ADLA_ROTATE_ROWS(suffix, type)                                                      \
static inline void adla_rotate_rows_##suffix(type* x, Py_ssize_t row_step, const type* c,   \
                                             const type* s, int rows, int length) {         \
    const int most = ADLA_ROTATIONS_PASS_##suffix;                                          \
    while (rows > 0) {                                                                      \
        int r = rows < most ? rows : most, at = rows - r;                                   \
        type* xr = x + at * row_step;                                                       \
        const type* cr = c + at * 8;                                                        \
        const type* sr = s + at * 8;                                                        \
        rows = at;                                                                          \
        ADLA_AVX512_ROTATIONS_##suffix(adla_rotate_rows, xr, row_step, cr, sr, r, length)   \
        ADLA_ROTATIONS_BY_COUNT(adla_rotate_rows, suffix, xr, row_step, cr, sr, r, length)  \
    }                                                                                       \
}
#define ADLA_ROTATIONS_BY_COUNT(family, suffix, x, row_step, c, s, rows, length)           \
    if (rows == 4) family##4_##suffix(x, row_step, c, s, length);                           \
    else if (rows == 3) family##3_##suffix(x, row_step, c, s, length);                      \
    else if (rows == 2) family##2_##suffix(x, row_step, c, s, length);                      \
    else family##1_##suffix(x, row_step, c, s, length);
/* float64's again in one AVX-512 vector, on CPUs that have it (adla_lanes_avx512, set by the
   module at import: set_avx512_lanes), without FMA: the same bits as the AVX2 and SSE2 builds'
   two and four vectors. A/B against the Cython loop two rotations a pass (Intel Xeon, syevd
   fwd+bwd, float64): 1.08x faster at 3000 x 32 and 300 x 96, 1.02-1.1x at 1000 x 64 (these
   loops wait on L2 for U's rows); float32 level. */
static int adla_lanes_avx512 = 0;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f")
typedef double adla_wide_lanes_d __attribute__((vector_size(64)));
ADLA_LANE_ROTATIONS(wide_d, double, adla_wide_lanes_d, 1)
ADLA_LANE_ROTATIONS(wide_d, double, adla_wide_lanes_d, 2)
ADLA_LANE_ROTATIONS(wide_d, double, adla_wide_lanes_d, 3)
ADLA_LANE_ROTATIONS(wide_d, double, adla_wide_lanes_d, 4)
#pragma GCC pop_options
#define ADLA_AVX512_ROTATIONS_d(family, x, row_step, c, s, rows, length)                    \
    if (adla_lanes_avx512) {                                                                \
        ADLA_ROTATIONS_BY_COUNT(family, wide_d, x, row_step, c, s, rows, length)            \
        continue;                                                                           \
    }
#else
#define ADLA_AVX512_ROTATIONS_d(family, x, row_step, c, s, rows, length)
#endif
#define ADLA_AVX512_ROTATIONS_f(family, x, row_step, c, s, rows, length)
ADLA_ROTATE_ROWS(d, double)
ADLA_ROTATE_ROWS(f, float)

/* The lanes' gather and scatter along a contiguous row of each of the 8 matrices:
   w[b step + v] = row[v][first + b] for b < length (and back), an 8 x length transpose in
   4 x 4 tiles through vector registers where the build has vectors of 4 (two rounds of
   shuffles), the rest one by one. Element by element, each of the 8 loads and stores of an
   entry's lanes was a scalar move. ADLA_LANE_TILE: entries col..col+3 of lanes h..h+3 of w,
   one vector per lane (the scatters' tile). */
#define ADLA_LANE_TILE(vector, index, w, step, col, h, r0, r1, r2, r3)                      \
    vector r0, r1, r2, r3;                                                                  \
    memcpy(&r0, (w) + (col) * (step) + (h), sizeof(vector));                                \
    memcpy(&r1, (w) + ((col) + 1) * (step) + (h), sizeof(vector));                          \
    memcpy(&r2, (w) + ((col) + 2) * (step) + (h), sizeof(vector));                          \
    memcpy(&r3, (w) + ((col) + 3) * (step) + (h), sizeof(vector));                          \
    ADLA_QUAD_TRANSPOSE(vector, index, r0, r1, r2, r3)
#define ADLA_LANE_ROWS(suffix, type, vector, index, tiles)                                  \
static inline void adla_lanes_from_rows_##suffix(type* w, Py_ssize_t step,                  \
                                                 const type* const* row, Py_ssize_t first,  \
                                                 int length) {                              \
    int b = 0;                                                                              \
    for (; tiles && b + 4 <= length; b += 4)                                                \
        for (int h = 0; h < 8; h += 4) {                                                    \
            vector r0, r1, r2, r3;                                                          \
            memcpy(&r0, row[h] + first + b, sizeof(vector));                                \
            memcpy(&r1, row[h + 1] + first + b, sizeof(vector));                            \
            memcpy(&r2, row[h + 2] + first + b, sizeof(vector));                            \
            memcpy(&r3, row[h + 3] + first + b, sizeof(vector));                            \
            ADLA_QUAD_TRANSPOSE(vector, index, r0, r1, r2, r3);                             \
            memcpy(w + b * step + h, &r0, sizeof(vector));                                  \
            memcpy(w + (b + 1) * step + h, &r1, sizeof(vector));                            \
            memcpy(w + (b + 2) * step + h, &r2, sizeof(vector));                            \
            memcpy(w + (b + 3) * step + h, &r3, sizeof(vector));                            \
        }                                                                                   \
    for (; b < length; b++)                                                                 \
        for (int v = 0; v < 8; v++) w[b * step + v] = row[v][first + b];                    \
}                                                                                           \
static inline void adla_rows_from_lanes_##suffix(type* const* row, const type* w,          \
                                                 Py_ssize_t step, int length) {             \
    int b = 0;                                                                              \
    for (; tiles && b + 4 <= length; b += 4)                                                \
        for (int h = 0; h < 8; h += 4) {                                                    \
            ADLA_LANE_TILE(vector, index, w, step, b, h, r0, r1, r2, r3);                   \
            memcpy(row[h] + b, &r0, sizeof(vector));                                        \
            memcpy(row[h + 1] + b, &r1, sizeof(vector));                                    \
            memcpy(row[h + 2] + b, &r2, sizeof(vector));                                    \
            memcpy(row[h + 3] + b, &r3, sizeof(vector));                                    \
        }                                                                                   \
    for (; b < length; b++)                                                                 \
        for (int v = 0; v < 8; v++) row[v][b] = w[b * step + v];                            \
}
ADLA_LANE_ROWS(d, double, adla_vector4_d, adla_index4_d, ADLA_TILES_D)
ADLA_LANE_ROWS(f, float, adla_vector4_f, adla_index4_f, 1)

/* The same scatter past the caches (adla_rows_from_lanes_stream_*), for outputs larger than
   them: whole cache lines of non-temporal stores, one line after another, so that no line of
   the output is read from memory before it is written. Returns 0, writing nothing, where a row
   does not start on a vector's boundary or the build has no such stores. */
#if defined(__SSE2__)
#include <immintrin.h>
#include <stdint.h>
#define adla_store_fence _mm_sfence
static inline void adla_stream4_f(float* p, adla_vector4_f r) { _mm_stream_ps(p, (__m128)r); }
#ifdef __AVX__
static inline void adla_stream4_d(double* p, adla_vector4_d r) {
    _mm256_stream_pd(p, (__m256d)r);
}
#else
static inline void adla_stream4_d(double* p, adla_vector4_d r) { (void)p; (void)r; }  /* unused */
#endif
static inline int adla_rows_aligned(void* const* row, size_t bytes) {
    for (int v = 0; v < 8; v++)
        if ((uintptr_t)row[v] % bytes) return 0;
    return 1;
}
/* A line is 2 vectors of 4 doubles or 4 of 4 floats, each from its own 4 x 4 tile (an array
   of tiles went through the stack). */
static inline int adla_rows_from_lanes_stream_d(double* const* row, const double* w,
                                                Py_ssize_t step, int length) {
    int b = 0;
    if (!ADLA_TILES_D || !adla_rows_aligned((void* const*)row, 32)) return 0;
    for (; b + 8 <= length; b += 8)
        for (int h = 0; h < 8; h += 4) {
            ADLA_LANE_TILE(adla_vector4_d, adla_index4_d, w, step, b, h, a0, a1, a2, a3);
            ADLA_LANE_TILE(adla_vector4_d, adla_index4_d, w, step, b + 4, h, c0, c1, c2, c3);
            adla_stream4_d(row[h] + b, a0); adla_stream4_d(row[h] + b + 4, c0);
            adla_stream4_d(row[h + 1] + b, a1); adla_stream4_d(row[h + 1] + b + 4, c1);
            adla_stream4_d(row[h + 2] + b, a2); adla_stream4_d(row[h + 2] + b + 4, c2);
            adla_stream4_d(row[h + 3] + b, a3); adla_stream4_d(row[h + 3] + b + 4, c3);
        }
    for (; b < length; b++)
        for (int v = 0; v < 8; v++) row[v][b] = w[b * step + v];
    return 1;
}
static inline int adla_rows_from_lanes_stream_f(float* const* row, const float* w,
                                                Py_ssize_t step, int length) {
    int b = 0;
    if (!adla_rows_aligned((void* const*)row, 16)) return 0;
    for (; b + 16 <= length; b += 16)
        for (int h = 0; h < 8; h += 4) {
            ADLA_LANE_TILE(adla_vector4_f, adla_index4_f, w, step, b, h, a0, a1, a2, a3);
            ADLA_LANE_TILE(adla_vector4_f, adla_index4_f, w, step, b + 4, h, c0, c1, c2, c3);
            ADLA_LANE_TILE(adla_vector4_f, adla_index4_f, w, step, b + 8, h, e0, e1, e2, e3);
            ADLA_LANE_TILE(adla_vector4_f, adla_index4_f, w, step, b + 12, h, g0, g1, g2, g3);
            adla_stream4_f(row[h] + b, a0); adla_stream4_f(row[h] + b + 4, c0);
            adla_stream4_f(row[h] + b + 8, e0); adla_stream4_f(row[h] + b + 12, g0);
            adla_stream4_f(row[h + 1] + b, a1); adla_stream4_f(row[h + 1] + b + 4, c1);
            adla_stream4_f(row[h + 1] + b + 8, e1); adla_stream4_f(row[h + 1] + b + 12, g1);
            adla_stream4_f(row[h + 2] + b, a2); adla_stream4_f(row[h + 2] + b + 4, c2);
            adla_stream4_f(row[h + 2] + b + 8, e2); adla_stream4_f(row[h + 2] + b + 12, g2);
            adla_stream4_f(row[h + 3] + b, a3); adla_stream4_f(row[h + 3] + b + 4, c3);
            adla_stream4_f(row[h + 3] + b + 8, e3); adla_stream4_f(row[h + 3] + b + 12, g3);
        }
    for (; b < length; b++)
        for (int v = 0; v < 8; v++) row[v][b] = w[b * step + v];
    return 1;
}
/* dst[i] = src[i] for i < count with non-temporal stores from dst's first vector boundary
   (ordinary ones before it and after the last pair of vectors); the caller fences. */
#define ADLA_COPY_STREAM(suffix, type, vector, ALIGN, ENABLED)                              \
static inline void adla_copy_stream_##suffix(type* dst, const type* src, Py_ssize_t count) { \
    Py_ssize_t i = 0;                                                                       \
    if (!(ENABLED)) { memcpy(dst, src, count * sizeof(type)); return; }                     \
    for (; i < count && (uintptr_t)(dst + i) % (ALIGN); i++) dst[i] = src[i];               \
    for (; i + 8 <= count; i += 8) {                                                        \
        vector r0, r1;                                                                      \
        memcpy(&r0, src + i, sizeof r0); memcpy(&r1, src + i + 4, sizeof r1);               \
        adla_stream4_##suffix(dst + i, r0); adla_stream4_##suffix(dst + i + 4, r1);         \
    }                                                                                       \
    for (; i < count; i++) dst[i] = src[i];                                                 \
}
ADLA_COPY_STREAM(d, double, adla_vector4_d, 32, ADLA_TILES_D)
ADLA_COPY_STREAM(f, float, adla_vector4_f, 16, 1)
#else
#define adla_store_fence() ((void)0)
#define adla_rows_from_lanes_stream_d(row, w, step, length) 0
#define adla_rows_from_lanes_stream_f(row, w, step, length) 0
#define adla_copy_stream_d(dst, src, count) memcpy(dst, src, (count) * sizeof(double))
#define adla_copy_stream_f(dst, src, count) memcpy(dst, src, (count) * sizeof(float))
#endif

#endif

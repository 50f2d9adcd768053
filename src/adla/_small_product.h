/* Register-blocked products and 4 x 4 transposes for small row-major matrices: the "direct"
   loops of _lapack.pyx (small_product, transpose_into), in GCC vector extensions. Compiled into
   both builds of the kernels; no FMA, so the SSE2 and AVX2 builds agree bit for bit. */
#ifndef ADLA_SMALL_PRODUCT_H
#define ADLA_SMALL_PRODUCT_H

#include <Python.h>
#include <string.h>

/* out[r][0:C] = alpha S + beta c[r][0:C] (c may be NULL) with S the sum over l, in order, of
   x[r x_row + l x_step] * b[l b_row + 0:C], for R rows and C columns at once, in vector
   registers of the build's width (8 independent sums in flight with AVX); out and c have
   rows out_row apart. GCC's vector extensions pin the vector dimension to the columns (left
   to itself, gcc vectorised across l with gathers); no FMA, so both builds agree bit for
   bit. */
#ifdef __AVX__
#define ADLA_VECTOR_BYTES 32
#define ADLA_BLOCK_ROWS 4
#else
#define ADLA_VECTOR_BYTES 16
#define ADLA_BLOCK_ROWS 2           /* 16 SSE registers */
#endif
typedef double adla_vector_d __attribute__((vector_size(ADLA_VECTOR_BYTES)));
typedef float adla_vector_f __attribute__((vector_size(ADLA_VECTOR_BYTES)));
typedef float adla_vector4_f __attribute__((vector_size(16)));
#define ADLA_BLOCK(name, type, vector, R, C)                                               \
static inline void name(type* out, Py_ssize_t out_row, const type* x, Py_ssize_t x_row,    \
                        Py_ssize_t x_step, const type* b, Py_ssize_t b_row, int k,         \
                        type alpha, type beta, const type* c) {                            \
    enum { PER = sizeof(vector) / sizeof(type), COUNT = C / PER };                         \
    vector sum[R][COUNT], row[COUNT];                                                      \
    for (int r = 0; r < R; r++)                                                            \
        for (int v = 0; v < COUNT; v++) sum[r][v] = (vector){0};                           \
    for (int l = 0; l < k; l++) {                                                          \
        for (int v = 0; v < COUNT; v++)                                                    \
            memcpy(&row[v], b + l * b_row + v * PER, sizeof(vector));                      \
        for (int r = 0; r < R; r++) {                                                      \
            type xl = x[r * x_row + l * x_step];                                           \
            for (int v = 0; v < COUNT; v++) sum[r][v] += xl * row[v];                      \
        }                                                                                  \
    }                                                                                      \
    /* vector by vector: copying the array whole would keep it on the stack */             \
    for (int r = 0; r < R; r++)                                                            \
        for (int v = 0; v < COUNT; v++) {                                                  \
            vector result = alpha * sum[r][v], other;                                      \
            if (c) {                                                                       \
                memcpy(&other, c + r * out_row + v * PER, sizeof(vector));                 \
                result = result + beta * other;                                            \
            }                                                                              \
            memcpy(out + r * out_row + v * PER, &result, sizeof(vector));                  \
        }                                                                                  \
}
/* adla_block_<suffix>: rows <= ADLA_BLOCK_ROWS rows by cols (8 or 4) columns. */
#define ADLA_BLOCKS(suffix, type, vector8, vector4)                                        \
ADLA_BLOCK(adla_rows8_##suffix, type, vector8, ADLA_BLOCK_ROWS, 8)                        \
ADLA_BLOCK(adla_row8_##suffix, type, vector8, 1, 8)                                       \
ADLA_BLOCK(adla_rows4_##suffix, type, vector4, ADLA_BLOCK_ROWS, 4)                        \
ADLA_BLOCK(adla_row4_##suffix, type, vector4, 1, 4)                                       \
static inline void adla_block_##suffix(type* out, Py_ssize_t out_row, const type* x,      \
                                       Py_ssize_t x_row, Py_ssize_t x_step, const type* b, \
                                       Py_ssize_t b_row, int k, type alpha, type beta,     \
                                       const type* c, int rows, int cols) {                \
    if (rows == ADLA_BLOCK_ROWS) {                                                         \
        (cols == 8 ? adla_rows8_##suffix : adla_rows4_##suffix)(                           \
            out, out_row, x, x_row, x_step, b, b_row, k, alpha, beta, c);                  \
        return;                                                                            \
    }                                                                                      \
    for (int r = 0; r < rows; r++)                                                         \
        (cols == 8 ? adla_row8_##suffix : adla_row4_##suffix)(                             \
            out + r * out_row, out_row, x + r * x_row, x_row, x_step, b, b_row, k, alpha,  \
            beta, c ? c + r * out_row : NULL);                                             \
}
ADLA_BLOCKS(d, double, adla_vector_d, adla_vector_d)
ADLA_BLOCKS(f, float, adla_vector_f, adla_vector4_f)

/* dst (cols x rows) = src^T (rows x cols), both row-major: 4 x 4 tiles through vector
   registers (two rounds of shuffles, ADLA_QUAD_TRANSPOSE, also the lanes' gather) where the
   build has vectors of 4, the rest one by one. Rows are read in order: a strided read pattern
   defeats the prefetcher on a cold batch. */
typedef double adla_vector4_d __attribute__((vector_size(32)));
typedef long long adla_index4_d __attribute__((vector_size(32)));
typedef int adla_index4_f __attribute__((vector_size(16)));
/* Rows r0..r3 of a 4 x 4 tile become its columns, in place. */
#define ADLA_QUAD_TRANSPOSE(vector, index, r0, r1, r2, r3)                                  \
    do {                                                                                    \
        vector t0 = __builtin_shuffle(r0, r1, (index){0, 4, 2, 6});                         \
        vector t1 = __builtin_shuffle(r0, r1, (index){1, 5, 3, 7});                         \
        vector t2 = __builtin_shuffle(r2, r3, (index){0, 4, 2, 6});                         \
        vector t3 = __builtin_shuffle(r2, r3, (index){1, 5, 3, 7});                         \
        r0 = __builtin_shuffle(t0, t2, (index){0, 1, 4, 5});                                \
        r1 = __builtin_shuffle(t1, t3, (index){0, 1, 4, 5});                                \
        r2 = __builtin_shuffle(t0, t2, (index){2, 3, 6, 7});                                \
        r3 = __builtin_shuffle(t1, t3, (index){2, 3, 6, 7});                                \
    } while (0)
#define ADLA_TRANSPOSE(name, type, vector, index, tiles)                                   \
static inline void name(type* dst, const type* src, int rows, int cols) {                  \
    int i0 = 0;                                                                            \
    for (; tiles && i0 + 4 <= rows; i0 += 4) {                                             \
        int j0 = 0;                                                                        \
        for (; j0 + 4 <= cols; j0 += 4) {                                                  \
            vector r0, r1, r2, r3;                                                         \
            memcpy(&r0, src + (i0 + 0) * cols + j0, sizeof(vector));                       \
            memcpy(&r1, src + (i0 + 1) * cols + j0, sizeof(vector));                       \
            memcpy(&r2, src + (i0 + 2) * cols + j0, sizeof(vector));                       \
            memcpy(&r3, src + (i0 + 3) * cols + j0, sizeof(vector));                       \
            ADLA_QUAD_TRANSPOSE(vector, index, r0, r1, r2, r3);                            \
            memcpy(dst + (j0 + 0) * rows + i0, &r0, sizeof(vector));                       \
            memcpy(dst + (j0 + 1) * rows + i0, &r1, sizeof(vector));                       \
            memcpy(dst + (j0 + 2) * rows + i0, &r2, sizeof(vector));                       \
            memcpy(dst + (j0 + 3) * rows + i0, &r3, sizeof(vector));                       \
        }                                                                                  \
        for (int i = i0; i < i0 + 4; i++)                                                  \
            for (int j = j0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];         \
    }                                                                                      \
    for (int i = i0; i < rows; i++)                                                        \
        for (int j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];              \
}
#ifdef __AVX__
#define ADLA_TILES_D 1              /* 4 doubles to a vector register */
#else
#define ADLA_TILES_D 0
#endif
ADLA_TRANSPOSE(adla_transpose_d, double, adla_vector4_d, adla_index4_d, ADLA_TILES_D)
ADLA_TRANSPOSE(adla_transpose_f, float, adla_vector4_f, adla_index4_f, 1)

#endif

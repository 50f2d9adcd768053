/* The panels of the blocked Householder QR (orthogonal.pxi, householder_qr): LAPACK's geqr2 on
   a column-major rows x cols panel of a few columns, in vector loops. geqr2 makes four or five
   BLAS calls a column (nrm2, scal, gemv, ger), each on a vector of a few dozen entries, and
   spent more time in the calls than in their arithmetic; its dot products in plain loops were
   slower still (summed in order, they do not vectorise). Here the sums run in 8 partial sums
   (another order of the same terms: not LAPACK's bits, but the same in every build of ours),
   without nrm2's scaling:
   adla_panel_qr_* first checks that every column's norm lies in [low, high], where no square
   overflows and a partial norm that underflows is far below the column's rounding error, and
   returns 1 without touching the panel otherwise (the caller then calls geqr2). Each column:
   the reflector of dlarfg (beta = -sign(alpha) ||(alpha, x)||, tau = (beta - alpha) / beta,
   v = x / (alpha - beta); tau = 0 where x = 0), then H = I - tau v v^T on the panel's columns
   to its right, w = C^T v and C -= tau v w^T. */
#ifndef ADLA_HOUSEHOLDER_H
#define ADLA_HOUSEHOLDER_H

#include <math.h>
#include <string.h>

#include "_lane_update.h"       /* its vectors of lanes: the build's width, 8 to a sum */

#define ADLA_PANEL_QR(suffix, type, SQRT)                                                    \
/* sum x[i] y[i], i < n: 8 partial sums (term i in sum i % 8, in vectors), added in order,   \
   then the last n % 8 terms; the same operations in every build. */                         \
static inline type adla_panel_dot_##suffix(const type* x, const type* y, int n) {           \
    typedef adla_lanes_##suffix vector;                                                      \
    enum { PER = sizeof(vector) / sizeof(type), PARTS = 8 / PER };                           \
    vector s[PARTS], a, b;                                                                   \
    int i = 0;                                                                               \
    for (int h = 0; h < PARTS; h++)                                                          \
        s[h] = (vector){0};                                                                  \
    for (; i + 8 <= n; i += 8)                                                               \
        for (int h = 0; h < PARTS; h++) {                                                    \
            memcpy(&a, x + i + PER * h, sizeof(vector));                                     \
            memcpy(&b, y + i + PER * h, sizeof(vector));                                     \
            s[h] += a * b;                                                                   \
        }                                                                                    \
    type sum = 0;                                                                            \
    for (int h = 0; h < PARTS; h++)                                                          \
        for (int v = 0; v < PER; v++)                                                        \
            sum += s[h][v];                                                                  \
    for (; i < n; i++)                                                                       \
        sum += x[i] * y[i];                                                                  \
    return sum;                                                                              \
}                                                                                            \
/* y[i] -= t x[i], i < n */                                                                  \
static inline void adla_panel_axpy_##suffix(type t, const type* x, type* y, int n) {        \
    for (int i = 0; i < n; i++)                                                              \
        y[i] -= t * x[i];                                                                    \
}                                                                                            \
static inline int adla_panel_qr_##suffix(int rows, int cols, type* a, int lda, type* tau,   \
                                         type low, type high) {                              \
    int steps = rows < cols ? rows : cols;                                                   \
    for (int k = 0; k < cols; k++) {                                                         \
        type norm = SQRT(adla_panel_dot_##suffix(a + (size_t)k * lda, a + (size_t)k * lda,   \
                                                 rows));                                     \
        if (!(norm >= low && norm <= high))                                                  \
            return 1;                                                                        \
    }                                                                                        \
    for (int j = 0; j < steps; j++) {                                                        \
        type* v = a + j + (size_t)j * lda;                                                   \
        int length = rows - j;                                                               \
        type alpha = v[0], beta, t;                                                          \
        type squares = adla_panel_dot_##suffix(v + 1, v + 1, length - 1);                    \
        if (length <= 1 || squares == 0) {                                                   \
            tau[j] = 0;                                                                      \
            continue;                                                                        \
        }                                                                                    \
        beta = SQRT(alpha * alpha + squares);                                                \
        beta = alpha >= 0 ? -beta : beta;                                                    \
        tau[j] = (beta - alpha) / beta;                                                      \
        t = 1 / (alpha - beta);                                                              \
        for (int i = 1; i < length; i++)                                                     \
            v[i] *= t;                                                                       \
        v[0] = beta;                                                                         \
        for (int k = j + 1; k < cols; k++) {                                                 \
            type* c = a + j + (size_t)k * lda;                                               \
            type w = tau[j] * (c[0] + adla_panel_dot_##suffix(v + 1, c + 1, length - 1));    \
            c[0] -= w;                                                                       \
            adla_panel_axpy_##suffix(w, v + 1, c + 1, length - 1);                           \
        }                                                                                    \
    }                                                                                        \
    return 0;                                                                                \
}
ADLA_PANEL_QR(d, double, sqrt)
ADLA_PANEL_QR(f, float, sqrtf)

#endif

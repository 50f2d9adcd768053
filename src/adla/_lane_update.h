/* Row updates of the interleaved kernels where one scalar multiplies all lanes (a triangle the
   whole batch shares): x[0:8] := x - t0 y0 - t1 y1 - ..., y_r = y + r step, subtracted in that
   order, in GCC vector extensions. Written as plain loops over the 8 lanes, with x and y in
   the same scratch, gcc left them scalar. No FMA, so the SSE2 and AVX2 builds agree bit for
   bit with each other and with the scalar loops of the other kernels. */
#ifndef ADLA_LANE_UPDATE_H
#define ADLA_LANE_UPDATE_H

#include <Python.h>
#include <string.h>

#ifdef __AVX__
#define ADLA_LANE_BYTES 32
#else
#define ADLA_LANE_BYTES 16
#endif
typedef double adla_lanes_d __attribute__((vector_size(ADLA_LANE_BYTES)));
typedef float adla_lanes_f __attribute__((vector_size(ADLA_LANE_BYTES)));

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

#endif

# The primitives of the interleaved kernels for batches of small matrices.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

# A LAPACK call per 4 x 4 matrix costs more than its arithmetic, and a scalar loop is bound by
# the latency of its sqrt/divide chain. These kernels take LANES matrices at once, element e of
# lane v stored at w[e * LANES + v], so that every operation is a fixed-length loop over lanes
# the compiler turns into vector instructions. A short last block repeats its last matrix in
# the spare lanes; their results are not written back.

cdef extern from "_fma_product.h":
    # the next block's inputs, a share at each step of an interleaved kernel (run_block)
    void adla_prefetch_share(Py_ssize_t step, Py_ssize_t steps) noexcept nogil

cdef inline Py_ssize_t magnitude(Py_ssize_t x) noexcept nogil:
    return -x if x < 0 else x

cdef extern from "_lane_update.h":
    void adla_lanes_from_rows_d(double* w, Py_ssize_t step, const double* const* row,
                                Py_ssize_t first, int length) noexcept nogil
    void adla_lanes_from_rows_f(float* w, Py_ssize_t step, const float* const* row,
                                Py_ssize_t first, int length) noexcept nogil
    void adla_rows_from_lanes_d(double* const* row, const double* w, Py_ssize_t step,
                                int length) noexcept nogil
    void adla_rows_from_lanes_f(float* const* row, const float* w, Py_ssize_t step,
                                int length) noexcept nogil
    int adla_rows_from_lanes_stream_d(double* const* row, const double* w, Py_ssize_t step,
                                      int length) noexcept nogil
    int adla_rows_from_lanes_stream_f(float* const* row, const float* w, Py_ssize_t step,
                                      int length) noexcept nogil
    void adla_copy_stream_d(double* dst, const double* src, Py_ssize_t count) noexcept nogil
    void adla_copy_stream_f(float* dst, const float* src, Py_ssize_t count) noexcept nogil
    void store_fence "adla_store_fence"() noexcept nogil
    void adla_lanes_product_d(double* out, const double* a, const double* b) noexcept nogil
    void adla_lanes_product_f(float* out, const float* a, const float* b) noexcept nogil
    void adla_column_pair_d(double* acc0, double* acc1, double* x, Py_ssize_t row_step,
                            const double* y0, const double* y1, const double* d,
                            Py_ssize_t step, int rows, int length) noexcept nogil
    void adla_column_pair_f(float* acc0, float* acc1, float* x, Py_ssize_t row_step,
                            const float* y0, const float* y1, const float* d, Py_ssize_t step,
                            int rows, int length) noexcept nogil
    void adla_reverse_block_d(double* x, const double* d, double* steps, double* scale,
                              Py_ssize_t scale_step, const double* l, Py_ssize_t row_step,
                              int count) noexcept nogil
    void adla_reverse_block_f(float* x, const float* d, float* steps, float* scale,
                              Py_ssize_t scale_step, const float* l, Py_ssize_t row_step,
                              int count) noexcept nogil
    void adla_rotate_lanes_d(double* x, double* y, const double* c, const double* s,
                             const double* z, double* acc, int length) noexcept nogil
    void adla_rotate_lanes_f(float* x, float* y, const float* c, const float* s,
                             const float* z, float* acc, int length) noexcept nogil
    void adla_rotate_dot_d(double* x, double* y, const double* c, const double* s,
                           const double* z, double* acc, int length) noexcept nogil
    void adla_rotate_dot_f(float* x, float* y, const float* c, const float* s, const float* z,
                           float* acc, int length) noexcept nogil
    void adla_add_dot_rows_d(double* acc, const double* x, Py_ssize_t row_step,
                             const double* y, Py_ssize_t step, int rows,
                             int length) noexcept nogil
    void adla_add_dot_rows_f(float* acc, const float* x, Py_ssize_t row_step, const float* y,
                             Py_ssize_t step, int rows, int length) noexcept nogil
    void adla_nonfinite_rows_d(double* total, const double* x, int rows, int cols,
                               Py_ssize_t row, bint lower_only) noexcept nogil
    void adla_nonfinite_rows_f(float* total, const float* x, int rows, int cols,
                               Py_ssize_t row, bint lower_only) noexcept nogil

cdef inline void lanes_from_rows(floating* w, Py_ssize_t step, const floating* const* row,
                                 Py_ssize_t first, int length) noexcept nogil:
    # w[b step + v] := row[v][first + b], in register tiles (_lane_update.h)
    if floating is double:
        adla_lanes_from_rows_d(w, step, row, first, length)
    else:
        adla_lanes_from_rows_f(w, step, row, first, length)

cdef inline void lanes_product(floating* out, const floating* a, const floating* b) noexcept nogil:
    # out[v] := a[v] b[v] for every lane, in vectors (_lane_update.h)
    if floating is double:
        adla_lanes_product_d(out, a, b)
    else:
        adla_lanes_product_f(out, a, b)

cdef inline void reverse_block(floating* x, const floating* d, floating* steps,
                               floating* scale, Py_ssize_t scale_step, const floating* l,
                               Py_ssize_t row_step, int count) noexcept nogil:
    # count (1 to 4) steps of the Cholesky reverse sweep within a row, in registers
    # (_lane_update.h)
    if floating is double:
        adla_reverse_block_d(x, d, steps, scale, scale_step, l, row_step, count)
    else:
        adla_reverse_block_f(x, d, steps, scale, scale_step, l, row_step, count)

cdef inline void copy_stream(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    # copy with non-temporal stores (_lane_update.h), for a result not read again soon
    if floating is double:
        adla_copy_stream_d(dst, src, count)
    else:
        adla_copy_stream_f(dst, src, count)
    store_fence()

cdef inline bint rows_from_lanes_stream(floating* const* row, const floating* w,
                                        Py_ssize_t step, int length) noexcept nogil:
    # rows_from_lanes with non-temporal stores; False (nothing written) where a row is not
    # aligned to a vector
    if floating is double:
        return adla_rows_from_lanes_stream_d(row, w, step, length)
    else:
        return adla_rows_from_lanes_stream_f(row, w, step, length)

cdef inline void rows_from_lanes(floating* const* row, const floating* w, Py_ssize_t step,
                                 int length) noexcept nogil:
    # row[v][b] := w[b step + v], the inverse
    if floating is double:
        adla_rows_from_lanes_d(row, w, step, length)
    else:
        adla_rows_from_lanes_f(row, w, step, length)

ctypedef struct Sweep:
    # How gather/scatter walk an operand: along its contiguous axis (rows when by_rows), outer
    # index forwards in memory; w_outer/w_inner are the matching steps in the lanes scratch.
    bint by_rows
    int outer, inner
    Py_ssize_t outer_step, inner_step, w_outer, w_inner

cdef inline Sweep sweep(int rows, int cols, Py_ssize_t row_step, Py_ssize_t col_step,
                        int w_cols) noexcept nogil:
    # w_cols: the scratch's row length, at least cols (0: cols)
    cdef Sweep g
    if w_cols == 0:
        w_cols = cols
    g.by_rows = magnitude(col_step) <= magnitude(row_step)
    g.outer, g.inner = (rows, cols) if g.by_rows else (cols, rows)
    g.outer_step, g.inner_step = (row_step, col_step) if g.by_rows else (col_step, row_step)
    g.w_outer = (w_cols if g.by_rows else 1) * LANES
    g.w_inner = (1 if g.by_rows else w_cols) * LANES
    return g

cdef inline void gather(floating* w, floating** src, int rows, int cols, Py_ssize_t offset,
                        Py_ssize_t row_step, Py_ssize_t col_step, bint lower_only,
                        const int* order=NULL, int w_cols=0) noexcept nogil:
    """w[i, j] := src[v][offset + i*row_step + j*col_step] for every lane (j <= i if lower_only):
    any transpose or index reversal of a row-major matrix, chosen by the steps. ``order`` (for
    a sweep along rows, |col_step| <= |row_step|): row i of lane v from the source's row
    order[i * LANES + v] instead, a row interchange folded into the copy. ``w_cols``: w's rows
    that many entries long (padded: padded_columns), the padding left alone."""
    # All lanes side by side, along the sources' contiguous axis and forwards in memory: the
    # LANES sources are read in sweeps the hardware prefetcher follows, and each element's
    # lanes fill one line of the scratch at once (lane by lane, every line of a scratch larger
    # than L1 was fetched LANES times).
    cdef Sweep g = sweep(rows, cols, row_step, col_step, w_cols)
    cdef const floating* source[LANES]
    cdef floating* target
    cdef int a, b, o, first, last, v, row
    for a in range(g.outer):
        o = g.outer - 1 - a if g.outer_step < 0 else a
        first, last = 0, g.inner
        if lower_only and g.by_rows:         # j <= i: row i has columns 0..i,
            last = o + 1
        elif lower_only:                     # and column j rows j..
            first = o
        for v in range(LANES):
            row = order[o * LANES + v] if order != NULL else o
            source[v] = src[v] + offset + row * g.outer_step
        target = w + o * g.w_outer
        if g.inner_step == 1:
            lanes_from_rows(target + first * g.w_inner, g.w_inner, source, first, last - first)
            continue
        for b in range(first, last):
            for v in range(LANES):
                target[b * g.w_inner + v] = source[v][b * g.inner_step]

cdef inline void scatter(floating** dst, int count, const floating* w, int rows, int cols,
                         Py_ssize_t offset, Py_ssize_t row_step, Py_ssize_t col_step,
                         bint stream, const int* order=NULL, int w_cols=0) noexcept nogil:
    """The inverse of gather (all of w but its padding) for the first ``count`` lanes, in the
    same order (with ``order``: row i of lane v to the destination's row order[i * LANES + v]).
    ``stream`` (Job.stream_out): rows along the destinations' contiguous axis in whole cache
    lines of non-temporal stores, where all 8 start on a vector's boundary."""
    cdef Sweep g = sweep(rows, cols, row_step, col_step, w_cols)
    cdef floating* target[LANES]
    cdef const floating* source
    cdef int a, b, o, v, row
    for a in range(g.outer):
        o = g.outer - 1 - a if g.outer_step < 0 else a
        for v in range(count):
            row = order[o * LANES + v] if order != NULL else o
            target[v] = dst[v] + offset + row * g.outer_step
        source = w + o * g.w_outer
        if g.inner_step == 1 and count == LANES:
            if stream and rows_from_lanes_stream(target, source, g.w_inner, g.inner):
                continue
            rows_from_lanes(target, source, g.w_inner, g.inner)
            continue
        for b in range(g.inner):
            for v in range(count):
                target[v][b * g.inner_step] = source[b * g.w_inner + v]
    if stream:
        store_fence()

cdef inline int padded_columns(int n, bint single) noexcept nogil:
    """A row length of at least n for a lanes scratch whose columns are read down its rows:
    n, plus one cache line where rows of n would be a multiple of 4 lines long. Rows 4 KiB
    apart (order 64 in float64) put a whole column in one set of the L1 cache, 2 KiB apart in
    two, and so on; a line more spreads it over them all."""
    cdef int entry = LANES * (4 if single else 8)      # bytes of an entry's lanes
    if n == 0 or n * entry % 256 != 0:
        return n
    return n + (64 // entry if entry < 64 else 1)

cdef inline void keep_triangle(floating* w, int rows, int cols, bint lower) noexcept nogil:
    """Zero the strict upper (``lower``) or strict lower triangle of every lane of w."""
    cdef int i, j, v
    for i in range(rows):
        for j in range(cols):
            if (j > i) if lower else (j < i):
                for v in range(LANES):
                    w[(i * cols + j) * LANES + v] = 0

cdef inline void mirror_lower(floating* w, int n, int w_cols=0) noexcept nogil:
    """Copy the lower triangle of every lane of w (rows w_cols long, 0: n) onto its upper one,
    row by row of the upper one, an entry's LANES in one move (a loop over the lanes was 8
    scalar moves)."""
    cdef int i, j
    cdef Py_ssize_t row = (w_cols if w_cols else n) * LANES
    for j in range(n):
        for i in range(j + 1, n):
            memcpy(w + j * row + i * LANES, w + i * row + j * LANES, LANES * sizeof(floating))

cdef inline void nonfinite_lanes(floating* total, const floating* w, int rows, int cols,
                                 bint lower_only, int w_cols=0) noexcept nogil:
    """total[v] := NaN where lane v of w (rows x cols, or its lower triangle; rows w_cols long,
    0: cols) has an inf or NaN, else 0: x * 0 is NaN exactly for those, and one NaN makes the
    lane's sum NaN. add_times_zero (helpers.pxi) is the same sum for one matrix; routed through
    it, given four chains on runs of 32 entries, the short rows of a lower triangle ran on one:
    trsm and potrf_backward at float32 10000 x 16 1.05-1.08x slower than this C loop, whose
    four chains carry across rows (A/B in one process)."""
    cdef Py_ssize_t row = w_cols if w_cols else cols
    if floating is double:
        adla_nonfinite_rows_d(total, w, rows, cols, row, lower_only)
    else:
        adla_nonfinite_rows_f(total, w, rows, cols, row, lower_only)

cdef inline void mark_nonfinite(const floating* w, int rows, int cols, bint lower_only,
                                int* status, int w_cols=0) noexcept nogil:
    cdef floating total[LANES]
    cdef int v
    nonfinite_lanes(total, w, rows, cols, lower_only, w_cols)
    for v in range(LANES):
        if total[v] != 0:
            status[v] = NONFINITE

cdef inline void mark_zero_diagonal(const floating* w, int n, bint reversed,
                                    int* status) noexcept nogil:
    """Status i+1 for the first zero, i, on the diagonal of the operand (whose diagonal entry i
    is w's entry n-1-i if it was gathered reversed); non-finite lanes keep their status."""
    cdef int i, v, position
    for i in range(n):
        position = i if reversed else n - 1 - i     # the operand's diagonal, last entry first
        for v in range(LANES):
            if w[(position * n + position) * LANES + v] == 0 and status[v] >= 0:
                status[v] = (n - position if reversed else position + 1)

cdef inline void reciprocal_diagonal(floating* out, const floating* t, int n) noexcept nogil:
    cdef int i, v
    for i in range(n):
        for v in range(LANES):
            out[i * LANES + v] = <floating>1 / t[(i * n + i) * LANES + v]

cdef inline void back_substitute(const floating* t, const floating* inverse_diagonal,
                                 floating* x, int n, int cols) noexcept nogil:
    """In place x := T^-T x for lower triangular T (n x n) and x (n x cols), every lane."""
    cdef floating s[LANES]
    cdef int i, j, k, v
    cdef Py_ssize_t ij
    for i in range(n - 1, -1, -1):
        adla_prefetch_share(n - 1 - i, n)
        for j in range(cols):
            ij = (i * cols + j) * LANES
            for v in range(LANES):
                s[v] = x[ij + v]
            for k in range(i + 1, n):
                for v in range(LANES):
                    s[v] = s[v] - t[(k * n + i) * LANES + v] * x[(k * cols + j) * LANES + v]
            for v in range(LANES):
                x[ij + v] = s[v] * inverse_diagonal[i * LANES + v]

cdef inline void add_dot(floating* acc, const floating* x, Py_ssize_t x_step,
                         const floating* y, Py_ssize_t y_step, int length) noexcept nogil:
    """acc += sum_i x[i x_step] y[i y_step] for every lane (steps in scratch elements)."""
    cdef int i, v
    for i in range(length):
        for v in range(LANES):
            acc[v] = acc[v] + x[i * x_step + v] * y[i * y_step + v]

cdef inline void subtract_dot_rows(floating* acc, const floating* x, Py_ssize_t row_step,
                                  const floating* y, int rows, int length) noexcept nogil:
    """acc[r] -= sum_i x[r row_step + i] y[i] for rows (1 to 4) rows r of x, i < length,
    each product subtracted in order, every lane: the rows' sums in flight together, sharing
    the loads of y (_lane_update.h)."""
    if floating is double:
        adla_minus_dot_rows_d(acc, x, row_step, y, LANES, rows, length)
    else:
        adla_minus_dot_rows_f(acc, x, row_step, y, LANES, rows, length)

cdef inline void column_pair(floating* acc0, floating* acc1, floating* x, Py_ssize_t row_step,
                             const floating* y0, const floating* y1, const floating* d,
                             int rows, int length) noexcept nogil:
    """Columns j = length and j + 1 of rows (1 to 4) rows of a factor x in one pass:
    acc0[r] -= sum_{i<j} x_r[i] y0[i], x_r[j] := acc0[r] d, acc1[r] -= sum_{i<=j} x_r[i]
    y1[i], each sum in order as subtract_dot_rows' (_lane_update.h)."""
    if floating is double:
        adla_column_pair_d(acc0, acc1, x, row_step, y0, y1, d, LANES, rows, length)
    else:
        adla_column_pair_f(acc0, acc1, x, row_step, y0, y1, d, LANES, rows, length)

cdef inline void subtract_scaled_rows(floating* x, const floating* s, const floating* y,
                                     Py_ssize_t row_step, int rows, int length) noexcept nogil:
    """x[i] -= s[r] y[r row_step + i] for r < rows (1 to 4), in that order, i < length, every
    lane with its own coefficients s[r LANES:(r+1) LANES] (_lane_update.h)."""
    if floating is double:
        adla_minus_scaled_rows_d(x, s, y, row_step, rows, length)
    else:
        adla_minus_scaled_rows_f(x, s, y, row_step, rows, length)

cdef inline void multiply_lanes(floating* x, Py_ssize_t count,
                                const floating* factor) noexcept nogil:
    """Every lane v of the interleaved x (count entries a lane) times factor[v]."""
    cdef Py_ssize_t e
    cdef int v
    for e in range(count):
        for v in range(LANES):
            x[e * LANES + v] = x[e * LANES + v] * factor[v]

cdef inline void lane_pivots(floating* largest, floating* best, const floating* x,
                             Py_ssize_t step, int length) noexcept nogil:
    """For every lane: largest := max |x[i step]| over i < length, best := the first i where it
    is reached, as a float (_lane_update.h)."""
    if floating is double:
        adla_lane_pivots_d(largest, best, x, step, length)
    else:
        adla_lane_pivots_f(largest, best, x, step, length)

cdef inline void eliminate_rows(floating* x, Py_ssize_t row_step, const floating* r,
                                const floating* y, int width, int rows) noexcept nogil:
    """For ``rows`` rows x_i, row_step apart: x_i[0] *= r (every lane its own factor), then
    x_i[j] -= x_i[0] y[j] for 1 <= j < width (_lane_update.h)."""
    if floating is double:
        adla_eliminate_rows_d(x, row_step, r, y, width, rows)
    else:
        adla_eliminate_rows_f(x, row_step, r, y, width, rows)

cdef inline void rotate_rows(floating* x, Py_ssize_t row_step, const floating* c,
                             const floating* s, int rows, int length) noexcept nogil:
    """Rotations k = rows-1 down to 0 on rows (k, k+1) of x, row_step apart,
    with cosines c[k] and sines s[k] (8 lanes each): (x_k, x_k+1) := (c x_k - s x_k+1,
    s x_k + c x_k+1), ``length`` entries a row (_lane_update.h)."""
    if floating is double:
        adla_rotate_rows_d(x, row_step, c, s, rows, length)
    else:
        adla_rotate_rows_f(x, row_step, c, s, rows, length)

cdef inline void subtract_tangent_dots(floating* s, floating* t, const floating* a,
                                      const floating* d, Py_ssize_t row_step, const floating* y,
                                      const floating* e, int rows, int length) noexcept nogil:
    """For rows (1 to 4) rows r of a and d, row_step apart: s[r] -= sum_i a_r[i] y[i] and
    t[r] -= sum_i (d_r[i] y[i] + a_r[i] e[i]), each term in order, every lane; s and t hold
    rows of LANES (_lane_update.h)."""
    if floating is double:
        adla_tangent_dot_rows_d(s, t, a, d, row_step, y, e, rows, length)
    else:
        adla_tangent_dot_rows_f(s, t, a, d, row_step, y, e, rows, length)

cdef inline bint fills_lanes(const Job* job, int largest) noexcept nogil:
    """A planner's rule for the dense kernels: interleaved with both sides up to SMALL_DENSE
    whatever the batch, and up to ``largest`` for a batch that fills the lanes."""
    cdef int side = job.m if job.m > job.n else job.n
    return side <= SMALL_DENSE or (side <= largest and job.nbatch >= LANES)

cdef inline void rotate_lanes(floating* x, floating* y, const floating* c, const floating* s,
                              int length) noexcept nogil:
    """(x, y) := (c x - s y, s x + c y) for every lane, x and y ``length`` elements each
    (_lane_update.h)."""
    if floating is double:
        adla_rotate_lanes_d(x, y, c, s, NULL, NULL, length)
    else:
        adla_rotate_lanes_f(x, y, c, s, NULL, NULL, length)

cdef inline void add_dot_rows(floating* acc, const floating* x, Py_ssize_t row_step,
                              const floating* y, Py_ssize_t step, int rows,
                              int length) noexcept nogil:
    """acc[r] += sum_i x[r row_step + i step] y[i step] for rows (1 to 4) rows of x, every
    lane, each sum in add_dot's order, the rows' sums in flight together and the loads of y
    shared (_lane_update.h)."""
    if floating is double:
        adla_add_dot_rows_d(acc, x, row_step, y, step, rows, length)
    else:
        adla_add_dot_rows_f(acc, x, row_step, y, step, rows, length)

cdef inline void rotate_dot(floating* x, floating* y, const floating* c, const floating* s,
                            const floating* z, floating* acc, int length) noexcept nogil:
    """rotate_lanes on x and y (the same loop), and acc := sum_i x[i] z[i] of the rotated x,
    every lane, in order from zero as add_dot's (_lane_update.h)."""
    if floating is double:
        adla_rotate_dot_d(x, y, c, s, z, acc, length)
    else:
        adla_rotate_dot_f(x, y, c, s, z, acc, length)

cdef inline void lane_order(const floating* values, int n, int v, bint descending,
                            int* order) noexcept nogil:
    """order := 0..n-1 sorted by lane v of values (values[i * LANES + v]), ascending or
    descending, ties in index order (an insertion sort: n is small)."""
    cdef int i, j
    for i in range(n):
        j = i
        while j > 0 and ((values[order[j - 1] * LANES + v] < values[i * LANES + v]) if descending
                         else (values[order[j - 1] * LANES + v] > values[i * LANES + v])):
            order[j] = order[j - 1]
            j -= 1
        order[j] = i

cdef inline void largest_magnitude(floating* largest, const floating* x, Py_ssize_t step,
                                   Py_ssize_t length) noexcept nogil:
    """largest := max |x[i step]| for every lane."""
    cdef floating y
    cdef Py_ssize_t i
    cdef int v
    for v in range(LANES):
        largest[v] = 0
    for i in range(length):
        for v in range(LANES):
            y = fabs(x[i * step + v])
            largest[v] = y if y > largest[v] else largest[v]

cdef inline void set_identity(floating* w, int rows, int cols) noexcept nogil:
    """Every lane of the rows x cols w := I (ones on the diagonal, zeros elsewhere)."""
    cdef int i, j, v
    for i in range(rows):
        for j in range(cols):
            for v in range(LANES):
                w[(i * cols + j) * LANES + v] = 1 if i == j else 0

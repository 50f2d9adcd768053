// adla GPU kernels for batches of small matrices (order n <= 32): N lanes per matrix, N the
// smallest power of two >= n (4, 8, 16 or 32, a compile-time constant, so that a lane's row or
// column lives in registers), 32/N matrices per warp; a matrix is read from global memory once
// and written once, along rows, so that both are coalesced. A padded tile of shared memory per
// matrix holds the triangular factor, read by broadcast, and transposes between steps. Rows and
// columns from n to N are padded with the identity, so nothing inside the loops tests n. Status
// per matrix as on the CPU: 0, -1 (a non-finite entry was read) or the 1-based order of the
// failing leading minor (potrf) / position of a zero diagonal entry (the solves).
// lq_block alone takes a thread block per matrix, for LQ/QR above those sizes.
// Compiled at run time by CuPy (NVRTC): no includes, templated on the float type and N.

template <typename T>
__device__ __forceinline__ bool finite_value(T x) { return x - x == T(0); }

// Where a lane stands: its index g in its group of N lanes, the group's matrix b (live while
// b < batch) and the group's `elements` of shared memory. `idle`: the whole warp is past the
// batch and leaves (together, so that the others' warp-wide operations stay legal).
template <typename T>
struct Group {
    bool idle, live;
    int lane, g;
    long long b;
    T* shared;
};

template <typename T, int N>
__device__ __forceinline__ Group<T> group_of(long long batch, int elements) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    Group<T> group;
    long long first = ((long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * (32 / N);
    group.idle = first >= batch;
    group.lane = threadIdx.x % 32;
    group.g = group.lane % N;
    group.b = first + group.lane / N;
    group.live = group.b < batch;
    group.shared = reinterpret_cast<T*>(shared_bytes) + (threadIdx.x / N) * elements;
    return group;
}

// Loads the n x n lower form of a matrix (lower != 0: its lower triangle; else the transpose of
// its upper triangle) into a padded tile, rows and columns from n to N left unset; lanes of the
// group read along rows, so the loads are coalesced. False where an entry read is not finite.
template <typename T, int N>
__device__ __forceinline__ bool load_lower_form(const T* src, T* tile, int n, int g, int lower) {
    constexpr int STRIDE = N + 1;
    bool ok = true;
    if (g < n) {
        for (int i = 0; i < n; ++i) {
            if (lower ? g <= i : g >= i) {
                T v = src[i * n + g];
                ok = ok && finite_value(v);
                if (lower) tile[i * STRIDE + g] = v; else tile[g * STRIDE + i] = v;
            }
        }
    }
    return ok;
}

// Row g of a lower-form tile completed: zeros above the diagonal, the identity from n on (and
// for a group past the end of the batch).
template <typename T, int N>
__device__ __forceinline__ void pad_lower_form(T* tile, int n, int g, bool live) {
    constexpr int STRIDE = N + 1;
#pragma unroll
    for (int j = 0; j < N; ++j) {
        if (g >= n || !live) tile[g * STRIDE + j] = j == g ? T(1) : T(0);
        else if (j > g) tile[g * STRIDE + j] = T(0);
    }
}

// The 1-based position of the first zero on the diagonal of the group's tile (0: none).
template <typename T, int N>
__device__ __forceinline__ int first_zero_pivot(const T* tile, int n, int lane, int g,
                                                unsigned group) {
    unsigned zero = __ballot_sync(0xffffffffu, g < n && tile[g * (N + 1) + g] == T(0)) & group;
    return zero ? __ffs(zero) - lane / N * N : 0;
}

// The lanes of this lane's group, as a warp mask.
template <int N>
__device__ __forceinline__ unsigned group_mask(int lane) {
    return N == 32 ? 0xffffffffu : ((1u << (N % 32)) - 1u) << (lane / N * N);
}

// x := L^-1 x (forward substitution) for the lower-triangular L of a padded tile (identity beyond
// n), x in registers; each L[i][k] a broadcast read.
template <typename T, int N>
__device__ __forceinline__ void solve_lower(const T* lt, T (&x)[N]) {
    constexpr int STRIDE = N + 1;
#pragma unroll
    for (int i = 0; i < N; ++i) {
        T xi = x[i];
#pragma unroll
        for (int k = 0; k < i; ++k) xi -= lt[i * STRIDE + k] * x[k];
        x[i] = xi / lt[i * STRIDE + i];
    }
}

// Cholesky factor: out = L (lower != 0) or U = L^T, the other triangle zero. Lane g holds row g
// of the lower form in registers; column k of L, once scaled, goes to the tile, from which the
// other rows read it as a broadcast: one shared load per multiply-add instead of the two shuffles
// a double needs (measured on an H200: 100000 x 32 float64, 0.83 ms against 1.85 ms for a warp
// per matrix with shuffles). The padded matrix factors as blockdiag(L, I).
template <typename T, int N>
__global__ void __launch_bounds__(128) potrf_tiles(const T* __restrict__ in, T* __restrict__ out,
                                                   int* __restrict__ status, long long batch,
                                                   int n, long long in_step, int lower) {
    constexpr int STRIDE = N + 1, TILE = N * STRIDE + 1;
    const unsigned full = 0xffffffffu;
    Group<T> group = group_of<T, N>(batch, TILE);
    if (group.idle) return;
    int lane = group.lane, g = group.g;
    long long b = group.b;
    bool live = group.live;
    T* tile = group.shared;
    bool ok = !live || load_lower_form<T, N>(in + b * in_step, tile, n, g, lower);
    __syncwarp();
    T r[N];
#pragma unroll
    for (int j = 0; j < N; ++j)
        r[j] = g < n ? (j <= g ? tile[g * STRIDE + j] : T(0)) : (j == g ? T(1) : T(0));
    int info = (__ballot_sync(full, !ok) & group_mask<N>(lane)) ? -1 : 0;
#pragma unroll
    for (int k = 0; k < N; ++k) {
        T pivot = __shfl_sync(full, r[k], k, N);
        if (info == 0 && k < n && !(pivot > T(0))) info = k + 1;    // a NaN pivot fails too
        T root = sqrt(pivot), scale = T(1) / root;
        if (g == k) r[k] = root; else if (g > k) r[k] *= scale;
        if (g >= k) tile[g * STRIDE + k] = r[k];
        __syncwarp();
#pragma unroll
        for (int j = k + 1; j < N; ++j) {
            T ljk = tile[j * STRIDE + k];
            if (g >= j) r[j] -= r[k] * ljk;
        }
    }
    __syncwarp();
    if (!live) return;
    T* dst = out + b * (long long)n * n;
    if (g < n) {
        for (int i = 0; i < n; ++i) {
            T v = lower ? (g <= i ? tile[i * STRIDE + g] : T(0))
                        : (g >= i ? tile[g * STRIDE + i] : T(0));
            dst[i * n + g] = v;
        }
    }
    if (g == 0) status[b] = info;
}

// x := L^-T x for the lower-triangular L in a padded tile (identity beyond n), x in registers:
// back substitution, each L[k][i] a broadcast read.
template <typename T, int N>
__device__ __forceinline__ void solve_lower_transposed(const T* lt, T (&x)[N]) {
    constexpr int STRIDE = N + 1;
#pragma unroll
    for (int i = N - 1; i >= 0; --i) {
        T xi = x[i];
#pragma unroll
        for (int k = i + 1; k < N; ++k) xi -= lt[k * STRIDE + i] * x[k];
        x[i] = xi / lt[i * STRIDE + i];
    }
}

// The Cholesky backward dA = sym(L^-T S L^-1), S = (P + P^T)/2 with P the lower triangle of
// L^T dL, diagonal halved (Murray 2016), with N lanes per matrix as potrf_tiles: lane g holds
// column g of dL, then of S, X = L^-T S, and the rows of G = X L^-1, in registers; L stays in a
// padded tile read by broadcast; a second tile transposes between the steps. dA is symmetric,
// so lane g writes column g of it, coalesced (H200, 100000 x 32 float64: 2.72 ms against 5.31 ms
// for a warp per matrix working in shared memory alone). Status: -1 for a non-finite entry read,
// else the position of the first zero on the diagonal of L.
template <typename T, int N>
__global__ void __launch_bounds__(128) potrf_backward_tiles(
        const T* __restrict__ dl_in, const T* __restrict__ l_in, T* __restrict__ out,
        int* __restrict__ status, long long batch, int n, long long dl_step, long long l_step,
        int lower) {
    constexpr int STRIDE = N + 1, TILE = N * STRIDE + 1;
    const unsigned full = 0xffffffffu;
    Group<T> group = group_of<T, N>(batch, 2 * TILE);
    if (group.idle) return;
    int lane = group.lane, g = group.g;
    long long b = group.b;
    bool live = group.live;
    T* lt = group.shared;
    T* wt = lt + TILE;
    bool ok = true;
    if (live) {
        ok = load_lower_form<T, N>(l_in + b * l_step, lt, n, g, lower);
        ok = load_lower_form<T, N>(dl_in + b * dl_step, wt, n, g, lower) && ok;
    }
    pad_lower_form<T, N>(lt, n, g, live);
#pragma unroll
    for (int j = 0; j < N; ++j)                         // column g of dL: zero outside n x n
        if (j >= n || !live || j < g) wt[j * STRIDE + g] = T(0);
    __syncwarp();
    int zero = first_zero_pivot<T, N>(lt, n, lane, g, group_mask<N>(lane));
    int info = (__ballot_sync(full, !ok) & group_mask<N>(lane)) ? -1 : zero;
    T c[N];
#pragma unroll
    for (int k = 0; k < N; ++k) c[k] = wt[k * STRIDE + g];          // column g of dL
    // Column g of M = L^T dL below the diagonal, halved: S's lower triangle.
#pragma unroll
    for (int i = 0; i < N; ++i) {                       // upwards: c[k], k >= i, still dL
        T m = T(0);
#pragma unroll
        for (int k = i; k < N; ++k) m += lt[k * STRIDE + i] * c[k];
        c[i] = i >= g ? T(0.5) * m : T(0);
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < N; ++i) if (i >= g) wt[i * STRIDE + g] = c[i];
    __syncwarp();
#pragma unroll
    for (int i = 0; i < N; ++i) if (i < g) c[i] = wt[g * STRIDE + i];   // S[i][g] = S[g][i]
    solve_lower_transposed<T, N>(lt, c);                // column g of X = L^-T S
    __syncwarp();
#pragma unroll
    for (int i = 0; i < N; ++i) wt[i * STRIDE + g] = c[i];
    __syncwarp();
#pragma unroll
    for (int i = 0; i < N; ++i) c[i] = wt[g * STRIDE + i];          // row g of X
    solve_lower_transposed<T, N>(lt, c);                // row g of G = X L^-1, as a column of G^T
    __syncwarp();
#pragma unroll
    for (int i = 0; i < N; ++i) wt[g * STRIDE + i] = c[i];
    __syncwarp();
    if (!live) return;
    T* dst = out + b * (long long)n * n;
    if (g < n) {
        for (int i = 0; i < n; ++i)                     // (G + G^T)/2, column g = row g
            dst[i * n + g] = T(0.5) * (wt[g * STRIDE + i] + wt[i * STRIDE + g]);
    }
    if (g == 0) status[b] = info;
}

// Triangular solve: op(A) X = alpha B, or X op(A) = alpha B with rightside (there X^T solves
// op(A)^T X^T = alpha B^T), for the triangle of A of order n <= N. Each lane solves for its own
// right-hand sides in registers: columns of B on the left, rows on the right; `count` of them per
// matrix, N at a time. Every case is one forward substitution: a system with an upper-triangular
// matrix U is one with the lower-triangular R[i][k] = U[N-1-i][N-1-k] on the reversed vector, so
// the tile holds L or, reversed, L^T (its identity padding then first), and the vectors are read
// and written in reverse.
template <typename T, int N>
__global__ void __launch_bounds__(128) trsm_tiles(
        const T* __restrict__ a_in, const T* __restrict__ b_in, T* __restrict__ out,
        int* __restrict__ status, long long batch, int n, int count, long long a_step,
        long long b_step, int lower, int transpose, int rightside, T alpha) {
    constexpr int STRIDE = N + 1, TILE = N * STRIDE + 1;
    const unsigned full = 0xffffffffu;
    Group<T> group = group_of<T, N>(batch, TILE);
    if (group.idle) return;
    int lane = group.lane, g = group.g;
    long long b = group.b;
    bool live = group.live;
    T* rt = group.shared;
    // The matrix of each system: op(A) on the left, op(A)^T on the right; lower or upper.
    bool reversed = ((lower != 0) == (transpose != 0)) != (rightside != 0);
    bool ok = true;
    const T* src = a_in + (live ? b * a_step : 0);
    if (live && g < n) {                                // A read along rows: coalesced
        for (int i = 0; i < n; ++i) {
            if (lower ? g <= i : g >= i) {
                T v = src[i * n + g];
                ok = ok && finite_value(v);
                int r = i, c = g;                       // (r, c): where A's entry is in R
                if (!lower) { r = g; c = i; }           // the lower form L of an upper A
                if (reversed) { int t = N - 1 - c; c = N - 1 - r; r = t; }
                rt[r * STRIDE + c] = v;
            }
        }
    }
    int offset = reversed ? N - n : 0;                  // R's rows from A: offset .. offset + n
#pragma unroll
    for (int j = 0; j < N; ++j) {                       // row g of R: the rest, identity or zero
        bool from_a = live && g >= offset && g < offset + n && j >= offset && j <= g;
        if (!from_a) rt[g * STRIDE + j] = j == g ? T(1) : T(0);
    }
    __syncwarp();
    int d = reversed ? N - 1 - g : g;                   // A's diagonal entry g in R
    unsigned zero = __ballot_sync(full, live && g < n && rt[d * STRIDE + d] == T(0))
                    & group_mask<N>(lane);
    int position = zero ? __ffs(zero) - lane / N * N : 0;     // the first in A's order
    int along = rightside ? 1 : count, across = rightside ? n : 1;   // element i of vector v
    for (int first_vector = 0; first_vector < count; first_vector += N) {   // same for all lanes
        __syncwarp();                                   // keeps R's reads inside the loop
        int v = first_vector + g;
        bool mine = live && v < count;
        const T* p = b_in + (mine ? b * b_step + (long long)v * across : 0);
        T* q = out + (mine ? b * (long long)n * count + (long long)v * across : 0);
        T x[N];
#pragma unroll
        for (int i = 0; i < N; ++i) {                   // x[i]: element i, or N-1-i reversed
            int e = reversed ? N - 1 - i : i;
            x[i] = mine && e < n ? p[e * along] : T(0);
            ok = ok && finite_value(x[i]);
        }
        solve_lower<T, N>(rt, x);
        if (mine) {
#pragma unroll
            for (int i = 0; i < N; ++i) {
                int e = reversed ? N - 1 - i : i;
                if (e < n) q[e * along] = alpha * x[i];
            }
        }
    }
    int info = (__ballot_sync(full, !ok) & group_mask<N>(lane)) ? -1 : position;
    if (live && g == 0) status[b] = info;
}

// The sum of x over the lanes of the group, in every lane (a butterfly: the same additions in
// every lane, so the same bits).
template <typename T, int N>
__device__ __forceinline__ T group_sum(T x) {
#pragma unroll
    for (int offset = N / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// LAPACK's larfg from the leading entry alpha and the squared norm of the rest: the new leading
// entry beta, tau, and the scale that turns the rest into the reflector's tail; no reflection
// (tau 0, beta = alpha) where the rest is zero.
template <typename T>
struct Reflector { T beta, tau, scale; };

template <typename T>
__device__ __forceinline__ Reflector<T> householder(T alpha, T tail) {
    Reflector<T> h{alpha, T(0), T(0)};
    if (tail > T(0)) {
        T norm = sqrt(alpha * alpha + tail);
        h.beta = alpha >= T(0) ? -norm : norm;
        h.tau = (h.beta - alpha) / h.beta;
        h.scale = T(1) / (alpha - h.beta);
    }
    return h;
}

// Thin LQ of B (m x n, m <= n <= N) by Householder reflectors from the right, as LAPACK's gelq2
// and orgl2: lane g holds column g of B in registers; each dot product along a row is a group
// sum. Row t of the tile keeps reflector t (and L's row t left of the diagonal), its tau and the
// sign that makes L's diagonal non-negative. Out: Q (m x n) and L (m x m), or with `transposed`
// the QR of A = B^T (A n x m): Q^T (n x m) and R = L^T.
template <typename T, int N>
__global__ void __launch_bounds__(128) lq_tiles(
        const T* __restrict__ a_in, T* __restrict__ q_out, T* __restrict__ l_out,
        int* __restrict__ status, long long batch, int m, int n, long long a_step,
        int transposed) {
    constexpr int STRIDE = N + 2, TILE = N * STRIDE;
    const unsigned full = 0xffffffffu;
    Group<T> group = group_of<T, N>(batch, TILE);
    if (group.idle) return;
    int lane = group.lane, g = group.g;
    long long b = group.b;
    bool live = group.live;
    T* tile = group.shared;
    const T* src = a_in + (live ? b * a_step : 0);
    T a[N];
    bool ok = true;
#pragma unroll
    for (int i = 0; i < N; ++i) {
        T v = T(0);
        if (live && i < m && g < n) v = transposed ? src[g * m + i] : src[i * n + g];
        ok = ok && finite_value(v);
        a[i] = v;
    }
#pragma unroll
    for (int t = 0; t < N; ++t) {
        if (t < m) {                                    // uniform across the warp
            T alpha = __shfl_sync(full, a[t], t, N);
            T tail = group_sum<T, N>(g > t ? a[t] * a[t] : T(0));
            Reflector<T> h = householder(alpha, tail);
            T beta = h.beta, tau = h.tau, scale = h.scale;
            T v = g == t ? T(1) : (g > t ? a[t] * scale : T(0));
#pragma unroll
            for (int r = t + 1; r < N; ++r) {
                if (r < m) {
                    T w = group_sum<T, N>(a[r] * v);
                    a[r] -= tau * w * v;
                }
            }
            a[t] = g == t ? beta : (g > t ? v : a[t]);
            tile[t * STRIDE + g] = a[t];
            if (g == 0) {
                tile[t * STRIDE + N] = tau;
                tile[t * STRIDE + N + 1] = beta < T(0) ? T(-1) : T(1);
            }
        }
    }
    __syncwarp();
    if (live && g < m) {                                // column g of L, coalesced
        T sign = tile[g * STRIDE + N + 1];
#pragma unroll
        for (int r = 0; r < N; ++r) {
            if (r < m) {
                T l = r >= g ? a[r] * sign : T(0);
                if (transposed) l_out[b * m * m + g * m + r] = l;
                else l_out[b * m * m + r * m + g] = l;
            }
        }
    }
    T q[N];
#pragma unroll
    for (int r = 0; r < N; ++r) q[r] = r == g ? T(1) : T(0);
#pragma unroll
    for (int t = N - 1; t >= 0; --t) {                  // Q = I_m,n H_{m-1} ... H_0
        if (t < m) {
            T v = g == t ? T(1) : (g > t ? tile[t * STRIDE + g] : T(0));
            T tau = tile[t * STRIDE + N];
#pragma unroll
            for (int r = t; r < N; ++r) {
                if (r < m) {
                    T w = group_sum<T, N>(q[r] * v);
                    q[r] -= tau * w * v;
                }
            }
        }
    }
    int info = (__ballot_sync(full, !ok) & group_mask<N>(lane)) ? -1 : 0;
    if (!live) return;
    if (g < n) {
#pragma unroll
        for (int r = 0; r < N; ++r) {
            if (r < m) {
                T value = q[r] * tile[r * STRIDE + N + 1];
                if (transposed) q_out[b * m * n + (long long)g * m + r] = value;
                else q_out[b * m * n + (long long)r * n + g] = value;
            }
        }
    }
    if (g == 0) status[b] = info;
}

// Rows first, first + warps, ... < m of the row-major M (n columns), a warp each, times the
// reflector I - tau v v^T from the right; v is zero before entry t, 1 at t, v[j] after it.
template <typename T>
__device__ __forceinline__ void reflect_rows(T* M, const T* v, T tau, int t, int first, int m,
                                             int n, int lane, int warps) {
    for (int r = first; r < m; r += warps) {
        T* row = M + r * n;
        T w = T(0);
        for (int j = t + lane; j < n; j += 32) w += row[j] * (j == t ? T(1) : v[j]);
        w = tau * group_sum<T, 32>(w);
        for (int j = t + lane; j < n; j += 32) row[j] -= w * (j == t ? T(1) : v[j]);
    }
}

// The thin LQ of lq_tiles (the same reflectors and signs, the same arguments and results) for
// the sizes above its lanes, short side m up to a few dozen: one block per matrix, B and the Q
// being formed in dynamic shared memory (2 m n + 2 m elements), a warp per row for each dot
// product and update along it, so every access to shared memory runs along a row.
template <typename T>
__global__ void __launch_bounds__(256) lq_block(
        const T* __restrict__ a_in, T* __restrict__ q_out, T* __restrict__ l_out,
        int* __restrict__ status, long long batch, int m, int n, long long a_step,
        int transposed) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    T* B = reinterpret_cast<T*>(shared_bytes);
    T* Q = B + m * n;
    T* taus = Q + m * n;
    T* signs = taus + m;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    const long long b = blockIdx.x;
    const T* src = a_in + b * a_step;
    bool ok = true;
    for (int e = threadIdx.x; e < m * n; e += blockDim.x) {       // coalesced along the source
        T v = src[e];
        ok = ok && finite_value(v);
        if (transposed) B[(e % m) * n + e / m] = v; else B[e] = v;
    }
    ok = __syncthreads_and(ok);
    for (int t = 0; t < m; ++t) {
        T* row = B + t * n;
        if (warp == 0) {
            T alpha = row[t], tail = T(0);
            for (int j = t + 1 + lane; j < n; j += 32) tail += row[j] * row[j];
            tail = group_sum<T, 32>(tail);
            Reflector<T> h = householder(alpha, tail);
            for (int j = t + 1 + lane; j < n; j += 32) row[j] *= h.scale;
            if (lane == 0) {
                row[t] = h.beta;
                taus[t] = h.tau;
                signs[t] = h.beta < T(0) ? T(-1) : T(1);
            }
        }
        __syncthreads();
        reflect_rows(B, row, taus[t], t, t + 1 + warp, m, n, lane, warps);
        __syncthreads();
    }
    for (int e = threadIdx.x; e < m * n; e += blockDim.x) Q[e] = e / n == e % n ? T(1) : T(0);
    __syncthreads();
    for (int t = m - 1; t >= 0; --t) {                  // Q = I_m,n H_{m-1} ... H_0
        reflect_rows(Q, B + t * n, taus[t], t, t + warp, m, n, lane, warps);
        __syncthreads();
    }
    for (int e = threadIdx.x; e < m * m; e += blockDim.x) {     // L, or R = L^T, coalesced
        int r = transposed ? e % m : e / m, c = transposed ? e / m : e % m;
        l_out[b * m * m + e] = c <= r ? B[r * n + c] * signs[c] : T(0);
    }
    for (int e = threadIdx.x; e < m * n; e += blockDim.x) {     // Q, or Q^T, coalesced
        int r = transposed ? e % m : e / n, c = transposed ? e / m : e % n;
        q_out[b * m * n + e] = Q[r * n + c] * signs[r];
    }
    if (threadIdx.x == 0) status[b] = ok ? 0 : -1;
}

// dst = the part `triangle` of each rows x cols matrix of src (matrix b at b * step): 0 all of
// it, 1 its lower triangle, 2 its upper triangle (zeros elsewhere), 3 the symmetric matrix whose
// lower triangle it is; with `transpose`, of the transposed (square) matrix. flags[b] = 1 where
// an entry read is not finite (flags zeroed beforehand); dst may be null: then only the flags.
// One pass, so that cuSOLVER gets its input, the other triangle of its output is already zero,
// and the status of non-finite input needs no reduction over the batch.
template <typename T>
__global__ void take_triangle(const T* __restrict__ src, T* __restrict__ dst,
                              int* __restrict__ flags, long long batch, int rows, int cols,
                              long long step, int triangle, int transpose) {
    long long per = (long long)rows * cols, total = batch * per;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        long long b = e / per;
        int w = (int)(e - b * per), r = w / cols, c = w - r * cols;
        bool keep = triangle == 0 || triangle == 3 || (triangle == 1 ? c <= r : c >= r);
        int sr = transpose ? c : r, sc = transpose ? r : c;
        if (triangle == 3 && sc > sr) { int t = sr; sr = sc; sc = t; }
        T v = keep ? src[b * step + (long long)sr * cols + sc] : T(0);
        if (!finite_value(v)) flags[b] = 1;
        if (dst) dst[e] = v;
    }
}

// Fill the failing matrices of a stack with `value` (NaN): a block per matrix (grid-stride), so
// a batch without failures costs one read of the status.
template <typename T>
__global__ void fill_failed(const int* __restrict__ status, T* __restrict__ out, long long batch,
                            long long per_matrix, T value) {
    for (long long b = blockIdx.x; b < batch; b += gridDim.x) {
        if (status[b] == 0) continue;                   // uniform across the block
        for (long long e = threadIdx.x; e < per_matrix; e += blockDim.x)
            out[b * per_matrix + e] = value;
    }
}

// adla GPU kernels for batches of small matrices (order n <= 32): one warp per matrix, several
// matrices per block, each matrix read from global memory once and written once. The matrix
// lives in shared memory (n*n elements per tile, dynamic); lane j owns column j, so a row
// operation is one instruction across the warp and warps never wait on each other. Status per
// matrix as on the CPU: 0, -1 (a non-finite entry was read) or the 1-based order of the failing
// leading minor (potrf) / position of a zero diagonal entry (potrf_backward).
// Compiled at run time by CuPy (NVRTC): no includes, templated on the float type.

template <typename T>
__device__ __forceinline__ bool finite_value(T x) { return x - x == T(0); }

template <typename T>
__device__ __forceinline__ T* warp_tiles(int tiles, int nn) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    return reinterpret_cast<T*>(shared_bytes) + (threadIdx.x / 32) * tiles * nn;
}

// Cholesky in place of the lower triangle of row-major `a`, right-looking; lanes over columns.
template <typename T>
__device__ int cholesky_shared(T* a, int n, int lane) {
    for (int k = 0; k < n; ++k) {
        T pivot = a[k * n + k];
        if (!(pivot > T(0))) return k + 1;              // a NaN pivot fails too
        T root = sqrt(pivot);
        __syncwarp();
        if (lane > k && lane < n) a[lane * n + k] /= root;
        if (lane == k) a[k * n + k] = root;
        __syncwarp();
        if (lane > k && lane < n) {                     // a[i][j] -= a[i][k] a[j][k], j = lane
            T ljk = a[lane * n + k];
            for (int i = lane; i < n; ++i) a[i * n + lane] -= a[i * n + k] * ljk;
        }
        __syncwarp();
    }
    return 0;
}

// out = lower factor L (lower != 0) or U = L^T; the other triangle zero.
template <typename T>
__global__ void potrf_small(const T* __restrict__ in, T* __restrict__ out,
                            int* __restrict__ status, long long batch, int n, long long in_step,
                            int lower) {
    int lane = threadIdx.x % 32, nn = n * n;
    long long b = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (b >= batch) return;                             // the whole warp leaves together
    T* a = warp_tiles<T>(1, nn);
    const T* src = in + b * in_step;
    bool ok = true;
    for (int e = lane; e < nn; e += 32) {               // coalesced; read triangle -> lower
        int i = e / n, j = e % n;
        if (lower ? j <= i : j >= i) {
            T v = src[e];
            ok = ok && finite_value(v);
            a[lower ? e : j * n + i] = v;
        }
    }
    ok = __all_sync(0xffffffffu, ok);
    __syncwarp();
    int info = ok ? cholesky_shared(a, n, lane) : -1;
    __syncwarp();
    T* dst = out + b * (long long)nn;
    for (int e = lane; e < nn; e += 32) {
        int i = e / n, j = e % n;
        dst[e] = lower ? (j <= i ? a[e] : T(0)) : (j >= i ? a[j * n + i] : T(0));
    }
    if (lane == 0) status[b] = info;
}

// x := L^-T x for lower L; lane = column of x, rows from the bottom up.
template <typename T>
__device__ void solve_upper_transposed(const T* l, T* x, int n, int lane) {
    for (int i = n - 1; i >= 0; --i) {
        if (lane < n) {
            T xi = x[i * n + lane];
            for (int k = i + 1; k < n; ++k) xi -= l[k * n + i] * x[k * n + lane];
            x[i * n + lane] = xi / l[i * n + i];
        }
        __syncwarp();
    }
}

// dA = L^-T S L^-1 with S = (P + P^T)/2, P the lower triangle of L^T dL with halved diagonal
// (Murray 2016): the product, both solves and the symmetrisation fused, in shared memory.
template <typename T>
__global__ void potrf_backward_small(const T* __restrict__ dl_in, const T* __restrict__ l_in,
                                     T* __restrict__ out, int* __restrict__ status,
                                     long long batch, int n, long long dl_step, long long l_step,
                                     int lower) {
    int lane = threadIdx.x % 32, nn = n * n;
    long long b = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (b >= batch) return;
    T* l = warp_tiles<T>(3, nn);
    T* d = l + nn;
    T* x = d + nn;
    const T* lsrc = l_in + b * l_step;
    const T* dsrc = dl_in + b * dl_step;
    bool ok = true;
    for (int e = lane; e < nn; e += 32) {               // lower form: L = U^T, D = dU^T
        int i = e / n, j = e % n;
        bool read = lower ? j <= i : j >= i;
        T lv = read ? lsrc[e] : T(0), dv = read ? dsrc[e] : T(0);
        ok = ok && finite_value(lv) && finite_value(dv);
        int t = lower ? e : j * n + i;
        l[t] = lv;
        d[t] = dv;
    }
    ok = __all_sync(0xffffffffu, ok);
    __syncwarp();
    int info = ok ? 0 : -1;
    for (int i = 0; ok && i < n; ++i)
        if (l[i * n + i] == T(0)) { info = i + 1; break; }
    if (info != 0) {
        if (lane == 0) status[b] = info;
        return;
    }
    // S = M's lower triangle mirrored and halved, M[i][j] = sum_{k >= i} L[k][i] D[k][j].
    for (int i = 0; i < n; ++i) {
        if (lane <= i) {
            T m = T(0);
            for (int k = i; k < n; ++k) m += l[k * n + i] * d[k * n + lane];
            m *= T(0.5);
            x[i * n + lane] = m;
            x[lane * n + i] = m;
        }
    }
    __syncwarp();
    solve_upper_transposed(l, x, n, lane);              // X = L^-T S
    for (int e = lane; e < nn; e += 32) d[e] = x[(e % n) * n + e / n];
    __syncwarp();
    solve_upper_transposed(l, d, n, lane);              // dA = L^-T X^T = X L^-1
    T* dst = out + b * (long long)nn;
    for (int e = lane; e < nn; e += 32) dst[e] = (d[e] + d[(e % n) * n + e / n]) * T(0.5);
    if (lane == 0) status[b] = 0;
}

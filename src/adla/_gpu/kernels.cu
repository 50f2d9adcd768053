// adla GPU kernels for batches of small matrices (order n <= 32): one warp per matrix, several
// matrices per block, each matrix read from global memory once and written once; lane j owns
// column j (in registers for the factorisation, in a shared-memory tile of n*n elements for the
// backward), so a row operation is one instruction across the warp and warps never wait on each
// other. Status per
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

// out = lower factor L (lower != 0) or U = L^T; the other triangle zero. Registers only: lane j
// holds column j of the lower form (c[i] = S[i][j], i >= j); the pivot and column k travel by
// warp shuffles from lane k. Loads and stores of the lower case are coalesced row by row.
template <typename T>
__global__ void potrf_small(const T* __restrict__ in, T* __restrict__ out,
                            int* __restrict__ status, long long batch, int n, long long in_step,
                            int lower) {
    const unsigned full = 0xffffffffu;
    int lane = threadIdx.x % 32;
    long long b = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (b >= batch) return;                             // the whole warp leaves together
    const T* src = in + b * in_step;
    T c[32];
    bool ok = true;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
        T v = T(0);
        if (i < n && lane <= i) {
            v = lower ? src[i * n + lane] : src[lane * n + i];
            ok = ok && finite_value(v);
        }
        c[i] = v;
    }
    int info = __all_sync(full, ok) ? 0 : -1;
#pragma unroll
    for (int k = 0; k < 32; ++k) {
        if (k < n && info == 0) {                       // uniform across the warp
            T pivot = __shfl_sync(full, c[k], k);
            if (!(pivot > T(0))) {
                info = k + 1;                           // a NaN pivot fails too
            } else {
                T root = sqrt(pivot), inverse = T(1) / root;
                if (lane == k) {
#pragma unroll
                    for (int i = k; i < 32; ++i) c[i] = i == k ? root : c[i] * inverse;
                }
                T ljk = T(0);                           // L[lane][k], caught on the way
#pragma unroll
                for (int i = k + 1; i < 32; ++i) {
                    if (i < n) {
                        T lik = __shfl_sync(full, c[i], k);
                        if (lane == i) ljk = lik;
                        if (lane > k && lane <= i) c[i] -= lik * ljk;
                    }
                }
            }
        }
    }
    T* dst = out + b * (long long)n * n;
    if (lane < n) {
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            if (i < n) {
                T v = lane <= i ? c[i] : T(0);
                if (lower) dst[i * n + lane] = v; else dst[lane * n + i] = v;
            }
        }
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

/* The thread pool that runs a batch's blocks in parallel (used by _lapack.pyx's driver).

   Why not an OpenMP parallel loop: adla is called between NumPy/SciPy BLAS calls, whose OpenBLAS
   threads keep spinning for a while after each call, and GNU OpenMP's team spins after each
   parallel region too. With a fork-join team the caller waits at the closing barrier for every
   team thread, also for one that has not even been scheduled yet because a spinning BLAS thread
   holds its core: on a 2-core machine an adla call of 0.3 ms took 4 ms between two matrix
   products, and the products slowed down as much. Making the team sleep at once (passive wait)
   cured that but cost about 0.1 ms of wake-up per call.

   Here the caller takes chunks of the batch from a shared counter and so do the helper threads,
   as soon as they run. The caller waits only for chunks a helper has taken and not finished; a
   helper that has not started yet is not waited for (the caller does its share). Idle helpers
   spin briefly (so that back-to-back calls find them awake), then sleep on a condition variable:
   after a call they leave the cores to whatever runs next within ADLA_POOL_SPIN_NS.

   One call uses the pool at a time; a concurrent call (another Python thread) runs its batch on
   its own thread, so k threads calling adla use about k cores, not k times the pool. After fork
   the child starts with an empty pool (its threads did not survive the fork) and makes new ones
   when needed. */
#ifndef ADLA_POOL_H
#define ADLA_POOL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define ADLA_POOL_MAX_HELPERS 255
#define ADLA_POOL_SPIN_NS 50000      /* how long an idle helper looks for the next call */

/* Runs blocks [first, last) of a job; *scratch is the participant's own, NULL at first. */
typedef void (*adla_chunk_fn)(void* ctx, Py_ssize_t first, Py_ssize_t last, void** scratch);
/* Gives back a participant's scratch (NULL if it took none) once it has no chunk left. */
typedef void (*adla_release_fn)(void* scratch);

typedef struct {
    adla_chunk_fn run;
    adla_release_fn release;
    void* ctx;
    Py_ssize_t nblocks, chunk;
    atomic_llong next;               /* first block not yet taken */
    atomic_int seats;                /* helpers that joined; at most `helpers` may */
    int helpers;
} adla_job;

static struct {
    pthread_mutex_t lock;            /* guards sleeping and starting helpers */
    pthread_cond_t wake;
    atomic_flag busy;                /* a call owns the pool */
    _Atomic(adla_job*) current;      /* the job helpers may join, or NULL */
    atomic_ullong posted;            /* jobs posted so far: a helper's cue */
    atomic_int active;               /* helpers between reading `current` and leaving the job */
    atomic_int sleepers;
    int started;                     /* helper threads running */
    int fork_handler;
} adla_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, ATOMIC_FLAG_INIT};

static inline void adla_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline long long adla_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Take chunks of `job` until none is left; the participant's scratch is released at the end. */
static void adla_take_chunks(adla_job* job) {
    void* scratch = NULL;
    for (;;) {
        long long first = atomic_fetch_add(&job->next, (long long)job->chunk);
        if (first >= job->nblocks)
            break;
        long long last = first + job->chunk < job->nblocks ? first + job->chunk : job->nblocks;
        job->run(job->ctx, (Py_ssize_t)first, (Py_ssize_t)last, &scratch);
    }
    job->release(scratch);
}

static void* adla_helper(void* unused) {
    (void)unused;
    unsigned long long seen = atomic_load(&adla_pool.posted);
    for (;;) {
        long long until = adla_now_ns() + ADLA_POOL_SPIN_NS;
        int spins = 0;
        while (atomic_load(&adla_pool.posted) == seen) {
            adla_pause();
            if (++spins % 64 == 0 && adla_now_ns() > until) {
                pthread_mutex_lock(&adla_pool.lock);
                atomic_fetch_add(&adla_pool.sleepers, 1);
                while (atomic_load(&adla_pool.posted) == seen)
                    pthread_cond_wait(&adla_pool.wake, &adla_pool.lock);
                atomic_fetch_sub(&adla_pool.sleepers, 1);
                pthread_mutex_unlock(&adla_pool.lock);
            }
        }
        seen = atomic_load(&adla_pool.posted);
        /* Registered in `active` before reading `current`: the caller clears `current` and then
           waits for `active` to drop, so it never leaves while a helper may still touch its job
           (both orders sequentially consistent). */
        atomic_fetch_add(&adla_pool.active, 1);
        adla_job* job = atomic_load(&adla_pool.current);
        if (job != NULL && atomic_fetch_add(&job->seats, 1) < job->helpers)
            adla_take_chunks(job);
        atomic_fetch_sub(&adla_pool.active, 1);
    }
    return NULL;
}

static void adla_pool_after_fork(void) {
    /* Only the forking thread exists in the child: no helpers, nothing owned or running. */
    pthread_mutex_init(&adla_pool.lock, NULL);
    pthread_cond_init(&adla_pool.wake, NULL);
    atomic_flag_clear(&adla_pool.busy);
    atomic_store(&adla_pool.current, NULL);
    atomic_store(&adla_pool.active, 0);
    atomic_store(&adla_pool.sleepers, 0);
    adla_pool.started = 0;
}

/* Start helpers up to `helpers` (the pool never shrinks); returns how many run. */
static int adla_pool_grow(int helpers) {
    pthread_mutex_lock(&adla_pool.lock);
    if (!adla_pool.fork_handler) {
        pthread_atfork(NULL, NULL, adla_pool_after_fork);
        adla_pool.fork_handler = 1;
    }
    while (adla_pool.started < helpers && adla_pool.started < ADLA_POOL_MAX_HELPERS) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, adla_helper, NULL);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        adla_pool.started++;
    }
    int started = adla_pool.started;
    pthread_mutex_unlock(&adla_pool.lock);
    return started;
}

/* Run blocks [0, nblocks) through `run` on the calling thread and up to threads - 1 helpers. */
static void adla_parallel_for(adla_chunk_fn run, adla_release_fn release, void* ctx,
                              Py_ssize_t nblocks, int threads) {
    if (threads < 2 || nblocks < 2 || atomic_flag_test_and_set(&adla_pool.busy)) {
        void* scratch = NULL;
        run(ctx, 0, nblocks, &scratch);
        release(scratch);
        return;
    }
    int wanted = threads - 1 < nblocks - 1 ? threads - 1 : (int)(nblocks - 1);
    int started = adla_pool_grow(wanted);         /* the pool may hold more from earlier calls */
    int helpers = started < wanted ? started : wanted;
    adla_job job;
    job.run = run;
    job.release = release;
    job.ctx = ctx;
    job.nblocks = nblocks;
    /* Chunks small enough that a participant descheduled in the middle of one holds up little,
       large enough that taking them costs nothing next to the work. */
    job.chunk = nblocks / (8 * (Py_ssize_t)(helpers + 1));
    if (job.chunk < 1)
        job.chunk = 1;
    atomic_init(&job.next, 0);
    atomic_init(&job.seats, 0);
    job.helpers = helpers;
    atomic_store(&adla_pool.current, &job);
    atomic_fetch_add(&adla_pool.posted, 1);
    if (atomic_load(&adla_pool.sleepers) > 0) {
        pthread_mutex_lock(&adla_pool.lock);
        pthread_cond_broadcast(&adla_pool.wake);
        pthread_mutex_unlock(&adla_pool.lock);
    }
    adla_take_chunks(&job);
    atomic_store(&adla_pool.current, NULL);
    /* Wait for helpers still in a chunk; yielding lets one that shares this core finish it. */
    while (atomic_load(&adla_pool.active) > 0)
        sched_yield();
    atomic_flag_clear(&adla_pool.busy);
}

#endif

/* SPDX-License-Identifier: MIT */
/* pool.c — the opt-in thread pool. libmm starts threads only when a handle is created with
 * n_threads > 1; each such handle owns its pool (no global pool, no global state).
 * mmi_pool_run never allocates: a game loop may call kernels that use it every frame.
 *
 * The tasks of a job are cut into one contiguous share per thread (thread t's share starts at
 * about t * n / n_threads). Each thread, the caller included, claims the tasks of its own share
 * from that share's counter, then helps with the other shares through their counters, and the
 * caller returns as soon as every task is finished: it never waits for a worker that has not
 * started yet. On a machine shared with other processes a worker may lose its core for
 * milliseconds; with a fixed task-to-thread assignment the caller waited for it and two threads
 * ran slower than one. Own shares first keep data in cache along a chain of jobs: many jobs of
 * a training step cut the same rows (of the batch, of the gradients) the same way, so a thread
 * reads more of the rows it wrote itself. With one shared counter the rows went to whichever thread came first: a
 * 4-256-256-1 train step on 2 threads (a 2-core AVX2 VM, other processes kept off the cores)
 * spent 2.05-2.52 ms per step inside tasks over both threads, against 1.85-2.09 ms with own
 * shares first (five alternating pairs), and took a median 1405 us against 1290 us (twenty
 * pairs, fourteen of them faster, per-pair ratio 0.71-1.15, median 0.88). Results stay
 * deterministic because a task's work depends on its index only, never on the thread that
 * runs it (the thread index is given for scratch space).
 *
 * Latency: a training step is a chain of GEMMs of a few hundred microseconds each, and a
 * condition-variable wake-up costs tens of microseconds (the idle core sleeps). So a worker that
 * finishes a job watches the job counter for SPIN_NS before it sleeps, and the caller watches
 * the done count as long before it sleeps: back-to-back jobs start without a system call. The
 * bound keeps an idle pool from burning a shared core.
 *
 * The spinning threads yield every 64 spins. On a core that another process also wants, the
 * yield hands it that process (a whole time slice), so a worker there claims few tasks and the
 * caller runs most jobs alone: a 4-256-256-1 train step on 2 threads then took about its
 * one-thread time (0.91-1.03x, a 2-core VM with two other busy processes). Spinning without
 * the yield was worse on the same machine (0.64-0.75x): the worker claimed a third of the
 * tasks but lost its core in the middle of them, and the caller waited for those.
 *
 * A job is open from post_job until the caller has seen every task done. A worker announces
 * itself (active) before it checks that the job it woke for is still open and reads it; the
 * caller closes the job and then waits until no worker is active, so a late worker never runs
 * tasks of a job that has ended or reads a job being replaced. */
#include "mmi.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* How long a thread spins before it sleeps (see the note above). */
#define SPIN_NS 100000

/* The claim counter of one thread's share of a job, alone in its cache line: the threads
 * claiming their own shares do not write each other's lines. */
typedef struct pool_share {
    _Atomic int64_t next;
    char pad[64 - sizeof(int64_t)];
} pool_share;

typedef struct pool_worker {
    struct mmi_pool *pool;
    int32_t index; /* 1..n-1; the caller of mmi_pool_run is index 0 */
    pthread_t thread;
    int started;
} pool_worker;

struct mmi_pool {
    mmi_alloc alloc;
    int32_t n_threads;
    pool_worker *workers; /* n_threads - 1 entries */
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    /* The job: written by the caller before generation and open_gen are bumped. */
    mmi_task_fn fn;
    mmi_slot_task_fn slot_fn;
    void *ctx;
    int64_t n_tasks;
    _Atomic uint64_t generation; /* bumped per job; workers wait for a change */
    _Atomic uint64_t open_gen;   /* generation of the open job, 0 when none is open */
    pool_share *shares;          /* n_threads entries: the next task of each thread's share */
    _Atomic int64_t done;        /* tasks finished */
    _Atomic int32_t active;      /* workers between announcing themselves and leaving a job */
    _Atomic int stop;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Every 64 spins: gives the core away if another thread waits for it (on a loaded machine that
 * may be the very worker being waited for), and says whether SPIN_NS have passed since t0. */
static int spin_expired(int64_t t0)
{
    sched_yield();
    return mono_ns() - t0 > SPIN_NS;
}

/* First task of thread t's share when n tasks are cut into nt shares (t = nt gives n). */
static int64_t share_start(int64_t n, int32_t nt, int32_t t)
{
    return (n / nt) * t + (t < n % nt ? t : n % nt);
}

/* Claims and runs tasks of the open job until none is left: its own share first, then the
 * others' in turn. The thread that finishes the last task wakes a caller that gave up
 * spinning. */
static void run_tasks(struct mmi_pool *p, int32_t thread)
{
    const int64_t n = p->n_tasks;
    const int32_t nt = p->n_threads;
    for (int32_t k = 0; k < nt; k++) {
        const int32_t t = (thread + k) % nt;
        const int64_t end = share_start(n, nt, t + 1);
        _Atomic int64_t *next = &p->shares[t].next;
        int64_t i;
        if (atomic_load_explicit(next, memory_order_relaxed) >= end) continue;
        while ((i = atomic_fetch_add_explicit(next, 1, memory_order_relaxed)) < end) {
            if (p->slot_fn)
                p->slot_fn(p->ctx, i, n, thread);
            else
                p->fn(p->ctx, i, n);
            if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == n && thread) {
                pthread_mutex_lock(&p->mu);
                pthread_cond_signal(&p->done_cv);
                pthread_mutex_unlock(&p->mu);
            }
        }
    }
}

/* Spins up to SPIN_NS until the generation differs from seen or the pool stops; 1 if so. */
static int spin_for_job(struct mmi_pool *p, uint64_t seen)
{
    int64_t t0 = mono_ns();
    for (uint32_t i = 1;; i++) {
        if (atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
            atomic_load_explicit(&p->stop, memory_order_acquire))
            return 1;
        cpu_relax();
        if (i % 64 == 0 && spin_expired(t0)) return 0;
    }
}

static void *worker_main(void *arg)
{
    pool_worker *w = (pool_worker *)arg;
    struct mmi_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_for_job(p, seen)) {
            pthread_mutex_lock(&p->mu);
            while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->start_cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = atomic_load(&p->generation);
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open_gen) == seen) run_tasks(p, w->index);
        atomic_fetch_sub(&p->active, 1);
    }
}

static void stop_workers(struct mmi_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    for (int32_t i = 0; i < p->n_threads - 1; i++)
        if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
}

int mmi_pool_create(mmi_pool **out, int32_t n_threads, const mmi_alloc *a, mmi_err *e)
{
    struct mmi_pool *p;
    *out = NULL;
    if (n_threads <= 1) return MM_OK;
    if (n_threads > 256)
        return mmi_fail(e, MM_E_RANGE, "n_threads is %d, at most 256", (int)n_threads);
    p = (struct mmi_pool *)mmi_calloc(a, sizeof *p);
    if (!p) return mmi_fail(e, MM_E_NOMEM, "out of memory for the thread pool");
    p->workers = (pool_worker *)mmi_calloc(a, sizeof(pool_worker) * (size_t)(n_threads - 1));
    p->shares = (pool_share *)mmi_calloc(a, sizeof(pool_share) * (size_t)n_threads);
    if (!p->workers || !p->shares) {
        if (p->workers) mmi_free(a, p->workers, sizeof(pool_worker) * (size_t)(n_threads - 1));
        if (p->shares) mmi_free(a, p->shares, sizeof(pool_share) * (size_t)n_threads);
        mmi_free(a, p, sizeof *p);
        return mmi_fail(e, MM_E_NOMEM, "out of memory for the thread pool");
    }
    p->alloc = *a;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int32_t i = 0; i < n_threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i + 1;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            mmi_pool_free(p);
            return mmi_fail(e, MM_E_NOMEM, "could not start thread %d of %d", (int)i + 2,
                            (int)n_threads);
        }
        p->workers[i].started = 1;
    }
    *out = p;
    return MM_OK;
}

void mmi_pool_free(mmi_pool *p)
{
    mmi_alloc a;
    if (!p) return;
    stop_workers(p);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->start_cv);
    pthread_mutex_destroy(&p->mu);
    a = p->alloc;
    mmi_free(&a, p->workers, sizeof(pool_worker) * (size_t)(p->n_threads - 1));
    mmi_free(&a, p->shares, sizeof(pool_share) * (size_t)p->n_threads);
    mmi_free(&a, p, sizeof *p);
}

int32_t mmi_pool_size(const mmi_pool *p) { return p ? p->n_threads : 1; }

/* Publishes the job, then wakes sleeping workers. A worker about to sleep checks the generation
 * under the mutex and the broadcast happens under it too, so none sleeps through a job. */
static void post_job(struct mmi_pool *p, mmi_task_fn fn, mmi_slot_task_fn slot_fn, void *ctx,
                     int64_t n)
{
    uint64_t gen = atomic_load(&p->generation) + 1;
    p->fn = fn;
    p->slot_fn = slot_fn;
    p->ctx = ctx;
    p->n_tasks = n;
    for (int32_t t = 0; t < p->n_threads; t++)
        atomic_store(&p->shares[t].next, share_start(n, p->n_threads, t));
    atomic_store(&p->done, 0);
    atomic_store(&p->open_gen, gen);
    atomic_store(&p->generation, gen);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits until every task is done, closes the job and waits for workers still inside it (they
 * are only leaving: no task is left to claim). */
static void finish_job(struct mmi_pool *p)
{
    int64_t t0 = mono_ns(), n = p->n_tasks;
    for (uint32_t i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < n; i++) {
        cpu_relax();
        if (i % 64 == 0 && spin_expired(t0)) break;
    }
    if (atomic_load_explicit(&p->done, memory_order_acquire) < n) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->done) < n) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    atomic_store(&p->open_gen, 0);
    for (uint32_t i = 1; atomic_load(&p->active) > 0; i++) {
        cpu_relax();
        if (i % 64 == 0) sched_yield();
    }
}

static void run_job(mmi_pool *p, mmi_task_fn fn, mmi_slot_task_fn slot_fn, void *ctx, int64_t n)
{
    if (n <= 0) return;
    if (!p || n == 1) {
        for (int64_t i = 0; i < n; i++) {
            if (slot_fn)
                slot_fn(ctx, i, n, 0);
            else
                fn(ctx, i, n);
        }
        return;
    }
    post_job(p, fn, slot_fn, ctx, n);
    run_tasks(p, 0);
    finish_job(p);
}

void mmi_pool_run(mmi_pool *p, mmi_task_fn fn, void *ctx, int64_t n)
{
    run_job(p, fn, NULL, ctx, n);
}

void mmi_pool_run_slots(mmi_pool *p, mmi_slot_task_fn fn, void *ctx, int64_t n)
{
    run_job(p, NULL, fn, ctx, n);
}

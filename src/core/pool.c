/* SPDX-License-Identifier: MIT */
/* pool.c — the opt-in thread pool. libmm starts threads only when a handle is created with
 * n_threads > 1; each such handle owns its pool (no global pool, no global state).
 * mmi_pool_run never allocates: a game loop may call kernels that use it every frame. */
#include "mmi.h"

#include <pthread.h>
#include <string.h>

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
    uint64_t generation; /* bumped per job; workers wait for a change */
    int32_t pending;     /* workers still running the current job */
    int stop;
    mmi_task_fn fn;
    void *ctx;
    int64_t n_tasks;
};

/* Task i runs on thread i % n: a fixed assignment keeps results deterministic. */
static void run_share(mmi_task_fn fn, void *ctx, int64_t n_tasks, int32_t index, int32_t n)
{
    for (int64_t i = index; i < n_tasks; i += n) fn(ctx, i, n_tasks);
}

static void *worker_main(void *arg)
{
    pool_worker *w = (pool_worker *)arg;
    struct mmi_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        mmi_task_fn fn;
        void *ctx;
        int64_t n_tasks;
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->start_cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        fn = p->fn;
        ctx = p->ctx;
        n_tasks = p->n_tasks;
        pthread_mutex_unlock(&p->mu);

        run_share(fn, ctx, n_tasks, w->index, p->n_threads);

        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void stop_workers(struct mmi_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
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
    if (!p->workers) {
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
    mmi_free(&a, p, sizeof *p);
}

int32_t mmi_pool_size(const mmi_pool *p) { return p ? p->n_threads : 1; }

void mmi_pool_run(mmi_pool *p, mmi_task_fn fn, void *ctx, int64_t n)
{
    if (n <= 0) return;
    if (!p || n == 1) {
        run_share(fn, ctx, n, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);

    run_share(fn, ctx, n, 0, p->n_threads);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/*
 * A small worker pool shared by a store's objects: a job runs fn over items
 * 0..n-1 on the pool's threads and on the thread waiting for it.
 */
#ifndef ATREST_POOL_H
#define ATREST_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "common.h"

#define ATREST__POOL_MAX 64 /* slots (threads, the caller's included) */

/* The public atrest_pool (store.h) is this pool. */
typedef struct atrest_pool atrest__pool;

/*
 * Run item i of a job.  slot (0 .. atrest__pool_slots()-1) names the thread
 * running it: 0 is the waiting caller, each worker has its own, so per-slot
 * state in ctx needs no lock.  Returns 0 or an atrest error code.
 */
typedef int (*atrest__pool_fn)(void *ctx, size_t item, unsigned slot);

/* A job in flight; owned by the caller, opaque otherwise. */
typedef struct atrest__job {
	atrest__pool_fn fn;
	void *ctx;
	size_t n, next;          /* items; next one to claim */
	size_t running;          /* items being run now */
	int rc;                  /* first error */
	atrest__saved_error err; /* raised again by wait */
	pthread_cond_t done;
	struct atrest__job *link;
} atrest__job;

/* The number of online CPUs (at least 1, at most ATREST__POOL_MAX). */
unsigned atrest__pool_cpus(void);

/* A pool of threads - 1 workers (threads >= 1; capped at the maximum). */
int atrest__pool_new(atrest__pool **out, unsigned threads);
/* Stop and join the workers; no job may be in flight.  NULL is a no-op. */
void atrest__pool_free(atrest__pool *p);
/* Slots of a pool: its workers plus the caller (1 for NULL). */
unsigned atrest__pool_slots(const atrest__pool *p);

/*
 * Run fn(ctx, i, slot) for every i < n and return when all are done: the
 * first error (its message re-raised on this thread), or 0.  Items not yet
 * started are skipped after an error.  With p NULL, items run here in order.
 */
int atrest__pool_run(atrest__pool *p, atrest__pool_fn fn, void *ctx, size_t n);

/*
 * The same in two steps: submit hands the items to the workers and returns
 * at once; wait runs what no worker took yet and returns as run does.  Every
 * submitted job must be waited for, and ctx must live until then.  With p
 * NULL all items run in wait.
 */
void atrest__pool_submit(
	atrest__pool *p, atrest__job *j, atrest__pool_fn fn, void *ctx, size_t n);
int atrest__pool_wait(atrest__pool *p, atrest__job *j);

#endif

/*
 * The worker pool: jobs queue under one mutex, workers and waiting callers
 * claim their items one at a time, and the first error stops a job.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atrest/store.h"
#include "common.h"
#include "pool.h"

typedef struct worker {
	atrest__pool *p;
	unsigned slot;
	pthread_t tid;
} worker;

struct atrest_pool {
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a job was queued, or stop */
	atrest__job *head, *tail; /* jobs with items left to claim */
	int stop;
	unsigned nworkers;
	worker workers[];
};

unsigned atrest__pool_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > ATREST__POOL_MAX ? ATREST__POOL_MAX : (unsigned)n;
}

unsigned atrest__pool_slots(const atrest__pool *p)
{
	return p ? p->nworkers + 1 : 1;
}

static void unqueue(atrest__pool *p, atrest__job *j)
{
	atrest__job **pp = &p->head, *prev = NULL;

	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->link;
	}
	if (!*pp)
		return;
	*pp = j->link;
	if (p->tail == j)
		p->tail = prev;
	j->link = NULL;
}

/* Take the next item of j (mutex held); 0 when none is left. */
static int claim(atrest__pool *p, atrest__job *j, size_t *item)
{
	if (j->next >= j->n)
		return 0;
	*item = j->next++;
	j->running++;
	if (j->next == j->n)
		unqueue(p, j);
	return 1;
}

/*
 * Record an item's result (mutex held, on the thread that ran it, whose
 * last error is the item's); an error cancels the rest.
 */
static void finish(atrest__pool *p, atrest__job *j, int rc)
{
	j->running--;
	if (rc < 0 && j->rc == 0) {
		j->rc = rc;
		atrest__error_save(&j->err);
		j->next = j->n;
		unqueue(p, j);
	}
	if (j->running == 0 && j->next >= j->n)
		pthread_cond_signal(&j->done);
}

/* Run one claimed item with the mutex released. */
static void run_item(atrest__pool *p, atrest__job *j, size_t item, unsigned slot)
{
	int rc;

	pthread_mutex_unlock(&p->mu);
	rc = j->fn(j->ctx, item, slot);
	pthread_mutex_lock(&p->mu);
	finish(p, j, rc);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	atrest__pool *p = w->p;
	size_t item;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && !p->head)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		atrest__job *j = p->head;
		if (claim(p, j, &item))
			run_item(p, j, item, w->slot);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Workers block every signal: the application's handlers run elsewhere. */
static int start_workers(atrest__pool *p)
{
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < p->nworkers && !err; i++) {
		p->workers[i].p = p;
		p->workers[i].slot = i + 1;
		err = pthread_create(
			&p->workers[i].tid, NULL, worker_main, &p->workers[i]);
		if (err)
			p->nworkers = i;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

int atrest__pool_new(atrest__pool **out, unsigned threads)
{
	unsigned n = threads > ATREST__POOL_MAX ? ATREST__POOL_MAX : threads;
	atrest__pool *p;
	int err;

	*out = NULL;
	ENSURE(n >= 1, ATREST_EINVAL, "a pool needs at least 1 thread");
	p = calloc(1, sizeof(*p) + n * sizeof(worker));
	ENSURE(p, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	p->nworkers = n - 1;
	err = start_workers(p);
	if (err) {
		atrest__pool_free(p);
		return atrest__error_os(
			ATREST_ERROR, err, "cannot start a worker thread");
	}
	*out = p;
	return 0;
}

void atrest__pool_free(atrest__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i].tid, NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void atrest__pool_submit(
	atrest__pool *p, atrest__job *j, atrest__pool_fn fn, void *ctx, size_t n)
{
	j->fn = fn;
	j->ctx = ctx;
	j->n = n;
	j->next = 0;
	j->running = 0;
	j->rc = 0;
	j->err.code = 0;
	j->link = NULL;
	if (!p)
		return;
	pthread_cond_init(&j->done, NULL);
	if (n == 0)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->link = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
}

static int wait_inline(atrest__job *j)
{
	for (size_t i = 0; i < j->n; i++)
		GUARD(j->fn(j->ctx, i, 0));
	return 0;
}

int atrest__pool_wait(atrest__pool *p, atrest__job *j)
{
	size_t item;

	if (!p)
		return wait_inline(j);
	pthread_mutex_lock(&p->mu);
	while (claim(p, j, &item))
		run_item(p, j, item, 0);
	while (j->running > 0)
		pthread_cond_wait(&j->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&j->done);
	if (j->rc == 0)
		return 0;
	if (j->err.code != j->rc) /* the item failed without saying why */
		return atrest__error(j->rc, "%s", atrest_strerror(j->rc));
	return atrest__error_restore(&j->err);
}

int atrest_pool_new(atrest_pool **out, unsigned int threads)
{
	return atrest__pool_new(out, threads ? threads : atrest__pool_cpus());
}

void atrest_pool_free(atrest_pool *p)
{
	atrest__pool_free(p);
}

int atrest__pool_run(atrest__pool *p, atrest__pool_fn fn, void *ctx, size_t n)
{
	atrest__job j;

	/* One item is not worth waking a worker for: it runs here. */
	atrest__pool_submit(n > 1 ? p : NULL, &j, fn, ctx, n);
	return atrest__pool_wait(n > 1 ? p : NULL, &j);
}

/*
 * A long-running client for the service tests: holds one store handle (and
 * one extra key provider) open and runs commands read from stdin, one
 * answer line each, so a test can stop a key service under it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atrest/atrest.h"

static atrest_store *st;
static atrest_keyprov *kp; /* for check, threads and fork */
static const char *path;

/* The CLI's exit status for a library code (its key errors are 5). */
static int status_of(int rc)
{
	switch (rc) {
	case ATREST_EINVAL:
		return 2;
	case ATREST_ENOTFOUND:
		return 3;
	case ATREST_EINTEGRITY:
		return 4;
	case ATREST_EKEY:
	case ATREST_EUNAVAILABLE:
		return 5;
	default:
		return 1;
	}
}

static void answer_err(int rc)
{
	const atrest_error *e = atrest_error_last();

	printf("err %d %s\n", status_of(rc), e ? e->message : "?");
}

static void do_put(const char *name, const char *value)
{
	int rc = atrest_put(st, name, value, strlen(value), NULL);

	if (rc < 0)
		answer_err(rc);
	else
		printf("ok\n");
}

static void do_get(const char *name)
{
	void *buf = NULL;
	size_t len = 0;
	int rc = atrest_get(&buf, &len, st, name);

	if (rc < 0) {
		answer_err(rc);
		return;
	}
	/* One line per answer: a value's own newlines become spaces. */
	for (size_t i = 0; i < len; i++)
		if (((char *)buf)[i] == '\n')
			((char *)buf)[i] = i + 1 == len ? '\0' : ' ';
	printf("ok %.*s\n", (int)strnlen(buf, len), (const char *)buf);
	atrest_free(buf);
}

static void *check_thread(void *arg)
{
	atrest_key_check c;
	uintptr_t runs = (uintptr_t)arg;

	return (void *)(uintptr_t)(atrest_key_check_run(&c, path, kp, (uint32_t)runs) <
		0);
}

/* T threads, each checking the key N times on the one shared provider. */
static void do_threads(unsigned t, unsigned n)
{
	pthread_t th[64];
	unsigned bad = 0;
	void *r;

	t = t > 64 ? 64 : t;
	for (unsigned i = 0; i < t; i++)
		pthread_create(&th[i], NULL, check_thread, (void *)(uintptr_t)n);
	for (unsigned i = 0; i < t; i++) {
		pthread_join(th[i], &r);
		bad += r != NULL;
	}
	if (bad)
		printf("err 1 %u of %u threads failed\n", bad, t);
	else
		printf("ok\n");
}

/* The provider inherited by a child process must work there too. */
static void do_fork(unsigned n)
{
	atrest_key_check c;
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int rc = atrest_key_check_run(&c, path, kp, n);
		if (rc < 0)
			fprintf(stderr, "child: %s\n", atrest_error_last()->message);
		_exit(rc < 0 ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("err 1 the child failed\n");
		return;
	}
	if (atrest_key_check_run(&c, path, kp, n) < 0)
		answer_err(-1);
	else
		printf("ok\n");
}

static void run(char *line)
{
	char *cmd = strtok(line, " \n"), *a = strtok(NULL, " \n"),
	     *b = strtok(NULL, "\n");
	atrest_key_check c;
	uint32_t id;
	int rc;

	if (!cmd)
		printf("err 2 empty\n");
	else if (!strcmp(cmd, "put") && a && b)
		do_put(a, b);
	else if (!strcmp(cmd, "get") && a)
		do_get(a);
	else if (!strcmp(cmd, "rotate"))
		(rc = atrest_rotate(&id, st)) < 0 ? answer_err(rc) : (void)printf("ok\n");
	else if (!strcmp(cmd, "check") && a)
		(rc = atrest_key_check_run(&c, path, kp, (uint32_t)atoi(a))) < 0
			? answer_err(rc)
			: (void)printf("ok\n");
	else if (!strcmp(cmd, "threads") && a && b)
		do_threads((unsigned)atoi(a), (unsigned)atoi(b));
	else if (!strcmp(cmd, "fork") && a)
		do_fork((unsigned)atoi(a));
	else
		printf("err 2 unknown command\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	char line[4096];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: keyclient STORE CACHE-TTL-SECONDS\n");
		return 2;
	}
	path = argv[1];
	o.path = path;
	o.create = 1;
	o.key_cache_ttl = (uint32_t)atoi(argv[2]);
	rc = atrest_keyprov_from_env(&kp, 0);
	if (rc == 0)
		rc = atrest_store_open(&st, &o);
	if (rc < 0) {
		answer_err(rc);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) && strcmp(line, "quit\n"))
		run(line);
	atrest_store_close(st);
	atrest_keyprov_free(kp);
	return 0;
}

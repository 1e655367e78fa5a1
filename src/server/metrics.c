/*
 * Counters of the server, kept under one mutex (a few updates per request)
 * and rendered as Prometheus text.  Every label value comes from a fixed
 * set (API, route label, method, status, reason), so series stay few.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* A counter with up to four label values (static strings). */
struct series {
	const char *l[4];
	unsigned status;
	uint64_t n;
};

struct hist {
	const char *api, *route;
	uint64_t le[NBUCKETS], count;
	double sum;
};

struct table {
	struct series *v;
	size_t n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct table requests, cuts, auth_failures, reloads;
static struct hist *hists;
static size_t nhists, caphists;
static uint64_t connections_open, connections_total, in_flight, bytes_in, bytes_out;
static time_t started;

static struct {
	srv_metrics_section fn;
	void *payload;
} sections[8];
static size_t nsections;

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (b->oom)
			return;
		va_start(ap, fmt);
		n = vsnprintf(
			b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void srv_buf_free(struct srv_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* The series with these labels (pointer-equal or equal strings), made on
 * first use; NULL when memory runs out. */
static struct series *find(
	struct table *t, const char *a, const char *b, const char *c, unsigned status)
{
	const char *want[4] = {a, b, c, NULL};
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		for (k = 0; k < 3; k++)
			if ((t->v[i].l[k] == NULL) != (want[k] == NULL) ||
				(want[k] && strcmp(t->v[i].l[k], want[k])))
				break;
		if (k == 3 && t->v[i].status == status)
			return &t->v[i];
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 32;
		struct series *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	memcpy(t->v[t->n].l, want, sizeof(want));
	t->v[t->n].status = status;
	return &t->v[t->n++];
}

static void count(struct table *t, const char *a, const char *b, const char *c)
{
	struct series *s;

	pthread_mutex_lock(&mu);
	if ((s = find(t, a, b, c, 0)))
		s->n++;
	pthread_mutex_unlock(&mu);
}

void srv_metrics_connection(int delta)
{
	pthread_mutex_lock(&mu);
	connections_open += (uint64_t)(int64_t)delta;
	if (delta > 0)
		connections_total++;
	if (!started)
		started = time(NULL);
	pthread_mutex_unlock(&mu);
}

void srv_metrics_cut(const char *reason)
{
	count(&cuts, reason, NULL, NULL);
}

void srv_metrics_request_begin(void)
{
	pthread_mutex_lock(&mu);
	in_flight++;
	pthread_mutex_unlock(&mu);
}

static struct hist *hist_find(const char *api, const char *route)
{
	size_t i;

	for (i = 0; i < nhists; i++)
		if (!strcmp(hists[i].api, api) && !strcmp(hists[i].route, route))
			return &hists[i];
	if (nhists == caphists) {
		size_t cap = caphists ? 2 * caphists : 16;
		struct hist *v = realloc(hists, cap * sizeof(*v));

		if (!v)
			return NULL;
		hists = v;
		caphists = cap;
	}
	memset(&hists[nhists], 0, sizeof(hists[0]));
	hists[nhists].api = api;
	hists[nhists].route = route;
	return &hists[nhists++];
}

void srv_metrics_request_end(const char *api, const char *route, const char *method,
	unsigned status, double seconds, uint64_t in, uint64_t out)
{
	struct series *s;
	struct hist *h;
	size_t i;

	pthread_mutex_lock(&mu);
	in_flight--;
	bytes_in += in;
	bytes_out += out;
	if ((s = find(&requests, api, route, method, status)))
		s->n++;
	if ((h = hist_find(api, route))) {
		for (i = 0; i < NBUCKETS; i++)
			if (seconds <= buckets[i])
				h->le[i]++;
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&mu);
}

void srv_metrics_auth_failure(const char *api, const char *reason)
{
	count(&auth_failures, api, reason, NULL);
}

void srv_metrics_reload(const char *what, int ok)
{
	count(&reloads, what, ok ? "ok" : "failed", NULL);
}

int srv_metrics_add_section(srv_metrics_section fn, void *payload)
{
	if (nsections == sizeof(sections) / sizeof(sections[0]))
		return -1;
	sections[nsections].fn = fn;
	sections[nsections].payload = payload;
	nsections++;
	return 0;
}

void srv_metrics_clear_sections(void)
{
	nsections = 0;
}

static void header(
	struct srv_buf *b, const char *name, const char *type, const char *help)
{
	srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(struct srv_buf *b)
{
	size_t i, k;

	header(b, "atrest_server_requests_total", "counter",
		"Requests answered, by API, route, method and status (0: none sent).");
	for (i = 0; i < requests.n; i++) {
		const struct series *s = &requests.v[i];

		srv_buf_printf(b,
			"atrest_server_requests_total{api=\"%s\",route=\"%s\",method=\"%s\","
			"status=\"%u\"} %llu\n",
			s->l[0], s->l[1], s->l[2], s->status, (unsigned long long)s->n);
	}
	header(b, "atrest_server_request_duration_seconds", "histogram",
		"Time from the request line to the end of the response.");
	for (i = 0; i < nhists; i++) {
		const struct hist *h = &hists[i];

		for (k = 0; k < NBUCKETS; k++)
			srv_buf_printf(b,
				"atrest_server_request_duration_seconds_bucket{api=\"%s\","
				"route=\"%s\",le=\"%g\"} %llu\n",
				h->api, h->route, buckets[k],
				(unsigned long long)h->le[k]);
		srv_buf_printf(b,
			"atrest_server_request_duration_seconds_bucket{api=\"%s\",route=\"%s\","
			"le=\"+Inf\"} %llu\n"
			"atrest_server_request_duration_seconds_sum{api=\"%s\",route=\"%s\"} %.6f\n"
			"atrest_server_request_duration_seconds_count{api=\"%s\",route=\"%s\"} "
			"%llu\n",
			h->api, h->route, (unsigned long long)h->count, h->api, h->route,
			h->sum, h->api, h->route, (unsigned long long)h->count);
	}
}

static void render_table(struct srv_buf *b, const struct table *t, const char *name,
	const char *help, const char *k0, const char *k1)
{
	size_t i;

	header(b, name, "counter", help);
	for (i = 0; i < t->n; i++) {
		srv_buf_printf(b, "%s{%s=\"%s\"", name, k0, t->v[i].l[0]);
		if (k1)
			srv_buf_printf(b, ",%s=\"%s\"", k1, t->v[i].l[1]);
		srv_buf_printf(b, "} %llu\n", (unsigned long long)t->v[i].n);
	}
}

static void render_gauges(struct srv_buf *b)
{
	header(b, "atrest_server_requests_in_flight", "gauge", "Requests being served.");
	srv_buf_printf(b, "atrest_server_requests_in_flight %llu\n",
		(unsigned long long)in_flight);
	header(b, "atrest_server_connections", "gauge", "Open client connections.");
	srv_buf_printf(b, "atrest_server_connections %llu\n",
		(unsigned long long)connections_open);
	header(b, "atrest_server_connections_total", "counter", "Connections accepted.");
	srv_buf_printf(b, "atrest_server_connections_total %llu\n",
		(unsigned long long)connections_total);
	header(b, "atrest_server_received_bytes_total", "counter", "Request body bytes.");
	srv_buf_printf(b, "atrest_server_received_bytes_total %llu\n",
		(unsigned long long)bytes_in);
	header(b, "atrest_server_sent_bytes_total", "counter", "Response body bytes.");
	srv_buf_printf(b, "atrest_server_sent_bytes_total %llu\n",
		(unsigned long long)bytes_out);
	header(b, "atrest_server_start_time_seconds", "gauge",
		"When the server started, seconds since the epoch.");
	srv_buf_printf(b, "atrest_server_start_time_seconds %lld\n", (long long)started);
}

int srv_metrics_render(struct srv_buf *out)
{
	size_t i;

	pthread_mutex_lock(&mu);
	render_requests(out);
	render_gauges(out);
	render_table(out, &cuts, "atrest_server_connections_cut_total",
		"Connections closed by the server for being too slow or too large.",
		"reason", NULL);
	render_table(out, &auth_failures, "atrest_server_auth_failures_total",
		"Requests refused for missing, unknown or insufficient credentials.",
		"api", "reason");
	render_table(out, &reloads, "atrest_server_reloads_total",
		"Reloads of API keys and TLS certificates.", "what", "result");
	pthread_mutex_unlock(&mu);
	for (i = 0; i < nsections; i++)
		if (sections[i].fn(out, sections[i].payload) < 0)
			return -1;
	return out->oom ? -1 : 0;
}

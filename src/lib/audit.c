/*
 * The audit writer: one JSON line per event, each carrying the SHA-256 of the
 * line before it, with Ed25519-signed heads (docs/AUDIT.md).  Lines go to a
 * sink: numbered segment files in a directory (flock'ed, so that threads and
 * processes extend one linear chain) or syslog.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "keyring.h"
#include "obs.h"

#define TAIL_WINDOW (2 * ATREST__AUDIT_LINE_MAX)
#define DETAIL_MAX 400

/*
 * Where lines go.  lock gives the exclusive right to append with the
 * writer's view of the chain's tail (last, seq) current; append writes
 * whole lines (at once, or none of them); sync makes what was appended
 * durable (called without mu, which it takes only briefly).  A sink that rotates
 * (files) is told so by the writer through seal.  A future object-store
 * sink seals segments into objects behind the same five calls.
 */
typedef struct sink_ops {
	int (*lock)(atrest__audit *a);
	void (*unlock)(atrest__audit *a);
	int (*append)(atrest__audit *a, const char *line, size_t n);
	int (*sync)(atrest__audit *a);
	/* After the sealing head: later lines start a new segment (NULL: none). */
	void (*seal)(atrest__audit *a);
} sink_ops;

/* An event waiting for the thread that appends for everyone (below). */
typedef struct waiter {
	atrest_event *ev;
	/* Its line from "op" on, formatted before the queue (off the lock). */
	char tail[ATREST__AUDIT_LINE_MAX];
	size_t tail_len;
	int over;
	int rc, done;
	char why[200];     /* the error, for the waiting thread */
	pthread_cond_t cv; /* signalled when done, or when it is to append */
	struct waiter *next;
} waiter;

/* The chain as the sink last took it, to go back to when an append fails. */
typedef struct chain_mark {
	uint64_t seq, unsigned_lines, lost;
	uint8_t last[32];
	char note[200];
} chain_mark;

struct atrest__audit {
	pthread_mutex_t mu; /* the chain and the sink (held by the appender) */
	/*
	 * Group commit: threads queue their events; one of them (leading)
	 * takes every queued event, formats their lines in order into batch
	 * and appends them with one lock of the sink and one write.
	 */
	pthread_mutex_t qmu;
	waiter *qhead, **qtail;
	int leading;
	char *batch; /* lines formatted, not yet appended (mu) */
	size_t blen;
	chain_mark mark;
	time_t tsec;      /* the second tprefix is for */
	char tprefix[32]; /* "YYYY-MM-DDTHH:MM:SS." of tsec */
	const sink_ops *sink;
	char dir[PATH_MAX];
	uint64_t rotate_bytes;
	unsigned head_lines;
	uint8_t sid[16];
	EVP_PKEY *key; /* NULL until the keyring gave it: heads unsigned */
	char fp[17];
	/* The active segment, and our view of its tail. */
	int fd;
	uint32_t segno;
	uint64_t known; /* its size after our last write; UINT64_MAX: unknown */
	uint8_t last[32];
	uint64_t seq;
	uint64_t unsigned_lines; /* since the last head */
	int dirty;               /* written since the last fdatasync */
	uint64_t lost;           /* events that could not be written */
	char note[200];          /* a repair to record before the next line */
	char line[ATREST__AUDIT_LINE_MAX];
};

/* ---- line coding ---- */

typedef struct lbuf {
	char *p;
	size_t len, cap;
	int over;
} lbuf;

static void lb_put(lbuf *b, const char *s, size_t n)
{
	if (b->over || b->len + n >= b->cap) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Decimal digits of v (no printf: every line has several numbers). */
static void lb_u64(lbuf *b, uint64_t v)
{
	char d[20];
	size_t n = 0;

	do {
		d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	lb_put(b, d + sizeof(d) - n, n);
}

/* ,"key":v */
static void lb_key_u64(lbuf *b, const char *key, size_t klen, uint64_t v)
{
	lb_put(b, key, klen);
	lb_u64(b, v);
}
#define LB_KEY_U64(b, lit, v) lb_key_u64(b, lit, sizeof(lit) - 1, v)

static void lb_fmt(lbuf *b, const char *fmt, ...) ATREST__PRINTF(2, 3);
static void lb_fmt(lbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		b->over = 1;
	else
		lb_put(b, tmp, (size_t)n);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void lb_str(lbuf *b, const char *s, size_t max)
{
	lb_put(b, "\"", 1);
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			lb_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			lb_fmt(b, "\\u%04x", c);
		} else {
			lb_put(b, (const char *)&c, 1);
		}
	}
	lb_put(b, "\"", 1);
}

static void lb_key_str(lbuf *b, const char *key, const char *v, size_t max)
{
	lb_fmt(b, ",\"%s\":", key);
	lb_str(b, v, max);
}

static const char *outcome_name(int rc)
{
	static const char *const names[] = {"ok", "error", "invalid", "not_found",
		"integrity", "key", "exists", "unavailable", "no_space", "too_big"};

	return rc <= 0 && rc >= ATREST_ETOOBIG ? names[-rc] : "error";
}

/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", UTC; the date part made once a second. */
static void lb_now(lbuf *b, atrest__audit *a)
{
	struct timeval tv;
	struct tm tm;
	char us[8];

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != a->tsec || !a->tprefix[0]) {
		gmtime_r(&tv.tv_sec, &tm);
		snprintf(a->tprefix, sizeof(a->tprefix), "%04d-%02d-%02dT%02d:%02d:%02d.",
			tm.tm_year % 10000 + 1900, (tm.tm_mon + 1) % 100,
			tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
			tm.tm_sec % 100);
		a->tsec = tv.tv_sec;
	}
	lb_put(b, a->tprefix, strlen(a->tprefix));
	for (int i = 5, v = (int)(tv.tv_usec % 1000000); i >= 0; i--, v /= 10)
		us[i] = (char)('0' + v % 10);
	us[6] = 'Z';
	lb_put(b, us, 7);
}

/* {"seq":N,"time":"...","prev":"<hex>","op": -- every line starts so. */
static void line_head(lbuf *b, atrest__audit *a)
{
	char ph[65];

	atrest__hex(ph, a->last, 32);
	LB_KEY_U64(b, "{\"seq\":", a->seq + 1);
	lb_put(b, ",\"time\":\"", 9);
	lb_now(b, a);
	lb_put(b, "\",\"prev\":\"", 10);
	lb_put(b, ph, 64);
	lb_put(b, "\",\"op\":", 7);
}

static void line_start(lbuf *b, atrest__audit *a, const char *op)
{
	line_head(b, a);
	lb_str(b, op, 64);
}

static void event_fields(lbuf *b, const atrest_event *e)
{
	int snap = atrest__op_is_snapshot(e->op);

	lb_key_str(b, "outcome", outcome_name(e->outcome), 32);
	lb_key_str(b, "principal", e->principal ? e->principal : "", 127);
	lb_key_str(b, "tenant", e->tenant ? e->tenant : "", 64);
	if (e->name)
		lb_key_str(b, "name", e->name, 1024);
	if (e->bytes || e->op == ATREST_OP_PUT || e->op == ATREST_OP_GET || snap)
		LB_KEY_U64(b, ",\"bytes\":", e->bytes);
	if (e->ranged) {
		LB_KEY_U64(b, ",\"offset\":", e->offset);
		LB_KEY_U64(b, ",\"length\":", e->length);
	}
	if (e->data_key_id)
		LB_KEY_U64(b, ",\"data_key\":", e->data_key_id);
	if (e->master_key_id)
		lb_key_str(b, "master_key", e->master_key_id, 127);
	if (e->provider)
		lb_key_str(b, "provider", e->provider, 31);
	if (e->count || snap)
		LB_KEY_U64(b, ",\"count\":", e->count);
	LB_KEY_U64(b, ",\"latency_us\":", e->duration_ns / 1000);
	LB_KEY_U64(b, ",\"pid\":", (uint64_t)atrest__obs_pid());
	if (e->detail)
		lb_key_str(b, e->outcome < 0 ? "error" : "detail", e->detail, DETAIL_MAX);
	lb_put(b, "}\n", 2);
}

void atrest__audit_sigmsg(uint8_t out[ATREST__AUDIT_SIGMSG_LEN], const uint8_t sid[16],
	uint64_t seq, const uint8_t prev[32])
{
	memcpy(out, "atrest-audit-head-v1", 20);
	memcpy(out + 20, sid, 16);
	atrest__put_le64(out + 36, seq);
	memcpy(out + 44, prev, 32);
}

void atrest__audit_key_fp(char out[17], const uint8_t pub[32])
{
	uint8_t h[32];

	atrest__sha256(h, pub, 32);
	atrest__hex(out, h, 8);
}

int atrest__ed25519_public(uint8_t pub[32], const uint8_t seed[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	size_t n = 32;
	int ok = k && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32;

	EVP_PKEY_free(k);
	if (!ok)
		return atrest__error_ossl(ATREST_ERROR, "Ed25519 key");
	return 0;
}

/* A head line: the signature over the chain up to the line before it. */
static int head_line(lbuf *b, atrest__audit *a, int last)
{
	uint8_t msg[ATREST__AUDIT_SIGMSG_LEN], sig[64];
	size_t sl = sizeof(sig);
	char *s64;
	EVP_MD_CTX *c;
	int ok;

	line_start(b, a, "head");
	if (a->key) {
		atrest__audit_sigmsg(msg, a->sid, a->seq + 1, a->last);
		c = EVP_MD_CTX_new();
		ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, a->key) == 1 &&
			EVP_DigestSign(c, sig, &sl, msg, sizeof(msg)) == 1 && sl == 64;
		EVP_MD_CTX_free(c);
		if (!ok)
			return atrest__error_ossl(ATREST_ERROR, "audit: signing a head");
		s64 = atrest__b64(sig, 64);
		ENSURE(s64, ATREST_ERROR, "out of memory");
		char sid[33];
		atrest__hex(sid, a->sid, 16);
		lb_key_str(b, "store", sid, 32);
		lb_key_str(b, "key", a->fp, 16);
		lb_key_str(b, "sig", s64, 100);
		free(s64);
	}
	if (last)
		lb_put(b, ",\"last\":true", 12);
	LB_KEY_U64(b, ",\"pid\":", (uint64_t)atrest__obs_pid());
	lb_put(b, "}\n", 2);
	return 0;
}

/* ---- the file sink: segments, tails, repairs ---- */

static void seg_path(char out[PATH_MAX], const atrest__audit *a, uint32_t n)
{
	/* The directory was checked to leave room for the name (audit_new). */
	int len = snprintf(out, PATH_MAX, "%s/", a->dir);

	snprintf(out + len, PATH_MAX - (size_t)len,
		ATREST__AUDIT_PREFIX "%06u" ATREST__AUDIT_SUFFIX, n);
}

/* The highest segment number in the directory (0: none). */
static uint32_t newest_segment(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint32_t best = 0;
	unsigned n;
	char tail[16];

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (sscanf(de->d_name, ATREST__AUDIT_PREFIX "%u%15s", &n, tail) == 2 &&
			strcmp(tail, ATREST__AUDIT_SUFFIX) == 0 && n > best)
			best = n;
	closedir(d);
	return best;
}

static int open_segment(atrest__audit *a, uint32_t n)
{
	char p[PATH_MAX];

	seg_path(p, a, n);
	if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
		return atrest__error_os(
			ATREST_ERROR, errno, "audit: cannot create %s", a->dir);
	a->fd = open(p, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0)
		return atrest__error_os(ATREST_ERROR, errno, "audit: cannot open %s", p);
	a->segno = n;
	a->known = UINT64_MAX;
	return 0;
}

static void close_segment(atrest__audit *a)
{
	if (a->fd >= 0) {
		if (a->dirty)
			fdatasync(a->fd);
		close(a->fd);
	}
	a->fd = -1;
	a->dirty = 0;
}

/* What the last complete line of a tail says. */
typedef struct tail_info {
	uint64_t seq;
	uint8_t hash[32];
	int head, sealed;
} tail_info;

static int parse_last(tail_info *t, const char *line, size_t n)
{
	json_t *j = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *seq = json_object_get(j, "seq"), *op = json_object_get(j, "op");
	int ok =
		json_is_integer(seq) && json_integer_value(seq) > 0 && json_is_string(op);

	if (ok) {
		t->seq = (uint64_t)json_integer_value(seq);
		t->head = strcmp(json_string_value(op), "head") == 0;
		t->sealed = t->head && json_is_true(json_object_get(j, "last"));
		atrest__sha256(t->hash, line, n);
	}
	json_decref(j);
	ENSURE(ok, ATREST_EINTEGRITY,
		"audit: the last line of the log is not an audit line");
	return 0;
}

/*
 * Read the tail of fd (size bytes): the last complete line, and a torn
 * line after it, which is cut off (and noted, to be recorded).  *empty when
 * no complete line is left.
 */
static int read_tail(atrest__audit *a, int fd, uint64_t size, tail_info *t, int *empty)
{
	char buf[TAIL_WINDOW + 1];
	size_t n = size < TAIL_WINDOW ? (size_t)size : TAIL_WINDOW, end, start;
	uint64_t base = size - n;
	ssize_t got = pread(fd, buf, n, (off_t)base);

	*empty = 0;
	if (got != (ssize_t)n)
		return atrest__error_os(
			ATREST_ERROR, errno, "audit: cannot read the log tail");
	end = n;
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	if (end < n) { /* a torn last line: cut, and record that it was */
		ENSURE(end > 0 || base == 0, ATREST_EINTEGRITY,
			"audit: the log ends with an overlong line");
		if (ftruncate(fd, (off_t)(base + end)) != 0)
			return atrest__error_os(
				ATREST_ERROR, errno, "audit: cannot repair the log");
		snprintf(a->note, sizeof(a->note),
			"cut a torn last line of %zu bytes (a writer died mid-line)",
			n - end);
	}
	if (end == 0) {
		*empty = 1;
		return 0;
	}
	start = end - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	ENSURE(start > 0 || base == 0, ATREST_EINTEGRITY,
		"audit: the log ends with an overlong line");
	return parse_last(t, buf + start, end - 1 - start);
}

/* The tail of segment n (read-only), for a new or empty segment after it. */
static int tail_of(atrest__audit *a, uint32_t n, tail_info *t, int *empty)
{
	char p[PATH_MAX];
	struct stat sb;
	int fd, rc;

	seg_path(p, a, n);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return atrest__error_os(
			ATREST_EINTEGRITY, errno, "audit: segment %u is missing", n);
	rc = fstat(fd, &sb) == 0 ? read_tail(a, fd, (uint64_t)sb.st_size, t, empty)
				 : atrest__error_os(ATREST_ERROR, errno, "audit: stat");
	close(fd);
	return rc;
}

/* Our fd still names the segment file (not removed or replaced). */
static int same_file(const atrest__audit *a, const struct stat *sb)
{
	char p[PATH_MAX];
	struct stat now;

	seg_path(p, a, a->segno);
	return stat(p, &now) == 0 && now.st_ino == sb->st_ino && now.st_dev == sb->st_dev;
}

/* Learn the chain's tail after another writer (or nobody) wrote. */
static int resync(atrest__audit *a, uint64_t size, int *sealed)
{
	tail_info t = {0};
	int empty = 1, here;

	*sealed = 0;
	if (size > 0)
		GUARD(read_tail(a, a->fd, size, &t, &empty));
	here = !empty;
	for (uint32_t n = a->segno; empty && n > 1;) /* start of a segment */
		GUARD(tail_of(a, --n, &t, &empty));
	if (empty) { /* a new log */
		memset(a->last, 0, 32);
		a->seq = 0;
		a->unsigned_lines = 0;
		return 0;
	}
	memcpy(a->last, t.hash, 32);
	a->seq = t.seq;
	a->unsigned_lines = !t.head;
	*sealed = t.sealed && here;
	return 0;
}

static void unlock_tail(atrest__audit *a)
{
	if (a->fd >= 0)
		flock(a->fd, LOCK_UN);
}

/* Take the active segment's lock with our view of its tail up to date. */
static int lock_tail(atrest__audit *a)
{
	struct stat sb;
	int sealed;

	for (int tries = 0; tries < 1000; tries++) {
		if (a->fd < 0) {
			uint32_t n = newest_segment(a->dir);
			GUARD(open_segment(a, n ? n : 1));
		}
		if (flock(a->fd, LOCK_EX) != 0)
			return atrest__error_os(ATREST_ERROR, errno, "audit: flock");
		if (fstat(a->fd, &sb) != 0 || !same_file(a, &sb)) {
			close_segment(a); /* rotated away or replaced: start over */
			continue;
		}
		if ((uint64_t)sb.st_size == a->known)
			return 0;
		if (a->known != UINT64_MAX && (uint64_t)sb.st_size < a->known)
			snprintf(a->note, sizeof(a->note),
				"the log was shorter than this process last wrote it "
				"(cut or replaced)");
		GUARD(resync(a, (uint64_t)sb.st_size, &sealed));
		fstat(a->fd, &sb);
		a->known = (uint64_t)sb.st_size;
		if (!sealed)
			return 0;
		close_segment(a); /* rotated: the next segment continues */
		GUARD(open_segment(a, a->segno + 1));
	}
	return atrest__error(ATREST_ERROR, "audit: the log keeps changing under us");
}

/* One whole line to the file; a failed write is cut back (no torn line). */
static int file_append(atrest__audit *a, const char *line, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(a->fd, line + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			if (ftruncate(a->fd, (off_t)a->known) != 0)
				a->known = UINT64_MAX;
			return atrest__error_os(
				ATREST_ERROR, e, "audit: cannot write to %s", a->dir);
		}
		done += (size_t)w;
	}
	a->known += n;
	a->dirty = 1;
	return 0;
}

/*
 * Called without the lock: a duplicate of the descriptor taken under it is
 * synced, so appends go on meanwhile (a segment sealed meanwhile was synced
 * at its close).  What was appended before is durable after.
 */
static int file_sync(atrest__audit *a)
{
	int fd = -1, rc = 0;

	pthread_mutex_lock(&a->mu);
	if (a->dirty && a->fd >= 0) {
		fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			rc = atrest__error_os(ATREST_ERROR, errno, "audit: dup");
		else
			a->dirty = 0;
	}
	pthread_mutex_unlock(&a->mu);
	if (fd >= 0 && fdatasync(fd) != 0)
		rc = atrest__error_os(ATREST_ERROR, errno, "audit: fdatasync");
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		pthread_mutex_lock(&a->mu);
		a->dirty = 1; /* try again next time */
		pthread_mutex_unlock(&a->mu);
	}
	return rc;
}

static void file_seal(atrest__audit *a)
{
	unlock_tail(a);
	close_segment(a);
}

static const sink_ops FILE_SINK = {
	lock_tail, unlock_tail, file_append, file_sync, file_seal};

/* Syslog: the chain is this process's own; syslog orders and keeps it. */
static int syslog_lock(atrest__audit *a)
{
	(void)a;
	return 0;
}

static void syslog_unlock(atrest__audit *a)
{
	(void)a;
}

/* Lines (each ending with '\n') one syslog message each. */
static int syslog_append(atrest__audit *a, const char *lines, size_t n)
{
	(void)a;
	for (const char *p = lines, *e = lines + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		syslog(LOG_AUTHPRIV | LOG_INFO, "%.*s", (int)(nl - p), p);
		p = nl + 1;
	}
	return 0;
}

static const sink_ops SYSLOG_SINK = {
	syslog_lock, syslog_unlock, syslog_append, syslog_lock, NULL};

/* ---- batches of lines ---- */

/*
 * Lines held before one append.  A batch is appended once it passes
 * BATCH_CAP, so the buffer holds it and one event's lines (a note, the
 * event, two heads) beyond.
 */
#define BATCH_CAP (64u << 10)
#define BATCH_ROOM (BATCH_CAP + 4 * ATREST__AUDIT_LINE_MAX)

static void mark_save(atrest__audit *a)
{
	chain_mark *m = &a->mark;

	m->seq = a->seq;
	m->unsigned_lines = a->unsigned_lines;
	m->lost = a->lost;
	memcpy(m->last, a->last, 32);
	memcpy(m->note, a->note, sizeof(m->note));
}

static void mark_restore(atrest__audit *a)
{
	const chain_mark *m = &a->mark;

	a->seq = m->seq;
	a->unsigned_lines = m->unsigned_lines;
	a->lost = m->lost;
	memcpy(a->last, m->last, 32);
	memcpy(a->note, m->note, sizeof(a->note));
}

/* The sink locked, with our view of the chain's tail as the mark. */
static int lock_sink(atrest__audit *a)
{
	int rc = a->sink->lock(a);

	if (rc < 0)
		a->sink->unlock(a);
	else
		mark_save(a);
	return rc;
}

/* Append the batch with one write; on failure the chain goes back to
 * the mark (none of the batch's lines exist). */
static int flush_lines(atrest__audit *a)
{
	int rc;

	if (!a->blen)
		return 0;
	rc = a->sink->append(a, a->batch, a->blen);
	a->blen = 0;
	if (rc < 0)
		mark_restore(a);
	else
		mark_save(a);
	return rc;
}

/* Add a line to the batch and advance the chain. */
static int put_line(atrest__audit *a, const char *line, size_t n)
{
	ENSURE(n > 1 && line[n - 1] == '\n', ATREST_ERROR, "audit: line too long");
	ENSURE(a->blen + n <= BATCH_ROOM, ATREST_ERROR, "audit: batch full");
	memcpy(a->batch + a->blen, line, n);
	a->blen += n;
	atrest__sha256(a->last, line, n - 1);
	a->seq++;
	return 0;
}

static int write_head(atrest__audit *a, int last)
{
	lbuf b = {a->line, 0, sizeof(a->line), 0};

	GUARD(head_line(&b, a, last));
	ENSURE(!b.over, ATREST_ERROR, "audit: head line too long");
	GUARD(put_line(a, b.p, b.len));
	a->unsigned_lines = 0;
	return 0;
}

/* A repair noted while reading the tail, or events lost, as a line. */
static int write_note(atrest__audit *a)
{
	atrest_event ev = ATREST_EVENT_INIT;
	lbuf b = {a->line, 0, sizeof(a->line), 0};
	char d[260];

	if (!a->note[0] && !a->lost)
		return 0;
	snprintf(d, sizeof(d), "%s%s%llu events could not be written before", a->note,
		a->note[0] ? "; " : "", (unsigned long long)a->lost);
	if (!a->lost)
		snprintf(d, sizeof(d), "%s", a->note);
	ev.op = ATREST_OP_RECOVERED;
	ev.detail = d;
	ev.principal = "atrest";
	line_start(&b, a, atrest_op_name(ev.op));
	event_fields(&b, &ev);
	ENSURE(!b.over, ATREST_ERROR, "audit: note too long");
	GUARD(put_line(a, b.p, b.len));
	a->note[0] = '\0';
	a->lost = 0;
	a->unsigned_lines++;
	return 0;
}

/* w's line into the batch, and a head when one is due; *seal when the
 * segment is full (its last head is then in the batch). */
static int append_locked(atrest__audit *a, waiter *w, int *seal)
{
	lbuf b = {a->line, 0, sizeof(a->line), 0};

	*seal = 0;
	GUARD(write_note(a));
	line_head(&b, a);
	lb_put(&b, w->tail, w->tail_len);
	ENSURE(!b.over && !w->over, ATREST_ERROR, "audit: event too long");
	GUARD(put_line(a, b.p, b.len));
	w->ev->seq = a->seq;
	a->unsigned_lines++;
	/* Heads and rotation wait for the key (a handle still opening). */
	if (a->key && a->unsigned_lines >= a->head_lines)
		GUARD(write_head(a, 0));
	if (a->key && a->sink->seal && a->known + a->blen >= a->rotate_bytes) {
		GUARD(write_head(a, 1)); /* sealed: the next line opens a new file */
		*seal = 1;
	}
	return 0;
}

/* Waiters from..to (NULL: the end) failed with rc; each is a line lost. */
static void fail_waiters(atrest__audit *a, waiter *from, waiter *to, int rc)
{
	const atrest_error *e = atrest_error_last();

	for (waiter *w = from; w; w = w == to ? NULL : w->next) {
		if (w->rc == 0) {
			w->rc = rc;
			snprintf(w->why, sizeof(w->why), "%s",
				e && e->message ? e->message : "audit: cannot write");
		}
		a->lost++;
	}
}

/*
 * The lines of queued events, in order, appended with one lock of the
 * sink and one write (more when the batch fills or a segment is sealed on
 * the way).  Each waiter gets its own result; pending is the first whose
 * line is in the batch but not yet appended.
 */
static void append_queue(atrest__audit *a, waiter *q)
{
	waiter *pending = q;
	int locked = 0, seal, rc;

	pthread_mutex_lock(&a->mu);
	for (waiter *w = q; w; w = w->next) {
		if (!locked && (rc = lock_sink(a)) < 0) {
			fail_waiters(a, w, w, rc);
			pending = w->next;
			continue;
		}
		locked = 1;
		if ((rc = append_locked(a, w, &seal)) < 0)
			fail_waiters(a, w, w, rc);
		if (!seal && a->blen <= BATCH_CAP)
			continue;
		if ((rc = flush_lines(a)) < 0)
			fail_waiters(a, pending, w, rc);
		pending = w->next;
		if (seal && rc == 0) {
			a->sink->seal(a);
			locked = 0;
		}
	}
	if (locked) {
		if ((rc = flush_lines(a)) < 0)
			fail_waiters(a, pending, NULL, rc);
		a->sink->unlock(a);
	}
	pthread_mutex_unlock(&a->mu);
}

/*
 * Group commit: the event joins the queue; the thread at its head, when no
 * one is appending, takes the whole queue and appends it, then wakes each
 * waiter it served and the next head.  Each returns once its line is in
 * the sink (the page cache), as a lone append would; a waiter is woken
 * once, not at every batch.
 */
int atrest__audit_append(atrest__audit *a, atrest_event *ev)
{
	waiter me, *q, *next;
	lbuf t = {me.tail, 0, sizeof(me.tail), 0};
	atrest__saved_error mine;

	me.ev = ev;
	lb_str(&t, atrest_op_name(ev->op), 64);
	event_fields(&t, ev);
	me.tail_len = t.len;
	me.over = t.over;
	me.rc = me.done = 0;
	me.next = NULL;
	pthread_cond_init(&me.cv, NULL);
	pthread_mutex_lock(&a->qmu);
	*a->qtail = &me;
	a->qtail = &me.next;
	while (!me.done) {
		if (a->leading || a->qhead != &me) {
			pthread_cond_wait(&me.cv, &a->qmu);
			continue;
		}
		a->leading = 1;
		q = a->qhead;
		a->qhead = NULL;
		a->qtail = &a->qhead;
		pthread_mutex_unlock(&a->qmu);
		atrest__error_save(&mine); /* others' failures are theirs */
		append_queue(a, q);
		(void)atrest__error_restore(&mine);
		pthread_mutex_lock(&a->qmu);
		for (; q; q = next) { /* a waiter may go once done is set */
			next = q->next;
			q->done = 1;
			if (q != &me)
				pthread_cond_signal(&q->cv);
		}
		a->leading = 0;
		if (a->qhead)
			pthread_cond_signal(&a->qhead->cv);
	}
	pthread_mutex_unlock(&a->qmu);
	pthread_cond_destroy(&me.cv);
	if (me.rc < 0)
		return atrest__error(me.rc, "%s", me.why);
	return 0;
}

int atrest__audit_flush(atrest__audit *a)
{
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	if (a->key && (a->unsigned_lines || a->note[0] || a->lost)) {
		rc = lock_sink(a);
		if (rc == 0) {
			rc = write_note(a);
			if (rc == 0 && a->unsigned_lines)
				rc = write_head(a, 0);
			if (rc == 0)
				rc = flush_lines(a);
			a->blen = 0; /* a line that failed is not appended later */
			if (rc < 0)
				mark_restore(a);
			a->sink->unlock(a);
		}
	}
	pthread_mutex_unlock(&a->mu);
	/* Off the lock: appenders never wait for the disk. */
	if (a->sink->sync(a) < 0 && rc == 0)
		rc = ATREST_ERROR;
	return rc;
}

uint64_t atrest__audit_last_seq(atrest__audit *a)
{
	uint64_t s;

	pthread_mutex_lock(&a->mu);
	s = a->seq;
	pthread_mutex_unlock(&a->mu);
	return s;
}

int atrest__audit_new(atrest__audit **out, const atrest__audit_conf *c)
{
	atrest__audit *a = calloc(1, sizeof(*a));

	*out = NULL;
	ENSURE(a, ATREST_ERROR, "out of memory");
	a->batch = malloc(BATCH_ROOM);
	if (!a->batch) {
		free(a);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->qmu, NULL);
	a->qtail = &a->qhead;
	a->fd = -1;
	a->known = UINT64_MAX;
	a->rotate_bytes = c->rotate_bytes;
	a->head_lines = c->head_lines ? c->head_lines : 1000;
	a->sink = &FILE_SINK;
	if (strcmp(c->where, "syslog") == 0) {
		a->sink = &SYSLOG_SINK;
		openlog("atrest", LOG_PID, LOG_AUTHPRIV);
	} else if (snprintf(a->dir, sizeof(a->dir), "%s", c->where) >=
		(int)sizeof(a->dir) - 64) {
		atrest__audit_free(a);
		return atrest__error(ATREST_EINVAL, "audit directory path too long");
	}
	*out = a;
	return 0;
}

int atrest__audit_set_key(atrest__audit *a, const uint8_t seed[32], const uint8_t sid[16])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	uint8_t pub[32];

	if (!k)
		return atrest__error_ossl(ATREST_ERROR, "audit: Ed25519 key");
	GUARD(atrest__ed25519_public(pub, seed));
	pthread_mutex_lock(&a->mu);
	EVP_PKEY_free(a->key);
	a->key = k;
	memcpy(a->sid, sid, 16);
	atrest__audit_key_fp(a->fp, pub);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

void atrest__audit_free(atrest__audit *a)
{
	if (!a)
		return;
	(void)atrest__audit_flush(a);
	close_segment(a);
	EVP_PKEY_free(a->key);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->qmu);
	free(a->batch);
	free(a);
}

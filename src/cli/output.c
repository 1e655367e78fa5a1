/*
 * Output for the commands: hex and base64, JSON strings, times, complete
 * writes, the progress bar, and output files that appear only when whole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/*
 * A pipe holds 64 KiB by default: a stream of gigabytes then costs a
 * context switch per 64 KiB on each side.  Up to the system's limit for
 * unprivileged users (/proc/sys/fs/pipe-max-size, usually 1 MiB).
 */
void cli_grow_pipe(int fd)
{
	struct stat sb;
	long max = 1 << 20;
	FILE *f;

	if (fstat(fd, &sb) != 0 || !S_ISFIFO(sb.st_mode))
		return;
	f = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1 || max > (16 << 20))
			max = 1 << 20;
		fclose(f);
	}
	/* Refused over the user's pipe quota: a smaller one, or leave it. */
	for (long size = max; size >= (256 << 10); size /= 2)
		if (fcntl(fd, F_GETPIPE_SZ) >= size || fcntl(fd, F_SETPIPE_SZ, size) >= 0)
			return;
}

void *cli_iobuf_new(void)
{
	void *p = mmap(NULL, CLI_IO_BUF, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Wipe the pages the buffer really used (resident: a 4 KiB put touches one
 * page of the 256; wiping them all would first fault them in), then give
 * it back.
 */
void cli_iobuf_free(void *buf)
{
	unsigned char vec[CLI_IO_BUF / 4096];
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = CLI_IO_BUF / (pg > 0 ? (size_t)pg : 4096);

	if (!buf)
		return;
	if (pg == 4096 && mincore(buf, CLI_IO_BUF, vec) == 0) {
		for (size_t i = 0; i < n; i++)
			if (vec[i] & 1)
				explicit_bzero((uint8_t *)buf + i * 4096, 4096);
	} else {
		explicit_bzero(buf, CLI_IO_BUF);
	}
	munmap(buf, CLI_IO_BUF);
}

void cli_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void cli_base64(char *out, const uint8_t *in, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = tab[v & 63];
	}
	if (i < n) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* Bytes of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f; /* no UTF-16 surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f; /* nothing above U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Write the escape of an ASCII byte that JSON needs escaped; 1 if it did. */
static int json_escape(FILE *f, unsigned char c)
{
	if (c == '"' || c == '\\')
		fprintf(f, "\\%c", c);
	else if (c == '\n')
		fputs("\\n", f);
	else if (c == '\t')
		fputs("\\t", f);
	else if (c < 0x20 || c == 0x7f)
		fprintf(f, "\\u%04x", c);
	else
		return 0;
	return 1;
}

void cli_json_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	putc('"', f);
	while (*s) {
		if (json_escape(f, *s)) {
			s++;
		} else if ((n = utf8_len(s)) == 0) {
			fputs("\\ufffd", f); /* JSON text must be valid UTF-8 */
			s++;
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
	}
	putc('"', f);
}

void cli_iso_time(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "@%lld", (long long)t);
}

int cli_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cli_flush_stdout(void)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return CLI_OK;
	return cli_err_os(errno ? errno : EIO, "writing to standard output");
}

int cli_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, err = 0;

	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return ENAMETOOLONG;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		err = errno;
	close(fd);
	return err;
}

void cli_progress_start(struct cli_progress *p, const char *label, size_t total)
{
	p->on = isatty(STDERR_FILENO);
	p->label = label;
	p->total = total;
}

void cli_progress_show(struct cli_progress *p, size_t done)
{
	char bar[21];
	size_t fill, i;

	if (!p->on)
		return;
	fill = p->total ? done * 20 / p->total : 20;
	for (i = 0; i < 20; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[20] = '\0';
	fprintf(stderr, "\r%s [%s] %zu/%zu", p->label, bar, done, p->total);
	fflush(stderr);
}

void cli_progress_clear(struct cli_progress *p)
{
	if (p->on)
		fputs("\r\033[K", stderr);
}

static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_armed;

static void tmp_on_signal(int sig)
{
	if (tmp_armed)
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* "DIR/.BASE.atrest-XXXXXX" next to path, so that rename stays in one fs
 * (a mkstemp template; -1 when path has no file name or is too long). */
static int cli_tmp_name(char *tmp, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(base - path) : 0;
	int n;

	if (!*base)
		return -1;
	n = snprintf(tmp, cap, "%.*s.%s.atrest-XXXXXX", dirlen, path, base);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

int cli_is_special(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode);
}

static void cli_tmpfile_register(const char *path)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;
	size_t i;

	tmp_armed = 0;
	if (strlen(path) >= sizeof(tmp_path))
		return;
	strcpy(tmp_path, path);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tmp_on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	tmp_armed = 1;
}

static void cli_tmpfile_forget(void)
{
	tmp_armed = 0;
}

#define TMP_TAIL ".atrest-XXXXXX"
#define TMP_SUFFIX 6

/* The directory part of path ("." when none) into dir. */
static void dir_of(char *dir, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, cap, ".");
	else if (slash == path)
		snprintf(dir, cap, "/");
	else
		snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/*
 * A leftover of a killed run: a named temporary file for this output, a
 * regular file of ours that nobody holds locked (a live writer does).
 */
static void remove_if_stale(int dfd, const char *name)
{
	struct stat sb;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
		flock(fd, LOCK_EX | LOCK_NB) == 0)
		unlinkat(dfd, name, 0);
	close(fd);
}

/* Remove the leftovers "DIR/.BASE.atrest-??????" of killed runs. */
static void clean_leftovers(const char *path)
{
	char dir[PATH_MAX], tmpl[PATH_MAX];
	const char *base;
	struct dirent *e;
	size_t plen;
	DIR *d;

	if (cli_tmp_name(tmpl, sizeof(tmpl), path) < 0)
		return;
	base = strrchr(tmpl, '/') ? strrchr(tmpl, '/') + 1 : tmpl;
	plen = strlen(base) - TMP_SUFFIX;
	dir_of(dir, sizeof(dir), path);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		if (strlen(e->d_name) == plen + TMP_SUFFIX &&
			strncmp(e->d_name, base, plen) == 0)
			remove_if_stale(dirfd(d), e->d_name);
	closedir(d);
}

/* A named temporary file, locked while in use (fallback of the unnamed). */
static int open_named(struct cli_atomic *a)
{
	if (cli_tmp_name(a->tmp, sizeof(a->tmp), a->path) < 0)
		return EINVAL;
	a->fd = mkostemp(a->tmp, O_CLOEXEC); /* mode 0600 */
	if (a->fd < 0)
		return errno;
	(void)flock(a->fd, LOCK_EX);
	cli_tmpfile_register(a->tmp);
	return 0;
}

int cli_atomic_open(struct cli_atomic *a, const char *path)
{
	char dir[PATH_MAX];

	memset(a, 0, sizeof(*a));
	a->path = path;
	a->fd = -1;
	if (cli_tmp_name(a->tmp, sizeof(a->tmp), path) < 0)
		return EINVAL;
	a->tmp[0] = '\0';
	clean_leftovers(path);
	dir_of(dir, sizeof(dir), path);
	/* Unnamed: published by linking /proc/self/fd/N. */
	if (access("/proc/self/fd", X_OK) == 0)
		a->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	return a->fd >= 0 ? 0 : open_named(a);
}

/* A fresh name "DIR/.BASE.atrest-??????" into a->tmp. */
static int random_tmp_name(struct cli_atomic *a)
{
	static const char chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[TMP_SUFFIX];
	size_t n;

	if (cli_tmp_name(a->tmp, sizeof(a->tmp), a->path) < 0)
		return EINVAL;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return errno ? errno : EIO;
	n = strlen(a->tmp) - TMP_SUFFIX;
	for (size_t i = 0; i < TMP_SUFFIX; i++)
		a->tmp[n + i] = chars[r[i] % (sizeof(chars) - 1)];
	return 0;
}

/*
 * Give the unnamed file its name: linked straight to path when path does
 * not exist; else linked under a temporary name and renamed over path (a
 * kill between the two leaves that name, which the next run removes).
 */
static int publish_unnamed(struct cli_atomic *a)
{
	char proc[64];
	int err;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	do {
		if ((err = random_tmp_name(a)) != 0)
			return err;
		err = linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) < 0
			? errno
			: 0;
	} while (err == EEXIST);
	if (err)
		return err;
	cli_tmpfile_register(a->tmp);
	return rename(a->tmp, a->path) < 0 ? errno : 0;
}

int cli_atomic_commit(struct cli_atomic *a, int sync)
{
	int named = a->tmp[0] != '\0', err = 0;

	if (sync && fsync(a->fd) < 0)
		err = errno;
	if (!err)
		err = named ? (rename(a->tmp, a->path) < 0 ? errno : 0)
			    : publish_unnamed(a);
	if (close(a->fd) < 0 && !err)
		err = errno;
	a->fd = -1;
	if (err && a->tmp[0])
		unlink(a->tmp);
	cli_tmpfile_forget();
	if (!err)
		err = cli_fsync_parent(a->path);
	return err;
}

void cli_atomic_abort(struct cli_atomic *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	if (a->tmp[0])
		unlink(a->tmp);
	cli_tmpfile_forget();
}

/*
 * Keyless inspection of an object (atrest inspect), as a file or through a
 * store's backend: header facts and the layout its size implies.  Nothing
 * is authenticated here; the parser is the same hardened one the reader
 * uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/inspect.h"
#include "format.h"
#include "keyring.h"
#include "names.h"
#include "store_int.h"

/* Where the bytes come from: a file, or a backend's reader. */
typedef struct source {
	int fd;
	atrest_backend_reader *br;
} source;

static int read_at(const source *src, void *buf, size_t len, uint64_t off, size_t *got)
{
	ssize_t n;

	if (src->br)
		return atrest__br_pread(src->br, buf, len, off, got);
	n = pread(src->fd, buf, len, (off_t)off);
	ENSURE(n >= 0, ATREST_ERROR, "cannot read: %s", strerror(errno));
	*got = (size_t)n;
	return 0;
}

static int fill_info(
	atrest_header_info *out, const atrest__hdr *h, const source *src, uint64_t stored)
{
	size_t seg_ct = atrest__cipher_ctlen(h->cipher, h->segment_size), last;
	uint64_t data_off = (uint64_t)h->len + h->meta_len, nseg;
	int pad = 0;

	out->version = ATREST_HEADER_INFO_VERSION;
	out->format_version = h->version;
	out->form = h->form;
	out->cipher = h->cipher;
	out->segment_size = h->segment_size;
	out->data_key_id = h->dek_id;
	if (h->form != ATREST__FORM_FILE)
		atrest__hex(out->store_id, h->store_id, ATREST__STORE_ID_LEN);
	strcpy(out->tenant, h->tenant);
	strcpy(out->name, h->name);
	out->header_size = h->len;
	out->meta_size = h->meta_len;
	out->stored_size = stored;
	GUARD(atrest__layout(&nseg, &last, h->cipher, h->segment_size, data_off, stored));
	if (h->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
		uint8_t b;
		size_t got = 0;
		GUARD(read_at(src, &b, 1,
			atrest__pad_byte_off(data_off, seg_ct, nseg, last), &got));
		ENSURE(got == 1, ATREST_EINTEGRITY, "object truncated");
		pad = b;
	}
	out->segments = nseg;
	return atrest__plain_size(
		&out->plaintext_size, h->cipher, h->segment_size, nseg, last, pad);
}

static int inspect_source(atrest_header_info *out, const source *src, uint64_t stored)
{
	uint8_t head[ATREST__HDR_READ];
	atrest__hdr h;
	size_t got = 0;

	GUARD(read_at(src, head, sizeof(head), 0, &got));
	GUARD(atrest__hdr_parse(&h, head, got));
	return fill_info(out, &h, src, stored);
}

static int info_init(atrest_header_info *out)
{
	GUARD(atrest__check_version(
		out->version, ATREST_HEADER_INFO_VERSION, "atrest_header_info"));
	memset(out, 0, sizeof(*out));
	out->version = ATREST_HEADER_INFO_VERSION;
	return 0;
}

int atrest_inspect_file(atrest_header_info *out, const char *path)
{
	source src = {-1, NULL};
	struct stat sb;
	int rc;

	GUARD(info_init(out));
	/* O_NONBLOCK: a FIFO cannot hang the open (it is refused below). */
	src.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (src.fd < 0)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "cannot open %s", path);
	if (fstat(src.fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(src.fd);
		return atrest__error(ATREST_EINVAL, "%s is not a regular file", path);
	}
	rc = inspect_source(out, &src, (uint64_t)sb.st_size);
	close(src.fd);
	return rc;
}

int atrest_inspect_object(atrest_header_info *out, const char *location,
	const char *tenant, const char *name)
{
	source src = {-1, NULL};
	atrest_backend *b = NULL;
	char key[ATREST__STORE_KEY_MAX];
	int rc;

	GUARD(info_init(out));
	GUARD(atrest_name_check(name));
	if (tenant && *tenant)
		GUARD(atrest__tenant_check(tenant));
	snprintf(key, sizeof(key), "%s%s%s%s",
		tenant && *tenant ? ATREST__TENANTS_DIR : "",
		tenant && *tenant ? tenant : "", tenant && *tenant ? "/objects/" : "",
		name);
	GUARD(atrest__backend_from_location(
		&b, location && *location ? location : "./atrest-store", 0));
	GUARD_OUT(atrest__backend_check(b));
	GUARD_OUT(atrest__b_prepare(b, 0));
	GUARD_OUT(atrest__b_open_read(b, &src.br, key));
	rc = inspect_source(out, &src, src.br->size);
out:
	atrest__br_close(src.br);
	atrest__b_free(b);
	return rc;
}

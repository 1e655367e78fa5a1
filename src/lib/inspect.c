/*
 * Keyless inspection of an object file (atrest inspect): header facts and
 * the layout its size implies.  Nothing is authenticated here; the parser is
 * the same hardened one the reader uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/inspect.h"
#include "format.h"
#include "keyring.h"

static int fill_info(
	atrest_header_info *out, const atrest__hdr *h, int fd, uint64_t stored)
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
	if (h->form == ATREST__FORM_OBJECT)
		atrest__hex(out->store_id, h->store_id, ATREST__STORE_ID_LEN);
	strcpy(out->tenant, h->tenant);
	strcpy(out->name, h->name);
	out->header_size = h->len;
	out->meta_size = h->meta_len;
	out->stored_size = stored;
	GUARD(atrest__layout(&nseg, &last, h->cipher, h->segment_size, data_off, stored));
	if (h->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
		uint8_t b;
		ENSURE(pread(fd, &b, 1,
			       (off_t)atrest__pad_byte_off(
				       data_off, seg_ct, nseg, last)) == 1,
			ATREST_EINTEGRITY, "object truncated");
		pad = b;
	}
	out->segments = nseg;
	return atrest__plain_size(
		&out->plaintext_size, h->cipher, h->segment_size, nseg, last, pad);
}

int atrest_inspect_file(atrest_header_info *out, const char *path)
{
	uint8_t head[ATREST__HDR_READ];
	struct stat sb;
	atrest__hdr h;
	ssize_t got;
	int fd, rc;

	GUARD(atrest__check_version(
		out->version, ATREST_HEADER_INFO_VERSION, "atrest_header_info"));
	memset(out, 0, sizeof(*out));
	out->version = ATREST_HEADER_INFO_VERSION;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "cannot open %s", path);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return atrest__error(ATREST_EINVAL, "%s is not a regular file", path);
	}
	got = pread(fd, head, sizeof(head), 0);
	rc = got < 0 ? atrest__error_os(ATREST_ERROR, errno, "cannot read %s", path)
		     : atrest__hdr_parse(&h, head, (size_t)got);
	if (rc == 0)
		rc = fill_info(out, &h, fd, (uint64_t)sb.st_size);
	close(fd);
	return rc;
}

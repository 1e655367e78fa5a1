/*
 * Multipart uploads (include/atrest/upload.h): parts sealed as they arrive
 * under the store's own area, published by a completion that costs work
 * per part.  This first version only links; the implementation follows.
 */
#include "atrest/upload.h"
#include "common.h"

#define NOT_BUILT() atrest__error(ATREST_ERROR, "multipart uploads: not built yet")

int atrest_upload_create(char **upload_id, atrest_store *st, const char *name,
	const atrest_meta *meta)
{
	(void)st, (void)name, (void)meta;
	*upload_id = NULL;
	return NOT_BUILT();
}

int atrest_upload_part_open(atrest_writer **out, atrest_store *st,
	const char *name, const char *upload_id, uint32_t part_number,
	const atrest_meta *meta)
{
	(void)st, (void)name, (void)upload_id, (void)part_number, (void)meta;
	*out = NULL;
	return NOT_BUILT();
}

int atrest_upload_parts(atrest_store *st, const char *name,
	const char *upload_id, atrest_upload_part_cb cb, void *payload)
{
	(void)st, (void)name, (void)upload_id, (void)cb, (void)payload;
	return NOT_BUILT();
}

int atrest_upload_complete(atrest_store *st, const char *name,
	const char *upload_id, const uint32_t *parts, size_t count,
	const atrest_meta *meta, const atrest_write_options *opts)
{
	(void)st, (void)name, (void)upload_id, (void)parts, (void)count;
	(void)meta, (void)opts;
	return NOT_BUILT();
}

int atrest_upload_abort(atrest_store *st, const char *name, const char *upload_id)
{
	(void)st, (void)name, (void)upload_id;
	return NOT_BUILT();
}

int atrest_upload_list(atrest_store *st, const char *prefix,
	atrest_upload_list_cb cb, void *payload)
{
	(void)st, (void)prefix, (void)cb, (void)payload;
	return NOT_BUILT();
}

int atrest_upload_cleanup(size_t *aborted, atrest_store *st, int64_t age_seconds)
{
	(void)st, (void)age_seconds;
	*aborted = 0;
	return NOT_BUILT();
}

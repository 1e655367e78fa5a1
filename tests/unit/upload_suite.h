/*
 * One multipart-upload scenario for any backend (test_upload.c runs it on
 * the in-memory backend, test_s3.c on the S3 test server): parts out of
 * order, create-only completion and its race loser, ranges, a part
 * replaced in the backend named, delete removing every part.
 */
#ifndef ATREST_TEST_UPLOAD_SUITE_H
#define ATREST_TEST_UPLOAD_SUITE_H

#include "atrest/atrest.h"
#include "atrest/sys/backend.h"

/* st is a store on the location that raw (a second handle) reaches. */
void upload_suite_run(atrest_store *st, atrest_backend *raw);

#endif

/*
 * Shared by the files of the REST API: the handlers and the helpers they
 * all use (the tenant's store, JSON responses).
 */
#ifndef ATREST_SERVER_REST_INT_H
#define ATREST_SERVER_REST_INT_H

#include <jansson.h>

#include "rest.h"

/* The store of the request's tenant: 0, or -1 after answering the error. */
int rest_store(atrest_store **out, struct http_req *req);
/* Answer a library failure (logged with the library's message). */
void rest_lib_error(struct http_req *req, int code, const char *what);
/* Answer with j (taken over) as JSON. */
void rest_json(struct http_req *req, unsigned status, json_t *j);
/* t as "YYYY-MM-DDTHH:MM:SSZ". */
void rest_iso_time(char out[32], int64_t t);

void rest_object_get(struct http_req *req);
void rest_object_put(struct http_req *req);
void rest_object_delete(struct http_req *req);
void rest_list(struct http_req *req);

#endif

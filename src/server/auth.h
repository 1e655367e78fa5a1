/*
 * API-key authentication of the REST API: the key file (reloaded when it
 * changes and on SIGHUP) and the single admin key of --api-key or
 * ATREST_API_KEY, checked in constant time.
 */
#ifndef ATREST_SERVER_AUTH_H
#define ATREST_SERVER_AUTH_H

#include "http.h"

struct srv_auth;

/* keys_file may be missing (no keys yet); env_key may be NULL. 0 or -1
 * with the reason printed. */
int srv_auth_new(struct srv_auth **out, const char *keys_file, const char *env_key);
/* Reload the file when it changed (or always, with force).  1 reloaded,
 * 0 unchanged, -1 failed (the keys in use stay). */
int srv_auth_reload(struct srv_auth *a, int force);
/* The principal a presented key stands for: 0, or -1 when it is unknown. */
int srv_auth_check(struct srv_auth *a, const char *token, struct http_principal *out);
/*
 * The principal and secret of S3 access key id (an entry with a sealed
 * secret), opened with rec (the caller serializes its use).  0; -1 when
 * the id is unknown; -2 when its secret cannot be opened (wrong master
 * key, damaged file).  The caller wipes secret.
 */
int srv_auth_s3(struct srv_auth *a, const char *id, atrest_recorder *rec,
	struct http_principal *out, char *secret);
/* Keys usable now (file entries, plus one for an admin key). */
size_t srv_auth_count(struct srv_auth *a);
void srv_auth_free(struct srv_auth *a);

#endif

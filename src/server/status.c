/*
 * What a library error becomes on the wire: the HTTP status, the error
 * code of the JSON body, and a message that is safe to show a client.
 */
#include "body.h"
#include "http.h"

struct http_status http_status_of(int code)
{
	switch (code) {
	case ATREST_EINVAL:
		return (struct http_status){400, "bad_request"};
	case ATREST_ENOTFOUND:
		return (struct http_status){404, "not_found"};
	case ATREST_EINTEGRITY:
		return (struct http_status){422, "integrity_failure"};
	case ATREST_EKEY:
		return (struct http_status){500, "key_error"};
	case ATREST_EEXISTS:
		return (struct http_status){409, "conflict"};
	case ATREST_EUNAVAILABLE:
		return (struct http_status){503, "unavailable"};
	case ATREST_ENOSPC:
		return (struct http_status){507, "insufficient_storage"};
	case ATREST_ETOOBIG:
		return (struct http_status){413, "too_large"};
	default:
		return (struct http_status){500, "internal_error"};
	}
}

const char *http_public_message(int code)
{
	switch (code) {
	case ATREST_ENOTFOUND:
		return "no such object";
	case ATREST_EINTEGRITY:
		return "the object failed authentication: it is damaged or was modified";
	case ATREST_EKEY:
		return "the object's key is not available (destroyed, or not this master key)";
	case ATREST_EUNAVAILABLE:
		return "the key provider cannot be reached; retry later";
	case ATREST_ENOSPC:
		return "the store is full";
	case ATREST_ETOOBIG:
		return "over the size limit";
	case ATREST_EEXISTS:
		return "already exists";
	default:
		return "internal error";
	}
}

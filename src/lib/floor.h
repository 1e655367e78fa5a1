/*
 * Rollback detection (floor.c): the newest keyring generation seen of each
 * keyring id, remembered outside the store.
 */
#ifndef ATREST_FLOOR_H
#define ATREST_FLOOR_H

#include <stdint.h>

#include "common.h"

/*
 * The directory for the floors: opt (atrest_store_options.state_dir) when
 * set, "" for none (*out NULL), else $XDG_STATE_HOME/atrest or
 * ~/.local/state/atrest.  *out is malloc'd, or NULL when there is none.
 */
int atrest__floor_dir(char **out, const char *opt);

/*
 * A keyring of id at generation was read and authenticated: remember it,
 * or when this host has seen a newer one, return 1 (the copy may have been
 * read just before another process replaced it: read it again) or, with
 * final, fail with ATREST_EINTEGRITY naming location.  dir NULL, or a
 * state dir that cannot be used, checks nothing.
 */
int atrest__floor_check(const char *dir, const uint8_t id[16], uint64_t generation,
	const char *location, int final);

#endif

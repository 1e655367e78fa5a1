/*
 * libatrest: encrypted, authenticated, crash-safe storage of checkpoints
 * and state, with keys the operator controls.  Include this one header.
 */
#ifndef ATREST_H
#define ATREST_H

#define ATREST_VERSION "0.1.0"

#include "errors.h"
#include "file.h"
#include "inspect.h"
#include "keycheck.h"
#include "keys.h"
#include "lifecycle.h"
#include "observe.h"
#include "record.h"
#include "snapshot.h"
#include "store.h"
#include "tenant.h"
#include "upload.h"

#endif

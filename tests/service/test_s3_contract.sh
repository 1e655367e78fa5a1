#!/bin/sh
# The store-backend contract suite (tests/unit/backend_suite.c) against the
# S3 backend on a real Ceph RGW: whole-object puts invisible until commit,
# ranged reads, sorted listings around .atrest/, conditional puts exact
# under contention between handles (RGW's If-None-Match and If-Match),
# batch removal and cleanup.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
"$S3_TOOL" suite "s3://$BUCKET/suite" || fail "the contract suite failed on S3"
ok "the backend contract suite passes on S3 (RGW)"

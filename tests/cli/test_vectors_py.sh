#!/bin/sh
# The independent Python reader/writer (written from docs/FORMAT.md alone)
# must reproduce and verify every object test vector.
set -eu
/usr/bin/python3 "$ATREST_SRC/tests/vectors/verify_vectors.py"
/usr/bin/python3 "$ATREST_SRC/tests/vectors/snapshot_vectors.py"

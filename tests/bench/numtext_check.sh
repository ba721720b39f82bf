#!/usr/bin/env bash
# Compares the working tree's float printer with BASE_REV's on every float
# whose binary exponent is from -32 to 33 (both signs; the printer's exact
# integer path and its edges), one process per sign. Exit 0: same text.
#   tests/bench/numtext_check.sh [BASE_REV]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REV=${1:-HEAD}
TMP=$(mktemp -d /tmp/aigw-numtext.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
git -C "$ROOT" show "$REV:server/core/numtext.c" >"$TMP/old_numtext.c"
CC=${CC:-cc}
$CC -O2 -I"$ROOT/server" -c "$TMP/old_numtext.c" -o "$TMP/old.o" \
  -Dgw_numtext_float=old_numtext_float -Dgw_numtext_double=old_numtext_double \
  -Dgw_numtext_floats=old_numtext_floats -Dgw_numtext_u64=old_numtext_u64 \
  -Dgw_numtext_i64=old_numtext_i64 -Dgw_numtext_hex=old_numtext_hex
$CC -O2 -Wall -Wextra -I"$ROOT/server" "$HERE/numtext_check.c" "$TMP/old.o" \
  "$ROOT/server/core/numtext.c" -o "$TMP/check" -lm
# biased exponents 95..159: 0x2f800000..0x50000000, and the same negative
"$TMP/check" 0x2f800000 0x50000000 >"$TMP/pos" & pos=$!
rc=0
"$TMP/check" 0xaf800000 0xd0000000 || rc=1
wait $pos || rc=1
cat "$TMP/pos"
exit $rc

#!/usr/bin/env bash
# build.sh: configures and builds smi-metrics out of tree.
#   scripts/build.sh BUILD_DIR [configure options...]
# Runs autoreconf when configure is missing or older than configure.ac or
# Makefile.am; re-runs configure when the options changed.
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
build=$1
shift
if [ ! -x "$repo/configure" ] || [ "$repo/configure.ac" -nt "$repo/configure" ] ||
    [ "$repo/Makefile.am" -nt "$repo/Makefile.in" ]; then
    (cd "$repo" && autoreconf -fi >/dev/null 2>&1) || (cd "$repo" && autoreconf -fi)
fi
mkdir -p "$build"
cd "$build"
want="$*"
if [ ! -f Makefile ] || [ "$(cat .configure-options 2>/dev/null)" != "$want" ]; then
    "$repo/configure" --quiet "$@"
    printf '%s' "$want" >.configure-options
fi
make -j"$(nproc)" --no-print-directory

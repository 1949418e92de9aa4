#!/usr/bin/env bash
# stack-run.sh: starts the real stack (simulator, Prometheus, smi-metrics from
# BUILD_DIR), waits for data, runs the named Python test modules against it,
# and stops everything.  With --valgrind the server runs under valgrind
# memcheck and any memcheck error or leak fails the run: valgrind also sees
# the uninstrumented libraries (libmicrohttpd, GnuTLS, libcurl, jansson) that
# the ASan+UBSan build does not.  Use a build without sanitizers for it.
#   tests/integration/stack-run.sh [--valgrind] BUILD_DIR MODULE...
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
valgrind=no
if [ "${1:-}" = --valgrind ]; then
    valgrind=yes
    shift
fi
build=$(cd -- "${1:?usage: stack-run.sh [--valgrind] BUILD_DIR MODULE...}" && pwd)
shift
[ $# -gt 0 ] || { echo "stack-run: name at least one test module" >&2; exit 2; }
export PATH="$repo/.tools/bin:$PATH"
state=$(mktemp -d /tmp/smi-run.XXXXXX)
vglog=$state/valgrind.log
# shellcheck source=scripts/lib-stack.sh
. "$repo/scripts/lib-stack.sh"
cleanup() {
    local rc=$?
    stack_stop
    if [ $valgrind = yes ]; then
        grep -E "ERROR SUMMARY|(definitely|indirectly|possibly) lost" "$vglog" || true
        if ! grep -q "ERROR SUMMARY: 0 errors" "$vglog" 2>/dev/null; then
            echo "stack-run: valgrind memcheck found errors or leaks:" >&2
            head -n 80 "$vglog" >&2 || true
            rc=1
        fi
    fi
    rm -rf "$state"
    exit $rc
}
trap cleanup EXIT

export SCRAPE_INTERVAL=2
if [ $valgrind = yes ]; then
    # Leak checking at exit takes valgrind a while after SIGTERM.
    export STACK_STOP_WAIT=60
    export SMI_WRAPPER="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --log-file=$vglog"
fi
stack_start "$build" "$state"
"$build/sim/smi-sim" --describe >"$state/describe.json"
export SIM_DESCRIBE=$state/describe.json SMI_BUILD=$build SMI_REPO=$repo
stack_wait_data 40
cd "$here"
python3 -m unittest -v "$@"

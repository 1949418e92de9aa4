#!/usr/bin/env bash
# test.sh: README command 2, and what CI runs.  Installs every dependency,
# then: cppcheck; a -Werror build with the unit and ABI suites (make check)
# and a DESTDIR install check; the same suites under ASan+UBSan; the
# integration suite (real Prometheus, simulator, kubectl) against the
# sanitizer build; the server under valgrind; a 1000-connection TLS soak;
# the helm chart tests; a short libFuzzer pass over every harness; finally
# the README demo in --once mode.
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
passed=0
failed=0
failures=()

step() {
    local name=$1
    shift
    echo
    echo "=== $name"
    local start=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: passed ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - start)) s)"
    fi
}

show_logs() {
    local dir=$1 f
    for f in "$dir"/tests/unit/*.log "$dir"/test-suite.log; do
        [ -f "$f" ] && grep -q -E 'FAIL|ERROR|Failures: [1-9]|Errors: [1-9]' "$f" && { echo "--- $f"; tail -n 40 "$f"; }
    done
    return 0
}

make_check() {
    local dir=$1
    if ! make -C "$dir" -j"$(nproc)" --no-print-directory check; then
        show_logs "$dir"
        return 1
    fi
}

install_check() {
    local dest
    dest=$(mktemp -d)
    make -C build --no-print-directory install DESTDIR="$dest" >/dev/null
    local prefix=/usr/local f
    for f in bin/smi-metrics lib/smi-metrics/adapters/linkerd.so lib/smi-metrics/adapters/istio.so \
        include/smi-metrics/adapter.h share/smi-metrics/manifests/istio/mixer-smi-metrics.yaml \
        lib/pkgconfig/smi-metrics-adapter.pc; do
        if [ ! -e "$dest$prefix/$f" ]; then
            echo "install: $prefix/$f missing under DESTDIR" >&2
            return 1
        fi
    done
    if ls "$dest$prefix/lib/smi-metrics/adapters/"*.la >/dev/null 2>&1; then
        echo "install: libtool .la files left in the adapters directory" >&2
        return 1
    fi
    make -C build --no-print-directory installcheck DESTDIR="$dest" >/dev/null
    "$dest$prefix/bin/smi-metrics" --version
    rm -rf "$dest"
}

echo "=== dependencies"
scripts/install-deps.sh
export PATH="$repo/.tools/bin:$PATH"

static_analysis() {
    cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
        --inline-suppr --std=c11 -I include -I core core adapters sim tests/abi bench
}

# Every C file as .clang-format lays it out.
formatting() {
    local f bad=0
    while IFS= read -r f; do
        clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=1; }
    done < <(git ls-files '*.c' '*.h')
    [ $bad -eq 0 ] || echo "run: clang-format -i \$(git ls-files '*.c' '*.h')"
    return $bad
}

step "static analysis (cppcheck)" static_analysis
step "formatting (clang-format)" formatting
step "build (-Werror)" scripts/build.sh build --enable-werror
step "unit and ABI suites" make_check build
step "install with DESTDIR" install_check
step "helm chart and packaging (real helm)" tests/helm/run.sh "$repo/build"
step "build (-Werror, ASan+UBSan)" scripts/build.sh build-asan --enable-werror --enable-sanitizers
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "unit and ABI suites under ASan+UBSan" make_check build-asan
step "integration suite (ASan+UBSan server)" tests/integration/run.sh "$repo/build-asan"
step "valgrind memcheck of the server (no errors, no leaks)" \
    tests/integration/stack-run.sh --valgrind "$repo/build" test_linkerd_api test_hostile
step "soak: 1000 TLS connections for 60 s" \
    env SMI_SOAK_SECONDS=60 SMI_SOAK_CONNECTIONS=1000 tests/integration/stack-run.sh "$repo/build" test_soak
fuzz_pass() {
    CC=clang scripts/build.sh build-fuzz --enable-fuzzing &&
        make -C build-fuzz --no-print-directory fuzz FUZZ_SECONDS="${SMI_FUZZ_SECONDS:-10}"
}
step "fuzzing: every harness ${SMI_FUZZ_SECONDS:-10} s with libFuzzer + ASan + UBSan" fuzz_pass
step "README demo (--once)" scripts/demo.sh --once

echo
if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

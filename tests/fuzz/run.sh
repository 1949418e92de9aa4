#!/bin/sh
# run.sh: what `make fuzz` runs.  Each libFuzzer harness gets FUZZ_SECONDS
# (default 60) on a fresh copy of its checked-in corpus plus the saved
# reproducers of crashes/ (so a fixed crash stays fixed), with its
# dictionary; any crash, leak, timeout or broken invariant fails the run.
#
# usage: run.sh SRCDIR BUILDDIR NAME...
#   SRCDIR    tests/fuzz of the source tree (corpus/, dict/, crashes/)
#   BUILDDIR  tests/fuzz of the build tree (fuzz_NAME binaries; work/ is made here)
set -u

src=$1
build=$2
shift 2
seconds=${FUZZ_SECONDS:-60}
# Sanitizer reports with stacks, and the first UBSan report is fatal.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

failed=""
for name in "$@"; do
	work=$build/work/$name
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts" || exit 2
	cp "$src/corpus/$name/"* "$work/corpus/" 2>/dev/null
	for reproducer in "$src/crashes/$name-"*; do
		[ -f "$reproducer" ] && cp "$reproducer" "$work/corpus/"
	done
	dict=""
	[ -f "$src/dict/$name.dict" ] && dict="-dict=$src/dict/$name.dict"
	printf 'fuzz_%s: %ss on %s inputs ... ' "$name" "$seconds" "$(ls "$work/corpus" | wc -l)"
	# $dict is one word or nothing: left unquoted on purpose.
	if "$build/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/" $dict \
		"$work/corpus" >"$work/log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
		echo "ok, ${runs:-?} runs"
	else
		echo "FAILED"
		tail -n 60 "$work/log"
		echo "fuzz_$name: full log $work/log; reproducer in $work/artifacts/:"
		ls -l "$work/artifacts/"
		failed="$failed $name"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed" >&2
	exit 1
fi
echo "fuzz: all harnesses ran ${seconds}s without a finding"

#!/usr/bin/env bash
# run.sh: the integration suite.  Starts the real stack (simulator, Prometheus,
# smi-metrics) from BUILD_DIR, waits for enough data, runs the Python tests
# against it with the real kubectl, and stops everything.
#   tests/integration/run.sh BUILD_DIR
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
build=$(cd -- "${1:?usage: run.sh BUILD_DIR}" && pwd)
export PATH="$repo/.tools/bin:$PATH"
command -v kubectl >/dev/null || { echo "integration: kubectl not found (run scripts/install-deps.sh)" >&2; exit 1; }
command -v victoria-metrics >/dev/null ||
    { echo "integration: victoria-metrics not found (run scripts/install-deps.sh)" >&2; exit 1; }

# The ABI fixtures are check-only targets: build them without running tests.
make -C "$build" --no-print-directory -j"$(nproc)" check TESTS= >/dev/null

state=$(mktemp -d /tmp/smi-it.XXXXXX)
# shellcheck source=scripts/lib-stack.sh
. "$repo/scripts/lib-stack.sh"
cleanup() {
    local rc=$?
    stack_stop
    if [ $rc -ne 0 ]; then
        echo "--- smi-metrics log (tail)"; tail -n 30 "$state/smi-metrics.log" 2>/dev/null || true
    fi
    # The servers exit at SIGTERM: LeakSanitizer reports land in their logs.
    if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$state"/smi-metrics*.log 2>/dev/null; then
        echo "integration: sanitizer report in the server log:" >&2
        grep -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$state"/smi-metrics*.log >&2
        rc=1
    fi
    rm -rf "$state"
    exit $rc
}
trap cleanup EXIT

export SCRAPE_INTERVAL=2
stack_start "$build" "$state"
# VictoriaMetrics scrapes the same simulator alongside Prometheus, and a
# second smi-metrics answers from it (with POST queries, as a backend behind
# a query length limit needs).
stack_start_victoriametrics
stack_start_smi_for "$build" vm "  url: \"$VM_URL\"
  timeout: 10s
  method: post"
"$build/sim/smi-sim" --describe >"$state/describe.json"
export SIM_DESCRIBE=$state/describe.json SMI_BUILD=$build SMI_REPO=$repo
echo "integration: waiting for 40 s of simulated traffic in Prometheus and VictoriaMetrics"
stack_wait_data 40
stack_wait_data 40 "$VM_URL"
python3 -m unittest discover -s "$here" -p 'test_*.py' -v
echo "integration: the Linkerd API scenarios again, answered from VictoriaMetrics"
SMI_URL=$VM_SMI_URL SMI_ADMIN_URL=$VM_SMI_ADMIN_URL KUBECONFIG=$VM_KUBECONFIG SMI_LOG=$VM_SMI_LOG \
    PROM_URL=$VM_URL python3 -m unittest discover -s "$here" -p 'test_linkerd_api.py' -v

# Then one stack per Istio data plane, each running only the Istio suite
# (test_istio_*.py skip themselves on other stacks; the suites above assume
# Linkerd).  The three stacks run side by side, each in a subshell with its
# own ports, state and 40 s of data; their output is printed in order.
istio_suite() {
    local mesh=$1 dir=$state/$1
    STACK_PIDS=()
    trap 'stack_stop' EXIT
    mkdir -p "$dir"
    echo "integration: stack $mesh (adapter istio)"
    SMI_MESH=$mesh stack_start "$build" "$dir"
    "$build/sim/smi-sim" --describe --mesh "$mesh" >"$dir/describe.json"
    stack_wait_data 40
    if ! SMI_MESH=$mesh SIM_DESCRIBE=$dir/describe.json \
        python3 -m unittest discover -s "$here" -p 'test_istio_*.py' -v; then
        echo "--- smi-metrics log ($mesh, tail)"; tail -n 30 "$dir/smi-metrics.log"
        return 1
    fi
    stack_stop
    if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/smi-metrics.log"; then
        echo "integration: sanitizer report in the $mesh server log:"
        grep -A 20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/smi-metrics.log"
        return 1
    fi
}
stack_stop
istio_meshes=(istio istio-ambient istio-mixer)
istio_pids=()
for mesh in "${istio_meshes[@]}"; do
    (istio_suite "$mesh") >"$state/$mesh.out" 2>&1 &
    istio_pids+=($!)
    sleep 1 # distinct free ports
done
istio_rc=0
for i in "${!istio_meshes[@]}"; do
    wait "${istio_pids[$i]}" || istio_rc=1
    cat "$state/${istio_meshes[$i]}.out"
done
[ "$istio_rc" -eq 0 ]

# shellcheck shell=bash
# lib-stack.sh: starts and stops the local stack the demo and the integration
# tests stand on: the traffic simulator, a real Prometheus scraping it, and
# smi-metrics with TLS certificates made by openssl.  Source it, then call
# stack_start BUILD_DIR STATE_DIR; stack_stop undoes it.
#
# Exports after stack_start: SIM_URL PROM_URL SMI_URL SMI_ADMIN_URL KUBECONFIG
# CERT_DIR SMI_CONFIG SMI_LOG PROM_QUERY_LOG STACK_STATE SCRAPE_INTERVAL
#
# SMI_MESH picks the simulated mesh (smi-sim --mesh: linkerd, istio,
# istio-ambient, istio-mixer; default linkerd).  The adapter is the part
# before the first '-' unless SMI_ADAPTER says otherwise, and its options
# (a YAML flow mapping) come from SMI_ADAPTER_OPTIONS, by default what the
# mesh needs ({mode: mixer} for istio-mixer, {} otherwise).

STACK_REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
STACK_PIDS=()

stack_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers 2xx (curl options may follow), at most $2 seconds.
stack_wait_http() {
    local url=$1 timeout=$2 i
    shift 2
    for ((i = 0; i < timeout * 5; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "stack: $url did not come up within ${timeout}s" >&2
    return 1
}

stack_start() {
    local build=$1 state=$2
    local mesh=${SMI_MESH:-linkerd} adapter options
    adapter=${SMI_ADAPTER:-${mesh%%-*}}
    case $mesh in
    istio-mixer) options=${SMI_ADAPTER_OPTIONS:-'{mode: mixer}'} ;;
    *) options=${SMI_ADAPTER_OPTIONS:-'{}'} ;;
    esac
    STACK_STATE=$state
    SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-2}
    mkdir -p "$state"
    CERT_DIR=$state/certs
    "$STACK_REPO/scripts/gen-certs.sh" "$CERT_DIR" >/dev/null

    local sim_port prom_port api_port admin_port
    sim_port=$(stack_free_port)
    prom_port=$(stack_free_port)
    api_port=$(stack_free_port)
    admin_port=$(stack_free_port)
    SIM_URL=http://127.0.0.1:$sim_port
    PROM_URL=http://127.0.0.1:$prom_port
    SMI_URL=https://127.0.0.1:$api_port
    SMI_ADMIN_URL=http://127.0.0.1:$admin_port

    "$build/sim/smi-sim" --listen "127.0.0.1:$sim_port" --mesh "$mesh" \
        >"$state/sim.log" 2>&1 &
    STACK_PIDS+=($!)
    stack_wait_http "$SIM_URL/metrics" 10

    sed -e "s/@SCRAPE_INTERVAL@/${SCRAPE_INTERVAL}s/g" -e "s/@SIM_TARGET@/127.0.0.1:$sim_port/g" \
        "$STACK_REPO/sim/prometheus.yml.in" >"$state/prometheus.yml"
    rm -rf "$state/tsdb"
    # Prometheus alone also logs every query it runs (PROM_QUERY_LOG): the
    # hostile-input tests read back exactly what smi-metrics sent.
    PROM_QUERY_LOG=$state/prometheus-queries.log
    sed -e "s|^global:|global:\n  query_log_file: $PROM_QUERY_LOG|" "$state/prometheus.yml" \
        >"$state/prometheus-server.yml"
    prometheus --config.file="$state/prometheus-server.yml" --storage.tsdb.path="$state/tsdb" \
        --web.listen-address="127.0.0.1:$prom_port" >"$state/prometheus.log" 2>&1 &
    STACK_PIDS+=($!)
    stack_wait_http "$PROM_URL/-/ready" 30

    SMI_CONFIG=$state/smi-metrics.yaml
    cat >"$SMI_CONFIG" <<YAML
# Written by scripts/lib-stack.sh for the local demo and tests.
server:
  listen: "127.0.0.1:$api_port"
  tlsCertFile: "$CERT_DIR/server.crt"
  tlsKeyFile: "$CERT_DIR/server.key"
auth:
  requestheaderClientCAFile: "$CERT_DIR/front-proxy-ca.crt"
  requestheaderAllowedNames: [front-proxy-client]
admin:
  listen: "127.0.0.1:$admin_port"
prometheus:
  url: "$PROM_URL"
  timeout: 10s
adapter:
  name: $adapter
  adaptersDir: "$build/adapters/$adapter/.libs"
  options: $options
log:
  level: ${SMI_LOG_LEVEL:-info}
YAML
    SMI_LOG=$state/smi-metrics.log
    ${SMI_WRAPPER:-} "$build/smi-metrics" --config "$SMI_CONFIG" >"$SMI_LOG" 2>&1 &
    STACK_PIDS+=($!)
    SMI_PID=$!
    stack_wait_http "$SMI_ADMIN_URL/readyz" 30

    "$STACK_REPO/scripts/kubeconfig.sh" "$CERT_DIR" "$SMI_URL" >/dev/null
    KUBECONFIG=$CERT_DIR/kubeconfig
    export SIM_URL PROM_URL SMI_URL SMI_ADMIN_URL KUBECONFIG CERT_DIR SMI_CONFIG SMI_LOG PROM_QUERY_LOG \
        STACK_STATE SCRAPE_INTERVAL SMI_PID
}

# Waits until Prometheus (or the Prometheus-compatible backend at URL) holds
# `seconds` of simulator data, so that a window of that length is fully
# covered.   stack_wait_data SECONDS [URL]
stack_wait_data() {
    local seconds=$1 url=${2:-$PROM_URL} i q
    q='count_over_time(up{job="linkerd-proxy"}['"$seconds"'s])'
    for ((i = 0; i < seconds * 2 + 60; i++)); do
        local n
        n=$(curl -fsS --max-time 2 "$url/api/v1/query" --data-urlencode "query=$q" 2>/dev/null |
            python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo 0)
        if [ "$n" -ge $((seconds / SCRAPE_INTERVAL)) ]; then
            return 0
        fi
        sleep 1
    done
    echo "stack: $url did not collect ${seconds}s of data" >&2
    return 1
}

# Optional, after stack_start: a single-node VictoriaMetrics scraping the
# same simulator with the same scrape config, so that it fills in parallel
# with Prometheus.  stack_stop stops it.  Exports VM_URL.
stack_start_victoriametrics() {
    local port
    port=$(stack_free_port)
    VM_URL=http://127.0.0.1:$port
    rm -rf "$STACK_STATE/vmdata"
    # -search.latencyOffset=0s: answer with the freshest samples, as
    # Prometheus does (the default hides the last 30 s).  strictParse=false:
    # the shared scrape config has Prometheus-only keys (evaluation_interval).
    victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$STACK_STATE/vmdata" \
        -promscrape.config="$STACK_STATE/prometheus.yml" -promscrape.config.strictParse=false \
        -search.latencyOffset=0s >"$STACK_STATE/victoria-metrics.log" 2>&1 &
    STACK_PIDS+=($!)
    stack_wait_http "$VM_URL/health" 30
    export VM_URL
}

# Optional, after stack_start: another smi-metrics with the stack's config on
# new ports and with PROMETHEUS_YAML (the lines of the prometheus section,
# indented by two spaces) instead of the stack's prometheus section.  Sets
# and exports <NAME>_SMI_URL, <NAME>_SMI_ADMIN_URL, <NAME>_KUBECONFIG and
# <NAME>_SMI_LOG (NAME upper-cased); stack_stop stops it.
#   stack_start_smi_for BUILD_DIR NAME PROMETHEUS_YAML
stack_start_smi_for() {
    local build=$1 name=$2 prometheus_yaml=$3 prefix api_port admin_port config log
    prefix=$(printf '%s' "$name" | tr '[:lower:]-' '[:upper:]_')
    api_port=$(stack_free_port)
    admin_port=$(stack_free_port)
    config=$STACK_STATE/smi-metrics-$name.yaml
    log=$STACK_STATE/smi-metrics-$name.log
    awk -v api="127.0.0.1:$api_port" -v admin="127.0.0.1:$admin_port" -v prom="$prometheus_yaml" '
        /^[^ #]/ { section = $1 }
        section == "prometheus:" && /^  / { next }
        section == "server:" && /^  listen:/ { print "  listen: \"" api "\""; next }
        section == "admin:" && /^  listen:/ { print "  listen: \"" admin "\""; next }
        { print }
        /^prometheus:/ { print prom }' "$SMI_CONFIG" >"$config"
    ${SMI_WRAPPER:-} "$build/smi-metrics" --config "$config" >"$log" 2>&1 &
    STACK_PIDS+=($!)
    stack_wait_http "http://127.0.0.1:$admin_port/readyz" 30
    sed -e "s|^\(    server: \).*|\1'https://127.0.0.1:$api_port'|" "$KUBECONFIG" \
        >"$CERT_DIR/kubeconfig-$name"
    printf -v "${prefix}_SMI_URL" '%s' "https://127.0.0.1:$api_port"
    printf -v "${prefix}_SMI_ADMIN_URL" '%s' "http://127.0.0.1:$admin_port"
    printf -v "${prefix}_KUBECONFIG" '%s' "$CERT_DIR/kubeconfig-$name"
    printf -v "${prefix}_SMI_LOG" '%s' "$log"
    export "${prefix}_SMI_URL" "${prefix}_SMI_ADMIN_URL" "${prefix}_KUBECONFIG" "${prefix}_SMI_LOG"
}

# Stops everything stack_start started: SIGTERM, then SIGKILL after
# STACK_STOP_WAIT seconds (default 10).
stack_stop() {
    local pid i
    for pid in "${STACK_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STACK_PIDS[@]}"; do
        for ((i = 0; i < ${STACK_STOP_WAIT:-10} * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    STACK_PIDS=()
}

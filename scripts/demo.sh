#!/usr/bin/env bash
# demo.sh: README command 1.  Installs what it needs, builds, starts a real
# Prometheus scraping the traffic simulator and smi-metrics behind TLS, waits
# for data, then shows the SMI answers for deployments/web and its edges
# through the real kubectl.  Stops everything on Ctrl-C (or at once with
# --once).
#   scripts/demo.sh [--once] [--adapter linkerd|istio|istio-ambient|istio-mixer]
# --adapter picks the simulated mesh and the adapter that reads it: istio is
# telemetry v2 with sidecars, istio-ambient ztunnel plus a waypoint,
# istio-mixer the legacy Mixer metrics (adapter istio, mode: mixer).
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
once=no
SMI_MESH=linkerd
while [ $# -gt 0 ]; do
    case $1 in
    --once) once=yes ;;
    --adapter) SMI_MESH=${2:?--adapter needs a name}; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case $SMI_MESH in
linkerd | istio | istio-ambient | istio-mixer) ;;
*) echo "demo: --adapter: linkerd, istio, istio-ambient or istio-mixer, not '$SMI_MESH'" >&2; exit 2 ;;
esac
export SMI_MESH

"$repo/scripts/install-deps.sh"
export PATH="$repo/.tools/bin:$PATH"
echo "demo: building in $repo/build"
"$repo/scripts/build.sh" "$repo/build"

# shellcheck source=scripts/lib-stack.sh
. "$repo/scripts/lib-stack.sh"
trap 'echo; echo "demo: stopping"; stack_stop' EXIT
trap 'exit 0' INT TERM
stack_start "$repo/build" "$repo/.run/demo"
echo "demo: simulator $SIM_URL, Prometheus $PROM_URL, smi-metrics $SMI_URL (admin $SMI_ADMIN_URL)"
echo "demo: waiting for 35 s of simulated $SMI_MESH traffic in Prometheus..."
stack_wait_data 35

show() {
    echo
    echo "\$ kubectl get --raw $1 | jq"
    kubectl get --raw "$1" | jq .
}
show /apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/deployments/web
show /apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/deployments/web/edges

if [ "$once" = yes ]; then
    exit 0
fi
cat <<TXT

demo: everything keeps running; try for example
  export KUBECONFIG=$KUBECONFIG PATH=$repo/.tools/bin:\$PATH
  kubectl get --raw /apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/pods | jq
  kubectl get --raw '/apis/metrics.smi-spec.io/v1alpha1/namespaces/datastore/statefulsets/vote-db/edges?t=1m' | jq
  curl -s $SMI_ADMIN_URL/metrics
demo: press Ctrl-C to stop.
TXT
while true; do sleep 3600 & wait $!; done

#!/usr/bin/env bash
# Writes DIR/kubeconfig so the real kubectl can talk to a local smi-metrics
# server at SERVER_URL directly, as the aggregator would: it trusts
# DIR/serving-ca.crt and authenticates with the front-proxy client certificate
# DIR/front-proxy-client.crt/.key (a stand-in for kube-apiserver's front-proxy
# identity in the demo). DIR comes from scripts/gen-certs.sh DIR. The file is
# then checked with `kubectl --kubeconfig DIR/kubeconfig config view`, using
# $SMI_TOOLS_DIR/bin/kubectl (from scripts/install-deps.sh) when present.
#
# Usage: scripts/kubeconfig.sh DIR SERVER_URL   e.g. .run/certs https://127.0.0.1:8443
set -euo pipefail

die() { printf 'kubeconfig: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 2 ] || die "usage: $0 DIR SERVER_URL"
[ -d "$1" ] || die "no such directory: $1 (create it with scripts/gen-certs.sh $1)"
DIR=$(cd -- "$1" && pwd)
SERVER_URL=$2
[[ "$SERVER_URL" == https://?* ]] || die "SERVER_URL must be an https:// URL, got: $SERVER_URL"

for f in serving-ca.crt front-proxy-client.crt front-proxy-client.key; do
    [ -s "$DIR/$f" ] || die "$DIR/$f is missing (run scripts/gen-certs.sh $DIR)"
done

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SMI_TOOLS_DIR=${SMI_TOOLS_DIR:-$SCRIPT_DIR/../.tools}

# YAML single-quoted scalar: wrap in '...' and double any embedded quote.
yq() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }

OUT="$DIR/kubeconfig"
TMP=$(mktemp "$DIR/.kubeconfig.XXXXXX")
trap 'rm -f -- "$TMP"' EXIT
cat >"$TMP" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smi-metrics
  cluster:
    server: $(yq "$SERVER_URL")
    certificate-authority: $(yq "$DIR/serving-ca.crt")
users:
- name: front-proxy-client
  user:
    client-certificate: $(yq "$DIR/front-proxy-client.crt")
    client-key: $(yq "$DIR/front-proxy-client.key")
contexts:
- name: smi-metrics
  context:
    cluster: smi-metrics
    user: front-proxy-client
current-context: smi-metrics
preferences: {}
EOF
chmod 0600 "$TMP"

if [ -x "$SMI_TOOLS_DIR/bin/kubectl" ]; then
    KUBECTL="$SMI_TOOLS_DIR/bin/kubectl"
elif command -v kubectl >/dev/null 2>&1; then
    KUBECTL=$(command -v kubectl)
else
    KUBECTL=""
fi

if [ -n "$KUBECTL" ]; then
    # Parse it back with kubectl before it replaces any previous kubeconfig.
    "$KUBECTL" --kubeconfig "$TMP" config view >/dev/null ||
        die "kubectl could not read the generated kubeconfig"
    got=$("$KUBECTL" --kubeconfig "$TMP" config view --minify \
        -o 'jsonpath={.clusters[0].cluster.server}|{.clusters[0].cluster.certificate-authority}|{.users[0].user.client-certificate}|{.users[0].user.client-key}|{.current-context}')
    want="$SERVER_URL|$DIR/serving-ca.crt|$DIR/front-proxy-client.crt|$DIR/front-proxy-client.key|smi-metrics"
    [ "$got" = "$want" ] || die "kubectl reads the kubeconfig back as '$got', expected '$want'"
else
    printf 'kubeconfig: WARNING: no kubectl found (run scripts/install-deps.sh); %s not checked\n' "$OUT" >&2
fi

mv -f -- "$TMP" "$OUT"
trap - EXIT
printf 'kubeconfig: wrote %s (server %s)\n' "$OUT" "$SERVER_URL"

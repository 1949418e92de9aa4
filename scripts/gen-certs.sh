#!/usr/bin/env bash
# Creates the TEST-ONLY TLS material smi-metrics' tests and demo use, with
# openssl alone (EC P-256 keys, SHA-256, 2 days validity):
#   serving-ca.crt/.key          CA that signs the serving certificate
#   server.crt/.key              serverAuth; DNS localhost,
#                                smi-metrics.smi-metrics.svc,
#                                smi-metrics.smi-metrics.svc.cluster.local;
#                                IP 127.0.0.1
#   front-proxy-ca.crt/.key      CA for the aggregator's front-proxy clients
#   front-proxy-client.crt/.key  clientAuth, CN=front-proxy-client
#   wrong-cn.crt/.key            clientAuth, CN=not-allowed (same front-proxy CA)
#   rogue-ca.crt/.key            an unrelated CA
#   rogue-client.crt/.key        clientAuth, CN=front-proxy-client, signed by rogue CA
#   client-ca.crt/.key           CA for ordinary client certificates (client-ca-file)
#   client-alice.crt/.key        clientAuth, CN=alice, O=smi-readers (client CA)
#   client-bob.crt/.key          clientAuth, CN=bob (client CA)
# Idempotent: does nothing when DIR/server.crt (and the rest) exist and
# server.crt stays valid for more than one hour. Keys are mode 0600.
#
# Usage: scripts/gen-certs.sh DIR
set -euo pipefail

die() { printf 'gen-certs: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 1 ] || die "usage: $0 DIR"
command -v openssl >/dev/null 2>&1 || die "openssl not found (run scripts/install-deps.sh)"

DIR=$1
DAYS=2

FILES=(
    serving-ca.crt serving-ca.key server.crt server.key
    front-proxy-ca.crt front-proxy-ca.key
    front-proxy-client.crt front-proxy-client.key
    wrong-cn.crt wrong-cn.key
    rogue-ca.crt rogue-ca.key rogue-client.crt rogue-client.key
    client-ca.crt client-ca.key client-alice.crt client-alice.key
    client-bob.crt client-bob.key
)

up_to_date() {
    local f
    for f in "${FILES[@]}"; do
        [ -s "$DIR/$f" ] || return 1
    done
    openssl x509 -in "$DIR/server.crt" -noout -checkend 3600 >/dev/null 2>&1
}

if up_to_date; then
    printf 'gen-certs: %s is up to date (server.crt valid for more than 1h)\n' "$DIR"
    exit 0
fi

mkdir -p -- "$DIR"
# Serialise concurrent runs on the same DIR, then look again.
if command -v flock >/dev/null 2>&1; then
    exec 9>>"$DIR/.gen-certs.lock"
    flock 9
    if up_to_date; then
        printf 'gen-certs: %s is up to date (made by a concurrent run)\n' "$DIR"
        exit 0
    fi
fi
umask 077
WORK=$(mktemp -d "$DIR/.gen-certs.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

# Self-contained config: nothing comes from the system openssl.cnf.
cat >"$WORK/openssl.cnf" <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:localhost, DNS:smi-metrics.smi-metrics.svc, DNS:smi-metrics.smi-metrics.svc.cluster.local, IP:127.0.0.1

[ client_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
export OPENSSL_CONF="$WORK/openssl.cnf"

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$1.key" 2>/dev/null
}

serial() { printf '0x%s' "$(openssl rand -hex 16)"; }

# new_ca NAME CN
new_ca() {
    new_key "$1"
    openssl req -new -x509 -config "$WORK/openssl.cnf" -key "$WORK/$1.key" \
        -subj "/CN=$2" -sha256 -days "$DAYS" -set_serial "$(serial)" \
        -extensions ca_ext -out "$WORK/$1.crt"
}

# new_leaf NAME CN EXTENSIONS CA [EXTRA-SUBJECT e.g. /O=group]
new_leaf() {
    new_key "$1"
    openssl req -new -config "$WORK/openssl.cnf" -key "$WORK/$1.key" \
        -subj "${5:-}/CN=$2" -sha256 -out "$WORK/$1.csr"
    openssl x509 -req -in "$WORK/$1.csr" -CA "$WORK/$4.crt" -CAkey "$WORK/$4.key" \
        -set_serial "$(serial)" -sha256 -days "$DAYS" \
        -extfile "$WORK/openssl.cnf" -extensions "$3" -out "$WORK/$1.crt" 2>/dev/null
    rm -f -- "$WORK/$1.csr"
    openssl verify -CAfile "$WORK/$4.crt" "$WORK/$1.crt" >/dev/null ||
        die "$1.crt does not verify against $4.crt"
}

new_ca   serving-ca         "smi-metrics test serving CA"
new_leaf server             "smi-metrics.smi-metrics.svc" server_ext serving-ca
new_ca   front-proxy-ca     "smi-metrics test front-proxy CA"
new_leaf front-proxy-client "front-proxy-client"          client_ext front-proxy-ca
new_leaf wrong-cn           "not-allowed"                 client_ext front-proxy-ca
new_ca   rogue-ca           "smi-metrics test rogue CA"
new_leaf rogue-client       "front-proxy-client"          client_ext rogue-ca
new_ca   client-ca          "smi-metrics test client CA"
new_leaf client-alice       "alice"                       client_ext client-ca "/O=smi-readers"
new_leaf client-bob         "bob"                         client_ext client-ca

chmod 0600 "$WORK"/*.key
chmod 0644 "$WORK"/*.crt
# Move into place; server.crt last, so a concurrent up_to_date check never
# sees a new server.crt next to stale companions.
for f in "${FILES[@]}"; do
    [ "$f" = server.crt ] || mv -f -- "$WORK/$f" "$DIR/$f"
done
mv -f -- "$WORK/server.crt" "$DIR/server.crt"

printf 'gen-certs: wrote test certificates (valid %s days) to %s\n' "$DAYS" "$DIR"

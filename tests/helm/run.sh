#!/usr/bin/env bash
# run.sh: the Helm chart and packaging suite, with the real helm binary.
#   tests/helm/run.sh BUILD_DIR
# BUILD_DIR holds a built smi-metrics and adapters (for --check-config on the
# rendered config, the TLS check against the generated certificate, and the
# Dockerfile's library check).  No cluster and no Docker engine are needed:
# helm's lookup is exercised against a small fake kube-apiserver.
# Env: SMI_HELM_SKIP_IMAGE_BUILD=1 skips running the Dockerfile's build stage
# on the host (the slowest test, ~1 min).
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
build=$(cd -- "${1:?usage: run.sh BUILD_DIR}" && pwd)
export PATH="$repo/.tools/bin:$PATH"
command -v helm >/dev/null || { echo "helm suite: helm not found (run scripts/install-deps.sh)" >&2; exit 1; }
[ -x "$build/smi-metrics" ] || { echo "helm suite: $build/smi-metrics not built" >&2; exit 1; }
# PyYAML: Debian's python3-yaml is installed for /usr/bin/python3.
py=
for cand in /usr/bin/python3 python3; do
    if "$cand" -c 'import yaml' 2>/dev/null; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "helm suite: PyYAML missing (Debian: apt-get install python3-yaml)" >&2; exit 1; }
export SMI_BUILD=$build SMI_REPO=$repo PYTHONDONTWRITEBYTECODE=1
cd "$here"
exec "$py" -m unittest discover -s "$here" -p 'test_*.py' -v

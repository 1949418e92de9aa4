"""Shared helpers for the integration suite: the real kubectl, HTTPS with
client certificates, direct PromQL, Quantity parsing and the simulator's
declared truth (rates and latency weights from `smi-sim --describe`)."""
import json
import math
import os
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request

PREFIX = "/apis/metrics.smi-spec.io/v1alpha1"
ENV = os.environ
CERTS = ENV.get("CERT_DIR", "")
SCRAPE = float(ENV.get("SCRAPE_INTERVAL", "2"))
LINKERD_BOUNDS = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000,
                  2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000, math.inf]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kubectl_raw(path):
    """Runs the real `kubectl get --raw`; returns (exit code, stdout, stderr)."""
    p = subprocess.run(["kubectl", "--kubeconfig", ENV["KUBECONFIG"], "get", "--raw", path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def get_json(path):
    rc, out, err = kubectl_raw(path)
    if rc != 0:
        raise AssertionError(f"kubectl get --raw {path} failed ({rc}): {err}")
    return json.loads(out)


def https(path, cert="front-proxy-client", headers=None, method="GET", base=None):
    """Raw HTTPS request to smi-metrics with a chosen client certificate
    (None: no certificate).  Returns (status, headers, body bytes)."""
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(CERTS, cert + ".crt"), os.path.join(CERTS, cert + ".key"))
    req = urllib.request.Request((base or ENV["SMI_URL"]) + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def promql(query, at=None):
    """Instant query against the real Prometheus; returns the result list."""
    params = {"query": query}
    if at is not None:
        params["time"] = str(at)
    url = ENV["PROM_URL"] + "/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def promql_scalar(query, at=None):
    res = promql(query, at)
    if not res:
        return 0.0
    assert len(res) == 1, res
    return float(res[0]["value"][1])


SUFFIX = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(text):
    """Parses a Kubernetes DecimalSI quantity string independently of the C code."""
    assert isinstance(text, str), text
    num = text.rstrip("mkMGTPE")
    return float(num) * SUFFIX[text[len(num):]]


def rfc3339_to_unix(ts):
    return int(time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)


def metrics_of(item):
    return {m["name"]: m for m in item["metrics"]}


# ---- the simulator's declared truth ----

def describe():
    with open(ENV["SIM_DESCRIBE"]) as f:
        return json.load(f)


def edges_where(pred):
    return [e for e in describe()["edges"] if pred(e)]


def ref(side):
    return (side["namespace"], side["kind"], side["name"])


def success_rate(edge):
    n = edge.get("failure_every") or 0
    return edge["rps"] * ((n - 1) / n if n else 1.0)


def failure_rate(edge):
    n = edge.get("failure_every") or 0
    return edge["rps"] / n if n else 0.0


def count_tolerance(rate):
    """Counts are allowed one scrape interval of traffic either way, plus one
    request for the discrete failure pattern."""
    return rate * SCRAPE + 1.0


def mixture_quantile_bucket(edges, q):
    """Index into LINKERD_BOUNDS of the bucket holding quantile q of the
    rate-weighted mixture of the edges' declared latency weights."""
    mass = [0.0] * len(LINKERD_BOUNDS)
    for e in edges:
        total = sum(e["weights"].values())
        for le, w in e["weights"].items():
            b = math.inf if le == "+Inf" else float(le)
            mass[LINKERD_BOUNDS.index(b)] += e["rps"] * w / total
    rank = q * sum(mass)
    acc = 0.0
    for i, m in enumerate(mass):
        acc += m
        if acc >= rank - 1e-9:
            return i
    return len(mass) - 1


def within_one_bucket(value_ms, bucket_index):
    lo = LINKERD_BOUNDS[bucket_index - 2] if bucket_index >= 2 else 0.0
    hi = LINKERD_BOUNDS[min(bucket_index + 1, len(LINKERD_BOUNDS) - 1)]
    return lo <= value_ms <= hi


# ---- any mesh: histogram layouts and who reports an edge (`smi-sim --describe --mesh M`) ----

# Reporters on the callee's side (its sidecar or the waypoint in front of it)
# and on the caller's side, as `edge_reporters` names them.
SERVER_SIDE = {"server", "waypoint"}
CLIENT_SIDE = {"client", "waypoint"}


def mesh_edges():
    """The topology's edges, each with `reporters`: the proxies that report
    its requests in the simulated mesh (L7 and, for ambient, ztunnel's L4)."""
    d = describe()
    edges = d["edges"]
    for e, reporters in zip(edges, d["mesh"]["edge_reporters"]):
        e["reporters"] = set(reporters)
    return edges


def class_value_ms(index):
    """The latency the simulator records for a request of latency class
    `index` (topology.c: class midpoint, 1.5 x the last finite bound for +Inf)."""
    if index == len(LINKERD_BOUNDS) - 1:
        return 1.5 * LINKERD_BOUNDS[-2]
    lower = LINKERD_BOUNDS[index - 1] if index else 0.0
    return (lower + LINKERD_BOUNDS[index]) / 2


def declared_quantile_ms(edges, q):
    """Quantile q (ms) of the rate-weighted mixture of the edges' declared
    latency weights, as recorded values."""
    return class_value_ms(mixture_quantile_bucket(edges, q))


def within_one_bucket_of(value_ms, true_ms, bounds_ms):
    """Whether value_ms lies in the bucket of the layout `bounds_ms` (finite
    upper bounds, +Inf implied) that holds true_ms, or in a neighbour."""
    bounds = list(bounds_ms) + [math.inf]
    i = next(k for k, b in enumerate(bounds) if true_ms <= b)
    lo = bounds[i - 2] if i >= 2 else 0.0
    hi = bounds[min(i + 1, len(bounds) - 1)]
    return lo <= value_ms <= hi

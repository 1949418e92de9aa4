#!/usr/bin/env python3
"""bench.py: the measurements of bench/run.sh (Python 3 standard library only).

    bench.py big    OUT.json   10,000-pod namespace list: end-to-end vs its two
                               queries sent directly, peak and idle RSS
    bench.py main   OUT.json   samples touched, uncached latency, 100 concurrent
                               identical requests, cached throughput
    bench.py report A.json B.json ...   prints the table

Everything it needs comes from the environment run.sh sets (see there).
All traffic goes to 127.0.0.1; every loop is bounded in count and time.

Terms:
  ours      the plan smi-metrics sends, taken from its debug log
            (`query N: <promql>`), the honest source.
  original  the query plan of the original Go server (servicemeshinterface/
            smi-metrics), rendered here from its Linkerd templates as described
            in the reference (section 5.3/5.4): regex matchers with ".+" for
            missing values, histogram_quantile over irate of the buckets (3
            queries), increase of response_total per classification (2
            queries); edges run that twice (callers, then callees), with
            dst_* labels and no direction filter.
"""

import calendar
import concurrent.futures
import http.client
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

API = "/apis/metrics.smi-spec.io/v1alpha1"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bench.py: {name} is not set (run bench/run.sh)")
    return value


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


# ---------------------------------------------------------------- clients


def tls_context():
    cert_dir = env("CERT_DIR")
    ctx = ssl.create_default_context(cafile=os.path.join(cert_dir, "serving-ca.crt"))
    ctx.load_cert_chain(os.path.join(cert_dir, "front-proxy-client.crt"),
                        os.path.join(cert_dir, "front-proxy-client.key"))
    return ctx


class Smi:
    """One keep-alive TLS connection to an smi-metrics API port, presenting
    the front-proxy client certificate as the aggregator would."""

    def __init__(self, url, ctx, timeout=90):
        self.host, self.port = hostport(url)
        self.ctx = ctx
        self.timeout = timeout
        self.conn = None
        self.retries = 0  # idle connections the server had closed

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                timeout=self.timeout)
        self.conn.connect()

    def get(self, path):
        reused = self.conn is not None
        if not reused:
            self.connect()
        try:
            self.conn.request("GET", path, headers={"Accept": "application/json",
                                                    "X-Remote-User": "bench"})
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                ssl.SSLEOFError):
            # The server closed the idle connection: as any HTTP client
            # would, retry a GET once on a fresh one (counted in the time).
            self.close()
            if not reused:
                raise
            self.retries += 1
            self.connect()
            self.conn.request("GET", path, headers={"Accept": "application/json",
                                                    "X-Remote-User": "bench"})
            r = self.conn.getresponse()
        body = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Prom:
    """One keep-alive plain-HTTP connection to Prometheus."""

    def __init__(self, url, timeout=120):
        self.host, self.port = hostport(url)
        self.timeout = timeout
        self.conn = None

    def raw(self, path):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        return r.status, body

    def query(self, promql, t, stats=False):
        params = {"query": promql, "time": str(t)}
        if stats:
            params["stats"] = "all"
        status, body = self.raw("/api/v1/query?" + urllib.parse.urlencode(params))
        if status != 200:
            raise RuntimeError(f"Prometheus answered {status} to {promql[:120]}: {body[:300]!r}")
        return body

    def samples(self, promql, t):
        d = json.loads(self.query(promql, t, stats=True))
        return int(d["data"]["stats"]["samples"]["totalQueryableSamples"])

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def http_text(url, timeout=10):
    host, port = hostport(url)
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    path = urllib.parse.urlsplit(url).path or "/"
    c.request("GET", path)
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    return text


def metric_sum(text, name, match=None):
    """Sum of the samples of `name` whose labels contain every k="v" of match."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest and rest[0] not in "{ ":
            continue
        if match and not all(f'{k}="{v}"' in rest for k, v in match.items()):
            continue
        total += float(line.rsplit(" ", 1)[1])
    return total


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


# ---------------------------------------------------------------- our queries


QUERY_LINE = re.compile(r" debug query (\d+): (.*)$")


class DebugLog:
    """Reads the `query N: <promql>` lines an smi-metrics at log.level debug
    wrote for the last request."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path)

    def new_queries(self):
        deadline = time.monotonic() + 5
        while True:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            queries = {}
            for line in chunk.decode(errors="replace").splitlines():
                m = QUERY_LINE.search(line)
                if m:
                    queries[int(m.group(1))] = m.group(2)
            if queries or time.monotonic() > deadline:
                self.offset += len(chunk)
                return [queries[i] for i in sorted(queries)]
            time.sleep(0.05)


def our_plan(smi, log_path, path):
    """Sends one request to an uncached debug server; returns (status, parsed
    answer, eval time from the answer's timestamp, our PromQL queries, raw
    answer)."""
    log = DebugLog(log_path)
    status, body = smi.get(path)
    queries = log.new_queries()
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
    doc = json.loads(body)
    stamp = doc.get("timestamp")
    if stamp is None and doc.get("items"):
        stamp = doc["items"][0]["timestamp"]
    t = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) if stamp else int(time.time())
    return status, doc, t, queries, body


# ---------------------------------------------------------------- original plan


def orig_resource(kind_label, window, namespace=None, name=None):
    """The original's five resource queries (get or list)."""
    ns = namespace or ".+"
    nm = name or ".+"
    sel = f'namespace=~"{ns}", {kind_label}=~"{nm}", direction="inbound"'
    qs = [f"histogram_quantile({q}, sum(irate(response_latency_ms_bucket{{{sel}}}[{window}])) "
          f"by ({kind_label}, namespace, le))" for q in ("0.99", "0.90", "0.50")]
    qs += [f'sum(increase(response_total{{classification="{c}", {sel}}}[{window}])) '
           f"by ({kind_label}, namespace)" for c in ("success", "failure")]
    return qs


def orig_edges_pass(kind_label, window, namespace, to_namespace, from_name, to_name):
    ns, to_ns = namespace or ".+", to_namespace or ".+"
    fr, to = from_name or ".+", to_name or ".+"
    sel = (f'namespace=~"{ns}", dst_namespace=~"{to_ns}", {kind_label}=~"{fr}", '
           f'dst_{kind_label}=~"{to}"')
    by = f"{kind_label}, dst_{kind_label}, namespace, dst_namespace"
    qs = [f"histogram_quantile({q}, sum(irate(response_latency_ms_bucket{{{sel}}}[{window}])) "
          f"by ({by}, le))" for q in ("0.99", "0.90", "0.50")]
    qs += [f'sum(increase(response_total{{classification="{c}", {sel}}}[{window}])) by ({by})'
           for c in ("success", "failure")]
    return qs


def orig_edges(kind_label, window, namespace, name):
    # pass 1, callers: toNamespace/toName = the resource; pass 2, callees:
    # namespace/fromName = the resource.
    return (orig_edges_pass(kind_label, window, None, namespace, None, name) +
            orig_edges_pass(kind_label, window, namespace, None, name, None))


SCENARIOS = [
    # key, label, our path, original plan
    ("object", "deployments/web", f"{API}/namespaces/emojivoto/deployments/web",
     orig_resource("deployment", "30s", "emojivoto", "web")),
    ("edges", "deployments/web/edges", f"{API}/namespaces/emojivoto/deployments/web/edges",
     orig_edges("deployment", "30s", "emojivoto", "web")),
    ("list", "namespaces/emojivoto/deployments", f"{API}/namespaces/emojivoto/deployments",
     orig_resource("deployment", "30s", "emojivoto")),
]


# ---------------------------------------------------------------- helpers


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def median_ms(xs):
    return statistics.median(xs) * 1000.0


def row(results, metric, ours, baseline, ratio, goal, ok, note="", unit="", limit=""):
    """One table row; `limit` says, from what was measured, what limits it
    (printed when the goal is missed)."""
    results.append({"metric": metric, "ours": ours, "baseline": baseline, "ratio": ratio,
                    "goal": goal, "ok": ok, "note": note, "unit": unit, "limit": limit})


def guard(results, what, fn):
    """Runs one section; a failure becomes a row that says so, and the
    remaining sections still run."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        log(f"{what}: NOT MEASURED: {e}")
        row(results, f"{what}: NOT MEASURED", "-", "-", None, "-", False,
            note=f"{type(e).__name__}: {str(e)[:300]}",
            limit="the measurement failed; see the note and the logs in .run/bench/")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- phase: main


def phase_main(out_path):
    ctx = tls_context()
    prom_url = env("PROM_URL")
    uncached_url = env("SMI_UNCACHED_URL")
    uncached_log = env("SMI_UNCACHED_LOG")
    cached_url = env("SMI_URL")
    cached_admin = env("SMI_ADMIN_URL")
    iterations = int(os.environ.get("BENCH_ITERATIONS", "40"))
    results = []
    info = {}

    plans = {}
    guard(results, "samples touched", lambda: samples_section(
        results, info, plans, ctx, prom_url, uncached_url, uncached_log))
    guard(results, "uncached latency", lambda: latency_section(
        results, plans, ctx, prom_url, uncached_url, iterations))
    guard(results, "100 concurrent identical requests", lambda: concurrency_section(
        results, plans, ctx, prom_url, cached_url, cached_admin))
    guard(results, "cached throughput", lambda: throughput_section(
        results, plans, prom_url, cached_url))
    with open(out_path, "w") as f:
        json.dump({"rows": results, "info": info}, f, indent=1)


def samples_section(results, info, plans, ctx, prom_url, uncached_url, uncached_log):
    """1. Samples touched at one evaluation time: ours vs original."""
    smi = Smi(uncached_url, ctx)
    prom = Prom(prom_url)
    for key, label, path, orig in SCENARIOS:
        _, _, t, ours, _ = our_plan(smi, uncached_log, path)
        if not ours:
            raise RuntimeError(f"no `query N:` lines in {uncached_log} for {path} (log.level debug?)")
        plans[key] = ours
        s_ours = sum(prom.samples(q, t) for q in ours)
        s_orig = sum(prom.samples(q, t) for q in orig)
        ratio = s_ours / s_orig
        row(results, f"samples touched, {key} ({label}); {len(ours)} vs {len(orig)} queries",
            s_ours, s_orig, ratio, "<= 0.4x", ratio <= 0.4, unit="samples",
            limit="our plan reads every bucket and counter sample once; the rest is the "
                  "bucket query (26 series per counter pair)")
        info[f"queries_{key}"] = ours
        info[f"orig_queries_{key}"] = orig
        log(f"samples {key}: ours {s_ours} ({len(ours)} queries), original {s_orig} "
            f"({len(orig)} queries) at t={t}")
    smi.close()
    prom.close()


def latency_section(results, plans, ctx, prom_url, uncached_url, iterations):
    """2. Uncached latency, interleaved so that drift hits all equally."""
    smi = Smi(uncached_url, ctx)
    prom = Prom(prom_url)
    local = threading.local()

    def direct(q, when):
        if not hasattr(local, "prom"):
            local.prom = Prom(prom_url)
        return local.prom.query(q, when)

    object_ms = 0.0
    pending = []  # (row index, explanation waiting for the floor)
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=4)
    for key, label, path, orig in SCENARIOS:
        ours_t, q_t, pair_t, orig_t = [], [[] for _ in plans[key]], [], []
        for i in range(iterations + 3):
            dt, (status, _) = timed(smi.get, path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            now = int(time.time())
            qd = [timed(prom.query, q, now)[0] for q in plans[key]]
            # our queries sent directly and concurrently, as the server does
            t0 = time.perf_counter()
            list(ex.map(lambda q: direct(q, now), plans[key], timeout=60))
            pd = time.perf_counter() - t0
            t0 = time.perf_counter()
            for q in orig:
                prom.query(q, now)
            od = time.perf_counter() - t0
            if i >= 3:  # warm-up
                ours_t.append(dt)
                for j, d in enumerate(qd):
                    q_t[j].append(d)
                pair_t.append(pd)
                orig_t.append(od)
        m_ours = median_ms(ours_t)
        m_slow = max(median_ms(x) for x in q_t)
        m_pair = median_ms(pair_t)
        m_orig = median_ms(orig_t)
        if key == "object":
            object_ms = m_ours
        r1, r2 = m_ours / m_slow, m_ours / m_orig
        why = (f"Prometheus running our {len(plans[key])} queries at once on {os.cpu_count()} "
               f"cores takes {m_pair / m_slow:.2f}x the slowest alone ({m_pair:.2f} ms); our own "
               f"cost is {m_ours - m_pair:.2f} ms a request, the authenticated floor "
               "(client certificate verified per request) {floor:.2f} ms of it")
        pending.append((len(results), why))
        row(results, f"uncached latency, {key}: vs slowest single query of our plan",
            round(m_ours, 2), round(m_slow, 2), r1, "<= 1.2x", r1 <= 1.2, unit="ms (median)")
        pending.append((len(results), why + f"; the original's {len(orig)} queries are small "
                        f"({m_orig:.2f} ms in all), so fixed costs weigh"))
        row(results, f"uncached latency, {key}: vs original plan sequential ({len(orig)} queries)",
            round(m_ours, 2), round(m_orig, 2), r2, "<= 0.35x", r2 <= 0.35, unit="ms (median)")
        row(results, f"info: uncached latency, {key}: vs our {len(plans[key])} queries sent "
            "concurrently, direct", round(m_ours, 2), round(m_pair, 2), m_ours / m_pair, "-", None,
            unit="ms (median)")
        log(f"latency {key}: ours {m_ours:.2f} ms, slowest query {m_slow:.2f} ms, our queries "
            f"concurrently {m_pair:.2f} ms, original sequential {m_orig:.2f} ms "
            f"(median of {iterations})")
    ex.shutdown()
    # The floor of an authenticated request on the same connection: the
    # discovery document (TLS, client certificate verified, no Prometheus).
    floor = []
    for i in range(iterations + 3):
        dt, (status, _) = timed(smi.get, API)
        if i >= 3:
            floor.append(dt)
    m_floor = median_ms(floor)
    for i, why in pending:
        results[i]["limit"] = why.replace("{floor:.2f}", f"{m_floor:.2f}")
    row(results, "info: authenticated request floor, discovery document (no Prometheus) vs "
        "object uncached", round(m_floor, 2), round(object_ms, 2), m_floor / object_ms, "-", None,
        unit="ms (median)")
    smi.close()
    prom.close()


def concurrency_section(results, plans, ctx, prom_url, cached_url, cached_admin):
    """3. 100 concurrent identical requests to the cached server; a window no
    earlier step used, so the first of them is a miss."""
    n = 100
    path = f"{API}/namespaces/emojivoto/deployments/web?t=45s"
    before_prom = metric_sum(http_text(prom_url + "/metrics"), "prometheus_http_requests_total",
                             {"handler": "/api/v1/query"})
    before_self = http_text(cached_admin + "/metrics")
    barrier = threading.Barrier(n, timeout=30)

    def one(_):
        c = Smi(cached_url, ctx, timeout=30)
        c.connect()
        barrier.wait()
        t0 = time.perf_counter()
        status, body = c.get(path)
        dt = time.perf_counter() - t0
        c.close()
        return status, body, dt

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        answers = list(ex.map(one, range(n), timeout=60))
    time.sleep(0.3)
    after_prom = metric_sum(http_text(prom_url + "/metrics"), "prometheus_http_requests_total",
                            {"handler": "/api/v1/query"})
    after_self = http_text(cached_admin + "/metrics")
    issued = after_prom - before_prom
    distinct = len(plans["object"])
    codes = sorted({a[0] for a in answers})
    same = len({a[1] for a in answers}) == 1
    delta = {o: metric_sum(after_self, "smi_metrics_cache_requests_total", {"outcome": o}) -
             metric_sum(before_self, "smi_metrics_cache_requests_total", {"outcome": o})
             for o in ("hit", "miss", "shared")}
    per = issued / distinct
    row(results, f"100 concurrent identical requests: Prometheus queries per distinct query "
        f"({int(issued)} issued / {distinct} distinct)", per, n * distinct / distinct, per / n,
        "<= 2 per query", per <= 2 and codes == [200] and same,
        note=(f"codes {codes}, identical bodies: {same}; our cache miss={delta['miss']:.0f} "
              f"shared={delta['shared']:.0f} hit={delta['hit']:.0f}; "
              f"max latency {max(a[2] for a in answers) * 1000:.1f} ms"),
        unit="queries/distinct query",
        limit=f"cache outcomes: {delta['miss']:.0f} miss, {delta['shared']:.0f} shared, "
              f"{delta['hit']:.0f} hit; misses beyond one mean requests outlived the ttl or "
              "the cache is off (maxEntries 0)")
    log(f"concurrency: Prometheus /api/v1/query +{issued:.0f} for {n} requests, "
        f"cache {delta}, codes {codes}, identical {same}")



def throughput_section(results, plans, prom_url, cached_url):
    """4. Cached throughput over TLS keep-alive vs Prometheus' own throughput
    for the same answer (both queries of our plan).  Ours: ab, which can
    present a client certificate (wrk cannot) and keeps TLS connections
    alive.  Prometheus: wrk (HTTP/1.1 keep-alive); ab speaks HTTP/1.0, and
    Go closes an HTTP/1.0 connection after any answer over 2 KiB (no
    Content-Length), which would understate Prometheus.  ab is the slower
    generator (see the /livez row), so this errs in Prometheus' favour."""
    secs = os.environ.get("BENCH_AB_SECONDS", "5")
    conc = os.environ.get("BENCH_AB_CONCURRENCY", "16")
    pem = env("BENCH_CLIENT_PEM")
    h, p = hostport(cached_url)
    obj = f"https://{h}:{p}{API}/namespaces/emojivoto/deployments/web"
    ours_ab = ab(["-E", pem, obj], secs, conc)
    now = int(time.time())
    prom_rates = []
    ph, pp = hostport(prom_url)
    for q in plans["object"]:
        u = f"http://{ph}:{pp}/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": now})
        prom_rates.append(wrk(u, secs, conc))
    # One answer needs both queries: the rate at which Prometheus could
    # serve both, back to back, at full capacity.
    prom_answers = 1.0 / sum(1.0 / r for r in prom_rates)
    ratio = ours_ab["rps"] / prom_answers
    tput_row = len(results)
    row(results, f"cached throughput, object, TLS keep-alive (ab -k -c {conc}, {secs} s) vs "
        f"Prometheus (wrk -c {conc})",
        round(ours_ab["rps"]), round(prom_answers), ratio, ">= 3x",
        ratio >= 3 and ours_ab["failed"] == 0 and ours_ab["non2xx"] == 0,
        note=(f"ours: {ours_ab['complete']} requests, {ours_ab['keepalive']} keep-alive, "
              f"failed {ours_ab['failed']} (+{ours_ab['length']} of another length: the cache "
              f"refreshes the answer every ttl), non-2xx {ours_ab['non2xx']}; Prometheus per query: "
              + ", ".join(f"{r:.0f}/s" for r in prom_rates)),
        unit="answers/s")
    log(f"throughput: ours {ours_ab['rps']:.0f}/s, Prometheus {prom_answers:.0f} answers/s "
        f"(queries {[round(r) for r in prom_rates]})")

    # What the load generators and the authentication cost, same TLS port:
    # /livez needs no certificate (ab and wrk), the discovery document needs
    # the client certificate but no Prometheus (ab only).
    livez = f"https://{h}:{p}/livez"
    ab_livez = ab([livez], secs, conc)
    wrk_livez = wrk(livez, secs, conc)
    row(results, "info: /livez over TLS keep-alive, no client cert: ab vs wrk (generator ceiling)",
        round(ab_livez["rps"]), round(wrk_livez), ab_livez["rps"] / wrk_livez, "-", None,
        unit="req/s")
    ab_disc = ab(["-E", pem, f"https://{h}:{p}{API}"], secs, conc)
    row(results, "info: discovery (client cert verified, no Prometheus, no cache) vs /livez, both ab",
        round(ab_disc["rps"]), round(ab_livez["rps"]), ab_disc["rps"] / ab_livez["rps"], "-", None,
        unit="req/s")
    results[tput_row]["limit"] = (
        f"every authenticated request verifies the client certificate: discovery (no "
        f"Prometheus, no cache) {ab_disc['rps']:.0f}/s vs /livez (no certificate) "
        f"{ab_livez['rps']:.0f}/s with the same ab; ab itself reaches "
        f"{ab_livez['rps'] / wrk_livez:.2f}x of wrk")


AB_FIELDS = {
    "rps": (r"Requests per second:\s+([\d.]+)", float),
    "complete": (r"Complete requests:\s+(\d+)", int),
    "failed": (r"Failed requests:\s+(\d+)", int),
    "length": (r"Receive: \d+, Length: (\d+),", int),
    "non2xx": (r"Non-2xx responses:\s+(\d+)", int),
    "keepalive": (r"Keep-Alive requests:\s+(\d+)", int),
}


def ab(args, secs, conc):
    # -t before -n: -t sets the request cap to 50000, -n raises it again.
    cmd = ["ab", "-q", "-k", "-c", conc, "-t", secs, "-n", "5000000", "-s", "30",
           "-H", "Accept: application/json", "-H", "X-Remote-User: bench"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=int(secs) + 60)
    if p.returncode != 0:
        raise RuntimeError(f"ab failed ({p.returncode}): {p.stderr[-500:]}")
    out = {}
    for k, (rx, conv) in AB_FIELDS.items():
        m = re.search(rx, p.stdout)
        out[k] = conv(m.group(1)) if m else 0
    # ab counts an answer whose length differs from the first one's as
    # failed ("Length"); a cached answer is refreshed every ttl and its
    # values (hence length) change, so only the other failures count.
    out["failed"] -= out["length"]
    if not out["rps"]:
        raise RuntimeError(f"ab printed no rate: {p.stdout[-800:]}")
    return out


def wrk(url, secs, conc):
    p = subprocess.run(["wrk", "-t", "2", "-c", conc, "-d", f"{secs}s", url], capture_output=True,
                       text=True, timeout=int(secs) + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {p.stdout[-500:]} {p.stderr[-500:]}")
    return float(m.group(1))


# ---------------------------------------------------------------- phase: big


def phase_big(out_path):
    pid = int(env("BIG_SMI_PID"))
    idle = dict(zip(("VmRSS", "RssAnon", "RssFile"),
                    (int(x) for x in env("BIG_SMI_IDLE_RSS_KIB").split(","))))
    pods = int(os.environ.get("BIG_PODS", "10000"))
    results = []
    info = {}
    idle_now = rss_kib(pid, "VmRSS")
    row(results, "idle RSS after start (VmRSS, no request yet)", round(idle["VmRSS"] / 1024, 1),
        8.0, idle["VmRSS"] / 1024 / 8.0, "<= 8 MiB", idle["VmRSS"] <= 8 * 1024,
        note=(f"RssAnon {idle['RssAnon'] / 1024:.1f} MiB + RssFile {idle['RssFile'] / 1024:.1f} MiB "
              f"(mapped library pages); VmRSS just before the first request: "
              f"{idle_now / 1024:.1f} MiB"), unit="MiB",
        limit=(f"the server's own memory (RssAnon) is {idle['RssAnon'] / 1024:.1f} MiB; "
               f"{idle['RssFile'] / 1024:.1f} MiB are mapped shared-library pages "
               "(two TLS stacks, OpenSSL and GnuTLS, and libcurl's dependencies)"))
    guard(results, f"{pods}-pod namespace list", lambda: big_section(results, info, pods))
    peak = rss_kib(pid, "VmHWM")
    biggest = max(info.get("big_sizes", [0]))
    row(results, f"{pods}-pod namespace list: peak RSS (VmHWM)", round(peak / 1024, 1), 64.0,
        peak / 1024 / 64.0, "<= 64 MiB", peak <= 64 * 1024, unit="MiB",
        limit=(f"Prometheus' largest answer is {biggest / 1e6:.1f} MB; the server buffers it "
               "whole and parses it into a jansson DOM (about 11x the text), then builds "
               f"the answer as a jansson tree too"))
    with open(out_path, "w") as f:
        json.dump({"rows": results, "info": info}, f, indent=1)


def big_section(results, info, pods):
    ctx = tls_context()
    prom_url = env("BIG_PROM_URL")
    smi_url = env("BIG_SMI_URL")
    smi_log = env("BIG_SMI_LOG")
    runs = int(os.environ.get("BIG_RUNS", "3"))
    budget = float(os.environ.get("BIG_BUDGET_SECONDS", "150"))
    ns = os.environ.get("BIG_NAMESPACE", "bench")
    started = time.monotonic()
    path = f"{API}/namespaces/{ns}/pods"

    smi = Smi(smi_url, ctx, timeout=120)

    def direct(q, when):
        c = Prom(prom_url)
        d, body = timed(c.query, q, when)
        c.close()
        return d, len(body)

    def alone_once(ex):
        when = int(time.time())
        t0 = time.perf_counter()
        parts = list(ex.map(lambda q: direct(q, when), ours, timeout=120))
        return time.perf_counter() - t0, [s for _, s in parts]

    # Run 1 is the first request, which also yields our queries (debug
    # log); later runs alternate which side goes first.
    e2e, alone, sizes, body = [], [], [], b""
    ours = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for i in range(runs):
            if i > 0 and time.monotonic() - started > budget:
                log(f"big list: stopping after {i} runs ({budget:.0f} s budget spent)")
                break
            if i == 0:
                d, (status, doc, t, ours, body) = timed(our_plan, smi, smi_log, path)
                items = len(doc.get("items", []))
                info["big_queries"] = ours
                if items != pods:
                    raise RuntimeError(f"{path} listed {items} pods, expected {pods}")
                e2e.append(d)
                a, sizes = alone_once(ex)
                alone.append(a)
            else:
                if i % 2 == 1:
                    a, sizes = alone_once(ex)
                d, (status, body) = timed(smi.get, path)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
                if i % 2 == 0:
                    a, sizes = alone_once(ex)
                e2e.append(d)
                alone.append(a)
            log(f"big list run {i + 1}/{runs}: end-to-end {e2e[-1] * 1000:.0f} ms "
                f"({len(body)} bytes), queries alone {alone[-1] * 1000:.0f} ms "
                f"(answers {sizes} bytes)")
    smi.close()
    if smi.retries:
        log(f"big list: the server had closed the idle connection {smi.retries} time(s); "
            "retried on a new one")
    m_e2e, m_alone = median_ms(e2e), median_ms(alone)
    info["big_sizes"] = sizes
    ratio = m_e2e / m_alone
    row(results, f"{pods}-pod namespace list: end-to-end vs its {len(ours)} queries alone "
        f"(concurrent, direct)", round(m_e2e), round(m_alone), ratio, "<= 1.3x", ratio <= 1.3,
        note=(f"per run (end-to-end/alone ms): "
              + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f}" for a, b in zip(e2e, alone))
              + f"; Prometheus answers {sizes} bytes; our answer {len(body)} bytes"
              + (f"; {smi.retries} reconnect(s): the server closed the idle keep-alive "
                 f"connection between runs" if smi.retries else "")),
        unit=f"ms (median of {len(e2e)})",
        limit=(f"{m_e2e - m_alone:.0f} ms beyond Prometheus: buffering and parsing "
               f"{sum(sizes) / 1e6:.1f} MB of answers into jansson DOMs, assembling {pods} "
               f"items, serialising {len(body) / 1e6:.1f} MB and sending it over TLS, "
               f"on {os.cpu_count()} cores shared with Prometheus"))

    if os.environ.get("BIG_ORIG", "0") != "1":
        return
    # BIG_ORIG=1: the big list's Prometheus work, ours vs the original's
    # plan (slow: the original's five queries over 280,000 series).
    prom = Prom(prom_url)
    orig = orig_resource("pod", "30s", ns)
    s_ours = sum(prom.samples(q, t) for q in ours)
    # The original plan runs once, sequentially: its samples and its time
    # (stats=all adds little next to seconds of evaluation).
    d_orig, s_orig = timed(lambda: sum(prom.samples(q, t) for q in orig))
    prom.close()
    row(results, f"samples touched, {pods}-pod namespace list; {len(ours)} vs {len(orig)} queries",
        s_ours, s_orig, s_ours / s_orig, "<= 0.4x", s_ours / s_orig <= 0.4, unit="samples")
    r2 = m_e2e / (d_orig * 1000)
    row(results, f"{pods}-pod namespace list: uncached vs original plan sequential (1 run)",
        round(m_e2e), round(d_orig * 1000), r2, "<= 0.35x", r2 <= 0.35, unit="ms")
    info["big_orig_queries"] = orig


# ---------------------------------------------------------------- report


def fmt(v):
    if isinstance(v, float):
        if v >= 100:
            return f"{v:.0f}"
        return f"{v:.3g}" if v < 10 else f"{v:.1f}"
    return str(v)


def report(paths):
    rows = []
    for p in paths:
        try:
            with open(p) as f:
                rows += json.load(f)["rows"]
        except (OSError, ValueError) as e:
            row(rows, f"{os.path.basename(p)}: NOT MEASURED", "-", "-", None, "-", False,
                note=f"no results: {e}")
    header = ["metric", "ours", "baseline", "ratio", "goal", "ok?"]
    table = []
    for r in rows:
        ok = "-" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        unit = f" [{r['unit']}]" if r.get("unit") else ""
        table.append([r["metric"] + unit, fmt(r["ours"]), fmt(r["baseline"]),
                      "-" if r["ratio"] is None else f"{r['ratio']:.3f}x", r["goal"], ok])
    widths = [max(len(x[i]) for x in table + [header]) for i in range(len(header))]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths)))
    notes = [r for r in rows if r.get("note")]
    if notes:
        print()
        for r in notes:
            print(f"  {r['metric']}: {r['note']}")
    missed = [r for r in rows if r["ok"] is False]
    if missed:
        print()
        print("missed goals, and what limits them (measured in this run):")
        for r in missed:
            print(f"  {r['metric']}: {r.get('limit') or 'see bench/README.md'}")
    print()
    print(f"goals met: {sum(1 for r in rows if r['ok'])}/{sum(1 for r in rows if r['ok'] is not None)}"
          + (f"; missed: {len(missed)} (see bench/README.md for what limits each)" if missed else ""))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("main", "big", "report"):
        sys.exit(__doc__)
    if sys.argv[1] == "main":
        phase_main(sys.argv[2])
    elif sys.argv[1] == "big":
        phase_big(sys.argv[2])
    else:
        report(sys.argv[2:])


if __name__ == "__main__":
    main()

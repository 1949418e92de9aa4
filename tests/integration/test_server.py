"""End-to-end tests of the server's edges: TLS and the front-proxy check,
hostile paths, Status errors, the admin port, Prometheus faults and
recovery, and the command line (config errors, broken adapters)."""
import concurrent.futures
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from smi import CERTS, ENV, PREFIX, free_port, http, https, kubectl_raw

BUILD = ENV.get("SMI_BUILD", "")
BIN = os.path.join(BUILD, "smi-metrics")
ADAPTERS = os.path.join(BUILD, "adapters", "linkerd", ".libs")
FIXTURES = os.path.join(BUILD, "tests", "abi", ".libs")


def write_config(directory, prom_url, extra="", server_extra=""):
    api, admin = free_port(), free_port()
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as f:
        f.write(f"""server:
  listen: "127.0.0.1:{api}"
  tlsCertFile: "{CERTS}/server.crt"
  tlsKeyFile: "{CERTS}/server.key"
{server_extra}auth:
  requestheaderClientCAFile: "{CERTS}/front-proxy-ca.crt"
  requestheaderAllowedNames: [front-proxy-client]
admin:
  listen: "127.0.0.1:{admin}"
prometheus:
  url: "{prom_url}"
  timeout: 2s
adapter:
  name: linkerd
  adaptersDir: "{ADAPTERS}"
{extra}""")
    return path, f"https://127.0.0.1:{api}", f"http://127.0.0.1:{admin}"


class Server:
    """A second smi-metrics process with its own config (for fault tests)."""

    def __init__(self, prom_url, server_extra=""):
        self.dir = tempfile.mkdtemp()
        self.config, self.url, self.admin = write_config(self.dir, prom_url, server_extra=server_extra)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([BIN, "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                if http(self.admin + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("second server did not become ready")

    def get(self, path):
        return https(path, base=self.url)

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return rc, text


class FakePrometheus:
    """A misbehaving backend on loopback: refuse (not listening), hang,
    garbage, error JSON, wrong type, or proxy to the real Prometheus."""

    def __init__(self):
        self.port = free_port()
        self.mode = "refuse"
        self.sock = None
        self.stop = False

    def serve(self, mode):
        self.mode = mode
        if self.sock is None:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", self.port))
            self.sock.listen(16)
            threading.Thread(target=self.accept_loop, daemon=True).start()

    def refuse(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def accept_loop(self):
        sock = self.sock
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            if self.mode == "hang":
                time.sleep(5)
                return
            if self.mode == "proxy":
                path = data.split(b" ")[1].decode()
                with urllib.request.urlopen(ENV["PROM_URL"] + path, timeout=10) as r:
                    body, code = r.read(), 200
            elif self.mode == "trickle":
                # Headers at once, then one byte a second: never completes in time.
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                for _ in range(6):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        return
                    time.sleep(1)
                return
            elif self.mode == "huge":
                # A body larger than the client's cap (32 MiB), sent as fast as possible.
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (40 << 20)
                try:
                    conn.sendall(head + b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * (40 << 20))
                except OSError:
                    pass
                return
            elif self.mode == "500":
                body, code = b"internal server error", 500
            elif self.mode == "garbage":
                body, code = b"<html>not json", 200
            elif self.mode == "error":
                body, code = b'{"status":"error","errorType":"bad_data","error":"parse error at char 1"}', 400
            else:  # matrix where a vector is expected
                body, code = b'{"status":"success","data":{"resultType":"matrix","result":[]}}', 200
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (code, len(body)) + body)


def status_of(body):
    doc = json.loads(body)
    for key in ("kind", "apiVersion", "metadata", "status", "message", "code"):
        assert key in doc, (key, doc)
    assert doc["kind"] == "Status" and doc["apiVersion"] == "v1" and doc["status"] == "Failure", doc
    return doc


class Security(unittest.TestCase):
    WEB = f"{PREFIX}/namespaces/emojivoto/deployments/web"

    def test_front_proxy_certificate_is_accepted(self):
        code, headers, body = https(self.WEB, headers={"X-Remote-User": "alice@example.com"})
        self.assertEqual(code, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        with open(ENV["SMI_LOG"]) as log:
            self.assertIn('user="alice@example.com"', log.read())

    def test_missing_wrong_cn_and_rogue_certificates_are_401(self):
        for cert in (None, "wrong-cn", "rogue-client"):
            code, _, body = https(self.WEB, cert=cert)
            self.assertEqual(code, 401, cert)
            doc = status_of(body)
            self.assertEqual((doc["reason"], doc["message"], doc["code"]), ("Unauthorized", "Unauthorized", 401))

    def test_health_needs_no_certificate(self):
        code, _, body = https("/livez", cert=None)
        self.assertEqual((code, body), (200, b"ok"))
        self.assertEqual(https("/readyz", cert=None)[0], 200)

    def test_tls_versions(self):
        for flag, ok in (("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)):
            host = ENV["SMI_URL"].split("//")[1]
            p = subprocess.run(["openssl", "s_client", "-connect", host, flag, "-CAfile",
                                os.path.join(CERTS, "serving-ca.crt")],
                               input="", capture_output=True, text=True, timeout=20)
            # "New, TLSv1.3, Cipher is TLS_AES_..." on success, "Cipher is (NONE)" when refused.
            established = "Cipher is " in p.stdout and "Cipher is (NONE)" not in p.stdout
            self.assertEqual(established, ok, (flag, p.stdout[-600:], p.stderr[-400:]))
            if ok:
                self.assertIn("Verify return code: 0 (ok)", p.stdout)


class BadInput(unittest.TestCase):
    def expect(self, path, code, reason):
        got, _, body = https(path)
        self.assertEqual(got, code, (path, body))
        doc = status_of(body)
        self.assertEqual((doc["reason"], doc["code"]), (reason, code), path)
        return doc

    def test_injection_attempts_are_400(self):
        for name in ('web"}or vector(1)#', "web}", 'web",deployment=~".*', "Web", "web%0a", "-web",
                     "a" * 300, "web\\x"):
            quoted = urllib.parse.quote(name, safe="")
            self.expect(f"{PREFIX}/namespaces/emojivoto/deployments/{quoted}", 400, "BadRequest")
            self.expect(f"{PREFIX}/namespaces/{quoted}/deployments/web", 400, "BadRequest")

    def test_nul_byte_does_not_truncate(self):
        self.expect(f"{PREFIX}/namespaces/emojivoto/deployments/web%00evil", 400, "BadRequest")

    def test_bad_windows_are_400(self):
        for t in ("5", "1d", "", "abc", "-5m", "500ms", "1s", "48h"):
            doc = self.expect(f"{PREFIX}/namespaces/emojivoto/deployments/web?t={urllib.parse.quote(t)}",
                              400, "BadRequest")
            self.assertIn("window", doc["message"])
        self.expect(f"{PREFIX}/namespaces/emojivoto/deployments/web?t=30s&t=1m", 400, "BadRequest")

    def test_unknown_routes_are_404_status(self):
        for path in (f"{PREFIX}/services", f"{PREFIX}/deployments/web", f"{PREFIX}/namespaces/a/b/c/d/e",
                     "/", "/apis/other.group/v1", f"{PREFIX}/namespaces/emojivoto/nodes/x"):
            self.expect(path, 404, "NotFound")

    def test_methods_and_watch(self):
        got, _, body = https(f"{PREFIX}/namespaces/emojivoto/deployments/web", method="DELETE")
        self.assertEqual(got, 405)
        self.expect(f"{PREFIX}/deployments?watch=true", 405, "MethodNotAllowed")

    def test_kubectl_shows_status_message(self):
        rc, _, err = kubectl_raw(f"{PREFIX}/namespaces/emojivoto/deployments/web?t=5")
        self.assertEqual(rc, 1)
        self.assertIn("Error from server (BadRequest)", err)
        self.assertIn("invalid window", err)

    def test_server_still_serves_after_bad_input(self):
        self.assertEqual(https(f"{PREFIX}/namespaces/emojivoto/deployments/web")[0], 200)


class Discovery(unittest.TestCase):
    def test_resource_list(self):
        code, _, body = https(PREFIX)
        self.assertEqual(code, 200)
        doc = json.loads(body)
        self.assertEqual((doc["kind"], doc["groupVersion"]), ("APIResourceList", "metrics.smi-spec.io/v1alpha1"))
        names = {r["name"]: r for r in doc["resources"]}
        for plural in ("namespaces", "pods", "deployments", "statefulsets", "daemonsets", "jobs"):
            self.assertEqual(names[plural]["verbs"], ["get", "list"])
            self.assertEqual(names[plural + "/edges"]["namespaced"], names[plural]["namespaced"])
        self.assertFalse(names["namespaces"]["namespaced"])
        self.assertEqual(https(PREFIX + "/")[0], 200)

    def test_groups_and_kubectl(self):
        code, _, body = https("/apis")
        self.assertEqual(json.loads(body)["groups"][0]["name"], "metrics.smi-spec.io")
        code, _, body = https("/apis/metrics.smi-spec.io")
        self.assertEqual(json.loads(body)["kind"], "APIGroup")
        rc, out, _ = kubectl_raw(PREFIX)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out)["kind"], "APIResourceList")

    def test_openapi_is_404(self):
        for path in ("/openapi/v2", "/openapi/v3"):
            self.assertEqual(https(path)[0], 404)


class Admin(unittest.TestCase):
    def test_health_and_metrics(self):
        base = ENV["SMI_ADMIN_URL"]
        self.assertEqual(http(base + "/livez"), (200, "ok"))
        self.assertEqual(http(base + "/readyz"), (200, "ok"))
        https(f"{PREFIX}/namespaces/emojivoto/deployments/web")
        code, text = http(base + "/metrics")
        self.assertEqual(code, 200)
        line = [l for l in text.splitlines() if l.startswith('smi_metrics_api_requests_total{route="object",code="200"}')]
        self.assertTrue(line and float(line[0].split()[-1]) >= 1, text[:2000])
        self.assertIn('smi_metrics_prometheus_queries_total{outcome="ok"}', text)
        self.assertIn("smi_metrics_api_request_duration_seconds_bucket", text)
        self.assertIn("smi_metrics_prometheus_query_duration_seconds_count", text)
        # The exposition must parse for a real Prometheus: check with promtool.
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class PrometheusFaults(unittest.TestCase):
    WEB = f"{PREFIX}/namespaces/emojivoto/deployments/web"

    def test_faults_map_to_503_504_502_and_recover(self):
        fake = FakePrometheus()
        server = Server(f"http://127.0.0.1:{fake.port}")
        try:
            code, _, body = server.get(self.WEB)  # nothing listening
            self.assertEqual((code, status_of(body)["reason"]), (503, "ServiceUnavailable"))
            self.assertIn("refused", status_of(body)["message"])
            self.assertEqual(http(server.admin + "/readyz")[0], 200, "readiness must not follow Prometheus")
            self.assertEqual(server.get(PREFIX)[0], 200, "discovery must not need Prometheus")
            fake.serve("hang")
            start = time.monotonic()
            code, _, body = server.get(self.WEB)
            self.assertEqual((code, status_of(body)["reason"]), (504, "Timeout"))
            self.assertLess(time.monotonic() - start, 2 + 1.5, "answer within timeout + 1 s")
            # A client's shorter ?timeout= (kubectl --request-timeout) bounds the wait too.
            start = time.monotonic()
            code, _, body = server.get(self.WEB + "?timeout=1s")
            self.assertEqual((code, status_of(body)["reason"]), (504, "Timeout"))
            self.assertLess(time.monotonic() - start, 1.9, "the request's own budget applies")
            fake.serve("trickle")
            start = time.monotonic()
            code, _, body = server.get(self.WEB)
            self.assertEqual((code, status_of(body)["reason"]), (504, "Timeout"))
            self.assertLess(time.monotonic() - start, 2 + 1.5, "a trickle is cut at the timeout")
            for mode in ("garbage", "error", "matrix", "500", "huge"):
                fake.serve(mode)
                start = time.monotonic()
                code, _, body = server.get(self.WEB)
                self.assertEqual(code, 502, (mode, body))
                self.assertIn("Prometheus", status_of(body)["message"])
                self.assertLess(time.monotonic() - start, 2 + 1.5, mode)
            fake.serve("proxy")
            code, _, body = server.get(self.WEB)
            self.assertEqual(code, 200, body)
            self.assertEqual(json.loads(body)["kind"], "TrafficMetrics")
            code, text = http(server.admin + "/metrics")
            self.assertIn('smi_metrics_prometheus_queries_total{outcome="unavailable"}', text)
        finally:
            fake.refuse()
            rc, log = server.stop()
        self.assertEqual(rc, 0, log[-2000:])
        self.assertNotIn("Sanitizer", log)


class Lifecycle(unittest.TestCase):
    def test_sigterm_drains_in_flight_requests_and_exits_0(self):
        fake = FakePrometheus()
        fake.serve("hang")  # every query takes the full 2 s timeout
        server = Server(f"http://127.0.0.1:{fake.port}")
        results = []
        worker = threading.Thread(target=lambda: results.append(
            server.get(f"{PREFIX}/namespaces/emojivoto/deployments/web")))
        try:
            worker.start()
            time.sleep(0.7)  # the request is waiting on Prometheus now
            server.proc.send_signal(15)
            time.sleep(0.3)
            # No new connections once draining has begun.
            with self.assertRaises(OSError):
                https("/livez", cert=None, base=server.url)
            worker.join(timeout=10)
            self.assertEqual(len(results), 1, "the in-flight request was answered")
            self.assertEqual(results[0][0], 504)
            self.assertEqual(server.proc.wait(timeout=10), 0)
        finally:
            fake.refuse()
            if server.proc.poll() is None:
                server.proc.kill()
            rc, log = server.stop()
        self.assertIn("draining requests", log)
        self.assertNotIn("Sanitizer", log)


class Limits(unittest.TestCase):
    def test_slow_header_and_idle_connections_time_out_and_sighup_is_harmless(self):
        server = Server(ENV["PROM_URL"], server_extra="  idleTimeout: 2s\n  maxHeaderBytes: 32768\n")
        try:
            host, port = server.url.split("//")[1].rsplit(":", 1)
            ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
            ctx.load_cert_chain(os.path.join(CERTS, "front-proxy-client.crt"),
                                os.path.join(CERTS, "front-proxy-client.key"))
            for partial in (b"", b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: "):
                with socket.create_connection((host, int(port)), timeout=10) as sock:
                    with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                        tls.sendall(partial)
                        start = time.monotonic()
                        try:
                            data = tls.recv(1024)  # closed by the server
                        except (ConnectionResetError, ssl.SSLError):
                            data = b""
                        waited = time.monotonic() - start
                        self.assertEqual(data, b"", partial)
                        self.assertTrue(1.5 < waited < 6, (partial, waited))
            # A header block over maxHeaderBytes is refused; the server goes on.
            code, _, _ = https("/livez", cert=None, base=server.url, headers={"X-Big": "a" * 40000})
            self.assertIn(code, (413, 431))
            server.proc.send_signal(1)  # SIGHUP: logged, not fatal
            time.sleep(0.3)
            self.assertEqual(https("/livez", cert=None, base=server.url)[0], 200)
        finally:
            rc, log = server.stop()
        self.assertEqual(rc, 0)
        self.assertIn("SIGHUP ignored", log)


def prometheus_query_requests():
    """Prometheus' own count of instant queries it has served (independent of
    smi-metrics' self-metrics)."""
    with urllib.request.urlopen(ENV["PROM_URL"] + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
            total += float(line.split()[-1])
    return total


class SingleFlight(unittest.TestCase):
    def test_hundred_identical_requests_cost_one_plan(self):
        # A window no other test uses, so nothing is cached yet.
        path = f"{PREFIX}/namespaces/emojivoto/deployments/voting?t=47s"
        before = prometheus_query_requests()
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            codes = list(pool.map(lambda _: https(path)[0], range(100)))
        after = prometheus_query_requests()
        self.assertEqual(codes, [200] * 100)
        # The Linkerd plan is two distinct queries; allow at most two each.
        self.assertGreaterEqual(after - before, 2)
        self.assertLessEqual(after - before, 4)
        code, text = http(ENV["SMI_ADMIN_URL"] + "/metrics")
        self.assertIn('smi_metrics_cache_requests_total{outcome="shared"}', text)


class CommandLine(unittest.TestCase):
    def run_bin(self, *args):
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)

    def test_version_help_check_config(self):
        self.assertEqual(self.run_bin("--version").returncode, 0)
        self.assertIn("--config", self.run_bin("--help").stdout)
        p = self.run_bin("--config", ENV["SMI_CONFIG"], "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("adapter linkerd", p.stdout)

    def test_config_errors_name_file_line_key(self):
        with tempfile.TemporaryDirectory() as d:
            path, _, _ = write_config(d, "http://127.0.0.1:9", extra="  options: {}\n")
            with open(path, "a") as f:
                f.write("prometheus2:\n  url: x\n")
            p = self.run_bin("--config", path, "--check-config")
            self.assertEqual(p.returncode, 2)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(f"{path}:", p.stderr)
            self.assertIn("prometheus2", p.stderr)

    def test_unknown_adapter_option_and_query_override(self):
        with tempfile.TemporaryDirectory() as d:
            path, _, _ = write_config(d, "http://127.0.0.1:9", extra="  options:\n    colour: blue\n")
            p = self.run_bin("--config", path, "--check-config")
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("adapter.options.colour", p.stderr)
            path, _, _ = write_config(d, "http://127.0.0.1:9",
                                      extra="  queries:\n    resource.counts: 'sum({{nope}})'\n")
            p = self.run_bin("--config", path, "--check-config")
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("adapter.queries.resource.counts", p.stderr)
            self.assertIn("{{nope}}", p.stderr)

    def test_broken_adapters_fail_cleanly(self):
        cases = {"fx_missing_symbol.so": "not found", "fx_wrong_major.so": "ABI major 2",
                 "fx_newer_minor.so": "newer than this server", "fx_null_callbacks.so": "is NULL",
                 "fx_short_struct.so": "bytes", "not-an-elf.so": "not an ELF"}
        with tempfile.TemporaryDirectory() as d:
            for name, needle in cases.items():
                so = os.path.join(ENV["SMI_REPO"], "tests", "abi", name) if name == "not-an-elf.so" \
                    else os.path.join(FIXTURES, name)
                path, _, _ = write_config(d, "http://127.0.0.1:9", extra=f'  path: "{so}"\n')
                with open(path) as f:
                    text = f.read().replace("  name: linkerd\n", "")
                with open(path, "w") as f:
                    f.write(text)
                p = self.run_bin("--config", path, "--check-config")
                self.assertEqual(p.returncode, 3, (name, p.stderr))
                lines = p.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, (name, p.stderr))
                self.assertIn(needle, lines[0])
                self.assertIn(so, lines[0])


import urllib.parse  # noqa: E402  (used by BadInput)

if __name__ == "__main__":
    unittest.main()

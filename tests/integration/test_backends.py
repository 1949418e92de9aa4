"""Prometheus-compatible backends (issue 8).  The same answers from
Prometheus and from VictoriaMetrics scraping the same simulator; and the
options for secured backends (bearer token rotated while running, basic
auth, a tenant header, a path prefix, POST queries, TLS with a private CA, a
client certificate, a server name, verification failure), each against a
real HTTPS server on loopback: a small reverse proxy in front of the real
Prometheus that demands what a Mimir, Thanos or vmauth front would, records
what it received, and forwards the rest."""
import base64
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from smi import (CERTS, ENV, LINKERD_BOUNDS, PREFIX, count_tolerance, edges_where, failure_rate,
                 https, metrics_of, quantity, ref, success_rate)
from smi import free_port

BUILD = ENV.get("SMI_BUILD", "")
BIN = os.path.join(BUILD, "smi-metrics")
ADAPTERS = os.path.join(BUILD, "adapters", "linkerd", ".libs")
WEB = f"{PREFIX}/namespaces/emojivoto/deployments/web"


def config_text(prometheus_yaml, api_port=None, admin_port=None):
    """An smi-metrics config whose prometheus section is `prometheus_yaml`
    (lines indented by two spaces)."""
    return f"""server:
  listen: "127.0.0.1:{api_port or free_port()}"
  tlsCertFile: "{CERTS}/server.crt"
  tlsKeyFile: "{CERTS}/server.key"
auth:
  requestheaderClientCAFile: "{CERTS}/front-proxy-ca.crt"
  requestheaderAllowedNames: [front-proxy-client]
admin:
  listen: "127.0.0.1:{admin_port or free_port()}"
prometheus:
{prometheus_yaml}
adapter:
  name: linkerd
  adaptersDir: "{ADAPTERS}"
"""


# ---- a private PKI for the backend, made with the real openssl ----

class Pki:
    """backend-ca signs the backend's server certificates and smi-metrics'
    client certificate; rogue-ca is a CA nobody trusts."""

    def __init__(self, directory):
        self.dir = directory
        self.ca("backend-ca")
        self.ca("rogue-ca")
        # The usual server certificate: for 127.0.0.1 and localhost.
        self.leaf("server", "backend-ca", "serverAuth", "IP:127.0.0.1,DNS:localhost")
        # Only for a name the URL does not carry: needs tls.serverName.
        self.leaf("named", "backend-ca", "serverAuth", "DNS:prom.backend.test")
        self.leaf("rogue", "rogue-ca", "serverAuth", "IP:127.0.0.1,DNS:localhost")
        self.leaf("client", "backend-ca", "clientAuth", None)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def key(self, name):
        self.run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", self.path(name + ".key"))

    def ca(self, name):
        self.key(name)
        self.run("req", "-new", "-x509", "-key", self.path(name + ".key"), "-subj", f"/CN={name}",
                 "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", self.path(name + ".crt"))

    def leaf(self, name, ca, usage, san):
        self.key(name)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write(f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
        self.run("req", "-new", "-key", self.path(name + ".key"), "-subj", f"/CN={name}",
                 "-out", self.path(name + ".csr"))
        self.run("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path(ca + ".crt"),
                 "-CAkey", self.path(ca + ".key"), "-CAcreateserial", "-days", "2", "-sha256",
                 "-extfile", ext, "-out", self.path(name + ".crt"))


# ---- the backend stand-in ----

class BackendProxy:
    """A reverse proxy in front of the real Prometheus on loopback.
    `check(request)` returns None to forward or (status, text) to refuse;
    every request is recorded (method, path, headers, SNI, client CN)."""

    def __init__(self, tls_cert=None, client_ca=None, prefix=""):
        self.prefix = prefix
        self.check = lambda request: None
        self.records = []
        self.lock = threading.Lock()
        self.last_sni = None
        self.handshake_errors = []
        self.context = None
        if tls_cert:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(tls_cert + ".crt", tls_cert + ".key")
            self.context.sni_callback = self.remember_sni
            if client_ca:
                self.context.verify_mode = ssl.CERT_REQUIRED
                self.context.load_verify_locations(client_ca)
        proxy = self

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                if not proxy.context:
                    super().finish_request(request, client_address)
                    return
                tls = proxy.context.wrap_socket(request, server_side=True,
                                                do_handshake_on_connect=False)
                try:
                    tls.do_handshake()
                except (ssl.SSLError, OSError) as e:
                    with proxy.lock:
                        proxy.handshake_errors.append(str(e))
                    # Drain before closing, as a real server's lingering
                    # close does: closing on unread data would send a reset
                    # that destroys the TLS alert on its way to the client.
                    raw = socket.socket(fileno=tls.detach())
                    raw.settimeout(2)
                    try:
                        while raw.recv(65536):
                            pass
                    except OSError:
                        pass
                    raw.close()
                    return
                try:
                    super().finish_request(tls, client_address)
                finally:
                    tls.close()  # it owns the connection now

        self.server = Server(("127.0.0.1", 0), ProxyHandler)
        self.server.proxy = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def remember_sni(self, sock, name, context):
        self.last_sni = name

    def url(self, host="127.0.0.1"):
        scheme = "https" if self.context else "http"
        return f"{scheme}://{host}:{self.port}{self.prefix}"

    def requests(self):
        with self.lock:
            return list(self.records)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.forward(None)

    def do_POST(self):
        self.forward(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def reply(self, code, body, content_type="text/plain; charset=utf-8"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        proxy = self.server.proxy
        peer = self.connection.getpeercert() if proxy.context else None
        request = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                   "sni": proxy.last_sni, "body": body,
                   "client_cn": dict(x[0] for x in peer["subject"]).get("commonName") if peer else None}
        with proxy.lock:
            proxy.records.append(request)
        refused = proxy.check(request)
        if refused:
            self.reply(refused[0], refused[1].encode())
            return
        if not self.path.startswith(proxy.prefix + "/"):
            self.reply(404, b"404 page not found\n")
            return
        upstream = urllib.request.Request(ENV["PROM_URL"] + self.path[len(proxy.prefix):],
                                          data=body, method=self.command)
        if body is not None:
            upstream.add_header("Content-Type", self.headers.get("Content-Type", ""))
        try:
            with urllib.request.urlopen(upstream, timeout=10) as r:
                code, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, data = e.code, e.read()
        self.reply(code, data, "application/json")


# ---- smi-metrics with a chosen prometheus section ----

class SmiServer:
    """An smi-metrics process whose prometheus section is `prometheus_yaml`
    (lines indented by two spaces)."""

    def __init__(self, prometheus_yaml):
        self.dir = tempfile.mkdtemp(prefix="smi-backend.")
        api, admin = free_port(), free_port()
        self.url, self.admin = f"https://127.0.0.1:{api}", f"http://127.0.0.1:{admin}"
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(config_text(prometheus_yaml, api, admin))
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([BIN, "--config", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise AssertionError(f"smi-metrics exited {self.proc.returncode}: {self.log_text()}")
            try:
                with urllib.request.urlopen(self.admin + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("smi-metrics did not become ready: " + self.log_text())

    def get(self, path):
        """(status code, parsed JSON body)"""
        code, _, body = https(path, base=self.url)
        return code, json.loads(body)

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        text = self.log_text()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc, text


def run_with_config(prometheus_yaml, *args):
    """(exit code, stderr) of smi-metrics with that prometheus section."""
    with tempfile.TemporaryDirectory(prefix="smi-check.") as directory:
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as f:
            f.write(config_text(prometheus_yaml))
        p = subprocess.run([BIN, "--config", path, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


PKI = None
WORK = None


def setUpModule():
    global PKI, WORK
    WORK = tempfile.mkdtemp(prefix="smi-backends.")
    PKI = Pki(WORK)


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


def write_secret(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def replace_secret(name, text):
    """Atomically, as the kubelet updates a mounted Secret."""
    staged = write_secret(name + ".staged", text)
    os.rename(staged, os.path.join(WORK, name))


class SecuredBackends(unittest.TestCase):
    """Each option of the prometheus section against a real HTTPS server."""

    def run_server(self, prometheus_yaml):
        server = SmiServer(prometheus_yaml)
        self.addCleanup(self.stop_server, server)
        return server

    def stop_server(self, server):
        rc, log = server.stop()
        self.assertEqual(rc, 0, log[-2000:])
        self.assertNotIn("Sanitizer", log)
        for secret in self.secrets:
            self.assertNotIn(secret, log, "a secret reached the log")

    def proxy(self, **kwargs):
        proxy = BackendProxy(**kwargs)
        self.addCleanup(proxy.stop)
        return proxy

    def setUp(self):
        self.secrets = []

    def test_bearer_token_rotation_without_restart(self):
        proxy = self.proxy(tls_cert=PKI.path("server"))
        accepted = {"token": "token-one-4f9a"}
        self.secrets += ["token-one-4f9a", "token-two-81c3", "token-three-77d0"]
        proxy.check = lambda r: (None if r["headers"].get("Authorization") == "Bearer " + accepted["token"]
                                 else (401, "unauthorized\n"))
        token_file = write_secret("token", "token-one-4f9a\n")
        server = self.run_server(f'  url: "{proxy.url()}"\n  timeout: 5s\n'
                                 f'  bearerTokenFile: "{token_file}"\n'
                                 f'  tls: {{caFile: "{PKI.path("backend-ca.crt")}"}}')
        code, doc = server.get(WEB)
        self.assertEqual(code, 200, doc)
        self.assertEqual(proxy.requests()[-1]["headers"]["Authorization"], "Bearer token-one-4f9a")

        # The backend switches to a new token; the file is rotated in place
        # by the kubelet: smi-metrics keeps running and uses the new one.
        accepted["token"] = "token-two-81c3"
        replace_secret("token", "token-two-81c3\n")
        code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/emoji")
        self.assertEqual(code, 200, doc)
        self.assertEqual(proxy.requests()[-1]["headers"]["Authorization"], "Bearer token-two-81c3")
        self.assertTrue(all(r["headers"]["Authorization"] == "Bearer token-two-81c3"
                            for r in proxy.requests()[-2:]), "both queries of the request")

        # The backend moves on but the file does not: a clear 502.
        accepted["token"] = "token-three-77d0"
        code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/voting")
        self.assertEqual((code, doc["reason"]), (502, "BadGateway"), doc)
        self.assertIn("Prometheus answered HTTP 401: unauthorized; check prometheus.bearerTokenFile",
                      doc["message"])
        # Rewritten in place (not renamed) this time.
        write_secret("token", "token-three-77d0")
        code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/voting?t=31s")
        self.assertEqual(code, 200, doc)

        # A missing file is a 503 that names it and never the old token.
        os.unlink(token_file)
        code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/vote-bot")
        self.assertEqual((code, doc["reason"]), (503, "ServiceUnavailable"), doc)
        self.assertIn(f"bearer token file {token_file}: cannot open: No such file or directory",
                      doc["message"])
        self.assertNotIn("token-three", doc["message"])

    def test_basic_auth_from_files(self):
        proxy = self.proxy(tls_cert=PKI.path("server"))
        self.secrets += ["pw-Zq81x"]
        want = "Basic " + base64.b64encode(b"smi-reader:pw-Zq81x").decode()
        proxy.check = lambda r: None if r["headers"].get("Authorization") == want else (401, "unauthorized")
        user = write_secret("user", "smi-reader\n")
        password = write_secret("password", "pw-Zq81x\n")
        server = self.run_server(f'  url: "{proxy.url()}"\n'
                                 f'  basicAuth: {{usernameFile: "{user}", passwordFile: "{password}"}}\n'
                                 f'  tls: {{caFile: "{PKI.path("backend-ca.crt")}"}}')
        code, doc = server.get(WEB)
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc["kind"], "TrafficMetrics")
        self.assertEqual(len(proxy.requests()), 2)

    def test_tenant_header_path_prefix_and_post(self):
        # Like Mimir's query path: /prometheus prefix, X-Scope-OrgID required.
        proxy = self.proxy(tls_cert=PKI.path("server"), prefix="/prometheus")
        proxy.check = lambda r: None if r["headers"].get("X-Scope-OrgID") == "team-a" else (401, "no org id\n")
        server = self.run_server(f'  url: "{proxy.url()}/"\n  method: post\n'
                                 f'  headers:\n    X-Scope-OrgID: team-a\n    X-Extra: "42"\n'
                                 f'  tls: {{caFile: "{PKI.path("backend-ca.crt")}"}}')
        code, doc = server.get(f"{WEB}/edges")
        self.assertEqual(code, 200, doc)
        got = proxy.requests()
        self.assertEqual(len(got), 2)
        for r in got:
            self.assertEqual((r["method"], r["path"]), ("POST", "/prometheus/api/v1/query"))
            self.assertEqual(r["headers"]["X-Scope-OrgID"], "team-a")
            self.assertEqual(r["headers"]["X-Extra"], "42")
            self.assertEqual(r["headers"]["Content-Type"], "application/x-www-form-urlencoded")
            self.assertIn(b"query=", r["body"])
            self.assertNotIn("Authorization", r["headers"])

    def test_missing_tenant_header_is_a_clear_502(self):
        proxy = self.proxy(prefix="/prometheus")
        proxy.check = lambda r: None if r["headers"].get("X-Scope-OrgID") else (401, "no org id\n")
        server = self.run_server(f'  url: "{proxy.url()}"')
        code, doc = server.get(WEB)
        self.assertEqual((code, doc["reason"]), (502, "BadGateway"), doc)
        self.assertIn("Prometheus answered HTTP 401: no org id; check prometheus.bearerTokenFile, "
                      "basicAuth and headers", doc["message"])

    def test_tls_verification_failure_is_a_clear_502(self):
        proxy = self.proxy(tls_cert=PKI.path("rogue"))
        server = self.run_server(f'  url: "{proxy.url()}"\n'
                                 f'  tls: {{caFile: "{PKI.path("backend-ca.crt")}"}}')
        code, doc = server.get(WEB)
        self.assertEqual((code, doc["reason"]), (502, "BadGateway"), doc)
        self.assertIn(f"TLS with Prometheus at {proxy.url()} failed: certificate verification failed",
                      doc["message"])
        self.assertEqual(proxy.requests(), [], "nothing was sent to the unverified server")
        self.assertTrue(any("unknown ca" in e for e in proxy.handshake_errors), proxy.handshake_errors)
        # Without caFile the system CAs do not know backend-ca either.
        server = self.run_server(f'  url: "{proxy.url()}"')
        code, doc = server.get(WEB)
        self.assertEqual(code, 502, doc)
        self.assertIn("certificate verification failed", doc["message"])

    def test_insecure_skip_verify_accepts_any_certificate_and_warns(self):
        proxy = self.proxy(tls_cert=PKI.path("rogue"))
        server = self.run_server(f'  url: "{proxy.url()}"\n  tls: {{insecureSkipVerify: true}}')
        code, doc = server.get(WEB)
        self.assertEqual(code, 200, doc)
        self.assertIn("TLS verification of Prometheus at", server.log_text())

    def test_server_name_for_sni_and_verification(self):
        # The certificate names prom.backend.test only; the URL says 127.0.0.1.
        proxy = self.proxy(tls_cert=PKI.path("named"))
        ca = PKI.path("backend-ca.crt")
        server = self.run_server(f'  url: "{proxy.url()}"\n  tls: {{caFile: "{ca}"}}')
        code, doc = server.get(WEB)
        self.assertEqual(code, 502, doc)
        self.assertIn("certificate verification failed", doc["message"])
        server = self.run_server(f'  url: "{proxy.url()}"\n'
                                 f'  tls: {{caFile: "{ca}", serverName: prom.backend.test}}')
        code, doc = server.get(WEB)
        self.assertEqual(code, 200, doc)
        r = proxy.requests()[-1]
        self.assertEqual(r["sni"], "prom.backend.test")
        self.assertEqual(r["headers"]["Host"], f"127.0.0.1:{proxy.port}", "the URL's host travels as Host")

    def test_client_certificate(self):
        ca = PKI.path("backend-ca.crt")
        proxy = self.proxy(tls_cert=PKI.path("server"), client_ca=ca)
        server = self.run_server(f'  url: "{proxy.url()}"\n'
                                 f'  tls:\n    caFile: "{ca}"\n'
                                 f'    certFile: "{PKI.path("client.crt")}"\n'
                                 f'    keyFile: "{PKI.path("client.key")}"')
        code, doc = server.get(WEB)
        self.assertEqual(code, 200, doc)
        self.assertEqual(proxy.requests()[-1]["client_cn"], "client")
        # Without one the backend refuses the handshake: an error, not an answer.
        server = self.run_server(f'  url: "{proxy.url()}"\n  tls: {{caFile: "{ca}"}}')
        code, doc = server.get(WEB)
        self.assertEqual((code, doc["reason"]), (502, "BadGateway"), doc)
        self.assertIn(f"TLS with Prometheus at {proxy.url()} failed: the server refused the connection "
                      "(it wants a client certificate: prometheus.tls.certFile)", doc["message"])
        self.assertTrue(proxy.handshake_errors, "the backend saw no certificate")

    def test_config_errors_name_file_line_key(self):
        cases = [
            ('  url: "http://alice:hunter2@prom:9090"', "prometheus.url: must not contain user:password@"),
            ('  url: "http://prom:9090"\n  headers: {Authorization: "Bearer x"}',
             "prometheus.headers.Authorization: credentials are not taken from headers"),
            ('  url: "http://prom:9090"\n  tls: {caFile: /x}', "prometheus.tls: needs an https://"),
            ('  url: "http://prom:9090"\n  method: PUT', 'prometheus.method: "PUT" is not one of auto, get, post'),
        ]
        for yaml, message in cases:
            rc, err = run_with_config(yaml, "--check-config")
            self.assertEqual(rc, 2, err)
            self.assertIn(message, err)
            self.assertRegex(err, r"config\.yaml:\d+: ")
            self.assertNotIn("hunter2", err)

    def test_unreadable_credentials_stop_the_start(self):
        rc, err = run_with_config(f'  url: "http://127.0.0.1:9"\n  bearerTokenFile: "{WORK}/no-such-token"')
        self.assertEqual(rc, 2, err)
        self.assertIn(f"bearer token file {WORK}/no-such-token: cannot open: No such file or directory", err)


# ---- vmauth, the real authenticating proxy of VictoriaMetrics deployments ----

@unittest.skipUnless(ENV.get("VM_URL") and shutil.which("vmauth"), "no VictoriaMetrics (VM_URL) or vmauth")
class VmauthInFront(unittest.TestCase):
    """VictoriaMetrics as often deployed: vmauth terminates TLS and checks a
    bearer token per user.  The token is rotated on both sides while
    smi-metrics runs."""

    def start_vmauth(self, config):
        port = free_port()
        log = open(os.path.join(WORK, "vmauth.log"), "a")
        self.addCleanup(log.close)
        proc = subprocess.Popen(["vmauth", f"-auth.config={config}", f"-httpListenAddr=127.0.0.1:{port}",
                                 "-tls", f"-tlsCertFile={PKI.path('server.crt')}",
                                 f"-tlsKeyFile={PKI.path('server.key')}"], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (proc.terminate(), proc.wait(timeout=30)))
        return proc, f"https://127.0.0.1:{port}"

    def vmauth_answers(self, url, token):
        ctx = ssl.create_default_context(cafile=PKI.path("backend-ca.crt"))
        req = urllib.request.Request(url + "/api/v1/query?query=1", headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def wait_until(self, predicate, what):
        for _ in range(100):
            if predicate():
                return
            time.sleep(0.1)
        self.fail(what)

    def test_bearer_token_and_tls_through_vmauth(self):
        users = 'users:\n- bearer_token: "{}"\n  url_prefix: "' + ENV["VM_URL"] + '"\n'
        config = write_secret("vmauth.yml", users.format("vm-token-1"))
        proc, url = self.start_vmauth(config)
        self.wait_until(lambda: self.vmauth_answers(url, "vm-token-1") == 200, "vmauth did not start")
        token_file = write_secret("vm-token", "vm-token-1\n")
        server = SmiServer(f'  url: "{url}"\n  bearerTokenFile: "{token_file}"\n'
                           f'  tls: {{caFile: "{PKI.path("backend-ca.crt")}"}}')
        try:
            code, doc = server.get(WEB)
            self.assertEqual(code, 200, doc)
            self.assertGreater(quantity(metrics_of(doc)["success_count"]["value"]), 0)

            # vmauth moves to a new token (config reloaded on SIGHUP) ...
            write_secret("vmauth.yml", users.format("vm-token-2"))
            proc.send_signal(signal.SIGHUP)
            self.wait_until(lambda: self.vmauth_answers(url, "vm-token-2") == 200, "vmauth did not reload")
            code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/emoji")
            self.assertEqual((code, doc.get("reason")), (502, "BadGateway"), doc)
            # vmauth quotes the token it refused; smi-metrics masks it.
            self.assertIn('Prometheus answered HTTP 400: cannot find the provided auth token '
                          '"Bearer **********"', doc["message"])
            # ... and the Secret follows: no restart needed.
            replace_secret("vm-token", "vm-token-2\n")
            code, doc = server.get(f"{PREFIX}/namespaces/emojivoto/deployments/voting")
            self.assertEqual(code, 200, doc)
        finally:
            rc, log = server.stop()
        self.assertEqual(rc, 0, log[-2000:])
        self.assertNotIn("vm-token-", log)


# ---- Prometheus and VictoriaMetrics agree ----

def bucket_index(value_ms):
    for i, bound in enumerate(LINKERD_BOUNDS):
        if value_ms <= bound:
            return i
    return len(LINKERD_BOUNDS) - 1


@unittest.skipUnless(ENV.get("VM_SMI_URL"), "no VictoriaMetrics-backed smi-metrics (VM_SMI_URL)")
class PrometheusAndVictoriaMetricsAgree(unittest.TestCase):
    """The same request to the smi-metrics on Prometheus and the one on
    VictoriaMetrics (both scrape the same simulator every SCRAPE_INTERVAL):
    counts within one scrape interval of traffic, latencies within one
    bucket.  VictoriaMetrics' increase() does not extrapolate, so counts
    are close but not equal."""

    def tearDown(self):
        print(file=sys.stderr)  # ends the numbers printed by compare()

    def both(self, path):
        """The two answers, evaluated at the same second (retried when a
        second boundary fell between them)."""
        for _ in range(5):
            with ThreadPoolExecutor(2) as pool:
                prom, vm = pool.map(lambda base: https(path, base=base),
                                    (ENV["SMI_URL"], ENV["VM_SMI_URL"]))
            self.assertEqual(prom[0], 200, prom[2])
            self.assertEqual(vm[0], 200, vm[2])
            prom, vm = json.loads(prom[2]), json.loads(vm[2])
            stamp = lambda d: d["timestamp"] if d["kind"] == "TrafficMetrics" else \
                (d["items"][0]["timestamp"] if d["items"] else None)
            if stamp(prom) == stamp(vm):
                return prom, vm
            time.sleep(0.3)
        return prom, vm

    def compare(self, label, prom_item, vm_item, ok_rate, bad_rate):
        p, v = metrics_of(prom_item), metrics_of(vm_item)
        for name, rate in (("success_count", ok_rate), ("failure_count", bad_rate)):
            pv, vv = quantity(p[name]["value"]), quantity(v[name]["value"])
            tol = count_tolerance(rate)
            print(f"\n  {label} {name}: prometheus {pv:g}, victoriametrics {vv:g} (tolerance {tol:g})",
                  end="", file=sys.stderr)
            self.assertAlmostEqual(pv, vv, delta=tol, msg=f"{label} {name}")
        for name in ("p50_response_latency", "p90_response_latency", "p99_response_latency"):
            pv, vv = quantity(p[name]["value"]), quantity(v[name]["value"])
            print(f"\n  {label} {name}: prometheus {pv:g} ms, victoriametrics {vv:g} ms",
                  end="", file=sys.stderr)
            self.assertLessEqual(abs(bucket_index(pv) - bucket_index(vv)), 1, f"{label} {name}: {pv} vs {vv}")

    def test_deployment(self):
        prom, vm = self.both(WEB)
        callers = edges_where(lambda e: ref(e["callee"]) == ("emojivoto", "Deployment", "web"))
        self.compare("deployments/web", prom, vm, sum(map(success_rate, callers)),
                     sum(map(failure_rate, callers)))

    def test_statefulset(self):
        prom, vm = self.both(f"{PREFIX}/namespaces/datastore/statefulsets/vote-db")
        callers = edges_where(lambda e: (e["callee"]["namespace"], e["callee"]["name"])
                              == ("datastore", "vote-db"))
        self.compare("statefulsets/vote-db", prom, vm, sum(map(success_rate, callers)),
                     sum(map(failure_rate, callers)))

    def test_edges(self):
        prom, vm = self.both(f"{WEB}/edges")
        key = lambda i: (i["edge"]["direction"], i["edge"]["resource"]["name"])
        prom_items = {key(i): i for i in prom["items"]}
        vm_items = {key(i): i for i in vm["items"]}
        self.assertEqual(sorted(prom_items), sorted(vm_items))
        web = ("emojivoto", "Deployment", "web")
        for (direction, peer), item in prom_items.items():
            edges = edges_where(lambda e: (direction == "to" and ref(e["caller"]) == web
                                           and e["callee"]["name"] == peer)
                                or (direction == "from" and ref(e["callee"]) == web
                                    and e["caller"]["name"] == peer))
            self.compare(f"web/edges {direction} {peer}", item, vm_items[(direction, peer)],
                         sum(map(success_rate, edges)), sum(map(failure_rate, edges)))

    def test_lists_name_the_same_resources(self):
        for path in (f"{PREFIX}/namespaces/emojivoto/deployments", f"{PREFIX}/namespaces",
                     f"{PREFIX}/namespaces/emojivoto/pods"):
            prom, vm = self.both(path)
            names = lambda d: [(i["metadata"].get("namespace"), i["metadata"]["name"]) for i in d["items"]]
            self.assertEqual(names(prom), names(vm), path)


if __name__ == "__main__":
    unittest.main()

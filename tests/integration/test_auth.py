"""Kubernetes-grade authentication and authorization, end to end: the
kube-apiserver test double (tests/kube-double) serves the
extension-apiserver-authentication ConfigMap, TokenReview and
SubjectAccessReview and proxies like the aggregator; a second smi-metrics,
in in-cluster mode against it, is exercised through the double with the
real kubectl, and directly with client certificates, forged headers and
tokens.  Policy: alice may get/list metrics in emojivoto only, bob nothing."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from smi import CERTS, ENV, PREFIX, free_port
from smi import http as http_get

BUILD = ENV.get("SMI_BUILD", "")
REPO = ENV.get("SMI_REPO", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(BUILD, "smi-metrics")
ADAPTERS = os.path.join(BUILD, "adapters", "linkerd", ".libs")
DOUBLE = os.path.join(REPO, "tests", "kube-double", "double.py")
WEB = f"{PREFIX}/namespaces/emojivoto/deployments/web"


def wait_port(port, seconds=15):
    for _ in range(int(seconds * 10)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} did not open")


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def new_serving_pair(directory, name):
    """A fresh serving certificate (new serial) from the test serving CA."""
    key, csr, crt = (os.path.join(directory, name + ext) for ext in (".key", ".csr", ".crt"))
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,"
                "DNS:smi-metrics.smi-metrics.svc\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=smi-metrics.smi-metrics.svc", "-out", csr)
    serial = "0x" + os.urandom(16).hex()
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(CERTS, "serving-ca.crt"), "-CAkey",
            os.path.join(CERTS, "serving-ca.key"), "-set_serial", serial, "-days", "1", "-sha256",
            "-extfile", ext, "-out", crt)
    return crt, key, serial[2:].upper().lstrip("0")


def replace_file(src, dst):
    """Write next to the target, then rename into place (atomic)."""
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def served_serial(url):
    host = url.split("//")[1]
    p = subprocess.run(["openssl", "s_client", "-connect", host, "-CAfile",
                        os.path.join(CERTS, "serving-ca.crt")], input="", capture_output=True, text=True, timeout=20)
    pem = p.stdout[p.stdout.index("-----BEGIN CERTIFICATE-----"):p.stdout.index("-----END CERTIFICATE-----") + 25]
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True, text=True).stdout
    return out.strip().split("=")[1].lstrip("0")


class Double:
    def __init__(self, upstream_port):
        self.api_port, self.proxy_port = free_port(), free_port()
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(["python3", DOUBLE, "--certs", CERTS, "--api-port", str(self.api_port),
                                      "--proxy-port", str(self.proxy_port), "--upstream-port", str(upstream_port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.api_port)
        wait_port(self.proxy_port)
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.proxy_url = f"https://127.0.0.1:{self.proxy_port}"

    def call(self, method, path, doc=None):
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return json.load(r)

    def stats(self):
        return self.call("GET", "/_double/stats")

    def sars(self):
        return self.call("GET", "/_double/sars")

    def configure(self, **settings):
        return self.call("POST", "/_double/config", settings)

    def reset(self):
        self.call("POST", "/_double/reset", {})
        self.call("POST", "/_double/config", {"defaults": True})

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def request(url, path, cert=None, headers=None, method="GET"):
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(CERTS, cert + ".crt"), os.path.join(CERTS, cert + ".key"))
    req = urllib.request.Request(url + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def write_kubeconfig(path, server, token):
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}", certificate-authority: "{CERTS}/serving-ca.crt"}}
users:
- name: u
  user: {{token: "{token}"}}
contexts:
- name: c
  context: {{cluster: c, user: u}}
current-context: c
""")


class AuthStack(unittest.TestCase):
    """One double and one smi-metrics in in-cluster mode for the class."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.api_port, cls.admin_port = free_port(), free_port()
        cls.url = f"https://127.0.0.1:{cls.api_port}"
        cls.double = Double(cls.api_port)
        # The serving pair is a copy, so rotating it touches nobody else.
        cls.cert = os.path.join(cls.dir, "tls.crt")
        cls.key = os.path.join(cls.dir, "tls.key")
        shutil.copyfile(os.path.join(CERTS, "server.crt"), cls.cert)
        shutil.copyfile(os.path.join(CERTS, "server.key"), cls.key)
        cls.token_file = os.path.join(cls.dir, "token")
        with open(cls.token_file, "w") as f:
            f.write("smi-sa-token\n")
        cls.config = os.path.join(cls.dir, "config.yaml")
        with open(cls.config, "w") as f:
            f.write(f"""server:
  listen: "127.0.0.1:{cls.api_port}"
  tlsCertFile: "{cls.cert}"
  tlsKeyFile: "{cls.key}"
  certReloadInterval: 1s
kubernetes:
  inCluster: true
  caFile: "{CERTS}/serving-ca.crt"
  tokenFile: "{cls.token_file}"
  tokenRefresh: 1s
auth:
  refreshInterval: 1s
authorization:
  mode: Webhook
admin:
  listen: "127.0.0.1:{cls.admin_port}"
prometheus:
  url: "{ENV['PROM_URL']}"
adapter:
  name: linkerd
  adaptersDir: "{ADAPTERS}"
""")
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(cls.double.api_port))
        cls.log_path = os.path.join(cls.dir, "log")
        cls.log = open(cls.log_path, "w+")
        cls.proc = subprocess.Popen([BIN, "--config", cls.config], stdout=cls.log, stderr=subprocess.STDOUT, env=env)
        for _ in range(150):
            try:
                if http_get(f"http://127.0.0.1:{cls.admin_port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            cls.tearDownClass()
            raise AssertionError("smi-metrics against the double did not become ready")
        for user in ("alice", "bob", "nobody"):
            write_kubeconfig(os.path.join(cls.dir, f"{user}-proxy.kubeconfig"), cls.double.proxy_url, f"{user}-token")
            write_kubeconfig(os.path.join(cls.dir, f"{user}-direct.kubeconfig"), cls.url, f"{user}-token")

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.terminate()
            cls.proc.wait(timeout=30)
        cls.double.stop()
        cls.log.seek(0)
        text = cls.log.read()
        shutil.rmtree(cls.dir, ignore_errors=True)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError("sanitizer report in the auth server's log:\n" + text[-4000:])

    def setUp(self):
        self.double.reset()

    def kubectl(self, user, path, via="proxy"):
        p = subprocess.run(["kubectl", "--kubeconfig", os.path.join(self.dir, f"{user}-{via}.kubeconfig"),
                            "get", "--raw", path], capture_output=True, text=True, timeout=90)
        return p.returncode, p.stdout, p.stderr.strip()

    def server_log(self):
        with open(self.log_path) as f:
            return f.read()

    def last_sar(self):
        sars = self.double.sars()
        self.assertTrue(sars, "no SubjectAccessReview was sent")
        return sars[-1]["spec"]


class ThroughTheAggregator(AuthStack):
    def test_allowed_user_reads_emojivoto(self):
        rc, out, err = self.kubectl("alice", WEB)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc["kind"], doc["resource"]["name"]), ("TrafficMetrics", "web"))
        spec = self.last_sar()
        self.assertEqual(spec["resourceAttributes"],
                         {"namespace": "emojivoto", "verb": "get", "group": "metrics.smi-spec.io",
                          "version": "v1alpha1", "resource": "deployments", "name": "web"})
        # The identity the aggregator forwarded, header by header.
        self.assertEqual(spec["user"], "alice")
        self.assertEqual(spec["groups"], ["sre", "system:authenticated"])
        self.assertEqual(spec["extra"], {"scopes.example.com/team": ["payments"]})
        self.assertEqual(spec["uid"], "uid-alice")

    def test_other_user_is_forbidden_by_us(self):
        self.double.configure(proxy_authorize=False)  # so the denial is ours
        rc, _, err = self.kubectl("bob", WEB)
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'Error from server (Forbidden): deployments.metrics.smi-spec.io "web" is forbidden: '
                              'User "bob" cannot get resource "deployments" in API group "metrics.smi-spec.io" '
                              'in the namespace "emojivoto"')
        self.assertEqual(self.double.stats()["proxy_denied"], 0)
        self.assertEqual(self.double.stats()["sars"], 1)

    def test_wrong_namespace_is_forbidden(self):
        self.double.configure(proxy_authorize=False)
        rc, _, err = self.kubectl("alice", f"{PREFIX}/namespaces/datastore/statefulsets")
        self.assertEqual(rc, 1)
        self.assertEqual(err, "Error from server (Forbidden): statefulsets.metrics.smi-spec.io is forbidden: "
                              'User "alice" cannot list resource "statefulsets" in API group "metrics.smi-spec.io" '
                              'in the namespace "datastore"')

    def test_our_403_matches_the_aggregators(self):
        for path in (WEB, f"{WEB}/edges", f"{PREFIX}/namespaces/emojivoto/edges", f"{PREFIX}/pods"):
            self.double.configure(proxy_authorize=True)
            theirs = self.kubectl("bob", path)
            self.double.configure(proxy_authorize=False)
            ours = self.kubectl("bob", path)
            self.assertEqual(ours, theirs, path)
            self.assertIn("Forbidden", ours[2])

    def test_403_status_body(self):
        self.double.configure(proxy_authorize=False)
        code, body = request(self.url, f"{WEB}/edges", cert="front-proxy-client",
                             headers={"X-Remote-User": "bob", "X-Remote-Group": "dev"})
        self.assertEqual(code, 403)
        self.assertEqual(json.loads(body), {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'deployments.metrics.smi-spec.io "web" is forbidden: User "bob" cannot get resource '
                       '"deployments/edges" in API group "metrics.smi-spec.io" in the namespace "emojivoto"',
            "reason": "Forbidden", "details": {"name": "web", "group": "metrics.smi-spec.io", "kind": "deployments"},
            "code": 403})


class Authentication(AuthStack):
    def test_bad_token_is_401(self):
        rc, _, err = self.kubectl("nobody", WEB, via="direct")
        self.assertEqual((rc, err), (1, "error: You must be logged in to the server (Unauthorized)"))
        self.assertEqual(self.double.stats()["tokenreviews"], 1)
        self.assertIn("invalid bearer token", self.server_log())

    def test_good_token_directly(self):
        rc, out, err = self.kubectl("alice", WEB, via="direct")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["resource"]["name"], "web")
        self.assertEqual(self.last_sar()["user"], "alice")

    def test_forged_remote_user_without_front_proxy_cert_is_ignored(self):
        forged = {"X-Remote-User": "alice", "X-Remote-Group": "system:masters"}
        code, body = request(self.url, WEB, cert=None, headers=forged)
        self.assertEqual(code, 403, body)
        self.assertIn('User "system:anonymous" cannot get', json.loads(body)["message"])
        self.assertEqual(self.last_sar()["groups"], ["system:unauthenticated"])
        # A client-CA certificate with the same headers is its CN, nothing else.
        code, body = request(self.url, WEB, cert="client-bob", headers=forged)
        self.assertEqual(code, 403, body)
        self.assertEqual((self.last_sar()["user"], self.last_sar()["groups"]), ("bob", ["system:authenticated"]))

    def test_wrong_ca_and_wrong_cn_are_refused(self):
        for cert in ("rogue-client", "wrong-cn"):
            code, body = request(self.url, WEB, cert=cert, headers={"X-Remote-User": "alice"})
            self.assertEqual(code, 401, cert)
            self.assertEqual(json.loads(body), {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                "status": "Failure", "message": "Unauthorized",
                                                "reason": "Unauthorized", "code": 401})
        self.assertEqual(self.double.stats()["sars"], 0)
        log = self.server_log()
        self.assertIn("not signed by the requestheader CA", log)
        self.assertIn("cn=not-allowed is not in the allowed list", log)

    def test_client_certificate_user(self):
        code, body = request(self.url, WEB, cert="client-alice")
        self.assertEqual(code, 200, body)
        spec = self.last_sar()
        self.assertEqual((spec["user"], spec["groups"]), ("alice", ["smi-readers", "system:authenticated"]))
        (cred,) = spec["extra"]["authentication.kubernetes.io/credential-id"]
        self.assertRegex(cred, r"^X509SHA256=[0-9a-f]{64}$")

    def test_header_parsing_through_the_front_proxy(self):
        self.double.configure(proxy_authorize=False)
        headers = [("X-Remote-User", "carol"), ("X-Remote-Group", "a,b"), ("X-Remote-Group", "c"),
                   ("X-Remote-Extra-Scopes.Example.com%2Fteam", "payments"), ("X-Remote-Uid", "u-1")]
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
        ctx.load_cert_chain(os.path.join(CERTS, "front-proxy-client.crt"), os.path.join(CERTS, "front-proxy-client.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, context=ctx, timeout=30)
        conn.putrequest("GET", WEB)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        self.assertEqual(conn.getresponse().status, 403)
        conn.close()
        spec = self.last_sar()
        self.assertEqual(spec["groups"], ["a,b", "c", "system:authenticated"])
        self.assertEqual(spec["extra"], {"scopes.example.com/team": ["payments"]})
        self.assertEqual(spec["uid"], "u-1")

    def test_impersonation_is_refused(self):
        code, body = request(self.url, WEB, cert="client-alice", headers={"Impersonate-User": "admin"})
        self.assertEqual(code, 403)
        self.assertIn("impersonation is not supported", json.loads(body)["message"])

    def test_token_review_failures_are_401_and_not_cached(self):
        for _ in range(2):
            code, _ = request(self.url, WEB, headers={"Authorization": "Bearer error-token"})
            self.assertEqual(code, 401)
        self.assertEqual(self.double.stats()["tokenreviews"], 2)


class Authorization(AuthStack):
    def test_caches_cut_review_calls(self):
        for _ in range(3):
            code, _ = request(self.url, WEB, headers={"Authorization": "Bearer alice-token"})
            self.assertEqual(code, 200)
        stats = self.double.stats()
        self.assertEqual((stats["tokenreviews"], stats["sars"]), (1, 1))
        # Denials are cached too, under their own key.
        for _ in range(3):
            self.assertEqual(request(self.url, WEB, headers={"Authorization": "Bearer bob-token"})[0], 403)
        # A plainly unauthenticated token (no error) is cached like a success.
        for _ in range(2):
            self.assertEqual(request(self.url, WEB, headers={"Authorization": "Bearer revoked-token"})[0], 401)
        stats = self.double.stats()
        self.assertEqual((stats["tokenreviews"], stats["sars"]), (3, 2))
        # Another path is another question.
        self.assertEqual(request(self.url, f"{WEB}/edges", headers={"Authorization": "Bearer alice-token"})[0], 200)
        self.assertEqual(self.double.stats()["sars"], 3)

    def test_cache_expires(self):
        # Default TTLs are 10 s (upstream): a repeat after that asks again.
        request(self.url, f"{PREFIX}/pods", cert="client-alice")
        request(self.url, f"{PREFIX}/pods", cert="client-alice")
        self.assertEqual(self.double.stats()["sars"], 1)
        time.sleep(10.5)
        request(self.url, f"{PREFIX}/pods", cert="client-alice")
        self.assertEqual(self.double.stats()["sars"], 2)

    def test_sar_attributes_for_every_route(self):
        fp = {"X-Remote-User": "dave"}
        rows = [
            (PREFIX, None, {"path": PREFIX, "verb": "get"}),
            (PREFIX + "/", None, {"path": PREFIX + "/", "verb": "get"}),
            (f"{PREFIX}/namespaces", {"verb": "list", "resource": "namespaces"}, None),
            (f"{PREFIX}/namespaces/emojivoto", {"namespace": "emojivoto", "verb": "get", "resource": "namespaces",
                                                "name": "emojivoto"}, None),
            (f"{PREFIX}/namespaces/emojivoto/edges", {"namespace": "emojivoto", "verb": "list", "resource": "edges"},
             None),
            (f"{PREFIX}/pods", {"verb": "list", "resource": "pods"}, None),
            (f"{PREFIX}/namespaces/emojivoto/deployments", {"namespace": "emojivoto", "verb": "list",
                                                            "resource": "deployments"}, None),
            (WEB, {"namespace": "emojivoto", "verb": "get", "resource": "deployments", "name": "web"}, None),
            (f"{WEB}/edges", {"namespace": "emojivoto", "verb": "get", "resource": "deployments",
                              "subresource": "edges", "name": "web"}, None),
            (f"{PREFIX}/pods?watch=true", {"verb": "watch", "resource": "pods"}, None),
            ("/version", None, {"path": "/version", "verb": "get"}),
            ("/livez/ping", None, {"path": "/livez/ping", "verb": "get"}),
        ]
        for path, resource, non_resource in rows:
            self.double.reset()
            request(self.url, path, cert="front-proxy-client", headers=fp)
            spec = self.last_sar()
            if resource:
                want = dict(resource, group="metrics.smi-spec.io", version="v1alpha1")
                self.assertEqual(spec["resourceAttributes"], want, path)
                self.assertNotIn("nonResourceAttributes", spec)
            else:
                self.assertEqual(spec["nonResourceAttributes"], non_resource, path)
            self.assertEqual(spec["groups"], ["system:authenticated"], path)

    def test_always_allowed_need_no_review(self):
        for path in ("/livez", "/readyz", "/healthz"):
            code, body = request(self.url, path)
            self.assertEqual((code, body), (200, b"ok"), path)
        agg = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
        self.assertEqual(request(self.url, PREFIX, cert="front-proxy-client", headers=agg)[0], 200)
        self.assertEqual(self.double.stats()["sars"], 0)
        # /livez/ping is not on the list: anonymous is reviewed and denied.
        code, body = request(self.url, "/livez/ping")
        self.assertEqual(code, 403)
        self.assertEqual(json.loads(body)["message"],
                         'forbidden: User "system:anonymous" cannot get path "/livez/ping"')
        self.assertEqual(json.loads(body)["details"], {})

    def test_review_failure_is_500(self):
        self.double.configure(sar_mode="error500")
        code, body = request(self.url, f"{PREFIX}/namespaces/emojivoto/pods", cert="client-alice")
        self.assertEqual(code, 500)
        doc = json.loads(body)
        self.assertEqual((doc["reason"], doc["code"]), ("InternalError", 500))
        self.assertEqual(self.double.stats()["sars"], 5)  # retried as client-go does
        # Failures are not cached: once the authorizer is back, it is asked.
        self.double.configure(sar_mode="normal")
        self.assertEqual(request(self.url, f"{PREFIX}/namespaces/emojivoto/pods", cert="client-alice")[0], 200)


class Reloads(AuthStack):
    def test_configmap_is_re_read(self):
        self.double.configure(configmap_data={"requestheader-allowed-names": json.dumps(["someone-else"])})
        deadline = time.time() + 10
        while time.time() < deadline:
            if request(self.url, PREFIX, cert="front-proxy-client", headers={"X-Remote-User": "alice"})[0] == 401:
                break
            time.sleep(0.3)
        else:
            self.fail("the new allowed names were not picked up")
        self.double.configure(configmap_data={})
        deadline = time.time() + 10
        while request(self.url, PREFIX, cert="front-proxy-client", headers={"X-Remote-User": "alice"})[0] != 200:
            self.assertLess(time.time(), deadline, "the restored ConfigMap was not picked up")
            time.sleep(0.3)

    def test_service_account_token_is_re_read(self):
        self.double.configure(sa_tokens=["smi-sa-token", "smi-sa-token-2"])
        with open(self.token_file + ".new", "w") as f:
            f.write("smi-sa-token-2\n")
        os.replace(self.token_file + ".new", self.token_file)
        try:
            deadline = time.time() + 10
            while True:
                self.double.call("POST", "/_double/reset", {})
                time.sleep(1.5)  # a ConfigMap re-read happens every second
                if self.double.stats()["sa_tokens_seen"][-1:] == ["smi-sa-token-2"]:
                    break
                self.assertLess(time.time(), deadline, "the rotated token was not used")
        finally:
            with open(self.token_file, "w") as f:
                f.write("smi-sa-token\n")

    def test_certificate_rotation_without_failed_requests(self):
        failures, done = [], threading.Event()
        count = [0]

        def hammer():
            while not done.is_set():
                try:
                    code, body = request(self.url, "/livez")
                    if (code, body) != (200, b"ok"):
                        failures.append((code, body))
                except Exception as e:  # noqa: BLE001 - any failure counts
                    failures.append(repr(e))
                count[0] += 1

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            crt, key, serial = new_serving_pair(self.dir, "rotated")
            time.sleep(0.5)
            # Secret volumes change both files; the key lands second here,
            # so the poll may see a mismatched pair for a moment.
            replace_file(crt, self.cert)
            time.sleep(0.3)
            replace_file(key, self.key)
            deadline = time.time() + 10
            while served_serial(self.url) != serial:
                self.assertLess(time.time(), deadline, "the new certificate was not served")
                time.sleep(0.3)
            time.sleep(1)
        finally:
            done.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(count[0], 20)

        # A mismatched pair is refused: the rotated certificate stays.
        other_crt, _, other_serial = new_serving_pair(self.dir, "mismatch")
        replace_file(other_crt, self.cert)
        time.sleep(2.5)
        self.assertEqual(served_serial(self.url), serial)
        self.assertEqual(request(self.url, "/livez")[0], 200)
        self.assertIn("keeping the current serving certificate", self.server_log())


class StartUp(unittest.TestCase):
    """Reading extension-apiserver-authentication at start."""

    @classmethod
    def setUpClass(cls):
        cls.double = Double(free_port())
        cls.dir = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        cls.double.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, kubeconfig_token="smi-sa-token"):
        """Starts smi-metrics in kubeconfig mode; returns the process."""
        kubeconfig = os.path.join(self.dir, "kubeconfig")
        write_kubeconfig(kubeconfig, self.double.url, kubeconfig_token)
        admin = free_port()
        config = os.path.join(self.dir, "config.yaml")
        with open(config, "w") as f:
            f.write(f"""server:
  listen: "127.0.0.1:{free_port()}"
  tlsCertFile: "{CERTS}/server.crt"
  tlsKeyFile: "{CERTS}/server.key"
kubernetes:
  kubeconfig: "{kubeconfig}"
admin:
  listen: "127.0.0.1:{admin}"
prometheus:
  url: "{ENV['PROM_URL']}"
adapter:
  name: linkerd
  adaptersDir: "{ADAPTERS}"
""")
        proc = subprocess.Popen([BIN, "--config", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return proc, admin

    def test_forbidden_configmap_stops_the_start(self):
        self.double.reset()
        self.double.configure(configmap_mode="forbidden")
        proc, _ = self.start()
        out, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2, out)
        self.assertIn("extension-apiserver-authentication-reader", out)
        self.assertIn("HTTP 403", out)

    def test_missing_configmap_runs_without_it(self):
        self.double.reset()
        self.double.configure(configmap_mode="notfound")
        proc, admin = self.start()
        try:
            for _ in range(100):
                try:
                    if http_get(f"http://127.0.0.1:{admin}/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            else:
                self.fail("did not start without the ConfigMap")
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
        self.assertIn("extension-apiserver-authentication not found", out)
        self.assertEqual(self.double.stats()["configmap_gets"], 1)

    def test_kube_apiserver_rejecting_our_token_stops_the_start(self):
        self.double.reset()
        proc, _ = self.start(kubeconfig_token="wrong-sa-token")
        out, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 2, out)
        self.assertIn("HTTP 401", out)

"""Shared helpers for the Helm suite: the real helm binary, parsing of
`helm template` output, openssl, the built server, and a fake kube-apiserver
that answers helm's `lookup` (discovery + GET of Secrets and ConfigMaps)."""
import atexit
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import http.server

import yaml

REPO = os.environ.get("SMI_REPO") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SMI_BUILD", os.path.join(REPO, "build"))
CHART = os.path.join(REPO, "charts", "smi-metrics")
SMI = os.path.join(BUILD, "smi-metrics")
REL, NS = "smi-metrics", "smi-metrics"

_tmp = tempfile.mkdtemp(prefix="smi-helm.")
atexit.register(lambda: shutil.rmtree(_tmp, ignore_errors=True))
FRONT_PROXY_CA = os.path.join(_tmp, "front-proxy-ca.crt")
OTHER_CA = os.path.join(_tmp, "other-ca.crt")


def tmpdir():
    return tempfile.mkdtemp(dir=_tmp)


def run(cmd, check=True, env=None, timeout=300, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def make_ca(path, cn):
    key = path + ".key"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", path, "-subj", "/CN=" + cn, "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])


make_ca(FRONT_PROXY_CA, "front-proxy-ca")
make_ca(OTHER_CA, "other-ca")


def pem(path):
    with open(path) as f:
        return f.read()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def adapter_dir(name):
    """The built adapter's directory, or None when not built."""
    d = os.path.join(BUILD, "adapters", name, ".libs")
    return d if os.path.exists(os.path.join(d, name + ".so")) else None


# --- helm ------------------------------------------------------------------

def helm(*args, check=True, env=None):
    return run(["helm", *args], check=check, env=env)


class Render:
    """Parsed `helm template` output: docs is a list of (source, object)."""

    def __init__(self, text):
        self.text = text
        self.docs = []
        for chunk in text.split("\n---\n"):
            chunk = chunk.strip()
            if chunk.startswith("---"):
                chunk = chunk[3:].lstrip("\n")
            source = ""
            for line in chunk.splitlines():
                if line.startswith("# Source: "):
                    source = line[len("# Source: "):].strip()
                    break
            for obj in yaml.safe_load_all(chunk):
                if obj is not None:
                    self.docs.append((source, obj))

    @property
    def objects(self):
        return [o for _, o in self.docs]

    def all(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind, name=None):
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        if len(found) != 1:
            raise AssertionError(f"expected exactly one {kind} {name or ''}, found {len(found)}: "
                                 f"{[o['metadata']['name'] for o in self.all(kind)]}")
        return found[0]

    def has(self, kind, name=None):
        return any(name is None or o["metadata"]["name"] == name for o in self.all(kind))

    def from_source(self, template):
        return [o for s, o in self.docs if s.endswith("/templates/" + template)]

    def config_text(self):
        cms = [o for o in self.all("ConfigMap") if "config.yaml" in o.get("data", {})]
        assert len(cms) == 1, "one ConfigMap with config.yaml"
        return cms[0]["data"]["config.yaml"]

    def config(self):
        return yaml.safe_load(self.config_text())

    def deployment(self):
        return self.get("Deployment")

    def container(self):
        cs = self.deployment()["spec"]["template"]["spec"]["containers"]
        assert len(cs) == 1
        return cs[0]


def template_args(sets=(), files=(), jsons=(), ca=True, release=REL, namespace=NS, chart=CHART, extra=()):
    args = ["template", release, chart, "--namespace", namespace]
    if ca:
        args += ["--set-file", "auth.requestheaderClientCA=" + FRONT_PROXY_CA]
    for s in sets:
        args += ["--set", s]
    for f in files:
        args += ["--set-file", f]
    for j in jsons:
        args += ["--set-json", j]
    return args + list(extra)


def render(*sets, files=(), jsons=(), ca=True, release=REL, namespace=NS, chart=CHART, extra=(), env=None):
    p = helm(*template_args(sets, files, jsons, ca, release, namespace, chart, extra), env=env)
    return Render(p.stdout)


def render_fails(*sets, files=(), jsons=(), ca=True, extra=(), env=None):
    """Renders expecting failure; returns stderr."""
    p = helm(*template_args(sets, files, jsons, ca, extra=extra), check=False, env=env)
    if p.returncode == 0:
        raise AssertionError(f"helm template {' '.join(sets)} unexpectedly succeeded")
    return p.stderr


# --- openssl -----------------------------------------------------------------

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def x509_text(pem_text):
    d = tmpdir()
    return run(["openssl", "x509", "-noout", "-text", "-in", write(os.path.join(d, "c.pem"), pem_text)]).stdout


def x509_field(pem_text, *opts):
    d = tmpdir()
    return run(["openssl", "x509", "-noout", *opts, "-in", write(os.path.join(d, "c.pem"), pem_text)]).stdout.strip()


def verify(ca_pem, cert_pem, hostname):
    """openssl verify of cert against ca as a TLS server for hostname."""
    d = tmpdir()
    return run(["openssl", "verify", "-purpose", "sslserver", "-verify_hostname", hostname,
                "-CAfile", write(os.path.join(d, "ca.pem"), ca_pem),
                write(os.path.join(d, "c.pem"), cert_pem)], check=False)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held open together while chosen)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# --- a fake kube-apiserver for helm's lookup ----------------------------------

CORE_RESOURCES = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
    "resources": [
        {"name": n, "singularName": s, "namespaced": True, "kind": k, "verbs": ["get", "list"]}
        for n, s, k in (("secrets", "secret", "Secret"), ("configmaps", "configmap", "ConfigMap"),
                        ("services", "service", "Service"), ("serviceaccounts", "serviceaccount", "ServiceAccount"))
    ],
}


class FakeKube:
    """Serves GET /api, /apis, /api/v1 (discovery), /version, and the objects put in it,
    at /api/v1/namespaces/NS/PLURAL/NAME; everything else is 404.  Records
    request paths.  Use as a context manager; `env` points helm at it."""

    def __init__(self):
        self.objects = {}
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                fake.requests.append(path)
                if path == "/api/v1":
                    body, code = CORE_RESOURCES, 200
                elif path == "/api":
                    body, code = {"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                  "serverAddress": "127.0.0.1"}]}, 200
                elif path == "/apis":
                    body, code = {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}, 200
                elif path == "/version":
                    body, code = {"major": "1", "minor": "31", "gitVersion": "v1.31.0"}, 200
                elif path in fake.objects:
                    body, code = fake.objects[path], 200
                else:
                    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "reason": "NotFound", "code": 404, "message": f"{path} not found"}
                    code = 404
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        d = tmpdir()
        self.kubeconfig = write(os.path.join(d, "kubeconfig"), yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.server.server_port}"}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake"}))
        self.env = {"KUBECONFIG": self.kubeconfig, "HELM_CACHE_HOME": os.path.join(d, "cache"),
                    "HELM_CONFIG_HOME": os.path.join(d, "config"), "HELM_DATA_HOME": os.path.join(d, "data")}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def put(self, obj):
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[obj["kind"]]
        md = obj["metadata"]
        self.objects[f"/api/v1/namespaces/{md['namespace']}/{plural}/{md['name']}"] = obj

    def put_auth_configmap(self, ca_pem, allowed_names='["front-proxy-client"]'):
        data = {"client-ca-file": pem(OTHER_CA), "requestheader-client-ca-file": ca_pem}
        if allowed_names is not None:
            data["requestheader-allowed-names"] = allowed_names
        self.put({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
                  "data": data})

    def render(self, *sets, **kw):
        """helm template --dry-run=server against this fake: lookup works."""
        kw.setdefault("ca", False)
        extra = list(kw.pop("extra", ())) + ["--dry-run=server"]
        return render(*sets, extra=extra, env=self.env, **kw)


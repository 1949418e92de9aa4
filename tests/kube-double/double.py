#!/usr/bin/env python3
"""kube-apiserver test double for smi-metrics' authentication tests (the one
allowed double).  Two HTTPS listeners on loopback:

API port (what smi-metrics calls, with its service-account bearer token):
  GET  /api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication
  POST /apis/authentication.k8s.io/v1/tokenreviews          (201)
  POST /apis/authorization.k8s.io/v1/subjectaccessreviews   (201)
  test control, no auth: GET /_double/stats, GET /_double/sars,
  GET /_double/tokenreviews (tokens redacted), POST /_double/reset,
  POST /_double/config (JSON merged into the settings below)

Aggregator port (what kubectl calls with a kubeconfig `token:` user): it
authenticates the token from its table, authorizes with its own RBAC table
(unless proxy_authorize is false), strips incoming identity headers and
forwards /apis/metrics.smi-spec.io/v1alpha1/... to smi-metrics over HTTPS
with the front-proxy client certificate and X-Remote-User / X-Remote-Uid /
X-Remote-Group (one line per group) / X-Remote-Extra-<escaped key>.

Every JSON shape follows the real API (k8s.io/api authentication/v1,
authorization/v1, core/v1 ConfigMap, metav1.Status).

Usage: double.py --certs DIR --api-port N --proxy-port N --upstream-port N
"""
import argparse
import copy
import http.client
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

GROUP = "metrics.smi-spec.io"
PREFIX = "/apis/metrics.smi-spec.io/v1alpha1"
CONFIGMAP_PATH = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"

DEFAULT_SETTINGS = {
    # Bearer tokens the double accepts from smi-metrics itself.
    "sa_tokens": ["smi-sa-token"],
    # token -> TokenReview status (authenticated users or failures).
    "tokens": {
        "alice-token": {"authenticated": True, "user": {
            "username": "alice", "uid": "uid-alice", "groups": ["sre"],
            "extra": {"scopes.example.com/team": ["payments"]}}},
        "bob-token": {"authenticated": True, "user": {
            "username": "bob", "uid": "uid-bob", "groups": ["dev"]}},
        "error-token": {"error": "token has expired"},
        "revoked-token": {},
    },
    # RBAC-like rules; namespaces None = everywhere (a ClusterRoleBinding).
    "rules": [
        {"name": "system:discovery", "groups": ["system:authenticated"], "verbs": ["get"],
         "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*",
                             "/version", "/version/", "/healthz", "/livez", "/readyz"]},
        {"name": "system:public-info-viewer", "verbs": ["get"],
         "groups": ["system:authenticated", "system:unauthenticated"],
         "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]},
        {"name": "smi-reader/emojivoto", "users": ["alice"], "verbs": ["get", "list"],
         "apiGroups": [GROUP], "resources": ["*"], "namespaces": ["emojivoto"]},
    ],
    "sar_mode": "normal",          # normal | error500 | both (allowed and denied)
    "tokenreview_mode": "normal",  # normal | error500
    "configmap_mode": "normal",    # normal | forbidden | notfound
    "configmap_data": {},          # key -> value (None deletes the key)
    "proxy_authorize": True,
    "latency": 0.0,
}


class State:
    def __init__(self, certs, upstream_port):
        self.lock = threading.Lock()
        self.certs = certs
        self.upstream_port = upstream_port
        self.settings = copy.deepcopy(DEFAULT_SETTINGS)
        self.reset()

    def reset(self):
        with self.lock:
            self.stats = {"tokenreviews": 0, "sars": 0, "configmap_gets": 0, "proxy_requests": 0,
                          "proxy_denied": 0, "unauthorized_calls": 0}
            self.sa_tokens_seen = []
            self.sars = []
            self.tokenreviews = []

    def read(self, name):
        with open(os.path.join(self.certs, name)) as f:
            return f.read()

    def configmap(self):
        data = {
            "client-ca-file": self.read("client-ca.crt"),
            "requestheader-client-ca-file": self.read("front-proxy-ca.crt"),
            "requestheader-allowed-names": json.dumps(["front-proxy-client"]),
            "requestheader-username-headers": json.dumps(["X-Remote-User"]),
            "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
            "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
            "requestheader-uid-headers": json.dumps(["X-Remote-Uid"]),
        }
        for key, value in self.settings["configmap_data"].items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return {"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system",
                             "uid": "7d1c2c43-5d8e-4f4a-9d5c-0c1f0a6e7b21", "resourceVersion": "42",
                             "creationTimestamp": "2025-01-01T00:00:00Z"},
                "data": data}


def status(code, reason, message, details=None):
    doc = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason}
    if details is not None:
        doc["details"] = details
    doc["code"] = code
    return doc


# ---- authorization, as kube-apiserver's RequestInfo + RBAC ----

def request_attributes(method, path, query):
    """upstream RequestInfoFactory.NewRequestInfo (api/apis prefixes)."""
    attrs = {"resource_request": False, "path": path, "verb": method.lower()}
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return attrs
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return attrs
        group, parts = parts[0], parts[1:]
    attrs.update(resource_request=True, group=group, version=parts[0], namespace="", name="",
                 resource="", subresource="")
    parts = parts[1:]
    if parts[0] in ("watch", "proxy"):
        attrs["verb"], parts = parts[0], parts[1:]
    else:
        attrs["verb"] = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
                         "PATCH": "patch", "DELETE": "delete"}.get(method, "")
    if parts[0] == "namespaces" and len(parts) > 1:
        attrs["namespace"] = parts[1]
        if len(parts) > 2 and parts[2] not in ("status", "finalize"):
            parts = parts[2:]
    if len(parts) >= 3 and attrs["verb"] != "proxy":
        attrs["subresource"] = parts[2]
    if len(parts) >= 2:
        attrs["name"] = parts[1]
    if parts:
        attrs["resource"] = parts[0]
    if not attrs["name"] and attrs["verb"] == "get":
        watch = query.get("watch", [None])[0]
        attrs["verb"] = "watch" if watch is not None and watch.lower() not in ("0", "false") else "list"
    return attrs


def rbac_allows(rules, user, groups, attrs):
    for rule in rules:
        if user not in rule.get("users", []) and not set(groups) & set(rule.get("groups", [])):
            continue
        if attrs["verb"] not in rule["verbs"] and "*" not in rule["verbs"]:
            continue
        if not attrs["resource_request"]:
            for url in rule.get("nonResourceURLs", []):
                if url == attrs["path"] or (url.endswith("*") and attrs["path"].startswith(url[:-1])):
                    return rule["name"]
            continue
        if "apiGroups" not in rule or attrs["group"] not in rule["apiGroups"]:
            continue
        full = attrs["resource"] + ("/" + attrs["subresource"] if attrs["subresource"] else "")
        if "*" not in rule["resources"] and full not in rule["resources"]:
            continue
        namespaces = rule.get("namespaces")
        if namespaces is not None and attrs["namespace"] not in namespaces:
            continue
        return rule["name"]
    return None


def go_quote(s):
    return json.dumps(s, ensure_ascii=False)


def forbidden(user, attrs, reason=""):
    """responsewriters.Forbidden + apierrors.NewForbidden."""
    if not attrs["resource_request"]:
        msg = f'User {go_quote(user)} cannot {attrs["verb"]} path {go_quote(attrs["path"])}'
    else:
        res = attrs["resource"] + ("/" + attrs["subresource"] if attrs["subresource"] else "")
        msg = f'User {go_quote(user)} cannot {attrs["verb"]} resource {go_quote(res)} in API group {go_quote(attrs["group"])}'
        msg += f' in the namespace {go_quote(attrs["namespace"])}' if attrs["namespace"] else " at the cluster scope"
    msg = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if reason:
        msg += ": " + reason
    if not attrs["resource_request"]:
        return status(403, "Forbidden", "forbidden: " + msg, {})
    qualified = attrs["resource"] + ("." + attrs["group"] if attrs["group"] else "")
    details = {"group": attrs["group"], "kind": attrs["resource"]}
    if attrs["name"]:
        details = {"name": attrs["name"], **details}
        return status(403, "Forbidden", f'{qualified} {go_quote(attrs["name"])} is forbidden: {msg}', details)
    return status(403, "Forbidden", f"{qualified} is forbidden: {msg}", details)


# ---- HTTP plumbing ----

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set per server class

    def log_message(self, fmt, *args):
        if os.environ.get("DOUBLE_DEBUG"):
            sys.stderr.write("double: " + fmt % args + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, code, doc, content_type="application/json", extra_headers=()):
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class ApiHandler(Handler):
    def bearer(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def check_caller(self):
        st = self.state
        token = self.bearer()
        with st.lock:
            if token is not None:
                st.sa_tokens_seen.append(token)
                del st.sa_tokens_seen[:-20]
            ok = token in st.settings["sa_tokens"]
            if not ok:
                st.stats["unauthorized_calls"] += 1
        if not ok:
            self.reply(401, status(401, "Unauthorized", "Unauthorized"))
        return ok

    def do_GET(self):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_double/stats":
            with st.lock:
                doc = dict(st.stats, sa_tokens_seen=list(st.sa_tokens_seen))
            return self.reply(200, doc)
        if url.path == "/_double/sars":
            with st.lock:
                return self.reply(200, list(st.sars))
        if url.path == "/_double/tokenreviews":
            with st.lock:
                return self.reply(200, list(st.tokenreviews))
        if url.path == CONFIGMAP_PATH:
            if not self.check_caller():
                return
            with st.lock:
                st.stats["configmap_gets"] += 1
                mode = st.settings["configmap_mode"]
            if mode == "forbidden":
                return self.reply(403, status(403, "Forbidden",
                                              'configmaps "extension-apiserver-authentication" is forbidden: User "system:serviceaccount:smi-metrics:smi-metrics" cannot get resource "configmaps" in API group "" in the namespace "kube-system"',
                                              {"name": "extension-apiserver-authentication", "kind": "configmaps"}))
            if mode == "notfound":
                return self.reply(404, status(404, "NotFound",
                                              'configmaps "extension-apiserver-authentication" not found',
                                              {"name": "extension-apiserver-authentication", "kind": "configmaps"}))
            return self.reply(200, st.configmap())
        self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))

    def do_POST(self):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path == "/_double/reset":
            st.reset()
            return self.reply(200, {})
        if url.path == "/_double/config":
            with st.lock:
                update = json.loads(raw or b"{}")
                if update.pop("defaults", False):
                    st.settings = copy.deepcopy(DEFAULT_SETTINGS)
                st.settings.update(update)
            return self.reply(200, st.settings)
        if url.path not in ("/apis/authentication.k8s.io/v1/tokenreviews",
                            "/apis/authorization.k8s.io/v1/subjectaccessreviews"):
            return self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
        if not self.check_caller():
            return
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self.reply(415, status(415, "UnsupportedMediaType", "the body of the request was in an unknown format"))
        time.sleep(st.settings["latency"])
        doc = json.loads(raw)
        if url.path.endswith("tokenreviews"):
            return self.token_review(doc)
        return self.subject_access_review(doc)

    def token_review(self, doc):
        st = self.state
        token = doc.get("spec", {}).get("token", "")
        with st.lock:
            st.stats["tokenreviews"] += 1
            redacted = copy.deepcopy(doc)
            redacted["spec"]["token"] = "<redacted>"
            st.tokenreviews.append(redacted)
            mode = st.settings["tokenreview_mode"]
            entry = st.settings["tokens"].get(token)
        if doc.get("kind") != "TokenReview" or doc.get("apiVersion") != "authentication.k8s.io/v1":
            return self.reply(400, status(400, "BadRequest", "not a TokenReview"))
        if not token:
            return self.reply(400, status(400, "BadRequest", "token is required"))
        if mode == "error500":
            return self.reply(500, status(500, "InternalError", "Internal error occurred: webhook down",
                                          {"causes": [{"message": "webhook down"}]}))
        if entry is None:
            entry = {"error": "invalid bearer token"}
        result = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": doc["spec"],
                  "status": dict(entry, audiences=["https://kubernetes.default.svc.cluster.local"])}
        if not entry.get("authenticated"):
            result["status"].pop("audiences")
            result["status"]["user"] = {}
        self.reply(201, result)

    def subject_access_review(self, doc):
        st = self.state
        with st.lock:
            st.stats["sars"] += 1
            st.sars.append(doc)
            mode = st.settings["sar_mode"]
            rules = st.settings["rules"]
        spec = doc.get("spec", {})
        if doc.get("kind") != "SubjectAccessReview" or doc.get("apiVersion") != "authorization.k8s.io/v1" or \
                ("resourceAttributes" in spec) == ("nonResourceAttributes" in spec):
            return self.reply(400, status(400, "BadRequest", "invalid SubjectAccessReview"))
        if mode == "error500":
            return self.reply(500, status(500, "InternalError", "Internal error occurred: authorizer down",
                                          {"causes": [{"message": "authorizer down"}]}))
        ra = spec.get("resourceAttributes")
        if ra is not None:
            attrs = {"resource_request": True, "verb": ra.get("verb", ""), "group": ra.get("group", ""),
                     "resource": ra.get("resource", ""), "subresource": ra.get("subresource", ""),
                     "namespace": ra.get("namespace", ""), "name": ra.get("name", "")}
        else:
            na = spec["nonResourceAttributes"]
            attrs = {"resource_request": False, "verb": na.get("verb", ""), "path": na.get("path", "")}
        rule = rbac_allows(rules, spec.get("user", ""), spec.get("groups", []), attrs)
        result = {"allowed": rule is not None}
        if rule:
            result["reason"] = f'RBAC: allowed by ClusterRoleBinding "{rule}" of ClusterRole "{rule}"'
        if mode == "both":
            result = {"allowed": True, "denied": True, "reason": "confused"}
        self.reply(201, {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                         "metadata": {"creationTimestamp": None}, "spec": spec, "status": result})


def escape_extra_key(key):
    """kube-aggregator: percent-encode every byte that is not an RFC 7230
    token character, and '%' itself."""
    token = set(b"!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return "".join(chr(b) if b in token else "%%%02X" % b for b in key.encode())


class ProxyHandler(Handler):
    STRIP = ("authorization", "impersonate-", "x-remote-", "host", "connection", "keep-alive",
             "proxy-", "te", "trailer", "transfer-encoding", "upgrade", "content-length")

    def do_GET(self):
        self.proxy()

    def do_HEAD(self):
        self.proxy()

    def proxy(self):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        with st.lock:
            st.stats["proxy_requests"] += 1
            tokens = st.settings["tokens"]
            auth = self.headers.get("Authorization", "")
            entry = tokens.get(auth[7:]) if auth.lower().startswith("bearer ") else None
            authorize = st.settings["proxy_authorize"]
            rules = st.settings["rules"]
        if not entry or not entry.get("authenticated"):
            return self.reply(401, status(401, "Unauthorized", "Unauthorized"))
        user = entry["user"]
        groups = list(user.get("groups", []))
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if authorize:
            attrs = request_attributes(self.command, url.path, query)
            if not rbac_allows(rules, user["username"], groups, attrs):
                with st.lock:
                    st.stats["proxy_denied"] += 1
                return self.reply(403, forbidden(user["username"], attrs))
        if url.path != PREFIX and not url.path.startswith(PREFIX + "/"):
            return self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
        headers = [(k, v) for k, v in self.headers.items()
                   if not any(k.lower().startswith(p) for p in self.STRIP)]
        headers.append(("X-Remote-User", user["username"]))
        if user.get("uid"):
            headers.append(("X-Remote-Uid", user["uid"]))
        headers += [("X-Remote-Group", g) for g in groups]
        for key, values in user.get("extra", {}).items():
            headers += [("X-Remote-Extra-" + escape_extra_key(key), v) for v in values]
        headers += [("Audit-Id", str(uuid.uuid4())), ("X-Forwarded-For", self.client_address[0])]
        # url.Values.Encode: keys sorted
        target = url.path + ("?" + urllib.parse.urlencode(sorted(query.items()), doseq=True) if url.query else "")
        try:
            code, resp_headers, body = self.forward(target, headers)
        except OSError:  # the aggregator answers transport errors itself
            return self.reply(503, b"service unavailable", "text/plain")
        self.reply(code, body, resp_headers.get("Content-Type", "application/json"))

    def forward(self, target, headers):
        st = self.state
        ctx = ssl.create_default_context(cafile=os.path.join(st.certs, "serving-ca.crt"))
        ctx.load_cert_chain(os.path.join(st.certs, "front-proxy-client.crt"),
                            os.path.join(st.certs, "front-proxy-client.key"))
        sock = socket.create_connection(("127.0.0.1", st.upstream_port), timeout=60)
        # SNI = <service>.<namespace>.svc, as the aggregator sends it.
        tls = ctx.wrap_socket(sock, server_hostname="smi-metrics.smi-metrics.svc")
        conn = http.client.HTTPSConnection("127.0.0.1", st.upstream_port, timeout=60)
        conn.sock = tls
        try:
            conn.putrequest(self.command, target, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()


class ThreadingHTTPSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(port, handler, state, certs):
    cls = type(handler.__name__ + "Bound", (handler,), {"state": state})
    srv = ThreadingHTTPSServer(("127.0.0.1", port), cls)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--certs", required=True)
    ap.add_argument("--api-port", type=int, required=True)
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--upstream-port", type=int, required=True)
    args = ap.parse_args()
    state = State(args.certs, args.upstream_port)
    serve(args.api_port, ApiHandler, state, args.certs)
    serve(args.proxy_port, ProxyHandler, state, args.certs)
    print(f"double: api on https://127.0.0.1:{args.api_port}, aggregator on https://127.0.0.1:{args.proxy_port}",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

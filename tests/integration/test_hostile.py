"""The bad-input suite: hundreds of hostile or malformed requests, each of
which must get a clean 4xx metav1.Status while the server keeps serving,
and afterwards Prometheus' own query log must show that no byte of them
reached PromQL."""
import json
import os
import re
import socket
import ssl
import unittest
import urllib.parse

from smi import CERTS, ENV, PREFIX, https

INJECTIONS = [
    'web"}or vector(1)#', "web} or vector(1)", 'web",deployment=~".*', "web\\", "web'", "we b",
    ".*", "web|voting", "web)", "(web", "web[5m]", "Web", "WEB", "-web", "web-", "web.", ".web",
    "web..v2", "a" * 254, "a" * 64 + "." + "b" * 200, "web\x01", "web\x7f", "\u00e9web", "web\u202e",
    "web;drop", "web$", "{{name}}", "{{target}}", "web\r\nX-Injected: 1", "%s%s%n", "../../etc/passwd",
    "web?", "web#", "*",
]
SEGMENT_TEMPLATES = [
    PREFIX + "/namespaces/emojivoto/deployments/{x}",
    PREFIX + "/namespaces/emojivoto/deployments/{x}/edges",
    PREFIX + "/namespaces/{x}/deployments/web",
    PREFIX + "/namespaces/{x}/deployments",
    PREFIX + "/namespaces/{x}",
    PREFIX + "/namespaces/{x}/edges",
    PREFIX + "/namespaces/emojivoto/pods/{x}",
]
BAD_WINDOWS = ["5", "1d", "", "abc", "-5m", "500ms", "1s", "48h", "1e3s", "30s30", "0x10s", "%00",
               "30s%00", "9223372036854775807s", "1.5s", "NaNs", "+Inf", " 30s", "30 s", "3\u00b5s"]


def raw_request(request_line_path, extra_headers=b"", method=b"GET", cert="front-proxy-client"):
    """Sends bytes exactly as given (no client-side encoding) over TLS and
    returns (status code, body bytes)."""
    host, port = ENV["SMI_URL"].split("//")[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "serving-ca.crt"))
    ctx.load_cert_chain(os.path.join(CERTS, cert + ".crt"), os.path.join(CERTS, cert + ".key"))
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(method + b" " + request_line_path + b" HTTP/1.1\r\nHost: x\r\n" + extra_headers +
                        b"Connection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def hostile_paths():
    for template in SEGMENT_TEMPLATES:
        for x in INJECTIONS:
            yield template.format(x=urllib.parse.quote(x, safe=""))
    for t in BAD_WINDOWS:
        yield f"{PREFIX}/namespaces/emojivoto/deployments/web?t={urllib.parse.quote(t, safe='%')}"
    yield f"{PREFIX}/namespaces/emojivoto/deployments/web?t=30s&t=1m"
    yield f"{PREFIX}/namespaces/emojivoto/deployments/web?t=30s&t=30s"
    yield f"{PREFIX}/namespaces/emojivoto/deployments/web?timeout=abc"
    yield f"{PREFIX}/namespaces/emojivoto/deployments/web?labelSelector=app%3Dweb"
    yield f"{PREFIX}/namespaces/emojivoto/deployments/web?" + "&".join(f"p{i}=1" for i in range(40))


@unittest.skipUnless(ENV.get("SMI_MESH", "linkerd") == "linkerd",
                     "the query-log check knows the Linkerd templates' literals")
class Hostile(unittest.TestCase):
    def check_status(self, code, body, what):
        self.assertTrue(400 <= code < 500, (what, code, body[:300]))
        doc = json.loads(body)
        self.assertEqual((doc["kind"], doc["apiVersion"], doc["status"], doc["code"]),
                         ("Status", "v1", "Failure", code), what)
        self.assertTrue(doc["reason"], what)
        body.decode("utf-8")  # the message is valid UTF-8

    def test_hostile_requests_get_clean_status_and_never_reach_promql(self):
        tried = 0
        for path in hostile_paths():
            code, _, body = https(path)
            self.check_status(code, body, path)
            tried += 1
        # Bytes no client library would send: raw non-UTF-8, control bytes,
        # percent tricks that decode to separators, overlong paths.
        raw = [
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web\xff\xfe",
            PREFIX.encode() + b"/namespaces/emo\xc3\x28jivoto/deployments/web",
            PREFIX.encode() + b"/namespaces/emojivoto%2Fdeployments%2Fweb",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web%2Fedges",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/%2e%2e",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web%252F",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web%00",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web%",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web%zz",
            PREFIX.encode() + b"//namespaces/emojivoto/deployments/web",
            PREFIX.encode() + b"/namespaces//deployments/web",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web/edges/extra",
            PREFIX.encode() + b"/" + b"a/" * 40,
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/" + b"w" * 1500,
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/" + b"w" * 3000,
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web?t=%FF",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web?t",
            PREFIX.encode() + b"/namespaces/emojivoto/deployments/web?=30s&t=",
        ]
        for path in raw:
            code, body = raw_request(path)
            self.check_status(code, body, path)
            tried += 1
        for method in (b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT_X", b"G\x1bT"):
            code, body = raw_request(PREFIX.encode() + b"/namespaces/emojivoto/deployments/web", method=method)
            self.check_status(code, body, method)
            tried += 1
        for header in (b"Accept: text/html\r\n", b"Accept: application/yaml\r\n"):
            code, body = raw_request(PREFIX.encode() + b"/namespaces/emojivoto/deployments/web", header)
            self.check_status(code, body, header)
            tried += 1
        self.assertGreaterEqual(tried, 200)
        # Percent-encoding of ordinary characters is just encoding.
        self.assertEqual(raw_request(PREFIX.encode() + b"/namespaces/emojivoto/deployments/web?t=30%73")[0], 200)
        # Identity headers full of hostile bytes are only logged, sanitised.
        code, _, _ = https(f"{PREFIX}/namespaces/emojivoto/deployments/web",
                           headers={"X-Remote-User": 'eve" injected="1', "Audit-Id": "x\"y"})
        self.assertEqual(code, 200)
        with open(ENV["SMI_LOG"], errors="replace") as f:
            log = f.read()
        self.assertNotIn('injected="1"', log)
        self.assertNotIn("\x1b", log, "control bytes of a method never reach the log")
        # Still serving.
        self.assertEqual(https(f"{PREFIX}/namespaces/emojivoto/deployments/web")[0], 200)
        self.check_query_log()

    def test_huge_headers_are_refused_and_server_survives(self):
        code, _ = raw_request(PREFIX.encode() + b"/namespaces/emojivoto/deployments/web",
                              b"X-Big: " + b"a" * (300 * 1024) + b"\r\n")
        self.assertIn(code, (413, 431))
        self.assertEqual(https(f"{PREFIX}/namespaces/emojivoto/deployments/web")[0], 200)

    def check_query_log(self):
        """Every string literal Prometheus ever evaluated is a DNS-1123 name or
        a fixed label value of the templates."""
        literal = re.compile(r'"((?:[^"\\]|\\.)*)"')
        allowed = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^$")
        seen = 0
        with open(ENV["PROM_QUERY_LOG"]) as f:
            for line in f:
                query = json.loads(line)["params"]["query"]
                seen += 1
                for value in literal.findall(query):
                    self.assertRegex(value, allowed, query)
                self.assertNotIn("vector(1)", query)
                self.assertNotIn("=~", query)
        self.assertGreater(seen, 0, "the query log recorded smi-metrics' queries")


if __name__ == "__main__":
    unittest.main()

"""Serving certificates three ways.  tls.mode=helm: the caBundle is the CA
that signed the generated serving certificate (openssl verify, with the name
the aggregator checks), the real server serves it, and `helm upgrade` keeps
it (lookup, exercised against a fake kube-apiserver) until it nears expiry.
cert-manager and existingSecret: the APIService trusts what the pod mounts."""
import os
import ssl
import socket
import subprocess
import time
import unittest
import urllib.request

from chartlib import (NS, OTHER_CA, SMI, FakeKube, adapter_dir, b64, free_ports, pem, render,
                      render_fails, tmpdir, unb64, verify, write, x509_field, x509_text)

SVC_DNS = [f"smi-metrics.{NS}.svc", f"smi-metrics.{NS}", f"smi-metrics.{NS}.svc.cluster.local"]


def secrets(r):
    return {s["metadata"]["name"]: s for s in r.all("Secret")}


def tls_volume_secret(r):
    (v,) = [v for v in r.deployment()["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
    return v["secret"]["secretName"]


def san_dns(cert_pem):
    text = x509_field(cert_pem, "-ext", "subjectAltName")
    return [s.strip()[len("DNS:"):] for s in text.splitlines()[-1].split(",")]


class HelmMode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = render()
        cls.s = secrets(cls.r)

    def test_ca_bundle_is_the_ca_of_the_serving_cert(self):
        ca_b64 = self.r.get("APIService")["spec"]["caBundle"]
        ca = unb64(ca_b64)
        tls = self.s["smi-metrics-tls"]
        self.assertEqual(tls["type"], "kubernetes.io/tls")
        self.assertEqual(tls_volume_secret(self.r), "smi-metrics-tls")
        cert = unb64(tls["data"]["tls.crt"])
        # The aggregator verifies <svc>.<ns>.svc against caBundle (Go: SAN, serverAuth).
        p = verify(ca, cert, f"smi-metrics.{NS}.svc")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Not trusted by an unrelated CA, and not valid for another name.
        self.assertNotEqual(verify(pem(OTHER_CA), cert, SVC_DNS[0]).returncode, 0)
        self.assertNotEqual(verify(ca, cert, "smi-metrics.other.svc").returncode, 0)
        self.assertEqual(unb64(tls["data"]["ca.crt"]), ca)
        self.assertEqual(self.s["smi-metrics-tls-ca"]["data"]["tls.crt"], ca_b64)
        # The key matches the certificate.
        d = tmpdir()
        pub_cert = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", write(d + "/c", cert)],
                                  capture_output=True, text=True, check=True).stdout
        pub_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", write(d + "/k", unb64(tls["data"]["tls.key"]))],
                                 capture_output=True, text=True, check=True).stdout
        self.assertEqual(pub_cert, pub_key)

    def test_certificate_content(self):
        cert = unb64(self.s["smi-metrics-tls"]["data"]["tls.crt"])
        self.assertEqual(sorted(san_dns(cert)), sorted(SVC_DNS))
        text = x509_text(cert)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertRegex(text, r"CA:FALSE")
        ca = unb64(self.s["smi-metrics-tls-ca"]["data"]["tls.crt"])
        self.assertRegex(x509_text(ca), r"CA:TRUE")
        # The expiry annotation the chart keeps matches the certificate.
        for name in ("smi-metrics-tls", "smi-metrics-tls-ca"):
            sec = self.s[name]
            not_after = x509_field(unb64(sec["data"]["tls.crt"]), "-enddate").split("=", 1)[1]
            epoch = int(subprocess.run(["date", "-d", not_after, "+%s"], capture_output=True, text=True,
                                       check=True).stdout)
            self.assertLess(abs(epoch - int(sec["metadata"]["annotations"]["smi-metrics.io/not-after"])), 120, name)
        days = (int(self.s["smi-metrics-tls"]["metadata"]["annotations"]["smi-metrics.io/not-after"]) - time.time()) / 86400
        self.assertAlmostEqual(days, 365, delta=1)

    def test_ca_key_is_not_mounted(self):
        vols = self.r.deployment()["spec"]["template"]["spec"]["volumes"]
        mounted = {v["secret"]["secretName"] for v in vols if "secret" in v}
        self.assertEqual(mounted, {"smi-metrics-tls"})
        self.assertNotIn("ca.key", self.s["smi-metrics-tls"]["data"])

    def test_cluster_domain(self):
        r = render("tls.clusterDomain=k8s.example")
        cert = unb64(secrets(r)["smi-metrics-tls"]["data"]["tls.crt"])
        self.assertIn(f"smi-metrics.{NS}.svc.k8s.example", san_dns(cert))


class HelmModeAcrossUpgrades(unittest.TestCase):
    """helm upgrade reads the installed Secrets back with lookup (here from a
    fake kube-apiserver through `helm template --dry-run=server`)."""

    def install(self, fake, *sets):
        r = fake.render(*sets)
        for s in r.all("Secret"):
            fake.put(s)
        return r

    def test_stable_across_upgrade(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            first = self.install(fake)
            second = fake.render()
            self.assertIn(f"/api/v1/namespaces/{NS}/secrets/smi-metrics-tls", fake.requests)
        s1, s2 = secrets(first), secrets(second)
        self.assertEqual(s1["smi-metrics-tls"]["data"], s2["smi-metrics-tls"]["data"])
        self.assertEqual(s1["smi-metrics-tls-ca"]["data"], s2["smi-metrics-tls-ca"]["data"])
        self.assertEqual(s1["smi-metrics-tls"]["metadata"]["annotations"],
                         s2["smi-metrics-tls"]["metadata"]["annotations"])
        self.assertEqual(first.get("APIService")["spec"]["caBundle"], second.get("APIService")["spec"]["caBundle"])
        # Without a cluster (helm template) every render generates anew.
        self.assertNotEqual(render().get("APIService")["spec"]["caBundle"],
                            render().get("APIService")["spec"]["caBundle"])

    def test_renewed_near_expiry_with_the_same_ca(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            first = self.install(fake)
            old = secrets(first)["smi-metrics-tls"]
            # Pretend the serving certificate expires in 10 days (< renewBeforeDays 30).
            old["metadata"]["annotations"]["smi-metrics.io/not-after"] = str(int(time.time()) + 10 * 86400)
            fake.put(old)
            second = fake.render()
        s2 = secrets(second)
        self.assertNotEqual(s2["smi-metrics-tls"]["data"]["tls.crt"], old["data"]["tls.crt"])
        self.assertEqual(s2["smi-metrics-tls-ca"]["data"], secrets(first)["smi-metrics-tls-ca"]["data"])
        ca = unb64(second.get("APIService")["spec"]["caBundle"])
        self.assertEqual(second.get("APIService")["spec"]["caBundle"], first.get("APIService")["spec"]["caBundle"])
        p = verify(ca, unb64(s2["smi-metrics-tls"]["data"]["tls.crt"]), SVC_DNS[0])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_new_ca_when_the_ca_expires(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            first = self.install(fake)
            ca_secret = secrets(first)["smi-metrics-tls-ca"]
            ca_secret["metadata"]["annotations"]["smi-metrics.io/not-after"] = str(int(time.time()) + 100 * 86400)
            fake.put(ca_secret)
            second = fake.render()
        s2 = secrets(second)
        self.assertNotEqual(s2["smi-metrics-tls-ca"]["data"]["tls.crt"], ca_secret["data"]["tls.crt"])
        ca = unb64(second.get("APIService")["spec"]["caBundle"])
        self.assertEqual(ca, unb64(s2["smi-metrics-tls-ca"]["data"]["tls.crt"]))
        self.assertEqual(verify(ca, unb64(s2["smi-metrics-tls"]["data"]["tls.crt"]), SVC_DNS[0]).returncode, 0)

    def test_reissued_when_the_names_change(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            first = self.install(fake)
            second = fake.render("tls.clusterDomain=k8s.example")
        s1, s2 = secrets(first), secrets(second)
        self.assertNotEqual(s1["smi-metrics-tls"]["data"]["tls.crt"], s2["smi-metrics-tls"]["data"]["tls.crt"])
        self.assertEqual(s1["smi-metrics-tls-ca"]["data"], s2["smi-metrics-tls-ca"]["data"])
        self.assertIn(f"smi-metrics.{NS}.svc.k8s.example", san_dns(unb64(s2["smi-metrics-tls"]["data"]["tls.crt"])))


class CertManagerMode(unittest.TestCase):
    def test_chart_made_ca(self):
        r = render("tls.mode=cert-manager")
        self.assertEqual(r.all("Secret"), [])
        api = r.get("APIService")
        self.assertNotIn("caBundle", api["spec"], "cainjector fills caBundle")
        ref = api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        ns, name = ref.split("/")
        serving = r.get("Certificate", name)
        self.assertEqual(ns, NS)
        self.assertEqual(serving["spec"]["secretName"], tls_volume_secret(r))
        self.assertEqual(sorted(serving["spec"]["dnsNames"]), sorted(SVC_DNS))
        self.assertIn("server auth", serving["spec"]["usages"])
        # The chain: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate.
        issuer = r.get("Issuer", serving["spec"]["issuerRef"]["name"])
        ca_cert = [c for c in r.all("Certificate") if c["spec"].get("isCA")]
        self.assertEqual(len(ca_cert), 1)
        self.assertEqual(issuer["spec"]["ca"]["secretName"], ca_cert[0]["spec"]["secretName"])
        self.assertIn("selfSigned", r.get("Issuer", ca_cert[0]["spec"]["issuerRef"]["name"])["spec"])
        self.assertNotEqual(ca_cert[0]["spec"]["secretName"], serving["spec"]["secretName"])

    def test_own_issuer(self):
        r = render("tls.mode=cert-manager", "tls.certManager.issuerRef.name=corp-ca",
                   "tls.certManager.issuerRef.kind=ClusterIssuer")
        self.assertFalse(r.has("Issuer"))
        (cert,) = r.all("Certificate")
        self.assertEqual(cert["spec"]["issuerRef"], {"name": "corp-ca", "kind": "ClusterIssuer"})
        self.assertEqual(r.get("APIService")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                         f"{NS}/{cert['metadata']['name']}")


class ExistingSecretMode(unittest.TestCase):
    def test_ca_bundle_from_values(self):
        r = render("tls.mode=existingSecret", "tls.existingSecret.name=my-tls",
                   files=["tls.existingSecret.caBundle=" + OTHER_CA])
        self.assertEqual(r.all("Secret"), [])
        self.assertEqual(tls_volume_secret(r), "my-tls")
        self.assertEqual(r.get("APIService")["spec"]["caBundle"], b64(pem(OTHER_CA)))

    def test_ca_bundle_from_the_secret(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA))
            fake.put({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                      "metadata": {"name": "my-tls", "namespace": NS},
                      "data": {"tls.crt": b64("x"), "tls.key": b64("y"), "ca.crt": b64(pem(OTHER_CA))}})
            r = fake.render("tls.mode=existingSecret", "tls.existingSecret.name=my-tls")
        self.assertEqual(r.get("APIService")["spec"]["caBundle"], b64(pem(OTHER_CA)))

    def test_missing_ca_bundle_is_an_error(self):
        err = render_fails("tls.mode=existingSecret", "tls.existingSecret.name=my-tls")
        self.assertIn("tls.existingSecret.caBundle", err)
        # ...unless a cainjector is told to fill it.
        r = render("tls.mode=existingSecret", "tls.existingSecret.name=my-tls",
                   "apiService.annotations.cert-manager\\.io/inject-ca-from-secret=smi-metrics/my-tls")
        self.assertNotIn("caBundle", r.get("APIService")["spec"])

    def test_not_a_pem(self):
        err = render_fails("tls.mode=existingSecret", "tls.existingSecret.name=my-tls",
                           "tls.existingSecret.caBundle=hello")
        self.assertIn("must be a PEM certificate bundle", err)


@unittest.skipUnless(os.access(SMI, os.X_OK) and adapter_dir("linkerd"), "smi-metrics and linkerd.so not built")
class ServesTheGeneratedCertificate(unittest.TestCase):
    """The real server, started from the rendered ConfigMap and Secret (files
    laid out as the pod mounts them), serves a certificate that verifies
    against caBundle with the aggregator's server name; the probes answer."""

    def test_serve(self):
        api_port, admin_port = free_ports(2)
        r = render("server.listenHost=127.0.0.1", f"containerPorts.https={api_port}",
                   f"containerPorts.admin={admin_port}", "adaptersDir=" + adapter_dir("linkerd"),
                   "prometheus.url=http://127.0.0.1:9")
        root = tmpdir()
        cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
        tls = secrets(r)[tls_volume_secret(r)]
        os.makedirs(root + "/config")
        os.makedirs(root + "/tls")
        for k, v in cm["data"].items():
            write(f"{root}/config/{k}", v)
        for k, v in tls["data"].items():
            write(f"{root}/tls/{k}", unb64(v))
        cfg = write(root + "/config/config.yaml",
                    cm["data"]["config.yaml"].replace("/etc/smi-metrics/", root + "/"))
        log = open(root + "/server.log", "w")
        proc = subprocess.Popen([SMI, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
        try:
            ca = write(root + "/ca.pem", unb64(r.get("APIService")["spec"]["caBundle"]))
            ctx = ssl.create_default_context(cafile=ca)
            deadline = time.time() + 20
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", api_port), timeout=5) as sock:
                        with ctx.wrap_socket(sock, server_hostname=SVC_DNS[0]) as tls_sock:
                            peer = tls_sock.getpeercert()
                    break
                except (ConnectionRefusedError, ConnectionResetError):
                    if time.time() > deadline or proc.poll() is not None:
                        with open(root + "/server.log") as f:
                            raise AssertionError("server did not come up:\n" + f.read())
                    time.sleep(0.2)
            self.assertIn(("DNS", SVC_DNS[0]), peer["subjectAltName"])
            for path in ("/livez", "/readyz"):
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=10) as resp:
                    self.assertEqual(resp.status, 200, path)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


if __name__ == "__main__":
    unittest.main()

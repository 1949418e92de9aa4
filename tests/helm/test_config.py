"""The rendered config file: `smi-metrics --check-config` accepts it for every
adapter and mode, it says what the values say, and the front-proxy CA comes
from the value or, at install time, from kube-system's ConfigMap (lookup)."""
import os
import unittest

from chartlib import (BUILD, FRONT_PROXY_CA, OTHER_CA, REPO, SMI, FakeKube, adapter_dir, helm, pem, render, render_fails,
                      run, template_args, tmpdir, write)
from matrix import ADAPTERS, CERT_MODES

PROM_DEFAULT = {
    "linkerd": "http://prometheus.linkerd-viz.svc.cluster.local:9090",
    "istio": "http://prometheus.istio-system.svc.cluster.local:9090",
}


def check_config(text):
    path = write(os.path.join(tmpdir(), "config.yaml"), text)
    return run([SMI, "--check-config", "--config", path], check=False)


class Contents(unittest.TestCase):
    def test_adapter_and_prometheus_defaults(self):
        for label, sets in ADAPTERS:
            with self.subTest(label):
                cfg = render(*sets).config()
                name = label.split("-")[0]
                self.assertEqual(cfg["adapter"]["name"], name)
                self.assertEqual(cfg["prometheus"]["url"], PROM_DEFAULT[name])
                self.assertNotIn("adaptersDir", cfg["adapter"])
                if label == "istio-mixer":
                    self.assertEqual(cfg["adapter"]["options"], {"mode": "mixer"})
                else:
                    self.assertNotIn("options", cfg["adapter"])

    def test_values_reach_the_config(self):
        cfg = render("prometheus.url=https://prom.example.com/tenant-a", "prometheus.timeout=2s",
                     "window.default=1m", "window.min=20s", "window.max=6h", "server.requestTimeout=15s",
                     "server.maxConnections=256", "logLevel=debug", "adaptersDir=/opt/adapters",
                     jsons=['adapterQueries={"resource.counts": "sum(x{ {{target}} }) by ({{group_by}}, classification)"}']
                     ).config()
        self.assertEqual(cfg["prometheus"], {"url": "https://prom.example.com/tenant-a", "timeout": "2s"})
        self.assertEqual(cfg["window"], {"default": "1m", "min": "20s", "max": "6h"})
        self.assertEqual(cfg["server"]["requestTimeout"], "15s")
        self.assertEqual(cfg["server"]["maxConnections"], 256)
        self.assertEqual(cfg["log"], {"level": "debug"})
        self.assertEqual(cfg["adapter"]["queries"],
                         {"resource.counts": "sum(x{ {{target}} }) by ({{group_by}}, classification)"})
        self.assertEqual(cfg["adapter"]["adaptersDir"], "/opt/adapters")

    def test_front_proxy_ca_from_values(self):
        r = render()
        cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
        self.assertEqual(cm["data"]["requestheader-client-ca.crt"].strip(), pem(FRONT_PROXY_CA).strip())
        self.assertEqual(r.config()["auth"]["requestheaderAllowedNames"], ["front-proxy-client"])
        self.assertEqual(cm["metadata"]["annotations"]["smi-metrics.io/requestheader-ca-source"],
                         "auth.requestheaderClientCA")
        names = render(jsons=['auth.requestheaderAllowedNames=["aggregator","front-proxy-client"]']).config()
        self.assertEqual(names["auth"]["requestheaderAllowedNames"], ["aggregator", "front-proxy-client"])
        anyone = render(jsons=["auth.requestheaderAllowedNames=[]"]).config()
        self.assertEqual(anyone["auth"]["requestheaderAllowedNames"], [])

    def test_front_proxy_ca_is_required(self):
        err = render_fails(ca=False)
        self.assertIn("auth.requestheaderClientCA is empty", err)
        self.assertIn("--set-file auth.requestheaderClientCA=", err)
        err = render_fails("auth.requestheaderClientCA=not-a-pem", ca=False)
        self.assertIn("does not contain a PEM certificate", err)

    def test_front_proxy_ca_from_the_cluster(self):
        with FakeKube() as fake:
            fake.put_auth_configmap(pem(OTHER_CA), '["aggregator"]')
            r = fake.render()
            self.assertIn("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                          fake.requests)
            cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
            self.assertEqual(cm["data"]["requestheader-client-ca.crt"].strip(), pem(OTHER_CA).strip())
            self.assertEqual(r.config()["auth"]["requestheaderAllowedNames"], ["aggregator"])
            self.assertEqual(cm["metadata"]["annotations"]["smi-metrics.io/requestheader-ca-source"],
                             "kube-system/extension-apiserver-authentication")
            # An explicit value wins over the cluster's.
            r = fake.render(files=["auth.requestheaderClientCA=" + FRONT_PROXY_CA],
                            jsons=['auth.requestheaderAllowedNames=["x"]'])
            cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
            self.assertEqual(cm["data"]["requestheader-client-ca.crt"].strip(), pem(FRONT_PROXY_CA).strip())
            self.assertEqual(r.config()["auth"]["requestheaderAllowedNames"], ["x"])
            # A kube-apiserver without --requestheader-allowed-names: any CN.
            fake.put_auth_configmap(pem(OTHER_CA), None)
            self.assertEqual(fake.render().config()["auth"]["requestheaderAllowedNames"], [])
            # Without a front-proxy CA at all the aggregation layer is off: say so.
            fake.put({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
                      "data": {"client-ca-file": pem(OTHER_CA)}})
            p = helm(*template_args(extra=["--dry-run=server"], ca=False), check=False, env=fake.env)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("aggregation layer is not configured", p.stderr)


@unittest.skipUnless(os.access(SMI, os.X_OK), "smi-metrics not built")
class CheckConfig(unittest.TestCase):
    """smi-metrics --check-config on the ConfigMap's config.yaml.  The only
    value changed is adaptersDir, pointing at the build tree's adapter (the
    image's compiled-in directory does not exist here)."""

    def check(self, label, sets, files=(), jsons=()):
        name = label.split("-")[0]
        d = adapter_dir(name)
        if d is None:
            if os.path.isdir(os.path.join(REPO, "adapters", name)):
                self.fail(f"adapters/{name} is in the tree but {name}.so is not built in {BUILD}: "
                          f"build it (make) so --check-config can run for adapter={name}")
            self.skipTest(f"no adapters/{name} in this tree")
        text = render(*sets, "adaptersDir=" + d, files=files, jsons=jsons).config_text()
        p = check_config(text)
        self.assertEqual(p.returncode, 0, f"{label}: --check-config rejected the rendered config:\n"
                                          f"{p.stderr}\n---\n{text}")
        self.assertIn("is valid", p.stdout)
        self.assertIn(f"adapter {name} ", p.stdout)
        return p

    def test_every_adapter_and_cert_mode(self):
        for a_label, a_sets in ADAPTERS:
            for c_label, c_sets, c_files in CERT_MODES:
                with self.subTest(f"{a_label}/{c_label}"):
                    self.check(a_label, a_sets + c_sets, c_files)

    def test_with_every_config_value_set(self):
        self.check("linkerd", ["prometheus.url=https://prom.example.com/tenant-a", "prometheus.timeout=2s",
                               "window.default=1m", "window.min=20s", "window.max=6h",
                               "server.requestTimeout=15s", "server.maxConnections=256", "logLevel=debug",
                               "server.listenHost=[::]"],
                   jsons=['adapterQueries={"resource.counts": "sum by ({{group_by}}, classification) '
                          '(increase(response_total{direction=\\"inbound\\", {{target}}}[{{window}}]))"}'])

    def test_check_config_does_reject(self):
        """The check is not a rubber stamp: a bad query id from values fails."""
        d = adapter_dir("linkerd")
        if d is None:
            self.skipTest("linkerd.so not built")
        text = render("adaptersDir=" + d, jsons=['adapterQueries={"no.such.query": "up"}']).config_text()
        p = check_config(text)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no.such.query", p.stderr)


if __name__ == "__main__":
    unittest.main()

"""`helm template` output, parsed: the APIService points at the Service, RBAC
subjects are the pod's ServiceAccount, probes hit the admin port, the pod is
hardened, and the optional objects appear only when switched on."""
import re
import unittest

from chartlib import NS, REPO, render
from matrix import combos

APP_VERSION_RE = re.compile(r"AC_INIT\(\[smi-metrics\],\s*\[([^\]]+)\]")


def port_of(container, name_or_number):
    if isinstance(name_or_number, int):
        return name_or_number
    (p,) = [p["containerPort"] for p in container["ports"] if p["name"] == name_or_number]
    return p


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


class EveryMode(unittest.TestCase):
    """Invariants that hold for every adapter and certificate mode."""

    @classmethod
    def setUpClass(cls):
        cls.renders = [(label, render(*sets, files=files)) for label, sets, files in combos()]

    def test_apiservice_points_at_the_service(self):
        for label, r in self.renders:
            with self.subTest(label):
                api = r.get("APIService")
                svc = r.get("Service")
                self.assertEqual(api["apiVersion"], "apiregistration.k8s.io/v1")
                self.assertEqual(api["metadata"]["name"], "v1alpha1.metrics.smi-spec.io")
                spec = api["spec"]
                self.assertEqual((spec["group"], spec["version"]), ("metrics.smi-spec.io", "v1alpha1"))
                self.assertEqual(spec["service"], {"namespace": svc["metadata"]["namespace"],
                                                   "name": svc["metadata"]["name"], "port": 443})
                self.assertEqual((spec["groupPriorityMinimum"], spec["versionPriority"]), (100, 100))
                self.assertNotIn("insecureSkipTLSVerify", spec)
                # Service port 443 named https -> container port https -> server.listen.
                (https,) = [p for p in svc["spec"]["ports"] if p["port"] == 443]
                self.assertEqual((https["name"], https["targetPort"]), ("https", "https"))
                c = r.container()
                self.assertEqual(port_of(c, "https"), listen_port(r.config()["server"]["listen"]))
                self.assertEqual(port_of(c, "https"), 8443)
                # The Service selects the Deployment's pods.
                pod_labels = r.deployment()["spec"]["template"]["metadata"]["labels"]
                for k, v in svc["spec"]["selector"].items():
                    self.assertEqual(pod_labels.get(k), v)
                self.assertEqual(r.deployment()["spec"]["selector"]["matchLabels"], svc["spec"]["selector"])

    def test_rbac(self):
        for label, r in self.renders:
            with self.subTest(label):
                sa = r.get("ServiceAccount")
                subject = [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NS}]
                self.assertEqual(r.deployment()["spec"]["template"]["spec"]["serviceAccountName"],
                                 sa["metadata"]["name"])
                crb = r.get("ClusterRoleBinding")
                self.assertEqual(crb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                                  "kind": "ClusterRole", "name": "system:auth-delegator"})
                self.assertEqual(crb["subjects"], subject)
                rb = r.get("RoleBinding")
                self.assertEqual(rb["metadata"]["namespace"], "kube-system")
                self.assertEqual(rb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                 "name": "extension-apiserver-authentication-reader"})
                self.assertEqual(rb["subjects"], subject)
                cr = r.get("ClusterRole")
                labels = cr["metadata"]["labels"]
                for role in ("view", "edit", "admin"):
                    self.assertEqual(labels.get(f"rbac.authorization.k8s.io/aggregate-to-{role}"), "true")
                (rule,) = cr["rules"]
                self.assertEqual(rule["apiGroups"], ["metrics.smi-spec.io"])
                self.assertEqual(sorted(rule["verbs"]), ["get", "list"])
                kinds = ["namespaces", "pods", "deployments", "statefulsets", "daemonsets", "jobs",
                         "replicasets", "replicationcontrollers"]
                self.assertEqual(set(rule["resources"]),
                                 set(kinds) | {k + "/edges" for k in kinds} | {"edges"})

    def test_probes_on_the_admin_port(self):
        for label, r in self.renders:
            with self.subTest(label):
                c = r.container()
                admin = listen_port(r.config()["admin"]["listen"])
                self.assertEqual(port_of(c, "http-admin"), admin)
                for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                    get = c[probe]["httpGet"]
                    self.assertEqual(get["path"], path)
                    self.assertEqual(get.get("scheme", "HTTP"), "HTTP")
                    self.assertEqual(port_of(c, get["port"]), admin, probe)
                    self.assertGreater(c[probe]["timeoutSeconds"], 0)

    def test_hardened_pod(self):
        for label, r in self.renders:
            with self.subTest(label):
                pod = r.deployment()["spec"]["template"]["spec"]
                c = r.container()
                psc, sc = pod["securityContext"], c["securityContext"]
                self.assertIs(psc["runAsNonRoot"], True)
                self.assertNotEqual(psc["runAsUser"], 0)
                self.assertEqual(psc["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertIs(sc["readOnlyRootFilesystem"], True)
                self.assertIs(sc["allowPrivilegeEscalation"], False)
                self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
                self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertIs(sc.get("privileged", False), False)
                self.assertNotIn("hostNetwork", pod)
                res = c["resources"]
                self.assertTrue(res["requests"]["cpu"] and res["requests"]["memory"])
                self.assertTrue(res["limits"]["memory"])
                for m in c["volumeMounts"]:
                    self.assertIs(m["readOnly"], True, m["name"])
                    self.assertNotIn("subPath", m, "subPath mounts never see Secret updates")
                # Two replicas that do not go down together.
                dep = r.deployment()["spec"]
                self.assertEqual(dep["replicas"], 2)
                self.assertEqual(dep["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
                (tsc,) = pod["topologySpreadConstraints"]
                self.assertEqual(tsc["labelSelector"]["matchLabels"], dep["selector"]["matchLabels"])

    def test_mounts_match_the_config(self):
        for label, r in self.renders:
            with self.subTest(label):
                c = r.container()
                pod = r.deployment()["spec"]["template"]["spec"]
                mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
                vols = {v["name"]: v for v in pod["volumes"]}
                cfg = r.config()
                cm = [o for o in r.all("ConfigMap") if "config.yaml" in o["data"]][0]
                # --config points into the mounted ConfigMap.
                self.assertEqual(c["args"], ["--config", mounts["config"] + "/config.yaml"])
                self.assertEqual(vols["config"]["configMap"]["name"], cm["metadata"]["name"])
                # The requestheader CA file is a key of that ConfigMap.
                ca_file = cfg["auth"]["requestheaderClientCAFile"]
                self.assertEqual(ca_file.rsplit("/", 1)[0], mounts["config"])
                self.assertIn(ca_file.rsplit("/", 1)[1], cm["data"])
                # The serving cert and key are keys of the mounted TLS Secret.
                self.assertEqual(cfg["server"]["tlsCertFile"], mounts["tls"] + "/tls.crt")
                self.assertEqual(cfg["server"]["tlsKeyFile"], mounts["tls"] + "/tls.key")
                self.assertIn("secretName", vols["tls"]["secret"])
                # A config change rolls the pods.
                self.assertRegex(r.deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"],
                                 r"^[0-9a-f]{64}$")

    def test_scrape_annotations_by_default(self):
        for label, r in self.renders:
            with self.subTest(label):
                ann = r.deployment()["spec"]["template"]["metadata"]["annotations"]
                self.assertEqual(ann["prometheus.io/scrape"], "true")
                self.assertEqual(ann["prometheus.io/port"], str(listen_port(r.config()["admin"]["listen"])))
                self.assertEqual(ann["prometheus.io/path"], "/metrics")
                self.assertFalse(r.has("ServiceMonitor"))
                self.assertFalse(r.has("NetworkPolicy"))
                self.assertNotIn("priorityClassName", r.deployment()["spec"]["template"]["spec"])

    def test_pdb_by_default(self):
        for label, r in self.renders:
            with self.subTest(label):
                pdb = r.get("PodDisruptionBudget")
                self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
                self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                                 r.deployment()["spec"]["selector"]["matchLabels"])
                self.assertEqual(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow")

    def test_apiservice_is_installed_last(self):
        """helm installs in the order it prints: the APIService after the
        Deployment and Service (and uninstalls it first)."""
        for label, r in self.renders:
            with self.subTest(label):
                kinds = [o["kind"] for o in r.objects]
                api = kinds.index("APIService")
                self.assertGreater(api, kinds.index("Deployment"))
                self.assertGreater(api, kinds.index("Service"))

    def test_everything_namespaced_is_in_the_release_namespace(self):
        cluster_scoped = {"APIService", "ClusterRole", "ClusterRoleBinding"}
        for label, r in self.renders:
            with self.subTest(label):
                for s, o in r.docs:
                    if s.endswith("adapter-manifests.yaml"):
                        continue
                    md = o["metadata"]
                    if o["kind"] in cluster_scoped:
                        self.assertNotIn("namespace", md, o["kind"])
                    elif o["kind"] == "RoleBinding":
                        self.assertEqual(md["namespace"], "kube-system")
                    else:
                        self.assertEqual(md.get("namespace"), NS, f"{o['kind']} {md['name']}")


class Options(unittest.TestCase):
    def test_optional_objects(self):
        r = render("networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true",
                   "metrics.scrapeAnnotations=false", "priorityClassName=system-cluster-critical")
        pod = r.deployment()["spec"]["template"]
        self.assertEqual(pod["spec"]["priorityClassName"], "system-cluster-critical")
        self.assertNotIn("prometheus.io/scrape", pod["metadata"]["annotations"])
        sm = r.get("ServiceMonitor")
        self.assertEqual(sm["apiVersion"], "monitoring.coreos.com/v1")
        (ep,) = sm["spec"]["endpoints"]
        self.assertEqual((ep["port"], ep["path"]), ("http-admin", "/metrics"))
        svc = r.get("Service")
        self.assertIn("http-admin", [p["name"] for p in svc["spec"]["ports"]])
        for k, v in sm["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(svc["metadata"]["labels"][k], v)
        self.assertEqual(sm["spec"]["namespaceSelector"]["matchNames"], [NS])

    def test_network_policy(self):
        r = render("networkPolicy.enabled=true")
        np = r.get("NetworkPolicy")["spec"]
        self.assertEqual(np["podSelector"]["matchLabels"], r.deployment()["spec"]["selector"]["matchLabels"])
        self.assertEqual(sorted(np["policyTypes"]), ["Egress", "Ingress"])
        in_ports = [p["port"] for rule in np["ingress"] for p in rule["ports"]]
        self.assertEqual(in_ports, ["https", "http-admin"])
        # Ingress to the API from anywhere: the kube-apiserver's addresses vary.
        self.assertNotIn("from", np["ingress"][0])
        out_ports = {(p["port"], p["protocol"]) for rule in np["egress"] for p in rule["ports"]}
        self.assertLessEqual({(53, "UDP"), (53, "TCP"), (9090, "TCP"), (443, "TCP"), (6443, "TCP")}, out_ports)
        # The Prometheus port follows prometheus.url.
        r = render("networkPolicy.enabled=true", "prometheus.url=https://prom.example.com/prefix")
        self.assertEqual(r.get("NetworkPolicy")["spec"]["egress"][1]["ports"], [{"port": 443, "protocol": "TCP"}])
        r = render("networkPolicy.enabled=true", "prometheus.url=http://[fd00::1]:9091")
        self.assertEqual(r.get("NetworkPolicy")["spec"]["egress"][1]["ports"], [{"port": 9091, "protocol": "TCP"}])

    def test_pdb_switches(self):
        self.assertFalse(render("podDisruptionBudget.enabled=false").has("PodDisruptionBudget"))
        pdb = render("podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=null").get(
            "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", pdb["spec"])
        # unhealthyPodEvictionPolicy exists from Kubernetes 1.27 on.
        pdb = render(extra=["--kube-version", "1.26.0"]).get("PodDisruptionBudget")
        self.assertNotIn("unhealthyPodEvictionPolicy", pdb["spec"])

    def test_host_network_and_ports(self):
        r = render("hostNetwork=true", "containerPorts.https=10443", "containerPorts.admin=10080")
        pod = r.deployment()["spec"]["template"]["spec"]
        self.assertIs(pod["hostNetwork"], True)
        self.assertEqual(pod["dnsPolicy"], "ClusterFirstWithHostNet")
        cfg = r.config()
        self.assertEqual(cfg["server"]["listen"], "0.0.0.0:10443")
        self.assertEqual(cfg["admin"]["listen"], "0.0.0.0:10080")
        self.assertEqual(port_of(r.container(), "https"), 10443)
        svc = r.get("Service")
        (https,) = [p for p in svc["spec"]["ports"] if p["name"] == "https"]
        self.assertEqual((https["port"], https["targetPort"]), (443, "https"))

    def test_image(self):
        with open(f"{REPO}/configure.ac") as f:
            version = APP_VERSION_RE.search(f.read()).group(1)
        self.assertEqual(render().container()["image"], f"smi-metrics:{version}",
                         "chart appVersion must equal configure.ac's version")
        self.assertEqual(render("image.repository=registry.example.com/smi-metrics", "image.tag=v9").container()["image"],
                         "registry.example.com/smi-metrics:v9")
        digest = "sha256:" + "ab" * 32
        self.assertEqual(render("image.digest=" + digest).container()["image"], "smi-metrics@" + digest)

    def test_names_follow_the_release(self):
        r = render(release="metrics", namespace="mesh-system")
        svc = r.get("Service")
        self.assertEqual(svc["metadata"]["name"], "metrics-smi-metrics")
        self.assertEqual(r.get("APIService")["spec"]["service"],
                         {"namespace": "mesh-system", "name": "metrics-smi-metrics", "port": 443})
        self.assertEqual(r.get("ClusterRoleBinding")["subjects"][0]["namespace"], "mesh-system")
        r = render("fullnameOverride=smi")
        self.assertEqual(r.get("Service")["metadata"]["name"], "smi")
        self.assertEqual(r.get("APIService")["spec"]["service"]["name"], "smi")

    def test_existing_service_account(self):
        r = render("serviceAccount.create=false", "serviceAccount.name=custom")
        self.assertFalse(r.has("ServiceAccount"))
        self.assertEqual(r.deployment()["spec"]["template"]["spec"]["serviceAccountName"], "custom")
        self.assertEqual(r.get("RoleBinding")["subjects"][0]["name"], "custom")

    def test_rbac_switches(self):
        r = render("rbac.create=false")
        for kind in ("ClusterRole", "ClusterRoleBinding", "RoleBinding"):
            self.assertFalse(r.has(kind), kind)
        labels = render("rbac.aggregateToDefaultRoles=false").get("ClusterRole")["metadata"]["labels"]
        self.assertFalse(any(k.startswith("rbac.authorization.k8s.io/aggregate") for k in labels))

    def test_no_apiservice(self):
        self.assertFalse(render("apiService.create=false").has("APIService"))


if __name__ == "__main__":
    unittest.main()

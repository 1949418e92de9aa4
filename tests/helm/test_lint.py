"""helm lint --strict is clean for every adapter and certificate mode, for the
source chart and the packaged one; values.schema.json rejects unknown
adapters, unknown keys and wrong types with a message naming them."""
import glob
import os
import re
import unittest

from chartlib import CHART, FRONT_PROXY_CA, helm, render_fails, tmpdir
from matrix import combos


def lint(chart, sets, files):
    args = ["lint", "--strict", chart, "--namespace", "smi-metrics",
            "--set-file", "auth.requestheaderClientCA=" + FRONT_PROXY_CA]
    for s in sets:
        args += ["--set", s]
    for f in files:
        args += ["--set-file", f]
    return helm(*args, check=False)


class Lint(unittest.TestCase):
    def assert_clean(self, p, what):
        self.assertEqual(p.returncode, 0, f"{what}: helm lint failed:\n{p.stdout}\n{p.stderr}")
        findings = [l for l in p.stdout.splitlines() if re.match(r"\[(WARNING|ERROR)\]", l)]
        self.assertEqual(findings, [], f"{what}: lint findings")
        self.assertIn("1 chart(s) linted, 0 chart(s) failed", p.stdout)

    def test_lint_every_adapter_and_cert_mode(self):
        for label, sets, files in combos():
            with self.subTest(label):
                self.assert_clean(lint(CHART, sets, files), label)

    def test_lint_optional_objects(self):
        sets = ["networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true",
                "priorityClassName=system-cluster-critical", "podDisruptionBudget.enabled=false"]
        self.assert_clean(lint(CHART, sets, []), "optional objects")

    def test_lint_packaged_chart(self):
        out = tmpdir()
        helm("package", CHART, "--destination", out)
        (tgz,) = glob.glob(os.path.join(out, "smi-metrics-*.tgz"))
        for label, sets, files in combos():
            with self.subTest(label):
                self.assert_clean(lint(tgz, sets, files), "packaged " + label)


class Metadata(unittest.TestCase):
    def test_chart_yaml(self):
        import yaml
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            chart = yaml.safe_load(f)
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["name"], "smi-metrics")
        self.assertEqual(chart["type"], "application")
        with open(os.path.join(CHART, "values.yaml")) as f:
            self.assertEqual(yaml.safe_load(f)["adapter"], "linkerd")
        with open(os.path.join(CHART, "values.schema.json")) as f:
            import json
            schema = json.load(f)
        self.assertEqual(schema["properties"]["adapter"]["enum"], ["linkerd", "istio"])
        self.assertIs(schema["additionalProperties"], False)


class Schema(unittest.TestCase):
    def assert_rejected(self, sets, *needles, files=()):
        err = render_fails(*sets, files=files)
        for n in needles:
            self.assertIn(n, err, f"--set {sets}: message lacks {n!r}:\n{err}")
        return err

    def test_unknown_adapter(self):
        err = self.assert_rejected(["adapter=consul"], "adapter")
        self.assertRegex(err, r'"linkerd", "istio"')

    def test_unknown_adapter_without_schema_validation(self):
        err = render_fails("adapter=consul", extra=["--skip-schema-validation"])
        self.assertIn('adapter "consul" is not supported by this chart', err)

    def test_wrong_types(self):
        self.assert_rejected(["replicas=two"], "replicas", "Invalid type. Expected: integer, given: string")
        self.assert_rejected(["server.maxConnections=many"], "server.maxConnections", "Expected: integer")
        self.assert_rejected(["apiService.create=maybe"], "apiService.create", "Expected: boolean")
        self.assert_rejected(["tls.helm.certValidityDays=1y"], "tls.helm.certValidityDays", "integer")

    def test_bad_values(self):
        self.assert_rejected(["tls.mode=insecure"], "tls.mode", "must be one of")
        self.assert_rejected(["logLevel=trace"], "logLevel", "must be one of")
        self.assert_rejected(["window.default=30x"], "window.default", "Does not match pattern")
        self.assert_rejected(["window.default=30"], "window.default", "Expected: string, given: integer")
        self.assert_rejected(["prometheus.url=ftp://prometheus:9090"], "prometheus.url")
        self.assert_rejected(["image.pullPolicy=Sometimes"], "image.pullPolicy")

    def test_unknown_keys(self):
        self.assert_rejected(["adaptor=linkerd"], "Additional property adaptor is not allowed")
        self.assert_rejected(["tls.certmanager.duration=1h"], "Additional property certmanager is not allowed")

    def test_adapter_options(self):
        self.assert_rejected(["adapter=linkerd", "adapterOptions.mode=mixer"], "adapterOptions",
                             "not a linkerd option")
        self.assert_rejected(["adapterOptions.failureStatus=3xx"], "adapterOptions.failureStatus",
                             '"5xx", "4xx,5xx"')
        self.assert_rejected(["adapter=istio", "adapterOptions.mode=mixr"], "adapterOptions.mode",
                             '"telemetry-v2", "mixer"')

    def test_existing_secret_needs_a_name(self):
        self.assert_rejected(["tls.mode=existingSecret"], "tls.existingSecret.name")

    def test_template_checks(self):
        self.assert_rejected(["tls.helm.renewBeforeDays=400"], "renewBeforeDays must be smaller")
        self.assert_rejected(["podDisruptionBudget.minAvailable=1"], "only one of minAvailable and maxUnavailable")

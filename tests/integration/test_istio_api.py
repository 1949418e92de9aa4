"""End-to-end tests of the SMI API with the Istio adapter, one stack per
Istio data plane (run.sh sets SMI_MESH): `istio` (telemetry v2 sidecars),
`istio-ambient` (ztunnel, a waypoint in emojivoto, two sidecars) and
`istio-mixer` (mode: mixer, histogram in seconds).  Skipped on other stacks.

Expected numbers come from `smi-sim --describe --mesh M` (rates, latency
weights, and which proxies report each edge) and from PromQL written here
independently of the adapter's templates, at the answer's timestamp."""
import os
import re
import subprocess
import tempfile
import time
import unittest

from smi import (CLIENT_SIDE, ENV, PREFIX, SERVER_SIDE, count_tolerance, declared_quantile_ms,
                 describe, failure_rate, get_json, kubectl_raw, mesh_edges, metrics_of,
                 promql_scalar, quantity, ref, rfc3339_to_unix, success_rate, within_one_bucket_of)

MESH = ENV.get("SMI_MESH", "linkerd")
MIXER = MESH == "istio-mixer"
WINDOW = 30
WEB = ("emojivoto", "Deployment", "web")
KIND_PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets", "Job": "jobs"}
# The failure rule both modes apply by default (README, Istio adapter).
FAILED = 'response_code=~"5..|0"'
SUCCEEDED = 'response_code!~"5..|0"'


def bounds_ms():
    return describe()["mesh"]["histogram_bounds_ms"]


def server_side(e):
    return bool(e["reporters"] & SERVER_SIDE)


def client_side(e):
    return bool(e["reporters"] & CLIENT_SIDE)


def into(workload):
    return [e for e in mesh_edges() if ref(e["callee"]) == workload]


def out_of(workload):
    return [e for e in mesh_edges() if ref(e["caller"]) == workload]


def owner(side):
    group = "batch/v1" if side["kind"] == "Job" else "apps/v1"
    return (f'kubernetes://apis/{group}/namespaces/{side["namespace"]}/'
            f'{KIND_PLURAL[side["kind"]]}/{side["name"]}')


# ---- direct PromQL, per mode ----

def server_selector(callee, edges):
    """Selects the server-side reports of `callee`: its own sidecar if it
    has one, else the waypoint (telemetry v2); Mixer's destination reports."""
    if MIXER:
        return f'reporter="destination",destination_owner="{owner(callee)}"'
    reporter = "destination" if any("server" in e["reporters"] for e in edges) else "waypoint"
    return (f'reporter="{reporter}",destination_workload_namespace="{callee["namespace"]}",'
            f'destination_workload="{callee["name"]}"')


def edge_selector(e, direction):
    """One edge as the adapter should read it: `to` from the client side,
    `from` from the server side."""
    if MIXER:
        reporter = "source" if direction == "to" else "destination"
        return (f'reporter="{reporter}",source_owner="{owner(e["caller"])}",'
                f'destination_owner="{owner(e["callee"])}"')
    if direction == "to":
        reporter = "source" if "client" in e["reporters"] else "waypoint"
    else:
        reporter = "destination" if "server" in e["reporters"] else "waypoint"
    return (f'reporter="{reporter}",source_workload_namespace="{e["caller"]["namespace"]}",'
            f'source_workload="{e["caller"]["name"]}",'
            f'destination_workload_namespace="{e["callee"]["namespace"]}",'
            f'destination_workload="{e["callee"]["name"]}"')


def direct_counts(selector, at):
    family = "istio_smi_requests_total" if MIXER else "istio_requests_total"
    ok = promql_scalar(f"sum(increase({family}{{{selector},{SUCCEEDED}}}[{WINDOW}s]))", at)
    bad = promql_scalar(f"sum(increase({family}{{{selector},{FAILED}}}[{WINDOW}s]))", at)
    return ok, bad


def direct_quantile(q, selector, at):
    if MIXER:
        return 1000 * promql_scalar(
            f"histogram_quantile({q}, sum by (le) (increase("
            f"istio_smi_request_duration_seconds_bucket{{{selector}}}[{WINDOW}s])))", at)
    return promql_scalar(
        f"histogram_quantile({q}, sum by (le) (increase("
        f"istio_request_duration_milliseconds_bucket{{{selector}}}[{WINDOW}s])))", at)


QUANTILES = ((0.99, "p99_response_latency"), (0.9, "p90_response_latency"),
             (0.5, "p50_response_latency"))


@unittest.skipUnless(MESH.startswith("istio"), "the Istio stacks only (SMI_MESH=istio*)")
class IstioApi(unittest.TestCase):
    maxDiff = None

    def answer_matches_promql(self, path, selector, attempts=3):
        """All five numbers equal the direct PromQL at the answer's time; a
        scrape landing between the two queries is retried."""
        last = None
        for _ in range(attempts):
            doc = get_json(path)
            at = rfc3339_to_unix(doc["timestamp"])
            m = metrics_of(doc)
            ok, bad = direct_counts(selector, at)
            want = {"success_count": ok, "failure_count": bad}
            for q, name in QUANTILES:
                want[name] = direct_quantile(q, selector, at)
            got = {k: quantity(m[k]["value"]) for k in want}
            if all(abs(got[k] - round(want[k], 3)) < 2e-3 for k in want):
                return doc
            last = (got, want)
            time.sleep(2.5)  # past the answer cache's TTL
        self.fail(f"{path}: smi-metrics {last[0]} != direct PromQL {last[1]}")

    def assert_counts(self, item, edges, what):
        m = metrics_of(item)
        ok = sum(success_rate(e) for e in edges)
        bad = sum(failure_rate(e) for e in edges)
        self.assertAlmostEqual(quantity(m["success_count"]["value"]), ok * WINDOW,
                               delta=count_tolerance(ok), msg=what)
        self.assertAlmostEqual(quantity(m["failure_count"]["value"]), bad * WINDOW,
                               delta=count_tolerance(bad), msg=what)

    def assert_latencies(self, item, edges, what):
        for q, name in QUANTILES:
            m = metrics_of(item)[name]
            self.assertEqual(m["unit"], "ms")
            value, true = quantity(m["value"]), declared_quantile_ms(edges, q)
            self.assertTrue(within_one_bucket_of(value, true, bounds_ms()),
                            f"{what} {name} = {value} ms; the simulator's distribution puts it "
                            f"at {true} ms (buckets {bounds_ms()})")

    def edge_items(self, path):
        doc = get_json(path)
        self.assertEqual(doc["kind"], "TrafficMetricsList", doc)
        return doc, {(i["edge"]["direction"], i["edge"]["resource"].get("namespace", ""),
                      i["edge"]["resource"]["name"]): i for i in doc["items"]}

    def expected_edges(self, workload):
        """(direction, namespace, name) -> declared edge, for a workload's
        edges as this mesh can report them.  Mixer owners carry the kind, so
        peers of another kind are not edges of a kind-typed question;
        telemetry v2 names workloads only, so every peer is."""
        want = {}
        for e in out_of(workload):
            if client_side(e) and (not MIXER or e["callee"]["kind"] == workload[1]):
                want[("to", e["callee"]["namespace"], e["callee"]["name"])] = e
        for e in into(workload):
            if server_side(e) and e["meshed_caller"] and (
                    not MIXER or e["caller"]["kind"] == workload[1]):
                want[("from", e["caller"]["namespace"], e["caller"]["name"])] = e
        return want

    # ---- one resource ----

    def test_web_matches_direct_promql(self):
        self.answer_matches_promql(f"{PREFIX}/namespaces/emojivoto/deployments/web",
                                   server_selector(dict(zip(("namespace", "kind", "name"), WEB)),
                                                   into(WEB)))

    def test_web_matches_simulator(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/web")
        self.assertEqual(doc["resource"], {"kind": "Deployment", "namespace": "emojivoto",
                                           "name": "web"})
        callers = [e for e in into(WEB) if server_side(e)]
        self.assertTrue(callers, "the simulator declares server-side reports for web")
        self.assert_counts(doc, callers, "web")
        # Milliseconds, whatever the mesh's unit: the original answered
        # Mixer's seconds as milliseconds ("9m" for 9 ms).
        self.assert_latencies(doc, callers, "web")

    def test_each_request_counted_once(self):
        # voting is reported by its sidecar, by the caller's sidecar and (in
        # ambient) by the waypoint in front of it; vote-bot's requests to web
        # by vote-bot's sidecar and (in ambient) the waypoint.
        voting = ("emojivoto", "Deployment", "voting")
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/voting")
        self.assert_counts(doc, [e for e in into(voting) if server_side(e)], "voting")
        self.assertTrue(all(len(e["reporters"] & {"server", "client", "waypoint"}) >= 2
                            for e in into(voting)), "several reporters see voting's traffic")
        _, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/deployments/vote-bot/edges")
        self.assertEqual(list(items), [("to", "emojivoto", "web")])
        self.assert_counts(items[("to", "emojivoto", "web")],
                           out_of(("emojivoto", "Deployment", "vote-bot")), "vote-bot -> web")

    # ---- edges ----

    def test_web_edges_directions_and_counts(self):
        path = f"{PREFIX}/namespaces/emojivoto/deployments/web/edges"
        doc, items = self.edge_items(path)
        self.assertEqual(doc["resource"], {"kind": "Deployment", "namespace": "emojivoto",
                                           "name": "web"})
        want = self.expected_edges(WEB)
        self.assertIn(("from", "emojivoto", "vote-bot"), want)
        self.assertIn(("to", "emojivoto", "emoji"), want)
        self.assertIn(("to", "emojivoto", "voting"), want)
        # The unmeshed ingress is "unknown" to Istio: never an edge.
        self.assertEqual(sorted(items), sorted(want))
        for key, e in want.items():
            item = items[key]
            self.assertEqual(item["resource"], doc["resource"])
            self.assertEqual(item["edge"]["resource"]["kind"], "Deployment")
            self.assert_counts(item, [e], str(key))
            p99 = quantity(metrics_of(item)["p99_response_latency"]["value"])
            self.assertTrue(within_one_bucket_of(p99, declared_quantile_ms([e], 0.99), bounds_ms()),
                            f"{key} p99 {p99}")
        self.assertEqual(doc["items"][0]["edge"]["direction"], "from")

    def test_edge_numbers_match_direct_promql(self):
        doc, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/deployments/web/edges")
        at = rfc3339_to_unix(doc["items"][0]["timestamp"])
        for key, e in self.expected_edges(WEB).items():
            ok, bad = direct_counts(edge_selector(e, key[0]), at)
            m = metrics_of(items[key])
            self.assertAlmostEqual(quantity(m["success_count"]["value"]), ok,
                                   delta=count_tolerance(e["rps"]), msg=str(key))
            self.assertAlmostEqual(quantity(m["failure_count"]["value"]), bad,
                                   delta=count_tolerance(failure_rate(e)), msg=str(key))

    def test_every_workload_edges(self):
        for w in describe()["workloads"]:
            if not w["meshed"]:
                continue
            workload = ref(w)
            path = f"{PREFIX}/namespaces/{w['namespace']}/{KIND_PLURAL[w['kind']]}/{w['name']}/edges"
            _, items = self.edge_items(path)
            self.assertEqual(sorted(items), sorted(self.expected_edges(workload)), path)

    def test_namespace_edges_and_list(self):
        _, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/edges")
        to_datastore = [e for e in mesh_edges() if e["caller"]["namespace"] == "emojivoto"
                        and e["callee"]["namespace"] == "datastore" and client_side(e)]
        self.assertTrue(to_datastore)
        self.assert_counts(items[("to", "", "datastore")], to_datastore, "emojivoto -> datastore")
        self.assertIn(("from", "", "emojivoto"), items)
        self.assertNotIn(("from", "", "ingress-nginx"), items)
        self.assertNotIn(("from", "", "unknown"), items)
        names = [i["metadata"]["name"] for i in get_json(f"{PREFIX}/namespaces")["items"]]
        want = sorted({e["callee"]["namespace"] for e in mesh_edges() if server_side(e)})
        self.assertEqual(names, want)

    # ---- names, kinds, pods ----

    def test_names_match_exactly(self):
        voting = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/voting")
        self.assertGreater(quantity(metrics_of(voting)["success_count"]["value"]), 0)
        # '.' is the regex wildcard; prefixes and suffixes of real names.
        for name in ("vot.ng", "v.ting", "votin", "oting", "voting-84c6bd6b8d"):
            doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/{name}")
            self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5, name)
        _, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/deployments/vote-bot/edges")
        self.assertTrue(items)
        for name in ("vote.bot", "vote", "bot", "vote-bo"):
            _, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/deployments/{name}/edges")
            self.assertEqual(items, {}, name)
        for name in ("emoji", "emojivot", "mojivoto"):
            doc = get_json(f"{PREFIX}/namespaces/{name}")
            self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5, name)
        pod = "voting-84c6bd6b8d-mz5ld"
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/pods/{pod}")
        self.assertGreater(quantity(metrics_of(doc)["success_count"]["value"]), 0)
        for name in ("voting-84c6bd6b8d-mz5l", "voting-84c6bd6b8d.mz5ld", "oting-84c6bd6b8d-mz5ld"):
            doc = get_json(f"{PREFIX}/namespaces/emojivoto/pods/{name}")
            self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5, name)

    def test_kinds(self):
        kinds = {r["name"] for r in get_json(PREFIX)["resources"]}
        self.assertIn("deployments", kinds)
        self.assertIn("statefulsets", kinds)
        self.assertIn("jobs", kinds)
        self.assertIn("pods", kinds)
        self.assertEqual("replicasets" in kinds, MIXER, kinds)
        voting = ("emojivoto", "Deployment", "voting")
        callers = [e for e in into(voting) if server_side(e)]
        as_statefulset = get_json(f"{PREFIX}/namespaces/emojivoto/statefulsets/voting")
        self.assertEqual(as_statefulset["resource"]["kind"], "Statefulset")
        tally = get_json(f"{PREFIX}/namespaces/emojivoto/jobs/tally/edges")
        if MIXER:
            # Owners name the kind: voting is no StatefulSet, tally's
            # callee no Job.
            self.assertEqual([m["value"] for m in as_statefulset["metrics"]], ["0"] * 5)
            self.assertEqual(tally["items"], [])
            doc = get_json(f"{PREFIX}/namespaces/datastore/deployments/vote-db")
            self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5)
        else:
            # Telemetry v2 names workloads, not kinds: any workload kind
            # answers by name (README: kinds Istio cannot tell apart).
            self.assert_counts(as_statefulset, callers, "statefulsets/voting")
            self.assertEqual([(i["edge"]["direction"], i["edge"]["resource"]["name"],
                               i["edge"]["resource"]["kind"]) for i in tally["items"]],
                             [("to", "voting", "Job")])
            rc, _, err = kubectl_raw(f"{PREFIX}/namespaces/emojivoto/replicasets/web-7f8455487f")
            self.assertNotEqual(rc, 0)
            self.assertIn("NotFound", err)

    def test_pods(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/pods")
        names = [i["metadata"]["name"] for i in doc["items"]]
        self.assertEqual(names, sorted(names))
        # Telemetry v2 names pods only through the scrape's target labels of
        # the reporting pod: the workload's own sidecar ("server").  A
        # waypoint's pod label is the waypoint's, never a pod of the workload.
        want = set()
        for w in describe()["workloads"]:
            if w["namespace"] == "emojivoto" and any("server" in e["reporters"]
                                                     for e in into(ref(w))):
                want |= {p["name"] for p in w["pods"]}
        self.assertEqual(set(names), want)
        for waypoint in describe()["mesh"].get("waypoints", []):
            self.assertNotIn(waypoint["pod"], names)
        if "web-7f8455487f-rw9h5" in want:
            per_pod = sum(success_rate(e) for e in into(WEB) if server_side(e)) / 2
            item = next(i for i in doc["items"] if i["metadata"]["name"] == "web-7f8455487f-rw9h5")
            self.assertEqual(item["resource"]["kind"], "Pod")
            self.assertAlmostEqual(quantity(metrics_of(item)["success_count"]["value"]),
                                   per_pod * WINDOW, delta=count_tolerance(per_pod) + 1)
        path = f"{PREFIX}/namespaces/emojivoto/pods/web-7f8455487f-rw9h5/edges"
        if MIXER:
            # Mixer's uids name pods on both sides: pod-to-pod edges.
            _, items = self.edge_items(path)
            self.assertIn(("from", "emojivoto", "vote-bot-5b7f5657f6-xq7pm"), items)
            self.assertIn(("to", "emojivoto", "emoji-6c8b7d9f5d-4tbzq"), items)
        else:
            rc, _, err = kubectl_raw(path)
            self.assertNotEqual(rc, 0)
            self.assertIn("NotFound", err)

    def test_bad_adapter_options_are_one_line_errors(self):
        with open(ENV["SMI_CONFIG"]) as f:
            config = f.read()
        cases = {"{mode: ambient}": "telemetry-v2 (the default) reads sidecar and ambient",
                 "{mode: mixr}": 'adapter.options.mode: "mixr" is not a valid mode',
                 "{failureStatus: 4xx}": "expected \"5xx\" or \"4xx,5xx\"",
                 "{podLabel: pod-name}": "is not a Prometheus label name"}
        with tempfile.TemporaryDirectory() as d:
            for options, needle in cases.items():
                path = os.path.join(d, "config.yaml")
                with open(path, "w") as f:
                    f.write(re.sub(r"(?m)^  options: .*$", f"  options: {options}", config))
                p = subprocess.run([os.path.join(ENV["SMI_BUILD"], "smi-metrics"), "--config",
                                    path, "--check-config"], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(p.returncode, 3, (options, p.stderr))
                # One line, besides the log's "adapter ... loaded".
                errors = [line for line in p.stderr.splitlines()
                          if line.startswith("smi-metrics:")]
                self.assertEqual(len(errors), 1, p.stderr)
                self.assertIn(needle, errors[0])
            with open(path, "w") as f:
                f.write(re.sub(r"(?m)^  options: .*$", "  options: {failureStatus: '4xx,5xx'"
                               + (", mode: mixer}" if MIXER else "}"), config))
            p = subprocess.run([os.path.join(ENV["SMI_BUILD"], "smi-metrics"), "--config", path,
                                "--check-config"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)


@unittest.skipUnless(MESH == "istio-ambient", "the ambient stack only")
class IstioAmbient(unittest.TestCase):
    def test_waypoint_and_ztunnel_only_workloads(self):
        # datastore has no waypoint and vote-db no sidecar: ztunnel's L4
        # series are all there is, so vote-db has no request metrics ...
        self.assertGreater(promql_scalar(
            'sum(istio_tcp_connections_opened_total{destination_workload="vote-db"})'), 0)
        doc = get_json(f"{PREFIX}/namespaces/datastore/statefulsets/vote-db")
        self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5)
        # ... while its sidecar caller still reports the requests it sent.
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/voting/edges")
        names = {(i["edge"]["direction"], i["edge"]["resource"]["name"]) for i in doc["items"]}
        self.assertIn(("to", "vote-db"), names)
        # web has no sidecar: the waypoint answers for it, and the unmeshed
        # ingress, which bypasses the waypoint, is not in its numbers.
        self.assertGreater(promql_scalar(
            'sum(istio_requests_total{reporter="waypoint",destination_workload="web"})'), 0)
        self.assertEqual(promql_scalar(
            'sum(istio_requests_total{reporter="destination",destination_workload="web"})'), 0)


if __name__ == "__main__":
    unittest.main()

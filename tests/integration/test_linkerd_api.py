"""End-to-end tests of the SMI API with the Linkerd adapter: real kubectl ->
smi-metrics (TLS, front-proxy cert) -> real Prometheus scraping the
simulator.  Expected numbers come from the simulator's declared rates and
latency weights and from direct PromQL at the answer's timestamp, never from
smi-metrics itself."""
import time
import unittest

from smi import (PREFIX, count_tolerance, edges_where, failure_rate, get_json, metrics_of,
                 mixture_quantile_bucket, promql_scalar, quantity, ref, rfc3339_to_unix,
                 success_rate, within_one_bucket, LINKERD_BOUNDS)

WINDOW = 30
INBOUND = 'direction="inbound"'


def direct_counts(selector, at):
    base = f'sum(increase(response_total{{{selector}}}[{WINDOW}s]))'
    ok = promql_scalar(base.replace("}[", ',classification="success"}['), at)
    bad = promql_scalar(base.replace("}[", ',classification="failure"}['), at)
    return ok, bad


def direct_quantile(q, selector, at):
    return promql_scalar(
        f'histogram_quantile({q}, sum by (le) (increase(response_latency_ms_bucket{{{selector}}}[{WINDOW}s])))', at)


class LinkerdApi(unittest.TestCase):
    maxDiff = None

    def answer_matches_promql(self, path, selector, attempts=3):
        """GETs `path` and compares all five numbers with the same PromQL run
        directly at the answer's timestamp.  A scrape ingested between the two
        queries can shift one sample, so a mismatch is retried; a real bug
        fails every attempt."""
        last = None
        for _ in range(attempts):
            doc = get_json(path)
            at = rfc3339_to_unix(doc["timestamp"])
            m = metrics_of(doc)
            ok, bad = direct_counts(selector, at)
            want = {"success_count": ok, "failure_count": bad}
            for q, name in ((0.99, "p99_response_latency"), (0.9, "p90_response_latency"),
                            (0.5, "p50_response_latency")):
                want[name] = direct_quantile(q, selector, at)
            got = {k: quantity(m[k]["value"]) for k in want}
            if all(abs(got[k] - round(want[k], 3)) < 2e-3 for k in want):
                return doc
            last = (got, want)
            time.sleep(2.5)  # let the cached answer (TTL 2 s for a 30 s window) expire
        self.fail(f"{path}: smi-metrics {last[0]} != direct PromQL {last[1]}")

    def test_deployment_web_matches_direct_promql(self):
        self.answer_matches_promql(f"{PREFIX}/namespaces/emojivoto/deployments/web",
                                   f'{INBOUND},namespace="emojivoto",deployment="web"')

    def test_deployment_web_matches_simulator_rates(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/web")
        self.assertEqual(doc["kind"], "TrafficMetrics")
        self.assertEqual(doc["apiVersion"], "metrics.smi-spec.io/v1alpha1")
        self.assertEqual(list(doc), ["kind", "apiVersion", "metadata", "timestamp", "window",
                                     "resource", "edge", "metrics"])
        self.assertEqual(doc["metadata"]["selfLink"], f"{PREFIX}/namespaces/emojivoto/deployments/web")
        self.assertEqual(doc["window"], "30s")
        self.assertEqual(doc["resource"], {"kind": "Deployment", "namespace": "emojivoto", "name": "web"})
        self.assertEqual(doc["edge"], {"direction": "from", "resource": None})
        self.assertEqual([m["name"] for m in doc["metrics"]],
                         ["p99_response_latency", "p90_response_latency", "p50_response_latency",
                          "success_count", "failure_count"])
        callers = edges_where(lambda e: ref(e["callee"]) == ("emojivoto", "Deployment", "web"))
        self.assertTrue(callers, "the simulator declares callers of web")
        m = metrics_of(doc)
        ok_rate = sum(success_rate(e) for e in callers)
        bad_rate = sum(failure_rate(e) for e in callers)
        self.assertAlmostEqual(quantity(m["success_count"]["value"]), ok_rate * WINDOW,
                               delta=count_tolerance(ok_rate))
        self.assertAlmostEqual(quantity(m["failure_count"]["value"]), bad_rate * WINDOW,
                               delta=count_tolerance(bad_rate))
        for q, name in ((0.5, "p50_response_latency"), (0.9, "p90_response_latency"),
                        (0.99, "p99_response_latency")):
            self.assertEqual(m[name]["unit"], "ms")
            value = quantity(m[name]["value"])
            bucket = mixture_quantile_bucket(callers, q)
            self.assertTrue(within_one_bucket(value, bucket),
                            f"{name} = {value} ms, declared distribution puts it in le={LINKERD_BOUNDS[bucket]}")

    def edge_items(self, path):
        doc = get_json(path)
        self.assertEqual(doc["kind"], "TrafficMetricsList")
        return doc, {(i["edge"]["direction"], i["edge"]["resource"].get("namespace", ""),
                      i["edge"]["resource"]["name"]): i for i in doc["items"]}

    def test_web_edges_directions_and_counts(self):
        path = f"{PREFIX}/namespaces/emojivoto/deployments/web/edges"
        doc, items = self.edge_items(path)
        self.assertEqual(doc["metadata"]["selfLink"], path)
        self.assertEqual(doc["resource"], {"kind": "Deployment", "namespace": "emojivoto", "name": "web"})
        web = ("emojivoto", "Deployment", "web")
        want = {}
        for e in edges_where(lambda e: ref(e["caller"]) == web and ref(e["callee"])[1] == "Deployment"):
            want[("to", e["callee"]["namespace"], e["callee"]["name"])] = e
        for e in edges_where(lambda e: ref(e["callee"]) == web and e.get("meshed_caller", True)
                             and ref(e["caller"])[1] == "Deployment"):
            want[("from", e["caller"]["namespace"], e["caller"]["name"])] = e
        self.assertIn(("from", "emojivoto", "vote-bot"), want)
        self.assertIn(("to", "emojivoto", "emoji"), want)
        self.assertIn(("to", "emojivoto", "voting"), want)
        self.assertEqual(sorted(items), sorted(want), "edges are exactly the declared meshed peers")
        for key, e in want.items():
            item = items[key]
            self.assertEqual(item["metadata"]["name"], "web")
            self.assertEqual(item["resource"], {"kind": "Deployment", "namespace": "emojivoto", "name": "web"})
            self.assertEqual(item["edge"]["resource"]["kind"], "Deployment")
            m = metrics_of(item)
            self.assertAlmostEqual(quantity(m["success_count"]["value"]), success_rate(e) * WINDOW,
                                   delta=count_tolerance(success_rate(e)), msg=str(key))
            self.assertAlmostEqual(quantity(m["failure_count"]["value"]), failure_rate(e) * WINDOW,
                                   delta=count_tolerance(failure_rate(e)), msg=str(key))
            p99 = quantity(m["p99_response_latency"]["value"])
            self.assertTrue(within_one_bucket(p99, mixture_quantile_bucket([e], 0.99)), f"{key} p99 {p99}")
        # Callers come first, as in the original's demo output.
        self.assertEqual(doc["items"][0]["edge"]["direction"], "from")

    def test_edge_numbers_match_direct_promql(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/web/edges")
        self.assertTrue(doc["items"])
        at = rfc3339_to_unix(doc["items"][0]["timestamp"])
        for item in doc["items"]:
            peer = item["edge"]["resource"]
            if item["edge"]["direction"] == "to":
                sel = (f'direction="outbound",namespace="emojivoto",deployment="web",'
                       f'dst_namespace="{peer["namespace"]}",dst_deployment="{peer["name"]}"')
            else:
                sel = (f'direction="outbound",namespace="{peer["namespace"]}",deployment="{peer["name"]}",'
                       f'dst_namespace="emojivoto",dst_deployment="web"')
            ok, _ = direct_counts(sel, at)
            got = quantity(metrics_of(item)["success_count"]["value"])
            # The list was answered at `at`; allow one late scrape of drift.
            self.assertAlmostEqual(got, ok, delta=count_tolerance(8), msg=str(peer))

    def test_statefulset_in_second_namespace_and_cross_namespace_edge(self):
        self.answer_matches_promql(f"{PREFIX}/namespaces/datastore/statefulsets/vote-db",
                                   f'{INBOUND},namespace="datastore",statefulset="vote-db"')
        doc, items = self.edge_items(f"{PREFIX}/namespaces/datastore/statefulsets/vote-db/edges")
        self.assertEqual(doc["resource"]["kind"], "Statefulset")
        # Peers are of the queried kind; voting is a Deployment, so a
        # statefulset's edges list holds only statefulset peers.
        for key in items:
            self.assertNotEqual(key[2], "voting")

    def test_deployment_edges_cross_namespace_callee(self):
        _, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/deployments/voting/edges")
        self.assertIn(("from", "emojivoto", "web"), items)

    def test_namespace_edges_cross_namespace(self):
        doc, items = self.edge_items(f"{PREFIX}/namespaces/emojivoto/edges")
        self.assertEqual(doc["resource"], {"kind": "Namespace", "name": "emojivoto"})
        self.assertIn(("to", "", "datastore"), items)
        # Traffic inside emojivoto is an edge of the namespace with itself,
        # in both directions; the unmeshed ingress namespace has no proxy.
        self.assertIn(("from", "", "emojivoto"), items)
        self.assertNotIn(("from", "", "ingress-nginx"), items)
        rate = sum(e["rps"] for e in edges_where(lambda e: e["caller"]["namespace"] == "emojivoto"
                                                 and e["callee"]["namespace"] == "datastore"))
        got = metrics_of(items[("to", "", "datastore")])
        self.assertAlmostEqual(quantity(got["success_count"]["value"]), rate * WINDOW,
                               delta=count_tolerance(rate))

    def test_job_is_a_kind(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/jobs/tally/edges")
        self.assertEqual(doc["resource"]["kind"], "Job")

    def test_pod_list_has_each_web_pod(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/pods")
        self.assertEqual(doc["metadata"]["selfLink"], f"{PREFIX}/namespaces/emojivoto/pods")
        names = [i["metadata"]["name"] for i in doc["items"]]
        self.assertEqual(names, sorted(names))
        web_pods = [n for n in names if n.startswith("web-")]
        self.assertEqual(len(web_pods), 2, names)
        callers = edges_where(lambda e: ref(e["callee"]) == ("emojivoto", "Deployment", "web"))
        per_pod = sum(success_rate(e) for e in callers) / 2
        for item in doc["items"]:
            if item["metadata"]["name"] in web_pods:
                self.assertEqual(item["resource"]["kind"], "Pod")
                self.assertAlmostEqual(quantity(metrics_of(item)["success_count"]["value"]), per_pod * WINDOW,
                                       delta=count_tolerance(per_pod) + 1)

    def test_namespace_object_and_cluster_lists(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto")
        self.assertEqual(doc["resource"], {"kind": "Namespace", "name": "emojivoto"})
        self.assertNotIn("namespace", doc["metadata"])
        names = [i["metadata"]["name"] for i in get_json(f"{PREFIX}/namespaces")["items"]]
        self.assertEqual(names, ["datastore", "emojivoto"])
        deps = get_json(f"{PREFIX}/deployments")
        self.assertEqual(deps["metadata"]["selfLink"], f"{PREFIX}/deployments")
        found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in deps["items"]}
        self.assertTrue({("emojivoto", "web"), ("emojivoto", "emoji"), ("emojivoto", "voting")} <= found, found)

    def test_window_parameter(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/emoji?t=1m")
        self.assertEqual(doc["window"], "1m0s")
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/emoji?t=20s")
        self.assertEqual(doc["window"], "20s")
        rate = sum(success_rate(e) for e in edges_where(lambda e: ref(e["callee"]) == ("emojivoto", "Deployment", "emoji")))
        self.assertAlmostEqual(quantity(metrics_of(doc)["success_count"]["value"]), rate * 20,
                               delta=count_tolerance(rate))

    def test_idle_resource_is_zero_not_an_error(self):
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/no-such-workload")
        self.assertEqual([m["value"] for m in doc["metrics"]], ["0"] * 5)
        empty = get_json(f"{PREFIX}/namespaces/no-such-namespace/deployments")
        self.assertEqual(empty["items"], [])

    def test_name_prefix_does_not_match_other_workloads(self):
        # "vote" is a prefix of vote-bot and a regex would match it; exact
        # matching must give an idle answer.
        doc = get_json(f"{PREFIX}/namespaces/emojivoto/deployments/vote")
        self.assertEqual(quantity(metrics_of(doc)["success_count"]["value"]), 0)


if __name__ == "__main__":
    unittest.main()

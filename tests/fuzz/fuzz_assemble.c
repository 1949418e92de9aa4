/* fuzz_assemble: the answer path of a metrics request, from Prometheus'
 * bytes to the TrafficMetrics JSON: router -> Linkerd plan ->
 * prom_parse_vector() per query -> assemble_json() through the Linkerd
 * adapter's identify() (adapters/linkerd/linkerd.c is compiled in).
 *
 * Input: PATH[?k=v&k=v] \0 BODY0 \0 BODY1, the request and the answers to
 * the plan's two queries (counts, then latency buckets).  A query parameter
 * failureStatus=... (which the router ignores) becomes the adapter's
 * adapter.options.failureStatus.  Requests the router refuses and answers
 * the server would turn into a 502 are skipped, as the server never
 * assembles those.  Checked: assembly succeeds, the
 * body is JSON of the documented shape, every name in it is a valid
 * DNS-1123 name, every value a canonical Quantity, and list items come in
 * the documented order without duplicates. */
#include "fuzz_common.h"
#include "fuzz_adapter.h"

#include <jansson.h>

#include "assemble.h"
#include "duration.h"
#include "prom.h"
#include "quantity.h"
#include "router.h"

#define FUZZ_MAX_PARAMS 32
#define FUZZ_EVAL_UNIX  1700000000 /* 2023-11-14T22:13:20Z */

/* Splits "path?a=b&c" in place into the path and libmicrohttpd-style
 * parameters. */
static size_t split_query(char *target, route_param *params)
{
	size_t n = 0;
	char *query = strchr(target, '?');

	if (!query)
		return 0;
	*query++ = '\0';
	while (query && n < FUZZ_MAX_PARAMS) {
		char *next = strchr(query, '&');
		if (next)
			*next++ = '\0';
		char *eq = strchr(query, '=');
		if (eq)
			*eq++ = '\0';
		params[n].key = query;
		params[n].value = eq;
		n++;
		query = next;
	}
	return n;
}

static const char *string_at(json_t *object, const char *key)
{
	const char *text = json_string_value(json_object_get(object, key));
	FUZZ_CHECK(text != NULL, "no string \"%s\"", key);
	return text;
}

static bool valid_resource_name(const route *r, const char *name)
{
	return r->kind->kind == SMI_KIND_NAMESPACE ? router_valid_dns_label(name)
	                                           : router_valid_dns_subdomain(name);
}

/* A resource reference {kind, namespace?, name}. */
static void check_ref(const route *r, json_t *ref, const char **ns_out, const char **name_out)
{
	FUZZ_CHECK(json_is_object(ref), "resource is not an object");
	FUZZ_CHECK(strcmp(string_at(ref, "kind"), r->kind->kind_name) == 0, "resource kind");
	json_t *ns = json_object_get(ref, "namespace");
	*ns_out = json_string_value(ns);
	if (r->kind->namespaced)
		FUZZ_CHECK(*ns_out && router_valid_dns_label(*ns_out), "resource namespace");
	else
		FUZZ_CHECK(ns == NULL, "namespace on a cluster-scoped kind");
	*name_out = string_at(ref, "name");
	FUZZ_CHECK(valid_resource_name(r, *name_out), "resource name \"%s\"", *name_out);
}

static void check_metrics(json_t *metrics)
{
	static const char *const names[5] = {"p99_response_latency", "p90_response_latency",
	                                     "p50_response_latency", "success_count",
	                                     "failure_count"};
	FUZZ_CHECK(json_is_array(metrics) && json_array_size(metrics) == 5, "metrics array");
	for (size_t i = 0; i < 5; i++) {
		json_t *m = json_array_get(metrics, i);
		const char *value = string_at(m, "value");
		double parsed;
		FUZZ_CHECK(strcmp(string_at(m, "name"), names[i]) == 0, "metric %zu name", i);
		FUZZ_CHECK(fuzz_canonical_quantity(value), "%s value \"%s\"", names[i], value);
		FUZZ_CHECK(quantity_parse(value, &parsed) == 0, "%s value \"%s\"", names[i], value);
	}
}

/* One TrafficMetrics; returns the edge's direction ("" when not an edge)
 * and the namespace/name that orders it in a list. */
static void check_traffic_metrics(const route *r, json_t *tm, const char *window,
                                  const char **direction, const char **ns, const char **name)
{
	const char *self_ns, *self_name;

	FUZZ_CHECK(json_is_object(tm), "item is not an object");
	FUZZ_CHECK(strcmp(string_at(tm, "kind"), "TrafficMetrics") == 0, "item kind");
	FUZZ_CHECK(strcmp(string_at(tm, "window"), window) == 0, "window \"%s\", expected \"%s\"",
	           string_at(tm, "window"), window);
	FUZZ_CHECK(strcmp(string_at(tm, "timestamp"), "2023-11-14T22:13:20Z") == 0, "timestamp");
	check_ref(r, json_object_get(tm, "resource"), &self_ns, &self_name);
	check_metrics(json_object_get(tm, "metrics"));

	json_t *edge = json_object_get(tm, "edge");
	json_t *peer = json_object_get(edge, "resource");
	*direction = string_at(edge, "direction");
	*ns = self_ns;
	*name = self_name;
	if (r->request.scope == SMI_SCOPE_EDGES) {
		FUZZ_CHECK(strcmp(*direction, "from") == 0 || strcmp(*direction, "to") == 0,
		           "edge direction \"%s\"", *direction);
		FUZZ_CHECK(strcmp(self_name, r->request.name) == 0, "edge of another resource");
		check_ref(r, peer, ns, name);
	} else {
		FUZZ_CHECK(json_is_null(peer), "edge peer on a resource answer");
		*direction = "";
	}
	if (r->request.scope == SMI_SCOPE_OBJECT)
		FUZZ_CHECK(strcmp(self_name, r->request.name) == 0, "object answer for \"%s\"",
		           self_name);
	if (r->request.scope == SMI_SCOPE_NAMESPACE_LIST)
		FUZZ_CHECK(strcmp(self_ns, r->request.namespace_name) == 0,
		           "list item from namespace \"%s\"", self_ns);
}

/* README "Edges": callers (from) first, then callees, each by namespace
 * and name; lists by namespace and name.  Strictly: no duplicates. */
static int order_key_compare(const char *dir_a, const char *ns_a, const char *name_a,
                             const char *dir_b, const char *ns_b, const char *name_b)
{
	int c = strcmp(dir_a, dir_b); /* "" < "from" < "to" */
	if (c == 0)
		c = strcmp(ns_a ? ns_a : "", ns_b ? ns_b : "");
	return c ? c : strcmp(name_a, name_b);
}

static void check_body(const route *r, const char *body)
{
	json_error_t error;
	char window[DURATION_FORMAT_MAX];
	json_t *doc = json_loads(body, JSON_REJECT_DUPLICATES, &error);
	const char *direction, *ns, *name;

	FUZZ_CHECK(doc != NULL, "body is not JSON (%s): %s", error.text, body);
	duration_format(r->window_ns, window, sizeof window);
	if (r->request.scope == SMI_SCOPE_OBJECT) {
		check_traffic_metrics(r, doc, window, &direction, &ns, &name);
		json_decref(doc);
		return;
	}
	FUZZ_CHECK(strcmp(string_at(doc, "kind"), "TrafficMetricsList") == 0, "list kind");
	json_t *items = json_object_get(doc, "items");
	FUZZ_CHECK(json_is_array(items), "items is not an array");
	const char *prev_direction = NULL, *prev_ns = NULL, *prev_name = NULL;
	for (size_t i = 0; i < json_array_size(items); i++) {
		check_traffic_metrics(r, json_array_get(items, i), window, &direction, &ns, &name);
		if (prev_name)
			FUZZ_CHECK(order_key_compare(prev_direction, prev_ns, prev_name, direction,
			                             ns, name) < 0,
			           "items %zu and %zu out of order: %s %s/%s, %s %s/%s", i - 1, i,
			           prev_direction, prev_ns ? prev_ns : "", prev_name, direction,
			           ns ? ns : "", name);
		prev_direction = direction;
		prev_ns = ns;
		prev_name = name;
	}
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	route_limits limits = {
	    .window_default_seconds = 30,
	    .window_min_seconds = 10,
	    .window_max_seconds = 86400,
	};
	smi_host host;
	void *state = NULL;
	const smi_adapter_descriptor *linkerd = NULL;
	char *copy;
	char *fields[3];
	route_param params[FUZZ_MAX_PARAMS];
	prom_result results[2] = {{0}};
	route r;
	char err[256];

	if (size > 256 * 1024)
		return 0;
	size_t n = fuzz_split_fields(data, size, &copy, fields, 3);
	if (n < 3)
		goto out;

	size_t n_params = split_query(fields[0], params);
	const char *failure_status = NULL;
	for (size_t i = 0; i < n_params; i++)
		if (strcmp(params[i].key, "failureStatus") == 0)
			failure_status = params[i].value ? params[i].value : "";
	linkerd = fuzz_adapter_open(&host, failure_status, &state);
	if (!linkerd)
		goto out; /* a refused option: the server would not start */
	limits.supported_kinds = linkerd->kinds(state);
	router_route("GET", fields[0], params, n_params, &limits, &r);
	if (r.type != ROUTE_METRICS)
		goto out;

	smi_plan plan = {.struct_size = sizeof plan};
	FUZZ_CHECK(linkerd->plan(state, &r.request, &plan) == SMI_OK && plan.n_queries == 2,
	           "Linkerd plans %u queries", plan.n_queries);
	for (size_t q = 0; q < 2; q++) {
		/* Exact-size copies: the parser must not read past the body. */
		size_t len = strlen(fields[1 + q]);
		char *body = malloc(len ? len : 1);
		if (!body)
			abort();
		memcpy(body, fields[1 + q], len);
		prom_outcome outcome = prom_parse_vector(body, len, &results[q]);
		free(body);
		if (outcome != PROM_OK)
			goto out; /* a 502, never assembled */
	}

	assemble_input in = {
	    .route = &r,
	    .adapter = linkerd,
	    .adapter_state = state,
	    .plan = &plan,
	    .results = results,
	    .eval_unix_seconds = FUZZ_EVAL_UNIX,
	};
	err[0] = '\0';
	char *body = assemble_json(&in, err, sizeof err);
	FUZZ_CHECK(body != NULL, "assemble_json failed: %s", err);
	check_body(&r, body);
	free(body);
out:
	if (linkerd)
		linkerd->close(state);
	prom_result_clear(&results[0]);
	prom_result_clear(&results[1]);
	free(copy);
	return 0;
}

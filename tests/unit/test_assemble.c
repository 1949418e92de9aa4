/* test_assemble: assemble_json() on hand-built Prometheus answers for the
 * Linkerd adapter's queries (compiled in), checked with jansson against the
 * wire format of reference smi-traffic-metrics.md sections 3.1-3.4. */
#include "assemble.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

#define PREFIX    "/apis/metrics.smi-spec.io/v1alpha1"
#define EVAL_UNIX 1700000000 /* 2023-11-14T22:13:20Z */
#define EVAL_TEXT "2023-11-14T22:13:20Z"
/* Sentinel of the variadic helpers: a pointer, not a bare NULL. */
#define END ((const char *)NULL)

/* ---- fixture: adapter, host, label pool ---- */

static void host_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static smi_status host_option(void *ctx, const char *key, smi_option_type type, void *out)
{
	(void)ctx;
	(void)key;
	(void)type;
	(void)out;
	return SMI_ERR_UNSUPPORTED;
}

static const smi_host host = {
    .struct_size = sizeof(smi_host),
    .abi_major = SMI_ADAPTER_ABI_MAJOR,
    .abi_minor = SMI_ADAPTER_ABI_MINOR,
    .log = host_log,
    .option = host_option,
    .label = assemble_series_label,
};

static const smi_adapter_descriptor *desc;
static void *state;

/* Series and labels of one test live in these pools. */
static prom_label label_pool[4096];
static size_t labels_used;
static prom_series series_pool[2][512];
static prom_result results[2];

static route rt;
static smi_plan plan;
static char err[256];
static json_t *doc;
static char *body;

static void setup(void)
{
	char open_err[128];
	desc = smi_adapter_descriptor_v1();
	ck_assert_int_eq(desc->open(&host, &state, open_err, sizeof open_err), SMI_OK);
	labels_used = 0;
	memset(results, 0, sizeof results);
	for (int q = 0; q < 2; q++) {
		results[q].outcome = PROM_OK;
		results[q].series = series_pool[q];
	}
	doc = NULL;
	body = NULL;
}

static void teardown(void)
{
	json_decref(doc);
	free(body);
	desc->close(state);
}

/* Adds a series to query q: value, then name/value pairs (sorted by name,
 * as Prometheus returns them), NULL-terminated. */
static void add_series(int q, double value, ...)
{
	prom_series *s = &results[q].series[results[q].n_series++];
	s->value = value;
	s->labels = &label_pool[labels_used];
	s->n_labels = 0;
	va_list ap;
	va_start(ap, value);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (!name)
			break;
		const char *v = va_arg(ap, const char *);
		label_pool[labels_used].name = (char *)name;
		label_pool[labels_used].value = (char *)v;
		labels_used++;
		s->n_labels++;
	}
	va_end(ap);
}

/* The reference's Linkerd histogram (mesh-telemetry.md 1.2), cumulative
 * increases per le, completed up to 50000 and +Inf; bounds printed as
 * Prometheus 3 prints them. */
static const char *const linkerd_le[] = {
    "1.0",    "2.0",    "3.0",     "4.0",     "5.0",     "10.0",    "20.0",    "30.0",   "40.0",
    "50.0",   "100.0",  "200.0",   "300.0",   "400.0",   "500.0",   "1000.0",  "2000.0", "3000.0",
    "4000.0", "5000.0", "10000.0", "20000.0", "30000.0", "40000.0", "50000.0", "+Inf"};
static const double worked_counts[26] = {120,  410,  630,  760,  840,  955,  990,  995,  998,
                                         1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
                                         1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};

/* Adds the worked histogram for one resource: label pairs before and after
 * `le` in name order are given separately. */
static void add_worked_histogram(int q, const char *deployment, const char *ns)
{
	for (int i = 0; i < 26; i++)
		add_series(q, worked_counts[i], "deployment", deployment, "le", linkerd_le[i],
		           "namespace", ns, END);
}

static void route_for(const char *path, const char *t)
{
	route_limits limits = {
	    .window_default_seconds = 30,
	    .window_min_seconds = 10,
	    .window_max_seconds = 3600,
	    .supported_kinds = desc->kinds(state),
	};
	route_param p = {"t", t};
	router_route("GET", path, &p, t ? 1 : 0, &limits, &rt);
	ck_assert_msg(rt.type == ROUTE_METRICS, "%s: %s", path, rt.message);
	memset(&plan, 0, sizeof plan);
	plan.struct_size = sizeof plan;
	ck_assert_int_eq(desc->plan(state, &rt.request, &plan), SMI_OK);
	ck_assert_uint_eq(plan.n_queries, 2);
}

/* Assembles and parses; keeps the body for exact comparisons. */
static json_t *assemble(int64_t eval)
{
	assemble_input in = {
	    .route = &rt,
	    .adapter = desc,
	    .adapter_state = state,
	    .plan = &plan,
	    .results = results,
	    .eval_unix_seconds = eval,
	};
	err[0] = '\0';
	body = assemble_json(&in, err, sizeof err);
	ck_assert_msg(body != NULL, "assemble_json failed: %s", err);
	json_error_t jerr;
	doc = json_loads(body, 0, &jerr);
	ck_assert_msg(doc != NULL, "not JSON (%s): %s", jerr.text, body);
	return doc;
}

/* ---- JSON helpers ---- */

/* Checks an object's keys, in order, and that there are no others. */
static void assert_keys(const json_t *obj, ...)
{
	ck_assert_msg(json_is_object(obj), "not an object");
	va_list ap;
	va_start(ap, obj);
	void *it = json_object_iter((json_t *)obj);
	for (;;) {
		const char *want = va_arg(ap, const char *);
		if (!want) {
			ck_assert_msg(it == NULL, "unexpected key \"%s\"",
			              json_object_iter_key(it));
			break;
		}
		ck_assert_msg(it != NULL, "missing key \"%s\"", want);
		ck_assert_str_eq(json_object_iter_key(it), want);
		it = json_object_iter_next((json_t *)obj, it);
	}
	va_end(ap);
}

static const char *str_at(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	ck_assert_msg(json_is_string(v), "\"%s\" is not a string", key);
	return json_string_value(v);
}

/* The ObjectReference: kind, namespace (when given), name (when given). */
static void assert_ref(const json_t *ref, const char *kind, const char *ns, const char *name)
{
	if (ns && name)
		assert_keys(ref, "kind", "namespace", "name", END);
	else if (ns)
		assert_keys(ref, "kind", "namespace", END);
	else if (name)
		assert_keys(ref, "kind", "name", END);
	else
		assert_keys(ref, "kind", END);
	ck_assert_str_eq(str_at(ref, "kind"), kind);
	if (ns)
		ck_assert_str_eq(str_at(ref, "namespace"), ns);
	if (name)
		ck_assert_str_eq(str_at(ref, "name"), name);
}

/* The five metrics in order, unit only on latencies, values as given. */
static void assert_metrics(const json_t *tm, const char *p99, const char *p90, const char *p50,
                           const char *success, const char *failure)
{
	static const char *const names[5] = {"p99_response_latency", "p90_response_latency",
	                                     "p50_response_latency", "success_count",
	                                     "failure_count"};
	const char *values[5] = {p99, p90, p50, success, failure};
	json_t *metrics = json_object_get(tm, "metrics");
	ck_assert(json_is_array(metrics));
	ck_assert_uint_eq(json_array_size(metrics), 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *m = json_array_get(metrics, i);
		if (i < 3) {
			assert_keys(m, "name", "unit", "value", END);
			ck_assert_str_eq(str_at(m, "unit"), "ms");
		} else {
			assert_keys(m, "name", "value", END);
		}
		ck_assert_str_eq(str_at(m, "name"), names[i]);
		ck_assert_msg(strcmp(str_at(m, "value"), values[i]) == 0,
		              "%s: \"%s\", expected \"%s\"", names[i], str_at(m, "value"),
		              values[i]);
	}
}

/* One TrafficMetrics: shape, metadata, resource and edge. */
static void assert_traffic_metrics(const json_t *tm, const char *kind, const char *ns,
                                   const char *name, const char *self_link, const char *window,
                                   const char *timestamp)
{
	assert_keys(tm, "kind", "apiVersion", "metadata", "timestamp", "window", "resource", "edge",
	            "metrics", END);
	ck_assert_str_eq(str_at(tm, "kind"), "TrafficMetrics");
	ck_assert_str_eq(str_at(tm, "apiVersion"), "metrics.smi-spec.io/v1alpha1");
	json_t *md = json_object_get(tm, "metadata");
	if (ns)
		assert_keys(md, "name", "namespace", "selfLink", "creationTimestamp", END);
	else
		assert_keys(md, "name", "selfLink", "creationTimestamp", END);
	ck_assert_str_eq(str_at(md, "name"), name);
	if (ns)
		ck_assert_str_eq(str_at(md, "namespace"), ns);
	ck_assert_str_eq(str_at(md, "selfLink"), self_link);
	ck_assert_str_eq(str_at(md, "creationTimestamp"), timestamp);
	ck_assert_str_eq(str_at(tm, "timestamp"), timestamp);
	ck_assert_str_eq(str_at(tm, "window"), window);
	assert_ref(json_object_get(tm, "resource"), kind, ns, name);
}

static void assert_no_edge(const json_t *tm)
{
	json_t *edge = json_object_get(tm, "edge");
	assert_keys(edge, "direction", "resource", END);
	ck_assert_str_eq(str_at(edge, "direction"), "from");
	ck_assert(json_is_null(json_object_get(edge, "resource")));
}

static void assert_edge(const json_t *tm, const char *direction, const char *kind, const char *ns,
                        const char *name)
{
	json_t *edge = json_object_get(tm, "edge");
	assert_keys(edge, "direction", "resource", END);
	ck_assert_str_eq(str_at(edge, "direction"), direction);
	assert_ref(json_object_get(edge, "resource"), kind, ns, name);
}

static json_t *list_items(const json_t *list, const char *self_link, size_t n)
{
	assert_keys(list, "kind", "apiVersion", "metadata", "resource", "items", END);
	ck_assert_str_eq(str_at(list, "kind"), "TrafficMetricsList");
	ck_assert_str_eq(str_at(list, "apiVersion"), "metrics.smi-spec.io/v1alpha1");
	json_t *md = json_object_get(list, "metadata");
	assert_keys(md, "selfLink", END);
	ck_assert_str_eq(str_at(md, "selfLink"), self_link);
	json_t *items = json_object_get(list, "items");
	ck_assert_msg(json_is_array(items), "items is not an array");
	ck_assert_uint_eq(json_array_size(items), n);
	return items;
}

/* ---- objects ---- */

START_TEST(test_object_worked_example)
{
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", "1m");
	add_series(0, 108.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 1188.4, "classification", "failure", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_worked_histogram(1, "web", "emojivoto");
	json_t *tm = assemble(EVAL_UNIX);

	assert_traffic_metrics(tm, "Deployment", "emojivoto", "web",
	                       PREFIX "/namespaces/emojivoto/deployments/web", "1m0s", EVAL_TEXT);
	assert_no_edge(tm);
	/* p99: rank 990 -> le=20 exactly; p90: 5 + 5 * 60/115 = 7.6087;
	 * p50: 2 + 1 * 90/220 = 2.4091. */
	assert_metrics(tm, "20", "7609m", "2409m", "108", "1188400m");

	/* The exact bytes: compact, keys in the order of the reference. */
	ck_assert_str_eq(
	    body,
	    "{\"kind\":\"TrafficMetrics\",\"apiVersion\":\"metrics.smi-spec.io/v1alpha1\","
	    "\"metadata\":{\"name\":\"web\",\"namespace\":\"emojivoto\",\"selfLink\":"
	    "\"/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/deployments/web\","
	    "\"creationTimestamp\":\"2023-11-14T22:13:20Z\"},"
	    "\"timestamp\":\"2023-11-14T22:13:20Z\",\"window\":\"1m0s\","
	    "\"resource\":{\"kind\":\"Deployment\",\"namespace\":\"emojivoto\",\"name\":\"web\"},"
	    "\"edge\":{\"direction\":\"from\",\"resource\":null},"
	    "\"metrics\":[{\"name\":\"p99_response_latency\",\"unit\":\"ms\",\"value\":\"20\"},"
	    "{\"name\":\"p90_response_latency\",\"unit\":\"ms\",\"value\":\"7609m\"},"
	    "{\"name\":\"p50_response_latency\",\"unit\":\"ms\",\"value\":\"2409m\"},"
	    "{\"name\":\"success_count\",\"value\":\"108\"},"
	    "{\"name\":\"failure_count\",\"value\":\"1188400m\"}]}");
}
END_TEST

START_TEST(test_object_no_series)
{
	/* An idle resource is an answer with zeros, not an error. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	json_t *tm = assemble(EVAL_UNIX);
	assert_traffic_metrics(tm, "Deployment", "emojivoto", "web",
	                       PREFIX "/namespaces/emojivoto/deployments/web", "30s", EVAL_TEXT);
	assert_no_edge(tm);
	assert_metrics(tm, "0", "0", "0", "0", "0");
}
END_TEST

START_TEST(test_object_idle_histogram)
{
	/* Buckets that matched but did not move: NaN quantiles become 0. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	add_series(0, 0.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	for (int i = 0; i < 26; i++)
		add_series(1, 0.0, "deployment", "web", "le", linkerd_le[i], "namespace",
		           "emojivoto", END);
	json_t *tm = assemble(EVAL_UNIX);
	assert_metrics(tm, "0", "0", "0", "0", "0");
	ck_assert_ptr_null(strstr(body, "NaN"));
	ck_assert_ptr_null(strstr(body, "-9223372036854775808"));
}
END_TEST

START_TEST(test_nan_ignored)
{
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	add_series(0, NAN, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 5.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, INFINITY, "classification", "failure", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 2.0, "classification", "failure", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_worked_histogram(1, "web", "emojivoto");
	add_series(1, NAN, "deployment", "web", "le", "7.0", "namespace", "emojivoto", END);
	json_t *tm = assemble(EVAL_UNIX);
	assert_metrics(tm, "20", "7609m", "2409m", "5", "2");
	ck_assert_ptr_null(strstr(body, "NaN"));
}
END_TEST

START_TEST(test_object_other_namespace_not_counted)
{
	/* A same-named workload elsewhere never feeds the object. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	add_series(0, 1000.0, "classification", "success", "deployment", "web", "namespace",
	           "other", END);
	add_series(0, 3.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 7.0, "classification", "success", "deployment", "webx", "namespace",
	           "emojivoto", END);
	add_worked_histogram(1, "web", "other");
	json_t *tm = assemble(EVAL_UNIX);
	assert_traffic_metrics(tm, "Deployment", "emojivoto", "web",
	                       PREFIX "/namespaces/emojivoto/deployments/web", "30s", EVAL_TEXT);
	assert_metrics(tm, "0", "0", "0", "3", "0");
}
END_TEST

START_TEST(test_namespace_list_other_namespace_not_counted)
{
	/* Regression (found by fuzz_assemble): a series from another namespace
	 * never becomes an item of a namespace list. */
	route_for(PREFIX "/namespaces/emojivoto/deployments", NULL);
	add_series(0, 5.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 9.0, "classification", "success", "deployment", "db", "namespace", "other",
	           END);
	json_t *list = assemble(EVAL_UNIX);
	json_t *items = json_object_get(list, "items");
	ck_assert_uint_eq(json_array_size(items), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_array_get(items, 0), "metadata"), "namespace")),
	                 "emojivoto");
}
END_TEST

typedef struct quantity_case {
	double value;
	const char *text;
} quantity_case;

/* Reference section 3.4 (rounded to the nearest thousandth, see quantity.h). */
static const quantity_case quantity_cases[] = {
    {0, "0"},
    {0.0004, "0"},
    {0.0016, "2m"},
    {0.05, "50m"},
    {0.5, "500m"},
    {1, "1"},
    {10.123456, "10123m"},
    {28.58, "28580m"},
    {100, "100"},
    {120, "120"},
    {296.875, "296875m"},
    {999.999, "999999m"},
    {1000, "1k"},
    {1234.5, "1234500m"},
    {1500, "1500"},
    {12000, "12k"},
    {250000, "250k"},
    {2500000, "2500k"},
    {1e6, "1M"},
    {1e9, "1G"},
    {108.0, "108"},
    {1188.4, "1188400m"},
    {45.000000001, "45"},
};

START_TEST(test_quantities)
{
	const quantity_case *c = &quantity_cases[_i];
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	add_series(0, c->value, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	json_t *tm = assemble(EVAL_UNIX);
	json_t *success = json_array_get(json_object_get(tm, "metrics"), 3);
	ck_assert_msg(strcmp(str_at(success, "value"), c->text) == 0,
	              "%.9g: \"%s\", expected \"%s\"", c->value, str_at(success, "value"), c->text);
}
END_TEST

typedef struct window_case {
	const char *t;
	const char *text;
} window_case;

static const window_case window_cases[] = {
    {NULL, "30s"},     {"60s", "1m0s"}, {"1m", "1m0s"},   {"90s", "1m30s"},
    {"1.5m", "1m30s"}, {"5m", "5m0s"},  {"1h", "1h0m0s"}, {"10s", "10s"},
};

START_TEST(test_windows)
{
	const window_case *c = &window_cases[_i];
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", c->t);
	json_t *tm = assemble(EVAL_UNIX);
	ck_assert_str_eq(str_at(tm, "window"), c->text);
}
END_TEST

START_TEST(test_timestamps)
{
	static const struct {
		int64_t unix_seconds;
		const char *text;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {1234567890, "2009-02-13T23:31:30Z"},
	    {EVAL_UNIX, EVAL_TEXT},
	    {951782400, "2000-02-29T00:00:00Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
		json_t *tm = assemble(cases[i].unix_seconds);
		ck_assert_str_eq(str_at(tm, "timestamp"), cases[i].text);
		ck_assert_str_eq(str_at(json_object_get(tm, "metadata"), "creationTimestamp"),
		                 cases[i].text);
		json_decref(doc);
		free(body);
		doc = NULL;
		body = NULL;
	}
}
END_TEST

START_TEST(test_latency_scale)
{
	/* An adapter whose histogram is in seconds asks for * 1000. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	plan.queries[1].latency_to_ms = 1000.0;
	static const char *const seconds_le[] = {"0.001", "0.002", "0.003", "0.004",
	                                         "0.005", "0.01",  "0.02",  "+Inf"};
	static const double counts[] = {120, 410, 630, 760, 840, 955, 990, 1000};
	for (int i = 0; i < 8; i++)
		add_series(1, counts[i], "deployment", "web", "le", seconds_le[i], "namespace",
		           "emojivoto", END);
	json_t *tm = assemble(EVAL_UNIX);
	/* p99: rank 990 -> le=0.02 -> 20 ms. */
	assert_metrics(tm, "20", "7609m", "2409m", "0", "0");
}
END_TEST

START_TEST(test_many_buckets)
{
	/* Three series per le (more than 64 buckets in one item): equal bounds
	 * are merged, so the quantiles are those of the summed histogram. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web", NULL);
	for (int copy = 0; copy < 3; copy++)
		add_worked_histogram(1, "web", "emojivoto");
	json_t *tm = assemble(EVAL_UNIX);
	assert_metrics(tm, "20", "7609m", "2409m", "0", "0");
}
END_TEST

START_TEST(test_namespace_object)
{
	route_for(PREFIX "/namespaces/emojivoto", NULL);
	add_series(0, 12.0, "classification", "success", "namespace", "emojivoto", END);
	add_series(0, 0.5, "classification", "failure", "namespace", "emojivoto", END);
	json_t *tm = assemble(EVAL_UNIX);
	assert_traffic_metrics(tm, "Namespace", NULL, "emojivoto", PREFIX "/namespaces/emojivoto",
	                       "30s", EVAL_TEXT);
	assert_no_edge(tm);
	assert_metrics(tm, "0", "0", "0", "12", "500m");
}
END_TEST

/* ---- lists ---- */

START_TEST(test_namespace_list_sorted)
{
	route_for(PREFIX "/namespaces/emojivoto/deployments", NULL);
	add_series(0, 3.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 1.0, "classification", "success", "deployment", "emoji", "namespace",
	           "emojivoto", END);
	add_series(0, 2.0, "classification", "failure", "deployment", "voting", "namespace",
	           "emojivoto", END);
	add_series(0, 4.0, "classification", "failure", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_worked_histogram(1, "voting", "emojivoto");
	json_t *list = assemble(EVAL_UNIX);

	json_t *items = list_items(list, PREFIX "/namespaces/emojivoto/deployments", 3);
	assert_ref(json_object_get(list, "resource"), "Deployment", "emojivoto", NULL);
	static const char *const names[] = {"emoji", "voting", "web"};
	for (size_t i = 0; i < 3; i++) {
		json_t *tm = json_array_get(items, i);
		char link[256];
		snprintf(link, sizeof link, PREFIX "/namespaces/emojivoto/deployments/%s",
		         names[i]);
		assert_traffic_metrics(tm, "Deployment", "emojivoto", names[i], link, "30s",
		                       EVAL_TEXT);
		assert_no_edge(tm);
	}
	assert_metrics(json_array_get(items, 0), "0", "0", "0", "1", "0");
	assert_metrics(json_array_get(items, 1), "20", "7609m", "2409m", "0", "2");
	assert_metrics(json_array_get(items, 2), "0", "0", "0", "3", "4");
}
END_TEST

START_TEST(test_cluster_list_sorted)
{
	route_for(PREFIX "/deployments", NULL);
	add_series(0, 1.0, "classification", "success", "deployment", "a", "namespace", "b", END);
	add_series(0, 2.0, "classification", "success", "deployment", "z", "namespace", "a", END);
	add_series(0, 3.0, "classification", "success", "deployment", "b", "namespace", "a", END);
	add_series(0, 4.0, "classification", "success", "deployment", "web", "namespace",
	           "emojivoto", END);
	add_series(0, 5.0, "classification", "success", "deployment", "web", "namespace", "other",
	           END);
	json_t *list = assemble(EVAL_UNIX);

	json_t *items = list_items(list, PREFIX "/deployments", 5);
	assert_ref(json_object_get(list, "resource"), "Deployment", NULL, NULL);
	static const char *const expect[5][3] = {
	    {"a", "b", "3"},           {"a", "z", "2"},       {"b", "a", "1"},
	    {"emojivoto", "web", "4"}, {"other", "web", "5"},
	};
	for (size_t i = 0; i < 5; i++) {
		json_t *tm = json_array_get(items, i);
		char link[256];
		snprintf(link, sizeof link, PREFIX "/namespaces/%s/deployments/%s", expect[i][0],
		         expect[i][1]);
		assert_traffic_metrics(tm, "Deployment", expect[i][0], expect[i][1], link, "30s",
		                       EVAL_TEXT);
		assert_metrics(tm, "0", "0", "0", expect[i][2], "0");
	}
}
END_TEST

/* Regression: traffic_metrics_list() called qsort(NULL, 0, ...) when no
 * series fed an item; UBSan (nonnull argument) aborted the sanitizer build. */
START_TEST(test_empty_lists)
{
	route_for(PREFIX "/namespaces/emojivoto/pods", NULL);
	json_t *list = assemble(EVAL_UNIX);
	list_items(list, PREFIX "/namespaces/emojivoto/pods", 0);
	ck_assert_msg(strstr(body, "\"items\":[]") != NULL, "%s", body);
	ck_assert_ptr_null(strstr(body, "null}"));
	json_decref(doc);
	free(body);
	doc = NULL;
	body = NULL;

	route_for(PREFIX "/namespaces", NULL);
	list = assemble(EVAL_UNIX);
	list_items(list, PREFIX "/namespaces", 0);
	assert_ref(json_object_get(list, "resource"), "Namespace", NULL, NULL);
	json_decref(doc);
	free(body);
	doc = NULL;
	body = NULL;

	route_for(PREFIX "/namespaces/emojivoto/deployments/web/edges", NULL);
	list = assemble(EVAL_UNIX);
	list_items(list, PREFIX "/namespaces/emojivoto/deployments/web/edges", 0);
	ck_assert_msg(strstr(body, "\"items\":[]") != NULL, "%s", body);
}
END_TEST

START_TEST(test_namespaces_list)
{
	route_for(PREFIX "/namespaces", NULL);
	add_series(0, 2.0, "classification", "success", "namespace", "linkerd", END);
	add_series(0, 1.0, "classification", "success", "namespace", "emojivoto", END);
	json_t *list = assemble(EVAL_UNIX);
	json_t *items = list_items(list, PREFIX "/namespaces", 2);
	assert_traffic_metrics(json_array_get(items, 0), "Namespace", NULL, "emojivoto",
	                       PREFIX "/namespaces/emojivoto", "30s", EVAL_TEXT);
	assert_traffic_metrics(json_array_get(items, 1), "Namespace", NULL, "linkerd",
	                       PREFIX "/namespaces/linkerd", "30s", EVAL_TEXT);
	assert_metrics(json_array_get(items, 1), "0", "0", "0", "2", "0");
}
END_TEST

START_TEST(test_list_drops_invalid_names)
{
	route_for(PREFIX "/namespaces/emojivoto/deployments", NULL);
	add_series(0, 1.0, "classification", "success", "deployment", "Bad\"}", "namespace",
	           "emojivoto", END);
	add_series(0, 1.0, "classification", "success", "deployment", "ok", "namespace",
	           "emojivoto", END);
	add_series(0, 1.0, "classification", "success", "namespace", "emojivoto", END);
	json_t *list = assemble(EVAL_UNIX);
	json_t *items = list_items(list, PREFIX "/namespaces/emojivoto/deployments", 1);
	ck_assert_str_eq(str_at(json_object_get(json_array_get(items, 0), "metadata"), "name"),
	                 "ok");
}
END_TEST

/* ---- edges ---- */

/* An edge series of deployments: caller (namespace, deployment) to callee. */
static void add_edge(int q, double value, const char *classification_or_le, const char *src_ns,
                     const char *src, const char *dst_ns, const char *dst)
{
	if (q == 0)
		add_series(0, value, "classification", classification_or_le, "deployment", src,
		           "dst_deployment", dst, "dst_namespace", dst_ns, "namespace", src_ns,
		           END);
	else
		add_series(1, value, "deployment", src, "dst_deployment", dst, "dst_namespace",
		           dst_ns, "le", classification_or_le, "namespace", src_ns, END);
}

START_TEST(test_edges)
{
	route_for(PREFIX "/namespaces/emojivoto/deployments/web/edges", NULL);
	/* to: web calls emoji and voting */
	add_edge(0, 10.0, "success", "emojivoto", "web", "emojivoto", "emoji");
	add_edge(0, 1.0, "failure", "emojivoto", "web", "emojivoto", "emoji");
	add_edge(0, 20.0, "success", "emojivoto", "web", "backend", "voting");
	/* from: vote-bot and emoji call web; load/web is another workload */
	add_edge(0, 30.0, "success", "emojivoto", "vote-bot", "emojivoto", "web");
	add_edge(0, 5.0, "success", "emojivoto", "emoji", "emojivoto", "web");
	add_edge(0, 7.0, "failure", "load", "web", "emojivoto", "web");
	/* not ours */
	add_edge(0, 99.0, "success", "other", "web", "other", "emoji");
	/* to-emoji latency */
	for (int i = 0; i < 26; i++)
		add_edge(1, worked_counts[i], linkerd_le[i], "emojivoto", "web", "emojivoto",
		         "emoji");
	json_t *list = assemble(EVAL_UNIX);

	const char *link = PREFIX "/namespaces/emojivoto/deployments/web/edges";
	json_t *items = list_items(list, link, 5);
	assert_ref(json_object_get(list, "resource"), "Deployment", "emojivoto", "web");

	/* from items first, then to items; each sorted by namespace/name. */
	static const struct {
		const char *direction, *ns, *name;
	} expect[5] = {
	    {"from", "emojivoto", "emoji"}, {"from", "emojivoto", "vote-bot"},
	    {"from", "load", "web"},        {"to", "backend", "voting"},
	    {"to", "emojivoto", "emoji"},
	};
	for (size_t i = 0; i < 5; i++) {
		json_t *tm = json_array_get(items, i);
		assert_traffic_metrics(tm, "Deployment", "emojivoto", "web", link, "30s",
		                       EVAL_TEXT);
		assert_edge(tm, expect[i].direction, "Deployment", expect[i].ns, expect[i].name);
	}
	/* Both directions of emoji are kept apart. */
	assert_metrics(json_array_get(items, 0), "0", "0", "0", "5", "0");
	assert_metrics(json_array_get(items, 1), "0", "0", "0", "30", "0");
	assert_metrics(json_array_get(items, 2), "0", "0", "0", "0", "7");
	assert_metrics(json_array_get(items, 3), "0", "0", "0", "20", "0");
	assert_metrics(json_array_get(items, 4), "20", "7609m", "2409m", "10", "1");
}
END_TEST

START_TEST(test_edges_self_call)
{
	/* web calling web is both an edge to web and an edge from web. */
	route_for(PREFIX "/namespaces/emojivoto/deployments/web/edges", NULL);
	add_edge(0, 2.0, "success", "emojivoto", "web", "emojivoto", "web");
	add_edge(0, 1.0, "success", "emojivoto", "web", "emojivoto", "emoji");
	json_t *list = assemble(EVAL_UNIX);
	json_t *items = list_items(list, PREFIX "/namespaces/emojivoto/deployments/web/edges", 3);
	assert_edge(json_array_get(items, 0), "from", "Deployment", "emojivoto", "web");
	assert_metrics(json_array_get(items, 0), "0", "0", "0", "2", "0");
	assert_edge(json_array_get(items, 1), "to", "Deployment", "emojivoto", "emoji");
	assert_edge(json_array_get(items, 2), "to", "Deployment", "emojivoto", "web");
	assert_metrics(json_array_get(items, 2), "0", "0", "0", "2", "0");
}
END_TEST

START_TEST(test_namespace_edges)
{
	route_for(PREFIX "/namespaces/emojivoto/edges", "2m");
	add_series(0, 4.0, "classification", "success", "dst_namespace", "backend", "namespace",
	           "emojivoto", END);
	add_series(0, 6.0, "classification", "success", "dst_namespace", "emojivoto", "namespace",
	           "load", END);
	json_t *list = assemble(EVAL_UNIX);
	const char *link = PREFIX "/namespaces/emojivoto/edges";
	json_t *items = list_items(list, link, 2);
	assert_ref(json_object_get(list, "resource"), "Namespace", NULL, "emojivoto");
	assert_traffic_metrics(json_array_get(items, 0), "Namespace", NULL, "emojivoto", link,
	                       "2m0s", EVAL_TEXT);
	assert_edge(json_array_get(items, 0), "from", "Namespace", NULL, "load");
	assert_metrics(json_array_get(items, 0), "0", "0", "0", "6", "0");
	assert_edge(json_array_get(items, 1), "to", "Namespace", NULL, "backend");
	assert_metrics(json_array_get(items, 1), "0", "0", "0", "4", "0");
}
END_TEST

/* Many items: the hash table grows and stays consistent. */
START_TEST(test_many_items)
{
	route_for(PREFIX "/namespaces/emojivoto/pods", NULL);
	static char names[300][16];
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof names[i], "pod-%03d", 299 - i);
		add_series(0, (double)(299 - i), "classification", "success", "namespace",
		           "emojivoto", "pod", names[i], END);
		add_series(1, 1.0, "le", "+Inf", "namespace", "emojivoto", "pod", names[i], END);
	}
	json_t *list = assemble(EVAL_UNIX);
	json_t *items = list_items(list, PREFIX "/namespaces/emojivoto/pods", 300);
	for (size_t i = 0; i < 300; i++) {
		json_t *tm = json_array_get(items, i);
		char name[16], value[16];
		snprintf(name, sizeof name, "pod-%03zu", i);
		snprintf(value, sizeof value, "%zu", i);
		ck_assert_str_eq(str_at(json_object_get(tm, "metadata"), "name"), name);
		assert_metrics(tm, "0", "0", "0", value, "0");
	}
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *assemble_suite(void)
{
	Suite *s = suite_create("assemble");
	TCase *obj = tcase_create("object");
	tcase_add_checked_fixture(obj, setup, teardown);
	tcase_add_test(obj, test_object_worked_example);
	tcase_add_test(obj, test_object_no_series);
	tcase_add_test(obj, test_object_idle_histogram);
	tcase_add_test(obj, test_nan_ignored);
	tcase_add_test(obj, test_object_other_namespace_not_counted);
	tcase_add_test(obj, test_namespace_list_other_namespace_not_counted);
	tcase_add_loop_test(obj, test_quantities, 0, COUNT(quantity_cases));
	tcase_add_loop_test(obj, test_windows, 0, COUNT(window_cases));
	tcase_add_test(obj, test_timestamps);
	tcase_add_test(obj, test_latency_scale);
	tcase_add_test(obj, test_many_buckets);
	tcase_add_test(obj, test_namespace_object);
	suite_add_tcase(s, obj);

	TCase *lists = tcase_create("lists");
	tcase_add_checked_fixture(lists, setup, teardown);
	tcase_add_test(lists, test_namespace_list_sorted);
	tcase_add_test(lists, test_cluster_list_sorted);
	tcase_add_test(lists, test_empty_lists);
	tcase_add_test(lists, test_namespaces_list);
	tcase_add_test(lists, test_list_drops_invalid_names);
	tcase_add_test(lists, test_many_items);
	suite_add_tcase(s, lists);

	TCase *edges = tcase_create("edges");
	tcase_add_checked_fixture(edges, setup, teardown);
	tcase_add_test(edges, test_edges);
	tcase_add_test(edges, test_edges_self_call);
	tcase_add_test(edges, test_namespace_edges);
	suite_add_tcase(s, edges);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(assemble_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

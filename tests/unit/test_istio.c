/* test_istio: the Istio adapter compiled into the test binary, driven through
 * its descriptor as the server drives it: options, kinds per mode, plans,
 * the PromQL its templates render to (through core/promql.c), identify() on
 * label sets shaped like Prometheus' answers (reference mesh-telemetry.md
 * sections 3 and 4), and assemble_json() on Mixer's seconds histogram to
 * prove the conversion to milliseconds. */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "promql.h"
#include "router.h"
#include "smi-metrics/adapter.h"

const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

#define PREFIX   "/apis/metrics.smi-spec.io/v1alpha1"
#define END      ((const char *)NULL)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a host whose options each test sets ---- */

typedef struct option_value {
	const char *key;
	const char *text; /* NULL: the key is present with a non-string type */
} option_value;

static option_value options[4];
static size_t n_options;
static char last_log[256];

static void set_option(const char *key, const char *text)
{
	options[n_options].key = key;
	options[n_options].text = text;
	n_options++;
}

static void host_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	snprintf(last_log, sizeof last_log, "%s", message);
}

static smi_status host_option(void *ctx, const char *key, smi_option_type type, void *out)
{
	(void)ctx;
	for (size_t i = 0; i < n_options; i++) {
		if (strcmp(options[i].key, key) != 0)
			continue;
		if (type != SMI_OPTION_STRING || !options[i].text)
			return SMI_ERR_OPTION;
		*(const char **)out = options[i].text;
		return SMI_OK;
	}
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

static void setup(void)
{
	desc = smi_adapter_descriptor_v1();
	n_options = 0;
	last_log[0] = '\0';
	state = NULL;
}

static void teardown(void)
{
	if (state)
		desc->close(state);
	state = NULL;
}

/* Opens with the options set so far; fails the test on error. */
static void open_adapter(void)
{
	char err[256] = "";
	ck_assert_msg(desc->open(&host, &state, err, sizeof err) == SMI_OK, "open: %s", err);
	ck_assert_ptr_nonnull(state);
}

static void open_mode(const char *mode)
{
	set_option("mode", mode);
	open_adapter();
}

/* Opening must fail with SMI_ERR_OPTION and a message containing `want`. */
static void expect_open_error(const char *want)
{
	char err[256] = "";
	void *st = NULL;
	ck_assert_int_eq(desc->open(&host, &st, err, sizeof err), SMI_ERR_OPTION);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
}

static smi_request request(smi_kind kind, smi_scope scope, const char *ns, const char *name)
{
	smi_request r = {
	    .struct_size = sizeof r,
	    .kind = kind,
	    .scope = scope,
	    .namespace_name = ns,
	    .name = name,
	    .window_seconds = 30,
	};
	return r;
}

static smi_plan plan_for(const smi_request *req)
{
	smi_plan plan;
	memset(&plan, 0, sizeof plan);
	plan.struct_size = sizeof plan;
	ck_assert_int_eq(desc->plan(state, req, &plan), SMI_OK);
	ck_assert_uint_eq(plan.n_queries, 2);
	ck_assert_int_eq(plan.queries[0].role, SMI_ROLE_COUNTS);
	ck_assert_int_eq(plan.queries[1].role, SMI_ROLE_LATENCY);
	return plan;
}

static const char *template_text(const char *id)
{
	for (size_t i = 0; i < desc->n_templates; i++)
		if (strcmp(desc->templates[i].id, id) == 0)
			return desc->templates[i].text;
	ck_abort_msg("no template %s", id);
	return NULL;
}

static char *render(const smi_request *req, uint32_t index)
{
	smi_plan plan = plan_for(req);
	char err[256] = "";
	char *out = promql_render(template_text(plan.queries[index].template_id),
	                          &plan.queries[index], req, err, sizeof err);
	ck_assert_msg(out != NULL, "render %s failed: %s", plan.queries[index].template_id, err);
	return out;
}

/* ---- descriptor, options, kinds ---- */

START_TEST(test_descriptor)
{
	const smi_adapter_descriptor *d = smi_adapter_descriptor_v1();
	ck_assert_ptr_eq(d, smi_adapter_descriptor_v1());
	ck_assert_uint_eq(d->abi_major, SMI_ADAPTER_ABI_MAJOR);
	ck_assert_uint_eq(d->abi_minor, SMI_ADAPTER_ABI_MINOR);
	ck_assert_uint_eq(d->struct_size, sizeof(smi_adapter_descriptor));
	ck_assert_str_eq(d->name, "istio");
	ck_assert(d->version && d->version[0]);
	ck_assert(d->description && d->description[0]);
	ck_assert_uint_eq(d->n_templates, 14);
	for (size_t i = 0; i < d->n_templates; i++) {
		char err[256] = "";
		ck_assert(d->templates[i].description && d->templates[i].description[0]);
		ck_assert_msg(promql_check_template(d->templates[i].text, err, sizeof err),
		              "%s: %s", d->templates[i].id, err);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(d->templates[i].id, d->templates[j].id);
	}
}
END_TEST

START_TEST(test_open_defaults)
{
	open_adapter();
	/* Telemetry v2: every kind but replicasets (Deployment-owned
	 * ReplicaSets are reported as their Deployment). */
	uint64_t mask = desc->kinds(state);
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++)
		ck_assert_msg(((mask >> k) & 1) == (k != SMI_KIND_REPLICASET), "kind %u", k);
	ck_assert_uint_eq(mask >> SMI_KIND_COUNT_V1, 0);
}
END_TEST

START_TEST(test_open_modes)
{
	open_mode("telemetry-v2");
	desc->close(state);
	state = NULL;
	n_options = 0;
	open_mode("mixer");
	/* Mixer owners carry the kind: all eight kinds. */
	ck_assert_uint_eq(desc->kinds(state), (UINT64_C(1) << SMI_KIND_COUNT_V1) - 1);
}
END_TEST

typedef struct bad_option {
	const char *key, *text, *message;
} bad_option;

static const bad_option bad_options[] = {
    {"mode", "Mixer", "adapter.options.mode: \"Mixer\" is not a valid mode"},
    {"mode", "", "is not a valid mode"},
    {"mode", "ambient", "telemetry-v2 (the default) reads sidecar and ambient"},
    {"mode", NULL, "adapter.options.mode must be a string"},
    {"failureStatus", "4xx", "\"4xx\" is not a valid value (expected \"5xx\" or \"4xx,5xx\")"},
    {"failureStatus", "4xx, 5xx", "is not a valid value"},
    {"failureStatus", NULL, "failureStatus must be a string"},
    {"podLabel", "pod-name", "adapter.options.podLabel: \"pod-name\" is not a Prometheus label"},
    {"podLabel", "__name__", "is not a Prometheus label name"},
    {"namespaceLabel", "", "adapter.options.namespaceLabel: \"\" is not"},
    {"namespaceLabel", "1ns", "is not a Prometheus label name"},
};

START_TEST(test_open_bad_options)
{
	const bad_option *b = &bad_options[_i];
	set_option(b->key, b->text);
	expect_open_error(b->message);
}
END_TEST

START_TEST(test_pod_label_options)
{
	set_option("podLabel", "kubernetes_pod_name");
	set_option("namespaceLabel", "kubernetes_namespace");
	open_adapter();
	smi_request req = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	char *q = render(&req, 0);
	ck_assert_str_eq(q,
	                 "sum by (kubernetes_namespace,kubernetes_pod_name, response_code, "
	                 "grpc_response_status) (increase(istio_requests_total{reporter="
	                 "\"destination\", kubernetes_namespace=\"emojivoto\",kubernetes_pod_name!="
	                 "\"\"}[30s]))");
	free(q);
	ck_assert_str_eq(last_log, "");
}
END_TEST

START_TEST(test_pod_label_option_warns_in_mixer_mode)
{
	set_option("mode", "mixer");
	set_option("podLabel", "pod_name");
	open_adapter();
	ck_assert_ptr_nonnull(strstr(last_log, "podLabel has no effect in mode mixer"));
}
END_TEST

/* ---- plans and rendering ---- */

START_TEST(test_plan_v2)
{
	open_adapter();
	smi_request obj = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_plan p = plan_for(&obj);
	ck_assert_str_eq(p.queries[0].template_id, "resource.counts");
	ck_assert_str_eq(p.queries[1].template_id, "resource.latency");
	ck_assert_str_eq(p.queries[0].self.namespace_label, "destination_workload_namespace");
	ck_assert_str_eq(p.queries[0].self.name_label, "destination_workload");
	ck_assert(p.queries[1].latency_to_ms == 1.0);

	smi_request edges = request(SMI_KIND_STATEFULSET, SMI_SCOPE_EDGES, "datastore", "vote-db");
	p = plan_for(&edges);
	ck_assert_str_eq(p.queries[0].template_id, "edges.counts");
	ck_assert_str_eq(p.queries[1].template_id, "edges.latency");
	ck_assert_str_eq(p.queries[0].self.name_label, "source_workload");
	ck_assert_str_eq(p.queries[0].peer.name_label, "destination_workload");

	smi_request pods = request(SMI_KIND_POD, SMI_SCOPE_OBJECT, "emojivoto", "web-1");
	p = plan_for(&pods);
	ck_assert_str_eq(p.queries[0].template_id, "pods.counts");
	ck_assert_str_eq(p.queries[0].self.namespace_label, "namespace");
	ck_assert_str_eq(p.queries[0].self.name_label, "pod");

	smi_request ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	p = plan_for(&ns);
	ck_assert_str_eq(p.queries[0].self.name_label, "destination_workload_namespace");
}
END_TEST

START_TEST(test_plan_unsupported)
{
	smi_plan p = {.struct_size = sizeof p};
	open_adapter();
	/* Telemetry v2 knows peers as workloads only: no pod edges. */
	smi_request req = request(SMI_KIND_POD, SMI_SCOPE_EDGES, "emojivoto", "web-1");
	ck_assert_int_eq(desc->plan(state, &req, &p), SMI_ERR_UNSUPPORTED);
	req = request(SMI_KIND_REPLICASET, SMI_SCOPE_OBJECT, "emojivoto", "web-7f8455487f");
	ck_assert_int_eq(desc->plan(state, &req, &p), SMI_ERR_UNSUPPORTED);
	req = request((smi_kind)SMI_KIND_COUNT_V1, SMI_SCOPE_OBJECT, "emojivoto", "x");
	ck_assert_int_eq(desc->plan(state, &req, &p), SMI_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_plan_mixer)
{
	open_mode("mixer");
	smi_request obj = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_plan p = plan_for(&obj);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.object.counts");
	ck_assert_str_eq(p.queries[1].template_id, "mixer.object.latency");
	ck_assert_str_eq(p.queries[0].self.name_label, "destination_owner");
	/* istio_smi_request_duration_seconds: bounds are seconds. */
	ck_assert(p.queries[1].latency_to_ms == 1000.0);

	smi_request list = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	p = plan_for(&list);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.resource.counts");
	ck_assert_str_eq(p.queries[0].self.name_label, "destination_uid");

	smi_request edges = request(SMI_KIND_POD, SMI_SCOPE_EDGES, "emojivoto", "web-1");
	p = plan_for(&edges);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.edges.counts");
	ck_assert_str_eq(p.queries[0].self.name_label, "source_uid");
	ck_assert_str_eq(p.queries[0].peer.name_label, "destination_uid");

	smi_request ns_edges = request(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	p = plan_for(&ns_edges);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.namespace-edges.counts");
	smi_request ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	p = plan_for(&ns);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.resource.counts");

	smi_request rs = request(SMI_KIND_REPLICASET, SMI_SCOPE_OBJECT, "emojivoto", "bare");
	p = plan_for(&rs);
	ck_assert_str_eq(p.queries[0].template_id, "mixer.object.counts");
}
END_TEST

START_TEST(test_render_v2_object)
{
	open_adapter();
	smi_request req = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	char *q = render(&req, 0);
	ck_assert_str_eq(
	    q,
	    "sum by (destination_workload_namespace,destination_workload, response_code, "
	    "grpc_response_status) (sum by (destination_workload_namespace, "
	    "destination_workload, response_code, grpc_response_status) "
	    "(increase(istio_requests_total{reporter=\"destination\", "
	    "destination_workload_namespace=\"emojivoto\",destination_workload=\"web\"}[30s])) "
	    "or on (destination_workload_namespace, destination_workload) sum by "
	    "(destination_workload_namespace, destination_workload, response_code, "
	    "grpc_response_status) (increase(istio_requests_total{reporter=\"waypoint\", "
	    "destination_workload_namespace=\"emojivoto\",destination_workload=\"web\"}[30s])))");
	free(q);
	q = render(&req, 1);
	ck_assert_ptr_nonnull(
	    strstr(q, "istio_request_duration_milliseconds_bucket{reporter="
	              "\"destination\", destination_workload_namespace=\"emojivoto\","
	              "destination_workload=\"web\"}[30s]"));
	ck_assert_ptr_nonnull(strstr(q, "sum by (destination_workload_namespace, "
	                                "destination_workload, le)"));
	free(q);
}
END_TEST

START_TEST(test_render_v2_edges)
{
	open_adapter();
	smi_request req = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	char *q = render(&req, 0);
	/* to: web as the source, source reports else the waypoint, per pair. */
	ck_assert_ptr_nonnull(strstr(q,
	                             "label_replace(sum by (source_workload_namespace,"
	                             "source_workload, destination_workload_namespace,"
	                             "destination_workload, response_code, grpc_response_status)"));
	ck_assert_ptr_nonnull(strstr(q,
	                             "{reporter=\"source\", source_workload_namespace="
	                             "\"emojivoto\",source_workload=\"web\", destination_workload!="
	                             "\"\"}[30s]"));
	ck_assert_ptr_nonnull(strstr(q,
	                             "{reporter=\"waypoint\", source_workload_namespace="
	                             "\"emojivoto\",source_workload=\"web\", destination_workload!="
	                             "\"\"}[30s]"));
	ck_assert_ptr_nonnull(strstr(q, "\"smi_edge\", \"to\", \"\", \"\") or label_replace("));
	/* from: web as the destination, destination reports else the waypoint. */
	ck_assert_ptr_nonnull(strstr(q,
	                             "{reporter=\"destination\", destination_workload_namespace="
	                             "\"emojivoto\",destination_workload=\"web\", source_workload!="
	                             "\"\"}[30s]"));
	ck_assert_ptr_nonnull(strstr(q,
	                             "{reporter=\"waypoint\", destination_workload_namespace="
	                             "\"emojivoto\",destination_workload=\"web\", source_workload!="
	                             "\"\"}[30s]"));
	ck_assert_ptr_nonnull(strstr(q, "\"smi_edge\", \"from\", \"\", \"\")"));
	/* The preference is decided per pair of workloads. */
	ck_assert_ptr_nonnull(strstr(q, "or on (source_workload_namespace, source_workload, "
	                                "destination_workload_namespace, destination_workload)"));
	free(q);
}
END_TEST

START_TEST(test_render_mixer_object)
{
	open_mode("mixer");
	smi_request req = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web.v2");
	char *q = render(&req, 0);
	/* The namespace selects exactly, the owner identifies in identify():
	 * the name never enters the query, let alone a regex. */
	ck_assert_str_eq(q,
	                 "label_replace(sum by (destination_workload_namespace,destination_owner, "
	                 "response_code, grpc_response_status) (increase(istio_smi_requests_total{"
	                 "reporter=\"destination\", destination_workload_namespace=\"emojivoto\", "
	                 "destination_owner!=\"\"}[30s])), \"destination_pod\", \"$1\", "
	                 "\"destination_uid\", \"kubernetes://(.+)[.][^.]+\")");
	free(q);
	q = render(&req, 1);
	ck_assert_ptr_nonnull(
	    strstr(q, "istio_smi_request_duration_seconds_bucket{reporter="
	              "\"destination\", destination_workload_namespace=\"emojivoto\""));
	free(q);
}
END_TEST

START_TEST(test_render_every_request)
{
	/* Every kind and scope the adapter accepts renders in both modes. */
	static const smi_scope scopes[] = {SMI_SCOPE_OBJECT, SMI_SCOPE_NAMESPACE_LIST,
	                                   SMI_SCOPE_CLUSTER_LIST, SMI_SCOPE_EDGES};
	open_mode(_i == 0 ? "telemetry-v2" : "mixer");
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++) {
		if (!((desc->kinds(state) >> k) & 1))
			continue;
		for (size_t s = 0; s < COUNT(scopes); s++) {
			bool ns_kind = k == SMI_KIND_NAMESPACE;
			bool one = scopes[s] == SMI_SCOPE_OBJECT || scopes[s] == SMI_SCOPE_EDGES;
			const char *ns =
			    ns_kind || scopes[s] == SMI_SCOPE_CLUSTER_LIST ? NULL : "emojivoto";
			const char *name = one ? (ns_kind ? "emojivoto" : "web") : NULL;
			if (ns_kind && scopes[s] == SMI_SCOPE_NAMESPACE_LIST)
				continue;
			smi_request req = request((smi_kind)k, scopes[s], ns, name);
			smi_plan p = {.struct_size = sizeof p};
			if (desc->plan(state, &req, &p) == SMI_ERR_UNSUPPORTED) {
				ck_assert(_i == 0 && k == SMI_KIND_POD &&
				          scopes[s] == SMI_SCOPE_EDGES);
				continue;
			}
			for (uint32_t i = 0; i < 2; i++)
				free(render(&req, i));
		}
	}
}
END_TEST

/* ---- identify ---- */

typedef struct series_builder {
	smi_label labels[24];
	smi_series series;
} series_builder;

/* A series from name/value pairs (any order: the host looks names up). */
static const smi_series *make_series(series_builder *b, ...)
{
	va_list ap;
	size_t n = 0;
	va_start(ap, b);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (!name)
			break;
		b->labels[n].name = name;
		b->labels[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	b->series.struct_size = sizeof b->series;
	b->series.n_labels = n;
	b->series.labels = b->labels;
	return &b->series;
}

static smi_identity identify(const smi_request *req, uint32_t query, const smi_series *s)
{
	smi_identity id;
	memset(&id, 0xa5, sizeof id); /* identify() must set what it reports */
	id.struct_size = sizeof id;
	ck_assert_int_eq(desc->identify(state, req, query, s, &id), SMI_OK);
	return id;
}

typedef struct outcome_case {
	const char *failure_status; /* option value, NULL: default */
	const char *code, *grpc;    /* NULL: label absent */
	smi_outcome want;
} outcome_case;

static const outcome_case outcome_cases[] = {
    {NULL, "200", NULL, SMI_OUTCOME_SUCCESS},
    {NULL, "204", NULL, SMI_OUTCOME_SUCCESS},
    {NULL, "301", NULL, SMI_OUTCOME_SUCCESS},
    {NULL, "404", NULL, SMI_OUTCOME_SUCCESS},
    {NULL, "500", NULL, SMI_OUTCOME_FAILURE},
    {NULL, "503", NULL, SMI_OUTCOME_FAILURE},
    {NULL, "0", NULL, SMI_OUTCOME_FAILURE}, /* no response */
    {NULL, "200", "0", SMI_OUTCOME_SUCCESS},
    {NULL, "200", "5", SMI_OUTCOME_FAILURE}, /* any non-OK gRPC status */
    {NULL, "200", "14", SMI_OUTCOME_FAILURE},
    {NULL, "200", "", SMI_OUTCOME_SUCCESS},
    {NULL, NULL, NULL, SMI_OUTCOME_SUCCESS}, /* response_code removed by tagOverrides */
    {NULL, "5000", NULL, SMI_OUTCOME_SUCCESS},
    {"5xx", "404", NULL, SMI_OUTCOME_SUCCESS},
    {"5xx", "502", NULL, SMI_OUTCOME_FAILURE},
    {"4xx,5xx", "404", NULL, SMI_OUTCOME_FAILURE},
    {"4xx,5xx", "429", NULL, SMI_OUTCOME_FAILURE},
    {"4xx,5xx", "500", NULL, SMI_OUTCOME_FAILURE},
    {"4xx,5xx", "200", NULL, SMI_OUTCOME_SUCCESS},
    {"4xx,5xx", "302", NULL, SMI_OUTCOME_SUCCESS},
    {"4xx,5xx", "200", "3", SMI_OUTCOME_FAILURE},
};

START_TEST(test_identify_outcome)
{
	const outcome_case *c = &outcome_cases[_i / 2];
	if (c->failure_status)
		set_option("failureStatus", c->failure_status);
	open_mode(_i % 2 == 0 ? "telemetry-v2" : "mixer");
	smi_request req = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	series_builder b;
	smi_label *l = b.labels;
	size_t n = 0;
	l[n++] = (smi_label){"destination_workload_namespace", "emojivoto"};
	if (c->code)
		l[n++] = (smi_label){"response_code", c->code};
	if (c->grpc)
		l[n++] = (smi_label){"grpc_response_status", c->grpc};
	b.series = (smi_series){.struct_size = sizeof b.series, .n_labels = n, .labels = l};
	smi_identity id = identify(&req, 0, &b.series);
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_msg(id.outcome == c->want, "%s code %s grpc %s: outcome %d", c->failure_status,
	              c->code, c->grpc, id.outcome);
	/* Latency series feed no count. */
	id = identify(&req, 1, &b.series);
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
}
END_TEST

START_TEST(test_identify_v2_resource)
{
	series_builder b;
	open_adapter();
	smi_request list =
	    request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	smi_identity id = identify(&list, 0,
	                           make_series(&b, "destination_workload", "web",
	                                       "destination_workload_namespace", "emojivoto",
	                                       "response_code", "200", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_namespace, "emojivoto");
	ck_assert_str_eq(id.self_name, "web");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_SUCCESS);

	/* Istio's placeholder for what it could not identify is dropped. */
	id = identify(&list, 0,
	              make_series(&b, "destination_workload", "unknown",
	                          "destination_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&list, 0,
	              make_series(&b, "destination_workload", "web",
	                          "destination_workload_namespace", "unknown", END));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&list, 0, make_series(&b, "destination_workload", "web", END));
	ck_assert_uint_eq(id.feeds, 0);

	/* Pods: the scrape's target labels of the reporting pod. */
	smi_request pods = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	id = identify(&pods, 1,
	              make_series(&b, "le", "5", "namespace", "emojivoto", "pod",
	                          "web-7f8455487f-rw9h5", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_name, "web-7f8455487f-rw9h5");
	ck_assert_str_eq(id.self_namespace, "emojivoto");

	smi_request ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	id = identify(&ns, 0,
	              make_series(&b, "destination_workload_namespace", "datastore",
	                          "response_code", "500", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_name, "datastore");
	ck_assert_ptr_null(id.self_namespace);
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_FAILURE);
}
END_TEST

/* An edge series of telemetry v2, as the edges templates return them. */
static const smi_series *v2_edge(series_builder *b, const char *edge, const char *src_ns,
                                 const char *src, const char *dst_ns, const char *dst)
{
	return make_series(b, "destination_workload", dst, "destination_workload_namespace", dst_ns,
	                   "response_code", "200", "smi_edge", edge, "source_workload", src,
	                   "source_workload_namespace", src_ns, END);
}

START_TEST(test_identify_v2_edges)
{
	series_builder b;
	open_adapter();
	smi_request web = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");

	smi_identity id =
	    identify(&web, 0, v2_edge(&b, "to", "emojivoto", "web", "emojivoto", "emoji"));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_namespace, "emojivoto");
	ck_assert_str_eq(id.peer_name, "emoji");
	ck_assert_str_eq(id.self_name, "web");

	id = identify(&web, 0, v2_edge(&b, "from", "emojivoto", "vote-bot", "emojivoto", "web"));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_name, "vote-bot");

	/* A cross-namespace peer keeps its namespace. */
	id = identify(&web, 0, v2_edge(&b, "to", "emojivoto", "web", "datastore", "vote-db"));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_namespace, "datastore");

	/* A self-call arrives as two series, one per direction. */
	id = identify(&web, 0, v2_edge(&b, "to", "emojivoto", "web", "emojivoto", "web"));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	id = identify(&web, 0, v2_edge(&b, "from", "emojivoto", "web", "emojivoto", "web"));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);

	/* Unmeshed callers are not edges (deliberately: "unknown" is no peer). */
	id = identify(&web, 0, v2_edge(&b, "from", "unknown", "unknown", "emojivoto", "web"));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&web, 0, v2_edge(&b, "to", "emojivoto", "web", "emojivoto", "unknown"));
	ck_assert_uint_eq(id.feeds, 0);

	/* The resource side must be exactly the request. */
	id = identify(&web, 0, v2_edge(&b, "to", "emojivoto", "web-admin", "emojivoto", "emoji"));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&web, 0, v2_edge(&b, "to", "other", "web", "emojivoto", "emoji"));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&web, 0, v2_edge(&b, "from", "emojivoto", "web", "emojivoto", "emoji"));
	ck_assert_uint_eq(id.feeds, 0);
	/* No direction marker, or an unknown one: not an edge series. */
	id = identify(&web, 0, v2_edge(&b, "sideways", "emojivoto", "web", "emojivoto", "emoji"));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&web, 0,
	              make_series(&b, "destination_workload", "emoji",
	                          "destination_workload_namespace", "emojivoto", "source_workload",
	                          "web", "source_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, 0);

	/* Namespace edges. */
	smi_request ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	id = identify(&ns, 0,
	              make_series(&b, "destination_workload_namespace", "datastore", "smi_edge",
	                          "to", "source_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_name, "datastore");
	ck_assert_ptr_null(id.peer_namespace);
}
END_TEST

START_TEST(test_identify_v2_names_exact)
{
	/* vote.bot is a regex matching vote-bot; vote a prefix of it. */
	static const char *const others[] = {"vote.bot", "vote", "vote-bo", "bot", "Vote-bot"};
	series_builder b;
	open_adapter();
	for (size_t i = 0; i < COUNT(others); i++) {
		smi_request req =
		    request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", others[i]);
		smi_identity id = identify(
		    &req, 0, v2_edge(&b, "to", "emojivoto", "vote-bot", "emojivoto", "web"));
		ck_assert_msg(id.feeds == 0, "%s took vote-bot's traffic", others[i]);
	}
}
END_TEST

typedef struct owner_case {
	smi_kind kind;
	const char *ns, *owner;
	const char *want; /* NULL: not this kind's resource */
} owner_case;

static const owner_case owner_cases[] = {
    {SMI_KIND_DEPLOYMENT, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web", "web"},
    {SMI_KIND_DEPLOYMENT, "emojivoto",
     "kubernetes://apis/extensions/v1beta1/namespaces/emojivoto/deployments/web", "web"},
    {SMI_KIND_DEPLOYMENT, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web.v2", "web.v2"},
    {SMI_KIND_STATEFULSET, "datastore",
     "kubernetes://apis/apps/v1/namespaces/datastore/statefulsets/vote-db", "vote-db"},
    {SMI_KIND_JOB, "emojivoto", "kubernetes://apis/batch/v1/namespaces/emojivoto/jobs/tally",
     "tally"},
    {SMI_KIND_DAEMONSET, "kube-system",
     "kubernetes://apis/apps/v1/namespaces/kube-system/daemonsets/node-agent", "node-agent"},
    {SMI_KIND_REPLICASET, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/replicasets/bare", "bare"},
    {SMI_KIND_REPLICATIONCONTROLLER, "emojivoto",
     "kubernetes://apis/v1/namespaces/emojivoto/replicationcontrollers/legacy", "legacy"},
    /* Another kind with the same name. */
    {SMI_KIND_DEPLOYMENT, "datastore",
     "kubernetes://apis/apps/v1/namespaces/datastore/statefulsets/vote-db", NULL},
    {SMI_KIND_STATEFULSET, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web", NULL},
    {SMI_KIND_REPLICASET, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/replicationcontrollers/x", NULL},
    /* The owner's namespace must be the workload namespace label's. */
    {SMI_KIND_DEPLOYMENT, "emojivoto", "kubernetes://apis/apps/v1/namespaces/other/deployments/web",
     NULL},
    {SMI_KIND_DEPLOYMENT, "emoji", "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web",
     NULL},
    /* Malformed or placeholder owners. */
    {SMI_KIND_DEPLOYMENT, "emojivoto", "unknown", NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto", "", NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto", "kubernetes://apis/", NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto",
     "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/", NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto", "kubernetes://apis/namespaces/emojivoto/deployments/web",
     NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto", "/apis/apps/v1/namespaces/emojivoto/deployments/web", NULL},
    {SMI_KIND_DEPLOYMENT, "emojivoto",
     "kubernetes://apis/apps/v1/namespacesXemojivoto/deployments/web", NULL},
    /* A bare pod's owner is its selfLink. */
    {SMI_KIND_DEPLOYMENT, "emojivoto", "/api/v1/namespaces/emojivoto/pods/web-1", NULL},
};

START_TEST(test_identify_mixer_owner)
{
	const owner_case *c = &owner_cases[_i];
	series_builder b;
	open_mode("mixer");
	smi_request list = request(c->kind, SMI_SCOPE_NAMESPACE_LIST, c->ns, NULL);
	smi_identity id = identify(&list, 0,
	                           make_series(&b, "destination_owner", c->owner,
	                                       "destination_workload_namespace", c->ns,
	                                       "response_code", "200", END));
	if (!c->want) {
		ck_assert_msg(id.feeds == 0, "%s took %s", c->owner, id.self_name);
		return;
	}
	ck_assert_msg(id.feeds == SMI_FEEDS_RESOURCE, "%s", c->owner);
	ck_assert_str_eq(id.self_name, c->want);
	ck_assert_str_eq(id.self_namespace, c->ns);
}
END_TEST

START_TEST(test_identify_mixer_pods_and_edges)
{
	series_builder b;
	open_mode("mixer");
	smi_request pods = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	smi_identity id = identify(
	    &pods, 1,
	    make_series(&b, "destination_pod", "web-7f8455487f-rw9h5", "destination_uid",
	                "kubernetes://web-7f8455487f-rw9h5.emojivoto",
	                "destination_workload_namespace", "emojivoto", "le", "0.005", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_name, "web-7f8455487f-rw9h5");
	/* The cut-out pod name must agree with the uid and the namespace. */
	id = identify(&pods, 1,
	              make_series(&b, "destination_pod", "web-7f8455487f", "destination_uid",
	                          "kubernetes://web-7f8455487f-rw9h5.emojivoto",
	                          "destination_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&pods, 1,
	              make_series(&b, "destination_pod", "web-1", "destination_uid",
	                          "kubernetes://web-1.other", "destination_workload_namespace",
	                          "emojivoto", END));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&pods, 1,
	              make_series(&b, "destination_uid", "unknown",
	                          "destination_workload_namespace", "unknown", END));
	ck_assert_uint_eq(id.feeds, 0);

	smi_request web = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	id = identify(
	    &web, 0,
	    make_series(&b, "destination_owner",
	                "kubernetes://apis/apps/v1/namespaces/datastore/statefulsets/vote-db",
	                "destination_workload_namespace", "datastore", "smi_edge", "to",
	                "source_owner",
	                "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web",
	                "source_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, 0); /* peers are of the requested kind */
	id = identify(
	    &web, 0,
	    make_series(&b, "destination_owner",
	                "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web",
	                "destination_workload_namespace", "emojivoto", "smi_edge", "from",
	                "source_owner",
	                "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/vote-bot",
	                "source_workload_namespace", "emojivoto", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_name, "vote-bot");
	ck_assert_str_eq(id.peer_namespace, "emojivoto");
	id = identify(&web, 0,
	              make_series(&b, "destination_owner",
	                          "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web",
	                          "destination_workload_namespace", "emojivoto", "smi_edge", "from",
	                          "source_owner", "unknown", "source_workload_namespace", "unknown",
	                          END));
	ck_assert_uint_eq(id.feeds, 0);

	smi_request pod = request(SMI_KIND_POD, SMI_SCOPE_EDGES, "emojivoto", "web-1");
	id =
	    identify(&pod, 0,
	             make_series(&b, "destination_pod", "emoji-1", "destination_uid",
	                         "kubernetes://emoji-1.emojivoto", "destination_workload_namespace",
	                         "emojivoto", "smi_edge", "to", "source_pod", "web-1", "source_uid",
	                         "kubernetes://web-1.emojivoto", "source_workload_namespace",
	                         "emojivoto", END));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_name, "emoji-1");
}
END_TEST

/* ---- Mixer seconds -> milliseconds, through assemble_json() ---- */

static prom_label label_pool[512];
static size_t labels_used;
static prom_series series_pool[2][64];

static void add_series(prom_result *res, double value, ...)
{
	prom_series *s = &res->series[res->n_series++];
	va_list ap;
	s->value = value;
	s->labels = &label_pool[labels_used];
	s->n_labels = 0;
	va_start(ap, value);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (!name)
			break;
		label_pool[labels_used].name = (char *)name;
		label_pool[labels_used].value = (char *)va_arg(ap, const char *);
		labels_used++;
		s->n_labels++;
	}
	va_end(ap);
}

static const char *metric_value(json_t *doc, const char *name)
{
	json_t *metrics = json_object_get(doc, "metrics");
	for (size_t i = 0; i < json_array_size(metrics); i++) {
		json_t *m = json_array_get(metrics, i);
		if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
			return json_string_value(json_object_get(m, "value"));
	}
	return NULL;
}

START_TEST(test_mixer_seconds_become_milliseconds)
{
	/* Cumulative bucket increases of web in seconds, as
	 * istio_smi_request_duration_seconds_bucket; the core interpolates
	 * in milliseconds because the plan says latency_to_ms = 1000:
	 *   p50: rank 500 in (0, 5 ms]:     5 * 500/600            =  4.167 ms
	 *   p90: rank 900 in (10, 25 ms]:  10 + 15 * (900-850)/130 = 15.769 ms
	 *   p99: rank 990 in (25, 50 ms]:  25 + 25 * (990-980)/20  = 37.5 ms
	 * Unconverted they would read "4m", "16m" and "38m": the v0.2 bug. */
	static const char *const le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
	                                 "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
	static const double cumulative[] = {600,  850,  980,  1000, 1000, 1000,
	                                    1000, 1000, 1000, 1000, 1000, 1000};
	static const char *const owner =
	    "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web";
	prom_result results[2];
	route rt;
	open_mode("mixer");
	route_limits limits = {
	    .window_default_seconds = 30,
	    .window_min_seconds = 10,
	    .window_max_seconds = 3600,
	    .supported_kinds = desc->kinds(state),
	};
	router_route("GET", PREFIX "/namespaces/emojivoto/deployments/web", NULL, 0, &limits, &rt);
	ck_assert_int_eq(rt.type, ROUTE_METRICS);
	smi_plan plan = plan_for(&rt.request);

	memset(results, 0, sizeof results);
	labels_used = 0;
	for (int q = 0; q < 2; q++) {
		results[q].outcome = PROM_OK;
		results[q].series = series_pool[q];
	}
	add_series(&results[0], 970.0, "destination_owner", owner, "destination_workload_namespace",
	           "emojivoto", "response_code", "200", END);
	add_series(&results[0], 30.0, "destination_owner", owner, "destination_workload_namespace",
	           "emojivoto", "response_code", "503", END);
	/* Another deployment of the namespace (the query selects them all). */
	add_series(&results[0], 5.0, "destination_owner",
	           "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web-admin",
	           "destination_workload_namespace", "emojivoto", "response_code", "200", END);
	for (size_t i = 0; i < COUNT(le); i++)
		add_series(&results[1], cumulative[i], "destination_owner", owner,
		           "destination_workload_namespace", "emojivoto", "le", le[i], END);
	for (size_t i = 0; i < COUNT(le); i++)
		add_series(&results[1], i == 0 ? 0.0 : 1.0, "destination_owner",
		           "kubernetes://apis/apps/v1/namespaces/emojivoto/deployments/web-admin",
		           "destination_workload_namespace", "emojivoto", "le", le[i], END);

	assemble_input in = {
	    .route = &rt,
	    .adapter = desc,
	    .adapter_state = state,
	    .plan = &plan,
	    .results = results,
	    .eval_unix_seconds = 1700000000,
	};
	char err[256] = "";
	char *body = assemble_json(&in, err, sizeof err);
	ck_assert_msg(body != NULL, "assemble: %s", err);
	json_t *doc = json_loads(body, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(metric_value(doc, "p50_response_latency"), "4167m");
	ck_assert_str_eq(metric_value(doc, "p90_response_latency"), "15769m");
	ck_assert_str_eq(metric_value(doc, "p99_response_latency"), "37500m");
	ck_assert_str_eq(metric_value(doc, "success_count"), "970");
	ck_assert_str_eq(metric_value(doc, "failure_count"), "30");
	json_decref(doc);
	free(body);
}
END_TEST

static Suite *istio_suite(void)
{
	Suite *s = suite_create("istio");
	TCase *o = tcase_create("options");
	tcase_add_checked_fixture(o, setup, teardown);
	tcase_add_test(o, test_descriptor);
	tcase_add_test(o, test_open_defaults);
	tcase_add_test(o, test_open_modes);
	tcase_add_loop_test(o, test_open_bad_options, 0, COUNT(bad_options));
	tcase_add_test(o, test_pod_label_options);
	tcase_add_test(o, test_pod_label_option_warns_in_mixer_mode);
	suite_add_tcase(s, o);

	TCase *p = tcase_create("plan");
	tcase_add_checked_fixture(p, setup, teardown);
	tcase_add_test(p, test_plan_v2);
	tcase_add_test(p, test_plan_unsupported);
	tcase_add_test(p, test_plan_mixer);
	tcase_add_test(p, test_render_v2_object);
	tcase_add_test(p, test_render_v2_edges);
	tcase_add_test(p, test_render_mixer_object);
	tcase_add_loop_test(p, test_render_every_request, 0, 2);
	suite_add_tcase(s, p);

	TCase *i = tcase_create("identify");
	tcase_add_checked_fixture(i, setup, teardown);
	tcase_add_loop_test(i, test_identify_outcome, 0, 2 * COUNT(outcome_cases));
	tcase_add_test(i, test_identify_v2_resource);
	tcase_add_test(i, test_identify_v2_edges);
	tcase_add_test(i, test_identify_v2_names_exact);
	tcase_add_loop_test(i, test_identify_mixer_owner, 0, COUNT(owner_cases));
	tcase_add_test(i, test_identify_mixer_pods_and_edges);
	tcase_add_test(i, test_mixer_seconds_become_milliseconds);
	suite_add_tcase(s, i);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(istio_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

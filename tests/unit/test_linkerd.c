/* test_linkerd: the Linkerd adapter compiled into the test binary, driven
 * through its descriptor as the server drives it: descriptor fields, kinds,
 * plans, the PromQL its templates render to (through core/promql.c), and
 * identify() on label sets shaped like Prometheus' answers (reference
 * mesh-telemetry.md section 2). */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "promql.h"
#include "smi-metrics/adapter.h"

const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

/* ---- a host table ---- */

static int log_calls;

static void host_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
	log_calls++;
}

/* adapter.options.failureStatus, NULL when not configured. */
static const char *failure_status_option;

static smi_status host_option(void *ctx, const char *key, smi_option_type type, void *out)
{
	(void)ctx;
	if (!failure_status_option || strcmp(key, "failureStatus") != 0)
		return SMI_ERR_UNSUPPORTED; /* no options configured */
	if (type != SMI_OPTION_STRING)
		return SMI_ERR_OPTION;
	*(const char **)out = failure_status_option;
	return SMI_OK;
}

static const smi_host host = {
    .struct_size = sizeof(smi_host),
    .abi_major = SMI_ADAPTER_ABI_MAJOR,
    .abi_minor = SMI_ADAPTER_ABI_MINOR,
    .ctx = NULL,
    .log = host_log,
    .option = host_option,
    .label = assemble_series_label,
};

static const smi_adapter_descriptor *desc;
static void *state;

static void setup(void)
{
	char err[128] = "";
	desc = smi_adapter_descriptor_v1();
	ck_assert_ptr_nonnull(desc);
	ck_assert_int_eq(desc->open(&host, &state, err, sizeof err), SMI_OK);
	ck_assert_ptr_nonnull(state);
}

static void teardown(void)
{
	desc->close(state);
	state = NULL;
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

/* Renders plan query `index` of `req` through the core's renderer. */
static char *render(const smi_request *req, uint32_t index)
{
	smi_plan plan = plan_for(req);
	ck_assert_uint_lt(index, plan.n_queries);
	char err[256] = "";
	char *out = promql_render(template_text(plan.queries[index].template_id),
	                          &plan.queries[index], req, err, sizeof err);
	ck_assert_msg(out != NULL, "render failed: %s", err);
	return out;
}

static void expect_render(const smi_request *req, uint32_t index, const char *expected)
{
	char *out = render(req, index);
	ck_assert_str_eq(out, expected);
	free(out);
}

/* ---- descriptor ---- */

START_TEST(test_descriptor)
{
	const smi_adapter_descriptor *d = smi_adapter_descriptor_v1();
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_eq(d, smi_adapter_descriptor_v1()); /* side-effect free, stable */
	ck_assert_uint_eq(d->abi_major, SMI_ADAPTER_ABI_MAJOR);
	ck_assert_uint_eq(d->abi_minor, SMI_ADAPTER_ABI_MINOR);
	ck_assert_uint_eq(d->struct_size, sizeof(smi_adapter_descriptor));
	ck_assert_str_eq(d->name, "linkerd");
	ck_assert_ptr_nonnull(d->version);
	ck_assert(d->version[0] != '\0');
	ck_assert_ptr_nonnull(d->description);
	ck_assert(d->description[0] != '\0');
	ck_assert_ptr_nonnull(d->open);
	ck_assert_ptr_nonnull(d->close);
	ck_assert_ptr_nonnull(d->kinds);
	ck_assert_ptr_nonnull(d->plan);
	ck_assert_ptr_nonnull(d->identify);

	ck_assert_ptr_nonnull(d->templates);
	ck_assert_uint_eq(d->n_templates, 6);
	for (size_t i = 0; i < d->n_templates; i++) {
		const smi_template *t = &d->templates[i];
		ck_assert_ptr_nonnull(t->id);
		ck_assert_ptr_nonnull(t->text);
		ck_assert_ptr_nonnull(t->description);
		char err[256] = "";
		ck_assert_msg(promql_check_template(t->text, err, sizeof err), "%s: %s", t->id,
		              err);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(t->id, d->templates[j].id);
	}
	/* The ids operators override in the config file. */
	template_text("resource.counts");
	template_text("resource.latency");
	template_text("edges.counts");
	template_text("edges.latency");
	template_text("resource.status-counts");
	template_text("edges.status-counts");
}
END_TEST

START_TEST(test_kinds)
{
	uint64_t expected =
	    (UINT64_C(1) << SMI_KIND_NAMESPACE) | (UINT64_C(1) << SMI_KIND_POD) |
	    (UINT64_C(1) << SMI_KIND_DEPLOYMENT) | (UINT64_C(1) << SMI_KIND_STATEFULSET) |
	    (UINT64_C(1) << SMI_KIND_DAEMONSET) | (UINT64_C(1) << SMI_KIND_JOB) |
	    (UINT64_C(1) << SMI_KIND_REPLICASET) | (UINT64_C(1) << SMI_KIND_REPLICATIONCONTROLLER);
	ck_assert_uint_eq(desc->kinds(state), expected);
}
END_TEST

START_TEST(test_open_close_twice)
{
	/* No global state: two instances live side by side. */
	void *a = NULL, *b = NULL;
	char err[64];
	ck_assert_int_eq(desc->open(&host, &a, err, sizeof err), SMI_OK);
	ck_assert_int_eq(desc->open(&host, &b, err, sizeof err), SMI_OK);
	ck_assert_ptr_ne(a, b);
	desc->close(a);
	desc->close(b);
}
END_TEST

/* ---- plans ---- */

static void assert_query(const smi_query_spec *q, const char *id, smi_query_role role,
                         const char *self_ns, const char *self_name, const char *peer_ns,
                         const char *peer_name)
{
	ck_assert_uint_eq(q->struct_size, sizeof(smi_query_spec));
	ck_assert_str_eq(q->template_id, id);
	ck_assert_int_eq(q->role, role);
	ck_assert_str_eq(q->self.namespace_label, self_ns);
	ck_assert_str_eq(q->self.name_label, self_name);
	ck_assert_str_eq(q->peer.namespace_label, peer_ns);
	ck_assert_str_eq(q->peer.name_label, peer_name);
	ck_assert(q->latency_to_ms == 1.0);
}

START_TEST(test_plan_object)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_plan p = plan_for(&q);
	ck_assert_uint_eq(p.n_queries, 2);
	assert_query(&p.queries[0], "resource.counts", SMI_ROLE_COUNTS, "namespace", "deployment",
	             "dst_namespace", "dst_deployment");
	assert_query(&p.queries[1], "resource.latency", SMI_ROLE_LATENCY, "namespace", "deployment",
	             "dst_namespace", "dst_deployment");
}
END_TEST

START_TEST(test_plan_lists)
{
	smi_request ns_list = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	smi_plan p = plan_for(&ns_list);
	ck_assert_uint_eq(p.n_queries, 2);
	assert_query(&p.queries[0], "resource.counts", SMI_ROLE_COUNTS, "namespace", "pod",
	             "dst_namespace", "dst_pod");
	assert_query(&p.queries[1], "resource.latency", SMI_ROLE_LATENCY, "namespace", "pod",
	             "dst_namespace", "dst_pod");

	smi_request all = request(SMI_KIND_STATEFULSET, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	p = plan_for(&all);
	ck_assert_uint_eq(p.n_queries, 2);
	assert_query(&p.queries[0], "resource.counts", SMI_ROLE_COUNTS, "namespace", "statefulset",
	             "dst_namespace", "dst_statefulset");
	assert_query(&p.queries[1], "resource.latency", SMI_ROLE_LATENCY, "namespace",
	             "statefulset", "dst_namespace", "dst_statefulset");
}
END_TEST

START_TEST(test_plan_edges)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	smi_plan p = plan_for(&q);
	ck_assert_uint_eq(p.n_queries, 2);
	assert_query(&p.queries[0], "edges.counts", SMI_ROLE_COUNTS, "namespace", "deployment",
	             "dst_namespace", "dst_deployment");
	assert_query(&p.queries[1], "edges.latency", SMI_ROLE_LATENCY, "namespace", "deployment",
	             "dst_namespace", "dst_deployment");
}
END_TEST

typedef struct kind_case {
	smi_kind kind;
	const char *self;
	const char *peer;
} kind_case;

static const kind_case kind_cases[] = {
    {SMI_KIND_NAMESPACE, "namespace", "dst_namespace"},
    {SMI_KIND_POD, "pod", "dst_pod"},
    {SMI_KIND_DEPLOYMENT, "deployment", "dst_deployment"},
    {SMI_KIND_STATEFULSET, "statefulset", "dst_statefulset"},
    {SMI_KIND_DAEMONSET, "daemonset", "dst_daemonset"},
    /* `job` is Prometheus' own label (= linkerd-proxy). */
    {SMI_KIND_JOB, "k8s_job", "dst_k8s_job"},
    {SMI_KIND_REPLICASET, "replicaset", "dst_replicaset"},
    {SMI_KIND_REPLICATIONCONTROLLER, "replicationcontroller", "dst_replicationcontroller"},
};

START_TEST(test_plan_kind_labels)
{
	const kind_case *c = &kind_cases[_i];
	static const smi_scope scopes[] = {SMI_SCOPE_OBJECT, SMI_SCOPE_NAMESPACE_LIST,
	                                   SMI_SCOPE_CLUSTER_LIST, SMI_SCOPE_EDGES};
	for (size_t s = 0; s < 4; s++) {
		smi_request q = request(c->kind, scopes[s], "ns", "x");
		smi_plan p = plan_for(&q);
		ck_assert_uint_eq(p.n_queries, 2);
		for (uint32_t i = 0; i < 2; i++) {
			ck_assert_str_eq(p.queries[i].self.name_label, c->self);
			ck_assert_str_eq(p.queries[i].peer.name_label, c->peer);
			ck_assert_str_eq(p.queries[i].self.namespace_label, "namespace");
			ck_assert_str_eq(p.queries[i].peer.namespace_label, "dst_namespace");
			ck_assert(promql_valid_label_name(p.queries[i].self.name_label));
			ck_assert(promql_valid_label_name(p.queries[i].peer.name_label));
		}
		ck_assert_int_eq(p.queries[0].role, SMI_ROLE_COUNTS);
		ck_assert_int_eq(p.queries[1].role, SMI_ROLE_LATENCY);
	}
}
END_TEST

START_TEST(test_plan_unsupported)
{
	smi_plan p;
	memset(&p, 0, sizeof p);
	p.struct_size = sizeof p;
	smi_request q = request(SMI_KIND_COUNT_V1, SMI_SCOPE_OBJECT, "ns", "x");
	ck_assert_int_eq(desc->plan(state, &q, &p), SMI_ERR_UNSUPPORTED);
	q.kind = (smi_kind)63;
	ck_assert_int_eq(desc->plan(state, &q, &p), SMI_ERR_UNSUPPORTED);
	ck_assert_uint_eq(p.n_queries, 0);
}
END_TEST

/* ---- rendered PromQL (reference mesh-telemetry.md 2.6) ---- */

START_TEST(test_render_object)
{
	/* (a): inbound at the resource, names matched with =, one sample per
	 * classification, buckets by le for in-process quantiles. */
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	expect_render(&q, 0,
	              "sum by (namespace,deployment, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace=\"emojivoto\",deployment=\"web\"}[30s]))");
	expect_render(&q, 1,
	              "sum by (namespace,deployment, le) (increase(response_latency_ms_bucket{"
	              "direction=\"inbound\", namespace=\"emojivoto\",deployment=\"web\"}[30s]))");

	q.window_seconds = 300;
	expect_render(&q, 0,
	              "sum by (namespace,deployment, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace=\"emojivoto\",deployment=\"web\"}[300s]))");
}
END_TEST

START_TEST(test_render_edges)
{
	/* (b): both directions from the callers' outbound series: "to" selects
	 * web's own outbound with a dst_deployment, "from" selects outbound
	 * series whose dst_* is web, from any caller deployment. */
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	expect_render(
	    &q, 0,
	    "sum by (namespace,deployment, dst_namespace,dst_deployment, classification) "
	    "(increase(response_total{direction=\"outbound\", "
	    "namespace=\"emojivoto\",deployment=\"web\", dst_deployment!=\"\"}[30s])) or "
	    "sum by (namespace,deployment, dst_namespace,dst_deployment, classification) "
	    "(increase(response_total{direction=\"outbound\", "
	    "dst_namespace=\"emojivoto\",dst_deployment=\"web\", deployment!=\"\"}[30s]))");
	expect_render(
	    &q, 1,
	    "sum by (namespace,deployment, dst_namespace,dst_deployment, le) "
	    "(increase(response_latency_ms_bucket{direction=\"outbound\", "
	    "namespace=\"emojivoto\",deployment=\"web\", dst_deployment!=\"\"}[30s])) or "
	    "sum by (namespace,deployment, dst_namespace,dst_deployment, le) "
	    "(increase(response_latency_ms_bucket{direction=\"outbound\", "
	    "dst_namespace=\"emojivoto\",dst_deployment=\"web\", deployment!=\"\"}[30s]))");
}
END_TEST

START_TEST(test_render_lists_and_namespaces)
{
	/* (c): every pod of a namespace, inbound, in one query. */
	smi_request pods = request(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	expect_render(&pods, 0,
	              "sum by (namespace,pod, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace=\"emojivoto\",pod!=\"\"}[30s]))");

	smi_request deploys = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	expect_render(&deploys, 1,
	              "sum by (namespace,deployment, le) (increase(response_latency_ms_bucket{"
	              "direction=\"inbound\", deployment!=\"\"}[30s]))");

	/* all namespaces, inbound */
	smi_request all_ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	expect_render(&all_ns, 0,
	              "sum by (namespace, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace!=\"\"}[30s]))");

	smi_request one_ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	expect_render(&one_ns, 0,
	              "sum by (namespace, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace=\"emojivoto\"}[30s]))");

	/* namespace edges */
	smi_request ns_edges = request(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	expect_render(
	    &ns_edges, 0,
	    "sum by (namespace, dst_namespace, classification) (increase(response_total{"
	    "direction=\"outbound\", namespace=\"emojivoto\", dst_namespace!=\"\"}[30s])) or "
	    "sum by (namespace, dst_namespace, classification) (increase(response_total{"
	    "direction=\"outbound\", dst_namespace=\"emojivoto\", namespace!=\"\"}[30s]))");
}
END_TEST

START_TEST(test_render_jobs)
{
	smi_request q = request(SMI_KIND_JOB, SMI_SCOPE_OBJECT, "batch", "migrate");
	expect_render(&q, 0,
	              "sum by (namespace,k8s_job, classification) (increase(response_total{"
	              "direction=\"inbound\", namespace=\"batch\",k8s_job=\"migrate\"}[30s]))");
	smi_request e = request(SMI_KIND_JOB, SMI_SCOPE_EDGES, "batch", "migrate");
	expect_render(&e, 0,
	              "sum by (namespace,k8s_job, dst_namespace,dst_k8s_job, classification) "
	              "(increase(response_total{direction=\"outbound\", "
	              "namespace=\"batch\",k8s_job=\"migrate\", dst_k8s_job!=\"\"}[30s])) or "
	              "sum by (namespace,k8s_job, dst_namespace,dst_k8s_job, classification) "
	              "(increase(response_total{direction=\"outbound\", "
	              "dst_namespace=\"batch\",dst_k8s_job=\"migrate\", k8s_job!=\"\"}[30s]))");
	/* Never Prometheus' own job label. */
	char *out = render(&e, 1);
	ck_assert_ptr_null(strstr(out, " job"));
	ck_assert_ptr_null(strstr(out, ",job"));
	ck_assert_ptr_null(strstr(out, "(job"));
	free(out);
}
END_TEST

/* Every kind and scope renders, and no resource query forgets its direction. */
START_TEST(test_render_every_kind)
{
	const kind_case *c = &kind_cases[_i];
	static const smi_scope scopes[] = {SMI_SCOPE_OBJECT, SMI_SCOPE_NAMESPACE_LIST,
	                                   SMI_SCOPE_CLUSTER_LIST, SMI_SCOPE_EDGES};
	for (size_t s = 0; s < 4; s++) {
		if (c->kind == SMI_KIND_NAMESPACE && scopes[s] == SMI_SCOPE_NAMESPACE_LIST)
			continue;
		bool ns_kind = c->kind == SMI_KIND_NAMESPACE;
		const char *ns =
		    ns_kind || scopes[s] == SMI_SCOPE_CLUSTER_LIST ? NULL : "emojivoto";
		const char *name =
		    scopes[s] == SMI_SCOPE_OBJECT || scopes[s] == SMI_SCOPE_EDGES ? "web" : NULL;
		smi_request q = request(c->kind, scopes[s], ns, name);
		for (uint32_t i = 0; i < 2; i++) {
			char *out = render(&q, i);
			const char *dir = scopes[s] == SMI_SCOPE_EDGES ? "direction=\"outbound\""
			                                               : "direction=\"inbound\"";
			ck_assert_msg(strstr(out, dir) != NULL, "%s", out);
			ck_assert_msg(strstr(out, "=~") == NULL, "regex matcher in %s", out);
			ck_assert_msg(strstr(out, "irate") == NULL, "%s", out);
			ck_assert_msg(strstr(out, "[30s]") != NULL, "%s", out);
			free(out);
		}
	}
}
END_TEST

/* ---- identify ---- */

/* Label sets are given as name, value pairs, sorted by name as Prometheus
 * returns them. */
#define L(...) ((const smi_label[]){__VA_ARGS__})
#define SERIES(array)                                                                              \
	((smi_series){.struct_size = sizeof(smi_series),                                           \
	              .n_labels = sizeof(array) / sizeof(smi_label),                               \
	              .labels = (array)})

static smi_identity identify(const smi_request *req, uint32_t query_index, smi_series series)
{
	smi_identity id;
	/* Garbage in: identify must set every field it reports. */
	memset(&id, 0x5a, sizeof id);
	id.struct_size = sizeof id;
	id.self_namespace = id.self_name = id.peer_namespace = id.peer_name = NULL;
	ck_assert_int_eq(desc->identify(state, req, query_index, &series, &id), SMI_OK);
	return id;
}

static void assert_str_or_null(const char *got, const char *expected)
{
	if (expected) {
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got, expected);
	} else {
		ck_assert_ptr_null(got);
	}
}

START_TEST(test_identify_resource_counts)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_identity id = identify(&q, 0,
	                           SERIES(L({"classification", "success"}, {"deployment", "web"},
	                                    {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_namespace, "emojivoto");
	ck_assert_str_eq(id.self_name, "web");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_SUCCESS);

	id = identify(&q, 0,
	              SERIES(L({"classification", "failure"}, {"deployment", "web"},
	                       {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_FAILURE);

	/* Neither success nor failure: counted nowhere. */
	id = identify(&q, 0,
	              SERIES(L({"classification", "unknown"}, {"deployment", "web"},
	                       {"namespace", "emojivoto"})));
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
	id = identify(&q, 0, SERIES(L({"deployment", "web"}, {"namespace", "emojivoto"})));
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
	id = identify(&q, 0,
	              SERIES(L({"classification", "Success"}, {"deployment", "web"},
	                       {"namespace", "emojivoto"})));
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
}
END_TEST

START_TEST(test_identify_resource_latency)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_identity id = identify(
	    &q, 1, SERIES(L({"deployment", "web"}, {"le", "10"}, {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_namespace, "emojivoto");
	ck_assert_str_eq(id.self_name, "web");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
}
END_TEST

START_TEST(test_identify_lists)
{
	smi_request ns_list =
	    request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	smi_identity id = identify(&ns_list, 0,
	                           SERIES(L({"classification", "success"}, {"deployment", "emoji"},
	                                    {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_namespace, "emojivoto");
	ck_assert_str_eq(id.self_name, "emoji");

	smi_request all = request(SMI_KIND_POD, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	id = identify(
	    &all, 1,
	    SERIES(L({"le", "+Inf"}, {"namespace", "other"}, {"pod", "web-7f8455487f-rw9h5"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_namespace, "other");
	ck_assert_str_eq(id.self_name, "web-7f8455487f-rw9h5");

	/* The Namespace kind: the namespace label is the name, no namespace. */
	smi_request nss = request(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	id =
	    identify(&nss, 0, SERIES(L({"classification", "failure"}, {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_ptr_null(id.self_namespace);
	ck_assert_str_eq(id.self_name, "emojivoto");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_FAILURE);

	smi_request one_ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	id = identify(&one_ns, 1, SERIES(L({"le", "5"}, {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_ptr_null(id.self_namespace);
	ck_assert_str_eq(id.self_name, "emojivoto");
}
END_TEST

/* For an object request, a same-named workload in another namespace is not
 * the resource: either dropped or reported under its own namespace (the
 * core then discards it). */
START_TEST(test_identify_object_other_namespace)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_identity id = identify(&q, 0,
	                           SERIES(L({"classification", "success"}, {"deployment", "web"},
	                                    {"namespace", "other"})));
	if (id.feeds & SMI_FEEDS_RESOURCE) {
		ck_assert_ptr_nonnull(id.self_namespace);
		ck_assert_str_eq(id.self_namespace, "other");
	}
}
END_TEST

START_TEST(test_identify_resource_missing_labels)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	/* No deployment label: a bare pod or another kind. */
	smi_identity id = identify(
	    &q, 0,
	    SERIES(L({"classification", "success"}, {"namespace", "emojivoto"}, {"pod", "x"})));
	ck_assert_uint_eq(id.feeds, 0);
	/* `job` is not k8s_job. */
	smi_request jobs = request(SMI_KIND_JOB, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	id = identify(&jobs, 0,
	              SERIES(L({"classification", "success"}, {"job", "linkerd-proxy"},
	                       {"namespace", "batch"})));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&jobs, 0,
	              SERIES(L({"classification", "success"}, {"k8s_job", "migrate"},
	                       {"namespace", "batch"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(id.self_name, "migrate");
	/* Nothing at all. */
	id = identify(
	    &q, 1, (smi_series){.struct_size = sizeof(smi_series), .n_labels = 0, .labels = NULL});
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

/* A namespaced resource without its `namespace` label is not attributable:
 * adapter.h allows a NULL namespace only for the Namespace kind.
 * (Regression: identify() used to report it with self_namespace NULL.) */
START_TEST(test_identify_resource_missing_namespace)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	smi_identity id =
	    identify(&q, 0, SERIES(L({"classification", "success"}, {"deployment", "web"})));
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

/* Edges of deployments/web in emojivoto. */
static smi_request web_edges(void)
{
	return request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
}

START_TEST(test_identify_edge_to)
{
	smi_request q = web_edges();
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "success"}, {"deployment", "web"},
	                      {"dst_deployment", "emoji"}, {"dst_namespace", "emojivoto"},
	                      {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_namespace, "emojivoto");
	ck_assert_str_eq(id.peer_name, "emoji");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_SUCCESS);
	assert_str_or_null(id.self_namespace, "emojivoto");
	assert_str_or_null(id.self_name, "web");

	/* A callee in another namespace. */
	id = identify(
	    &q, 1,
	    SERIES(L({"deployment", "web"}, {"dst_deployment", "voting"},
	             {"dst_namespace", "backend"}, {"le", "50"}, {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_namespace, "backend");
	ck_assert_str_eq(id.peer_name, "voting");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
}
END_TEST

START_TEST(test_identify_edge_from)
{
	smi_request q = web_edges();
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "failure"}, {"deployment", "vote-bot"},
	                      {"dst_deployment", "web"}, {"dst_namespace", "emojivoto"},
	                      {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_namespace, "emojivoto");
	ck_assert_str_eq(id.peer_name, "vote-bot");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_FAILURE);

	/* A caller in another namespace, even one named like the resource
	 * (defect 11 of the original: misfiled as "to"). */
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"deployment", "web"},
	                       {"dst_deployment", "web"}, {"dst_namespace", "emojivoto"},
	                       {"namespace", "load"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_namespace, "load");
	ck_assert_str_eq(id.peer_name, "web");
}
END_TEST

START_TEST(test_identify_self_call)
{
	smi_request q = web_edges();
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "success"}, {"deployment", "web"},
	                      {"dst_deployment", "web"}, {"dst_namespace", "emojivoto"},
	                      {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO | SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_namespace, "emojivoto");
	ck_assert_str_eq(id.peer_name, "web");
	ck_assert_int_eq(id.outcome, SMI_OUTCOME_SUCCESS);
}
END_TEST

START_TEST(test_identify_other_namespace_not_resource)
{
	smi_request q = web_edges();
	/* web in namespace "other" calling emoji there: nothing to do with us. */
	smi_identity id = identify(&q, 0,
	                           SERIES(L({"classification", "success"}, {"deployment", "web"},
	                                    {"dst_deployment", "emoji"}, {"dst_namespace", "other"},
	                                    {"namespace", "other"})));
	ck_assert_uint_eq(id.feeds, 0);
	/* our emoji calling web in "other": not an edge of emojivoto/web. */
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"deployment", "emoji"},
	                       {"dst_deployment", "web"}, {"dst_namespace", "other"},
	                       {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, 0);
	/* other/web calling emojivoto/emoji: also not ours. */
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"deployment", "web"},
	                       {"dst_deployment", "emoji"}, {"dst_namespace", "emojivoto"},
	                       {"namespace", "other"})));
	ck_assert_uint_eq(id.feeds, 0);
	/* emojivoto/web calling other/web: a "to" edge only. */
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"deployment", "web"},
	                       {"dst_deployment", "web"}, {"dst_namespace", "other"},
	                       {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_namespace, "other");
	ck_assert_str_eq(id.peer_name, "web");
}
END_TEST

START_TEST(test_identify_edges_missing_names)
{
	smi_request q = web_edges();
	/* No callee workload (external or unresolved target). */
	smi_identity id = identify(&q, 0,
	                           SERIES(L({"classification", "success"}, {"deployment", "web"},
	                                    {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, 0);
	/* Caller without a deployment (a bare pod, a statefulset). */
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"dst_deployment", "web"},
	                       {"dst_namespace", "emojivoto"}, {"namespace", "emojivoto"},
	                       {"statefulset", "db"})));
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

/* An edge series missing dst_namespace or namespace names no identifiable
 * peer and is dropped.  (Regression: identify() used to keep it with
 * peer_namespace NULL for a namespaced kind.) */
START_TEST(test_identify_edges_missing_namespace)
{
	smi_request q = web_edges();
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "success"}, {"deployment", "web"},
	                      {"dst_deployment", "emoji"}, {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, 0);
	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"deployment", "vote-bot"},
	                       {"dst_deployment", "web"}, {"dst_namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

START_TEST(test_identify_namespace_edges)
{
	smi_request q = request(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "success"}, {"dst_namespace", "backend"},
	                      {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_ptr_null(id.peer_namespace);
	ck_assert_str_eq(id.peer_name, "backend");

	id = identify(
	    &q, 1, SERIES(L({"dst_namespace", "emojivoto"}, {"le", "1"}, {"namespace", "load"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_FROM);
	ck_assert_ptr_null(id.peer_namespace);
	ck_assert_str_eq(id.peer_name, "load");

	id = identify(&q, 0,
	              SERIES(L({"classification", "success"}, {"dst_namespace", "emojivoto"},
	                       {"namespace", "emojivoto"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO | SMI_FEEDS_EDGE_FROM);
	ck_assert_str_eq(id.peer_name, "emojivoto");

	id = identify(
	    &q, 0,
	    SERIES(L({"classification", "success"}, {"dst_namespace", "a"}, {"namespace", "b"})));
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

START_TEST(test_identify_job_edges)
{
	smi_request q = request(SMI_KIND_JOB, SMI_SCOPE_EDGES, "batch", "migrate");
	smi_identity id =
	    identify(&q, 0,
	             SERIES(L({"classification", "success"}, {"dst_k8s_job", "worker"},
	                      {"dst_namespace", "batch"}, {"job", "linkerd-proxy"},
	                      {"k8s_job", "migrate"}, {"namespace", "batch"})));
	ck_assert_uint_eq(id.feeds, SMI_FEEDS_EDGE_TO);
	ck_assert_str_eq(id.peer_name, "worker");
	/* dst_job is not a Linkerd label; Prometheus' `job` is not the Job. */
	id = identify(
	    &q, 0,
	    SERIES(L({"classification", "success"}, {"dst_job", "migrate"},
	             {"dst_namespace", "batch"}, {"job", "migrate"}, {"namespace", "batch"})));
	ck_assert_uint_eq(id.feeds, 0);
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *linkerd_suite(void)
{
	Suite *s = suite_create("linkerd");
	TCase *d = tcase_create("descriptor");
	tcase_add_checked_fixture(d, setup, teardown);
	tcase_add_test(d, test_descriptor);
	tcase_add_test(d, test_kinds);
	tcase_add_test(d, test_open_close_twice);
	suite_add_tcase(s, d);

	TCase *p = tcase_create("plan");
	tcase_add_checked_fixture(p, setup, teardown);
	tcase_add_test(p, test_plan_object);
	tcase_add_test(p, test_plan_lists);
	tcase_add_test(p, test_plan_edges);
	tcase_add_loop_test(p, test_plan_kind_labels, 0, COUNT(kind_cases));
	tcase_add_test(p, test_plan_unsupported);
	tcase_add_test(p, test_render_object);
	tcase_add_test(p, test_render_edges);
	tcase_add_test(p, test_render_lists_and_namespaces);
	tcase_add_test(p, test_render_jobs);
	tcase_add_loop_test(p, test_render_every_kind, 0, COUNT(kind_cases));
	suite_add_tcase(s, p);

	TCase *i = tcase_create("identify");
	tcase_add_checked_fixture(i, setup, teardown);
	tcase_add_test(i, test_identify_resource_counts);
	tcase_add_test(i, test_identify_resource_latency);
	tcase_add_test(i, test_identify_lists);
	tcase_add_test(i, test_identify_object_other_namespace);
	tcase_add_test(i, test_identify_resource_missing_labels);
	tcase_add_test(i, test_identify_resource_missing_namespace);
	tcase_add_test(i, test_identify_edge_to);
	tcase_add_test(i, test_identify_edge_from);
	tcase_add_test(i, test_identify_self_call);
	tcase_add_test(i, test_identify_other_namespace_not_resource);
	tcase_add_test(i, test_identify_edges_missing_names);
	tcase_add_test(i, test_identify_edges_missing_namespace);
	tcase_add_test(i, test_identify_namespace_edges);
	tcase_add_test(i, test_identify_job_edges);
	suite_add_tcase(s, i);
	return s;
}

/* ---- failureStatus (adapters/common/failure_status.h) ---- */

static void setup_4xx(void)
{
	failure_status_option = "4xx,5xx";
	setup();
}

static void teardown_4xx(void)
{
	teardown();
	failure_status_option = NULL;
}

START_TEST(test_failure_status_values)
{
	static const char *const bad[] = {"4xx", "5XX", "4xx, 5xx", ""};
	char err[256];
	void *st = NULL;
	failure_status_option = "5xx";
	ck_assert_int_eq(desc->open(&host, &st, err, sizeof err), SMI_OK);
	desc->close(st);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		failure_status_option = bad[i];
		st = NULL;
		err[0] = '\0';
		ck_assert_int_eq(desc->open(&host, &st, err, sizeof err), SMI_ERR_OPTION);
		ck_assert_ptr_null(st);
		ck_assert_msg(strstr(err, "adapter.options.failureStatus") &&
		                  strstr(err, "expected \"5xx\" or \"4xx,5xx\""),
		              "%s", err);
	}
	failure_status_option = NULL;
}
END_TEST

START_TEST(test_failure_status_plans_status_counts)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_plan plan = plan_for(&q);
	ck_assert_str_eq(plan.queries[0].template_id, "resource.status-counts");
	ck_assert_str_eq(plan.queries[1].template_id, "resource.latency");
	expect_render(&q, 0,
	              "sum by (namespace,deployment, classification, status_code, grpc_status) "
	              "(increase(response_total{direction=\"inbound\", namespace=\"emojivoto\","
	              "deployment=\"web\"}[30s]))");
	smi_request e = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	plan = plan_for(&e);
	ck_assert_str_eq(plan.queries[0].template_id, "edges.status-counts");
	char *out = render(&e, 0);
	ck_assert_ptr_nonnull(strstr(out,
	                             "sum by (namespace,deployment, dst_namespace,"
	                             "dst_deployment, classification, status_code, grpc_status)"));
	free(out);
}
END_TEST

START_TEST(test_failure_status_identify)
{
	static const struct {
		const char *classification, *status, *grpc;
		smi_outcome want;
	} cases[] = {
	    {"success", "200", NULL, SMI_OUTCOME_SUCCESS},
	    {"success", "404", NULL, SMI_OUTCOME_FAILURE},
	    {"success", "499", NULL, SMI_OUTCOME_FAILURE},
	    {"success", "302", NULL, SMI_OUTCOME_SUCCESS},
	    {"success", "200", "0", SMI_OUTCOME_SUCCESS},
	    {"success", "200", "5", SMI_OUTCOME_FAILURE}, /* NotFound: success by default */
	    {"failure", "500", NULL, SMI_OUTCOME_FAILURE},
	    {"failure", "200", "14", SMI_OUTCOME_FAILURE},
	    {NULL, "404", NULL, SMI_OUTCOME_IGNORE},
	};
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		smi_label labels[6];
		size_t n = 0;
		if (cases[i].classification)
			labels[n++] = (smi_label){"classification", cases[i].classification};
		labels[n++] = (smi_label){"deployment", "web"};
		if (cases[i].grpc)
			labels[n++] = (smi_label){"grpc_status", cases[i].grpc};
		labels[n++] = (smi_label){"namespace", "emojivoto"};
		labels[n++] = (smi_label){"status_code", cases[i].status};
		smi_series s = {.struct_size = sizeof s, .n_labels = n, .labels = labels};
		smi_identity id = identify(&q, 0, s);
		ck_assert_msg(id.outcome == cases[i].want, "case %zu: outcome %d", i, id.outcome);
		id = identify(&q, 1, s);
		ck_assert_int_eq(id.outcome, SMI_OUTCOME_IGNORE);
	}
}
END_TEST

START_TEST(test_failure_status_default_trusts_classification)
{
	/* The default keeps the proxy's word: a 404 classified success is one. */
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_label labels[] = {{"classification", "success"},
	                      {"deployment", "web"},
	                      {"grpc_status", "5"},
	                      {"namespace", "emojivoto"},
	                      {"status_code", "404"}};
	smi_series s = {.struct_size = sizeof s, .n_labels = 5, .labels = labels};
	ck_assert_int_eq(identify(&q, 0, s).outcome, SMI_OUTCOME_SUCCESS);
	ck_assert_str_eq(plan_for(&q).queries[0].template_id, "resource.counts");
}
END_TEST

static Suite *failure_status_suite(void)
{
	Suite *s = suite_create("linkerd failure status");
	TCase *f = tcase_create("4xx,5xx");
	tcase_add_checked_fixture(f, setup_4xx, teardown_4xx);
	tcase_add_test(f, test_failure_status_values);
	tcase_add_test(f, test_failure_status_plans_status_counts);
	tcase_add_test(f, test_failure_status_identify);
	suite_add_tcase(s, f);
	TCase *d = tcase_create("default");
	tcase_add_checked_fixture(d, setup, teardown);
	tcase_add_test(d, test_failure_status_default_trusts_classification);
	suite_add_tcase(s, d);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(linkerd_suite());
	srunner_add_suite(runner, failure_status_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* linkerd: the Linkerd 2.x adapter.  Resource metrics come from the
 * inbound side of the resource's own proxies; both edge directions come
 * from callers' outbound series, the only ones that name both peers
 * (reference: mesh-telemetry.md section 2). */
#include <stdlib.h>
#include <string.h>

#include <smi-metrics/adapter.h>

#include "../common/failure_status.h"

enum {
	Q_RESOURCE_COUNTS,
	Q_RESOURCE_LATENCY,
	Q_EDGES_COUNTS,
	Q_EDGES_LATENCY,
	Q_RESOURCE_STATUS_COUNTS, /* failureStatus: 4xx,5xx */
	Q_EDGES_STATUS_COUNTS,
	Q_COUNT
};

/* Counts: one sample per classification; latency: one per `le`.  Rate then
 * sum, never the reverse, so counter resets are handled. */
static const smi_template linkerd_templates[Q_COUNT] = {
    {"resource.counts",
     "sum by ({{group_by}}, classification) (increase(response_total{direction=\"inbound\", "
     "{{target}}}[{{window}}]))",
     "responses received by the resource(s), by classification"},
    {"resource.latency",
     "sum by ({{group_by}}, le) (increase(response_latency_ms_bucket{direction=\"inbound\", "
     "{{target}}}[{{window}}]))",
     "latency histogram of responses received by the resource(s), ms buckets"},
    {"edges.counts",
     "sum by ({{group_by}}, {{peer_group_by}}, classification) (increase(response_total{"
     "direction=\"outbound\", {{target}}, {{peer_name_label}}!=\"\"}[{{window}}])) or "
     "sum by ({{group_by}}, {{peer_group_by}}, classification) (increase(response_total{"
     "direction=\"outbound\", {{peer_target}}, {{name_label}}!=\"\"}[{{window}}]))",
     "responses the resource sent (to) or its callers sent it (from), client side"},
    {"edges.latency",
     "sum by ({{group_by}}, {{peer_group_by}}, le) (increase(response_latency_ms_bucket{"
     "direction=\"outbound\", {{target}}, {{peer_name_label}}!=\"\"}[{{window}}])) or "
     "sum by ({{group_by}}, {{peer_group_by}}, le) (increase(response_latency_ms_bucket{"
     "direction=\"outbound\", {{peer_target}}, {{name_label}}!=\"\"}[{{window}}]))",
     "latency histogram of both edge directions, client side, ms buckets"},
    /* With failureStatus: 4xx,5xx the status decides too. */
    {"resource.status-counts",
     "sum by ({{group_by}}, classification, status_code, grpc_status) (increase(response_total{"
     "direction=\"inbound\", {{target}}}[{{window}}]))",
     "resource.counts by HTTP and gRPC status (failureStatus: 4xx,5xx)"},
    {"edges.status-counts",
     "sum by ({{group_by}}, {{peer_group_by}}, classification, status_code, grpc_status) "
     "(increase(response_total{direction=\"outbound\", {{target}}, {{peer_name_label}}!=\"\"}"
     "[{{window}}])) or sum by ({{group_by}}, {{peer_group_by}}, classification, status_code, "
     "grpc_status) (increase(response_total{direction=\"outbound\", {{peer_target}}, "
     "{{name_label}}!=\"\"}[{{window}}]))",
     "edges.counts by HTTP and gRPC status (failureStatus: 4xx,5xx)"},
};

/* The label of each kind on the reporting pod (target labels from the
 * linkerd-proxy scrape job) and on the callee (dst_*, from the
 * destination controller).  Jobs use k8s_job: `job` is Prometheus' own. */
typedef struct kind_labels {
	const char *self;
	const char *peer;
} kind_labels;

static const kind_labels linkerd_kind_labels[SMI_KIND_COUNT_V1] = {
    [SMI_KIND_NAMESPACE] = {"namespace", "dst_namespace"},
    [SMI_KIND_POD] = {"pod", "dst_pod"},
    [SMI_KIND_DEPLOYMENT] = {"deployment", "dst_deployment"},
    [SMI_KIND_STATEFULSET] = {"statefulset", "dst_statefulset"},
    [SMI_KIND_DAEMONSET] = {"daemonset", "dst_daemonset"},
    [SMI_KIND_JOB] = {"k8s_job", "dst_k8s_job"},
    /* Only bare ReplicaSets carry `replicaset`; Deployment-owned ones
     * are reported as their Deployment. */
    [SMI_KIND_REPLICASET] = {"replicaset", "dst_replicaset"},
    [SMI_KIND_REPLICATIONCONTROLLER] = {"replicationcontroller", "dst_replicationcontroller"},
};

typedef struct linkerd_state {
	const smi_host *host;
	/* 5xx (default): trust the proxy's classification (5xx, gRPC 2, 4,
	 * 7, 13, 14, 15, stream errors); 4xx,5xx: also any HTTP 4xx and any
	 * gRPC status but 0. */
	failure_status failure;
} linkerd_state;

static smi_status linkerd_open(const smi_host *host, void **state_out, char *err, size_t err_size)
{
	linkerd_state *st = calloc(1, sizeof *st);
	if (!st)
		return SMI_ERR_NOMEM;
	st->host = host;
	smi_status status = failure_status_read(host, &st->failure, err, err_size);
	if (status != SMI_OK) {
		free(st);
		return status;
	}
	*state_out = st;
	return SMI_OK;
}

static void linkerd_close(void *state)
{
	free(state);
}

static uint64_t linkerd_kinds(void *state)
{
	(void)state;
	uint64_t mask = 0;
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++)
		if (linkerd_kind_labels[k].self)
			mask |= UINT64_C(1) << k;
	return mask;
}

static smi_side_labels side(smi_kind kind, bool peer)
{
	const kind_labels *l = &linkerd_kind_labels[kind];
	smi_side_labels s = {
	    .namespace_label = peer ? "dst_namespace" : "namespace",
	    .name_label = peer ? l->peer : l->self,
	};
	return s;
}

static void add_query(smi_plan *plan, int template_index, smi_query_role role, smi_kind kind)
{
	smi_query_spec *q = &plan->queries[plan->n_queries++];
	q->struct_size = sizeof *q;
	q->template_id = linkerd_templates[template_index].id;
	q->role = role;
	q->self = side(kind, false);
	q->peer = side(kind, true);
	q->latency_to_ms = 1.0; /* response_latency_ms is in milliseconds */
}

static smi_status linkerd_plan(void *state, const smi_request *req, smi_plan *plan)
{
	const linkerd_state *st = state;
	if ((unsigned)req->kind >= SMI_KIND_COUNT_V1 || !linkerd_kind_labels[req->kind].self)
		return SMI_ERR_UNSUPPORTED;
	bool edges = req->scope == SMI_SCOPE_EDGES;
	int counts = edges ? Q_EDGES_COUNTS : Q_RESOURCE_COUNTS;
	if (st->failure == FAILURE_STATUS_4XX_5XX)
		counts = edges ? Q_EDGES_STATUS_COUNTS : Q_RESOURCE_STATUS_COUNTS;
	add_query(plan, counts, SMI_ROLE_COUNTS, req->kind);
	add_query(plan, edges ? Q_EDGES_LATENCY : Q_RESOURCE_LATENCY, SMI_ROLE_LATENCY, req->kind);
	return SMI_OK;
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The proxy's classification, and with failureStatus: 4xx,5xx also client
 * errors: HTTP 4xx, any gRPC status but OK. */
static smi_outcome linkerd_outcome(const linkerd_state *st, const smi_series *series)
{
	const smi_host *h = st->host;
	const char *classification = h->label(h->ctx, series, "classification");
	if (same(classification, "failure"))
		return SMI_OUTCOME_FAILURE;
	if (!same(classification, "success"))
		return SMI_OUTCOME_IGNORE;
	if (st->failure == FAILURE_STATUS_4XX_5XX &&
	    (failure_status_is_class(h->label(h->ctx, series, "status_code"), '4') ||
	     failure_status_grpc_not_ok(h->label(h->ctx, series, "grpc_status"))))
		return SMI_OUTCOME_FAILURE;
	return SMI_OUTCOME_SUCCESS;
}

/* Whether (namespace, name) read from one side is the requested resource. */
static bool is_request(const smi_request *req, const char *ns, const char *name)
{
	if (!same(name, req->name))
		return false;
	return req->kind == SMI_KIND_NAMESPACE || same(ns, req->namespace_name);
}

static smi_status linkerd_identify(void *state, const smi_request *req, uint32_t query_index,
                                   const smi_series *series, smi_identity *id)
{
	linkerd_state *st = state;
	const smi_host *h = st->host;
	bool ns_kind = req->kind == SMI_KIND_NAMESPACE;
	smi_side_labels self = side(req->kind, false), peer = side(req->kind, true);

	const char *src_ns = ns_kind ? NULL : h->label(h->ctx, series, self.namespace_label);
	const char *src_name = h->label(h->ctx, series, self.name_label);
	id->feeds = 0;
	id->outcome = query_index == 0 ? linkerd_outcome(st, series) : SMI_OUTCOME_IGNORE;
	if (req->scope != SMI_SCOPE_EDGES) {
		if (!src_name || (!ns_kind && !src_ns))
			return SMI_OK; /* not attributable to a resource */
		id->feeds = SMI_FEEDS_RESOURCE;
		id->self_namespace = src_ns;
		id->self_name = src_name;
		return SMI_OK;
	}
	const char *dst_ns = ns_kind ? NULL : h->label(h->ctx, series, peer.namespace_label);
	const char *dst_name = h->label(h->ctx, series, peer.name_label);
	if (!src_name || !dst_name || (!ns_kind && (!src_ns || !dst_ns)))
		return SMI_OK;
	/* A series can be both: the resource calling itself. */
	if (is_request(req, src_ns, src_name)) {
		id->feeds |= SMI_FEEDS_EDGE_TO;
		id->peer_namespace = dst_ns;
		id->peer_name = dst_name;
	}
	if (is_request(req, dst_ns, dst_name)) {
		id->feeds |= SMI_FEEDS_EDGE_FROM;
		id->peer_namespace = src_ns;
		id->peer_name = src_name;
	}
	id->self_namespace = req->namespace_name;
	id->self_name = req->name;
	return SMI_OK;
}

static const smi_adapter_descriptor linkerd_descriptor = {
    .abi_major = SMI_ADAPTER_ABI_MAJOR,
    .abi_minor = SMI_ADAPTER_ABI_MINOR,
    .struct_size = sizeof(smi_adapter_descriptor),
    .name = "linkerd",
    .version = "1.0.0",
    .description = "Linkerd 2.x proxy metrics (response_total, response_latency_ms)",
    .templates = linkerd_templates,
    .n_templates = Q_COUNT,
    .open = linkerd_open,
    .close = linkerd_close,
    .kinds = linkerd_kinds,
    .plan = linkerd_plan,
    .identify = linkerd_identify,
};

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void)
{
	return &linkerd_descriptor;
}

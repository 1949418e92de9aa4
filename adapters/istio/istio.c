/* istio: the Istio adapter.  Telemetry v2 (default): istio_requests_total
 * and istio_request_duration_milliseconds from sidecars and ambient
 * waypoints.  mode: mixer: the legacy Mixer metrics defined by the
 * manifests in adapters/istio/manifests/, whose histogram is in seconds
 * (reference: mesh-telemetry.md sections 3 and 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smi-metrics/adapter.h>

#include "../common/failure_status.h"

/*
 * Which reporter answers which question (telemetry v2).  Every reporter
 * names both peers, so one request can be seen up to three times: by the
 * client's sidecar (source), by a waypoint, and by the server's sidecar
 * (destination).  Each answer takes exactly one report per request:
 *
 *   resource numbers, `from` edges   destination, else waypoint (server side)
 *   `to` edges                        source, else waypoint (client side)
 *
 * "else" is decided per workload (resources) or per pair of workloads
 * (edges) with `or on (...)`, so a mesh mixing sidecars and ambient
 * workloads never counts a request twice.  Pods come from the scrape's
 * target labels of the reporting pod, so only destination reports (the
 * server's own sidecar) can name them: a waypoint's pod label is the
 * waypoint's.
 */
#define V2_DST      "destination_workload_namespace, destination_workload"
#define V2_PAIR     "source_workload_namespace, source_workload, " V2_DST
#define V2_CODES    "response_code, grpc_response_status"
#define V2_REQUESTS "istio_requests_total"
#define V2_BUCKETS  "istio_request_duration_milliseconds_bucket"

/* A server-side selection of `family`, the waypoint filling in for
 * workloads without a destination report; `by` are the extra labels.  The
 * inner sums are per workload whatever the kind: {{group_by}} is always a
 * subset of V2_DST (and of V2_PAIR for edges). */
#define V2_SERVER_SIDE(family, by)                                                                 \
	"sum by ({{group_by}}, " by ") (sum by (" V2_DST ", " by ") (increase(" family             \
	"{reporter=\"destination\", {{target}}}[{{window}}])) or on (" V2_DST ") sum by (" V2_DST  \
	", " by ") (increase(" family "{reporter=\"waypoint\", {{target}}}[{{window}}])))"

/* One edge direction: `preferred` reporter, else the waypoint, per pair of
 * workloads; the result is marked smi_edge="<direction>" so that identify()
 * never has to guess which side of a self-call a series is. */
#define V2_EDGE_SIDE(family, by, preferred, selector, direction)                                   \
	"label_replace(sum by ({{group_by}}, {{peer_group_by}}, " by ") (sum by (" V2_PAIR ", " by \
	") (increase(" family "{reporter=\"" preferred "\", " selector                             \
	"}[{{window}}])) or on (" V2_PAIR ") sum by (" V2_PAIR ", " by ") (increase(" family       \
	"{reporter=\"waypoint\", " selector "}[{{window}}]))), \"smi_edge\", \"" direction         \
	"\", \"\", \"\")"

#define V2_EDGES(family, by)                                                                       \
	V2_EDGE_SIDE(family, by, "source", "{{target}}, {{peer_name_label}}!=\"\"", "to")          \
	" or " V2_EDGE_SIDE(family, by, "destination", "{{peer_target}}, {{name_label}}!=\"\"",    \
	                    "from")

/* Mixer: our manifests' families.  Pods are named by *_uid
 * ("kubernetes://<pod>.<namespace>"); the pod name is cut out into
 * *_pod with a fixed regex (namespaces hold no dot). */
#define MX_REQUESTS "istio_smi_requests_total"
#define MX_BUCKETS  "istio_smi_request_duration_seconds_bucket"
#define MX_POD(side, expr)                                                                         \
	"label_replace(" expr ", \"" side "_pod\", \"$1\", \"" side                                \
	"_uid\", \"kubernetes://(.+)[.][^.]+\")"
#define MX_SERVER_SIDE(family, by, selector)                                                       \
	MX_POD("destination", "sum by ({{group_by}}, " by ") (increase(" family                    \
	                      "{reporter=\"destination\", " selector "}[{{window}}]))")
#define MX_EDGE_SIDE(family, by, reporter, selector, direction)                                    \
	"label_replace(sum by ({{group_by}}, {{peer_group_by}}, " by ") (increase(" family         \
	"{reporter=\"" reporter "\", " selector "}[{{window}}])), \"smi_edge\", \"" direction      \
	"\", \"\", \"\")"
#define MX_EDGES(family, by, to_selector, from_selector)                                           \
	MX_EDGE_SIDE(family, by, "source", to_selector, "to")                                      \
	" or " MX_EDGE_SIDE(family, by, "destination", from_selector, "from")
/* Workloads and pods: the namespace selects, the owner or uid identifies. */
#define MX_NS_SOURCE                                                                               \
	"source_workload_namespace={{namespace}}, {{name_label}}!=\"\", {{peer_name_label}}!=\"\""
#define MX_NS_DEST                                                                                 \
	"destination_workload_namespace={{namespace}}, {{name_label}}!=\"\", "                     \
	"{{peer_name_label}}!=\"\""

enum {
	Q_RESOURCE_COUNTS,
	Q_RESOURCE_LATENCY,
	Q_PODS_COUNTS,
	Q_PODS_LATENCY,
	Q_EDGES_COUNTS,
	Q_EDGES_LATENCY,
	Q_MX_RESOURCE_COUNTS,
	Q_MX_RESOURCE_LATENCY,
	Q_MX_OBJECT_COUNTS,
	Q_MX_OBJECT_LATENCY,
	Q_MX_EDGES_COUNTS,
	Q_MX_EDGES_LATENCY,
	Q_MX_NS_EDGES_COUNTS,
	Q_MX_NS_EDGES_LATENCY,
	Q_COUNT
};

static const smi_template istio_templates[Q_COUNT] = {
    {"resource.counts", V2_SERVER_SIDE(V2_REQUESTS, V2_CODES),
     "requests received by the workload(s) or namespace(s): destination reports, else waypoint"},
    {"resource.latency", V2_SERVER_SIDE(V2_BUCKETS, "le"),
     "server-side latency histogram (ms) of the same requests"},
    {"pods.counts",
     "sum by ({{group_by}}, " V2_CODES ") (increase(" V2_REQUESTS
     "{reporter=\"destination\", {{target}}}[{{window}}]))",
     "requests received by the pod(s), reported by their own sidecar"},
    {"pods.latency",
     "sum by ({{group_by}}, le) (increase(" V2_BUCKETS
     "{reporter=\"destination\", {{target}}}[{{window}}]))",
     "latency histogram (ms) of requests received by the pod(s)"},
    {"edges.counts", V2_EDGES(V2_REQUESTS, V2_CODES),
     "to: what the resource sent (source, else waypoint); from: what it received "
     "(destination, else waypoint)"},
    {"edges.latency", V2_EDGES(V2_BUCKETS, "le"),
     "latency histograms (ms) of both edge directions"},
    {"mixer.resource.counts", MX_SERVER_SIDE(MX_REQUESTS, V2_CODES, "{{target}}"),
     "mode mixer: requests received, lists and namespaces"},
    {"mixer.resource.latency", MX_SERVER_SIDE(MX_BUCKETS, "le", "{{target}}"),
     "mode mixer: latency histogram (seconds), lists and namespaces"},
    {"mixer.object.counts",
     MX_SERVER_SIDE(MX_REQUESTS, V2_CODES,
                    "destination_workload_namespace={{namespace}}, {{name_label}}!=\"\""),
     "mode mixer: requests received by one workload or pod (its namespace, grouped by owner)"},
    {"mixer.object.latency",
     MX_SERVER_SIDE(MX_BUCKETS, "le",
                    "destination_workload_namespace={{namespace}}, {{name_label}}!=\"\""),
     "mode mixer: latency histogram (seconds) of one workload or pod"},
    {"mixer.edges.counts",
     MX_POD("source",
            MX_POD("destination", MX_EDGES(MX_REQUESTS, V2_CODES, MX_NS_SOURCE, MX_NS_DEST))),
     "mode mixer: edges of a workload or pod (to: source reports, from: destination reports)"},
    {"mixer.edges.latency",
     MX_POD("source", MX_POD("destination", MX_EDGES(MX_BUCKETS, "le", MX_NS_SOURCE, MX_NS_DEST))),
     "mode mixer: latency histograms (seconds) of those edges"},
    {"mixer.namespace-edges.counts",
     MX_EDGES(MX_REQUESTS, V2_CODES, "{{target}}, {{peer_name_label}}!=\"\"",
              "{{peer_target}}, {{name_label}}!=\"\""),
     "mode mixer: edges of a namespace"},
    {"mixer.namespace-edges.latency",
     MX_EDGES(MX_BUCKETS, "le", "{{target}}, {{peer_name_label}}!=\"\"",
              "{{peer_target}}, {{name_label}}!=\"\""),
     "mode mixer: latency histograms (seconds) of a namespace's edges"},
};

typedef enum istio_mode { MODE_TELEMETRY_V2, MODE_MIXER } istio_mode;

typedef enum side { SIDE_SOURCE, SIDE_DESTINATION } side;

typedef struct istio_state {
	const smi_host *host;
	istio_mode mode;
	failure_status failure;
	const char *pod_label;       /* target label naming the reporting pod */
	const char *namespace_label; /* target label naming its namespace */
} istio_state;

/* The URL plural of each workload kind: the path segment of a Mixer
 * owner ("kubernetes://apis/apps/v1/namespaces/<ns>/deployments/<name>"). */
static const char *const workload_plural[SMI_KIND_COUNT_V1] = {
    [SMI_KIND_DEPLOYMENT] = "deployments",
    [SMI_KIND_STATEFULSET] = "statefulsets",
    [SMI_KIND_DAEMONSET] = "daemonsets",
    [SMI_KIND_JOB] = "jobs",
    [SMI_KIND_REPLICASET] = "replicasets",
    [SMI_KIND_REPLICATIONCONTROLLER] = "replicationcontrollers",
};

/* ---- options ---- */

/* [a-zA-Z_][a-zA-Z0-9_]*, not "__..." (the core checks again at render). */
static bool valid_label_name(const char *name)
{
	if (!name || !*name || strncmp(name, "__", 2) == 0)
		return false;
	for (const char *p = name; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		          (p != name && *p >= '0' && *p <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* A string option: *out keeps its default when absent. */
static smi_status string_option(const smi_host *h, const char *key, const char **out, char *err,
                                size_t err_size)
{
	const char *text = NULL;
	smi_status st = h->option(h->ctx, key, SMI_OPTION_STRING, &text);
	if (st == SMI_ERR_UNSUPPORTED)
		return SMI_OK;
	if (st != SMI_OK || !text) {
		snprintf(err, err_size, "adapter.options.%s must be a string", key);
		return SMI_ERR_OPTION;
	}
	*out = text;
	return SMI_OK;
}

static smi_status read_mode(istio_state *st, char *err, size_t err_size)
{
	const char *mode = "telemetry-v2";
	smi_status s = string_option(st->host, "mode", &mode, err, err_size);
	if (s != SMI_OK)
		return s;
	if (strcmp(mode, "telemetry-v2") == 0) {
		st->mode = MODE_TELEMETRY_V2;
	} else if (strcmp(mode, "mixer") == 0) {
		st->mode = MODE_MIXER;
	} else if (strcmp(mode, "ambient") == 0 || strcmp(mode, "sidecar") == 0) {
		snprintf(
		    err, err_size,
		    "adapter.options.mode: \"%s\" is not a mode: telemetry-v2 (the default) "
		    "reads sidecar and ambient waypoint reports alike; the other mode is mixer",
		    mode);
		return SMI_ERR_OPTION;
	} else {
		snprintf(err, err_size,
		         "adapter.options.mode: \"%.64s\" is not a valid mode (expected "
		         "\"telemetry-v2\" or \"mixer\")",
		         mode);
		return SMI_ERR_OPTION;
	}
	return SMI_OK;
}

static smi_status read_label_option(istio_state *st, const char *key, const char **out, char *err,
                                    size_t err_size)
{
	const char *value = *out;
	smi_status s = string_option(st->host, key, &value, err, err_size);
	if (s != SMI_OK)
		return s;
	if (!valid_label_name(value)) {
		snprintf(err, err_size,
		         "adapter.options.%s: \"%.64s\" is not a Prometheus label name", key,
		         value);
		return SMI_ERR_OPTION;
	}
	if (st->mode == MODE_MIXER && value != *out && st->host->log) {
		char message[160];
		snprintf(message, sizeof message,
		         "adapter.options.%s has no effect in mode mixer (pods are named by *_uid)",
		         key);
		st->host->log(st->host->ctx, SMI_LOG_WARN, message);
	}
	*out = value;
	return SMI_OK;
}

static smi_status istio_open(const smi_host *host, void **state_out, char *err, size_t err_size)
{
	istio_state *st = calloc(1, sizeof *st);
	if (!st)
		return SMI_ERR_NOMEM;
	st->host = host;
	st->pod_label = "pod";
	st->namespace_label = "namespace";
	smi_status s = read_mode(st, err, err_size);
	if (s == SMI_OK)
		s = failure_status_read(host, &st->failure, err, err_size);
	if (s == SMI_OK)
		s = read_label_option(st, "podLabel", &st->pod_label, err, err_size);
	if (s == SMI_OK)
		s = read_label_option(st, "namespaceLabel", &st->namespace_label, err, err_size);
	if (s != SMI_OK) {
		free(st);
		return s;
	}
	*state_out = st;
	return SMI_OK;
}

static void istio_close(void *state)
{
	free(state);
}

/* Telemetry v2 names workloads, not their kind, and reports a
 * Deployment's ReplicaSet as the Deployment: no `replicasets`.  Mixer
 * owners carry the kind, so every kind is answerable there. */
static bool kind_supported(const istio_state *st, smi_kind kind)
{
	if ((unsigned)kind >= SMI_KIND_COUNT_V1)
		return false;
	return st->mode == MODE_MIXER || kind != SMI_KIND_REPLICASET;
}

static uint64_t istio_kinds(void *state)
{
	uint64_t mask = 0;
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++)
		if (kind_supported(state, (smi_kind)k))
			mask |= UINT64_C(1) << k;
	return mask;
}

/* ---- plan ---- */

static const char *side_prefix(side s)
{
	return s == SIDE_SOURCE ? "source" : "destination";
}

/* Label names of one side for a kind.  Static strings, or the pod options. */
static smi_side_labels side_labels(const istio_state *st, smi_kind kind, side s)
{
	bool src = s == SIDE_SOURCE;
	const char *ns = src ? "source_workload_namespace" : "destination_workload_namespace";
	smi_side_labels l = {.namespace_label = ns, .name_label = ns};
	if (kind == SMI_KIND_NAMESPACE)
		return l;
	if (st->mode == MODE_TELEMETRY_V2) {
		if (kind == SMI_KIND_POD) {
			l.namespace_label = st->namespace_label;
			l.name_label = st->pod_label;
		} else {
			l.name_label = src ? "source_workload" : "destination_workload";
		}
	} else if (kind == SMI_KIND_POD) {
		l.name_label = src ? "source_uid" : "destination_uid";
	} else {
		l.name_label = src ? "source_owner" : "destination_owner";
	}
	return l;
}

static void add_query(const istio_state *st, smi_plan *plan, int template_index,
                      smi_query_role role, const smi_request *req, side self)
{
	smi_query_spec *q = &plan->queries[plan->n_queries++];
	q->struct_size = sizeof *q;
	q->template_id = istio_templates[template_index].id;
	q->role = role;
	q->self = side_labels(st, req->kind, self);
	q->peer = side_labels(st, req->kind, self == SIDE_SOURCE ? SIDE_DESTINATION : SIDE_SOURCE);
	/* istio_request_duration_milliseconds is in ms; Mixer's in seconds. */
	q->latency_to_ms = st->mode == MODE_MIXER ? 1000.0 : 1.0;
}

/* The counts template; the latency one always follows it. */
static int counts_template(const istio_state *st, const smi_request *req)
{
	bool edges = req->scope == SMI_SCOPE_EDGES;
	bool ns_kind = req->kind == SMI_KIND_NAMESPACE;
	if (st->mode == MODE_TELEMETRY_V2) {
		if (edges)
			return Q_EDGES_COUNTS;
		return req->kind == SMI_KIND_POD ? Q_PODS_COUNTS : Q_RESOURCE_COUNTS;
	}
	if (edges)
		return ns_kind ? Q_MX_NS_EDGES_COUNTS : Q_MX_EDGES_COUNTS;
	/* {{target}} would compare the owner or uid with the bare name. */
	return !ns_kind && req->scope == SMI_SCOPE_OBJECT ? Q_MX_OBJECT_COUNTS
	                                                  : Q_MX_RESOURCE_COUNTS;
}

static smi_status istio_plan(void *state, const smi_request *req, smi_plan *plan)
{
	istio_state *st = state;
	if (!kind_supported(st, req->kind))
		return SMI_ERR_UNSUPPORTED;
	bool edges = req->scope == SMI_SCOPE_EDGES;
	/* Telemetry v2 knows peers only as workloads: no pod-to-pod edges. */
	if (edges && st->mode == MODE_TELEMETRY_V2 && req->kind == SMI_KIND_POD)
		return SMI_ERR_UNSUPPORTED;
	int counts = counts_template(st, req);
	/* Edge templates select the resource as the source (self) for `to`
	 * and as the destination (peer) for `from`. */
	side self = edges ? SIDE_SOURCE : SIDE_DESTINATION;
	add_query(st, plan, counts, SMI_ROLE_COUNTS, req, self);
	add_query(st, plan, counts + 1, SMI_ROLE_LATENCY, req, self);
	return SMI_OK;
}

/* ---- identify ---- */

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static const char *label(const istio_state *st, const smi_series *series, const char *name)
{
	return st->host->label(st->host->ctx, series, name);
}

static const char *side_label(const istio_state *st, const smi_series *series, side s,
                              const char *suffix)
{
	char name[64];
	snprintf(name, sizeof name, "%s_%s", side_prefix(s), suffix);
	return label(st, series, name);
}

/* The name in a Mixer owner of `kind`, a pointer into the owner, or NULL:
 * kubernetes://apis/<group/version>/namespaces/<ns>/<plural>/<name>.  The
 * namespace segment must equal `ns`. */
static const char *owner_name(const char *owner, smi_kind kind, const char *ns)
{
	static const char prefix[] = "kubernetes://apis/";
	const char *plural = workload_plural[kind];
	if (!owner || !ns || !plural || strncmp(owner, prefix, sizeof prefix - 1) != 0)
		return NULL;
	const char *name = strrchr(owner, '/');
	if (!name || name[1] == '\0')
		return NULL;
	/* ".../namespaces/<ns>/<plural>/" ends right before the name. */
	size_t plural_len = strlen(plural), ns_len = strlen(ns);
	size_t tail_len = sizeof "/namespaces/" - 1 + ns_len + 1 + plural_len + 1;
	size_t head_len = (size_t)(name + 1 - owner);
	if (head_len < sizeof prefix - 1 + tail_len)
		return NULL;
	const char *tail = name + 1 - tail_len;
	if (strncmp(tail, "/namespaces/", 12) != 0 || strncmp(tail + 12, ns, ns_len) != 0 ||
	    tail[12 + ns_len] != '/' || strncmp(tail + 13 + ns_len, plural, plural_len) != 0)
		return NULL;
	return name + 1;
}

/* Whether a Mixer uid names pod `pod` of namespace `ns`. */
static bool uid_is(const char *uid, const char *pod, const char *ns)
{
	static const char prefix[] = "kubernetes://";
	if (!uid || !pod || !ns || strncmp(uid, prefix, sizeof prefix - 1) != 0)
		return false;
	const char *p = uid + sizeof prefix - 1;
	size_t pod_len = strlen(pod);
	return strncmp(p, pod, pod_len) == 0 && p[pod_len] == '.' &&
	       strcmp(p + pod_len + 1, ns) == 0;
}

/*
 * Reads the resource one side of a series names: its namespace (NULL for
 * the Namespace kind) and name, borrowed from the series.  False when the
 * side names nothing of the requested kind, or Istio's placeholder
 * "unknown" (an unmeshed peer or a failed metadata exchange).
 */
static bool read_side(const istio_state *st, const smi_request *req, const smi_series *series,
                      side s, const char **ns_out, const char **name_out)
{
	const char *ns = side_label(st, series, s, "workload_namespace");
	const char *name = NULL;
	if (req->kind == SMI_KIND_NAMESPACE) {
		name = ns;
		ns = NULL;
	} else if (st->mode == MODE_TELEMETRY_V2 && req->kind == SMI_KIND_POD) {
		/* Only destination reports are planned for pods. */
		ns = label(st, series, st->namespace_label);
		name = label(st, series, st->pod_label);
	} else if (st->mode == MODE_TELEMETRY_V2) {
		name = side_label(st, series, s, "workload");
	} else if (req->kind == SMI_KIND_POD) {
		name = side_label(st, series, s, "pod");
		if (!uid_is(side_label(st, series, s, "uid"), name, ns))
			return false;
	} else {
		name = owner_name(side_label(st, series, s, "owner"), req->kind, ns);
	}
	if (!name || !*name || same(name, "unknown"))
		return false;
	if (req->kind != SMI_KIND_NAMESPACE && (!ns || !*ns || same(ns, "unknown")))
		return false;
	*ns_out = ns;
	*name_out = name;
	return true;
}

static smi_outcome outcome(const istio_state *st, const smi_series *series)
{
	const char *code = label(st, series, "response_code");
	const char *grpc = label(st, series, "grpc_response_status");
	/* "0": no response at all (reset, client cancel). */
	if (failure_status_is_class(code, '5') || same(code, "0") ||
	    failure_status_grpc_not_ok(grpc))
		return SMI_OUTCOME_FAILURE;
	if (st->failure == FAILURE_STATUS_4XX_5XX && failure_status_is_class(code, '4'))
		return SMI_OUTCOME_FAILURE;
	return SMI_OUTCOME_SUCCESS;
}

static bool is_request(const smi_request *req, const char *ns, const char *name)
{
	return same(name, req->name) &&
	       (req->kind == SMI_KIND_NAMESPACE || same(ns, req->namespace_name));
}

static smi_status istio_identify(void *state, const smi_request *req, uint32_t query_index,
                                 const smi_series *series, smi_identity *id)
{
	istio_state *st = state;
	const char *ns = NULL, *name = NULL;
	id->feeds = 0;
	id->outcome = query_index == 0 ? outcome(st, series) : SMI_OUTCOME_IGNORE;
	if (req->scope != SMI_SCOPE_EDGES) {
		if (!read_side(st, req, series, SIDE_DESTINATION, &ns, &name))
			return SMI_OK;
		id->feeds = SMI_FEEDS_RESOURCE;
		id->self_namespace = ns;
		id->self_name = name;
		return SMI_OK;
	}
	const char *edge = label(st, series, "smi_edge");
	bool to = same(edge, "to");
	if (!to && !same(edge, "from"))
		return SMI_OK;
	/* to: the resource is the source and the peer the destination. */
	side self = to ? SIDE_SOURCE : SIDE_DESTINATION;
	if (!read_side(st, req, series, self, &ns, &name) || !is_request(req, ns, name))
		return SMI_OK;
	if (!read_side(st, req, series, to ? SIDE_DESTINATION : SIDE_SOURCE, &ns, &name))
		return SMI_OK; /* the peer is unknown: deliberately not an edge */
	id->feeds = to ? SMI_FEEDS_EDGE_TO : SMI_FEEDS_EDGE_FROM;
	id->peer_namespace = ns;
	id->peer_name = name;
	id->self_namespace = req->namespace_name;
	id->self_name = req->name;
	return SMI_OK;
}

static const smi_adapter_descriptor istio_descriptor = {
    .abi_major = SMI_ADAPTER_ABI_MAJOR,
    .abi_minor = SMI_ADAPTER_ABI_MINOR,
    .struct_size = sizeof(smi_adapter_descriptor),
    .name = "istio",
    .version = "1.0.0",
    .description = "Istio telemetry v2 (sidecars, ambient waypoints) and legacy Mixer metrics",
    .templates = istio_templates,
    .n_templates = Q_COUNT,
    .open = istio_open,
    .close = istio_close,
    .kinds = istio_kinds,
    .plan = istio_plan,
    .identify = istio_identify,
};

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void)
{
	return &istio_descriptor;
}

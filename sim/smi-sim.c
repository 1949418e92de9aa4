/* smi-sim: serves, for a real Prometheus to scrape, the metrics a service mesh
 * would expose for the emojivoto topology (topology.c) at known rates.  One
 * process stands for every proxy; each mesh has its own emitter. */
#include "topology.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROGRAM                  "smi-sim"
#define CONTENT_TYPE             "text/plain; version=0.0.4; charset=utf-8"
#define CLUSTER_DOMAIN           "cluster.local"
#define TRUST_DOMAIN             "cluster.local"
#define LINKERD_CONTROL_PLANE_NS "linkerd"
/* Longest single label value we format (identities, FQDNs); Kubernetes
 * names are at most 253 bytes. */
#define LABEL_VALUE_MAX 1024
/* A Linkerd exposition of this topology is a few hundred KB. */
#define BODY_INITIAL_CAPACITY (256u * 1024u)

/* ------------------------------------------------------------------ */
/* sim_buf: growable text buffer; the first failure sticks and is checked
 * once at the end instead of after every append. */

typedef struct sim_buf {
	char *data; /* owned, NUL-terminated when not failed */
	size_t len;
	size_t cap;
	bool failed;
} sim_buf;

static bool buf_reserve(sim_buf *buf, size_t extra)
{
	if (buf->failed)
		return false;
	if (buf->len + extra + 1 <= buf->cap)
		return true;
	size_t cap = buf->cap != 0 ? buf->cap : 256;
	while (cap < buf->len + extra + 1)
		cap *= 2;
	char *data = realloc(buf->data, cap);
	if (data == NULL) {
		buf->failed = true;
		return false;
	}
	buf->data = data;
	buf->cap = cap;
	return true;
}

static void buf_printf(sim_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(sim_buf *buf, const char *fmt, ...)
{
	va_list args;
	char probe;

	va_start(args, fmt);
	int needed = vsnprintf(&probe, 1, fmt, args);
	va_end(args);
	if (needed < 0) {
		buf->failed = true;
		return;
	}
	if (!buf_reserve(buf, (size_t)needed))
		return;
	va_start(args, fmt);
	vsnprintf(buf->data + buf->len, (size_t)needed + 1, fmt, args);
	va_end(args);
	buf->len += (size_t)needed;
}

static void buf_putc(sim_buf *buf, char c)
{
	if (!buf_reserve(buf, 1))
		return;
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

static void buf_reset(sim_buf *buf)
{
	buf->len = 0;
	buf->failed = false;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

static void buf_free(sim_buf *buf)
{
	free(buf->data);
	*buf = (sim_buf){0};
}

/* ------------------------------------------------------------------ */
/* Labels in Prometheus text format. */

/* Appends `name="value"` (comma-separated from earlier labels), escaping
 * backslash, double quote and newline as the text format requires. */
static void label_add(sim_buf *buf, const char *name, const char *value)
{
	buf_printf(buf, "%s%s=\"", buf->len == 0 ? "" : ",", name);
	for (const char *c = value; *c != '\0'; c++) {
		if (*c == '\\' || *c == '"') {
			buf_putc(buf, '\\');
			buf_putc(buf, *c);
		} else if (*c == '\n') {
			buf_putc(buf, '\\');
			buf_putc(buf, 'n');
		} else {
			buf_putc(buf, *c);
		}
	}
	buf_putc(buf, '"');
}

static void label_addf(sim_buf *buf, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void label_addf(sim_buf *buf, const char *name, const char *fmt, ...)
{
	char value[LABEL_VALUE_MAX];
	va_list args;

	va_start(args, fmt);
	int written = vsnprintf(value, sizeof(value), fmt, args);
	va_end(args);
	if (written < 0 || (size_t)written >= sizeof(value)) {
		buf->failed = true;
		return;
	}
	label_add(buf, name, value);
}

/* ------------------------------------------------------------------ */
/* Streams: one per distinct label set a reporting proxy exposes.  Several
 * cells (even of different edges, e.g. two callers sharing a service
 * account) can feed one stream; the set is fixed at start. */

typedef enum sim_side {
	SIM_SIDE_SERVER,         /* the callee's proxy: Linkerd inbound, Istio destination */
	SIM_SIDE_CLIENT,         /* the caller's proxy: Linkerd outbound, Istio source */
	SIM_SIDE_WAYPOINT,       /* an Istio ambient waypoint in front of the callee (L7) */
	SIM_SIDE_ZTUNNEL_SERVER, /* Istio ambient ztunnel on the callee's node (L4 only) */
	SIM_SIDE_ZTUNNEL_CLIENT, /* ztunnel on the caller's node (L4 only) */
	SIM_SIDE_COUNT,
} sim_side;

typedef struct sim_outcome {
	size_t cell_count;       /* 0: the pattern never produces this outcome: no series */
	const topo_cell **cells; /* owned array of borrowed cells */
} sim_outcome;

typedef struct sim_stream {
	char *labels;            /* owned; every label but the outcome's */
	sim_side side;           /* who reports it */
	sim_outcome outcomes[2]; /* [0] success, [1] failure */
} sim_stream;

/* A stream's outcome summed over its cells at one instant. */
typedef struct sim_totals {
	uint64_t count;
	uint64_t class_counts[TOPO_LATENCY_CLASSES];
} sim_totals;

static void outcome_totals(const sim_outcome *outcome, sim_totals *totals)
{
	*totals = (sim_totals){0};
	for (size_t i = 0; i < outcome->cell_count; i++) {
		totals->count += outcome->cells[i]->count;
		for (size_t c = 0; c < TOPO_LATENCY_CLASSES; c++)
			totals->class_counts[c] += outcome->cells[i]->class_counts[c];
	}
}

/* Requests whose latency is <= bound_ms: a cumulative bucket of any mesh's
 * layout, since every request of a class has the class's value. */
static uint64_t totals_at_or_below(const sim_totals *totals, double bound_ms)
{
	uint64_t count = 0;
	for (size_t c = 0; c < TOPO_LATENCY_CLASSES; c++)
		if (topo_class_value_ms(c) <= bound_ms)
			count += totals->class_counts[c];
	return count;
}

/* Milliseconds; exact, as class values are multiples of 0.5. */
static double totals_sum_ms(const sim_totals *totals)
{
	double sum = 0.0;
	for (size_t c = 0; c < TOPO_LATENCY_CLASSES; c++)
		sum += (double)totals->class_counts[c] * topo_class_value_ms(c);
	return sum;
}

static int outcome_status_code(size_t outcome_index)
{
	return outcome_index == 0 ? TOPO_STATUS_SUCCESS : TOPO_STATUS_FAILURE;
}

/* ------------------------------------------------------------------ */
/* A mesh: how its proxies label a stream, and how they print families. */

typedef struct sim_mesh {
	const char *name;
	/* Appends the labels the proxy on `side` writes for the requests of
	 * `cell`, including the target labels Prometheus would attach for the
	 * reporting pod, excluding the outcome.  Returns false when no proxy
	 * reports that side (unmeshed peer). */
	bool (*stream_labels)(const topo_edge *edge, const topo_cell *cell, sim_side side,
	                      sim_buf *out);
	void (*render)(const sim_stream *streams, size_t stream_count, sim_buf *out);
	/* Writes the members of the mesh's "mesh" object in --describe (each
	 * line starting with ",\n"), after its name and histogram bounds. */
	void (*describe)(FILE *out);
	/* Finite bounds of the latency histogram, in milliseconds. */
	double (*bound_ms)(size_t index);
	size_t bound_count;
} sim_mesh;

/* --- Linkerd 2.x proxy (reference mesh-telemetry.md §2, §9.1) --- */

/* The target label relabeling derives from linkerd.io/proxy-<kind>. */
static const char *linkerd_owner_label(topo_kind kind)
{
	switch (kind) {
	case TOPO_KIND_DEPLOYMENT: return "deployment";
	case TOPO_KIND_STATEFULSET: return "statefulset";
	case TOPO_KIND_JOB:
		return "k8s_job"; /* renamed so it cannot clash with Prometheus' `job` */
	}
	return "unknown";
}

/* What the linkerd-proxy scrape job adds for the reporting pod. */
static void linkerd_target_labels(sim_buf *out, const topo_workload *workload, size_t pod)
{
	label_add(out, "namespace", workload->namespace);
	label_add(out, "pod", workload->pods[pod].name);
	label_add(out, linkerd_owner_label(workload->kind), workload->name);
	if (workload->app != NULL)
		label_add(out, "app", workload->app);
	if (workload->pod_template_hash != NULL)
		label_add(out, "pod_template_hash", workload->pod_template_hash);
	label_add(out, "control_plane_ns", LINKERD_CONTROL_PLANE_NS);
	label_add(out, "workload_ns", workload->namespace);
}

static void linkerd_identity(sim_buf *out, const char *name, const topo_workload *workload)
{
	label_addf(out, name, "%s.%s.serviceaccount.identity.%s.%s", workload->service_account,
	           workload->namespace, LINKERD_CONTROL_PLANE_NS, TRUST_DOMAIN);
}

/* authority and target_* of a request to `pod` of `callee`. */
static void linkerd_target_addr(sim_buf *out, const topo_workload *callee, size_t pod)
{
	label_addf(out, "authority", "%s.%s.svc.%s:%u", callee->service, callee->namespace,
	           CLUSTER_DOMAIN, callee->service_port);
	label_addf(out, "target_addr", "%s:%u", callee->pods[pod].ip, callee->container_port);
	label_add(out, "target_ip", callee->pods[pod].ip);
	label_addf(out, "target_port", "%u", callee->container_port);
}

/* Default policy: no Server/route/authorization objects in the cluster. */
static void linkerd_default_policy(sim_buf *out, unsigned port)
{
	label_add(out, "srv_group", "");
	label_add(out, "srv_kind", "default");
	label_add(out, "srv_name", "all-unauthenticated");
	label_addf(out, "srv_port", "%u", port);
	label_add(out, "route_group", "");
	label_add(out, "route_kind", "default");
	label_add(out, "route_name", "default");
	label_add(out, "authz_group", "");
	label_add(out, "authz_kind", "default");
	label_add(out, "authz_name", "all-unauthenticated");
}

static void linkerd_inbound_labels(const topo_edge *edge, const topo_cell *cell, sim_buf *out)
{
	linkerd_target_labels(out, edge->callee, cell->callee_pod);
	label_add(out, "direction", "inbound");
	linkerd_target_addr(out, edge->callee, cell->callee_pod);
	if (edge->caller->meshed) {
		label_add(out, "tls", "true");
		linkerd_identity(out, "client_id", edge->caller);
	} else {
		label_add(out, "tls", "no_identity");
		label_add(out, "no_tls_reason", "no_tls_from_remote");
	}
	linkerd_default_policy(out, edge->callee->container_port);
}

/* dst_* come from the destination controller's view of the callee pod. */
static void linkerd_outbound_labels(const topo_edge *edge, const topo_cell *cell, sim_buf *out)
{
	const topo_workload *callee = edge->callee;
	char owner_label[64];

	linkerd_target_labels(out, edge->caller, cell->caller_pod);
	label_add(out, "direction", "outbound");
	linkerd_target_addr(out, callee, cell->callee_pod);
	label_add(out, "tls", "true");
	linkerd_identity(out, "server_id", callee);
	label_add(out, "dst_control_plane_ns", LINKERD_CONTROL_PLANE_NS);
	snprintf(owner_label, sizeof(owner_label), "dst_%s", linkerd_owner_label(callee->kind));
	label_add(out, owner_label, callee->name);
	label_add(out, "dst_namespace", callee->namespace);
	label_add(out, "dst_pod", callee->pods[cell->callee_pod].name);
	if (callee->pod_template_hash != NULL)
		label_add(out, "dst_pod_template_hash", callee->pod_template_hash);
	label_add(out, "dst_serviceaccount", callee->service_account);
	label_add(out, "dst_service", callee->service);
}

static bool linkerd_stream_labels(const topo_edge *edge, const topo_cell *cell, sim_side side,
                                  sim_buf *out)
{
	if (side == SIM_SIDE_SERVER) {
		linkerd_inbound_labels(edge, cell, out);
		return true;
	}
	if (side != SIM_SIDE_CLIENT || !edge->caller->meshed)
		return false; /* no proxy, no outbound series */
	linkerd_outbound_labels(edge, cell, out);
	return true;
}

static void linkerd_render_requests(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	sim_totals success;
	sim_totals failure;

	buf_printf(out, "# HELP request_total Total count of HTTP requests.\n"
	                "# TYPE request_total counter\n");
	for (size_t i = 0; i < stream_count; i++) {
		outcome_totals(&streams[i].outcomes[0], &success);
		outcome_totals(&streams[i].outcomes[1], &failure);
		buf_printf(out, "request_total{%s} %" PRIu64 "\n", streams[i].labels,
		           success.count + failure.count);
	}
}

static void linkerd_render_latency(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	sim_totals totals;

	buf_printf(out, "# HELP response_latency_ms Elapsed times between a request's headers "
	                "being received and its response stream completing\n"
	                "# TYPE response_latency_ms histogram\n");
	for (size_t i = 0; i < stream_count; i++) {
		for (size_t o = 0; o < 2; o++) {
			if (streams[i].outcomes[o].cell_count == 0)
				continue;
			outcome_totals(&streams[i].outcomes[o], &totals);
			const char *labels = streams[i].labels;
			int status = outcome_status_code(o);
			for (size_t c = 0; c < TOPO_LATENCY_CLASSES; c++)
				buf_printf(out,
				           "response_latency_ms_bucket{%s,status_code=\"%d\","
				           "le=\"%s\"} %" PRIu64 "\n",
				           labels, status, topo_class_bound_text(c),
				           totals_at_or_below(&totals, topo_class_bound_ms(c)));
			buf_printf(out,
			           "response_latency_ms_count{%s,status_code=\"%d\"} %" PRIu64 "\n",
			           labels, status, totals.count);
			buf_printf(out, "response_latency_ms_sum{%s,status_code=\"%d\"} %.17g\n",
			           labels, status, totals_sum_ms(&totals));
		}
	}
}

static void linkerd_render_responses(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	sim_totals totals;

	buf_printf(out, "# HELP response_total Total count of HTTP responses.\n"
	                "# TYPE response_total counter\n");
	for (size_t i = 0; i < stream_count; i++) {
		for (size_t o = 0; o < 2; o++) {
			if (streams[i].outcomes[o].cell_count == 0)
				continue;
			outcome_totals(&streams[i].outcomes[o], &totals);
			/* Plain HTTP: 5xx is a failure; grpc_status and error are
			 * empty, as current proxies print them. */
			buf_printf(out,
			           "response_total{%s,status_code=\"%d\",classification=\"%s\","
			           "grpc_status=\"\",error=\"\"} %" PRIu64 "\n",
			           streams[i].labels, outcome_status_code(o),
			           o == 0 ? "success" : "failure", totals.count);
		}
	}
}

static void linkerd_render(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	linkerd_render_requests(streams, stream_count, out);
	linkerd_render_latency(streams, stream_count, out);
	linkerd_render_responses(streams, stream_count, out);
}

/* --- Istio telemetry v2: sidecars and ambient (reference mesh-telemetry.md §3, §9.2) --- */

/* Envoy's default histogram bounds, milliseconds. */
static const double istio_bounds_ms[] = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
};
static const char *const istio_bound_texts[] = {
    "0.5",  "1",    "5",     "10",    "25",    "50",     "100",    "250",     "500",     "1000",
    "2500", "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000",
};
#define ISTIO_FINITE_BOUNDS (sizeof(istio_bounds_ms) / sizeof(istio_bounds_ms[0]))

static double istio_bound_ms(size_t index)
{
	return istio_bounds_ms[index];
}

/* Target labels of the sample addon's kubernetes-pods job: namespace, pod
 * and the pod's labels. */
static void istio_target_labels(sim_buf *out, const topo_workload *workload, size_t pod)
{
	label_add(out, "namespace", workload->namespace);
	label_add(out, "pod", workload->pods[pod].name);
	if (workload->app != NULL)
		label_add(out, "app", workload->app);
	if (workload->pod_template_hash != NULL)
		label_add(out, "pod_template_hash", workload->pod_template_hash);
}

/* source_* or destination_* from peer metadata; all "unknown" without a
 * proxy on that side. */
static void istio_peer_labels(sim_buf *out, const char *prefix, const topo_workload *workload)
{
	bool known = workload->meshed;
	const char *canonical = workload->app != NULL ? workload->app : workload->name;
	char name[64];

#define PEER_LABEL(suffix, value)                                                                  \
	do {                                                                                       \
		snprintf(name, sizeof(name), "%s_%s", prefix, suffix);                             \
		label_add(out, name, known ? (value) : "unknown");                                 \
	} while (0)
	PEER_LABEL("workload", workload->name);
	PEER_LABEL("canonical_service", canonical);
	PEER_LABEL("canonical_revision", "latest");
	PEER_LABEL("workload_namespace", workload->namespace);
	snprintf(name, sizeof(name), "%s_principal", prefix);
	if (known)
		label_addf(out, name, "spiffe://%s/ns/%s/sa/%s", TRUST_DOMAIN, workload->namespace,
		           workload->service_account);
	else
		label_add(out, name, "unknown");
	PEER_LABEL("app", canonical);
	PEER_LABEL("version", "unknown");
#undef PEER_LABEL
}

/* Every label of a report but the reporting pod's and the outcome's. */
static void istio_report_labels(sim_buf *out, const topo_edge *edge, const char *reporter,
                                const char *protocol, const char *security_policy)
{
	const topo_workload *callee = edge->callee;

	label_add(out, "reporter", reporter);
	istio_peer_labels(out, "source", edge->caller);
	label_add(out, "source_cluster", edge->caller->meshed ? "Kubernetes" : "unknown");
	istio_peer_labels(out, "destination", callee);
	label_addf(out, "destination_service", "%s.%s.svc.%s", callee->service, callee->namespace,
	           CLUSTER_DOMAIN);
	label_add(out, "destination_service_name", callee->service);
	label_add(out, "destination_service_namespace", callee->namespace);
	label_add(out, "destination_cluster", "Kubernetes");
	label_add(out, "request_protocol", protocol);
	label_add(out, "connection_security_policy", security_policy);
}

/* A sidecar's report: the callee's (destination) or the caller's (source). */
static bool istio_sidecar_labels(const topo_edge *edge, const topo_cell *cell, sim_side side,
                                 sim_buf *out)
{
	if (side == SIM_SIDE_SERVER) {
		istio_target_labels(out, edge->callee, cell->callee_pod);
		istio_report_labels(out, edge, "destination", "http",
		                    edge->caller->meshed ? "mutual_tls" : "none");
		return true;
	}
	if (side != SIM_SIDE_CLIENT || !edge->caller->meshed)
		return false;
	istio_target_labels(out, edge->caller, cell->caller_pod);
	/* Source reports cannot see the server's mTLS policy. */
	istio_report_labels(out, edge, "source", "http", "unknown");
	return true;
}

/*
 * The ambient scenario (--mesh istio-ambient).  Every meshed workload is
 * enrolled in ambient mode (ztunnel: L4 metrics only) except the two below,
 * which keep a sidecar, so that the mesh is a mixed one: vote-bot is a
 * sidecar client of a waypoint-fronted service (its source report and the
 * waypoint's describe the same requests), voting a sidecar server behind
 * the waypoint (destination and waypoint reports of the same requests).
 * emojivoto has a namespace waypoint; datastore has none, so vote-db's
 * traffic is L4 only.  The unmeshed ingress reaches web without the
 * waypoint (no istio.io/ingress-use-waypoint): only web's ztunnel sees it.
 */
typedef struct sim_workload_ref {
	const char *namespace;
	const char *name;
} sim_workload_ref;

static const sim_workload_ref ambient_sidecars[] = {
    {"emojivoto", "vote-bot"},
    {"emojivoto", "voting"},
};
#define AMBIENT_SIDECAR_COUNT      (sizeof(ambient_sidecars) / sizeof(ambient_sidecars[0]))
#define AMBIENT_WAYPOINT_NAMESPACE "emojivoto"
#define AMBIENT_WAYPOINT_NAME      "waypoint"
#define AMBIENT_WAYPOINT_POD       "waypoint-6b9f8d7c5-v8m2q"
#define AMBIENT_ZTUNNEL_NAMESPACE  "istio-system"
#define AMBIENT_ZTUNNEL_POD        "ztunnel-x7k2p"
/* L4 accounting of the ztunnel series: requests per connection, bytes. */
#define AMBIENT_REQUESTS_PER_CONNECTION 10u
#define AMBIENT_REQUEST_BYTES           256u
#define AMBIENT_RESPONSE_BYTES          1024u

static bool ambient_has_sidecar(const topo_workload *workload)
{
	for (size_t i = 0; i < AMBIENT_SIDECAR_COUNT; i++)
		if (strcmp(ambient_sidecars[i].namespace, workload->namespace) == 0 &&
		    strcmp(ambient_sidecars[i].name, workload->name) == 0)
			return true;
	return false;
}

static bool ambient_behind_waypoint(const topo_workload *callee)
{
	return strcmp(callee->namespace, AMBIENT_WAYPOINT_NAMESPACE) == 0;
}

/* Target labels of the waypoint's own pod (a Gateway's Deployment). */
static void ambient_waypoint_target_labels(sim_buf *out)
{
	label_add(out, "namespace", AMBIENT_WAYPOINT_NAMESPACE);
	label_add(out, "pod", AMBIENT_WAYPOINT_POD);
	label_add(out, "gateway_networking_k8s_io_gateway_name", AMBIENT_WAYPOINT_NAME);
	label_add(out, "istio_io_dataplane_mode", "none");
}

static void ambient_ztunnel_target_labels(sim_buf *out)
{
	label_add(out, "namespace", AMBIENT_ZTUNNEL_NAMESPACE);
	label_add(out, "pod", AMBIENT_ZTUNNEL_POD);
	label_add(out, "app", "ztunnel");
}

static bool ambient_stream_labels(const topo_edge *edge, const topo_cell *cell, sim_side side,
                                  sim_buf *out)
{
	const topo_workload *caller = edge->caller;
	const topo_workload *callee = edge->callee;

	switch (side) {
	case SIM_SIDE_SERVER:
		return ambient_has_sidecar(callee) && istio_sidecar_labels(edge, cell, side, out);
	case SIM_SIDE_CLIENT:
		return ambient_has_sidecar(caller) && istio_sidecar_labels(edge, cell, side, out);
	case SIM_SIDE_WAYPOINT:
		if (!ambient_behind_waypoint(callee) || !caller->meshed)
			return false;
		ambient_waypoint_target_labels(out);
		istio_report_labels(out, edge, "waypoint", "http", "mutual_tls");
		return true;
	case SIM_SIDE_ZTUNNEL_SERVER:
		/* ztunnel does not capture pods that have a sidecar. */
		if (ambient_has_sidecar(callee))
			return false;
		ambient_ztunnel_target_labels(out);
		istio_report_labels(out, edge, "destination", "tcp",
		                    caller->meshed ? "mutual_tls" : "none");
		return true;
	case SIM_SIDE_ZTUNNEL_CLIENT:
		if (!caller->meshed || ambient_has_sidecar(caller))
			return false;
		ambient_ztunnel_target_labels(out);
		istio_report_labels(out, edge, "source", "tcp", "mutual_tls");
		return true;
	case SIM_SIDE_COUNT: break;
	}
	return false;
}

static bool is_ztunnel(const sim_stream *stream)
{
	return stream->side == SIM_SIDE_ZTUNNEL_SERVER || stream->side == SIM_SIDE_ZTUNNEL_CLIENT;
}

static void istio_render_requests(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	sim_totals totals;

	/* Envoy prints # TYPE lines only. */
	buf_printf(out, "# TYPE istio_requests_total counter\n");
	for (size_t i = 0; i < stream_count; i++) {
		if (is_ztunnel(&streams[i]))
			continue;
		for (size_t o = 0; o < 2; o++) {
			if (streams[i].outcomes[o].cell_count == 0)
				continue;
			outcome_totals(&streams[i].outcomes[o], &totals);
			buf_printf(out,
			           "istio_requests_total{%s,response_code=\"%d\","
			           "grpc_response_status=\"\",response_flags=\"-\"} %" PRIu64 "\n",
			           streams[i].labels, outcome_status_code(o), totals.count);
		}
	}
}

static void istio_render_duration(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	sim_totals totals;
	const char *name = "istio_request_duration_milliseconds";

	buf_printf(out, "# TYPE %s histogram\n", name);
	for (size_t i = 0; i < stream_count; i++) {
		if (is_ztunnel(&streams[i]))
			continue;
		for (size_t o = 0; o < 2; o++) {
			if (streams[i].outcomes[o].cell_count == 0)
				continue;
			outcome_totals(&streams[i].outcomes[o], &totals);
			const char *labels = streams[i].labels;
			int status = outcome_status_code(o);
			const char *outcome_labels =
			    "grpc_response_status=\"\",response_flags=\"-\"";
			for (size_t b = 0; b < ISTIO_FINITE_BOUNDS; b++)
				buf_printf(
				    out,
				    "%s_bucket{%s,response_code=\"%d\",%s,le=\"%s\"} %" PRIu64 "\n",
				    name, labels, status, outcome_labels, istio_bound_texts[b],
				    totals_at_or_below(&totals, istio_bounds_ms[b]));
			buf_printf(
			    out, "%s_bucket{%s,response_code=\"%d\",%s,le=\"+Inf\"} %" PRIu64 "\n",
			    name, labels, status, outcome_labels, totals.count);
			buf_printf(out, "%s_sum{%s,response_code=\"%d\",%s} %.17g\n", name, labels,
			           status, outcome_labels, totals_sum_ms(&totals));
			buf_printf(out, "%s_count{%s,response_code=\"%d\",%s} %" PRIu64 "\n", name,
			           labels, status, outcome_labels, totals.count);
		}
	}
}

/* Requests of both outcomes of a stream (L4 and Mixer histograms do not
 * split by status). */
static void stream_totals(const sim_stream *stream, sim_totals *totals)
{
	sim_totals failure;

	outcome_totals(&stream->outcomes[0], totals);
	outcome_totals(&stream->outcomes[1], &failure);
	totals->count += failure.count;
	for (size_t c = 0; c < TOPO_LATENCY_CLASSES; c++)
		totals->class_counts[c] += failure.class_counts[c];
}

/* ztunnel's L4 families: connections and bytes, derived from the requests. */
static void ambient_render_tcp(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	static const char *const families[] = {
	    "istio_tcp_connections_opened_total",
	    "istio_tcp_sent_bytes_total",
	    "istio_tcp_received_bytes_total",
	};
	sim_totals totals;

	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		buf_printf(out, "# TYPE %s counter\n", families[f]);
		for (size_t i = 0; i < stream_count; i++) {
			if (!is_ztunnel(&streams[i]))
				continue;
			stream_totals(&streams[i], &totals);
			uint64_t value =
			    f == 0 ? (totals.count + AMBIENT_REQUESTS_PER_CONNECTION - 1) /
			                 AMBIENT_REQUESTS_PER_CONNECTION
			    : f == 1 ? totals.count * AMBIENT_REQUEST_BYTES
			             : totals.count * AMBIENT_RESPONSE_BYTES;
			buf_printf(out, "%s{%s,response_flags=\"-\"} %" PRIu64 "\n", families[f],
			           streams[i].labels, value);
		}
	}
}

static void istio_render(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	istio_render_requests(streams, stream_count, out);
	istio_render_duration(streams, stream_count, out);
}

static void ambient_render(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	istio_render(streams, stream_count, out);
	ambient_render_tcp(streams, stream_count, out);
}

static void ambient_describe(FILE *out)
{
	fputs(",\n    \"sidecars\": [", out);
	for (size_t i = 0; i < AMBIENT_SIDECAR_COUNT; i++)
		fprintf(out, "%s{\"namespace\": \"%s\", \"name\": \"%s\"}", i == 0 ? "" : ", ",
		        ambient_sidecars[i].namespace, ambient_sidecars[i].name);
	fputs("],\n", out);
	fputs("    \"waypoints\": [{\"namespace\": \"" AMBIENT_WAYPOINT_NAMESPACE
	      "\", \"name\": \"" AMBIENT_WAYPOINT_NAME "\", \"pod\": \"" AMBIENT_WAYPOINT_POD
	      "\"}]",
	      out);
}

/* --- Istio Mixer, with the objects of adapters/istio/manifests (§4, §9.3) --- */

/* The handler's explicit bounds, seconds. */
static const double mixer_bounds_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const char *const mixer_bound_texts[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                                "0.5",   "1",    "2.5",   "5",    "10"};
#define MIXER_FINITE_BOUNDS (sizeof(mixer_bounds_s) / sizeof(mixer_bounds_s[0]))

static double mixer_bound_ms(size_t index)
{
	return mixer_bounds_s[index] * 1000.0;
}

/* source_* or destination_* as the kubernetesenv adapter fills them:
 * owner kubernetes://apis/<apiVersion>/namespaces/<ns>/<kind>s/<name>,
 * uid kubernetes://<pod>.<ns>; "unknown" without a sidecar. */
static void mixer_side_labels(sim_buf *out, const char *prefix, const topo_workload *workload,
                              size_t pod, bool with_namespace)
{
	char name[64];
	const char *api_version = workload->kind == TOPO_KIND_JOB ? "batch/v1" : "apps/v1";
	const char *plural = workload->kind == TOPO_KIND_JOB           ? "jobs"
	                     : workload->kind == TOPO_KIND_STATEFULSET ? "statefulsets"
	                                                               : "deployments";

	snprintf(name, sizeof(name), "%s_owner", prefix);
	if (workload->meshed)
		label_addf(out, name, "kubernetes://apis/%s/namespaces/%s/%s/%s", api_version,
		           workload->namespace, plural, workload->name);
	else
		label_add(out, name, "unknown");
	snprintf(name, sizeof(name), "%s_uid", prefix);
	if (workload->meshed)
		label_addf(out, name, "kubernetes://%s.%s", workload->pods[pod].name,
		           workload->namespace);
	else
		label_add(out, name, "unknown");
	if (with_namespace) {
		snprintf(name, sizeof(name), "%s_workload_namespace", prefix);
		label_add(out, name, workload->meshed ? workload->namespace : "unknown");
	}
}

/* Labels in client_golang's order (sorted by name), except response_code
 * and grpc_response_status, which render appends. */
static bool mixer_stream_labels(const topo_edge *edge, const topo_cell *cell, sim_side side,
                                sim_buf *out)
{
	if (side != SIM_SIDE_SERVER && (side != SIM_SIDE_CLIENT || !edge->caller->meshed))
		return false;
	mixer_side_labels(out, "destination", edge->callee, cell->callee_pod, true);
	label_add(out, "reporter", side == SIM_SIDE_SERVER ? "destination" : "source");
	mixer_side_labels(out, "source", edge->caller, cell->caller_pod, true);
	return true;
}

static void mixer_render(const sim_stream *streams, size_t stream_count, sim_buf *out)
{
	const char *name = "istio_smi_request_duration_seconds";
	sim_totals totals;

	buf_printf(out, "# HELP istio_smi_requests_total smi_requests_total\n"
	                "# TYPE istio_smi_requests_total counter\n");
	for (size_t i = 0; i < stream_count; i++) {
		for (size_t o = 0; o < 2; o++) {
			if (streams[i].outcomes[o].cell_count == 0)
				continue;
			outcome_totals(&streams[i].outcomes[o], &totals);
			buf_printf(out,
			           "istio_smi_requests_total{%s,grpc_response_status=\"\","
			           "response_code=\"%d\"} %" PRIu64 "\n",
			           streams[i].labels, outcome_status_code(o), totals.count);
		}
	}
	/* The duration instance has no response_code: one histogram per stream. */
	buf_printf(out, "# HELP %s smi_request_duration_seconds\n# TYPE %s histogram\n", name,
	           name);
	for (size_t i = 0; i < stream_count; i++) {
		stream_totals(&streams[i], &totals);
		const char *labels = streams[i].labels;
		for (size_t b = 0; b < MIXER_FINITE_BOUNDS; b++)
			buf_printf(out, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels,
			           mixer_bound_texts[b],
			           totals_at_or_below(&totals, mixer_bound_ms(b)));
		buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels,
		           totals.count);
		buf_printf(out, "%s_sum{%s} %.17g\n", name, labels,
		           totals_sum_ms(&totals) / 1000.0);
		buf_printf(out, "%s_count{%s} %" PRIu64 "\n", name, labels, totals.count);
	}
}

static void describe_nothing(FILE *out)
{
	(void)out;
}

static const sim_mesh meshes[] = {
    {"linkerd", linkerd_stream_labels, linkerd_render, describe_nothing, topo_class_bound_ms,
     TOPO_LATENCY_CLASSES - 1},
    {"istio", istio_sidecar_labels, istio_render, describe_nothing, istio_bound_ms,
     ISTIO_FINITE_BOUNDS},
    {"istio-ambient", ambient_stream_labels, ambient_render, ambient_describe, istio_bound_ms,
     ISTIO_FINITE_BOUNDS},
    {"istio-mixer", mixer_stream_labels, mixer_render, describe_nothing, mixer_bound_ms,
     MIXER_FINITE_BOUNDS},
};
#define MESH_COUNT (sizeof(meshes) / sizeof(meshes[0]))

static const sim_mesh *mesh_from_name(const char *name)
{
	for (size_t i = 0; i < MESH_COUNT; i++)
		if (strcmp(meshes[i].name, name) == 0)
			return &meshes[i];
	return NULL;
}

/* The "mesh" member of --describe: the histogram layout and, for each
 * topology edge (same order), which proxies report its requests. */
static bool mesh_describe_json(const sim_mesh *mesh, FILE *out)
{
	static const char *const side_names[SIM_SIDE_COUNT] = {
	    "server", "client", "waypoint", "ztunnel-server", "ztunnel-client",
	};
	size_t edge_count;
	const topo_edge *edges = topo_edges(&edge_count);
	const topo_cell first_pods = {0};
	sim_buf scratch = {0};

	fprintf(out, ",\n  \"mesh\": {\n    \"name\": \"%s\",\n    \"histogram_bounds_ms\": [",
	        mesh->name);
	for (size_t i = 0; i < mesh->bound_count; i++)
		fprintf(out, "%s%.10g", i == 0 ? "" : ", ", mesh->bound_ms(i));
	fputs("],\n    \"edge_reporters\": [", out);
	for (size_t e = 0; e < edge_count; e++) {
		bool first = true;
		fputs(e == 0 ? "[" : ", [", out);
		for (int side = 0; side < SIM_SIDE_COUNT; side++) {
			buf_reset(&scratch);
			if (!mesh->stream_labels(&edges[e], &first_pods, (sim_side)side, &scratch))
				continue;
			fprintf(out, "%s\"%s\"", first ? "" : ", ", side_names[side]);
			first = false;
		}
		fputc(']', out);
	}
	fputc(']', out);
	mesh->describe(out);
	fputs("\n  }", out);
	bool ok = !scratch.failed;
	buf_free(&scratch);
	return ok;
}

/* --describe: the topology's JSON (topology.c) with the "mesh" member
 * added as its last member. */
static bool describe(const sim_mesh *mesh, FILE *out)
{
	static const char end[] = "\n}\n";
	char *text = NULL;
	size_t len = 0;
	FILE *memory = open_memstream(&text, &len);
	bool ok = false;

	if (memory == NULL)
		return false;
	topo_status status = topo_describe_json(memory);
	if (fclose(memory) != 0 || status != TOPO_OK || len < sizeof(end) - 1 ||
	    strcmp(text + len - (sizeof(end) - 1), end) != 0)
		goto out;
	fwrite(text, 1, len - (sizeof(end) - 1), out);
	if (!mesh_describe_json(mesh, out))
		goto out;
	fputs(end, out);
	ok = fflush(out) == 0 && !ferror(out);
out:
	free(text);
	return ok;
}

/* ------------------------------------------------------------------ */
/* The exposition: the traffic state and the streams built over it. */

typedef struct sim_exposition {
	const sim_mesh *mesh;
	topo_traffic *traffic; /* owned */
	size_t stream_count;
	size_t stream_capacity;
	sim_stream *streams;  /* owned */
	pthread_mutex_t lock; /* serialises advancing and reading `traffic` */
} sim_exposition;

static bool outcome_add_cell(sim_outcome *outcome, const topo_cell *cell)
{
	const topo_cell **cells =
	    realloc(outcome->cells, (outcome->cell_count + 1) * sizeof(*cells));
	if (cells == NULL)
		return false;
	cells[outcome->cell_count++] = cell;
	outcome->cells = cells;
	return true;
}

/* The stream with exactly these labels, created if new; NULL on ENOMEM. */
static sim_stream *exposition_stream(sim_exposition *exposition, sim_side side, const char *labels)
{
	for (size_t i = 0; i < exposition->stream_count; i++)
		if (exposition->streams[i].side == side &&
		    strcmp(exposition->streams[i].labels, labels) == 0)
			return &exposition->streams[i];
	if (exposition->stream_count == exposition->stream_capacity) {
		size_t capacity =
		    exposition->stream_capacity ? exposition->stream_capacity * 2 : 32;
		sim_stream *streams = realloc(exposition->streams, capacity * sizeof(*streams));
		if (streams == NULL)
			return NULL;
		exposition->streams = streams;
		exposition->stream_capacity = capacity;
	}
	char *copy = strdup(labels);
	if (copy == NULL)
		return NULL;
	sim_stream *stream = &exposition->streams[exposition->stream_count++];
	*stream = (sim_stream){.labels = copy, .side = side};
	return stream;
}

/* Server-side streams first, then client-side, each in topology order, so
 * the exposition reads like the proxies' own. */
static bool exposition_build_streams(sim_exposition *exposition)
{
	size_t edge_count;
	const topo_edge *edges = topo_edges(&edge_count);
	sim_buf labels = {0};
	bool ok = false;

	for (int side = SIM_SIDE_SERVER; side < SIM_SIDE_COUNT; side++) {
		for (size_t e = 0; e < edge_count; e++) {
			size_t cells = topo_traffic_cell_count(exposition->traffic, e);
			for (size_t c = 0; c < cells; c++) {
				const topo_cell *cell =
				    topo_traffic_cell(exposition->traffic, e, c);
				buf_reset(&labels);
				if (!exposition->mesh->stream_labels(&edges[e], cell,
				                                     (sim_side)side, &labels))
					continue;
				if (labels.failed)
					goto out;
				sim_stream *stream =
				    exposition_stream(exposition, (sim_side)side, labels.data);
				if (stream == NULL ||
				    !outcome_add_cell(&stream->outcomes[cell->failed ? 1 : 0],
				                      cell))
					goto out;
			}
		}
	}
	ok = true;
out:
	buf_free(&labels);
	return ok;
}

static void exposition_free(sim_exposition *exposition)
{
	for (size_t i = 0; i < exposition->stream_count; i++) {
		free(exposition->streams[i].labels);
		free(exposition->streams[i].outcomes[0].cells);
		free(exposition->streams[i].outcomes[1].cells);
	}
	free(exposition->streams);
	topo_traffic_free(exposition->traffic);
	pthread_mutex_destroy(&exposition->lock);
}

/* On failure the exposition holds nothing to free. */
static bool exposition_init(sim_exposition *exposition, const sim_mesh *mesh, char *err,
                            size_t err_size)
{
	struct timespec start;
	topo_status status;

	*exposition = (sim_exposition){.mesh = mesh};
	if (clock_gettime(CLOCK_REALTIME, &start) != 0) {
		snprintf(err, err_size, "clock_gettime: %s", strerror(errno));
		return false;
	}
	int rc = pthread_mutex_init(&exposition->lock, NULL);
	if (rc != 0) {
		snprintf(err, err_size, "pthread_mutex_init: %s", strerror(rc));
		return false;
	}
	status = topo_traffic_new(&start, &exposition->traffic);
	if (status != TOPO_OK) {
		snprintf(err, err_size, "%s",
		         status == TOPO_ERR_NOMEM ? "out of memory"
		                                  : "the static topology is invalid");
		goto fail;
	}
	if (!exposition_build_streams(exposition)) {
		snprintf(err, err_size, "out of memory building the series");
		goto fail;
	}
	return true;
fail:
	exposition_free(exposition);
	return false;
}

/* Renders the whole exposition as of now into `body`. */
static bool exposition_render(sim_exposition *exposition, sim_buf *body)
{
	struct timespec now;
	bool ok = false;

	if (pthread_mutex_lock(&exposition->lock) != 0)
		return false;
	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		goto out;
	topo_traffic_advance(exposition->traffic, &now);
	exposition->mesh->render(exposition->streams, exposition->stream_count, body);
	ok = !body->failed;
out:
	pthread_mutex_unlock(&exposition->lock);
	return ok;
}

/* ------------------------------------------------------------------ */
/* HTTP: GET /metrics, nothing else. */

static enum MHD_Result http_send(struct MHD_Connection *connection, unsigned status,
                                 const char *content_type, char *body /* owned */, size_t len)
{
	enum MHD_Result result = MHD_NO;
	struct MHD_Response *response =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);

	if (response == NULL) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) !=
	    MHD_YES)
		goto out;
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
		goto out;
	result = MHD_queue_response(connection, status, response);
out:
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result http_send_text(struct MHD_Connection *connection, unsigned status,
                                      const char *text)
{
	char *body = strdup(text);
	if (body == NULL)
		return MHD_NO;
	return http_send(connection, status, "text/plain; charset=utf-8", body, strlen(body));
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *connection, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **request_state)
{
	sim_exposition *exposition = cls;
	sim_buf body = {0};

	(void)version;
	(void)upload_data;
	/* Answering on the first call (headers only) makes libmicrohttpd close
	 * the connection; waiting for the second keeps scrapes on keep-alive. */
	if (*request_state == NULL) {
		*request_state = exposition;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* nothing here reads a body: discard it */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return http_send_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
		                      "method not allowed\n");
	if (strcmp(url, "/metrics") != 0)
		return http_send_text(connection, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n");
	if (!buf_reserve(&body, BODY_INITIAL_CAPACITY) || !exposition_render(exposition, &body)) {
		buf_free(&body);
		return http_send_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                      "cannot render metrics\n");
	}
	return http_send(connection, MHD_HTTP_OK, CONTENT_TYPE, body.data, body.len);
}

/* ------------------------------------------------------------------ */
/* Command line. */

typedef struct sim_options {
	bool help;
	bool describe;
	const char *listen; /* borrowed from argv */
	const sim_mesh *mesh;
	struct sockaddr_storage address;
	bool ipv6;
} sim_options;

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: " PROGRAM " --listen HOST:PORT [--mesh MESH]\n"
	    "       " PROGRAM " --describe [--mesh MESH]\n"
	    "\n"
	    "Serves Prometheus metrics shaped like a service mesh's proxies for the\n"
	    "emojivoto topology, at deterministic rates, on http://HOST:PORT/metrics.\n"
	    "Every series carries the target labels of its pod; scrape with honor_labels: true.\n"
	    "\n"
	    "  --listen HOST:PORT  numeric IPv4 address, or [IPv6]:PORT; port 0 picks one\n"
	    "  --mesh MESH         linkerd (default); istio (telemetry v2 sidecars);\n"
	    "                      istio-ambient (ztunnel, a waypoint in emojivoto and two\n"
	    "                      sidecars); istio-mixer (Mixer metrics as defined by\n"
	    "                      adapters/istio/manifests, histogram in seconds)\n"
	    "  --describe          print the topology, traffic rules and the mesh's\n"
	    "                      reporters as JSON and exit\n"
	    "  --help              show this help\n"
	    "\n"
	    "Stops cleanly on SIGINT or SIGTERM.\n");
}

/* Parses "1.2.3.4:80" or "[::1]:80" into options->address. */
static bool parse_listen(sim_options *options, const char *text, char *err, size_t err_size)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	char *end;

	if (colon == NULL || colon == text || colon[1] == '\0') {
		snprintf(err, err_size, "--listen wants HOST:PORT, got '%s'", text);
		return false;
	}
	size_t host_len = (size_t)(colon - text);
	if (host_len >= sizeof(host)) {
		snprintf(err, err_size, "--listen: host too long in '%s'", text);
		return false;
	}
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port > 65535 || colon[1] == '-' || colon[1] == '+') {
		snprintf(err, err_size, "--listen: invalid port '%s'", colon + 1);
		return false;
	}
	memset(&options->address, 0, sizeof(options->address));
	if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&options->address;
		host[host_len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			goto bad_host;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		options->ipv6 = true;
		return true;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)&options->address;
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		goto bad_host;
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	options->ipv6 = false;
	return true;
bad_host:
	snprintf(err, err_size, "--listen: '%s' is not a numeric IPv4 address or [IPv6] address",
	         host);
	return false;
}

static bool parse_options(int argc, char **argv, sim_options *options, char *err, size_t err_size)
{
	static const struct option long_options[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"mesh", required_argument, NULL, 'm'},
	    {"describe", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	*options = (sim_options){.mesh = &meshes[0]};
	opterr = 0; /* we print our own messages */
	while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'l': options->listen = optarg; break;
		case 'm':
			options->mesh = mesh_from_name(optarg);
			if (options->mesh == NULL) {
				snprintf(
				    err, err_size,
				    "--mesh: unknown mesh '%s' (linkerd, istio, istio-ambient, "
				    "istio-mixer)",
				    optarg);
				return false;
			}
			break;
		case 'd': options->describe = true; break;
		case 'h': options->help = true; break;
		case ':':
			snprintf(err, err_size, "%s needs a value", argv[optind - 1]);
			return false;
		default:
			snprintf(err, err_size, "unknown option '%s'", argv[optind - 1]);
			return false;
		}
	}
	if (optind < argc) {
		snprintf(err, err_size, "unexpected argument '%s'", argv[optind]);
		return false;
	}
	if (options->help || options->describe)
		return true;
	if (options->listen == NULL) {
		snprintf(err, err_size, "--listen HOST:PORT is required");
		return false;
	}
	return parse_listen(options, options->listen, err, err_size);
}

/* ------------------------------------------------------------------ */

static struct MHD_Daemon *start_daemon(const sim_options *options, sim_exposition *exposition)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;

	if (options->ipv6)
		flags |= MHD_USE_IPv6;
	/* The port argument is ignored when MHD_OPTION_SOCK_ADDR is given. */
	return MHD_start_daemon(flags, 0, NULL, NULL, http_handle, exposition, MHD_OPTION_SOCK_ADDR,
	                        (const struct sockaddr *)&options->address, MHD_OPTION_END);
}

static unsigned daemon_port(struct MHD_Daemon *daemon)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	return info != NULL ? info->port : 0;
}

/* Blocks until SIGINT or SIGTERM (blocked beforehand in every thread). */
static int wait_for_stop_signal(const sigset_t *signals)
{
	for (;;) {
		int signal_number;
		int rc = sigwait(signals, &signal_number);
		if (rc != 0)
			return -rc;
		if (signal_number == SIGINT || signal_number == SIGTERM)
			return signal_number;
	}
}

int main(int argc, char **argv)
{
	sim_options options;
	sim_exposition exposition;
	struct MHD_Daemon *daemon = NULL;
	sigset_t stop_signals;
	char err[256];
	int exit_code = 1;

	if (!parse_options(argc, argv, &options, err, sizeof(err))) {
		fprintf(stderr, PROGRAM ": %s\nTry '" PROGRAM " --help'.\n", err);
		return 2;
	}
	if (options.help) {
		usage(stdout);
		return 0;
	}
	if (options.describe) {
		if (!describe(options.mesh, stdout)) {
			fprintf(stderr, PROGRAM ": cannot write the description to stdout\n");
			return 1;
		}
		return 0;
	}

	/* Block the stop signals before any thread exists so that all of
	 * libmicrohttpd's threads inherit the mask and sigwait() sees them. */
	if (sigemptyset(&stop_signals) != 0 || sigaddset(&stop_signals, SIGINT) != 0 ||
	    sigaddset(&stop_signals, SIGTERM) != 0 ||
	    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0) {
		fprintf(stderr, PROGRAM ": cannot block signals\n");
		return 1;
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, PROGRAM ": cannot ignore SIGPIPE\n");
		return 1;
	}
	if (!exposition_init(&exposition, options.mesh, err, sizeof(err))) {
		fprintf(stderr, PROGRAM ": %s\n", err);
		return 1;
	}
	daemon = start_daemon(&options, &exposition);
	if (daemon == NULL) {
		fprintf(stderr, PROGRAM ": cannot listen on %s: %s\n", options.listen,
		        errno != 0 ? strerror(errno) : "libmicrohttpd refused to start");
		goto out;
	}
	fprintf(stderr, PROGRAM ": serving %s metrics on port %u (%s)\n", options.mesh->name,
	        daemon_port(daemon), options.listen);

	int signal_number = wait_for_stop_signal(&stop_signals);
	if (signal_number < 0) {
		fprintf(stderr, PROGRAM ": sigwait: %s\n", strerror(-signal_number));
		goto out;
	}
	fprintf(stderr, PROGRAM ": %s, stopping\n", strsignal(signal_number));
	exit_code = 0;
out:
	if (daemon != NULL)
		MHD_stop_daemon(daemon);
	exposition_free(&exposition);
	return exit_code;
}

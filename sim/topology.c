/* topology: the emojivoto world the simulator serves, as static data, and the
 * deterministic traffic model (which pod, outcome and latency class request k
 * of an edge had).  Nothing here knows how any mesh exposes it. */
#include "topology.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* frac((k+1) * this) is the golden-ratio (Weyl) sequence: any run of
 * consecutive requests covers [0,1) almost evenly, so counts per latency
 * class match the edge's weights closely over every window. */
#define GOLDEN_RATIO_CONJUGATE 0.6180339887498949
/* The cell pattern of an edge repeats every lcm(pods, pods, failure_every)
 * requests; bigger periods mean a mistake in the static data. */
#define MAX_PATTERN_PERIOD 100000u

static const double class_bounds_ms[TOPO_LATENCY_CLASSES] = {
    1,   2,   3,    4,    5,    10,   20,   30,    40,    50,    100,   200,   300,
    400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000, INFINITY,
};

static const char *const class_bound_texts[TOPO_LATENCY_CLASSES] = {
    "1",    "2",    "3",     "4",     "5",     "10",    "20",    "30",   "40",
    "50",   "100",  "200",   "300",   "400",   "500",   "1000",  "2000", "3000",
    "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf",
};

enum workload_index {
	W_VOTE_BOT,
	W_WEB,
	W_EMOJI,
	W_VOTING,
	W_TALLY,
	W_VOTE_DB,
	W_INGRESS,
	W_COUNT,
};

static const topo_pod vote_bot_pods[] = {{"vote-bot-5b7f5657f6-xq7pm", "10.42.0.11"}};
static const topo_pod web_pods[] = {
    {"web-7f8455487f-rw9h5", "10.42.0.17"},
    {"web-7f8455487f-x2k9p", "10.42.0.18"},
};
static const topo_pod emoji_pods[] = {{"emoji-6c8b7d9f5d-4tbzq", "10.42.0.15"}};
static const topo_pod voting_pods[] = {{"voting-84c6bd6b8d-mz5ld", "10.42.0.16"}};
static const topo_pod tally_pods[] = {{"tally-8jx2c", "10.42.0.21"}};
static const topo_pod vote_db_pods[] = {
    {"vote-db-0", "10.42.1.5"},
    {"vote-db-1", "10.42.1.6"},
};
static const topo_pod ingress_pods[] = {
    {"ingress-nginx-controller-5d88495688-q7xkz", "10.42.2.3"},
};

#define PODS(array) sizeof(array) / sizeof((array)[0]), (array)

/* Field order: namespace, kind, name, service account, app label,
 * pod-template-hash, service, service port, container port, meshed, pods. */
static const topo_workload workloads[W_COUNT] = {
    [W_VOTE_BOT] = {"emojivoto", TOPO_KIND_DEPLOYMENT, "vote-bot", "default", "vote-bot",
                    "5b7f5657f6", NULL, 0, 8080, true, PODS(vote_bot_pods)},
    [W_WEB] = {"emojivoto", TOPO_KIND_DEPLOYMENT, "web", "web", "web-svc", "7f8455487f", "web-svc",
               80, 8080, true, PODS(web_pods)},
    [W_EMOJI] = {"emojivoto", TOPO_KIND_DEPLOYMENT, "emoji", "emoji", "emoji-svc", "6c8b7d9f5d",
                 "emoji-svc", 80, 8080, true, PODS(emoji_pods)},
    [W_VOTING] = {"emojivoto", TOPO_KIND_DEPLOYMENT, "voting", "voting", "voting-svc", "84c6bd6b8d",
                  "voting-svc", 80, 8080, true, PODS(voting_pods)},
    [W_TALLY] = {"emojivoto", TOPO_KIND_JOB, "tally", "default", "tally", NULL, NULL, 0, 8080, true,
                 PODS(tally_pods)},
    [W_VOTE_DB] = {"datastore", TOPO_KIND_STATEFULSET, "vote-db", "vote-db", "vote-db", NULL,
                   "vote-db", 80, 8080, true, PODS(vote_db_pods)},
    /* Unmeshed: it has no proxy, so it only shows up at its callees'
     * inbound side, without identity. */
    [W_INGRESS] = {"ingress-nginx", TOPO_KIND_DEPLOYMENT, "ingress-nginx-controller",
                   "ingress-nginx", "ingress-nginx", "5d88495688", NULL, 0, 80, false,
                   PODS(ingress_pods)},
};

/* Weights per latency class, bounds 1 2 3 4 5 10 20 30 40 50 100 200 ... ms.
 * Chosen so that p50/p90/p99 fall inside buckets, never on a bound. */
static const topo_edge edges[] = {
    /* web inbound p50 ~2.9 ms, p90 ~12 ms, p99 ~29 ms */
    {&workloads[W_VOTE_BOT],
     &workloads[W_WEB],
     4.0,
     20,
     {60, 250, 220, 120, 80, 150, 95, 17, 4, 2, 2}},
    /* emoji: fast, p50 ~1.6 ms, p99 ~14 ms */
    {&workloads[W_WEB], &workloads[W_EMOJI], 8.0, 0, {300, 350, 180, 80, 40, 35, 12, 3}},
    /* voting: p50 ~2.1 ms, p99 ~22 ms */
    {&workloads[W_WEB], &workloads[W_VOTING], 4.0, 40, {180, 290, 210, 120, 70, 90, 28, 8, 4}},
    /* vote-db: slower, p50 ~4.6 ms, p99 ~61 ms, a thin tail to 500 ms */
    {&workloads[W_VOTING],
     &workloads[W_VOTE_DB],
     4.0,
     0,
     {20, 80, 150, 170, 140, 250, 120, 35, 15, 8, 9, 2, 0, 0, 1}},
    {&workloads[W_TALLY],
     &workloads[W_VOTING],
     1.0,
     0,
     {100, 260, 240, 150, 90, 110, 35, 10, 3, 1, 1}},
    {&workloads[W_INGRESS], &workloads[W_WEB], 0.5, 0, {40, 200, 230, 150, 100, 160, 90, 22, 5, 3}},
};

#define EDGE_COUNT (sizeof(edges) / sizeof(edges[0]))

/* Per-edge traffic state.  Invariant: cells hold exactly requests
 * 0 .. next_request-1. */
typedef struct edge_state {
	const topo_edge *edge;
	uint64_t next_request;
	size_t cell_count;
	topo_cell *cells; /* owned */
	/* owned; slot (caller_pod * callee_pods + callee_pod) * 2 + failed ->
	 * cell index, SIZE_MAX for combinations the pattern never produces */
	size_t *cell_of;
} edge_state;

struct topo_traffic {
	struct timespec start;
	edge_state edges[EDGE_COUNT];
};

const topo_workload *topo_workloads(size_t *count)
{
	*count = W_COUNT;
	return workloads;
}

const topo_edge *topo_edges(size_t *count)
{
	*count = EDGE_COUNT;
	return edges;
}

const char *topo_kind_name(topo_kind kind)
{
	switch (kind) {
	case TOPO_KIND_DEPLOYMENT: return "Deployment";
	case TOPO_KIND_STATEFULSET: return "StatefulSet";
	case TOPO_KIND_JOB: return "Job";
	}
	return "Unknown";
}

double topo_class_bound_ms(size_t latency_class)
{
	return class_bounds_ms[latency_class];
}

const char *topo_class_bound_text(size_t latency_class)
{
	return class_bound_texts[latency_class];
}

double topo_class_value_ms(size_t latency_class)
{
	if (latency_class == TOPO_LATENCY_CLASSES - 1)
		return 1.5 * class_bounds_ms[TOPO_LATENCY_CLASSES - 2];
	double lower = latency_class == 0 ? 0.0 : class_bounds_ms[latency_class - 1];
	return (lower + class_bounds_ms[latency_class]) / 2.0;
}

static bool request_failed(const topo_edge *edge, uint64_t request)
{
	return edge->failure_every != 0 && request % edge->failure_every == edge->failure_every - 1;
}

/* Inverse CDF of the edge's weights at u_k = frac((k+1) * 0.618...). */
static size_t request_latency_class(const topo_edge *edge, uint64_t request)
{
	double scaled = (double)(request + 1) * GOLDEN_RATIO_CONJUGATE;
	double target = (scaled - floor(scaled)) * TOPO_WEIGHT_TOTAL;
	unsigned cumulative = 0;

	for (size_t i = 0; i < TOPO_LATENCY_CLASSES; i++) {
		cumulative += edge->weights[i];
		if (target < (double)cumulative)
			return i;
	}
	return TOPO_LATENCY_CLASSES - 1; /* unreachable: weights sum to the total */
}

static size_t cell_slot(const topo_edge *edge, uint64_t request)
{
	size_t caller_pod = (size_t)(request % edge->caller->pod_count);
	size_t callee_pod = (size_t)(request % edge->callee->pod_count);
	return (caller_pod * edge->callee->pod_count + callee_pod) * 2 +
	       (request_failed(edge, request) ? 1 : 0);
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b != 0) {
		uint64_t rest = a % b;
		a = b;
		b = rest;
	}
	return a;
}

static uint64_t lcm_u64(uint64_t a, uint64_t b)
{
	return a / gcd_u64(a, b) * b;
}

static uint64_t pattern_period(const topo_edge *edge)
{
	uint64_t period = lcm_u64(edge->caller->pod_count, edge->callee->pod_count);
	if (edge->failure_every != 0)
		period = lcm_u64(period, edge->failure_every);
	return period;
}

static topo_status edge_check(const topo_edge *edge)
{
	unsigned total = 0;

	for (size_t i = 0; i < TOPO_LATENCY_CLASSES; i++)
		total += edge->weights[i];
	if (total != TOPO_WEIGHT_TOTAL || !(edge->rps > 0.0) || !isfinite(edge->rps) ||
	    edge->caller->pod_count == 0 || edge->callee->pod_count == 0 || !edge->callee->meshed ||
	    edge->callee->service == NULL || edge->failure_every == 1 ||
	    pattern_period(edge) > MAX_PATTERN_PERIOD)
		return TOPO_ERR_INVALID;
	return TOPO_OK;
}

/* Creates one cell per (caller pod, callee pod, outcome) that one period of
 * the request pattern produces, in order of first appearance, so that every
 * series exists (at 0) before its first request. */
static topo_status edge_state_init(edge_state *state, const topo_edge *edge)
{
	size_t slots = edge->caller->pod_count * edge->callee->pod_count * 2;
	uint64_t period = pattern_period(edge);
	topo_status status = edge_check(edge);

	if (status != TOPO_OK)
		return status;
	state->edge = edge;
	state->cell_of = malloc(slots * sizeof(*state->cell_of));
	state->cells = calloc(slots, sizeof(*state->cells));
	if (state->cell_of == NULL || state->cells == NULL)
		return TOPO_ERR_NOMEM; /* topo_traffic_free releases both */
	for (size_t slot = 0; slot < slots; slot++)
		state->cell_of[slot] = SIZE_MAX;
	for (uint64_t request = 0; request < period; request++) {
		size_t slot = cell_slot(edge, request);
		if (state->cell_of[slot] != SIZE_MAX)
			continue;
		topo_cell *cell = &state->cells[state->cell_count];
		cell->caller_pod = (size_t)(request % edge->caller->pod_count);
		cell->callee_pod = (size_t)(request % edge->callee->pod_count);
		cell->failed = request_failed(edge, request);
		state->cell_of[slot] = state->cell_count++;
	}
	return TOPO_OK;
}

topo_status topo_traffic_new(const struct timespec *start, topo_traffic **out)
{
	topo_status status = TOPO_OK;
	topo_traffic *traffic = calloc(1, sizeof(*traffic));

	*out = NULL;
	if (traffic == NULL)
		return TOPO_ERR_NOMEM;
	traffic->start = *start;
	for (size_t i = 0; i < EDGE_COUNT; i++) {
		status = edge_state_init(&traffic->edges[i], &edges[i]);
		if (status != TOPO_OK)
			goto out;
	}
	*out = traffic;
	traffic = NULL;
out:
	topo_traffic_free(traffic);
	return status;
}

void topo_traffic_free(topo_traffic *traffic)
{
	if (traffic == NULL)
		return;
	for (size_t i = 0; i < EDGE_COUNT; i++) {
		free(traffic->edges[i].cells);
		free(traffic->edges[i].cell_of);
	}
	free(traffic);
}

/* Seconds from start to now; negative if the clock stepped back. */
static double elapsed_seconds(const struct timespec *start, const struct timespec *now)
{
	return (double)(now->tv_sec - start->tv_sec) +
	       (double)(now->tv_nsec - start->tv_nsec) / 1e9;
}

static void edge_state_advance(edge_state *state, double elapsed)
{
	const topo_edge *edge = state->edge;
	double completed = floor(edge->rps * elapsed);

	if (!(completed > (double)state->next_request))
		return;
	/* Each scrape pays only for the requests since the previous one. */
	for (uint64_t request = state->next_request; request < (uint64_t)completed; request++) {
		topo_cell *cell = &state->cells[state->cell_of[cell_slot(edge, request)]];
		cell->count++;
		cell->class_counts[request_latency_class(edge, request)]++;
	}
	state->next_request = (uint64_t)completed;
}

void topo_traffic_advance(topo_traffic *traffic, const struct timespec *now)
{
	double elapsed = elapsed_seconds(&traffic->start, now);

	for (size_t i = 0; i < EDGE_COUNT; i++)
		edge_state_advance(&traffic->edges[i], elapsed);
}

size_t topo_traffic_cell_count(const topo_traffic *traffic, size_t edge_index)
{
	return traffic->edges[edge_index].cell_count;
}

const topo_cell *topo_traffic_cell(const topo_traffic *traffic, size_t edge_index,
                                   size_t cell_index)
{
	return &traffic->edges[edge_index].cells[cell_index];
}

/* --- describe: JSON of the inputs --- */

/* Our names are plain ASCII; escaping still keeps the output valid JSON if
 * the data ever changes. */
static void json_string(FILE *out, const char *text)
{
	if (text == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void json_workload_ref(FILE *out, const topo_workload *workload)
{
	fputs("{\"namespace\": ", out);
	json_string(out, workload->namespace);
	fputs(", \"kind\": ", out);
	json_string(out, topo_kind_name(workload->kind));
	fputs(", \"name\": ", out);
	json_string(out, workload->name);
	fputc('}', out);
}

static void json_workload(FILE *out, const topo_workload *workload)
{
	fputs("    {\"namespace\": ", out);
	json_string(out, workload->namespace);
	fputs(", \"kind\": ", out);
	json_string(out, topo_kind_name(workload->kind));
	fputs(", \"name\": ", out);
	json_string(out, workload->name);
	fputs(",\n     \"service_account\": ", out);
	json_string(out, workload->service_account);
	fputs(", \"app\": ", out);
	json_string(out, workload->app);
	fputs(", \"pod_template_hash\": ", out);
	json_string(out, workload->pod_template_hash);
	fputs(",\n     \"service\": ", out);
	json_string(out, workload->service);
	if (workload->service != NULL)
		fprintf(out, ", \"service_port\": %u", workload->service_port);
	else
		fputs(", \"service_port\": null", out);
	fprintf(out, ", \"container_port\": %u, \"meshed\": %s,\n", workload->container_port,
	        workload->meshed ? "true" : "false");
	fputs("     \"pods\": [", out);
	for (size_t i = 0; i < workload->pod_count; i++) {
		fputs(i == 0 ? "{\"name\": " : ", {\"name\": ", out);
		json_string(out, workload->pods[i].name);
		fputs(", \"ip\": ", out);
		json_string(out, workload->pods[i].ip);
		fputc('}', out);
	}
	fputs("]}", out);
}

static void json_edge(FILE *out, const topo_edge *edge)
{
	fputs("    {\"caller\": ", out);
	json_workload_ref(out, edge->caller);
	fputs(",\n     \"callee\": ", out);
	json_workload_ref(out, edge->callee);
	/* %.17g round-trips the double exactly. */
	fprintf(out, ",\n     \"rps\": %.17g, \"failure_every\": %u, \"meshed_caller\": %s,\n",
	        edge->rps, edge->failure_every, edge->caller->meshed ? "true" : "false");
	fputs("     \"weights\": {", out);
	for (size_t i = 0; i < TOPO_LATENCY_CLASSES; i++)
		fprintf(out, "%s\"%s\": %u", i == 0 ? "" : ", ", class_bound_texts[i],
		        edge->weights[i]);
	fputs("}}", out);
}

topo_status topo_describe_json(FILE *out)
{
	fputs("{\n  \"latency_bounds_ms\": [", out);
	for (size_t i = 0; i < TOPO_LATENCY_CLASSES; i++)
		fprintf(out, "%s\"%s\"", i == 0 ? "" : ", ", class_bound_texts[i]);
	fputs("],\n", out);
	fprintf(
	    out,
	    "  \"rules\": {\n"
	    "    \"completed_requests\": \"n(t) = floor(rps * (t - start)), start = simulator "
	    "start\",\n"
	    "    \"caller_pod\": \"k mod caller pod count\",\n"
	    "    \"callee_pod\": \"k mod callee pod count\",\n"
	    "    \"failure\": \"failure_every > 0 and k mod failure_every == failure_every - 1\",\n"
	    "    \"latency_class\": \"first class i with frac((k + 1) * golden_ratio_step) * "
	    "weights_total < weights[0] + ... + weights[i]\",\n"
	    "    \"latency_value_ms\": \"class midpoint (lower bound 0 for the first), 1.5 x "
	    "the last finite bound for +Inf\",\n"
	    "    \"golden_ratio_step\": %.17g,\n"
	    "    \"weights_total\": %u,\n"
	    "    \"success_status\": %d,\n"
	    "    \"failure_status\": %d\n"
	    "  },\n",
	    GOLDEN_RATIO_CONJUGATE, TOPO_WEIGHT_TOTAL, TOPO_STATUS_SUCCESS, TOPO_STATUS_FAILURE);
	fputs("  \"workloads\": [\n", out);
	for (size_t i = 0; i < W_COUNT; i++) {
		json_workload(out, &workloads[i]);
		fputs(i + 1 < W_COUNT ? ",\n" : "\n", out);
	}
	fputs("  ],\n  \"edges\": [\n", out);
	for (size_t i = 0; i < EDGE_COUNT; i++) {
		json_edge(out, &edges[i]);
		fputs(i + 1 < EDGE_COUNT ? ",\n" : "\n", out);
	}
	fputs("  ]\n}\n", out);
	if (fflush(out) != 0 || ferror(out))
		return TOPO_ERR_IO;
	return TOPO_OK;
}

/* topology: the simulated world, independent of any mesh: the emojivoto
 * workloads and pods, who calls whom at what rate, and the deterministic
 * traffic model that says what every request did.  Mesh emitters only read it. */
#ifndef SMI_SIM_TOPOLOGY_H
#define SMI_SIM_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Latency classes are the Linkerd proxy's histogram buckets: class i holds
 * latencies in (bound[i-1], bound[i]] milliseconds, the last class is +Inf.
 * Other meshes re-bin each class by its representative value. */
#define TOPO_LATENCY_CLASSES 26
/* Edge weights over the latency classes sum to this. */
#define TOPO_WEIGHT_TOTAL 1000u
/* HTTP status of a request that succeeded / failed (plain HTTP, no gRPC). */
#define TOPO_STATUS_SUCCESS 200
#define TOPO_STATUS_FAILURE 500

typedef enum topo_status {
	TOPO_OK = 0,
	TOPO_ERR_NOMEM,
	TOPO_ERR_INVALID, /* the static topology breaks an invariant */
	TOPO_ERR_IO,
} topo_status;

/* Owner kinds the simulated pods can have; each mesh names them its own way. */
typedef enum topo_kind {
	TOPO_KIND_DEPLOYMENT,
	TOPO_KIND_STATEFULSET,
	TOPO_KIND_JOB,
} topo_kind;

typedef struct topo_pod {
	const char *name;
	const char *ip; /* IPv4 text */
} topo_pod;

typedef struct topo_workload {
	const char *namespace;
	topo_kind kind;
	const char *name;
	const char *service_account;
	const char *app;               /* pod label `app`, NULL if none */
	const char *pod_template_hash; /* Deployments only, NULL otherwise */
	const char *service;           /* Service in front of it, NULL if none */
	unsigned service_port;         /* port clients dial on the Service */
	unsigned container_port;       /* port the app listens on in each pod */
	bool meshed;                   /* has a proxy that reports metrics */
	size_t pod_count;
	const topo_pod *pods;
} topo_workload;

typedef struct topo_edge {
	const topo_workload *caller;
	const topo_workload *callee;            /* always meshed */
	double rps;                             /* requests per second, > 0 */
	unsigned failure_every;                 /* request k fails iff k mod N == N-1; 0 = never */
	unsigned weights[TOPO_LATENCY_CLASSES]; /* sum TOPO_WEIGHT_TOTAL */
} topo_edge;

/* Everything the traffic model produced for one (caller pod, callee pod,
 * outcome) combination of an edge.  The set of cells is fixed at start:
 * only combinations the request pattern ever produces exist. */
typedef struct topo_cell {
	size_t caller_pod; /* index into edge->caller->pods */
	size_t callee_pod; /* index into edge->callee->pods */
	bool failed;
	uint64_t count;                              /* requests completed */
	uint64_t class_counts[TOPO_LATENCY_CLASSES]; /* requests per latency class */
} topo_cell;

/* The static topology (immutable, lives for the whole program). */
const topo_workload *topo_workloads(size_t *count);
const topo_edge *topo_edges(size_t *count);

const char *topo_kind_name(topo_kind kind); /* "Deployment", ... */
/* Upper bound of a latency class in ms (INFINITY for the last) and its
 * text as Linkerd prints it ("1" ... "50000", "+Inf"). */
double topo_class_bound_ms(size_t latency_class);
const char *topo_class_bound_text(size_t latency_class);
/* The latency recorded for a request of this class: the class midpoint,
 * 1.5 x the last finite bound for +Inf.  Milliseconds. */
double topo_class_value_ms(size_t latency_class);

/* Writes the topology and the traffic rules as JSON: inputs only, so that
 * tests derive their expectations independently. */
topo_status topo_describe_json(FILE *out);

/* The traffic state: per edge, its cells advanced to a point in time.
 * Not thread-safe; the caller serialises access. */
typedef struct topo_traffic topo_traffic;

/* `start` is the instant every edge's request count is 0. */
topo_status topo_traffic_new(const struct timespec *start, topo_traffic **out /* owned */);
void topo_traffic_free(topo_traffic *traffic);
/* Accounts every request completed by `now`: n = floor(rps * (now - start))
 * per edge.  Counts never decrease, even if the clock steps back. */
void topo_traffic_advance(topo_traffic *traffic, const struct timespec *now);
size_t topo_traffic_cell_count(const topo_traffic *traffic, size_t edge_index);
/* Borrowed; stable for the traffic state's lifetime. */
const topo_cell *topo_traffic_cell(const topo_traffic *traffic, size_t edge_index,
                                   size_t cell_index);

#endif

/*
 * smi-metrics adapter ABI, version 1.
 *
 * An adapter is a shared object that teaches the smi-metrics server one
 * service mesh's Prometheus dialect: which metric families and labels hold
 * the numbers of the SMI Traffic Metrics API.  It is pure: it does no I/O,
 * starts no threads, keeps no global state and never calls into the server
 * binary except through the host table handed to open().
 *
 * Build an out-of-tree adapter with nothing but this header:
 *
 *     cc -shared -fPIC -fvisibility=hidden \
 *        $(pkg-config --cflags smi-metrics-adapter) mymesh.c -o mymesh.so
 *
 * and export exactly one symbol, SMI_ADAPTER_ENTRY_SYMBOL, with
 * SMI_ADAPTER_EXPORT.  The server checks abi_major (must be equal),
 * abi_minor (must be <= the server's) and struct_size (must cover every
 * field of the adapter's declared minor) before it touches anything else.
 *
 * Compatibility rules, never broken within one major version:
 *   - structs only grow at the end; each carries its size;
 *   - enum values are never renumbered or reused;
 *   - a field added in minor N is read only when the peer declares >= N.
 *
 * Ownership: every pointer crossing the boundary is borrowed for the
 * duration of the call unless its comment says otherwise.  Strings are
 * NUL-terminated UTF-8.
 */
#ifndef SMI_METRICS_ADAPTER_H
#define SMI_METRICS_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMI_ADAPTER_ABI_MAJOR 1
#define SMI_ADAPTER_ABI_MINOR 0

/* The one symbol an adapter exports: a function returning its descriptor. */
#define SMI_ADAPTER_ENTRY_SYMBOL "smi_adapter_descriptor_v1"

#if defined(__GNUC__)
#define SMI_ADAPTER_EXPORT __attribute__((visibility("default")))
#else
#define SMI_ADAPTER_EXPORT
#endif

/* Status codes.  0 is success; values are never renumbered.  The message,
 * if any, travels separately through the caller's error buffer. */
typedef enum smi_status {
	SMI_OK = 0,
	SMI_ERR_UNSUPPORTED = 1, /* this adapter cannot answer the question */
	SMI_ERR_INVALID = 2,     /* bad argument or malformed series */
	SMI_ERR_NOMEM = 3,
	SMI_ERR_OPTION = 4, /* an adapter option has a bad value */
	SMI_ERR_INTERNAL = 5
} smi_status;

/* Resource kinds of the SMI API.  The core owns the URL plural, the
 * emitted kind string and the namespaced flag of each (see README). */
typedef enum smi_kind {
	SMI_KIND_NAMESPACE = 0,
	SMI_KIND_POD = 1,
	SMI_KIND_DEPLOYMENT = 2,
	SMI_KIND_STATEFULSET = 3,
	SMI_KIND_DAEMONSET = 4,
	SMI_KIND_JOB = 5,
	SMI_KIND_REPLICASET = 6,
	SMI_KIND_REPLICATIONCONTROLLER = 7,
	SMI_KIND_COUNT_V1 = 8 /* number of kinds defined by ABI 1.0 */
} smi_kind;

/* What a request asks for. */
typedef enum smi_scope {
	SMI_SCOPE_OBJECT = 0,         /* one resource */
	SMI_SCOPE_NAMESPACE_LIST = 1, /* every resource of a kind in a namespace */
	SMI_SCOPE_CLUSTER_LIST = 2,   /* every resource of a kind, all namespaces */
	SMI_SCOPE_EDGES = 3           /* callers and callees of one resource */
} smi_scope;

/* The validated question.  namespace is NULL for cluster-scoped requests
 * and for the Namespace kind; name is NULL for lists.  Values are already
 * checked by the core (DNS-1123, bounded window) before an adapter sees
 * them. */
typedef struct smi_request {
	uint32_t struct_size;
	smi_kind kind;
	smi_scope scope;
	const char *namespace_name; /* borrowed; NULL when not namespaced */
	const char *name;           /* borrowed; NULL for lists */
	uint32_t window_seconds;
} smi_request;

/* What the core does with the samples of a query. */
typedef enum smi_query_role {
	SMI_ROLE_COUNTS = 0, /* counter increases; identify() gives the outcome */
	SMI_ROLE_LATENCY = 1 /* histogram bucket increases grouped by le */
} smi_query_role;

/* How a mesh names one side (reporting workload or peer) of a series.
 * Both are Prometheus label names; the core validates them as such. */
typedef struct smi_side_labels {
	const char *namespace_label; /* e.g. "namespace", "dst_namespace" */
	const char *name_label;      /* e.g. "deployment", "dst_deployment" */
} smi_side_labels;

/*
 * One query of a plan.  template_id names one of the adapter's templates
 * (possibly overridden in the config file).  The core fills these typed
 * placeholders, and no others, with validated values:
 *
 *   {{window}}       range duration, e.g. 30s
 *   {{namespace}}    PromQL string literal of the request namespace
 *   {{name}}         PromQL string literal of the request name
 *   {{target}}       matchers selecting the requested resource(s) on `self`:
 *                    object  ns_label="ns",name_label="name"
 *                    ns list ns_label="ns",name_label!=""
 *                    cluster name_label!=""
 *                    (Namespace kind: the namespace label alone)
 *   {{peer_target}}  the same built from `peer`
 *   {{group_by}}     self labels to group by, deduplicated: ns_label,name_label
 *   {{peer_group_by}} the same for `peer`
 *   {{name_label}}   self.name_label;  {{peer_name_label}} peer.name_label
 *
 * Names always match with `=`; values come only from the validated
 * request, quoted by the core.
 */
typedef struct smi_query_spec {
	uint32_t struct_size;
	const char *template_id; /* borrowed from adapter static data */
	smi_query_role role;
	smi_side_labels self;
	smi_side_labels peer; /* may be empty when the template uses none */
	double latency_to_ms; /* multiply bucket bounds by this (1 for ms) */
} smi_query_spec;

#define SMI_PLAN_MAX_QUERIES 8

/* Filled by plan(); the core zeroes it and sets struct_size first. */
typedef struct smi_plan {
	uint32_t struct_size;
	uint32_t n_queries;
	smi_query_spec queries[SMI_PLAN_MAX_QUERIES];
} smi_plan;

/* A series label set as returned by Prometheus, sorted by name. */
typedef struct smi_label {
	const char *name;
	const char *value;
} smi_label;

typedef struct smi_series {
	uint32_t struct_size;
	size_t n_labels;
	const smi_label *labels; /* borrowed */
} smi_series;

typedef enum smi_outcome {
	SMI_OUTCOME_IGNORE = 0, /* sample feeds no count */
	SMI_OUTCOME_SUCCESS = 1,
	SMI_OUTCOME_FAILURE = 2
} smi_outcome;

/* Where one series belongs, filled by identify(). */
#define SMI_FEEDS_RESOURCE  0x1u /* the resource named by `self` */
#define SMI_FEEDS_EDGE_TO   0x2u /* an edge to callee `peer` */
#define SMI_FEEDS_EDGE_FROM 0x4u /* an edge from caller `peer` */

typedef struct smi_identity {
	uint32_t struct_size;
	uint32_t feeds; /* SMI_FEEDS_* bits; 0 = drop the series */
	/* Resource and peer, borrowed from the series' label values.  For
	 * resource answers `self` is the resource; for edges `peer` is the
	 * other end.  namespace is NULL for the Namespace kind. */
	const char *self_namespace, *self_name;
	const char *peer_namespace, *peer_name;
	smi_outcome outcome; /* SMI_ROLE_COUNTS only */
} smi_identity;

typedef enum smi_log_level {
	SMI_LOG_ERROR = 0,
	SMI_LOG_WARN = 1,
	SMI_LOG_INFO = 2,
	SMI_LOG_DEBUG = 3
} smi_log_level;

/* Option value types for the host's option lookup. */
typedef enum smi_option_type {
	SMI_OPTION_STRING = 0,
	SMI_OPTION_BOOL = 1,
	SMI_OPTION_INT = 2
} smi_option_type;

/*
 * Services the server offers an adapter.  Valid from open() until close()
 * returns; the adapter keeps the pointer in its state.
 */
typedef struct smi_host {
	uint32_t struct_size;
	uint16_t abi_major, abi_minor;
	void *ctx; /* pass back as the first argument of every call */

	void (*log)(void *ctx, smi_log_level level, const char *message);

	/*
	 * Looks up adapter.options.<key> in the config file.  Returns
	 * SMI_OK and fills *out (string: borrowed until close()), or
	 * SMI_ERR_UNSUPPORTED when the key is absent (*out untouched), or
	 * SMI_ERR_OPTION when present with another type; the host then
	 * reports file, line and key itself.  The host marks the key as
	 * known; keys never looked up are reported as unknown after open().
	 */
	smi_status (*option)(void *ctx, const char *key, smi_option_type type,
	                     void *out /* const char ** | bool * | int64_t * */);

	/* Label value of `name` in `series`, or NULL when absent. */
	const char *(*label)(void *ctx, const smi_series *series, const char *name);
} smi_host;

/* A compiled-in query template.  id is stable: it is the key operators use
 * under adapter.queries in the config file to override `text`. */
typedef struct smi_template {
	const char *id;
	const char *text;
	const char *description; /* one line, for --help and docs */
} smi_template;

typedef struct smi_adapter_descriptor {
	/* Fields of ABI 1.0.  Checked first, never moved. */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size; /* sizeof(smi_adapter_descriptor) of the build */
	const char *name;     /* "linkerd": matches adapter.name */
	const char *version;  /* adapter's own version string */
	const char *description;

	const smi_template *templates; /* static, n_templates entries */
	size_t n_templates;

	/* Creates the adapter state.  May read options through host.  On
	 * failure writes a one-line message into err (NUL-terminated). */
	smi_status (*open)(const smi_host *host, void **state_out, char *err, size_t err_size);
	void (*close)(void *state);

	/* Bit (1 << kind) set for every kind this adapter can answer. */
	uint64_t (*kinds)(void *state);

	/* Plans the queries for one request.  SMI_ERR_UNSUPPORTED when the
	 * kind or scope cannot be answered from this mesh's metrics. */
	smi_status (*plan)(void *state, const smi_request *request, smi_plan *plan);

	/* Classifies one result series of plan query `query_index`. */
	smi_status (*identify)(void *state, const smi_request *request, uint32_t query_index,
	                       const smi_series *series, smi_identity *identity);
} smi_adapter_descriptor;

/* Layout guards: these offsets are the ABI. */
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(offsetof(smi_adapter_descriptor, abi_major) == 0, "abi_major must stay first");
_Static_assert(offsetof(smi_adapter_descriptor, abi_minor) == 2, "abi_minor must stay second");
_Static_assert(offsetof(smi_adapter_descriptor, struct_size) == 4, "struct_size must stay third");
_Static_assert(sizeof(smi_status) == sizeof(int), "enums are int-sized");
#endif

/* The entry point's type.  Side-effect free; may be called many times. */
typedef const smi_adapter_descriptor *(*smi_adapter_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SMI_METRICS_ADAPTER_H */

/* router: turns a request line (method, decoded path, query parameters)
 * into a validated route.  Nothing that leaves the router has unchecked
 * bytes: names are DNS-1123, kinds come from the fixed table, the window
 * is bounded.  Failures carry the HTTP code, Status reason and message. */
#ifndef SMI_ROUTER_H
#define SMI_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinds.h"
#include "smi-metrics/adapter.h"

#define API_GROUP   "metrics.smi-spec.io"
#define API_VERSION "v1alpha1"
#define API_PREFIX  "/apis/" API_GROUP "/" API_VERSION

typedef enum route_type {
	ROUTE_ERROR = 0,      /* see code, reason, message */
	ROUTE_API_GROUP_LIST, /* /apis */
	ROUTE_API_GROUP,      /* /apis/metrics.smi-spec.io */
	ROUTE_API_RESOURCES,  /* API_PREFIX: the APIResourceList */
	ROUTE_METRICS,        /* an SMI question: see request */
	ROUTE_HEALTH,         /* /livez /readyz /healthz (always allowed) */
	ROUTE_VERSION         /* /version */
} route_type;

typedef struct route_param {
	const char *key;
	const char *value; /* may be NULL for a bare key */
} route_param;

typedef struct route_limits {
	uint32_t window_default_seconds;
	uint32_t window_min_seconds;
	uint32_t window_max_seconds;
	uint64_t supported_kinds; /* bit (1 << smi_kind) per kind the adapter answers */
} route_limits;

#define ROUTE_NAME_MAX 254

typedef struct route {
	route_type type;
	bool head; /* HEAD: answer like GET without a body */

	/* ROUTE_METRICS */
	const kind_info *kind;
	smi_request request; /* points into the buffers below */
	char namespace_name[ROUTE_NAME_MAX];
	char name[ROUTE_NAME_MAX];
	int64_t window_ns;   /* as requested, echoed in `window` */
	uint32_t timeout_ms; /* from ?timeout=, 0 when absent */

	/* ROUTE_HEALTH: "livez", "readyz" or "healthz"; verbose output wanted */
	const char *health_check;
	bool verbose;

	/* ROUTE_ERROR */
	int code;
	const char *reason; /* metav1.Status reason, e.g. "BadRequest" */
	char message[512];
	/* NotFound/MethodNotAllowed details: resource plural and name */
	const char *details_kind;
	const char *details_name;
} route;

/*
 * Routes one request.  `path` is the percent-decoded path without the query
 * string; params are the decoded query parameters in arrival order.
 * Always fills *out; out->type == ROUTE_ERROR on failure.
 */
void router_route(const char *method, const char *path, const route_param *params, size_t n_params,
                  const route_limits *limits, route *out);

/* DNS-1123 label (namespaces): [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63. */
bool router_valid_dns_label(const char *s);
/* DNS-1123 subdomain (object names): dot-separated labels, <= 253. */
bool router_valid_dns_subdomain(const char *s);

/* The selfLink of the route's object, list or edges path. */
void router_self_link(const route *r, char *buf, size_t buf_size);

#endif

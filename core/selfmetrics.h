/* selfmetrics: the server's own Prometheus metrics, served on the admin
 * port: API requests by route and code with a latency histogram, and
 * Prometheus queries by outcome with latency. */
#ifndef SMI_SELFMETRICS_H
#define SMI_SELFMETRICS_H

#include <stddef.h>

#include "cache.h"
#include "prom.h"

typedef struct selfmetrics selfmetrics; /* thread-safe */

/* Low-cardinality route names used as the `route` label. */
typedef enum sm_route {
	SM_ROUTE_DISCOVERY,
	SM_ROUTE_OBJECT,
	SM_ROUTE_LIST,
	SM_ROUTE_EDGES,
	SM_ROUTE_HEALTH,
	SM_ROUTE_OTHER,
	SM_ROUTE_COUNT
} sm_route;

selfmetrics *selfmetrics_new(const char *version, const char *adapter_name);
void selfmetrics_free(selfmetrics *m);

void selfmetrics_api_request(selfmetrics *m, sm_route route, int code, double seconds);
void selfmetrics_prom_query(selfmetrics *m, prom_outcome outcome, double seconds);

/* Exposes the answer cache's counters too (borrowed; may stay unset). */
void selfmetrics_set_cache(selfmetrics *m, cache *c);

/* Prometheus text exposition (malloc'd, caller frees). */
char *selfmetrics_render(selfmetrics *m);

#endif

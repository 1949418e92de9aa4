/* api: answers one routed request of the aggregated API: discovery, health
 * and the SMI metrics routes (plan -> render -> query -> assemble), with
 * every error as a metav1.Status.  Knows nothing of sockets or TLS. */
#ifndef SMI_API_H
#define SMI_API_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "loader.h"
#include "prom.h"
#include "router.h"
#include "selfmetrics.h"

typedef struct api api;

typedef struct api_response {
	int code;
	const char *content_type;
	char *body; /* malloc'd */
	size_t body_len;
	sm_route route; /* for self metrics */
} api_response;

/* Fills the host services table handed to adapters (ctx = cfg). */
void api_host_init(smi_host *host, config *cfg);

/*
 * Checks every template the adapter declares (with config overrides) for
 * unknown placeholders.  Returns false with a message naming the
 * template (and "adapter.queries.<id>" when it came from the config).
 */
bool api_check_templates(const adapter *ad, const config *cfg, char *err, size_t err_size);

api *api_new(const config *cfg, adapter *ad, prom_client *prom, selfmetrics *sm);
void api_free(api *a);

uint64_t api_supported_kinds(const api *a);

/* The route limits for router_route(). */
const route_limits *api_route_limits(const api *a);

/* Answers an authenticated (or always-allowed) request. */
void api_handle(api *a, const route *r, const char *accept, api_response *out);

/* A Status response (used by the server for 401, 413, ...). */
void api_status_response(int code, const char *reason, const char *message, api_response *out);

void api_response_clear(api_response *out);

#endif

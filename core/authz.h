/* authz: may this identity do this?  The delegating authorizer of
 * k8s.io/apiserver: always-allow groups (system:masters), always-allow
 * non-resource paths (/healthz /readyz /livez), then a SubjectAccessReview
 * to the kube-apiserver (Webhook mode) or allow (AlwaysAllow mode).
 * Attributes come from the URL exactly as upstream's RequestInfo computes
 * them, so our check agrees with the aggregator's. */
#ifndef SMI_AUTHZ_H
#define SMI_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "authn.h"
#include "cache.h"
#include "config.h"
#include "kube.h"
#include "router.h"

#define AUTHZ_PATH_MAX 4096

typedef struct authz_attributes {
	bool resource_request;
	bool too_long; /* the path did not fit: answer 414 before anything */
	char verb[24]; /* get, list, watch, deletecollection; or the lower-cased method */
	char path[AUTHZ_PATH_MAX]; /* as sent, decoded, without the query */
	/* resource requests: pointers into `parts`, "" when absent */
	const char *namespace_name, *group, *version, *resource, *subresource, *name;
	char parts[AUTHZ_PATH_MAX];
	char field_name[254]; /* name from fieldSelector=metadata.name=<n> */
} authz_attributes;

/* upstream RequestInfoFactory.NewRequestInfo for prefixes api and apis. */
void authz_attributes_from_request(const char *method, const char *path, const route_param *params,
                                   size_t n_params, authz_attributes *out);

typedef enum authz_decision {
	AUTHZ_ALLOW = 0,
	AUTHZ_DENY, /* 403; `reason` may say why (appended to the message) */
	AUTHZ_ERROR /* the review failed: 500 */
} authz_decision;

typedef struct authz authz; /* thread-safe */

/* kube NULL with webhook mode is a programming error; config gives the
 * mode, TTLs and always-allow lists. */
authz *authz_new(const config *cfg, kube_client *kube);
void authz_free(authz *z);

authz_decision authz_authorize(authz *z, const identity *id, const authz_attributes *at,
                               char *reason, size_t reason_size);

/* True for paths/groups that need no review (exposed for the server's
 * anonymous rule and for tests). */
bool authz_always_allowed_path(const authz *z, const authz_attributes *at);

/* The SubjectAccessReview spec as JSON (malloc'd): the cache key and the
 * body's spec.  Go's field order; empty fields omitted; extra keys sorted. */
char *authz_sar_spec_json(const identity *id, const authz_attributes *at);

/* The SubjectAccessReview request body around that spec (malloc'd). */
char *authz_sar_body(const char *spec_json);

/* Parses a SubjectAccessReview answer into a decision; -1 if unparsable. */
int authz_parse_sar(const char *body, authz_decision *decision, char *reason, size_t reason_size);

/* The 403 Status body, message and details as upstream builds them
 * (malloc'd). */
char *authz_forbidden_status(const identity *id, const authz_attributes *at, const char *reason);

void authz_cache_stats(authz *z, cache_stats *out);

#endif

/* authn: who is asking.  The authenticator chain of k8s.io/apiserver's
 * delegating authenticator, in its order: front proxy (requestheader CA,
 * allowed names, X-Remote-* headers), client certificate (client CA; user =
 * CN, groups = O), bearer token (TokenReview, cached); then
 * system:authenticated is added; nobody matched and no error = anonymous,
 * any error = 401. */
#ifndef SMI_AUTHN_H
#define SMI_AUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authcfg.h"
#include "cache.h"
#include "kube.h"

typedef struct identity_extra {
	char *key;
	char **values;
	size_t n_values;
} identity_extra;

/* Everything malloc'd and owned; identity_clear() frees. */
typedef struct identity {
	char *user;
	char *uid; /* NULL when none */
	char **groups;
	size_t n_groups;
	identity_extra *extra; /* keys in first-seen order */
	size_t n_extra;
} identity;

void identity_clear(identity *id);
bool identity_set_user(identity *id, const char *user);
bool identity_add_group(identity *id, const char *group);
bool identity_add_extra(identity *id, const char *key, const char *value);
bool identity_has_group(const identity *id, const char *group);

/* One request header as received (borrowed). */
typedef struct authn_header {
	const char *name;
	const char *value;
} authn_header;

typedef struct authn_request {
	const unsigned char *const *der; /* peer chain, leaf first; may be empty */
	const size_t *der_len;
	size_t n_certs;
	const authn_header *headers; /* every header line in arrival order */
	size_t n_headers;
} authn_request;

typedef enum authn_result {
	AUTHN_OK = 0,      /* *out is the user, system:authenticated included */
	AUTHN_ANONYMOUS,   /* nobody matched: *out is system:anonymous */
	AUTHN_UNAUTHORIZED /* an authenticator failed and none succeeded: 401 */
} authn_result;

typedef struct authn authn; /* thread-safe */

/* kube NULL: bearer tokens are never looked at (standalone).
 * token_ttl_ms: cache lifetime of TokenReview answers (0: no caching). */
authn *authn_new(kube_client *kube, uint32_t token_ttl_ms);
void authn_free(authn *a);

/* Runs the chain.  `why` gets the log reason (never sent to clients). */
authn_result authn_authenticate(authn *a, const authcfg_snapshot *snap, const authn_request *req,
                                identity *out, char *why, size_t why_size);

/* ---- the pieces, exposed for unit tests ---- */

/*
 * The requestheader user from the headers: user from the first configured
 * username header with a non-empty first value (false when none), UID
 * likewise, groups one per header line (no comma splitting, empty values
 * skipped), extras by prefix with the key lower-cased then percent-decoded.
 */
bool authn_identity_from_headers(const authcfg_snapshot *snap, const authn_header *headers,
                                 size_t n_headers, identity *out);

/* The bearer token of an Authorization header value (pointer into it, with
 * its length), or NULL: "Bearer" case-insensitive, split on single spaces. */
const char *authn_bearer_token(const char *authorization, size_t *len);

/* The token cache key: hex HMAC-SHA256 of the token under the per-process
 * random key.  `out` needs 65 bytes. */
void authn_token_cache_key(const authn *a, const char *token, size_t token_len, char *out);

/* Parses a TokenReview response body.  Returns 1 authenticated (id
 * filled), 0 not authenticated (cacheable unless *has_error), -1
 * unparsable. */
int authn_parse_token_review(const char *body, identity *id, bool *has_error, char *why,
                             size_t why_size);

/* The TokenReview cache's counters. */
void authn_token_cache_stats(authn *a, cache_stats *out);

#endif

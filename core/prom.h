/* prom: the client of the Prometheus HTTP query API, as Prometheus and the
 * compatible backends (Thanos, VictoriaMetrics, Mimir, Cortex) serve it.
 * Runs the queries of one request concurrently (libcurl multi), reuses
 * connections across requests, and parses instant-vector answers (jansson)
 * into flat series. */
#ifndef SMI_PROM_H
#define SMI_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prom_client prom_client; /* thread-safe, shared */

typedef enum prom_outcome {
	PROM_OK = 0,
	PROM_UNAVAILABLE = 1, /* connection refused, DNS, reset, HTTP 503 or 429,
	                       * credential file unreadable: -> 503 */
	PROM_TIMEOUT = 2,     /* no full answer within the timeout, HTTP 504: -> 504 */
	PROM_BAD_RESPONSE = 3 /* other non-2xx (401, 403, ...), garbage, status:error,
	                       * wrong type, TLS failure: -> 502 */
} prom_outcome;

typedef struct prom_label {
	char *name;
	char *value;
} prom_label;

typedef struct prom_series {
	prom_label *labels; /* sorted by name, as Prometheus returns them */
	size_t n_labels;
	double value; /* may be NaN or +-Inf as Prometheus sent them */
} prom_series;

typedef struct prom_result {
	prom_outcome outcome;
	char message[256]; /* when outcome != PROM_OK: what failed, no secrets */
	prom_series *series;
	size_t n_series;
	double seconds; /* wall time of this query */
} prom_result;

/* How queries travel.  AUTO sends GET and switches to a POST form for
 * queries whose URL-encoded text is longer than 2000 bytes, which proxies
 * and servers commonly refuse in a request line. */
typedef enum prom_method {
	PROM_METHOD_AUTO = 0,
	PROM_METHOD_GET = 1,
	PROM_METHOD_POST = 2
} prom_method;

/* "auto", "get" or "post"; false for anything else. */
bool prom_method_from_name(const char *name, prom_method *out);

/* Default and bounds of prom_options.max_response_bytes, in bytes. */
#define PROM_DEFAULT_MAX_RESPONSE_BYTES ((size_t)32 * 1024 * 1024)
#define PROM_MIN_MAX_RESPONSE_BYTES     ((size_t)64 * 1024)
#define PROM_MAX_MAX_RESPONSE_BYTES     ((size_t)1024 * 1024 * 1024)

/*
 * How to reach a Prometheus-compatible backend (Prometheus, Thanos,
 * VictoriaMetrics, Mimir, Cortex, ...).  All strings are borrowed for the
 * duration of prom_client_new_with_options() only; NULL means unset.
 */
typedef struct prom_options {
	const char *url;           /* required; a path prefix is kept */
	uint32_t timeout_ms;       /* required: each query, 1 ms to 24 h */
	prom_method method;        /* default AUTO */
	size_t max_response_bytes; /* 0: the default, 32 MiB */
	/* Credentials are read from files, and read again when the files
	 * change; they are sent as "Authorization: Bearer" or "Basic".  Set
	 * a bearer token or basic auth (both files), not both, and then no
	 * user info in url. */
	const char *bearer_token_file;
	const char *basic_auth_username_file;
	const char *basic_auth_password_file;
	/* TLS (https URLs only), 1.2 or newer.  Verification is on unless
	 * tls_insecure_skip_verify; tls_server_name replaces the URL's host
	 * for SNI and certificate verification (the request still goes to
	 * the URL's host, with its Host header).  The files are checked here
	 * and read by libcurl for each new connection; no connection lives
	 * longer than 5 minutes, so rotated files take effect within that. */
	const char *tls_ca_file;   /* PEM bundle; NULL: the system's CAs */
	const char *tls_cert_file; /* client certificate, with tls_key_file */
	const char *tls_key_file;
	const char *tls_server_name;
	bool tls_insecure_skip_verify;
	/* Extra request headers (a tenant's X-Scope-OrgID, ...), each checked
	 * by prom_header_problem(). */
	const char *const *header_names;
	const char *const *header_values;
	size_t n_headers;
} prom_options;

/*
 * Why name: value cannot be an extra header, or NULL when it can: the name
 * must be an HTTP token, the value non-empty without control characters,
 * and headers that carry credentials (Authorization: use a bearer token or
 * basic auth file) or that the client manages (Host, Content-Type,
 * Content-Length, Accept, ...) are refused.
 */
const char *prom_header_problem(const char *name, const char *value);

/* Why name cannot be a TLS server name (a DNS name or an IPv4 address),
 * or NULL when it can. */
const char *prom_server_name_problem(const char *name);

/*
 * Checks the options and sets up a client; reads the credential files
 * once, which must exist then.  On failure returns NULL and puts the reason
 * in err (never a secret: user info and credentials are not printed).
 *
 * The first call runs curl_global_init() for the whole process (once, via
 * pthread_once); main() must call curl_global_cleanup() once at exit, after
 * every client is freed.
 */
prom_client *prom_client_new_with_options(const prom_options *options, char *err, size_t err_size);
/* The same with every option but url and timeout_ms at its default; user
 * info in base_url is used for basic auth and never printed. */
prom_client *prom_client_new(const char *base_url, uint32_t timeout_ms, char *err, size_t err_size);
/* Only once no prom_query_all() on this client is running. */
void prom_client_free(prom_client *client);

/*
 * Runs n instant queries at evaluation time eval_unix_seconds, all in
 * flight together, and fills results[0..n).  The credentials of one call
 * are read once, before its queries start.  Returns when every query has
 * finished or timed out.  Each result owns its series: release with
 * prom_result_clear().
 */
void prom_query_all(prom_client *client, const char *const *queries, size_t n,
                    int64_t eval_unix_seconds, prom_result *results);

/* The same with a per-query timeout for this call only: the smaller of
 * timeout_ms and the client's timeout (0 = the client's). */
void prom_query_all_within(prom_client *client, const char *const *queries, size_t n,
                           int64_t eval_unix_seconds, uint32_t timeout_ms, prom_result *results);
/* Series, labels and label strings are one block, freed here; outcome and
 * message stay.  Safe on a zeroed or already cleared result. */
void prom_result_clear(prom_result *result);

/* Parses one /api/v1/query response body (exposed for tests and fuzzing),
 * of at most PROM_DEFAULT_MAX_RESPONSE_BYTES.  Overwrites outcome, message,
 * series and n_series (clear it first). */
prom_outcome prom_parse_vector(const char *body, size_t len, prom_result *result);

const char *prom_outcome_name(prom_outcome outcome);

#endif

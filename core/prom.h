/* prom: the Prometheus HTTP API client.  Runs the queries of one request
 * concurrently (libcurl multi), reuses connections across requests, and
 * parses instant-vector answers (jansson) into flat series. */
#ifndef SMI_PROM_H
#define SMI_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct prom_client prom_client; /* thread-safe, shared */

typedef enum prom_outcome {
	PROM_OK = 0,
	PROM_UNAVAILABLE = 1, /* connection refused, DNS, reset: -> 503 */
	PROM_TIMEOUT = 2,     /* no full answer within the timeout: -> 504 */
	PROM_BAD_RESPONSE = 3 /* non-2xx, garbage, status:error, wrong type: -> 502 */
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

/*
 * base_url like "http://127.0.0.1:9090" (a path prefix is kept; userinfo is
 * used for basic auth and never printed).  timeout_ms bounds each query,
 * 1 ms to 24 h.  On failure returns NULL and puts the reason in err.
 *
 * The first call runs curl_global_init() for the whole process (once, via
 * pthread_once); main() must call curl_global_cleanup() once at exit, after
 * every client is freed.
 */
prom_client *prom_client_new(const char *base_url, uint32_t timeout_ms,
			     char *err, size_t err_size);
/* Only once no prom_query_all() on this client is running. */
void prom_client_free(prom_client *client);

/*
 * Runs n instant queries at evaluation time eval_unix_seconds, all in
 * flight together, and fills results[0..n).  Returns when every query has
 * finished or timed out.  Each result owns its series: release with
 * prom_result_clear().
 */
void prom_query_all(prom_client *client, const char *const *queries, size_t n,
		    int64_t eval_unix_seconds, prom_result *results);
/* Series, labels and label strings are one block, freed here; outcome and
 * message stay.  Safe on a zeroed or already cleared result. */
void prom_result_clear(prom_result *result);

/* Parses one /api/v1/query response body (exposed for tests and fuzzing).
 * Overwrites outcome, message, series and n_series (clear it first). */
prom_outcome prom_parse_vector(const char *body, size_t len,
			       prom_result *result);

const char *prom_outcome_name(prom_outcome outcome);

#endif

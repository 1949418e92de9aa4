/* cache: a short-lived answer cache with single-flight.  Identical requests
 * within the TTL share one Prometheus round trip; concurrent identical
 * requests wait for the one in flight instead of sending their own. */
#ifndef SMI_CACHE_H
#define SMI_CACHE_H

#include <stddef.h>

typedef struct cache cache;               /* thread-safe */
typedef struct cache_flight cache_flight; /* a leader's obligation to complete */

typedef enum cache_outcome {
	CACHE_HIT = 0,    /* a fresh answer was stored: *out filled */
	CACHE_SHARED = 1, /* waited for an identical request in flight: *out filled */
	CACHE_LEADER = 2  /* caller computes the answer, then cache_complete() */
} cache_outcome;

typedef struct cache_answer {
	int code;
	char *body; /* malloc'd copy, caller frees */
	size_t body_len;
} cache_answer;

/* max_entries bounds memory; 0 makes every request a leader (no caching,
 * no sharing). */
cache *cache_new(size_t max_entries);
void cache_free(cache *c);

/* Looks `key` up at monotonic time `now` (seconds). */
cache_outcome cache_begin(cache *c, const char *key, double now, cache_answer *out,
                          cache_flight **flight);

/*
 * Publishes the leader's answer to its waiters and, when code is 200 and
 * ttl_seconds > 0, stores it until now + ttl.  Errors are shared with
 * requests already waiting but never stored.  Must be called exactly once
 * for every CACHE_LEADER outcome.
 */
void cache_complete(cache *c, cache_flight *flight, int code, const char *body, size_t body_len,
                    double now, double ttl_seconds);

typedef struct cache_stats {
	unsigned long long hits, misses, shared;
	size_t entries;
} cache_stats;

void cache_get_stats(cache *c, cache_stats *out);

#endif

/* cache: entries live in a chained hash table under one mutex; an entry is
 * either in flight (its leader is asking Prometheus, waiters sleep on the
 * entry's condition variable) or ready (an answer valid until `expires`).
 * Eviction drops expired entries first, then the oldest. */
#include "cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024 /* power of two */

typedef struct entry {
	struct entry *next;          /* hash chain */
	struct entry *older, *newer; /* insertion order, for eviction */
	char *key;
	bool in_flight;
	unsigned waiters; /* threads sleeping on `done` */
	pthread_cond_t done;
	int code;
	char *body;
	size_t body_len;
	double expires; /* monotonic seconds; answers only */
	bool stored;    /* kept after completion (200 with a TTL) */
} entry;

struct cache_flight {
	entry *entry;
};

struct cache {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS];
	entry *oldest, *newest;
	size_t n_entries, max_entries;
	cache_stats stats;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

cache *cache_new(size_t max_entries)
{
	cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->max_entries = max_entries;
	return c;
}

static void entry_free(entry *e)
{
	pthread_cond_destroy(&e->done);
	free(e->key);
	free(e->body);
	free(e);
}

static void unlink_entry(cache *c, entry *e)
{
	entry **p = &c->buckets[hash(e->key) & (BUCKETS - 1)];
	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	c->n_entries--;
}

void cache_free(cache *c)
{
	if (!c)
		return;
	/* Callers guarantee no request is in flight at shutdown. */
	while (c->oldest) {
		entry *e = c->oldest;
		unlink_entry(c, e);
		entry_free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static entry *lookup(cache *c, const char *key)
{
	for (entry *e = c->buckets[hash(key) & (BUCKETS - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Makes room for one more entry: expired answers first, then the oldest
 * stored answers.  Entries in flight or with waiters are never evicted. */
static void evict(cache *c, double now)
{
	for (int pass = 0; pass < 2 && c->n_entries >= c->max_entries; pass++) {
		for (entry *e = c->oldest; e && c->n_entries >= c->max_entries;) {
			entry *newer = e->newer;
			if (!e->in_flight && !e->waiters && (pass == 1 || e->expires <= now)) {
				unlink_entry(c, e);
				entry_free(e);
			}
			e = newer;
		}
	}
}

static bool copy_answer(const entry *e, cache_answer *out)
{
	out->code = e->code;
	out->body_len = e->body_len;
	out->body = malloc(e->body_len + 1);
	if (!out->body)
		return false;
	memcpy(out->body, e->body, e->body_len);
	out->body[e->body_len] = '\0';
	return true;
}

static entry *entry_new(cache *c, const char *key)
{
	entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key || pthread_cond_init(&e->done, NULL) != 0) {
		free(e->key);
		free(e);
		return NULL;
	}
	e->in_flight = true;
	size_t b = hash(key) & (BUCKETS - 1);
	e->next = c->buckets[b];
	c->buckets[b] = e;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->n_entries++;
	return e;
}

cache_outcome cache_begin(cache *c, const char *key, double now, cache_answer *out,
                          cache_flight **flight)
{
	*flight = NULL;
	memset(out, 0, sizeof *out);
	if (c->max_entries == 0)
		return CACHE_LEADER;
	pthread_mutex_lock(&c->lock);
	entry *e = lookup(c, key);
	if (e && !e->in_flight && (!e->stored || e->expires <= now)) {
		/* Expired, or an error kept only for its waiters: not an answer. */
		if (e->waiters == 0) {
			unlink_entry(c, e);
			entry_free(e);
		}
		e = NULL;
	}
	if (e && !e->in_flight) {
		c->stats.hits++;
		bool ok = copy_answer(e, out);
		pthread_mutex_unlock(&c->lock);
		return ok ? CACHE_HIT : CACHE_LEADER;
	}
	if (e) { /* in flight: wait for its leader */
		c->stats.shared++;
		e->waiters++;
		while (e->in_flight)
			pthread_cond_wait(&e->done, &c->lock);
		e->waiters--;
		bool ok = copy_answer(e, out);
		if (e->waiters == 0 && !e->stored) {
			/* An unstored answer lives only for the waiters. */
			unlink_entry(c, e);
			entry_free(e);
		}
		pthread_mutex_unlock(&c->lock);
		return ok ? CACHE_SHARED : CACHE_LEADER;
	}
	c->stats.misses++;
	evict(c, now);
	e = entry_new(c, key);
	cache_flight *f = e ? malloc(sizeof *f) : NULL;
	if (f) {
		f->entry = e;
		*flight = f;
	} else if (e) {
		unlink_entry(c, e);
		entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
	return CACHE_LEADER;
}

void cache_complete(cache *c, cache_flight *flight, int code, const char *body, size_t body_len,
                    double now, double ttl_seconds)
{
	if (!flight)
		return;
	entry *e = flight->entry;
	free(flight);
	char *copy = malloc(body_len + 1);
	pthread_mutex_lock(&c->lock);
	e->code = copy ? code : 500;
	e->body = copy;
	e->body_len = copy ? body_len : 0;
	if (copy) {
		memcpy(copy, body, body_len);
		copy[body_len] = '\0';
	}
	e->stored = copy && code == 200 && ttl_seconds > 0;
	e->expires = now + ttl_seconds;
	e->in_flight = false;
	pthread_cond_broadcast(&e->done);
	if (!e->stored && e->waiters == 0) {
		unlink_entry(c, e);
		entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_get_stats(cache *c, cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->entries = c->n_entries;
	pthread_mutex_unlock(&c->lock);
}

/* selfmetrics: counters and histograms under one mutex; the hot path only
 * increments.  HTTP codes are tracked in a fixed table of the codes the
 * server can produce, so label cardinality stays bounded. */
#include "selfmetrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const route_names[SM_ROUTE_COUNT] = {"discovery", "object", "list",
                                                        "edges",     "health", "other"};
static const int tracked_codes[] = {200, 304, 400, 401, 403, 404, 405, 406,
                                    413, 414, 429, 431, 500, 502, 503, 504};
#define N_CODES (sizeof tracked_codes / sizeof tracked_codes[0])
static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

typedef struct histogram {
	unsigned long long buckets[N_BUCKETS]; /* non-cumulative; summed on render */
	unsigned long long count;
	double sum; /* seconds */
} histogram;

struct selfmetrics {
	pthread_mutex_t lock;
	char *version, *adapter;
	unsigned long long requests[SM_ROUTE_COUNT][N_CODES + 1]; /* last: other codes */
	histogram request_latency[SM_ROUTE_COUNT];
	unsigned long long queries[4];
	histogram query_latency;
	int last_query_ok; /* -1 unknown, 0 failed, 1 ok */
	cache *cache;      /* borrowed */
};

selfmetrics *selfmetrics_new(const char *version, const char *adapter_name)
{
	selfmetrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->version = strdup(version);
	m->adapter = strdup(adapter_name);
	if (!m->version || !m->adapter || pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m->version);
		free(m->adapter);
		free(m);
		return NULL;
	}
	m->last_query_ok = -1;
	return m;
}

void selfmetrics_free(selfmetrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->version);
	free(m->adapter);
	free(m);
}

static void observe(histogram *h, double seconds)
{
	size_t i = 0;
	while (i < N_BUCKETS && seconds > bucket_bounds[i])
		i++;
	if (i < N_BUCKETS)
		h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}

void selfmetrics_set_cache(selfmetrics *m, cache *c)
{
	pthread_mutex_lock(&m->lock);
	m->cache = c;
	pthread_mutex_unlock(&m->lock);
}

void selfmetrics_api_request(selfmetrics *m, sm_route route, int code, double seconds)
{
	size_t c = 0;
	while (c < N_CODES && tracked_codes[c] != code)
		c++;
	pthread_mutex_lock(&m->lock);
	m->requests[route][c]++;
	observe(&m->request_latency[route], seconds);
	pthread_mutex_unlock(&m->lock);
}

void selfmetrics_prom_query(selfmetrics *m, prom_outcome outcome, double seconds)
{
	pthread_mutex_lock(&m->lock);
	m->queries[outcome]++;
	observe(&m->query_latency, seconds);
	m->last_query_ok = outcome == PROM_OK;
	pthread_mutex_unlock(&m->lock);
}

typedef struct out {
	char *data;
	size_t len, cap;
	int failed;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
	if (o->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *p = realloc(o->data, cap);
		if (!p) {
			o->failed = 1;
			return;
		}
		o->data = p;
		o->cap = cap;
	}
}

static void put_histogram(out *o, const char *name, const char *labels, const histogram *h)
{
	unsigned long long cumulative = 0;
	const char *sep = *labels ? "," : "";
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cumulative += h->buckets[i];
		put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_bounds[i],
		    cumulative);
	}
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, h->count);
	if (*labels) {
		put(o, "%s_sum{%s} %.6f\n", name, labels, h->sum);
		put(o, "%s_count{%s} %llu\n", name, labels, h->count);
	} else {
		put(o, "%s_sum %.6f\n", name, h->sum);
		put(o, "%s_count %llu\n", name, h->count);
	}
}

char *selfmetrics_render(selfmetrics *m)
{
	out o = {.data = malloc(8192), .cap = 8192};
	if (!o.data)
		return NULL;
	o.data[0] = '\0';
	pthread_mutex_lock(&m->lock);
	put(&o,
	    "# HELP smi_metrics_build_info Build and adapter of this server.\n"
	    "# TYPE smi_metrics_build_info gauge\n"
	    "smi_metrics_build_info{version=\"%s\",adapter=\"%s\"} 1\n",
	    m->version, m->adapter);
	put(&o, "# HELP smi_metrics_api_requests_total API requests by route and HTTP code.\n"
	        "# TYPE smi_metrics_api_requests_total counter\n");
	for (int r = 0; r < SM_ROUTE_COUNT; r++) {
		for (size_t c = 0; c <= N_CODES; c++) {
			if (!m->requests[r][c])
				continue;
			if (c < N_CODES)
				put(&o,
				    "smi_metrics_api_requests_total{route=\"%s\",code=\"%d\"} "
				    "%llu\n",
				    route_names[r], tracked_codes[c], m->requests[r][c]);
			else
				put(&o,
				    "smi_metrics_api_requests_total{route=\"%s\",code=\"other\"} "
				    "%llu\n",
				    route_names[r], m->requests[r][c]);
		}
	}
	put(&o, "# HELP smi_metrics_api_request_duration_seconds API request latency by route.\n"
	        "# TYPE smi_metrics_api_request_duration_seconds histogram\n");
	for (int r = 0; r < SM_ROUTE_COUNT; r++) {
		char labels[64];
		snprintf(labels, sizeof labels, "route=\"%s\"", route_names[r]);
		put_histogram(&o, "smi_metrics_api_request_duration_seconds", labels,
		              &m->request_latency[r]);
	}
	put(&o,
	    "# HELP smi_metrics_prometheus_queries_total Queries sent to Prometheus by outcome.\n"
	    "# TYPE smi_metrics_prometheus_queries_total counter\n");
	for (int i = 0; i < 4; i++)
		put(&o, "smi_metrics_prometheus_queries_total{outcome=\"%s\"} %llu\n",
		    prom_outcome_name((prom_outcome)i), m->queries[i]);
	put(&o, "# HELP smi_metrics_prometheus_query_duration_seconds Prometheus query latency.\n"
	        "# TYPE smi_metrics_prometheus_query_duration_seconds histogram\n");
	put_histogram(&o, "smi_metrics_prometheus_query_duration_seconds", "", &m->query_latency);
	put(&o,
	    "# HELP smi_metrics_prometheus_up Whether the last Prometheus query succeeded (-1 "
	    "before the first).\n"
	    "# TYPE smi_metrics_prometheus_up gauge\n"
	    "smi_metrics_prometheus_up %d\n",
	    m->last_query_ok);
	if (m->cache) {
		cache_stats cs;
		cache_get_stats(m->cache, &cs);
		put(&o,
		    "# HELP smi_metrics_cache_requests_total Metrics requests by cache outcome: "
		    "hit (stored answer), "
		    "miss (asked Prometheus), shared (waited for an identical request in flight).\n"
		    "# TYPE smi_metrics_cache_requests_total counter\n"
		    "smi_metrics_cache_requests_total{outcome=\"hit\"} %llu\n"
		    "smi_metrics_cache_requests_total{outcome=\"miss\"} %llu\n"
		    "smi_metrics_cache_requests_total{outcome=\"shared\"} %llu\n"
		    "# HELP smi_metrics_cache_entries Answers held in the cache.\n"
		    "# TYPE smi_metrics_cache_entries gauge\n"
		    "smi_metrics_cache_entries %zu\n",
		    cs.hits, cs.misses, cs.shared, cs.entries);
	}
	pthread_mutex_unlock(&m->lock);
	if (o.failed) {
		free(o.data);
		return NULL;
	}
	return o.data;
}

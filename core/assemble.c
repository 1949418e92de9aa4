/* assemble: plan answers -> TrafficMetrics(List) JSON.  Series are merged
 * per resource (lists) or per (direction, peer) (edges) in an
 * open-addressing hash table, so assembly is O(series). */
#include "assemble.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "log.h"
#include "quantile.h"
#include "quantity.h"

typedef struct item {
	char *key;          /* "<dir>|<namespace>|<name>\0<name>", owned */
	uint32_t direction; /* 0 (resource), SMI_FEEDS_EDGE_TO or _FROM */
	char ns[64];        /* DNS-1123 label; empty for the Namespace kind */
	const char *name;   /* points into key's allocation */
	double success, failure;
	quantile_bucket *buckets; /* bounds in milliseconds */
	size_t n_buckets, cap_buckets;
} item;

typedef struct item_table {
	item *items;
	size_t n_items, cap_items;
	int32_t *slots; /* index into items, -1 empty; power-of-two size */
	size_t n_slots;
	bool failed;
} item_table;

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static bool table_grow_slots(item_table *t)
{
	size_t n = t->n_slots ? t->n_slots * 2 : 64;
	int32_t *slots = malloc(n * sizeof *slots);
	if (!slots)
		return false;
	for (size_t i = 0; i < n; i++)
		slots[i] = -1;
	for (size_t i = 0; i < t->n_items; i++) {
		size_t s = hash_key(t->items[i].key) & (n - 1);
		while (slots[s] >= 0)
			s = (s + 1) & (n - 1);
		slots[s] = (int32_t)i;
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = n;
	return true;
}

/* Finds or creates the item for (direction, ns, name). */
static item *table_get(item_table *t, uint32_t direction, const char *ns, const char *name)
{
	char key[600];
	int n = snprintf(key, sizeof key, "%u|%s|%s", direction, ns ? ns : "", name);
	if (n < 0 || (size_t)n >= sizeof key)
		return NULL;
	if ((t->n_items + 1) * 2 > t->n_slots && !table_grow_slots(t))
		goto fail;
	size_t s = hash_key(key) & (t->n_slots - 1);
	while (t->slots[s] >= 0) {
		item *it = &t->items[t->slots[s]];
		if (strcmp(it->key, key) == 0)
			return it;
		s = (s + 1) & (t->n_slots - 1);
	}
	if (t->n_items == t->cap_items) {
		size_t cap = t->cap_items ? t->cap_items * 2 : 16;
		item *items = realloc(t->items, cap * sizeof *items);
		if (!items)
			goto fail;
		t->items = items;
		t->cap_items = cap;
	}
	item *it = &t->items[t->n_items];
	memset(it, 0, sizeof *it);
	/* One allocation: the key, then a copy of the name for the JSON. */
	size_t key_len = (size_t)n, name_len = strlen(name);
	it->key = malloc(key_len + 1 + name_len + 1);
	if (!it->key)
		goto fail;
	memcpy(it->key, key, key_len + 1);
	memcpy(it->key + key_len + 1, name, name_len + 1);
	it->direction = direction;
	it->name = it->key + key_len + 1;
	/* The namespace is the second field of the key: "<dir>|<ns>|<name>". */
	snprintf(it->ns, sizeof it->ns, "%s", ns ? ns : "");
	t->slots[s] = (int32_t)t->n_items++;
	return it;
fail:
	t->failed = true;
	return NULL;
}

static void table_free(item_table *t)
{
	for (size_t i = 0; i < t->n_items; i++) {
		free(t->items[i].key);
		free(t->items[i].buckets);
	}
	free(t->items);
	free(t->slots);
}

static bool item_add_bucket(item *it, double le_ms, double count)
{
	if (it->n_buckets == it->cap_buckets) {
		size_t cap = it->cap_buckets ? it->cap_buckets * 2 : 32;
		quantile_bucket *b = realloc(it->buckets, cap * sizeof *b);
		if (!b)
			return false;
		it->buckets = b;
		it->cap_buckets = cap;
	}
	it->buckets[it->n_buckets].upper_bound = le_ms;
	it->buckets[it->n_buckets].count = count;
	it->n_buckets++;
	return true;
}

const char *assemble_series_label(void *ctx, const smi_series *series, const char *name)
{
	(void)ctx;
	if (!series || !name)
		return NULL;
	for (size_t i = 0; i < series->n_labels; i++)
		if (strcmp(series->labels[i].name, name) == 0)
			return series->labels[i].value;
	return NULL;
}

/* Parses an `le` label: decimal, "+Inf". */
static bool parse_le(const char *text, double *out)
{
	if (!text)
		return false;
	if (strcmp(text, "+Inf") == 0 || strcmp(text, "Inf") == 0) {
		*out = INFINITY;
		return true;
	}
	char *end;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || isnan(v))
		return false;
	*out = v;
	return true;
}

static bool valid_name(const route *r, const char *ns, const char *name)
{
	if (!name || !router_valid_dns_subdomain(name))
		return false;
	if (r->kind->kind == SMI_KIND_NAMESPACE)
		return router_valid_dns_label(name);
	return ns && router_valid_dns_label(ns);
}

/* Feeds one sample into the item chosen by `direction`. */
static void feed(item_table *t, const route *r, const smi_query_spec *spec, uint32_t direction,
                 const char *ns, const char *name, const smi_series *series, double value,
                 smi_outcome outcome)
{
	if (!valid_name(r, ns, name)) {
		log_msg(LOG_DEBUG, "dropping series for an invalid resource name");
		return;
	}
	item *it = table_get(t, direction, r->kind->kind == SMI_KIND_NAMESPACE ? NULL : ns, name);
	if (!it)
		return;
	if (spec->role == SMI_ROLE_COUNTS) {
		if (outcome == SMI_OUTCOME_SUCCESS)
			it->success += value;
		else if (outcome == SMI_OUTCOME_FAILURE)
			it->failure += value;
		return;
	}
	double le;
	if (!parse_le(assemble_series_label(NULL, series, "le"), &le)) {
		log_msg(LOG_DEBUG, "dropping a latency series without a numeric le label");
		return;
	}
	double scale = spec->latency_to_ms > 0 ? spec->latency_to_ms : 1.0;
	if (!item_add_bucket(it, isinf(le) ? le : le * scale, value))
		t->failed = true;
}

static bool same_text(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Whether a resource series belongs to what was asked: the object itself,
 * or a resource of the listed namespace.  The queries select exactly that;
 * anything else comes from a template (or a backend) that matches too much
 * and must not be counted. */
static bool within_request(const smi_request *req, const smi_identity *id)
{
	switch (req->scope) {
	case SMI_SCOPE_OBJECT:
		return same_text(id->self_name, req->name) &&
		       (!req->namespace_name || same_text(id->self_namespace, req->namespace_name));
	case SMI_SCOPE_NAMESPACE_LIST: return same_text(id->self_namespace, req->namespace_name);
	default: return true;
	}
}

static bool classify_results(const assemble_input *in, item_table *t, char *err, size_t err_size)
{
	const route *r = in->route;
	const smi_request *req = &r->request;
	for (uint32_t q = 0; q < in->plan->n_queries; q++) {
		const smi_query_spec *spec = &in->plan->queries[q];
		const prom_result *res = &in->results[q];
		for (size_t i = 0; i < res->n_series; i++) {
			const prom_series *ps = &res->series[i];
			if (isnan(ps->value) || isinf(ps->value))
				continue; /* no traffic in a histogram, or a division by zero */
			smi_label stack_labels[32];
			smi_label *labels = stack_labels;
			size_t n = ps->n_labels;
			if (n > 32 && !(labels = malloc(n * sizeof *labels))) {
				snprintf(err, err_size, "out of memory assembling the answer");
				return false;
			}
			for (size_t l = 0; l < n; l++) {
				labels[l].name = ps->labels[l].name;
				labels[l].value = ps->labels[l].value;
			}
			smi_series series = {
			    .struct_size = sizeof series, .n_labels = n, .labels = labels};
			smi_identity id = {.struct_size = sizeof id};
			smi_status st =
			    in->adapter->identify(in->adapter_state, req, q, &series, &id);
			/* The identity borrows label values from `ps`, not from `labels`. */
			if (labels != stack_labels)
				free(labels);
			if (st != SMI_OK) {
				snprintf(err, err_size,
				         "adapter %s could not classify a series of query %u "
				         "(status %d)",
				         in->adapter->name, q, (int)st);
				return false;
			}
			if (id.feeds & SMI_FEEDS_RESOURCE) {
				if (!within_request(req, &id))
					continue;
				feed(t, r, spec, 0, id.self_namespace, id.self_name, &series,
				     ps->value, id.outcome);
			}
			if (req->scope != SMI_SCOPE_EDGES)
				continue;
			if (id.feeds & SMI_FEEDS_EDGE_TO)
				feed(t, r, spec, SMI_FEEDS_EDGE_TO, id.peer_namespace, id.peer_name,
				     &series, ps->value, id.outcome);
			if (id.feeds & SMI_FEEDS_EDGE_FROM) {
				/* For a self-call both bits are set and the peer is the resource.
				 */
				const char *ns = id.feeds & SMI_FEEDS_EDGE_TO ? req->namespace_name
				                                              : id.peer_namespace;
				const char *name =
				    id.feeds & SMI_FEEDS_EDGE_TO ? req->name : id.peer_name;
				feed(t, r, spec, SMI_FEEDS_EDGE_FROM, ns, name, &series, ps->value,
				     id.outcome);
			}
		}
	}
	if (t->failed) {
		snprintf(err, err_size, "out of memory assembling the answer");
		return false;
	}
	return true;
}

/* ---- JSON ---- */

static json_t *object_ref(const kind_info *k, const char *ns, const char *name)
{
	json_t *ref = json_object();
	json_object_set_new(ref, "kind", json_string(k->kind_name));
	if (ns && k->namespaced)
		json_object_set_new(ref, "namespace", json_string(ns));
	if (name)
		json_object_set_new(ref, "name", json_string(name));
	return ref;
}

static json_t *metric(const char *name, const char *unit, double value)
{
	char q[QUANTITY_FORMAT_MAX];
	quantity_format(value, q, sizeof q);
	json_t *m = json_object();
	json_object_set_new(m, "name", json_string(name));
	if (unit)
		json_object_set_new(m, "unit", json_string(unit));
	json_object_set_new(m, "value", json_string(q));
	return m;
}

/* The five metrics in the fixed order of the API.  Latency of an item
 * without traffic in the window is 0 (see README: "no traffic"). */
static json_t *metrics_array(const item *it)
{
	static const double qs[3] = {0.99, 0.90, 0.50};
	static const char *const names[3] = {"p99_response_latency", "p90_response_latency",
	                                     "p50_response_latency"};
	json_t *arr = json_array();
	quantile_bucket scratch[64];
	for (int i = 0; i < 3; i++) {
		double v = NAN;
		if (it && it->n_buckets > 0) {
			quantile_bucket *b =
			    it->n_buckets <= 64 ? scratch : malloc(it->n_buckets * sizeof *b);
			if (b) {
				memcpy(b, it->buckets, it->n_buckets * sizeof *b);
				v = quantile_histogram(qs[i], b, it->n_buckets);
				if (b != scratch)
					free(b);
			}
		}
		json_array_append_new(arr, metric(names[i], "ms", isnan(v) || isinf(v) ? 0 : v));
	}
	json_array_append_new(arr, metric("success_count", NULL, it ? it->success : 0));
	json_array_append_new(arr, metric("failure_count", NULL, it ? it->failure : 0));
	return arr;
}

typedef struct item_context {
	const route *route;
	const char *timestamp;
	const char *window;
} item_context;

/* One TrafficMetrics: `ns`/`name` is the resource it describes; for edges
 * `edge_item` names the peer and direction. */
static json_t *traffic_metrics(const item_context *c, const char *ns, const char *name,
                               const item *data, const item *edge_item)
{
	const route *r = c->route;
	const kind_info *k = r->kind;
	char link[1024];
	if (edge_item) {
		router_self_link(r, link, sizeof link);
	} else if (k->kind == SMI_KIND_NAMESPACE) {
		snprintf(link, sizeof link, API_PREFIX "/namespaces/%s", name);
	} else {
		snprintf(link, sizeof link, API_PREFIX "/namespaces/%s/%s/%s", ns, k->plural, name);
	}
	json_t *tm = json_object();
	json_object_set_new(tm, "kind", json_string("TrafficMetrics"));
	json_object_set_new(tm, "apiVersion", json_string(API_GROUP "/" API_VERSION));
	json_t *md = json_object();
	json_object_set_new(md, "name", json_string(name));
	if (k->namespaced && ns)
		json_object_set_new(md, "namespace", json_string(ns));
	json_object_set_new(md, "selfLink", json_string(link));
	json_object_set_new(md, "creationTimestamp", json_string(c->timestamp));
	json_object_set_new(tm, "metadata", md);
	json_object_set_new(tm, "timestamp", json_string(c->timestamp));
	json_object_set_new(tm, "window", json_string(c->window));
	json_object_set_new(tm, "resource", object_ref(k, ns, name));
	json_t *edge = json_object();
	if (edge_item) {
		json_object_set_new(
		    edge, "direction",
		    json_string(edge_item->direction == SMI_FEEDS_EDGE_TO ? "to" : "from"));
		json_object_set_new(edge, "resource",
		                    object_ref(k, edge_item->ns, edge_item->name));
	} else {
		json_object_set_new(edge, "direction", json_string("from"));
		json_object_set_new(edge, "resource", json_null());
	}
	json_object_set_new(tm, "edge", edge);
	json_object_set_new(tm, "metrics", metrics_array(data));
	return tm;
}

/* Deterministic order: callers (from) before callees (to), then by
 * namespace and name. */
static int item_compare(const void *a, const void *b)
{
	const item *x = a, *y = b;
	if (x->direction != y->direction)
		return x->direction == SMI_FEEDS_EDGE_FROM
		           ? -1
		           : (y->direction == SMI_FEEDS_EDGE_FROM
		                  ? 1
		                  : (int)x->direction - (int)y->direction);
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

static json_t *traffic_metrics_list(const item_context *c, item_table *t)
{
	const route *r = c->route;
	const smi_request *req = &r->request;
	char link[1024];
	router_self_link(r, link, sizeof link);
	json_t *list = json_object();
	json_object_set_new(list, "kind", json_string("TrafficMetricsList"));
	json_object_set_new(list, "apiVersion", json_string(API_GROUP "/" API_VERSION));
	json_object_set_new(list, "metadata", json_pack("{s:s}", "selfLink", link));
	json_object_set_new(list, "resource", object_ref(r->kind, req->namespace_name, req->name));
	/* The hash slots go stale when the items move; nothing looks up after this. */
	if (t->n_items > 1) /* qsort must not see the NULL array of an empty table */
		qsort(t->items, t->n_items, sizeof *t->items, item_compare);
	json_t *items = json_array();
	for (size_t i = 0; i < t->n_items; i++) {
		const item *it = &t->items[i];
		json_t *tm = req->scope == SMI_SCOPE_EDGES
		                 ? traffic_metrics(c, req->namespace_name, req->name, it, it)
		                 : traffic_metrics(c, it->ns, it->name, it, NULL);
		json_array_append_new(items, tm);
	}
	json_object_set_new(list, "items", items);
	return list;
}

char *assemble_json(const assemble_input *in, char *err, size_t err_size)
{
	item_table table = {0};
	json_t *doc = NULL;
	char *body = NULL;
	const route *r = in->route;

	if (!classify_results(in, &table, err, err_size))
		goto out;

	char timestamp[32], window[DURATION_FORMAT_MAX];
	time_t ts = (time_t)in->eval_unix_seconds;
	struct tm tm;
	gmtime_r(&ts, &tm);
	strftime(timestamp, sizeof timestamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	duration_format(r->window_ns, window, sizeof window);
	item_context c = {.route = r, .timestamp = timestamp, .window = window};

	if (r->request.scope == SMI_SCOPE_OBJECT) {
		/* No series is not an error: an idle resource has zero counts. */
		const item *data = table.n_items ? &table.items[0] : NULL;
		doc = traffic_metrics(&c, r->request.namespace_name, r->request.name, data, NULL);
	} else {
		doc = traffic_metrics_list(&c, &table);
	}
	body = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (!body)
		snprintf(err, err_size, "failed to serialise the answer");
out:
	json_decref(doc);
	table_free(&table);
	return body;
}

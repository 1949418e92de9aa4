/* api: the aggregated API's answers.  Discovery and health are built from
 * static data and the adapter's kinds, never from Prometheus, so the
 * APIService stays Available while Prometheus is down. */
#include "api.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "assemble.h"
#include "cache.h"
#include "log.h"
#include "promql.h"
#include "status.h"

#ifndef SMI_VERSION
#define SMI_VERSION "0.0.0"
#endif

struct api {
	const config *cfg;
	adapter *adapter;
	const smi_adapter_descriptor *desc;
	prom_client *prom;
	selfmetrics *sm;
	route_limits limits;
	char *resources_json; /* the APIResourceList, built once */
	cache *cache;
};

/* ---- host services for adapters ---- */

static void host_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	log_msg((log_level)(level <= SMI_LOG_DEBUG ? level : SMI_LOG_DEBUG), "adapter: %s",
	        message);
}

static smi_status host_option(void *ctx, const char *key, smi_option_type type, void *out)
{
	config *cfg = ctx;
	char err[512];
	int rc;
	switch (type) {
	case SMI_OPTION_STRING: rc = config_option_string(cfg, key, out, err, sizeof err); break;
	case SMI_OPTION_BOOL: rc = config_option_bool(cfg, key, out, err, sizeof err); break;
	case SMI_OPTION_INT: rc = config_option_int(cfg, key, out, err, sizeof err); break;
	default: return SMI_ERR_INVALID;
	}
	if (rc < 0) {
		log_msg(LOG_ERROR, "%s", err);
		return SMI_ERR_OPTION;
	}
	return rc == 0 ? SMI_OK : SMI_ERR_UNSUPPORTED;
}

void api_host_init(smi_host *host, config *cfg)
{
	memset(host, 0, sizeof *host);
	host->struct_size = sizeof *host;
	host->abi_major = SMI_ADAPTER_ABI_MAJOR;
	host->abi_minor = SMI_ADAPTER_ABI_MINOR;
	host->ctx = cfg;
	host->log = host_log;
	host->option = host_option;
	host->label = assemble_series_label;
}

static const char *template_text(const smi_adapter_descriptor *d, const config *cfg, const char *id,
                                 bool *overridden)
{
	const char *text = config_query_override(cfg, id);
	*overridden = text != NULL;
	if (text)
		return text;
	for (size_t i = 0; i < d->n_templates; i++)
		if (strcmp(d->templates[i].id, id) == 0)
			return d->templates[i].text;
	return NULL;
}

bool api_check_templates(const adapter *ad, const config *cfg, char *err, size_t err_size)
{
	const smi_adapter_descriptor *d = adapter_descriptor(ad);
	const char *known[65];
	size_t n = d->n_templates; /* the loader caps it at 64 */
	if (n > 64)
		n = 64;
	for (size_t i = 0; i < n; i++)
		known[i] = d->templates[i].id;
	known[n] = NULL;
	if (config_unknown_query(cfg, known, err, err_size))
		return false;
	for (size_t i = 0; i < n; i++) {
		bool overridden;
		const char *text = template_text(d, cfg, known[i], &overridden);
		char why[256];
		if (!promql_check_template(text, why, sizeof why)) {
			if (overridden)
				snprintf(err, err_size, "%s: adapter.queries.%s: %s", cfg->path,
				         known[i], why);
			else
				snprintf(err, err_size, "adapter %s: template %s: %s", d->name,
				         known[i], why);
			return false;
		}
	}
	return true;
}

/* ---- responses ---- */

void api_response_clear(api_response *out)
{
	free(out->body);
	out->body = NULL;
}

static void set_body(api_response *out, int code, const char *content_type, char *body)
{
	out->code = code;
	out->content_type = content_type;
	out->body = body;
	out->body_len = body ? strlen(body) : 0;
}

static void status_response(api_response *out, int code, const char *reason, const char *message,
                            json_t *details)
{
	char *body = status_json(code, reason, message, details);
	set_body(out, body ? code : 500, "application/json", body);
}

void api_status_response(int code, const char *reason, const char *message, api_response *out)
{
	status_response(out, code, reason, message, NULL);
}

static char *dump(json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	return s;
}

static json_t *group_version(void)
{
	return json_pack("{s:s,s:s}", "groupVersion", API_GROUP "/" API_VERSION, "version",
	                 API_VERSION);
}

static json_t *api_group(void)
{
	return json_pack("{s:s,s:[o],s:o}", "name", API_GROUP, "versions", group_version(),
	                 "preferredVersion", group_version());
}

static char *build_resource_list(uint64_t kinds)
{
	json_t *resources = json_array();
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++) {
		if (!(kinds & (UINT64_C(1) << k)))
			continue;
		const kind_info *ki = kind_info_of((smi_kind)k);
		char sub[64];
		snprintf(sub, sizeof sub, "%s/edges", ki->plural);
		json_array_append_new(resources,
		                      json_pack("{s:s,s:s,s:b,s:s,s:[s,s]}", "name", ki->plural,
		                                "singularName", "", "namespaced", ki->namespaced,
		                                "kind", "TrafficMetrics", "verbs", "get", "list"));
		/* A subresource must share its parent's scope (reference 5.2). */
		json_array_append_new(resources,
		                      json_pack("{s:s,s:s,s:b,s:s,s:[s]}", "name", sub,
		                                "singularName", "", "namespaced", ki->namespaced,
		                                "kind", "TrafficMetricsList", "verbs", "get"));
	}
	return dump(json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
	                      "groupVersion", API_GROUP "/" API_VERSION, "resources", resources));
}

api *api_new(const config *cfg, adapter *ad, prom_client *prom, selfmetrics *sm)
{
	api *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->adapter = ad;
	a->desc = adapter_descriptor(ad);
	a->prom = prom;
	a->sm = sm;
	a->limits.window_default_seconds = cfg->window.default_seconds;
	a->limits.window_min_seconds = cfg->window.min_seconds;
	a->limits.window_max_seconds = cfg->window.max_seconds;
	a->limits.supported_kinds =
	    a->desc->kinds(adapter_state(ad)) & ((UINT64_C(1) << SMI_KIND_COUNT_V1) - 1);
	a->resources_json = build_resource_list(a->limits.supported_kinds);
	a->cache = cache_new(cfg->cache.max_entries);
	if (!a->resources_json || !a->cache) {
		api_free(a);
		return NULL;
	}
	selfmetrics_set_cache(sm, a->cache);
	return a;
}

void api_free(api *a)
{
	if (!a)
		return;
	free(a->resources_json);
	cache_free(a->cache);
	free(a);
}

uint64_t api_supported_kinds(const api *a)
{
	return a->limits.supported_kinds;
}

const route_limits *api_route_limits(const api *a)
{
	return &a->limits;
}

/* JSON is acceptable when Accept is absent or names application/json,
 * application/any or any/any (parameters ignored, as upstream does for a
 * plain-JSON alternative). */
static bool accepts_json(const char *accept)
{
	if (!accept || !*accept)
		return true;
	const char *p = accept;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ";,");
		while (len && p[len - 1] == ' ')
			len--;
		if ((len == 16 && strncasecmp(p, "application/json", 16) == 0) ||
		    (len == 13 && strncasecmp(p, "application/*", 13) == 0) ||
		    (len == 3 && strncmp(p, "*/*", 3) == 0))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static sm_route metrics_route(const route *r)
{
	switch (r->request.scope) {
	case SMI_SCOPE_OBJECT: return SM_ROUTE_OBJECT;
	case SMI_SCOPE_EDGES: return SM_ROUTE_EDGES;
	default: return SM_ROUTE_LIST;
	}
}

static void backend_failure(api_response *out, const prom_result *res)
{
	char message[400];
	switch (res->outcome) {
	case PROM_UNAVAILABLE:
		snprintf(message, sizeof message, "metrics backend unavailable: %s", res->message);
		status_response(out, 503, "ServiceUnavailable", message, NULL);
		break;
	case PROM_TIMEOUT:
		snprintf(message, sizeof message,
		         "Timeout: metrics backend did not answer in time: %s", res->message);
		status_response(out, 504, "Timeout", message, NULL);
		break;
	default:
		snprintf(message, sizeof message, "metrics backend returned a bad response: %s",
		         res->message);
		status_response(out, 502, "BadGateway", message, NULL);
		break;
	}
}

static void answer_metrics(api *a, const route *r, api_response *out)
{
	const smi_request *req = &r->request;
	smi_plan plan;
	memset(&plan, 0, sizeof plan);
	plan.struct_size = sizeof plan;
	char *queries[SMI_PLAN_MAX_QUERIES] = {0};
	prom_result results[SMI_PLAN_MAX_QUERIES];
	memset(results, 0, sizeof results);
	char err[512];

	smi_status st = a->desc->plan(adapter_state(a->adapter), req, &plan);
	if (st == SMI_ERR_UNSUPPORTED) {
		char message[300];
		snprintf(message, sizeof message,
		         "%s.%s \"%s\" not found: adapter %s cannot answer this request",
		         r->kind->plural, API_GROUP, req->name ? req->name : "", a->desc->name);
		status_response(out, 404, "NotFound", message,
		                status_details(req->name, API_GROUP, r->kind->plural));
		return;
	}
	if (st != SMI_OK || plan.n_queries == 0 || plan.n_queries > SMI_PLAN_MAX_QUERIES) {
		snprintf(err, sizeof err, "adapter %s failed to plan the queries (status %d)",
		         a->desc->name, (int)st);
		status_response(out, 500, "InternalError", err, NULL);
		return;
	}
	for (uint32_t i = 0; i < plan.n_queries; i++) {
		bool overridden;
		const char *text =
		    plan.queries[i].template_id
		        ? template_text(a->desc, a->cfg, plan.queries[i].template_id, &overridden)
		        : NULL;
		char why[256] = "unknown template";
		queries[i] =
		    text ? promql_render(text, &plan.queries[i], req, why, sizeof why) : NULL;
		if (!queries[i]) {
			snprintf(err, sizeof err, "cannot render query template %s: %s",
			         plan.queries[i].template_id ? plan.queries[i].template_id
			                                     : "(null)",
			         why);
			log_msg(LOG_ERROR, "%s", err);
			status_response(out, 500, "InternalError", err, NULL);
			goto out;
		}
		log_msg(LOG_DEBUG, "query %u: %s", i, queries[i]);
	}

	/* Whole seconds: the answer's timestamp names exactly the evaluation
	 * time, so anyone can re-run the same PromQL and get the same numbers. */
	int64_t eval = (int64_t)time(NULL);
	/* The queries run side by side, so each may use the whole request
	 * budget: server.requestTimeout, or the client's shorter ?timeout=. */
	uint32_t budget_ms = a->cfg->server.request_timeout_ms;
	if (r->timeout_ms > 0 && r->timeout_ms < budget_ms)
		budget_ms = r->timeout_ms;
	prom_query_all_within(a->prom, (const char *const *)queries, plan.n_queries, eval,
	                      budget_ms, results);
	for (uint32_t i = 0; i < plan.n_queries; i++)
		selfmetrics_prom_query(a->sm, results[i].outcome, results[i].seconds);
	for (uint32_t i = 0; i < plan.n_queries; i++) {
		if (results[i].outcome != PROM_OK) {
			log_msg(LOG_WARN, "Prometheus query failed (%s): %s",
			        prom_outcome_name(results[i].outcome), results[i].message);
			backend_failure(out, &results[i]);
			goto out;
		}
	}
	assemble_input in = {.route = r,
	                     .adapter = a->desc,
	                     .adapter_state = adapter_state(a->adapter),
	                     .plan = &plan,
	                     .results = results,
	                     .eval_unix_seconds = eval};
	char *body = assemble_json(&in, err, sizeof err);
	if (!body) {
		status_response(out, 500, "InternalError", err, NULL);
		goto out;
	}
	set_body(out, 200, "application/json", body);
out:
	for (uint32_t i = 0; i < SMI_PLAN_MAX_QUERIES; i++) {
		free(queries[i]);
		prom_result_clear(&results[i]);
	}
}

static double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* How long an answer for `window_seconds` may be reused. */
static double cache_ttl(const api *a, uint32_t window_seconds)
{
	if (a->cfg->cache.ttl_ms >= 0)
		return (double)a->cfg->cache.ttl_ms / 1000.0;
	double ttl = window_seconds / 15.0; /* 2 s for the default 30 s */
	return ttl < 1 ? 1 : (ttl > 30 ? 30 : ttl);
}

/* Identical questions share one answer: the cache key is the normalised
 * request, so `t=60s` and `t=1m` are the same entry. */
static void answer_metrics_cached(api *a, const route *r, api_response *out)
{
	const smi_request *req = &r->request;
	char key[700];
	snprintf(key, sizeof key, "%d|%d|%s|%s|%u", (int)req->kind, (int)req->scope,
	         req->namespace_name ? req->namespace_name : "", req->name ? req->name : "",
	         req->window_seconds);
	cache_answer hit;
	cache_flight *flight;
	cache_outcome outcome = cache_begin(a->cache, key, monotonic_seconds(), &hit, &flight);
	if (outcome != CACHE_LEADER) {
		set_body(out, hit.code, "application/json", hit.body);
		out->body_len = hit.body_len;
		return;
	}
	answer_metrics(a, r, out);
	cache_complete(a->cache, flight, out->code, out->body ? out->body : "", out->body_len,
	               monotonic_seconds(), cache_ttl(a, req->window_seconds));
}

static char *version_json(void)
{
	return dump(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", "0", "minor", "1",
	                      "gitVersion", "v" SMI_VERSION, "gitCommit", "", "gitTreeState", "",
	                      "buildDate", "", "goVersion", "", "compiler", "gcc", "platform",
	                      "linux/amd64"));
}

void api_handle(api *a, const route *r, const char *accept, api_response *out)
{
	memset(out, 0, sizeof out[0]);
	out->route = SM_ROUTE_OTHER;
	if (r->type == ROUTE_ERROR) {
		json_t *details = NULL;
		if (r->details_kind)
			details = status_details(r->details_name, API_GROUP, r->details_kind);
		status_response(out, r->code, r->reason, r->message, details);
		return;
	}
	if (r->type == ROUTE_HEALTH) {
		out->route = SM_ROUTE_HEALTH;
		char body[128];
		if (r->verbose)
			snprintf(body, sizeof body, "[+]ping ok\n%s check passed\n",
			         r->health_check);
		else
			snprintf(body, sizeof body, "ok");
		set_body(out, 200, "text/plain; charset=utf-8", strdup(body));
		return;
	}
	if (!accepts_json(accept)) {
		status_response(
		    out, 406, "NotAcceptable",
		    "only application/json is supported; the Accept header allows none of it",
		    NULL);
		return;
	}
	switch (r->type) {
	case ROUTE_API_GROUP_LIST:
		out->route = SM_ROUTE_DISCOVERY;
		set_body(out, 200, "application/json",
		         dump(json_pack("{s:s,s:s,s:[o]}", "kind", "APIGroupList", "apiVersion",
		                        "v1", "groups", api_group())));
		break;
	case ROUTE_API_GROUP: {
		out->route = SM_ROUTE_DISCOVERY;
		json_t *g = api_group();
		json_t *doc = json_pack("{s:s,s:s}", "kind", "APIGroup", "apiVersion", "v1");
		json_object_update(doc, g);
		json_decref(g);
		set_body(out, 200, "application/json", dump(doc));
		break;
	}
	case ROUTE_API_RESOURCES:
		out->route = SM_ROUTE_DISCOVERY;
		set_body(out, 200, "application/json", strdup(a->resources_json));
		break;
	case ROUTE_VERSION: set_body(out, 200, "application/json", version_json()); break;
	case ROUTE_METRICS:
		out->route = metrics_route(r);
		answer_metrics_cached(a, r, out);
		break;
	default:
		status_response(out, 404, "NotFound",
		                "the server could not find the requested resource", NULL);
	}
	if (!out->body)
		status_response(out, 500, "InternalError", "out of memory", NULL);
}

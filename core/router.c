/* router: request line -> validated route.  The grammar follows the
 * original smi-metrics routes (see README "API"), with every segment
 * checked before anything else sees it. */
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

#define SEGMENTS_MAX 8

static void route_fail(route *r, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void route_fail(route *r, int code, const char *reason, const char *fmt, ...)
{
	r->type = ROUTE_ERROR;
	r->code = code;
	r->reason = reason;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
}

/* Copies at most 64 bytes of untrusted text for an error message, with
 * anything outside printable ASCII shown as \xNN, so that a message never
 * carries raw control bytes or invalid UTF-8. */
static void quote_for_message(const char *in, char *out, size_t out_size)
{
	size_t o = 0, i = 0;
	for (; i < 64 && in[i] && o + 5 < out_size; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, out_size - o, "\\x%02x", c);
			o += 4;
		}
	}
	if (in[i] && o + 4 < out_size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static bool dns_label_span(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i + 1 < len))
			return false;
	}
	return true;
}

bool router_valid_dns_label(const char *s)
{
	return dns_label_span(s, strlen(s));
}

bool router_valid_dns_subdomain(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return false;
	const char *start = s;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (!dns_label_span(start, (size_t)(p - start)))
				return false;
			if (*p == '\0')
				return true;
			start = p + 1;
		}
	}
}

/* Splits `path` on '/' into segments (pointing into `copy`).  Returns the
 * count, or -1 for empty inner segments ("//") or too many segments. */
static int split_path(const char *path, char *copy, size_t copy_size, char **segments)
{
	size_t len = strlen(path);
	if (len + 1 > copy_size)
		return -1;
	memcpy(copy, path, len + 1);
	/* A trailing slash is tolerated, as in the original. */
	if (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	if (copy[0] != '/')
		return -1;
	if (len == 1)
		return 0;
	int n = 0;
	char *p = copy + 1;
	for (;;) {
		if (n == SEGMENTS_MAX)
			return -1;
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (*p == '\0')
			return -1;
		segments[n++] = p;
		if (!slash)
			return n;
		p = slash + 1;
	}
}

static void not_found(route *r)
{
	route_fail(r, 404, "NotFound", "the server could not find the requested resource");
}

static const char *param_value(const route_param *params, size_t n, const char *key, int *count)
{
	const char *value = NULL;
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(params[i].key, key) == 0) {
			if (*count == 0)
				value = params[i].value ? params[i].value : "";
			(*count)++;
		}
	}
	return value;
}

/* Validates the query parameters of a metrics request: t (window),
 * timeout, watch, and selectors we do not implement. */
static bool parse_params(const route_param *params, size_t n, const route_limits *limits, route *r)
{
	char shown[300];
	char err[160];
	int count;

	const char *t = param_value(params, n, "t", &count);
	if (count > 1) {
		route_fail(r, 400, "BadRequest",
		           "query parameter \"t\" given %d times; give the window once", count);
		return false;
	}
	r->window_ns = (int64_t)limits->window_default_seconds * 1000000000LL;
	if (t) {
		int64_t ns;
		quote_for_message(t, shown, sizeof shown);
		if (!duration_parse(t, &ns, err, sizeof err)) {
			route_fail(r, 400, "BadRequest",
			           "invalid window t=\"%s\": expected a duration such as 30s or 5m",
			           shown);
			return false;
		}
		if (ns % 1000000000LL != 0) {
			route_fail(r, 400, "BadRequest",
			           "invalid window t=\"%s\": must be a whole number of seconds",
			           shown);
			return false;
		}
		if (ns < (int64_t)limits->window_min_seconds * 1000000000LL ||
		    ns > (int64_t)limits->window_max_seconds * 1000000000LL) {
			char lo[DURATION_FORMAT_MAX], hi[DURATION_FORMAT_MAX];
			duration_format((int64_t)limits->window_min_seconds * 1000000000LL, lo,
			                sizeof lo);
			duration_format((int64_t)limits->window_max_seconds * 1000000000LL, hi,
			                sizeof hi);
			route_fail(r, 400, "BadRequest",
			           "invalid window t=\"%s\": must be between %s and %s", shown, lo,
			           hi);
			return false;
		}
		r->window_ns = ns;
	}
	r->request.window_seconds = (uint32_t)(r->window_ns / 1000000000LL);

	const char *timeout = param_value(params, n, "timeout", &count);
	if (count > 1) {
		route_fail(r, 400, "BadRequest", "query parameter \"timeout\" given %d times",
		           count);
		return false;
	}
	if (timeout) {
		int64_t ns;
		quote_for_message(timeout, shown, sizeof shown);
		if (!duration_parse(timeout, &ns, err, sizeof err) || ns <= 0) {
			route_fail(r, 400, "BadRequest",
			           "invalid timeout specified in the request URL - \"%s\"", shown);
			return false;
		}
		int64_t ms = ns / 1000000;
		r->timeout_ms = ms > 60000 ? 60000 : (ms < 1 ? 1 : (uint32_t)ms);
	}

	const char *watch = param_value(params, n, "watch", &count);
	if (watch && (strcmp(watch, "true") == 0 || strcmp(watch, "1") == 0)) {
		route_fail(r, 405, "MethodNotAllowed",
		           "watch is not supported on resources of kind \"%s.%s\"", r->kind->plural,
		           API_GROUP);
		r->details_kind = r->kind->plural;
		return false;
	}
	static const char *const selectors[] = {"labelSelector", "fieldSelector"};
	for (size_t i = 0; i < 2; i++) {
		const char *sel = param_value(params, n, selectors[i], &count);
		if (sel && *sel) {
			route_fail(r, 400, "BadRequest", "%s is not supported by this server",
			           selectors[i]);
			return false;
		}
	}
	return true;
}

static bool set_namespace(route *r, const char *ns)
{
	if (!router_valid_dns_label(ns)) {
		char shown[300];
		quote_for_message(ns, shown, sizeof shown);
		route_fail(r, 400, "BadRequest",
		           "invalid namespace \"%s\": must be a DNS-1123 label (lower-case "
		           "letters, digits and '-', at most 63)",
		           shown);
		return false;
	}
	snprintf(r->namespace_name, sizeof r->namespace_name, "%s", ns);
	r->request.namespace_name = r->namespace_name;
	return true;
}

static bool set_name(route *r, const char *name)
{
	bool ok = r->kind->kind == SMI_KIND_NAMESPACE ? router_valid_dns_label(name)
	                                              : router_valid_dns_subdomain(name);
	if (!ok) {
		char shown[300];
		quote_for_message(name, shown, sizeof shown);
		route_fail(r, 400, "BadRequest", "invalid %s name \"%s\": must be a DNS-1123 %s",
		           r->kind->plural, shown,
		           r->kind->kind == SMI_KIND_NAMESPACE ? "label" : "subdomain");
		return false;
	}
	snprintf(r->name, sizeof r->name, "%s", name);
	r->request.name = r->name;
	return true;
}

/* Looks up a plural; unknown or unsupported kinds are 404 like any
 * resource the server does not serve. */
static bool set_kind(route *r, const char *plural, const route_limits *limits)
{
	const kind_info *k = kind_from_plural(plural);
	if (!k || !(limits->supported_kinds & (UINT64_C(1) << k->kind))) {
		not_found(r);
		return false;
	}
	r->kind = k;
	r->request.kind = k->kind;
	return true;
}

/* Routes the segments after API_PREFIX. */
static void route_metrics(char **seg, int n, const route_limits *limits, route *r)
{
	r->type = ROUTE_METRICS;
	r->request.struct_size = sizeof r->request;
	bool ok;
	if (n == 1) { /* /{plural}: every resource of a kind, cluster-wide */
		ok = set_kind(r, seg[0], limits);
		r->request.scope = SMI_SCOPE_CLUSTER_LIST;
	} else if (strcmp(seg[0], "namespaces") != 0) {
		not_found(r); /* only namespaces has cluster-scoped objects */
		return;
	} else if (n == 2) { /* /namespaces/{name} */
		ok = set_kind(r, "namespaces", limits) && set_name(r, seg[1]);
		r->request.scope = SMI_SCOPE_OBJECT;
	} else if (n == 3 && strcmp(seg[2], "edges") == 0) {
		ok = set_kind(r, "namespaces", limits) && set_name(r, seg[1]);
		r->request.scope = SMI_SCOPE_EDGES;
	} else if (n == 3) { /* /namespaces/{ns}/{plural} */
		ok = set_kind(r, seg[2], limits);
		if (ok && !r->kind->namespaced) {
			not_found(r);
			return;
		}
		ok = ok && set_namespace(r, seg[1]);
		r->request.scope = SMI_SCOPE_NAMESPACE_LIST;
	} else if (n == 4 || (n == 5 && strcmp(seg[4], "edges") == 0)) {
		ok = set_kind(r, seg[2], limits);
		if (ok && !r->kind->namespaced) {
			not_found(r);
			return;
		}
		ok = ok && set_namespace(r, seg[1]) && set_name(r, seg[3]);
		r->request.scope = n == 4 ? SMI_SCOPE_OBJECT : SMI_SCOPE_EDGES;
	} else {
		not_found(r);
		return;
	}
	(void)ok; /* on failure the setters already filled the error */
}

static const char *const health_checks[] = {"livez", "readyz", "healthz"};

void router_route(const char *method, const char *path, const route_param *params, size_t n_params,
                  const route_limits *limits, route *out)
{
	memset(out, 0, sizeof *out);
	char copy[2048];
	char *seg[SEGMENTS_MAX];

	bool get = strcmp(method, "GET") == 0;
	out->head = strcmp(method, "HEAD") == 0;
	if (!get && !out->head) {
		/* Upstream answers 405 for verbs a resource does not support.  The
		 * method is the client's bytes: quoted like every echoed value. */
		char shown[300];
		quote_for_message(method, shown, sizeof shown);
		route_fail(out, 405, "MethodNotAllowed",
		           "%s is not supported: this API is read-only (GET and HEAD)", shown);
		return;
	}
	if (strlen(path) >= sizeof copy) {
		route_fail(out, 414, "RequestURITooLong", "request path longer than %zu bytes",
		           sizeof copy - 1);
		return;
	}
	int n = split_path(path, copy, sizeof copy, seg);
	if (n < 0) {
		not_found(out);
		return;
	}
	if (n == 1) {
		for (size_t i = 0; i < 3; i++) {
			if (strcmp(seg[0], health_checks[i]) == 0) {
				int count;
				out->type = ROUTE_HEALTH;
				out->health_check = health_checks[i];
				out->verbose =
				    param_value(params, n_params, "verbose", &count) != NULL;
				return;
			}
		}
		if (strcmp(seg[0], "version") == 0) {
			out->type = ROUTE_VERSION;
			return;
		}
		if (strcmp(seg[0], "apis") == 0) {
			out->type = ROUTE_API_GROUP_LIST;
			return;
		}
	}
	if (n < 2 || strcmp(seg[0], "apis") != 0 || strcmp(seg[1], API_GROUP) != 0) {
		not_found(out);
		return;
	}
	if (n == 2) {
		out->type = ROUTE_API_GROUP;
		return;
	}
	if (strcmp(seg[2], API_VERSION) != 0) {
		not_found(out);
		return;
	}
	if (n == 3) {
		out->type = ROUTE_API_RESOURCES;
		return;
	}
	route_metrics(seg + 3, n - 3, limits, out);
	if (out->type == ROUTE_METRICS)
		parse_params(params, n_params, limits, out);
}

void router_self_link(const route *r, char *buf, size_t buf_size)
{
	const smi_request *q = &r->request;
	const char *plural = r->kind->plural;
	switch (q->scope) {
	case SMI_SCOPE_CLUSTER_LIST: snprintf(buf, buf_size, API_PREFIX "/%s", plural); break;
	case SMI_SCOPE_NAMESPACE_LIST:
		snprintf(buf, buf_size, API_PREFIX "/namespaces/%s/%s", q->namespace_name, plural);
		break;
	case SMI_SCOPE_OBJECT:
	case SMI_SCOPE_EDGES:
		if (r->kind->kind == SMI_KIND_NAMESPACE)
			snprintf(buf, buf_size, API_PREFIX "/namespaces/%s%s", q->name,
			         q->scope == SMI_SCOPE_EDGES ? "/edges" : "");
		else
			snprintf(buf, buf_size, API_PREFIX "/namespaces/%s/%s/%s%s",
			         q->namespace_name, plural, q->name,
			         q->scope == SMI_SCOPE_EDGES ? "/edges" : "");
		break;
	}
}

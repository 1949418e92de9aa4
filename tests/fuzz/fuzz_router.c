/* fuzz_router: router_route() on fuzzed request lines, as the server calls
 * it after libmicrohttpd has decoded the URL and split the query string.
 *
 * Input: METHOD \0 PATH \0 PARAM \0 PARAM ...  where a PARAM is "key=value"
 * (split at the first '=', as libmicrohttpd does) or a bare "key".
 * Checked: every route is self-consistent, a metrics route carries only
 * valid names and a bounded window, its selfLink routes back to the same
 * question, and every error message is one line of valid UTF-8. */
#include "fuzz_common.h"

#include "router.h"

/* server.c: MAX_PARAMS query parameters at most reach the router. */
#define FUZZ_ROUTER_MAX_PARAMS 32

/* The defaults of the README, with every kind the Linkerd adapter serves. */
static const route_limits fuzz_limits = {
    .window_default_seconds = 30,
    .window_min_seconds = 10,
    .window_max_seconds = 86400,
    .supported_kinds = (UINT64_C(1) << SMI_KIND_COUNT_V1) - 1,
};

/* DNS-1123 label as documented in router.h, written independently of the
 * router for a differential check. */
static bool reference_dns_label(const char *s, size_t len)
{
	if (len < 1 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		bool edge = i == 0 || i == len - 1;
		if (!alnum && (edge || c != '-'))
			return false;
	}
	return true;
}

static bool reference_dns_subdomain(const char *s)
{
	size_t len = strlen(s);
	const char *label = s;

	if (len < 1 || len > 253)
		return false;
	for (;;) {
		const char *dot = strchr(label, '.');
		size_t label_len = dot ? (size_t)(dot - label) : strlen(label);
		if (!reference_dns_label(label, label_len))
			return false;
		if (!dot)
			return true;
		label = dot + 1;
	}
}

static void check_dns_validators(const char *text)
{
	bool label = router_valid_dns_label(text);
	bool subdomain = router_valid_dns_subdomain(text);

	FUZZ_CHECK(label == reference_dns_label(text, strlen(text)),
	           "router_valid_dns_label(\"%s\") = %d", text, label);
	FUZZ_CHECK(subdomain == reference_dns_subdomain(text),
	           "router_valid_dns_subdomain(\"%s\") = %d", text, subdomain);
	FUZZ_CHECK(!label || subdomain, "\"%s\" is a label but not a subdomain", text);
}

static void check_error(const route *r)
{
	FUZZ_CHECK(r->code == 400 || r->code == 404 || r->code == 405 || r->code == 414,
	           "unexpected code %d", r->code);
	FUZZ_CHECK(r->reason != NULL && r->reason[0] != '\0', "error without a reason");
	FUZZ_CHECK(memchr(r->message, '\0', sizeof r->message) != NULL, "message not terminated");
	FUZZ_CHECK(r->message[0] != '\0', "error without a message");
	/* The message becomes metav1.Status.message through jansson. */
	FUZZ_CHECK(fuzz_one_line(r->message), "message is not one line: %s", r->message);
	FUZZ_CHECK(fuzz_valid_utf8(r->message), "message is not valid UTF-8: %s", r->message);
}

static bool same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_metrics(const route *r)
{
	const smi_request *q = &r->request;
	bool namespaced_question;

	FUZZ_CHECK(r->kind != NULL, "metrics route without a kind");
	FUZZ_CHECK(q->kind == r->kind->kind, "request.kind %d, route kind %d", q->kind,
	           r->kind->kind);
	FUZZ_CHECK(fuzz_limits.supported_kinds & (UINT64_C(1) << q->kind), "unsupported kind");
	FUZZ_CHECK(q->struct_size == sizeof *q, "request.struct_size %u", q->struct_size);
	FUZZ_CHECK(q->scope <= SMI_SCOPE_EDGES, "scope %d", q->scope);

	/* adapter.h: name is NULL for lists; namespace is NULL for cluster
	 * lists and the Namespace kind. */
	bool list = q->scope == SMI_SCOPE_NAMESPACE_LIST || q->scope == SMI_SCOPE_CLUSTER_LIST;
	FUZZ_CHECK(list == (q->name == NULL), "scope %d with name %s", q->scope,
	           q->name ? q->name : "(null)");
	namespaced_question = r->kind->namespaced && q->scope != SMI_SCOPE_CLUSTER_LIST;
	FUZZ_CHECK(namespaced_question == (q->namespace_name != NULL),
	           "kind %s scope %d with namespace %s", r->kind->plural, q->scope,
	           q->namespace_name ? q->namespace_name : "(null)");
	if (q->namespace_name) {
		FUZZ_CHECK(q->namespace_name == r->namespace_name, "namespace not in the route");
		FUZZ_CHECK(router_valid_dns_label(q->namespace_name), "namespace \"%s\"",
		           q->namespace_name);
	}
	if (q->name) {
		FUZZ_CHECK(q->name == r->name, "name not in the route");
		FUZZ_CHECK(q->kind == SMI_KIND_NAMESPACE ? router_valid_dns_label(q->name)
		                                         : router_valid_dns_subdomain(q->name),
		           "name \"%s\"", q->name);
	}

	FUZZ_CHECK(r->window_ns % 1000000000LL == 0, "window %lld ns", (long long)r->window_ns);
	FUZZ_CHECK(r->window_ns >= (int64_t)fuzz_limits.window_min_seconds * 1000000000LL &&
	               r->window_ns <= (int64_t)fuzz_limits.window_max_seconds * 1000000000LL,
	           "window %lld ns out of bounds", (long long)r->window_ns);
	FUZZ_CHECK((int64_t)q->window_seconds * 1000000000LL == r->window_ns,
	           "window_seconds %u for %lld ns", q->window_seconds, (long long)r->window_ns);
	FUZZ_CHECK(r->timeout_ms <= 60000, "timeout %u ms", r->timeout_ms);

	/* The selfLink names the same question. */
	char link[1024];
	route again;
	router_self_link(r, link, sizeof link);
	router_route("GET", link, NULL, 0, &fuzz_limits, &again);
	FUZZ_CHECK(again.type == ROUTE_METRICS, "selfLink %s routes to %d (%s)", link, again.type,
	           again.message);
	FUZZ_CHECK(again.kind == r->kind && again.request.scope == q->scope &&
	               same_string(again.request.namespace_name, q->namespace_name) &&
	               same_string(again.request.name, q->name),
	           "selfLink %s names another question", link);
}

static void check_route(const route *r)
{
	switch (r->type) {
	case ROUTE_ERROR: check_error(r); break;
	case ROUTE_METRICS: check_metrics(r); break;
	case ROUTE_HEALTH:
		FUZZ_CHECK(r->health_check != NULL, "health route without a check");
		break;
	case ROUTE_API_GROUP_LIST:
	case ROUTE_API_GROUP:
	case ROUTE_API_RESOURCES:
	case ROUTE_VERSION: break;
	default: FUZZ_CHECK(false, "route type %d", (int)r->type);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	char *fields[2 + FUZZ_ROUTER_MAX_PARAMS];
	route_param params[FUZZ_ROUTER_MAX_PARAMS];
	size_t n_params = 0;
	route r;

	/* Paths over the router's 2 KiB limit are covered by a few bytes
	 * more; longer inputs only slow the search down. */
	if (size > 4096)
		return 0;
	size_t n = fuzz_split_fields(data, size, &copy, fields, 2 + FUZZ_ROUTER_MAX_PARAMS);
	const char *method = fields[0];
	const char *path = n > 1 ? fields[1] : "";
	for (size_t i = 2; i < n; i++) {
		char *eq = strchr(fields[i], '=');
		if (eq)
			*eq = '\0';
		params[n_params].key = fields[i];
		params[n_params].value = eq ? eq + 1 : NULL;
		n_params++;
	}

	router_route(method, path, params, n_params, &fuzz_limits, &r);
	check_route(&r);
	/* Without parameters too: defaults must give a valid route as well. */
	router_route(method, path, NULL, 0, &fuzz_limits, &r);
	check_route(&r);

	for (size_t i = 0; i < n; i++)
		check_dns_validators(fields[i]);
	free(copy);
	return 0;
}

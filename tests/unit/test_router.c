/* test_router: router_route() against every route of the SMI Traffic Metrics
 * API (reference smi-traffic-metrics.md sections 2.2-2.3) and the contract in
 * core/router.h.  Expected strings are written out by hand. */
#include "router.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX    "/apis/metrics.smi-spec.io/v1alpha1"
#define ALL_KINDS ((UINT64_C(1) << SMI_KIND_COUNT_V1) - 1)
#define SEC       INT64_C(1000000000)

/* Window bounds used throughout: default 30 s, 10 s .. 1 h. */
static const route_limits limits = {
    .window_default_seconds = 30,
    .window_min_seconds = 10,
    .window_max_seconds = 3600,
    .supported_kinds = ALL_KINDS,
};

static route r;

static void get(const char *path)
{
	router_route("GET", path, NULL, 0, &limits, &r);
}

/* One query parameter. */
static void get_with(const char *path, const char *key, const char *value)
{
	route_param p = {key, value};
	router_route("GET", path, &p, 1, &limits, &r);
}

static void assert_metrics(smi_kind kind, smi_scope scope, const char *ns, const char *name)
{
	ck_assert_msg(r.type == ROUTE_METRICS, "type %d, code %d: %s", r.type, r.code, r.message);
	ck_assert_ptr_nonnull(r.kind);
	ck_assert_int_eq(r.kind->kind, kind);
	ck_assert_int_eq(r.request.kind, kind);
	ck_assert_int_eq(r.request.scope, scope);
	ck_assert_uint_eq(r.request.struct_size, sizeof(smi_request));
	if (ns)
		ck_assert_str_eq(r.request.namespace_name, ns);
	else
		ck_assert_ptr_null(r.request.namespace_name);
	if (name)
		ck_assert_str_eq(r.request.name, name);
	else
		ck_assert_ptr_null(r.request.name);
}

static void assert_error(int code, const char *reason)
{
	ck_assert_msg(r.type == ROUTE_ERROR, "expected an error %d, got route type %d", code,
	              r.type);
	ck_assert_int_eq(r.code, code);
	ck_assert_ptr_nonnull(r.reason);
	ck_assert_str_eq(r.reason, reason);
	ck_assert_msg(r.message[0] != '\0', "error without a message");
}

static void assert_self_link(const char *expected)
{
	char link[1024];
	router_self_link(&r, link, sizeof link);
	ck_assert_str_eq(link, expected);
}

/* ---- discovery and group documents ---- */

START_TEST(test_discovery_routes)
{
	get("/apis");
	ck_assert_int_eq(r.type, ROUTE_API_GROUP_LIST);
	get("/apis/");
	ck_assert_int_eq(r.type, ROUTE_API_GROUP_LIST);
	get("/apis/metrics.smi-spec.io");
	ck_assert_int_eq(r.type, ROUTE_API_GROUP);
	get("/apis/metrics.smi-spec.io/");
	ck_assert_int_eq(r.type, ROUTE_API_GROUP);
	get("/apis/metrics.smi-spec.io/v1alpha1");
	ck_assert_int_eq(r.type, ROUTE_API_RESOURCES);
	get("/apis/metrics.smi-spec.io/v1alpha1/");
	ck_assert_int_eq(r.type, ROUTE_API_RESOURCES);
	ck_assert(!r.head);
}
END_TEST

START_TEST(test_unknown_top_level_paths)
{
	static const char *const paths[] = {
	    "/",
	    "",
	    "apis",
	    "/api",
	    "/apis/other.group",
	    "/apis/metrics.smi-spec.io/v1alpha2",
	    "/apis/metrics.smi-spec.io/v1beta1/deployments",
	    "/apis/metrics.smi-spec.io//v1alpha1",
	    "/apis/metrics.smi-spec.io/v1alpha1//deployments",
	    "/openapi/v2",
	    "/metrics.smi-spec.io/v1alpha1/deployments",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		get(paths[i]);
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 404, "%s: type %d code %d",
		              paths[i], r.type, r.code);
		ck_assert_str_eq(r.reason, "NotFound");
	}
}
END_TEST

/* ---- metrics routes: scope and kind ---- */

START_TEST(test_cluster_list)
{
	get(PREFIX "/deployments");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	ck_assert_str_eq(r.kind->plural, "deployments");
	ck_assert_str_eq(r.kind->kind_name, "Deployment");
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/deployments");

	get(PREFIX "/deployments/");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);

	get(PREFIX "/pods");
	assert_metrics(SMI_KIND_POD, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	get(PREFIX "/daemonsets");
	assert_metrics(SMI_KIND_DAEMONSET, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	ck_assert_str_eq(r.kind->kind_name, "Daemonset");
	get(PREFIX "/statefulsets");
	assert_metrics(SMI_KIND_STATEFULSET, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	ck_assert_str_eq(r.kind->kind_name, "Statefulset");
	get(PREFIX "/jobs");
	assert_metrics(SMI_KIND_JOB, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	get(PREFIX "/replicasets");
	assert_metrics(SMI_KIND_REPLICASET, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	get(PREFIX "/replicationcontrollers");
	assert_metrics(SMI_KIND_REPLICATIONCONTROLLER, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
}
END_TEST

START_TEST(test_namespaces_list)
{
	get(PREFIX "/namespaces");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	ck_assert_str_eq(r.kind->kind_name, "Namespace");
	ck_assert(!r.kind->namespaced);
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces");
	get(PREFIX "/namespaces/");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
}
END_TEST

START_TEST(test_namespace_object)
{
	get(PREFIX "/namespaces/emojivoto");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	ck_assert_str_eq(r.name, "emojivoto");
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto");
	get(PREFIX "/namespaces/emojivoto/");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
}
END_TEST

START_TEST(test_namespace_edges)
{
	get(PREFIX "/namespaces/emojivoto/edges");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/edges");
	get(PREFIX "/namespaces/emojivoto/edges/");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
}
END_TEST

START_TEST(test_namespaced_list)
{
	get(PREFIX "/namespaces/shop/deployments");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "shop", NULL);
	ck_assert_str_eq(r.namespace_name, "shop");
	/* Deliberate fix of defect 19: the namespace is part of the selfLink. */
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments");

	get(PREFIX "/namespaces/shop/deployments/");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "shop", NULL);
	get(PREFIX "/namespaces/kube-system/pods");
	assert_metrics(SMI_KIND_POD, SMI_SCOPE_NAMESPACE_LIST, "kube-system", NULL);
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/kube-system/pods");
}
END_TEST

START_TEST(test_namespaced_object)
{
	get(PREFIX "/namespaces/emojivoto/deployments/web");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/deployments/web");

	get(PREFIX "/namespaces/emojivoto/deployments/web/");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");

	/* Object names are DNS-1123 subdomains: dots are fine. */
	get(PREFIX "/namespaces/emojivoto/pods/web.v2-7f8455487f-rw9h5");
	assert_metrics(SMI_KIND_POD, SMI_SCOPE_OBJECT, "emojivoto", "web.v2-7f8455487f-rw9h5");
	assert_self_link(
	    "/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/pods/web.v2-7f8455487f-rw9h5");

	get(PREFIX "/namespaces/default/statefulsets/db");
	assert_metrics(SMI_KIND_STATEFULSET, SMI_SCOPE_OBJECT, "default", "db");
	get(PREFIX "/namespaces/default/jobs/migrate-1");
	assert_metrics(SMI_KIND_JOB, SMI_SCOPE_OBJECT, "default", "migrate-1");
}
END_TEST

START_TEST(test_namespaced_edges)
{
	get(PREFIX "/namespaces/emojivoto/deployments/web/edges");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	assert_self_link(
	    "/apis/metrics.smi-spec.io/v1alpha1/namespaces/emojivoto/deployments/web/edges");
	get(PREFIX "/namespaces/emojivoto/deployments/web/edges/");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	get(PREFIX "/namespaces/emojivoto/daemonsets/agent/edges");
	assert_metrics(SMI_KIND_DAEMONSET, SMI_SCOPE_EDGES, "emojivoto", "agent");
}
END_TEST

START_TEST(test_not_found_routes)
{
	static const char *const paths[] = {
	    PREFIX "/widgets",
	    PREFIX "/edges",
	    PREFIX "/deployments/foo",
	    PREFIX "/deployments/foo/edges",
	    PREFIX "/pods/web/edges",
	    PREFIX "/namespaces/shop/widgets",
	    PREFIX "/namespaces/shop/widgets/web",
	    PREFIX "/namespaces/shop/widgets/web/edges",
	    PREFIX "/namespaces/shop/namespaces",
	    PREFIX "/namespaces/shop/namespaces/other",
	    PREFIX "/namespaces/shop/namespaces/other/edges",
	    PREFIX "/namespaces/shop/edges/web",
	    PREFIX "/namespaces/shop/deployments/web/other",
	    PREFIX "/namespaces/shop/deployments/web/edges/more",
	    PREFIX "/namespaces/shop/deployments/web/edges/more/and/more",
	    PREFIX "/Deployments",
	    PREFIX "/deployment",
	    PREFIX "/trafficsplits",
	    PREFIX "/namespaces/shop/trafficsplits/split",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		get(paths[i]);
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 404, "%s: type %d code %d (%s)",
		              paths[i], r.type, r.code, r.message);
		ck_assert_str_eq(r.reason, "NotFound");
	}
}
END_TEST

/* "edges" is only special as the last segment after an object. */
START_TEST(test_names_called_edges)
{
	get(PREFIX "/namespaces/edges");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "edges");
	get(PREFIX "/namespaces/edges/edges");
	assert_metrics(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "edges");
	assert_self_link("/apis/metrics.smi-spec.io/v1alpha1/namespaces/edges/edges");
	get(PREFIX "/namespaces/edges/deployments");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "edges", NULL);
	get(PREFIX "/namespaces/shop/deployments/edges");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "shop", "edges");
	get(PREFIX "/namespaces/shop/deployments/edges/edges");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "shop", "edges");
}
END_TEST

/* Kinds the adapter does not answer are 404, like unknown plurals. */
START_TEST(test_unsupported_kinds)
{
	route_limits only_deploy = limits;
	only_deploy.supported_kinds = UINT64_C(1) << SMI_KIND_DEPLOYMENT;

	static const char *const paths[] = {
	    PREFIX "/jobs",
	    PREFIX "/namespaces",
	    PREFIX "/namespaces/shop",
	    PREFIX "/namespaces/shop/edges",
	    PREFIX "/namespaces/shop/jobs",
	    PREFIX "/namespaces/shop/jobs/migrate",
	    PREFIX "/namespaces/shop/jobs/migrate/edges",
	    PREFIX "/namespaces/shop/pods/web-1",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		router_route("GET", paths[i], NULL, 0, &only_deploy, &r);
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 404, "%s: type %d code %d",
		              paths[i], r.type, r.code);
		ck_assert_str_eq(r.reason, "NotFound");
	}
	/* A namespaced kind works without the Namespace kind. */
	router_route("GET", PREFIX "/namespaces/shop/deployments/web", NULL, 0, &only_deploy, &r);
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "shop", "web");
	router_route("GET", PREFIX "/deployments", NULL, 0, &only_deploy, &r);
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
}
END_TEST

/* ---- name validation ---- */

typedef struct bad_path {
	const char *path;
	const char *shown; /* must appear in the message */
} bad_path;

static const bad_path bad_names[] = {
    {PREFIX "/namespaces/Shop/deployments/web", "Shop"},
    {PREFIX "/namespaces/shop/deployments/Web", "Web"},
    {PREFIX "/namespaces/-shop/deployments", "-shop"},
    {PREFIX "/namespaces/shop-/deployments", "shop-"},
    {PREFIX "/namespaces/shop/deployments/-web", "-web"},
    {PREFIX "/namespaces/shop/deployments/web-", "web-"},
    {PREFIX "/namespaces/shop/deployments/web\"}or vector(1)#", "web\"}or vector(1)#"},
    {PREFIX "/namespaces/shop/deployments/web\"}or vector(1)#/edges", "web\"}or vector(1)#"},
    {PREFIX "/namespaces/web\"}or vector(1)#/deployments", "web\"}or vector(1)#"},
    {PREFIX "/namespaces/web\"}or vector(1)#", "web\"}or vector(1)#"},
    {PREFIX "/namespaces/shop/deployments/a{b}", "a{b}"},
    {PREFIX "/namespaces/a{b}/edges", "a{b}"},
    {PREFIX "/namespaces/shop/deployments/we\tb", "we\\x09b"},
    {PREFIX "/namespaces/shop/deployments/we\x7f"
            "b",
     "we\\x7fb"},
    {PREFIX "/namespaces/sh\x01op/pods", "sh\\x01op"},
    {PREFIX "/namespaces/shop/deployments/..", ".."},
    {PREFIX "/namespaces/shop/deployments/.", "."},
    {PREFIX "/namespaces/../deployments/web", ".."},
    {PREFIX "/namespaces/shop/deployments/a..b", "a..b"},
    {PREFIX "/namespaces/shop/deployments/.web", ".web"},
    {PREFIX "/namespaces/shop/deployments/web.", "web."},
    {PREFIX "/namespaces/shop/deployments/web_1", "web_1"},
    {PREFIX "/namespaces/shop/deployments/w\xc3\xa9"
            "b",
     "w\\xc3\\xa9b"},
    /* Namespace names are labels: no dots. */
    {PREFIX "/namespaces/a.b", "a.b"},
    {PREFIX "/namespaces/a.b/edges", "a.b"},
    {PREFIX "/namespaces/a.b/deployments/web", "a.b"},
};

START_TEST(test_invalid_names)
{
	const bad_path *c = &bad_names[_i];
	get(c->path);
	ck_assert_msg(r.type == ROUTE_ERROR, "%s routed", c->path);
	ck_assert_msg(r.code == 400, "%s: code %d (%s)", c->path, r.code, r.message);
	ck_assert_str_eq(r.reason, "BadRequest");
	ck_assert_msg(strstr(r.message, c->shown) != NULL, "message \"%s\" does not show \"%s\"",
	              r.message, c->shown);
	/* The message never carries raw control or non-ASCII bytes. */
	for (const char *p = r.message; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
		              "raw byte 0x%02x in message", (unsigned char)*p);
}
END_TEST

static void repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

START_TEST(test_name_lengths)
{
	char label63[64], label64[65], path[1024], name[300];
	repeat(label63, 'a', 63);
	repeat(label64, 'a', 64);

	snprintf(path, sizeof path, PREFIX "/namespaces/%s/deployments/web", label63);
	get(path);
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, label63, "web");

	snprintf(path, sizeof path, PREFIX "/namespaces/%s/deployments/web", label64);
	get(path);
	assert_error(400, "BadRequest");
	snprintf(path, sizeof path, PREFIX "/namespaces/%s", label64);
	get(path);
	assert_error(400, "BadRequest");

	/* An object name of 253 bytes in labels of <= 63 is valid ... */
	snprintf(name, sizeof name, "%s.%s.%s.%.61s", label63, label63, label63, label63);
	ck_assert_uint_eq(strlen(name), 253);
	snprintf(path, sizeof path, PREFIX "/namespaces/shop/pods/%s", name);
	get(path);
	assert_metrics(SMI_KIND_POD, SMI_SCOPE_OBJECT, "shop", name);
	char expected[1024];
	snprintf(expected, sizeof expected,
	         "/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/pods/%s", name);
	assert_self_link(expected);

	/* ... 254 is not, nor is one label of 64. */
	snprintf(name, sizeof name, "%s.%s.%s.%.62s", label63, label63, label63, label63);
	ck_assert_uint_eq(strlen(name), 254);
	snprintf(path, sizeof path, PREFIX "/namespaces/shop/pods/%s", name);
	get(path);
	assert_error(400, "BadRequest");
	snprintf(path, sizeof path, PREFIX "/namespaces/shop/pods/%s", label64);
	get(path);
	assert_error(400, "BadRequest");
}
END_TEST

START_TEST(test_dns_validators)
{
	ck_assert(router_valid_dns_label("a"));
	ck_assert(router_valid_dns_label("0"));
	ck_assert(router_valid_dns_label("kube-system"));
	ck_assert(router_valid_dns_label("a-b-c9"));
	ck_assert(!router_valid_dns_label(""));
	ck_assert(!router_valid_dns_label("-a"));
	ck_assert(!router_valid_dns_label("a-"));
	ck_assert(!router_valid_dns_label("A"));
	ck_assert(!router_valid_dns_label("a.b"));
	ck_assert(!router_valid_dns_label("a_b"));
	ck_assert(!router_valid_dns_label("a b"));

	ck_assert(router_valid_dns_subdomain("a"));
	ck_assert(router_valid_dns_subdomain("a.b"));
	ck_assert(router_valid_dns_subdomain("web.v2"));
	ck_assert(router_valid_dns_subdomain("a-1.b-2.c"));
	ck_assert(!router_valid_dns_subdomain(""));
	ck_assert(!router_valid_dns_subdomain("."));
	ck_assert(!router_valid_dns_subdomain(".."));
	ck_assert(!router_valid_dns_subdomain("a..b"));
	ck_assert(!router_valid_dns_subdomain(".a"));
	ck_assert(!router_valid_dns_subdomain("a."));
	ck_assert(!router_valid_dns_subdomain("a.-b"));
	ck_assert(!router_valid_dns_subdomain("a-.b"));
	ck_assert(!router_valid_dns_subdomain("A.b"));
	ck_assert(!router_valid_dns_subdomain("a/b"));
}
END_TEST

/* ---- the window parameter t ---- */

START_TEST(test_window_default)
{
	get(PREFIX "/namespaces/emojivoto/deployments/web");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	ck_assert_int_eq(r.window_ns, 30 * SEC);
	ck_assert_uint_eq(r.request.window_seconds, 30);
	ck_assert_uint_eq(r.timeout_ms, 0);

	/* Other defaults come from the limits, not a constant. */
	route_limits l = limits;
	l.window_default_seconds = 60;
	router_route("GET", PREFIX "/deployments", NULL, 0, &l, &r);
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.request.window_seconds, 60);
	ck_assert_int_eq(r.window_ns, 60 * SEC);

	/* Unrelated parameters are ignored. */
	get_with(PREFIX "/deployments", "pretty", "true");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.request.window_seconds, 30);
}
END_TEST

typedef struct window_case {
	const char *t;
	uint32_t seconds;
} window_case;

static const window_case good_windows[] = {
    {"5m", 300},   {"1m15s", 75}, {"1.5m", 90},        {"30s", 30},
    {"90s", 90},   {"10s", 10}, /* the minimum itself */
    {"1h", 3600},               /* the maximum itself */
    {"60m", 3600}, {"0.5m", 30},  {"1m0.5s30.5s", 91}, {"20000ms", 20},
};

START_TEST(test_window_valid)
{
	const window_case *c = &good_windows[_i];
	get_with(PREFIX "/namespaces/emojivoto/deployments/web", "t", c->t);
	ck_assert_msg(r.type == ROUTE_METRICS, "t=%s: code %d %s", c->t, r.code, r.message);
	ck_assert_uint_eq(r.request.window_seconds, c->seconds);
	ck_assert_int_eq(r.window_ns, (int64_t)c->seconds * SEC);
}
END_TEST

static const char *const bad_windows[] = {
    "5",                                   /* no unit */
    "1d",                                  /* no such unit */
    "",                                    /* empty */
    "500ms",                               /* not whole seconds */
    "1.5s",                                /* not whole seconds */
    "30s1ns",                              /* not whole seconds */
    "-5m",                                 /* negative */
    "0",                                   /* zero */
    "0s",     "5s",                        /* below the 10 s minimum */
    "9s",     "3601s",                     /* above the 1 h maximum */
    "2h",     "1h0m1s", "99999999999999h", /* overflow */
    "abc",    "5m ",    " 5m",
    "5M",     "5m\"}",
};

START_TEST(test_window_invalid)
{
	const char *t = bad_windows[_i];
	get_with(PREFIX "/namespaces/emojivoto/deployments/web", "t", t);
	ck_assert_msg(r.type == ROUTE_ERROR, "t=\"%s\" accepted", t);
	ck_assert_msg(r.code == 400, "t=\"%s\": code %d", t, r.code);
	ck_assert_str_eq(r.reason, "BadRequest");
	ck_assert_msg(strstr(r.message, "window") != NULL, "message \"%s\"", r.message);
}
END_TEST

START_TEST(test_window_bare_key)
{
	/* "?t" without a value is an empty window, not the default. */
	get_with(PREFIX "/deployments", "t", NULL);
	assert_error(400, "BadRequest");
}
END_TEST

START_TEST(test_window_messages)
{
	get_with(PREFIX "/deployments", "t", "5s");
	assert_error(400, "BadRequest");
	/* The bounds are named in Go duration format. */
	ck_assert_msg(strstr(r.message, "10s") && strstr(r.message, "1h0m0s"), "%s", r.message);

	get_with(PREFIX "/deployments", "t", "500ms");
	assert_error(400, "BadRequest");
	ck_assert_msg(strstr(r.message, "500ms") != NULL, "%s", r.message);

	get_with(PREFIX "/deployments", "t", "1d");
	assert_error(400, "BadRequest");
	ck_assert_msg(strstr(r.message, "1d") != NULL, "%s", r.message);
}
END_TEST

START_TEST(test_window_duplicate)
{
	route_param p[] = {{"t", "5m"}, {"t", "5m"}};
	router_route("GET", PREFIX "/deployments", p, 2, &limits, &r);
	assert_error(400, "BadRequest");

	route_param q[] = {{"t", "5m"}, {"t", "1m"}};
	router_route("GET", PREFIX "/namespaces/shop/deployments/web", q, 2, &limits, &r);
	assert_error(400, "BadRequest");
	ck_assert_msg(strstr(r.message, "\"t\"") != NULL, "%s", r.message);
}
END_TEST

START_TEST(test_window_every_scope)
{
	static const char *const paths[] = {
	    PREFIX "/deployments",
	    PREFIX "/namespaces",
	    PREFIX "/namespaces/shop",
	    PREFIX "/namespaces/shop/edges",
	    PREFIX "/namespaces/shop/deployments",
	    PREFIX "/namespaces/shop/deployments/web",
	    PREFIX "/namespaces/shop/deployments/web/edges",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		get_with(paths[i], "t", "2m");
		ck_assert_msg(r.type == ROUTE_METRICS, "%s", paths[i]);
		ck_assert_uint_eq(r.request.window_seconds, 120);
		get_with(paths[i], "t", "1d");
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 400, "%s", paths[i]);
	}
}
END_TEST

/* ---- other parameters ---- */

START_TEST(test_timeout)
{
	get_with(PREFIX "/deployments", "timeout", "10s");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.timeout_ms, 10000);

	get_with(PREFIX "/deployments", "timeout", "1500ms");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.timeout_ms, 1500);

	/* Capped at one minute, at least 1 ms. */
	get_with(PREFIX "/deployments", "timeout", "5m");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.timeout_ms, 60000);
	get_with(PREFIX "/deployments", "timeout", "10us");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.timeout_ms, 1);

	/* The window is unaffected. */
	ck_assert_uint_eq(r.request.window_seconds, 30);

	static const char *const bad[] = {"", "10", "abc", "0s", "-1s", "1d"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		get_with(PREFIX "/deployments", "timeout", bad[i]);
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 400, "timeout=\"%s\"", bad[i]);
		ck_assert_str_eq(r.reason, "BadRequest");
	}

	route_param p[] = {{"timeout", "1s"}, {"timeout", "2s"}};
	router_route("GET", PREFIX "/deployments", p, 2, &limits, &r);
	assert_error(400, "BadRequest");

	route_param both[] = {{"timeout", "2s"}, {"t", "1m"}};
	router_route("GET", PREFIX "/namespaces/shop/pods", both, 2, &limits, &r);
	ck_assert_int_eq(r.type, ROUTE_METRICS);
	ck_assert_uint_eq(r.timeout_ms, 2000);
	ck_assert_uint_eq(r.request.window_seconds, 60);
}
END_TEST

START_TEST(test_watch)
{
	get_with(PREFIX "/deployments", "watch", "true");
	assert_error(405, "MethodNotAllowed");
	ck_assert_ptr_nonnull(r.details_kind);
	ck_assert_str_eq(r.details_kind, "deployments");

	get_with(PREFIX "/namespaces/shop/pods/web-1", "watch", "1");
	assert_error(405, "MethodNotAllowed");

	get_with(PREFIX "/namespaces/shop/deployments", "watch", "false");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
}
END_TEST

START_TEST(test_selectors)
{
	get_with(PREFIX "/namespaces/shop/deployments", "labelSelector", "app=web");
	assert_error(400, "BadRequest");
	ck_assert_msg(strstr(r.message, "labelSelector") != NULL, "%s", r.message);

	get_with(PREFIX "/deployments", "labelSelector", "app");
	assert_error(400, "BadRequest");

	get_with(PREFIX "/deployments", "fieldSelector", "metadata.name=web");
	assert_error(400, "BadRequest");
	ck_assert_msg(strstr(r.message, "fieldSelector") != NULL, "%s", r.message);

	/* kubectl sends an empty selector on plain lists. */
	get_with(PREFIX "/deployments", "labelSelector", "");
	ck_assert_int_eq(r.type, ROUTE_METRICS);
}
END_TEST

START_TEST(test_methods)
{
	static const char *const methods[] = {
	    "POST",    "PUT", "PATCH",   "DELETE",
	    "OPTIONS", "get", "CONNECT", "A-VERY-LONG-METHOD-NAME-INDEED"};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		router_route(methods[i], PREFIX "/namespaces/shop/deployments/web", NULL, 0,
		             &limits, &r);
		ck_assert_msg(r.type == ROUTE_ERROR && r.code == 405, "%s: code %d", methods[i],
		              r.code);
		ck_assert_str_eq(r.reason, "MethodNotAllowed");
	}
	router_route("POST", "/apis", NULL, 0, &limits, &r);
	assert_error(405, "MethodNotAllowed");

	/* Regression (found by fuzz_router): the method is the client's bytes
	 * and must be escaped in the message like any echoed value. */
	router_route("\x01\xff", PREFIX "/namespaces/shop/deployments/web", NULL, 0, &limits, &r);
	assert_error(405, "MethodNotAllowed");
	ck_assert_str_eq(r.message,
	                 "\\x01\\xff is not supported: this API is read-only (GET and HEAD)");

	router_route("HEAD", PREFIX "/namespaces/shop/deployments/web", NULL, 0, &limits, &r);
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "shop", "web");
	ck_assert(r.head);
	router_route("HEAD", PREFIX, NULL, 0, &limits, &r);
	ck_assert_int_eq(r.type, ROUTE_API_RESOURCES);
	ck_assert(r.head);
	router_route("GET", PREFIX, NULL, 0, &limits, &r);
	ck_assert(!r.head);
}
END_TEST

START_TEST(test_health)
{
	get("/livez");
	ck_assert_int_eq(r.type, ROUTE_HEALTH);
	ck_assert_str_eq(r.health_check, "livez");
	ck_assert(!r.verbose);
	get("/readyz");
	ck_assert_int_eq(r.type, ROUTE_HEALTH);
	ck_assert_str_eq(r.health_check, "readyz");
	get("/healthz");
	ck_assert_int_eq(r.type, ROUTE_HEALTH);
	ck_assert_str_eq(r.health_check, "healthz");
	get("/healthz/");
	ck_assert_int_eq(r.type, ROUTE_HEALTH);

	get_with("/readyz", "verbose", NULL);
	ck_assert_int_eq(r.type, ROUTE_HEALTH);
	ck_assert(r.verbose);
	get_with("/livez", "verbose", "true");
	ck_assert(r.verbose);

	router_route("HEAD", "/livez", NULL, 0, &limits, &r);
	ck_assert_int_eq(r.type, ROUTE_HEALTH);
	ck_assert(r.head);

	get("/version");
	ck_assert_int_eq(r.type, ROUTE_VERSION);

	get("/livez/ping");
	assert_error(404, "NotFound");
	get("/status");
	assert_error(404, "NotFound");
}
END_TEST

START_TEST(test_long_path)
{
	size_t n = 5000;
	char *path = malloc(n + 1);
	ck_assert_ptr_nonnull(path);
	memset(path, 'a', n);
	memcpy(path, PREFIX "/namespaces/shop/pods/", strlen(PREFIX "/namespaces/shop/pods/"));
	path[n] = '\0';
	get(path);
	ck_assert_int_eq(r.type, ROUTE_ERROR);
	ck_assert(r.code == 414 || r.code == 400 || r.code == 404);
	free(path);
}
END_TEST

/* The route is fully reset between calls: no state leaks from the last. */
START_TEST(test_route_reset)
{
	get_with(PREFIX "/namespaces/shop/deployments/web", "timeout", "3s");
	ck_assert_uint_eq(r.timeout_ms, 3000);
	get(PREFIX "/namespaces/shop/deployments");
	assert_metrics(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "shop", NULL);
	ck_assert_uint_eq(r.timeout_ms, 0);
	ck_assert_int_eq(r.code, 0);
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *routes = tcase_create("routes");
	tcase_add_test(routes, test_discovery_routes);
	tcase_add_test(routes, test_unknown_top_level_paths);
	tcase_add_test(routes, test_cluster_list);
	tcase_add_test(routes, test_namespaces_list);
	tcase_add_test(routes, test_namespace_object);
	tcase_add_test(routes, test_namespace_edges);
	tcase_add_test(routes, test_namespaced_list);
	tcase_add_test(routes, test_namespaced_object);
	tcase_add_test(routes, test_namespaced_edges);
	tcase_add_test(routes, test_not_found_routes);
	tcase_add_test(routes, test_unsupported_kinds);
	tcase_add_test(routes, test_names_called_edges);
	tcase_add_test(routes, test_methods);
	tcase_add_test(routes, test_health);
	tcase_add_test(routes, test_long_path);
	tcase_add_test(routes, test_route_reset);
	suite_add_tcase(s, routes);

	TCase *names = tcase_create("names");
	tcase_add_loop_test(names, test_invalid_names, 0, COUNT(bad_names));
	tcase_add_test(names, test_name_lengths);
	tcase_add_test(names, test_dns_validators);
	suite_add_tcase(s, names);

	TCase *params = tcase_create("params");
	tcase_add_test(params, test_window_default);
	tcase_add_loop_test(params, test_window_valid, 0, COUNT(good_windows));
	tcase_add_loop_test(params, test_window_invalid, 0, COUNT(bad_windows));
	tcase_add_test(params, test_window_bare_key);
	tcase_add_test(params, test_window_messages);
	tcase_add_test(params, test_window_duplicate);
	tcase_add_test(params, test_window_every_scope);
	tcase_add_test(params, test_timeout);
	tcase_add_test(params, test_watch);
	tcase_add_test(params, test_selectors);
	suite_add_tcase(s, params);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(router_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

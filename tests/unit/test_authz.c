/* test_authz: request attributes for every route of the reference's table
 * (the namespaces/<ns>/edges quirk included), the SubjectAccessReview spec
 * (the cache key), answer parsing, the 403 message builder, always-allow
 * paths, and the allow/deny caches' TTLs against a fake kube-apiserver
 * (libmicrohttpd + GnuTLS, a throw-away self-signed certificate). */
#include <check.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/authz.h"

static char tmp_dir[256];

/* ---- attributes ---- */

typedef struct attr_case {
	const char *method, *path, *query_key, *query_value;
	bool resource;
	const char *verb, *ns, *resource_name, *subresource, *name;
} attr_case;

#define P "/apis/metrics.smi-spec.io/v1alpha1"

static const attr_case attr_cases[] = {
    {"GET", P, NULL, NULL, false, "get", "", "", "", ""},
    {"GET", P "/", NULL, NULL, false, "get", "", "", "", ""},
    {"HEAD", P, NULL, NULL, false, "head", "", "", "", ""},
    {"GET", P "/namespaces", NULL, NULL, true, "list", "", "namespaces", "", ""},
    {"GET", P "/namespaces/emojivoto", NULL, NULL, true, "get", "emojivoto", "namespaces", "",
     "emojivoto"},
    {"GET", P "/namespaces/emojivoto/edges", NULL, NULL, true, "list", "emojivoto", "edges", "",
     ""},
    {"GET", P "/pods", NULL, NULL, true, "list", "", "pods", "", ""},
    {"GET", P "/namespaces/emojivoto/deployments", NULL, NULL, true, "list", "emojivoto",
     "deployments", "", ""},
    {"GET", P "/namespaces/emojivoto/deployments/web", NULL, NULL, true, "get", "emojivoto",
     "deployments", "", "web"},
    {"HEAD", P "/namespaces/emojivoto/deployments/web", NULL, NULL, true, "get", "emojivoto",
     "deployments", "", "web"},
    {"GET", P "/namespaces/emojivoto/deployments/web/edges", NULL, NULL, true, "get", "emojivoto",
     "deployments", "edges", "web"},
    {"GET", P "/pods", "watch", "true", true, "watch", "", "pods", "", ""},
    {"GET", P "/pods", "watch", "1", true, "watch", "", "pods", "", ""},
    {"GET", P "/pods", "watch", "false", true, "list", "", "pods", "", ""},
    {"GET", P "/pods", "fieldSelector", "metadata.name=web-1", true, "list", "", "pods", "",
     "web-1"},
    {"GET", P "/namespaces/emojivoto/status", NULL, NULL, true, "get", "emojivoto", "namespaces",
     "status", "emojivoto"},
    {"GET", P "/watch/pods", NULL, NULL, true, "watch", "", "pods", "", ""},
    {"POST", P "/pods", NULL, NULL, true, "create", "", "pods", "", ""},
    {"DELETE", P "/pods", NULL, NULL, true, "deletecollection", "", "pods", "", ""},
    {"GET", "/apis", NULL, NULL, false, "get", "", "", "", ""},
    {"GET", "/apis/metrics.smi-spec.io", NULL, NULL, false, "get", "", "", "", ""},
    {"GET", "/version", NULL, NULL, false, "get", "", "", "", ""},
    {"GET", "/livez/ping", NULL, NULL, false, "get", "", "", "", ""},
    {"GET", "/openapi/v2", NULL, NULL, false, "get", "", "", "", ""},
    {"GET", "/api/v1/pods", NULL, NULL, true, "list", "", "pods", "", ""},
};

START_TEST(test_attributes)
{
	const attr_case *c = &attr_cases[_i];
	route_param q = {c->query_key, c->query_value};
	authz_attributes at;
	authz_attributes_from_request(c->method, c->path, &q, c->query_key ? 1 : 0, &at);
	ck_assert_msg(at.resource_request == c->resource, "%s", c->path);
	ck_assert_str_eq(at.verb, c->verb);
	ck_assert_str_eq(at.path, c->path);
	ck_assert_str_eq(at.namespace_name, c->ns);
	ck_assert_str_eq(at.resource, c->resource_name);
	ck_assert_str_eq(at.subresource, c->subresource);
	ck_assert_str_eq(at.name, c->name);
	if (c->resource && strncmp(c->path, "/apis/", 6) == 0) {
		ck_assert_str_eq(at.group, "metrics.smi-spec.io");
		ck_assert_str_eq(at.version, "v1alpha1");
	}
}
END_TEST

START_TEST(test_too_long_path)
{
	char path[AUTHZ_PATH_MAX + 10];
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	authz_attributes at;
	authz_attributes_from_request("GET", path, NULL, 0, &at);
	ck_assert(at.too_long);
}
END_TEST

/* ---- the review spec and answer ---- */

static identity alice(void)
{
	identity id = {0};
	identity_set_user(&id, "alice@example.com");
	identity_add_group(&id, "sre");
	identity_add_group(&id, "system:authenticated");
	identity_add_extra(&id, "z.example.com/team", "payments");
	identity_add_extra(&id, "a.example.com/scope", "read");
	return id;
}

START_TEST(test_sar_spec_golden)
{
	identity id = alice();
	authz_attributes at;
	authz_attributes_from_request("GET", P "/namespaces/emojivoto/deployments/web/edges", NULL,
	                              0, &at);
	char *spec = authz_sar_spec_json(&id, &at);
	/* Go's field order, empty fields omitted, extra keys sorted. */
	ck_assert_str_eq(
	    spec, "{\"resourceAttributes\":{\"namespace\":\"emojivoto\",\"verb\":\"get\","
	          "\"group\":\"metrics.smi-spec.io\",\"version\":\"v1alpha1\",\"resource\":"
	          "\"deployments\","
	          "\"subresource\":\"edges\",\"name\":\"web\"},\"user\":\"alice@example.com\","
	          "\"groups\":[\"sre\",\"system:authenticated\"],\"extra\":{\"a.example.com/"
	          "scope\":[\"read\"],"
	          "\"z.example.com/team\":[\"payments\"]}}");
	char *body = authz_sar_body(spec);
	const char head[] =
	    "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
	    "\"spec\":";
	ck_assert(strncmp(body, head, strlen(head)) == 0);
	ck_assert_str_eq(
	    body + strlen(head),
	    "{\"resourceAttributes\":{\"namespace\":\"emojivoto\",\"verb\":\"get\","
	    "\"group\":\"metrics.smi-spec.io\",\"version\":\"v1alpha1\",\"resource\":"
	    "\"deployments\","
	    "\"subresource\":\"edges\",\"name\":\"web\"},\"user\":\"alice@example.com\","
	    "\"groups\":[\"sre\",\"system:authenticated\"],\"extra\":{\"a.example.com/"
	    "scope\":[\"read\"],"
	    "\"z.example.com/team\":[\"payments\"]}}}");
	free(body);
	free(spec);

	identity agg = {0};
	identity_set_user(&agg, "system:aggregator");
	identity_add_group(&agg, "system:authenticated");
	agg.uid = strdup("u-1");
	authz_attributes_from_request("GET", "/openapi/v2", NULL, 0, &at);
	spec = authz_sar_spec_json(&agg, &at);
	ck_assert_str_eq(spec,
	                 "{\"nonResourceAttributes\":{\"path\":\"/openapi/v2\",\"verb\":\"get\"},"
	                 "\"user\":\"system:aggregator\",\"groups\":[\"system:authenticated\"],"
	                 "\"uid\":\"u-1\"}");
	free(spec);
	identity_clear(&agg);
	identity_clear(&id);
}
END_TEST

START_TEST(test_sar_spec_keys_differ)
{
	/* Groups in received order are part of the key. */
	identity a = {0}, b = {0};
	identity_set_user(&a, "u");
	identity_set_user(&b, "u");
	identity_add_group(&a, "x");
	identity_add_group(&a, "y");
	identity_add_group(&b, "y");
	identity_add_group(&b, "x");
	authz_attributes at;
	authz_attributes_from_request("GET", P "/pods", NULL, 0, &at);
	char *ka = authz_sar_spec_json(&a, &at), *kb = authz_sar_spec_json(&b, &at);
	ck_assert_str_ne(ka, kb);
	free(ka);
	free(kb);
	identity_clear(&a);
	identity_clear(&b);
}
END_TEST

START_TEST(test_sar_answers)
{
	authz_decision d;
	char reason[256];
	ck_assert_int_eq(authz_parse_sar("{\"status\":{\"allowed\":true,\"reason\":\"RBAC: ok\"}}",
	                                 &d, reason, sizeof reason),
	                 0);
	ck_assert_int_eq(d, AUTHZ_ALLOW);
	ck_assert_str_eq(reason, "RBAC: ok");
	ck_assert_int_eq(
	    authz_parse_sar("{\"status\":{\"allowed\":false}}", &d, reason, sizeof reason), 0);
	ck_assert_int_eq(d, AUTHZ_DENY);
	ck_assert_int_eq(
	    authz_parse_sar("{\"status\":{\"allowed\":false,\"denied\":true,\"reason\":\"no\"}}",
	                    &d, reason, sizeof reason),
	    0);
	ck_assert_int_eq(d, AUTHZ_DENY);
	ck_assert_int_eq(authz_parse_sar("{\"status\":{\"allowed\":true,\"denied\":true}}", &d,
	                                 reason, sizeof reason),
	                 0);
	ck_assert_int_eq(d, AUTHZ_DENY);
	ck_assert_int_eq(
	    authz_parse_sar("{\"status\":{\"allowed\":true,\"evaluationError\":\"role missing\"}}",
	                    &d, reason, sizeof reason),
	    0);
	ck_assert_int_eq(d, AUTHZ_ALLOW);
	ck_assert_int_eq(authz_parse_sar("[]", &d, reason, sizeof reason), -1);
}
END_TEST

/* ---- 403 ---- */

static void expect_forbidden(const char *method, const char *path, const char *user,
                             const char *reason, const char *expected)
{
	identity id = {0};
	identity_set_user(&id, user);
	authz_attributes at;
	authz_attributes_from_request(method, path, NULL, 0, &at);
	char *body = authz_forbidden_status(&id, &at, reason);
	ck_assert_str_eq(body, expected);
	free(body);
	identity_clear(&id);
}

START_TEST(test_forbidden_messages)
{
	expect_forbidden(
	    "GET", P "/namespaces/emojivoto/deployments/web/edges", "alice@example.com", "",
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"deployments.metrics.smi-spec.io \\\"web\\\" is forbidden: User "
	    "\\\"alice@example.com\\\" cannot get resource \\\"deployments/edges\\\" in API group "
	    "\\\"metrics.smi-spec.io\\\" in the namespace "
	    "\\\"emojivoto\\\"\",\"reason\":\"Forbidden\","
	    "\"details\":{\"name\":\"web\",\"group\":\"metrics.smi-spec.io\",\"kind\":"
	    "\"deployments\"},"
	    "\"code\":403}");
	expect_forbidden(
	    "GET", P "/pods", "bob", "no RBAC rule",
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"pods.metrics.smi-spec.io is forbidden: User \\\"bob\\\" cannot list "
	    "resource "
	    "\\\"pods\\\" in API group \\\"metrics.smi-spec.io\\\" at the cluster scope: no RBAC "
	    "rule\","
	    "\"reason\":\"Forbidden\",\"details\":{\"group\":\"metrics.smi-spec.io\",\"kind\":"
	    "\"pods\"},"
	    "\"code\":403}");
	expect_forbidden(
	    "GET", P "/namespaces/emojivoto/edges", "bob", NULL,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"edges.metrics.smi-spec.io is forbidden: User \\\"bob\\\" cannot list "
	    "resource "
	    "\\\"edges\\\" in API group \\\"metrics.smi-spec.io\\\" in the namespace "
	    "\\\"emojivoto\\\"\","
	    "\"reason\":\"Forbidden\",\"details\":{\"group\":\"metrics.smi-spec.io\",\"kind\":"
	    "\"edges\"},"
	    "\"code\":403}");
	/* Non-resource: empty details; & < > escaped, quotes Go-quoted. */
	expect_forbidden(
	    "GET", "/openapi/<v2>", "a\"b&c", NULL,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	    "\"message\":\"forbidden: User \\\"a\\\\\\\"b&amp;c\\\" cannot get path "
	    "\\\"/openapi/&lt;v2&gt;\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403}");
}
END_TEST

/* ---- decisions and caches against a fake kube-apiserver ---- */

static atomic_int sar_calls;
static atomic_int fail_mode; /* 1: answer 500 */

static enum MHD_Result fake_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **ctx)
{
	(void)cls, (void)url, (void)method, (void)version;
	char **body = (char **)ctx;
	if (!*body) {
		*body = calloc(1, 1);
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = strlen(*body);
		*body = realloc(*body, n + *upload_size + 1);
		memcpy(*body + n, upload, *upload_size);
		(*body)[n + *upload_size] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&sar_calls, 1);
	bool allowed = strstr(*body, "\"user\":\"alice\"") != NULL;
	char answer[256];
	snprintf(answer, sizeof answer,
	         "{\"kind\":\"SubjectAccessReview\",\"status\":{\"allowed\":%s}}",
	         allowed ? "true" : "false");
	int code = atomic_load(&fail_mode) ? 500 : 201;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, r);
	MHD_destroy_response(r);
	free(*body);
	*body = NULL;
	return ok;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	char *buf = calloc(1, 65536);
	ck_assert_uint_gt(fread(buf, 1, 65535, f), 0);
	fclose(f);
	return buf;
}

START_TEST(test_decisions_and_cache_ttls)
{
	char cert[300], key[300], cmd[1200], kubeconfig[300];
	snprintf(cert, sizeof cert, "%s/fake.crt", tmp_dir);
	snprintf(key, sizeof key, "%s/fake.key", tmp_dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
	         "-subj /CN=fake "
	         "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
	         key, cert);
	ck_assert_int_eq(system(cmd), 0);
	char *cert_pem = slurp(cert), *key_pem = slurp(key);
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, fake_access, NULL,
	    MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END);
	ck_assert_ptr_nonnull(d);
	int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;

	snprintf(kubeconfig, sizeof kubeconfig, "%s/kubeconfig", tmp_dir);
	FILE *f = fopen(kubeconfig, "w");
	fprintf(f,
	        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
	        "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:%d\", "
	        "certificate-authority: fake.crt}}]\n"
	        "users: [{name: u, user: {token: sa-token}}]\n"
	        "contexts: [{name: c, context: {cluster: c, user: u}}]\n",
	        port);
	fclose(f);
	kube_settings ks = {.kubeconfig = kubeconfig, .timeout_ms = 5000, .retry_base_ms = 10};
	char err[512];
	kube_client *kube = kube_client_new(&ks, err, sizeof err);
	ck_assert_msg(kube != NULL, "%s", err);

	char *paths[] = {"/healthz", "/readyz", "/livez", "/metrics*", NULL};
	char *groups[] = {"system:masters", NULL};
	config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.authorization.webhook = true;
	cfg.authorization.allow_ttl_ms = 1000;
	cfg.authorization.deny_ttl_ms = 2500;
	cfg.authorization.always_allow_paths = paths;
	cfg.authorization.always_allow_groups = groups;
	authz *z = authz_new(&cfg, kube);

	identity a = {0}, b = {0}, m = {0};
	identity_set_user(&a, "alice");
	identity_set_user(&b, "bob");
	identity_set_user(&m, "admin");
	identity_add_group(&m, "system:masters");
	authz_attributes at;
	char reason[256];
	authz_attributes_from_request("GET", P "/pods", NULL, 0, &at);

	ck_assert_int_eq(authz_authorize(z, &a, &at, reason, sizeof reason), AUTHZ_ALLOW);
	ck_assert_int_eq(authz_authorize(z, &a, &at, reason, sizeof reason), AUTHZ_ALLOW);
	ck_assert_int_eq(authz_authorize(z, &b, &at, reason, sizeof reason), AUTHZ_DENY);
	ck_assert_int_eq(authz_authorize(z, &b, &at, reason, sizeof reason), AUTHZ_DENY);
	ck_assert_int_eq(atomic_load(&sar_calls), 2);
	/* always-allowed: no call */
	ck_assert_int_eq(authz_authorize(z, &m, &at, reason, sizeof reason), AUTHZ_ALLOW);
	authz_attributes health;
	authz_attributes_from_request("GET", "/livez", NULL, 0, &health);
	ck_assert_int_eq(authz_authorize(z, &b, &health, reason, sizeof reason), AUTHZ_ALLOW);
	authz_attributes_from_request("GET", "/metrics/x", NULL, 0, &health);
	ck_assert(authz_always_allowed_path(z, &health));
	authz_attributes_from_request("GET", "/livez/ping", NULL, 0, &health);
	ck_assert(!authz_always_allowed_path(z, &health));
	ck_assert_int_eq(atomic_load(&sar_calls), 2);

	/* After 1.2 s the allow has expired, the deny (2.5 s) has not. */
	usleep(1200 * 1000);
	ck_assert_int_eq(authz_authorize(z, &a, &at, reason, sizeof reason), AUTHZ_ALLOW);
	ck_assert_int_eq(authz_authorize(z, &b, &at, reason, sizeof reason), AUTHZ_DENY);
	ck_assert_int_eq(atomic_load(&sar_calls), 3);

	/* Failures: retried (5 attempts), answered as errors, never cached. */
	atomic_store(&fail_mode, 1);
	authz_attributes_from_request("GET", P "/deployments", NULL, 0, &at);
	ck_assert_int_eq(authz_authorize(z, &a, &at, reason, sizeof reason), AUTHZ_ERROR);
	ck_assert_int_eq(atomic_load(&sar_calls), 8);
	atomic_store(&fail_mode, 0);
	ck_assert_int_eq(authz_authorize(z, &a, &at, reason, sizeof reason), AUTHZ_ALLOW);
	ck_assert_int_eq(atomic_load(&sar_calls), 9);

	cache_stats stats;
	authz_cache_stats(z, &stats);
	ck_assert_uint_ge(stats.hits, 3);

	identity_clear(&a);
	identity_clear(&b);
	identity_clear(&m);
	authz_free(z);
	kube_client_free(kube);
	MHD_stop_daemon(d);
	free(cert_pem);
	free(key_pem);
	unlink(cert);
	unlink(key);
	unlink(kubeconfig);
}
END_TEST

static Suite *authz_suite(void)
{
	Suite *s = suite_create("authz");
	TCase *t = tcase_create("authz");
	tcase_add_loop_test(t, test_attributes, 0, (int)(sizeof attr_cases / sizeof attr_cases[0]));
	tcase_add_test(t, test_too_long_path);
	tcase_add_test(t, test_sar_spec_golden);
	tcase_add_test(t, test_sar_spec_keys_differ);
	tcase_add_test(t, test_sar_answers);
	tcase_add_test(t, test_forbidden_messages);
	suite_add_tcase(s, t);
	TCase *live = tcase_create("webhook");
	tcase_set_timeout(live, 30);
	tcase_add_test(live, test_decisions_and_cache_ttls);
	suite_add_tcase(s, live);
	return s;
}

int main(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp_dir, sizeof tmp_dir, "%s/test_authz.XXXXXX", base);
	if (!mkdtemp(tmp_dir))
		return EXIT_FAILURE;
	SRunner *r = srunner_create(authz_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	rmdir(tmp_dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_config: config_load on hand-written files: YAML and JSON give one
 * snapshot, defaults, one exact "FILE:LINE: KEY: problem" per error class,
 * adapter option lookups and query overrides. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* By path: automake puts -I. (autoconf's own config.h) before -Icore. */
#include "../../core/config.h"

/* Created in main(); forked test processes inherit the name. */
static char tmp_dir[512];

/* The keys every valid file needs, on three lines. */
#define SERVER_LINE  "server: {tlsCertFile: c, tlsKeyFile: k}\n"
#define AUTH_LINE    "auth: {requestheaderClientCAFile: ca}\n"
#define ADAPTER_LINE "adapter: {name: linkerd}\n"
#define REQUIRED     SERVER_LINE AUTH_LINE ADAPTER_LINE

/* Writes `len` bytes of text to tmp_dir/name; path_out gets the path. */
static void write_file(const char *name, const char *text, size_t len, char *path_out,
                       size_t path_size)
{
	snprintf(path_out, path_size, "%s/%s", tmp_dir, name);
	FILE *f = fopen(path_out, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads text from a file called `name`; the file is gone afterwards. */
static config *load_text(const char *name, const char *text, char *path_out, size_t path_size,
                         char *err, size_t err_size)
{
	write_file(name, text, strlen(text), path_out, path_size);
	config *cfg = config_load(path_out, "/usr/lib/smi-metrics/adapters", err, err_size);
	ck_assert_int_eq(unlink(path_out), 0);
	return cfg;
}

/* Loads text that must fail with exactly FILE + expected_suffix. */
static void expect_error(const char *name, const char *text, const char *expected_suffix)
{
	char path[PATH_MAX], err[1024], expected[PATH_MAX + 512];
	config *cfg = load_text(name, text, path, sizeof path, err, sizeof err);
	snprintf(expected, sizeof expected, "%s%s", path, expected_suffix);
	if (cfg != NULL)
		config_free(cfg);
	ck_assert_msg(cfg == NULL, "%s: loaded, expected %s", name, expected);
	ck_assert_str_eq(err, expected);
}

/* Loads text that must succeed. */
static config *expect_config(const char *name, const char *text)
{
	char path[PATH_MAX], err[1024] = "";
	config *cfg = load_text(name, text, path, sizeof path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s: %s", name, err);
	return cfg;
}

/* ---- one snapshot from YAML and JSON ---- */

static const char full_yaml[] = "# every key set\n"
                                "server:\n"
                                "  listen: \"[::]:9443\"\n"
                                "  tlsCertFile: /etc/smi/tls.crt\n"
                                "  tlsKeyFile: /etc/smi/tls.key\n"
                                "  requestTimeout: 1m\n"
                                "  maxConnections: 2048\n"
                                "auth:\n"
                                "  requestheaderClientCAFile: /etc/smi/front-proxy-ca.crt\n"
                                "  requestheaderAllowedNames:\n"
                                "    - front-proxy-client\n"
                                "    - 'aggregator'\n"
                                "admin:\n"
                                "  listen: \"\"\n"
                                "prometheus:\n"
                                "  url: https://prometheus.monitoring:9090\n"
                                "  timeout: 2500ms\n"
                                "window:\n"
                                "  default: 1m\n"
                                "  min: 15s\n"
                                "  max: 6h\n"
                                "adapter:\n"
                                "  name: linkerd\n"
                                "  path: /opt/adapters/linkerd.so\n"
                                "  adaptersDir: /opt/adapters\n"
                                "  options:\n"
                                "    meshNamespace: linkerd\n"
                                "    strict: true\n"
                                "    maxSeries: 5000\n"
                                "  queries:\n"
                                "    counts: |\n"
                                "      sum(increase(response_total[{{window}}]))\n"
                                "log:\n"
                                "  level: debug\n";

static const char full_json[] =
    "{\n"
    "\t\"server\": {\n"
    "\t\t\"listen\": \"[::]:9443\",\n"
    "\t\t\"tlsCertFile\": \"/etc/smi/tls.crt\",\n"
    "\t\t\"tlsKeyFile\": \"/etc/smi/tls.key\",\n"
    "\t\t\"requestTimeout\": \"1m\",\n"
    "\t\t\"maxConnections\": 2048\n"
    "\t},\n"
    "\t\"auth\": {\n"
    "\t\t\"requestheaderClientCAFile\": \"/etc/smi/front-proxy-ca.crt\",\n"
    "\t\t\"requestheaderAllowedNames\": [\"front-proxy-client\", \"aggregator\"]\n"
    "\t},\n"
    "\t\"admin\": {\"listen\": \"\"},\n"
    "\t\"prometheus\": {\"url\": \"https://prometheus.monitoring:9090\", \"timeout\": "
    "\"2500ms\"},\n"
    "\t\"window\": {\"default\": \"1m\", \"min\": \"15s\", \"max\": \"6h\"},\n"
    "\t\"adapter\": {\n"
    "\t\t\"name\": \"linkerd\",\n"
    "\t\t\"path\": \"/opt/adapters/linkerd.so\",\n"
    "\t\t\"adaptersDir\": \"/opt/adapters\",\n"
    "\t\t\"options\": {\"meshNamespace\": \"linkerd\", \"strict\": true, \"maxSeries\": "
    "5000},\n"
    "\t\t\"queries\": {\"counts\": \"sum(increase(response_total[{{window}}]))\\n\"}\n"
    "\t},\n"
    "\t\"log\": {\"level\": \"debug\"}\n"
    "}\n";

static void check_full_snapshot(config *cfg)
{
	const char *text = NULL;
	bool flag = false;
	int64_t number = 0;
	char err[512];

	ck_assert_str_eq(cfg->server.listen, "[::]:9443");
	ck_assert_str_eq(cfg->server.tls_cert_file, "/etc/smi/tls.crt");
	ck_assert_str_eq(cfg->server.tls_key_file, "/etc/smi/tls.key");
	ck_assert_uint_eq(cfg->server.request_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->server.max_connections, 2048);
	ck_assert_str_eq(cfg->auth.requestheader_client_ca_file, "/etc/smi/front-proxy-ca.crt");
	ck_assert_uint_eq(cfg->auth.n_requestheader_allowed_names, 2);
	ck_assert_str_eq(cfg->auth.requestheader_allowed_names[0], "front-proxy-client");
	ck_assert_str_eq(cfg->auth.requestheader_allowed_names[1], "aggregator");
	ck_assert_ptr_null(cfg->auth.requestheader_allowed_names[2]);
	ck_assert_str_eq(cfg->admin.listen, "");
	ck_assert_str_eq(cfg->prometheus.url, "https://prometheus.monitoring:9090");
	ck_assert_uint_eq(cfg->prometheus.timeout_ms, 2500);
	ck_assert_uint_eq(cfg->window.default_seconds, 60);
	ck_assert_uint_eq(cfg->window.min_seconds, 15);
	ck_assert_uint_eq(cfg->window.max_seconds, 6 * 3600);
	ck_assert_str_eq(cfg->adapter.name, "linkerd");
	ck_assert_str_eq(cfg->adapter.path, "/opt/adapters/linkerd.so");
	ck_assert_str_eq(cfg->adapter.adapters_dir, "/opt/adapters");
	ck_assert_str_eq(cfg->log.level, "debug");

	ck_assert_int_eq(config_option_string(cfg, "meshNamespace", &text, err, sizeof err), 0);
	ck_assert_str_eq(text, "linkerd");
	ck_assert_int_eq(config_option_bool(cfg, "strict", &flag, err, sizeof err), 0);
	ck_assert(flag);
	ck_assert_int_eq(config_option_int(cfg, "maxSeries", &number, err, sizeof err), 0);
	ck_assert_int_eq(number, 5000);
	ck_assert(!config_unused_option(cfg, err, sizeof err));
	ck_assert_str_eq(config_query_override(cfg, "counts"),
	                 "sum(increase(response_total[{{window}}]))\n");
}

START_TEST(test_yaml_and_json_give_one_snapshot)
{
	config *from_yaml = expect_config("full.yaml", full_yaml);
	config *from_json = expect_config("full.json", full_json);
	check_full_snapshot(from_yaml);
	check_full_snapshot(from_json);
	config_free(from_yaml);
	config_free(from_json);
}
END_TEST

/* ---- defaults ---- */

START_TEST(test_defaults)
{
	config *cfg = expect_config("minimal.yaml", "server:\n"
	                                            "  tlsCertFile: /tls/crt\n"
	                                            "  tlsKeyFile: /tls/key\n"
	                                            "auth:\n"
	                                            "  requestheaderClientCAFile: /tls/ca\n"
	                                            "adapter:\n"
	                                            "  name: linkerd\n");
	ck_assert_str_eq(cfg->server.listen, "0.0.0.0:8443");
	ck_assert_uint_eq(cfg->server.request_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->server.max_connections, 1024);
	ck_assert_uint_eq(cfg->auth.n_requestheader_allowed_names, 0);
	ck_assert_ptr_nonnull(cfg->auth.requestheader_allowed_names);
	ck_assert_ptr_null(cfg->auth.requestheader_allowed_names[0]);
	ck_assert_str_eq(cfg->admin.listen, "0.0.0.0:8080");
	ck_assert_str_eq(cfg->prometheus.url, "http://127.0.0.1:9090");
	ck_assert_uint_eq(cfg->prometheus.timeout_ms, 10000);
	ck_assert_uint_eq(cfg->window.default_seconds, 30);
	ck_assert_uint_eq(cfg->window.min_seconds, 10);
	ck_assert_uint_eq(cfg->window.max_seconds, 86400);
	ck_assert_ptr_null(cfg->adapter.path);
	ck_assert_str_eq(cfg->adapter.adapters_dir, "/usr/lib/smi-metrics/adapters");
	ck_assert_ptr_null(cfg->adapter.options);
	ck_assert_ptr_null(cfg->adapter.queries);
	ck_assert_str_eq(cfg->log.level, "info");
	ck_assert(strstr(cfg->path, "/minimal.yaml") != NULL);
	config_free(cfg);
}
END_TEST

/* The prometheus keys of issue 8: every one set, and their defaults. */
START_TEST(test_prometheus_backend_keys)
{
	config *cfg = expect_config("backend.yaml",
	                            REQUIRED "prometheus:\n"
	                                     "  url: https://vmselect:8481/select/0/prometheus/\n"
	                                     "  method: post\n"
	                                     "  maxResponseBytes: 1048576\n"
	                                     "  bearerTokenFile: /var/run/secrets/token\n"
	                                     "  tls:\n"
	                                     "    caFile: /tls/ca.crt\n"
	                                     "    certFile: /tls/client.crt\n"
	                                     "    keyFile: /tls/client.key\n"
	                                     "    serverName: vmselect.monitoring.svc\n"
	                                     "    insecureSkipVerify: false\n"
	                                     "  headers:\n"
	                                     "    X-Scope-OrgID: team-a\n"
	                                     "    AccountID: 42\n");
	ck_assert_str_eq(cfg->prometheus.url, "https://vmselect:8481/select/0/prometheus/");
	ck_assert_str_eq(cfg->prometheus.method, "post");
	ck_assert_uint_eq(cfg->prometheus.max_response_bytes, 1048576);
	ck_assert_str_eq(cfg->prometheus.bearer_token_file, "/var/run/secrets/token");
	ck_assert_ptr_null(cfg->prometheus.basic_auth_username_file);
	ck_assert_str_eq(cfg->prometheus.tls_ca_file, "/tls/ca.crt");
	ck_assert_str_eq(cfg->prometheus.tls_cert_file, "/tls/client.crt");
	ck_assert_str_eq(cfg->prometheus.tls_key_file, "/tls/client.key");
	ck_assert_str_eq(cfg->prometheus.tls_server_name, "vmselect.monitoring.svc");
	ck_assert(!cfg->prometheus.tls_insecure_skip_verify);
	ck_assert_uint_eq(cfg->prometheus.n_headers, 2);
	ck_assert_str_eq(cfg->prometheus.header_names[0], "X-Scope-OrgID");
	ck_assert_str_eq(cfg->prometheus.header_values[0], "team-a");
	ck_assert_str_eq(cfg->prometheus.header_names[1], "AccountID");
	ck_assert_str_eq(cfg->prometheus.header_values[1], "42");
	config_free(cfg);

	cfg = expect_config("basic.yaml", REQUIRED "prometheus:\n"
	                                           "  basicAuth:\n"
	                                           "    usernameFile: /u\n"
	                                           "    passwordFile: /p\n"
	                                           "  headers: {}\n"
	                                           "  tls:\n");
	ck_assert_str_eq(cfg->prometheus.basic_auth_username_file, "/u");
	ck_assert_str_eq(cfg->prometheus.basic_auth_password_file, "/p");
	ck_assert_ptr_null(cfg->prometheus.bearer_token_file);
	ck_assert_uint_eq(cfg->prometheus.n_headers, 0);
	config_free(cfg);

	cfg = expect_config("defaults.yaml", REQUIRED);
	ck_assert_str_eq(cfg->prometheus.method, "auto");
	ck_assert_uint_eq(cfg->prometheus.max_response_bytes, 32u * 1024 * 1024);
	ck_assert_ptr_null(cfg->prometheus.bearer_token_file);
	ck_assert_ptr_null(cfg->prometheus.basic_auth_username_file);
	ck_assert_ptr_null(cfg->prometheus.basic_auth_password_file);
	ck_assert_ptr_null(cfg->prometheus.tls_ca_file);
	ck_assert_ptr_null(cfg->prometheus.tls_cert_file);
	ck_assert_ptr_null(cfg->prometheus.tls_server_name);
	ck_assert(!cfg->prometheus.tls_insecure_skip_verify);
	ck_assert_uint_eq(cfg->prometheus.n_headers, 0);
	config_free(cfg);
}
END_TEST

/* A section whose keys are all commented out is YAML null: defaults. */
START_TEST(test_null_sections_are_empty)
{
	config *cfg = expect_config("null-sections.yaml", REQUIRED "admin:\n"
	                                                           "  # listen: 0.0.0.0:9000\n"
	                                                           "window:\n"
	                                                           "log: ~\n");
	ck_assert_str_eq(cfg->admin.listen, "0.0.0.0:8080");
	ck_assert_uint_eq(cfg->window.default_seconds, 30);
	ck_assert_str_eq(cfg->log.level, "info");
	config_free(cfg);
}
END_TEST

/* Plain scalars that look like numbers or booleans still read as strings. */
START_TEST(test_plain_scalars_read_as_strings)
{
	config *cfg =
	    expect_config("plain.yaml", "server: {tlsCertFile: 123, tlsKeyFile: true}\n" AUTH_LINE
	                                "adapter: {name: 42}\n");
	ck_assert_str_eq(cfg->server.tls_cert_file, "123");
	ck_assert_str_eq(cfg->server.tls_key_file, "true");
	ck_assert_str_eq(cfg->adapter.name, "42");
	config_free(cfg);
}
END_TEST

START_TEST(test_listen_forms)
{
	static const char *const good[] = {"0.0.0.0:8443", "127.0.0.1:1",  "10.0.0.1:65535",
	                                   "'[::]:8443'",  "'[::1]:9443'", "'[fe80::1]:1'"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char text[256];
		snprintf(
		    text, sizeof text,
		    "server: {tlsCertFile: c, tlsKeyFile: k, listen: %s}\n" AUTH_LINE ADAPTER_LINE,
		    good[i]);
		config_free(expect_config("listen.yaml", text));
	}
}
END_TEST

START_TEST(test_path_without_name)
{
	config *cfg = expect_config("path-only.yaml",
	                            SERVER_LINE AUTH_LINE "adapter: {path: /opt/mesh.so}\n");
	ck_assert_ptr_null(cfg->adapter.name);
	ck_assert_str_eq(cfg->adapter.path, "/opt/mesh.so");
	config_free(cfg);

	/* No compiled-in directory and none configured: left NULL. */
	char path[PATH_MAX], err[512];
	write_file("no-dir.yaml", REQUIRED, strlen(REQUIRED), path, sizeof path);
	cfg = config_load(path, NULL, err, sizeof err);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->adapter.adapters_dir);
	config_free(cfg);
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* Standalone defaults, and the in-cluster ones. */
START_TEST(test_auth_defaults)
{
	config *cfg = expect_config("auth-standalone.yaml", REQUIRED);
	ck_assert(!cfg->kubernetes.enabled);
	ck_assert(!cfg->authorization.webhook);
	ck_assert(!cfg->auth.anonymous);
	ck_assert(cfg->auth.skip_lookup);
	ck_assert_ptr_null(cfg->auth.requestheader_username_headers); /* built-in applies */
	ck_assert_ptr_null(cfg->auth.client_ca_file);
	ck_assert(!cfg->auth.requestheader_allowed_names_set);
	ck_assert_uint_eq(cfg->auth.refresh_interval_ms, 60000);
	ck_assert_uint_eq(cfg->auth.token_cache_ttl_ms, 10000);
	ck_assert_uint_eq(cfg->server.cert_reload_interval_ms, 60000);
	ck_assert_uint_eq(cfg->authorization.allow_ttl_ms, 10000);
	ck_assert_uint_eq(cfg->authorization.deny_ttl_ms, 10000);
	ck_assert_str_eq(cfg->authorization.always_allow_paths[0], "/healthz");
	ck_assert_str_eq(cfg->authorization.always_allow_paths[2], "/livez");
	ck_assert_ptr_null(cfg->authorization.always_allow_paths[3]);
	ck_assert_str_eq(cfg->authorization.always_allow_groups[0], "system:masters");
	config_free(cfg);

	cfg = expect_config(
	    "auth-cluster.yaml", SERVER_LINE ADAPTER_LINE
	    "kubernetes: {inCluster: true, tokenFile: /t, caFile: /c}\n"
	    "auth: {requestheaderUsernameHeaders: [X-User], requestheaderAllowedNames: []}\n");
	ck_assert(cfg->kubernetes.enabled && cfg->kubernetes.in_cluster);
	ck_assert_str_eq(cfg->kubernetes.token_file, "/t");
	ck_assert_uint_eq(cfg->kubernetes.timeout_ms, 10000);
	ck_assert_uint_eq(cfg->kubernetes.token_refresh_ms, 60000);
	ck_assert(cfg->authorization.webhook);
	ck_assert(cfg->auth.anonymous);
	ck_assert(!cfg->auth.skip_lookup);
	ck_assert_ptr_null(cfg->auth.requestheader_client_ca_file); /* from the ConfigMap */
	ck_assert_str_eq(cfg->auth.requestheader_username_headers[0], "X-User");
	ck_assert(cfg->auth.requestheader_allowed_names_set);
	ck_assert_uint_eq(cfg->auth.n_requestheader_allowed_names, 0);
	config_free(cfg);
}
END_TEST

/* The shipped example must stay loadable.  `make check` exports srcdir. */
START_TEST(test_example_config_loads)
{
	const char *srcdir = getenv("srcdir");
	char path[PATH_MAX], err[1024] = "";
	snprintf(path, sizeof path, "%s/examples/config.yaml", srcdir != NULL ? srcdir : ".");
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof path, "%s/../../examples/config.yaml",
		         srcdir != NULL ? srcdir : ".");
	config *cfg = config_load(path, "/usr/lib/smi-metrics/adapters", err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->adapter.name, "linkerd");
	config_free(cfg);
}
END_TEST

/* ---- every error class, with the message written out by hand ---- */

typedef struct error_case {
	const char *text;
	const char *message; /* what follows the file name */
} error_case;

static const error_case error_cases[] = {
    /* wrong types */
    {"server:\n"
     "  tlsCertFile: c\n"
     "  tlsKeyFile: k\n"
     "  listen:\n"
     "    - 0.0.0.0:8443\n" AUTH_LINE ADAPTER_LINE,
     ":4: server.listen: expected a string, got a sequence"},
    {REQUIRED "log:\n"
              "  level: {name: debug}\n",
     ":5: log.level: expected a string, got a mapping"},
    {REQUIRED "prometheus:\n"
              "  url:\n",
     ":5: prometheus.url: expected a string, got null"},
    {"server: 5\n" AUTH_LINE ADAPTER_LINE, ":1: server: expected a mapping, got \"5\""},
    {SERVER_LINE "auth: [ca]\n" ADAPTER_LINE, ":2: auth: expected a mapping, got a sequence"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, maxConnections: 1.5}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.maxConnections: expected an integer, got \"1.5\""},
    {"server: {tlsCertFile: c, tlsKeyFile: k, maxConnections: \"42\"}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.maxConnections: expected an integer, got a quoted string \"42\""},
    {"server: {tlsCertFile: c, tlsKeyFile: k, maxConnections: 010}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.maxConnections: expected an integer, got \"010\""},
    {SERVER_LINE "auth:\n"
                 "  requestheaderClientCAFile: ca\n"
                 "  requestheaderAllowedNames: front-proxy-client\n" ADAPTER_LINE,
     ":4: auth.requestheaderAllowedNames: expected a sequence, got \"front-proxy-client\""},
    {SERVER_LINE "auth:\n"
                 "  requestheaderClientCAFile: ca\n"
                 "  requestheaderAllowedNames:\n"
                 "    - front-proxy-client\n"
                 "    - {cn: aggregator}\n" ADAPTER_LINE,
     ":6: auth.requestheaderAllowedNames[1]: expected a string, got a mapping"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  name: linkerd\n"
                           "  options: [a, b]\n",
     ":5: adapter.options: expected a mapping, got a sequence"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  name: linkerd\n"
                           "  options:\n"
                           "    labels: [a, b]\n",
     ":6: adapter.options.labels: expected a string, boolean or integer, got a sequence"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  name: linkerd\n"
                           "  options:\n"
                           "    unset:\n",
     ":6: adapter.options.unset: expected a string, boolean or integer, got null"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  name: linkerd\n"
                           "  queries:\n"
                           "    counts: {text: x}\n",
     ":6: adapter.queries.counts: expected a string, got a mapping"},

    /* unknown keys */
    {REQUIRED "prometheus:\n"
              "  url: http://prom:9090\n"
              "  tiemout: 5s\n",
     ":6: prometheus.tiemout: unknown key (known: url, timeout, method, maxResponseBytes, "
     "bearerTokenFile, basicAuth, tls, headers)"},
    {REQUIRED "serverr: {}\n", ":4: serverr: unknown key (known: server, auth, admin, prometheus, "
                               "window, adapter, cache, log, kubernetes, authorization)"},
    {REQUIRED "\"bad\\nkey\": 1\n",
     ":4: bad?key: unknown key (known: server, auth, admin, prometheus, window, adapter, cache, "
     "log, kubernetes, authorization)"},

    /* required keys: the line is the parent mapping's */
    {"server:\n"
     "  tlsKeyFile: k\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.tlsCertFile: required key is missing"},
    {"# no server section at all\n"
     "\n" AUTH_LINE ADAPTER_LINE,
     ":3: server.tlsCertFile: required key is missing"},
    {SERVER_LINE "auth: {}\n" ADAPTER_LINE,
     ":2: auth.requestheaderClientCAFile: required key is missing"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  adaptersDir: /opt/adapters\n",
     ":3: adapter.name: required key is missing (unless adapter.path is set)"},

    /* values */
    {"server: {tlsCertFile: \"\", tlsKeyFile: k}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.tlsCertFile: must not be empty"},
    {SERVER_LINE "auth:\n"
                 "  requestheaderClientCAFile: ca\n"
                 "  requestheaderAllowedNames: [\"\"]\n" ADAPTER_LINE,
     ":4: auth.requestheaderAllowedNames[0]: must not be empty"},
    {SERVER_LINE AUTH_LINE "adapter:\n"
                           "  name: linkerd\n"
                           "  queries: {counts: ''}\n",
     ":5: adapter.queries.counts: must not be empty"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, maxConnections: 0}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.maxConnections: 0 is out of range (1..100000)"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, maxConnections: 100001}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.maxConnections: 100001 is out of range (1..100000)"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, requestTimeout: 30}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.requestTimeout: invalid duration \"30\": missing unit in duration "
     "(e.g. 30s, 1m30s, 500ms)"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, requestTimeout: 90s}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.requestTimeout: 1m30s is out of range (1s..1m0s)"},
    {REQUIRED "prometheus: {timeout: 50ms}\n",
     ":4: prometheus.timeout: 50ms is out of range (100ms..1m0s)"},
    {REQUIRED "prometheus: {timeout: 100.5ms}\n",
     ":4: prometheus.timeout: 100.5ms is not a whole number of milliseconds"},
    {REQUIRED "window: {default: 1500ms}\n",
     ":4: window.default: 1.5s is not a whole number of seconds"},
    {REQUIRED "window: {max: 0s}\n", ":4: window.max: 0s is out of range (1s..8760h0m0s)"},
    {REQUIRED "window:\n"
              "  min: 10s\n"
              "  default: 5s\n",
     ":6: window.default: 5s is below window.min 10s"},
    {REQUIRED "window:\n"
              "  max: 1h\n"
              "  default: 2h\n",
     ":6: window.default: 2h0m0s is above window.max 1h0m0s"},
    /* default left at 30s: blame the bound that was written */
    {REQUIRED "window:\n"
              "  min: 1m\n",
     ":5: window.default: 30s is below window.min 1m0s"},
    {REQUIRED "prometheus: {url: \"ftp://prom:9090\"}\n",
     ":4: prometheus.url: \"ftp://prom:9090\" must start with http:// or https://"},
    {REQUIRED "prometheus: {url: \"http://\"}\n", ":4: prometheus.url: \"http://\" has no host"},

    /* prometheus: backends, credentials, TLS, headers (issue 8) */
    {REQUIRED "prometheus: {url: \"http://alice:hunter2@prom:9090/x\"}\n",
     ":4: prometheus.url: must not contain user:password@; use prometheus.basicAuth "
     "(usernameFile, passwordFile)"},
    {REQUIRED "prometheus: {method: put}\n",
     ":4: prometheus.method: \"put\" is not one of auto, get, post"},
    {REQUIRED "prometheus: {method: GET}\n",
     ":4: prometheus.method: \"GET\" is not one of auto, get, post"},
    {REQUIRED "prometheus: {maxResponseBytes: 1000}\n",
     ":4: prometheus.maxResponseBytes: 1000 is out of range (65536..1073741824)"},
    {REQUIRED "prometheus: {maxResponseBytes: 32Mi}\n",
     ":4: prometheus.maxResponseBytes: expected an integer, got \"32Mi\""},
    {REQUIRED "prometheus:\n"
              "  bearerTokenFile: /var/run/token\n"
              "  basicAuth: {usernameFile: /u, passwordFile: /p}\n",
     ":5: prometheus.bearerTokenFile: set either bearerTokenFile or basicAuth, not both"},
    {REQUIRED "prometheus:\n"
              "  bearerTokenFile: \"\"\n",
     ":5: prometheus.bearerTokenFile: must not be empty"},
    {REQUIRED "prometheus:\n"
              "  basicAuth:\n"
              "    usernameFile: /u\n",
     ":5: prometheus.basicAuth.passwordFile: required key is missing"},
    {REQUIRED "prometheus:\n"
              "  basicAuth: {user: alice}\n",
     ":5: prometheus.basicAuth.user: unknown key (known: usernameFile, passwordFile)"},
    {REQUIRED "prometheus:\n"
              "  basicAuth: alice\n",
     ":5: prometheus.basicAuth: expected a mapping, got \"alice\""},
    {REQUIRED "prometheus:\n"
              "  tls:\n"
              "    caFile: /ca.crt\n",
     ":5: prometheus.tls: needs an https:// prometheus.url"},
    {REQUIRED "prometheus:\n"
              "  url: https://prom:9090\n"
              "  tls:\n"
              "    certFile: /client.crt\n",
     ":7: prometheus.tls.keyFile: required with certFile"},
    {REQUIRED "prometheus:\n"
              "  url: https://prom:9090\n"
              "  tls: {keyFile: /client.key}\n",
     ":6: prometheus.tls.certFile: required with keyFile"},
    {REQUIRED "prometheus:\n"
              "  url: https://prom:9090\n"
              "  tls:\n"
              "    serverName: \"prom.example/x\"\n",
     ":7: prometheus.tls.serverName: \"prom.example/x\" must be a DNS name or an IPv4 address"},
    {REQUIRED "prometheus:\n"
              "  url: https://prom:9090\n"
              "  tls: {insecureSkipVerify: yes}\n",
     ":6: prometheus.tls.insecureSkipVerify: expected a boolean (true or false), got \"yes\""},
    {REQUIRED "prometheus:\n"
              "  url: https://prom:9090\n"
              "  tls: {ca: /ca.crt}\n",
     ":6: prometheus.tls.ca: unknown key (known: caFile, certFile, keyFile, serverName, "
     "insecureSkipVerify)"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    Authorization: Bearer abc\n",
     ":6: prometheus.headers.Authorization: credentials are not taken from headers: use "
     "prometheus.bearerTokenFile or prometheus.basicAuth, which are read from files"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    host: prom\n",
     ":6: prometheus.headers.host: this header is set by smi-metrics itself"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    \"X Tenant\": a\n",
     ":6: prometheus.headers.X Tenant: the header name may only have letters, digits and "
     "!#$%&'*+-.^_`|~"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    X-Scope-OrgID: \"team-a\\r\\nX-Evil: 1\"\n",
     ":6: prometheus.headers.X-Scope-OrgID: the value must not contain line breaks or other "
     "control characters"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    X-Scope-OrgID: \"\"\n",
     ":6: prometheus.headers.X-Scope-OrgID: the value is empty"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    X-Scope-OrgID:\n",
     ":6: prometheus.headers.X-Scope-OrgID: expected a string, got null"},
    {REQUIRED "prometheus:\n"
              "  headers:\n"
              "    X-Scope-OrgID: team-a\n"
              "    x-scope-orgid: team-b\n",
     ":7: prometheus.headers.x-scope-orgid: the same header as line 6 (names ignore case)"},
    {REQUIRED "prometheus:\n"
              "  headers: [X-Scope-OrgID]\n",
     ":5: prometheus.headers: expected a mapping, got a sequence"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, listen: 8443}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.listen: \"8443\" is not IP:port with a numeric IP and a port in 1..65535 "
     "(e.g. 0.0.0.0:8443, [::]:8443)"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, listen: \"0.0.0.0:0\"}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.listen: \"0.0.0.0:0\" is not IP:port with a numeric IP and a port in "
     "1..65535 (e.g. 0.0.0.0:8443, [::]:8443)"},
    {REQUIRED "admin: {listen: \"127.0.0.1:70000\"}\n",
     ":4: admin.listen: \"127.0.0.1:70000\" is not IP:port with a numeric IP and a port in "
     "1..65535 (e.g. 0.0.0.0:8443, [::]:8443)"},
    {REQUIRED "admin: {listen: \"::1:8080\"}\n",
     ":4: admin.listen: \"::1:8080\" is not IP:port with a numeric IP and a port in "
     "1..65535 (e.g. 0.0.0.0:8443, [::]:8443)"},
    {REQUIRED "admin: {listen: \"localhost:8080\"}\n",
     ":4: admin.listen: \"localhost:8080\" is not IP:port with a numeric IP and a port in "
     "1..65535 (e.g. 0.0.0.0:8443, [::]:8443)"},
    {SERVER_LINE AUTH_LINE "adapter: {name: Linkerd}\n",
     ":3: adapter.name: \"Linkerd\" is not a valid adapter name ([a-z0-9][a-z0-9_-]*)"},
    {SERVER_LINE AUTH_LINE "adapter: {name: ../evil}\n",
     ":3: adapter.name: \"../evil\" is not a valid adapter name ([a-z0-9][a-z0-9_-]*)"},
    {REQUIRED "log: {level: verbose}\n",
     ":4: log.level: \"verbose\" is not one of error, warn, info, debug"},

    /* YAML features we refuse */
    {"server:\n"
     "  tlsCertFile: c\n"
     "  tlsKeyFile: k\n"
     "  tlsCertFile: d\n" AUTH_LINE ADAPTER_LINE,
     ":4: server.tlsCertFile: duplicate key (first at line 2)"},
    {"{\"log\": {\"level\": \"info\", \"level\": \"debug\"}}",
     ":1: log.level: duplicate key (first at line 1)"},
    {"server: *base\n", ":1: server: aliases are not supported"},
    {"server: &base {tlsCertFile: c, tlsKeyFile: k}\n",
     ":1: server: anchors and aliases are not supported"},
    {"server: {tlsCertFile: !!str 5, tlsKeyFile: k}\n",
     ":1: server.tlsCertFile: tags are not supported; quote the value to make it a string"},
    {"server: {tlsCertFile: \"a\\0b\", tlsKeyFile: k}\n",
     ":1: server.tlsCertFile: NUL characters are not allowed"},
    {"? [server]\n"
     ": {}\n",
     ":1: mapping keys must be strings"},
    {REQUIRED "---\n" REQUIRED, ":4: multiple documents are not supported"},
    {"- server\n", ":1: the top level must be a mapping, got a sequence"},
    {"[1, 2]", ":1: the top level must be a mapping, got a sequence"},
    {"hello\n", ":1: the top level must be a mapping, got \"hello\""},
    {"", ":1: the file is empty; expected a mapping"},
    {"# only a comment\n", ":1: the file is empty; expected a mapping"},

    /* syntax */
    {"server: [a, b\n", ":2: YAML syntax error: did not find expected ',' or ']'"},
    {"server:\n"
     "  tlsCertFile: c\n"
     " tlsKeyFile: k\n",
     ":3: YAML syntax error: did not find expected key"},
    {"{\"server\": {\"tlsCertFile\" \"c\"}}\n",
     ":1: YAML syntax error: did not find expected ',' or '}'"},
    {"server:\n"
     "  tlsCertFile: \xff\n",
     ":2: YAML syntax error: invalid leading UTF-8 octet"},

    /* authentication and authorization */
    {SERVER_LINE ADAPTER_LINE "kubernetes: {inCluster: false}\n",
     ":3: kubernetes: set exactly one of inCluster: true and kubeconfig"},
    {SERVER_LINE ADAPTER_LINE "kubernetes: {inCluster: true, kubeconfig: k}\n",
     ":3: kubernetes: set exactly one of inCluster: true and kubeconfig"},
    {SERVER_LINE ADAPTER_LINE "kubernetes: {kubeconfig: k, tokenFile: t}\n",
     ":3: kubernetes.tokenFile: only with inCluster: true (the kubeconfig names its own)"},
    {SERVER_LINE ADAPTER_LINE "kubernetes: {inCluster: yes}\n",
     ":3: kubernetes.inCluster: expected a boolean (true or false), got \"yes\""},
    {REQUIRED "authorization: {mode: Webhook}\n",
     ":4: authorization.mode: Webhook needs a cluster connection (the kubernetes section)"},
    {SERVER_LINE ADAPTER_LINE "kubernetes: {inCluster: true}\nauthorization: {mode: RBAC}\n",
     ":4: authorization.mode: \"RBAC\" is not one of AlwaysAllow, Webhook"},
    {REQUIRED "authorization: {alwaysAllowPaths: /livez}\n",
     ":4: authorization.alwaysAllowPaths: expected a sequence, got \"/livez\""},
    {SERVER_LINE ADAPTER_LINE "auth: {requestheaderClientCAFile: ca, anonymous: true}\n",
     ":3: auth.anonymous: true needs authorization.mode Webhook (AlwaysAllow would let anyone in)"},
    {SERVER_LINE ADAPTER_LINE "auth: {requestheaderClientCAFile: ca, skipLookup: false}\n",
     ":3: auth.skipLookup: false needs a cluster connection (the kubernetes section)"},
    {SERVER_LINE ADAPTER_LINE
     "auth: {requestheaderClientCAFile: ca, requestheaderGroupHeaders: [\"\"]}\n",
     ":3: auth.requestheaderGroupHeaders[0]: must not be empty"},
    {SERVER_LINE ADAPTER_LINE "auth: {requestheaderClientCAFile: ca, tokenCacheTTL: 2h}\n",
     ":3: auth.tokenCacheTTL: 2h0m0s is out of range (0s..1h0m0s)"},
    {"server: {tlsCertFile: c, tlsKeyFile: k, certReloadInterval: 2m}\n" AUTH_LINE ADAPTER_LINE,
     ":1: server.certReloadInterval: 2m0s is out of range (100ms..1m0s)"},
};

START_TEST(test_error_messages)
{
	char name[32];
	snprintf(name, sizeof name, "error-%d.yaml", _i);
	expect_error(name, error_cases[_i].text, error_cases[_i].message);
}
END_TEST

START_TEST(test_cannot_open)
{
	char path[PATH_MAX], err[512], expected[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/does-not-exist.yaml", tmp_dir);
	ck_assert_ptr_null(config_load(path, NULL, err, sizeof err));
	snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
	ck_assert_str_eq(err, expected);

	ck_assert_ptr_null(config_load(tmp_dir, NULL, err, sizeof err));
	snprintf(expected, sizeof expected, "%s: cannot read: Is a directory", tmp_dir);
	ck_assert_str_eq(err, expected);
}
END_TEST

/* Exactly 1 MiB loads; one byte more is refused before parsing. */
START_TEST(test_size_limit)
{
	const size_t limit = 1024 * 1024;
	char path[PATH_MAX], err[512], expected[PATH_MAX + 64];
	char *text = malloc(limit + 2);
	ck_assert_ptr_nonnull(text);
	memset(text, ' ', limit + 1);
	memcpy(text, REQUIRED "#", strlen(REQUIRED "#"));
	text[limit - 1] = '\n';

	write_file("1mib.yaml", text, limit, path, sizeof path);
	config *cfg = config_load(path, NULL, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(unlink(path), 0);

	text[limit - 1] = ' ';
	text[limit] = '\n';
	write_file("1mib-and-1.yaml", text, limit + 1, path, sizeof path);
	ck_assert_ptr_null(config_load(path, NULL, err, sizeof err));
	snprintf(expected, sizeof expected, "%s: file is larger than 1 MiB", path);
	ck_assert_str_eq(err, expected);
	ck_assert_int_eq(unlink(path), 0);
	free(text);
}
END_TEST

/* Hostile nesting stops at the depth limit instead of the stack's. */
START_TEST(test_nesting_limit)
{
	const size_t depth = 100000;
	char path[PATH_MAX], err[1024];
	char *text = malloc(depth + 8);
	ck_assert_ptr_nonnull(text);
	memcpy(text, "a: ", 3);
	memset(text + 3, '[', depth);
	text[depth + 3] = '\0';

	config *cfg = load_text("deep.yaml", text, path, sizeof path, err, sizeof err);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(err, ":1: a[0][0][0]") != NULL, "%s", err);
	ck_assert_msg(strstr(err, ": nested deeper than 32 levels") != NULL, "%s", err);
	free(text);
}
END_TEST

/* A too small buffer truncates; NULL means "no message wanted". */
START_TEST(test_error_buffer_sizes)
{
	char path[PATH_MAX], err[8];
	write_file("small-err.yaml", "[]", 2, path, sizeof path);
	ck_assert_ptr_null(config_load(path, NULL, err, sizeof err));
	ck_assert_uint_eq(strlen(err), sizeof err - 1);
	ck_assert_ptr_null(config_load(path, NULL, NULL, 0));
	ck_assert_int_eq(unlink(path), 0);
	config_free(NULL);
}
END_TEST

/* ---- adapter options ---- */

/* The comments are the line numbers the tests expect. */
static const char options_yaml[] = SERVER_LINE AUTH_LINE /* 1, 2 */
    "adapter:\n"                                         /* 3 */
    "  name: linkerd\n"                                  /* 4 */
    "  options:\n"                                       /* 5 */
    "    meshNamespace: linkerd\n"                       /* 6 */
    "    strict: true\n"                                 /* 7 */
    "    lenient: false\n"                               /* 8 */
    "    maxSeries: 5000\n"                              /* 9 */
    "    offset: -7\n"                                   /* 10 */
    "    quotedNumber: \"42\"\n"                         /* 11 */
    "    yesNo: yes\n"                                   /* 12 */
    "    hexNumber: 0x10\n"                              /* 13 */
    "    hugeNumber: 9223372036854775808\n";             /* 14 */

START_TEST(test_option_lookups)
{
	config *cfg = expect_config("options.yaml", options_yaml);
	char err[512], expected[PATH_MAX + 256];
	const char *text = "untouched";
	bool flag = false;
	int64_t number = 0;

	ck_assert_int_eq(config_option_string(cfg, "meshNamespace", &text, err, sizeof err), 0);
	ck_assert_str_eq(text, "linkerd");
	ck_assert_int_eq(config_option_bool(cfg, "strict", &flag, err, sizeof err), 0);
	ck_assert(flag);
	ck_assert_int_eq(config_option_bool(cfg, "lenient", &flag, err, sizeof err), 0);
	ck_assert(!flag);
	ck_assert_int_eq(config_option_int(cfg, "maxSeries", &number, err, sizeof err), 0);
	ck_assert_int_eq(number, 5000);
	ck_assert_int_eq(config_option_int(cfg, "offset", &number, err, sizeof err), 0);
	ck_assert_int_eq(number, -7);
	/* A plain number is also a string; a quoted one is only a string. */
	ck_assert_int_eq(config_option_string(cfg, "maxSeries", &text, err, sizeof err), 0);
	ck_assert_str_eq(text, "5000");
	ck_assert_int_eq(config_option_string(cfg, "quotedNumber", &text, err, sizeof err), 0);
	ck_assert_str_eq(text, "42");

	/* Absent: 1, and *out untouched. */
	text = "untouched";
	number = 99;
	ck_assert_int_eq(config_option_string(cfg, "absent", &text, err, sizeof err), 1);
	ck_assert_str_eq(text, "untouched");
	ck_assert_int_eq(config_option_int(cfg, "absent", &number, err, sizeof err), 1);
	ck_assert_int_eq(number, 99);

	ck_assert_int_eq(config_option_int(cfg, "quotedNumber", &number, err, sizeof err), -1);
	snprintf(expected, sizeof expected,
	         "%s:11: adapter.options.quotedNumber: expected an integer, got a quoted string "
	         "\"42\"",
	         cfg->path);
	ck_assert_str_eq(err, expected);
	ck_assert_int_eq(number, 99);

	ck_assert_int_eq(config_option_bool(cfg, "yesNo", &flag, err, sizeof err), -1);
	snprintf(expected, sizeof expected,
	         "%s:12: adapter.options.yesNo: expected a boolean (true or false), got \"yes\"",
	         cfg->path);
	ck_assert_str_eq(err, expected);

	ck_assert_int_eq(config_option_int(cfg, "hexNumber", &number, err, sizeof err), -1);
	snprintf(expected, sizeof expected,
	         "%s:13: adapter.options.hexNumber: expected an integer, got \"0x10\"", cfg->path);
	ck_assert_str_eq(err, expected);

	ck_assert_int_eq(config_option_int(cfg, "hugeNumber", &number, err, sizeof err), -1);
	snprintf(expected, sizeof expected,
	         "%s:14: adapter.options.hugeNumber: expected an integer, got "
	         "\"9223372036854775808\"",
	         cfg->path);
	ck_assert_str_eq(err, expected);
	config_free(cfg);
}
END_TEST

START_TEST(test_unused_options)
{
	config *cfg = expect_config("unused.yaml", options_yaml);
	char err[512], expected[PATH_MAX + 128];
	const char *text;
	bool flag;
	int64_t number;

	ck_assert(config_unused_option(cfg, err, sizeof err));
	snprintf(expected, sizeof expected, "%s:6: adapter.options.meshNamespace: unknown option",
	         cfg->path);
	ck_assert_str_eq(err, expected);

	ck_assert_int_eq(config_option_string(cfg, "meshNamespace", &text, err, sizeof err), 0);
	ck_assert_int_eq(config_option_bool(cfg, "strict", &flag, err, sizeof err), 0);
	ck_assert(config_unused_option(cfg, err, sizeof err));
	snprintf(expected, sizeof expected, "%s:8: adapter.options.lenient: unknown option",
	         cfg->path);
	ck_assert_str_eq(err, expected);

	/* A lookup with the wrong type still makes the key known. */
	ck_assert_int_eq(config_option_int(cfg, "lenient", &number, err, sizeof err), -1);
	ck_assert_int_eq(config_option_int(cfg, "maxSeries", &number, err, sizeof err), 0);
	ck_assert_int_eq(config_option_int(cfg, "offset", &number, err, sizeof err), 0);
	ck_assert_int_eq(config_option_string(cfg, "quotedNumber", &text, err, sizeof err), 0);
	ck_assert_int_eq(config_option_string(cfg, "yesNo", &text, err, sizeof err), 0);
	ck_assert(config_unused_option(cfg, err, sizeof err));
	snprintf(expected, sizeof expected, "%s:13: adapter.options.hexNumber: unknown option",
	         cfg->path);
	ck_assert_str_eq(err, expected);
	ck_assert_int_eq(config_option_string(cfg, "hexNumber", &text, err, sizeof err), 0);
	ck_assert_int_eq(config_option_string(cfg, "hugeNumber", &text, err, sizeof err), 0);
	ck_assert(!config_unused_option(cfg, err, sizeof err));
	config_free(cfg);
}
END_TEST

START_TEST(test_no_options)
{
	config *cfg = expect_config("no-options.yaml", REQUIRED);
	char err[256];
	const char *text = "untouched";
	ck_assert_int_eq(config_option_string(cfg, "anything", &text, err, sizeof err), 1);
	ck_assert_str_eq(text, "untouched");
	ck_assert(!config_unused_option(cfg, err, sizeof err));
	ck_assert_ptr_null(config_query_override(cfg, "counts"));
	ck_assert(!config_unknown_query(cfg, NULL, err, sizeof err));
	config_free(cfg);
}
END_TEST

/* ---- query overrides ---- */

/* The comments are the line numbers the tests expect. */
static const char queries_yaml[] = SERVER_LINE AUTH_LINE            /* 1, 2 */
    "adapter:\n"                                                    /* 3 */
    "  name: linkerd\n"                                             /* 4 */
    "  queries:\n"                                                  /* 5 */
    "    counts: |\n"                                               /* 6 */
    "      sum by (classification) (\n"                             /* 7 */
    "        increase(response_total{ {{target}} }[{{window}}]))\n" /* 8 */
    "    latency: 'histogram'\n";                                   /* 9 */

START_TEST(test_query_overrides)
{
	config *cfg = expect_config("queries.yaml", queries_yaml);
	ck_assert_str_eq(config_query_override(cfg, "counts"),
	                 "sum by (classification) (\n"
	                 "  increase(response_total{ {{target}} }[{{window}}]))\n");
	ck_assert_str_eq(config_query_override(cfg, "latency"), "histogram");
	ck_assert_ptr_null(config_query_override(cfg, "edges"));
	config_free(cfg);
}
END_TEST

START_TEST(test_unknown_query)
{
	static const char *const all[] = {"counts", "latency", "edges", NULL};
	static const char *const one[] = {"counts", NULL};
	static const char *const none[] = {NULL};
	config *cfg = expect_config("unknown-query.yaml", queries_yaml);
	char err[512], expected[PATH_MAX + 128];

	ck_assert(!config_unknown_query(cfg, all, err, sizeof err));
	ck_assert(config_unknown_query(cfg, one, err, sizeof err));
	snprintf(expected, sizeof expected,
	         "%s:9: adapter.queries.latency: unknown query template (known: counts)",
	         cfg->path);
	ck_assert_str_eq(err, expected);
	ck_assert(config_unknown_query(cfg, none, err, sizeof err));
	snprintf(expected, sizeof expected,
	         "%s:6: adapter.queries.counts: unknown query template (known: none)", cfg->path);
	ck_assert_str_eq(err, expected);
	config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *suite = suite_create("config");
	TCase *load = tcase_create("load");
	tcase_add_test(load, test_yaml_and_json_give_one_snapshot);
	tcase_add_test(load, test_defaults);
	tcase_add_test(load, test_auth_defaults);
	tcase_add_test(load, test_null_sections_are_empty);
	tcase_add_test(load, test_plain_scalars_read_as_strings);
	tcase_add_test(load, test_listen_forms);
	tcase_add_test(load, test_path_without_name);
	tcase_add_test(load, test_example_config_loads);
	tcase_add_test(load, test_prometheus_backend_keys);
	suite_add_tcase(suite, load);

	TCase *errors = tcase_create("errors");
	tcase_add_loop_test(errors, test_error_messages, 0,
	                    (int)(sizeof error_cases / sizeof error_cases[0]));
	tcase_add_test(errors, test_cannot_open);
	tcase_add_test(errors, test_size_limit);
	tcase_add_test(errors, test_nesting_limit);
	tcase_add_test(errors, test_error_buffer_sizes);
	suite_add_tcase(suite, errors);

	TCase *adapter = tcase_create("adapter");
	tcase_add_test(adapter, test_option_lookups);
	tcase_add_test(adapter, test_unused_options);
	tcase_add_test(adapter, test_no_options);
	tcase_add_test(adapter, test_query_overrides);
	tcase_add_test(adapter, test_unknown_query);
	suite_add_tcase(suite, adapter);
	return suite;
}

int main(void)
{
	const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp_dir, sizeof tmp_dir, "%s/test_config.XXXXXX", base);
	if (mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	SRunner *runner = srunner_create(config_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	if (rmdir(tmp_dir) != 0)
		perror("rmdir");
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

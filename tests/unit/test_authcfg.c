/* test_authcfg: snapshots from the extension-apiserver-authentication
 * ConfigMap (JSON arrays inside strings, null, missing keys) and the
 * precedence config file > ConfigMap > built-in defaults. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/authcfg.h"

static char tmp_dir[256], ca_file[300];
static char *ca_pem;

static char *configmap(const char *extra_data)
{
	json_t *data = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s}", "client-ca-file", ca_pem, "requestheader-client-ca-file",
	    ca_pem, "requestheader-allowed-names", "[\"front-proxy-client\"]",
	    "requestheader-username-headers", "[\"X-Remote-User\"]", "requestheader-group-headers",
	    "[\"X-Remote-Group\"]", "requestheader-extra-headers-prefix", "[\"X-Remote-Extra-\"]");
	json_t *extra = json_loads(extra_data, 0, NULL);
	const char *key;
	json_t *value;
	json_object_foreach(extra, key, value)
	{
		if (json_is_null(value))
			json_object_del(data, key);
		else
			json_object_set(data, key, value);
	}
	json_decref(extra);
	json_t *doc = json_pack("{s:s,s:s,s:{s:s,s:s},s:o}", "kind", "ConfigMap", "apiVersion",
	                        "v1", "metadata", "name", "extension-apiserver-authentication",
	                        "namespace", "kube-system", "data", data);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

static config cluster_config(void)
{
	config cfg;
	memset(&cfg, 0, sizeof cfg);
	static char *none[] = {NULL};
	cfg.kubernetes.enabled = true;
	cfg.authorization.webhook = true;
	cfg.auth.requestheader_allowed_names = none;
	return cfg;
}

START_TEST(test_from_configmap)
{
	config cfg = cluster_config();
	char err[512];
	char *cm = configmap("{}");
	authcfg_snapshot *s = authcfg_build(&cfg, cm, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_ptr_nonnull(s->requestheader);
	ck_assert_ptr_nonnull(s->client_ca);
	ck_assert_str_eq(s->username_headers[0], "X-Remote-User");
	ck_assert_ptr_null(s->username_headers[1]);
	ck_assert_str_eq(s->extra_prefixes[0], "X-Remote-Extra-");
	ck_assert_ptr_null(s->uid_headers[0]); /* absent key = none */
	ck_assert(!s->cn_fallback);
	ck_assert_ptr_nonnull(strstr(s->ca_union_pem, "BEGIN CERTIFICATE"));
	authcfg_snapshot_free(s);
	free(cm);
}
END_TEST

START_TEST(test_null_missing_and_bad_values)
{
	config cfg = cluster_config();
	char err[512];
	/* "null", "" and a missing key all mean none. */
	char *cm = configmap(
	    "{\"requestheader-username-headers\": \"null\", \"requestheader-group-headers\": \"\","
	    " \"requestheader-extra-headers-prefix\": null, \"requestheader-client-ca-file\": null,"
	    " \"requestheader-uid-headers\": \"[\\\"X-Remote-Uid\\\"]\"}");
	authcfg_snapshot *s = authcfg_build(&cfg, cm, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_ptr_null(s->username_headers[0]);
	ck_assert_ptr_null(s->group_headers[0]);
	ck_assert_ptr_null(s->extra_prefixes[0]);
	ck_assert_str_eq(s->uid_headers[0], "X-Remote-Uid");
	ck_assert_ptr_null(s->requestheader); /* nothing from headers without a CA */
	authcfg_snapshot_free(s);
	free(cm);

	cm = configmap("{\"requestheader-allowed-names\": \"front-proxy-client\"}");
	ck_assert_ptr_null(authcfg_build(&cfg, cm, err, sizeof err));
	ck_assert_str_eq(err,
	                 "ConfigMap key requestheader-allowed-names: not a JSON array of strings");
	free(cm);
	cm = configmap("{\"requestheader-group-headers\": \"[1]\"}");
	ck_assert_ptr_null(authcfg_build(&cfg, cm, err, sizeof err));
	free(cm);
	cm = configmap("{\"client-ca-file\": \"not a pem\"}");
	ck_assert_ptr_null(authcfg_build(&cfg, cm, err, sizeof err));
	ck_assert_str_eq(err, "client CA (client-ca-file): no PEM certificate found");
	free(cm);
	ck_assert_ptr_null(authcfg_build(&cfg, "[]", err, sizeof err));
}
END_TEST

START_TEST(test_file_overrides_configmap)
{
	config cfg = cluster_config();
	char *user_headers[] = {"X-User", NULL};
	char *names[] = {"other", NULL};
	cfg.auth.requestheader_username_headers = user_headers;
	cfg.auth.requestheader_allowed_names = names;
	cfg.auth.n_requestheader_allowed_names = 1;
	cfg.auth.requestheader_allowed_names_set = true;
	cfg.auth.client_ca_file = "/nonexistent/ca.crt";
	char err[512];
	char *cm = configmap("{}");
	/* A CA file named in the config must be readable. */
	ck_assert_ptr_null(authcfg_build(&cfg, cm, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ca.crt: cannot open"));
	cfg.auth.client_ca_file = ca_file;
	authcfg_snapshot *s = authcfg_build(&cfg, cm, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->username_headers[0], "X-User");
	ck_assert_str_eq(s->group_headers[0], "X-Remote-Group"); /* not overridden */
	/* The same inputs give the same fingerprint; a change another. */
	authcfg_snapshot *again = authcfg_build(&cfg, cm, err, sizeof err);
	ck_assert(memcmp(s->fingerprint, again->fingerprint, 32) == 0);
	cfg.auth.requestheader_allowed_names_set = false;
	authcfg_snapshot *changed = authcfg_build(&cfg, cm, err, sizeof err);
	ck_assert(memcmp(s->fingerprint, changed->fingerprint, 32) != 0);
	authcfg_snapshot_free(s);
	authcfg_snapshot_free(again);
	authcfg_snapshot_free(changed);
	free(cm);
}
END_TEST

START_TEST(test_standalone_defaults)
{
	config cfg;
	memset(&cfg, 0, sizeof cfg);
	static char *none[] = {NULL};
	cfg.auth.requestheader_allowed_names = none;
	cfg.auth.requestheader_client_ca_file = ca_file;
	char err[512];
	authcfg_snapshot *s = authcfg_build(&cfg, NULL, err, sizeof err);
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s->username_headers[0], "X-Remote-User");
	ck_assert_str_eq(s->group_headers[0], "X-Remote-Group");
	ck_assert_str_eq(s->extra_prefixes[0], "X-Remote-Extra-");
	ck_assert_ptr_null(s->uid_headers[0]);
	ck_assert_ptr_nonnull(s->requestheader);
	ck_assert_ptr_null(s->client_ca);
	ck_assert(s->cn_fallback);
	authcfg_snapshot_free(s);
}
END_TEST

static Suite *authcfg_suite(void)
{
	Suite *s = suite_create("authcfg");
	TCase *t = tcase_create("authcfg");
	tcase_add_test(t, test_from_configmap);
	tcase_add_test(t, test_null_missing_and_bad_values);
	tcase_add_test(t, test_file_overrides_configmap);
	tcase_add_test(t, test_standalone_defaults);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char key[300], cmd[1000];
	snprintf(tmp_dir, sizeof tmp_dir, "%s/test_authcfg.XXXXXX", base);
	if (!mkdtemp(tmp_dir))
		return EXIT_FAILURE;
	snprintf(ca_file, sizeof ca_file, "%s/ca.crt", tmp_dir);
	snprintf(key, sizeof key, "%s/ca.key", tmp_dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
	         "-subj /CN=test-ca "
	         "-keyout %s -out %s >/dev/null 2>&1",
	         key, ca_file);
	if (system(cmd) != 0)
		return EXIT_FAILURE;
	FILE *f = fopen(ca_file, "r");
	ca_pem = calloc(1, 65536);
	if (!f || !ca_pem || fread(ca_pem, 1, 65535, f) == 0)
		return EXIT_FAILURE;
	fclose(f);
	SRunner *r = srunner_create(authcfg_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	free(ca_pem);
	unlink(ca_file);
	unlink(key);
	rmdir(tmp_dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_authn: identity headers (groups not comma-split, extras lower-cased
 * and percent-decoded, first non-empty user), bearer token parsing, the
 * TokenReview cache key and answer parsing, and the chain's anonymous and
 * system:authenticated rules. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/authn.h"

static char *list_user[] = {"X-Remote-User", "X-Other-User", NULL};
static char *list_group[] = {"X-Remote-Group", NULL};
static char *list_extra[] = {"X-Remote-Extra-", NULL};
static char *list_uid[] = {"X-Remote-Uid", NULL};
static char *list_none[] = {NULL};

static authcfg_snapshot snapshot(void)
{
	authcfg_snapshot s;
	memset(&s, 0, sizeof s);
	s.username_headers = list_user;
	s.group_headers = list_group;
	s.extra_prefixes = list_extra;
	s.uid_headers = list_uid;
	return s;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_groups_one_per_line_no_comma_split)
{
	authcfg_snapshot s = snapshot();
	authn_header h[] = {{"x-remote-user", "alice"},
	                    {"X-Remote-Group", "a,b"},
	                    {"X-REMOTE-GROUP", "c"},
	                    {"X-Remote-Group", ""},
	                    {"X-Remote-Group", "system:authenticated"}};
	identity id;
	ck_assert(authn_identity_from_headers(&s, h, N(h), &id));
	ck_assert_str_eq(id.user, "alice");
	ck_assert_uint_eq(id.n_groups, 3);
	ck_assert_str_eq(id.groups[0], "a,b");
	ck_assert_str_eq(id.groups[1], "c");
	ck_assert_str_eq(id.groups[2], "system:authenticated");
	ck_assert_ptr_null(id.uid);
	identity_clear(&id);
}
END_TEST

START_TEST(test_extras_lower_cased_and_decoded)
{
	authcfg_snapshot s = snapshot();
	authn_header h[] = {{"X-Remote-User", "alice"},
	                    {"X-Remote-Extra-Scopes.Example.com%2Fteam", "payments"},
	                    {"x-remote-extra-scopes.example.com%2fteam", "billing"},
	                    {"X-Remote-Extra-Authentication.kubernetes.io%2Fpod-name", "web-1"},
	                    {"X-Remote-Extra-Bad%zzKey", "v"},
	                    {"X-Remote-Extra-Nul%00", "v"},
	                    {"X-Remote-Extra-Empty", ""}};
	identity id;
	ck_assert(authn_identity_from_headers(&s, h, N(h), &id));
	ck_assert_uint_eq(id.n_extra, 5);
	ck_assert_str_eq(id.extra[0].key, "scopes.example.com/team");
	ck_assert_uint_eq(id.extra[0].n_values, 2);
	ck_assert_str_eq(id.extra[0].values[0], "payments");
	ck_assert_str_eq(id.extra[0].values[1], "billing");
	ck_assert_str_eq(id.extra[1].key, "authentication.kubernetes.io/pod-name");
	ck_assert_str_eq(id.extra[2].key, "bad%zzkey"); /* bad escape: raw, lower-cased */
	ck_assert_str_eq(id.extra[3].key, "nul%00");    /* a NUL never shortens a key */
	ck_assert_str_eq(id.extra[4].key, "empty");
	ck_assert_str_eq(id.extra[4].values[0], "");
	identity_clear(&id);
}
END_TEST

START_TEST(test_user_and_uid_headers)
{
	authcfg_snapshot s = snapshot();
	/* The first username header's first line is empty: the next header. */
	authn_header h[] = {{"X-Remote-User", ""},
	                    {"X-Remote-User", "mallory"},
	                    {"X-Other-User", "bob"},
	                    {"X-Remote-Uid", "u-1"}};
	identity id;
	ck_assert(authn_identity_from_headers(&s, h, N(h), &id));
	ck_assert_str_eq(id.user, "bob");
	ck_assert_str_eq(id.uid, "u-1");
	identity_clear(&id);

	authn_header none[] = {{"X-Remote-Group", "g"}};
	ck_assert(!authn_identity_from_headers(&s, none, N(none), &id));

	/* UID is trusted only from a configured header. */
	s.uid_headers = list_none;
	ck_assert(authn_identity_from_headers(&s, h, N(h), &id));
	ck_assert_ptr_null(id.uid);
	identity_clear(&id);
}
END_TEST

START_TEST(test_bearer_token)
{
	size_t len = 0;
	const char *t = authn_bearer_token("Bearer abc.def", &len);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq((int)len, 7);
	ck_assert(strncmp(t, "abc.def", len) == 0);
	t = authn_bearer_token("bEaReR tok extra", &len);
	ck_assert(t && len == 3 && strncmp(t, "tok", 3) == 0);
	ck_assert_ptr_null(authn_bearer_token("Basic dXNlcjpwYXNz", &len));
	ck_assert_ptr_null(authn_bearer_token("Bearer ", &len));
	ck_assert_ptr_null(authn_bearer_token("Bearer  tok", &len)); /* empty second part */
	ck_assert_ptr_null(authn_bearer_token("Bearertok", &len));
	ck_assert_ptr_null(authn_bearer_token(NULL, &len));
}
END_TEST

START_TEST(test_token_cache_key)
{
	authn *a = authn_new(NULL, 10000);
	authn *b = authn_new(NULL, 10000);
	char k1[65], k2[65], k3[65];
	authn_token_cache_key(a, "secret-token", 12, k1);
	authn_token_cache_key(a, "secret-token", 12, k2);
	ck_assert_str_eq(k1, k2);
	ck_assert_uint_eq(strlen(k1), 64);
	ck_assert_ptr_null(strstr(k1, "secret"));
	authn_token_cache_key(a, "secret-tokem", 12, k3);
	ck_assert_str_ne(k1, k3);
	/* The HMAC key is random per process (per authn): keys differ. */
	authn_token_cache_key(b, "secret-token", 12, k3);
	ck_assert_str_ne(k1, k3);
	authn_free(a);
	authn_free(b);
}
END_TEST

START_TEST(test_token_review_parsing)
{
	identity id;
	bool has_error;
	char why[256];
	const char *ok =
	    "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
	    "\"spec\":{\"token\":\"t\"},\"status\":{\"authenticated\":true,\"user\":{"
	    "\"username\":\"system:serviceaccount:mesh-ui:dashboard\",\"uid\":\"5b0c\","
	    "\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"],"
	    "\"extra\":{\"authentication.kubernetes.io/pod-name\":[\"dash-1\"]}},"
	    "\"audiences\":[\"https://kubernetes.default.svc\"]}}";
	ck_assert_int_eq(authn_parse_token_review(ok, &id, &has_error, why, sizeof why), 1);
	ck_assert_str_eq(id.user, "system:serviceaccount:mesh-ui:dashboard");
	ck_assert_str_eq(id.uid, "5b0c");
	ck_assert_uint_eq(id.n_groups, 2);
	ck_assert_str_eq(id.extra[0].key, "authentication.kubernetes.io/pod-name");
	ck_assert_str_eq(id.extra[0].values[0], "dash-1");
	identity_clear(&id);

	/* Plain "no" is cacheable; "no" with an error is not. */
	ck_assert_int_eq(
	    authn_parse_token_review("{\"status\":{}}", &id, &has_error, why, sizeof why), 0);
	ck_assert(!has_error);
	ck_assert_int_eq(
	    authn_parse_token_review("{\"status\":{\"authenticated\":false,\"error\":\"expired\"}}",
	                             &id, &has_error, why, sizeof why),
	    0);
	ck_assert(has_error);
	ck_assert_str_eq(why, "invalid bearer token: expired");
	ck_assert_int_eq(authn_parse_token_review("not json", &id, &has_error, why, sizeof why),
	                 -1);
	ck_assert_int_eq(
	    authn_parse_token_review("{\"status\":{\"authenticated\":true,\"user\":{}}}", &id,
	                             &has_error, why, sizeof why),
	    -1);
}
END_TEST

START_TEST(test_chain_anonymous_and_header_only)
{
	authn *a = authn_new(NULL, 10000);
	authcfg_snapshot s = snapshot();
	char why[512];
	identity id;
	/* No certificate: identity headers are ignored, the user is anonymous. */
	authn_header h[] = {{"X-Remote-User", "alice"},
	                    {"X-Remote-Group", "system:masters"},
	                    {"Authorization", "Bearer t"}};
	authn_request req = {.headers = h, .n_headers = N(h)};
	ck_assert_int_eq(authn_authenticate(a, &s, &req, &id, why, sizeof why), AUTHN_ANONYMOUS);
	ck_assert_str_eq(id.user, "system:anonymous");
	ck_assert_uint_eq(id.n_groups, 1);
	ck_assert_str_eq(id.groups[0], "system:unauthenticated");
	identity_clear(&id);
	authn_free(a);
}
END_TEST

START_TEST(test_identity_helpers)
{
	identity id = {0};
	ck_assert(identity_set_user(&id, "u"));
	ck_assert(identity_add_group(&id, "g"));
	ck_assert(identity_has_group(&id, "g"));
	ck_assert(!identity_has_group(&id, "G"));
	ck_assert(identity_add_extra(&id, "k", "1"));
	ck_assert(identity_add_extra(&id, "k", "2"));
	ck_assert_uint_eq(id.n_extra, 1);
	ck_assert_uint_eq(id.extra[0].n_values, 2);
	identity_clear(&id);
	ck_assert_ptr_null(id.user);
}
END_TEST

static Suite *authn_suite(void)
{
	Suite *s = suite_create("authn");
	TCase *t = tcase_create("authn");
	tcase_add_test(t, test_groups_one_per_line_no_comma_split);
	tcase_add_test(t, test_extras_lower_cased_and_decoded);
	tcase_add_test(t, test_user_and_uid_headers);
	tcase_add_test(t, test_bearer_token);
	tcase_add_test(t, test_token_cache_key);
	tcase_add_test(t, test_token_review_parsing);
	tcase_add_test(t, test_chain_anonymous_and_header_only);
	tcase_add_test(t, test_identity_helpers);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(authn_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

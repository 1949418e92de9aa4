/* Unit tests for core/auth.c: front-proxy chain checks with real
 * certificates made by scripts/gen-certs.sh (openssl), and the cache of
 * recently verified chains: it may skip X509_verify_cert() but never the
 * allowed-names check, never caches a failure, and is per CA bundle. */
#include <check.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static char dir[] = "/tmp/test_auth.XXXXXX";

static char *slurp(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s", path);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	return buf;
}

typedef struct der_cert {
	unsigned char *data;
	size_t len;
} der_cert;

static der_cert load_der(const char *name)
{
	char *pem = slurp(name);
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(x);
	der_cert d = {NULL, 0};
	int len = i2d_X509(x, &d.data);
	ck_assert_int_gt(len, 0);
	d.len = (size_t)len;
	X509_free(x);
	BIO_free(bio);
	free(pem);
	return d;
}

static auth_result check(const auth *a, const char *cert_file, char *why)
{
	der_cert d = load_der(cert_file);
	const unsigned char *der[1] = {d.data};
	size_t len[1] = {d.len};
	auth_result r = auth_check_front_proxy(a, der, len, 1, why, 512);
	OPENSSL_free(d.data);
	return r;
}

static auth *front_proxy_auth(const char *ca_file)
{
	char *pem = slurp(ca_file), err[256];
	char *allowed[] = {"front-proxy-client"};
	auth *a = auth_new_pem(pem, "requestheader CA", allowed, 1, err, sizeof err);
	ck_assert_msg(a != NULL, "%s", err);
	free(pem);
	return a;
}

/* Outside any test case: plain checks, not ck_assert. */
static int make_certs(void)
{
	char cmd[1024];
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof cmd, "%s/scripts/gen-certs.sh %s >/dev/null 2>&1", SRC_DIR, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void remove_certs(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

START_TEST(test_verified_chain_is_cached_but_names_still_checked)
{
	auth *a = front_proxy_auth("front-proxy-ca.crt");
	char why[512];
	unsigned long verifications, hits;

	ck_assert_int_eq(check(a, "front-proxy-client.crt", why), AUTH_OK);
	ck_assert_int_eq(check(a, "front-proxy-client.crt", why), AUTH_OK);
	auth_verify_stats(a, &verifications, &hits);
	ck_assert_uint_eq(verifications, 1);
	ck_assert_uint_eq(hits, 1);

	/* Signed by the right CA, wrong name: refused from the cache too. */
	ck_assert_int_eq(check(a, "wrong-cn.crt", why), AUTH_CN_NOT_ALLOWED);
	ck_assert_int_eq(check(a, "wrong-cn.crt", why), AUTH_CN_NOT_ALLOWED);
	ck_assert_str_eq(why, "x509: subject with cn=not-allowed is not in the allowed list");

	/* A failure is never cached: every attempt is verified again. */
	auth_verify_stats(a, &verifications, &hits);
	unsigned long before = verifications;
	ck_assert_int_eq(check(a, "rogue-client.crt", why), AUTH_UNTRUSTED);
	ck_assert_int_eq(check(a, "rogue-client.crt", why), AUTH_UNTRUSTED);
	auth_verify_stats(a, &verifications, &hits);
	ck_assert_uint_eq(verifications, before + 2);
	auth_free(a);
}
END_TEST

START_TEST(test_cache_is_per_ca_bundle)
{
	auth *a = front_proxy_auth("front-proxy-ca.crt");
	char why[512];
	ck_assert_int_eq(check(a, "front-proxy-client.crt", why), AUTH_OK);
	/* The CA rotated (a new bundle, a new auth): the old success does not count. */
	auth *rotated = front_proxy_auth("rogue-ca.crt");
	ck_assert_int_eq(check(rotated, "front-proxy-client.crt", why), AUTH_UNTRUSTED);
	auth_free(rotated);
	auth_free(a);
}
END_TEST

START_TEST(test_no_certificate)
{
	auth *a = front_proxy_auth("front-proxy-ca.crt");
	char why[512];
	ck_assert_int_eq(auth_check_front_proxy(a, NULL, NULL, 0, why, sizeof why), AUTH_NO_CERT);
	auth_free(a);
}
END_TEST

int main(void)
{
	if (make_certs() != 0) {
		fprintf(stderr, "test_auth: scripts/gen-certs.sh failed (is openssl installed?)\n");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("front-proxy");
	tcase_add_test(tc, test_verified_chain_is_cached_but_names_still_checked);
	tcase_add_test(tc, test_cache_is_per_ca_bundle);
	tcase_add_test(tc, test_no_certificate);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_certs();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* auth: front-proxy client certificate verification with OpenSSL.  Only
 * the leaf's CN counts (the original accepted a CN anywhere in the chain). */
#include "auth.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth {
	X509_STORE *store;
	char *ca_pem;
	char **allowed;
	size_t n_allowed;
};

static char *read_file(const char *path, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	if (!f) {
		snprintf(err, err_size, "%s: cannot open", path);
		return NULL;
	}
	size_t cap = 65536, len = 0;
	data = malloc(cap + 1);
	while (data) {
		size_t n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		if (len == cap) {
			if (cap >= (size_t)16 << 20) { /* a CA bundle is never this big */
				snprintf(err, err_size, "%s: larger than 16 MiB", path);
				free(data);
				data = NULL;
				break;
			}
			char *p = realloc(data, cap * 2 + 1);
			if (!p) {
				free(data);
				data = NULL;
				break;
			}
			data = p;
			cap *= 2;
		}
	}
	if (data)
		data[len] = '\0';
	else if (!*err)
		snprintf(err, err_size, "%s: out of memory", path);
	fclose(f);
	return data;
}

auth *auth_new(const char *ca_file, char *const *allowed_names, size_t n_allowed, char *err,
	       size_t err_size)
{
	BIO *bio = NULL;
	err[0] = '\0';
	auth *a = calloc(1, sizeof *a);
	if (!a)
		goto fail;
	a->ca_pem = read_file(ca_file, err, err_size);
	if (!a->ca_pem)
		goto fail;
	a->store = X509_STORE_new();
	bio = BIO_new_mem_buf(a->ca_pem, -1);
	if (!a->store || !bio)
		goto fail;
	int loaded = 0;
	X509 *cert;
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(a->store, cert) == 1)
			loaded++;
		X509_free(cert);
	}
	ERR_clear_error(); /* the loop ends on a "no start line" error */
	if (loaded == 0) {
		snprintf(err, err_size, "%s: no PEM certificate found", ca_file);
		goto fail;
	}
	if (n_allowed) {
		a->allowed = calloc(n_allowed, sizeof *a->allowed);
		if (!a->allowed)
			goto fail;
		for (size_t i = 0; i < n_allowed; i++) {
			a->allowed[i] = strdup(allowed_names[i]);
			if (!a->allowed[i])
				goto fail;
			a->n_allowed = i + 1;
		}
	}
	BIO_free(bio);
	return a;
fail:
	if (!*err)
		snprintf(err, err_size, "%s: cannot load the CA bundle", ca_file);
	BIO_free(bio);
	auth_free(a);
	return NULL;
}

void auth_free(auth *a)
{
	if (!a)
		return;
	X509_STORE_free(a->store);
	free(a->ca_pem);
	for (size_t i = 0; i < a->n_allowed; i++)
		free(a->allowed[i]);
	free(a->allowed);
	free(a);
}

const char *auth_ca_pem(const auth *a) { return a->ca_pem; }

static int leaf_common_name(X509 *leaf, char *cn, size_t cn_size)
{
	X509_NAME *subject = X509_get_subject_name(leaf);
	int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	if (idx < 0)
		return -1;
	ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, data);
	if (len < 0)
		return -1;
	int ok = (size_t)len < cn_size && memchr(utf8, '\0', (size_t)len) == NULL;
	if (ok) {
		memcpy(cn, utf8, (size_t)len);
		cn[len] = '\0';
	}
	OPENSSL_free(utf8);
	return ok ? 0 : -1;
}

auth_result auth_check_front_proxy(const auth *a, const unsigned char *const *der,
				   const size_t *der_len, size_t n, char *why, size_t why_size)
{
	auth_result result = AUTH_UNTRUSTED;
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *ctx = NULL;
	if (n == 0) {
		snprintf(why, why_size, "no client certificate");
		return AUTH_NO_CERT;
	}
	const unsigned char *p = der[0];
	leaf = d2i_X509(NULL, &p, (long)der_len[0]);
	chain = sk_X509_new_null();
	ctx = X509_STORE_CTX_new();
	if (!leaf || !chain || !ctx) {
		snprintf(why, why_size, "unparsable client certificate");
		goto out;
	}
	for (size_t i = 1; i < n; i++) {
		p = der[i];
		X509 *c = d2i_X509(NULL, &p, (long)der_len[i]);
		if (c && !sk_X509_push(chain, c))
			X509_free(c);
	}
	if (X509_STORE_CTX_init(ctx, a->store, leaf, chain) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		snprintf(why, why_size, "cannot set up verification");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		snprintf(why, why_size, "client certificate not signed by the requestheader CA: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	char cn[256];
	if (leaf_common_name(leaf, cn, sizeof cn) != 0)
		cn[0] = '\0';
	if (a->n_allowed) {
		result = AUTH_CN_NOT_ALLOWED;
		snprintf(why, why_size, "x509: subject with cn=%s is not in the allowed list", cn);
		for (size_t i = 0; i < a->n_allowed; i++) {
			if (strcmp(a->allowed[i], cn) == 0) {
				result = AUTH_OK;
				break;
			}
		}
	} else {
		result = AUTH_OK;
	}
	if (result == AUTH_OK)
		snprintf(why, why_size, "front-proxy cn=%s", cn);
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return result;
}

/* auth: client certificate verification with OpenSSL, for the front-proxy
 * (requestheader) CA and the client CA.  Only the leaf's CN counts (the
 * original accepted a CN anywhere in the chain). */
#include "auth.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Chains that verified recently, so that a keep-alive front proxy (one
 * certificate, thousands of requests) costs one X509_verify_cert() a
 * minute instead of one per request: that call dominated the server's CPU
 * time under load.  Keyed by SHA-256 over the whole DER chain; only
 * successes are kept, never longer than VERIFIED_TTL_SECONDS nor past the
 * leaf's notAfter.  The cache belongs to one CA bundle: a new bundle is a
 * new `auth`, so a CA change invalidates it.
 */
#define VERIFIED_SLOTS       64
#define VERIFIED_TTL_SECONDS 60

typedef struct verified_chain {
	unsigned char digest[32];
	char common_name[256];
	time_t expires; /* 0: empty slot */
} verified_chain;

typedef struct verified_cache {
	pthread_mutex_t lock;
	verified_chain slots[VERIFIED_SLOTS];
	size_t next; /* round-robin replacement */
	unsigned long verifications, hits;
} verified_cache;

struct auth {
	X509_STORE *store;
	char *role; /* "requestheader CA", "client CA": for messages */
	char **allowed;
	size_t n_allowed;
	verified_cache *verified; /* mutable behind a const auth: its own lock */
};

auth *auth_new_pem(const char *ca_pem, const char *role, char *const *allowed_names,
                   size_t n_allowed, char *err, size_t err_size)
{
	BIO *bio = NULL;
	err[0] = '\0';
	auth *a = calloc(1, sizeof *a);
	if (!a)
		goto fail;
	a->role = strdup(role);
	a->store = X509_STORE_new();
	bio = BIO_new_mem_buf(ca_pem, -1);
	a->verified = calloc(1, sizeof *a->verified);
	if (!a->store || !bio || !a->role || !a->verified ||
	    pthread_mutex_init(&a->verified->lock, NULL) != 0) {
		free(a->verified);
		a->verified = NULL;
		goto fail;
	}
	int loaded = 0;
	X509 *cert;
	/* Every certificate of the bundle: several kube-apiservers publish a
	 * union of their CAs. */
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(a->store, cert) == 1)
			loaded++;
		X509_free(cert);
	}
	ERR_clear_error(); /* the loop ends on a "no start line" error */
	if (loaded == 0) {
		snprintf(err, err_size, "no PEM certificate found");
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
		snprintf(err, err_size, "cannot load the CA bundle");
	BIO_free(bio);
	auth_free(a);
	return NULL;
}

void auth_free(auth *a)
{
	if (!a)
		return;
	X509_STORE_free(a->store);
	free(a->role);
	if (a->verified) {
		pthread_mutex_destroy(&a->verified->lock);
		free(a->verified);
	}
	for (size_t i = 0; i < a->n_allowed; i++)
		free(a->allowed[i]);
	free(a->allowed);
	free(a);
}

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

/* Parses the chain (leaf first) and verifies it for TLS client use now. */
static auth_result verify_chain(const auth *a, const unsigned char *const *der,
                                const size_t *der_len, size_t n, X509 **leaf_out, char *why,
                                size_t why_size)
{
	auth_result result = AUTH_UNTRUSTED;
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *ctx = NULL;
	*leaf_out = NULL;
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
		snprintf(why, why_size, "client certificate not signed by the %s: %s", a->role,
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	result = AUTH_OK;
	*leaf_out = leaf;
	leaf = NULL;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return result;
}

static bool chain_digest(const unsigned char *const *der, const size_t *der_len, size_t n,
                         unsigned char digest[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char size[8];
		for (int b = 0; b < 8;
		     b++) /* length-prefixed: no two chains collide by splitting */
			size[b] = (unsigned char)((uint64_t)der_len[i] >> (8 * b));
		ok = EVP_DigestUpdate(md, size, sizeof size) == 1 &&
		     EVP_DigestUpdate(md, der[i], der_len[i]) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, digest, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	return ok;
}

static bool verified_lookup(verified_cache *c, const unsigned char digest[32], char *cn,
                            size_t cn_size)
{
	bool hit = false;
	time_t now = time(NULL);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < VERIFIED_SLOTS && !hit; i++) {
		verified_chain *v = &c->slots[i];
		if (v->expires > now && memcmp(v->digest, digest, 32) == 0) {
			snprintf(cn, cn_size, "%s", v->common_name);
			hit = true;
		}
	}
	if (hit)
		c->hits++;
	else
		c->verifications++;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void verified_store(verified_cache *c, const unsigned char digest[32], const char *cn,
                           X509 *leaf)
{
	time_t now = time(NULL), expires = now + VERIFIED_TTL_SECONDS;
	int days = 0, seconds = 0;
	/* Never past the leaf's own expiry. */
	if (ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(leaf)) == 1) {
		time_t left = (time_t)days * 86400 + seconds;
		if (left < VERIFIED_TTL_SECONDS)
			expires = now + (left > 0 ? left : 0);
	}
	pthread_mutex_lock(&c->lock);
	verified_chain *v = &c->slots[c->next];
	c->next = (c->next + 1) % VERIFIED_SLOTS;
	memcpy(v->digest, digest, 32);
	snprintf(v->common_name, sizeof v->common_name, "%s", cn);
	v->expires = expires;
	pthread_mutex_unlock(&c->lock);
}

void auth_verify_stats(const auth *a, unsigned long *verifications, unsigned long *hits)
{
	pthread_mutex_lock(&a->verified->lock);
	*verifications = a->verified->verifications;
	*hits = a->verified->hits;
	pthread_mutex_unlock(&a->verified->lock);
}

auth_result auth_check_front_proxy(const auth *a, const unsigned char *const *der,
                                   const size_t *der_len, size_t n, char *why, size_t why_size)
{
	X509 *leaf = NULL;
	auth_result result = AUTH_OK;
	char cn[256];
	unsigned char digest[32];
	bool have_digest = n > 0 && chain_digest(der, der_len, n, digest);
	if (!have_digest || !verified_lookup(a->verified, digest, cn, sizeof cn)) {
		result = verify_chain(a, der, der_len, n, &leaf, why, why_size);
		if (result != AUTH_OK)
			return result;
		if (leaf_common_name(leaf, cn, sizeof cn) != 0)
			cn[0] = '\0';
		if (have_digest)
			verified_store(a->verified, digest, cn, leaf);
	}
	if (a->n_allowed) {
		result = AUTH_CN_NOT_ALLOWED;
		snprintf(why, why_size, "x509: subject with cn=%s is not in the allowed list", cn);
		for (size_t i = 0; i < a->n_allowed; i++) {
			if (strcmp(a->allowed[i], cn) == 0) {
				result = AUTH_OK;
				break;
			}
		}
	}
	if (result == AUTH_OK)
		snprintf(why, why_size, "front-proxy cn=%s", cn);
	X509_free(leaf);
	return result;
}

/* The O values of the subject, in order (malloc'd array of strings). */
static size_t leaf_organizations(X509 *leaf, char ***out)
{
	X509_NAME *subject = X509_get_subject_name(leaf);
	size_t n = 0;
	*out = NULL;
	for (int idx = -1; subject && (idx = X509_NAME_get_index_by_NID(
	                                   subject, NID_organizationName, idx)) >= 0;) {
		ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, data);
		if (len < 0)
			continue;
		char **grown = realloc(*out, (n + 2) * sizeof *grown);
		char *copy =
		    memchr(utf8, '\0', (size_t)len) ? NULL : strndup((char *)utf8, (size_t)len);
		OPENSSL_free(utf8);
		if (!grown || !copy) {
			free(copy);
			if (grown)
				*out = grown;
			break;
		}
		*out = grown;
		(*out)[n++] = copy;
		(*out)[n] = NULL;
	}
	return n;
}

auth_result auth_check_client(const auth *a, const unsigned char *const *der, const size_t *der_len,
                              size_t n, auth_subject *out, char *why, size_t why_size)
{
	X509 *leaf = NULL;
	memset(out, 0, sizeof *out);
	auth_result result = verify_chain(a, der, der_len, n, &leaf, why, why_size);
	if (result != AUTH_OK)
		return result;
	if (leaf_common_name(leaf, out->common_name, sizeof out->common_name) != 0)
		out->common_name[0] = '\0';
	out->n_organizations = leaf_organizations(leaf, &out->organizations);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	if (EVP_Digest(der[0], der_len[0], digest, &digest_len, EVP_sha256(), NULL) == 1) {
		char *w = out->credential_id +
		          snprintf(out->credential_id, sizeof out->credential_id, "X509SHA256=");
		for (unsigned i = 0; i < digest_len; i++, w += 2)
			sprintf(w, "%02x", digest[i]);
	}
	snprintf(why, why_size, "client cn=%s", out->common_name);
	X509_free(leaf);
	return AUTH_OK;
}

void auth_subject_clear(auth_subject *s)
{
	for (size_t i = 0; i < s->n_organizations; i++)
		free(s->organizations[i]);
	free(s->organizations);
	s->organizations = NULL;
	s->n_organizations = 0;
}

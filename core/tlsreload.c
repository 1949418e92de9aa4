/* tlsreload: generations of GnuTLS certificate credentials with reference
 * counts.  Invariant: `current` is never retired; a retired generation is
 * freed by the poll thread once no connection has held it for a whole tick
 * (a detached session may still be in gnutls_deinit right after). */
#include "tlsreload.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "readfile.h"
#include "ticker.h"

#define MAX_PEM_BYTES (1u << 20)

struct tls_generation {
	gnutls_certificate_credentials_t cred;
	unsigned char fingerprint[32]; /* of cert, key and trust */
	int refs;                      /* connections holding it */
	bool retired;
	bool idle_seen; /* retired and unheld at the previous tick */
	tls_generation *next_retired;
};

struct tls_store {
	char *cert_file, *key_file;
	authcfg *trust; /* may be NULL */
	char *initial_cert, *initial_key;

	pthread_mutex_t lock; /* guards the generations */
	tls_generation *current;
	tls_generation *retired;
	unsigned char failed_fingerprint[32]; /* last unusable content, logged once */

	ticker *ticker;
};

static void fingerprint(const char *cert, const char *key, const char *trust, unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	memset(out, 0, 32);
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(md, cert, strlen(cert) + 1);
		EVP_DigestUpdate(md, key, strlen(key) + 1);
		EVP_DigestUpdate(md, trust, strlen(trust) + 1);
		EVP_DigestFinal_ex(md, out, &len);
	}
	EVP_MD_CTX_free(md);
}

static void generation_free(tls_generation *g)
{
	if (!g)
		return;
	gnutls_certificate_free_credentials(g->cred);
	free(g);
}

/* Builds credentials; GnuTLS refuses a key that does not match the cert. */
static tls_generation *generation_new(const char *cert, const char *key, const char *trust,
                                      char *err, size_t err_size)
{
	tls_generation *g = calloc(1, sizeof *g);
	if (!g || gnutls_certificate_allocate_credentials(&g->cred) != GNUTLS_E_SUCCESS) {
		snprintf(err, err_size, "out of memory");
		free(g);
		return NULL;
	}
	gnutls_datum_t cert_datum = {.data = (unsigned char *)cert,
	                             .size = (unsigned int)strlen(cert)};
	gnutls_datum_t key_datum = {.data = (unsigned char *)key,
	                            .size = (unsigned int)strlen(key)};
	int rc = gnutls_certificate_set_x509_key_mem2(g->cred, &cert_datum, &key_datum,
	                                              GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		snprintf(err, err_size, "serving certificate and key: %s", gnutls_strerror(rc));
		generation_free(g);
		return NULL;
	}
	if (*trust) {
		gnutls_datum_t trust_datum = {.data = (unsigned char *)trust,
		                              .size = (unsigned int)strlen(trust)};
		rc = gnutls_certificate_set_x509_trust_mem(g->cred, &trust_datum,
		                                           GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			snprintf(err, err_size, "client CA names: %s", gnutls_strerror(rc));
			generation_free(g);
			return NULL;
		}
	}
	return g;
}

/* Reads everything and builds a generation unless the content is the
 * current one (*unchanged).  Keeps the PEM texts when asked. */
static tls_generation *load(tls_store *s, bool *unchanged, char **cert_out, char **key_out,
                            char *err, size_t err_size)
{
	tls_generation *g = NULL;
	authcfg_snapshot *snap = s->trust ? authcfg_acquire(s->trust) : NULL;
	const char *trust = snap ? snap->ca_union_pem : "";
	char *cert = readfile_all(s->cert_file, MAX_PEM_BYTES, NULL, err, err_size);
	char *key = cert ? readfile_all(s->key_file, MAX_PEM_BYTES, NULL, err, err_size) : NULL;
	unsigned char fp[32];
	*unchanged = false;
	if (!key)
		goto out;
	fingerprint(cert, key, trust, fp);
	pthread_mutex_lock(&s->lock);
	*unchanged = s->current && memcmp(fp, s->current->fingerprint, sizeof fp) == 0;
	bool known_bad = memcmp(fp, s->failed_fingerprint, sizeof fp) == 0;
	pthread_mutex_unlock(&s->lock);
	if (*unchanged)
		goto out;
	g = generation_new(cert, key, trust, err, err_size);
	if (g) {
		memcpy(g->fingerprint, fp, sizeof fp);
	} else {
		pthread_mutex_lock(&s->lock);
		memcpy(s->failed_fingerprint, fp, sizeof fp);
		pthread_mutex_unlock(&s->lock);
		if (known_bad)
			err[0] = '\0'; /* already reported */
	}
out:
	if (snap)
		authcfg_release(s->trust, snap);
	if (g && cert_out && key_out) {
		*cert_out = cert;
		*key_out = key;
		cert = key = NULL;
	}
	free(cert);
	free(key);
	return g;
}

tls_store *tls_store_new(const char *cert_file, const char *key_file, authcfg *trust, char *err,
                         size_t err_size)
{
	tls_store *s = calloc(1, sizeof *s);
	bool unchanged;
	if (!s) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->trust = trust;
	s->cert_file = strdup(cert_file);
	s->key_file = strdup(key_file);
	if (!s->cert_file || !s->key_file) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	s->current = load(s, &unchanged, &s->initial_cert, &s->initial_key, err, err_size);
	if (!s->current) {
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, err_size, "%s / %s: %s", cert_file, key_file, why);
		goto fail;
	}
	return s;
fail:
	tls_store_free(s);
	return NULL;
}

const char *tls_store_initial_cert(const tls_store *s)
{
	return s->initial_cert;
}
const char *tls_store_initial_key(const tls_store *s)
{
	return s->initial_key;
}

tls_generation *tls_store_attach(tls_store *s, gnutls_session_t session)
{
	pthread_mutex_lock(&s->lock);
	tls_generation *g = s->current;
	int rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, g->cred);
	if (rc == GNUTLS_E_SUCCESS)
		g->refs++;
	pthread_mutex_unlock(&s->lock);
	if (rc != GNUTLS_E_SUCCESS)
		return NULL;
	/* Requested, not required, and not verified here: the authenticators
	 * verify per request (reference 2.2). */
	gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
	return g;
}

void tls_store_detach(tls_store *s, tls_generation *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&s->lock);
	g->refs--;
	pthread_mutex_unlock(&s->lock);
}

/* Frees retired generations nobody holds.  Called with the lock held. */
static void collect_retired(tls_store *s)
{
	for (tls_generation **p = &s->retired; *p;) {
		tls_generation *g = *p;
		bool free_now = g->refs == 0 && g->idle_seen;
		g->idle_seen = g->refs == 0;
		if (free_now) {
			*p = g->next_retired;
			generation_free(g);
		} else {
			p = &g->next_retired;
		}
	}
}

int tls_store_poll(tls_store *s)
{
	char err[512] = "";
	bool unchanged;
	tls_generation *g = load(s, &unchanged, NULL, NULL, err, sizeof err);
	if (!g) {
		if (!unchanged && *err)
			log_msg(LOG_WARN, "TLS: keeping the current serving certificate: %s", err);
		return unchanged ? 0 : -1;
	}
	pthread_mutex_lock(&s->lock);
	tls_generation *old = s->current;
	old->retired = true;
	old->next_retired = s->retired;
	s->retired = old;
	s->current = g;
	pthread_mutex_unlock(&s->lock);
	log_msg(LOG_INFO,
	        "TLS: serving certificate or client CAs changed: new connections use them");
	return 1;
}

static void poll_tick(void *arg)
{
	tls_store *s = arg;
	pthread_mutex_lock(&s->lock);
	collect_retired(s);
	pthread_mutex_unlock(&s->lock);
	tls_store_poll(s);
}

int tls_store_start(tls_store *s, uint32_t interval_ms, char *err, size_t err_size)
{
	s->ticker = ticker_start(interval_ms ? interval_ms : 60000, poll_tick, s, err, err_size);
	return s->ticker ? 0 : -1;
}

void tls_store_free(tls_store *s)
{
	if (!s)
		return;
	ticker_stop(s->ticker);
	while (s->retired) {
		tls_generation *g = s->retired;
		s->retired = g->next_retired;
		generation_free(g);
	}
	generation_free(s->current);
	free(s->initial_cert);
	free(s->initial_key);
	free(s->cert_file);
	free(s->key_file);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* auth: client certificate checks of an aggregated API server.  The TLS
 * layer (GnuTLS inside libmicrohttpd) only requests a client certificate;
 * this module verifies it with OpenSSL, per request, against one CA bundle:
 * the requestheader (front-proxy) CA with its allowed common names, or the
 * client CA (user = CN, groups = O). */
#ifndef SMI_AUTH_H
#define SMI_AUTH_H

#include <stddef.h>

typedef struct auth auth;

typedef enum auth_result {
	AUTH_OK = 0,
	AUTH_NO_CERT,       /* no client certificate presented */
	AUTH_UNTRUSTED,     /* chain does not verify against the CA */
	AUTH_CN_NOT_ALLOWED /* verified, but CN not in the allowed list */
} auth_result;

/* Loads every certificate of the PEM bundle `ca_pem`; `role` ("requestheader
 * CA", "client CA") names it in messages.  allowed_names may be empty: then
 * any CN the CA signed is accepted. */
auth *auth_new_pem(const char *ca_pem, const char *role, char *const *allowed_names,
                   size_t n_allowed, char *err, size_t err_size);
void auth_free(auth *a);

/*
 * Verifies a client chain given as DER blobs, leaf first (the rest are
 * untrusted intermediates), for TLS client use at the current time, then
 * the leaf's subject CN against the allowed names.  `why` gets a log
 * reason (never sent to clients).
 */
auth_result auth_check_front_proxy(const auth *a, const unsigned char *const *der,
                                   const size_t *der_len, size_t n, char *why, size_t why_size);

/* Chain verifications done and answered from the cache of recently
 * verified front-proxy chains (for tests and self-metrics). */
void auth_verify_stats(const auth *a, unsigned long *verifications, unsigned long *hits);

typedef struct auth_subject {
	char common_name[256]; /* "" when the leaf has none */
	char **organizations;  /* O values in order, owned */
	size_t n_organizations;
	char credential_id[80]; /* "X509SHA256=<hex of the DER leaf>" */
} auth_subject;

/*
 * Verifies the chain as above (no CN check) and fills the leaf's subject
 * for the client-certificate authenticator.  auth_subject_clear() after
 * AUTH_OK.
 */
auth_result auth_check_client(const auth *a, const unsigned char *const *der, const size_t *der_len,
                              size_t n, auth_subject *out, char *why, size_t why_size);
void auth_subject_clear(auth_subject *s);

#endif

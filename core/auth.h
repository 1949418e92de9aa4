/* auth: the front-proxy check of an aggregated API server.  The TLS layer
 * (GnuTLS inside libmicrohttpd) only requests a client certificate; this
 * module verifies it with OpenSSL against the requestheader CA and the
 * allowed common names, per request. */
#ifndef SMI_AUTH_H
#define SMI_AUTH_H

#include <stddef.h>

typedef struct auth auth;

typedef enum auth_result {
	AUTH_OK = 0,
	AUTH_NO_CERT,	       /* no client certificate presented */
	AUTH_UNTRUSTED,	       /* chain does not verify against the CA */
	AUTH_CN_NOT_ALLOWED    /* verified, but CN not in the allowed list */
} auth_result;

/* Loads every certificate of the PEM bundle `ca_file`.  allowed_names may
 * be empty: then any CN the CA signed is accepted. */
auth *auth_new(const char *ca_file, char *const *allowed_names, size_t n_allowed,
	       char *err, size_t err_size);
void auth_free(auth *a);

/* The CA bundle as PEM text (borrowed), for the TLS layer's request hint. */
const char *auth_ca_pem(const auth *a);

/*
 * Verifies a client chain given as DER blobs, leaf first (the rest are
 * untrusted intermediates), for TLS client use at the current time, then
 * the leaf's subject CN against the allowed names.  `why` gets a log
 * reason (never sent to clients).
 */
auth_result auth_check_front_proxy(const auth *a, const unsigned char *const *der,
				   const size_t *der_len, size_t n, char *why, size_t why_size);

#endif

/* tlsreload: the API port's TLS credentials, reloaded without a restart.
 * A generation = serving certificate + key + the CA names advertised in the
 * client-certificate request (union of the requestheader and client CAs).
 * Each new connection is given the current generation before its handshake
 * (GnuTLS credentials set per session) and holds a reference until it
 * closes, so a swap never disturbs connections in flight.  The files are
 * polled; a pair that does not match (e.g. half-way through a rotation)
 * keeps the previous generation. */
#ifndef SMI_TLSRELOAD_H
#define SMI_TLSRELOAD_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authcfg.h"

typedef struct tls_store tls_store;           /* thread-safe */
typedef struct tls_generation tls_generation; /* one connection's reference */

/* Loads the first generation; NULL with a message naming the file. */
tls_store *tls_store_new(const char *cert_file, const char *key_file, authcfg *trust, char *err,
                         size_t err_size);

/* The first pair's PEM text for libmicrohttpd's start-up options
 * (borrowed; lives as long as the store). */
const char *tls_store_initial_cert(const tls_store *s);
const char *tls_store_initial_key(const tls_store *s);

/* Gives the session the current credentials and asks it for a client
 * certificate (requested, not required).  NULL when that failed. */
tls_generation *tls_store_attach(tls_store *s, gnutls_session_t session);
void tls_store_detach(tls_store *s, tls_generation *g);

/* Checks the files and the trust snapshot now.  1 swapped, 0 unchanged,
 * -1 the new content is unusable (the old generation stays). */
int tls_store_poll(tls_store *s);

/* Polls every interval_ms in a thread (also frees retired generations). */
int tls_store_start(tls_store *s, uint32_t interval_ms, char *err, size_t err_size);

/* Stops the thread and frees everything: only after the daemon stopped. */
void tls_store_free(tls_store *s);

#endif

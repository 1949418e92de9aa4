/* server: the two listeners.  The API port speaks HTTPS only (GnuTLS inside
 * libmicrohttpd, TLS 1.2+, credentials reloaded), requests a client
 * certificate and hands each request to authn, authz and api; the admin port is plain HTTP with
 * /livez, /readyz and /metrics. */
#ifndef SMI_SERVER_H
#define SMI_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "api.h"
#include "authcfg.h"
#include "authn.h"
#include "authz.h"
#include "config.h"
#include "selfmetrics.h"
#include "tlsreload.h"

typedef struct server server;

/* What the API port trusts and how it decides (all borrowed; they must
 * outlive the server). */
typedef struct server_security {
	authcfg *authcfg;
	authn *authn;
	authz *authz;
	tls_store *tls;
} server_security;

/* Starts both listeners.  Returns NULL with a one-line message in err. */
server *server_start(const config *cfg, api *a, const server_security *sec, selfmetrics *sm,
                     char *err, size_t err_size);

/* Stops at once (start-up failures, tests): server_drain(s, 0). */
void server_stop(server *s);

/* Graceful stop: /readyz turns 500, the API port stops accepting, requests
 * in flight get up to grace_seconds to be answered, then everything
 * closes and `s` is freed. */
void server_drain(server *s, unsigned grace_seconds);

/* Parses "host:port" / "[v6]:port" for bind(); exposed for tests. */
int server_parse_listen(const char *listen, struct sockaddr_storage *out, char *err,
                        size_t err_size);

#endif

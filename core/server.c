/* server: libmicrohttpd glue.  One thread per connection keeps handlers
 * simple and blocking (a request waits for its Prometheus queries); the
 * connection limit bounds the threads. */
#include "server.h"

#include "hex.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "log.h"
#include "router.h"

#define MAX_BODY_BYTES (64 * 1024) /* the API is read-only: no body is needed */
#define MAX_PARAMS     32
#define MAX_CHAIN      8
#define MAX_HEADERS    4096 /* lines; MHD's 256 KiB connection memory bounds them first */

/* TLS 1.2 and 1.3 only; AEAD ciphers with ECDHE key exchange (no RSA kex,
 * no CBC), as Kubernetes' own defaults; curves X25519, P-256, P-384. */
static const char tls_priorities[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1";

struct server {
	struct MHD_Daemon *api_daemon;
	struct MHD_Daemon *admin_daemon;
	api *api;
	server_security sec;
	bool anonymous; /* anonymous requests reach authorization */
	selfmetrics *sm;
	atomic_bool ready;
	atomic_int in_flight; /* API requests between first callback and completion */
};

typedef struct request_state {
	size_t body_bytes;
	struct timespec start;
} request_state;

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int server_parse_listen(const char *listen, struct sockaddr_storage *out, char *err,
                        size_t err_size)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || strlen(colon + 1) == 0) {
		snprintf(err, err_size, "listen address \"%s\" is not host:port", listen);
		return -1;
	}
	size_t host_len = (size_t)(colon - listen);
	if (listen[0] == '[' && host_len >= 2 && listen[host_len - 1] == ']') {
		listen++;
		host_len -= 2;
	}
	if (host_len >= sizeof host) {
		snprintf(err, err_size, "listen address host too long");
		return -1;
	}
	memcpy(host, listen, host_len);
	host[host_len] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "listen address \"%s\": %s (use a numeric IP and port)",
		         listen, gai_strerror(rc));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* Decodes %XX in place, except %00 and %2F, which stay literal: a NUL must
 * never shorten a path or value behind the validator's back, and an encoded
 * slash must never become a segment separator (it stays an invalid byte of
 * the segment, so the request is refused). */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	char *w = s;
	for (const char *r = s; *r; r++) {
		int hi = r[0] == '%' ? hex_digit_value(r[1]) : -1;
		int lo = hi >= 0 ? hex_digit_value(r[2]) : -1;
		int decoded = lo >= 0 ? hi * 16 + lo : -1;
		if (decoded > 0 && decoded != '/') {
			*w++ = (char)decoded;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void sanitise(const char *in, char *out, size_t out_size)
{
	size_t o = 0;
	for (; in && *in && o + 1 < out_size; in++)
		out[o++] = ((unsigned char)*in >= 0x20 && (unsigned char)*in < 0x7f && *in != '"')
		               ? *in
		               : '?';
	out[o] = '\0';
}

static enum MHD_Result send_response(struct MHD_Connection *c, api_response *res,
                                     const char *audit_id)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		api_response_clear(res);
		return MHD_NO;
	}
	res->body = NULL; /* owned by the response now */
	enum MHD_Result ok = MHD_YES;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type) !=
	        MHD_YES ||
	    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, private") !=
	        MHD_YES ||
	    (audit_id && MHD_add_response_header(r, "Audit-Id", audit_id) != MHD_YES))
		ok = MHD_NO;
	if (ok == MHD_YES)
		ok = MHD_queue_response(c, (unsigned int)res->code, r);
	MHD_destroy_response(r);
	return ok;
}

typedef struct param_list {
	route_param items[MAX_PARAMS];
	size_t n;
	bool overflow;
} param_list;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	(void)kind;
	param_list *p = cls;
	if (p->n == MAX_PARAMS) {
		p->overflow = true;
		return MHD_NO;
	}
	p->items[p->n].key = key;
	p->items[p->n].value = value;
	p->n++;
	return MHD_YES;
}

typedef struct header_list {
	authn_header *items;
	size_t n, cap;
	bool overflow;
} header_list;

/* Every header line in arrival order: groups come one per line. */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
	(void)kind;
	header_list *h = cls;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		authn_header *grown =
		    cap <= MAX_HEADERS ? realloc(h->items, cap * sizeof *grown) : NULL;
		if (!grown) {
			h->overflow = true;
			return MHD_NO;
		}
		h->items = grown;
		h->cap = cap;
	}
	h->items[h->n].name = key;
	h->items[h->n].value = value;
	h->n++;
	return MHD_YES;
}

static bool impersonation_requested(const header_list *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (strncasecmp(h->items[i].name, "Impersonate-", 12) == 0)
			return true;
	return false;
}

/* Runs the authenticator chain on the TLS session's peer chain and the
 * headers, against the current trust snapshot. */
static authn_result authenticate(server *s, struct MHD_Connection *c, const header_list *headers,
                                 identity *id, char *why, size_t why_size)
{
	const unsigned char *der[MAX_CHAIN];
	size_t len[MAX_CHAIN];
	unsigned int n = 0;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	const gnutls_datum_t *peers =
	    ci && ci->tls_session
	        ? gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n)
	        : NULL;
	if (!peers)
		n = 0;
	if (n > MAX_CHAIN)
		n = MAX_CHAIN;
	for (unsigned int i = 0; i < n; i++) {
		der[i] = peers[i].data;
		len[i] = peers[i].size;
	}
	authn_request req = {.der = der,
	                     .der_len = len,
	                     .n_certs = n,
	                     .headers = headers->items,
	                     .n_headers = headers->n};
	authcfg_snapshot *snap = authcfg_acquire(s->sec.authcfg);
	authn_result r = authn_authenticate(s->sec.authn, snap, &req, id, why, why_size);
	authcfg_release(s->sec.authcfg, snap);
	return r;
}

static void set_status_body(api_response *res, int code, char *body)
{
	if (!body) {
		api_status_response(500, "InternalError", "out of memory", res);
		return;
	}
	res->code = code;
	res->content_type = "application/json";
	res->body = body;
	res->body_len = strlen(body);
	res->route = SM_ROUTE_OTHER;
}

/* Authentication, the impersonation refusal and authorization, in
 * upstream's filter order.  True when the request may go on to the router;
 * otherwise *res holds the 401/403/500 answer. */
static bool admit(server *s, struct MHD_Connection *c, const header_list *headers,
                  const authz_attributes *at, identity *id, char *decision, size_t decision_size,
                  api_response *res)
{
	char why[1024] = "", reason[1024] = "";
	authn_result ar = authenticate(s, c, headers, id, why, sizeof why);
	if (ar == AUTHN_UNAUTHORIZED) {
		snprintf(decision, decision_size, "unauthenticated: %s", why);
		api_status_response(401, "Unauthorized", "Unauthorized", res);
		return false;
	}
	if (impersonation_requested(headers)) {
		snprintf(decision, decision_size, "forbid: impersonation");
		api_status_response(
		    403, "Forbidden",
		    "impersonation is not supported by this server: send no Impersonate-* headers",
		    res);
		return false;
	}
	/* Standalone deviation (reference 6): anonymous only reaches the
	 * always-allowed paths, so that probes work without a certificate. */
	if (ar == AUTHN_ANONYMOUS && !s->anonymous &&
	    !authz_always_allowed_path(s->sec.authz, at)) {
		snprintf(decision, decision_size,
		         "unauthenticated: anonymous requests are disabled");
		api_status_response(401, "Unauthorized", "Unauthorized", res);
		return false;
	}
	switch (authz_authorize(s->sec.authz, id, at, reason, sizeof reason)) {
	case AUTHZ_ALLOW:
		snprintf(decision, decision_size, "allow%s%s", *reason ? ": " : "", reason);
		return true;
	case AUTHZ_DENY:
		snprintf(decision, decision_size, "forbid%s%s", *reason ? ": " : "", reason);
		set_status_body(res, 403, authz_forbidden_status(id, at, reason));
		return false;
	default:
		snprintf(decision, decision_size, "error: %s", reason);
		log_msg(LOG_ERROR, "authorization failed: %s", reason);
		api_status_response(500, "InternalError",
		                    "Internal error occurred: authorization check failed", res);
		return false;
	}
}

static void join_groups(const identity *id, char *out, size_t out_size)
{
	char one[256];
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < id->n_groups && used + 1 < out_size; i++) {
		sanitise(id->groups[i], one, sizeof one);
		used += (size_t)snprintf(out + used, out_size - used, "%s%s", i ? "," : "", one);
	}
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	(void)upload_data;
	server *s = cls;
	request_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof *st);
		if (!st)
			return MHD_NO;
		atomic_fetch_add(&s->in_flight, 1);
		clock_gettime(CLOCK_MONOTONIC, &st->start);
		*con_cls = st;
		return MHD_YES;
	}
	api_response res = {0};
	if (*upload_data_size) {
		st->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		if (st->body_bytes <= MAX_BODY_BYTES)
			return MHD_YES;
		api_status_response(413, "RequestEntityTooLarge",
		                    "request body too large: this API is read-only", &res);
		return send_response(c, &res, NULL);
	}

	const char *audit_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Audit-Id");
	char audit[80] = "-";
	if (audit_id)
		sanitise(audit_id, audit, sizeof audit);
	param_list params = {.n = 0};
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &params);
	header_list headers = {0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &headers);

	/* Upstream order: authenticate, authorize, then route. */
	identity id = {0};
	char decision[1200] = "-";
	authz_attributes *at = calloc(1, sizeof *at); /* verb "" until parsed */
	if (!at) {
		api_status_response(500, "InternalError", "out of memory", &res);
	} else if (headers.overflow) {
		api_status_response(431, "RequestHeaderFieldsTooLarge",
		                    "too many request header lines", &res);
	} else if (params.overflow) {
		api_status_response(400, "BadRequest", "too many query parameters", &res);
	} else if (authz_attributes_from_request(method, url, params.items, params.n, at),
	           at->too_long) {
		api_status_response(414, "RequestURITooLong", "request path too long", &res);
	} else if (admit(s, c, &headers, at, &id, decision, sizeof decision, &res)) {
		route r;
		router_route(method, url, params.items, params.n, api_route_limits(s->api), &r);
		api_handle(s->api, &r, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
		           &res);
	}
	double seconds = seconds_since(&st->start);
	selfmetrics_api_request(s->sm, res.route, res.code, seconds);
	char path[512], user[256], groups[512], why[400], method_shown[24];
	sanitise(url, path, sizeof path);
	sanitise(method, method_shown, sizeof method_shown); /* client bytes, like the path */
	sanitise(id.user ? id.user : "-", user, sizeof user);
	join_groups(&id, groups, sizeof groups);
	sanitise(decision, why, sizeof why);
	log_msg(LOG_INFO,
	        "audit=%s user=\"%s\" groups=\"%s\" method=%s verb=%s path=\"%s\" code=%d ms=%.1f "
	        "decision=\"%s\"",
	        audit, user, groups, method_shown, at && at->verb[0] ? at->verb : "-", path,
	        res.code, seconds * 1000, why);
	identity_clear(&id);
	free(at);
	free(headers.items);
	return send_response(c, &res, audit_id ? audit : NULL);
}

/* Each connection takes the current TLS credentials before its handshake
 * and holds them until it closes (see tlsreload.h). */
static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	server *s = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		*socket_context =
		    ci && ci->tls_session
		        ? tls_store_attach(s->sec.tls, (gnutls_session_t)ci->tls_session)
		        : NULL;
	} else {
		tls_store_detach(s->sec.tls, *socket_context);
		*socket_context = NULL;
	}
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	server *s = cls;
	if (*con_cls)
		atomic_fetch_sub(&s->in_flight, 1);
	free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result admin_access(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
	(void)version;
	(void)upload_data;
	server *s = cls;
	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	*con_cls = NULL;
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	api_response res = {.content_type = "text/plain; charset=utf-8"};
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		res.code = 405;
		res.body = strdup("method not allowed\n");
	} else if (strcmp(url, "/livez") == 0 || strcmp(url, "/healthz") == 0) {
		res.code = 200;
		res.body = strdup("ok");
	} else if (strcmp(url, "/readyz") == 0) {
		/* Deliberately independent of Prometheus: see README "Health". */
		bool ready = atomic_load(&s->ready);
		res.code = ready ? 200 : 500;
		res.body = strdup(
		    ready ? "ok"
		          : "[-]api-listener failed: reason withheld\nreadyz check failed\n");
	} else if (strcmp(url, "/metrics") == 0) {
		res.code = 200;
		res.content_type = "text/plain; version=0.0.4; charset=utf-8";
		res.body = selfmetrics_render(s->sm);
	} else {
		res.code = 404;
		res.body = strdup("404 page not found\n");
	}
	if (!res.body)
		return MHD_NO;
	res.body_len = strlen(res.body);
	return send_response(c, &res, NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_msg(LOG_DEBUG, "http: %s", line);
}

server *server_start(const config *cfg, api *a, const server_security *sec, selfmetrics *sm,
                     char *err, size_t err_size)
{
	server *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	s->api = a;
	s->sec = *sec;
	s->anonymous = cfg->auth.anonymous;
	s->sm = sm;
	struct sockaddr_storage api_addr, admin_addr;
	if (server_parse_listen(cfg->server.listen, &api_addr, err, err_size) != 0)
		goto fail;
	/* poll(), not select(): with a thousand connections descriptors pass
	 * FD_SETSIZE. */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                     MHD_USE_POLL | MHD_USE_TLS | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	if (api_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->api_daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, api_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&api_addr,
	    /* The first pair; every connection then gets the current
	     * generation's credentials in notify_connection. */
	    MHD_OPTION_HTTPS_MEM_CERT, tls_store_initial_cert(sec->tls), MHD_OPTION_HTTPS_MEM_KEY,
	    tls_store_initial_key(sec->tls), MHD_OPTION_HTTPS_PRIORITIES, tls_priorities,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)cfg->server.max_connections,
	    /* Idle keep-alive and slow (header-trickling) connections alike. */
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(cfg->server.idle_timeout_ms / 1000),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->server.max_header_bytes,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)1024 * 1024, MHD_OPTION_UNESCAPE_CALLBACK,
	    unescape_keep_nul, NULL, MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!s->api_daemon) {
		snprintf(err, err_size,
		         "cannot serve HTTPS on %s (address in use, or bad TLS key pair %s / %s)",
		         cfg->server.listen, cfg->server.tls_cert_file, cfg->server.tls_key_file);
		goto fail;
	}
	if (cfg->admin.listen && *cfg->admin.listen) {
		if (server_parse_listen(cfg->admin.listen, &admin_addr, err, err_size) != 0)
			goto fail;
		unsigned int admin_flags = MHD_USE_INTERNAL_POLLING_THREAD |
		                           MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
		                           MHD_USE_ERROR_LOG;
		if (admin_addr.ss_family == AF_INET6)
			admin_flags |= MHD_USE_IPv6;
		s->admin_daemon = MHD_start_daemon(
		    admin_flags, 0, NULL, NULL, admin_access, s, MHD_OPTION_SOCK_ADDR,
		    (struct sockaddr *)&admin_addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_THREAD_STACK_SIZE,
		    (size_t)512 * 1024, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
		if (!s->admin_daemon) {
			snprintf(err, err_size,
			         "cannot serve the admin port on %s (address in use?)",
			         cfg->admin.listen);
			goto fail;
		}
	}
	atomic_store(&s->ready, true);
	return s;
fail:
	server_stop(s);
	return NULL;
}

void server_stop(server *s)
{
	server_drain(s, 0);
}

void server_drain(server *s, unsigned grace_seconds)
{
	if (!s)
		return;
	/* Unready first, so that Kubernetes takes the endpoint out of rotation. */
	atomic_store(&s->ready, false);
	if (s->api_daemon) {
		/* Stop accepting; connections already open keep being served. */
		MHD_socket fd = MHD_quiesce_daemon(s->api_daemon);
		/* MHD_stop_daemon shuts connection sockets down, so wait for the
		 * requests in flight to be answered first, up to the grace period. */
		for (unsigned waited_ms = 0;
		     atomic_load(&s->in_flight) > 0 && waited_ms < grace_seconds * 1000;
		     waited_ms += 20) {
			struct timespec tick = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
			nanosleep(&tick, NULL);
		}
		int left = atomic_load(&s->in_flight);
		if (left > 0)
			log_msg(LOG_WARN, "grace period over: closing %d requests still in flight",
			        left);
		MHD_stop_daemon(s->api_daemon);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
	if (s->admin_daemon)
		MHD_stop_daemon(s->admin_daemon);
	free(s);
}

/* config: the server's configuration file (YAML via libyaml; JSON is YAML's
 * flow subset and is accepted the same way), checked into an immutable
 * snapshot.  Every error names file:line and the dotted key. */
#ifndef SMI_CONFIG_H
#define SMI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct config_node config_node; /* parsed YAML tree, opaque */

typedef struct config {
	char *path; /* the file this snapshot came from */

	struct {
		char *listen; /* "host:port", default "0.0.0.0:8443" */
		char *tls_cert_file;
		char *tls_key_file;
		uint32_t request_timeout_ms; /* budget of one API request, default 30000 */
		uint32_t max_connections;    /* default 1024 */
		uint32_t idle_timeout_ms; /* idle or slow connection closed after, default 90000 */
		uint32_t
		    max_header_bytes; /* request line + headers per connection, default 262144 */
		uint32_t cert_reload_interval_ms; /* serving pair polled, default 60000 */
	} server;

	struct {
		char *requestheader_client_ca_file; /* NULL: from the cluster, or none */
		char **requestheader_allowed_names; /* NULL-terminated; empty = any CN */
		size_t n_requestheader_allowed_names;
		/* The lists below are NULL-terminated; NULL = not set in the file
		 * (then the cluster's ConfigMap or the built-in default applies). */
		char **requestheader_username_headers;
		char **requestheader_group_headers;
		char **requestheader_extra_headers_prefix;
		char **requestheader_uid_headers;
		bool requestheader_allowed_names_set; /* the key was written */
		char *client_ca_file;                 /* NULL: from the cluster, or none */
		bool skip_lookup;                     /* do not read the cluster's ConfigMap */
		bool anonymous;                       /* anonymous requests reach authorization */
		uint32_t refresh_interval_ms; /* ConfigMap and CA files re-read, default 60000 */
		uint32_t token_cache_ttl_ms;  /* TokenReview cache, default 10000 */
	} auth;

	struct {
		bool enabled;              /* the section is present: a cluster is configured */
		bool in_cluster;           /* service account files + KUBERNETES_SERVICE_* */
		char *kubeconfig;          /* or a kubeconfig file */
		char *server;              /* in-cluster override of https://HOST:PORT */
		char *ca_file;             /* in-cluster CA, default the service account's */
		char *token_file;          /* in-cluster token, default the service account's */
		uint32_t token_refresh_ms; /* token file re-read, default 60000 */
		uint32_t timeout_ms;       /* per call, default 10000 */
	} kubernetes;

	struct {
		bool webhook;               /* true: SubjectAccessReview; false: AlwaysAllow */
		uint32_t allow_ttl_ms;      /* default 10000 */
		uint32_t deny_ttl_ms;       /* default 10000 */
		char **always_allow_paths;  /* NULL-terminated; default /healthz /readyz /livez */
		char **always_allow_groups; /* NULL-terminated; default system:masters */
	} authorization;

	struct {
		char *listen; /* default "0.0.0.0:8080"; "" disables */
	} admin;

	struct {
		char *url;                   /* default "http://127.0.0.1:9090"; no user info */
		uint32_t timeout_ms;         /* default 10000 */
		char *method;                /* "auto" (default), "get" or "post" */
		uint32_t max_response_bytes; /* default 32 MiB */
		/* Credential files, re-read when they change: a bearer token, or
		 * basic auth (both files), or neither. */
		char *bearer_token_file;
		char *basic_auth_username_file;
		char *basic_auth_password_file;
		/* TLS to the backend (https URLs); NULL: unset. */
		char *tls_ca_file;   /* NULL: the system's CAs */
		char *tls_cert_file; /* client certificate, with tls_key_file */
		char *tls_key_file;
		char *tls_server_name;         /* SNI and verification name; NULL: the URL's host */
		bool tls_insecure_skip_verify; /* default false */
		/* Extra request headers, n_headers of each; names unique
		 * ignoring case, checked by prom_header_problem(). */
		char **header_names;
		char **header_values;
		size_t n_headers;
	} prometheus;

	struct {
		uint32_t default_seconds; /* default 30 */
		uint32_t min_seconds;     /* default 10 */
		uint32_t max_seconds;     /* default 86400 */
	} window;

	struct {
		char *name;           /* "linkerd" */
		char *path;           /* overrides the lookup of name in adapters_dir */
		char *adapters_dir;   /* default: compiled-in $(libdir)/smi-metrics/adapters */
		config_node *options; /* the adapter.options mapping, may be NULL */
		config_node *queries; /* the adapter.queries mapping, may be NULL */
	} adapter;

	struct {
		int64_t ttl_ms;       /* answer lifetime; -1 = auto (window / 15, 1s..30s) */
		uint32_t max_entries; /* default 4096; 0 disables caching and sharing */
	} cache;

	struct {
		char *level; /* error|warn|info|debug, default info */
	} log;

	config_node *root; /* owns the tree options/queries point into */
} config;

/*
 * Loads and checks `path`.  On failure returns NULL and writes one line
 * "FILE:LINE: KEY: problem" into err.  default_adapters_dir is used when
 * adapter.adaptersDir is absent.
 */
config *config_load(const char *path, const char *default_adapters_dir, char *err, size_t err_size);
void config_free(config *cfg);

/* Option lookup for adapters (adapter.options.<key>).
 * Returns 0 and sets *out, 1 when absent, -1 when present with another
 * type (err then holds "FILE:LINE: adapter.options.KEY: expected ...").
 * Marks the key as used. */
int config_option_string(config *cfg, const char *key, const char **out, char *err,
                         size_t err_size);
int config_option_bool(config *cfg, const char *key, bool *out, char *err, size_t err_size);
int config_option_int(config *cfg, const char *key, int64_t *out, char *err, size_t err_size);

/* After the adapter has opened: the first adapter.options key nobody looked
 * up, as "FILE:LINE: adapter.options.KEY: unknown option", or false. */
bool config_unused_option(const config *cfg, char *err, size_t err_size);

/* adapter.queries.<id>: the override text (borrowed) or NULL. */
const char *config_query_override(const config *cfg, const char *id);

/* For adapter.queries: reports the first id not in `known_ids`
 * (NULL-terminated) as "FILE:LINE: adapter.queries.ID: unknown query
 * template (known: a, b)"; returns false when all are known. */
bool config_unknown_query(const config *cfg, const char *const *known_ids, char *err,
                          size_t err_size);

#endif

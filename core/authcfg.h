/* authcfg: what authentication trusts, as one immutable snapshot: the
 * requestheader (front-proxy) CA with its allowed names and header names,
 * and the client CA.  Built from the config file and, with a cluster, the
 * kube-system/extension-apiserver-authentication ConfigMap; re-read every
 * auth.refreshInterval and swapped atomically, the last good snapshot kept
 * on errors.
 *
 * Precedence, per value: a key written in the config file; else the
 * ConfigMap's value (a missing key there means "none", as upstream);
 * else, standalone (no cluster lookup), the built-in defaults
 * X-Remote-User / X-Remote-Group / X-Remote-Extra- and no UID header. */
#ifndef SMI_AUTHCFG_H
#define SMI_AUTHCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "kube.h"

#define AUTHCFG_CONFIGMAP_PATH                                                                     \
	"/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"

typedef struct authcfg_snapshot {
	auth *requestheader; /* NULL: nothing is authenticated from headers */
	auth *client_ca;     /* NULL: no client-certificate users */
	/* NULL-terminated header name lists (never NULL themselves) */
	char **username_headers;
	char **group_headers;
	char **extra_prefixes;
	char **uid_headers;
	/* Standalone (AlwaysAllow): a verified front-proxy certificate without
	 * a username header is the user named by its CN. */
	bool cn_fallback;
	char *ca_union_pem;  /* both bundles, for the TLS client-certificate request */
	uint64_t generation; /* changes whenever the content does */
	unsigned char fingerprint[32];
	int refs; /* managed by authcfg */
} authcfg_snapshot;

typedef struct authcfg authcfg; /* thread-safe holder */

/*
 * Builds a snapshot from the config file and the ConfigMap JSON (NULL when
 * there is none).  Reads the CA files named in the config.  NULL with a
 * message on any error.  Pure apart from those file reads: unit-tested.
 */
authcfg_snapshot *authcfg_build(const config *cfg, const char *configmap_json, char *err,
                                size_t err_size);
void authcfg_snapshot_free(authcfg_snapshot *s);

/* First load: fetches the ConfigMap when cfg->auth.skip_lookup is false
 * (403 is fatal and names the RoleBinding; 404 runs without it). */
authcfg *authcfg_new(const config *cfg, kube_client *kube, char *err, size_t err_size);

/* Starts the re-read thread (every cfg->auth.refresh_interval_ms). */
int authcfg_start(authcfg *a, char *err, size_t err_size);

/* Re-reads now; returns 1 when a new snapshot was swapped in, 0 when
 * nothing changed, -1 on an error (the old snapshot stays). */
int authcfg_refresh(authcfg *a);

/* The current snapshot with a reference; release it when done. */
authcfg_snapshot *authcfg_acquire(authcfg *a);
void authcfg_release(authcfg *a, authcfg_snapshot *s);

void authcfg_free(authcfg *a);

#endif

/* authcfg: builds trust snapshots and keeps the current one fresh.  One
 * mutex guards the pointer and the reference counts; a snapshot is freed by
 * whoever drops its last reference. */
#include "authcfg.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "readfile.h"
#include "ticker.h"

#define MAX_CA_FILE_BYTES (16u << 20)

struct authcfg {
	const config *cfg;
	kube_client *kube; /* NULL: no lookup */
	pthread_mutex_t lock;
	authcfg_snapshot *current;
	uint64_t next_generation;
	char *last_error; /* logged once until it changes */

	ticker *ticker;
};

static void free_list(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

static char **copy_list(char *const *src)
{
	size_t n = 0;
	while (src && src[n])
		n++;
	char **out = calloc(n + 1, sizeof *out);
	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(src[i]);
		if (!out[i]) {
			free_list(out);
			return NULL;
		}
	}
	return out;
}

static size_t list_len(char *const *list)
{
	size_t n = 0;
	while (list && list[n])
		n++;
	return n;
}

/* A ConfigMap value holding a JSON array of strings inside a string;
 * missing, empty and "null" mean none. */
static int configmap_list(json_t *data, const char *key, char ***out, char *err, size_t err_size)
{
	const char *text = json_string_value(json_object_get(data, key));
	*out = NULL;
	if (!text || !*text || strcmp(text, "null") == 0) {
		*out = calloc(1, sizeof **out);
		return *out ? 0 : -1;
	}
	json_error_t jerr;
	json_t *array = json_loads(text, 0, &jerr);
	if (!json_is_array(array)) {
		snprintf(err, err_size, "ConfigMap key %s: not a JSON array of strings", key);
		json_decref(array);
		return -1;
	}
	size_t count = json_array_size(array), i, n = 0;
	bool ok = (*out = calloc(count + 1, sizeof **out)) != NULL;
	json_t *item;
	json_array_foreach(array, i, item)
	{
		const char *s = json_string_value(item);
		if (!ok || !s || !((*out)[n++] = strdup(s))) {
			if (!s)
				snprintf(err, err_size,
				         "ConfigMap key %s: not a JSON array of strings", key);
			ok = false;
			break;
		}
	}
	json_decref(array);
	if (!ok) {
		free_list(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* The header lists of the snapshot: file > ConfigMap > built-in. */
static int pick_list(char *const *from_file, json_t *cm_data, const char *cm_key,
                     const char *const *builtin, char ***out, char *err, size_t err_size)
{
	if (from_file) {
		*out = copy_list(from_file);
	} else if (cm_data) {
		return configmap_list(cm_data, cm_key, out, err, err_size);
	} else {
		*out = copy_list((char *const *)builtin);
	}
	return *out ? 0 : -1;
}

static void digest_string(EVP_MD_CTX *md, const char *text)
{
	EVP_DigestUpdate(md, text ? text : "", text ? strlen(text) + 1 : 1);
}

/* Everything the snapshot holds, so that an unchanged re-read keeps the
 * generation (and the TLS layer its credentials). */
static void fingerprint(authcfg_snapshot *s, const char *rh_pem, const char *client_pem,
                        char *const *names)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	char **lists[] = {s->username_headers, s->group_headers, s->extra_prefixes, s->uid_headers,
	                  (char **)names};
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	digest_string(md, rh_pem);
	digest_string(md, client_pem);
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
		for (size_t i = 0; lists[l][i]; i++)
			digest_string(md, lists[l][i]);
		EVP_DigestUpdate(md, "\n", 1);
	}
	EVP_DigestUpdate(md, &s->cn_fallback, sizeof s->cn_fallback);
	EVP_DigestFinal_ex(md, s->fingerprint, &len);
out:
	EVP_MD_CTX_free(md);
}

/* Allowed names: file > ConfigMap > none. */
static int allowed_names(const config *cfg, json_t *data, char ***out, char *err, size_t err_size)
{
	if (cfg->auth.requestheader_allowed_names_set || !data) {
		*out = copy_list(cfg->auth.requestheader_allowed_names);
		return *out ? 0 : -1;
	}
	return configmap_list(data, "requestheader-allowed-names", out, err, err_size);
}

/* A CA bundle: the config file's, else the ConfigMap's; NULL text = none. */
static char *ca_text(const char *file, json_t *data, const char *cm_key, char *err, size_t err_size,
                     bool *failed)
{
	*failed = false;
	if (file) {
		char *text = readfile_all(file, MAX_CA_FILE_BYTES, NULL, err, err_size);
		*failed = text == NULL;
		return text;
	}
	const char *text = data ? json_string_value(json_object_get(data, cm_key)) : NULL;
	return text && *text ? strdup(text) : NULL;
}

authcfg_snapshot *authcfg_build(const config *cfg, const char *configmap_json, char *err,
                                size_t err_size)
{
	static const char *const user_headers[] = {"X-Remote-User", NULL};
	static const char *const group_headers[] = {"X-Remote-Group", NULL};
	static const char *const extra_prefixes[] = {"X-Remote-Extra-", NULL};
	static const char *const none[] = {NULL};
	json_t *doc = NULL, *data = NULL;
	char *rh_pem = NULL, *client_pem = NULL, **names = NULL;
	bool failed;
	authcfg_snapshot *s = calloc(1, sizeof *s);
	err[0] = '\0';
	if (!s)
		goto fail;
	if (configmap_json) {
		json_error_t jerr;
		doc = json_loads(configmap_json, 0, &jerr);
		data = json_object_get(doc, "data");
		if (!json_is_object(doc) || (data && !json_is_object(data))) {
			snprintf(err, err_size, "ConfigMap: not a ConfigMap object");
			goto fail;
		}
		if (!data) { /* a ConfigMap without data holds nothing */
			json_object_set_new(doc, "data", json_object());
			data = json_object_get(doc, "data");
		}
	}
	if (pick_list(cfg->auth.requestheader_username_headers, data,
	              "requestheader-username-headers", user_headers, &s->username_headers, err,
	              err_size) != 0 ||
	    pick_list(cfg->auth.requestheader_group_headers, data, "requestheader-group-headers",
	              group_headers, &s->group_headers, err, err_size) != 0 ||
	    pick_list(cfg->auth.requestheader_extra_headers_prefix, data,
	              "requestheader-extra-headers-prefix", extra_prefixes, &s->extra_prefixes, err,
	              err_size) != 0 ||
	    pick_list(cfg->auth.requestheader_uid_headers, data, "requestheader-uid-headers", none,
	              &s->uid_headers, err, err_size) != 0 ||
	    allowed_names(cfg, data, &names, err, err_size) != 0)
		goto fail;
	rh_pem = ca_text(cfg->auth.requestheader_client_ca_file, data,
	                 "requestheader-client-ca-file", err, err_size, &failed);
	if (failed)
		goto fail;
	client_pem =
	    ca_text(cfg->auth.client_ca_file, data, "client-ca-file", err, err_size, &failed);
	if (failed)
		goto fail;
	char why[256];
	if (rh_pem && !(s->requestheader = auth_new_pem(rh_pem, "requestheader CA", names,
	                                                list_len(names), why, sizeof why))) {
		snprintf(err, err_size, "requestheader CA (%s): %s",
		         cfg->auth.requestheader_client_ca_file
		             ? cfg->auth.requestheader_client_ca_file
		             : "requestheader-client-ca-file",
		         why);
		goto fail;
	}
	if (client_pem &&
	    !(s->client_ca = auth_new_pem(client_pem, "client CA", NULL, 0, why, sizeof why))) {
		snprintf(err, err_size, "client CA (%s): %s",
		         cfg->auth.client_ca_file ? cfg->auth.client_ca_file : "client-ca-file",
		         why);
		goto fail;
	}
	size_t rh_len = rh_pem ? strlen(rh_pem) : 0,
	       client_len = client_pem ? strlen(client_pem) : 0;
	s->ca_union_pem = malloc(rh_len + client_len + 2);
	if (!s->ca_union_pem)
		goto fail;
	snprintf(s->ca_union_pem, rh_len + client_len + 2, "%s%s%s", rh_pem ? rh_pem : "",
	         rh_len && rh_pem[rh_len - 1] != '\n' ? "\n" : "", client_pem ? client_pem : "");
	s->cn_fallback = !cfg->authorization.webhook;
	fingerprint(s, rh_pem, client_pem, names);
	free_list(names);
	free(rh_pem);
	free(client_pem);
	json_decref(doc);
	return s;
fail:
	if (!*err)
		snprintf(err, err_size, "out of memory");
	free_list(names);
	free(rh_pem);
	free(client_pem);
	json_decref(doc);
	authcfg_snapshot_free(s);
	return NULL;
}

void authcfg_snapshot_free(authcfg_snapshot *s)
{
	if (!s)
		return;
	auth_free(s->requestheader);
	auth_free(s->client_ca);
	free_list(s->username_headers);
	free_list(s->group_headers);
	free_list(s->extra_prefixes);
	free_list(s->uid_headers);
	free(s->ca_union_pem);
	free(s);
}

/* Fetches the ConfigMap.  *json NULL with 0: not found (no cluster values). */
static int fetch_configmap(authcfg *a, char **json, bool at_start, char *err, size_t err_size)
{
	kube_response res;
	*json = NULL;
	if (kube_call(a->kube, "GET", AUTHCFG_CONFIGMAP_PATH, NULL, &res, err, err_size) != 0)
		return -1;
	int rc = -1;
	if (res.code == 200) {
		*json = res.body;
		res.body = NULL;
		rc = 0;
	} else if (res.code == 404 && at_start) {
		log_msg(LOG_WARN, "kube-system/extension-apiserver-authentication not found: "
		                  "running without the cluster's front-proxy and client CAs");
		rc = 0;
	} else if (res.code == 403) {
		snprintf(
		    err, err_size,
		    "reading kube-system/extension-apiserver-authentication: HTTP 403; bind the "
		    "Role extension-apiserver-authentication-reader in kube-system to this "
		    "service account (RoleBinding smi-metrics-auth-reader)");
	} else if (res.code == 401) {
		snprintf(
		    err, err_size,
		    "reading kube-system/extension-apiserver-authentication: HTTP 401: the "
		    "kube-apiserver rejected our credentials (service account token, kubeconfig "
		    "user)");
	} else {
		snprintf(err, err_size,
		         "reading kube-system/extension-apiserver-authentication: HTTP %ld",
		         res.code);
	}
	kube_response_clear(&res);
	return rc;
}

/* Builds from the current sources. */
static authcfg_snapshot *load(authcfg *a, bool at_start, char *err, size_t err_size)
{
	char *json = NULL;
	if (a->kube && !a->cfg->auth.skip_lookup &&
	    fetch_configmap(a, &json, at_start, err, err_size) != 0)
		return NULL;
	authcfg_snapshot *s = authcfg_build(a->cfg, json, err, err_size);
	free(json);
	return s;
}

authcfg *authcfg_new(const config *cfg, kube_client *kube, char *err, size_t err_size)
{
	authcfg *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	a->cfg = cfg;
	a->kube = kube;
	pthread_mutex_init(&a->lock, NULL);
	a->current = load(a, true, err, err_size);
	if (!a->current) {
		authcfg_free(a);
		return NULL;
	}
	a->current->generation = ++a->next_generation;
	a->current->refs = 1; /* the holder's */
	log_msg(LOG_INFO, "authentication: front-proxy CA %s, client CA %s, username headers %s%s",
	        a->current->requestheader ? "loaded" : "none",
	        a->current->client_ca ? "loaded" : "none",
	        a->current->username_headers[0] ? a->current->username_headers[0] : "(none)",
	        a->current->username_headers[0] && a->current->username_headers[1] ? ", ..." : "");
	return a;
}

int authcfg_refresh(authcfg *a)
{
	char err[512] = "";
	authcfg_snapshot *fresh = load(a, false, err, sizeof err);
	pthread_mutex_lock(&a->lock);
	if (!fresh) {
		bool repeated = a->last_error && strcmp(a->last_error, err) == 0;
		if (!repeated) {
			free(a->last_error);
			a->last_error = strdup(err);
		}
		pthread_mutex_unlock(&a->lock);
		if (!repeated)
			log_msg(LOG_WARN, "authentication config: keeping the last good one: %s",
			        err);
		return -1;
	}
	free(a->last_error);
	a->last_error = NULL;
	if (memcmp(fresh->fingerprint, a->current->fingerprint, sizeof fresh->fingerprint) == 0) {
		pthread_mutex_unlock(&a->lock);
		authcfg_snapshot_free(fresh);
		return 0;
	}
	authcfg_snapshot *old = a->current;
	fresh->generation = ++a->next_generation;
	fresh->refs = 1;
	a->current = fresh;
	bool free_old = --old->refs == 0;
	pthread_mutex_unlock(&a->lock);
	if (free_old)
		authcfg_snapshot_free(old);
	log_msg(LOG_INFO, "authentication config changed: now generation %llu",
	        (unsigned long long)fresh->generation);
	return 1;
}

static void refresh_tick(void *arg)
{
	authcfg_refresh(arg);
}

int authcfg_start(authcfg *a, char *err, size_t err_size)
{
	a->ticker = ticker_start(a->cfg->auth.refresh_interval_ms, refresh_tick, a, err, err_size);
	return a->ticker ? 0 : -1;
}

authcfg_snapshot *authcfg_acquire(authcfg *a)
{
	pthread_mutex_lock(&a->lock);
	authcfg_snapshot *s = a->current;
	s->refs++;
	pthread_mutex_unlock(&a->lock);
	return s;
}

void authcfg_release(authcfg *a, authcfg_snapshot *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&a->lock);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&a->lock);
	if (last)
		authcfg_snapshot_free(s);
}

void authcfg_free(authcfg *a)
{
	if (!a)
		return;
	ticker_stop(a->ticker);
	if (a->current)
		authcfg_release(a, a->current);
	free(a->last_error);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

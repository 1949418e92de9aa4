/* kube: libcurl client for the kube-apiserver.  Credentials come from the
 * in-cluster service account or a kubeconfig's current context; a token
 * file is re-read every token_refresh_ms (projected tokens rotate), keeping
 * the last good token when a read fails. */
#include "kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "log.h"
#include "readfile.h"

#ifndef SMI_VERSION
#define SMI_VERSION "0.0.0"
#endif

#define MAX_BODY_BYTES   (8u << 20) /* a ConfigMap is at most 1 MiB */
#define MAX_FILE_BYTES   (1u << 20)
#define MAX_IDLE_HANDLES 8
#define MAX_ATTEMPTS     5

/* A PEM blob or a file path for libcurl. */
typedef struct pem_source {
	char *file;
	char *data; /* decoded *-data of a kubeconfig */
	size_t len;
} pem_source;

struct kube_client {
	char *server;
	pem_source ca, client_cert, client_key;
	bool insecure;
	char *token_file; /* re-read; NULL when the token is static or absent */
	uint32_t token_refresh_ms, timeout_ms, retry_base_ms;

	pthread_mutex_t lock; /* guards everything below */
	char *token;          /* current bearer token, may be NULL */
	double token_read_at; /* monotonic seconds */
	CURL *idle[MAX_IDLE_HANDLES];
	size_t n_idle;
};

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A token file holds the token, perhaps with a trailing newline. */
static char *read_token_file(const char *path, char *err, size_t err_size)
{
	char *token = readfile_all(path, MAX_FILE_BYTES, NULL, err, err_size);
	if (!token)
		return NULL;
	size_t n = strlen(token);
	while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
		token[--n] = '\0';
	if (n == 0 || strpbrk(token, "\r\n") != NULL) {
		snprintf(err, err_size, "%s: %s", path,
		         n == 0 ? "empty token" : "token spans lines");
		free(token);
		return NULL;
	}
	return token;
}

/* ---- kubeconfig ---- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *map_string(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_t *v = map_get(doc, map, key);
	return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* The `inner` mapping of the entry called `name` in the list `list_key`
 * (clusters[].cluster, users[].user, contexts[].context). */
static yaml_node_t *named_entry(yaml_document_t *doc, yaml_node_t *root, const char *list_key,
                                const char *inner, const char *name)
{
	yaml_node_t *list = map_get(doc, root, list_key);
	if (!list || list->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (yaml_node_item_t *i = list->data.sequence.items.start;
	     i < list->data.sequence.items.top; i++) {
		yaml_node_t *entry = yaml_document_get_node(doc, *i);
		const char *n = map_string(doc, entry, "name");
		if (n && strcmp(n, name) == 0)
			return map_get(doc, entry, inner);
	}
	return NULL;
}

/* Relative paths in a kubeconfig are relative to its directory (client-go). */
static char *resolve_path(const char *kubeconfig, const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	const char *slash = strrchr(kubeconfig, '/');
	size_t dir_len = slash ? (size_t)(slash - kubeconfig) : 1;
	char *out = malloc(dir_len + strlen(path) + 2);
	if (out)
		sprintf(out, "%.*s/%s", (int)dir_len, slash ? kubeconfig : ".", path);
	return out;
}

static bool decode_base64(const char *text, pem_source *out)
{
	size_t len = strlen(text);
	unsigned char *buf = malloc(len / 4 * 3 + 4);
	if (!buf)
		return false;
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int n1 = 0, n2 = 0;
	bool ok = ctx != NULL;
	if (ok) {
		EVP_DecodeInit(ctx);
		ok = EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)text, (int)len) >= 0 &&
		     EVP_DecodeFinal(ctx, buf + n1, &n2) == 1;
	}
	EVP_ENCODE_CTX_free(ctx);
	if (!ok) {
		free(buf);
		return false;
	}
	buf[n1 + n2] = '\0';
	out->data = (char *)buf;
	out->len = (size_t)(n1 + n2);
	return true;
}

/* A file key or its *-data twin. */
static bool pem_from_kubeconfig(yaml_document_t *doc, yaml_node_t *map, const char *file_key,
                                const char *data_key, const char *kubeconfig, pem_source *out)
{
	const char *data = map_string(doc, map, data_key);
	const char *file = map_string(doc, map, file_key);
	if (data && *data)
		return decode_base64(data, out);
	if (file && *file) {
		out->file = resolve_path(kubeconfig, file);
		return out->file != NULL;
	}
	return true;
}

static int load_kubeconfig(kube_client *k, const char *path, char *err, size_t err_size)
{
	int rc = -1;
	size_t len = 0;
	char *text = readfile_all(path, MAX_FILE_BYTES, &len, err, err_size);
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_parser = false, have_doc = false;
	if (!text)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, err_size, "%s: out of memory", path);
		goto out;
	}
	have_parser = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, err_size, "%s:%zu: YAML syntax error: %s", path,
		         parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
		goto out;
	}
	have_doc = true;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	const char *context_name = map_string(&doc, root, "current-context");
	yaml_node_t *context = named_entry(&doc, root, "contexts", "context", context_name);
	if (!context) {
		snprintf(err, err_size, "%s: current-context \"%s\" not found", path,
		         context_name ? context_name : "");
		goto out;
	}
	const char *cluster_name = map_string(&doc, context, "cluster");
	const char *user_name = map_string(&doc, context, "user");
	yaml_node_t *cluster = named_entry(&doc, root, "clusters", "cluster", cluster_name);
	yaml_node_t *user = named_entry(&doc, root, "users", "user", user_name);
	const char *server = map_string(&doc, cluster, "server");
	if (!server || strncmp(server, "https://", 8) != 0) {
		snprintf(err, err_size, "%s: cluster \"%s\" needs an https:// server", path,
		         cluster_name ? cluster_name : "");
		goto out;
	}
	k->server = strdup(server);
	const char *insecure = map_string(&doc, cluster, "insecure-skip-tls-verify");
	k->insecure = insecure && strcmp(insecure, "true") == 0;
	if (map_get(&doc, user, "exec") || map_get(&doc, user, "auth-provider")) {
		snprintf(err, err_size,
		         "%s: user \"%s\": exec and auth-provider credentials are not supported",
		         path, user_name ? user_name : "");
		goto out;
	}
	const char *token = map_string(&doc, user, "token");
	const char *token_file = map_string(&doc, user, "tokenFile");
	if (token && *token)
		k->token = strdup(token);
	else if (token_file && *token_file)
		k->token_file = resolve_path(path, token_file);
	if (!k->server ||
	    !pem_from_kubeconfig(&doc, cluster, "certificate-authority",
	                         "certificate-authority-data", path, &k->ca) ||
	    !pem_from_kubeconfig(&doc, user, "client-certificate", "client-certificate-data", path,
	                         &k->client_cert) ||
	    !pem_from_kubeconfig(&doc, user, "client-key", "client-key-data", path,
	                         &k->client_key)) {
		snprintf(err, err_size, "%s: bad base64 data or out of memory", path);
		goto out;
	}
	rc = 0;
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	free(text);
	return rc;
}

/* KUBERNETES_SERVICE_HOST/_PORT and the service account files. */
static int load_in_cluster(kube_client *k, const kube_settings *s, char *err, size_t err_size)
{
	if (s->server) {
		k->server = strdup(s->server);
	} else {
		const char *host = getenv("KUBERNETES_SERVICE_HOST");
		const char *port = getenv("KUBERNETES_SERVICE_PORT");
		if (!host || !*host || !port || !*port) {
			snprintf(err, err_size,
			         "kubernetes.inCluster: KUBERNETES_SERVICE_HOST and "
			         "KUBERNETES_SERVICE_PORT are not set "
			         "(not running in a pod? set kubernetes.server)");
			return -1;
		}
		size_t n = strlen(host) + strlen(port) + 16;
		k->server = malloc(n);
		if (k->server)
			snprintf(k->server, n,
			         strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
			         port);
	}
	k->ca.file = strdup(s->ca_file ? s->ca_file : KUBE_SA_DIR "/ca.crt");
	k->token_file = strdup(s->token_file ? s->token_file : KUBE_SA_DIR "/token");
	if (!k->server || !k->ca.file || !k->token_file) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	return 0;
}

static void pem_source_clear(pem_source *p)
{
	free(p->file);
	free(p->data);
}

kube_client *kube_client_new(const kube_settings *s, char *err, size_t err_size)
{
	kube_client *k = calloc(1, sizeof *k);
	if (!k) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	k->token_refresh_ms = s->token_refresh_ms ? s->token_refresh_ms : 60000;
	k->timeout_ms = s->timeout_ms ? s->timeout_ms : 10000;
	k->retry_base_ms = s->retry_base_ms ? s->retry_base_ms : 500;
	int rc = s->in_cluster ? load_in_cluster(k, s, err, err_size)
	                       : load_kubeconfig(k, s->kubeconfig, err, err_size);
	if (rc != 0)
		goto fail;
	if (k->token_file) {
		k->token = read_token_file(k->token_file, err, err_size);
		if (!k->token)
			goto fail;
		k->token_read_at = now_seconds();
	}
	/* libcurl is initialised by prom_client_new() (main creates it first);
	 * curl_easy_init() would do it lazily otherwise. */
	return k;
fail:
	kube_client_free(k);
	return NULL;
}

void kube_client_free(kube_client *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n_idle; i++)
		curl_easy_cleanup(k->idle[i]);
	pem_source_clear(&k->ca);
	pem_source_clear(&k->client_cert);
	pem_source_clear(&k->client_key);
	free(k->server);
	free(k->token_file);
	free(k->token);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

const char *kube_server(const kube_client *k)
{
	return k->server;
}

void kube_response_clear(kube_response *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* The current token (malloc'd copy, may be NULL); re-reads a token file
 * once it is older than token_refresh_ms.  A failed re-read keeps the old
 * token and is retried at the next call. */
static char *current_token(kube_client *k)
{
	pthread_mutex_lock(&k->lock);
	double now = now_seconds();
	if (k->token_file && now - k->token_read_at >= k->token_refresh_ms / 1000.0) {
		char err[256];
		char *fresh = read_token_file(k->token_file, err, sizeof err);
		if (fresh) {
			free(k->token);
			k->token = fresh;
			k->token_read_at = now;
		} else {
			log_msg(LOG_WARN, "kubernetes: keeping the previous token: %s", err);
		}
	}
	char *copy = k->token ? strdup(k->token) : NULL;
	pthread_mutex_unlock(&k->lock);
	return copy;
}

static CURL *take_handle(kube_client *k)
{
	CURL *h = NULL;
	pthread_mutex_lock(&k->lock);
	if (k->n_idle)
		h = k->idle[--k->n_idle];
	pthread_mutex_unlock(&k->lock);
	if (h)
		curl_easy_reset(h); /* keeps the connection cache */
	else
		h = curl_easy_init();
	return h;
}

static void return_handle(kube_client *k, CURL *h)
{
	pthread_mutex_lock(&k->lock);
	if (k->n_idle < MAX_IDLE_HANDLES) {
		k->idle[k->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	if (h)
		curl_easy_cleanup(h);
}

typedef struct body_buffer {
	char *data;
	size_t len, cap;
	bool too_big;
} body_buffer;

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	body_buffer *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > MAX_BODY_BYTES) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (!grown)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t note_retry_after(char *buf, size_t size, size_t nitems, void *userdata)
{
	size_t n = size * nitems;
	if (n >= 12 && strncasecmp(buf, "Retry-After:", 12) == 0)
		*(bool *)userdata = true;
	return n;
}

/* Inline kubeconfig data (*-data) needs libcurl's blob options (7.77). */
#if LIBCURL_VERSION_NUM >= 0x074d00
#define KUBE_HAVE_BLOBS 1
#else
#define KUBE_HAVE_BLOBS      0
#define CURLOPT_CAINFO_BLOB  CURLOPT_CAINFO
#define CURLOPT_SSLCERT_BLOB CURLOPT_SSLCERT
#define CURLOPT_SSLKEY_BLOB  CURLOPT_SSLKEY
#endif

static bool set_pem(CURL *h, CURLoption file_opt, CURLoption blob_opt, const pem_source *p)
{
	if (p->data) {
#if KUBE_HAVE_BLOBS
		struct curl_blob blob = {.data = p->data, .len = p->len, .flags = CURL_BLOB_COPY};
		return curl_easy_setopt(h, blob_opt, &blob) == CURLE_OK;
#else
		(void)blob_opt;
		log_msg(LOG_ERROR,
		        "kubeconfig *-data fields need libcurl 7.77 or later; use file paths");
		return false;
#endif
	}
	if (p->file)
		return curl_easy_setopt(h, file_opt, p->file) == CURLE_OK;
	return true;
}

static bool only_https(CURL *h)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	return curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK;
#else
	return curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS) == CURLE_OK;
#endif
}

typedef enum attempt_result { ATTEMPT_DONE, ATTEMPT_RETRY, ATTEMPT_FAILED } attempt_result;

/* One HTTP exchange.  A response that client-go would retry, or a reset
 * connection, gives ATTEMPT_RETRY. */
static attempt_result attempt(kube_client *k, const char *method, const char *url, const char *body,
                              kube_response *out, char *err, size_t err_size)
{
	attempt_result result = ATTEMPT_FAILED;
	struct curl_slist *headers = NULL;
	body_buffer buf = {0};
	bool retry_after = false;
	char *token = current_token(k);
	CURL *h = take_handle(k);
	if (!h) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	headers = curl_slist_append(headers, "Accept: application/json");
	if (body)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	if (token) {
		size_t n = strlen(token) + 32;
		char *line = malloc(n);
		if (line) {
			snprintf(line, n, "Authorization: Bearer %s", token);
			headers = curl_slist_append(headers, line);
			OPENSSL_cleanse(line, n);
			free(line);
		}
	}
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "smi-metrics/" SMI_VERSION) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)k->timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK || !only_https(h) ||
	    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, k->insecure ? 0L : 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, k->insecure ? 0L : 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, note_retry_after) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after) != CURLE_OK ||
	    (body && curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK) ||
	    !set_pem(h, CURLOPT_CAINFO, CURLOPT_CAINFO_BLOB, &k->ca) ||
	    !set_pem(h, CURLOPT_SSLCERT, CURLOPT_SSLCERT_BLOB, &k->client_cert) ||
	    !set_pem(h, CURLOPT_SSLKEY, CURLOPT_SSLKEY_BLOB, &k->client_key)) {
		snprintf(err, err_size, "cannot set up the request");
		goto out;
	}
	CURLcode cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		snprintf(err, err_size, "%s %s: %s", method, url,
		         buf.too_big ? "response larger than 8 MiB" : curl_easy_strerror(cc));
		/* Resets and half-closed connections are retried, as client-go
		 * retries "connection reset"; refusals and timeouts are not. */
		if (cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING)
			result = ATTEMPT_RETRY;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->code);
	out->body = buf.data ? buf.data : strdup("");
	out->body_len = buf.len;
	buf.data = NULL;
	if (!out->body) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	bool retryable = out->code == 429 || out->code == 500 || out->code == 504 || retry_after;
	if (retryable)
		snprintf(err, err_size, "%s %s: HTTP %ld", method, url, out->code);
	result = retryable ? ATTEMPT_RETRY : ATTEMPT_DONE;
out:
	if (h)
		return_handle(k, h);
	for (struct curl_slist *l = headers; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data)); /* the Authorization line */
	curl_slist_free_all(headers);
	free(buf.data);
	if (token) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	return result;
}

/* client-go's webhook backoff: base x 1.5^i, plus up to 20% jitter. */
static void backoff_sleep(const kube_client *k, int step)
{
	double ms = k->retry_base_ms;
	for (int i = 0; i < step; i++)
		ms *= 1.5;
	struct timespec seed;
	clock_gettime(CLOCK_REALTIME, &seed);
	ms += ms * 0.2 * (double)(seed.tv_nsec % 1000) / 1000.0;
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)((long long)ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int kube_call(kube_client *k, const char *method, const char *path, const char *body,
              kube_response *out, char *err, size_t err_size)
{
	memset(out, 0, sizeof *out);
	size_t n = strlen(k->server) + strlen(path) + 1;
	char *url = malloc(n);
	if (!url) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	snprintf(url, n, "%s%s", k->server, path);
	attempt_result r = ATTEMPT_FAILED;
	for (int i = 0; i < MAX_ATTEMPTS; i++) {
		kube_response_clear(out);
		out->code = 0;
		r = attempt(k, method, url, body, out, err, err_size);
		if (r != ATTEMPT_RETRY || i + 1 == MAX_ATTEMPTS)
			break;
		log_msg(LOG_DEBUG, "kubernetes: retrying after %s", err);
		backoff_sleep(k, i);
	}
	free(url);
	/* A retryable answer that stayed so is still an answer. */
	if (r == ATTEMPT_FAILED || (r == ATTEMPT_RETRY && out->code == 0)) {
		kube_response_clear(out);
		return -1;
	}
	return 0;
}

/* kube: the connection to the kube-apiserver for TokenReview,
 * SubjectAccessReview and the extension-apiserver-authentication ConfigMap.
 * In-cluster (service account token and CA files, KUBERNETES_SERVICE_HOST
 * and _PORT) or from a kubeconfig file; JSON calls with libcurl, 10 s
 * timeouts and client-go's retry policy for webhooks. */
#ifndef SMI_KUBE_H
#define SMI_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kube_client kube_client; /* thread-safe */

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kube_settings {
	bool in_cluster;
	const char *kubeconfig; /* used when !in_cluster */
	/* In-cluster overrides; NULL = environment / service account files. */
	const char *server;
	const char *ca_file;
	const char *token_file;
	uint32_t token_refresh_ms; /* token files are re-read this often */
	uint32_t timeout_ms;       /* per attempt */
	uint32_t retry_base_ms;    /* first backoff step; 0 = 500 (client-go) */
} kube_settings;

typedef struct kube_response {
	long code;  /* HTTP status */
	char *body; /* malloc'd, NUL-terminated */
	size_t body_len;
} kube_response;

/* Builds the client and reads the credentials once; NULL with a message. */
kube_client *kube_client_new(const kube_settings *settings, char *err, size_t err_size);
void kube_client_free(kube_client *k);

/* The base URL, e.g. "https://10.96.0.1:443" (borrowed). */
const char *kube_server(const kube_client *k);

/*
 * One JSON call (`body` may be NULL for GET).  Retries with backoff
 * 0.5 s x 1.5, jitter 0.2, at most 5 attempts, on connection resets, 429,
 * 500, 504 and any answer with Retry-After, as client-go's webhook client.
 * Returns 0 with *out filled for any HTTP answer (check out->code), or -1
 * with a message when no answer came.
 */
int kube_call(kube_client *k, const char *method, const char *path, const char *body,
              kube_response *out, char *err, size_t err_size);

void kube_response_clear(kube_response *r);

#endif

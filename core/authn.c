/* authn: the authenticator chain.  TokenReview answers are cached under an
 * HMAC of the token (never the token itself) in the single-flight cache:
 * code 200 = a cacheable answer (authenticated, or plainly not), anything
 * else = shared with concurrent waiters but not stored. */
#include "authn.h"

#include "hex.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

#define TOKEN_CACHE_ENTRIES 8192

struct authn {
	kube_client *kube;
	cache *tokens;
	double token_ttl_seconds;
	unsigned char hmac_key[32];
};

/* ---- identity ---- */

void identity_clear(identity *id)
{
	free(id->user);
	free(id->uid);
	for (size_t i = 0; i < id->n_groups; i++)
		free(id->groups[i]);
	free(id->groups);
	for (size_t i = 0; i < id->n_extra; i++) {
		free(id->extra[i].key);
		for (size_t j = 0; j < id->extra[i].n_values; j++)
			free(id->extra[i].values[j]);
		free(id->extra[i].values);
	}
	free(id->extra);
	memset(id, 0, sizeof *id);
}

bool identity_set_user(identity *id, const char *user)
{
	char *copy = strdup(user);
	if (!copy)
		return false;
	free(id->user);
	id->user = copy;
	return true;
}

static bool append_string(char ***list, size_t *n, const char *s)
{
	char **grown = realloc(*list, (*n + 1) * sizeof *grown);
	if (!grown)
		return false;
	*list = grown;
	if (!(grown[*n] = strdup(s)))
		return false;
	(*n)++;
	return true;
}

bool identity_add_group(identity *id, const char *group)
{
	return append_string(&id->groups, &id->n_groups, group);
}

bool identity_has_group(const identity *id, const char *group)
{
	for (size_t i = 0; i < id->n_groups; i++)
		if (strcmp(id->groups[i], group) == 0)
			return true;
	return false;
}

bool identity_add_extra(identity *id, const char *key, const char *value)
{
	size_t i = 0;
	while (i < id->n_extra && strcmp(id->extra[i].key, key) != 0)
		i++;
	if (i == id->n_extra) {
		identity_extra *grown = realloc(id->extra, (id->n_extra + 1) * sizeof *grown);
		if (!grown)
			return false;
		id->extra = grown;
		memset(&grown[i], 0, sizeof grown[i]);
		if (!(grown[i].key = strdup(key)))
			return false;
		id->n_extra++;
	}
	return append_string(&id->extra[i].values, &id->extra[i].n_values, value);
}

/* ---- requestheader ---- */

/* Lower-cases, then percent-decodes as Go's url.PathUnescape; a bad escape
 * keeps the lower-cased raw key.  `out` has room for strlen(in) + 1. */
static void extra_key(const char *in, char *out)
{
	size_t n = strlen(in);
	char *lower = out;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
	char decoded[1024];
	size_t w = 0;
	for (size_t r = 0; lower[r]; r++) {
		if (w + 1 >= sizeof decoded)
			return;
		if (lower[r] != '%') {
			decoded[w++] = lower[r];
			continue;
		}
		int hi = hex_digit_value(lower[r + 1]);
		int lo = hi >= 0 ? hex_digit_value(lower[r + 2]) : -1;
		if (lo < 0)
			return; /* invalid escape: keep the raw lower-cased key */
		decoded[w++] = (char)(hi * 16 + lo);
		r += 2;
	}
	decoded[w] = '\0';
	if (strlen(decoded) == w) /* a %00 would hide the rest: keep the raw key */
		memcpy(out, decoded, w + 1);
}

/* The first non-empty first value among the named headers. */
static const char *first_header_value(char *const *names, const authn_header *headers, size_t n)
{
	for (size_t k = 0; names[k]; k++) {
		for (size_t i = 0; i < n; i++) {
			if (strcasecmp(headers[i].name, names[k]) != 0)
				continue;
			/* Go's Header.Get: the first line of that name only. */
			if (headers[i].value && *headers[i].value)
				return headers[i].value;
			break;
		}
	}
	return NULL;
}

bool authn_identity_from_headers(const authcfg_snapshot *snap, const authn_header *headers,
                                 size_t n_headers, identity *out)
{
	memset(out, 0, sizeof *out);
	const char *user = first_header_value(snap->username_headers, headers, n_headers);
	if (!user || !identity_set_user(out, user))
		return false;
	const char *uid = first_header_value(snap->uid_headers, headers, n_headers);
	if (uid && !(out->uid = strdup(uid)))
		goto fail;
	for (size_t k = 0; snap->group_headers[k]; k++)
		for (size_t i = 0; i < n_headers; i++)
			if (strcasecmp(headers[i].name, snap->group_headers[k]) == 0 &&
			    headers[i].value && *headers[i].value &&
			    !identity_add_group(out, headers[i].value))
				goto fail;
	for (size_t k = 0; snap->extra_prefixes[k]; k++) {
		size_t plen = strlen(snap->extra_prefixes[k]);
		for (size_t i = 0; i < n_headers; i++) {
			const char *name = headers[i].name;
			if (strncasecmp(name, snap->extra_prefixes[k], plen) != 0 ||
			    strlen(name + plen) >= 1024)
				continue;
			char key[1024];
			extra_key(name + plen, key);
			if (!identity_add_extra(out, key, headers[i].value ? headers[i].value : ""))
				goto fail;
		}
	}
	return true;
fail:
	identity_clear(out);
	return false;
}

/* ---- bearer tokens ---- */

const char *authn_bearer_token(const char *authorization, size_t *len)
{
	if (!authorization)
		return NULL;
	/* strings.TrimSpace, then SplitN(" ", 3): parts[1] is the token. */
	while (*authorization == ' ' || *authorization == '\t')
		authorization++;
	const char *space = strchr(authorization, ' ');
	if (!space || (size_t)(space - authorization) != 6 ||
	    strncasecmp(authorization, "bearer", 6) != 0)
		return NULL;
	const char *token = space + 1;
	size_t n = strcspn(token, " ");
	while (n && (token[n - 1] == '\t' || token[n - 1] == '\r' || token[n - 1] == '\n'))
		n--;
	if (n == 0)
		return NULL;
	*len = n;
	return token;
}

void authn_token_cache_key(const authn *a, const char *token, size_t token_len, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	/* Upstream keys by audiences + token; delegated reviews have none. */
	if (!HMAC(EVP_sha256(), a->hmac_key, sizeof a->hmac_key, (const unsigned char *)token,
	          token_len, mac, &mac_len))
		mac_len = 0;
	for (unsigned i = 0; i < mac_len && i < 32; i++)
		sprintf(out + 2 * i, "%02x", mac[i]);
	out[2 * (mac_len < 32 ? mac_len : 32)] = '\0';
}

static bool identity_from_user_json(json_t *user, identity *id)
{
	const char *name = json_string_value(json_object_get(user, "username"));
	const char *uid = json_string_value(json_object_get(user, "uid"));
	if (!name || !identity_set_user(id, name))
		return false;
	if (uid && *uid && !(id->uid = strdup(uid)))
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(user, "groups"), i, v)
	{
		if (json_is_string(v) && !identity_add_group(id, json_string_value(v)))
			return false;
	}
	const char *key;
	json_t *values;
	json_object_foreach(json_object_get(user, "extra"), key, values)
	{
		json_array_foreach(values, i, v)
		{
			if (json_is_string(v) && !identity_add_extra(id, key, json_string_value(v)))
				return false;
		}
	}
	return true;
}

int authn_parse_token_review(const char *body, identity *id, bool *has_error, char *why,
                             size_t why_size)
{
	json_error_t jerr;
	json_t *doc = json_loads(body, 0, &jerr);
	json_t *status = json_object_get(doc, "status");
	int rc = -1;
	*has_error = false;
	memset(id, 0, sizeof *id);
	if (!json_is_object(status)) {
		snprintf(why, why_size, "TokenReview answer without status");
		goto out;
	}
	const char *error = json_string_value(json_object_get(status, "error"));
	*has_error = error && *error;
	if (!json_is_true(json_object_get(status, "authenticated"))) {
		snprintf(why, why_size, "invalid bearer token%s%s", *has_error ? ": " : "",
		         *has_error ? error : "");
		rc = 0;
		goto out;
	}
	if (!identity_from_user_json(json_object_get(status, "user"), id)) {
		identity_clear(id);
		snprintf(why, why_size, "TokenReview answer without a user name");
		goto out;
	}
	rc = 1;
out:
	json_decref(doc);
	return rc;
}

/* The cached form: the TokenReview's status.user, or "" for "not
 * authenticated". */
static char *user_json(const identity *id)
{
	json_t *groups = json_array(), *extra = json_object();
	for (size_t i = 0; i < id->n_groups; i++)
		json_array_append_new(groups, json_string(id->groups[i]));
	for (size_t i = 0; i < id->n_extra; i++) {
		json_t *values = json_array();
		for (size_t j = 0; j < id->extra[i].n_values; j++)
			json_array_append_new(values, json_string(id->extra[i].values[j]));
		json_object_set_new(extra, id->extra[i].key, values);
	}
	json_t *doc = json_pack("{s:s,s:s,s:o,s:o}", "username", id->user, "uid",
	                        id->uid ? id->uid : "", "groups", groups, "extra", extra);
	char *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return out;
}

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls TokenReview.  Returns the cache code: 200 with the user JSON (""
 * for not authenticated) or 401 with a reason (error answers, failures). */
static int review_token(authn *a, const char *token, size_t token_len, char **body_out)
{
	char why[512] = "";
	json_t *req = json_pack("{s:s,s:s,s:{s:s%}}", "apiVersion", "authentication.k8s.io/v1",
	                        "kind", "TokenReview", "spec", "token", token, token_len);
	char *text = req ? json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(req);
	kube_response res = {0};
	int code = 401;
	*body_out = NULL;
	if (!text) {
		snprintf(why, sizeof why, "out of memory");
	} else if (kube_call(a->kube, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", text,
	                     &res, why, sizeof why) != 0) {
		/* why is set */
	} else if (res.code != 200 && res.code != 201) {
		snprintf(why, sizeof why, "TokenReview: HTTP %ld", res.code);
	} else {
		identity id;
		bool has_error;
		int rc = authn_parse_token_review(res.body, &id, &has_error, why, sizeof why);
		if (rc == 1) {
			*body_out = user_json(&id);
			code = *body_out ? 200 : 401;
		} else if (rc == 0 && !has_error) {
			*body_out = strdup("");
			code = *body_out ? 200 : 401;
		}
		identity_clear(&id);
	}
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	if (res.body)
		OPENSSL_cleanse(res.body, res.body_len); /* the spec echoes the token */
	kube_response_clear(&res);
	if (code != 200)
		*body_out = strdup(why);
	return code;
}

/* Bearer token step.  1 user, 0 no opinion, -1 error (why set). */
static int authenticate_token(authn *a, const authn_request *req, identity *out, char *why,
                              size_t why_size)
{
	const char *authorization = NULL;
	for (size_t i = 0; i < req->n_headers && !authorization; i++)
		if (strcasecmp(req->headers[i].name, "Authorization") == 0)
			authorization = req->headers[i].value;
	size_t len = 0;
	const char *token = authn_bearer_token(authorization, &len);
	if (!token || !a->kube) /* standalone has no token authenticator */
		return 0;
	char key[65];
	authn_token_cache_key(a, token, len, key);
	cache_answer answer;
	cache_flight *flight;
	double now = monotonic_seconds();
	if (cache_begin(a->tokens, key, now, &answer, &flight) == CACHE_LEADER) {
		answer.code = review_token(a, token, len, &answer.body);
		answer.body_len = answer.body ? strlen(answer.body) : 0;
		cache_complete(a->tokens, flight, answer.code, answer.body ? answer.body : "",
		               answer.body_len, monotonic_seconds(), a->token_ttl_seconds);
	}
	int rc = -1;
	if (answer.code != 200 || !answer.body) {
		snprintf(why, why_size, "%s", answer.body ? answer.body : "TokenReview failed");
	} else if (!*answer.body) {
		snprintf(why, why_size, "invalid bearer token");
	} else {
		json_error_t jerr;
		json_t *user = json_loads(answer.body, 0, &jerr);
		memset(out, 0, sizeof *out);
		if (identity_from_user_json(user, out)) {
			snprintf(why, why_size, "token user=%s", out->user);
			rc = 1;
		} else {
			identity_clear(out);
			snprintf(why, why_size, "out of memory");
		}
		json_decref(user);
	}
	free(answer.body);
	return rc;
}

/* ---- the chain ---- */

/* Front proxy.  1 user, 0 no opinion, -1 error. */
static int authenticate_front_proxy(const authcfg_snapshot *snap, const authn_request *req,
                                    identity *out, char *why, size_t why_size)
{
	if (req->n_certs == 0 || !snap->requestheader)
		return 0;
	if (auth_check_front_proxy(snap->requestheader, req->der, req->der_len, req->n_certs, why,
	                           why_size) != AUTH_OK)
		return -1;
	if (authn_identity_from_headers(snap, req->headers, req->n_headers, out))
		return 1;
	if (!snap->cn_fallback)
		return 0; /* no username header: no opinion */
	/* Standalone: the front proxy itself is the user (legacy behaviour). */
	const char *cn = strstr(why, "cn=");
	return cn && cn[3] && identity_set_user(out, cn + 3) ? 1 : 0;
}

/* Client certificate.  1 user, 0 no opinion, -1 error. */
static int authenticate_client_cert(const authcfg_snapshot *snap, const authn_request *req,
                                    identity *out, char *why, size_t why_size)
{
	if (req->n_certs == 0 || !snap->client_ca)
		return 0;
	auth_subject subject;
	if (auth_check_client(snap->client_ca, req->der, req->der_len, req->n_certs, &subject, why,
	                      why_size) != AUTH_OK)
		return -1;
	int rc = 0;
	memset(out, 0, sizeof *out);
	if (subject.common_name[0]) {
		rc = identity_set_user(out, subject.common_name) ? 1 : -1;
		for (size_t i = 0; rc == 1 && i < subject.n_organizations; i++)
			if (!identity_add_group(out, subject.organizations[i]))
				rc = -1;
		if (rc == 1 &&
		    !identity_add_extra(out, "authentication.kubernetes.io/credential-id",
		                        subject.credential_id))
			rc = -1;
		if (rc != 1)
			identity_clear(out);
	}
	auth_subject_clear(&subject);
	return rc;
}

static void append_reason(char *all, size_t all_size, const char *one)
{
	size_t used = strlen(all);
	snprintf(all + used, all_size - used, "%s%s", used ? "; " : "", one);
}

authn_result authn_authenticate(authn *a, const authcfg_snapshot *snap, const authn_request *req,
                                identity *out, char *why, size_t why_size)
{
	char step[512];
	bool any_error = false;
	why[0] = '\0';
	memset(out, 0, sizeof *out);
	int (*const steps[3])(const authcfg_snapshot *, const authn_request *, identity *, char *,
	                      size_t) = {authenticate_front_proxy, authenticate_client_cert, NULL};
	for (int i = 0; i < 3; i++) {
		step[0] = '\0';
		int rc = steps[i] ? steps[i](snap, req, out, step, sizeof step)
		                  : authenticate_token(a, req, out, step, sizeof step);
		if (rc == 1) {
			/* Earlier errors are forgotten once a later step succeeds. */
			snprintf(why, why_size, "%s", step);
			if (strcmp(out->user, "system:anonymous") != 0 &&
			    !identity_has_group(out, "system:authenticated") &&
			    !identity_has_group(out, "system:unauthenticated") &&
			    !identity_add_group(out, "system:authenticated")) {
				identity_clear(out);
				snprintf(why, why_size, "out of memory");
				return AUTHN_UNAUTHORIZED;
			}
			return AUTHN_OK;
		}
		identity_clear(out);
		if (rc < 0) {
			any_error = true;
			append_reason(why, why_size, step);
		}
	}
	if (any_error)
		return AUTHN_UNAUTHORIZED;
	if (!identity_set_user(out, "system:anonymous") ||
	    !identity_add_group(out, "system:unauthenticated")) {
		identity_clear(out);
		snprintf(why, why_size, "out of memory");
		return AUTHN_UNAUTHORIZED;
	}
	snprintf(why, why_size, "anonymous");
	return AUTHN_ANONYMOUS;
}

authn *authn_new(kube_client *kube, uint32_t token_ttl_ms)
{
	authn *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->kube = kube;
	a->token_ttl_seconds = token_ttl_ms / 1000.0;
	a->tokens = cache_new(token_ttl_ms ? TOKEN_CACHE_ENTRIES : 0);
	if (!a->tokens || RAND_bytes(a->hmac_key, sizeof a->hmac_key) != 1) {
		authn_free(a);
		return NULL;
	}
	return a;
}

void authn_free(authn *a)
{
	if (!a)
		return;
	cache_free(a->tokens);
	OPENSSL_cleanse(a->hmac_key, sizeof a->hmac_key);
	free(a);
}

void authn_token_cache_stats(authn *a, cache_stats *out)
{
	cache_get_stats(a->tokens, out);
}

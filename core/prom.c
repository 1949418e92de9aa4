/* prom: the Prometheus HTTP API client (contract in prom.h).  Runs the
 * queries of one request together on a pooled curl multi handle and parses
 * each instant-vector answer into one exact-size allocation.  Speaks to
 * Prometheus-compatible backends as they are deployed: credentials from
 * files, TLS with a private CA or client certificate, tenant headers. */
#include "prom.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "secretfile.h"

/* The package version, passed by the Makefile as SMI_VERSION. */
#ifndef SMI_VERSION
#define SMI_VERSION "unknown"
#endif
#define PROM_USER_AGENT "smi-metrics/" SMI_VERSION

/* Queries whose URL-encoded form is longer than this many bytes travel in
 * a POST body: proxies and servers commonly cap the request line. */
#define PROM_MAX_GET_QUERY_BYTES 2000
/* milliseconds; a healthy in-cluster Prometheus accepts in well under 3s */
#define PROM_MAX_CONNECT_TIMEOUT_MS 3000
/* milliseconds; 24h, so that the value fits a 32-bit long for libcurl */
#define PROM_MAX_TIMEOUT_MS 86400000u
/* A vector answer nests 5 deep (with stats=all about 6): anything deeper
 * is rejected before jansson, whose parser recurses up to 2048 levels. */
#define PROM_MAX_JSON_DEPTH 32
/* Idle multi handles kept per client, and idle connections per handle:
 * bounds the connections left open to Prometheus at 16 * 8. */
#define PROM_POOL_MAX_IDLE        16
#define PROM_MAX_IDLE_CONNECTIONS 8L
/* milliseconds; an upper bound, libcurl wakes earlier when it needs to */
#define PROM_POLL_INTERVAL_MS 1000
/* seconds a TLS connection, or the CA bundle libcurl caches, is kept:
 * bounds how long rotated certificate files go unnoticed */
#define PROM_TLS_MAX_CONNECTION_SECONDS 300L

/*
 * Connection reuse.  libcurl documents that a connection cache shared
 * through CURLSH (CURL_LOCK_DATA_CONNECT) must not be used by concurrent
 * threads, so connections live in multi handles instead: each call to
 * prom_query_all() borrows one from the pool, runs its transfers on it and
 * hands it back with its idle connections, for the next call on whichever
 * thread.  A multi handle is only ever used by one thread at a time.  The
 * CURLSH holds the DNS cache, which is safe to share between threads.
 */
struct prom_client {
	/* Normalised, no trailing '/'; may carry userinfo; its host is
	 * the TLS server name when one is set (prom_redirect_server_name). */
	char *base_url;
	char *display_url; /* the configured URL without userinfo: for messages */
	uint32_t timeout_ms;
	prom_method method;
	size_t max_body_bytes; /* largest answer read or parsed */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	size_t n_share_locks; /* how many of share_locks are initialised */
	/* Built once, read-only after: Accept, Host (with a server name),
	 * the configured extra headers; POST adds its Content-Type. */
	struct curl_slist *get_headers;
	struct curl_slist *post_headers;
	secret_file *bearer_token;   /* NULL unless configured */
	secret_file *basic_username; /* both or neither */
	secret_file *basic_password;
	struct {
		bool enabled; /* an https URL */
		bool verify;  /* peer and host name; off only when asked */
		char *ca_file;
		char *cert_file;
		char *key_file;
		struct curl_slist *connect_to; /* with a server name: the real host */
	} tls;
	pthread_mutex_t pool_lock;
	bool pool_lock_ready;
	CURLM *idle_multis[PROM_POOL_MAX_IDLE]; /* under pool_lock */
	size_t n_idle_multis;                   /* under pool_lock */
};

/* One query in flight. */
typedef struct prom_transfer {
	CURL *easy;                   /* NULL once finished and cleaned up */
	bool in_multi;                /* easy was added to the multi handle */
	prom_result *result;          /* borrowed: the caller's slot */
	char *url;                    /* owned */
	char *form;                   /* owned: the POST body, NULL for a GET */
	const struct prom_call *call; /* borrowed: what the call's queries share */
	char *body;                   /* owned: the answer received so far */
	size_t body_len;              /* bytes */
	size_t body_cap;              /* bytes */
	size_t body_max;              /* bytes: the client's max_body_bytes */
	bool body_too_large;
	bool out_of_memory;
	bool finished; /* result->outcome and message are final */
	char curl_error[CURL_ERROR_SIZE];
} prom_transfer;

/* What the queries of one prom_query_all() call share: the header lists,
 * the client's or, with credential files, copies that add this call's
 * Authorization. */
#define PROM_CALL_MAX_SECRETS 2
typedef struct prom_call {
	struct curl_slist *get_headers;
	struct curl_slist *post_headers;
	bool owns_headers;
	/* Owned, wiped at the end: the credentials of this call, masked in
	 * its messages (a token; or a password and the encoded pair). */
	char *secrets[PROM_CALL_MAX_SECRETS];
	size_t n_secrets;
	uint32_t timeout_ms; /* per query: the client's, or less for this call */
} prom_call;

/*
 * curl_global_init() is not thread-safe and must run once per process
 * before any other libcurl call: the first prom_client_new() does it.
 * main() calls curl_global_cleanup() once at exit, after every client is
 * freed.  Written once under pthread_once, read-only afterwards.
 */
static pthread_once_t prom_curl_once = PTHREAD_ONCE_INIT;
static CURLcode prom_curl_init_code = CURLE_FAILED_INIT;

static void prom_curl_global_init(void)
{
	prom_curl_init_code = curl_global_init(CURL_GLOBAL_ALL);
}

const char *prom_outcome_name(prom_outcome outcome)
{
	switch (outcome) {
	case PROM_OK: return "ok";
	case PROM_UNAVAILABLE: return "unavailable";
	case PROM_TIMEOUT: return "timeout";
	case PROM_BAD_RESPONSE: return "bad_response";
	}
	return "unknown";
}

/* ---- messages ---- */

/* Keeps a message one printable line of valid UTF-8: it may quote
 * Prometheus' error text, and snprintf may cut a character in half. */
/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the
 * bytes there are not one (bad lead, missing continuation, overlong form,
 * surrogate, beyond U+10FFFF).  Stops at the terminating NUL. */
static size_t utf8_sequence_length(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Makes a message safe for a JSON Status and a log line, in place: control
 * characters become spaces and every byte that is not part of well-formed
 * UTF-8 (a backend's text, or a sequence cut by a %.Ns format or by the
 * buffer's end) becomes '?'. */
static void prom_message_tidy(char *message)
{
	unsigned char *p = (unsigned char *)message;
	while (*p) {
		if (*p < 0x20 || *p == 0x7f) {
			*p++ = ' ';
			continue;
		}
		size_t n = utf8_sequence_length(p);
		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

static void prom_fail(prom_result *result, prom_outcome outcome, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void prom_fail(prom_result *result, prom_outcome outcome, const char *format, ...)
{
	va_list args;

	result->outcome = outcome;
	va_start(args, format);
	vsnprintf(result->message, sizeof result->message, format, args);
	va_end(args);
	prom_message_tidy(result->message);
}

static void prom_copy_error(char *err, size_t err_size, const char *text)
{
	if (err && err_size > 0)
		snprintf(err, err_size, "%s", text);
}

/* "10s" or "250ms": how a timeout reads in a message. */
static void prom_format_ms(char *out, size_t out_size, long milliseconds)
{
	if (milliseconds % 1000 == 0)
		snprintf(out, out_size, "%lds", milliseconds / 1000);
	else
		snprintf(out, out_size, "%ldms", milliseconds);
}

/* "32 MiB", "64 KiB" or "70000 bytes": how a size limit reads in a message. */
static void prom_format_bytes(char *out, size_t out_size, size_t bytes)
{
	if (bytes % (1024 * 1024) == 0)
		snprintf(out, out_size, "%zu MiB", bytes / (1024 * 1024));
	else if (bytes % 1024 == 0)
		snprintf(out, out_size, "%zu KiB", bytes / 1024);
	else
		snprintf(out, out_size, "%zu bytes", bytes);
}

static void prom_fail_too_large(prom_result *result, size_t max_bytes)
{
	char limit[32];

	prom_format_bytes(limit, sizeof limit, max_bytes);
	prom_fail(result, PROM_BAD_RESPONSE, "Prometheus sent a response larger than %s", limit);
}

/* ---- parsing ---- */

/* Whether no array or object in body nests deeper than max_depth; a cheap
 * scan so that depth bombs never reach the recursive parser. */
static bool prom_json_depth_within(const char *body, size_t len, unsigned max_depth)
{
	unsigned depth = 0;
	bool in_string = false;
	bool escaped = false;

	for (size_t i = 0; i < len; i++) {
		char c = body[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

static bool prom_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Parses a sample value as Prometheus formats it: "NaN", "+Inf", "-Inf"
 * or a decimal number.  The syntax check comes first because strtod alone
 * would also take "inf", "nan(x)", hex floats and leading blanks.  Assumes
 * LC_NUMERIC is "C" (the server never calls setlocale). */
static bool prom_parse_sample_value(const char *text, double *value)
{
	const char *cursor = text;
	size_t digits = 0;
	char *end = NULL;
	double parsed;

	if (strcmp(text, "NaN") == 0) {
		*value = NAN;
		return true;
	}
	if (strcmp(text, "+Inf") == 0 || strcmp(text, "-Inf") == 0) {
		*value = text[0] == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (*cursor == '+' || *cursor == '-')
		cursor++;
	for (; prom_is_digit(*cursor); cursor++)
		digits++;
	if (*cursor == '.')
		for (cursor++; prom_is_digit(*cursor); cursor++)
			digits++;
	if (digits == 0)
		return false;
	if (*cursor == 'e' || *cursor == 'E') {
		cursor++;
		if (*cursor == '+' || *cursor == '-')
			cursor++;
		if (!prom_is_digit(*cursor))
			return false;
		while (prom_is_digit(*cursor))
			cursor++;
	}
	if (*cursor != '\0')
		return false;
	errno = 0;
	parsed = strtod(text, &end);
	if (end != cursor || (errno == ERANGE && isinf(parsed)))
		return false;
	*value = parsed;
	return true;
}

/* Sizes of the one block holding a whole vector:
 * [prom_series x n_series][prom_label x n_labels][label strings]. */
typedef struct prom_vector_size {
	size_t n_series;
	size_t n_labels;
	size_t string_bytes; /* names and values, each with its NUL */
} prom_vector_size;

_Static_assert(sizeof(prom_series) % _Alignof(prom_label) == 0,
               "labels must stay aligned when placed after the series");

/* Checks one element of data.result and adds what it needs to size; on
 * failure fills result and returns false. */
static bool prom_check_series(json_t *item, size_t index, prom_vector_size *size,
                              prom_result *result)
{
	json_t *metric = json_object_get(item, "metric");
	json_t *pair = json_object_get(item, "value");
	const char *name;
	json_t *label_value;
	const char *text;
	double value;

	if (!json_is_object(item)) {
		prom_fail(
		    result, PROM_BAD_RESPONSE,
		    "Prometheus returned a malformed vector: data.result[%zu] is not an object",
		    index);
		return false;
	}
	if (!json_is_object(metric)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned a malformed vector: data.result[%zu].metric is not "
		          "an object",
		          index);
		return false;
	}
	json_object_foreach(metric, name, label_value)
	{
		if (!json_is_string(label_value)) {
			prom_fail(result, PROM_BAD_RESPONSE,
			          "Prometheus returned a malformed vector: "
			          "data.result[%zu].metric.%.64s is not a string",
			          index, name);
			return false;
		}
		size->n_labels++;
		size->string_bytes += strlen(name) + 1 + json_string_length(label_value) + 1;
	}
	if (!pair && json_object_get(item, "histogram")) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned a native histogram at data.result[%zu]; only float "
		          "samples are supported",
		          index);
		return false;
	}
	if (!json_is_array(pair) || json_array_size(pair) != 2 ||
	    !json_is_number(json_array_get(pair, 0)) || !json_is_string(json_array_get(pair, 1))) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned a malformed vector: data.result[%zu].value is not "
		          "[time, \"value\"]",
		          index);
		return false;
	}
	text = json_string_value(json_array_get(pair, 1));
	if (!prom_parse_sample_value(text, &value)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned a malformed vector: data.result[%zu] has the sample "
		          "value \"%.40s\", which is not a number",
		          index, text);
		return false;
	}
	return true;
}

static int prom_label_compare(const void *left, const void *right)
{
	const prom_label *a = left;
	const prom_label *b = right;

	return strcmp(a->name, b->name);
}

static char *prom_place_string(char **cursor, const char *text, size_t len)
{
	char *placed = *cursor;

	memcpy(placed, text, len);
	placed[len] = '\0';
	*cursor += len + 1;
	return placed;
}

/* Copies the labels of an already checked series into the block. */
static void prom_copy_labels(json_t *item, prom_series *series, prom_label **label_cursor,
                             char **string_cursor)
{
	const char *name;
	json_t *label_value;

	series->labels = series->n_labels ? *label_cursor : NULL;
	json_object_foreach(json_object_get(item, "metric"), name, label_value)
	{
		prom_label *label = *label_cursor;
		label->name = prom_place_string(string_cursor, name, strlen(name));
		label->value = prom_place_string(string_cursor, json_string_value(label_value),
		                                 json_string_length(label_value));
		(*label_cursor)++;
	}
	if (series->n_labels > 1)
		qsort(series->labels, series->n_labels, sizeof(prom_label), prom_label_compare);
}

/* Turns a checked data.result array into result->series: one allocation
 * of exactly the size needed, released by prom_result_clear(). */
static bool prom_fill_vector(json_t *items, prom_result *result)
{
	prom_vector_size size = {.n_series = json_array_size(items)};
	size_t series_bytes, label_bytes, total;
	prom_series *series = NULL;
	prom_label *label_cursor;
	char *string_cursor;
	json_t *item;
	size_t index;

	if (size.n_series == 0)
		return true;
	/* First pass checks everything and sizes the block, so that the
	 * second pass cannot fail half way. */
	json_array_foreach(items, index, item)
	{
		if (!prom_check_series(item, index, &size, result))
			return false;
	}
	if (__builtin_mul_overflow(size.n_series, sizeof(prom_series), &series_bytes) ||
	    __builtin_mul_overflow(size.n_labels, sizeof(prom_label), &label_bytes) ||
	    __builtin_add_overflow(series_bytes, label_bytes, &total) ||
	    __builtin_add_overflow(total, size.string_bytes, &total) || !(series = malloc(total))) {
		prom_fail(result, PROM_UNAVAILABLE,
		          "out of memory while reading %zu series from Prometheus", size.n_series);
		return false;
	}
	label_cursor = (prom_label *)(series + size.n_series);
	string_cursor = (char *)(label_cursor + size.n_labels);
	json_array_foreach(items, index, item)
	{
		json_t *pair = json_object_get(item, "value");
		series[index].n_labels = json_object_size(json_object_get(item, "metric"));
		/* Checked in the first pass: cannot fail here. */
		(void)prom_parse_sample_value(json_string_value(json_array_get(pair, 1)),
		                              &series[index].value);
		prom_copy_labels(item, &series[index], &label_cursor, &string_cursor);
	}
	result->series = series;
	result->n_series = size.n_series;
	return true;
}

/* Checks the envelope: status "success" (or Prometheus' own error). */
static bool prom_check_status(json_t *root, prom_result *result)
{
	const char *status = json_string_value(json_object_get(root, "status"));
	const char *error_type, *error_text;

	if (!status) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus answered without a \"status\" string");
		return false;
	}
	if (strcmp(status, "success") == 0)
		return true;
	if (strcmp(status, "error") != 0) {
		prom_fail(result, PROM_BAD_RESPONSE, "Prometheus answered with status \"%.32s\"",
		          status);
		return false;
	}
	error_type = json_string_value(json_object_get(root, "errorType"));
	error_text = json_string_value(json_object_get(root, "error"));
	prom_fail(result, PROM_BAD_RESPONSE, "Prometheus reported an error (%.32s): %s",
	          error_type ? error_type : "unknown",
	          error_text ? error_text : "no details given");
	return false;
}

static bool prom_check_result_type(json_t *data, prom_result *result)
{
	const char *type = json_string_value(json_object_get(data, "resultType"));

	if (!type) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus answered without a \"data.resultType\" string");
		return false;
	}
	if (strcmp(type, "vector") == 0)
		return true;
	if (strcmp(type, "matrix") == 0 || strcmp(type, "scalar") == 0 ||
	    strcmp(type, "string") == 0)
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned a %s where a vector was expected", type);
	else
		prom_fail(
		    result, PROM_BAD_RESPONSE,
		    "Prometheus returned the result type \"%.32s\" where a vector was expected",
		    type);
	return false;
}

/* Loads a body no larger than max_bytes and no deeper than we accept;
 * NULL with result filled otherwise. */
static json_t *prom_load_json(const char *body, size_t len, size_t max_bytes, prom_result *result)
{
	json_error_t error;
	json_t *root;

	if (len > max_bytes) {
		prom_fail_too_large(result, max_bytes);
		return NULL;
	}
	if (!prom_json_depth_within(body, len, PROM_MAX_JSON_DEPTH)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned JSON nested deeper than %d levels",
		          PROM_MAX_JSON_DEPTH);
		return NULL;
	}
	/* Duplicate keys are refused so that label names stay unique. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
	if (!root) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned invalid JSON at line %d column %d: %s", error.line,
		          error.column, error.text);
		return NULL;
	}
	return root;
}

static prom_outcome prom_parse_vector_within(const char *body, size_t len, size_t max_bytes,
                                             prom_result *result)
{
	json_t *root = NULL;
	json_t *data, *items;

	result->outcome = PROM_OK;
	result->message[0] = '\0';
	result->series = NULL;
	result->n_series = 0;
	root = prom_load_json(body ? body : "", body ? len : 0, max_bytes, result);
	if (!root)
		goto out;
	if (!json_is_object(root)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus returned JSON that is not an object");
		goto out;
	}
	if (!prom_check_status(root, result))
		goto out;
	data = json_object_get(root, "data");
	if (!json_is_object(data)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus answered without a \"data\" object");
		goto out;
	}
	if (!prom_check_result_type(data, result))
		goto out;
	items = json_object_get(data, "result");
	if (!json_is_array(items)) {
		prom_fail(result, PROM_BAD_RESPONSE,
		          "Prometheus answered without a \"data.result\" array");
		goto out;
	}
	(void)prom_fill_vector(items, result);
out:
	json_decref(root);
	return result->outcome;
}

prom_outcome prom_parse_vector(const char *body, size_t len, prom_result *result)
{
	return prom_parse_vector_within(body, len, PROM_DEFAULT_MAX_RESPONSE_BYTES, result);
}

void prom_result_clear(prom_result *result)
{
	if (!result)
		return;
	/* The series, their labels and the label strings are one block. */
	free(result->series);
	result->series = NULL;
	result->n_series = 0;
}

/* ---- options ---- */

bool prom_method_from_name(const char *name, prom_method *out)
{
	static const struct {
		const char *name;
		prom_method method;
	} methods[] = {
	    {"auto", PROM_METHOD_AUTO},
	    {"get", PROM_METHOD_GET},
	    {"post", PROM_METHOD_POST},
	};

	for (size_t i = 0; name && i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(name, methods[i].name) == 0) {
			*out = methods[i].method;
			return true;
		}
	}
	return false;
}

/* RFC 9110 token characters. */
static bool prom_is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || prom_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

const char *prom_header_problem(const char *name, const char *value)
{
	/* Written by libcurl or this client, or framing: a second copy
	 * would confuse the backend or a proxy in between. */
	static const char *const managed[] = {
	    "Accept",         "Accept-Encoding",   "Connection",
	    "Content-Length", "Content-Type",      "Expect",
	    "Host",           "Keep-Alive",        "TE",
	    "Trailer",        "Transfer-Encoding", "Upgrade",
	    "User-Agent",
	};

	if (!name || name[0] == '\0')
		return "the header name is empty";
	if (strlen(name) > 256)
		return "the header name is longer than 256 characters";
	for (const char *p = name; *p; p++)
		if (!prom_is_token_char(*p))
			return "the header name may only have letters, digits and !#$%&'*+-.^_`|~";
	if (strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Proxy-Authorization") == 0)
		return "credentials are not taken from headers: use prometheus.bearerTokenFile or "
		       "prometheus.basicAuth, which are read from files";
	for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++)
		if (strcasecmp(name, managed[i]) == 0)
			return "this header is set by smi-metrics itself";
	if (!value || value[0] == '\0')
		return "the value is empty";
	if (strlen(value) > 8192)
		return "the value is longer than 8192 characters";
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return "the value must not contain line breaks or other control characters";
	return NULL;
}

const char *prom_server_name_problem(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > 253 || name[0] == '.' || name[0] == '-')
		return "must be a DNS name or an IPv4 address";
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || prom_is_digit(*p) ||
		      *p == '.' || *p == '-'))
			return "must be a DNS name or an IPv4 address";
	return NULL;
}

/* ---- the client ---- */

static void prom_share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *userptr)
{
	prom_client *client = userptr;

	(void)easy;
	(void)access;
	/* Cannot fail: a default mutex, initialised, locked by its owner only
	 * through this pair of callbacks; and there is nobody to tell. */
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		(void)pthread_mutex_lock(&client->share_locks[data]);
}

static void prom_share_unlock(CURL *easy, curl_lock_data data, void *userptr)
{
	prom_client *client = userptr;

	(void)easy;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		(void)pthread_mutex_unlock(&client->share_locks[data]);
}

static bool prom_share_setup(prom_client *client)
{
	client->share = curl_share_init();
	if (!client->share)
		return false;
	for (; client->n_share_locks < CURL_LOCK_DATA_LAST; client->n_share_locks++)
		if (pthread_mutex_init(&client->share_locks[client->n_share_locks], NULL) != 0)
			return false;
	/* DNS only: see "Connection reuse" at the top of the file.  SSL
	 * sessions are not shared either, newer libcurl documents that as
	 * unsupported across threads; pooled connections make new TLS
	 * handshakes rare anyway. */
	return curl_share_setopt(client->share, CURLSHOPT_USERDATA, client) == CURLSHE_OK &&
	       curl_share_setopt(client->share, CURLSHOPT_LOCKFUNC, prom_share_lock) ==
	           CURLSHE_OK &&
	       curl_share_setopt(client->share, CURLSHOPT_UNLOCKFUNC, prom_share_unlock) ==
	           CURLSHE_OK &&
	       curl_share_setopt(client->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK;
}

/* Header lists are wiped before they are freed: they may hold a header
 * value that is a secret, or this call's Authorization. */
static void prom_headers_free(struct curl_slist *list)
{
	for (struct curl_slist *node = list; node; node = node->next)
		explicit_bzero(node->data, strlen(node->data));
	curl_slist_free_all(list);
}

/* Appends "name: value" to *list; false when out of memory. */
static bool prom_header_append(struct curl_slist **list, const char *name, const char *value)
{
	char *line = NULL;
	struct curl_slist *grown;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return false;
	grown = curl_slist_append(*list, line);
	free(line);
	if (!grown)
		return false;
	*list = grown;
	return true;
}

/* The headers every query carries: Accept, the Host of the URL when a TLS
 * server name stands in for it (host_header, may be NULL), the configured
 * extra headers.  A POST adds its Content-Type. */
static bool prom_headers_setup(prom_client *client, const prom_options *options,
                               const char *host_header)
{
	struct curl_slist **lists[2] = {&client->get_headers, &client->post_headers};

	for (size_t i = 0; i < 2; i++) {
		struct curl_slist **list = lists[i];
		if (!prom_header_append(list, "Accept", "application/json") ||
		    (host_header && !prom_header_append(list, "Host", host_header)))
			return false;
		for (size_t h = 0; h < options->n_headers; h++)
			if (!prom_header_append(list, options->header_names[h],
			                        options->header_values[h]))
				return false;
	}
	if (!prom_header_append(&client->post_headers, "Content-Type",
	                        "application/x-www-form-urlencoded"))
		return false;
	/* No "Expect: 100-continue" round trip before a long query. */
	return curl_slist_append(client->post_headers, "Expect:") != NULL;
}

static bool prom_headers_valid(const prom_options *options, char *err, size_t err_size)
{
	for (size_t i = 0; i < options->n_headers; i++) {
		const char *name = options->header_names ? options->header_names[i] : NULL;
		const char *value = options->header_values ? options->header_values[i] : NULL;
		const char *problem = prom_header_problem(name, value);
		if (problem) {
			/* The name only: a header value may be a secret. */
			if (err && err_size)
				snprintf(err, err_size, "Prometheus header %.64s: %s",
				         name ? name : "(null)", problem);
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(name, options->header_names[j]) == 0) {
				if (err && err_size)
					snprintf(err, err_size,
					         "Prometheus header %.64s is given twice", name);
				return false;
			}
		}
	}
	return true;
}

/* Removes trailing slashes, so that "/api/v1/query" can be appended. */
static void prom_trim_slashes(char *url)
{
	size_t len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
}

static char *prom_url_part(CURLU *url, CURLUPart part, unsigned flags)
{
	char *text = NULL;

	if (curl_url_get(url, part, &text, flags) != CURLUE_OK)
		return NULL;
	return text;
}

static const char *prom_url_error(CURLUcode code)
{
#if LIBCURL_VERSION_NUM >= 0x075000
	return curl_url_strerror(code);
#else
	return code == CURLUE_OUT_OF_MEMORY ? "out of memory" : "malformed";
#endif
}

/* With a TLS server name: the connection still goes to the URL's host and
 * port (CURLOPT_CONNECT_TO), with the URL's Host header (*host_header,
 * owned), while the URL handed to libcurl names server_name so that SNI
 * and certificate verification use it. */
static bool prom_redirect_server_name(prom_client *client, CURLU *url, const char *server_name,
                                      char **host_header)
{
	char *host = prom_url_part(url, CURLUPART_HOST, 0);
	char *port = prom_url_part(url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	char *explicit_port = prom_url_part(url, CURLUPART_PORT, 0);
	char *connect_to = NULL;
	bool ok = false;

	if (!host || !port)
		goto out;
	if (explicit_port ? asprintf(host_header, "%s:%s", host, explicit_port) < 0
	                  : asprintf(host_header, "%s", host) < 0) {
		*host_header = NULL;
		goto out;
	}
	if (asprintf(&connect_to, "::%s:%s", host, port) < 0) {
		connect_to = NULL;
		goto out;
	}
	client->tls.connect_to = curl_slist_append(NULL, connect_to);
	ok = client->tls.connect_to &&
	     curl_url_set(url, CURLUPART_HOST, server_name, 0) == CURLUE_OK;
out:
	free(connect_to);
	curl_free(host);
	curl_free(port);
	curl_free(explicit_port);
	return ok;
}

/* Validates base_url and fills client->base_url and ->display_url (and,
 * with a TLS server name, the redirection: *host_header, owned); whether
 * the URL carries user info goes to *has_user_info.  The URL itself never
 * appears in err, it may hold a password. */
static bool prom_parse_base_url(prom_client *client, const char *base_url, const char *server_name,
                                char **host_header, bool *has_user_info, char *err, size_t err_size)
{
	CURLU *url = curl_url();
	CURLU *shown = NULL;
	CURLUcode code;
	char *part = NULL;
	char *text = NULL;
	bool ok = false;
	char message[160];

	if (!url) {
		prom_copy_error(err, err_size, "out of memory");
		goto out;
	}
	code = curl_url_set(url, CURLUPART_URL, base_url, CURLU_NON_SUPPORT_SCHEME);
	if (code != CURLUE_OK) {
		snprintf(message, sizeof message, "Prometheus URL is not valid: %s",
		         prom_url_error(code));
		prom_copy_error(err, err_size, message);
		goto out;
	}
	part = prom_url_part(url, CURLUPART_SCHEME, 0);
	if (!part || (strcmp(part, "http") != 0 && strcmp(part, "https") != 0)) {
		prom_copy_error(err, err_size,
		                "Prometheus URL must start with http:// or https://");
		goto out;
	}
	client->tls.enabled = strcmp(part, "https") == 0;
	curl_free(part);
	part = prom_url_part(url, CURLUPART_QUERY, 0);
	if (!part)
		part = prom_url_part(url, CURLUPART_FRAGMENT, 0);
	if (part) {
		prom_copy_error(err, err_size,
		                "Prometheus URL must not have a query or a fragment");
		goto out;
	}
	part = prom_url_part(url, CURLUPART_USER, 0);
	*has_user_info = part != NULL;
	shown = curl_url_dup(url);
	if (!shown || curl_url_set(shown, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(shown, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(shown, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK)
		goto out_of_memory;
	text = prom_url_part(shown, CURLUPART_URL, 0);
	if (!text || !(client->display_url = strdup(text)))
		goto out_of_memory;
	curl_free(text);
	text = NULL;
	if (server_name && !prom_redirect_server_name(client, url, server_name, host_header))
		goto out_of_memory;
	text = prom_url_part(url, CURLUPART_URL, 0);
	if (!text || !(client->base_url = strdup(text)))
		goto out_of_memory;
	prom_trim_slashes(client->base_url);
	prom_trim_slashes(client->display_url);
	ok = true;
	goto out;
out_of_memory:
	prom_copy_error(err, err_size, "out of memory");
out:
	curl_free(part);
	curl_free(text);
	curl_url_cleanup(shown);
	curl_url_cleanup(url);
	return ok;
}

/* Reads what (e.g. "TLS CA file") at path and checks it holds marker, so
 * that a wrong path fails at start-up rather than at the first query. */
static bool prom_check_pem_file(const char *what, const char *path, const char *marker, char *err,
                                size_t err_size)
{
	enum { PEM_MAX_BYTES = 4 * 1024 * 1024 };
	FILE *file = fopen(path, "rb");
	char *data = NULL;
	size_t len;
	bool ok = false;

	if (!file) {
		if (err && err_size)
			snprintf(err, err_size, "%s %s: cannot open: %s", what, path,
			         strerror(errno));
		return false;
	}
	data = malloc(PEM_MAX_BYTES + 1);
	if (!data) {
		prom_copy_error(err, err_size, "out of memory");
		goto out;
	}
	len = fread(data, 1, PEM_MAX_BYTES, file);
	if (ferror(file)) {
		if (err && err_size)
			snprintf(err, err_size, "%s %s: cannot read", what, path);
		goto out;
	}
	data[len] = '\0';
	ok = memmem(data, len, marker, strlen(marker)) != NULL;
	if (!ok && err && err_size)
		snprintf(err, err_size, "%s %s: no PEM \"%s\" found", what, path, marker);
out:
	if (data) {
		explicit_bzero(data, PEM_MAX_BYTES + 1); /* may be a private key */
		free(data);
	}
	(void)fclose(file);
	return ok;
}

static bool prom_copy_path(const char *path, char **out, char *err, size_t err_size)
{
	if (!path)
		return true;
	*out = strdup(path);
	if (!*out)
		prom_copy_error(err, err_size, "out of memory");
	return *out != NULL;
}

/* The TLS options that need no URL: consistent, names valid. */
static bool prom_tls_options_valid(const prom_options *options, char *err, size_t err_size)
{
	if (!options->tls_cert_file != !options->tls_key_file) {
		prom_copy_error(
		    err, err_size,
		    "a TLS client certificate needs both a certificate file and a key file");
		return false;
	}
	if (options->tls_server_name && prom_server_name_problem(options->tls_server_name)) {
		prom_copy_error(err, err_size,
		                "the TLS server name must be a DNS name or an IPv4 address");
		return false;
	}
	return true;
}

static bool prom_tls_setup(prom_client *client, const prom_options *options, char *err,
                           size_t err_size)
{
	bool configured = options->tls_ca_file || options->tls_cert_file ||
	                  options->tls_server_name || options->tls_insecure_skip_verify;

	client->tls.verify = !options->tls_insecure_skip_verify;
	if (!client->tls.enabled) {
		if (configured)
			prom_copy_error(err, err_size,
			                "TLS options need an https:// Prometheus URL");
		return !configured;
	}
	if ((options->tls_ca_file &&
	     !prom_check_pem_file("TLS CA file", options->tls_ca_file,
	                          "-----BEGIN CERTIFICATE-----", err, err_size)) ||
	    (options->tls_cert_file &&
	     (!prom_check_pem_file("TLS certificate file", options->tls_cert_file,
	                           "-----BEGIN CERTIFICATE-----", err, err_size) ||
	      !prom_check_pem_file("TLS key file", options->tls_key_file, "PRIVATE KEY-----", err,
	                           err_size))))
		return false;
	if (!prom_copy_path(options->tls_ca_file, &client->tls.ca_file, err, err_size) ||
	    !prom_copy_path(options->tls_cert_file, &client->tls.cert_file, err, err_size) ||
	    !prom_copy_path(options->tls_key_file, &client->tls.key_file, err, err_size))
		return false;
	if (!client->tls.verify)
		log_msg(LOG_WARN,
		        "TLS verification of Prometheus at %s is off "
		        "(prometheus.tls.insecureSkipVerify): anyone in between can read and "
		        "change the answers",
		        client->display_url);
	return true;
}

/* Opens the credential files; the URL's user info is only allowed alone. */
static bool prom_credentials_setup(prom_client *client, const prom_options *options,
                                   bool has_user_info, char *err, size_t err_size)
{
	bool basic = options->basic_auth_username_file || options->basic_auth_password_file;

	if (basic && (!options->basic_auth_username_file || !options->basic_auth_password_file)) {
		prom_copy_error(err, err_size,
		                "basic auth needs both a username file and a password file");
		return false;
	}
	if (basic && options->bearer_token_file) {
		prom_copy_error(err, err_size,
		                "set a bearer token file or basic auth files, not both");
		return false;
	}
	if ((basic || options->bearer_token_file) && has_user_info) {
		prom_copy_error(
		    err, err_size,
		    "Prometheus URL must not carry user info when credential files are set");
		return false;
	}
	if (options->bearer_token_file) {
		client->bearer_token = secret_file_open("bearer token file",
		                                        options->bearer_token_file, err, err_size);
		return client->bearer_token != NULL;
	}
	if (!basic)
		return true;
	client->basic_username = secret_file_open("basic auth username file",
	                                          options->basic_auth_username_file, err, err_size);
	client->basic_password =
	    client->basic_username
	        ? secret_file_open("basic auth password file", options->basic_auth_password_file,
	                           err, err_size)
	        : NULL;
	return client->basic_password != NULL;
}

/* Everything that needs no allocation: checked before anything is built. */
static bool prom_options_valid(const prom_options *options, char *err, size_t err_size)
{
	if (!options || !options->url || options->url[0] == '\0') {
		prom_copy_error(err, err_size, "Prometheus URL is empty");
		return false;
	}
	if (options->timeout_ms == 0 || options->timeout_ms > PROM_MAX_TIMEOUT_MS) {
		prom_copy_error(err, err_size, "Prometheus timeout must be between 1ms and 24h");
		return false;
	}
	if (options->method != PROM_METHOD_AUTO && options->method != PROM_METHOD_GET &&
	    options->method != PROM_METHOD_POST) {
		prom_copy_error(err, err_size, "Prometheus method must be auto, get or post");
		return false;
	}
	if (options->max_response_bytes != 0 &&
	    (options->max_response_bytes < PROM_MIN_MAX_RESPONSE_BYTES ||
	     options->max_response_bytes > PROM_MAX_MAX_RESPONSE_BYTES)) {
		prom_copy_error(
		    err, err_size,
		    "Prometheus maximum response size must be between 64 KiB and 1 GiB");
		return false;
	}
	return prom_tls_options_valid(options, err, err_size) &&
	       prom_headers_valid(options, err, err_size);
}

prom_client *prom_client_new_with_options(const prom_options *options, char *err, size_t err_size)
{
	prom_client *client = NULL;
	char *host_header = NULL;
	bool has_user_info = false;

	if (pthread_once(&prom_curl_once, prom_curl_global_init) != 0 ||
	    prom_curl_init_code != CURLE_OK) {
		prom_copy_error(err, err_size, "libcurl could not be initialised");
		goto fail;
	}
	if (!prom_options_valid(options, err, err_size))
		goto fail;
	client = calloc(1, sizeof *client);
	if (!client) {
		prom_copy_error(err, err_size, "out of memory");
		goto fail;
	}
	client->timeout_ms = options->timeout_ms;
	client->method = options->method;
	client->max_body_bytes = options->max_response_bytes ? options->max_response_bytes
	                                                     : PROM_DEFAULT_MAX_RESPONSE_BYTES;
	if (!prom_parse_base_url(client, options->url, options->tls_server_name, &host_header,
	                         &has_user_info, err, err_size) ||
	    !prom_tls_setup(client, options, err, err_size) ||
	    !prom_credentials_setup(client, options, has_user_info, err, err_size))
		goto fail;
	if (pthread_mutex_init(&client->pool_lock, NULL) != 0) {
		prom_copy_error(err, err_size, "could not create a mutex");
		goto fail;
	}
	client->pool_lock_ready = true;
	if (!prom_share_setup(client) || !prom_headers_setup(client, options, host_header)) {
		prom_copy_error(err, err_size, "out of memory setting up libcurl");
		goto fail;
	}
	free(host_header);
	return client;
fail:
	free(host_header);
	prom_client_free(client);
	return NULL;
}

prom_client *prom_client_new(const char *base_url, uint32_t timeout_ms, char *err, size_t err_size)
{
	const prom_options options = {.url = base_url, .timeout_ms = timeout_ms};

	return prom_client_new_with_options(&options, err, err_size);
}

void prom_client_free(prom_client *client)
{
	if (!client)
		return;
	/* Multi handles first: their connections may still use the share. */
	for (size_t i = 0; i < client->n_idle_multis; i++)
		(void)curl_multi_cleanup(client->idle_multis[i]);
	if (client->share && curl_share_cleanup(client->share) != CURLSHE_OK) {
		/* CURLSHE_IN_USE: a handle still refers to the share, which
		 * means a query is still running; leaking beats a crash. */
		client->share = NULL;
		return;
	}
	for (size_t i = 0; i < client->n_share_locks; i++)
		(void)pthread_mutex_destroy(&client->share_locks[i]);
	if (client->pool_lock_ready)
		(void)pthread_mutex_destroy(&client->pool_lock);
	prom_headers_free(client->get_headers);
	prom_headers_free(client->post_headers);
	curl_slist_free_all(client->tls.connect_to);
	secret_file_close(client->bearer_token);
	secret_file_close(client->basic_username);
	secret_file_close(client->basic_password);
	free(client->tls.ca_file);
	free(client->tls.cert_file);
	free(client->tls.key_file);
	free(client->base_url);
	free(client->display_url);
	free(client);
}

/* ---- the credentials of one call ---- */

static char *prom_base64(const unsigned char *data, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t used = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t group = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			group |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			group |= data[i + 2];
		out[used++] = alphabet[(group >> 18) & 63];
		out[used++] = alphabet[(group >> 12) & 63];
		out[used++] = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
		out[used++] = i + 2 < len ? alphabet[group & 63] : '=';
	}
	out[used] = '\0';
	return out;
}

/* Adds an owned secret of this call to those kept out of its messages. */
static void prom_call_keep_secret(prom_call *call, char *secret)
{
	if (call->n_secrets < PROM_CALL_MAX_SECRETS)
		call->secrets[call->n_secrets++] = secret;
	else
		secret_file_release(secret);
}

/* "Authorization: Basic ..." from the two files as they are now; the
 * password and the encoded pair go to call->secrets. */
static char *prom_basic_authorization(prom_client *client, prom_call *call, char *err,
                                      size_t err_size)
{
	char *user = secret_file_get(client->basic_username, err, err_size);
	char *password = user ? secret_file_get(client->basic_password, err, err_size) : NULL;
	char *pair = NULL, *encoded = NULL, *header = NULL;

	if (!password)
		goto out;
	/* RFC 7617: the user-id cannot contain a colon. */
	if (strchr(user, ':')) {
		if (err && err_size)
			snprintf(err, err_size, "basic auth username file %s: contains ':'",
			         secret_file_path(client->basic_username));
		goto out;
	}
	if (asprintf(&pair, "%s:%s", user, password) < 0) {
		pair = NULL;
		goto out_of_memory;
	}
	encoded = prom_base64((const unsigned char *)pair, strlen(pair));
	if (!encoded || asprintf(&header, "Authorization: Basic %s", encoded) < 0) {
		header = NULL;
		goto out_of_memory;
	}
	prom_call_keep_secret(call, password);
	prom_call_keep_secret(call, encoded);
	password = encoded = NULL;
	goto out;
out_of_memory:
	prom_copy_error(err, err_size, "out of memory");
out:
	secret_file_release(user);
	secret_file_release(password);
	secret_file_release(pair);
	secret_file_release(encoded);
	return header;
}

/* "Authorization: ..." for this call in *header (owned, release with
 * secret_file_release), or NULL when the client has no credential files;
 * what must not appear in messages goes to call->secrets.  False with err
 * filled when a file cannot be used. */
static bool prom_authorization(prom_client *client, prom_call *call, char **header, char *err,
                               size_t err_size)
{
	char *token;

	*header = NULL;
	if (client->basic_username) {
		*header = prom_basic_authorization(client, call, err, err_size);
		return *header != NULL;
	}
	if (!client->bearer_token)
		return true;
	token = secret_file_get(client->bearer_token, err, err_size);
	if (!token)
		return false;
	if (asprintf(header, "Authorization: Bearer %s", token) < 0) {
		*header = NULL;
		prom_copy_error(err, err_size, "out of memory");
	}
	prom_call_keep_secret(call, token);
	return *header != NULL;
}

/* A copy of base with first in front; NULL when out of memory. */
static struct curl_slist *prom_headers_with(const struct curl_slist *base, const char *first)
{
	struct curl_slist *list = curl_slist_append(NULL, first);

	for (; list && base; base = base->next) {
		struct curl_slist *grown = curl_slist_append(list, base->data);
		if (!grown) {
			prom_headers_free(list);
			return NULL;
		}
	}
	return list;
}

static void prom_call_end(prom_call *call)
{
	if (call->owns_headers) {
		prom_headers_free(call->get_headers);
		prom_headers_free(call->post_headers);
	}
	for (size_t i = 0; i < call->n_secrets; i++)
		secret_file_release(call->secrets[i]);
	*call = (prom_call){0};
}

/* Reads the credentials once for all queries of a call. */
static bool prom_call_begin(prom_client *client, prom_call *call, char *err, size_t err_size)
{
	char *authorization = NULL;

	*call = (prom_call){.get_headers = client->get_headers,
	                    .post_headers = client->post_headers,
	                    .timeout_ms = client->timeout_ms};
	if (!prom_authorization(client, call, &authorization, err, err_size)) {
		prom_call_end(call);
		return false;
	}
	if (!authorization)
		return true;
	call->owns_headers = true;
	call->get_headers = prom_headers_with(client->get_headers, authorization);
	call->post_headers = prom_headers_with(client->post_headers, authorization);
	secret_file_release(authorization);
	if (!call->get_headers || !call->post_headers) {
		prom_call_end(call);
		prom_copy_error(err, err_size, "out of memory");
		return false;
	}
	return true;
}

/* Masks this call's credentials in a message: some backends quote what
 * they refused (vmauth: 'cannot find the provided auth token "Bearer
 * ..."').  A credential cut off at the end of the message is masked too. */
static void prom_call_redact(const prom_call *call, char *message)
{
	size_t len = strlen(message);

	for (size_t i = 0; i < call->n_secrets; i++) {
		const char *secret = call->secrets[i];
		size_t secret_len = strlen(secret);
		char *found;

		if (secret_len == 0)
			continue;
		while ((found = strstr(message, secret)))
			memset(found, '*', secret_len);
		/* At least 4 characters, so that ordinary endings stay. */
		for (size_t tail = secret_len - 1 < len ? secret_len - 1 : len; tail >= 4; tail--) {
			if (strncmp(message + len - tail, secret, tail) == 0) {
				memset(message + len - tail, '*', tail);
				break;
			}
		}
	}
}

/* ---- the multi handle pool ---- */

static CURLM *prom_multi_new(void)
{
	CURLM *multi = curl_multi_init();

	if (multi &&
	    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, PROM_MAX_IDLE_CONNECTIONS) != CURLM_OK) {
		(void)curl_multi_cleanup(multi);
		multi = NULL;
	}
	return multi;
}

static CURLM *prom_pool_take(prom_client *client)
{
	CURLM *multi = NULL;

	if (pthread_mutex_lock(&client->pool_lock) == 0) {
		if (client->n_idle_multis > 0)
			multi = client->idle_multis[--client->n_idle_multis];
		(void)pthread_mutex_unlock(&client->pool_lock);
	}
	return multi ? multi : prom_multi_new();
}

/* Keeps a multi handle, with its idle connections, for the next call; one
 * that failed or does not fit the pool is closed instead. */
static void prom_pool_give_back(prom_client *client, CURLM *multi, bool healthy)
{
	if (healthy && pthread_mutex_lock(&client->pool_lock) == 0) {
		if (client->n_idle_multis < PROM_POOL_MAX_IDLE) {
			client->idle_multis[client->n_idle_multis++] = multi;
			multi = NULL;
		}
		(void)pthread_mutex_unlock(&client->pool_lock);
	}
	if (multi)
		(void)curl_multi_cleanup(multi);
}

/* ---- one transfer ---- */

static size_t prom_write_body(char *data, size_t size, size_t count, void *userdata)
{
	prom_transfer *transfer = userdata;
	size_t chunk = size * count; /* size is always 1 */
	size_t needed;

	if (chunk > transfer->body_max - transfer->body_len) {
		transfer->body_too_large = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	needed = transfer->body_len + chunk;
	if (needed > transfer->body_cap) {
		curl_off_t announced = -1;
		size_t capacity = transfer->body_cap ? transfer->body_cap * 2 : 16384;
		/* Sized exactly when Prometheus announced the length. */
		if (transfer->body_cap == 0 &&
		    curl_easy_getinfo(transfer->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
		                      &announced) == CURLE_OK &&
		    announced > 0 && (uint64_t)announced <= transfer->body_max)
			capacity = (size_t)announced;
		if (capacity < needed)
			capacity = needed;
		if (capacity > transfer->body_max)
			capacity = transfer->body_max;
		char *grown = realloc(transfer->body, capacity);
		if (!grown) {
			transfer->out_of_memory = true;
			return 0;
		}
		transfer->body = grown;
		transfer->body_cap = capacity;
	}
	memcpy(transfer->body + transfer->body_len, data, chunk);
	transfer->body_len = needed;
	return chunk;
}

#define PROM_SETOPT(easy, option, value)                                                           \
	do {                                                                                       \
		code = curl_easy_setopt((easy), (option), (value));                                \
		if (code != CURLE_OK)                                                              \
			goto out;                                                                  \
	} while (0)

/* TLS to the backend: TLS 1.2 or newer, verified unless asked otherwise. */
static CURLcode prom_tls_options(const prom_client *client, CURL *easy)
{
	CURLcode code = CURLE_OK;

	if (!client->tls.enabled)
		return CURLE_OK;
	PROM_SETOPT(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	PROM_SETOPT(easy, CURLOPT_SSL_VERIFYPEER, client->tls.verify ? 1L : 0L);
	PROM_SETOPT(easy, CURLOPT_SSL_VERIFYHOST, client->tls.verify ? 2L : 0L);
	if (client->tls.ca_file)
		PROM_SETOPT(easy, CURLOPT_CAINFO, client->tls.ca_file);
	if (client->tls.cert_file) {
		PROM_SETOPT(easy, CURLOPT_SSLCERT, client->tls.cert_file);
		PROM_SETOPT(easy, CURLOPT_SSLKEY, client->tls.key_file);
	}
	if (client->tls.connect_to)
		PROM_SETOPT(easy, CURLOPT_CONNECT_TO, client->tls.connect_to);
		/* Rotated certificate files take effect on new connections: keep
		 * none for longer than PROM_TLS_MAX_CONNECTION_SECONDS, nor the CA
		 * bundle that libcurl caches per multi handle. */
#if LIBCURL_VERSION_NUM >= 0x075000
	PROM_SETOPT(easy, CURLOPT_MAXLIFETIME_CONN, PROM_TLS_MAX_CONNECTION_SECONDS);
#endif
#if LIBCURL_VERSION_NUM >= 0x075700
	PROM_SETOPT(easy, CURLOPT_CA_CACHE_TIMEOUT, PROM_TLS_MAX_CONNECTION_SECONDS);
#endif
out:
	return code;
}

static CURLcode prom_transfer_options(const prom_client *client, prom_transfer *transfer)
{
	CURL *easy = transfer->easy;
	uint32_t timeout_ms = transfer->call->timeout_ms;
	long connect_ms = timeout_ms < PROM_MAX_CONNECT_TIMEOUT_MS ? (long)timeout_ms
	                                                           : PROM_MAX_CONNECT_TIMEOUT_MS;
	CURLcode code = CURLE_OK;

	PROM_SETOPT(easy, CURLOPT_URL, transfer->url);
	PROM_SETOPT(easy, CURLOPT_SHARE, client->share);
	PROM_SETOPT(easy, CURLOPT_PRIVATE, (void *)transfer);
	PROM_SETOPT(easy, CURLOPT_WRITEFUNCTION, prom_write_body);
	PROM_SETOPT(easy, CURLOPT_WRITEDATA, (void *)transfer);
	PROM_SETOPT(easy, CURLOPT_ERRORBUFFER, transfer->curl_error);
	/* Timeouts without SIGALRM: the server is multi-threaded. */
	PROM_SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	PROM_SETOPT(easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	PROM_SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	PROM_SETOPT(easy, CURLOPT_USERAGENT, PROM_USER_AGENT);
	/* Refused early when Prometheus announces a larger body. */
	PROM_SETOPT(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)transfer->body_max);
#if LIBCURL_VERSION_NUM >= 0x075500
	PROM_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	PROM_SETOPT(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	PROM_SETOPT(easy, CURLOPT_HTTPHEADER,
	            transfer->form ? transfer->call->post_headers : transfer->call->get_headers);
	if (transfer->form) {
		PROM_SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(transfer->form));
		PROM_SETOPT(easy, CURLOPT_POSTFIELDS, transfer->form);
	}
	code = prom_tls_options(client, easy);
out:
	return code;
}

#undef PROM_SETOPT

/* Builds the URL (and the POST form when the method asks for one). */
static bool prom_transfer_request(const prom_client *client, prom_transfer *transfer,
                                  const char *query, int64_t eval_unix_seconds)
{
	char *encoded = curl_easy_escape(transfer->easy, query, 0);
	bool ok = false;

	if (!encoded)
		goto out;
	if (client->method == PROM_METHOD_POST ||
	    (client->method == PROM_METHOD_AUTO && strlen(encoded) > PROM_MAX_GET_QUERY_BYTES)) {
		if (asprintf(&transfer->url, "%s/api/v1/query", client->base_url) < 0) {
			transfer->url = NULL;
			goto out;
		}
		if (asprintf(&transfer->form, "query=%s&time=%" PRId64, encoded,
		             eval_unix_seconds) < 0) {
			transfer->form = NULL;
			goto out;
		}
	} else if (asprintf(&transfer->url, "%s/api/v1/query?query=%s&time=%" PRId64,
	                    client->base_url, encoded, eval_unix_seconds) < 0) {
		transfer->url = NULL;
		goto out;
	}
	ok = true;
out:
	curl_free(encoded);
	return ok;
}

/* Sets up one query and adds it to multi; on failure the result says
 * why and the transfer counts as finished. */
static void prom_transfer_start(const prom_client *client, const prom_call *call, CURLM *multi,
                                prom_transfer *transfer, const char *query,
                                int64_t eval_unix_seconds)
{
	CURLcode code;
	CURLMcode multi_code;

	if (!query) {
		prom_fail(transfer->result, PROM_BAD_RESPONSE, "no query was given");
		goto failed;
	}
	transfer->easy = curl_easy_init();
	if (!transfer->easy || !prom_transfer_request(client, transfer, query, eval_unix_seconds)) {
		prom_fail(transfer->result, PROM_UNAVAILABLE,
		          "could not start a request to Prometheus: out of memory");
		goto failed;
	}
	transfer->call = call;
	transfer->body_max = client->max_body_bytes;
	code = prom_transfer_options(client, transfer);
	if (code != CURLE_OK) {
		prom_fail(transfer->result, PROM_UNAVAILABLE,
		          "could not set up a request to Prometheus: %s", curl_easy_strerror(code));
		goto failed;
	}
	multi_code = curl_multi_add_handle(multi, transfer->easy);
	if (multi_code != CURLM_OK) {
		prom_fail(transfer->result, PROM_UNAVAILABLE,
		          "could not start a request to Prometheus: %s",
		          curl_multi_strerror(multi_code));
		goto failed;
	}
	transfer->in_multi = true;
	return;
failed:
	transfer->finished = true;
}

/* What libcurl said, in words that carry no URL. */
static const char *prom_curl_detail(const prom_transfer *transfer, CURLcode code)
{
	return transfer->curl_error[0] ? transfer->curl_error : curl_easy_strerror(code);
}

static void prom_describe_timeout(const prom_client *client, const prom_transfer *transfer,
                                  prom_result *result)
{
	curl_off_t request_sent_us = 0; /* microseconds; 0: never got that far */
	char limit[32];

	/* Not the connect time: that stays 0 on a reused connection. */
	if (curl_easy_getinfo(transfer->easy, CURLINFO_PRETRANSFER_TIME_T, &request_sent_us) ==
	        CURLE_OK &&
	    request_sent_us == 0) {
		prom_format_ms(limit, sizeof limit,
		               transfer->call->timeout_ms < PROM_MAX_CONNECT_TIMEOUT_MS
		                   ? (long)transfer->call->timeout_ms
		                   : PROM_MAX_CONNECT_TIMEOUT_MS);
		prom_fail(result, PROM_TIMEOUT,
		          "Prometheus at %s did not accept the connection within %s",
		          client->display_url, limit);
		return;
	}
	prom_format_ms(limit, sizeof limit, (long)transfer->call->timeout_ms);
	prom_fail(result, PROM_TIMEOUT, "Prometheus did not answer within %s", limit);
}

/* Classifies a transfer that libcurl ended with an error. */
static void prom_describe_curl_failure(const prom_client *client, const prom_transfer *transfer,
                                       CURLcode code, long http_status, prom_result *result)
{
	long os_errno = 0;

	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		prom_fail(result, PROM_UNAVAILABLE, "Prometheus at %s could not be found: %s",
		          client->display_url, prom_curl_detail(transfer, code));
		return;
	case CURLE_COULDNT_CONNECT:
		if (curl_easy_getinfo(transfer->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
		    os_errno == ECONNREFUSED)
			prom_fail(result, PROM_UNAVAILABLE,
			          "Prometheus at %s refused the connection", client->display_url);
		else
			prom_fail(result, PROM_UNAVAILABLE,
			          "Prometheus at %s could not be reached: %s", client->display_url,
			          prom_curl_detail(transfer, code));
		return;
	case CURLE_OPERATION_TIMEDOUT: prom_describe_timeout(client, transfer, result); return;
	case CURLE_FILESIZE_EXCEEDED: /* announced as too large */
		prom_fail_too_large(result, transfer->body_max);
		return;
	case CURLE_WRITE_ERROR: /* prom_write_body refused */
		if (transfer->body_too_large)
			prom_fail_too_large(result, transfer->body_max);
		else
			prom_fail(result, PROM_UNAVAILABLE,
			          "out of memory while reading the answer of Prometheus");
		return;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		/* With TLS 1.3 a server refuses our certificate (or its
		 * absence) after the handshake, with an alert on first read. */
		if (http_status == 0 && client->tls.enabled &&
		    strstr(prom_curl_detail(transfer, code), " alert "))
			prom_fail(result, PROM_BAD_RESPONSE,
			          "TLS with Prometheus at %s failed: the server refused the "
			          "connection%s: %s",
			          client->display_url,
			          strstr(prom_curl_detail(transfer, code), "certificate required")
			              ? " (it wants a client certificate: prometheus.tls.certFile)"
			              : "",
			          prom_curl_detail(transfer, code));
		else if (http_status == 0)
			prom_fail(result, PROM_UNAVAILABLE,
			          "Prometheus at %s closed the connection without answering: %s",
			          client->display_url, prom_curl_detail(transfer, code));
		else
			prom_fail(result, PROM_BAD_RESPONSE, "Prometheus broke off its answer: %s",
			          prom_curl_detail(transfer, code));
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
		prom_fail(result, PROM_BAD_RESPONSE,
		          "TLS with Prometheus at %s failed: certificate verification failed: %s",
		          client->display_url, prom_curl_detail(transfer, code));
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		prom_fail(result, PROM_BAD_RESPONSE, "TLS with Prometheus at %s failed: %s",
		          client->display_url, prom_curl_detail(transfer, code));
		return;
	default:
		prom_fail(result, PROM_UNAVAILABLE, "the request to Prometheus at %s failed: %s",
		          client->display_url, prom_curl_detail(transfer, code));
		return;
	}
}

/* The outcome of a non-2xx answer.  503 is the backend overloaded or
 * shutting down, 429 a tenant over its limits (Mimir, Cortex, Thanos): both
 * pass.  504 (a query frontend's gateway timeout) and the errorType
 * "timeout" are the query running out of time. */
static prom_outcome prom_http_error_outcome(long http_status, const char *error_type)
{
	if (http_status == 504 || (error_type && strcmp(error_type, "timeout") == 0))
		return PROM_TIMEOUT;
	if (http_status == 503 || http_status == 429)
		return PROM_UNAVAILABLE;
	return PROM_BAD_RESPONSE;
}

/* Where to look when the backend refuses a request, "" when unclear. */
static const char *prom_http_error_hint(long http_status)
{
	switch (http_status) {
	case 401:
	case 403: return "; check prometheus.bearerTokenFile, basicAuth and headers";
	case 404: return "; check the path in prometheus.url";
	case 405:
	case 413:
	case 414:
	case 431: return "; try another prometheus.method";
	default: return "";
	}
}

/* The first line of a plain-text error body, as Cortex, Mimir and proxies
 * send them ("no org id"), in printable ASCII; "" for an empty, HTML or
 * JSON body. */
static void prom_text_excerpt(const char *body, size_t len, char *out, size_t out_size)
{
	size_t start = 0, used = 0;

	out[0] = '\0';
	while (start < len && (body[start] == ' ' || body[start] == '\t' || body[start] == '\r' ||
	                       body[start] == '\n'))
		start++;
	if (start == len || body[start] == '<' || body[start] == '{' || body[start] == '[')
		return;
	for (size_t i = start; i < len && body[i] != '\r' && body[i] != '\n' && used + 1 < out_size;
	     i++) {
		unsigned char c = (unsigned char)body[i];
		out[used++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	while (used > 0 && out[used - 1] == ' ')
		used--;
	out[used] = '\0';
}

/* Classifies a non-2xx answer, quoting the backend's error JSON (or the
 * first line of its plain-text error) and saying where to look. */
static void prom_describe_http_error(const prom_transfer *transfer, long http_status,
                                     prom_result *result)
{
	prom_result scratch = {0};
	const char *body = transfer->body ? transfer->body : "";
	json_t *root = prom_load_json(body, transfer->body_len, transfer->body_max, &scratch);
	const char *error_type = json_string_value(json_object_get(root, "errorType"));
	const char *error_text = json_string_value(json_object_get(root, "error"));
	prom_outcome outcome = prom_http_error_outcome(http_status, error_type);
	const char *hint = prom_http_error_hint(http_status);
	char excerpt[161];

	if (error_text) {
		prom_fail(result, outcome, "Prometheus answered HTTP %ld (%.32s): %s%s",
		          http_status, error_type ? error_type : "error", error_text, hint);
		goto out;
	}
	prom_text_excerpt(body, transfer->body_len, excerpt, sizeof excerpt);
	/* Before the hint follows: a credential cut off at the end of the
	 * excerpt would no longer be at the end of the message. */
	prom_call_redact(transfer->call, excerpt);
	if (excerpt[0])
		prom_fail(result, outcome, "Prometheus answered HTTP %ld: %s%s", http_status,
		          excerpt, hint);
	else
		prom_fail(result, outcome, "Prometheus answered HTTP %ld%s", http_status, hint);
out:
	json_decref(root);
}

static double prom_seconds_since(const struct timespec *started)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	return (double)(now.tv_sec - started->tv_sec) +
	       (double)(now.tv_nsec - started->tv_nsec) / 1e9;
}

/* Turns a transfer libcurl reports done into its result. */
static void prom_transfer_finish(const prom_client *client, prom_transfer *transfer, CURLcode code,
                                 const struct timespec *started)
{
	prom_result *result = transfer->result;
	long http_status = 0;

	if (curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &http_status) != CURLE_OK)
		http_status = 0;
	if (code != CURLE_OK)
		prom_describe_curl_failure(client, transfer, code, http_status, result);
	else if (http_status < 200 || http_status > 299)
		prom_describe_http_error(transfer, http_status, result);
	else
		(void)prom_parse_vector_within(transfer->body, transfer->body_len,
		                               transfer->body_max, result);
	/* The body is no longer needed: free it before the others finish. */
	free(transfer->body);
	transfer->body = NULL;
	transfer->body_len = transfer->body_cap = 0;
	transfer->finished = true;
	result->seconds = prom_seconds_since(started);
}

/* Detaches and frees the easy handle; false if the multi handle refused,
 * which makes it unfit to keep. */
static bool prom_transfer_detach(CURLM *multi, prom_transfer *transfer)
{
	bool ok = true;

	if (transfer->in_multi && curl_multi_remove_handle(multi, transfer->easy) != CURLM_OK)
		ok = false;
	transfer->in_multi = false;
	curl_easy_cleanup(transfer->easy);
	transfer->easy = NULL;
	return ok;
}

/* Handles every transfer libcurl has finished since the last call. */
static bool prom_collect_finished(const prom_client *client, CURLM *multi,
                                  const struct timespec *started)
{
	CURLMsg *message;
	int queued = 0;
	bool ok = true;

	while ((message = curl_multi_info_read(multi, &queued))) {
		CURL *easy = message->easy_handle;
		CURLcode code = message->data.result; /* message dies on remove */
		char *private_data = NULL;
		prom_transfer *transfer;

		if (message->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private_data) != CURLE_OK ||
		    !private_data)
			continue;
		transfer = (prom_transfer *)private_data;
		prom_transfer_finish(client, transfer, code, started);
		ok = prom_transfer_detach(multi, transfer) && ok;
	}
	return ok;
}

/* Drives every transfer on multi to its end; each has its own timeout, so
 * this returns within about the client timeout. */
static bool prom_run_transfers(const prom_client *client, CURLM *multi,
                               const struct timespec *started, CURLMcode *failure)
{
	int running = 0;
	CURLMcode code = curl_multi_perform(multi, &running);
	bool ok = true;

	while (code == CURLM_OK) {
		ok = prom_collect_finished(client, multi, started) && ok;
		if (running == 0)
			break;
		code = curl_multi_poll(multi, NULL, 0, PROM_POLL_INTERVAL_MS, NULL);
		if (code == CURLM_OK)
			code = curl_multi_perform(multi, &running);
	}
	*failure = code;
	return ok && code == CURLM_OK;
}

static void prom_fail_all(prom_result *results, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++)
		prom_fail(&results[i], PROM_UNAVAILABLE, "could not query Prometheus: %s", why);
}

void prom_query_all(prom_client *client, const char *const *queries, size_t n,
                    int64_t eval_unix_seconds, prom_result *results)
{
	prom_query_all_within(client, queries, n, eval_unix_seconds, 0, results);
}

void prom_query_all_within(prom_client *client, const char *const *queries, size_t n,
                           int64_t eval_unix_seconds, uint32_t timeout_ms, prom_result *results)
{
	prom_transfer *transfers = NULL;
	CURLM *multi = NULL;
	CURLMcode multi_code = CURLM_OK;
	bool multi_healthy = false;
	struct timespec started;
	prom_call call;
	char why[200];

	if (!results || n == 0)
		return;
	memset(results, 0, n * sizeof *results);
	if (!client || !queries) {
		prom_fail_all(results, n, "no client or no queries");
		return;
	}
	if (!prom_call_begin(client, &call, why, sizeof why)) {
		prom_fail_all(results, n, why);
		return;
	}
	if (timeout_ms > 0 && timeout_ms < call.timeout_ms)
		call.timeout_ms = timeout_ms; /* the request's budget is shorter */
	if (clock_gettime(CLOCK_MONOTONIC, &started) != 0)
		memset(&started, 0, sizeof started);
	transfers = calloc(n, sizeof *transfers);
	multi = transfers ? prom_pool_take(client) : NULL;
	if (!multi) {
		prom_fail_all(results, n, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		transfers[i].result = &results[i];
		prom_transfer_start(client, &call, multi, &transfers[i], queries[i],
		                    eval_unix_seconds);
	}
	multi_healthy = prom_run_transfers(client, multi, &started, &multi_code);
out:
	for (size_t i = 0; transfers && i < n; i++) {
		prom_transfer *transfer = &transfers[i];
		if (!transfer->finished)
			prom_fail(transfer->result, PROM_UNAVAILABLE,
			          "libcurl failed while talking to Prometheus: %s",
			          curl_multi_strerror(multi_code));
		if (transfer->easy && !prom_transfer_detach(multi, transfer))
			multi_healthy = false;
		free(transfer->url);
		free(transfer->form);
		free(transfer->body);
	}
	if (multi)
		prom_pool_give_back(client, multi, multi_healthy);
	free(transfers);
	for (size_t i = 0; i < n; i++)
		prom_call_redact(&call, results[i].message);
	prom_call_end(&call);
}

/* prom: the Prometheus HTTP API client (contract in prom.h).  Runs the
 * queries of one request together on a pooled curl multi handle and parses
 * each instant-vector answer into one exact-size allocation. */
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

/* The package version, passed by the Makefile as SMI_VERSION. */
#ifndef SMI_VERSION
#define SMI_VERSION "unknown"
#endif
#define PROM_USER_AGENT "smi-metrics/" SMI_VERSION

/* Largest answer read or parsed, in bytes (about 200k typical series). */
#define PROM_MAX_BODY_BYTES ((size_t)32 * 1024 * 1024)
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
#define PROM_POOL_MAX_IDLE 16
#define PROM_MAX_IDLE_CONNECTIONS 8L
/* milliseconds; an upper bound, libcurl wakes earlier when it needs to */
#define PROM_POLL_INTERVAL_MS 1000

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
	char *base_url;    /* normalised, may carry userinfo, no trailing '/' */
	char *display_url; /* base_url without userinfo: used in messages */
	uint32_t timeout_ms;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	size_t n_share_locks; /* how many of share_locks are initialised */
	struct curl_slist *get_headers;  /* built once, read-only after */
	struct curl_slist *post_headers; /* built once, read-only after */
	pthread_mutex_t pool_lock;
	bool pool_lock_ready;
	CURLM *idle_multis[PROM_POOL_MAX_IDLE]; /* under pool_lock */
	size_t n_idle_multis;                   /* under pool_lock */
};

/* One query in flight. */
typedef struct prom_transfer {
	CURL *easy;          /* NULL once finished and cleaned up */
	bool in_multi;       /* easy was added to the multi handle */
	prom_result *result; /* borrowed: the caller's slot */
	char *url;           /* owned */
	char *form;          /* owned: the POST body, NULL for a GET */
	char *body;          /* owned: the answer received so far */
	size_t body_len;     /* bytes */
	size_t body_cap;     /* bytes */
	bool body_too_large;
	bool out_of_memory;
	bool finished; /* result->outcome and message are final */
	char curl_error[CURL_ERROR_SIZE];
} prom_transfer;

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
	case PROM_OK:
		return "ok";
	case PROM_UNAVAILABLE:
		return "unavailable";
	case PROM_TIMEOUT:
		return "timeout";
	case PROM_BAD_RESPONSE:
		return "bad_response";
	}
	return "unknown";
}

/* ---- messages ---- */

/* Keeps a message one printable line of valid UTF-8: it may quote
 * Prometheus' error text, and snprintf may cut a character in half. */
static void prom_message_tidy(char *message)
{
	size_t len = 0;
	size_t continuation = 0;
	unsigned char lead;
	size_t needed;

	for (; message[len] != '\0'; len++) {
		unsigned char c = (unsigned char)message[len];
		if (c < 0x20 || c == 0x7f)
			message[len] = ' ';
	}
	while (continuation < len && continuation < 3 &&
	       ((unsigned char)message[len - 1 - continuation] & 0xc0) == 0x80)
		continuation++;
	if (continuation == len)
		return;
	lead = (unsigned char)message[len - 1 - continuation];
	needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (continuation + 1 < needed)
		message[len - 1 - continuation] = '\0';
}

static void prom_fail(prom_result *result, prom_outcome outcome,
		      const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void prom_fail(prom_result *result, prom_outcome outcome,
		      const char *format, ...)
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

/* ---- parsing ---- */

/* Whether no array or object in body nests deeper than max_depth; a cheap
 * scan so that depth bombs never reach the recursive parser. */
static bool prom_json_depth_within(const char *body, size_t len,
				   unsigned max_depth)
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
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned a malformed vector: data.result[%zu] is not an object",
			  index);
		return false;
	}
	if (!json_is_object(metric)) {
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned a malformed vector: data.result[%zu].metric is not an object",
			  index);
		return false;
	}
	json_object_foreach(metric, name, label_value) {
		if (!json_is_string(label_value)) {
			prom_fail(result, PROM_BAD_RESPONSE,
				  "Prometheus returned a malformed vector: data.result[%zu].metric.%.64s is not a string",
				  index, name);
			return false;
		}
		size->n_labels++;
		size->string_bytes += strlen(name) + 1 +
				      json_string_length(label_value) + 1;
	}
	if (!pair && json_object_get(item, "histogram")) {
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned a native histogram at data.result[%zu]; only float samples are supported",
			  index);
		return false;
	}
	if (!json_is_array(pair) || json_array_size(pair) != 2 ||
	    !json_is_number(json_array_get(pair, 0)) ||
	    !json_is_string(json_array_get(pair, 1))) {
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned a malformed vector: data.result[%zu].value is not [time, \"value\"]",
			  index);
		return false;
	}
	text = json_string_value(json_array_get(pair, 1));
	if (!prom_parse_sample_value(text, &value)) {
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned a malformed vector: data.result[%zu] has the sample value \"%.40s\", which is not a number",
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
static void prom_copy_labels(json_t *item, prom_series *series,
			     prom_label **label_cursor, char **string_cursor)
{
	const char *name;
	json_t *label_value;

	series->labels = series->n_labels ? *label_cursor : NULL;
	json_object_foreach(json_object_get(item, "metric"), name, label_value) {
		prom_label *label = *label_cursor;
		label->name = prom_place_string(string_cursor, name, strlen(name));
		label->value = prom_place_string(string_cursor,
						 json_string_value(label_value),
						 json_string_length(label_value));
		(*label_cursor)++;
	}
	if (series->n_labels > 1)
		qsort(series->labels, series->n_labels, sizeof(prom_label),
		      prom_label_compare);
}

/* Turns a checked data.result array into result->series: one allocation
 * of exactly the size needed, released by prom_result_clear(). */
static bool prom_fill_vector(json_t *items, prom_result *result)
{
	prom_vector_size size = { .n_series = json_array_size(items) };
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
	json_array_foreach(items, index, item) {
		if (!prom_check_series(item, index, &size, result))
			return false;
	}
	if (__builtin_mul_overflow(size.n_series, sizeof(prom_series), &series_bytes) ||
	    __builtin_mul_overflow(size.n_labels, sizeof(prom_label), &label_bytes) ||
	    __builtin_add_overflow(series_bytes, label_bytes, &total) ||
	    __builtin_add_overflow(total, size.string_bytes, &total) ||
	    !(series = malloc(total))) {
		prom_fail(result, PROM_UNAVAILABLE,
			  "out of memory while reading %zu series from Prometheus",
			  size.n_series);
		return false;
	}
	label_cursor = (prom_label *)(series + size.n_series);
	string_cursor = (char *)(label_cursor + size.n_labels);
	json_array_foreach(items, index, item) {
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
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus answered with status \"%.32s\"", status);
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
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus returned the result type \"%.32s\" where a vector was expected",
			  type);
	return false;
}

/* Loads a body no larger and no deeper than we accept; NULL with result
 * filled otherwise. */
static json_t *prom_load_json(const char *body, size_t len, prom_result *result)
{
	json_error_t error;
	json_t *root;

	if (len > PROM_MAX_BODY_BYTES) {
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus sent a response larger than 32 MiB");
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
			  "Prometheus returned invalid JSON at line %d column %d: %s",
			  error.line, error.column, error.text);
		return NULL;
	}
	return root;
}

prom_outcome prom_parse_vector(const char *body, size_t len, prom_result *result)
{
	json_t *root = NULL;
	json_t *data, *items;

	result->outcome = PROM_OK;
	result->message[0] = '\0';
	result->series = NULL;
	result->n_series = 0;
	root = prom_load_json(body ? body : "", body ? len : 0, result);
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

void prom_result_clear(prom_result *result)
{
	if (!result)
		return;
	/* The series, their labels and the label strings are one block. */
	free(result->series);
	result->series = NULL;
	result->n_series = 0;
}

/* ---- the client ---- */

static void prom_share_lock(CURL *easy, curl_lock_data data,
			    curl_lock_access access, void *userptr)
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
	       curl_share_setopt(client->share, CURLSHOPT_LOCKFUNC, prom_share_lock) == CURLSHE_OK &&
	       curl_share_setopt(client->share, CURLSHOPT_UNLOCKFUNC, prom_share_unlock) == CURLSHE_OK &&
	       curl_share_setopt(client->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK;
}

static bool prom_headers_setup(prom_client *client)
{
	struct curl_slist *list;

	list = curl_slist_append(NULL, "Accept: application/json");
	if (!list)
		return false;
	client->get_headers = list;
	list = curl_slist_append(NULL, "Accept: application/json");
	if (!list)
		return false;
	client->post_headers = list;
	if (!curl_slist_append(list, "Content-Type: application/x-www-form-urlencoded"))
		return false;
	/* No "Expect: 100-continue" round trip before a long query. */
	return curl_slist_append(list, "Expect:") != NULL;
}

/* Removes trailing slashes, so that "/api/v1/query" can be appended. */
static void prom_trim_slashes(char *url)
{
	size_t len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
}

static char *prom_url_part(CURLU *url, CURLUPart part)
{
	char *text = NULL;

	if (curl_url_get(url, part, &text, 0) != CURLUE_OK)
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

/* Validates base_url and fills client->base_url and ->display_url; the
 * URL itself never appears in err, it may hold a password. */
static bool prom_parse_base_url(prom_client *client, const char *base_url,
				char *err, size_t err_size)
{
	CURLU *url = curl_url();
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
	part = prom_url_part(url, CURLUPART_SCHEME);
	if (!part || (strcmp(part, "http") != 0 && strcmp(part, "https") != 0)) {
		prom_copy_error(err, err_size,
				"Prometheus URL must start with http:// or https://");
		goto out;
	}
	curl_free(part);
	part = prom_url_part(url, CURLUPART_QUERY);
	if (!part)
		part = prom_url_part(url, CURLUPART_FRAGMENT);
	if (part) {
		prom_copy_error(err, err_size,
				"Prometheus URL must not have a query or a fragment");
		goto out;
	}
	text = prom_url_part(url, CURLUPART_URL);
	if (!text || !(client->base_url = strdup(text)))
		goto out_of_memory;
	curl_free(text);
	text = NULL;
	if (curl_url_set(url, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(url, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(url, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK)
		goto out_of_memory;
	text = prom_url_part(url, CURLUPART_URL);
	if (!text || !(client->display_url = strdup(text)))
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
	curl_url_cleanup(url);
	return ok;
}

prom_client *prom_client_new(const char *base_url, uint32_t timeout_ms,
			     char *err, size_t err_size)
{
	prom_client *client = NULL;

	if (pthread_once(&prom_curl_once, prom_curl_global_init) != 0 ||
	    prom_curl_init_code != CURLE_OK) {
		prom_copy_error(err, err_size, "libcurl could not be initialised");
		goto fail;
	}
	if (!base_url || base_url[0] == '\0') {
		prom_copy_error(err, err_size, "Prometheus URL is empty");
		goto fail;
	}
	if (timeout_ms == 0 || timeout_ms > PROM_MAX_TIMEOUT_MS) {
		prom_copy_error(err, err_size,
				"Prometheus timeout must be between 1ms and 24h");
		goto fail;
	}
	client = calloc(1, sizeof *client);
	if (!client) {
		prom_copy_error(err, err_size, "out of memory");
		goto fail;
	}
	client->timeout_ms = timeout_ms;
	if (!prom_parse_base_url(client, base_url, err, err_size))
		goto fail;
	if (pthread_mutex_init(&client->pool_lock, NULL) != 0) {
		prom_copy_error(err, err_size, "could not create a mutex");
		goto fail;
	}
	client->pool_lock_ready = true;
	if (!prom_share_setup(client) || !prom_headers_setup(client)) {
		prom_copy_error(err, err_size, "out of memory setting up libcurl");
		goto fail;
	}
	return client;
fail:
	prom_client_free(client);
	return NULL;
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
	curl_slist_free_all(client->get_headers);
	curl_slist_free_all(client->post_headers);
	free(client->base_url);
	free(client->display_url);
	free(client);
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

	if (chunk > PROM_MAX_BODY_BYTES - transfer->body_len) {
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
		    announced > 0 && (uint64_t)announced <= PROM_MAX_BODY_BYTES)
			capacity = (size_t)announced;
		if (capacity < needed)
			capacity = needed;
		if (capacity > PROM_MAX_BODY_BYTES)
			capacity = PROM_MAX_BODY_BYTES;
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

#define PROM_SETOPT(easy, option, value)                                 \
	do {                                                             \
		code = curl_easy_setopt((easy), (option), (value));      \
		if (code != CURLE_OK)                                    \
			goto out;                                        \
	} while (0)

static CURLcode prom_transfer_options(const prom_client *client,
				      prom_transfer *transfer)
{
	CURL *easy = transfer->easy;
	long connect_ms = client->timeout_ms < PROM_MAX_CONNECT_TIMEOUT_MS
				  ? (long)client->timeout_ms
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
	PROM_SETOPT(easy, CURLOPT_TIMEOUT_MS, (long)client->timeout_ms);
	PROM_SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	PROM_SETOPT(easy, CURLOPT_USERAGENT, PROM_USER_AGENT);
	/* Refused early when Prometheus announces a larger body. */
	PROM_SETOPT(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)PROM_MAX_BODY_BYTES);
#if LIBCURL_VERSION_NUM >= 0x075500
	PROM_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	PROM_SETOPT(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (transfer->form) {
		PROM_SETOPT(easy, CURLOPT_HTTPHEADER, client->post_headers);
		PROM_SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)strlen(transfer->form));
		PROM_SETOPT(easy, CURLOPT_POSTFIELDS, transfer->form);
	} else {
		PROM_SETOPT(easy, CURLOPT_HTTPHEADER, client->get_headers);
	}
out:
	return code;
}

#undef PROM_SETOPT

/* Builds the URL (and the POST form when the query is long). */
static bool prom_transfer_request(const prom_client *client, prom_transfer *transfer,
				  const char *query, int64_t eval_unix_seconds)
{
	char *encoded = curl_easy_escape(transfer->easy, query, 0);
	bool ok = false;

	if (!encoded)
		goto out;
	if (strlen(encoded) > PROM_MAX_GET_QUERY_BYTES) {
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
static void prom_transfer_start(const prom_client *client, CURLM *multi,
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
	if (!transfer->easy ||
	    !prom_transfer_request(client, transfer, query, eval_unix_seconds)) {
		prom_fail(transfer->result, PROM_UNAVAILABLE,
			  "could not start a request to Prometheus: out of memory");
		goto failed;
	}
	code = prom_transfer_options(client, transfer);
	if (code != CURLE_OK) {
		prom_fail(transfer->result, PROM_UNAVAILABLE,
			  "could not set up a request to Prometheus: %s",
			  curl_easy_strerror(code));
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

static void prom_describe_timeout(const prom_client *client,
				  const prom_transfer *transfer, prom_result *result)
{
	curl_off_t request_sent_us = 0; /* microseconds; 0: never got that far */
	char limit[32];

	/* Not the connect time: that stays 0 on a reused connection. */
	if (curl_easy_getinfo(transfer->easy, CURLINFO_PRETRANSFER_TIME_T, &request_sent_us) == CURLE_OK &&
	    request_sent_us == 0) {
		prom_format_ms(limit, sizeof limit,
			       client->timeout_ms < PROM_MAX_CONNECT_TIMEOUT_MS
				       ? (long)client->timeout_ms
				       : PROM_MAX_CONNECT_TIMEOUT_MS);
		prom_fail(result, PROM_TIMEOUT,
			  "Prometheus at %s did not accept the connection within %s",
			  client->display_url, limit);
		return;
	}
	prom_format_ms(limit, sizeof limit, (long)client->timeout_ms);
	prom_fail(result, PROM_TIMEOUT, "Prometheus did not answer within %s", limit);
}

/* Classifies a transfer that libcurl ended with an error. */
static void prom_describe_curl_failure(const prom_client *client,
				       const prom_transfer *transfer, CURLcode code,
				       long http_status, prom_result *result)
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
				  "Prometheus at %s refused the connection",
				  client->display_url);
		else
			prom_fail(result, PROM_UNAVAILABLE,
				  "Prometheus at %s could not be reached: %s",
				  client->display_url, prom_curl_detail(transfer, code));
		return;
	case CURLE_OPERATION_TIMEDOUT:
		prom_describe_timeout(client, transfer, result);
		return;
	case CURLE_FILESIZE_EXCEEDED: /* announced as too large */
		prom_fail(result, PROM_BAD_RESPONSE,
			  "Prometheus sent a response larger than 32 MiB");
		return;
	case CURLE_WRITE_ERROR: /* prom_write_body refused */
		if (transfer->body_too_large)
			prom_fail(result, PROM_BAD_RESPONSE,
				  "Prometheus sent a response larger than 32 MiB");
		else
			prom_fail(result, PROM_UNAVAILABLE,
				  "out of memory while reading the answer of Prometheus");
		return;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		if (http_status == 0)
			prom_fail(result, PROM_UNAVAILABLE,
				  "Prometheus at %s closed the connection without answering: %s",
				  client->display_url, prom_curl_detail(transfer, code));
		else
			prom_fail(result, PROM_BAD_RESPONSE,
				  "Prometheus broke off its answer: %s",
				  prom_curl_detail(transfer, code));
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
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

/* Classifies a non-2xx answer, quoting Prometheus' error JSON if any.
 * 503 is Prometheus overloaded or shutting down; as an errorType
 * "timeout" it is the query running out of time. */
static void prom_describe_http_error(const prom_transfer *transfer, long http_status,
				     prom_result *result)
{
	prom_outcome outcome = http_status == 503 ? PROM_UNAVAILABLE : PROM_BAD_RESPONSE;
	prom_result scratch = { 0 };
	json_t *root = prom_load_json(transfer->body ? transfer->body : "",
				      transfer->body_len, &scratch);
	const char *error_type = json_string_value(json_object_get(root, "errorType"));
	const char *error_text = json_string_value(json_object_get(root, "error"));

	if (http_status == 503 && error_type && strcmp(error_type, "timeout") == 0)
		outcome = PROM_TIMEOUT;
	if (error_text)
		prom_fail(result, outcome, "Prometheus answered HTTP %ld (%.32s): %s",
			  http_status, error_type ? error_type : "error", error_text);
	else
		prom_fail(result, outcome, "Prometheus answered HTTP %ld", http_status);
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
static void prom_transfer_finish(const prom_client *client, prom_transfer *transfer,
				 CURLcode code, const struct timespec *started)
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
		(void)prom_parse_vector(transfer->body, transfer->body_len, result);
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
		prom_fail(&results[i], PROM_UNAVAILABLE,
			  "could not query Prometheus: %s", why);
}

void prom_query_all(prom_client *client, const char *const *queries, size_t n,
		    int64_t eval_unix_seconds, prom_result *results)
{
	prom_transfer *transfers = NULL;
	CURLM *multi = NULL;
	CURLMcode multi_code = CURLM_OK;
	bool multi_healthy = false;
	struct timespec started;

	if (!results || n == 0)
		return;
	memset(results, 0, n * sizeof *results);
	if (!client || !queries) {
		prom_fail_all(results, n, "no client or no queries");
		return;
	}
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
		prom_transfer_start(client, multi, &transfers[i], queries[i],
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
}

/* test_prom: the Prometheus client.  The vector parser on crafted bodies;
 * the HTTP side against a real Prometheus and small servers run in-test. */
#include "prom.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)

static double now_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static bool message_has(const prom_result *result, const char *needle)
{
	return strstr(result->message, needle) != NULL;
}

/* Whether text is valid UTF-8 without control characters. */
static bool is_clean_utf8(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p) {
		size_t extra = *p < 0x80 ? 0 : *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc0 ? 1 : 9;
		if (extra == 9 || *p < 0x20 || *p == 0x7f)
			return false;
		for (size_t i = 1; i <= extra; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += extra + 1;
	}
	return true;
}

static prom_outcome parse(const char *body, prom_result *result)
{
	memset(result, 0, sizeof *result);
	return prom_parse_vector(body, strlen(body), result);
}

/* A success envelope around the given data.result array. */
static char *vector_body(const char *result_array)
{
	char *body = NULL;

	ck_assert_int_ge(
	    asprintf(&body,
	             "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":%s}}",
	             result_array),
	    0);
	return body;
}

/* ---------------- parser ---------------- */

START_TEST(test_parse_success)
{
	prom_result result;
	char *body = vector_body(
	    "[{\"metric\":{\"pod\":\"web-1\",\"namespace\":\"default\",\"__name__\":\"x\"},"
	    "\"value\":[1700000000.123,\"1.5\"]},"
	    "{\"metric\":{},\"value\":[1700000000,\"-2e3\"]}]");

	ck_assert_int_eq(parse(body, &result), PROM_OK);
	ck_assert_str_eq(result.message, "");
	ck_assert_uint_eq(result.n_series, 2);
	ck_assert_uint_eq(result.series[0].n_labels, 3);
	ck_assert_str_eq(result.series[0].labels[0].name, "__name__");
	ck_assert_str_eq(result.series[0].labels[0].value, "x");
	ck_assert_str_eq(result.series[0].labels[1].name, "namespace");
	ck_assert_str_eq(result.series[0].labels[1].value, "default");
	ck_assert_str_eq(result.series[0].labels[2].name, "pod");
	ck_assert_str_eq(result.series[0].labels[2].value, "web-1");
	ck_assert_double_eq(result.series[0].value, 1.5);
	ck_assert_uint_eq(result.series[1].n_labels, 0);
	ck_assert_ptr_null(result.series[1].labels);
	ck_assert_double_eq(result.series[1].value, -2000.0);
	prom_result_clear(&result);
	ck_assert_ptr_null(result.series);
	ck_assert_uint_eq(result.n_series, 0);
	free(body);
}
END_TEST

START_TEST(test_parse_special_values)
{
	prom_result result;
	char *body = vector_body("[{\"metric\":{\"v\":\"nan\"},\"value\":[1,\"NaN\"]},"
	                         "{\"metric\":{\"v\":\"pinf\"},\"value\":[1,\"+Inf\"]},"
	                         "{\"metric\":{\"v\":\"ninf\"},\"value\":[1,\"-Inf\"]}]");

	ck_assert_int_eq(parse(body, &result), PROM_OK);
	ck_assert_uint_eq(result.n_series, 3);
	ck_assert(isnan(result.series[0].value));
	ck_assert(isinf(result.series[1].value) && result.series[1].value > 0);
	ck_assert(isinf(result.series[2].value) && result.series[2].value < 0);
	prom_result_clear(&result);
	free(body);
}
END_TEST

START_TEST(test_parse_decimal_forms)
{
	static const struct {
		const char *text;
		double value;
	} cases[] = {
	    {"0", 0.0},      {"-0", -0.0},
	    {"42", 42.0},    {"+1", 1.0},
	    {".5", 0.5},     {"5.", 5.0},
	    {"1e3", 1000.0}, {"1E-3", 0.001},
	    {"0.1", 0.1},    {"123456789.25", 123456789.25},
	    {"1e-400", 0.0}, /* underflows to zero: still a number */
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		prom_result result;
		char item[128];
		snprintf(item, sizeof item, "[{\"metric\":{},\"value\":[1,\"%s\"]}]",
		         cases[i].text);
		char *body = vector_body(item);
		ck_assert_msg(parse(body, &result) == PROM_OK, "%s: %s", cases[i].text,
		              result.message);
		ck_assert_double_eq_tol(result.series[0].value, cases[i].value, 1e-12);
		prom_result_clear(&result);
		free(body);
	}
}
END_TEST

START_TEST(test_parse_empty_vector)
{
	prom_result result;
	char *body = vector_body("[]");

	ck_assert_int_eq(parse(body, &result), PROM_OK);
	ck_assert_uint_eq(result.n_series, 0);
	ck_assert_ptr_null(result.series);
	prom_result_clear(&result);
	free(body);
}
END_TEST

START_TEST(test_parse_status_error)
{
	prom_result result;

	ck_assert_int_eq(parse("{\"status\":\"error\",\"errorType\":\"bad_data\","
	                       "\"error\":\"1:5: parse error: unexpected end of input\"}",
	                       &result),
	                 PROM_BAD_RESPONSE);
	ck_assert_str_eq(result.message, "Prometheus reported an error (bad_data): "
	                                 "1:5: parse error: unexpected end of input");
	ck_assert_ptr_null(result.series);
	ck_assert_int_eq(parse("{\"status\":\"error\"}", &result), PROM_BAD_RESPONSE);
	ck_assert_str_eq(result.message,
	                 "Prometheus reported an error (unknown): no details given");
}
END_TEST

/* Regression (found by fuzz_prom): jansson's error text and %.Ns formats can
 * cut a multi-byte character in the middle of a message; a Status message
 * must stay valid UTF-8 (jansson's json_string() refuses anything else). */
START_TEST(test_messages_stay_valid_utf8)
{
	prom_result result;
	static const char cut_escape[] = "\"\\\xd0\x9a";
	ck_assert_int_eq(prom_parse_vector(cut_escape, sizeof cut_escape - 1, &result),
	                 PROM_BAD_RESPONSE);
	json_t *text = json_string(result.message);
	ck_assert_msg(text != NULL, "not UTF-8: %s", result.message);
	json_decref(text);
	prom_result_clear(&result);

	char body[256];
	snprintf(body, sizeof body, "{\"status\":\"error\",\"errorType\":\"a%s\",\"error\":\"x\"}",
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	ck_assert_int_eq(prom_parse_vector(body, strlen(body), &result), PROM_BAD_RESPONSE);
	text = json_string(result.message);
	ck_assert_msg(text != NULL, "not UTF-8: %s", result.message);
	json_decref(text);
	prom_result_clear(&result);
}
END_TEST

START_TEST(test_parse_other_result_types)
{
	static const struct {
		const char *data;
		const char *message;
	} cases[] = {
	    {"{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[1,\"1\"]]}]}",
	     "Prometheus returned a matrix where a vector was expected"},
	    {"{\"resultType\":\"scalar\",\"result\":[1,\"1\"]}",
	     "Prometheus returned a scalar where a vector was expected"},
	    {"{\"resultType\":\"string\",\"result\":[1,\"x\"]}",
	     "Prometheus returned a string where a vector was expected"},
	    {"{\"resultType\":\"streams\",\"result\":[]}",
	     "Prometheus returned the result type \"streams\" where a vector was expected"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		prom_result result;
		char *body = NULL;
		ck_assert_int_ge(
		    asprintf(&body, "{\"status\":\"success\",\"data\":%s}", cases[i].data), 0);
		ck_assert_int_eq(parse(body, &result), PROM_BAD_RESPONSE);
		ck_assert_str_eq(result.message, cases[i].message);
		ck_assert_ptr_null(result.series);
		free(body);
	}
}
END_TEST

START_TEST(test_parse_wrong_shapes)
{
	static const struct {
		const char *body;
		const char *message_part;
	} cases[] = {
	    {"[]", "JSON that is not an object"},
	    {"{\"data\":{}}", "without a \"status\" string"},
	    {"{\"status\":1}", "without a \"status\" string"},
	    {"{\"status\":\"partial\"}", "with status \"partial\""},
	    {"{\"status\":\"success\"}", "without a \"data\" object"},
	    {"{\"status\":\"success\",\"data\":[]}", "without a \"data\" object"},
	    {"{\"status\":\"success\",\"data\":{\"result\":[]}}",
	     "without a \"data.resultType\" string"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\"}}",
	     "without a \"data.result\" array"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
	     "without a \"data.result\" array"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		prom_result result;
		ck_assert_int_eq(parse(cases[i].body, &result), PROM_BAD_RESPONSE);
		ck_assert_msg(message_has(&result, cases[i].message_part), "%s -> %s",
		              cases[i].body, result.message);
		ck_assert_ptr_null(result.series);
	}
}
END_TEST

START_TEST(test_parse_wrong_series)
{
	static const struct {
		const char *result_array;
		const char *message_part;
	} cases[] = {
	    {"[1]", "data.result[0] is not an object"},
	    {"[{\"metric\":{},\"value\":[1,\"1\"]},\"x\"]", "data.result[1] is not an object"},
	    {"[{\"value\":[1,\"1\"]}]", "data.result[0].metric is not an object"},
	    {"[{\"metric\":[],\"value\":[1,\"1\"]}]", "data.result[0].metric is not an object"},
	    {"[{\"metric\":{\"pod\":3},\"value\":[1,\"1\"]}]",
	     "data.result[0].metric.pod is not a string"},
	    {"[{\"metric\":{\"pod\":null},\"value\":[1,\"1\"]}]",
	     "data.result[0].metric.pod is not a string"},
	    {"[{\"metric\":{}}]", "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"value\":[1]}]", "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"value\":[1,\"1\",2]}]",
	     "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"value\":[\"1\",\"1\"]}]",
	     "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"value\":[1,1]}]", "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"value\":{\"t\":1}}]",
	     "data.result[0].value is not [time, \"value\"]"},
	    {"[{\"metric\":{},\"histogram\":[1,{\"count\":\"1\"}]}]", "native histogram"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		prom_result result;
		char *body = vector_body(cases[i].result_array);
		ck_assert_int_eq(parse(body, &result), PROM_BAD_RESPONSE);
		ck_assert_msg(message_has(&result, cases[i].message_part), "%s -> %s",
		              cases[i].result_array, result.message);
		ck_assert_ptr_null(result.series);
		ck_assert_uint_eq(result.n_series, 0);
		free(body);
	}
}
END_TEST

START_TEST(test_parse_bad_numbers)
{
	static const char *const texts[] = {
	    "",   "abc", "1.5x", " 1", "1 ", "nan",  "inf", "Inf",   "+NaN",   "-nan",     "0x10",
	    "1e", "1e+", ".",    "+",  "-",  "1..2", "--1", "1e999", "-1e999", "Infinity", "1,5",
	};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		prom_result result;
		char item[128];
		snprintf(item, sizeof item, "[{\"metric\":{},\"value\":[1,\"%s\"]}]", texts[i]);
		char *body = vector_body(item);
		ck_assert_msg(parse(body, &result) == PROM_BAD_RESPONSE, "accepted \"%s\"",
		              texts[i]);
		ck_assert_msg(message_has(&result, "which is not a number"), "%s", result.message);
		ck_assert_ptr_null(result.series);
		free(body);
	}
}
END_TEST

START_TEST(test_parse_invalid_json)
{
	static const char *const bodies[] = {
	    "",
	    "{",
	    "nul",
	    "{\"status\" \"success\"}",
	    "{\"status\":\"success\"} trailing",
	    "\"just a string\"",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\xff\"}",
	};
	prom_result result;

	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		ck_assert_int_eq(parse(bodies[i], &result), PROM_BAD_RESPONSE);
		ck_assert_msg(strncmp(result.message, "Prometheus returned invalid JSON at line ",
		                      strlen("Prometheus returned invalid JSON at line ")) == 0,
		              "%s", result.message);
		ck_assert(is_clean_utf8(result.message));
	}
	ck_assert_int_eq(parse("{\"status\" 1}", &result), PROM_BAD_RESPONSE);
	ck_assert_msg(message_has(&result, "at line 1 column 11"), "%s", result.message);
	ck_assert_int_eq(prom_parse_vector(NULL, 0, &result), PROM_BAD_RESPONSE);
	/* Two labels of the same name would break the sorted-labels contract. */
	char *body = vector_body("[{\"metric\":{\"a\":\"1\",\"a\":\"2\"},\"value\":[1,\"1\"]}]");
	ck_assert_int_eq(parse(body, &result), PROM_BAD_RESPONSE);
	ck_assert_msg(message_has(&result, "duplicate"), "%s", result.message);
	free(body);
}
END_TEST

START_TEST(test_parse_depth_bomb)
{
	size_t depth = 200000;
	char *body = malloc(depth * 2 + 1);
	prom_result result;

	ck_assert_ptr_nonnull(body);
	memset(body, '[', depth);
	memset(body + depth, ']', depth);
	body[depth * 2] = '\0';
	ck_assert_int_eq(parse(body, &result), PROM_BAD_RESPONSE);
	ck_assert_str_eq(result.message, "Prometheus returned JSON nested deeper than 32 levels");
	free(body);

	/* Brackets inside strings are text, not nesting. */
	char label[512];
	memset(label, '[', 400);
	memcpy(label + 400, "\\\"{{", 5);
	char item[700];
	snprintf(item, sizeof item, "[{\"metric\":{\"q\":\"%s\"},\"value\":[1,\"1\"]}]", label);
	body = vector_body(item);
	ck_assert_msg(parse(body, &result) == PROM_OK, "%s", result.message);
	ck_assert_uint_eq(strlen(result.series[0].labels[0].value), 403);
	prom_result_clear(&result);
	free(body);
}
END_TEST

START_TEST(test_parse_size_limit)
{
	size_t len = 32 * MIB + 1;
	char *body = malloc(len);
	prom_result result;

	ck_assert_ptr_nonnull(body);
	memset(body, ' ', len);
	memset(&result, 0, sizeof result);
	ck_assert_int_eq(prom_parse_vector(body, len, &result), PROM_BAD_RESPONSE);
	ck_assert_str_eq(result.message, "Prometheus sent a response larger than 32 MiB");
	free(body);
}
END_TEST

START_TEST(test_parse_many_series)
{
	size_t count = 50000;
	size_t cap = count * 96 + 128;
	char *items = malloc(cap);
	size_t used = 0;
	prom_result result;

	ck_assert_ptr_nonnull(items);
	items[used++] = '[';
	for (size_t i = 0; i < count; i++)
		used += (size_t)snprintf(
		    items + used, cap - used,
		    "%s{\"metric\":{\"pod\":\"p-%zu\",\"ns\":\"n\"},\"value\":[1,\"%zu\"]}",
		    i ? "," : "", i, i);
	items[used++] = ']';
	items[used] = '\0';
	char *body = vector_body(items);
	free(items);
	ck_assert_int_eq(parse(body, &result), PROM_OK);
	ck_assert_uint_eq(result.n_series, count);
	ck_assert_str_eq(result.series[count - 1].labels[1].name, "pod");
	ck_assert_str_eq(result.series[count - 1].labels[1].value, "p-49999");
	ck_assert_double_eq(result.series[count - 1].value, 49999.0);
	prom_result_clear(&result);
	free(body);
}
END_TEST

START_TEST(test_parse_label_text)
{
	prom_result result;
	char *body = vector_body(
	    "[{\"metric\":{\"q\":\"say \\\"hi\\\"\\n\",\"u\":\"caf\\u00e9 \xe2\x82\xac\"},"
	    "\"value\":[1,\"1\"]}]");

	ck_assert_int_eq(parse(body, &result), PROM_OK);
	ck_assert_str_eq(result.series[0].labels[0].value, "say \"hi\"\n");
	ck_assert_str_eq(result.series[0].labels[1].value, "caf\xc3\xa9 \xe2\x82\xac");
	prom_result_clear(&result);
	free(body);
}
END_TEST

START_TEST(test_message_stays_clean)
{
	/* A long error with newlines and multibyte characters must come out
	 * as one line of valid UTF-8, cut at a character boundary. */
	char text[1200];
	size_t used = 0;
	prom_result result;

	while (used + 4 < 1000) {
		memcpy(text + used, "\xe2\x82\xac\\n", 5);
		used += 5;
	}
	text[used] = '\0';
	char *body = NULL;
	ck_assert_int_ge(
	    asprintf(&body, "{\"status\":\"error\",\"errorType\":\"x\",\"error\":\"%s\"}", text),
	    0);
	for (int shift = 0; shift < 4; shift++) {
		/* Shift where the cut lands by lengthening errorType. */
		char *shifted = NULL;
		ck_assert_int_ge(
		    asprintf(&shifted,
		             "{\"status\":\"error\",\"errorType\":\"%.*s\",\"error\":\"%s\"}",
		             shift + 1, "xxxx", text),
		    0);
		ck_assert_int_eq(parse(shifted, &result), PROM_BAD_RESPONSE);
		ck_assert_msg(is_clean_utf8(result.message), "shift %d", shift);
		ck_assert_uint_gt(strlen(result.message), 240);
		free(shifted);
	}
	free(body);
}
END_TEST

START_TEST(test_result_clear_and_names)
{
	prom_result result;

	memset(&result, 0, sizeof result);
	prom_result_clear(&result);
	prom_result_clear(&result);
	prom_result_clear(NULL);
	ck_assert_str_eq(prom_outcome_name(PROM_OK), "ok");
	ck_assert_str_eq(prom_outcome_name(PROM_UNAVAILABLE), "unavailable");
	ck_assert_str_eq(prom_outcome_name(PROM_TIMEOUT), "timeout");
	ck_assert_str_eq(prom_outcome_name(PROM_BAD_RESPONSE), "bad_response");
	ck_assert_str_eq(prom_outcome_name((prom_outcome)42), "unknown");
}
END_TEST

/* ---------------- client construction ---------------- */

START_TEST(test_client_rejects)
{
	static const char *const urls[] = {
	    "",
	    "ftp://prom:9090",
	    "file:///etc/passwd",
	    "localhost:9090",
	    "127.0.0.1:9090",
	    "http://",
	    "http://prom:9090/?query=up",
	    "http://prom:9090/#x",
	    "http://prom with space:9090",
	    "ftp://alice:hunter2@prom:9090",
	};
	char err[256];

	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		err[0] = '\0';
		prom_client *client = prom_client_new(urls[i], 1000, err, sizeof err);
		ck_assert_msg(client == NULL, "accepted %s", urls[i]);
		ck_assert_msg(err[0] != '\0', "no message for %s", urls[i]);
		ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
	}
	ck_assert_ptr_null(prom_client_new(NULL, 1000, err, sizeof err));
	ck_assert_str_eq(err, "Prometheus URL is empty");
	ck_assert_ptr_null(prom_client_new("http://prom:9090", 0, err, sizeof err));
	ck_assert_str_eq(err, "Prometheus timeout must be between 1ms and 24h");
	ck_assert_ptr_null(prom_client_new("ftp://prom:9090", 1000, err, sizeof err));
	ck_assert_str_eq(err, "Prometheus URL must start with http:// or https://");
	ck_assert_ptr_null(prom_client_new("ftp://prom:9090", 1000, NULL, 0));
	prom_client_free(NULL);
}
END_TEST

START_TEST(test_client_accepts)
{
	static const char *const urls[] = {
	    "http://127.0.0.1:9090",
	    "http://127.0.0.1:9090/",
	    "https://prometheus.monitoring.svc:9090/prefix/",
	    "HTTP://prom",
	    "http://user:pass@prom:9090/x",
	    "http://[::1]:9090",
	};
	char err[256];

	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		prom_client *client = prom_client_new(urls[i], 1000, err, sizeof err);
		ck_assert_msg(client != NULL, "%s: %s", urls[i], err);
		prom_client_free(client);
	}
}
END_TEST

/* ---------------- an HTTP server in the test ---------------- */

typedef enum fake_mode {
	FAKE_ANSWER, /* status + body after delay_ms, keep-alive */
	FAKE_SILENT, /* read the request, never answer (after answers_first) */
	FAKE_RESET,  /* read the request, close with a TCP reset */
	FAKE_HUGE,   /* 200 with huge_bytes of body */
} fake_mode;

#define FAKE_MAX_CONNECTIONS 64
#define FAKE_REQUEST_BYTES   65536

typedef struct fake_server {
	/* behaviour, set before fake_server_start */
	fake_mode mode;
	int delay_ms;
	int status;
	const char *body; /* borrowed */
	size_t huge_bytes;
	bool huge_announced; /* send Content-Length with the huge body */
	int answers_first;   /* FAKE_SILENT answers this many requests first */
	/* running state */
	int listen_fd;
	uint16_t port;
	atomic_bool stopping;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_t workers[FAKE_MAX_CONNECTIONS]; /* under lock */
	size_t n_workers;                        /* under lock */
	int connections;                         /* under lock */
	int requests;                            /* under lock */
	char last_request[FAKE_REQUEST_BYTES];   /* under lock */
} fake_server;

typedef struct fake_worker_arg {
	fake_server *server;
	int fd;
} fake_worker_arg;

/* Waits until fd is readable; false when the server stops first. */
static bool fake_wait_readable(fake_server *server, int fd)
{
	while (!atomic_load(&server->stopping)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int ready = poll(&pfd, 1, 50);
		if (ready > 0)
			return true;
		if (ready < 0 && errno != EINTR)
			return false;
	}
	return false;
}

static void fake_sleep_ms(fake_server *server, int milliseconds)
{
	for (int waited = 0; waited < milliseconds && !atomic_load(&server->stopping); waited += 10)
		usleep(10000);
}

static bool fake_send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
		if (sent <= 0)
			return false;
		data += sent;
		len -= (size_t)sent;
	}
	return true;
}

/* Reads one request (headers and Content-Length body) into buffer. */
static bool fake_read_request(fake_server *server, int fd, char *buffer, size_t cap)
{
	size_t len = 0;
	size_t wanted = 0;

	for (;;) {
		char *end = strstr(buffer, "\r\n\r\n");
		if (end && !wanted) {
			const char *length = strcasestr(buffer, "\r\ncontent-length:");
			size_t body =
			    length && length < end
			        ? strtoul(length + strlen("\r\ncontent-length:"), NULL, 10)
			        : 0;
			wanted = (size_t)(end + 4 - buffer) + body;
		}
		if (wanted && len >= wanted)
			return true;
		if (len + 1 >= cap || !fake_wait_readable(server, fd))
			return false;
		ssize_t got = recv(fd, buffer + len, cap - len - 1, 0);
		if (got <= 0)
			return false;
		len += (size_t)got;
		buffer[len] = '\0';
	}
}

static void fake_answer(fake_server *server, int fd)
{
	char head[256];
	const char *body = server->body ? server->body : "";

	fake_sleep_ms(server, server->delay_ms);
	snprintf(head, sizeof head,
	         "HTTP/1.1 %d Whatever\r\nContent-Type: application/json\r\n"
	         "Content-Length: %zu\r\n\r\n",
	         server->status ? server->status : 200, strlen(body));
	if (fake_send_all(fd, head, strlen(head)))
		fake_send_all(fd, body, strlen(body));
}

static void fake_answer_huge(fake_server *server, int fd)
{
	static char chunk[65536];
	char head[256];
	size_t left = server->huge_bytes;

	memset(chunk, ' ', sizeof chunk);
	if (server->huge_announced)
		snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", left);
	else
		snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	if (!fake_send_all(fd, head, strlen(head)))
		return;
	while (left > 0 && !atomic_load(&server->stopping)) {
		size_t n = left < sizeof chunk ? left : sizeof chunk;
		if (!fake_send_all(fd, chunk, n))
			return;
		left -= n;
	}
}

static void *fake_worker(void *opaque)
{
	fake_worker_arg *arg = opaque;
	fake_server *server = arg->server;
	int fd = arg->fd;
	char *request = calloc(1, FAKE_REQUEST_BYTES);

	free(arg);
	while (request && fake_read_request(server, fd, request, FAKE_REQUEST_BYTES)) {
		pthread_mutex_lock(&server->lock);
		int request_number = ++server->requests;
		memcpy(server->last_request, request, FAKE_REQUEST_BYTES);
		pthread_mutex_unlock(&server->lock);
		if (server->mode == FAKE_SILENT && request_number > server->answers_first) {
			fake_sleep_ms(server, 600000);
			break;
		}
		if (server->mode == FAKE_RESET) {
			struct linger linger = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
			break;
		}
		if (server->mode == FAKE_HUGE) {
			fake_answer_huge(server, fd);
			break;
		}
		fake_answer(server, fd);
		memset(request, 0, FAKE_REQUEST_BYTES);
	}
	close(fd);
	free(request);
	return NULL;
}

static void *fake_acceptor(void *opaque)
{
	fake_server *server = opaque;

	while (fake_wait_readable(server, server->listen_fd)) {
		int fd = accept(server->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		fake_worker_arg *arg = malloc(sizeof *arg);
		pthread_mutex_lock(&server->lock);
		server->connections++;
		if (arg && server->n_workers < FAKE_MAX_CONNECTIONS) {
			arg->server = server;
			arg->fd = fd;
			if (pthread_create(&server->workers[server->n_workers], NULL, fake_worker,
			                   arg) == 0) {
				server->n_workers++;
				arg = NULL;
				fd = -1;
			}
		}
		pthread_mutex_unlock(&server->lock);
		free(arg);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static void fake_server_start(fake_server *server)
{
	struct sockaddr_in address = {.sin_family = AF_INET};
	socklen_t address_len = sizeof address;
	int one = 1;

	atomic_init(&server->stopping, false);
	ck_assert_int_eq(pthread_mutex_init(&server->lock, NULL), 0);
	server->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(server->listen_fd, 0);
	setsockopt(server->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(server->listen_fd, (struct sockaddr *)&address, sizeof address), 0);
	ck_assert_int_eq(listen(server->listen_fd, 64), 0);
	ck_assert_int_eq(getsockname(server->listen_fd, (struct sockaddr *)&address, &address_len),
	                 0);
	server->port = ntohs(address.sin_port);
	ck_assert_int_eq(pthread_create(&server->acceptor, NULL, fake_acceptor, server), 0);
}

static void fake_server_stop(fake_server *server)
{
	atomic_store(&server->stopping, true);
	pthread_join(server->acceptor, NULL);
	for (size_t i = 0; i < server->n_workers; i++)
		pthread_join(server->workers[i], NULL);
	close(server->listen_fd);
	pthread_mutex_destroy(&server->lock);
}

static prom_client *client_for(uint16_t port, const char *path, uint32_t timeout_ms)
{
	char url[128];
	char err[256] = "";

	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
	prom_client *client = prom_client_new(url, timeout_ms, err, sizeof err);
	ck_assert_msg(client != NULL, "%s", err);
	return client;
}

/* A port nothing listens on: bound for a moment, then released. */
static uint16_t closed_port(void)
{
	struct sockaddr_in address = {.sin_family = AF_INET};
	socklen_t address_len = sizeof address;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&address, &address_len), 0);
	close(fd);
	return ntohs(address.sin_port);
}

static const char ONE_SERIES[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
    "[{\"metric\":{\"pod\":\"p\"},\"value\":[1700000000,\"7\"]}]}}";

static void query_one(prom_client *client, const char *query, prom_result *result)
{
	prom_query_all(client, &query, 1, 1700000000, result);
}

/* ---------------- HTTP against the in-test server ---------------- */

START_TEST(test_http_get_request)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	prom_result result;
	char request[FAKE_REQUEST_BYTES];

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "/prefix/", 5000);
	/* prom_query_all must zero the results itself. */
	memset(&result, 0xa5, sizeof result);
	query_one(client, "up{job=\"a b\"}", &result);
	prom_client_free(client);
	fake_server_stop(&server);
	memcpy(request, server.last_request, sizeof request);

	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	ck_assert_uint_eq(result.n_series, 1);
	ck_assert_str_eq(result.series[0].labels[0].value, "p");
	ck_assert_double_eq(result.series[0].value, 7.0);
	ck_assert(result.seconds >= 0 && result.seconds < 5);
	ck_assert_msg(strncmp(request,
	                      "GET /prefix/api/v1/query?query=up%7Bjob%3D%22a%20b%22%7D"
	                      "&time=1700000000 HTTP/1.1\r\n",
	                      strlen("GET /prefix/api/v1/query?query=up%7Bjob%3D%22a%20b%22%7D"
	                             "&time=1700000000 HTTP/1.1\r\n")) == 0,
	              "%s", request);
	ck_assert_msg(strcasestr(request, "\r\nAccept: application/json\r\n"), "%s", request);
	ck_assert_msg(strcasestr(request, "\r\nUser-Agent: smi-metrics/"), "%s", request);
	prom_result_clear(&result);
}
END_TEST

START_TEST(test_http_long_query_is_posted)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	char *query = malloc(2002);
	char request[FAKE_REQUEST_BYTES];
	prom_result result;

	ck_assert_ptr_nonnull(query);
	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 5000);

	/* 2000 encoded bytes still fit the URL. */
	memset(query, 'a', 2000);
	query[2000] = '\0';
	query_one(client, query, &result);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	pthread_mutex_lock(&server.lock);
	memcpy(request, server.last_request, sizeof request);
	pthread_mutex_unlock(&server.lock);
	ck_assert_msg(strncmp(request, "GET /api/v1/query?query=aaaa", 28) == 0, "%.60s", request);

	query[2000] = 'a';
	query[2001] = '\0';
	query_one(client, query, &result);
	prom_client_free(client);
	fake_server_stop(&server);
	memcpy(request, server.last_request, sizeof request);

	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	ck_assert_msg(strncmp(request, "POST /api/v1/query HTTP/1.1\r\n", 29) == 0, "%.60s",
	              request);
	ck_assert(strcasestr(request, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
	ck_assert(strcasestr(request, "\r\nContent-Length: 2023\r\n"));
	ck_assert(strcasestr(request, "\r\nExpect:") == NULL);
	char *body = strstr(request, "\r\n\r\n") + 4;
	ck_assert_int_eq(strncmp(body, "query=aaaa", 10), 0);
	ck_assert_str_eq(body + 6 + 2001, "&time=1700000000");
	free(query);
}
END_TEST

START_TEST(test_http_concurrent)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES, .delay_ms = 1000};
	const char *queries[4] = {"a", "b", "c", "d"};
	prom_result results[4];

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 10000);
	double started = now_seconds();
	prom_query_all(client, queries, 4, 1700000000, results);
	double elapsed = now_seconds() - started;
	prom_client_free(client);
	fake_server_stop(&server);

	for (size_t i = 0; i < 4; i++) {
		ck_assert_msg(results[i].outcome == PROM_OK, "%s", results[i].message);
		ck_assert_uint_eq(results[i].n_series, 1);
		ck_assert(results[i].seconds >= 0.9 && results[i].seconds < 3.0);
		prom_result_clear(&results[i]);
	}
	ck_assert_int_eq(server.requests, 4);
	/* One second per request: in parallel about 1s, one by one 4s. */
	ck_assert_msg(elapsed >= 0.9 && elapsed < 3.0, "took %.2fs", elapsed);
}
END_TEST

typedef struct query_job {
	prom_client *client;
	int rounds;
	int failures;
} query_job;

static void *run_query_job(void *opaque)
{
	query_job *job = opaque;
	const char *queries[2] = {"x", "y"};

	for (int round = 0; round < job->rounds; round++) {
		prom_result results[2];
		prom_query_all(job->client, queries, 2, 1700000000, results);
		for (size_t i = 0; i < 2; i++) {
			if (results[i].outcome != PROM_OK || results[i].n_series != 1)
				job->failures++;
			prom_result_clear(&results[i]);
		}
	}
	return NULL;
}

START_TEST(test_http_reuses_connections)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	query_job job = {.rounds = 3};
	pthread_t thread;

	fake_server_start(&server);
	job.client = client_for(server.port, "", 5000);
	/* Rounds on this thread, then on another: the pooled connections
	 * follow the work. */
	run_query_job(&job);
	ck_assert_int_eq(pthread_create(&thread, NULL, run_query_job, &job), 0);
	pthread_join(thread, NULL);
	prom_client_free(job.client);
	fake_server_stop(&server);

	ck_assert_int_eq(job.failures, 0);
	ck_assert_int_eq(server.requests, 12);
	ck_assert_int_eq(server.connections, 2);
}
END_TEST

START_TEST(test_http_many_threads)
{
	enum { THREADS = 8 };
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	query_job jobs[THREADS];
	pthread_t threads[THREADS];

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 5000);
	for (size_t i = 0; i < THREADS; i++) {
		jobs[i] = (query_job){.client = client, .rounds = 15};
		ck_assert_int_eq(pthread_create(&threads[i], NULL, run_query_job, &jobs[i]), 0);
	}
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	prom_client_free(client);
	fake_server_stop(&server);

	for (size_t i = 0; i < THREADS; i++)
		ck_assert_int_eq(jobs[i].failures, 0);
	ck_assert_int_eq(server.requests, THREADS * 15 * 2);
	/* At most THREADS multi handles exist, each keeping its two. */
	ck_assert_int_le(server.connections, THREADS * 2);
}
END_TEST

START_TEST(test_http_error_statuses)
{
	static const struct {
		int status;
		const char *body;
		prom_outcome outcome;
		const char *message;
	} cases[] = {
	    {400,
	     "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
	     "\\\"query\\\"\"}",
	     PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 400 (bad_data): invalid parameter \"query\""},
	    {422, "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"boom\"}",
	     PROM_BAD_RESPONSE, "Prometheus answered HTTP 422 (execution): boom"},
	    {500, "<html>oops</html>", PROM_BAD_RESPONSE, "Prometheus answered HTTP 500"},
	    {404, "", PROM_BAD_RESPONSE, "Prometheus answered HTTP 404"},
	    {302, "", PROM_BAD_RESPONSE, "Prometheus answered HTTP 302"},
	    {503, "Service Unavailable", PROM_UNAVAILABLE, "Prometheus answered HTTP 503"},
	    {503,
	     "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out in "
	     "expression evaluation\"}",
	     PROM_TIMEOUT,
	     "Prometheus answered HTTP 503 (timeout): query timed out in expression evaluation"},
	    {200, "{\"status\":", PROM_BAD_RESPONSE,
	     "Prometheus returned invalid JSON at line 1 column 10"},
	    /* what Thanos, Mimir, Cortex and VictoriaMetrics send when they refuse */
	    {401, "no org id\n", PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 401: no org id; check prometheus.bearerTokenFile, basicAuth "
	     "and headers"},
	    {403, "", PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 403; check prometheus.bearerTokenFile, basicAuth and "
	     "headers"},
	    {422,
	     "{\"status\":\"error\",\"errorType\":\"422\",\"error\":\"error when executing "
	     "query=\\\"foo(\\\"\"}",
	     PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 422 (422): error when executing query=\"foo(\""},
	    {429,
	     "the request has been rejected because the tenant exceeded the request rate limit\n",
	     PROM_UNAVAILABLE,
	     "Prometheus answered HTTP 429: the request has been rejected because the tenant "
	     "exceeded"},
	    {504, "<html><body>Gateway Timeout</body></html>", PROM_TIMEOUT,
	     "Prometheus answered HTTP 504"},
	    {405, "Method Not Allowed", PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 405: Method Not Allowed; try another prometheus.method"},
	    {404, "404 page not found\n", PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 404: 404 page not found; check the path in prometheus.url"},
	    {400, "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out\"}",
	     PROM_TIMEOUT, "Prometheus answered HTTP 400 (timeout): query timed out"},
	    {500, "bad \x01\xff bytes\r\nsecond line", PROM_BAD_RESPONSE,
	     "Prometheus answered HTTP 500: bad ?? bytes"},
	    {200, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"no tenant\"}",
	     PROM_BAD_RESPONSE, "Prometheus reported an error (bad_data): no tenant"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fake_server server = {
		    .mode = FAKE_ANSWER, .status = cases[i].status, .body = cases[i].body};
		prom_result result;
		fake_server_start(&server);
		prom_client *client = client_for(server.port, "", 5000);
		query_one(client, "up", &result);
		prom_client_free(client);
		fake_server_stop(&server);
		ck_assert_msg(result.outcome == cases[i].outcome, "HTTP %d: %s", cases[i].status,
		              result.message);
		ck_assert_msg(strncmp(result.message, cases[i].message, strlen(cases[i].message)) ==
		                  0,
		              "HTTP %d: %s", cases[i].status, result.message);
		ck_assert_ptr_null(result.series);
	}
}
END_TEST

START_TEST(test_http_connection_refused)
{
	uint16_t port = closed_port();
	char url[128], expected[160], err[256];
	prom_result result;

	snprintf(url, sizeof url, "http://alice:s3cret@127.0.0.1:%u/", (unsigned)port);
	prom_client *client = prom_client_new(url, 2000, err, sizeof err);
	ck_assert_msg(client != NULL, "%s", err);
	double started = now_seconds();
	query_one(client, "up", &result);
	double elapsed = now_seconds() - started;
	prom_client_free(client);

	ck_assert_int_eq(result.outcome, PROM_UNAVAILABLE);
	snprintf(expected, sizeof expected,
	         "Prometheus at http://127.0.0.1:%u refused the connection", (unsigned)port);
	ck_assert_str_eq(result.message, expected);
	ck_assert_msg(elapsed < 2.0, "took %.2fs", elapsed);
}
END_TEST

START_TEST(test_http_unresolvable_host)
{
	char err[256];
	prom_result result;
	prom_client *client =
	    prom_client_new("http://no-such-host.invalid:9090", 3000, err, sizeof err);

	ck_assert_msg(client != NULL, "%s", err);
	query_one(client, "up", &result);
	prom_client_free(client);
	ck_assert_msg(result.outcome == PROM_UNAVAILABLE, "%s", result.message);
	ck_assert_msg(
	    message_has(&result,
	                "Prometheus at http://no-such-host.invalid:9090 could not be found"),
	    "%s", result.message);
}
END_TEST

START_TEST(test_http_timeout)
{
	fake_server server = {.mode = FAKE_SILENT};
	prom_result result;

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 500);
	double started = now_seconds();
	query_one(client, "up", &result);
	double elapsed = now_seconds() - started;
	prom_client_free(client);
	fake_server_stop(&server);

	ck_assert_int_eq(result.outcome, PROM_TIMEOUT);
	ck_assert_str_eq(result.message, "Prometheus did not answer within 500ms");
	ck_assert_int_eq(server.requests, 1);
	ck_assert_msg(elapsed >= 0.45 && elapsed < 2.5, "took %.2fs", elapsed);
}
END_TEST

START_TEST(test_http_connect_timeout)
{
	/* A listener that never accepts, its queue filled: Linux then drops
	 * further SYNs, so the connection attempt hangs. */
	struct sockaddr_in address = {.sin_family = AF_INET};
	socklen_t address_len = sizeof address;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	int fillers[8];
	char expected[160];
	prom_result result;

	ck_assert_int_ge(listener, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(listener, (struct sockaddr *)&address, sizeof address), 0);
	ck_assert_int_eq(listen(listener, 0), 0);
	ck_assert_int_eq(getsockname(listener, (struct sockaddr *)&address, &address_len), 0);
	for (size_t i = 0; i < 8; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fillers[i], 0);
		(void)connect(fillers[i], (struct sockaddr *)&address, sizeof address);
	}
	usleep(100000);
	prom_client *client = client_for(ntohs(address.sin_port), "", 500);
	double started = now_seconds();
	query_one(client, "up", &result);
	double elapsed = now_seconds() - started;
	prom_client_free(client);
	for (size_t i = 0; i < 8; i++)
		close(fillers[i]);
	close(listener);

	ck_assert_int_eq(result.outcome, PROM_TIMEOUT);
	snprintf(expected, sizeof expected,
	         "Prometheus at http://127.0.0.1:%u did not accept the connection within 500ms",
	         (unsigned)ntohs(address.sin_port));
	ck_assert_str_eq(result.message, expected);
	ck_assert_msg(elapsed >= 0.45 && elapsed < 2.5, "took %.2fs", elapsed);
}
END_TEST

START_TEST(test_http_timeout_on_reused_connection)
{
	fake_server server = {.mode = FAKE_SILENT, .answers_first = 1, .body = ONE_SERIES};
	prom_result first, second;

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 1000);
	query_one(client, "up", &first);
	query_one(client, "up", &second);
	prom_client_free(client);
	fake_server_stop(&server);

	ck_assert_msg(first.outcome == PROM_OK, "%s", first.message);
	prom_result_clear(&first);
	ck_assert_int_eq(second.outcome, PROM_TIMEOUT);
	ck_assert_str_eq(second.message, "Prometheus did not answer within 1s");
	ck_assert_int_eq(server.connections, 1);
}
END_TEST

START_TEST(test_http_reset)
{
	fake_server server = {.mode = FAKE_RESET};
	prom_result result;

	fake_server_start(&server);
	prom_client *client = client_for(server.port, "", 5000);
	query_one(client, "up", &result);
	prom_client_free(client);
	fake_server_stop(&server);

	ck_assert_msg(result.outcome == PROM_UNAVAILABLE, "%s", result.message);
	ck_assert_msg(message_has(&result, "closed the connection without answering"), "%s",
	              result.message);
}
END_TEST

START_TEST(test_http_too_large)
{
	for (int announced = 0; announced < 2; announced++) {
		fake_server server = {
		    .mode = FAKE_HUGE, .huge_bytes = 33 * MIB, .huge_announced = announced};
		prom_result result;
		fake_server_start(&server);
		prom_client *client = client_for(server.port, "", 20000);
		query_one(client, "up", &result);
		prom_client_free(client);
		fake_server_stop(&server);
		ck_assert_msg(result.outcome == PROM_BAD_RESPONSE, "%s", result.message);
		ck_assert_str_eq(result.message, "Prometheus sent a response larger than 32 MiB");
	}
}
END_TEST

START_TEST(test_http_degenerate_calls)
{
	prom_result results[2];
	const char *queries[2] = {"up", NULL};
	uint16_t port = closed_port();

	prom_query_all(NULL, queries, 0, 0, results);
	prom_query_all(NULL, queries, 2, 0, NULL);
	prom_query_all(NULL, queries, 2, 0, results);
	ck_assert_int_eq(results[0].outcome, PROM_UNAVAILABLE);
	ck_assert_int_eq(results[1].outcome, PROM_UNAVAILABLE);

	prom_client *client = client_for(port, "", 1000);
	prom_query_all(client, queries, 2, 0, results);
	prom_client_free(client);
	ck_assert_int_eq(results[0].outcome, PROM_UNAVAILABLE);
	ck_assert_int_eq(results[1].outcome, PROM_BAD_RESPONSE);
	ck_assert_str_eq(results[1].message, "no query was given");
}
END_TEST

/* ---------------- a real Prometheus ---------------- */

/* The Prometheus process of the "prometheus" test case. */
typedef struct prometheus_process {
	const char *binary;
	pid_t pid;
	char dir[64];
	uint16_t port;
	bool ready;
	char problem[512]; /* why it is not ready */
} prometheus_process;

static prometheus_process prometheus = {.pid = -1};

static const char *prometheus_binary(void)
{
	const char *binary = getenv("SMI_TEST_PROMETHEUS");

	return binary && binary[0] ? binary : "/usr/bin/prometheus";
}

/* One raw HTTP GET of /-/ready; no libcurl, so that only the client under
 * test initialises it. */
static bool prometheus_answers_ready(uint16_t port)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
	char reply[64] = "";
	const char request[] = "GET /-/ready HTTP/1.0\r\n\r\n";
	bool ready = false;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return false;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
	    send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request) &&
	    recv(fd, reply, sizeof reply - 1, MSG_WAITALL) > 12)
		ready = strncmp(reply + 8, " 200", 4) == 0;
	close(fd);
	return ready;
}

static void prometheus_start(void)
{
	char path[128], config[192], storage[192], listen[64], log_path[192];
	FILE *file;

	strcpy(prometheus.dir, "/tmp/test_prom.XXXXXX");
	if (!mkdtemp(prometheus.dir)) {
		snprintf(prometheus.problem, sizeof prometheus.problem, "mkdtemp: %s",
		         strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/prometheus.yml", prometheus.dir);
	file = fopen(path, "w");
	if (!file || fputs("global:\n  scrape_interval: 1m\nscrape_configs: []\n", file) < 0 ||
	    fclose(file) != 0) {
		snprintf(prometheus.problem, sizeof prometheus.problem, "cannot write %s", path);
		return;
	}
	prometheus.port = closed_port();
	snprintf(config, sizeof config, "--config.file=%s", path);
	snprintf(storage, sizeof storage, "--storage.tsdb.path=%s/data", prometheus.dir);
	snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%u",
	         (unsigned)prometheus.port);
	snprintf(log_path, sizeof log_path, "%s/prometheus.log", prometheus.dir);
	prometheus.pid = fork();
	if (prometheus.pid == 0) {
		int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (log_fd >= 0) {
			dup2(log_fd, STDOUT_FILENO);
			dup2(log_fd, STDERR_FILENO);
		}
		execl(prometheus.binary, prometheus.binary, config, storage, listen,
		      "--log.level=warn", (char *)NULL);
		_exit(127);
	}
	if (prometheus.pid < 0) {
		snprintf(prometheus.problem, sizeof prometheus.problem, "fork: %s",
		         strerror(errno));
		return;
	}
	for (int attempt = 0; attempt < 600; attempt++) {
		int status;
		if (waitpid(prometheus.pid, &status, WNOHANG) == prometheus.pid) {
			prometheus.pid = -1;
			snprintf(prometheus.problem, sizeof prometheus.problem,
			         "Prometheus exited during startup; see %s", log_path);
			return;
		}
		if (prometheus_answers_ready(prometheus.port)) {
			prometheus.ready = true;
			return;
		}
		usleep(100000);
	}
	snprintf(prometheus.problem, sizeof prometheus.problem,
	         "Prometheus not ready after 60s; see %s", log_path);
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
	(void)info;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void prometheus_stop(void)
{
	if (prometheus.pid > 0) {
		kill(prometheus.pid, SIGTERM);
		waitpid(prometheus.pid, NULL, 0);
		prometheus.pid = -1;
	}
	/* Keep the log when something went wrong. */
	if (prometheus.dir[0] && prometheus.ready)
		nftw(prometheus.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static prom_client *prometheus_client(void)
{
	ck_assert_msg(prometheus.ready, "%s", prometheus.problem);
	return client_for(prometheus.port, "", 10000);
}

START_TEST(test_prometheus_vectors)
{
	const char *queries[] = {
	    "vector(1)",    "label_replace(vector(2),\"a\",\"b\",\"\",\"\")",
	    "vector(NaN)",  "vector(+Inf)",
	    "vector(-Inf)",
	};
	enum { N = sizeof queries / sizeof queries[0] };
	prom_result results[N];

	prom_client *client = prometheus_client();
	prom_query_all(client, queries, N, (int64_t)time(NULL), results);
	prom_client_free(client);

	for (size_t i = 0; i < N; i++) {
		ck_assert_msg(results[i].outcome == PROM_OK, "%s: %s", queries[i],
		              results[i].message);
		ck_assert_uint_eq(results[i].n_series, 1);
	}
	ck_assert_uint_eq(results[0].series[0].n_labels, 0);
	ck_assert_double_eq(results[0].series[0].value, 1.0);
	ck_assert_uint_eq(results[1].series[0].n_labels, 1);
	ck_assert_str_eq(results[1].series[0].labels[0].name, "a");
	ck_assert_str_eq(results[1].series[0].labels[0].value, "b");
	ck_assert_double_eq(results[1].series[0].value, 2.0);
	ck_assert(isnan(results[2].series[0].value));
	ck_assert(isinf(results[3].series[0].value) && results[3].series[0].value > 0);
	ck_assert(isinf(results[4].series[0].value) && results[4].series[0].value < 0);
	for (size_t i = 0; i < N; i++)
		prom_result_clear(&results[i]);
}
END_TEST

START_TEST(test_prometheus_errors)
{
	const char *queries[] = {"sum(", "up[5m]", "1", "\"text\"", "vector(3)"};
	enum { N = sizeof queries / sizeof queries[0] };
	prom_result results[N];

	prom_client *client = prometheus_client();
	prom_query_all(client, queries, N, (int64_t)time(NULL), results);
	prom_client_free(client);

	ck_assert_int_eq(results[0].outcome, PROM_BAD_RESPONSE);
	ck_assert_msg(
	    strncmp(results[0].message, "Prometheus answered HTTP 400 (bad_data): ", 41) == 0, "%s",
	    results[0].message);
	ck_assert_msg(message_has(&results[0], "parse error"), "%s", results[0].message);
	ck_assert_int_eq(results[1].outcome, PROM_BAD_RESPONSE);
	ck_assert_str_eq(results[1].message,
	                 "Prometheus returned a matrix where a vector was expected");
	ck_assert_str_eq(results[2].message,
	                 "Prometheus returned a scalar where a vector was expected");
	ck_assert_str_eq(results[3].message,
	                 "Prometheus returned a string where a vector was expected");
	/* One bad query does not spoil the others of the same call. */
	ck_assert_msg(results[4].outcome == PROM_OK, "%s", results[4].message);
	ck_assert_double_eq(results[4].series[0].value, 3.0);
	for (size_t i = 0; i < N; i++)
		prom_result_clear(&results[i]);
}
END_TEST

START_TEST(test_prometheus_long_query)
{
	char long_value[2201];
	char *query = NULL;
	prom_result result;

	memset(long_value, 'x', 2200);
	long_value[2200] = '\0';
	ck_assert_int_ge(
	    asprintf(&query, "label_replace(vector(5),\"long\",\"%s\",\"\",\"\")", long_value), 0);
	prom_client *client = prometheus_client();
	prom_query_all(client, (const char *const *)&query, 1, (int64_t)time(NULL), &result);
	prom_client_free(client);
	free(query);

	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	ck_assert_uint_eq(result.n_series, 1);
	ck_assert_str_eq(result.series[0].labels[0].value, long_value);
	ck_assert_double_eq(result.series[0].value, 5.0);
	prom_result_clear(&result);
}
END_TEST

/* ---------------- options of issue 8: methods, headers, credentials ---------------- */

START_TEST(test_method_names)
{
	prom_method method = PROM_METHOD_GET;

	ck_assert(prom_method_from_name("auto", &method) && method == PROM_METHOD_AUTO);
	ck_assert(prom_method_from_name("get", &method) && method == PROM_METHOD_GET);
	ck_assert(prom_method_from_name("post", &method) && method == PROM_METHOD_POST);
	ck_assert(!prom_method_from_name("POST", &method));
	ck_assert(!prom_method_from_name("", &method));
	ck_assert(!prom_method_from_name(NULL, &method));
	ck_assert_int_eq(method, PROM_METHOD_POST);
}
END_TEST

START_TEST(test_header_problems)
{
	static const struct {
		const char *name;
		const char *value;
		const char *problem; /* prefix; NULL: accepted */
	} cases[] = {
	    {"X-Scope-OrgID", "team-a", NULL},
	    {"AccountID", "42", NULL},
	    {"X-Tenant", "a|b with spaces\tand tab", NULL},
	    {"x!#$%&'*+-.^_`|~1", "v", NULL},
	    {"X-Utf8", "\xc3\xa9t\xc3\xa9", NULL},
	    {"", "v", "the header name is empty"},
	    {NULL, "v", "the header name is empty"},
	    {"X Tenant", "v", "the header name may only have"},
	    {"X-Tenant:", "v", "the header name may only have"},
	    {"X-T\xc3\xa9nant", "v", "the header name may only have"},
	    {"Authorization", "Bearer x", "credentials are not taken from headers"},
	    {"proxy-authorization", "Basic x", "credentials are not taken from headers"},
	    {"HOST", "prom", "this header is set by smi-metrics itself"},
	    {"Content-Length", "5", "this header is set by smi-metrics itself"},
	    {"Transfer-Encoding", "chunked", "this header is set by smi-metrics itself"},
	    {"X-Tenant", "", "the value is empty"},
	    {"X-Tenant", NULL, "the value is empty"},
	    {"X-Tenant", "a\r\nX-Evil: 1", "the value must not contain line breaks"},
	    {"X-Tenant", "a\nb", "the value must not contain line breaks"},
	    {"X-Tenant", "a\x7f", "the value must not contain line breaks"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *problem = prom_header_problem(cases[i].name, cases[i].value);
		if (!cases[i].problem) {
			ck_assert_msg(problem == NULL, "case %zu: %s", i, problem);
			continue;
		}
		ck_assert_msg(problem &&
		                  strncmp(problem, cases[i].problem, strlen(cases[i].problem)) == 0,
		              "case %zu: %s", i, problem ? problem : "(accepted)");
	}
	ck_assert_ptr_null(prom_server_name_problem("prometheus.monitoring.svc"));
	ck_assert_ptr_null(prom_server_name_problem("10.0.0.1"));
	ck_assert_ptr_nonnull(prom_server_name_problem(""));
	ck_assert_ptr_nonnull(prom_server_name_problem("a b"));
	ck_assert_ptr_nonnull(prom_server_name_problem("host:443"));
	ck_assert_ptr_nonnull(prom_server_name_problem(NULL));
}
END_TEST

/* A private directory for credential and certificate files. */
static void make_temp_dir(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/test_prom_files.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Writes text to dir/name in place (truncate and write); path_out gets
 * the path. */
static void write_text(const char *dir, const char *name, const char *text, char *path_out,
                       size_t path_size)
{
	snprintf(path_out, path_size, "%s/%s", dir, name);
	FILE *file = fopen(path_out, "w");
	ck_assert_ptr_nonnull(file);
	ck_assert_int_ge(fputs(text, file), 0);
	ck_assert_int_eq(fclose(file), 0);
}

/* Replaces dir/name atomically, as Kubernetes does with a Secret volume. */
static void replace_text(const char *dir, const char *name, const char *text)
{
	char staged[256], path[256], target[256];

	write_text(dir, ".staged", text, staged, sizeof staged);
	snprintf(target, sizeof target, "%s/%s", dir, name);
	snprintf(path, sizeof path, "%s", staged);
	ck_assert_int_eq(rename(path, target), 0);
}

static void remove_dir(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static prom_client *client_with(const prom_options *options)
{
	char err[256] = "";
	prom_client *client = prom_client_new_with_options(options, err, sizeof err);

	ck_assert_msg(client != NULL, "%s", err);
	return client;
}

/* The value of header `name` in the request last received, or "". */
static void last_header(fake_server *server, const char *name, char *out, size_t out_size)
{
	char needle[128];
	const char *found, *end;

	snprintf(needle, sizeof needle, "\r\n%s: ", name);
	pthread_mutex_lock(&server->lock);
	found = strcasestr(server->last_request, needle);
	out[0] = '\0';
	if (found) {
		found += strlen(needle);
		end = strstr(found, "\r\n");
		snprintf(out, out_size, "%.*s", (int)(end ? end - found : 0), found);
	}
	pthread_mutex_unlock(&server->lock);
}

START_TEST(test_client_rejects_options)
{
	char dir[64], token[256], empty[256], ca[256], not_pem[256], url[128];
	char err[512];

	make_temp_dir(dir, sizeof dir);
	write_text(dir, "token", "t0ken\n", token, sizeof token);
	write_text(dir, "empty", " \n", empty, sizeof empty);
	write_text(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	           ca, sizeof ca);
	write_text(dir, "not-pem", "hello\n", not_pem, sizeof not_pem);
	snprintf(url, sizeof url, "%s/missing", dir);

	const char *names[] = {"X-Scope-OrgID", "x-scope-orgid"};
	const char *values[] = {"a", "b"};
	const char *bad_names[] = {"Authorization"};
	const char *bad_values[] = {"Bearer secret-in-header"};
	const struct {
		prom_options options;
		const char *message; /* prefix */
	} cases[] = {
	    {{.url = "http://p:9090", .timeout_ms = 1000, .method = (prom_method)7},
	     "Prometheus method must be auto, get or post"},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .max_response_bytes = 1024},
	     "Prometheus maximum response size must be between 64 KiB and 1 GiB"},
	    {{.url = "http://p:9090",
	      .timeout_ms = 1000,
	      .bearer_token_file = token,
	      .basic_auth_username_file = token,
	      .basic_auth_password_file = token},
	     "set a bearer token file or basic auth files, not both"},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .basic_auth_username_file = token},
	     "basic auth needs both a username file and a password file"},
	    {{.url = "http://alice:hunter2@p:9090", .timeout_ms = 1000, .bearer_token_file = token},
	     "Prometheus URL must not carry user info when credential files are set"},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .bearer_token_file = url},
	     "bearer token file /tmp/test_prom_files."},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .bearer_token_file = empty},
	     "bearer token file /tmp/test_prom_files."},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .tls_ca_file = ca},
	     "TLS options need an https:// Prometheus URL"},
	    {{.url = "http://p:9090", .timeout_ms = 1000, .tls_insecure_skip_verify = true},
	     "TLS options need an https:// Prometheus URL"},
	    {{.url = "https://p:9090", .timeout_ms = 1000, .tls_cert_file = ca},
	     "a TLS client certificate needs both a certificate file and a key file"},
	    {{.url = "https://p:9090", .timeout_ms = 1000, .tls_server_name = "a/b"},
	     "the TLS server name must be a DNS name or an IPv4 address"},
	    {{.url = "https://p:9090", .timeout_ms = 1000, .tls_ca_file = url},
	     "TLS CA file /tmp/test_prom_files."},
	    {{.url = "https://p:9090", .timeout_ms = 1000, .tls_ca_file = not_pem},
	     "TLS CA file /tmp/test_prom_files."},
	    {{.url = "https://p:9090", .timeout_ms = 1000, .tls_cert_file = ca, .tls_key_file = ca},
	     "TLS key file /tmp/test_prom_files."},
	    {{.url = "http://p:9090",
	      .timeout_ms = 1000,
	      .header_names = names,
	      .header_values = values,
	      .n_headers = 2},
	     "Prometheus header x-scope-orgid is given twice"},
	    {{.url = "http://p:9090",
	      .timeout_ms = 1000,
	      .header_names = bad_names,
	      .header_values = bad_values,
	      .n_headers = 1},
	     "Prometheus header Authorization: credentials are not taken from headers"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		prom_client *client =
		    prom_client_new_with_options(&cases[i].options, err, sizeof err);
		ck_assert_msg(client == NULL, "case %zu accepted", i);
		ck_assert_msg(strncmp(err, cases[i].message, strlen(cases[i].message)) == 0,
		              "case %zu: %s", i, err);
		ck_assert_msg(!strstr(err, "hunter2") && !strstr(err, "t0ken") &&
		                  !strstr(err, "secret-in-header"),
		              "case %zu leaks a secret: %s", i, err);
	}
	/* The problems of a file are named after the file. */
	prom_options missing = {
	    .url = "http://p:9090", .timeout_ms = 1000, .bearer_token_file = url};
	ck_assert_ptr_null(prom_client_new_with_options(&missing, err, sizeof err));
	ck_assert_msg(strstr(err, "/missing: cannot open: No such file or directory"), "%s", err);
	missing.bearer_token_file = empty;
	ck_assert_ptr_null(prom_client_new_with_options(&missing, err, sizeof err));
	ck_assert_msg(strstr(err, "/empty: is empty"), "%s", err);
	prom_options not_pem_ca = {
	    .url = "https://p:9090", .timeout_ms = 1000, .tls_ca_file = not_pem};
	ck_assert_ptr_null(prom_client_new_with_options(&not_pem_ca, err, sizeof err));
	ck_assert_msg(strstr(err, "/not-pem: no PEM \"-----BEGIN CERTIFICATE-----\" found"), "%s",
	              err);
	ck_assert_ptr_null(prom_client_new_with_options(NULL, err, sizeof err));
	ck_assert_str_eq(err, "Prometheus URL is empty");
	remove_dir(dir);
}
END_TEST

START_TEST(test_http_bearer_token_rotation)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	char dir[64], token_path[256], url[128], header[512];
	prom_result result;

	make_temp_dir(dir, sizeof dir);
	write_text(dir, "token", "first-token\n", token_path, sizeof token_path);
	fake_server_start(&server);
	snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)server.port);
	prom_options options = {.url = url, .timeout_ms = 5000, .bearer_token_file = token_path};
	prom_client *client = client_with(&options);

	query_one(client, "up", &result);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "Bearer first-token");

	/* Rewritten in place, same size, within the same second: a stat
	 * signature alone could miss it; the client must not. */
	write_text(dir, "token", "other-token\n", token_path, sizeof token_path);
	query_one(client, "up", &result);
	prom_result_clear(&result);
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "Bearer other-token");

	/* Replaced by rename, as a Kubernetes Secret volume does. */
	replace_text(dir, "token", "  rotated-token-3\r\n");
	query_one(client, "up", &result);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "Bearer rotated-token-3");

	/* Gone: the query fails, naming the file and not the old token. */
	ck_assert_int_eq(unlink(token_path), 0);
	pthread_mutex_lock(&server.lock);
	int requests_before = server.requests;
	pthread_mutex_unlock(&server.lock);
	query_one(client, "up", &result);
	ck_assert_int_eq(result.outcome, PROM_UNAVAILABLE);
	ck_assert_msg(message_has(&result, "bearer token file ") &&
	                  message_has(&result, "/token: cannot open"),
	              "%s", result.message);
	ck_assert_msg(!message_has(&result, "rotated-token"), "%s", result.message);
	pthread_mutex_lock(&server.lock);
	ck_assert_int_eq(server.requests, requests_before);
	pthread_mutex_unlock(&server.lock);

	/* Back again: used at once. */
	replace_text(dir, "token", "fourth-token");
	query_one(client, "up", &result);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "Bearer fourth-token");

	prom_client_free(client);
	fake_server_stop(&server);
	remove_dir(dir);
}
END_TEST

/* Some backends quote the credential they refused (vmauth 1.79 answers
 * 400 'cannot find the provided auth token "Bearer ..." in config'); it
 * must not reach the message, cut off or whole. */
START_TEST(test_http_refused_credentials_are_masked)
{
	char dir[64], token_path[256], url[128], body[512];
	const char *token = "s3cret-token-Zx81";
	static const int statuses[] = {400, 401};
	prom_result result;

	make_temp_dir(dir, sizeof dir);
	write_text(dir, "token", "s3cret-token-Zx81\n", token_path, sizeof token_path);
	for (size_t i = 0; i < 2; i++) {
		for (int cut = 0; cut < 2; cut++) {
			/* cut: the excerpt (160 characters) ends inside the token */
			if (cut)
				snprintf(body, sizeof body, "%0150d %s and more", 0, token);
			else
				snprintf(
				    body, sizeof body,
				    "cannot find the provided auth token \"Bearer %s\" in config",
				    token);
			fake_server server = {
			    .mode = FAKE_ANSWER, .status = statuses[i], .body = body};
			fake_server_start(&server);
			snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)server.port);
			prom_options options = {
			    .url = url, .timeout_ms = 5000, .bearer_token_file = token_path};
			prom_client *client = client_with(&options);
			query_one(client, "up", &result);
			prom_client_free(client);
			fake_server_stop(&server);
			ck_assert_int_eq(result.outcome, PROM_BAD_RESPONSE);
			ck_assert_msg(!message_has(&result, "s3cret") &&
			                  !message_has(&result, "Zx81"),
			              "HTTP %d cut %d: %s", statuses[i], cut, result.message);
			ck_assert_msg(message_has(&result, cut ? " *********"
			                                       : "\"Bearer *****************\""),
			              "HTTP %d cut %d: %s", statuses[i], cut, result.message);
		}
	}
	remove_dir(dir);
}
END_TEST

START_TEST(test_http_basic_auth_and_headers)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	char dir[64], user_path[256], password_path[256], url[128], header[512];
	const char *names[] = {"X-Scope-OrgID", "AccountID"};
	const char *values[] = {"team-a", "42"};
	prom_result result;

	make_temp_dir(dir, sizeof dir);
	write_text(dir, "user", "alice\n", user_path, sizeof user_path);
	write_text(dir, "password", "s3cret\n", password_path, sizeof password_path);
	fake_server_start(&server);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/select/0/prometheus/",
	         (unsigned)server.port);
	prom_options options = {.url = url,
	                        .timeout_ms = 5000,
	                        .method = PROM_METHOD_POST,
	                        .basic_auth_username_file = user_path,
	                        .basic_auth_password_file = password_path,
	                        .header_names = names,
	                        .header_values = values,
	                        .n_headers = 2};
	prom_client *client = client_with(&options);

	query_one(client, "up", &result);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	pthread_mutex_lock(&server.lock);
	ck_assert_msg(strncmp(server.last_request,
	                      "POST /select/0/prometheus/api/v1/query HTTP/1.1\r\n", 49) == 0,
	              "%.80s", server.last_request);
	pthread_mutex_unlock(&server.lock);
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "Basic YWxpY2U6czNjcmV0"); /* alice:s3cret */
	last_header(&server, "X-Scope-OrgID", header, sizeof header);
	ck_assert_str_eq(header, "team-a");
	last_header(&server, "AccountID", header, sizeof header);
	ck_assert_str_eq(header, "42");
	last_header(&server, "Content-Type", header, sizeof header);
	ck_assert_str_eq(header, "application/x-www-form-urlencoded");

	/* A colon in the user name cannot be sent (RFC 7617). */
	write_text(dir, "user", "al:ice\n", user_path, sizeof user_path);
	query_one(client, "up", &result);
	ck_assert_int_eq(result.outcome, PROM_UNAVAILABLE);
	ck_assert_msg(message_has(&result, "/user: contains ':'"), "%s", result.message);
	ck_assert_msg(!message_has(&result, "s3cret"), "%s", result.message);

	prom_client_free(client);
	fake_server_stop(&server);
	remove_dir(dir);
}
END_TEST

START_TEST(test_http_method_get_forced)
{
	fake_server server = {.mode = FAKE_ANSWER, .body = ONE_SERIES};
	const char *names[] = {"X-Scope-OrgID"};
	const char *values[] = {"tenant-1"};
	char *query = malloc(3001);
	char url[128], header[128];
	prom_result result;

	ck_assert_ptr_nonnull(query);
	memset(query, 'a', 3000);
	query[3000] = '\0';
	fake_server_start(&server);
	snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)server.port);
	prom_options options = {.url = url,
	                        .timeout_ms = 5000,
	                        .method = PROM_METHOD_GET,
	                        .header_names = names,
	                        .header_values = values,
	                        .n_headers = 1};
	prom_client *client = client_with(&options);
	query_one(client, query, &result);
	prom_client_free(client);
	ck_assert_msg(result.outcome == PROM_OK, "%s", result.message);
	prom_result_clear(&result);
	pthread_mutex_lock(&server.lock);
	ck_assert_msg(strncmp(server.last_request, "GET /api/v1/query?query=aaaa", 28) == 0,
	              "%.60s", server.last_request);
	pthread_mutex_unlock(&server.lock);
	last_header(&server, "X-Scope-OrgID", header, sizeof header);
	ck_assert_str_eq(header, "tenant-1");
	last_header(&server, "Authorization", header, sizeof header);
	ck_assert_str_eq(header, "");
	fake_server_stop(&server);
	free(query);
}
END_TEST

START_TEST(test_http_max_response_bytes)
{
	for (int announced = 0; announced < 2; announced++) {
		fake_server server = {
		    .mode = FAKE_HUGE, .huge_bytes = 65 * 1024, .huge_announced = announced};
		char url[128];
		prom_result result;
		fake_server_start(&server);
		snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)server.port);
		prom_options options = {
		    .url = url, .timeout_ms = 5000, .max_response_bytes = 64 * 1024};
		prom_client *client = client_with(&options);
		query_one(client, "up", &result);
		prom_client_free(client);
		fake_server_stop(&server);
		ck_assert_msg(result.outcome == PROM_BAD_RESPONSE, "%s", result.message);
		ck_assert_str_eq(result.message, "Prometheus sent a response larger than 64 KiB");
	}
}
END_TEST

static Suite *prom_suite(bool with_prometheus)
{
	Suite *suite = suite_create("prom");
	TCase *parser = tcase_create("parser");
	TCase *client = tcase_create("client");
	TCase *http = tcase_create("http");

	tcase_add_test(parser, test_parse_success);
	tcase_add_test(parser, test_messages_stay_valid_utf8);
	tcase_add_test(parser, test_parse_special_values);
	tcase_add_test(parser, test_parse_decimal_forms);
	tcase_add_test(parser, test_parse_empty_vector);
	tcase_add_test(parser, test_parse_status_error);
	tcase_add_test(parser, test_parse_other_result_types);
	tcase_add_test(parser, test_parse_wrong_shapes);
	tcase_add_test(parser, test_parse_wrong_series);
	tcase_add_test(parser, test_parse_bad_numbers);
	tcase_add_test(parser, test_parse_invalid_json);
	tcase_add_test(parser, test_parse_depth_bomb);
	tcase_add_test(parser, test_parse_size_limit);
	tcase_add_test(parser, test_parse_many_series);
	tcase_add_test(parser, test_parse_label_text);
	tcase_add_test(parser, test_message_stays_clean);
	tcase_add_test(parser, test_result_clear_and_names);
	tcase_set_timeout(parser, 30);
	suite_add_tcase(suite, parser);

	tcase_add_test(client, test_client_rejects);
	tcase_add_test(client, test_client_accepts);
	tcase_add_test(client, test_method_names);
	tcase_add_test(client, test_header_problems);
	tcase_add_test(client, test_client_rejects_options);
	suite_add_tcase(suite, client);

	tcase_add_test(http, test_http_get_request);
	tcase_add_test(http, test_http_long_query_is_posted);
	tcase_add_test(http, test_http_concurrent);
	tcase_add_test(http, test_http_reuses_connections);
	tcase_add_test(http, test_http_many_threads);
	tcase_add_test(http, test_http_error_statuses);
	tcase_add_test(http, test_http_connection_refused);
	tcase_add_test(http, test_http_unresolvable_host);
	tcase_add_test(http, test_http_timeout);
	tcase_add_test(http, test_http_connect_timeout);
	tcase_add_test(http, test_http_timeout_on_reused_connection);
	tcase_add_test(http, test_http_reset);
	tcase_add_test(http, test_http_too_large);
	tcase_add_test(http, test_http_degenerate_calls);
	tcase_add_test(http, test_http_bearer_token_rotation);
	tcase_add_test(http, test_http_basic_auth_and_headers);
	tcase_add_test(http, test_http_refused_credentials_are_masked);
	tcase_add_test(http, test_http_method_get_forced);
	tcase_add_test(http, test_http_max_response_bytes);
	tcase_set_timeout(http, 60);
	suite_add_tcase(suite, http);

	if (with_prometheus) {
		TCase *real = tcase_create("prometheus");
		tcase_add_unchecked_fixture(real, prometheus_start, prometheus_stop);
		tcase_add_test(real, test_prometheus_vectors);
		tcase_add_test(real, test_prometheus_errors);
		tcase_add_test(real, test_prometheus_long_query);
		tcase_set_timeout(real, 60);
		suite_add_tcase(suite, real);
	}
	return suite;
}

int main(void)
{
	bool with_prometheus;
	int failed;

	prometheus.binary = prometheus_binary();
	with_prometheus = access(prometheus.binary, X_OK) == 0;
	if (!with_prometheus)
		fprintf(stderr,
		        "test_prom: SKIP the \"prometheus\" test case: %s is not executable\n",
		        prometheus.binary);
	SRunner *runner = srunner_create(prom_suite(with_prometheus));
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	/* Pairs the curl_global_init() done by prom_client_new(). */
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

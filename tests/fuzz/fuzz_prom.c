/* fuzz_prom: prom_parse_vector() on fuzzed /api/v1/query answers, the
 * bytes an unhealthy or hostile Prometheus (or whatever sits at its URL)
 * can send.
 *
 * Input: the response body, not NUL-terminated (libFuzzer's buffer has
 * exactly `size` bytes, so a read past it is caught).  Checked: the outcome
 * is OK or BadResponse, the message is empty exactly on OK and otherwise one
 * printable line of valid UTF-8 (prom.c promises it; it ends up in a
 * metav1.Status through jansson), and an OK vector is well formed: labels
 * sorted and unique, strings terminated. */
#include "fuzz_common.h"

#include "prom.h"

static void check_series(const prom_result *result)
{
	for (size_t i = 0; i < result->n_series; i++) {
		const prom_series *s = &result->series[i];
		FUZZ_CHECK(s->n_labels == 0 || s->labels != NULL, "series %zu: labels missing", i);
		for (size_t l = 0; l < s->n_labels; l++) {
			FUZZ_CHECK(s->labels[l].name && s->labels[l].value,
			           "series %zu label %zu missing", i, l);
			/* jansson checked the encoding; the copy keeps it. */
			FUZZ_CHECK(fuzz_valid_utf8(s->labels[l].name) &&
			               fuzz_valid_utf8(s->labels[l].value),
			           "series %zu label %zu is not UTF-8", i, l);
			if (l > 0)
				FUZZ_CHECK(
				    strcmp(s->labels[l - 1].name, s->labels[l].name) < 0,
				    "series %zu: labels \"%s\", \"%s\" not sorted and unique", i,
				    s->labels[l - 1].name, s->labels[l].name);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	prom_result result;

	/* Garbage in the result: the parser must overwrite all of it. */
	memset(&result, 0xA5, sizeof result);
	prom_outcome outcome = prom_parse_vector((const char *)data, size, &result);

	FUZZ_CHECK(outcome == result.outcome, "returned %d, stored %d", outcome, result.outcome);
	FUZZ_CHECK(outcome == PROM_OK || outcome == PROM_BAD_RESPONSE ||
	               (outcome == PROM_UNAVAILABLE && strstr(result.message, "out of memory")),
	           "outcome %d (%s)", outcome, result.message);
	FUZZ_CHECK(memchr(result.message, '\0', sizeof result.message) != NULL,
	           "message not terminated");
	if (outcome == PROM_OK) {
		FUZZ_CHECK(result.message[0] == '\0', "OK with a message: %s", result.message);
		FUZZ_CHECK(result.n_series == 0 || result.series != NULL, "series missing");
		check_series(&result);
	} else {
		FUZZ_CHECK(result.message[0] != '\0', "failure without a message");
		FUZZ_CHECK(fuzz_one_line(result.message), "message is not one line: %s",
		           result.message);
		FUZZ_CHECK(fuzz_valid_utf8(result.message), "message is not valid UTF-8: %s",
		           result.message);
		FUZZ_CHECK(result.series == NULL && result.n_series == 0, "failure with %zu series",
		           result.n_series);
	}
	prom_result_clear(&result);
	FUZZ_CHECK(result.series == NULL && result.n_series == 0, "clear left series behind");
	prom_result_clear(&result); /* documented safe twice */
	return 0;
}

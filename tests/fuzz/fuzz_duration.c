/* fuzz_duration: duration_parse() and duration_format(), the window
 * parameter `t` and the config's durations.
 *
 * Input: the text to parse (up to its first NUL); its first eight bytes
 * are also read as an int64 of nanoseconds to format.  Checked: parse and
 * format round-trip exactly both ways (Go prints what Go parses back), a
 * rejection explains itself in one line of valid UTF-8, and short output
 * buffers are cut cleanly, never overrun. */
#include "fuzz_common.h"

#include "duration.h"

/* Big enough that no message is ever cut: the input is quoted at most
 * twice, 64 bytes each, a byte growing to 4 ("\xNN"). */
#define FUZZ_DURATION_ERR_MAX 1024

static void check_format_parse(int64_t nanoseconds)
{
	char text[DURATION_FORMAT_MAX];
	char err[FUZZ_DURATION_ERR_MAX];
	int64_t parsed = 0;

	duration_format(nanoseconds, text, sizeof text);
	FUZZ_CHECK(duration_parse(text, &parsed, err, sizeof err),
	           "duration_format(%lld) = \"%s\" does not parse: %s", (long long)nanoseconds,
	           text, err);
	FUZZ_CHECK(parsed == nanoseconds, "%lld -> \"%s\" -> %lld", (long long)nanoseconds, text,
	           (long long)parsed);

	/* Every shorter buffer gets a NUL-terminated prefix and nothing more
	 * (heap copies so that AddressSanitizer sees one byte past the end). */
	size_t full = strlen(text);
	for (size_t buf_size = 1; buf_size <= full; buf_size++) {
		char *cut = malloc(buf_size);
		if (!cut)
			abort();
		duration_format(nanoseconds, cut, buf_size);
		FUZZ_CHECK(strlen(cut) == buf_size - 1 && memcmp(cut, text, buf_size - 1) == 0,
		           "\"%s\" in %zu bytes gave \"%s\"", text, buf_size, cut);
		free(cut);
	}
}

static void check_parse(const char *text, size_t input_size)
{
	char err[FUZZ_DURATION_ERR_MAX];
	int64_t nanoseconds = 0;
	bool ok = duration_parse(text, &nanoseconds, err, sizeof err);

	if (ok) {
		FUZZ_CHECK(err[0] == '\0', "accepted \"%s\" with a message: %s", text, err);
		char formatted[DURATION_FORMAT_MAX];
		int64_t again = 0;
		duration_format(nanoseconds, formatted, sizeof formatted);
		FUZZ_CHECK(duration_parse(formatted, &again, err, sizeof err) &&
		               again == nanoseconds,
		           "\"%s\" = %lld ns formats as \"%s\", which parses to %lld", text,
		           (long long)nanoseconds, formatted, (long long)again);
	} else {
		FUZZ_CHECK(strncmp(err, "invalid duration \"", 18) == 0, "message \"%s\"", err);
		FUZZ_CHECK(strlen(err) < sizeof err - 1, "message cut: %s", err);
		FUZZ_CHECK(fuzz_one_line(err), "message is not one line: %s", err);
		FUZZ_CHECK(fuzz_valid_utf8(err), "message is not valid UTF-8: %s", err);
	}

	/* The out parameter and the message buffer are optional, and a small
	 * message buffer changes nothing but the message. */
	FUZZ_CHECK(duration_parse(text, NULL, NULL, 0) == ok, "result depends on the buffers");
	size_t small_size = 1 + input_size % 48;
	char *small = malloc(small_size);
	int64_t small_ns = 0;
	if (!small)
		abort();
	FUZZ_CHECK(duration_parse(text, &small_ns, small, small_size) == ok &&
	               (!ok || small_ns == nanoseconds),
	           "result depends on the message buffer size");
	FUZZ_CHECK(memchr(small, '\0', small_size) != NULL, "small message not terminated");
	free(small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	char *fields[1];

	if (size > 1024)
		return 0;
	fuzz_split_fields(data, size, &copy, fields, 1);
	check_parse(fields[0], size);
	free(copy);

	if (size >= sizeof(int64_t)) {
		int64_t nanoseconds;
		memcpy(&nanoseconds, data, sizeof nanoseconds);
		check_format_parse(nanoseconds);
	}
	return 0;
}

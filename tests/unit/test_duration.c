/* test_duration: duration_parse/duration_format against Go's own test tables
 * (src/time/time_test.go: parseDurationTests, durationTests) and the brief. */
#include "duration.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NS   INT64_C(1)
#define US   (1000 * NS)
#define MS   (1000 * US)
#define SEC  (1000 * MS)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)

/* UTF-8 of U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU. */
#define MICRO_SIGN "\xc2\xb5"
#define GREEK_MU   "\xce\xbc"

typedef struct parse_case {
	const char *text;
	int64_t nanoseconds;
} parse_case;

/* Go's parseDurationTests (valid half), then the forms our README uses. */
static const parse_case valid_cases[] = {
    {"0", 0},
    {"5s", 5 * SEC},
    {"30s", 30 * SEC},
    {"1478s", 1478 * SEC},
    {"-5s", -5 * SEC},
    {"+5s", 5 * SEC},
    {"-0", 0},
    {"+0", 0},
    {"5.0s", 5 * SEC},
    {"5.6s", 5 * SEC + 600 * MS},
    {"5.s", 5 * SEC},
    {".5s", 500 * MS},
    {"1.0s", 1 * SEC},
    {"1.00s", 1 * SEC},
    {"1.004s", 1 * SEC + 4 * MS},
    {"1.0040s", 1 * SEC + 4 * MS},
    {"100.00100s", 100 * SEC + 1 * MS},
    {"10ns", 10 * NS},
    {"11us", 11 * US},
    {"12" MICRO_SIGN "s", 12 * US},
    {"12" GREEK_MU "s", 12 * US},
    {"13ms", 13 * MS},
    {"14s", 14 * SEC},
    {"15m", 15 * MIN},
    {"16h", 16 * HOUR},
    {"3h30m", 3 * HOUR + 30 * MIN},
    {"10.5s4m", 4 * MIN + 10 * SEC + 500 * MS},
    {"-2m3.4s", -(2 * MIN + 3 * SEC + 400 * MS)},
    {"1h2m3s4ms5us6ns", 1 * HOUR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6 * NS},
    {"39h9m14.425s", 39 * HOUR + 9 * MIN + 14 * SEC + 425 * MS},
    {"52763797000ns", 52763797000 * NS},
    /* more than 9 digits after the point (golang.org/issue/6617) */
    {"0.3333333333333333333h", 20 * MIN},
    /* 2^53 + 1 is not a float64 */
    {"9007199254740993ns", (INT64_C(1) << 53) + 1},
    {"9223372036854775807ns", INT64_MAX},
    {"9223372036854775.807us", INT64_MAX},
    {"9223372036s854ms775us807ns", INT64_MAX},
    {"-9223372036854775808ns", INT64_MIN},
    {"-9223372036854775.808us", INT64_MIN},
    {"-9223372036s854ms775us808ns", INT64_MIN},
    /* golang.org/issue/48629 */
    {"-2562047h47m16.854775808s", INT64_MIN},
    /* huge string (issue 15011) */
    {"0.100000000000000000000h", 6 * MIN},
    /* first overflow check in Go's leadingFraction */
    {"0.830103483285477580700h", 49 * MIN + 48 * SEC + 372539827 * NS},
    /* the forms of the brief and README */
    {"1m15s", 75 * SEC},
    {"1.5m", 90 * SEC},
    {"1h15m30.5s", 1 * HOUR + 15 * MIN + 30 * SEC + 500 * MS},
    {"500ms", 500 * MS},
    {"2h", 2 * HOUR},
    {"-5m", -5 * MIN},
    {"1" MICRO_SIGN "s", 1 * US},
    /* Go truncates the float step toward zero */
    {"1.9ns", 1 * NS},
    {"0.1ns", 0},
    /* units may repeat and come in any order */
    {"1s1s", 2 * SEC},
};

/* Go's parseDurationErrorTests and error half of parseDurationTests, plus
 * shapes a user might plausibly type. */
static const char *const invalid_cases[] = {
    "",
    "3",
    "-",
    "s",
    ".",
    "-.",
    ".s",
    "+.s",
    "1d",
    "\x85\x85",
    "\xff"
    "ff",
    "hello \xff"
    "ff world",
    "\xef\xbf\xbd",
    "\xef\xbf\xbd hello \xef\xbf\xbd world",
    "9223372036854775810ns",
    "9223372036854775808ns",
    "-9223372036854775809ns",
    "9223372036854776us",
    "3000000h",
    "9223372036854775.808us",
    "9223372036854ms775us808ns",
    "00",
    "1h 5m",
    " 1m",
    "1m ",
    "1e3s",
    "1S",
    "1H",
    "1min",
    "1.5.5s",
    "--1s",
    "+-1s",
    "1s-1s",
    "1" MICRO_SIGN,
    "99999999999999999999ns",
    /* Go would wrap to 0 here; we report the overflow */
    "9223372036854775808ns9223372036854775808ns",
};

START_TEST(test_parse_valid)
{
	const parse_case *c = &valid_cases[_i];
	char err[256] = "untouched";
	int64_t got = 12345;

	ck_assert_msg(duration_parse(c->text, &got, err, sizeof(err)), "\"%s\" rejected: %s",
	              c->text, err);
	ck_assert_msg(got == c->nanoseconds, "\"%s\": got %lld, want %lld", c->text, (long long)got,
	              (long long)c->nanoseconds);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_parse_invalid)
{
	const char *text = invalid_cases[_i];
	char err[256] = "";
	int64_t got = 12345;

	ck_assert_msg(!duration_parse(text, &got, err, sizeof(err)), "\"%s\" accepted as %lld",
	              text, (long long)got);
	ck_assert_msg(got == 12345, "output written on failure");
	ck_assert_msg(strncmp(err, "invalid duration \"", 18) == 0,
	              "message \"%s\" does not name the input", err);
	ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line");
}
END_TEST

static void assert_parse_error(const char *text, const char *expected)
{
	char err[256];
	int64_t got;

	ck_assert(!duration_parse(text, &got, err, sizeof(err)));
	ck_assert_str_eq(err, expected);
}

START_TEST(test_error_messages)
{
	assert_parse_error("5", "invalid duration \"5\": missing unit in duration");
	assert_parse_error("", "invalid duration \"\": empty duration");
	assert_parse_error("1d", "invalid duration \"1d\": unknown unit \"d\" in duration "
	                         "(valid: ns, us, " MICRO_SIGN "s, ms, s, m, h)");
	assert_parse_error("3000000h", "invalid duration \"3000000h\": out of range (a "
	                               "duration must fit in int64 nanoseconds, about "
	                               "\xc2\xb1"
	                               "2562047h)");
	assert_parse_error("s", "invalid duration \"s\": expected a number at \"s\"");
	assert_parse_error("-", "invalid duration \"-\": expected a number after the sign");
	assert_parse_error(".s", "invalid duration \".s\": expected digits around "
	                         "the decimal point");
}
END_TEST

START_TEST(test_error_quoting)
{
	char err[256];
	int64_t got;

	/* Go %q style: invalid UTF-8 as \xNN, valid UTF-8 kept. */
	ck_assert(!duration_parse("\xff"
	                          "ff",
	                          &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"\\xffff\""));
	ck_assert(!duration_parse("1" GREEK_MU "x", &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"1" GREEK_MU "x\""));
	ck_assert(!duration_parse("a\"b\\c", &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"a\\\"b\\\\c\""));
	ck_assert(!duration_parse("1\n", &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"1\\x0a\""));
	/* a lone lead byte at the end must not read past the string */
	ck_assert(!duration_parse("1s\xc2", &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "\"1s\\xc2\""));
}
END_TEST

START_TEST(test_error_long_input)
{
	char text[4096];
	char err[256];
	int64_t got;

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	ck_assert(!duration_parse(text, &got, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "xxx...\": expected a number at"));
	ck_assert_uint_lt(strlen(err), sizeof(err) - 1);
}
END_TEST

START_TEST(test_error_buffer_edges)
{
	char small[8];
	int64_t got = 7;

	memset(small, 'Z', sizeof(small));
	ck_assert(!duration_parse("bogus", &got, small, sizeof(small)));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_str_eq(small, "invalid");
	/* no buffer at all is allowed */
	ck_assert(!duration_parse("bogus", &got, NULL, 0));
	ck_assert(!duration_parse(NULL, &got, small, sizeof(small)));
	ck_assert(duration_parse("1s", NULL, NULL, 0));
	ck_assert_int_eq(got, 7);
}
END_TEST

typedef struct format_case {
	int64_t nanoseconds;
	const char *text;
} format_case;

/* Go's durationTests; each positive one is also checked negated. */
static const format_case go_format_cases[] = {
    {0, "0s"},
    {1 * NS, "1ns"},
    {1100 * NS, "1.1" MICRO_SIGN "s"},
    {2200 * US, "2.2ms"},
    {3300 * MS, "3.3s"},
    {4 * MIN + 5 * SEC, "4m5s"},
    {4 * MIN + 5001 * MS, "4m5.001s"},
    {5 * HOUR + 6 * MIN + 7001 * MS, "5h6m7.001s"},
    {8 * MIN + 1 * NS, "8m0.000000001s"},
    {INT64_MAX, "2562047h47m16.854775807s"},
    {INT64_MIN, "-2562047h47m16.854775808s"},
    /* the brief's examples */
    {30 * SEC, "30s"},
    {90 * SEC, "1m30s"},
    {1 * HOUR, "1h0m0s"},
    {1500 * MS, "1.5s"},
    {500 * MS, "500ms"},
    {1 * US, "1" MICRO_SIGN "s"},
    {-5 * MIN, "-5m0s"},
    /* unit boundaries */
    {999 * NS, "999ns"},
    {999999 * NS, "999.999" MICRO_SIGN "s"},
    {999999999 * NS, "999.999999ms"},
    {1 * SEC, "1s"},
    {59 * SEC, "59s"},
    {60 * SEC, "1m0s"},
    {1 * HOUR + 1 * NS, "1h0m0.000000001s"},
    {100 * HOUR, "100h0m0s"},
};

START_TEST(test_format)
{
	const format_case *c = &go_format_cases[_i];
	char buf[DURATION_FORMAT_MAX];

	duration_format(c->nanoseconds, buf, sizeof(buf));
	ck_assert_str_eq(buf, c->text);
	if (c->nanoseconds > 0) {
		char negated[DURATION_FORMAT_MAX + 1];

		strcpy(negated, "-");
		strcat(negated, c->text);
		duration_format(-c->nanoseconds, buf, sizeof(buf));
		ck_assert_str_eq(buf, negated);
	}
}
END_TEST

START_TEST(test_format_small_buffer)
{
	char buf[4];

	memset(buf, 'Z', sizeof(buf));
	duration_format(90 * SEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1m3");
	duration_format(90 * SEC, buf, 0); /* must not write */
	ck_assert_str_eq(buf, "1m3");
	duration_format(90 * SEC, NULL, 0);
}
END_TEST

/* Go's TestParseDurationRoundTrip: millisecond resolution round-trips. */
START_TEST(test_round_trip)
{
	char buf[DURATION_FORMAT_MAX];
	char err[128];
	unsigned seed = 1;

	for (int i = 0; i < 1000; i++) {
		int64_t want, got;

		seed = seed * 1103515245u + 12345u;
		want = (int64_t)(seed & 0x7fffffff) * MS;
		if (i % 2)
			want = -want;
		duration_format(want, buf, sizeof(buf));
		ck_assert_msg(duration_parse(buf, &got, err, sizeof(err)), "%s: %s", buf, err);
		ck_assert_msg(got == want, "%s -> %lld, want %lld", buf, (long long)got,
		              (long long)want);
	}
	/* and the extremes, to the nanosecond */
	duration_format(INT64_MAX, buf, sizeof(buf));
	ck_assert(duration_parse(buf, &(int64_t){0}, err, sizeof(err)));
	duration_format(INT64_MIN, buf, sizeof(buf));
	{
		int64_t got = 0;

		ck_assert(duration_parse(buf, &got, err, sizeof(err)));
		ck_assert(got == INT64_MIN);
	}
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *duration_suite(void)
{
	Suite *suite = suite_create("duration");
	TCase *parse = tcase_create("parse");
	TCase *format = tcase_create("format");

	tcase_add_loop_test(parse, test_parse_valid, 0, COUNT(valid_cases));
	tcase_add_loop_test(parse, test_parse_invalid, 0, COUNT(invalid_cases));
	tcase_add_test(parse, test_error_messages);
	tcase_add_test(parse, test_error_quoting);
	tcase_add_test(parse, test_error_long_input);
	tcase_add_test(parse, test_error_buffer_edges);
	suite_add_tcase(suite, parse);

	tcase_add_loop_test(format, test_format, 0, COUNT(go_format_cases));
	tcase_add_test(format, test_format_small_buffer);
	tcase_add_test(format, test_round_trip);
	suite_add_tcase(suite, format);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(duration_suite());
	int failures;

	srunner_run_all(runner, CK_NORMAL);
	failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

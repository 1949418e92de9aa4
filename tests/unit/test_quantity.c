/* test_quantity: DecimalSI formatting against the table of
 * smi-traffic-metrics.md §3.4, with our rounding and "0" for garbage. */
#include "quantity.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct value_case {
	double value;
	const char *text;
} value_case;

/*
 * §3.4's table.  Where it records the original's truncation or Go's
 * float->int64 garbage, the expected text is ours: 0.0015 rounds to 2m (the
 * original truncated to 1m), NaN/Inf/overflow give "0" (the original
 * printed "-9223372036854775808m").
 */
static const value_case reference_table[] = {
    {0, "0"},
    {0.0004, "0"},
    {0.0015, "2m"},
    {0.05, "50m"},
    {0.5, "500m"},
    {1, "1"},
    {10.123456, "10123m"},
    {28.58, "28580m"},
    {100, "100"},
    {120, "120"},
    {296.875, "296875m"},
    {999.999, "999999m"},
    {1000, "1k"},
    {1234.5, "1234500m"},
    {1500, "1500"},
    {12000, "12k"},
    {250000, "250k"},
    {2500000, "2500k"},
    {1e6, "1M"},
    {1e9, "1G"},
    {-1, "-1"},
    {1e16, "0"},
    /* beyond the table, by the same rules */
    {-0.0, "0"},
    {-0.0004, "0"},
    {-0.0015, "-2m"},
    {0.0005, "1m"},
    {0.001, "1m"},
    {1.0004, "1"},
    {0.9999, "1"},
    {10, "10"},
    {1e12, "1T"},
    {1e15, "1P"},
    {1.5e6, "1500k"},
    {123456789, "123456789"},
    {-12000, "-12k"},
    {-1e16, "0"},
    {9.3e15, "0"},
};

START_TEST(test_format_reference_table)
{
	const value_case *c = &reference_table[_i];
	char buf[QUANTITY_FORMAT_MAX];

	quantity_format(c->value, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, c->text) == 0, "%.17g: got %s, want %s", c->value, buf, c->text);
}
END_TEST

START_TEST(test_format_not_finite)
{
	char buf[QUANTITY_FORMAT_MAX];

	quantity_format(NAN, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
	quantity_format(INFINITY, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
	quantity_format(-INFINITY, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
	/* the last doubles whose thousandths still fit in int64 */
	quantity_format(9.2e15, buf, sizeof(buf));
	ck_assert_str_eq(buf, "9200T");
	quantity_format(-9.2e15, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-9200T");
	/* 2^63 / 1000: the thousandths are 2^63, one past INT64_MAX */
	quantity_format(9223372036854775.808, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0");
}
END_TEST

typedef struct milli_case {
	int64_t milli;
	const char *text;
} milli_case;

/* quantity.h's examples, then §3.4's steps worked by hand. */
static const milli_case milli_table[] = {
    {0, "0"},
    {1500, "1500m"},
    {1000, "1"},
    {1000000, "1k"},
    {28580, "28580m"},
    {1, "1m"},
    {10, "10m"},
    {100, "100m"},
    {10000, "10"},
    {100000, "100"},
    {1500000, "1500"},
    {1234500, "1234500m"},
    {INT64_C(1000000000000), "1G"},
    {INT64_C(100000000000000000), "100T"},
    {INT64_C(1000000000000000000), "1P"},
    {-1, "-1m"},
    {-1000, "-1"},
    {-1500, "-1500m"},
    {-1000000, "-1k"},
    {INT64_MAX, "9223372036854775807m"},
    /* what the original printed for NaN: min int64 has no factor 10 */
    {INT64_MIN, "-9223372036854775808m"},
};

START_TEST(test_format_milli)
{
	const milli_case *c = &milli_table[_i];
	char buf[QUANTITY_FORMAT_MAX];

	quantity_format_milli(c->milli, buf, sizeof(buf));
	ck_assert_str_eq(buf, c->text);
}
END_TEST

START_TEST(test_format_small_buffer)
{
	char buf[4];

	quantity_format_milli(1234500, buf, sizeof(buf));
	ck_assert_str_eq(buf, "123");
	quantity_format_milli(1234500, NULL, 0);
	quantity_format(28.58, buf, 0);
	ck_assert_str_eq(buf, "123");
}
END_TEST

typedef struct parse_case {
	const char *text;
	double value;
} parse_case;

static const parse_case parse_table[] = {
    {"0", 0},    {"28580m", 28.58}, {"10123m", 10.123}, {"296875m", 296.875}, {"1", 1},
    {"-1", -1},  {"+5m", 0.005},    {"1k", 1000},       {"1.5k", 1500},       {"2500k", 2.5e6},
    {"1M", 1e6}, {"1G", 1e9},       {"1T", 1e12},       {"1P", 1e15},         {"1E", 1e18},
    {".5", 0.5}, {"1.", 1},         {"0.001", 0.001},   {"-1500m", -1.5},     {"000123", 123},
};

START_TEST(test_parse)
{
	const parse_case *c = &parse_table[_i];
	double got = -12345;

	ck_assert_msg(quantity_parse(c->text, &got) == 0, "\"%s\" rejected", c->text);
	/* Exact: these are all correctly rounded decimal conversions. */
	ck_assert_msg(got == c->value, "\"%s\": got %.17g, want %.17g", c->text, got, c->value);
}
END_TEST

static const char *const parse_invalid[] = {
    "",   "m",     "-",   "+",   ".",  "-.m", "1x",  "1mm", "1 k", " 1",
    "1 ", "1.2.3", "1Ki", "1e3", "1K", "--1", "1m0", "k1",  "1u",  "0x10",
};

START_TEST(test_parse_invalid)
{
	double got = -12345;

	ck_assert_msg(quantity_parse(parse_invalid[_i], &got) == -1, "\"%s\" accepted as %g",
	              parse_invalid[_i], got);
	ck_assert(got == -12345);
}
END_TEST

START_TEST(test_parse_null)
{
	double got;

	ck_assert_int_eq(quantity_parse(NULL, &got), -1);
	ck_assert_int_eq(quantity_parse("1", NULL), -1);
}
END_TEST

START_TEST(test_parse_long_mantissa)
{
	double got;

	ck_assert_int_eq(quantity_parse("-9223372036854775808m", &got), 0);
	ck_assert_double_eq_tol(got, -9223372036854775.808, 16);
	ck_assert_int_eq(quantity_parse("0.12345678901234567890123", &got), 0);
	ck_assert_double_eq_tol(got, 0.123456789012345678, 1e-16);
}
END_TEST

/* Whatever we print parses back to the rounded thousandths. */
START_TEST(test_round_trip)
{
	const value_case *c = &reference_table[_i];
	char buf[QUANTITY_FORMAT_MAX];
	double got, want;

	quantity_format(c->value, buf, sizeof(buf));
	ck_assert_int_eq(quantity_parse(buf, &got), 0);
	want = fabs(c->value * 1000) < 9.2e18 ? llround(c->value * 1000) / 1000.0 : 0;
	ck_assert_msg(got == want, "%s: got %.17g, want %.17g", buf, got, want);
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *quantity_suite(void)
{
	Suite *suite = suite_create("quantity");
	TCase *format = tcase_create("format");
	TCase *parse = tcase_create("parse");

	tcase_add_loop_test(format, test_format_reference_table, 0, COUNT(reference_table));
	tcase_add_test(format, test_format_not_finite);
	tcase_add_loop_test(format, test_format_milli, 0, COUNT(milli_table));
	tcase_add_test(format, test_format_small_buffer);
	suite_add_tcase(suite, format);

	tcase_add_loop_test(parse, test_parse, 0, COUNT(parse_table));
	tcase_add_loop_test(parse, test_parse_invalid, 0, COUNT(parse_invalid));
	tcase_add_test(parse, test_parse_null);
	tcase_add_test(parse, test_parse_long_mantissa);
	tcase_add_loop_test(parse, test_round_trip, 0, COUNT(reference_table));
	suite_add_tcase(suite, parse);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(quantity_suite());
	int failures;

	srunner_run_all(runner, CK_NORMAL);
	failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

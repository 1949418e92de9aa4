/* fuzz_quantity: the Kubernetes Quantity strings every metric value is
 * written as: quantity_format(), quantity_format_milli(), quantity_parse().
 *
 * Input: the first eight bytes are read both as a double (a Prometheus
 * sample value) and as an int64 count of thousandths; the whole input up to
 * its first NUL is also parsed as text.  Checked: formatting is canonical
 * and parses back within half a thousandth (exactly, for thousandths that
 * a double holds), and the parser accepts exactly the DecimalSI grammar
 * with values that agree with strtod(). */
#include "fuzz_common.h"

#include <float.h>
#include <math.h>

#include "quantity.h"

/* 2^63 and 2^53, as in quantity.c. */
#define FUZZ_INT64_LIMIT 9223372036854775808.0
#define FUZZ_EXACT_LIMIT 9007199254740992.0

/* Formats into a heap buffer of exactly QUANTITY_FORMAT_MAX bytes, so that
 * AddressSanitizer catches a byte written past it. */
static void check_format_value(double value)
{
	char *text = malloc(QUANTITY_FORMAT_MAX);
	double parsed = 0;

	if (!text)
		abort();
	quantity_format(value, text, QUANTITY_FORMAT_MAX);
	FUZZ_CHECK(fuzz_canonical_quantity(text), "quantity_format(%.17g) = \"%s\"", value, text);
	FUZZ_CHECK(quantity_parse(text, &parsed) == 0, "\"%s\" does not parse", text);
	if (isfinite(value) && fabs(value * 1000.0) < FUZZ_INT64_LIMIT) {
		/* Rounding to thousandths, plus the float error of value * 1000
		 * and of the parse, each within a few ulp of |value|. */
		double tolerance = 0.0005 + fabs(value) * 8 * DBL_EPSILON;
		FUZZ_CHECK(fabs(parsed - value) <= tolerance, "%.17g -> \"%s\" -> %.17g", value,
		           text, parsed);
	} else {
		FUZZ_CHECK(strcmp(text, "0") == 0, "%.17g formats as \"%s\", not \"0\"", value,
		           text);
	}
	free(text);
}

static void check_format_milli(int64_t milli)
{
	char *text = malloc(QUANTITY_FORMAT_MAX);
	double parsed = 0;
	double expected = (double)milli / 1000.0;

	if (!text)
		abort();
	quantity_format_milli(milli, text, QUANTITY_FORMAT_MAX);
	FUZZ_CHECK(fuzz_canonical_quantity(text), "quantity_format_milli(%lld) = \"%s\"",
	           (long long)milli, text);
	FUZZ_CHECK((milli == 0) == (strcmp(text, "0") == 0), "%lld -> \"%s\"", (long long)milli,
	           text);
	FUZZ_CHECK((milli < 0) == (text[0] == '-'), "%lld -> \"%s\"", (long long)milli, text);
	FUZZ_CHECK(quantity_parse(text, &parsed) == 0, "\"%s\" does not parse", text);
	if (fabs((double)milli) <= FUZZ_EXACT_LIMIT)
		/* Both sides are the correctly rounded value of milli / 1000. */
		FUZZ_CHECK(parsed == expected, "%lld -> \"%s\" -> %.17g, expected %.17g",
		           (long long)milli, text, parsed, expected);
	else
		FUZZ_CHECK(fabs(parsed - expected) <= fabs(expected) * 8 * DBL_EPSILON,
		           "%lld -> \"%s\" -> %.17g", (long long)milli, text, parsed);

	/* A short buffer gets a clean prefix. */
	char cut[4];
	quantity_format_milli(milli, cut, sizeof cut);
	FUZZ_CHECK(strncmp(cut, text, sizeof cut - 1) == 0 && strlen(cut) < sizeof cut,
	           "\"%s\" cut to \"%s\"", text, cut);
	free(text);
}

/* The DecimalSI grammar quantity.h promises, written independently:
 * [+-]? (digits [. digits?] | . digits) [m k M G T P E]?  On a match,
 * *exponent is the suffix's power of ten and *number_len the length of
 * the part before it. */
static bool reference_grammar(const char *text, int *exponent, size_t *number_len)
{
	static const char suffixes[] = "mkMGTPE";
	static const int exponents[] = {-3, 3, 6, 9, 12, 15, 18};
	const char *p = text;
	size_t digits = 0;

	if (*p == '+' || *p == '-')
		p++;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
	if (digits == 0)
		return false;
	*number_len = (size_t)(p - text);
	*exponent = 0;
	if (*p == '\0')
		return true;
	const char *s = strchr(suffixes, *p);
	if (s == NULL || p[1] != '\0')
		return false;
	*exponent = exponents[s - suffixes];
	return true;
}

static void check_parse(const char *text)
{
	double value = 0;
	int exponent = 0;
	size_t number_len = 0;
	bool accepted = quantity_parse(text, &value) == 0;
	bool grammatical = reference_grammar(text, &exponent, &number_len);

	FUZZ_CHECK(accepted == grammatical, "quantity_parse(\"%s\") %s", text,
	           accepted ? "accepted it" : "refused it");
	if (!accepted)
		return;
	FUZZ_CHECK(!isnan(value), "\"%s\" parsed as NaN", text);

	/* strtod reads the number part the same way in the C locale. */
	char *number = strndup(text, number_len);
	if (!number)
		abort();
	double reference = strtod(number, NULL) * pow(10.0, exponent);
	free(number);
	if (isfinite(reference) && isfinite(value)) {
		double scale = fmax(fabs(reference), fabs(value));
		FUZZ_CHECK(fabs(value - reference) <= scale * 1e-14 || scale < 1e-290,
		           "\"%s\" parsed as %.17g, strtod says %.17g", text, value, reference);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	char *fields[1];

	if (size > 512)
		return 0;
	if (size >= 8) {
		double value;
		int64_t milli;
		memcpy(&value, data, sizeof value);
		memcpy(&milli, data, sizeof milli);
		check_format_value(value);
		check_format_milli(milli);
	}
	fuzz_split_fields(data, size, &copy, fields, 1);
	check_parse(fields[0]);
	free(copy);
	return 0;
}

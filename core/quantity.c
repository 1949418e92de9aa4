/* quantity: the canonical DecimalSI strings of Kubernetes resource.Quantity
 * (reference §3.4), which TrafficMetrics values are serialised as. */
#include "quantity.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Decimal exponents of the DecimalSI suffixes, from milli to exa. */
typedef struct quantity_suffix {
	char symbol; /* '\0' for the bare number */
	int exponent;
} quantity_suffix;

static const quantity_suffix quantity_suffixes[] = {
    {'m', -3}, {'\0', 0}, {'k', 3}, {'M', 6}, {'G', 9}, {'T', 12}, {'P', 15}, {'E', 18},
};

#define QUANTITY_SUFFIX_COUNT (sizeof(quantity_suffixes) / sizeof(quantity_suffixes[0]))

/* 2^63: doubles at or beyond it (in magnitude) have no int64 count. */
#define QUANTITY_INT64_LIMIT 9223372036854775808.0

/* Mantissas at most this large convert to double exactly (2^53). */
#define QUANTITY_EXACT_MANTISSA (UINT64_C(1) << 53)

/* Powers of ten that are exact doubles, for correctly rounded scaling. */
static const double quantity_exact_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define QUANTITY_EXACT_POW10_MAX 22

static char quantity_symbol_for(int exponent)
{
	for (size_t i = 0; i < QUANTITY_SUFFIX_COUNT; i++)
		if (quantity_suffixes[i].exponent == exponent)
			return quantity_suffixes[i].symbol;
	return '\0'; /* unreachable: an int64 of thousandths stays below 1e16 */
}

void quantity_format_milli(int64_t milli, char *buf, size_t buf_size)
{
	bool negative = milli < 0;
	/* Work on the magnitude so that INT64_MIN needs no special case; as in
	 * apimachinery, 2^63 has no factor 10 and prints unchanged. */
	uint64_t mantissa = negative ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
	int exponent = -3; /* mantissa * 10^exponent is the value */
	char symbol;

	if (buf == NULL || buf_size == 0)
		return;
	if (mantissa == 0) {
		snprintf(buf, buf_size, "0");
		return;
	}
	while (mantissa >= 10 && mantissa % 10 == 0) {
		mantissa /= 10;
		exponent++;
	}
	/* Back down to a multiple of 3 (C's % truncates like Go's).  The
	 * mantissa only regains zeros just stripped, so it cannot overflow. */
	switch (exponent % 3) {
	case 1:
	case -2:
		mantissa *= 10;
		exponent -= 1;
		break;
	case 2:
	case -1:
		mantissa *= 100;
		exponent -= 2;
		break;
	default: break;
	}
	symbol = quantity_symbol_for(exponent);
	if (symbol == '\0')
		snprintf(buf, buf_size, "%s%llu", negative ? "-" : "",
		         (unsigned long long)mantissa);
	else
		snprintf(buf, buf_size, "%s%llu%c", negative ? "-" : "",
		         (unsigned long long)mantissa, symbol);
}

void quantity_format(double value, char *buf, size_t buf_size)
{
	double thousandths = value * 1000.0;

	/* NaN fails both comparisons, infinities the first; a count at or
	 * beyond 2^63 would make llround undefined. */
	if (!(fabs(thousandths) < QUANTITY_INT64_LIMIT)) {
		quantity_format_milli(0, buf, buf_size);
		return;
	}
	/* Round half away from zero: 28.58 * 1000 is 28579.999999999996. */
	quantity_format_milli((int64_t)llround(thousandths), buf, buf_size);
}

/* mantissa * 10^exponent10, correctly rounded whenever the mantissa and
 * the power of ten are both exact doubles (the common case), else close. */
static double quantity_scale(uint64_t mantissa, int exponent10)
{
	double m = (double)mantissa;

	if (mantissa <= QUANTITY_EXACT_MANTISSA) {
		if (exponent10 >= 0 && exponent10 <= QUANTITY_EXACT_POW10_MAX)
			return m * quantity_exact_pow10[exponent10];
		if (exponent10 < 0 && -exponent10 <= QUANTITY_EXACT_POW10_MAX)
			return m / quantity_exact_pow10[-exponent10];
	}
	return m * pow(10.0, exponent10);
}

/* Parses by hand rather than strtod(): the decimal point must not depend on
 * the locale, and the suffix grammar is ours. */
int quantity_parse(const char *text, double *value_out)
{
	const char *p = text;
	uint64_t mantissa = 0;
	int exponent10 = 0; /* value = sign * mantissa * 10^exponent10 */
	bool negative = false, any_digit = false;

	if (text == NULL || value_out == NULL)
		return -1;
	if (*p == '-' || *p == '+') {
		negative = *p == '-';
		p++;
	}
	for (bool after_point = false;; p++) {
		if (*p == '.' && !after_point) {
			after_point = true;
			continue;
		}
		if (*p < '0' || *p > '9')
			break;
		any_digit = true;
		/* Keep 18 significant digits; the rest only moves the
		 * exponent (integer part) or is dropped (fraction). */
		if (mantissa < UINT64_C(100000000000000000)) {
			mantissa = mantissa * 10 + (uint64_t)(*p - '0');
			if (after_point)
				exponent10--;
		} else if (!after_point) {
			exponent10++;
		}
	}
	if (!any_digit)
		return -1;
	if (*p != '\0') {
		bool suffix_found = false;

		for (size_t i = 0; i < QUANTITY_SUFFIX_COUNT; i++) {
			if (quantity_suffixes[i].symbol == *p) {
				exponent10 += quantity_suffixes[i].exponent;
				suffix_found = true;
				break;
			}
		}
		if (!suffix_found || p[1] != '\0')
			return -1;
	}
	*value_out = quantity_scale(mantissa, exponent10);
	if (negative)
		*value_out = -*value_out;
	return 0;
}

/* duration: Go time.ParseDuration and Duration.String() for the window
 * parameter `t`, so that "?t=1m30s" means what it meant to the Go original. */
#include "duration.h"

#include <stdio.h>
#include <string.h>

/* All arithmetic is on the magnitude in uint64 nanoseconds, as in Go: the
 * magnitude may reach 2^63 (only for a negative result), which int64 cannot
 * hold. */
#define DURATION_MAGNITUDE_LIMIT ((uint64_t)1 << 63)

#define NS_PER_US  UINT64_C(1000)
#define NS_PER_MS  UINT64_C(1000000)
#define NS_PER_S   UINT64_C(1000000000)
#define NS_PER_MIN (60 * NS_PER_S)
#define NS_PER_H   (60 * NS_PER_MIN)

/* Input bytes echoed into an error message at most; longer input is cut
 * with "..." so that the message stays one readable line. */
#define DURATION_QUOTE_MAX_INPUT 64

typedef struct duration_unit {
	const char *name; /* UTF-8 */
	uint64_t nanoseconds;
} duration_unit;

static const duration_unit duration_units[] = {
    {"ns", 1},
    {"us", NS_PER_US},
    {"\xc2\xb5s", NS_PER_US}, /* U+00B5 MICRO SIGN */
    {"\xce\xbcs", NS_PER_US}, /* U+03BC GREEK SMALL LETTER MU */
    {"ms", NS_PER_MS},
    {"s", NS_PER_S},
    {"m", NS_PER_MIN},
    {"h", NS_PER_H},
};

/* A tiny bounded string builder for error messages: never overruns, always
 * NUL-terminates when size > 0, silently truncates. */
typedef struct duration_msg {
	char *buf;
	size_t size;
	size_t len;
} duration_msg;

static void duration_msg_putc(duration_msg *msg, char c)
{
	if (msg->len + 1 < msg->size) {
		msg->buf[msg->len++] = c;
		msg->buf[msg->len] = '\0';
	}
}

static void duration_msg_puts(duration_msg *msg, const char *text, size_t n)
{
	for (size_t i = 0; i < n; i++)
		duration_msg_putc(msg, text[i]);
}

/* Length of the valid UTF-8 sequence starting at text (at most `avail`
 * bytes), or 0 if it is not one.  Rejects overlongs and surrogates so that
 * an echoed input never makes the message invalid UTF-8 (it may end up in
 * a JSON Status body). */
static size_t duration_utf8_len(const unsigned char *text, size_t avail)
{
	unsigned char lead = text[0];
	unsigned char lo = 0x80, hi = 0xBF; /* range of the 2nd byte */
	size_t len;

	if (lead >= 0xC2 && lead <= 0xDF) {
		len = 2;
	} else if (lead >= 0xE0 && lead <= 0xEF) {
		len = 3;
		if (lead == 0xE0)
			lo = 0xA0;
		else if (lead == 0xED)
			hi = 0x9F;
	} else if (lead >= 0xF0 && lead <= 0xF4) {
		len = 4;
		if (lead == 0xF0)
			lo = 0x90;
		else if (lead == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < len || text[1] < lo || text[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (text[i] < 0x80 || text[i] > 0xBF)
			return 0;
	return len;
}

/* Appends `n` bytes of text in double quotes, Go %q style: \" and \\
 * escaped, control bytes and invalid UTF-8 as \xNN. */
static void duration_msg_quote(duration_msg *msg, const char *text, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *bytes = (const unsigned char *)text;
	size_t limit = n;
	size_t i = 0;

	if (limit > DURATION_QUOTE_MAX_INPUT)
		limit = DURATION_QUOTE_MAX_INPUT;

	duration_msg_putc(msg, '"');
	while (i < limit) {
		unsigned char c = bytes[i];
		size_t seq;

		if (c == '"' || c == '\\') {
			duration_msg_putc(msg, '\\');
			duration_msg_putc(msg, (char)c);
			i++;
		} else if (c >= 0x20 && c < 0x7F) {
			duration_msg_putc(msg, (char)c);
			i++;
		} else if (c >= 0x80 && (seq = duration_utf8_len(bytes + i, n - i)) > 0) {
			duration_msg_puts(msg, text + i, seq);
			i += seq;
		} else {
			duration_msg_puts(msg, "\\x", 2);
			duration_msg_putc(msg, hex[c >> 4]);
			duration_msg_putc(msg, hex[c & 0xF]);
			i++;
		}
	}
	if (i < n)
		duration_msg_puts(msg, "...", 3);
	duration_msg_putc(msg, '"');
}

/* Starts `invalid duration "<input>": ` in err; false if there is no room
 * for a message at all. */
static bool duration_error_begin(duration_msg *msg, const char *input)
{
	if (msg->buf == NULL || msg->size == 0)
		return false;
	msg->buf[0] = '\0';
	duration_msg_puts(msg, "invalid duration ", 17);
	duration_msg_quote(msg, input, strlen(input));
	duration_msg_puts(msg, ": ", 2);
	return true;
}

/* Writes `invalid duration "<input>": <reason>` into err. */
static void duration_error(char *err, size_t err_size, const char *input, const char *reason)
{
	duration_msg msg = {err, err_size, 0};

	if (duration_error_begin(&msg, input))
		duration_msg_puts(&msg, reason, strlen(reason));
}

/* Same, with the offending part of the input quoted inside the reason:
 * <before>"<part>"<after>. */
static void duration_error_at(char *err, size_t err_size, const char *input, const char *before,
                              const char *part, size_t part_len, const char *after)
{
	duration_msg msg = {err, err_size, 0};

	if (!duration_error_begin(&msg, input))
		return;
	duration_msg_puts(&msg, before, strlen(before));
	duration_msg_quote(&msg, part, part_len);
	duration_msg_puts(&msg, after, strlen(after));
}

static bool duration_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Consumes [0-9]* at *cursor into *value.  Fails once the value would
 * exceed 2^63, the largest magnitude a duration can have (Go's leadingInt).
 */
static bool duration_leading_int(const char **cursor, uint64_t *value)
{
	const char *p = *cursor;
	uint64_t x = 0;

	for (; duration_is_digit(*p); p++) {
		if (x > DURATION_MAGNITUDE_LIMIT / 10)
			return false;
		x = x * 10 + (uint64_t)(*p - '0');
		if (x > DURATION_MAGNITUDE_LIMIT)
			return false;
	}
	*cursor = p;
	*value = x;
	return true;
}

/*
 * Consumes the [0-9]* after a decimal point: *digits / *scale is the
 * fraction.  Digits past int64 precision are consumed but ignored (Go's
 * leadingFraction), so "0.100000000000000000000h" is fine.
 */
static void duration_leading_fraction(const char **cursor, uint64_t *digits, double *scale)
{
	const char *p = *cursor;
	uint64_t x = 0;
	double s = 1;
	bool saturated = false;

	for (; duration_is_digit(*p); p++) {
		uint64_t next;

		if (saturated)
			continue;
		if (x > (DURATION_MAGNITUDE_LIMIT - 1) / 10) {
			saturated = true;
			continue;
		}
		next = x * 10 + (uint64_t)(*p - '0');
		if (next > DURATION_MAGNITUDE_LIMIT) {
			saturated = true;
			continue;
		}
		x = next;
		s *= 10;
	}
	*cursor = p;
	*digits = x;
	*scale = s;
}

static const duration_unit *duration_unit_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
		const duration_unit *unit = &duration_units[i];

		if (strlen(unit->name) == len && memcmp(unit->name, name, len) == 0)
			return unit;
	}
	return NULL;
}

static const char duration_overflow[] =
    "out of range (a duration must fit in int64 nanoseconds, about "
    "\xc2\xb1"
    "2562047h)";

/*
 * Parses one <number><unit> term at *cursor (within `text`, for messages)
 * into *term_ns, a magnitude of at most 2^63, and advances the cursor.
 */
static bool duration_parse_term(const char *text, const char **cursor, uint64_t *term_ns, char *err,
                                size_t err_size)
{
	const char *p = *cursor, *unit_start;
	const duration_unit *unit;
	uint64_t whole = 0, fraction = 0, value;
	double scale = 1;
	bool has_digits;

	if (!(*p == '.' || duration_is_digit(*p))) {
		duration_error_at(err, err_size, text, "expected a number at ", p, strlen(p), "");
		return false;
	}
	if (!duration_leading_int(&p, &whole)) {
		duration_error(err, err_size, text, duration_overflow);
		return false;
	}
	has_digits = p != *cursor;
	if (*p == '.') {
		const char *fraction_start = ++p;

		duration_leading_fraction(&p, &fraction, &scale);
		has_digits = has_digits || p != fraction_start;
	}
	if (!has_digits) {
		duration_error(err, err_size, text, "expected digits around the decimal point");
		return false;
	}

	/* The unit is everything up to the next number. */
	unit_start = p;
	while (*p != '\0' && *p != '.' && !duration_is_digit(*p))
		p++;
	if (p == unit_start) {
		duration_error(err, err_size, text, "missing unit in duration");
		return false;
	}
	unit = duration_unit_lookup(unit_start, (size_t)(p - unit_start));
	if (unit == NULL) {
		duration_error_at(err, err_size, text, "unknown unit ", unit_start,
		                  (size_t)(p - unit_start),
		                  " in duration (valid: ns, us, \xc2\xb5s, ms, "
		                  "s, m, h)");
		return false;
	}

	if (whole > DURATION_MAGNITUDE_LIMIT / unit->nanoseconds) {
		duration_error(err, err_size, text, duration_overflow);
		return false;
	}
	value = whole * unit->nanoseconds;
	/* Go does this step in float64 and truncates; doing the same keeps
	 * "0.3333333333333333333h" at exactly 20m.  fraction < scale, so the
	 * product is below one unit (<= 3.6e12 ns) and the cast is defined. */
	value += (uint64_t)((double)fraction * ((double)unit->nanoseconds / scale));
	if (value > DURATION_MAGNITUDE_LIMIT) {
		duration_error(err, err_size, text, duration_overflow);
		return false;
	}
	*cursor = p;
	*term_ns = value;
	return true;
}

bool duration_parse(const char *text, int64_t *nanoseconds_out, char *err, size_t err_size)
{
	const char *p = text;
	uint64_t total = 0; /* magnitude, nanoseconds, <= 2^63 */
	bool negative = false;

	if (err != NULL && err_size > 0)
		err[0] = '\0';
	/* Nothing to quote: said directly (NULL is a caller bug, "" is `?t=`). */
	if (text == NULL || *text == '\0') {
		if (err != NULL && err_size > 0)
			snprintf(err, err_size, "invalid duration \"\": %s",
			         text == NULL ? "no duration given" : "empty duration");
		return false;
	}
	if (*p == '-' || *p == '+') {
		negative = *p == '-';
		p++;
	}
	/* Go's one exception to "every number needs a unit". */
	if (strcmp(p, "0") == 0) {
		if (nanoseconds_out != NULL)
			*nanoseconds_out = 0;
		return true;
	}
	if (*p == '\0') {
		duration_error(err, err_size, text, "expected a number after the sign");
		return false;
	}
	while (*p != '\0') {
		uint64_t term_ns;

		if (!duration_parse_term(text, &p, &term_ns, err, err_size))
			return false;
		/* Go adds unchecked and wraps to 0 at exactly 2^64 (two
		 * 2^63 terms); we refuse. */
		if (term_ns > DURATION_MAGNITUDE_LIMIT - total) {
			duration_error(err, err_size, text, duration_overflow);
			return false;
		}
		total += term_ns;
	}
	/* +2^63 does not fit; -2^63 is INT64_MIN. */
	if (!negative && total == DURATION_MAGNITUDE_LIMIT) {
		duration_error(err, err_size, text, duration_overflow);
		return false;
	}
	if (nanoseconds_out != NULL) {
		if (total == DURATION_MAGNITUDE_LIMIT)
			*nanoseconds_out = INT64_MIN;
		else
			*nanoseconds_out = negative ? -(int64_t)total : (int64_t)total;
	}
	return true;
}

/*
 * Writes the fraction value % 10^precision right-aligned before *end,
 * without trailing zeros and without the point when it is zero; returns
 * value / 10^precision.
 */
static uint64_t duration_put_fraction(char **end, uint64_t value, int precision)
{
	bool printing = false;

	for (int i = 0; i < precision; i++) {
		unsigned digit = (unsigned)(value % 10);

		printing = printing || digit != 0;
		if (printing)
			*--*end = (char)('0' + digit);
		value /= 10;
	}
	if (printing)
		*--*end = '.';
	return value;
}

static void duration_put_int(char **end, uint64_t value)
{
	do {
		*--*end = (char)('0' + value % 10);
		value /= 10;
	} while (value > 0);
}

/* Copies text into buf, cut short (still NUL-terminated) if buf_size is
 * below DURATION_FORMAT_MAX. */
static void duration_copy_out(const char *text, char *buf, size_t buf_size)
{
	size_t len = strlen(text);

	if (len >= buf_size)
		len = buf_size - 1;
	memcpy(buf, text, len);
	buf[len] = '\0';
}

void duration_format(int64_t nanoseconds, char *buf, size_t buf_size)
{
	/* Built right to left; the longest output is
	 * "-2562047h47m16.854775808s" (25 bytes). */
	char scratch[DURATION_FORMAT_MAX];
	char *end = scratch + sizeof(scratch) - 1;
	char *start;
	bool negative = nanoseconds < 0;
	uint64_t magnitude = negative ? (uint64_t)0 - (uint64_t)nanoseconds : (uint64_t)nanoseconds;

	if (buf == NULL || buf_size == 0)
		return;
	*end = '\0';
	start = end;

	if (magnitude < NS_PER_S) {
		int precision;

		/* Below a second Go switches to the largest sub-second unit
		 * that keeps the integer part non-zero: 1.5ms, 2µs, 7ns. */
		*--start = 's';
		if (magnitude == 0) {
			*--start = '0';
			goto out;
		} else if (magnitude < NS_PER_US) {
			precision = 0;
			*--start = 'n';
		} else if (magnitude < NS_PER_MS) {
			precision = 3;
			*--start = '\xb5'; /* U+00B5 in UTF-8, as Go prints */
			*--start = '\xc2';
		} else {
			precision = 6;
			*--start = 'm';
		}
		magnitude = duration_put_fraction(&start, magnitude, precision);
		duration_put_int(&start, magnitude);
	} else {
		/* h, m, s: Go stops at hours (days vary in length) and always
		 * prints the smaller fields once a larger one is present:
		 * 1h0m0s. */
		uint64_t seconds, minutes;

		*--start = 's';
		seconds = duration_put_fraction(&start, magnitude, 9);
		duration_put_int(&start, seconds % 60);
		minutes = seconds / 60;
		if (minutes > 0) {
			*--start = 'm';
			duration_put_int(&start, minutes % 60);
			if (minutes / 60 > 0) {
				*--start = 'h';
				duration_put_int(&start, minutes / 60);
			}
		}
	}
	if (negative)
		*--start = '-';
out:
	duration_copy_out(start, buf, buf_size);
}

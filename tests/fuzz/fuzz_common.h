/* fuzz_common: what the libFuzzer harnesses share: the entry point's
 * prototype, an abort-with-reason check, splitting one input into
 * NUL-separated fields, and the text invariants several harnesses assert. */
#ifndef SMI_FUZZ_COMMON_H
#define SMI_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash to libFuzzer: say which one, then abort()
 * so that the input is saved as an artifact. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "\n%s:%d: invariant failed: %s\n  ", __FILE__, __LINE__,   \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * Copies the input into one NUL-terminated heap block (*copy_out, caller
 * frees) and points fields[] at its NUL-separated parts.  NUL is the one
 * byte a C string cannot carry, so every other byte reaches the code under
 * test.  The last field ends at the next NUL or the end of the input; parts
 * beyond max_fields are ignored.  Returns the number of fields (>= 1).
 */
static inline size_t fuzz_split_fields(const uint8_t *data, size_t size, char **copy_out,
                                       char **fields, size_t max_fields)
{
	char *copy = malloc(size + 1);
	size_t n = 0;

	if (copy == NULL)
		abort();
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	*copy_out = copy;
	fields[n++] = copy;
	for (size_t i = 0; i < size && n < max_fields; i++)
		if (copy[i] == '\0')
			fields[n++] = copy + i + 1;
	return n;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past
 * U+10FFFF.  jansson refuses anything else, so a message that is not valid
 * UTF-8 vanishes from the JSON it was meant for. */
static inline bool fuzz_valid_utf8(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p != '\0') {
		unsigned char lead = *p;
		unsigned char lo = 0x80, hi = 0xBF;
		size_t len;

		if (lead < 0x80) {
			p++;
			continue;
		}
		if (lead >= 0xC2 && lead <= 0xDF) {
			len = 2;
		} else if (lead >= 0xE0 && lead <= 0xEF) {
			len = 3;
			lo = lead == 0xE0 ? 0xA0 : 0x80;
			hi = lead == 0xED ? 0x9F : 0xBF;
		} else if (lead >= 0xF0 && lead <= 0xF4) {
			len = 4;
			lo = lead == 0xF0 ? 0x90 : 0x80;
			hi = lead == 0xF4 ? 0x8F : 0xBF;
		} else {
			return false;
		}
		if (p[1] < lo || p[1] > hi)
			return false;
		for (size_t i = 2; i < len; i++)
			if (p[i] < 0x80 || p[i] > 0xBF)
				return false;
		p += len;
	}
	return true;
}

/* No byte below 0x20 and no DEL: the text is one printable line. */
static inline bool fuzz_one_line(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/*
 * Canonical DecimalSI as quantity_format_milli() writes it: "0", or an
 * optional '-', a mantissa without leading zeros, and an optional suffix
 * (m k M G T P E).  Canonical means the exponent is as large as it can be:
 * the mantissa is not a multiple of 1000 unless the suffix is already E.
 */
static inline bool fuzz_canonical_quantity(const char *text)
{
	const char *p = text;
	const char *digits;
	size_t n_digits;
	char suffix;

	if (strcmp(text, "0") == 0)
		return true;
	if (*p == '-')
		p++;
	digits = p;
	while (*p >= '0' && *p <= '9')
		p++;
	n_digits = (size_t)(p - digits);
	if (n_digits == 0 || digits[0] == '0')
		return false;
	suffix = *p;
	if (suffix != '\0') {
		if (strchr("mkMGTPE", suffix) == NULL || p[1] != '\0')
			return false;
	}
	if (suffix != 'E' && n_digits >= 3 && memcmp(p - 3, "000", 3) == 0)
		return false;
	return true;
}

#endif

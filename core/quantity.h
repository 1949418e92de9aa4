/* quantity: Kubernetes resource.Quantity strings (DecimalSI canonical form)
 * for the values of TrafficMetrics. */
#ifndef SMI_QUANTITY_H
#define SMI_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#define QUANTITY_FORMAT_MAX 32

/* Canonical DecimalSI form of a count of thousandths: 0 -> "0",
 * 1500 -> "1500m", 1000 -> "1", 1000000 -> "1k", 28580 -> "28580m". */
void quantity_format_milli(int64_t milli, char *buf, size_t buf_size);

/*
 * Formats a Prometheus value.  The value is rounded to the nearest
 * thousandth (the original truncated; rounding keeps 28.58 at 28580m
 * whatever the float noise).  NaN, infinities and values whose
 * thousandths do not fit in int64 format as "0": callers must decide
 * before that a value is missing (see the README on "no traffic").
 */
void quantity_format(double value, char *buf, size_t buf_size);

/* Parses a DecimalSI quantity back into a double (tests and tools).
 * Returns 0 on success, -1 on syntax error. */
int quantity_parse(const char *text, double *value_out);

#endif

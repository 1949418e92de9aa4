/* duration: the window query parameter `t`, in Go time.ParseDuration syntax,
 * parsed into whole nanoseconds and formatted back the way Go prints it. */
#ifndef SMI_DURATION_H
#define SMI_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a Go duration ("30s", "1m15s", "1.5m", "500ms", "2h", "-5m",
 * "1µs").  Units: ns us µs ms s m h; a unit is required after every number
 * except for the lone string "0".  Returns false on any syntax error or
 * overflow of int64 nanoseconds, with a one-line reason in err.
 */
bool duration_parse(const char *text, int64_t *nanoseconds_out, char *err, size_t err_size);

/* Formats like Go's Duration.String(): 30s, 1m30s, 1h0m0s, 1.5s, 500ms, 0s.
 * buf must hold at least DURATION_FORMAT_MAX bytes. */
#define DURATION_FORMAT_MAX 32
void duration_format(int64_t nanoseconds, char *buf, size_t buf_size);

#endif

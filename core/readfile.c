/* readfile: one bounded whole-file read. */
#include "readfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *readfile_all(const char *path, size_t max_bytes, size_t *len_out, char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = max_bytes < 65536 ? max_bytes : 65536, len = 0;
	char *buf = malloc(cap + 1);
	int too_big = 0;
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		if (len < cap)
			continue;
		if (cap >= max_bytes) {
			/* One more byte tells "exactly max" from "over". */
			too_big = fgetc(f) != EOF;
			break;
		}
		size_t grown_cap = cap * 2 < max_bytes ? cap * 2 : max_bytes;
		char *grown = realloc(buf, grown_cap + 1);
		if (!grown) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = grown;
		cap = grown_cap;
	}
	int read_error = ferror(f);
	fclose(f);
	if (!buf || too_big || read_error) {
		snprintf(err, err_size, "%s: %s", path,
		         !buf      ? "out of memory"
		         : too_big ? "file too large"
		                   : "cannot read");
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

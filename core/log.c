/* log: one-line log records on stderr with an RFC 3339 timestamp and level.
 * The level is process-wide configuration set once at start-up. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static _Atomic int current_level = LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_from_name(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(log_level level)
{
	atomic_store(&current_level, (int)level);
}

log_level log_get_level(void)
{
	return (log_level)atomic_load(&current_level);
}

void log_msg(log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load(&current_level))
		return;
	char line[2048];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, now.tv_nsec / 1000000L, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof line)
		vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per record keeps concurrent lines whole. */
	size_t len = strlen(line);
	if (len + 1 < sizeof line) {
		line[len] = '\n';
		line[len + 1] = '\0';
	}
	fputs(line, stderr);
}

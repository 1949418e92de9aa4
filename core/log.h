/* log: one-line structured log records on stderr, level-filtered. */
#ifndef SMI_LOG_H
#define SMI_LOG_H

typedef enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

/* Parses "error", "warn", "info", "debug"; returns -1 otherwise. */
int log_level_from_name(const char *name);
void log_set_level(log_level level);
log_level log_get_level(void);
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

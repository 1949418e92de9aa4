/* secretfile: a credential kept in a file (a bearer token, a password) that
 * is re-read when the file changes, so that a rotated Kubernetes Secret takes
 * effect without a restart.  Values never appear in messages; errors name
 * the file. */
#ifndef SMI_SECRETFILE_H
#define SMI_SECRETFILE_H

#include <stddef.h>

typedef struct secret_file secret_file; /* thread-safe */

/* Largest accepted file, in bytes: a token is a few kilobytes at most. */
#define SECRET_FILE_MAX_BYTES 65536

/*
 * Reads path once: it must exist and hold a usable value now.  `what`
 * ("bearer token file") starts every message, followed by the path.  On
 * failure returns NULL with "WHAT PATH: problem" in err.
 */
secret_file *secret_file_open(const char *what, const char *path, char *err, size_t err_size);
void secret_file_close(secret_file *secret);

/*
 * The current value: leading and trailing whitespace (the usual trailing
 * newline) removed, never empty, no control characters.  The file is looked
 * at (one stat) on every call and read again when its inode, size, mtime or
 * ctime changed, or when it changed so recently that a same-size rewrite
 * within one timestamp tick could go unnoticed.  A file that has become
 * unreadable, empty or invalid is an error (the old value is not used).
 * Returns a copy (owned, release with secret_file_release()) or NULL with
 * "WHAT PATH: problem" in err.
 */
char *secret_file_get(secret_file *secret, char *err, size_t err_size);

/* The path given to secret_file_open(), for messages. */
const char *secret_file_path(const secret_file *secret);

/* Wipes and frees a value from secret_file_get(); NULL is fine. */
void secret_file_release(char *value);

#endif

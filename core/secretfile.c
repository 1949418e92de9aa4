/* secretfile: credentials read from files and re-read when the files change
 * (contract in secretfile.h).  Kubernetes rotates a mounted Secret by
 * swapping a symlink, which changes the inode that stat() follows; an
 * in-place rewrite changes size, mtime or ctime. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* nanoseconds; a file modified less than this long before it was read may
 * still change within the same timestamp tick, so it is read again */
#define SECRET_RACY_NS (INT64_C(2) * 1000000000)

struct secret_file {
	char *what; /* "bearer token file" */
	char *path;
	pthread_mutex_t lock;
	char *value;        /* under lock: the last good value, NULL until read */
	struct stat seen;   /* under lock: fstat() of the file value came from */
	int64_t read_at_ns; /* under lock: CLOCK_REALTIME when it was read */
};

static void secret_error(const secret_file *secret, char *err, size_t err_size, const char *problem,
                         int error_number)
{
	if (!err || err_size == 0)
		return;
	if (error_number)
		snprintf(err, err_size, "%s %s: %s: %s", secret->what, secret->path, problem,
		         strerror(error_number));
	else
		snprintf(err, err_size, "%s %s: %s", secret->what, secret->path, problem);
}

static int64_t timespec_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       timespec_ns(&a->st_mtim) == timespec_ns(&b->st_mtim) &&
	       timespec_ns(&a->st_ctim) == timespec_ns(&b->st_ctim);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims data[0..len) in place to a NUL-terminated value; the problem or NULL. */
static const char *secret_trim_and_check(char *data, size_t len, char **value)
{
	size_t start = 0;

	while (len > 0 && is_blank(data[len - 1]))
		len--;
	while (start < len && is_blank(data[start]))
		start++;
	if (start == len)
		return "is empty";
	for (size_t i = start; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c < 0x20 || c == 0x7f)
			return "contains control characters";
	}
	data[len] = '\0';
	*value = data + start;
	return NULL;
}

/* Reads the file (at most SECRET_FILE_MAX_BYTES) into a new value and its
 * fstat(); under lock.  False with err filled. */
static bool secret_reload(secret_file *secret, char *err, size_t err_size)
{
	char *data = malloc(SECRET_FILE_MAX_BYTES + 2);
	size_t used = 0;
	struct stat state;
	struct timespec now;
	const char *problem;
	char *value = NULL;
	bool ok = false;
	int fd = -1;

	if (!data) {
		secret_error(secret, err, err_size, "out of memory", 0);
		goto out;
	}
	fd = open(secret->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &state) != 0) {
		secret_error(secret, err, err_size, "cannot open", errno);
		goto out;
	}
	if (!S_ISREG(state.st_mode)) {
		secret_error(secret, err, err_size, "is not a regular file", 0);
		goto out;
	}
	/* One byte more than allowed tells "at the limit" from "over". */
	while (used <= SECRET_FILE_MAX_BYTES) {
		ssize_t got = read(fd, data + used, SECRET_FILE_MAX_BYTES + 1 - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			secret_error(secret, err, err_size, "cannot read", errno);
			goto out;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	if (used > SECRET_FILE_MAX_BYTES) {
		secret_error(secret, err, err_size, "is larger than 64 KiB", 0);
		goto out;
	}
	problem = secret_trim_and_check(data, used, &value);
	if (problem) {
		secret_error(secret, err, err_size, problem, 0);
		goto out;
	}
	value = strdup(value);
	if (!value || clock_gettime(CLOCK_REALTIME, &now) != 0) {
		secret_error(secret, err, err_size, "out of memory", 0);
		goto out;
	}
	secret_file_release(secret->value);
	secret->value = value;
	value = NULL;
	secret->seen = state;
	secret->read_at_ns = timespec_ns(&now);
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	if (data) {
		explicit_bzero(data, SECRET_FILE_MAX_BYTES + 2);
		free(data);
	}
	secret_file_release(value);
	return ok;
}

/* Whether the value read last may no longer be the file's; under lock. */
static bool secret_is_stale(const secret_file *secret)
{
	struct stat state;

	if (!secret->value)
		return true;
	/* stat() follows the symlinks of a mounted Secret to the real file. */
	if (stat(secret->path, &state) != 0)
		return true; /* the reload names the error */
	if (!same_file_state(&state, &secret->seen))
		return true;
	return timespec_ns(&state.st_mtim) + SECRET_RACY_NS > secret->read_at_ns;
}

char *secret_file_get(secret_file *secret, char *err, size_t err_size)
{
	char *copy = NULL;

	if (!secret || pthread_mutex_lock(&secret->lock) != 0) {
		if (err && err_size)
			snprintf(err, err_size, "secret file unavailable");
		return NULL;
	}
	if (secret_is_stale(secret) && !secret_reload(secret, err, err_size))
		goto out;
	copy = strdup(secret->value);
	if (!copy)
		secret_error(secret, err, err_size, "out of memory", 0);
out:
	(void)pthread_mutex_unlock(&secret->lock);
	return copy;
}

secret_file *secret_file_open(const char *what, const char *path, char *err, size_t err_size)
{
	secret_file *secret = calloc(1, sizeof *secret);
	char *first;

	if (!secret || !(secret->what = strdup(what ? what : "secret file")) ||
	    !(secret->path = strdup(path ? path : "")) ||
	    pthread_mutex_init(&secret->lock, NULL) != 0) {
		if (secret) {
			free(secret->what);
			free(secret->path);
			free(secret);
		}
		if (err && err_size)
			snprintf(err, err_size, "out of memory");
		return NULL;
	}
	first = secret_file_get(secret, err, err_size);
	if (!first) {
		secret_file_close(secret);
		return NULL;
	}
	secret_file_release(first);
	return secret;
}

void secret_file_close(secret_file *secret)
{
	if (!secret)
		return;
	(void)pthread_mutex_destroy(&secret->lock);
	secret_file_release(secret->value);
	free(secret->what);
	free(secret->path);
	free(secret);
}

const char *secret_file_path(const secret_file *secret)
{
	return secret ? secret->path : "";
}

void secret_file_release(char *value)
{
	if (!value)
		return;
	explicit_bzero(value, strlen(value));
	free(value);
}

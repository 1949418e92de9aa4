/* test_secretfile: credential files read at open, trimmed and checked, and
 * read again after every kind of rotation: in-place rewrite (even of the
 * same size within one second), rename, and a Kubernetes-style symlink swap. */
#include "secretfile.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX];

static void write_bytes(const char *name, const char *data, size_t len, char *path_out)
{
	snprintf(path_out, PATH_MAX, "%s/%s", tmp_dir, name);
	FILE *file = fopen(path_out, "wb");
	ck_assert_ptr_nonnull(file);
	ck_assert_uint_eq(fwrite(data, 1, len, file), len);
	ck_assert_int_eq(fclose(file), 0);
}

static void write_text(const char *name, const char *text, char *path_out)
{
	write_bytes(name, text, strlen(text), path_out);
}

/* Opens path and expects the value `want`. */
static secret_file *open_expecting(const char *path, const char *want)
{
	char err[512] = "";
	secret_file *secret = secret_file_open("bearer token file", path, err, sizeof err);
	ck_assert_msg(secret != NULL, "%s", err);
	char *value = secret_file_get(secret, err, sizeof err);
	ck_assert_msg(value != NULL, "%s", err);
	ck_assert_str_eq(value, want);
	secret_file_release(value);
	return secret;
}

static void expect_value(secret_file *secret, const char *want)
{
	char err[512] = "";
	char *value = secret_file_get(secret, err, sizeof err);
	ck_assert_msg(value != NULL, "%s", err);
	ck_assert_str_eq(value, want);
	secret_file_release(value);
}

START_TEST(test_trims_whitespace)
{
	static const struct {
		const char *text;
		const char *value;
	} cases[] = {
	    {"token\n", "token"},
	    {"token", "token"},
	    {"token\r\n", "token"},
	    {"  token \t\n\n", "token"},
	    {"eyJhbGciOi.J9.x-_~+/=", "eyJhbGciOi.J9.x-_~+/="},
	    {"pass word", "pass word"},
	    {"p\xc3\xa4ss\n", "p\xc3\xa4ss"},
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_text("trim", cases[i].text, path);
		secret_file_close(open_expecting(path, cases[i].value));
	}
	ck_assert_str_eq(secret_file_path(NULL), "");
}
END_TEST

START_TEST(test_open_errors_name_the_file)
{
	static const struct {
		const char *text; /* NULL: no such file */
		size_t len;
		const char *problem;
	} cases[] = {
	    {NULL, 0, "cannot open: No such file or directory"},
	    {"", 0, "is empty"},
	    {" \n\r\n", 4, "is empty"},
	    {"tok\x01en", 6, "contains control characters"},
	    {"line1\nline2", 11, "contains control characters"},
	    {"to\0ken", 6, "contains control characters"},
	};
	char path[PATH_MAX], err[512], expected[PATH_MAX + 128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (cases[i].text)
			write_bytes("bad", cases[i].text, cases[i].len, path);
		else
			snprintf(path, sizeof path, "%s/missing", tmp_dir);
		ck_assert_ptr_null(
		    secret_file_open("basic auth password file", path, err, sizeof err));
		snprintf(expected, sizeof expected, "basic auth password file %s: %s", path,
		         cases[i].problem);
		ck_assert_str_eq(err, expected);
		ck_assert_msg(strstr(err, "tok") == NULL && strstr(err, "line") == NULL, "%s", err);
	}
	ck_assert_ptr_null(secret_file_open("bearer token file", tmp_dir, err, sizeof err));
	ck_assert_msg(strstr(err, ": is not a regular file"), "%s", err);
}
END_TEST

START_TEST(test_size_limit)
{
	char *big = malloc(SECRET_FILE_MAX_BYTES + 1);
	char path[PATH_MAX], err[512];

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', SECRET_FILE_MAX_BYTES + 1);
	write_bytes("big", big, SECRET_FILE_MAX_BYTES, path);
	secret_file *secret = secret_file_open("bearer token file", path, err, sizeof err);
	ck_assert_msg(secret != NULL, "%s", err);
	secret_file_close(secret);
	write_bytes("big", big, SECRET_FILE_MAX_BYTES + 1, path);
	ck_assert_ptr_null(secret_file_open("bearer token file", path, err, sizeof err));
	ck_assert_msg(strstr(err, "/big: is larger than 64 KiB"), "%s", err);
	free(big);
}
END_TEST

START_TEST(test_rotation_in_place_same_size)
{
	char path[PATH_MAX];

	write_text("inplace", "token-1\n", path);
	secret_file *secret = open_expecting(path, "token-1");
	/* Same size, same second: the timestamp may not move. */
	write_text("inplace", "token-2\n", path);
	expect_value(secret, "token-2");
	write_text("inplace", "a-much-longer-token-3\n", path);
	expect_value(secret, "a-much-longer-token-3");
	secret_file_close(secret);
}
END_TEST

START_TEST(test_rotation_by_rename)
{
	char path[PATH_MAX], staged[PATH_MAX];

	write_text("renamed", "old-token", path);
	secret_file *secret = open_expecting(path, "old-token");
	write_text("renamed.new", "new-token", staged);
	ck_assert_int_eq(rename(staged, path), 0);
	expect_value(secret, "new-token");
	secret_file_close(secret);
}
END_TEST

/* How the kubelet updates a Secret volume: token -> ..data/token, and
 * ..data is a symlink swapped to a new timestamped directory. */
START_TEST(test_rotation_by_symlink_swap)
{
	char dir1[PATH_MAX], dir2[PATH_MAX], file[PATH_MAX], data_link[PATH_MAX],
	    data_tmp[PATH_MAX], token[PATH_MAX];

	snprintf(dir1, sizeof dir1, "%s/..2024_01", tmp_dir);
	snprintf(dir2, sizeof dir2, "%s/..2024_02", tmp_dir);
	ck_assert_int_eq(mkdir(dir1, 0700), 0);
	ck_assert_int_eq(mkdir(dir2, 0700), 0);
	write_text("..2024_01/token", "january\n", file);
	write_text("..2024_02/token", "february\n", file);
	snprintf(data_link, sizeof data_link, "%s/..data", tmp_dir);
	snprintf(data_tmp, sizeof data_tmp, "%s/..data_tmp", tmp_dir);
	snprintf(token, sizeof token, "%s/k8s-token", tmp_dir);
	ck_assert_int_eq(symlink("..2024_01", data_link), 0);
	ck_assert_int_eq(symlink("..data/token", token), 0);

	secret_file *secret = open_expecting(token, "january");
	ck_assert_int_eq(symlink("..2024_02", data_tmp), 0);
	ck_assert_int_eq(rename(data_tmp, data_link), 0);
	expect_value(secret, "february");
	secret_file_close(secret);
}
END_TEST

/* A file that becomes unusable is an error, not the old value; once it is
 * fixed the new value is used. */
START_TEST(test_broken_then_fixed)
{
	char path[PATH_MAX], err[512];

	write_text("flaky", "good-token\n", path);
	secret_file *secret = open_expecting(path, "good-token");
	write_text("flaky", "\n", path);
	ck_assert_ptr_null(secret_file_get(secret, err, sizeof err));
	ck_assert_msg(strstr(err, "/flaky: is empty"), "%s", err);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_ptr_null(secret_file_get(secret, err, sizeof err));
	ck_assert_msg(strstr(err, "/flaky: cannot open: No such file or directory"), "%s", err);
	ck_assert_msg(strstr(err, "good-token") == NULL, "%s", err);
	write_text("flaky", "better-token\n", path);
	expect_value(secret, "better-token");
	secret_file_close(secret);
	secret_file_close(NULL);
	secret_file_release(NULL);
}
END_TEST

typedef struct reader_job {
	secret_file *secret;
	int reads;
	int bad;
} reader_job;

static void *read_many(void *opaque)
{
	reader_job *job = opaque;
	char err[512];

	for (int i = 0; i < job->reads; i++) {
		char *value = secret_file_get(job->secret, err, sizeof err);
		/* A reader may catch the writer between truncate and write
		 * ("is empty"); anything else must be a whole value. */
		if (value ? strncmp(value, "value-", 6) != 0 || strlen(value) != 10
		          : strstr(err, "is empty") == NULL)
			job->bad++;
		secret_file_release(value);
	}
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	enum { READERS = 4 };
	char path[PATH_MAX], text[32];
	pthread_t threads[READERS];
	reader_job jobs[READERS];

	write_text("shared", "value-0000\n", path);
	secret_file *secret = open_expecting(path, "value-0000");
	for (size_t i = 0; i < READERS; i++) {
		jobs[i] = (reader_job){.secret = secret, .reads = 2000};
		ck_assert_int_eq(pthread_create(&threads[i], NULL, read_many, &jobs[i]), 0);
	}
	for (int round = 1; round <= 200; round++) {
		snprintf(text, sizeof text, "value-%04d\n", round);
		write_text("shared", text, path);
	}
	for (size_t i = 0; i < READERS; i++) {
		pthread_join(threads[i], NULL);
		ck_assert_int_eq(jobs[i].bad, 0);
	}
	expect_value(secret, "value-0200");
	secret_file_close(secret);
}
END_TEST

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
	(void)info;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	snprintf(tmp_dir, sizeof tmp_dir, "%s/test_secretfile.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	Suite *suite = suite_create("secretfile");
	TCase *tcase = tcase_create("secretfile");
	tcase_add_test(tcase, test_trims_whitespace);
	tcase_add_test(tcase, test_open_errors_name_the_file);
	tcase_add_test(tcase, test_size_limit);
	tcase_add_test(tcase, test_rotation_in_place_same_size);
	tcase_add_test(tcase, test_rotation_by_rename);
	tcase_add_test(tcase, test_rotation_by_symlink_swap);
	tcase_add_test(tcase, test_broken_then_fixed);
	tcase_add_test(tcase, test_concurrent_readers);
	tcase_set_timeout(tcase, 60);
	suite_add_tcase(suite, tcase);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_loader: the loader against the deliberately broken fixtures of
 * tests/abi (each must fail with one clear line naming the file), the good
 * fixture end to end, path resolution and, when built, the linkerd adapter. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"

#ifndef ABI_FIXTURE_DIR
#error "ABI_FIXTURE_DIR must name the directory holding fx_*.so"
#endif
#ifndef ABI_SRC_DIR
#error "ABI_SRC_DIR must name the directory holding not-an-elf.so"
#endif
#ifndef LINKERD_SO
#error "LINKERD_SO must name the built linkerd adapter"
#endif

#define FX(file) ABI_FIXTURE_DIR "/" file

/* What the test host's option() answers for "fail". */
typedef enum fail_option { FAIL_ABSENT, FAIL_TRUE, FAIL_FALSE, FAIL_WRONG_TYPE } fail_option;

typedef struct test_host_ctx {
	fail_option fail;
} test_host_ctx;

static void test_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static smi_status test_option(void *ctx, const char *key, smi_option_type type, void *out)
{
	const test_host_ctx *host_ctx = ctx;
	if (strcmp(key, "fail") != 0 || host_ctx->fail == FAIL_ABSENT)
		return SMI_ERR_UNSUPPORTED;
	if (host_ctx->fail == FAIL_WRONG_TYPE || type != SMI_OPTION_BOOL)
		return SMI_ERR_OPTION;
	*(bool *)out = host_ctx->fail == FAIL_TRUE;
	return SMI_OK;
}

static const char *test_label(void *ctx, const smi_series *series, const char *name)
{
	(void)ctx;
	for (size_t i = 0; i < series->n_labels; i++)
		if (strcmp(series->labels[i].name, name) == 0)
			return series->labels[i].value;
	return NULL;
}

static smi_host test_host(test_host_ctx *ctx)
{
	smi_host host = {
	    .struct_size = sizeof host,
	    .abi_major = SMI_ADAPTER_ABI_MAJOR,
	    .abi_minor = SMI_ADAPTER_ABI_MINOR,
	    .ctx = ctx,
	    .log = test_log,
	    .option = test_option,
	    .label = test_label,
	};
	return host;
}

/* Loading must fail; err must be one line naming `file` and holding `want`. */
static void expect_load_error(const char *name, const char *path, const char *dir, const char *file,
                              const char *want)
{
	char err[512];
	memset(err, 'x', sizeof err); /* proves the loader terminates it */
	err[sizeof err - 1] = '\0';
	adapter *a = adapter_load(name, path, dir, err, sizeof err);
	ck_assert_ptr_null(a);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	if (file != NULL) {
		char prefix[600];
		snprintf(prefix, sizeof prefix, "adapter %s: ", file);
		ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
		              "error \"%s\" does not start with \"%s\"", err, prefix);
	}
	ck_assert_ptr_null(strchr(err, '\n'));
	fprintf(stderr, "  message: %s\n", err);
}

/* Optional fixtures the build may not produce yet: skip with a note. */
static bool fixture_built(const char *path)
{
	if (access(path, F_OK) == 0)
		return true;
	fprintf(stderr, "  skipped: %s not built\n", path);
	return false;
}

START_TEST(missing_symbol)
{
	expect_load_error("fixture", FX("fx_missing_symbol.so"), NULL, FX("fx_missing_symbol.so"),
	                  "symbol smi_adapter_descriptor_v1 not found: "
	                  "is this an smi-metrics adapter?");
}
END_TEST

START_TEST(wrong_major)
{
	expect_load_error("fixture", FX("fx_wrong_major.so"), NULL, FX("fx_wrong_major.so"),
	                  "ABI major 2, this server speaks ABI 1.0");
}
END_TEST

START_TEST(newer_minor)
{
	expect_load_error("fixture", FX("fx_newer_minor.so"), NULL, FX("fx_newer_minor.so"),
	                  "built for ABI 1.1, newer than this server's ABI 1.0; "
	                  "upgrade smi-metrics");
}
END_TEST

START_TEST(null_callbacks)
{
	expect_load_error("fixture", FX("fx_null_callbacks.so"), NULL, FX("fx_null_callbacks.so"),
	                  "descriptor callback 'plan' is NULL");
}
END_TEST

START_TEST(short_struct)
{
	/* ABI 1.0: the 8-byte version header, then ten pointer-sized fields
	 * (3 strings, templates, n_templates, 5 callbacks): 88 on LP64. */
	char want[128];
	snprintf(want, sizeof want, "descriptor is 8 bytes, ABI 1.0 needs at least %zu",
	         8 + 10 * sizeof(void *));
	expect_load_error("fixture", FX("fx_short_struct.so"), NULL, FX("fx_short_struct.so"),
	                  want);
}
END_TEST

START_TEST(null_descriptor)
{
	if (!fixture_built(FX("fx_null_descriptor.so")))
		return;
	expect_load_error("fixture", FX("fx_null_descriptor.so"), NULL, FX("fx_null_descriptor.so"),
	                  "smi_adapter_descriptor_v1() returned NULL");
}
END_TEST

START_TEST(bad_template_id)
{
	if (!fixture_built(FX("fx_bad_template_id.so")))
		return;
	expect_load_error("fixture", FX("fx_bad_template_id.so"), NULL, FX("fx_bad_template_id.so"),
	                  "template 1 id \"Fixture Requests\" does not match [a-z][a-z0-9_.-]*");
}
END_TEST

START_TEST(dup_template_id)
{
	if (!fixture_built(FX("fx_dup_template_id.so")))
		return;
	expect_load_error("fixture", FX("fx_dup_template_id.so"), NULL, FX("fx_dup_template_id.so"),
	                  "template id \"fixture.requests\" is used twice (templates 0 and 1)");
}
END_TEST

START_TEST(name_mismatch)
{
	expect_load_error("linkerd", FX("fx_good.so"), NULL, FX("fx_good.so"),
	                  "descriptor name is \"fixture\", but adapter.name is \"linkerd\"");
}
END_TEST

START_TEST(missing_file_by_name)
{
	expect_load_error("nosuch", NULL, ABI_FIXTURE_DIR, FX("nosuch.so"),
	                  "no such file (looked up adapter.name \"nosuch\" in " ABI_FIXTURE_DIR
	                  ")");
}
END_TEST

START_TEST(missing_file_by_path)
{
	expect_load_error("fixture", FX("nosuch.so"), NULL, FX("nosuch.so"),
	                  "no such file (from adapter.path)");
}
END_TEST

START_TEST(not_an_elf)
{
	expect_load_error("fixture", ABI_SRC_DIR "/not-an-elf.so", NULL,
	                  ABI_SRC_DIR "/not-an-elf.so", "not an ELF file");
}
END_TEST

START_TEST(truncated_elf)
{
	/* Right magic, nothing behind it: dlopen() itself refuses. */
	char file[] = "/tmp/test_loader.XXXXXX";
	int fd = mkstemp(file);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd,
	                       "\x7f"
	                       "ELF\x02\x01\x01",
	                       7),
	                 7);
	close(fd);
	expect_load_error("fixture", file, NULL, file, "cannot load: ");
	unlink(file);
}
END_TEST

START_TEST(directory_as_path)
{
	expect_load_error("fixture", ABI_FIXTURE_DIR, NULL, ABI_FIXTURE_DIR, "is a directory");
}
END_TEST

START_TEST(bad_names)
{
	static const char *const names[] = {
	    "../fx_good",
	    "..",
	    "a/b",
	    "/etc/passwd",
	    "",
	    "Linkerd",
	    "-x",
	    "_x",
	    "a.b",
	    "a b",
	    /* 64 characters */
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		expect_load_error(names[i], NULL, ABI_FIXTURE_DIR, NULL,
		                  "is not a valid adapter name");
		/* a path does not make a bad name acceptable */
		expect_load_error(names[i], FX("fx_good.so"), NULL, NULL,
		                  "is not a valid adapter name");
	}
}
END_TEST

START_TEST(no_name_no_path)
{
	expect_load_error(NULL, NULL, ABI_FIXTURE_DIR, NULL,
	                  "neither adapter.name nor adapter.path is set");
}
END_TEST

START_TEST(good_loads_opens_and_works)
{
	char err[256] = "";
	adapter *a = adapter_load("fixture", FX("fx_good.so"), NULL, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	ck_assert_str_eq(adapter_file(a), FX("fx_good.so"));
	const smi_adapter_descriptor *d = adapter_descriptor(a);
	ck_assert_str_eq(d->name, "fixture");
	ck_assert_ptr_nonnull(d->version);
	ck_assert_uint_eq(d->n_templates, 1);
	ck_assert_str_eq(d->templates[0].id, "fixture.requests");

	test_host_ctx ctx = {FAIL_ABSENT};
	smi_host host = test_host(&ctx);
	ck_assert_int_eq(adapter_open(a, &host, err, sizeof err), 0);
	void *state = adapter_state(a);
	ck_assert_ptr_nonnull(state);
	ck_assert_uint_eq(d->kinds(state), UINT64_C(1) << SMI_KIND_POD);

	smi_request request = {.struct_size = sizeof request,
	                       .kind = SMI_KIND_POD,
	                       .scope = SMI_SCOPE_OBJECT,
	                       .namespace_name = "emojivoto",
	                       .name = "web-1",
	                       .window_seconds = 30};
	smi_plan plan = {.struct_size = sizeof plan};
	ck_assert_int_eq(d->plan(state, &request, &plan), SMI_OK);
	ck_assert_uint_eq(plan.n_queries, 1);
	ck_assert_str_eq(plan.queries[0].template_id, "fixture.requests");

	const smi_label labels[] = {{"namespace", "emojivoto"}, {"pod", "web-1"}};
	smi_series series = {.struct_size = sizeof series, .n_labels = 2, .labels = labels};
	smi_identity identity = {.struct_size = sizeof identity};
	ck_assert_int_eq(d->identify(state, &request, 0, &series, &identity), SMI_OK);
	ck_assert_uint_eq(identity.feeds, SMI_FEEDS_RESOURCE);
	ck_assert_str_eq(identity.self_namespace, "emojivoto");
	ck_assert_str_eq(identity.self_name, "web-1");

	ck_assert_int_ne(adapter_open(a, &host, err, sizeof err), 0);
	ck_assert_str_eq(err, "adapter fixture: already open");
	adapter_unload(a);
}
END_TEST

START_TEST(good_by_name_in_dir)
{
	/* adapters_dir/<name>.so, with and without a trailing slash */
	char dir[] = "/tmp/test_loader.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char link[sizeof dir + 16];
	snprintf(link, sizeof link, "%s/fixture.so", dir);
	ck_assert_int_eq(symlink(FX("fx_good.so"), link), 0);

	char err[256] = "";
	adapter *a = adapter_load("fixture", NULL, dir, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	ck_assert_str_eq(adapter_file(a), link);
	adapter_unload(a);

	char dir_slash[sizeof dir + 2];
	snprintf(dir_slash, sizeof dir_slash, "%s//", dir);
	a = adapter_load("fixture", NULL, dir_slash, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	ck_assert_str_eq(adapter_file(a), link);
	adapter_unload(a);

	unlink(link);
	rmdir(dir);
}
END_TEST

START_TEST(relative_path_is_not_searched)
{
	/* "fx_good.so" means the file here, not a library-path search. */
	char cwd[4096];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir(ABI_FIXTURE_DIR), 0);
	char err[256] = "";
	adapter *a = adapter_load("fixture", "fx_good.so", NULL, err, sizeof err);
	ck_assert_int_eq(chdir(cwd), 0); /* for CK_FORK=no runs */
	ck_assert_msg(a != NULL, "load failed: %s", err);
	ck_assert_str_eq(adapter_file(a), "./fx_good.so");
	adapter_unload(a);
}
END_TEST

START_TEST(open_fails_with_adapter_message)
{
	char err[256] = "";
	adapter *a = adapter_load("fixture", FX("fx_good.so"), NULL, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	test_host_ctx ctx = {FAIL_TRUE};
	smi_host host = test_host(&ctx);
	ck_assert_int_eq(adapter_open(a, &host, err, sizeof err), SMI_ERR_OPTION);
	ck_assert_str_eq(err, "adapter fixture: option fail is true, refusing to open");
	fprintf(stderr, "  message: %s\n", err);
	ck_assert_ptr_null(adapter_state(a));
	adapter_unload(a); /* must not call close() on a state never made */
}
END_TEST

START_TEST(open_fails_without_message)
{
	char err[256] = "";
	adapter *a = adapter_load("fixture", FX("fx_good.so"), NULL, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	test_host_ctx ctx = {FAIL_WRONG_TYPE};
	smi_host host = test_host(&ctx);
	ck_assert_int_eq(adapter_open(a, &host, err, sizeof err), SMI_ERR_OPTION);
	ck_assert_str_eq(err, "adapter fixture: open failed with status 4");
	fprintf(stderr, "  message: %s\n", err);
	adapter_unload(a);
}
END_TEST

START_TEST(open_succeeds_with_fail_false)
{
	char err[256] = "";
	adapter *a = adapter_load("fixture", FX("fx_good.so"), NULL, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	test_host_ctx ctx = {FAIL_FALSE};
	smi_host host = test_host(&ctx);
	ck_assert_int_eq(adapter_open(a, &host, err, sizeof err), 0);
	adapter_unload(a);
}
END_TEST

START_TEST(tiny_error_buffer)
{
	char err[8];
	ck_assert_ptr_null(adapter_load("fixture", FX("fx_wrong_major.so"), NULL, err, sizeof err));
	ck_assert_uint_eq(strlen(err), sizeof err - 1);
	ck_assert_ptr_null(adapter_load("fixture", FX("fx_wrong_major.so"), NULL, NULL, 0));
	adapter_unload(NULL);
}
END_TEST

START_TEST(linkerd_adapter)
{
	char err[256] = "";
	adapter *a = adapter_load("linkerd", LINKERD_SO, NULL, err, sizeof err);
	ck_assert_msg(a != NULL, "load failed: %s", err);
	const smi_adapter_descriptor *d = adapter_descriptor(a);
	ck_assert_str_eq(d->name, "linkerd");
	test_host_ctx ctx = {FAIL_ABSENT};
	smi_host host = test_host(&ctx);
	ck_assert_msg(adapter_open(a, &host, err, sizeof err) == 0, "open failed: %s", err);
	ck_assert(d->kinds(adapter_state(a)) & (UINT64_C(1) << SMI_KIND_DEPLOYMENT));
	adapter_unload(a);
}
END_TEST

static Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *broken = tcase_create("broken");
	tcase_add_test(broken, missing_symbol);
	tcase_add_test(broken, wrong_major);
	tcase_add_test(broken, newer_minor);
	tcase_add_test(broken, null_callbacks);
	tcase_add_test(broken, short_struct);
	tcase_add_test(broken, null_descriptor);
	tcase_add_test(broken, bad_template_id);
	tcase_add_test(broken, dup_template_id);
	tcase_add_test(broken, name_mismatch);
	tcase_add_test(broken, tiny_error_buffer);
	suite_add_tcase(s, broken);

	TCase *files = tcase_create("files");
	tcase_add_test(files, missing_file_by_name);
	tcase_add_test(files, missing_file_by_path);
	tcase_add_test(files, not_an_elf);
	tcase_add_test(files, truncated_elf);
	tcase_add_test(files, directory_as_path);
	tcase_add_test(files, bad_names);
	tcase_add_test(files, no_name_no_path);
	tcase_add_test(files, good_by_name_in_dir);
	tcase_add_test(files, relative_path_is_not_searched);
	suite_add_tcase(s, files);

	TCase *good = tcase_create("good");
	tcase_add_test(good, good_loads_opens_and_works);
	tcase_add_test(good, open_fails_with_adapter_message);
	tcase_add_test(good, open_fails_without_message);
	tcase_add_test(good, open_succeeds_with_fail_false);
	if (access(LINKERD_SO, F_OK) == 0)
		tcase_add_test(good, linkerd_adapter);
	else
		fprintf(stderr, "test_loader: %s not built, skipping the linkerd case\n",
		        LINKERD_SO);
	suite_add_tcase(s, good);
	return s;
}

int main(void)
{
	log_set_level(LOG_WARN); /* the "loaded" lines would drown the messages */
	SRunner *runner = srunner_create(loader_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

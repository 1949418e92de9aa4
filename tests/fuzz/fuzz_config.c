/* fuzz_config: config_load() on fuzzed YAML/JSON, then everything start-up
 * does with the snapshot: option lookups, query overrides and their
 * template check.
 *
 * Input: the file's bytes.  config_load() takes a path, so the input is
 * written to a memfd and loaded through /proc/self/fd/N; nothing touches
 * the disk.  Checked: an error is one "FILE[:LINE]: ..." line, a snapshot
 * keeps the documented bounds, and the lookups agree with each other. */
#include "fuzz_common.h"

#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "promql.h"

/* The Linkerd adapter's template ids, as start-up passes them. */
static const char *const fuzz_query_ids[] = {"resource.counts", "resource.latency", "edges.counts",
                                             "edges.latency", NULL};
/* Option keys an adapter might look up: one from the seeds, two made up. */
static const char *const fuzz_option_keys[] = {"meshNamespace", "strict", "maxSeries", "a"};

static int fuzz_fd = -1;
static char fuzz_path[64];

static void open_memfd(void)
{
	fuzz_fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fuzz_fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
}

static void write_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(fuzz_fd, 0) != 0)
		abort();
	while (done < size) {
		ssize_t n = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
}

static void check_error(const char *err)
{
	size_t path_len = strlen(fuzz_path);

	FUZZ_CHECK(strncmp(err, fuzz_path, path_len) == 0 && err[path_len] == ':',
	           "message does not start with the file name: %s", err);
	FUZZ_CHECK(fuzz_one_line(err), "message is not one line: %s", err);
}

static void check_snapshot(const config *cfg)
{
	FUZZ_CHECK(cfg->path && strcmp(cfg->path, fuzz_path) == 0, "path");
	FUZZ_CHECK(cfg->server.listen && cfg->server.tls_cert_file && cfg->server.tls_key_file,
	           "server strings missing");
	FUZZ_CHECK(cfg->server.request_timeout_ms >= 1000 &&
	               cfg->server.request_timeout_ms <= 60000,
	           "server.requestTimeout %u ms", cfg->server.request_timeout_ms);
	FUZZ_CHECK(cfg->server.max_connections >= 1 && cfg->server.max_connections <= 100000,
	           "server.maxConnections %u", cfg->server.max_connections);
	FUZZ_CHECK(cfg->auth.requestheader_allowed_names, "allowed names list missing");
	size_t n = 0;
	while (cfg->auth.requestheader_allowed_names[n])
		n++;
	FUZZ_CHECK(n == cfg->auth.n_requestheader_allowed_names, "%zu allowed names, count %zu", n,
	           cfg->auth.n_requestheader_allowed_names);
	FUZZ_CHECK(cfg->admin.listen, "admin.listen missing");
	FUZZ_CHECK(cfg->prometheus.url && (strncmp(cfg->prometheus.url, "http://", 7) == 0 ||
	                                   strncmp(cfg->prometheus.url, "https://", 8) == 0),
	           "prometheus.url %s", cfg->prometheus.url ? cfg->prometheus.url : "(null)");
	FUZZ_CHECK(cfg->prometheus.timeout_ms >= 100 && cfg->prometheus.timeout_ms <= 60000,
	           "prometheus.timeout %u ms", cfg->prometheus.timeout_ms);
	FUZZ_CHECK(cfg->window.min_seconds >= 1 &&
	               cfg->window.min_seconds <= cfg->window.default_seconds &&
	               cfg->window.default_seconds <= cfg->window.max_seconds &&
	               cfg->window.max_seconds <= 8760u * 3600u,
	           "window %u <= %u <= %u", cfg->window.min_seconds, cfg->window.default_seconds,
	           cfg->window.max_seconds);
	FUZZ_CHECK(cfg->adapter.name || cfg->adapter.path, "adapter without name or path");
	FUZZ_CHECK(cfg->adapter.adapters_dir, "adapter.adaptersDir missing");
	FUZZ_CHECK(cfg->log.level && (strcmp(cfg->log.level, "error") == 0 ||
	                              strcmp(cfg->log.level, "warn") == 0 ||
	                              strcmp(cfg->log.level, "info") == 0 ||
	                              strcmp(cfg->log.level, "debug") == 0),
	           "log.level %s", cfg->log.level ? cfg->log.level : "(null)");
}

/* What start-up does after the adapter opened: options, overrides. */
static void exercise_lookups(config *cfg)
{
	char err[512];

	for (size_t i = 0; i < sizeof fuzz_option_keys / sizeof fuzz_option_keys[0]; i++) {
		const char *text = NULL;
		bool flag = false;
		int64_t number = 0;
		int as_string =
		    config_option_string(cfg, fuzz_option_keys[i], &text, err, sizeof err);
		int as_bool = config_option_bool(cfg, fuzz_option_keys[i], &flag, err, sizeof err);
		int as_int = config_option_int(cfg, fuzz_option_keys[i], &number, err, sizeof err);
		FUZZ_CHECK(as_string >= -1 && as_string <= 1 && as_bool >= -1 && as_bool <= 1 &&
		               as_int >= -1 && as_int <= 1,
		           "option lookup results %d %d %d", as_string, as_bool, as_int);
		/* Absent is absent whatever the type asked for. */
		FUZZ_CHECK((as_string == 1) == (as_bool == 1) && (as_bool == 1) == (as_int == 1),
		           "option %s absent for some types only", fuzz_option_keys[i]);
		if (as_string == 0)
			FUZZ_CHECK(text != NULL, "string option without text");
		if (as_string < 0 || as_bool < 0 || as_int < 0)
			check_error(err);
	}
	if (config_unused_option(cfg, err, sizeof err))
		check_error(err);
	if (config_unknown_query(cfg, fuzz_query_ids, err, sizeof err))
		check_error(err);
	for (size_t i = 0; fuzz_query_ids[i]; i++) {
		const char *text = config_query_override(cfg, fuzz_query_ids[i]);
		if (text && !promql_check_template(text, err, sizeof err))
			FUZZ_CHECK(err[0] != '\0', "template refused without a message");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];

	/* The loader refuses files over 1 MiB before parsing; that path is
	 * covered by a unit test, not worth the fuzzer's time. */
	if (size > 64 * 1024)
		return 0;
	if (fuzz_fd < 0)
		open_memfd();
	write_input(data, size);

	err[0] = '\0';
	config *cfg = config_load(fuzz_path, "/nonexistent/adapters", err, sizeof err);
	if (!cfg) {
		FUZZ_CHECK(err[0] != '\0', "refused without a message");
		check_error(err);
		return 0;
	}
	check_snapshot(cfg);
	exercise_lookups(cfg);
	config_free(cfg);
	return 0;
}

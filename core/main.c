/* smi-metrics: the SMI Traffic Metrics API server.  main() wires the
 * modules: config -> adapter -> Prometheus client -> API -> listeners, and
 * owns process concerns (arguments, signals, exit codes). */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "authcfg.h"
#include "authn.h"
#include "authz.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "prom.h"
#include "selfmetrics.h"
#include "server.h"
#include "tlsreload.h"

#ifndef SMI_VERSION
#define SMI_VERSION "0.0.0"
#endif

enum { EXIT_RUNTIME = 1, EXIT_CONFIG = 2, EXIT_ADAPTER = 3 };

/* Kubernetes waits terminationGracePeriodSeconds (30 s by default) between
 * SIGTERM and SIGKILL; finish in-flight requests well inside that. */
#define SHUTDOWN_GRACE_SECONDS 25

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: smi-metrics --config FILE [--check-config]\n"
	        "       smi-metrics --version | --help\n"
	        "\n"
	        "Serves the SMI Traffic Metrics API (metrics.smi-spec.io/v1alpha1) as a\n"
	        "Kubernetes aggregated API server, answering from a mesh's Prometheus metrics\n"
	        "through the adapter named in the config file.\n"
	        "\n"
	        "  -c, --config FILE    configuration file (YAML or JSON); see README\n"
	        "      --check-config   load the config and the adapter, check every key and\n"
	        "                       query template, print a summary and exit\n"
	        "  -V, --version        print the version and the adapter ABI, then exit\n"
	        "  -h, --help           this text\n"
	        "\n"
	        "Exit codes: 0 ok, 1 runtime failure, 2 config error, 3 adapter error.\n"
	        "Default adapters directory: %s\n",
	        SMI_ADAPTER_DIR);
}

typedef struct app {
	config *cfg;
	adapter *adapter;
	smi_host host;
	prom_client *prom;
	selfmetrics *sm;
	kube_client *kube; /* NULL standalone */
	authcfg *authcfg;
	authn *authn;
	authz *authz;
	tls_store *tls;
	api *api;
	server *server;
} app;

static void app_free(app *a)
{
	server_stop(a->server);
	tls_store_free(a->tls); /* after the daemon: connections hold its credentials */
	api_free(a->api);
	authz_free(a->authz);
	authn_free(a->authn);
	authcfg_free(a->authcfg);
	kube_client_free(a->kube);
	selfmetrics_free(a->sm);
	prom_client_free(a->prom);
	adapter_unload(a->adapter);
	config_free(a->cfg);
}

/* Loads config and adapter and checks everything that can be checked
 * without the network.  Returns 0 or an exit code. */
static int app_load(app *a, const char *config_path)
{
	char err[1024] = "";
	a->cfg = config_load(config_path, SMI_ADAPTER_DIR, err, sizeof err);
	if (!a->cfg) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return EXIT_CONFIG;
	}
	int level = log_level_from_name(a->cfg->log.level);
	log_set_level(level < 0 ? LOG_INFO : (log_level)level);
	a->adapter = adapter_load(a->cfg->adapter.name, a->cfg->adapter.path,
	                          a->cfg->adapter.adapters_dir, err, sizeof err);
	if (!a->adapter) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return EXIT_ADAPTER;
	}
	api_host_init(&a->host, a->cfg);
	if (adapter_open(a->adapter, &a->host, err, sizeof err) != 0) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return EXIT_ADAPTER;
	}
	if (config_unused_option(a->cfg, err, sizeof err) ||
	    !api_check_templates(a->adapter, a->cfg, err, sizeof err)) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return EXIT_CONFIG;
	}
	return 0;
}

static void print_summary(const app *a)
{
	const smi_adapter_descriptor *d = adapter_descriptor(a->adapter);
	printf("config %s is valid\nadapter %s %s (%s), ABI %u.%u, %zu query templates\n",
	       a->cfg->path, d->name, d->version, adapter_file(a->adapter), d->abi_major,
	       d->abi_minor, d->n_templates);
	printf("kinds:");
	uint64_t kinds = d->kinds(adapter_state(a->adapter));
	for (unsigned k = 0; k < SMI_KIND_COUNT_V1; k++)
		if (kinds & (UINT64_C(1) << k))
			printf(" %s", kind_info_of((smi_kind)k)->plural);
	printf("\n");
}

/* The cluster connection, what authentication trusts (first read of the
 * ConfigMap included), the authenticators, the authorizer and the TLS
 * credentials, with their reload threads.  Returns 0 or an exit code. */
static int app_security(app *a, char *err, size_t err_size)
{
	const config *cfg = a->cfg;
	char why[768];
	if (cfg->kubernetes.enabled) {
		kube_settings ks = {.in_cluster = cfg->kubernetes.in_cluster,
		                    .kubeconfig = cfg->kubernetes.kubeconfig,
		                    .server = cfg->kubernetes.server,
		                    .ca_file = cfg->kubernetes.ca_file,
		                    .token_file = cfg->kubernetes.token_file,
		                    .token_refresh_ms = cfg->kubernetes.token_refresh_ms,
		                    .timeout_ms = cfg->kubernetes.timeout_ms};
		a->kube = kube_client_new(&ks, why, sizeof why);
		if (!a->kube) {
			snprintf(err, err_size, "kubernetes: %s", why);
			return EXIT_CONFIG;
		}
	}
	a->authcfg = authcfg_new(cfg, a->kube, why, sizeof why);
	if (!a->authcfg) {
		snprintf(err, err_size, "auth: %s", why);
		return EXIT_CONFIG;
	}
	a->authn = authn_new(a->kube, cfg->auth.token_cache_ttl_ms);
	a->authz = authz_new(cfg, a->kube);
	if (!a->authn || !a->authz) {
		snprintf(err, err_size, "out of memory");
		return EXIT_RUNTIME;
	}
	a->tls = tls_store_new(cfg->server.tls_cert_file, cfg->server.tls_key_file, a->authcfg, why,
	                       sizeof why);
	if (!a->tls) {
		snprintf(err, err_size, "server.tlsCertFile: %s", why);
		return EXIT_CONFIG;
	}
	if (authcfg_start(a->authcfg, err, err_size) != 0 ||
	    tls_store_start(a->tls, cfg->server.cert_reload_interval_ms, err, err_size) != 0)
		return EXIT_RUNTIME;
	log_msg(LOG_INFO, "authorization: %s%s%s",
	        cfg->authorization.webhook ? "Webhook (SubjectAccessReview)" : "AlwaysAllow",
	        a->kube ? ", kube-apiserver " : "", a->kube ? kube_server(a->kube) : "");
	return 0;
}

/* Each connection costs a descriptor (and Prometheus connections more): use
 * the hard limit rather than the customary soft 1024. */
static void raise_fd_limit(void)
{
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			log_msg(LOG_WARN, "cannot raise the open-file limit to %llu",
			        (unsigned long long)lim.rlim_max);
	}
}

static int app_run(app *a)
{
	char err[1024] = "";
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	/* Block before any thread starts, so only sigwait() sees them. */
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	const config *cfg = a->cfg;
	prom_options prom_opts = {
	    .url = cfg->prometheus.url,
	    .timeout_ms = cfg->prometheus.timeout_ms,
	    .max_response_bytes = cfg->prometheus.max_response_bytes,
	    .bearer_token_file = cfg->prometheus.bearer_token_file,
	    .basic_auth_username_file = cfg->prometheus.basic_auth_username_file,
	    .basic_auth_password_file = cfg->prometheus.basic_auth_password_file,
	    .tls_ca_file = cfg->prometheus.tls_ca_file,
	    .tls_cert_file = cfg->prometheus.tls_cert_file,
	    .tls_key_file = cfg->prometheus.tls_key_file,
	    .tls_server_name = cfg->prometheus.tls_server_name,
	    .tls_insecure_skip_verify = cfg->prometheus.tls_insecure_skip_verify,
	    .header_names = (const char *const *)cfg->prometheus.header_names,
	    .header_values = (const char *const *)cfg->prometheus.header_values,
	    .n_headers = cfg->prometheus.n_headers,
	};
	(void)prom_method_from_name(cfg->prometheus.method,
	                            &prom_opts.method); /* checked by config_load */
	a->prom = prom_client_new_with_options(&prom_opts, err, sizeof err);
	if (!a->prom) {
		fprintf(stderr, "smi-metrics: prometheus: %s\n", err);
		return EXIT_CONFIG;
	}
	a->sm = selfmetrics_new(SMI_VERSION, adapter_descriptor(a->adapter)->name);
	if (!a->sm) {
		fprintf(stderr, "smi-metrics: out of memory\n");
		return EXIT_RUNTIME;
	}
	int rc = app_security(a, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return rc;
	}
	a->api = api_new(a->cfg, a->adapter, a->prom, a->sm);
	if (!a->api) {
		fprintf(stderr, "smi-metrics: out of memory\n");
		return EXIT_RUNTIME;
	}
	server_security sec = {
	    .authcfg = a->authcfg, .authn = a->authn, .authz = a->authz, .tls = a->tls};
	a->server = server_start(a->cfg, a->api, &sec, a->sm, err, sizeof err);
	if (!a->server) {
		fprintf(stderr, "smi-metrics: %s\n", err);
		return EXIT_RUNTIME;
	}
	log_msg(LOG_INFO,
	        "serving metrics.smi-spec.io/v1alpha1 on https://%s with adapter %s, admin on %s, "
	        "Prometheus %s",
	        a->cfg->server.listen, adapter_descriptor(a->adapter)->name,
	        *a->cfg->admin.listen ? a->cfg->admin.listen : "(disabled)",
	        a->cfg->prometheus.url);
	int sig = 0;
	/* SIGHUP does not reload the config file: the adapter, its templates
	 * and the listeners would all have to be swapped under live requests,
	 * for little gain in Kubernetes, where a ConfigMap change rolls the
	 * pods (the chart's checksum annotation).  Certificates, CA bundles,
	 * the auth ConfigMap and credential files reload by themselves. */
	while (sigwait(&signals, &sig) == 0 && sig == SIGHUP)
		log_msg(LOG_WARN,
		        "SIGHUP ignored: the config file is read at start only; restart to "
		        "apply changes (TLS files and credentials reload by themselves)");
	log_msg(LOG_INFO, "received %s: draining requests (up to %d s) and stopping",
	        sig == SIGTERM ? "SIGTERM" : "SIGINT", SHUTDOWN_GRACE_SECONDS);
	server_drain(a->server, SHUTDOWN_GRACE_SECONDS);
	a->server = NULL;
	log_msg(LOG_INFO, "stopped");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'k'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	int check_only = 0, opt;
	while ((opt = getopt_long(argc, argv, "c:Vh", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'k': check_only = 1; break;
		case 'V':
			printf("smi-metrics %s (adapter ABI %d.%d)\n", SMI_VERSION,
			       SMI_ADAPTER_ABI_MAJOR, SMI_ADAPTER_ABI_MINOR);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smi-metrics: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_CONFIG;
	}
	if (!config_path) {
		fprintf(stderr, "smi-metrics: --config FILE is required (see --help)\n");
		return EXIT_CONFIG;
	}
	app a = {0};
	int rc = app_load(&a, config_path);
	if (rc == 0 && check_only)
		print_summary(&a);
	else if (rc == 0)
		rc = app_run(&a);
	app_free(&a);
	curl_global_cleanup(); /* prom_client_new() initialised it once */
	return rc;
}

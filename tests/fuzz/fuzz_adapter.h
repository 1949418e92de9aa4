/* fuzz_adapter: the compiled-in Linkerd adapter for the harnesses that need
 * one (promql, assemble): a host table like the server's, whose only
 * adapter option is failureStatus, chosen by the input. */
#ifndef SMI_FUZZ_ADAPTER_H
#define SMI_FUZZ_ADAPTER_H

#include <stddef.h>
#include <string.h>

#include "assemble.h"
#include "smi-metrics/adapter.h"

/* adapters/linkerd/linkerd.c, compiled into the harness. */
const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

static inline void fuzz_host_log(void *ctx, smi_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

/* ctx is the failureStatus text, or NULL when the option is absent. */
static inline smi_status fuzz_host_option(void *ctx, const char *key, smi_option_type type,
                                          void *out)
{
	if (ctx == NULL || strcmp(key, "failureStatus") != 0)
		return SMI_ERR_UNSUPPORTED;
	if (type != SMI_OPTION_STRING)
		return SMI_ERR_OPTION;
	*(const char **)out = ctx;
	return SMI_OK;
}

/*
 * Opens the adapter with adapter.options.failureStatus set to
 * failure_status (NULL: absent).  *host must live until close(); on a
 * refused option returns NULL (the server would not start).
 */
static inline const smi_adapter_descriptor *
fuzz_adapter_open(smi_host *host, const char *failure_status, void **state)
{
	const smi_adapter_descriptor *adapter = smi_adapter_descriptor_v1();
	char err[256];

	*host = (smi_host){
	    .struct_size = sizeof *host,
	    .abi_major = SMI_ADAPTER_ABI_MAJOR,
	    .abi_minor = SMI_ADAPTER_ABI_MINOR,
	    .ctx = (void *)failure_status,
	    .log = fuzz_host_log,
	    .option = fuzz_host_option,
	    .label = assemble_series_label,
	};
	if (adapter->open(host, state, err, sizeof err) != SMI_OK)
		return NULL;
	return adapter;
}

#endif

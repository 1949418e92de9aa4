/* failure_status: the `failureStatus` option every in-tree adapter offers,
 * and the status-code tests behind it.  Header-only (static functions)
 * because each adapter is a self-contained shared object.
 *
 *   failureStatus: 5xx       (default) server errors are failures
 *   failureStatus: 4xx,5xx   client errors are failures too
 *
 * What "5xx" means exactly is the adapter's to document: Istio applies it
 * to response_code (and counts any non-OK gRPC status as a failure),
 * Linkerd keeps the proxy's own classification. */
#ifndef SMI_ADAPTERS_FAILURE_STATUS_H
#define SMI_ADAPTERS_FAILURE_STATUS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <smi-metrics/adapter.h>

#define FAILURE_STATUS_OPTION "failureStatus"

typedef enum failure_status {
	FAILURE_STATUS_5XX = 0, /* default */
	FAILURE_STATUS_4XX_5XX = 1,
} failure_status;

/* Reads adapter.options.failureStatus into *out (left alone when absent).
 * On a bad value returns SMI_ERR_OPTION with a one-line message. */
static inline smi_status failure_status_read(const smi_host *host, failure_status *out, char *err,
                                             size_t err_size)
{
	const char *text = NULL;
	smi_status st = host->option(host->ctx, FAILURE_STATUS_OPTION, SMI_OPTION_STRING, &text);
	if (st == SMI_ERR_UNSUPPORTED)
		return SMI_OK;
	if (st != SMI_OK || !text) {
		snprintf(err, err_size,
		         "adapter.options." FAILURE_STATUS_OPTION " must be a string");
		return SMI_ERR_OPTION;
	}
	if (strcmp(text, "5xx") == 0) {
		*out = FAILURE_STATUS_5XX;
	} else if (strcmp(text, "4xx,5xx") == 0) {
		*out = FAILURE_STATUS_4XX_5XX;
	} else {
		snprintf(err, err_size,
		         "adapter.options." FAILURE_STATUS_OPTION
		         ": \"%.64s\" is not a valid value "
		         "(expected \"5xx\" or \"4xx,5xx\")",
		         text);
		return SMI_ERR_OPTION;
	}
	return SMI_OK;
}

/* Whether `code` is a three-digit HTTP status of class `first_digit`xx. */
static inline bool failure_status_is_class(const char *code, char first_digit)
{
	return code && code[0] == first_digit && code[1] >= '0' && code[1] <= '9' &&
	       code[2] >= '0' && code[2] <= '9' && code[3] == '\0';
}

/* Whether a gRPC status label holds a code other than 0 (OK).  Absent or
 * empty means plain HTTP: Prometheus does not store empty label values. */
static inline bool failure_status_grpc_not_ok(const char *grpc_status)
{
	return grpc_status && grpc_status[0] != '\0' && strcmp(grpc_status, "0") != 0;
}

#endif

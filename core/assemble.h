/* assemble: turns the answers to an adapter's plan into the TrafficMetrics
 * or TrafficMetricsList JSON: classifies every series through the adapter,
 * merges them per resource or edge in a hash table, computes quantiles and
 * formats Quantity strings. */
#ifndef SMI_ASSEMBLE_H
#define SMI_ASSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "router.h"
#include "smi-metrics/adapter.h"

typedef struct assemble_input {
	const route *route; /* ROUTE_METRICS */
	const smi_adapter_descriptor *adapter;
	void *adapter_state;
	const smi_plan *plan;
	const prom_result *results; /* plan->n_queries entries, all PROM_OK */
	int64_t eval_unix_seconds;  /* `timestamp` of every item */
} assemble_input;

/* Returns the JSON body (malloc'd) or NULL with a message in err. */
char *assemble_json(const assemble_input *in, char *err, size_t err_size);

/* Host service: label value of `name` in a series, or NULL. */
const char *assemble_series_label(void *ctx, const smi_series *series, const char *name);

#endif

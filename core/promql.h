/* promql: fills an adapter's query template with the validated request.
 * The only way a request value reaches PromQL: quoted string literals and
 * label names checked against the PromQL grammar. */
#ifndef SMI_PROMQL_H
#define SMI_PROMQL_H

#include <stdbool.h>
#include <stddef.h>

#include "smi-metrics/adapter.h"

/* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved). */
bool promql_valid_label_name(const char *name);

/*
 * Renders `template_text` for one plan query.  Placeholders are those
 * documented in adapter.h; anything else between {{ }} is an error, as is
 * a placeholder this request cannot fill (e.g. {{name}} for a list).
 * Returns a malloc'd string (caller frees) or NULL with a message in err.
 */
char *promql_render(const char *template_text, const smi_query_spec *spec,
                    const smi_request *request, char *err, size_t err_size);

/* Checks a template's placeholders without rendering (config start-up).
 * Returns false with "unknown placeholder {{x}}" or an unbalanced brace
 * message in err. */
bool promql_check_template(const char *template_text, char *err, size_t err_size);

#endif

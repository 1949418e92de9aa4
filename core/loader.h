/* loader: finds, dlopen()s and checks a mesh adapter against ABI v1, then
 * opens it with the host services table. */
#ifndef SMI_LOADER_H
#define SMI_LOADER_H

#include <stddef.h>
#include "smi-metrics/adapter.h"

typedef struct adapter adapter; /* a loaded, opened adapter */

/*
 * Resolves the adapter file: `path` when non-NULL, else
 * "<adapters_dir>/<name>.so" (name must match [a-z0-9][a-z0-9_-]*).
 * Then dlopen (RTLD_NOW | RTLD_LOCAL), looks up SMI_ADAPTER_ENTRY_SYMBOL,
 * and checks: major equal, minor <= ours, struct_size >= what that minor
 * needs, name non-empty and equal to `name` when given, every callback
 * and the template table non-NULL, template ids unique and well formed.
 * On failure returns NULL with one line in err that names the file:
 *   "adapter /x/y.so: ABI major 2, this server speaks 1"
 * Does not open the adapter (see adapter_open).
 */
adapter *adapter_load(const char *name, const char *path, const char *adapters_dir, char *err,
                      size_t err_size);

/* Calls the adapter's open() with `host`; on failure the adapter's
 * message, prefixed with its name, is in err. */
int adapter_open(adapter *a, const smi_host *host, char *err, size_t err_size);

/* Calls close() if opened, dlclose()s, frees. NULL is fine. */
void adapter_unload(adapter *a);

const smi_adapter_descriptor *adapter_descriptor(const adapter *a);
void *adapter_state(const adapter *a);
const char *adapter_file(const adapter *a);

#endif

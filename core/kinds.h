/* kinds: the fixed table of SMI resource kinds: URL plural, the kind string
 * the API emits, and whether the kind lives in a namespace. */
#ifndef SMI_KINDS_H
#define SMI_KINDS_H

#include <stdbool.h>
#include "smi-metrics/adapter.h"

typedef struct kind_info {
	smi_kind kind;
	const char *plural;    /* URL segment and RBAC resource: "deployments" */
	const char *kind_name; /* emitted resource.kind: "Deployment" */
	bool namespaced;
} kind_info;

/* NULL when `plural` is not a kind we know. */
const kind_info *kind_from_plural(const char *plural);
const kind_info *kind_info_of(smi_kind kind);

#endif

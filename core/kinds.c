/* kinds: the SMI kind table.  Kind strings follow smi-sdk-go v1alpha1
 * (`Daemonset`, `Statefulset`: title-cased singular of the plural) so that
 * existing clients keep parsing them; kinds the SDK never had follow the
 * same rule. */
#include "kinds.h"

#include <string.h>

static const kind_info kind_table[SMI_KIND_COUNT_V1] = {
    {SMI_KIND_NAMESPACE, "namespaces", "Namespace", false},
    {SMI_KIND_POD, "pods", "Pod", true},
    {SMI_KIND_DEPLOYMENT, "deployments", "Deployment", true},
    {SMI_KIND_STATEFULSET, "statefulsets", "Statefulset", true},
    {SMI_KIND_DAEMONSET, "daemonsets", "Daemonset", true},
    {SMI_KIND_JOB, "jobs", "Job", true},
    {SMI_KIND_REPLICASET, "replicasets", "Replicaset", true},
    {SMI_KIND_REPLICATIONCONTROLLER, "replicationcontrollers", "Replicationcontroller", true},
};

const kind_info *kind_from_plural(const char *plural)
{
	for (size_t i = 0; i < SMI_KIND_COUNT_V1; i++)
		if (strcmp(kind_table[i].plural, plural) == 0)
			return &kind_table[i];
	return NULL;
}

const kind_info *kind_info_of(smi_kind kind)
{
	if ((unsigned)kind >= SMI_KIND_COUNT_V1)
		return NULL;
	return &kind_table[kind];
}

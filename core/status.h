/* status: metav1.Status error bodies, the only error format the API uses. */
#ifndef SMI_STATUS_H
#define SMI_STATUS_H

#include <jansson.h>

/*
 * Serialises {"kind":"Status","apiVersion":"v1","metadata":{},
 * "status":"Failure","message":..,"reason":..,"details":..,"code":..}.
 * `details` is stolen (may be NULL: omitted).  InternalError gets
 * details.causes[{message}] and Timeout an empty details object when the
 * caller gives none, as upstream does.  Returns a malloc'd string.
 */
char *status_json(int code, const char *reason, const char *message, json_t *details);

/* details {name, group, kind}; name may be NULL. */
json_t *status_details(const char *name, const char *group, const char *kind);

#endif

/* status: metav1.Status bodies, keys in the order Go emits them. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

json_t *status_details(const char *name, const char *group, const char *kind)
{
	json_t *d = json_object();
	if (!d)
		return NULL;
	if (name)
		json_object_set_new(d, "name", json_string(name));
	if (group)
		json_object_set_new(d, "group", json_string(group));
	if (kind)
		json_object_set_new(d, "kind", json_string(kind));
	return d;
}

char *status_json(int code, const char *reason, const char *message, json_t *details)
{
	json_t *s = json_object();
	char *out = NULL;
	if (!s)
		goto out;
	json_object_set_new(s, "kind", json_string("Status"));
	json_object_set_new(s, "apiVersion", json_string("v1"));
	json_object_set_new(s, "metadata", json_object());
	json_object_set_new(s, "status", json_string("Failure"));
	json_object_set_new(s, "message", json_string(message));
	if (reason && *reason)
		json_object_set_new(s, "reason", json_string(reason));
	if (!details && strcmp(reason ? reason : "", "InternalError") == 0) {
		details = json_pack("{s:[{s:s}]}", "causes", "message", message);
	} else if (!details && strcmp(reason ? reason : "", "Timeout") == 0) {
		details = json_object();
	}
	if (details) {
		json_object_set_new(s, "details", details);
		details = NULL;
	}
	json_object_set_new(s, "code", json_integer(code));
	out = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(details);
	json_decref(s);
	return out;
}

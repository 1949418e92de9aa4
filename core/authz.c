/* authz: request attributes, SubjectAccessReview with an allow/deny cache
 * (single-flight; key = the whole spec JSON), and the 403 message.  Cached
 * bodies are "A<reason>" or "D<reason>"; failed reviews are shared with
 * waiters but never stored. */
#include "authz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "status.h"

#define SAR_CACHE_ENTRIES        8192
#define SAR_CACHE_MAX_ATTR_BYTES 10000 /* bigger requests are not cached (upstream) */

struct authz {
	kube_client *kube;
	bool webhook;
	cache *reviews;
	double allow_ttl, deny_ttl; /* seconds */
	char *const *allow_paths;
	char *const *allow_groups;
};

/* ---- attributes ---- */

static bool is_false_value(const char *v)
{
	return strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0;
}

/* fieldSelector "metadata.name=<n>" (or "=="), alone or among other
 * terms: upstream's RequiresExactMatch.  Escaped selectors are left out. */
static void field_selector_name(const char *selector, char *out, size_t out_size)
{
	out[0] = '\0';
	if (strchr(selector, '\\'))
		return;
	for (const char *term = selector; *term;) {
		size_t len = strcspn(term, ",");
		const char *eq = memchr(term, '=', len);
		if (eq && (size_t)(eq - term) == 13 && strncmp(term, "metadata.name", 13) == 0) {
			const char *value = eq + 1;
			if (*value == '=')
				value++;
			size_t vlen = (size_t)(term + len - value);
			if (vlen < out_size && *value != '=') {
				memcpy(out, value, vlen);
				out[vlen] = '\0';
			}
		}
		term += len;
		if (*term == ',')
			term++;
	}
	/* path.IsValidPathSegmentName */
	if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0 || strpbrk(out, "/%"))
		out[0] = '\0';
}

static const char *query_value(const route_param *params, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(params[i].key, key) == 0)
			return params[i].value ? params[i].value : "";
	return NULL;
}

void authz_attributes_from_request(const char *method, const char *path, const route_param *params,
                                   size_t n_params, authz_attributes *out)
{
	static const char empty[] = "";
	memset(out, 0, sizeof *out);
	out->namespace_name = out->group = out->version = out->resource = out->subresource =
	    out->name = empty;
	size_t path_len = strlen(path);
	if (path_len >= sizeof out->path) {
		out->too_long = true;
		return;
	}
	memcpy(out->path, path, path_len + 1);
	/* Non-resource verb: the lower-cased method. */
	size_t m = 0;
	for (; method[m] && m + 1 < sizeof out->verb; m++)
		out->verb[m] =
		    (method[m] >= 'A' && method[m] <= 'Z') ? (char)(method[m] + 32) : method[m];
	out->verb[m] = '\0';

	/* splitPath: trim "/" at both ends, split on "/". */
	memcpy(out->parts, path, path_len + 1);
	char *p = out->parts;
	while (*p == '/')
		p++;
	size_t len = strlen(p);
	while (len && p[len - 1] == '/')
		p[--len] = '\0';
	char *seg[64];
	size_t n = 0;
	for (char *s = p; *s && n < 64;) {
		seg[n++] = s;
		char *slash = strchr(s, '/');
		if (!slash)
			break;
		*slash = '\0';
		s = slash + 1;
	}
	if (n < 3 || (strcmp(seg[0], "api") != 0 && strcmp(seg[0], "apis") != 0))
		return; /* non-resource */
	size_t i = 1;
	if (strcmp(seg[0], "apis") == 0) {
		if (n - i < 3)
			return; /* /apis/<group>/<version> alone is non-resource */
		out->group = seg[i++];
	}
	out->resource_request = true;
	out->version = seg[i++];
	bool verb_from_method = false;
	if (strcmp(seg[i], "watch") == 0 || strcmp(seg[i], "proxy") == 0) {
		if (n - i < 2) {
			/* upstream errors ("unable to determine kind"); treat as
			 * non-resource so the review still names the path */
			out->resource_request = false;
			out->group = out->version = empty;
			return;
		}
		snprintf(out->verb, sizeof out->verb, "%s", seg[i++]);
	} else {
		verb_from_method = true;
		const char *verb = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? "get"
		                   : strcmp(method, "POST") == 0   ? "create"
		                   : strcmp(method, "PUT") == 0    ? "update"
		                   : strcmp(method, "PATCH") == 0  ? "patch"
		                   : strcmp(method, "DELETE") == 0 ? "delete"
		                                                   : "";
		snprintf(out->verb, sizeof out->verb, "%s", verb);
	}
	if (strcmp(seg[i], "namespaces") == 0) {
		if (n - i > 1) {
			out->namespace_name = seg[i + 1];
			/* namespaces/<ns>/<x> shifts to <x> unless a namespace
			 * subresource: the reason namespace edges parse as
			 * resource "edges" */
			if (n - i > 2 && strcmp(seg[i + 2], "status") != 0 &&
			    strcmp(seg[i + 2], "finalize") != 0)
				i += 2;
		}
	}
	size_t parts = n - i;
	if (parts >= 3 && strcmp(out->verb, "proxy") != 0)
		out->subresource = seg[i + 2];
	if (parts >= 2)
		out->name = seg[i + 1];
	if (parts >= 1)
		out->resource = seg[i];

	if (!*out->name && strcmp(out->verb, "get") == 0) {
		const char *watch = query_value(params, n_params, "watch");
		snprintf(out->verb, sizeof out->verb, "%s",
		         watch && !is_false_value(watch) ? "watch" : "list");
		const char *selector = query_value(params, n_params, "fieldSelector");
		if (selector) {
			field_selector_name(selector, out->field_name, sizeof out->field_name);
			if (*out->field_name)
				out->name = out->field_name;
		}
	}
	if (!*out->name && verb_from_method && strcmp(out->verb, "delete") == 0)
		snprintf(out->verb, sizeof out->verb, "deletecollection");
}

/* ---- SubjectAccessReview ---- */

static void set_nonempty(json_t *obj, const char *key, const char *value)
{
	if (value && *value)
		json_object_set_new(obj, key, json_string(value));
}

static int compare_extra(const void *a, const void *b)
{
	return strcmp(((const identity_extra *const *)a)[0]->key,
	              ((const identity_extra *const *)b)[0]->key);
}

char *authz_sar_spec_json(const identity *id, const authz_attributes *at)
{
	json_t *spec = json_object();
	char *out = NULL;
	const identity_extra **sorted = NULL;
	if (!spec)
		return NULL;
	if (at->resource_request) {
		json_t *ra = json_object();
		set_nonempty(ra, "namespace", at->namespace_name);
		set_nonempty(ra, "verb", at->verb);
		set_nonempty(ra, "group", at->group);
		set_nonempty(ra, "version", at->version);
		set_nonempty(ra, "resource", at->resource);
		set_nonempty(ra, "subresource", at->subresource);
		set_nonempty(ra, "name", at->name);
		json_object_set_new(spec, "resourceAttributes", ra);
	} else {
		json_t *na = json_object();
		set_nonempty(na, "path", at->path);
		set_nonempty(na, "verb", at->verb);
		json_object_set_new(spec, "nonResourceAttributes", na);
	}
	set_nonempty(spec, "user", id->user);
	if (id->n_groups) {
		json_t *groups = json_array();
		for (size_t i = 0; i < id->n_groups; i++)
			json_array_append_new(groups, json_string(id->groups[i]));
		json_object_set_new(spec, "groups", groups);
	}
	if (id->n_extra) {
		/* Go's encoder sorts map keys. */
		sorted = malloc(id->n_extra * sizeof *sorted);
		if (!sorted)
			goto out;
		for (size_t i = 0; i < id->n_extra; i++)
			sorted[i] = &id->extra[i];
		qsort(sorted, id->n_extra, sizeof *sorted, compare_extra);
		json_t *extra = json_object();
		for (size_t i = 0; i < id->n_extra; i++) {
			json_t *values = json_array();
			for (size_t j = 0; j < sorted[i]->n_values; j++)
				json_array_append_new(values, json_string(sorted[i]->values[j]));
			json_object_set_new(extra, sorted[i]->key, values);
		}
		json_object_set_new(spec, "extra", extra);
	}
	set_nonempty(spec, "uid", id->uid);
	out = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	free(sorted);
	json_decref(spec);
	return out;
}

char *authz_sar_body(const char *spec_json)
{
	const char head[] = "{\"apiVersion\":\"authorization.k8s.io/"
	                    "v1\",\"kind\":\"SubjectAccessReview\",\"spec\":";
	size_t n = sizeof head + strlen(spec_json) + 2;
	char *body = malloc(n);
	if (body)
		snprintf(body, n, "%s%s}", head, spec_json);
	return body;
}

int authz_parse_sar(const char *body, authz_decision *decision, char *reason, size_t reason_size)
{
	json_error_t jerr;
	json_t *doc = json_loads(body, 0, &jerr);
	json_t *status = json_object_get(doc, "status");
	int rc = -1;
	reason[0] = '\0';
	if (json_is_object(status)) {
		bool allowed = json_is_true(json_object_get(status, "allowed"));
		bool denied = json_is_true(json_object_get(status, "denied"));
		const char *why = json_string_value(json_object_get(status, "reason"));
		const char *evaluation =
		    json_string_value(json_object_get(status, "evaluationError"));
		snprintf(reason, reason_size, "%s", why ? why : "");
		if (evaluation && *evaluation)
			log_msg(LOG_DEBUG, "SubjectAccessReview evaluationError: %s", evaluation);
		if (allowed && denied)
			log_msg(
			    LOG_WARN,
			    "SubjectAccessReview returned both allow and deny response; denying");
		/* Neither = RBAC's no opinion: we are last in the chain, so deny. */
		*decision = allowed && !denied ? AUTHZ_ALLOW : AUTHZ_DENY;
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One review.  Returns the cache code: 200 with "A<reason>"/"D<reason>",
 * or 500 with the failure. */
static int review(authz *z, const char *spec, char **body_out)
{
	char why[512] = "";
	char *body = authz_sar_body(spec);
	kube_response res = {0};
	int code = 500;
	authz_decision d;
	char reason[1024];
	if (!body) {
		snprintf(why, sizeof why, "out of memory");
	} else if (kube_call(z->kube, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
	                     body, &res, why, sizeof why) != 0) {
		/* why is set */
	} else if (res.code != 200 && res.code != 201) {
		snprintf(why, sizeof why, "SubjectAccessReview: HTTP %ld", res.code);
	} else if (authz_parse_sar(res.body, &d, reason, sizeof reason) != 0) {
		snprintf(why, sizeof why, "SubjectAccessReview: unparsable answer");
	} else {
		size_t n = strlen(reason) + 2;
		*body_out = malloc(n);
		if (*body_out) {
			snprintf(*body_out, n, "%c%s", d == AUTHZ_ALLOW ? 'A' : 'D', reason);
			code = 200;
		}
	}
	free(body);
	kube_response_clear(&res);
	if (code != 200)
		*body_out = strdup(why);
	return code;
}

bool authz_always_allowed_path(const authz *z, const authz_attributes *at)
{
	if (at->resource_request)
		return false;
	const char *path = at->path[0] == '/' ? at->path + 1 : at->path;
	for (size_t i = 0; z->allow_paths[i]; i++) {
		const char *p =
		    z->allow_paths[i][0] == '/' ? z->allow_paths[i] + 1 : z->allow_paths[i];
		size_t len = strlen(p);
		if (len && p[len - 1] == '*' ? strncmp(path, p, len - 1) == 0
		                             : strcmp(path, p) == 0)
			return true;
	}
	return false;
}

static size_t attribute_bytes(const authz_attributes *at)
{
	return strlen(at->namespace_name) + strlen(at->verb) + strlen(at->group) +
	       strlen(at->version) + strlen(at->resource) + strlen(at->subresource) +
	       strlen(at->name) + (at->resource_request ? 0 : strlen(at->path));
}

authz_decision authz_authorize(authz *z, const identity *id, const authz_attributes *at,
                               char *reason, size_t reason_size)
{
	reason[0] = '\0';
	for (size_t i = 0; z->allow_groups[i]; i++) {
		if (identity_has_group(id, z->allow_groups[i])) {
			snprintf(reason, reason_size, "always allowed group %s",
			         z->allow_groups[i]);
			return AUTHZ_ALLOW;
		}
	}
	if (authz_always_allowed_path(z, at)) {
		snprintf(reason, reason_size, "always allowed path");
		return AUTHZ_ALLOW;
	}
	if (!z->webhook) {
		snprintf(reason, reason_size, "AlwaysAllow");
		return AUTHZ_ALLOW;
	}
	char *spec = authz_sar_spec_json(id, at);
	if (!spec) {
		snprintf(reason, reason_size, "out of memory");
		return AUTHZ_ERROR;
	}
	cache_answer answer = {0};
	cache_flight *flight = NULL;
	bool cacheable = attribute_bytes(at) <= SAR_CACHE_MAX_ATTR_BYTES;
	if (!cacheable ||
	    cache_begin(z->reviews, spec, monotonic_seconds(), &answer, &flight) == CACHE_LEADER) {
		answer.code = review(z, spec, &answer.body);
		answer.body_len = answer.body ? strlen(answer.body) : 0;
		double ttl = answer.body && answer.body[0] == 'A' ? z->allow_ttl : z->deny_ttl;
		if (flight)
			cache_complete(z->reviews, flight, answer.code,
			               answer.body ? answer.body : "", answer.body_len,
			               monotonic_seconds(), ttl);
	}
	free(spec);
	authz_decision d = AUTHZ_ERROR;
	if (answer.code == 200 && answer.body && (answer.body[0] == 'A' || answer.body[0] == 'D')) {
		d = answer.body[0] == 'A' ? AUTHZ_ALLOW : AUTHZ_DENY;
		snprintf(reason, reason_size, "%s", answer.body + 1);
	} else {
		snprintf(reason, reason_size, "%s",
		         answer.body ? answer.body : "SubjectAccessReview failed");
	}
	free(answer.body);
	return d;
}

/* ---- 403 ---- */

/* Go's %q for the strings that appear in the message. */
static void go_quote(const char *in, char *out, size_t out_size)
{
	size_t o = 0;
	if (out_size < 3)
		return;
	out[o++] = '"';
	for (; *in && o + 6 < out_size; in++) {
		unsigned char c = (unsigned char)*in;
		const char *esc = c == '"'    ? "\\\""
		                  : c == '\\' ? "\\\\"
		                  : c == '\n' ? "\\n"
		                  : c == '\t' ? "\\t"
		                  : c == '\r' ? "\\r"
		                              : NULL;
		if (esc) {
			o += (size_t)snprintf(out + o, out_size - o, "%s", esc);
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* upstream's sanitizer: & < > as HTML entities. */
static void html_escape(const char *in, char *out, size_t out_size)
{
	size_t o = 0;
	for (; *in && o + 6 < out_size; in++) {
		const char *esc = *in == '&'   ? "&amp;"
		                  : *in == '<' ? "&lt;"
		                  : *in == '>' ? "&gt;"
		                               : NULL;
		if (esc)
			o += (size_t)snprintf(out + o, out_size - o, "%s", esc);
		else
			out[o++] = *in;
	}
	out[o] = '\0';
}

/* upstream forbiddenMessage(): who cannot do what, before escaping. */
static void forbidden_what(const identity *id, const authz_attributes *at, char *out,
                           size_t out_size)
{
	char user[600];
	go_quote(id->user ? id->user : "", user, sizeof user);
	if (!at->resource_request) {
		char path[AUTHZ_PATH_MAX + 64];
		go_quote(at->path, path, sizeof path);
		snprintf(out, out_size, "User %s cannot %s path %s", user, at->verb, path);
		return;
	}
	char full[600], resource[700], group[600];
	snprintf(full, sizeof full, "%s%s%s", at->resource, *at->subresource ? "/" : "",
	         at->subresource);
	go_quote(full, resource, sizeof resource);
	go_quote(at->group, group, sizeof group);
	if (*at->namespace_name) {
		char ns[600];
		go_quote(at->namespace_name, ns, sizeof ns);
		snprintf(out, out_size,
		         "User %s cannot %s resource %s in API group %s in the namespace %s", user,
		         at->verb, resource, group, ns);
	} else {
		snprintf(out, out_size,
		         "User %s cannot %s resource %s in API group %s at the cluster scope", user,
		         at->verb, resource, group);
	}
}

char *authz_forbidden_status(const identity *id, const authz_attributes *at, const char *reason)
{
	char what[AUTHZ_PATH_MAX + 2048], escaped[2 * AUTHZ_PATH_MAX + 4096];
	char err_text[sizeof escaped + 1100], message[sizeof err_text + 1300];
	forbidden_what(id, at, what, sizeof what);
	html_escape(what, escaped, sizeof escaped);
	snprintf(err_text, sizeof err_text, "%s%s%.1024s", escaped, reason && *reason ? ": " : "",
	         reason ? reason : "");
	/* apierrors.NewForbidden(GroupResource{group, resource}, name, err) */
	const char *res = at->resource_request ? at->resource : "";
	const char *grp = at->resource_request ? at->group : "";
	char qualified[600];
	snprintf(qualified, sizeof qualified, "%s%s%s", res, *grp ? "." : "", grp);
	if (!*res && !*grp) {
		snprintf(message, sizeof message, "forbidden: %s", err_text);
	} else if (!*at->name) {
		snprintf(message, sizeof message, "%s is forbidden: %s", qualified, err_text);
	} else {
		char name[600];
		go_quote(at->name, name, sizeof name);
		snprintf(message, sizeof message, "%s %s is forbidden: %s", qualified, name,
		         err_text);
	}
	json_t *details = status_details(*at->name && at->resource_request ? at->name : NULL,
	                                 *grp ? grp : NULL, *res ? res : NULL);
	return status_json(403, "Forbidden", message, details);
}

/* ---- lifecycle ---- */

authz *authz_new(const config *cfg, kube_client *kube)
{
	authz *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	z->kube = kube;
	z->webhook = cfg->authorization.webhook && kube != NULL;
	z->allow_ttl = cfg->authorization.allow_ttl_ms / 1000.0;
	z->deny_ttl = cfg->authorization.deny_ttl_ms / 1000.0;
	z->allow_paths = cfg->authorization.always_allow_paths;
	z->allow_groups = cfg->authorization.always_allow_groups;
	bool caching = cfg->authorization.allow_ttl_ms || cfg->authorization.deny_ttl_ms;
	z->reviews = cache_new(caching ? SAR_CACHE_ENTRIES : 0);
	if (!z->reviews) {
		free(z);
		return NULL;
	}
	return z;
}

void authz_free(authz *z)
{
	if (!z)
		return;
	cache_free(z->reviews);
	free(z);
}

void authz_cache_stats(authz *z, cache_stats *out)
{
	cache_get_stats(z->reviews, out);
}

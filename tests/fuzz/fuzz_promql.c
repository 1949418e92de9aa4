/* fuzz_promql: promql_render() and promql_check_template() with fuzzed
 * template text and a fuzzed request, the one path by which request values
 * reach PromQL.
 *
 * Input: a 5-byte header, then NUL-separated fields:
 *   kind (mod 8), scope (mod 4), mode, window (uint16, little endian),
 *   namespace \0 name [\0 self_ns_label \0 self_name_label \0 peer_ns_label
 *   \0 peer_name_label] \0 template
 * mode bit 0 (raw): the values go in as they are, structurally valid (a
 *   namespace exactly where adapter.h says there is one) but with any bytes:
 *   the renderer's own quoting is the wall.  Otherwise the request is what
 *   the router makes of the path built from the fields, or nothing.
 * mode bit 1: the four side labels come from the input (else from the
 *   Linkerd adapter's plan, query (mode >> 2) % 8 of it).
 * mode bit 5: the adapter is opened with failureStatus: 4xx,5xx.
 *
 * Checked, independently of promql.c: the template is accepted exactly
 * when its {{...}} are all known placeholders and braces balance; it
 * renders exactly when each placeholder can be filled; the output is the
 * template's text with each placeholder replaced by its documented
 * expansion, in which every request value is one double-quoted PromQL
 * literal that unescapes to exactly that value (no raw quote, backslash or
 * newline escapes it) and every label name is a valid one. */
#include "fuzz_common.h"
#include "fuzz_adapter.h"

#include "kinds.h"
#include "promql.h"
#include "router.h"

#define MODE_RAW             0x1
#define MODE_LABELS          0x2
#define MODE_QUERY_SHIFT     2
#define MODE_QUERY_MASK      0x7
#define MODE_FAILURE_4XX_5XX 0x20

#define FUZZ_HEADER_SIZE 5

typedef enum placeholder {
	PH_WINDOW,
	PH_NAMESPACE,
	PH_NAME,
	PH_TARGET,
	PH_PEER_TARGET,
	PH_GROUP_BY,
	PH_PEER_GROUP_BY,
	PH_NAME_LABEL,
	PH_PEER_NAME_LABEL,
	PH_COUNT
} placeholder;

/* adapter.h's list of placeholders. */
static const char *const placeholder_names[PH_COUNT] = {
    "window",   "namespace",     "name",       "target",          "peer_target",
    "group_by", "peer_group_by", "name_label", "peer_name_label",
};

/* Template text between placeholders, and the placeholders, in order. */
#define FUZZ_MAX_PARTS 256
typedef struct template_parts {
	const char *text[FUZZ_MAX_PARTS + 1];
	size_t text_len[FUZZ_MAX_PARTS + 1];
	placeholder ph[FUZZ_MAX_PARTS];
	size_t n_ph;
} template_parts;

/* Splits a template by the grammar of adapter.h and promql.h: "{{ name }}"
 * with blanks trimmed, a "}}" before any "{{" is unbalanced, a "{{" needs
 * its "}}".  False when the template must be refused (or has more parts
 * than this harness tracks: *too_many). */
static bool split_template(const char *text, template_parts *parts, bool *too_many)
{
	const char *p = text;

	parts->n_ph = 0;
	*too_many = false;
	for (;;) {
		const char *open = strstr(p, "{{");
		const char *stray = strstr(p, "}}");
		if (stray && (!open || stray < open))
			return false;
		parts->text[parts->n_ph] = p;
		if (!open) {
			parts->text_len[parts->n_ph] = strlen(p);
			return true;
		}
		parts->text_len[parts->n_ph] = (size_t)(open - p);
		const char *close = strstr(open + 2, "}}");
		if (!close)
			return false;
		const char *name = open + 2;
		size_t len = (size_t)(close - name);
		while (len && *name == ' ')
			name++, len--;
		while (len && name[len - 1] == ' ')
			len--;
		int found = -1;
		for (int i = 0; i < PH_COUNT; i++)
			if (strlen(placeholder_names[i]) == len &&
			    memcmp(placeholder_names[i], name, len) == 0)
				found = i;
		if (found < 0)
			return false;
		if (parts->n_ph == FUZZ_MAX_PARTS) {
			*too_many = true;
			return false;
		}
		parts->ph[parts->n_ph++] = (placeholder)found;
		p = close + 2;
	}
}

/* The PromQL label-name rule of promql.h, written out again. */
static bool reference_label_name(const char *name)
{
	if (!name || !name[0] || (name[0] == '_' && name[1] == '_'))
		return false;
	for (size_t i = 0; name[i]; i++) {
		char c = name[i];
		bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!letter && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static bool one_resource(const smi_request *req)
{
	return req->scope == SMI_SCOPE_OBJECT || req->scope == SMI_SCOPE_EDGES;
}

/* Whether the request and spec can fill the placeholder (adapter.h). */
static bool fillable(placeholder ph, const smi_query_spec *spec, const smi_request *req)
{
	bool peer = ph == PH_PEER_TARGET || ph == PH_PEER_GROUP_BY || ph == PH_PEER_NAME_LABEL;
	const smi_side_labels *side = peer ? &spec->peer : &spec->self;

	switch (ph) {
	case PH_WINDOW: return true;
	case PH_NAMESPACE: return req->namespace_name != NULL;
	case PH_NAME: return req->name != NULL;
	case PH_TARGET:
	case PH_PEER_TARGET:
	case PH_GROUP_BY:
	case PH_PEER_GROUP_BY:
		/* Both labels, but the namespace one only for namespaced kinds. */
		return reference_label_name(side->name_label) &&
		       (req->kind == SMI_KIND_NAMESPACE ||
		        reference_label_name(side->namespace_label));
	case PH_NAME_LABEL:
	case PH_PEER_NAME_LABEL: return reference_label_name(side->name_label);
	case PH_COUNT: break;
	}
	return false;
}

/* Consumes `text` at *out. */
static bool expect_text(const char **out, const char *text, size_t len)
{
	if (strncmp(*out, text, len) != 0)
		return false;
	*out += len;
	return true;
}

/* Consumes one double-quoted PromQL string literal at *out that unescapes
 * to exactly `value`.  The renderer escapes \ " and newline; a raw newline
 * ends a PromQL string with an error, so it must never appear. */
static bool expect_literal(const char **out, const char *value)
{
	const char *p = *out;
	const char *v = value;

	if (*p++ != '"')
		return false;
	for (;;) {
		char c = *p++;
		if (c == '\0' || c == '\n')
			return false;
		if (c == '"')
			break;
		if (c == '\\') {
			char escaped = *p++;
			c = escaped == '\\'  ? '\\'
			    : escaped == '"' ? '"'
			    : escaped == 'n' ? '\n'
			                     : 0;
			if (c == 0)
				return false;
		}
		if (*v++ != c)
			return false;
	}
	if (*v != '\0')
		return false;
	*out = p;
	return true;
}

static bool expect_label(const char **out, const char *label)
{
	return reference_label_name(label) && expect_text(out, label, strlen(label));
}

/* {{target}}: ns_label="ns",name_label="name", or name_label!="" for lists,
 * without the namespace for cluster lists and the Namespace kind. */
static bool expect_target(const char **out, const smi_side_labels *side, const smi_request *req)
{
	if (req->kind != SMI_KIND_NAMESPACE && req->scope != SMI_SCOPE_CLUSTER_LIST) {
		if (!expect_label(out, side->namespace_label) || !expect_text(out, "=", 1) ||
		    !expect_literal(out, req->namespace_name) || !expect_text(out, ",", 1))
			return false;
	}
	if (!expect_label(out, side->name_label))
		return false;
	if (one_resource(req))
		return expect_text(out, "=", 1) && expect_literal(out, req->name);
	return expect_text(out, "!=\"\"", 4);
}

/* {{group_by}}: ns_label,name_label, or name_label alone for the Namespace
 * kind and when both labels are the same. */
static bool expect_group_by(const char **out, const smi_side_labels *side, const smi_request *req)
{
	if (req->kind != SMI_KIND_NAMESPACE &&
	    strcmp(side->namespace_label, side->name_label) != 0) {
		if (!expect_label(out, side->namespace_label) || !expect_text(out, ",", 1))
			return false;
	}
	return expect_label(out, side->name_label);
}

static bool expect_expansion(const char **out, placeholder ph, const smi_query_spec *spec,
                             const smi_request *req)
{
	char window[16];

	switch (ph) {
	case PH_WINDOW:
		snprintf(window, sizeof window, "%us", req->window_seconds);
		return expect_text(out, window, strlen(window));
	case PH_NAMESPACE: return expect_literal(out, req->namespace_name);
	case PH_NAME: return expect_literal(out, req->name);
	case PH_TARGET: return expect_target(out, &spec->self, req);
	case PH_PEER_TARGET: return expect_target(out, &spec->peer, req);
	case PH_GROUP_BY: return expect_group_by(out, &spec->self, req);
	case PH_PEER_GROUP_BY: return expect_group_by(out, &spec->peer, req);
	case PH_NAME_LABEL: return expect_label(out, spec->self.name_label);
	case PH_PEER_NAME_LABEL: return expect_label(out, spec->peer.name_label);
	case PH_COUNT: break;
	}
	return false;
}

static void check_output(const char *output, const template_parts *parts,
                         const smi_query_spec *spec, const smi_request *req)
{
	const char *out = output;

	for (size_t i = 0; i <= parts->n_ph; i++) {
		FUZZ_CHECK(expect_text(&out, parts->text[i], parts->text_len[i]),
		           "template text %zu missing at offset %zu of: %s", i,
		           (size_t)(out - output), output);
		if (i == parts->n_ph)
			break;
		FUZZ_CHECK(expect_expansion(&out, parts->ph[i], spec, req),
		           "{{%s}} badly expanded at offset %zu of: %s",
		           placeholder_names[parts->ph[i]], (size_t)(out - output), output);
	}
	FUZZ_CHECK(*out == '\0', "trailing output at offset %zu of: %s", (size_t)(out - output),
	           output);
}

/* The request the router makes of a path built from the fields, as the
 * server would see it; false when the router refuses it. */
static bool routed_request(smi_kind kind, smi_scope scope, const char *ns, const char *name,
                           uint32_t window_seconds, route *r)
{
	static const route_limits limits = {
	    .window_default_seconds = 30,
	    .window_min_seconds = 10,
	    .window_max_seconds = 86400,
	    .supported_kinds = (UINT64_C(1) << SMI_KIND_COUNT_V1) - 1,
	};
	const char *plural = kind_info_of(kind)->plural;
	char path[1200], t[16];
	int n;

	if (scope == SMI_SCOPE_CLUSTER_LIST)
		n = snprintf(path, sizeof path, API_PREFIX "/%s", plural);
	else if (scope == SMI_SCOPE_NAMESPACE_LIST)
		n = snprintf(path, sizeof path, API_PREFIX "/namespaces/%s/%s", ns, plural);
	else if (kind == SMI_KIND_NAMESPACE)
		n = snprintf(path, sizeof path, API_PREFIX "/namespaces/%s%s", name,
		             scope == SMI_SCOPE_EDGES ? "/edges" : "");
	else
		n = snprintf(path, sizeof path, API_PREFIX "/namespaces/%s/%s/%s%s", ns, plural,
		             name, scope == SMI_SCOPE_EDGES ? "/edges" : "");
	if (n < 0 || (size_t)n >= sizeof path)
		return false;
	snprintf(t, sizeof t, "%us", window_seconds);
	route_param param = {"t", t};
	router_route("GET", path, &param, 1, &limits, r);
	return r->type == ROUTE_METRICS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = NULL;
	char *fields[7];
	char err[256];
	route r;
	smi_request req;
	smi_query_spec spec;
	template_parts parts;
	bool too_many;

	if (size < FUZZ_HEADER_SIZE || size > 8192)
		return 0;
	smi_kind kind = (smi_kind)(data[0] % SMI_KIND_COUNT_V1);
	smi_scope scope = (smi_scope)(data[1] % 4);
	unsigned mode = data[2];
	uint32_t window = (uint32_t)data[3] | (uint32_t)data[4] << 8;
	size_t want = mode & MODE_LABELS ? 7 : 3;
	size_t n = fuzz_split_fields(data + FUZZ_HEADER_SIZE, size - FUZZ_HEADER_SIZE, &copy,
	                             fields, want);
	if (n < want)
		goto out;
	const char *template_text = fields[want - 1];

	if (mode & MODE_RAW) {
		/* adapter.h: a namespace exactly for namespaced, non-cluster
		 * questions; a name exactly for one resource. */
		req = (smi_request){
		    .struct_size = sizeof req,
		    .kind = kind,
		    .scope = scope,
		    .namespace_name = kind != SMI_KIND_NAMESPACE && scope != SMI_SCOPE_CLUSTER_LIST
		                          ? fields[0]
		                          : NULL,
		    .name =
		        scope == SMI_SCOPE_OBJECT || scope == SMI_SCOPE_EDGES ? fields[1] : NULL,
		    .window_seconds = window,
		};
	} else {
		if (!routed_request(kind, scope, fields[0], fields[1], 10 + window, &r))
			goto out;
		req = r.request;
	}

	if (mode & MODE_LABELS) {
		spec = (smi_query_spec){
		    .struct_size = sizeof spec,
		    .template_id = "fuzz",
		    .self = {fields[2], fields[3]},
		    .peer = {fields[4], fields[5]},
		    .latency_to_ms = 1.0,
		};
	} else {
		smi_host host;
		void *state = NULL;
		smi_plan plan = {.struct_size = sizeof plan};
		const smi_adapter_descriptor *linkerd = fuzz_adapter_open(
		    &host, mode & MODE_FAILURE_4XX_5XX ? "4xx,5xx" : NULL, &state);
		FUZZ_CHECK(linkerd != NULL, "the Linkerd adapter did not open");
		smi_status planned = linkerd->plan(state, &req, &plan);
		linkerd->close(state);
		if (planned != SMI_OK || plan.n_queries == 0)
			goto out;
		spec =
		    plan.queries[((mode >> MODE_QUERY_SHIFT) & MODE_QUERY_MASK) % plan.n_queries];
	}

	bool well_formed = split_template(template_text, &parts, &too_many);
	if (too_many)
		goto out;
	err[0] = '\0';
	bool checked = promql_check_template(template_text, err, sizeof err);
	FUZZ_CHECK(checked == well_formed, "check_template %s \"%s\" (%s)",
	           checked ? "accepted" : "refused", template_text, err);
	if (!checked)
		FUZZ_CHECK(err[0] != '\0', "refused without a message");

	bool can_fill = well_formed;
	for (size_t i = 0; can_fill && i < parts.n_ph; i++)
		can_fill = fillable(parts.ph[i], &spec, &req);
	err[0] = '\0';
	char *output = promql_render(template_text, &spec, &req, err, sizeof err);
	FUZZ_CHECK((output != NULL) == can_fill, "render %s \"%s\" (%s)",
	           output ? "accepted" : "refused", template_text, err);
	if (output)
		check_output(output, &parts, &spec, &req);
	else
		FUZZ_CHECK(err[0] != '\0', "render refused without a message");
	free(output);
out:
	free(copy);
	return 0;
}

/* promql: template filling.  Values are quoted as PromQL double-quoted
 * string literals (backslash, quote and newline escaped), although the
 * router only lets DNS-1123 names through: two independent walls. */
#include "promql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strbuf {
	char *data;
	size_t len, cap;
	bool failed;
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n)
{
	if (sb->failed)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 256;
		while (cap < sb->len + n + 1)
			cap *= 2;
		char *p = realloc(sb->data, cap);
		if (!p) {
			sb->failed = true;
			return;
		}
		sb->data = p;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

static void sb_quote(strbuf *sb, const char *value)
{
	sb_puts(sb, "\"");
	for (const char *p = value; *p; p++) {
		switch (*p) {
		case '\\': sb_puts(sb, "\\\\"); break;
		case '"': sb_puts(sb, "\\\""); break;
		case '\n': sb_puts(sb, "\\n"); break;
		default: sb_append(sb, p, 1);
		}
	}
	sb_puts(sb, "\"");
}

bool promql_valid_label_name(const char *name)
{
	if (!name || !*name || strncmp(name, "__", 2) == 0)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (p != name && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

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

static const char *const placeholder_names[PH_COUNT] = {
    "window",   "namespace",     "name",       "target",          "peer_target",
    "group_by", "peer_group_by", "name_label", "peer_name_label",
};

static int placeholder_lookup(const char *s, size_t len)
{
	for (int i = 0; i < PH_COUNT; i++)
		if (strlen(placeholder_names[i]) == len &&
		    memcmp(placeholder_names[i], s, len) == 0)
			return i;
	return -1;
}

static void fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* Matchers selecting the request's resource(s) on one side; see adapter.h. */
static bool emit_target(strbuf *sb, const smi_side_labels *side, const smi_request *req, char *err,
                        size_t err_size)
{
	if (!promql_valid_label_name(side->name_label) ||
	    (req->kind != SMI_KIND_NAMESPACE && !promql_valid_label_name(side->namespace_label))) {
		fail(err, err_size, "side labels are missing or not valid label names");
		return false;
	}
	bool one = req->scope == SMI_SCOPE_OBJECT || req->scope == SMI_SCOPE_EDGES;
	if (req->kind == SMI_KIND_NAMESPACE) {
		sb_puts(sb, side->name_label);
		if (one) {
			sb_puts(sb, "=");
			sb_quote(sb, req->name);
		} else {
			sb_puts(sb, "!=\"\"");
		}
		return true;
	}
	if (req->scope != SMI_SCOPE_CLUSTER_LIST) {
		sb_puts(sb, side->namespace_label);
		sb_puts(sb, "=");
		sb_quote(sb, req->namespace_name);
		sb_puts(sb, ",");
	}
	sb_puts(sb, side->name_label);
	if (one) {
		sb_puts(sb, "=");
		sb_quote(sb, req->name);
	} else {
		sb_puts(sb, "!=\"\"");
	}
	return true;
}

static bool emit_group_by(strbuf *sb, const smi_side_labels *side, const smi_request *req,
                          char *err, size_t err_size)
{
	if (!promql_valid_label_name(side->name_label)) {
		fail(err, err_size, "side labels are missing or not valid label names");
		return false;
	}
	if (req->kind != SMI_KIND_NAMESPACE && !promql_valid_label_name(side->namespace_label)) {
		fail(err, err_size, "side labels are missing or not valid label names");
		return false;
	}
	bool with_ns =
	    req->kind != SMI_KIND_NAMESPACE && strcmp(side->namespace_label, side->name_label) != 0;
	if (with_ns) {
		sb_puts(sb, side->namespace_label);
		sb_puts(sb, ",");
	}
	sb_puts(sb, side->name_label);
	return true;
}

static bool emit_placeholder(strbuf *sb, placeholder ph, const smi_query_spec *spec,
                             const smi_request *req, char *err, size_t err_size)
{
	char window[24];
	switch (ph) {
	case PH_WINDOW:
		snprintf(window, sizeof window, "%us", req->window_seconds);
		sb_puts(sb, window);
		return true;
	case PH_NAMESPACE:
		if (!req->namespace_name) {
			fail(err, err_size,
			     "{{namespace}} used, but this request has no namespace");
			return false;
		}
		sb_quote(sb, req->namespace_name);
		return true;
	case PH_NAME:
		if (!req->name) {
			fail(err, err_size, "{{name}} used, but this request names no resource");
			return false;
		}
		sb_quote(sb, req->name);
		return true;
	case PH_TARGET: return emit_target(sb, &spec->self, req, err, err_size);
	case PH_PEER_TARGET: return emit_target(sb, &spec->peer, req, err, err_size);
	case PH_GROUP_BY: return emit_group_by(sb, &spec->self, req, err, err_size);
	case PH_PEER_GROUP_BY: return emit_group_by(sb, &spec->peer, req, err, err_size);
	case PH_NAME_LABEL:
	case PH_PEER_NAME_LABEL: {
		const char *label =
		    ph == PH_NAME_LABEL ? spec->self.name_label : spec->peer.name_label;
		if (!promql_valid_label_name(label)) {
			fail(err, err_size, "{{%s}} is not a valid label name",
			     placeholder_names[ph]);
			return false;
		}
		sb_puts(sb, label);
		return true;
	}
	case PH_COUNT: break;
	}
	return false;
}

/* Walks the template; with sb == NULL only checks it. */
static bool walk(const char *text, strbuf *sb, const smi_query_spec *spec, const smi_request *req,
                 char *err, size_t err_size)
{
	const char *p = text;
	while (*p) {
		const char *open = strstr(p, "{{");
		const char *stray = strstr(p, "}}");
		if (stray && (!open || stray < open)) {
			fail(err, err_size, "unbalanced '}}' at offset %zu",
			     (size_t)(stray - text));
			return false;
		}
		if (!open) {
			if (sb)
				sb_puts(sb, p);
			return true;
		}
		if (sb)
			sb_append(sb, p, (size_t)(open - p));
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			fail(err, err_size, "unterminated '{{' at offset %zu",
			     (size_t)(open - text));
			return false;
		}
		const char *name = open + 2;
		size_t len = (size_t)(close - name);
		while (len && *name == ' ')
			name++, len--;
		while (len && name[len - 1] == ' ')
			len--;
		int ph = placeholder_lookup(name, len);
		if (ph < 0) {
			fail(err, err_size, "unknown placeholder {{%.*s}}",
			     (int)(len > 40 ? 40 : len), name);
			return false;
		}
		if (sb && !emit_placeholder(sb, (placeholder)ph, spec, req, err, err_size))
			return false;
		p = close + 2;
	}
	return true;
}

bool promql_check_template(const char *template_text, char *err, size_t err_size)
{
	return walk(template_text, NULL, NULL, NULL, err, err_size);
}

char *promql_render(const char *template_text, const smi_query_spec *spec,
                    const smi_request *request, char *err, size_t err_size)
{
	strbuf sb = {0};
	if (!walk(template_text, &sb, spec, request, err, err_size) || sb.failed) {
		if (sb.failed)
			fail(err, err_size, "out of memory rendering a query");
		free(sb.data);
		return NULL;
	}
	if (!sb.data)
		sb_puts(&sb, "");
	return sb.data;
}

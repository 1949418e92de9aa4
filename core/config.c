/* config: reads the YAML (or JSON) configuration file into a small node tree
 * that remembers lines, then checks it against the schema into a snapshot. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "duration.h"
#include "log.h"
#include "prom.h"

/* Bigger files are refused before parsing: a config is a few kilobytes. */
#define CONFIG_MAX_BYTES (1024 * 1024)
/* The schema is three levels deep; this bounds recursion on hostile input. */
#define CONFIG_MAX_DEPTH 32
/* Room for a dotted key such as "adapter.queries.<id>" in messages. */
#define CONFIG_PATH_MAX 256

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)

typedef enum node_kind { NODE_SCALAR, NODE_MAPPING, NODE_SEQUENCE } node_kind;

/*
 * One value of the file.  Mapping entries are the children that carry a key;
 * sequence items are children without one.  Lines are 1-based.
 */
struct config_node {
	node_kind kind;
	unsigned line;     /* where the value starts */
	char *key;         /* set when this is the value of a mapping entry */
	unsigned key_line; /* line of that key */
	char *text;        /* scalars only, NUL-free */
	bool quoted;       /* scalar written in any non-plain style: a string */
	bool used;         /* adapter.options entries: looked up by the adapter */
	config_node **children;
	size_t n_children;
	size_t children_capacity; /* doubles, so big option maps stay linear */
};

/* Where messages go: the file name prefixes every one of them. */
typedef struct reporter {
	const char *file;
	char *err;
	size_t err_size;
} reporter;

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* Writes "FILE:LINE: KEY: problem"; line 0 and an empty key are left out.
 * Control characters from the file become '?' so the message stays one
 * line.  Returns false so callers can `return report(...)`. */
__attribute__((format(printf, 4, 5))) static bool report(const reporter *rep, unsigned line,
                                                         const char *key, const char *fmt, ...)
{
	if (rep->err == NULL || rep->err_size == 0)
		return false;
	char problem[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);

	char where[32] = "";
	if (line > 0)
		snprintf(where, sizeof where, ":%u", line);
	bool has_key = key != NULL && key[0] != '\0';
	snprintf(rep->err, rep->err_size, "%s%s: %s%s%s", rep->file, where, has_key ? key : "",
	         has_key ? ": " : "", problem);
	for (char *p = rep->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return false;
}

/* Quotes file text for a message, cut to a readable length on a UTF-8
 * character boundary (libyaml has checked the encoding). */
static const char *quote_text(const char *text, char *buf, size_t buf_size)
{
	size_t cut = strlen(text);
	if (cut <= 40) {
		snprintf(buf, buf_size, "\"%s\"", text);
		return buf;
	}
	cut = 37;
	while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
		cut--;
	snprintf(buf, buf_size, "\"%.*s...\"", (int)cut, text);
	return buf;
}

static bool scalar_is_null(const config_node *node)
{
	if (node->kind != NODE_SCALAR || node->quoted)
		return false;
	return strcmp(node->text, "") == 0 || strcmp(node->text, "~") == 0 ||
	       strcmp(node->text, "null") == 0;
}

/* "a mapping", "null", "a quoted string \"42\"", "\"abc\"": what was found
 * where something else was expected. */
static const char *describe_node(const config_node *node, char *buf, size_t buf_size)
{
	char quoted[64];
	if (node->kind == NODE_MAPPING)
		return "a mapping";
	if (node->kind == NODE_SEQUENCE)
		return "a sequence";
	if (scalar_is_null(node))
		return "null";
	quote_text(node->text, quoted, sizeof quoted);
	snprintf(buf, buf_size, "%s%s", node->quoted ? "a quoted string " : "", quoted);
	return buf;
}

/* "a, b, c" for "(known: ...)" lists. */
static void join_names(const char *const *names, char *buf, size_t buf_size)
{
	buf[0] = '\0';
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, buf_size - used, "%s%s", i > 0 ? ", " : "", names[i]);
	}
}

/* "KEY: expected a mapping, got a sequence" at the key's line (the item's
 * line for sequence items, which have no key). */
static bool report_type(const reporter *rep, const config_node *node, const char *path,
                        const char *expected)
{
	char what[96];
	return report(rep, node->key != NULL ? node->key_line : node->line, path,
	              "expected %s, got %s", expected, describe_node(node, what, sizeof what));
}

static void path_join(char *buf, size_t buf_size, const char *parent, const char *key)
{
	if (parent[0] == '\0')
		snprintf(buf, buf_size, "%s", key);
	else
		snprintf(buf, buf_size, "%s.%s", parent, key);
}

static void path_index(char *buf, size_t buf_size, const char *parent, size_t index)
{
	snprintf(buf, buf_size, "%s[%zu]", parent, index);
}

/* ------------------------------------------------------------------ */
/* The node tree                                                       */
/* ------------------------------------------------------------------ */

static void node_free(config_node *node)
{
	if (node == NULL)
		return;
	for (size_t i = 0; i < node->n_children; i++)
		node_free(node->children[i]);
	free(node->children);
	free(node->key);
	free(node->text);
	free(node);
}

static bool node_append(config_node *parent, config_node *child)
{
	if (parent->n_children == parent->children_capacity) {
		size_t capacity = parent->children_capacity ? 2 * parent->children_capacity : 8;
		config_node **grown = realloc(parent->children, capacity * sizeof *grown);
		if (grown == NULL)
			return false;
		parent->children = grown;
		parent->children_capacity = capacity;
	}
	parent->children[parent->n_children++] = child;
	return true;
}

/* The value of `key` in a mapping, or NULL (also for NULL or non-mappings). */
static config_node *node_get(const config_node *map, const char *key)
{
	if (map == NULL || map->kind != NODE_MAPPING)
		return NULL;
	for (size_t i = 0; i < map->n_children; i++)
		if (strcmp(map->children[i]->key, key) == 0)
			return map->children[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Reading the file                                                    */
/* ------------------------------------------------------------------ */

/* Reads at most CONFIG_MAX_BYTES; *text is owned by the caller. */
static bool read_file(const reporter *rep, unsigned char **text, size_t *len)
{
	bool ok = false;
	unsigned char *buf = NULL;
	size_t used = 0;
	int fd = open(rep->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report(rep, 0, NULL, "cannot open: %s", strerror(errno));
		goto out;
	}
	/* One byte more than allowed tells "exactly 1 MiB" from "over". */
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (buf == NULL) {
		report(rep, 0, NULL, "out of memory");
		goto out;
	}
	while (used < CONFIG_MAX_BYTES + 1) {
		ssize_t got = read(fd, buf + used, CONFIG_MAX_BYTES + 1 - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			report(rep, 0, NULL, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	if (used > CONFIG_MAX_BYTES) {
		report(rep, 0, NULL, "file is larger than 1 MiB");
		goto out;
	}
	*text = buf;
	*len = used;
	buf = NULL;
	ok = true;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ------------------------------------------------------------------ */
/* YAML events to nodes                                                */
/* ------------------------------------------------------------------ */

typedef struct tree_builder {
	yaml_parser_t parser;
	const reporter *rep;
	const unsigned char *text; /* the file, for lines of reader errors */
	size_t len;
} tree_builder;

static unsigned line_of_offset(const tree_builder *tb, size_t offset)
{
	unsigned line = 1;
	for (size_t i = 0; i < offset && i < tb->len; i++)
		if (tb->text[i] == '\n')
			line++;
	return line;
}

static bool next_event(tree_builder *tb, yaml_event_t *event)
{
	if (yaml_parser_parse(&tb->parser, event))
		return true;
	const yaml_parser_t *p = &tb->parser;
	if (p->error == YAML_MEMORY_ERROR)
		return report(tb->rep, 0, NULL, "out of memory");
	/* Reader errors (bad encoding) carry an offset but no line. */
	unsigned line = p->error == YAML_READER_ERROR ? line_of_offset(tb, p->problem_offset)
	                                              : (unsigned)p->problem_mark.line + 1;
	return report(tb->rep, line, NULL, "YAML syntax error: %s",
	              p->problem != NULL ? p->problem : "unknown problem");
}

static unsigned event_line(const yaml_event_t *event)
{
	return (unsigned)event->start_mark.line + 1;
}

/* Anchors, aliases and tags make a file mean more than it says; refused. */
static bool check_plain_event(tree_builder *tb, const yaml_event_t *event, const char *path)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	switch (event->type) {
	case YAML_ALIAS_EVENT:
		return report(tb->rep, event_line(event), path, "aliases are not supported");
	case YAML_SCALAR_EVENT:
		anchor = event->data.scalar.anchor;
		tag = event->data.scalar.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = event->data.mapping_start.anchor;
		tag = event->data.mapping_start.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = event->data.sequence_start.anchor;
		tag = event->data.sequence_start.tag;
		break;
	default: return report(tb->rep, event_line(event), path, "unexpected YAML event");
	}
	if (anchor != NULL)
		return report(tb->rep, event_line(event), path,
		              "anchors and aliases are not supported");
	if (tag != NULL)
		return report(tb->rep, event_line(event), path,
		              "tags are not supported; quote the value to make it a string");
	return true;
}

/* Copies a scalar's bytes; the "\0" escape would cut strings short, so
 * scalars with a NUL are refused. */
static bool copy_scalar(tree_builder *tb, const yaml_event_t *event, const char *path, char **out)
{
	const char *value = (const char *)event->data.scalar.value;
	size_t length = event->data.scalar.length;
	if (memchr(value, '\0', length) != NULL)
		return report(tb->rep, event_line(event), path, "NUL characters are not allowed");
	*out = strndup(value, length);
	if (*out == NULL)
		return report(tb->rep, 0, NULL, "out of memory");
	return true;
}

static int compare_children_by_key(const void *a, const void *b)
{
	const config_node *left = *(const config_node *const *)a;
	const config_node *right = *(const config_node *const *)b;
	int order = strcmp(left->key, right->key);
	if (order != 0)
		return order;
	return (left->key_line > right->key_line) - (left->key_line < right->key_line);
}

/* Sorting keeps big option maps from costing O(n^2).  Among several
 * repeated keys, the repetition earliest in the file is reported. */
static bool check_duplicate_keys(tree_builder *tb, const config_node *map, const char *path)
{
	bool ok = false;
	if (map->n_children < 2)
		return true;
	config_node **sorted = malloc(map->n_children * sizeof *sorted);
	if (sorted == NULL)
		return report(tb->rep, 0, NULL, "out of memory");
	memcpy(sorted, map->children, map->n_children * sizeof *sorted);
	qsort(sorted, map->n_children, sizeof *sorted, compare_children_by_key);

	/* Equal keys form runs ordered by line: a run's first entry is the
	 * original, its second the first repetition. */
	const config_node *first = NULL, *again = NULL;
	size_t run_start = 0;
	for (size_t i = 1; i < map->n_children; i++) {
		if (strcmp(sorted[run_start]->key, sorted[i]->key) != 0) {
			run_start = i;
			continue;
		}
		if (i == run_start + 1 &&
		    (again == NULL || sorted[i]->key_line < again->key_line)) {
			first = sorted[run_start];
			again = sorted[i];
		}
	}
	if (again != NULL) {
		char key_path[CONFIG_PATH_MAX];
		path_join(key_path, sizeof key_path, path, again->key);
		report(tb->rep, again->key_line, key_path, "duplicate key (first at line %u)",
		       first->key_line);
		goto out;
	}
	ok = true;
out:
	free(sorted);
	return ok;
}

static bool build_node(tree_builder *tb, yaml_event_t *event, const char *path, int depth,
                       config_node **out);

/* Reads key/value pairs up to MAPPING-END into `map`. */
static bool build_mapping(tree_builder *tb, config_node *map, const char *path, int depth)
{
	for (;;) {
		yaml_event_t event;
		char key_path[CONFIG_PATH_MAX];
		char *key = NULL;
		config_node *value = NULL;

		if (!next_event(tb, &event))
			return false;
		if (event.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&event);
			return check_duplicate_keys(tb, map, path);
		}
		unsigned key_line = event_line(&event);
		bool ok = check_plain_event(tb, &event, path);
		if (ok && event.type != YAML_SCALAR_EVENT)
			ok = report(tb->rep, key_line, path, "mapping keys must be strings");
		if (ok)
			ok = copy_scalar(tb, &event, path, &key);
		yaml_event_delete(&event);
		if (!ok)
			return false;

		path_join(key_path, sizeof key_path, path, key);
		if (!next_event(tb, &event) ||
		    !build_node(tb, &event, key_path, depth + 1, &value)) {
			free(key);
			return false;
		}
		value->key = key;
		value->key_line = key_line;
		if (!node_append(map, value)) {
			node_free(value);
			return report(tb->rep, 0, NULL, "out of memory");
		}
	}
}

/* Reads items up to SEQUENCE-END into `seq`. */
static bool build_sequence(tree_builder *tb, config_node *seq, const char *path, int depth)
{
	for (;;) {
		yaml_event_t event;
		char item_path[CONFIG_PATH_MAX];
		config_node *item = NULL;

		if (!next_event(tb, &event))
			return false;
		if (event.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&event);
			return true;
		}
		path_index(item_path, sizeof item_path, path, seq->n_children);
		if (!build_node(tb, &event, item_path, depth + 1, &item))
			return false;
		if (!node_append(seq, item)) {
			node_free(item);
			return report(tb->rep, 0, NULL, "out of memory");
		}
	}
}

/* Builds the value that starts with `event` (consumed here) into *out
 * (owned, caller frees). */
static bool build_node(tree_builder *tb, yaml_event_t *event, const char *path, int depth,
                       config_node **out)
{
	bool ok = false;
	config_node *node = NULL;
	node_kind kind = event->type == YAML_MAPPING_START_EVENT    ? NODE_MAPPING
	                 : event->type == YAML_SEQUENCE_START_EVENT ? NODE_SEQUENCE
	                                                            : NODE_SCALAR;

	if (!check_plain_event(tb, event, path))
		goto out;
	if (depth > CONFIG_MAX_DEPTH && kind != NODE_SCALAR) {
		report(tb->rep, event_line(event), path, "nested deeper than %d levels",
		       CONFIG_MAX_DEPTH);
		goto out;
	}
	node = calloc(1, sizeof *node);
	if (node == NULL) {
		report(tb->rep, 0, NULL, "out of memory");
		goto out;
	}
	node->kind = kind;
	node->line = event_line(event);
	if (kind == NODE_SCALAR) {
		node->quoted = event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		ok = copy_scalar(tb, event, path, &node->text);
		goto out;
	}
	yaml_event_delete(event); /* zeroes it: the delete at `out` is a no-op */
	ok = kind == NODE_MAPPING ? build_mapping(tb, node, path, depth)
	                          : build_sequence(tb, node, path, depth);
out:
	yaml_event_delete(event);
	if (ok) {
		*out = node;
	} else {
		node_free(node);
	}
	return ok;
}

/* Parses the whole stream: exactly one document whose root is a mapping. */
static bool build_tree(tree_builder *tb, config_node **root_out)
{
	bool ok = false;
	config_node *root = NULL, *not_mapping = NULL;
	char what[96];
	/* yaml_event_delete() on a zeroed or deleted event is a no-op, so
	 * `out` can always delete. */
	yaml_event_t event = {.type = YAML_NO_EVENT};

	if (!next_event(tb, &event)) /* STREAM-START */
		goto out;
	yaml_event_delete(&event);
	if (!next_event(tb, &event))
		goto out;
	if (event.type == YAML_STREAM_END_EVENT) {
		report(tb->rep, 1, NULL, "the file is empty; expected a mapping");
		goto out;
	}
	yaml_event_delete(&event); /* DOCUMENT-START */

	if (!next_event(tb, &event))
		goto out;
	if (event.type != YAML_MAPPING_START_EVENT) {
		unsigned line = event_line(&event);
		if (build_node(tb, &event, "", 1, &not_mapping))
			report(tb->rep, line, NULL, "the top level must be a mapping, got %s",
			       describe_node(not_mapping, what, sizeof what));
		goto out;
	}
	if (!build_node(tb, &event, "", 1, &root))
		goto out;

	if (!next_event(tb, &event)) /* DOCUMENT-END */
		goto out;
	yaml_event_delete(&event);
	if (!next_event(tb, &event))
		goto out;
	if (event.type == YAML_DOCUMENT_START_EVENT) {
		report(tb->rep, event_line(&event), NULL, "multiple documents are not supported");
		goto out;
	}
	*root_out = root; /* the event was STREAM-END */
	root = NULL;
	ok = true;
out:
	yaml_event_delete(&event);
	node_free(not_mapping);
	node_free(root);
	return ok;
}

static config_node *parse_file(const reporter *rep)
{
	config_node *root = NULL;
	tree_builder tb = {.rep = rep};
	unsigned char *text = NULL;
	bool parser_ready = false;

	if (!read_file(rep, &text, &tb.len))
		goto out;
	tb.text = text;
	if (!yaml_parser_initialize(&tb.parser)) {
		report(rep, 0, NULL, "out of memory");
		goto out;
	}
	parser_ready = true;
	yaml_parser_set_input_string(&tb.parser, text, tb.len);
	if (!build_tree(&tb, &root))
		root = NULL;
out:
	if (parser_ready)
		yaml_parser_delete(&tb.parser);
	free(text);
	return root;
}

/* ------------------------------------------------------------------ */
/* Scalars                                                             */
/* ------------------------------------------------------------------ */

/* Any scalar but null reads as a string: `name: 123` is "123". */
static bool node_as_string(const reporter *rep, const config_node *node, const char *path,
                           const char **out)
{
	if (node->kind != NODE_SCALAR || scalar_is_null(node))
		return report_type(rep, node, path, "a string");
	*out = node->text;
	return true;
}

/* Plain decimal only: "010" (octal in YAML 1.1), "1e3", "1_000" and quoted
 * numbers are refused rather than guessed at. */
static bool text_to_int(const config_node *node, int64_t *out)
{
	if (node->kind != NODE_SCALAR || node->quoted)
		return false;
	const char *digits = node->text;
	if (*digits == '-' || *digits == '+')
		digits++;
	if (digits[0] < '0' || digits[0] > '9' || (digits[0] == '0' && digits[1] != '\0'))
		return false;
	for (const char *p = digits; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	long long value = strtoll(node->text, NULL, 10);
	if (errno == ERANGE)
		return false;
	*out = value;
	return true;
}

static bool text_to_bool(const config_node *node, bool *out)
{
	if (node->kind != NODE_SCALAR || node->quoted)
		return false;
	if (strcmp(node->text, "true") == 0)
		*out = true;
	else if (strcmp(node->text, "false") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Schema                                                              */
/* ------------------------------------------------------------------ */

/* One mapping of the schema, possibly absent from the file. */
typedef struct section {
	const config_node *map; /* NULL when absent or null */
	char path[CONFIG_PATH_MAX];
	unsigned line; /* where "required key is missing" points */
} section;

/* The first entry of `map` (in file order) whose key is not in `known`
 * (NULL-terminated, may be NULL), or NULL. */
static const config_node *first_unknown_key(const config_node *map, const char *const *known)
{
	for (size_t i = 0; map != NULL && i < map->n_children; i++) {
		bool found = false;
		for (size_t k = 0; known != NULL && known[k] != NULL && !found; k++)
			found = strcmp(map->children[i]->key, known[k]) == 0;
		if (!found)
			return map->children[i];
	}
	return NULL;
}

static bool check_known_keys(const reporter *rep, const config_node *map, const char *path,
                             const char *const *known)
{
	const config_node *unknown = first_unknown_key(map, known);
	char list[256], key_path[CONFIG_PATH_MAX];
	if (unknown == NULL)
		return true;
	join_names(known, list, sizeof list);
	path_join(key_path, sizeof key_path, path, unknown->key);
	return report(rep, unknown->key_line, key_path, "unknown key (known: %s)", list);
}

/* Finds section `name` of the root.  A null value (all keys commented out)
 * counts as an empty section. */
static bool section_open(const reporter *rep, const config_node *root, const char *name,
                         const char *const *known, section *out)
{
	const config_node *value = node_get(root, name);

	*out = (section){.map = NULL, .line = root->line};
	snprintf(out->path, sizeof out->path, "%s", name);
	if (value == NULL)
		return true;
	out->line = value->key_line;
	if (scalar_is_null(value))
		return true;
	if (value->kind != NODE_MAPPING)
		return report_type(rep, value, name, "a mapping");
	out->map = value;
	return check_known_keys(rep, value, name, known);
}

static const config_node *section_get(const section *sec, const char *key, char *key_path,
                                      size_t key_path_size)
{
	path_join(key_path, key_path_size, sec->path, key);
	return node_get(sec->map, key);
}

/* The line of `key` in the section, or where a missing key is reported. */
static unsigned section_line(const section *sec, const char *key)
{
	const config_node *value = node_get(sec->map, key);
	return value != NULL ? value->key_line : sec->line;
}

static bool store_string(const reporter *rep, const char *text, char **out)
{
	free(*out);
	*out = strdup(text);
	if (*out == NULL)
		return report(rep, 0, NULL, "out of memory");
	return true;
}

/* read_string() flags. */
enum { STRING_OPTIONAL = 0, STRING_REQUIRED = 1 << 0, STRING_MAY_BE_EMPTY = 1 << 1 };

/* Fills *out (owned by the snapshot) from the file or `fallback`; empty
 * strings are refused unless STRING_MAY_BE_EMPTY.  Absence is an error with
 * STRING_REQUIRED; otherwise, without a fallback, *out stays NULL. */
static bool read_string(const reporter *rep, const section *sec, const char *key,
                        const char *fallback, unsigned flags, char **out)
{
	char key_path[CONFIG_PATH_MAX];
	const config_node *value = section_get(sec, key, key_path, sizeof key_path);
	const char *text = fallback;

	if (value == NULL && (flags & STRING_REQUIRED))
		return report(rep, sec->line, key_path, "required key is missing");
	if (value != NULL) {
		if (!node_as_string(rep, value, key_path, &text))
			return false;
		if (text[0] == '\0' && !(flags & STRING_MAY_BE_EMPTY))
			return report(rep, value->key_line, key_path, "must not be empty");
	}
	if (text == NULL)
		return true;
	return store_string(rep, text, out);
}

static bool read_int(const reporter *rep, const section *sec, const char *key, int64_t fallback,
                     int64_t min, int64_t max, int64_t *out)
{
	char key_path[CONFIG_PATH_MAX];
	const config_node *value = section_get(sec, key, key_path, sizeof key_path);

	*out = fallback;
	if (value == NULL)
		return true;
	if (!text_to_int(value, out))
		return report_type(rep, value, key_path, "an integer");
	if (*out < min || *out > max)
		return report(rep, value->key_line, key_path, "%lld is out of range (%lld..%lld)",
		              (long long)*out, (long long)min, (long long)max);
	return true;
}

/* A duration between min_ns and max_ns in whole multiples of unit_ns. */
static bool read_duration(const reporter *rep, const section *sec, const char *key,
                          int64_t fallback_ns, int64_t min_ns, int64_t max_ns, int64_t unit_ns,
                          int64_t *out_ns)
{
	char key_path[CONFIG_PATH_MAX], reason[160], value_text[DURATION_FORMAT_MAX];
	const config_node *value = section_get(sec, key, key_path, sizeof key_path);
	const char *text = NULL;

	*out_ns = fallback_ns;
	if (value == NULL)
		return true;
	if (!node_as_string(rep, value, key_path, &text))
		return false;
	if (!duration_parse(text, out_ns, reason, sizeof reason))
		return report(rep, value->key_line, key_path, "%s (e.g. 30s, 1m30s, 500ms)",
		              reason);
	duration_format(*out_ns, value_text, sizeof value_text);
	if (*out_ns < min_ns || *out_ns > max_ns) {
		char min_text[DURATION_FORMAT_MAX], max_text[DURATION_FORMAT_MAX];
		duration_format(min_ns, min_text, sizeof min_text);
		duration_format(max_ns, max_text, sizeof max_text);
		return report(rep, value->key_line, key_path, "%s is out of range (%s..%s)",
		              value_text, min_text, max_text);
	}
	if (*out_ns % unit_ns != 0)
		return report(rep, value->key_line, key_path, "%s is not a whole number of %s",
		              value_text, unit_ns == NS_PER_S ? "seconds" : "milliseconds");
	return true;
}

/* "IPv4:port" or "[IPv6]:port", port 1..65535: numeric, because the
 * server binds without name resolution (AI_NUMERICHOST). */
static bool listen_address_valid(const char *text)
{
	const char *colon = strrchr(text, ':');
	if (colon == NULL || colon == text)
		return false;
	const char *port = colon + 1;
	size_t port_len = strlen(port);
	if (port_len == 0 || port_len > 5 || port[0] == '0' ||
	    strspn(port, "0123456789") != port_len || atoi(port) > 65535)
		return false;

	char host[INET6_ADDRSTRLEN + 2];
	size_t host_len = (size_t)(colon - text);
	unsigned char addr[sizeof(struct in6_addr)];
	if (host_len >= sizeof host)
		return false;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	if (host[0] != '[')
		return inet_pton(AF_INET, host, addr) == 1;
	if (host_len < 3 || host[host_len - 1] != ']')
		return false;
	host[host_len - 1] = '\0';
	return inet_pton(AF_INET6, host + 1, addr) == 1;
}

static bool read_listen(const reporter *rep, const section *sec, const char *fallback,
                        unsigned flags, char **out)
{
	char key_path[CONFIG_PATH_MAX], shown[96];
	if (!read_string(rep, sec, "listen", fallback, flags, out))
		return false;
	if ((*out)[0] == '\0' || listen_address_valid(*out))
		return true;
	path_join(key_path, sizeof key_path, sec->path, "listen");
	return report(rep, section_line(sec, "listen"), key_path,
	              "%s is not IP:port with a numeric IP and a port in 1..65535 "
	              "(e.g. 0.0.0.0:8443, [::]:8443)",
	              quote_text(*out, shown, sizeof shown));
}

static bool check_server(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"listen",         "tlsCertFile",    "tlsKeyFile",
	                                   "requestTimeout", "maxConnections", "certReloadInterval",
	                                   "idleTimeout",    "maxHeaderBytes", NULL};
	section sec;
	int64_t timeout_ns, max_connections, reload_ns, idle_ns, max_header_bytes;

	if (!section_open(rep, root, "server", keys, &sec) ||
	    !read_listen(rep, &sec, "0.0.0.0:8443", STRING_OPTIONAL, &cfg->server.listen) ||
	    !read_string(rep, &sec, "tlsCertFile", NULL, STRING_REQUIRED,
	                 &cfg->server.tls_cert_file) ||
	    !read_string(rep, &sec, "tlsKeyFile", NULL, STRING_REQUIRED,
	                 &cfg->server.tls_key_file) ||
	    !read_duration(rep, &sec, "requestTimeout", 30 * NS_PER_S, 1 * NS_PER_S, 60 * NS_PER_S,
	                   NS_PER_MS, &timeout_ns) ||
	    !read_int(rep, &sec, "maxConnections", 1024, 1, 100000, &max_connections) ||
	    !read_duration(rep, &sec, "certReloadInterval", 60 * NS_PER_S, 100 * NS_PER_MS,
	                   60 * NS_PER_S, NS_PER_MS, &reload_ns) ||
	    !read_duration(rep, &sec, "idleTimeout", 90 * NS_PER_S, 1 * NS_PER_S, 3600 * NS_PER_S,
	                   NS_PER_S, &idle_ns) ||
	    !read_int(rep, &sec, "maxHeaderBytes", 256 * 1024, 16 * 1024, 4 * 1024 * 1024,
	              &max_header_bytes))
		return false;
	cfg->server.idle_timeout_ms = (uint32_t)(idle_ns / NS_PER_MS);
	cfg->server.max_header_bytes = (uint32_t)max_header_bytes;
	cfg->server.cert_reload_interval_ms = (uint32_t)(reload_ns / NS_PER_MS);
	cfg->server.request_timeout_ms = (uint32_t)(timeout_ns / NS_PER_MS);
	cfg->server.max_connections = (uint32_t)max_connections;
	return true;
}

/* A sequence of non-empty strings into a NULL-terminated array (owned by
 * the snapshot).  Absent: *out stays NULL.  Null is refused too: "none"
 * must be asked for with []. */
static bool read_string_list(const reporter *rep, const section *sec, const char *key, char ***out,
                             size_t *n_out)
{
	char key_path[CONFIG_PATH_MAX], item_path[CONFIG_PATH_MAX];
	const config_node *value = section_get(sec, key, key_path, sizeof key_path);

	if (value == NULL)
		return true;
	if (value->kind != NODE_SEQUENCE)
		return report_type(rep, value, key_path, "a sequence");
	*out = calloc(value->n_children + 1, sizeof(char *));
	if (*out == NULL)
		return report(rep, 0, NULL, "out of memory");
	for (size_t i = 0; i < value->n_children; i++) {
		const config_node *item = value->children[i];
		const char *text = NULL;
		path_index(item_path, sizeof item_path, key_path, i);
		if (!node_as_string(rep, item, item_path, &text))
			return false;
		if (text[0] == '\0')
			return report(rep, item->line, item_path, "must not be empty");
		if (!store_string(rep, text, &(*out)[i]))
			return false;
		if (n_out != NULL)
			*n_out = i + 1;
	}
	return true;
}

/* A default list when the key was absent. */
static bool default_string_list(const reporter *rep, const char *const *defaults, char ***out)
{
	size_t n = 0;
	if (*out != NULL)
		return true;
	while (defaults[n] != NULL)
		n++;
	*out = calloc(n + 1, sizeof(char *));
	if (*out == NULL)
		return report(rep, 0, NULL, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!store_string(rep, defaults[i], &(*out)[i]))
			return false;
	return true;
}

static void free_string_list(char **list)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		free(list[i]);
	free(list);
}

static bool read_bool(const reporter *rep, const section *sec, const char *key, bool fallback,
                      bool *out)
{
	char key_path[CONFIG_PATH_MAX];
	const config_node *value = section_get(sec, key, key_path, sizeof key_path);

	*out = fallback;
	if (value == NULL || text_to_bool(value, out))
		return true;
	return report_type(rep, value, key_path, "a boolean (true or false)");
}

/* kubernetes: the cluster connection (TokenReview, SubjectAccessReview and
 * the extension-apiserver-authentication ConfigMap).  Absent: standalone. */
static bool check_kubernetes(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"inCluster", "kubeconfig",   "server",  "caFile",
	                                   "tokenFile", "tokenRefresh", "timeout", NULL};
	section sec;
	int64_t refresh_ns, timeout_ns;

	if (!section_open(rep, root, "kubernetes", keys, &sec) ||
	    !read_bool(rep, &sec, "inCluster", false, &cfg->kubernetes.in_cluster) ||
	    !read_string(rep, &sec, "kubeconfig", NULL, STRING_OPTIONAL,
	                 &cfg->kubernetes.kubeconfig) ||
	    !read_string(rep, &sec, "server", NULL, STRING_OPTIONAL, &cfg->kubernetes.server) ||
	    !read_string(rep, &sec, "caFile", NULL, STRING_OPTIONAL, &cfg->kubernetes.ca_file) ||
	    !read_string(rep, &sec, "tokenFile", NULL, STRING_OPTIONAL,
	                 &cfg->kubernetes.token_file) ||
	    !read_duration(rep, &sec, "tokenRefresh", 60 * NS_PER_S, NS_PER_S, 3600 * NS_PER_S,
	                   NS_PER_MS, &refresh_ns) ||
	    !read_duration(rep, &sec, "timeout", 10 * NS_PER_S, 100 * NS_PER_MS, 60 * NS_PER_S,
	                   NS_PER_MS, &timeout_ns))
		return false;
	cfg->kubernetes.token_refresh_ms = (uint32_t)(refresh_ns / NS_PER_MS);
	cfg->kubernetes.timeout_ms = (uint32_t)(timeout_ns / NS_PER_MS);
	if (sec.map == NULL)
		return true;
	cfg->kubernetes.enabled = true;
	if (cfg->kubernetes.in_cluster == (cfg->kubernetes.kubeconfig != NULL))
		return report(rep, sec.line, "kubernetes",
		              "set exactly one of inCluster: true and kubeconfig");
	static const char *const in_cluster_only[] = {"server", "caFile", "tokenFile", NULL};
	for (size_t i = 0; cfg->kubernetes.kubeconfig != NULL && in_cluster_only[i] != NULL; i++) {
		char key_path[CONFIG_PATH_MAX];
		if (section_get(&sec, in_cluster_only[i], key_path, sizeof key_path) != NULL)
			return report(rep, section_line(&sec, in_cluster_only[i]), key_path,
			              "only with inCluster: true (the kubeconfig names its own)");
	}
	return true;
}

/* authorization: AlwaysAllow (standalone) or Webhook (SubjectAccessReview). */
static bool check_authorization(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {
	    "mode", "allowCacheTTL", "denyCacheTTL", "alwaysAllowPaths", "alwaysAllowGroups", NULL};
	static const char *const default_paths[] = {"/healthz", "/readyz", "/livez", NULL};
	static const char *const default_groups[] = {"system:masters", NULL};
	section sec;
	char *mode = NULL;
	int64_t allow_ns, deny_ns;
	bool ok = false;

	if (!section_open(rep, root, "authorization", keys, &sec) ||
	    !read_string(rep, &sec, "mode", cfg->kubernetes.enabled ? "Webhook" : "AlwaysAllow",
	                 STRING_OPTIONAL, &mode) ||
	    !read_duration(rep, &sec, "allowCacheTTL", 10 * NS_PER_S, 0, 3600 * NS_PER_S, NS_PER_MS,
	                   &allow_ns) ||
	    !read_duration(rep, &sec, "denyCacheTTL", 10 * NS_PER_S, 0, 3600 * NS_PER_S, NS_PER_MS,
	                   &deny_ns) ||
	    !read_string_list(rep, &sec, "alwaysAllowPaths", &cfg->authorization.always_allow_paths,
	                      NULL) ||
	    !read_string_list(rep, &sec, "alwaysAllowGroups",
	                      &cfg->authorization.always_allow_groups, NULL) ||
	    !default_string_list(rep, default_paths, &cfg->authorization.always_allow_paths) ||
	    !default_string_list(rep, default_groups, &cfg->authorization.always_allow_groups))
		goto out;
	cfg->authorization.allow_ttl_ms = (uint32_t)(allow_ns / NS_PER_MS);
	cfg->authorization.deny_ttl_ms = (uint32_t)(deny_ns / NS_PER_MS);
	if (strcmp(mode, "Webhook") == 0) {
		cfg->authorization.webhook = true;
	} else if (strcmp(mode, "AlwaysAllow") != 0) {
		char shown[96];
		report(rep, section_line(&sec, "mode"), "authorization.mode",
		       "%s is not one of AlwaysAllow, Webhook",
		       quote_text(mode, shown, sizeof shown));
		goto out;
	}
	if (cfg->authorization.webhook && !cfg->kubernetes.enabled) {
		report(rep, section_line(&sec, "mode"), "authorization.mode",
		       "Webhook needs a cluster connection (the kubernetes section)");
		goto out;
	}
	ok = true;
out:
	free(mode);
	return ok;
}

static bool check_auth(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"requestheaderClientCAFile",
	                                   "requestheaderAllowedNames",
	                                   "requestheaderUsernameHeaders",
	                                   "requestheaderGroupHeaders",
	                                   "requestheaderExtraHeadersPrefix",
	                                   "requestheaderUIDHeaders",
	                                   "clientCAFile",
	                                   "skipLookup",
	                                   "anonymous",
	                                   "refreshInterval",
	                                   "tokenCacheTTL",
	                                   NULL};
	section sec;
	int64_t refresh_ns, token_ttl_ns;
	/* Standalone, the config file is the only source of trust. */
	bool standalone = !cfg->kubernetes.enabled;
	char key_path[CONFIG_PATH_MAX];

	if (!section_open(rep, root, "auth", keys, &sec) ||
	    !read_string(rep, &sec, "requestheaderClientCAFile", NULL,
	                 standalone ? STRING_REQUIRED : STRING_OPTIONAL,
	                 &cfg->auth.requestheader_client_ca_file) ||
	    !read_string_list(rep, &sec, "requestheaderAllowedNames",
	                      &cfg->auth.requestheader_allowed_names,
	                      &cfg->auth.n_requestheader_allowed_names) ||
	    !read_string_list(rep, &sec, "requestheaderUsernameHeaders",
	                      &cfg->auth.requestheader_username_headers, NULL) ||
	    !read_string_list(rep, &sec, "requestheaderGroupHeaders",
	                      &cfg->auth.requestheader_group_headers, NULL) ||
	    !read_string_list(rep, &sec, "requestheaderExtraHeadersPrefix",
	                      &cfg->auth.requestheader_extra_headers_prefix, NULL) ||
	    !read_string_list(rep, &sec, "requestheaderUIDHeaders",
	                      &cfg->auth.requestheader_uid_headers, NULL) ||
	    !read_string(rep, &sec, "clientCAFile", NULL, STRING_OPTIONAL,
	                 &cfg->auth.client_ca_file) ||
	    !read_bool(rep, &sec, "skipLookup", standalone, &cfg->auth.skip_lookup) ||
	    !read_bool(rep, &sec, "anonymous", cfg->authorization.webhook, &cfg->auth.anonymous) ||
	    !read_duration(rep, &sec, "refreshInterval", 60 * NS_PER_S, NS_PER_S, 3600 * NS_PER_S,
	                   NS_PER_MS, &refresh_ns) ||
	    !read_duration(rep, &sec, "tokenCacheTTL", 10 * NS_PER_S, 0, 3600 * NS_PER_S, NS_PER_MS,
	                   &token_ttl_ns))
		return false;
	cfg->auth.requestheader_allowed_names_set = cfg->auth.requestheader_allowed_names != NULL;
	static const char *const none[] = {NULL};
	if (!default_string_list(rep, none, &cfg->auth.requestheader_allowed_names))
		return false;
	cfg->auth.refresh_interval_ms = (uint32_t)(refresh_ns / NS_PER_MS);
	cfg->auth.token_cache_ttl_ms = (uint32_t)(token_ttl_ns / NS_PER_MS);
	if (!cfg->auth.skip_lookup && standalone) {
		section_get(&sec, "skipLookup", key_path, sizeof key_path);
		return report(rep, section_line(&sec, "skipLookup"), key_path,
		              "false needs a cluster connection (the kubernetes section)");
	}
	if (cfg->auth.anonymous && !cfg->authorization.webhook) {
		section_get(&sec, "anonymous", key_path, sizeof key_path);
		return report(
		    rep, section_line(&sec, "anonymous"), key_path,
		    "true needs authorization.mode Webhook (AlwaysAllow would let anyone in)");
	}
	return true;
}

static bool check_admin(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"listen", NULL};
	section sec;
	return section_open(rep, root, "admin", keys, &sec) &&
	       read_listen(rep, &sec, "0.0.0.0:8080", STRING_MAY_BE_EMPTY, &cfg->admin.listen);
}

/* A mapping inside a section (prometheus.tls), under a section's rules:
 * absent or null is empty, unknown keys are errors. */
static bool section_open_child(const reporter *rep, const section *parent, const char *key,
                               const char *const *known, section *out)
{
	const config_node *value = node_get(parent->map, key);

	*out = (section){.map = NULL, .line = parent->line};
	path_join(out->path, sizeof out->path, parent->path, key);
	if (value == NULL)
		return true;
	out->line = value->key_line;
	if (scalar_is_null(value))
		return true;
	if (value->kind != NODE_MAPPING)
		return report_type(rep, value, out->path, "a mapping");
	out->map = value;
	return check_known_keys(rep, value, out->path, known);
}

/* prometheus.url: http(s)://host[:port][/prefix].  User info is refused
 * before anything quotes the URL: it would put a password in messages and
 * logs; credentials come from files. */
static bool check_prometheus_url(const reporter *rep, const section *sec, const char *url)
{
	char shown[96];
	size_t scheme_len = strncmp(url, "http://", 7) == 0    ? 7
	                    : strncmp(url, "https://", 8) == 0 ? 8
	                                                       : 0;
	size_t authority_len = strcspn(url + scheme_len, "/?#");
	const char *problem = NULL;

	if (scheme_len != 0 && memchr(url + scheme_len, '@', authority_len) != NULL)
		return report(rep, section_line(sec, "url"), "prometheus.url",
		              "must not contain user:password@; use prometheus.basicAuth "
		              "(usernameFile, passwordFile)");
	if (scheme_len == 0)
		problem = "must start with http:// or https://";
	else if (url[scheme_len] == '\0' || url[scheme_len] == '/')
		problem = "has no host";
	else if (strpbrk(url, " \t") != NULL)
		problem = "must not contain spaces";
	if (problem == NULL)
		return true;
	return report(rep, section_line(sec, "url"), "prometheus.url", "%s %s",
	              quote_text(url, shown, sizeof shown), problem);
}

/* prometheus.bearerTokenFile or prometheus.basicAuth, not both. */
static bool read_prometheus_credentials(const reporter *rep, const section *sec, config *cfg)
{
	static const char *const basic_keys[] = {"usernameFile", "passwordFile", NULL};
	section basic;

	if (!read_string(rep, sec, "bearerTokenFile", NULL, STRING_OPTIONAL,
	                 &cfg->prometheus.bearer_token_file) ||
	    !section_open_child(rep, sec, "basicAuth", basic_keys, &basic))
		return false;
	if (basic.map == NULL)
		return true;
	if (cfg->prometheus.bearer_token_file != NULL)
		return report(rep, section_line(sec, "bearerTokenFile"),
		              "prometheus.bearerTokenFile",
		              "set either bearerTokenFile or basicAuth, not both");
	return read_string(rep, &basic, "usernameFile", NULL, STRING_REQUIRED,
	                   &cfg->prometheus.basic_auth_username_file) &&
	       read_string(rep, &basic, "passwordFile", NULL, STRING_REQUIRED,
	                   &cfg->prometheus.basic_auth_password_file);
}

/* prometheus.tls: only for an https URL; a client certificate needs its key. */
static bool read_prometheus_tls(const reporter *rep, const section *sec, config *cfg)
{
	static const char *const keys[] = {"caFile",     "certFile",           "keyFile",
	                                   "serverName", "insecureSkipVerify", NULL};
	section tls;
	const char *problem;

	if (!section_open_child(rep, sec, "tls", keys, &tls) ||
	    !read_string(rep, &tls, "caFile", NULL, STRING_OPTIONAL,
	                 &cfg->prometheus.tls_ca_file) ||
	    !read_string(rep, &tls, "certFile", NULL, STRING_OPTIONAL,
	                 &cfg->prometheus.tls_cert_file) ||
	    !read_string(rep, &tls, "keyFile", NULL, STRING_OPTIONAL,
	                 &cfg->prometheus.tls_key_file) ||
	    !read_string(rep, &tls, "serverName", NULL, STRING_OPTIONAL,
	                 &cfg->prometheus.tls_server_name) ||
	    !read_bool(rep, &tls, "insecureSkipVerify", false,
	               &cfg->prometheus.tls_insecure_skip_verify))
		return false;
	if (tls.map == NULL || tls.map->n_children == 0)
		return true;
	if (strncmp(cfg->prometheus.url, "https://", 8) != 0)
		return report(rep, tls.line, "prometheus.tls", "needs an https:// prometheus.url");
	if (cfg->prometheus.tls_cert_file != NULL && cfg->prometheus.tls_key_file == NULL)
		return report(rep, section_line(&tls, "certFile"), "prometheus.tls.keyFile",
		              "required with certFile");
	if (cfg->prometheus.tls_key_file != NULL && cfg->prometheus.tls_cert_file == NULL)
		return report(rep, section_line(&tls, "keyFile"), "prometheus.tls.certFile",
		              "required with keyFile");
	problem = cfg->prometheus.tls_server_name != NULL
	              ? prom_server_name_problem(cfg->prometheus.tls_server_name)
	              : NULL;
	if (problem == NULL)
		return true;
	char shown[96];
	return report(rep, section_line(&tls, "serverName"), "prometheus.tls.serverName", "%s %s",
	              quote_text(cfg->prometheus.tls_server_name, shown, sizeof shown), problem);
}

/* prometheus.headers: name -> value, by the client's rules (prom.h).  The
 * values may be secrets: messages never quote them. */
static bool read_prometheus_headers(const reporter *rep, const section *sec, config *cfg)
{
	char key_path[CONFIG_PATH_MAX], entry_path[CONFIG_PATH_MAX];
	const config_node *map = section_get(sec, "headers", key_path, sizeof key_path);
	size_t count;

	if (map == NULL || scalar_is_null(map))
		return true;
	if (map->kind != NODE_MAPPING)
		return report_type(rep, map, key_path, "a mapping");
	count = map->n_children;
	cfg->prometheus.header_names = calloc(count + 1, sizeof(char *));
	cfg->prometheus.header_values = calloc(count + 1, sizeof(char *));
	if (cfg->prometheus.header_names == NULL || cfg->prometheus.header_values == NULL)
		return report(rep, 0, NULL, "out of memory");
	for (size_t i = 0; i < count; i++) {
		const config_node *entry = map->children[i];
		const char *value = NULL, *problem;
		path_join(entry_path, sizeof entry_path, key_path, entry->key);
		if (!node_as_string(rep, entry, entry_path, &value))
			return false;
		problem = prom_header_problem(entry->key, value);
		if (problem != NULL)
			return report(rep, entry->key_line, entry_path, "%s", problem);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(entry->key, map->children[j]->key) == 0)
				return report(rep, entry->key_line, entry_path,
				              "the same header as line %u (names ignore case)",
				              map->children[j]->key_line);
		if (!store_string(rep, entry->key, &cfg->prometheus.header_names[i]) ||
		    !store_string(rep, value, &cfg->prometheus.header_values[i]))
			return false;
		cfg->prometheus.n_headers = i + 1;
	}
	return true;
}

static bool check_prometheus(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {
	    "url", "timeout", "method", "maxResponseBytes", "bearerTokenFile", "basicAuth",
	    "tls", "headers", NULL};
	section sec;
	int64_t timeout_ns, max_response_bytes;
	prom_method method;

	if (!section_open(rep, root, "prometheus", keys, &sec) ||
	    !read_string(rep, &sec, "url", "http://127.0.0.1:9090", STRING_OPTIONAL,
	                 &cfg->prometheus.url) ||
	    !check_prometheus_url(rep, &sec, cfg->prometheus.url) ||
	    !read_duration(rep, &sec, "timeout", 10 * NS_PER_S, 100 * NS_PER_MS, 60 * NS_PER_S,
	                   NS_PER_MS, &timeout_ns) ||
	    !read_string(rep, &sec, "method", "auto", STRING_OPTIONAL, &cfg->prometheus.method) ||
	    !read_int(rep, &sec, "maxResponseBytes", (int64_t)PROM_DEFAULT_MAX_RESPONSE_BYTES,
	              (int64_t)PROM_MIN_MAX_RESPONSE_BYTES, (int64_t)PROM_MAX_MAX_RESPONSE_BYTES,
	              &max_response_bytes))
		return false;
	cfg->prometheus.timeout_ms = (uint32_t)(timeout_ns / NS_PER_MS);
	cfg->prometheus.max_response_bytes = (uint32_t)max_response_bytes;
	if (!prom_method_from_name(cfg->prometheus.method, &method)) {
		char shown[96];
		return report(rep, section_line(&sec, "method"), "prometheus.method",
		              "%s is not one of auto, get, post",
		              quote_text(cfg->prometheus.method, shown, sizeof shown));
	}
	return read_prometheus_credentials(rep, &sec, cfg) && read_prometheus_tls(rep, &sec, cfg) &&
	       read_prometheus_headers(rep, &sec, cfg);
}

/* The line to blame for window.default against window.<bound>: the
 * default's when written, else the bound's. */
static unsigned window_blame_line(const section *sec, const char *bound)
{
	return section_line(sec, node_get(sec->map, "default") != NULL ? "default" : bound);
}

static bool check_window(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"default", "min", "max", NULL};
	/* One year keeps seconds in uint32_t and range queries sane. */
	const int64_t ceiling_ns = INT64_C(8760) * 3600 * NS_PER_S;
	section sec;
	int64_t default_ns, min_ns, max_ns;
	char default_text[DURATION_FORMAT_MAX], bound_text[DURATION_FORMAT_MAX];

	if (!section_open(rep, root, "window", keys, &sec) ||
	    !read_duration(rep, &sec, "default", 30 * NS_PER_S, NS_PER_S, ceiling_ns, NS_PER_S,
	                   &default_ns) ||
	    !read_duration(rep, &sec, "min", 10 * NS_PER_S, NS_PER_S, ceiling_ns, NS_PER_S,
	                   &min_ns) ||
	    !read_duration(rep, &sec, "max", 24 * 3600 * NS_PER_S, NS_PER_S, ceiling_ns, NS_PER_S,
	                   &max_ns))
		return false;
	duration_format(default_ns, default_text, sizeof default_text);
	if (default_ns < min_ns) {
		duration_format(min_ns, bound_text, sizeof bound_text);
		return report(rep, window_blame_line(&sec, "min"), "window.default",
		              "%s is below window.min %s", default_text, bound_text);
	}
	if (default_ns > max_ns) {
		duration_format(max_ns, bound_text, sizeof bound_text);
		return report(rep, window_blame_line(&sec, "max"), "window.default",
		              "%s is above window.max %s", default_text, bound_text);
	}
	cfg->window.default_seconds = (uint32_t)(default_ns / NS_PER_S);
	cfg->window.min_seconds = (uint32_t)(min_ns / NS_PER_S);
	cfg->window.max_seconds = (uint32_t)(max_ns / NS_PER_S);
	return true;
}

/* [a-z0-9][a-z0-9_-]*: the name becomes "<adapters_dir>/<name>.so". */
static bool adapter_name_valid(const char *name)
{
	for (const char *p = name; *p != '\0'; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
		if (!alnum && (p == name || (*p != '_' && *p != '-')))
			return false;
	}
	return name[0] != '\0';
}

/* A free-form mapping under the section: *out stays NULL when absent or
 * null.  The node is the tree's, so adapter lookups can mark it. */
static bool read_mapping(const reporter *rep, const section *sec, const char *key, char *key_path,
                         size_t key_path_size, config_node **out)
{
	config_node *value = node_get(sec->map, key);
	path_join(key_path, key_path_size, sec->path, key);
	*out = NULL;
	if (value == NULL || scalar_is_null(value))
		return true;
	if (value->kind != NODE_MAPPING)
		return report_type(rep, value, key_path, "a mapping");
	*out = value;
	return true;
}

/* adapter.options values are scalars the adapter reads by type later. */
static bool check_options(const reporter *rep, const section *sec, config *cfg)
{
	char key_path[CONFIG_PATH_MAX], entry_path[CONFIG_PATH_MAX];
	config_node *value;

	if (!read_mapping(rep, sec, "options", key_path, sizeof key_path, &value))
		return false;
	for (size_t i = 0; value != NULL && i < value->n_children; i++) {
		const config_node *entry = value->children[i];
		if (entry->kind == NODE_SCALAR && !scalar_is_null(entry))
			continue;
		path_join(entry_path, sizeof entry_path, key_path, entry->key);
		return report_type(rep, entry, entry_path, "a string, boolean or integer");
	}
	cfg->adapter.options = value;
	return true;
}

/* adapter.queries: template id -> non-empty PromQL text. */
static bool check_queries(const reporter *rep, const section *sec, config *cfg)
{
	char key_path[CONFIG_PATH_MAX], entry_path[CONFIG_PATH_MAX];
	config_node *value;

	if (!read_mapping(rep, sec, "queries", key_path, sizeof key_path, &value))
		return false;
	for (size_t i = 0; value != NULL && i < value->n_children; i++) {
		const config_node *entry = value->children[i];
		const char *text = NULL;
		path_join(entry_path, sizeof entry_path, key_path, entry->key);
		if (!node_as_string(rep, entry, entry_path, &text))
			return false;
		if (text[0] == '\0')
			return report(rep, entry->key_line, entry_path, "must not be empty");
	}
	cfg->adapter.queries = value;
	return true;
}

static bool check_adapter(const reporter *rep, const config_node *root,
                          const char *default_adapters_dir, config *cfg)
{
	static const char *const keys[] = {"name",    "path",    "adaptersDir",
	                                   "options", "queries", NULL};
	section sec;

	if (!section_open(rep, root, "adapter", keys, &sec) ||
	    !read_string(rep, &sec, "name", NULL, STRING_OPTIONAL, &cfg->adapter.name) ||
	    !read_string(rep, &sec, "path", NULL, STRING_OPTIONAL, &cfg->adapter.path) ||
	    !read_string(rep, &sec, "adaptersDir", default_adapters_dir, STRING_OPTIONAL,
	                 &cfg->adapter.adapters_dir))
		return false;
	if (cfg->adapter.name == NULL && cfg->adapter.path == NULL)
		return report(rep, sec.line, "adapter.name",
		              "required key is missing (unless adapter.path is set)");
	if (cfg->adapter.name != NULL && !adapter_name_valid(cfg->adapter.name)) {
		char shown[96];
		return report(rep, section_line(&sec, "name"), "adapter.name",
		              "%s is not a valid adapter name ([a-z0-9][a-z0-9_-]*)",
		              quote_text(cfg->adapter.name, shown, sizeof shown));
	}
	return check_options(rep, &sec, cfg) && check_queries(rep, &sec, cfg);
}

static bool check_cache(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"ttl", "maxEntries", NULL};
	section sec;
	int64_t ttl_ns, max_entries;

	if (!section_open(rep, root, "cache", keys, &sec) ||
	    !read_duration(rep, &sec, "ttl", -1, 0, 3600 * NS_PER_S, NS_PER_MS, &ttl_ns) ||
	    !read_int(rep, &sec, "maxEntries", 4096, 0, 1000000, &max_entries))
		return false;
	cfg->cache.ttl_ms = ttl_ns < 0 ? -1 : ttl_ns / NS_PER_MS;
	cfg->cache.max_entries = (uint32_t)max_entries;
	return true;
}

static bool check_log(const reporter *rep, const config_node *root, config *cfg)
{
	static const char *const keys[] = {"level", NULL};
	section sec;

	if (!section_open(rep, root, "log", keys, &sec) ||
	    !read_string(rep, &sec, "level", "info", STRING_OPTIONAL, &cfg->log.level))
		return false;
	if (log_level_from_name(cfg->log.level) >= 0)
		return true;
	char shown[96];
	return report(rep, section_line(&sec, "level"), "log.level",
	              "%s is not one of error, warn, info, debug",
	              quote_text(cfg->log.level, shown, sizeof shown));
}

/* ------------------------------------------------------------------ */
/* Public                                                              */
/* ------------------------------------------------------------------ */

config *config_load(const char *path, const char *default_adapters_dir, char *err, size_t err_size)
{
	static const char *const sections[] = {"server",     "auth",          "admin", "prometheus",
	                                       "window",     "adapter",       "cache", "log",
	                                       "kubernetes", "authorization", NULL};
	const reporter rep = {.file = path, .err = err, .err_size = err_size};
	config *cfg = calloc(1, sizeof *cfg);
	bool ok = false;

	if (err != NULL && err_size > 0)
		err[0] = '\0';
	if (cfg == NULL) {
		report(&rep, 0, NULL, "out of memory");
		goto out;
	}
	if (!store_string(&rep, path, &cfg->path))
		goto out;
	cfg->root = parse_file(&rep);
	if (cfg->root == NULL)
		goto out;
	ok = check_known_keys(&rep, cfg->root, "", sections) &&
	     check_server(&rep, cfg->root, cfg) && check_kubernetes(&rep, cfg->root, cfg) &&
	     check_authorization(&rep, cfg->root, cfg) && check_auth(&rep, cfg->root, cfg) &&
	     check_admin(&rep, cfg->root, cfg) && check_prometheus(&rep, cfg->root, cfg) &&
	     check_window(&rep, cfg->root, cfg) &&
	     check_adapter(&rep, cfg->root, default_adapters_dir, cfg) &&
	     check_cache(&rep, cfg->root, cfg) && check_log(&rep, cfg->root, cfg);
out:
	if (!ok) {
		config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

void config_free(config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->server.listen);
	free(cfg->server.tls_cert_file);
	free(cfg->server.tls_key_file);
	free(cfg->auth.requestheader_client_ca_file);
	free_string_list(cfg->auth.requestheader_allowed_names);
	free_string_list(cfg->auth.requestheader_username_headers);
	free_string_list(cfg->auth.requestheader_group_headers);
	free_string_list(cfg->auth.requestheader_extra_headers_prefix);
	free_string_list(cfg->auth.requestheader_uid_headers);
	free(cfg->auth.client_ca_file);
	free(cfg->kubernetes.kubeconfig);
	free(cfg->kubernetes.server);
	free(cfg->kubernetes.ca_file);
	free(cfg->kubernetes.token_file);
	free_string_list(cfg->authorization.always_allow_paths);
	free_string_list(cfg->authorization.always_allow_groups);
	free(cfg->admin.listen);
	free(cfg->prometheus.url);
	free(cfg->prometheus.method);
	free(cfg->prometheus.bearer_token_file);
	free(cfg->prometheus.basic_auth_username_file);
	free(cfg->prometheus.basic_auth_password_file);
	free(cfg->prometheus.tls_ca_file);
	free(cfg->prometheus.tls_cert_file);
	free(cfg->prometheus.tls_key_file);
	free(cfg->prometheus.tls_server_name);
	free_string_list(cfg->prometheus.header_names); /* NULL-terminated */
	free_string_list(cfg->prometheus.header_values);
	free(cfg->adapter.name);
	free(cfg->adapter.path);
	free(cfg->adapter.adapters_dir);
	free(cfg->log.level);
	node_free(cfg->root); /* also frees adapter.options and adapter.queries */
	free(cfg);
}

/* The adapter.options entry `key`, marked used; NULL when absent. */
static config_node *option_lookup(config *cfg, const char *key)
{
	config_node *entry = cfg != NULL ? node_get(cfg->adapter.options, key) : NULL;
	if (entry != NULL)
		entry->used = true;
	return entry;
}

static int option_type_error(const config *cfg, const config_node *entry, const char *expected,
                             char *err, size_t err_size)
{
	const reporter rep = {.file = cfg->path, .err = err, .err_size = err_size};
	char key_path[CONFIG_PATH_MAX];
	path_join(key_path, sizeof key_path, "adapter.options", entry->key);
	report_type(&rep, entry, key_path, expected);
	return -1;
}

int config_option_string(config *cfg, const char *key, const char **out, char *err, size_t err_size)
{
	const config_node *entry = option_lookup(cfg, key);
	if (entry == NULL)
		return 1;
	if (entry->kind != NODE_SCALAR || scalar_is_null(entry))
		return option_type_error(cfg, entry, "a string", err, err_size);
	*out = entry->text;
	return 0;
}

int config_option_bool(config *cfg, const char *key, bool *out, char *err, size_t err_size)
{
	const config_node *entry = option_lookup(cfg, key);
	if (entry == NULL)
		return 1;
	if (!text_to_bool(entry, out))
		return option_type_error(cfg, entry, "a boolean (true or false)", err, err_size);
	return 0;
}

int config_option_int(config *cfg, const char *key, int64_t *out, char *err, size_t err_size)
{
	const config_node *entry = option_lookup(cfg, key);
	if (entry == NULL)
		return 1;
	if (!text_to_int(entry, out))
		return option_type_error(cfg, entry, "an integer", err, err_size);
	return 0;
}

bool config_unused_option(const config *cfg, char *err, size_t err_size)
{
	const config_node *options = cfg != NULL ? cfg->adapter.options : NULL;
	if (options == NULL)
		return false;
	for (size_t i = 0; i < options->n_children; i++) {
		const config_node *entry = options->children[i];
		if (entry->used)
			continue;
		const reporter rep = {.file = cfg->path, .err = err, .err_size = err_size};
		char key_path[CONFIG_PATH_MAX];
		path_join(key_path, sizeof key_path, "adapter.options", entry->key);
		report(&rep, entry->key_line, key_path, "unknown option");
		return true;
	}
	return false;
}

const char *config_query_override(const config *cfg, const char *id)
{
	const config_node *entry = cfg != NULL ? node_get(cfg->adapter.queries, id) : NULL;
	return entry != NULL ? entry->text : NULL;
}

bool config_unknown_query(const config *cfg, const char *const *known_ids, char *err,
                          size_t err_size)
{
	const config_node *unknown =
	    cfg != NULL ? first_unknown_key(cfg->adapter.queries, known_ids) : NULL;
	if (unknown == NULL)
		return false;
	const reporter rep = {.file = cfg->path, .err = err, .err_size = err_size};
	char key_path[CONFIG_PATH_MAX], list[512];
	join_names(known_ids, list, sizeof list);
	path_join(key_path, sizeof key_path, "adapter.queries", unknown->key);
	report(&rep, unknown->key_line, key_path, "unknown query template (known: %s)",
	       list[0] != '\0' ? list : "none");
	return true;
}

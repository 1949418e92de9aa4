/* loader: finds a mesh adapter file, checks that it is an ELF object before
 * dlopen() sees it, then checks its descriptor against ABI v1 so that a
 * broken or foreign adapter fails with one clear line instead of a crash. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define ADAPTER_NAME_MAX 63
#define TEMPLATES_MAX    64
#define OPEN_ERR_SIZE    512

struct adapter {
	void *dl_handle;
	/* Lives in the .so's memory: valid until dlclose(), never copied. */
	const smi_adapter_descriptor *descriptor;
	void *state; /* the adapter's, from open(); meaningful when opened */
	bool opened;
	char file[]; /* the path handed to dlopen(), for messages */
};

/*
 * Smallest descriptor an adapter of each minor may hand us: every field up
 * to and including the last one that minor defines.  Append a row when a
 * minor adds fields; the row for the adapter's own minor is the one used.
 */
static const size_t descriptor_size_by_minor[] = {
    /* 1.0 ends with identify */
    offsetof(smi_adapter_descriptor, identify) + sizeof(smi_adapter_entry_fn),
};
_Static_assert(sizeof descriptor_size_by_minor / sizeof descriptor_size_by_minor[0] ==
                   SMI_ADAPTER_ABI_MINOR + 1,
               "one minimum descriptor size per ABI minor");

/* Messages must stay on one line whatever an adapter or dlerror() put in
 * them, so control characters become spaces and a trailing one goes. */
static void flatten_line(char *text)
{
	for (char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	size_t len = strlen(text);
	while (len > 0 && text[len - 1] == ' ')
		text[--len] = '\0';
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
	if (err == NULL || err_size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
	flatten_line(err);
}

/* "adapter FILE: " + the formatted reason. */
static void file_err(char *err, size_t err_size, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void file_err(char *err, size_t err_size, const char *file, const char *fmt, ...)
{
	if (err == NULL || err_size == 0)
		return;
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	set_err(err, err_size, "adapter %s: %s", file, reason);
}

/* [a-z0-9][a-z0-9_-]*, at most 63 characters.  Reads at most 64 bytes, so
 * it is safe on an adapter's string that is longer than it should be. */
static bool adapter_name_valid(const char *name)
{
	size_t i = 0;
	for (; name[i] != '\0'; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		          (i > 0 && (c == '_' || c == '-'));
		if (!ok || i >= ADAPTER_NAME_MAX)
			return false;
	}
	return i > 0;
}

/* [a-z][a-z0-9_.-]*: the key operators write under adapter.queries. */
static bool template_id_valid(const char *id)
{
	if (!(id[0] >= 'a' && id[0] <= 'z'))
		return false;
	for (const char *c = id + 1; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
		          *c == '.' || *c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/*
 * Writes the file to load into `file`.  A path without a slash gets "./"
 * so that dlopen() opens that file, the one we checked, instead of
 * searching the library path.
 */
static bool resolve_file(const char *name, const char *path, const char *adapters_dir, char *file,
                         size_t file_size, char *err, size_t err_size)
{
	if (name != NULL && !adapter_name_valid(name)) {
		set_err(err, err_size,
		        "adapter.name \"%.64s\" is not a valid adapter name: it must match "
		        "[a-z0-9][a-z0-9_-]* and be at most %d characters",
		        name, ADAPTER_NAME_MAX);
		return false;
	}
	int n;
	if (path != NULL && path[0] != '\0') {
		n = snprintf(file, file_size, "%s%s", strchr(path, '/') ? "" : "./", path);
	} else if (name == NULL) {
		set_err(err, err_size, "adapter: neither adapter.name nor adapter.path is set");
		return false;
	} else if (adapters_dir == NULL || adapters_dir[0] == '\0') {
		set_err(err, err_size, "adapter %s: no adapters directory to look it up in", name);
		return false;
	} else {
		size_t dir_len = strlen(adapters_dir);
		while (dir_len > 1 && adapters_dir[dir_len - 1] == '/')
			dir_len--;
		n = snprintf(file, file_size, "%.*s%s%s.so", (int)dir_len, adapters_dir,
		             adapters_dir[dir_len - 1] == '/' ? "" : "/", name);
	}
	if (n < 0 || (size_t)n >= file_size) {
		set_err(err, err_size, "adapter %.64s: resolved path is longer than %zu bytes",
		        name ? name : path, file_size - 1);
		return false;
	}
	return true;
}

/*
 * Checks that `file` is a regular file starting with the ELF magic, so
 * that common mistakes get a plain message rather than dlerror() text.
 * O_NONBLOCK keeps a FIFO from hanging the server at start-up.
 */
static bool check_elf_file(const char *file, const char *name, const char *path,
                           const char *adapters_dir, char *err, size_t err_size)
{
	bool ok = false;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && (path == NULL || path[0] == '\0'))
			file_err(err, err_size, file,
			         "no such file (looked up adapter.name \"%s\" in %s)", name,
			         adapters_dir);
		else if (errno == ENOENT)
			file_err(err, err_size, file, "no such file (from adapter.path)");
		else
			file_err(err, err_size, file, "cannot open: %s", strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		file_err(err, err_size, file, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		file_err(err, err_size, file, "is a directory, not an adapter .so file");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		file_err(err, err_size, file, "not a regular file");
		goto out;
	}
	unsigned char magic[4];
	ssize_t got;
	do
		got = read(fd, magic, sizeof magic);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		file_err(err, err_size, file, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (got != (ssize_t)sizeof magic || memcmp(magic,
	                                           "\x7f"
	                                           "ELF",
	                                           4) != 0) {
		file_err(err, err_size, file,
		         "not an ELF file: an adapter is a shared object built from C");
		goto out;
	}
	ok = true;
out:
	close(fd);
	return ok;
}

/* dlerror() usually starts with the file name we already print. */
static void dlopen_err(char *err, size_t err_size, const char *file, const char *what)
{
	const char *detail = dlerror();
	if (detail == NULL)
		detail = "unknown error";
	size_t file_len = strlen(file);
	if (strncmp(detail, file, file_len) == 0 && strncmp(detail + file_len, ": ", 2) == 0)
		detail += file_len + 2;
	file_err(err, err_size, file, "%s: %s", what, detail);
}

static bool check_templates(const smi_adapter_descriptor *d, const char *file, char *err,
                            size_t err_size)
{
	if (d->n_templates > TEMPLATES_MAX) {
		file_err(err, err_size, file,
		         "descriptor declares %zu templates, at most %d allowed", d->n_templates,
		         TEMPLATES_MAX);
		return false;
	}
	if (d->n_templates > 0 && d->templates == NULL) {
		file_err(err, err_size, file,
		         "descriptor declares %zu templates but 'templates' is NULL",
		         d->n_templates);
		return false;
	}
	for (size_t i = 0; i < d->n_templates; i++) {
		const smi_template *t = &d->templates[i];
		if (t->id == NULL) {
			file_err(err, err_size, file, "template %zu has a NULL id", i);
			return false;
		}
		if (!template_id_valid(t->id)) {
			file_err(err, err_size, file,
			         "template %zu id \"%.64s\" does not match [a-z][a-z0-9_.-]*", i,
			         t->id);
			return false;
		}
		if (t->text == NULL) {
			file_err(err, err_size, file, "template \"%s\" has NULL text", t->id);
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(d->templates[j].id, t->id) == 0) {
				file_err(err, err_size, file,
				         "template id \"%s\" is used twice (templates %zu and %zu)",
				         t->id, j, i);
				return false;
			}
		}
	}
	return true;
}

/* The order matters: nothing past struct_size is read before the version
 * and size checks have shown that the adapter's minor defines it. */
static bool check_descriptor(const smi_adapter_descriptor *d, const char *name, const char *file,
                             char *err, size_t err_size)
{
	if (d->abi_major != SMI_ADAPTER_ABI_MAJOR) {
		file_err(err, err_size, file, "ABI major %u, this server speaks ABI %d.%d",
		         (unsigned)d->abi_major, SMI_ADAPTER_ABI_MAJOR, SMI_ADAPTER_ABI_MINOR);
		return false;
	}
	if (d->abi_minor > SMI_ADAPTER_ABI_MINOR) {
		file_err(err, err_size, file,
		         "built for ABI %u.%u, newer than this server's ABI %d.%d; "
		         "upgrade smi-metrics",
		         (unsigned)d->abi_major, (unsigned)d->abi_minor, SMI_ADAPTER_ABI_MAJOR,
		         SMI_ADAPTER_ABI_MINOR);
		return false;
	}
	size_t needed = descriptor_size_by_minor[d->abi_minor];
	if (d->struct_size < needed) {
		file_err(err, err_size, file,
		         "descriptor is %u bytes, ABI %u.%u needs at least %zu",
		         (unsigned)d->struct_size, (unsigned)d->abi_major, (unsigned)d->abi_minor,
		         needed);
		return false;
	}
	if (d->name == NULL || d->name[0] == '\0') {
		file_err(err, err_size, file, "descriptor name is empty");
		return false;
	}
	if (!adapter_name_valid(d->name)) {
		file_err(err, err_size, file,
		         "descriptor name \"%.64s\" does not match [a-z0-9][a-z0-9_-]* "
		         "(at most %d characters)",
		         d->name, ADAPTER_NAME_MAX);
		return false;
	}
	if (name != NULL && strcmp(d->name, name) != 0) {
		file_err(err, err_size, file,
		         "descriptor name is \"%s\", but adapter.name is \"%s\"", d->name, name);
		return false;
	}
	if (d->version == NULL) {
		file_err(err, err_size, file, "descriptor version is NULL");
		return false;
	}
	const struct {
		const char *field;
		bool present;
	} callbacks[] = {
	    {"open", d->open != NULL},         {"close", d->close != NULL},
	    {"kinds", d->kinds != NULL},       {"plan", d->plan != NULL},
	    {"identify", d->identify != NULL},
	};
	for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++) {
		if (!callbacks[i].present) {
			file_err(err, err_size, file, "descriptor callback '%s' is NULL",
			         callbacks[i].field);
			return false;
		}
	}
	return check_templates(d, file, err, err_size);
}

adapter *adapter_load(const char *name, const char *path, const char *adapters_dir, char *err,
                      size_t err_size)
{
	char file[PATH_MAX];
	if (!resolve_file(name, path, adapters_dir, file, sizeof file, err, err_size))
		return NULL;
	if (!check_elf_file(file, name, path, adapters_dir, err, err_size))
		return NULL;

	size_t file_size = strlen(file) + 1;
	adapter *a = calloc(1, sizeof *a + file_size);
	if (a == NULL) {
		file_err(err, err_size, file, "out of memory");
		return NULL;
	}
	memcpy(a->file, file, file_size);

	a->dl_handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (a->dl_handle == NULL) {
		dlopen_err(err, err_size, file, "cannot load");
		goto fail;
	}
	dlerror();
	void *symbol = dlsym(a->dl_handle, SMI_ADAPTER_ENTRY_SYMBOL);
	if (symbol == NULL) {
		file_err(err, err_size, file,
		         "symbol " SMI_ADAPTER_ENTRY_SYMBOL " not found: "
		         "is this an smi-metrics adapter?");
		goto fail;
	}
	/* POSIX guarantees a dlsym() result converts to a function pointer;
	 * memcpy says so without a cast ISO C frowns on. */
	smi_adapter_entry_fn entry;
	_Static_assert(sizeof entry == sizeof symbol, "function and data pointers differ");
	memcpy(&entry, &symbol, sizeof entry);

	a->descriptor = entry();
	if (a->descriptor == NULL) {
		file_err(err, err_size, file, SMI_ADAPTER_ENTRY_SYMBOL "() returned NULL");
		goto fail;
	}
	if (!check_descriptor(a->descriptor, name, file, err, err_size))
		goto fail;

	log_msg(LOG_INFO, "adapter %s %s loaded from %s (ABI %u.%u)", a->descriptor->name,
	        a->descriptor->version, file, (unsigned)a->descriptor->abi_major,
	        (unsigned)a->descriptor->abi_minor);
	return a;
fail:
	adapter_unload(a);
	return NULL;
}

int adapter_open(adapter *a, const smi_host *host, char *err, size_t err_size)
{
	if (a == NULL || host == NULL) {
		set_err(err, err_size, "adapter: open needs an adapter and a host table");
		return SMI_ERR_INVALID;
	}
	if (a->opened) {
		set_err(err, err_size, "adapter %s: already open", a->descriptor->name);
		return SMI_ERR_INVALID;
	}
	/* The adapter's message goes through our buffer so that it is zeroed
	 * before and NUL-terminated after, whatever the adapter does. */
	char adapter_err[OPEN_ERR_SIZE] = {0};
	void *state = NULL;
	smi_status status = a->descriptor->open(host, &state, adapter_err, sizeof adapter_err);
	adapter_err[sizeof adapter_err - 1] = '\0';
	if (status != SMI_OK) {
		flatten_line(adapter_err);
		if (adapter_err[0] != '\0')
			set_err(err, err_size, "adapter %s: %s", a->descriptor->name, adapter_err);
		else
			set_err(err, err_size, "adapter %s: open failed with status %d",
			        a->descriptor->name, (int)status);
		return status;
	}
	a->state = state;
	a->opened = true;
	return SMI_OK;
}

void adapter_unload(adapter *a)
{
	if (a == NULL)
		return;
	if (a->opened)
		a->descriptor->close(a->state);
	a->descriptor = NULL; /* points into the .so, gone after dlclose() */
	if (a->dl_handle != NULL && dlclose(a->dl_handle) != 0) {
		const char *detail = dlerror();
		log_msg(LOG_WARN, "adapter %s: dlclose failed: %s", a->file,
		        detail ? detail : "unknown error");
	}
	free(a);
}

const smi_adapter_descriptor *adapter_descriptor(const adapter *a)
{
	return a ? a->descriptor : NULL;
}

void *adapter_state(const adapter *a)
{
	return a ? a->state : NULL;
}

const char *adapter_file(const adapter *a)
{
	return a ? a->file : NULL;
}

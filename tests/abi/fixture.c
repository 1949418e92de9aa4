/* fixture: the smallest complete smi-metrics adapter, named "fixture", and
 * (with one FX_* flag) the deliberately broken variants the loader tests
 * must refuse.  Builds against the public header alone, so it doubles as
 * the out-of-tree adapter example checked by `make installcheck`:
 *
 *     cc -shared -fPIC -fvisibility=hidden -Iinclude fixture.c -o fixture.so
 *
 * Flags: FX_MISSING_SYMBOL, FX_WRONG_MAJOR, FX_NEWER_MINOR,
 * FX_NULL_CALLBACKS, FX_SHORT_STRUCT, FX_NULL_DESCRIPTOR,
 * FX_BAD_TEMPLATE_ID, FX_DUP_TEMPLATE_ID; none = the good adapter. */
#include <smi-metrics/adapter.h>

#include <stdio.h>
#include <stdlib.h>

/* Everything the adapter knows lives here: no global mutable state. */
typedef struct fixture_state {
	const smi_host *host; /* borrowed from the server until close() */
} fixture_state;

static const smi_template fixture_templates[] = {
    {"fixture.requests",
     "sum by ({{group_by}}) "
     "(increase(fixture_requests_total{ {{target}} }[{{window}}]))",
     "requests per pod, split by outcome"},
#if defined(FX_BAD_TEMPLATE_ID)
    {"Fixture Requests", "vector(0)", "an id operators could not write"},
#elif defined(FX_DUP_TEMPLATE_ID)
    {"fixture.requests", "vector(0)", "the same id again"},
#endif
};

static smi_status fixture_open(const smi_host *host, void **state_out, char *err, size_t err_size)
{
	if (host->abi_major != SMI_ADAPTER_ABI_MAJOR) {
		snprintf(err, err_size, "host speaks ABI %u, adapter needs %d",
		         (unsigned)host->abi_major, SMI_ADAPTER_ABI_MAJOR);
		return SMI_ERR_INVALID;
	}
	/* adapter.options.fail: true makes open fail, for the loader tests. */
	bool fail = false;
	smi_status status = host->option(host->ctx, "fail", SMI_OPTION_BOOL, &fail);
	if (status == SMI_ERR_OPTION)
		return SMI_ERR_OPTION; /* the host has reported file, line and key */
	if (status == SMI_OK && fail) {
		snprintf(err, err_size, "option fail is true, refusing to open");
		return SMI_ERR_OPTION;
	}
	fixture_state *state = calloc(1, sizeof *state);
	if (state == NULL) {
		snprintf(err, err_size, "out of memory");
		return SMI_ERR_NOMEM;
	}
	state->host = host;
	*state_out = state;
	return SMI_OK;
}

static void fixture_close(void *state)
{
	free(state);
}

static uint64_t fixture_kinds(void *state)
{
	(void)state;
	return UINT64_C(1) << SMI_KIND_POD;
}

#if !defined(FX_NULL_CALLBACKS)
static smi_status fixture_plan(void *state, const smi_request *request, smi_plan *plan)
{
	(void)state;
	if (request->kind != SMI_KIND_POD || request->scope == SMI_SCOPE_EDGES)
		return SMI_ERR_UNSUPPORTED;
	smi_query_spec *query = &plan->queries[0];
	query->struct_size = sizeof *query;
	query->template_id = "fixture.requests";
	query->role = SMI_ROLE_COUNTS;
	query->self.namespace_label = "namespace";
	query->self.name_label = "pod";
	query->latency_to_ms = 1.0;
	plan->n_queries = 1;
	return SMI_OK;
}
#endif

static smi_status fixture_identify(void *state, const smi_request *request, uint32_t query_index,
                                   const smi_series *series, smi_identity *identity)
{
	const fixture_state *fixture = state;
	const smi_host *host = fixture->host;
	(void)request;
	(void)query_index;
	identity->feeds = SMI_FEEDS_RESOURCE;
	identity->self_namespace = host->label(host->ctx, series, "namespace");
	identity->self_name = host->label(host->ctx, series, "pod");
	identity->outcome = SMI_OUTCOME_SUCCESS;
	return SMI_OK;
}

static const smi_adapter_descriptor fixture_descriptor = {
#if defined(FX_WRONG_MAJOR)
    .abi_major = 2,
#else
    .abi_major = SMI_ADAPTER_ABI_MAJOR,
#endif
#if defined(FX_NEWER_MINOR)
    .abi_minor = SMI_ADAPTER_ABI_MINOR + 1,
#else
    .abi_minor = SMI_ADAPTER_ABI_MINOR,
#endif
#if defined(FX_SHORT_STRUCT)
    .struct_size = 8,
#else
    .struct_size = sizeof(smi_adapter_descriptor),
#endif
    .name = "fixture",
    .version = "0.0.1",
    .description = "minimal adapter for the loader tests",
    .templates = fixture_templates,
    .n_templates = sizeof fixture_templates / sizeof fixture_templates[0],
    .open = fixture_open,
    .close = fixture_close,
    .kinds = fixture_kinds,
#if defined(FX_NULL_CALLBACKS)
    .plan = NULL,
#else
    .plan = fixture_plan,
#endif
    .identify = fixture_identify,
};

#if defined(FX_MISSING_SYMBOL)
/* A plausible mistake: an entry point under another name. */
SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_get_descriptor(void);

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_get_descriptor(void)
{
	return &fixture_descriptor;
}
#else
SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void);

SMI_ADAPTER_EXPORT const smi_adapter_descriptor *smi_adapter_descriptor_v1(void)
{
#if defined(FX_NULL_DESCRIPTOR)
	(void)fixture_descriptor;
	return NULL;
#else
	return &fixture_descriptor;
#endif
}
#endif

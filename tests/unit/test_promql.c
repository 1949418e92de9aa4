/* test_promql: promql_render/promql_check_template and label-name validation
 * (core/promql.h, placeholders documented in smi-metrics/adapter.h).  The
 * expected PromQL is written by hand. */
#include "promql.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deployment sides as the Linkerd adapter names them. */
static const smi_query_spec deploy_spec = {
    .struct_size = sizeof(smi_query_spec),
    .template_id = "t",
    .role = SMI_ROLE_COUNTS,
    .self = {"namespace", "deployment"},
    .peer = {"dst_namespace", "dst_deployment"},
    .latency_to_ms = 1.0,
};

/* The Namespace kind: the namespace label is also the name label. */
static const smi_query_spec namespace_spec = {
    .struct_size = sizeof(smi_query_spec),
    .template_id = "t",
    .role = SMI_ROLE_COUNTS,
    .self = {"namespace", "namespace"},
    .peer = {"dst_namespace", "dst_namespace"},
    .latency_to_ms = 1.0,
};

static smi_request request(smi_kind kind, smi_scope scope, const char *ns, const char *name)
{
	smi_request r = {
	    .struct_size = sizeof r,
	    .kind = kind,
	    .scope = scope,
	    .namespace_name = ns,
	    .name = name,
	    .window_seconds = 30,
	};
	return r;
}

static char err[256];

/* Renders and compares; fails the test with the renderer's message. */
static void expect(const char *tmpl, const smi_query_spec *spec, const smi_request *req,
                   const char *expected)
{
	err[0] = '\0';
	char *out = promql_render(tmpl, spec, req, err, sizeof err);
	ck_assert_msg(out != NULL, "render of \"%s\" failed: %s", tmpl, err);
	ck_assert_str_eq(out, expected);
	free(out);
}

/* Expects an error whose message contains `fragment`. */
static void expect_error(const char *tmpl, const smi_query_spec *spec, const smi_request *req,
                         const char *fragment)
{
	err[0] = '\0';
	char *out = promql_render(tmpl, spec, req, err, sizeof err);
	char shown[512];
	snprintf(shown, sizeof shown, "%s", out ? out : "");
	bool rendered = out != NULL;
	free(out); /* before asserting, so that a failure leaks nothing */
	ck_assert_msg(!rendered, "\"%s\" rendered as \"%s\"", tmpl, shown);
	ck_assert_msg(err[0] != '\0', "no message for \"%s\"", tmpl);
	if (fragment)
		ck_assert_msg(strstr(err, fragment) != NULL, "message \"%s\" lacks \"%s\"", err,
		              fragment);
}

/* ---- label names ---- */

START_TEST(test_label_names)
{
	static const char *const good[] = {"a",  "A",           "_",         "_a",           "a_",
	                                   "a1", "dst_k8s_job", "namespace", "Deployment_9", "le"};
	static const char *const bad[] = {"",    "1a",  "9",       "__name__", "__",
	                                  "__x", "a-b", "a.b",     "a b",      "a\"",
	                                  "a}",  "a=",  "k8s-job", "\xc3\xa9", "a\n"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(promql_valid_label_name(good[i]), "\"%s\" rejected", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!promql_valid_label_name(bad[i]), "\"%s\" accepted", bad[i]);
	ck_assert(!promql_valid_label_name(NULL));
}
END_TEST

/* ---- each placeholder, one object ---- */

START_TEST(test_object_placeholders)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	expect("{{window}}", &deploy_spec, &q, "30s");
	expect("{{namespace}}", &deploy_spec, &q, "\"emojivoto\"");
	expect("{{name}}", &deploy_spec, &q, "\"web\"");
	expect("{{target}}", &deploy_spec, &q, "namespace=\"emojivoto\",deployment=\"web\"");
	expect("{{peer_target}}", &deploy_spec, &q,
	       "dst_namespace=\"emojivoto\",dst_deployment=\"web\"");
	expect("{{group_by}}", &deploy_spec, &q, "namespace,deployment");
	expect("{{peer_group_by}}", &deploy_spec, &q, "dst_namespace,dst_deployment");
	expect("{{name_label}}", &deploy_spec, &q, "deployment");
	expect("{{peer_name_label}}", &deploy_spec, &q, "dst_deployment");
}
END_TEST

START_TEST(test_object_full_query)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	q.window_seconds = 300;
	expect(
	    "sum by ({{group_by}}, classification) (increase(response_total{direction=\"inbound\", "
	    "{{target}}}[{{window}}]))",
	    &deploy_spec, &q,
	    "sum by (namespace,deployment, classification) (increase(response_total{"
	    "direction=\"inbound\", namespace=\"emojivoto\",deployment=\"web\"}[300s]))");
	/* Spaces inside the braces are allowed. */
	expect("x{ {{ target }} }[{{ window}}]", &deploy_spec, &q,
	       "x{ namespace=\"emojivoto\",deployment=\"web\" }[300s]");
	/* A template without placeholders comes back verbatim, single braces too. */
	expect("up{job=\"x\"} }", &deploy_spec, &q, "up{job=\"x\"} }");
	expect("", &deploy_spec, &q, "");
	/* Placeholders may repeat. */
	expect("{{name}}{{name}}{{window}}", &deploy_spec, &q, "\"web\"\"web\"300s");
}
END_TEST

START_TEST(test_edges_placeholders)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "emojivoto", "web");
	expect("{{target}}", &deploy_spec, &q, "namespace=\"emojivoto\",deployment=\"web\"");
	expect("{{peer_target}}", &deploy_spec, &q,
	       "dst_namespace=\"emojivoto\",dst_deployment=\"web\"");
	expect("{{group_by}}, {{peer_group_by}}", &deploy_spec, &q,
	       "namespace,deployment, dst_namespace,dst_deployment");
	expect("{{namespace}}/{{name}}", &deploy_spec, &q, "\"emojivoto\"/\"web\"");
	expect("{{peer_name_label}}!=\"\"", &deploy_spec, &q, "dst_deployment!=\"\"");
}
END_TEST

START_TEST(test_namespace_list_placeholders)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_NAMESPACE_LIST, "emojivoto", NULL);
	expect("{{target}}", &deploy_spec, &q, "namespace=\"emojivoto\",deployment!=\"\"");
	expect("{{peer_target}}", &deploy_spec, &q,
	       "dst_namespace=\"emojivoto\",dst_deployment!=\"\"");
	expect("{{group_by}}", &deploy_spec, &q, "namespace,deployment");
	expect("{{namespace}}", &deploy_spec, &q, "\"emojivoto\"");
	expect("{{window}}", &deploy_spec, &q, "30s");
	expect_error("{{name}}", &deploy_spec, &q, "{{name}}");
	expect_error("x{ {{target}},name={{name}} }", &deploy_spec, &q, "{{name}}");
}
END_TEST

START_TEST(test_cluster_list_placeholders)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	expect("{{target}}", &deploy_spec, &q, "deployment!=\"\"");
	expect("{{peer_target}}", &deploy_spec, &q, "dst_deployment!=\"\"");
	expect("{{group_by}}", &deploy_spec, &q, "namespace,deployment");
	expect("{{name_label}}", &deploy_spec, &q, "deployment");
	expect(
	    "sum by ({{group_by}}, le) (increase(response_latency_ms_bucket{direction=\"inbound\", "
	    "{{target}}}[{{window}}]))",
	    &deploy_spec, &q,
	    "sum by (namespace,deployment, le) (increase(response_latency_ms_bucket{"
	    "direction=\"inbound\", deployment!=\"\"}[30s]))");
	expect_error("{{name}}", &deploy_spec, &q, "{{name}}");
	expect_error("{{namespace}}", &deploy_spec, &q, "{{namespace}}");
}
END_TEST

START_TEST(test_namespace_kind)
{
	smi_request obj = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "emojivoto");
	expect("{{target}}", &namespace_spec, &obj, "namespace=\"emojivoto\"");
	expect("{{peer_target}}", &namespace_spec, &obj, "dst_namespace=\"emojivoto\"");
	/* Deduplicated: the namespace label is the name label. */
	expect("{{group_by}}", &namespace_spec, &obj, "namespace");
	expect("{{peer_group_by}}", &namespace_spec, &obj, "dst_namespace");
	expect("{{name}}", &namespace_spec, &obj, "\"emojivoto\"");
	expect("{{name_label}}", &namespace_spec, &obj, "namespace");
	expect_error("{{namespace}}", &namespace_spec, &obj, "{{namespace}}");
}
END_TEST

START_TEST(test_namespace_kind_lists)
{
	smi_request all = request(SMI_KIND_NAMESPACE, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	expect("{{target}}", &namespace_spec, &all, "namespace!=\"\"");
	expect("{{peer_target}}", &namespace_spec, &all, "dst_namespace!=\"\"");
	expect("{{group_by}}", &namespace_spec, &all, "namespace");
	expect_error("{{name}}", &namespace_spec, &all, "{{name}}");

	smi_request edges = request(SMI_KIND_NAMESPACE, SMI_SCOPE_EDGES, NULL, "emojivoto");
	expect(
	    "sum by ({{group_by}}, {{peer_group_by}}) (x{ {{target}}, {{peer_name_label}}!=\"\"})",
	    &namespace_spec, &edges,
	    "sum by (namespace, dst_namespace) (x{ namespace=\"emojivoto\", dst_namespace!=\"\"})");

	/* A Namespace spec with a distinct (unused) namespace label still
	 * selects and groups by the name label only. */
	smi_query_spec other = namespace_spec;
	other.self.namespace_label = "workload_ns";
	expect("{{target}}|{{group_by}}", &other, &edges, "namespace=\"emojivoto\"|namespace");
}
END_TEST

/* ---- template errors ---- */

static const char *const bad_templates[] = {
    "{{nmae}}",
    "{{}}",
    "{{ }}",
    "{{Target}}",
    "{{target }",
    "{{target",
    "x{{",
    "}}",
    "x}}y",
    "a}}{{target}}",
    "{{target}} }} {{window}}",
    "{{.namespace}}",
    "{{namespace|lower}}",
    "{{window}}{{",
    "{{window}}}}",
};

START_TEST(test_bad_templates)
{
	const char *tmpl = bad_templates[_i];
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	expect_error(tmpl, &deploy_spec, &q, NULL);
	err[0] = '\0';
	ck_assert_msg(!promql_check_template(tmpl, err, sizeof err), "check accepted \"%s\"", tmpl);
	ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(test_error_messages)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	expect_error("rate(x{ {{nmae}} }[1m])", &deploy_spec, &q, "unknown placeholder {{nmae}}");
	ck_assert(!promql_check_template("rate(x{ {{nmae}} }[1m])", err, sizeof err));
	ck_assert_msg(strstr(err, "{{nmae}}") != NULL, "%s", err);
	expect_error("sum(x{{{target}}", &deploy_spec, &q, NULL);
	expect_error("abc {{target", &deploy_spec, &q, "unterminated");
	expect_error("abc }} {{target}}", &deploy_spec, &q, "}}");
}
END_TEST

START_TEST(test_check_valid_templates)
{
	static const char *const good[] = {
	    "",
	    "up",
	    "x{a=\"b\"}",
	    "{{window}}{{namespace}}{{name}}{{target}}{{peer_target}}{{group_by}}"
	    "{{peer_group_by}}{{name_label}}{{peer_name_label}}",
	    "sum by ({{group_by}}, le) (increase(m{ {{target}} }[{{window}}]))",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		err[0] = '\0';
		ck_assert_msg(promql_check_template(good[i], err, sizeof err), "\"%s\": %s",
		              good[i], err);
	}
}
END_TEST

/* `{{{target}}}` (a selector brace right before a placeholder) is either
 * rejected or read as "{" + {{target}} + "}"; never anything else. */
START_TEST(test_triple_braces)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	char *out = promql_render("m{{{target}}}", &deploy_spec, &q, err, sizeof err);
	if (out)
		ck_assert_str_eq(out, "m{namespace=\"emojivoto\",deployment=\"web\"}");
	free(out);
}
END_TEST

/* ---- side labels ---- */

START_TEST(test_bad_side_labels)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "emojivoto", "web");
	smi_query_spec s = deploy_spec;

	s.self.name_label = "deploy-ment";
	expect_error("{{target}}", &s, &q, NULL);
	expect_error("{{group_by}}", &s, &q, NULL);
	expect_error("{{name_label}}", &s, &q, NULL);

	s = deploy_spec;
	s.self.name_label = "deployment=\"x\"} or vector(1) #";
	expect_error("{{target}}", &s, &q, NULL);
	expect_error("{{name_label}}", &s, &q, NULL);

	s = deploy_spec;
	s.self.namespace_label = "name space";
	expect_error("{{target}}", &s, &q, NULL);

	s = deploy_spec;
	s.self.name_label = "__name__";
	expect_error("{{target}}", &s, &q, NULL);

	/* An empty peer is fine until a template uses it. */
	s = deploy_spec;
	s.peer.namespace_label = NULL;
	s.peer.name_label = NULL;
	expect("{{target}}", &s, &q, "namespace=\"emojivoto\",deployment=\"web\"");
	expect_error("{{peer_target}}", &s, &q, NULL);
	expect_error("{{peer_group_by}}", &s, &q, NULL);
	expect_error("{{peer_name_label}}", &s, &q, NULL);
}
END_TEST

/* A namespace label that is not a label name must not be dropped silently
 * from {{group_by}}: the grouping would merge namespaces.  (Regression:
 * emit_group_by() used to skip it and render just "deployment".) */
START_TEST(test_group_by_bad_namespace_label)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_CLUSTER_LIST, NULL, NULL);
	smi_query_spec s = deploy_spec;
	s.self.namespace_label = "name-space";
	expect_error("{{group_by}}", &s, &q, NULL);
}
END_TEST

/* ---- quoting ---- */

START_TEST(test_quoting)
{
	/* The router never lets these through; the renderer quotes them anyway. */
	smi_request q =
	    request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_OBJECT, "a\\b", "web\"}or vector(1)#");
	expect("{{namespace}}", &deploy_spec, &q, "\"a\\\\b\"");
	expect("{{name}}", &deploy_spec, &q, "\"web\\\"}or vector(1)#\"");
	expect("{{target}}", &deploy_spec, &q,
	       "namespace=\"a\\\\b\",deployment=\"web\\\"}or vector(1)#\"");

	q.namespace_name = "line\nbreak";
	q.name = "\\\"\n";
	expect("{{namespace}}", &deploy_spec, &q, "\"line\\nbreak\"");
	expect("{{name}}", &deploy_spec, &q, "\"\\\\\\\"\\n\"");
	expect("{{peer_target}}", &deploy_spec, &q,
	       "dst_namespace=\"line\\nbreak\",dst_deployment=\"\\\\\\\"\\n\"");

	/* A value ending in a backslash cannot escape its closing quote. */
	q.name = "x\\";
	expect("{{name}}}", &deploy_spec, &q, "\"x\\\\\"}");

	/* Braces in a value are not placeholders. */
	q.name = "{{window}}";
	expect("{{name}}", &deploy_spec, &q, "\"{{window}}\"");

	smi_request ns = request(SMI_KIND_NAMESPACE, SMI_SCOPE_OBJECT, NULL, "e\"v");
	expect("{{target}}", &namespace_spec, &ns, "namespace=\"e\\\"v\"");
}
END_TEST

/* Rendered output has no raw newline even when a value carries one. */
START_TEST(test_no_raw_newline)
{
	smi_request q = request(SMI_KIND_DEPLOYMENT, SMI_SCOPE_EDGES, "a\nb", "c\nd");
	char *out = promql_render("{{target}} {{peer_target}} {{namespace}} {{name}}", &deploy_spec,
	                          &q, err, sizeof err);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_null(strchr(out, '\n'));
	free(out);
}
END_TEST

START_TEST(test_long_values)
{
	/* Growth of the output buffer past its first allocation. */
	char name[2000];
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	smi_request q = request(SMI_KIND_POD, SMI_SCOPE_OBJECT, "ns", name);
	char *out = promql_render("{{name}}{{name}}", &deploy_spec, &q, err, sizeof err);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(strlen(out), 2 * (sizeof name - 1 + 2));
	free(out);
}
END_TEST

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

static Suite *promql_suite(void)
{
	Suite *s = suite_create("promql");
	TCase *render = tcase_create("render");
	tcase_add_test(render, test_label_names);
	tcase_add_test(render, test_object_placeholders);
	tcase_add_test(render, test_object_full_query);
	tcase_add_test(render, test_edges_placeholders);
	tcase_add_test(render, test_namespace_list_placeholders);
	tcase_add_test(render, test_cluster_list_placeholders);
	tcase_add_test(render, test_namespace_kind);
	tcase_add_test(render, test_namespace_kind_lists);
	tcase_add_test(render, test_bad_side_labels);
	tcase_add_test(render, test_group_by_bad_namespace_label);
	suite_add_tcase(s, render);

	TCase *templates = tcase_create("templates");
	tcase_add_loop_test(templates, test_bad_templates, 0, COUNT(bad_templates));
	tcase_add_test(templates, test_error_messages);
	tcase_add_test(templates, test_check_valid_templates);
	tcase_add_test(templates, test_triple_braces);
	suite_add_tcase(s, templates);

	TCase *quoting = tcase_create("quoting");
	tcase_add_test(quoting, test_quoting);
	tcase_add_test(quoting, test_no_raw_newline);
	tcase_add_test(quoting, test_long_values);
	suite_add_tcase(s, quoting);
	return s;
}

int main(void)
{
	SRunner *runner = srunner_create(promql_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failures = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

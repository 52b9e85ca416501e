/* The OpenAPI document (docs/openapi.json) against the code: every route of
 * the route table is documented with what the pipeline enforces for it, no
 * documented operation is missing from the table, and every error code of
 * errors.c is in the Error schema. Nothing running. */
#include "autoconf.h"

#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "api/routes.h"
#include "http/errors.h"

static cJSON *doc;

static void load_doc(void)
{
	const char *src = getenv("GALA_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/docs/openapi.json", src ? src : ".");
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	ck_assert_msg(len > 0, "%s is empty", path);
	rewind(f);
	char *text = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	size_t n = fread(text, 1, (size_t)len, f);
	fclose(f);
	ck_assert_msg(n == (size_t)len, "short read of %s", path);
	text[n] = '\0';
	doc = cJSON_Parse(text);
	free(text);
	ck_assert_msg(doc != NULL, "%s is not valid JSON", path);
}

static void free_doc(void)
{
	cJSON_Delete(doc);
	doc = NULL;
}

static const cJSON *at(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* "#/components/parameters/IdempotencyKey" within the document, or NULL. */
static const cJSON *resolve(const char *pointer)
{
	if (strncmp(pointer, "#/", 2) != 0)
		return NULL;
	const cJSON *node = doc;
	const char *p = pointer + 2;
	while (node != NULL && *p != '\0') {
		char token[256];
		size_t n = 0;
		for (; *p != '\0' && *p != '/'; p++) {
			char c = *p;
			if (c == '~' && (p[1] == '0' || p[1] == '1'))
				c = *++p == '0' ? '~' : '/';
			if (n + 1 < sizeof token)
				token[n++] = c;
		}
		token[n] = '\0';
		if (*p == '/')
			p++;
		node = at(node, token);
	}
	return node;
}

/* o itself, or what its "$ref" names. */
static const cJSON *deref(const cJSON *o)
{
	const cJSON *r = at(o, "$ref");
	return cJSON_IsString(r) ? resolve(r->valuestring) : o;
}

static void lower(const char *in, char *out, size_t outlen)
{
	size_t i = 0;
	for (; in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

static const cJSON *operation_of(const struct route *r)
{
	char method[16];
	lower(r->method, method, sizeof method);
	return at(at(at(doc, "paths"), r->pattern), method);
}

START_TEST(document_is_openapi_3_1)
{
	const cJSON *v = at(doc, "openapi");
	ck_assert_msg(cJSON_IsString(v) && strncmp(v->valuestring, "3.1.", 4) == 0,
	    "openapi must be 3.1.x");
	ck_assert(cJSON_IsObject(at(doc, "paths")));
	ck_assert(cJSON_IsObject(at(at(at(doc, "components"), "schemas"), "Error")));
}
END_TEST

START_TEST(every_route_is_documented)
{
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *r = &api_routes[i];
		ck_assert_msg(cJSON_IsObject(operation_of(r)), "%s %s is not in docs/openapi.json",
		    r->method, r->pattern);
	}
}
END_TEST

static const char *const http_methods[] = { "get", "put", "post", "delete", "options", "head",
	"patch", "trace", NULL };

/* An operation that nginx answers itself ("x-gala-served-by": "nginx"). */
static bool served_by_nginx(const cJSON *op)
{
	const cJSON *v = at(op, "x-gala-served-by");
	return cJSON_IsString(v) && strcmp(v->valuestring, "nginx") == 0;
}

static bool is_routed(const char *pattern, const char *method_lower)
{
	for (size_t i = 0; i < api_routes_count; i++) {
		char method[16];
		lower(api_routes[i].method, method, sizeof method);
		if (strcmp(api_routes[i].pattern, pattern) == 0 && strcmp(method, method_lower) == 0)
			return true;
	}
	return false;
}

static bool is_method(const char *name)
{
	for (const char *const *m = http_methods; *m != NULL; m++)
		if (strcmp(*m, name) == 0)
			return true;
	return false;
}

START_TEST(every_documented_operation_is_routed)
{
	const cJSON *item;
	int operations = 0;
	cJSON_ArrayForEach(item, at(doc, "paths")) {
		const cJSON *member;
		cJSON_ArrayForEach(member, item) {
			if (!is_method(member->string) || served_by_nginx(member))
				continue;
			operations++;
			ck_assert_msg(is_routed(item->string, member->string),
			    "%s %s is documented but not in the route table", member->string,
			    item->string);
		}
	}
	ck_assert_int_eq(operations, (int)api_routes_count);
}
END_TEST

/* The text of the source tree's file rel, or NULL (free() it). */
static char *read_source(const char *rel)
{
	const char *src = getenv("GALA_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[8192];
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *grown = realloc(text, cap);
			ck_assert_ptr_nonnull(grown);
			text = grown;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (text != NULL)
		text[len] = '\0';
	return text;
}

/* What nginx serves itself (the documentation) has a location of its own in
 * nginx/gala.conf and no route: the worker would never see the request. */
START_TEST(operations_served_by_nginx_have_a_location_and_no_route)
{
	char *conf = read_source("nginx/gala.conf");
	ck_assert_msg(conf != NULL, "cannot read nginx/gala.conf");
	int served = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, at(doc, "paths")) {
		const cJSON *member;
		cJSON_ArrayForEach(member, item) {
			if (!is_method(member->string) || !served_by_nginx(member))
				continue;
			served++;
			ck_assert_msg(strcmp(member->string, "get") == 0,
			    "%s %s: nginx serves static files to GET and HEAD only", member->string,
			    item->string);
			ck_assert_msg(!is_routed(item->string, member->string),
			    "%s %s is served by nginx and in the route table", member->string,
			    item->string);
			char location[512];
			snprintf(location, sizeof location, "location = %s {", item->string);
			ck_assert_msg(strstr(conf, location) != NULL, "nginx/gala.conf has no \"%s\"",
			    location);
		}
	}
	free(conf);
	ck_assert_int_eq(served, 2); /* /api/docs and /api/openapi.json */
}
END_TEST

static bool in_string_array(const cJSON *array, const char *s)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, array)
		if (cJSON_IsString(v) && strcmp(v->valuestring, s) == 0)
			return true;
	return false;
}

START_TEST(every_error_code_is_in_the_error_schema)
{
	const cJSON *error = at(at(at(at(doc, "components"), "schemas"), "Error"), "properties");
	const cJSON *body = deref(at(error, "error"));
	const cJSON *codes = at(at(at(body, "properties"), "code"), "enum");
	const cJSON *types = at(at(at(body, "properties"), "type"), "enum");
	const cJSON *desc = at(at(at(doc, "components"), "schemas"), "Error");
	desc = at(desc, "description");
	ck_assert(cJSON_IsArray(codes));
	ck_assert(cJSON_IsArray(types));
	for (int e = GE_OK + 1; e < GE__COUNT; e++) {
		const struct gala_error_info info = gala_error_info((enum gala_error)e);
		bool described = cJSON_IsString(desc) && strstr(desc->valuestring, info.code) != NULL;
		ck_assert_msg(in_string_array(codes, info.code) || described,
		    "error code %s is neither in the Error schema's enum nor its description",
		    info.code);
		ck_assert_msg(in_string_array(types, info.type), "error type %s (of %s) is not in "
		    "the Error schema's type enum", info.type, info.code);
	}
}
END_TEST

static const char *auth_name(enum route_auth a)
{
	switch (a) {
	case AUTH_NONE:
		return "none";
	case AUTH_OPTIONAL:
		return "optional";
	case AUTH_REQUIRED:
		return "required";
	}
	return "?";
}

static const char *rate_name(enum rate_rule r)
{
	switch (r) {
	case RATE_NONE:
		return "none";
	case RATE_AUTH:
		return "auth";
	case RATE_AUTH_EMAIL:
		return "auth-email";
	case RATE_AUTH_USER:
		return "auth-user";
	case RATE_WRITE:
		return "write";
	}
	return "?";
}

/* Whether the operation's security lists scheme, and an empty requirement
 * (authentication optional). */
static void security_of(const cJSON *op, bool *bearer, bool *cookie, bool *anonymous, int *n)
{
	*bearer = *cookie = *anonymous = false;
	*n = 0;
	const cJSON *req;
	cJSON_ArrayForEach(req, at(op, "security")) {
		(*n)++;
		*bearer = *bearer || at(req, "bearerAuth") != NULL;
		*cookie = *cookie || at(req, "sessionCookie") != NULL;
		*anonymous = *anonymous || req->child == NULL;
	}
}

START_TEST(operations_state_what_the_pipeline_enforces)
{
	static const struct {
		unsigned bit;
		const char *name;
	} roles[] = { { ROLE_BIT_CUSTOMER, "customer" }, { ROLE_BIT_PROVIDER, "provider" },
		{ ROLE_BIT_ADMIN, "admin" } };
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *r = &api_routes[i];
		const cJSON *op = operation_of(r);
		ck_assert_ptr_nonnull(op);
		const cJSON *v = at(op, "x-gala-auth");
		ck_assert_msg(cJSON_IsString(v) && strcmp(v->valuestring, auth_name(r->auth)) == 0,
		    "%s %s: x-gala-auth is not %s", r->method, r->pattern, auth_name(r->auth));
		v = at(op, "x-gala-rate-limit");
		ck_assert_msg(cJSON_IsString(v) && strcmp(v->valuestring, rate_name(r->rate)) == 0,
		    "%s %s: x-gala-rate-limit is not %s", r->method, r->pattern, rate_name(r->rate));
		v = at(op, "x-gala-idempotent");
		ck_assert_msg(cJSON_IsBool(v) && cJSON_IsTrue(v) == !!(r->flags & ROUTE_IDEMPOTENT),
		    "%s %s: x-gala-idempotent is wrong", r->method, r->pattern);
		v = at(op, "x-gala-roles");
		ck_assert_msg(cJSON_IsArray(v), "%s %s: no x-gala-roles", r->method, r->pattern);
		int nroles = 0;
		for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
			bool listed = in_string_array(v, roles[k].name);
			ck_assert_msg(listed == !!(r->roles & roles[k].bit), "%s %s: role %s %s",
			    r->method, r->pattern, roles[k].name, listed ? "listed but not required" :
			    "required but not listed");
			nroles += listed;
		}
		ck_assert_int_eq(cJSON_GetArraySize(v), nroles);

		bool bearer, cookie, anonymous;
		int n;
		security_of(op, &bearer, &cookie, &anonymous, &n);
		if (r->auth == AUTH_NONE)
			ck_assert_msg(cJSON_IsArray(at(op, "security")) && n == 0,
			    "%s %s: security must be []", r->method, r->pattern);
		else
			ck_assert_msg(bearer && cookie && anonymous == (r->auth == AUTH_OPTIONAL),
			    "%s %s: security must list bearerAuth and sessionCookie%s", r->method,
			    r->pattern, r->auth == AUTH_OPTIONAL ? " and {}" : " only");
	}
}
END_TEST

/* The parameter of op or of its path item with this name and location. */
static const cJSON *parameter(const cJSON *path_item, const cJSON *op, const char *in,
    const char *name)
{
	const cJSON *lists[] = { at(op, "parameters"), at(path_item, "parameters") };
	for (size_t i = 0; i < 2; i++) {
		const cJSON *p;
		cJSON_ArrayForEach(p, lists[i]) {
			const cJSON *d = deref(p);
			const cJSON *pin = at(d, "in"), *pname = at(d, "name");
			if (cJSON_IsString(pin) && cJSON_IsString(pname) &&
			    strcmp(pin->valuestring, in) == 0 && strcasecmp(pname->valuestring, name) == 0)
				return d;
		}
	}
	return NULL;
}

START_TEST(every_post_has_idempotency_key_and_path_parameters_are_declared)
{
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *r = &api_routes[i];
		const cJSON *item = at(at(doc, "paths"), r->pattern);
		const cJSON *op = operation_of(r);
		ck_assert_ptr_nonnull(op);
		if (strcmp(r->method, "POST") == 0)
			ck_assert_msg(parameter(item, op, "header", "Idempotency-Key") != NULL,
			    "POST %s: no Idempotency-Key header parameter", r->pattern);
		for (const char *p = strchr(r->pattern, '{'); p != NULL; p = strchr(p + 1, '{')) {
			char name[64];
			size_t n = strcspn(p + 1, "}");
			ck_assert(n < sizeof name);
			memcpy(name, p + 1, n);
			name[n] = '\0';
			const cJSON *d = parameter(item, op, "path", name);
			ck_assert_msg(d != NULL && cJSON_IsTrue(at(d, "required")),
			    "%s %s: path parameter %s is not declared as required", r->method,
			    r->pattern, name);
		}
	}
}
END_TEST

/* Every "$ref" of the document names something in it. */
static void check_refs(const cJSON *node)
{
	const cJSON *child;
	cJSON_ArrayForEach(child, node) {
		if (child->string != NULL && strcmp(child->string, "$ref") == 0 &&
		    cJSON_IsString(child))
			ck_assert_msg(resolve(child->valuestring) != NULL, "dangling $ref %s",
			    child->valuestring);
		check_refs(child);
	}
}

START_TEST(every_ref_resolves)
{
	check_refs(doc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unit-openapi");
	TCase *tc = tcase_create("openapi");
	tcase_add_checked_fixture(tc, load_doc, free_doc);
	tcase_add_test(tc, document_is_openapi_3_1);
	tcase_add_test(tc, every_route_is_documented);
	tcase_add_test(tc, every_documented_operation_is_routed);
	tcase_add_test(tc, operations_served_by_nginx_have_a_location_and_no_route);
	tcase_add_test(tc, every_error_code_is_in_the_error_schema);
	tcase_add_test(tc, operations_state_what_the_pipeline_enforces);
	tcase_add_test(tc, every_post_has_idempotency_key_and_path_parameters_are_declared);
	tcase_add_test(tc, every_ref_resolves);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

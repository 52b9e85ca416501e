#include "autoconf.h"

#include "http/json.h"

#include <string.h>

#include "http/response.h"

static bool has_duplicate_keys(const cJSON *obj)
{
	for (const cJSON *a = obj->child; a != NULL; a = a->next) {
		for (const cJSON *b = a->next; b != NULL; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return true;
		if ((cJSON_IsObject(a)) && has_duplicate_keys(a))
			return true;
	}
	return false;
}

static void json_delete_fn(void *p)
{
	cJSON_Delete(p);
}

/* cJSON decodes the escape \u0000 into a NUL that silently cuts the string
 * short ("Ann\u0000Evil" would read as "Ann"). The parser reads a copy in
 * which that escape is \u007f, a control character that every string
 * validator refuses, naming its field. */
static const char *without_nul_escapes(arena_t *a, const char *body, size_t len)
{
	char *copy = NULL;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		if (body[i] == '"') {
			in_string = !in_string;
		} else if (in_string && body[i] == '\\') {
			if (i + 5 < len && body[i + 1] == 'u' && memcmp(body + i + 2, "0000", 4) == 0) {
				if (copy == NULL) {
					copy = arena_alloc(a, len + 1);
					memcpy(copy, body, len);
					copy[len] = '\0';
				}
				memcpy(copy + i + 2, "007f", 4);
			}
			i++;
		}
	}
	return copy != NULL ? copy : body;
}

int json_parse_request(struct request *req)
{
	if (req->body == NULL || req->body_len == 0) {
		http_respond_error(req, GE_MALFORMED_JSON, NULL,
		    "the request body is empty; send a JSON object");
		return -1;
	}
	if (!utf8_valid(req->body, req->body_len)) {
		http_respond_error(req, GE_MALFORMED_JSON, NULL,
		    "the request body is not valid UTF-8");
		return -1;
	}
	const char *text = without_nul_escapes(req->arena, req->body, req->body_len);
	const char *end = NULL;
	cJSON *json = cJSON_ParseWithLengthOpts(text, req->body_len, &end, false);
	if (json == NULL) {
		size_t pos = end ? (size_t)(end - text) : 0;
		cJSON *extra = cJSON_CreateObject();
		cJSON_AddNumberToObject(extra, "position", (double)pos);
		http_respond_error_extra(req, GE_MALFORMED_JSON, NULL,
		    arena_printf(req->arena, "malformed JSON at byte %zu", pos), extra);
		return -1;
	}
	arena_defer(req->arena, json_delete_fn, json);
	/* cJSON stops at the end of the first value; only white space may follow. */
	for (const char *p = end; p < text + req->body_len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			size_t pos = (size_t)(p - text);
			cJSON *extra = cJSON_CreateObject();
			cJSON_AddNumberToObject(extra, "position", (double)pos);
			http_respond_error_extra(req, GE_MALFORMED_JSON, NULL,
			    arena_printf(req->arena, "unexpected data after the JSON value at byte %zu", pos),
			    extra);
			return -1;
		}
	}
	if (!cJSON_IsObject(json)) {
		http_respond_error(req, GE_VALIDATION, NULL, "the request body must be a JSON object");
		return -1;
	}
	if (has_duplicate_keys(json)) {
		http_respond_error(req, GE_MALFORMED_JSON, NULL, "the JSON object has duplicate keys");
		return -1;
	}
	req->json = json;
	return 0;
}

#include "autoconf.h"

#include "http/json.h"

#include <string.h>

#include "http/response.h"

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		unsigned char c = *p;
		size_t n;
		unsigned int cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

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
	const char *end = NULL;
	cJSON *json = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false);
	if (json == NULL) {
		size_t pos = end ? (size_t)(end - req->body) : 0;
		cJSON *extra = cJSON_CreateObject();
		cJSON_AddNumberToObject(extra, "position", (double)pos);
		http_respond_error_extra(req, GE_MALFORMED_JSON, NULL,
		    arena_printf(req->arena, "malformed JSON at byte %zu", pos), extra);
		return -1;
	}
	arena_defer(req->arena, json_delete_fn, json);
	/* cJSON stops at the end of the first value; only white space may follow. */
	for (const char *p = end; p < req->body + req->body_len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			size_t pos = (size_t)(p - req->body);
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

void json_add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddStringToObject(obj, name, value);
}

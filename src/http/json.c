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

/* Worker-owned: the arena cJSON allocates from, or NULL. */
static arena_t *json_arena;

static void *json_arena_alloc(size_t size)
{
	return arena_alloc(json_arena, size);
}

static void json_arena_free(void *p)
{
	(void)p;
}

void json_alloc_in(arena_t *a)
{
	json_arena = a;
	if (a == NULL) {
		cJSON_InitHooks(NULL);
		return;
	}
	cJSON_Hooks hooks = { .malloc_fn = json_arena_alloc, .free_fn = json_arena_free };
	cJSON_InitHooks(&hooks);
}

cJSON *json_list(cJSON *items, long long total, int limit, int offset)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "items", items);
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "limit", limit);
	cJSON_AddNumberToObject(o, "offset", offset);
	return o;
}

void json_add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddStringToObject(obj, name, value);
}

#include "autoconf.h"

#include "http/json.h"

#include <stdint.h>
#include <string.h>

#include "http/response.h"

static uint64_t key_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Whether obj's own members repeat a key: open addressing in a table of at
 * least twice as many slots as members. */
static bool object_repeats_key(arena_t *a, const cJSON *obj)
{
	size_t n = 0;
	for (const cJSON *m = obj->child; m != NULL; m = m->next)
		n++;
	if (n < 2)
		return false;
	size_t slots = 4;
	while (slots < 2 * n)
		slots *= 2;
	const char **table = arena_calloc(a, slots, sizeof *table);
	for (const cJSON *m = obj->child; m != NULL; m = m->next) {
		size_t i = (size_t)key_hash(m->string) & (slots - 1);
		while (table[i] != NULL) {
			if (strcmp(table[i], m->string) == 0)
				return true;
			i = (i + 1) & (slots - 1);
		}
		table[i] = m->string;
	}
	return false;
}

bool json_has_duplicate_keys(arena_t *a, const cJSON *tree)
{
	if (cJSON_IsObject(tree) && object_repeats_key(a, tree))
		return true;
	for (const cJSON *m = tree->child; m != NULL; m = m->next)
		if ((cJSON_IsObject(m) || cJSON_IsArray(m)) && json_has_duplicate_keys(a, m))
			return true;
	return false;
}

/* What the caps refuse, found in one pass over the text (a malformed text
 * is the parser's business: this only counts): NULL, or why. */
static const char *over_caps(arena_t *a, const char *text, size_t len)
{
	int depth = 0;
	size_t members = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > JSON_MAX_DEPTH)
				return arena_printf(a, "the JSON body nests deeper than %d levels",
				    JSON_MAX_DEPTH);
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == ':' && ++members > JSON_MAX_MEMBERS) {
			return arena_printf(a, "the JSON body has more than %d members",
			    JSON_MAX_MEMBERS);
		}
	}
	return NULL;
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
	const char *too_big = over_caps(req->arena, req->body, req->body_len);
	if (too_big != NULL) {
		http_respond_error(req, GE_PAYLOAD_TOO_LARGE, NULL, "%s", too_big);
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
	json_defer(req->arena, json);
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
	if (json_has_duplicate_keys(req->arena, json)) {
		http_respond_error(req, GE_MALFORMED_JSON, NULL, "the JSON object has duplicate keys");
		return -1;
	}
	req->json = json;
	return 0;
}

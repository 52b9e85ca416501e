/* JSON request bodies: strict parsing (valid UTF-8, one object, no
 * duplicate keys, nothing after it) and typed field access for validation. */
#ifndef GALA_JSON_H
#define GALA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "http/request.h"

bool utf8_valid(const char *s, size_t len);

/* Parses req->body into req->json (owned by the arena). On failure sets a
 * 400 (malformed, with the byte position) or 422 (not an object) response
 * and returns -1. */
int json_parse_request(struct request *req);

/* The list envelope of API.md, {"items","total","limit","offset"}; takes
 * ownership of items (an array). */
cJSON *json_list(cJSON *items, long long total, int limit, int offset);

/* Makes cJSON allocate from a, so that a request's trees cost no malloc
 * and die with its arena (cJSON_Delete then frees nothing); NULL goes back
 * to malloc. Only switch while no cJSON tree is alive. */
void json_alloc_in(arena_t *a);

/* Adds a string member, or null when value is NULL. */
void json_add_string_or_null(cJSON *obj, const char *name, const char *value);

#endif

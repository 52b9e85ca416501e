/* JSON request bodies: strict parsing (valid UTF-8, one object, no
 * duplicate keys, nothing after it) within caps on nesting and members,
 * checked before the parser builds anything. The helpers every layer
 * shares are in core/json.h. */
#ifndef GALA_JSON_H
#define GALA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/json.h"
#include "http/request.h"

/* Arrays and objects nest at most this deep (the body's object is 1). */
#define JSON_MAX_DEPTH 32
/* Object members in the whole body, nested ones included. */
#define JSON_MAX_MEMBERS 1000

/* Parses req->body into req->json (owned by the arena). On failure sets a
 * 400 (malformed, with the byte position; duplicate keys), 413 (nested
 * deeper than JSON_MAX_DEPTH or more than JSON_MAX_MEMBERS members) or 422
 * (not an object) response and returns -1. */
int json_parse_request(struct request *req);

/* --- For the unit tests. --- */

/* Whether an object anywhere in tree (in arrays too) has a key twice: one
 * hash set per object, linear in the number of members. Its scratch
 * memory comes from a. */
bool json_has_duplicate_keys(arena_t *a, const cJSON *tree);

#endif

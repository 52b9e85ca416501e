/* JSON shared by every layer: cJSON allocating from the request's arena,
 * the list envelope of API.md, and the text rule every JSON string and
 * every text column share (valid UTF-8). */
#ifndef GALA_CORE_JSON_H
#define GALA_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"

bool utf8_valid(const char *s, size_t len);

/* The length of the valid UTF-8 character s starts with (reading at most
 * len bytes), or 0 when none starts there. */
size_t utf8_char_len(const char *s, size_t len);

/* A copy of s, from a, that is valid UTF-8 of at most max bytes: each
 * byte that does not start a valid sequence becomes U+FFFD, and the cut
 * falls between characters. For text from the outside (headers) bound for
 * a text column or a log. */
char *utf8_scrub(arena_t *a, const char *s, size_t max);

/* Makes cJSON allocate from a, so that a request's trees cost no malloc
 * and die with its arena (cJSON_Delete then frees nothing); NULL goes back
 * to malloc. Only switch while no cJSON tree is alive. */
void json_alloc_in(arena_t *a);

/* Hands tree (NULL: nothing) to a: it is deleted when a is reset. Returns
 * tree, for chaining. */
cJSON *json_defer(arena_t *a, cJSON *tree);

/* tree printed as compact JSON, the same text as cJSON_PrintUnformatted
 * (numbers included), into memory from a; its length in *len. NULL when
 * the tree holds an invalid item or a raw item without text. Faster than
 * cJSON's printer, which measures every string twice and reads each
 * printed fraction back with sscanf. */
char *json_print(arena_t *a, const cJSON *tree, size_t *len);

/* Deletes tree unless it came from the arena of json_alloc_in (which
 * frees nothing: walking it would be wasted). */
void json_delete(cJSON *tree);

/* The list envelope of API.md, {"items","total","limit","offset"}; takes
 * ownership of items (an array). */
cJSON *json_list(cJSON *items, long long total, int limit, int offset);

/* Moves every member of from into into, then deletes from (NULL: nothing). */
void json_merge(cJSON *into, cJSON *from);

/* Adds a string member, or null when value is NULL. */
void json_add_string_or_null(cJSON *obj, const char *name, const char *value);

#endif

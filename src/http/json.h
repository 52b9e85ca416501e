/* JSON request bodies: strict parsing (valid UTF-8, one object, no
 * duplicate keys, nothing after it). The helpers every layer shares are
 * in core/json.h. */
#ifndef GALA_JSON_H
#define GALA_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/json.h"
#include "http/request.h"

/* Parses req->body into req->json (owned by the arena). On failure sets a
 * 400 (malformed, with the byte position) or 422 (not an object) response
 * and returns -1. */
int json_parse_request(struct request *req);

#endif

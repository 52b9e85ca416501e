/* What the handlers of objects share (api/market.c): path ids, refusals,
 * the answers of a read, a change and a create. */
#ifndef GALA_API_MARKET_H
#define GALA_API_MARKET_H

#include <stdbool.h>

#include "core/errors.h"
#include "http/errors.h"
#include "http/request.h"

/* Answers e, with why's param and message when set (why may be NULL). */
void market_respond_error(struct request *req, enum gala_error e, const struct refusal *why);

/* The path's first parameter when it is a UUID; anything else names no
 * object, so the request is answered 404 and NULL returned. */
const char *market_path_id(struct request *req);

/* True when the body has name with a JSON null (PATCH: clear the field). */
bool market_field_null(const struct request *req, const char *name);

/* Answers 200 with out when e is GE_OK, else e as market_respond_error
 * does (out, then NULL, is not used). */
void market_respond(struct request *req, enum gala_error e, cJSON *out,
    const struct refusal *why);

/* GET of one object by the path's id: 200 with what get found, 404 for a
 * malformed id, else get's error. */
void market_get(struct request *req,
    enum gala_error (*get)(struct svc_ctx *cx, const char *id, cJSON **out));

/* Answers 201 with body and Location: path. */
void market_respond_created(struct request *req, const char *path, cJSON *body);

#endif

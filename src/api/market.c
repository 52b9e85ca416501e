#include "autoconf.h"

#include "api/market.h"

#include "core/crypto.h"
#include "http/auth.h"
#include "http/response.h"

void market_respond_error(struct request *req, enum gala_error e, const struct refusal *why)
{
	const char *param = why ? why->param : NULL;
	const char *message = why ? why->message : NULL;
	if (why != NULL && why->available_at != NULL) {
		cJSON *extra = cJSON_CreateObject();
		cJSON_AddStringToObject(extra, "available_at", why->available_at);
		http_respond_error_extra(req, e, param, message, extra);
	} else if (message != NULL)
		http_respond_error(req, e, param, "%s", message);
	else
		http_respond_error(req, e, param, NULL);
}

void market_respond(struct request *req, enum gala_error e, cJSON *out,
    const struct refusal *why)
{
	if (e != GE_OK) {
		cJSON_Delete(out);
		market_respond_error(req, e, why);
		return;
	}
	response_json(req, 200, out);
}

const char *market_path_id(struct request *req)
{
	const char *id = req->npath_params > 0 ? req->path_params[0] : NULL;
	if (id == NULL || !uuid_valid(id)) {
		http_respond_error(req, GE_NOT_FOUND, NULL, NULL);
		return NULL;
	}
	return id;
}

bool market_field_null(const struct request *req, const char *name)
{
	return req->json != NULL &&
	    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(req->json, name));
}

void market_respond_created(struct request *req, const char *path, cJSON *body)
{
	response_header(req, "Location", path);
	response_json(req, 201, body);
}

void market_get(struct request *req,
    enum gala_error (*get)(struct svc_ctx *cx, const char *id, cJSON **out))
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return;
	cJSON *out = NULL;
	enum gala_error e = get(&req->cx, id, &out);
	market_respond(req, e, out, NULL);
}

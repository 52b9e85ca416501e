#include "autoconf.h"

#include "api/handlers.h"
#include "http/json.h"
#include "http/response.h"
#include "services/health.h"

/* One database round trip: the load balancer's view of whether this worker
 * can do useful work, with the schema version an operator wants to see. */
void api_health(struct request *req)
{
	const char *schema_version = NULL;
	enum gala_error e = health_check(&req->cx, &schema_version);
	cJSON *o = cJSON_CreateObject();
	if (e == GE_OK) {
		cJSON_AddStringToObject(o, "status", "ok");
		cJSON_AddStringToObject(o, "database", "ok");
		cJSON_AddStringToObject(o, "version", PACKAGE_VERSION);
		json_add_string_or_null(o, "schema_version", schema_version);
		response_json(req, 200, o);
		return;
	}
	const struct gala_error_info info = gala_error_info(e);
	cJSON_AddStringToObject(o, "status", "unavailable");
	cJSON_AddStringToObject(o, "database", "unavailable");
	cJSON_AddStringToObject(o, "version", PACKAGE_VERSION);
	cJSON *err = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(err, "type", info.type);
	cJSON_AddStringToObject(err, "code", info.code);
	cJSON_AddStringToObject(err, "message", info.message);
	cJSON_AddStringToObject(err, "request_id", req->request_id);
	response_json(req, 503, o);
	response_header(req, "Retry-After", "5");
}

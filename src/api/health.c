#include "autoconf.h"

#include "api/handlers.h"
#include "db/db.h"
#include "http/json.h"
#include "http/response.h"

/* One database round trip: the load balancer's view of whether this worker
 * can do useful work, with the schema version an operator wants to see. */
void api_health(struct request *req)
{
	PGresult *res;
	enum db_status st = db_exec(req->arena, &res,
	    "SELECT max(version) FROM schema_migrations", 0, NULL);
	cJSON *o = cJSON_CreateObject();
	if (st == DB_OK) {
		cJSON_AddStringToObject(o, "status", "ok");
		cJSON_AddStringToObject(o, "database", "ok");
		cJSON_AddStringToObject(o, "version", PACKAGE_VERSION);
		json_add_string_or_null(o, "schema_version", db_value(res, 0, 0));
		response_json(req, 200, o);
		return;
	}
	const struct gala_error_info info = gala_error_info(GE_DB_UNAVAILABLE);
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

#include "autoconf.h"

#include "api/handlers.h"

#include <string.h>

#include "http/json.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/audit_logs.h"

static const char *query_action(struct validator *v)
{
	if (v->failed)
		return NULL;
	const char *s = request_query(v->req, "action");
	if (s != NULL && (*s == '\0' || strlen(s) > 64 || !utf8_valid(s, strlen(s)))) {
		v_fail(v, "action", "action must be 1 to 64 characters, such as auth.login");
		return NULL;
	}
	return s;
}

static const char *query_status(struct validator *v)
{
	if (v->failed)
		return NULL;
	const char *s = request_query(v->req, "status");
	if (s != NULL && strcmp(s, "success") != 0 && strcmp(s, "failure") != 0) {
		v_fail(v, "status", "status must be success or failure");
		return NULL;
	}
	return s;
}

void api_admin_audit_logs(struct request *req)
{
	struct validator v;
	v_init(&v, req);
	struct audit_log_filter f;
	f.action = query_action(&v);
	f.status = query_status(&v);
	f.actor_user_id = v_query_uuid(&v, "actor_user_id");
	f.target_user_id = v_query_uuid(&v, "target_user_id");
	f.created_after = v_timestamp(&v, "created_after", false, true);
	f.created_before = v_timestamp(&v, "created_before", false, true);
	v_page(&v, 50, &f.limit, &f.offset);
	if (v.failed)
		return;
	cJSON *items;
	long long total;
	enum gala_error e = audit_logs_list(req->arena, &f, &items, &total);
	if (e != GE_OK) {
		http_respond_error(req, e, NULL, NULL);
		return;
	}
	response_json(req, 200, json_list(items, total, f.limit, f.offset));
}

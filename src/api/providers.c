#include "autoconf.h"

#include <string.h>

#include "api/handlers.h"
#include "api/market.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/providers.h"

static const char *const categories[] = { "catering", "music", "photography", "venue",
	"decor", "planning", "other", NULL };

/* The body of a create (required set) or a PATCH (everything optional;
 * null clears the description and is refused elsewhere). */
static void read_fields(struct validator *v, bool create, struct provider_fields *f)
{
	static const char *const fields[] = { "business_name", "category", "description", "city",
		NULL };
	static const char *const required[] = { "business_name", "category", "city", NULL };
	v_only(v, fields);
	if (!create) {
		for (const char *const *r = required; *r != NULL; r++)
			if (market_field_null(v->req, *r))
				v_fail(v, *r, "%s cannot be null", *r);
		f->clear_description = market_field_null(v->req, "description");
	}
	f->business_name = v_string(v, "business_name", create, 1, 200, true);
	f->category = v_enum(v, "category", create, categories);
	f->description = v_string(v, "description", false, 1, 2000, false);
	f->city = v_string(v, "city", create, 1, 100, true);
}

void api_providers_create(struct request *req)
{
	struct validator v;
	struct provider_fields f = { 0 };
	v_init(&v, req);
	read_fields(&v, true, &f);
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = providers_create(&req->cx, &f, &out);
	if (e != GE_OK) {
		market_respond_error(req, e, NULL);
		return;
	}
	market_respond_created(req, arena_printf(req->arena, "/api/providers/%s",
	    cJSON_GetObjectItem(out, "id")->valuestring), out);
}

void api_providers_list(struct request *req)
{
	struct validator v;
	int limit, offset;
	v_init(&v, req);
	v_page(&v, 20, &limit, &offset);
	const char *category = request_query(req, "category");
	const char *city = request_query(req, "city");
	if (!v.failed && category != NULL) {
		const char *const *c = categories;
		while (*c != NULL && strcmp(*c, category) != 0)
			c++;
		if (*c == NULL)
			v_fail(&v, "category", "category must be one of: catering, music, photography, "
			    "venue, decor, planning, other");
	}
	if (!v.failed && city != NULL && (*city == '\0' || utf8_length(city) > 100))
		v_fail(&v, "city", "city must be 1 to 100 characters");
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = providers_list(&req->cx, category, city, limit, offset, &out);
	market_respond(req, e, out, NULL);
}

void api_providers_get(struct request *req)
{
	market_get(req, providers_get);
}

void api_providers_update(struct request *req)
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return;
	struct validator v;
	struct provider_fields f = { 0 };
	v_init(&v, req);
	read_fields(&v, false, &f);
	if (v.failed)
		return;
	cJSON *out = NULL;
	struct refusal why = { 0 };
	enum gala_error e = providers_update(&req->cx, id, &f, &out, &why);
	market_respond(req, e, out, &why);
}

#include "autoconf.h"

#include "api/handlers.h"
#include "api/market.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/payments.h"

void api_payments_list(struct request *req)
{
	struct validator v;
	int limit, offset;
	v_init(&v, req);
	v_page(&v, 20, &limit, &offset);
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = payments_list(&req->cx, limit, offset, &out);
	market_respond(req, e, out, NULL);
}

void api_payments_get(struct request *req)
{
	market_get(req, payments_get);
}

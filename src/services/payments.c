#include "autoconf.h"

#include "services/payments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/session.h"
#include "core/json.h"
#include "services/list.h"

cJSON *payment_json(const PGresult *res, int row)
{
	static const char *const names[] = { "id", "event_service_id", "payment_type", "payer_id",
		"payee_id", "amount_cents", "currency", "status", "stripe_payment_intent_id",
		"stripe_transfer_id", "stripe_refund_id", "created_at", "updated_at" };
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
		const char *v = db_value(res, row, i);
		char t[DB_TIME_LEN];
		if (v == NULL)
			cJSON_AddNullToObject(o, names[i]);
		else if (i == PAY_CREATED_AT || i == PAY_UPDATED_AT)
			cJSON_AddStringToObject(o, names[i], db_time(res, row, i, t));
		else if (i == PAY_AMOUNT_CENTS)
			cJSON_AddRawToObject(o, names[i], v);   /* an int8 column: digits */
		else
			cJSON_AddStringToObject(o, names[i], v);
	}
	return o;
}

#define PAYMENTS_ORDER "p.created_at DESC, p.id DESC"
#define PAYMENTS_OF_USER "payments p WHERE p.payer_id = $1 OR p.payee_id = $1"

enum gala_error payments_list(struct svc_ctx *cx, int limit, int offset, cJSON **out)
{
	static const char *const page_sql[2][2] = {
		{ SQL_PAGE(PAYMENT_COLUMNS, "payments p", PAYMENTS_ORDER, "$1", "$2"),
		  SQL_PAGE_TOTAL("payments p") },
		{ SQL_PAGE(PAYMENT_COLUMNS, PAYMENTS_OF_USER, PAYMENTS_ORDER, "$2", "$3"),
		  SQL_PAGE_TOTAL(PAYMENTS_OF_USER) },
	};
	int scoped = !session_is_admin(cx->caller);
	const struct list_query q = { page_sql[scoped][0], page_sql[scoped][1], scoped,
		&cx->caller->id, false };
	return list_page(cx->arena, &q, limit, offset, payment_json, out);
}

enum gala_error payments_get(struct svc_ctx *cx, const char *id, cJSON **out)
{
	const char *p[] = { id };
	PGresult *res;
	enum db_status st = db_exec(cx->arena, &res,
	    "SELECT " PAYMENT_COLUMNS " FROM payments p WHERE p.id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	const char *payer = db_value(res, 0, PAY_PAYER_ID), *payee = db_value(res, 0, PAY_PAYEE_ID);
	if (!session_is_admin(cx->caller) && !(payer != NULL && strcmp(payer, cx->caller->id) == 0) &&
	    strcmp(payee, cx->caller->id) != 0)
		return GE_NOT_FOUND;
	*out = payment_json(res, 0);
	return GE_OK;
}

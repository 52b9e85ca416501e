#include "autoconf.h"

#include "services/connect.h"

#include <string.h>

#include "clients/stripe.h"
#include "core/config.h"
#include "core/crypto.h"
#include "db/db.h"
#include "services/session.h"
#include "services/charges.h"

/* Creates the Express account; the key makes every onboarding of this
 * provider the same request, so concurrent ones get one account. */
static enum gala_error create_account(struct svc_ctx *cx, const char *provider_id,
    const char **acct, struct refusal *why)
{
	arena_t *a = cx->arena;
	const struct session_profile *me = session_profile(cx->caller);
	if (me == NULL)
		return GE_DB_UNAVAILABLE;
	const struct stripe_param params[] = {
		{ "type", "express" },
		{ "email", me->email },
		/* Both, as Stripe asks of an Express account under the full
		 * service agreement; only transfers are used (separate charges
		 * and transfers). */
		{ "capabilities[card_payments][requested]", "true" },
		{ "capabilities[transfers][requested]", "true" },
		{ "metadata[service_provider_id]", provider_id },
		{ "metadata[user_id]", cx->caller->id },
	};
	struct stripe_result r;
	const char *key = arena_printf(a, "connect_account:%s", provider_id);
	if (stripe_call(a, "POST", "/v1/accounts", params, sizeof params / sizeof params[0], key,
	    &r) != STRIPE_OK)
		return charges_stripe_error(a, &r, why);
	const char *id = stripe_str(r.object, "id");
	if (id == NULL)
		return GE_INTERNAL;
	/* Only where none is stored: a concurrent onboarding stored the same
	 * account already, and an older one always wins. */
	const char *p[] = { provider_id, id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE service_providers SET stripe_account_id = "
	    "coalesce(stripe_account_id, $2), updated_at = now() WHERE id = $1 "
	    "RETURNING stripe_account_id", 2, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	*acct = db_value(res, 0, 0);
	return GE_OK;
}

enum gala_error connect_onboard(struct svc_ctx *cx, const char *provider_id,
    const char **url, const char **stripe_account_id, struct refusal *why)
{
	arena_t *a = cx->arena;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	const char *p[] = { provider_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res,
	    "SELECT user_id, stripe_account_id FROM service_providers WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	enum { PR_USER_ID, PR_STRIPE_ACCOUNT };
	if (strcmp(db_value(res, 0, PR_USER_ID), cx->caller->id) != 0) {
		why->message = "only the provider's own user may connect its Stripe account";
		return GE_FORBIDDEN;
	}
	const char *acct = db_value(res, 0, PR_STRIPE_ACCOUNT);
	enum gala_error e;
	if (acct == NULL && (e = create_account(cx, provider_id, &acct, why)) != GE_OK)
		return e;
	/* A link is single-use and short-lived: each call makes a new one. */
	char nonce[33];
	crypto_random_hex(nonce, 16);
	const char *back = arena_printf(a, "%s/providers/%s/stripe-onboarding",
	    gala_config->frontend_url, provider_id);
	const struct stripe_param params[] = {
		{ "account", acct },
		{ "type", "account_onboarding" },
		{ "refresh_url", arena_printf(a, "%s?refresh=1", back) },
		{ "return_url", arena_printf(a, "%s?done=1", back) },
	};
	struct stripe_result r;
	if (stripe_call(a, "POST", "/v1/account_links", params, 4,
	    arena_printf(a, "account_link:%s:%s", provider_id, nonce), &r) != STRIPE_OK)
		return charges_stripe_error(a, &r, why);
	*url = stripe_str(r.object, "url");
	*stripe_account_id = acct;
	return *url != NULL ? GE_OK : GE_INTERNAL;
}

#include "autoconf.h"

#include "services/maintenance.h"

#include <stdio.h>
#include <stdlib.h>

#include "services/idempotency.h"
#include "core/log.h"
#include "services/context.h"
#include "services/charges.h"
#include "services/outbox.h"
#include "services/payouts.h"
#include "services/webhooks.h"
#include "core/clock.h"

/* The steps of gala maintenance, in the order they run. */
struct maintenance_task {
	const char *name;    /* the key of its count in the log line */
	enum db_status (*run)(arena_t *a, long long *count);
};

/* Runs a DELETE of at most $1 rows (with arg as $2 when not NULL) until it
 * deletes fewer. Each statement repeats its condition on the rows it
 * deletes, so a row changed since the inner SELECT picked it (a limiter
 * bucket checked again) is kept. */
static enum db_status purge_batches(arena_t *a, const char *sql, const char *arg,
    long long *count)
{
	char batch[16];
	snprintf(batch, sizeof batch, "%d", MAINTENANCE_BATCH);
	const char *params[] = { batch, arg };
	for (;;) {
		PGresult *res;
		enum db_status st = db_exec(a, &res, sql, arg ? 2 : 1, params);
		if (st != DB_OK)
			return st;
		long long n = strtoll(PQcmdTuples(res), NULL, 10);
		*count += n;
		if (n < MAINTENANCE_BATCH)
			return DB_OK;
	}
}

/* Limiter buckets that are full again (theoretical arrival time passed). */
static enum db_status maintenance_purge_rate_limits(arena_t *a, long long *count)
{
	return purge_batches(a,
	    "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits "
	    "WHERE tat < now() LIMIT $1::int) AND tat < now()", NULL, count);
}

/* Idempotency keys older than IDEMPOTENCY_KEEP_HOURS. */
static enum db_status maintenance_purge_idempotency_keys(arena_t *a, long long *count)
{
	char hours[16];
	snprintf(hours, sizeof hours, "%d", IDEMPOTENCY_KEEP_HOURS);
	return purge_batches(a,
	    "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key "
	    "FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $2::int) "
	    "LIMIT $1::int) AND created_at < now() - make_interval(hours => $2::int)", hours, count);
}

/* Revoked access tokens past their expiry (they fail on exp by then). */
static enum db_status maintenance_purge_revoked_tokens(arena_t *a, long long *count)
{
	/* A few minutes of slack for clock differences between the workers,
	 * which check exp, and the database. */
	return purge_batches(a,
	    "DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens "
	    "WHERE expires_at < now() - interval '5 minutes' LIMIT $1::int) "
	    "AND expires_at < now() - interval '5 minutes'", NULL, count);
}

/* Verification codes used, or expired more than a day ago (until then a
 * late try still hears otp_expired rather than invalid_otp). */
static enum db_status maintenance_purge_email_otps(arena_t *a, long long *count)
{
	return purge_batches(a,
	    "DELETE FROM email_otps WHERE user_id IN (SELECT user_id FROM email_otps "
	    "WHERE used_at IS NOT NULL OR expires_at < now() - interval '1 day' LIMIT $1::int) "
	    "AND (used_at IS NOT NULL OR expires_at < now() - interval '1 day')", NULL, count);
}

/* Password reset tokens used or expired. */
static enum db_status maintenance_purge_password_reset_tokens(arena_t *a, long long *count)
{
	return purge_batches(a,
	    "DELETE FROM password_reset_tokens WHERE token_hash IN (SELECT token_hash "
	    "FROM password_reset_tokens WHERE used_at IS NOT NULL OR expires_at < now() "
	    "LIMIT $1::int) AND (used_at IS NOT NULL OR expires_at < now())", NULL, count);
}

/* Second-step login tokens used or expired (they are refused either way). */
static enum db_status maintenance_purge_mfa_tokens(arena_t *a, long long *count)
{
	return purge_batches(a,
	    "DELETE FROM mfa_tokens WHERE token_hash IN (SELECT token_hash "
	    "FROM mfa_tokens WHERE used_at IS NOT NULL OR expires_at < now() "
	    "LIMIT $1::int) AND (used_at IS NOT NULL OR expires_at < now())", NULL, count);
}

/* Mails sent or given up on (their bodies are erased then) after
 * OUTBOX_KEEP_DAYS: long enough to answer "did my mail go out?". */
static enum db_status maintenance_purge_mail_outbox(arena_t *a, long long *count)
{
	char days[16];
	snprintf(days, sizeof days, "%d", OUTBOX_KEEP_DAYS);
	return purge_batches(a,
	    "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox "
	    "WHERE state IN ('sent', 'failed') AND finished_at < now() - make_interval(days => $2::int) "
	    "LIMIT $1::int) AND state IN ('sent', 'failed') "
	    "AND finished_at < now() - make_interval(days => $2::int)", days, count);
}

static const struct maintenance_task tasks[] = {
	{ "rate_limits", maintenance_purge_rate_limits },
	{ "idempotency_keys", maintenance_purge_idempotency_keys },
	{ "revoked_tokens", maintenance_purge_revoked_tokens },
	{ "email_otps", maintenance_purge_email_otps },
	{ "password_reset_tokens", maintenance_purge_password_reset_tokens },
	{ "mfa_tokens", maintenance_purge_mfa_tokens },
	{ "mail_outbox", maintenance_purge_mail_outbox },
	/* Money (services/payouts.c, services/charges.c, services/webhooks.c). */
	{ "stuck_payouts_settled", payouts_complete_stuck },
	{ "cancelled_bookings_refunded", charges_refund_orphans },
	{ "started_refunds_finished", charges_finish_started_refunds },
	{ "stripe_events", webhooks_purge_events },
};

int maintenance_run(void)
{
	arena_t *a = arena_new(4096);
	cJSON *deleted = cJSON_CreateObject();
	cJSON *failed = cJSON_CreateArray();
	long long started = clock_us();
	for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
		long long n = 0;
		enum db_status st = tasks[i].run(a, &n);
		arena_reset(a);
		cJSON_AddNumberToObject(deleted, tasks[i].name, (double)n);
		if (st != DB_OK) {
			cJSON_AddItemToArray(failed, cJSON_CreateString(tasks[i].name));
			log_error("gala.maintenance", "%s failed (%s)", tasks[i].name,
			    st == DB_UNAVAILABLE ? "database unavailable" : "statement failed");
		}
	}
	arena_free(a);
	int rc = cJSON_GetArraySize(failed) > 0;
	cJSON *f = cJSON_CreateObject();
	cJSON_AddItemToObject(f, "deleted", deleted);
	cJSON_AddItemToObject(f, "failed", failed);
	cJSON_AddNumberToObject(f, "duration_ms", (double)(clock_us() - started) / 1000.0);
	log_emit(rc ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, "gala.maintenance",
	    rc ? "maintenance finished with failures" : "maintenance finished", f);
	return rc;
}

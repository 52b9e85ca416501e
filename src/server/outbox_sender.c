#include "autoconf.h"

#include "server/outbox_sender.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include <sodium.h>

#include "clients/mailer.h"
#include "core/clock.h"
#include "core/log.h"
#include "db/db.h"
#include "services/outbox.h"

#define LOGGER "gala.mailer"
#define DB_BACKOFF_FIRST_MS 1000
#define DB_BACKOFF_MAX_MS 30000

/* SIGTERM and SIGINT stay blocked: they are taken only while the mailer
 * waits, so a mail in flight is always finished and recorded. */
static sigset_t stop_signals;

static void block_stop_signals(void)
{
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* Waits up to ms for a stop signal (one already pending counts): whether
 * one came. */
static bool stop_requested(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	long long until = clock_ms() + ms;
	for (;;) {
		if (sigtimedwait(&stop_signals, NULL, &ts) > 0)
			return true;
		long long left = until - clock_ms();
		if (errno != EINTR || left <= 0)
			return false;
		ts = (struct timespec){ .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L };
	}
}

/* Records the attempt. A record the database cannot take now is tried
 * again for half a lease, past which another mailer may take the mail over:
 * a mail sent but not recorded would go out twice. */
static enum db_status record(arena_t *a, const struct outbox_claim *c,
    enum outbox_outcome *outcome, int retry_in, const char *error)
{
	long long give_up = clock_ms() + OUTBOX_LEASE_SECONDS * 1000LL / 2;
	enum db_status st;
	while ((st = outbox_record(a, c, outcome, retry_in, error)) == DB_UNAVAILABLE &&
	    clock_ms() < give_up)
		nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
	return st;
}

static void log_attempt(const struct outbox_claim *c, enum outbox_outcome o, int retry_in,
    const char *error, enum db_status recorded)
{
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "outbox_id", c->id);
	cJSON_AddStringToObject(f, "kind", c->kind);
	cJSON_AddNumberToObject(f, "attempt", c->attempt);
	if (o != OUTBOX_SENT)
		cJSON_AddStringToObject(f, "error", error);
	if (recorded != DB_OK) {
		cJSON_AddStringToObject(f, "outcome", o == OUTBOX_SENT ? "sent" :
		    o == OUTBOX_RETRY ? "retry" : "failed");
		log_emit(LOG_LEVEL_ERROR, LOGGER, "could not record a mail's delivery", f);
	} else if (o == OUTBOX_SENT) {
		log_emit(LOG_LEVEL_INFO, LOGGER, "mail sent", f);
	} else if (o == OUTBOX_RETRY) {
		cJSON_AddNumberToObject(f, "retry_in_s", retry_in);
		log_emit(LOG_LEVEL_WARN, LOGGER, "mail not sent; will retry", f);
	} else {
		log_emit(LOG_LEVEL_ERROR, LOGGER, "mail abandoned", f);
	}
}

/* Claims the next due mail, sends it and records how that went; *found
 * says whether there was one. */
static enum db_status deliver_next(arena_t *a, int retry_base, bool *found)
{
	struct outbox_claim c;
	enum db_status st = outbox_claim(a, &c, found);
	if (st != DB_OK || !*found)
		return st;
	log_set_request_id(c.request_id);
	char error[256] = "";
	enum outbox_outcome o = OUTBOX_FAILED;
	if (c.age >= OUTBOX_GIVE_UP_SECONDS) {
		snprintf(error, sizeof error, "not sent within %lld hours", OUTBOX_GIVE_UP_SECONDS / 3600);
	} else if (c.text == NULL) {
		snprintf(error, sizeof error, "the body does not open: SECRET_KEY is not the pool's, "
		    "or the row was altered");
	} else {
		struct mail m = { .id = c.id, .date = c.created_at, .to = c.to, .subject = c.subject,
			.text = c.text };
		enum mailer_result r = mailer_send(&m, error, sizeof error);
		o = r == MAILER_SENT ? OUTBOX_SENT : r == MAILER_RETRY ? OUTBOX_RETRY : OUTBOX_FAILED;
	}
	int retry_in = outbox_retry_delay(c.attempt, retry_base, randombytes_random());
	st = record(a, &c, &o, retry_in, o == OUTBOX_SENT ? NULL : error);
	log_attempt(&c, o, retry_in, error, st);
	log_set_request_id(NULL);
	return st;
}

int outbox_sender_run(const struct config *cfg)
{
	gala_config = cfg;
	db_configure(cfg->database_url, cfg->db_pool_timeout, cfg->db_prepared_statements);
	block_stop_signals();
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "poll_ms", cfg->mailer_poll_ms);
	cJSON_AddNumberToObject(f, "retry_base_s", cfg->mailer_retry_base_seconds);
	log_emit(LOG_LEVEL_INFO, LOGGER, "mailer started", f);
	arena_t *a = arena_new(16384);
	long backoff_ms = 0;
	bool stop = false;
	while (!stop) {
		bool found = false;
		enum db_status st = deliver_next(a, cfg->mailer_retry_base_seconds, &found);
		arena_reset(a);
		if (st != DB_OK) {
			/* Down (the next try reconnects), or a statement failed
			 * (logged by db/): wait longer each time. */
			backoff_ms = backoff_ms == 0 ? DB_BACKOFF_FIRST_MS :
			    backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : backoff_ms * 2;
			stop = stop_requested(backoff_ms);
			continue;
		}
		backoff_ms = 0;
		stop = stop_requested(found ? 0 : cfg->mailer_poll_ms);
	}
	arena_free(a);
	db_disconnect();
	db_configure(NULL, 0, false);
	gala_config = NULL;
	log_info(LOGGER, "mailer stopped");
	return 0;
}

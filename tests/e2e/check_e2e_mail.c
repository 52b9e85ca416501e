/* End-to-end tests of the mail outbox (API.md "Mail"): requests queue their
 * mail in the transaction of their cause and never wait on SMTP; gala mailer
 * sends each mail once, through outages of the mail server and of Postgres,
 * gives up after refusals or 24 h, and never sends a body that was moved to
 * another address. */
#include "autoconf.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "testlib.h"

#define PW "Gala-test-pass-42"

static int seq;

static char *unique_email(const char *tag)
{
	char *e = malloc(128);
	snprintf(e, 128, "%s-%d-%d@example.com", tag, (int)getpid(), ++seq);
	return e;
}

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* ---- the database, as superuser ---- */

static char *sql_value(const char *sql, const char *p1, const char *p2)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { p1, p2 };
	char *v = test_db_value(c, sql, p2 ? 2 : p1 ? 1 : 0, p);
	PQfinish(c);
	return v;
}

static long long sql_int(const char *sql, const char *p1, const char *p2)
{
	char *v = sql_value(sql, p1, p2);
	ck_assert_msg(v != NULL, "no value: %s", sql);
	long long n = atoll(v);
	free(v);
	return n;
}

/* Runs a statement with parameters as superuser; fails the test if it
 * fails. */
static void sql_params(const char *sql, const char *p1, const char *p2)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { p1, p2 };
	PGresult *r = PQexecParams(c, sql, p2 ? 2 : 1, NULL, p, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* Runs statements as superuser; fails the test if they fail. */
static void sql_run(const char *sql)
{
	PGconn *c = test_db_superuser();
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* Polls until the query (one boolean) is true, for up to secs. */
static void wait_until(const char *what, double secs, const char *sql, const char *p1)
{
	double end = now_s() + secs;
	for (;;) {
		char *v = sql_value(sql, p1, NULL);
		bool done = v != NULL && strcmp(v, "t") == 0;
		free(v);
		if (done)
			return;
		ck_assert_msg(now_s() < end, "after %.0f s, still not: %s", secs, what);
		usleep(50000);
	}
}

static long long audit_failures(const char *user_id)
{
	return sql_int("SELECT count(*) FROM audit_logs WHERE action = 'email.delivery' "
	    "AND status = 'failure' AND target_user_id = $1", user_id, NULL);
}

/* ---- requests, timed ---- */

struct user {
	char *email;
	char *id;
	char *token;
	char *request_id;    /* of the registration */
};

static void user_free(struct user *u)
{
	free(u->email);
	free(u->id);
	free(u->token);
	free(u->request_id);
}

static double slowest;    /* the longest answer of the requests below */

static long timed_post(const char *path, const char *token, const char *body,
    struct http_resp *r)
{
	double t0 = now_s();
	ck_assert_int_eq(http_json("POST", path, token, body, r), 0);
	double took = now_s() - t0;
	if (took > slowest)
		slowest = took;
	return r->status;
}

static struct user register_user(const char *tag)
{
	struct user u = { .email = unique_email(tag) };
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"Mail %s\"}",
	    u.email, PW, tag);
	struct http_resp r;
	timed_post("/api/auth/register", NULL, body, &r);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	u.id = strdup(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "user"), "id")->valuestring);
	u.token = strdup(cJSON_GetObjectItem(r.json, "access_token")->valuestring);
	u.request_id = http_header(&r, "X-Request-ID");
	http_resp_free(&r);
	return u;
}

static void forgot(const char *email)
{
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
	struct http_resp r;
	timed_post("/api/auth/forgot-password", NULL, body, &r);
	ck_assert_msg(r.status == 200, "forgot-password: %ld %s", r.status, r.body);
	http_resp_free(&r);
}

/* A resend that is due: the last code was "sent a minute ago". */
static void resend(const struct user *u)
{
	sql_params("UPDATE email_otps SET last_sent_at = now() - interval '61 seconds' "
	    "WHERE user_id = $1", u->id, NULL);
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", u->email);
	struct http_resp r;
	timed_post("/api/auth/resend-verification", NULL, body, &r);
	ck_assert_msg(r.status == 200, "resend-verification: %ld %s", r.status, r.body);
	http_resp_free(&r);
}

/* ---- the SMTP sink's files ---- */

/* The mails the sink holds for rcpt, oldest first (NULL-terminated,
 * malloc'd), and their number in *n. */
static char **mails_to(const char *rcpt, int *n)
{
	const char *dir = test_env("TEST_MAIL_DIR");
	char suffix[160];
	snprintf(suffix, sizeof suffix, "-%s.eml", rcpt);
	struct dirent **names;
	int total = scandir(dir, &names, NULL, alphasort);
	ck_assert_int_ge(total, 0);
	char **out = calloc((size_t)total + 1, sizeof *out);
	*n = 0;
	for (int i = 0; i < total; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name), sl = strlen(suffix);
		if (len > sl && strcmp(name + len - sl, suffix) == 0) {
			char path[1024];
			snprintf(path, sizeof path, "%s/%s", dir, name);
			FILE *f = fopen(path, "rb");
			ck_assert_ptr_nonnull(f);
			char *text = calloc(1, 65536);
			size_t got = fread(text, 1, 65535, f);
			text[got] = '\0';
			fclose(f);
			out[(*n)++] = text;
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static void mails_free(char **m)
{
	for (char **p = m; *p != NULL; p++)
		free(*p);
	free(m);
}

/* The value of a mail's header line "Name: value", malloc'd. */
static char *mail_header(const char *mail, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, "\r\n%s: ", name);
	const char *v = strstr(mail, key);
	ck_assert_msg(v != NULL, "no %s in: %s", name, mail);
	v += strlen(key);
	return strndup(v, strcspn(v, "\r\n"));
}

/* No two mails of the list are one message sent twice. */
static void assert_distinct(char **mails, int n)
{
	for (int i = 0; i < n; i++) {
		char *a = mail_header(mails[i], "Message-ID");
		for (int j = i + 1; j < n; j++) {
			char *b = mail_header(mails[j], "Message-ID");
			ck_assert_msg(strcmp(a, b) != 0, "sent twice: %s", a);
			free(b);
		}
		free(a);
	}
}

static int count_containing(char **mails, int n, const char *needle)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += strstr(mails[i], needle) != NULL;
	return k;
}

/* ---- tests ---- */

#define FORGOT_BURST 12
/* a: registration and the burst; b: registration and a resend. */
#define OUTAGE_MAILS (1 + FORGOT_BURST + 2)

/* The mail server is down while mails are caused: the requests answer at
 * once and without error, the mailers retry with backoff, and once the
 * server is back every mail arrives exactly once, though three mailers
 * race for them. */
START_TEST(every_mail_arrives_once_after_an_smtp_outage)
{
	ck_assert_int_eq(stack_ctl("mailers 3"), 0);
	ck_assert_int_eq(stack_ctl("smtp-stop"), 0);
	slowest = 0;
	struct user a = register_user("outage-a"), b = register_user("outage-b");
	for (int i = 0; i < FORGOT_BURST; i++)
		forgot(a.email);
	resend(&b);
	char *nobody = unique_email("outage-nobody");
	forgot(nobody);
	ck_assert_msg(slowest < 3.0, "a request took %.2f s with the mail server down", slowest);

	/* Nothing arrives, and the mailers keep trying: every mail of a and b
	 * has failed at least twice and waits for its next attempt. */
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT bool_and(state = 'pending' AND attempts >= 2 "
	    "AND last_error IS NOT NULL) AND count(*) = %d FROM mail_outbox m "
	    "JOIN users u ON u.id = m.user_id WHERE u.email LIKE $1", OUTAGE_MAILS);
	wait_until("every mail tried twice", 20, sql, "outage-%");
	int n;
	char **none = mails_to(a.email, &n);
	ck_assert_int_eq(n, 0);
	mails_free(none);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mail_outbox WHERE recipient = $1",
	    nobody, NULL), 0);

	ck_assert_int_eq(stack_ctl("smtp-start"), 0);
	test_mail_settle();
	char **ma = mails_to(a.email, &n);
	ck_assert_int_eq(n, 1 + FORGOT_BURST);
	assert_distinct(ma, n);
	ck_assert_int_eq(count_containing(ma, n, "/reset-password?token="), FORGOT_BURST);
	ck_assert_int_eq(count_containing(ma, n, "verification code"), 1);
	mails_free(ma);
	char **mb = mails_to(b.email, &n);
	ck_assert_int_eq(n, 2);
	assert_distinct(mb, n);
	ck_assert_int_eq(count_containing(mb, n, "verification code"), 2);
	mails_free(mb);
	char **mn = mails_to(nobody, &n);
	ck_assert_int_eq(n, 0);
	mails_free(mn);
	/* Sent, and nothing of them kept but who, what and when. */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mail_outbox m JOIN users u ON u.id = m.user_id "
	    "WHERE u.email LIKE $1 AND state = 'sent' AND sealed IS NULL", "outage-%", NULL),
	    OUTAGE_MAILS);
	ck_assert_int_eq(audit_failures(a.id) + audit_failures(b.id), 0);
	free(nobody);
	user_free(&a);
	user_free(&b);
	ck_assert_int_eq(stack_ctl("mailers 1"), 0);
}
END_TEST

/* A mail server that accepts connections and then says nothing (a paused
 * sink) held the request for up to 15 s when mail was sent inline; now
 * forgot-password answers as fast for a known address as for an unknown
 * one, and every mail arrives once the server talks again. */
START_TEST(requests_never_wait_on_smtp)
{
	struct user u = register_user("hang");
	test_mail_settle();
	char *nobody = unique_email("hang-nobody");
	ck_assert_int_eq(stack_ctl("smtp-pause"), 0);
	slowest = 0;
	enum { ROUNDS = 8 };
	double known = 0, unknown = 0;
	for (int i = 0; i < ROUNDS; i++) {
		double t0 = now_s();
		forgot(u.email);
		double t1 = now_s();
		forgot(nobody);
		known += t1 - t0;
		unknown += now_s() - t1;
	}
	resend(&u);
	struct user late = register_user("hang-late");
	ck_assert_int_eq(stack_ctl("smtp-resume"), 0);
	ck_assert_msg(slowest < 3.0, "a request took %.2f s with the mail server hanging", slowest);
	known /= ROUNDS;
	unknown /= ROUNDS;
	ck_assert_msg(known < 2 * unknown + 0.05 && unknown < 2 * known + 0.05,
	    "forgot-password: known address %.4f s, unknown %.4f s", known, unknown);
	test_mail_settle();
	int n;
	char **m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 1 + ROUNDS + 1);
	assert_distinct(m, n);
	mails_free(m);
	m = mails_to(late.email, &n);
	ck_assert_int_eq(n, 1);
	mails_free(m);
	m = mails_to(nobody, &n);
	ck_assert_int_eq(n, 0);
	mails_free(m);
	free(nobody);
	user_free(&u);
	user_free(&late);
}
END_TEST

/* A cause that fails after its mail was queued takes the mail with it: a
 * trigger makes the audit row of one user's forgot-password fail, which
 * comes after the mail in that transaction. */
START_TEST(rolled_back_cause_writes_no_mail)
{
	struct user u = register_user("rollback");
	test_mail_settle();
	char sql[1024];
	snprintf(sql, sizeof sql,
	    "CREATE FUNCTION test_fail_forgot() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
	    "IF NEW.action = 'auth.forgot_password' AND NEW.target_user_id = '%s' THEN "
	    "RAISE EXCEPTION 'the cause fails'; END IF; RETURN NEW; END $f$; "
	    "CREATE TRIGGER test_fail_forgot BEFORE INSERT ON audit_logs "
	    "FOR EACH ROW EXECUTE FUNCTION test_fail_forgot()", u.id);
	sql_run(sql);
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", u.email);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/forgot-password", NULL, body, &r), 0);
	ck_assert_msg(r.status == 500, "forgot-password with a failing audit: %ld %s", r.status, r.body);
	http_resp_free(&r);
	sql_run("DROP TRIGGER test_fail_forgot ON audit_logs; DROP FUNCTION test_fail_forgot()");
	/* Neither the token nor its mail exist; only the registration's mail
	 * was ever queued. */
	ck_assert_int_eq(sql_int("SELECT count(*) FROM password_reset_tokens WHERE user_id = $1",
	    u.id, NULL), 0);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mail_outbox WHERE user_id = $1", u.id, NULL), 1);
	test_mail_settle();
	int n;
	char **m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(count_containing(m, n, "/reset-password?token="), 0);
	mails_free(m);
	/* The same request without the failure mails. */
	forgot(u.email);
	test_mail_settle();
	m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(count_containing(m, n, "/reset-password?token="), 1);
	mails_free(m);
	user_free(&u);
}
END_TEST

/* A permanent refusal (550) ends the mail at once: failed, body erased,
 * audited as email.delivery with the request id of its cause. */
START_TEST(refused_mail_is_abandoned_and_audited)
{
	struct user u = register_user("refused");
	test_mail_settle();
	char *row = sql_value("SELECT state || ' ' || attempts || ' ' || (sealed IS NULL) "
	    "FROM mail_outbox WHERE user_id = $1", u.id, NULL);
	ck_assert_str_eq(row, "failed 1 true");
	free(row);
	char *error = sql_value("SELECT last_error FROM mail_outbox WHERE user_id = $1", u.id, NULL);
	ck_assert_msg(error != NULL && strstr(error, "550") != NULL, "last_error: %s", error);
	free(error);
	ck_assert_int_eq(audit_failures(u.id), 1);
	ck_assert_int_eq(sql_int("SELECT count(*) FROM audit_logs WHERE action = 'email.delivery' "
	    "AND target_user_id = $1 AND request_id = $2 AND metadata->>'mail' = 'verification'",
	    u.id, u.request_id), 1);
	int n;
	char **m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 0);
	mails_free(m);
	user_free(&u);
}
END_TEST

/* A mail not sent within 24 hours of its cause is given up. */
START_TEST(mail_is_given_up_after_a_day)
{
	ck_assert_int_eq(stack_ctl("smtp-stop"), 0);
	struct user u = register_user("day");
	wait_until("a first failed attempt", 20, "SELECT bool_and(state = 'pending' AND attempts >= 1) "
	    "FROM mail_outbox WHERE user_id = $1", u.id);
	sql_params("UPDATE mail_outbox SET created_at = now() - interval '25 hours', "
	    "next_attempt_at = now() WHERE user_id = $1", u.id, NULL);
	wait_until("given up", 20, "SELECT bool_and(state = 'failed' AND sealed IS NULL) "
	    "FROM mail_outbox WHERE user_id = $1", u.id);
	char *error = sql_value("SELECT last_error FROM mail_outbox WHERE user_id = $1", u.id, NULL);
	ck_assert_str_eq(error, "not sent within 24 hours");
	free(error);
	ck_assert_int_eq(audit_failures(u.id), 1);
	ck_assert_int_eq(stack_ctl("smtp-start"), 0);
	test_mail_settle();
	int n;
	char **m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 0);
	mails_free(m);
	user_free(&u);
}
END_TEST

/* The table keeps no code in clear, the application's role cannot
 * readdress a queued mail, and a body moved to another address (by anyone
 * who can) does not open there: nothing is sent. */
START_TEST(readdressed_mail_is_never_sent)
{
	ck_assert_int_eq(stack_ctl("mailers 0"), 0);
	struct user u = register_user("moved");
	ck_assert_int_eq(sql_int("SELECT count(*) FROM mail_outbox WHERE user_id = $1 "
	    "AND position(convert_to('verification code', 'UTF8') IN decode(sealed, 'hex')) = 0",
	    u.id, NULL), 1);
	PGconn *c = test_db_superuser();
	PGresult *r = PQexec(c, "SET ROLE gala_app");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	const char *p[] = { u.id };
	r = PQexecParams(c, "UPDATE mail_outbox SET recipient = 'thief@example.com' WHERE user_id = $1",
	    1, NULL, p, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR &&
	    strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501") == 0,
	    "gala_app readdressed a mail: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	char *thief = unique_email("thief");
	sql_params("UPDATE mail_outbox SET recipient = $2 WHERE user_id = $1", u.id, thief);
	ck_assert_int_eq(stack_ctl("mailers 1"), 0);
	test_mail_settle();
	char *error = sql_value("SELECT state || ': ' || last_error FROM mail_outbox WHERE user_id = $1",
	    u.id, NULL);
	ck_assert_msg(error != NULL && strncmp(error, "failed: the body does not open", 30) == 0,
	    "%s", error);
	free(error);
	int n;
	char **m = mails_to(thief, &n);
	ck_assert_int_eq(n, 0);
	mails_free(m);
	m = mails_to(u.email, &n);
	ck_assert_int_eq(n, 0);
	mails_free(m);
	free(thief);
	user_free(&u);
}
END_TEST

/* gala maintenance deletes rows a week after they were finished, and never
 * a mail still to send. */
START_TEST(maintenance_purges_finished_mail_after_a_week)
{
	struct user old = register_user("purge-old"), young = register_user("purge-young");
	test_mail_settle();
	ck_assert_int_eq(stack_ctl("mailers 0"), 0);
	struct user queued = register_user("purge-queued");
	sql_params("UPDATE mail_outbox SET finished_at = now() - interval '8 days' WHERE user_id = $1",
	    old.id, NULL);
	sql_params("UPDATE mail_outbox SET finished_at = now() - interval '6 days' WHERE user_id = $1",
	    young.id, NULL);
	sql_params("UPDATE mail_outbox SET created_at = now() - interval '8 days' WHERE user_id = $1",
	    queued.id, NULL);
	char *out = stack_ctl_output("gala maintenance 2>&1; echo \"exit=$?\"");
	ck_assert_msg(strstr(out, "exit=0") != NULL && strstr(out, "\"mail_outbox\":") != NULL,
	    "gala maintenance: %s", out);
	free(out);
	const char *count = "SELECT count(*) FROM mail_outbox WHERE user_id = $1";
	ck_assert_int_eq(sql_int(count, old.id, NULL), 0);
	ck_assert_int_eq(sql_int(count, young.id, NULL), 1);
	ck_assert_int_eq(sql_int(count, queued.id, NULL), 1);
	ck_assert_int_eq(stack_ctl("mailers 1"), 0);
	test_mail_settle();
	user_free(&old);
	user_free(&young);
	user_free(&queued);
}
END_TEST

/* Whether pid has exited (gone, or a zombie nobody reaps). */
static bool exited(int pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return true;
	size_t n = fread(stat, 1, sizeof stat - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *s = strrchr(stat, ')');
	return s == NULL || s[2] == 'Z' || s[2] == 'X';
}

/* The mailer outlives a restart of Postgres (it reconnects) and stops
 * promptly and cleanly on SIGTERM. */
START_TEST(mailer_reconnects_and_stops_on_sigterm)
{
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	sleep(2);
	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	/* Through PgBouncer, clients are turned away for server_login_retry
	 * after a failed server login (the mailer's, while Postgres was down). */
	long health = 0;
	double end = now_s() + 10;
	for (;;) {
		struct http_resp h;
		ck_assert_int_eq(http_do("GET", "/api/health", NULL, NULL, &h), 0);
		health = h.status;
		http_resp_free(&h);
		if (health == 200 || now_s() > end)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(health, 200);
	struct user u = register_user("pgback");
	char *mail = test_mail_last(u.email);
	ck_assert_msg(mail != NULL && strstr(mail, "verification code") != NULL, "mail: %s", mail);
	free(mail);
	char *pids = stack_ctl_output("mailer-pids");
	int pid = atoi(pids);
	free(pids);
	ck_assert_int_gt(pid, 0);
	double t0 = now_s();
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	while (!exited(pid) && now_s() - t0 < 5)
		usleep(20000);
	ck_assert_msg(exited(pid), "gala mailer still running 5 s after SIGTERM");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "tail -n 1 '%s' | grep -q '\"mailer stopped\"'",
	    test_env("TEST_MAILER_LOG"));
	ck_assert_msg(system(cmd) == 0, "no \"mailer stopped\" as the last line of the mailer's log");
	ck_assert_int_eq(stack_ctl("mailers 1"), 0);
	user_free(&u);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-mail");
	TCase *tc = tcase_create("mail");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_mail_arrives_once_after_an_smtp_outage);
	tcase_add_test(tc, requests_never_wait_on_smtp);
	tcase_add_test(tc, rolled_back_cause_writes_no_mail);
	tcase_add_test(tc, refused_mail_is_abandoned_and_audited);
	tcase_add_test(tc, mail_is_given_up_after_a_day);
	tcase_add_test(tc, readdressed_mail_is_never_sent);
	tcase_add_test(tc, maintenance_purges_finished_mail_after_a_week);
	tcase_add_test(tc, mailer_reconnects_and_stops_on_sigterm);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}

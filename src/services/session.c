#include "autoconf.h"

#include "services/session.h"

#include <stdio.h>
#include <string.h>

/* The check raises, rather than answering with a verdict column, when the
 * token's version is outdated, its jti revoked (logout; the user's row keeps
 * the revoked jtis, schema/0020_revoked_jtis.sql) or the account's role no
 * longer the token's: the error aborts what was sent with it. A user row
 * Gala never deletes; were one deleted by hand, the check finds no row and
 * the request is refused all the same (401), though a statement sent with
 * it has run. A token older than token_version still passes when it is the
 * one token kept (kept_jti) by the bump that made token_version
 * kept_version (schema/0009_mfa.sql). $4 NULL skips the role comparison
 * (the account's role is then taken); $5 true refuses an unverified email. */
#define SESSION_CHECK_SQL "SELECT u.email, u.full_name, u.role, u.email_verified, " \
	"u.created_at, " \
	"u.mfa_enabled, " \
	"CASE WHEN (u.token_version <> $3::bigint " \
	"AND (u.kept_jti IS DISTINCT FROM $2::uuid OR u.kept_version <> u.token_version)) " \
	"OR $2::uuid = ANY (u.revoked_jtis) " \
	"THEN gala_raise('GA401', 'the session is not valid') " \
	"WHEN $4::text IS NOT NULL AND u.role <> $4::text " \
	"THEN gala_raise('GA409', 'the role of the account changed') " \
	"WHEN $5::boolean AND NOT u.email_verified " \
	"THEN gala_raise('GA403', 'the email address is not verified') END " \
	"FROM users u WHERE u.id = $1::uuid"

/* The same check as a function (schema/0021_session_check_row.sql), for
 * unnamed statements: its query is planned once per session, where an
 * unnamed SESSION_CHECK_SQL would be planned on every request. It returns
 * the row as one composite value (NULL: no such user). */
#define SESSION_CHECK_CALL_SQL "SELECT gala_session_check_row(" \
	"$1::uuid, $2::uuid, $3::bigint, $4::text, $5::boolean)"

/* The columns of SESSION_CHECK_SQL and the fields of the function's row,
 * read in binary format. */
enum { SC_EMAIL, SC_FULL_NAME, SC_ROLE, SC_EMAIL_VERIFIED, SC_CREATED_AT, SC_MFA_ENABLED,
	SC_FIELDS };

/* The profile from the result of SESSION_CHECK_SQL; false for no row. */
static bool session_read_row(struct session *s, const PGresult *res)
{
	if (PQntuples(res) != 1)
		return false;
	s->profile.email = db_value(res, 0, SC_EMAIL);
	s->profile.full_name = db_value(res, 0, SC_FULL_NAME);
	s->role = db_value(res, 0, SC_ROLE);
	s->profile.email_verified = db_bool(res, 0, SC_EMAIL_VERIFIED);
	char t[DB_TIME_LEN];
	s->profile.created_at = arena_strdup(s->arena, db_time(res, 0, SC_CREATED_AT, t));
	s->profile.mfa_enabled = db_bool(res, 0, SC_MFA_ENABLED);
	return true;
}

/* The profile from the result of SESSION_CHECK_CALL_SQL; false for no
 * such user. */
static bool session_read_record(struct session *s, const PGresult *res)
{
	struct db_field f[SC_FIELDS];
	if (PQntuples(res) != 1 || !db_record(res, 0, 0, f, SC_FIELDS))
		return false;
	s->profile.email = db_field_text(s->arena, &f[SC_EMAIL]);
	s->profile.full_name = db_field_text(s->arena, &f[SC_FULL_NAME]);
	s->role = db_field_text(s->arena, &f[SC_ROLE]);
	s->profile.email_verified = db_field_bool(&f[SC_EMAIL_VERIFIED]);
	char t[DB_TIME_LEN];
	s->profile.created_at = arena_strdup(s->arena, db_field_time(&f[SC_CREATED_AT], t));
	s->profile.mfa_enabled = db_field_bool(&f[SC_MFA_ENABLED]);
	return s->role != NULL;
}

void session_check_defer(struct session *s, arena_t *a, bool take_role, bool need_verified)
{
	s->arena = a;
	snprintf(s->version, sizeof s->version, "%lld", s->claims.tv);
	s->check_params[0] = s->id;
	s->check_params[1] = s->claims.jti;
	s->check_params[2] = s->version;
	s->check_params[3] = take_role ? NULL : s->role;
	s->check_params[4] = need_verified ? "true" : "false";
	s->check = (struct db_deferred){
		.sql = db_prepares_statements() ? SESSION_CHECK_SQL : SESSION_CHECK_CALL_SQL,
		.nparams = 5,
		.params = s->check_params,
		.binary = true };
	db_defer(&s->check);
}

enum gala_error session_check_result(struct session *s)
{
	if (!s->check.sent)
		db_flush(s->arena);
	const PGresult *res = s->check.res;
	switch (s->check.status) {
	case DB_OK:
		if (!s->checked) {
			bool found = db_prepares_statements() ? session_read_row(s, res) :
			    session_read_record(s, res);
			if (!found)
				return GE_INVALID_TOKEN;
			s->checked = true;
		}
		return GE_OK;
	case DB_ERROR:
		if (strcmp(db_sqlstate(res), "GA401") == 0)
			return GE_INVALID_TOKEN;
		if (strcmp(db_sqlstate(res), "GA409") == 0)
			return GE_CONFLICT;
		if (strcmp(db_sqlstate(res), "GA403") == 0)
			return GE_EMAIL_NOT_VERIFIED;
		return GE_INTERNAL;
	case DB_UNAVAILABLE:
	case DB_REFUSED:
		return GE_DB_UNAVAILABLE;
	}
	return GE_INTERNAL;
}

const struct session_profile *session_profile(struct session *s)
{
	if (s == NULL)
		return NULL;
	return session_check_result(s) == GE_OK ? &s->profile : NULL;
}

cJSON *session_user_json(struct session *s)
{
	const struct session_profile *p = session_profile(s);
	if (p == NULL)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "email", p->email);
	cJSON_AddStringToObject(o, "full_name", p->full_name);
	cJSON_AddStringToObject(o, "role", s->role);
	cJSON_AddBoolToObject(o, "email_verified", p->email_verified);
	cJSON_AddStringToObject(o, "created_at", p->created_at);
	cJSON_AddBoolToObject(o, "mfa_enabled", p->mfa_enabled);
	return o;
}

bool session_is_admin(const struct session *s)
{
	return s != NULL && strcmp(s->role, "admin") == 0;
}

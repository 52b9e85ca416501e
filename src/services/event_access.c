#include "autoconf.h"

#include "services/event_access.h"

#include <string.h>

#include "db/db.h"

/* Whether u is booked on the event is asked only of a caller who is
 * neither owner nor admin: a separate statement, since folding it into the
 * event's query made planning that query several times dearer for every
 * caller (API.md's common case is the owner). */
enum gala_error event_access(arena_t *a, const char *event_id, const char *owner_id,
    const struct session *u, unsigned *access)
{
	*access = 0;
	if (strcmp(owner_id, u->id) == 0)
		*access |= EVENT_ACCESS_OWNER;
	if (strcmp(u->role, "admin") == 0)
		*access |= EVENT_ACCESS_ADMIN;
	if (*access != 0)
		return GE_OK;
	const char *p[] = { event_id, u->id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT EXISTS (SELECT 1 FROM event_services es "
	    "JOIN service_providers sp ON sp.id = es.service_provider_id "
	    "WHERE es.event_id = $1 AND sp.user_id = $2)", 2, p);
	if (st != DB_OK)
		return db_error(st);
	if (db_bool(res, 0, 0))
		*access |= EVENT_ACCESS_PROVIDER;
	return GE_OK;
}

enum gala_error event_ref_load(arena_t *a, const char *id, const struct session *u,
    enum event_lock lock, struct event_ref *out)
{
	static const char *const sql[] = {
		[EVENT_LOCK_NONE] = "SELECT id, owner_id, status, currency FROM events WHERE id = $1",
		[EVENT_LOCK_SHARE] = "SELECT id, owner_id, status, currency FROM events "
		    "WHERE id = $1 FOR SHARE",
		[EVENT_LOCK_UPDATE] = "SELECT id, owner_id, status, currency FROM events "
		    "WHERE id = $1 FOR NO KEY UPDATE",
	};
	const char *p[] = { id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, sql[lock], 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	enum { REF_ID, REF_OWNER_ID, REF_STATUS, REF_CURRENCY };
	out->id = db_value(res, 0, REF_ID);
	out->owner_id = db_value(res, 0, REF_OWNER_ID);
	out->status = db_value(res, 0, REF_STATUS);
	out->currency = db_value(res, 0, REF_CURRENCY);
	enum gala_error e = event_access(a, id, out->owner_id, u, &out->access);
	if (e != GE_OK)
		return e;
	return out->access != 0 ? GE_OK : GE_NOT_FOUND;
}


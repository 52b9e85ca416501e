/* Handlers of /api/admin (role admin, enforced by the route table). */
#ifndef GALA_API_ADMIN_H
#define GALA_API_ADMIN_H

#include "http/request.h"

/* GET /api/admin/audit-logs?action=&status=&actor_user_id=&target_user_id=
 * &created_after=&created_before=&limit=&offset= */
void api_admin_audit_logs(struct request *req);

#endif

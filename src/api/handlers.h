/* Handlers: validate input, call the services, build the response. */
#ifndef GALA_HANDLERS_H
#define GALA_HANDLERS_H

#include "http/request.h"
#include "api/subscriptions.h"
#include "api/admin.h"
#include "api/market.h"
#include "api/money.h"

void api_health(struct request *req);

/* api/auth.c */
void api_auth_register(struct request *req);
void api_auth_login(struct request *req);
void api_auth_verify_email(struct request *req);
void api_auth_resend_verification(struct request *req);
void api_auth_forgot_password(struct request *req);
void api_auth_reset_password(struct request *req);
void api_auth_me(struct request *req);
void api_auth_logout(struct request *req);
void api_auth_logout_all(struct request *req);

#endif

/* Handlers: validate input, call the services, build the response. One per
 * route of the table in api/routes.c; what several share is api/market.h. */
#ifndef GALA_HANDLERS_H
#define GALA_HANDLERS_H

#include "http/request.h"

/* api/health.c */
void api_health(struct request *req);
void api_metrics(struct request *req);

/* api/auth.c */
void api_auth_register(struct request *req);
void api_auth_login(struct request *req);
void api_auth_verify_email(struct request *req);
void api_auth_resend_verification(struct request *req);
void api_auth_forgot_password(struct request *req);
void api_auth_reset_password(struct request *req);
void api_auth_change_password(struct request *req);
void api_auth_me(struct request *req);
void api_auth_logout(struct request *req);
void api_auth_logout_all(struct request *req);
void api_auth_mfa_totp_setup(struct request *req);
void api_auth_mfa_totp_confirm(struct request *req);
void api_auth_mfa_totp_disable(struct request *req);
void api_auth_mfa_verify(struct request *req);

/* api/providers.c */
void api_providers_create(struct request *req);
void api_providers_list(struct request *req);
void api_providers_get(struct request *req);
void api_providers_update(struct request *req);

/* api/events.c */
void api_events_create(struct request *req);
void api_events_list(struct request *req);
void api_events_get(struct request *req);
void api_events_update(struct request *req);
void api_events_delete(struct request *req);

/* api/bookings.c */
void api_event_services_create(struct request *req);
void api_event_services_list(struct request *req);
void api_event_services_get(struct request *req);
void api_event_services_accept(struct request *req);
void api_event_services_decline(struct request *req);
void api_event_services_complete(struct request *req);
void api_event_services_cancel(struct request *req);

/* api/payments.c */
void api_payments_list(struct request *req);
void api_payments_get(struct request *req);

/* api/money.c: pay, release and refund of a booking, provider Stripe
 * onboarding, and the Stripe webhook. */
void api_event_services_pay(struct request *req);
void api_event_services_release(struct request *req);
void api_event_services_refund(struct request *req);
void api_providers_stripe_onboarding(struct request *req);
void api_webhooks_stripe(struct request *req);

/* api/subscriptions.c */
void api_subscription_plans(struct request *req);
void api_subscription_start(struct request *req);
void api_subscription_list(struct request *req);
void api_subscription_cancel(struct request *req);
void api_subscription_sync(struct request *req);

/* api/admin.c: GET /api/admin/audit-logs?action=&status=&actor_user_id=
 * &target_user_id=&created_after=&created_before=&limit=&offset= */
void api_admin_audit_logs(struct request *req);

#endif

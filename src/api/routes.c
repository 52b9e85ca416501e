#include "autoconf.h"

#include "api/routes.h"

#include "api/handlers.h"
#include "services/webhooks.h"

const struct route api_routes[] = {
	{ "GET", "/api/health", api_health, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	/* Prometheus, outside /api: only METRICS_ALLOW gets an answer. */
	{ "GET", "/metrics", api_metrics, AUTH_NONE, 0, RATE_NONE, 0, 0 },

	/* The routes that answer with credentials take no Idempotency-Key: a
	 * stored answer would keep a token for anyone who replays the key. */
	{ "POST", "/api/auth/register", api_auth_register, AUTH_NONE, 0, RATE_AUTH, 0, 0 },
	{ "POST", "/api/auth/signup", api_auth_register, AUTH_NONE, 0, RATE_AUTH, 0, 0 },
	{ "POST", "/api/auth/login", api_auth_login, AUTH_NONE, 0, RATE_AUTH_EMAIL, 0, 0 },
	{ "POST", "/api/auth/verify-email", api_auth_verify_email, AUTH_NONE, 0, RATE_AUTH_EMAIL,
	  ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/auth/resend-verification", api_auth_resend_verification, AUTH_NONE, 0,
	  RATE_AUTH, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/auth/forgot-password", api_auth_forgot_password, AUTH_NONE, 0, RATE_AUTH,
	  ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/auth/reset-password", api_auth_reset_password, AUTH_NONE, 0, RATE_AUTH,
	  0, 0 },
	{ "POST", "/api/auth/change-password", api_auth_change_password, AUTH_REQUIRED, 0,
	  RATE_AUTH_USER, 0, 0 },
	{ "GET", "/api/auth/me", api_auth_me, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/auth/logout", api_auth_logout, AUTH_REQUIRED, 0, RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/auth/logout-all", api_auth_logout_all, AUTH_REQUIRED, 0, RATE_WRITE,
	  ROUTE_IDEMPOTENT, 0 },
	/* Two-factor authentication: credentials, so no ROUTE_IDEMPOTENT (a
	 * stored answer would replay secrets and sessions); the routes that
	 * take a code are counted by the auth rule per IP and per user. */
	{ "POST", "/api/auth/mfa/totp", api_auth_mfa_totp_setup, AUTH_REQUIRED, 0, RATE_WRITE, 0, 0 },
	{ "POST", "/api/auth/mfa/totp/confirm", api_auth_mfa_totp_confirm, AUTH_REQUIRED, 0,
	  RATE_AUTH_USER, 0, 0 },
	{ "POST", "/api/auth/mfa/totp/disable", api_auth_mfa_totp_disable, AUTH_REQUIRED, 0,
	  RATE_AUTH_USER, 0, 0 },
	{ "POST", "/api/auth/mfa/verify", api_auth_mfa_verify, AUTH_NONE, 0, RATE_AUTH_USER, 0, 0 },

	/* Subscriptions (api/subscriptions.c) */
	{ "GET", "/api/subscriptions/plans", api_subscription_plans, AUTH_OPTIONAL, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/subscriptions", api_subscription_start, AUTH_REQUIRED, 0, RATE_WRITE,
	  ROUTE_IDEMPOTENT, 0 },
	{ "GET", "/api/subscriptions", api_subscription_list, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/subscriptions/{id}/cancel", api_subscription_cancel, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/subscriptions/{id}/sync", api_subscription_sync, AUTH_REQUIRED, 0, RATE_WRITE,
	  ROUTE_IDEMPOTENT, 0 },

	/* Marketplace (api/providers.c, api/events.c, api/bookings.c, api/payments.c) */
	/* A verified email before a profile or a Stripe account: whoever
	 * registers someone else's address must not route its payouts. */
	{ "POST", "/api/providers", api_providers_create, AUTH_REQUIRED, ROLE_BIT_PROVIDER,
	  RATE_WRITE, ROUTE_IDEMPOTENT | ROUTE_VERIFIED, 0 },
	{ "GET", "/api/providers", api_providers_list, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/providers/{id}", api_providers_get, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "PATCH", "/api/providers/{id}", api_providers_update, AUTH_REQUIRED, 0, RATE_WRITE, 0, 0 },
	{ "POST", "/api/events", api_events_create, AUTH_REQUIRED,
	  ROLE_BIT_CUSTOMER | ROLE_BIT_ADMIN, RATE_WRITE, ROUTE_IDEMPOTENT | ROUTE_VERIFIED, 0 },
	{ "GET", "/api/events", api_events_list, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/events/{id}", api_events_get, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "PATCH", "/api/events/{id}", api_events_update, AUTH_REQUIRED, 0, RATE_WRITE, 0, 0 },
	{ "DELETE", "/api/events/{id}", api_events_delete, AUTH_REQUIRED, 0, RATE_WRITE, 0, 0 },
	{ "POST", "/api/events/{id}/services", api_event_services_create, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT | ROUTE_VERIFIED, 0 },
	{ "GET", "/api/events/{id}/services", api_event_services_list, AUTH_REQUIRED, 0, RATE_NONE,
	  0, 0 },
	{ "GET", "/api/event-services/{id}", api_event_services_get, AUTH_REQUIRED, 0, RATE_NONE,
	  0, 0 },
	{ "POST", "/api/event-services/{id}/accept", api_event_services_accept, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/event-services/{id}/decline", api_event_services_decline, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/event-services/{id}/complete", api_event_services_complete, AUTH_REQUIRED,
	  0, RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/event-services/{id}/cancel", api_event_services_cancel, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "GET", "/api/payments", api_payments_list, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/payments/{id}", api_payments_get, AUTH_REQUIRED, 0, RATE_NONE, 0, 0 },

	/* Money (api/money.c): pay, release, refund, Stripe onboarding and the
	 * Stripe webhook, whose raw body is verified before it is parsed; it is
	 * deduplicated by Stripe's event id, not by Idempotency-Key. */
	{ "POST", "/api/event-services/{id}/pay", api_event_services_pay, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/event-services/{id}/release", api_event_services_release, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	/* Admin only, decided by the booking machine after the visibility
	 * check: a caller who cannot see the booking gets 404, not 403. */
	{ "POST", "/api/event-services/{id}/refund", api_event_services_refund, AUTH_REQUIRED, 0,
	  RATE_WRITE, ROUTE_IDEMPOTENT, 0 },
	{ "POST", "/api/providers/{id}/stripe-onboarding", api_providers_stripe_onboarding,
	  AUTH_REQUIRED, 0, RATE_WRITE, ROUTE_IDEMPOTENT | ROUTE_VERIFIED, 0 },
	{ "POST", "/api/webhooks/stripe", api_webhooks_stripe, AUTH_NONE, 0, RATE_NONE,
	  ROUTE_RAW_BODY, WEBHOOK_MAX_BODY_BYTES },

	/* Admin (api/admin.c) */
	{ "GET", "/api/admin/audit-logs", api_admin_audit_logs, AUTH_REQUIRED, ROLE_BIT_ADMIN,
	  RATE_NONE, 0, 0 },
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];

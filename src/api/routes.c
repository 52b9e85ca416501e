#include "autoconf.h"

#include "api/routes.h"

#include "api/handlers.h"

const struct route api_routes[] = {
	{ "GET", "/api/health", api_health, AUTH_NONE, 0, RATE_NONE, 0 },

	{ "POST", "/api/auth/register", api_auth_register, AUTH_NONE, 0, RATE_AUTH, ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/signup", api_auth_register, AUTH_NONE, 0, RATE_AUTH, ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/login", api_auth_login, AUTH_NONE, 0, RATE_AUTH_EMAIL, ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/verify-email", api_auth_verify_email, AUTH_NONE, 0, RATE_AUTH_EMAIL,
	  ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/resend-verification", api_auth_resend_verification, AUTH_NONE, 0,
	  RATE_AUTH, ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/forgot-password", api_auth_forgot_password, AUTH_NONE, 0, RATE_AUTH,
	  ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/reset-password", api_auth_reset_password, AUTH_NONE, 0, RATE_AUTH,
	  ROUTE_IDEMPOTENT },
	{ "GET", "/api/auth/me", api_auth_me, AUTH_REQUIRED, 0, RATE_NONE, 0 },
	{ "POST", "/api/auth/logout", api_auth_logout, AUTH_REQUIRED, 0, RATE_WRITE, ROUTE_IDEMPOTENT },
	{ "POST", "/api/auth/logout-all", api_auth_logout_all, AUTH_REQUIRED, 0, RATE_WRITE,
	  ROUTE_IDEMPOTENT },
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];

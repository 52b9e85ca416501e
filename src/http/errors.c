#include "autoconf.h"

#include "http/errors.h"

#include <stddef.h>

static const struct {
	int status;
	const char *type;
} error_answers[GE__COUNT] = {
	[GE_OK] = { 200, NULL },
	[GE_MALFORMED_JSON] = { 400, "invalid_request_error" },
	[GE_BAD_REQUEST] = { 400, "invalid_request_error" },
	[GE_INVALID_IDEMPOTENCY_KEY] = { 400, "invalid_request_error" },
	[GE_INVALID_OTP] = { 400, "invalid_request_error" },
	[GE_OTP_EXPIRED] = { 400, "invalid_request_error" },
	[GE_OTP_LOCKED] = { 400, "invalid_request_error" },
	[GE_INVALID_RESET_TOKEN] = { 400, "invalid_request_error" },
	[GE_INVALID_WEBHOOK_PAYLOAD] = { 400, "invalid_request_error" },
	[GE_AUTHENTICATION_REQUIRED] = { 401, "authentication_error" },
	[GE_INVALID_TOKEN] = { 401, "authentication_error" },
	[GE_INVALID_CREDENTIALS] = { 401, "authentication_error" },
	[GE_MFA_CODE_REFUSED] = { 401, "authentication_error" },
	[GE_INVALID_MFA_TOKEN] = { 401, "authentication_error" },
	[GE_FORBIDDEN] = { 403, "permission_error" },
	[GE_CSRF_FAILED] = { 403, "permission_error" },
	[GE_EMAIL_NOT_VERIFIED] = { 403, "permission_error" },
	[GE_INVALID_SIGNATURE] = { 403, "permission_error" },
	[GE_MFA_REQUIRED] = { 403, "permission_error" },
	[GE_NOT_FOUND] = { 404, "not_found" },
	[GE_METHOD_NOT_ALLOWED] = { 405, "invalid_request_error" },
	[GE_CONFLICT] = { 409, "conflict" },
	[GE_INVALID_STATE] = { 409, "conflict" },
	[GE_EMAIL_TAKEN] = { 409, "conflict" },
	[GE_PROFILE_EXISTS] = { 409, "conflict" },
	[GE_IDEMPOTENCY_KEY_IN_USE] = { 409, "conflict" },
	[GE_ONBOARDING_REQUIRED] = { 409, "conflict" },
	[GE_PAYOUT_IN_PROGRESS] = { 409, "conflict" },
	[GE_PAYOUT_ON_HOLD] = { 409, "conflict" },
	[GE_MFA_ALREADY_ENABLED] = { 409, "conflict" },
	[GE_MFA_NOT_ENABLED] = { 409, "conflict" },
	[GE_PAYLOAD_TOO_LARGE] = { 413, "invalid_request_error" },
	[GE_UNSUPPORTED_MEDIA_TYPE] = { 415, "invalid_request_error" },
	[GE_VALIDATION] = { 422, "invalid_request_error" },
	[GE_INVALID_CURRENT_PASSWORD] = { 422, "invalid_request_error" },
	[GE_IDEMPOTENCY_KEY_REUSED] = { 422, "invalid_request_error" },
	[GE_INVALID_MFA_CODE] = { 422, "invalid_request_error" },
	[GE_RATE_LIMITED] = { 429, "rate_limit_error" },
	[GE_INTERNAL] = { 500, "api_error" },
	[GE_STRIPE_ERROR] = { 502, "payment_error" },
	[GE_PAYOUT_UNCONFIRMED] = { 502, "payment_error" },
	[GE_STRIPE_UNAVAILABLE] = { 502, "api_error" },
	[GE_DB_UNAVAILABLE] = { 503, "api_error" },
	[GE_STRIPE_NOT_CONFIGURED] = { 503, "api_error" },
	[GE_SERVICE_UNAVAILABLE] = { 503, "api_error" },
};

struct gala_error_info gala_error_info(enum gala_error e)
{
	if ((int)e < 0 || e >= GE__COUNT)
		e = GE_INTERNAL;
	return (struct gala_error_info){ error_answers[e].status, error_answers[e].type,
		gala_error_code(e), gala_error_message(e) };
}

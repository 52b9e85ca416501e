#include "autoconf.h"

#include "core/errors.h"

#include <stddef.h>

static const struct {
	const char *code;
	const char *message;
} error_words[GE__COUNT] = {
	[GE_OK] = { NULL, NULL },
	[GE_MALFORMED_JSON] = { "malformed_json",
		"the request body is not valid JSON" },
	[GE_BAD_REQUEST] = { "bad_request",
		"the request is malformed" },
	[GE_INVALID_IDEMPOTENCY_KEY] = { "invalid_idempotency_key",
		"Idempotency-Key must be 1 to 255 printable ASCII characters" },
	[GE_INVALID_OTP] = { "invalid_otp",
		"the verification code is not valid" },
	[GE_OTP_EXPIRED] = { "otp_expired",
		"the verification code has expired; ask for a new one" },
	[GE_OTP_LOCKED] = { "otp_locked",
		"too many wrong codes; ask for a new one" },
	[GE_INVALID_RESET_TOKEN] = { "invalid_token",
		"the reset token is invalid, used or expired" },
	[GE_INVALID_WEBHOOK_PAYLOAD] = { "malformed_json",
		"the webhook payload is not valid JSON" },
	[GE_AUTHENTICATION_REQUIRED] = { "authentication_required",
		"authentication is required" },
	[GE_INVALID_TOKEN] = { "invalid_token",
		"the access token is invalid, expired or revoked" },
	[GE_INVALID_CREDENTIALS] = { "invalid_credentials",
		"email or password is incorrect" },
	[GE_MFA_CODE_REFUSED] = { "invalid_mfa_code",
		"the authentication code is not valid" },
	[GE_INVALID_MFA_TOKEN] = { "invalid_mfa_token",
		"the mfa_token is invalid, used, expired or locked; sign in again" },
	[GE_FORBIDDEN] = { "forbidden",
		"you are not allowed to do this" },
	[GE_CSRF_FAILED] = { "csrf_failed",
		"CSRF check failed" },
	[GE_EMAIL_NOT_VERIFIED] = { "email_not_verified",
		"verify your email address first" },
	[GE_INVALID_SIGNATURE] = { "invalid_signature",
		"the webhook signature is missing or invalid" },
	[GE_MFA_REQUIRED] = { "mfa_required",
		"this action needs a session signed in with two-factor authentication" },
	[GE_NOT_FOUND] = { "not_found",
		"no such resource" },
	[GE_METHOD_NOT_ALLOWED] = { "method_not_allowed",
		"method not allowed on this path" },
	[GE_CONFLICT] = { "conflict",
		"the request conflicts with the current state" },
	[GE_INVALID_STATE] = { "invalid_state",
		"the object is not in a state that allows this" },
	[GE_EMAIL_TAKEN] = { "email_taken",
		"an account with this email already exists" },
	[GE_PROFILE_EXISTS] = { "profile_exists",
		"this user already has a provider profile" },
	[GE_IDEMPOTENCY_KEY_IN_USE] = { "idempotency_key_in_use",
		"a request with this Idempotency-Key is still being processed" },
	[GE_ONBOARDING_REQUIRED] = { "onboarding_required",
		"the provider has not finished Stripe onboarding" },
	[GE_PAYOUT_IN_PROGRESS] = { "payout_in_progress",
		"a payout for this booking is in progress" },
	[GE_PAYOUT_ON_HOLD] = { "payout_on_hold",
		"the payout is on hold until the event is over" },
	[GE_MFA_ALREADY_ENABLED] = { "mfa_already_enabled",
		"two-factor authentication is already enabled" },
	[GE_MFA_NOT_ENABLED] = { "mfa_not_enabled",
		"two-factor authentication is not enabled" },
	[GE_PAYLOAD_TOO_LARGE] = { "payload_too_large",
		"the request body is too large" },
	[GE_UNSUPPORTED_MEDIA_TYPE] = { "unsupported_media_type",
		"request bodies must be sent as Content-Type: application/json" },
	[GE_VALIDATION] = { "validation_failed",
		"the request is invalid" },
	[GE_INVALID_CURRENT_PASSWORD] = { "invalid_current_password",
		"the current password is not correct" },
	[GE_IDEMPOTENCY_KEY_REUSED] = { "idempotency_key_reused",
		"this Idempotency-Key was used with a different request" },
	[GE_INVALID_MFA_CODE] = { "invalid_mfa_code",
		"the authentication code is not valid" },
	[GE_RATE_LIMITED] = { "rate_limited",
		"too many requests; retry later" },
	[GE_INTERNAL] = { "internal_error",
		"an internal error occurred" },
	[GE_STRIPE_ERROR] = { "stripe_error",
		"the payment provider refused the request" },
	[GE_PAYOUT_UNCONFIRMED] = { "payout_unconfirmed",
		"the payout could not be confirmed; it will be completed automatically" },
	[GE_STRIPE_UNAVAILABLE] = { "stripe_unavailable",
		"the payment provider could not be reached" },
	[GE_DB_UNAVAILABLE] = { "database_unavailable",
		"the database is unavailable; retry later" },
	[GE_STRIPE_NOT_CONFIGURED] = { "stripe_not_configured",
		"payments are not configured on this server (STRIPE_SECRET_KEY is not set)" },
	[GE_SERVICE_UNAVAILABLE] = { "service_unavailable",
		"the service is temporarily unavailable" },
};

static enum gala_error known(enum gala_error e)
{
	return (int)e < 0 || e >= GE__COUNT ? GE_INTERNAL : e;
}

const char *gala_error_code(enum gala_error e)
{
	return error_words[known(e)].code;
}

const char *gala_error_message(enum gala_error e)
{
	return error_words[known(e)].message;
}

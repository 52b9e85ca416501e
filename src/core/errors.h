/* The errors of the domain, and the detail of a refusal: what services
 * and the mechanisms below them return, each with the stable code API.md
 * names and a default message. How each one is answered (HTTP status and
 * the envelope's "type") is the business of http/errors.h alone. */
#ifndef GALA_CORE_ERRORS_H
#define GALA_CORE_ERRORS_H

enum gala_error {
	GE_OK = 0,
	/* 400 */
	GE_MALFORMED_JSON,
	GE_BAD_REQUEST,
	GE_INVALID_IDEMPOTENCY_KEY,
	GE_INVALID_OTP,
	GE_OTP_EXPIRED,
	GE_OTP_LOCKED,
	GE_INVALID_RESET_TOKEN,
	GE_INVALID_WEBHOOK_PAYLOAD,
	/* 401 */
	GE_AUTHENTICATION_REQUIRED,
	GE_INVALID_TOKEN,
	GE_INVALID_CREDENTIALS,
	GE_MFA_CODE_REFUSED,        /* invalid_mfa_code at the login's second step */
	GE_INVALID_MFA_TOKEN,
	/* 403 */
	GE_FORBIDDEN,
	GE_CSRF_FAILED,
	GE_EMAIL_NOT_VERIFIED,
	GE_INVALID_SIGNATURE,
	GE_MFA_REQUIRED,
	/* 404, 405 */
	GE_NOT_FOUND,
	GE_METHOD_NOT_ALLOWED,
	/* 409 */
	GE_CONFLICT,
	GE_INVALID_STATE,
	GE_EMAIL_TAKEN,
	GE_PROFILE_EXISTS,
	GE_IDEMPOTENCY_KEY_IN_USE,
	GE_ONBOARDING_REQUIRED,
	GE_PAYOUT_IN_PROGRESS,
	GE_PAYOUT_ON_HOLD,
	GE_MFA_ALREADY_ENABLED,
	GE_MFA_NOT_ENABLED,
	/* 413, 415, 422, 429 */
	GE_PAYLOAD_TOO_LARGE,
	GE_UNSUPPORTED_MEDIA_TYPE,
	GE_VALIDATION,
	GE_IDEMPOTENCY_KEY_REUSED,
	GE_INVALID_CURRENT_PASSWORD,
	GE_INVALID_MFA_CODE,        /* a signed-in caller's wrong code (param code) */
	GE_RATE_LIMITED,
	/* 5xx */
	GE_INTERNAL,
	GE_STRIPE_ERROR,
	GE_PAYOUT_UNCONFIRMED,
	GE_STRIPE_UNAVAILABLE,
	GE_DB_UNAVAILABLE,
	GE_STRIPE_NOT_CONFIGURED,
	GE_SERVICE_UNAVAILABLE,
	GE__COUNT
};

/* The code of API.md ("invalid_state") and the default message. */
const char *gala_error_code(enum gala_error e);
const char *gala_error_message(enum gala_error e);

/* Filled by a service when it refuses: param names the field of a 422,
 * message replaces the error's default message. Both may stay NULL. */
struct refusal {
	const char *param;
	const char *message;
	const char *available_at;   /* RFC 3339: when a hold ends (payout_on_hold) */
};

#endif

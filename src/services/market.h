/* What the marketplace services (providers, events, bookings, payments)
 * share: how a refusal is explained to the handler. */
#ifndef GALA_MARKET_H
#define GALA_MARKET_H

/* Filled by a service when it refuses: param names the field of a 422,
 * message replaces the error's default message. Both may stay NULL. */
struct market_why {
	const char *param;
	const char *message;
};

#endif

/* Money: integer minor units and ISO 4217 currency codes, never floating
 * point. */
#ifndef GALA_MONEY_H
#define GALA_MONEY_H

#include <stdbool.h>

/* Largest amount a booking may have, in minor units: Stripe's limit for a
 * charge in most currencies (8 digits). */
#define MONEY_MAX_AMOUNT_CENTS 99999999LL

/* True for a lowercase ISO 4217 code of a currency in use ("usd", "eur");
 * fund and metal codes (XAU, XTS...) are refused. */
bool money_currency_valid(const char *code);

/* The platform's share of amount: floor(amount * bps / 10000). amount must
 * be 0..MONEY_MAX_AMOUNT_CENTS and bps 0..10000, so nothing overflows and
 * the fee never exceeds the amount. */
long long money_platform_fee(long long amount_cents, int bps);

#endif

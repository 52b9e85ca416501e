/* Settings: every one comes from the environment (or from the KEY=VALUE file
 * named by ENV_FILE, whose values win so that a reload can change them),
 * declared once in the table of config.c with its default and validation.
 * A systemd credential of the setting's name ($CREDENTIALS_DIRECTORY/NAME,
 * from LoadCredential=) wins over both: secrets need not be in the
 * environment, which every child process inherits. */
#ifndef GALA_CONFIG_H
#define GALA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* The most WORKERS the pool runs (server/scoreboard.h sizes its table from it). */
#define CONFIG_WORKERS_MAX 512

enum gala_environment {
	ENV_DEVELOPMENT,
	ENV_TEST,
	ENV_PRODUCTION,
};

struct config {
	enum gala_environment environment;
	char *secret_key;
	bool secret_key_generated;
	char *database_url;
	char *migration_database_url;
	char *schema_dir;
	int db_pool_timeout;
	int db_statement_timeout_ms;
	bool db_prepared_statements;
	bool rate_limit_enabled;
	int auth_rate_limit_requests;
	int auth_rate_limit_window_seconds;
	int write_rate_limit_requests;
	int write_rate_limit_window_seconds;
	char *stripe_secret_key;
	char *stripe_webhook_secret;
	bool stripe_webhook_unsigned_insecure_allow;
	char *stripe_api_base;
	char *stripe_price_ids;
	int platform_fee_bps;
	int payout_hold_hours;
	char *frontend_url;
	int workers;
	int request_timeout_seconds;
	char *listen;
	int max_requests_per_worker;
	char *smtp_url;
	char *smtp_username;
	char *smtp_password;
	char *mail_from;
	int mailer_poll_ms;
	int mailer_retry_base_seconds;
	int access_token_ttl_seconds;
	bool admin_mfa_required;
	int max_body_bytes;
	char *trusted_proxies;
	char *metrics_allow;
	char *log_level;
};

/* The configuration of this process: set once by the master (and again on
 * reload, before new workers fork); read-only in workers. */
extern const struct config *gala_config;

/* Loads every setting into *out but MIGRATION_DATABASE_URL, which it never
 * reads (migration_database_url stays NULL). Returns 0, or -1 with a
 * message naming the setting in err. Outside production a missing
 * SECRET_KEY is generated. */
int config_load(struct config *out, char *err, size_t errlen);

/* config_load for gala migrate: MIGRATION_DATABASE_URL too (default
 * DATABASE_URL). */
int config_load_migrate(struct config *out, char *err, size_t errlen);

/* The production guards (seed, Phase 4): a missing, known-default or short
 * SECRET_KEY, a missing Stripe key or webhook secret, a non-https
 * STRIPE_API_BASE, STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW, plaintext SMTP
 * (smtp:// without credentials, i.e. opportunistic STARTTLS) to a host other
 * than loopback. Returns 0 or -1 with the reason in err. */
int config_check_production(const struct config *c, char *err, size_t errlen);

/* What gala mailer needs, in any environment: SMTP_URL, and SECRET_KEY set
 * (not generated: it must be the pool's). In production also the rules of
 * config_check_production() for SECRET_KEY and SMTP, but not Stripe's,
 * whose secrets its unit never loads. Returns 0 or -1 with the reason. */
int config_check_mailer(const struct config *c, char *err, size_t errlen);

/* Whether mail must go over TLS (smtps://, or STARTTLS required): with SMTP
 * credentials set, which never cross in clear (API.md "Mail"). */
bool config_smtp_tls_required(const struct config *c);

/* Keeps a generated SECRET_KEY of old in new when new has none, so that a
 * reload does not sign out every user. 0, or -1 when memory ran out. */
int config_keep_generated_secret(struct config *newc, const struct config *old);

void config_free(struct config *c);

const char *config_environment_name(enum gala_environment e);

/* Prints "NAME=default  # meaning" for every setting (gala check-config --list). */
void config_print_table(void);

#endif

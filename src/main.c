#include "autoconf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "api/routes.h"
#include "core/config.h"
#include "core/log.h"
#include "db/db.h"
#include "services/accounts.h"
#include "services/maintenance.h"
#include "db/migrate.h"
#include "server/master.h"
#include "server/outbox_sender.h"

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: gala COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  serve                 run the FastCGI worker pool (LISTEN or systemd socket)\n"
	    "  migrate               apply schema/NNNN_*.sql migrations\n"
	    "  mailer                send the mail the requests queue in the outbox, until\n"
	    "                        SIGTERM (its own systemd service; several may run)\n"
	    "  maintenance           purge expired limiter rows, idempotency keys, revoked\n"
	    "                        tokens, OTPs, reset tokens and sent mail; complete stuck\n"
	    "                        payouts and refund charges of cancelled bookings (timer)\n"
	    "  check-config [--list] validate the environment; --list prints every setting\n"
	    "  user create-admin EMAIL [--name NAME]\n"
	    "                        create an admin; the password is read from stdin\n"
	    "  user set-role EMAIL ROLE\n"
	    "                        make a user customer, provider or admin\n"
	    "  --version             print the version\n"
	    "  --help                this text\n"
	    "\n"
	    "Settings come from the environment (and ENV_FILE); see etc/gala.env.example.\n");
}

#define ADMIN_MFA_STEPS \
	"  1. sign in: POST /api/auth/login {\"email\",\"password\"}\n" \
	"  2. POST /api/auth/mfa/totp with the access token: scan otpauth_uri (or type\n" \
	"     secret) into an authenticator app; keep the ten recovery_codes offline\n" \
	"  3. POST /api/auth/mfa/totp/confirm {\"code\"} with the app's current code\n" \
	"  4. sign in again: login answers mfa_token; POST /api/auth/mfa/verify\n" \
	"     {\"mfa_token\",\"code\"} gives a session with amr [\"pwd\",\"otp\"]\n"

/* What a new admin does next: with ADMIN_MFA_REQUIRED, admin routes answer
 * 403 mfa_required until the admin signs in with TOTP. */
static const char *admin_mfa_howto(const struct config *cfg)
{
	return cfg->admin_mfa_required ?
	    "ADMIN_MFA_REQUIRED is on: admin routes answer 403 mfa_required until this admin\n"
	    "signs in with a TOTP code. Enable TOTP now:\n" ADMIN_MFA_STEPS :
	    "Enable TOTP (two-factor authentication) for this admin:\n" ADMIN_MFA_STEPS;
}

/* Which command loads the configuration, and so which guards apply. */
enum config_use {
	CONFIG_FOR_APP,       /* the production guards */
	CONFIG_FOR_MIGRATE,   /* MIGRATION_DATABASE_URL, which nothing else reads;
	                       * none of the secrets the guards ask for (its unit
	                       * has none) */
	CONFIG_FOR_MAILER,    /* config_check_mailer(): no Stripe secret */
};

/* Loads and validates the configuration. */
static int load_config(struct config *cfg, enum config_use use)
{
	char err[512];
	if ((use == CONFIG_FOR_MIGRATE ? config_load_migrate(cfg, err, sizeof err) :
	    config_load(cfg, err, sizeof err)) != 0) {
		log_error("gala.config", "%s", err);
		return -1;
	}
	enum log_level lvl;
	if (log_level_parse(cfg->log_level, &lvl) == 0)
		log_set_level(lvl);
	int rc = 0;
	if (use == CONFIG_FOR_APP)
		rc = config_check_production(cfg, err, sizeof err);
	else if (use == CONFIG_FOR_MAILER)
		rc = config_check_mailer(cfg, err, sizeof err);
	if (rc != 0) {
		log_error("gala.config", "refusing to start: %s", err);
		config_free(cfg);
		return -1;
	}
	return 0;
}

static int cmd_check_config(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[2], "--list") == 0) {
		config_print_table();
		return 0;
	}
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_APP) != 0)
		return 1;
	printf("configuration ok (ENVIRONMENT=%s, WORKERS=%d, LISTEN=%s)\n",
	    config_environment_name(cfg.environment), cfg.workers, cfg.listen);
	if (cfg.secret_key_generated)
		printf("note: SECRET_KEY is not set; a random key is generated at each start\n");
	if (cfg.stripe_secret_key == NULL)
		printf("note: STRIPE_SECRET_KEY is not set; money routes answer 503\n");
	if (cfg.smtp_url == NULL)
		printf("note: SMTP_URL is not set; gala mailer will not start and mail stays queued\n");
	if (cfg.stripe_webhook_secret == NULL)
		printf(cfg.stripe_webhook_unsigned_insecure_allow ?
		    "WARNING: STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW: anyone can post webhooks\n" :
		    "note: STRIPE_WEBHOOK_SECRET is not set; webhooks answer 403\n");
	config_free(&cfg);
	return 0;
}

static int cmd_migrate(void)
{
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_MIGRATE) != 0)
		return 1;
	int rc = migrate_run(cfg.migration_database_url, cfg.schema_dir, cfg.db_pool_timeout,
	    cfg.db_statement_timeout_ms);
	config_free(&cfg);
	return rc;
}

/* The password from the terminal (echo off) or the first line of stdin;
 * -1 with why in err when none was read. A terminal whose echo cannot be
 * turned off is not read from: the password would show. */
static int read_password(char *out, size_t outlen, char *err, size_t errlen)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) != 0) {
			snprintf(err, errlen, "cannot read the terminal's settings: %s", strerror(errno));
			return -1;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &quiet) != 0) {
			snprintf(err, errlen, "cannot turn off the terminal's echo: %s", strerror(errno));
			return -1;
		}
		fprintf(stderr, "Password: ");
	}
	char *line = fgets(out, (int)outlen, stdin);
	if (tty) {
		fprintf(stderr, "\n");
		if (tcsetattr(STDIN_FILENO, TCSANOW, &old) != 0)
			fprintf(stderr, "gala: cannot turn the terminal's echo back on (run: stty echo): %s\n",
			    strerror(errno));
	}
	if (line == NULL) {
		snprintf(err, errlen, "no password given on stdin");
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int cmd_user(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[2], "create-admin") != 0 && strcmp(argv[2], "set-role") != 0)) {
		usage(stderr);
		return 2;
	}
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_APP) != 0)
		return 1;
	gala_config = &cfg;
	if (db_configure(cfg.database_url, cfg.db_pool_timeout, cfg.db_prepared_statements) != 0) {
		fprintf(stderr, "gala: out of memory\n");
		config_free(&cfg);
		return 1;
	}
	arena_t *a = arena_new(4096);
	char err[512] = "";
	int rc = 1;
	if (strcmp(argv[2], "create-admin") == 0) {
		const char *name = "Administrator";
		if (argc >= 6 && strcmp(argv[4], "--name") == 0)
			name = argv[5];
		char password[512];
		if (read_password(password, sizeof password, err, sizeof err) == 0 &&
		    accounts_create_admin(a, argv[3], password, name, err, sizeof err) == 0) {
			printf("admin %s created\n", argv[3]);
			printf("%s", admin_mfa_howto(&cfg));
			rc = 0;
		}
		sodium_memzero(password, sizeof password);
	} else if (argc < 5) {
		usage(stderr);
		rc = 2;
	} else if (strcmp(argv[4], "customer") != 0 && strcmp(argv[4], "provider") != 0 &&
	    strcmp(argv[4], "admin") != 0) {
		snprintf(err, sizeof err, "ROLE must be customer, provider or admin");
	} else if (accounts_set_role(a, argv[3], argv[4], err, sizeof err) == 0) {
		printf("%s is now %s\n", argv[3], argv[4]);
		rc = 0;
	}
	if (rc == 1 && err[0] != '\0')
		fprintf(stderr, "gala: %s\n", err);
	arena_free(a);
	db_disconnect();
	db_configure(NULL, 0, false);
	config_free(&cfg);
	return rc;
}

static int cmd_maintenance(void)
{
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_APP) != 0)
		return 1;
	gala_config = &cfg;
	int rc = db_configure(cfg.database_url, cfg.db_pool_timeout, cfg.db_prepared_statements) == 0 ?
	    maintenance_run() : 1;
	db_disconnect();
	db_configure(NULL, 0, false);
	gala_config = NULL;
	config_free(&cfg);
	return rc;
}

static int cmd_mailer(void)
{
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_MAILER) != 0)
		return 1;
	int rc = outbox_sender_run(&cfg);
	config_free(&cfg);
	return rc;
}

static int cmd_serve(void)
{
	struct config cfg;
	if (load_config(&cfg, CONFIG_FOR_APP) != 0)
		return 1;
	if (cfg.stripe_webhook_secret == NULL && cfg.stripe_webhook_unsigned_insecure_allow)
		log_warn("gala.config", "STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW is set: webhooks are "
		    "accepted WITHOUT a signature, so anyone can mark bookings paid or refunded");
	return master_run(&cfg, api_routes, api_routes_count);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("gala %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (sodium_init() < 0) {
		log_error("gala", "libsodium failed to initialise");
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_error("gala", "libcurl failed to initialise");
		return 1;
	}
	int rc;
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve();
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate();
	else if (strcmp(cmd, "maintenance") == 0)
		rc = cmd_maintenance();
	else if (strcmp(cmd, "mailer") == 0)
		rc = cmd_mailer();
	else if (strcmp(cmd, "user") == 0)
		rc = cmd_user(argc, argv);
	else if (strcmp(cmd, "check-config") == 0)
		rc = cmd_check_config(argc, argv);
	else {
		fprintf(stderr, "gala: unknown command '%s'\n\n", cmd);
		usage(stderr);
		rc = 2;
	}
	curl_global_cleanup();
	return rc;
}

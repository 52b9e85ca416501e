#include "autoconf.h"

#include "core/config.h"

#include "core/log.h"
#include "core/netmask.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

const struct config *gala_config;

enum setting_type { SET_STRING, SET_INT, SET_BOOL, SET_ENV };

struct setting {
	const char *name;
	enum setting_type type;
	size_t offset;
	const char *def;       /* NULL: unset by default */
	long min, max;         /* for SET_INT */
	const char *meaning;
};

#define OFF(field) offsetof(struct config, field)

#ifndef GALA_SCHEMA_DIR
#define GALA_SCHEMA_DIR "/usr/local/share/gala/schema"
#endif

static const struct setting settings[] = {
	{ "ENVIRONMENT", SET_ENV, OFF(environment), "development", 0, 0,
	  "development, test or production; production enables the start-up guards" },
	{ "SECRET_KEY", SET_STRING, OFF(secret_key), NULL, 0, 0,
	  "HS256 signing key, 32+ characters; required in production" },
	{ "DATABASE_URL", SET_STRING, OFF(database_url), "postgresql:///gala", 0, 0,
	  "libpq connection URI of the application's database role" },
	{ "MIGRATION_DATABASE_URL", SET_STRING, OFF(migration_database_url), NULL, 0, 0,
	  "connection URI of the schema owner, read by gala migrate only (default DATABASE_URL)" },
	{ "SCHEMA_DIR", SET_STRING, OFF(schema_dir), GALA_SCHEMA_DIR, 0, 0,
	  "directory of the NNNN_name.sql migrations" },
	{ "DB_POOL_TIMEOUT", SET_INT, OFF(db_pool_timeout), "5", 1, 300,
	  "seconds to wait for a database connection" },
	{ "DB_STATEMENT_TIMEOUT_MS", SET_INT, OFF(db_statement_timeout_ms), "5000", 0, 600000,
	  "statement_timeout of new sessions in ms (0: none), set by gala migrate" },
	{ "DB_PREPARED_STATEMENTS", SET_BOOL, OFF(db_prepared_statements), "true", 0, 0,
	  "prepare each statement once per connection; false for PgBouncer < 1.21 in transaction mode" },
	{ "RATE_LIMIT_ENABLED", SET_BOOL, OFF(rate_limit_enabled), "true", 0, 0,
	  "false turns the auth and write rate limits off" },
	{ "AUTH_RATE_LIMIT_REQUESTS", SET_INT, OFF(auth_rate_limit_requests), "10", 1, 1000000,
	  "burst of the auth rule (per client IP, and per email for login/verify)" },
	{ "AUTH_RATE_LIMIT_WINDOW_SECONDS", SET_INT, OFF(auth_rate_limit_window_seconds), "60", 1, 86400,
	  "window of the auth rule, seconds" },
	{ "WRITE_RATE_LIMIT_REQUESTS", SET_INT, OFF(write_rate_limit_requests), "60", 1, 1000000,
	  "burst of the write rule (per user, per IP when anonymous)" },
	{ "WRITE_RATE_LIMIT_WINDOW_SECONDS", SET_INT, OFF(write_rate_limit_window_seconds), "60", 1, 86400,
	  "window of the write rule, seconds" },
	{ "STRIPE_SECRET_KEY", SET_STRING, OFF(stripe_secret_key), NULL, 0, 0,
	  "Stripe API key; required in production, money routes answer 503 without it elsewhere" },
	{ "STRIPE_WEBHOOK_SECRET", SET_STRING, OFF(stripe_webhook_secret), NULL, 0, 0,
	  "comma-separated whsec_ signing secrets (several while rolling a secret)" },
	{ "STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW", SET_BOOL,
	  OFF(stripe_webhook_unsigned_insecure_allow), "false", 0, 0,
	  "true accepts webhooks unsigned when STRIPE_WEBHOOK_SECRET is unset; never in production" },
	{ "STRIPE_API_BASE", SET_STRING, OFF(stripe_api_base), "https://api.stripe.com", 0, 0,
	  "base URL of the Stripe API (tests point it at the fake); https in production" },
	{ "STRIPE_PRICE_IDS", SET_STRING, OFF(stripe_price_ids), "", 0, 0,
	  "comma-separated price ids users may subscribe to" },
	{ "PLATFORM_FEE_BPS", SET_INT, OFF(platform_fee_bps), "1000", 0, 10000,
	  "platform fee in basis points of a booking (1000 = 10%)" },
	{ "PAYOUT_HOLD_HOURS", SET_INT, OFF(payout_hold_hours), "0", 0, 8760,
	  "a payout waits until the event's end plus this many hours" },
	{ "FRONTEND_URL", SET_STRING, OFF(frontend_url), "http://localhost:3000", 0, 0,
	  "origin of the web front end: CSRF Origin check and links in mails" },
	{ "WORKERS", SET_INT, OFF(workers), NULL, 1, CONFIG_WORKERS_MAX,
	  "FastCGI worker processes (default 2 x CPUs)" },
	{ "REQUEST_TIMEOUT_SECONDS", SET_INT, OFF(request_timeout_seconds), "30", 1, 3600,
	  "a worker busy longer than this on one request is killed and replaced" },
	{ "LISTEN", SET_STRING, OFF(listen), "unix:/run/gala/fcgi.sock", 0, 0,
	  "unix:PATH or HOST:PORT, when not socket-activated by systemd" },
	{ "MAX_REQUESTS_PER_WORKER", SET_INT, OFF(max_requests_per_worker), "1000000", 0, INT_MAX,
	  "a worker is recycled after this many requests (0: never)" },
	{ "SMTP_URL", SET_STRING, OFF(smtp_url), NULL, 0, 0,
	  "smtps://host:port, or smtp://host:port (STARTTLS, required with SMTP_USERNAME)" },
	{ "SMTP_USERNAME", SET_STRING, OFF(smtp_username), NULL, 0, 0, "SMTP login" },
	{ "SMTP_PASSWORD", SET_STRING, OFF(smtp_password), NULL, 0, 0, "SMTP password" },
	{ "MAIL_FROM", SET_STRING, OFF(mail_from), "Gala <no-reply@localhost>", 0, 0,
	  "From: of every mail" },
	{ "MAILER_POLL_MS", SET_INT, OFF(mailer_poll_ms), "1000", 10, 60000,
	  "gala mailer looks for queued mail this often (ms) when it has nothing to send" },
	{ "MAILER_RETRY_BASE_SECONDS", SET_INT, OFF(mailer_retry_base_seconds), "30", 1, 3600,
	  "first retry delay of a failed mail; doubled per attempt (jittered, at most 1 h) for 24 h" },
	{ "ACCESS_TOKEN_TTL_SECONDS", SET_INT, OFF(access_token_ttl_seconds), "3600", 60, 2592000,
	  "lifetime of an access token" },
	{ "ADMIN_MFA_REQUIRED", SET_BOOL, OFF(admin_mfa_required), NULL, 0, 0,
	  "admin-only routes need a token signed in with TOTP (default: true in production)" },
	{ "MAX_BODY_BYTES", SET_INT, OFF(max_body_bytes), "65536", 1024, 16777216,
	  "largest accepted request body (413 above)" },
	{ "TRUSTED_PROXIES", SET_STRING, OFF(trusted_proxies), "", 0, 0,
	  "comma-separated proxy addresses whose X-Forwarded-For is believed" },
	{ "METRICS_ALLOW", SET_STRING, OFF(metrics_allow), "127.0.0.1, ::1", 0, 0,
	  "addresses and networks (CIDR) that GET /metrics answers; 404 for the rest" },
	{ "LOG_LEVEL", SET_STRING, OFF(log_level), "info", 0, 0,
	  "debug, info, warning or error" },
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* Settings only gala migrate reads: the schema owner's credentials never
 * enter the memory of the pool (or of any other command). */
static bool migrate_only(const char *name)
{
	return strcmp(name, "MIGRATION_DATABASE_URL") == 0;
}

/* Values read from ENV_FILE; they override the process environment. */
struct file_value {
	char *name;
	char *value;
};

static void seterr(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static void free_file_values(struct file_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

/* Reads KEY=VALUE lines (blank lines and # comments ignored, optional
 * matching quotes around VALUE), as systemd's EnvironmentFile does. */
static int read_env_file(const char *path, bool migrate, struct file_value **out, size_t *nout,
    char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		seterr(err, errlen, "ENV_FILE %s: %s", path, strerror(errno));
		return -1;
	}
	struct file_value *v = NULL;
	size_t n = 0, cap = 0;
	char line[4096];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			seterr(err, errlen, "ENV_FILE %s:%d: expected KEY=VALUE", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (!migrate && migrate_only(key))
			continue;
		size_t vl = strlen(val);
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = '\0';
			val++;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct file_value *nv = realloc(v, cap * sizeof *v);
			if (nv == NULL) {
				seterr(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			v = nv;
		}
		v[n].name = strdup(key);
		v[n].value = strdup(val);
		n++;
		if (v[n - 1].name == NULL || v[n - 1].value == NULL) {
			seterr(err, errlen, "out of memory");
			rc = -1;
			break;
		}
	}
	fclose(f);
	if (rc != 0) {
		free_file_values(v, n);
		return -1;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* The systemd credential NAME (LoadCredential=NAME:...) in dir: *out is the
 * file's content without its trailing newline (malloc'd), or NULL when there
 * is no such credential. */
static int read_credential(const char *dir, const char *name, char **out, char *err,
    size_t errlen)
{
	char path[4096];
	*out = NULL;
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
		seterr(err, errlen, "CREDENTIALS_DIRECTORY is too long");
		return -1;
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		seterr(err, errlen, "credential %s: %s", name, strerror(errno));
		return -1;
	}
	char value[4096];
	size_t n = fread(value, 1, sizeof value, f);
	int failed = ferror(f);
	fclose(f);
	if (failed || n == sizeof value || memchr(value, '\0', n) != NULL) {
		seterr(err, errlen, "credential %s: unreadable, too long or not text", name);
		sodium_memzero(value, sizeof value);
		return -1;
	}
	while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r'))
		n--;
	value[n] = '\0';
	*out = strdup(value);
	sodium_memzero(value, sizeof value);
	if (*out == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static const char *lookup(const char *name, const struct file_value *fv, size_t nfv)
{
	for (size_t i = nfv; i-- > 0;)
		if (strcmp(fv[i].name, name) == 0)
			return fv[i].value;
	return getenv(name);
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int apply_setting(struct config *c, const struct setting *s, const char *value,
    char *err, size_t errlen)
{
	void *field = (char *)c + s->offset;
	switch (s->type) {
	case SET_STRING:
		*(char **)field = value ? strdup(value) : NULL;
		if (value != NULL && *(char **)field == NULL) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	case SET_INT: {
		if (value == NULL)
			return 0;
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < s->min || v > s->max) {
			seterr(err, errlen, "%s must be an integer from %ld to %ld (got \"%s\")",
			    s->name, s->min, s->max, value);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	}
	case SET_BOOL:
		if (value == NULL)
			return 0;
		if (parse_bool(value, (bool *)field) != 0) {
			seterr(err, errlen, "%s must be true or false (got \"%s\")", s->name, value);
			return -1;
		}
		return 0;
	case SET_ENV:
		if (value == NULL)
			return 0;
		if (strcmp(value, "development") == 0)
			*(enum gala_environment *)field = ENV_DEVELOPMENT;
		else if (strcmp(value, "test") == 0)
			*(enum gala_environment *)field = ENV_TEST;
		else if (strcmp(value, "production") == 0)
			*(enum gala_environment *)field = ENV_PRODUCTION;
		else {
			seterr(err, errlen,
			    "ENVIRONMENT must be development, test or production (got \"%s\")", value);
			return -1;
		}
		return 0;
	}
	return -1;
}

static int default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > 64 ? 128 : (int)(2 * n);
}

static int validate(struct config *c, char *err, size_t errlen)
{
	if (!netmask_list_valid(c->metrics_allow)) {
		seterr(err, errlen, "METRICS_ALLOW must list IP addresses or networks "
		    "(\"127.0.0.1, ::1, 10.0.0.0/8\")");
		return -1;
	}
	if (strncmp(c->listen, "unix:", 5) != 0 && strrchr(c->listen, ':') == NULL) {
		seterr(err, errlen, "LISTEN must be unix:PATH or HOST:PORT (got \"%s\")", c->listen);
		return -1;
	}
	if (strncmp(c->stripe_api_base, "https://", 8) != 0 &&
	    strncmp(c->stripe_api_base, "http://", 7) != 0) {
		seterr(err, errlen, "STRIPE_API_BASE must be an http(s) URL");
		return -1;
	}
	if (strncmp(c->frontend_url, "https://", 8) != 0 &&
	    strncmp(c->frontend_url, "http://", 7) != 0) {
		seterr(err, errlen, "FRONTEND_URL must be an http(s) origin");
		return -1;
	}
	size_t fl = strlen(c->frontend_url);
	if (fl > 0 && c->frontend_url[fl - 1] == '/')
		c->frontend_url[fl - 1] = '\0';
	if (c->smtp_url != NULL && *c->smtp_url != '\0' &&
	    strncmp(c->smtp_url, "smtp://", 7) != 0 && strncmp(c->smtp_url, "smtps://", 8) != 0) {
		seterr(err, errlen, "SMTP_URL must start with smtp:// or smtps://");
		return -1;
	}
	enum log_level lvl;
	if (log_level_parse(c->log_level, &lvl) != 0) {
		seterr(err, errlen, "LOG_LEVEL must be debug, info, warning or error (got \"%s\")",
		    c->log_level);
		return -1;
	}
	return 0;
}

static int generate_secret(struct config *c, char *err, size_t errlen)
{
	unsigned char raw[32];
	char hex[65];
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
	c->secret_key = strdup(hex);
	if (c->secret_key == NULL) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	c->secret_key_generated = true;
	return 0;
}

static int load(struct config *out, bool migrate, char *err, size_t errlen)
{
	struct file_value *fv = NULL;
	size_t nfv = 0;
	const char *env_file = getenv("ENV_FILE");
	memset(out, 0, sizeof *out);
	if (env_file != NULL && *env_file != '\0' &&
	    read_env_file(env_file, migrate, &fv, &nfv, err, errlen) != 0)
		return -1;

	const char *cred_dir = getenv("CREDENTIALS_DIRECTORY");
	int rc = 0;
	for (size_t i = 0; i < NSETTINGS && rc == 0; i++) {
		if (!migrate && migrate_only(settings[i].name))
			continue;
		char *cred = NULL;
		if (cred_dir != NULL && *cred_dir != '\0' &&
		    read_credential(cred_dir, settings[i].name, &cred, err, errlen) != 0) {
			rc = -1;
			break;
		}
		const char *v = cred != NULL ? cred : lookup(settings[i].name, fv, nfv);
		if (v != NULL && *v == '\0' && settings[i].type != SET_STRING)
			v = NULL;
		if (v == NULL)
			v = settings[i].def;
		/* Its default follows ENVIRONMENT, which the table loads first. */
		if (v == NULL && settings[i].offset == OFF(admin_mfa_required))
			v = out->environment == ENV_PRODUCTION ? "true" : "false";
		rc = apply_setting(out, &settings[i], v, err, errlen);
		if (cred != NULL) {
			sodium_memzero(cred, strlen(cred));
			free(cred);
		}
	}
	free_file_values(fv, nfv);
	if (rc != 0) {
		config_free(out);
		return -1;
	}
	if (out->workers == 0)
		out->workers = default_workers();
	if (migrate && (out->migration_database_url == NULL || *out->migration_database_url == '\0')) {
		free(out->migration_database_url);
		out->migration_database_url = strdup(out->database_url);
	}
	/* Empty optional strings mean "not set". */
	char **optional[] = { &out->secret_key, &out->stripe_secret_key,
		&out->stripe_webhook_secret, &out->smtp_url, &out->smtp_username,
		&out->smtp_password };
	for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
		if (*optional[i] != NULL && **optional[i] == '\0') {
			free(*optional[i]);
			*optional[i] = NULL;
		}
	}
	bool oom = migrate && out->migration_database_url == NULL;
	if (oom || validate(out, err, errlen) != 0 ||
	    (out->secret_key == NULL && out->environment != ENV_PRODUCTION &&
		generate_secret(out, err, errlen) != 0)) {
		if (oom)
			seterr(err, errlen, "out of memory");
		config_free(out);
		return -1;
	}
	return 0;
}

int config_load(struct config *out, char *err, size_t errlen)
{
	return load(out, false, err, errlen);
}

int config_load_migrate(struct config *out, char *err, size_t errlen)
{
	return load(out, true, err, errlen);
}

/* Values that appear in tutorials, templates and the old Python defaults. */
static const char *const known_default_secrets[] = {
	"changeme", "change-me", "change_me", "secret", "secret-key", "secret_key",
	"your-secret-key", "your_secret_key", "your-secret-key-here",
	"supersecret", "super-secret-key", "dev-secret-key", "development",
	"insecure", "django-insecure", "please-change-me", "CHANGE_ME_TO_A_RANDOM_SECRET",
	"replace-me-with-a-random-string-of-32-or-more-characters",
	"0123456789abcdef0123456789abcdef",
};

bool config_smtp_tls_required(const struct config *c)
{
	return c->smtp_username != NULL || c->smtp_password != NULL ||
	    (c->smtp_url != NULL && strncmp(c->smtp_url, "smtps://", 8) == 0);
}

/* Whether the host of scheme://[user@]host[:port][/...] is this machine:
 * localhost, 127.0.0.0/8 or [::1]. */
static bool url_host_is_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	if (h == NULL)
		return false;
	h += 3;
	const char *end = h + strcspn(h, "/?#");
	const char *at = memchr(h, '@', (size_t)(end - h));
	if (at != NULL)
		h = at + 1;
	size_t n;
	if (*h == '[') {
		h++;
		n = strcspn(h, "]");
	} else {
		n = strcspn(h, ":/?#");
	}
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return true;
	if (n == 3 && strncmp(h, "::1", 3) == 0)
		return true;
	if (n < 5 || strncmp(h, "127.", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (!isdigit((unsigned char)h[i]) && h[i] != '.')
			return false;
	return true;
}

/* The production rules of SECRET_KEY: set, not a known default, long and
 * varied enough to be random. */
static int check_secret_key(const struct config *c, char *err, size_t errlen)
{
	if (c->secret_key == NULL) {
		seterr(err, errlen, "SECRET_KEY is required in production "
		    "(generate one with: openssl rand -base64 48)");
		return -1;
	}
	for (size_t i = 0; i < sizeof known_default_secrets / sizeof known_default_secrets[0]; i++) {
		if (strcasecmp(c->secret_key, known_default_secrets[i]) == 0) {
			seterr(err, errlen, "SECRET_KEY is a known default value; "
			    "generate one with: openssl rand -base64 48");
			return -1;
		}
	}
	if (strlen(c->secret_key) < 32) {
		seterr(err, errlen, "SECRET_KEY must be at least 32 characters in production");
		return -1;
	}
	size_t distinct = 0;
	bool seen[256] = { false };
	for (const unsigned char *p = (const unsigned char *)c->secret_key; *p; p++) {
		if (!seen[*p]) {
			seen[*p] = true;
			distinct++;
		}
	}
	if (distinct < 8) {
		seterr(err, errlen, "SECRET_KEY is too repetitive to be a random secret");
		return -1;
	}
	return 0;
}

/* Reset links and codes would cross the network in clear, or under a
 * STARTTLS an attacker on the path can strip. */
static int check_smtp_tls(const struct config *c, char *err, size_t errlen)
{
	if (c->smtp_url != NULL && !config_smtp_tls_required(c) && !url_host_is_loopback(c->smtp_url)) {
		seterr(err, errlen, "SMTP_URL: plaintext SMTP to a host other than loopback in "
		    "production; use smtps://, or set SMTP_USERNAME (STARTTLS is then required)");
		return -1;
	}
	return 0;
}

int config_check_production(const struct config *c, char *err, size_t errlen)
{
	if (c->environment != ENV_PRODUCTION)
		return 0;
	if (check_secret_key(c, err, errlen) != 0)
		return -1;
	if (c->stripe_secret_key == NULL) {
		seterr(err, errlen, "STRIPE_SECRET_KEY is required in production");
		return -1;
	}
	if (c->stripe_webhook_secret == NULL) {
		seterr(err, errlen, "STRIPE_WEBHOOK_SECRET is required in production");
		return -1;
	}
	if (strncmp(c->frontend_url, "https://", 8) != 0) {
		seterr(err, errlen, "FRONTEND_URL must be https:// in production");
		return -1;
	}
	if (strncmp(c->stripe_api_base, "https://", 8) != 0) {
		seterr(err, errlen, "STRIPE_API_BASE must be https:// in production");
		return -1;
	}
	if (c->stripe_webhook_unsigned_insecure_allow) {
		seterr(err, errlen, "STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW is never allowed in "
		    "production");
		return -1;
	}
	return check_smtp_tls(c, err, errlen);
}

int config_check_mailer(const struct config *c, char *err, size_t errlen)
{
	if (c->smtp_url == NULL) {
		seterr(err, errlen, "SMTP_URL is not set: gala mailer has no server to send to");
		return -1;
	}
	if (c->secret_key_generated) {
		seterr(err, errlen, "SECRET_KEY is not set: gala mailer opens the mails the pool "
		    "sealed with it, so it needs the pool's key");
		return -1;
	}
	if (c->environment != ENV_PRODUCTION)
		return 0;
	if (check_secret_key(c, err, errlen) != 0)
		return -1;
	return check_smtp_tls(c, err, errlen);
}

int config_keep_generated_secret(struct config *newc, const struct config *old)
{
	if (old == NULL || !newc->secret_key_generated || !old->secret_key_generated)
		return 0;
	char *copy = strdup(old->secret_key);
	if (copy == NULL)
		return -1;
	sodium_memzero(newc->secret_key, strlen(newc->secret_key));
	free(newc->secret_key);
	newc->secret_key = copy;
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		if (settings[i].type != SET_STRING)
			continue;
		char **field = (char **)((char *)c + settings[i].offset);
		if (*field != NULL && settings[i].offset == OFF(secret_key))
			sodium_memzero(*field, strlen(*field));
		free(*field);
		*field = NULL;
	}
}

const char *config_environment_name(enum gala_environment e)
{
	switch (e) {
	case ENV_DEVELOPMENT:
		return "development";
	case ENV_TEST:
		return "test";
	case ENV_PRODUCTION:
		return "production";
	}
	return "unknown";
}

void config_print_table(void)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		printf("%-32s %-28s %s\n", settings[i].name,
		    settings[i].def ? settings[i].def : "(unset)", settings[i].meaning);
}

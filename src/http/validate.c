#include "autoconf.h"

#include "http/validate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/calendar.h"
#include "core/crypto.h"
#include "http/response.h"

void v_init(struct validator *v, struct request *req)
{
	v->req = req;
	v->obj = req->json;
	v->failed = false;
}

void v_fail(struct validator *v, const char *param, const char *fmt, ...)
{
	if (v->failed)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	http_respond_error_extra(v->req, GE_VALIDATION, param, msg, NULL);
	v->failed = true;
}

static const cJSON *member(struct validator *v, const char *name)
{
	if (v->failed || v->obj == NULL)
		return NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(v->obj, name);
	return cJSON_IsNull(m) ? NULL : m;
}

void v_only(struct validator *v, const char *const *allowed)
{
	if (v->failed || v->obj == NULL)
		return;
	for (const cJSON *m = v->obj->child; m != NULL; m = m->next) {
		bool ok = false;
		for (const char *const *a = allowed; *a != NULL && !ok; a++)
			ok = strcmp(*a, m->string) == 0;
		if (!ok) {
			v_fail(v, m->string, "%s is not a field of this request", m->string);
			return;
		}
	}
}

size_t utf8_length(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool has_control_chars(const char *s, bool allow_newlines)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t')))
			return true;
		if (c == 0x7f)
			return true;
	}
	return false;
}

const char *v_string(struct validator *v, const char *name, bool required,
    size_t min, size_t max, bool trim)
{
	const cJSON *m = member(v, name);
	if (v->failed)
		return NULL;
	if (m == NULL) {
		if (required)
			v_fail(v, name, "%s is required", name);
		return NULL;
	}
	if (!cJSON_IsString(m)) {
		v_fail(v, name, "%s must be a string", name);
		return NULL;
	}
	const char *s = m->valuestring;
	size_t len = strlen(s);
	if (trim) {
		while (isspace((unsigned char)*s))
			s++, len--;
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
	}
	char *out = arena_strndup(v->req->arena, s, len);
	if (has_control_chars(out, !trim)) {
		v_fail(v, name, "%s contains control characters", name);
		return NULL;
	}
	size_t chars = utf8_length(out);
	if (chars < min || chars > max) {
		if (min > 0 && chars == 0)
			v_fail(v, name, "%s must not be empty", name);
		else
			v_fail(v, name, "%s must be %zu to %zu characters", name, min, max);
		return NULL;
	}
	return out;
}

/* Deliberately simple: one @, a non-empty local part, a dotted domain of
 * letters, digits and hyphens. Whether the mailbox exists is what the
 * verification mail finds out. */
static bool email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return false;
	for (const char *p = s; p < at; p++)
		if ((unsigned char)*p <= ' ' || strchr("()<>[]\\,;:\"", *p) != NULL)
			return false;
	const char *d = at + 1;
	size_t dl = strlen(d);
	if (dl < 3 || strchr(d, '.') == NULL || d[0] == '.' || d[dl - 1] == '.' || strstr(d, ".."))
		return false;
	for (const char *p = d; *p != '\0'; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || (unsigned char)*p >= 0x80))
			return false;
	return true;
}

const char *v_email(struct validator *v, const char *name)
{
	const char *s = v_string(v, name, true, 3, 254, true);
	if (s == NULL)
		return NULL;
	if (!email_valid(s)) {
		v_fail(v, name, "%s is not a valid email address", name);
		return NULL;
	}
	char *lower = arena_strdup(v->req->arena, s);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return lower;
}

const char *v_enum(struct validator *v, const char *name, bool required,
    const char *const *options)
{
	const char *s = v_string(v, name, required, 1, 64, false);
	if (s == NULL)
		return NULL;
	for (const char *const *o = options; *o != NULL; o++)
		if (strcmp(*o, s) == 0)
			return *o;
	char list[256] = "";
	for (const char *const *o = options; *o != NULL; o++) {
		if (list[0] != '\0')
			strncat(list, ", ", sizeof list - strlen(list) - 1);
		strncat(list, *o, sizeof list - strlen(list) - 1);
	}
	v_fail(v, name, "%s must be one of: %s", name, list);
	return NULL;
}

long long v_int(struct validator *v, const char *name, bool required,
    long long min, long long max, bool *present)
{
	const cJSON *m = member(v, name);
	if (present != NULL)
		*present = m != NULL && !v->failed;
	if (v->failed)
		return 0;
	if (m == NULL) {
		if (required)
			v_fail(v, name, "%s is required", name);
		return 0;
	}
	if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) ||
	    fabs(m->valuedouble) > 9007199254740991.0) {
		v_fail(v, name, "%s must be an integer", name);
		return 0;
	}
	long long x = (long long)m->valuedouble;
	if (x < min || x > max) {
		v_fail(v, name, "%s must be between %lld and %lld", name, min, max);
		return 0;
	}
	return x;
}

bool v_bool(struct validator *v, const char *name, bool def)
{
	const cJSON *m = member(v, name);
	if (v->failed || m == NULL)
		return def;
	if (!cJSON_IsBool(m)) {
		v_fail(v, name, "%s must be true or false", name);
		return def;
	}
	return cJSON_IsTrue(m);
}

const char *v_uuid(struct validator *v, const char *name, bool required)
{
	const char *s = v_string(v, name, required, 1, 64, false);
	if (s == NULL)
		return NULL;
	if (!uuid_valid(s)) {
		v_fail(v, name, "%s must be a UUID", name);
		return NULL;
	}
	return s;
}

static bool parse_nonneg(const char *s, long long max, long long *out)
{
	if (s == NULL || *s == '\0' || strlen(s) > 18)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	long long x = strtoll(s, NULL, 10);
	if (x > max)
		return false;
	*out = x;
	return true;
}

void v_page(struct validator *v, int def_limit, int *limit, int *offset)
{
	*limit = def_limit;
	*offset = 0;
	if (v->failed)
		return;
	const char *l = request_query(v->req, "limit");
	const char *o = request_query(v->req, "offset");
	long long x;
	if (l != NULL) {
		if (!parse_nonneg(l, 100, &x) || x < 1) {
			v_fail(v, "limit", "limit must be an integer from 1 to 100");
			return;
		}
		*limit = (int)x;
	}
	if (o != NULL) {
		if (!parse_nonneg(o, 1000000000LL, &x)) {
			v_fail(v, "offset", "offset must be an integer of 0 or more");
			return;
		}
		*offset = (int)x;
	}
}

const char *v_query_uuid(struct validator *v, const char *name)
{
	if (v->failed)
		return NULL;
	const char *s = request_query(v->req, name);
	if (s == NULL)
		return NULL;
	if (!uuid_valid(s)) {
		v_fail(v, name, "%s must be a UUID", name);
		return NULL;
	}
	return s;
}

/* RFC 3339 date-time: 2026-05-01T18:00:00Z, optional fraction, Z or ±hh:mm. */
bool rfc3339_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;
	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) :
		    !(s[i] == shape[i] || (shape[i] == 'T' && (s[i] == 't' || s[i] == ' '))))
			return false;
	}
	int mo = (s[5] - '0') * 10 + (s[6] - '0');
	int dd = (s[8] - '0') * 10 + (s[9] - '0');
	int hh = (s[11] - '0') * 10 + (s[12] - '0');
	int mi = (s[14] - '0') * 10 + (s[15] - '0');
	int ss = (s[17] - '0') * 10 + (s[18] - '0');
	if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 60)
		return false;
	const char *p = s + i;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
	    p[3] == ':' && isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) && p[6] == '\0')
		return (p[1] - '0') * 10 + (p[2] - '0') <= 23 && (p[4] - '0') * 10 + (p[5] - '0') <= 59;
	return false;
}

static int digits_at(const char *s, int n)
{
	int x = 0;
	for (int i = 0; i < n; i++)
		x = x * 10 + (s[i] - '0');
	return x;
}

static bool leap_year(long long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int rfc3339_to_unix(const char *s, long long *epoch)
{
	static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (s == NULL || !rfc3339_valid(s))
		return -1;
	int y = digits_at(s, 4), mo = digits_at(s + 5, 2), d = digits_at(s + 8, 2);
	if (y < 1 || d > mdays[mo - 1] + (mo == 2 && leap_year(y)))
		return -1;
	const char *p = s + 19;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	long long offset = 0;
	if (*p == '+' || *p == '-')
		offset = (digits_at(p + 1, 2) * 3600LL + digits_at(p + 4, 2) * 60LL) * (*p == '-' ? -1 : 1);
	*epoch = calendar_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
	    digits_at(s + 11, 2) * 3600LL + digits_at(s + 14, 2) * 60LL + digits_at(s + 17, 2) - offset;
	return 0;
}

const char *rfc3339_to_utc(arena_t *a, const char *s)
{
	long long t;
	if (rfc3339_to_unix(s, &t) != 0)
		return NULL;
	const char *frac = s + 19, *p = frac;
	if (*p == '.')
		for (frac = ++p; isdigit((unsigned char)*p); p++)
			;
	int flen = (int)(p - frac) > 6 ? 6 : (int)(p - frac);
	long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	long long sec = t - days * 86400, year;
	unsigned month, day;
	calendar_civil_from_days(days, &year, &month, &day);
	if (year < 1 || year > 9999)
		return NULL;
	return arena_printf(a, "%04lld-%02u-%02uT%02lld:%02lld:%02lld%s%.*sZ", year, month, day,
	    sec / 3600, sec / 60 % 60, sec % 60, flen > 0 ? "." : "", flen, frac);
}

const char *v_timestamp(struct validator *v, const char *name, bool required, bool query)
{
	const char *s;
	if (query) {
		if (v->failed)
			return NULL;
		s = request_query(v->req, name);
		if (s == NULL)
			return NULL;
	} else {
		s = v_string(v, name, required, 1, 64, false);
		if (s == NULL)
			return NULL;
	}
	if (!rfc3339_valid(s)) {
		v_fail(v, name, "%s must be an RFC 3339 time such as 2026-05-01T18:00:00Z", name);
		return NULL;
	}
	const char *utc = rfc3339_to_utc(v->req->arena, s);
	if (utc == NULL)
		v_fail(v, name, "%s is not a valid date and time", name);
	return utc;
}

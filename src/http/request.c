#include "autoconf.h"

#include "http/request.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "core/config.h"
#include "core/clock.h"
#include "core/json.h"

/* A FastCGI param by exact name (REQUEST_METHOD, HTTP_COOKIE...) or NULL. */
static const char *request_env(const struct request *req, const char *name)
{
	if (req->envp == NULL)
		return NULL;
	size_t len = strlen(name);
	for (char **p = req->envp; *p != NULL; p++)
		if (strncmp(*p, name, len) == 0 && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}

const char *request_header(const struct request *req, const char *name)
{
	char key[128];
	size_t off = 0;
	if (strcasecmp(name, "Content-Type") != 0 && strcasecmp(name, "Content-Length") != 0) {
		memcpy(key, "HTTP_", 5);
		off = 5;
	}
	for (const char *p = name; *p != '\0' && off < sizeof key - 1; p++)
		key[off++] = (char)(*p == '-' ? '_' : toupper((unsigned char)*p));
	key[off] = '\0';
	return request_env(req, key);
}

bool request_id_valid(const char *s)
{
	size_t n = 0;
	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!(isalnum(c) || c == '.' || c == '_' || c == '-') || n >= 64)
			return false;
	}
	return n >= 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The percent-decoding of s[0..len) ('+' is a space), NUL-terminated;
 * its length (a decoded %00 included) in *outlen. */
static char *url_decode(arena_t *a, const char *s, size_t len, size_t *outlen)
{
	char *out = arena_alloc(a, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < len && hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			    hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

const char *request_query(const struct request *req, const char *key)
{
	size_t klen = strlen(key);
	const char *p = req->query;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		size_t dlen;
		char *name = url_decode(req->arena, p, nlen, &dlen);
		if (dlen == klen && memcmp(name, key, klen) == 0)
			return eq ? url_decode(req->arena, eq + 1, len - nlen - 1, &dlen) : "";
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

const char *request_cookie(const struct request *req, const char *name)
{
	const char *h = request_env(req, "HTTP_COOKIE");
	size_t nlen = strlen(name);
	while (h != NULL && *h != '\0') {
		while (*h == ' ' || *h == ';')
			h++;
		const char *end = strchr(h, ';');
		size_t len = end ? (size_t)(end - h) : strlen(h);
		if (len > nlen && strncmp(h, name, nlen) == 0 && h[nlen] == '=')
			return arena_strndup(req->arena, h + nlen + 1, len - nlen - 1);
		h = end;
	}
	return NULL;
}

/* The client is REMOTE_ADDR, unless that is a configured trusted proxy: then
 * the right-most X-Forwarded-For entry that is not itself a trusted proxy. */
static bool is_trusted_proxy(const char *addr)
{
	const char *list = gala_config ? gala_config->trusted_proxies : NULL;
	size_t alen = strlen(addr);
	while (list != NULL && *list != '\0') {
		while (*list == ' ' || *list == ',')
			list++;
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		while (len > 0 && list[len - 1] == ' ')
			len--;
		if (len == alen && len > 0 && strncmp(list, addr, len) == 0)
			return true;
		list = end;
	}
	return false;
}

static const char *client_ip_of(struct request *req)
{
	const char *remote = req->remote_addr;
	if (!is_trusted_proxy(remote))
		return remote;
	const char *xff = request_env(req, "HTTP_X_FORWARDED_FOR");
	if (xff == NULL)
		return remote;
	char *copy = arena_strdup(req->arena, xff);
	for (;;) {
		char *comma = strrchr(copy, ',');
		char *cand = comma ? comma + 1 : copy;
		while (*cand == ' ')
			cand++;
		size_t l = strlen(cand);
		while (l > 0 && cand[l - 1] == ' ')
			cand[--l] = '\0';
		if (l == 0 || l > 45)
			return remote;
		if (!is_trusted_proxy(cand) || comma == NULL)
			return cand;
		*comma = '\0';
	}
}

static const char *new_request_id(arena_t *a)
{
	unsigned char raw[16];
	char *hex = arena_alloc(a, 33);
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(hex, 33, raw, sizeof raw);
	return hex;
}

static bool is_text(const char *s, size_t len)
{
	return memchr(s, '\0', len) == NULL && utf8_valid(s, len);
}

static void refuse_input(struct request *req, enum gala_error e, const char *param,
    const char *message)
{
	if (req->bad_input.error == GE_OK)
		req->bad_input = (struct input_refusal){ e, param, message };
}

/* Each parameter decoded as request_query() will: a value that is not
 * text is the parameter's 422, as any other malformed value. */
static void check_query(struct request *req)
{
	const char *p = req->query;
	while (*p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len, dlen;
		const char *name = url_decode(req->arena, p, nlen, &dlen);
		if (!is_text(name, dlen)) {
			refuse_input(req, GE_BAD_REQUEST, NULL,
			    "a query parameter's name is not valid UTF-8 text");
			return;
		}
		if (eq != NULL) {
			const char *value = url_decode(req->arena, eq + 1, len - nlen - 1, &dlen);
			if (!is_text(value, dlen)) {
				refuse_input(req, GE_VALIDATION, name, arena_printf(req->arena,
				    "%s must be valid UTF-8 text without NUL", name));
				return;
			}
		}
		p = end ? end + 1 : "";
	}
}

/* "User-Agent" for HTTP_USER_AGENT; NULL for a name nginx would not pass. */
static const char *header_name(arena_t *a, const char *cgi_name, size_t len)
{
	char *out = arena_alloc(a, len + 1);
	bool word_start = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)cgi_name[i];
		if (c == '_') {
			out[i] = '-';
			word_start = true;
			continue;
		}
		if (!isupper(c) && !isdigit(c))
			return NULL;
		out[i] = (char)(word_start ? c : (unsigned char)tolower(c));
		word_start = false;
	}
	out[len] = '\0';
	return out;
}

static void check_headers(struct request *req)
{
	for (char **p = req->envp; p != NULL && *p != NULL; p++) {
		const char *name = *p;
		if (strncmp(name, "HTTP_", 5) == 0)
			name += 5;
		else if (strncmp(name, "CONTENT_TYPE=", 13) != 0)
			continue;
		const char *eq = strchr(name, '=');
		if (eq == NULL || is_text(eq + 1, strlen(eq + 1)))
			continue;
		const char *shown = header_name(req->arena, name, (size_t)(eq - name));
		refuse_input(req, GE_BAD_REQUEST, NULL, shown ? arena_printf(req->arena,
		    "the %s header is not valid UTF-8", shown) : "a header is not valid UTF-8");
		return;
	}
}

static const char *env_or_empty(const struct request *req, const char *name)
{
	const char *v = request_env(req, name);
	return v ? v : "";
}

void request_init(struct request *req, arena_t *arena, char **envp,
    const char *body, size_t body_len)
{
	memset(req, 0, sizeof *req);
	req->arena = arena;
	req->envp = envp;
	req->started_us = clock_us();
	req->method = env_or_empty(req, "REQUEST_METHOD");
	req->remote_addr = env_or_empty(req, "REMOTE_ADDR");
	req->body = body;
	req->body_len = body_len;

	/* nginx's DOCUMENT_URI is already normalised (dot segments, //). */
	const char *uri = request_env(req, "DOCUMENT_URI");
	const char *raw = env_or_empty(req, "REQUEST_URI");
	const char *q = strchr(raw, '?');
	if (uri == NULL || *uri == '\0')
		uri = q ? arena_strndup(arena, raw, (size_t)(q - raw)) : raw;
	req->path = uri;
	if (!is_text(uri, strlen(uri))) {
		refuse_input(req, GE_BAD_REQUEST, NULL, "the path is not valid UTF-8");
		req->path = utf8_scrub(arena, uri, 3 * strlen(uri));
	}
	req->query = request_env(req, "QUERY_STRING");
	if (req->query == NULL)
		req->query = q ? q + 1 : "";
	check_query(req);
	check_headers(req);

	const char *client_rid = request_env(req, "HTTP_X_REQUEST_ID");
	const char *nginx_rid = request_env(req, "REQUEST_ID");
	if (request_id_valid(client_rid))
		req->request_id = client_rid;
	else if (request_id_valid(nginx_rid))
		req->request_id = nginx_rid;
	else
		req->request_id = new_request_id(arena);
	req->client_ip = client_ip_of(req);
	req->cx = (struct svc_ctx){
		.arena = arena,
		.request_id = req->request_id,
		.ip = req->client_ip,
		.user_agent = request_header(req, "User-Agent"),
		.idempotency_key = request_header(req, "Idempotency-Key"),
	};
}

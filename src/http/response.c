#include "autoconf.h"

#include "http/response.h"
#include "core/json.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static char *header_safe(arena_t *a, const char *v)
{
	size_t n = strlen(v);
	char *out = arena_alloc(a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[o++] = v[i];
	out[o] = '\0';
	return out;
}

void response_header(struct request *req, const char *name, const char *value)
{
	struct response *r = &req->resp;
	const char *v = header_safe(req->arena, value);
	for (int i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0) {
			r->headers[i].value = v;
			return;
		}
	}
	if (r->nheaders == RESPONSE_MAX_HEADERS) {
		log_error("gala.response", "no room for header %s (%d set already)", name,
		    RESPONSE_MAX_HEADERS);
		r->headers_overflowed = true;
		return;
	}
	r->headers[r->nheaders].name = arena_strdup(req->arena, name);
	r->headers[r->nheaders].value = v;
	r->nheaders++;
}

void response_json(struct request *req, int status, cJSON *body)
{
	size_t len = 0;
	char *text = body ? json_print(req->arena, body, &len) : NULL;
	json_delete(body);
	if (text == NULL) {
		/* Only a broken tree gets here; answer without a body rather
		 * than with a half-built one. */
		req->resp.status = 500;
		req->resp.content_type = NULL;
		req->resp.body = NULL;
		req->resp.body_len = 0;
		return;
	}
	req->resp.status = status;
	req->resp.content_type = "application/json";
	req->resp.body = text;
	req->resp.body_len = len;
}

void response_empty(struct request *req, int status)
{
	req->resp.status = status;
	req->resp.content_type = NULL;
	req->resp.body = NULL;
	req->resp.body_len = 0;
}

void response_body(struct request *req, int status, const char *content_type,
    const char *body, size_t len)
{
	req->resp.status = status;
	req->resp.content_type = content_type;
	req->resp.body = arena_strndup(req->arena, body, len);
	req->resp.body_len = len;
}

void http_respond_error_extra(struct request *req, enum gala_error e, const char *param,
    const char *message, cJSON *extra)
{
	const struct gala_error_info info = gala_error_info(e);
	cJSON *root = cJSON_CreateObject();
	cJSON *err = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(err, "type", info.type);
	cJSON_AddStringToObject(err, "code", info.code);
	cJSON_AddStringToObject(err, "message", message ? message : info.message);
	if (param != NULL)
		cJSON_AddStringToObject(err, "param", param);
	cJSON_AddStringToObject(err, "request_id", req->request_id);
	json_merge(err, extra);
	response_json(req, info.status, root);
	req->resp.error = e;
	/* RFC 9110: every 401 names its scheme; RFC 6750 adds why a token failed. */
	if (info.status == 401)
		response_header(req, "WWW-Authenticate", e == GE_INVALID_TOKEN ?
		    "Bearer realm=\"gala\", error=\"invalid_token\"" : "Bearer realm=\"gala\"");
}

void http_respond_error(struct request *req, enum gala_error e, const char *param,
    const char *fmt, ...)
{
	char msg[512];
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
	}
	http_respond_error_extra(req, e, param, fmt ? msg : NULL, NULL);
}

static const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

int response_serialize(const struct request *req, buf_t *out)
{
	const struct response *r = &req->resp;
	if (r->headers_overflowed)
		return -1;
	int rc = buf_printf(out, "Status: %d %s\r\n", r->status, http_reason(r->status));
	if (r->content_type != NULL)
		rc |= buf_printf(out, "Content-Type: %s\r\n", r->content_type);
	rc |= buf_printf(out, "X-Request-ID: %s\r\nCache-Control: no-store\r\n", req->request_id);
	for (int i = 0; i < r->nheaders; i++)
		rc |= buf_printf(out, "%s: %s\r\n", r->headers[i].name, r->headers[i].value);
	rc |= buf_puts(out, "\r\n");
	if (r->body_len > 0 && !(req->method != NULL && strcmp(req->method, "HEAD") == 0))
		rc |= buf_append(out, r->body, r->body_len);
	return rc == 0 ? 0 : -1;
}

/* Building the one response of a request: JSON bodies, the API's error
 * envelope and extra headers, all in the request's arena. */
#ifndef GALA_RESPONSE_H
#define GALA_RESPONSE_H

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "http/errors.h"
#include "http/request.h"

/* Adds a header; name and value are copied. CR and LF are dropped from the
 * value so that no input can split the header block. A header already set
 * with the same name is replaced. Past RESPONSE_MAX_HEADERS the header is
 * logged and the response marked, so that response_serialize refuses it
 * rather than send it without. */
void response_header(struct request *req, const char *name, const char *value);

/* Sets a JSON response; takes ownership of body. */
void response_json(struct request *req, int status, cJSON *body);

/* Sets a response of another type than JSON; body (len bytes) is copied,
 * content_type must outlive the request. */
void response_body(struct request *req, int status, const char *content_type,
    const char *body, size_t len);

/* Sets a response with no body (204). */
void response_empty(struct request *req, int status);

/* Sets the error envelope of API.md for e. param may be NULL; fmt NULL uses
 * the error's default message. */
void http_respond_error(struct request *req, enum gala_error e, const char *param,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* As http_respond_error, with extra members merged into "error" (ownership
 * of extra, a JSON object or NULL, is taken). */
void http_respond_error_extra(struct request *req, enum gala_error e, const char *param,
    const char *message, cJSON *extra);

/* The CGI-style header block and body that the worker writes to FastCGI
 * stdout. Adds X-Request-ID and Cache-Control. Returns 0, or -1 when it
 * is too big or lost a header (the worker answers 500 instead). */
int response_serialize(const struct request *req, buf_t *out);

#endif

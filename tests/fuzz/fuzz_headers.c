/* The Cookie and Authorization headers (http/request.c, http/auth.c): the
 * token a request carries, the cookies it names, and the CSRF decision.
 * The input is a byte of flags (which headers are present), then the
 * Authorization, Cookie, Origin and X-CSRF-Token values, one a line. */
#include "autoconf.h"

#include <string.h>

#include "core/jwt.h"
#include "http/auth.h"
#include "http/request.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned flags = data[0];
	data++, size--;
	arena_t *a = fuzz_arena();
	char *authorization, *cookie, *origin, *csrf;
	fuzz_split(a, &data, &size, &authorization);
	fuzz_split(a, &data, &size, &cookie);
	fuzz_split(a, &data, &size, &origin);
	fuzz_split(a, &data, &size, &csrf);

	char **envp = arena_calloc(a, 8, sizeof *envp);
	int n = 0;
	envp[n++] = (flags & 16) ? "REQUEST_METHOD=GET" : "REQUEST_METHOD=POST";
	envp[n++] = "REQUEST_URI=/api/auth/me";
	envp[n++] = "REQUEST_ID=fuzz";
	if (flags & 1)
		envp[n++] = arena_printf(a, "HTTP_AUTHORIZATION=%s", authorization);
	if (flags & 2)
		envp[n++] = arena_printf(a, "HTTP_COOKIE=%s", cookie);
	if (flags & 4)
		envp[n++] = arena_printf(a, "HTTP_ORIGIN=%s", origin);
	if (flags & 8)
		envp[n++] = arena_printf(a, "HTTP_X_CSRF_TOKEN=%s", csrf);
	struct request req;
	request_init(&req, a, envp, NULL, 0);

	bool from_cookie, malformed;
	const char *token = auth_request_token(&req, &from_cookie, &malformed);
	FUZZ_ASSERT(!(token != NULL && malformed));
	FUZZ_ASSERT(!((flags & 1) && from_cookie));
	FUZZ_ASSERT(!(malformed && !(flags & 1)));
	const char *session = request_cookie(&req, SESSION_COOKIE);
	FUZZ_ASSERT(!from_cookie || (session != NULL && strcmp(session, token) == 0));
	const char *names[] = { "a", "", "=", " ", "__Host-gala_session=" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = request_cookie(&req, names[i]);
		FUZZ_ASSERT(v == NULL || ((flags & 2) && strlen(v) < strlen(cookie)));
	}

	struct jwt_claims c;
	const char *claim_csrf = "";
	if (token != NULL && jwt_verify(token, FUZZ_SECRET_KEY, 1800000000LL, &c) == JWT_OK)
		claim_csrf = arena_strdup(a, c.csrf);
	bool allowed = csrf_allows(req.method, request_header(&req, "Origin"),
	    "https://app.example.com", request_header(&req, "X-CSRF-Token"), claim_csrf,
	    from_cookie);
	FUZZ_ASSERT(allowed || strcmp(req.method, "GET") != 0);
	return 0;
}

#include "autoconf.h"

#include "http/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Compares one path against one pattern; parameters are whole non-empty
 * segments. Fills params (pointers into the arena) when they match. */
static bool pattern_match(const char *pattern, const char *path, arena_t *a,
    const char **params, int *nparams)
{
	int n = 0;
	const char *p = pattern, *s = path;
	while (*p != '\0' && *s != '\0') {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			const char *send = strchr(s, '/');
			size_t slen = send ? (size_t)(send - s) : strlen(s);
			if (pend == NULL || slen == 0 || n == REQUEST_MAX_PATH_PARAMS)
				return false;
			if (params != NULL)
				params[n] = arena_strndup(a, s, slen);
			n++;
			p = pend + 1;
			s += slen;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*p != '\0' || *s != '\0')
		return false;
	if (nparams != NULL)
		*nparams = n;
	return true;
}

static void allow_add(char *allow, size_t len, const char *method)
{
	if (strstr(allow, method) != NULL)
		return;
	size_t used = strlen(allow);
	if (used + strlen(method) + 3 > len)
		return;
	snprintf(allow + used, len - used, "%s%s", used > 0 ? ", " : "", method);
}

enum router_result router_match(const struct route *table, size_t n,
    struct request *req, char *allow, size_t allowlen)
{
	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	bool path_known = false;
	if (allowlen > 0)
		allow[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!pattern_match(table[i].pattern, req->path, NULL, NULL, NULL))
			continue;
		path_known = true;
		if (strcmp(table[i].method, method) == 0) {
			req->route = &table[i];
			pattern_match(table[i].pattern, req->path, req->arena,
			    req->path_params, &req->npath_params);
			return ROUTER_MATCH;
		}
		allow_add(allow, allowlen, table[i].method);
		if (strcmp(table[i].method, "GET") == 0)
			allow_add(allow, allowlen, "HEAD");
	}
	return path_known ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

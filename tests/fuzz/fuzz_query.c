/* Query strings and percent-decoding (http/request.c) and the query
 * validators every list route uses (http/validate.c): a decoded value is
 * never longer than the query, and a page that validates is in range. */
#include "autoconf.h"

#include <string.h>

#include "core/buf.h"
#include "http/request.h"
#include "http/response.h"
#include "http/validate.h"

#include "fuzz.h"

static const char *const keys[] = { "limit", "offset", "city", "category", "status",
	"owner_id", "created_after", "", "a b", "%", "=", "&" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arena_t *a = fuzz_arena();
	const char *query = fuzz_string(a, data, size);
	char **envp = arena_calloc(a, 6, sizeof *envp);
	envp[0] = "REQUEST_METHOD=GET";
	envp[1] = arena_printf(a, "REQUEST_URI=/api/providers?%s", query);
	envp[2] = "DOCUMENT_URI=/api/providers";
	envp[3] = arena_printf(a, "QUERY_STRING=%s", query);
	envp[4] = "REQUEST_ID=fuzz";
	struct request req;
	request_init(&req, a, envp, NULL, 0);
	FUZZ_ASSERT(strcmp(req.query, query) == 0);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *v = request_query(&req, keys[i]);
		FUZZ_ASSERT(v == NULL || strlen(v) <= strlen(query));
	}

	struct validator page, uuid, time;
	int limit = -1, offset = -1;
	v_init(&page, &req);
	v_page(&page, 20, &limit, &offset);
	FUZZ_ASSERT(page.failed || (limit >= 1 && limit <= 100 && offset >= 0));
	v_init(&uuid, &req);
	v_query_uuid(&uuid, "owner_id");
	v_init(&time, &req);
	const char *after = v_timestamp(&time, "created_after", false, true);
	FUZZ_ASSERT(after == NULL || rfc3339_valid(after));
	if (req.resp.status != 0) {
		FUZZ_ASSERT(req.resp.status == 422 || req.resp.status == 400);
		buf_t out;
		buf_init(&out, 1 << 20);
		FUZZ_ASSERT(response_serialize(&req, &out) == 0);
		buf_free(&out);
	}
	return 0;
}

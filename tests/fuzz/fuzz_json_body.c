/* The JSON body stage (http/json.c) on any body: it is either one object
 * without duplicate keys, which prints and parses again, or a 400/422
 * JSON error that serializes. */
#include "autoconf.h"

#include <string.h>

#include "core/buf.h"
#include "http/json.h"
#include "http/request.h"
#include "http/response.h"

#include "fuzz.h"

static int parse_body(arena_t *a, struct request *req, char *body, size_t len)
{
	char **envp = arena_calloc(a, 5, sizeof *envp);
	envp[0] = "REQUEST_METHOD=POST";
	envp[1] = "REQUEST_URI=/api/events";
	envp[2] = "CONTENT_TYPE=application/json";
	envp[3] = "REQUEST_ID=fuzz";
	request_init(req, a, envp, body, len);
	return json_parse_request(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arena_t *a = fuzz_arena();
	struct request req;
	if (parse_body(a, &req, fuzz_string(a, data, size), size) != 0) {
		/* 413: past the nesting or member caps (JSON_MAX_DEPTH, JSON_MAX_MEMBERS). */
		FUZZ_ASSERT(req.resp.status == 400 || req.resp.status == 413 ||
		    req.resp.status == 422);
		buf_t out;
		buf_init(&out, 1 << 20);
		FUZZ_ASSERT(response_serialize(&req, &out) == 0);
		buf_free(&out);
		return 0;
	}
	FUZZ_ASSERT(cJSON_IsObject(req.json) && req.resp.status == 0);
	char *printed = cJSON_PrintUnformatted(req.json);
	FUZZ_ASSERT(printed != NULL);
	struct request again;
	FUZZ_ASSERT(parse_body(a, &again, printed, strlen(printed)) == 0);
	return 0;
}

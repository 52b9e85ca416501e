#include "autoconf.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/config.h"
#include "core/json.h"
#include "core/log.h"

static struct config fuzz_cfg;
static arena_t *arena;

void fuzz_setup(void)
{
	if (gala_config != NULL)
		return;
	if (sodium_init() < 0)
		fuzz_fail(__FILE__, __LINE__, "sodium_init");
	fuzz_cfg.environment = ENV_TEST;
	fuzz_cfg.secret_key = FUZZ_SECRET_KEY;
	fuzz_cfg.max_body_bytes = 65536;
	fuzz_cfg.trusted_proxies = "10.0.0.1, 10.0.0.2";
	fuzz_cfg.frontend_url = "https://app.example.com";
	gala_config = &fuzz_cfg;
	log_set_level(LOG_LEVEL_ERROR);
	arena = arena_new(64 * 1024);
	json_alloc_in(arena);
}

arena_t *fuzz_arena(void)
{
	fuzz_setup();
	arena_reset(arena);
	return arena;
}

char *fuzz_string(arena_t *a, const uint8_t *data, size_t size)
{
	char *s = arena_alloc(a, size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_split(arena_t *a, const uint8_t **data, size_t *size, char **head)
{
	const uint8_t *nl = memchr(*data, '\n', *size);
	size_t n = nl ? (size_t)(nl - *data) : *size;
	*head = fuzz_string(a, *data, n);
	*data += nl ? n + 1 : n;
	*size -= nl ? n + 1 : n;
}

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property does not hold: %s\n", file, line, what);
	abort();
}

#include "autoconf.h"

#include "core/json.h"

#include <string.h>

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		unsigned char c = *p;
		size_t n;
		unsigned int cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

size_t utf8_char_len(const char *s, size_t len)
{
	unsigned char c = (unsigned char)*s;
	size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
	    (c & 0xf8) == 0xf0 ? 4 : 0;
	if (n == 0 || len < n)
		return 0;
	return utf8_valid(s, n) ? n : 0;
}

char *utf8_scrub(arena_t *a, const char *s, size_t max)
{
	static const char replacement[] = "\xef\xbf\xbd";
	size_t len = strlen(s);
	/* Each input byte yields at most three output bytes. */
	char *out = arena_alloc(a, (len < max ? len : max) * 3 + 1);
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t o = 0;
	while (p < end) {
		size_t n = utf8_char_len((const char *)p, (size_t)(end - p));
		const char *from = n > 0 ? (const char *)p : replacement;
		size_t take = n > 0 ? n : 3;
		if (o + take > max)
			break;
		memcpy(out + o, from, take);
		o += take;
		p += n > 0 ? n : 1;
	}
	out[o] = '\0';
	return out;
}

/* Worker-owned: the arena cJSON allocates from, or NULL. */
static arena_t *json_arena;

static void *json_arena_alloc(size_t size)
{
	return arena_alloc(json_arena, size);
}

static void json_arena_free(void *p)
{
	(void)p;
}

void json_alloc_in(arena_t *a)
{
	json_arena = a;
	if (a == NULL) {
		cJSON_InitHooks(NULL);
		return;
	}
	cJSON_Hooks hooks = { .malloc_fn = json_arena_alloc, .free_fn = json_arena_free };
	cJSON_InitHooks(&hooks);
}

static void json_delete_fn(void *tree)
{
	cJSON_Delete(tree);
}

cJSON *json_defer(arena_t *a, cJSON *tree)
{
	return arena_defer(a, json_delete_fn, tree);
}

cJSON *json_list(cJSON *items, long long total, int limit, int offset)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "items", items);
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "limit", limit);
	cJSON_AddNumberToObject(o, "offset", offset);
	return o;
}

void json_add_string_or_null(cJSON *obj, const char *name, const char *value)
{
	if (value == NULL)
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddStringToObject(obj, name, value);
}

void json_merge(cJSON *into, cJSON *from)
{
	if (from == NULL)
		return;
	cJSON *f = from->child;
	while (f != NULL) {
		cJSON *next = f->next;
		cJSON_DetachItemViaPointer(from, f);
		cJSON_AddItemToObject(into, f->string, f);
		f = next;
	}
	cJSON_Delete(from);
}

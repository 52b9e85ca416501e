#include "autoconf.h"

#include "core/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

void json_delete(cJSON *tree)
{
	if (json_arena == NULL)
		cJSON_Delete(tree);
}

/* The text json_print builds, in memory from a: grown by doubling. */
struct json_out {
	arena_t *a;
	char *data;
	size_t len, cap;
};

static char *out_reserve(struct json_out *o, size_t n)
{
	if (o->cap - o->len < n) {
		size_t cap = o->cap * 2;
		while (cap - o->len < n)
			cap *= 2;
		char *data = arena_alloc(o->a, cap);
		memcpy(data, o->data, o->len);
		o->data = data;
		o->cap = cap;
	}
	return o->data + o->len;
}

static void out_put(struct json_out *o, const char *s, size_t n)
{
	memcpy(out_reserve(o, n), s, n);
	o->len += n;
}

static void out_char(struct json_out *o, char c)
{
	*out_reserve(o, 1) = c;
	o->len++;
}

/* A JSON string, escaped as cJSON escapes: the two that must be, the
 * short forms of five controls, \u00xx for the other controls; every
 * other byte (UTF-8 included) as it is. */
static void out_string(struct json_out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	out_char(o, '"');
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	for (;;) {
		const unsigned char *run = p;
		while (*p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		out_put(o, (const char *)run, (size_t)(p - run));
		if (*p == '\0')
			break;
		char esc[6] = { '\\', 0 };
		size_t n = 2;
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 0xf];
			n = 6;
		}
		out_put(o, esc, n);
		p++;
	}
	out_char(o, '"');
}

/* cJSON's rule: an integral value as an int, any other with 15
 * significant digits unless it takes 17 to read back the same. */
static void out_number(struct json_out *o, const cJSON *item)
{
	double d = item->valuedouble;
	char text[32];
	int n;
	if (isnan(d) || isinf(d)) {
		n = snprintf(text, sizeof text, "null");
	} else if (d == (double)item->valueint) {
		n = snprintf(text, sizeof text, "%d", item->valueint);
	} else {
		n = snprintf(text, sizeof text, "%1.15g", d);
		double back = strtod(text, NULL);
		if (fabs(back - d) > (fabs(back) > fabs(d) ? fabs(back) : fabs(d)) * DBL_EPSILON)
			n = snprintf(text, sizeof text, "%1.17g", d);
	}
	out_put(o, text, (size_t)n);
}

static bool out_value(struct json_out *o, const cJSON *item)
{
	switch (item->type & 0xff) {
	case cJSON_NULL: out_put(o, "null", 4); return true;
	case cJSON_False: out_put(o, "false", 5); return true;
	case cJSON_True: out_put(o, "true", 4); return true;
	case cJSON_Number: out_number(o, item); return true;
	case cJSON_String: out_string(o, item->valuestring); return true;
	case cJSON_Raw:
		if (item->valuestring == NULL)
			return false;
		out_put(o, item->valuestring, strlen(item->valuestring));
		return true;
	case cJSON_Array:
	case cJSON_Object: {
		bool object = (item->type & 0xff) == cJSON_Object;
		out_char(o, object ? '{' : '[');
		for (const cJSON *c = item->child; c != NULL; c = c->next) {
			if (c != item->child)
				out_char(o, ',');
			if (object) {
				out_string(o, c->string);
				out_char(o, ':');
			}
			if (!out_value(o, c))
				return false;
		}
		out_char(o, object ? '}' : ']');
		return true;
	}
	default:
		return false;
	}
}

/* The first buffer's size: most responses fit, and arena memory costs
 * nothing until touched. */
#define JSON_PRINT_FIRST ((size_t)32 * 1024)

char *json_print(arena_t *a, const cJSON *tree, size_t *len)
{
	struct json_out o = { a, arena_alloc(a, JSON_PRINT_FIRST), 0, JSON_PRINT_FIRST };
	if (tree == NULL || !out_value(&o, tree))
		return NULL;
	out_char(&o, '\0');
	*len = o.len - 1;
	return o.data;
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

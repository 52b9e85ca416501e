#include "autoconf.h"

#include "core/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARENA_ALIGN 16
/* Chunks of the usual size kept across resets, so that a worker's steady
 * state allocates nothing from malloc for its requests. */
#define ARENA_KEEP_CHUNKS 16

struct chunk {
	struct chunk *next;
	size_t size;
	size_t used;
	/* payload follows, aligned */
};

struct deferred {
	struct deferred *next;
	void (*fn)(void *);
	void *ptr;
};

struct arena {
	struct chunk *head;      /* current chunk; the first one is kept at reset */
	struct chunk *first;
	struct chunk *spare;     /* kept chunks of chunk_size, unused */
	int nspare;
	struct deferred *defers;
	size_t chunk_size;
	size_t used;
	size_t cap;              /* 0: none */
	bool cap_passed;         /* since the last reset: the cap rests */
	void (*on_cap)(void *ctx);
	void *on_cap_ctx;
};

static _Noreturn void arena_oom(size_t size)
{
	char msg[128];
	int n = snprintf(msg, sizeof msg,
	    "{\"level\":\"critical\",\"logger\":\"gala.arena\","
	    "\"message\":\"out of memory\",\"bytes\":%zu}\n", size);
	if (n > 0 && (size_t)n < sizeof msg && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(70);
	_exit(70);
}

static size_t chunk_header(void)
{
	return (sizeof(struct chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static struct chunk *chunk_new(size_t payload)
{
	struct chunk *c = malloc(chunk_header() + payload);
	if (c == NULL)
		arena_oom(payload);
	c->next = NULL;
	c->size = payload;
	c->used = 0;
	return c;
}

arena_t *arena_new(size_t chunk_size)
{
	arena_t *a = malloc(sizeof *a);
	if (a == NULL)
		arena_oom(sizeof *a);
	a->chunk_size = chunk_size < 1024 ? 1024 : chunk_size;
	a->first = a->head = chunk_new(a->chunk_size);
	a->spare = NULL;
	a->nspare = 0;
	a->defers = NULL;
	a->used = 0;
	a->cap = 0;
	a->cap_passed = false;
	a->on_cap = NULL;
	a->on_cap_ctx = NULL;
	return a;
}

void arena_set_cap(arena_t *a, size_t cap)
{
	a->cap = cap;
}

void arena_on_cap(arena_t *a, void (*handler)(void *ctx), void *ctx)
{
	a->on_cap = handler;
	a->on_cap_ctx = ctx;
}

/* The allocation of size bytes would pass the cap. */
static void arena_cap_passed(arena_t *a, size_t size)
{
	a->cap_passed = true;
	if (a->on_cap != NULL)
		a->on_cap(a->on_cap_ctx);
	arena_oom(size);
}

static void run_defers(arena_t *a)
{
	while (a->defers != NULL) {
		struct deferred *d = a->defers;
		a->defers = d->next;
		d->fn(d->ptr);
	}
}

void arena_reset(arena_t *a)
{
	run_defers(a);
	struct chunk *c = a->head;
	while (c != a->first) {
		struct chunk *next = c->next;
		if (c->size == a->chunk_size && a->nspare < ARENA_KEEP_CHUNKS) {
			c->used = 0;
			c->next = a->spare;
			a->spare = c;
			a->nspare++;
		} else {
			free(c);
		}
		c = next;
	}
	a->head = a->first;
	a->first->used = 0;
	a->used = 0;
	a->cap_passed = false;
}

void arena_free(arena_t *a)
{
	if (a == NULL)
		return;
	arena_reset(a);
	while (a->spare != NULL) {
		struct chunk *next = a->spare->next;
		free(a->spare);
		a->spare = next;
	}
	free(a->first);
	free(a);
}

void *arena_alloc(arena_t *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < size)
		arena_oom(size);
	if (a->cap > 0 && !a->cap_passed && (a->used > a->cap || need > a->cap - a->used))
		arena_cap_passed(a, size);
	if (a->head->size - a->head->used < need) {
		struct chunk *c;
		if (need <= a->chunk_size && a->spare != NULL) {
			c = a->spare;
			a->spare = c->next;
			a->nspare--;
		} else {
			c = chunk_new(need > a->chunk_size ? need : a->chunk_size);
		}
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)a->head + chunk_header() + a->head->used;
	a->head->used += need;
	a->used += need;
	return p;
}

void *arena_calloc(arena_t *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		arena_oom(SIZE_MAX);
	void *p = arena_alloc(a, n * size);
	memset(p, 0, n * size);
	return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
	return s == NULL ? NULL : arena_strndup(a, s, strlen(s));
}

static char *arena_vprintf(arena_t *a, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return arena_strdup(a, "");
	char *p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void *arena_defer(arena_t *a, void (*fn)(void *), void *ptr)
{
	if (ptr == NULL)
		return NULL;
	struct deferred *d = arena_alloc(a, sizeof *d);
	d->fn = fn;
	d->ptr = ptr;
	d->next = a->defers;
	a->defers = d;
	return ptr;
}

size_t arena_used(const arena_t *a)
{
	return a->used;
}

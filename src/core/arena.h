/* Per-request memory: every allocation of one request comes from its arena
 * and is released in one go by arena_reset() when the response is written.
 * Objects owned by libraries (cJSON trees, PGresults, malloc'd strings) are
 * handed to the arena with arena_defer() so they die with the request too.
 *
 * Allocation never returns NULL: running out of memory in a worker is not
 * recoverable, so the worker logs and exits and the master replaces it.
 * A cap bounds what one request may take: passing it is the request's
 * failure, not the worker's (arena_set_cap). */
#ifndef GALA_ARENA_H
#define GALA_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena_t;

arena_t *arena_new(size_t chunk_size);
void arena_free(arena_t *a);

/* Runs the deferred cleanups (last registered first), then keeps the first
 * chunk for the next request and frees the others. */
void arena_reset(arena_t *a);

void *arena_alloc(arena_t *a, size_t size);
void *arena_calloc(arena_t *a, size_t n, size_t size);
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_printf(arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers fn(ptr) to run at the next reset; ptr may be NULL (then nothing
 * is registered). Returns ptr for chaining. */
void *arena_defer(arena_t *a, void (*fn)(void *), void *ptr);

/* At most cap bytes handed out between two resets (0, the default: no
 * cap). The allocation that would pass it calls the handler of
 * arena_on_cap, which must not return: it leaves the work under way (a
 * longjmp), so arena_alloc still never returns NULL. Without a handler the
 * process exits as when memory runs out. The cap then rests until the
 * next reset, so that whoever caught it can build a small answer. */
void arena_set_cap(arena_t *a, size_t cap);
void arena_on_cap(arena_t *a, void (*handler)(void *ctx), void *ctx);

/* Bytes handed out since the last reset (for tests and diagnostics). */
size_t arena_used(const arena_t *a);

#endif

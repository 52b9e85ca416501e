/* A growable byte buffer with a hard maximum (curl's dynbuf idea): request
 * bodies, outgoing payloads and responses from Stripe or SMTP can never grow
 * past what the caller decided. The data is always NUL-terminated. */
#ifndef GALA_BUF_H
#define GALA_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
} buf_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
void buf_clear(buf_t *b);

/* Return 0, or -1 when the result would exceed max or memory runs out; on
 * failure the buffer keeps its previous content. */
int buf_append(buf_t *b, const void *data, size_t len);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

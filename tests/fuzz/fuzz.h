/* What the fuzz targets share. Each target is one program defining the
 * libFuzzer entry point; it is built two ways (Makefile.am): with clang and
 * -fsanitize=fuzzer by make fuzz (scripts/fuzz runs it), and in make check
 * with replay.c as its main, which runs every input of its seed corpus
 * (tests/fuzz/corpus/NAME) once, so a fixed crash stays fixed under gcc and
 * the sanitizer build too. */
#ifndef GALA_FUZZ_H
#define GALA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The configuration every target runs with (gala_config), set on the
 * first call: test environment, a fixed SECRET_KEY (FUZZ_SECRET_KEY),
 * MAX_BODY_BYTES 65536; logging only errors. */
#define FUZZ_SECRET_KEY "fuzz-secret-key-0123456789abcdefghijklmnop"
void fuzz_setup(void);

/* The arena of one input: cJSON allocates from it too. Reset by the next
 * call, so a target never frees what it took from it. */
arena_t *fuzz_arena(void);

/* A NUL-terminated copy of data[0..size) in a. */
char *fuzz_string(arena_t *a, const uint8_t *data, size_t size);

/* Splits data at its first '\n': *head is the part before it and the rest
 * follows; without one, head is all of data and the rest is empty. */
void fuzz_split(arena_t *a, const uint8_t **data, size_t *size, char **head);

/* Stops the run as a crash (abort) when a property of the code under test
 * does not hold; libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond) \
	((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

#endif

/* Structured logging: one JSON object per line on stderr (journald keeps it),
 * with timestamp, level, logger, message, the current request id when there
 * is one, and any context fields. Callers never pass a password, token, OTP,
 * secret or card detail.
 *
 * Logging never holds a request: when stderr is a pipe or a socket that
 * does not take a line at once (its reader stalled), or a write fails (a
 * full disk), the line is dropped and counted, and the count is logged as
 * a line of its own ("log lines dropped", logger gala.log) once lines fit
 * again. */
#ifndef GALA_LOG_H
#define GALA_LOG_H

#include <stdbool.h>

#include <cjson/cJSON.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Returns 0 and sets *out, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);

/* The request id added to every line until cleared with NULL. */
void log_set_request_id(const char *request_id);

/* Writes one line; takes ownership of fields (a JSON object or NULL). */
void log_emit(enum log_level level, const char *logger, const char *message,
    cJSON *fields);

/* A line built field by field without a JSON tree, for the access line that
 * every request writes: log_line_begin, the fields, log_line_end. A line
 * that would not fit LOG_LINE_MAX is cut at a field and still valid JSON. */
#define LOG_LINE_MAX 4096
struct log_line {
	char buf[LOG_LINE_MAX];
	size_t len;
	enum log_level level;
};

void log_line_begin(struct log_line *l, enum log_level level, const char *logger,
    const char *message);
/* A string member, or null when value is NULL. */
void log_line_str(struct log_line *l, const char *key, const char *value);
void log_line_int(struct log_line *l, const char *key, long long value);
/* value / 100 with two decimals (durations in hundredths of a millisecond). */
void log_line_centi(struct log_line *l, const char *key, long long hundredths);
void log_line_end(struct log_line *l);

/* Batching, for a process that serves many requests between sleeps (a
 * worker): lines below warning level are held, whole, up to PIPE_BUF
 * bytes, and written together when the batch is full, at log_flush(), or
 * before a line at warning level or above. One write instead of one a
 * request, and one wakeup of journald. The holder flushes before it
 * sleeps (log_pending() says whether it must) and before it exits; a
 * process killed outright loses what it held. */
void log_batch(bool on);
bool log_pending(void);
void log_flush(void);

void log_write(enum log_level level, const char *logger, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(logger, ...) log_write(LOG_LEVEL_DEBUG, logger, __VA_ARGS__)
#define log_info(logger, ...) log_write(LOG_LEVEL_INFO, logger, __VA_ARGS__)
#define log_warn(logger, ...) log_write(LOG_LEVEL_WARN, logger, __VA_ARGS__)
#define log_error(logger, ...) log_write(LOG_LEVEL_ERROR, logger, __VA_ARGS__)

#endif

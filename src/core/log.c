#include "autoconf.h"

#include "core/log.h"
#include "core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* How long a line already half written may wait for the rest to fit. */
#define LOG_FINISH_LINE_MS 100

static enum log_level log_min_level = LOG_LEVEL_INFO;
static char log_request_id[80];

/* Where lines go, found out at the first line (children of a fork keep
 * it). A pipe or a socket whose reader stalls must cost a request nothing:
 * lines are then dropped and counted, never waited for. */
enum log_sink { SINK_UNKNOWN, SINK_PLAIN, SINK_PIPE, SINK_SOCKET };
static enum log_sink log_sink;
static int log_fd = STDERR_FILENO;
static unsigned long long log_dropped;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_ERROR] = "error",
};

int log_level_parse(const char *name, enum log_level *out)
{
	static const struct { const char *name; enum log_level level; } names[] = {
		{ "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },
		{ "warning", LOG_LEVEL_WARN }, { "warn", LOG_LEVEL_WARN },
		{ "error", LOG_LEVEL_ERROR },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

void log_set_level(enum log_level level)
{
	log_min_level = level;
}

static int log_enabled(enum log_level level)
{
	return level >= log_min_level;
}

void log_set_request_id(const char *request_id)
{
	if (request_id == NULL)
		log_request_id[0] = '\0';
	else
		snprintf(log_request_id, sizeof log_request_id, "%s", request_id);
}

static void log_timestamp(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* Copies s to out (room for 3 bytes per byte of s) with each byte that
 * starts no UTF-8 character replaced by U+FFFD; returns the length. */
static size_t copy_as_utf8(char *out, const char *s, size_t len)
{
	static const char replacement[] = { '\xef', '\xbf', '\xbd' };
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char_len(s + i, len - i);
		if (n == 0) {
			memcpy(out + o, replacement, sizeof replacement);
			o += sizeof replacement;
			i++;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	return o;
}

static void log_sink_open(void)
{
	struct stat st;
	log_sink = SINK_PLAIN;
	if (fstat(STDERR_FILENO, &st) != 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		log_sink = SINK_SOCKET;
	} else if (S_ISFIFO(st.st_mode)) {
		/* A file description of our own: O_NONBLOCK set on the inherited
		 * one would change it for every process sharing it. */
		int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			log_fd = fd;
			log_sink = SINK_PIPE;
		}
	}
}

static ssize_t log_sink_write(const char *p, size_t n)
{
	if (log_sink == SINK_SOCKET)
		return send(log_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(log_fd, p, n);
}

/* Writes all of p, or as much as the sink takes without waiting (a line
 * begun is given LOG_FINISH_LINE_MS to end). Returns the bytes written. */
static size_t log_sink_put(const char *p, size_t n)
{
	size_t off = 0;
	long long deadline = 0;
	while (off < n) {
		ssize_t w = log_sink_write(p + off, n - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 || off == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		long long now = clock_ms();
		if (deadline == 0)
			deadline = now + LOG_FINISH_LINE_MS;
		struct pollfd pfd = { .fd = log_fd, .events = POLLOUT };
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
	}
	return off;
}

/* Lines held for one write while batching (log_batch): at most PIPE_BUF
 * bytes, so that the write stays whole on a pipe and lines of concurrent
 * workers never mix. */
static char log_batch_buf[PIPE_BUF];
static size_t log_batch_len;
static bool log_batching;

/* The count of lines lost, as a line of its own, once lines fit again. */
static void log_report_dropped(void)
{
	char ts[40], note[256];
	log_timestamp(ts, sizeof ts);
	int n = snprintf(note, sizeof note, "{\"timestamp\":\"%s\",\"level\":\"warning\","
	    "\"logger\":\"gala.log\",\"message\":\"log lines dropped: the log target "
	    "was full\",\"dropped\":%llu}\n", ts, log_dropped);
	if (n > 0 && (size_t)n < sizeof note && log_sink_put(note, (size_t)n) == (size_t)n)
		log_dropped = 0;
}

/* Writes whole lines (each ending in a newline), counting those that did
 * not fit as dropped. */
static void log_put_lines(const char *p, size_t n)
{
	size_t w = log_sink_put(p, n);
	if (w < n) {
		for (size_t i = w; i < n; i++)
			log_dropped += p[i] == '\n';
		return;
	}
	if (log_dropped > 0)
		log_report_dropped();
}

void log_flush(void)
{
	size_t n = log_batch_len;
	log_batch_len = 0;
	if (n > 0)
		log_put_lines(log_batch_buf, n);
}

void log_batch(bool on)
{
	log_flush();
	log_batching = on;
}

bool log_pending(void)
{
	return log_batch_len > 0;
}

/* One write per line (or per batch of whole lines), so that lines of
 * concurrent workers do not mix. A line is JSON, so UTF-8, whatever bytes
 * a client sent. A line at warning level or above is written at once,
 * after the lines held before it. */
static void log_write_line(const char *line, size_t len, enum log_level level)
{
	if (log_sink == SINK_UNKNOWN)
		log_sink_open();
	bool text = utf8_valid(line, len);
	size_t room = (text ? len : 3 * len) + 1;
	if (log_batching && level < LOG_LEVEL_WARN && room <= sizeof log_batch_buf) {
		if (log_batch_len + room > sizeof log_batch_buf)
			log_flush();
		char *out = log_batch_buf + log_batch_len;
		if (text)
			memcpy(out, line, len);
		else
			len = copy_as_utf8(out, line, len);
		out[len] = '\n';
		log_batch_len += len + 1;
		return;
	}
	log_flush();
	char stackbuf[4096];
	char *out = room <= sizeof stackbuf ? stackbuf : malloc(room);
	if (out == NULL) {
		log_dropped++;
		return;
	}
	if (text)
		memcpy(out, line, len);
	else
		len = copy_as_utf8(out, line, len);
	out[len] = '\n';
	log_put_lines(out, len + 1);
	if (out != stackbuf)
		free(out);
}

void log_emit(enum log_level level, const char *logger, const char *message,
    cJSON *fields)
{
	if (!log_enabled(level)) {
		cJSON_Delete(fields);
		return;
	}
	char ts[40];
	log_timestamp(ts, sizeof ts);
	cJSON *o = cJSON_CreateObject();
	if (o == NULL) {
		cJSON_Delete(fields);
		return;
	}
	cJSON_AddStringToObject(o, "timestamp", ts);
	cJSON_AddStringToObject(o, "level", log_level_names[level]);
	cJSON_AddStringToObject(o, "logger", logger);
	cJSON_AddStringToObject(o, "message", message);
	if (log_request_id[0] != '\0' &&
	    (fields == NULL || !cJSON_HasObjectItem(fields, "request_id")))
		cJSON_AddStringToObject(o, "request_id", log_request_id);
	json_merge(o, fields);
	char *line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (line != NULL) {
		log_write_line(line, strlen(line), level);
		cJSON_free(line);
	}
}

/* Appends text if the whole of it fits (keeping room for the closing
 * brace); a field that does not fit is left out entirely. */
static bool line_fits(const struct log_line *l, size_t n)
{
	return l->len + n + 2 <= sizeof l->buf;
}

static void line_escaped(struct log_line *l, const char *s)
{
	size_t start = l->len;
	char tmp[8];
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		const char *out = tmp;
		size_t n = 1;
		switch (*p) {
		case '"': out = "\\\""; n = 2; break;
		case '\\': out = "\\\\"; n = 2; break;
		case '\n': out = "\\n"; n = 2; break;
		case '\r': out = "\\r"; n = 2; break;
		case '\t': out = "\\t"; n = 2; break;
		default:
			if (*p < 0x20)
				n = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
			else
				tmp[0] = (char)*p;
		}
		if (!line_fits(l, n + 1)) {
			l->len = start;
			return;
		}
		memcpy(l->buf + l->len, out, n);
		l->len += n;
	}
}

static void line_key(struct log_line *l, const char *key)
{
	char sep = l->len > 0 ? ',' : '{';
	l->buf[l->len++] = sep;
	l->buf[l->len++] = '"';
	line_escaped(l, key);
	l->buf[l->len++] = '"';
	l->buf[l->len++] = ':';
}

void log_line_str(struct log_line *l, const char *key, const char *value)
{
	size_t mark = l->len;
	if (!line_fits(l, strlen(key) + 8))
		return;
	line_key(l, key);
	if (value == NULL) {
		memcpy(l->buf + l->len, "null", 4);
		l->len += 4;
		return;
	}
	l->buf[l->len++] = '"';
	size_t before = l->len;
	line_escaped(l, value);
	if ((l->len == before && value[0] != '\0') || !line_fits(l, 1)) {
		l->len = mark;
		return;
	}
	l->buf[l->len++] = '"';
}

static void line_raw(struct log_line *l, const char *key, const char *text)
{
	if (!line_fits(l, strlen(key) + strlen(text) + 6))
		return;
	line_key(l, key);
	memcpy(l->buf + l->len, text, strlen(text));
	l->len += strlen(text);
}

void log_line_int(struct log_line *l, const char *key, long long value)
{
	char num[24];
	snprintf(num, sizeof num, "%lld", value);
	line_raw(l, key, num);
}

void log_line_centi(struct log_line *l, const char *key, long long hundredths)
{
	char num[32];
	snprintf(num, sizeof num, "%lld.%02lld", hundredths / 100, hundredths % 100);
	line_raw(l, key, num);
}

void log_line_begin(struct log_line *l, enum log_level level, const char *logger,
    const char *message)
{
	char ts[40];
	l->len = 0;
	l->level = level;
	if (!log_enabled(level))
		return;
	log_timestamp(ts, sizeof ts);
	log_line_str(l, "timestamp", ts);
	log_line_str(l, "level", log_level_names[level]);
	log_line_str(l, "logger", logger);
	log_line_str(l, "message", message);
}

void log_line_end(struct log_line *l)
{
	if (!log_enabled(l->level) || l->len == 0)
		return;
	l->buf[l->len++] = '}';
	log_write_line(l->buf, l->len, l->level);
}

void log_write(enum log_level level, const char *logger, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_emit(level, logger, msg, NULL);
}

#include "autoconf.h"

#include "clients/mailer.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/config.h"

#define MAIL_MAX_BYTES ((size_t)256 * 1024)

int mailer_address(const char *from, char *out, size_t outlen)
{
	const char *lt = strchr(from, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	const char *s = lt && gt ? lt + 1 : from;
	size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(from);
	while (n > 0 && *s == ' ')
		s++, n--;
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (n == 0 || n >= outlen || memchr(s, '@', n) == NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static bool is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RFC 2047 encoded-word for a non-ASCII subject. */
static int put_subject(buf_t *out, const char *subject)
{
	if (is_ascii(subject))
		return buf_printf(out, "Subject: %s\r\n", subject);
	size_t n = strlen(subject);
	char enc[1024];
	if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) > sizeof enc)
		return -1;
	sodium_bin2base64(enc, sizeof enc, (const unsigned char *)subject, n,
	    sodium_base64_VARIANT_ORIGINAL);
	return buf_printf(out, "Subject: =?UTF-8?B?%s?=\r\n", enc);
}

int mailer_format(buf_t *out, const char *from, const struct mail *m)
{
	char date[64], addr[256];
	time_t t = (time_t)m->date;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (mailer_address(from, addr, sizeof addr) != 0)
		return -1;
	int rc = buf_printf(out, "Date: %s\r\nFrom: %s\r\nTo: <%s>\r\n", date, from, m->to);
	rc |= put_subject(out, m->subject);
	rc |= buf_printf(out, "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
	    m->id, strchr(addr, '@') + 1);
	/* SMTP wants CRLF line ends and a leading dot doubled (libcurl does
	 * the dot-stuffing; we do the line ends). */
	for (const char *p = m->text; *p != '\0'; p++) {
		if (*p == '\n' && (p == m->text || p[-1] != '\r'))
			rc |= buf_puts(out, "\r\n");
		else
			rc |= buf_append(out, p, 1);
	}
	rc |= buf_puts(out, "\r\n");
	return rc == 0 ? 0 : -1;
}

struct upload {
	const char *data;
	size_t len;
	size_t off;
};

static size_t upload_read(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct upload *u = ud;
	size_t room = size * nmemb, left = u->len - u->off;
	size_t n = left < room ? left : room;
	memcpy(ptr, u->data + u->off, n);
	u->off += n;
	return n;
}

/* A failed transfer: a 5xx answer refuses the message for good (RFC 5321),
 * but for a refused login, which is this side's configuration and may be
 * fixed within the retry window. Anything else may pass on a later try. */
static enum mailer_result classify(CURL *c, CURLcode rc, char *error, size_t errlen)
{
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code > 0)
		snprintf(error, errlen, "%s (SMTP %ld)", curl_easy_strerror(rc), code);
	else
		snprintf(error, errlen, "%s", curl_easy_strerror(rc));
	return code >= 500 && code < 600 && rc != CURLE_LOGIN_DENIED ? MAILER_REFUSED : MAILER_RETRY;
}

enum mailer_result mailer_send(const struct mail *m, char *error, size_t errlen)
{
	const struct config *cfg = gala_config;
	if (cfg->smtp_url == NULL) {
		snprintf(error, errlen, "SMTP_URL is not set");
		return MAILER_RETRY;
	}
	char from_addr[256];
	buf_t msg;
	buf_init(&msg, MAIL_MAX_BYTES);
	if (mailer_address(cfg->mail_from, from_addr, sizeof from_addr) != 0 ||
	    mailer_format(&msg, cfg->mail_from, m) != 0) {
		snprintf(error, errlen, "cannot build the mail (check MAIL_FROM)");
		buf_free(&msg);
		return MAILER_REFUSED;
	}
	char rcpt_addr[300], from_br[300];
	snprintf(rcpt_addr, sizeof rcpt_addr, "<%s>", m->to);
	snprintf(from_br, sizeof from_br, "<%s>", from_addr);
	CURL *c = curl_easy_init();
	struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_addr);
	if (c == NULL || rcpt == NULL) {
		snprintf(error, errlen, "out of memory");
		curl_slist_free_all(rcpt);
		curl_easy_cleanup(c);
		buf_free(&msg);
		return MAILER_RETRY;
	}
	struct upload up = { msg.data, msg.len, 0 };
	curl_easy_setopt(c, CURLOPT_URL, cfg->smtp_url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from_br);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL,
	    (long)(config_smtp_tls_required(cfg) ? CURLUSESSL_ALL : CURLUSESSL_TRY));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)MAILER_TIMEOUT_SECONDS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (cfg->smtp_username != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, cfg->smtp_username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->smtp_password ? cfg->smtp_password : "");
	}
	CURLcode rc = curl_easy_perform(c);
	enum mailer_result r = rc == CURLE_OK ? MAILER_SENT : classify(c, rc, error, errlen);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	buf_free(&msg);
	return r;
}

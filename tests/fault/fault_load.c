#include "autoconf.h"

#include "fault_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "testlib.h"

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct fclient *c = ud;
	size_t n = size * nmemb;
	char *p = realloc(c->body, c->body_len + n + 1);
	if (p == NULL)
		return 0;
	memcpy(p + c->body_len, ptr, n);
	c->body_len += n;
	p[c->body_len] = '\0';
	c->body = p;
	return n;
}

static void header_value(char *dst, size_t len, const char *line, size_t n, const char *name)
{
	size_t nl = strlen(name);
	if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	size_t vl = n - nl - 1;
	while (vl > 0 && *v == ' ')
		v++, vl--;
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
		vl--;
	snprintf(dst, len, "%.*s", (int)vl, v);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct fclient *c = ud;
	size_t n = size * nmemb;
	header_value(c->request_id, sizeof c->request_id, ptr, n, "X-Request-ID");
	header_value(c->content_type, sizeof c->content_type, ptr, n, "Content-Type");
	return n;
}

void fclient_init(struct fclient *c)
{
	memset(c, 0, sizeof *c);
	c->curl = curl_easy_init();
}

void fclient_free(struct fclient *c)
{
	curl_easy_cleanup(c->curl);
	free(c->body);
	memset(c, 0, sizeof *c);
}

long fclient_do(struct fclient *c, const char *method, const char *path, const char *token,
    const char *idempotency_key, const char *body)
{
	char url[1024], auth[1200], idem[320];
	snprintf(url, sizeof url, "%s%s", test_env("TEST_BASE_URL"), path);
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	if (body != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (idempotency_key != NULL) {
		snprintf(idem, sizeof idem, "Idempotency-Key: %s", idempotency_key);
		h = curl_slist_append(h, idem);
	}
	c->body_len = 0;
	c->request_id[0] = c->content_type[0] = '\0';
	free(c->body);
	c->body = NULL;
	CURL *e = c->curl;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPGET, body == NULL ? 1L : 0L);
	if (body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_CAINFO, test_env("TEST_CA_FILE"));
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	long status = 0;
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	if (c->body == NULL)
		c->body = strdup("");
	return status;
}

const char *fclient_error_problem(const struct fclient *c, long status, long want_status,
    const char *want_code)
{
	static _Thread_local char why[256];
	cJSON *j = cJSON_Parse(c->body);
	const cJSON *e = cJSON_GetObjectItem(j, "error");
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
	const char *rid = cJSON_GetStringValue(cJSON_GetObjectItem(e, "request_id"));
	why[0] = '\0';
	if (status != want_status)
		snprintf(why, sizeof why, "status %ld, want %ld", status, want_status);
	else if (strncmp(c->content_type, "application/json", 16) != 0)
		snprintf(why, sizeof why, "Content-Type %s", c->content_type);
	else if (!cJSON_IsObject(e) || cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")) == NULL ||
	    cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")) == NULL)
		snprintf(why, sizeof why, "no error envelope");
	else if (code == NULL || strcmp(code, want_code) != 0)
		snprintf(why, sizeof why, "code %s, want %s", code ? code : "(none)", want_code);
	else if (rid == NULL || strcmp(rid, c->request_id) != 0)
		snprintf(why, sizeof why, "request_id %s, X-Request-ID %s", rid ? rid : "(none)",
		    c->request_id);
	cJSON_Delete(j);
	return why[0] != '\0' ? why : NULL;
}

/* ------------------------------------------------------------------ load */

struct worker_arg {
	struct load *l;
	int index;
};

static void tally(struct load *l, int phase, const char *what, const struct fclient *c, long st)
{
	struct load_tally *t = &l->tally[phase];
	pthread_mutex_lock(&l->mu);
	t->requests++;
	if (st >= 200 && st < 300)
		t->ok++;
	else if (fclient_error_problem(c, st, 503, "database_unavailable") == NULL)
		t->unavailable++;
	else {
		if (t->other++ == 0)
			snprintf(t->sample, sizeof t->sample, "%s: %ld %.500s", what, st, c->body);
	}
	pthread_mutex_unlock(&l->mu);
}

static void remember_create(struct load *l, const char *title, const char *body, bool keyed,
    long status)
{
	pthread_mutex_lock(&l->mu);
	if (l->ncreates < LOAD_MAX_CREATES) {
		struct load_create *c = &l->creates[l->ncreates++];
		snprintf(c->title, sizeof c->title, "%s", title);
		snprintf(c->body, sizeof c->body, "%s", body);
		c->keyed = keyed;
		c->status = status;
	}
	pthread_mutex_unlock(&l->mu);
}

static void *load_thread(void *p)
{
	struct worker_arg *arg = p;
	struct load *l = arg->l;
	struct fclient c;
	fclient_init(&c);
	char path[128], starts[32], title[48], body[128];
	snprintf(path, sizeof path, "/api/events/%s", l->event_id);
	time_t t = time(NULL) + 30 * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(starts, sizeof starts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (unsigned long i = 0; !atomic_load(&l->stop); i++) {
		int phase = atomic_load(&l->phase);
		long st;
		switch (i % 4) {
		case 0:
			st = fclient_do(&c, "GET", "/api/health", NULL, NULL, NULL);
			tally(l, phase, "GET /api/health", &c, st);
			break;
		case 1:
			st = fclient_do(&c, "GET", path, l->token, NULL, NULL);
			tally(l, phase, "GET /api/events/{id}", &c, st);
			break;
		default: {
			bool keyed = i % 4 == 3;
			snprintf(title, sizeof title, "fault-%d-%d-%lu", (int)getpid(), arg->index, i);
			snprintf(body, sizeof body, "{\"title\":\"%s\",\"starts_at\":\"%s\"}", title,
			    starts);
			st = fclient_do(&c, "POST", "/api/events", l->token, keyed ? title : NULL, body);
			tally(l, phase, keyed ? "POST /api/events (Idempotency-Key)" : "POST /api/events",
			    &c, st);
			remember_create(l, title, body, keyed, st);
		}
		}
	}
	fclient_free(&c);
	free(arg);
	return NULL;
}

void load_start(struct load *l, const char *token, const char *event_id, int nthreads)
{
	memset(l, 0, sizeof *l);
	l->token = token;
	l->event_id = event_id;
	l->nthreads = nthreads < LOAD_MAX_THREADS ? nthreads : LOAD_MAX_THREADS;
	pthread_mutex_init(&l->mu, NULL);
	atomic_init(&l->phase, PHASE_BEFORE);
	atomic_init(&l->stop, false);
	for (int i = 0; i < l->nthreads; i++) {
		struct worker_arg *arg = malloc(sizeof *arg);
		*arg = (struct worker_arg){ l, i };
		pthread_create(&l->threads[i], NULL, load_thread, arg);
	}
}

void load_set_phase(struct load *l, enum load_phase p)
{
	atomic_store(&l->phase, (int)p);
}

void load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	for (int i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
}

void load_report(const struct load *l, const char *label)
{
	static const char *const names[] = { "before", "fault", "after" };
	for (int p = 0; p < PHASE__COUNT; p++) {
		const struct load_tally *t = &l->tally[p];
		printf("%s, %s: %ld requests, %ld 2xx, %ld 503 database_unavailable, %ld other%s%s\n",
		    label, names[p], t->requests, t->ok, t->unavailable, t->other,
		    t->other ? "; first: " : "", t->other ? t->sample : "");
	}
	fflush(stdout);
}

/* ------------------------------------------------------------- the pool */

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

char *fault_worker_pids(void)
{
	char *raw = stack_ctl_output("gala-worker-pids");
	int pids[64], n = 0;
	for (char *s = strtok(raw, " "); s != NULL && n < 64; s = strtok(NULL, " "))
		pids[n++] = atoi(s);
	free(raw);
	qsort(pids, (size_t)n, sizeof pids[0], cmp_int);
	char *out = calloc(1, 64 * 12);
	for (int i = 0; i < n; i++)
		sprintf(out + strlen(out), "%s%d", i ? " " : "", pids[i]);
	return out;
}

int fault_master_pid(void)
{
	char *s = stack_ctl_output("gala-master-pid");
	int pid = s ? atoi(s) : 0;
	free(s);
	return pid;
}

long fault_log_size(void)
{
	struct stat st;
	return stat(test_env("TEST_GALA_LOG"), &st) == 0 ? (long)st.st_size : 0;
}

int fault_log_count(long from, const char *needle)
{
	FILE *f = fopen(test_env("TEST_GALA_LOG"), "r");
	if (f == NULL)
		return 0;
	fseek(f, from, SEEK_SET);
	char line[8192];
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

bool fault_wait_health(long want, int secs)
{
	struct fclient c;
	fclient_init(&c);
	bool ok = false;
	for (int i = 0; i < secs * 10 && !ok; i++) {
		ok = fclient_do(&c, "GET", "/api/health", NULL, NULL, NULL) == want;
		if (!ok)
			usleep(100000);
	}
	fclient_free(&c);
	return ok;
}

#include "autoconf.h"

#include "server/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "core/log.h"
#include "core/metrics.h"
#include "core/password.h"
#include "server/listen.h"
#include "server/notify.h"
#include "server/scoreboard.h"
#include "server/worker.h"
#include "core/clock.h"

#define LOGGER "gala.master"
#define TICK_MS 200
#define BACKOFF_MAX_MS 10000
#define CRASH_WINDOW_MS 5000
#define KILL_GRACE_MS 2000
#define STATUS_EVERY_MS 5000

struct master {
	struct config cfg;
	struct scoreboard *sb;
	int listen_fd;
	int from_systemd;
	unsigned generation;
	int shutting_down;
	int ready_sent;                 /* systemd was told READY=1 for this generation */
	long long status_sent_ms;
	long long drain_deadline_ms;
	const struct route *table;
	size_t nroutes;
	sigset_t master_mask;
};

static int slots_in_use(const struct master *m)
{
	int n = 0;
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		if (m->sb->slots[i].pid != 0)
			n++;
	return n;
}

static void log_worker(enum log_level lvl, const char *message, const struct worker_slot *s,
    const char *key, int value)
{
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "pid", s->pid);
	if (key != NULL)
		cJSON_AddNumberToObject(f, key, value);
	if (s->busy_since_ms != 0)
		cJSON_AddStringToObject(f, "route", s->route);
	log_emit(lvl, LOGGER, message, f);
}

static int spawn_worker(struct master *m, int idx)
{
	struct worker_slot *s = &m->sb->slots[idx];
	s->ready = 0;
	s->draining = 0;
	s->busy_since_ms = 0;
	s->asleep_since_ms = 0;
	s->conns = 0;
	s->route[0] = '\0';
	s->requests = 0;
	s->term_sent = 0;
	s->stop_reason = -1;
	s->generation = m->generation;
	s->spawned_ms = clock_ms();
	if (m->sb->high <= idx)
		m->sb->high = idx + 1;
	pid_t pid = fork();
	if (pid < 0) {
		log_error(LOGGER, "fork failed: %s", strerror(errno));
		s->respawn_after_ms = clock_ms() + 1000;
		return -1;
	}
	if (pid == 0) {
		notify_free();
		int rc = worker_run(m->listen_fd, m->sb, s, m->table, m->nroutes);
#ifdef __SANITIZE_ADDRESS__
		/* _exit skips LeakSanitizer's exit-time check: run it here, so
		 * that the sanitizer build of the test suite sees workers' leaks. */
		__lsan_do_leak_check();
#endif
		_exit(rc);
	}
	s->pid = pid;
	return 0;
}

/* A worker that left while the pool goes on is replaced: say why. Workers
 * stopped by a shutdown or a smaller WORKERS are not restarts. */
static void count_restart(const struct master *m, const struct worker_slot *s, int clean)
{
	if (m->shutting_down)
		return;
	if (s->stop_reason >= 0)
		metrics_add(METRIC_WORKER_RESTARTS, (unsigned)s->stop_reason);
	else if (!s->term_sent)
		metrics_add(METRIC_WORKER_RESTARTS, clean ? RESTART_RECYCLE : RESTART_CRASH);
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
			struct worker_slot *s = &m->sb->slots[i];
			if (s->pid != pid)
				continue;
			long long now = clock_ms();
			int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			if (WIFSIGNALED(status))
				log_worker(LOG_LEVEL_ERROR, "worker killed by signal", s, "signal",
				    WTERMSIG(status));
			else if (!clean)
				log_worker(LOG_LEVEL_ERROR, "worker exited with an error", s, "exit_code",
				    WEXITSTATUS(status));
			else
				log_worker(LOG_LEVEL_INFO, "worker exited", s, "exit_code", 0);
			count_restart(m, s, clean);
			/* Crash loops back off exponentially; a clean exit (recycle,
			 * drain) or a crash after a long healthy run respawns at once. */
			if (!clean && !s->term_sent && now - s->spawned_ms < CRASH_WINDOW_MS) {
				s->crashes = s->crashes < 16 ? s->crashes + 1 : 16;
				long long delay = 100LL << (s->crashes - 1);
				s->respawn_after_ms = now + (delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay);
			} else {
				s->crashes = 0;
				s->respawn_after_ms = 0;
			}
			s->pid = 0;
			s->ready = 0;
			s->busy_since_ms = 0;
			break;
		}
	}
}

static void kill_stuck(struct master *m)
{
	long long now = clock_ms();
	/* nginx's fastcgi_read_timeout (set to the same value) answers 504
	 * first; the grace keeps the kill from turning that into a 502. */
	long long limit = (long long)m->cfg.request_timeout_seconds * 1000 + KILL_GRACE_MS;
	for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
		struct worker_slot *s = &m->sb->slots[i];
		long long since = s->busy_since_ms;
		if (s->pid == 0 || since == 0 || now - since <= limit)
			continue;
		log_worker(LOG_LEVEL_ERROR, "request exceeded REQUEST_TIMEOUT_SECONDS; killing worker",
		    s, "busy_ms", (int)(now - since));
		kill(s->pid, SIGKILL);
		s->term_sent = 1;
		s->stop_reason = RESTART_TIMEOUT;
	}
}

/* What the pool is doing, as GET /metrics and systemd are told. */
struct pool_view {
	unsigned state[WORKER_STATES];   /* serving workers: idle, busy, leaving */
	int current_ready;               /* ready workers of the current generation */
	int old;                         /* workers of an earlier generation still there */
	unsigned long long requests;     /* served by the workers alive now */
};

static struct pool_view pool_view(const struct master *m)
{
	struct pool_view v = { 0 };
	for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct worker_slot *s = &m->sb->slots[i];
		if (s->pid == 0)
			continue;
		if (s->generation != m->generation)
			v.old++;
		if (!s->ready)
			continue;
		v.requests += s->requests;
		if (s->draining || s->term_sent)
			v.state[WORKERS_DRAINING]++;
		else
			v.state[s->busy_since_ms != 0 ? WORKERS_BUSY : WORKERS_IDLE]++;
		if (s->generation == m->generation && !s->draining && !s->term_sent)
			v.current_ready++;
	}
	return v;
}

/* READY=1 once every worker of the current generation serves and no older
 * one is left (at start and after each reload); otherwise STATUS= when the
 * figures changed, at most every STATUS_EVERY_MS. */
static void notify_pool(struct master *m, const struct pool_view *v)
{
	char status[160];
	snprintf(status, sizeof status, "STATUS=%d workers (%u busy, %u draining), %llu requests",
	    m->cfg.workers, v->state[WORKERS_BUSY], v->state[WORKERS_DRAINING], v->requests);
	long long now = clock_ms();
	if (!m->ready_sent && v->old == 0 && v->current_ready >= m->cfg.workers) {
		char msg[192];
		snprintf(msg, sizeof msg, "READY=1\n%s", status);
		notify_send(msg);
		m->ready_sent = 1;
		m->status_sent_ms = now;
		return;
	}
	if (now - m->status_sent_ms >= STATUS_EVERY_MS) {
		notify_send(status);
		m->status_sent_ms = now;
	}
}

static void terminate_slot(struct worker_slot *s)
{
	if (s->pid != 0 && !s->term_sent) {
		kill(s->pid, SIGTERM);
		s->term_sent = 1;
	}
}

static int free_slot(const struct master *m, long long now)
{
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		if (m->sb->slots[i].pid == 0 && m->sb->slots[i].respawn_after_ms <= now)
			return i;
	return -1;
}

/* Keeps WORKERS workers of the current generation. While older ones remain
 * (after a reload), starts one new worker at a time and retires an old one
 * once a new one is ready, so capacity never drops and nothing is refused. */
static void maintain_pool(struct master *m)
{
	int target = m->cfg.workers, live = 0, starting = 0, old = 0;
	long long now = clock_ms();
	for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct worker_slot *s = &m->sb->slots[i];
		if (s->pid == 0 || s->term_sent || s->draining)
			continue;
		if (s->generation == m->generation) {
			live++;
			if (!s->ready)
				starting++;
		} else {
			old++;
		}
	}
	if (old == 0) {
		while (live < target) {
			int idx = free_slot(m, now);
			if (idx < 0 || spawn_worker(m, idx) != 0)
				break;
			live++;
		}
		for (int i = SCOREBOARD_SLOTS - 1; i >= 0 && live > target; i--) {
			struct worker_slot *s = &m->sb->slots[i];
			if (s->pid != 0 && !s->term_sent && !s->draining) {
				terminate_slot(s);
				live--;
			}
		}
		return;
	}
	if (starting == 0 && live < target) {
		int idx = free_slot(m, now);
		if (idx >= 0)
			spawn_worker(m, idx);
		return;
	}
	if (live - starting + old > target || (live - starting >= target)) {
		for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
			struct worker_slot *s = &m->sb->slots[i];
			if (s->pid != 0 && !s->term_sent && !s->draining &&
			    s->generation != m->generation) {
				terminate_slot(s);
				s->stop_reason = RESTART_RELOAD;
				break;
			}
		}
	}
}

/* The configuration a reload moves to, in *next: ENV_FILE and the
 * environment read again, with the running LISTEN and generated secret
 * kept. 0, or -1 with why in err (nothing to free). */
static int next_config(const struct master *m, struct config *next, char *err, size_t errlen)
{
	if (config_load(next, err, errlen) != 0)
		return -1;
	if (config_check_production(next, err, errlen) != 0)
		goto refused;
	if (config_keep_generated_secret(next, &m->cfg) != 0)
		goto out_of_memory;
	if (strcmp(next->listen, m->cfg.listen) != 0)
		log_warn(LOGGER, "LISTEN changes need a restart; keeping %s", m->cfg.listen);
	char *listen = strdup(m->cfg.listen);
	if (listen == NULL)
		goto out_of_memory;
	free(next->listen);
	next->listen = listen;
	return 0;
out_of_memory:
	snprintf(err, errlen, "out of memory");
refused:
	config_free(next);
	return -1;
}

static void reload(struct master *m)
{
	struct config next;
	char err[512];
	char msg[96];
	/* Whether or not the new settings are taken, READY=1 ends the reload. */
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading", clock_us());
	notify_send(msg);
	m->ready_sent = 0;
	if (next_config(m, &next, err, sizeof err) != 0) {
		log_error(LOGGER, "reload refused, keeping the running configuration: %s", err);
		return;
	}
	config_free(&m->cfg);
	m->cfg = next;
	gala_config = &m->cfg;
	enum log_level lvl;
	if (log_level_parse(m->cfg.log_level, &lvl) == 0)
		log_set_level(lvl);
	m->generation++;
	log_info(LOGGER, "configuration reloaded; replacing workers one by one");
}

static void begin_shutdown(struct master *m)
{
	m->shutting_down = 1;
	m->drain_deadline_ms = clock_ms() +
	    (long long)(m->cfg.request_timeout_seconds + 5) * 1000;
	notify_send("STOPPING=1\nSTATUS=draining");
	log_info(LOGGER, "SIGTERM: draining %d workers", slots_in_use(m));
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		terminate_slot(&m->sb->slots[i]);
}

static void kill_all(struct master *m)
{
	for (int i = 0; i < SCOREBOARD_SLOTS; i++)
		if (m->sb->slots[i].pid != 0)
			kill(m->sb->slots[i].pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

int master_run(struct config *cfg, const struct route *table, size_t nroutes)
{
	struct master m = { .cfg = *cfg, .table = table, .nroutes = nroutes, .generation = 1 };
	gala_config = &m.cfg;
	char err[512];
	int rc = 1;
	notify_init();
	m.listen_fd = listen_open(m.cfg.listen, &m.from_systemd, err, sizeof err);
	if (m.listen_fd < 0) {
		log_error(LOGGER, "%s", err);
		config_free(&m.cfg);
		return 1;
	}
	m.sb = scoreboard_create();
	struct metrics *pool_counters = metrics_create();
	if (m.sb == NULL || pool_counters == NULL) {
		log_error(LOGGER, "cannot map the scoreboard: %s", strerror(errno));
		goto out;
	}
	metrics_attach(pool_counters);
	sigemptyset(&m.master_mask);
	sigaddset(&m.master_mask, SIGTERM);
	sigaddset(&m.master_mask, SIGINT);
	sigaddset(&m.master_mask, SIGHUP);
	sigaddset(&m.master_mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &m.master_mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "listen", m.from_systemd ? "systemd socket" : m.cfg.listen);
	cJSON_AddNumberToObject(f, "workers", m.cfg.workers);
	cJSON_AddStringToObject(f, "environment", config_environment_name(m.cfg.environment));
	cJSON_AddStringToObject(f, "version", PACKAGE_VERSION);
	log_emit(LOG_LEVEL_INFO, LOGGER, "gala serve starting", f);
	if (m.cfg.secret_key_generated)
		log_warn(LOGGER, "SECRET_KEY is not set: using a random key for this run "
		    "(tokens end with the process)");

	/* Once for the whole pool: every worker inherits the dummy hash that
	 * makes unknown-email logins as slow as wrong passwords. */
	password_prepare();
	for (;;) {
		if (!m.shutting_down)
			maintain_pool(&m);
		struct timespec tick = { 0, TICK_MS * 1000000L };
		int sig = sigtimedwait(&m.master_mask, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			if (m.shutting_down) {
				log_warn(LOGGER, "second signal: exiting at once");
				kill_all(&m);
				rc = 1;
				goto out;
			}
			begin_shutdown(&m);
		} else if (sig == SIGHUP && !m.shutting_down) {
			reload(&m);
		}
		reap(&m);
		kill_stuck(&m);
		struct pool_view view = pool_view(&m);
		metrics_set_workers(view.state);
		if (!m.shutting_down)
			notify_pool(&m, &view);
		if (m.shutting_down) {
			if (slots_in_use(&m) == 0) {
				log_info(LOGGER, "all workers finished; exiting");
				rc = 0;
				goto out;
			}
			if (clock_ms() > m.drain_deadline_ms) {
				log_error(LOGGER, "drain timed out; killing the remaining workers");
				kill_all(&m);
				rc = 1;
				goto out;
			}
		}
	}
out:
	notify_free();
	listen_close(m.listen_fd, m.cfg.listen, m.from_systemd);
	config_free(&m.cfg);
	return rc;
}

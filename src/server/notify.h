/* systemd's service notification protocol (sd_notify(3)), spoken directly:
 * one datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET per change of state,
 * so that a Type=notify unit knows when the pool serves, when a reload is
 * under way and what the pool is doing. Without the variable (not started by
 * systemd, or not as Type=notify) every call does nothing. */
#ifndef GALA_NOTIFY_H
#define GALA_NOTIFY_H

/* Takes $NOTIFY_SOCKET for the master and removes it from the environment,
 * so that no worker or child speaks for the service. */
void notify_init(void);

/* Sends state, e.g. "READY=1\nSTATUS=4 workers"; failures are ignored (the
 * service manager may not listen, which must not stop the pool). */
void notify_send(const char *state);

void notify_free(void);

#endif

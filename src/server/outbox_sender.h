/* gala mailer: the long-running process that sends the mail requests
 * queued in the outbox (services/outbox.h), one mail at a time. It stops on
 * SIGTERM or SIGINT between two mails, never in the middle of one (a send
 * takes at most MAILER_TIMEOUT_SECONDS). With nothing due it looks again
 * every MAILER_POLL_MS (a poll, not LISTEN: it works through PgBouncer in
 * transaction mode, and NOTIFY would serialise the requests' commits). When
 * the database cannot be reached it waits, 1 s doubling to 30 s, and
 * reconnects. Any number of mailers may run, on any hosts. */
#ifndef GALA_OUTBOX_SENDER_H
#define GALA_OUTBOX_SENDER_H

#include "core/config.h"

/* Runs until stopped, with cfg loaded and checked (config_check_mailer)
 * by the caller, who keeps it. Returns the process exit status. */
int outbox_sender_run(const struct config *cfg);

#endif

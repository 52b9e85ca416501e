/* Address lists of the settings: "127.0.0.1, ::1, 10.0.0.0/8" — IPv4 or
 * IPv6 addresses, each with an optional /prefix. */
#ifndef GALA_NETMASK_H
#define GALA_NETMASK_H

#include <stdbool.h>

/* True when every comma-separated item of list parses (an empty list is
 * valid and matches nothing). */
bool netmask_list_valid(const char *list);

/* True when addr (a numeric address, as nginx's REMOTE_ADDR) falls in one
 * of the items of list. An IPv4-mapped IPv6 address matches as IPv4. */
bool netmask_list_contains(const char *list, const char *addr);

#endif

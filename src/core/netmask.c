#include "autoconf.h"

#include "core/netmask.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct net {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int prefix;
};

/* Parses "ADDR" or "ADDR/PREFIX" of len bytes. */
static bool net_parse(const char *s, size_t len, struct net *n)
{
	char buf[64];
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		n->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		n->prefix = 128;
	} else {
		return false;
	}
	if (slash != NULL) {
		char *end;
		long p = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || p < 0 || p > n->prefix)
			return false;
		n->prefix = (int)p;
	}
	/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d. */
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (n->family == AF_INET6 && memcmp(n->addr, mapped, 12) == 0 && n->prefix >= 96) {
		memmove(n->addr, n->addr + 12, 4);
		n->family = AF_INET;
		n->prefix -= 96;
	}
	return true;
}

static bool net_contains(const struct net *net, const struct net *a)
{
	if (net->family != a->family)
		return false;
	int full = net->prefix / 8, rest = net->prefix % 8;
	if (memcmp(net->addr, a->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (a->addr[full] & mask);
}

/* Calls visit on each item of list, trimmed of spaces, until it returns
 * false; returns whether every visit returned true. */
static bool each_item(const char *list, bool (*visit)(const char *, size_t, void *), void *arg)
{
	while (list != NULL && *list != '\0') {
		while (*list == ' ')
			list++;
		const char *end = strchr(list, ',');
		size_t len = end != NULL ? (size_t)(end - list) : strlen(list);
		while (len > 0 && list[len - 1] == ' ')
			len--;
		if (len > 0 && !visit(list, len, arg))
			return false;
		list = end != NULL ? end + 1 : NULL;
	}
	return true;
}

static bool item_valid(const char *s, size_t len, void *arg)
{
	(void)arg;
	struct net n;
	return net_parse(s, len, &n);
}

bool netmask_list_valid(const char *list)
{
	return each_item(list, item_valid, NULL);
}

/* Visits until an item holds the address: false stops the walk. */
static bool item_misses(const char *s, size_t len, void *arg)
{
	struct net n;
	return !net_parse(s, len, &n) || !net_contains(&n, arg);
}

bool netmask_list_contains(const char *list, const char *addr)
{
	struct net a;
	if (addr == NULL || !net_parse(addr, strlen(addr), &a) || strchr(addr, '/') != NULL)
		return false;
	return !each_item(list, item_misses, &a);
}

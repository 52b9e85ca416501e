#include "autoconf.h"

#include "api/routes.h"

#include "api/handlers.h"

const struct route api_routes[] = {
	{ "GET", "/api/health", api_health, AUTH_NONE, 0, RATE_NONE, 0 },
};

const size_t api_routes_count = sizeof api_routes / sizeof api_routes[0];

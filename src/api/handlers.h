/* Handlers: validate input, call the services, build the response. */
#ifndef GALA_HANDLERS_H
#define GALA_HANDLERS_H

#include "http/request.h"

void api_health(struct request *req);

#endif

/* How each error of core/errors.h is answered: its HTTP status and the
 * envelope's "type" (errors.c's table), with the error's code and default
 * message. */
#ifndef GALA_ERRORS_H
#define GALA_ERRORS_H

#include "core/errors.h"

struct gala_error_info {
	int status;
	const char *type;
	const char *code;
	const char *message;   /* default message */
};

struct gala_error_info gala_error_info(enum gala_error e);

#endif

/* The ENV_FILE reader and every setting's validation (core/config.c): any
 * file loads or is refused with a message, and a loaded configuration
 * passes or fails the production checks with one. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"

#include "fuzz.h"

static int env_file = -1;

/* The file lives in memory: /proc/self/fd/N of a memfd. */
static void env_file_setup(void)
{
	env_file = memfd_create("gala-fuzz-env", MFD_CLOEXEC);
	if (env_file < 0) {
		perror("memfd_create");
		abort();
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", env_file);
	setenv("ENV_FILE", path, 1);
	unsetenv("CREDENTIALS_DIRECTORY");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	if (env_file < 0)
		env_file_setup();
	FUZZ_ASSERT(ftruncate(env_file, 0) == 0);
	FUZZ_ASSERT(pwrite(env_file, data, size, 0) == (ssize_t)size);
	struct config c;
	char err[512] = "";
	if (config_load(&c, err, sizeof err) != 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	/* Outside production a missing SECRET_KEY is generated. */
	FUZZ_ASSERT(c.workers > 0 && (c.secret_key != NULL || c.environment == ENV_PRODUCTION));
	err[0] = '\0';
	if (config_check_production(&c, err, sizeof err) != 0)
		FUZZ_ASSERT(err[0] != '\0');
	config_smtp_tls_required(&c);
	config_free(&c);
	return 0;
}

/* The main of a fuzz target in make check: runs each file of the seed
 * corpus tests/fuzz/corpus/NAME (NAME: the program's name without
 * "fuzz_"), or of the directories and files given as arguments, through
 * the target once. Fails on an empty corpus (it would prove nothing) and
 * when the replay takes over REPLAY_MAX_SECONDS (a hang is a failure too). */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_SECONDS 60

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *data = malloc(cap);
	size_t got;
	while (data != NULL && (got = fread(data + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			uint8_t *bigger = realloc(data, cap *= 2);
			if (bigger == NULL)
				free(data);
			data = bigger;
		}
	}
	fclose(f);
	if (data == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays path (a file, or every file of a directory in name order);
 * returns how many inputs, or -1. */
static int replay_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) == 0 ? 1 : -1;
	struct dirent **names;
	int n = scandir(path, &names, NULL, NULL);
	if (n < 0) {
		perror(path);
		return -1;
	}
	qsort(names, (size_t)n, sizeof *names, cmp_names);
	int count = 0;
	for (int i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(file) != 0)
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	alarm(REPLAY_MAX_SECONDS);
	int total = 0;
	if (argc > 1) {
		for (int i = 1; i < argc && total >= 0; i++) {
			int n = replay_path(argv[i]);
			total = n < 0 ? -1 : total + n;
		}
	} else {
		const char *src = getenv("GALA_SRCDIR");
		const char *base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strncmp(base, "fuzz_", 5) == 0)
			base += 5;
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".", base);
		total = replay_path(dir);
	}
	if (total <= 0) {
		fprintf(stderr, "%s: no input replayed\n", argv[0]);
		return 1;
	}
	printf("%s: %d inputs replayed\n", argv[0], total);
	return 0;
}

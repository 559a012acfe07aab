/* main() for the fuzz targets outside libFuzzer: run every file of the
 * directories (or files) given, or of FUZZ_CORPUS (a colon-separated
 * list), or else of tests/fuzz/corpus/NAME for the program fuzz-NAME,
 * through the target once; one TAP line per directory, which fails when
 * the directory is empty or cannot be read. A crash, a sanitizer report
 * or a valgrind error fails the test, so every input that once crashed a
 * target stays a regression test. */
#include "config.h"

#ifndef VMPLUG_LIBFUZZER

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "util/util.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		fprintf(stderr, "%s: short read\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

/* Replay dir (or one file); the number of inputs, -1 on error. */
static long replay(const char *path)
{
	char **names = NULL;
	struct dirent *de;
	long count = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return replay_file(path) < 0 ? -1 : 1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_append(&names, de->d_name);
	closedir(d);
	if (names)
		qsort(names, strv_len(names), sizeof(char *), cmp);
	for (size_t i = 0; names && names[i]; i++) {
		char *file = xasprintf("%s/%s", path, names[i]);

		if (replay_file(file) < 0)
			count = -1;
		else if (count >= 0)
			count++;
		free(file);
	}
	strv_free(names);
	return count;
}

int main(int argc, char **argv)
{
	const char *env = getenv("FUZZ_CORPUS");
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	char **paths = NULL;
	int n = 0;

	for (int i = 1; i < argc; i++)
		strv_append(&paths, argv[i]);
	if (!paths && env)
		paths = strv_split(env, ":");
	if (!paths && startswith(base, "fuzz-")) {
		/* tests/fuzz/fuzz-NAME replays tests/fuzz/corpus/NAME */
		char *dir = xasprintf("%s/%s", FUZZ_CORPUS_DIR, base + 5);

		strv_append(&paths, dir);
		free(dir);
	}
	for (size_t i = 0; paths[i]; i++) {
		long count = replay(paths[i]);

		n++;
		if (count < 0) {
			printf("not ok %d - %s could not be read\n", n, paths[i]);
		} else if (count == 0) {
			/* a corpus that lost its files would pass with nothing tested */
			printf("not ok %d - %s has no input to replay\n", n, paths[i]);
		} else {
			printf("ok %d - %ld input(s) of %s replayed\n", n, count, paths[i]);
		}
		fflush(stdout);
	}
	printf("1..%d\n", n);
	strv_free(paths);
	return 0;
}

#endif

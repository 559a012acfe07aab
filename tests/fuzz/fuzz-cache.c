/* Fuzz target: the input capability cache loader. A cache that parses
 * must survive a round trip: written out again and read back, it is the
 * same device. */
#include "config.h"

#include <libevdev/libevdev.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input/cache.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct libevdev *dev = NULL, *again = NULL;
	char *error = NULL, *text;

	if (size > INPUT_CACHE_MAX_SIZE)
		return 0;
	if (input_cache_parse((const char *)data, size, &dev, &error) < 0) {
		free(error);
		return 0;
	}
	text = input_cache_format(dev, "fuzz");
	if (input_cache_parse(text, strlen(text), &again, &error) < 0) {
		fprintf(stderr, "round trip failed: %s\n%s\n", error ? error : "?", text);
		abort();
	}
	if (!input_cache_equal(dev, again)) {
		fprintf(stderr, "round trip changed the device:\n%s\n", text);
		abort();
	}
	free(text);
	libevdev_free(again);
	libevdev_free(dev);
	return 0;
}

/* Fuzz target: the configuration parser. The input is vmplug.conf, then
 * (after the first NUL byte, if any) a VM file; a configuration that
 * loads is also printed, as --check-config does. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"
#include "tests/fuzz/fuzz.h"
#include "util/log.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t global_len = nul ? (size_t)(nul - text) : size;
	struct conf *conf = NULL;
	char **errors = NULL;
	int r;

	if (!null) {
		null = fopen("/dev/null", "we");
		log_set_level(LOG_LEVEL_ERROR);
	}
	r = conf_load_text(text, global_len, nul ? nul + 1 : NULL, nul ? size - global_len - 1 : 0,
			   &conf, &errors);
	if (r == 0) {
		if (strv_len(errors) != 0)
			abort();
		conf_dump(conf, null);
		conf_free(conf);
	} else if (r != -EINVAL || strv_len(errors) == 0) {
		abort();
	}
	strv_free(errors);
	return 0;
}

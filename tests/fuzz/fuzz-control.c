/* Fuzz target: the control socket's request parser. The input is what a
 * client sends: lines, each one request, as vmplugd cuts them. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/control-int.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct control_request rq;
		char *error = NULL;

		if (len <= CONTROL_MAX_REQUEST) {
			if (control_request_parse(p, len, &rq, &error) == 0) {
				if (!rq.command || (rq.args && !json_is_object(rq.args)) || error)
					abort();
			} else if (!error || rq.command) {
				abort();
			}
			free(error);
			control_request_clear(&rq);
		}
		p += len + 1;
	}
	return 0;
}

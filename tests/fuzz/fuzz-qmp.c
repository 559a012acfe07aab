/* Fuzz target: the QMP reader. Bytes from a peer are cut into messages by
 * the framer (in chunks whose size the input chooses, as reads would) and
 * each message is shape-checked, as the client does with QEMU's output. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "qmp/qmp-int.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A small limit, so the fuzzer reaches it too. */
	struct qmp_framer *f = qmp_framer_new(4096);
	size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1;

	for (size_t off = 0; off < size;) {
		size_t n = size - off < chunk ? size - off : chunk;

		qmp_framer_feed(f, data + off, n);
		off += n;
		for (;;) {
			const char *raw = NULL, *why = NULL;
			char error[160];
			size_t raw_len = 0;
			json_t *j = NULL;
			struct qmp_msg m;
			uint64_t id;
			int r = qmp_framer_next(f, &j, &raw, &raw_len, error, sizeof(error));

			if (r == 0)
				break;
			if (r < 0) {
				/* the client drops the connection and starts afresh */
				qmp_framer_reset(f);
				break;
			}
			if (raw_len == 0 || !raw)
				abort();
			if (qmp_msg_parse(j, &m, &why) == 0) {
				qmp_msg_id(&m, &id);
				if (m.type == QMP_MSG_EVENT && !m.event)
					abort();
				if (m.type == QMP_MSG_ERROR && (!m.error_class || !m.error_desc))
					abort();
			} else if (!why) {
				abort();
			}
			json_decref(j);
		}
	}
	qmp_framer_free(f);
	return 0;
}

/* A scripted fake QMP peer for faults QEMU will not produce on demand. It
 * listens on a unix socket on the test's loop, accepts the client's
 * connections one after another and plays a script of steps as data. A
 * step that needs a connection waits for the next one; a step that reads
 * waits for the client's message. The peer never blocks the loop. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "loop/loop.h"

enum fake_op {
	FAKE_END = 0,
	/* send QEMU 7.2.22's greeting */
	FAKE_GREET,
	/* wait for a new connection (the current one is dropped when it comes) */
	FAKE_ACCEPT,
	/* FAKE_ACCEPT, FAKE_GREET, FAKE_EXPECT "qmp_capabilities", FAKE_REPLY
	 * {"return": {}}: every handshake is on a connection of its own */
	FAKE_HANDSHAKE,
	/* read one command and check that it executes `arg`; its id is
	 * remembered for FAKE_REPLY and $N */
	FAKE_EXPECT,
	/* FAKE_EXPECT, and the command must carry a file descriptor */
	FAKE_EXPECT_FD,
	/* send `arg` (a JSON object) with the last expected command's id */
	FAKE_REPLY,
	/* send `arg` as is, with $1..$32 replaced by the id of the Nth command
	 * expected on this connection (qmp_capabilities is $1) */
	FAKE_SEND,
	/* like FAKE_SEND, one byte per loop pass */
	FAKE_SEND_SLOW,
	/* close the connection once everything queued is written */
	FAKE_CLOSE,
	/* stop here until fake_peer_resume() */
	FAKE_PAUSE,
	/* say nothing on this connection: a FAKE_ACCEPT after it waits for
	 * the client to give up and connect again */
	FAKE_SILENT,
	/* answer every command read from now on with `arg` (a JSON object)
	 * and its id, counting them (fake_peer_answered()); never ends, so
	 * it is the script's last step */
	FAKE_ANSWER,
};

struct fake_step {
	enum fake_op op;
	const char *arg; /* borrowed until the peer is freed */
};

struct fake_peer;

/* Listen on `path` (an existing file there is replaced) and play `script`
 * (ending with FAKE_END; borrowed). Aborts the test on failure. */
struct fake_peer *fake_peer_new(struct loop *loop, const char *path,
				const struct fake_step *script);
/* Close everything and remove the socket file. NULL is a no-op. */
void fake_peer_free(struct fake_peer *p);

/* Every step has been played. */
bool fake_peer_done(const struct fake_peer *p);
/* The first way the client differed from the script, NULL if none. */
const char *fake_peer_error(const struct fake_peer *p);
/* Connections accepted so far. */
unsigned fake_peer_connections(const struct fake_peer *p);
/* The peer holds a connection now. */
bool fake_peer_connected(const struct fake_peer *p);
/* The last command read by FAKE_EXPECT (borrowed), NULL before any. */
json_t *fake_peer_last(const struct fake_peer *p);
/* The fd that came with it (owned by the peer), -1 if none. */
int fake_peer_last_fd(const struct fake_peer *p);
void fake_peer_resume(struct fake_peer *p);
/* Commands FAKE_ANSWER answered. */
unsigned long fake_peer_answered(const struct fake_peer *p);

/* An asynchronous QMP client on the daemon's event loop: one object per
 * QMP unix socket. It connects without blocking, reads the greeting,
 * negotiates capabilities, sends commands with fresh ids and matches the
 * replies, delivers events, times commands out, and reconnects with
 * backoff, watching the socket's directory with inotify so a QEMU that
 * starts is connected at once. It knows nothing of USB or VMs.
 *
 * The peer is untrusted: every message is parsed with jansson and type
 * checked; invalid JSON, a message over QMP_MAX_MESSAGE bytes or one of
 * the wrong shape closes the connection, which is then retried.
 *
 * Callbacks run on the loop, never from inside a qmp_*() call. Any of them
 * may call qmp_command() or qmp_free(). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop/loop.h"

#define QMP_MAX_MESSAGE (1024 * 1024)
#define QMP_DEFAULT_TIMEOUT_USEC (5 * 1000000ULL)
#define QMP_DEFAULT_BACKOFF_MIN_USEC (50 * 1000ULL)
#define QMP_DEFAULT_BACKOFF_MAX_USEC (5 * 1000000ULL)

struct qmp;

struct qmp_opts {
	/* Prefix of every log line, e.g. "vm win10". */
	const char *name;
	/* Absolute path of QEMU's QMP unix socket. */
	const char *socket_path;
	/* Who besides root may serve the socket (0: root alone). A peer run
	 * by anyone else, or a socket or directory that someone else owns or
	 * may write, is refused before anything is sent: down() says why
	 * ("refusing QEMU on PATH: ...") and it is retried like a down QEMU. */
	uid_t peer_uid;
	/* Default command (and handshake) timeout; 0: QMP_DEFAULT_TIMEOUT_USEC. */
	uint64_t timeout_usec;
	/* Reconnect delay, doubling from min to max; 0: the defaults above. */
	uint64_t backoff_min_usec;
	uint64_t backoff_max_usec;
	/* Log every message in and out. Also on when the log level is debug
	 * or the environment has VMPLUG_QMP_TRACE=1. */
	bool trace;
};

/* The peer's greeting. */
struct qmp_version {
	int major;
	int minor;
	int micro;
	const char *package; /* "" when the greeting has none */
};

struct qmp_callbacks {
	/* Greeting read and capabilities negotiated: commands may be sent. */
	void (*connected)(struct qmp *q, void *data);
	/* A connection that was connected is lost. Every command pending on
	 * it has completed (-ENOTCONN, or -ETIMEDOUT / -EPROTO for the one
	 * that caused it) before this is called. `reason` says why ("EOF",
	 * "connection reset by peer", "no reply to 'x' within 5.0 s", ...). */
	void (*disconnected)(struct qmp *q, const char *reason, void *data);
	/* Optional: an attempt to connect failed for a reason other than the
	 * last one ("QEMU is not running: PATH does not exist", "cannot
	 * connect to PATH: REASON"); not repeated while the reason stays. */
	void (*down)(struct qmp *q, const char *why, void *data);
	/* An event. `data` is its "data" object, NULL when it has none;
	 * both are borrowed for the call. */
	void (*event)(struct qmp *q, const char *event, json_t *data, void *udata);
};

/* What qmp_command() expects "return" to be; anything else is a protocol
 * error (the command fails with -EPROTO and the connection is dropped). */
enum qmp_ret_type {
	QMP_RET_ANY = 0,
	QMP_RET_OBJECT,
	QMP_RET_ARRAY,
};

struct qmp_command_opts {
	/* 0: the client's default timeout. When it expires the command fails
	 * with -ETIMEDOUT and the connection is dropped and retried: a QEMU
	 * that does not answer one command answers none. */
	uint64_t timeout_usec;
	enum qmp_ret_type ret_type;
	/* Sent with the command through SCM_RIGHTS (for add-fd), -1 for none.
	 * Borrowed: the client sends a duplicate, so the caller may close it
	 * once qmp_command() returns. */
	int fd;
};

/* How a command ended. */
struct qmp_reply {
	/* 0: success, `ret` is set.
	 * -EREMOTEIO: QEMU answered with an error: `error_class`, `error_desc`.
	 * -ETIMEDOUT: no reply in time (the connection is dropped).
	 * -EPROTO: the reply had the wrong shape (the connection is dropped).
	 * -ENOTCONN: the connection was lost first (or qmp_free()d: no call). */
	int err;
	json_t *ret; /* borrowed for the call */
	const char *error_class;
	const char *error_desc;
};

typedef void (*qmp_reply_fn)(struct qmp *q, const struct qmp_reply *reply, void *data);

/* Create a client and start reaching the socket (the first attempt runs
 * from the loop). `opts` and `cb` are copied. Returns NULL with errno set:
 * EINVAL (no name, a relative socket path), ENAMETOOLONG (the path does not
 * fit in a sockaddr_un), or what inotify_init1() failed with. */
struct qmp *qmp_new(struct loop *loop, const struct qmp_opts *opts, const struct qmp_callbacks *cb,
		    void *data);
/* Close the connection and free the client; pending commands are dropped
 * without their callbacks. Safe from inside any callback. NULL is a no-op. */
void qmp_free(struct qmp *q);

/* Connected and negotiated (between connected() and disconnected()). */
bool qmp_is_connected(const struct qmp *q);
/* The greeting of the current connection; NULL when not connected. */
const struct qmp_version *qmp_version(const struct qmp *q);
/* The name given in qmp_opts. */
const char *qmp_name(const struct qmp *q);

/* Send `command` with `args` (an object, stolen in every case; NULL for
 * none). `opts` may be NULL. `fn` (may be NULL) is called exactly once,
 * later, unless the client is freed first. Returns 0, -ENOTCONN when not
 * connected, -EINVAL for a bad argument, or the -errno of duplicating
 * opts->fd (-EBADF, -EMFILE). */
int qmp_command(struct qmp *q, const char *command, json_t *args,
		const struct qmp_command_opts *opts, qmp_reply_fn fn, void *data);

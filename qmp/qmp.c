/* The QMP client: connection life cycle, commands and events (see qmp.h). */
#include "config.h"

#include "qmp/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop/dirwatch.h"
#include "qmp/qmp-int.h"
#include "util/guard.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

/* How much of a message a trace or error line shows. */
#define TRACE_MAX 1500
/* Reads per wake-up before giving other sources a turn: one. A peer that
 * floods (events in a loop, a reply of a megabyte) is then handled
 * READ_SIZE bytes at a time, and epoll, level-triggered, comes back at
 * once after every other ready source had its turn
 * (tests/integration/test-faults.c measures what a flood costs the
 * others). */
#define READS_PER_WAKEUP 1
/* What one read takes: about a hundred small events, a millisecond of work. */
#define READ_SIZE (16 * 1024)

enum state {
	ST_DISCONNECTED, /* waiting for the retry timer or for inotify */
	ST_CONNECTING,   /* non-blocking connect() in progress */
	ST_GREETING,     /* connected, waiting for {"QMP": ...} */
	ST_CAPABILITIES, /* qmp_capabilities sent */
	ST_READY,
};

/* What to do after a connection ends or an attempt fails. */
enum retry {
	RETRY_BACKOFF, /* after the current backoff delay, which then doubles */
	RETRY_RESET,   /* soon: the peer went away in an orderly way */
	RETRY_WATCH,   /* only when inotify says the socket appeared */
};

struct cmd {
	struct list link;
	struct cmd *hnext; /* the next in its bucket of the id table */
	uint64_t id;
	char *name;
	uint64_t deadline;
	enum qmp_ret_type ret_type;
	qmp_reply_fn fn;
	void *data;
};

struct out {
	struct list link;
	char *buf;
	size_t len;
	size_t off;
	int fd; /* sent with the first byte, then closed */
};

struct qmp {
	struct loop *loop;
	char *name;
	char *path;
	char *dir;
	char *base;
	struct qmp_callbacks cb;
	void *data;
	uint64_t timeout;
	uint64_t backoff_min;
	uint64_t backoff_max;
	uint64_t backoff;
	uint64_t retry_delay; /* what retry_timer was last armed with */
	uint64_t retry_at;
	bool trace;

	enum state state;
	int fd;
	struct loop_source *src;
	struct qmp_framer *framer;
	struct list cmds; /* struct cmd, in sending order */
	/* The same commands by id (see table_add()): 2^table_bits buckets. */
	struct cmd **table;
	unsigned table_bits;
	size_t n_cmds;
	struct list out; /* struct out, not yet fully written */
	uint64_t next_id;
	uint64_t caps_id;
	uint64_t handshake_deadline;
	json_t *greeting; /* owns the strings of `version` */
	struct qmp_version version;
	struct loop_timer *timeout_timer;
	uint64_t timer_deadline; /* where timeout_timer is armed */
	struct loop_timer *retry_timer;
	struct loop_timer *write_error_timer;
	int write_error;

	/* The socket's directory watched (loop/dirwatch), or its nearest
	 * existing ancestor while the directory does not exist; only while
	 * not connected, so that files coming and going beside the socket
	 * do not wake a connected client. */
	struct dirwatch *watch;
	char *watched;

	uid_t peer_uid;
	/* Why the last attempt failed: an errno, or PEER_REFUSED and why. */
	int last_connect_error;
	char *last_refusal;
	struct log_ratelimit rl;

	/* Callbacks may free the client: it is freed when the outermost
	 * entry from the loop returns. */
	struct guard guard;
	/* Bumped whenever a connection ends, so code that ran a callback can
	 * tell that the connection it was working on is gone. */
	unsigned generation;
};

static void attempt(struct qmp *q);
static void update_watch(struct qmp *q);
static void unwatch(struct qmp *q);

/* Enter a loop entry (see leave()). */
static void enter(struct qmp *q)
{
	guard_enter(&q->guard);
}

static void destroy(struct qmp *q);

/* Leave a loop entry; true if the client is gone and must not be touched. */
static bool leave(struct qmp *q)
{
	if (guard_leave(&q->guard)) {
		destroy(q);
		return true;
	}
	return q->guard.dead;
}

/* Log every message: asked for, or the log level is debug. */
static bool trace_on(const struct qmp *q)
{
	return q->trace || log_get_level() >= LOG_LEVEL_DEBUG;
}

/* Trace lines go out at info when tracing was asked for explicitly, so
 * they show without turning on every other debug message. */
static void trace(const struct qmp *q, const char *dir, const char *text, size_t len,
		  const char *extra)
{
	enum log_level level = log_get_level() >= LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG
								  : LOG_LEVEL_INFO;

	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len > TRACE_MAX)
		log_msg(level, "%s: qmp %s %.*s... (%zu bytes)%s", q->name, dir, TRACE_MAX, text,
			len, extra);
	else
		log_msg(level, "%s: qmp %s %.*s%s", q->name, dir, (int)len, text, extra);
}

/* The first deadline of the handshake and the commands, 0 if none. */
static uint64_t earliest_deadline(const struct qmp *q)
{
	uint64_t earliest = 0;
	struct cmd *c;

	if (q->state >= ST_CONNECTING && q->state < ST_READY)
		earliest = q->handshake_deadline;
	list_for_each(c, &q->cmds, link)
		if (!earliest || c->deadline < earliest)
			earliest = c->deadline;
	return earliest;
}

/* Point the timeout timer at the earliest deadline, or disarm it. */
static void rearm_timeout(struct qmp *q)
{
	q->timer_deadline = earliest_deadline(q);
	if (q->timer_deadline)
		loop_timer_arm(q->timeout_timer, q->timer_deadline);
	else
		loop_timer_disarm(q->timeout_timer);
}

/* Make sure the timer fires by `deadline`. The timer is not moved later
 * when commands complete: an early firing finds nothing expired and
 * rearms, which is cheaper than reprogramming the timerfd twice for every
 * command. */
static void ensure_timeout(struct qmp *q, uint64_t deadline)
{
	if (!loop_timer_armed(q->timeout_timer) || deadline < q->timer_deadline) {
		q->timer_deadline = deadline;
		loop_timer_arm(q->timeout_timer, deadline);
	}
}

/* Free a queued write and its fd. */
static void out_free(struct out *o)
{
	list_remove(&o->link);
	closep(&o->fd);
	free(o->buf);
	free(o);
}

/* Close the socket and forget what belonged to the connection. */
static void close_connection(struct qmp *q)
{
	struct out *o, *otmp;

	loop_source_remove(q->src);
	q->src = NULL;
	closep(&q->fd);
	qmp_framer_reset(q->framer);
	list_for_each_safe(o, otmp, &q->out, link)
		out_free(o);
	json_decref(q->greeting);
	q->greeting = NULL;
	memset(&q->version, 0, sizeof(q->version));
	q->write_error = 0;
	loop_timer_disarm(q->write_error_timer);
}

/* --- pending commands by id ----------------------------------------- *
 * A reply is matched to its command in O(1) whatever the peer sends: the
 * ids are ours (sequential), the peer only echoes them, so a lookup of any
 * number walks one bucket holding commands we sent, and the table grows
 * with them (at most one per bucket on average) and shrinks when they
 * complete. Fibonacci hashing spreads the ids so that which commands the
 * peer leaves unanswered cannot pile them into one bucket. */
#define TABLE_MIN_BITS 4

/* The bucket of `id`. */
static size_t table_slot(const struct qmp *q, uint64_t id)
{
	return (size_t)((id * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - q->table_bits));
}

/* Rehash every pending command into 2^bits buckets. */
static void table_resize(struct qmp *q, unsigned bits)
{
	size_t old_size = q->table ? (size_t)1 << q->table_bits : 0;
	struct cmd **old = q->table;

	q->table = xcalloc((size_t)1 << bits, sizeof(*q->table));
	q->table_bits = bits;
	for (size_t i = 0; i < old_size; i++) {
		struct cmd *c = old[i], *next;

		for (; c; c = next) {
			size_t s = table_slot(q, c->id);

			next = c->hnext;
			c->hnext = q->table[s];
			q->table[s] = c;
		}
	}
	free(old);
}

static void table_add(struct qmp *q, struct cmd *c)
{
	size_t s;

	if (q->n_cmds >= (size_t)1 << q->table_bits)
		table_resize(q, q->table_bits + 1);
	s = table_slot(q, c->id);
	c->hnext = q->table[s];
	q->table[s] = c;
	q->n_cmds++;
}

static void table_remove(struct qmp *q, struct cmd *c)
{
	struct cmd **pp = &q->table[table_slot(q, c->id)];

	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	q->n_cmds--;
	if (q->table_bits > TABLE_MIN_BITS && q->n_cmds < ((size_t)1 << q->table_bits) / 8)
		table_resize(q, q->table_bits - 1);
}

/* The pending command with this id, NULL if none. */
static struct cmd *find_cmd(struct qmp *q, uint64_t id)
{
	struct cmd *c = q->table[table_slot(q, id)];

	while (c && c->id != id)
		c = c->hnext;
	return c;
}

/* Free a command once completed or dropped. */
static void cmd_free(struct cmd *c)
{
	free(c->name);
	free(c);
}

/* Take c off the list and the table. */
static void cmd_forget(struct qmp *q, struct cmd *c)
{
	list_remove(&c->link);
	table_remove(q, c);
}

/* Forget c and complete it; false if the client was freed by the
 * callback. */
static bool complete(struct qmp *q, struct cmd *c, const struct qmp_reply *r)
{
	cmd_forget(q, c);
	if (c->fn)
		c->fn(q, r, c->data);
	cmd_free(c);
	return !q->guard.dead;
}

/* Arm the next connection attempt the way `how` says. */
static void schedule_retry(struct qmp *q, enum retry how)
{
	switch (how) {
	case RETRY_WATCH:
		loop_timer_disarm(q->retry_timer);
		return;
	case RETRY_RESET:
		q->backoff = q->backoff_min;
		break;
	case RETRY_BACKOFF:
		break;
	}
	q->retry_delay = q->backoff;
	q->retry_at = now_usec() + q->backoff;
	loop_timer_arm(q->retry_timer, q->retry_at);
	q->backoff = q->backoff * 2 > q->backoff_max ? q->backoff_max : q->backoff * 2;
}

/* End the current connection (or attempt): pending commands complete with
 * -ENOTCONN, then disconnected() if the connection had been up. Returns
 * false if a callback freed the client. */
static bool drop(struct qmp *q, const char *reason, enum retry how)
{
	bool was_ready = q->state == ST_READY;

	/* Failed attempts are logged by attempt_failed(), rate-limited. */
	if (q->state >= ST_GREETING)
		log_debug("%s: QMP connection closed (%s)", q->name, reason);
	close_connection(q);
	q->state = ST_DISCONNECTED;
	/* Watch the directory again before any new attempt, so that the
	 * socket appearing between a failed attempt and the watch is not
	 * missed. */
	update_watch(q);
	q->generation++;
	while (!list_empty(&q->cmds)) {
		struct cmd *c = container_of(q->cmds.next, struct cmd, link);
		struct qmp_reply r = { .err = -ENOTCONN };

		if (!complete(q, c, &r))
			return false;
	}
	loop_timer_disarm(q->timeout_timer);
	if (was_ready && q->cb.disconnected) {
		q->cb.disconnected(q, reason, q->data);
		if (q->guard.dead)
			return false;
	}
	/* A callback may already have started a new attempt. */
	if (q->state == ST_DISCONNECTED)
		schedule_retry(q, how);
	return true;
}

/* Write what the socket takes now; 0 or -errno. */
static int flush(struct qmp *q)
{
	while (!list_empty(&q->out)) {
		struct out *o = container_of(q->out.next, struct out, link);
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = o->buf + o->off, .iov_len = o->len - o->off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (o->fd >= 0) {
			struct cmsghdr *cm;

			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
		}
		n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		closep(&o->fd);
		o->off += (size_t)n;
		if (o->off == o->len)
			out_free(o);
	}
	loop_source_set_events(q->src, list_empty(&q->out) ? EPOLLIN : EPOLLIN | EPOLLOUT);
	return 0;
}

/* A write failed earlier: drop the connection from the loop. */
static void on_write_error(struct loop_timer *t, void *data)
{
	struct qmp *q = data;
	char reason[128];

	enter(q);
	if (q->state != ST_DISCONNECTED && q->write_error) {
		snprintf(reason, sizeof(reason), "write: %s", strerror(-q->write_error));
		drop(q, reason, RETRY_BACKOFF);
	}
	leave(q);
}

/* Queue text (with fd, consumed) and write what the socket takes now. A
 * write error is handled from the loop, so callers never see callbacks. */
static void send_text(struct qmp *q, char *text, int fd)
{
	struct out *o = xnew(struct out);
	int r;

	o->buf = text;
	o->len = strlen(text);
	o->fd = fd;
	list_insert_tail(&q->out, &o->link);
	if (q->write_error)
		return;
	r = flush(q);
	if (r < 0) {
		q->write_error = r;
		loop_timer_arm(q->write_error_timer, now_usec());
	}
}

/* Send msg (stolen) and fd (consumed, -1 for none). */
static void send_message(struct qmp *q, json_t *msg, int fd)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	char *line;

	json_decref(msg);
	if (!text)
		abort();
	line = xasprintf("%s\n", text);
	free(text);
	if (trace_on(q))
		trace(q, "->", line, strlen(line), fd >= 0 ? " (with a file descriptor)" : "");
	send_text(q, line, fd);
}

/* last_connect_error for a peer check that failed (not an errno). */
#define PEER_REFUSED (-1)

/* Why connect() failed, in words that say what to do. */
static const char *connect_error_text(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connection refused (stale socket: QEMU is not running)";
	case EAGAIN:
		return "QEMU's listen queue is full";
	default:
		return strerror(err);
	}
}

/* A failed attempt: err is an errno, or PEER_REFUSED with `refusal` saying
 * why. Missing sockets wait for inotify; the rest retry with backoff (a
 * refused peer too: the right QEMU may replace it). A VM that is simply
 * down is not an error: it is logged once when the reason changes, and
 * every repeat is rate-limited. */
static bool attempt_failed(struct qmp *q, int err, const char *refusal)
{
	bool missing = err == ENOENT || err == ENOTDIR;
	bool changed = err != q->last_connect_error ||
		       (refusal && !streq(refusal, q->last_refusal ? q->last_refusal : ""));
	const char *text = refusal ? refusal : connect_error_text(err);
	char reason[PATH_MAX + 160], why[2 * PATH_MAX + 160];

	if (changed) {
		if (missing)
			log_debug("%s: %s does not exist; waiting for QEMU to create it", q->name,
				  q->path);
		else if (refusal)
			log_warning("%s: refusing QEMU on %s: %s; retrying", q->name, q->path,
				    refusal);
		else if (err == ECONNREFUSED || err == EAGAIN)
			log_info("%s: cannot connect to %s: %s; retrying", q->name, q->path, text);
		else
			log_warning("%s: cannot connect to %s: %s; retrying", q->name, q->path,
				    text);
	} else if (!missing && log_ratelimit_allow(&q->rl, now_usec())) {
		log_debug("%s: still %s %s: %s", q->name,
			  refusal ? "refusing QEMU on" : "cannot connect to", q->path, text);
	}
	q->last_connect_error = err;
	free(q->last_refusal);
	q->last_refusal = refusal ? xstrdup(refusal) : NULL;
	snprintf(reason, sizeof(reason), "%s: %s", refusal ? "refused" : "connect", text);
	update_watch(q);
	/* Without a watch (inotify refused it) a missing socket is polled. */
	if (!drop(q, reason, missing && q->watch ? RETRY_WATCH : RETRY_BACKOFF))
		return false;
	if (changed && q->cb.down) {
		if (missing)
			snprintf(why, sizeof(why), "QEMU is not running: %s does not exist",
				 q->path);
		else
			snprintf(why, sizeof(why), "%s %s: %s",
				 refusal ? "refusing QEMU on" : "cannot connect to", q->path, text);
		q->cb.down(q, why, q->data);
		if (q->guard.dead)
			return false;
	}
	return true;
}

/* May a file (the socket or its directory) be trusted not to be replaced
 * by someone else? Owned by root or the peer's user, and writable by
 * nobody else (by its group only when that is root's), as OpenSSH's
 * StrictModes. A root-owned sticky directory (/tmp) may be writable by
 * all: nobody else can rename or remove the socket there. Puts why not
 * in `buf` and returns false. */
static bool file_trusted(const struct qmp *q, const char *what, const char *path, char *buf,
			 size_t size)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(buf, size, "cannot stat %s %s: %s", what, path, strerror(errno));
		return false;
	}
	if (st.st_uid != 0 && st.st_uid != q->peer_uid)
		snprintf(buf, size, "%s %s is owned by uid %u, not root%s", what, path,
			 (unsigned)st.st_uid, q->peer_uid ? " or the QEMU user" : "");
	else if (S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0)
		return true;
	else if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0))
		snprintf(buf, size, "%s %s is writable by %s (mode %04o)", what, path,
			 (st.st_mode & S_IWOTH) ? "others" : "its group", st.st_mode & 07777);
	else
		return true;
	return false;
}

/* Before anything is sent (in fd mode, a root-opened device): is the peer
 * root or the VM's QEMU user, on a socket nobody else could have put
 * there? Puts why not in `buf` and returns false. */
static bool peer_trusted(struct qmp *q, char *buf, size_t size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char dir[PATH_MAX];
	char *slash;

	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(buf, size, "cannot tell who serves it: %s", strerror(errno));
		return false;
	}
	if (cred.uid != 0 && cred.uid != q->peer_uid) {
		if (q->peer_uid)
			snprintf(buf, size, "its QMP server runs as uid %u, not root or uid %u",
				 (unsigned)cred.uid, (unsigned)q->peer_uid);
		else
			snprintf(buf, size, "its QMP server runs as uid %u, not root",
				 (unsigned)cred.uid);
		return false;
	}
	snprintf(dir, sizeof(dir), "%s", q->path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return file_trusted(q, "directory", dir, buf, size) &&
	       file_trusted(q, "socket", q->path, buf, size);
}

static void on_io(struct loop_source *src, int fd, uint32_t revents, void *data);

/* Connected: wait for the greeting. */
static void start_handshake(struct qmp *q)
{
	/* Connected: nothing to wait for in the directory until the
	 * connection ends and an attempt fails. */
	unwatch(q);
	q->state = ST_GREETING;
	loop_source_set_events(q->src, EPOLLIN);
}

/* Try to connect now (without blocking). */
static void attempt(struct qmp *q)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (q->state != ST_DISCONNECTED)
		return;
	loop_timer_disarm(q->retry_timer);
	memcpy(sa.sun_path, q->path, strlen(q->path) + 1);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0) {
		attempt_failed(q, errno, NULL);
		return;
	}
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		attempt_failed(q, errno, NULL);
		return;
	}
	q->src = loop_add_fd(q->loop, q->fd, EPOLLOUT, on_io, q);
	if (!q->src) {
		attempt_failed(q, errno, NULL);
		return;
	}
	q->state = ST_CONNECTING;
	q->handshake_deadline = now_usec() + q->timeout;
	ensure_timeout(q, q->handshake_deadline);
}

/* The retry timer: try to connect again. */
static void on_retry(struct loop_timer *t, void *data)
{
	struct qmp *q = data;

	enter(q);
	attempt(q);
	leave(q);
}

/* The peer broke the protocol: say so and drop the connection. */
static bool protocol_error(struct qmp *q, const char *what, const char *raw, size_t raw_len)
{
	char reason[256];

	if (raw && raw_len > 120)
		raw_len = 120;
	log_ratelimited(&q->rl, LOG_LEVEL_WARNING,
			"%s: QEMU broke the QMP protocol (%s%s%.*s%s); reconnecting", q->name, what,
			raw ? ": '" : "", raw ? (int)raw_len : 0, raw ? raw : "", raw ? "'" : "");
	snprintf(reason, sizeof(reason), "protocol error: %s", what);
	return drop(q, reason, RETRY_BACKOFF);
}

/* Is "return" of the type the command expects? */
static bool ret_type_ok(enum qmp_ret_type t, json_t *ret)
{
	switch (t) {
	case QMP_RET_ANY:
		return true;
	case QMP_RET_OBJECT:
		return json_is_object(ret);
	case QMP_RET_ARRAY:
		return json_is_array(ret);
	}
	return false;
}

/* A reply: complete its command; false if the client or connection is gone. */
static bool handle_reply(struct qmp *q, const struct qmp_msg *m)
{
	struct qmp_reply r = { 0 };
	char what[160];
	uint64_t id = 0;
	struct cmd *c;

	if (qmp_msg_id(m, &id) < 0 || !(c = find_cmd(q, id))) {
		char *idtext = m->id ? json_dumps(m->id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

		log_ratelimited(&q->rl, LOG_LEVEL_WARNING,
				"%s: QEMU replied to an unknown id %s; reply dropped%s%s", q->name,
				idtext ? idtext : "(none)", m->type == QMP_MSG_ERROR ? ": " : "",
				m->type == QMP_MSG_ERROR ? m->error_desc : "");
		free(idtext);
		return true;
	}
	if (m->type == QMP_MSG_ERROR) {
		r.err = -EREMOTEIO;
		r.error_class = m->error_class;
		r.error_desc = m->error_desc;
	} else if (!ret_type_ok(c->ret_type, m->ret)) {
		snprintf(what, sizeof(what), "the reply to '%s' has a \"return\" of the wrong type",
			 c->name);
		r.err = -EPROTO;
		if (!complete(q, c, &r))
			return false;
		return protocol_error(q, what, NULL, 0);
	} else {
		r.ret = m->ret;
	}
	return complete(q, c, &r);
}

/* The greeting and the reply to qmp_capabilities. */
static bool handle_handshake(struct qmp *q, json_t *j, const struct qmp_msg *m)
{
	uint64_t id;

	if (q->state == ST_GREETING) {
		/* QEMU 7.2 writes an event emitted while it accepts the
		 * connection ahead of the greeting: one of no session's. */
		if (m->type == QMP_MSG_EVENT)
			return true;
		if (m->type != QMP_MSG_GREETING)
			return protocol_error(q, "the first message is not a greeting", NULL, 0);
		q->greeting = json_incref(j);
		q->version = m->version;
		q->caps_id = q->next_id++;
		send_message(q, qmp_build_command("qmp_capabilities", NULL, q->caps_id), -1);
		q->state = ST_CAPABILITIES;
		return true;
	}
	/* ST_CAPABILITIES: QEMU sends no events before this reply. */
	if (m->type == QMP_MSG_EVENT)
		return true;
	if (m->type == QMP_MSG_GREETING)
		return protocol_error(q, "a second greeting", NULL, 0);
	if (qmp_msg_id(m, &id) < 0 || id != q->caps_id)
		return protocol_error(q, "a reply to nothing during the handshake", NULL, 0);
	if (m->type == QMP_MSG_ERROR) {
		char what[256];

		snprintf(what, sizeof(what), "qmp_capabilities refused: %s", m->error_desc);
		return protocol_error(q, what, NULL, 0);
	}
	q->state = ST_READY;
	q->last_connect_error = 0;
	free(q->last_refusal);
	q->last_refusal = NULL;
	log_debug("%s: QMP connected to QEMU %d.%d.%d", q->name, q->version.major, q->version.minor,
		  q->version.micro);
	if (q->cb.connected)
		q->cb.connected(q, q->data);
	return !q->guard.dead;
}

/* One message from the peer; false if the connection or client is gone. */
static bool handle_message(struct qmp *q, json_t *j)
{
	unsigned gen = q->generation;
	struct qmp_msg m;
	const char *why;

	if (qmp_msg_parse(j, &m, &why) < 0)
		return protocol_error(q, why, NULL, 0);
	if (q->state != ST_READY)
		return handle_handshake(q, j, &m) && gen == q->generation;
	switch (m.type) {
	case QMP_MSG_GREETING:
		return protocol_error(q, "a greeting on an established connection", NULL, 0);
	case QMP_MSG_EVENT:
		if (q->cb.event)
			q->cb.event(q, m.event, m.data, q->data);
		break;
	case QMP_MSG_RETURN:
	case QMP_MSG_ERROR:
		if (!handle_reply(q, &m))
			return false;
		break;
	}
	return !q->guard.dead && gen == q->generation;
}

/* Everything the framer holds; false if the connection or client is gone. */
static bool handle_input(struct qmp *q)
{
	for (;;) {
		char error[160] = "";
		const char *raw = NULL;
		size_t raw_len = 0;
		json_t *j = NULL;
		bool alive;
		int r;

		r = qmp_framer_next(q->framer, &j, &raw, &raw_len, error, sizeof(error));
		if (r == 0)
			return true;
		if (r == -EMSGSIZE) {
			snprintf(error, sizeof(error), "a message longer than %u bytes",
				 (unsigned)QMP_MAX_MESSAGE);
			return protocol_error(q, error, NULL, 0);
		}
		if (r < 0) {
			char what[200];

			snprintf(what, sizeof(what), "invalid JSON, %s", error);
			return protocol_error(q, what, raw, raw_len);
		}
		if (trace_on(q))
			trace(q, "<-", raw, raw_len, "");
		alive = handle_message(q, j);
		json_decref(j);
		if (!alive)
			return false;
	}
}

/* Read what the peer sent (one read per wake-up) and handle it. */
static void read_input(struct qmp *q)
{
	char buf[READ_SIZE];

	for (int i = 0; i < READS_PER_WAKEUP; i++) {
		ssize_t n = recv(q->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			const char *reason = n == 0 ? "EOF" : strerror(errno);

			drop(q, reason,
			     n == 0 || errno == ECONNRESET ? RETRY_RESET : RETRY_BACKOFF);
			return;
		}
		qmp_framer_feed(q->framer, buf, (size_t)n);
		if (!handle_input(q))
			return;
		/* Drained: epoll (level-triggered) says when more comes, so
		 * no read is spent on EAGAIN. */
		if ((size_t)n < sizeof(buf))
			return;
	}
}

/* The socket: connect finished, writable, or readable. */
static void on_io(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct qmp *q = data;

	enter(q);
	if (q->state == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		char why[2 * PATH_MAX];

		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err)
			attempt_failed(q, err, NULL);
		else if (!peer_trusted(q, why, sizeof(why)))
			attempt_failed(q, PEER_REFUSED, why);
		else
			start_handshake(q);
		goto out;
	}
	if (revents & EPOLLOUT) {
		int r = flush(q);

		if (r < 0) {
			char reason[128];

			snprintf(reason, sizeof(reason), "write: %s", strerror(-r));
			drop(q, reason, RETRY_BACKOFF);
			goto out;
		}
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_input(q);
out:
	leave(q);
}

/* A deadline passed: the handshake or a command timed out. */
static void on_timeout(struct loop_timer *t, void *data)
{
	struct qmp *q = data;
	uint64_t now = now_usec();
	char reason[200];
	struct cmd *c;

	enter(q);
	if (q->state != ST_DISCONNECTED && q->state != ST_READY && q->handshake_deadline <= now) {
		log_ratelimited(&q->rl, LOG_LEVEL_WARNING,
				"%s: QEMU did not complete the QMP handshake within %.1f s (%s); "
				"reconnecting",
				q->name, (double)q->timeout / USEC_PER_SEC,
				q->state == ST_CONNECTING ? "connect"
				: q->state == ST_GREETING ? "no greeting"
							  : "no reply to qmp_capabilities");
		drop(q, "handshake timed out", RETRY_BACKOFF);
		goto out;
	}
	list_for_each(c, &q->cmds, link) {
		struct qmp_reply r = { .err = -ETIMEDOUT };

		if (c->deadline > now)
			continue;
		snprintf(reason, sizeof(reason), "no reply to '%s' in time", c->name);
		log_warning("%s: QEMU did not answer '%s' in time; dropping the connection",
			    q->name, c->name);
		if (!complete(q, c, &r))
			goto out;
		drop(q, reason, RETRY_BACKOFF);
		goto out;
	}
	rearm_timeout(q);
out:
	leave(q);
}

/* --- inotify on the socket's directory ------------------------------- */

/* The deepest existing directory on the way to q->dir (q->dir itself
 * when it exists). */
static char *nearest_existing(const char *dir)
{
	char *p = xstrdup(dir);
	struct stat st;

	for (;;) {
		char *slash;

		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			return p;
		slash = strrchr(p, '/');
		if (!slash || slash == p) {
			strcpy(p, "/");
			return p;
		}
		*slash = '\0';
	}
}

/* Watch q->dir, or its nearest existing ancestor until it exists. A
 * directory created between looking and watching is caught by looking
 * again once the watch is in place. */
static void unwatch(struct qmp *q)
{
	dirwatch_remove(q->watch);
	q->watch = NULL;
	free(q->watched);
	q->watched = NULL;
}

static void on_dirwatch(struct dirwatch *w, const struct inotify_event *ev, void *data);

/* Watch the socket's directory, or its nearest existing ancestor. */
static void update_watch(struct qmp *q)
{
	for (;;) {
		char *want = nearest_existing(q->dir);

		if (q->watch && streq(want, q->watched)) {
			free(want);
			break;
		}
		unwatch(q);
		q->watch = dirwatch_add(q->loop, want, on_dirwatch, q);
		if (!q->watch) {
			log_ratelimited(&q->rl, LOG_LEVEL_WARNING,
					"%s: cannot watch %s for QEMU's socket: %s; retrying with "
					"backoff",
					q->name, want, strerror(errno));
			free(want);
			return;
		}
		q->watched = want;
	}
	if (!streq(q->watched, q->dir))
		log_debug("%s: %s does not exist yet; watching %s", q->name, q->dir, q->watched);
}

/* Something appeared in the watched directory: maybe the socket. */
static void on_dirwatch(struct dirwatch *w, const struct inotify_event *ev, void *data)
{
	struct qmp *q = data;
	bool ours = false, rewatch = false;

	enter(q);
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		/* The watched directory went away or moved: look again for
		 * the path. */
		unwatch(q);
		rewatch = true;
	} else if (ev->len && !streq(q->watched, q->dir)) {
		rewatch = true; /* something appeared on the way */
	} else if (ev->len && streq(ev->name, q->base)) {
		ours = true;
	}
	if (rewatch) {
		update_watch(q);
		/* The directory may have appeared with the socket in it. */
		ours = q->watch && streq(q->watched, q->dir);
	}
	if (ours && q->state == ST_DISCONNECTED) {
		log_debug("%s: %s appeared", q->name, q->path);
		q->backoff = q->backoff_min;
		attempt(q);
	}
	leave(q);
}

/* --- public ----------------------------------------------------------- */

struct qmp *qmp_new(struct loop *loop, const struct qmp_opts *opts, const struct qmp_callbacks *cb,
		    void *data)
{
	struct sockaddr_un sa;
	const char *env = getenv("VMPLUG_QMP_TRACE");
	struct qmp *q;
	char *slash;

	if (!opts->name || !opts->socket_path || opts->socket_path[0] != '/' ||
	    opts->socket_path[1] == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if (strlen(opts->socket_path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	q = xnew(struct qmp);
	q->fd = -1;
	q->loop = loop;
	q->name = xstrdup(opts->name);
	q->path = xstrdup(opts->socket_path);
	q->peer_uid = opts->peer_uid;
	slash = strrchr(q->path, '/');
	q->dir = slash == q->path ? xstrdup("/") : xstrndup(q->path, (size_t)(slash - q->path));
	q->base = xstrdup(slash + 1);
	if (cb)
		q->cb = *cb;
	q->data = data;
	q->timeout = opts->timeout_usec ? opts->timeout_usec : QMP_DEFAULT_TIMEOUT_USEC;
	q->backoff_min = opts->backoff_min_usec ? opts->backoff_min_usec
						: QMP_DEFAULT_BACKOFF_MIN_USEC;
	q->backoff_max = opts->backoff_max_usec ? opts->backoff_max_usec
						: QMP_DEFAULT_BACKOFF_MAX_USEC;
	if (q->backoff_max < q->backoff_min)
		q->backoff_max = q->backoff_min;
	q->backoff = q->backoff_min;
	q->trace = opts->trace || (env && streq(env, "1"));
	q->next_id = 1;
	q->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
	q->framer = qmp_framer_new(QMP_MAX_MESSAGE);
	list_init(&q->cmds);
	table_resize(q, TABLE_MIN_BITS);
	list_init(&q->out);
	q->timeout_timer = loop_timer_new(loop, on_timeout, q);
	q->retry_timer = loop_timer_new(loop, on_retry, q);
	q->write_error_timer = loop_timer_new(loop, on_write_error, q);

	/* Watch first, then try: a socket created in between is not missed. */
	update_watch(q);
	loop_timer_arm(q->retry_timer, now_usec());
	return q;
}

/* Release the client's memory (qmp_free did the rest). */
static void destroy(struct qmp *q)
{
	loop_timer_free(q->timeout_timer);
	loop_timer_free(q->retry_timer);
	loop_timer_free(q->write_error_timer);
	unwatch(q);
	qmp_framer_free(q->framer);
	free(q->table);
	free(q->name);
	free(q->path);
	free(q->last_refusal);
	free(q->dir);
	free(q->base);
	free(q);
}

void qmp_free(struct qmp *q)
{
	int saved = errno;
	struct cmd *c, *tmp;
	bool destroy_now;

	if (!q || q->guard.dead)
		return;
	destroy_now = guard_kill(&q->guard);
	close_connection(q);
	q->state = ST_DISCONNECTED;
	/* Watch the directory again before any new attempt, so that the
	 * socket appearing between a failed attempt and the watch is not
	 * missed. */
	update_watch(q);
	list_for_each_safe(c, tmp, &q->cmds, link) {
		cmd_forget(q, c);
		cmd_free(c);
	}
	loop_timer_disarm(q->timeout_timer);
	loop_timer_disarm(q->retry_timer);
	if (destroy_now)
		destroy(q);
	errno = saved;
}

bool qmp_is_connected(const struct qmp *q)
{
	return q->state == ST_READY;
}

const struct qmp_version *qmp_version(const struct qmp *q)
{
	return q->state == ST_READY ? &q->version : NULL;
}

const char *qmp_name(const struct qmp *q)
{
	return q->name;
}

int qmp_command(struct qmp *q, const char *command, json_t *args,
		const struct qmp_command_opts *opts, qmp_reply_fn fn, void *data)
{
	uint64_t timeout = opts && opts->timeout_usec ? opts->timeout_usec : q->timeout;
	int fd = -1;
	struct cmd *c;

	if (!command || !*command || (args && !json_is_object(args))) {
		json_decref(args);
		return -EINVAL;
	}
	if (q->state != ST_READY) {
		json_decref(args);
		return -ENOTCONN;
	}
	if (opts && opts->fd >= 0) {
		fd = fcntl(opts->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			json_decref(args);
			return -errno;
		}
	}
	c = xnew(struct cmd);
	c->id = q->next_id++;
	c->name = xstrdup(command);
	c->deadline = now_usec() + timeout;
	c->ret_type = opts ? opts->ret_type : QMP_RET_ANY;
	c->fn = fn;
	c->data = data;
	list_insert_tail(&q->cmds, &c->link);
	table_add(q, c);
	send_message(q, qmp_build_command(command, args, c->id), fd);
	ensure_timeout(q, c->deadline);
	return 0;
}

uint64_t qmp_retry_delay(const struct qmp *q, uint64_t *deadline)
{
	if (!loop_timer_armed(q->retry_timer))
		return 0;
	if (deadline)
		*deadline = q->retry_at;
	return q->retry_delay;
}

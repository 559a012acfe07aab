/* The scripted fake QMP peer (see fake-qmp.h). */
#include "config.h"

#include "tests/lib/fake-qmp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/qmp-int.h"
#include "util/util.h"

#define MAX_IDS 32

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

struct fake_peer {
	struct loop *loop;
	char *path;
	int listen_fd;
	struct loop_source *listen_src;
	int fd;
	struct loop_source *src;
	unsigned connections;

	struct fake_step *steps; /* the script with FAKE_HANDSHAKE expanded */
	size_t n_steps;
	size_t step;
	bool resumed;
	bool conn_used; /* a step used the current connection */
	char *error;

	struct qmp_framer *framer;
	int fds[8]; /* received with messages not yet expected */
	size_t n_fds;
	json_t *last;
	int last_fd;
	json_t *ids[MAX_IDS];
	size_t n_ids;
	unsigned long answered;

	char *out; /* queued for writing, from out_off */
	size_t out_len;
	size_t out_off;
	char *slow; /* FAKE_SEND_SLOW: what is left to dribble */
	size_t slow_off;
	struct loop_timer *slow_timer;
};

static void advance(struct fake_peer *p);

static PRINTF_LIKE(2, 3) void fail(struct fake_peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->error)
		return;
	va_start(ap, fmt);
	if (vasprintf(&p->error, fmt, ap) < 0)
		abort();
	va_end(ap);
}

static void close_conn(struct fake_peer *p)
{
	loop_source_remove(p->src);
	p->src = NULL;
	closep(&p->fd);
	qmp_framer_reset(p->framer);
	for (size_t i = 0; i < p->n_fds; i++)
		closep(&p->fds[i]);
	p->n_fds = 0;
	for (size_t i = 0; i < p->n_ids; i++)
		json_decref(p->ids[i]);
	p->n_ids = 0;
	free(p->out);
	p->out = NULL;
	p->out_len = p->out_off = 0;
	free(p->slow);
	p->slow = NULL;
}

static void flush(struct fake_peer *p)
{
	while (p->out_len > p->out_off) {
		ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			/* The client hung up (e.g. on an oversize message). */
			close_conn(p);
			return;
		}
		p->out_off += (size_t)n;
	}
	if (p->out_off == p->out_len)
		p->out_len = p->out_off = 0;
	loop_source_set_events(p->src, p->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void queue(struct fake_peer *p, const char *text, size_t len)
{
	/* What was sent goes only when it is most of the buffer: a peer
	 * with a lot queued does not move it all for every write. */
	if (p->out_off > p->out_len / 2) {
		memmove(p->out, p->out + p->out_off, p->out_len - p->out_off);
		p->out_len -= p->out_off;
		p->out_off = 0;
	}
	p->out = xrealloc(p->out, p->out_len + len);
	memcpy(p->out + p->out_len, text, len);
	p->out_len += len;
	flush(p);
}

static void read_conn(struct fake_peer *p)
{
	char buf[65536], cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_conn(p);
		return;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t count;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (p->n_fds < ARRAY_SIZE(p->fds))
				p->fds[p->n_fds++] = fd;
			else
				close(fd);
		}
	}
	qmp_framer_feed(p->framer, buf, (size_t)n);
}

static void on_conn(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct fake_peer *p = data;

	if (revents & EPOLLOUT)
		flush(p);
	if (p->fd >= 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		read_conn(p);
	advance(p);
}

static void on_listen(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct fake_peer *p = data;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0)
		return;
	/* A client that reconnects has given up on the old connection. */
	close_conn(p);
	p->fd = c;
	p->conn_used = false;
	p->src = loop_add_fd(p->loop, c, EPOLLIN, on_conn, p);
	p->connections++;
	advance(p);
}

static void on_slow(struct loop_timer *t, void *data)
{
	struct fake_peer *p = data;

	if (p->fd >= 0 && p->slow) {
		queue(p, p->slow + p->slow_off, 1);
		if (p->slow && !p->slow[++p->slow_off]) {
			free(p->slow);
			p->slow = NULL;
			p->step++;
		} else if (p->slow) {
			loop_timer_arm(t, now_usec());
		}
	}
	advance(p);
}

/* arg with $N (N from 1) replaced by the Nth id of this connection. */
static char *substitute(struct fake_peer *p, const char *arg)
{
	size_t len = 0, cap = strlen(arg) + 1;
	char *s = xmalloc(cap);

	for (const char *c = arg; *c; c++) {
		char *id = NULL;

		if (c[0] == '$' && c[1] >= '1' && c[1] <= '9') {
			char *end;
			size_t n = (size_t)strtoul(c + 1, &end, 10) - 1;

			id = n < p->n_ids ? json_dumps(p->ids[n], JSON_ENCODE_ANY)
					  : xstrdup("null");
			c = end - 1;
		}
		if (id) {
			cap += strlen(id);
			s = xrealloc(s, cap);
			memcpy(s + len, id, strlen(id));
			len += strlen(id);
			free(id);
		} else {
			s[len++] = *c;
		}
	}
	s[len] = '\0';
	return s;
}

/* Take the next message for EXPECT; false when none is complete yet. */
static bool expect(struct fake_peer *p, const struct fake_step *st)
{
	json_t *j = NULL, *exec;
	int r = qmp_framer_next(p->framer, &j, NULL, NULL, NULL, 0);

	if (r == 0)
		return false;
	if (r < 0) {
		fail(p, "the client sent bad JSON while %s was expected", st->arg);
		close_conn(p);
		return false;
	}
	exec = json_object_get(j, "execute");
	if (!json_is_string(exec) || !streq(json_string_value(exec), st->arg))
		fail(p, "expected '%s', got '%s'", st->arg,
		     json_is_string(exec) ? json_string_value(exec) : "(no execute)");
	json_decref(p->last);
	p->last = j;
	closep(&p->last_fd);
	if (p->n_fds > 0) {
		p->last_fd = p->fds[0];
		memmove(p->fds, p->fds + 1, (--p->n_fds) * sizeof(int));
	}
	if (st->op == FAKE_EXPECT_FD && p->last_fd < 0)
		fail(p, "'%s' came without a file descriptor", st->arg);
	if (p->n_ids < MAX_IDS)
		p->ids[p->n_ids++] = json_incref(json_object_get(j, "id"));
	return true;
}

/* Send arg (a JSON object) with `id`. */
static void reply_id(struct fake_peer *p, const char *arg, json_t *id)
{
	json_t *j = json_loads(arg, 0, NULL);
	char *text;

	if (!j)
		abort(); /* the script itself is wrong */
	json_object_set(j, "id", id ? id : json_null());
	text = json_dumps(j, JSON_COMPACT);
	queue(p, text, strlen(text));
	queue(p, "\r\n", 2);
	free(text);
	json_decref(j);
}

static void reply(struct fake_peer *p, const char *arg)
{
	reply_id(p, arg, p->n_ids ? p->ids[p->n_ids - 1] : NULL);
}

/* FAKE_ANSWER: every command that came so far. */
static void answer_all(struct fake_peer *p, const char *arg)
{
	json_t *j;
	int r;

	while (p->fd >= 0 && (r = qmp_framer_next(p->framer, &j, NULL, NULL, NULL, 0)) != 0) {
		if (r < 0) {
			fail(p, "the client sent bad JSON");
			close_conn(p);
			return;
		}
		reply_id(p, arg, json_object_get(j, "id"));
		p->answered++;
		json_decref(j);
	}
}

/* Play steps until one has to wait. */
static void advance(struct fake_peer *p)
{
	while (p->step < p->n_steps) {
		const struct fake_step *st = &p->steps[p->step];
		char *text;

		if (st->op == FAKE_PAUSE) {
			if (!p->resumed)
				return;
			p->resumed = false;
			p->step++;
			continue;
		}
		if (p->fd < 0)
			return;
		p->conn_used |= st->op != FAKE_ACCEPT;
		switch (st->op) {
		case FAKE_ACCEPT:
			if (p->conn_used)
				return;
			break;
		case FAKE_GREET:
			queue(p, greeting, strlen(greeting));
			break;
		case FAKE_EXPECT:
		case FAKE_EXPECT_FD:
			if (!expect(p, st))
				return;
			break;
		case FAKE_REPLY:
			reply(p, st->arg);
			break;
		case FAKE_SEND:
			text = substitute(p, st->arg);
			queue(p, text, strlen(text));
			free(text);
			break;
		case FAKE_SEND_SLOW:
			if (!p->slow) {
				p->slow = substitute(p, st->arg);
				p->slow_off = 0;
				loop_timer_arm(p->slow_timer, now_usec());
			}
			return; /* on_slow moves on */
		case FAKE_ANSWER:
			answer_all(p, st->arg);
			return;
		case FAKE_CLOSE:
			if (p->out_len)
				return;
			close_conn(p);
			break;
		case FAKE_END:
		case FAKE_HANDSHAKE:
		case FAKE_PAUSE:
		case FAKE_SILENT: /* marks the connection used, above */
			break;
		}
		p->step++;
	}
}

static void expand(struct fake_peer *p, const struct fake_step *script)
{
	for (const struct fake_step *s = script; s->op != FAKE_END; s++) {
		if (s->op == FAKE_HANDSHAKE) {
			static const struct fake_step hs[] = {
				{ FAKE_ACCEPT, NULL },
				{ FAKE_GREET, NULL },
				{ FAKE_EXPECT, "qmp_capabilities" },
				{ FAKE_REPLY, "{\"return\": {}}" },
			};

			for (size_t i = 0; i < ARRAY_SIZE(hs); i++)
				*(struct fake_step *)xappend(&p->steps, &p->n_steps,
							     sizeof(*p->steps)) = hs[i];
		} else {
			*(struct fake_step *)xappend(&p->steps, &p->n_steps,
						     sizeof(*p->steps)) = *s;
		}
	}
}

struct fake_peer *fake_peer_new(struct loop *loop, const char *path, const struct fake_step *script)
{
	struct fake_peer *p = xnew(struct fake_peer);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	p->loop = loop;
	p->path = xstrdup(path);
	p->fd = p->last_fd = -1;
	p->framer = qmp_framer_new(16 * 1024 * 1024);
	p->slow_timer = loop_timer_new(loop, on_slow, p);
	expand(p, script);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->listen_fd, 4) < 0) {
		perror("fake QMP peer");
		abort();
	}
	p->listen_src = loop_add_fd(loop, p->listen_fd, EPOLLIN, on_listen, p);
	return p;
}

void fake_peer_free(struct fake_peer *p)
{
	if (!p)
		return;
	close_conn(p);
	loop_source_remove(p->listen_src);
	closep(&p->listen_fd);
	unlink(p->path);
	loop_timer_free(p->slow_timer);
	qmp_framer_free(p->framer);
	json_decref(p->last);
	closep(&p->last_fd);
	free(p->steps);
	free(p->error);
	free(p->path);
	free(p);
}

bool fake_peer_done(const struct fake_peer *p)
{
	return p->step == p->n_steps;
}

const char *fake_peer_error(const struct fake_peer *p)
{
	return p->error;
}

unsigned fake_peer_connections(const struct fake_peer *p)
{
	return p->connections;
}

bool fake_peer_connected(const struct fake_peer *p)
{
	return p->fd >= 0;
}

json_t *fake_peer_last(const struct fake_peer *p)
{
	return p->last;
}

int fake_peer_last_fd(const struct fake_peer *p)
{
	return p->last_fd;
}

unsigned long fake_peer_answered(const struct fake_peer *p)
{
	return p->answered;
}

void fake_peer_resume(struct fake_peer *p)
{
	p->resumed = true;
	advance(p);
}

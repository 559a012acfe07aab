/* The control socket's server: listening, clients and their framing
 * (one JSON object per line), peer credentials, replies, events to
 * subscribers, and requests waiting for their answer (see control.h). */
#include "config.h"

#include "control/control.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/control-int.h"
#include "util/log.h"

/* A client that does not read its events is dropped past this. */
#define MAX_OUTPUT (4 * 1024 * 1024)

/* ----------------------------------------------------------------- output */

/* Close now, free later: the client may be in use further up the stack. */
static void client_close(struct control_client *cl)
{
	struct control_waiter *w, *tmp;

	if (cl->dead)
		return;
	cl->dead = true;
	cl->c->n_clients--;
	list_for_each_safe(w, tmp, &cl->c->waiters, link)
		if (w->client == cl)
			control_waiter_free(w);
	loop_source_remove(cl->src);
	cl->src = NULL;
	closep(&cl->fd);
	loop_timer_arm_in(cl->c->reaper, 0);
}

/* Send what the client's buffer holds, as much as its socket takes; wait
 * for EPOLLOUT for the rest. */
static void flush(struct control_client *cl)
{
	while (cl->out_len > 0) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			client_close(cl);
			return;
		}
		memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
		cl->out_len -= (size_t)n;
	}
	if (cl->out_len == 0 && cl->closing) {
		client_close(cl);
		return;
	}
	loop_source_set_events(cl->src, cl->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Queue text (taken) as a line. */
static void queue_line(struct control_client *cl, char *text)
{
	size_t len = strlen(text);

	if (cl->out_len + len + 1 > MAX_OUTPUT) {
		log_warning("control: client pid %d does not read its replies; disconnecting it",
			    (int)cl->pid);
		free(text);
		client_close(cl);
		return;
	}
	if (cl->out_len + len + 1 > cl->out_cap) {
		/* doubled: a client that reads slowly costs O(1) a line, not a
		 * copy of all it has not read yet */
		cl->out_cap = 2 * cl->out_cap > cl->out_len + len + 1 ? 2 * cl->out_cap
								      : cl->out_len + len + 1;
		cl->out = xrealloc(cl->out, cl->out_cap);
	}
	memcpy(cl->out + cl->out_len, text, len);
	cl->out[cl->out_len + len] = '\n';
	cl->out_len += len + 1;
	free(text);
	flush(cl);
}

/* Send obj (taken; NULL when it could not be built) as a line. An answer
 * to a request (answer; id may be NULL) that cannot be built or encoded
 * becomes an error saying so: the client is never left waiting, and
 * vmplugd never crashes on text it was handed. A message no request
 * waits for (the greeting, an event) is then logged and dropped. */
static void send_json(struct control_client *cl, json_t *obj, bool answer, json_t *id)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (cl->dead || cl->closing) {
		free(text);
		return;
	}
	if (!text) {
		json_t *err;

		log_error(
		    "control: %s for client pid %d could not be encoded (a bug in vmplugd); %s",
		    answer ? "the answer" : "a message", (int)cl->pid,
		    answer ? "it gets an error instead" : "dropped");
		if (!answer)
			return;
		err = json_pack("{s:{s:s,s:s}}", "error", "class", "GenericError", "desc",
				"vmplugd could not encode its answer; see its log");
		if (err && id)
			json_object_set(err, "id", id);
		text = err ? json_dumps(err, JSON_COMPACT) : NULL;
		json_decref(err);
		if (!text) {
			client_close(cl); /* out of memory: rather closed than waiting for ever */
			return;
		}
	}
	queue_line(cl, text);
}

void control_reply(struct control_client *cl, json_t *id, json_t *ret)
{
	json_t *obj = json_pack("{s:o}", "return", ret ? ret : json_object());

	if (obj && id)
		json_object_set(obj, "id", id);
	send_json(cl, obj, true, id);
}

void control_reply_error(struct control_client *cl, json_t *id, const char *cls, const char *fmt,
			 ...)
{
	va_list ap;
	char *desc;
	json_t *obj;

	va_start(ap, fmt);
	if (vasprintf(&desc, fmt, ap) < 0)
		abort();
	va_end(ap);
	obj = json_pack("{s:{s:s,s:o}}", "error", "class", cls, "desc", control_json_str(desc));
	if (obj && id)
		json_object_set(obj, "id", id);
	free(desc);
	send_json(cl, obj, true, id);
}

/* An event's timestamp, as QMP gives it: wall-clock seconds and microseconds. */
static json_t *timestamp(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec, "microseconds",
			 (json_int_t)(ts.tv_nsec / 1000));
}

void control_emit(struct control *c, const char *event, json_t *data)
{
	struct control_client *cl, *tmp;

	if (!c) {
		json_decref(data);
		return;
	}
	list_for_each_safe(cl, tmp, &c->clients, link) {
		json_t *obj;

		if (!cl->subscribed || cl->closing)
			continue;
		obj = json_pack("{s:s,s:O,s:o}", "event", event, "data", data ? data : json_null(),
				"timestamp", timestamp());
		send_json(cl, obj, false, NULL);
	}
	json_decref(data);
}

void control_log_request(const struct control_call *call, const char *what)
{
	log_info("control: uid %u pid %d: %s", (unsigned)call->cl->uid, (int)call->cl->pid, what);
}

/* ---------------------------------------------------------------- waiters */

void control_waiter_free(struct control_waiter *w)
{
	w->c->n_waiting--;
	w->client->n_waiting--;
	list_remove(&w->link);
	loop_timer_free(w->timer);
	json_decref(w->id);
	free(w->vm);
	free(w->usb_id);
	free(w->port);
	json_decref(w->found);
	free(w->found_syspath);
	free(w);
}

/* A waiter's time is up: it answers the way its request wants. */
static void on_waiter_timeout(struct loop_timer *t, void *data)
{
	struct control_waiter *w = data;

	/* Off the list first: answering may close the client, which frees
	 * the waiters still on it. */
	list_remove(&w->link);
	w->expired(w);
	control_waiter_free(w);
}

bool control_may_wait(const struct control_call *call)
{
	if (call->cl->n_waiting >= CONTROL_MAX_WAITING_PER_CLIENT) {
		control_reply_error(call->cl, call->id, "TooManyRequests",
				    "%d requests of this client wait for their answer already; "
				    "wait for one of them first",
				    CONTROL_MAX_WAITING_PER_CLIENT);
		return false;
	}
	if (call->c->n_waiting >= CONTROL_MAX_WAITING) {
		control_reply_error(call->cl, call->id, "TooManyRequests",
				    "%d requests wait for their answer already; try again later",
				    CONTROL_MAX_WAITING);
		return false;
	}
	return true;
}

struct control_waiter *control_waiter_new(const struct control_call *call, enum control_wait kind,
					  uint64_t usec, void (*expired)(struct control_waiter *w))
{
	struct control_waiter *w = xnew(struct control_waiter);

	call->c->n_waiting++;
	call->cl->n_waiting++;

	w->c = call->c;
	w->client = call->cl;
	w->id = call->id ? json_incref(call->id) : NULL;
	w->kind = kind;
	w->expired = expired;
	w->timer = loop_timer_new(call->c->loop, on_waiter_timeout, w);
	loop_timer_arm_in(w->timer, usec);
	list_insert_tail(&call->c->waiters, &w->link);
	return w;
}

/* --------------------------------------------------------------- requests */

int control_request_parse(const char *line, size_t len, struct control_request *out, char **error)
{
	json_error_t jerr;
	json_t *req, *exec, *args;

	memset(out, 0, sizeof(*out));
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		*error = xasprintf("invalid JSON: %s (column %d)", jerr.text, jerr.column);
		return -EINVAL;
	}
	out->root = req;
	if (!json_is_object(req)) {
		*error = xstrdup("a request must be a JSON object");
		return -EINVAL;
	}
	out->id = json_object_get(req, "id");
	exec = json_object_get(req, "execute");
	if (!json_is_string(exec)) {
		*error = xstrdup("a request needs \"execute\": \"COMMAND\" (a string)");
		return -EINVAL;
	}
	args = json_object_get(req, "arguments");
	if (args && !json_is_object(args)) {
		*error = xstrdup("\"arguments\" must be an object");
		return -EINVAL;
	}
	out->command = json_string_value(exec);
	out->args = args;
	return 0;
}

void control_request_clear(struct control_request *rq)
{
	json_decref(rq->root);
	memset(rq, 0, sizeof(*rq));
}

/* One request line: parse it and run its command, or answer why not. */
static void handle_line(struct control_client *cl, const char *line, size_t len)
{
	struct control_request req;
	struct control_call call = { .c = cl->c, .cl = cl };
	char *error = NULL;

	if (control_request_parse(line, len, &req, &error) < 0) {
		control_reply_error(cl, req.id, "GenericError", "%s", error);
		free(error);
		control_request_clear(&req);
		return;
	}
	call.id = req.id;
	call.args = req.args ? req.args : json_object();
	if (!control_command_run(&call, req.command))
		control_reply_error(cl, req.id, "CommandNotFound",
				    "The command %s has not been found", req.command);
	if (!req.args)
		json_decref(call.args);
	control_request_clear(&req);
}

/* ---------------------------------------------------------------- clients */

/* Close (if still open) and free, dropping its waiters. */
static void client_free(struct control_client *cl)
{
	client_close(cl);
	list_remove(&cl->link);
	free(cl->in);
	free(cl->out);
	free(cl);
}

/* Free the clients closed since the last pass (never inside a callback
 * chain that may still use them). */
static void on_reap(struct loop_timer *t, void *data)
{
	struct control *c = data;
	struct control_client *cl, *tmp;

	list_for_each_safe(cl, tmp, &c->clients, link)
		if (cl->dead)
			client_free(cl);
}

/* Handle every complete line in the buffer. */
static void process_input(struct control_client *cl)
{
	size_t start = 0;

	while (!cl->dead) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (cl->in + start));
		if (cl->discarding) {
			cl->discarding = false;
		} else if (len > CONTROL_MAX_REQUEST) {
			control_reply_error(cl, NULL, "GenericError",
					    "request too large: over %d bytes; it is ignored",
					    CONTROL_MAX_REQUEST);
		} else {
			size_t l = len;

			while (l && (cl->in[start + l - 1] == '\r'))
				l--;
			if (l)
				handle_line(cl, cl->in + start, l);
		}
		start += len + 1;
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CONTROL_MAX_REQUEST) {
		if (!cl->discarding)
			control_reply_error(cl, NULL, "GenericError",
					    "request too large: over %d bytes; it is ignored",
					    CONTROL_MAX_REQUEST);
		cl->discarding = true;
		cl->in_len = 0;
	}
}

/* The client's socket is readable or writable again. */
static void on_client(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct control_client *cl = data;
	char buf[8192];
	ssize_t n;

	if (revents & EPOLLOUT) {
		flush(cl);
		if (cl->dead || !(revents & EPOLLIN))
			return;
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(cl);
		return;
	}
	if (n < 0 || cl->closing)
		return; /* a client being closed (refused, or told why) is not heard */
	cl->in = xrealloc(cl->in, cl->in_len + (size_t)n + 1);
	memcpy(cl->in + cl->in_len, buf, (size_t)n);
	cl->in_len += (size_t)n;
	process_input(cl);
}

/* ------------------------------------------------------------ credentials */

/* Is gid among the peer's supplementary groups as they were when it
 * connected (SO_PEERGROUPS)? -ENOPROTOOPT on kernels before 4.13. */
static int peer_in_group(int fd, gid_t gid)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	int r = 0;

	for (;;) {
		socklen_t cap = len;

		groups = xrealloc(groups, cap);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		if (errno != ERANGE || len <= cap) {
			r = -errno;
			goto out;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			r = 1;
out:
	free(groups);
	return r;
}

/* root, or a member of the control group (primary or supplementary). */
static bool allowed(struct control *c, int fd, const struct ucred *cred)
{
	char *path, *line = NULL;
	size_t cap = 0;
	bool ok = false;
	FILE *f;
	int r;

	if (cred->uid == 0)
		return true;
	if (!c->have_gid)
		return false;
	if (cred->gid == c->gid)
		return true;
	/* The groups the peer had when it connected: /proc/PID would show
	 * whatever process has that pid by the time it is read. */
	r = peer_in_group(fd, c->gid);
	if (r >= 0)
		return r == 1;
	path = xasprintf("/proc/%d/status", (int)cred->pid);
	f = fopen(path, "re");
	free(path);
	if (!f)
		return false;
	while (!ok && getline(&line, &cap, f) > 0) {
		char **groups;

		if (!startswith(line, "Groups:"))
			continue;
		groups = strv_split(line + 7, " \t\n");
		for (size_t i = 0; groups[i] && !ok; i++) {
			unsigned long g;

			ok = parse_uint(groups[i], 10, ~0UL, &g) == 0 && g == c->gid;
		}
		strv_free(groups);
	}
	free(line);
	fclose(f);
	return ok;
}

void control_client_add(struct control *c, int fd, const struct ucred *cred)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	struct control_client *cl = xnew(struct control_client);

	cl->c = c;
	cl->fd = fd;
	cl->uid = cred->uid;
	cl->pid = cred->pid;
	c->n_clients++;
	list_insert_tail(&c->clients, &cl->link);
	cl->src = loop_add_fd(c->loop, fd, EPOLLIN, on_client, cl);
	if (!cl->src) {
		client_close(cl);
		return;
	}
	if (!allowed(c, fd, cred)) {
		log_ratelimited(&rl, LOG_LEVEL_WARNING,
				"control: refused uid %u pid %d: not root and not in group %s",
				(unsigned)cred->uid, (int)cred->pid,
				c->group ? c->group : "(none)");
		control_reply_error(cl, NULL, "PermissionDenied",
				    "uid %u may not use vmplugd: only root%s%s may",
				    (unsigned)cred->uid, c->group ? " and members of group " : "",
				    c->group ? c->group : "");
		cl->closing = true;
		flush(cl);
		return;
	}
	/* root is never turned away: whoever fills the slots, the
	 * administrator can still see and steer */
	if (cred->uid != 0 && c->n_clients > CONTROL_MAX_CLIENTS) {
		log_ratelimited(&rl, LOG_LEVEL_WARNING,
				"control: refused uid %u pid %d: %d clients connected already",
				(unsigned)cred->uid, (int)cred->pid, CONTROL_MAX_CLIENTS);
		control_reply_error(cl, NULL, "TooManyClients",
				    "vmplugd serves %d clients at once; try again later",
				    CONTROL_MAX_CLIENTS);
		cl->closing = true;
		flush(cl);
		return;
	}
	send_json(cl, json_pack("{s:{s:s}}", "vmplug", "version", PACKAGE_VERSION), false, NULL);
}

/* The listening socket listens again after a pause (see on_accept). */
static void on_accept_pause_end(struct loop_timer *t, void *data)
{
	struct control *c = data;

	loop_source_set_events(c->src, EPOLLIN);
}

/* A new client on the listening socket. */
static void on_accept(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 1);
	/* nobody until the kernel says who it is */
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	struct control *c = data;
	socklen_t len = sizeof(cred);
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* the client stays queued; accepting again at once would
			 * only fail again, as fast as the loop can spin */
			log_ratelimited(&rl, LOG_LEVEL_WARNING,
					"control: cannot accept a client: %s; trying again in a "
					"second",
					strerror(errno));
			loop_source_set_events(c->src, 0);
			loop_timer_arm_in(c->accept_pause, USEC_PER_SEC);
		}
		return;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		log_warning("control: a client whose credentials cannot be read is refused: %s",
			    strerror(errno));
		close(cfd);
		return;
	}
	control_client_add(c, cfd, &cred);
}

/* ---------------------------------------------------------------- set-up */

/* What a file of this mode is, for an error message. */
static const char *file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "not a socket";
}

/* A listening socket at path, mode 0600, or 0660 and group gid when
 * have_gid: the fd, or -errno. A socket file left by a vmplugd that died
 * is replaced; one that answers belongs to a running vmplugd
 * (-EADDRINUSE); anything else there is left alone (-EEXIST, logged).
 * The mode and owner are set before listen(): until then a connect() is
 * refused, so nobody connects through a looser mode. *bound says which
 * file is ours. */
static int listen_on(const char *path, bool have_gid, gid_t gid, struct stat *bound)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old_mask;
	int fd, r;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error(
			    "control: %s is %s, not a socket: refusing to replace it (move it "
			    "away, or set control-socket to another path)",
			    path, file_kind(st.st_mode));
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			r = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
			close(fd);
			if (r == 0)
				return -EADDRINUSE;
		}
		unlink(path);
	} else if (errno != ENOENT) {
		return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Born 0600: never, even before the chmod, open to others. */
	old_mask = umask(0177);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (r < 0)
		goto fail;
	if (chmod(path, have_gid ? 0660 : 0600) < 0 ||
	    (have_gid && chown(path, 0, gid) < 0 && geteuid() == 0))
		goto fail_bound;
	if (lstat(path, bound) < 0 || listen(fd, 16) < 0)
		goto fail_bound;
	return fd;
fail_bound:
	r = -errno;
	unlink(path);
	close(fd);
	return r;
fail:
	r = -errno;
	close(fd);
	return r;
}

struct control *control_new(struct loop *loop, const char *path, const char *group,
			    const struct control_ops *ops, void *data)
{
	struct control *c = xnew(struct control);
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int r;

	c->loop = loop;
	c->ops = ops;
	c->data = data;
	c->fd = -1;
	c->path = xstrdup(path);
	c->group = group ? xstrdup(group) : NULL;
	c->reaper = loop_timer_new(loop, on_reap, c);
	c->accept_pause = loop_timer_new(loop, on_accept_pause_end, c);
	list_init(&c->clients);
	list_init(&c->waiters);
	list_init(&c->questions);
	c->closed = xcalloc(CONTROL_CLOSED_KEPT, sizeof(*c->closed));
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir, 0755);
	}
	free(dir);
	if (group) {
		struct group *g = getgrnam(group);

		if (g) {
			c->gid = g->gr_gid;
			c->have_gid = true;
		} else {
			log_warning("control: group '%s' (control-group) does not exist; only root "
				    "may use %s",
				    group, path);
		}
	}
	r = listen_on(path, c->have_gid, c->gid, &c->bound);
	if (r < 0) {
		control_free(c);
		errno = -r;
		return NULL;
	}
	c->fd = r;
	c->src = loop_add_fd(loop, c->fd, EPOLLIN, on_accept, c);
	if (!c->src) {
		r = errno;
		control_free(c);
		errno = r;
		return NULL;
	}
	log_info("control: listening on %s", path);
	return c;
}

void control_free(struct control *c)
{
	struct control_client *cl, *tmp;

	if (!c)
		return;
	list_for_each_safe(cl, tmp, &c->clients, link)
		client_free(cl);
	control_unclaimed_free_all(c);
	loop_timer_free(c->reaper);
	loop_timer_free(c->accept_pause);
	loop_source_remove(c->src);
	if (c->fd >= 0) {
		struct stat st;

		closep(&c->fd);
		/* only the socket we made: not what replaced it since */
		if (lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == c->bound.st_dev && st.st_ino == c->bound.st_ino)
			unlink(c->path);
	}
	free(c->path);
	free(c->group);
	free(c);
}

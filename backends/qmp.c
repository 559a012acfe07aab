/* The QMP backend: USB through usb-host and input through input-linux on a
 * standalone QEMU, over the client in qmp/.
 *
 * How QEMU's answers map to completions (QEMU 7.2 texts); every one is
 * reported, none is tried again here (the reconciler decides):
 * - "failed to find host usb device B:A" (address mode; right after a
 *   plug, QEMU's libusb may not have seen the device yet) and
 *   DeviceNotFound complete with -ENODEV;
 * - "Duplicate device ID 'x'" and object-add's "attempt to add duplicate
 *   property 'x' ..." complete with -EEXIST;
 * - DeviceNotFound completes a detach successfully (already gone), and an
 *   object-del refused for an object that /objects does not list too;
 * - any other refusal completes with -EIO; msg is always QEMU's "desc".
 * A detach completes when DEVICE_DELETED arrives (-ETIMEDOUT after
 * BACKEND_QMP_DELETE_TIMEOUT_USEC without it). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/base.h"
#include "backends/qmp-int.h"
#include "qmp/qmp.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

#define ID_MAX 128

#define PERIPHERAL "/machine/peripheral"
#define OBJECTS "/objects"

extern const struct backend_ops backend_qmp_ops;

static uint64_t delete_timeout_usec = BACKEND_QMP_DELETE_TIMEOUT_USEC;
static uint64_t loading_poll_usec = BACKEND_QMP_LOADING_POLL_USEC;

void backend_qmp_set_delete_timeout(uint64_t usec)
{
	delete_timeout_usec = usec ? usec : BACKEND_QMP_DELETE_TIMEOUT_USEC;
}

void backend_qmp_set_loading_poll(uint64_t usec)
{
	loading_poll_usec = usec ? usec : BACKEND_QMP_LOADING_POLL_USEC;
}

enum op_kind {
	OP_USB_ATTACH,
	OP_USB_DETACH,
	OP_INPUT_ATTACH,
	OP_INPUT_DETACH,
	OP_LIST,
	OP_FDSET_CLEANUP, /* internal: no caller waits for it */
	OP_REDIR_ATTACH,
	OP_REDIR_DETACH,
	OP_CHARDEV_CLEANUP, /* internal: no caller waits for it */
};

/* The property a list's qom-get fetches. */
enum prop {
	PROP_HOSTBUS,
	PROP_HOSTADDR,
	PROP_HOSTPORT,
	PROP_ATTACHED,
	PROP_EVDEV,
};

static const char *const prop_names[] = {
	[PROP_HOSTBUS] = "hostbus",   [PROP_HOSTADDR] = "hostaddr", [PROP_HOSTPORT] = "hostport",
	[PROP_ATTACHED] = "attached", [PROP_EVDEV] = "evdev",
};

struct qmpb;

/* One qom-get of a list, owned by its op. */
struct get {
	struct list link;
	struct op *op;
	size_t item;
	enum prop prop;
};

struct op {
	struct backend_op base;
	struct qmpb *b;
	enum op_kind kind;
	char *id;
	unsigned inflight; /* QMP commands sent for this op and not answered */
	struct loop_timer *timer;

	/* usb attach */
	json_t *args; /* fd mode: device_add's arguments, sent once add-fd answered */
	int fdset;    /* fd mode: the fdset add-fd created, -1 before */

	/* usb detach: device_del answered / DEVICE_DELETED seen */
	bool acked;
	bool deleted;

	/* input detach: QEMU's words when object-del was refused */
	char *refusal;

	/* list */
	struct backend_list *list;
	json_t *chardevs; /* query-chardev's answer, merged when the list settles */
	bool chardevs_asked;
	struct list gets;
	char **vanished; /* ids that went away while being listed */
	int err;
};

struct qmpb {
	struct backend_base base;
	const struct conf_vm *vm;
	struct loop *loop;
	struct qmp *qmp;
	bool up;
	/* Connected, but QEMU is still loading the VM (see on_status). */
	bool loading;
	bool asking; /* a query-status is in flight */
	struct loop_timer *status_timer;
	/* A guest can send events in a loop (a reset loop): their log
	 * lines are rate-limited. */
	struct log_ratelimit rl;
	/* A list past BACKEND_LIST_MAX was said, on this connection. */
	bool said_capped;
};

/* The QMP backend behind the interface's handle. */
static struct qmpb *from(const struct backend_vm *b)
{
	return container_of(b, struct qmpb, base.vm);
}

/* --- ops --------------------------------------------------------------- */

static void on_delete_timeout(struct loop_timer *t, void *data);

/* An operation for a caller (or none: fdset cleanup), pending from now. */
static struct op *op_new(struct qmpb *b, enum op_kind kind, const char *id, backend_done_fn done,
			 backend_list_fn list_done, void *data)
{
	struct op *op = xnew(struct op);

	op->b = b;
	op->kind = kind;
	op->id = id ? xstrdup(id) : NULL;
	op->fdset = -1;
	list_init(&op->gets);
	backend_op_add(&b->base, &op->base, done, list_done, data);
	return op;
}

/* The backend_base's op_free: what an op owns. */
static void op_release(struct backend_op *bop)
{
	struct op *op = container_of(bop, struct op, base);
	struct get *g, *tmp;

	loop_timer_free(op->timer);
	json_decref(op->args);
	json_decref(op->chardevs);
	backend_list_free(op->list);
	list_for_each_safe(g, tmp, &op->gets, link) {
		list_remove(&g->link);
		free(g);
	}
	strv_free(op->vanished);
	free(op->refusal);
	free(op->id);
	free(op);
}

/* Complete op (a list with what it gathered) and free it. */
static void finish(struct op *op, int err, const char *msg)
{
	backend_op_finish(&op->b->base, &op->base, err, msg, op->list);
}

/* Free op, which nobody is told about. */
static void drop(struct op *op)
{
	backend_op_drop(&op->b->base, &op->base);
}

/* Send a command on behalf of op; the reply goes to fn with op. */
/* How long QEMU may take to answer command: device_add and device_del of
 * a usb-host device run USB transfers in QEMU's main loop, and the kernel
 * gives up on one to a slow or vanishing device only after 5 s, so a QEMU
 * that answers them late is busy, not dead. Other commands: the client's
 * default. */
static uint64_t command_timeout(const char *command)
{
	if (streq(command, "device_add") || streq(command, "device_del"))
		return BACKEND_QMP_HOTPLUG_TIMEOUT_USEC;
	return 0;
}

static int send_cmd(struct op *op, const char *command, json_t *args, enum qmp_ret_type ret_type,
		    int fd, qmp_reply_fn fn, void *data)
{
	struct qmp_command_opts opts = { .timeout_usec = command_timeout(command),
					 .ret_type = ret_type,
					 .fd = fd };
	int r = qmp_command(op->b->qmp, command, args, &opts, fn, data ? data : op);

	if (r == 0)
		op->inflight++;
	return r;
}

/* Start an operation with its first command: 0, or -errno and nothing
 * was started. */
static int start_op(struct qmpb *b, enum op_kind kind, const char *id, backend_done_fn done,
		    void *data, const char *command, json_t *args, qmp_reply_fn fn)
{
	struct op *op = op_new(b, kind, id, done, NULL, data);
	int r = send_cmd(op, command, args, QMP_RET_ANY, -1, fn, NULL);

	if (r < 0)
		drop(op);
	return r;
}

/* QEMU's refusal as an errno (see the top of this file). */
static int refusal_errno(const struct qmp_reply *r)
{
	if (r->err != -EREMOTEIO)
		return r->err;
	if (streq(r->error_class, "DeviceNotFound"))
		return -ENODEV;
	if (startswith(r->error_desc, "failed to find host usb device "))
		return -ENODEV;
	if (startswith(r->error_desc, "Duplicate device ID ") ||
	    startswith(r->error_desc, "attempt to add duplicate property "))
		return -EEXIST;
	if (startswith(r->error_desc, "Chardev with id ") &&
	    strstr(r->error_desc, "already exists"))
		return -EEXIST;
	return -EIO;
}

/* Complete op with QEMU's answer to its last command. */
static void finish_reply(struct op *op, const struct qmp_reply *r)
{
	finish(op, r->err ? refusal_errno(r) : 0, r->err == -EREMOTEIO ? r->error_desc : NULL);
}

/* QEMU ids: a letter first, then letters, digits, '-', '.', '_'; vmplug's
 * always start with the prefix, so nothing else is ever touched. */
static bool valid_id(const char *id)
{
	size_t n;

	if (!id || !startswith(id, BACKEND_ID_PREFIX))
		return false;
	n = strlen(id);
	if (n >= ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* A hostport as sysfs names it: "10.2", port numbers and dots. Without it
 * usb-host would take any device on the bus, so nothing else goes out. */
static bool valid_hostport(const char *port)
{
	size_t n = port ? strlen(port) : 0;

	if (n == 0 || n > 32 || port[0] == '.' || port[n - 1] == '.' || strstr(port, ".."))
		return false;
	return strspn(port, "0123456789.") == n;
}

/* Commands may be sent: vm_up was told and the client is connected. */
static bool is_up(const struct qmpb *b)
{
	return b->up && qmp_is_connected(b->qmp);
}

/* --- fdsets ------------------------------------------------------------ */

/* remove-fd answered: the cleanup is over once every fdset is. */
static void on_fdset_removed(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err == -EREMOTEIO)
		log_warning("vm %s: QEMU refused to remove fdset %d of %s: %s", b->vm->name,
			    op->fdset, op->id, r->error_desc);
	if (op->inflight == 0)
		finish(op, 0, NULL);
	backend_base_leave(&b->base);
}

/* Ask QEMU to drop an fdset of ours (its fd closes with it). */
static void remove_fdset(struct op *op, int fdset)
{
	json_t *args = json_pack("{s:i}", "fdset-id", fdset);

	op->fdset = fdset;
	send_cmd(op, "remove-fd", args, QMP_RET_ANY, -1, on_fdset_removed, NULL);
}

/* Does any fd of this fdset (from query-fdsets) carry opaque == id? */
static bool fdset_is_ours(json_t *set, const char *id)
{
	json_t *fds = json_object_get(set, "fds"), *fd;
	size_t i;

	json_array_foreach(fds, i, fd) {
		json_t *opaque = json_object_get(fd, "opaque");

		if (json_is_string(opaque) && streq(json_string_value(opaque), id))
			return true;
	}
	return false;
}

/* query-fdsets answered: remove the fdsets tagged with the op's id. */
static void on_fdsets(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;
	json_t *set;
	size_t i;

	backend_base_enter(&b->base);
	op->inflight--;
	json_array_foreach(r->ret, i, set) {
		json_t *fdset = json_object_get(set, "fdset-id");

		if (json_is_integer(fdset) && json_integer_value(fdset) >= 0 &&
		    json_integer_value(fdset) <= INT32_MAX && fdset_is_ours(set, op->id))
			remove_fdset(op, (int)json_integer_value(fdset));
	}
	if (op->inflight == 0)
		finish(op, 0, NULL);
	backend_base_leave(&b->base);
}

/* Remove the fdsets add-fd made for `id` (their fds carry it as opaque),
 * whatever vmplug process made them. Nobody waits for this. The query is
 * sent now, before the caller learns the id is free, so it cannot see
 * the fdset of a new device that reuses the id. */
static void cleanup_fdsets(struct qmpb *b, const char *id, int known)
{
	struct op *op = op_new(b, OP_FDSET_CLEANUP, id, NULL, NULL, NULL);

	if (known >= 0)
		remove_fdset(op, known);
	else
		send_cmd(op, "query-fdsets", NULL, QMP_RET_ARRAY, -1, on_fdsets, NULL);
	if (op->inflight == 0)
		drop(op);
}

/* --- USB attach -------------------------------------------------------- */

/* device_add answered: the attach is over either way. */
static void on_device_add(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err && op->fdset >= 0)
		cleanup_fdsets(b, op->id, op->fdset);
	if (r->err)
		log_debug("vm %s: device_add %s failed: %s", b->vm->name, op->id,
			  r->error_desc ? r->error_desc : strerror(-r->err));
	finish_reply(op, r);
	backend_base_leave(&b->base);
}

/* add-fd answered (fd mode): the device node is QEMU's, device_add it. */
static void on_add_fd(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;
	json_t *fdset;
	char *path;
	int err;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err) {
		finish_reply(op, r);
		goto out;
	}
	fdset = json_object_get(r->ret, "fdset-id");
	if (!json_is_integer(fdset) || json_integer_value(fdset) < 0 ||
	    json_integer_value(fdset) > INT32_MAX) {
		log_warning("vm %s: QEMU's add-fd reply has no valid \"fdset-id\"", b->vm->name);
		cleanup_fdsets(b, op->id, -1);
		finish(op, -EPROTO, NULL);
		goto out;
	}
	op->fdset = (int)json_integer_value(fdset);
	path = xasprintf("/dev/fdset/%d", op->fdset);
	json_object_set_new(op->args, "hostdevice", json_string(path));
	free(path);
	err = send_cmd(op, "device_add", json_incref(op->args), QMP_RET_ANY, -1, on_device_add,
		       NULL);
	if (err < 0)
		finish(op, err, NULL);
out:
	backend_base_leave(&b->base);
}

/* backend_ops.usb_attach: device_add usb-host (after add-fd in fd mode). */
static int qmpb_usb_attach(struct backend_vm *bv, const struct backend_usb_dev *dev,
			   backend_done_fn done, void *data)
{
	struct qmpb *b = from(bv);
	json_t *args;
	struct op *op;
	int fd = -1, r;

	if (!is_up(b))
		return -ENOTCONN;
	if (!valid_id(dev->id) || dev->bus == 0 ||
	    (dev->mode == CONF_ATTACH_PORT && !valid_hostport(dev->port)) ||
	    (dev->mode == CONF_ATTACH_FD && !dev->devnode) ||
	    (dev->mode != CONF_ATTACH_PORT && dev->addr == 0))
		return -EINVAL;
	args = json_pack("{s:s, s:s, s:i}", "driver", "usb-host", "id", dev->id, "hostbus",
			 (int)dev->bus);
	if (b->vm->usb_bus)
		json_object_set_new(args, "bus", json_string(b->vm->usb_bus));
	if (dev->mode == CONF_ATTACH_PORT)
		json_object_set_new(args, "hostport", json_string(dev->port));
	else
		/* Also in fd mode, where QEMU opens hostdevice and only keeps
		 * these, so list() can report which device it is. */
		json_object_set_new(args, "hostaddr", json_integer(dev->addr));
	if (dev->mode == CONF_ATTACH_FD) {
		/* Read-write: QEMU refuses a read-only fd from an fdset. */
		fd = open(dev->devnode, O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			r = -errno;
			log_debug("vm %s: %s: cannot open %s: %s", b->vm->name, dev->id,
				  dev->devnode, strerror(errno));
			json_decref(args);
			return r;
		}
	}
	op = op_new(b, OP_USB_ATTACH, dev->id, done, NULL, data);
	if (fd >= 0) {
		/* QEMU picks a free fdset (naming one would add to it if it
		 * exists); the opaque tag finds it again after a restart. */
		op->args = args;
		r = send_cmd(op, "add-fd", json_pack("{s:s}", "opaque", dev->id), QMP_RET_OBJECT,
			     fd, on_add_fd, NULL);
		closep(&fd);
	} else {
		r = send_cmd(op, "device_add", args, QMP_RET_ANY, -1, on_device_add, NULL);
	}
	if (r < 0)
		drop(op);
	return r;
}

/* --- USB detach -------------------------------------------------------- */

static void redir_detached(struct op *op);

/* The device is gone from QEMU: its fdsets go too (a usb-redir slot's
 * chardev), and the id is free. */
static void detached(struct op *op)
{
	if (op->kind == OP_REDIR_DETACH) {
		redir_detached(op);
		return;
	}
	cleanup_fdsets(op->b, op->id, -1);
	finish(op, 0, NULL);
}

/* device_del answered: done once DEVICE_DELETED came too. */
static void on_device_del(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err == -EREMOTEIO && streq(r->error_class, "DeviceNotFound")) {
		detached(op);
	} else if (r->err) {
		finish_reply(op, r);
	} else if (op->deleted) {
		detached(op);
	} else {
		op->acked = true;
		op->timer = loop_timer_new(b->loop, on_delete_timeout, op);
		loop_timer_arm_in(op->timer, delete_timeout_usec);
	}
	backend_base_leave(&b->base);
}

/* usb_detach and input_detach: `command` with {"id": id}. */
static int detach(struct backend_vm *bv, enum op_kind kind, const char *id, const char *command,
		  qmp_reply_fn fn, backend_done_fn done, void *data)
{
	struct qmpb *b = from(bv);

	if (!is_up(b))
		return -ENOTCONN;
	if (!valid_id(id))
		return -EINVAL;
	return start_op(b, kind, id, done, data, command, json_pack("{s:s}", "id", id), fn);
}

/* backend_ops.usb_detach: device_del, then DEVICE_DELETED. */
static int qmpb_usb_detach(struct backend_vm *bv, const char *id, backend_done_fn done, void *data)
{
	return detach(bv, OP_USB_DETACH, id, "device_del", on_device_del, done, data);
}

/* DEVICE_DELETED: a detach waiting for it, or a device removed by someone else. */
static void device_deleted(struct qmpb *b, const char *id)
{
	struct op *op;

	list_for_each(op, &b->base.ops, base.link) {
		if ((op->kind != OP_USB_DETACH && op->kind != OP_REDIR_DETACH) || op->deleted ||
		    !streq(op->id, id))
			continue;
		op->deleted = true;
		if (op->acked)
			detached(op);
		return;
	}
	if (!startswith(id, BACKEND_ID_PREFIX))
		return;
	log_ratelimited(&b->rl, LOG_LEVEL_INFO, "vm %s: %s was removed from QEMU by someone else",
			b->vm->name, id);
	if (b->base.events->item_gone)
		b->base.events->item_gone(b->base.data, id);
}

/* --- usb-redir slots --------------------------------------------------- */

/* chardev-remove answered: the slot is gone once its chardev is (QEMU
 * 7.2 removes a hot-added chardev with its usb-redir device, so "not
 * found" is the usual answer). */
static void on_chardev_remove(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err == -EREMOTEIO && strstr(r->error_desc, "not found"))
		finish(op, 0, NULL);
	else if (op->kind == OP_CHARDEV_CLEANUP && r->err)
		finish(op, 0, NULL); /* nobody waits; said at debug level */
	else
		finish_reply(op, r);
	if (r->err == -EREMOTEIO && !strstr(r->error_desc, "not found"))
		log_debug("vm %s: chardev-remove %s: %s", b->vm->name, op->id, r->error_desc);
	backend_base_leave(&b->base);
}

/* Send chardev-remove for op's id; false if it could not be sent. */
static bool send_chardev_remove(struct op *op)
{
	return send_cmd(op, "chardev-remove", json_pack("{s:s}", "id", op->id), QMP_RET_ANY, -1,
			on_chardev_remove, NULL) == 0;
}

/* The slot's device is gone: its chardev goes too. */
static void redir_detached(struct op *op)
{
	if (!send_chardev_remove(op))
		finish(op, -ENOTCONN, NULL);
}

/* A device_add of a slot failed: its chardev must not stay behind. */
static void cleanup_chardev(struct qmpb *b, const char *id)
{
	struct op *op = op_new(b, OP_CHARDEV_CLEANUP, id, NULL, NULL, NULL);

	if (!send_chardev_remove(op))
		drop(op);
}

/* device_add usb-redir answered: the slot is there, or its chardev goes. */
static void on_redir_device_add(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err) {
		log_debug("vm %s: device_add usb-redir %s failed: %s", b->vm->name, op->id,
			  r->error_desc ? r->error_desc : strerror(-r->err));
		if (r->err == -EREMOTEIO)
			cleanup_chardev(b, op->id);
	}
	finish_reply(op, r);
	backend_base_leave(&b->base);
}

/* chardev-add answered: the socket listens; the device goes on it. */
static void on_chardev_add(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;
	int err;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err) {
		log_debug("vm %s: chardev-add %s failed: %s", b->vm->name, op->id,
			  r->error_desc ? r->error_desc : strerror(-r->err));
		finish_reply(op, r);
		goto out;
	}
	err = send_cmd(op, "device_add", json_incref(op->args), QMP_RET_ANY, -1,
		       on_redir_device_add, NULL);
	if (err < 0)
		finish(op, err, NULL);
out:
	backend_base_leave(&b->base);
}

/* backend_ops.redir_attach: chardev-add (a listening socket, no wait),
 * then device_add usb-redir on it, both with the slot's id. */
static int qmpb_redir_attach(struct backend_vm *bv, const struct backend_redir_dev *dev,
			     backend_done_fn done, void *data)
{
	struct qmpb *b = from(bv);
	json_t *addr, *chardev;
	struct op *op;
	char port[8];
	int r;

	if (!is_up(b))
		return -ENOTCONN;
	if (!valid_id(dev->id) || (!dev->path && (!dev->host || !dev->port || dev->port > 65535)))
		return -EINVAL;
	if (dev->path) {
		addr = json_pack("{s:s, s:{s:s}}", "type", "unix", "data", "path", dev->path);
	} else {
		snprintf(port, sizeof(port), "%u", dev->port);
		addr = json_pack("{s:s, s:{s:s, s:s}}", "type", "inet", "data", "host", dev->host,
				 "port", port);
	}
	if (!addr)
		return -EINVAL; /* not UTF-8 */
	chardev = json_pack("{s:s, s:{s:s, s:{s:o, s:b, s:b}}}", "id", dev->id, "backend", "type",
			    "socket", "data", "addr", addr, "server", 1, "wait", 0);
	op = op_new(b, OP_REDIR_ATTACH, dev->id, done, NULL, data);
	op->args = json_pack("{s:s, s:s, s:s}", "driver", "usb-redir", "id", dev->id, "chardev",
			     dev->id);
	if (b->vm->usb_bus)
		json_object_set_new(op->args, "bus", json_string(b->vm->usb_bus));
	r = send_cmd(op, "chardev-add", chardev, QMP_RET_ANY, -1, on_chardev_add, NULL);
	if (r < 0)
		drop(op);
	return r;
}

/* backend_ops.redir_detach: device_del, DEVICE_DELETED, chardev-remove. */
static int qmpb_redir_detach(struct backend_vm *bv, const char *id, backend_done_fn done,
			     void *data)
{
	return detach(bv, OP_REDIR_DETACH, id, "device_del", on_device_del, done, data);
}

/* --- input ------------------------------------------------------------- */

/* object-add answered: the input attach is over either way. */
static void on_object_add(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err)
		log_debug("vm %s: object-add %s failed: %s", b->vm->name, op->id,
			  r->error_desc ? r->error_desc : strerror(-r->err));
	finish_reply(op, r);
	backend_base_leave(&b->base);
}

/* backend_ops.input_attach: object-add input-linux. */
static int qmpb_input_attach(struct backend_vm *bv, const struct backend_input_dev *dev,
			     backend_done_fn done, void *data)
{
	struct qmpb *b = from(bv);
	json_t *args;

	if (!is_up(b))
		return -ENOTCONN;
	if (!valid_id(dev->id) || !dev->evdev || !*dev->evdev)
		return -EINVAL;
	args = json_pack("{s:s, s:s, s:s, s:b, s:b}", "qom-type", "input-linux", "id", dev->id,
			 "evdev", dev->evdev, "grab_all", dev->grab_all, "repeat", dev->repeat);
	if (!args)
		return -EINVAL; /* a path that is not UTF-8 cannot go into JSON */
	if (dev->grab_toggle)
		json_object_set_new(args, "grab-toggle", json_string(dev->grab_toggle));
	return start_op(b, OP_INPUT_ATTACH, dev->id, done, data, "object-add", args, on_object_add);
}

/* object-del was refused: success if the object is not there at all. */
static void on_objects_after_refusal(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;
	json_t *entry;
	size_t i;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err) {
		finish(op, -EIO, op->refusal);
		goto out;
	}
	json_array_foreach(r->ret, i, entry) {
		json_t *name = json_object_get(entry, "name");

		if (json_is_string(name) && streq(json_string_value(name), op->id)) {
			finish(op, -EIO, op->refusal);
			goto out;
		}
	}
	finish(op, 0, NULL);
out:
	backend_base_leave(&b->base);
}

/* object-del answered; a refusal is checked against /objects. */
static void on_object_del(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;
	int err;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err != -EREMOTEIO) {
		finish_reply(op, r);
		goto out;
	}
	/* QEMU says GenericError "object 'x' not found" for a missing
	 * object; ask for the truth instead of reading its prose. */
	op->refusal = xstrdup(r->error_desc);
	err = send_cmd(op, "qom-list", json_pack("{s:s}", "path", OBJECTS), QMP_RET_ARRAY, -1,
		       on_objects_after_refusal, NULL);
	if (err < 0)
		finish(op, err, NULL);
out:
	backend_base_leave(&b->base);
}

/* backend_ops.input_detach: object-del. */
static int qmpb_input_detach(struct backend_vm *bv, const char *id, backend_done_fn done,
			     void *data)
{
	return detach(bv, OP_INPUT_DETACH, id, "object-del", on_object_del, done, data);
}

/* --- list -------------------------------------------------------------- */

/* A usb-redir slot's address from query-chardev's "filename" of its
 * socket chardev ("disconnected:tcp:127.0.0.1:4000,server=on", or with
 * " <-> PEER" once connected), in conf_usb_remote_address()'s form. */
static char *chardev_address(const char *filename, bool *connected)
{
	const char *s = filename, *end;

	*connected = !startswith(s, "disconnected:");
	if (!*connected)
		s += strlen("disconnected:");
	end = strstr(s, ",server=on");
	if (!end || !(startswith(s, "tcp:") || startswith(s, "unix:")))
		return NULL;
	return xstrndup(s, (size_t)(end - s));
}

/* query-chardev's entries joined to the listed slots: each slot gets its
 * chardev's address; a chardev of ours without its device is listed as
 * an incomplete slot (no address), to be removed. */
static void merge_chardevs(struct op *op)
{
	struct backend_list *l = op->list;
	size_t i, n = l->n;
	json_t *cd;

	json_array_foreach(op->chardevs, i, cd) {
		json_t *label = json_object_get(cd, "label");
		json_t *filename = json_object_get(cd, "filename");
		struct backend_item *it = NULL;

		if (!json_is_string(label) || !valid_id(json_string_value(label)))
			continue;
		for (size_t k = 0; k < n && !it; k++)
			if (l->items[k].kind == BACKEND_ITEM_REDIR &&
			    streq(l->items[k].id, json_string_value(label)))
				it = &l->items[k];
		if (!it) {
			if (l->n >= BACKEND_LIST_MAX)
				continue;
			backend_list_add(l, BACKEND_ITEM_REDIR, json_string_value(label));
			continue;
		}
		if (json_is_string(filename) && !it->address)
			it->address = chardev_address(json_string_value(filename), &it->connected);
	}
}

/* The list op has had its last answer: complete it. */
static void list_settle(struct op *op)
{
	struct backend_list *l = op->list;
	size_t kept = 0;

	if (op->inflight > 0)
		return;
	if (op->err) {
		finish(op, op->err, NULL);
		return;
	}
	merge_chardevs(op);
	for (size_t i = 0; i < l->n; i++) {
		if (strv_contains(op->vanished, l->items[i].id))
			backend_item_clear(&l->items[i]);
		else
			l->items[kept++] = l->items[i];
	}
	l->n = kept;
	finish(op, 0, NULL);
}

/* The list fails with err (the first error wins) once every answer is in. */
static void list_fail(struct op *op, int err)
{
	if (!op->err)
		op->err = err;
}

/* A positive int property, -1 when unset (0) or not an int. */
static int positive_int(json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT32_MAX)
		return -1;
	return (int)json_integer_value(v);
}

/* A qom-get of a listed object answered: fill in its property. */
static void on_get(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct get *g = data;
	struct op *op = g->op;
	struct qmpb *b = op->b;
	struct backend_item *it = &op->list->items[g->item];

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err == -EREMOTEIO && streq(r->error_class, "DeviceNotFound")) {
		/* Removed between qom-list and qom-get. */
		strv_append(&op->vanished, it->id);
	} else if (r->err) {
		log_debug("vm %s: qom-get %s.%s failed: %s", b->vm->name, it->id,
			  prop_names[g->prop], r->error_desc ? r->error_desc : strerror(-r->err));
		list_fail(op, r->err == -EREMOTEIO ? -EIO : r->err);
	} else {
		switch (g->prop) {
		case PROP_HOSTBUS:
			it->bus = positive_int(r->ret);
			break;
		case PROP_HOSTADDR:
			it->addr = positive_int(r->ret);
			break;
		case PROP_HOSTPORT:
			if (json_is_string(r->ret) && *json_string_value(r->ret))
				it->port = xstrdup(json_string_value(r->ret));
			break;
		case PROP_ATTACHED:
			it->attached = json_is_true(r->ret);
			break;
		case PROP_EVDEV:
			if (json_is_string(r->ret))
				it->evdev = xstrdup(json_string_value(r->ret));
			break;
		}
	}
	list_settle(op);
	backend_base_leave(&b->base);
}

/* Ask for one property of a listed object. */
static void get_prop(struct op *op, const char *dir, size_t item, enum prop prop)
{
	struct get *g = xnew(struct get);
	char *path = xasprintf("%s/%s", dir, op->list->items[item].id);
	int r;

	g->op = op;
	g->item = item;
	g->prop = prop;
	list_insert_tail(&op->gets, &g->link);
	r = send_cmd(op, "qom-get",
		     json_pack("{s:s, s:s}", "path", path, "property", prop_names[prop]),
		     QMP_RET_ANY, -1, on_get, g);
	free(path);
	if (r < 0)
		list_fail(op, r);
}

/* The types of objects a list takes from a container, and as what. */
struct listed_type {
	const char *type;
	enum backend_item_kind kind;
};

static void on_chardevs(struct qmp *q, const struct qmp_reply *r, void *data);

/* The chardevs are needed when the VM has slots of ours or should have
 * some: asked once per list. */
static void ask_chardevs(struct op *op)
{
	int r;

	if (op->chardevs_asked)
		return;
	op->chardevs_asked = true;
	r = send_cmd(op, "query-chardev", NULL, QMP_RET_ARRAY, -1, on_chardevs, NULL);
	if (r < 0)
		list_fail(op, r);
}

/* The qom-list of one container: take vmplug's children of the types. */
static void on_qom_list(struct op *op, const struct qmp_reply *r, const char *dir,
			const struct listed_type *types, size_t n_types)
{
	size_t i, ignored = 0;
	json_t *entry;

	op->inflight--;
	if (r->err == -EREMOTEIO && streq(r->error_class, "DeviceNotFound")) {
		/* QEMU makes /objects only with the first object: none yet. */
		list_settle(op);
		return;
	}
	if (r->err) {
		log_warning("vm %s: qom-list %s failed: %s", op->b->vm->name, dir,
			    r->error_desc ? r->error_desc : strerror(-r->err));
		list_fail(op, r->err == -EREMOTEIO ? -EIO : r->err);
		list_settle(op);
		return;
	}
	json_array_foreach(r->ret, i, entry) {
		json_t *name = json_object_get(entry, "name");
		json_t *t = json_object_get(entry, "type");
		enum backend_item_kind kind;
		size_t item, k;

		if (!json_is_string(name) || !json_is_string(t) ||
		    !valid_id(json_string_value(name)))
			continue;
		for (k = 0; k < n_types; k++)
			if (streq(json_string_value(t), types[k].type))
				break;
		if (k == n_types)
			continue;
		kind = types[k].kind;
		if (op->list->n >= BACKEND_LIST_MAX) {
			ignored++;
			continue;
		}
		backend_list_add(op->list, kind, json_string_value(name));
		item = op->list->n - 1;
		if (kind == BACKEND_ITEM_INPUT) {
			get_prop(op, dir, item, PROP_EVDEV);
		} else if (kind == BACKEND_ITEM_REDIR) {
			ask_chardevs(op);
			get_prop(op, dir, item, PROP_ATTACHED);
		} else {
			get_prop(op, dir, item, PROP_HOSTBUS);
			get_prop(op, dir, item, PROP_HOSTADDR);
			get_prop(op, dir, item, PROP_HOSTPORT);
			get_prop(op, dir, item, PROP_ATTACHED);
		}
	}
	if (ignored && !op->b->said_capped) {
		op->b->said_capped = true;
		log_warning("vm %s: QEMU lists more than %d of vmplug's objects (%zu more in %s); "
			    "ignoring those",
			    op->b->vm->name, BACKEND_LIST_MAX, ignored, dir);
	}
	list_settle(op);
}

/* qom-list /machine/peripheral answered: vmplug's usb-host devices. */
static void on_peripherals(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	static const struct listed_type types[] = {
		{ "child<usb-host>", BACKEND_ITEM_USB },
		{ "child<usb-redir>", BACKEND_ITEM_REDIR },
	};

	backend_base_enter(&b->base);
	on_qom_list(op, r, PERIPHERAL, types, ARRAY_SIZE(types));
	backend_base_leave(&b->base);
}

/* qom-list /objects answered: vmplug's input-linux objects. */
static void on_objects(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	static const struct listed_type types[] = { { "child<input-linux>", BACKEND_ITEM_INPUT } };

	backend_base_enter(&b->base);
	on_qom_list(op, r, OBJECTS, types, ARRAY_SIZE(types));
	backend_base_leave(&b->base);
}

/* query-chardev answered: kept for the slots, merged once all is in. */
static void on_chardevs(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	op->inflight--;
	if (r->err)
		list_fail(op, r->err == -EREMOTEIO ? -EIO : r->err);
	else
		op->chardevs = json_incref(r->ret);
	list_settle(op);
	backend_base_leave(&b->base);
}

/* backend_ops.list: both containers and the chardevs listed, then each
 * object's properties. */
static int qmpb_list(struct backend_vm *bv, backend_list_fn done, void *data)
{
	struct qmpb *b = from(bv);
	struct op *op;
	int r;

	if (!is_up(b))
		return -ENOTCONN;
	op = op_new(b, OP_LIST, NULL, NULL, done, data);
	op->list = xnew(struct backend_list);
	r = send_cmd(op, "qom-list", json_pack("{s:s}", "path", PERIPHERAL), QMP_RET_ARRAY, -1,
		     on_peripherals, NULL);
	if (r == 0)
		r = send_cmd(op, "qom-list", json_pack("{s:s}", "path", OBJECTS), QMP_RET_ARRAY, -1,
			     on_objects, NULL);
	/* A slot half made (its chardev alone) is found only here; without
	 * [usb-remote] sections, usb-redir devices found ask for them. */
	if (r == 0 && b->vm->n_remotes > 0) {
		op->chardevs_asked = true;
		r = send_cmd(op, "query-chardev", NULL, QMP_RET_ARRAY, -1, on_chardevs, NULL);
	}
	if (r < 0 && op->inflight == 0) {
		drop(op);
		return r;
	}
	/* The first went out: its reply settles the op with the error. */
	if (r < 0)
		list_fail(op, r);
	return 0;
}

/* --- timers and QMP callbacks ------------------------------------------ */

/* No DEVICE_DELETED in time: the detach fails (a later one is item_gone). */
static void on_delete_timeout(struct loop_timer *t, void *data)
{
	struct op *op = data;
	struct qmpb *b = op->b;

	backend_base_enter(&b->base);
	log_warning("vm %s: QEMU sent no DEVICE_DELETED for %s within %.1f s", b->vm->name, op->id,
		    (double)delete_timeout_usec / USEC_PER_SEC);
	finish(op, -ETIMEDOUT, "no DEVICE_DELETED from QEMU");
	backend_base_leave(&b->base);
}

/* The VM can take commands. */
static void up(struct qmpb *b)
{
	b->up = true;
	if (b->base.events->vm_up)
		b->base.events->vm_up(b->base.data);
}

static void on_status(struct qmp *q, const struct qmp_reply *r, void *data);

/* Ask QEMU whether it is still loading the VM, unless it is being asked. */
static void ask_status(struct qmpb *b)
{
	struct qmp_command_opts opts = { .ret_type = QMP_RET_OBJECT, .fd = -1 };

	if (b->asking)
		return;
	loop_timer_disarm(b->status_timer);
	/* Fails only when not connected, and disconnected() follows. */
	b->asking = qmp_command(b->qmp, "query-status", NULL, &opts, on_status, b) == 0;
}

/* QEMU started with -incoming (a VM restored from a saved state, or a
 * migration's destination) answers QMP while it loads the VM, and a
 * device added then is lost to the guest: the loaded state of the USB
 * controller knows nothing of it. So the VM is up only once QEMU is past
 * "inmigrate". QEMU 7.2 announces the end of loading (MIGRATION
 * "completed") only when whoever runs it enabled migration events, and
 * resumes the VM (RESUME) only when it was running and -S is not given:
 * the status is asked again every loading_poll_usec meanwhile, and at
 * once on either event. A refused query-status does not keep the VM
 * down. */
static void on_status(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct qmpb *b = data;
	json_t *status = r->err ? NULL : json_object_get(r->ret, "status");

	b->asking = false;
	if (r->err && r->err != -EREMOTEIO)
		return; /* the connection is lost: disconnected() follows */
	backend_base_enter(&b->base);
	if (json_is_string(status) && streq(json_string_value(status), "inmigrate")) {
		if (!b->loading) {
			log_info("vm %s: QEMU is loading a saved or incoming VM; attaching once "
				 "it has",
				 b->vm->name);
			b->loading = true;
			if (b->base.events->vm_down)
				b->base.events->vm_down(b->base.data,
							"QEMU is loading a saved or incoming VM");
		}
		if (!backend_base_dead(&b->base))
			loop_timer_arm_in(b->status_timer, loading_poll_usec);
	} else {
		if (b->loading)
			log_info("vm %s: QEMU has loaded the VM", b->vm->name);
		b->loading = false;
		up(b);
	}
	backend_base_leave(&b->base);
}

static void on_status_timer(struct loop_timer *t, void *data)
{
	struct qmpb *b = data;

	backend_base_enter(&b->base);
	ask_status(b);
	backend_base_leave(&b->base);
}

/* The QMP client is ready: the VM is up once QEMU has it loaded. */
static void on_connected(struct qmp *q, void *data)
{
	struct qmpb *b = data;
	const struct qmp_version *v = qmp_version(q);

	backend_base_enter(&b->base);
	log_info("vm %s: connected to QEMU %d.%d.%d%s%s%s", b->vm->name, v->major, v->minor,
		 v->micro, *v->package ? " (" : "", v->package, *v->package ? ")" : "");
	b->said_capped = false;
	ask_status(b);
	backend_base_leave(&b->base);
}

/* Why QEMU cannot be reached, for the status (told once per reason). */
static void on_down(struct qmp *q, const char *why, void *data)
{
	struct qmpb *b = data;

	backend_base_enter(&b->base);
	if (b->base.events->vm_down)
		b->base.events->vm_down(b->base.data, why);
	backend_base_leave(&b->base);
}

/* QEMU went away: what was pending fails, then vm_gone. */
static void on_disconnected(struct qmp *q, const char *reason, void *data)
{
	struct qmpb *b = data;

	backend_base_enter(&b->base);
	b->up = false;
	b->loading = false;
	loop_timer_disarm(b->status_timer);
	/* Commands in flight have failed already; what is left waits for
	 * a timer or an event that will not come. */
	if (backend_base_fail_all(&b->base)) {
		log_info("vm %s: QEMU gone (%s)", b->vm->name, reason);
		if (b->base.events->vm_gone)
			b->base.events->vm_gone(b->base.data, reason);
	}
	backend_base_leave(&b->base);
}

/* QEMU's events: DEVICE_DELETED, and lifecycle events passed on. */
static void on_event(struct qmp *q, const char *event, json_t *data, void *udata)
{
	static const char *const lifecycle[] = { "SHUTDOWN", "RESET", "STOP", "RESUME" };
	struct qmpb *b = udata;

	backend_base_enter(&b->base);
	if (streq(event, "DEVICE_DELETED")) {
		json_t *dev = json_object_get(data, "device");

		if (json_is_string(dev))
			device_deleted(b, json_string_value(dev));
		goto out;
	}
	if (b->loading && (streq(event, "MIGRATION") || streq(event, "RESUME")))
		ask_status(b);
	for (size_t i = 0; i < ARRAY_SIZE(lifecycle); i++) {
		json_t *reason;

		if (!streq(event, lifecycle[i]))
			continue;
		reason = json_object_get(data, "reason");
		log_ratelimited(&b->rl, LOG_LEVEL_INFO, "vm %s: QEMU reports %s%s%s%s", b->vm->name,
				event, json_is_string(reason) ? " (" : "",
				json_is_string(reason) ? json_string_value(reason) : "",
				json_is_string(reason) ? ")" : "");
		if (b->base.events->vm_event)
			b->base.events->vm_event(b->base.data, event);
		break;
	}
out:
	backend_base_leave(&b->base);
}

/* --- the table --------------------------------------------------------- */

static const struct qmp_callbacks qmp_callbacks = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.down = on_down,
	.event = on_event,
};

/* backend_ops.create: a QMP client on the VM's socket. */
static struct backend_vm *qmpb_create(struct loop *loop, const struct conf_vm *vm,
				      const struct backend_events *events, void *data)
{
	struct qmp_opts opts = { .socket_path = vm->qmp_socket };
	struct qmpb *b;
	char *name;

	if (vm->backend != CONF_BACKEND_QMP || !vm->qmp_socket) {
		errno = EINVAL;
		return NULL;
	}
	b = xnew(struct qmpb);
	backend_base_init(&b->base, &backend_qmp_ops, events, data, op_release);
	b->vm = vm;
	b->loop = loop;
	b->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 10);
	name = xasprintf("vm %s", vm->name);
	opts.name = name;
	/* Its qemu-user may serve the QMP socket besides root. */
	if (vm->qemu_user) {
		struct passwd *pw = getpwnam(vm->qemu_user);

		if (pw)
			opts.peer_uid = pw->pw_uid;
		else
			log_warning("vm %s: qemu-user '%s' does not exist; only a QEMU run by "
				    "root may serve %s",
				    vm->name, vm->qemu_user, vm->qmp_socket);
	}
	b->status_timer = loop_timer_new(loop, on_status_timer, b);
	b->qmp = qmp_new(loop, &opts, &qmp_callbacks, b);
	free(name);
	if (!b->qmp) {
		int saved = errno;

		log_error("vm %s: cannot use QMP socket %s: %s", vm->name, vm->qmp_socket,
			  strerror(errno));
		loop_timer_free(b->status_timer);
		free(b);
		errno = saved;
		return NULL;
	}
	return &b->base.vm;
}

/* backend_ops.destroy. */
static void qmpb_destroy(struct backend_vm *bv)
{
	struct qmpb *b;

	if (!bv)
		return;
	b = from(bv);
	if (backend_base_dead(&b->base))
		return;
	qmp_free(b->qmp);
	b->qmp = NULL;
	loop_timer_free(b->status_timer);
	b->status_timer = NULL;
	backend_base_destroy(&b->base);
}

/* backend_ops.is_up. */
static bool qmpb_is_up(const struct backend_vm *bv)
{
	return is_up(from(bv));
}

const struct backend_ops backend_qmp_ops = {
	.name = "qmp",
	.create = qmpb_create,
	.destroy = qmpb_destroy,
	.is_up = qmpb_is_up,
	.usb_attach = qmpb_usb_attach,
	.usb_detach = qmpb_usb_detach,
	.input_attach = qmpb_input_attach,
	.input_detach = qmpb_input_detach,
	.redir_attach = qmpb_redir_attach,
	.redir_detach = qmpb_redir_detach,
	.list = qmpb_list,
};

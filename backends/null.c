/* The null backend: an in-memory VM for tests (see null.h). */
#include "config.h"

#include "backends/null.h"

#include <errno.h>
#include <stdlib.h>

#include "backends/base.h"
#include "util/list.h"
#include "util/util.h"

struct pending {
	struct backend_op base;
	enum backend_null_op op;
	struct backend_item item; /* what attach adds / the id to remove */
};

struct backend_null {
	struct backend_base base;
	struct list link; /* in `instances` */
	char *name;
	bool up;
	int refuse; /* the next operation's refusal at once, 0 for none */
	struct backend_list items;
	unsigned counts[BACKEND_NULL_LIST + 1];
};

static struct list instances = { &instances, &instances };

struct backend_null *backend_null_from(struct backend_vm *b)
{
	return container_of(b, struct backend_null, base.vm);
}

struct backend_null *backend_null_last(void)
{
	if (list_empty(&instances))
		return NULL;
	return container_of(instances.prev, struct backend_null, link);
}

struct backend_null *backend_null_find(const char *name)
{
	struct backend_null *n;

	list_for_each(n, &instances, link)
		if (streq(n->name, name))
			return n;
	return NULL;
}

/* The backend_base's op_free. */
static void pending_free(struct backend_op *op)
{
	struct pending *p = container_of(op, struct pending, base);

	backend_item_clear(&p->item);
	free(p);
}

/* backend_ops.create: an instance tests find by the VM's name. */
static struct backend_vm *null_create(struct loop *loop, const struct conf_vm *vm,
				      const struct backend_events *events, void *data)
{
	struct backend_null *n = xnew(struct backend_null);

	backend_base_init(&n->base, &backend_null_ops, events, data, pending_free);
	n->name = xstrdup(vm->name);
	list_insert_tail(&instances, &n->link);
	return &n->base.vm;
}

/* backend_ops.destroy. */
static void null_destroy(struct backend_vm *b)
{
	struct backend_null *n;

	if (!b)
		return;
	n = backend_null_from(b);
	if (backend_base_dead(&n->base))
		return;
	for (size_t i = 0; i < n->items.n; i++)
		backend_item_clear(&n->items.items[i]);
	free(n->items.items);
	list_remove(&n->link);
	free(n->name);
	backend_base_destroy(&n->base);
}

/* backend_ops.is_up: what the test last set. */
static bool null_is_up(const struct backend_vm *b)
{
	return container_of(b, const struct backend_null, base.vm)->up;
}

/* The refusal the test asked for, once (0: none). */
static int refusal(struct backend_null *n)
{
	int err = n->refuse;

	n->refuse = 0;
	return err;
}

void backend_null_refuse_next(struct backend_null *n, int err)
{
	n->refuse = err;
}

/* Record an operation the test completes later. */
static struct pending *start(struct backend_null *n, enum backend_null_op op, const char *id,
			     backend_done_fn done, backend_list_fn list_done, void *data)
{
	struct pending *p = xnew(struct pending);

	p->op = op;
	p->item.id = id ? xstrdup(id) : NULL;
	p->item.bus = p->item.addr = -1;
	backend_op_add(&n->base, &p->base, done, list_done, data);
	n->counts[op]++;
	return p;
}

/* backend_ops.usb_attach: recorded with the object it adds once completed. */
static int null_usb_attach(struct backend_vm *b, const struct backend_usb_dev *dev,
			   backend_done_fn done, void *data)
{
	struct backend_null *n = backend_null_from(b);
	struct pending *p;
	int err = refusal(n);

	if (!n->up)
		return -ENOTCONN;
	if (err)
		return err;
	p = start(n, BACKEND_NULL_USB_ATTACH, dev->id, done, NULL, data);
	p->item.kind = BACKEND_ITEM_USB;
	p->item.bus = (int)dev->bus;
	p->item.addr = dev->mode == CONF_ATTACH_PORT ? -1 : (int)dev->addr;
	p->item.port = dev->port ? xstrdup(dev->port) : NULL;
	p->item.attached = true;
	return 0;
}

/* backend_ops.input_attach: likewise, an input object. */
static int null_input_attach(struct backend_vm *b, const struct backend_input_dev *dev,
			     backend_done_fn done, void *data)
{
	struct backend_null *n = backend_null_from(b);
	struct pending *p;
	int err = refusal(n);

	if (!n->up)
		return -ENOTCONN;
	if (err)
		return err;
	p = start(n, BACKEND_NULL_INPUT_ATTACH, dev->id, done, NULL, data);
	p->item.kind = BACKEND_ITEM_INPUT;
	p->item.evdev = xstrdup(dev->evdev);
	return 0;
}

/* usb_detach and input_detach: recorded, the object goes once completed. */
static int detach(struct backend_vm *b, enum backend_null_op op, const char *id,
		  backend_done_fn done, void *data)
{
	struct backend_null *n = backend_null_from(b);
	int err = refusal(n);

	if (!n->up)
		return -ENOTCONN;
	if (err)
		return err;
	start(n, op, id, done, NULL, data);
	return 0;
}

/* backend_ops.usb_detach. */
static int null_usb_detach(struct backend_vm *b, const char *id, backend_done_fn done, void *data)
{
	return detach(b, BACKEND_NULL_USB_DETACH, id, done, data);
}

/* backend_ops.input_detach. */
static int null_input_detach(struct backend_vm *b, const char *id, backend_done_fn done, void *data)
{
	return detach(b, BACKEND_NULL_INPUT_DETACH, id, done, data);
}

/* backend_ops.list: a copy of the objects when completed. */
static int null_list(struct backend_vm *b, backend_list_fn done, void *data)
{
	struct backend_null *n = backend_null_from(b);
	int err = refusal(n);

	if (!n->up)
		return -ENOTCONN;
	if (err)
		return err;
	start(n, BACKEND_NULL_LIST, NULL, NULL, done, data);
	return 0;
}

const struct backend_ops backend_null_ops = {
	.name = "null",
	.create = null_create,
	.destroy = null_destroy,
	.is_up = null_is_up,
	.usb_attach = null_usb_attach,
	.usb_detach = null_usb_detach,
	.input_attach = null_input_attach,
	.input_detach = null_input_detach,
	.list = null_list,
};

/* The index of the VM's object with that id, -1 if none. */
static ssize_t find_item(const struct backend_null *n, const char *id)
{
	for (size_t i = 0; i < n->items.n; i++)
		if (streq(n->items.items[i].id, id))
			return (ssize_t)i;
	return -1;
}

/* The VM loses object i (order is not kept). */
static void drop_item(struct backend_null *n, size_t i)
{
	backend_item_clear(&n->items.items[i]);
	n->items.items[i] = n->items.items[--n->items.n];
}

void backend_null_set_up(struct backend_null *n, bool up, const char *reason)
{
	if (n->up == up)
		return;
	n->up = up;
	backend_base_enter(&n->base);
	if (up) {
		n->base.events->vm_up(n->base.data);
		goto out;
	}
	/* Like a QEMU that exited: its objects are gone, pending work fails. */
	while (n->items.n)
		drop_item(n, n->items.n - 1);
	if (backend_base_fail_all(&n->base))
		n->base.events->vm_gone(n->base.data, reason ? reason : "gone");
out:
	backend_base_leave(&n->base);
}

size_t backend_null_pending(const struct backend_null *n)
{
	struct pending *p;
	size_t count = 0;

	list_for_each(p, &n->base.ops, base.link)
		count++;
	return count;
}

enum backend_null_op backend_null_pending_op(const struct backend_null *n, size_t i,
					     const char **id)
{
	struct pending *p;

	list_for_each(p, &n->base.ops, base.link) {
		if (i-- == 0) {
			if (id)
				*id = p->item.id;
			return p->op;
		}
	}
	abort();
}

bool backend_null_complete(struct backend_null *n, int err, const char *msg)
{
	struct pending *p;
	struct backend_list *snapshot = NULL;
	ssize_t i;

	if (list_empty(&n->base.ops))
		return false;
	p = container_of(n->base.ops.next, struct pending, base.link);
	if (err == 0) {
		switch (p->op) {
		case BACKEND_NULL_USB_ATTACH:
		case BACKEND_NULL_INPUT_ATTACH:
			if (find_item(n, p->item.id) >= 0) {
				err = -EEXIST;
				msg = "Duplicate device ID";
				break;
			}
			*(struct backend_item *)xappend(&n->items.items, &n->items.n,
							sizeof(struct backend_item)) = p->item;
			memset(&p->item, 0, sizeof(p->item));
			break;
		case BACKEND_NULL_USB_DETACH:
		case BACKEND_NULL_INPUT_DETACH:
			i = find_item(n, p->item.id);
			if (i >= 0)
				drop_item(n, (size_t)i);
			break;
		case BACKEND_NULL_LIST:
			snapshot = backend_list_copy(&n->items);
			break;
		}
	}
	backend_base_enter(&n->base);
	backend_op_finish(&n->base, &p->base, err, msg, snapshot);
	backend_list_free(snapshot);
	backend_base_leave(&n->base);
	return true;
}

size_t backend_null_complete_all(struct backend_null *n)
{
	size_t count = 0;

	while (backend_null_complete(n, 0, NULL))
		count++;
	return count;
}

const struct backend_list *backend_null_items(const struct backend_null *n)
{
	return &n->items;
}

void backend_null_add_item(struct backend_null *n, const struct backend_item *item)
{
	backend_item_copy(xappend(&n->items.items, &n->items.n, sizeof(struct backend_item)), item);
}

void backend_null_remove_item(struct backend_null *n, const char *id)
{
	ssize_t i = find_item(n, id);

	if (i < 0)
		return;
	drop_item(n, (size_t)i);
	backend_base_enter(&n->base);
	n->base.events->item_gone(n->base.data, id);
	backend_base_leave(&n->base);
}

unsigned backend_null_count(const struct backend_null *n, enum backend_null_op op)
{
	return n->counts[op];
}

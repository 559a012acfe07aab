/* The backend table and helpers shared by every backend. */
#include "config.h"

#include "backends/backend.h"
#include "backends/null.h"

#include <stdlib.h>

#include "util/util.h"

extern const struct backend_ops backend_qmp_ops;
#ifdef HAVE_LIBVIRT
extern const struct backend_ops backend_libvirt_ops;
#endif

static const struct backend_ops *const backends[] = {
	&backend_qmp_ops,
#ifdef HAVE_LIBVIRT
	&backend_libvirt_ops,
#endif
	&backend_null_ops,
};

const struct backend_ops *backend_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
		if (streq(backends[i]->name, name))
			return backends[i];
	return NULL;
}

const struct backend_ops *backend_for_vm(const struct conf_vm *vm)
{
	return backend_find(conf_backend_name(vm->backend));
}

void backend_item_clear(struct backend_item *it)
{
	free(it->id);
	free(it->port);
	free(it->evdev);
	free(it->address);
	memset(it, 0, sizeof(*it));
}

void backend_item_copy(struct backend_item *dst, const struct backend_item *src)
{
	*dst = *src;
	dst->id = xstrdup(src->id);
	dst->port = src->port ? xstrdup(src->port) : NULL;
	dst->evdev = src->evdev ? xstrdup(src->evdev) : NULL;
	dst->address = src->address ? xstrdup(src->address) : NULL;
}

void backend_list_free(struct backend_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++)
		backend_item_clear(&list->items[i]);
	free(list->items);
	free(list);
}

struct backend_item *backend_list_add(struct backend_list *list, enum backend_item_kind kind,
				      const char *id)
{
	struct backend_item *it = xappend(&list->items, &list->n, sizeof(*it));

	it->kind = kind;
	it->id = xstrdup(id);
	it->bus = it->addr = -1;
	return it;
}

struct backend_list *backend_list_copy(const struct backend_list *list)
{
	struct backend_list *c = xnew(struct backend_list);

	for (size_t i = 0; list && i < list->n; i++)
		backend_item_copy(xappend(&c->items, &c->n, sizeof(struct backend_item)),
				  &list->items[i]);
	return c;
}

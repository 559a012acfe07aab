/* The backend table and helpers shared by every backend. */
#include "config.h"

#include "backends/backend.h"
#include "backends/null.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

extern const struct backend_ops backend_qmp_ops;

static const struct backend_ops *const backends[] = {
	&backend_qmp_ops,
	&backend_null_ops,
};

/* The backends built as modules: vmplug-NAME.so, exporting backend_NAME_ops. */
static const char *const modules[] = {
#ifdef HAVE_LIBVIRT
	"libvirt",
#endif
	NULL,
};

/* What each module gave, once loaded: modules are never unloaded (their
 * libraries start threads and register handlers that outlive a VM). */
static const struct backend_ops *loaded[ARRAY_SIZE(modules)];

const char *backend_module_dir(void)
{
	const char *dir = getenv("VMPLUG_MODULE_DIR");

	return dir && *dir ? dir : VMPLUG_MODULEDIR;
}

/* Load module i; NULL with errno set (and the reason logged) if it cannot be. */
static const struct backend_ops *load_module(size_t i)
{
	char *path = xasprintf("%s/vmplug-%s.so", backend_module_dir(), modules[i]);
	char *sym = xasprintf("backend_%s_ops", modules[i]), *why = NULL;
	const struct backend_ops *ops = NULL;
	void *handle;
	int r;

	/* code that runs as root comes only from files only root can change */
	r = path_check_trusted(path, geteuid(), &why);
	if (r < 0) {
		log_error("the %s backend: %s", modules[i], why);
		errno = r == -ENOENT ? ELIBACC : -r;
		goto out;
	}
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		log_error("the %s backend: cannot load %s: %s", modules[i], path, dlerror());
		errno = ELIBBAD;
		goto out;
	}
	ops = dlsym(handle, sym);
	if (!ops || !streq(ops->name, modules[i])) {
		log_error("the %s backend: %s has no %s", modules[i], path, sym);
		dlclose(handle);
		ops = NULL;
		errno = ELIBBAD;
		goto out;
	}
	log_info("the %s backend: loaded %s", modules[i], path);
	loaded[i] = ops;
out:
	free(why);
	free(sym);
	free(path);
	return ops;
}

const struct backend_ops *backend_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
		if (streq(backends[i]->name, name))
			return backends[i];
	for (size_t i = 0; modules[i]; i++)
		if (streq(modules[i], name))
			return loaded[i] ? loaded[i] : load_module(i);
	errno = ENOSYS;
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

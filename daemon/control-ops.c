/* What the control socket sees of the daemon and may ask of it (see
 * control-ops.h): snapshots of the reconciler and the focus, reload,
 * switch and overrides. */
#include "config.h"

#include "daemon/control-ops.h"

#include <stdlib.h>

#include "backends/backend.h"
#include "daemon/daemon.h"
#include "daemon/focus.h"
#include "util/log.h"
#include "util/util.h"

/* Each ops_NAME is control_ops.NAME (control/control.h); data is the daemon. */
static const struct conf *ops_conf(void *data)
{
	struct daemon *d = data;

	return d->conf;
}

static void ops_status(void *data, struct control_status *out)
{
	struct daemon *d = data;

	*out = (struct control_status){
		.config_dir = d->opts.confdir,
		.udevd = d->watch && watch_uses_udevd(d->watch),
		.switching = focus_switching(d->focus),
		.focus = focus_target(d->focus),
		.input_released = focus_released(d->focus),
	};
}

static void ops_vm(void *data, const char *vm, struct control_vm *out)
{
	struct daemon *d = data;
	enum reconcile_vm_state state = RECONCILE_VM_DOWN;
	const char *err = NULL;

	reconcile_vm_info(d->rc, vm, &state, &err);
	*out = (struct control_vm){
		.state = reconcile_vm_state_name(state),
		.ready = state == RECONCILE_VM_READY,
		.up = state != RECONCILE_VM_DOWN,
		.last_error = err,
	};
}

struct items_ctx {
	control_item_fn fn;
	void *ctx;
	char **ids; /* the items seen */
};

/* A reconciler item in control's terms. */
static void visit_item(void *data, const struct reconcile_item_info *info)
{
	struct items_ctx *ctx = data;
	const struct control_item it = {
		.id = info->id,
		.state = reconcile_item_state_name(info->state),
		.busy = info->state == RECONCILE_ITEM_ATTACHING ||
			info->state == RECONCILE_ITEM_DETACHING,
		.attached = info->state == RECONCILE_ITEM_ATTACHED,
		.failed = info->state == RECONCILE_ITEM_FAILED,
		.input = info->input,
		.remote = info->redir,
		.listen = info->address,
		.bus = info->bus,
		.devnum = info->devnum,
		.dev = info->dev,
		.error = info->error,
		.failures = info->failures,
	};

	strv_append(&ctx->ids, info->id);
	ctx->fn(ctx->ctx, &it);
}

/* A backend that cannot add input objects (libvirt) has the VM's sinks
 * in the VM's own definition, and lists the ones there: each configured
 * sink a running VM lacks is an item "missing". The link is the one
 * data/60-vmplug.rules makes for the sink vmplug-VM-SOURCE. */
static void visit_missing_inputs(const struct conf_vm *vm, struct items_ctx *ctx)
{
	const struct backend_ops *ops = backend_for_vm(vm);

	if (!ops || ops->input_attach)
		return;
	for (size_t i = 0; vm->inputs && vm->inputs[i]; i++) {
		char *id = xasprintf(BACKEND_ID_PREFIX "in-%s", vm->inputs[i]), *why;

		if (!strv_contains(ctx->ids, id)) {
			why = xasprintf("not in the VM's definition: add <input type='evdev'> with "
					"<source dev='/dev/input/by-id/vmplug-%s-%s'/>",
					vm->name, vm->inputs[i]);
			ctx->fn(ctx->ctx,
				&(struct control_item){
				    .id = id, .state = "missing", .input = true, .error = why });
			free(why);
		}
		free(id);
	}
}

static void ops_vm_items(void *data, const char *vm, control_item_fn fn, void *fn_ctx)
{
	struct daemon *d = data;
	struct items_ctx ctx = { fn, fn_ctx, NULL };
	enum reconcile_vm_state state = RECONCILE_VM_DOWN;
	const struct conf_vm *cvm = conf_find_vm(d->conf, vm);

	reconcile_vm_items(d->rc, vm, visit_item, &ctx);
	if (cvm && reconcile_vm_info(d->rc, vm, &state, NULL) && state == RECONCILE_VM_READY)
		visit_missing_inputs(cvm, &ctx);
	strv_free(ctx.ids);
}

struct devices_ctx {
	control_device_fn fn;
	void *ctx;
};

/* A present device in control's terms. */
static void visit_device(void *data, const struct reconcile_device_info *info)
{
	struct devices_ctx *ctx = data;
	const struct control_device dev = {
		.dev = info->dev,
		.owner = info->owner,
		.rule = info->rule,
		.mode = info->mode,
		.override = info->override == RECONCILE_OVERRIDE_ATTACH   ? "attach"
			    : info->override == RECONCILE_OVERRIDE_DETACH ? "detach"
									  : NULL,
		.override_vm = info->override_vm,
	};

	ctx->fn(ctx->ctx, &dev);
}

static void ops_devices(void *data, control_device_fn fn, void *fn_ctx)
{
	struct daemon *d = data;
	struct devices_ctx ctx = { fn, fn_ctx };

	reconcile_devices(d->rc, visit_device, &ctx);
}

static char *ops_usb_id(void *data, const struct usb_device *dev)
{
	return reconcile_usb_id(dev, CONF_ATTACH_ADDRESS);
}

static int ops_override(void *data, const struct usb_device *dev, const char *vm, bool attach)
{
	struct daemon *d = data;

	return reconcile_override(d->rc, dev->syspath, vm,
				  attach ? RECONCILE_OVERRIDE_ATTACH : RECONCILE_OVERRIDE_DETACH);
}

static int ops_reload(void *data, char ***errors)
{
	return daemon_reload(data, errors);
}

static int ops_focus_switch(void *data, const char *target, char **why)
{
	struct daemon *d = data;

	return focus_switch(d->focus, target, why);
}

struct override_ctx {
	char **syspaths, **vms;
	bool *attach;
	size_t n;
};

/* Note a device's manual override. */
static void save_override(void *data, const struct reconcile_device_info *info)
{
	struct override_ctx *o = data;

	if (info->override == RECONCILE_OVERRIDE_NONE)
		return;
	o->syspaths = xrealloc(o->syspaths, (o->n + 1) * sizeof(char *));
	o->vms = xrealloc(o->vms, (o->n + 1) * sizeof(char *));
	o->attach = xrealloc(o->attach, (o->n + 1) * sizeof(bool));
	o->syspaths[o->n] = xstrdup(info->dev->syspath);
	o->vms[o->n] = xstrdup(info->override_vm);
	o->attach[o->n++] = info->override == RECONCILE_OVERRIDE_ATTACH;
}

/* The state file changed: the configuration is read again, but, unlike
 * an administrator's reload, the devices given or kept by hand stay so:
 * remembering one answer must not undo another. */
static void reload_state(struct daemon *d)
{
	struct override_ctx o = { 0 };
	char **errors = NULL;

	reconcile_devices(d->rc, save_override, &o);
	if (daemon_reload(d, &errors) < 0)
		log_warning("the remembered answers apply once the configuration is fixed");
	strv_free(errors);
	for (size_t i = 0; i < o.n; i++) {
		reconcile_override(d->rc, o.syspaths[i], o.vms[i],
				   o.attach[i] ? RECONCILE_OVERRIDE_ATTACH
					       : RECONCILE_OVERRIDE_DETACH);
		free(o.syspaths[i]);
		free(o.vms[i]);
	}
	free(o.syspaths);
	free(o.vms);
	free(o.attach);
}

static int ops_remember(void *data, const struct usb_device *dev, const char *vm,
			const char *description, unsigned *id, char **why)
{
	struct daemon *d = data;
	struct conf_remembered m = { .vm = (char *)vm, .description = (char *)description };
	char *id_path = NULL;
	int r;

	/* the serial names the device wherever it is plugged in; without
	 * one, the port does (udev's ID_PATH when it has one: it survives
	 * a renumbering of the buses) */
	m.rule.vendor = dev->vendor;
	m.rule.product = dev->product;
	m.rule.serial = dev->serial;
	if (!dev->serial) {
		id_path = usb_device_id_path(dev);
		m.rule.port = id_path ? id_path : dev->sysname;
	}
	r = conf_remembered_add(d->conf->daemon.state_dir, &m, id, why);
	free(id_path);
	if (r < 0)
		return r;
	log_info("remembered answer %u: %s (%04x:%04x) %s%s", *id, dev->sysname,
		 dev->vendor & 0xffff, dev->product & 0xffff,
		 vm ? "goes to vm " : "stays on the host", vm ? vm : "");
	reload_state(d);
	return 0;
}

static int ops_forget(void *data, unsigned id, char **why)
{
	struct daemon *d = data;
	int r = conf_remembered_forget(d->conf->daemon.state_dir, id, why);

	if (r < 0)
		return r;
	log_info("remembered answer %u forgotten", id);
	reload_state(d);
	return 0;
}

const struct control_ops daemon_control_ops = {
	.conf = ops_conf,
	.status = ops_status,
	.vm = ops_vm,
	.vm_items = ops_vm_items,
	.devices = ops_devices,
	.usb_id = ops_usb_id,
	.override = ops_override,
	.reload = ops_reload,
	.focus_switch = ops_focus_switch,
	.remember = ops_remember,
	.forget = ops_forget,
};

void daemon_control_reconciled(struct control *c, const struct reconcile_event *ev)
{
	static const enum control_change changes[] = {
		[RECONCILE_VM_UP] = CONTROL_VM_UP,
		[RECONCILE_VM_GONE] = CONTROL_VM_GONE,
		[RECONCILE_USB_ATTACHED] = CONTROL_USB_ATTACHED,
		[RECONCILE_USB_DETACHED] = CONTROL_USB_DETACHED,
		[RECONCILE_USB_FAILED] = CONTROL_USB_FAILED,
		[RECONCILE_INPUT_ATTACHED] = CONTROL_INPUT_ATTACHED,
		[RECONCILE_INPUT_DETACHED] = CONTROL_INPUT_DETACHED,
		[RECONCILE_INPUT_FAILED] = CONTROL_INPUT_FAILED,
		[RECONCILE_REMOTE_ADDED] = CONTROL_REMOTE_ADDED,
		[RECONCILE_REMOTE_REMOVED] = CONTROL_REMOTE_REMOVED,
		[RECONCILE_REMOTE_FAILED] = CONTROL_REMOTE_FAILED,
	};

	control_reconciled(c, &(struct control_event){
				  .change = changes[ev->type],
				  .vm = ev->vm,
				  .id = ev->id,
				  .dev = ev->dev,
				  .msg = ev->msg,
				  .final = ev->final,
			      });
}

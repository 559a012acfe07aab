/* The daemon's life cycle: load config, run the loop, reload, exit. */
#include "config.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/control-ops.h"
#include "daemon/notify.h"
#include "daemon/focus.h"
#include "usb/rules.h"
#include "util/log.h"
#include "util/util.h"

/* vmplugd's own remembered answers: a bad state file is logged and
 * ignored (no answer remembered), never a reason to refuse to run. */
static void load_remembered(struct conf *conf, bool check_owner)
{
	char **errors = NULL;

	if (conf_remembered_load(conf, check_owner, &errors) < 0)
		for (size_t i = 0; errors[i]; i++)
			log_error("state: %s", errors[i]);
	strv_free(errors);
}

/* conf_load() as a pointer: NULL when the configuration has errors. */
static struct conf *load(const char *confdir, bool check_owner, char ***errors)
{
	struct conf_load_opts opts = { .check_owner = check_owner };
	struct conf *conf = NULL;

	if (conf_load(confdir, &opts, &conf, errors) < 0)
		return NULL;
	load_remembered(conf, check_owner);
	return conf;
}

/* The configured log level, raised by each -v, at most debug. */
static void apply_log_level(struct daemon *d)
{
	int level = (int)d->conf->daemon.log_level + d->opts.verbose;

	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	log_set_level((enum log_level)level);
}

/* One line per VM at (re)load, so the log says what the daemon is working with. */
static void log_vms(const struct conf *conf)
{
	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];
		size_t deny = 0;
		char *inputs = vm->inputs ? strv_join(vm->inputs, ",") : xstrdup("none");

		for (size_t j = 0; j < vm->n_rules; j++)
			deny += vm->rules[j].deny;
		log_info("vm %s: backend %s (%s), %zu USB rules, %zu deny rules, inputs %s",
			 vm->name, conf_backend_name(vm->backend),
			 vm->backend == CONF_BACKEND_QMP ? vm->qmp_socket : vm->uri,
			 vm->n_rules - deny, deny, inputs);
		free(inputs);
	}
}

static void log_errors(char **errors)
{
	for (size_t i = 0; errors && errors[i]; i++)
		log_error("config: %s", errors[i]);
}

/* SIGTERM/SIGINT: tell the service manager and leave the loop. */
static void on_quit_signal(struct loop *loop, int signo, void *data)
{
	log_info("%s received, exiting", strsignal(signo));
	notify_stopping();
	loop_quit(loop, 0);
}

#define PLURAL(n) ((n) == 1 ? "" : "s")

/* The one-line summary the service manager shows (systemctl status). */
static void update_status(struct daemon *d)
{
	size_t running = 0, usb = 0, present = 0, n_src;
	struct input_source_status *src = NULL;
	char *line;

	/* one walk: by name, each VM's lookup walked the VMs again */
	if (d->rc)
		reconcile_counts(d->rc, &running, &usb);
	n_src = d->input ? input_manager_sources(d->input, &src) : 0;
	for (size_t i = 0; i < n_src; i++)
		present += src[i].present;
	free(src);
	line = xasprintf("%zu VM%s (%zu running), %zu USB device%s attached, %zu input%s (%zu "
			 "present)",
			 d->conf->n_vms, PLURAL(d->conf->n_vms), running, usb, PLURAL(usb),
			 d->conf->n_inputs, PLURAL(d->conf->n_inputs), present);
	notify_status_set(d->status, line);
	free(line);
}

/* SIGHUP reloads the configuration, as systemctl reload does. */
static void on_hup(struct loop *loop, int signo, void *data)
{
	daemon_reload(data, NULL);
}

int daemon_reload(struct daemon *d, char ***errors_out)
{
	char **errors = NULL;
	struct conf *conf;

	log_info("reloading the configuration from %s", d->opts.confdir);
	notify_reloading();
	conf = load(d->opts.confdir, d->check_owner, &errors);
	if (!conf) {
		log_errors(errors);
		log_error("reload failed: %zu error(s); the running configuration is kept",
			  strv_len(errors));
		notify_ready();
		if (errors_out)
			*errors_out = errors;
		else
			strv_free(errors);
		return -EINVAL;
	}
	strv_free(errors);
	if (!streq_null(conf->daemon.control_socket, d->conf->daemon.control_socket) ||
	    !streq_null(conf->daemon.control_group, d->conf->daemon.control_group))
		log_warning("control-socket and control-group changes take effect when vmplugd "
			    "restarts");
	if (d->input)
		input_manager_set_conf(d->input, conf);
	if (d->focus)
		focus_set_conf(d->focus, conf);
	if (d->rc)
		reconcile_set_conf(d->rc, conf);
	conf_free(d->conf);
	d->conf = conf;
	apply_log_level(d);
	log_info("configuration reloaded: %zu VM(s), %zu input(s)", conf->n_vms, conf->n_inputs);
	log_vms(conf);
	control_emit(
	    d->control, CONTROL_EVENT_CONFIG_RELOADED,
	    json_pack("{s:i,s:i}", "vms", (int)conf->n_vms, "inputs", (int)conf->n_inputs));
	update_status(d);
	notify_ready();
	return 0;
}

struct daemon *daemon_new(const struct daemon_opts *opts)
{
	struct daemon *d = xnew(struct daemon);
	char **errors = NULL;

	d->opts = *opts;
	d->check_owner = geteuid() == 0;
	d->conf = load(opts->confdir, d->check_owner, &errors);
	if (!d->conf) {
		log_errors(errors);
		log_error("cannot start: %zu error(s) in the configuration in %s", strv_len(errors),
			  opts->confdir);
		strv_free(errors);
		daemon_free(d);
		return NULL;
	}
	strv_free(errors);
	apply_log_level(d);
	return d;
}

/* The reconciler's backend factory: QMP or libvirt, as the VM's backend key says. */
static struct backend_vm *create_backend(void *data, const struct conf_vm *vm,
					 const struct backend_events *events, void *evdata)
{
	struct daemon *d = data;
	const struct backend_ops *ops = backend_for_vm(vm);

	return ops ? ops->create(d->loop, vm, events, evdata) : NULL;
}

static uint64_t rc_now(void *data)
{
	return now_usec();
}

/* The reconciler asks to be ticked at deadline (0: not at all). */
static void rc_schedule(void *data, uint64_t deadline)
{
	struct daemon *d = data;

	if (deadline)
		loop_timer_arm(d->rc_timer, deadline);
	else
		loop_timer_disarm(d->rc_timer);
}

static void on_rc_timer(struct loop_timer *t, void *data)
{
	struct daemon *d = data;

	reconcile_tick(d->rc);
}

/* Should the control clients be asked where dev goes? Not a hub, no
 * VM's rule claims or denies it, no remembered answer keeps it on the
 * host, and some VM is up to take it. */
static bool unclaimed(struct daemon *d, const struct usb_device *dev)
{
	size_t up = 0, attached = 0;

	if (usb_device_is_hub(dev))
		return false;
	for (size_t i = 0; i < d->conf->n_vms; i++)
		if (usb_vm_verdict(&d->conf->vms[i], dev, NULL) != USB_VERDICT_NONE)
			return false;
	for (size_t i = 0; i < d->conf->n_remembered; i++)
		if (!d->conf->remembered[i].vm &&
		    usb_rule_matches(&d->conf->remembered[i].rule, dev, NULL))
			return false;
	reconcile_counts(d->rc, &up, &attached);
	return up > 0;
}

/* A device new to the reconciler is also what identify waits for, and,
 * plugged in while vmplugd runs, maybe a question. */
static void on_usb_add(void *data, struct usb_device *dev)
{
	struct daemon *d = data;
	bool plugged = !reconcile_find_device(d->rc, dev->syspath);
	char *syspath = xstrdup(dev->syspath);
	const struct usb_device *added;

	if (plugged)
		control_identify_usb(d->control, dev);
	reconcile_device_add(d->rc, dev);
	added = reconcile_find_device(d->rc, syspath);
	if (plugged && added && d->watch && !watch_enumerating(d->watch) && unclaimed(d, added))
		control_unclaimed(d->control, added);
	free(syspath);
}

/* An input node came or went: the input manager opens or closes its source. */
static void on_input(void *data, const char *action, struct udev_device *dev)
{
	struct daemon *d = data;

	input_manager_udev(d->input, action, dev);
	update_status(d);
	/* What identify waits for: an input node that was just plugged in,
	 * not one found present by a scan (d->watch is NULL during the
	 * first). */
	if (streq(action, "add") && d->watch && !watch_enumerating(d->watch))
		control_identify_input(d->control, dev);
}

/* A reconciler event: tell control clients, update the status, add or drop router targets. */
static void on_rc_event(void *data, const struct reconcile_event *ev)
{
	struct daemon *d = data;

	daemon_control_reconciled(d->control, ev);
	update_status(d);
	/* the router's targets: VMs up and gone */
	if (ev->type == RECONCILE_VM_UP)
		input_manager_vm_up(d->input, ev->vm);
	else if (ev->type == RECONCILE_VM_GONE)
		input_manager_vm_down(d->input, ev->vm);
}

static void on_usb_remove(void *data, const char *syspath)
{
	struct daemon *d = data;

	control_unclaimed_gone(d->control, syspath);
	reconcile_device_remove(d->rc, syspath);
}

/* The input-linux objects the reconciler must put in vm: one per sink, copied for it. */
static size_t rc_vm_inputs(void *data, const char *vm, struct reconcile_input **out)
{
	struct daemon *d = data;
	struct input_vm_sink *sinks;
	size_t n = input_manager_vm_sinks(d->input, vm, &sinks);

	*out = n ? xcalloc(n, sizeof(**out)) : NULL;
	for (size_t i = 0; i < n; i++) {
		(*out)[i] = (struct reconcile_input){
			.id = xstrdup(sinks[i].id),
			.evdev = xstrdup(sinks[i].evdev),
			.grab_all = sinks[i].grab_all,
			.repeat = sinks[i].repeat,
			.grab_toggle = sinks[i].grab_toggle,
			.keep_existing = sinks[i].adopted,
		};
	}
	input_vm_sinks_free(sinks, n);
	return n;
}

/* vm's sinks came or went: the reconciler adds or removes its input-linux objects. */
static void on_vm_sinks_changed(void *data, const char *vm)
{
	struct daemon *d = data;

	if (d->rc)
		reconcile_inputs_changed(d->rc, vm);
}

/* [0]: vm's input objects, [1]: those of them attached */
static void count_inputs(void *data, const struct reconcile_item_info *info)
{
	size_t *n = data;

	n[0] += info->input;
	n[1] += info->input && info->state == RECONCILE_ITEM_ATTACHED;
}

/* Are vm's input-linux objects in QEMU, all of them (so its sinks should
 * be held)? */
static bool inputs_attached(const struct daemon *d, const char *vm)
{
	enum reconcile_vm_state state;
	size_t n[2] = { 0, 0 };

	if (!d->rc || !reconcile_vm_info(d->rc, vm, &state, NULL) || state != RECONCILE_VM_READY)
		return false;
	reconcile_vm_items(d->rc, vm, count_inputs, n);
	return n[0] > 0 && n[0] == n[1];
}

/* The router moved the focus: tell clients, on-switch and D-Bus, and check
 * that the VM it went to still holds its sinks. */
static void on_focus(void *data, const char *from, const char *to)
{
	struct daemon *d = data;

	focus_switched(d->focus, from, to);
	/* The focus is where QEMU's letting go of a sink would be felt. */
	if (!streq(to, INPUT_ROUTER_HOST) && inputs_attached(d, to))
		input_manager_check_held(d->input, to);
}

/* The input manager and focus: before the watcher, whose first scan opens the sources. */
static int start_input(struct daemon *d)
{
	static const struct input_manager_hooks hooks = {
		.vm_sinks_changed = on_vm_sinks_changed,
		.focus = on_focus,
	};

	/* Before the watcher: its coldplug opens the sources, and every sink
	 * exists before any VM is reconciled. */
	d->input = input_manager_new(d->loop, d->conf, &hooks, d);
	d->focus = focus_new(d);
	return d->input ? 0 : -ENOMEM;
}

/* The reconciler and the udev watcher, whose first scan reports what is present. */
static int start_usb(struct daemon *d)
{
	static const struct watch_hooks watch_hooks = {
		.usb_add = on_usb_add,
		.usb_remove = on_usb_remove,
		.input = on_input,
	};
	const struct reconcile_hooks rc_hooks = {
		.create_backend = create_backend,
		.now = rc_now,
		.schedule = rc_schedule,
		.notify = on_rc_event,
		.vm_inputs = rc_vm_inputs,
		.debounce = true,
	};

	d->rc_timer = loop_timer_new(d->loop, on_rc_timer, d);
	d->rc = reconcile_new(d->conf, &rc_hooks, d);
	d->watch = watch_new(d->loop, &watch_hooks, d);
	if (!d->watch) {
		log_error("cannot watch udev for devices: %s", strerror(errno));
		return -errno;
	}
	/* Without udevd no sink gets its link: none waits for one. */
	input_manager_udevd(d->input, watch_uses_udevd(d->watch));
	return 0;
}

/* The control socket; EADDRINUSE means another vmplugd answers there, and says so. */
static int start_control(struct daemon *d)
{
	const char *path = d->conf->daemon.control_socket;

	d->control = control_new(d->loop, path, d->conf->daemon.control_group, &daemon_control_ops,
				 d);
	if (d->control)
		return 0;
	if (errno == EADDRINUSE)
		log_error("another vmplugd is running: it answers on %s", path);
	else
		log_error("cannot listen on %s (control-socket): %s", path, strerror(errno));
	return -EADDRINUSE;
}

int daemon_start(struct daemon *d)
{
	int r;

	d->loop = loop_new();
	if (!d->loop) {
		log_error("cannot create the event loop: %s", strerror(errno));
		return -errno;
	}
	/* A client or QEMU that goes away mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (loop_add_signal(d->loop, SIGTERM, on_quit_signal, d) < 0 ||
	    loop_add_signal(d->loop, SIGINT, on_quit_signal, d) < 0 ||
	    loop_add_signal(d->loop, SIGHUP, on_hup, d) < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return -errno;
	}
	if (start_control(d) < 0)
		return -EADDRINUSE;
	d->status = notify_status_new(d->loop, DAEMON_STATUS_INTERVAL_USEC);
	d->watchdog = notify_watchdog_new(d->loop);
	if (start_input(d) < 0)
		return -ENOMEM;
	r = start_usb(d);
	if (r == 0)
		update_status(d);
	return r;
}

void daemon_free(struct daemon *d)
{
	if (!d)
		return;
	control_free(d->control);
	focus_free(d->focus);
	d->focus = NULL;
	watch_free(d->watch);
	reconcile_free(d->rc);
	input_manager_free(d->input);
	loop_timer_free(d->rc_timer);
	notify_status_free(d->status);
	notify_watchdog_free(d->watchdog);
	loop_free(d->loop);
	conf_free(d->conf);
	free(d);
}

/* Input is forwarded at the priority vmplugd was started with: say so
 * when that is a normal one. The kernel keeps a few dozen events per
 * reader of a device; a vmplugd kept from the CPU for tens of
 * milliseconds finds them dropped (SYN_DROPPED) and recovers only the
 * key state, not the keys typed meanwhile. The service manager gives the
 * real-time priority (vmplugd.service: CPUSchedulingPolicy=fifo), so no
 * vmplugd needs the capability to take it. */
static void tell_priority(const struct conf *conf)
{
	int policy = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;

	if (conf->n_inputs == 0 || policy == SCHED_FIFO || policy == SCHED_RR)
		return;
	log_info("input is read at normal priority: on a busy host the kernel may drop "
		 "events before vmplugd reads them (keys typed meanwhile are lost); start "
		 "vmplugd with real-time priority, as vmplugd.service does "
		 "(CPUSchedulingPolicy=fifo, or chrt -f 1)");
}

int daemon_run(struct daemon *d)
{
	int code;

	log_info("vmplugd %s started with %s: %zu VM(s), %zu input(s)", PACKAGE_VERSION,
		 d->opts.confdir, d->conf->n_vms, d->conf->n_inputs);
	log_vms(d->conf);
	tell_priority(d->conf);
	code = loop_run(d->loop);

	log_info("vmplugd stopped");
	return code;
}

int daemon_check_config(const char *confdir, FILE *out, FILE *err)
{
	char **errors = NULL;
	struct conf *conf = load(confdir, geteuid() == 0, &errors);

	for (size_t i = 0; errors && errors[i]; i++)
		fprintf(err, "%s\n", errors[i]);
	if (conf) {
		conf_dump(conf, out);
		conf_free(conf);
	} else {
		fprintf(err, "%zu error(s) in %s\n", strv_len(errors), confdir);
	}
	strv_free(errors);
	return conf ? 0 : -EINVAL;
}

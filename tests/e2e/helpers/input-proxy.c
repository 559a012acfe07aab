/* input-proxy: the input manager on its own, for e2e scenarios without
 * vmplugd: loads a configuration directory, makes the sinks, follows the
 * udev watcher's input events and routes frames, until SIGTERM or SIGINT.
 * Its router has no hotkeys, and the first VM that takes input counts as
 * running and has the focus: frames go to that VM's sinks. Prints one
 * line per sink ("sink NAME DEVNODE"), then "ready"; logs to stderr. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "loop/loop.h"
#include "daemon/watch.h"
#include "input/input.h"
#include "util/log.h"
#include "util/util.h"

static void on_usb_add(void *data, struct usb_device *d)
{
	usb_device_free(d);
}

static void on_usb_remove(void *data, const char *syspath)
{
}

static void on_input(void *data, const char *action, struct udev_device *dev)
{
	input_manager_udev(data, action, dev);
}

static void on_signal(struct loop *loop, int signo, void *data)
{
	loop_quit(loop, 0);
}

/* No chord can hold a key back or switch. */
static void no_hotkeys(struct conf *conf)
{
	memset(&conf->sw.cycle, 0, sizeof(conf->sw.cycle));
	memset(&conf->sw.host, 0, sizeof(conf->sw.host));
	memset(&conf->sw.panic, 0, sizeof(conf->sw.panic));
	for (size_t i = 0; i < conf->n_vms; i++)
		memset(&conf->vms[i].hotkey, 0, sizeof(conf->vms[i].hotkey));
}

/* The focus on the first VM (in file-name order) that takes input. */
static int focus_first_vm(struct input_manager *m, const struct conf *conf)
{
	for (size_t i = 0; i < conf->n_vms; i++) {
		if (!conf->vms[i].inputs || !conf->vms[i].inputs[0])
			continue;
		input_manager_vm_up(m, conf->vms[i].name);
		return input_manager_switch(m, conf->vms[i].name);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct watch_hooks hooks = { .usb_add = on_usb_add,
				     .usb_remove = on_usb_remove,
				     .input = on_input };
	struct input_sink_status *ks;
	struct input_manager *m;
	struct conf *conf = NULL;
	char **errors = NULL;
	struct watch *w;
	struct loop *loop;
	size_t n;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: input-proxy CONFDIR\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_DEBUG);
	r = conf_load(argv[1], NULL, &conf, &errors);
	for (size_t i = 0; errors && errors[i]; i++)
		fprintf(stderr, "%s\n", errors[i]);
	strv_free(errors);
	if (r < 0)
		return 1;
	no_hotkeys(conf);
	loop = loop_new();
	if (!loop || loop_add_signal(loop, SIGTERM, on_signal, NULL) < 0 ||
	    loop_add_signal(loop, SIGINT, on_signal, NULL) < 0) {
		perror("input-proxy: event loop");
		return 1;
	}
	m = input_manager_new(loop, conf, NULL, NULL);
	r = focus_first_vm(m, conf);
	if (r < 0) {
		fprintf(stderr, "input-proxy: cannot focus the first VM: %s\n", strerror(-r));
		return 1;
	}
	w = watch_new(loop, &hooks, m);
	if (!w) {
		perror("input-proxy: udev watcher");
		return 1;
	}
	n = input_manager_sinks(m, &ks);
	for (size_t i = 0; i < n; i++)
		printf("sink %s %s\n", ks[i].name, ks[i].devnode ? ks[i].devnode : "-");
	free(ks);
	printf("ready\n");
	fflush(stdout);
	r = loop_run(loop);
	watch_free(w);
	input_manager_free(m);
	loop_free(loop);
	conf_free(conf);
	return r;
}

/* Load vmplug.conf and vm.d/NAME.conf into struct conf, free it, and
 * look things up in it (see conf.h). */
#include "config.h"

#include "conf/conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "util/util.h"

/* ------------------------------------------------------------------ loading */

/* What a configuration without vmplug.conf says. */
static void set_defaults(struct conf *conf)
{
	conf->daemon.control_socket = xstrdup(CONF_DEFAULT_CONTROL_SOCKET);
	conf->daemon.cache_dir = xstrdup(VMPLUG_CACHEDIR);
	conf->daemon.state_dir = xstrdup(VMPLUG_STATEDIR);
	conf->daemon.log_level = LOG_LEVEL_INFO;
	conf->sw.on_switch_timeout = 10;
	conf_chord_parse("KEY_LEFTCTRL+KEY_LEFTALT+KEY_BACKSPACE", &conf->sw.panic, NULL);
}

/* qsort() order of C strings. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files of DIR/vm.d, sorted; a missing vm.d is an empty list. */
static int list_vm_files(const char *vmdir, char ***out)
{
	DIR *d = opendir(vmdir);
	char **names = xcalloc(1, sizeof(char *));
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		*out = names;
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf"))
			continue;
		strv_append(&names, de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_str);
	*out = names;
	return 0;
}

/* The configuration directory (or vm.d) exists, is one, and is safe to read as root. */
static bool check_dir(struct conf_parser *p, const char *path, const struct conf_load_opts *opts)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		p->file = conf_remember_file(p->conf, path);
		conf_error_at(p, 0, "cannot read the configuration directory: %s", strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		p->file = conf_remember_file(p->conf, path);
		conf_error_at(p, 0, "not a directory");
		return false;
	}
	if (opts->check_owner) {
		p->file = conf_remember_file(p->conf, path);
		return conf_check_owner(p, path, &st);
	}
	return true;
}

int conf_load(const char *dir, const struct conf_load_opts *opts, struct conf **out, char ***errors)
{
	static const struct conf_load_opts no_opts;
	struct conf *conf = xnew(struct conf);
	struct conf_parser p = { .conf = conf, .errors = errors };
	char *global = xasprintf("%s/vmplug.conf", dir);
	char *vmdir = xasprintf("%s/vm.d", dir);
	char **vmfiles = NULL;
	struct conf_vm_lines *lines = NULL;
	int r = 0;

	if (!opts)
		opts = &no_opts;
	*errors = xcalloc(1, sizeof(char *));
	conf->dir = xstrdup(dir);
	set_defaults(conf);

	if (!check_dir(&p, dir, opts)) {
		r = -EINVAL;
		goto out;
	}
	if (access(global, F_OK) == 0) {
		conf_parse_file(&p, global, opts);
		p.global_file = p.file;
	} else {
		p.global_file = conf_remember_file(conf, global);
	}
	if (access(vmdir, F_OK) == 0 && !check_dir(&p, vmdir, opts))
		goto done;
	r = list_vm_files(vmdir, &vmfiles);
	if (r < 0) {
		p.file = conf_remember_file(conf, vmdir);
		conf_error_at(&p, 0, "cannot list VM files: %s", strerror(-r));
		goto done;
	}
	conf_check_inputs(&p);
	conf->n_vms = strv_len(vmfiles);
	conf->vms = xcalloc(conf->n_vms, sizeof(struct conf_vm));
	lines = xcalloc(conf->n_vms + 1, sizeof(*lines));
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];
		char *path = xasprintf("%s/%s", vmdir, vmfiles[i]);

		vm->name = xstrndup(vmfiles[i], strlen(vmfiles[i]) - 5);
		vm->file = path;
		vm->backend_origin.file = conf_remember_file(conf, path);
		p.vm = vm;
		p.vm_file = true;
		p.seen_vm = false;
		p.vm_section_line = 0;
		memset(&p.vm_lines, 0, sizeof(p.vm_lines));
		if (!conf_valid_name(vm->name)) {
			p.file = vm->backend_origin.file;
			conf_error_at(&p, 0,
				      "invalid VM name '%s' (from the file name): use 1 to %d "
				      "letters, digits, '_', '.' or '-'",
				      vm->name, CONF_NAME_MAX);
			continue;
		}
		/* "host" names the host in `vmplugctl switch host`, the
		 * on-switch hook's VMPLUG_TO and the sinks vmplug-host-*. */
		if (streq(vm->name, "host")) {
			p.file = vm->backend_origin.file;
			conf_error_at(&p, 0,
				      "the VM name 'host' (from the file name) is reserved for the "
				      "host itself: rename the file");
			continue;
		}
		if (conf_parse_file(&p, path, opts))
			conf_check_vm(&p);
		lines[i] = p.vm_lines;
	}
	conf_resolve_chords(conf, p.cycle_set);
	conf_check_cross(&p, lines);
done:
	if (**errors)
		r = -EINVAL;
out:
	free(p.linebuf);
	free(p.sec_label);
	free(lines);
	strv_free(vmfiles);
	free(global);
	free(vmdir);
	if (r < 0) {
		conf_free(conf);
		return r;
	}
	*out = conf;
	return 0;
}

int conf_load_control_socket(const char *dir, char **path, char ***errors)
{
	static const struct conf_load_opts no_opts;
	struct conf *conf = xnew(struct conf);
	struct conf_parser p = { .conf = conf, .errors = errors, .socket_only = true };
	char *global = xasprintf("%s/vmplug.conf", dir);
	int r = 0;

	*errors = xcalloc(1, sizeof(char *));
	set_defaults(conf);
	if (!check_dir(&p, dir, &no_opts))
		r = access(dir, F_OK) < 0 && errno == ENOENT ? -ENOENT : -EINVAL;
	else if ((access(global, F_OK) == 0 || errno != ENOENT) &&
		 !conf_parse_file(&p, global, &no_opts) && access(global, R_OK) < 0 &&
		 errno == EACCES)
		r = -EACCES;
	if (r == 0 && **errors)
		r = -EINVAL;
	if (r == 0)
		*path = xstrdup(conf->daemon.control_socket);
	free(p.linebuf);
	free(p.sec_label);
	free(global);
	conf_free(conf);
	return r;
}

int conf_load_text(const char *global, size_t global_len, const char *vm_text, size_t vm_len,
		   struct conf **out, char ***errors)
{
	struct conf *conf = xnew(struct conf);
	struct conf_parser p = { .conf = conf, .errors = errors };
	struct conf_vm_lines lines[1] = { { 0 } };

	*errors = xcalloc(1, sizeof(char *));
	conf->dir = xstrdup(".");
	set_defaults(conf);
	p.file = p.global_file = conf_remember_file(conf, "./vmplug.conf");
	conf_parse_text(&p, global, global_len);
	conf_check_inputs(&p);
	if (vm_text) {
		struct conf_vm *vm;

		conf->n_vms = 1;
		conf->vms = xcalloc(1, sizeof(struct conf_vm));
		vm = &conf->vms[0];
		vm->name = xstrdup(CONF_TEXT_VM);
		vm->file = xstrdup("./vm.d/" CONF_TEXT_VM ".conf");
		vm->backend_origin.file = p.file = conf_remember_file(conf, vm->file);
		p.vm = vm;
		p.vm_file = true;
		conf_parse_text(&p, vm_text, vm_len);
		conf_check_vm(&p);
		lines[0] = p.vm_lines;
	}
	conf_resolve_chords(conf, p.cycle_set);
	conf_check_cross(&p, lines);
	free(p.linebuf);
	free(p.sec_label);
	if (**errors) {
		conf_free(conf);
		return -EINVAL;
	}
	*out = conf;
	return 0;
}

/* Free what one rule owns (not the rule itself: it sits in vm->rules). */
void conf_usb_rule_free(struct conf_usb_rule *r)
{
	free(r->name);
	free(r->port);
	free(r->serial);
	for (size_t i = 0; i < r->n_props; i++) {
		if (r->props[i].op == CONF_PROP_REGEX)
			regfree(&r->props[i].regex);
		free(r->props[i].name);
		free(r->props[i].value);
	}
	free(r->props);
	strv_free(r->tags);
}

void conf_free(struct conf *conf)
{
	if (!conf)
		return;
	free(conf->daemon.control_socket);
	free(conf->daemon.control_group);
	free(conf->daemon.cache_dir);
	free(conf->daemon.state_dir);
	free(conf->daemon.qemu_group);
	strv_free(conf->sw.on_switch);
	for (size_t i = 0; i < conf->n_inputs; i++) {
		free(conf->inputs[i].name);
		free(conf->inputs[i].device);
	}
	free(conf->inputs);
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];

		free(vm->name);
		free(vm->file);
		free(vm->qmp_socket);
		free(vm->usb_bus);
		free(vm->uri);
		free(vm->domain);
		free(vm->qemu_user);
		free(vm->qemu_group);
		strv_free(vm->inputs);
		for (size_t j = 0; j < vm->n_rules; j++)
			conf_usb_rule_free(&vm->rules[j]);
		free(vm->rules);
		for (size_t j = 0; j < vm->n_remotes; j++)
			conf_usb_remote_free(&vm->remotes[j]);
		free(vm->remotes);
	}
	free(conf->vms);
	for (size_t i = 0; i < conf->n_remembered; i++)
		conf_remembered_clear(&conf->remembered[i]);
	free(conf->remembered);
	strv_free(conf->files);
	free(conf->dir);
	free(conf);
}

/* ------------------------------------------------------------------ queries */

const struct conf_vm *conf_find_vm(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_vms; i++)
		if (streq(conf->vms[i].name, name))
			return &conf->vms[i];
	return NULL;
}

const struct conf_input *conf_find_input(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_inputs; i++)
		if (streq(conf->inputs[i].name, name))
			return &conf->inputs[i];
	return NULL;
}

const char *conf_backend_name(enum conf_backend b)
{
	return b == CONF_BACKEND_LIBVIRT ? "libvirt" : "qmp";
}

const char *conf_attach_mode_name(enum conf_attach_mode m)
{
	switch (m) {
	case CONF_ATTACH_FD:
		return "fd";
	case CONF_ATTACH_PORT:
		return "port";
	case CONF_ATTACH_ADDRESS:
		break;
	}
	return "address";
}

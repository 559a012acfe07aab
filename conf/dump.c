/* The effective configuration, one line per section (vmplugd --check-config). */
#include "config.h"

#include <stdlib.h>

#include "conf/conf.h"
#include "util/util.h"

/* "value" with " and \ escaped, so a dump line splits back into its values. */
static void put_quoted(FILE *f, const char *value)
{
	fputc('"', f);
	for (const char *c = value; *c; c++) {
		if (*c == '"' || *c == '\\')
			fputc('\\', f);
		fputc(*c, f);
	}
	fputc('"', f);
}

/* Print " key=value", quoting values that would not survive a split. */
static void put(FILE *f, const char *key, const char *value)
{
	if (!value)
		return;
	fprintf(f, " %s=", key);
	if (*value && !strpbrk(value, " \t\"\\,[]"))
		fputs(value, f);
	else
		put_quoted(f, value);
}

/* " key=KEY_A+KEY_B", nothing for an unset chord. */
static void put_chord(FILE *f, const char *key, const struct conf_chord *c)
{
	char *s;

	if (!c->n)
		return;
	s = conf_chord_to_string(c);
	put(f, key, s);
	free(s);
}

/* " key=N", nothing when unset (-1). */
static void put_number(FILE *f, const char *key, int v)
{
	if (v >= 0)
		fprintf(f, " %s=%d", key, v);
}

/* " key=VVVV" in hex, zero-padded to digits, nothing when unset (-1). */
static void put_hex(FILE *f, const char *key, int v, int digits)
{
	if (v >= 0)
		fprintf(f, " %s=%0*x", key, digits, v);
}

/* " key=a,b": a list joined by sep, nothing when unset. */
static void put_strv(FILE *f, const char *key, char *const *v, const char *sep)
{
	char *s;

	if (!v)
		return;
	s = strv_join(v, sep);
	put(f, key, s);
	free(s);
}

void conf_dump(const struct conf *conf, FILE *f)
{
	char buf[16];

	fprintf(f, "daemon");
	put(f, "control-socket", conf->daemon.control_socket);
	put(f, "control-group", conf->daemon.control_group);
	put(f, "cache-dir", conf->daemon.cache_dir);
	put(f, "log-level", log_level_name(conf->daemon.log_level));
	put(f, "qemu-group", conf->daemon.qemu_group);
	fprintf(f, "\nswitch");
	put_chord(f, "cycle", &conf->sw.cycle);
	put_chord(f, "host", &conf->sw.host);
	put_chord(f, "panic", &conf->sw.panic);
	if (conf->sw.on_switch) {
		/* argv as a list, so word boundaries stay visible */
		fprintf(f, " on-switch=[");
		for (size_t i = 0; conf->sw.on_switch[i]; i++) {
			fputs(i ? ", " : "", f);
			put_quoted(f, conf->sw.on_switch[i]);
		}
		fputc(']', f);
	}
	snprintf(buf, sizeof(buf), "%u", conf->sw.on_switch_timeout);
	put(f, "on-switch-timeout", buf);
	fputc('\n', f);
	for (size_t i = 0; i < conf->n_inputs; i++) {
		const struct conf_input *in = &conf->inputs[i];

		fprintf(f, "input %s", in->name);
		put(f, "device", in->device);
		put(f, "grab-all", in->grab_all ? "yes" : "no");
		put(f, "repeat", in->repeat ? "yes" : "no");
		fputc('\n', f);
	}
	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];

		fprintf(f, "vm %s", vm->name);
		put(f, "backend", conf_backend_name(vm->backend));
		put(f, "qmp-socket", vm->qmp_socket);
		put(f, "usb-bus", vm->usb_bus);
		put(f, "uri", vm->uri);
		put(f, "domain", vm->domain);
		put(f, "qemu-user", vm->qemu_user);
		put(f, "qemu-group", vm->qemu_group);
		put_strv(f, "inputs", vm->inputs, ",");
		put_chord(f, "hotkey", &vm->hotkey);
		put(f, "focus-on-start", vm->focus_on_start ? "yes" : "no");
		if (vm->inputs)
			put(f, "grab-toggle", vm->grab_toggle);
		fputc('\n', f);
		for (size_t j = 0; j < vm->n_rules; j++) {
			const struct conf_usb_rule *r = &vm->rules[j];

			fprintf(f, "vm %s %s %s", vm->name, r->deny ? "usb-deny" : "usb", r->name);
			put(f, "port", r->port);
			put_number(f, "bus", r->bus);
			put_number(f, "device", r->devnum);
			put_hex(f, "vendor", r->vendor, 4);
			put_hex(f, "product", r->product, 4);
			put(f, "serial", r->serial);
			for (size_t k = 0; k < r->n_props; k++) {
				char *pv = xasprintf("%s%c%s", r->props[k].name,
						     r->props[k].op == CONF_PROP_EQUALS ? '=' : '~',
						     r->props[k].value);

				put(f, "property", pv);
				free(pv);
			}
			for (size_t k = 0; r->tags && r->tags[k]; k++)
				put(f, "tag", r->tags[k]);
			put_hex(f, "interface-class", r->interface_class, 2);
			if (!r->deny)
				put(f, "attach-mode", conf_attach_mode_name(r->attach_mode));
			fputc('\n', f);
		}
		for (size_t j = 0; j < vm->n_remotes; j++) {
			char *addr = conf_usb_remote_address(&vm->remotes[j]);

			fprintf(f, "vm %s usb-remote %s", vm->name, vm->remotes[j].name);
			put(f, "listen", addr);
			fputc('\n', f);
			free(addr);
		}
	}
}

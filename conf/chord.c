/* Hotkey chords ("KEY_A+KEY_B"), the default cycle chord, and the grab
 * toggle of each VM's input-linux objects, which shares no key with them. */
#include "config.h"

#include <errno.h>
#include <libevdev/libevdev.h>
#include <stdlib.h>

#include "conf/conf-int.h"
#include "util/util.h"

int conf_chord_parse(const char *s, struct conf_chord *out, char **bad)
{
	struct conf_chord c = { 0 };
	const char *p = s;

	if (bad)
		*bad = NULL;
	for (;;) {
		size_t len = strcspn(p, "+");
		char *name = xstrndup(p, len);
		char *tok = strstrip(name);
		int code = *tok ? libevdev_event_code_from_name(EV_KEY, tok) : -1;

		if (code < 0) {
			if (bad)
				*bad = xstrdup(tok);
			free(name);
			return -EINVAL;
		}
		free(name);
		for (unsigned i = 0; i < c.n; i++)
			if (c.codes[i] == code)
				return -EINVAL;
		if (c.n == CONF_CHORD_MAX)
			return -EINVAL;
		c.codes[c.n++] = (unsigned short)code;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = c;
	return 0;
}

char *conf_chord_to_string(const struct conf_chord *chord)
{
	char **names = NULL, *s;

	for (unsigned i = 0; i < chord->n; i++) {
		const char *n = libevdev_event_code_get_name(EV_KEY, chord->codes[i]);

		if (n) {
			strv_append(&names, n);
		} else {
			char *num = xasprintf("%u", chord->codes[i]);

			strv_append(&names, num);
			free(num);
		}
	}
	s = strv_join(names, "+");
	strv_free(names);
	return s;
}

bool conf_chord_eq(const struct conf_chord *a, const struct conf_chord *b)
{
	unsigned found = 0;

	if (a->n != b->n || a->n == 0)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		for (unsigned j = 0; j < b->n; j++)
			if (a->codes[i] == b->codes[j])
				found++;
	return found == a->n;
}

/* Is code one of the chord's keys? */
static bool chord_has(const struct conf_chord *chord, unsigned short code)
{
	for (unsigned i = 0; i < chord->n; i++)
		if (chord->codes[i] == code)
			return true;
	return false;
}

/* Is code part of a [switch] chord or of a VM's hotkey? */
static bool chords_use(const struct conf *conf, unsigned short code)
{
	if (chord_has(&conf->sw.cycle, code) || chord_has(&conf->sw.host, code) ||
	    chord_has(&conf->sw.panic, code))
		return true;
	for (size_t i = 0; i < conf->n_vms; i++)
		if (chord_has(&conf->vms[i].hotkey, code))
			return true;
	return false;
}

/* QEMU's input-linux toggles its grab on a key combination of its own
 * (GrabToggleKeys), in QEMU's order of preference after its default. */
static const struct grab_toggle {
	const char *name;
	unsigned short keys[4]; /* 0 ends */
} grab_toggles[] = {
	{ "scrolllock", { KEY_SCROLLLOCK } },
	{ "ctrl-scrolllock", { KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_SCROLLLOCK } },
	{ "meta-meta", { KEY_LEFTMETA, KEY_RIGHTMETA } },
	{ "alt-alt", { KEY_LEFTALT, KEY_RIGHTALT } },
	{ "shift-shift", { KEY_LEFTSHIFT, KEY_RIGHTSHIFT } },
	{ "ctrl-ctrl", { KEY_LEFTCTRL, KEY_RIGHTCTRL } },
};

/* Does the toggle t need a key some chord uses? */
static bool toggle_clashes(const struct conf *conf, const struct grab_toggle *t)
{
	for (size_t k = 0; k < ARRAY_SIZE(t->keys) && t->keys[k]; k++)
		if (chords_use(conf, t->keys[k]))
			return true;
	return false;
}

/* Pick the first toggle that shares no key with vmplug's chords, so a
 * hotkey never doubles as QEMU's toggle. */
const char *conf_grab_toggle(const struct conf *conf)
{
	for (size_t t = 0; t < ARRAY_SIZE(grab_toggles); t++)
		if (!toggle_clashes(conf, &grab_toggles[t]))
			return grab_toggles[t].name;
	return "ctrl-ctrl";
}

const char *conf_grab_toggle_name(const char *name)
{
	for (size_t t = 0; t < ARRAY_SIZE(grab_toggles); t++)
		if (streq(grab_toggles[t].name, name))
			return grab_toggles[t].name;
	return NULL;
}

const unsigned short *conf_grab_toggle_keys(const char *name)
{
	for (size_t t = 0; name && t < ARRAY_SIZE(grab_toggles); t++)
		if (streq(grab_toggles[t].name, name))
			return grab_toggles[t].keys;
	return NULL;
}

/* Both Ctrl keys cycle unless the configuration says otherwise, or uses
 * them for another chord. */
static void default_cycle(struct conf *conf)
{
	struct conf_chord c;

	conf_chord_parse(CONF_DEFAULT_CYCLE, &c, NULL);
	if (conf_chord_eq(&c, &conf->sw.host) || conf_chord_eq(&c, &conf->sw.panic))
		return;
	for (size_t i = 0; i < conf->n_vms; i++)
		if (conf_chord_eq(&c, &conf->vms[i].hotkey))
			return;
	conf->sw.cycle = c;
}

void conf_resolve_chords(struct conf *conf, bool cycle_set)
{
	if (!cycle_set)
		default_cycle(conf);
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];

		if (vm->grab_toggle)
			continue; /* grab-toggle = */
		else if (vm->backend == CONF_BACKEND_QMP)
			vm->grab_toggle = conf_grab_toggle(conf);
		else
			vm->grab_toggle = "ctrl-ctrl"; /* QEMU's, which libvirt keeps */
	}
}

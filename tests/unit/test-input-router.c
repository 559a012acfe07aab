/* Scenario tests of input/router on virtual time, written as data: each
 * file in tests/data/router is a configuration, then events in and the
 * frames, focus changes and grabs expected out, keyd-style:
 *
 *   # what the scenario shows (lines before the first "===")
 *   === vmplug.conf
 *   [switch]
 *   cycle = KEY_LEFTCTRL+KEY_RIGHTCTRL
 *   [input "kbd"]
 *   device = /dev/input/by-id/kbd
 *   === vm alpha            (keys of its [vm] section; qmp-socket is added)
 *   inputs = kbd
 *   === events
 *   up alpha                (the VM came up; "down alpha": it went down)
 *   kbd KEY_A:1             (a frame of source kbd; SYN_REPORT is added)
 *   > host/kbd: KEY_A:1     (what must come out, in order: nothing else may)
 *   wait 600                (virtual time passes, in ms)
 *   switch alpha            (vmplugctl switch; "> switch alpha: ok" or an errno name)
 *   gone kbd                (the source went away)
 *   ungrab kbd, grab kbd    (the source's grab, as the manager would have it)
 *   leds host/kbd NUML CAPSL  (the reader of that sink set these lights;
 *                           "leds host/kbd" alone: none)
 *   idle                    (no sink holds a key)
 *
 * Outputs: "> TARGET/SOURCE: EVENTS" (without the SYN_REPORT that ends
 * every frame), "> focus: FROM -> TO", "> grab: on|off", "> leds SOURCE:
 * NUML CAPSL" (the lights the device must show now; "none"). The grab hook
 * grabs or ungrabs every source at once, as the manager does when no key
 * is held.
 *
 * Beyond the expected lines, every frame written must make sense for a
 * device that only sees what the router wrote: a key goes down only when
 * up, up or repeats only when down. At the end, when no key is down on
 * any source, no sink may hold one. */
#include "config.h"

#include <errno.h>
#include <libevdev/libevdev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "input/frame.h"
#include "input/router.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/log.h"
#include "util/util.h"

static char **scenarios;

struct sink {
	char *name; /* TARGET/SOURCE */
	struct input_keys keys;
};

struct run {
	const char *file;
	int line;
	struct input_router *r;
	uint64_t now;
	char **out; /* outputs since the last input line */
	struct sink *sinks;
	size_t n_sinks;
	char **sources;
	bool *grabbed;
	struct input_keys *phys;
};

static struct sink *sink_of(struct run *run, const char *name)
{
	struct sink *k;

	for (size_t i = 0; i < run->n_sinks; i++)
		if (streq(run->sinks[i].name, name))
			return &run->sinks[i];
	k = xappend(&run->sinks, &run->n_sinks, sizeof(*run->sinks));
	k->name = xstrdup(name);
	return k;
}

static void on_write(void *data, size_t source, size_t target, const struct input_event *ev,
		     size_t n)
{
	struct run *run = data;
	char *name = xasprintf("%s/%s", input_router_target_name(run->r, target),
			       input_router_source_name(run->r, source)),
	     *text, *line;
	struct sink *k = sink_of(run, name);

	ck_assert_msg(n > 0 && ev[n - 1].type == EV_SYN && ev[n - 1].code == SYN_REPORT,
		      "%s:%d: a frame to %s does not end with SYN_REPORT", run->file, run->line,
		      name);
	for (size_t i = 0; i + 1 < n; i++) {
		const char *key = libevdev_event_code_get_name(EV_KEY, ev[i].code);
		bool down = input_keys_down(&k->keys, ev[i].code);

		if (ev[i].type != EV_KEY)
			continue;
		ck_assert_msg(ev[i].value != 1 || !down, "%s:%d: %s pressed on %s while down",
			      run->file, run->line, key, name);
		ck_assert_msg(ev[i].value == 1 || down, "%s:%d: %s %s on %s while up", run->file,
			      run->line, key, ev[i].value ? "repeated" : "released", name);
		input_keys_update(&k->keys, &ev[i], 1);
	}
	text = fixture_events_text(ev, n - 1);
	line = xasprintf("%s: %s", name, text);
	strv_append(&run->out, line);
	free(line);
	free(text);
	free(name);
}

static void on_focus(void *data, const char *from, const char *to)
{
	struct run *run = data;
	char *line = xasprintf("focus: %s -> %s", from, to);

	strv_append(&run->out, line);
	free(line);
}

static void on_grab(void *data, bool grab)
{
	struct run *run = data;

	for (size_t i = 0; run->sources[i]; i++)
		run->grabbed[i] = grab;
	strv_append(&run->out, grab ? "grab: on" : "grab: off");
}

/* "NUML CAPSL" for a mask of LED codes, "none" for 0; a new string. */
static char *leds_text(unsigned leds)
{
	char **names = NULL, *text;

	for (unsigned code = 0; code <= LED_MAX && code < 32; code++)
		if (leds & (1u << code))
			strv_append(&names, libevdev_event_code_get_name(EV_LED, code) + 4);
	text = names ? strv_join(names, " ") : xstrdup("none");
	strv_free(names);
	return text;
}

static void on_leds(void *data, size_t source, unsigned leds)
{
	struct run *run = data;
	char *text = leds_text(leds);
	char *line = xasprintf("leds %s: %s", input_router_source_name(run->r, source), text);

	strv_append(&run->out, line);
	free(line);
	free(text);
}

static const struct input_router_hooks hooks = {
	.write = on_write,
	.focus = on_focus,
	.grab = on_grab,
	.leds = on_leds,
};

static size_t source_index(struct run *run, const char *name)
{
	for (size_t i = 0; run->sources[i]; i++)
		if (streq(run->sources[i], name))
			return i;
	return (size_t)-1;
}

/* "leds TARGET/SOURCE NAME...": the reader of that sink set these lights. */
static void sink_leds(struct run *run, char **w)
{
	char *slash = strchr(w[1], '/');
	size_t t, s = slash ? source_index(run, slash + 1) : (size_t)-1;
	unsigned leds = 0;

	ck_assert_msg(slash && s != (size_t)-1, "%s:%d: bad sink '%s'", run->file, run->line, w[1]);
	for (t = 0; t < input_router_n_targets(run->r); t++)
		if (strncmp(input_router_target_name(run->r, t), w[1], (size_t)(slash - w[1])) ==
			0 &&
		    input_router_target_name(run->r, t)[slash - w[1]] == '\0')
			break;
	ck_assert_msg(t < input_router_n_targets(run->r), "%s:%d: no target in '%s'", run->file,
		      run->line, w[1]);
	for (size_t i = 2; w[i]; i++) {
		char *name = xasprintf("LED_%s", w[i]);
		int code = libevdev_event_code_from_name(EV_LED, name);

		ck_assert_msg(code >= 0 && code < 32, "%s:%d: bad LED '%s'", run->file, run->line,
			      w[i]);
		leds |= 1u << code;
		free(name);
	}
	input_router_sink_leds(run->r, s, t, leds);
}

/* "KEY_A:1" and friends into an event. */
static struct input_event parse_event(struct run *run, const char *word)
{
	char *name = xstrndup(word, strcspn(word, ":"));
	const char *colon = strchr(word, ':');
	int type = libevdev_event_type_from_code_name(name);
	int code = libevdev_event_code_from_code_name(name);
	struct input_event e = { 0 };

	ck_assert_msg(type >= 0 && code >= 0 && colon, "%s:%d: bad event '%s'", run->file,
		      run->line, word);
	e.type = (unsigned short)type;
	e.code = (unsigned short)code;
	e.value = atoi(colon + 1);
	free(name);
	return e;
}

static void frame(struct run *run, size_t s, char **words)
{
	struct input_event ev[64];
	size_t n = 0;

	for (size_t i = 0; words[i]; i++) {
		ck_assert_uint_lt(n, ARRAY_SIZE(ev) - 1);
		ev[n] = parse_event(run, words[i]);
		if (ev[n].type == EV_KEY)
			input_keys_update(&run->phys[s], &ev[n], 1);
		n++;
	}
	ev[n++] = (struct input_event){ .type = EV_SYN, .code = SYN_REPORT };
	input_router_frame(run->r, s, run->grabbed[s], ev, n, run->now);
}

static void frame_text(struct run *run, size_t s, const char *text)
{
	char **words = strv_split(text, " ");

	frame(run, s, words);
	strv_free(words);
}

static void do_switch(struct run *run, const char *target)
{
	int r = input_router_switch(run->r, target);
	char *line = xasprintf("switch %s: %s", target, r == 0 ? "ok" : strerrorname_np(-r));

	strv_append(&run->out, line);
	free(line);
}

static void assert_idle(struct run *run)
{
	for (size_t i = 0; i < run->n_sinks; i++) {
		char *held = input_keys_to_string(&run->sinks[i].keys);

		ck_assert_msg(input_keys_count(&run->sinks[i].keys) == 0,
			      "%s:%d: %s still holds %s", run->file, run->line, run->sinks[i].name,
			      held);
		free(held);
	}
}

static void input_line(struct run *run, char **w)
{
	size_t s = w[0] ? source_index(run, w[0]) : (size_t)-1;
	unsigned long ms;

	if (s != (size_t)-1) {
		frame(run, s, w + 1);
	} else if (streq(w[0], "up") && w[1]) {
		input_router_vm_up(run->r, w[1]);
	} else if (streq(w[0], "down") && w[1]) {
		input_router_vm_down(run->r, w[1]);
	} else if (streq(w[0], "wait") && w[1] && parse_uint(w[1], 10, 3600000, &ms) == 0) {
		run->now += ms * USEC_PER_MSEC;
	} else if (streq(w[0], "switch") && w[1]) {
		do_switch(run, w[1]);
	} else if (streq(w[0], "gone") && w[1] && source_index(run, w[1]) != (size_t)-1) {
		memset(&run->phys[source_index(run, w[1])], 0, sizeof(*run->phys));
		input_router_source_gone(run->r, source_index(run, w[1]));
	} else if ((streq(w[0], "grab") || streq(w[0], "ungrab")) && w[1] &&
		   source_index(run, w[1]) != (size_t)-1) {
		run->grabbed[source_index(run, w[1])] = streq(w[0], "grab");
	} else if (streq(w[0], "leds") && w[1]) {
		sink_leds(run, w);
	} else if (streq(w[0], "idle")) {
		assert_idle(run);
	} else {
		ck_abort_msg("%s:%d: cannot read this line", run->file, run->line);
	}
}

/* The expected lines after an input line against what came out. */
static void compare(struct run *run, char **want, int at)
{
	char *w = want ? strv_join(want, "\n  ") : xstrdup("");
	char *g = run->out ? strv_join(run->out, "\n  ") : xstrdup("");

	ck_assert_msg(streq(w, g), "%s:%d: expected:\n  %s\ngot:\n  %s", run->file, at, w, g);
	free(w);
	free(g);
	strv_free(run->out);
	run->out = NULL;
}

/* Split the file into the configuration files (written under dir) and
 * the event lines (returned). */
static char **split_scenario(const char *path, const char *dir, int *events_line)
{
	FILE *f = fopen(path, "re"), *out = NULL;
	char *line = NULL, **events = NULL;
	size_t cap = 0;
	bool in_events = false;
	int no = 0;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (getline(&line, &cap, f) > 0) {
		no++;
		line[strcspn(line, "\n")] = '\0';
		if (startswith(line, "=== ")) {
			const char *what = line + 4;

			if (out)
				fclose(out);
			out = NULL;
			if (streq(what, "events")) {
				in_events = true;
				*events_line = no;
			} else if (startswith(what, "vm ")) {
				char *p = xasprintf("%s/vm.d/%s.conf", dir, what + 3);

				out = fopen(p, "we");
				ck_assert_ptr_nonnull(out);
				fprintf(out, "[vm]\nqmp-socket = /run/vmplug-test/%s.qmp\n",
					what + 3);
				free(p);
			} else {
				char *p = xasprintf("%s/%s", dir, what);

				out = fopen(p, "we");
				ck_assert_ptr_nonnull(out);
				free(p);
			}
			continue;
		}
		if (in_events)
			strv_append(&events, line);
		else if (out)
			fprintf(out, "%s\n", line);
	}
	if (out)
		fclose(out);
	free(line);
	fclose(f);
	ck_assert_msg(in_events, "%s: no \"=== events\"", path);
	return events;
}

START_TEST(scenario)
{
	char *path = xasprintf("%s/%s", ROUTER_SCENARIOS, scenarios[_i]);
	char *dir = scratch_new("router"), *vmdir = xasprintf("%s/vm.d", dir);
	struct run run = { .file = scenarios[_i] };
	char **events, **errors = NULL, **want = NULL;
	struct conf *conf = NULL;
	int first = 0, at = 0;
	bool any_down = false;

	ck_assert_int_eq(mkdir(vmdir, 0755), 0);
	events = split_scenario(path, dir, &first);
	ck_assert_msg(conf_load(dir, NULL, &conf, &errors) == 0, "%s: configuration: %s",
		      scenarios[_i], errors && errors[0] ? errors[0] : "?");
	strv_free(errors);
	run.sources = xcalloc(conf->n_inputs + 1, sizeof(char *));
	for (size_t i = 0; i < conf->n_inputs; i++)
		run.sources[i] = xstrdup(conf->inputs[i].name);
	run.grabbed = xcalloc(conf->n_inputs + 1, sizeof(bool));
	for (size_t i = 0; i < conf->n_inputs; i++)
		run.grabbed[i] = true;
	run.phys = xcalloc(conf->n_inputs + 1, sizeof(*run.phys));
	run.r = input_router_new(conf, &hooks, &run);
	run.now = 1000 * USEC_PER_SEC;

	for (size_t i = 0; events && events[i]; i++) {
		char *text = strstrip(events[i]);
		char **w;

		run.line = first + 1 + (int)i;
		if (!*text || text[0] == '#')
			continue;
		if (text[0] == '>') {
			strv_append(&want, strstrip(text + 1));
			continue;
		}
		if (at)
			compare(&run, want, at);
		strv_free(want);
		want = NULL;
		at = run.line;
		w = strv_split(text, " \t");
		input_line(&run, w);
		strv_free(w);
	}
	if (at)
		compare(&run, want, at);
	for (size_t i = 0; i < conf->n_inputs; i++)
		any_down |= input_keys_count(&run.phys[i]) > 0;
	if (!any_down)
		assert_idle(&run);

	strv_free(want);
	input_router_free(run.r);
	for (size_t i = 0; i < run.n_sinks; i++)
		free(run.sinks[i].name);
	free(run.sinks);
	strv_free(run.sources);
	free(run.grabbed);
	free(run.phys);
	strv_free(events);
	conf_free(conf);
	scratch_remove(dir);
	free(vmdir);
	free(path);
}
END_TEST

/* A reload: held keys stay with targets that remain (their releases come
 * later), a focused VM that no longer takes input gives the focus to the
 * host, and switching ends when no VM takes input. */
START_TEST(reload)
{
	struct run run = { .file = "reload" };
	struct conf *one = fixture_conf(
	    "[input \"kbd\"]\ndevice = /dev/kbd\n[input \"mouse\"]\ndevice = /dev/mouse\n", "alpha",
	    "[vm]\nqmp-socket = /run/a.qmp\ninputs = kbd, mouse\n", "beta",
	    "[vm]\nqmp-socket = /run/b.qmp\ninputs = kbd\n", NULL);
	struct conf *two = fixture_conf("[input \"kbd\"]\ndevice = /dev/kbd\n", "alpha",
					"[vm]\nqmp-socket = /run/a.qmp\ninputs = kbd\n", "beta",
					"[vm]\nqmp-socket = /run/b.qmp\n", NULL);
	struct conf *none = fixture_conf("[input \"kbd\"]\ndevice = /dev/kbd\n", "alpha",
					 "[vm]\nqmp-socket = /run/a.qmp\n", NULL);
	char **sources = strv_split("kbd mouse", " ");
	bool grabbed[] = { true, true };
	struct input_keys phys[2] = { 0 };
	char *text;

	run.sources = sources;
	run.grabbed = grabbed;
	run.phys = phys;
	run.r = input_router_new(one, &hooks, &run);
	ck_assert(input_router_switching(run.r));
	input_router_vm_up(run.r, "alpha");
	input_router_vm_up(run.r, "beta");
	ck_assert_int_eq(input_router_switch(run.r, "beta"), 0);
	frame_text(&run, 0, "KEY_A:1");
	ck_assert_int_eq(input_router_switch(run.r, "alpha"), 0);
	frame_text(&run, 0, "KEY_B:1");
	strv_free(run.out);
	run.out = NULL;

	/* beta loses its inputs while alpha, focused, holds B */
	input_router_set_conf(run.r, two);
	ck_assert_str_eq(input_router_focus(run.r), "alpha");
	ck_assert_ptr_null(run.out);
	frame_text(&run, 0, "KEY_B:0");
	text = strv_join(run.out, "; ");
	ck_assert_str_eq(text, "alpha/kbd: KEY_B:0");
	free(text);
	strv_free(run.out);
	run.out = NULL;
	ck_assert_int_eq(input_router_switch(run.r, "beta"), -ENXIO);

	/* alpha loses them too: the focus goes to the host, nothing to switch */
	input_router_set_conf(run.r, none);
	ck_assert_str_eq(input_router_focus(run.r), "host");
	ck_assert(!input_router_switching(run.r));
	text = strv_join(run.out, "; ");
	ck_assert_str_eq(text, "focus: alpha -> host");
	free(text);
	strv_free(run.out);
	run.out = NULL;
	frame_text(&run, 0, "KEY_C:1 KEY_C:0");
	ck_assert_ptr_null(run.out); /* no sink takes it: no host sinks either */
	ck_assert_int_eq(input_router_switch(run.r, "next"), -EHOSTDOWN);

	input_router_free(run.r);
	for (size_t i = 0; i < run.n_sinks; i++)
		free(run.sinks[i].name);
	free(run.sinks);
	strv_free(sources);
	conf_free(one);
	conf_free(two);
	conf_free(none);
}
END_TEST

static Suite *router_suite(void)
{
	Suite *s = suite_create("input-router");
	TCase *tc = tcase_create("scenarios");

	tcase_add_loop_test(tc, scenario, 0, (int)strv_len(scenarios));
	tcase_add_test(tc, reload);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	log_set_level(LOG_LEVEL_ERROR);
	scenarios = list_dir(ROUTER_SCENARIOS, ".scenario");
	r = run_suite(router_suite());
	strv_free(scenarios);
	return r;
}

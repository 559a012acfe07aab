/* The input router: where each frame of each physical source goes. A pure
 * core: frames, VM and source events and "now" come in through the
 * functions below; frames for sinks, focus changes and grab requests go
 * out through hooks. It has no deadline of its own: nothing happens but
 * in answer to an event. No fds, no clock: tests drive it on virtual
 * time.
 *
 * Targets are the host and every VM that lists at least one source in
 * `inputs =`. All sources switch together: the focus is one target, and
 * a source goes to it when it is the host or lists the source, else to
 * the host (a VM without the mouse leaves the mouse on the host).
 *
 * Frames travel by number, so no name is looked up per frame: source s
 * is the configuration's [input] section s (conf->inputs[s]); target 0
 * is the host, then come the VMs with inputs in file-name order. Both
 * numberings change only with input_router_set_conf();
 * input_router_source_name() and input_router_target_name() say which
 * name a number has.
 *
 * Hotkeys ([switch] cycle, host, panic; each VM's hotkey) are chords:
 *   - A chord is recognised when all its keys are down (keys from any
 *     source count); the chord is never delivered to any target; the
 *     switch happens once all its keys, and every key swallowed with it,
 *     are released. Another chord completed before that replaces it.
 *   - Keys pressed one by one: a key that could begin (or continue) a
 *     chord is held back, delivered to nobody yet, for as long as it
 *     takes. It is delivered, in order and before anything else, as soon
 *     as it turns out not to be a chord: another key or button is pressed
 *     that no chord continues with, a wheel turns, or the key is released
 *     (a tap: press and release). Pointer motion, and the releases and
 *     repeats of keys delivered before, pass by without delivering it.
 *     So a chord pressed at any speed never reaches a target; the cost is
 *     that a modifier that may begin a chord, held alone (as games do),
 *     reaches the target only with the next key, button or wheel, or as
 *     a tap when released.
 *   - cycle: host, then each running VM in file-name order, then the host.
 *   - panic pressed INPUT_ROUTER_PANIC_PRESSES times within
 *     INPUT_ROUTER_PANIC_USEC: every key is released on every target,
 *     the focus goes to the host and the grab hook ungrabs every source,
 *     so the host has the physical devices as if vmplugd were not there;
 *     nothing is forwarded any more. A hotkey or input_router_switch()
 *     takes them back (grab hook) and switches.
 *
 * QEMU's own grab toggle never completes on a VM's sink: its input-linux
 * objects hand the device back to the host when they see it (and vmplug
 * hides its sinks from the host, so that VM would have no keyboard).
 * With a Scroll Lock toggle (the one vmplugd picks), Scroll Lock, which
 * QEMU never passes to the guest then, is not delivered; with a pair
 * (both Meta, Alt, Shift or Ctrl keys), the second key is not delivered
 * while the first is down on that sink. The VM's conf_vm says which
 * toggle it has.
 *
 * Lock lights follow the focus: each source shows the lights of the
 * target it goes to, as that target's reader set them on its sink
 * (input_router_sink_leds()), when the target sets lights at all: the
 * host does (its desktop sets them on the host's sinks), and so does a VM
 * whose sinks pass the guest's lights back (virtio-input-host); a VM
 * whose sinks do not (QEMU's input-linux) shows none. After a panic the
 * host sets the devices' lights itself until they are taken back.
 *
 * No stuck keys: the router remembers which target each key and button
 * went to. A release goes to that target, wherever the focus is; a switch
 * releases on each old target everything still down there (the key's
 * later release then goes nowhere, and its repeats are dropped); a
 * source that goes away has everything it held released. Keys pressed
 * while held back or swallowed are never delivered, so neither are their
 * releases. Frames of a source that is not grabbed (the host sees them
 * already) are only watched: their keys count for chords, releases of
 * keys held on a target are delivered, nothing else is. */
#pragma once

#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* The host's name as a target (sink vmplug-host-SOURCE, `switch host`). */
#define INPUT_ROUTER_HOST "host"
#define INPUT_ROUTER_PANIC_PRESSES 3
#define INPUT_ROUTER_PANIC_USEC (2 * 1000 * 1000ULL)

struct input_router;

struct input_router_hooks {
	/* Write one frame (events ending with SYN_REPORT; borrowed for the
	 * call) to the sink of (source, target), both numbered as above. */
	void (*write)(void *data, size_t source, size_t target, const struct input_event *ev,
		      size_t n);
	/* The focus moved: VM names or INPUT_ROUTER_HOST. */
	void (*focus)(void *data, const char *from, const char *to);
	/* Grab (true) or ungrab (false) every physical source. */
	void (*grab)(void *data, bool grab);
	/* The lock lights source should show changed: a mask of LED codes
	 * (bit LED_CAPSL is Caps Lock). May be NULL. */
	void (*leds)(void *data, size_t source, unsigned leds);
};

/* A router for conf's sources, VMs and chords (conf is only read during
 * the call). The focus starts on the host; every VM counts as not
 * running until input_router_vm_up(). */
struct input_router *input_router_new(const struct conf *conf,
				      const struct input_router_hooks *hooks, void *data);
/* Free; writes nothing (the sinks release their own keys). NULL is a no-op. */
void input_router_free(struct input_router *r);

/* A new configuration (reload; conf only read during the call). Call it
 * after the input manager took it: the sinks it removed released their
 * keys themselves. A focused VM that is no longer a target gives the
 * focus to the host. */
void input_router_set_conf(struct input_router *r, const struct conf *conf);

/* A frame of source number source (events up to SYN_REPORT; an unknown
 * number is ignored). grabbed: whether the source is grabbed (when not,
 * the frame is only watched, see above). */
void input_router_frame(struct input_router *r, size_t source, bool grabbed,
			const struct input_event *ev, size_t n, uint64_t now);
/* source went away: what it held is released on the targets that have it. */
void input_router_source_gone(struct input_router *r, size_t source);
/* vm came up (focus-on-start takes the focus, unless after a panic) or went
 * down (if focused, the focus goes to the host). */
void input_router_vm_up(struct input_router *r, const char *vm);
void input_router_vm_down(struct input_router *r, const char *vm);

/* The reader of the sink of (source, target) set its lock lights (the
 * desktop on the host's sink, QEMU's virtio-input-host for the guest on a
 * VM's): leds is the mask of those on. */
void input_router_sink_leds(struct input_router *r, size_t source, size_t target, unsigned leds);
/* The lights source should show now (for a device just opened). */
unsigned input_router_leds(const struct input_router *r, size_t source);

/* Switch now (vmplugctl switch): target is a VM name, INPUT_ROUTER_HOST or
 * "next" (as the cycle hotkey). After a panic the sources are grabbed
 * again first. 0 (also when the target has the focus already); -ENOENT:
 * no such VM; -ENXIO: the VM takes no input; -EHOSTDOWN: the VM is not
 * running ("next": none is and the host has the focus). */
int input_router_switch(struct input_router *r, const char *target);

/* Where the focus is: a VM name or INPUT_ROUTER_HOST. */
const char *input_router_focus(const struct input_router *r);
/* A panic gave the devices back to the host and nothing took them since. */
bool input_router_released(const struct input_router *r);
/* Some VM takes input: there is something to switch between. */
bool input_router_switching(const struct input_router *r);

/* The numbering (see above): how many targets, and the name of target t
 * or source s (NULL when out of range), valid until the next reload. */
size_t input_router_n_targets(const struct input_router *r);
const char *input_router_target_name(const struct input_router *r, size_t t);
const char *input_router_source_name(const struct input_router *r, size_t s);

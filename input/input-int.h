/* Internals of the input manager that tests reach: how sinks are made,
 * and a way to a sink past the router. The daemon uses
 * input_manager_new(), which makes uinput devices; tests hand in a maker
 * of writer-only sinks on socketpairs. */
#pragma once

#include <stdint.h>

#include "input/input.h"
#include "input/sink.h"

typedef int (*input_sink_create_fn)(const char *name, const struct libevdev *caps,
				    struct input_sink **out);

struct input_manager *input_manager_new_with(struct loop *loop, const struct conf *conf,
					     const struct input_manager_hooks *hooks, void *data,
					     input_sink_create_fn create);
/* Write a frame to the sink of (source, vm), vm INPUT_ROUTER_HOST for the
 * host's, by name and past the router. 0 or -errno (-ENOENT: no such
 * sink, or it could not be created). */
int input_manager_sink_write(struct input_manager *m, const char *source, const char *vm,
			     const struct input_event *ev, size_t n);
/* How long a new VM sink is held back for udev (see input_manager_udev);
 * sinks held back now wait no longer than that from now. */
void input_manager_set_udev_wait(struct input_manager *m, uint64_t usec);

/* Internals of the QMP backend that tests reach. */
#pragma once

#include <stdint.h>

/* How long a USB detach waits for DEVICE_DELETED once device_del has
 * returned, by default. */
#define BACKEND_QMP_DELETE_TIMEOUT_USEC (5 * 1000000ULL)
/* How often a VM that QEMU is still loading is asked whether it is done. */
#define BACKEND_QMP_LOADING_POLL_USEC (500 * 1000ULL)
/* How long device_add and device_del may take (see command_timeout()). */
#define BACKEND_QMP_HOTPLUG_TIMEOUT_USEC (30 * 1000000ULL)

/* Set that wait for detaches started from now on, in every QMP backend of
 * the process (tests shorten it); 0 restores the default. */
void backend_qmp_set_delete_timeout(uint64_t usec);
/* Set how often a loading VM is asked, in every QMP backend of the
 * process (tests lengthen it to see the events work alone); 0 restores
 * the default. */
void backend_qmp_set_loading_poll(uint64_t usec);

/* Configuration internals that tests reach: loading from memory, for the
 * fuzz target (tests/fuzz/fuzz-conf.c). */
#pragma once

#include <stddef.h>

#include "conf/conf.h"

/* The name of the VM conf_load_text() reads. */
#define CONF_TEXT_VM "vm"

/* As conf_load() on a directory holding `global` (len bytes) as
 * vmplug.conf and, unless vm_text is NULL, vm_text as vm.d/vm.conf, with
 * every check but the file owner and modes. Messages name the files
 * ./vmplug.conf and ./vm.d/vm.conf. Same results as conf_load(). */
int conf_load_text(const char *global, size_t global_len, const char *vm_text, size_t vm_len,
		   struct conf **out, char ***errors);

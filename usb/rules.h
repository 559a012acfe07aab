/* Matching host USB devices against a VM's [usb] / [usb-deny] rules.
 * Pure: config and device data in, verdicts out. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "usb/device.h"

/* True if every key of rule r matches d. Otherwise, if missed is given,
 * *missed names the first key that did not ("port", "bus", "device", "vendor", "product",
 * "serial", "property", "tag", "interface-class"). */
bool usb_rule_matches(const struct conf_usb_rule *r, const struct usb_device *d,
		      const char **missed);

/* Called by usb_rule_explain() for each key: its name, its value as the
 * configuration writes it ("046d", "ID_BUS=usb") and whether d matched. */
typedef void (*usb_key_fn)(void *data, const char *key, const char *value, bool matched);
/* Every key of rule r, in the order usb_rule_matches() checks them, with
 * whether d matches it, to fn (not only the first that does not).
 * Returns what usb_rule_matches() does. */
bool usb_rule_explain(const struct conf_usb_rule *r, const struct usb_device *d, usb_key_fn fn,
		      void *data);

enum usb_verdict {
	USB_VERDICT_NONE,   /* no [usb] rule of the VM matches */
	USB_VERDICT_CLAIM,  /* an [usb] rule matches and no [usb-deny] rule */
	USB_VERDICT_DENIED, /* a [usb-deny] rule matches (it wins) */
};

/* What vm's rules say about d. *rule (if given) is the first matching
 * [usb] rule for CLAIM, the first matching [usb-deny] rule for DENIED.
 * Hubs are judged like any device here; see usb_owner(). */
enum usb_verdict usb_vm_verdict(const struct conf_vm *vm, const struct usb_device *d,
				const struct conf_usb_rule **rule);

/* The VM that gets d: the first VM (in file-name order) whose rules
 * claim it, or NULL. Hubs, root hubs included, are never attached. If
 * given, *rule is the claiming rule and *claimers the number of VMs that
 * claim it (more than one is a conflict). */
const struct conf_vm *usb_owner(const struct conf *conf, const struct usb_device *d,
				const struct conf_usb_rule **rule, size_t *claimers);

/* Matching host USB devices against [usb] / [usb-deny] rules (see rules.h). */
#include "config.h"

#include "usb/rules.h"

#include <ctype.h>
#include <stdlib.h>

#include "util/util.h"

static bool prop_matches(const struct conf_property *p, const struct usb_device *d)
{
	const char *value = usb_device_prop(d, p->name);

	if (!value)
		return false;
	if (p->op == CONF_PROP_EQUALS)
		return streq(value, p->value);
	return regexec(&p->regex, value, 0, NULL, 0) == 0;
}

/* port = is the sysfs port path ("3-10", a bus number first) or udev's
 * ID_PATH ("pci-0000:00:14.0-usb-0:10", a subsystem name first). */
static bool port_matches(const char *port, const struct usb_device *d)
{
	char *id;
	bool ok;

	if (isdigit((unsigned char)port[0]))
		return usb_port_covers(port, d->sysname);
	id = usb_device_id_path(d);
	ok = id && usb_port_covers(port, id);
	free(id);
	return ok;
}

static bool fail(const char **missed, const char *key)
{
	if (missed)
		*missed = key;
	return false;
}

bool usb_rule_matches(const struct conf_usb_rule *r, const struct usb_device *d,
		      const char **missed)
{
	if (r->port && !port_matches(r->port, d))
		return fail(missed, "port");
	if (r->bus >= 0 && (unsigned)r->bus != d->bus)
		return fail(missed, "bus");
	if (r->devnum >= 0 && (unsigned)r->devnum != d->devnum)
		return fail(missed, "device");
	if (r->vendor >= 0 && r->vendor != d->vendor)
		return fail(missed, "vendor");
	if (r->product >= 0 && r->product != d->product)
		return fail(missed, "product");
	if (r->serial && !usb_device_serial_is(d, r->serial))
		return fail(missed, "serial");
	for (size_t i = 0; i < r->n_props; i++)
		if (!prop_matches(&r->props[i], d))
			return fail(missed, "property");
	for (size_t i = 0; r->tags && r->tags[i]; i++)
		if (!usb_device_has_tag(d, r->tags[i]))
			return fail(missed, "tag");
	if (r->interface_class >= 0 && !usb_device_has_if_class(d, (unsigned)r->interface_class))
		return fail(missed, "interface-class");
	return true;
}

enum usb_verdict usb_vm_verdict(const struct conf_vm *vm, const struct usb_device *d,
				const struct conf_usb_rule **rule)
{
	const struct conf_usb_rule *claim = NULL;

	for (size_t i = 0; i < vm->n_rules; i++) {
		const struct conf_usb_rule *r = &vm->rules[i];

		if (!usb_rule_matches(r, d, NULL))
			continue;
		if (r->deny) {
			if (rule)
				*rule = r;
			return USB_VERDICT_DENIED;
		}
		if (!claim)
			claim = r;
	}
	if (rule)
		*rule = claim;
	return claim ? USB_VERDICT_CLAIM : USB_VERDICT_NONE;
}

const struct conf_vm *usb_owner(const struct conf *conf, const struct usb_device *d,
				const struct conf_usb_rule **rule, size_t *claimers)
{
	const struct conf_vm *owner = NULL;
	const struct conf_usb_rule *owner_rule = NULL;
	size_t n = 0;

	if (!usb_device_is_hub(d)) {
		for (size_t i = 0; i < conf->n_vms; i++) {
			const struct conf_usb_rule *r;

			if (usb_vm_verdict(&conf->vms[i], d, &r) != USB_VERDICT_CLAIM)
				continue;
			if (!owner) {
				owner = &conf->vms[i];
				owner_rule = r;
			}
			n++;
		}
	}
	if (rule)
		*rule = owner_rule;
	if (claimers)
		*claimers = n;
	return owner;
}

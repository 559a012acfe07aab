/* Matching host USB devices against [usb] / [usb-deny] rules (see rules.h). */
#include "config.h"

#include "usb/rules.h"

#include <string.h>

#include "util/util.h"

static bool prop_matches(const struct conf_property *p, const struct usb_device *d)
{
	const char *value = usb_device_prop(d, p->name);

	if (!value)
		return false;
	if (p->op == CONF_PROP_EQUALS)
		return streq(value, p->value);
	/* the device chose the value: bound the work a match can take */
	if (strnlen(value, CONF_REGEX_SUBJECT_MAX + 1) > CONF_REGEX_SUBJECT_MAX)
		return false;
	return regexec(&p->regex, value, 0, NULL, 0) == 0;
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
	if (r->port && !usb_port_covers(r->port, d->sysname))
		return fail(missed, "port");
	if (r->vendor >= 0 && r->vendor != d->vendor)
		return fail(missed, "vendor");
	if (r->product >= 0 && r->product != d->product)
		return fail(missed, "product");
	if (r->serial && (!d->serial || !streq(r->serial, d->serial)))
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

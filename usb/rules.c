/* Matching host USB devices against [usb] / [usb-deny] rules (see rules.h). */
#include "config.h"

#include "usb/rules.h"

#include <ctype.h>
#include <stdlib.h>
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

/* One key of a rule met on the walk: its name as in the configuration,
 * which one of its kind (property and tag repeat) and whether d matched. */
typedef bool (*key_fn)(void *data, const struct conf_usb_rule *r, const char *key, size_t i,
		       bool matched);

/* Every key r gives, in the manual's order, to fn until it returns
 * false. True when fn never did. */
static bool walk(const struct conf_usb_rule *r, const struct usb_device *d, key_fn fn, void *data)
{
	if (r->port && !fn(data, r, "port", 0, port_matches(r->port, d)))
		return false;
	if (r->bus >= 0 && !fn(data, r, "bus", 0, (unsigned)r->bus == d->bus))
		return false;
	if (r->devnum >= 0 && !fn(data, r, "device", 0, (unsigned)r->devnum == d->devnum))
		return false;
	if (r->vendor >= 0 && !fn(data, r, "vendor", 0, r->vendor == d->vendor))
		return false;
	if (r->product >= 0 && !fn(data, r, "product", 0, r->product == d->product))
		return false;
	if (r->serial && !fn(data, r, "serial", 0, usb_device_serial_is(d, r->serial)))
		return false;
	for (size_t i = 0; i < r->n_props; i++)
		if (!fn(data, r, "property", i, prop_matches(&r->props[i], d)))
			return false;
	for (size_t i = 0; r->tags && r->tags[i]; i++)
		if (!fn(data, r, "tag", i, usb_device_has_tag(d, r->tags[i])))
			return false;
	if (r->interface_class >= 0 &&
	    !fn(data, r, "interface-class", 0,
		usb_device_has_if_class(d, (unsigned)r->interface_class)))
		return false;
	return true;
}

/* usb_rule_matches(): stop at the first key that does not match. */
static bool first_miss(void *data, const struct conf_usb_rule *r, const char *key, size_t i,
		       bool matched)
{
	const char **missed = data;

	if (!matched && missed)
		*missed = key;
	return matched;
}

bool usb_rule_matches(const struct conf_usb_rule *r, const struct usb_device *d,
		      const char **missed)
{
	return walk(r, d, first_miss, missed);
}

/* The value of the i-th key `key` of r as the configuration writes it. */
static char *key_value(const struct conf_usb_rule *r, const char *key, size_t i)
{
	if (streq(key, "port"))
		return xstrdup(r->port);
	if (streq(key, "bus"))
		return xasprintf("%d", r->bus);
	if (streq(key, "device"))
		return xasprintf("%d", r->devnum);
	if (streq(key, "vendor"))
		return xasprintf("%04x", r->vendor);
	if (streq(key, "product"))
		return xasprintf("%04x", r->product);
	if (streq(key, "serial"))
		return xstrdup(r->serial);
	if (streq(key, "property"))
		return xasprintf("%s%c%s", r->props[i].name,
				 r->props[i].op == CONF_PROP_EQUALS ? '=' : '~', r->props[i].value);
	if (streq(key, "tag"))
		return xstrdup(r->tags[i]);
	return xasprintf("%02x", r->interface_class);
}

struct explain_ctx {
	usb_key_fn fn;
	void *data;
	bool all;
};

/* usb_rule_explain(): every key, with its value, and on to the next. */
static bool report_key(void *data, const struct conf_usb_rule *r, const char *key, size_t i,
		       bool matched)
{
	struct explain_ctx *ctx = data;
	char *value = key_value(r, key, i);

	ctx->fn(ctx->data, key, value, matched);
	free(value);
	ctx->all = ctx->all && matched;
	return true;
}

bool usb_rule_explain(const struct conf_usb_rule *r, const struct usb_device *d, usb_key_fn fn,
		      void *data)
{
	struct explain_ctx ctx = { fn, data, true };

	walk(r, d, report_key, &ctx);
	return ctx.all;
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

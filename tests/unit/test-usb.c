/* Unit tests for usb/: the device model and the rules, with devices and
 * configurations written as data. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "usb/rules.h"
#include "util/util.h"

START_TEST(port_covers_itself_and_what_is_behind_it)
{
	ck_assert(usb_port_covers("3-10", "3-10"));
	ck_assert(usb_port_covers("3-10", "3-10.2"));
	ck_assert(usb_port_covers("3-10", "3-10.2.4"));
	ck_assert(!usb_port_covers("3-10", "3-100"));
	ck_assert(!usb_port_covers("3-10", "3-1"));
	ck_assert(!usb_port_covers("3-10", "4-10"));
	ck_assert(!usb_port_covers("3-10.2", "3-10"));
	ck_assert(!usb_port_covers("3-10.2", "3-10.20"));
}
END_TEST

START_TEST(device_helpers)
{
	struct usb_device *d = fixture_usb("3-10.2 dev=5 vid=046d pid=0825 name=Webcam");
	struct usb_device *root = fixture_usb("usb3 dev=1 vid=1d6b pid=0002 class=09");
	struct usb_device *c;
	char *s;

	ck_assert_str_eq(d->syspath, "/sys/devices/pci0000:00/0000:00:14.0/usb3/3-10/3-10.2");
	ck_assert_str_eq(usb_device_hostport(d), "10.2");
	ck_assert_ptr_null(usb_device_hostport(root));
	ck_assert(usb_device_is_root_hub(root));
	ck_assert(usb_device_is_hub(root));
	ck_assert(!usb_device_is_hub(d));
	s = usb_device_describe(d);
	ck_assert_str_eq(s, "3-10.2 046d:0825 \"Webcam\"");
	free(s);
	usb_device_add_prop(d, "ID_SERIAL_SHORT", "0001");
	usb_device_add_tag(d, "uaccess");
	usb_device_add_tag(d, "uaccess");
	usb_device_add_if_class(d, 3);
	c = usb_device_copy(d);
	usb_device_free(d);
	ck_assert_str_eq(usb_device_prop(c, "ID_SERIAL_SHORT"), "0001");
	ck_assert_ptr_null(usb_device_prop(c, "ID_SERIAL"));
	ck_assert_uint_eq(strv_len(c->tags), 1);
	ck_assert(usb_device_has_if_class(c, 3));
	usb_device_free(c);
	usb_device_free(root);
}
END_TEST

START_TEST(descriptors_give_interface_classes)
{
	/* device (18), config (9), HID interface (9), endpoint (7),
	 * video interface class 0x0e (9) */
	static const uint8_t blob[] = {
		18, 1, 0x00, 0x02, 0, 0, 0,  64,   0x6d, 0x04, 0x25, 0x08, 0,    1, 1,    2, 3, 1,
		9,  2, 34,   0,    2, 1, 0,  0xa0, 50,   9,    4,    0,    0,    1, 0x03, 1, 1, 0,
		7,  5, 0x81, 3,    8, 0, 10, 9,    4,    1,    0,    0,    0x0e, 1, 0,    0,
	};
	struct usb_device *d = fixture_usb("1-1 dev=2");

	ck_assert_int_eq(usb_device_parse_descriptors(d, blob, sizeof(blob)), 2);
	ck_assert_uint_eq(d->n_if_classes, 2);
	ck_assert(usb_device_has_if_class(d, 0x03));
	ck_assert(usb_device_has_if_class(d, 0x0e));
	/* Truncated in the middle of a descriptor: an error, what came before kept. */
	ck_assert_int_eq(usb_device_parse_descriptors(d, blob, sizeof(blob) - 3), -EINVAL);
	/* A zero length would loop forever if it were trusted. */
	ck_assert_int_eq(usb_device_parse_descriptors(d, (const uint8_t[]){ 0, 4, 0, 0 }, 4),
			 -EINVAL);
	usb_device_free(d);

	d = fixture_usb("1-1 dev=2");
	usb_device_parse_udev_interfaces(d, ":030101:030102:0e0100:");
	ck_assert_uint_eq(d->n_if_classes, 2);
	ck_assert(usb_device_has_if_class(d, 0x0e));
	usb_device_free(d);
}
END_TEST

static const char *owner_name(const struct conf *conf, const char *desc, const char **rule,
			      size_t *claimers)
{
	struct usb_device *d = fixture_usb(desc);
	const struct conf_usb_rule *r = NULL;
	const struct conf_vm *vm = usb_owner(conf, d, &r, claimers);

	usb_device_free(d);
	if (rule)
		*rule = r ? r->name : NULL;
	return vm ? vm->name : NULL;
}

START_TEST(port_rule_claims_devices_behind_hubs_but_never_hubs)
{
	struct conf *conf = fixture_conf(NULL, "pc",
					 "[vm]\nqmp-socket = /run/pc.qmp\n"
					 "[usb \"desk\"]\nport = 3-10\n",
					 NULL);
	const char *rule;

	ck_assert_str_eq(owner_name(conf, "3-10 dev=4 vid=1234 pid=0001", &rule, NULL), "pc");
	ck_assert_str_eq(rule, "desk");
	/* a hub plugged into the port: not attached itself */
	ck_assert_ptr_null(owner_name(conf, "3-10 dev=4 vid=05e3 pid=0608 class=09", NULL, NULL));
	/* devices behind it (and behind a hub behind it) are */
	ck_assert_str_eq(owner_name(conf, "3-10.2 dev=5 vid=046d pid=0825", NULL, NULL), "pc");
	ck_assert_str_eq(owner_name(conf, "3-10.4.1 dev=9 vid=046d pid=c077", NULL, NULL), "pc");
	/* not a neighbour with a longer number, nor another bus */
	ck_assert_ptr_null(owner_name(conf, "3-1 dev=6 vid=046d pid=0825", NULL, NULL));
	ck_assert_ptr_null(owner_name(conf, "3-100 dev=6 vid=046d pid=0825", NULL, NULL));
	ck_assert_ptr_null(owner_name(conf, "4-10 dev=6 vid=046d pid=0825", NULL, NULL));
	/* the root hub, never */
	ck_assert_ptr_null(owner_name(conf, "usb3 dev=1 vid=1d6b pid=0003 class=09", NULL, NULL));
	conf_free(conf);
}
END_TEST

START_TEST(deny_wins_over_every_rule_of_the_vm)
{
	struct conf *conf = fixture_conf(NULL, "pc",
					 "[vm]\nqmp-socket = /run/pc.qmp\n"
					 "[usb \"desk\"]\nport = 3-10\n"
					 "[usb \"logi\"]\nvendor = 046d\n"
					 "[usb-deny \"receiver\"]\nvendor = 046d\nproduct = c52b\n",
					 NULL);
	struct usb_device *d = fixture_usb("3-10.1 dev=7 vid=046d pid=c52b");
	const struct conf_usb_rule *r;

	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], d, &r), USB_VERDICT_DENIED);
	ck_assert_str_eq(r->name, "receiver");
	ck_assert_ptr_null(usb_owner(conf, d, NULL, NULL));
	usb_device_free(d);
	/* the same vendor with another product is claimed by the first matching rule */
	ck_assert_str_eq(
	    owner_name(conf, "3-10.1 dev=7 vid=046d pid=0825", &(const char *){ NULL }, NULL),
	    "pc");
	d = fixture_usb("3-10.1 dev=7 vid=046d pid=0825");
	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], d, &r), USB_VERDICT_CLAIM);
	ck_assert_str_eq(r->name, "desk");
	usb_device_free(d);
	conf_free(conf);
}
END_TEST

START_TEST(ids_serial_property_tag_and_interface_class)
{
	struct conf *conf = fixture_conf(
	    NULL, "pc",
	    "[vm]\nqmp-socket = /run/pc.qmp\n"
	    "[usb \"cam\"]\nvendor = 0x046D\nproduct = 0825\nserial = 1A2B3C\n"
	    "[usb \"token\"]\nproperty = ID_SERIAL_SHORT~^0001\nproperty = ID_BUS=usb\ntag = "
	    "uaccess\n"
	    "[usb \"hid\"]\ninterface-class = 03\nport = 1-4\n",
	    NULL);
	const struct conf_vm *vm = &conf->vms[0];
	const char *missed;
	struct usb_device *d;

	ck_assert_str_eq(owner_name(conf, "2-1 dev=3 vid=046d pid=0825 serial=1A2B3C", NULL, NULL),
			 "pc");
	/* hex is case-insensitive, serial is exact, a missing serial does not match */
	ck_assert_ptr_null(
	    owner_name(conf, "2-1 dev=3 vid=046d pid=0825 serial=1a2b3c", NULL, NULL));
	ck_assert_ptr_null(owner_name(conf, "2-1 dev=3 vid=046d pid=0825", NULL, NULL));

	d = fixture_usb("2-2 dev=4 prop=ID_SERIAL_SHORT=0001ABC prop=ID_BUS=usb tag=uaccess");
	ck_assert(usb_rule_matches(&vm->rules[1], d, NULL));
	usb_device_free(d);
	/* the regex is anchored by its ^ only */
	d = fixture_usb("2-2 dev=4 prop=ID_SERIAL_SHORT=X0001 prop=ID_BUS=usb tag=uaccess");
	ck_assert(!usb_rule_matches(&vm->rules[1], d, &missed));
	ck_assert_str_eq(missed, "property");
	usb_device_free(d);
	d = fixture_usb("2-2 dev=4 prop=ID_SERIAL_SHORT=0001 prop=ID_BUS=usb");
	ck_assert(!usb_rule_matches(&vm->rules[1], d, &missed));
	ck_assert_str_eq(missed, "tag");
	usb_device_free(d);
	/* a property the device lacks never matches */
	d = fixture_usb("2-2 dev=4 prop=ID_SERIAL_SHORT=0001 tag=uaccess");
	ck_assert(!usb_rule_matches(&vm->rules[1], d, &missed));
	ck_assert_str_eq(missed, "property");
	usb_device_free(d);
	/* a regex runs on at most CONF_REGEX_SUBJECT_MAX bytes of what the
	 * device says: a longer value never matches */
	for (size_t len = CONF_REGEX_SUBJECT_MAX; len <= CONF_REGEX_SUBJECT_MAX + 1; len++) {
		char *value = xmalloc(len + 1);
		char *desc;

		memset(value, 'A', len);
		memcpy(value, "0001", 4);
		value[len] = '\0';
		desc = xasprintf("2-2 dev=4 prop=ID_SERIAL_SHORT=%s prop=ID_BUS=usb tag=uaccess",
				 value);
		d = fixture_usb(desc);
		ck_assert_uint_eq(strlen(usb_device_prop(d, "ID_SERIAL_SHORT")), len);
		ck_assert(usb_rule_matches(&vm->rules[1], d, NULL) ==
			  (len <= CONF_REGEX_SUBJECT_MAX));
		usb_device_free(d);
		free(desc);
		free(value);
	}

	d = fixture_usb("1-4 dev=2 if=08");
	ck_assert(!usb_rule_matches(&vm->rules[2], d, &missed));
	ck_assert_str_eq(missed, "interface-class");
	usb_device_add_if_class(d, 3);
	ck_assert(usb_rule_matches(&vm->rules[2], d, NULL));
	usb_device_free(d);

	/* the first key that did not match, in the documented order */
	d = fixture_usb("2-1 dev=3 vid=046d pid=0826 serial=1A2B3C");
	ck_assert(!usb_rule_matches(&vm->rules[0], d, &missed));
	ck_assert_str_eq(missed, "product");
	usb_device_free(d);
	d = fixture_usb("2-1 dev=3 vid=046e pid=0826");
	ck_assert(!usb_rule_matches(&vm->rules[0], d, &missed));
	ck_assert_str_eq(missed, "vendor");
	usb_device_free(d);
	d = fixture_usb("2-1 dev=3 vid=046d pid=0825");
	ck_assert(!usb_rule_matches(&vm->rules[2], d, &missed));
	ck_assert_str_eq(missed, "port");
	usb_device_free(d);
	conf_free(conf);
}
END_TEST

START_TEST(serial_as_udev_shows_it)
{
	/* What systemd's usb_id builtin (v252) puts in ID_SERIAL_SHORT. */
	static const struct {
		const char *raw, *udev;
	} cases[] = {
		{ "SER0001", "SER0001" },
		{ "My Serial 01", "My_Serial_01" },
		{ "  a   b  ", "a_b" },
		{ "A/B(c)*", "A_B_c__" },
		{ "#+-.:=@_", "#+-.:=@_" },
		{ "x\\x41", "x\\x41" }, /* udev's own escape stands */
		{ "x\\y\\", "x_y_" },
		{ "a\x7f", "a_" },       /* DEL passes the first check */
		{ "A,B", NULL },         /* a comma: no ID_SERIAL_SHORT at all */
		{ "tab\there", NULL },   /* a control byte: likewise */
		{ "caf\xc3\xa9", NULL }, /* beyond ASCII: likewise */
		{ "", NULL },
		{ "   ", NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = usb_serial_udev(cases[i].raw);

		if (cases[i].udev)
			ck_assert_msg(got && streq(got, cases[i].udev), "'%s' gave '%s', not '%s'",
				      cases[i].raw, got ? got : "(none)", cases[i].udev);
		else
			ck_assert_msg(!got, "'%s' gave '%s', not none", cases[i].raw, got);
		free(got);
	}
}
END_TEST

START_TEST(serial_matches_raw_or_as_udev_shows_it)
{
	/* Serials as devices send them, each rule naming it once as sysfs
	 * has it and once as udev's ID_SERIAL_SHORT shows it. */
	struct conf *conf = fixture_conf(NULL, "pc",
					 "[vm]\nqmp-socket = /run/pc.qmp\n"
					 "[usb \"raw\"]\nserial = My Serial  01\n"
					 "[usb \"udev\"]\nserial = My_Serial_01\n"
					 "[usb \"slash-raw\"]\nserial = A/B(c)*\n"
					 "[usb \"slash-udev\"]\nserial = A_B_c__\n"
					 "[usb \"hex-udev\"]\nserial = x\\x41_\n",
					 NULL);
	const struct conf_vm *vm = &conf->vms[0];
	struct usb_device *d;

	/* inner spaces, a run of them and spaces at both ends */
	d = fixture_usb("1-1 dev=2 serial=%20My%20Serial%20%2001%20");
	ck_assert(usb_rule_matches(&vm->rules[1], d, NULL));
	ck_assert(!usb_rule_matches(&vm->rules[3], d, NULL));
	usb_device_free(d);
	d = fixture_usb("1-1 dev=2 serial=My%20Serial%20%2001");
	ck_assert(usb_rule_matches(&vm->rules[0], d, NULL));
	ck_assert(usb_rule_matches(&vm->rules[1], d, NULL));
	usb_device_free(d);
	/* what udev does not allow in a name becomes '_' */
	d = fixture_usb("1-1 dev=2 serial=A/B(c)*");
	ck_assert(usb_rule_matches(&vm->rules[2], d, NULL));
	ck_assert(usb_rule_matches(&vm->rules[3], d, NULL));
	ck_assert(!usb_rule_matches(&vm->rules[1], d, NULL));
	usb_device_free(d);
	/* udev keeps a "\x" as it is, and turns DEL into '_' */
	d = fixture_usb("1-1 dev=2 serial=x%5cx41%7f");
	ck_assert(usb_rule_matches(&vm->rules[4], d, NULL));
	usb_device_free(d);
	/* a control byte: the raw form as vmplug shows it, \xHH; udev
	 * gives none, and the copy keeps both forms */
	d = fixture_usb("1-1 dev=2 serial=A%01B");
	ck_assert_str_eq(d->serial, "A\\x01B");
	ck_assert_ptr_null(d->serial_udev);
	usb_device_free(d);
	d = fixture_usb("1-1 dev=2 serial=%20x%20y");
	struct usb_device *c = usb_device_copy(d);
	usb_device_free(d);
	ck_assert_str_eq(c->serial, "x y");
	ck_assert_str_eq(c->serial_udev, "x_y");
	ck_assert(usb_device_serial_is(c, "x y") && usb_device_serial_is(c, "x_y"));
	ck_assert(!usb_device_serial_is(c, " x y"));
	usb_device_free(c);
	/* a serial udev drops (a comma) still matches as it is, never as
	 * its look-alike */
	conf_free(conf);
	conf = fixture_conf(NULL, "pc",
			    "[vm]\nqmp-socket = /run/pc.qmp\n"
			    "[usb \"raw\"]\nserial = A,B\n"
			    "[usb \"udev\"]\nserial = A_B\n",
			    NULL);
	vm = &conf->vms[0];
	d = fixture_usb("1-1 dev=2 serial=A,B");
	ck_assert(usb_rule_matches(&vm->rules[0], d, NULL));
	ck_assert(!usb_rule_matches(&vm->rules[1], d, NULL));
	usb_device_free(d);
	conf_free(conf);
}
END_TEST

START_TEST(controller_anchored_port_as_udev_id_path)
{
	/* the fixture's controller is the PCI device 0000:00:14.0 */
	struct conf *conf = fixture_conf(NULL, "pc",
					 "[vm]\nqmp-socket = /run/pc.qmp\n"
					 "[usb \"desk\"]\nport = pci-0000:00:14.0-usb-0:10\n"
					 "[usb \"card\"]\nport = pci-0000:03:00.0-usb-0:2.1\n",
					 NULL);
	const struct conf_vm *vm = &conf->vms[0];
	static const struct {
		const char *desc;
		const char *id_path; /* NULL: none */
		const char *owner_rule;
	} cases[] = {
		/* no ID_PATH from udev: worked out from the syspath */
		{ "3-10 dev=2", "pci-0000:00:14.0-usb-0:10", "desk" },
		{ "3-10.2 dev=3", "pci-0000:00:14.0-usb-0:10.2", "desk" },
		{ "3-10.2.4 dev=4", "pci-0000:00:14.0-usb-0:10.2.4", "desk" },
		/* the same port of the controller's other (USB 3) bus */
		{ "4-10 dev=2", "pci-0000:00:14.0-usb-0:10", "desk" },
		{ "3-1 dev=5", "pci-0000:00:14.0-usb-0:1", NULL },
		{ "3-100 dev=6", "pci-0000:00:14.0-usb-0:100", NULL },
		{ "3-1.10 dev=7", "pci-0000:00:14.0-usb-0:1.10", NULL },
		/* udev's ID_PATH wins over the syspath */
		{ "1-2.1 dev=8 prop=ID_PATH=pci-0000:03:00.0-usb-0:2.1",
		  "pci-0000:03:00.0-usb-0:2.1", "card" },
		{ "1-2.1.3 dev=9 prop=ID_PATH=pci-0000:03:00.0-usb-0:2.1.3",
		  "pci-0000:03:00.0-usb-0:2.1.3", "card" },
		{ "1-10 dev=9 prop=ID_PATH=pci-0000:03:00.0-usb-0:10", "pci-0000:03:00.0-usb-0:10",
		  NULL },
		{ "1-2.11 dev=9 prop=ID_PATH=pci-0000:03:00.0-usb-0:2.11",
		  "pci-0000:03:00.0-usb-0:2.11", NULL },
		/* a controller that is not on PCI, without udev: no ID_PATH */
		{ "usb3 dev=1 class=09", "pci-0000:00:14.0", NULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct usb_device *d = fixture_usb(cases[i].desc);
		const struct conf_usb_rule *rule = NULL;
		char *id = usb_device_id_path(d);

		ck_assert_msg(id && streq(id, cases[i].id_path), "%s: ID_PATH %s", cases[i].desc,
			      id ? id : "(none)");
		usb_vm_verdict(vm, d, &rule);
		ck_assert_msg(cases[i].owner_rule ? rule && streq(rule->name, cases[i].owner_rule)
						  : !rule,
			      "%s: claimed by %s", cases[i].desc, rule ? rule->name : "(none)");
		free(id);
		usb_device_free(d);
	}
	{
		struct usb_device *d = usb_device_new("/sys/devices/platform/xhci-hcd.0/usb1/1-1",
						      "1-1");
		const char *missed = NULL;

		ck_assert_ptr_null(usb_device_id_path(d));
		ck_assert(!usb_rule_matches(&vm->rules[0], d, &missed));
		ck_assert_str_eq(missed, "port");
		usb_device_free(d);
	}
	conf_free(conf);
}
END_TEST

START_TEST(bus_and_device_number)
{
	struct conf *conf = fixture_conf(NULL, "pc",
					 "[vm]\nqmp-socket = /run/pc.qmp\n"
					 "[usb \"exact\"]\nbus = 3\ndevice = 5\n"
					 "[usb \"bus\"]\nbus = 4\n",
					 NULL);
	const struct conf_vm *vm = &conf->vms[0];
	const char *missed;
	struct usb_device *d = fixture_usb("3-10.2 dev=5");

	ck_assert(usb_rule_matches(&vm->rules[0], d, NULL));
	ck_assert(!usb_rule_matches(&vm->rules[1], d, &missed));
	ck_assert_str_eq(missed, "bus");
	usb_device_free(d);
	/* replugged: a new device number, and the rule no longer matches */
	d = fixture_usb("3-10.2 dev=6");
	ck_assert(!usb_rule_matches(&vm->rules[0], d, &missed));
	ck_assert_str_eq(missed, "device");
	usb_device_free(d);
	d = fixture_usb("4-1.1 dev=5");
	ck_assert(!usb_rule_matches(&vm->rules[0], d, &missed));
	ck_assert_str_eq(missed, "bus");
	ck_assert(usb_rule_matches(&vm->rules[1], d, NULL));
	usb_device_free(d);
	conf_free(conf);
}
END_TEST

static void add_key(void *data, const char *key, const char *value, bool matched)
{
	char ***out = data;
	char *s = xasprintf("%s = %s: %s", key, value, matched ? "yes" : "no");

	strv_append(out, s);
	free(s);
}

START_TEST(explain_reports_every_key)
{
	struct conf *conf = fixture_conf(
	    NULL, "pc",
	    "[vm]\nqmp-socket = /run/pc.qmp\n"
	    "[usb \"all\"]\nport = 1-1\nbus = 1\ndevice = 5\nvendor = 046d\nproduct = 0825\n"
	    "serial = A B\nproperty = ID_BUS=usb\nproperty = ID_MODEL~^Cam\ntag = uaccess\n"
	    "tag = seat\ninterface-class = 0e\n",
	    NULL);
	struct usb_device *d = fixture_usb(
	    "1-1.2 dev=6 vid=046d pid=0826 serial=A%20B prop=ID_BUS=usb prop=ID_MODEL=Webcam "
	    "tag=uaccess if=03");
	char **keys = NULL, *joined;

	/* every key, in the order of the manual, not only the first miss */
	ck_assert(!usb_rule_explain(&conf->vms[0].rules[0], d, add_key, &keys));
	joined = strv_join(keys, "; ");
	ck_assert_str_eq(joined, "port = 1-1: yes; bus = 1: yes; device = 5: no; "
				 "vendor = 046d: yes; product = 0825: no; serial = A B: yes; "
				 "property = ID_BUS=usb: yes; property = ID_MODEL~^Cam: no; "
				 "tag = uaccess: yes; tag = seat: no; interface-class = 0e: no");
	free(joined);
	strv_free(keys);
	usb_device_free(d);
	conf_free(conf);
}
END_TEST

START_TEST(conflicts_go_to_the_first_vm_in_file_name_order)
{
	struct conf *conf = fixture_conf(
	    NULL, "zeta", "[vm]\nqmp-socket = /run/z.qmp\n[usb]\nvendor = 046d\n", "alpha",
	    "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nport = 3-10\n", "mid",
	    "[vm]\nqmp-socket = /run/m.qmp\n[usb]\nport = 9-9\n", NULL);
	size_t claimers;

	ck_assert_str_eq(owner_name(conf, "3-10.2 dev=5 vid=046d pid=0825", NULL, &claimers),
			 "alpha");
	ck_assert_uint_eq(claimers, 2);
	ck_assert_str_eq(owner_name(conf, "1-1 dev=5 vid=046d pid=0825", NULL, &claimers), "zeta");
	ck_assert_uint_eq(claimers, 1);
	ck_assert_ptr_null(owner_name(conf, "1-1 dev=5 vid=1234 pid=0825", NULL, &claimers));
	ck_assert_uint_eq(claimers, 0);
	conf_free(conf);
}
END_TEST

START_TEST(deny_of_one_vm_does_not_stop_another)
{
	struct conf *conf = fixture_conf(
	    NULL, "a", "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nport = 1-1\n[usb-deny]\nport = 1-1\n",
	    "b", "[vm]\nqmp-socket = /run/b.qmp\n[usb]\nvendor = 1234\n", NULL);
	size_t claimers;

	ck_assert_str_eq(owner_name(conf, "1-1 dev=2 vid=1234 pid=0001", NULL, &claimers), "b");
	ck_assert_uint_eq(claimers, 1);
	conf_free(conf);
}
END_TEST

static Suite *usb_suite(void)
{
	Suite *s = suite_create("usb");
	TCase *tc = tcase_create("usb");

	tcase_add_test(tc, port_covers_itself_and_what_is_behind_it);
	tcase_add_test(tc, device_helpers);
	tcase_add_test(tc, descriptors_give_interface_classes);
	tcase_add_test(tc, port_rule_claims_devices_behind_hubs_but_never_hubs);
	tcase_add_test(tc, deny_wins_over_every_rule_of_the_vm);
	tcase_add_test(tc, ids_serial_property_tag_and_interface_class);
	tcase_add_test(tc, serial_as_udev_shows_it);
	tcase_add_test(tc, serial_matches_raw_or_as_udev_shows_it);
	tcase_add_test(tc, controller_anchored_port_as_udev_id_path);
	tcase_add_test(tc, bus_and_device_number);
	tcase_add_test(tc, explain_reports_every_key);
	tcase_add_test(tc, conflicts_go_to_the_first_vm_in_file_name_order);
	tcase_add_test(tc, deny_of_one_vm_does_not_stop_another);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(usb_suite)

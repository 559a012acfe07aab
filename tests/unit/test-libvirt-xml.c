/* Unit tests for the libvirt backend's domain XML (backends/libvirt-xml.c):
 * the hostdev it writes, what it reads from live domain XML (the corpus
 * in tests/data/libvirt), hostile strings, and mangled input. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/libvirt-int.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	ck_assert_msg(f, "cannot open %s", path);
	do {
		if (n + 4096 > cap) {
			cap = (n + 4096) * 2;
			buf = xrealloc(buf, cap + 1);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *corpus(const char *name, size_t *len)
{
	char *path = xasprintf("%s/%s", LIBVIRT_CORPUS, name);
	char *text = slurp(path, len);

	free(path);
	return text;
}

/* One line per item: "usb ID BUS ADDR attached" / "input ID EVDEV". */
static char *describe(const struct backend_list *l)
{
	char *out = xstrdup("");

	for (size_t i = 0; i < l->n; i++) {
		const struct backend_item *it = &l->items[i];
		char *line, *next;

		if (it->kind == BACKEND_ITEM_USB)
			line = xasprintf("usb %s %d %d%s", it->id, it->bus, it->addr,
					 it->attached ? " attached" : "");
		else
			line = xasprintf("input %s %s", it->id, it->evdev ? it->evdev : "-");
		next = xasprintf("%s%s\n", out, line);
		free(out);
		free(line);
		out = next;
	}
	return out;
}

static char *parse_corpus(const char *name, const char *vm)
{
	size_t len;
	char *xml = corpus(name, &len), *text;
	struct backend_list *l = NULL;

	ck_assert_int_eq(backend_libvirt_parse_list(xml, len, vm, &l), 0);
	text = describe(l);
	backend_list_free(l);
	free(xml);
	return text;
}

static const struct backend_usb_dev cam = {
	.id = "vmplug-usb-3-5",
	.mode = CONF_ATTACH_ADDRESS,
	.bus = 3,
	.addr = 5,
	.vendor = 0x046d,
	.product = 0x0825,
};

START_TEST(hostdev_xml_exact)
{
	char *xml = NULL;

	ck_assert_int_eq(backend_libvirt_hostdev_xml(&cam, &xml), 0);
	ck_assert_str_eq(xml, "<hostdev mode=\"subsystem\" type=\"usb\" managed=\"no\">"
			      "<source><vendor id=\"0x046d\"/><product id=\"0x0825\"/>"
			      "<address bus=\"3\" device=\"5\"/></source>"
			      "<alias name=\"ua-vmplug-usb-3-5\"/></hostdev>");
	free(xml);
}
END_TEST

START_TEST(hostdev_xml_without_ids)
{
	struct backend_usb_dev d = cam;
	char *xml = NULL;

	d.vendor = d.product = 0;
	d.bus = 12;
	d.addr = 127;
	d.mode = CONF_ATTACH_PORT;
	d.port = "10.2";
	ck_assert_int_eq(backend_libvirt_hostdev_xml(&d, &xml), 0);
	ck_assert_str_eq(xml, "<hostdev mode=\"subsystem\" type=\"usb\" managed=\"no\">"
			      "<source><address bus=\"12\" device=\"127\"/></source>"
			      "<alias name=\"ua-vmplug-usb-3-5\"/></hostdev>");
	free(xml);
}
END_TEST

START_TEST(hostdev_xml_refuses)
{
	static const char *const bad[] = {
		"usb-3-5",
		"vmplug-",
		"vmplug-usb-3.5",
		"vmplug-usb'3",
		"vmplug-usb\"3",
		"vmplug-<hostdev/>",
		"vmplug-a&b",
		"vmplug-a\nb",
		"vmplug-a b",
		"VMPLUG-usb-3-5",
		"vmplug-é",
		"",
		"vmplug-usb-3-5/../x",
	};
	struct backend_usb_dev d = cam;
	char *xml = NULL, *big;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		d.id = bad[i];
		ck_assert_msg(backend_libvirt_hostdev_xml(&d, &xml) == -EINVAL, "id '%s' accepted",
			      bad[i]);
	}
	d.id = NULL;
	ck_assert_int_eq(backend_libvirt_hostdev_xml(&d, &xml), -EINVAL);
	big = xmalloc(4097);
	memset(big, 'a', 4096);
	memcpy(big, "vmplug-", 7);
	big[4096] = '\0';
	d.id = big;
	ck_assert_int_eq(backend_libvirt_hostdev_xml(&d, &xml), -EINVAL);
	free(big);
	d = cam;
	d.bus = 0;
	ck_assert_int_eq(backend_libvirt_hostdev_xml(&d, &xml), -EINVAL);
	d = cam;
	d.addr = 0;
	ck_assert_int_eq(backend_libvirt_hostdev_xml(&d, &xml), -EINVAL);
	ck_assert_ptr_null(xml);
}
END_TEST

START_TEST(valid_ids)
{
	ck_assert(backend_libvirt_valid_id("vmplug-usb-3-5"));
	ck_assert(backend_libvirt_valid_id("vmplug-usbport-12-127"));
	ck_assert(backend_libvirt_valid_id("vmplug-in-kbd_2"));
	ck_assert(!backend_libvirt_valid_id("vmplug-in-kbd.2"));
	ck_assert(!backend_libvirt_valid_id("ua-vmplug-usb-3-5"));
	ck_assert(!backend_libvirt_valid_id(NULL));
}
END_TEST

START_TEST(list_live_domain)
{
	char *text = parse_corpus("good/live.xml", "win10");

	/* Not the user's hostdevs (alias hostdev0 or ua-webcam), not a PCI
	 * hostdev that wears a vmplug alias, not another VM's sink, not a
	 * physical keyboard. */
	ck_assert_str_eq(text, "input vmplug-in-kbd /dev/input/by-id/vmplug-win10-kbd\n"
			       "input vmplug-in-mouse.2 /dev/input/by-id/vmplug-win10-mouse.2\n"
			       "usb vmplug-usb-3-5 3 5 attached\n"
			       "usb vmplug-usb-2-7 -1 -1 attached\n");
	free(text);
}
END_TEST

START_TEST(list_other_vm)
{
	char *text = parse_corpus("good/live.xml", "linux");

	ck_assert_str_eq(text, "input vmplug-in-kbd /dev/input/by-id/vmplug-linux-kbd\n"
			       "usb vmplug-usb-3-5 3 5 attached\n"
			       "usb vmplug-usb-2-7 -1 -1 attached\n");
	free(text);
}
END_TEST

START_TEST(list_empty_domains)
{
	char *text = parse_corpus("good/minimal.xml", "x");

	ck_assert_str_eq(text, "");
	free(text);
	text = parse_corpus("good/no-devices-children.xml", "x");
	ck_assert_str_eq(text, "");
	free(text);
}
END_TEST

START_TEST(list_hostile)
{
	char *text = parse_corpus("good/hostile.xml", "hostile");

	/* The external entity is never fetched, aliases with quotes, '<',
	 * '&' or newlines are nobody's, a 4 KiB alias is too long, numbers
	 * are read as libvirt reads them (base 0, -1 when not a positive
	 * int), nested hostdevs and paths that leave by-id do not count. */
	ck_assert_str_eq(text, "usb vmplug-usb-1-2 1 2 attached\n"
			       "usb vmplug-usb-9-9 1 3 attached\n"
			       "usb vmplug-usb-odd -1 16 attached\n"
			       "usb vmplug-usb-big -1 8 attached\n"
			       "input vmplug-in-kbd /dev/input/by-id/vmplug-hostile-kbd\n");
	ck_assert_ptr_null(strstr(text, "root:"));
	free(text);
}
END_TEST

START_TEST(list_bad_corpus)
{
	DIR *d;
	struct dirent *de;
	unsigned n = 0;
	char *dir = xasprintf("%s/bad", LIBVIRT_CORPUS);

	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		struct backend_list *l = NULL;
		char *name, *xml, *found = NULL;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		name = xasprintf("bad/%s", de->d_name);
		xml = corpus(name, &len);
		ck_assert_msg(backend_libvirt_parse_list(xml, len, "x", &l) == -EINVAL,
			      "%s was read", name);
		ck_assert_msg(backend_libvirt_find_hostdev(xml, len, "vmplug-usb-1-2", &found) ==
				  -EINVAL,
			      "%s was searched", name);
		ck_assert_ptr_null(l);
		ck_assert_ptr_null(found);
		free(xml);
		free(name);
		n++;
	}
	closedir(d);
	free(dir);
	ck_assert_uint_ge(n, 5);
}
END_TEST

START_TEST(list_too_big)
{
	struct backend_list *l = NULL;

	/* Refused by size before libxml2 reads a byte of it. */
	ck_assert_int_eq(
	    backend_libvirt_parse_list("<domain/>", BACKEND_LIBVIRT_XML_MAX + 1, "x", &l), -EINVAL);
	ck_assert_ptr_null(l);
}
END_TEST

START_TEST(find_hostdev)
{
	size_t len;
	char *xml = corpus("good/live.xml", &len), *found = NULL, *domain;
	struct backend_list *l = NULL;

	ck_assert_int_eq(backend_libvirt_find_hostdev(xml, len, "vmplug-usb-3-5", &found), 0);
	ck_assert_ptr_nonnull(strstr(found, "<alias name=\"ua-vmplug-usb-3-5\"/>"));
	ck_assert_ptr_nonnull(strstr(found, "<address bus=\"3\" device=\"5\"/>"));
	ck_assert(startswith(found, "<hostdev mode=\"subsystem\" type=\"usb\""));
	/* What it found reads back as the same device. */
	domain = xasprintf("<domain><devices>%s</devices></domain>", found);
	ck_assert_int_eq(backend_libvirt_parse_list(domain, strlen(domain), "win10", &l), 0);
	ck_assert_uint_eq(l->n, 1);
	ck_assert_str_eq(l->items[0].id, "vmplug-usb-3-5");
	backend_list_free(l);
	free(domain);
	free(found);
	found = NULL;
	/* Only by alias: the user's device at 3:6 and ua-webcam are not
	 * vmplug's, a PCI hostdev is no USB device, and an id is exact. */
	ck_assert_int_eq(backend_libvirt_find_hostdev(xml, len, "vmplug-usb-3-6", &found), -ENOENT);
	ck_assert_int_eq(backend_libvirt_find_hostdev(xml, len, "webcam", &found), -ENOENT);
	ck_assert_int_eq(backend_libvirt_find_hostdev(xml, len, "vmplug-usb-4-4", &found), -ENOENT);
	ck_assert_int_eq(backend_libvirt_find_hostdev(xml, len, "vmplug-usb-3", &found), -ENOENT);
	ck_assert_ptr_null(found);
	free(xml);
}
END_TEST

START_TEST(round_trip)
{
	char *hostdev = NULL, *domain;
	struct backend_list *l = NULL;

	ck_assert_int_eq(backend_libvirt_hostdev_xml(&cam, &hostdev), 0);
	domain = xasprintf("<domain type='qemu'><name>a&amp;b</name><devices>%s</devices></domain>",
			   hostdev);
	ck_assert_int_eq(backend_libvirt_parse_list(domain, strlen(domain), "a", &l), 0);
	ck_assert_uint_eq(l->n, 1);
	ck_assert_int_eq(l->items[0].kind, BACKEND_ITEM_USB);
	ck_assert_str_eq(l->items[0].id, cam.id);
	ck_assert_int_eq(l->items[0].bus, 3);
	ck_assert_int_eq(l->items[0].addr, 5);
	backend_list_free(l);
	free(domain);
	free(hostdev);
}
END_TEST

/* Mangled copies of the corpus: every answer is a list or -EINVAL, and
 * ASan or valgrind see no bad access. */
START_TEST(mangled)
{
	static const char *const names[] = { "good/live.xml", "good/hostile.xml" };
	unsigned seed = 1;

	for (size_t f = 0; f < ARRAY_SIZE(names); f++) {
		size_t len;
		char *xml = corpus(names[f], &len);

		for (int round = 0; round < 300; round++) {
			char *copy = xmalloc(len + 1);
			size_t cut = (size_t)rand_r(&seed) % (len + 1);
			struct backend_list *l = NULL;
			char *found = NULL;
			int r;

			memcpy(copy, xml, len);
			for (int k = 0; k < 8; k++)
				copy[(size_t)rand_r(&seed) % len] = (char)rand_r(&seed);
			r = backend_libvirt_parse_list(copy, round % 2 ? cut : len, "win10", &l);
			ck_assert(r == 0 || r == -EINVAL);
			ck_assert(r == 0 ? l != NULL : l == NULL);
			backend_list_free(l);
			r = backend_libvirt_find_hostdev(copy, len, "vmplug-usb-3-5", &found);
			ck_assert(r == 0 || r == -ENOENT || r == -EINVAL);
			free(found);
			free(copy);
		}
		free(xml);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("libvirt-xml");
	TCase *tc = tcase_create("write");

	tcase_add_test(tc, hostdev_xml_exact);
	tcase_add_test(tc, hostdev_xml_without_ids);
	tcase_add_test(tc, hostdev_xml_refuses);
	tcase_add_test(tc, valid_ids);
	suite_add_tcase(s, tc);
	tc = tcase_create("read");
	tcase_add_test(tc, list_live_domain);
	tcase_add_test(tc, list_other_vm);
	tcase_add_test(tc, list_empty_domains);
	tcase_add_test(tc, list_hostile);
	tcase_add_test(tc, list_bad_corpus);
	tcase_add_test(tc, list_too_big);
	tcase_add_test(tc, find_hostdev);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, mangled);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

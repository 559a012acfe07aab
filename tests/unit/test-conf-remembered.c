/* Unit tests for conf/remembered.c: the state file of remembered answers
 * read into rules after each VM's own (so deny rules win), written whole
 * and atomically, and a bad file reported with its place and never
 * written over. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "usb/rules.h"
#include "util/util.h"

/* A scratch config dir: VM pc (with a deny rule for serial NO), and
 * state-dir DIR/state. The dir, a new string. */
static char *scratch(void)
{
	static const char vm[] = "[vm]\nqmp-socket = /run/q.qmp\n[usb-deny \"no\"]\nserial = NO\n";
	char *dir = scratch_new("rem"), *text;
	char *path;

	path = xasprintf("%s/vm.d", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	free(path);
	path = xasprintf("%s/vm.d/pc.conf", dir);
	ck_assert_int_eq(write_file_atomic(path, vm, strlen(vm), 0644), 0);
	free(path);
	path = xasprintf("%s/vmplug.conf", dir);
	text = xasprintf("[daemon]\nstate-dir = %s/state\n", dir);
	ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0644), 0);
	free(text);
	free(path);
	return dir;
}

/* The configuration of dir with its remembered answers; r their result. */
static struct conf *load(const char *dir, int *r, char ***errors)
{
	struct conf *conf = NULL;
	char **cerr = NULL;

	ck_assert_int_eq(conf_load(dir, NULL, &conf, &cerr), 0);
	strv_free(cerr);
	*r = conf_remembered_load(conf, false, errors);
	return conf;
}

static struct usb_device *device(const char *sysname, int vendor, int product, const char *serial)
{
	char *syspath = xasprintf("/sys/devices/pci0000:00/0000:00:14.0/usb2/%s", sysname);
	struct usb_device *d = usb_device_new(syspath, sysname);

	free(syspath);
	d->vendor = vendor;
	d->product = product;
	if (serial)
		usb_device_set_serial(d, serial);
	return d;
}

static void add(const char *state, const char *vm, int vendor, int product, const char *serial,
		const char *port, unsigned want_id)
{
	struct conf_remembered m = { .vm = (char *)vm, .description = (char *)"A device" };
	unsigned id = 0;
	char *why = NULL;

	m.rule.vendor = vendor;
	m.rule.product = product;
	m.rule.serial = (char *)serial;
	m.rule.port = (char *)port;
	ck_assert_int_eq(conf_remembered_add(state, &m, &id, &why), 0);
	ck_assert_uint_eq(id, want_id);
}

START_TEST(answers_round_trip_as_rules_after_the_vms_own)
{
	char *dir = scratch(), *state = xasprintf("%s/state", dir), **errors = NULL;
	struct usb_device *yes = device("2-1", 0xabcd, 1, "S1");
	struct usb_device *denied = device("2-2", 0xabcd, 1, "NO");
	struct usb_device *other_port = device("2-4", 0xabcd, 2, NULL);
	struct usb_device *at_port = device("2-3", 0xabcd, 2, NULL);
	const struct conf_usb_rule *rule = NULL;
	struct conf *conf;
	int r;

	/* no file: no answers, no error */
	conf = load(dir, &r, &errors);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(conf->n_remembered, 0);
	strv_free(errors);
	conf_free(conf);

	add(state, "pc", 0xabcd, 1, "S1", NULL, 1);
	add(state, "pc", 0xabcd, 1, "NO", NULL, 2);
	add(state, NULL, 0xabcd, 2, NULL, "2-3", 3);
	add(state, "gone", 0xabcd, 3, NULL, "2-5", 4);
	conf = load(dir, &r, &errors);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(conf->n_remembered, 4);
	ck_assert_str_eq(conf->remembered[0].description, "A device");
	ck_assert_ptr_null(conf->remembered[2].vm);
	/* the VM's deny rule, then the two answers for it */
	ck_assert_uint_eq(conf->vms[0].n_rules, 3);
	ck_assert_str_eq(conf->vms[0].rules[1].name, "remembered-1");
	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], yes, &rule), USB_VERDICT_CLAIM);
	ck_assert_str_eq(rule->name, "remembered-1");
	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], denied, &rule), USB_VERDICT_DENIED);
	ck_assert_str_eq(rule->name, "no");
	/* keep on host: a rule of its own, by port when there is no serial */
	ck_assert(usb_rule_matches(&conf->remembered[2].rule, at_port, NULL));
	ck_assert(!usb_rule_matches(&conf->remembered[2].rule, other_port, NULL));
	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], at_port, NULL), USB_VERDICT_NONE);
	strv_free(errors);
	conf_free(conf);

	ck_assert_int_eq(conf_remembered_forget(state, 2, &(char *){ NULL }), 0);
	add(state, NULL, 0xabcd, 9, "Z", NULL, 5); /* ids are not reused */
	conf = load(dir, &r, &errors);
	ck_assert_uint_eq(conf->n_remembered, 4);
	ck_assert_uint_eq(conf->remembered[1].id, 3);
	ck_assert_int_eq(usb_vm_verdict(&conf->vms[0], denied, &rule), USB_VERDICT_DENIED);
	strv_free(errors);
	conf_free(conf);

	usb_device_free(yes);
	usb_device_free(denied);
	usb_device_free(other_port);
	usb_device_free(at_port);
	free(state);
	scratch_remove(dir);
}
END_TEST

START_TEST(forgetting_what_is_not_there)
{
	char *dir = scratch(), *state = xasprintf("%s/state", dir), *why = NULL;

	ck_assert_int_eq(conf_remembered_forget(state, 7, &why), -ENOENT);
	ck_assert_str_eq(why, "no remembered answer 7 (see: vmplugctl remembered)");
	free(why);
	free(state);
	scratch_remove(dir);
}
END_TEST

/* A file vmplugd cannot read as answers: reported with its place, no
 * answer used, and not written over by a new answer. */
START_TEST(a_bad_file_is_reported_and_kept)
{
	static const char *const bad[] = {
		"{\"remembered\": [\n{\"id\": 1,,}]}\n",
		"[]\n",
		"{\"remembered\": [{\"id\": 1, \"action\": \"attach\", \"vendor\": \"abcd\", "
		"\"product\": \"0001\"}]}\n",
		"{\"remembered\": [{\"id\": 1, \"action\": \"format\", \"vendor\": \"abcd\", "
		"\"product\": \"0001\"}]}\n",
		"{\"remembered\": [{\"id\": 1, \"action\": \"attach\", \"vm\": \"../x\", \"vendor\": "
		"\"abcd\", \"product\": \"0001\"}]}\n",
		"{\"remembered\": [{\"id\": 1, \"action\": \"keep-on-host\", \"vendor\": \"abcdef\", "
		"\"product\": \"0001\"}]}\n",
	};
	static const char *const want[] = {
		"/state/remembered.json:2: not JSON:",
		"/state/remembered.json: needs {\"remembered\": [...]}",
		"/state/remembered.json: answer 1: needs id",
		"/state/remembered.json: answer 1: needs id",
		"/state/remembered.json: answer 1: needs id",
		"/state/remembered.json: answer 1: needs id",
	};
	char *dir = scratch(), *state = xasprintf("%s/state", dir), **errors = NULL;
	char *path = xasprintf("%s/remembered.json", state), *why = NULL, *expect;
	struct conf_remembered m = { .vm = NULL };
	struct conf *conf;
	unsigned id;
	int r;

	ck_assert_int_eq(mkdir(state, 0755), 0);
	ck_assert_int_eq(write_file_atomic(path, bad[_i], strlen(bad[_i]), 0644), 0);
	conf = load(dir, &r, &errors);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(conf->n_remembered, 0);
	ck_assert_uint_eq(conf->vms[0].n_rules, 1);
	expect = xasprintf("%s%s", dir, want[_i]);
	ck_assert_msg(startswith(errors[0], expect), "%s", errors[0]);
	free(expect);
	strv_free(errors);
	conf_free(conf);

	m.rule.vendor = 1;
	m.rule.product = 2;
	ck_assert_int_eq(conf_remembered_add(state, &m, &id, &why), -EINVAL);
	ck_assert_msg(strstr(why, "(fix or remove the file)"), "%s", why);
	free(why);
	{
		char text[4096] = "";
		FILE *f = fopen(path, "r");

		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fread(text, 1, sizeof(text) - 1, f), strlen(bad[_i]));
		fclose(f);
		ck_assert_str_eq(text, bad[_i]);
	}
	free(path);
	free(state);
	scratch_remove(dir);
}
END_TEST

static Suite *remembered_suite(void)
{
	Suite *s = suite_create("conf-remembered");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, answers_round_trip_as_rules_after_the_vms_own);
	tcase_add_test(tc, forgetting_what_is_not_there);
	tcase_add_loop_test(tc, a_bad_file_is_reported_and_kept, 0, 6);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(remembered_suite());
}

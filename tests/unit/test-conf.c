/* Unit tests for conf/: the good and bad corpora in tests/data/conf and
 * the ownership checks. A bad case's "expected" file lists the exact
 * error lines, paths relative to the case. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static char **good_cases, **bad_cases;

static char **list_cases(const char *kind)
{
	char *dir = xasprintf("%s/%s", CONF_CORPUS, kind);
	char **names = xcalloc(1, sizeof(char *));
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		/* Not inside a test yet: Check's asserts cannot report here. */
		fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_append(&names, de->d_name);
	closedir(d);
	free(dir);
	qsort(names, strv_len(names), sizeof(char *), (int (*)(const void *, const void *))strcmp);
	return names;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int c;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	while ((c = fgetc(f)) != EOF)
		fputc(c, mem);
	fclose(f);
	fclose(mem);
	return buf;
}

START_TEST(good_corpus)
{
	const char *name = good_cases[_i];
	char *dir = xasprintf("%s/good/%s", CONF_CORPUS, name);
	char *exp_path = xasprintf("%s/expected", dir);
	char **errors = NULL, *dump = NULL, *expected;
	struct conf *conf = NULL;
	size_t len = 0;
	FILE *mem;
	int r;

	r = conf_load(dir, NULL, &conf, &errors);
	ck_assert_msg(r == 0, "%s: %s", name, errors && errors[0] ? errors[0] : "?");
	ck_assert_uint_eq(strv_len(errors), 0);
	mem = open_memstream(&dump, &len);
	conf_dump(conf, mem);
	fclose(mem);
	expected = read_text(exp_path);
	ck_assert_msg(streq(dump, expected), "%s: dump differs.\n--- got\n%s--- expected\n%s", name,
		      dump, expected);
	free(expected);
	free(dump);
	strv_free(errors);
	conf_free(conf);
	free(exp_path);
	free(dir);
}
END_TEST

START_TEST(bad_corpus)
{
	const char *name = bad_cases[_i];
	char *dir = xasprintf("%s/bad/%s", CONF_CORPUS, name);
	char *exp_path = xasprintf("%s/expected", dir);
	char *text = read_text(exp_path);
	char **expected = strv_split(text, "\n");
	char **errors = NULL;
	struct conf *conf = NULL;
	int r;

	r = conf_load(dir, NULL, &conf, &errors);
	ck_assert_msg(r == -EINVAL, "%s: loaded without errors", name);
	ck_assert_ptr_null(conf);
	for (size_t i = 0; errors[i] || expected[i]; i++) {
		ck_assert_msg(errors[i] && expected[i], "%s: expected %zu error(s), got %zu:\n%s",
			      name, strv_len(expected), strv_len(errors), strv_join(errors, "\n"));
		char *want = xasprintf("%s/%s", dir, expected[i]);

		ck_assert_msg(streq(errors[i], want),
			      "%s: error %zu:\n  got      %s\n  expected %s", name, i, errors[i],
			      want);
		free(want);
	}
	strv_free(errors);
	strv_free(expected);
	free(text);
	free(exp_path);
	free(dir);
}
END_TEST

/* A scratch config dir with one VM file; returns the dir (new string). */
static char *scratch_conf(void)
{
	char *dir = xstrdup("/tmp/vmplug-conf-XXXXXX");
	char *vmd, *file;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	vmd = xasprintf("%s/vm.d", dir);
	ck_assert_int_eq(mkdir(vmd, 0755), 0);
	file = xasprintf("%s/pc.conf", vmd);
	f = fopen(file, "w");
	fputs("[vm]\nqmp-socket = /run/q.qmp\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(file, 0644), 0);
	free(file);
	free(vmd);
	return dir;
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

static char *load_error(const char *dir, bool check_owner)
{
	struct conf_load_opts opts = { .check_owner = check_owner };
	struct conf *conf = NULL;
	char **errors = NULL, *first;
	int r = conf_load(dir, &opts, &conf, &errors);

	if (r == 0) {
		conf_free(conf);
		strv_free(errors);
		return NULL;
	}
	first = xstrdup(errors[0]);
	strv_free(errors);
	return first;
}

START_TEST(refuses_group_writable_file_when_checking_owner)
{
	char *dir = scratch_conf();
	char *file = xasprintf("%s/vm.d/pc.conf", dir);
	char *err, *want;

	ck_assert_ptr_null(load_error(dir, true));
	ck_assert_int_eq(chmod(file, 0664), 0);
	err = load_error(dir, true);
	want = xasprintf("%s: refusing a file writable by group or others (mode 0664): it can name "
			 "commands vmplugd runs as root; fix with: chmod go-w %s",
			 file, file);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, want);
	/* Without the check (not running as root) the same file loads. */
	ck_assert_ptr_null(load_error(dir, false));
	free(want);
	free(err);
	free(file);
	rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(refuses_world_writable_directory)
{
	char *dir = scratch_conf();
	char *vmd = xasprintf("%s/vm.d", dir);
	char *err;

	ck_assert_int_eq(chmod(vmd, 0777), 0);
	err = load_error(dir, true);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "refusing a directory writable by group or others (mode 0777)"),
		      "%s", err);
	ck_assert(startswith(err, vmd));
	free(err);
	free(vmd);
	rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(refuses_file_not_owned_by_root)
{
	char *dir = scratch_conf();
	char *file = xasprintf("%s/vm.d/pc.conf", dir);
	char *err;

	if (geteuid() != 0) {
		/* Only root can give a file away; as non-root the owner is never 0. */
		err = load_error(dir, true);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "not owned by root"), "%s", err);
	} else {
		ck_assert_int_eq(chown(file, 65534, 65534), 0);
		err = load_error(dir, true);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "refusing a file not owned by root (owner uid 65534)"),
			      "%s", err);
	}
	free(err);
	free(file);
	rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(missing_dir_is_an_error)
{
	char *err = load_error("/nonexistent/vmplug", false);

	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, "/nonexistent/vmplug: cannot read the configuration directory: No "
			      "such file or directory");
	free(err);
}
END_TEST

/* Write text to DIR/NAME. */
static void put_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

/* conf_load_control_socket() on dir: the path, or the first error with
 * the return value in *r. A new string. */
static char *control_socket(const char *dir, int *r)
{
	char **errors = NULL, *path = NULL, *out;

	*r = conf_load_control_socket(dir, &path, &errors);
	ck_assert_ptr_nonnull(errors);
	if (*r == 0) {
		ck_assert_uint_eq(strv_len(errors), 0);
		out = path;
	} else {
		ck_assert_ptr_null(path);
		ck_assert_uint_ge(strv_len(errors), 1);
		out = xstrdup(errors[0]);
	}
	strv_free(errors);
	return out;
}

START_TEST(control_socket_default_and_configured)
{
	char *dir = scratch_conf(), *s;
	int r;

	s = control_socket(dir, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(s, CONF_DEFAULT_CONTROL_SOCKET);
	free(s);
	put_file(dir, "vmplug.conf", "# comment\n[daemon]\ncontrol-socket = /run/x/ctl.sock\n");
	s = control_socket(dir, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(s, "/run/x/ctl.sock");
	free(s);
	rm_rf(dir);
	free(dir);
}
END_TEST

/* The daemon's business does not stop vmplugctl: a broken VM file, and
 * bad values of other keys in vmplug.conf. */
START_TEST(control_socket_ignores_the_rest)
{
	char *dir = scratch_conf(), *s;
	int r;

	put_file(dir, "vm.d/pc.conf", "[vm]\nbogus = 1\n[usb \"x\"]\n");
	put_file(dir, "vmplug.conf",
		 "[switch]\ncycle = KEY_NOPE\n[input \"kbd\"]\ngrab-all = maybe\n"
		 "[daemon]\nlog-level = chatty\ncontrol-socket = /run/y.sock\n");
	s = load_error(dir, false);
	ck_assert_ptr_nonnull(s); /* the daemon would refuse it */
	free(s);
	s = control_socket(dir, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(s, "/run/y.sock");
	free(s);
	rm_rf(dir);
	free(dir);
}
END_TEST

/* What could hide the key is an error, with the file and line. */
START_TEST(control_socket_errors)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "[daemon]\ncontrol-socket = run/x.sock\n",
		  "vmplug.conf:2: control-socket: 'run/x.sock' is not an absolute path" },
		{ "[daemon]\ncontrol-sockt = /run/x.sock\n",
		  "vmplug.conf:2: unknown key 'control-sockt' in [daemon] (did you mean "
		  "'control-socket'?)" },
		{ "[daemon\ncontrol-socket = /run/x.sock\n",
		  "vmplug.conf:1: malformed section header" },
		{ "[daemon]\ncontrol-socket\n", "vmplug.conf:2: expected 'key = value'" },
		{ "[daemon]\ncontrol-socket = /a\ncontrol-socket = /b\n",
		  "vmplug.conf:3: duplicate key 'control-socket' in [daemon]" },
	};
	char *dir = scratch_conf();

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *want = xasprintf("%s/%s", dir, cases[i].error), *s;
		int r;

		put_file(dir, "vmplug.conf", cases[i].text);
		s = control_socket(dir, &r);
		ck_assert_int_eq(r, -EINVAL);
		ck_assert_msg(startswith(s, want), "case %zu: %s", i, s);
		free(s);
		free(want);
	}
	rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(control_socket_bad_dir)
{
	char *dir = scratch_conf(), *file = xasprintf("%s/vmplug.conf", dir), *s;
	int r;

	s = control_socket("/nonexistent/vmplug", &r);
	ck_assert_int_eq(r, -ENOENT);
	ck_assert_str_eq(s, "/nonexistent/vmplug: cannot read the configuration directory: No "
			    "such file or directory");
	free(s);
	s = control_socket("/dev/null", &r);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_str_eq(s, "/dev/null: not a directory");
	free(s);
	/* a file that is there but cannot be read is not a missing one */
	ck_assert_int_eq(mkdir(file, 0755), 0);
	s = control_socket(dir, &r);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(startswith(s, file), "%s", s);
	free(s);
	free(file);
	rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(chords_round_trip)
{
	struct conf_chord c;
	char *bad = NULL, *s;

	ck_assert_int_eq(conf_chord_parse("KEY_LEFTCTRL + KEY_KP1", &c, &bad), 0);
	ck_assert_uint_eq(c.n, 2);
	s = conf_chord_to_string(&c);
	ck_assert_str_eq(s, "KEY_LEFTCTRL+KEY_KP1");
	free(s);
	ck_assert_int_eq(conf_chord_parse("BTN_SIDE", &c, &bad), 0);
	ck_assert_int_eq(conf_chord_parse("KEY_A+KEY_B+KEY_C+KEY_D+KEY_E+KEY_F+KEY_G", &c, &bad),
			 -EINVAL);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(conf_chord_parse("REL_X", &c, &bad), -EINVAL);
	ck_assert_str_eq(bad, "REL_X");
	free(bad);
}
END_TEST

static void set_chord(const char *s, struct conf_chord *out)
{
	if (*s)
		ck_assert_int_eq(conf_chord_parse(s, out, NULL), 0);
}

/* A configuration with just these chords: cycle, host, panic, then one
 * VM per hotkey (NULL ends; "" leaves a chord unset). */
static const char *grab_toggle_for(const char *cycle, const char *host, const char *panic,
				   const char *const *hotkeys)
{
	struct conf_vm vms[4] = { 0 };
	struct conf conf = { .vms = vms };
	const char *r;

	set_chord(cycle, &conf.sw.cycle);
	set_chord(host, &conf.sw.host);
	set_chord(panic, &conf.sw.panic);
	for (; hotkeys[conf.n_vms]; conf.n_vms++) {
		ck_assert_uint_lt(conf.n_vms, ARRAY_SIZE(vms));
		set_chord(hotkeys[conf.n_vms], &vms[conf.n_vms].hotkey);
	}
	r = conf_grab_toggle(&conf);
	ck_assert_ptr_nonnull(r);
	return r;
}

START_TEST(grab_toggle_avoids_the_hotkeys)
{
	static const char *const none[] = { NULL };
	static const char *const scroll[] = { "KEY_LEFTSHIFT+KEY_1", "KEY_SCROLLLOCK", NULL };
	static const char *const metas[] = { "KEY_SCROLLLOCK", "KEY_RIGHTMETA+KEY_2", NULL };
	static const char *const shift[] = { "KEY_LEFTMETA+KEY_1", "KEY_SCROLLLOCK+KEY_2",
					     "KEY_RIGHTSHIFT+KEY_3", NULL };
	const char *panic = "KEY_LEFTCTRL+KEY_LEFTALT+KEY_BACKSPACE"; /* the default */

	/* nothing in the way: QEMU's own choice among them, Scroll Lock */
	ck_assert_str_eq(grab_toggle_for("", "", "", none), "scrolllock");
	ck_assert_str_eq(grab_toggle_for("", "", panic, none), "scrolllock");
	/* a VM's hotkey on Scroll Lock: not it, nor Ctrl+Scroll Lock */
	ck_assert_str_eq(grab_toggle_for("", "", "", scroll), "meta-meta");
	/* the [switch] chords count as much as the hotkeys */
	ck_assert_str_eq(grab_toggle_for("KEY_SCROLLLOCK", "", "", none), "meta-meta");
	ck_assert_str_eq(grab_toggle_for("", "KEY_RIGHTCTRL+KEY_SCROLLLOCK", "", none),
			 "meta-meta");
	/* one key of a pair is enough to clash; the default panic has both
	 * left Ctrl and left Alt */
	ck_assert_str_eq(grab_toggle_for("", "", panic, metas), "shift-shift");
	ck_assert_str_eq(grab_toggle_for("", "", "", metas), "alt-alt");
	/* the clash may be in any VM's hotkey, not only the first */
	ck_assert_str_eq(grab_toggle_for("KEY_RIGHTALT+KEY_0", "", "", shift), "ctrl-ctrl");
	/* everything taken: QEMU's own default */
	ck_assert_str_eq(
	    grab_toggle_for("KEY_LEFTCTRL+KEY_RIGHTCTRL", "KEY_LEFTALT+KEY_0", panic, shift),
	    "ctrl-ctrl");
}
END_TEST

START_TEST(regex_property_compiled)
{
	char *dir = xasprintf("%s/good/full", CONF_CORPUS);
	struct conf *conf = NULL;
	char **errors = NULL;
	const struct conf_vm *vm;
	const struct conf_usb_rule *tok = NULL;

	ck_assert_int_eq(conf_load(dir, NULL, &conf, &errors), 0);
	vm = conf_find_vm(conf, "win10");
	ck_assert_ptr_nonnull(vm);
	for (size_t i = 0; i < vm->n_rules; i++)
		if (streq(vm->rules[i].name, "token"))
			tok = &vm->rules[i];
	ck_assert_ptr_nonnull(tok);
	ck_assert_int_eq(tok->props[0].op, CONF_PROP_REGEX);
	ck_assert_int_eq(regexec(&tok->props[0].regex, "0001XYZ", 0, NULL, 0), 0);
	ck_assert_int_ne(regexec(&tok->props[0].regex, "10001", 0, NULL, 0), 0);
	/* VMs come in file-name order: linux before win10. */
	ck_assert_str_eq(conf->vms[0].name, "linux");
	ck_assert_str_eq(conf->vms[0].domain, "linux");
	strv_free(errors);
	conf_free(conf);
	free(dir);
}
END_TEST

/* Every other way a file or directory vmplugd reads as root could be
 * changed by someone else: each one refused, naming the path. */
START_TEST(refuses_every_unsafe_owner_and_mode)
{
	static const struct {
		const char *path; /* below the config dir, "" for itself */
		const char *what;
		mode_t mode;  /* 0: leave */
		uid_t owner;  /* 0: leave */
		bool symlink; /* replace pc.conf by a link to an unsafe file */
		const char *says;
	} cases[] = {
		{ "vmplug.conf", "world-writable vmplug.conf", 0646, 0, false,
		  "refusing a file writable by group or others (mode 0646)" },
		{ "", "a group-writable config dir", 0775, 0, false,
		  "refusing a directory writable by group or others (mode 0775)" },
		{ "vm.d", "a group-writable vm.d", 0775, 0, false,
		  "refusing a directory writable by group or others (mode 0775)" },
		{ "", "a config dir owned by someone else", 0, 65534, false,
		  "refusing a directory not owned by root (owner uid 65534)" },
		{ "vmplug.conf", "vmplug.conf owned by someone else", 0, 65534, false,
		  "refusing a file not owned by root (owner uid 65534)" },
		{ "vm.d/pc.conf", "a VM file linked to a file of someone else", 0, 65534, true,
		  "refusing a file not owned by root (owner uid 65534)" },
		{ "vm.d/pc.conf", "a VM file linked to a world-writable file", 0666, 0, true,
		  "refusing a file writable by group or others (mode 0666)" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *dir = scratch_conf();
		char *path = xasprintf("%s/%s", dir, cases[i].path);
		char *global = xasprintf("%s/vmplug.conf", dir);
		char *target = xasprintf("%s.target", dir);
		char *err;
		FILE *f = fopen(global, "w");

		fputs("[daemon]\nlog-level = info\n", f);
		fclose(f);
		ck_assert_int_eq(chmod(global, 0644), 0);
		ck_assert_ptr_null(load_error(dir, true));
		if (cases[i].symlink) {
			f = fopen(target, "w");
			fputs("[vm]\nqmp-socket = /run/q.qmp\n", f);
			fclose(f);
			ck_assert_int_eq(chmod(target, 0644), 0);
			ck_assert_int_eq(unlink(path), 0);
			ck_assert_int_eq(symlink(target, path), 0);
			ck_assert_ptr_null(load_error(dir, true));
		}
		if (cases[i].mode)
			ck_assert_int_eq(chmod(cases[i].symlink ? target : path, cases[i].mode), 0);
		if (cases[i].owner)
			ck_assert_int_eq(
			    chown(cases[i].symlink ? target : path, cases[i].owner, cases[i].owner),
			    0);
		err = load_error(dir, true);
		ck_assert_msg(err && strstr(err, cases[i].says), "%s: got %s", cases[i].what,
			      err ? err : "no error");
		free(err);
		unlink(target);
		free(target);
		free(global);
		free(path);
		rm_rf(dir);
		free(dir);
	}
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("corpus");
	TCase *tc2 = tcase_create("checks");

	good_cases = list_cases("good");
	bad_cases = list_cases("bad");
	tcase_add_loop_test(tc, good_corpus, 0, (int)strv_len(good_cases));
	tcase_add_loop_test(tc, bad_corpus, 0, (int)strv_len(bad_cases));
	suite_add_tcase(s, tc);
	/* The owner check comes first: the mode cases need files that are
	 * root's, and giving a file away needs root too (as others,
	 * check-config.sh runs the mode cases). */
	tcase_add_test_if(tc2, refuses_group_writable_file_when_checking_owner, geteuid() == 0,
			  "needs root: the files checked must be root's");
	tcase_add_test_if(tc2, refuses_world_writable_directory, geteuid() == 0,
			  "needs root: the files checked must be root's");
	tcase_add_test(tc2, refuses_file_not_owned_by_root);
	tcase_add_test_if(tc2, refuses_every_unsafe_owner_and_mode, geteuid() == 0,
			  "needs root: only root can give a file to another owner");
	tcase_add_test(tc2, missing_dir_is_an_error);
	tcase_add_test(tc2, chords_round_trip);
	tcase_add_test(tc2, regex_property_compiled);
	tcase_add_test(tc2, grab_toggle_avoids_the_hotkeys);
	tcase_add_test(tc2, control_socket_default_and_configured);
	tcase_add_test(tc2, control_socket_ignores_the_rest);
	tcase_add_test(tc2, control_socket_errors);
	tcase_add_test(tc2, control_socket_bad_dir);
	suite_add_tcase(s, tc2);
	return s;
}

int main(void)
{
	int r = run_suite(conf_suite());

	strv_free(good_cases);
	strv_free(bad_cases);
	return r;
}

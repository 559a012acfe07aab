/* [usb-remote "name"] sections of a VM's file: usb-redir slots QEMU
 * listens on for a device exported from another host. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"
#include "util/util.h"

/* A unix socket path must fit sockaddr_un's sun_path with its NUL. */
#define REMOTE_PATH_MAX 107

/* The slot being read. */
static struct conf_usb_remote *cur_remote(struct conf_parser *p)
{
	return &p->vm->remotes[p->index];
}

bool conf_open_usb_remote(struct conf_parser *p, const char *name)
{
	struct conf_vm *vm = p->vm;
	struct conf_usb_remote *r;

	for (size_t i = 0; i < vm->n_remotes; i++) {
		if (streq(vm->remotes[i].name, name)) {
			conf_error(p, "duplicate section [usb-remote \"%s\"] (first at line %d)",
				   name, vm->remotes[i].origin.line);
			return false;
		}
	}
	r = xappend(&vm->remotes, &vm->n_remotes, sizeof(*r));
	r->name = xstrdup(name);
	r->origin.file = p->file;
	r->origin.line = p->line;
	p->index = vm->n_remotes - 1;
	return true;
}

/* A numeric IPv4 or IPv6 address in the form QEMU prints it (inet_ntop);
 * NULL if s is not one. */
static char *normalize_ip(const char *s)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return xstrdup(inet_ntop(AF_INET, &a4, buf, sizeof(buf)));
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return xstrdup(inet_ntop(AF_INET6, &a6, buf, sizeof(buf)));
	return NULL;
}

/* listen = PORT | ADDRESS:PORT | [IPV6]:PORT | /path/to/socket. A bare
 * port listens on loopback: anything else must be written out. */
static void key_listen(struct conf_parser *p, const char *v)
{
	struct conf_usb_remote *r = cur_remote(p);
	char *host = NULL, *copy = xstrdup(v), *port = copy, *colon;
	unsigned long n;

	if (v[0] == '/') {
		if (strlen(v) > REMOTE_PATH_MAX)
			conf_error(p, "listen: '%s' is longer than a unix socket path may be (%d)",
				   v, REMOTE_PATH_MAX);
		else {
			free(r->host);
			r->host = NULL;
			free(r->path);
			r->path = xstrdup(v);
		}
		free(copy);
		return;
	}
	if (copy[0] == '[') {
		char *end = strchr(copy, ']');

		if (!end || end[1] != ':')
			goto bad;
		*end = '\0';
		host = normalize_ip(copy + 1);
		port = end + 2;
		if (!host || !strchr(host, ':'))
			goto bad;
	} else if ((colon = strrchr(copy, ':'))) {
		if (strchr(copy, ':') != colon)
			goto bad; /* an IPv6 address goes in brackets */
		*colon = '\0';
		host = normalize_ip(copy);
		port = colon + 1;
		if (!host)
			goto bad;
	} else {
		host = xstrdup("127.0.0.1");
	}
	if (parse_uint(port, 10, 65535, &n) < 0 || n == 0)
		goto bad;
	free(r->path);
	r->path = NULL;
	free(r->host);
	r->host = host;
	r->port = (unsigned)n;
	free(copy);
	return;
bad:
	free(host);
	free(copy);
	conf_error(p,
		   "listen: '%s' is not PORT (loopback), ADDRESS:PORT with a numeric address, "
		   "[IPV6]:PORT, or the absolute path of a unix socket",
		   v);
}

const struct conf_key conf_usb_remote_keys[] = {
	{ "listen", key_listen, false },
	{ NULL, NULL, false },
};

void conf_check_usb_remote(struct conf_parser *p)
{
	struct conf_usb_remote *r = cur_remote(p);

	if (strv_len(*p->errors) == p->sec_errors && !r->host && !r->path)
		conf_error_at(p, r->origin.line,
			      "%s needs 'listen = PORT' (loopback), 'listen = ADDRESS:PORT' or "
			      "'listen = /path/to/socket'",
			      p->sec_label);
}

void conf_usb_remote_free(struct conf_usb_remote *r)
{
	free(r->name);
	free(r->host);
	free(r->path);
}

char *conf_usb_remote_address(const struct conf_usb_remote *r)
{
	if (r->path)
		return xasprintf("unix:%s", r->path);
	return xasprintf("tcp:%s:%u", r->host ? r->host : "", r->port);
}

bool conf_usb_remote_exposed(const struct conf_usb_remote *r)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (r->path || !r->host)
		return false;
	if (inet_pton(AF_INET, r->host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) != 127;
	if (inet_pton(AF_INET6, r->host, &a6) == 1)
		return !IN6_IS_ADDR_LOOPBACK(&a6);
	return true;
}

void conf_check_usb_remotes_cross(struct conf_parser *p)
{
	struct conf *conf = p->conf;

	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];

		for (size_t j = 0; j < vm->n_remotes; j++) {
			const struct conf_usb_remote *r = &vm->remotes[j];
			char *addr;

			if (!r->host && !r->path)
				continue; /* its error is said */
			addr = conf_usb_remote_address(r);
			p->file = vm->file;
			if (vm->backend != CONF_BACKEND_QMP)
				conf_error_at(p, r->origin.line,
					      "[usb-remote \"%s\"]: only with backend = qmp",
					      r->name);
			for (size_t k = 0; k <= i; k++) {
				const struct conf_vm *o = &conf->vms[k];

				for (size_t l = 0; l < (k == i ? j : o->n_remotes); l++) {
					char *other;

					if (!o->remotes[l].host && !o->remotes[l].path)
						continue;
					other = conf_usb_remote_address(&o->remotes[l]);

					if (streq(addr, other))
						conf_error_at(
						    p, r->origin.line,
						    "[usb-remote \"%s\"]: %s is also where "
						    "[usb-remote \"%s\"] of VM '%s' "
						    "listens",
						    r->name, addr, o->remotes[l].name, o->name);
					free(other);
				}
			}
			free(addr);
		}
	}
}

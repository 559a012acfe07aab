/* [usb-export "name"] sections of vmplug.conf: devices this host exports
 * with usbredirect to a usb-redir slot elsewhere. The match keys are
 * [usb]'s (keys.c); this file has the rest. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"
#include "util/util.h"

bool conf_open_usb_export(struct conf_parser *p, const char *name)
{
	struct conf *conf = p->conf;
	struct conf_usb_export *e;

	for (size_t i = 0; i < conf->n_exports; i++) {
		if (streq(conf->exports[i].name, name)) {
			conf_error(p, "duplicate section [usb-export \"%s\"] (first at line %d)",
				   name, conf->exports[i].origin.line);
			return false;
		}
	}
	e = xappend(&conf->exports, &conf->n_exports, sizeof(*e));
	e->name = xstrdup(name);
	e->rule.name = xstrdup(name);
	e->rule.vendor = e->rule.product = e->rule.interface_class = -1;
	e->rule.bus = e->rule.devnum = -1;
	e->origin.file = e->rule.origin.file = p->file;
	e->origin.line = e->rule.origin.line = p->line;
	p->index = conf->n_exports - 1;
	return true;
}

/* A host name or IPv4 address as usbredirect's --to takes it: letters,
 * digits, '.', '-' and '_', not starting with '-' (it would read as an
 * option). usbredirect splits HOST:PORT at the colon, so no IPv6. */
static bool valid_host(const char *s, size_t len)
{
	if (len == 0 || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i]))
			return false;
	return true;
}

/* to = HOST:PORT, kept as written: the export connects there and nowhere else. */
void conf_key_usb_export_to(struct conf_parser *p, const char *v)
{
	struct conf_usb_export *e = &p->conf->exports[p->index];
	const char *colon = strrchr(v, ':');
	unsigned long port;

	if (!colon || !valid_host(v, (size_t)(colon - v)) ||
	    parse_uint(colon + 1, 10, 65535, &port) < 0 || port == 0) {
		conf_error(p,
			   "to: '%s' is not HOST:PORT (a host name or IPv4 address, a port from "
			   "1 to 65535), e.g. 127.0.0.1:4000",
			   v);
		return;
	}
	free(e->to);
	e->to = xstrdup(v);
}

/* A section ended: it must say where its devices go. */
void conf_check_usb_export(struct conf_parser *p)
{
	struct conf_usb_export *e = &p->conf->exports[p->index];

	if (!e->to && strv_len(*p->errors) == p->sec_errors)
		conf_error_at(p, e->origin.line,
			      "[usb-export \"%s\"] needs 'to = HOST:PORT' (where the VM's "
			      "[usb-remote] slot listens)",
			      e->name);
}

void conf_usb_export_free(struct conf_usb_export *e)
{
	free(e->name);
	conf_usb_rule_free(&e->rule);
	free(e->to);
}

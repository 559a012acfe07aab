/* The libvirt backend's domain XML: the <hostdev> it attaches, and what it
 * reads back from a live domain (see libvirt-int.h). Built and read with
 * libxml2 only: no string pasting, no XPath built from strings. */
#include "config.h"

#include "backends/libvirt-int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "util/util.h"

#define ALIAS_MAX 100

typedef const xmlChar *xstr;

bool backend_libvirt_valid_id(const char *id)
{
	size_t n;

	if (!id || !startswith(id, BACKEND_ID_PREFIX))
		return false;
	n = strlen(id);
	if (n == strlen(BACKEND_ID_PREFIX) || n > ALIAS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* ----------------------------------------------------------------- writing */

static void set_prop(xmlNodePtr node, const char *name, const char *value)
{
	xmlNewProp(node, (xstr)name, (xstr)value);
}

/* libvirt reads ids in hex with 0x, and bus and device numbers in decimal. */
static void set_prop_num(xmlNodePtr node, const char *name, unsigned value, bool hex)
{
	char buf[32];

	if (hex)
		snprintf(buf, sizeof(buf), "0x%04x", value);
	else
		snprintf(buf, sizeof(buf), "%u", value);
	set_prop(node, name, buf);
}

/* node as XML text, without an XML declaration: a new string. */
static char *dump(xmlDocPtr doc, xmlNodePtr node)
{
	xmlBufferPtr buf = xmlBufferCreate();
	char *s;

	if (!buf || xmlNodeDump(buf, doc, node, 0, 0) < 0)
		abort(); /* only allocation fails here */
	s = xstrdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	return s;
}

int backend_libvirt_hostdev_xml(const struct backend_usb_dev *dev, char **out)
{
	xmlDocPtr doc;
	xmlNodePtr hostdev, source, node;
	char *alias;

	if (!backend_libvirt_valid_id(dev->id) || dev->bus == 0 || dev->addr == 0)
		return -EINVAL;
	doc = xmlNewDoc((xstr) "1.0");
	hostdev = xmlNewDocNode(doc, NULL, (xstr) "hostdev", NULL);
	xmlDocSetRootElement(doc, hostdev);
	set_prop(hostdev, "mode", "subsystem");
	set_prop(hostdev, "type", "usb");
	/* The device stays bound to the host's usb driver; QEMU takes it
	 * through usbfs, as with QMP. */
	set_prop(hostdev, "managed", "no");
	source = xmlNewChild(hostdev, NULL, (xstr) "source", NULL);
	if (dev->vendor || dev->product) {
		node = xmlNewChild(source, NULL, (xstr) "vendor", NULL);
		set_prop_num(node, "id", dev->vendor, true);
		node = xmlNewChild(source, NULL, (xstr) "product", NULL);
		set_prop_num(node, "id", dev->product, true);
	}
	node = xmlNewChild(source, NULL, (xstr) "address", NULL);
	set_prop_num(node, "bus", dev->bus, false);
	set_prop_num(node, "device", dev->addr, false);
	node = xmlNewChild(hostdev, NULL, (xstr) "alias", NULL);
	alias = xasprintf(BACKEND_LIBVIRT_ALIAS_PREFIX "%s", dev->id);
	set_prop(node, "name", alias);
	free(alias);
	*out = dump(doc, hostdev);
	xmlFreeDoc(doc);
	return 0;
}

/* ----------------------------------------------------------------- reading */

static xmlDocPtr parse(const char *xml, size_t len)
{
	xmlDocPtr doc;
	xmlNodePtr root;

	if (len > BACKEND_LIBVIRT_XML_MAX)
		return NULL;
	/* No network, no entity substitution, no DTD loading; errors are
	 * the caller's to report, not libxml2's to print. */
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (!root || !xmlStrEqual(root->name, (xstr) "domain")) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static bool is_element(xmlNodePtr node, const char *name)
{
	return node->type == XML_ELEMENT_NODE && xmlStrEqual(node->name, (xstr)name);
}

/* The first child element called name, NULL if none. */
static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
		if (is_element(c, name))
			return c;
	return NULL;
}

/* An attribute's value as a new string, NULL if missing. */
static char *prop(xmlNodePtr node, const char *name)
{
	xmlChar *v = node ? xmlGetProp(node, (xstr)name) : NULL;
	char *s = v ? xstrdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

static bool prop_is(xmlNodePtr node, const char *name, const char *value)
{
	char *v = prop(node, name);
	bool same = v && streq(v, value);

	free(v);
	return same;
}

/* A positive number attribute as libvirt reads it (base 0), -1 otherwise. */
static int number_prop(xmlNodePtr node, const char *name)
{
	char *v = prop(node, name);
	unsigned long n = 0;
	int r = v ? parse_uint(v, 0, INT_MAX, &n) : -EINVAL;

	free(v);
	return r == 0 && n > 0 ? (int)n : -1;
}

/* The first node under <devices>, NULL if none. */
static xmlNodePtr first_device(xmlDocPtr doc)
{
	xmlNodePtr devices = child(xmlDocGetRootElement(doc), "devices");

	return devices ? devices->children : NULL;
}

/* The vmplug id of a USB hostdev element (a new string), NULL if it is
 * not one of vmplug's. */
static char *hostdev_id(xmlNodePtr node)
{
	char *alias, *id = NULL;

	if (!is_element(node, "hostdev") || !prop_is(node, "mode", "subsystem") ||
	    !prop_is(node, "type", "usb"))
		return NULL;
	alias = prop(child(node, "alias"), "name");
	if (alias && startswith(alias, BACKEND_LIBVIRT_OUR_ALIAS) &&
	    backend_libvirt_valid_id(alias + strlen(BACKEND_LIBVIRT_ALIAS_PREFIX)))
		id = xstrdup(alias + strlen(BACKEND_LIBVIRT_ALIAS_PREFIX));
	free(alias);
	return id;
}

/* A sink's source name as the configuration allows it. */
static bool valid_source(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

static void add_input(struct backend_list *list, xmlNodePtr node, const char *link_prefix)
{
	char *dev, *id;
	struct backend_item *it;

	if (!is_element(node, "input") || !prop_is(node, "type", "evdev"))
		return;
	dev = prop(child(node, "source"), "dev");
	if (dev && startswith(dev, link_prefix) && valid_source(dev + strlen(link_prefix))) {
		id = xasprintf(BACKEND_ID_PREFIX "in-%s", dev + strlen(link_prefix));
		it = backend_list_add(list, BACKEND_ITEM_INPUT, id);
		it->evdev = xstrdup(dev);
		free(id);
	}
	free(dev);
}

int backend_libvirt_parse_list(const char *xml, size_t len, const char *vm,
			       struct backend_list **out)
{
	xmlDocPtr doc = parse(xml, len);
	struct backend_list *list;
	char *link_prefix;

	if (!doc)
		return -EINVAL;
	list = xnew(struct backend_list);
	link_prefix = xasprintf(BACKEND_LIBVIRT_SINK_PREFIX "%s-", vm);
	for (xmlNodePtr n = first_device(doc); n; n = n->next) {
		char *id = hostdev_id(n);
		xmlNodePtr address;
		struct backend_item *it;

		if (!id) {
			add_input(list, n, link_prefix);
			continue;
		}
		it = backend_list_add(list, BACKEND_ITEM_USB, id);
		address = child(child(n, "source"), "address");
		it->bus = number_prop(address, "bus");
		it->addr = number_prop(address, "device");
		/* libvirt shows a hostdev only once QEMU took it. */
		it->attached = true;
		free(id);
	}
	free(link_prefix);
	xmlFreeDoc(doc);
	*out = list;
	return 0;
}

int backend_libvirt_find_hostdev(const char *xml, size_t len, const char *id, char **out)
{
	xmlDocPtr doc = parse(xml, len);
	int r = -ENOENT;

	if (!doc)
		return -EINVAL;
	for (xmlNodePtr n = first_device(doc); n && r; n = n->next) {
		char *found = hostdev_id(n);

		if (found && streq(found, id)) {
			*out = dump(doc, n);
			r = 0;
		}
		free(found);
	}
	xmlFreeDoc(doc);
	return r;
}

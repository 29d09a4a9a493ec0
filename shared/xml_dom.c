/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xml_dom: parse and read the small XML answers of CloudFormation and STS
 * (see xml_dom.h).
 */
#include "xml_dom.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <openssl/crypto.h>

xmlDoc *xml_dom_parse(const char *xml, size_t len, size_t max)
{
	if (!xml || !len || len > max || len > (size_t)INT_MAX)
		return NULL;
	return xmlReadMemory(xml, (int)len, "reply.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

xmlNode *xml_dom_root(const xmlDoc *doc)
{
	return doc ? xmlDocGetRootElement(doc) : NULL;
}

bool xml_dom_is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

xmlNode *xml_dom_child(const xmlNode *n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNode *k = n->children; k; k = k->next)
		if (xml_dom_is(k, name))
			return k;
	return NULL;
}

static xmlNode *find_at(xmlNode *n, const char *name, int depth)
{
	if (depth > XML_DOM_MAX_DEPTH)
		return NULL;
	for (; n; n = n->next) {
		xmlNode *c;

		if (n->type != XML_ELEMENT_NODE)
			continue; /* an entity reference's children loop back into the DTD */
		if (!strcmp((const char *)n->name, name))
			return n;
		c = find_at(n->children, name, depth + 1);
		if (c)
			return c;
	}
	return NULL;
}

xmlNode *xml_dom_find(xmlNode *n, const char *name)
{
	return find_at(n, name, 0);
}

size_t xml_dom_count(const xmlNode *n, const char *name)
{
	size_t c = 0;

	for (xmlNode *k = n ? n->children : NULL; k; k = k->next)
		c += xml_dom_is(k, name);
	return c;
}

char *xml_dom_text(const xmlNode *e, bool secret)
{
	xmlChar *t;
	char *s;

	if (!e)
		return NULL;
	t = xmlNodeGetContent(e);
	if (!t)
		return NULL;
	s = strdup((const char *)t);
	if (secret)
		OPENSSL_cleanse(t, (size_t)xmlStrlen(t));
	xmlFree(t);
	return s;
}

void xml_dom_copy(const xmlNode *e, char *out, size_t len)
{
	char *s = xml_dom_text(e, false);

	if (s) {
		snprintf(out, len, "%s", s);
		free(s);
	}
}

static void wipe_at(xmlNode *n, int depth)
{
	if (depth > XML_DOM_MAX_DEPTH)
		return;
	for (; n; n = n->next) {
		if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content)
			OPENSSL_cleanse(n->content, (size_t)xmlStrlen(n->content));
		if (n->type == XML_ELEMENT_NODE)
			wipe_at(n->children, depth + 1);
	}
}

void xml_dom_wipe(xmlNode *n)
{
	wipe_at(n, 0);
}

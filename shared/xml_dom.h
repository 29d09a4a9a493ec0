/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xml_dom: the small XML answers of the query-protocol services
 * (CloudFormation, STS) read as a libxml2 tree: a parse that fetches
 * nothing and substitutes no entity, element lookup by name, element text,
 * and wiping a tree that held secrets. S3's replies, which can be large,
 * go through the streaming parser in s3_xml.c instead.
 */
#ifndef HPCOPS_XML_DOM_H
#define HPCOPS_XML_DOM_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

/*
 * How deep xml_dom_find() descends. libxml2 refuses documents nested deeper
 * than 256 elements (xmlParserMaxDepth; xml_dom_parse() never passes
 * XML_PARSE_HUGE), so this bounds the recursion without cutting a tree short.
 */
#define XML_DOM_MAX_DEPTH 256

/**
 * xml_dom_parse() - the tree of @len bytes of @xml: no network access
 * (XML_PARSE_NONET), entity references kept as such (no XML_PARSE_NOENT)
 * and no external DTD or entity loaded, errors not printed. Returns a document the caller frees
 * with xmlFreeDoc(), or NULL if @xml is NULL, empty, longer than @max bytes or not well-formed.
 */
xmlDoc *xml_dom_parse(const char *xml, size_t len, size_t max);

/** xml_dom_root() - the root element of @doc, or NULL (also for a NULL @doc). */
xmlNode *xml_dom_root(const xmlDoc *doc);

/** xml_dom_is() - true if @n is an element named @name (any namespace). */
bool xml_dom_is(const xmlNode *n, const char *name);

/** xml_dom_child() - the first child element of @n named @name, or NULL (also for a NULL @n). */
xmlNode *xml_dom_child(const xmlNode *n, const char *name);

/**
 * xml_dom_find() - the first element named @name at or below @n or its
 * following siblings, depth first, or NULL. Only elements are descended
 * into: an entity reference's children lead back into the DTD.
 */
xmlNode *xml_dom_find(xmlNode *n, const char *name);

/** xml_dom_count() - how many child elements of @n are named @name (0 for a NULL @n). */
size_t xml_dom_count(const xmlNode *n, const char *name);

/**
 * xml_dom_text() - the text of element @e: its text and CDATA, an internal
 * entity's reference as the entity's text (external entities are never
 * loaded: they read as nothing), as a heap string the caller frees. With
 * @secret, libxml2's own copy is wiped before it is freed (the caller then
 * holds the only one: util_free_secret() it). Returns NULL if @e is NULL or
 * memory ran out.
 */
char *xml_dom_text(const xmlNode *e, bool secret);

/** xml_dom_copy() - the text of @e into @out (truncated, NUL-terminated); nothing if @e is NULL. */
void xml_dom_copy(const xmlNode *e, char *out, size_t len);

/**
 * xml_dom_wipe() - overwrite every text and CDATA node at and below @n and
 * its following siblings, before a document that held secret keys or
 * tokens is freed. Entity declarations (in the DTD) are not touched.
 */
void xml_dom_wipe(xmlNode *n);

#endif

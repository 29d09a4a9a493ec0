/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_xml_dom: the DOM reader of the CloudFormation and STS answers:
 * what it refuses to parse, that it loads no external entity, how it finds
 * elements, and that a wipe leaves no text of a secret in the tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "xml_dom.h"

static xmlDoc *parse(const char *xml)
{
	return xml_dom_parse(xml, strlen(xml), 4096);
}

static void refuses(void **state)
{
	const char *ok = "<r/>";

	assert_null(xml_dom_parse(NULL, 4, 4096));
	assert_null(xml_dom_parse(ok, 0, 4096));
	/* one byte over the bound: refused before libxml2 sees it */
	assert_null(xml_dom_parse(ok, 4, 3));
	assert_null(parse("<r><a></r>"));
	assert_null(parse("not xml"));
	xmlFreeDoc(parse(ok));
}

static void no_external_entity(void **state)
{
	char path[] = "/tmp/hpcops-xml-dom-XXXXXX", *xml, *t;
	int fd = mkstemp(path);
	xmlDoc *d;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SECRET-FILE", 11), 11);
	close(fd);
	assert_true(asprintf(&xml,
	                     "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY i \"INNER\">"
	                     "<!ENTITY e SYSTEM \"file://%s\">]><r><a>x&i;y</a><b>p&e;q</b></r>",
	                     path) > 0);
	d = parse(xml);
	assert_non_null(d);
	t = xml_dom_text(xml_dom_child(xml_dom_root(d), "a"), false);
	assert_string_equal(t, "xINNERy");
	free(t);
	/* the file's bytes never reach the tree */
	t = xml_dom_text(xml_dom_child(xml_dom_root(d), "b"), false);
	assert_string_equal(t, "pq");
	free(t);
	xmlFreeDoc(d);
	free(xml);
	unlink(path);
}

static void finds_elements(void **state)
{
	xmlDoc *d = parse("<R xmlns=\"urn:x\"><A><B>1</B></A><m>a</m><m>b</m>"
	                  "<C><D><B>2</B></D></C><m>c</m></R>");
	xmlNode *r = xml_dom_root(d);
	char buf[2] = "z", *t;

	assert_true(xml_dom_is(r, "R"));
	assert_false(xml_dom_is(r, "A"));
	assert_false(xml_dom_is(NULL, "R"));
	/* a child is a direct child only */
	assert_null(xml_dom_child(r, "B"));
	assert_null(xml_dom_child(NULL, "B"));
	assert_non_null(xml_dom_child(r, "C"));
	/* find: depth first, the first one */
	t = xml_dom_text(xml_dom_find(r, "B"), false);
	assert_string_equal(t, "1");
	free(t);
	/* ... and it goes on in the following siblings */
	t = xml_dom_text(xml_dom_find(xml_dom_child(r, "C"), "B"), false);
	assert_string_equal(t, "2");
	free(t);
	assert_null(xml_dom_find(r, "Nope"));
	assert_int_equal(xml_dom_count(r, "m"), 3);
	assert_int_equal(xml_dom_count(NULL, "m"), 0);
	assert_null(xml_dom_text(NULL, false));
	/* copy: truncated, and nothing at all for a missing element */
	xml_dom_copy(xml_dom_child(r, "m"), buf, sizeof(buf));
	assert_string_equal(buf, "a");
	xml_dom_copy(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "a");
	xmlFreeDoc(d);
}

static void wipe_leaves_no_text(void **state)
{
	xmlDoc *d = parse("<R><Credentials><SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey>"
	                  "<SessionToken><![CDATA[TOKEN]]></SessionToken></Credentials></R>");
	xmlNode *r = xml_dom_root(d);
	xmlNode *k = xml_dom_find(r, "SecretAccessKey");
	xmlNode *tok = xml_dom_find(r, "SessionToken");
	char *t = xml_dom_text(k, true);

	/* reading with @secret leaves the tree as it was */
	assert_string_equal(t, "wJalrXUtnFEMI");
	free(t);
	xml_dom_wipe(r);
	t = xml_dom_text(k, false);
	assert_string_equal(t, "");
	free(t);
	t = xml_dom_text(tok, false);
	assert_string_equal(t, "");
	free(t);
	xml_dom_wipe(NULL);
	xmlFreeDoc(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(refuses),
	    cmocka_unit_test(no_external_entity),
	    cmocka_unit_test(finds_elements),
	    cmocka_unit_test(wipe_leaves_no_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

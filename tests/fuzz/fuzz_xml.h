/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_xml: libxml2's heap, counted (xmlMemSetup), for the XML harnesses:
 * a reply must not make the parser hold more than FUZZ_XML_HEAP_MAX,
 * however it is nested or how many entities it declares. The allocation
 * that crosses the limit aborts with its stack. Call fuzz_xml_heap_init()
 * from LLVMFuzzerInitialize(), before libxml2 allocates, and
 * fuzz_xml_heap_start() before each reply.
 */
#ifndef HPCOPS_FUZZ_XML_H
#define HPCOPS_FUZZ_XML_H

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlmemory.h>

#include <sanitizer/common_interface_defs.h>

#include "fuzz.h"

#define FUZZ_XML_HEAP_MAX (64u << 20) /* libxml2's memory for one reply */

/*
 * Memory is counted per parser: the harness sets fuzz_xml_owner to the
 * parser it calls next (s3_xml runs several side by side). A free is
 * counted to the parser being called, which owns what it frees but for
 * libxml2's small global error strings.
 */
#define FUZZ_XML_OWNERS 16
static int fuzz_xml_owner;
static long long fuzz_xml_live[FUZZ_XML_OWNERS], fuzz_xml_base[FUZZ_XML_OWNERS];
static size_t fuzz_xml_doc_len;
static bool fuzz_xml_unbounded; /* HPCOPS_FUZZ_SKIP=xml_heap */

/* Stop where the memory is taken: the stack shows what grows. */
static void fuzz_xml_count(void *p, long long sign)
{
	int o = fuzz_xml_owner;

	if (!p)
		return;
	fuzz_xml_live[o] += sign * (long long)malloc_usable_size(p);
	if (fuzz_xml_live[o] - fuzz_xml_base[o] > (long long)FUZZ_XML_HEAP_MAX &&
	    !fuzz_xml_unbounded) {
		fprintf(stderr,
		        "fuzz check failed: libxml2 holds %lld MiB for a reply of at most %zu "
		        "bytes (limit %u MiB): a reply must not grow the parser's memory without "
		        "bound. Allocated here:\n",
		        (fuzz_xml_live[o] - fuzz_xml_base[o]) >> 20, fuzz_xml_doc_len,
		        FUZZ_XML_HEAP_MAX >> 20);
		__sanitizer_print_stack_trace();
		abort();
	}
}

static void *fuzz_xml_malloc(size_t n)
{
	void *p = malloc(n);

	fuzz_xml_count(p, 1);
	return p;
}

static void *fuzz_xml_realloc(void *old, size_t n)
{
	long long was = old ? (long long)malloc_usable_size(old) : 0;
	void *p = realloc(old, n);

	if (p) {
		fuzz_xml_live[fuzz_xml_owner] -= was;
		fuzz_xml_count(p, 1);
	}
	return p;
}

static void fuzz_xml_free(void *p)
{
	fuzz_xml_count(p, -1);
	free(p);
}

static char *fuzz_xml_strdup(const char *s)
{
	char *p = strdup(s);

	fuzz_xml_count(p, 1);
	return p;
}

static inline void fuzz_xml_heap_init(void)
{
	fuzz_xml_unbounded = fuzz_skip("xml_heap");
	xmlMemSetup(fuzz_xml_free, fuzz_xml_malloc, fuzz_xml_realloc, fuzz_xml_strdup);
	xmlInitParser();
}

/* Count libxml2's memory for one reply of (at most) @doc_len bytes from here on. */
static inline void fuzz_xml_heap_start(size_t doc_len)
{
	for (int o = 0; o < FUZZ_XML_OWNERS; o++)
		fuzz_xml_base[o] = fuzz_xml_live[o];
	fuzz_xml_owner = 0;
	fuzz_xml_doc_len = doc_len;
}

#endif

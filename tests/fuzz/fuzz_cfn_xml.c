/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cfn_xml: the CloudFormation reply parsers (cfn.h): ErrorResponse,
 * CreateStackResponse, DescribeStacksResponse, DescribeStackEventsResponse.
 * Input: a reply body. Each parser gets all of it; checked: no crash, leak
 * or UB, what a success promises is there (names, ids, states), fixed-size
 * fields are NUL-terminated, and libxml2 holds at most FUZZ_XML_HEAP_MAX
 * for one reply (entity expansion included).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cfn.h"
#include "fuzz.h"
#include "fuzz_xml.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_xml_heap_init();
	return 0;
}

static void check_error(const uint8_t *data, size_t size, long status)
{
	struct cfn_error e;
	char buf[700];

	memset(&e, 'x', sizeof(e));
	cfn_parse_error((const char *)data, size, status, &e);
	FUZZ_CHECK(e.http_status == status, "http_status %ld, given %ld", e.http_status, status);
	FUZZ_CHECK(e.err > CFN_OK && e.err <= CFN_ERR_OTHER, "err %d for an error reply", e.err);
	FUZZ_CHECK(strnlen(e.code, sizeof(e.code)) < sizeof(e.code), "code not terminated");
	FUZZ_CHECK(strnlen(e.message, sizeof(e.message)) < sizeof(e.message),
	           "message not terminated");
	FUZZ_CHECK(strnlen(e.request_id, sizeof(e.request_id)) < sizeof(e.request_id),
	           "request_id not terminated");
	for (size_t len = 1; len <= sizeof(buf); len += 97) {
		cfn_error_format(&e, buf, len);
		FUZZ_CHECK(strnlen(buf, len) < len, "cfn_error_format overran %zu", len);
	}
	FUZZ_CHECK(strlen(cfn_strerror(e.err)) > 0, "no text for err %d", e.err);
}

static void check_stack(const uint8_t *data, size_t size)
{
	struct cfn_stack s;

	memset(&s, 'x', sizeof(s));
	if (cfn_parse_stack((const char *)data, size, &s) == 0) {
		FUZZ_CHECK(s.name && s.id && s.status, "a stack without name, id or status");
		(void)cfn_status_is_failed(s.status);
		(void)cfn_status_is_terminal(s.status);
		for (size_t i = 0; i < s.n_outputs; i++) {
			size_t first = 0;

			if (!s.outputs[i].key)
				continue;
			while (!s.outputs[first].key ||
			       strcmp(s.outputs[first].key, s.outputs[i].key))
				first++;
			FUZZ_CHECK(cfn_stack_output(&s, s.outputs[i].key) == s.outputs[first].value,
			           "output %zu: its key finds another value", i);
		}
		(void)cfn_stack_output(&s, "ClusterName");
	} else {
		FUZZ_CHECK(!s.name && !s.id && !s.status && !s.outputs && !s.n_outputs,
		           "a failed parse left data in the stack");
	}
	cfn_stack_clear(&s);
	cfn_stack_clear(&s);
}

static void check_events(const uint8_t *data, size_t size)
{
	struct cfn_events pg;

	memset(&pg, 'x', sizeof(pg));
	if (cfn_parse_events((const char *)data, size, &pg) == 0) {
		for (size_t i = 0; i < pg.n; i++) {
			const struct cfn_event *e = &pg.events[i];

			FUZZ_CHECK(e->event_id && e->logical_id && e->status,
			           "event %zu without id, logical id or status", i);
			FUZZ_CHECK(e->timestamp_ms >= 0 && e->timestamp_ms <= 999,
			           "event %zu: %d ms", i, e->timestamp_ms);
			(void)cfn_status_is_failed(e->status);
		}
		FUZZ_CHECK(!pg.next_token || pg.next_token[0], "an empty NextToken kept");
	} else {
		FUZZ_CHECK(!pg.events && !pg.n && !pg.next_token,
		           "a failed parse left data in the page");
	}
	cfn_events_free(&pg);
	cfn_events_free(&pg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {400, 403, 500, 503, 200, 0};
	char *id;

	fuzz_xml_heap_start(size);
	check_error(data, size, statuses[fuzz_hash(data, size) % 6]);
	id = cfn_parse_create((const char *)data, size);
	free(id);
	check_stack(data, size);
	check_events(data, size);
	return 0;
}

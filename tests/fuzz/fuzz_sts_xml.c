/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sts_xml: the STS reply parsers (sts.h): ErrorResponse and the
 * Credentials of AssumeRole / AssumeRoleWithWebIdentity. Input: a reply
 * body. Checked: no crash, leak or UB; a success has every credential part
 * and an expiry; a failure leaves nothing to free and says why; fixed-size
 * fields are NUL-terminated; libxml2 holds at most FUZZ_XML_HEAP_MAX.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "creds.h"
#include "fuzz.h"
#include "fuzz_xml.h"
#include "sts.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_xml_heap_init();
	return 0;
}

static void check_terminated(const struct sts_error *e)
{
	FUZZ_CHECK(strnlen(e->code, sizeof(e->code)) < sizeof(e->code), "code not terminated");
	FUZZ_CHECK(strnlen(e->message, sizeof(e->message)) < sizeof(e->message),
	           "message not terminated");
	FUZZ_CHECK(strnlen(e->request_id, sizeof(e->request_id)) < sizeof(e->request_id),
	           "request_id not terminated");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_error e;
	struct creds c;
	char buf[600];
	int rc;

	fuzz_xml_heap_start(size);
	memset(&e, 0, sizeof(e));
	rc = sts_parse_error((const char *)data, size, &e);
	FUZZ_CHECK(rc == 0 || rc == -1, "sts_parse_error returned %d", rc);
	FUZZ_CHECK(rc != 0 || e.code[0], "an ErrorResponse without a Code");
	check_terminated(&e);
	e.err = STS_ERR_REMOTE;
	for (size_t len = 1; len <= sizeof(buf); len += 89) {
		sts_error_format(&e, buf, len);
		FUZZ_CHECK(strnlen(buf, len) < len, "sts_error_format overran %zu", len);
	}

	memset(&e, 0, sizeof(e));
	memset(&c, 'x', sizeof(c));
	rc = sts_parse_credentials((const char *)data, size, &c, &e);
	check_terminated(&e);
	if (rc == 0) {
		FUZZ_CHECK(c.access_key_id && c.access_key_id[0] && c.secret_access_key &&
		               c.secret_access_key[0] && c.session_token,
		           "credentials without key id, secret or token");
		FUZZ_CHECK(!strcmp(c.source, "sts"), "source '%.32s'", c.source);
		FUZZ_CHECK(strnlen(c.source, sizeof(c.source)) < sizeof(c.source),
		           "source not terminated");
	} else {
		FUZZ_CHECK(rc == -1, "sts_parse_credentials returned %d", rc);
		FUZZ_CHECK(!c.access_key_id && !c.secret_access_key && !c.session_token,
		           "a failed parse left credentials");
		FUZZ_CHECK(e.err == STS_ERR_PROTOCOL && e.message[0], "a failure without a reason");
	}
	creds_clear(&c);
	creds_clear(&c);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_spec: the launch spec reader (launcher/spec.h). Input: a spec file.
 * It is read with spec_load_string() and, through a memfd, with
 * spec_load_file(); then validated, merged a second time and written back
 * with spec_to_json().
 *
 * Checked: no crash, leak or UB; both readers agree; a failure says why;
 * loading the same file twice gives the spec once loaded (merging replaces);
 * and what spec_to_json() writes reads back to the same JSON (what `up`
 * stores for the head node is what the head node gets).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz.h"
#include "spec.h"

static int fd_spec = -1;
static char path_spec[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fd_spec = memfd_create("spec.json", 0);
	FUZZ_CHECK(fd_spec >= 0, "memfd_create failed");
	snprintf(path_spec, sizeof(path_spec), "/proc/self/fd/%d", fd_spec);
	return 0;
}

/* spec_to_json() of @s, or abort: it fails only on ENOMEM. */
static json_t *to_json(const struct launch_spec *s)
{
	json_t *j = spec_to_json(s);

	FUZZ_CHECK(j, "spec_to_json failed");
	return j;
}

static void check_round_trip(const struct launch_spec *s)
{
	json_t *j = to_json(s), *j2;
	char *text = json_dumps(j, JSON_SORT_KEYS), errbuf[512] = "";
	struct launch_spec back;

	FUZZ_CHECK(text, "json_dumps failed");
	spec_init(&back);
	FUZZ_CHECK(spec_load_string(&back, text, "round trip", errbuf, sizeof(errbuf)) == 0,
	           "spec_to_json wrote what spec_load_string rejects: %s\n%s", errbuf, text);
	j2 = to_json(&back);
	FUZZ_CHECK(json_equal(j, j2), "the spec changed on its way through JSON:\n%s", text);
	json_decref(j2);
	spec_free(&back);
	free(text);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	char e1[512] = "", e2[512] = "", e3[512] = "";
	struct launch_spec a, b;
	int ra, rb;

	spec_init(&a);
	spec_init(&b);
	ra = spec_load_string(&a, text, "fuzz", e1, sizeof(e1));
	FUZZ_CHECK(ftruncate(fd_spec, 0) == 0 && pwrite(fd_spec, data, size, 0) == (ssize_t)size,
	           "writing the memfd");
	rb = spec_load_file(&b, path_spec, e2, sizeof(e2));
	FUZZ_CHECK(ra == 0 || ra == -1, "spec_load_string returned %d", ra);
	FUZZ_CHECK(ra == rb, "spec_load_string says %d (%s), spec_load_file %d (%s)", ra, e1, rb,
	           e2);
	FUZZ_CHECK(ra == 0 || (e1[0] && e2[0]), "a failure without a message");
	if (ra == 0) {
		json_t *ja = to_json(&a), *jb = to_json(&b), *jm;

		FUZZ_CHECK(json_equal(ja, jb), "string and file readers built different specs");
		/* the same file merged twice: fields are replaced, not added */
		FUZZ_CHECK(spec_load_string(&b, text, "fuzz", e3, sizeof(e3)) == 0,
		           "a second load failed: %s", e3);
		jm = to_json(&b);
		FUZZ_CHECK(json_equal(ja, jm), "loading the spec twice changed it");
		json_decref(ja);
		json_decref(jb);
		json_decref(jm);

		for (int v = 0; v < 4; v++) {
			char ev[512] = "";
			int rv = spec_validate(&a, v & 1, v & 2, ev, sizeof(ev));

			FUZZ_CHECK(rv == 0 || (rv == -1 && ev[0]), "spec_validate %d: '%s'", rv,
			           ev);
		}
		check_round_trip(&a);
	}
	spec_free(&a);
	spec_free(&a);
	spec_free(&b);

	/* The same text as a --workload NAME=COMMAND argument and a -p K=V pair. */
	spec_init(&a);
	if (spec_add_workload_arg(&a, text, e1, sizeof(e1)) == 0) {
		FUZZ_CHECK(a.n_workloads == 1 && a.workloads[0].argc == 3 &&
		               a.workloads[0].argv[2] && !a.workloads[0].argv[3],
		           "a --workload that is not /bin/sh -c CMD");
		check_round_trip(&a);
	} else {
		FUZZ_CHECK(e1[0], "--workload failed without a message");
	}
	spec_free(&a);
	{
		char *k = NULL, *v = NULL;

		if (spec_parse_kv(text, &k, &v) == 0) {
			FUZZ_CHECK(k && v && k[0] && strlen(k) + 1 + strlen(v) == strlen(text),
			           "K=V split wrong");
			free(k);
			free(v);
		} else {
			FUZZ_CHECK(!k && !v, "a failed K=V split left strings");
		}
	}
	free(text);
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_paginator: the loop over a paged listing (see s3_paginator.h).
 */
#include "s3_paginator.h"

#include <stdlib.h>
#include <string.h>

int s3_paginate(struct s3_client *c, const struct s3_pager *pg, void *user, struct s3_error *err)
{
	char *marker = NULL, *marker2 = NULL;
	int ret = -1;

	for (;;) {
		struct util_buf q = {0};
		struct s3_req *r;

		if (pg->query(user, &q, marker, marker2)) {
			util_buf_free(&q);
			goto nomem;
		}
		r = s3_req_new(c, "GET", pg->op, pg->key, q.data);
		util_buf_free(&q);
		if (!r)
			goto nomem;
		r->out.max_entries = pg->page_max;
		if (s3_req_expect_doc(r, pg->kind)) {
			s3_req_free(r);
			goto nomem;
		}
		if (s3_req_run(r, err) || pg->collect(user, &r->out, err)) {
			s3_req_free(r);
			goto out;
		}
		if (r->out.truncated && r->out.next_marker && r->out.next_marker[0]) {
			/* A truncated page must move the marker on, or the loop would not end. */
			if (marker && !strcmp(marker, r->out.next_marker) &&
			    !strcmp(marker2 ? marker2 : "",
			            r->out.next_marker2 ? r->out.next_marker2 : "")) {
				s3_set_err(err, S3_ERR_PROTOCOL,
				           "%s: a truncated page repeats the marker '%.64s'",
				           pg->op, marker);
				s3_req_free(r);
				goto out;
			}
			free(marker);
			free(marker2);
			marker = r->out.next_marker;
			marker2 = r->out.next_marker2;
			r->out.next_marker = r->out.next_marker2 = NULL;
		} else {
			free(marker);
			free(marker2);
			marker = marker2 = NULL;
		}
		s3_req_free(r);
		if (!marker)
			break;
	}
	ret = 0;
	goto out;
nomem:
	s3_set_err(err, S3_ERR_NOMEM, "%s: out of memory", pg->op);
out:
	free(marker);
	free(marker2);
	return ret;
}

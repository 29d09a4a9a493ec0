/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_paginator: private to the S3 client. The one loop over paged S3
 * listings that are read whole (ListParts, ListMultipartUploads): ask for
 * a page, hand its entries to the caller, follow the markers, stop at a
 * bound. (ListObjectsV2 is read page by page by its callers instead: a
 * directory can be any size.)
 */
#ifndef HPCOPS_S3_PAGINATOR_H
#define HPCOPS_S3_PAGINATOR_H

#include "s3_request.h"
#include "util.h"

/** One paged listing. */
struct s3_pager {
	const char *op;        /* "ListParts" */
	enum s3_doc_kind kind; /* the reply document */
	const char *key;       /* the object the listing is of, or NULL for the bucket */
	size_t page_max;       /* entries one page may hold */
	/*
	 * Build the query of the next page into @q from the markers the last
	 * page gave (NULL, NULL on the first). 0, or -1 on ENOMEM.
	 */
	int (*query)(void *user, struct util_buf *q, const char *marker, const char *marker2);
	/* Take the entries of one page out of @out (move what you keep). 0 or -1 with @err set. */
	int (*collect)(void *user, struct s3_doc_out *out, struct s3_error *err);
};

/** s3_paginate() - run @pg to the last page. 0, or -1 with @err filled. */
int s3_paginate(struct s3_client *c, const struct s3_pager *pg, void *user, struct s3_error *err);

#endif

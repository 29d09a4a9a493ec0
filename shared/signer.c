/* SPDX-License-Identifier: Apache-2.0 */
/*
 * signer: one SigV4 signature per attempt, appended as headers (see
 * signer.h). The S3, CloudFormation and STS clients call it from their
 * sign callbacks, so every request is signed and sent the same way.
 */
#include "signer.h"

#include <stdio.h>
#include <string.h>

#include "xfer.h"

int signer_sign(const struct signer_params *p, struct xfer_request *x, struct curl_slist **extra)
{
	struct sigv4_params sp;
	struct sigv4_result res;
	int ret = -1;

	if (!p->creds)
		return 0;
	memset(&sp, 0, sizeof(sp));
	sp.method = x->method;
	sp.path = p->path;
	sp.query = p->query;
	sp.headers = p->headers;
	sp.n_headers = p->n_headers;
	sp.payload_hash = p->payload_hash;
	sp.region = p->region;
	sp.service = p->service;
	sp.now = p->now;
	sp.s3 = p->s3;
	/* CloudFormation and STS sign the path in its normalized form. */
	sp.normalize_path = !p->s3;
	sp.creds = p->creds;
	if (sigv4_sign(&sp, &res)) {
		snprintf(x->result.errmsg, sizeof(x->result.errmsg), "SigV4 signing failed");
		return -1;
	}
	if (xfer_header_add(extra, "Authorization", res.authorization) ||
	    xfer_header_add(extra, "X-Amz-Date", res.amz_date) ||
	    (res.content_sha256[0] &&
	     xfer_header_add(extra, "x-amz-content-sha256", res.content_sha256)) ||
	    (res.security_token &&
	     xfer_header_add(extra, "X-Amz-Security-Token", res.security_token))) {
		snprintf(x->result.errmsg, sizeof(x->result.errmsg),
		         "out of memory adding the signature headers");
		goto out;
	}
	ret = 0;
out:
	sigv4_result_free(&res);
	return ret;
}

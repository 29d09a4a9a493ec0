/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_errno: the one table from S3 failures to the errno a filesystem call
 * returns. It belongs to the filesystem, not to the S3 client: what an
 * S3 error means for open(2) or read(2) is a filesystem decision.
 */
#include "fs_errno.h"

#include <errno.h>

int fs_errno(enum s3_err err)
{
	switch (err) {
	case S3_OK:
		return 0;
	case S3_ERR_NO_SUCH_KEY:
		return ENOENT;
	case S3_ERR_NO_SUCH_BUCKET:
		return ENOENT;
	case S3_ERR_NO_SUCH_UPLOAD:
		return EIO;
	case S3_ERR_ACCESS_DENIED:
		return EACCES;
	case S3_ERR_SIGNATURE:
		return EACCES;
	case S3_ERR_INVALID_ACCESS_KEY:
		return EACCES;
	case S3_ERR_EXPIRED_TOKEN:
		return EACCES;
	case S3_ERR_WRONG_REGION:
		return EIO;
	case S3_ERR_PRECONDITION:
		return ESTALE;
	case S3_ERR_NOT_MODIFIED:
		return EAGAIN;
	case S3_ERR_INVALID_RANGE:
		return EINVAL;
	case S3_ERR_ENTITY_TOO_SMALL:
		return EIO;
	case S3_ERR_ENTITY_TOO_LARGE:
		return EFBIG;
	case S3_ERR_BAD_DIGEST:
		return EIO;
	case S3_ERR_INVALID_PART:
		return EIO;
	case S3_ERR_INVALID_ARGUMENT:
		return EINVAL;
	case S3_ERR_THROTTLED:
		return EIO;
	case S3_ERR_SERVER:
		return EIO;
	case S3_ERR_NETWORK:
	case S3_ERR_TIMEOUT:
		return EIO;
	case S3_ERR_NO_CREDENTIALS:
		return EACCES;
	case S3_ERR_CANCELLED:
		return ECANCELED;
	case S3_ERR_NOMEM:
		return ENOMEM;
	case S3_ERR_PROTOCOL:
		return EIO; /* a reply that could not be trusted, after the retries */
	case S3_ERR_OTHER:
		return EIO;
	}
	return EIO;
}

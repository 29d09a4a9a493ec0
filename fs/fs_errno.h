/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_errno: S3 errors as errno values for FUSE replies (one table).
 */
#ifndef HPCOPS_FS_ERRNO_H
#define HPCOPS_FS_ERRNO_H

#include "s3.h"

/**
 * fs_errno() - the errno for @err: NO_SUCH_KEY -> ENOENT, ACCESS_DENIED ->
 * EACCES, PRECONDITION -> ESTALE, NETWORK/SERVER/PROTOCOL -> EIO, ...
 * S3_OK -> 0.
 */
int fs_errno(enum s3_err err);

#endif

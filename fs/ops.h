/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops: the FUSE low-level ops table of hpcops-mount. The read side and the
 * namespace live in ops.c; write-side ops are dispatched to fsw_* (fs.h).
 */
#ifndef HPCOPS_OPS_H
#define HPCOPS_OPS_H

#include "fs.h"

/** The ops table passed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_ops;

/**
 * fs_setup() - build what the ops need from fs->opt and fs->s3: the inode
 * table, the memory budget, the block cache. Prints why on failure.
 * Returns 0 or -1. Undo with fs_teardown() (also after a failure).
 */
int fs_setup(struct hpcops_fs *fs);

/** fs_teardown() - free what fs_setup() built. Safe on a zeroed fs. */
void fs_teardown(struct hpcops_fs *fs);

#endif

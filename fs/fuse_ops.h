/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuse_ops: the FUSE low-level ops table of hpcops-mount (the adapter; see
 * fuse_ops.c) and the hooks it installs in the filesystem.
 */
#ifndef HPCOPS_FUSE_OPS_H
#define HPCOPS_FUSE_OPS_H

#include "fs.h"

/** The ops table passed to fuse_session_new(); userdata is the struct hpcops_fs. */
extern const struct fuse_lowlevel_ops fs_fuse_ops;

/**
 * fuse_ops_attach() - install the kernel notifications in @fs
 * (fs->inval_entry, fs->inval_attr) and set up their state (fs->adapter).
 * Once per session, before it runs; pair with fuse_ops_detach().
 */
void fuse_ops_attach(struct hpcops_fs *fs);

/**
 * fuse_ops_detach() - stop the notifier thread (after the session loop
 * ended), drop what it had not sent, and free fs->adapter's state.
 */
void fuse_ops_detach(struct hpcops_fs *fs);

#endif

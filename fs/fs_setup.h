/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_setup: building the filesystem's modules from fs->opt and fs->be, and
 * taking them down (main.c and the unit tests' harness call these; no
 * module of fs/ does). Order at unmount: fs_close_handles() while the
 * transfer engine runs, fs_shutdown(), stop the engine, fs_teardown().
 */
#ifndef HPCOPS_FS_SETUP_H
#define HPCOPS_FS_SETUP_H

#include "fs.h"

/** fs_setup() - the modules' state from fs->opt and fs->be. Prints why on failure; 0 or -1. */
int fs_setup(struct hpcops_fs *fs);

/**
 * fs_close_handles() - release every handle the kernel never released (an
 * upload still open is aborted), and wait a little for the block puts to
 * the shared cache in flight. The modules stay up (their counters can
 * still be read). Call while the transfer engine still runs.
 */
void fs_close_handles(struct hpcops_fs *fs);

/**
 * fs_shutdown() - fs_close_handles(), then free the uploader, which retries
 * the aborts still owed. Call while the transfer engine still runs;
 * fs_teardown() calls it too.
 */
void fs_shutdown(struct hpcops_fs *fs);

/**
 * fs_teardown() - free what fs_setup() built (after the transfer engine
 * stopped, so no GET is still in flight). Safe on a zeroed fs.
 */
void fs_teardown(struct hpcops_fs *fs);

#endif

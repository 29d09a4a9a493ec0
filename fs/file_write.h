/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_write: write handles, each over an upload (upload.h). create and
 * the opens that write (O_WRONLY, O_TRUNC, O_APPEND, O_RDWR of a new or
 * local file), sequential writes, and when an upload completes: on the
 * opener's last close (its flush), on fsync, or at release; never on the
 * flush of a forked child or of a duplicate the opener still holds. Once
 * an upload completes the file is no longer "being written": the next
 * open, stat, read or unlink sees the object. setattr: truncate to grow a
 * file being written, utimens kept in the object, chmod/chown refused
 * unless they change nothing. Functions return 0 or -errno.
 */
#ifndef HPCOPS_FILE_WRITE_H
#define HPCOPS_FILE_WRITE_H

#include "fs.h"
#include "upload.h"

/** Who opens: the caller's thread id and the FUSE lock owner. */
struct fw_opener {
	pid_t tid;
	uint64_t lock_owner;
};

/**
 * fw_create() - a new file @name in @parent, open for writing: @e gets the
 * entry (one lookup counted) and *@out the handle. EEXIST for an object
 * that exists without --allow-overwrite, ENAMETOOLONG past S3's key length.
 */
int fw_create(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, mode_t mode, int flags,
              const struct fw_opener *who, struct fs_handle **out, struct fuse_entry_param *e);

/**
 * fw_open() - an open of @ino that is not read-only. O_TRUNC replaces
 * (--allow-overwrite), O_APPEND appends (--allow-append), O_RDWR alone on
 * an existing object gives an undecided handle (*@undecided set: the
 * caller opens it for reading), O_WRONLY alone on one fails (EPERM).
 */
int fw_open(struct hpcops_fs *fs, fuse_ino_t ino, int flags, const struct fw_opener *who,
            struct fs_handle **out, bool *undecided);

/**
 * fw_write() - @len bytes at @off, copied by @fill. An undecided handle's
 * first write fails with EPERM (an existing object is replaced only when
 * opened with O_TRUNC). Returns @len or -errno.
 */
ssize_t fw_write(struct hpcops_fs *fs, struct fs_handle *h, uint64_t off, size_t len,
                 upload_fill_fn fill, void *user);

/** fw_flush() - a close(2) by thread @tid: completes the upload on the opener's last close. */
int fw_flush(struct hpcops_fs *fs, struct fs_handle *h, pid_t tid);

/** fw_fsync() - complete the upload now; writes afterwards get EINVAL. */
int fw_fsync(struct hpcops_fs *fs, struct fs_handle *h);

/** fw_release() - the last reference is gone: complete if not yet (a failure is logged), free. */
void fw_release(struct hpcops_fs *fs, struct fs_handle *h);

/**
 * fw_setattr() - setattr of @ino (@h: the handle, or NULL by path). @st
 * gets the attributes after the change.
 */
int fw_setattr(struct hpcops_fs *fs, fuse_ino_t ino, struct fs_handle *h, const struct stat *attr,
               int to_set, struct stat *st);

#endif

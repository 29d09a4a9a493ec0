/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs: the central state of hpcops-mount shared by every file of fs/: the
 * parsed options (options.h), the S3 client, the inode table, the memory budget, the file
 * handle type, the helpers that fill FUSE replies, and the write-side ops
 * (fsw_*, implemented in ops_write.c) that the ops table in ops.c dispatches to.
 */
#ifndef HPCOPS_FS_H
#define HPCOPS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "budget.h"
#include "inode.h"
#include "options.h"

struct s3_client;
struct xfer_engine;
struct creds_provider;
struct prefetch;
struct upload;
struct cache;

/** The filesystem: one per process, passed as the FUSE session's userdata. */
struct hpcops_fs {
	struct fs_options opt;
	struct s3_client *s3;         /* owned; requests for opt.bucket */
	struct xfer_engine *xfer;     /* owned; the engine s3 runs on */
	struct creds_provider *creds; /* owned; NULL with --no-sign-request */
	struct inode_table inodes;
	struct budget *budget; /* owned; --memory-limit for prefetch AND upload buffers */
	struct cache *cache;   /* owned; NULL without --cache */
	struct fuse_session *se;
	size_t max_write;  /* negotiated in init: the largest FUSE write */
	void *write_state; /* the write side's global state (fsw_init), owned by it */
};

enum fs_handle_kind {
	FS_HANDLE_READ = 1,
	FS_HANDLE_WRITE = 2,
	FS_HANDLE_DIR = 3,
};

struct dir_handle;

/**
 * An open file or directory: fi->fh points at one. The handle holds an
 * internal ref on @inode (dropped by whoever frees the handle).
 */
struct fs_handle {
	enum fs_handle_kind kind;
	struct inode *inode;
	union {
		struct prefetch *rd;    /* FS_HANDLE_READ, owned by ops.c */
		struct upload *wr;      /* FS_HANDLE_WRITE, owned by ops_write.c */
		struct dir_handle *dir; /* FS_HANDLE_DIR, owned by ops.c */
	};
	pid_t opener_pid;    /* pid that opened it (write side: complete on its flush) */
	uint64_t lock_owner; /* fi->lock_owner at open, for the same purpose */
};

static inline struct fs_handle *fs_handle_of(const struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

/** fs_of() - the filesystem behind a request. */
static inline struct hpcops_fs *fs_of(fuse_req_t req)
{
	return (struct hpcops_fs *)fuse_req_userdata(req);
}

/* ---- helpers in ops.c for both sides ---- */

/** fs_attr_locked() - fill @st from @n (mode from --file-mode/--dir-mode, uid, gid). */
void fs_attr_locked(struct hpcops_fs *fs, const struct inode *n, struct stat *st);

/**
 * fs_reply_entry() - reply to a lookup-like request (lookup, create's entry,
 * mkdir) with @n: counts one kernel lookup on @n, sets the timeouts from
 * --metadata-ttl. Does not drop the caller's internal ref.
 */
int fs_reply_entry(fuse_req_t req, struct hpcops_fs *fs, struct inode *n);

/** fs_fill_entry_locked() - as fs_reply_entry() without replying (create needs it). */
void fs_fill_entry_locked(struct hpcops_fs *fs, struct inode *n, struct fuse_entry_param *e);

/** fs_reply_attr() - reply to getattr/setattr with the attributes of @n. */
int fs_reply_attr(fuse_req_t req, struct hpcops_fs *fs, struct inode *n);

/** fs_attr_timeout() - --metadata-ttl as the kernel's attribute/entry timeout. */
double fs_attr_timeout(const struct hpcops_fs *fs);

/* ---- write-side ops: implemented by ops_write.c (fswrite), called by ops.c ---- */

/** fsw_init() - start the write side (fs->write_state). 0 or -errno. Called before the session
 * runs. */
int fsw_init(struct hpcops_fs *fs);
/** fsw_destroy() - finish or abort every upload still open, free fs->write_state. */
void fsw_destroy(struct hpcops_fs *fs);

/**
 * fsw_open() - open of an existing file for writing (ops.c's open calls it
 * when fi->flags has O_WRONLY, O_RDWR, O_TRUNC or O_APPEND). It replies.
 */
void fsw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsw_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi);
void fsw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi);
void fsw_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
               struct fuse_file_info *fi);
/** fsw_flush/fsw_fsync/fsw_release: called by ops.c only for FS_HANDLE_WRITE handles. */
void fsw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fsw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fsw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                 struct fuse_file_info *fi);
void fsw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fsw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fsw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fsw_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags);
void fsw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fsw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fsw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fsw_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags);
void fsw_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fsw_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fsw_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs: the state of one hpcops-mount, shared by the filesystem's modules.
 * There is no other state: no file of fs/ keeps globals.
 *
 *   main.c        the process; options.c the command line (mount-s3's flags);
 *                 fs_setup.c builds the modules below and takes them down
 *   fuse_ops.c    the adapter: decodes each FUSE request, calls the logic
 *                 below, logs and replies in one place (the only caller of
 *                 fuse_reply_*)
 *   namespace.c   lookup, getattr, readdir, mkdir, mknod, rmdir, unlink, rename
 *   file_read.c   read handles (and O_RDWR handles until their first call)
 *   file_write.c  write handles: create/open, write, flush/fsync/release, setattr
 *   upload.c      the multipart upload machine behind a write handle
 *   prefetch.c    object-shared read parts with a window per handle
 *   inode.c       the inode table; budget.c the memory budget; cache.c the
 *                 block cache (cache_disk.c on this node, cache_bucket.c
 *                 shared by a cluster); backend_s3.c the S3 calls (a table,
 *                 backend.h: a fake store in tests); fs_metrics.c the series
 *                 and signals
 * (doc/ARCHITECTURE.md has the whole map.)
 *
 * Lock order (take them in this order, never the other way):
 *   1. a directory handle's lock (readdir)
 *   2. the inode table's lock (inodes.lock): every node field it guards;
 *      fs->ns.lock (kept directories, retired keys) is a leaf under it
 *   3. fs->handles_lock
 *   4. an upload's wlock, then its lock; a prefetch object's lock (after
 *      the prefetcher's table lock)
 *   5. the budget's lock, the prefetcher's pool lock, the uploader's alock,
 *      the block cache's locks (its disk index, its shared tier's puts)
 *   6. the adapter's notifier lock (fs->adapter.lock)
 * No lock is held across an S3 call except an upload's wlock (its writer)
 * and a directory handle's lock (its listing page).
 */
#ifndef HPCOPS_FS_H
#define HPCOPS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backend.h"
#include "budget.h"
#include "inode.h"
#include "options.h"

struct s3_client;
struct xfer_engine;
struct creds_provider;
struct prefetch;
struct prefetcher;
struct upload;
struct uploader;
struct cache;
struct dir_handle;
struct fs_metrics;

/** S3's longest key: a path whose key would be longer cannot exist there. */
#define FS_MAX_KEY 1024

enum fs_handle_kind {
	FS_HANDLE_READ = 1,
	FS_HANDLE_WRITE,
	FS_HANDLE_DIR,
	/* opened O_RDWR on an existing object: the first read makes it a read
	 * handle, a first write fails (objects are replaced only with O_TRUNC) */
	FS_HANDLE_UNDECIDED,
};

/**
 * An open file or directory: fi->fh points at one. The handle holds an
 * internal ref on @inode, dropped by whoever frees the handle. Every handle
 * is on fs->handles until it is freed, so teardown frees those the kernel
 * never released.
 */
struct fs_handle {
	enum fs_handle_kind kind; /* UNDECIDED -> READ under the inode table's lock */
	struct inode *inode;
	union {
		struct prefetch *rd;    /* FS_HANDLE_READ (file_read.c) */
		struct upload *wr;      /* FS_HANDLE_WRITE (file_write.c) */
		struct dir_handle *dir; /* FS_HANDLE_DIR (namespace.c) */
	};
	pid_t opener_pid;    /* thread group that opened it (a write completes on its close) */
	uint64_t lock_owner; /* fi->lock_owner at open, for the same purpose */
	bool direct;         /* opened with O_DIRECT: an up-to-date view */
	bool last_flushed;   /* write: its opener closed its last descriptor (inodes.lock) */
	struct fs_handle *prev, *next; /* fs->handles, under handles_lock */
};

/** State of the namespace module (namespace.c). */
struct ns_state {
	pthread_mutex_t lock;
	/* under lock */
	uint64_t invalid_seen[4096]; /* hashes of invalid keys already logged */
	char **retired_keys;         /* old keys of renamed nodes (see ns_rename) */
	size_t n_retired;
	struct inode **dirs; /* mkdir'd directories, each holding a ref until rmdir */
	size_t n_dirs;
};

struct fuse_ops_inval;

/**
 * State of the FUSE adapter (fuse_ops.c): the notifications that must wait
 * for the reply to the current request, and the thread that sends them.
 * Set up by fuse_ops_attach(), stopped and freed by fuse_ops_detach().
 */
struct fuse_ops_state {
	pthread_mutex_t lock; /* a leaf: nothing else is taken under it */
	/* under lock */
	struct fuse_ops_inval *head; /* queued invalidations, oldest first */
	bool stop;                   /* fuse_ops_detach() asked the thread to end */
	bool started;                /* @thread runs (started on the first queued one) */
	pthread_cond_t cond;         /* with lock: something queued, or stop */
	pthread_t thread;
};

/** The filesystem: one per process, passed as the FUSE session's userdata. */
struct hpcops_fs {
	struct fs_options opt;
	struct s3_client *s3;         /* owned; requests for opt.bucket */
	struct xfer_engine *xfer;     /* owned; the engine s3 runs on */
	struct creds_provider *creds; /* owned; NULL with --no-sign-request */
	struct fs_backend be;         /* the S3 calls of the logic (over s3, or a test's) */
	struct s3_client *cache_s3;   /* owned; requests for opt.cache_xz (NULL without) */
	struct fs_backend cache_be;   /* the cache bucket's calls (over cache_s3, or a test's) */
	struct inode_table inodes;
	struct budget *budget;      /* owned; --memory-limit for read AND write buffers */
	struct cache *cache;        /* owned; NULL without --cache and --cache-xz */
	struct prefetcher *reads;   /* owned; the read side */
	struct uploader *writes;    /* owned; what the uploads share */
	struct fs_metrics *metrics; /* owned; NULL in unit tests */
	const char *upload_refusal; /* non-NULL: every upload fails (EIO) and logs this */
	struct fuse_session *se;    /* NULL in unit tests */
	size_t max_write;           /* negotiated in init: the largest FUSE write */
	time_t mount_time;          /* the mtime of directories S3 has no time for */
	struct ns_state ns;
	pthread_cond_t writer_cond; /* with inodes.lock: a node's writer_users dropped to 0 */

	pthread_mutex_t handles_lock;
	struct fs_handle *handles; /* every handle not yet freed */

	/*
	 * Tell the kernel that @name in @parent changed (drop its dentry). Set
	 * by the adapter; NULL without a FUSE session. @later: after the reply
	 * to the current request (the kernel may hold the directory's lock
	 * until then), else at once.
	 */
	void (*inval_entry)(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, bool later);
	/* Tell the kernel to drop what it caches of @ino's attributes (O_DIRECT opens). */
	void (*inval_attr)(struct hpcops_fs *fs, fuse_ino_t ino);
	struct fuse_ops_state adapter; /* the adapter's own; untouched without a FUSE session */
};

/** fs_handle_new() - a handle of @kind on @n (takes over the caller's ref), on fs->handles. */
struct fs_handle *fs_handle_new(struct hpcops_fs *fs, enum fs_handle_kind kind, struct inode *n);

/** fs_handle_free() - off fs->handles, drop the inode ref, free (not the payload). */
void fs_handle_free(struct hpcops_fs *fs, struct fs_handle *h);

/** fs_attr_timeout() - --metadata-ttl as the kernel's attribute/entry timeout. */
static inline double fs_attr_timeout(const struct hpcops_fs *fs)
{
	return fs->opt.metadata_ttl;
}

/** fs_negative_ttl() - how long "does not exist" is trusted (--negative-metadata-ttl). */
static inline double fs_negative_ttl(const struct hpcops_fs *fs)
{
	return fs->opt.negative_metadata_ttl_set ? fs->opt.negative_metadata_ttl
	                                         : fs->opt.metadata_ttl;
}

/**
 * fs_writable() - the read-only policy, in one place: 0, or EROFS (with
 * --read-only). Every operation that would change the bucket asks it.
 */
static inline int fs_writable(const struct hpcops_fs *fs)
{
	return fs->opt.read_only ? EROFS : 0;
}

#endif

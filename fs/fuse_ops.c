/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuse_ops: the adapter between the kernel's FUSE requests and the
 * filesystem logic. Each handler decodes its request, calls one function of
 * namespace.c, file_read.c or file_write.c (which return 0 or -errno), and
 * replies exactly once, at its end; this is the only file that calls
 * fuse_reply_*. Kernel notifications that must wait for a reply (the new
 * name of a rename) go through one notifier thread, whose state is the
 * filesystem's (fs->adapter): this file keeps none of its own.
 */
#include "fuse_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "file_read.h"
#include "file_write.h"
#include "fs_metrics.h"
#include "log.h"
#include "namespace.h"

static struct hpcops_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_handle *handle_of(const struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

/* ---- replies: one helper per shape, each the end of a handler ---- */

/* An error reply, counted by operation and errno (hpcops_fs_errors_total). */
static void reply_err(fuse_req_t req, const char *op, int r)
{
	if (r < 0)
		fs_metrics_error(fs_of(req)->metrics, op, -r);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

static void reply_entry(fuse_req_t req, struct hpcops_fs *fs, const char *op, int r,
                        const struct fuse_entry_param *e)
{
	if (r) {
		reply_err(req, op, r);
		return;
	}
	/* interrupted: the kernel did not take the lookup the logic counted */
	if (fuse_reply_entry(req, e) != 0 && e->ino)
		inode_forget(&fs->inodes, e->ino, 1);
}

static void reply_attr(fuse_req_t req, struct hpcops_fs *fs, const char *op, int r,
                       const struct stat *st)
{
	if (r)
		reply_err(req, op, r);
	else
		fuse_reply_attr(req, st, fs_attr_timeout(fs));
}

/* Reply to an open; a reply that does not reach the kernel frees the handle. */
static void reply_open(fuse_req_t req, struct hpcops_fs *fs, const char *op, int r,
                       struct fuse_file_info *fi, struct fs_handle *h)
{
	if (r) {
		reply_err(req, op, r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* Interrupted: the kernel will send no release. */
		if (h->kind == FS_HANDLE_WRITE)
			fw_release(fs, h);
		else if (h->kind == FS_HANDLE_DIR)
			ns_releasedir(fs, h);
		else
			fr_release(fs, h);
	}
}

/* ---- kernel notifications after the reply: the notifier thread ---- */

struct fuse_ops_inval {
	fuse_ino_t parent;
	struct fuse_ops_inval *next;
	char name[];
};

static void *notifier_main(void *arg)
{
	struct hpcops_fs *fs = arg;
	struct fuse_ops_state *st = &fs->adapter;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		struct fuse_ops_inval *j = st->head;

		if (!j) {
			if (st->stop)
				break;
			pthread_cond_wait(&st->cond, &st->lock);
			continue;
		}
		st->head = j->next;
		pthread_mutex_unlock(&st->lock);
		/* Waits for the kernel's directory lock, which the request holds
		 * until our reply is processed: hence this thread. */
		if (fs->se)
			fuse_lowlevel_notify_inval_entry(fs->se, j->parent, j->name,
			                                 strlen(j->name));
		free(j);
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static void inval_entry(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, bool later)
{
	struct fuse_ops_state *st = &fs->adapter;
	size_t len = strlen(name);
	struct fuse_ops_inval *j, **pp;

	if (!fs->se)
		return;
	if (!later) {
		fuse_lowlevel_notify_inval_entry(fs->se, parent, name, len);
		return;
	}
	j = malloc(sizeof(*j) + len + 1);
	if (!j)
		return;
	j->parent = parent;
	j->next = NULL;
	memcpy(j->name, name, len + 1);
	pthread_mutex_lock(&st->lock);
	if (!st->started && pthread_create(&st->thread, NULL, notifier_main, fs) == 0)
		st->started = true;
	for (pp = &st->head; *pp; pp = &(*pp)->next)
		;
	*pp = j;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static void inval_attr(struct hpcops_fs *fs, fuse_ino_t ino)
{
	/* attributes only (offset < 0): no page or lock the open could hold */
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

void fuse_ops_attach(struct hpcops_fs *fs)
{
	struct fuse_ops_state *st = &fs->adapter;

	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	fs->inval_entry = inval_entry;
	fs->inval_attr = inval_attr;
}

void fuse_ops_detach(struct hpcops_fs *fs)
{
	struct fuse_ops_state *st = &fs->adapter;
	struct fuse_ops_inval *j, *next;

	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
	if (st->started)
		pthread_join(st->thread, NULL);
	for (j = st->head; j; j = next) {
		next = j->next;
		free(j);
	}
	st->head = NULL;
	st->started = false;
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	fs->inval_entry = NULL;
	fs->inval_attr = NULL;
}

/* ---- the namespace ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int r = ns_lookup(fs, parent, name, &e);

	if (r == -ENOENT) {
		/* an answer, not a failure of the mount: not counted */
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, fs, "lookup", r, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(&fs_of(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct hpcops_fs *fs = fs_of(req);

	for (size_t i = 0; i < count; i++)
		inode_forget(&fs->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct stat st;
	int r = ns_getattr(fs, ino, fi != NULL, &st);

	reply_attr(req, fs, "getattr", r, &st);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct stat st;
	int r = fw_setattr(fs, ino, fi ? handle_of(fi) : NULL, attr, to_set, &st);

	reply_attr(req, fs, "setattr", r, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int r = ns_mkdir(fs, parent, name, &e);

	reply_entry(req, fs, "mkdir", r, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	int r = ns_mknod(fs, parent, name, mode, &e);

	reply_entry(req, fs, "mknod", r, &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, "unlink", ns_unlink(fs_of(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, "rmdir", ns_rmdir(fs_of(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	reply_err(req, "rename", ns_rename(fs_of(req), parent, name, newparent, newname, flags));
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	reply_err(req, "symlink", ns_symlink(fs_of(req), name));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	reply_err(req, "link", ns_link(fs_of(req), newname));
}

/* xattrs: ENOSYS, which the kernel remembers and turns into EOPNOTSUPP. */
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	fuse_reply_err(req, ENOSYS);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	fuse_reply_err(req, ENOSYS);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fuse_reply_err(req, ENOSYS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, ENOSYS);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	/* S3 has no capacity: report a large, fixed one (as Mountpoint does) */
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = 1ULL << 40;
	sv.f_bfree = 1ULL << 40;
	sv.f_bavail = 1ULL << 40;
	sv.f_files = 1ULL << 32;
	sv.f_ffree = 1ULL << 32;
	sv.f_favail = 1ULL << 32;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- directories ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = NULL;
	int r = ns_opendir(fs, ino, &h);

	fi->keep_cache = 0;
	reply_open(req, fs, "opendir", r, fi, h);
}

struct emit_ctx {
	fuse_req_t req;
};

static size_t emit_dirent(void *ctx, char *buf, size_t room, const char *name,
                          const struct fuse_entry_param *e, const struct stat *st, off_t next)
{
	struct emit_ctx *c = ctx;

	if (e)
		return fuse_add_direntry_plus(c->req, buf, room, name, e, next);
	return fuse_add_direntry(c->req, buf, room, name, st, next);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct hpcops_fs *fs = fs_of(req);
	struct emit_ctx ctx = {.req = req};
	char *buf = malloc(size ? size : 1);
	size_t used = 0;
	int r;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = ns_readdir(fs, handle_of(fi), off, plus, buf, size, emit_dirent, &ctx, &used);
	if (r)
		reply_err(req, "readdir", r);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ns_releasedir(fs_of(req), handle_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

static struct fw_opener opener_of(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct fw_opener w = {.tid = fuse_req_ctx(req)->pid, .lock_owner = fi->lock_owner};

	return w;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fw_opener who = opener_of(req, fi);
	struct fs_handle *h = NULL;
	struct fuse_entry_param e;
	int r = fw_create(fs, parent, name, mode, fi->flags, &who, &h, &e);

	if (r) {
		reply_err(req, "create", r);
		return;
	}
	fs_metrics_created(fs->metrics);
	fi->fh = (uint64_t)(uintptr_t)h;
	/* our own writes change what the kernel may have cached */
	fi->keep_cache = 0;
	/*
	 * A handle that writes a new object does not read it (Mountpoint): with
	 * O_RDWR its reads must reach us (EBADF), not pages the kernel kept of
	 * the writes, cut to whatever size S3 reports once the object is done.
	 */
	fi->direct_io = (fi->flags & O_ACCMODE) == O_RDWR;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* Interrupted: the kernel will send no release, nor keep the lookup. */
		inode_forget(&fs->inodes, e.ino, 1);
		fw_release(fs, h);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = NULL;
	struct fr_open_flags of = {0};
	bool undecided = false;
	int r;

	if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & (O_TRUNC | O_APPEND))) {
		r = fr_open(fs, ino, fi->flags, false, &h, &of);
	} else {
		struct fw_opener who = opener_of(req, fi);

		r = fw_open(fs, ino, fi->flags, &who, &h, &undecided);
		if (r == 0 && undecided)
			r = fr_open(fs, ino, fi->flags, true, &h, &of);
	}
	fi->keep_cache = of.keep_cache;
	fi->direct_io = of.direct_io;
	if (r == 0 && !undecided && h && h->kind == FS_HANDLE_WRITE)
		fi->direct_io = (fi->flags & O_ACCMODE) == O_RDWR; /* as in op_create */
	reply_open(req, fs, "open", r, fi, h);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct prefetch_reply rep;
	int r = fr_read(fs, handle_of(fi), size, off < 0 ? 0 : (uint64_t)off, &rep);
	uint64_t n = 0;

	if (r) {
		reply_err(req, "read", r);
		return;
	}
	for (int i = 0; i < rep.n_iov; i++)
		n += rep.iov[i].iov_len;
	fs_metrics_read(fs->metrics, n);
	/* one writev from the part buffers: libfuse would copy a multi-piece bufvec */
	fuse_reply_iov(req, rep.iov, rep.n_iov);
	prefetch_reply_done(&rep);
}

struct bufv_src {
	struct fuse_bufvec *src;
	size_t consumed;
};

/* Copy from FUSE's buffer (memory, or a pipe when splice is on) into a part. */
static int fill_from_bufvec(void *user, void *dst, size_t n, size_t src_off)
{
	struct bufv_src *s = user;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(n);
	ssize_t got;

	if (src_off != s->consumed)
		return -EINVAL;
	out.buf[0].mem = dst;
	got = fuse_buf_copy(&out, s->src, 0);
	if (got < 0)
		return (int)got;
	if ((size_t)got != n)
		return -EIO;
	s->consumed += n;
	return 0;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                         struct fuse_file_info *fi)
{
	struct bufv_src s = {.src = bufv};
	ssize_t r = off < 0 ? -EINVAL
	                    : fw_write(fs_of(req), handle_of(fi), (uint64_t)off,
	                               fuse_buf_size(bufv), fill_from_bufvec, &s);

	if (r < 0) {
		reply_err(req, "write", (int)r);
		return;
	}
	fs_metrics_write(fs_of(req)->metrics, (uint64_t)r);
	fuse_reply_write(req, (size_t)r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	reply_err(req, "close", fw_flush(fs_of(req), handle_of(fi), fuse_req_ctx(req)->pid));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_err(req, "fsync", fw_fsync(fs_of(req), handle_of(fi)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = handle_of(fi);

	if (h->kind == FS_HANDLE_WRITE)
		fw_release(fs, h);
	else
		fr_release(fs, h);
	fuse_reply_err(req, 0);
}

/* ---- session ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct hpcops_fs *fs = userdata;

	/* 1 MiB requests (the kernel's max_pages) instead of 128 KiB */
	conn->max_write = 1024 * 1024;
	conn->max_read = 0;
	conn->max_readahead = 16 * 1024 * 1024;
	/* many readahead requests in flight: the prefetcher answers them from one window */
	conn->max_background = 16;
	conn->congestion_threshold = 12;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_READDIRPLUS) {
		/* ls -l / find get attributes with the names: no lookup per entry */
		conn->want |= FUSE_CAP_READDIRPLUS;
		conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	}
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* replies are written from memory buffers with writev: splice only adds work */
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	conn->time_gran = 1000000000;
	fs->max_write = conn->max_write;
}

const struct fuse_lowlevel_ops fs_fuse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .mkdir = op_mkdir,
    .mknod = op_mknod,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .symlink = op_symlink,
    .link = op_link,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write_buf = op_write_buf,
    .flush = op_flush,
    .fsync = op_fsync,
    .release = op_release,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
};

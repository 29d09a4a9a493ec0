/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops_write: the write side of hpcops-mount's FUSE ops (fsw_* in fs.h):
 * create/open for writing, write, flush/fsync/release (when an upload
 * completes), setattr, mkdir/rmdir, unlink, rename, and the operations S3
 * cannot express (chmod, chown, links, xattrs), which fail loudly.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "fs_errno.h"
#include "s3.h"
#include "upload.h"

/* UploadParts in flight per file, as boto3 and the AWS CRT use by default:
 * hides each request's latency on the server; with many files at once the
 * budget's fair share (upload.c) caps it. */
#define FSW_MAX_INFLIGHT 8

/** The write side's global state (fs->write_state). */
struct fsw_state {
	struct upload_params up;
	pthread_mutex_t lock;       /* guards handles */
	struct fs_handle **handles; /* open write handles, for fsw_destroy() */
	size_t n_handles, cap_handles;
	char **retired_keys; /* old keys of renamed nodes, guarded by lock (see fsw_rename) */
	size_t n_retired;
	struct inode **dirs; /* mkdir'd directories, each holding a ref; guarded by lock */
	size_t n_dirs;
};

static struct fsw_state *state_of(struct hpcops_fs *fs)
{
	return fs->write_state;
}

/*
 * The kernel sends the caller's thread id; a process is its thread group.
 * A forked child is another group, another thread of the opener is not.
 */
static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = tid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = (pid_t)strtol(line + 5, NULL, 10);
			break;
		}
	}
	fclose(f);
	return tgid;
}

/*
 * Whether process @tgid still holds a descriptor on @n. The kernel drops
 * the descriptor being closed from the table before it sends FLUSH, so this
 * tells the close of a dup (`echo x >&3`: bash dup2()s fd 3 onto 1 and
 * closes 1 afterwards) from the close of the last descriptor. A name that
 * ends in "/NAME" (a file being written cannot be renamed) and the inode
 * number in fdinfo must both match.
 */
static bool still_open_in(pid_t tgid, const struct inode *n)
{
	char path[320], link[PATH_MAX], line[128];
	size_t nl = strlen(n->name);
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)tgid);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		ssize_t len;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)tgid, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= (ssize_t)nl || link[len - (ssize_t)nl - 1] != '/' ||
		    memcmp(link + len - nl, n->name, nl) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)tgid, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "ino:", 4)) {
				found = strtoull(line + 4, NULL, 10) == (unsigned long long)n->ino;
				break;
			}
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

static struct timespec now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static int track_handle(struct fsw_state *st, struct fs_handle *h)
{
	int r = 0;

	pthread_mutex_lock(&st->lock);
	if (st->n_handles == st->cap_handles) {
		size_t cap = st->cap_handles ? st->cap_handles * 2 : 16;
		struct fs_handle **v = realloc(st->handles, cap * sizeof(*v));

		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		st->handles = v;
		st->cap_handles = cap;
	}
	st->handles[st->n_handles++] = h;
out:
	pthread_mutex_unlock(&st->lock);
	return r;
}

static void untrack_handle(struct fsw_state *st, struct fs_handle *h)
{
	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; i < st->n_handles; i++) {
		if (st->handles[i] == h) {
			st->handles[i] = st->handles[--st->n_handles];
			break;
		}
	}
	pthread_mutex_unlock(&st->lock);
}

int fsw_init(struct hpcops_fs *fs)
{
	struct fsw_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->up.s3 = fs->s3;
	st->up.budget = fs->budget;
	st->up.part_size = fs->opt.write_part_size ? fs->opt.write_part_size : 8u << 20;
	st->up.max_inflight = FSW_MAX_INFLIGHT;
	/* Two: one per core of a small node; MD5 of one part at a time each. */
	st->up.submitter = upload_submitter_new(2);
	if (!st->up.submitter) {
		free(st);
		return -ENOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	fs->write_state = st;
	return 0;
}

void fsw_destroy(struct hpcops_fs *fs)
{
	struct fsw_state *st = state_of(fs);

	if (!st)
		return;
	/*
	 * Uploads still open here lost their writer (unmount with files open,
	 * or a signal): abort them, since completing would publish a file the
	 * writer never finished.
	 */
	for (size_t i = 0; i < st->n_handles; i++) {
		struct fs_handle *h = st->handles[i];

		log_warn("unmount while '%s' is open for writing: upload aborted, the object is "
		         "unchanged",
		         h->inode->key);
		upload_free(h->wr);
		h->wr = NULL;
		inode_lock(&fs->inodes);
		h->inode->writer = NULL;
		inode_unlock(&fs->inodes);
		inode_put(&fs->inodes, h->inode);
		free(h);
	}
	free(st->handles);
	/* the table goes with fs_teardown(): only our list to free */
	free(st->dirs);
	for (size_t i = 0; i < st->n_retired; i++)
		free(st->retired_keys[i]);
	free(st->retired_keys);
	upload_submitter_free(st->up.submitter);
	pthread_mutex_destroy(&st->lock);
	free(st);
	fs->write_state = NULL;
}

/* ---- opening ---- */

static struct fs_handle *handle_new(fuse_req_t req, struct inode *n, struct upload *u,
                                    struct fuse_file_info *fi)
{
	struct fs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->kind = FS_HANDLE_WRITE;
	h->inode = n;
	h->wr = u;
	h->opener_pid = tgid_of(fuse_req_ctx(req)->pid);
	h->lock_owner = fi->lock_owner;
	return h;
}

/* @n changed here and now: its time is now, not one kept in the object. */
static void touch_now_locked(struct inode *n)
{
	n->mtime = now_realtime();
	n->mtime_kept = false;
}

/* Signalled (with the inode table's lock) when an inode's writer_users drops to 0. */
static pthread_cond_t writer_users_cond = PTHREAD_COND_INITIALIZER;

/* Drop a handle that never reached the kernel, or after release. */
static void handle_free(struct hpcops_fs *fs, struct fs_handle *h)
{
	struct inode *n = h->inode;

	inode_lock(&fs->inodes);
	if (n->writer == h->wr) {
		n->writer = NULL;
		/* a truncate or utimens by path may still be using the upload */
		while (n->writer_users)
			pthread_cond_wait(&writer_users_cond, &fs->inodes.lock);
	}
	inode_unlock(&fs->inodes);
	upload_free(h->wr);
	inode_put(&fs->inodes, n);
	free(h);
}

static void set_write_fi(struct hpcops_fs *fs, struct fuse_file_info *fi, struct fs_handle *h)
{
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Our own writes change what the kernel may have cached. */
	fi->keep_cache = 0;
	fi->direct_io = 0;
	(void)fs;
}

/* Why @name cannot become a new file or directory (an errno), or 0. */
static int new_name_err(const char *name)
{
	size_t len = strlen(name);

	if (inode_valid_name(name, len))
		return 0;
	return len > 255 ? ENAMETOOLONG : EINVAL;
}

void fsw_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fsw_state *st = state_of(fs);
	struct fuse_entry_param e;
	struct inode *dir = NULL, *n = NULL, *old;
	struct upload *u = NULL;
	struct fs_handle *h = NULL;
	int r;

	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = new_name_err(name);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	inode_lock(&fs->inodes);
	dir = inode_get_locked(&fs->inodes, parent);
	if (!dir || dir->kind != INODE_DIR) {
		r = dir ? ENOTDIR : ENOENT;
		goto fail_locked;
	}
	old = inode_find_child_locked(&fs->inodes, dir, name);
	if (old && old->kind == INODE_DIR) {
		r = EISDIR;
		goto fail_locked;
	}
	if (old && old->writer) {
		log_err("create of '%s': the file is already being written through another open "
		        "file; one writer at a time",
		        old->key);
		r = EPERM;
		goto fail_locked;
	}
	if (old && !old->local && !fs->opt.allow_overwrite) {
		/* The kernel thought the name free, but we know the object. */
		log_err("create of '%s': the object exists; mount with --allow-overwrite and "
		        "open with O_TRUNC to replace it",
		        old->key);
		r = EEXIST;
		goto fail_locked;
	}
	n = inode_child_locked(&fs->inodes, dir, name, INODE_FILE);
	if (!n) {
		r = ENOMEM;
		goto fail_locked;
	}
	inode_unlock(&fs->inodes);

	u = upload_new(&st->up, n->key);
	h = u ? handle_new(req, n, u, fi) : NULL;
	if (!h) {
		r = ENOMEM;
		goto fail;
	}
	inode_lock(&fs->inodes);
	if (n->writer) {
		log_err("create of '%s': another writer opened it meanwhile", n->key);
		r = EPERM;
		goto fail_locked;
	}
	n->writer = u;
	if (!n->etag[0])
		inode_set_local_locked(n, true);
	n->size = 0;
	touch_now_locked(n);
	n->expires = inode_now() + fs_attr_timeout(fs);
	fs_fill_entry_locked(fs, n, &e);
	inode_unlock(&fs->inodes);
	inode_put(&fs->inodes, dir);
	dir = NULL;

	if (track_handle(st, h) != 0) {
		r = ENOMEM;
		goto fail;
	}
	set_write_fi(fs, fi, h);
	log_debug("create '%s' (opener pid %d)", n->key, (int)h->opener_pid);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* Interrupted: the kernel will send no release. */
		untrack_handle(st, h);
		handle_free(fs, h);
	}
	return;

fail_locked:
	inode_unlock(&fs->inodes);
fail:
	if (h) {
		free(h);
		h = NULL;
	}
	upload_free(u);
	if (n) {
		inode_lock(&fs->inodes);
		if (n->writer == u && u)
			n->writer = NULL;
		if (n->local && !n->writer)
			inode_unlink_locked(&fs->inodes, n);
		inode_put_locked(&fs->inodes, n);
		inode_unlock(&fs->inodes);
	}
	inode_put(&fs->inodes, dir);
	fuse_reply_err(req, r);
}

void fsw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fsw_state *st = state_of(fs);
	struct inode *n;
	struct upload *u = NULL;
	struct fs_handle *h = NULL;
	struct s3_object_info info;
	struct s3_error e;
	bool trunc = fi->flags & O_TRUNC, append = fi->flags & O_APPEND;
	int r;

	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	n = inode_get(&fs->inodes, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->kind == INODE_DIR) {
		r = EISDIR;
		goto fail;
	}
	inode_lock(&fs->inodes);
	bool busy = n->writer != NULL, local = n->local;
	inode_unlock(&fs->inodes);
	if (busy) {
		log_err("open of '%s' for writing: it is already being written through another "
		        "open file; one writer at a time",
		        n->key);
		r = EPERM;
		goto fail;
	}
	if (trunc) {
		if (!fs->opt.allow_overwrite && !local) {
			log_err("open of '%s' with O_TRUNC: replacing an existing object needs "
			        "--allow-overwrite",
			        n->key);
			r = EPERM;
			goto fail;
		}
	} else if (append) {
		if (!fs->opt.allow_append) {
			log_err("open of '%s' with O_APPEND: appending to an existing object needs "
			        "--allow-append",
			        n->key);
			r = EPERM;
			goto fail;
		}
	} else {
		log_err("open of '%s' for writing without O_TRUNC: objects are written whole; "
		        "open with O_TRUNC (and --allow-overwrite) to replace it%s",
		        n->key, fs->opt.allow_append ? ", or with O_APPEND to append" : "");
		r = EPERM;
		goto fail;
	}

	u = upload_new(&st->up, n->key);
	if (!u) {
		r = ENOMEM;
		goto fail;
	}
	if (append && !trunc) {
		/* The size and ETag now, not what the inode table saw a while ago. */
		if (s3_head_object(fs->s3, n->key, &info, &e) != 0) {
			char buf[512];

			log_err("open of '%s' for append: HeadObject failed: %s", n->key,
			        s3_error_format(&e, buf, sizeof(buf)));
			r = fs_errno(e.err) ?: EIO;
			goto fail;
		}
		upload_set_append(u, info.size, info.etag);
	}
	h = handle_new(req, n, u, fi);
	if (!h) {
		r = ENOMEM;
		goto fail;
	}
	inode_lock(&fs->inodes);
	if (n->writer) {
		inode_unlock(&fs->inodes);
		r = EPERM;
		goto fail;
	}
	n->writer = u;
	if (append && !trunc) {
		n->size = info.size;
	} else {
		n->size = 0;
		touch_now_locked(n);
	}
	inode_unlock(&fs->inodes);
	if (track_handle(st, h) != 0) {
		inode_lock(&fs->inodes);
		n->writer = NULL;
		inode_unlock(&fs->inodes);
		r = ENOMEM;
		goto fail;
	}
	set_write_fi(fs, fi, h);
	log_debug("open '%s' for %s (opener pid %d)", n->key, trunc ? "overwrite" : "append",
	          (int)h->opener_pid);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		untrack_handle(st, h);
		handle_free(fs, h);
	}
	return;
fail:
	free(h);
	upload_free(u);
	inode_put(&fs->inodes, n);
	fuse_reply_err(req, r);
}

/* ---- writing ---- */

static void note_written(struct hpcops_fs *fs, struct fs_handle *h)
{
	uint64_t size = upload_size(h->wr);

	inode_lock(&fs->inodes);
	h->inode->size = size;
	/* a write after a utimens moves the time on (the upload forgot it too) */
	touch_now_locked(h->inode);
	h->inode->expires = inode_now() + fs_attr_timeout(fs);
	inode_unlock(&fs->inodes);
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

void fsw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                   struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);
	struct bufv_src s = {.src = bufv};
	size_t len = fuse_buf_size(bufv);
	ssize_t r;

	(void)ino;
	if (!h || h->kind != FS_HANDLE_WRITE || !h->wr) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = upload_write_with(h->wr, (uint64_t)off, len, fill_from_bufvec, &s);
	if (r < 0) {
		fuse_reply_err(req, (int)-r);
		return;
	}
	note_written(fs, h);
	fuse_reply_write(req, (size_t)r);
}

void fsw_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
               struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);
	ssize_t r;

	(void)ino;
	if (!h || h->kind != FS_HANDLE_WRITE || !h->wr) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = upload_write(h->wr, buf, size, (uint64_t)off);
	if (r < 0) {
		fuse_reply_err(req, (int)-r);
		return;
	}
	note_written(fs, h);
	fuse_reply_write(req, (size_t)r);
}

/*
 * Make the object visible and bring the inode in line: on success it is no
 * longer local and carries the new ETag; on failure a file that never
 * existed in S3 disappears, and an overwritten one is looked up again.
 */
static int finish(struct hpcops_fs *fs, struct fs_handle *h)
{
	struct inode *n = h->inode;
	char etag[80];
	struct timespec t;
	fuse_ino_t parent = 0;
	char *name = NULL;
	bool kept;
	int r;

	if (!h->wr)
		return 0;
	r = upload_complete(h->wr, etag);
	kept = r == 0 && upload_mtime_kept(h->wr, &t);
	inode_lock(&fs->inodes);
	if (r == 0) {
		n->size = upload_size(h->wr);
		if (etag[0])
			snprintf(n->etag, sizeof(n->etag), "%s", etag);
		/* what the object keeps, not what was asked (logged if it differs) */
		if (kept)
			n->mtime = t;
		n->mtime_kept = kept;
		inode_set_local_locked(n, false);
		n->expires = inode_now() + fs_attr_timeout(fs);
	} else {
		if (n->local && n->parent) {
			parent = n->parent->ino;
			name = strdup(n->name);
		}
		if (n->local)
			inode_unlink_locked(&fs->inodes, n);
		n->expires = 0;
	}
	inode_unlock(&fs->inodes);
	if (name) {
		/*
		 * The file never came to exist: drop the kernel's dentry now,
		 * before the failing close returns, or a stat within the entry
		 * timeout would still find it. (No directory lock is held by a
		 * close or fsync, so this cannot wait on our own caller.)
		 */
		if (fs->se)
			fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
		free(name);
	}
	return r;
}

void fsw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);
	pid_t pid;

	(void)ino;
	if (!h || !h->wr) {
		fuse_reply_err(req, 0);
		return;
	}
	if (upload_written(h->wr) == 0) {
		/* A shell's `cmd > f` opens f, dup2()s it to stdout and closes
		 * the original: that FLUSH comes before any write. Nothing
		 * written yet means nothing to finish; release will. */
		log_debug("flush of '%s' before any write: upload stays open", h->inode->key);
		fuse_reply_err(req, 0);
		return;
	}
	pid = tgid_of(fuse_req_ctx(req)->pid);
	if (pid != h->opener_pid) {
		/* A forked child closing its copy ($(cmd) in a loop whose output
		 * goes to the file): the opener is still writing. */
		log_debug("flush of '%s' from pid %d, not the opener %d: upload goes on",
		          h->inode->key, (int)pid, (int)h->opener_pid);
		fuse_reply_err(req, 0);
		return;
	}
	if (still_open_in(pid, h->inode)) {
		/* The opener closed a duplicate; its last close flushes again. */
		log_debug("flush of '%s' from the opener, which still has it open: upload goes on",
		          h->inode->key);
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req, -finish(fs, h));
}

void fsw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);

	(void)ino;
	(void)datasync;
	if (!h || !h->wr) {
		fuse_reply_err(req, 0);
		return;
	}
	fuse_reply_err(req, -finish(fs, h));
}

void fsw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);
	int r;

	(void)ino;
	if (!h) {
		fuse_reply_err(req, 0);
		return;
	}
	r = finish(fs, h);
	if (r)
		log_err("upload of '%s' failed at close: %s (the object was not changed)",
		        h->inode->key, strerror(-r));
	untrack_handle(state_of(fs), h);
	handle_free(fs, h);
	fuse_reply_err(req, 0);
}

/* ---- attributes ---- */

void fsw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                 struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fi ? fs_handle_of(fi) : NULL;
	struct upload *u;
	struct inode *n;
	bool borrowed = false;
	int r = 0;

	n = inode_get(&fs->inodes, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		mode_t mode = n->kind == INODE_DIR ? fs->opt.dir_mode : fs->opt.file_mode;

		/*
		 * S3 has no owner or mode bits to keep them in (as Mountpoint):
		 * a change is refused. Asking for what the mount already shows
		 * is no change, and succeeds, so `tar x` and `cp -p` of files
		 * that match the mount's --uid/--gid/--file-mode work.
		 */
		if (((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (mode & 07777)) ||
		    ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != fs->opt.uid) ||
		    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs->opt.gid)) {
			log_info(
			    "chmod/chown of '%s' refused: objects carry no owner or mode "
			    "(--uid, --gid, --file-mode and --dir-mode set them for the mount)",
			    n->key);
			r = EPERM;
			goto out;
		}
	}
	if (fs->opt.read_only && (to_set & ~FUSE_SET_ATTR_ATIME_NOW & ~FUSE_SET_ATTR_ATIME)) {
		r = EROFS;
		goto out;
	}
	if (h && (h->kind != FS_HANDLE_WRITE || !h->wr))
		h = NULL;
	inode_lock(&fs->inodes);
	u = h ? h->wr : n->writer;
	/* By path (no handle): borrow the writer; its release waits for us. */
	borrowed = !h && u;
	if (borrowed)
		n->writer_users++;
	bool local_dir = n->kind == INODE_DIR && n->local;
	uint64_t cur_size = n->size;
	inode_unlock(&fs->inodes);

	if (to_set & FUSE_SET_ATTR_SIZE) {
		uint64_t want = (uint64_t)attr->st_size;

		if (n->kind == INODE_DIR) {
			r = EISDIR;
			goto out;
		}
		if (u) {
			uint64_t have = upload_size(u);

			if (want > have) {
				r = -upload_extend(u, want);
			} else if (want < have) {
				log_err(
				    "truncate of '%s' to %llu bytes while it is being written "
				    "(%llu so far): only growing a file being written is supported",
				    n->key, (unsigned long long)want, (unsigned long long)have);
				r = EINVAL;
			}
			if (r)
				goto out;
			inode_lock(&fs->inodes);
			n->size = upload_size(u);
			touch_now_locked(n);
			inode_unlock(&fs->inodes);
		} else if (want != cur_size) {
			log_err(
			    "truncate of '%s': an object can only be replaced whole; open it with "
			    "O_TRUNC (needs --allow-overwrite)",
			    n->key);
			r = EPERM;
			goto out;
		}
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_ATIME |
	              FUSE_SET_ATTR_ATIME_NOW)) {
		if (!u && !local_dir) {
			/* Only a file being written has a time we can still choose. */
			log_info("utimens of '%s' refused: the time of an object in S3 is when it "
			         "was written; set it while the file is open for writing",
			         n->key);
			r = EPERM;
			goto out;
		}
		if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
			struct timespec t =
			    (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now_realtime() : attr->st_mtim;

			inode_lock(&fs->inodes);
			/* kept in the object as x-amz-meta-mtime */
			if (u)
				r = -upload_set_mtime(u, &t);
			else if (!local_dir)
				r = EPERM;
			if (!r) {
				n->mtime = t;
				n->mtime_kept = u != NULL;
			}
			inode_unlock(&fs->inodes);
			if (r) {
				log_info("utimens of '%s' refused: its upload is completing or "
				         "complete, so the time can no longer be kept",
				         n->key);
				goto out;
			}
		}
	}
out:
	if (borrowed) {
		inode_lock(&fs->inodes);
		if (--n->writer_users == 0)
			pthread_cond_broadcast(&writer_users_cond);
		inode_unlock(&fs->inodes);
	}
	if (r)
		fuse_reply_err(req, r);
	else
		fs_reply_attr(req, fs, n);
	inode_put(&fs->inodes, n);
}

/* ---- names ---- */

/* Remember @n as a mkdir'd directory whose ref we keep. False if we cannot. */
static bool keep_dir(struct hpcops_fs *fs, struct inode *n)
{
	struct fsw_state *st = state_of(fs);
	struct inode **v;
	bool ok = false;

	pthread_mutex_lock(&st->lock);
	v = realloc(st->dirs, (st->n_dirs + 1) * sizeof(*v));
	if (v) {
		st->dirs = v;
		st->dirs[st->n_dirs++] = n;
		ok = true;
	}
	pthread_mutex_unlock(&st->lock);
	return ok;
}

/* After rmdir: drop the ref keep_dir() kept on @n, if it kept one. */
static void drop_dir(struct hpcops_fs *fs, struct inode *n)
{
	struct fsw_state *st = state_of(fs);
	bool found = false;

	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; i < st->n_dirs; i++) {
		if (st->dirs[i] == n) {
			st->dirs[i] = st->dirs[--st->n_dirs];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (found)
		inode_put(&fs->inodes, n);
}

void fsw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode *dir, *n = NULL, *old;
	int r;

	(void)mode;
	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	r = new_name_err(name);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	inode_lock(&fs->inodes);
	dir = inode_get_locked(&fs->inodes, parent);
	if (!dir || dir->kind != INODE_DIR) {
		r = dir ? ENOTDIR : ENOENT;
		goto fail;
	}
	old = inode_find_child_locked(&fs->inodes, dir, name);
	if (old && (old->kind == INODE_DIR || old->writer || old->local)) {
		r = EEXIST;
		goto fail;
	}
	/* A directory that exists only here until a file is written in it. */
	n = inode_child_locked(&fs->inodes, dir, name, INODE_DIR);
	if (!n) {
		r = ENOMEM;
		goto fail;
	}
	inode_set_local_locked(n, true);
	n->size = 0;
	touch_now_locked(n);
	n->expires = inode_now() + fs_attr_timeout(fs);
	inode_put_locked(&fs->inodes, dir);
	inode_unlock(&fs->inodes);
	fs_reply_entry(req, fs, n);
	/*
	 * A mkdir'd directory exists nowhere but in the table: keep our ref
	 * so it outlives the kernel's forget (dentries are dropped under
	 * memory pressure) until rmdir.
	 */
	if (!keep_dir(fs, n))
		inode_put(&fs->inodes, n);
	return;
fail:
	inode_put_locked(&fs->inodes, dir);
	inode_unlock(&fs->inodes);
	fuse_reply_err(req, r);
}

/* The child @name of @parent with a ref, or NULL with *err set. */
static struct inode *child_get(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, int *err)
{
	struct inode *dir, *n = NULL;

	inode_lock(&fs->inodes);
	dir = inode_get_locked(&fs->inodes, parent);
	if (!dir) {
		*err = ENOENT;
	} else {
		n = inode_find_child_locked(&fs->inodes, dir, name);
		if (n)
			inode_ref_locked(n);
		else
			*err = ENOENT;
		inode_put_locked(&fs->inodes, dir);
	}
	inode_unlock(&fs->inodes);
	return n;
}

/*
 * What S3 holds at @key when the inode table does not know the name (the
 * kernel can still hold a dentry for it, e.g. the new name of a renamed
 * file until it looks it up again): 1 = an object (@info filled), 2 = a
 * directory (objects under key/), 0 = nothing, or -errno.
 */
static int remote_kind(struct hpcops_fs *fs, const char *key, struct s3_object_info *info)
{
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	char *dkey = NULL;
	int r;

	if (s3_head_object(fs->s3, key, info, &e) == 0)
		return 1;
	if (e.err != S3_ERR_NO_SUCH_KEY)
		return -(fs_errno(e.err) ?: EIO);
	if (asprintf(&dkey, "%s/", key) < 0)
		return -ENOMEM;
	lp.prefix = dkey;
	lp.max_keys = 1;
	if (s3_list_objects(fs->s3, &lp, &page, &e) != 0)
		r = -(fs_errno(e.err) ?: EIO);
	else
		r = page.n_entries || page.n_prefixes ? 2 : 0;
	s3_list_page_free(&page);
	free(dkey);
	return r;
}

/* The key of @name in directory @parent (malloc'd), or NULL. */
static char *child_key(struct hpcops_fs *fs, fuse_ino_t parent, const char *name)
{
	struct inode *dir = inode_get(&fs->inodes, parent);
	char *key = NULL;

	if (!dir)
		return NULL;
	if (asprintf(&key, "%s%s", dir->key, name) < 0)
		key = NULL;
	inode_put(&fs->inodes, dir);
	return key;
}

/* Forget that @n existed: unreachable by name, and a negative entry for the name. */
static void forget_name(struct hpcops_fs *fs, struct inode *n)
{
	inode_lock(&fs->inodes);
	if (n->parent && !n->unlinked) {
		inode_unlink_locked(&fs->inodes, n);
		inode_neg_add_locked(&fs->inodes, n->parent, n->name,
		                     inode_now() + fs_attr_timeout(fs));
	}
	inode_unlock(&fs->inodes);
}

void fsw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hpcops_fs *fs = fs_of(req);
	struct s3_object_info info;
	struct s3_error e;
	struct inode *n;
	char *key = NULL;
	int r = 0;

	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	n = child_get(fs, parent, name, &r);
	if (!n) {
		/* Known to the kernel, not to the table: ask S3. */
		key = child_key(fs, parent, name);
		if (!key) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		r = remote_kind(fs, key, &info);
		r = r == 1 ? 0 : r == 2 ? EISDIR : r == 0 ? ENOENT : -r;
		if (r)
			goto out;
	} else if (n->kind == INODE_DIR) {
		r = EISDIR;
		goto out;
	} else {
		inode_lock(&fs->inodes);
		bool busy = n->writer != NULL;
		inode_unlock(&fs->inodes);
		if (busy) {
			log_err("unlink of '%s': it is being written; close it first", n->key);
			r = EPERM;
			goto out;
		}
	}
	const char *k = n ? n->key : key;
	if (!fs->opt.allow_delete) {
		log_err("unlink of '%s' refused: deleting objects needs --allow-delete", k);
		r = EPERM;
		goto out;
	}
	if (s3_delete_object(fs->s3, k, &e) != 0) {
		char buf[512];

		log_err("unlink of '%s': DeleteObject failed: %s", k,
		        s3_error_format(&e, buf, sizeof(buf)));
		r = fs_errno(e.err) ?: EIO;
		goto out;
	}
	if (n)
		forget_name(fs, n);
	log_debug("unlink '%s'", k);
out:
	free(key);
	inode_put(&fs->inodes, n);
	fuse_reply_err(req, r);
}

void fsw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hpcops_fs *fs = fs_of(req);
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	struct inode *n;
	int r = 0;

	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	n = child_get(fs, parent, name, &r);
	if (!n) {
		fuse_reply_err(req, r);
		return;
	}
	if (n->kind != INODE_DIR) {
		r = ENOTDIR;
		goto out;
	}
	inode_lock(&fs->inodes);
	bool local = n->local, busy = n->local_children > 0;
	inode_unlock(&fs->inodes);
	if (busy) {
		r = ENOTEMPTY;
		goto out;
	}
	/* What S3 holds under the prefix: nothing, only a "dir/" marker, or more. */
	lp.prefix = n->key;
	lp.max_keys = 2;
	if (s3_list_objects(fs->s3, &lp, &page, &e) != 0) {
		char buf[512];

		log_err("rmdir of '%s': ListObjectsV2 failed: %s", n->key,
		        s3_error_format(&e, buf, sizeof(buf)));
		r = fs_errno(e.err) ?: EIO;
		goto out;
	}
	bool marker = false, others = false;
	for (size_t i = 0; i < page.n_entries; i++) {
		if (!strcmp(page.entries[i].key, n->key))
			marker = true;
		else
			others = true;
	}
	if (others || page.n_prefixes > 0) {
		r = ENOTEMPTY;
		goto out;
	}
	if (marker) {
		if (!fs->opt.allow_delete) {
			log_err("rmdir of '%s' refused: removing its directory marker object needs "
			        "--allow-delete",
			        n->key);
			r = EPERM;
			goto out;
		}
		if (s3_delete_object(fs->s3, n->key, &e) != 0) {
			char buf[512];

			log_err("rmdir of '%s': DeleteObject of the marker failed: %s", n->key,
			        s3_error_format(&e, buf, sizeof(buf)));
			r = fs_errno(e.err) ?: EIO;
			goto out;
		}
	}
	(void)local;
	forget_name(fs, n);
	drop_dir(fs, n);
out:
	s3_list_page_free(&page);
	inode_put(&fs->inodes, n);
	fuse_reply_err(req, r);
}

/*
 * After a rename the kernel's dentry for the new name points at the old
 * node until the kernel looks the name up again (inval_entry_later), and
 * until then opens and stats of the new name come here with the old node.
 * Point that node at the new key so they find the object. inode.h calls
 * key immutable because it is read without the lock: the pointer is
 * swapped under the lock and the old string stays allocated (retired until
 * fsw_destroy), so a reader holding either pointer reads a valid key.
 */
static void retarget_locked(struct hpcops_fs *fs, struct inode *n, const char *newkey,
                            uint64_t size, const char *etag)
{
	struct fsw_state *st = state_of(fs);
	char *k = strdup(newkey);
	char **v;

	if (!k)
		return;
	pthread_mutex_lock(&st->lock);
	v = realloc(st->retired_keys, (st->n_retired + 1) * sizeof(*v));
	if (v) {
		st->retired_keys = v;
		st->retired_keys[st->n_retired++] = n->key;
		n->key = k;
	} else {
		free(k);
	}
	pthread_mutex_unlock(&st->lock);
	n->size = size;
	if (etag[0] == '"' && strlen(etag) >= 2)
		snprintf(n->etag, sizeof(n->etag), "%.*s", (int)strlen(etag) - 2, etag + 1);
	else if (etag[0])
		snprintf(n->etag, sizeof(n->etag), "%s", etag);
	n->expires = inode_now() + fs_attr_timeout(fs);
}

struct inval_job {
	struct fuse_session *se;
	fuse_ino_t parent;
	char name[];
};

static void *inval_thread(void *arg)
{
	struct inval_job *j = arg;

	/* Waits for the kernel's directory lock, which the rename holds until
	 * our reply is processed: hence its own thread. */
	fuse_lowlevel_notify_inval_entry(j->se, j->parent, j->name, strlen(j->name));
	free(j);
	return NULL;
}

/*
 * After a rename the kernel's dentry for the new name points at the old
 * node (the old key). Make it look the name up again, so it gets a node
 * whose key is the new one.
 */
static void inval_entry_later(struct hpcops_fs *fs, fuse_ino_t parent, const char *name)
{
	size_t len = strlen(name);
	struct inval_job *j;
	pthread_attr_t a;
	pthread_t t;

	if (!fs->se)
		return;
	j = malloc(sizeof(*j) + len + 1);
	if (!j)
		return;
	j->se = fs->se;
	j->parent = parent;
	memcpy(j->name, name, len + 1);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, inval_thread, j) != 0)
		free(j);
	pthread_attr_destroy(&a);
}

void fsw_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode *n = NULL, *dst = NULL, *ndir = NULL;
	struct s3_object_info info, dinfo;
	struct s3_error e;
	char *key = NULL, *newkey = NULL;
	bool dst_exists = false, dst_local = false;
	char new_etag[80] = "";
	int r = 0, kind;

	if (fs->opt.read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = new_name_err(newname);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	n = child_get(fs, parent, name, &r);
	r = 0;
	if (n && n->kind == INODE_DIR) {
		/* A directory is every key under its prefix: tools copy instead. */
		log_info("rename of directory '%s': not supported (EXDEV: mv copies instead)",
		         n->key);
		r = EXDEV;
		goto out;
	}
	key = n ? strdup(n->key) : child_key(fs, parent, name);
	if (!key) {
		r = n ? ENOMEM : ENOENT;
		goto out;
	}
	if (!fs->opt.allow_rename) {
		log_err("rename of '%s' refused: renaming files needs --allow-rename (a copy and "
		        "a delete, not atomic)",
		        key);
		r = EPERM;
		goto out;
	}
	inode_lock(&fs->inodes);
	bool busy = n && n->writer != NULL;
	ndir = inode_get_locked(&fs->inodes, newparent);
	if (ndir) {
		dst = inode_find_child_locked(&fs->inodes, ndir, newname);
		if (dst)
			inode_ref_locked(dst);
	}
	inode_unlock(&fs->inodes);
	if (busy) {
		log_err("rename of '%s': it is being written; close it first", key);
		r = EPERM;
		goto out;
	}
	if (!ndir || ndir->kind != INODE_DIR) {
		r = ndir ? ENOTDIR : ENOENT;
		goto out;
	}
	if (asprintf(&newkey, "%s%s", ndir->key, newname) < 0) {
		newkey = NULL;
		r = ENOMEM;
		goto out;
	}
	if (!strcmp(newkey, key))
		goto out;
	/* The source as S3 has it now (size for the copy; or a directory). */
	kind = remote_kind(fs, key, &info);
	if (kind != 1) {
		if (kind == 2)
			log_info("rename of directory '%s': not supported (EXDEV: mv copies "
			         "instead)",
			         key);
		r = kind == 2 ? EXDEV : kind == 0 ? ENOENT : -kind;
		goto out;
	}
	if (dst) {
		if (dst->kind == INODE_DIR) {
			r = EISDIR;
			goto out;
		}
		if (dst->writer) {
			log_err("rename onto '%s': it is being written", dst->key);
			r = EPERM;
			goto out;
		}
		dst_exists = true;
		dst_local = dst->local;
	} else {
		kind = remote_kind(fs, newkey, &dinfo);
		if (kind < 0) {
			r = -kind;
			goto out;
		}
		if (kind == 2) {
			r = EISDIR;
			goto out;
		}
		dst_exists = kind == 1;
	}
	if (dst_exists) {
		if (flags & RENAME_NOREPLACE) {
			r = EEXIST;
			goto out;
		}
		if (!fs->opt.allow_overwrite && !dst_local) {
			log_err(
			    "rename of '%s' onto the existing '%s' refused: replacing an object "
			    "needs --allow-overwrite",
			    key, newkey);
			r = EPERM;
			goto out;
		}
	}
	r = -upload_copy_object(fs->s3, key, newkey, info.size, new_etag);
	if (r)
		goto out;
	if (s3_delete_object(fs->s3, key, &e) != 0) {
		char buf[512];

		/* Not atomic, as --help says: now both names exist. */
		log_err("rename of '%s' to '%s': copied, but DeleteObject of the old name "
		        "failed: %s; both objects exist now",
		        key, newkey, s3_error_format(&e, buf, sizeof(buf)));
		r = fs_errno(e.err) ?: EIO;
		goto out;
	}
	inode_lock(&fs->inodes);
	if (dst && !dst->unlinked)
		inode_unlink_locked(&fs->inodes, dst);
	if (n && !n->unlinked) {
		inode_unlink_locked(&fs->inodes, n);
		inode_neg_add_locked(&fs->inodes, n->parent, n->name,
		                     inode_now() + fs_attr_timeout(fs));
	}
	if (n)
		retarget_locked(fs, n, newkey, info.size, new_etag);
	inode_neg_del_locked(&fs->inodes, ndir, newname);
	inode_unlock(&fs->inodes);
	log_debug("rename '%s' -> '%s' (copy + delete)", key, newkey);
	fuse_reply_err(req, 0);
	inval_entry_later(fs, newparent, newname);
	r = -1;
out:
	free(key);
	free(newkey);
	inode_put(&fs->inodes, dst);
	inode_put(&fs->inodes, ndir);
	inode_put(&fs->inodes, n);
	if (r >= 0)
		fuse_reply_err(req, r);
}

/* ---- what S3 cannot hold ---- */

void fsw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)rdev;
	log_info("mknod of '%s' (mode %o) refused: only regular files and directories exist "
	         "in S3",
	         name, (unsigned)mode);
	fuse_reply_err(req, EPERM);
}

void fsw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	log_info("symlink '%s' refused: S3 has no symbolic links", name);
	fuse_reply_err(req, ENOSYS);
}

void fsw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	log_info("link '%s' refused: S3 has no hard links", newname);
	fuse_reply_err(req, ENOSYS);
}

/* xattrs: ENOSYS, which the kernel remembers and turns into EOPNOTSUPP. */
void fsw_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                  int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, ENOSYS);
}

void fsw_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENOSYS);
}

void fsw_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	(void)size;
	fuse_reply_err(req, ENOSYS);
}

void fsw_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, ENOSYS);
}

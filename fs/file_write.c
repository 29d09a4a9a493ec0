/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_write: write handles (see file_write.h). The hard part is when to
 * complete: close(2) sends FLUSH for every descriptor closed, including a
 * forked child's copy and a duplicate the opener still holds, and the
 * kernel sends RELEASE only after close() has returned. Completing on the
 * opener's last close makes the object exist when close() returns; a
 * child's close or a duplicate's leaves the upload open for the real one.
 */
#include "file_write.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_errno.h"
#include "log.h"
#include "namespace.h"

/* mkdir'd directories above a completed file that finish() hands back at once */

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
 * How many descriptors process @pid holds on @n, counting only those open
 * for writing when @writable. The kernel drops the descriptor being closed
 * from the table before it sends FLUSH, so this tells the close of a dup
 * (`echo x >&3`: bash dup2()s fd 3 onto 1 and closes 1 afterwards) from
 * the close of the last descriptor. A name that ends in "/NAME" (a file
 * being written cannot be renamed) and the inode number in fdinfo must
 * both match.
 */
static unsigned fds_on(pid_t pid, const char *name, fuse_ino_t ino, bool writable)
{
	char path[320], link[PATH_MAX], line[128];
	size_t nl = strlen(name);
	struct dirent *de;
	unsigned found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	for (de = readdir(d); de; de = readdir(d)) {
		bool same = false, wr = false;
		ssize_t len;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= (ssize_t)nl || link[len - (ssize_t)nl - 1] != '/' ||
		    memcmp(link + len - nl, name, nl) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "flags:", 6))
				wr = (strtoul(line + 6, NULL, 8) & O_ACCMODE) != O_RDONLY;
			else if (!strncmp(line, "ino:", 4))
				same = strtoull(line + 4, NULL, 10) == (unsigned long long)ino;
		}
		fclose(f);
		if (same && (wr || !writable))
			found++;
	}
	closedir(d);
	return found;
}

static bool open_in(pid_t pid, const char *name, fuse_ino_t ino)
{
	return fds_on(pid, name, ino, false) > 0;
}

/*
 * Whether @pid still holds a duplicate of @h's descriptor: more of its
 * descriptors on the file are open for writing than it has other handles
 * that could be writing (a second open() of the file, a writer that
 * fsynced, or an O_RDWR one not decided yet; not those whose last
 * descriptor was closed, waiting for RELEASE). Those are descriptors of
 * other open files, not of this one: closing this handle's last descriptor
 * completes its upload even while they stay open.
 */
static bool dup_open_in(struct hpcops_fs *fs, const struct fs_handle *h, pid_t pid)
{
	unsigned others = 0;

	inode_lock(&fs->inodes); /* h2->kind changes under it (UNDECIDED -> READ) */
	pthread_mutex_lock(&fs->handles_lock);
	for (const struct fs_handle *h2 = fs->handles; h2; h2 = h2->next) {
		if (h2 == h || h2->inode != h->inode)
			continue;
		if ((h2->kind == FS_HANDLE_WRITE && h2->opener_pid == pid && !h2->last_flushed) ||
		    h2->kind == FS_HANDLE_UNDECIDED)
			others++;
	}
	pthread_mutex_unlock(&fs->handles_lock);
	inode_unlock(&fs->inodes);
	return fds_on(pid, h->inode->name, h->inode->ino, true) > others;
}

/*
 * Whether a process other than @except holds a descriptor on the file (a
 * child that inherited it, as `cmd > f &` or a launcher's redirected
 * output does). Only asked when the opener closes a file it wrote nothing
 * to; processes whose descriptors cannot be read (other users' when not
 * root) are not seen.
 */
static bool open_elsewhere(pid_t except, const char *name, fuse_ino_t ino)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir("/proc");

	if (!d)
		return false;
	for (de = readdir(d); de && !found; de = readdir(d)) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == except || pid == getpid())
			continue;
		found = open_in((pid_t)pid, name, ino);
	}
	closedir(d);
	return found;
}

static int track_writer(struct hpcops_fs *fs, struct inode *n, struct upload *u)
{
	int r = 0;

	inode_lock(&fs->inodes);
	if (n->writer)
		r = -EPERM;
	else
		n->writer = u;
	inode_unlock(&fs->inodes);
	return r;
}

/*
 * The upload of @h no longer writes @n (completed, failed, or released):
 * detach it, waiting for a truncate or utimens by path still using it.
 */
static void untrack_writer_locked(struct hpcops_fs *fs, struct fs_handle *h)
{
	struct inode *n = h->inode;

	if (n->writer != h->wr)
		return;
	n->writer = NULL;
	while (n->writer_users)
		pthread_cond_wait(&fs->writer_cond, &fs->inodes.lock);
}

/* A write handle on @n (ref taken over) with upload @u. */
static struct fs_handle *write_handle(struct hpcops_fs *fs, struct inode *n, struct upload *u,
                                      const struct fw_opener *who)
{
	struct fs_handle *h = fs_handle_new(fs, FS_HANDLE_WRITE, n);

	if (!h)
		return NULL;
	h->wr = u;
	h->opener_pid = tgid_of(who->tid);
	h->lock_owner = who->lock_owner;
	return h;
}

/* @n changed here and now: its time is now, not one kept in the object. */
static void touch_now_locked(struct inode *n)
{
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->mtime_kept = false;
}

int fw_create(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, mode_t mode, int flags,
              const struct fw_opener *who, struct fs_handle **out, struct fuse_entry_param *e)
{
	struct inode *dir = NULL, *n = NULL, *old;
	struct upload *u = NULL;
	struct fs_handle *h = NULL;
	int r = fs_writable(fs);

	if (r)
		return -r;
	if (!S_ISREG(mode))
		return -EPERM;
	inode_lock(&fs->inodes);
	dir = inode_get_locked(&fs->inodes, parent);
	if (!dir || dir->kind != INODE_DIR) {
		r = dir ? ENOTDIR : ENOENT;
		goto fail_locked;
	}
	r = ns_new_name_err(fs, dir, name, false);
	if (r)
		goto fail_locked;
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
	if (old && old->readers && !old->local) {
		log_err("create of '%s': it is open for reading here; close it first", old->key);
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

	u = upload_new(fs->writes, n->key);
	if (!u) {
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
	inode_unlock(&fs->inodes);
	h = write_handle(fs, n, u, who);
	if (!h) {
		inode_lock(&fs->inodes);
		n->writer = NULL;
		r = ENOMEM;
		goto fail_locked;
	}
	inode_lock(&fs->inodes);
	ns_entry_locked(fs, n, e, true);
	inode_unlock(&fs->inodes);
	inode_put(&fs->inodes, dir);
	log_debug("create '%s' (opener pid %d)", n->key, (int)h->opener_pid);
	*out = h;
	return 0;

fail_locked:
	inode_unlock(&fs->inodes);
fail:
	upload_free(u);
	if (n) {
		inode_lock(&fs->inodes);
		if (n->local && !n->writer)
			inode_unlink_locked(&fs->inodes, n);
		inode_put_locked(&fs->inodes, n);
		inode_unlock(&fs->inodes);
	}
	inode_put(&fs->inodes, dir);
	return -r;
}

int fw_open(struct hpcops_fs *fs, fuse_ino_t ino, int flags, const struct fw_opener *who,
            struct fs_handle **out, bool *undecided)
{
	const struct fs_backend *be = &fs->be;
	bool trunc = flags & O_TRUNC, append = flags & O_APPEND, busy, local;
	uint32_t readers;
	struct s3_object_info info;
	struct upload *u = NULL;
	struct fs_handle *h;
	struct s3_error e;
	struct inode *n;
	int r = fs_writable(fs);

	*undecided = false;
	if (r)
		return -r;
	n = inode_get(&fs->inodes, ino);
	if (!n)
		return -ENOENT;
	if (n->kind == INODE_DIR) {
		r = EISDIR;
		goto fail;
	}
	inode_lock(&fs->inodes);
	busy = n->writer != NULL;
	local = n->local;
	readers = n->readers;
	inode_unlock(&fs->inodes);
	if (busy) {
		log_err("open of '%s' for writing: it is already being written through another "
		        "open file; one writer at a time",
		        n->key);
		r = EPERM;
		goto fail;
	}
	if (readers && (trunc || append) && !local) {
		/* as Mountpoint: a file is not replaced under its readers on this node */
		log_err("open of '%s' for writing: it is open for reading here; close it first",
		        n->key);
		r = EPERM;
		goto fail;
	}
	if (local) {
		/* mknod'd (or a failed new file): nothing in S3 yet, a new object */
		trunc = true;
		append = false;
	} else if (trunc) {
		if (!fs->opt.allow_overwrite) {
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
	} else if ((flags & O_ACCMODE) == O_RDWR) {
		/* The first read or write decides (Mountpoint): a read reads. */
		inode_put(&fs->inodes, n);
		*undecided = true;
		return 0;
	} else {
		log_err("open of '%s' for writing without O_TRUNC: objects are written whole; "
		        "open with O_TRUNC (and --allow-overwrite) to replace it%s",
		        n->key, fs->opt.allow_append ? ", or with O_APPEND to append" : "");
		r = EPERM;
		goto fail;
	}
	u = upload_new(fs->writes, n->key);
	if (!u) {
		r = ENOMEM;
		goto fail;
	}
	if (append && !trunc) {
		/* The size and ETag now, not what the inode table saw a while ago. */
		if (be->ops->head(be->ctx, n->key, &info, &e) != 0) {
			char buf[512];

			log_err("open of '%s' for append: HeadObject failed: %s", n->key,
			        s3_error_format(&e, buf, sizeof(buf)));
			r = fs_errno(e.err) ?: EIO;
			goto fail;
		}
		upload_set_append(u, info.size, info.etag);
	}
	if (track_writer(fs, n, u)) {
		r = EPERM;
		goto fail;
	}
	inode_lock(&fs->inodes);
	if (append && !trunc) {
		n->size = info.size;
	} else {
		n->size = 0;
		touch_now_locked(n);
	}
	inode_unlock(&fs->inodes);
	h = write_handle(fs, n, u, who);
	if (!h) {
		inode_lock(&fs->inodes);
		n->writer = NULL;
		inode_unlock(&fs->inodes);
		r = ENOMEM;
		goto fail;
	}
	log_debug("open '%s' for %s (opener pid %d)", n->key, trunc ? "overwrite" : "append",
	          (int)h->opener_pid);
	*out = h;
	return 0;
fail:
	upload_free(u);
	inode_put(&fs->inodes, n);
	return -r;
}

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

ssize_t fw_write(struct hpcops_fs *fs, struct fs_handle *h, uint64_t off, size_t len,
                 upload_fill_fn fill, void *user)
{
	enum fs_handle_kind kind;
	ssize_t r;

	inode_lock(&fs->inodes);
	kind = h->kind;
	inode_unlock(&fs->inodes);
	if (kind == FS_HANDLE_UNDECIDED) {
		log_err("write to '%s' opened O_RDWR without O_TRUNC: an existing object is "
		        "replaced only when opened with O_TRUNC (and --allow-overwrite)",
		        h->inode->key);
		return -EPERM;
	}
	if (kind != FS_HANDLE_WRITE)
		return -EBADF;
	r = upload_write_with(h->wr, off, len, fill, user);
	if (r >= 0)
		note_written(fs, h);
	return r;
}

/*
 * Make the object visible and bring the inode in line: on success it is no
 * longer local, carries the new ETag, and is no longer being written (the
 * writer is detached now, not at release, which comes after close()
 * returns); on failure a file that never existed in S3 disappears, and an
 * overwritten one is looked up again. Once: an upload completed before (an
 * fsync, then the close) leaves the inode alone, which may show a newer
 * object by now (a second open of the file replaced it).
 */
static int finish(struct hpcops_fs *fs, struct fs_handle *h)
{
	struct inode *n = h->inode;
	char etag[80], *name = NULL;
	fuse_ino_t parent = 0;
	struct timespec t;
	bool kept;
	int r;

	if (upload_get_state(h->wr) == UPLOAD_DONE)
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
		/* its mkdir'd directories exist in S3 now: they follow S3 from here */
		ns_dirs_written_locked(fs, n->parent);
	} else {
		if (n->local && n->parent) {
			parent = n->parent->ino;
			name = strdup(n->name);
		}
		if (n->local)
			inode_unlink_locked(&fs->inodes, n);
		n->expires = 0;
	}
	untrack_writer_locked(fs, h);
	inode_unlock(&fs->inodes);
	if (name) {
		/*
		 * The file never came to exist: drop the kernel's dentry now,
		 * before the failing close returns, or a stat within the entry
		 * timeout would still find it. (No directory lock is held by a
		 * close or fsync, so this cannot wait on our own caller.)
		 */
		if (fs->inval_entry)
			fs->inval_entry(fs, parent, name, false);
		free(name);
	}
	return r;
}

int fw_flush(struct hpcops_fs *fs, struct fs_handle *h, pid_t tid)
{
	pid_t pid;

	if (h->kind != FS_HANDLE_WRITE)
		return 0;
	pid = tgid_of(tid);
	if (pid != h->opener_pid) {
		/* A forked child closing its copy ($(cmd) in a loop whose output
		 * goes to the file): the opener is still writing. */
		log_debug("flush of '%s' from pid %d, not the opener %d: upload goes on",
		          h->inode->key, (int)pid, (int)h->opener_pid);
		return 0;
	}
	if (dup_open_in(fs, h, pid)) {
		/* The opener closed a duplicate (a shell's `cmd > f` dup2()s and
		 * closes the original before any write); its last close flushes. */
		log_debug("flush of '%s' from the opener, which still has it open: upload goes on",
		          h->inode->key);
		return 0;
	}
	if (upload_written(h->wr) == 0 && upload_get_state(h->wr) != UPLOAD_DONE &&
	    open_elsewhere(pid, h->inode->name, h->inode->ino)) {
		/* Nothing written, and a process the opener started holds it (its
		 * output goes there): that process writes; its last close completes. */
		log_debug("flush of '%s' before any write, another process holds it: upload "
		          "goes on",
		          h->inode->key);
		return 0;
	}
	inode_lock(&fs->inodes);
	h->last_flushed = true;
	inode_unlock(&fs->inodes);
	return finish(fs, h);
}

int fw_fsync(struct hpcops_fs *fs, struct fs_handle *h)
{
	if (h->kind != FS_HANDLE_WRITE)
		return 0;
	return finish(fs, h);
}

void fw_release(struct hpcops_fs *fs, struct fs_handle *h)
{
	int r;

	if (h->kind == FS_HANDLE_WRITE) {
		r = finish(fs, h);
		if (r)
			log_err("upload of '%s' failed at close: %s (the object was not changed)",
			        h->inode->key, strerror(-r));
		inode_lock(&fs->inodes);
		untrack_writer_locked(fs, h);
		inode_unlock(&fs->inodes);
		upload_free(h->wr);
		h->wr = NULL;
	}
	fs_handle_free(fs, h);
}

int fw_setattr(struct hpcops_fs *fs, fuse_ino_t ino, struct fs_handle *h, const struct stat *attr,
               int to_set, struct stat *st)
{
	struct upload *u;
	struct inode *n;
	bool borrowed = false;
	uint64_t cur_size;
	int r = 0;

	n = inode_get(&fs->inodes, ino);
	if (!n)
		return -ENOENT;
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
	/* what the mount shows already is no change; anything else is, and needs rw */
	if (to_set & ~(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		r = fs_writable(fs);
		if (r)
			goto out;
	}
	if (h && h->kind != FS_HANDLE_WRITE)
		h = NULL;
	inode_lock(&fs->inodes);
	u = h ? h->wr : n->writer;
	/* By path (no handle): borrow the writer; its detach waits for us. */
	borrowed = !h && u;
	if (borrowed)
		n->writer_users++;
	cur_size = n->size;
	inode_unlock(&fs->inodes);
	if (u && upload_get_state(u) != UPLOAD_OPEN && upload_get_state(u) != UPLOAD_STREAMING)
		u = NULL; /* completed: the file is an object now */

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
		struct timespec t;

		/*
		 * Only a file being written has a time we can still choose. A
		 * directory has none in S3 (it is the keys under a prefix): the
		 * time shown is this node's own, so `tar x`, `cp -a` and `rsync
		 * -t` of a tree, which set their directories' times last, work.
		 */
		if (!u && n->kind != INODE_DIR) {
			log_info("utimens of '%s' refused: the time of an object in S3 is when it "
			         "was written; set it while the file is open for writing",
			         n->key);
			r = EPERM;
			goto out;
		}
		if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
			if (to_set & FUSE_SET_ATTR_MTIME_NOW)
				clock_gettime(CLOCK_REALTIME, &t);
			else
				t = attr->st_mtim;
			inode_lock(&fs->inodes);
			/* kept in the object as x-amz-meta-mtime */
			if (u)
				r = -upload_set_mtime(u, &t);
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
			pthread_cond_broadcast(&fs->writer_cond);
		inode_unlock(&fs->inodes);
	}
	if (!r) {
		inode_lock(&fs->inodes);
		ns_attr_locked(fs, n, st);
		inode_unlock(&fs->inodes);
	}
	inode_put(&fs->inodes, n);
	return -r;
}

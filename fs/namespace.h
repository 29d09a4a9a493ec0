/* SPDX-License-Identifier: Apache-2.0 */
/*
 * namespace: names and attributes of the mount. lookup (HeadObject and
 * ListObjectsV2 at once), getattr, readdir (ListObjectsV2 pages whose
 * entries carry size and mtime, through a bounded window per open
 * directory), mkdir (local until a file is written in it), mknod, rmdir,
 * unlink, rename, and what S3 cannot hold (links, xattrs). Each function
 * returns 0 or -errno and logs what a user must know; nothing here speaks
 * FUSE's protocol (fuse_ops.c replies). S3 is reached through fs->be.
 */
#ifndef HPCOPS_NAMESPACE_H
#define HPCOPS_NAMESPACE_H

#include "fs.h"

/** ns_init() / ns_destroy() - the module's state in fs->ns. */
int ns_init(struct hpcops_fs *fs);
void ns_destroy(struct hpcops_fs *fs);

/** ns_attr_locked() - @st from @n (mode from --file-mode/--dir-mode, uid, gid). */
void ns_attr_locked(struct hpcops_fs *fs, const struct inode *n, struct stat *st);

/**
 * ns_entry_locked() - @e for a lookup-like reply with @n; counts one kernel
 * lookup on @n when @count (the caller undoes it with inode_forget() if the
 * reply does not reach the kernel).
 */
void ns_entry_locked(struct hpcops_fs *fs, struct inode *n, struct fuse_entry_param *e, bool count);

/**
 * ns_lookup() - @name in directory @parent. 0 with @e filled (e->ino 0: a
 * negative entry the kernel may cache) and one lookup counted, or -errno.
 * A name whose key would pass S3's 1024 bytes is ENOENT without a request.
 */
int ns_lookup(struct hpcops_fs *fs, fuse_ino_t parent, const char *name,
              struct fuse_entry_param *e);

/**
 * ns_getattr() - attributes of @ino, from S3 again when they are older
 * than --metadata-ttl (or @fresh: an O_DIRECT open). @open_handle: an open
 * file keeps its last attributes when the object is removed in S3.
 */
int ns_getattr(struct hpcops_fs *fs, fuse_ino_t ino, bool open_handle, struct stat *st);

/** ns_refresh() - HeadObject of @n now, its attributes updated. 0 or -errno. */
int ns_refresh(struct hpcops_fs *fs, struct inode *n);

/** ns_mkdir() - a directory that exists only here until a file is written in it. */
int ns_mkdir(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);

/**
 * ns_mknod() - a regular file (S_IFREG) made as create does, without an
 * open: it exists here until a write handle completes it. Other types: EPERM.
 */
int ns_mknod(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, mode_t mode,
             struct fuse_entry_param *e);

/** ns_unlink() - DeleteObject (--allow-delete); EPERM while the file is being written. */
int ns_unlink(struct hpcops_fs *fs, fuse_ino_t parent, const char *name);

/** ns_rmdir() - an empty directory (a "dir/" marker object needs --allow-delete). */
int ns_rmdir(struct hpcops_fs *fs, fuse_ino_t parent, const char *name);

/**
 * ns_rename() - a file, as a server-side copy and a delete (--allow-rename;
 * not atomic). Directories: EXDEV. On 0 the kernel's dentry of the new name
 * is invalidated after the reply (fs->inval_entry).
 */
int ns_rename(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
              const char *newname, unsigned int flags);

/** ns_new_name_err() - why @name in @dir cannot become a new entry (an errno), or 0. */
int ns_new_name_err(struct hpcops_fs *fs, const struct inode *dir, const char *name, bool is_dir);

/**
 * ns_dirs_written_locked() - a key now exists below @dir (a file written or
 * renamed into it): @dir and the mkdir'd (local) directories above it exist
 * in S3 now and follow it from here (a listing shows them while keys lie
 * under them, as Mountpoint does). Drops the refs mkdir kept on them.
 */
void ns_dirs_written_locked(struct hpcops_fs *fs, struct inode *dir);

/* ---- directories ---- */

/** ns_opendir() - a handle on directory @ino: its listing is read as readdir asks. */
int ns_opendir(struct hpcops_fs *fs, fuse_ino_t ino, struct fs_handle **out);

/**
 * How readdir hands out an entry: write it into @buf (@room bytes) as the
 * kernel wants it, with @e (readdirplus: attributes and a counted lookup)
 * or @st (plain: ino and type) and the offset of the next entry. Returns
 * the bytes it needs (more than @room: nothing was written).
 */
typedef size_t (*ns_dirent_fn)(void *ctx, char *buf, size_t room, const char *name,
                               const struct fuse_entry_param *e, const struct stat *st, off_t next);

/**
 * ns_readdir() - entries of the open directory @h from offset @off into
 * @buf (@size bytes) through @emit; *@used gets the bytes filled. @plus:
 * readdirplus (each entry counts a kernel lookup). Returns 0, or -errno
 * when nothing could be filled.
 */
int ns_readdir(struct hpcops_fs *fs, struct fs_handle *h, off_t off, bool plus, char *buf,
               size_t size, ns_dirent_fn emit, void *ctx, size_t *used);

/** ns_releasedir() - free the handle of ns_opendir(). */
void ns_releasedir(struct hpcops_fs *fs, struct fs_handle *h);

/* ---- what S3 cannot hold (each logs why, once per call) ---- */

int ns_symlink(struct hpcops_fs *fs, const char *name);
int ns_link(struct hpcops_fs *fs, const char *newname);

#endif

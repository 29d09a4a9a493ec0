/* SPDX-License-Identifier: Apache-2.0 */
/*
 * namespace: names and attributes (see namespace.h). The inode table holds
 * what was seen; S3 is asked again after --metadata-ttl. Directories are
 * implied by '/' in keys; a directory hides a file of the same name; keys
 * that are not valid names are hidden and logged once.
 */
#include "namespace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_errno.h"
#include "log.h"
#include "upload.h"

#define LIST_PAGE 1000

/* ---- module state ---- */

int ns_init(struct hpcops_fs *fs)
{
	memset(&fs->ns, 0, sizeof(fs->ns));
	pthread_mutex_init(&fs->ns.lock, NULL);
	return 0;
}

void ns_destroy(struct hpcops_fs *fs)
{
	/* the table goes with the inodes: only our lists to free */
	free(fs->ns.dirs);
	fs->ns.dirs = NULL;
	for (size_t i = 0; i < fs->ns.n_retired; i++)
		free(fs->ns.retired_keys[i]);
	free(fs->ns.retired_keys);
	fs->ns.retired_keys = NULL;
	fs->ns.n_retired = 0;
	pthread_mutex_destroy(&fs->ns.lock);
}

/* ---- attributes ---- */

void ns_attr_locked(struct hpcops_fs *fs, const struct inode *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->opt.uid;
	st->st_gid = fs->opt.gid;
	st->st_blksize = 1024 * 1024;
	if (n->kind == INODE_DIR) {
		st->st_mode = S_IFDIR | fs->opt.dir_mode;
		st->st_nlink = 2;
		st->st_size = 0;
		st->st_mtim.tv_sec = n->mtime.tv_sec ? n->mtime.tv_sec : fs->mount_time;
	} else {
		st->st_mode = S_IFREG | fs->opt.file_mode;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		st->st_mtim = n->mtime;
	}
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

void ns_entry_locked(struct hpcops_fs *fs, struct inode *n, struct fuse_entry_param *e, bool count)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = 1;
	ns_attr_locked(fs, n, &e->attr);
	e->attr_timeout = fs_attr_timeout(fs);
	e->entry_timeout = fs_attr_timeout(fs);
	if (count)
		n->nlookup++;
}

static void negative_entry(struct hpcops_fs *fs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = 0; /* a negative entry the kernel may cache for the TTL */
	e->entry_timeout = fs_negative_ttl(fs);
}

/*
 * Attributes of a file as S3 gave them, unless written locally. @meta is
 * the object's user metadata from a HEAD, or NULL from a listing (which
 * carries none): then a time kept in x-amz-meta-mtime stays as long as the
 * listing shows the same version (ETag).
 */
static void set_file_attr_locked(struct hpcops_fs *fs, struct inode *n, uint64_t size, time_t mtime,
                                 const char *etag, const struct s3_obj_meta *meta)
{
	if (n->local || n->writer)
		return;
	n->size = size;
	if (meta && meta->has_mtime) {
		n->mtime = meta->mtime;
		n->mtime_kept = true;
	} else if (meta || !n->mtime_kept || strcmp(n->etag, etag) != 0) {
		n->mtime.tv_sec = mtime;
		n->mtime.tv_nsec = 0;
		n->mtime_kept = false;
	}
	snprintf(n->etag, sizeof(n->etag), "%s", etag);
	n->expires = inode_now() + fs->opt.metadata_ttl;
}

/* ---- invalid keys: hidden, logged once ---- */

static void log_invalid_once(struct hpcops_fs *fs, const char *key, size_t len)
{
	uint64_t *seen = fs->ns.invalid_seen;
	size_t slots = sizeof(fs->ns.invalid_seen) / sizeof(fs->ns.invalid_seen[0]);
	uint64_t h = 1469598103934665603ULL;
	bool fresh = false;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	h |= 1;
	pthread_mutex_lock(&fs->ns.lock);
	if (seen[h % slots] != h) {
		seen[h % slots] = h;
		fresh = true;
	}
	pthread_mutex_unlock(&fs->ns.lock);
	if (fresh)
		log_warn("hiding key '%.*s': not a valid file name (empty, '.' or '..' "
		         "component, or a component over 255 bytes)",
		         (int)len, key);
}

/* ---- lookup ---- */

struct head_wait {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
	struct s3_error err;
	struct s3_object_info info;
};

static void head_done(void *user, const struct s3_error *err, size_t got,
                      const struct s3_object_info *info)
{
	struct head_wait *w = user;

	pthread_mutex_lock(&w->m);
	w->err = *err;
	if (err->err == S3_OK && info)
		w->info = *info;
	w->done = true;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
}

/*
 * What @key is in S3: a directory (some key under key/), a file, or nothing.
 * HeadObject (asynchronous) and ListObjectsV2 run at once, no thread of our
 * own. Returns INODE_DIR / INODE_FILE, 0 for "does not exist", or -errno.
 */
static int remote_lookup(struct hpcops_fs *fs, const char *key, struct s3_object_info *info)
{
	const struct fs_backend *be = &fs->be;
	struct head_wait w = {.done = false};
	struct s3_list_params p = {.max_keys = 1};
	struct s3_list_page page;
	struct s3_error lerr, serr;
	size_t klen = strlen(key);
	char *dirkey = malloc(klen + 2);
	bool async;
	int lrc, rc;

	if (!dirkey)
		return -ENOMEM;
	memcpy(dirkey, key, klen);
	dirkey[klen] = '/';
	dirkey[klen + 1] = '\0';
	p.prefix = dirkey;
	memset(&page, 0, sizeof(page));
	memset(&lerr, 0, sizeof(lerr));
	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.c, NULL);
	/* serr: the submit's own error; w.err is head_done's, written on another thread */
	async = be->ops->head_async(be->ctx, key, head_done, &w, &serr) == 0;
	lrc = be->ops->list(be->ctx, &p, &page, &lerr);
	if (async) {
		pthread_mutex_lock(&w.m);
		while (!w.done)
			pthread_cond_wait(&w.c, &w.m);
		pthread_mutex_unlock(&w.m);
	} else if (be->ops->head(be->ctx, key, &w.info, &w.err) == 0) {
		w.err.err = S3_OK;
	}
	pthread_mutex_destroy(&w.m);
	pthread_cond_destroy(&w.c);
	free(dirkey);
	if (lrc == 0 && (page.n_entries > 0 || page.n_prefixes > 0)) {
		rc = INODE_DIR; /* a directory shadows a file of the same name */
	} else if (w.err.err == S3_OK) {
		*info = w.info;
		rc = INODE_FILE;
	} else if (lrc == 0 && w.err.err == S3_ERR_NO_SUCH_KEY) {
		rc = 0;
	} else {
		const struct s3_error *e = lrc < 0 ? &lerr : &w.err;
		char buf[400];

		log_warn("lookup of '%s': %s", key, s3_error_format(e, buf, sizeof(buf)));
		rc = -(fs_errno(e->err) ?: EIO);
	}
	if (lrc == 0)
		s3_list_page_free(&page);
	return rc;
}

/* The key of @name in directory @dir (malloc'd), or NULL on ENOMEM. */
static char *child_key_of(const struct inode *dir, const char *name)
{
	char *key = NULL;

	if (asprintf(&key, "%s%s", dir->key, name) < 0)
		return NULL;
	return key;
}

int ns_lookup(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct inode_table *t = &fs->inodes;
	struct inode *p, *n;
	struct s3_object_info info;
	size_t len = strlen(name);
	char *key = NULL;
	int kind, r = 0;

	if (len > 255)
		return -ENAMETOOLONG;
	if (!inode_valid_name(name, len))
		return -ENOENT;
	inode_lock(t);
	p = inode_get_locked(t, parent);
	if (!p) {
		inode_unlock(t);
		return -ENOENT;
	}
	if (p->kind != INODE_DIR) {
		r = -ENOTDIR;
		goto out_locked;
	}
	n = inode_find_child_locked(t, p, name);
	if (n && (n->local || n->writer || n->expires > inode_now())) {
		ns_entry_locked(fs, n, e, true);
		goto out_locked;
	}
	if (!n && inode_neg_find_locked(t, p, name)) {
		negative_entry(fs, e);
		goto out_locked;
	}
	if (strlen(p->key) + len > FS_MAX_KEY) {
		/* No such key can exist in S3: nothing to ask. */
		negative_entry(fs, e);
		goto out_locked;
	}
	key = child_key_of(p, name);
	inode_unlock(t);
	if (!key) {
		inode_put(t, p);
		return -ENOMEM;
	}
	memset(&info, 0, sizeof(info));
	kind = remote_lookup(fs, key, &info);
	free(key);

	inode_lock(t);
	n = inode_find_child_locked(t, p, name);
	if (n && (n->local || n->writer)) {
		/* created here while we asked S3: our own node wins */
		kind = n->kind;
	} else if (kind < 0) {
		r = kind;
		goto out_locked;
	} else if (kind == 0) {
		if (n)
			inode_unlink_locked(t, n);
		inode_neg_add_locked(t, p, name, inode_now() + fs_negative_ttl(fs));
		negative_entry(fs, e);
		goto out_locked;
	}
	n = inode_child_locked(t, p, name, (enum inode_kind)kind);
	if (!n) {
		r = -ENOMEM;
		goto out_locked;
	}
	if (n->kind == INODE_FILE)
		set_file_attr_locked(fs, n, info.size, info.mtime, info.etag, &info.meta);
	else
		n->expires = inode_now() + fs->opt.metadata_ttl;
	/* a key under a mkdir'd directory (written elsewhere): the directory is S3's now */
	ns_dirs_written_locked(fs, p);
	ns_entry_locked(fs, n, e, true);
	inode_put_locked(t, n);
out_locked:
	inode_put_locked(t, p);
	inode_unlock(t);
	return r;
}

int ns_refresh(struct hpcops_fs *fs, struct inode *n)
{
	struct s3_object_info info;
	struct s3_error err;

	memset(&err, 0, sizeof(err));
	if (fs->be.ops->head(fs->be.ctx, n->key, &info, &err) != 0)
		return -(fs_errno(err.err) ?: EIO);
	inode_lock(&fs->inodes);
	set_file_attr_locked(fs, n, info.size, info.mtime, info.etag, &info.meta);
	inode_unlock(&fs->inodes);
	return 0;
}

int ns_getattr(struct hpcops_fs *fs, fuse_ino_t ino, bool open_handle, struct stat *st)
{
	struct inode_table *t = &fs->inodes;
	struct inode *n = inode_get(t, ino);
	bool stale;
	int r = 0;

	if (!n)
		return -ENOENT;
	inode_lock(t);
	stale = n->kind == INODE_FILE && !n->local && !n->writer && n->expires <= inode_now();
	inode_unlock(t);
	if (stale) {
		r = ns_refresh(fs, n);
		/* an open file removed in S3 keeps its last attributes */
		if (r == -ENOENT && open_handle)
			r = 0;
	}
	if (r == 0) {
		inode_lock(t);
		ns_attr_locked(fs, n, st);
		inode_unlock(t);
	}
	inode_put(t, n);
	return r;
}

/* ---- directories ---- */

struct dir_ent {
	char *name;
	enum inode_kind kind;
	uint64_t size;
	time_t mtime;
	char etag[80];
};

/*
 * An open directory keeps a window of its listing, not all of it: entries
 * the kernel has read are dropped before the next page is fetched, so a
 * handle holds at most about two pages (LIST_PAGE entries each) however
 * large the directory. The kernel reads on from where it stopped; a seekdir
 * back before the window lists again from the start.
 */
struct dir_handle {
	pthread_mutex_t lock;
	/* under lock */
	struct dir_ent *ents; /* entries base.. of the listing (after "." and "..") */
	size_t n, cap;
	uint64_t base;
	char *token; /* continuation of the listing */
	bool started, done;
	char **local; /* names of local children at opendir: they win */
	size_t n_local;
};

static void dir_ents_clear(struct dir_handle *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->n = d->cap = 0;
	d->base = 0;
	free(d->token);
	d->token = NULL;
	d->started = d->done = false;
}

static void dir_handle_free(struct dir_handle *d)
{
	if (!d)
		return;
	dir_ents_clear(d);
	for (size_t i = 0; i < d->n_local; i++)
		free(d->local[i]);
	free(d->local);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int dir_add(struct dir_handle *d, const char *name, size_t len, enum inode_kind kind,
                   uint64_t size, time_t mtime, const char *etag)
{
	struct dir_ent *e;

	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		struct dir_ent *ne = realloc(d->ents, nc * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		d->ents = ne;
		d->cap = nc;
	}
	e = &d->ents[d->n];
	e->name = strndup(name, len);
	if (!e->name)
		return -ENOMEM;
	e->kind = kind;
	e->size = size;
	e->mtime = mtime;
	snprintf(e->etag, sizeof(e->etag), "%s", etag ? etag : "");
	d->n++;
	return 0;
}

/* Forget the entries before listing index @first: the kernel has them. */
static void dir_drop_before(struct dir_handle *d, uint64_t first)
{
	size_t k;

	if (first <= d->base || d->n == 0)
		return; /* (nothing held: base stays where the next page starts) */
	k = first - d->base < d->n ? (size_t)(first - d->base) : d->n;
	for (size_t i = 0; i < k; i++)
		free(d->ents[i].name);
	memmove(d->ents, d->ents + k, (d->n - k) * sizeof(*d->ents));
	d->n -= k;
	d->base += k;
}

static bool dir_is_local(const struct dir_handle *d, const char *name, size_t len)
{
	for (size_t i = 0; i < d->n_local; i++)
		if (strlen(d->local[i]) == len && !memcmp(d->local[i], name, len))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is there a key under DIRKEY/NAME/ (a directory that shadows file NAME)? */
static bool remote_has_dir(struct hpcops_fs *fs, const char *dirkey, const char *name, size_t len)
{
	struct s3_list_params p = {.max_keys = 1};
	struct s3_list_page page;
	struct s3_error err;
	size_t dl = strlen(dirkey);
	char *pre = malloc(dl + len + 2);
	bool found = false;

	if (!pre)
		return false;
	memcpy(pre, dirkey, dl);
	memcpy(pre + dl, name, len);
	pre[dl + len] = '/';
	pre[dl + len + 1] = '\0';
	p.prefix = pre;
	memset(&page, 0, sizeof(page));
	memset(&err, 0, sizeof(err));
	if (fs->be.ops->list(fs->be.ctx, &p, &page, &err) == 0) {
		found = page.n_entries > 0 || page.n_prefixes > 0;
		s3_list_page_free(&page);
	}
	free(pre);
	return found;
}

/* Whether KEY + "/" sorts after @last (byte order, as S3 sorts). */
static bool name_slash_after(const char *key, size_t kl, const char *last)
{
	int c = strncmp(key, last, kl);

	if (c != 0)
		return c > 0;
	if (strlen(last) == kl)
		return true;
	return (unsigned char)last[kl] < '/';
}

/* One more ListObjectsV2 page into @d. Returns 0 or -errno. */
static int dir_fetch_page(struct hpcops_fs *fs, struct inode *dir, struct dir_handle *d)
{
	struct s3_list_params p = {
	    .prefix = dir->key,
	    .delimiter = "/",
	    .continuation_token = d->token,
	    .max_keys = LIST_PAGE,
	};
	struct s3_list_page page;
	struct s3_error err;
	size_t dl = strlen(dir->key);
	char **dirs = NULL;
	size_t n_dirs = 0;
	const char *last = NULL;
	int rc = 0;

	memset(&page, 0, sizeof(page));
	memset(&err, 0, sizeof(err));
	if (fs->be.ops->list(fs->be.ctx, &p, &page, &err) < 0) {
		char buf[400];

		log_warn("listing '%s': %s", dir->key, s3_error_format(&err, buf, sizeof(buf)));
		return -(fs_errno(err.err) ?: EIO);
	}
	d->started = true;
	if (page.n_prefixes || page.n_entries) {
		/* keys lie under a mkdir'd directory (written elsewhere): S3's now */
		inode_lock(&fs->inodes);
		ns_dirs_written_locked(fs, dir);
		inode_unlock(&fs->inodes);
	}
	for (size_t i = 0; i < page.n_prefixes; i++)
		if (!last || strcmp(page.prefixes[i], last) > 0)
			last = page.prefixes[i];
	for (size_t i = 0; i < page.n_entries; i++)
		if (!last || strcmp(page.entries[i].key, last) > 0)
			last = page.entries[i].key;
	if (page.n_prefixes) {
		dirs = calloc(page.n_prefixes, sizeof(*dirs));
		if (!dirs) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < page.n_prefixes; i++) {
		const char *pre = page.prefixes[i];
		size_t pl = strlen(pre);
		const char *name;
		size_t len;

		if (pl <= dl || strncmp(pre, dir->key, dl))
			continue;
		name = pre + dl;
		len = pl - dl - 1; /* without the trailing '/' */
		if (!inode_valid_name(name, len)) {
			log_invalid_once(fs, pre, pl);
			continue;
		}
		if (dir_is_local(d, name, len))
			continue;
		rc = dir_add(d, name, len, INODE_DIR, 0, 0, NULL);
		if (rc < 0)
			goto out;
		dirs[n_dirs++] = d->ents[d->n - 1].name;
	}
	if (n_dirs > 1)
		qsort(dirs, n_dirs, sizeof(*dirs), cmp_str);
	for (size_t i = 0; i < page.n_entries; i++) {
		const struct s3_list_entry *e = &page.entries[i];
		const char *name;
		size_t kl = strlen(e->key), len;
		char *nm;

		if (kl <= dl || strncmp(e->key, dir->key, dl))
			continue; /* the directory's own marker object */
		name = e->key + dl;
		len = kl - dl;
		if (!inode_valid_name(name, len)) {
			log_invalid_once(fs, e->key, kl);
			continue;
		}
		if (dir_is_local(d, name, len))
			continue;
		nm = strndup(name, len);
		if (!nm) {
			rc = -ENOMEM;
			goto out;
		}
		/* a directory of the same name wins, on this page or (rarely) a later one */
		if (n_dirs && bsearch(&nm, dirs, n_dirs, sizeof(*dirs), cmp_str)) {
			free(nm);
			continue;
		}
		/* NAME/ sorts after this page's last item: a later page may hold it */
		if (page.truncated && last && name_slash_after(e->key, kl, last) &&
		    remote_has_dir(fs, dir->key, name, len)) {
			free(nm);
			continue;
		}
		free(nm);
		rc = dir_add(d, name, len, INODE_FILE, e->size, e->mtime, e->etag);
		if (rc < 0)
			goto out;
	}
	free(d->token);
	d->token = NULL;
	if (page.truncated && page.next_token) {
		d->token = strdup(page.next_token);
		if (!d->token)
			rc = -ENOMEM;
	} else {
		d->done = true;
	}
out:
	free(dirs);
	s3_list_page_free(&page);
	return rc;
}

struct local_collect {
	struct dir_handle *d;
	int rc;
};

static void collect_local(struct inode *child, void *user)
{
	struct local_collect *lc = user;
	struct dir_handle *d = lc->d;
	char **nl;

	if (lc->rc)
		return;
	nl = realloc(d->local, (d->n_local + 1) * sizeof(*nl));
	if (!nl) {
		lc->rc = -ENOMEM;
		return;
	}
	d->local = nl;
	d->local[d->n_local] = strdup(child->name);
	if (!d->local[d->n_local]) {
		lc->rc = -ENOMEM;
		return;
	}
	d->n_local++;
}

int ns_opendir(struct hpcops_fs *fs, fuse_ino_t ino, struct fs_handle **out)
{
	struct inode_table *t = &fs->inodes;
	struct dir_handle *d = calloc(1, sizeof(*d));
	struct local_collect lc = {.d = d};
	struct inode *n;
	int r = 0;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	inode_lock(t);
	n = inode_get_locked(t, ino);
	if (!n)
		r = -ENOENT;
	else if (n->kind != INODE_DIR)
		r = -ENOTDIR;
	else
		inode_each_local_child_locked(t, n, collect_local, &lc);
	if (!r && lc.rc)
		r = lc.rc;
	if (r && n)
		inode_put_locked(t, n);
	inode_unlock(t);
	if (!r) {
		*out = fs_handle_new(fs, FS_HANDLE_DIR, n);
		if (!*out) {
			inode_put(t, n);
			r = -ENOMEM;
		}
	}
	if (r) {
		dir_handle_free(d);
		return r;
	}
	(*out)->dir = d;
	return 0;
}

void ns_releasedir(struct hpcops_fs *fs, struct fs_handle *h)
{
	dir_handle_free(h->dir);
	h->dir = NULL;
	fs_handle_free(fs, h);
}

/* After the listing: local children (mkdir'd dirs, files being written). */
static int dir_add_locals(struct hpcops_fs *fs, struct inode *dir, struct dir_handle *d)
{
	struct inode_table *t = &fs->inodes;
	int rc = 0;

	inode_lock(t);
	for (size_t i = 0; i < d->n_local && !rc; i++) {
		struct inode *c = inode_find_child_locked(t, dir, d->local[i]);

		if (c)
			rc = dir_add(d, c->name, c->name_len, c->kind, c->size, c->mtime.tv_sec,
			             c->etag);
	}
	inode_unlock(t);
	return rc;
}

static uint64_t name_ino(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return (h >> 1) | 0x4000000000000000ULL;
}

int ns_readdir(struct hpcops_fs *fs, struct fs_handle *h, off_t off, bool plus, char *buf,
               size_t size, ns_dirent_fn emit, void *ctx, size_t *used_out)
{
	struct inode_table *t = &fs->inodes;
	struct dir_handle *d = h->dir;
	struct inode *dir = h->inode;
	/* the first listing entry this call asks for (0 and 1 are "." and "..") */
	uint64_t first = off >= 2 ? (uint64_t)off - 2 : 0;
	size_t used = 0;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	/* rewinddir, or a seekdir before the window (even to "." or ".."): list again */
	if (d->started && (off == 0 || first < d->base))
		dir_ents_clear(d);
	for (uint64_t i = (uint64_t)off;; i++) {
		struct fuse_entry_param e;
		struct stat st;
		size_t need;

		memset(&st, 0, sizeof(st));
		if (i == 0 || i == 1) {
			st.st_ino = i == 0 ? dir->ino : (dir->parent ? dir->parent->ino : dir->ino);
			st.st_mode = S_IFDIR;
			memset(&e, 0, sizeof(e));
			e.attr = st;
			need = emit(ctx, buf + used, size - used, i == 0 ? "." : "..",
			            plus ? &e : NULL, &st, (off_t)i + 1);
			if (need > size - used)
				break;
			used += need;
			continue;
		}
		while (i - 2 >= d->base + d->n && !d->done) {
			dir_drop_before(d, first);
			rc = dir_fetch_page(fs, dir, d);
			if (rc < 0)
				goto out;
			if (d->done) {
				rc = dir_add_locals(fs, dir, d);
				if (rc < 0)
					goto out;
			}
		}
		if (i - 2 >= d->base + d->n)
			break;
		{
			struct dir_ent *de = &d->ents[i - 2 - d->base];

			if (plus) {
				struct inode *c;

				inode_lock(t);
				c = inode_child_locked(t, dir, de->name, de->kind);
				if (!c) {
					inode_unlock(t);
					rc = -ENOMEM;
					goto out;
				}
				if (de->kind == INODE_FILE)
					set_file_attr_locked(fs, c, de->size, de->mtime, de->etag,
					                     NULL);
				else if (!c->local)
					c->expires = inode_now() + fs->opt.metadata_ttl;
				ns_entry_locked(fs, c, &e, false);
				need = emit(ctx, buf + used, size - used, de->name, &e, NULL,
				            (off_t)i + 1);
				if (need <= size - used)
					c->nlookup++; /* the kernel takes a lookup for it */
				inode_put_locked(t, c);
				inode_unlock(t);
			} else {
				st.st_ino = name_ino(de->name);
				st.st_mode = de->kind == INODE_DIR ? S_IFDIR : S_IFREG;
				need = emit(ctx, buf + used, size - used, de->name, NULL, &st,
				            (off_t)i + 1);
			}
			if (need > size - used)
				break;
			used += need;
		}
	}
out:
	pthread_mutex_unlock(&d->lock);
	*used_out = used;
	return rc < 0 && used == 0 ? rc : 0;
}

/* ---- making and removing names ---- */

int ns_new_name_err(struct hpcops_fs *fs, const struct inode *dir, const char *name, bool is_dir)
{
	size_t len = strlen(name);

	if (!inode_valid_name(name, len))
		return len > 255 ? ENAMETOOLONG : EINVAL;
	if (!is_dir && strlen(dir->key) + len > FS_MAX_KEY) {
		log_err("'%s%s' cannot be created: its key would be %zu bytes, and S3 keys are at "
		        "most %d bytes",
		        dir->key, name, strlen(dir->key) + len, FS_MAX_KEY);
		return ENAMETOOLONG;
	}
	return 0;
}

/* @n (a mkdir'd directory) keeps a ref until rmdir. False if it cannot. */
static bool keep_dir(struct hpcops_fs *fs, struct inode *n)
{
	struct inode **v;
	bool ok = false;

	pthread_mutex_lock(&fs->ns.lock);
	v = realloc(fs->ns.dirs, (fs->ns.n_dirs + 1) * sizeof(*v));
	if (v) {
		fs->ns.dirs = v;
		fs->ns.dirs[fs->ns.n_dirs++] = n;
		ok = true;
	}
	pthread_mutex_unlock(&fs->ns.lock);
	return ok;
}

/* Take @n out of the kept directories; true if keep_dir() kept a ref on it. */
static bool unkeep_dir(struct hpcops_fs *fs, struct inode *n)
{
	bool found = false;

	pthread_mutex_lock(&fs->ns.lock);
	for (size_t i = 0; i < fs->ns.n_dirs; i++) {
		if (fs->ns.dirs[i] == n) {
			fs->ns.dirs[i] = fs->ns.dirs[--fs->ns.n_dirs];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&fs->ns.lock);
	return found;
}

/* After rmdir: drop the ref keep_dir() kept on @n, if it kept one. */
static void drop_dir(struct hpcops_fs *fs, struct inode *n)
{
	if (unkeep_dir(fs, n))
		inode_put(&fs->inodes, n);
}

void ns_dirs_written_locked(struct hpcops_fs *fs, struct inode *dir)
{
	struct inode *next;

	/* @dir is held by the caller (or by its child), each one above by its child */
	for (struct inode *d = dir; d && d->local; d = next) {
		next = d->parent;
		inode_set_local_locked(d, false);
		d->expires = inode_now() + fs_attr_timeout(fs);
		if (unkeep_dir(fs, d))
			inode_put_locked(&fs->inodes, d);
	}
}

/* @n changed here and now: its time is now, not one kept in the object. */
static void touch_now_locked(struct inode *n)
{
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->mtime_kept = false;
}

/* A new local node @name of @kind in @parent: the shared part of mkdir and mknod. */
static int new_local(struct hpcops_fs *fs, fuse_ino_t parent, const char *name,
                     enum inode_kind kind, struct fuse_entry_param *e)
{
	struct inode *dir, *n = NULL, *old;
	int r;

	r = fs_writable(fs);
	if (r)
		return -r;
	inode_lock(&fs->inodes);
	dir = inode_get_locked(&fs->inodes, parent);
	if (!dir || dir->kind != INODE_DIR) {
		r = dir ? ENOTDIR : ENOENT;
		goto out;
	}
	r = ns_new_name_err(fs, dir, name, kind == INODE_DIR);
	if (r)
		goto out;
	old = inode_find_child_locked(&fs->inodes, dir, name);
	if (old && (old->kind == INODE_DIR || old->writer || old->local ||
	            (kind == INODE_FILE && old->expires > inode_now()))) {
		r = EEXIST;
		goto out;
	}
	/* A name that exists only here until a file is written (in it). */
	n = inode_child_locked(&fs->inodes, dir, name, kind);
	if (!n) {
		r = ENOMEM;
		goto out;
	}
	inode_set_local_locked(n, true);
	n->size = 0;
	n->etag[0] = '\0';
	touch_now_locked(n);
	n->expires = inode_now() + fs_attr_timeout(fs);
	ns_entry_locked(fs, n, e, true);
out:
	inode_put_locked(&fs->inodes, dir);
	inode_unlock(&fs->inodes);
	if (!n)
		return -r;
	/*
	 * A local node exists nowhere but in the table: keep our ref so it
	 * outlives the kernel's forget (dentries are dropped under memory
	 * pressure) until rmdir, or until its write completes (mknod).
	 */
	if (kind == INODE_FILE || !keep_dir(fs, n))
		inode_put(&fs->inodes, n);
	return 0;
}

int ns_mkdir(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	return new_local(fs, parent, name, INODE_DIR, e);
}

int ns_mknod(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, mode_t mode,
             struct fuse_entry_param *e)
{
	if (!S_ISREG(mode)) {
		log_info("mknod of '%s' (mode %o) refused: only regular files and directories "
		         "exist in S3",
		         name, (unsigned)mode);
		return -EPERM;
	}
	return new_local(fs, parent, name, INODE_FILE, e);
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
	const struct fs_backend *be = &fs->be;
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	char *dkey = NULL;
	int r;

	if (be->ops->head(be->ctx, key, info, &e) == 0)
		return 1;
	if (e.err != S3_ERR_NO_SUCH_KEY)
		return -(fs_errno(e.err) ?: EIO);
	if (asprintf(&dkey, "%s/", key) < 0)
		return -ENOMEM;
	lp.prefix = dkey;
	lp.max_keys = 1;
	if (be->ops->list(be->ctx, &lp, &page, &e) != 0)
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
	char *key;

	if (!dir)
		return NULL;
	key = child_key_of(dir, name);
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
		                     inode_now() + fs_negative_ttl(fs));
	}
	inode_unlock(&fs->inodes);
}

int ns_unlink(struct hpcops_fs *fs, fuse_ino_t parent, const char *name)
{
	const struct fs_backend *be = &fs->be;
	struct s3_object_info info;
	struct s3_error e;
	struct inode *n;
	const char *k;
	char *key = NULL;
	bool busy = false, local = false;
	int r = fs_writable(fs);

	if (r)
		return -r;
	n = child_get(fs, parent, name, &r);
	if (!n) {
		/* Known to the kernel, not to the table: ask S3. */
		key = child_key(fs, parent, name);
		if (!key)
			return -ENOENT;
		r = remote_kind(fs, key, &info);
		r = r == 1 ? 0 : r == 2 ? EISDIR : r == 0 ? ENOENT : -r;
		if (r)
			goto out;
	} else if (n->kind == INODE_DIR) {
		r = EISDIR;
		goto out;
	} else {
		inode_lock(&fs->inodes);
		busy = n->writer != NULL;
		local = n->local;
		inode_unlock(&fs->inodes);
		if (busy || local) {
			/* as Mountpoint: a file not yet in S3 is not unlinked under its writer */
			log_err("unlink of '%s': it is %s; close it first", n->key,
			        busy ? "being written"
			             : "created here and not written yet (open it "
			               "for writing and close it)");
			r = EPERM;
			goto out;
		}
	}
	k = n ? n->key : key;
	if (!fs->opt.allow_delete) {
		log_err("unlink of '%s' refused: deleting objects needs --allow-delete", k);
		r = EPERM;
		goto out;
	}
	if (be->ops->del(be->ctx, k, &e) != 0) {
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
	return -r;
}

int ns_rmdir(struct hpcops_fs *fs, fuse_ino_t parent, const char *name)
{
	const struct fs_backend *be = &fs->be;
	struct s3_list_params lp = {0};
	struct s3_list_page page = {0};
	struct s3_error e;
	struct inode *n;
	bool busy, marker = false, others = false;
	int r = fs_writable(fs);

	if (r)
		return -r;
	n = child_get(fs, parent, name, &r);
	if (!n)
		return -r;
	if (n->kind != INODE_DIR) {
		r = ENOTDIR;
		goto out;
	}
	inode_lock(&fs->inodes);
	busy = n->local_children > 0;
	inode_unlock(&fs->inodes);
	if (busy) {
		r = ENOTEMPTY;
		goto out;
	}
	/* What S3 holds under the prefix: nothing, only a "dir/" marker, or more. */
	lp.prefix = n->key;
	lp.max_keys = 2;
	if (be->ops->list(be->ctx, &lp, &page, &e) != 0) {
		char buf[512];

		log_err("rmdir of '%s': ListObjectsV2 failed: %s", n->key,
		        s3_error_format(&e, buf, sizeof(buf)));
		r = fs_errno(e.err) ?: EIO;
		goto out;
	}
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
		if (be->ops->del(be->ctx, n->key, &e) != 0) {
			char buf[512];

			log_err("rmdir of '%s': DeleteObject of the marker failed: %s", n->key,
			        s3_error_format(&e, buf, sizeof(buf)));
			r = fs_errno(e.err) ?: EIO;
			goto out;
		}
	}
	forget_name(fs, n);
	drop_dir(fs, n);
out:
	s3_list_page_free(&page);
	inode_put(&fs->inodes, n);
	return -r;
}

/*
 * After a rename the kernel's dentry for the new name points at the old
 * node until the kernel looks the name up again (fs->inval_entry), and
 * until then opens and stats of the new name come here with the old node.
 * Point that node at the new key so they find the object. inode.h calls
 * key immutable because it is read without the lock: the pointer is
 * swapped under the lock and the old string stays allocated (retired until
 * ns_destroy), so a reader holding either pointer reads a valid key.
 */
static void retarget_locked(struct hpcops_fs *fs, struct inode *n, const char *newkey,
                            uint64_t size, const char *etag)
{
	char *k = strdup(newkey);
	char **v;

	if (!k)
		return;
	pthread_mutex_lock(&fs->ns.lock);
	v = realloc(fs->ns.retired_keys, (fs->ns.n_retired + 1) * sizeof(*v));
	if (v) {
		fs->ns.retired_keys = v;
		fs->ns.retired_keys[fs->ns.n_retired++] = n->key;
		n->key = k;
	} else {
		free(k);
	}
	pthread_mutex_unlock(&fs->ns.lock);
	n->size = size;
	if (etag[0] == '"' && strlen(etag) >= 2)
		snprintf(n->etag, sizeof(n->etag), "%.*s", (int)strlen(etag) - 2, etag + 1);
	else if (etag[0])
		snprintf(n->etag, sizeof(n->etag), "%s", etag);
	n->expires = inode_now() + fs_attr_timeout(fs);
}

int ns_rename(struct hpcops_fs *fs, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
              const char *newname, unsigned int flags)
{
	const struct fs_backend *be = &fs->be;
	struct inode *n = NULL, *dst = NULL, *ndir = NULL;
	struct s3_object_info info, dinfo;
	struct s3_error e;
	char *key = NULL, *newkey = NULL;
	bool dst_exists = false, dst_local = false, busy;
	char new_etag[80] = "";
	int r = fs_writable(fs), kind;

	if (r)
		return -r;
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
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
	busy = n && (n->writer != NULL || n->local);
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
	r = ns_new_name_err(fs, ndir, newname, false);
	if (r)
		goto out;
	newkey = child_key_of(ndir, newname);
	if (!newkey) {
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
	r = -upload_copy_object(be, key, newkey, info.size, new_etag);
	if (r)
		goto out;
	if (be->ops->del(be->ctx, key, &e) != 0) {
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
		                     inode_now() + fs_negative_ttl(fs));
	}
	if (n)
		retarget_locked(fs, n, newkey, info.size, new_etag);
	inode_neg_del_locked(&fs->inodes, ndir, newname);
	/* a key lies under ndir now: a mkdir'd directory there is S3's */
	ns_dirs_written_locked(fs, ndir);
	inode_unlock(&fs->inodes);
	log_debug("rename '%s' -> '%s' (copy + delete)", key, newkey);
	/* the kernel holds the directories' locks until our reply: after it */
	if (fs->inval_entry)
		fs->inval_entry(fs, newparent, newname, true);
out:
	free(key);
	free(newkey);
	inode_put(&fs->inodes, dst);
	inode_put(&fs->inodes, ndir);
	inode_put(&fs->inodes, n);
	return -r;
}

/* ---- what S3 cannot hold ---- */

int ns_symlink(struct hpcops_fs *fs, const char *name)
{
	int r = fs_writable(fs);

	if (r)
		return -r;
	log_info("symlink '%s' refused: S3 has no symbolic links", name);
	return -ENOSYS;
}

int ns_link(struct hpcops_fs *fs, const char *newname)
{
	int r = fs_writable(fs);

	if (r)
		return -r;
	log_info("link '%s' refused: S3 has no hard links", newname);
	return -ENOSYS;
}

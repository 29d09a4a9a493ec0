/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops: the FUSE low-level ops table. Here: init, the namespace (lookup with
 * HeadObject + ListObjectsV2 at once, getattr, readdir/readdirplus paging
 * ListObjectsV2 with attributes from the listing), open/read/release of
 * read handles (prefetch.c), statfs. Write-side ops go to fsw_* (ops_write.c).
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "prefetch.h"
#include "fs_errno.h"
#include "s3.h"

#define MIB       (1024ULL * 1024ULL)
#define LIST_PAGE 1000

static time_t mount_time;

/* ---- attributes and replies ---- */

double fs_attr_timeout(const struct hpcops_fs *fs)
{
	return fs->opt.metadata_ttl;
}

void fs_attr_locked(struct hpcops_fs *fs, const struct inode *n, struct stat *st)
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
		st->st_mtim.tv_sec = n->mtime.tv_sec ? n->mtime.tv_sec : mount_time;
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

static void fill_entry_nocount_locked(struct hpcops_fs *fs, struct inode *n,
                                      struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = 1;
	fs_attr_locked(fs, n, &e->attr);
	e->attr_timeout = fs_attr_timeout(fs);
	e->entry_timeout = fs_attr_timeout(fs);
}

void fs_fill_entry_locked(struct hpcops_fs *fs, struct inode *n, struct fuse_entry_param *e)
{
	fill_entry_nocount_locked(fs, n, e);
	n->nlookup++;
}

int fs_reply_entry(fuse_req_t req, struct hpcops_fs *fs, struct inode *n)
{
	struct fuse_entry_param e;

	inode_lock(&fs->inodes);
	fs_fill_entry_locked(fs, n, &e);
	inode_unlock(&fs->inodes);
	if (fuse_reply_entry(req, &e) != 0) {
		/* the request was interrupted: the kernel did not take the lookup */
		inode_forget(&fs->inodes, n->ino, 1);
		return -1;
	}
	return 0;
}

int fs_reply_attr(fuse_req_t req, struct hpcops_fs *fs, struct inode *n)
{
	struct stat st;

	inode_lock(&fs->inodes);
	fs_attr_locked(fs, n, &st);
	inode_unlock(&fs->inodes);
	return fuse_reply_attr(req, &st, fs_attr_timeout(fs));
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

#define INVALID_SEEN 4096
static pthread_mutex_t invalid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t invalid_seen[INVALID_SEEN]; /* under invalid_lock */

static void log_invalid_once(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	bool fresh = false;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	h |= 1;
	pthread_mutex_lock(&invalid_lock);
	if (invalid_seen[h % INVALID_SEEN] != h) {
		invalid_seen[h % INVALID_SEEN] = h;
		fresh = true;
	}
	pthread_mutex_unlock(&invalid_lock);
	if (fresh)
		log_warn("hiding key '%.*s': not a valid file name (empty, '.' or '..' "
		         "component, or a component over 255 bytes)",
		         (int)len, key);
}

/* ---- lookup ---- */

struct head_job {
	struct hpcops_fs *fs;
	const char *key;
	struct s3_object_info info;
	struct s3_error err;
	int rc;
};

static void *head_thread(void *arg)
{
	struct head_job *j = arg;

	j->rc = s3_head_object(j->fs->s3, j->key, &j->info, &j->err);
	return NULL;
}

/*
 * What @key is in S3: a directory (some key under key/), a file, or nothing.
 * HeadObject and ListObjectsV2 run at once. Returns INODE_DIR / INODE_FILE,
 * 0 for "does not exist", or -errno.
 */
static int remote_lookup(struct hpcops_fs *fs, const char *key, struct s3_object_info *info)
{
	struct head_job j = {.fs = fs, .key = key};
	struct s3_list_params p = {.max_keys = 1};
	struct s3_list_page page;
	struct s3_error lerr;
	pthread_t th;
	bool threaded;
	size_t klen = strlen(key);
	char *dirkey = malloc(klen + 2);
	int lrc, rc;

	if (!dirkey)
		return -ENOMEM;
	memcpy(dirkey, key, klen);
	dirkey[klen] = '/';
	dirkey[klen + 1] = '\0';
	p.prefix = dirkey;
	memset(&page, 0, sizeof(page));
	memset(&lerr, 0, sizeof(lerr));
	threaded = pthread_create(&th, NULL, head_thread, &j) == 0;
	lrc = s3_list_objects(fs->s3, &p, &page, &lerr);
	if (threaded)
		pthread_join(th, NULL);
	else
		head_thread(&j);
	free(dirkey);
	if (lrc == 0 && (page.n_entries > 0 || page.n_prefixes > 0)) {
		rc = INODE_DIR; /* a directory shadows a file of the same name */
	} else if (j.rc == 0) {
		*info = j.info;
		rc = INODE_FILE;
	} else if (lrc == 0 && j.err.err == S3_ERR_NO_SUCH_KEY) {
		rc = 0;
	} else {
		const struct s3_error *e = lrc < 0 ? &lerr : &j.err;
		char buf[400];

		log_warn("lookup of %s: %s", key, s3_error_format(e, buf, sizeof(buf)));
		rc = -fs_errno(e->err);
	}
	if (lrc == 0)
		s3_list_page_free(&page);
	return rc;
}

static void reply_negative(fuse_req_t req, struct hpcops_fs *fs)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = 0; /* a negative entry the kernel may cache for the TTL */
	e.entry_timeout = fs_attr_timeout(fs);
	fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode_table *t = &fs->inodes;
	struct inode *p, *n;
	struct s3_object_info info;
	size_t len = strlen(name);
	char *key = NULL;
	int kind;

	if (len > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (!inode_valid_name(name, len)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	inode_lock(t);
	p = inode_get_locked(t, parent);
	if (!p) {
		inode_unlock(t);
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (p->kind != INODE_DIR) {
		inode_put_locked(t, p);
		inode_unlock(t);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	n = inode_find_child_locked(t, p, name);
	if (n && (n->local || n->writer || n->expires > inode_now())) {
		struct fuse_entry_param e;

		fs_fill_entry_locked(fs, n, &e);
		inode_put_locked(t, p);
		inode_unlock(t);
		if (fuse_reply_entry(req, &e) != 0)
			inode_forget(t, e.ino, 1);
		return;
	}
	if (!n && inode_neg_find_locked(t, p, name)) {
		inode_put_locked(t, p);
		inode_unlock(t);
		reply_negative(req, fs);
		return;
	}
	key = malloc(strlen(p->key) + len + 1);
	if (key) {
		strcpy(key, p->key);
		strcat(key, name);
	}
	inode_unlock(t);
	if (!key) {
		inode_put(t, p);
		fuse_reply_err(req, ENOMEM);
		return;
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
		inode_put_locked(t, p);
		inode_unlock(t);
		fuse_reply_err(req, -kind);
		return;
	} else if (kind == 0) {
		if (n)
			inode_unlink_locked(t, n);
		inode_neg_add_locked(t, p, name, inode_now() + fs->opt.metadata_ttl);
		inode_put_locked(t, p);
		inode_unlock(t);
		reply_negative(req, fs);
		return;
	}
	n = inode_child_locked(t, p, name, (enum inode_kind)kind);
	inode_put_locked(t, p);
	if (!n) {
		inode_unlock(t);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (n->kind == INODE_FILE)
		set_file_attr_locked(fs, n, info.size, info.mtime, info.etag, &info.meta);
	else
		n->expires = inode_now() + fs->opt.metadata_ttl;
	{
		struct fuse_entry_param e;

		fs_fill_entry_locked(fs, n, &e);
		inode_put_locked(t, n);
		inode_unlock(t);
		if (fuse_reply_entry(req, &e) != 0)
			inode_forget(t, e.ino, 1);
	}
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
	struct inode_table *t = &fs->inodes;
	struct inode *n = inode_get(t, ino);
	bool stale;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	inode_lock(t);
	stale = n->kind == INODE_FILE && !n->local && !n->writer && n->expires <= inode_now();
	inode_unlock(t);
	if (stale) {
		struct s3_object_info info;
		struct s3_error err;

		memset(&err, 0, sizeof(err));
		if (s3_head_object(fs->s3, n->key, &info, &err) == 0) {
			inode_lock(t);
			set_file_attr_locked(fs, n, info.size, info.mtime, info.etag, &info.meta);
			inode_unlock(t);
		} else if (err.err != S3_ERR_NO_SUCH_KEY || !fi) {
			/* an open file removed in S3 keeps its last attributes */
			inode_put(t, n);
			fuse_reply_err(req, fs_errno(err.err));
			return;
		}
	}
	fs_reply_attr(req, fs, n);
	inode_put(t, n);
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
	if (s3_list_objects(fs->s3, &p, &page, &err) == 0) {
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
	if (s3_list_objects(fs->s3, &p, &page, &err) < 0) {
		char buf[400];

		log_warn("listing %s: %s", dir->key, s3_error_format(&err, buf, sizeof(buf)));
		return -fs_errno(err.err);
	}
	d->started = true;
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
			log_invalid_once(pre, pl);
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
			log_invalid_once(e->key, kl);
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

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode_table *t = &fs->inodes;
	struct fs_handle *h = calloc(1, sizeof(*h));
	struct dir_handle *d = calloc(1, sizeof(*d));
	struct local_collect lc = {.d = d};
	struct inode *n;

	if (!h || !d) {
		free(h);
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&d->lock, NULL);
	inode_lock(t);
	n = inode_get_locked(t, ino);
	if (n && n->kind != INODE_DIR) {
		inode_put_locked(t, n);
		inode_unlock(t);
		dir_handle_free(d);
		free(h);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (n)
		inode_each_local_child_locked(t, n, collect_local, &lc);
	inode_unlock(t);
	if (!n || lc.rc) {
		inode_put(t, n);
		dir_handle_free(d);
		free(h);
		fuse_reply_err(req, n ? ENOMEM : ENOENT);
		return;
	}
	h->kind = FS_HANDLE_DIR;
	h->inode = n;
	h->dir = d;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0) {
		inode_put(t, n);
		dir_handle_free(d);
		free(h);
	}
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

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode_table *t = &fs->inodes;
	struct fs_handle *h = fs_handle_of(fi);
	struct dir_handle *d = h->dir;
	struct inode *dir = h->inode;
	/* the first listing entry this call asks for (0 and 1 are "." and "..") */
	uint64_t first = off >= 2 ? (uint64_t)off - 2 : 0;
	char *buf = malloc(size);
	size_t used = 0;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	/* rewinddir, or a seekdir before the window (even to "." or ".."): list again */
	if (d->started && (off == 0 || first < d->base))
		dir_ents_clear(d);
	for (uint64_t i = (uint64_t)off;; i++) {
		struct stat st;
		const char *name;
		size_t need;

		memset(&st, 0, sizeof(st));
		if (i == 0 || i == 1) {
			name = i == 0 ? "." : "..";
			st.st_ino = i == 0 ? dir->ino : (dir->parent ? dir->parent->ino : dir->ino);
			st.st_mode = S_IFDIR;
			if (plus) {
				struct fuse_entry_param e;

				memset(&e, 0, sizeof(e));
				e.attr = st;
				need = fuse_add_direntry_plus(req, buf + used, size - used, name,
				                              &e, (off_t)i + 1);
			} else {
				need = fuse_add_direntry(req, buf + used, size - used, name, &st,
				                         (off_t)i + 1);
			}
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

			name = de->name;
			if (plus) {
				struct fuse_entry_param e;
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
				fill_entry_nocount_locked(fs, c, &e);
				need = fuse_add_direntry_plus(req, buf + used, size - used, name,
				                              &e, (off_t)i + 1);
				if (need <= size - used)
					c->nlookup++; /* the kernel takes a lookup for it */
				inode_put_locked(t, c);
				inode_unlock(t);
			} else {
				st.st_ino = name_ino(name);
				st.st_mode = de->kind == INODE_DIR ? S_IFDIR : S_IFREG;
				need = fuse_add_direntry(req, buf + used, size - used, name, &st,
				                         (off_t)i + 1);
			}
			if (need > size - used)
				break;
			used += need;
		}
	}
out:
	pthread_mutex_unlock(&d->lock);
	if (rc < 0 && used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);

	dir_handle_free(h->dir);
	inode_put(&fs->inodes, h->inode);
	free(h);
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct inode_table *t = &fs->inodes;
	struct fs_handle *h;
	struct inode *n;
	char etag[80], key_etag[80];
	uint64_t size;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		if (fs->opt.read_only) {
			fuse_reply_err(req, EROFS);
			return;
		}
		fsw_open(req, ino, fi);
		return;
	}
	inode_lock(t);
	n = inode_get_locked(t, ino);
	if (!n) {
		inode_unlock(t);
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->kind == INODE_DIR) {
		inode_put_locked(t, n);
		inode_unlock(t);
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (n->writer || n->local) {
		/* S3 has no bytes of it yet: it can be read once it is closed */
		inode_put_locked(t, n);
		inode_unlock(t);
		fuse_reply_err(req, EBUSY);
		return;
	}
	snprintf(etag, sizeof(etag), "%s", n->etag);
	snprintf(key_etag, sizeof(key_etag), "%s", n->etag);
	size = n->size;
	inode_unlock(t);

	h = calloc(1, sizeof(*h));
	if (!h) {
		inode_put(t, n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->kind = FS_HANDLE_READ;
	h->inode = n;
	h->opener_pid = fuse_req_ctx(req)->pid;
	h->rd = prefetch_new(fs, n->key, size, etag);
	if (!h->rd) {
		free(h);
		inode_put(t, n);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* keep the page cache only while the object is the version it holds */
	inode_lock(t);
	fi->keep_cache = etag[0] && !strcmp(n->cache_etag, etag);
	snprintf(n->cache_etag, sizeof(n->cache_etag), "%s", etag);
	inode_unlock(t);
	if (fuse_reply_open(req, fi) != 0) {
		prefetch_free(h->rd);
		inode_put(t, n);
		free(h);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct fs_handle *h = fs_handle_of(fi);

	if (h->kind != FS_HANDLE_READ) {
		fuse_reply_err(req, EBADF);
		return;
	}
	prefetch_read(h->rd, req, size, (uint64_t)off);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hpcops_fs *fs = fs_of(req);
	struct fs_handle *h = fs_handle_of(fi);

	if (h->kind == FS_HANDLE_WRITE) {
		fsw_release(req, ino, fi);
		return;
	}
	prefetch_free(h->rd);
	inode_put(&fs->inodes, h->inode);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h = fs_handle_of(fi);

	if (h->kind == FS_HANDLE_WRITE) {
		fsw_flush(req, ino, fi);
		return;
	}
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_handle *h = fs_handle_of(fi);

	if (h->kind == FS_HANDLE_WRITE) {
		fsw_fsync(req, ino, datasync, fi);
		return;
	}
	fuse_reply_err(req, 0);
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

/* ---- write side: read-only check, then fswrite's functions ---- */

#define RO_GUARD(req)                                                                              \
	do {                                                                                       \
		if (fs_of(req)->opt.read_only) {                                                   \
			fuse_reply_err((req), EROFS);                                              \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	RO_GUARD(req);
	fsw_create(req, parent, name, mode, fi);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                         struct fuse_file_info *fi)
{
	if (fs_handle_of(fi)->kind != FS_HANDLE_WRITE) {
		fuse_reply_err(req, EBADF);
		return;
	}
	fsw_write_buf(req, ino, bufv, off, fi);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	RO_GUARD(req);
	fsw_setattr(req, ino, attr, to_set, fi);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	RO_GUARD(req);
	fsw_unlink(req, parent, name);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	RO_GUARD(req);
	fsw_rmdir(req, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	RO_GUARD(req);
	fsw_mkdir(req, parent, name, mode);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	RO_GUARD(req);
	fsw_rename(req, parent, name, newparent, newname, flags);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	RO_GUARD(req);
	fsw_mknod(req, parent, name, mode, rdev);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	RO_GUARD(req);
	fsw_symlink(req, link, parent, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	RO_GUARD(req);
	fsw_link(req, ino, newparent, newname);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	RO_GUARD(req);
	fsw_setxattr(req, ino, name, value, size, flags);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	RO_GUARD(req);
	fsw_removexattr(req, ino, name);
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

const struct fuse_lowlevel_ops fs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .flush = op_flush,
    .fsync = op_fsync,
    .statfs = op_statfs,
    .create = op_create,
    .write_buf = op_write_buf,
    .setattr = op_setattr,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .mkdir = op_mkdir,
    .rename = op_rename,
    .mknod = op_mknod,
    .symlink = op_symlink,
    .link = op_link,
    .setxattr = op_setxattr,
    .getxattr = fsw_getxattr,
    .listxattr = fsw_listxattr,
    .removexattr = op_removexattr,
};

int fs_setup(struct hpcops_fs *fs)
{
	mount_time = time(NULL);
	if (inode_table_init(&fs->inodes, fs->opt.prefix) < 0) {
		fprintf(stderr, "hpcops-mount: out of memory\n");
		return -1;
	}
	fs->budget = budget_new(fs->opt.memory_limit);
	if (!fs->budget) {
		fprintf(stderr, "hpcops-mount: out of memory\n");
		return -1;
	}
	if (fs->opt.cache_dir) {
		char why[512];

		fs->cache = cache_new(fs->opt.cache_dir, fs->opt.max_cache_size, why, sizeof(why));
		if (!fs->cache) {
			fprintf(stderr, "hpcops-mount: --cache %s: %s\n", fs->opt.cache_dir, why);
			return -1;
		}
	}
	return 0;
}

void fs_teardown(struct hpcops_fs *fs)
{
	if (fs->budget)
		prefetch_pool_trim(fs);
	cache_free(fs->cache);
	fs->cache = NULL;
	budget_free(fs->budget);
	fs->budget = NULL;
	if (fs->inodes.by_ino)
		inode_table_destroy(&fs->inodes);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_disk: block files under DIR/hpcops-cache-v1/XX/NAME, NAME the hex
 * SHA-256 of (key, ETag, block size, index). An in-memory index (hash + LRU
 * list, one mutex) tracks their sizes so eviction needs no directory scan
 * after start.
 */
#include "cache_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "checksum.h"
#include "util.h"

#define MAGIC  "HPCB0001"
#define SUBDIR "hpcops-cache-v1"

struct blk_hdr {
	char magic[8];
	uint32_t key_len;
	uint32_t etag_len;
	uint64_t idx;
	uint32_t data_len;
	uint32_t crc;
};

struct centry {
	char name[65];              /* hex SHA-256 */
	uint64_t size;              /* bytes on disk */
	struct centry *hnext;       /* hash chain */
	struct centry *prev, *next; /* LRU: head = most recent */
};

struct cache_disk {
	char *root; /* DIR/hpcops-cache-v1 */
	uint64_t block_size;
	uint64_t max_bytes;
	pthread_mutex_t lock;
	/* under lock */
	struct centry **hash;
	size_t n_buckets;
	struct centry *lru_head, *lru_tail;
	uint64_t total;
	atomic_bool warned;
	atomic_uint seq;
	/* counters for metrics (relaxed atomics) */
	uint64_t hits, misses;
};

static size_t bucket_of(const struct cache_disk *c, const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return h % c->n_buckets;
}

static struct centry *find_locked(struct cache_disk *c, const char *name)
{
	for (struct centry *e = c->hash[bucket_of(c, name)]; e; e = e->hnext)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

static void lru_unlink(struct cache_disk *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct cache_disk *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static void remove_locked(struct cache_disk *c, struct centry *e)
{
	struct centry **pp = &c->hash[bucket_of(c, e->name)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	lru_unlink(c, e);
	c->total -= e->size;
	free(e);
}

static void path_of(const struct cache_disk *c, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%.2s/%s", c->root, name, name);
}

static void add_locked(struct cache_disk *c, const char *name, uint64_t size, bool front)
{
	struct centry *e = find_locked(c, name);

	if (e) {
		c->total -= e->size;
		e->size = size;
		c->total += size;
		lru_unlink(c, e);
		lru_push_front(c, e);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->size = size;
	e->hnext = c->hash[bucket_of(c, name)];
	c->hash[bucket_of(c, name)] = e;
	if (front) {
		lru_push_front(c, e);
	} else {
		e->prev = c->lru_tail;
		if (c->lru_tail)
			c->lru_tail->next = e;
		c->lru_tail = e;
		if (!c->lru_head)
			c->lru_head = e;
	}
	c->total += size;
}

/* Delete least recently used blocks until @need more bytes fit under the bound. */
static void evict_locked(struct cache_disk *c, uint64_t need)
{
	char path[PATH_MAX];

	while (c->lru_tail && c->total + need > c->max_bytes) {
		struct centry *e = c->lru_tail;

		path_of(c, e->name, path, sizeof(path));
		unlink(path);
		remove_locked(c, e);
	}
}

/*
 * The file name of a block: the block size is part of it, so a mount with
 * another --cache-block-size cannot take a block of the same index and
 * length that holds other bytes (the last block of a size, say).
 */
static void block_name(const struct cache_disk *c, const char *key, const char *etag, uint64_t idx,
                       char out[65])
{
	size_t kl = strlen(key), el = strlen(etag);
	char *buf = malloc(kl + el + 2 + 2 * sizeof(uint64_t));

	if (!buf) {
		out[0] = '\0';
		return;
	}
	memcpy(buf, key, kl + 1);
	memcpy(buf + kl + 1, etag, el + 1);
	memcpy(buf + kl + el + 2, &idx, sizeof(idx));
	memcpy(buf + kl + el + 2 + sizeof(idx), &c->block_size, sizeof(c->block_size));
	util_sha256_hex(buf, kl + el + 2 + 2 * sizeof(uint64_t), out);
	free(buf);
}

struct scan_item {
	char name[65];
	uint64_t size;
	struct timespec mtime;
};

static int cmp_scan(const void *a, const void *b)
{
	const struct scan_item *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec > y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec > y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

/* Index the blocks already on disk, most recently used first. */
static int scan(struct cache_disk *c)
{
	struct scan_item *items = NULL;
	size_t n = 0, cap = 0;
	DIR *top = opendir(c->root);
	struct dirent *de;

	if (!top)
		return -errno;
	for (de = readdir(top); de; de = readdir(top)) {
		char sub[PATH_MAX];
		DIR *d;
		struct dirent *fe;

		if (strlen(de->d_name) != 2)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", c->root, de->d_name);
		d = opendir(sub);
		if (!d)
			continue;
		for (fe = readdir(d); fe; fe = readdir(d)) {
			char p[PATH_MAX];
			struct stat st;

			if (fe->d_name[0] == '.')
				continue;
			if (snprintf(p, sizeof(p), "%s/%s", sub, fe->d_name) >= (int)sizeof(p))
				continue;
			if (strlen(fe->d_name) != 64) {
				unlink(p); /* a temp file of an interrupted put */
				continue;
			}
			if (stat(p, &st) < 0)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct scan_item *ni = realloc(items, nc * sizeof(*ni));

				if (!ni)
					break;
				items = ni;
				cap = nc;
			}
			snprintf(items[n].name, sizeof(items[n].name), "%s", fe->d_name);
			items[n].size = (uint64_t)st.st_size;
			items[n].mtime = st.st_mtim;
			n++;
		}
		closedir(d);
	}
	closedir(top);
	if (n > 0) /* qsort(NULL, 0, ...) is undefined behaviour (UBSan) */
		qsort(items, n, sizeof(*items), cmp_scan);
	for (size_t i = 0; i < n; i++)
		add_locked(c, items[i].name, items[i].size, false);
	free(items);
	return 0;
}

struct cache_disk *cache_disk_new(const char *dir, size_t block_size, uint64_t max_bytes, char *why,
                                  size_t why_len)
{
	struct cache_disk *c = calloc(1, sizeof(*c));
	char p[PATH_MAX];

	if (!c) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->block_size = block_size;
	c->n_buckets = 65536;
	c->hash = calloc(c->n_buckets, sizeof(*c->hash));
	if (!c->hash || asprintf(&c->root, "%s/%s", dir, SUBDIR) < 0) {
		c->root = NULL;
		snprintf(why, why_len, "out of memory");
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot create the directory: %s", strerror(errno));
		goto fail;
	}
	if (mkdir(c->root, 0700) < 0 && errno != EEXIST) {
		snprintf(why, why_len, "cannot create %s: %s (is the directory writable?)", c->root,
		         strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 256; i++) {
		snprintf(p, sizeof(p), "%s/%02x", c->root, i);
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			snprintf(why, why_len, "cannot create %s: %s", p, strerror(errno));
			goto fail;
		}
	}
	scan(c);
	if (max_bytes == 0) {
		struct statvfs sv;

		/* leave 5% of the file system free */
		if (statvfs(c->root, &sv) < 0) {
			snprintf(why, why_len, "cannot stat the file system: %s", strerror(errno));
			goto fail;
		}
		uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
		uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		uint64_t keep = total / 20;

		max_bytes = c->total + (avail > keep ? avail - keep : 0);
		if (max_bytes < block_size)
			max_bytes = block_size;
	}
	c->max_bytes = max_bytes;
	pthread_mutex_lock(&c->lock);
	evict_locked(c, 0);
	pthread_mutex_unlock(&c->lock);
	return c;
fail:
	cache_disk_free(c);
	return NULL;
}

void cache_disk_free(struct cache_disk *c)
{
	if (!c)
		return;
	if (c->hash) {
		while (c->lru_head)
			remove_locked(c, c->lru_head);
		free(c->hash);
	}
	free(c->root);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool read_full(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, (char *)buf + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		done += (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, (const char *)buf + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ENOSPC;
			return false;
		}
		done += (size_t)r;
	}
	return true;
}

static void drop(struct cache_disk *c, const char *name, const char *path)
{
	struct centry *e;

	unlink(path);
	pthread_mutex_lock(&c->lock);
	e = find_locked(c, name);
	if (e)
		remove_locked(c, e);
	pthread_mutex_unlock(&c->lock);
}

ssize_t cache_disk_get(struct cache_disk *c, const char *key, const char *etag, uint64_t idx,
                       void *buf, size_t cap)
{
	char name[65], path[PATH_MAX];
	struct blk_hdr h;
	size_t kl = strlen(key), el = strlen(etag);
	char *meta = NULL;
	ssize_t rc = -1;
	struct centry *e;
	int fd;

	block_name(c, key, etag, idx, name);
	if (!name[0])
		return -1;
	pthread_mutex_lock(&c->lock);
	e = find_locked(c, name);
	if (e) {
		/* a hit makes it the most recently used */
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	if (!e) {
		__atomic_add_fetch(&c->misses, 1, __ATOMIC_RELAXED);
		return -1;
	}
	path_of(c, name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		drop(c, name, path);
		return -1;
	}
	meta = malloc(kl + el + 1);
	if (!meta)
		goto out;
	/* the header names what the block is: a hash collision or a torn file is a miss */
	if (!read_full(fd, &h, sizeof(h)) || memcmp(h.magic, MAGIC, 8) || h.key_len != kl ||
	    h.etag_len != el || h.idx != idx || h.data_len > cap || !read_full(fd, meta, kl + el) ||
	    memcmp(meta, key, kl) || memcmp(meta + kl, etag, el) ||
	    !read_full(fd, buf, h.data_len) || checksum_crc32c(0, buf, h.data_len) != h.crc) {
		log_warn("cache block %s is damaged: deleted", path);
		close(fd);
		fd = -1;
		drop(c, name, path);
		goto out;
	}
	rc = (ssize_t)h.data_len;
out:
	if (fd >= 0)
		close(fd);
	free(meta);
	__atomic_add_fetch(rc >= 0 ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
	return rc;
}

void cache_disk_stats(struct cache_disk *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c ? __atomic_load_n(&c->hits, __ATOMIC_RELAXED) : 0;
	*misses = c ? __atomic_load_n(&c->misses, __ATOMIC_RELAXED) : 0;
}

void cache_disk_put(struct cache_disk *c, const char *key, const char *etag, uint64_t idx,
                    const void *data, size_t len)
{
	char name[65], path[PATH_MAX], tmp[PATH_MAX];
	struct blk_hdr h;
	size_t kl = strlen(key), el = strlen(etag);
	uint64_t need = sizeof(h) + kl + el + len;
	bool exists;
	int fd;

	block_name(c, key, etag, idx, name);
	if (!name[0] || need > c->max_bytes)
		return;
	pthread_mutex_lock(&c->lock);
	exists = find_locked(c, name) != NULL;
	if (!exists)
		evict_locked(c, need);
	pthread_mutex_unlock(&c->lock);
	if (exists)
		return;
	path_of(c, name, path, sizeof(path));
	if (snprintf(tmp, sizeof(tmp), "%s.%u.tmp", path, atomic_fetch_add(&c->seq, 1)) >=
	    (int)sizeof(tmp))
		return;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MAGIC, 8);
	h.key_len = (uint32_t)kl;
	h.etag_len = (uint32_t)el;
	h.idx = idx;
	h.data_len = (uint32_t)len;
	h.crc = checksum_crc32c(0, data, len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (!write_full(fd, &h, sizeof(h)) || !write_full(fd, key, kl) ||
	    !write_full(fd, etag, el) || !write_full(fd, data, len)) {
		int e = errno;

		close(fd);
		unlink(tmp);
		errno = e;
		goto fail;
	}
	close(fd);
	/* visible only when whole: a crash leaves a temp file, removed at the next start */
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		goto fail;
	}
	pthread_mutex_lock(&c->lock);
	add_locked(c, name, need, true);
	pthread_mutex_unlock(&c->lock);
	return;
fail:
	if (errno == ENOSPC || errno == EDQUOT) {
		/* the disk is full: make room for later puts, skip this one */
		pthread_mutex_lock(&c->lock);
		if (c->total > 8 * c->block_size)
			c->max_bytes = c->total - c->total / 8;
		evict_locked(c, 0);
		pthread_mutex_unlock(&c->lock);
	}
	if (!atomic_exchange(&c->warned, true))
		log_warn("cache: cannot store a block in %s: %s (reads go on from S3)", c->root,
		         strerror(errno));
}

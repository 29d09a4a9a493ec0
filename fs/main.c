/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpcops-mount: maps an S3 bucket as a POSIX filesystem with FUSE3.
 * This file: the command line (Mountpoint's flag names, and their -o
 * spelling for fstab / mount -t fuse.hpcops-mount), the bucket check before
 * mounting, detaching only once the mount is live, and the FUSE session.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "creds.h"
#include "fs.h"
#include "log.h"
#include "fuse_ops.h"
#include "retry.h"
#include "s3.h"
#include "xfer.h"

#define MIB (1024ULL * 1024ULL)

enum opt_type {
	OPT_FLAG,  /* bool, no value */
	OPT_STR,   /* char * */
	OPT_UID,   /* uid_t / gid_t (unsigned int) */
	OPT_MODE,  /* octal mode_t */
	OPT_INT,   /* int */
	OPT_BYTES, /* uint64_t; plain number = bytes, K/M/G suffixes */
	OPT_MIB,   /* uint64_t; plain number = MiB, K/M/G suffixes */
	OPT_TTL,   /* double: seconds | minimal | indefinite */
};

struct opt_desc {
	const char *name; /* long name without "--" */
	char short_name;  /* 0 if none */
	enum opt_type type;
	size_t off;      /* offset in struct fs_options */
	const char *arg; /* argument name for --help, NULL for flags */
	const char *help;
};

#define O(f) offsetof(struct fs_options, f)

static const struct opt_desc opt_table[] = {
    {"region", 0, OPT_STR, O(region), "REGION",
     "AWS region of the bucket (default: AWS_REGION, the profile, or us-east-1)"},
    {"endpoint-url", 0, OPT_STR, O(endpoint_url), "URL",
     "S3 endpoint, e.g. http://127.0.0.1:7480 (default: AWS for the region)"},
    {"force-path-style", 0, OPT_FLAG, O(force_path_style), NULL,
     "address the bucket as URL/BUCKET/KEY instead of BUCKET.HOST/KEY"},
    {"prefix", 0, OPT_STR, O(prefix), "PREFIX/",
     "mount only keys under PREFIX/ (same as BUCKET:PREFIX/)"},
    {"profile", 0, OPT_STR, O(profile), "NAME",
     "credentials and region from this profile of ~/.aws/config"},
    {"no-sign-request", 0, OPT_FLAG, O(no_sign_request), NULL,
     "send unsigned requests (public buckets; no credentials needed)"},
    {"ca-bundle", 0, OPT_STR, O(ca_bundle), "FILE",
     "PEM file of CA certificates to trust for HTTPS"},
    {"read-only", 0, OPT_FLAG, O(read_only), NULL, "mount read-only: every write fails with EROFS"},
    {"allow-other", 0, OPT_FLAG, O(allow_other), NULL,
     "let other users than the mounting one access the files"},
    {"allow-root", 0, OPT_FLAG, O(allow_root), NULL,
     "let root access the files as well as the mounting user"},
    {"uid", 0, OPT_UID, O(uid), "UID", "owner of every file and directory (default: you)"},
    {"gid", 0, OPT_UID, O(gid), "GID", "group of every file and directory (default: yours)"},
    {"file-mode", 0, OPT_MODE, O(file_mode), "MODE", "permission bits of files, octal (0644)"},
    {"dir-mode", 0, OPT_MODE, O(dir_mode), "MODE", "permission bits of directories, octal (0755)"},
    {"allow-overwrite", 0, OPT_FLAG, O(allow_overwrite), NULL,
     "allow replacing an existing object (open with O_TRUNC)"},
    {"allow-delete", 0, OPT_FLAG, O(allow_delete), NULL, "allow unlink of objects"},
    {"allow-append", 0, OPT_FLAG, O(allow_append), NULL,
     "allow appending to an existing object (rewritten server-side)"},
    {"allow-rename", 0, OPT_FLAG, O(allow_rename), NULL,
     "allow rename of files (copy + delete: not atomic)"},
    {"write-part-size", 0, OPT_BYTES, O(write_part_size), "BYTES",
     "size of each multipart upload part (8M)"},
    {"foreground", 'f', OPT_FLAG, O(foreground), NULL,
     "stay in the foreground (logs to stderr unless -l)"},
    {"debug", 'd', OPT_FLAG, O(debug), NULL, "log every request (debug level)"},
    {"log-directory", 'l', OPT_STR, O(log_directory), "DIR",
     "write logs to a file in DIR (default: syslog, stderr with -f)"},
    {"auto-unmount", 0, OPT_FLAG, O(auto_unmount), NULL,
     "unmount automatically when the process exits"},
    {"max-threads", 0, OPT_INT, O(max_threads), "N", "FUSE worker threads (16)"},
    {"metadata-ttl", 0, OPT_TTL, O(metadata_ttl), "SECONDS|minimal|indefinite",
     "how long names and attributes are trusted before S3 is asked again (1)"},
    {"cache", 0, OPT_STR, O(cache_dir), "DIR",
     "keep read blocks in DIR for later reads (key + ETag, checksummed)"},
    {"max-cache-size", 0, OPT_MIB, O(max_cache_size), "MIB",
     "bound of --cache in MiB (default: leave 5% of the disk free)"},
    {"read-part-size", 0, OPT_BYTES, O(read_part_size), "BYTES",
     "size of each ranged GET of the prefetcher (8M)"},
    {"memory-limit", 0, OPT_MIB, O(memory_limit), "MIB",
     "bound of all prefetch and upload buffers in MiB (512)"},
    {"max-retry-duration", 0, OPT_TTL, O(max_retry_duration), "SECONDS",
     "how long a failing request is retried before an error (120: rides out a 60 s outage)"},
    {"check-timeout", 0, OPT_TTL, O(check_timeout), "SECONDS",
     "bound of the bucket check at mount time (10)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hpcops-mount [options] BUCKET[:PREFIX/] DIR\n"
	           "\n"
	           "Mount an S3 bucket (or the keys under PREFIX/) as a filesystem at DIR.\n"
	           "Every option can also be given as -o NAME[=VALUE] (for /etc/fstab and\n"
	           "mount -t fuse.hpcops-mount BUCKET DIR -o OPTS); '-' and '_' are alike there.\n"
	           "Sizes take K, M, G suffixes (powers of 1024).\n"
	           "\n");
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++) {
		const struct opt_desc *d = &opt_table[i];
		char left[64];

		if (d->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", d->short_name, d->name,
			         d->arg ? " " : "", d->arg ? d->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", d->name, d->arg ? " " : "",
			         d->arg ? d->arg : "");
		fprintf(f, "  %-34s %s\n", left, d->help);
	}
	fprintf(f, "  %-34s %s\n", "-o OPT[,OPT...]", "options in mount(8) style (see above)");
	fprintf(f, "  %-34s %s\n", "-h, --help", "show this help and exit");
	fprintf(f, "  %-34s %s\n", "-V, --version", "show the version and exit");
}

static const struct opt_desc *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++) {
		const char *n = opt_table[i].name;
		size_t j;

		if (strlen(n) != len)
			continue;
		/* '-' and '_' are alike, so -o allow_other works as in other FUSE filesystems */
		for (j = 0; j < len; j++) {
			char a = n[j], b = name[j];

			if (a == '-')
				a = '_';
			if (b == '-')
				b = '_';
			if (a != b)
				break;
		}
		if (j == len)
			return &opt_table[i];
	}
	return NULL;
}

static int parse_size(const char *s, uint64_t unit, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0':
		v *= unit;
		break;
	case 'k':
	case 'K':
		v *= 1024ULL;
		end++;
		break;
	case 'm':
	case 'M':
		v *= MIB;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1024ULL * MIB;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

/* Set one option; @val is NULL for flags. Returns 0 or -1 after printing why. */
static int opt_set(struct fs_options *o, const struct opt_desc *d, const char *val)
{
	void *p = (char *)o + d->off;
	char *end;

	if (d->type != OPT_FLAG && !val) {
		fprintf(stderr, "hpcops-mount: --%s needs a value (%s)\n", d->name, d->arg);
		return -1;
	}
	switch (d->type) {
	case OPT_FLAG:
		if (val && strcmp(val, "true") && strcmp(val, "1")) {
			if (!strcmp(val, "false") || !strcmp(val, "0")) {
				*(bool *)p = false;
				return 0;
			}
			fprintf(stderr, "hpcops-mount: --%s takes no value (got '%s')\n", d->name,
			        val);
			return -1;
		}
		*(bool *)p = true;
		return 0;
	case OPT_STR:
		free(*(char **)p);
		*(char **)p = strdup(val);
		return *(char **)p ? 0 : -1;
	case OPT_UID: {
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || end == val || *end || v > UINT_MAX - 1)
			goto bad;
		*(unsigned int *)p = (unsigned int)v;
		return 0;
	}
	case OPT_MODE: {
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 8);
		if (errno || end == val || *end || v > 07777)
			goto bad;
		*(mode_t *)p = (mode_t)v;
		return 0;
	}
	case OPT_INT: {
		long v;

		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end || v < 1 || v > 1024)
			goto bad;
		*(int *)p = (int)v;
		return 0;
	}
	case OPT_BYTES:
		if (parse_size(val, 1, (uint64_t *)p) < 0)
			goto bad;
		return 0;
	case OPT_MIB:
		if (parse_size(val, MIB, (uint64_t *)p) < 0)
			goto bad;
		return 0;
	case OPT_TTL: {
		double v;

		if (!strcmp(val, "minimal")) {
			*(double *)p = FS_TTL_MINIMAL;
			return 0;
		}
		if (!strcmp(val, "indefinite")) {
			*(double *)p = FS_TTL_INDEFINITE;
			return 0;
		}
		errno = 0;
		v = strtod(val, &end);
		if (errno || end == val || *end || v < 0 || v > 1e8)
			goto bad;
		*(double *)p = v;
		return 0;
	}
	}
bad:
	fprintf(stderr, "hpcops-mount: bad value '%s' for --%s (expected %s)\n", val, d->name,
	        d->arg);
	return -1;
}

/*
 * mount(8) and fstab pass generic options through -o: accept the ones that
 * mean nothing here, map ro/rw, refuse the rest with a message.
 */
static int opt_mount_word(struct fs_options *o, const char *w)
{
	static const char *const ignored[] = {
	    "rw",          "dev",
	    "nodev",       "suid",
	    "nosuid",      "exec",
	    "noexec",      "async",
	    "atime",       "noatime",
	    "relatime",    "norelatime",
	    "strictatime", "nodiratime",
	    "diratime",    "auto",
	    "noauto",      "user",
	    "nouser",      "users",
	    "owner",       "group",
	    "defaults",    "_netdev",
	    "nofail",      "default_permissions",
	    "lazytime",    "nolazytime",
	    "x-systemd",   "comment",
	};

	if (!strcmp(w, "ro")) {
		o->read_only = true;
		return 0;
	}
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (!strcmp(w, ignored[i]))
			return 0;
	if (!strncmp(w, "x-", 2) || !strncmp(w, "comment=", 8) || !strncmp(w, "fsname=", 7) ||
	    !strncmp(w, "subtype=", 8))
		return 0;
	return -1;
}

static int opt_parse_o(struct fs_options *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *w;
	int rc = 0;

	if (!copy)
		return -1;
	for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(w, '=');
		size_t len = eq ? (size_t)(eq - w) : strlen(w);
		const struct opt_desc *d = opt_find(w, len);

		if (d) {
			if (opt_set(o, d, eq ? eq + 1 : NULL) < 0) {
				rc = -1;
				break;
			}
			continue;
		}
		if (opt_mount_word(o, w) == 0)
			continue;
		fprintf(stderr, "hpcops-mount: unknown option -o %s (see hpcops-mount --help)\n",
		        w);
		rc = -1;
		break;
	}
	free(copy);
	return rc;
}

static void opt_defaults(struct fs_options *o)
{
	memset(o, 0, sizeof(*o));
	o->uid = getuid();
	o->gid = getgid();
	o->file_mode = 0644;
	o->dir_mode = 0755;
	o->write_part_size = 8 * MIB;
	o->max_threads = 16;
	o->metadata_ttl = FS_TTL_DEFAULT;
	o->read_part_size = 8 * MIB;
	o->memory_limit = 512 * MIB;
	o->check_timeout = 10;
	o->max_retry_duration = RETRY_DEFAULT_BUDGET_MS / 1000.0;
}

static void opt_free(struct fs_options *o)
{
	free(o->bucket);
	free(o->prefix);
	free(o->mountpoint);
	free(o->region);
	free(o->endpoint_url);
	free(o->profile);
	free(o->ca_bundle);
	free(o->log_directory);
	free(o->cache_dir);
}

static bool valid_bucket(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

/* Returns 0 to go on, 1 when --help/--version was handled, -1 on bad input. */
static int opt_parse(struct fs_options *o, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0;
	char *colon;
	const char *prefix;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt_desc *d = NULL;
		const char *val = NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("hpcops-mount %s\n", HPCOPS_VERSION);
			return 1;
		}
		if (!strcmp(a, "-o")) {
			if (++i >= argc) {
				fprintf(stderr, "hpcops-mount: -o needs a list of options\n");
				return -1;
			}
			if (opt_parse_o(o, argv[i]) < 0)
				return -1;
			continue;
		}
		if (!strncmp(a, "-o", 2) && a[2]) {
			if (opt_parse_o(o, a + 2) < 0)
				return -1;
			continue;
		}
		if (!strncmp(a, "--", 2) && a[2]) {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			d = opt_find(a + 2, len);
			if (!d) {
				fprintf(stderr, "hpcops-mount: unknown option %s (see --help)\n",
				        a);
				return -1;
			}
			if (eq)
				val = eq + 1;
			else if (d->type != OPT_FLAG) {
				if (++i >= argc) {
					fprintf(stderr, "hpcops-mount: --%s needs a value (%s)\n",
					        d->name, d->arg);
					return -1;
				}
				val = argv[i];
			}
		} else if (a[0] == '-' && a[1] && !a[2]) {
			for (size_t k = 0; k < sizeof(opt_table) / sizeof(opt_table[0]); k++)
				if (opt_table[k].short_name == a[1])
					d = &opt_table[k];
			if (!d) {
				fprintf(stderr, "hpcops-mount: unknown option %s (see --help)\n",
				        a);
				return -1;
			}
			if (d->type != OPT_FLAG) {
				if (++i >= argc) {
					fprintf(stderr, "hpcops-mount: -%c needs a value (%s)\n",
					        d->short_name, d->arg);
					return -1;
				}
				val = argv[i];
			}
		} else {
			if (npos == 2) {
				fprintf(stderr,
				        "hpcops-mount: unexpected argument '%s': only "
				        "BUCKET[:PREFIX/] and DIR are positional\n",
				        a);
				return -1;
			}
			pos[npos++] = a;
			continue;
		}
		if (opt_set(o, d, val) < 0)
			return -1;
	}
	if (npos != 2) {
		fprintf(stderr, "hpcops-mount: need BUCKET[:PREFIX/] and DIR\n\n");
		usage(stderr);
		return -1;
	}
	o->bucket = strdup(pos[0]);
	o->mountpoint = realpath(pos[1], NULL);
	if (!o->bucket)
		return -1;
	if (!o->mountpoint) {
		fprintf(stderr, "hpcops-mount: mount point %s: %s (create the directory first)\n",
		        pos[1], strerror(errno));
		return -1;
	}
	colon = strchr(o->bucket, ':');
	prefix = NULL;
	if (colon) {
		*colon = '\0';
		prefix = colon + 1;
		if (o->prefix && *prefix) {
			fprintf(stderr, "hpcops-mount: give the prefix once: BUCKET:PREFIX/ or "
			                "--prefix, not both\n");
			return -1;
		}
	}
	if (!valid_bucket(o->bucket)) {
		fprintf(stderr,
		        "hpcops-mount: '%s' is not a valid bucket name (3-63 letters, "
		        "digits, '-', '.')\n",
		        o->bucket);
		return -1;
	}
	if (prefix && *prefix) {
		free(o->prefix);
		o->prefix = strdup(prefix);
	}
	if (!o->prefix)
		o->prefix = strdup("");
	if (!o->prefix)
		return -1;
	if (*o->prefix) {
		size_t n = strlen(o->prefix);

		if (o->prefix[0] == '/' || o->prefix[n - 1] != '/' || strstr(o->prefix, "//")) {
			fprintf(stderr,
			        "hpcops-mount: prefix '%s' must end in '/' and not start "
			        "with one, e.g. results/run1/\n",
			        o->prefix);
			return -1;
		}
	}
	if (o->read_part_size < 1 * MIB || o->read_part_size > 1024 * MIB) {
		fprintf(stderr, "hpcops-mount: --read-part-size must be between 1M and 1G\n");
		return -1;
	}
	if (o->write_part_size < 5 * MIB || o->write_part_size > 5120 * MIB) {
		fprintf(stderr, "hpcops-mount: --write-part-size must be between 5M and 5G "
		                "(S3's part size limits)\n");
		return -1;
	}
	if (o->memory_limit < 16 * MIB) {
		fprintf(stderr, "hpcops-mount: --memory-limit must be at least 16 (MiB)\n");
		return -1;
	}
	return 0;
}

/* ---- the bucket check ---- */

/* Explain a failed check: what went wrong and what to do. */
static void explain_check_failure(const struct fs_options *o, const struct s3_error *e,
                                  const char *endpoint)
{
	char msg[2048];

	fprintf(stderr, "%s\n", check_explain(e, o->bucket, o->prefix, endpoint, msg, sizeof(msg)));
}

/*
 * The bucket check runs on an engine of its own whose retry budget and
 * stall timeout are the check's bound (--check-timeout), so a server that
 * is down or accepts and never answers is reported in seconds, not after
 * the long budget that file operations get to ride out an outage.
 */
static struct s3_client *check_client(struct hpcops_fs *fs, const struct s3_config *sc,
                                      const struct xfer_config *xc, struct xfer_engine **xe)
{
	struct xfer_config c = *xc;
	struct s3_config s = *sc;
	long ms = (long)(fs->opt.check_timeout * 1000.0);

	c.max_connections = 2;
	c.retry.budget_ms = ms > 0 ? ms : 1;
	c.low_speed_time = fs->opt.check_timeout >= 1 ? (long)fs->opt.check_timeout : 1;
	*xe = xfer_engine_new(&c);
	if (!*xe)
		return NULL;
	s.xfer = *xe;
	return s3_client_new(&s);
}

static int check_bucket(struct hpcops_fs *fs, struct s3_client *s3, const char *endpoint)
{
	struct s3_list_params p = {.prefix = fs->opt.prefix, .max_keys = 1};
	struct s3_list_page page;
	struct s3_error err;

	memset(&page, 0, sizeof(page));
	memset(&err, 0, sizeof(err));
	if (fs->creds) {
		struct creds c = {0};
		struct creds_error ce;

		memset(&ce, 0, sizeof(ce));
		if (creds_get(fs->creds, &c, &ce) < 0) {
			if (ce.err == CREDS_ERR_NOT_FOUND) {
				err.err = S3_ERR_NO_CREDENTIALS;
				snprintf(err.message, sizeof(err.message), "%.255s", ce.message);
				explain_check_failure(&fs->opt, &err, endpoint);
			} else {
				fprintf(stderr,
				        "hpcops-mount: cannot get AWS credentials: %s: %s\n",
				        creds_strerror(ce.err), ce.message);
			}
			return -1;
		}
		creds_clear(&c);
	}
	if (s3_list_objects(s3, &p, &page, &err) < 0) {
		explain_check_failure(&fs->opt, &err, endpoint);
		return -1;
	}
	s3_list_page_free(&page);
	return 0;
}

/* ---- process setup ---- */

static int setup_log(const struct fs_options *o, bool detached)
{
	int level = o->debug ? LOG_DEBUG : LOG_INFO;

	if (o->log_directory) {
		char path[PATH_MAX];
		char stamp[32];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H-%M-%SZ", &tm);
		if (mkdir(o->log_directory, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "hpcops-mount: cannot create log directory %s: %s\n",
			        o->log_directory, strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path), "%s/hpcops-mount-%s-%d.log", o->log_directory, stamp,
		         (int)getpid());
		if (log_init(LOG_DEST_FILE, path, "hpcops-mount", level) < 0) {
			fprintf(stderr, "hpcops-mount: cannot open log file %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
		return 0;
	}
	log_init(detached ? LOG_DEST_SYSLOG : LOG_DEST_STDERR, NULL, "hpcops-mount", level);
	return 0;
}

static struct fuse_session *new_session(struct hpcops_fs *fs)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	char buf[512];

	if (fuse_opt_add_arg(&args, "hpcops-mount") < 0)
		goto out;
	snprintf(buf, sizeof(buf), "-ofsname=%s%s%s,subtype=hpcops-mount,default_permissions",
	         fs->opt.bucket, *fs->opt.prefix ? ":" : "", fs->opt.prefix);
	if (fuse_opt_add_arg(&args, buf) < 0)
		goto out;
	if (fs->opt.allow_other && fuse_opt_add_arg(&args, "-oallow_other") < 0)
		goto out;
	if (fs->opt.allow_root && fuse_opt_add_arg(&args, "-oallow_root") < 0)
		goto out;
	if (fs->opt.auto_unmount && fuse_opt_add_arg(&args, "-oauto_unmount") < 0)
		goto out;
	if (fs->opt.read_only && fuse_opt_add_arg(&args, "-oro") < 0)
		goto out;
	if (fs->opt.debug && getenv("HPCOPS_FUSE_DEBUG") && fuse_opt_add_arg(&args, "-d") < 0)
		goto out;
	se = fuse_session_new(&args, &fs_fuse_ops, sizeof(fs_fuse_ops), fs);
out:
	fuse_opt_free_args(&args);
	return se;
}

/*
 * Raise the kernel's readahead of this mount so sequential reads arrive as
 * large requests (the fuse default is 128 KiB). Best effort: needs root.
 * Finds the mount's device number in /proc/self/mountinfo without touching
 * the mount itself (a stat() would need the session loop to be running).
 */
static void raise_readahead(const char *mountpoint, unsigned int kb)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	unsigned int maj = 0, min = 0;
	bool found = false;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		unsigned int a, b;

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, mp) == 3 &&
		    !strcmp(mp, mountpoint) && strstr(line, "fuse.hpcops-mount")) {
			maj = a;
			min = b;
			found = true;
		}
	}
	fclose(f);
	if (!found)
		return;
	snprintf(line, sizeof(line), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	f = fopen(line, "w");
	if (!f)
		return;
	fprintf(f, "%u\n", kb);
	fclose(f);
}

/* The pipe to the waiting parent: one status byte, then it exits with it. */
static int report_fd = -1;

static void report_parent(unsigned char status)
{
	if (report_fd < 0)
		return;
	if (write(report_fd, &status, 1) < 0) {
		/* the parent is gone: nothing to tell */
	}
	close(report_fd);
	report_fd = -1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Runs in the process that serves the mount. Returns the exit status. */
static int serve(struct hpcops_fs *fs, bool detached)
{
	struct fs_options *o = &fs->opt;
	struct xfer_config xc = {0};
	struct creds_options co = {0};
	struct s3_config sc = {0};
	struct fuse_loop_config *lc = NULL;
	char region[64];
	const char *endpoint;
	char endpoint_buf[256];
	bool mounted = false;
	int rc = 1;

	if (setup_log(o, detached) < 0)
		goto out;
	xc.ca_bundle = o->ca_bundle;
	xc.max_connections = 64;
	retry_policy_defaults(&xc.retry);
	xc.retry.budget_ms = (long)(o->max_retry_duration * 1000.0);
	{
		char why[160];

		if (retry_policy_from_env(&xc.retry, why, sizeof(why)) < 0) {
			fprintf(stderr, "hpcops-mount: %s\n", why);
			goto out;
		}
	}
	fs->xfer = xfer_engine_new(&xc);
	if (!fs->xfer) {
		fprintf(stderr,
		        "hpcops-mount: cannot start the transfer engine (out of memory?)\n");
		goto out;
	}
	co.profile = o->profile;
	co.region = o->region;
	co.xfer = fs->xfer;
	co.ca_bundle = o->ca_bundle;
	{
		/* test hook: renew temporary keys this many seconds before they expire */
		const char *ra = getenv("HPCOPS_CREDS_REFRESH_AHEAD");

		if (ra && atoi(ra) > 0)
			co.refresh_ahead_s = atoi(ra);
	}
	fs->creds = creds_provider_new(&co);
	if (!fs->creds)
		goto out;
	creds_region(fs->creds, region, sizeof(region));
	if (o->no_sign_request) {
		creds_provider_free(fs->creds);
		fs->creds = NULL;
	}
	sc.endpoint = o->endpoint_url;
	sc.region = o->region ? o->region : region;
	sc.bucket = o->bucket;
	sc.force_path_style = o->force_path_style;
	sc.no_sign = o->no_sign_request;
	sc.creds = fs->creds;
	sc.xfer = fs->xfer;
	fs->s3 = s3_client_new(&sc);
	if (!fs->s3) {
		fprintf(stderr, "hpcops-mount: cannot create the S3 client (out of memory?)\n");
		goto out;
	}
	if (o->endpoint_url) {
		endpoint = o->endpoint_url;
	} else {
		snprintf(endpoint_buf, sizeof(endpoint_buf), "the S3 endpoint of region %s",
		         sc.region);
		endpoint = endpoint_buf;
	}
	{
		struct xfer_engine *cxe = NULL;
		struct s3_client *cs3 = check_client(fs, &sc, &xc, &cxe);
		int crc = cs3 ? check_bucket(fs, cs3, endpoint) : -1;

		s3_client_free(cs3);
		xfer_engine_free(cxe);
		if (crc < 0)
			goto out;
	}
	fs->be = fs_backend_s3(fs->s3, &xc.retry);
	if (fs_setup(fs) < 0)
		goto out;
	fs->se = new_session(fs);
	if (!fs->se) {
		fprintf(stderr, "hpcops-mount: cannot create the FUSE session (is /dev/fuse "
		                "there and the fuse module loaded?)\n");
		goto out;
	}
	fuse_ops_attach(fs);
	if (fuse_set_signal_handlers(fs->se) < 0)
		goto out;
	if (fuse_session_mount(fs->se, o->mountpoint) < 0) {
		fprintf(stderr,
		        "hpcops-mount: cannot mount on %s (is it an existing directory, "
		        "not already mounted; for --allow-other, is user_allow_other in "
		        "/etc/fuse.conf?)\n",
		        o->mountpoint);
		goto out;
	}
	mounted = true;
	raise_readahead(o->mountpoint, 4096);
	log_notice("mounted s3://%s/%s on %s", o->bucket, o->prefix, o->mountpoint);
	if (detached) {
		report_parent(0);
		detach_stdio();
	} else if (report_fd >= 0) {
		report_parent(0);
	}
	lc = fuse_loop_cfg_create();
	if (!lc)
		goto out;
	fuse_loop_cfg_set_max_threads(lc, (unsigned int)o->max_threads);
	fuse_loop_cfg_set_idle_threads(lc, (unsigned int)(o->max_threads / 2 + 1));
	fuse_loop_cfg_set_clone_fd(lc, 0);
	rc = fuse_session_loop_mt(fs->se, lc) ? 1 : 0;
	log_notice("unmounting %s", o->mountpoint);
out:
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (fs->se) {
		if (mounted)
			fuse_session_unmount(fs->se);
		fuse_remove_signal_handlers(fs->se);
		fuse_ops_detach(fs);
		fuse_session_destroy(fs->se);
		fs->se = NULL;
	}
	/* handles never released, and aborts still owed, while the engine runs */
	fs_shutdown(fs);
	/* GETs still in flight complete (cancelled) before their buffers' budget goes */
	xfer_engine_free(fs->xfer);
	fs->xfer = NULL;
	fs_teardown(fs);
	s3_client_free(fs->s3);
	creds_provider_free(fs->creds);
	report_parent(1);
	log_close();
	return rc;
}

int main(int argc, char **argv)
{
	struct hpcops_fs fs;
	int rc, pfd[2];
	pid_t pid;

	memset(&fs, 0, sizeof(fs));
	opt_defaults(&fs.opt);
	rc = opt_parse(&fs.opt, argc, argv);
	if (rc != 0) {
		opt_free(&fs.opt);
		return rc > 0 ? 0 : 2;
	}
	if (fs.opt.foreground) {
		rc = serve(&fs, false);
		opt_free(&fs.opt);
		return rc;
	}
	/*
	 * Detach first, before any thread exists (threads do not survive a
	 * fork); the parent waits until the child reports the mount live or
	 * dies, and exits with that outcome, so a failed check exits non-zero
	 * with the child's message on our stderr and no mount left behind.
	 */
	if (pipe(pfd) < 0) {
		perror("hpcops-mount: pipe");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("hpcops-mount: fork");
		return 1;
	}
	if (pid > 0) {
		unsigned char st = 1;
		ssize_t n;

		close(pfd[1]);
		do {
			n = read(pfd[0], &st, 1);
		} while (n < 0 && errno == EINTR);
		if (n != 1) {
			int ws;

			waitpid(pid, &ws, 0);
			st = 1;
		} else if (st != 0) {
			int ws;

			waitpid(pid, &ws, 0);
		}
		opt_free(&fs.opt);
		return st;
	}
	close(pfd[0]);
	report_fd = pfd[1];
	setsid();
	if (chdir("/") < 0) {
		/* harmless: paths are absolute */
	}
	rc = serve(&fs, true);
	opt_free(&fs.opt);
	return rc;
}

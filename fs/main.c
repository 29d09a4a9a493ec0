/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hpcops-mount: maps an S3 bucket as a POSIX filesystem with FUSE3.
 * This file: the bucket check before mounting, detaching only once the
 * mount is live, and the FUSE session. The command line is options.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_bucket.h"
#include "check.h"
#include "creds.h"
#include "fs.h"
#include "fs_setup.h"
#include "log.h"
#include "fs_metrics.h"
#include "fuse_ops.h"
#include "metrics.h"
#include "retry.h"
#include "s3.h"
#include "xfer.h"

/* ---- the bucket check ---- */

/* Explain a failed check: what went wrong and what to do. */
static void explain_check_failure(const struct fs_options *o, const struct s3_error *e,
                                  const char *endpoint)
{
	char msg[2048];

	fprintf(
	    stderr, "%s\n",
	    check_explain(e, o->bucket, o->prefix, endpoint, o->check_timeout, msg, sizeof(msg)));
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

/*
 * --cache-xz: the cache bucket must be there and listable before the
 * mount goes live, as mount-s3 refuses a cache bucket it cannot use; a
 * wrong name would otherwise only show as a log line and a cache that
 * never hits.
 */
static int check_cache_bucket(struct hpcops_fs *fs, struct s3_client *s3, const char *endpoint)
{
	struct s3_list_params p = {.prefix = CACHE_BUCKET_PREFIX, .max_keys = 1};
	struct s3_list_page page;
	struct s3_error err;
	char msg[2048];
	const char *why;

	memset(&page, 0, sizeof(page));
	memset(&err, 0, sizeof(err));
	if (s3_list_objects(s3, &p, &page, &err) == 0) {
		s3_list_page_free(&page);
		return 0;
	}
	why = check_explain(&err, fs->opt.cache_xz, "", endpoint, fs->opt.check_timeout, msg,
	                    sizeof(msg));
	if (!strncmp(why, "hpcops-mount: ", 14))
		why += 14;
	fprintf(stderr, "hpcops-mount: --cache-xz %s: the shared cache bucket cannot be used: %s\n",
	        fs->opt.cache_xz, why);
	return -1;
}

/*
 * The cache bucket's client: the source's endpoint, credentials, engine
 * and checksums, but none of what belongs to the mounted bucket: its
 * owner (--expected-bucket-owner), who pays (--requester-pays) and the
 * storage class of new objects (cache blocks are scratch, and a cold class
 * would make them unreadable). --sse applies: blocks are the source's data.
 */
static struct s3_config cache_bucket_config(const struct s3_config *source, const char *bucket)
{
	struct s3_config c = *source;

	c.bucket = bucket;
	c.storage_class = NULL;
	c.requester_pays = false;
	c.expected_bucket_owner = NULL;
	return c;
}

/* ---- process setup ---- */

static int setup_log(const struct fs_options *o, bool detached)
{
	/* --debug, --no-log (-1: nothing kept) and MOUNTPOINT_LOG, resolved by options.c */
	int level = o->log_level;

	log_set_format(o->log_format == FS_LOG_JSON       ? LOG_FORMAT_JSON
	               : o->log_format == FS_LOG_KEYVALUE ? LOG_FORMAT_KEYVALUE
	                                                  : LOG_FORMAT_TEXT);
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

/*
 * --auto-unmount and DIR is a dead FUSE mount (its daemon was killed):
 * detach it, so the new mount goes where the old one was. 0 or -1 (said).
 */
static int clean_dead_mount(const char *dir)
{
	char *argv[] = {(char *)"fusermount3", (char *)"-uz", (char *)dir, NULL};
	pid_t pid;
	int st = 0;

	if (umount2(dir, MNT_DETACH) == 0)
		goto done;
	if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr,
		        "hpcops-mount: %s is a dead FUSE mount and could not be unmounted "
		        "(fusermount3 -uz %s failed); unmount it and mount again\n",
		        dir, dir);
		return -1;
	}
done:
	log_notice("%s was a dead FUSE mount (its daemon had gone): unmounted it first "
	           "(--auto-unmount)",
	           dir);
	return 0;
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
	char *endpoint_url = NULL;
	struct metrics *reg = NULL;
	bool mounted = false;
	int rc = 1;

	if (setup_log(o, detached) < 0)
		goto out;
	xc.ca_bundle = o->ca_bundle;
	xc.max_connections = 64;
	retry_policy_defaults(&xc.retry);
	xc.retry.budget_ms = (long)(o->max_retry_duration * 1000.0);
	xc.retry.max_attempts = o->max_attempts; /* AWS_MAX_ATTEMPTS; 0 = only the budget */
	xc.retry.mode = o->retry_mode == FS_RETRY_ADAPTIVE ? RETRY_ADAPTIVE
	                : o->retry_mode == FS_RETRY_LEGACY ? RETRY_LEGACY
	                                                   : RETRY_STANDARD;
	xc.user_agent = o->user_agent; /* --user-agent-prefix; NULL = hpcops/VERSION */
	xc.interfaces = (const char *const *)o->bind; /* --bind, used in turn */
	if (o->maximum_throughput_gbps) {
		/* about one connection per 100 Mbit/s of the target, as the AWS CRT sizes them */
		uint64_t c = o->maximum_throughput_gbps * 10;

		xc.max_connections = c < 8 ? 8 : c > 512 ? 512 : (int)c;
	}
	reg = fs_metrics_registry_new();
	if (!reg) {
		fprintf(stderr, "hpcops-mount: out of memory\n");
		goto out;
	}
	xc.metrics = reg;
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
	sc.region = o->region ? o->region : region;
	/* --endpoint-url, AWS_ENDPOINT_URL_S3, --dual-stack, --transfer-acceleration */
	if (fs_options_endpoint(o, sc.region, &endpoint_url, NULL, endpoint_buf,
	                        sizeof(endpoint_buf)) < 0) {
		fprintf(stderr, "hpcops-mount: Failed to create S3 client: %s\n", endpoint_buf);
		goto out;
	}
	sc.endpoint = endpoint_url;
	sc.bucket = o->bucket;
	sc.force_path_style = o->force_path_style;
	sc.no_sign = o->no_sign_request;
	sc.creds = fs->creds;
	sc.xfer = fs->xfer;
	sc.storage_class = o->storage_class;
	sc.sse = o->sse;
	sc.sse_kms_key_id = o->sse_kms_key_id;
	sc.requester_pays = o->requester_pays;
	sc.expected_bucket_owner = o->expected_bucket_owner;
	sc.checksum = o->upload_checksums == FS_CHECKSUM_CRC64NVME ? S3_CHECKSUM_CRC64NVME
	              : o->upload_checksums == FS_CHECKSUM_OFF     ? S3_CHECKSUM_NONE
	              : o->upload_checksums == FS_CHECKSUM_MD5     ? S3_CHECKSUM_MD5
	                                                           : S3_CHECKSUM_CRC32C;
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
	if (o->cache_xz) {
		struct s3_config cc = cache_bucket_config(&sc, o->cache_xz);
		struct xfer_engine *cxe = NULL;
		struct s3_client *cs3;
		int crc;

		fs->cache_s3 = s3_client_new(&cc);
		if (!fs->cache_s3) {
			fprintf(stderr,
			        "hpcops-mount: cannot create the S3 client (out of memory?)\n");
			goto out;
		}
		cs3 = check_client(fs, &cc, &xc, &cxe);
		crc = cs3 ? check_cache_bucket(fs, cs3, endpoint) : -1;
		s3_client_free(cs3);
		xfer_engine_free(cxe);
		if (crc < 0)
			goto out;
		fs->cache_be = fs_backend_s3(fs->cache_s3, &xc.retry);
	}
	fs->be = fs_backend_s3(fs->s3, &xc.retry);
	if (o->incremental_upload && !fs_options_is_directory_bucket(o))
		/* as mount-s3: it mounts, and every upload fails */
		fs->upload_refusal = "--incremental-upload works only with directory buckets (S3 "
		                     "Express One Zone); this is a general-purpose bucket";
	if (fs_setup(fs) < 0)
		goto out;
	fs->metrics = fs_metrics_start(fs, reg);
	if (!fs->metrics)
		goto out;
	fs_metrics_install_signals();
	fs->se = new_session(fs);
	if (!fs->se) {
		fprintf(stderr, "hpcops-mount: cannot create the FUSE session (is /dev/fuse "
		                "there and the fuse module loaded?)\n");
		goto out;
	}
	fuse_ops_attach(fs);
	if (fuse_set_signal_handlers(fs->se) < 0)
		goto out;
	if (o->dead_mount && clean_dead_mount(o->mountpoint) < 0)
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
	/*
	 * Handles never released, while the engine runs; then the last metrics
	 * (the modules they read still up: the ticker too read them until now),
	 * then the aborts still owed.
	 */
	fs_close_handles(fs);
	fs_metrics_stop(fs->metrics);
	fs->metrics = NULL;
	fs_shutdown(fs);
	/* GETs still in flight complete (cancelled) before their buffers' budget goes */
	xfer_engine_free(fs->xfer);
	fs->xfer = NULL;
	fs_teardown(fs);
	s3_client_free(fs->s3);
	s3_client_free(fs->cache_s3);
	creds_provider_free(fs->creds);
	metrics_free(reg); /* last: the engine and the clients counted in it */
	free(endpoint_url);
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
	fs_options_init(&fs.opt);
	rc = fs_options_parse(&fs.opt, argc, argv);
	if (rc != FS_OPTIONS_MOUNT) {
		fs_options_free(&fs.opt);
		return rc;
	}
	if (fs.opt.foreground) {
		rc = serve(&fs, false);
		fs_options_free(&fs.opt);
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
		fs_options_free(&fs.opt);
		return st;
	}
	close(pfd[0]);
	report_fd = pfd[1];
	setsid();
	if (chdir("/") < 0) {
		/* harmless: paths are absolute */
	}
	rc = serve(&fs, true);
	fs_options_free(&fs.opt);
	return rc;
}

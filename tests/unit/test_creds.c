/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_creds: the parts of the credential chain that need no network:
 * environment, shared credentials/config files and profiles, the errors a
 * user meets, region order, and that secrets never reach the log.
 * IMDS is disabled (AWS_EC2_METADATA_DISABLED) and HOME is a temp dir.
 */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "creds.h"
#include "creds_private.h"
#include "log.h"
#include "sts.h"
#include "util.h"

static char tmpdir[256];

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
};

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	char path[512];

	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hpcops-test-creds-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("HOME", tmpdir, 1);
	snprintf(path, sizeof(path), "%s/.aws", tmpdir);
	mkdir(path, 0700);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char credentials_file[] = "# comment\n"
                                       "[default]\n"
                                       "aws_access_key_id = AKIADEFAULT\n"
                                       "aws_secret_access_key = secret-default\n"
                                       "\n"
                                       "[dev]\r\n"
                                       "AWS_ACCESS_KEY_ID=AKIADEV\r\n"
                                       "aws_secret_access_key =   secret-dev  \r\n"
                                       "aws_session_token = token-dev\r\n"
                                       "; another comment\n"
                                       "[half]\n"
                                       "aws_access_key_id = AKIAHALF\n";

static const char config_file[] = "[default]\n"
                                  "region = eu-central-1\n"
                                  "[profile   dev ]\n"
                                  "region = ap-south-1\n"
                                  "s3 =\n"
                                  "  region = not-this-one\n"
                                  "  max_concurrent_requests = 4\n"
                                  "output = json\n"
                                  "[profile onlyconfig]\n"
                                  "aws_access_key_id = AKIACONFIG\n"
                                  "aws_secret_access_key = secret-config\n"
                                  "[profile norole]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/x\n"
                                  "[profile badsource]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/x\n"
                                  "source_profile = ghost\n"
                                  "[profile both]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/x\n"
                                  "source_profile = dev\n"
                                  "credential_source = Environment\n"
                                  "[profile weird]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/x\n"
                                  "credential_source = Mars\n"
                                  "[profile loop-a]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/a\n"
                                  "source_profile = loop-b\n"
                                  "[profile loop-b]\n"
                                  "role_arn = arn:aws:iam::123456789012:role/b\n"
                                  "source_profile = loop-a\n";

static void write_aws_files(void)
{
	write_file(".aws/credentials", credentials_file);
	write_file(".aws/config", config_file);
}

static void expect_get(const char *profile, const char *akid, const char *secret, const char *token,
                       const char *source)
{
	struct creds_options o = {.profile = profile};
	struct creds_provider *p = creds_provider_new(&o);
	struct creds c;
	struct creds_error e;

	assert_non_null(p);
	if (creds_get(p, &c, &e))
		fail_msg("creds_get: %s", e.message);
	assert_string_equal(c.access_key_id, akid);
	assert_string_equal(c.secret_access_key, secret);
	if (token)
		assert_string_equal(c.session_token, token);
	else
		assert_null(c.session_token);
	assert_string_equal(c.source, source);
	creds_clear(&c);
	creds_clear(&c);
	creds_provider_free(p);
}

static void expect_error(const char *profile, enum creds_err code, const char *needle1,
                         const char *needle2)
{
	struct creds_options o = {.profile = profile};
	struct creds_provider *p = creds_provider_new(&o);
	struct creds c;
	struct creds_error e;

	assert_non_null(p);
	if (creds_get(p, &c, &e) == 0)
		fail_msg("profile %s: expected an error, got key %s from %s",
		         profile ? profile : "(none)", c.access_key_id, c.source);
	assert_null(c.access_key_id);
	assert_int_equal(e.err, code);
	if (!strstr(e.message, needle1) || (needle2 && !strstr(e.message, needle2)))
		fail_msg("message '%s' lacks '%s' / '%s'", e.message, needle1,
		         needle2 ? needle2 : "");
	creds_provider_free(p);
}

static void ini_parsing(void **state)
{
	char path[512];
	char *v;

	write_aws_files();
	snprintf(path, sizeof(path), "%s/.aws/config", tmpdir);
	v = creds_ini_get(path, "profile dev", "region");
	assert_string_equal(v, "ap-south-1");
	free(v);
	/* indented sub-settings are not the profile's own keys */
	v = creds_ini_get(path, "profile dev", "max_concurrent_requests");
	assert_null(v);
	v = creds_ini_get(path, "profile dev", "output");
	assert_string_equal(v, "json");
	free(v);
	assert_null(creds_ini_get(path, "profile dev", "nope"));
	assert_null(creds_ini_get(path, "profile ghost", "region"));
	assert_null(creds_ini_get("/nonexistent/file", "default", "region"));

	snprintf(path, sizeof(path), "%s/.aws/credentials", tmpdir);
	/* CRLF line ends, key case, whitespace around values */
	v = creds_ini_get(path, "dev", "aws_access_key_id");
	assert_string_equal(v, "AKIADEV");
	free(v);
	v = creds_ini_get(path, "dev", "aws_secret_access_key");
	assert_string_equal(v, "secret-dev");
	free(v);

	/* credentials file first, then "[profile x]" in config, "[default]" in both */
	v = creds_profile_get("dev", "region");
	assert_string_equal(v, "ap-south-1");
	free(v);
	v = creds_profile_get("default", "region");
	assert_string_equal(v, "eu-central-1");
	free(v);
	v = creds_profile_get("onlyconfig", "aws_access_key_id");
	assert_string_equal(v, "AKIACONFIG");
	free(v);
}

static void env_then_profiles(void **state)
{
	write_aws_files();
	expect_get(NULL, "AKIADEFAULT", "secret-default", NULL, "profile");
	expect_get("dev", "AKIADEV", "secret-dev", "token-dev", "profile");
	expect_get("onlyconfig", "AKIACONFIG", "secret-config", NULL, "profile");

	setenv("AWS_PROFILE", "dev", 1);
	expect_get(NULL, "AKIADEV", "secret-dev", "token-dev", "profile");

	/* environment keys beat AWS_PROFILE ... */
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
	expect_get(NULL, "AKIAENV", "secret-env", NULL, "env");
	setenv("AWS_SESSION_TOKEN", "token-env", 1);
	expect_get(NULL, "AKIAENV", "secret-env", "token-env", "env");
	/* ... but an explicit --profile beats the environment (AWS CLI rule) */
	expect_get("onlyconfig", "AKIACONFIG", "secret-config", NULL, "profile");

	/* other file locations */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	write_file("elsewhere",
	           "[default]\naws_access_key_id=AKIAELSE\naws_secret_access_key=s-else\n");
	{
		char path[512];
		snprintf(path, sizeof(path), "%s/elsewhere", tmpdir);
		setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	}
	expect_get(NULL, "AKIAELSE", "s-else", NULL, "profile");
}

static void errors_explain(void **state)
{
	/* nothing anywhere */
	expect_error(NULL, CREDS_ERR_NOT_FOUND, "no AWS credentials found", "AWS_ACCESS_KEY_ID");
	/* container credentials over plain http only to loopback or the ECS/EKS agent */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example.com/creds", 1);
	expect_error(NULL, CREDS_ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

	write_aws_files();
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	expect_error(NULL, CREDS_ERR_CONFIG, "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID");
	unsetenv("AWS_ACCESS_KEY_ID");

	expect_error("ghost", CREDS_ERR_CONFIG, "profile 'ghost'", "--profile");
	setenv("AWS_PROFILE", "ghost2", 1);
	expect_error(NULL, CREDS_ERR_CONFIG, "profile 'ghost2'", "AWS_PROFILE");
	unsetenv("AWS_PROFILE");

	expect_error("half", CREDS_ERR_CONFIG, "aws_secret_access_key", "half");
	expect_error("norole", CREDS_ERR_CONFIG, "source_profile", "credential_source");
	expect_error("badsource", CREDS_ERR_CONFIG, "ghost", "does not exist");
	expect_error("both", CREDS_ERR_CONFIG, "both source_profile and credential_source", NULL);
	expect_error("weird", CREDS_ERR_CONFIG, "Mars", "Ec2InstanceMetadata");
	expect_error("loop-a", CREDS_ERR_CONFIG, "circular", NULL);

	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web", 1);
	expect_error("default", CREDS_ERR_CONFIG, "/nonexistent/token", "web identity");
}

static void region_order(void **state)
{
	struct creds_options o = {0};
	struct creds_provider *p;
	char r[64];

	/* nothing: the default */
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "us-east-1");
	creds_provider_free(p);

	write_aws_files();
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "eu-central-1");
	creds_provider_free(p);

	o.profile = "dev";
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "ap-south-1");
	creds_provider_free(p);

	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "us-west-1");
	creds_provider_free(p);

	setenv("AWS_REGION", "us-west-2", 1);
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "us-west-2");
	creds_provider_free(p);

	o.region = "sa-east-1";
	p = creds_provider_new(&o);
	creds_region(p, r, sizeof(r));
	assert_string_equal(r, "sa-east-1");
	creds_provider_free(p);
}

static void static_provider_and_copies(void **state)
{
	struct creds_provider *p = creds_provider_new_static("AKIASTATIC", "s-static", "t-static");
	struct creds a, b;
	struct creds_error e;

	assert_non_null(p);
	assert_int_equal(creds_get(p, &a, &e), 0);
	assert_int_equal(creds_get(p, &b, &e), 0);
	/* each caller owns an independent copy */
	assert_ptr_not_equal(a.secret_access_key, b.secret_access_key);
	assert_string_equal(a.secret_access_key, "s-static");
	assert_string_equal(b.session_token, "t-static");
	creds_clear(&a);
	assert_string_equal(b.access_key_id, "AKIASTATIC");
	creds_invalidate(p); /* static keys cannot be forgotten */
	creds_clear(&b);
	assert_int_equal(creds_get(p, &b, &e), 0);
	assert_string_equal(b.access_key_id, "AKIASTATIC");
	creds_clear(&b);
	creds_provider_free(p);
	assert_null(creds_provider_new_static(NULL, "x", NULL));
}

struct race {
	struct creds_provider *p;
	int ok;
};

static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 200; i++) {
		struct creds c;
		struct creds_error e;
		if (creds_get(r->p, &c, &e) == 0 && !strcmp(c.secret_access_key, "secret-dev"))
			r->ok++;
		creds_clear(&c);
		if (i % 50 == 0)
			creds_invalidate(r->p);
	}
	return NULL;
}

static void concurrent_gets(void **state)
{
	struct creds_options o = {.profile = "dev"};
	struct race r[4];
	pthread_t t[4];
	struct creds_provider *p;

	write_aws_files();
	p = creds_provider_new(&o);
	for (int i = 0; i < 4; i++) {
		r[i].p = p;
		r[i].ok = 0;
		pthread_create(&t[i], NULL, racer, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].ok, 200);
	}
	creds_provider_free(p);
}

/* Run resolutions at LOG_DEBUG into a file; the secrets must not be in it. */
static void secrets_stay_out_of_logs(void **state)
{
	char logpath[512];
	char *text;
	static const char *const secrets[] = {"secret-default", "secret-dev",    "token-dev",
	                                      "secret-env-XYZ", "token-env-XYZ", "secret-config"};

	snprintf(logpath, sizeof(logpath), "%s/log.txt", tmpdir);
	assert_int_equal(log_init(LOG_DEST_FILE, logpath, "test_creds", LOG_DEBUG), 0);
	write_aws_files();
	expect_get(NULL, "AKIADEFAULT", "secret-default", NULL, "profile");
	expect_get("dev", "AKIADEV", "secret-dev", "token-dev", "profile");
	expect_error("half", CREDS_ERR_CONFIG, "half", NULL);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENVLOG", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-env-XYZ", 1);
	setenv("AWS_SESSION_TOKEN", "token-env-XYZ", 1);
	expect_get(NULL, "AKIAENVLOG", "secret-env-XYZ", "token-env-XYZ", "env");
	unsetenv("AWS_ACCESS_KEY_ID");
	expect_error(NULL, CREDS_ERR_CONFIG, "AWS_ACCESS_KEY_ID", NULL);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	{
		struct creds_options o = {.profile = "onlyconfig"};
		struct creds_provider *p = creds_provider_new(&o);
		char r[64];
		creds_region(p, r, sizeof(r));
		creds_provider_free(p);
	}
	log_close();
	log_init(LOG_DEST_STDERR, NULL, "test_creds", LOG_WARNING);

	text = util_read_file(logpath, 1 << 20);
	assert_non_null(text);
	/* the log did record the resolutions, by key id */
	assert_non_null(strstr(text, "AKIADEFAULT"));
	assert_non_null(strstr(text, "AKIADEV"));
	assert_non_null(strstr(text, "AKIAENVLOG"));
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(text, secrets[i]))
			fail_msg("secret '%s' found in the log:\n%s", secrets[i], text);
	free(text);
}

static void sts_error_documents(void **state)
{
	static const char doc[] =
	    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	    "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
	    "<Message>User: arn:aws:iam::1:user/x is not authorized to perform: "
	    "sts:AssumeRole</Message></Error>"
	    "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>";
	struct sts_error e = {0};
	struct sts_config cfg = {0};
	struct sts_assume_params ap = {.role_arn = "deployer"};
	struct creds out;
	char buf[600];

	assert_int_equal(sts_parse_error(doc, sizeof(doc) - 1, &e), 0);
	assert_string_equal(e.code, "AccessDenied");
	assert_non_null(strstr(e.message, "not authorized"));
	assert_string_equal(e.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
	e.http_status = 403;
	sts_error_format(&e, buf, sizeof(buf));
	assert_non_null(strstr(buf, "AccessDenied"));
	assert_non_null(strstr(buf, "HTTP 403"));
	assert_non_null(strstr(buf, "c6104cbe"));

	assert_int_equal(sts_parse_error("<html>oops</html>", 17, &e), -1);
	assert_string_equal(e.code, "");
	assert_int_equal(sts_parse_error("not xml at all", 14, &e), -1);

	/* bad input is refused before any request, with what to do */
	assert_int_equal(sts_assume_role(&cfg, NULL, &ap, &out, &e), -1);
	assert_int_equal(e.err, STS_ERR_INVALID);
	assert_non_null(strstr(e.message, "arn:aws:iam::"));
	ap.role_arn = NULL;
	assert_int_equal(sts_assume_role_with_web_identity(&cfg, &ap, &out, &e), -1);
	assert_non_null(strstr(e.message, "role_arn"));
	ap.role_arn = "arn:aws:iam::123456789012:role/x";
	assert_int_equal(sts_assume_role_with_web_identity(&cfg, &ap, &out, &e), -1);
	assert_non_null(strstr(e.message, "token"));
	ap.web_identity_token = "t";
	ap.duration_s = 99999;
	assert_int_equal(sts_assume_role_with_web_identity(&cfg, &ap, &out, &e), -1);
	assert_non_null(strstr(e.message, "900..43200"));
}

/* ---- background renewal, with a source that is slow on purpose ---- */

static struct {
	pthread_mutex_t m;
	int calls;
	int life_s;  /* life of each set handed out */
	int hang_ms; /* how long resolutions after the first take */
	bool fail;   /* resolutions after the first fail */
} slow = {.m = PTHREAD_MUTEX_INITIALIZER};

static int slow_resolve(struct creds_provider *p, struct creds *out, struct creds_error *err)
{
	char akid[32];
	int n;

	bool fail;
	int hang_ms, life_s;

	pthread_mutex_lock(&slow.m);
	n = ++slow.calls;
	fail = slow.fail;
	hang_ms = slow.hang_ms;
	life_s = slow.life_s;
	pthread_mutex_unlock(&slow.m);
	if (n > 1) {
		usleep((useconds_t)hang_ms * 1000);
		if (fail) {
			creds_set_err(err, CREDS_ERR_NETWORK, "the test source is down");
			return -1;
		}
	}
	snprintf(akid, sizeof(akid), "ASIASLOW%d", n);
	if (creds_set(out, akid, "s-slow", "t-slow", time(NULL) + life_s, "slow"))
		return -1;
	return 1;
}

static const struct creds_source slow_source = {"slow test source", slow_resolve};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A renewal that hangs for seconds never stalls a get while the keys are valid. */
static void renewal_in_background_never_blocks(void **state)
{
	/* the default window (0): at most half a set's life */
	struct creds_options o = {.refresh_ahead_s = 0};
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	double worst = 0;

	slow.calls = 0;
	slow.life_s = 8; /* renewed at half life, 4 s after the first get */
	slow.hang_ms = 2000;
	slow.fail = false;
	p = creds_provider_new_source(&o, &slow_source);
	assert_non_null(p);
	assert_int_equal(creds_get(p, &c, &e), 0);
	assert_string_equal(c.access_key_id, "ASIASLOW1");
	creds_clear(&c);
	/* for 6.5 s: the renewal starts at 4 s and hangs 2 s; every get is instant */
	for (double t0 = now_s(); now_s() - t0 < 6.5;) {
		double a = now_s(), d;

		assert_int_equal(creds_get(p, &c, &e), 0);
		d = now_s() - a;
		if (d > worst)
			worst = d;
		creds_clear(&c);
		usleep(20000);
	}
	assert_true(worst < 0.1);
	/* and the renewed set is in use afterwards */
	assert_int_equal(creds_get(p, &c, &e), 0);
	assert_string_equal(c.access_key_id, "ASIASLOW2");
	creds_clear(&c);
	creds_provider_free(p);
}

/* A failing renewal keeps the valid set; it is replaced once the source is back. */
static void failing_renewal_keeps_the_valid_set(void **state)
{
	struct creds_options o = {.refresh_ahead_s = 0};
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	int n;

	slow.calls = 0;
	slow.life_s = 8; /* renewed after 4 s, retried every 1 s near the end */
	slow.hang_ms = 10;
	slow.fail = true;
	p = creds_provider_new_source(&o, &slow_source);
	assert_non_null(p);
	assert_int_equal(creds_get(p, &c, &e), 0);
	creds_clear(&c);
	sleep(5);
	pthread_mutex_lock(&slow.m);
	n = slow.calls;
	pthread_mutex_unlock(&slow.m);
	assert_true(n >= 2); /* the renewal was tried and failed */
	assert_int_equal(creds_get(p, &c, &e), 0);
	assert_string_equal(c.access_key_id, "ASIASLOW1");
	creds_clear(&c);
	pthread_mutex_lock(&slow.m);
	slow.fail = false;
	pthread_mutex_unlock(&slow.m);
	sleep(2);
	assert_int_equal(creds_get(p, &c, &e), 0);
	assert_string_not_equal(c.access_key_id, "ASIASLOW1");
	creds_clear(&c);
	creds_provider_free(p);
}

/*
 * A secret file's buffer holds the text and zeros, nothing else: it is
 * wiped only as far as the text goes, so stale heap bytes past it (here a
 * freed block full of 'S', as another secret freed unwiped would be) must
 * not come back in it. Found by fuzz_creds_ini: an 8192-byte text block
 * freed with an earlier input's secret in its tail.
 */
static void secret_file_buffer_holds_only_the_text(void **state)
{
	char path[512], text[301];
	void *junk[64];
	size_t len = 0, size;
	char *got;

	memset(text, 'k', 300);
	text[300] = '\0';
	write_file("secret", text);
	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	for (int round = 0; round < 4; round++) {
		/* blocks of every size the buffer grows through, dirty and freed */
		for (size_t i = 0; i < 64; i++) {
			junk[i] = malloc((size_t)256 << (i % 2));
			assert_non_null(junk[i]);
			memset(junk[i], 'S', (size_t)256 << (i % 2));
		}
		for (size_t i = 0; i < 64; i++)
			free(junk[i]);
		got = util_read_secret_file(path, 4096, &len);
		assert_non_null(got);
		assert_int_equal(len, 300);
		assert_memory_equal(got, text, 301);
		size = malloc_usable_size(got);
		for (size_t i = len + 1; i < size; i++)
			if (got[i]) {
				fail_msg("byte %zu of %zu past the text is 0x%02x, not 0", i, size,
				         (unsigned char)got[i]);
			}
		util_free_secret_len(got, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(ini_parsing, setup, teardown),
	    cmocka_unit_test_setup_teardown(env_then_profiles, setup, teardown),
	    cmocka_unit_test_setup_teardown(errors_explain, setup, teardown),
	    cmocka_unit_test_setup_teardown(region_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(static_provider_and_copies, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_gets, setup, teardown),
	    cmocka_unit_test_setup_teardown(secrets_stay_out_of_logs, setup, teardown),
	    cmocka_unit_test_setup_teardown(secret_file_buffer_holds_only_the_text, setup,
	                                    teardown),
	    cmocka_unit_test(sts_error_documents),
	    cmocka_unit_test(renewal_in_background_never_blocks),
	    cmocka_unit_test(failing_renewal_keeps_the_valid_set),
	};

	log_init(LOG_DEST_STDERR, NULL, "test_creds", LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_creds_chain: the credential chain's network sources through the real
 * code path (creds.c -> sts.c/xfer.c -> HTTP) against tests/doubles/
 * creds_double.py on loopback: IMDSv2, container credentials, web identity,
 * AssumeRole (the double checks the SigV4 signature), renewal before expiry,
 * and no secret in a LOG_DEBUG log of the whole run.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "creds.h"
#include "log.h"
#include "util.h"

#ifndef HPCOPS_TEST_SOURCE_ROOT
#define HPCOPS_TEST_SOURCE_ROOT "."
#endif

#define PYTHON          "/usr/bin/python3"
#define CALLER_AKID     "AKIACALLER0001"
#define CALLER_SECRET   "SECRET-caller-0001-static"
#define CONTAINER_TOKEN "container-auth-0001"
#define WEB_TOKEN       "WEBTOKEN-eyJhbGciOi-0001"

static char tmpdir[256];
static char logpath[300];
static pid_t double_pid;
static int double_port;
static char base_url[64];

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
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
    "AWS_EC2_METADATA_DISABLED",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST",
};

static void tmp_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	tmp_path(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- the double ---- */

static int start_double(void)
{
	const char *root = getenv("HPCOPS_SOURCE_ROOT");
	char script[1024], tokfile[512], line[64];
	int fds[2];
	FILE *f;

	snprintf(script, sizeof(script), "%s/tests/doubles/creds_double.py",
	         root && *root ? root : HPCOPS_TEST_SOURCE_ROOT);
	tmp_path(tokfile, sizeof(tokfile), "web-token");
	if (pipe(fds))
		return -1;
	double_pid = fork();
	if (double_pid < 0)
		return -1;
	if (double_pid == 0) {
		/* the double dies with the test, even if the test is killed */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(PYTHON, PYTHON, script, "--expiry", "3600", "--region", "eu-north-1",
		      "--caller", CALLER_AKID ":" CALLER_SECRET, "--container-token",
		      CONTAINER_TOKEN, "--web-token-file", tokfile, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "PORT %d", &double_port) != 1) {
		fprintf(stderr, "creds_double.py did not start (%s)\n", script);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", double_port);
	return 0;
}

static void stop_double(void)
{
	if (double_pid > 0) {
		kill(double_pid, SIGTERM);
		waitpid(double_pid, NULL, 0);
		double_pid = 0;
	}
}

static size_t collect(void *data, size_t size, size_t n, void *user)
{
	return util_buf_append(user, data, size * n) ? 0 : size * n;
}

static char *double_get(const char *path)
{
	CURL *c = curl_easy_init();
	struct util_buf b = {0};
	char url[256];
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	assert_int_equal(code, 200);
	curl_easy_cleanup(c);
	return util_buf_steal(&b);
}

static int stat_of(const char *name)
{
	char *text = double_get("/_double/stats");
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	int v;

	assert_non_null(j);
	assert_true(json_is_integer(json_object_get(j, name)));
	v = (int)json_integer_value(json_object_get(j, name));
	json_decref(j);
	free(text);
	return v;
}

static void double_set(const char *query)
{
	char path[128];

	snprintf(path, sizeof(path), "/_double/set?%s", query);
	free(double_get(path));
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	char path[512];
	const char *req = getenv("HPCOPS_REQUIRE_SERVERS");

	if (access(PYTHON, X_OK)) {
		fprintf(stderr, "test_creds_chain: %s missing\n", PYTHON);
		exit(req && !strcmp(req, "1") ? 1 : 77);
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hpcops-test-chain-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	tmp_path(path, sizeof(path), ".aws");
	mkdir(path, 0700);
	write_file("web-token", WEB_TOKEN "\n");
	tmp_path(logpath, sizeof(logpath), "debug.log");
	if (log_init(LOG_DEST_FILE, logpath, "test_creds_chain", LOG_DEBUG))
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return start_double();
}

static int group_teardown(void **state)
{
	char cmd[600];

	stop_double();
	log_close();
	curl_global_cleanup();
	if (getenv("HPCOPS_KEEP_TMP")) {
		fprintf(stderr, "test_creds_chain: kept %s (HPCOPS_KEEP_TMP)\n", tmpdir);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
	setenv("HOME", tmpdir, 1);
	/* nothing may reach the real 169.254.169.254 from a test */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	{
		char p[512];
		tmp_path(p, sizeof(p), ".aws/config");
		unlink(p);
		tmp_path(p, sizeof(p), ".aws/credentials");
		unlink(p);
	}
	double_set("expiry=3600&fail=0");
	return 0;
}

static void use_imds(void)
{
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base_url, 1);
}

static void use_sts(void)
{
	setenv("AWS_ENDPOINT_URL_STS", base_url, 1);
}

static struct creds_provider *provider(const char *profile)
{
	struct creds_options o = {.profile = profile, .timeout_ms = 5000};
	struct creds_provider *p = creds_provider_new(&o);

	assert_non_null(p);
	return p;
}

static void get_ok(struct creds_provider *p, struct creds *c)
{
	struct creds_error e;

	if (creds_get(p, c, &e))
		fail_msg("creds_get failed: %s", e.message);
	assert_non_null(c->access_key_id);
	assert_non_null(c->secret_access_key);
}

/* ---- tests ---- */

static void imds_v2_credentials_and_region(void **state)
{
	struct creds_provider *p;
	struct creds c;
	char region[64];
	int puts0 = stat_of("imds_token_put"), creds0 = stat_of("imds_creds");
	int unauth0 = stat_of("imds_unauthorized");
	time_t now = time(NULL);

	use_imds();
	p = provider(NULL);
	get_ok(p, &c);
	assert_string_equal(c.source, "imds");
	assert_memory_equal(c.access_key_id, "ASIAIMDS", 8);
	assert_memory_equal(c.secret_access_key, "SECRET-imds-", 12);
	assert_non_null(c.session_token);
	/* the double said "expires in 3600 s" */
	assert_true(c.expiration >= now + 3500 && c.expiration <= now + 3700);
	assert_int_equal(stat_of("imds_creds"), creds0 + 1);
	assert_true(stat_of("imds_token_put") > puts0);
	/* every metadata GET carried a valid session token */
	assert_int_equal(stat_of("imds_unauthorized"), unauth0);
	creds_clear(&c);

	creds_region(p, region, sizeof(region));
	assert_string_equal(region, "eu-north-1");
	creds_provider_free(p);

	/* AWS_REGION beats IMDS */
	setenv("AWS_REGION", "ca-central-1", 1);
	p = provider(NULL);
	creds_region(p, region, sizeof(region));
	assert_string_equal(region, "ca-central-1");
	creds_provider_free(p);
}

static void imds_disabled_finds_nothing(void **state)
{
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	int puts0 = stat_of("imds_token_put");

	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base_url, 1);
	/* setup() left AWS_EC2_METADATA_DISABLED=true */
	p = provider(NULL);
	assert_int_equal(creds_get(p, &c, &e), -1);
	assert_int_equal(e.err, CREDS_ERR_NOT_FOUND);
	assert_non_null(strstr(e.message, "AWS_ACCESS_KEY_ID"));
	assert_non_null(strstr(e.message, "AWS_EC2_METADATA_DISABLED"));
	assert_int_equal(stat_of("imds_token_put"), puts0);
	creds_provider_free(p);
}

static void container_relative_uri_with_token(void **state)
{
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	char host[64];
	int n0 = stat_of("container"), bad0 = stat_of("container_unauthorized");

	snprintf(host, sizeof(host), "127.0.0.1:%d", double_port);
	setenv("HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST", host, 1);
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-1234", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
	p = provider(NULL);
	get_ok(p, &c);
	assert_string_equal(c.source, "container");
	assert_memory_equal(c.access_key_id, "ASIACONTAI", 10);
	assert_int_equal(stat_of("container"), n0 + 1);
	creds_clear(&c);
	creds_provider_free(p);

	/* a wrong token is refused, and the message says what to check */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-the-token", 1);
	p = provider(NULL);
	assert_int_equal(creds_get(p, &c, &e), -1);
	assert_int_equal(e.err, CREDS_ERR_REMOTE);
	assert_non_null(strstr(e.message, "401"));
	assert_non_null(strstr(e.message, "AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	assert_int_equal(stat_of("container_unauthorized"), bad0 + 1);
	creds_provider_free(p);
}

static void container_full_uri_with_token_file(void **state)
{
	struct creds_provider *p;
	struct creds c;
	char url[128], tok[512];
	int n0 = stat_of("container");

	snprintf(url, sizeof(url), "%s/container/creds", base_url);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	write_file("container-token", CONTAINER_TOKEN "\n");
	tmp_path(tok, sizeof(tok), "container-token");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tok, 1);
	/* the file wins over the variable */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale", 1);
	p = provider(NULL);
	get_ok(p, &c);
	assert_string_equal(c.source, "container");
	assert_int_equal(stat_of("container"), n0 + 1);
	creds_clear(&c);
	creds_provider_free(p);
}

static void web_identity_through_sts(void **state)
{
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	char tok[512];
	int n0 = stat_of("assume_role_web_identity");

	use_sts();
	setenv("AWS_REGION", "eu-north-1", 1);
	tmp_path(tok, sizeof(tok), "web-token");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci-runner", 1);
	setenv("AWS_ROLE_SESSION_NAME", "hpcops-ci", 1);
	p = provider(NULL);
	get_ok(p, &c);
	assert_string_equal(c.source, "web-identity");
	assert_memory_equal(c.access_key_id, "ASIAWEB", 7);
	assert_non_null(c.session_token);
	assert_true(c.expiration > time(NULL));
	assert_int_equal(stat_of("assume_role_web_identity"), n0 + 1);
	creds_clear(&c);
	creds_provider_free(p);

	/* a token the IdP did not issue: STS's error comes through with its code */
	write_file("bad-token", "WEBTOKEN-forged\n");
	tmp_path(tok, sizeof(tok), "bad-token");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
	p = provider(NULL);
	assert_int_equal(creds_get(p, &c, &e), -1);
	assert_int_equal(e.err, CREDS_ERR_REMOTE);
	assert_non_null(strstr(e.message, "InvalidIdentityToken"));
	creds_provider_free(p);
}

static void assume_role_from_source_profile(void **state)
{
	struct creds_provider *p;
	struct creds c;
	struct creds_error e;
	int n0 = stat_of("assume_role"), rej0 = stat_of("sts_rejected");

	use_sts();
	write_file(".aws/credentials", "[base]\n"
	                               "aws_access_key_id = " CALLER_AKID "\n"
	                               "aws_secret_access_key = " CALLER_SECRET "\n"
	                               "[wrong]\n"
	                               "aws_access_key_id = " CALLER_AKID "\n"
	                               "aws_secret_access_key = SECRET-not-the-right-one\n");
	write_file(".aws/config", "[profile deployer]\n"
	                          "region = eu-north-1\n"
	                          "role_arn = arn:aws:iam::123456789012:role/deployer\n"
	                          "source_profile = base\n"
	                          "role_session_name = hpcops-test\n"
	                          "duration_seconds = 900\n"
	                          "[profile badkey]\n"
	                          "region = eu-north-1\n"
	                          "role_arn = arn:aws:iam::123456789012:role/deployer\n"
	                          "source_profile = wrong\n");
	p = provider("deployer");
	get_ok(p, &c);
	assert_string_equal(c.source, "assume-role");
	assert_memory_equal(c.access_key_id, "ASIAROLE", 8);
	assert_int_equal(stat_of("assume_role"), n0 + 1);
	creds_clear(&c);
	creds_provider_free(p);

	/* the double checks the signature: a wrong secret is refused */
	p = provider("badkey");
	assert_int_equal(creds_get(p, &c, &e), -1);
	assert_int_equal(e.err, CREDS_ERR_REMOTE);
	assert_non_null(strstr(e.message, "SignatureDoesNotMatch"));
	assert_non_null(strstr(e.message, "badkey"));
	assert_int_equal(stat_of("assume_role"), n0 + 1);
	assert_int_equal(stat_of("sts_rejected"), rej0 + 1);
	creds_provider_free(p);
}

static void assume_role_from_instance_metadata(void **state)
{
	struct creds_provider *p;
	struct creds c;
	int n0 = stat_of("assume_role"), i0 = stat_of("imds_creds");

	use_sts();
	use_imds();
	/* no region anywhere but IMDS: STS is signed for the IMDS region */
	write_file(".aws/config", "[default]\n"
	                          "role_arn = arn:aws:iam::123456789012:role/teardown\n"
	                          "credential_source = Ec2InstanceMetadata\n");
	p = provider(NULL);
	get_ok(p, &c);
	assert_string_equal(c.source, "assume-role");
	/* signed with the IMDS key and its session token, which the double verified */
	assert_int_equal(stat_of("imds_creds"), i0 + 1);
	assert_int_equal(stat_of("assume_role"), n0 + 1);
	creds_clear(&c);
	creds_provider_free(p);
}

/* Wait up to 5 s for the double's counter @name to pass @than. */
static bool wait_stat_above(const char *name, int than)
{
	for (int i = 0; i < 100; i++) {
		if (stat_of(name) > than)
			return true;
		usleep(50000);
	}
	return false;
}

static void renewal_ahead_of_expiry(void **state)
{
	struct creds_provider *p;
	struct creds a, b;
	int i0 = stat_of("imds_creds");

	use_imds();
	/*
	 * 4 s of life: renewed in the background at half of it, while gets
	 * hand out the cached set without asking IMDS themselves.
	 */
	double_set("expiry=4");
	p = provider(NULL);
	get_ok(p, &a);
	assert_int_equal(stat_of("imds_creds"), i0 + 1);
	get_ok(p, &b);
	assert_string_equal(a.access_key_id, b.access_key_id);
	assert_int_equal(stat_of("imds_creds"), i0 + 1);
	creds_clear(&b);
	assert_true(wait_stat_above("imds_creds", i0 + 1));
	get_ok(p, &b);
	assert_string_not_equal(a.access_key_id, b.access_key_id);
	assert_string_not_equal(a.secret_access_key, b.secret_access_key);
	creds_clear(&a);
	creds_clear(&b);
	creds_provider_free(p);

	/* an hour left: the cached set is handed out without asking again */
	double_set("expiry=3600");
	i0 = stat_of("imds_creds");
	p = provider(NULL);
	get_ok(p, &a);
	get_ok(p, &b);
	assert_string_equal(a.access_key_id, b.access_key_id);
	assert_int_equal(stat_of("imds_creds"), i0 + 1);
	/* ... until told they are bad */
	creds_invalidate(p);
	creds_clear(&b);
	get_ok(p, &b);
	assert_string_not_equal(a.access_key_id, b.access_key_id);
	assert_int_equal(stat_of("imds_creds"), i0 + 2);
	creds_clear(&a);
	creds_clear(&b);
	creds_provider_free(p);
}

static void imds_session_token_reused_and_renewed(void **state)
{
	struct creds_provider *p;
	struct creds c;
	int puts0 = stat_of("imds_token_put"), unauth0 = stat_of("imds_unauthorized");

	use_imds();
	p = provider(NULL);
	get_ok(p, &c);
	creds_clear(&c);
	assert_int_equal(stat_of("imds_token_put"), puts0 + 1);
	/* one session token serves later metadata requests */
	creds_invalidate(p);
	get_ok(p, &c);
	creds_clear(&c);
	assert_int_equal(stat_of("imds_token_put"), puts0 + 1);
	/* a revoked token is answered 401: a new one is fetched and the call goes on */
	double_set("revoke=1");
	creds_invalidate(p);
	get_ok(p, &c);
	assert_string_equal(c.source, "imds");
	creds_clear(&c);
	assert_int_equal(stat_of("imds_unauthorized"), unauth0 + 1);
	assert_int_equal(stat_of("imds_token_put"), puts0 + 2);
	creds_provider_free(p);
}

static void renewal_of_assumed_role(void **state)
{
	struct creds_provider *p;
	struct creds a, b;
	int n0 = stat_of("assume_role");

	use_sts();
	setenv("AWS_REGION", "eu-north-1", 1);
	write_file(".aws/credentials", "[base]\n"
	                               "aws_access_key_id = " CALLER_AKID "\n"
	                               "aws_secret_access_key = " CALLER_SECRET "\n");
	write_file(".aws/config", "[profile r]\n"
	                          "role_arn = arn:aws:iam::123456789012:role/r\n"
	                          "source_profile = base\n");
	double_set("expiry=4");
	p = provider("r");
	get_ok(p, &a);
	assert_true(wait_stat_above("assume_role", n0 + 1));
	get_ok(p, &b);
	assert_string_not_equal(a.access_key_id, b.access_key_id);
	creds_clear(&a);
	creds_clear(&b);
	creds_provider_free(p);
}

static void failed_renewal_keeps_valid_credentials(void **state)
{
	struct creds_provider *p;
	struct creds a, b;
	int r0;

	use_imds();
	double_set("expiry=8");
	p = provider(NULL);
	get_ok(p, &a);
	/* IMDS now fails; the cached set is still valid for a few seconds */
	double_set("fail=1");
	r0 = stat_of("imds_requests");
	/* the background renewal (at half life, 4 s) tries and fails ... */
	assert_true(wait_stat_above("imds_requests", r0));
	/* ... and a get still answers at once with the valid set */
	get_ok(p, &b);
	assert_string_equal(a.access_key_id, b.access_key_id);
	assert_string_equal(a.secret_access_key, b.secret_access_key);
	creds_clear(&b);
	/* invalidation (what a client does on ExpiredToken) forces a renewal */
	double_set("fail=0");
	creds_invalidate(p);
	get_ok(p, &b);
	assert_string_not_equal(a.access_key_id, b.access_key_id);
	creds_clear(&a);
	creds_clear(&b);
	creds_provider_free(p);
}

struct racer {
	struct creds_provider *p;
	int ok;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 5; i++) {
		struct creds c;
		struct creds_error e;
		if (creds_get(r->p, &c, &e) == 0 && c.secret_access_key &&
		    !strncmp(c.secret_access_key, "SECRET-imds-", 12))
			r->ok++;
		creds_clear(&c);
		usleep(300000); /* renewals (every second) happen between the gets */
	}
	return NULL;
}

static void concurrent_renewals(void **state)
{
	struct creds_provider *p;
	struct racer r[4];
	pthread_t t[4];

	use_imds();
	double_set("expiry=2");
	p = provider(NULL);
	for (int i = 0; i < 4; i++) {
		r[i].p = p;
		r[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].ok, 5);
	}
	creds_provider_free(p);
}

/* Last: everything above logged at LOG_DEBUG; no secret may be in it. */
static void no_secret_in_debug_log(void **state)
{
	char *text;

	text = util_read_file(logpath, 16 << 20);
	assert_non_null(text);
	/* the log did see the keys (by id) and the requests */
	assert_non_null(strstr(text, "ASIAIMDS"));
	assert_non_null(strstr(text, "ASIAROLE"));
	assert_non_null(strstr(text, CALLER_AKID));
	if (strstr(text, "SECRET-") || strstr(text, "TOKEN-") || strstr(text, CONTAINER_TOKEN) ||
	    strstr(text, "imds-session-"))
		fail_msg("a secret reached the log:\n%s", text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(imds_v2_credentials_and_region, setup),
	    cmocka_unit_test_setup(imds_disabled_finds_nothing, setup),
	    cmocka_unit_test_setup(container_relative_uri_with_token, setup),
	    cmocka_unit_test_setup(container_full_uri_with_token_file, setup),
	    cmocka_unit_test_setup(web_identity_through_sts, setup),
	    cmocka_unit_test_setup(assume_role_from_source_profile, setup),
	    cmocka_unit_test_setup(assume_role_from_instance_metadata, setup),
	    cmocka_unit_test_setup(renewal_ahead_of_expiry, setup),
	    cmocka_unit_test_setup(imds_session_token_reused_and_renewed, setup),
	    cmocka_unit_test_setup(renewal_of_assumed_role, setup),
	    cmocka_unit_test_setup(failed_renewal_keeps_valid_credentials, setup),
	    cmocka_unit_test_setup(concurrent_renewals, setup),
	    cmocka_unit_test(no_secret_in_debug_log),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

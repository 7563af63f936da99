/* Unit tests for backend/creds.c: the providers, the chain's choice and
 * refresh rule (with an injected clock), credential_process failures
 * whose messages must never carry a secret, and constant-time equality.
 * The fake credential_process is tests/fixtures/aws/credproc.sh; every
 * secret its failing modes print contains "LEAKED-SECRET". */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
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

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "tests/testutil.h"

/* short: paths built from it always fit */
static char tmpdir[32];

/* 2026-11-25T10:00:00Z */
#define EXP_STR "2026-11-25T10:00:00Z"
#define EXP_T ((time_t)1795600800)

struct fake_clock {
	time_t now;
};

static time_t fake_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->now;
}

static int setup(void **state)
{
	(void)state;
	tu_clear_aws_env();
	return tu_home_new(tmpdir, sizeof(tmpdir), "creds");
}

static int teardown(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

/* name in tmpdir; two static buffers used in turn, so that two calls
 * can be arguments of one printf. */
static const char *tmp_path(const char *name)
{
	static char path[2][128];
	static int turn;

	turn = !turn;
	snprintf(path[turn], sizeof(path[turn]), "%s/%s", tmpdir, name);
	return path[turn];
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(tmp_path(name), "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void use_files(const char *config, const char *credentials)
{
	if (config) {
		write_file("config", config);
		setenv("AWS_CONFIG_FILE", tmp_path("config"), 1);
	}
	if (credentials) {
		write_file("credentials", credentials);
		setenv("AWS_SHARED_CREDENTIALS_FILE",
		       tmp_path("credentials"), 1);
	}
}

static void use_fixture_files(void)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/aws/config", tu_fixtures());
	setenv("AWS_CONFIG_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/aws/credentials", tu_fixtures());
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
}

/* "exec sh '<fixtures>/aws/credproc.sh' ARGS"; static.  exec, so that
 * the script's own death by a signal is what the provider sees. */
static const char *credproc(const char *args)
{
	static char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), "exec sh '%s/aws/credproc.sh' %s",
		 tu_fixtures(),
		 args);
	return cmd;
}

/* A config file whose default profile runs credproc.sh ARGS. */
static void use_process(const char *args)
{
	char text[PATH_MAX * 3];

	snprintf(text, sizeof(text), "[default]\ncredential_process = %s\n",
		 credproc(args));
	use_files(text, "");
}

static int read_count(void)
{
	FILE *f = fopen(tmp_path("count"), "r");
	int n = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

struct fixture {
	struct awscfg *cfg;
	struct creds_chain *ch;
	struct dbuf why;
};

static void chain_open(struct fixture *fx, const char *profile)
{
	int rc;

	dbuf_init(&fx->why, DBUF_CAP_SMALL);
	rc = awscfg_load(&fx->cfg, profile, &fx->why);
	if (rc)
		fail_msg("awscfg_load: %d: %s", rc, dbuf_str(&fx->why));
	assert_int_equal(creds_chain_new(&fx->ch, fx->cfg), 0);
}

static void chain_close(struct fixture *fx)
{
	creds_chain_free(fx->ch);
	awscfg_free(fx->cfg);
	dbuf_free(&fx->why);
}

static void get_ok(struct fixture *fx, struct creds *c)
{
	int rc;

	dbuf_reset(&fx->why);
	rc = creds_get(fx->ch, c, &fx->why);
	if (rc)
		fail_msg("creds_get: %d: %s", rc, dbuf_str(&fx->why));
}

static void assert_no_secret(const char *msg)
{
	if (strstr(msg, "LEAKED-SECRET"))
		fail_msg("a secret leaked into: %s", msg);
}

static void test_env_provider(void **state)
{
	struct fixture fx;
	struct creds c;

	(void)state;
	use_fixture_files(); /* has keys for default too: env comes first */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDENV");
	assert_string_equal(c.secret_key, "env-secret");
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 0);
	assert_string_equal(c.source, "env");
	creds_clear(&c);
	chain_close(&fx);

	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.session_token, "env-token");
	creds_clear(&c);
	chain_close(&fx);
}

static void test_env_partial(void **state)
{
	struct fixture fx;
	struct creds c;

	(void)state;
	use_fixture_files();
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	chain_open(&fx, NULL);
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -EINVAL);
	assert_string_equal(dbuf_str(&fx.why),
			    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
	assert_null(c.access_key);
	chain_close(&fx);

	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SECRET_ACCESS_KEY", "LEAKED-SECRET-env", 1);
	chain_open(&fx, NULL);
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -EINVAL);
	assert_string_equal(dbuf_str(&fx.why),
			    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
	chain_close(&fx);
}

static void test_profile_provider(void **state)
{
	struct fixture fx;
	struct creds c;
	char expect[PATH_MAX * 2];

	(void)state;
	use_fixture_files();

	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.source, "profile");
	creds_clear(&c);
	chain_close(&fx);

	/* The credentials file's pair wins over the config file's. */
	setenv("AWS_PROFILE", "dev", 1);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCREDSDEV");
	assert_string_equal(c.secret_key, "creds-dev-secret");
	assert_string_equal(c.session_token, "creds-dev-token");
	creds_clear(&c);
	chain_close(&fx);

	/* Config-file keys when the credentials file has none. */
	setenv("AWS_PROFILE", "cfgonly", 1);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCFGONLY");
	creds_clear(&c);
	chain_close(&fx);

	/* A key without its secret is an error that says so. */
	setenv("AWS_PROFILE", "partial", 1);
	chain_open(&fx, NULL);
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -EINVAL);
	snprintf(expect, sizeof(expect),
		 "profile 'partial' in %s has aws_access_key_id but no aws_secret_access_key",
		 getenv("AWS_SHARED_CREDENTIALS_FILE"));
	assert_string_equal(dbuf_str(&fx.why), expect);
	chain_close(&fx);
}

static void test_option_profile_skips_env(void **state)
{
	struct fixture fx;
	struct creds c;

	(void)state;
	use_fixture_files();
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);

	/* -o profile=dev: the environment's keys are not looked at. */
	chain_open(&fx, "dev");
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCREDSDEV");
	creds_clear(&c);
	chain_close(&fx);

	/* AWS_PROFILE=dev: the environment's keys still come first. */
	setenv("AWS_PROFILE", "dev", 1);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDENV");
	creds_clear(&c);
	chain_close(&fx);

	/* Even a broken environment does not matter under -o profile=. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	chain_open(&fx, "dev");
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCREDSDEV");
	creds_clear(&c);
	chain_close(&fx);
}

static void test_no_credentials(void **state)
{
	struct fixture fx;
	struct creds c;
	char expect[PATH_MAX * 2];

	(void)state;
	chain_open(&fx, NULL);
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -ENOKEY);
	snprintf(expect, sizeof(expect),
		 "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add keys for profile 'default' to %s/.aws/credentials",
		 tmpdir);
	assert_string_equal(dbuf_str(&fx.why), expect);
	assert_null(c.access_key);
	chain_close(&fx);

	/* Under -o profile= the environment is not offered. */
	use_files("[profile empty]\nregion = us-east-1\n", NULL);
	chain_open(&fx, "empty");
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -ENOKEY);
	snprintf(expect, sizeof(expect),
		 "no credentials: add keys for profile 'empty' to %s/.aws/credentials",
		 tmpdir);
	assert_string_equal(dbuf_str(&fx.why), expect);
	chain_close(&fx);
}

static void test_process_provider(void **state)
{
	struct fixture fx;
	struct creds c;

	(void)state;
	use_process("ok " EXP_STR);
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDPROCESS");
	assert_string_equal(c.secret_key, "proc-secret");
	assert_string_equal(c.session_token, "proc-token");
	assert_int_equal(c.expiration, EXP_T);
	assert_string_equal(c.source, "process");
	creds_clear(&c);
	chain_close(&fx);

	/* Static keys in the profile come before credential_process. */
	use_files(NULL, "[default]\naws_access_key_id = AKIDSTATIC\n"
			"aws_secret_access_key = static-secret\n");
	chain_open(&fx, NULL);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDSTATIC");
	creds_clear(&c);
	chain_close(&fx);
}

static void test_expiration_formats(void **state)
{
	static const struct {
		const char *text;
		time_t t;
	} ok[] = {
		{ "2026-11-25T10:00:00Z", EXP_T },
		{ "2026-11-25T10:00:00.123456Z", EXP_T },
		{ "2026-11-25T12:00:00+02:00", EXP_T },
		{ "2026-11-25T05:30:00-0430", EXP_T },
		{ "2026-11-25t10:00:00.5z", EXP_T },
		{ "2024-02-29T00:00:00Z", 1709164800 },
		{ "", 0 }, /* no Expiration: does not expire */
	};
	static const char *const bad[] = {
		"2026-11-25T10:00:00",	   /* no zone */
		"2026-11-25 10:00",	   /* no seconds */
		"2026-13-01T00:00:00Z",	   /* month */
		"2025-02-29T00:00:00Z",	   /* not a leap year */
		"2026-11-25T10:00:00.Z",   /* empty fraction */
		"2026-11-25T10:00:00Zjunk",
		"2026-11-25T10:00:00+2",
	};
	struct creds_provider *p;
	struct creds c;
	struct dbuf why;
	char args[128];
	size_t i;
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(args, sizeof(args), "ok '%s'", ok[i].text);
		p = creds_process_provider_new(credproc(args));
		assert_non_null(p);
		dbuf_reset(&why);
		rc = p->fetch(p, &c, &why);
		if (rc)
			fail_msg("%s: %d: %s", ok[i].text, rc, dbuf_str(&why));
		assert_int_equal(c.expiration, ok[i].t);
		creds_clear(&c);
		p->free(p);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(args, sizeof(args), "ok '%s'", bad[i]);
		p = creds_process_provider_new(credproc(args));
		dbuf_reset(&why);
		rc = p->fetch(p, &c, &why);
		if (rc != -EPROTO)
			fail_msg("%s: accepted (%d)", bad[i], rc);
		assert_non_null(strstr(dbuf_str(&why), "Expiration"));
		assert_null(c.access_key);
		p->free(p);
	}
	dbuf_free(&why);
}

static void test_process_failures_keep_secrets(void **state)
{
	static const struct {
		const char *mode;
		int rc;
		const char *msg;
	} cases[] = {
		{ "fail", -EIO, "credential_process exited with status 3" },
		{ "signal", -EIO, "credential_process was killed by signal 9" },
		{ "badjson", -EPROTO,
		  "credential_process output is not valid JSON (line 1, column " },
		{ "nosecret", -EPROTO,
		  "credential_process output has no SecretAccessKey string" },
		{ "v2", -EPROTO,
		  "credential_process output has an unsupported Version; only Version 1 is supported" },
		{ "badexp", -EPROTO,
		  "credential_process output has an Expiration that is not" },
		{ "notobject", -EPROTO,
		  "credential_process output is not a JSON object" },
		{ "big", -E2BIG, "credential_process wrote more than 64 KiB" },
		{ "nosuchmode", -EIO, "credential_process exited with status 2" },
	};
	struct creds_provider *p;
	struct creds c;
	struct dbuf why;
	size_t i;
	int rc;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = creds_process_provider_new(credproc(cases[i].mode));
		assert_non_null(p);
		dbuf_reset(&why);
		rc = p->fetch(p, &c, &why);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].mode, rc,
				 cases[i].rc, dbuf_str(&why));
		if (strncmp(dbuf_str(&why), cases[i].msg,
			    strlen(cases[i].msg)) != 0)
			fail_msg("%s: message '%s'", cases[i].mode,
				 dbuf_str(&why));
		assert_no_secret(dbuf_str(&why));
		assert_null(c.access_key);
		assert_null(c.secret_key);
		p->free(p);
	}

	/* Through the chain the message is the same, and still clean. */
	dbuf_free(&why);
	{
		struct fixture fx;

		use_process("fail");
		chain_open(&fx, NULL);
		assert_int_equal(creds_get(fx.ch, &c, &fx.why), -EIO);
		assert_string_equal(dbuf_str(&fx.why),
				    "credential_process exited with status 3");
		chain_close(&fx);
	}
}

static void test_refresh_before_expiry(void **state)
{
	struct fake_clock clk = { EXP_T - 3600 };
	struct fixture fx;
	struct creds c;
	char args[512];

	(void)state;
	snprintf(args, sizeof(args), "count '%s' " EXP_STR, tmp_path("count"));
	use_process(args);
	chain_open(&fx, NULL);
	creds_chain_set_clock(fx.ch, fake_now, &clk);

	get_ok(&fx, &c);
	assert_int_equal(read_count(), 1);
	assert_string_equal(c.access_key, "AKIDCOUNT1");
	assert_int_equal(c.expiration, EXP_T);
	creds_clear(&c);

	/* Far from expiry: served from memory, the process is not run. */
	clk.now = EXP_T - 1800;
	get_ok(&fx, &c);
	creds_clear(&c);
	clk.now = EXP_T - 301;
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCOUNT1");
	creds_clear(&c);
	assert_int_equal(read_count(), 1);

	/* Five minutes before expiry: refreshed. */
	clk.now = EXP_T - 300;
	get_ok(&fx, &c);
	assert_int_equal(read_count(), 2);
	assert_string_equal(c.access_key, "AKIDCOUNT2");
	creds_clear(&c);
	chain_close(&fx);

	/* Credentials that do not expire are never fetched again. */
	use_process("ok");
	chain_open(&fx, NULL);
	creds_chain_set_clock(fx.ch, fake_now, &clk);
	get_ok(&fx, &c);
	assert_int_equal(c.expiration, 0);
	creds_clear(&c);
	clk.now = EXP_T + 365 * 86400;
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDPROCESS");
	creds_clear(&c);
	chain_close(&fx);
}

static void test_failed_refresh_keeps_old(void **state)
{
	struct fake_clock clk = { EXP_T - 3600 };
	struct fixture fx;
	struct creds c;
	char args[512];

	(void)state;
	snprintf(args, sizeof(args), "count '%s' " EXP_STR " '%s'",
		 tmp_path("count"), tmp_path("fail"));
	use_process(args);
	chain_open(&fx, NULL);
	creds_chain_set_clock(fx.ch, fake_now, &clk);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDCOUNT1");
	creds_clear(&c);

	/* The process now fails; the old credentials are still good. */
	write_file("fail", "");
	clk.now = EXP_T - 200;
	get_ok(&fx, &c);
	assert_int_equal(read_count(), 2);
	assert_string_equal(c.access_key, "AKIDCOUNT1");
	assert_int_equal(dbuf_len(&fx.why), 0);
	creds_clear(&c);

	/* Not retried at once: a broken process is not run per request. */
	clk.now = EXP_T - 190;
	get_ok(&fx, &c);
	creds_clear(&c);
	assert_int_equal(read_count(), 2);
	clk.now = EXP_T - 150;
	get_ok(&fx, &c);
	creds_clear(&c);
	assert_int_equal(read_count(), 3);

	/* Once they have expired, the failure is the caller's. */
	clk.now = EXP_T;
	dbuf_reset(&fx.why);
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -EIO);
	assert_int_equal(read_count(), 4);
	assert_string_equal(dbuf_str(&fx.why),
			    "credential_process exited with status 1");
	assert_null(c.access_key);

	/* And the chain recovers when the process does. */
	unlink(tmp_path("fail"));
	get_ok(&fx, &c);
	assert_int_equal(read_count(), 5);
	assert_string_equal(c.access_key, "AKIDCOUNT5");
	creds_clear(&c);
	chain_close(&fx);
}

struct race {
	struct creds_chain *ch;
	int rc;
	struct creds c;
};

static void *race_get(void *arg)
{
	struct race *r = arg;
	struct dbuf why;

	dbuf_init(&why, DBUF_CAP_SMALL);
	r->rc = creds_get(r->ch, &r->c, &why);
	dbuf_free(&why);
	return NULL;
}

static void test_threads_share_one_refresh(void **state)
{
	struct fake_clock clk = { EXP_T - 3600 };
	struct race r[8];
	pthread_t t[8];
	struct fixture fx;
	char args[512];
	size_t i;

	(void)state;
	snprintf(args, sizeof(args), "count '%s' " EXP_STR, tmp_path("count"));
	use_process(args);
	chain_open(&fx, NULL);
	creds_chain_set_clock(fx.ch, fake_now, &clk);
	for (i = 0; i < 8; i++) {
		r[i].ch = fx.ch;
		assert_int_equal(pthread_create(&t[i], NULL, race_get, &r[i]),
				 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].c.access_key, "AKIDCOUNT1");
		creds_clear(&r[i].c);
	}
	/* The lock serializes: one process run served all eight. */
	assert_int_equal(read_count(), 1);
	chain_close(&fx);
}

static int fake_fetches, fake_frees;

static int fake_fetch(struct creds_provider *self, struct creds *out,
		      struct dbuf *why)
{
	(void)self;
	(void)why;
	fake_fetches++;
	memset(out, 0, sizeof(*out));
	out->access_key = strdup("AKIDFAKE");
	out->secret_key = strdup("fake-secret");
	if (!out->access_key || !out->secret_key) {
		creds_clear(out);
		return -ENOMEM;
	}
	out->expiration = EXP_T;
	return 0;
}

static int empty_fetch(struct creds_provider *self, struct creds *out,
		       struct dbuf *why)
{
	(void)self;
	(void)why;
	memset(out, 0, sizeof(*out));
	return -ENOENT;
}

static void fake_free(struct creds_provider *self)
{
	fake_frees++;
	free(self);
}

static struct creds_provider *fake_new(const char *name,
				       int (*fetch)(struct creds_provider *,
						    struct creds *,
						    struct dbuf *))
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->name = name;
	p->fetch = fetch;
	p->free = fake_free;
	return p;
}

static void test_added_provider(void **state)
{
	struct fake_clock clk = { EXP_T - 3600 };
	struct fixture fx;
	struct creds c;

	(void)state;
	fake_fetches = fake_frees = 0;
	chain_open(&fx, NULL);
	creds_chain_set_clock(fx.ch, fake_now, &clk);
	assert_int_equal(creds_chain_add(fx.ch, fake_new("imds", empty_fetch)),
			 0);

	/* A provider without a hint is still named in the message. */
	assert_int_equal(creds_get(fx.ch, &c, &fx.why), -ENOKEY);
	assert_non_null(strstr(dbuf_str(&fx.why), "(also tried: imds)"));

	/* One that has credentials is used, remembered and refreshed. */
	assert_int_equal(creds_chain_add(fx.ch, fake_new("fake", fake_fetch)),
			 0);
	get_ok(&fx, &c);
	assert_string_equal(c.access_key, "AKIDFAKE");
	assert_string_equal(c.source, "fake"); /* defaults to the name */
	creds_clear(&c);
	get_ok(&fx, &c);
	creds_clear(&c);
	assert_int_equal(fake_fetches, 1);
	clk.now = EXP_T - 10;
	get_ok(&fx, &c);
	creds_clear(&c);
	assert_int_equal(fake_fetches, 2);
	chain_close(&fx);
	assert_int_equal(fake_frees, 2);

	/* The chain takes the provider even when it cannot add it. */
	assert_int_equal(creds_chain_add(NULL, fake_new("x", fake_fetch)),
			 -EINVAL);
	assert_int_equal(fake_frees, 3);
}

static void test_creds_equal_copy_clear(void **state)
{
	struct creds a = { 0 }, b = { 0 };
	char ak[] = "AKIDEXAMPLE", sk[] = "secret", tok[] = "token";
	char sk2[] = "secreT", sk3[] = "secrets", tok2[] = "";

	(void)state;
	a.access_key = ak;
	a.secret_key = sk;
	a.session_token = tok;
	a.expiration = 42;
	a.source = "test";
	assert_int_equal(creds_copy(&b, &a), 0);
	assert_true(b.access_key != a.access_key);
	assert_int_equal(b.expiration, 42);
	assert_string_equal(b.source, "test");
	assert_int_equal(creds_equal(&a, &b), 1);

	a.secret_key = sk2; /* same length, one byte off */
	assert_int_equal(creds_equal(&a, &b), 0);
	a.secret_key = sk3; /* a prefix is not equal */
	assert_int_equal(creds_equal(&a, &b), 0);
	a.secret_key = sk;
	a.session_token = NULL; /* absent is not "" nor "token" */
	assert_int_equal(creds_equal(&a, &b), 0);
	a.session_token = tok2;
	assert_int_equal(creds_equal(&a, &b), 0);
	a.session_token = tok;
	assert_int_equal(creds_equal(&a, &b), 1);

	creds_clear(&b);
	assert_null(b.access_key);
	assert_null(b.secret_key);
	assert_null(b.session_token);
	assert_int_equal(b.expiration, 0);
	assert_null(b.source);
	creds_clear(&b); /* twice is fine */
	a.session_token = NULL;
	assert_int_equal(creds_equal(&a, &a), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env_provider, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_env_partial, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_profile_provider, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_option_profile_skips_env,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_credentials, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_process_provider, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expiration_formats, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_process_failures_keep_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_before_expiry,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_refresh_keeps_old,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_one_refresh,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_added_provider, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_creds_equal_copy_clear,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

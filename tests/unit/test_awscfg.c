/* Unit tests for backend/awscfg.c: profile selection, the INI dialect,
 * precedence of files and environment, and the error for a missing
 * explicit profile.  Every test runs with HOME in a fresh temp dir and
 * every AWS_* variable it cares about unset, so the real ~/.aws of the
 * machine never leaks in. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/awscfg.h"
#include "backend/creds.h"
#include "backend/dbuf.h"
#include "tests/testutil.h"

static char tmpdir[64]; /* short: paths built from it always fit */

static int setup(void **state)
{
	(void)state;
	tu_clear_aws_env();
	return tu_home_new(tmpdir, sizeof(tmpdir), "awscfg");
}

static int teardown(void **state)
{
	(void)state;
	return tu_rmtree(tmpdir);
}

/* Write name (relative to tmpdir) and return its full path (static). */
static const char *write_file(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void use_files(const char *config, const char *credentials)
{
	if (config)
		setenv("AWS_CONFIG_FILE", write_file("config", config), 1);
	if (credentials)
		setenv("AWS_SHARED_CREDENTIALS_FILE",
		       write_file("credentials", credentials), 1);
}

static void use_fixture_files(void)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/aws/config", tu_fixtures());
	setenv("AWS_CONFIG_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/aws/credentials", tu_fixtures());
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
}

static struct awscfg *load_ok(const char *profile)
{
	struct awscfg *cfg = NULL;
	struct dbuf why;
	int rc;

	dbuf_init(&why, DBUF_CAP_SMALL);
	rc = awscfg_load(&cfg, profile, &why);
	if (rc)
		fail_msg("awscfg_load: %d: %s", rc, dbuf_str(&why));
	assert_int_equal(dbuf_len(&why), 0);
	dbuf_free(&why);
	return cfg;
}

static void test_default_profile(void **state)
{
	struct awscfg *cfg;

	(void)state;
	use_fixture_files();
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_profile(cfg), "default");
	assert_int_equal(awscfg_profile_from_option(cfg), 0);
	assert_string_equal(awscfg_config_get(cfg, "region"), "us-west-2");
	assert_string_equal(awscfg_config_get(cfg, "output"), "json");
	assert_string_equal(awscfg_credentials_get(cfg, "aws_access_key_id"),
			    "AKIDDEFAULT");
	/* Another profile's keys are not visible. */
	assert_null(awscfg_credentials_get(cfg, "aws_session_token"));
	assert_null(awscfg_config_get(cfg, "aws_access_key_id"));
	awscfg_free(cfg);
}

static void test_profile_selection(void **state)
{
	struct awscfg *cfg;

	(void)state;
	use_fixture_files();

	/* -o profile= */
	cfg = load_ok("dev");
	assert_string_equal(awscfg_profile(cfg), "dev");
	assert_int_equal(awscfg_profile_from_option(cfg), 1);
	assert_string_equal(awscfg_config_get(cfg, "region"), "eu-west-1");
	assert_string_equal(awscfg_credentials_get(cfg, "aws_session_token"),
			    "creds-dev-token");
	/* The nested s3 block is neither a key nor leaks its sub-keys. */
	assert_null(awscfg_config_get(cfg, "s3"));
	assert_null(awscfg_config_get(cfg, "max_concurrent_requests"));
	/* An empty value without a nested block is an empty string. */
	assert_string_equal(awscfg_config_get(cfg, "cli_pager"), "");
	awscfg_free(cfg);

	/* AWS_PROFILE */
	setenv("AWS_PROFILE", "dev", 1);
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_profile(cfg), "dev");
	assert_int_equal(awscfg_profile_from_option(cfg), 0);
	awscfg_free(cfg);

	/* The option beats AWS_PROFILE; an empty option does not count. */
	cfg = load_ok("default");
	assert_string_equal(awscfg_profile(cfg), "default");
	assert_int_equal(awscfg_profile_from_option(cfg), 1);
	awscfg_free(cfg);
	cfg = load_ok("");
	assert_string_equal(awscfg_profile(cfg), "dev");
	awscfg_free(cfg);

	/* A profile only in the credentials file exists. */
	cfg = load_ok("credsonly");
	assert_null(awscfg_config_get(cfg, "region"));
	assert_string_equal(awscfg_credentials_get(cfg, "aws_access_key_id"),
			    "AKIDCREDSONLY");
	awscfg_free(cfg);
}

static void test_profile_sections(void **state)
{
	struct awscfg *cfg;

	(void)state;
	use_files("[x]\n"
		  "region = wrong-bare\n"
		  "[profile x]\n"
		  "region = right\n"
		  "[profile  \"spaced name\" ]\n"
		  "region = quoted\n"
		  "[profile a b]\n"
		  "region = two-words\n"
		  "[default]\n"
		  "region = first\n"
		  "output = text\n"
		  "[profile default]\n"
		  "region = second\n",
		  "[profile x]\n"
		  "aws_access_key_id = WRONG\n"
		  "[x]\n"
		  "aws_access_key_id = RIGHT\n");

	cfg = load_ok("x");
	assert_string_equal(awscfg_config_get(cfg, "region"), "right");
	/* In the credentials file the section name is literal. */
	assert_string_equal(awscfg_credentials_get(cfg, "aws_access_key_id"),
			    "RIGHT");
	awscfg_free(cfg);

	cfg = load_ok("spaced name");
	assert_string_equal(awscfg_config_get(cfg, "region"), "quoted");
	awscfg_free(cfg);

	/* [default] and [profile default] both name it; the later section
	 * replaces the earlier one whole, as in botocore. */
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_config_get(cfg, "region"), "second");
	assert_null(awscfg_config_get(cfg, "output"));
	awscfg_free(cfg);
}

static void test_comments_and_whitespace(void **state)
{
	struct awscfg *cfg;

	(void)state;
	use_files("\xef\xbb\xbf# a comment\n"
		  "; another comment\n"
		  "orphan = before any section\n"
		  "\n"
		  "[ default ]\r\n"
		  "   region    =    ap-northeast-1   \r\n"
		  "Output: yaml\n"
		  "   # an indented comment\n"
		  "\t; and another\n"
		  "no delimiter here\n"
		  "tricky = a=b:c # not a comment\n"
		  "long = first line\n"
		  "   continued line\n"
		  "after = ok\n"
		  "s3 =\n"
		  "  addressing_style = path\n"
		  "\n"
		  "  signature_version = s3v4\n"
		  "last = yes\n"
		  "[profile other]\n"
		  "region = elsewhere\n",
		  NULL);
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_config_get(cfg, "region"), "ap-northeast-1");
	/* keys fold to lower case, ':' is a delimiter too */
	assert_string_equal(awscfg_config_get(cfg, "output"), "yaml");
	assert_null(awscfg_config_get(cfg, "Output"));
	assert_null(awscfg_config_get(cfg, "orphan"));
	/* only the first delimiter splits; no inline comments in values */
	assert_string_equal(awscfg_config_get(cfg, "tricky"),
			    "a=b:c # not a comment");
	assert_string_equal(awscfg_config_get(cfg, "long"), "first line");
	assert_null(awscfg_config_get(cfg, "continued line"));
	assert_string_equal(awscfg_config_get(cfg, "after"), "ok");
	assert_null(awscfg_config_get(cfg, "s3"));
	assert_null(awscfg_config_get(cfg, "addressing_style"));
	assert_null(awscfg_config_get(cfg, "signature_version"));
	assert_string_equal(awscfg_config_get(cfg, "last"), "yes");
	awscfg_free(cfg);
}

static void test_credentials_file_precedence(void **state)
{
	struct creds_provider *p;
	struct awscfg *cfg;
	struct creds c;
	struct dbuf why;

	(void)state;
	use_fixture_files();
	dbuf_init(&why, DBUF_CAP_SMALL);

	/* dev has a pair in both files: the credentials file wins. */
	cfg = load_ok("dev");
	assert_string_equal(awscfg_config_get(cfg, "aws_access_key_id"),
			    "AKIDCONFIGDEV");
	assert_string_equal(awscfg_credentials_get(cfg, "aws_access_key_id"),
			    "AKIDCREDSDEV");
	p = creds_profile_provider_new(cfg);
	assert_non_null(p);
	assert_int_equal(p->fetch(p, &c, &why), 0);
	assert_string_equal(c.access_key, "AKIDCREDSDEV");
	assert_string_equal(c.secret_key, "creds-dev-secret");
	assert_string_equal(c.session_token, "creds-dev-token");
	assert_int_equal(c.expiration, 0);
	creds_clear(&c);
	p->free(p);
	awscfg_free(cfg);

	/* Keys only in the config file are used too. */
	cfg = load_ok("cfgonly");
	p = creds_profile_provider_new(cfg);
	assert_int_equal(p->fetch(p, &c, &why), 0);
	assert_string_equal(c.access_key, "AKIDCFGONLY");
	assert_null(c.session_token);
	creds_clear(&c);
	p->free(p);
	awscfg_free(cfg);
	dbuf_free(&why);
}

static void test_region_precedence(void **state)
{
	struct awscfg *cfg;

	(void)state;
	use_files("[default]\nregion = from-config\n",
		  "[default]\nregion = from-credentials\n");
	cfg = load_ok(NULL);
	setenv("AWS_REGION", "from-aws-region", 1);
	setenv("AWS_DEFAULT_REGION", "from-default-region", 1);
	assert_string_equal(awscfg_region(cfg, "from-option"), "from-option");
	assert_string_equal(awscfg_region(cfg, NULL), "from-aws-region");
	assert_string_equal(awscfg_region(cfg, ""), "from-aws-region");
	unsetenv("AWS_REGION");
	assert_string_equal(awscfg_region(cfg, NULL), "from-default-region");
	setenv("AWS_DEFAULT_REGION", "", 1); /* empty counts as unset */
	assert_string_equal(awscfg_region(cfg, NULL), "from-config");
	awscfg_free(cfg);

	use_files("[default]\noutput = json\n", NULL);
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_region(cfg, NULL), "from-credentials");
	awscfg_free(cfg);

	use_files("[default]\n", "[default]\n");
	cfg = load_ok(NULL);
	assert_null(awscfg_region(cfg, NULL));
	awscfg_free(cfg);
}

static char *endpoint(const struct awscfg *cfg, const char *override,
		      const char *env_id, const char *prefix,
		      const char *region)
{
	char *url = NULL;

	assert_int_equal(awscfg_endpoint(cfg, override, env_id, prefix, region,
					 &url),
			 0);
	assert_non_null(url);
	return url;
}

#define assert_endpoint(expect, ...)                            \
	do {                                                    \
		char *u_ = endpoint(__VA_ARGS__);               \
		assert_string_equal(u_, expect);                \
		free(u_);                                       \
	} while (0)

static void test_endpoint_precedence(void **state)
{
	struct awscfg *cfg;
	char *url = (char *)"untouched";

	(void)state;
	cfg = load_ok(NULL);
	setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000/", 1);
	setenv("AWS_ENDPOINT_URL", "http://global:4566//", 1);

	assert_endpoint("https://override.example",
			cfg, "https://override.example/", "DYNAMODB",
			"dynamodb", "us-east-1");
	assert_endpoint("http://localhost:8000",
			cfg, NULL, "DYNAMODB", "dynamodb", "us-east-1");
	assert_endpoint("http://global:4566",
			cfg, "", "LAMBDA", "lambda", "us-east-1");
	/* The SDKs' switch to ignore configured endpoints. */
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	assert_endpoint("https://dynamodb.us-east-1.amazonaws.com",
			cfg, NULL, "DYNAMODB", "dynamodb", "us-east-1");
	assert_endpoint("http://o", cfg, "http://o", "DYNAMODB", "dynamodb",
			"us-east-1");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	unsetenv("AWS_ENDPOINT_URL");
	assert_endpoint("https://lambda.eu-central-1.amazonaws.com",
			cfg, NULL, "LAMBDA", "lambda", "eu-central-1");
	unsetenv("AWS_ENDPOINT_URL_DYNAMODB");
	assert_endpoint("https://dynamodb.us-east-1.amazonaws.com",
			cfg, NULL, "DYNAMODB", "dynamodb", "us-east-1");
	assert_endpoint("https://dynamodb.cn-north-1.amazonaws.com.cn",
			cfg, NULL, "DYNAMODB", "dynamodb", "cn-north-1");
	assert_endpoint("https://apigateway.us-west-2.amazonaws.com",
			cfg, NULL, NULL, "apigateway", "us-west-2");

	/* No region, or one that would bend the host name: refused. */
	assert_int_equal(awscfg_endpoint(cfg, NULL, "DYNAMODB", "dynamodb",
					 NULL, &url),
			 -EINVAL);
	assert_null(url);
	assert_int_equal(awscfg_endpoint(cfg, NULL, "DYNAMODB", "dynamodb",
					 "evil.com/x", &url),
			 -EINVAL);
	assert_int_equal(awscfg_endpoint(cfg, NULL, "DYNAMODB", "dynamodb",
					 "us-east-1@evil", &url),
			 -EINVAL);
	awscfg_free(cfg);
}

static void test_missing_explicit_profile(void **state)
{
	struct awscfg *cfg = (struct awscfg *)&cfg;
	struct dbuf why;
	char expect[PATH_MAX * 3];

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	use_fixture_files();

	assert_int_equal(awscfg_load(&cfg, "foo", &why), -ENOENT);
	assert_null(cfg);
	snprintf(expect, sizeof(expect), "profile 'foo' not found in %s or %s",
		 getenv("AWS_CONFIG_FILE"),
		 getenv("AWS_SHARED_CREDENTIALS_FILE"));
	assert_string_equal(dbuf_str(&why), expect);

	/* The same through AWS_PROFILE. */
	dbuf_reset(&why);
	setenv("AWS_PROFILE", "foo", 1);
	assert_int_equal(awscfg_load(&cfg, NULL, &why), -ENOENT);
	assert_string_equal(dbuf_str(&why), expect);

	/* [bare] in the config file is pointed out. */
	dbuf_reset(&why);
	assert_int_equal(awscfg_load(&cfg, "bare", &why), -ENOENT);
	assert_non_null(strstr(dbuf_str(&why),
			       "the config file has [bare]; there it must be [profile bare]"));

	/* With the default paths under $HOME, and even for "default". */
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	dbuf_reset(&why);
	assert_int_equal(awscfg_load(&cfg, "default", &why), -ENOENT);
	snprintf(expect, sizeof(expect),
		 "profile 'default' not found in %s/.aws/config or %s/.aws/credentials",
		 tmpdir, tmpdir);
	assert_string_equal(dbuf_str(&why), expect);
	dbuf_free(&why);
}

static void test_missing_files_are_fine(void **state)
{
	struct awscfg *cfg;
	char p[PATH_MAX];

	(void)state;
	/* Neither ~/.aws/config nor ~/.aws/credentials exists. */
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_profile(cfg), "default");
	snprintf(p, sizeof(p), "%s/.aws/config", tmpdir);
	assert_string_equal(awscfg_config_path(cfg), p);
	snprintf(p, sizeof(p), "%s/.aws/credentials", tmpdir);
	assert_string_equal(awscfg_credentials_path(cfg), p);
	assert_null(awscfg_config_get(cfg, "region"));
	assert_null(awscfg_region(cfg, NULL));
	awscfg_free(cfg);

	/* Explicit paths that do not exist, or under a non-directory. */
	setenv("AWS_CONFIG_FILE", "/nonexistent/dynfs/config", 1);
	write_file("file", "x");
	snprintf(p, sizeof(p), "%s/file/credentials", tmpdir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_config_path(cfg),
			    "/nonexistent/dynfs/config");
	awscfg_free(cfg);
}

static void test_home_and_tilde(void **state)
{
	struct awscfg *cfg;
	char p[PATH_MAX];

	(void)state;
	snprintf(p, sizeof(p), "%s/.aws", tmpdir);
	assert_int_equal(mkdir(p, 0700), 0);
	write_file(".aws/config", "[default]\nregion = home-region\n");
	write_file("alt", "[alt]\naws_access_key_id = AKIDALT\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/alt", 1);
	cfg = load_ok("alt");
	snprintf(p, sizeof(p), "%s/alt", tmpdir);
	assert_string_equal(awscfg_credentials_path(cfg), p);
	assert_string_equal(awscfg_credentials_get(cfg, "aws_access_key_id"),
			    "AKIDALT");
	awscfg_free(cfg);

	cfg = load_ok(NULL);
	assert_string_equal(awscfg_region(cfg, NULL), "home-region");
	awscfg_free(cfg);
}

static void test_unreadable_file_is_an_error(void **state)
{
	struct awscfg *cfg;
	struct dbuf why;

	(void)state;
	dbuf_init(&why, DBUF_CAP_SMALL);
	/* A directory where the file should be: silently ignoring it would
	 * end in a puzzling "no credentials" later. */
	setenv("AWS_CONFIG_FILE", tmpdir, 1);
	assert_int_equal(awscfg_load(&cfg, NULL, &why), -EISDIR);
	assert_null(cfg);
	assert_non_null(strstr(dbuf_str(&why), "cannot read"));
	assert_non_null(strstr(dbuf_str(&why), tmpdir));
	dbuf_free(&why);
}

static void test_secret_values_in_credentials(void **state)
{
	struct awscfg *cfg;

	(void)state;
	/* Secret keys hold '/', '+' and '=': the value is everything after
	 * the first delimiter. */
	use_files(NULL, "[default]\n"
			"aws_access_key_id=AKIDEXAMPLE\n"
			"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG+bPxRfiCY=\n");
	cfg = load_ok(NULL);
	assert_string_equal(awscfg_credentials_get(cfg, "aws_secret_access_key"),
			    "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=");
	awscfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_profile, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_profile_selection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_profile_sections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_comments_and_whitespace,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_file_precedence,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_precedence, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_precedence, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_explicit_profile,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_files_are_fine,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_and_tilde, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file_is_an_error,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_values_in_credentials,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

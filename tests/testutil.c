/* nftw() is XSI */
#define _XOPEN_SOURCE 700

#include "tests/testutil.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static const char *const aws_vars[] = {
	"AWS_ACCESS_KEY_ID",	 "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",	 "AWS_PROFILE",
	"AWS_REGION",		 "AWS_DEFAULT_REGION",
	"AWS_CONFIG_FILE",	 "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_ENDPOINT_URL",	 "AWS_ENDPOINT_URL_DYNAMODB",
	"AWS_ENDPOINT_URL_LAMBDA", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
};

const char *tu_fixtures(void)
{
	const char *f = getenv("DYNFS_FIXTURES");

	if (!f)
		fail_msg("DYNFS_FIXTURES is not set (run through meson test)");
	return f;
}

void tu_clear_aws_env(void)
{
	size_t i;

	for (i = 0; i < sizeof(aws_vars) / sizeof(aws_vars[0]); i++)
		unsetenv(aws_vars[i]);
}

int tu_home_new(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "/tmp/dynfs-%s-XXXXXX", tag);
	if (!mkdtemp(buf))
		return -1;
	return setenv("HOME", buf, 1);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int tu_rmtree(const char *dir)
{
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

json_t *tu_json(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (!j)
		fail_msg("bad JSON in test: %s: %s", jerr.text, text);
	return j;
}

void tu_example_creds_env(void)
{
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	unsetenv("AWS_PROFILE");
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
}

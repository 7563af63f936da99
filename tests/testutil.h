/* testutil: what several cmocka programs need: the fixtures folder, a
 * clean AWS environment in a temporary HOME, and JSON literals.  Failures
 * end the running test through cmocka's fail_msg(). */
#ifndef DYNFS_TESTUTIL_H
#define DYNFS_TESTUTIL_H

#include <stddef.h>

#include <jansson.h>

/* $DYNFS_FIXTURES (meson sets it to tests/fixtures). */
const char *tu_fixtures(void);
/* Unset every AWS_* variable dynfs reads. */
void tu_clear_aws_env(void);
/* The AWS SigV4 test suite's example keys in the environment, and no
 * profile, files or session token: what a client fixture signs with. */
void tu_example_creds_env(void);
/* Make /tmp/dynfs-TAG-XXXXXX into buf and point HOME at it; 0 or -1. */
int tu_home_new(char *buf, size_t size, const char *tag);
/* Remove dir and everything below it; 0 or -1. */
int tu_rmtree(const char *dir);
/* A new reference to the JSON in text. */
json_t *tu_json(const char *text);

#endif

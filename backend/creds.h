/* creds: AWS credentials and the provider chain that finds them.
 *
 * The chain asks each provider in turn; the first that has credentials
 * wins and is asked again when they come near expiry, so a mount lives on
 * across refreshes.  Providers that need the network (IMDSv2, container,
 * assume-role, web identity) join through creds_chain_add(). */
#ifndef DYNFS_CREDS_H
#define DYNFS_CREDS_H

#include <time.h>

#include "backend/awscfg.h"
#include "backend/dbuf.h"

struct creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL when none */
	time_t expiration;   /* 0: does not expire */
	const char *source;  /* static name of the provider */
};

/* Free and wipe the secrets; leaves c zeroed. */
void creds_clear(struct creds *c);
int creds_copy(struct creds *dst, const struct creds *src);
/* Constant-time comparison of all three strings; 1 when equal. */
int creds_equal(const struct creds *a, const struct creds *b);

struct creds_provider {
	const char *name;
	/* 0 with *out filled; -ENOENT when this provider has nothing (the
	 * chain moves on); another -errno with *why set when it failed. */
	int (*fetch)(struct creds_provider *self, struct creds *out,
		     struct dbuf *why);
	void (*free)(struct creds_provider *self);
};

typedef time_t (*creds_clock_fn)(void *ctx);

struct creds_chain;

/* Builds the standard chain: environment (skipped when the profile came
 * from -o profile=), the profile's static keys (credentials file, then
 * config file), then the profile's credential_process.  cfg must outlive
 * the chain. */
int creds_chain_new(struct creds_chain **out, const struct awscfg *cfg);
/* Append a provider; the chain takes it (and frees it even on error). */
int creds_chain_add(struct creds_chain *ch, struct creds_provider *p_take);
void creds_chain_set_clock(struct creds_chain *ch, creds_clock_fn fn,
			   void *ctx);
/* Current credentials, refreshed when within the refresh window (5 min) of
 * expiry.  Thread-safe.  -ENOKEY when no provider has any; *why says what
 * was tried.  out must be released with creds_clear(). */
int creds_get(struct creds_chain *ch, struct creds *out, struct dbuf *why);
void creds_chain_free(struct creds_chain *ch);

/* Single providers, exposed for tests and for custom chains. */
struct creds_provider *creds_env_provider_new(void);
struct creds_provider *creds_profile_provider_new(const struct awscfg *cfg);
/* command is run with /bin/sh -c; its stdout is the JSON of the
 * credential_process protocol (Version 1). */
struct creds_provider *creds_process_provider_new(const char *command);

#endif

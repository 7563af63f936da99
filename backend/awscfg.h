/* awscfg: AWS configuration as the CLI and SDKs resolve it: environment,
 * the shared config file ([default], [profile NAME]) and the shared
 * credentials file ([NAME]). */
#ifndef DYNFS_AWSCFG_H
#define DYNFS_AWSCFG_H

#include "backend/dbuf.h"

struct awscfg;

/* profile is the -o profile= value, or NULL to use AWS_PROFILE, then
 * "default".  A profile named explicitly (either way) that neither file
 * holds is an error.  Missing files are not an error.  On failure *why
 * gets one sentence for the user. */
int awscfg_load(struct awscfg **out, const char *profile, struct dbuf *why);
void awscfg_free(struct awscfg *cfg);

const char *awscfg_profile(const struct awscfg *cfg);
/* 1 when the profile came from -o profile= (the environment's keys are
 * then skipped, as with the CLI's --profile). */
int awscfg_profile_from_option(const struct awscfg *cfg);
/* The value of key in the active profile of the credentials file, or NULL. */
const char *awscfg_credentials_get(const struct awscfg *cfg, const char *key);
/* The value of key in the active profile of the config file, or NULL. */
const char *awscfg_config_get(const struct awscfg *cfg, const char *key);
/* Paths actually used, for messages. */
const char *awscfg_config_path(const struct awscfg *cfg);
const char *awscfg_credentials_path(const struct awscfg *cfg);

/* override (-o region=), AWS_REGION, AWS_DEFAULT_REGION, then the profile's
 * region (config file, then credentials file); NULL when none. */
const char *awscfg_region(const struct awscfg *cfg, const char *override);

/* The endpoint URL for a service: override (-o), AWS_ENDPOINT_URL_<ENV_ID>
 * (e.g. DYNAMODB, API_GATEWAY, LAMBDA), AWS_ENDPOINT_URL, else
 * https://<host_prefix>.<region>.amazonaws.com.  A trailing '/' is
 * dropped.  *url_out is malloc'd.  0 or -errno. */
int awscfg_endpoint(const struct awscfg *cfg, const char *override,
		    const char *env_id, const char *host_prefix,
		    const char *region, char **url_out);

#endif

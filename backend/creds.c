/* creds: AWS credentials and the provider chain that finds them.
 *
 * Conventions of this file:
 *  - an output struct creds is overwritten, never freed first, so it may
 *    be uninitialized on entry; on failure it is left zeroed;
 *  - messages go to the caller's why (appended) and never hold a secret:
 *    not a secret key, not a session token, not credential_process output;
 *  - a provider that has nothing returns -ENOENT and may leave a hint in
 *    why ("set AWS_ACCESS_KEY_ID and ..."); the chain joins the hints into
 *    its -ENOKEY message.  Any other error stops the chain, as in botocore:
 *    a half-configured source is a mistake to report, not to skip.
 */
/* pipe2() */
#define _GNU_SOURCE
#include "backend/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

extern char **environ;

/* Refresh this long before expiry, as the SDKs do, so that a request
 * signed just before the refresh still lands with valid credentials. */
#define CREDS_REFRESH_WINDOW 300
/* After a failed refresh while the old credentials are still good, wait
 * this long before trying again, so a broken credential_process is not
 * run once per filesystem request. */
#define CREDS_RETRY_BACKOFF 30
/* credential_process may prompt for MFA on the terminal; give it time,
 * but not forever: the chain lock is held meanwhile. */
#define CREDS_PROCESS_TIMEOUT_MS (120 * 1000)
/* The protocol's JSON is a few KiB at most. */
#define CREDS_PROCESS_OUTPUT_CAP DBUF_CAP_SMALL

static const char *nonempty(const char *v)
{
	return v && *v ? v : NULL;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---- struct creds -------------------------------------------------- */

void creds_clear(struct creds *c)
{
	if (!c)
		return;
	free_secret(c->access_key);
	free_secret(c->secret_key);
	free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

/* Fill out from borrowed strings; out is overwritten. */
static int creds_fill(struct creds *out, const char *ak, const char *sk,
		      const char *token, time_t expiration, const char *source)
{
	struct creds c = { 0 };
	int rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	c.access_key = strdup(ak);
	c.secret_key = strdup(sk);
	if (!c.access_key || !c.secret_key)
		goto out;
	if (token) {
		c.session_token = strdup(token);
		if (!c.session_token)
			goto out;
	}
	c.expiration = expiration;
	c.source = source;
	*out = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	creds_clear(&c);
	return rc;
}

int creds_copy(struct creds *dst, const struct creds *src)
{
	if (dst == src)
		return 0; /* filling dst first would lose src */
	if (!src->access_key || !src->secret_key) {
		memset(dst, 0, sizeof(*dst));
		return -EINVAL;
	}
	return creds_fill(dst, src->access_key, src->secret_key,
			  src->session_token, src->expiration, src->source);
}

/* Differences accumulate into the result without a branch on secret
 * content; only the shorter length decides how many bytes are read,
 * and key lengths are public anyway (20, 40). */
static unsigned secret_diff(const char *a, const char *b)
{
	size_t la, lb, n;
	unsigned d;

	/* NULL is "absent", unequal to any present string, even "". */
	if (!a || !b)
		return (unsigned)(!a ^ !b);
	la = strlen(a);
	lb = strlen(b);
	n = la < lb ? la : lb;
	d = (unsigned)(la != lb);
	d |= (unsigned)(CRYPTO_memcmp(a, b, n) != 0);
	return d;
}

int creds_equal(const struct creds *a, const struct creds *b)
{
	unsigned d = 0;

	d |= secret_diff(a->access_key, b->access_key);
	d |= secret_diff(a->secret_key, b->secret_key);
	d |= secret_diff(a->session_token, b->session_token);
	return d == 0;
}

/* ---- environment provider ------------------------------------------ */

static int env_fetch(struct creds_provider *self, struct creds *out,
		     struct dbuf *why)
{
	const char *ak = nonempty(getenv("AWS_ACCESS_KEY_ID"));
	const char *sk = nonempty(getenv("AWS_SECRET_ACCESS_KEY"));
	const char *token = nonempty(getenv("AWS_SESSION_TOKEN"));

	(void)self;
	memset(out, 0, sizeof(*out));
	if (!ak && !sk) {
		dbuf_addf_opt(why, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
		return -ENOENT;
	}
	if (!sk) {
		dbuf_addf_opt(why, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
		return -EINVAL;
	}
	if (!ak) {
		dbuf_addf_opt(why, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
		return -EINVAL;
	}
	return creds_fill(out, ak, sk, token, 0, "env");
}

static void plain_free(struct creds_provider *self)
{
	free(self);
}

struct creds_provider *creds_env_provider_new(void)
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->name = "env";
	p->fetch = env_fetch;
	p->free = plain_free;
	return p;
}

/* ---- profile provider: static keys in the shared files ------------- */

struct profile_provider {
	struct creds_provider base; /* first: the chain sees only this */
	const struct awscfg *cfg;
};

/* The static keys of one file's section; both halves of the pair must
 * come from the same file. */
static int profile_pair(const struct awscfg *cfg, int credentials_file,
			struct creds *out, struct dbuf *why)
{
	const char *(*get)(const struct awscfg *, const char *) =
		credentials_file ? awscfg_credentials_get : awscfg_config_get;
	const char *path = credentials_file ? awscfg_credentials_path(cfg) :
					      awscfg_config_path(cfg);
	const char *ak = nonempty(get(cfg, "aws_access_key_id"));
	const char *sk = nonempty(get(cfg, "aws_secret_access_key"));
	const char *token = nonempty(get(cfg, "aws_session_token"));

	if (!ak && !sk)
		return -ENOENT;
	if (!ak || !sk) {
		dbuf_addf_opt(why, "profile '%s' in %s has %s but no %s",
			      awscfg_profile(cfg), path ? path : "?",
			      ak ? "aws_access_key_id" :
				   "aws_secret_access_key",
			      ak ? "aws_secret_access_key" :
				   "aws_access_key_id");
		return -EINVAL;
	}
	return creds_fill(out, ak, sk, token, 0, "profile");
}

static int profile_fetch(struct creds_provider *self, struct creds *out,
			 struct dbuf *why)
{
	struct profile_provider *pp = (struct profile_provider *)self;
	const char *path;
	int rc;

	memset(out, 0, sizeof(*out));
	/* The credentials file first: its keys win, as in botocore. */
	rc = profile_pair(pp->cfg, 1, out, why);
	if (rc != -ENOENT)
		return rc;
	rc = profile_pair(pp->cfg, 0, out, why);
	if (rc != -ENOENT)
		return rc;
	path = awscfg_credentials_path(pp->cfg);
	dbuf_addf_opt(why, "add keys for profile '%s' to %s",
		      awscfg_profile(pp->cfg),
		      path ? path : "~/.aws/credentials");
	return -ENOENT;
}

struct creds_provider *creds_profile_provider_new(const struct awscfg *cfg)
{
	struct profile_provider *pp;

	if (!cfg)
		return NULL;
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	pp->base.name = "profile";
	pp->base.fetch = profile_fetch;
	pp->base.free = plain_free;
	pp->cfg = cfg;
	return &pp->base;
}

/* ---- credential_process provider ----------------------------------- */

struct process_provider {
	struct creds_provider base; /* first: the chain sees only this */
	char *command;
};

static int two_digits(const char *s, int *v)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|+hhmm|-...) to seconds since the
 * epoch.  A time without a zone is refused: guessing local time would
 * make credentials expire hours early or late. */
static int parse_iso8601(const char *s, time_t *out)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };
	struct tm tm;
	int y1, y2, mon, day, h, mi, sec, oh = 0, om = 0, sign = 0, dim;
	time_t t;

	if (two_digits(s, &y1) || two_digits(s + 2, &y2) || s[4] != '-' ||
	    two_digits(s + 5, &mon) || s[7] != '-' || two_digits(s + 8, &day) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    two_digits(s + 11, &h) || s[13] != ':' || two_digits(s + 14, &mi) ||
	    s[16] != ':' || two_digits(s + 17, &sec))
		return -EINVAL;
	s += 19;
	if (*s == '.' || *s == ',') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9')
			s++; /* sub-second precision does not matter here */
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		s++;
		if (two_digits(s, &oh))
			return -EINVAL;
		s += 2;
		if (*s == ':')
			s++;
		if (two_digits(s, &om))
			return -EINVAL;
		s += 2;
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 23 || om > 59)
		return -EINVAL;
	dim = mdays[mon - 1] + (mon == 2 && is_leap(y1 * 100 + y2));
	if (day > dim)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y1 * 100 + y2 - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t - sign * (time_t)(oh * 3600 + om * 60);
	return 0;
}

/* Parse the protocol's JSON.  Field names go into messages, values never:
 * not even jansson's error text, which quotes the input near the fault. */
static int parse_process_output(const char *buf, size_t len,
				struct creds *out, struct dbuf *why)
{
	json_error_t jerr;
	json_t *root, *ver, *ak, *sk, *tok, *exp;
	time_t expiration = 0;
	int rc = -EPROTO;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		dbuf_addf_opt(why, "credential_process output is not valid JSON (line %d, column %d)",
			      jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		dbuf_addf_opt(why, "credential_process output is not a JSON object");
		goto out;
	}
	ver = json_object_get(root, "Version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		dbuf_addf_opt(why, "credential_process output has %s; only Version 1 is supported",
			      ver ? "an unsupported Version" : "no Version");
		goto out;
	}
	ak = json_object_get(root, "AccessKeyId");
	sk = json_object_get(root, "SecretAccessKey");
	tok = json_object_get(root, "SessionToken");
	exp = json_object_get(root, "Expiration");
	if (!json_is_string(ak) || !*json_string_value(ak)) {
		dbuf_addf_opt(why, "credential_process output has no AccessKeyId string");
		goto out;
	}
	if (!json_is_string(sk) || !*json_string_value(sk)) {
		dbuf_addf_opt(why, "credential_process output has no SecretAccessKey string");
		goto out;
	}
	if (tok && !json_is_null(tok) && !json_is_string(tok)) {
		dbuf_addf_opt(why, "credential_process output has a SessionToken that is not a string");
		goto out;
	}
	if (exp && !json_is_null(exp)) {
		if (!json_is_string(exp) ||
		    parse_iso8601(json_string_value(exp), &expiration)) {
			dbuf_addf_opt(why, "credential_process output has an Expiration that is not an ISO-8601 time with a zone (e.g. 2026-11-25T10:00:00Z)");
			goto out;
		}
	}
	rc = creds_fill(out, json_string_value(ak), json_string_value(sk),
			json_is_string(tok) ? nonempty(json_string_value(tok)) :
					      NULL,
			expiration, "process");
out:
	json_decref(root);
	return rc;
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Move fd above stderr: if stdout was closed, a pipe end could be fd 1,
 * and dup2(1, 1) in the child would keep its close-on-exec flag. */
static int fd_above_stdio(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	close(*fd);
	*fd = nfd;
	return 0;
}

/* Run command with /bin/sh -c, its stdout into out, stdin and stderr
 * inherited (a prompt for an MFA code reaches the user, as with the
 * CLI).  posix_spawn rather than fork: safe in a threaded process. */
static int run_process(char *command, struct dbuf *out, struct dbuf *why)
{
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = { sh, dash_c, command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int fa_ok = 0, attr_ok = 0, pfd[2] = { -1, -1 };
	int rc, status = 0, timed_out = 0, too_big = 0;
	char chunk[4096];
	struct timespec t0;
	struct pollfd pl;
	sigset_t set;
	pid_t pid = -1;
	long long left;
	ssize_t r;

	if (pipe2(pfd, O_CLOEXEC) != 0) {
		rc = -errno;
		goto run_failed;
	}
	rc = fd_above_stdio(&pfd[0]);
	if (!rc)
		rc = fd_above_stdio(&pfd[1]);
	if (rc)
		goto run_failed;
	rc = -posix_spawn_file_actions_init(&fa);
	if (rc)
		goto run_failed;
	fa_ok = 1;
	rc = -posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	if (rc)
		goto run_failed;
	rc = -posix_spawnattr_init(&attr);
	if (rc)
		goto run_failed;
	attr_ok = 1;
	/* The caller's thread may block signals or ignore SIGPIPE (libcurl
	 * users often do); the child starts clean. */
	sigemptyset(&set);
	rc = -posix_spawnattr_setsigmask(&attr, &set);
	if (!rc) {
		sigaddset(&set, SIGPIPE);
		rc = -posix_spawnattr_setsigdefault(&attr, &set);
	}
	if (!rc)
		rc = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						      POSIX_SPAWN_SETSIGDEF);
	if (rc)
		goto run_failed;
	rc = -posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
	if (rc) {
		pid = -1;
		goto run_failed;
	}
	close(pfd[1]);
	pfd[1] = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		left = CREDS_PROCESS_TIMEOUT_MS - ms_since(&t0);
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pl.fd = pfd[0];
		pl.events = POLLIN;
		pl.revents = 0;
		rc = poll(&pl, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			rc = -errno;
			dbuf_addf_opt(why, "cannot read credential_process output: %s",
				      strerror(-rc));
			break;
		}
		if (rc == 0)
			continue; /* the deadline check above ends it */
		r = read(pfd[0], chunk, sizeof(chunk));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			rc = -errno;
			dbuf_addf_opt(why, "cannot read credential_process output: %s",
				      strerror(-rc));
			break;
		}
		if (r == 0) {
			rc = 0;
			break;
		}
		if (dbuf_add(out, chunk, (size_t)r)) {
			too_big = 1;
			break;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(pfd[0]);
	pfd[0] = -1;
	if (too_big) {
		rc = -E2BIG;
		dbuf_addf_opt(why, "credential_process wrote more than %u KiB",
			      CREDS_PROCESS_OUTPUT_CAP / 1024);
		kill(pid, SIGKILL);
	}
	/* It may close stdout and linger: the deadline holds for the exit
	 * too. */
	for (;;) {
		if (timed_out && rc != -ETIMEDOUT) {
			rc = -ETIMEDOUT;
			dbuf_addf_opt(why, "credential_process did not finish within %d s",
				      CREDS_PROCESS_TIMEOUT_MS / 1000);
			kill(pid, SIGKILL);
		}
		r = waitpid(pid, &status, timed_out || too_big ? 0 : WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* SIGCHLD set to SIG_IGN reaps for us and hides the
			 * status. */
			if (!rc) {
				rc = -errno;
				dbuf_addf_opt(why, "cannot wait for credential_process: %s",
					      strerror(-rc));
			}
			goto out;
		}
		if (ms_since(&t0) >= CREDS_PROCESS_TIMEOUT_MS)
			timed_out = 1;
		else
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 },
				  NULL);
	}
	if (rc) {
		/* already in why */
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		rc = -EIO;
		dbuf_addf_opt(why, "credential_process exited with status %d",
			      WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		rc = -EIO;
		dbuf_addf_opt(why, "credential_process was killed by signal %d",
			      WTERMSIG(status));
	}
	goto out;

run_failed:
	dbuf_addf_opt(why, "cannot run credential_process: %s", strerror(-rc));
out:
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return rc;
}

static int process_fetch(struct creds_provider *self, struct creds *out,
			 struct dbuf *why)
{
	struct process_provider *pp = (struct process_provider *)self;
	struct dbuf b;
	int rc;

	memset(out, 0, sizeof(*out));
	dbuf_init(&b, CREDS_PROCESS_OUTPUT_CAP);
	rc = run_process(pp->command, &b, why);
	if (rc)
		goto out;
	rc = parse_process_output(dbuf_str(&b), dbuf_len(&b), out, why);
out:
	dbuf_free_secret(&b);
	return rc;
}

static void process_free(struct creds_provider *self)
{
	struct process_provider *pp = (struct process_provider *)self;

	free(pp->command);
	free(pp);
}

struct creds_provider *creds_process_provider_new(const char *command)
{
	struct process_provider *pp;

	if (!command || !*command)
		return NULL;
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	pp->command = strdup(command);
	if (!pp->command) {
		free(pp);
		return NULL;
	}
	pp->base.name = "process";
	pp->base.fetch = process_fetch;
	pp->base.free = process_free;
	return &pp->base;
}

/* ---- the chain ----------------------------------------------------- */

struct chain_node {
	struct chain_node *next;
	struct creds_provider *p;
};

struct creds_chain {
	/* Lock order: lock is a leaf.  Nothing else of dynfs is locked
	 * while it is held, so any caller may hold its own locks when it
	 * calls creds_get().  Providers' fetch runs under it, including
	 * credential_process: that serializes refreshes on purpose, so N
	 * threads that find the credentials stale run one process, not N,
	 * and the others then get its result. */
	pthread_mutex_t lock;
	struct chain_node *head;
	struct chain_node **tail;
	struct creds_provider *winner; /* remembered after a success */
	struct creds cur;
	int have_cur;
	time_t retry_after; /* no refresh attempt before, while cur is good */
	creds_clock_fn clock;
	void *clock_ctx;
};

static time_t wall_clock(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

int creds_chain_add(struct creds_chain *ch, struct creds_provider *p_take)
{
	struct chain_node *n = NULL;
	int rc = -EINVAL;

	if (!ch || !p_take)
		goto out;
	rc = -ENOMEM;
	n = calloc(1, sizeof(*n));
	if (!n)
		goto out;
	n->p = p_take;
	pthread_mutex_lock(&ch->lock);
	*ch->tail = n;
	ch->tail = &n->next;
	pthread_mutex_unlock(&ch->lock);
	rc = 0;
out:
	/* The chain owns p_take from the call on, failure or not. */
	if (rc && p_take && p_take->free)
		p_take->free(p_take);
	return rc;
}

/* creds_chain_add() for a provider just made: NULL means OOM. */
static int add_new(struct creds_chain *ch, struct creds_provider *p)
{
	return p ? creds_chain_add(ch, p) : -ENOMEM;
}

int creds_chain_new(struct creds_chain **out, const struct awscfg *cfg)
{
	struct creds_chain *ch = NULL;
	const char *cmd;
	int rc = -EINVAL;

	*out = NULL;
	if (!cfg)
		goto out;
	rc = -ENOMEM;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		goto out;
	rc = -pthread_mutex_init(&ch->lock, NULL);
	if (rc) {
		free(ch);
		ch = NULL;
		goto out;
	}
	ch->tail = &ch->head;
	ch->clock = wall_clock;

	/* -o profile= means "this profile", as the CLI's --profile. */
	if (!awscfg_profile_from_option(cfg)) {
		rc = add_new(ch, creds_env_provider_new());
		if (rc)
			goto out;
	}
	rc = add_new(ch, creds_profile_provider_new(cfg));
	if (rc)
		goto out;
	/* Like the static keys, the credentials file wins over config. */
	cmd = nonempty(awscfg_credentials_get(cfg, "credential_process"));
	if (!cmd)
		cmd = nonempty(awscfg_config_get(cfg, "credential_process"));
	if (cmd) {
		rc = add_new(ch, creds_process_provider_new(cmd));
		if (rc)
			goto out;
	}
out:
	if (rc)
		creds_chain_free(ch);
	else
		*out = ch;
	return rc;
}

void creds_chain_set_clock(struct creds_chain *ch, creds_clock_fn fn,
			   void *ctx)
{
	pthread_mutex_lock(&ch->lock);
	ch->clock = fn ? fn : wall_clock;
	ch->clock_ctx = fn ? ctx : NULL;
	pthread_mutex_unlock(&ch->lock);
}

static int stale(const struct creds *c, time_t now)
{
	return c->expiration != 0 && now >= c->expiration - CREDS_REFRESH_WINDOW;
}

static int still_valid(const struct creds *c, time_t now)
{
	return c->expiration == 0 || now < c->expiration;
}

/* Ask one provider; a success must carry both keys. */
static int ask(struct creds_provider *p, struct creds *out, struct dbuf *pw)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = p->fetch(p, out, pw);
	if (rc > 0)
		rc = -EIO;
	if (rc == 0 && (!out->access_key || !out->secret_key)) {
		creds_clear(out);
		dbuf_addf_opt(pw, "the %s provider returned incomplete credentials",
			      p->name);
		rc = -EPROTO;
	}
	if (rc == 0 && !out->source)
		out->source = p->name;
	if (rc && rc != -ENOENT && !dbuf_len(pw))
		dbuf_addf_opt(pw, "the %s provider failed: %s", p->name,
			      strerror(-rc));
	return rc;
}

/* Walk the whole chain from the top.  Called with the lock held. */
static int walk(struct creds_chain *ch, struct creds *fresh,
		struct dbuf *why)
{
	struct dbuf hints, others, pw;
	struct chain_node *n;
	int rc = -ENOKEY;

	dbuf_init(&hints, DBUF_CAP_SMALL);
	dbuf_init(&others, DBUF_CAP_SMALL);
	dbuf_init(&pw, DBUF_CAP_SMALL);
	for (n = ch->head; n; n = n->next) {
		dbuf_reset(&pw);
		rc = ask(n->p, fresh, &pw);
		if (rc == 0) {
			ch->winner = n->p;
			goto out;
		}
		if (rc != -ENOENT) {
			dbuf_addf_opt(why, "%s", dbuf_str(&pw));
			goto out;
		}
		if (dbuf_len(&pw))
			dbuf_addf_opt(&hints, "%s%s",
				      dbuf_len(&hints) ? ", or " : "",
				      dbuf_str(&pw));
		else
			dbuf_addf_opt(&others, "%s%s",
				      dbuf_len(&others) ? ", " : "",
				      n->p->name);
	}
	rc = -ENOKEY;
	if (dbuf_len(&hints) && dbuf_len(&others))
		dbuf_addf_opt(why, "no credentials: %s (also tried: %s)",
			      dbuf_str(&hints), dbuf_str(&others));
	else if (dbuf_len(&hints) || dbuf_len(&others))
		dbuf_addf_opt(why, "no credentials: %s%s",
			      dbuf_len(&hints) ? "" : "tried ",
			      dbuf_len(&hints) ? dbuf_str(&hints) :
						 dbuf_str(&others));
	else
		dbuf_addf_opt(why, "no credentials: no credential providers configured");
out:
	dbuf_free(&hints);
	dbuf_free(&others);
	dbuf_free(&pw);
	return rc;
}

static void install(struct creds_chain *ch, struct creds *fresh)
{
	creds_clear(&ch->cur);
	ch->cur = *fresh;
	ch->have_cur = 1;
	ch->retry_after = 0;
	memset(fresh, 0, sizeof(*fresh));
}

int creds_get(struct creds_chain *ch, struct creds *out, struct dbuf *why)
{
	struct creds fresh = { 0 };
	struct dbuf pw;
	time_t now;
	int rc;

	memset(out, 0, sizeof(*out));
	dbuf_init(&pw, DBUF_CAP_SMALL);
	pthread_mutex_lock(&ch->lock);
	now = ch->clock(ch->clock_ctx);
	if (ch->have_cur && !stale(&ch->cur, now))
		goto serve;
	if (ch->have_cur && still_valid(&ch->cur, now) && now < ch->retry_after)
		goto serve;

	if (ch->winner) {
		rc = ask(ch->winner, &fresh, &pw);
		if (rc == 0) {
			install(ch, &fresh);
			goto serve;
		}
		if (ch->have_cur && still_valid(&ch->cur, now)) {
			/* A failed refresh is not an outage until the old
			 * credentials really expire. */
			ch->retry_after = now + CREDS_RETRY_BACKOFF;
			goto serve;
		}
		creds_clear(&ch->cur);
		ch->have_cur = 0;
		if (rc != -ENOENT) {
			dbuf_addf_opt(why, "%s", dbuf_str(&pw));
			goto out;
		}
		/* The source went away (keys removed): search afresh. */
		ch->winner = NULL;
	}
	rc = walk(ch, &fresh, why);
	if (rc)
		goto out;
	install(ch, &fresh);
serve:
	rc = creds_copy(out, &ch->cur);
out:
	pthread_mutex_unlock(&ch->lock);
	creds_clear(&fresh);
	dbuf_free(&pw);
	return rc;
}

void creds_chain_free(struct creds_chain *ch)
{
	struct chain_node *n, *next;

	if (!ch)
		return;
	for (n = ch->head; n; n = next) {
		next = n->next;
		if (n->p->free)
			n->p->free(n->p);
		free(n);
	}
	creds_clear(&ch->cur);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

/*
 * llmproxyctl: gateway address, master key, salt key, database and config
 * path, from flags or the environment (the same variables as `make run`),
 * else from what `make run` wrote under var/ ($LLMPROXY_VAR): its
 * master_key, salt_key, and nginx.conf's listen and llmproxy_database.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"


#define LLMP_MASTER_KEY_MAX   4096


static char *ctl_read_key(const char *file, int *err);


static const char *
ctl_env(const char *name)
{
    const char  *v;

    v = getenv(name);

    return (v && v[0]) ? v : NULL;
}


/* set, even empty: an empty variable says "none", not "look in var/" */

static int
ctl_env_set(const char *name)
{
    return getenv(name) != NULL;
}


/* "var/NAME" of `make run`; NULL when too long */

static const char *
ctl_var_path(char *buf, size_t size, const char *name)
{
    int          n;
    const char  *dir;

    dir = ctl_env("LLMPROXY_VAR");
    n = snprintf(buf, size, "%s/%s", dir ? dir : "var", name);

    return (n < 0 || (size_t) n >= size) ? NULL : buf;
}


/*
 * The value of a directive in the nginx.conf `make run` wrote, e.g.
 * "    llmproxy_database postgresql://...;": buf, or NULL without one.
 */

static const char *
ctl_var_conf(const char *directive, char *buf, size_t size)
{
    char         line[4096], path[4096], *p, *end;
    size_t       n;
    FILE        *f;
    const char  *found;

    if (ctl_var_path(path, sizeof(path), "nginx.conf") == NULL) {
        return NULL;
    }

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }

    found = NULL;
    n = strlen(directive);

    while (found == NULL && fgets(line, sizeof(line), f)) {
        for (p = line; *p == ' ' || *p == '\t'; p++) { /* void */ }

        if (strncmp(p, directive, n) != 0 || (p[n] != ' ' && p[n] != '\t')) {
            continue;
        }

        for (p += n; *p == ' ' || *p == '\t'; p++) { /* void */ }

        end = strchr(p, ';');

        if (end && end > p && (size_t) (end - p) < size) {
            memcpy(buf, p, end - p);
            buf[end - p] = '\0';
            found = buf;
        }
    }

    fclose(f);

    return found;
}


const char *
ctl_gateway_url(const char *flag)
{
    char         *p;
    static char   buf[1024], listen[1000];
    const char   *v;

    if (flag) {
        return flag;
    }

    v = ctl_env("LLMPROXY_GATEWAY_URL");
    if (v) {
        return v;
    }

    v = ctl_env("LLMPROXY_LISTEN");
    if (v && strlen(v) < sizeof(buf) - sizeof("http://")) {
        snprintf(buf, sizeof(buf), "http://%s", v);
        return buf;
    }

    v = ctl_var_conf("listen", listen, sizeof(listen));
    if (v) {
        listen[strcspn(listen, " \t")] = '\0';    /* "ADDR reuseport" */

        /* "4000", "*:4000", "0.0.0.0:4000": reached at 127.0.0.1 */

        p = strrchr(listen, ':');
        p = p ? p + 1 : listen;

        if (p == listen || strncmp(listen, "*:", 2) == 0
            || strncmp(listen, "0.0.0.0:", 8) == 0
            || strncmp(listen, "[::]:", 5) == 0)
        {
            snprintf(buf, sizeof(buf), "http://127.0.0.1:%s", p);

        } else {
            snprintf(buf, sizeof(buf), "http://%s", listen);
        }

        return buf;
    }

    return "http://127.0.0.1:4000";
}


const char *
ctl_config_path(const char *flag)
{
    const char  *v;

    if (flag) {
        return flag;
    }

    v = ctl_env("LLMPROXY_CONFIG");

    return v ? v : "configs/config.json";
}


const char *
ctl_database_url(const char *flag)
{
    static char  buf[4096];

    if (flag) {
        return flag;
    }

    if (ctl_env_set("LLMPROXY_DATABASE_URL")) {
        return ctl_env("LLMPROXY_DATABASE_URL");
    }

    return ctl_var_conf("llmproxy_database", buf, sizeof(buf));
}


const char *
ctl_salt_key(void)
{
    int          err;
    char         path[4096];
    static int   done;
    static char *key;

    if (ctl_env_set("LLMPROXY_SALT_KEY")) {
        return ctl_env("LLMPROXY_SALT_KEY");
    }

    /* read once, kept until exit like the environment's copy */

    if (!done && ctl_var_path(path, sizeof(path), "salt_key")) {
        key = ctl_read_key(path, &err);
    }

    done = 1;

    return key;
}


int
ctl_master_key_known(const char *flag_file)
{
    char  path[4096];

    return flag_file != NULL || ctl_env("LLMPROXY_MASTER_KEY") != NULL
           || (ctl_var_path(path, sizeof(path), "master_key")
               && access(path, R_OK) == 0);
}


int
ctl_admin_url(char *buf, size_t size, const char *gateway_flag,
    const char *endpoint)
{
    int          n;
    size_t       len;
    const char  *base;

    base = ctl_gateway_url(gateway_flag);
    len = strlen(base);

    while (len > 0 && base[len - 1] == '/') {
        len--;
    }

    n = snprintf(buf, size, "%.*s/llmproxy/admin/%s", (int) len, base,
                 endpoint);

    if (n < 0 || (size_t) n >= size) {
        fprintf(stderr, "llmproxyctl: gateway address too long\n");
        return -1;
    }

    return 0;
}


static char *
ctl_read_key(const char *file, int *err)
{
    char    buf[LLMP_MASTER_KEY_MAX], *key;
    size_t  n;
    FILE   *f;

    f = fopen(file, "r");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    *err = ferror(f) ? EIO : 0;
    fclose(f);

    buf[n] = '\0';

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                 || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
    {
        buf[--n] = '\0';
    }

    key = (*err == 0 && n) ? strdup(buf) : NULL;

    if (key == NULL && *err == 0) {
        *err = n ? ENOMEM : ENODATA;
    }

    explicit_bzero(buf, sizeof(buf));

    return key;
}


char *
ctl_master_key(const char *flag_file, const char *command)
{
    int          err;
    char        *key, path[4096];
    const char  *v;

    if (flag_file) {
        key = ctl_read_key(flag_file, &err);

        if (key == NULL) {
            fprintf(stderr, "llmproxyctl: %s: cannot read the master key "
                    "from \"%s\": %s\n", command, flag_file,
                    err == ENODATA ? "empty file" : strerror(err));
        }

        return key;
    }

    v = ctl_env("LLMPROXY_MASTER_KEY");
    if (v) {
        key = strdup(v);

        if (key == NULL) {
            fprintf(stderr, "llmproxyctl: out of memory\n");
        }

        return key;
    }

    if (ctl_var_path(path, sizeof(path), "master_key") == NULL) {
        fprintf(stderr, "llmproxyctl: LLMPROXY_VAR is too long\n");
        return NULL;
    }

    key = ctl_read_key(path, &err);

    if (key == NULL) {
        fprintf(stderr, "llmproxyctl: %s needs the gateway's master key: "
                "pass --master-key-file FILE, set LLMPROXY_MASTER_KEY, or "
                "run from the directory holding %s (%s)\n", command, path,
                err == ENODATA ? "it is empty" : strerror(err));
    }

    return key;
}


void
ctl_secret_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}


int
ctl_wants_help(int argc, char **argv)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }

    return 0;
}


/* "30d", "12h", "15m", "90s", "3600" to seconds; -1 if invalid */

long long
ctl_duration(const char *s)
{
    long long    n, unit;
    const char  *p;

    /* digits only: no sign, no blanks, no overflow */

    n = 0;

    for (p = s; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');

        if (n > LLMP_DURATION_MAX) {
            return -1;
        }
    }

    if (p == s) {
        return -1;
    }

    switch (*p) {
    case '\0': case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }

    if (*p && p[1] != '\0') {
        return -1;
    }

    if (n > LLMP_DURATION_MAX / unit) {
        return -1;
    }

    return n * unit;
}


int
ctl_option_repeated(char seen[128], int c, const struct option *opts)
{
    if (c <= 0 || c >= 128 || seen[c]++ == 0) {
        return 0;
    }

    while (opts->name && opts->val != c) {
        opts++;
    }

    if (opts->name) {
        fprintf(stderr, "llmproxyctl: --%s given more than once\n",
                opts->name);

    } else {
        fprintf(stderr, "llmproxyctl: -%c given more than once\n", c);
    }

    return -1;
}

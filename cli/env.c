/*
 * llmproxyctl: gateway address, master key and config path, from flags
 * or the environment (the same variables as `make run`).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"


#define LLMP_MASTER_KEY_FILE  "var/master_key"
#define LLMP_MASTER_KEY_MAX   4096


static const char *
llmp_env(const char *name)
{
    const char  *v;

    v = getenv(name);

    return (v && v[0]) ? v : NULL;
}


const char *
llmp_gateway_url(const char *flag)
{
    static char   buf[1024];
    const char   *v;

    if (flag) {
        return flag;
    }

    v = llmp_env("LLMPROXY_GATEWAY_URL");
    if (v) {
        return v;
    }

    v = llmp_env("LLMPROXY_LISTEN");
    if (v && strlen(v) < sizeof(buf) - sizeof("http://")) {
        snprintf(buf, sizeof(buf), "http://%s", v);
        return buf;
    }

    return "http://127.0.0.1:4000";
}


const char *
llmp_config_path(const char *flag)
{
    const char  *v;

    if (flag) {
        return flag;
    }

    v = llmp_env("LLMPROXY_CONFIG");

    return v ? v : "configs/config.json";
}


const char *
llmp_database_url(const char *flag)
{
    return flag ? flag : llmp_env("LLMPROXY_DATABASE_URL");
}


int
llmp_admin_url(char *buf, size_t size, const char *gateway_flag,
    const char *endpoint)
{
    int          n;
    size_t       len;
    const char  *base;

    base = llmp_gateway_url(gateway_flag);
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
llmp_read_key(const char *file, int *err)
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
llmp_master_key(const char *flag_file, const char *command)
{
    int          err;
    char        *key;
    const char  *v;

    if (flag_file) {
        key = llmp_read_key(flag_file, &err);

        if (key == NULL) {
            fprintf(stderr, "llmproxyctl: %s: cannot read the master key "
                    "from \"%s\": %s\n", command, flag_file,
                    err == ENODATA ? "empty file" : strerror(err));
        }

        return key;
    }

    v = llmp_env("LLMPROXY_MASTER_KEY");
    if (v) {
        key = strdup(v);

        if (key == NULL) {
            fprintf(stderr, "llmproxyctl: out of memory\n");
        }

        return key;
    }

    key = llmp_read_key(LLMP_MASTER_KEY_FILE, &err);

    if (key == NULL) {
        fprintf(stderr, "llmproxyctl: %s needs the gateway's master key: "
                "pass --master-key-file FILE, set LLMPROXY_MASTER_KEY, or "
                "run from the directory holding " LLMP_MASTER_KEY_FILE
                " (%s)\n", command,
                err == ENODATA ? "it is empty" : strerror(err));
    }

    return key;
}


void
llmp_secret_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}


int
llmp_wants_help(int argc, char **argv)
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
llmp_duration(const char *s)
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
llmp_option_repeated(char seen[128], int c, const struct option *opts)
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

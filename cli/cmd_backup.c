/*
 * llmproxyctl backup, backup list, restore (SPEC section 11).
 *
 * A backup is a directory (local) or a prefix (S3) named
 * llmproxy-YYYYMMDDTHHMMSS.mmmZ holding one gzip'd COPY (text format) of
 * each llmproxy table, read in one read-only repeatable-read transaction
 * so that keys, config and usage agree with each other; optional ustar
 * archives (gzip'd) of directories; and manifest.json, written last, with
 * the schema version, row counts and the size and SHA-256 of every file.
 * A backup without its manifest is incomplete and never restored.
 *
 * restore checks every file against the manifest before it connects to
 * the database, then replaces the tables' contents in one transaction.
 * Gateways poll by change number (llmproxy_change_seq): the restored keys
 * and config get fresh numbers so that every gateway loads them, and keys
 * the backup does not have are kept as revoked rows, so that no gateway
 * keeps accepting a key it still holds in memory.
 */

#define _XOPEN_SOURCE  700
#define _DEFAULT_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <zlib.h>

#include "cli.h"
#include "llmp_sha256.h"
#include "s3.h"


#ifndef LLMP_VERSION
#define LLMP_VERSION  "0.1"
#endif

#define LLMP_BACKUP_FORMAT   1
#define LLMP_BACKUP_MAX_PATHS  32
#define LLMP_BACKUP_MANIFEST "manifest.json"


/* where backups are: a local directory or an S3 prefix */
typedef struct {
    char       *dir;
    int         is_s3;
    ctl_s3_t   s3;
} ctl_store_t;


/* one file of a backup being written: gzip, SHA-256 of what is stored */
typedef struct {
    ctl_store_t       *store;
    char                file[256];
    FILE               *f;
    ctl_s3_upload_t   *up;
    z_stream            z;
    int                 zinit;
    llmp_sha256_ctx_t   sha;
    long long           bytes;
    long long           raw;
    int                 failed;
    unsigned char       out[65536];
} ctl_part_t;


typedef struct {
    const char  *to;
    const char  *dir;
    const char  *database;
    const char  *paths[LLMP_BACKUP_MAX_PATHS];
    int          npaths;
    long         keep;
    size_t       part_size;
    int          force;
    int          dry_run;
    const char  *files;
} ctl_backup_opts_t;


static double
ctl_now(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return tv.tv_sec + tv.tv_usec / 1e6;
}


static int
ctl_store_open(ctl_store_t *st, const char *uri, const char *dir,
    size_t part_size)
{
    const char  *v;

    memset(st, 0, sizeof(ctl_store_t));

    if (uri && strncmp(uri, "s3://", 5) == 0) {
        st->is_s3 = 1;

        if (ctl_s3_open(&st->s3, uri) != 0) {
            return -1;
        }

        if (part_size) {
            st->s3.part_size = part_size;
        }

        return 0;
    }

    v = uri ? uri : dir;

    if (v == NULL) {
        v = getenv("LLMPROXY_BACKUP_DIR");
        if (v && v[0] == '\0') {
            v = NULL;
        }
    }

    if (v == NULL) {
        fprintf(stderr, "llmproxyctl: where are the backups? --to/--from "
                "s3://BUCKET/PREFIX, or --dir DIR (or LLMPROXY_BACKUP_DIR)"
                "\n");
        return -1;
    }

    st->dir = strdup(v);
    if (st->dir == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    return 0;
}


static void
ctl_store_close(ctl_store_t *st)
{
    if (st->is_s3) {
        ctl_s3_close(&st->s3);
    }

    free(st->dir);
}


static int
ctl_rm_entry(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
    return remove(path);
}


static int
ctl_rm_tree(const char *path)
{
    return nftw(path, ctl_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}


static int
ctl_valid_name(const char *name)
{
    const char  *p;

    if (strncmp(name, "llmproxy-", 9) != 0 || strlen(name) > 64) {
        return 0;
    }

    for (p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* writing one file */

static int
ctl_part_emit(ctl_part_t *p, const void *data, size_t len)
{
    if (len == 0) {
        return 0;
    }

    llmp_sha256_update(&p->sha, data, len);
    p->bytes += len;

    if (p->f) {
        if (fwrite(data, 1, len, p->f) != len) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", p->file,
                    strerror(errno));
            return -1;
        }

        return 0;
    }

    return ctl_s3_upload_write(p->up, data, len);
}


/* dir: where a local backup is being written (NAME.partial) */
static int
ctl_part_open(ctl_part_t *p, ctl_store_t *st, const char *name,
    const char *dir, const char *file, int compress)
{
    int   fd;
    char  path[PATH_MAX + 256];

    memset(p, 0, offsetof(ctl_part_t, out));
    p->store = st;
    snprintf(p->file, sizeof(p->file), "%s", file);
    llmp_sha256_init(&p->sha);

    if (st->is_s3) {
        snprintf(path, sizeof(path), "%s/%s", name, file);
        p->up = ctl_s3_upload_start(&st->s3, path);
        if (p->up == NULL) {
            return -1;
        }

    } else {
        /* 0600: a backup holds key hashes and sealed provider keys */

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        p->f = fd == -1 ? NULL : fdopen(fd, "w");
        if (p->f == NULL) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
            return -1;
        }
    }

    if (compress) {
        /* gzip (windowBits 15 + 16): the parts read with zcat */
        if (deflateInit2(&p->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16,
                         8, Z_DEFAULT_STRATEGY) != Z_OK)
        {
            fprintf(stderr, "llmproxyctl: zlib failed\n");
            return -1;
        }

        p->zinit = 1;
    }

    return 0;
}


static int
ctl_part_deflate(ctl_part_t *p, const void *data, size_t len, int flush)
{
    int  rc;

    p->z.next_in = (unsigned char *) data;
    p->z.avail_in = (uInt) len;

    do {
        p->z.next_out = p->out;
        p->z.avail_out = sizeof(p->out);

        rc = deflate(&p->z, flush);
        if (rc == Z_STREAM_ERROR) {
            fprintf(stderr, "llmproxyctl: zlib failed\n");
            return -1;
        }

        if (ctl_part_emit(p, p->out, sizeof(p->out) - p->z.avail_out)
            != 0)
        {
            return -1;
        }

    } while (p->z.avail_out == 0
             || (flush == Z_FINISH && rc != Z_STREAM_END));

    return 0;
}


static int
ctl_part_write(ctl_part_t *p, const void *data, size_t len)
{
    if (p->failed) {
        return -1;
    }

    p->raw += len;

    if (!p->zinit) {
        p->failed = ctl_part_emit(p, data, len) != 0;
        return p->failed ? -1 : 0;
    }

    /* at most 1 GB at a time: avail_in is an unsigned int */

    while (len > 0) {
        size_t  n = len > (1U << 30) ? (1U << 30) : len;

        if (ctl_part_deflate(p, data, n, Z_NO_FLUSH) != 0) {
            p->failed = 1;
            return -1;
        }

        data = (const char *) data + n;
        len -= n;
    }

    return 0;
}


static void
ctl_part_abort(ctl_part_t *p)
{
    if (p->zinit) {
        deflateEnd(&p->z);
        p->zinit = 0;
    }

    if (p->f) {
        fclose(p->f);
        p->f = NULL;
    }

    if (p->up) {
        ctl_s3_upload_abort(p->up);
        p->up = NULL;
    }
}


/* finishes the file and describes it in entry */
static int
ctl_part_close(ctl_part_t *p, cJSON *entry)
{
    int            rc;
    char           hex[65];
    unsigned char  digest[32];

    if (p->failed
        || (p->zinit && ctl_part_deflate(p, "", 0, Z_FINISH) != 0))
    {
        ctl_part_abort(p);
        return -1;
    }

    if (p->zinit) {
        deflateEnd(&p->z);
        p->zinit = 0;
    }

    if (p->f) {
        rc = fflush(p->f) != 0 || fsync(fileno(p->f)) != 0;
        rc |= fclose(p->f) != 0;
        p->f = NULL;

        if (rc) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", p->file,
                    strerror(errno));
            return -1;
        }

    } else {
        rc = ctl_s3_upload_finish(p->up);
        p->up = NULL;

        if (rc != 0) {
            return -1;
        }
    }

    llmp_sha256_final(&p->sha, digest);
    llmp_sha256_hex(digest, hex);

    cJSON_AddStringToObject(entry, "file", p->file);
    cJSON_AddNumberToObject(entry, "bytes", (double) p->bytes);
    cJSON_AddNumberToObject(entry, "raw_bytes", (double) p->raw);
    cJSON_AddStringToObject(entry, "sha256", hex);

    return 0;
}


/* ustar archives of directories */

static void
ctl_tar_octal(char *field, size_t size, unsigned long long v)
{
    char  buf[32];

    /* a value too large for the field keeps its low digits */
    snprintf(buf, sizeof(buf), "%022llo", v);
    memcpy(field, buf + 22 - (size - 1), size - 1);
}


/* the raw 512-byte header; name and link are cut to their fields */
static int
ctl_tar_block(ctl_part_t *p, const char *name, size_t name_len,
    const char *prefix, size_t prefix_len, const struct stat *sb, char type,
    const char *link, long long size)
{
    char          h[512];
    size_t        n;
    unsigned int  sum, i;

    memset(h, 0, sizeof(h));

    memcpy(h, name, name_len > 100 ? 100 : name_len);

    if (prefix) {
        memcpy(h + 345, prefix, prefix_len > 155 ? 155 : prefix_len);
    }

    ctl_tar_octal(h + 100, 8, sb->st_mode & 07777);
    ctl_tar_octal(h + 108, 8, sb->st_uid);
    ctl_tar_octal(h + 116, 8, sb->st_gid);
    ctl_tar_octal(h + 124, 12, (unsigned long long) size);
    ctl_tar_octal(h + 136, 12, (unsigned long long) sb->st_mtime);
    memset(h + 148, ' ', 8);
    h[156] = type;

    if (link) {
        n = strlen(link);
        memcpy(h + 157, link, n > 100 ? 100 : n);
    }

    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);

    for (sum = 0, i = 0; i < sizeof(h); i++) {
        sum += (unsigned char) h[i];
    }

    snprintf(h + 148, 8, "%06o", sum);

    return ctl_part_write(p, h, sizeof(h));
}


/* one pax record, "LEN key=value\n", LEN counting itself */
static void
ctl_pax_record(char *buf, size_t size, size_t *used, const char *key,
    const char *value)
{
    size_t  len, n, digits;

    n = strlen(key) + strlen(value) + 3;

    for (digits = 1, len = n + 1; ; digits++) {
        len = n + digits;
        if (snprintf(NULL, 0, "%zu", len) == (int) digits) {
            break;
        }
    }

    if (*used + len < size) {
        snprintf(buf + *used, size - *used, "%zu %s=%s\n", len, key, value);
        *used += len;
    }
}


/*
 * A ustar header, preceded by a pax extended header ('x') with the whole
 * path or link target when they do not fit the ustar fields.
 */
static int
ctl_tar_header(ctl_part_t *p, const char *name, const struct stat *sb,
    char type, const char *link, long long size)
{
    char         pax[2 * PATH_MAX + 64], zero[512];
    size_t       len, cut, used;
    struct stat  xsb;

    len = strlen(name);

    if (len <= 100 && (link == NULL || strlen(link) <= 100)) {
        return ctl_tar_block(p, name, len, NULL, 0, sb, type, link, size);
    }

    /* prefix (155) '/' name (100), cut at a slash */

    cut = len > 101 ? len - 101 : 0;
    while (cut < len && name[cut] != '/') {
        cut++;
    }

    if (len > 100 && cut > 0 && cut < len && cut <= 155
        && len - cut - 1 <= 100 && (link == NULL || strlen(link) <= 100))
    {
        return ctl_tar_block(p, name + cut + 1, len - cut - 1, name, cut,
                              sb, type, link, size);
    }

    used = 0;

    if (len > 100) {
        ctl_pax_record(pax, sizeof(pax), &used, "path", name);
    }

    if (link && strlen(link) > 100) {
        ctl_pax_record(pax, sizeof(pax), &used, "linkpath", link);
    }

    xsb = *sb;
    xsb.st_mode = 0644;

    memset(zero, 0, sizeof(zero));

    if (ctl_tar_block(p, "././@PaxHeader", 14, NULL, 0, &xsb, 'x', NULL,
                       (long long) used) != 0
        || ctl_part_write(p, pax, used) != 0
        || ctl_part_write(p, zero, (512 - used % 512) % 512) != 0)
    {
        return -1;
    }

    return ctl_tar_block(p, name, len, NULL, 0, sb, type, link, size);
}


static int
ctl_tar_file(ctl_part_t *p, const char *path, const char *name,
    const struct stat *sb)
{
    int        fd, rc;
    char       buf[65536];
    ssize_t    n;
    long long  left;

    fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd == -1) {
        fprintf(stderr, "llmproxyctl: %s: %s, left out\n", path,
                strerror(errno));
        return 0;
    }

    rc = ctl_tar_header(p, name, sb, '0', NULL, sb->st_size);
    if (rc != 0) {
        close(fd);
        return rc < 0 ? -1 : 0;
    }

    /* exactly the size in the header, even if the file changes */

    for (left = sb->st_size; left > 0; left -= n) {
        n = read(fd, buf, left < (long long) sizeof(buf) ? (size_t) left
                                                         : sizeof(buf));
        if (n <= 0) {
            fprintf(stderr, "llmproxyctl: %s: shrank while archived\n",
                    path);
            memset(buf, 0, sizeof(buf));
            n = left < (long long) sizeof(buf) ? left : (long long)
                                                         sizeof(buf);
        }

        if (ctl_part_write(p, buf, n) != 0) {
            close(fd);
            return -1;
        }
    }

    close(fd);

    memset(buf, 0, 512);
    n = (512 - sb->st_size % 512) % 512;

    return ctl_part_write(p, buf, n);
}


static int
ctl_tar_dir(ctl_part_t *p, const char *path, const char *name,
    long long *count)
{
    int             rc, i, n;
    char            sub[PATH_MAX], subname[PATH_MAX], link[PATH_MAX];
    ssize_t         len;
    struct stat     sb;
    struct dirent **list;

    n = scandir(path, &list, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
        return -1;
    }

    rc = 0;

    for (i = 0; i < n; i++) {
        if (rc != 0 || strcmp(list[i]->d_name, ".") == 0
            || strcmp(list[i]->d_name, "..") == 0)
        {
            free(list[i]);
            continue;
        }

        snprintf(sub, sizeof(sub), "%s/%s", path, list[i]->d_name);
        snprintf(subname, sizeof(subname), "%s/%s", name, list[i]->d_name);
        free(list[i]);

        if (lstat(sub, &sb) != 0) {
            continue;
        }

        if (S_ISDIR(sb.st_mode)) {
            strncat(subname, "/", sizeof(subname) - strlen(subname) - 1);
            rc = ctl_tar_header(p, subname, &sb, '5', NULL, 0);
            subname[strlen(subname) - 1] = '\0';
            rc = rc < 0 ? -1 : ctl_tar_dir(p, sub, subname, count);

        } else if (S_ISREG(sb.st_mode)) {
            rc = ctl_tar_file(p, sub, subname, &sb);
            (*count)++;

        } else if (S_ISLNK(sb.st_mode)) {
            len = readlink(sub, link, sizeof(link) - 1);
            if (len < 0) {
                continue;
            }
            link[len] = '\0';
            rc = ctl_tar_header(p, subname, &sb, '2', link, 0);
            rc = rc < 0 ? -1 : 0;

        } else {
            fprintf(stderr, "llmproxyctl: %s: not a file, directory or "
                    "link, left out\n", sub);
        }
    }

    free(list);

    return rc;
}


static int
ctl_backup_path(ctl_store_t *st, const char *name, const char *dir,
    const char *path, int i, cJSON *paths)
{
    char          file[256], base[256], zero[1024];
    char         *c;
    cJSON        *entry;
    const char   *b;
    long long     count;
    struct stat   sb;
    ctl_part_t   part;
    size_t        len;

    len = strlen(path);
    while (len > 1 && path[len - 1] == '/') {
        len--;
    }

    snprintf(base, sizeof(base), "%.*s", (int) len, path);
    b = strrchr(base, '/');
    b = b ? b + 1 : base;
    if (*b == '\0') {
        b = "root";
    }

    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "llmproxyctl: --path %s: not a directory\n", path);
        return -1;
    }

    snprintf(file, sizeof(file), "path-%d-%.64s.tar.gz", i + 1, b);
    for (c = file; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
        {
            *c = '_';
        }
    }

    if (ctl_part_open(&part, st, name, dir, file, 1) != 0) {
        ctl_part_abort(&part);
        return -1;
    }

    count = 0;
    snprintf(base, sizeof(base), "%s", b);
    strncat(base, "/", sizeof(base) - strlen(base) - 1);

    memset(zero, 0, sizeof(zero));

    if (ctl_tar_header(&part, base, &sb, '5', NULL, 0) < 0
        || ctl_tar_dir(&part, path, b, &count) != 0
        || ctl_part_write(&part, zero, sizeof(zero)) != 0)
    {
        ctl_part_abort(&part);
        return -1;
    }

    entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "path", path);
    cJSON_AddNumberToObject(entry, "files", (double) count);

    if (ctl_part_close(&part, entry) != 0) {
        cJSON_Delete(entry);
        return -1;
    }

    cJSON_AddItemToArray(paths, entry);

    return 0;
}


/* the database */

static PGresult *
ctl_sql(PGconn *conn, const char *sql, int nparams, const char **params)
{
    PGresult  *res;

    res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }

    return res;
}


static int
ctl_sql_ok(PGconn *conn, const char *sql)
{
    PGresult  *res;

    res = ctl_sql(conn, sql, 0, NULL);
    PQclear(res);

    return res ? 0 : -1;
}


/* "t (a, b, c)" quoted, from the manifest's entry or the catalog */
static char *
ctl_table_target(PGconn *conn, const char *table, const cJSON *columns)
{
    char         *q, *out;
    size_t        len;
    const cJSON  *c;

    len = 0;
    out = NULL;

    q = PQescapeIdentifier(conn, table, strlen(table));
    if (q == NULL) {
        return NULL;
    }

    len = strlen(q) + 3;
    out = malloc(len);
    snprintf(out, len, "%s (", q);
    PQfreemem(q);

    cJSON_ArrayForEach(c, columns) {
        q = PQescapeIdentifier(conn, c->valuestring, strlen(c->valuestring));
        if (q == NULL) {
            free(out);
            return NULL;
        }

        len += strlen(q) + 2;
        out = realloc(out, len);
        if (c != columns->child) {
            strcat(out, ", ");
        }
        strcat(out, q);
        PQfreemem(q);
    }

    strcat(out, ")");

    return out;
}


static int
ctl_backup_table(PGconn *conn, ctl_store_t *st, const char *name,
    const char *dir, const char *table, cJSON *tables, long long *rows)
{
    int           n, i;
    char          file[256], *target, *sql, *buf;
    cJSON        *entry, *columns;
    PGresult     *res;
    const char   *params[1];
    ctl_part_t   part;

    params[0] = table;

    res = ctl_sql(conn,
        "SELECT a.attname FROM pg_attribute a"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum", 1, params);

    if (res == NULL) {
        return -1;
    }

    entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "table", table);
    columns = cJSON_AddArrayToObject(entry, "columns");

    for (i = 0; i < PQntuples(res); i++) {
        cJSON_AddItemToArray(columns,
                             cJSON_CreateString(PQgetvalue(res, i, 0)));
    }

    PQclear(res);

    target = ctl_table_target(conn, table, columns);
    sql = target ? malloc(strlen(target) + 64) : NULL;

    if (sql == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        free(target);
        cJSON_Delete(entry);
        return -1;
    }

    sprintf(sql, "COPY %s TO STDOUT", target);
    free(target);

    snprintf(file, sizeof(file), "%s.copy.gz", table);

    if (ctl_part_open(&part, st, name, dir, file, 1) != 0) {
        ctl_part_abort(&part);
        free(sql);
        cJSON_Delete(entry);
        return -1;
    }

    res = PQexec(conn, sql);
    free(sql);

    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        ctl_part_abort(&part);
        cJSON_Delete(entry);
        return -1;
    }

    PQclear(res);

    /* one row per call; written on even when the upload failed, so that
     * the COPY ends */

    while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
        ctl_part_write(&part, buf, (size_t) n);
        PQfreemem(buf);
    }

    res = PQgetResult(conn);

    if (n != -1 || PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        while ((res = PQgetResult(conn)) != NULL) {
            PQclear(res);
        }
        ctl_part_abort(&part);
        cJSON_Delete(entry);
        return -1;
    }

    *rows = atoll(PQcmdTuples(res));
    PQclear(res);

    cJSON_AddNumberToObject(entry, "rows", (double) *rows);

    if (ctl_part_close(&part, entry) != 0) {
        cJSON_Delete(entry);
        return -1;
    }

    cJSON_AddItemToArray(tables, entry);

    return 0;
}


static void
ctl_backup_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl backup [--to s3://BUCKET/PREFIX | --dir DIR]\n"
        "                          [--path DIR ...] [--keep N] "
        "[--part-size 16m]\n"
        "                          [--database URL]\n"
        "       llmproxyctl backup list [--from s3://BUCKET/PREFIX | "
        "--dir DIR] [--json]\n\n"
        "A consistent snapshot of llmproxy's tables (keys, config, usage)\n"
        "in one read-only transaction, gzip'd, with a manifest of row\n"
        "counts and SHA-256 sums; `llmproxyctl restore NAME` brings it "
        "back.\n\n"
        "options:\n"
        "  --to s3://B/P    an S3 bucket and prefix (AWS_ACCESS_KEY_ID,\n"
        "                   AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, "
        "AWS_REGION;\n"
        "                   LLMPROXY_S3_ENDPOINT for an S3-compatible "
        "store)\n"
        "  --dir DIR        a local directory instead (LLMPROXY_BACKUP_DIR)"
        "\n"
        "  --path DIR       also a tar archive of this directory "
        "(repeatable)\n"
        "  --keep N         then delete all but the newest N backups\n"
        "  --part-size 16m  multipart upload above this size "
        "(LLMPROXY_S3_PART_SIZE)\n"
        "  --database URL   PostgreSQL (LLMPROXY_DATABASE_URL)\n");
}


/* the backups in a store, sorted by name: complete ones have a manifest */
typedef struct {
    char       name[80];
    int        complete;
    long long  bytes;
    int        files;
} ctl_backup_item_t;


static int
ctl_backup_item_cmp(const void *a, const void *b)
{
    return strcmp(((const ctl_backup_item_t *) a)->name,
                  ((const ctl_backup_item_t *) b)->name);
}


static int
ctl_store_list(ctl_store_t *st, ctl_backup_item_t **items, size_t *n)
{
    char                 path[PATH_MAX], name[72];
    DIR                 *d;
    size_t               i, cap, len;
    const char          *slash;
    struct stat          sb;
    struct dirent       *e;
    ctl_s3_object_t    *objs;
    ctl_backup_item_t  *list, *it;
    size_t               nobjs;

    *items = NULL;
    *n = 0;
    list = NULL;
    cap = 0;

    if (st->is_s3) {
        if (ctl_s3_list(&st->s3, "llmproxy-", &objs, &nobjs) != 0) {
            return -1;
        }

        for (i = 0; i < nobjs; i++) {
            slash = strchr(objs[i].key, '/');
            len = slash ? (size_t) (slash - objs[i].key) : 0;

            if (len == 0 || len >= sizeof(name)) {
                continue;
            }

            memcpy(name, objs[i].key, len);
            name[len] = '\0';

            if (!ctl_valid_name(name)) {
                continue;
            }

            it = *n ? &list[*n - 1] : NULL;

            if (it == NULL || strcmp(it->name, name) != 0) {
                if (*n == cap) {
                    cap = cap ? cap * 2 : 16;
                    list = realloc(list, cap * sizeof(ctl_backup_item_t));
                    if (list == NULL) {
                        ctl_s3_objects_free(objs, nobjs);
                        return -1;
                    }
                }

                it = &list[(*n)++];
                memset(it, 0, sizeof(ctl_backup_item_t));
                memcpy(it->name, name, len + 1);
            }

            it->bytes += objs[i].size;
            it->files++;

            if (strcmp(slash + 1, LLMP_BACKUP_MANIFEST) == 0) {
                it->complete = 1;
            }
        }

        ctl_s3_objects_free(objs, nobjs);

        *items = list;

        return 0;
    }

    d = opendir(st->dir);
    if (d == NULL) {
        fprintf(stderr, "llmproxyctl: %s: %s\n", st->dir, strerror(errno));
        return -1;
    }

    while ((e = readdir(d)) != NULL) {
        len = strlen(e->d_name);

        if (len >= sizeof(name) - 8) {
            continue;
        }

        memcpy(name, e->d_name, len + 1);

        if (len > 8 && strcmp(name + len - 8, ".partial") == 0) {
            name[len - 8] = '\0';
        }

        if (!ctl_valid_name(name)) {
            continue;
        }

        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            list = realloc(list, cap * sizeof(ctl_backup_item_t));
            if (list == NULL) {
                closedir(d);
                return -1;
            }
        }

        it = &list[(*n)++];
        memset(it, 0, sizeof(ctl_backup_item_t));
        snprintf(it->name, sizeof(it->name), "%s", e->d_name);

        snprintf(path, sizeof(path), "%s/%s/%s", st->dir, e->d_name,
                 LLMP_BACKUP_MANIFEST);
        it->complete = strcmp(name, e->d_name) == 0
                       && stat(path, &sb) == 0;

        snprintf(path, sizeof(path), "%s/%s", st->dir, e->d_name);
        {
            DIR            *sd;
            struct dirent  *se;
            char            f[PATH_MAX + 256];

            sd = opendir(path);
            while (sd && (se = readdir(sd)) != NULL) {
                snprintf(f, sizeof(f), "%s/%s", path, se->d_name);
                if (se->d_name[0] != '.' && stat(f, &sb) == 0) {
                    it->bytes += sb.st_size;
                    it->files++;
                }
            }
            if (sd) {
                closedir(sd);
            }
        }
    }

    closedir(d);

    if (*n) {
        qsort(list, *n, sizeof(ctl_backup_item_t), ctl_backup_item_cmp);
    }

    *items = list;

    return 0;
}


static int
ctl_store_delete(ctl_store_t *st, const char *name)
{
    int                rc;
    char               path[PATH_MAX], sub[128];
    size_t             i, n;
    ctl_s3_object_t  *objs;

    if (!st->is_s3) {
        snprintf(path, sizeof(path), "%s/%s", st->dir, name);
        return ctl_rm_tree(path) == 0 ? 0 : -1;
    }

    snprintf(sub, sizeof(sub), "%s/", name);

    if (ctl_s3_list(&st->s3, sub, &objs, &n) != 0) {
        return -1;
    }

    rc = 0;

    /* the manifest first: what is left of a failed prune is incomplete */

    for (i = 0; i < n; i++) {
        if (strcmp(objs[i].key + strlen(sub), LLMP_BACKUP_MANIFEST) == 0) {
            rc |= ctl_s3_delete(&st->s3, objs[i].key);
        }
    }

    for (i = 0; rc == 0 && i < n; i++) {
        if (strcmp(objs[i].key + strlen(sub), LLMP_BACKUP_MANIFEST) != 0) {
            rc |= ctl_s3_delete(&st->s3, objs[i].key);
        }
    }

    ctl_s3_objects_free(objs, n);

    return rc;
}


/* all but the newest keep complete backups, and older incomplete ones */
static int
ctl_backup_prune(ctl_store_t *st, long keep)
{
    int                  rc;
    long                 seen;
    size_t               n, i;
    ctl_backup_item_t  *items;

    if (ctl_store_list(st, &items, &n) != 0) {
        return -1;
    }

    rc = 0;
    seen = 0;

    for (i = n; i-- > 0; ) {
        if (seen < keep) {
            seen += items[i].complete;
            continue;
        }

        if (ctl_store_delete(st, items[i].name) != 0) {
            fprintf(stderr, "llmproxyctl: could not delete backup %s\n",
                    items[i].name);
            rc = -1;
            continue;
        }

        printf("deleted %s\n", items[i].name);
    }

    free(items);

    return rc;
}


static int
ctl_backup_list(int argc, char **argv)
{
    int                  c, json, rc;
    size_t               n, i;
    cJSON               *root, *o;
    char                *out;
    const char          *from, *dir;
    ctl_store_t         st;
    ctl_backup_item_t  *items;

    static const struct option  opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "dir", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    from = NULL;
    dir = NULL;
    json = 0;

    optind = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            ctl_backup_help(stdout);
            return LLMP_EXIT_OK;
        default:
            ctl_backup_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: backup list: unexpected \"%s\"\n",
                argv[optind]);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_store_open(&st, from, dir, 0) != 0) {
        ctl_store_close(&st);
        return LLMP_EXIT_INVALID;
    }

    rc = ctl_store_list(&st, &items, &n);
    ctl_store_close(&st);

    if (rc != 0) {
        return LLMP_EXIT_FAILED;
    }

    if (json) {
        root = cJSON_CreateArray();

        for (i = 0; i < n; i++) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", items[i].name);
            cJSON_AddBoolToObject(o, "complete", items[i].complete);
            cJSON_AddNumberToObject(o, "files", items[i].files);
            cJSON_AddNumberToObject(o, "bytes", (double) items[i].bytes);
            cJSON_AddItemToArray(root, o);
        }

        out = cJSON_Print(root);
        printf("%s\n", out);
        free(out);
        cJSON_Delete(root);

    } else {
        printf("%-34s %12s %5s  %s\n", "NAME", "BYTES", "FILES", "STATE");

        for (i = 0; i < n; i++) {
            printf("%-34s %12lld %5d  %s\n", items[i].name, items[i].bytes,
                   items[i].files,
                   items[i].complete ? "complete"
                                     : "incomplete (no manifest)");
        }
    }

    free(items);

    return LLMP_EXIT_OK;
}


int
ctl_cmd_backup(int argc, char **argv)
{
    int                  c, rc, i;
    char                 name[72], dir[PATH_MAX], final[PATH_MAX], *json;
    char                *end;
    cJSON               *manifest, *tables, *paths;
    double               t0, secs;
    PGconn              *conn;
    PGresult            *res, *tres;
    long long            rows, total;
    ctl_store_t         st;
    ctl_backup_opts_t   o;

    static const struct option  opts[] = {
        { "to", required_argument, NULL, 't' },
        { "dir", required_argument, NULL, 'd' },
        { "path", required_argument, NULL, 'p' },
        { "keep", required_argument, NULL, 'k' },
        { "part-size", required_argument, NULL, 's' },
        { "database", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    if (argc > 1 && strcmp(argv[1], "list") == 0) {
        return ctl_backup_list(argc - 1, argv + 1);
    }

    memset(&o, 0, sizeof(ctl_backup_opts_t));

    optind = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {

        case 't':
            o.to = optarg;
            break;

        case 'd':
            o.dir = optarg;
            break;

        case 'p':
            if (o.npaths == LLMP_BACKUP_MAX_PATHS) {
                fprintf(stderr, "llmproxyctl: at most %d --path\n",
                        LLMP_BACKUP_MAX_PATHS);
                return LLMP_EXIT_INVALID;
            }
            o.paths[o.npaths++] = optarg;
            break;

        case 'k':
            errno = 0;
            o.keep = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || o.keep < 1) {
                fprintf(stderr, "llmproxyctl: --keep: expected a number "
                        "of backups, 1 or more\n");
                return LLMP_EXIT_INVALID;
            }
            break;

        case 's':
            o.part_size = ctl_size(optarg);
            if (o.part_size == 0) {
                fprintf(stderr, "llmproxyctl: --part-size: expected a size "
                        "such as 16m\n");
                return LLMP_EXIT_INVALID;
            }
            break;

        case 'D':
            o.database = optarg;
            break;

        case 'h':
            ctl_backup_help(stdout);
            return LLMP_EXIT_OK;

        default:
            ctl_backup_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "llmproxyctl: backup: unexpected \"%s\"\n",
                argv[optind]);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_store_open(&st, o.to, o.dir, o.part_size) != 0) {
        ctl_store_close(&st);
        return LLMP_EXIT_INVALID;
    }

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        ctl_store_close(&st);
        return LLMP_EXIT_FAILED;
    }

    t0 = ctl_now();
    rc = LLMP_EXIT_FAILED;
    manifest = NULL;
    dir[0] = '\0';
    name[0] = '\0';
    total = 0;

    /* one snapshot: keys, config and usage agree with each other */

    if (ctl_sql_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        != 0)
    {
        goto done;
    }

    res = ctl_sql(conn,
        "SELECT 'llmproxy-' || to_char(now() AT TIME ZONE 'UTC',"
        "   'YYYYMMDD\"T\"HH24MISS.MS\"Z\"'),"
        " to_char(now() AT TIME ZONE 'UTC',"
        "   'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " (SELECT max(version) FROM llmproxy_schema_migrations),"
        " (SELECT last_value FROM llmproxy_change_seq),"
        " current_setting('server_version')", 0, NULL);

    if (res == NULL) {
        goto done;
    }

    snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 0));

    manifest = cJSON_CreateObject();
    cJSON_AddNumberToObject(manifest, "format", LLMP_BACKUP_FORMAT);
    cJSON_AddStringToObject(manifest, "name", name);
    cJSON_AddStringToObject(manifest, "snapshot_at", PQgetvalue(res, 0, 1));
    cJSON_AddStringToObject(manifest, "llmproxy_version", LLMP_VERSION);
    cJSON_AddNumberToObject(manifest, "schema_version",
                            atoi(PQgetvalue(res, 0, 2)));
    cJSON_AddNumberToObject(manifest, "change_seq",
                            (double) atoll(PQgetvalue(res, 0, 3)));
    cJSON_AddStringToObject(manifest, "postgresql_version",
                            PQgetvalue(res, 0, 4));
    PQclear(res);

    if (!st.is_s3) {
        if (mkdir(st.dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", st.dir,
                    strerror(errno));
            goto done;
        }

        snprintf(dir, sizeof(dir), "%s/%s.partial", st.dir, name);
        if (mkdir(dir, 0700) != 0) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", dir, strerror(errno));
            dir[0] = '\0';
            goto done;
        }
    }

    /* every llmproxy table but the migrations' own */

    tres = ctl_sql(conn,
        "SELECT c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
        " AND c.relname LIKE 'llmproxy\\_%'"
        " AND c.relname <> 'llmproxy_schema_migrations'"
        " ORDER BY c.relname", 0, NULL);

    if (tres == NULL) {
        goto done;
    }

    tables = cJSON_AddArrayToObject(manifest, "tables");

    for (i = 0; i < PQntuples(tres); i++) {
        if (ctl_backup_table(conn, &st, name, dir, PQgetvalue(tres, i, 0),
                              tables, &rows) != 0)
        {
            PQclear(tres);
            goto done;
        }

        total += rows;
    }

    PQclear(tres);

    if (ctl_sql_ok(conn, "COMMIT") != 0) {
        goto done;
    }

    secs = ctl_now() - t0;

    paths = cJSON_AddArrayToObject(manifest, "paths");

    for (i = 0; i < o.npaths; i++) {
        if (ctl_backup_path(&st, name, dir, o.paths[i], i, paths) != 0) {
            goto done;
        }
    }

    cJSON_AddNumberToObject(manifest, "rows", (double) total);
    cJSON_AddNumberToObject(manifest, "seconds", secs);

    json = cJSON_Print(manifest);

    if (st.is_s3) {
        char  key[128];

        snprintf(key, sizeof(key), "%s/%s", name, LLMP_BACKUP_MANIFEST);
        i = ctl_s3_put(&st.s3, key, json, strlen(json));

    } else {
        int    fd;
        FILE  *f;
        char   path[PATH_MAX + 64];

        snprintf(path, sizeof(path), "%s/%s", dir, LLMP_BACKUP_MANIFEST);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        f = fd == -1 ? NULL : fdopen(fd, "w");
        i = f == NULL || fputs(json, f) == EOF || fflush(f) != 0
            || fsync(fileno(f)) != 0;
        i |= f != NULL && fclose(f) != 0;

        if (i) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
        }

        /* complete only once renamed into place */

        snprintf(final, sizeof(final), "%s/%s", st.dir, name);
        if (i == 0 && rename(dir, final) != 0) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", final, strerror(errno));
            i = -1;
        }

        if (i == 0) {
            dir[0] = '\0';
        }
    }

    free(json);

    if (i != 0) {
        goto done;
    }

    printf("backup %s: %d tables, %lld rows in %.2f s (%.0f rows/s)",
           name, cJSON_GetArraySize(tables), total, secs,
           secs > 0 ? total / secs : 0.0);
    if (o.npaths) {
        printf(", %d director%s", o.npaths, o.npaths == 1 ? "y" : "ies");
    }
    if (st.is_s3) {
        printf(" -> s3://%s/%s%s/\n", st.s3.bucket, st.s3.prefix, name);
    } else {
        printf(" -> %s/%s/\n", st.dir, name);
    }

    rc = LLMP_EXIT_OK;

    if (o.keep && ctl_backup_prune(&st, o.keep) != 0) {
        rc = LLMP_EXIT_FAILED;
    }

    name[0] = '\0';

done:

    if (rc != LLMP_EXIT_OK && name[0]) {
        /* leave nothing of a failed backup behind */

        if (st.is_s3) {
            ctl_store_delete(&st, name);

        } else if (dir[0]) {
            ctl_rm_tree(dir);
        }

        fprintf(stderr, "llmproxyctl: backup failed; nothing was kept\n");
    }

    cJSON_Delete(manifest);
    PQfinish(conn);
    ctl_store_close(&st);

    return rc;
}


/* restore */

static void
ctl_restore_help(FILE *f)
{
    fprintf(f,
        "usage: llmproxyctl restore NAME [--from s3://BUCKET/PREFIX | "
        "--dir DIR]\n"
        "                           [--dry-run] [--force] [--files DIR] "
        "[--database URL]\n\n"
        "Checks every file of backup NAME against its manifest, then, in "
        "one\n"
        "transaction, replaces the contents of llmproxy's tables with it "
        "(the\n"
        "schema is migrated first, so an empty database works).  Gateways "
        "pick\n"
        "up the restored keys and config by themselves; keys the backup "
        "lacks\n"
        "stay as revoked.\n\n"
        "options:\n"
        "  --from s3://B/P  the S3 bucket and prefix (as for backup)\n"
        "  --dir DIR        a local directory instead (LLMPROXY_BACKUP_DIR)"
        "\n"
        "  --dry-run        check the backup and say what it holds; touch "
        "nothing\n"
        "  --force          restore even over data newer than the backup "
        "(lost)\n"
        "  --files DIR      write the backup's directory archives "
        "(.tar.gz) here\n"
        "  --database URL   PostgreSQL (LLMPROXY_DATABASE_URL)\n");
}


/*
 * A table entry of the manifest restore may act on: an llmproxy table
 * (never another table of the database, whatever the manifest says),
 * with columns, each a name.
 */
static int
ctl_restore_table_ok(const cJSON *t)
{
    const char   *table, *p;
    const cJSON  *columns, *c;

    table = cJSON_GetStringValue(cJSON_GetObjectItem(t, "table"));
    columns = cJSON_GetObjectItem(t, "columns");

    if (table == NULL || strncmp(table, "llmproxy_", 9) != 0
        || strcmp(table, "llmproxy_schema_migrations") == 0
        || strlen(table) > 63 || !cJSON_IsArray(columns)
        || cJSON_GetArraySize(columns) == 0)
    {
        return 0;
    }

    for (p = table; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_'))
        {
            return 0;
        }
    }

    cJSON_ArrayForEach(c, columns) {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0') {
            return 0;
        }
    }

    return 1;
}


/* SHA-256 and size of a file */
static int
ctl_file_digest(const char *path, char hex[65], long long *size)
{
    int                fd;
    ssize_t            n;
    unsigned char      buf[65536], digest[32];
    llmp_sha256_ctx_t  sha;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return -1;
    }

    llmp_sha256_init(&sha);
    *size = 0;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        llmp_sha256_update(&sha, buf, (size_t) n);
        *size += n;
    }

    close(fd);

    if (n < 0) {
        return -1;
    }

    llmp_sha256_final(&sha, digest);
    llmp_sha256_hex(digest, hex);

    return 0;
}


/*
 * The file of entry, checked: *path is where it is (downloaded into tmp
 * from S3).  -1 reported.
 */
static int
ctl_restore_fetch(ctl_store_t *st, const char *name, const char *tmp,
    const cJSON *entry, char *path, size_t size)
{
    int          rc;
    char         hex[65], key[512];
    FILE        *f;
    long long    bytes;
    const char  *file, *sha;
    cJSON       *jb;

    file = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "file"));
    sha = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "sha256"));
    jb = cJSON_GetObjectItem(entry, "bytes");

    if (file == NULL || sha == NULL || !cJSON_IsNumber(jb)
        || strchr(file, '/') || file[0] == '.')
    {
        fprintf(stderr, "llmproxyctl: %s: the manifest is damaged\n", name);
        return -1;
    }

    if (st->is_s3) {
        snprintf(path, size, "%s/%s", tmp, file);
        snprintf(key, sizeof(key), "%s/%s", name, file);

        f = fopen(path, "w+x");
        if (f == NULL) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
            return -1;
        }

        rc = ctl_s3_get(&st->s3, key, f);
        fclose(f);

        if (rc == 1) {
            fprintf(stderr, "llmproxyctl: %s: %s is missing: the backup is "
                    "incomplete\n", name, file);
        }

        if (rc != 0) {
            return -1;
        }

    } else {
        snprintf(path, size, "%s/%s/%s", st->dir, name, file);
    }

    if (ctl_file_digest(path, hex, &bytes) != 0) {
        fprintf(stderr, "llmproxyctl: %s: %s: %s\n", name, file,
                strerror(errno));
        return -1;
    }

    if (bytes != (long long) jb->valuedouble) {
        fprintf(stderr, "llmproxyctl: %s: %s has %lld bytes, the manifest "
                "says %.0f: the backup is truncated or damaged\n", name,
                file, bytes, jb->valuedouble);
        return -1;
    }

    if (strcmp(hex, sha) != 0) {
        fprintf(stderr, "llmproxyctl: %s: %s does not match its SHA-256 "
                "in the manifest: the backup is damaged\n", name, file);
        return -1;
    }

    return 0;
}


static int
ctl_restore_copy(PGconn *conn, const char *path, const cJSON *entry,
    long long *rows)
{
    int          n;
    char        *target, *sql, buf[65536];
    gzFile       gz;
    PGresult    *res;
    const char  *table;

    table = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "table"));
    target = ctl_table_target(conn, table,
                               cJSON_GetObjectItem(entry, "columns"));
    if (target == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    sql = malloc(strlen(target) + 64);
    sprintf(sql, "COPY %s FROM STDIN", target);
    free(target);

    res = PQexec(conn, sql);
    free(sql);

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        fprintf(stderr, "llmproxyctl: database: %s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }

    PQclear(res);

    gz = gzopen(path, "rb");
    if (gz == NULL) {
        PQputCopyEnd(conn, "cannot open the backup file");
        goto result;
    }

    gzbuffer(gz, 65536);

    while ((n = gzread(gz, buf, sizeof(buf))) > 0) {
        if (PQputCopyData(conn, buf, n) != 1) {
            break;
        }
    }

    if (n < 0 || !gzeof(gz)) {
        PQputCopyEnd(conn, "the backup file does not decompress");

    } else {
        PQputCopyEnd(conn, NULL);
    }

    gzclose(gz);

result:

    res = PQgetResult(conn);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "llmproxyctl: database: %s: %s", table,
                PQerrorMessage(conn));
        PQclear(res);
        while ((res = PQgetResult(conn)) != NULL) {
            PQclear(res);
        }
        return -1;
    }

    *rows = atoll(PQcmdTuples(res));
    PQclear(res);

    return 0;
}


/* the statements around the COPYs, in the restore's transaction */

/* the entries of a NULL-terminated array */
#define CTL_NELTS(a)  ((int) (sizeof(a) / sizeof((a)[0])) - 1)


static const char  *ctl_restore_newer_sql =
    "SELECT"
    " EXISTS (SELECT 1 FROM llmproxy_keys WHERE updated_at > $1::timestamptz)"
    " OR EXISTS (SELECT 1 FROM llmproxy_config_entries"
    "   WHERE updated_at > $1::timestamptz)"
    " OR EXISTS (SELECT 1 FROM llmproxy_config_state"
    "   WHERE config_sha256 <> '' AND updated_at > $1::timestamptz)"
    " OR EXISTS (SELECT 1 FROM llmproxy_usage_rows"
    "   WHERE created_at > $1::timestamptz)"
    " OR EXISTS (SELECT 1 FROM llmproxy_usage_packs"
    "   WHERE last_at > $1::timestamptz)";


static const char  *ctl_restore_serials_sql =
    "DO $$ DECLARE r record; BEGIN"
    " FOR r IN SELECT c.relname, a.attname,"
    "   pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS seq"
    "   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   JOIN pg_attribute a ON a.attrelid = c.oid"
    "   WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    "   AND c.relname LIKE 'llmproxy\\_%' AND a.attnum > 0"
    "   AND NOT a.attisdropped"
    "   AND pg_get_serial_sequence(quote_ident(c.relname), a.attname)"
    "       IS NOT NULL"
    " LOOP"
    "   EXECUTE format('SELECT setval(%L, greatest(m,"
    "     (SELECT last_value FROM %s))) FROM (SELECT max(%I)::bigint AS m"
    "     FROM %I) x WHERE m IS NOT NULL', r.seq, r.seq, r.attname,"
    "     r.relname);"
    " END LOOP;"
    " END $$";


/*
 * The order the gateways take the tables in (a usage write: batches,
 * packs, rows, daily totals, keys; a sync: config state, entries), so
 * that a restore and a gateway never wait for each other in a circle.
 */
static const char  *ctl_restore_lock_order[] = {
    "llmproxy_usage_batches", "llmproxy_usage_packs", "llmproxy_usage_rows",
    "llmproxy_usage_daily", "llmproxy_keys", "llmproxy_config_state",
    "llmproxy_config_entries", NULL
};


/*
 * The records tables: a restore empties each of them, whether the backup
 * has it or not (an older one has neither: its records were the table
 * llmproxy_usage), so that no record from before the restore survives.
 * The migrations made them, so they are there.
 */
static const char  *ctl_restore_records[] = {
    "llmproxy_usage_packs", "llmproxy_usage_rows", NULL
};


/*
 * Tables of a backup of an older schema that a later migration renamed:
 * their rows go into the new name.
 */
static const struct {
    const char  *table;
    int          until;     /* the schema that renamed it */
    const char  *now;
} ctl_restore_renamed[] = {
    /* schema 10: llmproxy_usage became a view over the rows and packs */
    { "llmproxy_usage", 10, "llmproxy_usage_rows" },
    { NULL, 0, NULL }
};


/* list + ", " + the quoted table; NULL when out of memory (list freed) */
static char *
ctl_list_add(PGconn *conn, char *list, size_t *len, const char *table)
{
    char  *q, *p;

    if (list == NULL) {
        return NULL;
    }

    q = PQescapeIdentifier(conn, table, strlen(table));
    if (q == NULL) {
        free(list);
        return NULL;
    }

    *len += strlen(q) + 2;
    p = realloc(list, *len);

    if (p == NULL) {
        free(list);
        PQfreemem(q);
        return NULL;
    }

    if (p[0]) {
        strcat(p, ", ");
    }

    strcat(p, q);
    PQfreemem(q);

    return p;
}


/* 1 when table is one of names[0 .. n - 1] */
static int
ctl_name_in(const char **names, int n, const char *table)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strcmp(names[i], table) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
ctl_restore_apply(PGconn *conn, cJSON *manifest, char **files,
    int force, long long *total)
{
    int           i, n, schema, daily;
    char         *q, *sql, *list, num[32];
    size_t        len;
    cJSON        *tables, *t;
    PGresult     *res;
    long long     rows;
    const char   *params[1], *table, **names;
    const cJSON  *jr;

    tables = cJSON_GetObjectItem(manifest, "tables");
    schema = cJSON_GetObjectItem(manifest, "schema_version")->valueint;

    /* an older backup's table that a migration renamed: into its new name */

    cJSON_ArrayForEach(t, tables) {
        table = cJSON_GetStringValue(cJSON_GetObjectItem(t, "table"));

        for (i = 0; ctl_restore_renamed[i].table; i++) {
            if (schema < ctl_restore_renamed[i].until
                && strcmp(table, ctl_restore_renamed[i].table) == 0)
            {
                cJSON_ReplaceItemInObject(t, "table",
                    cJSON_CreateString(ctl_restore_renamed[i].now));
                break;
            }
        }
    }

    /*
     * The tables to empty: the backup's and the records tables, each
     * once, those of ctl_restore_lock_order[] first and in its order.  A
     * backup from before schema 5 has no daily totals: they are emptied
     * too, and the trigger of llmproxy_usage_rows, left on, adds up the
     * restored records into them, as migration 5 did.
     */

    daily = 0;

    cJSON_ArrayForEach(t, tables) {
        daily |= strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "table")),
                        "llmproxy_usage_daily") == 0;
    }

    n = 0;
    names = calloc(cJSON_GetArraySize(tables)
                   + CTL_NELTS(ctl_restore_lock_order), sizeof(char *));

    if (names == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        return -1;
    }

    for (i = 0; ctl_restore_lock_order[i]; i++) {
        table = ctl_restore_lock_order[i];

        if (ctl_name_in(ctl_restore_records, CTL_NELTS(ctl_restore_records),
                        table)
            || (!daily && strcmp(table, "llmproxy_usage_daily") == 0))
        {
            names[n++] = table;
            continue;
        }

        cJSON_ArrayForEach(t, tables) {
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "table")),
                       table) == 0)
            {
                names[n++] = table;
                break;
            }
        }
    }

    cJSON_ArrayForEach(t, tables) {
        table = cJSON_GetStringValue(cJSON_GetObjectItem(t, "table"));

        if (!ctl_name_in(ctl_restore_lock_order,
                         CTL_NELTS(ctl_restore_lock_order), table)
            && !ctl_name_in(names, n, table))
        {
            names[n++] = table;
        }
    }

    /* "a, b, c", quoted */

    len = 1;
    list = calloc(1, 1);

    for (i = 0; i < n; i++) {
        list = ctl_list_add(conn, list, &len, names[i]);
    }

    if (list == NULL) {
        fprintf(stderr, "llmproxyctl: out of memory\n");
        free(names);
        return -1;
    }

    if (ctl_sql_ok(conn, "BEGIN") != 0) {
        free(names);
        free(list);
        return -1;
    }

    sql = malloc(len + 128);

    sprintf(sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", list);
    if (ctl_sql_ok(conn, sql) != 0) {
        goto failed;
    }

    params[0] = cJSON_GetStringValue(cJSON_GetObjectItem(manifest,
                                                         "snapshot_at"));
    res = ctl_sql(conn, ctl_restore_newer_sql, 1, params);
    if (res == NULL) {
        goto failed;
    }

    i = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);

    if (i && !force) {
        fprintf(stderr, "llmproxyctl: the database holds data newer than "
                "the backup (written after %s); restoring would lose it: "
                "--force restores anyway\n", params[0]);
        free(sql);
        free(list);
        free(names);
        ctl_sql_ok(conn, "ROLLBACK");
        return 1;
    }

    /* keys the backup lacks come back revoked (below) */

    if (ctl_sql_ok(conn, "CREATE TEMP TABLE llmp_restore_old_keys"
                          " ON COMMIT DROP AS SELECT * FROM llmproxy_keys")
        != 0)
    {
        goto failed;
    }

    /* the rows exactly as stored: no touch or bump triggers while they
     * go in (the change numbers are set afterwards) */

    for (i = 0; i < n; i++) {
        if (!daily && strcmp(names[i], "llmproxy_usage_rows") == 0) {
            continue;
        }

        q = PQescapeIdentifier(conn, names[i], strlen(names[i]));
        sprintf(sql, "ALTER TABLE %s DISABLE TRIGGER USER", q);
        PQfreemem(q);

        if (ctl_sql_ok(conn, sql) != 0) {
            goto failed;
        }
    }

    sprintf(sql, "TRUNCATE %s", list);
    if (ctl_sql_ok(conn, sql) != 0) {
        goto failed;
    }

    i = 0;

    cJSON_ArrayForEach(t, tables) {
        if (ctl_restore_copy(conn, files[i++], t, &rows) != 0) {
            goto failed;
        }

        jr = cJSON_GetObjectItem(t, "rows");

        if (!cJSON_IsNumber(jr) || rows != (long long) jr->valuedouble) {
            fprintf(stderr, "llmproxyctl: %s: %lld rows restored, the "
                    "manifest says %.0f\n",
                    cJSON_GetStringValue(cJSON_GetObjectItem(t, "table")),
                    rows, cJSON_IsNumber(jr) ? jr->valuedouble : -1.0);
            goto failed;
        }

        *total += rows;
    }

    /* the gateways ask for change numbers above the last they saw */

    snprintf(num, sizeof(num), "%.0f",
             cJSON_GetNumberValue(cJSON_GetObjectItem(manifest,
                                                      "change_seq")));
    params[0] = num;

    res = ctl_sql(conn, "SELECT setval('llmproxy_change_seq',"
                   " greatest((SELECT last_value FROM llmproxy_change_seq),"
                   " $1::bigint, 1))", 1, params);
    if (res == NULL) {
        goto failed;
    }

    PQclear(res);

    if (ctl_sql_ok(conn,
            "UPDATE llmp_restore_old_keys o SET alias = NULL"
            " WHERE EXISTS (SELECT 1 FROM llmproxy_keys k"
            " WHERE k.alias = o.alias)") != 0
        || ctl_sql_ok(conn,
            "UPDATE llmp_restore_old_keys SET updated_at = now(),"
            " revoked_at = coalesce(revoked_at, now())") != 0
        || ctl_sql_ok(conn,
            "INSERT INTO llmproxy_keys SELECT * FROM llmp_restore_old_keys o"
            " WHERE NOT EXISTS (SELECT 1 FROM llmproxy_keys k"
            " WHERE k.key_hash = o.key_hash)") != 0)
    {
        goto failed;
    }

    if (ctl_sql_ok(conn,
            "UPDATE llmproxy_keys SET"
            " change_seq = nextval('llmproxy_change_seq')") != 0
        || ctl_sql_ok(conn,
            "UPDATE llmproxy_config_state SET"
            " version = nextval('llmproxy_change_seq')") != 0)
    {
        goto failed;
    }

    /* serial and identity columns: their sequences past the restored ids */

    if (ctl_sql_ok(conn, ctl_restore_serials_sql) != 0) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        q = PQescapeIdentifier(conn, names[i], strlen(names[i]));
        sprintf(sql, "ALTER TABLE %s ENABLE TRIGGER USER", q);
        PQfreemem(q);

        if (ctl_sql_ok(conn, sql) != 0) {
            goto failed;
        }
    }

    if (ctl_sql_ok(conn, "SELECT pg_notify('llmproxy_changes',"
                          " 'llmproxy_keys'),"
                          " pg_notify('llmproxy_changes', 'config')") != 0
        || ctl_sql_ok(conn, "COMMIT") != 0)
    {
        goto failed;
    }

    free(sql);
    free(list);
    free(names);

    return 0;

failed:

    free(sql);
    free(list);
    free(names);
    ctl_sql_ok(conn, "ROLLBACK");

    return -1;
}


static int
ctl_copy_file(const char *from, const char *to)
{
    int      in, out, rc;
    char     buf[65536];
    ssize_t  n;

    in = open(from, O_RDONLY);
    out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);

    rc = (in == -1 || out == -1) ? -1 : 0;

    while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, n) != n) {
            rc = -1;
        }
    }

    if (in != -1) {
        close(in);
    }

    if (out != -1 && close(out) != 0) {
        rc = -1;
    }

    return rc;
}


int
ctl_cmd_restore(int argc, char **argv)
{
    int            c, rc, i, n, np;
    char           tmp[PATH_MAX], path[PATH_MAX], key[256], **files, *text;
    FILE          *f;
    long           len;
    cJSON         *manifest, *t, *jv;
    double         t0, secs;
    PGconn        *conn;
    PGresult      *res;
    long long      total;
    const char    *name;
    ctl_store_t   st;
    ctl_backup_opts_t  o;

    static const struct option  opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "dir", required_argument, NULL, 'd' },
        { "dry-run", no_argument, NULL, 'n' },
        { "force", no_argument, NULL, 'F' },
        { "files", required_argument, NULL, 'x' },
        { "database", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    memset(&o, 0, sizeof(ctl_backup_opts_t));

    optind = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o.to = optarg;
            break;
        case 'd':
            o.dir = optarg;
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 'F':
            o.force = 1;
            break;
        case 'x':
            o.files = optarg;
            break;
        case 'D':
            o.database = optarg;
            break;
        case 'h':
            ctl_restore_help(stdout);
            return LLMP_EXIT_OK;
        default:
            ctl_restore_help(stderr);
            return LLMP_EXIT_INVALID;
        }
    }

    if (optind != argc - 1) {
        ctl_restore_help(stderr);
        return LLMP_EXIT_INVALID;
    }

    name = argv[optind];

    if (!ctl_valid_name(name)) {
        fprintf(stderr, "llmproxyctl: restore: \"%s\" is not a backup name "
                "(llmproxy-...; see `llmproxyctl backup list`)\n", name);
        return LLMP_EXIT_INVALID;
    }

    if (ctl_store_open(&st, o.to, o.dir, 0) != 0) {
        ctl_store_close(&st);
        return LLMP_EXIT_INVALID;
    }

    t0 = ctl_now();
    rc = LLMP_EXIT_FAILED;
    manifest = NULL;
    files = NULL;
    np = 0;
    n = 0;
    tmp[0] = '\0';
    conn = NULL;

    /* the manifest */

    if (st.is_s3) {
        const char  *d = getenv("TMPDIR");

        snprintf(tmp, sizeof(tmp), "%s/llmproxy-restore-XXXXXX",
                 d && d[0] ? d : "/tmp");
        if (mkdtemp(tmp) == NULL) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", tmp, strerror(errno));
            tmp[0] = '\0';
            goto done;
        }

        snprintf(path, sizeof(path), "%s/%s", tmp, LLMP_BACKUP_MANIFEST);
        snprintf(key, sizeof(key), "%s/%s", name, LLMP_BACKUP_MANIFEST);

        f = fopen(path, "w+x");
        if (f == NULL) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", path, strerror(errno));
            goto done;
        }

        i = ctl_s3_get(&st.s3, key, f);
        fclose(f);

        if (i == 1) {
            ctl_s3_object_t  *objs;
            size_t             nobjs;

            snprintf(key, sizeof(key), "%s/", name);

            if (ctl_s3_list(&st.s3, key, &objs, &nobjs) == 0) {
                fprintf(stderr, "llmproxyctl: %s: %s\n", name, nobjs
                        ? "incomplete backup (no manifest): not restored"
                        : "no such backup");
                ctl_s3_objects_free(objs, nobjs);
            }

            goto done;
        }

        if (i != 0) {
            goto done;
        }

    } else {
        snprintf(path, sizeof(path), "%s/%s/%s", st.dir, name,
                 LLMP_BACKUP_MANIFEST);
    }

    f = fopen(path, "r");
    if (f == NULL) {
        struct stat  sb;

        i = 0;

        if (!st.is_s3) {
            snprintf(path, sizeof(path), "%s/%s", st.dir, name);
            i = stat(path, &sb) == 0;
            snprintf(path, sizeof(path), "%s/%s.partial", st.dir, name);
            i |= stat(path, &sb) == 0;
        }

        fprintf(stderr, "llmproxyctl: %s: %s\n", name, i
                ? "incomplete backup (no manifest): not restored"
                : "no such backup");
        goto done;
    }

    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);

    text = (len > 0 && len < 16 * 1024 * 1024) ? malloc(len + 1) : NULL;
    if (text && fread(text, 1, len, f) == (size_t) len) {
        text[len] = '\0';
        manifest = cJSON_Parse(text);
    }

    free(text);
    fclose(f);

    jv = cJSON_GetObjectItem(manifest, "format");

    if (manifest == NULL || !cJSON_IsNumber(jv)
        || !cJSON_IsArray(cJSON_GetObjectItem(manifest, "tables"))
        || !cJSON_IsString(cJSON_GetObjectItem(manifest, "snapshot_at")))
    {
        fprintf(stderr, "llmproxyctl: %s: the manifest is damaged\n", name);
        goto done;
    }

    if (jv->valueint != LLMP_BACKUP_FORMAT) {
        fprintf(stderr, "llmproxyctl: %s: backup format %d; this "
                "llmproxyctl reads format %d\n", name, jv->valueint,
                LLMP_BACKUP_FORMAT);
        goto done;
    }

    /* every file, checked before the database is touched */

    n = cJSON_GetArraySize(cJSON_GetObjectItem(manifest, "tables"));
    np = cJSON_GetArraySize(cJSON_GetObjectItem(manifest, "paths"));

    files = calloc(n + np + 1, sizeof(char *));
    i = 0;

    cJSON_ArrayForEach(t, cJSON_GetObjectItem(manifest, "tables")) {
        if (!ctl_restore_table_ok(t)) {
            fprintf(stderr, "llmproxyctl: %s: the manifest is damaged\n",
                    name);
            goto refused;
        }

        if (ctl_restore_fetch(&st, name, tmp, t, path, sizeof(path))
            != 0)
        {
            goto refused;
        }

        files[i++] = strdup(path);
    }

    cJSON_ArrayForEach(t, cJSON_GetObjectItem(manifest, "paths")) {
        if (ctl_restore_fetch(&st, name, tmp, t, path, sizeof(path)) != 0) {
            goto refused;
        }

        files[i++] = strdup(path);
    }

    printf("%s: %d tables, %d director%s, every SHA-256 matches\n", name, n,
           np, np == 1 ? "y" : "ies");

    if (o.dry_run) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(manifest, "tables")) {
            printf("  %-28s %10.0f rows\n",
                   cJSON_GetStringValue(cJSON_GetObjectItem(t, "table")),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(t, "rows")));
        }

        cJSON_ArrayForEach(t, cJSON_GetObjectItem(manifest, "paths")) {
            printf("  %-28s %10.0f files (%s)\n",
                   cJSON_GetStringValue(cJSON_GetObjectItem(t, "file")),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(t, "files")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(t, "path")));
        }

        printf("dry run: nothing restored\n");
        rc = LLMP_EXIT_OK;
        goto done;
    }

    conn = ctl_db_connect(o.database);
    if (conn == NULL) {
        goto done;
    }

    res = ctl_sql(conn, "SELECT max(version) FROM llmproxy_schema_migrations",
                   0, NULL);
    if (res == NULL) {
        goto done;
    }

    i = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);

    jv = cJSON_GetObjectItem(manifest, "schema_version");

    if (!cJSON_IsNumber(jv) || jv->valueint > i) {
        fprintf(stderr, "llmproxyctl: %s: made with schema version %d, "
                "newer than this llmproxyctl's %d: use a newer llmproxyctl"
                "\n", name, cJSON_IsNumber(jv) ? jv->valueint : -1, i);
        goto done;
    }

    t0 = ctl_now();
    total = 0;

    i = ctl_restore_apply(conn, manifest, files, o.force, &total);

    if (i == 1) {
        rc = LLMP_EXIT_INVALID;
        goto done;
    }

    if (i != 0) {
        fprintf(stderr, "llmproxyctl: %s: nothing restored\n", name);
        goto done;
    }

    secs = ctl_now() - t0;

    printf("restored %s: %lld rows in %.2f s (%.0f rows/s)\n", name, total,
           secs, secs > 0 ? total / secs : 0.0);

    rc = LLMP_EXIT_OK;

    if (o.files && np) {
        if (mkdir(o.files, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "llmproxyctl: %s: %s\n", o.files,
                    strerror(errno));
            rc = LLMP_EXIT_FAILED;
            goto done;
        }

        i = n;

        cJSON_ArrayForEach(t, cJSON_GetObjectItem(manifest, "paths")) {
            snprintf(path, sizeof(path), "%s/%s", o.files,
                     cJSON_GetStringValue(cJSON_GetObjectItem(t, "file")));

            if (ctl_copy_file(files[i++], path) != 0) {
                fprintf(stderr, "llmproxyctl: %s: %s\n", path,
                        strerror(errno));
                rc = LLMP_EXIT_FAILED;
                continue;
            }

            printf("wrote %s (of %s; tar xzf it)\n", path,
                   cJSON_GetStringValue(cJSON_GetObjectItem(t, "path")));
        }
    }

    goto done;

refused:

    fprintf(stderr, "llmproxyctl: %s: refused; the database was not "
            "touched\n", name);

done:

    if (files) {
        for (i = 0; files[i]; i++) {
            free(files[i]);
        }
        free(files);
    }

    if (tmp[0]) {
        ctl_rm_tree(tmp);
    }

    cJSON_Delete(manifest);
    PQfinish(conn);
    ctl_store_close(&st);

    return rc;
}

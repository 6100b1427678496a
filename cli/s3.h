/*
 * llmproxyctl: a small S3 client for backups (libcurl with its AWS
 * Signature V4), path-style against LLMPROXY_S3_ENDPOINT or
 * virtual-hosted against AWS.
 */

#ifndef _LLMP_S3_H_INCLUDED_
#define _LLMP_S3_H_INCLUDED_

#include <stddef.h>
#include <stdio.h>


typedef struct {
    char    *endpoint;       /* "http://host:port", NULL: AWS */
    char    *bucket;
    char    *prefix;         /* "" or "a/b/" */
    char    *region;
    char    *access_key;
    char    *secret_key;
    char    *token;          /* NULL: none */
    size_t   part_size;      /* multipart above this many bytes */
} ctl_s3_t;


typedef struct {
    char    *key;
    long long size;
} ctl_s3_object_t;


/* a streamed upload: one PUT if it stays small, else multipart */
typedef struct ctl_s3_upload_s  ctl_s3_upload_t;


/*
 * "s3://BUCKET/PREFIX" and the AWS_* / LLMPROXY_S3_ENDPOINT environment;
 * -1 after telling why not
 */
int ctl_s3_open(ctl_s3_t *s3, const char *uri);
void ctl_s3_close(ctl_s3_t *s3);

/* key is relative to the prefix; 0, or -1 reported */
int ctl_s3_put(ctl_s3_t *s3, const char *key, const void *data,
    size_t len);
/* the object into f; 0, 1 when there is no such object, -1 reported */
int ctl_s3_get(ctl_s3_t *s3, const char *key, FILE *f);
int ctl_s3_delete(ctl_s3_t *s3, const char *key);
/*
 * Every object under the prefix + sub, keys relative to the prefix,
 * sorted; *n of them (free with ctl_s3_objects_free).  -1 reported.
 */
int ctl_s3_list(ctl_s3_t *s3, const char *sub, ctl_s3_object_t **objs,
    size_t *n);
void ctl_s3_objects_free(ctl_s3_object_t *objs, size_t n);

ctl_s3_upload_t *ctl_s3_upload_start(ctl_s3_t *s3, const char *key);
int ctl_s3_upload_write(ctl_s3_upload_t *up, const void *data,
    size_t len);
/* completes the object; on failure nothing of it is left */
int ctl_s3_upload_finish(ctl_s3_upload_t *up);
/* gives up: AbortMultipartUpload, so no part stays stored */
void ctl_s3_upload_abort(ctl_s3_upload_t *up);

/* "64k", "16m", "1g" or bytes; 0 when invalid */
size_t ctl_size(const char *s);

#endif /* _LLMP_S3_H_INCLUDED_ */

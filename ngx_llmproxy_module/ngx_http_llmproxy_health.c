/*
 * Background checks of the providers, run by one worker in a thread of
 * the pool (libcurl's multi interface there: all checks of a round at
 * once, each bounded by its timeout; nothing on the event loop):
 *
 *   health       with settings.health_check_interval_seconds, every
 *                deployment gets a tiny request at that interval (a chat
 *                of max_tokens 1 in an interface it speaks; a pattern
 *                deployment, which has no model of its own, its
 *                provider's models endpoint).  One that fails is cooled
 *                down in the shared tree at once, for the interval and a
 *                little more, so users' requests go elsewhere before any
 *                of them hits it.
 *   model lists  a provider with a model pattern is asked for its models
 *                (GET /v1/models, OpenAI's shape) after every config
 *                change and every minute: /v1/models lists them.
 *
 * The results are one JSON document in the zone, read by /metrics
 * (llmproxy_deployment_healthy), GET /llmproxy/admin/health, llmproxyctl
 * status and /v1/models.  It never holds keys, headers or URLs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_health.h"
#include "ngx_http_llmproxy_response.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"

#include <llmp_iface.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <llmp_pattern.h>


#define NGX_HTTP_LLMPROXY_HEALTH_TICK     1000
#define NGX_HTTP_LLMPROXY_MODELS_EVERY    60000
#define NGX_HTTP_LLMPROXY_CHECK_TIMEOUT   10000     /* ms, at most */
#define NGX_HTTP_LLMPROXY_ANSWER_MAX      (4 * 1024 * 1024)
#define NGX_HTTP_LLMPROXY_LISTED_MAX      2000      /* models a provider */


typedef struct {
    char                          *id;        /* deployment, or provider */
    char                          *url;
    char                          *body;      /* NULL: GET */
    struct curl_slist             *headers;
    CURL                          *curl;
    unsigned                       models:1;  /* a model list */
    unsigned                       failed:1;  /* too large, no memory */

    long                           status;
    double                         secs;
    char                           error[128];
    char                          *answer;
    size_t                         len;
    size_t                         size;
} ngx_http_llmproxy_check_t;


typedef struct {
    ngx_http_llmproxy_zone_ctx_t  *zctx;
    ngx_thread_pool_t             *thread_pool;
    ngx_thread_task_t             *task;
    ngx_event_t                    timer;
    ngx_uint_t                     busy;

    /* what the last round learned from the config */
    ngx_uint_t                     generation;
    ngx_msec_t                     interval;
    ngx_msec_t                     cooldown;
    ngx_uint_t                     has_patterns;
    ngx_msec_t                     last_health;
    ngx_msec_t                     last_models;

    /* this round */
    u_char                        *blob;
    size_t                         len;
    ngx_uint_t                     blob_generation;
    ngx_uint_t                     do_health;
    ngx_uint_t                     do_models;
    ngx_http_llmproxy_check_t     *checks;
    ngx_uint_t                     nchecks;
    ngx_uint_t                     ndeployments;   /* health checks */
    char                          *ca;
    ngx_uint_t                     verify;

    cJSON                         *state;       /* the last results */
} ngx_http_llmproxy_health_t;


static void ngx_http_llmproxy_health_tick(ngx_event_t *ev);
static void ngx_http_llmproxy_health_thread(void *data, ngx_log_t *log);
static void ngx_http_llmproxy_health_done(ngx_event_t *ev);
static void ngx_http_llmproxy_health_verdicts(ngx_http_llmproxy_health_t *h,
    ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_health_verdict(
    ngx_http_llmproxy_health_t *h, ngx_http_llmproxy_check_t *c, cJSON *deps,
    cJSON *prev, time_t now, ngx_log_t *log);
static void ngx_http_llmproxy_health_lists(ngx_http_llmproxy_health_t *h,
    ngx_log_t *log);
static void ngx_http_llmproxy_health_list(ngx_http_llmproxy_check_t *c,
    cJSON *lists, ngx_log_t *log);
static ngx_int_t ngx_http_llmproxy_health_plan(
    ngx_http_llmproxy_health_t *h, cJSON *root);
static ngx_int_t ngx_http_llmproxy_health_add(ngx_http_llmproxy_health_t *h,
    cJSON *provider, const char *id, const char *upstream,
    ngx_uint_t models);
static ngx_int_t ngx_http_llmproxy_health_plan_deployments(
    ngx_http_llmproxy_health_t *h, cJSON *root, cJSON *providers);
static ngx_int_t ngx_http_llmproxy_health_plan_models(
    ngx_http_llmproxy_health_t *h, cJSON *providers);
static ngx_uint_t ngx_http_llmproxy_health_iface(cJSON *p);
static ngx_int_t ngx_http_llmproxy_health_url(ngx_http_llmproxy_check_t *c,
    char *base, ngx_uint_t iface, const char *upstream);
static ngx_int_t ngx_http_llmproxy_health_body(ngx_http_llmproxy_check_t *c,
    ngx_uint_t iface, const char *upstream);
static ngx_int_t ngx_http_llmproxy_health_headers(
    ngx_http_llmproxy_check_t *c, cJSON *p, ngx_uint_t iface);
static void ngx_http_llmproxy_health_run(ngx_http_llmproxy_health_t *h);
static void ngx_http_llmproxy_health_easy(ngx_http_llmproxy_health_t *h,
    ngx_http_llmproxy_check_t *c, CURLM *multi, long timeout);
static void ngx_http_llmproxy_health_collect(CURLM *multi);
static size_t ngx_http_llmproxy_health_write(char *data, size_t size,
    size_t n, void *user);
static void ngx_http_llmproxy_health_free(ngx_http_llmproxy_health_t *h);
static void ngx_http_llmproxy_health_publish(ngx_http_llmproxy_health_t *h);
static u_char *ngx_http_llmproxy_health_metric(u_char *p, cJSON *item);


static ngx_http_llmproxy_health_t  ngx_http_llmproxy_health;


ngx_int_t
ngx_http_llmproxy_health_init_process(ngx_cycle_t *cycle)
{
    ngx_http_llmproxy_health_t     *h;
    ngx_http_llmproxy_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_llmproxy_module);

    if (lmcf == NULL || lmcf->shm_zone == NULL || lmcf->thread_pool == NULL
        || (ngx_process != NGX_PROCESS_SINGLE && ngx_worker != 0))
    {
        return NGX_OK;
    }

    /* before any thread uses libcurl: its global init is not thread-safe */

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "llmproxy: curl_global_init() failed: no health "
                      "checks or provider model lists");
        return NGX_OK;
    }

    h = &ngx_http_llmproxy_health;
    ngx_memzero(h, sizeof(ngx_http_llmproxy_health_t));

    h->zctx = lmcf->shm_zone->data;
    h->thread_pool = lmcf->thread_pool;
    h->verify = lmcf->ssl_verify ? 1 : 0;

    if (lmcf->ssl_trusted_certificate.len) {
        h->ca = (char *) lmcf->ssl_trusted_certificate.data;
    }

    h->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (h->task == NULL) {
        return NGX_ERROR;
    }

    h->task->ctx = h;
    h->task->handler = ngx_http_llmproxy_health_thread;
    h->task->event.handler = ngx_http_llmproxy_health_done;
    h->task->event.data = h;
    h->task->event.log = cycle->log;

    h->timer.handler = ngx_http_llmproxy_health_tick;
    h->timer.data = h;
    h->timer.log = cycle->log;
    h->timer.cancelable = 1;

    ngx_add_timer(&h->timer, NGX_HTTP_LLMPROXY_HEALTH_TICK / 2);

    return NGX_OK;
}


static void
ngx_http_llmproxy_health_tick(ngx_event_t *ev)
{
    ngx_http_llmproxy_health_t *h = ev->data;

    ngx_uint_t  generation, changed;

    if (ngx_exiting || ngx_terminate || h->busy) {
        return;
    }

    generation = h->zctx->sh->generation;
    changed = (generation != h->generation);

    h->do_health = h->interval
                   && (changed
                       || ngx_current_msec - h->last_health >= h->interval);
    h->do_models = h->has_patterns
                   && (changed
                       || ngx_current_msec - h->last_models
                          >= NGX_HTTP_LLMPROXY_MODELS_EVERY);

    /* a new config: the thread learns from it what is due */

    if (generation && changed) {
        h->do_health = 2;
        h->do_models = 2;
    }

    if (!h->do_health && !h->do_models) {
        ngx_add_timer(&h->timer, NGX_HTTP_LLMPROXY_HEALTH_TICK);
        return;
    }

    h->blob = ngx_http_llmproxy_shm_copy(h->zctx, &h->len,
                                         &h->blob_generation);

    if (h->blob == NULL
        || ngx_thread_task_post(h->thread_pool, h->task) != NGX_OK)
    {
        ngx_free(h->blob);
        h->blob = NULL;
        ngx_add_timer(&h->timer, NGX_HTTP_LLMPROXY_HEALTH_TICK);
        return;
    }

    h->busy = 1;
}


/* in a thread of the pool: it may block */

static void
ngx_http_llmproxy_health_thread(void *data, ngx_log_t *log)
{
    ngx_http_llmproxy_health_t *h = data;

    cJSON  *root;

    (void) log;

    h->checks = NULL;
    h->nchecks = 0;
    h->ndeployments = 0;

    root = cJSON_ParseWithLength((char *) h->blob, h->len);
    if (root == NULL) {
        return;
    }

    if (ngx_http_llmproxy_health_plan(h, root) == NGX_OK) {
        ngx_http_llmproxy_health_run(h);
    }

    cJSON_Delete(root);
}


static ngx_int_t
ngx_http_llmproxy_health_plan(ngx_http_llmproxy_health_t *h, cJSON *root)
{
    int     n;
    cJSON  *settings, *v, *providers;

    settings = cJSON_GetObjectItemCaseSensitive(root, "settings");

    v = cJSON_GetObjectItemCaseSensitive(settings,
                                         "health_check_interval_seconds");
    h->interval = cJSON_IsNumber(v) && v->valuedouble > 0
                  ? (ngx_msec_t) (v->valuedouble * 1000) : 0;

    v = cJSON_GetObjectItemCaseSensitive(settings, "cooldown_seconds");
    h->cooldown = cJSON_IsNumber(v) && v->valuedouble > 0
                  ? (ngx_msec_t) (v->valuedouble * 1000) : 5000;

    providers = cJSON_GetObjectItemCaseSensitive(root, "providers");

    n = cJSON_GetArraySize(providers)
        + cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root,
                                                              "deployments"));

    h->checks = calloc(n ? n : 1, sizeof(ngx_http_llmproxy_check_t));
    if (h->checks == NULL) {
        return NGX_ERROR;
    }

    if (h->do_health == 2) {
        h->do_health = (h->interval != 0);
    }

    if (ngx_http_llmproxy_health_plan_deployments(h, root, providers)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h->ndeployments = h->nchecks;

    if (h->do_models == 2) {
        h->do_models = h->has_patterns;
    }

    if (!h->do_models) {
        return NGX_OK;
    }

    return ngx_http_llmproxy_health_plan_models(h, providers);
}


/*
 * A health check per deployment, if health checks are due; the providers
 * of pattern deployments are marked "_has_pattern" for the model lists.
 */

static ngx_int_t
ngx_http_llmproxy_health_plan_deployments(ngx_http_llmproxy_health_t *h,
    cJSON *root, cJSON *providers)
{
    cJSON       *v, *d, *p, *model, *prov, *up, *id;
    const char  *name;
    ngx_uint_t   patterns, pattern;

    patterns = 0;

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(root,
                                                           "deployments"))
    {
        id = cJSON_GetObjectItemCaseSensitive(d, "id");
        model = cJSON_GetObjectItemCaseSensitive(d, "model");
        prov = cJSON_GetObjectItemCaseSensitive(d, "provider");
        up = cJSON_GetObjectItemCaseSensitive(d, "upstream_model");

        if (!cJSON_IsString(id) || !cJSON_IsString(model)
            || !cJSON_IsString(prov) || !cJSON_IsString(up))
        {
            continue;
        }

        p = NULL;

        cJSON_ArrayForEach(v, providers) {
            name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v,
                                                                    "name"));
            if (name && strcmp(name, prov->valuestring) == 0) {
                p = v;
                break;
            }
        }

        if (p == NULL) {
            continue;
        }

        pattern = llmp_pattern_is(model->valuestring,
                                  strlen(model->valuestring));

        if (pattern) {
            patterns = 1;
            cJSON_AddTrueToObject(p, "_has_pattern");
        }

        if (h->do_health
            && ngx_http_llmproxy_health_add(h, p, id->valuestring,
                                            pattern ? NULL : up->valuestring,
                                            0)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    h->has_patterns = patterns;

    return NGX_OK;
}


/* a model list of each provider with a pattern deployment */

static ngx_int_t
ngx_http_llmproxy_health_plan_models(ngx_http_llmproxy_health_t *h,
    cJSON *providers)
{
    cJSON       *p;
    const char  *name;

    cJSON_ArrayForEach(p, providers) {
        name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p,
                                                                     "name"));

        if (name == NULL
            || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p,
                                                              "_has_pattern")))
        {
            continue;
        }

        if (ngx_http_llmproxy_health_add(h, p, name, NULL, 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One request: upstream NULL asks the provider's models endpoint, else a
 * chat of one token in the first interface it speaks (OpenAI, Anthropic,
 * Gemini), with its key and headers as the gateway sends them.
 */

static ngx_int_t
ngx_http_llmproxy_health_add(ngx_http_llmproxy_health_t *h, cJSON *p,
    const char *id, const char *upstream, ngx_uint_t models)
{
    char                       *base;
    ngx_uint_t                  iface;
    ngx_http_llmproxy_check_t  *c;

    base = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p,
                                                                 "api_base"));
    if (base == NULL) {
        return NGX_OK;
    }

    iface = ngx_http_llmproxy_health_iface(p);

    /* model lists in OpenAI's shape only: what bridges answer */

    if (iface == 0
        || (models && iface != LLMP_IFACE_OPENAI))
    {
        return NGX_OK;
    }

    c = &h->checks[h->nchecks++];
    c->models = models;

    c->id = strdup(id);
    if (c->id == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llmproxy_health_url(c, base, iface, upstream) != NGX_OK) {
        return NGX_ERROR;
    }

    if (upstream
        && ngx_http_llmproxy_health_body(c, iface, upstream) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_llmproxy_health_headers(c, p, iface);
}


/* the first interface of OpenAI, Anthropic, Gemini the provider speaks */

static ngx_uint_t
ngx_http_llmproxy_health_iface(cJSON *p)
{
    cJSON       *v;
    ngx_uint_t   iface;

    iface = 0;

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(p, "interfaces")) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        iface |= llmp_iface_by_name(v->valuestring,
                                    strlen(v->valuestring));
    }

    return (iface & LLMP_IFACE_OPENAI)
           ? LLMP_IFACE_OPENAI
           : (iface & LLMP_IFACE_ANTHROPIC)
           ? LLMP_IFACE_ANTHROPIC
           : (iface & LLMP_IFACE_GEMINI)
           ? LLMP_IFACE_GEMINI : 0;
}


/* the base without a trailing "/" or version, as the gateway uses it */

static ngx_int_t
ngx_http_llmproxy_health_url(ngx_http_llmproxy_check_t *c, char *base,
    ngx_uint_t iface, const char *upstream)
{
    char    *esc, *q;
    size_t   len, n;

    len = strlen(base);

    while (len && base[len - 1] == '/') {
        len--;
    }

    if (len >= 3 && strncmp(base + len - 3, "/v1", 3) == 0) {
        len -= 3;

    } else if (len >= 7 && strncmp(base + len - 7, "/v1beta", 7) == 0) {
        len -= 7;
    }

    esc = NULL;

    if (upstream && iface == LLMP_IFACE_GEMINI) {
        esc = curl_easy_escape(NULL, upstream, 0);
        if (esc == NULL) {
            return NGX_ERROR;
        }
    }

    n = len + sizeof("/v1beta/models/:generateContent")
        + (esc ? strlen(esc) : 0);

    c->url = malloc(n);
    if (c->url == NULL) {
        curl_free(esc);
        return NGX_ERROR;
    }

    q = c->url + len;
    memcpy(c->url, base, len);

    if (upstream == NULL) {
        strcpy(q, iface == LLMP_IFACE_GEMINI
                  ? "/v1beta/models" : "/v1/models");

    } else if (iface == LLMP_IFACE_OPENAI) {
        strcpy(q, "/v1/chat/completions");

    } else if (iface == LLMP_IFACE_ANTHROPIC) {
        strcpy(q, "/v1/messages");

    } else {
        sprintf(q, "/v1beta/models/%s:generateContent", esc);
    }

    curl_free(esc);

    return NGX_OK;
}


/* a chat of one token, "ping", in the interface's shape */

static ngx_int_t
ngx_http_llmproxy_health_body(ngx_http_llmproxy_check_t *c,
    ngx_uint_t iface, const char *upstream)
{
    cJSON  *v, *body;

    body = cJSON_CreateObject();
    if (body == NULL) {
        return NGX_ERROR;
    }

    if (iface == LLMP_IFACE_GEMINI) {
        v = cJSON_Parse("{\"contents\":[{\"role\":\"user\",\"parts\":"
                        "[{\"text\":\"ping\"}]}],\"generationConfig\":"
                        "{\"maxOutputTokens\":1}}");
        cJSON_Delete(body);
        body = v;

    } else {
        cJSON_AddStringToObject(body, "model", upstream);
        cJSON_AddNumberToObject(body, "max_tokens", 1);
        v = cJSON_AddArrayToObject(body, "messages");
        v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "role", "user");
        cJSON_AddStringToObject(v, "content", "ping");
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(body,
                                                              "messages"),
                             v);
    }

    c->body = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);

    if (c->body == NULL) {
        return NGX_ERROR;
    }

    c->headers = curl_slist_append(c->headers,
                                   "Content-Type: application/json");

    return NGX_OK;
}


/*
 * The request's headers: the key and the provider's headers are secrets,
 * never in the results.
 */

static ngx_int_t
ngx_http_llmproxy_health_headers(ngx_http_llmproxy_check_t *c, cJSON *p,
    ngx_uint_t iface)
{
    char   *key, *line;
    cJSON  *v;

    key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p,
                                                                "api_key"));

    c->headers = curl_slist_append(c->headers, "User-Agent: llmproxy-health");

    if (iface == LLMP_IFACE_ANTHROPIC) {
        c->headers = curl_slist_append(c->headers,
                                       "anthropic-version: 2023-06-01");
    }

    line = malloc(64 + (key ? strlen(key) : 0));
    if (line == NULL) {
        return NGX_ERROR;
    }

    if (key && key[0]) {
        sprintf(line, "%s%s",
                iface == LLMP_IFACE_OPENAI
                ? "Authorization: Bearer "
                : iface == LLMP_IFACE_ANTHROPIC
                ? "x-api-key: " : "x-goog-api-key: ", key);
        c->headers = curl_slist_append(c->headers, line);
    }

    free(line);

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(p, "headers")) {
        if (!cJSON_IsString(v)) {
            continue;
        }

        line = malloc(strlen(v->string) + strlen(v->valuestring) + 3);
        if (line == NULL) {
            return NGX_ERROR;
        }

        sprintf(line, "%s: %s", v->string, v->valuestring);
        c->headers = curl_slist_append(c->headers, line);
        free(line);
    }

    return c->headers ? NGX_OK : NGX_ERROR;
}


/* every request of the round at once */

static void
ngx_http_llmproxy_health_run(ngx_http_llmproxy_health_t *h)
{
    int                         running;
    long                        timeout;
    CURLM                      *multi;
    ngx_uint_t                  i;
    ngx_http_llmproxy_check_t  *c;

    multi = curl_multi_init();
    if (multi == NULL) {
        return;
    }

    timeout = NGX_HTTP_LLMPROXY_CHECK_TIMEOUT;

    if (h->interval && h->interval < (ngx_msec_t) timeout) {
        timeout = (long) ngx_max(h->interval, 1000);
    }

    for (i = 0; i < h->nchecks; i++) {
        ngx_http_llmproxy_health_easy(h, &h->checks[i], multi, timeout);
    }

    do {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            break;
        }

        if (running) {
            (void) curl_multi_poll(multi, NULL, 0, 1000, NULL);
        }

    } while (running && !ngx_terminate && !ngx_exiting);

    ngx_http_llmproxy_health_collect(multi);

    for (i = 0; i < h->nchecks; i++) {
        c = &h->checks[i];

        if (c->curl) {
            curl_multi_remove_handle(multi, c->curl);
            curl_easy_cleanup(c->curl);
            c->curl = NULL;
        }

        if (c->status == 0 && c->error[0] == '\0') {
            ngx_cpystrn((u_char *) c->error, (u_char *) "no answer",
                        sizeof(c->error));
        }
    }

    curl_multi_cleanup(multi);
}


/* a check's curl handle, into the round's multi handle */

static void
ngx_http_llmproxy_health_easy(ngx_http_llmproxy_health_t *h,
    ngx_http_llmproxy_check_t *c, CURLM *multi, long timeout)
{
    CURL  *e;

    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        ngx_cpystrn((u_char *) c->error, (u_char *) "no memory",
                    sizeof(c->error));
        return;
    }

    e = c->curl;

    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION,
                     ngx_http_llmproxy_health_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->verify ? 2L : 0L);

    if (h->ca) {
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca);
    }

    if (c->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    }

    curl_multi_add_handle(multi, e);
}


/* each finished transfer's status, time or error into its check */

static void
ngx_http_llmproxy_health_collect(CURLM *multi)
{
    int                         left;
    CURLMsg                    *msg;
    ngx_http_llmproxy_check_t  *c;

    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);

        if (c == NULL) {
            continue;
        }

        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &c->secs);

        if (msg->data.result != CURLE_OK) {
            ngx_cpystrn((u_char *) c->error,
                        (u_char *) curl_easy_strerror(msg->data.result),
                        sizeof(c->error));
            continue;
        }

        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                          &c->status);
    }
}


static size_t
ngx_http_llmproxy_health_write(char *data, size_t size, size_t n, void *user)
{
    ngx_http_llmproxy_check_t *c = user;

    char    *p;
    size_t   len;

    len = size * n;

    /* a health check's answer is not kept, a model list's up to a bound */

    if (!c->models) {
        return len;
    }

    if (c->len + len > NGX_HTTP_LLMPROXY_ANSWER_MAX) {
        c->failed = 1;
        return 0;
    }

    if (c->len + len + 1 > c->size) {
        c->size = ngx_max(2 * c->size, c->len + len + 1);
        p = realloc(c->answer, c->size);

        if (p == NULL) {
            c->failed = 1;
            return 0;
        }

        c->answer = p;
    }

    memcpy(c->answer + c->len, data, len);
    c->len += len;
    c->answer[c->len] = '\0';

    return len;
}


/* on the event loop: the results go into the zone, failures cool down */

static void
ngx_http_llmproxy_health_done(ngx_event_t *ev)
{
    ngx_http_llmproxy_health_t *h = ev->data;

    h->busy = 0;
    h->generation = h->blob_generation;

    if (h->state == NULL) {
        h->state = cJSON_CreateObject();
    }

    if (h->state == NULL || h->checks == NULL) {
        goto next;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, ev->log, 0,
                   "llmproxy health: round done, %ui checks, %ui of "
                   "deployments, generation %ui", h->nchecks,
                   h->ndeployments, h->generation);

    if (h->do_health || h->interval == 0) {
        h->last_health = ngx_current_msec;
        ngx_http_llmproxy_health_verdicts(h, ev->log);
    }

    if (h->do_models || !h->has_patterns) {
        h->last_models = ngx_current_msec;
        ngx_http_llmproxy_health_lists(h, ev->log);
    }

    ngx_http_llmproxy_health_publish(h);

next:

    ngx_http_llmproxy_health_free(h);

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&h->timer, NGX_HTTP_LLMPROXY_HEALTH_TICK);
    }
}


/* the deployments' checks into the state, replacing the last verdicts */

static void
ngx_http_llmproxy_health_verdicts(ngx_http_llmproxy_health_t *h,
    ngx_log_t *log)
{
    time_t       now;
    cJSON       *deps, *v, *prev;
    ngx_uint_t   i;

    now = ngx_time();

    /* the last verdicts: a change is logged, not every failure */

    prev = cJSON_CreateObject();
    v = cJSON_DetachItemFromObjectCaseSensitive(h->state, "deployments");

    if (prev == NULL || v == NULL
        || !cJSON_AddItemToObject(prev, "deployments", v))
    {
        cJSON_Delete(v);
    }

    cJSON_DeleteItemFromObjectCaseSensitive(h->state, "interval_seconds");

    deps = cJSON_AddArrayToObject(h->state, "deployments");
    cJSON_AddNumberToObject(h->state, "interval_seconds",
                            (double) h->interval / 1000);

    for (i = 0; deps && i < h->ndeployments; i++) {
        if (ngx_http_llmproxy_health_verdict(h, &h->checks[i], deps, prev,
                                             now, log)
            != NGX_OK)
        {
            break;
        }
    }

    cJSON_Delete(prev);
}


/*
 * One deployment's verdict into the state; a failed one is cooled down
 * until the next check has spoken.  NGX_ERROR: no memory.
 */

static ngx_int_t
ngx_http_llmproxy_health_verdict(ngx_http_llmproxy_health_t *h,
    ngx_http_llmproxy_check_t *c, cJSON *deps, cJSON *prev, time_t now,
    ngx_log_t *log)
{
    cJSON                           *item;
    ngx_str_t                        id;
    ngx_uint_t                       healthy;
    const char                      *was;
    ngx_http_llmproxy_settings_t     s;
    ngx_http_llmproxy_deployment_t   d;

    healthy = (c->status >= 200 && c->status < 300);

    id.data = (u_char *) c->id;
    id.len = ngx_strlen(c->id);
    was = ngx_http_llmproxy_health_of(prev, &id);

    if (healthy && was && was[0] == 'u') {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "llmproxy: deployment \"%s\" is healthy again", c->id);
    }

    item = cJSON_CreateObject();
    if (item == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(deps, item);
    cJSON_AddStringToObject(item, "deployment", c->id);
    cJSON_AddBoolToObject(item, "healthy", healthy);
    cJSON_AddNumberToObject(item, "status", (double) c->status);
    cJSON_AddNumberToObject(item, "latency_ms",
                            (double) (ngx_msec_t) (c->secs * 1000));
    cJSON_AddNumberToObject(item, "checked_at", (double) now);

    if (healthy) {
        return NGX_OK;
    }

    if (c->error[0] == '\0') {
        ngx_snprintf((u_char *) c->error, sizeof(c->error), "status %l%Z",
                     c->status);
    }

    cJSON_AddStringToObject(item, "error", c->error);

    /*
     * until the next check has spoken: no user request goes there
     * meanwhile (unless nothing else is left)
     */

    ngx_memzero(&s, sizeof(ngx_http_llmproxy_settings_t));
    s.allowed_fails = 1;

    d.id = id;
    d.hash = ngx_crc32_short(d.id.data, d.id.len);

    ngx_http_llmproxy_cooldown_fail(h->zctx, &d, &s,
                                    ngx_max(h->cooldown, h->interval + 2000));

    if (was == NULL || was[0] == 'h') {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "llmproxy: health check of \"%s\" failed: %s",
                      c->id, c->error);
    }

    return NGX_OK;
}


/* the providers' model lists into the state; none without patterns */

static void
ngx_http_llmproxy_health_lists(ngx_http_llmproxy_health_t *h,
    ngx_log_t *log)
{
    cJSON       *lists, *v, *next;
    ngx_uint_t   i;

    lists = cJSON_GetObjectItemCaseSensitive(h->state, "models");

    if (!h->has_patterns) {
        cJSON_DeleteItemFromObjectCaseSensitive(h->state, "models");
        return;
    }

    if (lists == NULL) {
        lists = cJSON_AddObjectToObject(h->state, "models");

        if (lists == NULL) {
            return;
        }
    }

    for (i = h->ndeployments; i < h->nchecks; i++) {
        ngx_http_llmproxy_health_list(&h->checks[i], lists, log);
    }

    /* providers gone from the config */

    for (v = lists->child; v; v = next) {
        next = v->next;

        for (i = h->ndeployments; i < h->nchecks; i++) {
            if (strcmp(h->checks[i].id, v->string) == 0) {
                break;
            }
        }

        if (i == h->nchecks) {
            cJSON_DeleteItemFromObjectCaseSensitive(lists, v->string);
        }
    }
}


/*
 * A provider's answer to GET /v1/models: the ids that are valid model
 * names, at most NGX_HTTP_LLMPROXY_LISTED_MAX of them.  The last list
 * stays until the provider answers again.
 */

static void
ngx_http_llmproxy_health_list(ngx_http_llmproxy_check_t *c, cJSON *lists,
    ngx_log_t *log)
{
    cJSON       *answer, *list, *v, *name;
    ngx_uint_t   n;

    answer = (c->status >= 200 && c->status < 300 && c->answer
              && !c->failed)
             ? cJSON_Parse(c->answer) : NULL;

    if (answer == NULL) {
        if (c->status || c->error[0]) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "llmproxy: model list of provider \"%s\" "
                          "not read: %s%l", c->id,
                          c->error[0] ? c->error : "status ",
                          c->error[0] ? 0L : c->status);
        }

        return;
    }

    list = cJSON_CreateArray();
    n = 0;

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(answer, "data")) {
        name = cJSON_GetObjectItemCaseSensitive(v, "id");

        if (list == NULL || n >= NGX_HTTP_LLMPROXY_LISTED_MAX
            || !cJSON_IsString(name)
            || !llmp_pattern_name_ok(name->valuestring,
                                     strlen(name->valuestring)))
        {
            continue;
        }

        cJSON_AddItemToArray(list, cJSON_CreateString(name->valuestring));
        n++;
    }

    cJSON_Delete(answer);

    if (list) {
        cJSON_DeleteItemFromObjectCaseSensitive(lists, c->id);
        cJSON_AddItemToObject(lists, c->id, list);
    }
}


static void
ngx_http_llmproxy_health_free(ngx_http_llmproxy_health_t *h)
{
    ngx_uint_t                  i;
    ngx_http_llmproxy_check_t  *c;

    for (i = 0; h->checks && i < h->nchecks; i++) {
        c = &h->checks[i];

        free(c->id);
        free(c->url);
        cJSON_free(c->body);
        curl_slist_free_all(c->headers);   /* with the keys: freed */
        free(c->answer);
    }

    free(h->checks);
    h->checks = NULL;
    h->nchecks = 0;

    ngx_free(h->blob);
    h->blob = NULL;
}


static void
ngx_http_llmproxy_health_publish(ngx_http_llmproxy_health_t *h)
{
    u_char                     *p;
    char                       *doc;
    size_t                      len;
    ngx_http_llmproxy_shctx_t  *sh;

    doc = cJSON_PrintUnformatted(h->state);
    if (doc == NULL) {
        return;
    }

    len = ngx_strlen(doc);
    sh = h->zctx->sh;

    ngx_shmtx_lock(&h->zctx->shpool->mutex);

    p = ngx_slab_alloc_locked(h->zctx->shpool, len);

    if (p) {
        ngx_memcpy(p, doc, len);

        if (sh->health) {
            ngx_slab_free_locked(h->zctx->shpool, sh->health);
        }

        sh->health = p;
        sh->health_len = len;
    }

    ngx_shmtx_unlock(&h->zctx->shpool->mutex);

    cJSON_free(doc);
}


/* the document, parsed; NULL if there is none yet */

cJSON *
ngx_http_llmproxy_health_get(ngx_http_llmproxy_zone_ctx_t *zctx)
{
    u_char  *copy;
    cJSON   *doc;
    size_t   len;

    copy = NULL;
    len = 0;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    if (zctx->sh->health) {
        len = zctx->sh->health_len;
        copy = ngx_alloc(len, ngx_cycle->log);

        if (copy) {
            ngx_memcpy(copy, zctx->sh->health, len);
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    if (copy == NULL) {
        return NULL;
    }

    doc = cJSON_ParseWithLength((char *) copy, len);
    ngx_free(copy);

    return doc;
}


/* "healthy", "unhealthy", or NULL: not checked */

const char *
ngx_http_llmproxy_health_of(cJSON *doc, ngx_str_t *id)
{
    cJSON  *item, *v;

    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(doc,
                                                              "deployments"))
    {
        v = cJSON_GetObjectItemCaseSensitive(item, "deployment");

        if (cJSON_IsString(v) && ngx_strlen(v->valuestring) == id->len
            && ngx_strncmp(v->valuestring, id->data, id->len) == 0)
        {
            return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item,
                                                                 "healthy"))
                   ? "healthy" : "unhealthy";
        }
    }

    return NULL;
}


/* llmproxy_deployment_healthy lines for /metrics, in the request's pool */

ngx_int_t
ngx_http_llmproxy_health_metrics(ngx_http_request_t *r,
    ngx_http_llmproxy_zone_ctx_t *zctx, ngx_str_t *out)
{
    u_char  *p;
    cJSON   *doc, *item, *v, *deps;
    size_t   len;

    static ngx_str_t  head = ngx_string(
        "# HELP llmproxy_deployment_healthy 1 if the last health "
        "check of the deployment passed.\n"
        "# TYPE llmproxy_deployment_healthy gauge\n");

    ngx_str_null(out);

    doc = ngx_http_llmproxy_health_get(zctx);
    if (doc == NULL) {
        return NGX_OK;
    }

    deps = cJSON_GetObjectItemCaseSensitive(doc, "deployments");
    len = head.len + 1;

    cJSON_ArrayForEach(item, deps) {
        v = cJSON_GetObjectItemCaseSensitive(item, "deployment");
        len += cJSON_IsString(v) ? 2 * ngx_strlen(v->valuestring) + 64 : 0;
    }

    if (cJSON_GetArraySize(deps) == 0) {
        cJSON_Delete(doc);
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        cJSON_Delete(doc);
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, head.data, head.len);

    cJSON_ArrayForEach(item, deps) {
        p = ngx_http_llmproxy_health_metric(p, item);
    }

    out->len = p - out->data;

    cJSON_Delete(doc);

    return NGX_OK;
}


/* one deployment's line; ids are config names: escape what Prometheus does */

static u_char *
ngx_http_llmproxy_health_metric(u_char *p, cJSON *item)
{
    u_char  *s;
    cJSON   *v;

    v = cJSON_GetObjectItemCaseSensitive(item, "deployment");
    if (!cJSON_IsString(v)) {
        return p;
    }

    p = ngx_cpymem(p, "llmproxy_deployment_healthy{deployment=\"",
                   sizeof("llmproxy_deployment_healthy{deployment=\"") - 1);

    for (s = (u_char *) v->valuestring; *s; s++) {
        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
            *p++ = *s;

        } else if (*s == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = *s;
        }
    }

    return ngx_sprintf(p, "\"} %d\n",
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item,
                                                                 "healthy"))
                       ? 1 : 0);
}


/* GET /llmproxy/admin/health */

ngx_int_t
ngx_http_llmproxy_health_admin(ngx_http_request_t *r)
{
    u_char                         *p;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_http_llmproxy_main_conf_t  *lmcf;
    ngx_http_llmproxy_zone_ctx_t   *zctx;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_llmproxy_module);
    zctx = lmcf->shm_zone->data;

    p = NULL;
    len = 0;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    if (zctx->sh->health) {
        len = zctx->sh->health_len;
        p = ngx_pnalloc(r->pool, len);

        if (p) {
            ngx_memcpy(p, zctx->sh->health, len);
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    if (p == NULL) {
        return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, (u_char *)
                   "{\"interval_seconds\":0,\"deployments\":[]}",
                   sizeof("{\"interval_seconds\":0,\"deployments\":[]}") - 1);
    }

    return ngx_http_llmproxy_send_json(r, NGX_HTTP_OK, p, len);
}

/*
 * The shared zone: the compiled config every worker loads (a blob and a
 * generation counter that tells workers to reload it), and the cooldown
 * state of deployments, shared by all workers (an rbtree keyed by the
 * crc32 of the deployment id, as limit_req keys its nodes).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_llmproxy_conf.h"
#include "ngx_http_llmproxy_runtime.h"
#include "ngx_http_llmproxy_zone.h"


static u_char *ngx_http_llmproxy_shm_replace(
    ngx_http_llmproxy_zone_ctx_t *zctx, size_t len);
static void ngx_http_llmproxy_cooldown_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_llmproxy_cooldown_node_t *ngx_http_llmproxy_cooldown_lookup(
    ngx_http_llmproxy_shctx_t *sh, ngx_str_t *id, uint32_t hash);


ngx_int_t
ngx_http_llmproxy_shm_install(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *blob, size_t len, ngx_uint_t *generation)
{
    return ngx_http_llmproxy_shm_install_if(zctx, blob, len, 0, generation);
}


/* installs the blob unless the generation moved away from `expect` */

ngx_int_t
ngx_http_llmproxy_shm_install_if(ngx_http_llmproxy_zone_ctx_t *zctx,
    u_char *blob, size_t len, ngx_uint_t expect, ngx_uint_t *generation)
{
    u_char                     *p;
    ngx_uint_t                  logged;
    ngx_http_llmproxy_shctx_t  *sh;

    sh = zctx->sh;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    if (expect && sh->generation != expect) {
        ngx_shmtx_unlock(&zctx->shpool->mutex);
        return NGX_DECLINED;
    }

    p = ngx_slab_alloc_locked(zctx->shpool, len);

    if (p == NULL && sh->blob) {
        p = ngx_http_llmproxy_shm_replace(zctx, len);
    }

    if (p == NULL) {
        /* once: the database poller tries the same config again */
        logged = sh->config_full;
        sh->config_full = 1;
        ngx_shmtx_unlock(&zctx->shpool->mutex);

        if (!logged) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "llmproxy: no memory in the zone for a config of "
                          "%uz bytes: increase the size of "
                          "\"llmproxy_zone\"", len);
        }

        return NGX_ERROR;
    }

    sh->config_full = 0;

    ngx_memcpy(p, blob, len);

    if (sh->blob && sh->blob != p) {
        ngx_slab_free_locked(zctx->shpool, sh->blob);
    }

    sh->blob = p;
    sh->blob_len = len;

    *generation = ngx_atomic_fetch_add(&zctx->sh->generation, 1) + 1;

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return NGX_OK;
}


/*
 * Under the lock, when a config of len bytes does not fit next to the one
 * installed: the old one goes first (workers copy it under this lock, so
 * none is reading it), and comes back if the new one does not fit either.
 * Returns the new one's memory, or the old blob itself when len fits in
 * it, or NULL.
 */

static u_char *
ngx_http_llmproxy_shm_replace(ngx_http_llmproxy_zone_ctx_t *zctx, size_t len)
{
    u_char                     *p, *save;
    size_t                      old;
    ngx_http_llmproxy_shctx_t  *sh;

    sh = zctx->sh;
    old = sh->blob_len;

    if (len <= old) {
        return sh->blob;
    }

    save = ngx_alloc(old, ngx_cycle->log);
    if (save == NULL) {
        return NULL;
    }

    ngx_memcpy(save, sh->blob, old);
    ngx_slab_free_locked(zctx->shpool, sh->blob);

    p = ngx_slab_alloc_locked(zctx->shpool, len);

    if (p) {
        sh->blob = p;   /* not freed again by the caller */

    } else {
        sh->blob = ngx_slab_alloc_locked(zctx->shpool, old);

        if (sh->blob) {
            ngx_memcpy(sh->blob, save, old);

        } else {
            sh->blob_len = 0;
        }
    }

    ngx_explicit_memzero(save, old);
    ngx_free(save);

    return p;
}


u_char *
ngx_http_llmproxy_shm_copy(ngx_http_llmproxy_zone_ctx_t *zctx, size_t *len,
    ngx_uint_t *generation)
{
    u_char  *p;

    p = NULL;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    *generation = zctx->sh->generation;
    *len = zctx->sh->blob_len;

    if (zctx->sh->blob) {
        p = ngx_alloc(zctx->sh->blob_len, ngx_cycle->log);
        if (p) {
            ngx_memcpy(p, zctx->sh->blob, zctx->sh->blob_len);
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return p;
}


ngx_int_t
ngx_http_llmproxy_cooldown_check(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_deployment_t *d, ngx_msec_t *last_fail)
{
    ngx_int_t                           rc;
    ngx_http_llmproxy_cooldown_node_t  *node;

    if (zctx->sh->cooling == 0) {
        return NGX_OK;
    }

    rc = NGX_OK;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    node = ngx_http_llmproxy_cooldown_lookup(zctx->sh, &d->id, d->hash);

    if (node && node->cooldown_until) {

        if ((ngx_msec_int_t) (node->cooldown_until - ngx_current_msec) > 0) {
            *last_fail = node->last_fail;
            rc = NGX_BUSY;

        } else {
            node->cooldown_until = 0;
            (void) ngx_atomic_fetch_add(&zctx->sh->cooling, -1);
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return rc;
}


void
ngx_http_llmproxy_cooldown_fail(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_http_llmproxy_deployment_t *d, ngx_http_llmproxy_settings_t *s,
    ngx_msec_t cooldown)
{
    size_t                              n;
    ngx_msec_t                          now;
    ngx_http_llmproxy_cooldown_node_t  *node;

    static ngx_uint_t                   nomem_logged;

    now = ngx_current_msec;

    ngx_shmtx_lock(&zctx->shpool->mutex);

    node = ngx_http_llmproxy_cooldown_lookup(zctx->sh, &d->id, d->hash);

    if (node == NULL) {
        n = offsetof(ngx_http_llmproxy_cooldown_node_t, id) + d->id.len;

        node = ngx_slab_calloc_locked(zctx->shpool, n);
        if (node == NULL) {
            ngx_shmtx_unlock(&zctx->shpool->mutex);

            /* once, not at every failed attempt */

            if (!nomem_logged) {
                nomem_logged = 1;
                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                              "llmproxy: no memory in the zone for the "
                              "cooldown of \"%V\"", &d->id);
            }

            return;
        }

        nomem_logged = 0;

        node->node.key = d->hash;
        node->len = (u_short) d->id.len;
        ngx_memcpy(node->id, d->id.data, d->id.len);
        node->window_start = now;

        ngx_rbtree_insert(&zctx->sh->cooldowns, &node->node);
    }

    if (now - node->window_start > NGX_HTTP_LLMPROXY_COOLDOWN_WINDOW) {
        node->window_start = now;
        node->fails = 0;
    }

    node->fails++;
    node->last_fail = now;

    if (cooldown || node->fails >= s->allowed_fails) {

        if (cooldown == 0) {
            cooldown = s->cooldown;
        }

        if (node->cooldown_until == 0) {
            (void) ngx_atomic_fetch_add(&zctx->sh->cooling, 1);
        }

        node->cooldown_until = now + cooldown;

        if (node->cooldown_until == 0) {
            node->cooldown_until = 1;
        }

        node->fails = 0;
        node->window_start = now;

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "llmproxy: deployment \"%V\" cools down for %Mms",
                      &d->id, cooldown);
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);
}


ngx_int_t
ngx_http_llmproxy_cooldown_list(ngx_http_llmproxy_zone_ctx_t *zctx,
    ngx_pool_t *pool, ngx_array_t *out)
{
    ngx_keyval_t                       *kv;
    ngx_msec_int_t                      left;
    ngx_rbtree_node_t                  *node, *root, *sentinel;
    ngx_http_llmproxy_cooldown_node_t  *cn;

    if (ngx_array_init(out, pool, 4, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&zctx->shpool->mutex);

    root = zctx->sh->cooldowns.root;
    sentinel = zctx->sh->cooldowns.sentinel;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&zctx->sh->cooldowns, node))
        {
            cn = (ngx_http_llmproxy_cooldown_node_t *) node;

            if (cn->cooldown_until == 0) {
                continue;
            }

            left = (ngx_msec_int_t) (cn->cooldown_until - ngx_current_msec);
            if (left <= 0) {
                continue;
            }

            kv = ngx_array_push(out);
            if (kv == NULL) {
                break;
            }

            kv->key.len = cn->len;
            kv->key.data = ngx_pnalloc(pool, cn->len + NGX_INT_T_LEN);
            if (kv->key.data == NULL) {
                out->nelts--;
                break;
            }

            ngx_memcpy(kv->key.data, cn->id, cn->len);

            kv->value.data = kv->key.data + cn->len;
            kv->value.len = ngx_sprintf(kv->value.data, "%M", left)
                            - kv->value.data;
        }
    }

    ngx_shmtx_unlock(&zctx->shpool->mutex);

    return NGX_OK;
}


static ngx_http_llmproxy_cooldown_node_t *
ngx_http_llmproxy_cooldown_lookup(ngx_http_llmproxy_shctx_t *sh,
    ngx_str_t *id, uint32_t hash)
{
    ngx_int_t                           rc;
    ngx_rbtree_node_t                  *node, *sentinel;
    ngx_http_llmproxy_cooldown_node_t  *cn;

    node = sh->cooldowns.root;
    sentinel = sh->cooldowns.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        cn = (ngx_http_llmproxy_cooldown_node_t *) node;

        rc = ngx_memn2cmp(id->data, cn->id, id->len, (size_t) cn->len);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_llmproxy_cooldown_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                 **p;
    ngx_http_llmproxy_cooldown_node_t  *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            cn = (ngx_http_llmproxy_cooldown_node_t *) node;
            cnt = (ngx_http_llmproxy_cooldown_node_t *) temp;

            p = (ngx_memn2cmp(cn->id, cnt->id, cn->len, cnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The zone's own part of its init (nginx's shm_zone->init is
 * ngx_http_llmproxy_init_zone() of _module.c, which also sets up the
 * other floors' tables): NGX_DONE when the zone already exists (a reload,
 * or a zone of the old cycle), NGX_OK when it is fresh.
 */

ngx_int_t
ngx_http_llmproxy_zone_attach(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_llmproxy_zone_ctx_t  *octx = data;

    ngx_http_llmproxy_zone_ctx_t  *zctx;

    zctx = shm_zone->data;

    if (octx) {
        zctx->sh = octx->sh;
        zctx->shpool = octx->shpool;
        return NGX_DONE;
    }

    zctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zctx->sh = zctx->shpool->data;
        return NGX_DONE;
    }

    zctx->sh = ngx_slab_calloc(zctx->shpool,
                               sizeof(ngx_http_llmproxy_shctx_t));
    if (zctx->sh == NULL) {
        return NGX_ERROR;
    }

    zctx->shpool->data = zctx->sh;

    ngx_rbtree_init(&zctx->sh->cooldowns, &zctx->sh->sentinel,
                    ngx_http_llmproxy_cooldown_insert);

    return NGX_OK;
}


/* once the fresh zone's tables are in: its name in slab's messages */

ngx_int_t
ngx_http_llmproxy_zone_name_log(ngx_shm_zone_t *shm_zone)
{
    size_t                         len;
    ngx_http_llmproxy_zone_ctx_t  *zctx;

    zctx = shm_zone->data;

    len = sizeof(" in llmproxy zone \"\"") + shm_zone->shm.name.len;

    zctx->shpool->log_ctx = ngx_slab_alloc(zctx->shpool, len);
    if (zctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zctx->shpool->log_ctx, " in llmproxy zone \"%V\"%Z",
                &shm_zone->shm.name);

    zctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/* `init` is the zone's init: _module.c's, which calls the floors below */

char *
ngx_http_llmproxy_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf,
    ngx_shm_zone_init_pt init)
{
    ngx_http_llmproxy_main_conf_t *lmcf = conf;

    u_char                        *p;
    ssize_t                        size;
    ngx_str_t                     *value, name, s;
    ngx_http_llmproxy_zone_ctx_t  *zctx;

    if (lmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected NAME:SIZE",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected NAME:SIZE",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (64 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least %uzk",
                           &value[1], 64 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    zctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_llmproxy_zone_ctx_t));
    if (zctx == NULL) {
        return NGX_CONF_ERROR;
    }

    zctx->log = &cf->cycle->new_log;

    lmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_llmproxy_module);
    if (lmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (lmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    lmcf->shm_zone->init = init;
    lmcf->shm_zone->data = zctx;

    return NGX_CONF_OK;
}

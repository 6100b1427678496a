/*
 * Prices of the compiled config's deployments; see llmp_prices.h.
 *
 * How the providers bill cached input, as multiples of the input price
 * (their pricing pages, checked on the date in configs/prices.json):
 * Anthropic reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x; OpenAI
 * reads 0.1x (gpt-5 family), 0.25x (gpt-4.1, o3, o4-mini) or 0.5x (gpt-4o,
 * o1, o3-mini), no write surcharge; Gemini reads 0.1x (2.5 and later) or
 * 0.25x (2.0 and earlier), cache creation billed as input (storage per
 * hour is not billed per request).  A model of no known provider gets no
 * discount: reads at the input price, writes as Anthropic bills them (only
 * Anthropic-style answers report writes).
 */

#include <stdio.h>
#include <string.h>

#include "llmp_prices.h"


static cJSON  *llmp_price_list;


static const char *const  llmp_price_fields[] = {
    LLMP_PRICE_INPUT, LLMP_PRICE_OUTPUT, LLMP_PRICE_CACHE_READ,
    LLMP_PRICE_CACHE_5M, LLMP_PRICE_CACHE_1H, NULL
};


int
llmp_prices_is_field(const char *name)
{
    int  i;

    for (i = 0; llmp_price_fields[i]; i++) {
        if (strcmp(name, llmp_price_fields[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
llmp_price_ok(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0
           && v->valuedouble <= 1e15;
}


int
llmp_prices_use(const char *json, llmp_errors_t *errs)
{
    int           bad;
    cJSON        *list;
    const cJSON  *models, *m, *v;

    cJSON_Delete(llmp_price_list);
    llmp_price_list = NULL;

    if (json == NULL) {
        return 0;
    }

    list = cJSON_Parse(json);
    models = cJSON_GetObjectItemCaseSensitive(list, "models");

    if (!cJSON_IsObject(models)
        || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(list, "checked")))
    {
        llmp_errors_add(errs, "price list: expected an object with "
                        "\"checked\" and \"models\"");
        cJSON_Delete(list);
        return -1;
    }

    bad = 0;

    cJSON_ArrayForEach(m, models) {
        if (!cJSON_IsObject(m)
            || !llmp_price_ok(cJSON_GetObjectItemCaseSensitive(m,
                                  LLMP_PRICE_INPUT))
            || !llmp_price_ok(cJSON_GetObjectItemCaseSensitive(m,
                                  LLMP_PRICE_OUTPUT)))
        {
            llmp_errors_add(errs, "price list: models.%s: expected input "
                            "and output prices", m->string);
            bad = 1;
            continue;
        }

        cJSON_ArrayForEach(v, m) {
            if (!llmp_prices_is_field(v->string) || !llmp_price_ok(v)) {
                llmp_errors_add(errs, "price list: models.%s.%s: expected "
                                "a known price, a non-negative number",
                                m->string, v->string);
                bad = 1;
            }
        }
    }

    if (bad) {
        cJSON_Delete(list);
        return -1;
    }

    llmp_price_list = list;

    return 0;
}


const char *
llmp_prices_checked(void)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                    llmp_price_list, "checked"));
}


const cJSON *
llmp_prices_models(void)
{
    return cJSON_GetObjectItemCaseSensitive(llmp_price_list, "models");
}


const cJSON *
llmp_prices_find(const char *model)
{
    if (model == NULL || llmp_price_list == NULL) {
        return NULL;
    }

    return cJSON_GetObjectItemCaseSensitive(
               cJSON_GetObjectItemCaseSensitive(llmp_price_list, "models"),
               model);
}


/* the model's provider's cache prices as multiples of its input price */

static int
llmp_prices_ratios(const char *name, double *read, double *w5m,
    double *w1h)
{
    const char  *base;

    base = strrchr(name, '/');
    base = base ? base + 1 : name;

    if (strstr(base, "claude")) {
        *read = 0.1;
        *w5m = 1.25;
        *w1h = 2;
        return 1;
    }

    if (strstr(base, "gemini")) {
        *read = (strncmp(base, "gemini-1", 8) == 0
                 || strncmp(base, "gemini-2.0", 10) == 0) ? 0.25 : 0.1;

    } else if (strncmp(base, "gpt-5", 5) == 0) {
        *read = 0.1;

    } else if (strncmp(base, "gpt-4.1", 7) == 0
               || strncmp(base, "o3", 2) == 0 || strncmp(base, "o4", 2) == 0)
    {
        *read = (strncmp(base, "o3-mini", 7) == 0) ? 0.5 : 0.25;

    } else if (strncmp(base, "gpt-4o", 6) == 0
               || strncmp(base, "o1", 2) == 0)
    {
        *read = 0.5;

    } else {
        return 0;
    }

    *w5m = 1;
    *w1h = 1;

    return 1;
}


int
llmp_prices_apply(cJSON *d, const cJSON *m)
{
    int           i;
    double        in, ratio[3];
    const char   *up, *pub, *base;
    const cJSON  *src, *v;

    static const char *const  cache[] = {
        LLMP_PRICE_CACHE_READ, LLMP_PRICE_CACHE_5M, LLMP_PRICE_CACHE_1H
    };

    up = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d,
                                  "upstream_model"));
    pub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "model"));

    if (llmp_price_ok(cJSON_GetObjectItemCaseSensitive(m, LLMP_PRICE_INPUT))
        || llmp_price_ok(cJSON_GetObjectItemCaseSensitive(m,
                                                          LLMP_PRICE_OUTPUT)))
    {
        src = m;

    } else {
        base = up ? strrchr(up, '/') : NULL;

        src = llmp_prices_find(up);
        src = src ? src : llmp_prices_find(base ? base + 1 : NULL);
        src = src ? src : llmp_prices_find(pub);

        if (src == NULL) {
            return 0;                       /* unpriced */
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(src, LLMP_PRICE_INPUT);
    in = llmp_price_ok(v) ? v->valuedouble : 0;

    v = cJSON_GetObjectItemCaseSensitive(src, LLMP_PRICE_OUTPUT);

    if (cJSON_AddNumberToObject(d, LLMP_PRICE_INPUT, in) == NULL
        || cJSON_AddNumberToObject(d, LLMP_PRICE_OUTPUT,
                                   llmp_price_ok(v) ? v->valuedouble : 0)
           == NULL)
    {
        return -1;
    }

    ratio[0] = 1;                           /* no discount known */
    ratio[1] = 1.25;
    ratio[2] = 2;

    if (!(up && llmp_prices_ratios(up, &ratio[0], &ratio[1], &ratio[2]))
        && pub)
    {
        (void) llmp_prices_ratios(pub, &ratio[0], &ratio[1], &ratio[2]);
    }

    for (i = 0; i < 3; i++) {

        /* the config's own cache price wins over the list's */

        v = cJSON_GetObjectItemCaseSensitive(m, cache[i]);

        if (!llmp_price_ok(v)) {
            v = cJSON_GetObjectItemCaseSensitive(src, cache[i]);
        }

        if (cJSON_AddNumberToObject(d, cache[i], llmp_price_ok(v)
                                                 ? v->valuedouble
                                                 : in * ratio[i])
            == NULL)
        {
            return -1;
        }
    }

    return 0;
}

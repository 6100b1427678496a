/*
 * Unit tests of the prices in the compiled config (common/llmp_prices.c):
 * the shipped price list loads, config prices win over it, cache prices
 * default to each provider's ratios, a model priced nowhere has no prices.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmp_config.h"
#include "llmp_prices.h"
#include "unit_tap.h"


static llmp_errors_t  errs;


static char *
J(const char *s)
{
    char  *out, *p;

    out = strdup(s);
    if (out == NULL) {
        abort();
    }

    for (p = out; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    return out;
}


static cJSON *
compile(const char *json)
{
    char   *j;
    cJSON  *out;

    llmp_errors_free(&errs);
    llmp_errors_init(&errs);

    j = J(json);

    if (llmp_config_load_string(j, NULL, &errs, &out) != 0) {
        out = NULL;
    }

    free(j);

    return out;
}


static const cJSON *
deployment(const cJSON *doc, const char *id)
{
    const cJSON  *d;

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(doc,
                                                           "deployments"))
    {
        if (strcmp(cJSON_GetStringValue(
                       cJSON_GetObjectItemCaseSensitive(d, "id")), id) == 0)
        {
            return d;
        }
    }

    return NULL;
}


static double
price(const cJSON *doc, const char *id, const char *field)
{
    const cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(deployment(doc, id), field);

    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}


static int
near(double a, double b)
{
    return a - b < 1e-12 && b - a < 1e-12;
}


static char *
read_file(const char *path)
{
    long   len;
    char  *s;
    FILE  *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);

    s = malloc(len + 1);
    if (s && fread(s, 1, len, f) != (size_t) len) {
        free(s);
        s = NULL;
    }

    if (s) {
        s[len] = '\0';
    }

    fclose(f);

    return s;
}


#define P  "'api_base':'http://h:1','interfaces':['openai','anthropic']"


int
main(void)
{
    char   *list;
    cJSON  *doc;

    llmp_errors_init(&errs);

    /* without a list: config prices only, and Anthropic's ratios */

    doc = compile("{'providers':{'p':{" P ",'models':{"
                  "'sonnet':{'model':'claude-sonnet-4-5',"
                  "          'input_cost_per_million':3,"
                  "          'output_cost_per_million':15},"
                  "'g':{'model':'gemini-2.0-flash',"
                  "     'input_cost_per_million':0.1},"
                  "'o':{'model':'gpt-4.1','input_cost_per_million':2,"
                  "     'cache_read_input_cost_per_million':0.4},"
                  "'x':{'input_cost_per_million':1},"
                  "'free':{'input_cost_per_million':0},"
                  "'none':{}}}}}");

    TAP_OK(doc != NULL, "compiles with cache prices");
    TAP_OK(near(price(doc, "p/sonnet", LLMP_PRICE_CACHE_READ), 0.3)
           && near(price(doc, "p/sonnet", LLMP_PRICE_CACHE_5M), 3.75)
           && near(price(doc, "p/sonnet", LLMP_PRICE_CACHE_1H), 6),
           "claude: reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x");
    TAP_OK(near(price(doc, "p/g", LLMP_PRICE_CACHE_READ), 0.025)
           && near(price(doc, "p/g", LLMP_PRICE_OUTPUT), 0),
           "gemini-2.0: reads 0.25x; output price not given is 0");
    TAP_OK(near(price(doc, "p/o", LLMP_PRICE_CACHE_READ), 0.4),
           "a cache price in the config is taken as is");
    TAP_OK(near(price(doc, "p/x", LLMP_PRICE_CACHE_READ), 1)
           && near(price(doc, "p/x", LLMP_PRICE_CACHE_5M), 1.25),
           "unknown provider: reads at the input price");
    TAP_OK(near(price(doc, "p/free", LLMP_PRICE_INPUT), 0),
           "a price of 0 is a price (free, not unpriced)");
    TAP_OK(price(doc, "p/none", LLMP_PRICE_INPUT) == -1
           && price(doc, "p/none", LLMP_PRICE_CACHE_READ) == -1,
           "a model priced nowhere has no prices");
    cJSON_Delete(doc);

    doc = compile("{'providers':{'p':{" P ",'models':{"
                  "'m':{'cache_read_input_cost_per_million':-1}}}}}");
    TAP_OK(doc == NULL && llmp_errors_has(&errs,
               "providers.p.models.m.cache_read_input_cost_per_million: "
               "expected non-negative number"),
           "a negative cache price is refused");

    doc = compile("{'providers':{'p':{" P ",'models':{"
                  "'m':{'cache_price':1}}}}}");
    TAP_OK(doc == NULL, "an unknown price field is refused");

    /* the shipped list */

    list = read_file("configs/prices.json");
    TAP_OK(list && llmp_prices_use(list, &errs) == 0
           && llmp_prices_checked() != NULL,
           "configs/prices.json loads, with its date");
    free(list);

    doc = compile("{'providers':{'p':{" P ",'models':{"
                  "'claude-sonnet-4-5-20250929':{},"
                  "'sonnet':{'model':'anthropic/claude-opus-4-5'},"
                  "'gpt-5':{'input_cost_per_million':2},"
                  "'gpt-5-mini':{'cache_read_input_cost_per_million':0.02},"
                  "'mystery':{}}}}}");

    TAP_OK(doc != NULL, "compiles with the list");
    TAP_OK(near(price(doc, "p/claude-sonnet-4-5-20250929", LLMP_PRICE_INPUT),
                3)
           && near(price(doc, "p/claude-sonnet-4-5-20250929",
                         LLMP_PRICE_OUTPUT), 15)
           && near(price(doc, "p/claude-sonnet-4-5-20250929",
                         LLMP_PRICE_CACHE_READ), 0.3),
           "a listed model without config prices takes the list's");
    TAP_OK(near(price(doc, "p/sonnet", LLMP_PRICE_INPUT), 5)
           && near(price(doc, "p/sonnet", LLMP_PRICE_CACHE_1H), 10),
           "found by upstream model, without a provider prefix");
    TAP_OK(near(price(doc, "p/gpt-5", LLMP_PRICE_INPUT), 2)
           && near(price(doc, "p/gpt-5", LLMP_PRICE_OUTPUT), 0)
           && near(price(doc, "p/gpt-5", LLMP_PRICE_CACHE_READ), 0.2),
           "config prices override the list's");
    TAP_OK(near(price(doc, "p/gpt-5-mini", LLMP_PRICE_INPUT), 0.25)
           && near(price(doc, "p/gpt-5-mini", LLMP_PRICE_CACHE_READ), 0.02),
           "a config cache price overrides the list's");
    TAP_OK(price(doc, "p/mystery", LLMP_PRICE_INPUT) == -1,
           "a model in neither is unpriced");
    TAP_OK(llmp_compiled_validate(doc, &errs) == 0,
           "the compiled config with and without prices validates");
    cJSON_Delete(doc);

    TAP_OK(llmp_prices_use("{'models':{}}", &errs) != 0
           && llmp_prices_use("{\"checked\":\"x\",\"models\":{\"m\":"
                              "{\"input_cost_per_million\":1}}}", &errs)
              != 0,
           "a list without a date or with a model without prices is "
           "refused");

    llmp_prices_use(NULL, &errs);
    llmp_errors_free(&errs);

    return tap_done();
}

/*
 * llmp_prices: a deployment's prices in the compiled config.  Config
 * prices win; a model without them takes the shipped price list's
 * (configs/prices.json, which llmproxyctl embeds); a model priced nowhere
 * gets no price fields at all, and the gateway reports it as unpriced.
 * Cache prices not given are derived from the input price the way the
 * model's provider bills them.
 */

#ifndef _LLMP_PRICES_H_INCLUDED_
#define _LLMP_PRICES_H_INCLUDED_

#include <cjson/cJSON.h>

#include "llmp_config.h"


/* the price fields of a model, in config.json and the compiled config */
#define LLMP_PRICE_INPUT       "input_cost_per_million"
#define LLMP_PRICE_OUTPUT      "output_cost_per_million"
#define LLMP_PRICE_CACHE_READ  "cache_read_input_cost_per_million"
#define LLMP_PRICE_CACHE_5M    "cache_creation_input_cost_per_million"
#define LLMP_PRICE_CACHE_1H    "cache_creation_1h_input_cost_per_million"

/* 1 for the name of a price field */
int llmp_prices_is_field(const char *name);

/*
 * Uses json (the price list) from now on, or none for NULL.  Returns 0, or
 * -1 with the problems in errs.
 */
int llmp_prices_use(const char *json, llmp_errors_t *errs);

/* "checked" of the list in use, or NULL */
const char *llmp_prices_checked(void);

/*
 * Adds the price fields to the compiled deployment d from the user's
 * model options m (already validated) and the list, by d's
 * upstream_model, then its public model name.  Returns 0, -1: no memory.
 */
int llmp_prices_apply(cJSON *d, const cJSON *m);

/*
 * The list's prices of one model (checked like config prices), or NULL.
 */
const cJSON *llmp_prices_find(const char *model);

/* the list's "models" object (name -> prices), or NULL */
const cJSON *llmp_prices_models(void);

#endif /* _LLMP_PRICES_H_INCLUDED_ */

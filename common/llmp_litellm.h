/*
 * What llmproxyctl's LiteLLM import and the module's LiteLLM key API
 * share.
 */

#ifndef _LLMP_LITELLM_H_INCLUDED_
#define _LLMP_LITELLM_H_INCLUDED_


/*
 * LiteLLM's durations ("30s", "10m", "24h", "30d", "1w", "1mo", "daily",
 * "weekly", "monthly", or plain seconds) in seconds; -1 if invalid.  A
 * month is taken as 30 days and sets *month.
 */
long long llmp_litellm_duration(const char *s, int *month);

#endif /* _LLMP_LITELLM_H_INCLUDED_ */

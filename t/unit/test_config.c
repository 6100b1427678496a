/*
 * Unit tests of the config compiler (common/llmp_config.c): deep merge of
 * config.local.json, $extend, access groups, aliases and fallbacks, every
 * validation error class (exact "path: reason" strings), env: secrets,
 * provider headers (digest, checks that never echo values),
 * deterministic compiled output and its validator.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmp_config.h"
#include "llmp_crypt.h"
#include "llmp_sha256.h"
#include "unit_tap.h"


/* test JSON is written with ' for " */

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


#define P  "'api_base':'http://h:1','interfaces':['openai']"


static llmp_errors_t  errs;


/* compiles; NULL on errors (kept in errs until the next call) */

static cJSON *
compile(const char *json, const char *local)
{
    char   *j, *l;
    cJSON  *out;

    llmp_errors_free(&errs);

    j = J(json);
    l = local ? J(local) : NULL;

    if (llmp_config_load_string(j, l, &errs, &out) != 0) {
        out = NULL;
    }

    free(j);
    free(l);

    return out;
}


static void
dump_errors(void)
{
    size_t  i;

    for (i = 0; i < errs.n; i++) {
        printf("# error: %s\n", errs.items[i]);
    }
}


/* compiling fails and the exact error is among those reported */

static int
fails_with(const char *json, const char *local, const char *err)
{
    cJSON  *out;

    out = compile(json, local);

    if (out != NULL) {
        cJSON_Delete(out);
        printf("# compiled, expected: %s\n", err);
        return 0;
    }

    if (!llmp_errors_has(&errs, err)) {
        printf("# expected: %s\n", err);
        dump_errors();
        return 0;
    }

    return 1;
}


/* exactly one error, this one */

static int
fails_only_with(const char *json, const char *err)
{
    return fails_with(json, NULL, err) && errs.n == 1;
}


static const cJSON *
find(const cJSON *list, const char *key, const char *name)
{
    const cJSON  *item, *v;

    cJSON_ArrayForEach(item, list) {
        v = cJSON_GetObjectItemCaseSensitive(item, key);

        if (cJSON_IsString(v) && strcmp(v->valuestring, name) == 0) {
            return item;
        }
    }

    return NULL;
}


static const cJSON *
deployment(const cJSON *doc, const char *id)
{
    return find(cJSON_GetObjectItemCaseSensitive(doc, "deployments"), "id",
                id);
}


static const cJSON *
provider(const cJSON *doc, const char *name)
{
    return find(cJSON_GetObjectItemCaseSensitive(doc, "providers"), "name",
                name);
}


static double
num(const cJSON *obj, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}


static const char *
str(const cJSON *obj, const char *key)
{
    const char  *s;

    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));

    return s ? s : "(none)";
}


/* the JSON text of a member, for compact comparisons */

static int
json_is(const cJSON *obj, const char *key, const char *expect)
{
    int    ok;
    char  *text, *e;

    text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(obj,
                                                                   key));
    e = J(expect);
    ok = text && strcmp(text, e) == 0;

    if (!ok) {
        printf("# %s: got %s, expected %s\n", key, text ? text : "NULL", e);
    }

    free(text);
    free(e);

    return ok;
}


static void
test_example(void)
{
    cJSON  *doc;

    doc = compile(
        "{'providers':{"
        " 'cliproxy':{'api_base':'http://cli-proxy-api:8317',"
        "  'interfaces':['openai','gemini','anthropic'],"
        "  'access_groups':['team'],"
        "  'models':{'gpt-5':{'input_cost_per_million':1.25,"
        "                     'output_cost_per_million':10},"
        "   'gemini-2.5-pro':{'access_groups':['admins']},"
        "   'claude-sonnet-4-5-20250929':{}}},"
        " 'cliproxy-eu':{'$extend':'cliproxy',"
        "  'api_base':'http://cli-proxy-eu:8317'},"
        " 'anthropic':{'api_base':'https://api.anthropic.com',"
        "  'interfaces':['anthropic'],"
        "  'models':{'claude-opus-4-5-20251101':"
        "            {'model':'claude-opus-4-5-20251101'}}}},"
        "'aliases':{'claude-opus-4-5':'anthropic/claude-opus-4-5-20251101'},"
        "'fallbacks':{'gpt-5':['gemini-2.5-pro',"
        "                      'claude-sonnet-4-5-20250929']},"
        "'settings':{'num_retries':1,'allowed_fails':3,"
        "            'cooldown_seconds':30,'request_timeout_seconds':600}}",
        NULL);

    TAP_OK(doc != NULL, "the SPEC section 4 example compiles");

    if (doc == NULL) {
        dump_errors();
        return;
    }

    TAP_OK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc,
                                  "providers")) == 3
           && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc,
                                  "deployments")) == 7,
           "3 providers and 7 deployments (cliproxy-eu copies 3 models)");

    TAP_OK(num(doc, "format") == 1 && strlen(str(doc, "config_sha256")) == 64,
           "format 1 and a 64-digit config_sha256");

    TAP_OK(json_is(doc, "settings", "{'num_retries':1,'allowed_fails':3,"
                   "'cooldown_seconds':30,'request_timeout_seconds':600}"),
           "settings are compiled as given");

    TAP_OK(json_is(doc, "fallbacks", "{'gpt-5':['gemini-2.5-pro',"
                   "'claude-sonnet-4-5-20250929']}"),
           "fallbacks are kept in their order");

    cJSON_Delete(doc);
}


static void
test_merge(void)
{
    cJSON  *doc, *a, *b;
    char   *s, *t;

    s = J("{'o':{'x':1,'y':{'z':2},'arr':[1,2]},'k':'v'}");
    t = J("{'o':{'y':{'w':3},'arr':[9]},'k':{'now':'object'},'n':null}");
    a = cJSON_Parse(s);
    b = cJSON_Parse(t);
    free(s);
    free(t);

    TAP_OK(a && b && llmp_json_merge(a, b) == 0
           && json_is(a, "o", "{'x':1,'y':{'z':2,'w':3},'arr':[9]}")
           && json_is(a, "k", "{'now':'object'}")
           && json_is(a, "n", "null"),
           "llmp_json_merge: objects merge key by key, the rest replaces");

    cJSON_Delete(a);
    cJSON_Delete(b);

    doc = compile("{'providers':{'p':{" P ",'access_groups':['a'],"
                  "'models':{'m':{'rpm':5,'tpm':7}}}}}",
                  "{'providers':{'p':{'api_key':'sk-local',"
                  "'interfaces':['anthropic','gemini'],"
                  "'models':{'m':{'rpm':50},'n':{}}},"
                  "'q':{" P ",'models':{}}},"
                  "'settings':{'num_retries':4}}");

    TAP_OK(doc != NULL, "config.local.json merges over config.json");

    if (doc == NULL) {
        dump_errors();
        return;
    }

    TAP_OK(num(deployment(doc, "p/m"), "rpm") == 50
           && num(deployment(doc, "p/m"), "tpm") == 7,
           "local overrides one nested model field, keeps the others");

    TAP_OK(deployment(doc, "p/n") != NULL && provider(doc, "q") != NULL,
           "local adds models and providers");

    TAP_OK(json_is(provider(doc, "p"), "interfaces",
                   "['anthropic','gemini']"),
           "local arrays replace base arrays");

    TAP_OK(strcmp(str(provider(doc, "p"), "api_key"), "sk-local") == 0,
           "local api_key lands on the provider");

    TAP_OK(num(cJSON_GetObjectItemCaseSensitive(doc, "settings"),
               "num_retries") == 4
           && num(cJSON_GetObjectItemCaseSensitive(doc, "settings"),
                  "cooldown_seconds") == 5,
           "local settings merge with defaults");

    cJSON_Delete(doc);

    TAP_OK(fails_with("{'providers':{'p':{" P "}}}", "{'providers':[",
                      "config.local.json: invalid JSON near line 1"),
           "invalid config.local.json is reported by name");

    TAP_OK(fails_with("{'providers':\n{'p':{" P "}}}", "{'providers':{'p':"
                      "{'models':{'m':{'rpn':1}}}}}",
                      "providers.p.models.m.rpn: unknown field"),
           "fields from config.local.json are validated too");
}


static void
test_extend(void)
{
    cJSON  *doc;

    doc = compile("{'providers':{"
                  "'base':{" P ",'access_groups':['team'],'weight':3,"
                  "  'headers':{'X-A':'1'},"
                  "  'models':{'gpt-5':{'input_cost_per_million':1.25,"
                  "                     'rpm':10},"
                  "            'o3':{}}},"
                  "'eu':{'$extend':'base','api_base':'http://eu:2/',"
                  "  'headers':{'X-B':'2'},"
                  "  'models':{'gpt-5':{'rpm':20},'eu-only':{}}},"
                  "'eu2':{'$extend':'eu','interfaces':['gemini'],"
                  "  'access_groups':['eu']}}}", NULL);

    TAP_OK(doc != NULL, "$extend chains compile");

    if (doc == NULL) {
        dump_errors();
        return;
    }

    TAP_OK(strcmp(str(provider(doc, "eu"), "api_base"), "http://eu:2") == 0
           && json_is(provider(doc, "eu"), "interfaces", "['openai']"),
           "simple $extend: fields copied, own fields win, trailing / "
           "dropped");

    TAP_OK(json_is(provider(doc, "eu"), "headers", "{'X-A':'1','X-B':'2'}"),
           "$extend deep-merges headers");

    TAP_OK(num(deployment(doc, "eu/gpt-5"), "rpm") == 20
           && num(deployment(doc, "eu/gpt-5"), "input_cost_per_million")
              == 1.25
           && num(deployment(doc, "base/gpt-5"), "rpm") == 10,
           "nested model override: rpm replaced, price inherited, base "
           "untouched");

    TAP_OK(deployment(doc, "eu/o3") && deployment(doc, "eu/eu-only")
           && deployment(doc, "base/eu-only") == NULL,
           "derived provider gets base models plus its own");

    TAP_OK(deployment(doc, "eu2/o3") && deployment(doc, "eu2/eu-only")
           && num(deployment(doc, "eu2/gpt-5"), "rpm") == 20
           && strcmp(str(provider(doc, "eu2"), "api_base"), "http://eu:2")
              == 0
           && json_is(provider(doc, "eu2"), "interfaces", "['gemini']"),
           "chain eu2 -> eu -> base resolves in order");

    TAP_OK(json_is(deployment(doc, "eu2/o3"), "access_groups", "['eu']")
           && json_is(deployment(doc, "eu/o3"), "access_groups", "['team']")
           && num(deployment(doc, "eu2/o3"), "weight") == 3,
           "access groups and weight are inherited through $extend");

    {
        char  *text = cJSON_PrintUnformatted(doc);

        TAP_OK(text && strstr(text, "$extend") == NULL,
               "compiled output has no $extend left");
        free(text);
    }

    cJSON_Delete(doc);

    TAP_OK(fails_only_with("{'providers':{'a':{'$extend':'b'},"
                           "'b':{'$extend':'a'}}}",
                           "providers.a.$extend: cycle a -> b -> a"),
           "a cycle is reported once, with its path");

    TAP_OK(fails_only_with("{'providers':{'c':{'$extend':'a'},"
                           "'a':{'$extend':'b'},'b':{'$extend':'a'}}}",
                           "providers.a.$extend: cycle a -> b -> a"),
           "a provider extending into a cycle adds no second error");

    TAP_OK(fails_only_with("{'providers':{'a':{'$extend':'a'}}}",
                           "providers.a.$extend: cycle a -> a"),
           "a provider extending itself is a cycle");

    TAP_OK(fails_only_with("{'providers':{'x':{'$extend':'y'}}}",
                           "providers.x.$extend: unknown provider \"y\""),
           "unknown $extend target");

    TAP_OK(fails_only_with("{'providers':{'x':{'$extend':1," P "}}}",
                           "providers.x.$extend: expected string"),
           "$extend must be a string");

    TAP_OK(fails_only_with("{'providers':{'eu':{'$extend':'b'},"
                           "'b':{" P ",'models':{'m':{'rpm':-1}}}}}",
                           "providers.b.models.m.rpm: expected non-negative "
                           "integer"),
           "an error inherited through $extend is reported once, at the "
           "base");

    TAP_OK(fails_with("{'providers':{'b':{" P ",'access_groups':'t',"
                      "'models':{'m':{'rpm':-1}}},'eu':{'$extend':'b'},"
                      "'eu2':{'$extend':'eu'}}}", NULL,
                      "providers.b.access_groups: expected array of strings")
           && errs.n == 2
           && llmp_errors_has(&errs, "providers.b.models.m.rpm: expected "
                              "non-negative integer"),
           "several errors inherited along a chain are reported at the "
           "base only");

    TAP_OK(fails_only_with("{'providers':{'x':{'$extend':'y',"
                           "'models':{'m':{}}}},'aliases':{'a':'m'}}",
                           "providers.x.$extend: unknown provider \"y\""),
           "models of a provider with a broken $extend stay known names");
}


static void
test_groups_and_defaults(void)
{
    cJSON        *doc;
    const cJSON  *d;

    doc = compile("{'providers':{"
                  "'p':{" P ",'access_groups':['team','ops'],"
                  "  'models':{'a':{},'b':{'access_groups':['admins']},"
                  "            'c':{'access_groups':[]},"
                  "            'd':{'model':'upstream-d','weight':5}}},"
                  "'q':{" P ",'models':{'a':{}}}}}", NULL);

    TAP_OK(doc != NULL, "access group config compiles");

    if (doc == NULL) {
        dump_errors();
        return;
    }

    TAP_OK(json_is(deployment(doc, "p/a"), "access_groups", "['team','ops']"),
           "a model without access_groups inherits the provider's");

    TAP_OK(json_is(deployment(doc, "p/b"), "access_groups", "['admins']")
           && json_is(deployment(doc, "p/c"), "access_groups", "[]"),
           "a model's access_groups override the provider's (even [])");

    TAP_OK(json_is(deployment(doc, "q/a"), "access_groups", "[]"),
           "no access groups anywhere gives []");

    d = deployment(doc, "p/a");

    TAP_OK(strcmp(str(d, "upstream_model"), "a") == 0
           && strcmp(str(d, "provider"), "p") == 0
           && strcmp(str(d, "model"), "a") == 0
           && cJSON_GetObjectItemCaseSensitive(d, "input_cost_per_million")
              == NULL
           && cJSON_GetObjectItemCaseSensitive(d, "output_cost_per_million")
              == NULL
           && num(d, "rpm") == 0 && num(d, "tpm") == 0
           && num(d, "weight") == 1,
           "deployment defaults: upstream = public name, no prices "
           "(unpriced), rpm/tpm 0, weight 1");

    d = deployment(doc, "p/d");

    TAP_OK(strcmp(str(d, "upstream_model"), "upstream-d") == 0
           && num(d, "weight") == 5,
           "the model option and weight are taken");

    TAP_OK(json_is(doc, "settings", "{'num_retries':1,'allowed_fails':3,"
                   "'cooldown_seconds':5,'request_timeout_seconds':600}")
           && json_is(doc, "aliases", "{}") && json_is(doc, "fallbacks",
                                                       "{}")
           && json_is(provider(doc, "q"), "headers", "{}")
           && cJSON_GetObjectItemCaseSensitive(provider(doc, "q"),
                                               "api_key") == NULL
           && cJSON_GetObjectItemCaseSensitive(provider(doc, "q"),
                                               "api_key_sha256") == NULL,
           "defaults: settings, empty aliases, fallbacks and headers, no "
           "api_key members");

    cJSON_Delete(doc);
}


#define TWO  "{'providers':{'p':{" P ",'models':{'gpt-5':{},'o3':{}}}," \
             "'q':{" P ",'models':{'o3':{}}}},"


static void
test_aliases_fallbacks(void)
{
    cJSON  *doc;

    doc = compile(TWO "'aliases':{'best':'gpt-5','pinned':'q/o3'},"
                  "'fallbacks':{'gpt-5':['o3','q/o3'],'best':['o3'],"
                  "'p/o3':['pinned']}}", NULL);

    TAP_OK(doc != NULL, "aliases to model names and PROVIDER/MODEL ids, "
           "fallbacks by model, id and alias compile");

    if (doc == NULL) {
        dump_errors();
    }

    cJSON_Delete(doc);

    TAP_OK(fails_only_with(TWO "'aliases':{'foo':'bar'}}",
                           "aliases.foo: unknown model \"bar\""),
           "alias to an unknown model");

    TAP_OK(fails_only_with(TWO "'aliases':{'foo':'p/nope'}}",
                           "aliases.foo: unknown model \"p/nope\""),
           "alias to an unknown deployment id");

    TAP_OK(fails_only_with(TWO "'aliases':{'a':'gpt-5','b':'a'}}",
                           "aliases.b: unknown model \"a\""),
           "an alias cannot point at another alias");

    TAP_OK(fails_only_with(TWO "'aliases':{'o3':'gpt-5'}}",
                           "aliases.o3: already the name of a model"),
           "alias name colliding with a model name");

    TAP_OK(fails_only_with(TWO "'aliases':{'foo':1}}",
                           "aliases.foo: expected non-empty string"),
           "alias target must be a string");

    TAP_OK(fails_only_with(TWO "'aliases':['x']}",
                           "aliases: expected object"),
           "aliases must be an object");

    TAP_OK(fails_only_with(TWO "'fallbacks':{'gpt-5':['nope']}}",
                           "fallbacks.gpt-5: unknown model \"nope\""),
           "fallback entry naming an unknown model");

    TAP_OK(fails_only_with(TWO "'fallbacks':{'nope':['o3']}}",
                           "fallbacks.nope: unknown model \"nope\""),
           "fallback key naming an unknown model");

    TAP_OK(fails_only_with(TWO "'fallbacks':{'gpt-5':'o3'}}",
                           "fallbacks.gpt-5: expected array of strings"),
           "fallback list must be an array");

    TAP_OK(fails_only_with(TWO "'fallbacks':{'gpt-5':['o3',1]}}",
                           "fallbacks.gpt-5: expected array of strings"),
           "fallback list must hold strings only");

    TAP_OK(fails_only_with(TWO "'fallbacks':{'gpt-5':['gpt-5']}}",
                           "fallbacks.gpt-5: falls back to itself"),
           "a model falling back to itself");
}


static void
test_validation(void)
{
    TAP_OK(fails_only_with("{'providers':{'p':{" P "}},'foo':1}",
                           "foo: unknown field"),
           "unknown top-level field");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'apibase':'x'}}}",
                           "providers.p.apibase: unknown field"),
           "unknown provider field");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                           "{'rpn':1}}}}}",
                           "providers.p.models.m.rpn: unknown field"),
           "unknown model field");

    TAP_OK(fails_only_with("{'providers':{'p':{" P "}},"
                           "'settings':{'nmu_retries':1}}",
                           "settings.nmu_retries: unknown field"),
           "unknown settings field");

    TAP_OK(fails_only_with("{}", "providers: required"),
           "providers are required");

    TAP_OK(fails_only_with("{'providers':[]}", "providers: expected object"),
           "providers must be an object");

    TAP_OK(fails_only_with("{'providers':{'p':1}}",
                           "providers.p: expected object"),
           "a provider must be an object");

    TAP_OK(fails_only_with("{'providers':{'a/b':{" P "}}}",
                           "providers.a/b: a provider name may not be empty "
                           "or contain \"/\""),
           "a provider name with /");

    TAP_OK(fails_only_with("{'providers':{'p':{'interfaces':['openai']}}}",
                           "providers.p.api_base: required"),
           "api_base is required");

    TAP_OK(fails_only_with("{'providers':{'p':{'api_base':'ftp://h',"
                           "'interfaces':['openai']}}}",
                           "providers.p.api_base: expected an http:// or "
                           "https:// URL")
           && fails_only_with("{'providers':{'p':{'api_base':'http://',"
                              "'interfaces':['openai']}}}",
                              "providers.p.api_base: expected an http:// "
                              "or https:// URL")
           && fails_only_with("{'providers':{'p':{'api_base':"
                              "'http://h:99999','interfaces':['openai']}}}",
                              "providers.p.api_base: expected an http:// "
                              "or https:// URL")
           && fails_only_with("{'providers':{'p':{'api_base':"
                              "'http://h/v1?x=1','interfaces':['openai']}}}",
                              "providers.p.api_base: expected an http:// "
                              "or https:// URL")
           && fails_only_with("{'providers':{'p':{'api_base':7,"
                              "'interfaces':['openai']}}}",
                              "providers.p.api_base: expected an http:// "
                              "or https:// URL"),
           "api_base: wrong scheme, no host, bad port, query, not a string");

    {
        cJSON  *doc;

        doc = compile("{'providers':{'a':{'api_base':'https://[::1]:8443/"
                      "v1','interfaces':['gemini']},'b':{'api_base':"
                      "'http://my-host.internal','interfaces':['openai']}}}",
                      NULL);
        TAP_OK(doc != NULL, "api_base accepts IPv6, ports, paths, bare "
               "hosts");
        cJSON_Delete(doc);
    }

    TAP_OK(fails_only_with("{'providers':{'p':{'api_base':'http://h',"
                           "'interfaces':[]}}}",
                           "providers.p.interfaces: expected non-empty "
                           "array of strings")
           && fails_only_with("{'providers':{'p':{'api_base':'http://h'}}}",
                              "providers.p.interfaces: required"),
           "interfaces: empty, missing");

    TAP_OK(fails_only_with("{'providers':{'p':{'api_base':'http://h',"
                           "'interfaces':['openai','cohere']}}}",
                           "providers.p.interfaces: unknown interface "
                           "\"cohere\" (expected openai, anthropic or "
                           "gemini)"),
           "interfaces: only openai, anthropic, gemini");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'access_groups':"
                           "'team'}}}",
                           "providers.p.access_groups: expected array of "
                           "strings")
           && fails_only_with("{'providers':{'cliproxy':{" P ",'models':"
                              "{'gpt-5':{'access_groups':['a',2]}}}}}",
                              "providers.cliproxy.models.gpt-5."
                              "access_groups: expected array of strings"),
           "access_groups must be arrays of strings");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                           "{'rpm':-1}}}}}",
                           "providers.p.models.m.rpm: expected "
                           "non-negative integer")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                              "{'tpm':1.5}}}}}",
                              "providers.p.models.m.tpm: expected "
                              "non-negative integer")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                              "{'input_cost_per_million':'1'}}}}}",
                              "providers.p.models.m.input_cost_per_million:"
                              " expected non-negative number")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                              "{'output_cost_per_million':-0.5}}}}}",
                              "providers.p.models.m.output_cost_per_million"
                              ": expected non-negative number")
           && fails_only_with("{'providers':{'p':{" P ",'weight':-2}}}",
                              "providers.p.weight: expected non-negative "
                              "integer"),
           "numbers: negative, fractional integers, strings");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                           "{'model':''}}}}}",
                           "providers.p.models.m.model: expected non-empty "
                           "string")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':1}}}}",
                              "providers.p.models.m: expected object")
           && fails_only_with("{'providers':{'p':{" P ",'models':[]}}}",
                              "providers.p.models: expected object"),
           "model entries: upstream name, object, models object");

    TAP_OK(fails_only_with("{'providers':{'p':{" P "}},"
                           "'settings':{'num_retries':'2'}}",
                           "settings.num_retries: expected non-negative "
                           "integer")
           && fails_only_with("{'providers':{'p':{" P "}},"
                              "'settings':{'cooldown_seconds':-1}}",
                              "settings.cooldown_seconds: expected "
                              "non-negative number")
           && fails_only_with("{'providers':{'p':{" P "}},"
                              "'settings':{'request_timeout_seconds':0}}",
                              "settings.request_timeout_seconds: expected "
                              "positive number")
           && fails_only_with("{'providers':{'p':{" P "}},'settings':[]}",
                              "settings: expected object"),
           "settings types");

    {
        cJSON  *doc;

        doc = compile("{'providers':{'p':{" P "}},'settings':"
                      "{'request_timeout_seconds':0.5,'num_retries':0}}",
                      NULL);
        TAP_OK(doc && num(cJSON_GetObjectItemCaseSensitive(doc, "settings"),
                          "request_timeout_seconds") == 0.5,
               "a fractional timeout and zero retries are fine");
        cJSON_Delete(doc);
    }

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'headers':"
                           "{'X-A':1}}}}",
                           "providers.p.headers.X-A: expected string")
           && fails_only_with("{'providers':{'p':{" P ",'headers':"
                              "{'Bad Name':'v'}}}}",
                              "providers.p.headers.Bad Name: invalid header "
                              "name")
           && fails_only_with("{'providers':{'p':{" P ",'headers':"
                              "{'X-A':'a\\nb'}}}}",
                              "providers.p.headers.X-A: invalid header "
                              "value"),
           "headers: string values, valid names, no line breaks");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':{'m':{},"
                           "'m':{}}}}}",
                           "providers.p.models.m: duplicate name"),
           "duplicate keys are errors");

    /* anywhere in the file: the compiler would silently take the first */
    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'api_base':"
                           "'http://b:1','models':{'m':{}}}}}",
                           "providers.p.api_base: duplicate name")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                              "{'input_cost_per_million':1,"
                              "'input_cost_per_million':9}}}}}",
                              "providers.p.models.m.input_cost_per_million: "
                              "duplicate name")
           && fails_only_with("{'providers':{'p':{" P ",'models':{'m':{}}}},"
                              "'aliases':{},'aliases':{}}",
                              "aliases: duplicate name"),
           "a repeated member anywhere in config.json is an error");

    TAP_OK(fails_only_with("{'providers':\n{'p\xff':{" P "}}}",
                           "config.json: not valid UTF-8 on line 2")
           && fails_only_with("{'providers':{'p':{" P ",'headers':"
                              "{'X':'\xc0\xaf'}}}}",
                              "config.json: not valid UTF-8 on line 1")
           && fails_only_with("{'providers':{'p':{" P ",'headers':"
                              "{'X':'\xed\xa0\x80'}}}}",
                              "config.json: not valid UTF-8 on line 1"),
           "invalid UTF-8, overlong forms and surrogates are refused");

    TAP_OK(llmp_utf8_invalid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10)
           == 10
           && llmp_utf8_invalid("ab\xc3", 3) == 2
           && llmp_utf8_invalid("\xf4\x90\x80\x80", 4) == 0
           && llmp_utf8_invalid("\x80", 1) == 0,
           "UTF-8: valid text passes, truncated and out of range do not");

    TAP_OK(fails_with("{'providers':{\n'p':{" P "}},,}", NULL,
                      "config.json: invalid JSON near line 2")
           && fails_only_with("[1]", "config.json: expected an object"),
           "invalid JSON and a non-object document");

    TAP_OK(fails_with("{'providers':{'cliproxy':{'api_base':'x',"
                      "'interfaces':['x'],'models':{'gpt-5':{"
                      "'access_groups':'team','rpm':-1}}}},"
                      "'aliases':{'foo':'bar'},"
                      "'settings':{'nmu_retries':1}}", NULL,
                      "settings.nmu_retries: unknown field")
           && errs.n == 6
           && llmp_errors_has(&errs, "providers.cliproxy.api_base: "
                              "expected an http:// or https:// URL")
           && llmp_errors_has(&errs, "providers.cliproxy.interfaces: "
                              "unknown interface \"x\" (expected openai, "
                              "anthropic or gemini)")
           && llmp_errors_has(&errs, "providers.cliproxy.models.gpt-5."
                              "access_groups: expected array of strings")
           && llmp_errors_has(&errs, "providers.cliproxy.models.gpt-5.rpm: "
                              "expected non-negative integer")
           && llmp_errors_has(&errs, "aliases.foo: unknown model \"bar\""),
           "every error is collected, not just the first");
}


static void
test_secrets(void)
{
    char           hex[65];
    cJSON         *doc;
    size_t         i;
    unsigned char  digest[32];

    setenv("LLMP_TEST_KEY", "sk-from-env", 1);
    unsetenv("LLMP_TEST_UNSET");

    doc = compile("{'providers':{'p':{" P ",'api_key':'env:LLMP_TEST_KEY'},"
                  "'q':{" P ",'api_key':'sk-literal'},"
                  "'r':{" P ",'api_key':''}}}", NULL);

    TAP_OK(doc != NULL, "env: and literal api keys compile");

    if (doc == NULL) {
        dump_errors();
        return;
    }

    llmp_sha256("sk-from-env", 11, digest);
    llmp_sha256_hex(digest, hex);

    TAP_OK(strcmp(str(provider(doc, "p"), "api_key"), "sk-from-env") == 0
           && strcmp(str(provider(doc, "p"), "api_key_sha256"), hex) == 0,
           "env:NAME is read from the environment, with its sha256");

    TAP_OK(strcmp(str(provider(doc, "q"), "api_key"), "sk-literal") == 0,
           "a literal key is kept");

    TAP_OK(cJSON_GetObjectItemCaseSensitive(provider(doc, "r"), "api_key")
           == NULL,
           "an empty key means none");

    cJSON_Delete(doc);

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'api_key':"
                           "'env:LLMP_TEST_UNSET'}}}",
                           "providers.p.api_key: environment variable "
                           "LLMP_TEST_UNSET is not set"),
           "an unset variable is an error");

    setenv("LLMP_TEST_EMPTY", "", 1);

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'api_key':"
                           "'env:LLMP_TEST_EMPTY'}}}",
                           "providers.p.api_key: environment variable "
                           "LLMP_TEST_EMPTY is not set"),
           "an empty variable counts as unset");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'api_key':5}}}",
                           "providers.p.api_key: expected string"),
           "api_key must be a string");

    setenv("LLMP_TEST_KEY", "sk-bad\nsecret", 1);

    fails_with("{'providers':{'p':{" P ",'api_key':'env:LLMP_TEST_KEY'},"
               "'q':{'api_key':'sk-other-secret'}}}", NULL,
               "providers.p.api_key: contains control characters");

    for (i = 0; i < errs.n; i++) {
        if (strstr(errs.items[i], "secret")) {
            break;
        }
    }

    TAP_OK(errs.n >= 2 && i == errs.n, "errors never echo a secret");
}


static const char  *ordered =
    "{'providers':{'zeta':{'api_base':'http://z','interfaces':['openai'],"
    "'models':{'b':{},'a':{}}},'alpha':{'api_base':'http://a',"
    "'interfaces':['openai'],'headers':{'Z':'1','A':'2'},"
    "'models':{'b':{}}}},"
    "'aliases':{'y':'a','x':'b'},'fallbacks':{'b':['a'],'a':['b']}}";

static const char  *reordered =
    "{'fallbacks':{'a':['b'],'b':['a']},'aliases':{'x':'b','y':'a'},"
    "'providers':{'alpha':{'models':{'b':{}},'headers':{'A':'2','Z':'1'},"
    "'interfaces':['openai'],'api_base':'http://a'},"
    "'zeta':{'models':{'a':{},'b':{}},'interfaces':['openai'],"
    "'api_base':'http://z'}}}";


static void
test_determinism(void)
{
    char           *t1, *t2, hex[65];
    cJSON          *a, *b, *copy;
    unsigned char   digest[32];

    a = compile(ordered, NULL);
    b = compile(reordered, NULL);

    t1 = a ? cJSON_PrintUnformatted(a) : NULL;
    t2 = b ? cJSON_PrintUnformatted(b) : NULL;

    TAP_OK(t1 && t2 && strcmp(t1, t2) == 0,
           "the same config in another key order compiles byte for byte "
           "the same");

    TAP_OK(a && json_is(a, "aliases", "{'x':'b','y':'a'}")
           && json_is(a, "fallbacks", "{'a':['b'],'b':['a']}")
           && json_is(provider(a, "alpha"), "headers", "{'A':'2','Z':'1'}"),
           "aliases, fallbacks and headers are sorted by name");

    TAP_OK(a && strcmp(str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                   a, "providers"), 0), "name"), "alpha") == 0
           && strcmp(str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                   a, "deployments"), 1), "id"), "zeta/a") == 0,
           "providers sorted by name, deployments by id");

    TAP_OK(t1 && strncmp(t1, "{\"format\":1,\"config_sha256\":", 27) == 0
           && strstr(t1, "\"settings\":") < strstr(t1, "\"providers\":")
           && strstr(t1, "\"providers\":") < strstr(t1, "\"deployments\":")
           && strstr(t1, "\"deployments\":") < strstr(t1, "\"aliases\":")
           && strstr(t1, "\"aliases\":") < strstr(t1, "\"fallbacks\":"),
           "members in the documented order");

    copy = a ? cJSON_Duplicate(a, 1) : NULL;

    if (copy) {
        cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(copy,
                                 "config_sha256"), "");
        free(t2);
        t2 = cJSON_PrintUnformatted(copy);
        llmp_sha256(t2, strlen(t2), digest);
        llmp_sha256_hex(digest, hex);
    }

    TAP_OK(copy && strcmp(hex, str(a, "config_sha256")) == 0,
           "config_sha256 is the digest of the document with it set to "
           "\"\"");

    TAP_OK(copy && llmp_compiled_seal(copy) == 0
           && strcmp(str(copy, "config_sha256"), hex) == 0,
           "llmp_compiled_seal recomputes the same digest");

    cJSON_Delete(copy);
    free(t1);
    free(t2);
    cJSON_Delete(a);
    cJSON_Delete(b);
}


/* first-byte and stream-idle timeouts: settings, overridden per model */

static void
test_timeouts(void)
{
    cJSON  *doc;

    doc = compile("{'providers':{'p':{" P ",'models':{'m':"
                  "{'first_byte_timeout_seconds':2.5},'n':{}}}},"
                  "'settings':{'first_byte_timeout_seconds':10,"
                  "'stream_idle_timeout_seconds':30}}", NULL);

    if (doc == NULL) {
        TAP_OK(0, "timeouts compile");
        dump_errors();
        return;
    }

    TAP_OK(json_is(doc, "settings", "{'num_retries':1,'allowed_fails':3,"
                   "'cooldown_seconds':5,'request_timeout_seconds':600,"
                   "'first_byte_timeout_seconds':10,"
                   "'stream_idle_timeout_seconds':30}"),
           "timeouts in settings are compiled");

    TAP_OK(num(deployment(doc, "p/m"), "first_byte_timeout_seconds") == 2.5
           && cJSON_GetObjectItemCaseSensitive(deployment(doc, "p/m"),
                  "stream_idle_timeout_seconds") == NULL
           && cJSON_GetObjectItemCaseSensitive(deployment(doc, "p/n"),
                  "first_byte_timeout_seconds") == NULL,
           "a model's own timeout is kept, the others left to settings");

    llmp_errors_free(&errs);

    TAP_OK(llmp_compiled_validate(doc, &errs) == 0,
           "a compiled document with timeouts validates");

    cJSON_Delete(doc);

    TAP_OK(fails_only_with("{'providers':{'p':{" P "}},"
                           "'settings':{'stream_idle_timeout_seconds':-1}}",
                           "settings.stream_idle_timeout_seconds: expected "
                           "non-negative number"),
           "a negative stream idle timeout is refused");

    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':{'m':"
                           "{'first_byte_timeout_seconds':'5'}}}}}",
                           "providers.p.models.m.first_byte_timeout_seconds: "
                           "expected non-negative number"),
           "a model's timeout must be a number");

    doc = compile("{'providers':{'p':{" P ",'models':{'m':"
                  "{'stream_idle_timeout_seconds':1e8}}}}}", NULL);

    llmp_errors_free(&errs);

    TAP_OK(doc != NULL && llmp_compiled_validate(doc, &errs) == 1
           && llmp_errors_has(&errs, "deployments.p/m."
                              "stream_idle_timeout_seconds: expected at "
                              "most 1e+07"),
           "the gateway's rules bound a model's timeout as settings'");

    cJSON_Delete(doc);
}


static void
test_compiled_validate(void)
{
    cJSON  *doc, *d;

    doc = compile(TWO "'aliases':{'best':'gpt-5'},"
                  "'fallbacks':{'gpt-5':['o3']}}", NULL);

    if (doc == NULL) {
        TAP_OK(0, "compiled document for the validator");
        dump_errors();
        return;
    }

    llmp_errors_free(&errs);

    TAP_OK(llmp_compiled_validate(doc, &errs) == 0,
           "a compiled document validates");

    cJSON_DeleteItemFromObjectCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc,
                                                            "providers"), 0),
        "api_key");

    TAP_OK(llmp_compiled_validate(doc, &errs) == 0,
           "api_key is optional (the gateway's GET omits it)");

    d = cJSON_GetObjectItemCaseSensitive(doc, "providers");
    cJSON_DeleteItemFromArray(d, 1);

    TAP_OK(llmp_compiled_validate(doc, &errs) == 1
           && llmp_errors_has(&errs, "deployments.q/o3: unknown provider "
                              "\"q\""),
           "a deployment needs its provider");

    llmp_errors_free(&errs);

    cJSON_DeleteItemFromObjectCaseSensitive(doc, "deployments");
    cJSON_AddArrayToObject(doc, "deployments");

    TAP_OK(llmp_compiled_check(doc, &errs) == 3
           && llmp_errors_has(&errs, "aliases.best: unknown model "
                              "\"gpt-5\"")
           && llmp_errors_has(&errs, "fallbacks.gpt-5: unknown model "
                              "\"gpt-5\"")
           && llmp_errors_has(&errs, "fallbacks.gpt-5: unknown model "
                              "\"o3\""),
           "aliases and fallbacks need their targets");

    llmp_errors_free(&errs);

    cJSON_ReplaceItemInObjectCaseSensitive(doc, "format",
                                           cJSON_CreateNumber(2));
    cJSON_AddStringToObject(doc, "extra", "x");

    TAP_OK(llmp_errors_has(&errs, "format: expected 1") == 0
           && llmp_compiled_validate(doc, &errs) > 0
           && llmp_errors_has(&errs, "format: expected 1")
           && llmp_errors_has(&errs, "extra: unknown field"),
           "format and unknown members are checked");

    cJSON_Delete(doc);

    llmp_errors_free(&errs);

    doc = compile(ordered, NULL);
    d = doc ? cJSON_GetObjectItemCaseSensitive(doc, "providers") : NULL;

    if (d) {
        cJSON_AddItemToArray(d, cJSON_Duplicate(cJSON_GetArrayItem(d, 0),
                                                1));
    }

    TAP_OK(d && llmp_compiled_validate(doc, &errs) > 0
           && llmp_errors_has(&errs, "providers.alpha: not sorted by name "
                              "or not unique"),
           "unsorted or repeated providers are refused");

    cJSON_Delete(doc);
}


static void
test_load_files(void)
{
    int     fd;
    char    dir[] = "/tmp/llmp-test-XXXXXX", path[256], local[256];
    FILE   *f;
    cJSON  *doc;

    if (mkdtemp(dir) == NULL) {
        TAP_OK(0, "temporary directory");
        return;
    }

    snprintf(path, sizeof(path), "%s/config.json", dir);
    snprintf(local, sizeof(local), "%s/config.local.json", dir);

    f = fopen(path, "w");
    if (f) {
        fputs("{\"providers\":{\"p\":{\"api_base\":\"http://h\","
              "\"interfaces\":[\"openai\"],\"models\":{\"m\":{}}}}}", f);
        fclose(f);
    }

    llmp_errors_free(&errs);

    TAP_OK(llmp_config_load(path, &errs, &doc) == 0
           && cJSON_GetObjectItemCaseSensitive(provider(doc, "p"),
                                               "api_key") == NULL,
           "llmp_config_load without config.local.json");

    cJSON_Delete(doc);

    f = fopen(local, "w");
    if (f) {
        fputs("{\"providers\":{\"p\":{\"api_key\":\"sk-x\"}}}", f);
        fclose(f);
    }

    TAP_OK(llmp_config_load(path, &errs, &doc) == 0
           && strcmp(str(provider(doc, "p"), "api_key"), "sk-x") == 0,
           "llmp_config_load merges config.local.json beside the file");

    cJSON_Delete(doc);

    unlink(local);
    unlink(path);
    rmdir(dir);

    TAP_OK(llmp_config_load(path, &errs, &doc) != 0 && doc == NULL
           && errs.n == 1 && strstr(errs.items[0], path) == errs.items[0]
           && strstr(errs.items[0], ": No such file or directory"),
           "a missing config file is reported with its path");

    llmp_errors_free(&errs);
    (void) fd;
}


static void
test_headers(void)
{
    char          hex[65], *text;
    size_t        i;
    cJSON        *doc, *a, *b;
    const cJSON  *p;

    a = compile("{'providers':{'p':{" P ",'headers':{'X-B':'2',"
                "'Authorization':'Bearer hsecret'}},'q':{" P "}}}", NULL);
    b = compile("{'providers':{'p':{" P ",'headers':{"
                "'Authorization':'Bearer hsecret','X-B':'2'}},"
                "'q':{" P "}}}", NULL);

    p = a ? provider(a, "p") : NULL;
    hex[0] = '\0';

    TAP_OK(p && llmp_headers_sha256(cJSON_GetObjectItemCaseSensitive(p,
                                        "headers"), hex) == 1
           && strcmp(str(p, "headers_sha256"), hex) == 0,
           "headers_sha256 is the digest of the provider's headers");

    TAP_OK(a && b && strcmp(str(provider(a, "p"), "headers_sha256"),
                            str(provider(b, "p"), "headers_sha256")) == 0,
           "the digest does not depend on the order of the headers");

    TAP_OK(a && cJSON_GetObjectItemCaseSensitive(provider(a, "q"),
                                                 "headers_sha256") == NULL
           && json_is(provider(a, "q"), "headers", "{}"),
           "no headers, no digest");

    cJSON_Delete(b);

    /* stored or shown without the values: the digest stands for them */

    llmp_errors_free(&errs);

    if (a) {
        cJSON_DeleteItemFromObjectCaseSensitive(
            (cJSON *) provider(a, "p"), "headers");
    }

    TAP_OK(a && llmp_compiled_validate(a, &errs) == 0,
           "headers are optional when their digest is there");

    if (a) {
        cJSON_AddItemToObject((cJSON *) provider(a, "p"), "headers",
                              cJSON_Parse("{\"X\":\"v\"}"));
        cJSON_DeleteItemFromObjectCaseSensitive((cJSON *) provider(a, "p"),
                                                "headers_sha256");
    }

    TAP_OK(a && llmp_compiled_validate(a, &errs) == 1
           && llmp_errors_has(&errs, "providers.p.headers_sha256: expected "
                              "64 hex digits"),
           "headers without their digest are refused");

    cJSON_Delete(a);
    llmp_errors_free(&errs);

    /* refused, and the value, a secret, never in the message */

    doc = compile("{'providers':{'p':{" P ",'headers':{"
                  "'Content-Length':'hsecret','Host':'hsecret',"
                  "'X-A':'hsecret\\u0001','X-B':'hsecret\\u007f',"
                  "'Transfer-Encoding':'chunked'}}}}", NULL);

    TAP_OK(doc == NULL && errs.n == 5
           && llmp_errors_has(&errs, "providers.p.headers.Content-Length: "
                              "header set by the gateway itself")
           && llmp_errors_has(&errs, "providers.p.headers.Host: header set "
                              "by the gateway itself")
           && llmp_errors_has(&errs, "providers.p.headers.Transfer-Encoding:"
                              " header set by the gateway itself")
           && llmp_errors_has(&errs, "providers.p.headers.X-A: invalid "
                              "header value")
           && llmp_errors_has(&errs, "providers.p.headers.X-B: invalid "
                              "header value"),
           "framing headers and control characters are refused");

    text = NULL;

    for (i = 0; i < errs.n; i++) {
        if (strstr(errs.items[i], "hsecret")) {
            text = errs.items[i];
        }
    }

    TAP_OK(errs.n && text == NULL, "no header value in any message");

    cJSON_Delete(doc);

    doc = compile("{'providers':{'p':{" P ",'headers':{"
                  "'X-Tab':'a\\tb c'}}}}", NULL);
    TAP_OK(doc != NULL, "tabs and blanks in a value are fine");
    cJSON_Delete(doc);
}


/*
 * The rules the gateway added to the compiler's when it took them over
 * (issue 12): what a document posted to the admin API could otherwise
 * carry past llmproxyctl
 */

static void
test_compiled_gateway_rules(void)
{
    cJSON  *doc, *p, *d, *h, *st;

    doc = compile(TWO "'aliases':{},'fallbacks':{}}", NULL);

    if (doc == NULL) {
        TAP_OK(0, "compiled document for the gateway's rules");
        dump_errors();
        return;
    }

    llmp_errors_free(&errs);

    p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc,
                                                            "providers"), 0);
    d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc,
                                                            "deployments"), 0);
    st = cJSON_GetObjectItemCaseSensitive(doc, "settings");

    cJSON_ReplaceItemInObjectCaseSensitive(st, "cooldown_seconds",
                                           cJSON_CreateNumber(2e7));

    TAP_OK(llmp_compiled_validate(doc, &errs) == 1
           && llmp_errors_has(&errs, "settings.cooldown_seconds: expected "
                              "at most 1e+07"),
           "settings are bounded at 1e7");

    llmp_errors_free(&errs);
    cJSON_ReplaceItemInObjectCaseSensitive(st, "cooldown_seconds",
                                           cJSON_CreateNumber(1e7));

    TAP_OK(llmp_compiled_validate(doc, &errs) == 0, "1e7 itself is fine");

    cJSON_ReplaceItemInObjectCaseSensitive(d, "upstream_model",
                                           cJSON_CreateString("o3\r\nX: 1"));

    TAP_OK(llmp_compiled_validate(doc, &errs) == 1
           && llmp_errors_has(&errs, "deployments.p/gpt-5.upstream_model: "
                              "control characters are not allowed"),
           "no control character in a deployment's strings");

    llmp_errors_free(&errs);
    cJSON_ReplaceItemInObjectCaseSensitive(d, "upstream_model",
                                           cJSON_CreateString("gpt-5"));

    h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "Content-Length", "7");
    cJSON_AddStringToObject(h, "X-Ok", "v\r\nHost: evil");
    cJSON_AddStringToObject(h, "Bad Name", "v");
    cJSON_ReplaceItemInObjectCaseSensitive(p, "headers", h);
    cJSON_AddStringToObject(p, "headers_sha256", "0123456789abcdef0123456789"
                            "abcdef0123456789abcdef0123456789abcdef");

    TAP_OK(llmp_compiled_validate(doc, &errs) == 3
           && errs.n == 3
           && strstr(errs.items[0], "providers.p.headers.Content-Length: ")
           && strstr(errs.items[1], "providers.p.headers.X-Ok: ")
           && strstr(errs.items[2], "providers.p.headers.?: ")
           && strstr(errs.items[1], "evil") == NULL,
           "headers: no framing header, no injection, no value or bad "
           "name in the message");

    llmp_errors_free(&errs);
    cJSON_Delete(doc);
}


/*
 * aliases and fallbacks of the wrong shape, as a document posted to the
 * gateway may have them: refused, and their members (which have no
 * names) not followed to a NULL name
 */

static void
test_compiled_shapes(void)
{
    int          i;
    cJSON       *doc, *v;
    const char  *what[] = { "aliases", "fallbacks" };

    for (i = 0; i < 2; i++) {
        doc = compile(TWO "'aliases':{'best':'gpt-5'},"
                      "'fallbacks':{'gpt-5':['o3']}}", NULL);

        if (doc == NULL) {
            TAP_OK(0, "compiled document for the shapes");
            dump_errors();
            return;
        }

        llmp_errors_free(&errs);

        v = cJSON_CreateArray();
        cJSON_AddItemToArray(v, cJSON_CreateString("gpt-5"));
        cJSON_AddItemToArray(v, cJSON_CreateStringArray(
                                    (const char *[]) { "o3" }, 1));
        cJSON_ReplaceItemInObjectCaseSensitive(doc, what[i], v);

        TAP_OK(llmp_compiled_validate(doc, &errs) == 1
               && llmp_errors_has(&errs, i ? "fallbacks: expected object"
                                           : "aliases: expected object"),
               i ? "fallbacks as an array is refused"
                 : "aliases as an array is refused");

        llmp_errors_free(&errs);
        cJSON_Delete(doc);
    }
}


/*
 * A member given twice in a compiled document: the validator checked the
 * first, the gateway's runtime walks "settings" whole and took the last,
 * so {"num_retries": 1, "num_retries": -1} passed and was cast from -1.
 */

static void
test_duplicate_members(void)
{
    int          i;
    char        *j, *text;
    cJSON       *doc;
    const char  *at;

    static const struct {
        const char  *after;
        const char  *insert;
        const char  *error;
    } cases[] = {
        { "'settings':{", "'num_retries':-1,'num_retries':1,",
          "settings.num_retries: duplicate name" },
        { "'format':1,", "'settings':{},", "settings: duplicate name" },
        { "'id':'p/gpt-5',", "'upstream_model':'x','weight':1,",
          "deployments[0].upstream_model: duplicate name" },
        { "'aliases':{", "'best':'o3',", "aliases.best: duplicate name" },
        { "'fallbacks':{", "'gpt-5':[],", "fallbacks.gpt-5: duplicate name" },
    };

    doc = compile(TWO "'aliases':{'best':'gpt-5'},"
                  "'fallbacks':{'gpt-5':['o3']}}", NULL);
    text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);

    if (text == NULL) {
        TAP_OK(0, "compiled document for the duplicates");
        dump_errors();
        return;
    }

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        char  buf[8192], what[200];

        j = J(cases[i].after);
        at = strstr(text, j);

        if (at == NULL) {
            TAP_OK(0, "the compiled document has the member to repeat");
            free(j);
            continue;
        }

        at += strlen(j);
        free(j);
        j = J(cases[i].insert);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (at - text), text, j,
                 at);
        free(j);

        llmp_errors_free(&errs);
        doc = cJSON_Parse(buf);

        snprintf(what, sizeof(what), "a repeated member is refused: %s",
                 cases[i].error);
        TAP_OK(doc && llmp_compiled_validate(doc, &errs) > 0
               && llmp_errors_has(&errs, cases[i].error), what);

        if (!llmp_errors_has(&errs, cases[i].error)) {
            dump_errors();
        }

        cJSON_Delete(doc);
    }

    free(text);
    llmp_errors_free(&errs);
}


/* inputs t/fuzz/ found crashing the compiler or the validator */

static void
test_fuzz_found(void)
{
    /* a provider name given twice, the first time not to an object */
    TAP_OK(fails_with("{'providers':{'p':['x'],'p':{" P ",'models':"
                      "{'m':{}}}}}", NULL, "providers.p: duplicate name")
           && llmp_errors_has(&errs, "providers.p: expected object"),
           "a provider named twice, first as an array: refused, no crash");

    /*
     * what llmproxyctl compiles, the gateway's validator must accept: it
     * refuses control characters in names and upstream models
     */
    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':"
                           "{'m':{'model':'o\\u001d3'}}}}}",
                           "providers.p.models.m.model: control characters "
                           "are not allowed"),
           "an upstream model with a control character is refused");
    TAP_OK(fails_only_with("{'providers':{'p':{" P ",'models':"
                           "{'m\\u0001':{}}}}}",
                           "providers.p.models.m\001: control characters "
                           "are not allowed in a name"),
           "a model name with a control character is refused");
    TAP_OK(fails_only_with("{'providers':{'p\\u007f':{" P ",'models':"
                           "{'m':{}}}}}",
                           "providers.p\177: control characters are not "
                           "allowed in a name"),
           "a provider name with a control character is refused");
}


int
main(void)
{
    llmp_errors_init(&errs);

    test_example();
    test_merge();
    test_extend();
    test_groups_and_defaults();
    test_aliases_fallbacks();
    test_validation();
    test_secrets();
    test_headers();
    test_determinism();
    test_compiled_validate();
    test_compiled_shapes();
    test_timeouts();
    test_compiled_gateway_rules();
    test_load_files();
    test_fuzz_found();
    test_duplicate_members();

    llmp_errors_free(&errs);

    return tap_done();
}

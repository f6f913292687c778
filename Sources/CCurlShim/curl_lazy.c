/* libcurl loaded on first use (dlopen), not at start-up: `run`, the command started hundreds of
   times per job, never touches the network, and libcurl brings some 30 libraries with it. These
   definitions stand in for the libcurl functions the Registry module calls. */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <curl/curl.h>

static void *ud_curl_handle;
static pthread_once_t ud_curl_once = PTHREAD_ONCE_INIT;

static void ud_curl_open(void) {
    ud_curl_handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!ud_curl_handle) ud_curl_handle = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
}

static void *ud_curl_sym(const char *name) {
    pthread_once(&ud_curl_once, ud_curl_open);
    return ud_curl_handle ? dlsym(ud_curl_handle, name) : NULL;
}

#define UD_CURL_FN(type, name) \
    static type fn; \
    if (!fn) fn = (type)ud_curl_sym(name);

CURLcode curl_global_init(long flags) {
    typedef CURLcode (*f_t)(long);
    UD_CURL_FN(f_t, "curl_global_init")
    return fn ? fn(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void) {
    typedef CURL *(*f_t)(void);
    UD_CURL_FN(f_t, "curl_easy_init")
    return fn ? fn() : NULL;
}

void curl_easy_cleanup(CURL *h) {
    typedef void (*f_t)(CURL *);
    UD_CURL_FN(f_t, "curl_easy_cleanup")
    if (fn) fn(h);
}

void curl_easy_reset(CURL *h) {
    typedef void (*f_t)(CURL *);
    UD_CURL_FN(f_t, "curl_easy_reset")
    if (fn) fn(h);
}

CURLcode curl_easy_perform(CURL *h) {
    typedef CURLcode (*f_t)(CURL *);
    UD_CURL_FN(f_t, "curl_easy_perform")
    return fn ? fn(h) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode code) {
    typedef const char *(*f_t)(CURLcode);
    UD_CURL_FN(f_t, "curl_easy_strerror")
    return fn ? fn(code) : "libcurl (libcurl.so.4) cannot be loaded: install libcurl4";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s) {
    typedef struct curl_slist *(*f_t)(struct curl_slist *, const char *);
    UD_CURL_FN(f_t, "curl_slist_append")
    return fn ? fn(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list) {
    typedef void (*f_t)(struct curl_slist *);
    UD_CURL_FN(f_t, "curl_slist_free_all")
    if (fn) fn(list);
}

/* Every option and info the shim passes is one pointer-sized or long/off_t argument; reading it
   as the widest of them and passing it on keeps the calling convention of the variadic call. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
    typedef CURLcode (*f_t)(CURL *, CURLoption, ...);
    UD_CURL_FN(f_t, "curl_easy_setopt")
    va_list ap;
    CURLcode rc = CURLE_FAILED_INIT;
    va_start(ap, opt);
    if (fn) {
        if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) rc = fn(h, opt, va_arg(ap, curl_off_t));
        else if (opt >= CURLOPTTYPE_OBJECTPOINT) rc = fn(h, opt, va_arg(ap, void *));
        else rc = fn(h, opt, va_arg(ap, long));
    }
    va_end(ap);
    return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
    typedef CURLcode (*f_t)(CURL *, CURLINFO, ...);
    UD_CURL_FN(f_t, "curl_easy_getinfo")
    va_list ap;
    CURLcode rc = CURLE_FAILED_INIT;
    va_start(ap, info);
    if (fn) rc = fn(h, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

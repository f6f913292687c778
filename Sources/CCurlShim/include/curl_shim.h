/* Non-variadic wrappers around libcurl's variadic curl_easy_setopt/curl_easy_getinfo, which Swift
   cannot call directly. Used by the Registry module's HTTP client. */
#ifndef UDOCKER_CURL_SHIM_H
#define UDOCKER_CURL_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

typedef size_t (*ud_curl_data_cb)(char *data, size_t size, size_t nmemb, void *userdata);

/* Process-wide init (curl_global_init), safe to call more than once; 0 on success. */
int ud_curl_global_init(void);

CURLcode ud_curl_setopt_long(CURL *h, CURLoption opt, long value);
CURLcode ud_curl_setopt_off(CURL *h, CURLoption opt, int64_t value);
CURLcode ud_curl_setopt_str(CURL *h, CURLoption opt, const char *value);
CURLcode ud_curl_setopt_ptr(CURL *h, CURLoption opt, void *value);
CURLcode ud_curl_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value);
/* CURLOPT_WRITEFUNCTION / HEADERFUNCTION / READFUNCTION with their data pointer. */
CURLcode ud_curl_set_write(CURL *h, ud_curl_data_cb cb, void *userdata);
CURLcode ud_curl_set_header(CURL *h, ud_curl_data_cb cb, void *userdata);
CURLcode ud_curl_set_read(CURL *h, ud_curl_data_cb cb, void *userdata);

CURLcode ud_curl_getinfo_long(CURL *h, CURLINFO info, long *out);
/* The string stays owned by the handle; valid until the next perform or cleanup. */
CURLcode ud_curl_getinfo_str(CURL *h, CURLINFO info, const char **out);

#endif

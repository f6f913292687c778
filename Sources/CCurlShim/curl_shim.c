/* Non-variadic wrappers for libcurl's variadic calls; see include/curl_shim.h. */
#include "curl_shim.h"

int ud_curl_global_init(void) {
    static int done = 0;
    static CURLcode rc = CURLE_OK;
    /* curl_global_init is not thread-safe before 7.84; the Swift side calls this under a lock once. */
    if (!done) { rc = curl_global_init(CURL_GLOBAL_DEFAULT); done = 1; }
    return rc == CURLE_OK ? 0 : -1;
}

CURLcode ud_curl_setopt_long(CURL *h, CURLoption opt, long value) { return curl_easy_setopt(h, opt, value); }
CURLcode ud_curl_setopt_off(CURL *h, CURLoption opt, int64_t value) { return curl_easy_setopt(h, opt, (curl_off_t)value); }
CURLcode ud_curl_setopt_str(CURL *h, CURLoption opt, const char *value) { return curl_easy_setopt(h, opt, value); }
CURLcode ud_curl_setopt_ptr(CURL *h, CURLoption opt, void *value) { return curl_easy_setopt(h, opt, value); }
CURLcode ud_curl_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value) { return curl_easy_setopt(h, opt, value); }

CURLcode ud_curl_set_write(CURL *h, ud_curl_data_cb cb, void *userdata) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, userdata);
}
CURLcode ud_curl_set_header(CURL *h, ud_curl_data_cb cb, void *userdata) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cb);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_HEADERDATA, userdata);
}
CURLcode ud_curl_set_read(CURL *h, ud_curl_data_cb cb, void *userdata) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_READFUNCTION, cb);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_READDATA, userdata);
}

CURLcode ud_curl_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl_easy_getinfo(h, info, out); }
CURLcode ud_curl_getinfo_str(CURL *h, CURLINFO info, const char **out) { return curl_easy_getinfo(h, info, out); }

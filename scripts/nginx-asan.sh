#!/bin/sh
# nginx with AddressSanitizer preloaded, for the module built with it
# (make module-asan): /usr/sbin/nginx is not built with ASan, so libasan
# must come first.  Reports go to files under $LLMPROXY_ASAN_LOG (they
# would vanish into nginx's closed stderr otherwise); leaks are not
# checked (nginx frees its pools at exit only in part).
LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
ASAN_OPTIONS=detect_leaks=0:log_path=${LLMPROXY_ASAN_LOG:-/tmp}/asan \
    exec /usr/sbin/nginx "$@"

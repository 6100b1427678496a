# The mock provider of bench/run.sh and bench/callgrind.sh (sourced): an
# nginx answering a ~1 KB chat completion, or, when the request accepts
# text/event-stream, a stream of 8 chunks, a usage chunk and [DONE], sent
# as providers send streams: text/event-stream in chunked encoding (the
# sub_filter that never matches only drops the length, so nginx chunks it).

bench_mock_json=$(node -e '
const c = {id: "chatcmpl-bench", object: "chat.completion", created: 1,
  model: "mock-model", choices: [{index: 0, message: {role: "assistant",
  content: "x".repeat(760)}, finish_reason: "stop"}],
  usage: {prompt_tokens: 12, completion_tokens: 180, total_tokens: 192}};
console.log(JSON.stringify(c).replace(/"/g, "\\\""))')

bench_mock_sse=$(node -e '
let s = "";
for (let i = 0; i < 8; i++) s += "data: " + JSON.stringify({id: "c",
  object: "chat.completion.chunk", model: "mock-model", choices: [{index: 0,
  delta: {content: "token" + i}, finish_reason: null}]}) + "\\n\\n";
s += "data: " + JSON.stringify({id: "c", object: "chat.completion.chunk",
  model: "mock-model", choices: [], usage: {prompt_tokens: 12,
  completion_tokens: 8, total_tokens: 20}}) + "\\n\\ndata: [DONE]\\n\\n";
console.log(s.replace(/"/g, "\\\""))')

# the request bodies: a chat completion, and the same streamed
bench_json_body='{"model":"bench-model","messages":[{"role":"user","content":"Say hi"}]}'
bench_sse_body='{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Say hi"}]}'

bench_mock_conf() {     # dir port: the mock's nginx.conf
    cat <<CONF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log error;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_buffer_size 1m;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:$2 reuseport;
        location / {
            if (\$http_accept ~ event-stream) {
                rewrite ^ /sse last;
            }
            default_type application/json;
            return 200 "$bench_mock_json";
        }
        location = /sse {
            internal;
            default_type text/event-stream;
            sub_filter_types text/event-stream;
            sub_filter "@@never@@" "";
            return 200 "$bench_mock_sse";
        }
    }
}
CONF
}

# Helpers shared by bench/run.sh and bench/usage.sh (sourced).

free_port() {   # a TCP port free on 127.0.0.1 now
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",
        ()=>{console.log(s.address().port);s.close()})'
}

ms_now() { date +%s%3N; }

to_us() {       # wrk latency ("850.00us", "1.20ms", "2.00s") to microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

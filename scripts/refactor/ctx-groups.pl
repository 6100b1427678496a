#!/usr/bin/env perl
#
# Rewrites accesses to the request context's old flat fields into its
# groups: ctx->err_status becomes ctx->err.status, ctx->plan becomes
# ctx->route.plan, and so on (issue 12).  The struct itself is defined by
# hand in ngx_http_llmproxy_module.h; this script only moves the code that
# uses it, so that it can be run again over branches merged after the
# change.
#
#   perl scripts/refactor/ctx-groups.pl             rewrite the module
#   perl scripts/refactor/ctx-groups.pl FILE...     rewrite these files
#   perl scripts/refactor/ctx-groups.pl --check     change nothing; exit 1
#                                                   if anything would change
#
# What it rewrites: NAME->FIELD, where FIELD is an old field in the table
# below and NAME is declared as "ngx_http_llmproxy_ctx_t *NAME" (a
# parameter or a local) in the same top-level definition (function).  So a
# field of another struct that shares a name (cf->ctx->loc_conf,
# zctx->sh, a task's ->status) is left alone, and so is a variable called
# ctx that has another type.  Comments inside a function are rewritten as
# its code is, and so is a function-like macro with a parameter named ctx
# ((ctx)->FIELD, ctx->FIELD).
#
# It is idempotent: every new path starts with a group name, and no group
# is named as an old field (checked below), so a second run finds nothing.
#
# Lines the rewrite pushed over 80 columns on main were rewrapped by hand;
# those rewraps are kept after __DATA__ below and applied again where the
# same lines are found.  It reports on stderr, and leaves for a person to
# fix: lines still longer than 80 columns, and any ctx->OLD_FIELD it did
# not rewrite (a context reached through a name it cannot see declared).
#
# Over a tree with other branches merged: put the grouped struct (one block
# in the header that defines ngx_http_llmproxy_ctx_t) in place of the flat
# one, with any field a branch added put in its group (and in the table
# below, if code uses it under its old name), run this, then make lint and
# build.

use strict;
use warnings;

my $ctx_type = 'ngx_http_llmproxy_ctx_t';

# old field => group.new_name
my %map = (
    # what the client asked for
    iface               => 'req.iface',
    endpoint            => 'req.endpoint',
    endpoint_path       => 'req.endpoint_path',
    body                => 'req.body',
    body_len            => 'req.body_len',
    top                 => 'req.top',
    model               => 'req.model',
    action              => 'req.action',
    embed_models        => 'req.embed_models',
    url                 => 'req.url',         # h-access: the URL, parsed
    edit_start          => 'req.edit_start',
    edit_end            => 'req.edit_end',
    edit                => 'req.edit',
    stream              => 'req.stream',
    hide_usage          => 'req.hide_usage',

    # when things happened
    start               => 'time.start',
    upstream_start      => 'time.upstream_start',
    attempt_start       => 'time.attempt_start',
    ttfb                => 'time.ttfb',

    # the attempt plan and where it stands
    plan                => 'route.plan',
    plan_index          => 'route.plan_index',
    attempts_in_target  => 'route.attempts_in_target',
    tried               => 'route.tried',
    current             => 'route.current',
    attempts            => 'route.attempts',
    addr_tries          => 'route.addr_tries',
    retries             => 'route.retries',
    fallbacks           => 'route.fallbacks',
    failed              => 'route.failed',
    repeat              => 'route.repeat',
    fail                => 'route.fail',
    fail_status         => 'route.fail_status',
    retry_after         => 'route.retry_after',

    # the attempt in flight: its interface and its answer's parser
    up_iface            => 'up.iface',
    upstream_started    => 'up.started',
    status              => 'up.status',
    chunked             => 'up.chunked',
    first_byte_wait     => 'up.first_byte_wait',

    # an error of ours
    err_status          => 'err.status',
    err_message         => 'err.message',
    err_type            => 'err.type',
    err_code            => 'err.code',
    err_keep            => 'err.keep',
    error_body          => 'err.rendered',
    error_sent          => 'err.sent',

    # usage and cost
    prompt_tokens       => 'usage.prompt_tokens',
    input_tokens        => 'usage.input_tokens',
    completion_tokens   => 'usage.completion_tokens',
    total_tokens        => 'usage.total_tokens',
    candidates_tokens   => 'usage.candidates_tokens',
    thoughts_tokens     => 'usage.thoughts_tokens',
    cache_read_tokens   => 'usage.cache_read_tokens',
    cache_creation_tokens => 'usage.cache_creation_tokens',
    cache_1h_tokens     => 'usage.cache_1h_tokens',
    reasoning_tokens    => 'usage.reasoning_tokens',
    cost                => 'usage.cost',
    key_spend           => 'usage.key_spend',
    usage_tail          => 'usage.tail',
    usage_tail_len      => 'usage.tail_len',
    cache_in_prompt     => 'usage.cache_in_prompt',
    unpriced            => 'usage.unpriced',
    usage_estimated     => 'usage.estimated',
    accounted           => 'usage.accounted',
    recorded            => 'usage.recorded',

    # a non-streamed answer, held or read whole
    hold                => 'answer.hold',
    held                => 'answer.held',
    held_len            => 'answer.held_len',
    held_size           => 'answer.held_size',
    body_wait           => 'answer.body_wait',
    body_plain          => 'answer.body_plain',
    body_read           => 'answer.body_read',
    body_chunked        => 'answer.body_chunked',
    xlated              => 'answer.xlated',

    # a streamed answer
    sse                 => 'streaming.sse',
    xlate               => 'streaming.xlate',
    xlate_broken        => 'streaming.xlate_broken',
    text_bytes          => 'streaming.text_bytes',
    text_string         => 'streaming.text_string',
    idle_timeout        => 'streaming.idle_timeout',
    drain_end           => 'streaming.drain_end',
    client_left         => 'streaming.client_left',
    draining            => 'streaming.draining',
    stream_end          => 'streaming.stream_end',
);

# the idempotence rests on this
for my $new (values %map) {
    my ($group) = split /\./, $new;
    die "group '$group' is also an old field name\n" if exists $map{$group};
}

my $fields = join '|', sort { length $b <=> length $a } keys %map;
my $check = 0;
my @files;

for (@ARGV) {
    if ($_ eq '--check') {
        $check = 1;
    } else {
        push @files, $_;
    }
}

if (!@files) {
    my $dir = 'ngx_llmproxy_module';
    -d $dir or die "run it from the repository's top, or name files\n";
    @files = sort glob "$dir/*.c $dir/*.h";
}

my ($changed, $total, $wrapped) = (0, 0, 0);
my @rewraps = load_rewraps();

for my $file (@files) {
    open my $in, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$in> };
    close $in;

    my ($new, $n) = rewrite($file, $text);
    ($new, my $w) = rewrap($file, $new);
    $wrapped += $w;
    report($file, $new);

    next if $new eq $text;

    $changed++;
    $total += $n;

    if ($check) {
        print "$file: $n to rewrite\n";
        next;
    }

    open my $out, '>', "$file.tmp" or die "$file.tmp: $!\n";
    print $out $new;
    close $out or die "$file.tmp: $!\n";
    rename "$file.tmp", $file or die "$file: $!\n";
    print "$file: $n rewritten\n";
}

print $check ? "$changed files would change ($total accesses, "
               . "$wrapped lines rewrapped)\n"
             : "$changed files changed ($total accesses, $wrapped lines "
               . "rewrapped)\n";
exit($check && $changed ? 1 : 0);


# the text cut into top-level definitions, each ending with the "}" that
# closes its body or the ";" that ends it at depth 0; braces in comments,
# strings and character literals do not count
sub chunks {
    my ($text) = @_;
    my @out;
    my ($depth, $from, $i, $len) = (0, 0, 0, length $text);

    while ($i < $len) {
        my $c = substr $text, $i, 1;
        my $two = substr $text, $i, 2;

        if ($two eq '/*') {
            my $e = index $text, '*/', $i + 2;
            $i = $e < 0 ? $len : $e + 2;
            next;
        }
        if ($two eq '//') {
            my $e = index $text, "\n", $i;
            $i = $e < 0 ? $len : $e;
            next;
        }
        if ($c eq '"' || $c eq "'") {
            $i++;
            while ($i < $len) {
                my $d = substr $text, $i, 1;
                if ($d eq '\\') { $i += 2; next; }
                $i++;
                last if $d eq $c;
            }
            next;
        }
        if ($c eq '{') {
            $depth++;
        } elsif ($c eq '}') {
            $depth-- if $depth > 0;
            if ($depth == 0) {
                push @out, [$from, $i + 1];
                $from = $i + 1;
            }
        } elsif ($c eq ';' && $depth == 0) {
            push @out, [$from, $i + 1];
            $from = $i + 1;
        }
        $i++;
    }
    push @out, [$from, $len] if $from < $len;
    return @out;
}

sub line_of {
    my ($text, $pos) = @_;
    return 1 + (substr($text, 0, $pos) =~ tr/\n//);
}

sub rewrite {
    my ($file, $text) = @_;
    my $out = '';
    my $count = 0;

    # a macro with a parameter named ctx: its (ctx)->FIELD and ctx->FIELD
    $text =~ s{^([ \t]*#[ \t]*define[ \t]+\w+\(([^)]*)\))((?:[^\n]*\\\n)*[^\n]*)}
               {my ($head, $params, $body) = ($1, $2, $3);
                if ($params =~ /(?<!\w)ctx(?!\w)/) {
                    $count += ($body =~ s/(?<![\w.>])(?<!->)((?:\(ctx\)|ctx)->)
                                          ($fields)\b/$1$map{$2}/gx);
                }
                $head . $body}gme;

    for my $c (chunks($text)) {
        my ($from, $to) = @$c;
        my $s = substr $text, $from, $to - $from;
        my %names;

        # "TYPE *a" or "TYPE *a, *b" (a parameter, locals)
        while ($s =~ /\b\Q$ctx_type\E((?:\s*\*\s*(?:const\s+)?\w+\s*,?)+)/g) {
            my $list = $1;
            $names{$1} = 1 while $list =~ /\*\s*(?:const\s+)?(\w+)/g;
        }

        for my $name (sort keys %names) {
            # the same name declared with another pointer type in the same
            # function (a nested block): too ambiguous to rewrite
            my $other = 0;
            while ($s =~ /\b(\w+)\s*\*\s*\Q$name\E\b\s*[;,)=\[]/g) {
                my $type = $1;
                next if $type eq $ctx_type;
                next unless $type =~ /_t$|^(?:struct|void|char|u_char)$/;
                $other = 1;
                warn "$file:" . line_of($text, $from + pos($s))
                     . ": '$name' is also a '$type *' here: not rewritten\n";
            }
            next if $other;

            $count += ($s =~ s/(?<![\w.>])(?<!->)(\Q$name\E->)($fields)\b
                              /$1$map{$2}/gx);
        }

        $out .= $s;
    }

    return ($out, $count);
}

sub report {
    my ($file, $text) = @_;
    my $n = 0;

    for my $line (split /\n/, $text, -1) {
        $n++;
        if (length $line > 80) {
            warn "$file:$n: " . length($line) . " columns\n";
        }
        while ($line =~ /(?<![\w.>])(?<!->)(\(?\w*ctx\)?)->($fields)\b/g) {
            warn "$file:$n: $1->$2 not rewritten\n";
        }
    }
}

# The lines the rewrite pushed over 80 columns, as they were rewrapped by
# hand on main at c7d9c8b: each block below, where it is found whole (at
# the start of a line) in its file after the rewrite, becomes its rewrapped
# form.  Only whitespace differs between the two, so a block that is not
# found (the code changed since) is simply left to the report.
sub load_rewraps {
    my (@out, $cur);

    while (my $line = <DATA>) {
        if ($line =~ /^@@ (\S+)/) {
            $cur = { file => $1, old => '', new => '' };
            push @out, $cur;
        } elsif ($line =~ s/^-//) {
            $cur->{old} .= $line;
        } elsif ($line =~ s/^\+//) {
            $cur->{new} .= $line;
        }
    }

    for my $r (@out) {
        (my $a = $r->{old}) =~ s/\s+//g;
        (my $b = $r->{new}) =~ s/\s+//g;
        die "rewrap of $r->{file} changes more than whitespace\n" if $a ne $b;
    }

    return @out;
}

sub rewrap {
    my ($file, $text) = @_;
    my $n = 0;
    (my $base = $file) =~ s{.*/}{};

    for my $r (@rewraps) {
        next if $r->{file} ne $base;

        my $t = "\n" . $text;
        my $at = index $t, "\n" . $r->{old};
        next if $at < 0;

        substr($t, $at + 1, length $r->{old}) = $r->{new};
        $text = substr $t, 1;
        $n += ($r->{old} =~ tr/\n//);
    }

    return ($text, $n);
}

__DATA__
@@ ngx_http_llmproxy_filter.c
-    if (ctx && (ctx->req.hide_usage || ctx->streaming.xlate) && !ctx->err.rendered) {
+    if (ctx && (ctx->req.hide_usage || ctx->streaming.xlate)
+        && !ctx->err.rendered)
+    {
@@ ngx_http_llmproxy_filter.c
-    if (ctx->streaming.idle_timeout && (ngx_msec_t) left > ctx->streaming.idle_timeout) {
+    if (ctx->streaming.idle_timeout
+        && (ngx_msec_t) left > ctx->streaming.idle_timeout)
+    {
@@ ngx_http_llmproxy_filter.c
-        ctx->answer.held_size = ngx_max(2 * ctx->answer.held_size, ctx->answer.held_len + n);
+        ctx->answer.held_size = ngx_max(2 * ctx->answer.held_size,
+                                        ctx->answer.held_len + n);
@@ ngx_http_llmproxy_gemini.c
-            && ngx_strncmp(m->name.data, ctx->req.action.data, m->name.len) == 0)
+            && ngx_strncmp(m->name.data, ctx->req.action.data, m->name.len)
+               == 0)
@@ ngx_http_llmproxy_gemini.c
-        && ngx_http_llmproxy_gemini_embed_model(r, ctx, ctx->req.top.model.start,
+        && ngx_http_llmproxy_gemini_embed_model(r, ctx,
+                                                ctx->req.top.model.start,
@@ ngx_http_llmproxy_gemini.c
-        ctx->req.embed_models = ngx_array_create(r->pool, 4,
-                                             sizeof(ngx_http_llmproxy_span_t));
+        ctx->req.embed_models =
+            ngx_array_create(r->pool, 4, sizeof(ngx_http_llmproxy_span_t));
@@ ngx_http_llmproxy_metrics.c
-    s->cache_creation_tokens += ctx->usage.cache_in_prompt
-                                ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
+    s->cache_creation_tokens +=
+        ctx->usage.cache_in_prompt
+        ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
@@ ngx_http_llmproxy_module.c
-                   "llmproxy: %V as %s", &r->uri, llmp_iface_name(ctx->req.iface));
+                   "llmproxy: %V as %s", &r->uri,
+                   llmp_iface_name(ctx->req.iface));
@@ ngx_http_llmproxy_openai.c
-        p = ngx_pnalloc(r->pool, ctx->req.top.model.end - ctx->req.top.model.start);
+        p = ngx_pnalloc(r->pool,
+                        ctx->req.top.model.end - ctx->req.top.model.start);
@@ ngx_http_llmproxy_openai.c
-        ctx->req.model.len = ctx->req.top.model.end - ctx->req.top.model.start - 2;
+        ctx->req.model.len = ctx->req.top.model.end
+                             - ctx->req.top.model.start - 2;
@@ ngx_http_llmproxy_request.c
-                   "llmproxy: body of %uz bytes read: %i", ctx->req.body_len, rc);
+                   "llmproxy: body of %uz bytes read: %i",
+                   ctx->req.body_len, rc);
@@ ngx_http_llmproxy_request.c
-    p = ngx_sprintf(start, ngx_http_llmproxy_iface(ctx->req.iface)->count_tokens,
+    p = ngx_sprintf(start,
+                    ngx_http_llmproxy_iface(ctx->req.iface)->count_tokens,
@@ ngx_http_llmproxy_route.c
-            d = ngx_http_llmproxy_pick(r, ctx, plan[ctx->route.plan_index], last);
+            d = ngx_http_llmproxy_pick(r, ctx, plan[ctx->route.plan_index],
+                                       last);
@@ ngx_http_llmproxy_route.c
-                                    : ctx->rt->settings.cooldown;
+                                          : ctx->rt->settings.cooldown;
@@ ngx_http_llmproxy_sse.c
-    cl = ngx_http_llmproxy_sse_out(r, sse,
-                                   ctx->streaming.xlate ? sse->xbuf->len : sse->len);
+    cl = ngx_http_llmproxy_sse_out(r, sse, ctx->streaming.xlate
+                                           ? sse->xbuf->len : sse->len);
@@ ngx_http_llmproxy_translate.c
-                                          llmp_iface_name(
-                                                             ctx->up.iface));
+                                          llmp_iface_name(ctx->up.iface));
@@ ngx_http_llmproxy_translate.c
-        ctx->streaming.xlate = llmp_responses_stream_new((int) ctx->up.iface,
-                                               (char *) model,
-                                               (char *) ctx->req.body,
-                                               ctx->req.body_len);
+        ctx->streaming.xlate =
+            llmp_responses_stream_new((int) ctx->up.iface, (char *) model,
+                                      (char *) ctx->req.body,
+                                      ctx->req.body_len);
@@ ngx_http_llmproxy_translate.c
-    ctx->streaming.xlate = llmp_stream_new((int) ctx->up.iface, (int) ctx->req.iface,
-                                 (char *) model, !ctx->req.hide_usage);
+    ctx->streaming.xlate = llmp_stream_new((int) ctx->up.iface,
+                                           (int) ctx->req.iface,
+                                           (char *) model,
+                                           !ctx->req.hide_usage);
@@ ngx_http_llmproxy_translate.c
-            rc = llmp_responses_stream_feed(ctx->streaming.xlate, (char *) data, len,
-                                            out);
+            rc = llmp_responses_stream_feed(ctx->streaming.xlate,
+                                            (char *) data, len, out);
@@ ngx_http_llmproxy_translate.c
-            rc = llmp_stream_feed(ctx->streaming.xlate, (char *) data, len, out);
+            rc = llmp_stream_feed(ctx->streaming.xlate, (char *) data, len,
+                                  out);
@@ ngx_http_llmproxy_upstream.c
-                            != ctx->rt->settings.request_timeout);
+                               != ctx->rt->settings.request_timeout);
@@ ngx_http_llmproxy_upstream.c
-            ctx->route.fail = (c && (c->read->timedout || c->write->timedout))
-                        ? NGX_HTTP_LLMPROXY_FAIL_TIMEOUT
-                        : ctx->answer.body_wait
-                        ? NGX_HTTP_LLMPROXY_FAIL_TRUNCATED
-                        : NGX_HTTP_LLMPROXY_FAIL_CONNECT;
+            ctx->route.fail =
+                (c && (c->read->timedout || c->write->timedout))
+                ? NGX_HTTP_LLMPROXY_FAIL_TIMEOUT
+                : ctx->answer.body_wait
+                ? NGX_HTTP_LLMPROXY_FAIL_TRUNCATED
+                : NGX_HTTP_LLMPROXY_FAIL_CONNECT;
@@ ngx_http_llmproxy_upstream.c
-        if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_CONNECT && !u->request_sent
+        if (ctx->route.fail == NGX_HTTP_LLMPROXY_FAIL_CONNECT
+            && !u->request_sent
@@ ngx_http_llmproxy_upstream.c
-                      ctx->route.current ? &ctx->route.current->id : &ctx->req.model,
+                      ctx->route.current ? &ctx->route.current->id
+                                         : &ctx->req.model,
@@ ngx_http_llmproxy_upstream.c
-                                  llmp_iface_name(
-                                                             ctx->up.iface));
+                                  llmp_iface_name(ctx->up.iface));
@@ ngx_http_llmproxy_upstream.c
-        ctx->streaming.idle_timeout = ngx_http_llmproxy_timeout(ctx, ctx->route.current, 1);
+        ctx->streaming.idle_timeout =
+            ngx_http_llmproxy_timeout(ctx, ctx->route.current, 1);
@@ ngx_http_llmproxy_upstream.c
-    left = (ngx_msec_int_t) (timeout - (ngx_current_msec - ctx->time.attempt_start));
+    left = (ngx_msec_int_t) (timeout
+                             - (ngx_current_msec - ctx->time.attempt_start));
@@ ngx_http_llmproxy_usage.c
-        head = ngx_min((size_t) (last - pos), sizeof(window)
-                                              - ctx->usage.tail_len);
+        head = ngx_min((size_t) (last - pos),
+                       sizeof(window) - ctx->usage.tail_len);
@@ ngx_http_llmproxy_usage.c
-    total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens : prompt + completion;
+    total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens
+                                         : prompt + completion;
@@ ngx_http_llmproxy_usage_records_copy.c
-    total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens : prompt + completion;
+    total = ctx->usage.total_tokens >= 0 ? ctx->usage.total_tokens
+                                         : prompt + completion;
@@ ngx_http_llmproxy_usage_records_copy.c
-    written = ctx->usage.cache_in_prompt ? 0 : ngx_max(ctx->usage.cache_creation_tokens,
-                                                 0);
+    written = ctx->usage.cache_in_prompt
+              ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
@@ ngx_http_llmproxy_usage_records_copy.c
-    p = ngx_http_llmproxy_copy_text(p, last, ctx->req.model.data, ctx->req.model.len,
-                                    1024);
+    p = ngx_http_llmproxy_copy_text(p, last, ctx->req.model.data,
+                                    ctx->req.model.len, 1024);
@@ ngx_http_llmproxy_usage_records_copy.c
-        p = ngx_http_llmproxy_copy_text(p, last, ctx->req.endpoint_path.data + 1,
+        p = ngx_http_llmproxy_copy_text(p, last,
+                                        ctx->req.endpoint_path.data + 1,
@@ ngx_http_llmproxy_variables.c
-        return ctx->usage.cache_in_prompt ? 0
-                                    : ngx_max(ctx->usage.cache_creation_tokens, 0);
+        return ctx->usage.cache_in_prompt
+               ? 0 : ngx_max(ctx->usage.cache_creation_tokens, 0);
@@ ngx_http_llmproxy_usage.c
-            ctx->usage.completion_tokens = v + ngx_max(ctx->usage.thoughts_tokens, 0);
+            ctx->usage.completion_tokens = v
+                                   + ngx_max(ctx->usage.thoughts_tokens, 0);
@@ ngx_http_llmproxy_usage.c
-            ctx->usage.completion_tokens = v + ngx_max(ctx->usage.candidates_tokens, 0);
+            ctx->usage.completion_tokens = v
+                                   + ngx_max(ctx->usage.candidates_tokens, 0);
@@ ngx_http_llmproxy_usage.c
-                ctx->usage.prompt_tokens += ngx_max(ctx->usage.cache_read_tokens, 0)
-                                      + ngx_max(ctx->usage.cache_creation_tokens,
-                                                0);
+                ctx->usage.prompt_tokens +=
+                                 ngx_max(ctx->usage.cache_read_tokens, 0)
+                                 + ngx_max(ctx->usage.cache_creation_tokens, 0);

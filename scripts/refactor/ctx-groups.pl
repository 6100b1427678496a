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
# It reports on stderr, and leaves for a person to fix: lines now longer
# than 80 columns, and any ctx->OLD_FIELD it did not rewrite (a context
# reached through a name it cannot see declared, e.g. a macro).

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

my ($changed, $total) = (0, 0);

for my $file (@files) {
    open my $in, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$in> };
    close $in;

    my ($new, $n) = rewrite($file, $text);
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

print $check ? "$changed files would change ($total accesses)\n"
             : "$changed files changed ($total accesses)\n";
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

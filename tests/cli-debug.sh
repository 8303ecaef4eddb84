#!/usr/bin/env bash
# lltrace debug, scripted on the tiny model (--batch, --format json): a breakpoint stops at the
# node and step asked for; print equals that node's checkpoint dump (read by tests/gguf.py);
# next reaches the next computing node of the graph the trace recorded; step token advances
# one decode; conditions and watches; quit leaves a complete trace; a session that changes
# nothing generates the plain run's text; zero at a pause is --ablate on that node and step,
# and recorded as it is; debug turns flash attention off unless -fa says; Ctrl-C at a pause.
. "$(dirname "$0")/lib.sh" cli-debug "$@"
here=$(cd "$(dirname "$0")" && pwd)
cd "$dir"
run=(-m "$model" -p "hello world" -n 4 -fa off)

# the reference: the plain run's text and its checkpoints of step 2
"$bin" run "${run[@]}" --checkpoints --dump-step 2 -o ck.db --dump-file ck.gguf >plain.txt 2>ck.err || fail "checkpoint run: $(cat ck.err)"
plain=$(tail -c +"$(($(printf 'hello world' | wc -c) + 1))" plain.txt)

cat >cmds <<'EOF'
break kq_soft_max-1 step:2
run
where
print kq_soft_max-1 [0:5]
print kq_soft_max-1 stats
print kq-1
next
step token
info breakpoints
quit
EOF
"$bin" debug "${run[@]}" -o t.db --batch cmds --format json >replies 2>err
expect "debug exit status" "$?" 0
"$bin" show t.db --step 2 --format json >graph.json || fail "show --step 2"
"$bin" show t.db --runs --format json >runs.json || fail "show --runs"

python3 - "$here" replies ck.gguf graph.json runs.json <<'EOF' || fail "the replies (above)"
import json, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
replies = [json.loads(l) for l in open(sys.argv[2])]
kinds = [r['reply'] for r in replies]
want = ['break', 'running', 'stopped', 'where', 'print', 'print', 'error', 'running', 'stopped', 'running', 'stopped',
        'breakpoints', 'quit', 'exited']
assert kinds == want, 'replies %s, wanted %s' % (kinds, want)
stop = replies[2]
assert (stop['breakpoint'], stop['node'], stop['step'], stop['op'], stop['layer']) == (1, 'kq_soft_max-1', 2, 'SOFT_MAX', 1), stop
assert replies[3]['node'] == 'kq_soft_max-1' and replies[3]['pos'] == 4, replies[3]
# print equals the checkpoint dump, value for value (the dump keeps the 5 positions so far)
p = replies[4]
ne, values = gguf.f32(sys.argv[3], 'kq_soft_max-1#2')
assert (p['node'], p['step'], p['ne']) == ('kq_soft_max-1', 2, ne), (p['ne'], ne)
f32 = lambda x: struct.unpack('<f', struct.pack('<f', x))[0]  # 9 digits name a float exactly
assert len(p['values']) == len(values) and all(f32(a) == b for a, b in zip(p['values'], values)), 'print differs from the dump'
s = replies[5]['stats']
assert s['n'] == 256 * 4 and f32(s['max']) == max(values), s
# kq-1 was computed in the same memory the softmax now holds: refused, saying why
assert 'no longer holds' in replies[6]['message'], replies[6]
# next: the node after kq_soft_max-1 in the recorded graph that computes something
nodes = json.load(open(sys.argv[4]))['nodes']
at = [n['idx'] for n in nodes if n['name'] == 'kq_soft_max-1'][0]
noop = {'VIEW', 'RESHAPE', 'PERMUTE', 'TRANSPOSE', 'NONE'}
nxt = [n for n in nodes if n['idx'] > at and n['op'] not in noop][0]
got = replies[8]
assert (got['reason'], got['index'], got['node'], got['step']) == ('next', nxt['idx'], nxt['name'], 2), (got, nxt)
# step token: the next decode's first node
got = replies[10]
assert (got['reason'], got['step'], got['index'], got['pos']) == ('step token', 3, 0, 5), got
assert replies[11]['breakpoints'] == [{'id': 1, 'kind': 'break', 'spec': 'kq_soft_max-1 step:2', 'hits': 1}], replies[11]
# quit during step 3: that step ends, the run with it, complete
ex = replies[13]
assert ex['status'] == 'ok', ex
run = json.load(open(sys.argv[5]))['runs'][0]
assert (run['status'], run['steps']) == ('ok', 4), run
EOF
[ -s err ] && grep -q "trace written to t.db" err || fail "no summary: $(cat err)"

# conditions, watches, and a session that changes nothing generates what the plain run did
cat >cmds2 <<'EOF'
watch l_out-1
break l_out-0 seq:1
break op:SOFT_MAX layer:0 if absmax>0.99
continue
print stats
delete 3
continue
EOF
"$bin" debug "${run[@]}" -o t2.db --batch cmds2 --format json >replies2 2>err2
expect "second session's exit status" "$?" 0
python3 - replies2 "$plain" <<'EOF' || fail "the second session's replies (above)"
import json, sys
replies = [json.loads(l) for l in open(sys.argv[1])]
stops = [r for r in replies if r['reply'] == 'stopped']
# (a run decodes sequence 0 alone: seq:1 never stops it)
assert len(stops) == 1 and stops[0]['op'] == 'SOFT_MAX' and stops[0]['layer'] == 0 and stops[0]['breakpoint'] == 3, stops
assert [r for r in replies if r['reply'] == 'print'][0]['stats']['absmax'] > 0.99
watches = [r for r in replies if r['reply'] == 'watch' and 'step' in r]
# every step until the pause, then every step after: one per step, 4 steps in all
assert [w['step'] for w in watches] == [0, 1, 2, 3] and all(w['node'] == 'l_out-1' for w in watches), watches
ex = replies[-1]
assert ex['reply'] == 'exited' and ex['text'] == sys.argv[2], (ex, sys.argv[2])
EOF

# zero at a pause, then continue: the logits of every step after are those of --ablate on
# that node and step (the parity files hold each generated step's top logits), and not the plain run's
"$bin" run "${run[@]}" -o p.db --parity plain.jsonl >/dev/null 2>&1 || fail "plain run with --parity"
"$bin" run "${run[@]}" -o a.db --parity ablate.jsonl --ablate 'kq_soft_max-1:head=1:step=2' >/dev/null 2>&1 ||
    fail "run --ablate"
printf 'break kq_soft_max-1 step:2\nrun\nzero head=1\nprint [0:5,0,1]\ncontinue\n' >cmds3
"$bin" debug "${run[@]}" -o z.db --parity zero.jsonl --batch cmds3 --format json >replies3 2>err3
expect "zero session's exit status" "$?" 0
grep -q '"reply":"changed","kind":"zero","node":"kq_soft_max-1","step":2,"elements":256}' replies3 ||
    fail "zero's reply: $(cat replies3)"
grep -q '"reply":"print".*"values":\[0,0,0,0,0\]' replies3 || fail "head 1 after zero: $(grep print replies3)"
cmp -s zero.jsonl ablate.jsonl || fail "zero then continue differs from --ablate: $(diff zero.jsonl ablate.jsonl | head -3)"
cmp -s zero.jsonl plain.jsonl && fail "zero then continue changed nothing"
# the change is in the trace as --ablate's is: one of the run's interventions, applied once
for db in z a; do
    sqlite3 -separator ' ' $db.db "SELECT kind, node, step, idx, n_changed, json_extract(params, '$.head') FROM interventions" >iv.$db ||
        fail "interventions of $db.db"
done
expect "the pause's change in the trace" "$(cat iv.z)" "$(cat iv.a)"
expect "the pause's change in the trace" "$(cut -d' ' -f1-3,5-6 iv.z)" "ablate kq_soft_max-1 2 256 1"

# without -fa, debug turns flash attention off (the probabilities exist); with -fa on, a
# breakpoint on them is refused, saying why
printf 'break kq_soft_max-1 step:1\nrun\ncontinue\n' >cmds4
"$bin" debug -m "$model" -p "hello world" -n 2 -o f.db --batch cmds4 --format json >replies4 2>err4
expect "debug without -fa: exit status" "$?" 0
grep -q '"reply":"stopped","breakpoint":1,"step":1,"node":"kq_soft_max-1"' replies4 || fail "no stop without -fa: $(cat replies4)"
expect "debug's flash attention" "$(sqlite3 f.db "SELECT json_extract(params, '$.flash_attn') FROM runs")" off
"$bin" debug -m "$model" -p "hello world" -n 2 -fa on -o g.db --batch cmds4 --format json >replies5 2>err5
expect "debug -fa on: exit status" "$?" 0
grep -q '"reply":"error","message":"kq_soft_max-1: this run computes attention with flash attention, where kq_soft_max-1 does not exist (-fa off)"' replies5 ||
    fail "breakpoint on probabilities under flash attention: $(cat replies5)"
grep -q '"reply":"stopped"' replies5 && fail "stopped under flash attention: $(cat replies5)"

# Ctrl-C while paused, waiting for a command: the program goes on, ends after its step, and
# the run is interrupted (exit status 130), its trace complete
mkfifo cmdpipe
"$bin" debug "${run[@]}" -n 8 -o c.db --format json <cmdpipe >replies6 2>err6 &
pid=$!
exec 7>cmdpipe
printf 'break l_out-1 step:2\nrun\n' >&7
for _ in $(seq 300); do grep -q '"reply":"stopped"' replies6 && break; sleep 0.1; done
grep -q '"reply":"stopped"' replies6 || fail "no pause before Ctrl-C: $(cat replies6 err6)"
kill -INT $pid
for _ in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill -9 $pid; fail "Ctrl-C at a pause: still waiting after 20 s"; }
wait $pid
expect "Ctrl-C at a pause: exit status" "$?" 130
exec 7>&-
grep -q '"reply":"exited","status":"interrupted"' replies6 || fail "Ctrl-C at a pause: $(tail -2 replies6)"
expect "Ctrl-C at a pause: the run" "$("$bin" show c.db --runs --format json | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r["status"], r["steps"])')" "interrupted 3"

# the commands and the replies people read; bad input
printf 'break\nbreak x op:NOPE\nfrobnicate\nprint\nwhere\nquit\n' >bad
"$bin" debug "${run[@]}" -o t3.db --batch bad >text 2>/dev/null
expect "bad commands' exit status" "$?" 0
expect "replies to bad commands" "$(cut -c1-6 text | tr '\n' ' ')" "error: error: error: error: error: quit "
grep -q "unknown op 'NOPE'" text || fail "unknown op: $(cat text)"
[ -e t3.db ] && fail "quit before run made a trace"
"$bin" debug "${run[@]}" --batch missing.txt 2>e >/dev/null
expect "missing batch file" "$?" 2
"$bin" debug --attach "$dir/none.sock" </dev/null 2>e >/dev/null
expect "attach to nothing" "$?" 2
grep -q "cannot reach the debugger" e || fail "attach to nothing: $(cat e)"
finish

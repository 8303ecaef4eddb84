#!/usr/bin/env bash
# The trace file itself: version-1 traces of each of the five earlier schema variants are read as they are
# and upgraded when a run is appended; every table and view reads as valid UTF-8 in Python,
# with the raw bytes of token pieces kept.
#   cli-trace.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-trace "$@"

# the schema version this lltrace writes, a new trace's: every upgrade below must reach it
"$bin" run -m "$model" -p "Hi" -n 1 -o "$dir/now.db" >/dev/null 2>&1 || fail "making a new trace"
now=$(sqlite3 "$dir/now.db" "PRAGMA user_version")
next=$((now + 1))

# ---- version-1 fixtures: the schemas earlier builds wrote (git history of src/store.c) ------

v1_common="
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE weights(
  run_id INTEGER, id INTEGER, name TEXT, type TEXT, n_dims INTEGER,
  ne0 INTEGER, ne1 INTEGER, ne2 INTEGER, ne3 INTEGER, bytes INTEGER, bpw REAL,
  layer INTEGER, file_offset INTEGER, buffer TEXT,
  PRIMARY KEY(run_id, id)) WITHOUT ROWID;
CREATE TABLE graphs(id INTEGER PRIMARY KEY, run_id INTEGER, n_nodes INTEGER);
CREATE TABLE nodes(
  graph_id INTEGER, idx INTEGER, op TEXT, name TEXT, layer INTEGER, type TEXT,
  ne0 INTEGER, ne1 INTEGER, ne2 INTEGER, ne3 INTEGER, bytes INTEGER,
  is_view INTEGER, is_noop INTEGER, buffer TEXT,
  PRIMARY KEY(graph_id, idx)) WITHOUT ROWID;
CREATE TABLE node_srcs(
  graph_id INTEGER, idx INTEGER, slot INTEGER, kind TEXT, src_idx INTEGER,
  weight_id INTEGER, name TEXT, bytes INTEGER,
  PRIMARY KEY(graph_id, idx, slot)) WITHOUT ROWID;
CREATE TABLE tokens(
  run_id INTEGER, seq INTEGER, role TEXT, step INTEGER, pos INTEGER, token INTEGER,
  piece TEXT, PRIMARY KEY(run_id, seq)) WITHOUT ROWID;
CREATE VIEW step_nodes AS
  SELECT s.run_id AS run_id, s.step AS step, s.phase AS phase, n.*
  FROM steps s JOIN nodes n ON n.graph_id = s.graph_id;
INSERT INTO meta VALUES('format', 'lltrace-trace');
INSERT INTO meta VALUES('schema_version', '1');
PRAGMA application_id=1280070738; PRAGMA user_version=1;"
runs_82f70c6="
CREATE TABLE runs(
  id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT, status TEXT, error TEXT,
  level TEXT, lltrace_version TEXT, llama_tag TEXT, system_info TEXT,
  model_path TEXT, model_name TEXT, model_arch TEXT, model_desc TEXT,
  n_layer INTEGER, n_embd INTEGER, n_head INTEGER, n_head_kv INTEGER, n_vocab INTEGER,
  n_ctx_train INTEGER, file_type TEXT, model_bytes INTEGER, model_params INTEGER,
  params TEXT, prompt TEXT, output TEXT, n_prompt INTEGER, n_gen INTEGER,
  t_prompt_ns INTEGER, t_gen_ns INTEGER);"
runs_94b227c="
CREATE TABLE runs(
  id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT, status TEXT, error TEXT,
  level TEXT, lltrace_version TEXT, llama_tag TEXT, system_info TEXT,
  model_path TEXT, model_name TEXT, model_arch TEXT, model_desc TEXT,
  n_layer INTEGER, n_embd INTEGER, n_head INTEGER, n_head_kv INTEGER, n_vocab INTEGER,
  n_ctx_train INTEGER, file_type TEXT, model_bytes INTEGER, model_params INTEGER,
  params TEXT, prompt TEXT, output TEXT, n_prompt INTEGER, n_gen INTEGER,
  t_prompt_ns INTEGER, t_gen_ns INTEGER, dump_path TEXT, nan_report TEXT, t_tokenize_ns INTEGER);"
runs_eae43c0="
CREATE TABLE runs(
  id INTEGER PRIMARY KEY, started_at TEXT, ended_at TEXT, status TEXT, error TEXT,
  level TEXT, lltrace_version TEXT, llama_tag TEXT, system_info TEXT,
  model_path TEXT, model_name TEXT, model_arch TEXT, model_desc TEXT,
  n_layer INTEGER, n_embd INTEGER, n_head INTEGER, n_head_kv INTEGER, n_vocab INTEGER,
  n_ctx_train INTEGER, file_type TEXT, model_bytes INTEGER, model_params INTEGER,
  params TEXT, prompt TEXT, output TEXT, n_prompt INTEGER, n_gen INTEGER,
  t_prompt_ns INTEGER, t_gen_ns INTEGER, dump_path TEXT, nan_report TEXT);"
steps_82f70c6="
CREATE TABLE steps(
  run_id INTEGER, step INTEGER, decode INTEGER, phase TEXT, pos0 INTEGER,
  n_tokens INTEGER, graph_id INTEGER, t_begin_ns INTEGER, t_end_ns INTEGER,
  compute_begin_ns INTEGER, compute_end_ns INTEGER,
  PRIMARY KEY(run_id, step)) WITHOUT ROWID;"
steps_94b227c="
CREATE TABLE steps(
  run_id INTEGER, step INTEGER, decode INTEGER, phase TEXT, pos0 INTEGER,
  n_tokens INTEGER, graph_id INTEGER, t_begin_ns INTEGER, t_end_ns INTEGER,
  compute_begin_ns INTEGER, compute_end_ns INTEGER, t_sample_ns INTEGER,
  PRIMARY KEY(run_id, step)) WITHOUT ROWID;"
times_rows="
CREATE TABLE node_times(
  run_id INTEGER, step INTEGER, idx INTEGER, t_begin_ns INTEGER, t_end_ns INTEGER,
  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID;
INSERT INTO node_times VALUES (1, 0, 1, 100, 200), (1, 0, 2, 200, 350), (1, 1, 2, 900, 960);"
times_json="
CREATE TABLE step_times(
  run_id INTEGER, step INTEGER, times TEXT,
  PRIMARY KEY(run_id, step)) WITHOUT ROWID;
CREATE VIEW node_times AS
  SELECT st.run_id AS run_id, st.step AS step, j.value->>0 AS idx,
         j.value->>1 AS t_begin_ns, j.value->>2 AS t_end_ns
  FROM step_times st, json_each(st.times) j;
INSERT INTO step_times VALUES (1, 0, '[[1,100,200],[2,200,350]]'), (1, 1, '[[2,900,960]]');"
parity="
CREATE TABLE parity(
  run_id INTEGER, step INTEGER, pos INTEGER, token INTEGER, piece TEXT, top_k TEXT,
  PRIMARY KEY(run_id, step)) WITHOUT ROWID;
INSERT INTO parity VALUES (1, 0, 3, 162, CAST(X'9F' AS TEXT), '[[162,1.5]]');"
stats_diffs="
CREATE TABLE node_stats(
  run_id INTEGER, step INTEGER, idx INTEGER, n INTEGER, n_nan INTEGER, n_pinf INTEGER,
  n_ninf INTEGER, n_zero INTEGER, min REAL, max REAL, mean REAL, std REAL, absmax REAL,
  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID;
CREATE TABLE node_diffs(
  run_id INTEGER, step INTEGER, idx INTEGER, name TEXT, shape_ok INTEGER, n INTEGER,
  max_abs REAL, mean_abs REAL, max_rel REAL, mean_rel REAL, rmse REAL, nmse REAL, cosine REAL,
  ref_nonfinite INTEGER, nonfinite INTEGER, n_exceed INTEGER, max_abs_index INTEGER,
  within INTEGER, n_finite INTEGER, n_nonfinite_pairs INTEGER,
  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID;"
# one run of two steps: three nodes, two timed in step 0, one in step 1; a prompt cut inside 🦙
rows="
INSERT INTO runs(id, status, level, model_path, n_layer, prompt, output, n_prompt, n_gen)
  VALUES (1, 'ok', 'timing', 'old.gguf', 1, CAST(X'F09F' AS TEXT), 'x', 2, 1);
INSERT INTO graphs VALUES (1, 1, 3);
INSERT INTO nodes VALUES (1, 0, 'GET_ROWS', 'inp_embd', -1, 'f32', 8, 2, 1, 1, 64, 0, 0, 'CPU'),
  (1, 1, 'RMS_NORM', 'norm-0', 0, 'f32', 8, 2, 1, 1, 64, 0, 0, 'CPU'),
  (1, 2, 'ADD', 'l_out-0', 0, 'f32', 8, 2, 1, 1, 64, 0, 0, 'CPU');
INSERT INTO steps(run_id, step, decode, phase, pos0, n_tokens, graph_id, compute_begin_ns, compute_end_ns)
  VALUES (1, 0, 0, 'prompt', 0, 2, 1, 100, 350), (1, 1, 1, 'gen', 2, 1, 1, 900, 960);
INSERT INTO tokens VALUES (1, 0, 'prompt', 0, 0, 243, CAST(X'F0' AS TEXT)),
  (1, 1, 'prompt', 0, 1, 162, CAST(X'9F' AS TEXT)), (1, 2, 'gen', 0, 2, 120, 'x');"

# the five variants, by the commit that made each
declare -A variants=(
    [82f70c6]="$runs_82f70c6 $steps_82f70c6 $times_rows"
    [4d32634]="$runs_82f70c6 $steps_82f70c6 $times_json"
    [17f6828]="$runs_82f70c6 $steps_82f70c6 $times_json $parity"
    [eae43c0]="$runs_eae43c0 $steps_82f70c6 $times_json $parity $stats_diffs"
    [94b227c]="$runs_94b227c $steps_94b227c $times_json $parity $stats_diffs"
)

# read_all TRACE: every table and view of the trace through Python's sqlite3 (text decoded as
# UTF-8, the way pandas.read_sql reads it); prints the first failure
read_all() {
    python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name").fetchall():
    try:
        db.execute(f'SELECT * FROM "{name}"').fetchall()
    except Exception as e:
        print(f"{name}: {e}")
EOF
}

for v in "${!variants[@]}"; do
    t=$dir/v1-$v.db
    sqlite3 "$t" "${variants[$v]} $v1_common $rows" || { fail "$v: cannot make the fixture"; continue; }
    before=$(sha256sum <"$t")

    # read only: the trace is read as version 2 (times as rows, counts, valid text) and not written
    "$bin" show "$t" --step 0 --format csv >"$dir/show.csv" 2>"$dir/err" || fail "$v: show of a version-1 trace: $(cat "$dir/err")"
    expect "$v: node times shown in step 0 (µs)" "$(grep -o 'norm-0,.*,0\.100,\|l_out-0,.*,0\.150,' "$dir/show.csv" | wc -l)" 2
    expect "$v: the file after reading it" "$(sha256sum <"$t")" "$before"
    ls "$t"-* >/dev/null 2>&1 && fail "$v: reading left files beside the trace: $(ls "$t"-*)"

    # appending a run upgrades the trace first
    "$bin" run -m "$model" -p "Hi" -n 3 --level timing -o "$t" >/dev/null 2>"$dir/err" ||
        fail "$v: run -o onto a version-1 trace exited with $?: $(cat "$dir/err")"
    got=$(python3 - "$t" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
q = lambda sql: db.execute(sql).fetchall()
print(q("PRAGMA user_version")[0][0], q("SELECT value FROM meta WHERE key='schema_version'")[0][0])
print(q("SELECT group_concat(id || ':' || status) FROM runs")[0][0])
print(q("SELECT type FROM sqlite_master WHERE name='node_times'")[0][0], len(q("SELECT 1 FROM sqlite_master WHERE name='step_times'")))
print(q("SELECT group_concat(step || '/' || idx || '/' || t_begin_ns || '/' || t_end_ns, ' ') FROM (SELECT * FROM node_times WHERE run_id=1 ORDER BY step, idx)")[0][0])
print(q("SELECT group_concat(n_timed) FROM (SELECT n_timed FROM steps WHERE run_id=1 ORDER BY step)")[0][0])
print(q("SELECT group_concat(name || '=' || dur_ns, ' ') FROM (SELECT * FROM node_times_named WHERE run_id=1 ORDER BY step, idx)")[0][0])
print(q("SELECT hex(group_concat(piece_bytes, '')), group_concat(piece, '') FROM (SELECT * FROM tokens WHERE run_id=1 AND role='prompt' ORDER BY seq)")[0])
print(q("SELECT prompt FROM runs WHERE id=1")[0][0])
print(*q("SELECT count(*), group_concat(hex(piece_bytes)), group_concat(piece) FROM parity WHERE run_id=1")[0])
# the new run's node times agree with its steps
print(q("SELECT count(*) FROM steps s WHERE run_id=2 AND n_timed != (SELECT count(*) FROM node_times t WHERE t.run_id=2 AND t.step=s.step)")[0][0],
      q("SELECT count(*) > 0 FROM node_times WHERE run_id=2")[0][0])
EOF
) || fail "$v: reading the upgraded trace"
    case "${variants[$v]}" in *"CREATE TABLE parity"*) parity_row="1 9F �" ;; *) parity_row="0 None None" ;; esac
    want="$now $now
1:ok,2:ok
view 0
0/1/100/200 0/2/200/350 1/2/900/960
2,1
norm-0=100 l_out-0=150 l_out-0=60
('F09F', '��')
��
$parity_row
0 1"
    expect "$v: the upgraded trace" "$got" "$want"
    [ -z "$(read_all "$t")" ] || fail "$v: reading every table and view: $(read_all "$t")"
done

# ---- version 2: a trace of this version without the columns version 3 added --------------

v2=$dir/v2.db
"$bin" run -m "$model" -p "Hi" -n 3 -o "$v2" >/dev/null 2>"$dir/err" || fail "making the version-2 fixture: $(cat "$dir/err")"
sqlite3 "$v2" "ALTER TABLE runs DROP COLUMN name; ALTER TABLE tokens DROP COLUMN seq_id; ALTER TABLE tokens DROP COLUMN output;
ALTER TABLE parity DROP COLUMN seq_id; UPDATE meta SET value='2' WHERE key='schema_version'; PRAGMA user_version=2;" ||
    fail "cannot make the version-2 fixture"
before=$(sha256sum <"$v2")
"$bin" show "$v2" >/dev/null 2>"$dir/err" || fail "show of a version-2 trace: $(cat "$dir/err")"
expect "version 2: the file after reading it" "$(sha256sum <"$v2")" "$before"
"$bin" run -m "$model" -p "Hi" -n 3 -o "$v2" >/dev/null 2>"$dir/err" || fail "run -o onto a version-2 trace: $(cat "$dir/err")"
got=$(python3 - "$v2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
q = lambda sql: db.execute(sql).fetchall()
print(q("PRAGMA user_version")[0][0], q("SELECT value FROM meta WHERE key='schema_version'")[0][0])
# run 1: one sequence (0), outputs unknown; run 2 ("Hi" = BOS, "▁Hi"): logits of the last prompt token, generated tokens recorded when chosen
print(q("SELECT group_concat(DISTINCT seq_id), count(output) FROM tokens WHERE run_id=1")[0])
print(q("SELECT group_concat(role || ':' || seq_id || ':' || ifnull(output, '-'), ' ') FROM (SELECT * FROM tokens WHERE run_id=2 ORDER BY seq)")[0][0])
print(q("SELECT group_concat(ifnull(name, '-')) FROM runs")[0][0])
EOF
) || fail "reading the upgraded version-2 trace"
expect "version 2 upgraded" "$got" "$now $now
('0', 0)
prompt:0:0 prompt:0:1 gen:0:- gen:0:- gen:0:-
-,"

# ---- version 3: expert routing keyed by position, without row and sequence ----------------

moe=$("$bin" mkmodel tiny-qwen3moe --cache) || fail "mkmodel tiny-qwen3moe"
v3=$dir/v3.db
"$bin" run -m "$moe" -p "Hello world, how are you" -n 3 -o "$v3" >/dev/null 2>"$dir/err" || fail "making the version-3 fixture: $(cat "$dir/err")"
# what version 4 wrote, then the table as version 3 had it (its key, no row, no seq_id)
want_routes=$(sqlite3 "$v3" "SELECT count(*), sum(row = pos - (SELECT pos0 FROM steps s WHERE s.run_id = r.run_id AND s.step = r.step)),
    sum(seq_id = 0) FROM expert_routing r")
sqlite3 "$v3" "CREATE TABLE er3(run_id INTEGER, step INTEGER, layer INTEGER, pos INTEGER, rank INTEGER, expert INTEGER,
  weight REAL, PRIMARY KEY(run_id, step, layer, pos, rank)) WITHOUT ROWID;
INSERT INTO er3 SELECT run_id, step, layer, pos, rank, expert, weight FROM expert_routing;
DROP TABLE expert_routing; ALTER TABLE er3 RENAME TO expert_routing;
UPDATE meta SET value='3' WHERE key='schema_version'; PRAGMA user_version=3;" || fail "cannot make the version-3 fixture"
case $want_routes in 0\|*|"") fail "the version-3 fixture has no routing: '$want_routes'" ;; esac
before=$(sha256sum <"$v3")
# read only: the rows gain their row (position - the step's first) and sequence 0
"$bin" show "$v3" --experts --format csv >"$dir/experts.csv" 2>"$dir/err" || fail "show --experts of a version-3 trace: $(cat "$dir/err")"
expect "version 3: the file after reading it" "$(sha256sum <"$v3")" "$before"
expect "version 3 read: tokens' sequences" "$(awk -F, '/^step,seq,/ { t = 1; next } t && NF { print $2 }' "$dir/experts.csv" | sort -u)" 0
# appending a run upgrades it: the table made anew with its new key
"$bin" run -m "$moe" -p "Hi" -n 2 -o "$v3" >/dev/null 2>"$dir/err" || fail "run -o onto a version-3 trace: $(cat "$dir/err")"
expect "version 3 upgraded: version" "$(sqlite3 "$v3" "PRAGMA user_version")" "$now"
expect "version 3 upgraded: the key of expert_routing" \
    "$(sqlite3 "$v3" "SELECT group_concat(name) FROM (SELECT name FROM pragma_table_info('expert_routing') WHERE pk > 0 ORDER BY pk)")" \
    "run_id,step,layer,row,rank"
expect "version 3 upgraded: run 1's routes (count, row = pos - pos0, sequence 0)" \
    "$(sqlite3 "$v3" "SELECT count(*), sum(row = pos - (SELECT pos0 FROM steps s WHERE s.run_id = r.run_id AND s.step = r.step)),
        sum(seq_id = 0) FROM expert_routing r WHERE run_id = 1")" "$want_routes"
[ "$(sqlite3 "$v3" "SELECT count(*) FROM expert_routing WHERE run_id = 2")" -gt 0 ] || fail "version 3 upgraded: the new run has no routing"
[ -z "$(read_all "$v3")" ] || fail "reading every table and view of the upgraded version-3 trace: $(read_all "$v3")"

# ---- version 4: node times as a table of rows, one per node -----------------------------

v4=$dir/v4.db
"$bin" run -m "$model" -p "Hi" -n 3 --level timing -o "$v4" >/dev/null 2>"$dir/err" || fail "making the version-4 fixture: $(cat "$dir/err")"
want_times=$(sqlite3 "$v4" "SELECT count(*), sum(t_end_ns - t_begin_ns), sum(idx * step) FROM node_times")
sqlite3 "$v4" "DROP VIEW node_times_named; CREATE TABLE nt(run_id INTEGER, step INTEGER, idx INTEGER, t_begin_ns INTEGER,
  t_end_ns INTEGER, PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID; INSERT INTO nt SELECT * FROM node_times;
DROP VIEW node_times; DROP TABLE step_node_times; ALTER TABLE nt RENAME TO node_times;
CREATE VIEW node_times_named AS SELECT t.run_id AS run_id, t.step AS step, t.idx AS idx, n.name AS name, n.op AS op,
  n.layer AS layer, t.t_begin_ns AS t_begin_ns, t.t_end_ns AS t_end_ns, t.t_end_ns - t.t_begin_ns AS dur_ns
  FROM node_times t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx;
UPDATE meta SET value='4' WHERE key='schema_version'; PRAGMA user_version=4;" || fail "cannot make the version-4 fixture"
case $want_times in 0\|*|"") fail "the version-4 fixture has no node times: '$want_times'" ;; esac
before=$(sha256sum <"$v4")
"$bin" show "$v4" --stats --format csv >"$dir/v4-read.csv" 2>"$dir/err" || fail "show --stats of a version-4 trace: $(cat "$dir/err")"
expect "version 4: the file after reading it" "$(sha256sum <"$v4")" "$before"
"$bin" run -m "$model" -p "Hi" -n 2 --level timing -o "$v4" >/dev/null 2>"$dir/err" || fail "run -o onto a version-4 trace: $(cat "$dir/err")"
expect "version 4 upgraded: version, node_times a view, one text per timed step" \
    "$(sqlite3 "$v4" "SELECT (SELECT user_version FROM pragma_user_version), (SELECT type FROM sqlite_master WHERE name = 'node_times'),
        (SELECT count(*) FROM step_node_times WHERE run_id = 1) = (SELECT count(*) FROM steps WHERE run_id = 1 AND n_timed > 0)")" "$now|view|1"
expect "version 4 upgraded: run 1's node times" \
    "$(sqlite3 "$v4" "SELECT count(*), sum(t_end_ns - t_begin_ns), sum(idx * step) FROM node_times WHERE run_id = 1")" "$want_times"
"$bin" show "$v4" --run 1 --stats --format csv >"$dir/v4-up.csv" 2>"$dir/err" || fail "show --stats of the upgraded trace: $(cat "$dir/err")"
expect "version 4: show --stats of run 1, before and after the upgrade" "$(cat "$dir/v4-up.csv")" "$(cat "$dir/v4-read.csv")"
[ -z "$(read_all "$v4")" ] || fail "reading every table and view of the upgraded version-4 trace: $(read_all "$v4")"

# ---- version 5: no interventions ----------------------------------------------------------

v5=$dir/v5.db
"$bin" run -m "$model" -p "Hi" -n 2 -o "$v5" >/dev/null 2>"$dir/err" || fail "making the version-5 fixture: $(cat "$dir/err")"
sqlite3 "$v5" "DROP VIEW interventions; DROP TABLE intervention_specs; DROP TABLE intervention_steps;
UPDATE meta SET value='5' WHERE key='schema_version'; PRAGMA user_version=5;" || fail "cannot make the version-5 fixture"
before=$(sha256sum <"$v5")
expect "version 5 read: no interventions" "$("$bin" show "$v5" --runs --format csv 2>"$dir/err" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "interventions") c = i; next } { print $c }')" 0
expect "version 5: the file after reading it" "$(sha256sum <"$v5")" "$before"
"$bin" run -m "$model" -p "Hi" -n 2 --scale 'l_out-0=1' -o "$v5" >/dev/null 2>"$dir/err" || fail "run -o onto a version-5 trace: $(cat "$dir/err")"
expect "version 5 upgraded: version, run 2's interventions" \
    "$(sqlite3 "$v5" "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM interventions WHERE run_id = 1),
        (SELECT count(*) > 0 FROM interventions WHERE run_id = 2 AND kind = 'scale' AND node = 'l_out-0')")" "$now|0|1"
[ -z "$(read_all "$v5")" ] || fail "reading every table and view of the upgraded version-5 trace: $(read_all "$v5")"

# ---- version 6: no causal tracing results ------------------------------------------------

v6=$dir/v6.db
"$bin" run -m "$model" -p "Hi" -n 2 -o "$v6" >/dev/null 2>"$dir/err" || fail "making the version-6 fixture: $(cat "$dir/err")"
sqlite3 "$v6" "DROP TABLE causal; DROP TABLE causal_cells;
UPDATE meta SET value='6' WHERE key='schema_version'; PRAGMA user_version=6;" || fail "cannot make the version-6 fixture"
before=$(sha256sum <"$v6")
"$bin" report "$v6" --data -o "$dir/v6.json" 2>"$dir/err" || fail "report of a version-6 trace: $(cat "$dir/err")"
expect "version 6 read: no causal result" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["causal"])' "$dir/v6.json")" None
expect "version 6: the file after reading it" "$(sha256sum <"$v6")" "$before"
"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello there" -o "$v6" >/dev/null 2>"$dir/err" ||
    fail "causal -o onto a version-6 trace: $(tail -1 "$dir/err")"
expect "version 6 upgraded: version, causal results, their runs and cells" \
    "$(sqlite3 "$v6" "SELECT (SELECT user_version FROM pragma_user_version), (SELECT value FROM meta WHERE key = 'schema_version'),
        (SELECT group_concat(clean_run || '/' || corrupt_run) FROM causal), (SELECT count(*) = max(n_layer * n_pos) FROM causal_cells, causal)")" \
    "$now|$now|2/3|1"
[ -z "$(read_all "$v6")" ] || fail "reading every table and view of the upgraded version-6 trace: $(read_all "$v6")"

# ---- version 7: node statistics as a table of rows, one per node --------------------------

# every node_stats row of run RUN, each REAL exactly (Python's repr of a float round-trips)
stats_rows() { # TRACE RUN
    python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for r in db.execute("SELECT * FROM node_stats WHERE run_id = ? ORDER BY step, idx", (int(sys.argv[2]),)):
    print(repr(r))
EOF
}
v7=$dir/v7.db
"$bin" run -m "$model" -p "Hi" -n 3 --level values -o "$v7" >/dev/null 2>"$dir/err" || fail "making the version-7 fixture: $(cat "$dir/err")"
stats_rows "$v7" 1 >"$dir/v7-stats"
[ "$(wc -l <"$dir/v7-stats")" -gt 100 ] || fail "the version-7 fixture has few node statistics: $(wc -l <"$dir/v7-stats")"
"$bin" show "$v7" --step 1 --format json >"$dir/v7-show" 2>"$dir/err" || fail "show of the values trace: $(cat "$dir/err")"
sqlite3 "$v7" "CREATE TABLE ns(run_id INTEGER, step INTEGER, idx INTEGER, n INTEGER, n_nan INTEGER, n_pinf INTEGER,
  n_ninf INTEGER, n_zero INTEGER, min REAL, max REAL, mean REAL, std REAL, absmax REAL,
  PRIMARY KEY(run_id, step, idx)) WITHOUT ROWID; INSERT INTO ns SELECT * FROM node_stats;
DROP VIEW node_stats; DROP TABLE step_node_stats; ALTER TABLE ns RENAME TO node_stats;
UPDATE meta SET value='7' WHERE key='schema_version'; PRAGMA user_version=7;" || fail "cannot make the version-7 fixture"
expect "version 7: node_stats a table of the same rows" \
    "$(sqlite3 "$v7" "SELECT type FROM sqlite_master WHERE name = 'node_stats'")$(stats_rows "$v7" 1 | cmp - "$dir/v7-stats")" table
before=$(sha256sum <"$v7")
expect "version 7 read: show --step 1" "$("$bin" show "$v7" --step 1 --format json 2>&1)" "$(cat "$dir/v7-show")"
expect "version 7: the file after reading it" "$(sha256sum <"$v7")" "$before"
"$bin" run -m "$model" -p "Hi" -n 2 --level values -o "$v7" >/dev/null 2>"$dir/err" || fail "run -o onto a version-7 trace: $(cat "$dir/err")"
expect "version 7 upgraded: version, node_stats a view, one text per step with statistics" \
    "$(sqlite3 "$v7" "SELECT (SELECT user_version FROM pragma_user_version), (SELECT type FROM sqlite_master WHERE name = 'node_stats'),
        (SELECT count(*) FROM step_node_stats WHERE run_id = 1) = (SELECT count(DISTINCT step) FROM node_stats WHERE run_id = 1),
        (SELECT count(*) FROM step_node_stats WHERE run_id = 2) > 0")" "$now|view|1|1"
expect "version 7 upgraded: run 1's node statistics, bit for bit" "$(stats_rows "$v7" 1 | cmp - "$dir/v7-stats" 2>&1)" ""
expect "version 7 upgraded: show --run 1 --step 1" "$("$bin" show "$v7" --run 1 --step 1 --format json 2>&1)" "$(cat "$dir/v7-show")"
[ -z "$(read_all "$v7")" ] || fail "reading every table and view of the upgraded version-7 trace: $(read_all "$v7")"
# SQL that writes node_stats as a table still works, every REAL exact: the view's triggers
got=$(python3 - "$v7" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
reals = [0.1, -1 / 3, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, -0.0, float("inf"), None, 3.0, -2.5e-300]
rows = [(9, 0, k, 4, 0, 0, 0, 1, *(reals[(k + c) % len(reals)] for c in range(5))) for k in range(len(reals))]
db.executemany("INSERT INTO node_stats VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
back = db.execute("SELECT * FROM node_stats WHERE run_id = 9 ORDER BY idx").fetchall()
db.execute("DELETE FROM node_stats WHERE run_id = 9 AND idx = 3")
left = db.execute("SELECT count(*) FROM node_stats WHERE run_id = 9").fetchone()[0]
db.execute("DELETE FROM node_stats WHERE run_id = 9")
gone = db.execute("SELECT count(*) FROM step_node_stats WHERE run_id = 9").fetchone()[0]
db.commit()
print([repr(r) for r in back] == [repr(r).replace("-0.0", "0.0") for r in rows], left, gone)
EOF
)
expect "node_stats written through the view: read back exactly, one row deleted, then all" "$got" "True 9 0"

# a newer schema version is refused, with the version named, and the file is left alone
newer=$dir/newer.db
sqlite3 "$newer" "PRAGMA application_id=1280070738; PRAGMA user_version=$next; CREATE TABLE meta(key, value);"
before=$(sha256sum <"$newer")
# (the exit status of an unreadable input is show's own business: not checked here)
"$bin" show "$newer" >/dev/null 2>"$dir/err" && fail "show of a version-$next trace succeeded"
grep -q "schema version $next" "$dir/err" || fail "the error on a version-$next trace does not name the version: $(cat "$dir/err")"
"$bin" run -m "$model" -n 1 -o "$newer" >/dev/null 2>&1 && fail "run -o onto a version-$next trace succeeded"
expect "a version-$next trace after run -o" "$(sha256sum <"$newer")" "$before"

# ---- UTF-8: pieces cut inside characters (the tiny model's byte-fallback tokens) ----------

prompt="Héllo 🦙 世界 ok"
u=$dir/utf8.db
"$bin" run -m "$model" -p "$prompt" -n 8 -o "$u" >/dev/null 2>"$dir/err" || fail "run with an emoji and CJK prompt: $(cat "$dir/err")"
[ -z "$(read_all "$u")" ] || fail "reading every table and view of the UTF-8 trace: $(read_all "$u")"
got=$(python3 - "$u" "$prompt" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
prompt = sys.argv[2].encode()
pieces = lambda role: b"".join(r[0] for r in db.execute(
    "SELECT piece_bytes FROM tokens WHERE run_id=1 AND role=? AND token != 1 ORDER BY seq", (role,)))  # 1: <s>
out = db.execute("SELECT output FROM runs WHERE id=1").fetchone()[0].encode()
cut = db.execute("SELECT count(*) FROM tokens WHERE piece_bytes != CAST(piece AS BLOB)").fetchone()[0]
# the tokenizer puts a space before the prompt
print(pieces("prompt") == b" " + prompt, pieces("gen") == out, cut > 0)
EOF
)
expect "prompt and output bytes from piece_bytes, and some pieces cut" "$got" "True True True"

finish

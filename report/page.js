// lltrace report page: draws the data `lltrace report` computed (docs/report.md); computes no
// figure of its own beyond sums for display. Opened from disk, the data is inline; served by
// `lltrace serve`, it is fetched from data.json every two seconds.
'use strict';
(function () {
  const S = { layer: null, node: null, attStep: null, attLayer: 0, resMetric: 'rms', lensStep: 'all' }; // what the reader chose
  const R = window.lltReport = { ready: false, renders: 0, data: null };
  let D = null, lastText = '';
  // served: how often to ask for data.json (?poll=MS; every two seconds unless told)
  const pollMs = Math.max(100, +(new URLSearchParams(location.search).get('poll') || 2000));

  // ---- small helpers -----------------------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else if (k === 'html') e.innerHTML = attrs[k];
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    }
    for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c.nodeType ? c : String(c));
    return e;
  }
  const svgNS = 'http://www.w3.org/2000/svg';
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(svgNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    for (const c of kids) e.append(c);
    return e;
  }
  const fmtBytes = b => b == null ? '–' : b < 1024 ? b + ' B' : b < 1048576 ? (b / 1024).toFixed(1) + ' KiB' : b < 1073741824 ? (b / 1048576).toFixed(1) + ' MiB' : (b / 1073741824).toFixed(2) + ' GiB';
  const fmtNs = ns => ns == null ? '–' : ns < 1e3 ? ns.toFixed(0) + ' ns' : ns < 1e6 ? (ns / 1e3).toFixed(1) + ' µs' : ns < 1e9 ? (ns / 1e6).toFixed(2) + ' ms' : (ns / 1e9).toFixed(2) + ' s';
  const fmtNum = (v, d = 3) => v == null ? '–' : Number(v).toPrecision(d);
  const table = (rows, cols) => el('table', null, el('tr', null, cols.map(c => el('th', { class: c.num ? 'num' : '' }, c.h))),
    rows.map(r => el('tr', null, cols.map(c => el('td', { class: c.num ? 'num' : '' }, c.f(r))))));
  const objRows = t => t.rows.map(r => Object.fromEntries(t.cols.map((c, i) => [c, r[i]])));
  const tip = el('div', { class: 'tooltip' });
  function showTip(ev, text) { tip.textContent = text; tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px'; }
  function hideTip() { tip.style.display = 'none'; }
  function piece(id) { return D.vocab && D.vocab[id] !== undefined ? D.vocab[id] : '#' + id; }
  // what a window of the data (lltrace serve keeps the last tokens of a long run) left out:
  // "showing the last 2,000 of 9,340 tokens"; null when nothing was (or older data says nothing)
  function leftOut(shown, total, first, what) {
    if (total == null || total <= shown) return null;
    const f = n => n.toLocaleString('en-US');
    return first + shown === total ? `showing the last ${f(shown)} of ${f(total)} ${what}`
      : `showing ${what} ${f(first + 1)} to ${f(first + shown)} of ${f(total)}`;
  }
  // a SentencePiece word start is U+2581: shown as a space, like the text
  const shown = s => String(s).replace(/\u2581/g, ' ');
  function section(id, title, explain, missing, body) {
    const s = el('section', { id: 'sec-' + id, 'data-section': id }, el('h2', null, title), el('p', { class: 'explain', html: explain }));
    if (missing) s.append(el('p', { class: 'missing' }, missing));
    else body(s);
    return s;
  }
  // white to blue (or to red for bad values) for v in [0, 1]
  function blue(v) { v = Math.max(0, Math.min(1, v)); return `rgb(${Math.round(255 - 215 * v)},${Math.round(255 - 160 * v)},${Math.round(255 - 40 * v)})`; }
  function heat(v) { v = Math.max(0, Math.min(1, v)); const h = 220 - 220 * v; return `hsl(${h},70%,${92 - 42 * v}%)`; }

  // ---- 1. the run --------------------------------------------------------------------------
  function secRun() {
    const r = D.run, p = r.params || {};
    const bpw = r.model_params ? (r.model_bytes * 8 / r.model_params) : null;
    const facts = [['model', r.model], ['architecture', r.arch], ['file type', r.file_type], ['bits per weight', bpw ? bpw.toFixed(2) : '–'],
      ['parameters', r.model_params ? (r.model_params / 1e6).toFixed(1) + ' M' : '–'], ['file size', fmtBytes(r.model_bytes)],
      ['layers', r.n_layer], ['embedding width', r.n_embd], ['heads (query / key-value)', r.n_head + ' / ' + r.n_head_kv],
      ['vocabulary', r.n_vocab], ['trained context', r.n_ctx_train], ['trace level', r.level], ['status', r.status],
      ['prompt tokens', r.n_prompt], ['generated tokens', r.n_gen],
      ['prompt time', fmtNs(r.t_prompt_ns)], ['generation', r.t_gen_ns && r.n_gen ? (r.n_gen / (r.t_gen_ns / 1e9)).toFixed(1) + ' tok/s' : '–'],
      ['lltrace / llama.cpp', r.lltrace_version + ' / ' + r.llama_tag]];
    return section('run', '1. The run',
      'A <b>model</b> is a stack of identical transformer <b>layers</b> between an embedding table (token id → vector) and an output head (vector → one score, a <b>logit</b>, per vocabulary entry). Each decode <b>step</b> runs the whole stack: the prompt in one step, then one step per generated token. <b>Bits per weight</b> is the file size over the parameter count: 32 for F32, about 4.5–5 for Q4_K_M, whose weights are stored in <b>quantization blocks</b>: 32 weights (Q8_0, Q4_0) or 256 (the K-quants) sharing a scale, each weight kept in a few bits.',
      null, s => {
        s.append(el('div', { class: 'kv' }, facts.map(([k, v]) => el('div', null, el('span', null, k), v ?? '–'))));
        s.append(el('h3', null, 'Parameters'), el('div', { class: 'kv' }, Object.entries(p).map(([k, v]) => el('div', null, el('span', null, k), String(v)))));
        s.append(el('h3', null, 'The text: prompt tokens (blue) and generated tokens (green)'));
        const tokCut = leftOut(D.tokens.length, D.tokens_total, D.tokens_first, 'tokens');
        if (tokCut) s.append(el('p', { class: 'note', id: 'tokens-cut' }, tokCut));
        if (D.steps_first > 0) s.append(el('p', { class: 'note', id: 'steps-cut' }, `Steps, times, the graph and the experts: those of the steps from ${D.steps_first.toLocaleString('en-US')} on (the run's last ${D.steps.n.toLocaleString('en-US')}).`));
        const strip = el('div', { class: 'strip', id: 'token-strip' });
        for (const t of D.tokens) {
          strip.append(el('span', { class: 'tok ' + (t[1] ? 'prompt' : 'gen'), 'data-seq': t[0], 'data-pos': t[3], 'data-token': t[4],
            title: `token ${t[4]} · position ${t[3]} · step ${t[2]}` }, t[5] === '' ? '∅' : t[5]));
        }
        s.append(strip);
        s.append(el('h3', null, 'Each generated token and the candidates it was chosen from'));
        if (!D.candidates) { s.append(el('p', { class: 'missing' }, D.missing.candidates)); return; }
        const candCut = leftOut(D.candidates.length, D.candidates_total, D.candidates_first, 'generated tokens');
        if (candCut) s.append(el('p', { class: 'note', id: 'candidates-cut' }, candCut));
        s.append(el('p', { class: 'note' }, `Probabilities are the softmax over the ${D.candidates[0] ? D.candidates[0][4].length : 0} largest logits kept per step (the parity records), so they are slightly larger than over the whole vocabulary; entropy (nats) of the same distribution: 0 is certain.`));
        s.append(table(D.candidates, [
          { h: 'step', num: 1, f: c => c[0] }, { h: 'position', num: 1, f: c => c[1] },
          { h: 'chosen', f: c => el('span', { class: 'tok gen' }, shown(piece(c[2]))) },
          { h: 'entropy', num: 1, f: c => fmtNum(c[3]) },
          { h: 'candidates (probability)', f: c => el('span', null, c[4].slice(0, 6).map(k => el('span', { style: 'margin-right:10px' },
            el('span', { class: 'bar', style: `width:${Math.round(40 * k[2])}px` }), ' ', shown(piece(k[0])), ' ', (100 * k[2]).toFixed(1) + '%'))) }]));
      });
  }

  // ---- 2. the graph ------------------------------------------------------------------------
  const opColor = op => /MUL_MAT/.test(op) ? '#cfe0fb' : /NORM/.test(op) ? '#d8f0d2' : /SOFT_MAX|FLASH|ROPE/.test(op) ? '#fde2c4' : /GET_ROWS|SET_ROWS|CPY|CONT/.test(op) ? '#eadcf7' : '#eef0f4';
  function secGraph() {
    const miss = D.graph ? null : 'The trace has no graph for this run.';
    return section('graph', '2. The graph',
      'llama.cpp computes each step as a <b>graph</b> of tensor operations (nodes), in this order. Per layer: an <b>RMS norm</b> (divide the vector by its root mean square, then scale it by learned weights), the query, key and value projections (matrix multiplies, <code>MUL_MAT</code>), <b>RoPE</b> (rotating pairs of query and key values by an angle that grows with the position, so attention can tell positions apart), writes into the <b>KV cache</b> (keys and values of every earlier position, kept so that each new token is computed once), attention, the output projection, a residual add, and the feed-forward block. Weights (yellow) and the KV cache and inputs (grey) are sources. Dashed nodes compute nothing (views, reshapes); a <i>fused</i> MUL is computed in its norm’s pass. Click a node for its record.',
      miss, s => {
        const nodes = objRows(D.graph.nodes);
        const firstLayer = nodes.findIndex(n => n.layer >= 0);
        const group = n => n.layer >= 0 ? n.layer : (nodes.indexOf(n) < firstLayer ? 'embed' : 'output');
        const groups = ['embed', ...Array.from({ length: D.run.n_layer || 0 }, (_, i) => i), 'output'];
        if (S.layer === null || !groups.includes(S.layer)) S.layer = 0;
        const pausedId = debugFollow(nodes, group); // lltrace serve --debug: the paused node's id, its layer shown
        const weights = Object.fromEntries(objRows(D.weights).map(w => [w.id, w]));
        s.append(el('p', { class: 'note' }, `Step ${D.graph.step}: ${nodes.length} nodes. The model as a stack: pick a layer.`));
        const bar = el('div', { class: 'layers', id: 'layer-stack' });
        for (const g of groups) bar.append(el('button', { class: g === S.layer ? 'on' : '', 'data-group': g, onclick: () => { S.layer = g; S.node = null; rerender(); } }, g === 'embed' ? 'embedding' : g === 'output' ? 'output head' : 'layer ' + g));
        s.append(bar);
        const box = el('div', { class: 'graph-box' }), info = el('div', { id: 'node-info' }, 'Click a node.');
        s.append(el('div', { class: 'graph-wrap' }, box, info));
        const mine = nodes.filter(n => group(n) === S.layer);
        const byIdx = Object.fromEntries(nodes.map(n => [n.idx, n]));
        const g = new dagre.graphlib.Graph();
        g.setGraph({ rankdir: 'TB', nodesep: 14, ranksep: 26, marginx: 8, marginy: 8 });
        g.setDefaultEdgeLabel(() => ({}));
        const label = new Map();
        const add = (id, lines, kind, rec) => { if (label.has(id)) return; const w = Math.max(...lines.map(l => l.length)) * 6.4 + 14; label.set(id, { lines, kind, rec }); g.setNode(id, { width: w, height: 14 * lines.length + 8 }); };
        for (const n of mine) {
          const shape = [n.ne0, n.ne1, n.ne2, n.ne3].filter((v, i, a) => a.slice(i).some(x => x !== 1) || i === 0);
          add('n' + n.idx, [n.op + (n.fused ? ' (fused)' : '') + (n.intervened ? ' · changed: ' + n.intervened : ''), n.name, '[' + shape.join(', ') + '] ' + n.type], n.is_noop ? 'noop' : 'node', n);
          for (const src of n.sources_json || []) {
            let sid;
            if (src.kind === 'node') {
              sid = 'n' + src.idx;
              if (group(byIdx[src.idx] || {}) !== S.layer) add(sid, [src.name, 'from ' + (byIdx[src.idx] ? (byIdx[src.idx].layer >= 0 ? 'layer ' + byIdx[src.idx].layer : 'outside the layers') : '?')], 'input', null);
            } else if (src.kind === 'weight') {
              const w = weights[src.weight_id];
              sid = 'w' + src.weight_id;
              add(sid, [src.name, (w ? w.type + ' ' : '') + fmtBytes(src.bytes)], 'weight', w);
            } else {
              sid = 'i' + src.name;
              add(sid, [src.name, fmtBytes(src.bytes)], 'input', null);
            }
            g.setEdge(sid, 'n' + n.idx);
          }
        }
        dagre.layout(g);
        const gg = g.graph();
        const svg = sv('svg', { width: gg.width + 16, height: gg.height + 16, id: 'graph-svg' });
        svg.append(sv('defs', {}, sv('marker', { id: 'arr', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' }, sv('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8a94a6' }))));
        for (const e of g.edges()) {
          const pts = g.edge(e).points;
          svg.append(sv('path', { d: 'M' + pts.map(p => p.x + ',' + p.y).join(' L'), fill: 'none', stroke: '#8a94a6', 'marker-end': 'url(#arr)' }));
        }
        for (const id of g.nodes()) {
          const n = g.node(id), L = label.get(id);
          const fill = L.kind === 'weight' ? '#fff3c4' : L.kind === 'input' ? '#eceff3' : opColor(L.lines[0]);
          const grp = sv('g', { class: 'node' + (S.node === id ? ' sel' : '') + (pausedId === id ? ' paused' : ''), transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})`, 'data-id': id });
          grp.append(sv('rect', { width: n.width, height: n.height, fill, 'stroke-dasharray': L.kind === 'noop' ? '4 3' : '' }));
          L.lines.forEach((t, i) => { const tx = sv('text', { x: 7, y: 15 + 14 * i, 'font-weight': i === 0 ? 600 : 400 }); tx.textContent = t; grp.append(tx); });
          grp.addEventListener('click', () => { S.node = id; showNode(info, L, id); svg.querySelectorAll('.node').forEach(x => x.classList.toggle('sel', x.dataset.id === id)); });
          svg.append(grp);
        }
        box.append(svg);
        if (S.node && label.has(S.node)) showNode(info, label.get(S.node), S.node);
      });
  }
  function showNode(info, L, id) {
    info.innerHTML = '';
    const r = L.rec;
    if (!r) { info.append(el('b', null, L.lines[0]), el('p', null, L.lines.slice(1).join(' · '))); return; }
    if (L.kind === 'weight') {
      info.append(el('h3', null, r.name), table(Object.entries(r), [{ h: 'field', f: x => x[0] }, { h: 'value', f: x => String(x[1]) }]));
      return;
    }
    const timing = D.time ? D.time.nodes.find(x => x.idx === r.idx) : null;
    const rows = [['idx', r.idx], ['op', r.op], ['name', r.name], ['layer', r.layer], ['shape', [r.ne0, r.ne1, r.ne2, r.ne3].join(' × ')], ['type', r.type],
      ['output bytes', fmtBytes(r.bytes)], ['view / no-op', (r.is_view ? 'view ' : '') + (r.is_noop ? 'no-op' : '') || 'no'], ['ran on', r.buffer],
      ['time in this step', fmtNs(r.time_ns)], ['median over the run', timing ? fmtNs(timing.median_ns) : '–'], ['p90 over the run', timing ? fmtNs(timing.p90_ns) : '–'],
      ['min / max', r.min == null ? '– (run with --level values)' : fmtNum(r.min) + ' / ' + fmtNum(r.max)], ['mean / std', r.mean == null ? '–' : fmtNum(r.mean) + ' / ' + fmtNum(r.std)],
      ['NaN / Inf', r.nan_inf ?? '–'], ['sources', r.sources_text || '–']];
    info.append(el('h3', null, r.name), table(rows, [{ h: 'field', f: x => x[0] }, { h: 'value', f: x => String(x[1]) }]));
  }

  // ---- 3. time -----------------------------------------------------------------------------
  function secTime() {
    return section('time', '3. Time',
      'Where the time of a step goes, from node times the CPU backend stamped (the same figures as <code>lltrace profile</code>). <b>Memory-bound</b> ops move many bytes per FLOP (matrix-vector multiplies while generating: each weight is read once per token); compute-bound ops reuse each byte many times (the prompt’s matrix-matrix multiplies). The roofline plots each op’s achieved GFLOP/s against its arithmetic intensity (FLOPs per byte moved), under the line of this machine’s memory bandwidth.',
      D.time ? null : D.missing.time, s => {
        const t = D.time;
        s.append(el('p', { class: 'note' }, `${t.timed_steps} timed steps, ${t.samples} node timings.`));
        if (D.steps_first > 0) s.append(el('p', { class: 'note' }, `Time of the steps from ${D.steps_first.toLocaleString('en-US')} on: the window the live page keeps of a long run.`));
        if (t.values_read) s.append(el('p', { class: 'note', id: 'values-read' }, 'Node times were taken while values were read (statistics, a dump or checkpoints, a live comparison): each read splits the graph and waits for it, which inflates the times several-fold. Time a run at --level timing without them.'));
        s.append(el('h3', null, 'Per phase'));
        const parts = [];
        for (const ph of ['prompt', 'gen', 'warmup']) for (const p of t.parts[ph] || []) if (p[3] > 0 && p[1] >= 0) parts.push([ph, ...p]);
        s.append(table(parts, [{ h: 'phase', f: p => p[0] }, { h: 'part', f: p => p[1] }, { h: 'time', num: 1, f: p => fmtNs(p[2]) },
          { h: 'per token', num: 1, f: p => p[3] ? fmtNs(p[2] / p[3]) : '–' }, { h: 'steps', num: 1, f: p => p[4] }]));
        const charts = el('div', { class: 'charts' });
        for (const ph of ['gen', 'prompt']) {
          const ops = t.ops.filter(o => o.phase === ph && o.est_ns > 0);
          if (!ops.length) continue;
          const box = el('div', null, el('h3', null, 'Per op, ' + (ph === 'gen' ? 'generation' : 'prompt')));
          const max = Math.max(...ops.map(o => o.est_ns));
          box.append(table(ops.slice(0, 14), [{ h: 'op', f: o => o.key }, { h: 'time', num: 1, f: o => fmtNs(o.est_ns) },
            { h: '', f: o => el('span', { class: 'bar', style: `width:${Math.round(120 * o.est_ns / max)}px` }) }, { h: 'share', num: 1, f: o => fmtNum(o.share, 3) + '%' },
            { h: 'median', num: 1, f: o => fmtNs(o.median_ns) }, { h: 'p90', num: 1, f: o => fmtNs(o.p90_ns) },
            { h: 'GB/s', num: 1, f: o => o.bytes_timed && o.time_ns ? fmtNum(o.bytes_timed / o.time_ns) : '–' },
            { h: 'GFLOP/s', num: 1, f: o => o.flops_timed && o.time_ns ? fmtNum(o.flops_timed / o.time_ns) : '–' }]));
          charts.append(box);
        }
        s.append(charts);
        // layer × op from the per-node figures
        const nodes = t.nodes, layers = [...new Set(nodes.map(n => n.layer))].sort((a, b) => a - b);
        const ops = [...new Set(nodes.map(n => n.op))].sort();
        const cell = {};
        for (const n of nodes) if (n.est_ns > 0) cell[n.layer + '|' + n.op] = (cell[n.layer + '|' + n.op] || 0) + n.est_ns;
        const cmax = Math.max(1, ...Object.values(cell));
        s.append(el('h3', null, 'Per layer × op (the whole run; darker is slower)'));
        s.append(el('table', { id: 'layer-op' }, el('tr', null, el('th', null, 'layer'), ops.map(o => el('th', null, o))),
          layers.map(l => el('tr', null, el('td', null, l < 0 ? 'outside' : l), ops.map(o => {
            const v = cell[l + '|' + o];
            return el('td', { class: 'num', style: v ? `background:${heat(v / cmax)}` : '' }, v ? fmtNs(v) : '');
          })))));
        s.append(el('h3', null, 'The slowest nodes (median of one run of the node)'));
        const slow = nodes.filter(n => n.median_ns != null).sort((a, b) => b.median_ns - a.median_ns).slice(0, 15);
        s.append(table(slow, [{ h: 'node', f: n => n.key }, { h: 'op', f: n => n.op }, { h: 'layer', num: 1, f: n => n.layer },
          { h: 'median', num: 1, f: n => fmtNs(n.median_ns) }, { h: 'p90', num: 1, f: n => fmtNs(n.p90_ns) }, { h: 'samples', num: 1, f: n => n.samples }]));
        s.append(el('h3', null, 'Roofline (generation and prompt, per op)'), roofline(t.ops.filter(o => o.bytes_timed > 0 && o.flops_timed > 0 && o.time_ns > 0)));
        s.append(el('h3', null, 'Time of every step'), stepChart());
      });
  }
  function roofline(ops) {
    const W = 520, H = 300, m = 44;
    const pts = ops.map(o => ({ o, x: o.flops_timed / o.bytes_timed, y: o.flops_timed / o.time_ns, bw: o.bytes_timed / o.time_ns }));
    const svg = sv('svg', { class: 'chart', width: W, height: H, id: 'roofline' });
    if (!pts.length) return el('p', { class: 'note' }, 'No op with both bytes and FLOPs was timed.');
    const lx = v => Math.log10(v), xs = pts.map(p => lx(p.x)), ys = pts.map(p => lx(p.y));
    const x0 = Math.floor(Math.min(...xs)) - 0.2, x1 = Math.ceil(Math.max(...xs)) + 0.2, y0 = Math.floor(Math.min(...ys)) - 0.2, y1 = Math.ceil(Math.max(...ys)) + 0.2;
    const X = v => m + (lx(v) - x0) / (x1 - x0) * (W - m - 10), Y = v => H - m + 10 - (lx(v) - y0) / (y1 - y0) * (H - m);
    svg.append(sv('rect', { x: m, y: 10, width: W - m - 10, height: H - m, fill: 'none', stroke: '#d9dee7' }));
    // the limit: this machine's measured bandwidth, else the best an op achieved
    const measured = D.time.bandwidth_gbs, best = measured || Math.max(...pts.map(p => p.bw));
    // y = bandwidth × intensity
    const a = Math.pow(10, x0), b = Math.pow(10, x1);
    svg.append(sv('line', { x1: X(a), y1: Y(best * a), x2: X(b), y2: Y(best * b), stroke: '#d11a2a', 'stroke-dasharray': '5 4' }));
    const bl = sv('text', { x: m + 6, y: 24 }); bl.textContent = measured ? `memory bandwidth: ${best.toFixed(1)} GB/s` : `best achieved: ${best.toFixed(1)} GB/s`; svg.append(bl);
    for (const p of pts) {
      const c = sv('circle', { cx: X(p.x), cy: Y(p.y), r: 4, fill: p.o.phase === 'gen' ? '#2e6bd1' : '#e08a00' });
      const t = sv('text', { x: X(p.x) + 6, y: Y(p.y) + 3 }); t.textContent = p.o.key;
      c.append(sv('title', {}, document.createTextNode(`${p.o.key} (${p.o.phase}): ${p.y.toFixed(2)} GFLOP/s, ${p.bw.toFixed(2)} GB/s, ${p.x.toFixed(2)} FLOP/byte`)));
      svg.append(c, t);
    }
    const xl = sv('text', { x: W / 2 - 60, y: H - 8 }); xl.textContent = 'FLOPs per byte (log)'; svg.append(xl);
    const yl = sv('text', { x: 4, y: 20 }); yl.textContent = 'GFLOP/s'; svg.append(yl);
    return el('div', null, svg, el('p', { class: 'legend' }, 'blue: generation, orange: prompt. ' + (measured
      ? `The line is the memory bandwidth lltrace report measured on the machine that wrote this page (a 64 MiB copy, bytes read and written: ${measured.toFixed(1)} GB/s): an op on the line is memory-bound; below it, something else limits it.`
      : 'The memory bandwidth was not measured: the line is the fastest op’s.')));
  }
  function stepChart() {
    const rows = D.steps.rows.filter(r => r[4] > 0), W = 520, H = 160, m = 36;
    const svg = sv('svg', { class: 'chart', width: W, height: H, id: 'step-chart' });
    if (!rows.length) return svg;
    const max = Math.max(...rows.map(r => r[4])), n = rows.length;
    rows.forEach((r, i) => svg.append(sv('rect', { x: m + i * (W - m) / n, y: H - 20 - (H - 30) * r[4] / max, width: Math.max(1, (W - m) / n - 1), height: (H - 30) * r[4] / max, fill: r[1] === 'prompt' ? '#e08a00' : '#2e6bd1' })));
    const t = sv('text', { x: 2, y: 12 }); t.textContent = fmtNs(max); svg.append(t);
    const note = D.steps.stride > 1 ? `every ${D.steps.stride}th of ${D.steps.n} steps shown (decimated)` : `${D.steps.n} steps`;
    return el('div', null, svg, el('p', { class: 'legend' }, `decode call time per step; ${note}`));
  }

  // ---- 4. attention ------------------------------------------------------------------------
  const posText = () => { const m = {}; for (const t of D.tokens) m[t[3]] = t[5]; return m; };
  function drawHeatmap(rows, cols, val, opts) {
    const cs = opts.cell, lm = opts.left || 0, tm = opts.top || 0;
    const c = el('canvas', { width: lm + cols * cs, height: tm + rows * cs });
    const g = c.getContext('2d');
    for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) {
      const v = val(r, k);
      g.fillStyle = v === null ? '#f4f5f7' : opts.color(v, r, k);
      g.fillRect(lm + k * cs, tm + r * cs, cs, cs);
      if (opts.bad && opts.bad(r, k)) { g.strokeStyle = '#d11a2a'; g.lineWidth = 2; g.strokeRect(lm + k * cs + 1, tm + r * cs + 1, cs - 2, cs - 2); }
    }
    g.fillStyle = '#5b6575'; g.font = '10px DejaVu Sans Mono, monospace';
    if (opts.rowLabel && cs >= 9) for (let r = 0; r < rows; r++) { g.textAlign = 'right'; g.fillText(opts.rowLabel(r).slice(0, 10), lm - 3, tm + r * cs + cs / 2 + 3); }
    if (opts.colLabel && cs >= 9) for (let k = 0; k < cols; k++) { g.save(); g.translate(lm + k * cs + cs / 2 + 3, tm - 3); g.rotate(-Math.PI / 2); g.textAlign = 'left'; g.fillText(opts.colLabel(k).slice(0, 10), 0, 0); g.restore(); }
    c.addEventListener('mousemove', ev => {
      const b = c.getBoundingClientRect(), k = Math.floor((ev.clientX - b.left - lm) / cs), r = Math.floor((ev.clientY - b.top - tm) / cs);
      if (r >= 0 && r < rows && k >= 0 && k < cols) showTip(ev, opts.tip(r, k)); else hideTip();
    });
    c.addEventListener('mouseleave', hideTip);
    return c;
  }
  function secAttention() {
    return section('attention', '4. Attention',
      'In each layer every <b>head</b> scores how much each query position (a row: a token being computed) should read from each key position (a column: this token or an earlier one), then a softmax turns the scores into <b>attention probabilities</b> that sum to 1 over a row. The model is causal: a token never reads later positions (the empty upper right). Heads sharing a key-value head (grouped-query attention) still have their own probabilities. Colour: white 0 → blue 1.',
      D.attention ? null : D.missing.values, s => {
        const steps = D.attention.steps, pt = posText();
        if (S.attStep === null || !steps.some(x => x.step === S.attStep)) S.attStep = steps[0].step;
        const st = steps.find(x => x.step === S.attStep);
        const layers = st.layers.map(l => l.layer);
        if (!layers.includes(S.attLayer)) S.attLayer = layers[0];
        const stepSel = el('select', { id: 'att-step', onchange: e => { S.attStep = +e.target.value; rerender(); } },
          steps.map(x => el('option', { value: x.step, ...(x.step === S.attStep ? { selected: '' } : {}) }, (x.step === 0 ? 'prompt' : 'step ' + x.step) + ` (positions ${x.pos0}–${x.pos0 + x.n_tokens - 1})`)));
        const layerSel = el('select', { id: 'att-layer', onchange: e => { S.attLayer = +e.target.value; rerender(); } },
          layers.map(l => el('option', { value: l, ...(l === S.attLayer ? { selected: '' } : {}) }, 'layer ' + l)));
        s.append(el('div', { class: 'controls' }, el('label', null, 'step'), stepSel, el('label', null, 'layer'), layerSel));
        if (D.attention.left_out_from >= 0) s.append(el('p', { class: 'note' }, `Steps from ${D.attention.left_out_from} on are left out to keep the page small.`));
        const L = st.layers.find(l => l.layer === S.attLayer);
        const [nPos, nTok, nHead] = L.ne, cell = Math.max(3, Math.min(22, Math.floor(360 / Math.max(nPos, nTok))));
        const heads = el('div', { class: 'heads', id: 'att-heads' });
        for (let h = 0; h < nHead; h++) {
          const v = L.v.slice(h * nTok * nPos, (h + 1) * nTok * nPos);
          const c = drawHeatmap(nTok, nPos, (r, k) => v[r * nPos + k], {
            cell, left: 70, top: 70, color: x => blue(x), rowLabel: r => shown(pt[st.pos0 + nTok - 1 - (nTok - 1 - r)] ?? ''), colLabel: k => shown(pt[k] ?? ''),
            tip: (r, k) => `head ${h}: query ${st.pos0 + r} ${JSON.stringify(pt[st.pos0 + r] ?? '')} → key ${k} ${JSON.stringify(pt[k] ?? '')}: ${v[r * nPos + k]}` });
          c.className = 'att';
          c.dataset.step = st.step; c.dataset.layer = L.layer; c.dataset.head = h; c.dataset.rows = nTok; c.dataset.cols = nPos;
          c._cells = v;
          heads.append(el('div', { class: 'heatmap' }, el('div', { class: 'cap' }, 'head ' + h), c));
        }
        s.append(heads);
      });
  }

  // ---- 5. the residual stream ---------------------------------------------------------------
  function secResidual() {
    return section('residual', '5. Residual stream',
      'Each layer adds its attention and feed-forward results to a running vector per token, the <b>residual stream</b>; the next layer reads it through a norm. Its size (the root mean square of its values, or the largest absolute value) per layer and position shows where values grow, and where a quantized model might overflow. A red outline marks a NaN or Inf.',
      D.residual ? null : D.missing.values, s => {
        const metric = S.resMetric, pt = posText(), val = {}, bad = {};
        let maxPos = 0;
        const layerIds = new Set();
        for (const st of D.residual.steps) for (const l of st.layers) {
          layerIds.add(l.layer);
          l.pos.forEach((p, i) => { val[l.layer + '|' + p] = l[metric][i]; bad[l.layer + '|' + p] = l.nonfinite[i]; maxPos = Math.max(maxPos, p); });
        }
        const layers = [...layerIds].sort((a, b) => b - a); // the last layer on top
        const vals = Object.values(val).filter(v => v != null && v > 0);
        const lo = Math.log(Math.min(...vals)), hi = Math.log(Math.max(...vals));
        const sel = el('select', { id: 'res-metric', onchange: e => { S.resMetric = e.target.value; rerender(); } },
          ['rms', 'absmax'].map(m => el('option', { value: m, ...(m === metric ? { selected: '' } : {}) }, m === 'rms' ? 'root mean square' : 'largest |value|')));
        s.append(el('div', { class: 'controls' }, el('label', null, 'size'), sel, el('span', { class: 'legend' }, `log colour scale: ${Math.exp(lo).toPrecision(3)} (pale blue) to ${Math.exp(hi).toPrecision(3)} (red)`)));
        const cell = Math.max(4, Math.min(22, Math.floor(900 / (maxPos + 1))));
        const c = drawHeatmap(layers.length, maxPos + 1, (r, k) => val[layers[r] + '|' + k] ?? null, {
          cell, left: 80, top: 70, color: v => heat(hi > lo ? (Math.log(Math.max(v, 1e-30)) - lo) / (hi - lo) : 0.5),
          bad: (r, k) => bad[layers[r] + '|' + k] > 0, rowLabel: r => layers[r] < 0 ? 'embedding' : 'layer ' + layers[r], colLabel: k => shown(pt[k] ?? ''),
          tip: (r, k) => `${layers[r] < 0 ? 'embedding' : 'layer ' + layers[r]} output, position ${k} ${JSON.stringify(pt[k] ?? '')}: ${metric} ${val[layers[r] + '|' + k] ?? '–'}${bad[layers[r] + '|' + k] ? ', ' + bad[layers[r] + '|' + k] + ' NaN/Inf' : ''}` });
        c.id = 'residual-map';
        s.append(c);
        if (D.residual.left_out_from >= 0) s.append(el('p', { class: 'note' }, `Steps from ${D.residual.left_out_from} on are left out to keep the page small.`));
        s.append(el('p', { class: 'note' }, 'The prompt step computes the last layer only at its last position (llama.cpp keeps only the rows whose logits are wanted): its other cells are empty.'));
      });
  }

  // ---- 6. the logit lens --------------------------------------------------------------------
  function secLens() {
    return section('lens', '6. Logit lens',
      'What the model would predict next if it stopped after each layer: the layer’s output put through the model’s final norm and output head, computed by lltrace from the dumped layer outputs and the model’s own weights (any quantization dequantized). Read a column upwards to watch a prediction form; the top row is the model’s real output, and the row above the table the token that actually came next. Shade: probability of the top token.',
      D.lens ? null : (D.missing.lens || 'no logit lens (report --lens-k 0)'), s => {
        const L = D.lens, pt = posText(), cell = {};
        let maxPos = 0;
        for (const r of L.rows) { cell[r[1] + '|' + r[2]] = r; maxPos = Math.max(maxPos, r[2]); }
        const layers = [...new Set(L.rows.map(r => r[1]))].sort((a, b) => b - a);
        const positions = Array.from({ length: maxPos + 1 }, (_, i) => i);
        const tab = el('table', { class: 'lens', id: 'lens-table' });
        tab.append(el('tr', null, el('th', null, 'position'), positions.map(p => el('th', null, p))));
        tab.append(el('tr', null, el('th', null, 'token here'), positions.map(p => el('td', null, shown(pt[p] ?? '')))));
        tab.append(el('tr', null, el('th', null, 'next token'), positions.map(p => el('td', { class: 'next' }, shown(pt[p + 1] ?? '')))));
        for (const l of layers) {
          tab.append(el('tr', null, el('th', null, 'layer ' + l + (l === L.n_layer - 1 ? ' (output)' : '')), positions.map(p => {
            const r = cell[l + '|' + p];
            if (!r) return el('td');
            const title = r[4].map((id, j) => `${JSON.stringify(shown(piece(id)))} ${(100 * r[5][j]).toFixed(1)}%`).join('\n') + `\nentropy ${fmtNum(r[3])} nats`;
            return el('td', { 'data-layer': l, 'data-pos': p, 'data-step': r[0], 'data-id': r[4][0], title, style: `background:${blue(r[5][0])}` }, shown(piece(r[4][0])).slice(0, 10));
          })));
        }
        s.append(el('div', { style: 'overflow:auto' }, tab));
      });
  }

  // ---- 7. memory ----------------------------------------------------------------------------
  function secMemory() {
    return section('memory', '7. Memory',
      'A step reads every weight of the model once (the embedding table only at the rows of its tokens), so generating one token moves the whole file through memory: that is why generation speed follows memory bandwidth and why quantization (fewer bits per weight) makes it faster. The strip is the GGUF file by offset, one box per tensor, coloured by when the drawn step first reads it (blue early, red late; grey: not read). The KV cache and activations add bytes that grow with the context.',
      D.weights.rows.length ? null : 'The trace has no weight registry for this run.', s => {
        const ws = objRows(D.weights).sort((a, b) => a.file_offset - b.file_offset);
        const first = {};
        if (D.graph) for (const n of objRows(D.graph.nodes)) for (const src of n.sources_json || []) if (src.kind === 'weight' && first[src.weight_id] === undefined) first[src.weight_id] = n.idx;
        const maxIdx = Math.max(1, ...Object.values(first));
        const total = ws.reduce((a, w) => a + w.bytes, 0);
        const strip = el('div', { class: 'memstrip', id: 'mem-strip' });
        for (const w of ws) {
          const f = first[w.id];
          strip.append(el('div', { style: `width:${100 * w.bytes / total}%;background:${f === undefined ? '#c9ced8' : `hsl(${220 - 220 * f / maxIdx},70%,60%)`}`,
            title: `${w.name}: ${w.type}, ${fmtBytes(w.bytes)} at offset ${w.file_offset}${f === undefined ? ', not read' : ', first read by node ' + f}` }));
        }
        s.append(strip, el('p', { class: 'note' }, `${ws.length} tensors, ${fmtBytes(total)} of weights.`));
        const gen = D.steps.rows.filter(r => r[1] === 'gen'), pr = D.steps.rows.filter(r => r[1] === 'prompt');
        const avg = (rows, i) => rows.length ? rows.reduce((a, r) => a + r[i] / r[3], 0) / rows.length : null;
        s.append(el('h3', null, 'Bytes per token (cost model, as lltrace show --stats)'), table([['prompt', pr], ['generation', gen]].filter(x => x[1].length), [
          { h: 'phase', f: x => x[0] }, { h: 'weights read', num: 1, f: x => fmtBytes(avg(x[1], 6)) }, { h: 'KV cache, activations, inputs read', num: 1, f: x => fmtBytes(avg(x[1], 7)) },
          { h: 'written', num: 1, f: x => fmtBytes(avg(x[1], 8)) }, { h: 'FLOPs', num: 1, f: x => fmtNum(avg(x[1], 9)) }]));
        secExperts(s);
      });
  }

  // a Mixture of Experts reads only the experts its tokens chose: per layer, how many tokens
  // each expert took over the run, and which experts the drawn step read
  function secExperts(s) {
    const X = D.experts;
    if (!X || !X.rows.length) return;
    const rows = objRows(X);
    const layers = [...new Set(rows.map(r => r.layer))].sort((a, b) => a - b);
    const nExp = 1 + Math.max(...rows.map(r => r.expert));
    const total = {};
    for (const r of rows) total[r.layer + ':' + r.expert] = (total[r.layer + ':' + r.expert] || 0) + r.tokens;
    const gstep = D.graph ? D.graph.step : rows[0].step;
    const read = {};
    for (const r of rows) if (r.step === gstep) (read[r.layer] = read[r.layer] || []).push(r.expert);
    const cols = [{ h: 'layer', f: l => l }];
    for (let e = 0; e < nExp; e++) cols.push({ h: 'expert ' + e, num: 1, f: l => total[l + ':' + e] || 0 });
    cols.push({ h: `read by step ${gstep}`, f: l => (read[l] || []).join(' ') });
    s.append(el('h3', null, 'Experts read (Mixture of Experts)'),
      el('p', { class: 'note' }, `A mixture-of-experts layer runs only the experts its router chose for each token, so a step reads those experts' weights and no others (lltrace show --experts). Tokens routed to each expert over the run${X.cut ? ' (cut: a long run)' : ''}, and the experts the drawn step read:`));
    const t = table(layers, cols);
    t.id = 'experts-table';
    s.append(el('div', { style: 'overflow:auto' }, t));
  }

  // ---- 8. comparison ------------------------------------------------------------------------
  function secComparison() {
    const C = D.comparison;
    return section('comparison', '8. Comparison',
      'Two runs of the same prompt (another quantization, another build) compared the way <code>lltrace parity</code> and <code>lltrace diff</code> do. Token by token: the <b>top-1 agreement</b>, the <b>KL divergence</b> of the two top-k distributions per step (0: the same), and the <b>first divergence</b> with each side’s <b>margin</b> (top-1 minus top-2 logit: a small margin is a near tie that rounding can flip). Tensor by tensor: the <b>NMSE</b> (squared error over the reference’s energy) and <b>cosine</b> of every dumped tensor of a step, in execution order, so you see where the error enters and how it grows through the layers.',
      C ? null : D.missing.comparison, s => {
        if (C.live) s.append(el('p', { class: 'note' }, 'This run was compared live with a reference dump (run --reference): its node_diffs, node by node.'));
        const side = x => x.run === undefined ? x.trace : `${x.trace} run ${x.run}: ${x.model} (${x.file_type})`;
        s.append(el('div', { class: 'kv' }, el('div', null, el('span', null, 'A'), side(C.a)), el('div', null, el('span', null, 'B'), side(C.b))));
        const P = C.parity;
        s.append(el('h3', null, 'Token by token'));
        if (!P) s.append(el('p', { class: 'missing' }, C.why_parity));
        else {
          const fd = P.first_diff;
          s.append(el('p', { id: 'cmp-verdict', 'data-verdict': P.verdict, 'data-first-diff': fd, 'data-top1': P.n_top1, 'data-compared': P.n_compared },
            `${P.verdict}: top-1 agreement ${P.n_top1} of ${P.n_compared} compared steps, mean KL ${fmtNum(P.mean_kl)} nats` +
            (fd >= 0 ? `; first divergence at step ${fd}: A chose ${JSON.stringify(shown(piece(P.steps[fd][1])))} (margin ${fmtNum(P.margin_a)}), B chose ${JSON.stringify(shown(piece(P.steps[fd][2])))} (margin ${fmtNum(P.margin_b)})` : '')));
          const cmp = P.steps.filter(x => x[3]);
          const kmax = Math.max(1e-12, ...cmp.map(x => x[7] || 0));
          s.append(table(P.steps, [{ h: 'step', num: 1, f: x => x[0] }, { h: 'A', f: x => el('span', { class: 'tok gen' }, shown(piece(x[1]))) },
            { h: 'B', f: x => el('span', { class: 'tok ' + (x[1] === x[2] ? 'gen' : 'prompt') }, shown(piece(x[2]))) },
            { h: 'compared', f: x => x[3] ? (x[0] === fd ? 'first difference' : 'yes') : 'no: different text before' },
            { h: 'KL', num: 1, f: x => x[3] ? fmtNum(x[7]) : '' }, { h: '', f: x => x[3] ? el('span', { class: 'bar', style: `width:${Math.round(100 * (x[7] || 0) / kmax)}px` }) : '' },
            { h: 'max |Δlogit|', num: 1, f: x => x[3] ? fmtNum(x[6]) : '' }]));
        }
        const T = C.tensors;
        s.append(el('h3', null, 'Tensor by tensor'));
        if (!T) { s.append(el('p', { class: 'missing' }, C.why_tensors)); return; }
        const stepOf = n => { const m = /#(\d+)/.exec(n); return m ? +m[1] : -1; };
        const steps = [...new Set(T.rows.map(r => stepOf(r[0])))].sort((a, b) => a - b);
        if (S.cmpStep === undefined || !steps.includes(S.cmpStep)) S.cmpStep = steps[0];
        s.append(el('div', { class: 'controls' }, el('label', null, 'step'), el('select', { id: 'cmp-step', onchange: e => { S.cmpStep = +e.target.value; rerender(); } },
          steps.map(x => el('option', { value: x, ...(x === S.cmpStep ? { selected: '' } : {}) }, x === 0 ? 'prompt' : 'step ' + x))),
          el('span', { class: 'legend' }, `${T.n_compared} tensors compared, ${T.n_exceed} beyond the tolerance` + (T.mean_cosine != null ? `; mean cosine ${fmtNum(T.mean_cosine, 6)}` : ''))));
        const rows = T.rows.filter(r => stepOf(r[0]) === S.cmpStep);
        const nm = rows.map(r => r[3]).filter(v => v > 0), lo = Math.log10(Math.min(...nm, 1)), hi = Math.log10(Math.max(...nm, 1e-12));
        // NMSE along the execution order: a line that climbs through the layers
        const W = 620, H = 160, m = 40, svg = sv('svg', { class: 'chart', width: W, height: H, id: 'cmp-chart' });
        const X = i => m + i * (W - m - 10) / Math.max(1, rows.length - 1), Y = v => H - 20 - (H - 30) * (hi > lo ? (Math.log10(Math.max(v, 1e-30)) - lo) / (hi - lo) : 0.5);
        svg.append(sv('path', { d: rows.map((r, i) => (i ? 'L' : 'M') + X(i) + ',' + Y(r[3])).join(' '), fill: 'none', stroke: '#2e6bd1' }));
        const t1 = sv('text', { x: 2, y: 14 }); t1.textContent = 'NMSE 1e' + hi.toFixed(1); svg.append(t1);
        const t2 = sv('text', { x: 2, y: H - 22 }); t2.textContent = '1e' + lo.toFixed(1); svg.append(t2);
        s.append(svg);
        s.append(el('table', { id: 'cmp-tensors' }, el('tr', null, ['tensor', 'layer', 'NMSE', 'cosine', 'max |A−B|', 'within tolerance'].map(h => el('th', null, h))),
          rows.map(r => el('tr', { 'data-name': r[0], 'data-nmse': r[3] }, el('td', null, r[0]), el('td', { class: 'num' }, r[1]),
            el('td', { class: 'num', style: `background:${heat(hi > lo ? (Math.log10(Math.max(r[3], 1e-30)) - lo) / (hi - lo) : 0)}` }, fmtNum(r[3])),
            el('td', { class: 'num' }, fmtNum(r[4], 7)), el('td', { class: 'num' }, fmtNum(r[5])), el('td', null, r[2] ? 'yes' : 'no')))));
      });
  }

  // ---- 9. causal tracing ---------------------------------------------------------------------
  // lltrace causal -o: a row per layer (the last on top), a column per corrupted prompt token,
  // the colour the clean answer's probability with that cell patched from the clean run
  function secCausal() {
    const C = D.causal;
    return section('causal', '9. Causal tracing',
      'Which layer and position carry the answer? The <b>clean</b> prompt and a <b>corrupted</b> one (a word changed, the same number of tokens) ran once each; the clean run’s top-1 token is the <b>answer</b>. Then, for every layer and position, the corrupted prompt ran again with that one position of the layer’s node <b>patched</b> with the clean run’s values. A cell is the answer’s probability in that run: where it comes back, that position of that layer carries what the changed word said (<code>lltrace causal</code>, docs/debugging.md). Colour: white 0 → blue 1; grey: the node has no row there (the last layer keeps the output row only).',
      C ? null : (D.missing && D.missing.causal) || 'no causal tracing result of this run', s => {
        const tok = t => JSON.stringify(shown(t));
        s.append(el('div', { class: 'kv', id: 'causal-facts' }, [['answer (clean top-1)', tok(C.answer_piece)], ['corrupted run’s top-1', tok(C.corrupt_top_piece)],
          ['p(answer), clean run', fmtNum(C.clean_p, 4)], ['p(answer), corrupted run', fmtNum(C.corrupt_p, 4)],
          ['node patched', C.node + '-L'], ['runs (clean / corrupted)', C.clean_run + ' / ' + C.corrupt_run]]
          .map(([k, v]) => el('div', null, el('span', null, k), v))));
        const diff = C.tokens.map((t, i) => t !== C.clean_tokens[i]);
        const at = (r, k) => (C.n_layer - 1 - r) * C.n_pos + k; // row 0 is the last layer
        const cell = Math.max(12, Math.min(40, Math.floor(900 / C.n_pos)));
        const c = drawHeatmap(C.n_layer, C.n_pos, (r, k) => C.n_changed[at(r, k)] > 0 ? C.p[at(r, k)] : null, {
          cell, left: 70, top: 70, color: v => blue(v),
          rowLabel: r => 'layer ' + (C.n_layer - 1 - r), colLabel: k => shown(C.tokens[k]) + (diff[k] ? ' (' + shown(C.clean_tokens[k]).trim() + ')' : ''),
          tip: (r, k) => { const i = at(r, k); return `${C.node}-${C.n_layer - 1 - r}, position ${k} ${tok(C.tokens[k])}` +
            (diff[k] ? ` (clean ${tok(C.clean_tokens[k])})` : '') + (C.n_changed[i] > 0 ? `\np(${tok(C.answer_piece)}) ${fmtNum(C.p[i], 4)}, logit diff ${fmtNum(C.logit_diff[i], 4)}` : '\nno row here: nothing patched'); } });
        c.id = 'causal-map';
        Object.assign(c.dataset, { rows: C.n_layer, cols: C.n_pos, cell, left: 70, top: 70 });
        const g = c.getContext('2d'); // a grid, so that cells near 0 (white) still show
        g.strokeStyle = '#d9dee7';
        for (let r = 0; r < C.n_layer; r++) for (let k = 0; k < C.n_pos; k++) g.strokeRect(70 + k * cell + 0.5, 70 + r * cell + 0.5, cell - 1, cell - 1);
        s.append(el('div', { class: 'heatmap' }, c), el('p', { class: 'note' }, `Logit diff: the answer’s logit minus that of the corrupted run’s top-1 ${tok(C.corrupt_top_piece)} (clean run ${fmtNum(C.clean_logit_diff, 4)}, corrupted ${fmtNum(C.corrupt_logit_diff, 4)}). A changed token shows the clean one in brackets.`));
      });
  }

  // ---- the debugger (lltrace serve --debug) ------------------------------------------------
  // A panel above the sections, drawn from debug.json (asked for every 500 ms while serve has a
  // debugger; {"state": "none"} means it has none and the panel never shows): where the program is paused,
  // the node's values as a heatmap and a histogram, the breakpoints, and the buttons that send
  // it on. The graph section marks the paused node and shows its layer at each new pause.
  const DBG = { state: null, stops: -1, jump: false, paused: null };
  function debugFollow(nodes, group) {
    const p = DBG.state && DBG.state.state === 'paused' ? DBG.state.stopped : null;
    if (!p) return null;
    const n = nodes.find(x => x.idx === p.index && x.name === p.node);
    DBG.inGraph = !!n;
    const note = document.getElementById('dbg-marked'); // (the data may come after the panel)
    if (note) note.textContent = debugMarked(p);
    if (!n) return null;
    const id = 'n' + n.idx;
    if (DBG.jump) { S.layer = group(n); S.node = id; DBG.jump = false; }
    return id;
  }
  // where the graph section shows the paused node p
  function debugMarked(p) {
    const g = D && D.graph ? D.graph.step : null;
    if (!DBG.inGraph || g === null) return `Not in the graph section's graph${g === null ? '' : ' (of step ' + g + ')'}.`;
    return 'Marked in the graph section' + (g !== p.step ? ` (which draws step ${g}: the node at the same place).` : '.');
  }
  function debugSend(what) {
    fetch('debug/' + what, { method: 'POST', cache: 'no-store' })
      .then(r => r.ok ? null : r.text().then(t => { DBG.refused = t.trim(); }))
      .catch(e => { DBG.refused = e.message; })
      .finally(debugPoll);
  }
  // flat index of the values (ggml order) → "[i0, i1, i2, i3]"
  function debugIndex(ne, i) { const ix = []; for (const n of ne) { ix.push(i % n); i = Math.floor(i / n); } return '[' + ix.join(', ') + ']'; }
  function debugHeatmap(v) {
    // ne0 wrapped into lines of at most 64 cells, so that a vector is not a one-pixel strip
    const ne = v.ne, n0 = ne[0], vals = v.values, W = Math.min(n0, 64), wraps = Math.ceil(n0 / W);
    const rows = (vals.length / n0) * wraps;
    const at = (r, k) => { const i0 = (r % wraps) * W + k; return i0 < n0 ? Math.floor(r / wraps) * n0 + i0 : -1; };
    let amax = 0;
    for (const x of vals) if (x !== null && Math.abs(x) > amax) amax = Math.abs(x);
    const c = drawHeatmap(rows, W, (r, k) => { const i = at(r, k); return i < 0 ? null : vals[i]; }, {
      cell: rows > 64 ? 4 : 10,
      color: x => x >= 0 ? blue(amax ? x / amax : 0) : `rgb(255,${Math.round(255 - 200 * -x / amax)},${Math.round(255 - 200 * -x / amax)})`,
      bad: (r, k) => { const i = at(r, k); return i >= 0 && vals[i] === null; }, // NaN or Inf (null in JSON): outlined
      tip: (r, k) => { const i = at(r, k); return i < 0 ? '' : `${debugIndex(ne, i)} = ${vals[i] === null ? 'NaN/Inf' : vals[i]}`; },
    });
    c.id = 'dbg-heatmap';
    return c;
  }
  function debugHistogram(vals) {
    const xs = vals.filter(x => x !== null), bins = 40, w = 8, h = 90;
    const c = el('canvas', { id: 'dbg-histogram', width: bins * w + 60, height: h + 18 });
    if (!xs.length) return c;
    const lo = Math.min(...xs), hi = Math.max(...xs), span = hi - lo || 1, counts = new Array(bins).fill(0);
    for (const x of xs) counts[Math.min(bins - 1, Math.floor((x - lo) / span * bins))]++;
    const top = Math.max(...counts), g = c.getContext('2d');
    g.fillStyle = '#4a78c2';
    counts.forEach((k, i) => { const bh = k / top * h; g.fillRect(i * w, h - bh, w - 1, bh); });
    g.fillStyle = '#5b6575'; g.font = '10px DejaVu Sans Mono, monospace';
    g.fillText(fmtNum(lo), 0, h + 12); g.textAlign = 'right'; g.fillText(fmtNum(hi), bins * w, h + 12);
    return c;
  }
  function debugPanel() {
    const d = DBG.state, box = document.getElementById('sec-debug');
    box.innerHTML = '';
    box.hidden = false;
    box.append(el('h2', null, 'Debugger'));
    const p = d.state === 'paused' ? d.stopped : null;
    const status = p ? `paused at ${p.node} (${p.breakpoint ? 'breakpoint ' + p.breakpoint : p.reason})`
      : d.state === 'running' ? 'running'
      : 'the program ended' + (d.gone ? ': ' + d.gone : '');
    box.append(el('p', { id: 'dbg-state', 'data-state': d.state, 'data-stops': d.stops }, el('b', null, status)));
    const bar = el('div', { class: 'layers', id: 'dbg-buttons' });
    for (const [what, label] of [['continue', 'continue'], ['next', 'next node'], ['step-layer', 'next layer'], ['step-token', 'next token']]) {
      bar.append(el('button', { id: 'dbg-' + what, disabled: p ? null : '', onclick: () => debugSend(what) }, label));
    }
    box.append(bar);
    if (DBG.refused) box.append(el('p', { class: 'missing', id: 'dbg-refused' }, DBG.refused));
    if (d.error) box.append(el('p', { class: 'missing', id: 'dbg-error' }, d.error.message));
    if (p) {
      const where = [['node', p.node], ['step', p.step], ['index in the graph', p.index], ['op', p.op], ['layer', p.layer < 0 ? 'outside the layers' : p.layer],
        ['shape', p.ne.join(' × ')], ['type', p.type], ['device', p.device], ['first position', p.pos], ['tokens in the decode', p.n_tokens]];
      box.append(el('div', { id: 'dbg-where' }, table(where, [{ h: 'paused at', f: x => x[0] }, { h: '', f: x => String(x[1]) }]), el('p', { class: 'note', id: 'dbg-marked' }, debugMarked(p))));
      const st = d.stats && d.stats.stats;
      if (st) box.append(el('p', { id: 'dbg-stats' }, `all ${st.n} values: min ${fmtNum(st.min)}, max ${fmtNum(st.max)}, mean ${fmtNum(st.mean)}, std ${fmtNum(st.std)}, NaN ${st.nan}, Inf ${st.inf}, zeros ${st.zero}`));
      else if (d.stats && d.stats.message) box.append(el('p', { class: 'missing' }, d.stats.message));
      const v = d.values;
      if (v && v.values) {
        const total = st ? st.n : v.values.length;
        box.append(el('p', { class: 'note', id: 'dbg-values-note' }, v.values.length < total
          ? `The first ${v.values.length.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} values (slice ${v.slice}; at most ${d.max_values} are sent), in lines of at most 64 (ggml order, ne0 first); red below 0, blue above, hover for the index:`
          : `All ${total.toLocaleString('en-US')} values, in lines of at most 64 (ggml order, ne0 first); red below 0, blue above, hover for the index:`));
        box.append(el('div', { class: 'graph-wrap' }, debugHeatmap(v), el('div', null, el('p', { class: 'note' }, 'Histogram of the values shown:'), debugHistogram(v.values))));
      } else if (v && v.message) box.append(el('p', { class: 'missing' }, v.message));
    }
    const bps = d.breakpoints ? d.breakpoints.breakpoints : [];
    box.append(el('h3', null, 'Breakpoints'));
    box.append(bps.length ? table(bps, [{ h: 'id', f: b => b.id }, { h: 'kind', f: b => b.kind }, { h: 'spec', f: b => b.spec }, { h: 'hits', f: b => b.hits },
      { h: '', f: b => el('button', { class: 'dbg-delete', onclick: () => debugSend('delete?ids=' + b.id) }, 'delete') }]) : el('p', { class: 'note' }, 'None.'));
    const input = el('input', { id: 'dbg-spec', placeholder: 'kq_soft_max-1 step:2', size: 30 });
    box.append(el('p', null, 'break at ', input, ' ', el('button', { id: 'dbg-break', onclick: () => { if (input.value.trim()) debugSend('break?spec=' + encodeURIComponent(input.value.trim())); } }, 'add'),
      el('span', { class: 'note' }, ' (a node glob, op:OP, layer:L, step:S, seq:N, if nan, if absmax>X: docs/debugging.md)')));
  }
  function debugPoll() {
    clearTimeout(DBG.timer);
    fetch('debug.json', { cache: 'no-store' }).then(r => {
      return r.json().then(d => {
        if (d.state === 'none') return null; // serve has no debugger: no panel, no more asking
        const fresh = d.stops !== DBG.stops;
        if (JSON.stringify(d) === DBG.text && !DBG.refused) return true;
        DBG.text = JSON.stringify(d);
        DBG.state = d;
        if (fresh && d.state === 'paused') { DBG.stops = d.stops; DBG.jump = true; }
        const y = window.scrollY;
        DBG.inGraph = false;
        if (D) rerender(); // the graph marks the paused node (or no longer)
        debugPanel();
        DBG.refused = null;
        window.scrollTo(0, y);
        R.debugRenders = (R.debugRenders || 0) + 1;
        return true;
      });
    }).catch(e => { const b = document.getElementById('sec-debug'); if (b && DBG.state) b.prepend(el('p', { class: 'missing' }, 'the server did not answer: ' + e.message)); return true; })
      .then(again => { if (again) DBG.timer = setTimeout(debugPoll, 500); });
  }

  // ---- the page -----------------------------------------------------------------------------
  const sections = [['run', secRun], ['graph', secGraph], ['time', secTime], ['attention', secAttention], ['residual', secResidual], ['lens', secLens], ['memory', secMemory], ['comparison', secComparison], ['causal', secCausal]];
  function rerender() {
    const y = window.scrollY;
    const main = document.getElementById('main');
    main.innerHTML = '';
    for (const [name, fn] of sections) {
      try { main.append(fn()); } catch (e) { main.append(el('section', { id: 'sec-' + name }, el('p', { class: 'missing' }, 'This section failed to draw: ' + e.message))); throw e; }
    }
    window.scrollTo(0, y);
  }
  function render(d) {
    D = R.data = d;
    const ivs = Array.isArray(d.run.interventions) ? d.run.interventions : [];
    document.getElementById('title').textContent = `· run ${d.run.run} · ${d.run.model} (${d.run.file_type})` +
      (ivs.length ? ` · intervened: ${ivs.map(v => v.kind + ' ' + v.node).join(', ')}` : '');
    document.title = `lltrace report · run ${d.run.run} · ${d.run.model}`;
    const nav = document.getElementById('nav');
    nav.innerHTML = '';
    for (const [name] of sections) nav.append(el('a', { href: '#sec-' + name }, name));
    const live = document.getElementById('live');
    live.innerHTML = '';
    live.append(el('span', null, (d.running ? 'the run is being written: ' : '') + 'steps: '), el('span', { id: 'n-steps' }, d.run.steps));
    rerender();
    R.renders++;
    R.ready = true;
  }
  function poll() {
    fetch('data.json', { cache: 'no-store' }).then(r => r.text()).then(t => {
      if (t === lastText) return;
      lastText = t;
      const d = JSON.parse(t);
      if (d.waiting) { document.getElementById('live').textContent = 'waiting for the run: ' + d.waiting; R.waiting = d.waiting; return; }
      render(d);
    }).catch(e => { document.getElementById('live').textContent = 'the server did not answer: ' + e.message; })
      .finally(() => setTimeout(poll, pollMs));
  }
  document.body.append(tip);
  const inline = document.getElementById('llt-data').textContent.trim();
  if (inline) render(JSON.parse(inline));
  else {
    document.getElementById('main').before(el('section', { id: 'sec-debug', hidden: '' }));
    poll();
    debugPoll();
  }
})();

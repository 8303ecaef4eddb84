// The report page in headless Chromium (Debian's chromium, driven by playwright-core from
// report/node_modules), for cli-report.sh and cli-serve.sh.
//   node report-page.js check  PAGE.html EXPECTED.json SHOTS_DIR   the offline report
//   node report-page.js serve  URL STEPS_FILE                      the live page: step counts
//   node report-page.js window URL EXPECTED.json                   the live page of a long run
//   node report-page.js experts PAGE.html EXPECTED.json             a MoE run: the experts table
//   node report-page.js causal PAGE.html EXPECTED.json SHOTS_DIR NAME  the causal tracing heatmap (NAME.png)
// EXPECTED.json is computed by the calling test from the dump and the trace (Python), never
// by lltrace. Prints "FAIL ..." lines and exits 1 on any failure.
'use strict';
const path = require('path');
const fs = require('fs');
const { chromium } = require(path.join(process.env.LLTRACE_NODE_MODULES, 'playwright-core'));

let fails = 0;
const fail = msg => { console.log('FAIL ' + msg); fails++; };

async function open(url) {
  const browser = await chromium.launch({ executablePath: process.env.LLTRACE_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const events = { errors: [], requests: [] };
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') events.errors.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', e => events.errors.push('page error: ' + e.message));
  page.on('request', r => events.requests.push(r.url()));
  await page.goto(url);
  return { browser, page, events };
}

// the page, drawn within timeout ms; null (and a failure said) when it never finishes
async function openDrawn(url, timeout) {
  const o = await open(url);
  try {
    await o.page.waitForFunction(() => window.lltReport && window.lltReport.ready, null, { timeout });
    return o;
  } catch (e) {
    fail('the page never finished drawing: ' + o.events.errors.join('; '));
    await o.browser.close();
    return null;
  }
}

async function check(file, expectedFile, shots) {
  const want = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const url = 'file://' + path.resolve(file);
  const drawn = await openDrawn(url, 20000);
  if (!drawn) return;
  const { browser, page, events } = drawn;
  // every section, each with its heading; none failed to draw
  const sections = ['run', 'graph', 'time', 'attention', 'residual', 'lens', 'memory', 'comparison'];
  for (const s of sections) {
    const n = await page.locator('#sec-' + s + ' h2').count();
    if (n !== 1) fail(`section ${s}: ${n} headings, wanted 1`);
    const failed = await page.locator('#sec-' + s + ' .missing').allTextContents();
    if (failed.some(t => /failed to draw/.test(t))) fail(`section ${s}: ${failed.join(' ')}`);
  }
  for (const s of want.sections_with_data) {
    const miss = await page.locator('#sec-' + s + ' > p.missing').count();
    if (miss) fail(`section ${s} says its data is missing: ${await page.locator('#sec-' + s + ' > p.missing').first().textContent()}`);
  }
  // a timed run that read values says its node times are inflated (the caller's run is checkpointed)
  if ('values_read' in want) {
    const n = await page.locator('#values-read').count();
    if (n !== (want.values_read ? 1 : 0)) fail(`the note on node times taken while values were read: ${n}, wanted ${want.values_read ? 1 : 0}`);
  }
  // the token strip: every token, in order, with its text
  const toks = await page.locator('#token-strip .tok').evaluateAll(ns => ns.map(n => ({ text: n.textContent, token: +n.dataset.token })));
  if (toks.length !== want.tokens.length) fail(`token strip: ${toks.length} tokens, wanted ${want.tokens.length}`);
  want.tokens.forEach((t, i) => {
    const got = toks[i];
    if (!got || got.token !== t.token || got.text !== (t.piece === '' ? '∅' : t.piece)) fail(`token ${i}: got ${JSON.stringify(got)}, wanted ${JSON.stringify(t)}`);
  });
  // the attention heatmaps of the chosen step and layer: n_head maps of queries × keys, the dump's values
  await page.selectOption('#att-step', String(want.attention.step));
  await page.selectOption('#att-layer', String(want.attention.layer));
  const maps = await page.locator('canvas.att').evaluateAll(cs => cs.map(c => ({ step: +c.dataset.step, layer: +c.dataset.layer, head: +c.dataset.head, rows: +c.dataset.rows, cols: +c.dataset.cols, v: Array.from(c._cells) })));
  const a = want.attention;
  if (maps.length !== a.n_head) fail(`attention: ${maps.length} heatmaps, wanted n_head = ${a.n_head}`);
  let cells = 0;
  for (const m of maps) {
    if (m.step !== a.step || m.layer !== a.layer) fail(`attention map of step ${m.step} layer ${m.layer}, wanted step ${a.step} layer ${a.layer}`);
    if (m.rows !== a.rows || m.cols !== a.cols) fail(`attention head ${m.head}: ${m.rows} × ${m.cols} cells, wanted ${a.rows} × ${a.cols}`);
    const ref = a.values[m.head];
    for (let i = 0; i < ref.length; i++) {
      if (!(Math.abs(m.v[i] - ref[i]) <= 1e-6 * Math.max(1e-3, Math.abs(ref[i])))) { fail(`attention head ${m.head} cell ${i}: ${m.v[i]}, the dump has ${ref[i]}`); break; }
      cells++;
    }
  }
  if (cells !== a.n_head * a.rows * a.cols) fail(`attention: ${cells} cells compared, wanted ${a.n_head * a.rows * a.cols}`);
  // the logit lens' last layer: the run's own top-1 at the position each generated token came from
  for (const g of want.generated) {
    const got = await page.locator(`#lens-table td[data-layer="${want.n_layer - 1}"][data-pos="${g.pos}"]`).evaluateAll(ns => ns.map(n => +n.dataset.id));
    if (got.length !== 1 || got[0] !== g.token) fail(`logit lens, last layer, position ${g.pos}: token ${got}, the run chose ${g.token}`);
  }
  // the comparison: the first divergence, top-1 agreement and one tensor's NMSE, as computed by the test
  if (want.comparison) {
    const c = want.comparison;
    const v = await page.locator('#cmp-verdict').evaluateAll(ns => ns.map(n => ({ first: +n.dataset.firstDiff, top1: +n.dataset.top1, compared: +n.dataset.compared })));
    if (v.length !== 1 || v[0].first !== c.first_diff || v[0].top1 !== c.top1 || v[0].compared !== c.compared) fail(`comparison: ${JSON.stringify(v)}, wanted first ${c.first_diff}, top-1 ${c.top1} of ${c.compared}`);
    await page.selectOption('#cmp-step', '0');
    const nm = await page.locator(`#cmp-tensors tr[data-name="${c.tensor}"]`).evaluateAll(ns => ns.map(n => +n.dataset.nmse));
    if (nm.length !== 1 || !(Math.abs(nm[0] - c.nmse) <= 1e-3 * c.nmse)) fail(`comparison: NMSE of ${c.tensor} ${nm}, wanted ${c.nmse}`);
  }
  // a graph node's record opens on a click
  await page.locator('#graph-svg .node').first().click();
  if (!/idx|name/.test(await page.locator('#node-info').textContent())) fail('clicking a graph node shows no record');
  // screenshots of each section
  fs.mkdirSync(shots, { recursive: true });
  for (const s of sections) await page.locator('#sec-' + s).screenshot({ path: path.join(shots, `report-${s}.png`) });
  await page.screenshot({ path: path.join(shots, 'report-page.png'), fullPage: true });
  if (events.errors.length) fail('console: ' + events.errors.join(' | '));
  const others = events.requests.filter(u => u !== url);
  if (others.length) fail('network requests: ' + others.join(' '));
  await browser.close();
}

// the live page: the step count it shows, every 250 ms, until STEPS_FILE holds the final count
async function serve(url, stepsFile) {
  const { browser, page, events } = await open(url);
  const seen = [];
  const t0 = Date.now();
  let final = null;
  while (Date.now() - t0 < 120000) {
    const n = await page.evaluate(() => { const e = document.getElementById('n-steps'); return e ? +e.textContent : null; });
    if (n !== null && seen[seen.length - 1] !== n) seen.push(n);
    if (final === null && fs.existsSync(stepsFile) && fs.readFileSync(stepsFile, 'utf8').trim()) final = +fs.readFileSync(stepsFile, 'utf8');
    if (final !== null && n === final) break;
    await page.waitForTimeout(250);
  }
  console.log('step counts seen: ' + seen.join(' '));
  if (final === null) fail('the run never ended');
  else if (seen[seen.length - 1] !== final) fail(`the page shows ${seen[seen.length - 1]} steps, the run has ${final}`);
  if (seen.length < 2) fail(`the page showed ${seen.length} step counts (${seen.join(', ')}), wanted the count to grow while the run was written`);
  for (let i = 1; i < seen.length; i++) if (seen[i] < seen[i - 1]) fail(`the step count went down: ${seen.join(', ')}`);
  if (events.errors.length) fail('console: ' + events.errors.join(' | '));
  const origin = new URL(url).origin + '/';
  const others = events.requests.filter(u => !u.startsWith(origin));
  if (others.length) fail('requests elsewhere: ' + others.join(' '));
  await browser.close();
}

// the live page of a long run: the window of the last tokens, and the notes saying what it left
// out. EXPECTED.json: {tokens_note, candidates_note, tokens: [token ids the strip must show]}
async function window_(url, expectedFile) {
  const want = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const drawn = await openDrawn(url, 60000);
  if (!drawn) return;
  const { browser, page, events } = drawn;
  const text = async id => (await page.locator('#' + id).count()) ? await page.locator('#' + id).textContent() : null;
  const tn = await text('tokens-cut'), cn = await text('candidates-cut'), sn = await text('steps-cut');
  if (sn !== want.steps_note) fail(`the note on the steps: ${JSON.stringify(sn)}, wanted ${JSON.stringify(want.steps_note)}`);
  if (tn !== want.tokens_note) fail(`the note on the tokens: ${JSON.stringify(tn)}, wanted ${JSON.stringify(want.tokens_note)}`);
  if (cn !== want.candidates_note) fail(`the note on the candidates: ${JSON.stringify(cn)}, wanted ${JSON.stringify(want.candidates_note)}`);
  const toks = await page.locator('#token-strip .tok').evaluateAll(ns => ns.map(n => +n.dataset.token));
  if (JSON.stringify(toks) !== JSON.stringify(want.tokens)) fail(`token strip: ${toks.length} tokens, wanted the run's last ${want.tokens.length} (first ${toks[0]}, wanted ${want.tokens[0]})`);
  if (events.errors.length) fail('console: ' + events.errors.join(' | '));
  await browser.close();
}

// the Memory section's experts table of a Mixture-of-Experts run, cell by cell
async function experts(file, expectedFile) {
  const want = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const { browser, page, events } = await open('file://' + path.resolve(file));
  const got = await page.evaluate(() => {
    const t = document.getElementById('experts-table');
    return t ? [...t.querySelectorAll('tr')].map(r => [...r.children].map(c => c.textContent)) : null;
  });
  if (!got) fail('no experts table in the Memory section');
  else if (JSON.stringify(got) !== JSON.stringify(want)) fail(`experts table: got ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
  if (events.errors.length) fail('console: ' + events.errors.join(' | '));
  if (events.requests.some(u => !u.startsWith('file://'))) fail('requests: ' + events.requests.join(' '));
  await browser.close();
}

// The causal tracing section (lltrace causal -o): one cell per layer and position, each the
// colour of its stored p (white 0 to blue 1, the page's scale; grey where nothing was patched),
// read back from the canvas' pixels; the strongest cell where the caller says; its tooltip.
async function causal(file, expectedFile, shots, name) {
  const want = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const drawn = await openDrawn('file://' + path.resolve(file), 20000);
  if (!drawn) return;
  const { browser, page, events } = drawn;
  const got = await page.evaluate(() => {
    const c = document.getElementById('causal-map');
    if (!c) return null;
    const d = c.dataset, cs = +d.cell, px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, cells = [];
    for (let r = 0; r < +d.rows; r++) for (let k = 0; k < +d.cols; k++) {
      const x = +d.left + k * cs + Math.floor(cs / 2), y = +d.top + r * cs + Math.floor(cs / 2), at = 4 * (y * c.width + x);
      cells.push({ r, k, x, y, rgb: [px[at], px[at + 1], px[at + 2]] });
    }
    return { rows: +d.rows, cols: +d.cols, width: c.width, height: c.height, cs, left: +d.left, top: +d.top, cells,
             facts: document.getElementById('causal-facts').textContent };
  });
  if (!got) { fail('no causal heatmap (#causal-map)'); await browser.close(); return; }
  if (got.rows !== want.n_layer || got.cols !== want.n_pos || got.cells.length !== want.n_layer * want.n_pos ||
      got.width !== got.left + want.n_pos * got.cs || got.height !== got.top + want.n_layer * got.cs)
    fail(`causal heatmap: ${got.rows} x ${got.cols} cells on a ${got.width}x${got.height} canvas, wanted ${want.n_layer} x ${want.n_pos}`);
  const blue = v => [Math.round(255 - 215 * v), Math.round(255 - 160 * v), Math.round(255 - 40 * v)];
  let darkest = null;
  for (const c of got.cells) {
    const layer = want.n_layer - 1 - c.r, i = layer * want.n_pos + c.k; // the last layer on top
    const wantRgb = want.n_changed[i] > 0 ? blue(want.p[i]) : [0xf4, 0xf5, 0xf7];
    if (c.rgb.some((v, j) => Math.abs(v - wantRgb[j]) > 1)) fail(`causal cell layer ${layer} position ${c.k}: colour ${c.rgb}, wanted ${wantRgb} (p ${want.p[i]})`);
    if (!darkest || c.rgb[0] < darkest.rgb[0]) darkest = c;
  }
  if (darkest && (want.n_layer - 1 - darkest.r !== want.strongest[0] || darkest.k !== want.strongest[1]))
    fail(`the strongest causal cell is layer ${want.n_layer - 1 - darkest.r} position ${darkest.k}, wanted layer ${want.strongest[0]} position ${want.strongest[1]}`);
  for (const t of want.facts) if (!got.facts.includes(t)) fail(`causal facts: no ${JSON.stringify(t)} in ${JSON.stringify(got.facts)}`);
  if (darkest) { // hovering the strongest cell shows its p and logit diff
    await page.locator('#causal-map').scrollIntoViewIfNeeded();
    const box = await page.locator('#causal-map').boundingBox();
    await page.mouse.move(box.x + darkest.x, box.y + darkest.y);
    const text = await page.locator('.tooltip').textContent();
    for (const t of want.tip) if (!text.includes(t)) fail(`causal tooltip: no ${JSON.stringify(t)} in ${JSON.stringify(text)}`);
    await page.mouse.move(0, 0);
  }
  if (shots) {
    fs.mkdirSync(shots, { recursive: true });
    await page.locator('#sec-causal').screenshot({ path: path.join(shots, (name || 'report-causal') + '.png') });
  }
  if (events.errors.length) fail('console: ' + events.errors.join(' | '));
  if (events.requests.some(u => !u.startsWith('file://'))) fail('requests: ' + events.requests.join(' '));
  await browser.close();
}

(async () => {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'check') await check(...args);
  else if (mode === 'serve') await serve(...args);
  else if (mode === 'experts') await experts(...args);
  else if (mode === 'window') await window_(...args);
  else if (mode === 'causal') await causal(...args);
  else { console.log('usage: report-page.js check|serve|window|experts|causal ...'); process.exit(2); }
  process.exit(fails ? 1 : 0);
})().catch(e => { console.log('FAIL ' + (e.stack || e)); process.exit(1); });

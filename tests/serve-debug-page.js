// The live page's debugger (lltrace serve --debug) in headless Chromium, for cli-serve-debug.sh.
//   node serve-debug-page.js drive URL OUT.json
//     waits for the paused view, records what it shows (the node marked in the graph, the
//     where-table, the heatmap, the histogram, the breakpoints), clicks "next node", records
//     the next pause, deletes the breakpoint, clicks "continue" and waits until the page says
//     the program runs
//   node serve-debug-page.js values URL OUT.json
//     waits for a pause, records it, clicks "continue"
// The caller checks the records against the trace and the breakpoint (Python), never against
// lltrace.
// Prints "FAIL ..." lines and exits 1 on any failure here.
'use strict';
const path = require('path');
const fs = require('fs');
const { chromium } = require(path.join(process.env.LLTRACE_NODE_MODULES, 'playwright-core'));

let fails = 0;
const fail = msg => { console.log('FAIL ' + msg); fails++; };
const WAIT_MS = 120000; // a slow machine: the conditions below are waited for, never timed

// what the page shows of a pause: null fields where it shows nothing
async function pausedView(page) {
  return page.evaluate(() => {
    const g = document.querySelector('#graph-svg .node.paused');
    const where = {};
    for (const tr of document.querySelectorAll('#dbg-where tr')) {
      const td = tr.querySelectorAll('td');
      if (td.length === 2) where[td[0].textContent] = td[1].textContent;
    }
    const hm = document.getElementById('dbg-heatmap');
    return {
      state: document.getElementById('dbg-state').dataset.state,
      stops: +document.getElementById('dbg-state').dataset.stops,
      graph: g ? { id: g.dataset.id, lines: [...g.querySelectorAll('text')].map(t => t.textContent) } : null,
      selected: document.querySelector('#graph-svg .node.sel') ? document.querySelector('#graph-svg .node.sel').dataset.id : null,
      info: document.querySelector('#node-info h3') ? document.querySelector('#node-info h3').textContent : null,
      where,
      heatmap: hm ? { width: hm.width, height: hm.height } : null,
      histogram: !!document.getElementById('dbg-histogram'),
      marked: document.getElementById('dbg-marked') ? document.getElementById('dbg-marked').textContent : null,
      values_note: document.getElementById('dbg-values-note') ? document.getElementById('dbg-values-note').textContent : null,
      buttons: [...document.querySelectorAll('#dbg-buttons button')].map(b => ({ id: b.id, text: b.textContent, disabled: b.disabled })),
      breakpoints: [...document.querySelectorAll('#sec-debug table tr')].filter(tr => tr.querySelectorAll('td').length === 5)
        .map(tr => [...tr.querySelectorAll('td')].slice(0, 4).map(td => td.textContent)),
    };
  });
}

// until the page shows a pause after `after` stops with its values (they come a moment after
// the pause), marked in the graph if marked
async function waitPaused(page, after, marked) {
  await page.waitForFunction(([n, marked]) => {
    const s = document.getElementById('dbg-state');
    return s && s.dataset.state === 'paused' && +s.dataset.stops > n && document.getElementById('dbg-values-note') &&
      (!marked || document.querySelector('#graph-svg .node.paused'));
  }, [after, marked], { timeout: WAIT_MS });
  return pausedView(page);
}

(async () => {
  const [mode, url, out] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: process.env.LLTRACE_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  const errors = [], requests = [];
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', e => errors.push('page error: ' + e.message));
  page.on('request', r => requests.push(r.url()));
  await page.goto(url);
  const rec = {};
  try {
    rec.first = await waitPaused(page, 0, mode === 'drive');
    if (mode === 'drive') {
      await page.click('#dbg-next');
      rec.second = await waitPaused(page, rec.first.stops, true);
      await page.click('.dbg-delete');
      await page.waitForFunction(() => !document.querySelector('.dbg-delete'), null, { timeout: WAIT_MS });
    }
    await page.click('#dbg-continue');
    await page.waitForFunction(() => document.getElementById('dbg-state').dataset.state !== 'paused', null, { timeout: WAIT_MS });
    rec.after = await pausedView(page);
  } catch (e) {
    fail('the page: ' + e.message.split('\n')[0] + ' (errors: ' + errors.join(' | ') + ')');
  }
  if (errors.length) fail('console: ' + errors.join(' | '));
  const origin = new URL(url).origin + '/';
  const others = requests.filter(u => !u.startsWith(origin));
  if (others.length) fail('requests elsewhere: ' + others.join(' '));
  fs.writeFileSync(out, JSON.stringify(rec, null, 1));
  await browser.close();
  process.exit(fails ? 1 : 0);
})().catch(e => { console.log('FAIL ' + (e.stack || e)); process.exit(1); });

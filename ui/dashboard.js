'use strict';
// The llmproxy dashboard (SPEC section 13).  The key lives in this tab's
// sessionStorage and goes to the gateway as "Authorization: Bearer", never
// in a URL.  Data: GET api/summary?days=N and api/live (the master key sees
// everything, a virtual key its own usage only; the gateway decides).

(function () {
  const KEY = 'llmproxy.key';
  const COLORS = ['#2f7ed8', '#f28f43', '#4daf4a', '#984ea3', '#e41a1c',
                  '#a6761d', '#17becf', '#e7298a', '#999999'];
  const $ = (id) => document.getElementById(id);
  const charts = {};          // id -> uPlot, for resizing (and the tests)
  let last = null;            // the last summary, redrawn on resize/metric

  window.llmproxyDashboard = { charts };

  // ---- formatting; every cell keeps its raw value in data-value ----

  const int = (v) => Number(v || 0).toLocaleString('en-US');
  const usd = (v) => '$' + Number(v || 0).toFixed(4);
  const ms = (v) => (v === null || v === undefined) ? '-'
    : Number(v).toLocaleString('en-US', { maximumFractionDigits: 1 });
  const pct = (a, b) => b ? (100 * a / b).toFixed(1) + '%' : '-';
  const utc = (s) => s ? new Date(s).toISOString().slice(0, 16)
    .replace('T', ' ') : '-';

  function until(s) {
    if (!s) return 'never';
    let secs = Math.max(0, (new Date(s) - Date.now()) / 1000);
    const d = Math.floor(secs / 86400);
    secs -= d * 86400;
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs - h * 3600) / 60);
    return utc(s) + ' (in ' + (d ? d + 'd ' : '') + h + 'h ' + m + 'm)';
  }

  function cell(tr, text, value, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (value !== undefined) td.dataset.value = String(value);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fill(id, rows, render, empty) {
    const body = $(id).tBodies[0];
    body.textContent = '';
    for (const row of rows) {
      const tr = document.createElement('tr');
      render(tr, row);
      body.appendChild(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell(tr, empty || 'nothing in this period');
      td.colSpan = $(id).tHead.rows[0].cells.length;
      body.appendChild(tr);
    }
  }

  // ---- charts ----

  function width(el) {
    return Math.max(240, Math.floor(el.clientWidth || 600));
  }

  function draw(id, opts, data, names) {
    const el = $(id);
    if (charts[id]) charts[id].destroy();
    el.textContent = '';
    el.dataset.series = JSON.stringify(names);
    opts.width = width(el);
    opts.height = 260;
    charts[id] = new uPlot(opts, data, el);
  }

  // one bar per day, stacked: series i is drawn as the sum of 0..i, the
  // tallest first so that each lower part is drawn over it.  A series
  // comes as its days' [day index, requests, cost].
  function stacked(id, days, list, metric) {
    const names = list.map((s) => s.name);
    const col = metric === 'cost' ? 2 : 1;
    const raw = list.map((s) => {
      const a = days.map(() => 0);
      for (const p of s.points) {
        if (p[0] >= 0 && p[0] < a.length) a[p[0]] = Number(p[col]);
      }
      return a;
    });
    const sums = [];
    raw.forEach((s, k) => sums.push(s.map((v, i) =>
      v + (k ? sums[k - 1][i] : 0))));
    const xs = days.map((d) => Date.parse(d + 'T00:00:00Z') / 1000);
    const fmt = metric === 'cost' ? usd : int;
    const series = [{}];
    const data = [xs];
    for (let k = names.length - 1; k >= 0; k--) {
      const own = raw[k];
      series.push({
        label: names[k],
        fill: COLORS[k % COLORS.length],
        stroke: COLORS[k % COLORS.length],
        width: 0,
        paths: uPlot.paths.bars({ size: [0.7, 64] }),
        points: { show: false },
        value: (u, v, si, i) => (i === null || i === undefined) ? ''
          : fmt(own[i]),
      });
      data.push(sums[k]);
    }
    draw(id, {
      series,
      scales: { x: { time: true,
                     range: (u, a, b) => [a - 43200, b + 43200] },
                y: { range: (u, a, b) => [0, b > 0 ? b * 1.05 : 1] } },
      axes: [{ space: 60 },
             { size: 70, values: (u, vals) => vals.map((v) => fmt(v)) }],
      legend: { live: true },
    }, data, names);
  }

  function latencyChart(rows) {
    const top = rows.slice(0, 12);
    const labels = top.map((r) => r.deployment || r.model + ' (none)');
    const xs = top.map((r, i) => i);
    draw('chart-latency', {
      series: [{},
        { label: 'p95', fill: '#f2b38a', stroke: '#f28f43', width: 0,
          paths: uPlot.paths.bars({ size: [0.7, 80] }),
          points: { show: false } },
        { label: 'p50', fill: '#2f7ed8', stroke: '#2f7ed8', width: 0,
          paths: uPlot.paths.bars({ size: [0.4, 50] }),
          points: { show: false } }],
      scales: { x: { time: false,
                     range: () => [-0.5, Math.max(top.length, 1) - 0.5] },
                y: { range: (u, a, b) => [0, b > 0 ? b * 1.1 : 1] } },
      axes: [{ splits: () => xs, values: (u, v) => v.map((i) =>
                 labels[i] === undefined ? '' : labels[i]), size: 40 },
             { size: 60 }],
    }, [xs, top.map((r) => r.p95_ms), top.map((r) => r.p50_ms)],
    ['p95', 'p50']);
  }

  // ---- the views ----

  function render(s) {
    last = s;
    const metric = $('metric').value;
    const t = s.totals;
    const totals = [['t-cost', usd(t.cost), t.cost],
                    ['t-requests', int(t.requests), t.requests],
                    ['t-errors', int(t.errors), t.errors],
                    ['t-tokens', int(t.prompt_tokens) + ' / '
                     + int(t.completion_tokens),
                     t.prompt_tokens + '/' + t.completion_tokens]];
    for (const [id, text, value] of totals) {
      $(id).textContent = text;
      $(id).dataset.value = String(value);
    }

    stacked('chart-model', s.days, s.by_model, metric);
    stacked('chart-key', s.days, s.by_key, metric);
    latencyChart(s.latency);

    const usage = (tr, r) => {
      cell(tr, r.name, r.name);
      cell(tr, int(r.requests), r.requests, 'n');
      cell(tr, int(r.errors), r.errors, 'n');
      cell(tr, int(r.prompt_tokens) + ' / ' + int(r.completion_tokens),
           r.prompt_tokens + '/' + r.completion_tokens, 'n');
      cell(tr, usd(r.cost), r.cost, 'n');
    };
    fill('models', s.models, usage);
    fill('keys', s.keys, usage);

    fill('latency', s.latency, (tr, r) => {
      cell(tr, r.model, r.model);
      cell(tr, r.deployment || '(none answered)', r.deployment);
      cell(tr, int(r.requests), r.requests, 'n');
      cell(tr, ms(r.p50_ms), r.p50_ms, 'n');
      cell(tr, ms(r.p95_ms), r.p95_ms, 'n');
      cell(tr, pct(r.errors, r.requests), r.errors / (r.requests || 1), 'n');
    });

    fill('budgets', s.budgets, (tr, r) => {
      cell(tr, r.name, r.name);
      cell(tr, usd(r.spend), r.spend, 'n');
      cell(tr, r.max_budget === null ? 'none' : usd(r.max_budget),
           r.max_budget === null ? '' : r.max_budget, 'n');
      const used = cell(tr, '', r.max_budget ? r.spend / r.max_budget : '');
      if (r.max_budget) {
        const share = r.spend / r.max_budget;
        const meter = document.createElement('span');
        meter.className = 'meter';
        const bar = document.createElement('i');
        bar.style.width = Math.min(100, 100 * share).toFixed(1) + '%';
        if (share >= 1) bar.className = 'over';
        meter.appendChild(bar);
        used.appendChild(meter);
        used.appendChild(document.createTextNode(pct(r.spend,
                                                     r.max_budget)));
      } else {
        used.textContent = '-';
      }
      cell(tr, until(r.budget_reset_at), r.budget_reset_at || '');
      cell(tr, (r.rpm || 'any') + ' / ' + (r.tpm || 'any'),
           (r.rpm || 0) + '/' + (r.tpm || 0));
    }, 'no keys');

    fill('errors', s.errors, (tr, r) => {
      cell(tr, utc(r.time), r.time);
      cell(tr, r.key, r.key);
      cell(tr, r.model, r.model);
      cell(tr, r.deployment || '-', r.deployment || '');
      cell(tr, String(r.status), r.status, 'n');
      cell(tr, r.error || '', r.error || '');
    }, 'no errors');
  }

  function renderLive(l) {
    $('who').textContent = l.master ? 'master key (everything)'
      : 'key ' + (l.key || l.hash);
    $('who').dataset.master = String(l.master);
    $('cooldown-box').hidden = !l.master;
    fill('cooldowns', l.cooldowns, (tr, c) => {
      cell(tr, c.deployment, c.deployment);
      cell(tr, (c.until_ms_from_now / 1000).toFixed(1) + ' s',
           c.until_ms_from_now, 'n');
    }, 'none');
  }

  // ---- talking to the gateway ----

  async function api(path) {
    const key = sessionStorage.getItem(KEY);
    const res = await fetch('api/' + path, {
      headers: { Authorization: 'Bearer ' + key }, cache: 'no-store',
      credentials: 'omit', referrerPolicy: 'no-referrer' });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((body && body.error && body.error.message)
                            || 'HTTP ' + res.status);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  let loading = 0;

  async function load() {
    const seq = ++loading;
    document.body.dataset.state = 'loading';
    try {
      const [live, summary] = await Promise.all([
        api('live'), api('summary?days=' + $('period').value)]);
      if (seq !== loading) return;
      $('status').textContent = '';
      renderLive(live);
      render(summary);
      document.body.dataset.state = 'ready';
    } catch (e) {
      if (seq !== loading) return;
      if (e.status === 401) {
        signOut(e.message);
        return;
      }
      $('status').textContent = 'Could not load: ' + e.message;
      document.body.dataset.state = 'error';
    }
  }

  function show(signedIn) {
    $('signin').hidden = signedIn;
    $('dash').hidden = !signedIn;
    $('bar').hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    for (const id of Object.keys(charts)) {
      charts[id].destroy();
      delete charts[id];
    }
    last = null;
    $('signin-error').textContent = message || '';
    show(false);
    document.body.dataset.state = 'signed-out';
    $('key').focus();
  }

  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = $('key').value.trim();
    $('key').value = '';
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $('signin-error').textContent = '';
    show(true);
    load();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('period').addEventListener('change', load);
  $('metric').addEventListener('change', () => { if (last) render(last); });

  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const id of Object.keys(charts)) {
        charts[id].setSize({ width: width($(id)), height: 260 });
      }
    }, 100);
  });

  if (sessionStorage.getItem(KEY)) {
    show(true);
    load();
  } else {
    signOut('');
  }
})();

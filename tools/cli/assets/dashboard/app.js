// The dashboard page: lists the runs and shows the chosen ones (?run=a, or ?run=a&run=b side by
// side), polling the server every ?refresh= milliseconds (default 3000) and redrawing a run only
// when its metrics changed. The charts are the server's SVGs; each figure carries the data it
// plots (data-points) and a link to the chart as an SVG file.
const params = new URLSearchParams(location.search);
const selected = params.getAll('run');
const refreshMs = Math.max(250, Number(params.get('refresh') ?? 3000) || 3000);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const views = new Map(); // run name → { key, html }
let shown = '';

async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ?? `${url}: HTTP ${r.status}`);
  return body;
}

function renderList(list) {
  const items = list.runs.map((r) => `<li class="${esc(r.status)}" data-run="${esc(r.name)}"><label><input type="checkbox" value="${esc(r.name)}"${selected.includes(r.name) ? ' checked' : ''}> <a href="?run=${encodeURIComponent(r.name)}">${esc(r.name)}</a></label><span class="meta">${esc(r.recipe ?? 'run')} · step ${r.lastStep}${r.steps ? ` / ${r.steps}` : ''} · ${esc(r.status)}</span></li>`);
  $('runs').innerHTML = `<h2>runs in ${esc(list.root)}</h2><ul>${items.join('') || '<li>no runs yet</li>'}</ul><button id="compare" type="button">compare the checked runs</button>`;
  $('compare').onclick = () => {
    const names = [...document.querySelectorAll('#runs input:checked')].map((i) => i.value).slice(0, 2);
    if (names.length) location.search = names.map((n) => `run=${encodeURIComponent(n)}`).join('&');
  };
}

function number(v) {
  return typeof v === 'number' ? (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 1000) / 1000) : v.toPrecision(4)) : esc(v);
}

function renderRun(run) {
  const last = run.last ?? {};
  const shown = ['step', 'loss', 'lr', 'gradNorm', 'tokensPerSec', 'seconds'].filter((k) => k in last);
  const evals = Object.entries(run.evals).map(([split, r]) => {
    const m = r && typeof r === 'object' && r.metrics && typeof r.metrics === 'object' ? r.metrics : r;
    const cells = Object.entries(m ?? {}).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${esc(k)} ${number(v)}`).join(', ');
    return `<tr><td>${esc(split)}</td><td>${cells}</td></tr>`;
  });
  const charts = run.charts.map((c) => `<figure class="chart" data-run="${esc(run.name)}" data-chart="${esc(c.id)}" data-points="${esc(JSON.stringify(c.series))}">${c.svg}<figcaption>${esc(c.title)} · <a download="${esc(c.id)}.svg" href="api/runs/${encodeURIComponent(run.name)}/charts/${encodeURIComponent(c.id)}.svg">SVG</a></figcaption></figure>`);
  return `<article class="run" data-run="${esc(run.name)}" data-last-step="${run.lastStep}" data-status="${esc(run.status)}">
<h2>${esc(run.name)}</h2>
<div class="meta">${esc(run.recipe ?? 'run')} · step ${run.lastStep}${run.steps ? ` / ${run.steps}` : ''} · ${esc(run.status)}</div>
<table><tr>${shown.map((k) => `<th>${esc(k)}</th>`).join('')}</tr><tr>${shown.map((k) => `<td>${number(last[k])}</td>`).join('')}</tr></table>
${evals.length ? `<table><tr><th>eval</th><th>results</th></tr>${evals.join('')}</table>` : ''}
<div class="charts">${charts.join('\n')}</div>
</article>`;
}

async function tick() {
  try {
    const list = await getJson('api/runs');
    renderList(list);
    const names = selected.length ? selected : list.runs.slice(0, 1).map((r) => r.name);
    for (const name of names) {
      const r = list.runs.find((x) => x.name === name);
      if (!r) {
        views.set(name, { key: 'missing', html: `<article class="run error">no run '${esc(name)}'</article>` });
        continue;
      }
      const key = `${r.lastStep}:${r.updated}:${r.status}`;
      if (views.get(name)?.key !== key) views.set(name, { key, html: renderRun(await getJson(`api/runs/${encodeURIComponent(name)}`)) });
    }
    const html = names.map((n) => views.get(n).html).join('');
    if (shown !== html) {
      $('view').innerHTML = html;
      shown = html;
    }
    $('status').textContent = `${list.runs.length} run(s) · updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.ready = 'true';
  } catch (e) {
    $('status').innerHTML = `<span class="error">${esc(e.message)}</span>`;
  }
  setTimeout(tick, refreshMs);
}

tick();

// The gene-embedding explorer: answers from the data block the workflow wrote into this page
// (gexnet.report.explorer), with no server and no network. The same questions, names and
// arithmetic as `gexnet explore` (gexnet.analysis.explore), so both give the same answers.
//
// Vectors come in two tiers. Every page holds int8 codes of the genes' unit vectors (a scale
// and the code's distance from the true unit vector, `radius`, per gene): a scan of them bounds
// every gene's cosine to within its radius. The exact float32 vectors (inline, or in vectors.js
// beside a large page) then re-score only the genes whose bound reaches the answer, so the
// answer is the one full precision gives. Without them the page says its answers are
// approximate.
"use strict";

const gexnet = (() => {
  const EPS = 1e-7; // float64 rounding in the bounds, far below any radius
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c"];
  const ENSEMBL = /^(ENS[A-Z]*G\d{11})(\.\d+)?(_PAR_Y)?$/i;
  const data = JSON.parse(document.getElementById("gexnet-data").textContent);
  const n = data.n, d = data.dims;

  function bytes(b64) {
    const text = atob(b64), out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }
  const codes = new Int8Array(bytes(data.codes).buffer);
  const scale = new Float32Array(bytes(data.scale).buffer);
  const radius = new Float32Array(bytes(data.radius).buffer);
  const xy = new Float32Array(bytes(data.map).buffer);
  const speciesOf = data.gene_species; // index into data.species
  let exact = null, norms = null; // float32 vectors and their float64 norms, once loaded

  function useExact(b64) {
    exact = new Float32Array(bytes(b64).buffer);
    norms = new Float64Array(n);
    for (let g = 0; g < n; g++) {
      let s = 0;
      for (let j = g * d, end = j + d; j < end; j++) s += exact[j] * exact[j];
      norms[g] = Math.sqrt(s);
    }
  }

  // --- names ------------------------------------------------------------------------------
  const folded = new Map(), aliases = new Map(), ids = new Map();
  for (let g = 0; g < n; g++) {
    const s = data.symbol[g];
    if (s) {
      const key = s.toLowerCase();
      if (!folded.has(key)) folded.set(key, []);
      folded.get(key).push(g);
    }
    for (const a of data.aliases[g] ? data.aliases[g].split("|") : []) {
      const key = a.toLowerCase();
      if (!aliases.has(key)) aliases.set(key, []);
      if (!aliases.get(key).includes(g)) aliases.get(key).push(g);
    }
    const id = data.gene_id[g].toUpperCase(); // a pseudo-species copy shares its gene's ID
    if (!ids.has(id)) ids.set(id, []);
    ids.get(id).push(g);
  }
  const multiSpecies = data.species.length > 1;

  function candidates(text) {
    let name = text.trim(), species = null;
    const colon = name.indexOf(":");
    if (colon > 0 && data.species.includes(name.slice(0, colon)) && colon < name.length - 1) {
      species = name.slice(0, colon);
      name = name.slice(colon + 1);
    }
    const allowed = (g) => species === null || data.species[speciesOf[g]] === species;
    const id = ENSEMBL.exec(name);
    if (id) {
      return (ids.get(id[1].toUpperCase()) || []).filter(allowed);
    }
    const found = (folded.get(name.toLowerCase()) || []).filter(allowed);
    if (found.length) {
      const kept = [];
      for (const s of [...new Set(found.map((g) => speciesOf[g]))]) {
        const mine = found.filter((g) => speciesOf[g] === s);
        const same = mine.filter((g) => data.symbol[g] === name);
        kept.push(...(same.length ? same : mine));
      }
      return kept;
    }
    return (aliases.get(name.toLowerCase()) || []).filter(allowed);
  }

  function editDistance(a, b) {
    let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const current = [i];
      for (let j = 1; j <= b.length; j++) {
        current.push(Math.min(previous[j] + 1, current[j - 1] + 1,
                              previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
      }
      previous = current;
    }
    return previous[b.length];
  }

  function closeSymbols(text, limit = 5) {
    const query = text.trim().toLowerCase(), reach = query.length <= 3 ? 1 : 2;
    const scored = [];
    for (const [key, genes] of folded) {
      if (Math.abs(key.length - query.length) > reach) continue;
      const dist = editDistance(query, key);
      if (dist <= reach) scored.push([dist, key, genes[0]]);
    }
    scored.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
    return scored.slice(0, limit).map((s) => data.symbol[s[2]]);
  }

  function label(g) {
    const name = data.symbol[g] || data.gene_id[g];
    return (multiSpecies ? data.species[speciesOf[g]] + ":" : "") + name;
  }

  // {gene} for one match, else {error, choices: [prefixed names], close: [symbols]}
  function resolve(text) {
    const found = candidates(text);
    if (found.length === 1) return { gene: found[0] };
    const name = text.trim();
    if (!found.length) {
      const close = closeSymbols(name);
      return { error: `No gene named “${name}”.` + (close.length ? " Close symbols:" : ""), close };
    }
    const kinds = new Set(found.map((g) => speciesOf[g]));
    const choices = found.map((g) => kinds.size > 1 ? label(g) : data.gene_id[g]);
    const what = kinds.size > 1
      ? `“${name}” names genes of ${[...kinds].map((s) => data.species[s]).sort().join(" and ")}. Which one?`
      : `“${name}” names several genes. Which one?`;
    return { error: what, choices };
  }

  // --- arithmetic ---------------------------------------------------------------------------
  function unitVector(g) {
    const q = new Float64Array(d);
    if (exact) {
      for (let j = 0; j < d; j++) q[j] = exact[g * d + j] / norms[g];
    } else {
      for (let j = 0; j < d; j++) q[j] = codes[g * d + j] * scale[g];
      normalise(q);
    }
    return q;
  }
  function normalise(q) {
    let s = 0;
    for (let j = 0; j < d; j++) s += q[j] * q[j];
    const norm = Math.sqrt(s);
    for (let j = 0; j < d; j++) q[j] /= norm;
    return norm;
  }
  function coarse(q) { // every gene's cosine from the codes, within its radius
    const out = new Float64Array(n);
    for (let g = 0, base = 0; g < n; g++, base += d) {
      let s = 0;
      for (let j = 0; j < d; j++) s += codes[base + j] * q[j];
      out[g] = s * scale[g];
    }
    return out;
  }
  function cosine(g, q) { // exact where the vectors are here
    if (!exact) return null;
    let s = 0;
    for (let j = 0, base = g * d; j < d; j++) s += exact[base + j] * q[j];
    return s / norms[g];
  }
  function allowedBy(species) {
    return species ? (g) => data.species[speciesOf[g]] === species : () => true;
  }

  // The k genes of largest cosine with unit q (ties by order), leaving out `excluded`.
  function ranked(q, k, excluded, species) {
    const approx = coarse(q), allowed = allowedBy(species), skip = new Set(excluded);
    const pool = [];
    for (let g = 0; g < n; g++) if (allowed(g) && !skip.has(g)) pool.push(g);
    let scored;
    if (exact) {
      const lows = Float64Array.from(pool, (g) => approx[g] - radius[g] - EPS).sort();
      const bar = pool.length >= k ? lows[pool.length - k] : -Infinity;
      scored = pool.filter((g) => approx[g] + radius[g] + EPS >= bar).map((g) => [g, cosine(g, q)]);
    } else {
      scored = pool.map((g) => [g, approx[g]]);
    }
    scored.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    return scored.slice(0, k).map(([g, c], i) => row(i + 1, g, c));
  }
  function row(rank, g, c) {
    return { rank, gene_id: data.gene_id[g], symbol: data.symbol[g],
             species: data.species[speciesOf[g]], cosine: c, gene: g };
  }

  function similar(name, k = 20, species = "") {
    const r = resolve(name);
    if (r.error) return r;
    return { rows: ranked(unitVector(r.gene), k, [r.gene], species) };
  }

  function parseExpression(text) {
    const terms = [];
    let sign = 1, pending = false;
    for (let token of text.split(/\s+/).filter(Boolean)) {
      if (token === "+" || token === "-") {
        if (pending) return { error: `Two signs in a row in “${text}”.` };
        sign = token === "-" ? -1 : 1;
        pending = true;
        continue;
      }
      if (token[0] === "+" || token[0] === "-") {
        sign = token[0] === "-" ? -1 : 1;
        token = token.slice(1);
      }
      terms.push([sign, token]);
      sign = 1;
      pending = false;
    }
    if (pending || !terms.length) return { error: `Expected genes joined by + and −, e.g. “APOE - APP + BRCA1”.` };
    return { terms };
  }

  function calc(text, k = 20, species = "") {
    const parsed = parseExpression(text);
    if (parsed.error) return parsed;
    const q = new Float64Array(d), used = [];
    for (const [sign, name] of parsed.terms) {
      const r = resolve(name);
      if (r.error) return { ...r, name };
      const u = unitVector(r.gene);
      for (let j = 0; j < d; j++) q[j] += sign * u[j];
      used.push(r.gene);
    }
    if (!(normalise(q) > 1e-12)) return { error: `“${text}” cancels to the zero vector.` };
    return { rows: ranked(q, k, used, species) };
  }

  function similarity(a, b, species = "") {
    const ra = resolve(a);
    if (ra.error) return { ...ra, field: "sim-a" };
    const rb = resolve(b);
    if (rb.error) return { ...rb, field: "sim-b" };
    const i = ra.gene, j = rb.gene;
    if (i === j) return { error: `“${a}” and “${b}” are the same gene.` };
    const ui = unitVector(i), uj = unitVector(j), allowed = allowedBy(species);
    let c = 0;
    for (let t = 0; t < d; t++) c += ui[t] * uj[t];
    const rows = [];
    for (const [me, other, u] of [[i, j, ui], [j, i, uj]]) {
      const approx = coarse(u);
      let closer = 0, total = 0;
      for (let g = 0; g < n; g++) {
        if (g === i || g === j || !allowed(g)) continue;
        total++;
        if (!exact) { if (approx[g] > c) closer++; continue; }
        if (approx[g] - radius[g] - EPS > c) closer++;
        else if (approx[g] + radius[g] + EPS > c && cosine(g, u) > c) closer++;
      }
      rows.push({ gene_id: data.gene_id[me], symbol: data.symbol[me],
                  species: data.species[speciesOf[me]], other: data.symbol[other] || data.gene_id[other],
                  cosine: c, genes_closer: closer, share_closer: closer / Math.max(total, 1) });
    }
    return { rows };
  }

  // PCA (2 components) of the chosen genes' unit vectors, centred: power iteration on X'X.
  function pca(genes) {
    const m = genes.length, X = genes.map(unitVector), mean = new Float64Array(d);
    for (const x of X) for (let j = 0; j < d; j++) mean[j] += x[j] / m;
    for (const x of X) for (let j = 0; j < d; j++) x[j] -= mean[j];
    const components = [];
    for (let c = 0; c < 2; c++) {
      let v = Float64Array.from({ length: d }, (_, j) => Math.sin(j + 1 + c));
      normalise(v);
      for (let it = 0; it < 200; it++) {
        const w = new Float64Array(d);
        for (const x of X) {
          let s = 0;
          for (let j = 0; j < d; j++) s += x[j] * v[j];
          for (let j = 0; j < d; j++) w[j] += s * x[j];
        }
        for (const p of components) { // deflate
          let s = 0;
          for (let j = 0; j < d; j++) s += w[j] * p[j];
          for (let j = 0; j < d; j++) w[j] -= s * p[j];
        }
        if (!(normalise(w) > 0)) break;
        v = w;
      }
      let big = 0; // sign: the largest loading positive
      for (let j = 0; j < d; j++) if (Math.abs(v[j]) > Math.abs(big)) big = v[j];
      if (big < 0) for (let j = 0; j < d; j++) v[j] = -v[j];
      components.push(v);
    }
    return X.map((x) => components.map((p) => x.reduce((s, xj, j) => s + xj * p[j], 0)));
  }

  return { data, n, d, resolve, closeSymbols, similar, calc, similarity, pca, useExact,
           hasExact: () => exact !== null, xy, speciesOf, COLOURS, label,
           exactVectors: () => [exact, norms] }; // the benchmark's brute-force baseline reads these
})();

// --- the page ---------------------------------------------------------------------------------
(() => {
  const $ = (id) => document.getElementById(id);
  const data = gexnet.data;
  const fmt = (c) => (c === null ? "" : c.toFixed(4));
  const tables = {}; // the rows each table shows, for sorting and CSV

  function status() {
    const el = $("precision");
    el.textContent = gexnet.hasExact()
      ? "Answers are exact (float32 vectors)."
      : "Answers are approximate: the exact vectors (vectors.js beside this page) did not load.";
    el.className = gexnet.hasExact() ? "ok" : "warn";
  }

  function loadExact() {
    if (data.exact === "inline") {
      gexnet.useExact(document.getElementById("gexnet-exact").textContent.trim());
      status();
      return;
    }
    status();
    const s = document.createElement("script");
    s.src = data.exact;
    s.onload = () => { gexnet.useExact(window.gexnetExact); delete window.gexnetExact; status(); };
    s.onerror = status;
    document.body.appendChild(s);
  }

  function species() { return $("species") ? $("species").value : ""; }

  function message(id, result, rerun) {
    const el = $(id);
    el.textContent = "";
    if (!result.error) return;
    el.append(result.error + " ");
    for (const name of result.choices || result.close || []) {
      const b = document.createElement("button");
      b.className = "choice";
      b.textContent = name;
      b.onclick = () => rerun(name);
      el.append(b, " ");
    }
  }

  const COLUMNS = {
    genes: [["rank", "rank"], ["symbol", "symbol"], ["gene_id", "Ensembl ID"], ["species", "species"], ["cosine", "cosine"]],
    similarity: [["symbol", "gene"], ["other", "other gene"], ["cosine", "cosine"],
                 ["genes_closer", "genes closer to the gene"], ["share_closer", "share closer"]],
  };

  function drawTable(id, rows, kind) {
    const columns = COLUMNS[kind].filter(([key]) => key !== "species" || data.species.length > 1);
    tables[id] = { rows, columns, kind };
    const table = $(id);
    table.textContent = "";
    const head = table.createTHead().insertRow();
    for (const [key, title] of columns) {
      const th = document.createElement("th");
      th.textContent = title;
      th.dataset.key = key;
      th.onclick = () => sortTable(id, key);
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      for (const [key] of columns) {
        const v = r[key];
        tr.insertCell().textContent = key === "cosine" ? fmt(v)
          : key === "share_closer" ? (100 * v).toFixed(2) + "%" : String(v);
      }
    }
    const tools = $(id + "-tools");
    if (tools) tools.hidden = rows.length === 0;
  }

  function sortTable(id, key) {
    const t = tables[id];
    const up = t.sorted === key ? !t.up : key !== "cosine";
    const rows = [...t.rows].sort((a, b) => {
      const x = a[key], y = b[key];
      const c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return up ? c : -c;
    });
    drawTable(id, rows, t.kind);
    Object.assign(tables[id], { sorted: key, up });
  }

  function csv(id) {
    const t = tables[id];
    const keys = ["rank", "gene_id", "symbol", "species", "cosine"];
    const quote = (v) => /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v);
    const lines = [keys.join(",")].concat(t.rows.map((r) => keys.map((k) => k === "cosine" ? r[k].toFixed(6) : quote(r[k])).join(",")));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
    a.download = `${data.name}_${id.replace("-table", "")}.csv`;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function similarGo() {
    const k = Number($("similar-top").value);
    const result = gexnet.similar($("similar-gene").value, k, species());
    message("similar-message", result, (name) => { $("similar-gene").value = name; similarGo(); });
    drawTable("similar-table", result.rows || [], "genes");
  }
  function calcGo() {
    const k = Number($("calc-top").value);
    const result = gexnet.calc($("calc-expr").value, k, species());
    message("calc-message", result, (name) => {
      $("calc-expr").value = $("calc-expr").value.replace(new RegExp(`(^|\\s|[+-])${escape(result.name || "")}(?=\\s|$)`), `$1${name}`);
      calcGo();
    });
    drawTable("calc-table", result.rows || [], "genes");
  }
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  function similarityGo() {
    const result = gexnet.similarity($("sim-a").value, $("sim-b").value, species());
    message("sim-message", result, (name) => { $(result.field).value = name; similarityGo(); });
    drawTable("sim-table", result.rows || [], "similarity");
  }

  // --- the map: every gene at its UMAP place, the lists coloured; the lists' PCA beside -----
  let drawn = []; // [gene, list] pairs on the map, for hover
  let pcaPoints = [];
  function listGenes(i) {
    const names = $(`list-${i}`).value.split(/[\s,;]+/).filter(Boolean);
    const genes = [], missing = [];
    for (const name of names) {
      const r = gexnet.resolve(name);
      if (r.error) missing.push(name); else genes.push(r.gene);
    }
    return { genes: [...new Set(genes)], missing };
  }
  function frame(canvas) {
    const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * ratio;
    canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }
  function scaler(points, w, h) {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const [x, y] of points) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    const pad = 12, sx = (w - 2 * pad) / (x1 - x0 || 1), sy = (h - 2 * pad) / (y1 - y0 || 1);
    return ([x, y]) => [pad + (x - x0) * sx, h - pad - (y - y0) * sy];
  }
  const mapPoint = (g) => [gexnet.xy[2 * g], gexnet.xy[2 * g + 1]];
  let toMap = null;
  function drawMap() {
    const { ctx, w, h } = frame($("map-canvas"));
    const all = Array.from({ length: gexnet.n }, (_, g) => mapPoint(g));
    toMap = scaler(all, w, h);
    ctx.fillStyle = "rgba(120,120,120,0.35)";
    for (const p of all) { const [x, y] = toMap(p); ctx.fillRect(x - 0.75, y - 0.75, 1.5, 1.5); }
    drawn = [];
    const legend = $("map-legend");
    legend.textContent = "";
    const lists = [1, 2, 3].map(listGenes);
    lists.forEach(({ genes, missing }, i) => {
      ctx.fillStyle = gexnet.COLOURS[i];
      for (const g of genes) {
        const [x, y] = toMap(mapPoint(g));
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
        ctx.fill();
        drawn.push([g, i]);
      }
      if (genes.length || missing.length) {
        const li = document.createElement("li");
        li.style.color = gexnet.COLOURS[i];
        li.dataset.list = i + 1;
        li.dataset.genes = genes.length;
        li.textContent = `List ${i + 1}: ${genes.length} genes drawn` + (missing.length ? `; not found or ambiguous: ${missing.join(", ")}` : "");
        legend.appendChild(li);
      }
    });
    drawPca(lists);
  }
  function drawPca(lists) {
    const { ctx, w, h } = frame($("pca-canvas"));
    const chosen = drawn.map(([g]) => g), unique = [...new Set(chosen)];
    pcaPoints = [];
    if (unique.length < 3) {
      ctx.fillStyle = "#666";
      ctx.fillText("PCA of the chosen genes: give at least 3.", 10, 20);
      return;
    }
    const coords = gexnet.pca(unique), at = new Map(unique.map((g, i) => [g, coords[i]]));
    const to = scaler(coords, w, h);
    for (const [g, i] of drawn) {
      const [x, y] = to(at.get(g));
      ctx.fillStyle = gexnet.COLOURS[i];
      ctx.beginPath();
      ctx.arc(x, y, 4, 0, 2 * Math.PI);
      ctx.fill();
      pcaPoints.push([g, i, x, y]);
    }
  }
  function hover(canvas, find) {
    canvas.addEventListener("mousemove", (e) => {
      const rect = canvas.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top;
      const hit = find(mx, my), tip = $("tooltip");
      if (!hit) { tip.hidden = true; return; }
      tip.hidden = false;
      tip.textContent = gexnet.label(hit[0]) + (hit[1] === null ? "" : ` (list ${hit[1] + 1})`);
      tip.style.left = `${e.pageX + 12}px`;
      tip.style.top = `${e.pageY + 12}px`;
    });
    canvas.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  }
  function nearest(points, mx, my, reach) {
    let best = null, bestD = reach * reach;
    for (const [g, i, x, y] of points) {
      const dd = (x - mx) ** 2 + (y - my) ** 2;
      if (dd <= bestD) { best = [g, i]; bestD = dd; }
    }
    return best;
  }
  function mapHit(mx, my) {
    if (!toMap) return null;
    const listed = nearest(drawn.map(([g, i]) => [g, i, ...toMap(mapPoint(g))]), mx, my, 8);
    if (listed) return listed;
    let best = null, bestD = 16;
    for (let g = 0; g < gexnet.n; g++) {
      const [x, y] = toMap(mapPoint(g)), dd = (x - mx) ** 2 + (y - my) ** 2;
      if (dd <= bestD) { best = [g, null]; bestD = dd; }
    }
    return best;
  }

  function tabs() {
    for (const b of document.querySelectorAll("nav button")) {
      b.onclick = () => {
        for (const x of document.querySelectorAll("nav button")) x.classList.toggle("active", x === b);
        for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== b.dataset.tab;
        if (b.dataset.tab === "map") drawMap();
      };
    }
  }

  function init() {
    document.title = `${data.title} · gene explorer`;
    $("title").textContent = data.title;
    const sp = data.species.length > 1 ? `; species ${data.species.join(", ")}` : data.species[0] ? `; ${data.species[0]}` : "";
    $("about").textContent = `${data.n.toLocaleString("en")} genes × ${data.dims} dimensions${sp}. ${data.note || ""}`;
    if (data.species.length > 1) {
      const sel = $("species");
      for (const s of data.species) sel.add(new Option(`${s} genes only`, s));
      $("species-box").hidden = false;
    } else {
      $("species-box").remove();
    }
    tabs();
    $("similar-go").onclick = similarGo;
    $("calc-go").onclick = calcGo;
    $("sim-go").onclick = similarityGo;
    $("map-go").onclick = drawMap;
    for (const [input, go] of [["similar-gene", similarGo], ["calc-expr", calcGo], ["sim-b", similarityGo]]) {
      $(input).addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    }
    $("similar-csv").onclick = () => csv("similar-table");
    $("calc-csv").onclick = () => csv("calc-table");
    $("similar-map").onclick = () => {
      const rows = tables["similar-table"].rows;
      $("list-1").value = [$("similar-gene").value.trim(), ...rows.map((r) => gexnet.label(r.gene))].join("\n");
      document.querySelector('nav button[data-tab="map"]').click();
    };
    hover($("map-canvas"), mapHit);
    hover($("pca-canvas"), (mx, my) => nearest(pcaPoints, mx, my, 8));
    const example = data.examples || {};
    $("similar-gene").value = example.gene || "";
    $("calc-expr").value = example.expression || "";
    $("sim-a").value = example.a || "";
    $("sim-b").value = example.b || "";
    loadExact();
    document.body.dataset.ready = "1";
  }
  init();
})();

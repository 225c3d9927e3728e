// End-to-end test of the web map: starts the real `cityos demo` server, drives
// Debian's Chromium through playwright-core and checks what a person would see.
//
//   cd tests/browser && npm ci && node --test
//
// CITYOS_BIN overrides the server binary (default: <repo>/target/debug/cityos).
// The browser is never downloaded: Debian's /usr/bin/chromium is required.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const BIN = process.env.CITYOS_BIN || path.join(REPO, 'target', 'debug', 'cityos');
const CHROMIUM = '/usr/bin/chromium';
const OUT = path.join(HERE, 'out');
const HEALTH_TIMEOUT_MS = 120_000;

// The palette the page promises for routes without their own colour.
const KIND_COLORS = { trunk: '#3C5AA6', branch: '#5BB025', circular: '#F2B70A', night: '#1B2C5A' };

let server = null;      // { proc, base, dataDir, logPath }
let browser = null;
let context = null;
let page = null;
const consoleErrors = [];
// A failed setup is rethrown by every test, so it is reported (and counted) as a failure
// with its own message instead of a bare hook error.
let setupError = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serverLog() {
  try {
    return fs.readFileSync(server.logPath, 'utf8').split('\n').slice(-40).join('\n');
  } catch (_) {
    return '(no server output)';
  }
}

async function startServer() {
  if (!fs.existsSync(BIN)) {
    throw new Error(`cityos binary not found at ${BIN}: build it first (cargo build) or set CITYOS_BIN`);
  }
  fs.mkdirSync(OUT, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cityos-browser-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logPath = path.join(OUT, 'server.log');
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(BIN, ['demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--no-open'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, CITYOS_LOG: process.env.CITYOS_LOG || 'info' },
  });
  fs.closeSync(log);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  server = { proc, base, dataDir, logPath };

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      throw new Error(`cityos demo exited early (${JSON.stringify(exited)}); its output:\n${serverLog()}`);
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) {
      throw new Error(`cityos demo did not answer 200 on /health within ${HEALTH_TIMEOUT_MS / 1000}s; its output:\n${serverLog()}`);
    }
    await sleep(250);
  }
}

async function stopServer() {
  if (!server) return;
  const { proc, dataDir } = server;
  if (proc.exitCode === null && proc.signalCode === null) {
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  server = null;
}

// Never leave a server behind, even if the runner is interrupted.
process.on('exit', () => { if (server && server.proc.exitCode === null) server.proc.kill('SIGKILL'); });

async function getJson(p) {
  const res = await fetch(server.base + p, { signal: AbortSignal.timeout(15_000) });
  const body = await res.json();
  assert.equal(res.status, 200, `GET ${p} → ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

function watchConsole(p) {
  p.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(`console: ${msg.text()}`); });
  p.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
}

async function openMap(p, query = '') {
  await p.goto(`${server.base}/${query}`);
  await p.waitForFunction(() => Number(document.body.dataset.routesDrawn) > 0 && document.body.dataset.stopsDrawn !== undefined, null, { timeout: 30_000 });
}

async function waitMapIdle(p) {
  await p.waitForFunction(() => !window.cityosMap.animating);
  // One more frame so the canvas shows the final view.
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
}

// Stops (as drawn) that have another stop within ~10 m are skipped: a click there is ambiguous.
async function isolatedStops(p, limit) {
  return p.evaluate((limit) => {
    const stops = window.cityosMap.stops;
    const picked = [];
    const step = Math.max(1, Math.floor(stops.length / (limit * 3)));
    for (let i = 0; i < stops.length && picked.length < limit; i += step) {
      const s = stops[i];
      const crowded = stops.some((o) => o !== s && Math.abs(o.lat - s.lat) < 1e-4 && Math.abs(o.lon - s.lon) < 1.3e-4);
      if (!crowded && s.name) picked.push({ stop_id: s.stop_id, name: s.name, lon: s.lon, lat: s.lat, location_type: s.location_type });
    }
    // Stations first: they have the most service.
    return picked.sort((a, b) => b.location_type - a.location_type);
  }, limit);
}

describe('cityos web map', { timeout: 300_000 }, () => {
  let network;
  let routesGeo;
  let chosen = null;      // a stop with departures: { stop_id, name, lon, lat, items }
  let pinnedQuery = '';   // '?time=…' when "now" has no service in the demo city

  before(async () => {
    try {
      if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); this test never downloads a browser`);
      }
      await startServer();
      network = await getJson('/api/v1/network');
      routesGeo = await getJson('/api/v1/routes.geojson');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
      });
      context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'Asia/Seoul' });
      page = await context.newPage();
      watchConsole(page);
    } catch (err) {
      setupError = err;
    }
  }, { timeout: HEALTH_TIMEOUT_MS + 60_000 });

  // `it`, but failing straight away with the setup's error when there was one.
  const step = (name, fn) => it(name, async () => {
    if (setupError) throw setupError;
    await fn();
  });

  after(async () => {
    try {
      if (page) await page.screenshot({ path: path.join(OUT, 'last.png') }).catch(() => {});
      if (browser) await browser.close();
    } finally {
      await stopServer();
    }
  });

  step('loads, draws routes and stops, and shows the network summary', async () => {
    await openMap(page);
    const ds = await page.evaluate(() => ({ ...document.body.dataset }));
    assert.ok(Number(ds.routesDrawn) > 0, `routesDrawn=${ds.routesDrawn}`);
    assert.ok(Number(ds.stopsDrawn) > 0, `stopsDrawn=${ds.stopsDrawn}`);
    assert.ok(Number(ds.routesDrawn) <= routesGeo.features.length);

    const digits = (s) => Number(String(s).replace(/\D/g, ''));
    assert.equal(digits(await page.textContent('#count-routes')), network.routes);
    assert.equal(digits(await page.textContent('#count-stops')), network.stops);
    assert.equal(digits(await page.textContent('#count-trips')), network.trips);
    await page.screenshot({ path: path.join(OUT, 'overview.png') });
    assert.deepEqual(consoleErrors, [], 'console errors while loading');
  });

  step('paints the routes in their colours', async () => {
    const drawnRoutes = await page.evaluate(() => window.cityosMap.routes);
    // Explicit colours win; the bus kinds fall back to the documented palette.
    const byId = new Map(drawnRoutes.map((r) => [r.route_id, r]));
    for (const f of routesGeo.features) {
      const p = f.properties;
      const drawn = byId.get(String(p.route_id));
      if (!drawn) continue;
      const want = p.color ? p.color.toUpperCase() : KIND_COLORS[p.kind];
      if (want) assert.equal(drawn.color.toUpperCase(), want, `colour of route ${p.route_id} (${p.kind})`);
    }
    const colors = [...new Set(drawnRoutes.map((r) => r.color))];
    const found = await page.evaluate((colors) => {
      const c = document.getElementById('map');
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const rgb = colors.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
      const hits = new Array(rgb.length).fill(0);
      for (let i = 0; i < data.length; i += 4) {
        for (let k = 0; k < rgb.length; k++) {
          const [r, g, b] = rgb[k];
          if (Math.abs(data[i] - r) <= 10 && Math.abs(data[i + 1] - g) <= 10 && Math.abs(data[i + 2] - b) <= 10) { hits[k]++; break; }
        }
      }
      return hits;
    }, colors);
    const total = found.reduce((a, b) => a + b, 0);
    assert.ok(total >= 50, `only ${total} canvas pixels have a route colour (${colors.join(', ')}): ${found.join(', ')}`);
  });

  step('opens a stop panel with departures when a stop is clicked', async () => {
    const candidates = await isolatedStops(page, 40);
    assert.ok(candidates.length > 0, 'no clickable stop found');
    // The demo city might have no service at this hour; fall back to a pinned morning time.
    for (const q of ['', '?time=08:00:00']) {
      for (const s of candidates) {
        const extra = q ? '&time=08:00:00' : '';
        const dep = await getJson(`/api/v1/stops/${encodeURIComponent(s.stop_id)}/departures?limit=8${extra}`);
        if (dep.items.length) { chosen = { ...s, items: dep.items, apiName: dep.stop_name }; pinnedQuery = q; break; }
      }
      if (chosen) break;
    }
    assert.ok(chosen, `none of ${candidates.length} stops has departures now or at 08:00`);
    if (pinnedQuery) await openMap(page, pinnedQuery);

    await page.evaluate(({ lon, lat }) => window.cityosMap.setView(lon, lat, 16), chosen);
    await waitMapIdle(page);
    const [x, y] = await page.evaluate(({ lon, lat }) => window.cityosMap.project(lon, lat), chosen);
    const box = await page.locator('#map').boundingBox();
    assert.ok(x > 0 && y > 0 && x < box.width && y < box.height, `stop projected off-canvas at ${x},${y}`);
    await page.mouse.click(box.x + x, box.y + y);

    const panel = page.locator('#stop-panel');
    await panel.waitFor({ state: 'visible' });
    await page.locator('#stop-panel .departure').first().waitFor({ state: 'visible' });
    assert.equal((await page.textContent('#stop-name')).trim(), chosen.apiName || chosen.name);
    const rows = await page.locator('#stop-panel .departure').allTextContents();
    assert.ok(rows.length >= 1, 'no departure rows');
    const shortNames = new Set(chosen.items.map((i) => i.route_short_name).filter(Boolean));
    if (shortNames.size) {
      assert.ok(rows.some((r) => [...shortNames].some((n) => r.includes(n))), `rows ${JSON.stringify(rows)} name none of ${[...shortNames]}`);
    }
  });

  step('switches every visible label between Korean and English', async () => {
    const labels = () => page.evaluate(() => ({
      lang: document.documentElement.lang,
      legend: document.querySelector('#legend-title').textContent.trim(),
      routes: document.querySelector('[data-i18n="summary.routes"]').textContent.trim(),
      departures: document.querySelector('[data-i18n="panel.departures"]').textContent.trim(),
      placeholder: document.querySelector('#stop-search').placeholder,
      kicker: document.querySelector('#stop-kind').textContent.trim(),
    }));
    const hangul = /[\uAC00-\uD7A3]/;

    await page.click('#lang-ko');
    const ko = await labels();
    assert.equal(ko.lang, 'ko');
    assert.equal(ko.legend, '노선 종류');
    assert.equal(ko.routes, '노선');
    assert.equal(ko.departures, '곧 출발');
    for (const [k, v] of Object.entries(ko)) if (k !== 'lang') assert.match(v, hangul, `${k} is not Korean: ${v}`);
    assert.equal(await page.getAttribute('#lang-ko', 'aria-pressed'), 'true');

    await page.click('#lang-en');
    const en = await labels();
    assert.equal(en.lang, 'en');
    assert.equal(en.legend, 'Route types');
    assert.equal(en.routes, 'Routes');
    assert.equal(en.departures, 'Next departures');
    for (const [k, v] of Object.entries(en)) assert.doesNotMatch(v, hangul, `${k} is still Korean: ${v}`);

    // The choice is remembered over the browser's own language.
    const koContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'ko-KR' });
    const koPage = await koContext.newPage();
    watchConsole(koPage);
    await openMap(koPage);
    assert.equal(await koPage.evaluate(() => document.documentElement.lang), 'ko', 'ko-KR browser should default to Korean');
    await koPage.click('#lang-en');
    await openMap(koPage);
    assert.equal((await koPage.textContent('#legend-title')).trim(), 'Route types', 'language choice not remembered');
    await koContext.close();
  });

  step('finds a stop by name and flies to it', async () => {
    // A name the search ranks within its first page, so the test can click it.
    let target = null;
    const others = await isolatedStops(page, 40);
    // Prefer the stop with departures so the screenshot shows a full board.
    for (const s of chosen ? [chosen, ...others] : others) {
      const res = await getJson(`/api/v1/stops?q=${encodeURIComponent(s.name)}&limit=20&offset=0`);
      if (res.items.some((i) => String(i.stop_id) === s.stop_id)) { target = s; break; }
    }
    assert.ok(target, 'no stop is found by its own name through /api/v1/stops?q=');
    await page.evaluate(() => window.cityosMap.fit());

    await page.fill('#stop-search', target.name);
    const option = page.locator(`#stop-results li[role="option"][data-stop-id="${CSS_escape(target.stop_id)}"]`);
    await option.waitFor({ state: 'visible' });
    assert.equal((await option.locator('.result-name').textContent()).trim(), target.name);
    await option.click();

    await page.locator('#stop-panel').waitFor({ state: 'visible' });
    await page.waitForFunction((name) => document.querySelector('#stop-name').textContent.trim() === name, target.name);
    await waitMapIdle(page);
    const [x, y] = await page.evaluate(({ lon, lat }) => window.cityosMap.project(lon, lat), target);
    const box = await page.locator('#map').boundingBox();
    const panelBox = await page.locator('#stop-panel').boundingBox();
    assert.ok(x > 0 && y > 0 && box.x + x < panelBox.x && y < box.height, `searched stop not in view (${x}, ${y})`);
    assert.ok((await page.evaluate(() => window.cityosMap.view.zoom)) >= 15, 'did not zoom in on the stop');
    await page.locator('#stop-panel .departure, #stop-panel .empty').first().waitFor({ state: 'visible' });
    await page.screenshot({ path: path.join(OUT, 'map.png') });
  });

  step('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

// Attribute-selector escaping for ids that may contain quotes or backslashes.
function CSS_escape(s) {
  return String(s).replace(/["\\]/g, '\\$&');
}

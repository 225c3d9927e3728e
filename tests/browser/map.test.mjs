// End-to-end test of the web map: starts the real `cityos demo` server, drives
// Debian's Chromium through playwright-core and checks what a person would see.
//
//   cd tests/browser && npm ci && node --test
//
// CITYOS_BIN overrides the server binary (default: <repo>/target/debug/cityos).
// The browser is never downloaded: Debian's /usr/bin/chromium is required.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { HEALTH_TIMEOUT_MS, OUT, launchChromium, sleep, startDemo, stepWith, watchConsole as watchConsoleInto } from './demo.mjs';


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

async function startServer() {
  server = await startDemo('server.log');
}

async function stopServer() {
  if (!server) return;
  await server.stop();
  server = null;
}

function serverLog() {
  return server ? server.log() : '(no server output)';
}

const getJson = (p) => server.getJson(p);

const watchConsole = (p) => watchConsoleInto(p, consoleErrors);

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
      await startServer();
      network = await getJson('/api/v1/network');
      routesGeo = await getJson('/api/v1/routes.geojson');
      browser = await launchChromium();
      context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'Asia/Seoul' });
      page = await context.newPage();
      watchConsole(page);
    } catch (err) {
      setupError = err;
    }
  }, { timeout: HEALTH_TIMEOUT_MS + 60_000 });

  const step = stepWith(() => setupError);

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
      ridership: document.querySelector('#open-ridership .tool-label').textContent.trim(),
      fare: document.querySelector('#open-fare .tool-label').textContent.trim(),
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

  // ------------------------------------------------------------- ridership --

  // Boardings only grow (taps are never taken back), so anything the page fetched after
  // `before` has at least as many: the checks below hold while simulated riders keep tapping.
  const sumBoardings = (r) => r.by_hour.reduce((n, h) => n + h.boardings, 0);
  const digits = (s) => Number(String(s).replace(/\D/g, ''));

  async function openRidershipPanel(p) {
    // Opening refetches; wait for that answer, not one fetched earlier (say, with a stop panel).
    const prev = await p.evaluate(() => window.cityosMap.ridership.at);
    await p.click('#open-ridership');
    await p.waitForFunction((prev) => { const r = window.cityosMap.ridership; return r.loaded && r.at !== prev; }, prev, { timeout: 15_000 });
    await p.locator('#ridership-panel').waitFor({ state: 'visible' });
    await p.locator('#ridership-panel .ridership-chart, #ridership-panel .ridership-empty').first().waitFor({ state: 'visible', timeout: 15_000 });
    return p.evaluate(() => window.cityosMap.ridership);
  }

  step('shows ridership by hour, top trips and transfers in the ridership panel', async () => {
    const before = await getJson('/api/v1/ridership');
    assert.equal(before.by_hour.length, 24, 'by_hour has 24 hours');
    const shown = await openRidershipPanel(page);
    assert.equal(await page.getAttribute('#open-ridership', 'aria-expanded'), 'true');
    assert.ok(shown.loaded && shown.boardings >= sumBoardings(before), `page shows ${shown.boardings} boardings, the API had ${sumBoardings(before)} before`);
    assert.ok(shown.polling, 'the panel should refresh itself while open');
    assert.match(await page.textContent('#ridership-foot'), /refreshes every 30 s/);

    if (shown.boardings === 0) {
      // Nobody has tapped yet (e.g. the demo's riders are still asleep): a friendly empty state, no chart.
      await page.locator('#ridership-panel .ridership-empty').waitFor({ state: 'visible' });
      assert.match(await page.textContent('#ridership-panel .ridership-empty'), /No card taps yet/);
      assert.equal(await page.locator('#ridership-panel .hour-chart').count(), 0, 'empty state should not draw a chart');
    } else {
      const bars = page.locator('#ridership-panel .hour-chart rect.bar');
      assert.equal(await bars.count(), 24, 'one bar per hour');
      const barSum = (await bars.evaluateAll((els) => els.map((e) => Number(e.dataset.boardings)))).reduce((a, b) => a + b, 0);
      assert.equal(barSum, shown.boardings, 'bars add up to the boardings');
      assert.equal(digits(await page.textContent('#ride-total-boardings')), shown.boardings);
      const tallest = await bars.evaluateAll((els) => Math.max(...els.map((e) => Number(e.getAttribute('height')))));
      assert.ok(tallest > 20, `tallest bar is only ${tallest}px`);
      assert.equal(await page.locator('#ridership-panel .hour-chart rect.bar.peak').count(), 1, 'the busiest hour is highlighted');

      // Origin → destination pairs, by stop name (not id).
      const od = page.locator('#ridership-panel .od-list li');
      assert.equal(await od.count(), Math.min(10, shown.od.length));
      const names = new Map(before.stops.map((s) => [s.stop_id, s.name]));
      const fresh = await getJson('/api/v1/ridership');
      for (const s of fresh.stops) names.set(s.stop_id, s.name);
      for (let i = 0; i < Math.min(3, shown.od.length); i++) {
        const text = await od.nth(i).textContent();
        for (const id of [shown.od[i].from, shown.od[i].to]) {
          if (names.get(id)) assert.ok(text.includes(names.get(id)), `OD row ${i} "${text}" lacks the name of ${id} (${names.get(id)})`);
        }
        assert.ok(text.includes(String(shown.od[i].n)), `OD row ${i} "${text}" lacks its count ${shown.od[i].n}`);
      }
      // Route transfers, with route names as on the map.
      const tr = page.locator('#ridership-panel .transfer-list li');
      assert.equal(await tr.count(), Math.min(10, shown.transfers.length));
      if (shown.transfers.length) {
        const badges = await tr.first().locator('.route-badge').allTextContents();
        assert.equal(badges.length, 2, 'a transfer shows two routes');
      }
      // Every export is linked, and downloads.
      const links = await page.locator('#ridership-panel .downloads a').evaluateAll((as) => as.map((a) => ({ href: a.href, download: a.getAttribute('download') })));
      assert.deepEqual(links.map((l) => l.download).sort(), ['origin_destination.csv', 'ride_feed_info.txt', 'ridership.txt', 'stop_route_hour.csv', 'transfers.csv']);
      for (const l of links) {
        const res = await fetch(l.href, { signal: AbortSignal.timeout(15_000) });
        assert.equal(res.status, 200, `${l.href} → ${res.status}`);
        assert.match(await res.text(), /^[a-z_]+(,[a-z_]+)+\n/, `${l.download} starts with a CSV header`);
      }
    }
    await page.screenshot({ path: path.join(OUT, 'ridership.png') });

    // The same on a phone, in Korean: a bottom sheet that doesn't overflow sideways.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'ko-KR', timezoneId: 'Asia/Seoul', deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const pp = await phone.newPage();
    watchConsole(pp);
    await pp.goto(`${server.base}/`);
    await pp.waitForFunction(() => Number(document.body.dataset.routesDrawn) > 0);
    await openRidershipPanel(pp);
    const fits = await pp.evaluate(() => {
      const panel = document.querySelector('#ridership-panel');
      const body = document.querySelector('#ridership-body');
      const r = panel.getBoundingClientRect();
      return { left: r.left, right: r.right, vw: innerWidth, overflow: body.scrollWidth - body.clientWidth, header: document.querySelector('.topbar').getBoundingClientRect().height };
    });
    assert.ok(fits.left >= 0 && fits.right <= fits.vw, `panel outside the screen: ${JSON.stringify(fits)}`);
    assert.ok(fits.overflow <= 1, `panel content overflows sideways by ${fits.overflow}px`);
    assert.ok(fits.header < 120, `header takes ${fits.header}px on a phone`);
    assert.match(await pp.textContent('#ridership-title'), /승객/);
    await pp.screenshot({ path: path.join(OUT, 'ridership-phone.png') });
    await phone.close();

    await page.click('#ridership-panel .panel-x');
    await page.locator('#ridership-panel').waitFor({ state: 'hidden' });
    assert.equal((await page.evaluate(() => window.cityosMap.ridership)).polling, false, 'stops refreshing once closed');
  });

  step('draws ridership circles on the map and counts at a stop', async () => {
    const before = await getJson('/api/v1/ridership');
    const placed = before.stops.filter((s) => s.lat != null && s.lon != null && s.boardings + s.alightings > 0);
    await page.evaluate(() => window.cityosMap.fit());
    await waitMapIdle(page);
    assert.equal(await page.evaluate(() => document.body.dataset.ridershipDrawn), undefined, 'layer starts off');
    await page.check('#toggle-ridership');
    await page.waitForFunction(() => document.body.dataset.ridershipDrawn !== undefined, null, { timeout: 15_000 });
    const drawn = Number(await page.evaluate(() => document.body.dataset.ridershipDrawn));
    if (placed.length) {
      assert.ok(drawn > 0, `API has ${placed.length} stops with taps but the layer drew ${drawn} circles`);
      // The circles' outline colour is on the canvas.
      const hits = await page.evaluate(() => {
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0xa6) < 25 && Math.abs(d[i + 1] - 0x1e) < 25 && Math.abs(d[i + 2] - 0x4d) < 25) n++;
        return n;
      });
      assert.ok(hits >= 20, `only ${hits} pixels in the ridership colour`);
      await page.screenshot({ path: path.join(OUT, 'ridership-layer.png') });
    } else {
      assert.ok(drawn >= 0);
    }

    // The stop panel tells how many boarded and alighted there.
    await page.evaluate(() => window.cityosMap.refreshRidership());
    const onMap = new Set(await page.evaluate(() => window.cityosMap.stops.map((s) => s.stop_id)));
    const busy = placed.find((s) => onMap.has(s.stop_id) && s.boardings > 0);
    const target = busy ? busy.stop_id : [...onMap][0];
    assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), target));
    const line = page.locator('#stop-ridership');
    await line.waitFor({ state: 'visible' });
    const counts = await line.evaluate((el) => ({ b: Number(el.dataset.boardings), a: Number(el.dataset.alightings), text: el.textContent }));
    assert.match(counts.text, /^Card taps: [\d,]+ boardings · [\d,]+ alightings$/);
    assert.equal(digits(counts.text.split('·')[0]), counts.b);
    if (busy) {
      assert.ok(counts.b >= busy.boardings && counts.a >= busy.alightings, `stop ${target}: panel ${JSON.stringify(counts)} < API ${busy.boardings}/${busy.alightings}`);
    }
    await page.click('#panel-close');

    await page.uncheck('#toggle-ridership');
    await page.waitForFunction(() => document.body.dataset.ridershipDrawn === undefined);
  });

  // ------------------------------------------------------- fare calculator --

  // A trunk route and two stops of one of its trips (08:00 onwards), found through the public API.
  async function trunkTrip() {
    const stops = (await getJson('/api/v1/stops.geojson')).features
      .filter((f) => f.geometry && f.geometry.type === 'Point')
      .map((f) => ({ stop_id: String(f.properties.stop_id), lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] }));
    const trunks = (await getJson('/api/v1/routes?kind=trunk&limit=100')).items;
    assert.ok(trunks.length, 'the demo city has no trunk routes');
    for (const route of trunks.slice(0, 6)) {
      const detail = await getJson(`/api/v1/routes/${encodeURIComponent(route.route_id)}`);
      const g = detail.geometry.geometry;
      const verts = (g.type === 'MultiLineString' ? g.coordinates : [g.coordinates]).flat();
      // Stops lying on the route's line (within ~50 m of a vertex), nearest first.
      const near = stops
        .map((s) => ({ s, d: Math.min(...verts.map(([x, y]) => Math.hypot((x - s.lon) * 88_000, (y - s.lat) * 111_000))) }))
        .filter((c) => c.d < 50)
        .sort((a, b) => a.d - b.d)
        .slice(0, 8);
      for (const { s } of near) {
        const dep = await getJson(`/api/v1/stops/${encodeURIComponent(s.stop_id)}/departures?time=08:00:00&window_minutes=1440&limit=1000`);
        const item = dep.items.find((i) => i.route_id === route.route_id);
        if (!item) continue;
        const trip = await getJson(`/api/v1/trips/${encodeURIComponent(item.trip_id)}`);
        const i = trip.stop_times.findIndex((st) => st.stop_id === item.stop_id || st.stop_id === s.stop_id);
        if (i < 0 || i >= trip.stop_times.length - 1) continue;
        const from = trip.stop_times[i];
        const to = trip.stop_times[Math.min(i + 3, trip.stop_times.length - 1)];
        return { route, from: { stop_id: from.stop_id, name: from.stop_name }, to: { stop_id: to.stop_id, name: to.stop_name } };
      }
    }
    return null;
  }

  // Types into a stop picker and chooses the given stop (by name when the search finds it that way).
  async function pickStop(inputSel, stop) {
    const res = await getJson(`/api/v1/stops?q=${encodeURIComponent(stop.name)}&limit=20&offset=0`);
    const q = res.items.some((i) => String(i.stop_id) === stop.stop_id) ? stop.name : stop.stop_id;
    await page.fill(inputSel, q);
    const option = page.locator(`${inputSel}-list li[role="option"][data-stop-id="${CSS_escape(stop.stop_id)}"]`).first();
    await option.waitFor({ state: 'visible' });
    await option.click();
    assert.equal(await page.inputValue(inputSel), stop.name);
  }

  async function quote(body) {
    const res = await fetch(`${server.base}/api/v1/fares/quote`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: await res.json() };
  }

  step('calculates the fare of a trunk bus ride and shows API errors', async () => {
    const trip = await trunkTrip();
    assert.ok(trip, 'found no trunk route with a trip through a stop on its line');

    await page.click('#open-fare');
    await page.locator('#fare-panel').waitFor({ state: 'visible' });
    await page.selectOption('#fare-category', 'adult');
    assert.equal(await page.inputValue('#leg1-mode'), 'trunk');
    await page.locator(`#leg1-route option[value="${CSS_escape(trip.route.route_id)}"]`).waitFor({ state: 'attached' });
    await page.selectOption('#leg1-route', trip.route.route_id);
    await pickStop('#leg1-from', trip.from);
    await pickStop('#leg1-to', trip.to);
    assert.equal(await page.inputValue('#leg1-route'), trip.route.route_id, 'picking the stop kept the route');
    await page.fill('#leg1-board', '08:00');
    await page.fill('#leg1-alight', '08:20');
    const date = await page.inputValue('#fare-date');
    assert.match(date, /^\d{4}-\d{2}-\d{2}$/);

    const taps = [
      { at: `${date}T08:00:00`, kind: 'in', stop_id: trip.from.stop_id, route_id: trip.route.route_id, mode: 'trunk' },
      { at: `${date}T08:20:00`, kind: 'out', stop_id: trip.to.stop_id, route_id: trip.route.route_id, mode: 'trunk' },
    ];
    const want = await quote({ category: 'adult', taps });
    assert.equal(want.status, 200, JSON.stringify(want.body));
    assert.ok(want.body.total >= 1500, `an adult trunk ride costs ${want.body.total}`);

    await page.click('#fare-calc');
    const total = page.locator('#fare-result .fare-total');
    await total.waitFor({ state: 'visible' });
    assert.equal(Number(await total.getAttribute('data-total')), want.body.total);
    const en = (await page.textContent('#fare-result .fare-total-amount')).trim();
    assert.equal(en, `₩${want.body.total.toLocaleString('en-US')}`);
    const charges = page.locator('#fare-result .fare-charge');
    assert.equal(await charges.count(), want.body.charges.length);
    assert.ok((await charges.first().textContent()).includes(want.body.charges[0].explanation), 'the charge is explained');
    await page.screenshot({ path: path.join(OUT, 'fare.png') });

    // Korean formats won as 1,500원.
    await page.click('#lang-ko');
    assert.equal((await page.textContent('#fare-result .fare-total-amount')).trim(), `${want.body.total.toLocaleString('en-US')}원`);
    assert.match(await page.textContent('#fare-title'), /요금 계산/);
    await page.click('#lang-en');

    // A trunk tap without a route is refused by the API; its message is shown as is.
    const bad = await quote({ category: 'adult', taps: taps.map((tp) => ({ ...tp, route_id: null })) });
    assert.ok(bad.status >= 400 && bad.status < 500, `invalid quote answered ${bad.status}`);
    assert.ok(bad.body.error && bad.body.error.message, JSON.stringify(bad.body));
    const logged = consoleErrors.length;
    // Chromium logs every 4xx response as a console error; this one is expected.
    const expected = page.waitForEvent('console', { predicate: (m) => /status of 4\d\d/.test(m.text()), timeout: 5000 }).catch(() => null);
    await page.selectOption('#leg1-route', '');
    await page.click('#fare-calc');
    const err = page.locator('#fare-result .fare-error');
    await err.waitFor({ state: 'visible' });
    assert.ok((await err.textContent()).includes(bad.body.error.message), `shown: ${await err.textContent()}; API: ${bad.body.error.message}`);
    assert.equal(await page.locator('#fare-result .fare-total').count(), 0, 'no total next to an error');
    await expected;
    const mine = consoleErrors.splice(logged).filter((e) => !/status of 4\d\d/.test(e));
    consoleErrors.push(...mine);

    await page.click('#fare-panel .panel-x');
    await page.locator('#fare-panel').waitFor({ state: 'hidden' });
  });

  step("marks each route's last bus of the night (막차) in the stop panel", async () => {
    // Late tomorrow evening (no bus running now can change that board), a
    // stop whose next departures include a route's last.
    const stops = (await getJson('/api/v1/stops.geojson')).features.map((f) => String(f.properties.stop_id));
    // Tomorrow by the server's clock, in the city.
    const today = (await getJson(`/api/v1/stops/${encodeURIComponent(stops[0])}/departures?limit=1`)).date;
    const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    const night = `date=${tomorrow}&time=23:00:00`;
    let found = null;
    for (const stopId of stops.slice(0, 60)) {
      const dep = await getJson(`/api/v1/stops/${encodeURIComponent(stopId)}/departures?limit=8&${night}`);
      const last = dep.items.find((i) => i.last_of_day);
      if (last) { found = { stopId, last, items: dep.items }; break; }
    }
    assert.ok(found, 'no stop has a last departure listed at 23:00');

    await openMap(page, `?${night}`);
    await page.evaluate(() => window.cityosMap.setLang('ko'));
    assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), found.stopId));
    const row = page.locator(`#stop-panel .departure[data-trip-id="${CSS_escape(found.last.trip_id)}"]`);
    await row.waitFor({ state: 'visible' });
    assert.equal((await row.locator('.last-tag').textContent()).trim(), '막차');
    const marked = await page.locator('#stop-panel .last-tag').count();
    assert.equal(marked, found.items.filter((i) => i.last_of_day).length, 'every last departure, and only those, is marked');
    await page.screenshot({ path: path.join(OUT, 'last-bus.png') });
    await page.evaluate(() => window.cityosMap.setLang('en'));
    const train = ['subway', 'rail', 'tram'].includes(found.last.route_kind);
    assert.equal((await row.locator('.last-tag').textContent()).trim(), train ? 'Last train' : 'Last bus');

    // The stop's own board says it too.
    const board = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    watchConsole(board);
    await board.goto(`${server.base}/board?stop=${encodeURIComponent(found.stopId)}&${night}&lang=ko`);
    const boardRow = board.locator(`.row[data-trip-id="${CSS_escape(found.last.trip_id)}"]`);
    await boardRow.waitFor({ state: 'visible', timeout: 20_000 });
    assert.equal((await boardRow.locator('.tag.last').textContent()).trim(), '막차');
    await board.close();

    // Later in that night, a stop with nothing in its board's two hours says
    // when its next vehicle leaves (the day buses from about four).
    const lateNight = `date=${tomorrow}&time=01:30:00`;
    let quiet = null;
    for (const stopId of stops.slice(0, 60)) {
      const soon = await getJson(`/api/v1/stops/${encodeURIComponent(stopId)}/departures?${lateNight}`);
      if (soon.items.length) continue;
      const next = await getJson(`/api/v1/stops/${encodeURIComponent(stopId)}/departures?${lateNight}&window_minutes=1440&limit=1`);
      if (next.items.length) { quiet = { stopId, next: next.items[0] }; break; }
    }
    assert.ok(quiet, 'no stop is quiet at 01:30');
    const empty = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    watchConsole(empty);
    await empty.goto(`${server.base}/board?stop=${encodeURIComponent(quiet.stopId)}&${lateNight}&lang=ko`);
    await empty.waitForFunction((trip) => document.querySelector('#message').dataset.nextTrip === trip, quiet.next.trip_id, { timeout: 20_000 });
    const clock = quiet.next.departure.slice(11, 16);
    const text = await empty.textContent('#message');
    assert.match(text, /곧 도착하는 차량이 없습니다/);
    assert.ok(text.includes(`다음 차량 ${clock} 출발`) && text.includes(quiet.next.route_short_name), text);
    await empty.screenshot({ path: path.join(OUT, 'board-night.png') });
    await empty.click('.lang button[data-lang="en"]');
    assert.match(await empty.textContent('#message'), new RegExp(`Next: .* at ${clock}`));
    await empty.close();
    // And so does the map's panel of that stop.
    await openMap(page, `?${lateNight}`);
    assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), quiet.stopId));
    const note = page.locator(`#departures li.empty[data-next-trip="${CSS_escape(quiet.next.trip_id)}"]`);
    await note.waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await note.textContent(), new RegExp(`Next: .* at ${clock}`));
    await page.screenshot({ path: path.join(OUT, 'panel-night.png') });
  });

  step('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

// Attribute-selector escaping for ids that may contain quotes or backslashes.
function CSS_escape(s) {
  return String(s).replace(/["\\]/g, '\\$&');
}

// The complaint desk in the browser: a citizen files with a map pin and a photo,
// registering only when sending it (in Korean, then reads it in English), staff answer from their queue, the citizen
// is notified, and the demo's simulated citizens' complaints are on the map.
describe('cityos complaint desk', { timeout: 300_000 }, () => {
  let citizenPage = null;
  let staffPage = null;
  let civicSetupError = null;
  const email = `minji-${Date.now()}@example.org`;
  // A 2×2 red PNG: the smallest real photo.
  const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

  before(async () => {
    try {
      await startServer();
      browser = await launchChromium();
      const ko = await browser.newContext({ viewport: { width: 1100, height: 1400 }, locale: 'ko-KR', timezoneId: 'Asia/Seoul' });
      citizenPage = await ko.newPage();
      watchConsole(citizenPage);
      const en = await browser.newContext({ viewport: { width: 1100, height: 1600 }, locale: 'en-US', timezoneId: 'Asia/Seoul' });
      staffPage = await en.newPage();
      watchConsole(staffPage);
    } catch (err) {
      civicSetupError = err;
    }
  }, { timeout: HEALTH_TIMEOUT_MS + 60_000 });

  const step = stepWith(() => civicSetupError);

  after(async () => {
    try {
      if (citizenPage) await citizenPage.screenshot({ path: path.join(OUT, 'complaints-last.png'), fullPage: true }).catch(() => {});
      if (browser) await browser.close();
    } finally {
      await stopServer();
    }
  });

  let filedId = null;

  step('anyone sees the map and fills in a report; sending it asks to register, then it goes, in Korean', async () => {
    const p = citizenPage;
    await p.goto(`${server.base}/complaints`);
    await p.waitForFunction(() => document.querySelector('#service option') && document.documentElement.lang === 'ko');
    assert.equal(await p.textContent('h1 span'), '민원 신고');
    // Signed out: the form and the city's complaints are there, the sign-in form is not.
    await p.waitForFunction(() => window.cityosCivic.points.length > 0, null, { timeout: 30_000 });
    assert.equal(await p.isVisible('#signin'), false);
    await p.selectOption('#service', 'streetlight');
    // The service's own questions and choices read in Korean too.
    assert.match(await p.textContent('#attributes'), /어떤 문제가 있나요\?.*불이 꺼짐/s);
    await p.check('#attributes input[value=out]');
    await p.fill('#file-form [name=description]', '가로등이 꺼져 있어요');
    // The first submit without a pin is refused with a message.
    await p.click('#file-form button[type=submit]');
    assert.match(await p.textContent('#file-error'), /위치/);
    const box = await p.locator('#civic-map').boundingBox();
    await p.mouse.click(box.x + box.width * 0.55, box.y + box.height * 0.5);
    assert.match(await p.textContent('#pin'), /^37\.\d+, 12[67]\.\d+$/);
    await p.setInputFiles('#file-form [name=photo]', { name: 'lamp.png', mimeType: 'image/png', buffer: PNG });
    // Sending it signed out asks the sender to sign in or register, and keeps the report.
    await p.click('#file-form button[type=submit]');
    await p.locator('#signin').waitFor({ state: 'visible' });
    assert.match(await p.textContent('#signin-why'), /가입/);
    assert.equal(await p.inputValue('#file-form [name=description]'), '가로등이 꺼져 있어요');
    await p.fill('#signin-form [name=email]', email);
    await p.fill('#signin-form [name=password]', 'a long enough password');
    await p.fill('#signin-form [name=name]', 'Minji Kim');
    await p.click('#register');
    await p.waitForFunction(() => /#\d+/.test(document.querySelector('#file-ok').textContent), null, { timeout: 15_000 });
    assert.equal(await p.isVisible('#signin'), false);
    const ok = await p.textContent('#file-ok');
    assert.match(ok, /접수되었습니다/);
    filedId = Number(ok.match(/#(\d+)/)[1]);
    await p.waitForSelector(`#mine-list li[data-id="${filedId}"]`);
    await p.screenshot({ path: path.join(OUT, 'complaints-ko.png'), fullPage: true });
  });

  step('the citizen page reads in English too', async () => {
    const p = citizenPage;
    await p.click('.lang button[data-lang=en]');
    assert.equal(await p.textContent('h1 span'), 'Report a problem');
    assert.match(await p.textContent('#attributes'), /Where on the road is it\?/);
    assert.match(await p.textContent(`#mine-list li[data-id="${filedId}"]`), /Broken streetlight — received/);
  });

  step('staff find it in their queue, see the photo and reporter, and answer in public', async () => {
    const p = staffPage;
    const password = fs.readFileSync(path.join(server.dataDir, 'admin-password.txt'), 'utf8').trim();
    await p.goto(`${server.base}/staff`);
    await p.fill('#signin-form [name=email]', 'admin@cityos.local');
    await p.fill('#signin-form [name=password]', password);
    await p.click('#signin-form button[type=submit]');
    await p.locator('#desk').waitFor({ state: 'visible' });
    await p.selectOption('#department', 'lighting');
    await p.click(`#queue tr[data-id="${filedId}"]`);
    await p.waitForFunction((id) => document.querySelector('#detail-id').textContent.startsWith(`#${id}`), filedId);
    assert.match(await p.textContent('#detail-fields'), /Minji Kim/);
    const detail = await getJson(`/api/v1/complaints/${filedId}`).catch(() => null);
    assert.equal(detail, null, 'the detail needs a sign-in');
    await p.selectOption('#update-form [name=status]', 'in_progress');
    await p.fill('#update-form [name=text]', 'A crew is on its way');
    await p.click('#update-form button[type=submit]');
    await p.waitForFunction(() => document.querySelector('#events').textContent.includes('A crew is on its way'));
    await p.fill('#update-form [name=text]', 'ask the contractor');
    await p.uncheck('#update-form [name=public]');
    await p.click('#update-form button[type=submit]');
    await p.waitForFunction(() => document.querySelector('#events .internal') !== null);
    await p.fill('#assign-form [name=assignee]', 'Night crew 7');
    await p.click('#assign-form button[type=submit]');
    await p.waitForFunction(() => document.querySelector('#detail-fields').textContent.includes('Night crew 7'));
    await p.screenshot({ path: path.join(OUT, 'staff.png'), fullPage: true });
  });

  step('the citizen is notified of the public update only', async () => {
    const p = citizenPage;
    await p.reload();
    await p.waitForSelector('#notes-list li');
    const notes = await p.textContent('#notes-list');
    assert.match(notes, /A crew is on its way/);
    assert.doesNotMatch(notes, /contractor/);
  });

  step('abusive text waits for a moderator, who publishes it', async () => {
    const c = citizenPage;
    await c.selectOption('#service', 'graffiti');
    await c.fill('#file-form [name=description]', 'Graffiti again, you idiots');
    const box = await c.locator('#civic-map').boundingBox();
    await c.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.55);
    await c.click('#file-form button[type=submit]');
    await c.waitForFunction(() => /#\d+/.test(document.querySelector('#file-ok').textContent), null, { timeout: 15_000 });
    const ok = await c.textContent('#file-ok');
    assert.match(ok, /moderator/);
    const held = Number(ok.match(/#(\d+)/)[1]);
    const p = staffPage;
    await p.reload();
    await p.locator(`#moderation-list li[data-id="${held}"]`).waitFor();
    await p.click(`#moderation-list li[data-id="${held}"] button[data-approve=true]`);
    await p.locator(`#moderation-list li[data-id="${held}"]`).waitFor({ state: 'detached' });
  });

  step("the demo's simulated citizens' complaints and hotspots are on the map", async () => {
    const p = staffPage;
    await p.waitForFunction(() => window.cityosCivic.points.length >= 40, null, { timeout: 30_000 });
    const drawn = await p.evaluate(() => ({ points: window.cityosCivic.points.length, hexes: window.cityosCivic.hexes.length }));
    assert.ok(drawn.hexes > 0, JSON.stringify(drawn));
    const ranking = await p.locator('#ranking tr').count();
    assert.ok(ranking > 0);
    // The demo's staff resolve some: the hours-to-resolve chart has bars.
    await p.reload();
    await p.waitForFunction(() => Number(document.querySelector('#resolve-chart').dataset.bars) > 0, null, { timeout: 30_000 });
    await p.locator('#resolve-chart').screenshot({ path: path.join(OUT, 'staff-resolve.png') });
  });

  step('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

// End-to-end test of the live city: `cityos demo` runs its simulated fleet, which
// publishes positions over MQTT; the map must show the vehicles moving, the stop
// panel and the stop board page must show real-time predictions, and the road
// speed and incident layers must work, in Korean and English.
//
//   cd tests/browser && npm ci && node --test
//
// CITYOS_BIN overrides the server binary (default: <repo>/target/debug/cityos).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { HEALTH_TIMEOUT_MS, OUT, launchChromium, sleep, startDemo, stepWith, watchConsole as watchConsoleInto } from './demo.mjs';


let server = null;
let browser = null;
let page = null;
let setupError = null;
const consoleErrors = [];
async function startServer() {
  server = await startDemo('server-live.log');
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

// Waits until the simulated fleet has reported, then finds a stop that a vehicle is
// heading to and whose board has a real-time prediction.
async function stopWithPrediction(deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { vehicles } = await getJson('/api/v1/vehicles');
    const stops = [...new Set(vehicles.map((v) => v.next_stop_id).filter(Boolean))];
    for (const id of stops) {
      const board = await getJson(`/api/v1/stops/${encodeURIComponent(id)}/departures?limit=10`);
      const live = board.items.filter((i) => i.realtime);
      if (live.length) return { stop_id: id, board, live };
    }
    if (Date.now() > deadline) throw new Error(`no stop with a real-time prediction among ${stops.length} next stops of ${vehicles.length} vehicles`);
    await sleep(1000);
  }
}

describe('cityos live city', { timeout: 240_000 }, () => {
  let target = null; // { stop_id, board, live }

  before(async () => {
    try {
      await startServer();
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: 'Asia/Seoul' });
      page = await context.newPage();
      watchConsole(page);
    } catch (err) {
      setupError = err;
    }
  }, { timeout: HEALTH_TIMEOUT_MS + 60_000 });

  const step = stepWith(() => setupError);

  after(async () => {
    try {
      if (page) await page.screenshot({ path: path.join(OUT, 'live-last.png') }).catch(() => {});
      if (browser) await browser.close();
    } finally {
      await stopServer();
    }
  });

  step('shows live vehicles on the map and moves them', async () => {
    await page.goto(`${server.base}/`);
    await page.waitForFunction(() => Number(document.body.dataset.routesDrawn) > 0, null, { timeout: 30_000 });
    // The fleet publishes every 10 s from start; the stream brings them in.
    await page.waitForFunction(() => window.cityos.vehicles.length > 0 && Number(document.body.dataset.vehiclesDrawn) > 0, null, { timeout: 40_000 });
    const api = await getJson('/api/v1/vehicles');
    const shown = await page.evaluate(() => window.cityos.vehicles);
    const apiIds = new Set(api.vehicles.map((v) => v.vehicle_id));
    assert.ok(shown.some((v) => apiIds.has(v.vehicle_id)), 'the map shows the vehicles the API lists');
    const count = Number((await page.textContent('#count-vehicles')).replace(/\D/g, ''));
    assert.ok(count > 0 && count === (await page.evaluate(() => window.cityos.vehicles.length)), `summary says ${count}`);
    // Each vehicle is drawn in its route's colour.
    for (const v of shown.slice(0, 5)) {
      const a = api.vehicles.find((x) => x.vehicle_id === v.vehicle_id);
      if (a && a.route_color) assert.equal(v.color.toUpperCase(), a.route_color.toUpperCase());
    }
    await page.screenshot({ path: path.join(OUT, 'live-vehicles.png') });

    // Positions glide between fixes: within a minute at least one vehicle is somewhere
    // else than where it was first seen. Vehicles are followed from when they appear, so
    // the first one shown standing at its terminus cannot decide it.
    const moved = await page.waitForFunction(() => {
      const first = (window.firstSeenAt ||= new Map());
      let n = 0;
      for (const v of window.cityos.vehicles) {
        const b = first.get(v.vehicle_id);
        if (!b) first.set(v.vehicle_id, [v.lon, v.lat]);
        else if (Math.hypot(v.lon - b[0], v.lat - b[1]) > 2e-5) n++; // ~2 m
      }
      return n;
    }, null, { timeout: 60_000, polling: 500 });
    assert.ok(await moved.jsonValue() >= 1);
  });

  step('names a vehicle on hover and opens it on click', async () => {
    // One away from stops: a click on a stop opens the stop (buses dwell there).
    const v = await page.waitForFunction(() => window.cityos.vehicles.find((x) => x.route_short_name &&
      !window.cityosMap.stops.some((s) => Math.abs(s.lat - x.lat) < 4e-4 && Math.abs(s.lon - x.lon) < 5e-4)), null, { timeout: 20_000, polling: 500 })
      .then((h) => h.jsonValue());
    assert.ok(v, 'a vehicle with a route name');
    await page.evaluate((v) => window.cityosMap.setView(v.lon, v.lat, 17), v);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const box = await page.locator('#map').boundingBox();
    const [x, y] = await page.evaluate((id) => {
      const now = window.cityos.vehicles.find((o) => o.vehicle_id === id);
      return window.cityosMap.project(now.lon, now.lat);
    }, v.vehicle_id);
    await page.mouse.move(box.x + x, box.y + y);
    const tip = page.locator('#tooltip');
    await tip.waitFor({ state: 'visible', timeout: 5000 });
    const text = await tip.textContent();
    assert.ok(text.includes(v.route_short_name), `tooltip "${text}" names route ${v.route_short_name}`);
    assert.match(text, /late|early|On time/, 'the tooltip says how late the vehicle is');
    await page.mouse.click(box.x + x, box.y + y);
    const panel = page.locator('#vehicle-panel');
    await panel.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal((await page.textContent('#veh-route')).trim(), v.route_short_name);
    await page.locator('#veh-stops .veh-stop, #veh-stops .empty').first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(OUT, 'live-vehicle.png') });
    await page.click('#vehicle-close');
    await panel.waitFor({ state: 'hidden' });
  });

  step('makes the stop panel a live board and closes its stream with it', async () => {
    // A train's next stop is a platform, which is not drawn: it opens its station.
    const stations = (await getJson('/api/v1/stops.geojson')).features.filter((f) => f.properties.platforms.length);
    if (stations.length) {
      const station = stations[0].properties;
      assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), station.platforms[0]), 'a platform opens its station');
      await page.locator('#stop-panel').waitFor({ state: 'visible' });
      assert.equal((await page.textContent('#stop-name')).trim(), station.name);
      await page.click('#panel-close');
    }
    target = await stopWithPrediction(30_000);
    assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), target.stop_id));
    await page.locator('#stop-panel .departure[data-realtime="true"]').first().waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => window.cityos.live.stopStream), 1, 'the stop stream is open');
    const row = page.locator('#stop-panel .departure[data-realtime="true"]').first();
    assert.equal(await row.locator('.live-icon').count(), 1, 'a real-time row carries the live icon');
    assert.match(await row.locator('.mins').textContent(), /min|Now/);
    // Where its bus is, as Seoul's displays say it.
    assert.match(await row.locator('.stops-away').textContent(), /^(1 stop|\d+ stops) away$/);
    const href = await page.getAttribute('#panel-board', 'href');
    // The panel is the drawn stop: a platform's station.
    const station = stations.find((f) => f.properties.platforms.includes(target.stop_id));
    const opened = station ? station.properties.stop_id : target.stop_id;
    assert.equal(href, `board?stop=${encodeURIComponent(opened)}`);
    await page.screenshot({ path: path.join(OUT, 'live-stop-panel.png') });
    await page.click('#panel-close');
    assert.equal(await page.evaluate(() => window.cityos.live.stopStream), null, 'closing the panel closes the stream');
  });

  step('toggles the road speed layer with its legend', async () => {
    const api = await getJson('/api/v1/roads/speeds.geojson');
    await page.evaluate(() => window.cityosMap.fit());
    const toggle = page.locator('#toggle-roads');
    assert.equal(await toggle.isChecked(), false);
    assert.equal(await page.isVisible('#roads-key'), false);
    await toggle.check();
    await page.waitForFunction(() => window.cityos.roads.at != null, null, { timeout: 10_000 });
    const roads = await page.evaluate(() => window.cityos.roads);
    assert.equal(roads.error, null);
    assert.ok(roads.features >= api.features.length, `page has ${roads.features} segments, API ${api.features.length}`);
    if (roads.features) {
      await page.waitForFunction(() => window.cityos.roads.drawn > 0, null, { timeout: 5000 });
    }
    assert.equal(await page.isVisible('#roads-key'), true, 'the congestion legend shows');
    assert.deepEqual((await page.locator('#roads-key .key').allTextContents()).map((s) => s.trim()), ['Smooth', 'Slow', 'Congested']);
    assert.equal(await page.evaluate(() => document.body.dataset.roadsOn), 'true');
    await page.screenshot({ path: path.join(OUT, 'live-roads.png') });
    await toggle.uncheck();
    assert.equal(await page.evaluate(() => document.body.dataset.roadsOn), 'false');
    assert.equal(await page.isVisible('#roads-key'), false);
  });

  step("shows citizens' complaints as a layer, with their kind on hover", async () => {
    const api = await getJson('/api/v1/complaints/map.geojson?days=30');
    assert.ok(api.features.length > 0, 'the demo citizens have filed complaints');
    await page.evaluate(() => window.cityosMap.fit());
    const toggle = page.locator('#toggle-complaints');
    assert.equal(await toggle.isChecked(), false, 'off until asked for');
    await toggle.check();
    await page.waitForFunction(() => window.cityos.complaints.drawn > 0, null, { timeout: 10_000 });
    const layer = await page.evaluate(() => window.cityos.complaints);
    assert.equal(layer.error, null);
    assert.ok(layer.items >= api.features.length, `page has ${layer.items}, API ${api.features.length}`);
    assert.match(await page.textContent('#complaints-hint'), /^\d+ \/ \d+$/);
    // Hover the first complaint drawn: the tooltip names its kind. Vehicles are hidden
    // meanwhile, so a bus passing over the complaint cannot take the tooltip.
    await page.locator('#toggle-vehicles').uncheck();
    const at = await page.evaluate(() => {
      const f = window.cityos.complaintPoints()[0];
      return f && { x: f.x, y: f.y };
    });
    const box = await page.locator('#map').boundingBox();
    await page.mouse.move(box.x + at.x, box.y + at.y);
    await page.locator('#tooltip').waitFor({ state: 'visible' });
    assert.match(await page.textContent('#tooltip'), /^#\d+ .+ · (open|closed)$/);
    await page.screenshot({ path: path.join(OUT, 'live-complaints.png') });
    await page.locator('#toggle-vehicles').check();
    await toggle.uncheck();
    await page.waitForFunction(() => window.cityos.complaints.drawn === 0, null, { timeout: 5000 });
    assert.equal(await page.evaluate(() => document.body.dataset.complaintsOn), 'false');
  });

  step('lists active incidents', async () => {
    const api = await getJson('/api/v1/incidents');
    const active = api.filter((i) => i.status === 'active');
    await page.click('#open-incidents');
    await page.locator('#incident-panel').waitFor({ state: 'visible' });
    await page.locator('#incident-body .incident, #incident-body .ridership-empty').first().waitFor({ timeout: 10_000 });
    if (active.length) {
      assert.ok(await page.locator('#incident-body .incident').count() >= 1);
    } else {
      assert.match(await page.textContent('#incident-body'), /No incidents/);
      assert.equal(await page.isVisible('#incident-count'), false, 'no badge when nothing is going on');
    }
    await page.click('#incident-panel .panel-x');
    await page.locator('#incident-panel').waitFor({ state: 'hidden' });
  });

  step('marks an incident on the map and lists it in both languages', async () => {
    // The demo raises none by itself (detected ones wait for an operator): serve one.
    const stop = (await getJson('/api/v1/stops.geojson')).features[0];
    const [lon, lat] = stop.geometry.coordinates;
    const now = Math.floor(Date.now() / 1000);
    const fake = [{
      id: 7, status: 'active', source: 'operator', created_at: now - 600, updated_at: now - 60,
      incident: {
        header: '도로 공사로 우회 운행', header_en: 'Detour for road works', description: null, cause: 'construction', effect: 'detour',
        severity: 'warning', routes: [], stops: [stop.properties.stop_id], area: { lat, lon, radius_m: 300 }, starts_at: now - 600, ends_at: null, vehicle_id: null,
      },
    }];
    const p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    watchConsole(p);
    await p.route('**/api/v1/incidents', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(fake) }));
    await p.goto(`${server.base}/`);
    await p.evaluate(() => localStorage.setItem('cityos.lang', 'ko'));
    await p.reload();
    await p.waitForFunction(() => Number(document.body.dataset.incidentsDrawn) === 1, null, { timeout: 20_000 });
    assert.equal((await p.textContent('#incident-count')).trim(), '1');
    await p.click('#open-incidents');
    await p.locator('#incident-body .incident').first().waitFor();
    assert.match(await p.textContent('#incident-body .incident-title'), /도로 공사로 우회 운행/);
    await p.screenshot({ path: path.join(OUT, 'live-incident.png') });
    await p.click('#lang-en');
    assert.match(await p.textContent('#incident-body .incident-title'), /Detour for road works/);
    await p.close();
  });

  step('renders the live parts in Korean and English', async () => {
    await page.click('#lang-ko');
    assert.equal((await page.textContent('[data-i18n="summary.vehicles"]')).trim(), '운행 차량');
    assert.equal((await page.textContent('#open-incidents .tool-label')).trim(), '돌발');
    assert.match(await page.textContent('#legend-list'), /실시간/);
    assert.match(await page.textContent('#legend-list'), /도로 소통/);
    // The live stop board in the panel speaks Korean too.
    assert.ok(await page.evaluate((id) => window.cityosMap.openStop(id), target.stop_id));
    const row = page.locator('#stop-panel .departure[data-realtime="true"]').first();
    await row.waitFor({ timeout: 15_000 });
    assert.match(await row.locator('.mins').textContent(), /실시간.*(분 후|곧 출발)/);
    assert.match(await row.locator('.dep-sub').textContent(), /지연|빠름|정시/);
    assert.match(await page.textContent('#panel-board'), /정류장 안내판/);
    await page.screenshot({ path: path.join(OUT, 'live-ko.png') });
    await page.click('#lang-en');
    assert.match(await row.locator('.mins').textContent(), /Live.*(min|Now)/);
    assert.match(await row.locator('.dep-sub').textContent(), /late|early|On time/);
    await page.click('#panel-close');
    assert.equal((await page.textContent('[data-i18n="summary.vehicles"]')).trim(), 'Vehicles');
    assert.match(await page.textContent('#legend-list'), /Road speeds/);
  });

  step('shows real-time predictions on the stop board page, with a clock, in both languages', async () => {
    assert.ok(target, 'a stop with predictions was found earlier');
    const board = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    watchConsole(board);
    await board.goto(`${server.base}/board?stop=${encodeURIComponent(target.stop_id)}&lang=ko`);
    await board.waitForFunction(() => Number(document.body.dataset.realtimeRows) > 0, null, { timeout: 20_000 });
    assert.equal(await board.evaluate(() => document.body.dataset.state), 'live');
    assert.equal((await board.textContent('#stop-name')).trim(), target.board.stop_name);
    assert.match(await board.textContent('#clock'), /^\d{2}:\d{2}:\d{2}$/);
    const row = board.locator('.row[data-realtime="true"]').first();
    assert.equal(await row.locator('.live-icon').count(), 1);
    assert.match(await row.textContent(), /실시간/);
    assert.match(await row.locator('.stops-away').textContent(), /^\d+번째 전$/);
    // Step-free vehicles are marked, with what the mark means.
    const stepFree = board.locator('.row .step-free').first();
    assert.equal(await stepFree.getAttribute('title'), '저상 · 휠체어 탑승 가능');
    assert.match(await row.locator('.mins').textContent(), /분|곧 도착/);
    const badge = await row.locator('.badge').textContent();
    assert.ok(target.board.items.some((i) => (i.route_short_name || i.route_id) === badge), `badge ${badge}`);
    assert.equal((await board.textContent('[data-i18n="col.dest"]')).trim(), '행선지');
    await board.screenshot({ path: path.join(OUT, 'board-ko.png') });

    await board.click('.lang button[data-lang="en"]');
    assert.equal((await board.textContent('#kicker')).trim(), 'Next arrivals');
    assert.match(await board.locator('.row[data-realtime="true"]').first().textContent(), /Live/);
    assert.match(await board.locator('.row[data-realtime="true"] .stops-away').first().textContent(), /^\d+ stops? away$/);
    await board.setViewportSize({ width: 390, height: 844 });
    await board.screenshot({ path: path.join(OUT, 'board-phone.png') });

    // The board keeps updating by itself.
    const first = await board.textContent('#conn');
    await board.waitForFunction((t) => document.querySelector('#conn').textContent !== t, first, { timeout: 15_000 });

    // Its map link opens the map on this stop.
    await Promise.all([board.waitForNavigation(), board.click('#map-link')]);
    await board.locator('#stop-panel').waitFor({ state: 'visible', timeout: 20_000 });
    assert.equal((await board.textContent('#stop-name')).trim(), target.board.stop_name);

    // Without a stop it says what to do.
    await board.goto(`${server.base}/board`);
    assert.equal(await board.evaluate(() => document.body.dataset.state), 'nostop');
    assert.ok(await board.isVisible('#message'));
    await board.close();
  });

  step('the stop board reconnects when its stream fails, and shows alerts for its stop', async () => {
    assert.ok(target, 'a stop with predictions was found earlier');
    const board = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    // Chromium logs the refused stream as a console error: expected here, so not watched.
    const pageErrors = [];
    board.on('pageerror', (e) => pageErrors.push(e.message));
    let refused = 0;
    await board.route('**/departures/stream?*', (route) => {
      if (refused++ === 0) return route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"try later"}}' });
      return route.continue();
    });
    const now = Math.floor(Date.now() / 1000);
    await board.route('**/api/v1/incidents', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify([{
      id: 9, status: 'active', source: 'operator', created_at: now, updated_at: now,
      incident: { header: '이 정류장 임시 이전', header_en: 'Stop moved for the day', cause: 'construction', effect: 'stop_moved', severity: 'warning',
        routes: [], stops: [target.stop_id], area: null, starts_at: null, ends_at: null, vehicle_id: null },
    }]) }));
    await board.goto(`${server.base}/board?stop=${encodeURIComponent(target.stop_id)}&lang=en`);
    await board.waitForFunction(() => document.body.dataset.state === 'offline', null, { timeout: 10_000 });
    assert.match(await board.textContent('#conn'), /Reconnecting/);
    await board.waitForFunction(() => document.body.dataset.state === 'live' && Number(document.body.dataset.realtimeRows) > 0, null, { timeout: 15_000 });
    assert.ok(refused >= 2, 'the board asked again');
    await board.waitForFunction(() => document.body.dataset.alerts === '1', null, { timeout: 10_000 });
    assert.match(await board.textContent('#alerts'), /Stop moved for the day/);
    await board.click('.lang button[data-lang="ko"]');
    assert.match(await board.textContent('#alerts'), /이 정류장 임시 이전/);
    await board.screenshot({ path: path.join(OUT, 'board-alert.png') });
    assert.deepEqual(pageErrors, []);
    await board.close();
  });

  step('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

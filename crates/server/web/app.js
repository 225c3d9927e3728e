// cityos web map: the city's transit network drawn on a <canvas>, with stop
// search and live departures. Plain JS with no dependencies and no network
// access beyond this server's own API (and an optional tile server), so the
// page works offline and can be embedded in the server binary as-is.
//
// Text that comes from the API is only ever put into the page through
// textContent / text nodes (see `h()`), never through innerHTML, so stop
// names containing < > & or quotes are shown literally.
'use strict';

(() => {
  // ------------------------------------------------------------------ i18n --

  const STRINGS = {
    ko: {
      'app.title': '대중교통 지도',
      'app.subtitle': '대중교통 지도',
      'summary.routes': '노선',
      'summary.stops': '정류장',
      'summary.trips': '운행',
      'search.label': '정류장 검색',
      'search.placeholder': '정류장·역 이름 검색',
      'search.none': '일치하는 정류장이 없습니다',
      'search.error': '검색하지 못했습니다: {msg}',
      'search.more': '외 {n}곳 더 있음 — 검색어를 더 입력하세요',
      'lang.label': '언어',
      'map.label': '대중교통 노선 지도',
      'zoom.label': '확대/축소',
      'zoom.in': '확대',
      'zoom.out': '축소',
      'zoom.fit': '전체 보기',
      'legend.title': '노선 종류',
      'legend.stops': '정류장',
      'legend.stopsHidden': '확대하면 보입니다',
      'kind.trunk': '간선',
      'kind.branch': '지선',
      'kind.circular': '순환',
      'kind.night': '심야',
      'kind.subway': '지하철',
      'kind.rail': '철도',
      'kind.tram': '트램',
      'kind.ferry': '여객선',
      'kind.bus': '버스',
      'kind.other': '기타',
      'status.loading': '지도를 불러오는 중…',
      'status.error': '교통망을 불러오지 못했습니다: {msg}',
      'status.empty': '아직 가져온 교통 데이터가 없습니다',
      'panel.stop': '정류장',
      'panel.station': '역',
      'panel.close': '닫기',
      'panel.departures': '곧 출발',
      'panel.refresh': '새로고침',
      'panel.loading': '불러오는 중…',
      'panel.none': '곧 출발하는 차편이 없습니다',
      'panel.error': '출발 정보를 불러오지 못했습니다: {msg}',
      'panel.asof': '{time} 기준 · {tz}',
      'panel.id': '정류장 번호 {id}',
      'panel.wheelchair': '휠체어 이용 가능',
      'dep.now': '곧 출발',
      'dep.min': '{n}분 후',
      'dep.hourMin': '{h}시간 {m}분 후',
      'dep.tomorrow': '내일',
      'err.network': '서버에 연결할 수 없습니다',
    },
    en: {
      'app.title': 'Transit map',
      'app.subtitle': 'Transit map',
      'summary.routes': 'Routes',
      'summary.stops': 'Stops',
      'summary.trips': 'Trips',
      'search.label': 'Search stops',
      'search.placeholder': 'Search stops and stations',
      'search.none': 'No matching stops',
      'search.error': 'Search failed: {msg}',
      'search.more': '{n} more — keep typing to narrow down',
      'lang.label': 'Language',
      'map.label': 'Transit network map',
      'zoom.label': 'Zoom',
      'zoom.in': 'Zoom in',
      'zoom.out': 'Zoom out',
      'zoom.fit': 'Show the whole network',
      'legend.title': 'Route types',
      'legend.stops': 'Stops',
      'legend.stopsHidden': 'zoom in to see',
      'kind.trunk': 'Trunk',
      'kind.branch': 'Branch',
      'kind.circular': 'Circular',
      'kind.night': 'Night',
      'kind.subway': 'Subway',
      'kind.rail': 'Rail',
      'kind.tram': 'Tram',
      'kind.ferry': 'Ferry',
      'kind.bus': 'Bus',
      'kind.other': 'Other',
      'status.loading': 'Loading the map…',
      'status.error': 'Could not load the network: {msg}',
      'status.empty': 'No transit data has been imported yet',
      'panel.stop': 'Stop',
      'panel.station': 'Station',
      'panel.close': 'Close',
      'panel.departures': 'Next departures',
      'panel.refresh': 'Refresh',
      'panel.loading': 'Loading…',
      'panel.none': 'No departures coming up',
      'panel.error': 'Could not load departures: {msg}',
      'panel.asof': 'As of {time} · {tz}',
      'panel.id': 'Stop ID {id}',
      'panel.wheelchair': 'Wheelchair accessible',
      'dep.now': 'Now',
      'dep.min': '{n} min',
      'dep.hourMin': '{h} h {m} min',
      'dep.tomorrow': 'tomorrow',
      'err.network': 'Cannot reach the server',
    },
  };
  const LANG_KEY = 'cityos.lang';

  function initialLang() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved && STRINGS[saved]) return saved;
    } catch (_) { /* storage may be disabled (private mode); fall through */ }
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'ko';
    return nav.toLowerCase().startsWith('ko') ? 'ko' : 'en';
  }

  let lang = initialLang();

  function t(key, vars) {
    let s = (STRINGS[lang] && STRINGS[lang][key]) ?? STRINGS.en[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  function fmtInt(n) {
    return Number.isFinite(n) ? new Intl.NumberFormat(lang === 'ko' ? 'ko-KR' : 'en-US').format(n) : '–';
  }

  // Static labels carry data-i18n* attributes; dynamic parts re-render themselves.
  function applyStaticStrings() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
    for (const el of document.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
  }

  function setLang(next) {
    if (!STRINGS[next]) return;
    lang = next;
    try { localStorage.setItem(LANG_KEY, next); } catch (_) { /* not fatal */ }
    applyStaticStrings();
    renderTitle();
    renderSummary();
    renderLegend();
    renderStatus();
    renderPanel();
    renderResults();
  }

  // ------------------------------------------------------------- helpers --

  const $ = (sel) => document.querySelector(sel);

  // Tiny element builder; strings become text nodes, which is what keeps API text escaped.
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

  // API errors come as {"error":{"code","message"}}; surface the message.
  async function api(path, opts = {}) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, signal: opts.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new Error(t('err.network'));
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* non-JSON body */ }
    if (!res.ok) {
      const err = new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
      err.status = res.status;
      err.code = body && body.error && body.error.code;
      throw err;
    }
    return body;
  }

  // Feeds sometimes give "RRGGBB" without '#'; anything else is ignored.
  function normColor(c) {
    if (typeof c !== 'string') return null;
    const m = /^#?([0-9a-f]{6})$/i.exec(c.trim());
    return m ? '#' + m[1].toUpperCase() : null;
  }

  // Pick dark or light text for a badge background (WCAG relative luminance).
  function textOn(bg) {
    const n = parseInt(bg.slice(1), 16);
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    const L = 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
    return L > 0.4 ? '#1D2330' : '#FFFFFF';
  }

  // ------------------------------------------------------- route styling --

  const KIND_COLORS = {
    trunk: '#3C5AA6',
    branch: '#5BB025',
    circular: '#F2B70A',
    night: '#1B2C5A',
    subway: '#7A5BA8', // only for subway lines that lack their own colour
    rail: '#8A8F98',
    tram: '#8A8F98',
    ferry: '#8A8F98',
    bus: '#8A8F98',
    other: '#8A8F98',
  };
  const KINDS = Object.keys(KIND_COLORS);
  // Bottom to top: rail-bound lines on top so they stay readable over dense bus networks.
  const KIND_ORDER = ['other', 'bus', 'ferry', 'branch', 'trunk', 'circular', 'night', 'tram', 'rail', 'subway'];
  const KIND_WIDTH = { subway: 4, rail: 3.5, tram: 3, trunk: 3, circular: 3, night: 3, branch: 2.5, bus: 2.5, ferry: 2.5, other: 2.5 };

  const CASED_KINDS = new Set(['subway', 'rail', 'tram']);
  const kindOf = (k) => (KIND_COLORS[k] ? k : 'other');
  const routeColor = (color, kind) => normColor(color) || KIND_COLORS[kindOf(kind)];

  // ------------------------------------------------------------- geometry --

  // Web Mercator in "world units": the whole world is the unit square, y down.
  const TILE = 256;
  const MIN_ZOOM = 2;
  const MAX_ZOOM = 19;
  const MAX_LAT = 85.05112878;
  const lonToX = (lon) => (lon + 180) / 360;
  const latToY = (lat) => {
    const s = Math.sin((clamp(lat, -MAX_LAT, MAX_LAT) * Math.PI) / 180);
    return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
  };
  const xToLon = (x) => x * 360 - 180;
  const yToLat = (y) => (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;

  // ---------------------------------------------------------------- state --

  const canvas = $('#map');
  const ctx = canvas.getContext('2d');
  const view = { cx: lonToX(126.978), cy: latToY(37.5665), zoom: 11 }; // Seoul City Hall until data says otherwise
  let cssW = 0;
  let cssH = 0;
  let dpr = 1;

  const state = {
    loaded: false,
    loadError: null,
    uiConfig: { basemap_url: null, city_name: null },
    network: null,
    vertexCount: 0,
    routes: [],       // {id, shortName, longName, kind, color, lines:[{pts, minx,miny,maxx,maxy}], minx..maxy}
    stops: [],        // {stop_id, name, location_type, parent_station, wheelchair_boarding, lon, lat, x, y}
    stopById: new Map(),
    dataBBox: null,   // world-unit bbox of everything drawn
    kindCounts: {},
    kindOn: Object.fromEntries(KINDS.map((k) => [k, true])),
    stopsOn: true,
    selected: null,   // stop object shown in the panel
    panel: { status: 'idle', data: null, error: null },
  };

  const scale = () => TILE * 2 ** view.zoom;
  const toScreenX = (x) => (x - view.cx) * scale() + cssW / 2;
  const toScreenY = (y) => (y - view.cy) * scale() + cssH / 2;
  const fromScreen = (sx, sy) => [view.cx + (sx - cssW / 2) / scale(), view.cy + (sy - cssH / 2) / scale()];

  // -------------------------------------------------------- data loading --

  function parseRoutes(fc) {
    const routes = [];
    for (const f of (fc && fc.features) || []) {
      const g = f && f.geometry;
      const p = (f && f.properties) || {};
      if (!g) continue;
      const parts = g.type === 'MultiLineString' ? g.coordinates : g.type === 'LineString' ? [g.coordinates] : [];
      const lines = [];
      for (const coords of parts || []) {
        if (!Array.isArray(coords) || coords.length < 2) continue;
        // Project once up front; frames then only do a multiply-add per vertex.
        const pts = new Float64Array(coords.length * 2);
        let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
        for (let i = 0; i < coords.length; i++) {
          const x = lonToX(+coords[i][0]);
          const y = latToY(+coords[i][1]);
          pts[2 * i] = x;
          pts[2 * i + 1] = y;
          if (x < minx) minx = x; if (x > maxx) maxx = x;
          if (y < miny) miny = y; if (y > maxy) maxy = y;
        }
        if (Number.isFinite(minx) && Number.isFinite(miny)) lines.push({ pts, minx, miny, maxx, maxy });
      }
      if (!lines.length) continue;
      const kind = kindOf(p.kind);
      routes.push({
        id: String(p.route_id ?? ''),
        shortName: p.short_name ?? '',
        longName: p.long_name ?? '',
        kind,
        color: routeColor(p.color, kind),
        width: KIND_WIDTH[kind],
        lines,
        minx: Math.min(...lines.map((l) => l.minx)),
        miny: Math.min(...lines.map((l) => l.miny)),
        maxx: Math.max(...lines.map((l) => l.maxx)),
        maxy: Math.max(...lines.map((l) => l.maxy)),
      });
    }
    // Sorted by layer then colour so consecutive routes can share one stroke() call.
    routes.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.color < b.color ? -1 : a.color > b.color ? 1 : 0));
    return routes;
  }

  function parseStops(fc) {
    const stops = [];
    for (const f of (fc && fc.features) || []) {
      const g = f && f.geometry;
      if (!g || g.type !== 'Point' || !Array.isArray(g.coordinates)) continue;
      const lon = +g.coordinates[0];
      const lat = +g.coordinates[1];
      if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
      const p = f.properties || {};
      stops.push({
        stop_id: String(p.stop_id ?? ''),
        name: p.name ?? '',
        location_type: Number(p.location_type) || 0,
        parent_station: p.parent_station ?? null,
        wheelchair_boarding: p.wheelchair_boarding ?? null,
        lon,
        lat,
        x: lonToX(lon),
        y: latToY(lat),
      });
    }
    // Stations last so they paint over the stops around them.
    stops.sort((a, b) => a.location_type - b.location_type);
    return stops;
  }

  // A fixed world-space grid (~1 km cells at Seoul's latitude) for click hit-testing.
  const GRID = 1 / 2 ** 15;
  const grid = new Map();
  const cellKey = (gx, gy) => gx * 65536 + gy;

  function buildGrid() {
    grid.clear();
    for (const s of state.stops) {
      const k = cellKey(Math.floor(s.x / GRID), Math.floor(s.y / GRID));
      let cell = grid.get(k);
      if (!cell) grid.set(k, (cell = []));
      cell.push(s);
    }
  }

  async function load() {
    renderStatus();
    const [cfg, net, routes, stops] = await Promise.allSettled([
      api('api/v1/ui-config'),
      api('api/v1/network'),
      api('api/v1/routes.geojson'),
      api('api/v1/stops.geojson'),
    ]);
    if (cfg.status === 'fulfilled' && cfg.value) state.uiConfig = cfg.value;
    if (net.status === 'fulfilled') state.network = net.value;

    const failed = [net, routes, stops].find((r) => r.status === 'rejected');
    if (failed) state.loadError = failed.reason.message || String(failed.reason);

    if (routes.status === 'fulfilled') state.routes = parseRoutes(routes.value);
    if (stops.status === 'fulfilled') state.stops = parseStops(stops.value);
    for (const s of state.stops) state.stopById.set(s.stop_id, s);
    buildGrid();

    state.kindCounts = {};
    for (const r of state.routes) state.kindCounts[r.kind] = (state.kindCounts[r.kind] || 0) + 1;
    state.vertexCount = state.routes.reduce((n, r) => n + r.lines.reduce((m, l) => m + l.pts.length / 2, 0), 0);
    state.dataBBox = computeDataBBox();
    state.loaded = true;

    renderTitle();
    renderSummary();
    renderLegend();
    renderStatus();
    resize();
    fit(false);
    requestRedraw();
  }

  function computeDataBBox() {
    const b = state.network && state.network.bbox;
    if (Array.isArray(b) && b.length === 4 && b.every(Number.isFinite)) {
      // Note y flips: the max latitude is the min world y.
      return { minx: lonToX(b[0]), miny: latToY(b[3]), maxx: lonToX(b[2]), maxy: latToY(b[1]) };
    }
    let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    for (const r of state.routes) {
      minx = Math.min(minx, r.minx); miny = Math.min(miny, r.miny);
      maxx = Math.max(maxx, r.maxx); maxy = Math.max(maxy, r.maxy);
    }
    for (const s of state.stops) {
      minx = Math.min(minx, s.x); miny = Math.min(miny, s.y);
      maxx = Math.max(maxx, s.x); maxy = Math.max(maxy, s.y);
    }
    return Number.isFinite(minx) ? { minx, miny, maxx, maxy } : null;
  }

  // ------------------------------------------------------------ view ops --

  // Fit a world bbox into the canvas, leaving room on the left for the zoom buttons.
  function viewForBBox(b) {
    const pad = { left: 64, right: 32, top: 32, bottom: 32 };
    const w = Math.max(50, cssW - pad.left - pad.right);
    const hgt = Math.max(50, cssH - pad.top - pad.bottom);
    const dx = b.maxx - b.minx;
    const dy = b.maxy - b.miny;
    let zoom = 15;
    if (dx > 0 || dy > 0) zoom = Math.log2(Math.min(w / (TILE * (dx || 1e-9)), hgt / (TILE * (dy || 1e-9))));
    zoom = clamp(zoom, MIN_ZOOM, 17);
    const s = TILE * 2 ** zoom;
    // Centre the bbox in the padded area rather than in the whole canvas.
    return {
      cx: (b.minx + b.maxx) / 2 - (pad.left - pad.right) / 2 / s,
      cy: (b.miny + b.maxy) / 2 - (pad.top - pad.bottom) / 2 / s,
      zoom,
    };
  }

  function fit(animate = true) {
    if (!state.dataBBox) return;
    const target = viewForBBox(state.dataBBox);
    if (animate) flyTo(target);
    else { cancelAnim(); Object.assign(view, target); requestRedraw(); }
  }

  // Zoom keeping the world point under (sx, sy) fixed on screen.
  function zoomAround(sx, sy, zoom) {
    const [wx, wy] = fromScreen(sx, sy);
    view.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
    view.cx = wx - (sx - cssW / 2) / scale();
    view.cy = wy - (sy - cssH / 2) / scale();
    requestRedraw();
  }

  let anim = null;
  const reduceMotion = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

  function flyTo(target, duration = 650) {
    const to = { cx: target.cx ?? view.cx, cy: target.cy ?? view.cy, zoom: clamp(target.zoom ?? view.zoom, MIN_ZOOM, MAX_ZOOM) };
    if (reduceMotion || duration <= 0) { cancelAnim(); Object.assign(view, to); requestRedraw(); return; }
    anim = { from: { ...view }, to, start: performance.now(), duration };
    requestRedraw();
  }

  function cancelAnim() { anim = null; }

  function stepAnim(now) {
    if (!anim) return;
    const k = clamp((now - anim.start) / anim.duration, 0, 1);
    const e = k < 0.5 ? 4 * k * k * k : 1 - (-2 * k + 2) ** 3 / 2; // ease-in-out cubic
    view.zoom = anim.from.zoom + (anim.to.zoom - anim.from.zoom) * e;
    view.cx = anim.from.cx + (anim.to.cx - anim.from.cx) * e;
    view.cy = anim.from.cy + (anim.to.cy - anim.from.cy) * e;
    if (k >= 1) anim = null;
  }

  function zoomBy(delta) {
    const base = anim ? anim.to : view;
    flyTo({ cx: base.cx, cy: base.cy, zoom: base.zoom + delta }, 250);
  }

  // ------------------------------------------------------------- drawing --

  let frameQueued = false;
  function requestRedraw() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(frame);
  }

  function frame(now) {
    frameQueued = false;
    stepAnim(now);
    draw();
    if (anim) requestRedraw();
  }

  function resize() {
    const wrap = canvas.parentElement;
    const w = wrap.clientWidth;
    const hgt = wrap.clientHeight;
    const r = window.devicePixelRatio || 1;
    if (w === cssW && hgt === cssH && r === dpr) return;
    cssW = w; cssH = hgt; dpr = r;
    canvas.width = Math.max(1, Math.round(w * r));
    canvas.height = Math.max(1, Math.round(hgt * r));
    requestRedraw();
  }

  // Stops are many: draw them all only when few, or once zoomed in; stations always.
  const STOP_LIMIT = 5000;
  const STOP_MIN_ZOOM = 14;
  const allStopsVisible = () => state.stops.length < STOP_LIMIT || view.zoom >= STOP_MIN_ZOOM;
  const isStopShown = (s) => state.stopsOn && (s.location_type === 1 || allStopsVisible());

  let lastRoutesDrawn = null;
  let lastStopsDrawn = null;

  function draw() {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const basemap = state.uiConfig && state.uiConfig.basemap_url;
    ctx.fillStyle = '#F4F5F2';
    ctx.fillRect(0, 0, cssW, cssH);
    if (basemap) {
      drawTiles(basemap);
      ctx.fillStyle = 'rgba(255,255,255,0.35)'; // wash the basemap so the network stands out
      ctx.fillRect(0, 0, cssW, cssH);
    } else {
      drawGraticule();
    }
    if (!state.loaded) return;

    const routesDrawn = drawNetwork();
    const stopsDrawn = drawStops();
    drawSelection();
    drawLabels();
    drawScaleBar();

    // Hooks for the browser test (and anyone curious in devtools).
    if (routesDrawn !== lastRoutesDrawn) document.body.dataset.routesDrawn = String((lastRoutesDrawn = routesDrawn));
    if (stopsDrawn !== lastStopsDrawn) document.body.dataset.stopsDrawn = String((lastStopsDrawn = stopsDrawn));
    updateStopsHint();
  }

  function viewportWorld(marginPx = 0) {
    const s = scale();
    return {
      minx: view.cx - (cssW / 2 + marginPx) / s,
      maxx: view.cx + (cssW / 2 + marginPx) / s,
      miny: view.cy - (cssH / 2 + marginPx) / s,
      maxy: view.cy + (cssH / 2 + marginPx) / s,
    };
  }

  // Big networks are slow to rasterise (notably without a GPU), so while the user is moving
  // the map we stretch the last full rendering of the routes and redraw properly once idle.
  // Measured with software rendering: ~300 bus routes (20k vertices) cost ~50 ms a frame.
  const HEAVY_VERTICES = 8000;
  const HEAVY_ROUTES = 120;
  const layer = { canvas: document.createElement('canvas'), view: null, drawn: 0 };
  let lastWheel = -Infinity;
  let settleTimer = null;
  const interacting = () => !!anim || !!gesture || performance.now() - lastWheel < 150;

  function drawNetwork() {
    if (state.vertexCount < HEAVY_VERTICES && state.routes.length < HEAVY_ROUTES) return drawRoutes(ctx);
    const lc = layer.canvas;
    if (layer.view && interacting() && lc.width === canvas.width && lc.height === canvas.height) {
      const k = 2 ** (view.zoom - layer.view.zoom);
      const ls = TILE * 2 ** layer.view.zoom;
      const x0 = toScreenX(layer.view.cx - cssW / 2 / ls);
      const y0 = toScreenY(layer.view.cy - cssH / 2 / ls);
      ctx.drawImage(lc, x0, y0, cssW * k, cssH * k);
      clearTimeout(settleTimer);
      settleTimer = setTimeout(requestRedraw, 160);
      return layer.drawn;
    }
    lc.width = canvas.width;
    lc.height = canvas.height;
    const lctx = lc.getContext('2d');
    lctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    layer.drawn = drawRoutes(lctx);
    layer.view = { ...view };
    ctx.drawImage(lc, 0, 0, cssW, cssH);
    return layer.drawn;
  }

  function drawRoutes(ctx) {
    const vp = viewportWorld(20);
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    const widthScale = clamp(1 + (view.zoom - 12) * 0.12, 0.7, 1.8);
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    let drawn = 0;
    let pathColor = null;
    let pathWidth = 0;
    let pathCased = false;
    let open = false;
    const flush = () => {
      if (!open) return;
      if (pathCased) {
        // A white casing lifts rail lines off the bus web below and shows crossings as bridges.
        ctx.strokeStyle = '#FFFFFF';
        ctx.lineWidth = pathWidth + 2.5;
        ctx.stroke();
      }
      ctx.strokeStyle = pathColor;
      ctx.lineWidth = pathWidth;
      ctx.stroke();
      open = false;
    };
    for (const r of state.routes) {
      if (!state.kindOn[r.kind]) continue;
      if (r.maxx < vp.minx || r.minx > vp.maxx || r.maxy < vp.miny || r.miny > vp.maxy) continue;
      const w = r.width * widthScale;
      if (!open || r.color !== pathColor || w !== pathWidth) {
        flush();
        ctx.beginPath();
        pathColor = r.color;
        pathWidth = w;
        pathCased = CASED_KINDS.has(r.kind);
        open = true;
      }
      for (const line of r.lines) {
        if (line.maxx < vp.minx || line.minx > vp.maxx || line.maxy < vp.miny || line.miny > vp.maxy) continue;
        const p = line.pts;
        const n = p.length / 2;
        let px = p[0] * s + hx;
        let py = p[1] * s + hy;
        ctx.moveTo(px, py);
        // Screen-space decimation: vertices closer than ~1px to the last kept one add nothing
        // at this zoom, which is what keeps Seoul-scale networks fast when zoomed out.
        for (let i = 1; i < n; i++) {
          const x = p[2 * i] * s + hx;
          const y = p[2 * i + 1] * s + hy;
          if (i < n - 1 && Math.abs(x - px) + Math.abs(y - py) < 1) continue;
          ctx.lineTo(x, y);
          px = x; py = y;
        }
      }
      drawn++;
    }
    flush();
    return drawn;
  }

  function stopRadius(station) {
    const r = clamp(1 + (view.zoom - 11) * 0.8, 1, 5);
    return station ? Math.max(r + 1.8, 3) : r;
  }

  function drawStops() {
    if (!state.stopsOn || !state.stops.length) return 0;
    const all = allStopsVisible();
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    let drawn = 0;
    // One path per style keeps 10k circles to two fill/stroke calls.
    for (const station of [false, true]) {
      if (!station && !all) continue;
      const r = stopRadius(station);
      ctx.beginPath();
      for (const st of state.stops) {
        if ((st.location_type === 1) !== station) continue;
        const x = st.x * s + hx;
        const y = st.y * s + hy;
        if (x < -r || y < -r || x > cssW + r || y > cssH + r) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, Math.PI * 2);
        drawn++;
      }
      // Zoomed out, plain stops are just dots: outlined circles would hide the lines under them.
      if (!station && r < 1.8) {
        ctx.fillStyle = '#505A6B';
        ctx.fill();
        continue;
      }
      ctx.fillStyle = '#FFFFFF';
      ctx.fill();
      ctx.strokeStyle = station ? '#1D2330' : '#505A6B';
      ctx.lineWidth = station ? 2 : 1.2;
      ctx.stroke();
    }
    return drawn;
  }

  function drawSelection() {
    const st = state.selected;
    if (!st || !Number.isFinite(st.x)) return;
    const x = toScreenX(st.x);
    const y = toScreenY(st.y);
    ctx.beginPath();
    ctx.arc(x, y, stopRadius(st.location_type === 1) + 5, 0, Math.PI * 2);
    ctx.strokeStyle = '#E8452C';
    ctx.lineWidth = 3;
    ctx.stroke();
  }

  // Names of stations from zoom 13, of all stops from 16; greedy placement avoids overlaps.
  function drawLabels() {
    const sel = state.selected;
    if (view.zoom < 13 && !sel) return;
    const showStations = state.stopsOn && view.zoom >= 13;
    const showStops = showStations && view.zoom >= 16 && allStopsVisible();
    ctx.font = '12px system-ui, "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans CJK KR", sans-serif';
    ctx.textBaseline = 'middle';
    ctx.lineJoin = 'round';
    const placed = [];
    const overlaps = (a) => placed.some((b) => a.x < b.x2 && a.x2 > b.x && a.y < b.y2 && a.y2 > b.y);
    const label = (st, force) => {
      if (!st.name || !Number.isFinite(st.x)) return false;
      const station = st.location_type === 1;
      const x = toScreenX(st.x);
      const y = toScreenY(st.y);
      if (x < 0 || y < 0 || x > cssW || y > cssH) return false;
      const lx = x + stopRadius(station) + (st === sel ? 9 : 4);
      const box = { x: lx - 2, y: y - 8, x2: lx + ctx.measureText(st.name).width + 2, y2: y + 8 };
      if (!force && overlaps(box)) return false;
      placed.push(box);
      ctx.strokeStyle = 'rgba(255,255,255,0.92)';
      ctx.lineWidth = 3;
      ctx.strokeText(st.name, lx, y);
      ctx.fillStyle = station || st === sel ? '#1D2330' : '#3B4353';
      ctx.fillText(st.name, lx, y);
      return true;
    };
    // The selected stop is always named; the rest fit around it.
    if (sel) label(sel, true);
    if (!showStations) return;
    let count = 0;
    // Stations are last in state.stops; walk backwards so they win the space.
    for (let i = state.stops.length - 1; i >= 0 && count < 250; i--) {
      const st = state.stops[i];
      if (st.location_type !== 1 && !showStops) break;
      if (st !== sel && label(st, false)) count++;
    }
  }

  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(raw));
    const m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  // A faint lon/lat graticule gives a sense of motion and scale when there is no basemap.
  function drawGraticule() {
    const vp = viewportWorld();
    const step = niceStep((140 * 360) / scale());
    ctx.beginPath();
    for (let lon = Math.ceil(xToLon(vp.minx) / step) * step; lon <= xToLon(vp.maxx); lon += step) {
      const x = Math.round(toScreenX(lonToX(lon))) + 0.5;
      ctx.moveTo(x, 0); ctx.lineTo(x, cssH);
    }
    const latMin = yToLat(vp.maxy);
    const latMax = yToLat(vp.miny);
    for (let lat = Math.ceil(latMin / step) * step; lat <= latMax; lat += step) {
      const y = Math.round(toScreenY(latToY(lat))) + 0.5;
      ctx.moveTo(0, y); ctx.lineTo(cssW, y);
    }
    ctx.strokeStyle = 'rgba(30,40,60,0.07)';
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  function drawScaleBar() {
    const lat = yToLat(view.cy);
    const mPerPx = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / scale();
    const meters = niceStep(100 * mPerPx);
    const px = meters / mPerPx;
    const x = 12;
    const y = cssH - 14;
    const label = meters >= 1000 ? `${meters / 1000} km` : `${meters} m`;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'bottom';
    ctx.lineCap = 'butt';
    ctx.beginPath();
    ctx.moveTo(x, y - 5); ctx.lineTo(x, y); ctx.lineTo(x + px, y); ctx.lineTo(x + px, y - 5);
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.lineWidth = 4;
    ctx.stroke();
    ctx.strokeStyle = '#3B4353';
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.fillStyle = '#3B4353';
    ctx.fillText(label, x + px + 6, y + 2);
  }

  // ---------------------------------------------------------- basemap tiles --

  const tiles = new Map(); // key -> {img, ok}; insertion order doubles as a rough LRU
  const TILE_CACHE = 400;

  function tileUrl(template, z, x, y) {
    return template
      .replace('{z}', z).replace('{x}', x).replace('{y}', y)
      .replace('{s}', 'abc'[(x + y) % 3]).replace('{r}', '');
  }

  function getTile(template, z, x, y) {
    const key = `${z}/${x}/${y}`;
    let t = tiles.get(key);
    if (t) { tiles.delete(key); tiles.set(key, t); return t; }
    t = { img: new Image(), ok: false };
    t.img.onload = () => { t.ok = true; requestRedraw(); };
    t.img.onerror = () => { t.ok = false; };
    t.img.src = tileUrl(template, z, x, y);
    tiles.set(key, t);
    if (tiles.size > TILE_CACHE) tiles.delete(tiles.keys().next().value);
    return t;
  }

  function drawTiles(template) {
    const z = clamp(Math.round(view.zoom), 0, MAX_ZOOM);
    const n = 2 ** z;
    const size = TILE * 2 ** (view.zoom - z);
    const vp = viewportWorld();
    const tx0 = Math.floor(vp.minx * n);
    const tx1 = Math.floor(vp.maxx * n);
    const ty0 = Math.max(0, Math.floor(vp.miny * n));
    const ty1 = Math.min(n - 1, Math.floor(vp.maxy * n));
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        const wx = ((tx % n) + n) % n;
        const sx = toScreenX(tx / n);
        const sy = toScreenY(ty / n);
        const t = getTile(template, z, wx, ty);
        if (t.ok) { ctx.drawImage(t.img, sx, sy, size + 0.5, size + 0.5); continue; }
        // While a tile loads, stretch an ancestor we already have.
        for (let up = 1; up <= 4 && z - up >= 0; up++) {
          const pk = `${z - up}/${wx >> up}/${ty >> up}`;
          const pt = tiles.get(pk);
          if (pt && pt.ok) {
            const k = 2 ** up;
            const sub = TILE / k;
            ctx.drawImage(pt.img, (wx % k) * sub, (ty % k) * sub, sub, sub, sx, sy, size + 0.5, size + 0.5);
            break;
          }
        }
      }
    }
  }

  // ---------------------------------------------------------- hit testing --

  function stopAt(sx, sy, radiusPx) {
    const [wx, wy] = fromScreen(sx, sy);
    const r = radiusPx / scale();
    const gx0 = Math.floor((wx - r) / GRID), gx1 = Math.floor((wx + r) / GRID);
    const gy0 = Math.floor((wy - r) / GRID), gy1 = Math.floor((wy + r) / GRID);
    let best = null;
    let bestD = r * r;
    const consider = (st) => {
      if (!isStopShown(st)) return;
      const d = (st.x - wx) ** 2 + (st.y - wy) ** 2;
      if (d <= bestD) { bestD = d; best = st; }
    };
    // Zoomed far out the radius spans many cells; a plain scan is then cheaper.
    if ((gx1 - gx0 + 1) * (gy1 - gy0 + 1) > 64) {
      for (const st of state.stops) consider(st);
    } else {
      for (let gx = gx0; gx <= gx1; gx++)
        for (let gy = gy0; gy <= gy1; gy++)
          for (const st of grid.get(cellKey(gx, gy)) || []) consider(st);
    }
    return best;
  }

  // ---------------------------------------------------------- interaction --

  const pointers = new Map(); // pointerId -> {x, y}
  let gesture = null;         // {type:'drag'|'pinch', ...}
  const tooltip = $('#tooltip');

  function localXY(e) {
    const rect = canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  function startGesture() {
    const pts = [...pointers.values()];
    if (pts.length === 1) {
      gesture = { type: 'drag', last: { ...pts[0] }, moved: 0, start: performance.now() };
    } else if (pts.length >= 2) {
      const [a, b] = pts;
      const mid = [(a.x + b.x) / 2, (a.y + b.y) / 2];
      gesture = { type: 'pinch', dist: Math.hypot(a.x - b.x, a.y - b.y) || 1, zoom: view.zoom, world: fromScreen(...mid), moved: Infinity };
    }
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 && e.pointerType === 'mouse') return;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = localXY(e);
    pointers.set(e.pointerId, { x, y });
    cancelAnim();
    startGesture();
    hideTooltip();
  });

  canvas.addEventListener('pointermove', (e) => {
    const [x, y] = localXY(e);
    if (!pointers.has(e.pointerId)) {
      if (e.pointerType === 'mouse') hover(x, y);
      return;
    }
    pointers.set(e.pointerId, { x, y });
    if (!gesture) return;
    if (gesture.type === 'drag') {
      const dx = x - gesture.last.x;
      const dy = y - gesture.last.y;
      gesture.moved += Math.abs(dx) + Math.abs(dy);
      gesture.last = { x, y };
      if (gesture.moved > 4) canvas.classList.add('dragging');
      view.cx -= dx / scale();
      view.cy -= dy / scale();
      requestRedraw();
    } else if (gesture.type === 'pinch') {
      const [a, b] = [...pointers.values()];
      const mid = [(a.x + b.x) / 2, (a.y + b.y) / 2];
      view.zoom = clamp(gesture.zoom + Math.log2(Math.hypot(a.x - b.x, a.y - b.y) / gesture.dist), MIN_ZOOM, MAX_ZOOM);
      // Keep the world point that started under the fingers' midpoint under it.
      view.cx = gesture.world[0] - (mid[0] - cssW / 2) / scale();
      view.cy = gesture.world[1] - (mid[1] - cssH / 2) / scale();
      requestRedraw();
    }
  });

  function endPointer(e) {
    if (!pointers.has(e.pointerId)) return;
    const g = gesture;
    pointers.delete(e.pointerId);
    canvas.classList.remove('dragging');
    if (e.type === 'pointerup' && g && g.type === 'drag' && g.moved < 6 && pointers.size === 0) {
      const [x, y] = localXY(e);
      const st = stopAt(x, y, e.pointerType === 'mouse' ? 10 : 20);
      if (st) { openStop(st); focusStop(st); }
    }
    // Lifting one finger of a pinch continues as a drag with the other.
    gesture = null;
    if (pointers.size) startGesture();
    requestRedraw(); // a full-quality frame now that the gesture is over
  }
  canvas.addEventListener('pointerup', endPointer);
  canvas.addEventListener('pointercancel', endPointer);

  function hover(x, y) {
    const st = state.loaded ? stopAt(x, y, 10) : null;
    canvas.classList.toggle('over-stop', !!st);
    if (!st) return hideTooltip();
    tooltip.textContent = st.name;
    tooltip.style.left = `${x}px`;
    tooltip.style.top = `${y}px`;
    tooltip.hidden = false;
  }
  function hideTooltip() { tooltip.hidden = true; }
  canvas.addEventListener('pointerleave', () => { hideTooltip(); canvas.classList.remove('over-stop'); });

  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    cancelAnim();
    lastWheel = performance.now();
    const [x, y] = localXY(e);
    // Normalise line/page deltas to pixels; ~500px of wheel is one zoom level.
    const px = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? cssH : 1);
    zoomAround(x, y, view.zoom - clamp(px, -300, 300) / 500);
  }, { passive: false });

  canvas.addEventListener('dblclick', (e) => {
    e.preventDefault();
    const [x, y] = localXY(e);
    const [wx, wy] = fromScreen(x, y);
    const zoom = clamp(view.zoom + 1, MIN_ZOOM, MAX_ZOOM);
    const s = TILE * 2 ** zoom;
    flyTo({ cx: wx - (x - cssW / 2) / s, cy: wy - (y - cssH / 2) / s, zoom }, 250);
  });

  canvas.addEventListener('keydown', (e) => {
    const pan = 80 / scale();
    const actions = {
      '+': () => zoomBy(1), '=': () => zoomBy(1), '-': () => zoomBy(-1), '_': () => zoomBy(-1), '0': () => fit(),
      ArrowLeft: () => { view.cx -= pan; }, ArrowRight: () => { view.cx += pan; },
      ArrowUp: () => { view.cy -= pan; }, ArrowDown: () => { view.cy += pan; },
    };
    const act = actions[e.key];
    if (!act) return;
    e.preventDefault();
    act();
    requestRedraw();
  });

  const legendEl = $('#legend');
  const legendToggle = $('#legend-toggle');
  function setLegendOpen(open) {
    legendEl.classList.toggle('collapsed', !open);
    legendToggle.setAttribute('aria-expanded', String(open));
  }
  legendToggle.addEventListener('click', () => setLegendOpen(legendEl.classList.contains('collapsed')));
  // Phones have little room to spare: start with the legend folded.
  setLegendOpen(!window.matchMedia('(max-width: 720px)').matches);

  $('#zoom-in').addEventListener('click', () => zoomBy(1));
  $('#zoom-out').addEventListener('click', () => zoomBy(-1));
  $('#zoom-fit').addEventListener('click', () => fit());

  for (const b of document.querySelectorAll('.lang button')) b.addEventListener('click', () => setLang(b.dataset.lang));

  new ResizeObserver(() => { resize(); draw(); }).observe(canvas.parentElement);
  // devicePixelRatio changes (zooming the page, moving windows between screens) don't resize the element.
  window.addEventListener('resize', resize);

  // ---------------------------------------------------------- header bits --

  function renderTitle() {
    const city = state.uiConfig && state.uiConfig.city_name;
    $('#city-name').textContent = city || 'cityos';
    document.title = city ? `${city} · ${t('app.title')}` : `cityos · ${t('app.title')}`;
  }

  function renderSummary() {
    const n = state.network || {};
    $('#count-routes').textContent = fmtInt(n.routes);
    $('#count-stops').textContent = fmtInt(n.stops);
    $('#count-trips').textContent = fmtInt(n.trips);
    const fv = n.feed_version ? ` · ${n.feed_version}` : '';
    $('#summary').title = `${n.agencies ?? '–'} agencies · ${fmtInt(n.stop_times)} stop_times${fv}`;
  }

  function renderStatus() {
    const el = $('#status');
    el.classList.remove('error');
    if (!state.loaded) { el.textContent = t('status.loading'); el.hidden = false; return; }
    if (state.loadError) {
      el.textContent = t('status.error', { msg: state.loadError });
      el.classList.add('error');
      el.hidden = false;
      return;
    }
    if (!state.routes.length && !state.stops.length) { el.textContent = t('status.empty'); el.hidden = false; return; }
    el.hidden = true;
  }

  function kindSwatch(kind) {
    if (kind !== 'subway') return KIND_COLORS[kind];
    // Subway lines each have their own colour; show a few of them.
    const cols = [...new Set(state.routes.filter((r) => r.kind === 'subway').map((r) => r.color))].slice(0, 5);
    if (cols.length < 2) return cols[0] || KIND_COLORS.subway;
    return `linear-gradient(90deg, ${cols.map((c, i) => `${c} ${(i * 100) / cols.length}% ${((i + 1) * 100) / cols.length}%`).join(', ')})`;
  }

  function renderLegend() {
    const list = $('#legend-list');
    const present = KIND_ORDER.slice().reverse().filter((k) => state.kindCounts[k]);
    const rows = present.map((kind) => h('li', null,
      h('label', null,
        h('input', {
          type: 'checkbox',
          dataset: { kind },
          onchange: (e) => { state.kindOn[kind] = e.target.checked; requestRedraw(); },
        }),
        h('span', { class: 'swatch', style: { background: kindSwatch(kind) } }),
        h('span', null, t(`kind.${kind}`)),
        h('span', { class: 'count' }, fmtInt(state.kindCounts[kind])))));
    if (state.stops.length) {
      rows.push(h('li', null,
        h('label', null,
          h('input', { type: 'checkbox', id: 'toggle-stops', onchange: (e) => { state.stopsOn = e.target.checked; requestRedraw(); } }),
          h('span', { class: 'swatch stop-swatch' }),
          h('span', null, t('legend.stops')),
          h('span', { class: 'count', id: 'stops-hint' }, fmtInt(state.stops.length)))));
    }
    list.replaceChildren(...rows);
    // Checkbox state is set as a property after creation (attributes would only set the default).
    for (const input of list.querySelectorAll('input[data-kind]')) input.checked = state.kindOn[input.dataset.kind];
    const ts = $('#toggle-stops');
    if (ts) ts.checked = state.stopsOn;
    $('#legend').hidden = rows.length === 0;
    lastHint = null;
    updateStopsHint();
  }

  let lastHint = null;
  function updateStopsHint() {
    const el = document.getElementById('stops-hint');
    if (!el) return;
    const hint = allStopsVisible() ? fmtInt(state.stops.length) : t('legend.stopsHidden');
    if (hint !== lastHint) el.textContent = lastHint = hint;
  }

  // ---------------------------------------------------------- stop panel --

  const panel = $('#stop-panel');
  let panelReq = 0;
  let panelTimer = null;

  // Where the map is not covered by the panel (right side on wide screens, top on phones).
  function freeArea() {
    if (panel.hidden) return { x: cssW / 2, y: cssH / 2 };
    const pr = panel.getBoundingClientRect();
    const cr = canvas.getBoundingClientRect();
    if (pr.width >= cr.width * 0.8) return { x: cssW / 2, y: Math.max(40, (pr.top - cr.top) / 2) };
    return { x: Math.max(40, (pr.left - cr.left) / 2), y: cssH / 2 };
  }

  // Move the map so the stop sits in the middle of the uncovered area.
  function focusStop(stop, zoom, always) {
    if (!Number.isFinite(stop.x) || !Number.isFinite(stop.y)) return;
    const sx = toScreenX(stop.x);
    const sy = toScreenY(stop.y);
    const pr = panel.hidden ? null : panel.getBoundingClientRect();
    const cr = canvas.getBoundingClientRect();
    const covered = pr && sx + cr.left > pr.left - 60 && sx + cr.left < pr.right && sy + cr.top > pr.top - 40 && sy + cr.top < pr.bottom;
    if (!always && !covered) return;
    const z = clamp(zoom ?? view.zoom, MIN_ZOOM, MAX_ZOOM);
    const s = TILE * 2 ** z;
    const free = freeArea();
    flyTo({ cx: stop.x - (free.x - cssW / 2) / s, cy: stop.y - (free.y - cssH / 2) / s, zoom: z }, always ? 800 : 400);
  }

  function openStop(stop) {
    state.selected = stop;
    state.panel = { status: 'loading', data: null, error: null };
    panel.hidden = false;
    renderPanel();
    requestRedraw();
    loadDepartures();
    clearInterval(panelTimer);
    // Departures go stale by the minute; refresh while the panel is open and visible.
    panelTimer = setInterval(() => { if (!document.hidden) loadDepartures(); }, 30000);
  }

  function closePanel() {
    state.selected = null;
    panel.hidden = true;
    clearInterval(panelTimer);
    panelReq++;
    requestRedraw();
  }

  async function loadDepartures() {
    const st = state.selected;
    if (!st) return;
    const req = ++panelReq;
    try {
      const data = await api(`api/v1/stops/${encodeURIComponent(st.stop_id)}/departures?${departureQuery()}`);
      if (req !== panelReq) return; // a newer request (or close) superseded this one
      state.panel = { status: 'ok', data, error: null };
    } catch (e) {
      if (req !== panelReq) return;
      state.panel = { status: 'error', data: state.panel.data, error: e.message };
    }
    renderPanel();
  }

  // `/?date=YYYY-MM-DD&time=HH:MM[:SS]` pins the departure boards to another moment
  // (planning ahead, checking a timetable, reproducible tests); by default the server uses now.
  const pinned = new URLSearchParams(location.search);
  function departureQuery() {
    const q = new URLSearchParams({ limit: '8' });
    const date = pinned.get('date');
    const time = pinned.get('time');
    if (date && /^\d{4}-\d{2}-\d{2}$/.test(date)) q.set('date', date);
    if (time && /^\d{1,2}:\d{2}(:\d{2})?$/.test(time)) {
      const [hh, mm, ss = '00'] = time.split(':');
      q.set('time', `${hh.padStart(2, '0')}:${mm}:${ss}`);
    }
    return q.toString();
  }

  // "departure" is RFC3339 in the agency zone, so its clock part is already local.
  function depClock(item) {
    const m = /T(\d{2}):(\d{2})/.exec(item.departure || '');
    if (m) return `${m[1]}:${m[2]}`;
    const d = /^(\d+):(\d{2})/.exec(item.departure_time || '');
    return d ? `${String(+d[1] % 24).padStart(2, '0')}:${d[2]}` : '';
  }

  function depAway(mins) {
    if (!Number.isFinite(mins)) return '';
    if (mins <= 0) return t('dep.now');
    if (mins < 60) return t('dep.min', { n: mins });
    return t('dep.hourMin', { h: Math.floor(mins / 60), m: mins % 60 });
  }

  function renderPanel() {
    const st = state.selected;
    if (!st) return;
    const data = state.panel.data;
    const station = st.location_type === 1;
    $('#stop-kind').textContent = station ? t('panel.station') : t('panel.stop');
    $('#stop-name').textContent = (data && data.stop_name) || st.name || st.stop_id;
    const meta = [t('panel.id', { id: st.stop_id })];
    if (Number(st.wheelchair_boarding) === 1) meta.push(`♿ ${t('panel.wheelchair')}`);
    $('#stop-meta').textContent = meta.join(' · ');
    $('#stop-asof').textContent = data && data.time
      ? t('panel.asof', { time: `${data.date || ''} ${String(data.time).slice(0, 5)}`.trim(), tz: data.timezone || '' })
      : '';

    const list = $('#departures');
    if (state.panel.status === 'loading') {
      list.replaceChildren(h('li', { class: 'empty' }, t('panel.loading')));
      return;
    }
    const rows = [];
    if (state.panel.status === 'error') rows.push(h('li', { class: 'error' }, t('panel.error', { msg: state.panel.error })));
    const items = (data && data.items) || [];
    for (const it of items) {
      const bg = routeColor(it.route_color, it.route_kind);
      const mins = Number(it.minutes_away);
      const nextDay = data.date && it.departure && it.departure.slice(0, 10) > data.date;
      rows.push(h('li', { class: 'departure', dataset: { tripId: it.trip_id ?? '', routeId: it.route_id ?? '' } },
        h('span', { class: 'route-badge', style: { background: bg, color: textOn(bg) } }, it.route_short_name || it.route_id || '?'),
        h('span', { class: 'headsign', title: it.headsign || '' }, it.headsign || ''),
        h('span', { class: 'when' },
          h('span', { class: mins <= 2 ? 'mins soon' : 'mins' }, depAway(mins)),
          h('span', { class: 'time' }, nextDay ? `${t('dep.tomorrow')} ${depClock(it)}` : depClock(it)))));
    }
    if (!items.length && state.panel.status === 'ok') rows.push(h('li', { class: 'empty' }, t('panel.none')));
    list.replaceChildren(...rows);
  }

  $('#panel-close').addEventListener('click', closePanel);
  $('#panel-refresh').addEventListener('click', () => loadDepartures());
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !panel.hidden && document.activeElement !== searchInput) closePanel();
  });

  // ---------------------------------------------------------------- search --

  const searchInput = $('#stop-search');
  const resultsEl = $('#stop-results');
  const search = { items: [], total: 0, active: -1, error: null, open: false, query: '' };
  let searchTimer = null;
  let searchAbort = null;

  function runSearch(q) {
    if (searchAbort) searchAbort.abort();
    if (!q) { search.open = false; search.items = []; renderResults(); return; }
    const ctrl = (searchAbort = new AbortController());
    api(`api/v1/stops?q=${encodeURIComponent(q)}&limit=20&offset=0`, { signal: ctrl.signal })
      .then((res) => {
        search.items = (res && res.items) || [];
        search.total = (res && res.total) || search.items.length;
        search.error = null;
      })
      .catch((e) => {
        if (e.name === 'AbortError') return Promise.reject(e);
        search.items = [];
        search.total = 0;
        search.error = e.message;
      })
      .then(() => {
        search.query = q;
        search.active = search.items.length ? 0 : -1;
        search.open = true;
        renderResults();
      })
      .catch(() => { /* aborted by a newer query */ });
  }

  function renderResults() {
    resultsEl.hidden = !search.open;
    searchInput.setAttribute('aria-expanded', String(search.open));
    if (!search.open) return;
    const rows = search.items.map((it, i) => {
      const local = state.stopById.get(String(it.stop_id));
      const station = Number(it.location_type) === 1 || (local && local.location_type === 1);
      return h('li', {
        role: 'option',
        id: `stop-result-${i}`,
        'aria-selected': String(i === search.active),
        dataset: { stopId: it.stop_id },
        onpointerdown: (e) => e.preventDefault(), // keep focus in the input so the list doesn't vanish first
        onclick: () => chooseResult(i),
      },
      h('span', { class: 'result-name' }, it.name || it.stop_id),
      h('span', { class: 'result-meta' }, `${station ? t('panel.station') : t('panel.stop')} · ${it.stop_id}`));
    });
    if (search.error) rows.push(h('li', { class: 'empty' }, t('search.error', { msg: search.error })));
    else if (!rows.length) rows.push(h('li', { class: 'empty' }, t('search.none')));
    else if (search.total > search.items.length) rows.push(h('li', { class: 'empty' }, t('search.more', { n: fmtInt(search.total - search.items.length) })));
    resultsEl.replaceChildren(...rows);
    if (search.active >= 0) searchInput.setAttribute('aria-activedescendant', `stop-result-${search.active}`);
    else searchInput.removeAttribute('aria-activedescendant');
  }

  function chooseResult(i) {
    const it = search.items[i];
    if (!it) return;
    search.open = false;
    renderResults();
    searchInput.value = it.name || it.stop_id;
    // Prefer the stop as drawn on the map (same object → selection ring lines up).
    let stop = state.stopById.get(String(it.stop_id));
    if (!stop) {
      const lon = +it.lon;
      const lat = +it.lat;
      stop = {
        stop_id: String(it.stop_id), name: it.name || '', location_type: Number(it.location_type) || 0,
        parent_station: it.parent_station ?? null, wheelchair_boarding: null, lon, lat, x: lonToX(lon), y: latToY(lat),
      };
    }
    openStop(stop);
    focusStop(stop, Math.max(view.zoom, 16), true);
  }

  searchInput.addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = searchInput.value.trim();
    searchTimer = setTimeout(() => runSearch(q), 180);
  });
  searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!search.open || !search.items.length) return;
      e.preventDefault();
      const n = search.items.length;
      search.active = (search.active + (e.key === 'ArrowDown' ? 1 : -1) + n) % n;
      renderResults();
      const el = document.getElementById(`stop-result-${search.active}`);
      if (el) el.scrollIntoView({ block: 'nearest' });
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (search.open && search.items.length) chooseResult(Math.max(0, search.active));
      else { clearTimeout(searchTimer); runSearch(searchInput.value.trim()); }
    } else if (e.key === 'Escape') {
      search.open = false;
      renderResults();
    }
  });
  searchInput.addEventListener('blur', () => { search.open = false; renderResults(); });
  searchInput.addEventListener('focus', () => { if (search.items.length && searchInput.value.trim() === search.query) { search.open = true; renderResults(); } });

  // ------------------------------------------------------------ test hooks --

  window.cityosMap = {
    /** [x, y] in CSS pixels relative to the canvas's top-left corner. */
    project(lon, lat) { return [toScreenX(lonToX(lon)), toScreenY(latToY(lat))]; },
    unproject(x, y) { const [wx, wy] = fromScreen(x, y); return [xToLon(wx), yToLat(wy)]; },
    get stops() { return state.stops; },
    get routes() { return state.routes.map((r) => ({ route_id: r.id, short_name: r.shortName, kind: r.kind, color: r.color })); },
    get view() { return { lon: xToLon(view.cx), lat: yToLat(view.cy), zoom: view.zoom }; },
    get animating() { return !!anim; },
    setView(lon, lat, zoom) { cancelAnim(); view.cx = lonToX(lon); view.cy = latToY(lat); if (zoom != null) view.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM); requestRedraw(); },
    fit: () => fit(false),
    openStop(stopId) { const st = state.stopById.get(String(stopId)); if (st) { openStop(st); focusStop(st); } return !!st; },
    setLang,
  };

  // ------------------------------------------------------------------ start --

  applyStaticStrings();
  renderTitle();
  resize();
  requestRedraw();
  load().catch((e) => {
    state.loaded = true;
    state.loadError = e.message || String(e);
    renderStatus();
  });
})();

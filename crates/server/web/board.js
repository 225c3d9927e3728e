// cityos stop board: the next arrivals at one stop, for a display at the stop or a
// phone. `board?stop=<stop_id>[&lang=ko|en][&limit=N]`. Live over Server-Sent Events
// (reconnecting on its own), with a clock and Korean/English text. API text only
// ever reaches the page through textContent.
'use strict';

(() => {
  const STRINGS = {
    ko: {
      title: '정류장 안내',
      kicker: '정류장 안내',
      lang: '언어',
      'col.route': '노선',
      'col.dest': '행선지',
      'col.mins': '도착',
      'col.time': '시각',
      map: '지도',
      now: '곧 도착',
      min: '{n}분',
      minLong: '{n}분 후',
      hourMin: '{h}시간 {m}분',
      live: '실시간',
      scheduled: '시간표',
      late: '{n}분 지연',
      early: '{n}분 빠름',
      onTime: '정시',
      vehicle: '차량 {id}',
      stopsAway: '{n}번째 전',
      lastBus: '막차',
      lastTrain: '막차',
      lastFerry: '막배',
      lastTitle: '오늘 이 정류장을 지나는 이 노선의 마지막 차량',
      stepFree: '저상 · 휠체어 탑승 가능',
      tomorrow: '내일',
      stopId: '정류장 번호 {id}',
      connected: '실시간 연결됨 · {time} 갱신',
      connecting: '연결 중…',
      offline: '연결이 끊겼습니다. {s}초 후 다시 연결합니다',
      noStopTitle: '정류장이 지정되지 않았습니다',
      noStop: '주소 끝에 ?stop=정류장번호 를 붙여 주세요. 예: board?stop=00001',
      unknownTitle: '이 정류장을 찾을 수 없습니다',
      noneTitle: '곧 도착하는 차량이 없습니다',
      none: '운행이 끝났거나 아직 시작하지 않았습니다.',
      nextLater: '다음 차량 {day}{time} 출발 · {route} {dest} 방면',
      errorTitle: '정보를 불러오지 못했습니다',
    },
    en: {
      title: 'Stop board',
      kicker: 'Next arrivals',
      lang: 'Language',
      'col.route': 'Route',
      'col.dest': 'Destination',
      'col.mins': 'Due',
      'col.time': 'Time',
      map: 'Map',
      now: 'Due',
      min: '{n} min',
      minLong: 'in {n} min',
      hourMin: '{h} h {m} min',
      live: 'Live',
      scheduled: 'Scheduled',
      late: '{n} min late',
      early: '{n} min early',
      onTime: 'On time',
      vehicle: 'Vehicle {id}',
      stopsAway: '{n} stops away',
      lastBus: 'Last bus',
      lastTrain: 'Last train',
      lastFerry: 'Last ferry',
      lastTitle: 'The last of this route to call here today',
      stepFree: 'Step-free: takes a wheelchair',
      stopAway: '1 stop away',
      tomorrow: 'tomorrow',
      stopId: 'Stop {id}',
      connected: 'Live · updated {time}',
      connecting: 'Connecting…',
      offline: 'Disconnected. Reconnecting in {s} s',
      noStopTitle: 'No stop chosen',
      noStop: 'Add ?stop=<stop id> to the address, e.g. board?stop=00001',
      unknownTitle: 'This stop was not found',
      noneTitle: 'No arrivals coming up',
      none: 'Service has ended for the day or has not started yet.',
      nextLater: 'Next: {route} to {dest} at {day}{time}',
      errorTitle: 'Could not load the board',
    },
  };

  const params = new URLSearchParams(location.search);
  const stopId = (params.get('stop') || '').trim();
  const limit = Math.min(30, Math.max(1, Number(params.get('limit')) || 12));
  const LANG_KEY = 'cityos.lang';

  function initialLang() {
    const q = params.get('lang');
    if (q && STRINGS[q]) return q;
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved && STRINGS[saved]) return saved;
    } catch (_) { /* storage may be off */ }
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'ko';
    return nav.toLowerCase().startsWith('ko') ? 'ko' : 'en';
  }
  let lang = initialLang();

  function t(key, vars) {
    let s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  const $ = (sel) => document.querySelector(sel);
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function normColor(c) {
    const m = typeof c === 'string' ? /^#?([0-9a-f]{6})$/i.exec(c.trim()) : null;
    return m ? '#' + m[1].toUpperCase() : null;
  }
  const KIND_COLORS = { trunk: '#3C5AA6', branch: '#5BB025', circular: '#F2B70A', night: '#1B2C5A', subway: '#7A5BA8' };
  function textOn(bg) {
    const n = parseInt(bg.slice(1), 16);
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    const L = 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
    return L > 0.4 ? '#1D2330' : '#FFFFFF';
  }

  const state = { board: null, status: stopId ? 'connecting' : 'nostop', error: null, lastUpdate: null, retryAt: null, incidents: [] };

  // ----- clock (in the agency's zone once the board says which)

  function fmt(date, opts) {
    const tz = state.board && state.board.timezone;
    try {
      return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', { ...opts, timeZone: tz || undefined }).format(date);
    } catch (_) {
      return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', opts).format(date);
    }
  }

  function tick() {
    const now = new Date();
    $('#clock').textContent = fmt(now, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    $('#date').textContent = fmt(now, { month: 'long', day: 'numeric', weekday: 'short' });
    renderConn();
  }

  // ----- rendering

  const rfcClock = (s) => { const m = /T(\d{2}):(\d{2})/.exec(s || ''); return m ? `${m[1]}:${m[2]}` : ''; };

  function liveIcon() {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 16 16');
    svg.setAttribute('class', 'live-icon');
    svg.setAttribute('aria-hidden', 'true');
    for (const d of ['M3.5 12.5a6.4 6.4 0 0 1 0-9', 'M12.5 3.5a6.4 6.4 0 0 1 0 9', 'M5.8 10.2a3.2 3.2 0 0 1 0-4.4', 'M10.2 5.8a3.2 3.2 0 0 1 0 4.4']) {
      const p = document.createElementNS(NS, 'path');
      p.setAttribute('d', d);
      svg.append(p);
    }
    const c = document.createElementNS(NS, 'circle');
    c.setAttribute('cx', '8'); c.setAttribute('cy', '8'); c.setAttribute('r', '1.6');
    svg.append(c);
    return svg;
  }

  function minsCell(mins) {
    if (!Number.isFinite(mins)) return '';
    if (mins <= 0) return t('now');
    if (mins >= 60) return h('small', { class: 'far' }, t('hourMin', { h: Math.floor(mins / 60), m: mins % 60 }));
    const m = /^(\d+)(.*)$/.exec(t('min', { n: mins }));
    return m ? [m[1], h('small', null, m[2])] : t('min', { n: mins });
  }

  // Where the bus is, as Seoul's displays say it: how many stops before this one.
  // 막차: the last bus, train or ferry.
  function lastKey(kind) {
    return ['subway', 'rail', 'tram'].includes(kind) ? 'lastTrain' : kind === 'ferry' ? 'lastFerry' : 'lastBus';
  }

  function stopsAway(n) {
    return n === 1 && lang === 'en' ? t('stopAway') : t('stopsAway', { n });
  }

  function delayOf(it) {
    const s = Number(it.delay_s);
    if (!it.realtime || !Number.isFinite(s)) return null;
    const m = Math.round(s / 60);
    if (m >= 1) return { text: t('late', { n: m }), cls: m >= 5 ? 'late' : 'bit-late' };
    if (m <= -1) return { text: t('early', { n: -m }), cls: 'early' };
    return { text: t('onTime'), cls: 'on-time' };
  }

  function showMessage(title, body) {
    const el = $('#message');
    delete el.dataset.nextTrip;
    el.replaceChildren(h('strong', null, title), body ? h('span', null, body) : null);
    el.hidden = false;
  }

  // A board with nothing in its window (at night) says when the next
  // vehicle leaves, from a day's look ahead fetched at most once a minute.
  const later = { fetchedAt: 0, items: null };
  async function fetchLater() {
    later.fetchedAt = Date.now();
    const q = new URLSearchParams(query());
    q.set('window_minutes', '1440');
    q.set('limit', '1');
    try {
      const res = await fetch(`${base()}?${q}`, { headers: { Accept: 'application/json' } });
      if (res.ok) later.items = (await res.json()).items || [];
    } catch (_) { /* the live connection reports trouble */ }
    render();
  }

  function showNothingSoon(b) {
    const next = later.items && later.items[0];
    if (next) {
      const tomorrow = b.date && next.departure && next.departure.slice(0, 10) > b.date;
      showMessage(t('noneTitle'), t('nextLater', {
        day: tomorrow ? `${t('tomorrow')} ` : '',
        time: rfcClock(next.expected || next.departure),
        route: next.route_short_name || next.route_id || '',
        dest: next.headsign || '',
      }));
      $('#message').dataset.nextTrip = next.trip_id || '';
    } else {
      showMessage(t('noneTitle'), t('none'));
    }
    if (Date.now() - later.fetchedAt > 60_000) fetchLater();
  }

  function render() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
    const b = state.board;
    const name = (b && b.stop_name) || (stopId ? stopId : t('title'));
    $('#stop-name').textContent = name;
    document.title = `${name} · ${t('title')}`;
    $('#stop-id').textContent = stopId ? t('stopId', { id: stopId }) : '';
    $('#map-link').href = stopId ? `./?stop=${encodeURIComponent(stopId)}` : './';

    $('#message').hidden = true;
    const rows = [];
    let realtime = 0;
    if (state.status === 'nostop') showMessage(t('noStopTitle'), t('noStop'));
    else if (state.status === 'unknown') showMessage(t('unknownTitle'), state.error);
    else if (!b && state.error) showMessage(t('errorTitle'), state.error);
    else if (b) {
      for (const it of b.items || []) {
        const rt = !!it.realtime;
        if (rt) realtime++;
        const bg = normColor(it.route_color) || KIND_COLORS[it.route_kind] || '#8A8F98';
        const mins = Number(it.minutes_away);
        const when = rt && it.expected ? it.expected : it.departure;
        const clock = rfcClock(when) || String(it.departure_time || '').slice(0, 5);
        const nextDay = b.date && when && when.slice(0, 10) > b.date;
        const sched = rfcClock(it.departure);
        const delay = delayOf(it);
        rows.push(h('li', {
          class: `row ${rt ? 'realtime' : 'scheduled'}${Number.isFinite(mins) && mins <= 2 ? ' soon' : ''}`,
          dataset: { realtime: String(rt), tripId: it.trip_id ?? '', routeId: it.route_id ?? '' },
        },
          h('span', null, h('span', { class: 'badge', style: { background: bg, color: textOn(bg) } }, it.route_short_name || it.route_id || '?')),
          h('span', { class: 'dest' },
            h('span', { class: 'headsign' }, it.headsign || ''),
            h('span', { class: 'sub' },
              h('span', { class: rt ? 'tag live' : 'tag' }, rt ? t('live') : t('scheduled')),
              it.last_of_day ? h('span', { class: 'tag last', title: t('lastTitle') }, t(lastKey(it.route_kind))) : null,
              it.stops_away > 0 ? h('span', { class: 'stops-away' }, stopsAway(it.stops_away)) : null,
              it.wheelchair_accessible ? h('span', { class: 'step-free', title: t('stepFree'), 'aria-label': t('stepFree') }, '♿') : null,
              delay ? h('span', { class: delay.cls }, delay.text) : null,
              it.platform_code ? h('span', null, `#${it.platform_code}`) : null,
              h('span', { class: 'clock-sm' }, clock),
              it.vehicle_id != null ? h('span', null, t('vehicle', { id: it.vehicle_id })) : null)),
          h('span', { class: 'mins', title: Number.isFinite(mins) ? (mins <= 0 ? t('now') : t('minLong', { n: mins })) : '' },
            rt ? liveIcon() : null, minsCell(mins)),
          h('span', { class: 'time' },
            nextDay ? `${t('tomorrow')} ${clock}` : clock,
            rt && sched && sched !== clock ? h('s', null, sched) : null)));
      }
      if (!rows.length) showNothingSoon(b);
    }
    $('#rows').replaceChildren(...rows);
    renderAlerts();
    fitRows();
    document.body.dataset.rows = String(rows.length);
    document.body.dataset.realtimeRows = String(realtime);
    document.body.dataset.state = state.status;
    renderConn();
  }

  // A wall display can't scroll: on wide screens, drop the rows that would fall below the fold.
  function fitRows() {
    const list = $('#rows');
    if (window.innerWidth < 900) return;
    const foot = document.querySelector('footer');
    while (list.children.length > 3 && foot.getBoundingClientRect().bottom > window.innerHeight + 1) list.lastElementChild.remove();
    document.body.dataset.rowsShown = String(list.children.length);
  }
  window.addEventListener('resize', () => render());

  function renderConn() {
    const el = $('#conn');
    if (!stopId) { el.textContent = ''; return; }
    const live = state.status === 'live';
    el.classList.toggle('off', !live);
    if (live && state.lastUpdate) {
      el.textContent = t('connected', { time: fmt(new Date(state.lastUpdate), { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }) });
    } else if (state.retryAt) {
      el.textContent = t('offline', { s: Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000)) });
    } else {
      el.textContent = t('connecting');
    }
  }

  // ----- the live connection

  let source = null;
  let retryTimer = null;
  let backoff = 2000;
  let watchdog = null;

  function query() {
    const q = new URLSearchParams({ limit: String(limit) });
    for (const k of ['date', 'time']) if (params.get(k)) q.set(k, params.get(k));
    return q.toString();
  }
  const base = () => `api/v1/stops/${encodeURIComponent(stopId)}/departures`;

  function connect() {
    clearTimeout(retryTimer);
    state.retryAt = null;
    if (source) source.close();
    const es = new EventSource(`${base()}/stream?${query()}`);
    source = es;
    es.addEventListener('update', (e) => {
      if (source !== es) return;
      let board;
      try { board = JSON.parse(e.data); } catch (_) { return; }
      const zoneChanged = !state.board || state.board.timezone !== board.timezone;
      state.board = board;
      state.status = 'live';
      state.error = null;
      state.lastUpdate = Date.now();
      backoff = 2000;
      armWatchdog();
      render();
      if (zoneChanged) tick(); // the clock shows the stop's own time zone
    });
    es.onerror = () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) { es.close(); source = null; diagnose(); }
      else { state.status = 'connecting'; renderConn(); document.body.dataset.state = state.status; }
    };
    armWatchdog();
  }

  // The server sends a board whenever real-time data changes (about every second);
  // a silent minute means a half-open connection: start over.
  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => { if (source) { source.close(); source = null; } scheduleRetry(); }, 60000);
  }

  // The stream was refused: ask the plain endpoint why, show it, and retry later.
  async function diagnose() {
    try {
      const res = await fetch(`${base()}?${query()}`, { headers: { Accept: 'application/json' } });
      const body = await res.json().catch(() => null);
      if (res.ok && body) {
        state.board = body;
        state.error = null;
      } else {
        state.error = (body && body.error && body.error.message) || `HTTP ${res.status}`;
        if (res.status === 404) state.status = 'unknown';
      }
    } catch (e) {
      state.error = e.message;
    }
    if (state.status !== 'unknown') state.status = 'offline';
    render();
    scheduleRetry(state.status === 'unknown' ? 60000 : undefined);
  }

  function scheduleRetry(ms) {
    clearTimeout(retryTimer);
    const wait = ms || backoff;
    backoff = Math.min(backoff * 2, 30000);
    state.retryAt = Date.now() + wait;
    if (state.status === 'live') state.status = 'offline';
    renderConn();
    retryTimer = setTimeout(connect, wait);
  }

  // ----- service alerts for this stop or the routes that call here

  async function fetchIncidents() {
    try {
      const res = await fetch('api/v1/incidents', { headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      const list = await res.json();
      state.incidents = Array.isArray(list) ? list.filter((i) => i && i.status === 'active' && i.incident) : [];
      renderAlerts();
    } catch (_) { /* the board itself says when the server is away */ }
  }

  function renderAlerts() {
    const routes = new Set(((state.board && state.board.items) || []).map((i) => String(i.route_id)));
    const mine = state.incidents.filter((i) => (i.incident.stops || []).map(String).includes(stopId)
      || (i.incident.routes || []).some((r) => routes.has(String(r))));
    const el = $('#alerts');
    el.replaceChildren(...mine.slice(0, 3).map((i) => h('li', { class: `alert sev-${i.incident.severity || 'warning'}` },
      h('span', { class: 'alert-sign', 'aria-hidden': 'true' }, '!'),
      (lang === 'en' && i.incident.header_en) || i.incident.header || '')));
    el.hidden = mine.length === 0;
    document.body.dataset.alerts = String(mine.length);
  }

  for (const b of document.querySelectorAll('.lang button')) {
    b.addEventListener('click', () => {
      lang = b.dataset.lang;
      try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* not fatal */ }
      render();
      tick();
    });
  }

  window.cityosBoard = { get state() { return { status: state.status, board: state.board, error: state.error }; } };

  render();
  tick();
  setInterval(tick, 1000);
  // A phone that put the board away lets go of the stream after a minute; a display never does.
  let hiddenTimer = null;
  document.addEventListener('visibilitychange', () => {
    if (!stopId) return;
    clearTimeout(hiddenTimer);
    if (document.hidden) {
      hiddenTimer = setTimeout(() => {
        clearTimeout(retryTimer);
        clearTimeout(watchdog);
        if (source) { source.close(); source = null; }
      }, 60000);
    } else if (!source) {
      connect();
    }
  });

  if (stopId) {
    connect();
    fetchIncidents();
    setInterval(fetchIncidents, 60000);
  }
})();

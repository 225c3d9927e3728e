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
      'panel.nextLater': '다음 차량 {day}{time} 출발 · {route} {dest} 방면',
      'panel.error': '출발 정보를 불러오지 못했습니다: {msg}',
      'panel.asof': '{time} 기준 · {tz}',
      'panel.id': '정류장 번호 {id}',
      'panel.wheelchair': '휠체어 이용 가능',
      'dep.now': '곧 출발',
      'dep.min': '{n}분 후',
      'dep.hourMin': '{h}시간 {m}분 후',
      'dep.tomorrow': '내일',
      'err.network': '서버에 연결할 수 없습니다',
      'tools.label': '도구',
      'tools.ridership': '승객',
      'tools.fare': '요금 계산',
      'legend.ridership': '승차량',
      'ridership.kicker': '교통카드 이용 현황',
      'ridership.title': '승객',
      'ridership.loading': '승객 통계를 불러오는 중…',
      'ridership.error': '승객 통계를 불러오지 못했습니다: {msg}',
      'ridership.emptyTitle': '아직 교통카드 태그가 없습니다',
      'ridership.emptyBody': '승객이 카드를 찍기 시작하면 시간대별 승차, 많이 이동한 구간과 환승이 여기에 나타납니다. 이 창은 30초마다 새로 고칩니다.',
      'ridership.boardings': '승차',
      'ridership.alightings': '하차',
      'ridership.peak': '가장 붐비는 시간',
      'ridership.peakValue': '{hour}시',
      'ridership.stops': '이용 정류장',
      'ridership.byHour': '시간대별 승차',
      'ridership.chartLabel': '시간대별 승차 막대그래프. 가장 붐비는 시간은 {hour}시, 승차 {n}명',
      'ridership.barTitle': '{hour}시: 승차 {b} · 하차 {a}',
      'ridership.od': '많이 이동한 구간',
      'ridership.transfers': '많이 환승한 노선',
      'ridership.none': '아직 없습니다',
      'ridership.count': '{n}회',
      'ridership.downloads': '내려받기',
      'ridership.updated': '{time} 기준 · 30초마다 새로 고침',
      'ridership.stale': '새로 고치지 못했습니다: {msg}',
      'ridership.stopLine': '교통카드 승차 {b} · 하차 {a}',
      'ridership.subway': '지하철',
      'dl.stop_route_hour': '정류장·노선·시간대별 승하차',
      'dl.origin_destination': '출발·도착 구간',
      'dl.transfers': '노선 간 환승',
      'dl.ridership': 'GTFS-ride 승하차',
      'dl.ride_feed_info': 'GTFS-ride 피드 정보',
      'fare.kicker': '교통카드 요금',
      'fare.title': '요금 계산',
      'fare.category': '승객 구분',
      'fare.date': '날짜',
      'cat.adult': '일반',
      'cat.youth': '청소년 (13–18세)',
      'cat.child': '어린이 (6–12세)',
      'fare.leg': '{n}구간',
      'fare.mode': '교통수단',
      'fare.route': '노선',
      'fare.routeNone': '노선 선택',
      'fare.routeGates': '역 개찰구 (노선 없음)',
      'fare.routesHere': '이 정류장을 지나는 노선',
      'fare.routesOther': '다른 노선',
      'fare.from': '승차 정류장',
      'fare.to': '하차 정류장',
      'fare.stopPlaceholder': '정류장·역 검색',
      'fare.boardTime': '승차 시각',
      'fare.alightTime': '하차 시각',
      'fare.removeLeg': '이 구간 삭제',
      'fare.addLeg': '+ 구간 추가',
      'fare.calculate': '계산',
      'fare.calculating': '계산 중…',
      'fare.total': '합계',
      'fare.journey': '{n}번째 여정',
      'fare.tapIn': '{n}구간 승차',
      'fare.tapOut': '{n}구간 하차',
      'fare.noCharges': '부과된 요금이 없습니다',
      'fare.error': '계산하지 못했습니다: {msg}',
      'fare.needBoard': '{n}구간의 승차 시각을 입력하세요',
      'fare.needAlight': '{n}구간의 하차 시각을 입력하세요',
      'fare.pickStop': '{n}구간: 목록에서 정류장을 고르세요',
      'fare.onRoute': '이 노선의 정류장',
      'fare.onTrip': '이 노선의 다음 정류장',
      'fare.results': '검색 결과',
      'fare.rideMin': '+{n}분',
      'fare.searching': '검색 중…',
      'mode.subway': '지하철',
      'mode.trunk': '간선버스',
      'mode.branch': '지선버스',
      'mode.circular': '순환버스',
      'mode.village': '마을버스',
      'mode.wide_area': '광역버스',
      'mode.night': '심야버스',
      'rule.base_fare': '기본요금',
      'rule.transfer_upgrade': '환승 차액',
      'rule.distance_surcharge': '거리 추가요금',
      'rule.missing_tap_out': '하차 미태그',
      'rule.early_bird_discount': '조조할인',
      'note.clock_behind': '{tap}: 단말기 시계가 {s}초 늦어 직전 태그 시각으로 처리했습니다',
      'note.out_without_in': '{tap}: 맞는 승차 태그가 없는 하차 태그라 무시했습니다',
      'won': '{n}원',
      'summary.vehicles': '운행 차량',
      'legend.live': '실시간',
      'legend.vehicles': '운행 차량',
      'legend.speeds': '도로 소통 (TOPIS)',
      'legend.incidents': '돌발 상황',
      'legend.complaints': '민원 (30일)',
      'complaint.open': '처리 중', 'complaint.closed': '종결',
      'cong.smooth': '원활',
      'cong.slow': '서행',
      'cong.congested': '정체',
      'cong.kmh': '{n} km/h',
      'cong.segment': '{from} → {to} · {kmh} · {level}',
      'veh.late': '{n}분 늦음',
      'veh.early': '{n}분 일찍',
      'veh.onTime': '정시',
      'veh.next': '다음 정류장: {stop}',
      'veh.halted': '정차 중',
      'veh.kicker': '운행 차량',
      'veh.id': '차량 {id}',
      'veh.speed': '{n} km/h',
      'veh.nextStops': '도착 예정 정류장',
      'veh.gone': '이 차량의 위치가 더 이상 들어오지 않습니다',
      'veh.none': '남은 정류장 정보가 없습니다',
      'veh.range': '{a}–{b}',
      'live.connecting': '실시간 연결 중…',
      'live.offline': '실시간 연결이 끊겼습니다. 다시 연결하는 중…',
      'dep.live': '실시간',
      'dep.scheduled': '시간표',
      'dep.delay': '{n}분 지연',
      'dep.ahead': '{n}분 빠름',
      'dep.onTime': '정시',
      'dep.vehicle': '차량 {id}',
      'dep.stopsAway': '{n}번째 전',
      'dep.lastBus': '막차',
      'dep.lastTrain': '막차',
      'dep.lastFerry': '막배',
      'dep.lastTitle': '오늘 이 정류장을 지나는 이 노선의 마지막 차량',
      'dep.stepFree': '저상 · 휠체어 탑승 가능',
      'dep.showVehicle': '지도에서 차량 보기',
      'panel.board': '정류장 안내판',
      'panel.boardTitle': '이 정류장의 안내판을 새 창에서 엽니다',
      'inc.title': '돌발 상황',
      'inc.kicker': '교통 정보',
      'inc.tool': '돌발',
      'inc.none': '지금 진행 중인 돌발 상황이 없습니다',
      'inc.error': '돌발 상황을 불러오지 못했습니다: {msg}',
      'inc.since': '{time}부터',
      'inc.until': '{time}까지',
      'inc.routes': '노선',
      'inc.stops': '정류장',
      'inc.updated': '{time} 기준 · 30초마다 새로 고침',
      'inc.auto': '자동 감지',
      'inc.operator': '운영자',
      'sev.severe': '심각',
      'sev.warning': '주의',
      'sev.info': '정보',
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
      'panel.nextLater': 'Next: {route} to {dest} at {day}{time}',
      'panel.error': 'Could not load departures: {msg}',
      'panel.asof': 'As of {time} · {tz}',
      'panel.id': 'Stop ID {id}',
      'panel.wheelchair': 'Wheelchair accessible',
      'dep.now': 'Now',
      'dep.min': '{n} min',
      'dep.hourMin': '{h} h {m} min',
      'dep.tomorrow': 'tomorrow',
      'err.network': 'Cannot reach the server',
      'tools.label': 'Tools',
      'tools.ridership': 'Ridership',
      'tools.fare': 'Fare calculator',
      'legend.ridership': 'Ridership',
      'ridership.kicker': 'Smart card taps',
      'ridership.title': 'Ridership',
      'ridership.loading': 'Loading ridership…',
      'ridership.error': 'Could not load ridership: {msg}',
      'ridership.emptyTitle': 'No card taps yet',
      'ridership.emptyBody': 'Once riders start tapping their cards, boardings by hour, the busiest trips and transfers show up here. This panel refreshes every 30 seconds.',
      'ridership.boardings': 'Boardings',
      'ridership.alightings': 'Alightings',
      'ridership.peak': 'Busiest hour',
      'ridership.peakValue': '{hour}:00',
      'ridership.stops': 'Stops used',
      'ridership.byHour': 'Boardings by hour',
      'ridership.chartLabel': 'Bar chart of boardings by hour. Busiest hour {hour}:00 with {n} boardings',
      'ridership.barTitle': '{hour}:00: {b} boardings · {a} alightings',
      'ridership.od': 'Top origin → destination',
      'ridership.transfers': 'Top transfers',
      'ridership.none': 'None yet',
      'ridership.count': '{n}',
      'ridership.downloads': 'Downloads',
      'ridership.updated': 'As of {time} · refreshes every 30 s',
      'ridership.stale': 'Could not refresh: {msg}',
      'ridership.stopLine': 'Card taps: {b} boardings · {a} alightings',
      'ridership.subway': 'Subway',
      'dl.stop_route_hour': 'By stop, route and hour',
      'dl.origin_destination': 'Origin–destination pairs',
      'dl.transfers': 'Transfers between routes',
      'dl.ridership': 'GTFS-ride ridership',
      'dl.ride_feed_info': 'GTFS-ride feed info',
      'fare.kicker': 'Smart card fares',
      'fare.title': 'Fare calculator',
      'fare.category': 'Rider',
      'fare.date': 'Date',
      'cat.adult': 'Adult',
      'cat.youth': 'Youth (13–18)',
      'cat.child': 'Child (6–12)',
      'fare.leg': 'Leg {n}',
      'fare.mode': 'Mode',
      'fare.route': 'Route',
      'fare.routeNone': 'Choose a route',
      'fare.routeGates': 'Station gates (no route)',
      'fare.routesHere': 'Routes at this stop',
      'fare.routesOther': 'Other routes',
      'fare.from': 'Board at',
      'fare.to': 'Alight at',
      'fare.stopPlaceholder': 'Search stops',
      'fare.boardTime': 'Board time',
      'fare.alightTime': 'Alight time',
      'fare.removeLeg': 'Remove this leg',
      'fare.addLeg': '+ Add leg',
      'fare.calculate': 'Calculate',
      'fare.calculating': 'Calculating…',
      'fare.total': 'Total',
      'fare.journey': 'Journey {n}',
      'fare.tapIn': 'Leg {n} board',
      'fare.tapOut': 'Leg {n} alight',
      'fare.noCharges': 'Nothing to pay',
      'fare.error': 'Could not calculate: {msg}',
      'fare.needBoard': 'Enter the board time of leg {n}',
      'fare.needAlight': 'Enter the alight time of leg {n}',
      'fare.pickStop': 'Leg {n}: choose a stop from the list',
      'fare.onRoute': 'Stops on this route',
      'fare.onTrip': 'Next stops on this route',
      'fare.results': 'Search results',
      'fare.rideMin': '+{n} min',
      'fare.searching': 'Searching…',
      'mode.subway': 'Subway',
      'mode.trunk': 'Trunk bus',
      'mode.branch': 'Branch bus',
      'mode.circular': 'Circular bus',
      'mode.village': 'Village bus',
      'mode.wide_area': 'Wide-area bus',
      'mode.night': 'Night bus',
      'rule.base_fare': 'Base fare',
      'rule.transfer_upgrade': 'Transfer upgrade',
      'rule.distance_surcharge': 'Distance surcharge',
      'rule.missing_tap_out': 'No tap-out',
      'rule.early_bird_discount': 'Early-bird discount',
      'note.clock_behind': '{tap}: the validator clock was {s} s behind, so the previous tap’s time was used',
      'note.out_without_in': '{tap}: a tap-out without a matching tap-in was ignored',
      'won': '₩{n}',
      'summary.vehicles': 'Vehicles',
      'legend.live': 'Live',
      'legend.vehicles': 'Vehicles',
      'legend.speeds': 'Road speeds (TOPIS)',
      'legend.incidents': 'Incidents',
      'legend.complaints': 'Complaints (30 days)',
      'complaint.open': 'open', 'complaint.closed': 'closed',
      'cong.smooth': 'Smooth',
      'cong.slow': 'Slow',
      'cong.congested': 'Congested',
      'cong.kmh': '{n} km/h',
      'cong.segment': '{from} → {to} · {kmh} · {level}',
      'veh.late': '{n} min late',
      'veh.early': '{n} min early',
      'veh.onTime': 'On time',
      'veh.next': 'Next stop: {stop}',
      'veh.halted': 'Stopped',
      'veh.kicker': 'Vehicle',
      'veh.id': 'Vehicle {id}',
      'veh.speed': '{n} km/h',
      'veh.nextStops': 'Upcoming stops',
      'veh.gone': 'This vehicle no longer reports its position',
      'veh.none': 'No upcoming stops known',
      'veh.range': '{a}–{b}',
      'live.connecting': 'Connecting to live data…',
      'live.offline': 'Live data disconnected. Reconnecting…',
      'dep.live': 'Live',
      'dep.scheduled': 'Scheduled',
      'dep.delay': '{n} min late',
      'dep.ahead': '{n} min early',
      'dep.onTime': 'On time',
      'dep.vehicle': 'Vehicle {id}',
      'dep.stopsAway': '{n} stops away',
      'dep.lastBus': 'Last bus',
      'dep.lastTrain': 'Last train',
      'dep.lastFerry': 'Last ferry',
      'dep.lastTitle': 'The last of this route to call here today',
      'dep.stepFree': 'Step-free: takes a wheelchair',
      'dep.stopAway': '1 stop away',
      'dep.showVehicle': 'Show the vehicle on the map',
      'panel.board': 'Stop board',
      'panel.boardTitle': 'Open this stop’s display board in a new window',
      'inc.title': 'Incidents',
      'inc.kicker': 'Traffic information',
      'inc.tool': 'Incidents',
      'inc.none': 'No incidents right now',
      'inc.error': 'Could not load incidents: {msg}',
      'inc.since': 'since {time}',
      'inc.until': 'until {time}',
      'inc.routes': 'Routes',
      'inc.stops': 'Stops',
      'inc.updated': 'As of {time} · refreshed every 30 s',
      'inc.auto': 'Detected',
      'inc.operator': 'Operator',
      'sev.severe': 'Severe',
      'sev.warning': 'Warning',
      'sev.info': 'Info',
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
    renderRidershipPanel();
    renderFareI18n();
    renderVehiclePanel();
    renderIncidentPanel();
    queueFrame();
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
  // opts.body (an object) makes it a JSON POST.
  async function api(path, opts = {}) {
    let res;
    const post = opts.body !== undefined;
    try {
      res = await fetch(path, {
        method: post ? 'POST' : 'GET',
        headers: post ? { Accept: 'application/json', 'Content-Type': 'application/json' } : { Accept: 'application/json' },
        body: post ? JSON.stringify(opts.body) : undefined,
        signal: opts.signal,
      });
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
    routeById: new Map(),
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
        platforms: Array.isArray(p.platforms) ? p.platforms.map(String) : [],
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
    // A train's next stop is a platform: it opens its station.
    for (const s of state.stops) for (const p of s.platforms) if (!state.stopById.has(p)) state.stopById.set(p, s);
    for (const r of state.routes) state.routeById.set(r.id, r);
    buildGrid();
    indexRidership(); // an answer that came before the stops is placed now

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
  let baseDirty = true;
  // Anything that changes the map itself; live markers alone only need queueFrame().
  function requestRedraw() {
    baseDirty = true;
    queueFrame();
  }
  function queueFrame() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(frame);
  }

  function frame(now) {
    frameQueued = false;
    stepAnim(now);
    draw(now);
    if (anim) requestRedraw();
    else scheduleLiveFrames(now);
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

  // The base map (everything but vehicles) is kept in a canvas of its own, so frames that only
  // move vehicles copy it instead of drawing the network again.
  const base = { canvas: document.createElement('canvas'), key: null };
  const viewKey = () => `${view.cx},${view.cy},${view.zoom},${cssW},${cssH},${dpr}`;

  function draw(now = performance.now()) {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const key = viewKey();
    if (!baseDirty && base.key === key && state.loaded) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(base.canvas, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    } else {
      drawBase();
      baseDirty = false;
      base.key = null;
      if (state.loaded && !interacting()) {
        const bc = base.canvas;
        if (bc.width !== canvas.width || bc.height !== canvas.height) { bc.width = canvas.width; bc.height = canvas.height; }
        const bctx = bc.getContext('2d');
        bctx.clearRect(0, 0, bc.width, bc.height);
        bctx.drawImage(canvas, 0, 0);
        base.key = key;
      }
    }
    if (!state.loaded) return;
    const vehiclesDrawn = drawVehicles(now);
    if (vehiclesDrawn !== lastVehiclesDrawn) document.body.dataset.vehiclesDrawn = String((lastVehiclesDrawn = vehiclesDrawn));
  }
  let lastVehiclesDrawn = null;

  function drawBase() {
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
    const roadsDrawn = drawRoads();
    reportRidershipDrawn(drawRidership());
    const stopsDrawn = drawStops();
    drawComplaints();
    drawIncidents();
    drawSelection();
    drawLabels();
    drawScaleBar();

    // Hooks for the browser test (and anyone curious in devtools).
    if (routesDrawn !== lastRoutesDrawn) document.body.dataset.routesDrawn = String((lastRoutesDrawn = routesDrawn));
    if (stopsDrawn !== lastStopsDrawn) document.body.dataset.stopsDrawn = String((lastStopsDrawn = stopsDrawn));
    document.body.dataset.roadsDrawn = String(roadsDrawn);
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
      // A stop right under the pointer wins (buses dwell on stops); then a vehicle, an
      // incident, and a stop further away.
      const slack = e.pointerType === 'mouse' ? 0 : 8;
      const near = stopAt(x, y, 6 + slack);
      const vid = near ? null : vehicleAt(x, y, 3 + slack);
      const inc = near || vid ? null : incidentAt(x, y);
      const st = near || (vid || inc ? null : stopAt(x, y, e.pointerType === 'mouse' ? 10 : 20));
      if (st) { openStop(st); focusStop(st); }
      else if (vid) selectVehicle(vid);
      else if (inc) { openTool('incidents'); focusIncident(inc); }
    }
    // Lifting one finger of a pinch continues as a drag with the other.
    gesture = null;
    if (pointers.size) startGesture();
    requestRedraw(); // a full-quality frame now that the gesture is over
  }
  canvas.addEventListener('pointerup', endPointer);
  canvas.addEventListener('pointercancel', endPointer);

  function hover(x, y) {
    // A complaint under the pointer wins over the stop it was filed next to: whoever
    // turned the complaints layer on is looking at them.
    const complaint = state.loaded ? complaintAt(x, y) : null;
    const near = state.loaded && !complaint ? stopAt(x, y, 6) : null;
    const vid = state.loaded && !near ? vehicleAt(x, y, 3) : null;
    if (vid !== live.hoverId) { live.hoverId = vid; }
    const inc = state.loaded && !near && !vid ? incidentAt(x, y) : null;
    const st = near || (!vid && !inc && !complaint && state.loaded ? stopAt(x, y, 10) : null);
    const road = !st && !vid && !inc && !complaint ? roadAt(x, y, 5) : null;
    canvas.classList.toggle('over-stop', !!(st || vid || inc));
    if (vid || inc || complaint || road) {
      tooltip.textContent = vid ? vehicleTooltip(vid) : inc ? incidentHeader(inc) : complaint ? complaintTooltip(complaint) : roadTooltip(road);
      tooltip.style.left = `${x}px`;
      tooltip.style.top = `${y}px`;
      tooltip.hidden = false;
      return;
    }
    if (!st) return hideTooltip();
    const c = ride.layerOn && ride.data ? ride.byStop.get(st.stop_id) : null;
    tooltip.textContent = c ? `${st.name} · ${t('ridership.boardings')} ${fmtInt(c.b)} · ${t('ridership.alightings')} ${fmtInt(c.a)}` : st.name;
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
    renderVehicleCount();
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
      rows.push(h('li', { class: 'legend-ridership' },
        h('label', null,
          h('input', { type: 'checkbox', id: 'toggle-ridership', onchange: (e) => setRidershipLayer(e.target.checked) }),
          h('span', { class: 'swatch ride-swatch' }),
          h('span', null, t('legend.ridership')),
          h('span', { class: 'count', id: 'ridership-hint' }, '–'))));
    }
    if (state.loaded) rows.push(...liveLegendRows());
    list.replaceChildren(...rows);
    // Checkbox state is set as a property after creation (attributes would only set the default).
    for (const input of list.querySelectorAll('input[data-kind]')) input.checked = state.kindOn[input.dataset.kind];
    const ts = $('#toggle-stops');
    if (ts) ts.checked = state.stopsOn;
    const tr = $('#toggle-ridership');
    if (tr) tr.checked = ride.layerOn;
    updateRidershipCount();
    syncLiveLegend();
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
    const tool = openToolName();
    if (tool) closeTool(tool);
    if (live.selected) closeVehicle();
    state.selected = stop;
    state.panel = { status: 'loading', data: null, error: null };
    panel.hidden = false;
    renderPanel();
    requestRedraw();
    fetchRidership(false);
    clearInterval(panelTimer);
    // The board is pushed live while the panel is open; polling is the fallback when the
    // stream can't be had (old browsers, proxies that buffer event streams).
    if (!openStopStream(stop)) loadDepartures();
    panelTimer = setInterval(() => {
      if (document.hidden) return;
      if (!panelStream || panelStream.readyState !== EventSource.OPEN) loadDepartures();
      else renderPanel(); // minutes tick on
    }, 30000);
  }

  let panelStream = null;
  function openStopStream(stop) {
    closeStopStream();
    if (typeof EventSource === 'undefined') return false;
    const es = new EventSource(`api/v1/stops/${encodeURIComponent(stop.stop_id)}/departures/stream?${departureQuery()}`);
    panelStream = es;
    document.body.dataset.stopStream = 'connecting';
    es.addEventListener('update', (e) => {
      if (panelStream !== es || state.selected !== stop) return;
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      panelReq++; // an older fetch must not overwrite this
      state.panel = { status: 'ok', data, error: null, live: true };
      if (data && data.timezone) live.tz = data.timezone;
      document.body.dataset.stopStream = 'open';
      renderPanel();
    });
    es.onerror = () => {
      if (panelStream !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused (an unknown stop, a bad pinned time): show its answer.
        document.body.dataset.stopStream = 'closed';
        panelStream = null;
        es.close();
        loadDepartures();
      }
    };
    return true;
  }

  function closeStopStream() {
    if (panelStream) panelStream.close();
    panelStream = null;
    delete document.body.dataset.stopStream;
  }

  function closePanel() {
    state.selected = null;
    panel.hidden = true;
    clearInterval(panelTimer);
    closeStopStream();
    panelReq++;
    requestRedraw();
  }

  // An empty panel (at night) says when the next vehicle leaves: a day's
  // look ahead, fetched at most once a minute for the stop shown.
  const later = { stopId: null, fetchedAt: 0, item: null };
  async function fetchLater(st) {
    Object.assign(later, { stopId: st.stop_id, fetchedAt: Date.now(), item: null });
    const q = new URLSearchParams(departureQuery());
    q.set('window_minutes', '1440');
    q.set('limit', '1');
    try {
      const data = await api(`api/v1/stops/${encodeURIComponent(st.stop_id)}/departures?${q}`);
      if (later.stopId === st.stop_id) later.item = (data.items || [])[0] || null;
    } catch (_) { /* the panel's own request reports trouble */ }
    if (state.selected === st) renderPanel();
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

  const LIVE_ICON = () => {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 16 16');
    svg.setAttribute('class', 'live-icon');
    svg.setAttribute('aria-hidden', 'true');
    for (const d of ['M3.5 12.5a6.4 6.4 0 0 1 0-9', 'M12.5 3.5a6.4 6.4 0 0 1 0 9', 'M5.8 10.2a3.2 3.2 0 0 1 0-4.4', 'M10.2 5.8a3.2 3.2 0 0 1 0 4.4']) {
      const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
      p.setAttribute('d', d);
      svg.append(p);
    }
    const c = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    c.setAttribute('cx', '8'); c.setAttribute('cy', '8'); c.setAttribute('r', '1.6');
    svg.append(c);
    return svg;
  };

  function depDelay(it) {
    const s = Number(it.delay_s);
    if (!it.realtime || !Number.isFinite(s)) return null;
    const m = Math.round(s / 60);
    if (m >= 1) return { text: t('dep.delay', { n: m }), cls: m >= 5 ? 'late' : 'bit-late' };
    if (m <= -1) return { text: t('dep.ahead', { n: -m }), cls: 'early' };
    return { text: t('dep.onTime'), cls: 'on-time' };
  }

  // The clock part of an RFC3339 time in the agency zone.
  const rfcClock = (s) => { const m = /T(\d{2}):(\d{2})/.exec(s || ''); return m ? `${m[1]}:${m[2]}` : ''; };

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
    const board = $('#panel-board');
    board.href = `board?stop=${encodeURIComponent(st.stop_id)}`;
    renderStopRidership();
    $('#stop-asof').textContent = data && data.time
      ? t('panel.asof', { time: `${data.date || ''} ${String(data.time).slice(0, 5)}`.trim(), tz: data.timezone || '' })
      : '';
    $('#stop-asof').classList.toggle('is-live', !!state.panel.live);

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
      const rt = !!it.realtime;
      const when = rt && it.expected ? it.expected : it.departure;
      const nextDay = data.date && when && when.slice(0, 10) > data.date;
      const clock = rt && it.expected ? rfcClock(it.expected) : depClock(it);
      const delay = depDelay(it);
      const vid = it.vehicle_id != null ? String(it.vehicle_id) : null;
      rows.push(h('li', { class: `departure ${rt ? 'realtime' : 'scheduled'}`, dataset: { tripId: it.trip_id ?? '', routeId: it.route_id ?? '', realtime: String(rt) } },
        h('span', { class: 'route-badge', style: { background: bg, color: textOn(bg) } }, it.route_short_name || it.route_id || '?'),
        h('span', { class: 'dep-main' },
          h('span', { class: 'headsign', title: it.headsign || '' }, it.headsign || ''),
          h('span', { class: 'dep-sub' },
            rt ? null : h('span', { class: 'sched-tag' }, t('dep.scheduled')),
            it.last_of_day ? h('span', { class: 'last-tag', title: t('dep.lastTitle') }, t(CASED_KINDS.has(it.route_kind) ? 'dep.lastTrain' : it.route_kind === 'ferry' ? 'dep.lastFerry' : 'dep.lastBus')) : null,
            it.stops_away > 0 ? h('span', { class: 'stops-away' }, it.stops_away === 1 && lang === 'en' ? t('dep.stopAway') : t('dep.stopsAway', { n: it.stops_away })) : null,
            it.wheelchair_accessible ? h('span', { class: 'step-free', title: t('dep.stepFree'), 'aria-label': t('dep.stepFree') }, '♿') : null,
            delay ? h('span', { class: `delay ${delay.cls}` }, delay.text) : null,
            vid ? h('button', {
              type: 'button', class: 'veh-link', title: t('dep.showVehicle'),
              onclick: () => { const v = live.vehicles.get(vid); if (v) { selectVehicle(vid); flyTo({ cx: v.x1, cy: v.y1, zoom: Math.max(view.zoom, 15) }); } },
            }, t('dep.vehicle', { id: vid })) : null)),
        h('span', { class: 'when' },
          h('span', { class: mins <= 2 ? 'mins soon' : 'mins', title: rt ? t('dep.live') : t('dep.scheduled') }, rt ? LIVE_ICON() : null, rt ? h('span', { class: 'visually-hidden' }, `${t('dep.live')} `) : null, depAway(mins)),
          h('span', { class: 'time' }, nextDay ? `${t('dep.tomorrow')} ${clock}` : clock))));
    }
    if (!items.length && state.panel.status === 'ok') {
      const next = later.stopId === st.stop_id ? later.item : null;
      const nextDay = next && data.date && next.departure && next.departure.slice(0, 10) > data.date;
      rows.push(h('li', { class: 'empty', dataset: { nextTrip: next ? next.trip_id : '' } },
        t('panel.none'),
        next ? h('span', { class: 'next-later' }, t('panel.nextLater', {
          day: nextDay ? `${t('dep.tomorrow')} ` : '',
          time: rfcClock(next.expected || next.departure),
          route: next.route_short_name || next.route_id || '',
          dest: next.headsign || '',
        })) : null));
      if (later.stopId !== st.stop_id || Date.now() - later.fetchedAt > 60_000) fetchLater(st);
    }
    list.replaceChildren(...rows);
  }

  $('#panel-close').addEventListener('click', closePanel);
  $('#panel-refresh').addEventListener('click', () => loadDepartures());
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || document.activeElement === searchInput) return;
    if (!panel.hidden) closePanel();
    else if (live.selected) closeVehicle();
    else if (openToolName()) closeTool(openToolName(), true);
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

  // ------------------------------------------------------------- ridership --
  // Smart-card taps aggregated by the server: a map layer (circles at stops sized by
  // boardings + alightings), numbers in the stop panel, and a panel with charts and lists.

  const RIDERSHIP_REFRESH_MS = 30000;
  const RIDE_FILL = 'rgba(214, 51, 108, 0.32)';
  const RIDE_STROKE = '#A61E4D';
  const RIDE_MIN_R = 3;
  const RIDE_MAX_R = 26;
  const RIDERSHIP_FILES = ['stop_route_hour.csv', 'origin_destination.csv', 'transfers.csv', 'ridership.txt', 'ride_feed_info.txt'];

  const ride = {
    data: null,        // the last good /api/v1/ridership answer
    at: 0,             // when it arrived (ms)
    tried: -Infinity,  // when it was last asked for
    error: null,       // the last failure, kept next to stale data
    loading: null,     // the request in flight
    layerOn: false,
    byStop: new Map(), // drawn stop id -> {b, a}
    names: new Map(),  // any tapped stop id -> name
    circles: [],       // {x, y, total, id}, busiest first
    max: 0,
    timer: null,
  };
  let lastRidershipDrawn = null;

  const nonNeg = (v) => (Number.isFinite(+v) && +v > 0 ? Math.floor(+v) : 0);

  function normRidership(d) {
    const hours = Array.from({ length: 24 }, (_, i) => {
      const c = (d && Array.isArray(d.by_hour) && d.by_hour[i]) || {};
      return { b: nonNeg(c.boardings), a: nonNeg(c.alightings) };
    });
    const stops = ((d && d.stops) || []).filter((s) => s && s.stop_id != null).map((s) => ({
      id: String(s.stop_id), name: s.name == null ? '' : String(s.name),
      lat: s.lat == null ? NaN : +s.lat, lon: s.lon == null ? NaN : +s.lon,
      b: nonNeg(s.boardings), a: nonNeg(s.alightings),
    }));
    const triples = (v) => (Array.isArray(v) ? v : [])
      .filter((r) => Array.isArray(r) && r.length >= 3)
      .map((r) => ({ from: String(r[0]), to: String(r[1]), n: nonNeg(r[2]) }));
    return { hours, stops, od: triples(d && d.origin_destination), transfers: triples(d && d.transfers) };
  }

  // The drawn station a tapped platform or gate belongs to: stops.geojson folds platforms into
  // their station, so taps recorded at a platform are counted (and drawn) at the station nearby.
  function stationNear(lon, lat, meters) {
    const x = lonToX(lon);
    const y = latToY(lat);
    const r = meters / (40075016.686 * Math.cos((lat * Math.PI) / 180));
    let best = null;
    let bestD = r * r;
    for (let gx = Math.floor((x - r) / GRID); gx <= Math.floor((x + r) / GRID); gx++) {
      for (let gy = Math.floor((y - r) / GRID); gy <= Math.floor((y + r) / GRID); gy++) {
        for (const st of grid.get(cellKey(gx, gy)) || []) {
          if (st.location_type !== 1) continue;
          const d = (st.x - x) ** 2 + (st.y - y) ** 2;
          if (d <= bestD) { bestD = d; best = st; }
        }
      }
    }
    return best;
  }

  function indexRidership() {
    ride.byStop = new Map();
    ride.names = new Map();
    const at = new Map(); // key -> {x, y, total, id}
    if (!ride.data) return;
    for (const s of ride.data.stops) {
      if (s.name) ride.names.set(s.id, s.name);
      const ok = Number.isFinite(s.lat) && Number.isFinite(s.lon);
      const drawn = state.stopById.get(s.id) || (ok ? stationNear(s.lon, s.lat, 150) : null);
      const key = drawn ? drawn.stop_id : s.id;
      const c = ride.byStop.get(key) || { b: 0, a: 0 };
      c.b += s.b;
      c.a += s.a;
      ride.byStop.set(key, c);
      const x = drawn ? drawn.x : ok ? lonToX(s.lon) : NaN;
      const y = drawn ? drawn.y : ok ? latToY(s.lat) : NaN;
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const circle = at.get(key) || { x, y, total: 0, id: key };
      circle.total += s.b + s.a;
      at.set(key, circle);
    }
    ride.circles = [...at.values()].filter((c) => c.total > 0).sort((p, q) => q.total - p.total);
    ride.max = ride.circles.length ? ride.circles[0].total : 0;
  }

  function fetchRidership(force) {
    if (ride.loading) return ride.loading;
    // Stop clicks reuse a recent answer (or a recent failure) instead of asking again.
    if (!force && Date.now() - ride.tried < RIDERSHIP_REFRESH_MS - 5000) return Promise.resolve();
    ride.tried = Date.now();
    ride.loading = api('api/v1/ridership')
      .then((d) => { ride.data = normRidership(d); ride.at = Date.now(); ride.error = null; indexRidership(); },
        (e) => { ride.error = e.message || String(e); })
      .finally(() => { ride.loading = null; ridershipChanged(); });
    return ride.loading;
  }

  function ridershipChanged() {
    if (ride.layerOn) { lastRidershipDrawn = null; requestRedraw(); }
    updateRidershipCount();
    renderStopRidership();
    renderRidershipPanel();
  }

  // Poll only while someone is looking: the layer is on or the panel is open.
  function syncRidershipTimer() {
    const want = ride.layerOn || !ridershipPanel.hidden;
    if (want && !ride.timer) ride.timer = setInterval(() => { if (!document.hidden) fetchRidership(true); }, RIDERSHIP_REFRESH_MS);
    if (!want && ride.timer) { clearInterval(ride.timer); ride.timer = null; }
  }

  function setRidershipLayer(on) {
    ride.layerOn = on;
    const box = document.getElementById('toggle-ridership');
    if (box) box.checked = on;
    if (on) fetchRidership(false);
    syncRidershipTimer();
    lastRidershipDrawn = null;
    requestRedraw();
  }

  // Square-root scale (area follows volume), capped; smaller when zoomed out so the network still shows.
  const rideRadius = (total) => {
    const k = clamp(2 ** ((view.zoom - 14.5) / 2), 0.35, 1.2);
    return Math.max(2, k * (RIDE_MIN_R + (RIDE_MAX_R - RIDE_MIN_R) * Math.sqrt(Math.min(1, total / (ride.max || 1)))));
  };

  // Returns how many circles were drawn, or -1 while there is nothing to report (layer off or no answer yet).
  function drawRidership() {
    if (!ride.layerOn) return -1;
    if (!ride.data) return ride.error ? 0 : -1;
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    let drawn = 0;
    // One path for all: a single fill (overlaps merge instead of darkening) and stroke, fast at city scale.
    ctx.beginPath();
    for (const c of ride.circles) {
      const x = c.x * s + hx;
      const y = c.y * s + hy;
      const r = rideRadius(c.total);
      if (x < -r || y < -r || x > cssW + r || y > cssH + r) continue;
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, Math.PI * 2);
      drawn++;
    }
    ctx.fillStyle = RIDE_FILL;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = RIDE_STROKE;
    ctx.stroke();
    return drawn;
  }

  function reportRidershipDrawn(n) {
    if (n === lastRidershipDrawn) return;
    lastRidershipDrawn = n;
    if (n < 0) delete document.body.dataset.ridershipDrawn;
    else document.body.dataset.ridershipDrawn = String(n);
  }

  function updateRidershipCount() {
    const el = document.getElementById('ridership-hint');
    if (el) el.textContent = ride.data ? fmtInt(ride.byStop.size) : '–';
  }

  function renderStopRidership() {
    const el = $('#stop-ridership');
    const st = state.selected;
    if (!st || !ride.data) { el.hidden = true; return; }
    const c = ride.byStop.get(st.stop_id) || { b: 0, a: 0 };
    el.textContent = t('ridership.stopLine', { b: fmtInt(c.b), a: fmtInt(c.a) });
    el.dataset.boardings = String(c.b);
    el.dataset.alightings = String(c.a);
    el.hidden = false;
  }

  // --------------------------------------------------------- tool panels --

  const ridershipPanel = $('#ridership-panel');
  const farePanel = $('#fare-panel');
  const TOOLS = {
    ridership: { panel: ridershipPanel, button: $('#open-ridership') },
    fare: { panel: farePanel, button: $('#open-fare') },
    incidents: { panel: $('#incident-panel'), button: $('#open-incidents') },
  };

  function openTool(name) {
    if (state.selected) closePanel();
    if (live.selected) closeVehicle();
    for (const [n, tool] of Object.entries(TOOLS)) {
      tool.panel.hidden = n !== name;
      tool.button.setAttribute('aria-expanded', String(n === name));
    }
    if (name === 'ridership') {
      renderRidershipPanel();
      fetchRidership(true);
    } else if (name === 'fare') {
      openFare();
    } else if (name === 'incidents') {
      renderIncidentPanel();
      fetchIncidents();
    }
    syncRidershipTimer();
  }

  // `refocus` when the person closed it themselves, so keyboard focus doesn't fall to <body>.
  function closeTool(name, refocus) {
    const tool = TOOLS[name];
    if (!tool || tool.panel.hidden) return;
    const hadFocus = tool.panel.contains(document.activeElement);
    tool.panel.hidden = true;
    tool.button.setAttribute('aria-expanded', 'false');
    syncRidershipTimer();
    if (refocus || hadFocus) tool.button.focus();
  }

  const openToolName = () => Object.keys(TOOLS).find((n) => !TOOLS[n].panel.hidden) || null;

  for (const [name, tool] of Object.entries(TOOLS)) {
    tool.button.addEventListener('click', () => (tool.panel.hidden ? openTool(name) : closeTool(name, true)));
  }
  for (const b of document.querySelectorAll('.panel-x')) {
    b.addEventListener('click', () => closeTool(Object.keys(TOOLS).find((n) => TOOLS[n].panel.id === b.dataset.close), true));
  }

  // ------------------------------------------------------ ridership panel --

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
    for (const c of children) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  function hourChart(hours) {
    const W = 360, H = 168;
    const pad = { l: 34, r: 6, t: 10, b: 22 };
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;
    const max = Math.max(...hours.map((x) => x.b));
    const step = Math.max(1, niceStep(Math.max(1, max) / 3));
    const top = Math.max(step, Math.ceil(max / step) * step);
    const yOf = (v) => pad.t + ph - (v / top) * ph;
    const peak = hours.reduce((best, x, i) => (x.b > hours[best].b ? i : best), 0);
    const svg = svgEl('svg', {
      viewBox: `0 0 ${W} ${H}`, class: 'hour-chart', role: 'img',
      'aria-label': t('ridership.chartLabel', { hour: peak, n: fmtInt(hours[peak].b) }),
    });
    for (let v = 0; v <= top; v += step) {
      const y = yOf(v);
      svg.append(
        svgEl('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: v === 0 ? 'axis' : 'grid' }),
        svgEl('text', { x: pad.l - 6, y, class: 'tick', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmtInt(v)));
    }
    const slot = pw / 24;
    hours.forEach((x, i) => {
      const y = yOf(x.b);
      const bar = svgEl('rect', {
        x: (pad.l + i * slot + slot * 0.14).toFixed(2), y: y.toFixed(2), width: (slot * 0.72).toFixed(2),
        height: Math.max(0, pad.t + ph - y).toFixed(2), rx: 1.5,
        class: i === peak && x.b > 0 ? 'bar peak' : 'bar', 'data-hour': i, 'data-boardings': x.b,
      }, svgEl('title', null, t('ridership.barTitle', { hour: String(i).padStart(2, '0'), b: fmtInt(x.b), a: fmtInt(x.a) })));
      svg.append(bar);
      if (i % 3 === 0) {
        svg.append(svgEl('text', { x: pad.l + i * slot + slot / 2, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, String(i).padStart(2, '0')));
      }
    });
    return svg;
  }

  const stopName = (id) => ride.names.get(id) || (state.stopById.get(id) || {}).name || id;

  function routeBadge(id) {
    if (id === 'subway' || id === '') {
      return h('span', { class: 'route-badge', style: { background: KIND_COLORS.subway, color: '#FFFFFF' } }, t('ridership.subway'));
    }
    const r = state.routeById.get(id);
    const bg = r ? r.color : KIND_COLORS.other;
    return h('span', { class: 'route-badge', title: r && r.longName ? r.longName : id, style: { background: bg, color: textOn(bg) } },
      (r && r.shortName) || id);
  }

  function rankList(cls, rows, render) {
    if (!rows.length) return h('p', { class: 'muted' }, t('ridership.none'));
    return h('ol', { class: `rank-list ${cls}` }, rows.slice(0, 10).map((r) => h('li', null, render(r),
      h('span', { class: 'count' }, t('ridership.count', { n: fmtInt(r.n) })))));
  }

  function clockOf(ms) {
    return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(ms);
  }

  function renderRidershipPanel() {
    if (ridershipPanel.hidden) return;
    const body = $('#ridership-body');
    const foot = $('#ridership-foot');
    const d = ride.data;
    foot.textContent = d ? t('ridership.updated', { time: clockOf(ride.at) }) : '';
    if (!d) {
      body.replaceChildren(ride.error
        ? h('p', { class: 'error' }, t('ridership.error', { msg: ride.error }))
        : h('p', { class: 'muted' }, t('ridership.loading')));
      return;
    }
    const boardings = d.hours.reduce((n, x) => n + x.b, 0);
    const alightings = d.hours.reduce((n, x) => n + x.a, 0);
    const parts = [];
    if (ride.error) parts.push(h('p', { class: 'error' }, t('ridership.stale', { msg: ride.error })));
    if (boardings === 0 && alightings === 0) {
      // A card drawn inline, so nothing is fetched.
      const icon = svgEl('svg', { viewBox: '0 0 48 48', class: 'empty-icon', 'aria-hidden': 'true' },
        svgEl('rect', { x: 7, y: 12, width: 34, height: 24, rx: 4 }),
        svgEl('path', { d: 'M7 19h34M13 29h8' }));
      parts.push(h('div', { class: 'ridership-empty' }, icon,
        h('p', { class: 'empty-title' }, t('ridership.emptyTitle')),
        h('p', null, t('ridership.emptyBody'))));
      body.replaceChildren(...parts);
      return;
    }
    const peak = d.hours.reduce((best, x, i) => (x.b > d.hours[best].b ? i : best), 0);
    parts.push(
      h('dl', { class: 'ride-stats' },
        h('div', null, h('dt', null, t('ridership.boardings')), h('dd', { id: 'ride-total-boardings' }, fmtInt(boardings))),
        h('div', null, h('dt', null, t('ridership.alightings')), h('dd', null, fmtInt(alightings))),
        h('div', null, h('dt', null, t('ridership.peak')), h('dd', null, t('ridership.peakValue', { hour: String(peak).padStart(2, '0') }))),
        h('div', null, h('dt', null, t('ridership.stops')), h('dd', null, fmtInt(ride.byStop.size)))),
      h('section', { class: 'ride-section' },
        h('h3', null, t('ridership.byHour')),
        h('div', { class: 'ridership-chart' }, hourChart(d.hours))),
      h('section', { class: 'ride-section' },
        h('h3', null, t('ridership.od')),
        rankList('od-list', d.od, (r) => h('span', { class: 'pair od' },
          h('span', { class: 'stop', title: r.from }, stopName(r.from)),
          h('span', { class: 'stop to', title: r.to }, h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→ '), stopName(r.to))))),
      h('section', { class: 'ride-section' },
        h('h3', null, t('ridership.transfers')),
        rankList('transfer-list', d.transfers, (r) => h('span', { class: 'pair' },
          routeBadge(r.from), h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'), routeBadge(r.to)))),
      h('section', { class: 'ride-section' },
        h('h3', null, t('ridership.downloads')),
        h('ul', { class: 'downloads' }, RIDERSHIP_FILES.map((f) => h('li', null,
          h('a', { href: `api/v1/ridership/${f}`, download: f },
            h('span', null, t(`dl.${f.replace(/\.(csv|txt)$/, '')}`)),
            h('code', null, f)))))));
    body.replaceChildren(...parts);
  }

  // ------------------------------------------------------- fare calculator --

  const MODES = ['subway', 'trunk', 'branch', 'circular', 'village', 'wide_area', 'night'];
  const fare = {
    legs: [],          // {el, mode, route, board, alight, from, to, fromRoutes, routeStops, trip}
    routes: null,      // every route, for the route pickers
    routesLoading: null,
    routeStops: new Map(), // route id -> Promise<[{stop_id, name}]>
    result: null,
    error: null,
    busy: false,
    tapMeta: [],       // tap index -> {leg, kind}
    req: 0,
  };
  const fareLegsEl = $('#fare-legs');
  const fareResultEl = $('#fare-result');

  function todayIso() {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }

  const toMinutes = (hhmm) => {
    const m = /^(\d{1,2}):(\d{2})/.exec(hhmm || '');
    return m ? +m[1] * 60 + +m[2] : NaN;
  };
  const fromMinutes = (mins) => {
    const m = ((Math.round(mins) % 1440) + 1440) % 1440;
    return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  };

  function fmtWon(n) {
    const v = Number(n);
    if (!Number.isFinite(v)) return '–';
    return (v < 0 ? '−' : '') + t('won', { n: fmtInt(Math.abs(v)) });
  }

  async function loadFareRoutes() {
    if (fare.routes) return fare.routes;
    if (!fare.routesLoading) {
      fare.routesLoading = (async () => {
        const all = [];
        for (let offset = 0; offset < 5000; offset += 1000) {
          const page = await api(`api/v1/routes?limit=1000&offset=${offset}`);
          all.push(...((page && page.items) || []));
          if (!page || all.length >= page.total || !(page.items || []).length) break;
        }
        return all.map((r) => ({
          id: String(r.route_id), short: r.short_name || '', long: r.long_name || '', kind: r.kind || 'other',
        }));
      })();
    }
    try {
      fare.routes = await fare.routesLoading;
    } catch (e) {
      fare.routesLoading = null;
      fare.routes = null;
    }
    for (const leg of fare.legs) fillRouteSelect(leg);
    return fare.routes;
  }

  function routesForMode(mode) {
    const all = fare.routes || [];
    const same = all.filter((r) => r.kind === mode);
    if (same.length || mode === 'subway') return same;
    // Village and wide-area buses often come without their own kind in a feed: offer every bus route.
    return all.filter((r) => !['subway', 'rail', 'tram', 'ferry'].includes(r.kind));
  }

  function fillRouteSelect(leg) {
    const sel = leg.route;
    const keep = sel.value;
    if (leg.mode.value === 'subway') {
      sel.replaceChildren(h('option', { value: '' }, t('fare.routeGates')));
      sel.disabled = true;
      return;
    }
    sel.disabled = false;
    const routes = routesForMode(leg.mode.value);
    const opt = (r) => h('option', { value: r.id }, r.long ? `${r.short || r.id} · ${r.long}` : r.short || r.id);
    const here = leg.fromRoutes ? routes.filter((r) => leg.fromRoutes.has(r.id)) : [];
    const rest = leg.fromRoutes ? routes.filter((r) => !leg.fromRoutes.has(r.id)) : routes;
    const children = [h('option', { value: '' }, t('fare.routeNone'))];
    if (here.length) {
      children.push(h('optgroup', { label: t('fare.routesHere') }, here.map(opt)));
      if (rest.length) children.push(h('optgroup', { label: t('fare.routesOther') }, rest.map(opt)));
    } else {
      children.push(...rest.map(opt));
    }
    sel.replaceChildren(...children);
    sel.value = routes.some((r) => r.id === keep) ? keep : '';
  }

  // Stops along a route, from its drawn geometry: stops within ~25 m of its lines, in line order.
  function routeStops(routeId) {
    if (!fare.routeStops.has(routeId)) {
      const p = api(`api/v1/routes/${encodeURIComponent(routeId)}`).then((res) => {
        const g = res && res.geometry && res.geometry.geometry;
        const lines = g ? (g.type === 'MultiLineString' ? g.coordinates : g.type === 'LineString' ? [g.coordinates] : []) : [];
        const found = new Map();
        for (const coords of lines || []) {
          for (let i = 0; i < coords.length; i++) {
            const [lon, lat] = coords[i];
            const x = lonToX(+lon);
            const y = latToY(+lat);
            const r = 25 / (40075016.686 * Math.cos((+lat * Math.PI) / 180));
            for (const st of grid.get(cellKey(Math.floor(x / GRID), Math.floor(y / GRID))) || []) {
              if (!found.has(st.stop_id) && Math.abs(st.x - x) <= r && Math.abs(st.y - y) <= r) found.set(st.stop_id, st);
            }
          }
        }
        return [...found.values()].map((st) => ({ stop_id: st.stop_id, name: st.name }));
      }).catch(() => []);
      fare.routeStops.set(routeId, p);
    }
    return fare.routeStops.get(routeId);
  }

  // The stops after `from` on the next trip of the leg's route, with the ride time to each.
  async function loadTrip(leg) {
    leg.trip = null;
    const from = leg.from.value;
    const routeId = leg.route.value;
    if (!from || !routeId || leg.mode.value === 'subway') return;
    const q = new URLSearchParams({ limit: '1000', window_minutes: '1440' });
    const date = $('#fare-date').value;
    if (/^\d{4}-\d{2}-\d{2}$/.test(date)) q.set('date', date);
    if (/^\d{2}:\d{2}$/.test(leg.board.value)) q.set('time', `${leg.board.value}:00`);
    const token = {};
    leg.tripToken = token;
    try {
      const dep = await api(`api/v1/stops/${encodeURIComponent(from.stop_id)}/departures?${q}`);
      const item = ((dep && dep.items) || []).find((it) => String(it.route_id) === routeId);
      if (!item) return;
      const trip = await api(`api/v1/trips/${encodeURIComponent(item.trip_id)}`);
      if (leg.tripToken !== token) return;
      const sts = (trip && trip.stop_times) || [];
      const i = sts.findIndex((x) => String(x.stop_id) === String(item.stop_id) || String(x.stop_id) === from.stop_id);
      if (i < 0) return;
      const t0 = toMinutes(sts[i].departure_time);
      leg.trip = sts.slice(i + 1).map((x) => ({
        stop_id: String(x.stop_id), name: x.stop_name || String(x.stop_id),
        ride: Math.max(0, toMinutes(x.arrival_time) - t0),
      }));
    } catch (_) { /* suggestions are a convenience; search still works */ }
  }

  async function onFromPicked(leg) {
    leg.fromRoutes = null;
    const from = leg.from.value;
    if (from) {
      try {
        const res = await api(`api/v1/stops/${encodeURIComponent(from.stop_id)}`);
        if (leg.from.value !== from) return;
        leg.fromRoutes = new Set(((res && res.routes) || []).map((r) => String(r.route_id)));
      } catch (_) { /* keep the full list */ }
    }
    fillRouteSelect(leg);
    // One matching route at this stop: that's the one.
    if (!leg.route.value && leg.fromRoutes) {
      const here = routesForMode(leg.mode.value).filter((r) => leg.fromRoutes.has(r.id));
      if (here.length === 1) leg.route.value = here[0].id;
    }
    loadTrip(leg);
  }

  // A stop search box for the fare form, with suggestions that depend on the leg.
  function stopPicker(id, suggest, onPick, cls) {
    const input = h('input', {
      type: 'search', id, autocomplete: 'off', spellcheck: 'false', role: 'combobox',
      'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': `${id}-list`,
      'data-i18n-placeholder': 'fare.stopPlaceholder', placeholder: t('fare.stopPlaceholder'),
    });
    const list = h('ul', { id: `${id}-list`, class: 'picker-list', role: 'listbox', hidden: true });
    const picker = { input, list, value: null, items: [], active: -1, abort: null, timer: null, seq: 0 };

    const render = (groups, searching) => {
      picker.items = [];
      const rows = [];
      for (const g of groups) {
        if (!g.items.length) continue;
        if (g.title) rows.push(h('li', { class: 'picker-group', role: 'presentation' }, g.title));
        for (const it of g.items) {
          const i = picker.items.push(it) - 1;
          rows.push(h('li', {
            role: 'option', id: `${id}-opt-${i}`, 'aria-selected': String(i === picker.active), dataset: { stopId: it.stop_id },
            onpointerdown: (e) => e.preventDefault(),
            onclick: () => choose(i),
          }, h('span', { class: 'result-name' }, it.name || it.stop_id), h('span', { class: 'result-meta' }, it.meta || it.stop_id)));
        }
      }
      if (searching) rows.push(h('li', { class: 'empty' }, t('fare.searching')));
      else if (!picker.items.length) rows.push(h('li', { class: 'empty' }, t('search.none')));
      list.replaceChildren(...rows);
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
      if (picker.active >= 0) input.setAttribute('aria-activedescendant', `${id}-opt-${picker.active}`);
      else input.removeAttribute('aria-activedescendant');
    };
    const close = () => {
      picker.seq++;
      if (picker.abort) picker.abort.abort();
      clearTimeout(picker.timer);
      list.hidden = true;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
    };
    const choose = (i) => {
      const it = picker.items[i];
      if (!it) return;
      picker.value = { stop_id: String(it.stop_id), name: it.name || String(it.stop_id) };
      input.value = picker.value.name;
      close();
      onPick(it);
    };
    // Focus and typing both refresh; `seq` lets only the latest one render.
    const refresh = async () => {
      const seq = ++picker.seq;
      const q = input.value.trim();
      const typed = q && !(picker.value && q === picker.value.name) ? q.toLowerCase() : '';
      const local = (await suggest()).map((g) => ({
        title: g.title,
        items: g.items.filter((it) => !typed || String(it.name).toLowerCase().includes(typed) || String(it.stop_id).toLowerCase() === typed),
      }));
      if (seq !== picker.seq || document.activeElement !== input) return;
      picker.active = local.some((g) => g.items.length) ? 0 : -1;
      if (!typed) { render(local, false); return; }
      render(local, true);
      if (picker.abort) picker.abort.abort();
      const ctrl = (picker.abort = new AbortController());
      let found = [];
      try {
        const res = await api(`api/v1/stops?q=${encodeURIComponent(q)}&limit=20&offset=0`, { signal: ctrl.signal });
        found = (res && res.items) || [];
      } catch (e) {
        if (e.name === 'AbortError') return;
      }
      if (seq !== picker.seq || ctrl.signal.aborted || document.activeElement !== input) return;
      const seen = new Set(local.flatMap((g) => g.items.map((it) => String(it.stop_id))));
      const more = found.filter((it) => !seen.has(String(it.stop_id))).map((it) => ({
        stop_id: String(it.stop_id), name: it.name || String(it.stop_id),
        meta: `${Number(it.location_type) === 1 ? t('panel.station') : t('panel.stop')} · ${it.stop_id}`,
      }));
      const groups = [...local, { title: local.some((g) => g.items.length) ? t('fare.results') : null, items: more }];
      picker.active = groups.some((g) => g.items.length) ? 0 : -1;
      render(groups, false);
    };
    input.addEventListener('input', () => {
      if (picker.value && input.value.trim() !== picker.value.name) picker.value = null;
      clearTimeout(picker.timer);
      picker.timer = setTimeout(refresh, 180);
    });
    input.addEventListener('focus', () => { refresh(); });
    input.addEventListener('blur', close);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (list.hidden || !picker.items.length) return;
        e.preventDefault();
        const n = picker.items.length;
        picker.active = (picker.active + (e.key === 'ArrowDown' ? 1 : -1) + n) % n;
        for (const li of list.querySelectorAll('[role="option"]')) li.setAttribute('aria-selected', String(li.id === `${id}-opt-${picker.active}`));
        input.setAttribute('aria-activedescendant', `${id}-opt-${picker.active}`);
        const el = document.getElementById(`${id}-opt-${picker.active}`);
        if (el) el.scrollIntoView({ block: 'nearest' });
      } else if (e.key === 'Enter') {
        if (!list.hidden && picker.active >= 0) { e.preventDefault(); choose(picker.active); }
      } else if (e.key === 'Escape' && !list.hidden) {
        e.preventDefault();
        e.stopPropagation();
        close();
      }
    });
    picker.el = h('div', { class: cls ? `picker ${cls}` : 'picker' }, input, list);
    return picker;
  }

  let legSeq = 0;
  function addLeg(prev) {
    const n = ++legSeq;
    const leg = { fromRoutes: null, trip: null };
    const field = (key, control, forId) => h('label', { class: 'field', for: forId }, h('span', { 'data-i18n': key }, t(key)), control);
    leg.mode = h('select', { id: `leg${n}-mode`, class: 'leg-mode' },
      MODES.map((m) => h('option', { value: m, 'data-i18n': `mode.${m}` }, t(`mode.${m}`))));
    leg.mode.value = prev ? prev.mode.value : 'trunk';
    leg.route = h('select', { id: `leg${n}-route`, class: 'leg-route' });
    leg.board = h('input', { type: 'time', id: `leg${n}-board`, class: 'leg-board', required: true });
    leg.alight = h('input', { type: 'time', id: `leg${n}-alight`, class: 'leg-alight' });
    const start = prev ? toMinutes(prev.alight.value || prev.board.value) + 5 : 8 * 60;
    leg.board.value = fromMinutes(Number.isFinite(start) ? start : 8 * 60);
    leg.alight.value = fromMinutes(toMinutes(leg.board.value) + 20);
    leg.from = stopPicker(`leg${n}-from`, async () => {
      if (leg.mode.value === 'subway') {
        return [{ title: null, items: state.stops.filter((st) => st.location_type === 1).slice(0, 60).map((st) => ({ stop_id: st.stop_id, name: st.name })) }];
      }
      if (!leg.route.value) return [];
      return [{ title: t('fare.onRoute'), items: await routeStops(leg.route.value) }];
    }, () => onFromPicked(leg));
    leg.to = stopPicker(`leg${n}-to`, async () => {
      if (leg.trip && leg.trip.length) {
        return [{ title: t('fare.onTrip'), items: leg.trip.map((x) => ({ ...x, meta: t('fare.rideMin', { n: x.ride }) })) }];
      }
      if (leg.mode.value === 'subway') {
        return [{ title: null, items: state.stops.filter((st) => st.location_type === 1 && (!leg.from.value || st.stop_id !== leg.from.value.stop_id)).slice(0, 60).map((st) => ({ stop_id: st.stop_id, name: st.name })) }];
      }
      if (!leg.route.value) return [];
      return [{ title: t('fare.onRoute'), items: (await routeStops(leg.route.value)).filter((x) => !leg.from.value || x.stop_id !== leg.from.value.stop_id) }];
    }, (it) => {
      // Picked from the trip: the alight time follows from the timetable.
      if (Number.isFinite(it.ride) && /^\d{2}:\d{2}$/.test(leg.board.value)) leg.alight.value = fromMinutes(toMinutes(leg.board.value) + Math.max(1, it.ride));
    }, 'align-end');
    leg.mode.addEventListener('change', () => { fillRouteSelect(leg); loadTrip(leg); });
    leg.route.addEventListener('change', () => loadTrip(leg));
    leg.board.addEventListener('change', () => loadTrip(leg));
    leg.title = h('h3', { class: 'leg-title' });
    leg.remove = h('button', {
      type: 'button', class: 'icon-btn leg-remove', 'data-i18n-title': 'fare.removeLeg', 'data-i18n-aria-label': 'fare.removeLeg',
      title: t('fare.removeLeg'), 'aria-label': t('fare.removeLeg'),
      onclick: () => { fare.legs = fare.legs.filter((l) => l !== leg); leg.el.remove(); renumberLegs(); },
    }, '×');
    leg.el = h('li', { class: 'fare-leg' },
      h('div', { class: 'leg-head' }, leg.title, leg.remove),
      h('div', { class: 'leg-grid' },
        field('fare.mode', leg.mode, leg.mode.id),
        field('fare.route', leg.route, leg.route.id),
        field('fare.from', leg.from.el, leg.from.input.id),
        field('fare.to', leg.to.el, leg.to.input.id),
        field('fare.boardTime', leg.board, leg.board.id),
        field('fare.alightTime', leg.alight, leg.alight.id)));
    fare.legs.push(leg);
    fareLegsEl.append(leg.el);
    fillRouteSelect(leg);
    renumberLegs();
    return leg;
  }

  function renumberLegs() {
    fare.legs.forEach((leg, i) => {
      leg.title.textContent = t('fare.leg', { n: i + 1 });
      leg.remove.hidden = fare.legs.length < 2;
      leg.el.dataset.leg = String(i + 1);
    });
  }

  function openFare() {
    if (!$('#fare-date').value) $('#fare-date').value = todayIso();
    if (!fare.legs.length) addLeg(null);
    loadFareRoutes();
  }

  // The taps of the legs, each "at" on the chosen date (rolling over midnight when times go backwards).
  function buildTaps() {
    const date = /^\d{4}-\d{2}-\d{2}$/.test($('#fare-date').value) ? $('#fare-date').value : todayIso();
    const taps = [];
    const meta = [];
    let day = 0;
    let last = -Infinity;
    const stamp = (hhmm) => {
      let m = toMinutes(hhmm) + day * 1440;
      while (m < last) { day++; m += 1440; }
      last = m;
      const d = new Date(`${date}T00:00:00Z`);
      d.setUTCDate(d.getUTCDate() + day);
      return `${d.toISOString().slice(0, 10)}T${hhmm}:00`;
    };
    for (const [i, leg] of fare.legs.entries()) {
      const n = i + 1;
      const mode = leg.mode.value;
      const route = mode === 'subway' ? null : leg.route.value || null;
      if (!leg.from.value && leg.from.input.value.trim()) throw new Error(t('fare.pickStop', { n }));
      if (!leg.to.value && leg.to.input.value.trim()) throw new Error(t('fare.pickStop', { n }));
      if (!/^\d{2}:\d{2}$/.test(leg.board.value)) throw new Error(t('fare.needBoard', { n }));
      taps.push({ at: stamp(leg.board.value), kind: 'in', stop_id: leg.from.value ? leg.from.value.stop_id : '', route_id: route, mode });
      meta.push({ leg: n, kind: 'in' });
      if (leg.to.value) {
        if (!/^\d{2}:\d{2}$/.test(leg.alight.value)) throw new Error(t('fare.needAlight', { n }));
        taps.push({ at: stamp(leg.alight.value), kind: 'out', stop_id: leg.to.value.stop_id, route_id: route, mode });
        meta.push({ leg: n, kind: 'out' });
      }
    }
    return { taps, meta };
  }

  async function calculateFare() {
    const req = ++fare.req;
    let body;
    try {
      const built = buildTaps();
      fare.tapMeta = built.meta;
      body = { category: $('#fare-category').value, taps: built.taps };
    } catch (e) {
      fare.result = null;
      fare.error = e.message;
      renderFareResult();
      fareResultEl.scrollIntoView({ block: 'nearest' });
      return;
    }
    fare.busy = true;
    fare.error = null;
    renderFareResult();
    try {
      const res = await api('api/v1/fares/quote', { body });
      if (req !== fare.req) return;
      fare.result = res;
      fare.error = null;
    } catch (e) {
      if (req !== fare.req) return;
      fare.result = null;
      fare.error = e.message || String(e);
    }
    fare.busy = false;
    renderFareResult();
    // On small screens the answer is below the form: bring it into view.
    const last = fareResultEl.lastElementChild;
    if (last) last.scrollIntoView({ block: 'nearest', behavior: reduceMotion ? 'auto' : 'smooth' });
  }

  function tapLabel(i) {
    const m = fare.tapMeta[i];
    if (!m) return `#${i + 1}`;
    return t(m.kind === 'in' ? 'fare.tapIn' : 'fare.tapOut', { n: m.leg });
  }

  function renderFareResult() {
    const out = [];
    if (fare.busy) out.push(h('p', { class: 'muted' }, t('fare.calculating')));
    if (fare.error) out.push(h('p', { class: 'fare-error', role: 'alert' }, t('fare.error', { msg: fare.error })));
    const r = fare.result;
    if (r && !fare.busy) {
      const charges = Array.isArray(r.charges) ? r.charges : [];
      const journeys = Array.isArray(r.journeys) ? r.journeys : [];
      const byJourney = new Map();
      for (const c of charges) {
        const j = Number(c.journey) || 0;
        if (!byJourney.has(j)) byJourney.set(j, []);
        byJourney.get(j).push(c);
      }
      const blocks = [];
      for (const [j, list] of [...byJourney.entries()].sort((a, b) => a[0] - b[0])) {
        const head = journeys.length > 1
          ? h('li', { class: 'journey-head' }, h('span', null, t('fare.journey', { n: j + 1 })),
            h('span', { class: 'amount' }, fmtWon(journeys[j] ? journeys[j].total : list.reduce((n, c) => n + Number(c.amount || 0), 0))))
          : null;
        blocks.push(head, ...list.map((c) => {
          const rule = (c.rule && c.rule.rule) || '';
          const label = STRINGS.en[`rule.${rule}`] ? t(`rule.${rule}`) : rule || '?';
          const amount = Number(c.amount);
          return h('li', { class: 'fare-charge', dataset: { rule, amount: String(amount) } },
            h('div', { class: 'charge-main' },
              h('span', { class: 'charge-rule' }, label),
              h('span', { class: 'charge-where' }, tapLabel(Number(c.tap_index))),
              h('span', { class: amount < 0 ? 'amount discount' : 'amount' }, fmtWon(amount))),
            c.explanation ? h('p', { class: 'charge-expl' }, String(c.explanation)) : null);
        }));
      }
      if (!charges.length) blocks.push(h('li', { class: 'muted' }, t('fare.noCharges')));
      out.push(h('ul', { class: 'fare-charges' }, blocks));
      const notes = Array.isArray(r.notes) ? r.notes : [];
      if (notes.length) {
        out.push(h('ul', { class: 'fare-notes' }, notes.map((nt) => {
          const kind = nt && nt.kind && nt.kind.kind;
          const key = `note.${kind}`;
          const vars = { tap: tapLabel(Number(nt.tap_index)), s: fmtInt(Number(nt.kind && nt.kind.seconds)) };
          return h('li', null, STRINGS.en[key] ? t(key, vars) : `${vars.tap}: ${kind}`);
        })));
      }
      out.push(h('p', { class: 'fare-total', dataset: { total: String(Number(r.total)) } },
        h('span', null, t('fare.total')), h('strong', { class: 'fare-total-amount' }, fmtWon(r.total))));
    }
    fareResultEl.replaceChildren(...out);
  }

  $('#fare-form').addEventListener('submit', (e) => { e.preventDefault(); calculateFare(); });
  $('#fare-add-leg').addEventListener('click', () => {
    const leg = addLeg(fare.legs[fare.legs.length - 1] || null);
    leg.mode.focus();
  });
  $('#fare-date').addEventListener('change', () => { for (const leg of fare.legs) loadTrip(leg); });

  function renderFareI18n() {
    renumberLegs();
    for (const leg of fare.legs) fillRouteSelect(leg);
    renderFareResult();
  }

  // ------------------------------------------------------------ live layers --
  //
  // Vehicles (Server-Sent Events from /api/v1/vehicles/stream), road speeds
  // (TOPIS, GeoJSON polled every 30 s) and incidents (polled every 30 s).
  // They are drawn over the cached base map, so a moving bus costs one blit
  // of the base plus a few hundred small paths, not a redraw of the network.

  const ROADS_REFRESH_MS = 30000;
  const INCIDENTS_REFRESH_MS = 30000;
  const COMPLAINTS_REFRESH_MS = 60000;
  const CONGESTION = { smooth: '#2F9E44', slow: '#F59F00', congested: '#E03131' };
  const CONGESTION_ORDER = ['smooth', 'slow', 'congested'];

  const live = {
    vehicles: new Map(), // vehicle_id -> {data, x0, y0, x1, y1, t0, dur, color}
    at: null,
    source: null,
    connected: false,
    everConnected: false,
    retry: null,
    vehiclesOn: true,
    selected: null,      // vehicle_id shown in the vehicle panel
    detail: null,        // /api/v1/vehicles/{id}
    detailTimer: null,
    hoverId: null,
    frameTimer: null,
    tz: null,
  };

  const roads = { on: false, features: [], at: null, timer: null, error: null, drawn: 0, loading: false };
  const incidents = { items: [], at: null, error: null, timer: null, on: true, loaded: false };
  // Citizens' complaints (Open311) of the last 30 days, from /api/v1/complaints/map.geojson.
  const complaints = { on: false, items: [], at: null, error: null, timer: null, drawn: 0 };

  const delayMinutes = (v) => (Number.isFinite(+v) ? Math.round(+v) : null);
  function delayText(mins) {
    const m = delayMinutes(mins);
    if (m == null) return '';
    if (m >= 1) return t('veh.late', { n: m });
    if (m <= -1) return t('veh.early', { n: -m });
    return t('veh.onTime');
  }
  const delayClass = (mins) => {
    const m = delayMinutes(mins);
    return m == null ? '' : m >= 5 ? 'late' : m >= 1 ? 'bit-late' : m <= -1 ? 'early' : 'on-time';
  };

  function agencyTz() {
    return live.tz || (state.network && state.network.timezone) || undefined;
  }
  function clockAt(posixSeconds, withSeconds) {
    if (!Number.isFinite(posixSeconds)) return '';
    try {
      return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', {
        hour: '2-digit', minute: '2-digit', second: withSeconds ? '2-digit' : undefined, hour12: false, timeZone: agencyTz(),
      }).format(new Date(posixSeconds * 1000));
    } catch (_) {
      return new Date(posixSeconds * 1000).toTimeString().slice(0, withSeconds ? 8 : 5);
    }
  }

  // ----- vehicles

  function connectVehicles() {
    if (live.source || typeof EventSource === 'undefined') return;
    clearTimeout(live.retry);
    const es = new EventSource('api/v1/vehicles/stream');
    live.source = es;
    es.addEventListener('vehicles', (e) => {
      let body;
      try { body = JSON.parse(e.data); } catch (_) { return; }
      live.connected = true;
      live.everConnected = true;
      applyVehicles(body);
    });
    es.onopen = () => { live.connected = true; renderLiveStatus(); };
    es.onerror = () => {
      live.connected = false;
      renderLiveStatus();
      // EventSource retries by itself unless the server answered with an error; then we do.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        if (live.source === es) live.source = null;
        live.retry = setTimeout(connectVehicles, 5000);
      }
    };
  }

  function vehiclePos(v, now) {
    const k = v.dur > 0 ? clamp((now - v.t0) / v.dur, 0, 1) : 1;
    return [v.x0 + (v.x1 - v.x0) * k, v.y0 + (v.y1 - v.y0) * k];
  }

  function applyVehicles(body) {
    const now = performance.now();
    const list = (body && Array.isArray(body.vehicles)) ? body.vehicles : [];
    live.at = body && Number.isFinite(body.at) ? body.at : null;
    const seen = new Set();
    for (const d of list) {
      const lat = +d.lat;
      const lon = +d.lon;
      if (!d || d.vehicle_id == null || !Number.isFinite(lat) || !Number.isFinite(lon)) continue;
      const id = String(d.vehicle_id);
      seen.add(id);
      const x = lonToX(lon);
      const y = latToY(lat);
      const color = normColor(d.route_color) || (state.routeById.get(String(d.route_id)) || {}).color || KIND_COLORS.other;
      const v = live.vehicles.get(id);
      if (!v) {
        live.vehicles.set(id, { data: d, x0: x, y0: y, x1: x, y1: y, t0: now, dur: 0, color });
        continue;
      }
      if (x !== v.x1 || y !== v.y1) {
        // Glide from where the marker is now to the new fix over about the time between fixes,
        // so the bus moves continuously instead of jumping every ten seconds.
        const [cx, cy] = vehiclePos(v, now);
        const gap = Number.isFinite(d.last_seen) && Number.isFinite(v.data.last_seen) ? d.last_seen - v.data.last_seen : 10;
        const far = Math.abs(x - cx) + Math.abs(y - cy) > 3e-5; // ~3 km: a new trip or a glitch, not motion
        Object.assign(v, far || reduceMotion
          ? { x0: x, y0: y, x1: x, y1: y, t0: now, dur: 0 }
          : { x0: cx, y0: cy, x1: x, y1: y, t0: now, dur: clamp(gap, 1, 12) * 1000 });
      }
      v.data = d;
      v.color = color;
    }
    for (const id of [...live.vehicles.keys()]) if (!seen.has(id)) live.vehicles.delete(id);
    renderVehicleCount();
    renderLiveStatus();
    if (live.selected) renderVehiclePanel();
    queueFrame();
  }

  function renderVehicleCount() {
    const el = $('#count-vehicles');
    if (el) el.textContent = live.everConnected ? fmtInt(live.vehicles.size) : '–';
    const lc = document.getElementById('vehicles-hint');
    if (lc) lc.textContent = live.everConnected ? fmtInt(live.vehicles.size) : '–';
  }

  function renderLiveStatus() {
    const dot = $('#live-dot');
    if (!dot) return;
    dot.classList.toggle('on', live.connected);
    dot.title = live.connected ? t('legend.live') : (live.everConnected ? t('live.offline') : t('live.connecting'));
  }

  const vehicleRadius = () => clamp(3.2 + (view.zoom - 11) * 0.9, 3.2, 9);

  function drawVehicles(now) {
    if (!live.vehiclesOn || !live.vehicles.size) return 0;
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    const r = vehicleRadius();
    const labels = view.zoom >= 14.5;
    let drawn = 0;
    let selectedAt = null;
    ctx.lineJoin = 'round';
    if (live.selected) drawSelectedRoute(s, hx, hy);
    ctx.font = `700 ${Math.round(clamp(r * 1.3, 10, 12))}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    for (const [id, v] of live.vehicles) {
      const [wx, wy] = vehiclePos(v, now);
      const x = wx * s + hx;
      const y = wy * s + hy;
      if (x < -20 || y < -20 || x > cssW + 20 || y > cssH + 20) { v.sx = NaN; continue; }
      v.sx = x; v.sy = y;
      const d = v.data;
      const halted = d.halted_since != null;
      const b = Number(d.bearing);
      ctx.beginPath();
      if (Number.isFinite(b) && !halted) {
        // A circle with a nose pointing where the vehicle heads (bearing 0 = north, clockwise).
        const a = ((b - 90) * Math.PI) / 180;
        const spread = 0.75;
        ctx.arc(x, y, r, a + spread, a - spread + Math.PI * 2);
        ctx.lineTo(x + Math.cos(a) * r * 1.85, y + Math.sin(a) * r * 1.85);
        ctx.closePath();
      } else {
        ctx.arc(x, y, r, 0, Math.PI * 2);
      }
      ctx.fillStyle = v.color;
      ctx.fill();
      ctx.strokeStyle = '#FFFFFF';
      ctx.lineWidth = 1.6;
      ctx.stroke();
      if (halted && r >= 4) {
        ctx.fillStyle = textOn(v.color);
        ctx.fillRect(x - r * 0.4, y - r * 0.4, r * 0.28, r * 0.8);
        ctx.fillRect(x + r * 0.12, y - r * 0.4, r * 0.28, r * 0.8);
      }
      if (id === live.selected) selectedAt = [x, y];
      if (labels && d.route_short_name) {
        const lx = x + r + 4;
        ctx.strokeStyle = 'rgba(255,255,255,0.95)';
        ctx.lineWidth = 3;
        ctx.strokeText(String(d.route_short_name), lx, y);
        ctx.fillStyle = '#1D2330';
        ctx.fillText(String(d.route_short_name), lx, y);
      }
      drawn++;
    }
    if (selectedAt) {
      ctx.beginPath();
      ctx.arc(selectedAt[0], selectedAt[1], r + 6, 0, Math.PI * 2);
      ctx.strokeStyle = '#E8452C';
      ctx.lineWidth = 3;
      ctx.stroke();
    }
    return drawn;
  }

  // The selected vehicle's route stands out over the network.
  function drawSelectedRoute(s, hx, hy) {
    const v = live.vehicles.get(live.selected);
    const route = v && state.routeById.get(String(v.data.route_id));
    if (!route) return;
    ctx.beginPath();
    for (const line of route.lines) {
      const p = line.pts;
      ctx.moveTo(p[0] * s + hx, p[1] * s + hy);
      for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i] * s + hx, p[i + 1] * s + hy);
    }
    const w = route.width * clamp(1 + (view.zoom - 12) * 0.12, 0.7, 1.8) + 3;
    ctx.lineCap = 'round';
    ctx.strokeStyle = '#FFFFFF';
    ctx.lineWidth = w + 4;
    ctx.stroke();
    ctx.strokeStyle = route.color;
    ctx.lineWidth = w;
    ctx.stroke();
  }

  function vehicleAt(sx, sy, slack) {
    if (!live.vehiclesOn) return null;
    const r = vehicleRadius() + slack;
    let best = null;
    let bestD = r * r;
    for (const [id, v] of live.vehicles) {
      if (!Number.isFinite(v.sx)) continue;
      const dd = (v.sx - sx) ** 2 + (v.sy - sy) ** 2;
      if (dd <= bestD) { bestD = dd; best = id; }
    }
    return best;
  }

  function vehicleTooltip(id) {
    const v = live.vehicles.get(id);
    if (!v) return '';
    const d = v.data;
    const parts = [d.route_short_name || d.route_id || id];
    const dt = delayText(d.delay_minutes);
    if (dt) parts.push(dt);
    if (d.halted_since != null) parts.push(t('veh.halted'));
    const next = d.next_stop_id != null ? state.stopById.get(String(d.next_stop_id)) : null;
    if (next) parts.push(t('veh.next', { stop: next.name }));
    return parts.join(' · ');
  }

  // Hooked into the map's own loop; while any marker glides, ask for frames at a rate that
  // matches how far markers move on screen (a bus at zoom 12 moves a pixel in seconds).
  function scheduleLiveFrames(now) {
    if (!live.vehiclesOn || !live.vehicles.size || document.hidden) return;
    let moving = false;
    for (const v of live.vehicles.values()) if (v.dur > 0 && now - v.t0 < v.dur) { moving = true; break; }
    if (!moving) return;
    const interval = view.zoom >= 15 ? 33 : view.zoom >= 13 ? 66 : 200;
    clearTimeout(live.frameTimer);
    live.frameTimer = setTimeout(queueFrame, interval);
  }

  // ----- the vehicle panel

  const vehiclePanel = $('#vehicle-panel');

  function selectVehicle(id) {
    if (!live.vehicles.has(id)) return false;
    if (state.selected) closePanel();
    const tool = openToolName();
    if (tool) closeTool(tool);
    live.selected = id;
    live.detail = null;
    vehiclePanel.hidden = false;
    renderVehiclePanel();
    loadVehicleDetail();
    clearInterval(live.detailTimer);
    live.detailTimer = setInterval(() => { if (!document.hidden) loadVehicleDetail(); }, 10000);
    queueFrame();
    return true;
  }

  function closeVehicle() {
    live.selected = null;
    live.detail = null;
    vehiclePanel.hidden = true;
    clearInterval(live.detailTimer);
    queueFrame();
  }

  async function loadVehicleDetail() {
    const id = live.selected;
    if (!id) return;
    // A vehicle that left the live map (its trip ended) has nothing more to say.
    if (!live.vehicles.has(id) && live.detail) { renderVehiclePanel(); return; }
    try {
      const d = await api(`api/v1/vehicles/${encodeURIComponent(id)}`);
      if (live.selected !== id) return;
      live.detail = d;
    } catch (e) {
      if (live.selected !== id) return;
      live.detail = { error: e.message };
    }
    renderVehiclePanel();
  }

  function renderVehiclePanel() {
    const id = live.selected;
    if (!id) return;
    const v = live.vehicles.get(id);
    const d = v ? v.data : (live.detail && live.detail.vehicle) || {};
    const bg = (v && v.color) || normColor(d.route_color) || KIND_COLORS.other;
    $('#veh-route').replaceChildren(h('span', { class: 'route-badge big', style: { background: bg, color: textOn(bg) } }, d.route_short_name || d.route_id || '?'));
    const route = state.routeById.get(String(d.route_id));
    $('#veh-name').textContent = route && route.longName ? route.longName : (d.route_short_name || d.route_id || '');
    $('#veh-kicker').textContent = t('veh.kicker');
    const meta = [t('veh.id', { id })];
    if (Number.isFinite(+d.speed) && d.halted_since == null) meta.push(t('veh.speed', { n: Math.round(+d.speed * 3.6) }));
    if (d.halted_since != null) meta.push(t('veh.halted'));
    $('#veh-meta').textContent = meta.join(' · ');
    const delay = $('#veh-delay');
    delay.textContent = v ? delayText(d.delay_minutes) : t('veh.gone');
    delay.className = `delay-chip ${v ? delayClass(d.delay_minutes) : 'gone'}`;
    $('#veh-stops-title').textContent = t('veh.nextStops');
    const list = $('#veh-stops');
    const det = live.detail;
    if (!det) { list.replaceChildren(h('li', { class: 'empty' }, t('panel.loading'))); return; }
    if (det.error) { list.replaceChildren(h('li', { class: 'error' }, det.error)); return; }
    const rows = (det.next_stops || []).slice(0, 12).map((ns) => {
      const late = Number.isFinite(ns.expected) && Number.isFinite(ns.scheduled) ? (ns.expected - ns.scheduled) / 60 : null;
      return h('li', { class: 'veh-stop', dataset: { stopId: ns.stop_id } },
        h('button', { type: 'button', class: 'link-btn', onclick: () => { const st = state.stopById.get(String(ns.stop_id)); if (st) { openStop(st); focusStop(st); } } },
          ns.stop_name || ns.stop_id),
        h('span', { class: 'when' },
          h('span', { class: 'mins' }, clockAt(ns.expected)),
          late != null && Math.abs(late) >= 1
            ? h('span', { class: `time ${delayClass(late)}` }, `${clockAt(ns.scheduled)} · ${delayText(late)}`)
            : h('span', { class: 'time' }, t('veh.onTime'))));
    });
    list.replaceChildren(...(rows.length ? rows : [h('li', { class: 'empty' }, t('veh.none'))]));
  }

  $('#vehicle-close').addEventListener('click', closeVehicle);

  // ----- road speeds (TOPIS)

  function parseRoads(fc) {
    const out = [];
    for (const f of (fc && fc.features) || []) {
      const g = f && f.geometry;
      if (!g || g.type !== 'LineString' || !Array.isArray(g.coordinates) || g.coordinates.length < 2) continue;
      const p = f.properties || {};
      const c = g.coordinates;
      const pts = new Float64Array(c.length * 2);
      let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
      for (let i = 0; i < c.length; i++) {
        const x = lonToX(+c[i][0]);
        const y = latToY(+c[i][1]);
        pts[2 * i] = x; pts[2 * i + 1] = y;
        if (x < minx) minx = x; if (x > maxx) maxx = x;
        if (y < miny) miny = y; if (y > maxy) maxy = y;
      }
      if (!Number.isFinite(minx)) continue;
      const level = CONGESTION[p.congestion] ? p.congestion : 'smooth';
      out.push({ pts, minx, miny, maxx, maxy, level, props: p });
    }
    return out;
  }

  async function fetchRoads() {
    if (roads.loading) return;
    roads.loading = true;
    try {
      roads.features = parseRoads(await api('api/v1/roads/speeds.geojson'));
      roads.at = Date.now();
      roads.error = null;
    } catch (e) {
      roads.error = e.message;
    } finally {
      roads.loading = false;
    }
    renderRoadsHint();
    requestRedraw();
  }

  // Turns a polled layer on or off: fetched now, then every `ms` while on and the tab is visible.
  function setPolledLayer(layer, on, fetch, ms) {
    layer.on = !!on;
    clearInterval(layer.timer);
    layer.timer = null;
    if (layer.on) {
      fetch();
      layer.timer = setInterval(() => { if (!document.hidden) fetch(); }, ms);
    }
  }

  function setRoadsLayer(on) {
    setPolledLayer(roads, on, fetchRoads, ROADS_REFRESH_MS);
    const input = $('#toggle-roads');
    if (input) input.checked = roads.on;
    const key = $('#roads-key');
    if (key) key.hidden = !roads.on;
    document.body.dataset.roadsOn = String(roads.on);
    requestRedraw();
  }

  function renderRoadsHint() {
    const el = document.getElementById('roads-hint');
    if (el) el.textContent = roads.on && roads.at ? fmtInt(roads.features.length) : '';
  }

  function drawRoads() {
    if (!roads.on) return 0;
    // Wash the route lines so the traffic colours read first.
    ctx.fillStyle = 'rgba(244,245,242,0.6)';
    ctx.fillRect(0, 0, cssW, cssH);
    if (!roads.features.length) return 0;
    const vp = viewportWorld(20);
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    const w = clamp(2.5 + (view.zoom - 12) * 0.9, 2.5, 8);
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    let drawn = 0;
    const trace = (level) => {
      ctx.beginPath();
      let n = 0;
      for (const f of roads.features) {
        if (level && f.level !== level) continue;
        if (f.maxx < vp.minx || f.minx > vp.maxx || f.maxy < vp.miny || f.miny > vp.maxy) continue;
        const p = f.pts;
        ctx.moveTo(p[0] * s + hx, p[1] * s + hy);
        for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i] * s + hx, p[i + 1] * s + hy);
        n++;
      }
      return n;
    };
    trace(null);
    ctx.strokeStyle = 'rgba(255,255,255,0.95)';
    ctx.lineWidth = w + 3;
    ctx.stroke();
    // Worst last, so congestion shows where segments overlap.
    for (const level of CONGESTION_ORDER) {
      drawn += trace(level);
      ctx.strokeStyle = CONGESTION[level];
      ctx.lineWidth = w;
      ctx.stroke();
    }
    roads.drawn = drawn;
    return drawn;
  }

  function distToSegment(px, py, ax, ay, bx, by) {
    const dx = bx - ax, dy = by - ay;
    const l2 = dx * dx + dy * dy;
    const k = l2 ? clamp(((px - ax) * dx + (py - ay) * dy) / l2, 0, 1) : 0;
    return Math.hypot(px - ax - k * dx, py - ay - k * dy);
  }

  function roadAt(sx, sy, slack) {
    if (!roads.on || !roads.features.length) return null;
    const s = scale();
    const hx = cssW / 2 - view.cx * s;
    const hy = cssH / 2 - view.cy * s;
    let best = null;
    let bestD = slack;
    for (const f of roads.features) {
      const p = f.pts;
      for (let i = 2; i < p.length; i += 2) {
        const d = distToSegment(sx, sy, p[i - 2] * s + hx, p[i - 1] * s + hy, p[i] * s + hx, p[i + 1] * s + hy);
        if (d < bestD) { bestD = d; best = f; }
      }
    }
    return best;
  }

  function roadTooltip(f) {
    const p = f.props;
    const name = (id) => (state.stopById.get(String(id)) || {}).name || id;
    const kmh = Number.isFinite(p.live_kmh) ? p.live_kmh : p.typical_kmh;
    return t('cong.segment', {
      from: name(p.from_stop_id), to: name(p.to_stop_id),
      kmh: Number.isFinite(kmh) ? t('cong.kmh', { n: Math.round(kmh) }) : '–',
      level: t(`cong.${f.level}`),
    });
  }

  // ----- incidents

  const activeIncidents = () => incidents.items.filter((i) => i.status === 'active');

  async function fetchIncidents() {
    try {
      const list = await api('api/v1/incidents');
      incidents.items = Array.isArray(list) ? list.filter((i) => i && i.incident) : [];
      incidents.at = Date.now();
      incidents.error = null;
    } catch (e) {
      incidents.error = e.message;
    }
    incidents.loaded = true;
    renderIncidentCount();
    renderIncidentPanel();
    requestRedraw();
  }

  function startIncidents() {
    fetchIncidents();
    clearInterval(incidents.timer);
    incidents.timer = setInterval(() => { if (!document.hidden) fetchIncidents(); }, INCIDENTS_REFRESH_MS);
  }

  // Where an incident is: its area, else its first known stop, else its vehicle.
  function incidentPlace(inc) {
    const b = inc.incident;
    if (b.area && Number.isFinite(+b.area.lat) && Number.isFinite(+b.area.lon)) {
      return { x: lonToX(+b.area.lon), y: latToY(+b.area.lat), radius: Math.max(0, +b.area.radius_m || 0), lat: +b.area.lat };
    }
    for (const id of b.stops || []) {
      const st = state.stopById.get(String(id));
      if (st) return { x: st.x, y: st.y, radius: 0, lat: st.lat };
    }
    const v = b.vehicle_id != null ? live.vehicles.get(String(b.vehicle_id)) : null;
    if (v) return { x: v.x1, y: v.y1, radius: 0, lat: yToLat(v.y1) };
    return null;
  }

  const incidentHeader = (inc) => (lang === 'en' && inc.incident.header_en) || inc.incident.header || '';
  const SEVERITY_COLOR = { severe: '#C92A2A', warning: '#E8590C', info: '#1C7ED6' };

  function drawIncidents() {
    if (!incidents.on) return 0;
    const s = scale();
    let drawn = 0;
    for (const inc of activeIncidents()) {
      inc.sx = NaN;
      const at = incidentPlace(inc);
      if (!at) continue;
      const x = toScreenX(at.x);
      const y = toScreenY(at.y);
      if (x < -200 || y < -200 || x > cssW + 200 || y > cssH + 200) continue;
      inc.sx = x; inc.sy = y;
      const color = SEVERITY_COLOR[inc.incident.severity] || SEVERITY_COLOR.warning;
      if (at.radius > 0) {
        const mPerWorld = 40075016.686 * Math.cos((at.lat * Math.PI) / 180);
        const rp = (at.radius / mPerWorld) * s;
        if (rp > 6) {
          ctx.beginPath();
          ctx.arc(x, y, rp, 0, Math.PI * 2);
          ctx.fillStyle = 'rgba(232, 89, 12, 0.10)';
          ctx.fill();
          ctx.setLineDash([6, 4]);
          ctx.strokeStyle = color;
          ctx.lineWidth = 1.5;
          ctx.stroke();
          ctx.setLineDash([]);
        }
      }
      // A warning sign: a rounded triangle with "!".
      const k = 11;
      ctx.beginPath();
      ctx.moveTo(x, y - k * 1.05);
      ctx.lineTo(x + k, y + k * 0.75);
      ctx.lineTo(x - k, y + k * 0.75);
      ctx.closePath();
      ctx.lineJoin = 'round';
      ctx.strokeStyle = '#FFFFFF';
      ctx.lineWidth = 4;
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.fill();
      ctx.fillStyle = '#FFFFFF';
      ctx.font = '700 12px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('!', x, y + 1.5);
      ctx.textAlign = 'start';
      drawn++;
    }
    document.body.dataset.incidentsDrawn = String(drawn);
    return drawn;
  }

  function incidentAt(sx, sy) {
    if (!incidents.on) return null;
    for (const inc of activeIncidents()) {
      if (Number.isFinite(inc.sx) && Math.abs(inc.sx - sx) <= 12 && Math.abs(inc.sy - sy) <= 12) return inc;
    }
    return null;
  }

  function renderIncidentCount() {
    const n = activeIncidents().length;
    const badge = $('#incident-count');
    badge.textContent = String(n);
    badge.hidden = n === 0;
    const hint = document.getElementById('incidents-hint');
    if (hint) hint.textContent = incidents.loaded ? fmtInt(n) : '–';
  }

  function focusIncident(inc) {
    const at = incidentPlace(inc);
    if (!at) return;
    const z = Math.max(view.zoom, 14);
    const s = TILE * 2 ** z;
    const pr = $('#incident-panel').getBoundingClientRect();
    const cr = canvas.getBoundingClientRect();
    const freeX = pr.width && pr.width < cr.width * 0.8 ? Math.max(40, (pr.left - cr.left) / 2) : cssW / 2;
    flyTo({ cx: at.x - (freeX - cssW / 2) / s, cy: at.y, zoom: z }, 700);
  }

  function fmtPosix(sec) {
    if (!Number.isFinite(sec)) return '';
    try {
      return new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', {
        month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false, timeZone: agencyTz(),
      }).format(new Date(sec * 1000));
    } catch (_) { return new Date(sec * 1000).toISOString().slice(0, 16); }
  }

  function renderIncidentPanel() {
    const body = $('#incident-body');
    if (!body) return;
    const foot = $('#incident-foot');
    foot.textContent = incidents.at ? t('inc.updated', { time: clockAt(incidents.at / 1000, true) }) : '';
    if (!incidents.loaded) { body.replaceChildren(h('p', { class: 'muted' }, t('panel.loading'))); return; }
    const items = [];
    if (incidents.error) items.push(h('p', { class: 'error' }, t('inc.error', { msg: incidents.error })));
    const list = activeIncidents().sort((a, b) => ['severe', 'warning', 'info'].indexOf(a.incident.severity) - ['severe', 'warning', 'info'].indexOf(b.incident.severity) || b.updated_at - a.updated_at);
    if (!list.length) {
      items.push(h('div', { class: 'ridership-empty' },
        h('p', { class: 'empty-title' }, '✓'),
        h('p', null, t('inc.none'))));
    } else {
      items.push(h('ol', { class: 'incident-list' }, list.map((inc) => {
        const b = inc.incident;
        const sev = SEVERITY_COLOR[b.severity] ? b.severity : 'warning';
        const when = [b.starts_at ? t('inc.since', { time: fmtPosix(b.starts_at) }) : null, b.ends_at ? t('inc.until', { time: fmtPosix(b.ends_at) }) : null].filter(Boolean).join(' · ');
        const stops = (b.stops || []).map((id) => (state.stopById.get(String(id)) || {}).name || id).slice(0, 6);
        return h('li', { class: `incident sev-${sev}`, dataset: { incidentId: String(inc.id) } },
          h('button', { type: 'button', class: 'incident-head', onclick: () => focusIncident(inc) },
            h('span', { class: `sev-chip sev-${sev}` }, t(`sev.${sev}`)),
            h('span', { class: 'incident-title' }, incidentHeader(inc))),
          b.description ? h('p', { class: 'incident-desc' }, b.description) : null,
          (b.routes || []).length ? h('div', { class: 'incident-routes' }, b.routes.slice(0, 12).map((r) => routeBadge(String(r)))) : null,
          stops.length ? h('p', { class: 'incident-meta' }, `${t('inc.stops')}: ${stops.join(', ')}`) : null,
          h('p', { class: 'incident-meta' }, [inc.source === 'operator' ? t('inc.operator') : t('inc.auto'), when].filter(Boolean).join(' · ')));
      })));
    }
    body.replaceChildren(...items);
  }

  // ----- citizens' complaints

  async function fetchComplaints() {
    try {
      const fc = await api('api/v1/complaints/map.geojson?days=30');
      complaints.items = ((fc && fc.features) || []).flatMap((f) => {
        const c = f && f.geometry && f.geometry.coordinates;
        if (!Array.isArray(c) || !Number.isFinite(+c[0]) || !Number.isFinite(+c[1])) return [];
        return [{ x: lonToX(+c[0]), y: latToY(+c[1]), props: f.properties || {}, sx: NaN, sy: NaN }];
      });
      complaints.at = Date.now();
      complaints.error = null;
    } catch (e) {
      complaints.error = e.message;
    }
    renderComplaintsHint();
    requestRedraw();
  }

  function setComplaintsLayer(on) {
    setPolledLayer(complaints, on, fetchComplaints, COMPLAINTS_REFRESH_MS);
    const input = $('#toggle-complaints');
    if (input) input.checked = complaints.on;
    document.body.dataset.complaintsOn = String(complaints.on);
    renderComplaintsHint();
    requestRedraw();
  }

  function renderComplaintsHint() {
    const el = document.getElementById('complaints-hint');
    if (!el) return;
    const open = complaints.items.filter((c) => c.props.open).length;
    el.textContent = complaints.on && complaints.at ? `${fmtInt(open)} / ${fmtInt(complaints.items.length)}` : (complaints.on && complaints.error ? '–' : '');
  }

  // Open complaints as orange diamonds, closed ones faded, so the eye goes to what is still to do.
  function drawComplaints() {
    complaints.drawn = 0;
    if (!complaints.on) return 0;
    const k = clamp(3 + (view.zoom - 12) * 0.8, 3, 7);
    for (const closedFirst of [false, true]) {
      for (const c of complaints.items) {
        if (!!c.props.open !== closedFirst) continue;
        const x = toScreenX(c.x);
        const y = toScreenY(c.y);
        c.sx = x; c.sy = y;
        if (x < -10 || y < -10 || x > cssW + 10 || y > cssH + 10) continue;
        ctx.beginPath();
        ctx.moveTo(x, y - k); ctx.lineTo(x + k, y); ctx.lineTo(x, y + k); ctx.lineTo(x - k, y);
        ctx.closePath();
        ctx.fillStyle = c.props.open ? '#F76707' : 'rgba(134, 142, 150, 0.55)';
        ctx.strokeStyle = '#FFFFFF';
        ctx.lineWidth = 1.5;
        ctx.fill();
        ctx.stroke();
        complaints.drawn++;
      }
    }
    document.body.dataset.complaintsDrawn = String(complaints.drawn);
    return complaints.drawn;
  }

  function complaintAt(sx, sy) {
    if (!complaints.on) return null;
    let best = null;
    let bestD = 6;
    for (const c of complaints.items) {
      const d = Math.hypot(c.sx - sx, c.sy - sy);
      if (d < bestD) { bestD = d; best = c; }
    }
    return best;
  }

  function complaintTooltip(c) {
    const p = c.props;
    const name = (lang === 'ko' ? p.service_name_ko : p.service_name) || p.service_code;
    return `#${p.id} ${name} · ${t(p.open ? 'complaint.open' : 'complaint.closed')}`;
  }

  // ----- the legend's live section

  // One live layer's row: its switch, swatch, name and a count or hint.
  function layerRow(name, onchange, swatch, label, hint) {
    return h('li', null,
      h('label', null,
        h('input', { type: 'checkbox', id: `toggle-${name}`, onchange: (e) => onchange(e.target.checked) }),
        swatch,
        h('span', null, t(label)),
        h('span', { class: 'count', id: `${name}-hint` }, hint)));
  }

  function liveLegendRows() {
    return [
      h('li', { class: 'legend-live' },
        h('span', { class: 'legend-head' }, h('span', { id: 'live-dot', class: 'live-dot', 'aria-hidden': 'true' }), t('legend.live'))),
      layerRow('vehicles', (on) => { live.vehiclesOn = on; if (!on) live.hoverId = null; queueFrame(); },
        h('span', { class: 'swatch vehicle-swatch' }), 'legend.vehicles', '–'),
      layerRow('roads', setRoadsLayer, h('span', { class: 'swatch roads-swatch' }), 'legend.speeds', ''),
      h('li', { id: 'roads-key', class: 'roads-key', hidden: !roads.on },
        CONGESTION_ORDER.map((level) => h('span', { class: 'key' },
          h('span', { class: 'key-line', style: { background: CONGESTION[level] } }),
          t(`cong.${level}`)))),
      layerRow('incidents', (on) => { incidents.on = on; requestRedraw(); },
        h('span', { class: 'swatch incident-swatch' }, '!'), 'legend.incidents', '–'),
      layerRow('complaints', setComplaintsLayer, h('span', { class: 'swatch complaint-swatch' }), 'legend.complaints', ''),
    ];
  }

  function syncLiveLegend() {
    const tv = $('#toggle-vehicles');
    if (tv) tv.checked = live.vehiclesOn;
    const tr = $('#toggle-roads');
    if (tr) tr.checked = roads.on;
    const ti = $('#toggle-incidents');
    if (ti) ti.checked = incidents.on;
    const tc = $('#toggle-complaints');
    if (tc) tc.checked = complaints.on;
    renderComplaintsHint();
    renderVehicleCount();
    renderRoadsHint();
    renderIncidentCount();
    renderLiveStatus();
  }

  // A hidden tab lets go of its streams after a while (browsers allow a handful of
  // connections per server, shared by all tabs) and takes them up again when shown.
  let hiddenTimer = null;
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(hiddenTimer);
      hiddenTimer = setTimeout(() => {
        if (live.source) { live.source.close(); live.source = null; }
        clearTimeout(live.retry);
        live.connected = false;
        renderLiveStatus();
        if (panelStream) closeStopStream();
      }, 30000);
      return;
    }
    clearTimeout(hiddenTimer);
    connectVehicles();
    if (state.selected && !panelStream) openStopStream(state.selected);
    queueFrame();
  });


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
    /** What the page last got from /api/v1/ridership, as it uses it. */
    get ridership() {
      const d = ride.data;
      return {
        loaded: !!d, at: ride.at, error: ride.error, layerOn: ride.layerOn, polling: !!ride.timer, circles: ride.circles.length,
        boardings: d ? d.hours.reduce((n, x) => n + x.b, 0) : null,
        od: d ? d.od.slice(0, 10) : [], transfers: d ? d.transfers.slice(0, 10) : [],
        byStop: Object.fromEntries(ride.byStop),
      };
    },
    setRidershipLayer,
    refreshRidership: () => fetchRidership(true),
    selectVehicle,
    setRoadsLayer,
  };

  // Live state for tests and devtools: where each vehicle is drawn now, the road layer, incidents.
  window.cityos = {
    get vehicles() {
      const now = performance.now();
      return [...live.vehicles].map(([id, v]) => {
        const [x, y] = vehiclePos(v, now);
        return { vehicle_id: id, lon: xToLon(x), lat: yToLat(y), route_id: v.data.route_id, route_short_name: v.data.route_short_name,
          color: v.color, delay_minutes: v.data.delay_minutes, next_stop_id: v.data.next_stop_id, last_seen: v.data.last_seen };
      });
    },
    get live() { return { connected: live.connected, at: live.at, selected: live.selected, stopStream: panelStream ? panelStream.readyState : null }; },
    get roads() { return { on: roads.on, features: roads.features.length, drawn: roads.drawn, at: roads.at, error: roads.error }; },
    get incidents() { return activeIncidents().map((i) => ({ id: i.id, header: incidentHeader(i), placed: !!incidentPlace(i) })); },
    get complaints() { return { on: complaints.on, items: complaints.items.length, open: complaints.items.filter((c) => c.props.open).length, drawn: complaints.drawn, error: complaints.error }; },
    setComplaintsLayer,
    // Where each complaint is drawn, in canvas pixels (those on screen only).
    complaintPoints: () => complaints.items
      .filter((c) => complaints.on && c.sx >= 0 && c.sy >= 0 && c.sx <= cssW && c.sy <= cssH)
      .map((c) => ({ id: c.props.id, x: c.sx, y: c.sy, open: !!c.props.open })),
    selectVehicle,
    setRoadsLayer,
    map: window.cityosMap,
  };

  // ------------------------------------------------------------------ start --

  applyStaticStrings();
  renderTitle();
  resize();
  requestRedraw();
  connectVehicles();
  load().then(() => {
    startIncidents();
    // `/?stop=<stop_id>` opens that stop (the stop board links back here so).
    const st = pinned.get('stop') && state.stopById.get(pinned.get('stop'));
    if (st) { openStop(st); focusStop(st, Math.max(view.zoom, 15), true); }
  }).catch((e) => {
    state.loaded = true;
    state.loadError = e.message || String(e);
    renderStatus();
  });
})();

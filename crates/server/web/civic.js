// The complaint pages: citizens file (with a map pin and a photo) and follow
// their complaints; staff work the queue. Plain JavaScript, no dependencies,
// this server's API only, in Korean and English.
(() => {
  'use strict';

  const STRINGS = {
    ko: {
      'citizen.title': '민원 신고', 'staff.title': '민원 처리',
      'signin.title': '로그인', 'signin.email': '이메일', 'signin.password': '비밀번호', 'signin.name': '이름 (가입 시)',
      'signin.submit': '로그인', 'signin.register': '가입',
      'signin.why': '신고를 보내려면 로그인하거나 가입하세요. 작성한 내용은 그대로 있습니다.',
      'file.title': '새 민원', 'file.service': '종류', 'file.description': '내용', 'file.pin': '지도를 눌러 위치를 고르세요.',
      'file.photo': '사진 (JPEG/PNG, 5MB 이하)', 'file.anonymous': '담당자에게도 익명', 'file.submit': '신고하기',
      'file.filed': '접수되었습니다: 민원 #', 'file.nopin': '위치를 지도에서 골라 주세요.', 'file.nearby': '근처에 같은 민원이 있습니다:',
      'file.held': '검토 후 공개됩니다.',
      'mine.title': '내 민원', 'notes.title': '알림', 'mine.reopen': '다시 열기',
      'queue.title': '접수 목록', 'queue.department': '부서', 'queue.state': '상태', 'queue.overdue': '기한 초과만',
      'state.open': '처리 중', 'state.closed': '종결', 'state.all': '전체',
      'col.service': '종류', 'col.status': '상태', 'col.department': '부서', 'col.deadline': '기한',
      'map.title': '지도 (H3 밀집 지역)', 'detail.title': '민원', 'update.status': '상태 변경', 'update.text': '내용',
      'update.public': '공개 답변 (체크 해제 시 내부 메모)', 'update.submit': '저장', 'merge.into': '중복: 병합할 민원 번호', 'merge.submit': '병합',
      'ranking.title': '기한 내 처리율 순위', 'charts.title': '접수량과 미처리',
      'status.received': '접수', 'status.acknowledged': '확인', 'status.in_progress': '처리 중', 'status.resolved': '해결', 'status.closed': '종결',
      'field.reporter': '신고인', 'field.anonymous': '익명', 'field.description': '내용', 'field.deadline': '기한', 'field.assignee': '담당',
      'note.internal': '내부 메모', 'chart.filed': '접수', 'chart.backlog': '미처리',
      'resolve.title': '처리 소요 시간 (평균, 30일)', 'resolve.service': '종류별', 'resolve.district': '구역별', 'resolve.hours': '시간', 'resolve.minutes': '분', 'resolve.under_minute': '1분 미만', 'resolve.none': '아직 해결된 민원이 없습니다.',
      'assign.department': '담당 부서', 'assign.assignee': '담당 팀·직원', 'assign.submit': '배정',
      'moderation.title': '검토 대기 (부적절한 표현)', 'moderation.approve': '공개', 'moderation.reject': '거부',
    },
    en: {
      'citizen.title': 'Report a problem', 'staff.title': 'Complaint desk',
      'signin.title': 'Sign in', 'signin.email': 'Email', 'signin.password': 'Password', 'signin.name': 'Name (to register)',
      'signin.submit': 'Sign in', 'signin.register': 'Register',
      'signin.why': 'Sign in or register to send your report; what you wrote is kept.',
      'file.title': 'New complaint', 'file.service': 'Kind', 'file.description': 'What is wrong', 'file.pin': 'Click the map to place the pin.',
      'file.photo': 'Photo (JPEG/PNG, up to 5 MB)', 'file.anonymous': 'Anonymous to staff too', 'file.submit': 'Send',
      'file.filed': 'Received: complaint #', 'file.nopin': 'Choose the place on the map.', 'file.nearby': 'Similar open complaints nearby:',
      'file.held': 'It will be public once a moderator has seen it.',
      'mine.title': 'My complaints', 'notes.title': 'Notifications', 'mine.reopen': 'Reopen',
      'queue.title': 'Queue', 'queue.department': 'Department', 'queue.state': 'State', 'queue.overdue': 'Past deadline only',
      'state.open': 'Open', 'state.closed': 'Closed', 'state.all': 'All',
      'col.service': 'Kind', 'col.status': 'Status', 'col.department': 'Department', 'col.deadline': 'Deadline',
      'map.title': 'Map (H3 hotspots)', 'detail.title': 'Complaint', 'update.status': 'Move to', 'update.text': 'Text',
      'update.public': 'Public update (unchecked: internal note)', 'update.submit': 'Save', 'merge.into': 'Duplicate of complaint #', 'merge.submit': 'Merge',
      'ranking.title': 'Ranking: share handled in time', 'charts.title': 'Volume and backlog',
      'status.received': 'received', 'status.acknowledged': 'acknowledged', 'status.in_progress': 'in progress', 'status.resolved': 'resolved', 'status.closed': 'closed',
      'field.reporter': 'Reporter', 'field.anonymous': 'anonymous', 'field.description': 'Description', 'field.deadline': 'Deadline', 'field.assignee': 'Assignee',
      'note.internal': 'internal note', 'chart.filed': 'filed', 'chart.backlog': 'still open',
      'resolve.title': 'Hours to resolve (mean, 30 days)', 'resolve.service': 'By kind', 'resolve.district': 'By district', 'resolve.hours': 'h', 'resolve.minutes': 'min', 'resolve.under_minute': '< 1 min', 'resolve.none': 'Nothing resolved yet.',
      'assign.department': 'Department', 'assign.assignee': 'Team or person', 'assign.submit': 'Assign',
      'moderation.title': 'Held for moderation', 'moderation.approve': 'Publish', 'moderation.reject': 'Reject',
    },
  };
  const LANG_KEY = 'cityos.lang';
  let lang = (() => {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === 'ko' || saved === 'en') return saved;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'ko';
    return nav.toLowerCase().startsWith('ko') ? 'ko' : 'en';
  })();
  const t = (key) => (STRINGS[lang] && STRINGS[lang][key]) ?? STRINGS.en[key] ?? key;
  const $ = (sel) => document.querySelector(sel);
  const page = document.body.dataset.page;
  let catalog = null;
  let refresh = () => {};

  function applyLang() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
    if (catalog) fillServices();
    refresh();
  }
  for (const b of document.querySelectorAll('.lang button')) {
    b.addEventListener('click', () => { lang = b.dataset.lang; localStorage.setItem(LANG_KEY, lang); applyLang(); });
  }

  // The API's errors name the field at fault; show that to the person.
  async function api(method, url, body) {
    const init = { method, credentials: 'same-origin', headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    const r = await fetch(url, init);
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) {
      const e = data && data.error;
      throw new Error(e ? (e.field ? `${e.field}: ${e.message}` : e.message) : `HTTP ${r.status}`);
    }
    return data;
  }

  const serviceName = (code) => {
    const s = catalog && catalog.services.find((x) => x.code === code);
    return s ? (lang === 'ko' ? s.name_ko : s.name) : code;
  };
  const statusName = (s) => t(`status.${s}`);
  const when = (iso) => (iso ? new Date(iso).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB', { timeZone: 'Asia/Seoul' }) : '–');

  // ------------------------------------------------------------------ map --
  // An equirectangular view of the city's bounds: districts, hotspots, complaints, a pin.
  const map = { points: [], hexes: [], pin: null, selected: null };
  // The districts with a margin: the city's full bounds would leave them a speck.
  let view = null;
  function viewBounds() {
    if (view) return view;
    const pts = catalog.districts.features.flatMap((f) => f.geometry.coordinates[0]);
    const lats = pts.map((p) => p[1]); const lons = pts.map((p) => p[0]);
    const m = 0.01;
    view = [Math.min(...lats) - m, Math.min(...lons) - m, Math.max(...lats) + m, Math.max(...lons) + m];
    return view;
  }
  function project(canvas, lat, lon) {
    const [s, w, n, e] = viewBounds();
    return [((lon - w) / (e - w)) * canvas.width, ((n - lat) / (n - s)) * canvas.height];
  }
  function unproject(canvas, x, y) {
    const [s, w, n, e] = viewBounds();
    return [n - (y / canvas.height) * (n - s), w + (x / canvas.width) * (e - w)];
  }
  function drawMap() {
    const canvas = $('#civic-map');
    if (!canvas || !catalog) return;
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.font = '12px system-ui';
    for (const f of catalog.districts.features) {
      g.beginPath();
      for (const [lon, lat] of f.geometry.coordinates[0]) g.lineTo(...project(canvas, lat, lon));
      g.closePath();
      g.fillStyle = 'rgba(60, 90, 166, 0.06)'; g.fill();
      g.strokeStyle = '#9aa6c4'; g.stroke();
      const [x, y] = project(canvas, f.geometry.coordinates[0][2][1], f.geometry.coordinates[0][0][0]);
      g.fillStyle = '#5b6475'; g.fillText(lang === 'ko' ? f.properties.name_ko : f.properties.name, x + 4, y + 14);
    }
    const max = Math.max(1, ...map.hexes.map((h) => h.properties.count));
    for (const h of map.hexes) {
      g.beginPath();
      for (const [lon, lat] of h.geometry.coordinates[0]) g.lineTo(...project(canvas, lat, lon));
      g.closePath();
      g.fillStyle = `rgba(220, 60, 40, ${0.15 + 0.6 * (h.properties.count / max)})`; g.fill();
    }
    for (const p of map.points) {
      const [x, y] = project(canvas, p.geometry.coordinates[1], p.geometry.coordinates[0]);
      g.beginPath(); g.arc(x, y, p.properties.id === map.selected ? 6 : 3.5, 0, Math.PI * 2);
      g.fillStyle = p.properties.open ? '#d9480f' : '#2b8a3e'; g.fill();
    }
    if (map.pin) {
      const [x, y] = project(canvas, map.pin[0], map.pin[1]);
      g.beginPath(); g.moveTo(x, y); g.lineTo(x - 7, y - 16); g.lineTo(x + 7, y - 16); g.closePath();
      g.fillStyle = '#3c5aa6'; g.fill();
    }
  }
  async function loadLayers() {
    const [points, hexes] = await Promise.all([
      api('GET', '/api/v1/complaints/map.geojson?days=30'),
      api('GET', '/api/v1/complaints/hotspots.geojson?resolution=8&days=30'),
    ]);
    map.points = points.features;
    map.hexes = hexes.features;
    drawMap();
  }

  // ------------------------------------------------------------- sign in --
  // The session cookie is HttpOnly: remember that there is one, so a visitor who never
  // signed in is not sent to /me only to be told 401.
  const SESSION_HINT = 'cityos.civic.session';
  async function signedIn() {
    if (!localStorage.getItem(SESSION_HINT)) return null;
    try { return await api('GET', '/api/v1/accounts/me'); } catch (_) { localStorage.removeItem(SESSION_HINT); return null; }
  }
  function bindSignin(onDone) {
    const form = $('#signin-form');
    const login = async () => {
      await api('POST', '/api/v1/accounts/login', { email: form.email.value, password: form.password.value });
      localStorage.setItem(SESSION_HINT, '1');
      $('#signin').hidden = true;
      onDone();
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try { await login(); } catch (e) { $('#signin-error').textContent = e.message; }
    });
    const register = $('#register');
    if (register) {
      register.addEventListener('click', async () => {
        try {
          await api('POST', '/api/v1/accounts/register', { email: form.email.value, password: form.password.value, name: form.name.value || form.email.value });
          await login();
        } catch (e) { $('#signin-error').textContent = e.message; }
      });
    }
  }

  // ------------------------------------------------------------- citizen --
  function fillServices() {
    const select = $('#service');
    if (!select) return;
    const current = select.value;
    select.replaceChildren(...catalog.services.map((s) => new Option(lang === 'ko' ? s.name_ko : s.name, s.code)));
    if (current) select.value = current;
    renderAttributes();
  }
  function renderAttributes() {
    const box = $('#attributes');
    const service = catalog.services.find((s) => s.code === $('#service').value);
    box.replaceChildren();
    for (const a of (service ? service.attributes : []).slice().sort((x, y) => x.order - y.order)) {
      const label = document.createElement('label');
      label.textContent = (lang === 'ko' ? a.description_ko : a.description) + (a.required ? ' *' : '') + ' ';
      if (!a.variable) { label.className = 'muted'; box.append(label); continue; }
      let input;
      if (a.datatype === 'singlevaluelist') {
        input = document.createElement('select');
        input.append(new Option('', ''), ...a.values.map((c) => new Option(lang === 'ko' ? c.name_ko : c.name, c.key)));
      } else if (a.datatype === 'multivaluelist') {
        input = document.createElement('span');
        for (const choice of a.values) {
          const c = document.createElement('label'); c.className = 'check';
          const box2 = document.createElement('input'); box2.type = 'checkbox'; box2.value = choice.key; box2.dataset.multi = a.code;
          c.append(box2, ` ${lang === 'ko' ? choice.name_ko : choice.name}`); input.append(c);
        }
      } else if (a.datatype === 'text') {
        input = document.createElement('textarea');
      } else {
        input = document.createElement('input');
        input.type = a.datatype === 'number' ? 'number' : a.datatype === 'datetime' ? 'datetime-local' : 'text';
        if (a.datatype === 'number') input.step = 'any';
      }
      input.dataset.attr = a.code;
      input.dataset.datatype = a.datatype;
      input.title = a.datatype_description;
      label.append(input);
      box.append(label);
    }
  }
  function attributeValues() {
    const out = {};
    for (const el of document.querySelectorAll('#attributes [data-attr]')) {
      if (el.dataset.datatype === 'multivaluelist') {
        const keys = [...el.querySelectorAll('input:checked')].map((c) => c.value);
        if (keys.length) out[el.dataset.attr] = keys;
      } else if (el.value !== '') {
        // datetime-local has no zone: the city's is +09:00.
        out[el.dataset.attr] = el.dataset.datatype === 'datetime' ? `${el.value.length === 16 ? `${el.value}:00` : el.value}+09:00` : el.value;
      }
    }
    return out;
  }
  async function showNearby() {
    const box = $('#nearby');
    if (!map.pin) { box.hidden = true; return; }
    const q = new URLSearchParams({ service_code: $('#service').value, lat: map.pin[0], long: map.pin[1] });
    const found = (await api('GET', `/api/v1/complaints/nearby?${q}`)).complaints;
    box.hidden = found.length === 0;
    box.textContent = `${t('file.nearby')} ${found.map((c) => `#${c.id} (${statusName(c.status)})`).join(', ')}`;
  }
  async function loadMine() {
    const [mine, notes] = await Promise.all([api('GET', '/api/v1/complaints/mine'), api('GET', '/api/v1/notifications')]);
    $('#mine-list').replaceChildren(...mine.complaints.map((c) => {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      li.textContent = `#${c.id} ${serviceName(c.service_code)} — ${statusName(c.status)}${c.status_notes ? ` · ${c.status_notes}` : ''} `;
      if (!c.open && !c.merged_into) {
        const b = document.createElement('button'); b.type = 'button'; b.textContent = t('mine.reopen');
        b.addEventListener('click', async () => { await api('POST', `/api/v1/complaints/${c.id}/reopen`, { reason: '' }); loadMine(); });
        li.append(b);
      }
      return li;
    }));
    $('#notes-list').replaceChildren(...notes.map((n) => {
      const li = document.createElement('li');
      li.textContent = `${when(n.at)} · ${n.text}`;
      return li;
    }));
  }
  // Anyone sees the map and fills in a report; sending it asks the sender to
  // sign in (or register), and the report goes as soon as they have.
  function citizen() {
    let signed = false;
    let waiting = false;
    const showMine = async () => { $('#mine').hidden = false; await loadMine(); };
    refresh = () => { drawMap(); if (signed) loadMine().catch(() => {}); };
    const send = async () => {
      const form = $('#file-form');
      try {
        const filed = await api('POST', '/api/v1/complaints', {
          service_code: form.service_code.value, lat: map.pin[0], long: map.pin[1],
          description: form.description.value, attributes: attributeValues(), anonymous: form.anonymous.checked,
        });
        const id = filed.complaint.id;
        if (form.photo.files.length) {
          const data = new FormData(); data.append('photo', form.photo.files[0]);
          await api('POST', `/api/v1/complaints/${id}/photos`, data);
        }
        $('#file-ok').textContent = `${t('file.filed')}${id}${filed.held_for_moderation ? ` — ${t('file.held')}` : ''}`;
        form.reset(); map.pin = null; $('#pin').textContent = ''; renderAttributes();
        await Promise.all([loadLayers(), loadMine()]);
      } catch (e) { $('#file-error').textContent = e.message; }
    };
    fillServices();
    loadLayers().catch((e) => { $('#file-error').textContent = e.message; });
    bindSignin(async () => {
      signed = true;
      await showMine().catch(() => {});
      if (waiting) { waiting = false; await send(); }
    });
    $('#service').addEventListener('change', () => { renderAttributes(); showNearby().catch(() => {}); });
    $('#civic-map').addEventListener('click', (ev) => {
      const canvas = ev.currentTarget; const r = canvas.getBoundingClientRect();
      map.pin = unproject(canvas, (ev.clientX - r.left) * (canvas.width / r.width), (ev.clientY - r.top) * (canvas.height / r.height));
      $('#pin').textContent = `${map.pin[0].toFixed(5)}, ${map.pin[1].toFixed(5)}`;
      drawMap();
      showNearby().catch(() => {});
    });
    $('#file-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('#file-error').textContent = ''; $('#file-ok').textContent = '';
      if (!map.pin) { $('#file-error').textContent = t('file.nopin'); return; }
      if (signed) { await send(); return; }
      waiting = true;
      $('#signin').hidden = false;
      $('#signin').scrollIntoView({ block: 'center' });
      $('#signin-form [name=email]').focus();
    });
    signedIn().then((me) => { if (me) { signed = true; showMine().catch(() => {}); } });
  }

  // --------------------------------------------------------------- staff --
  let selected = null;
  async function loadQueue() {
    const q = new URLSearchParams({ state: $('#state').value, limit: '100' });
    if ($('#department').value) q.set('department', $('#department').value);
    if ($('#overdue').checked) q.set('overdue', 'true');
    const { complaints } = await api('GET', `/api/v1/complaints?${q}`);
    $('#queue').replaceChildren(...complaints.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.id = c.id;
      if (c.overdue) tr.className = 'overdue';
      for (const v of [`#${c.id}`, serviceName(c.service_code), statusName(c.status), c.department, when(c.expected_at)]) {
        const td = document.createElement('td'); td.textContent = v; tr.append(td);
      }
      tr.addEventListener('click', () => showDetail(c.id));
      return tr;
    }));
  }
  async function showDetail(id) {
    selected = id; map.selected = id; drawMap();
    const c = await api('GET', `/api/v1/complaints/${id}`);
    $('#detail').hidden = false;
    $('#detail-id').textContent = `#${c.id} ${serviceName(c.service_code)} — ${statusName(c.status)}`;
    const reporter = c.reporter === 'anonymous' ? t('field.anonymous') : [c.reporter.name, c.reporter.email, c.reporter.phone].filter(Boolean).join(' · ');
    const rows = [[t('field.description'), c.description], [t('field.reporter'), reporter], [t('field.deadline'), when(c.expected_at)], [t('field.assignee'), c.assignee || '–']];
    $('#detail-fields').replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt'); dt.textContent = k;
      const dd = document.createElement('dd'); dd.textContent = v;
      return [dt, dd];
    }));
    $('#events').replaceChildren(...c.events.map((e) => {
      const li = document.createElement('li');
      if (!e.public) li.className = 'internal';
      li.textContent = `${when(e.at)} · ${e.status ? statusName(e.status) : e.kind}${e.text ? ` · ${e.text}` : ''}${e.public ? '' : ` (${t('note.internal')})`}`;
      return li;
    }));
  }
  async function loadFigures() {
    const [ranking, charts, resolve] = await Promise.all([
      api('GET', '/api/v1/complaints/ranking?days=30'),
      api('GET', '/api/v1/complaints/charts?days=14'),
      api('GET', '/api/v1/complaints/charts?days=30'),
    ]);
    drawResolveHours(resolve);
    $('#ranking').replaceChildren(...ranking.ranking.map((r) => {
      const tr = document.createElement('tr');
      for (const v of [lang === 'ko' ? r.name_ko : r.name, `${Math.round(r.share_in_time * 100)}%`, `${r.total}`]) {
        const td = document.createElement('td'); td.textContent = v; tr.append(td);
      }
      return tr;
    }));
    const canvas = $('#chart'); const g = canvas.getContext('2d');
    g.clearRect(0, 0, canvas.width, canvas.height);
    const n = charts.days.length;
    const filed = charts.days.map((_, i) => Object.values(charts.volume).reduce((s, v) => s + v[i], 0));
    const max = Math.max(1, ...filed);
    const w = Math.min(60, canvas.width / Math.max(1, n));
    g.font = '11px system-ui';
    charts.days.forEach((d, i) => {
      const hf = (filed[i] / max) * (canvas.height - 30);
      const hb = (charts.backlog[i] / max) * (canvas.height - 30);
      g.fillStyle = '#3c5aa6'; g.fillRect(i * w + 4, canvas.height - 16 - hf, w / 2 - 4, hf);
      g.fillStyle = '#d9480f'; g.fillRect(i * w + w / 2, canvas.height - 16 - hb, w / 2 - 4, hb);
      g.fillStyle = '#5b6475'; g.fillText(d.slice(5), i * w + 4, canvas.height - 3);
    });
    g.fillStyle = '#3c5aa6'; g.fillText(`■ ${t('chart.filed')}`, 6, 12);
    g.fillStyle = '#d9480f'; g.fillText(`■ ${t('chart.backlog')}`, 80, 12);
  }
  const districtName = (code) => {
    const f = catalog && catalog.districts.features.find((x) => x.properties.code === code);
    return f ? (lang === 'ko' ? f.properties.name_ko : f.properties.name) : code;
  };
  // Mean hours from filing to resolution, as horizontal bars: by kind, then by district.
  function drawResolveHours(charts) {
    const canvas = $('#resolve-chart'); const g = canvas.getContext('2d');
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.font = '12px system-ui';
    const groups = [
      [t('resolve.service'), Object.entries(charts.hours_to_resolve_by_service).map(([k, v]) => [serviceName(k), v])],
      [t('resolve.district'), Object.entries(charts.hours_to_resolve_by_district).map(([k, v]) => [districtName(k), v])],
    ];
    const rows = groups.reduce((n, [, bars]) => n + bars.length, 0);
    canvas.dataset.bars = String(rows);
    if (!rows) {
      g.fillStyle = '#5b6475'; g.fillText(t('resolve.none'), 6, 16);
      return;
    }
    const max = Math.max(1e-9, ...groups.flatMap(([, bars]) => bars.map(([, v]) => v)));
    const duration = (hours) => {
      if (hours >= 1) return `${hours.toFixed(1)} ${t('resolve.hours')}`;
      const minutes = Math.round(hours * 60);
      return minutes >= 1 ? `${minutes} ${t('resolve.minutes')}` : t('resolve.under_minute');
    };
    const left = 150; const barH = 16; const width = canvas.width - left - 60;
    canvas.height = 8 + groups.length * 20 + rows * (barH + 4);
    g.font = '12px system-ui';
    let y = 4;
    for (const [title, bars] of groups) {
      g.fillStyle = '#1f2633'; g.fillText(title, 4, y + 13); y += 20;
      for (const [label, hours] of bars) {
        g.fillStyle = '#5b6475'; g.fillText(label, 12, y + 12, left - 16);
        g.fillStyle = '#2f9e44'; g.fillRect(left, y, (hours / max) * width, barH);
        g.fillStyle = '#1f2633'; g.fillText(duration(hours), left + (hours / max) * width + 4, y + 12);
        y += barH + 4;
      }
    }
  }
  // Only officers and admins moderate: others are not even asked, so they see no 403.
  let moderator = false;
  async function loadModeration() {
    $('#moderation').hidden = !moderator;
    if (!moderator) return;
    const { complaints } = await api('GET', '/api/v1/complaints/moderation');
    $('#moderation-list').replaceChildren(...complaints.map((c) => {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      li.textContent = `#${c.id} ${serviceName(c.service_code)} · ${c.description} `;
      for (const [key, approve] of [['moderation.approve', true], ['moderation.reject', false]]) {
        const b = document.createElement('button'); b.type = 'button'; b.textContent = t(key); b.dataset.approve = String(approve);
        b.addEventListener('click', async () => {
          await api('POST', `/api/v1/complaints/${c.id}/moderation`, { approve });
          await Promise.all([loadModeration(), loadQueue(), loadLayers()]);
        });
        li.append(' ', b);
      }
      return li;
    }));
  }
  function staff() {
    const start = async (me) => {
      moderator = !!me && (me.role === 'complaints_officer' || me.role === 'admin');
      $('#desk').hidden = false;
      const options = () => catalog.departments.map((d) => new Option(lang === 'ko' ? d.name_ko : d.name, d.code));
      $('#department').append(...options());
      $('#assign-form [name=department]').append(new Option('', ''), ...options());
      await Promise.all([loadQueue(), loadLayers(), loadFigures(), loadModeration()]);
    };
    refresh = () => { drawMap(); if (!$('#desk').hidden) { loadQueue().catch(() => {}); loadFigures().catch(() => {}); } };
    bindSignin(async () => start(await signedIn()));
    for (const id of ['#department', '#state', '#overdue']) $(id).addEventListener('change', () => loadQueue());
    $('#civic-map').addEventListener('click', (ev) => {
      const canvas = ev.currentTarget; const r = canvas.getBoundingClientRect();
      const x = (ev.clientX - r.left) * (canvas.width / r.width); const y = (ev.clientY - r.top) * (canvas.height / r.height);
      let best = null; let bestD = 15 * 15;
      for (const p of map.points) {
        const [px, py] = project(canvas, p.geometry.coordinates[1], p.geometry.coordinates[0]);
        const d = (px - x) ** 2 + (py - y) ** 2;
        if (d < bestD) { best = p; bestD = d; }
      }
      if (best) showDetail(best.properties.id);
    });
    $('#update-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.currentTarget;
      $('#detail-error').textContent = '';
      try {
        await api('POST', `/api/v1/complaints/${selected}/updates`, { status: f.status.value || null, text: f.text.value, public: f.public.checked });
        f.reset();
        await Promise.all([showDetail(selected), loadQueue(), loadLayers()]);
      } catch (e) { $('#detail-error').textContent = e.message; }
    });
    $('#merge-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('#detail-error').textContent = '';
      try {
        await api('POST', `/api/v1/complaints/${selected}/merge`, { into: Number(ev.currentTarget.into.value) });
        await Promise.all([showDetail(selected), loadQueue()]);
      } catch (e) { $('#detail-error').textContent = e.message; }
    });
    $('#assign-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.currentTarget;
      $('#detail-error').textContent = '';
      try {
        await api('POST', `/api/v1/complaints/${selected}/assign`, { department: f.department.value || null, assignee: f.assignee.value || null });
        await Promise.all([showDetail(selected), loadQueue()]);
      } catch (e) { $('#detail-error').textContent = e.message; }
    });
    signedIn().then((me) => { if (me && me.role !== 'citizen') { $('#signin').hidden = true; start(me); } });
  }

  // For tests and the curious: what the map holds.
  window.cityosCivic = map;

  api('GET', '/api/v1/complaints/catalog').then((c) => {
    catalog = c;
    applyLang();
    if (page === 'citizen') citizen(); else staff();
  });
})();

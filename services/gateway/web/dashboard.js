/* shipstream dashboard: plain JavaScript, no build step.
 *
 * Data comes from the gateway's read API (/db/...) with the API key the user
 * typed, kept in sessionStorage and sent as a Bearer token (never in a URL).
 * Every value from the API reaches the page through textContent (never
 * innerHTML), so a reference or address holding markup shows as text.
 * Charts: Chart.js from Debian's libjs-chart.js, served as /dashboard/chart.js. */
(function () {
  'use strict';

  var KEY_STORE = 'shipstream.apiKey';
  var PAGE_SIZE = 25;
  var STALE_SECONDS = 300; /* analytics older than 5 minutes are stale */
  var LAG_WARN = 10000;

  var state = {
    key: null,
    days: 30,
    mode: 'production', /* production | test | all: the /db mode parameter */
    filters: {},
    cursors: [null], /* cursor of each page shown so far: keyset paging back and forth */
    next: null,
    charts: {},
    loading: 0
  };

  function $(id) { return document.getElementById(id); }

  /* Element with text content only: the one way data reaches the page. */
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmtInt(n) {
    if (n === null || n === undefined) return '–';
    return Number(n).toLocaleString('en-US');
  }

  /* Money arrives as a decimal string ("12.62500"): rounded half up to cents
   * on the digits themselves, never through a binary float. */
  function fmtMoney(s) {
    if (s === null || s === undefined) return '–';
    var m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(s));
    if (!m) return String(s);
    var frac = (m[3] || '') + '000';
    var cents = BigInt(m[2] + frac.slice(0, 2));
    if (frac.charAt(2) >= '5') cents += BigInt(1);
    var whole = cents / BigInt(100), rest = String(cents % BigInt(100));
    return m[1] + '$' + whole.toLocaleString('en-US') + '.' + (rest.length < 2 ? '0' + rest : rest);
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return '–';
    return (Number(r) * 100).toFixed(1) + '%';
  }

  function fmtDays(d) {
    if (d === null || d === undefined) return '–';
    return Number(d).toFixed(2);
  }

  /* "2026-12-01 12:00 UTC" from an ISO timestamp. */
  function fmtTime(t) {
    if (!t) return '–';
    var d = new Date(t);
    if (isNaN(d.getTime())) return String(t);
    return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  function fmtAge(sec) {
    if (sec === null || sec === undefined) return 'never';
    sec = Number(sec);
    if (sec < 90) return Math.round(sec) + ' s';
    if (sec < 5400) return Math.round(sec / 60) + ' min';
    if (sec < 172800) return (sec / 3600).toFixed(1) + ' h';
    return (sec / 86400).toFixed(1) + ' days';
  }

  function place(a) {
    return [a.city, a.state, a.country].filter(function (x) { return x; }).join(', ');
  }

  /* ---------------------------------------------------------------- API */

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  function api(path) {
    return fetch(path, {
      headers: { 'Authorization': 'Bearer ' + state.key, 'Accept': 'application/json' },
      cache: 'no-store',
      credentials: 'omit'
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (res.ok && body) return body;
        var err = body && body.error ? body.error : {};
        throw new ApiError(res.status, err.code || 'http_' + res.status,
                           err.message || ('HTTP ' + res.status));
      });
    }, function () {
      throw new ApiError(0, 'network', 'the gateway did not answer');
    });
  }

  function showBanner(text, bad) {
    var b = $('banner');
    if (!text) { b.hidden = true; return; }
    b.textContent = text;
    b.className = bad ? 'banner bad' : 'banner';
    b.hidden = false;
  }

  function failed(err) {
    if (err && err.status === 401) {
      $('key').value = '';
      signOut('The API key was refused (HTTP 401): it is not one of the gateway\'s keys. Check it and try again.');
      return;
    }
    var what = err && err.message ? err.message : String(err);
    if (err && err.status === 503) what = 'the database is unavailable (' + what + '); retry shortly';
    showBanner('Could not load data: ' + what, true);
  }

  /* ---------------------------------------------------------- sign in/out */

  function showLogin(message) {
    $('app').hidden = true;
    $('controls').hidden = true;
    $('login').hidden = false;
    var e = $('login-error');
    if (message) { e.textContent = message; e.hidden = false; } else { e.hidden = true; }
    $('key').focus();
  }

  function signOut(message) {
    state.key = null;
    try { sessionStorage.removeItem(KEY_STORE); } catch (e) { /* storage off */ }
    showLogin(message);
  }

  /* The key is checked by the first real reads (all sent at once): a 401
   * brings the sign-in form back with the reason; otherwise it is kept. */
  function signIn(key) {
    state.key = key;
    $('login-submit').disabled = true;
    $('login').hidden = true;
    $('app').hidden = false;
    $('controls').hidden = false;
    return loadAll().then(function () {
      $('login-submit').disabled = false;
      if (state.key !== key) return;
      try { sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* storage off */ }
      $('key').value = '';
    });
  }

  /* ---------------------------------------------------------- rendering */

  function setTile(id, raw, text) {
    var t = $(id);
    t.dataset.value = raw === null || raw === undefined ? '' : String(raw);
    t.querySelector('.value').textContent = text;
  }

  function renderSummary(d) {
    var s = d.summary || {};
    setTile('tile-shipments', s.shipments, fmtInt(s.shipments));
    setTile('tile-spend', s.total_cost, fmtMoney(s.total_cost));
    setTile('tile-delivered', s.delivered, fmtInt(s.delivered));
    setTile('tile-ontime', s.on_time_rate, fmtRate(s.on_time_rate));
    setTile('tile-days', s.avg_delivery_days, fmtDays(s.avg_delivery_days));
    /* counted apart from shipments and spend: returns, and labels refunded */
    setTile('tile-returns', s.returns, fmtInt(s.returns) + ' · ' + fmtMoney(s.returns_cost));
    setTile('tile-refunded', s.refunded, fmtInt(s.refunded) + ' · ' + fmtMoney(s.refunded_cost));
    var hint = $('mode-hint');
    if (d.mode === 'production' && Number(s.shipments) === 0) {
      hint.textContent = 'No production shipments in this range. Shipments bought with a ' +
        'test API key are in test mode: choose Test or All above.';
      hint.hidden = false;
    } else {
      hint.hidden = true;
    }
  }

  /* Every UTC day of the range, oldest first, with zeros where /db has no row. */
  function dailySeries(d) {
    var byDate = {};
    (d.daily || []).forEach(function (r) { byDate[r.date] = r; });
    var labels = [], counts = [], spend = [];
    var today = new Date();
    var base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
    for (var i = d.days - 1; i >= 0; i--) {
      var day = new Date(base - i * 86400000).toISOString().slice(0, 10);
      var r = byDate[day];
      labels.push(day);
      counts.push(r ? Number(r.shipments) : 0);
      spend.push(r ? Number(r.total_cost) : 0);
    }
    return { labels: labels, counts: counts, spend: spend };
  }

  /* dashboard.js runs before chart.js (both deferred) so that the reads start
   * while Chart.js is parsed; charts wait for the window's load event. */
  var pageLoaded = new Promise(function (resolve) {
    if (document.readyState === 'complete') resolve();
    else window.addEventListener('load', function () { resolve(); });
  });

  function renderCharts(d) {
    var series = dailySeries(d);
    if (typeof window.Chart !== 'function') {
      var m = $('charts-missing');
      m.textContent = 'Charts are unavailable: /dashboard/chart.js did not load (the gateway needs Debian\'s libjs-chart.js, or GATEWAY_CHARTJS_PATH).';
      m.hidden = false;
      return;
    }
    var defs = [
      { id: 'chart-shipments', type: 'bar', label: 'Shipments', data: series.counts, color: '#2563eb' },
      { id: 'chart-spend', type: 'line', label: 'Spend (USD)', data: series.spend, color: '#0f766e' }
    ];
    defs.forEach(function (def) {
      var chart = state.charts[def.id];
      if (chart) {
        chart.data.labels = series.labels;
        chart.data.datasets[0].data = def.data;
        chart.update('none');
        return;
      }
      state.charts[def.id] = new window.Chart($(def.id), {
        type: def.type,
        data: {
          labels: series.labels,
          datasets: [{ label: def.label, data: def.data, backgroundColor: def.color,
                       borderColor: def.color, fill: false, tension: 0.2, pointRadius: 2 }]
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } }
        }
      });
    });
    document.body.dataset.chartsReady = '1';
  }

  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      if (c instanceof Node) {
        var td = document.createElement('td');
        td.appendChild(c);
        tr.appendChild(td);
      } else if (c && typeof c === 'object') {
        tr.appendChild(el('td', c.text, c.cls));
      } else {
        tr.appendChild(el('td', c));
      }
    });
    return tr;
  }

  function emptyRow(tbody, cols, text) {
    var td = el('td', text, 'empty');
    td.colSpan = cols;
    var tr = document.createElement('tr');
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  function renderCarriers(d) {
    var tb = $('carriers').tBodies[0];
    clear(tb);
    (d.carriers || []).forEach(function (c) {
      tb.appendChild(row([c.carrier, c.service,
        { text: fmtInt(c.total_shipments), cls: 'num' },
        { text: fmtMoney(c.total_revenue), cls: 'num' },
        { text: fmtInt(c.delivered_count), cls: 'num' },
        { text: fmtRate(c.on_time_rate), cls: 'num' },
        { text: fmtDays(c.avg_delivery_days), cls: 'num' }]));
    });
    if (!tb.rows.length) emptyRow(tb, 7, 'No purchased shipments in the last 90 days.');
  }

  function renderRoutes(d) {
    var tb = $('routes').tBodies[0];
    clear(tb);
    (d.top_routes || []).forEach(function (r) {
      tb.appendChild(row([
        [r.from_city, r.from_state, r.from_country].filter(Boolean).join(', '),
        [r.to_city, r.to_state, r.to_country].filter(Boolean).join(', '),
        { text: fmtInt(r.shipment_count), cls: 'num' },
        { text: fmtMoney(r.total_cost), cls: 'num' },
        { text: fmtMoney(r.avg_cost), cls: 'num' }]));
    });
    if (!tb.rows.length) emptyRow(tb, 5, 'No route with 3 or more shipments yet.');
  }

  function renderFreshness(d) {
    var f = d.freshness || {};
    var age = f.age_seconds === null || f.age_seconds === undefined ? null : Number(f.age_seconds);
    var stale = age === null || age > STALE_SECONDS;
    var ageEl = $('fresh-age');
    ageEl.textContent = age === null ? 'never refreshed' : fmtAge(age) + (stale ? ' — stale' : '');
    ageEl.className = stale ? 'stale' : 'ok';
    $('fresh-last').textContent = fmtTime(f.last_refreshed_at);
    $('freshness').classList.toggle('is-stale', stale);
    $('freshness').dataset.stale = stale ? '1' : '0';
  }

  function lagText(p) {
    var l = p.consumer_lag || {};
    if (l.total === null || l.total === undefined) {
      return { text: 'unknown (Kafka: ' + (l.error || 'unavailable') + ')', cls: 'stale' };
    }
    return { text: fmtInt(l.total) + ' messages', cls: l.total > LAG_WARN ? 'stale' : 'ok' };
  }

  function renderPipeline(p) {
    var lag = lagText(p);
    ['fresh-lag', 'pipe-lag'].forEach(function (id) {
      $(id).textContent = lag.text;
      $(id).className = lag.cls;
    });
    var groups = (p.consumer_lag && p.consumer_lag.groups) || [];
    if (groups.length > 1) {
      $('pipe-lag').textContent = lag.text + ' (' + groups.map(function (g) {
        return g.group + ': ' + (g.lag === null ? '?' : fmtInt(g.lag));
      }).join(', ') + ')';
    }
    var s = p.sync || {};
    $('pipe-sync').textContent = s.last_commit_at
      ? fmtAge(s.age_seconds) + ' ago (' + fmtTime(s.last_commit_at) + ')'
      : 'no batch applied yet';
    var dl = p.dead_letters || {};
    var dlq = $('pipe-dlq');
    if (dl.count === null || dl.count === undefined) {
      dlq.textContent = 'unknown (Kafka unavailable)';
      dlq.className = 'stale';
    } else {
      dlq.textContent = fmtInt(dl.count) + ' in ' + dl.topic;
      dlq.className = dl.count > 0 ? 'bad' : 'ok';
    }
    dlq.dataset.value = dl.count === null || dl.count === undefined ? '' : String(dl.count);
    var fails = $('pipe-failures');
    fails.textContent = fmtInt(p.refresh_failures_24h);
    fails.className = p.refresh_failures_24h > 0 ? 'bad' : 'ok';

    var tb = $('refresh-runs').tBodies[0];
    clear(tb);
    (p.refresh_runs || []).forEach(function (r) {
      var outcome = el('span', r.outcome + (r.error ? ': ' + r.error : ''),
                       r.outcome === 'success' ? 'ok' : (r.outcome === 'failed' ? 'bad' : 'stale'));
      tb.appendChild(row([r.view_name, fmtTime(r.started_at),
        { text: r.duration_ms === null ? '–' : Number(r.duration_ms).toFixed(0) + ' ms', cls: 'num' },
        { text: fmtInt(r.rows), cls: 'num' }, outcome]));
    });
    if (!tb.rows.length) emptyRow(tb, 5, 'The views were never refreshed.');
  }

  /* ---------------------------------------------------------- shipments */

  function shipmentsQuery() {
    var q = new URLSearchParams();
    Object.keys(state.filters).forEach(function (k) {
      if (state.filters[k]) q.set(k, state.filters[k]);
    });
    q.set('mode', state.mode);
    q.set('limit', String(PAGE_SIZE));
    var cur = state.cursors[state.cursors.length - 1];
    if (cur) q.set('cursor', cur);
    return '/db/shipments?' + q.toString();
  }

  function loadShipments() {
    var tb = $('shipments').tBodies[0];
    document.body.dataset.shipmentsReady = '0';
    return api(shipmentsQuery()).then(function (page) {
      clear(tb);
      page.shipments.forEach(function (s) {
        var link = el('button', s.id, 'link');
        link.type = 'button';
        link.dataset.id = s.id;
        link.addEventListener('click', function () { openShipment(s.id); });
        var tr = row([fmtTime(s.created_at), link, s.reference || '', s.status || '',
          [s.carrier, s.service].filter(Boolean).join(' '), s.tracking_code || '',
          { text: s.total_cost ? fmtMoney(s.total_cost) : (s.rate ? fmtMoney(s.rate) : '–'), cls: 'num' }]);
        tr.dataset.id = s.id;
        tb.appendChild(tr);
      });
      if (!page.shipments.length) emptyRow(tb, 7, 'No shipment matches.');
      state.next = page.next_cursor;
      $('next').disabled = !page.next_cursor;
      $('prev').disabled = state.cursors.length <= 1;
      $('page-info').textContent = 'Page ' + state.cursors.length;
      document.body.dataset.shipmentsReady = '1';
    });
  }

  function address(node, a) {
    clear(node);
    if (!a) { node.textContent = 'unknown'; return; }
    node.textContent = [a.name, a.company, a.street1, a.street2,
      [a.zip, a.city].filter(Boolean).join(' '), [a.state, a.country].filter(Boolean).join(', ')]
      .filter(function (x) { return x; }).join('\n');
  }

  function openShipment(id) {
    return api('/db/shipments/' + encodeURIComponent(id)).then(function (s) {
      $('d-id').textContent = s.id;
      var dl = $('d-fields');
      clear(dl);
      [['Status', s.status], ['Reference', s.reference], ['Carrier', [s.carrier, s.service].filter(Boolean).join(' ')],
       ['Tracking code', s.tracking_code], ['Cost', s.total_cost ? fmtMoney(s.total_cost) : fmtMoney(s.rate)],
       ['Created', fmtTime(s.created_at)], ['Estimated delivery', fmtTime(s.est_delivery_date)],
       ['Delivered', fmtTime(s.delivered_at)]].forEach(function (kv) {
        dl.appendChild(el('dt', kv[0]));
        dl.appendChild(el('dd', kv[1] === null || kv[1] === undefined || kv[1] === '' ? '–' : kv[1]));
      });
      address($('d-from'), s.from_address);
      address($('d-to'), s.to_address);
      var ol = $('d-timeline');
      clear(ol);
      (s.tracking_events || []).forEach(function (e) {
        var li = document.createElement('li');
        li.appendChild(el('span', fmtTime(e.occurred_at), 'when'));
        li.appendChild(el('span', e.status || '', 'status'));
        var msg = e.message || e.description || '';
        var where = place(e);
        if (msg) li.appendChild(document.createTextNode(' — ' + msg));
        if (where) li.appendChild(el('span', where, 'when'));
        ol.appendChild(li);
      });
      if (!ol.children.length) ol.appendChild(el('li', 'No tracking events yet.'));
      var sec = $('detail');
      sec.hidden = false;
      sec.dataset.id = s.id;
      sec.scrollIntoView({ block: 'start' });
    }).catch(failed);
  }

  /* ---------------------------------------------------------- loading */

  function loadAll() {
    showBanner(null);
    document.body.dataset.loaded = '0';
    var d = api('/db/analytics/dashboard?days=' + state.days + '&mode=' +
                encodeURIComponent(state.mode));
    var parts = [
      d.then(function (x) {
        renderSummary(x); renderCarriers(x); renderRoutes(x); renderFreshness(x);
        return pageLoaded.then(function () { renderCharts(x); });
      }),
      api('/db/pipeline').then(renderPipeline),
      loadShipments()
    ];
    return Promise.all(parts).then(function () {
      /* ms from navigation start to a fully drawn page (read by the browser test) */
      document.body.dataset.loadedMs = String(Math.round(performance.now()));
      document.body.dataset.loaded = '1';
    }, failed);
  }

  function applyFilters(ev) {
    if (ev) ev.preventDefault();
    state.filters = {
      status: $('f-status').value,
      carrier: $('f-carrier').value.trim(),
      tracking_code: $('f-tracking').value.trim()
    };
    state.cursors = [null];
    loadShipments().catch(failed);
  }

  function init() {
    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var key = $('key').value.trim();
      if (!key) { showLogin('Type the gateway API key.'); return; }
      signIn(key);
    });
    $('signout').addEventListener('click', function () { signOut(null); });
    $('reload').addEventListener('click', function () { loadAll(); });
    $('range').addEventListener('change', function () {
      state.days = Number($('range').value);
      loadAll();
    });
    $('mode').addEventListener('change', function () {
      state.mode = $('mode').value;
      state.cursors = [null];
      loadAll();
    });
    $('filters').addEventListener('submit', applyFilters);
    $('f-clear').addEventListener('click', function () {
      $('f-status').value = '';
      $('f-carrier').value = '';
      $('f-tracking').value = '';
      applyFilters();
    });
    $('next').addEventListener('click', function () {
      if (!state.next) return;
      state.cursors.push(state.next);
      loadShipments().catch(failed);
    });
    $('prev').addEventListener('click', function () {
      if (state.cursors.length <= 1) return;
      state.cursors.pop();
      loadShipments().catch(failed);
    });
    $('d-close').addEventListener('click', function () { $('detail').hidden = true; });

    state.days = Number($('range').value);
    state.mode = $('mode').value;
    var saved = null;
    try { saved = sessionStorage.getItem(KEY_STORE); } catch (e) { saved = null; }
    if (saved) {
      signIn(saved);
    } else {
      showLogin(null);
    }
  }

  init();
}());

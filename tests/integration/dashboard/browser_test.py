#!/usr/bin/python3
"""The dashboard in headless Chromium (Debian's chromium, chromium-driver and
python3-selenium), against a running gateway whose database
test_dashboard_browser.sh seeded.  Every check compares what the page shows
with what /db answers for the same key.  Exits 0 when all hold, 1 otherwise;
prints PASS/FAIL lines and the screenshots' paths."""
import argparse
import datetime
import decimal
import json
import os
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

XSS_REF = '<script>window.__xss=3;alert("ref")</script><img src=x onerror="window.__xss=4">'
XSS_NAME = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_STREET = '<script>window.__xss=2;alert(2)</script> 3 Elm St'
PAGE = 25


class Failed(Exception):
    pass


def check(cond, what, got=None):
    if not cond:
        raise Failed(what + ('' if got is None else ': got %r' % (got,)))
    print('PASS: ' + what, flush=True)


def db(args, path):
    req = urllib.request.Request(args.gateway + path,
                                 headers={'Authorization': 'Bearer ' + args.key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def money(s):
    if s is None:
        return '–'
    d = decimal.Decimal(s).quantize(decimal.Decimal('0.01'), rounding=decimal.ROUND_HALF_UP)
    return '$' + '{:,.2f}'.format(d)


def rate(r):
    return '–' if r is None else '%.1f%%' % (float(r) * 100)


def days_fmt(d):
    return '–' if d is None else '%.2f' % float(d)


def start_browser(args):
    opts = webdriver.ChromeOptions()
    opts.binary_location = '/usr/bin/chromium'
    for a in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--disable-dev-shm-usage', '--window-size=1280,800',
              '--user-data-dir=' + os.path.join(args.tmp, 'chromium-profile')):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    service = Service('/usr/bin/chromedriver', log_path=os.path.join(args.tmp, 'chromedriver.log'))
    drv = webdriver.Chrome(service=service, options=opts)
    drv.set_page_load_timeout(30)
    return drv


def viewport(drv, w, h, mobile=False):
    drv.execute_cdp_cmd('Emulation.setDeviceMetricsOverride',
                        {'width': w, 'height': h, 'deviceScaleFactor': 1, 'mobile': mobile})


def wait(drv, cond, what, timeout=15):  # noqa: E302
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.05).until(lambda d: cond(d))
    except TimeoutException:
        raise Failed('timed out waiting for ' + what)


def no_alert(drv):
    try:
        a = drv.switch_to.alert
        text = a.text
        a.dismiss()
        raise Failed('an alert was opened: %r' % text)
    except NoAlertPresentException:
        pass


def body_flag(drv, name):
    return drv.execute_script('return document.body.dataset[arguments[0]] || ""', name)


def wait_loaded(drv, what, timeout=15):
    wait(drv, lambda d: body_flag(d, 'loaded') == '1', what, timeout)


def wait_shipments(drv, what):
    wait(drv, lambda d: body_flag(d, 'shipmentsReady') == '1', what)


def table_rows(drv, table_id):
    return drv.execute_script(
        'return Array.from(document.querySelectorAll("#" + arguments[0] + " tbody tr"))'
        '.map(tr => Array.from(tr.cells).map(td => td.textContent));', table_id)


def shown_ids(drv):
    return drv.execute_script(
        'return Array.from(document.querySelectorAll("#shipments tbody tr[data-id]"))'
        '.map(tr => tr.dataset.id);')


def tile(drv, name):
    e = drv.find_element(By.ID, 'tile-' + name)
    return e.get_attribute('data-value'), e.find_element(By.CSS_SELECTOR, '.value').text


def check_tiles(drv, args, days):
    s = db(args, '/db/analytics/dashboard?days=%d' % days)['summary']
    check(tile(drv, 'shipments') == (str(s['shipments']), '{:,}'.format(s['shipments'])),
          'tile shipments = /db summary.shipments (%d days)' % days, tile(drv, 'shipments'))
    check(tile(drv, 'spend') == (s['total_cost'], money(s['total_cost'])),
          'tile spend = /db summary.total_cost (%d days)' % days, tile(drv, 'spend'))
    check(tile(drv, 'delivered') == (str(s['delivered']), '{:,}'.format(s['delivered'])),
          'tile delivered = /db summary.delivered', tile(drv, 'delivered'))
    check(tile(drv, 'ontime')[1] == rate(s['on_time_rate']) and
          float(tile(drv, 'ontime')[0]) == float(s['on_time_rate']),
          'tile on-time rate = /db summary.on_time_rate', (tile(drv, 'ontime'), s['on_time_rate']))
    check(s.get('avg_delivery_days') is not None and
          tile(drv, 'days')[1] == days_fmt(s['avg_delivery_days']),
          'tile average delivery days = /db summary.avg_delivery_days',
          (tile(drv, 'days'), s.get('avg_delivery_days')))
    return s


def check_charts(drv, args, days):
    dash = db(args, '/db/analytics/dashboard?days=%d' % days)
    wait(drv, lambda d: body_flag(d, 'chartsReady') == '1', 'the charts')
    got = drv.execute_script(
        'const a = Chart.getChart("chart-shipments"), b = Chart.getChart("chart-spend");'
        'return {labels: a.data.labels, counts: a.data.datasets[0].data,'
        ' spend: b.data.datasets[0].data, spendLabels: b.data.labels,'
        ' h: document.getElementById("chart-shipments").height};')
    check(len(got['labels']) == days and got['labels'] == got['spendLabels'],
          'charts: one label per day of the range (%d)' % days, len(got['labels']))
    today = datetime.datetime.now(datetime.timezone.utc).date()
    check(got['labels'][-1] == today.isoformat(), 'charts end today (UTC)', got['labels'][-1])
    by_date = {r['date']: r for r in dash['daily']}
    want_counts = [int(by_date[d]['shipments']) if d in by_date else 0 for d in got['labels']]
    want_spend = [float(by_date[d]['total_cost']) if d in by_date else 0 for d in got['labels']]
    check(got['counts'] == want_counts, 'shipments chart = /db daily shipments', got['counts'])
    check([round(x, 2) for x in got['spend']] == [round(x, 2) for x in want_spend],
          'spend chart = /db daily total_cost', got['spend'])
    check(sum(got['counts']) == dash['summary']['shipments'], 'chart total = tile total')
    check(got['h'] > 50, 'the chart canvas is drawn at a real size', got['h'])


def run(args):
    drv = start_browser(args)
    shots = []
    try:
        # Open: / redirects to the page; the sign-in form asks for the key.
        drv.get(args.gateway + '/')
        check(drv.current_url == args.gateway + '/dashboard', 'GET / lands on /dashboard',
              drv.current_url)
        wait(drv, lambda d: d.find_element(By.ID, 'login').is_displayed(), 'the sign-in form')

        # A wrong key: a clear message, nothing kept.
        drv.find_element(By.ID, 'key').send_keys('not-a-key')
        drv.find_element(By.ID, 'login-submit').click()
        err = wait(drv, lambda d: d.find_element(By.ID, 'login-error').is_displayed() and
                   d.find_element(By.ID, 'login-error'), 'the wrong-key message')
        check('refused (HTTP 401)' in err.text and 'key' in err.text,
              'a wrong key shows a clear message', err.text)
        check(drv.execute_script('return sessionStorage.getItem("shipstream.apiKey")') is None,
              'a wrong key is not kept')
        check(not drv.find_element(By.ID, 'app').is_displayed(), 'no data shown for a wrong key')

        # The right key.
        check(drv.find_element(By.ID, 'key').get_attribute('value') == '', 'a refused key is cleared')
        t0 = time.monotonic()
        drv.find_element(By.ID, 'key').send_keys(args.key)
        drv.find_element(By.ID, 'login-submit').click()
        wait_loaded(drv, 'the dashboard after signing in')
        print('INFO: signed in and drawn in %.0f ms' % ((time.monotonic() - t0) * 1000))
        check(args.key not in drv.current_url, 'the key is not in the URL', drv.current_url)
        check(drv.execute_script('return sessionStorage.getItem("shipstream.apiKey")') == args.key,
              'the key is kept in sessionStorage')
        check(drv.execute_script('return localStorage.length') == 0, 'nothing in localStorage')

        # Tiles and charts for 30 days (the default), then 7.
        check(Select(drv.find_element(By.ID, 'range')).first_selected_option.get_attribute('value') == '30',
              'default range 30 days')
        check_tiles(drv, args, 30)
        check_charts(drv, args, 30)

        # Carriers, routes, freshness, pipeline.
        dash = db(args, '/db/analytics/dashboard?days=30')
        want = [[c['carrier'], c['service'], '{:,}'.format(c['total_shipments']),
                 money(c['total_revenue']), '{:,}'.format(c['delivered_count']),
                 rate(c['on_time_rate']), days_fmt(c['avg_delivery_days'])] for c in dash['carriers']]
        check(len(want) == 3 and table_rows(drv, 'carriers') == want,
              'carriers table = /db carriers (3 rows, on-time rate per service)',
              table_rows(drv, 'carriers'))
        want = [[', '.join(x for x in (r['from_city'], r['from_state'], r['from_country']) if x),
                 ', '.join(x for x in (r['to_city'], r['to_state'], r['to_country']) if x),
                 '{:,}'.format(r['shipment_count']), money(r['total_cost']), money(r['avg_cost'])]
                for r in dash['top_routes']]
        check(len(want) >= 1 and table_rows(drv, 'routes') == want, 'top routes table = /db top_routes',
              table_rows(drv, 'routes'))
        check(drv.find_element(By.ID, 'freshness').get_attribute('data-stale') == '0' and
              'stale' not in drv.find_element(By.ID, 'fresh-age').text,
              'freshness: just refreshed, not stale', drv.find_element(By.ID, 'fresh-age').text)
        pipe = db(args, '/db/pipeline')
        lag = drv.find_element(By.ID, 'fresh-lag').text
        check(lag == '%d messages' % pipe['consumer_lag']['total'] and
              drv.find_element(By.ID, 'pipe-lag').text.startswith(lag),
              'consumer lag = /db/pipeline consumer_lag.total', lag)
        dlq = drv.find_element(By.ID, 'pipe-dlq')
        check(dlq.get_attribute('data-value') == str(pipe['dead_letters']['count']) == '2' and
              'bad' in dlq.get_attribute('class'),
              'dead letters = /db/pipeline (2), in the warning colour', dlq.text)
        runs = table_rows(drv, 'refresh-runs')
        check(len(runs) == len(pipe['refresh_runs']) and runs[0][0] == 'mv_top_routes' and
              runs[0][4].startswith('failed: 57014') and '<i>' in runs[0][4],
              'last refresh runs = /db/pipeline refresh_runs (failed one first, error as text)', runs[:2])
        check(drv.find_element(By.ID, 'pipe-failures').text == '1', 'refresh failures (24 h) = 1')

        # Range 7 days.
        Select(drv.find_element(By.ID, 'range')).select_by_value('7')
        wait(drv, lambda d: body_flag(d, 'loaded') == '0' or
             len(d.execute_script('return Chart.getChart("chart-shipments").data.labels')) == 7,
             'the range change to start')
        wait_loaded(drv, 'the 7-day range')
        s7 = check_tiles(drv, args, 7)
        check_charts(drv, args, 7)
        check(s7['shipments'] < db(args, '/db/analytics/dashboard?days=30')['summary']['shipments'],
              '7 days count fewer shipments than 30')

        # Mode: Production by default; Test shows the test-mode numbers (none here: every
        # seeded shipment is production), then back.
        check(Select(drv.find_element(By.ID, 'mode')).first_selected_option.get_attribute('value') ==
              'production', 'default mode production')
        Select(drv.find_element(By.ID, 'mode')).select_by_value('test')
        wait(drv, lambda d: body_flag(d, 'loaded') == '0' or tile(d, 'shipments')[0] == '0',
             'the mode change to start')
        wait_loaded(drv, 'mode test')
        st = db(args, '/db/analytics/dashboard?days=7&mode=test')['summary']
        check(st['shipments'] == 0 and tile(drv, 'shipments') == ('0', '0') and
              tile(drv, 'spend')[0] == st['total_cost'],
              'mode test: tiles = /db?mode=test (no test shipments)', tile(drv, 'shipments'))
        wait_shipments(drv, 'the test-mode shipments list')
        check(shown_ids(drv) == [x['id'] for x in db(args, '/db/shipments?mode=test&limit=%d' % PAGE)['shipments']],
              'mode test: shipments list = /db/shipments?mode=test', shown_ids(drv)[:3])
        Select(drv.find_element(By.ID, 'mode')).select_by_value('production')
        wait(drv, lambda d: body_flag(d, 'loaded') == '0' or tile(d, 'shipments')[0] != '0',
             'the mode change back to start')
        wait_loaded(drv, 'mode production')
        check_tiles(drv, args, 7)

        # Screenshot at 1280x800.
        viewport(drv, 1280, 800)
        drv.execute_script('window.scrollTo(0, 0)')
        p = os.path.join(args.artifacts, 'dashboard-1280x800.png')
        drv.save_screenshot(p)
        shots.append(p)
        check(drv.execute_script('return document.documentElement.scrollWidth') <= 1280,
              'no horizontal overflow at 1280 wide')

        # Recent shipments: first page = /db's first page; keyset paging.
        wait_shipments(drv, 'the shipments list')
        first = db(args, '/db/shipments?limit=%d' % PAGE)
        check(shown_ids(drv) == [x['id'] for x in first['shipments']],
              'shipments page 1 = /db/shipments?limit=25', shown_ids(drv)[:3])
        rows = table_rows(drv, 'shipments')
        check(rows[0][1] == first['shipments'][0]['id'] and rows[0][3] == first['shipments'][0]['status'],
              'row cells carry id and status')
        drv.find_element(By.ID, 'next').click()
        wait(drv, lambda d: d.find_element(By.ID, 'page-info').text == 'Page 2', 'page 2')
        wait_shipments(drv, 'page 2')
        second = db(args, '/db/shipments?limit=%d&cursor=%s' % (PAGE, first['next_cursor']))
        check(shown_ids(drv) == [x['id'] for x in second['shipments']],
              'Older: page 2 = /db/shipments with next_cursor', shown_ids(drv)[:3])
        drv.find_element(By.ID, 'next').click()
        wait(drv, lambda d: d.find_element(By.ID, 'page-info').text == 'Page 3', 'page 3')
        wait_shipments(drv, 'page 3')
        check(len(shown_ids(drv)) == 61 - 2 * PAGE and not drv.find_element(By.ID, 'next').is_enabled(),
              'page 3 holds the last 11 shipments; Older disabled', len(shown_ids(drv)))
        drv.find_element(By.ID, 'prev').click()
        wait(drv, lambda d: d.find_element(By.ID, 'page-info').text == 'Page 2', 'back to page 2')
        wait_shipments(drv, 'back to page 2')
        drv.find_element(By.ID, 'prev').click()
        wait(drv, lambda d: d.find_element(By.ID, 'page-info').text == 'Page 1', 'back to page 1')
        wait_shipments(drv, 'back to page 1')
        check(shown_ids(drv) == [x['id'] for x in first['shipments']] and
              not drv.find_element(By.ID, 'prev').is_enabled(),
              'Newer twice: back on page 1, Newer disabled')

        # XSS: the reference shows as text; no script ran, no image was made.
        row = drv.find_element(By.CSS_SELECTOR, '#shipments tr[data-id="shp_xss"]')
        ref = row.find_elements(By.TAG_NAME, 'td')[2]
        check(ref.text == XSS_REF, 'the <script>/<img onerror> reference shows literally', ref.text)
        no_alert(drv)
        check(drv.execute_script('return window.__xss === undefined && document.images.length === 0'),
              'no injected script ran and no <img> exists')

        # Detail and timeline.
        row.find_element(By.CSS_SELECTOR, 'button.link').click()
        wait(drv, lambda d: d.find_element(By.ID, 'detail').is_displayed() and
             d.find_element(By.ID, 'detail').get_attribute('data-id') == 'shp_xss', 'the detail')
        detail = db(args, '/db/shipments/shp_xss')
        to = drv.find_element(By.ID, 'd-to').text
        check(XSS_NAME in to and XSS_STREET in to, 'the address with markup shows literally', to)
        items = drv.find_elements(By.CSS_SELECTOR, '#d-timeline li')
        check(len(items) == len(detail['tracking_events']) == 3, 'timeline: one entry per tracking event',
              len(items))
        for li, ev in zip(items, detail['tracking_events']):
            check(li.find_element(By.CSS_SELECTOR, '.status').text == ev['status'] and ev['message'] in li.text,
                  'timeline entry: %s — %s' % (ev['status'], ev['message']), li.text)
        check('Accepted at <b>USPS</b> facility' in items[1].text, 'markup in a tracking message is text')
        no_alert(drv)
        check(drv.execute_script('return window.__xss === undefined && document.images.length === 0 && '
                                 'document.querySelectorAll("#d-to script, #d-to img, #d-timeline b").length === 0'),
              'the detail holds no injected element')
        p = os.path.join(args.artifacts, 'dashboard-detail-1280x800.png')
        drv.save_screenshot(p)
        shots.append(p)

        # Filter: status delivered; then search by tracking code.
        Select(drv.find_element(By.ID, 'f-status')).select_by_value('delivered')
        drv.find_element(By.ID, 'f-apply').click()
        want = db(args, '/db/shipments?status=delivered&limit=%d' % PAGE)
        wait(drv, lambda d: shown_ids(d) == [x['id'] for x in want['shipments']], 'the status filter')
        check(all(r[3] == 'delivered' for r in table_rows(drv, 'shipments')) and
              drv.find_element(By.ID, 'page-info').text == 'Page 1',
              'status filter: only delivered shipments = /db/shipments?status=delivered', len(want['shipments']))
        drv.find_element(By.ID, 'f-clear').click()
        drv.find_element(By.ID, 'f-tracking').send_keys('TRK000042')
        drv.find_element(By.ID, 'f-apply').click()
        wait(drv, lambda d: shown_ids(d) == ['shp_042'], 'the tracking-code search')
        check(True, 'search by tracking code finds shp_042 only')

        # Reload: signed in from sessionStorage, drawn again.  The time is
        # reported, not asserted (a shared machine's load decides it); the
        # 1 s goal is measured by page_load_bench.sh in make bench.
        drv.find_element(By.ID, 'f-clear').click()
        loads = []
        for _ in range(3):
            drv.get(args.gateway + '/dashboard')
            wait_loaded(drv, 'the dashboard after a reload')
            loads.append(int(body_flag(drv, 'loadedMs')))
        print('INFO: reloads drawn in %s ms' % loads)
        ms = min(loads)  # best of 3: the machine is shared; the page itself must manage it
        for name, start, dur in drv.execute_script(
                'return performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))'
                '.map(e => [e.name, Math.round(e.startTime), Math.round(e.duration)])'):
            print('INFO:   %5d ms +%4d ms  %s' % (start, dur, name.replace(args.gateway, '')))
        print('INFO: page load to fully drawn (navigation start -> data shown): %d ms' % ms)
        check(ms > 0, 'reloaded page drawn from sessionStorage (%d ms)' % ms, ms)

        # Stale analytics (last refresh 10 minutes ago): the warning colour.
        subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', args.db_url, '-c',
                        "UPDATE analytics_refresh_log SET finished_at = finished_at - interval '10 minutes'"],
                       check=True, stdout=subprocess.DEVNULL)
        drv.find_element(By.ID, 'reload').click()
        wait(drv, lambda d: d.find_element(By.ID, 'freshness').get_attribute('data-stale') == '1',
             'the freshness to turn stale')
        wait_loaded(drv, 'the refresh')
        age = drv.find_element(By.ID, 'fresh-age')
        check('stale' in age.text and age.get_attribute('class') == 'stale' and
              'is-stale' in drv.find_element(By.ID, 'freshness').get_attribute('class') and
              drv.execute_script('return getComputedStyle(arguments[0]).backgroundColor', age) == 'rgb(255, 244, 214)',
              'analytics 10 minutes old: marked stale in the warning colour', age.text)

        # Phone: 390x844.
        viewport(drv, 390, 844, mobile=True)
        drv.execute_script('window.scrollTo(0, 0)')
        wait(drv, lambda d: d.execute_script(
            'return document.getElementById("chart-shipments").getBoundingClientRect().width') <= 390,
            'the charts to fit the phone width')
        width = drv.execute_script('return document.documentElement.scrollWidth')
        check(width <= 390, 'no horizontal overflow at 390 wide', width)
        check(drv.execute_script(
            'const r = document.getElementById("tile-shipments").getBoundingClientRect(); return r.right <= 390 && r.width > 100'),
            'tiles fit the phone screen')
        p = os.path.join(args.artifacts, 'dashboard-390x844.png')
        drv.save_screenshot(p)
        shots.append(p)

        # A gateway without Chart.js (503) and without Kafka: the tables still
        # come, with a message instead of the charts and 'unknown' lag.
        if args.degraded_gateway:
            viewport(drv, 1280, 800)
            drv.get(args.degraded_gateway + '/dashboard')
            wait(drv, lambda d: d.find_element(By.ID, 'login').is_displayed() or
                 body_flag(d, 'loaded') == '1', 'the degraded page')
            if drv.find_element(By.ID, 'login').is_displayed():
                drv.find_element(By.ID, 'key').send_keys(args.key)
                drv.find_element(By.ID, 'login-submit').click()
            wait_loaded(drv, 'the degraded page', 20)
            msg = drv.find_element(By.ID, 'charts-missing')
            check(msg.is_displayed() and 'GATEWAY_CHARTJS_PATH' in msg.text and
                  len(table_rows(drv, 'carriers')) == 3 and len(shown_ids(drv)) == PAGE,
                  'without Chart.js: a clear message, tiles and tables still shown', msg.text)
            check(drv.find_element(By.ID, 'pipe-lag').text.startswith('unknown (Kafka:') and
                  drv.find_element(By.ID, 'pipe-dlq').text.startswith('unknown'),
                  'without Kafka: lag and dead letters unknown, with the reason',
                  drv.find_element(By.ID, 'pipe-lag').text)
            p = os.path.join(args.artifacts, 'dashboard-degraded-1280x800.png')
            drv.save_screenshot(p)
            shots.append(p)

        # Sign out clears the key.
        viewport(drv, 1280, 800)
        drv.find_element(By.ID, 'signout').click()
        check(drv.execute_script('return sessionStorage.getItem("shipstream.apiKey")') is None and
              drv.find_element(By.ID, 'login').is_displayed(), 'sign out forgets the key')

        # The console: no CSP violation, no error but the wrong key's 401.
        logs = drv.get_log('browser')
        bad = [l['message'] for l in logs if l['level'] == 'SEVERE' and '401' not in l['message'] and
               not (args.degraded_gateway and l['message'].startswith(args.degraded_gateway) and
                    'chart.js' in l['message'])]
        csp = [l['message'] for l in logs if 'Content Security Policy' in l['message']]
        check(not csp, 'no Content-Security-Policy violation in the console', csp)
        check(not bad, 'no other error in the console', bad)
        no_alert(drv)
    except Exception:
        p = os.path.join(args.artifacts, 'dashboard-failure.png')
        drv.save_screenshot(p)
        shots.append(p)
        for l in drv.get_log('browser'):
            print('CONSOLE: %s %s' % (l['level'], l['message']))
        raise
    finally:
        for p in shots:
            print('SCREENSHOT: ' + p, flush=True)
        drv.quit()


def measure(args):
    """Page load (navigation start -> every tile, chart and table drawn) over
    args.measure reloads, the key already in sessionStorage."""
    drv = start_browser(args)
    try:
        drv.get(args.gateway + '/dashboard')
        wait(drv, lambda d: d.find_element(By.ID, 'login').is_displayed(), 'the sign-in form')
        drv.find_element(By.ID, 'key').send_keys(args.key)
        drv.find_element(By.ID, 'login-submit').click()
        wait_loaded(drv, 'the dashboard', 60)
        shipments = tile(drv, 'shipments')[0]
        times = []
        for _ in range(args.measure):
            drv.get(args.gateway + '/dashboard')
            wait_loaded(drv, 'the dashboard', 60)
            times.append(int(body_flag(drv, 'loadedMs')))
        for name, start, dur in drv.execute_script(
                'return performance.getEntriesByType("resource")'
                '.map(e => [e.name, Math.round(e.startTime), Math.round(e.duration)])'):
            print('INFO:   %5d ms +%4d ms  %s' % (start, dur, name.replace(args.gateway, '')))
        times.sort()
        print('RESULT dashboard_page_load_ms median %d min %d max %d over %d reloads (tile shipments %s)'
              % (times[len(times) // 2], times[0], times[-1], len(times), shipments), flush=True)
    finally:
        drv.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--gateway', required=True)
    ap.add_argument('--key', required=True)
    ap.add_argument('--artifacts', required=True)
    ap.add_argument('--tmp', required=True)
    ap.add_argument('--degraded-gateway', help='a gateway without Chart.js and without Kafka')
    ap.add_argument('--db-url', help='the database, to age the analytics (stale check)')
    ap.add_argument('--measure', type=int, default=0,
                    help='only sign in, then reload N times and print the page-load times')
    args = ap.parse_args()
    try:
        if args.measure:
            measure(args)
        else:
            run(args)
    except Failed as e:
        print('FAIL: %s' % e, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

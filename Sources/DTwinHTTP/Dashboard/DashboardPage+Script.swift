extension DashboardPage {
    /// The page's behaviour. Everything it reads and changes goes through the documented
    /// `/api` routes; what happens arrives on `/api/events` (Server-Sent Events) a few times a
    /// second, and the page redraws once per push, never per message.
    static let script = #"""
        'use strict';
        (() => {
          const HEADERS = { 'X-DTwin-Request': '1' };
          const $ = (id) => document.getElementById(id);
          const state = { devices: new Map(), selected: null, points: [], range: 3600000, twin: null, events: null,
                          dead: [], dirty: new Set() };

          class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }

          async function api(path, options = {}) {
            const response = await fetch('/api' + path, Object.assign({ credentials: 'same-origin' }, options,
              { headers: Object.assign({}, HEADERS, options.headers || {}) }));
            let body = {};
            try { body = await response.json(); } catch (_) { /* not JSON */ }
            if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
            return body;
          }

          function el(tag, attributes = {}, ...children) {
            const node = document.createElement(tag);
            for (const [key, value] of Object.entries(attributes)) {
              if (key === 'class') node.className = value; else node.setAttribute(key, value);
            }
            for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
            return node;
          }

          function show(view) {
            for (const id of ['login-view', 'disabled-view', 'app']) $(id).hidden = id !== view;
            $('logout').hidden = view !== 'app';
          }

          function ago(iso) {
            if (!iso) return 'never';
            const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
            if (seconds < 60) return seconds + ' s ago';
            if (seconds < 3600) return Math.round(seconds / 60) + ' min ago';
            return Math.round(seconds / 3600) + ' h ago';
          }

          const shown = (value) => value === true ? 'on' : value === false ? 'off' : value === undefined ? '' : String(value);

          // --- start, login, logout -------------------------------------------------------------

          async function start() {
            try {
              await loadAll();
              show('app');
              connect();
            } catch (error) {
              if (error.status === 403 && /disabled/.test(error.message)) { $('disabled-reason').textContent = error.message; show('disabled-view'); }
              else { show('login-view'); if (error.status && error.status !== 401) $('login-error').textContent = error.message; }
            }
          }

          $('login').addEventListener('submit', async (event) => {
            event.preventDefault();
            $('login-error').textContent = '';
            const response = await fetch('/login', { method: 'POST', credentials: 'same-origin',
              headers: Object.assign({ 'Content-Type': 'application/x-www-form-urlencoded' }, HEADERS),
              body: new URLSearchParams({ token: $('token').value }) });
            $('token').value = '';
            if (response.ok) { start(); return; }
            let body = {};
            try { body = await response.json(); } catch (_) { /* not JSON */ }
            if (response.status === 403 && /disabled/.test(body.error || '')) { $('disabled-reason').textContent = body.error; show('disabled-view'); return; }
            $('login-error').textContent = body.error || ('refused: ' + response.status);
          });

          $('logout').addEventListener('click', async () => {
            if (state.events) state.events.close();
            await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: HEADERS });
            show('login-view');
          });

          // --- loading ---------------------------------------------------------------------------

          async function loadAll() {
            const listing = await api('/devices');
            state.devices = new Map(listing.devices.map((device) => [device.device, device]));
            if (!state.selected || !state.devices.has(state.selected)) state.selected = listing.devices.length ? listing.devices[0].device : null;
            renderDevices();
            await Promise.all([loadDevice(), loadSMS(), loadDead(), loadHealth()]);
          }

          async function loadHealth() { renderHealth(await api('/health'), 0, 1); }

          async function loadDevice() {
            const device = state.selected;
            $('device-name').textContent = device || 'No device yet';
            state.points = []; state.twin = null;
            if (!device) { renderChart(); renderTwin(); return; }
            const since = new Date(Date.now() - state.range).toISOString();
            try {
              const page = await api(`/devices/${encodeURIComponent(device)}/readings?since=${since}&limit=1000`);
              state.points = page.items.filter((item) => typeof item.value === 'number').map((item) => [Date.parse(item.ts), item.value]);
              $('chart-note').textContent = page.hint || '';
            } catch (error) { $('chart-note').textContent = error.message; }
            try { state.twin = await api(`/devices/${encodeURIComponent(device)}/state`); }
            catch (error) { state.twin = null; $('twin-message').textContent = error.message; }
            renderDevices(); renderChart(); renderTwin();
          }

          async function loadSMS() {
            try {
              const outbox = await api('/outbox');
              $('sms-mode').textContent = outbox.dryRun ? 'Dry run: no Twilio credentials, nothing is sent.' : '';
              $('sms').replaceChildren(...outbox.entries.slice(-30).reverse().map((entry) =>
                el('li', {}, el('div', {}, entry.body), el('div', { class: 'meta' },
                  `to ${entry.to}${entry.device ? ' about ' + entry.device : ''}: ${entry.twilioStatus || entry.state}`))));
              if (!outbox.entries.length) $('sms').replaceChildren(el('li', { class: 'meta' }, 'No SMS yet.'));
            } catch (error) { $('sms-mode').textContent = error.message; }
          }

          async function loadDead() { state.dead = (await api('/deadletters')).deadLetters; renderDead(); }

          // --- live --------------------------------------------------------------------------------

          function connect() {
            if (state.events) state.events.close();
            const events = new EventSource('/api/events');
            state.events = events;
            let opened = false;
            // Reconnected (the bridge restarted, or this page fell behind): pushes were missed.
            events.onopen = () => { if (opened) loadAll(); opened = true; };
            events.onmessage = (message) => apply(JSON.parse(message.data));
            events.onerror = async () => {
              // Closed for good (the session ended, or the API refused): back to the login.
              try { await api('/health'); } catch (error) { if (error.status === 401) { events.close(); show('login-view'); } }
            };
          }

          let smsRefresh = 0;
          function apply(push) {
            let reload = push.missed;
            for (const reading of push.readings) {
              const device = state.devices.get(reading.device);
              if (!device) { reload = true; continue; }
              device.lastReading = { value: reading.value, unit: reading.unit, at: reading.at };
              device.lastSeen = reading.at;
              if (reading.device === state.selected) state.points.push([Date.parse(reading.at), reading.value]);
            }
            for (const status of push.statuses) {
              const device = state.devices.get(status.device);
              if (!device) { reload = true; continue; }
              device.status = status.status;
            }
            for (const twin of push.twins) if (twin.device === state.selected) state.twin = twin;
            if (push.deadLetters.length) { state.dead = push.deadLetters.reverse().concat(state.dead).slice(0, 50); renderDead(); }
            renderHealth(push.health, push.rate, push.dashboards);
            if (reload) { loadAll(); return; }
            renderDevices(); renderChart(); if (push.twins.length) renderTwin();
            if (Date.now() - smsRefresh > 5000) { smsRefresh = Date.now(); loadSMS(); }
          }

          // --- drawing -----------------------------------------------------------------------------

          function renderHealth(health, rate, dashboards) {
            const parts = [
              el('span', { class: health.brokerConnected ? '' : 'bad' }, health.brokerConnected ? 'broker connected' : 'broker NOT connected'),
              el('span', {}, `spool ${health.spoolMessages}`),
              el('span', {}, `waiting for broker ${health.waitingForBroker}`),
              el('span', { id: 'rate' }, `${rate.toFixed(1)} msg/s`),
              el('span', {}, `dead letters ${health.deadLettered}`),
              el('span', {}, `${dashboards} dashboard${dashboards === 1 ? '' : 's'}`),
            ];
            for (const problem of health.problems) parts.push(el('span', { class: 'bad' }, problem));
            $('health').replaceChildren(...parts);
          }

          function renderDevices() {
            const items = [...state.devices.values()].map((device) => {
              const reading = device.lastReading;
              const item = el('li', { class: device.device === state.selected ? 'selected' : '', 'data-device': device.device },
                el('span', { class: 'dot ' + (device.status || '') }),
                el('span', { class: 'name' }, device.device),
                el('span', { class: 'value' }, reading ? `${reading.value}${reading.unit ? ' ' + reading.unit : ''}` : '–'),
                el('span', { class: 'seen' }, `${device.status || 'status unknown'}, last seen ${ago(device.lastSeen)}`));
              item.addEventListener('click', () => { state.selected = device.device; loadDevice(); });
              return item;
            });
            $('devices').replaceChildren(...(items.length ? items : [el('li', { class: 'meta' }, 'No device has spoken yet.')]));
            const selected = state.devices.get(state.selected);
            $('device-status').textContent = selected ? (selected.status || 'status unknown') : '';
            $('device-status').className = 'pill ' + (selected && selected.status ? selected.status : '');
          }

          function renderChart() {
            const now = Date.now();
            const from = now - state.range;
            state.points = state.points.filter(([t]) => t >= from).slice(-5000);
            const svgNS = 'http://www.w3.org/2000/svg';
            const svg = document.createElementNS(svgNS, 'svg');
            svg.setAttribute('viewBox', '0 0 600 220');
            svg.setAttribute('preserveAspectRatio', 'none');
            const values = state.points.map(([, v]) => v);
            const low = values.length ? Math.min(...values) : 0;
            const high = values.length ? Math.max(...values) : 1;
            const span = high - low || 1;
            const x = (t) => 40 + (t - from) / state.range * 550;
            const y = (v) => 200 - (v - low) / span * 180;
            for (const v of [low, (low + high) / 2, high]) {
              const line = document.createElementNS(svgNS, 'line');
              line.setAttribute('x1', 40); line.setAttribute('x2', 590); line.setAttribute('y1', y(v)); line.setAttribute('y2', y(v));
              line.setAttribute('class', 'grid'); svg.append(line);
              const label = document.createElementNS(svgNS, 'text');
              label.setAttribute('x', 2); label.setAttribute('y', y(v) + 4); label.textContent = Number(v.toFixed(1)); svg.append(label);
            }
            const line = document.createElementNS(svgNS, 'polyline');
            line.setAttribute('class', 'line');
            line.setAttribute('points', state.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '));
            svg.append(line);
            $('chart').replaceChildren(svg);
            if (!$('chart-note').textContent || state.points.length) $('chart-note').textContent =
              `${state.points.length} readings in the last ${$('range').selectedOptions[0].textContent}`;
          }

          function renderTwin() {
            const twin = state.twin;
            const controls = ['led-on', 'led-off'].map($).concat([...document.querySelectorAll('#twin-card form button')]);
            for (const button of controls) button.disabled = !twin;
            if (!twin) { $('twin-rows').replaceChildren(); $('twin-version').textContent = ''; return; }
            const keys = [...new Set(Object.keys(twin.desired).concat(Object.keys(twin.reported)))]
              .filter((key) => !['at'].includes(key)).sort();
            $('twin-rows').replaceChildren(...keys.map((key) => {
              const pending = twin.pending[key];
              let status = '', cls = '';
              if (pending && pending.failed) { status = `failed (${pending.command})`; cls = 'failed'; }
              else if (pending) { status = `pending (${pending.command})`; cls = 'pending'; }
              else if (key in twin.desired) { status = 'done'; cls = 'done'; }
              return el('tr', { 'data-key': key }, el('td', {}, key), el('td', {}, shown(twin.desired[key])),
                el('td', {}, shown(twin.reported[key])), el('td', { class: cls }, status));
            }));
            $('twin-version').textContent = `version ${twin.version}`;
          }

          function renderDead() {
            $('dead').replaceChildren(...(state.dead.length ? state.dead.map((letter) =>
              el('li', {}, el('div', {}, letter.reason), el('div', { class: 'meta' },
                `${letter.topic}${letter.receivedAt ? ' at ' + letter.receivedAt : ''}: ${letter.payload}`)))
              : [el('li', { class: 'meta' }, 'None.')]));
          }

          // --- controls ----------------------------------------------------------------------------

          async function setDesired(desired) {
            const device = state.selected;
            $('twin-message').textContent = '';
            try {
              state.twin = await api(`/devices/${encodeURIComponent(device)}/state`, { method: 'PATCH',
                headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ desired }) });
              renderTwin();
            } catch (error) { $('twin-message').textContent = error.message; }
          }

          $('led-on').addEventListener('click', () => setDesired({ led: true }));
          $('led-off').addEventListener('click', () => setDesired({ led: false }));
          $('period-form').addEventListener('submit', (event) => { event.preventDefault(); setDesired({ period: Number($('period').value) }); });
          $('command-form').addEventListener('submit', async (event) => {
            event.preventDefault();
            try {
              const sent = await api(`/devices/${encodeURIComponent(state.selected)}/commands`, { method: 'POST',
                headers: { 'Content-Type': 'text/plain' }, body: $('command').value });
              $('twin-message').textContent = `${sent.command} sent (${sent.route})`;
              $('command').value = '';
            } catch (error) { $('twin-message').textContent = error.message; }
          });
          $('range').addEventListener('change', () => { state.range = Number($('range').value); loadDevice(); });
          setInterval(renderDevices, 10000);  // "last seen" moves on even when nothing arrives

          start();
        })();
        """#
}

/// The dashboard's files, built into the binary: the bridge serves them with no network and no
/// CDN. No inline script or style (the page's Content-Security-Policy forbids both), no secret:
/// the session is an `HttpOnly` cookie the scripts never see.
enum DashboardPage {
    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>dtwin</title>
        <link rel="stylesheet" href="/dashboard.css">
        <script src="/dashboard.js" defer></script>
        </head>
        <body>
        <header>
          <h1>dtwin</h1>
          <div id="health" class="health" aria-live="polite"></div>
          <button id="logout" class="quiet" hidden>Log out</button>
        </header>

        <main id="login-view" hidden>
          <form id="login" class="card narrow">
            <h2>Log in</h2>
            <p>The dashboard takes the bridge's API token (<code>DTWIN_API_TOKEN</code>).</p>
            <label for="token">Token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required>
            <button type="submit" id="login-button">Log in</button>
            <p id="login-error" class="error" role="alert"></p>
          </form>
        </main>

        <main id="disabled-view" hidden>
          <section class="card narrow">
            <h2>The dashboard is off</h2>
            <p id="disabled-reason"></p>
            <p>Start the bridge with <code>DTWIN_API_TOKEN</code> set in its environment (a long random value, e.g.
            <code>openssl rand -hex 24</code>), then log in here with that value.</p>
          </section>
        </main>

        <main id="app" hidden>
          <section class="card" id="devices-card">
            <h2>Devices</h2>
            <ul id="devices" class="devices"></ul>
          </section>

          <section class="card wide" id="device-card">
            <div class="row">
              <h2 id="device-name">No device yet</h2>
              <span id="device-status" class="pill"></span>
              <span class="spacer"></span>
              <label for="range" class="small">Range</label>
              <select id="range">
                <option value="900000">15 min</option>
                <option value="3600000" selected>1 hour</option>
                <option value="21600000">6 hours</option>
                <option value="86400000">24 hours</option>
                <option value="604800000">7 days</option>
              </select>
            </div>
            <div id="chart" class="chart" role="img" aria-label="readings"></div>
            <p id="chart-note" class="small"></p>
          </section>

          <section class="card" id="twin-card">
            <h2>Twin</h2>
            <table class="twin">
              <thead><tr><th>key</th><th>desired</th><th>reported</th><th>state</th></tr></thead>
              <tbody id="twin-rows"></tbody>
            </table>
            <p id="twin-version" class="small"></p>
            <div class="row controls">
              <button id="led-on">LED on</button>
              <button id="led-off">LED off</button>
            </div>
            <form id="period-form" class="row controls">
              <label for="period">Period (s)</label>
              <input id="period" type="number" min="1" max="86400" required>
              <button type="submit">Set</button>
            </form>
            <form id="command-form" class="row controls">
              <label for="command">Command</label>
              <input id="command" maxlength="1024" required placeholder="READ">
              <button type="submit">Send</button>
            </form>
            <p id="twin-message" class="small" role="status"></p>
          </section>

          <section class="card" id="sms-card">
            <h2>SMS</h2>
            <p id="sms-mode" class="small"></p>
            <ul id="sms" class="list"></ul>
          </section>

          <section class="card" id="dead-card">
            <h2>Dead letters</h2>
            <ul id="dead" class="list"></ul>
          </section>
        </main>
        </body>
        </html>
        """
}

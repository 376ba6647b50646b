extension DashboardPage {
    /// One column on a phone, a grid on a laptop; system fonts only (nothing to download).
    static let style = #"""
        :root { --fg: #1d232a; --muted: #5f6b76; --line: #d9dee3; --bg: #f4f6f8; --card: #fff; --accent: #0b6bcb;
          --ok: #1b7f3b; --warn: #a15c00; --bad: #b3261e; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
        * { box-sizing: border-box; }
        [hidden] { display: none !important; }
        body { margin: 0; background: var(--bg); color: var(--fg); }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .6rem 1rem; background: #14202b; color: #fff; }
        header h1 { font-size: 1.1rem; margin: 0; letter-spacing: .05em; }
        .health { display: flex; flex-wrap: wrap; gap: .3rem .9rem; font-size: .85rem; flex: 1; }
        .health .bad { color: #ffb4ab; font-weight: 600; }
        main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: 1fr; }
        @media (min-width: 900px) {
          main#app { grid-template-columns: minmax(220px, 1fr) 2fr 1.3fr; align-items: start;
            grid-template-areas: "devices device device" "devices twin sms" "devices twin dead"; }
          #devices-card { grid-area: devices; }
          #device-card { grid-area: device; }
          #twin-card { grid-area: twin; }
          #sms-card { grid-area: sms; }
          #dead-card { grid-area: dead; }
        }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; min-width: 0; }
        .card.narrow { max-width: 26rem; margin: 2rem auto; }
        h2 { font-size: 1rem; margin: 0 0 .6rem; }
        .row { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
        .spacer { flex: 1; }
        .small { font-size: .8rem; color: var(--muted); }
        .error { color: var(--bad); min-height: 1.2em; }
        label { font-size: .85rem; }
        input, select, button { font: inherit; padding: .35rem .6rem; border-radius: 6px; border: 1px solid var(--line); }
        input { min-width: 0; }
        #token { width: 100%; margin: .3rem 0 .6rem; }
        button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
        button.quiet { background: transparent; color: inherit; border-color: #5f6b76; }
        button:disabled { opacity: .5; cursor: default; }
        .devices { list-style: none; margin: 0; padding: 0; }
        .devices li { display: grid; grid-template-columns: auto 1fr auto; gap: .1rem .6rem; padding: .45rem .3rem; border-bottom: 1px solid var(--line); cursor: pointer; }
        .devices li.selected { background: #e8f1fb; }
        .devices .name { font-weight: 600; }
        .devices .value { text-align: right; font-variant-numeric: tabular-nums; }
        .devices .seen { grid-column: 2 / 4; font-size: .75rem; color: var(--muted); }
        .dot { width: .7rem; height: .7rem; border-radius: 50%; background: #aab3bb; align-self: center; }
        .dot.online { background: var(--ok); }
        .dot.offline { background: var(--bad); }
        .pill { font-size: .75rem; padding: .1rem .5rem; border-radius: 999px; background: #e6e9ec; }
        .pill.online { background: #d6f0dd; color: var(--ok); }
        .pill.offline { background: #fbe0dd; color: var(--bad); }
        .chart svg { width: 100%; height: 220px; display: block; }
        .chart .line { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
        .chart .grid { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
        .chart text { font-size: 11px; fill: var(--muted); }
        table.twin { width: 100%; border-collapse: collapse; font-size: .85rem; }
        .twin th, .twin td { text-align: left; padding: .25rem .3rem; border-bottom: 1px solid var(--line); }
        .twin .pending { color: var(--warn); font-weight: 600; }
        .twin .failed { color: var(--bad); font-weight: 600; }
        .twin .done { color: var(--ok); }
        .controls { margin-top: .6rem; }
        .controls input { width: 7rem; flex: 1; }
        .list { list-style: none; margin: 0; padding: 0; font-size: .82rem; max-height: 18rem; overflow: auto; }
        .list li { padding: .35rem 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
        .list .meta { color: var(--muted); font-size: .75rem; }
        code { background: #eef1f4; padding: 0 .25rem; border-radius: 4px; }
        """#
}

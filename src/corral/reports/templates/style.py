"""The report's stylesheet, inlined into the page (no external resource is ever loaded)."""

CSS = """
:root { --ink:#1d2733; --muted:#5b6776; --line:#d8dee6; --bg:#f5f7fa; --card:#fff;
  --ok:#2e7d4f; --warning:#b7791f; --alert:#c0392b; --cannot:#6b7a8f; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",
  "DejaVu Sans",sans-serif; color:var(--ink); background:var(--bg); }
header { background:#16324f; color:#fff; padding:22px 32px; }
header h1 { margin:0; font-size:26px; }
header .sub { margin:4px 0 0; color:#c9d6e3; }
main { max-width:1120px; margin:0 auto; padding:12px 24px 32px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
  padding:16px 20px; margin:18px 0; }
h2 { margin:0 0 12px; font-size:20px; }
h3 { font-size:16px; margin:14px 0 8px; }
.tiles { display:grid; grid-template-columns:repeat(5,1fr); gap:12px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:12px; background:#fbfcfe; }
.tile .label { color:var(--muted); font-size:13px; }
.tile .figure { font-size:26px; font-weight:700; margin:2px 0; }
.tile .note { color:var(--muted); font-size:12px; }
.tile[data-key=waste_monthly] .figure, .tile[data-key=waste_yearly] .figure { color:var(--alert); }
.signs { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:12px; }
.sign { border:1px solid var(--line); border-left:6px solid var(--cannot); border-radius:6px;
  padding:8px 12px; }
.sign.ok { border-left-color:var(--ok); } .sign.warning { border-left-color:var(--warning); }
.sign.alert { border-left-color:var(--alert); }
.sign h3 { margin:4px 0 8px; }
.sign .no { color:var(--muted); font-weight:600; }
.badge { display:inline-block; font-size:12px; padding:1px 8px; border-radius:10px; color:#fff;
  background:var(--cannot); vertical-align:middle; }
.badge.ok { background:var(--ok); } .badge.warning { background:var(--warning); }
.badge.alert { background:var(--alert); }
.sign dl { display:grid; grid-template-columns:auto auto; gap:2px 12px; margin:0; font-size:13px; }
.sign dt { color:var(--muted); } .sign dd { margin:0; font-weight:600; text-align:right; }
.basis { font-size:12.5px; color:var(--muted); margin:8px 0 2px; }
figure { margin:0 0 12px; } figcaption { color:var(--muted); font-size:13px; max-width:760px; }
svg.chart { width:100%; height:auto; font-size:14px; }
svg.chart text { fill:var(--ink); } svg.chart text.value { fill:var(--muted); }
svg.chart .grid line { stroke:var(--line); } svg.chart .grid text { fill:var(--muted); }
svg.chart .axis text { fill:var(--muted); }
table { border-collapse:collapse; width:100%; font-size:13px; margin:6px 0; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; text-align:left;
  vertical-align:top; }
th { background:#eef2f7; } tbody tr:nth-child(even) { background:#fafbfd; }
td.num, th.num { text-align:right; white-space:nowrap; }
td { overflow-wrap:anywhere; }
#findings td:nth-child(-n+4), #rightsizing td, #over-time td { white-space:nowrap; }
#findings td:nth-child(-n+4) { overflow-wrap:normal; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 24px 24px; }
@media print { body { background:#fff; } section { break-inside:avoid; } }
"""

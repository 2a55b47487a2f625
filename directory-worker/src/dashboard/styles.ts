export const dashboardCss = `
:root{--fg:#111827;--muted:#4b5563;--line:#d1d5db;--bg:#fff;--panel:#f9fafb;--up:#047857;--down:#b91c1c;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:72rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.5rem;padding-top:1rem}
h1{font-size:1.5rem;margin:.25rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;margin:1rem 0;padding:0;list-style:none}
.stats li{background:var(--panel);border:1px solid var(--line);border-radius:.5rem;padding:.75rem}
.stats .value{display:block;font-size:1.5rem;font-weight:700}
.stats .label{color:var(--muted);font-size:.9rem}
label{font-weight:600;display:block;margin-bottom:.25rem}
input{font:inherit;padding:.5rem;border:1px solid var(--muted);border-radius:.375rem;width:100%;max-width:32rem}
button{font:inherit;padding:.25rem .6rem;border:1px solid var(--muted);border-radius:.375rem;background:var(--panel);color:var(--fg);cursor:pointer}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th button{border:0;background:none;font-weight:700;padding:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;overflow-wrap:anywhere}
.up{color:var(--up);font-weight:600}.down{color:var(--down);font-weight:600}
.muted{color:var(--muted)}
.pager{display:flex;gap:.5rem;align-items:center;margin:.5rem 0}
.result{border:1px solid var(--line);border-radius:.5rem;padding:.75rem;margin:.5rem 0}
.result h3{margin:0 0 .25rem;font-size:1rem;overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:40rem){.hide-narrow{display:none}}
`

// The dashboard's stylesheet, served as /dashboard.css (the CSP allows no inline styles). Colours keep
// at least 4.5:1 contrast on their backgrounds; the layout is one column on a phone.
export const dashboardCss = `
:root{--fg:#111827;--muted:#4b5563;--line:#d1d5db;--bg:#fff;--panel:#f9fafb;--up:#047857;--down:#b91c1c;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:72rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.5rem;padding-top:1rem}
main{padding-bottom:2rem}
h1{font-size:1.5rem;margin:.25rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
.skip{position:absolute;left:-100vw}.skip:focus{left:1rem;top:.5rem;background:var(--bg);padding:.25rem .5rem;z-index:1}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;margin:1rem 0 .5rem;padding:0;list-style:none}
.stats li{background:var(--panel);border:1px solid var(--line);border-radius:.5rem;padding:.75rem}
.stats .value{display:block;font-size:1.5rem;font-weight:700;font-variant-numeric:tabular-nums}
.stats .label{color:var(--muted);font-size:.9rem}
label{font-weight:600;display:block;margin-bottom:.25rem}
.filter label{display:inline;margin:0}
#login-form input{display:block;width:100%;max-width:20rem;margin-bottom:.75rem}
input,select{font:inherit;padding:.45rem .5rem;border:1px solid var(--muted);border-radius:.375rem;background:var(--bg);color:var(--fg)}
input[type=search]{flex:1 1 14rem;max-width:32rem;min-width:0}
button{font:inherit;padding:.3rem .7rem;border:1px solid var(--muted);border-radius:.375rem;background:var(--panel);color:var(--fg);cursor:pointer;min-height:2.25rem}
button:focus-visible,input:focus-visible,select:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th a{color:var(--fg);font-weight:700;text-decoration:none}
th a:hover{text-decoration:underline}
th[aria-sort=ascending] a::after{content:' ▲';font-size:.75em}
th[aria-sort=descending] a::after{content:' ▼';font-size:.75em}
.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;overflow-wrap:anywhere}
.up{color:var(--up);font-weight:600}.down{color:var(--down);font-weight:600}
.muted{color:var(--muted)}
.pager{display:flex;gap:1rem;align-items:center;margin:.75rem 0}
.pager a[aria-disabled=true]{color:var(--muted);pointer-events:none;text-decoration:none}
.results{list-style:none;padding:0;margin:0}
.result{border:1px solid var(--line);border-radius:.5rem;padding:.75rem;margin:.5rem 0}
.result h3{margin:0 0 .25rem;font-size:1rem;overflow-wrap:anywhere}
.result p{margin:.25rem 0}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.copy{display:inline-flex;flex-wrap:wrap;gap:.5rem;align-items:center;min-width:0}
.sr-only,.offscreen{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.js-only{display:none}.js .js-only{display:inline-block}.js .no-js{display:none}
@media (max-width:40rem){.hide-narrow{display:none}h1{font-size:1.3rem}}
`

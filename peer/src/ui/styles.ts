/** The app's one stylesheet (served as /app/app.css: the CSP allows no inline style). */
export const APP_CSS = `
:root { color-scheme: light dark; --line: #8884; --accent: #2a6df4; font-family: system-ui, sans-serif; }
body { margin: 0; }
header { display: flex; align-items: baseline; gap: 1rem; padding: .6rem 1rem; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
#status-line { margin: 0; opacity: .8; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem; padding: 1rem; }
.panel { border: 1px solid var(--line); border-radius: .5rem; padding: .8rem; min-width: 0; }
.wide { grid-column: 1 / -1; }
input[type=search] { width: 100%; box-sizing: border-box; font-size: 1.1rem; padding: .5rem; }
.rows { list-style: none; margin: 0; padding: 0; }
.rows:empty::after { content: attr(data-empty); opacity: .7; }
.rows li { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .8rem; padding: .4rem 0; border-top: 1px solid var(--line); }
.rows .name { font-weight: 600; overflow-wrap: anywhere; flex: 1 1 12rem; }
.meta { opacity: .75; font-size: .9rem; }
.bar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-bottom: .5rem; }
button, .link { font: inherit; padding: .25rem .7rem; border-radius: .3rem; border: 1px solid var(--line); background: none; cursor: pointer; color: inherit; }
button.primary { background: var(--accent); color: white; border-color: var(--accent); }
.link { border: none; padding: 0; text-decoration: underline; color: var(--accent); }
progress { flex: 1 1 10rem; }
#player audio, #player video, #player img { max-width: 100%; }
#player pre { white-space: pre-wrap; max-height: 20rem; overflow: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; margin: 0 0 .5rem; }
dd { margin: 0; overflow-wrap: anywhere; }
.failed { color: #c33; }
@media (max-width: 40rem) { main { grid-template-columns: 1fr; padding: .5rem; } }
`

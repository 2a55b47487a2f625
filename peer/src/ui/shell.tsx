/**
 * The app's page as the server sends it: the panels' empty frames, with their accessible names; the
 * scripts (browser/) fill them from the JSON reads and keep them live from the event stream.
 */
function Shell() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>peerdir</title>
        <link rel="stylesheet" href="/app/app.css" />
        <script src="/app/app.js" defer />
      </head>
      <body>
        <header>
          <h1>peerdir</h1>
          <p id="status-line" role="status">
            connecting…
          </p>
        </header>
        <main>
          <section aria-labelledby="search-title" class="panel wide">
            <h2 id="search-title">Search</h2>
            <input
              id="search"
              type="search"
              aria-label="Search the network"
              placeholder="Search the network"
              autocomplete="off"
            />
            <p id="search-note" aria-live="polite" />
            <ul id="results" class="rows" aria-label="Results" />
          </section>
          <section id="browse-panel" aria-labelledby="browse-title" class="panel wide" hidden>
            <h2 id="browse-title">Browse</h2>
            <div id="browse-bar" class="bar" />
            <ul id="browse" class="rows" aria-label="Folder" />
          </section>
          <section id="player-panel" aria-labelledby="player-title" class="panel wide" hidden>
            <h2 id="player-title">Playing</h2>
            <div id="player" />
          </section>
          <section aria-labelledby="downloads-title" class="panel">
            <h2 id="downloads-title">Downloads</h2>
            <ul id="downloads" class="rows" data-empty="No downloads yet: search, then Download." />
          </section>
          <section aria-labelledby="wishes-title" class="panel">
            <h2 id="wishes-title">Wishes</h2>
            <form id="wish-form" class="bar">
              <input id="wish-query" aria-label="Wish for" placeholder="Wish for…" required />
              <label>
                <input id="wish-get" type="checkbox" checked /> fetch matches
              </label>
              <button type="submit">Add wish</button>
            </form>
            <ul id="wishes" class="rows" data-empty="No wishes." />
          </section>
          <section aria-labelledby="shared-title" class="panel">
            <h2 id="shared-title">Shared</h2>
            <ul id="shared" class="rows" data-empty="Nothing shared yet." />
          </section>
          <section aria-labelledby="state-title" class="panel">
            <h2 id="state-title">Status</h2>
            <dl id="state" />
            <div class="bar">
              <button type="button" id="login">
                Log in
              </button>
              <button type="button" id="logout">
                Log out
              </button>
            </div>
          </section>
        </main>
      </body>
    </html>
  )
}

export const shellPage = () => `<!doctype html>${(<Shell />).toString()}`
